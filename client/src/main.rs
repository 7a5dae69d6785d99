//! `dockstack`: reads environment.yaml and drives the container hosts: run,
//! destroy, start, stop, restart, show, register and deregister containers; list, get,
//! status and addresses; plan and apply; the cluster's certificates; and the
//! shell completions and manual page, in the 2015 client's form.

use std::process::ExitCode;

mod cli;

use cli::{Invalid, exit};

fn main() -> ExitCode {
    let cli = cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dockstack: cannot start runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<Invalid>() {
            // An environment file's problems: one per line, each prefixed.
            Some(invalid) => {
                for line in invalid.0.lines() {
                    eprintln!("dockstack: {line}");
                }
                ExitCode::from(exit::INVALID)
            }
            None => {
                eprintln!("dockstack: {e:#}");
                ExitCode::from(exit::FAILED)
            }
        },
    }
}
