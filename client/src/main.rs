//! `dockstack`: reads environment.yaml and drives run / destroy / start /
//! stop on the right container hosts, in the 2015 client's form.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use dockstack::certs;
use dockstack::connect::{Connector, Security};
use dockstack::environment::{self, Container, Environment};
use dockstack::ops::{self, Action, HostOverride, Outcome, plan};
use dockstack::progress::{LinePrinter, LivePrinter, Printer};
use std::io::IsTerminal;

/// Exit codes scripts can rely on.
mod exit {
    /// Something the user asked for failed (a container, a host).
    pub const FAILED: u8 = 1;
    /// The command line or the environment file is wrong; nothing was done.
    pub const INVALID: u8 = 2;
    /// `plan`: the hosts differ from the file.
    pub const PENDING: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "dockstack",
    version,
    about = "Run containers with fixed IP addresses across container hosts",
    after_help = "Exit status: 0 success, 1 an operation failed, 2 invalid command line or environment file, 3 (plan) changes pending."
)]
struct Cli {
    /// The environment file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "environment.yaml"
    )]
    file: PathBuf,
    /// Only this container (default: every container of the file).
    #[arg(short = 'c', long = "container", global = true)]
    container: Option<String>,
    /// The property `get` prints.
    #[arg(short = 'p', long = "property", global = true)]
    property: Option<String>,
    /// Directory with ca.pem and the client certificates (client.pem and client.key, or those of --as).
    #[arg(long, global = true, env = "DOCKSTACK_TLS_DIR", default_value = certs::DEFAULT_TLS_DIR)]
    tls_dir: PathBuf,
    /// Present the client certificate NAME.pem (and NAME.key) of the TLS directory.
    #[arg(
        long = "as",
        global = true,
        env = "DOCKSTACK_AS",
        value_name = "NAME",
        default_value = certs::DEFAULT_CLIENT
    )]
    as_name: String,
    /// Talk plaintext to servers started with --insecure.
    #[arg(long, global = true)]
    insecure: bool,
    /// Send every request to this address instead of the file's host ip.
    #[arg(long, global = true)]
    hostip: Option<String>,
    /// Send every request to this port instead of the file's host port.
    #[arg(long, global = true)]
    hostport: Option<u16>,
    /// Containers handled at once on each host.
    #[arg(long, short = 'j', global = true, default_value_t = 4)]
    jobs: usize,
    /// Seconds to wait for a host to accept a connection.
    #[arg(long, global = true, default_value_t = 5)]
    connect_timeout: u64,
    /// Seconds one call to a server may take (default: 30 for show, list
    /// and status, 900 for operations, whose hooks may run long).
    #[arg(long, global = true)]
    timeout: Option<u64>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: OutputFormat,
    #[command(subcommand)]
    action: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create, start and plug containers (precreation and postcreation hooks run).
    Run,
    /// Stop, unplug and remove containers (postdestroy hooks run).
    Destroy,
    /// Start stopped containers and plug them again.
    Start,
    /// Unplug and stop containers.
    Stop,
    /// Show containers as their hosts see them.
    Show,
    /// Put containers in DNS and Puppet's files again, as run does (a repair: no cert clean, no agent).
    Register,
    /// Take containers out of DNS and Puppet's files, as destroy does, leaving them be.
    Deregister,
    /// List the containers of the environment file (no host is asked).
    List,
    /// Print one property (-p) of containers from the environment file.
    Get,
    /// A live table of every container across all hosts.
    Status,
    /// Every address the hosts' managed containers hold: address, container, host, MAC, state, file.
    Addresses,
    /// What apply would change on every host to match the file; changes nothing.
    /// Exit status 0: the hosts match the file; 3: changes are pending.
    Plan,
    /// Make every host match the file: create, recreate (same address and MAC),
    /// start, stop; step by step, each step healthy before the next.
    Apply {
        /// Apply without asking (needed when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// Also destroy orphans: managed containers the file no longer names.
        #[arg(long)]
        prune: bool,
        /// Refuse unless the hosts still give this plan id (from `plan`).
        #[arg(long, value_name = "ID")]
        plan_id: Option<String>,
    },
    /// Make, renew, revoke and list the cluster's TLS certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), made from these very definitions.
    #[command(hide = true)]
    Manpage,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// A CA, a server certificate per container host, the admin client certificate (client.pem) and an empty crl.pem.
    Init {
        #[arg(long)]
        force: bool,
    },
    /// A server certificate for one more host of the environment file.
    AddHost {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// A client certificate NAME.pem / NAME.key with a role, signed by the CA (use it with --as NAME).
    AddClient {
        /// Letters, digits, '_', '.' and '-'; its common name too.
        name: String,
        #[arg(long, value_enum)]
        role: certs::Role,
        /// How long it is valid.
        #[arg(long, default_value_t = certs::CLIENT_VALIDITY_DAYS, value_parser = days())]
        days: u32,
        /// Replace an existing client certificate of that name.
        #[arg(long)]
        force: bool,
    },
    /// Add client certificate NAME.pem to crl.pem, the list every server refuses.
    Revoke { name: String },
    /// A new key and certificate for client NAME, same name and role.
    Renew {
        name: String,
        #[arg(long, default_value_t = certs::CLIENT_VALIDITY_DAYS, value_parser = days())]
        days: u32,
        /// Give it this role instead (needed if the old one has none).
        #[arg(long, value_enum)]
        role: Option<certs::Role>,
    },
    /// The client certificates of the TLS directory: role, expiry, revoked.
    List,
}

