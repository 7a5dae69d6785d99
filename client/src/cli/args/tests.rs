//! The command line parses as the 2015 client's did, and refuses mistakes.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use dockstack::certs;

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
    assert_eq!(
        cli.hostip.map(|h| h.to_string()).as_deref(),
        Some("10.0.0.9")
    );
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

#[test]
fn dash_f_after_logs_or_events_follows_and_before_them_names_the_file() {
    let args = |a: &[&str]| {
        let v: Vec<std::ffi::OsString> = std::iter::once("dockstack")
            .chain(a.iter().copied())
            .map(Into::into)
            .collect();
        Cli::try_parse_from(follow_flag(v)).unwrap()
    };
    let cli = args(&["-f", "env.yaml", "-c", "web1", "logs", "-f", "--tail", "3"]);
    assert_eq!(cli.file, PathBuf::from("env.yaml"));
    assert!(matches!(
        cli.action,
        Command::Logs {
            follow: true,
            tail: Some(3),
            ..
        }
    ));
    let cli = args(&["--as", "logs", "events", "-f"]);
    assert_eq!(cli.as_name, "logs");
    assert!(matches!(cli.action, Command::Events { follow: true, .. }));
    // Only after those commands, and not in a command's words.
    let cli = args(&["-f", "x.yaml", "run"]);
    assert_eq!(cli.file, PathBuf::from("x.yaml"));
    let cli = args(&["-c", "web1", "exec", "--", "grep", "-f", "logs"]);
    match cli.action {
        Command::Exec { command, .. } => assert_eq!(command, ["grep", "-f", "logs"]),
        _ => panic!("not exec"),
    }
}

#[test]
fn the_etcd_flags_replace_the_files_etcd_and_tls_together() {
    let flags = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("lock");
        crate::cli::etcd_flags(&parse(&all).unwrap(), None)
    };
    assert!(flags(&[]).unwrap().is_none());
    let c = flags(&[
        "--etcd",
        "https://10.0.0.1:2379,https://10.0.0.2:2379",
        "--etcd-ca",
        "/e/ca.pem",
        "--etcd-cert",
        "/e/me.pem",
        "--etcd-key",
        "/e/me.key",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c.etcd.len(), 2);
    assert_eq!(c.prefix, dockstack::environment::DEFAULT_CLUSTER_PREFIX);
    assert_eq!(c.tls.unwrap().key, PathBuf::from("/e/me.key"));
    let refused = |args: &[&str]| flags(args).unwrap_err().to_string();
    assert!(refused(&["--etcd", "https://10.0.0.1:2379"]).contains("needs --etcd-ca"));
    assert!(refused(&["--etcd", "10.0.0.1:2379"]).contains("is no etcd URL"));
    assert!(refused(&["--etcd-ca", "/e/ca.pem"]).contains("go together, with --etcd"));
}
