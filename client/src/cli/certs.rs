//! `certs`: making, renewing, revoking and listing the cluster's certificates.

use std::process::ExitCode;

use anyhow::Result;
use dockstack::{certs, environment};

use super::args::{CertsCommand, Cli};
use super::{Invalid, load};

pub fn certs_command(cli: &Cli, command: &CertsCommand) -> Result<ExitCode> {
    let dir = &cli.tls_dir;
    let written = match command {
        CertsCommand::Init { force } => certs::init(dir, &load(cli)?.hosts, *force)?,
        CertsCommand::AddHost { name, force } => {
            let env = load(cli)?;
            let host = env.host(name).ok_or_else(|| {
                Invalid(format!(
                    "{}: no host {name} in containerhosts",
                    cli.file.display()
                ))
            })?;
            certs::add_host(dir, host, *force)?
        }
        CertsCommand::AddClient {
            name,
            role,
            days,
            force,
        } => {
            certs::check_name(name).map_err(|e| Invalid(e.to_string()))?;
            // A host's certificate is NAME.pem too, even before it is made.
            if let Ok(env) = environment::load(&cli.file)
                && env.host(name).is_some()
            {
                return Err(Invalid(format!(
                    "{name} is a container host of {}: its certificate is {name}.pem; pick another name",
                    cli.file.display()
                ))
                .into());
            }
            let files = certs::add_client(dir, name, *role, *days, *force)?;
            println!("{name}: role {role}, valid {days} days; use it with --as {name}");
            files
        }
        CertsCommand::Revoke { name } => {
            let r = certs::revoke(dir, name)?;
            if r.already {
                println!(
                    "{name} (serial {}) was revoked already; {} signed again",
                    r.serial,
                    r.crl.display()
                );
            } else {
                println!(
                    "revoked {name} (serial {}): {} now lists {} certificate{}",
                    r.serial,
                    r.crl.display(),
                    r.count,
                    if r.count == 1 { "" } else { "s" }
                );
            }
            println!(
                "copy {} to the TLS directory of every container host, then send each dockstack-server SIGHUP (e.g. `systemctl kill -s HUP dockstack-server`) so it reads it again",
                r.crl.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        CertsCommand::Renew { name, days, role } => {
            let r = certs::renew(dir, name, *days, *role)?;
            println!(
                "{name}: role {}, valid until {}",
                r.role,
                certs::date(r.expires)
            );
            r.files
        }
        CertsCommand::List => {
            let list = certs::list(dir)?;
            print!(
                "{}",
                certs::format_list(&list, time::OffsetDateTime::now_utc())
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
