//! The command line: global options, the commands and the certs subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use dockstack::certs;
use dockstack::environment::HostAddress;

#[derive(Parser)]
#[command(
    name = "dockstack",
    version,
    about = "Run containers with fixed IP addresses across container hosts",
    after_help = "Exit status: 0 success, 1 an operation failed, 2 invalid command line or environment file, 3 (plan) changes pending, 4 another holds the change lock of a host (nothing was done)."
)]
pub struct Cli {
    /// The environment file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "environment.yaml"
    )]
    pub file: PathBuf,
    /// Only this container (default: every container of the file).
    #[arg(short = 'c', long = "container", global = true)]
    pub container: Option<String>,
    /// The property `get` prints.
    #[arg(short = 'p', long = "property", global = true)]
    pub property: Option<String>,
    /// Directory with ca.pem and the client certificates (client.pem and client.key, or those of --as).
    #[arg(long, global = true, env = "DOCKSTACK_TLS_DIR", default_value = certs::DEFAULT_TLS_DIR)]
    pub tls_dir: PathBuf,
    /// Present the client certificate NAME.pem (and NAME.key) of the TLS directory.
    #[arg(
        long = "as",
        global = true,
        env = "DOCKSTACK_AS",
        value_name = "NAME",
        default_value = certs::DEFAULT_CLIENT
    )]
    pub as_name: String,
    /// Talk plaintext to servers started with --insecure.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Send every request to this address instead of the file's host ip.
    #[arg(long, global = true)]
    pub hostip: Option<HostAddress>,
    /// Send every request to this port instead of the file's host port.
    #[arg(long, global = true)]
    pub hostport: Option<u16>,
    /// Containers handled at once on each host.
    #[arg(long, short = 'j', global = true, default_value_t = 4)]
    pub jobs: usize,
    /// Seconds to wait for a host to accept a connection.
    #[arg(long, global = true, default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds one call to a server may take (default: 30 for show, list
    /// and status, 900 for operations, whose hooks may run long).
    #[arg(long, global = true)]
    pub timeout: Option<u64>,
    /// A change (run, destroy, start, stop, restart, register, deregister,
    /// apply) finding a host locked by another waits up to SECONDS for it,
    /// instead of giving up at once with exit status 4.
    #[arg(long, global = true, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// The cluster's etcd (its client URLs, comma-separated), instead of
    /// the file's `cluster.etcd`: the change lock and the address
    /// reservations are kept there.
    #[arg(long, global = true, value_name = "URLS", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// With --etcd: mutual TLS to it, instead of the file's `cluster.tls`:
    /// the CA that signed etcd's certificates (with --etcd-cert and
    /// --etcd-key).
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// With --etcd-ca: this operator's certificate for etcd.
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// With --etcd-ca: the key of --etcd-cert.
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub action: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create, start and plug containers (precreation and postcreation hooks run).
    Run,
    /// Stop, unplug and remove containers (postdestroy hooks run).
    Destroy,
    /// Start stopped containers and plug them again.
    Start,
    /// Unplug and stop containers.
    Stop,
    /// Restart running containers gracefully in their sandboxes (prestop,
    /// stop signal, grace period; the address stays); the members of one
    /// service one at a time, each healthy before the next.
    Restart,
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
    Status {
        /// Keep the table on screen, refreshed in place, each change marked
        /// (on a terminal; otherwise a table per change); q or Ctrl-C ends it.
        #[arg(long)]
        watch: bool,
    },
    /// What the containers print, from every host at once, each line
    /// prefixed by its container's name (-f after the command: follow).
    Logs {
        /// Go on with what they print next, across their restarts, until
        /// interrupted (-f after the command).
        #[arg(long)]
        follow: bool,
        /// Only lines since this time: RFC 3339 (2026-12-07T08:00:00Z) or a
        /// duration back from now (90s, 10m, 1h30m).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only the last N lines of each container (before following).
        #[arg(long, value_name = "N")]
        tail: Option<u32>,
        /// Show when each line was logged.
        #[arg(long)]
        timestamps: bool,
    },
    /// Run a command in a running container (-c NAME), on its host; its exit
    /// status is dockstack's. Needs the policy's exec right (an admin's by default).
    Exec {
        /// Pass stdin to the command.
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the command a terminal (raw mode here, this window's size).
        #[arg(short = 't', long)]
        tty: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// What happened to the containers on every host, with time and host:
    /// Docker's start, die and health events, dockstack's plugs, re-plugs and
    /// refusals (-f after the command: follow).
    Events {
        /// Go on with what happens next, until interrupted (-f after the command).
        #[arg(long)]
        follow: bool,
        /// Events since this time (RFC 3339, or a duration back from now);
        /// default: the last hour.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
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
    /// Who holds the change lock of each host of the file: holder, action,
    /// file, since when; with etcd, the cluster's etcd lock too.
    Lock,
    /// Break the change lock of the file's hosts (or --host's), whoever
    /// holds it: the admin role only, logged as an audit line by each server.
    /// Without --host, with etcd, the cluster's etcd lock too, recorded in
    /// etcd under PREFIX/audit/.
    Unlock {
        /// Required: breaking another's lock lets two changes run at once
        /// if its holder is still alive (its further changes are refused).
        #[arg(long, required = true)]
        force: bool,
        /// Only this host of the file.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Make, renew, revoke and list the cluster's TLS certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Print shell completions (bash, zsh and fish complete -c with the
    /// file's container names).
    Completions { shell: clap_complete::Shell },
    /// The container names of the file, one a line (for the completions).
    #[command(hide = true)]
    CompleteContainers,
    /// Print the manual page (roff), made from these very definitions.
    #[command(hide = true)]
    Manpage,
}

#[derive(Subcommand)]
pub enum CertsCommand {
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
        #[arg(long, value_parser = certs::role_parser())]
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
        #[arg(long, value_parser = certs::role_parser())]
        role: Option<certs::Role>,
    },
    /// The client certificates of the TLS directory: role, expiry, revoked.
    List,
}

/// The command line, with `-f` after `logs` or `events` taken as
/// `--follow` (as `docker compose logs -f` has it): the file's `-f` goes
/// before those commands.
pub fn parse() -> Cli {
    Cli::parse_from(follow_flag(std::env::args_os().collect()))
}

/// `args` with each `-f` after a `logs` or `events` command word made
/// `--follow`. The command word is the first argument that is neither an
/// option nor the value of one.
pub fn follow_flag(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let command = Cli::command();
    let takes_value = |word: &str| {
        command.get_arguments().any(|a| {
            a.get_action().takes_values()
                && (a.get_long().is_some_and(|l| word == format!("--{l}"))
                    || a.get_short().is_some_and(|s| word == format!("-{s}")))
        })
    };
    let mut i = 1;
    while i < args.len() {
        let word = args[i].to_string_lossy().into_owned();
        if word == "--" {
            return args;
        }
        if word.starts_with('-') {
            i += if takes_value(&word) { 2 } else { 1 };
            continue;
        }
        if word == "logs" || word == "events" {
            for a in &mut args[i + 1..] {
                if a == "--" {
                    break;
                }
                if a == "-f" {
                    *a = "--follow".into();
                }
            }
        }
        return args;
    }
    args
}

/// A client certificate's lifetime: a day to the CA's ten years.
fn days() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=3650)
}

#[cfg(test)]
mod tests;
