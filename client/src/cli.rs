//! The `dockstack` command: its arguments, one handler per command family,
//! and what they print.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use dockstack::connect::{Connector, Security};
use dockstack::environment::{self, Container, Environment};
use dockstack::ops::{Action, HostOverride};

mod addresses;
mod args;
mod certs;
mod completion;
mod containers;
mod exec;
pub mod exit;
mod json;
mod lock;
mod logs;
mod manual;
mod plan;
mod render;
mod terminal;
mod watch;

pub use args::{Cli, parse};
use args::{Command, OutputFormat};

/// Bad input: the command line or the environment file. Nothing was done;
/// the exit status is 2.
#[derive(Debug)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The line of a host that could not be asked: `FAILED host NAME: …`,
/// the host named once, whether its message begins with it (the server's
/// `host NAME: …`, a connection's `host NAME (ADDR) …`) or not.
fn host_failed(host: &str, message: &str) -> String {
    let named = format!("host {host}");
    match message.strip_prefix(&named) {
        Some(rest) if rest.starts_with(": ") || rest.starts_with(" (") => {
            format!("FAILED {message}")
        }
        _ => format!("FAILED {named}: {message}"),
    }
}

/// The line of a container whose action failed on `host`, the host named
/// once (a server's message begins `host NAME: …`).
fn container_failed(container: &str, host: &str, message: &str) -> String {
    let message = message
        .strip_prefix(&format!("host {host}: "))
        .unwrap_or(message);
    format!("FAILED {container} on {host}: {message}")
}

fn load(cli: &Cli) -> Result<Environment> {
    let mut env = environment::load(&cli.file).map_err(|e| Invalid(e.to_string()))?;
    env.cluster = etcd_flags(cli, env.cluster.take())?;
    Ok(env)
}

/// The file's `cluster`, its etcd and TLS replaced by `--etcd` and
/// `--etcd-ca/cert/key` when given (its prefix kept).
fn etcd_flags(
    cli: &Cli,
    cluster: Option<environment::Cluster>,
) -> Result<Option<environment::Cluster>> {
    let tls = match (&cli.etcd_ca, &cli.etcd_cert, &cli.etcd_key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) if !cli.etcd.is_empty() => {
            let absolute = |p: &std::path::PathBuf| {
                std::path::absolute(p).map_err(|e| Invalid(format!("{}: {e}", p.display())))
            };
            Some(environment::EtcdTls {
                ca: absolute(ca)?,
                cert: absolute(cert)?,
                key: absolute(key)?,
            })
        }
        _ => {
            return Err(Invalid(
                "--etcd-ca, --etcd-cert and --etcd-key go together, with --etcd".into(),
            )
            .into());
        }
    };
    if cli.etcd.is_empty() {
        return Ok(cluster);
    }
    if let Some(bad) = cli
        .etcd
        .iter()
        .find(|u| !u.starts_with("https://") && !u.starts_with("http://"))
    {
        return Err(Invalid(format!(
            "--etcd: `{bad}` is no etcd URL (https://HOST:PORT)"
        ))
        .into());
    }
    let mut cluster = cluster.unwrap_or_else(|| environment::Cluster {
        etcd: Vec::new(),
        prefix: environment::DEFAULT_CLUSTER_PREFIX.to_string(),
        tls: None,
    });
    cluster.etcd.clone_from(&cli.etcd);
    if tls.is_some() {
        cluster.tls = tls;
    }
    if cluster.tls.is_none() && cluster.etcd.iter().any(|u| u.starts_with("https://")) {
        return Err(Invalid(
            "--etcd: an https:// etcd needs --etcd-ca, --etcd-cert and --etcd-key (or the file's cluster.tls)".into(),
        )
        .into());
    }
    Ok(Some(cluster))
}

fn selected(cli: &Cli, env: &Environment) -> Result<Vec<Container>> {
    match &cli.container {
        None => Ok(env.containers.clone()),
        Some(name) => match env.container(name) {
            Some(c) => Ok(vec![c.clone()]),
            None => Err(Invalid(format!(
                "{}: no container {name} in this file",
                cli.file.display()
            ))
            .into()),
        },
    }
}

fn connector(cli: &Cli) -> Result<Connector> {
    let security = if cli.insecure {
        eprintln!("dockstack: warning: --insecure: talking plaintext, without certificates");
        Security::Insecure
    } else {
        Security::Tls(cli.tls_dir.clone())
    };
    Connector::with_identity(
        security,
        &cli.as_name,
        Duration::from_secs(cli.connect_timeout),
    )
    .map(|c| c.with_deadline(cli.timeout.map(Duration::from_secs)))
    .map_err(|e| Invalid(e.to_string()).into())
}

/// Runs the command line's command.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.output == OutputFormat::Json;
    let overrides = HostOverride {
        ip: cli.hostip.clone(),
        port: cli.hostport,
    };
    let action = match &cli.action {
        Command::Completions { shell } => {
            // Written at once: a reader that goes (`| head`) is no panic.
            let _ = std::io::Write::write_all(
                &mut std::io::stdout(),
                completion::script(*shell).as_bytes(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::CompleteContainers => {
            completion::containers(&cli);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Manpage => {
            manual::render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Certs { command } => return certs::certs_command(&cli, command),
        Command::List => return containers::list(&cli, json),
        Command::Get => return containers::get(&cli),
        Command::Status { watch: false } => {
            return containers::status(&cli, overrides, json).await;
        }
        Command::Status { watch: true } => return watch::watch(&cli, overrides, json).await,
        Command::Logs {
            follow,
            since,
            tail,
            timestamps,
        } => {
            let query = dockstack::ops::streams::LogsQuery {
                follow: *follow,
                since: since.as_deref().map(logs::since).transpose()?.unwrap_or(0),
                tail: *tail,
            };
            return logs::logs(&cli, overrides, json, query, *timestamps).await;
        }
        Command::Events { follow, since } => {
            let query = dockstack::ops::streams::EventsQuery {
                follow: *follow,
                since: since.as_deref().map(logs::since).transpose()?.unwrap_or(0),
            };
            return logs::events(&cli, overrides, json, query).await;
        }
        Command::Exec {
            interactive,
            tty,
            command,
        } => return exec::exec(&cli, overrides, *interactive, *tty, command).await,
        Command::Restart => return containers::restart(&cli, overrides, json).await,
        Command::Plan => return plan::plan_command(&cli, overrides, json).await,
        Command::Lock => return lock::lock_command(&cli, overrides, false, None).await,
        Command::Unlock { force, host } => {
            // `--force` is required by the parser; kept for the reader.
            debug_assert!(*force);
            return lock::lock_command(&cli, overrides, true, host.as_deref()).await;
        }
        Command::Addresses => {
            return addresses::addresses_command(&cli, overrides, json).await;
        }
        Command::Apply {
            yes,
            prune,
            plan_id,
        } => {
            return plan::apply_command(&cli, overrides, json, *yes, *prune, plan_id.as_deref())
                .await;
        }
        Command::Run => Action::Run,
        Command::Destroy => Action::Destroy,
        Command::Start => Action::Start,
        Command::Stop => Action::Stop,
        Command::Show => Action::Show,
        Command::Register => Action::Register,
        Command::Deregister => Action::Deregister,
    };
    containers::act(&cli, action, overrides, json).await
}