/// A client certificate's lifetime: a day to the CA's ten years.
fn days() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=3650)
}

/// Bad input: the command line or the environment file. Nothing was done;
/// the exit status is 2.
#[derive(Debug)]
struct Invalid(String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn load(cli: &Cli) -> Result<Environment> {
    environment::load(&cli.file).map_err(|e| Invalid(e.to_string()).into())
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
    if let Some(secs) = cli.timeout {
        ops::set_deadline(Duration::from_secs(secs));
    }
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
    .map_err(|e| Invalid(e.to_string()).into())
}

fn property(env: &Environment, c: &Container, p: &str) -> Option<String> {
    let list = |v: &[String]| v.join(" ");
    Some(match p {
        "name" => c.name.clone(),
        "image" => c.image.clone(),
        "ip" => c.ip.to_string(),
        "mask" => c.mask.to_string(),
        "gateway" => c.gateway.map(|g| g.to_string()).unwrap_or_default(),
        // The address alone, as `ip` is; its prefix length is `prefix6`.
        "ip6" => c.ip6.map(|n| n.ip().to_string()).unwrap_or_default(),
        "prefix6" => c.ip6.map(|n| n.prefix().to_string()).unwrap_or_default(),
        "gateway6" => c.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        "dns" => c
            .dns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        "domain" => c.domain.clone().unwrap_or_default(),
        "fqdn" => c.fqdn(),
        "bridge" => c.bridge.clone(),
        "host" => c.host.clone(),
        "hostip" => env.host(&c.host).map(|h| h.ip.clone()).unwrap_or_default(),
        "hostport" => env
            .host(&c.host)
            .map(|h| h.port.to_string())
            .unwrap_or_default(),
        "volumes" => list(&c.volumes),
        "state" => c.state.to_string(),
        "mac" => c.effective_mac().to_string(),
        "mtu" => c.mtu.map(|m| m.to_string()).unwrap_or_default(),
        "vlan" => c.vlan.map(|v| v.to_string()).unwrap_or_default(),
        "service" => c.service.clone().unwrap_or_default(),
        "restart" => c.restart.map(|r| r.to_string()).unwrap_or_default(),
        "precreation" => c.precreation.join("\n"),
        "postcreation" => c.postcreation.join("\n"),
        "postdestroy" => c.postdestroy.join("\n"),
        _ => return None,
    })
}

/// How `show` names a container's network: its sandbox, or that it is
/// plugged directly (made before sandboxes).
fn network_shown(i: &dockstack_proto::ContainerInfo) -> String {
    match i.network.as_str() {
        "sandbox" => format!("sandbox {} ({})", i.sandbox, i.sandbox_state),
        "direct" => "direct (made before sandboxes: plugged after each start)".into(),
        other => other.to_string(),
    }
}

/// What `status` says of a pair that is not as it should be.
fn status_note(i: &dockstack_proto::ContainerInfo) -> String {
    let network: String = match (i.network.as_str(), i.sandbox_state.as_str()) {
        ("direct", _) => "direct (no sandbox)".into(),
        ("sandbox", "missing") => "sandbox missing".into(),
        ("sandbox", "running") => String::new(),
        ("sandbox", s) if i.state == "running" => format!("sandbox {s}"),
        _ => String::new(),
    };
    // Docker's health, when the container has a healthcheck.
    [i.health.as_str(), network.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn info_json(i: &dockstack_proto::ContainerInfo) -> serde_json::Value {
    serde_json::json!({
        "name": i.name, "id": i.id, "image": i.image, "host": i.host, "state": i.state,
        "pid": i.pid, "ip": i.ip, "gateway": i.gateway, "ip6": i.ip6, "gateway6": i.gateway6,
        "actual_addresses": i.actual_addresses,
        "mac": i.mac, "bridge": i.bridge, "port": i.port, "plugged": i.plugged,
        "started_at": i.started_at, "network": i.network, "sandbox": i.sandbox,
        "sandbox_state": i.sandbox_state, "health": i.health, "exit_code": i.exit_code,
        "environment": i.environment,
    })
}

fn summarize(outcomes: &[Outcome], action: Action, json: bool) -> ExitCode {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if json {
        let items: Vec<_> = outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(Some(i)) => serde_json::json!({"container": o.container, "host": o.host, "ok": true, "info": info_json(i)}),
                Ok(None) => serde_json::json!({"container": o.container, "host": o.host, "ok": true}),
                Err(e) => {
                    let mut item = serde_json::json!({"container": o.container, "host": o.host, "ok": false, "error": e.message});
                    if let Some(code) = e.code {
                        item["code"] = serde_json::json!(format!("{code:?}"));
                    }
                    item
                }
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for o in outcomes {
            match &o.result {
                Ok(Some(i)) => println!(
                    "{:<16} {:<12} {:<18} {:<10} {}",
                    o.container,
                    o.host,
                    i.ip,
                    i.state,
                    if i.plugged { "plugged" } else { "unplugged" }
                ),
                Ok(None) => println!("{:<16} {:<12} {}", o.container, o.host, action.name()),
                Err(_) => {}
            }
        }
        for o in &failed {
            if let Err(e) = &o.result {
                eprintln!("FAILED {} on {}: {e}", o.container, o.host);
            }
        }
        eprintln!(
            "{}: {} succeeded, {} failed",
            action.name(),
            outcomes.len() - failed.len(),
            failed.len()
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    }
}

fn uptime(started_at: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
    else {
        return "-".into();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn certs_command(cli: &Cli, command: &CertsCommand) -> Result<ExitCode> {
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

/// How long `run` and `start` wait for a host's addresses.
const ADDRESS_CHECK_WAIT: Duration = Duration::from_secs(2);

/// Prints `plan`, text or JSON; the hosts that could not be asked go to
/// stderr.
fn print_plan(plan: &plan::Plan, json: bool, only_changes: bool) {
    if json {
        println!("{}", plan.to_json());
    } else {
        for p in &plan.items {
            if !only_changes || p.change != plan::Change::Unchanged {
                println!("{}", p.line());
            }
        }
        println!("{}", plan.summary_line());
    }
    for (h, e) in &plan.failed {
        eprintln!("FAILED host {h}: {e}");
    }
}

async fn addresses_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let connector = connector(cli)?;
    let (infos, failed) = ops::list_all(Arc::new(env), connector, overrides).await;
    let table = ops::addresses::table(&infos);
    if json {
        let rows: Vec<_> = table
            .iter()
            .map(|h| serde_json::json!({"address": h.address.to_string(), "container": h.container, "host": h.host, "mac": h.mac, "state": h.state, "environment": h.environment}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!(
            "{:<16} {:<20} {:<12} {:<18} {:<10} FILE",
            "ADDRESS", "CONTAINER", "HOST", "MAC", "STATE"
        );
        for h in &table {
            println!(
                "{:<16} {:<20} {:<12} {:<18} {:<10} {}",
                h.address.to_string(),
                h.container,
                h.host,
                h.mac,
                h.state,
                h.environment
            );
        }
    }
    for (h, e) in &failed {
        eprintln!("FAILED host {h}: {e}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    })
}

async fn plan_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let connector = connector(cli)?;
    let plan = plan::plan(Arc::new(env), connector, overrides).await;
    print_plan(&plan, json, false);
    Ok(ExitCode::from(if !plan.failed.is_empty() {
        exit::FAILED
    } else if plan.pending().next().is_some() {
        exit::PENDING
    } else {
        0
    }))
}

async fn apply_command(
    cli: &Cli,
    overrides: HostOverride,
    json: bool,
    yes: bool,
    prune: bool,
    plan_id: Option<&str>,
) -> Result<ExitCode> {
    // Refused before any host is asked: nothing could be confirmed.
    if !yes && !std::io::stdin().is_terminal() {
        return Err(Invalid(
            "apply: stdin is no terminal to confirm on: give --yes to apply without asking".into(),
        )
        .into());
    }
    let env = Arc::new(load(cli)?);
    let connector = connector(cli)?;
    let plan = plan::plan(Arc::clone(&env), connector.clone(), overrides.clone()).await;
    print_plan(&plan, json, true);
    if !plan.failed.is_empty() {
        eprintln!("apply: not every host answered; nothing was changed");
        return Ok(ExitCode::from(exit::FAILED));
    }
    if let Some(id) = plan_id
        && id != plan.id
    {
        eprintln!(
            "apply: plan {id} is stale: the hosts now give plan {}; nothing was changed (run plan again)",
            plan.id
        );
        return Ok(ExitCode::from(exit::FAILED));
    }
    let actionable = plan
        .pending()
        .filter(|p| prune || p.change != plan::Change::Orphan)
        .count();
    if actionable == 0 {
        eprintln!("apply: nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        eprint!("apply these {actionable} changes? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("apply: not confirmed; nothing was changed");
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    let width = env
        .containers
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(8);
    let printer: Arc<dyn Printer> = Arc::new(LinePrinter {
        width,
        to_stderr: json,
    });
    let (applied, result) = plan::apply(env, connector, overrides, &plan, prune, printer).await;
    for name in &applied.left {
        eprintln!("apply: orphan {name} left in place (--prune removes it)");
    }
    if json {
        let done: Vec<_> = applied
            .done
            .iter()
            .map(|(c, v)| serde_json::json!({"container": c, "action": v}))
            .collect();
        let error = result.as_ref().err().map(ToString::to_string);
        println!(
            "{}",
            serde_json::json!({"plan_id": plan.id, "done": done, "error": error})
        );
    }
    match result {
        Ok(()) => {
            eprintln!("apply: {} changes made", applied.done.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("FAILED apply: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
    }
}

async fn real_main(cli: Cli) -> Result<ExitCode> {
    let json = cli.output == OutputFormat::Json;
    let overrides = HostOverride {
        ip: cli.hostip.clone(),
        port: cli.hostport,
    };
    let action = match &cli.action {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "dockstack",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Manpage => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Certs { command } => return certs_command(&cli, command),
        Command::List => {
            let env = load(&cli)?;
            let containers = selected(&cli, &env)?;
            if json {
                let items: Vec<_> = containers
                    .iter()
                    .map(|c| serde_json::json!({"name": c.name, "host": c.host, "ip": c.ip.to_string(), "mask": c.mask, "ip6": c.ip6.map(|n| n.to_string()), "image": c.image, "state": c.state}))
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                use std::io::Write;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for c in &containers {
                    writeln!(
                        out,
                        "{:<16} {:<12} {:<18} {}",
                        c.name,
                        c.host,
                        format!("{}/{}", c.ip, c.mask),
                        c.image
                    )?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Get => {
            let env = load(&cli)?;
            let containers = selected(&cli, &env)?;
            let Some(p) = &cli.property else {
                eprintln!("dockstack: get needs -p PROPERTY");
                return Ok(ExitCode::from(exit::INVALID));
            };
            for c in &containers {
                let Some(v) = property(&env, c, p) else {
                    eprintln!("dockstack: unknown property {p}");
                    return Ok(ExitCode::from(exit::INVALID));
                };
                if containers.len() == 1 {
                    println!("{v}");
                } else {
                    println!("{} {v}", c.name);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Status => {
            let env = load(&cli)?;
            let connector = connector(&cli)?;
            let (infos, failed) = ops::list_all(Arc::new(env.clone()), connector, overrides).await;
            if json {
                let items: Vec<_> = infos.iter().map(info_json).collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                // The IPv6 column only for a file that has dual-stack containers.
                let v6 = env.containers.iter().any(|c| c.ip6.is_some());
                let ip6_of = |c: &Container| {
                    if v6 {
                        let ip6 = c.ip6.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                        format!(" {ip6:<28}")
                    } else {
                        String::new()
                    }
                };
                println!(
                    "{:<16} {:<12} {:<24} {:<18}{} {:<10} {:<8} {:<10} NOTE",
                    "NAME",
                    "HOST",
                    "IMAGE",
                    "IP",
                    if v6 {
                        format!(" {:<28}", "IP6")
                    } else {
                        String::new()
                    },
                    "STATE",
                    "PLUGGED",
                    "UPTIME"
                );
                for c in &env.containers {
                    let info = infos.iter().find(|i| i.name == c.name);
                    let (state, plugged, up, note) = match info {
                        Some(i) => (
                            i.state.clone(),
                            if i.plugged { "yes" } else { "no" },
                            uptime(&i.started_at),
                            status_note(i),
                        ),
                        None if failed.iter().any(|(h, _)| *h == c.host) => {
                            ("unknown".into(), "-", "-".into(), String::new())
                        }
                        None => ("absent".into(), "-", "-".into(), String::new()),
                    };
                    println!(
                        "{:<16} {:<12} {:<24} {:<18}{} {:<10} {:<8} {:<10} {}",
                        c.name,
                        c.host,
                        c.image,
                        format!("{}/{}", c.ip, c.mask),
                        ip6_of(c),
                        state,
                        plugged,
                        up,
                        note
                    );
                }
            }
            for (h, e) in &failed {
                eprintln!("FAILED host {h}: {e}");
            }
            return Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::FAILED)
            });
        }
        Command::Plan => return plan_command(&cli, overrides, json).await,
        Command::Addresses => return addresses_command(&cli, overrides, json).await,
        Command::Apply {
            yes,
            prune,
            plan_id,
        } => return apply_command(&cli, overrides, json, *yes, *prune, plan_id.as_deref()).await,
        Command::Run => Action::Run,
        Command::Destroy => Action::Destroy,
        Command::Start => Action::Start,
        Command::Stop => Action::Stop,
        Command::Show => Action::Show,
        Command::Register => Action::Register,
        Command::Deregister => Action::Deregister,
    };
    let env = load(&cli)?;
    let containers = selected(&cli, &env)?;
    let connector = connector(&cli)?;
    if matches!(action, Action::Run | Action::Start) {
        // Before any address is plugged: one parallel round trip to every
        // host for the addresses their managed containers hold. A host that
        // does not answer soon is not waited for (its own containers fail
        // on their own; the wire probe still guards its addresses), so it
        // holds up no other host's containers.
        let (clashes, late) = ops::addresses::check(
            &env,
            &containers,
            connector.clone(),
            overrides.clone(),
            ADDRESS_CHECK_WAIT,
        )
        .await;
        for (host, why) in &late {
            eprintln!(
                "dockstack: warning: host {host} was not asked for the addresses it holds ({why}); they are not checked"
            );
        }
        if !clashes.is_empty() {
            for c in &clashes {
                eprintln!("FAILED {}: {c}", c.wanted_by);
            }
            eprintln!("{}: nothing was done", action.name());
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    let width = containers.iter().map(|c| c.name.len()).max().unwrap_or(8);
    let live = std::io::stderr().is_terminal() && !json && action != Action::Show;
    let printer: Arc<dyn Printer> = if live {
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        Arc::new(LivePrinter::new(&names))
    } else {
        Arc::new(LinePrinter {
            width,
            to_stderr: json,
        })
    };
    let outcomes = ops::apply(
        Arc::new(env),
        containers,
        action,
        connector,
        overrides,
        cli.jobs,
        printer,
    )
    .await;
    if action == Action::Show && !json {
        for o in &outcomes {
            if let Ok(Some(i)) = &o.result {
                println!("{}:", i.name);
                for (k, v) in [
                    ("host", i.host.clone()),
                    ("id", i.id.chars().take(12).collect()),
                    ("image", i.image.clone()),
                    ("state", i.state.clone()),
                    ("pid", i.pid.to_string()),
                    ("ip", i.ip.clone()),
                    ("eth0", i.actual_addresses.join(" ")),
                    ("gateway", i.gateway.clone()),
                    ("ip6", i.ip6.clone()),
                    ("gateway6", i.gateway6.clone()),
                    ("mac", i.mac.clone()),
                    ("bridge", i.bridge.clone()),
                    ("port", i.port.clone()),
                    ("plugged", i.plugged.to_string()),
                    ("started", i.started_at.clone()),
                    ("network", network_shown(i)),
                ] {
                    if v.is_empty() && k.ends_with('6') {
                        continue;
                    }
                    println!("  {k:<8} {v}");
                }
            }
        }
        let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
        for o in &failed {
            if let Err(e) = &o.result {
                eprintln!("FAILED {} on {}: {e}", o.container, o.host);
            }
        }
        return Ok(if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::FAILED)
        });
    }
    Ok(summarize(&outcomes, action, json))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(real_main(cli)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dockstack").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_2015_form_parses() {
        let cli = parse(&["-f", "env.yaml", "-c", "haproxy1", "run"]).unwrap();
        assert_eq!(cli.file, PathBuf::from("env.yaml"));
        assert_eq!(cli.container.as_deref(), Some("haproxy1"));
        assert!(matches!(cli.action, Command::Run));
        let cli = parse(&["-c", "haproxy1", "-p", "ip", "get"]).unwrap();
        assert_eq!(cli.property.as_deref(), Some("ip"));
        assert!(matches!(cli.action, Command::Get));
        let cli = parse(&["--hostip", "10.0.0.9", "--hostport", "4000", "destroy"]).unwrap();
        assert_eq!(cli.hostip.as_deref(), Some("10.0.0.9"));
        assert_eq!(cli.hostport, Some(4000));
    }

    #[test]
    fn defaults_and_options_after_the_action() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.file, PathBuf::from("environment.yaml"));
        assert_eq!(cli.jobs, 4);
        assert_eq!(cli.connect_timeout, 5);
        assert!(!cli.insecure);
        let cli = parse(&["show", "-c", "web1", "--output", "json", "--jobs", "8"]).unwrap();
        assert!(cli.output == OutputFormat::Json);
        assert_eq!(cli.jobs, 8);
        let cli = parse(&["certs", "add-host", "host3", "--force"]).unwrap();
        assert!(matches!(
            cli.action,
            Command::Certs {
                command: CertsCommand::AddHost { ref name, force: true }
            } if name == "host3"
        ));
    }

    #[test]
    fn certs_subcommands_and_as() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.as_name, "client");
        let cli = parse(&["--as", "alice", "status"]).unwrap();
        assert_eq!(cli.as_name, "alice");
        let cli = parse(&["run", "--as", "ops"]).unwrap();
        assert_eq!(cli.as_name, "ops");
        let cli = parse(&["certs", "add-client", "alice", "--role", "viewer"]).unwrap();
        assert!(matches!(
            cli.action,
            Command::Certs {
                command: CertsCommand::AddClient { ref name, role: certs::Role::Viewer, days: 365, force: false }
            } if name == "alice"
        ));
        let cli = parse(&[
            "certs",
            "add-client",
            "ci",
            "--role",
            "operator",
            "--days",
            "30",
            "--force",
        ])
        .unwrap();
        assert!(matches!(
            cli.action,
            Command::Certs {
                command: CertsCommand::AddClient {
                    role: certs::Role::Operator,
                    days: 30,
                    force: true,
                    ..
                }
            }
        ));
        // The role is required, and one of three; days are a day to ten years.
        assert!(parse(&["certs", "add-client", "alice"]).is_err());
        assert!(parse(&["certs", "add-client", "alice", "--role", "root"]).is_err());
        assert!(parse(&["certs", "add-client", "a", "--role", "admin", "--days", "0"]).is_err());
        assert!(parse(&["certs", "renew", "a", "--days", "3651"]).is_err());
        let cli = parse(&["certs", "renew", "client"]).unwrap();
        assert!(matches!(
            cli.action,
            Command::Certs {
                command: CertsCommand::Renew { ref name, days: 365, role: None }
            } if name == "client"
        ));
        let cli = parse(&["certs", "revoke", "alice"]).unwrap();
        assert!(matches!(
            cli.action,
            Command::Certs { command: CertsCommand::Revoke { ref name } } if name == "alice"
        ));
        assert!(parse(&["certs", "revoke"]).is_err());
        assert!(matches!(
            parse(&["certs", "list"]).unwrap().action,
            Command::Certs {
                command: CertsCommand::List
            }
        ));
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(parse(&["launch"]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&["--output", "xml", "list"]).is_err());
        assert!(parse(&["--hostport", "99999", "run"]).is_err());
        assert!(parse(&["completions", "klingon"]).is_err());
    }
}
