//! `logs` and `events`: every host's stream at once, each line prefixed by
//! its container's name (aligned; coloured on a terminal only), or JSON
//! lines; a host that fails is named on stderr and the others go on.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::HostOverride;
use dockstack::ops::streams::{self, EventsQuery, LogsQuery, Streamed};
use dockstack_proto as pb;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::args::Cli;
use super::{Invalid, connector, exit, load, selected};

/// ANSI colours of the name prefixes, as compose cycles them.
const COLOURS: [u8; 6] = [36, 33, 32, 35, 34, 31];

/// A `--since` as Unix seconds: an RFC 3339 time, or a duration back from
/// now (`90s`, `10m`, `1h30m`; a bare number is seconds).
pub fn since(text: &str) -> Result<i64, Invalid> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    match dockstack_types::health::duration_ns(text) {
        Some(ns) if ns >= 0 => {
            let back = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
            Ok(OffsetDateTime::now_utc()
                .unix_timestamp()
                .saturating_sub(back)
                .max(1))
        }
        _ => Err(Invalid(format!(
            "--since {text:?}: neither an RFC 3339 time (2026-12-07T08:00:00Z) nor a duration (90s, 10m, 1h30m)"
        ))),
    }
}

/// How each container's lines are prefixed.
struct Prefixes {
    width: usize,
    /// Each container's colour, by its place in the file; none when not on
    /// a terminal.
    colours: Option<std::collections::HashMap<String, u8>>,
}

impl Prefixes {
    fn new(names: &[String], colour: bool) -> Self {
        Prefixes {
            width: names.iter().map(String::len).max().unwrap_or(0),
            colours: colour.then(|| {
                names
                    .iter()
                    .zip(COLOURS.iter().cycle())
                    .map(|(n, c)| (n.clone(), *c))
                    .collect()
            }),
        }
    }

    fn of(&self, name: &str) -> String {
        let padded = format!("{name:<width$} |", width = self.width);
        match self.colours.as_ref().and_then(|c| c.get(name)) {
            Some(c) => format!("\x1b[{c}m{padded}\x1b[0m"),
            None => padded,
        }
    }
}

/// `logs`: the selected containers' output.
pub async fn logs(
    cli: &Cli,
    overrides: HostOverride,
    json: bool,
    query: LogsQuery,
    timestamps: bool,
) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    let prefixes = Prefixes::new(&names, !json && std::io::stdout().is_terminal());
    let rx = streams::logs(
        Arc::new(env),
        &containers,
        connector(cli)?,
        overrides,
        query,
    );
    let printed = print_all(rx, |host, item| {
        if json {
            Some(log_json(host, &item).to_string())
        } else if !item.note.is_empty() {
            eprintln!("dockstack: {} on {host}: {}", item.container, item.note);
            None
        } else {
            let time = if timestamps {
                format!("{} ", item.time)
            } else {
                String::new()
            };
            Some(format!(
                "{} {time}{}",
                prefixes.of(&item.container),
                item.line
            ))
        }
    });
    Ok(printed.await)
}

/// Prints what `render` makes of each item as it comes (nothing for
/// `None`), and names each host that failed; exit status 1 when one did.
async fn print_all<T>(
    mut rx: tokio::sync::mpsc::Receiver<Streamed<T>>,
    mut render: impl FnMut(&str, T) -> Option<String>,
) -> ExitCode {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    while let Some(s) = rx.recv().await {
        match s {
            Streamed::Item { host, item } => {
                let Some(line) = render(&host, item) else {
                    continue;
                };
                // A closed pipe (`| head`): nobody reads any more.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
            Streamed::Failed { host, message } => {
                failed = true;
                eprintln!("{}", super::host_failed(&host, &message));
            }
        }
    }
    exit::failed_if(failed)
}

fn log_json(host: &str, l: &pb::LogLine) -> serde_json::Value {
    if l.note.is_empty() {
        serde_json::json!({
            "host": host,
            "container": l.container,
            "stream": if l.stderr { "stderr" } else { "stdout" },
            "time": l.time,
            "line": l.line,
        })
    } else {
        serde_json::json!({"host": host, "container": l.container, "note": l.note})
    }
}

/// `events`: what happened to the selected containers.
pub async fn events(
    cli: &Cli,
    overrides: HostOverride,
    json: bool,
    query: EventsQuery,
) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    let width = containers.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let host_width = env.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let rx = streams::events(
        Arc::new(env),
        &containers,
        connector(cli)?,
        overrides,
        query,
    );
    let printed = print_all(rx, |host, e| {
        Some(if json {
            serde_json::json!({
                "time": e.time, "host": host, "container": e.container,
                "kind": e.kind, "detail": e.detail,
            })
            .to_string()
        } else {
            format!(
                "{} {host:<host_width$} {:<width$} {} {}",
                e.time, e.container, e.kind, e.detail
            )
        })
    });
    Ok(printed.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back() {
        assert_eq!(since("2026-12-07T08:00:01Z").unwrap(), 1_796_630_401);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let back = since("10m").unwrap();
        assert!((now - 600 - back).abs() <= 2, "{back} vs {now}");
        assert!((now - 90 - since("90").unwrap()).abs() <= 2);
        assert!(
            since("yesterday")
                .unwrap_err()
                .0
                .contains("--since \"yesterday\"")
        );
    }

    #[test]
    fn prefixes_are_aligned_and_coloured_only_when_asked() {
        let names = ["a".to_string(), "web10".to_string()];
        let plain = Prefixes::new(&names, false);
        assert_eq!(plain.of("a"), "a     |");
        let coloured = Prefixes::new(&names, true);
        assert_eq!(coloured.of("web10"), "\x1b[33mweb10 |\x1b[0m");
    }
}
