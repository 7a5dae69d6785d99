//! `status --watch`: the status table asked for again every
//! [`REFRESH`], redrawn in place on a terminal with each container whose
//! state, health, plug or start changed lately marked `*`; elsewhere a
//! table each time something changed. `q` or Ctrl-C ends it.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use dockstack::ops::{self, HostOverride};
use dockstack_proto as pb;
use tokio::sync::mpsc;

use super::args::Cli;
use super::terminal::RawMode;
use super::{connector, load, render};

/// How often the hosts are asked: a change shows within this and a round
/// trip.
const REFRESH: Duration = Duration::from_millis(700);
/// How long a changed container stays marked.
const MARKED: Duration = Duration::from_secs(10);

/// What of a container counts as a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: i32,
    health: String,
    plugged: bool,
    started_at: String,
}

impl From<&pb::ContainerInfo> for Seen {
    fn from(i: &pb::ContainerInfo) -> Self {
        Seen {
            state: i.state,
            health: i.health.clone(),
            plugged: i.plugged,
            started_at: i.started_at.clone(),
        }
    }
}

/// Reads keys on a thread of its own: a read blocks, and the process may
/// end while it waits.
fn keys() -> mpsc::Receiver<u8> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while let Ok(1) = std::io::stdin().read(&mut byte) {
            if tx.blocking_send(byte[0]).is_err() {
                return;
            }
        }
    });
    rx
}

pub async fn watch(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = Arc::new(load(cli)?);
    let connector = connector(cli)?;
    let terminal = std::io::stdout().is_terminal() && !json;
    let _keys_mode = (terminal && std::io::stdin().is_terminal())
        .then(RawMode::keys)
        .flatten();
    let mut keys = if _keys_mode.is_some() {
        keys()
    } else {
        mpsc::channel(1).1
    };
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut changed: HashMap<String, Instant> = HashMap::new();
    let mut first = true;
    loop {
        let (infos, failed) =
            ops::list_all(Arc::clone(&env), connector.clone(), overrides.clone()).await;
        let mut any = first;
        for i in &infos {
            let now = Seen::from(i);
            if seen.get(&i.name).is_some_and(|was| *was != now) {
                changed.insert(i.name.clone(), Instant::now());
                any = true;
            }
            seen.insert(i.name.clone(), now);
        }
        first = false;
        let failed_hosts: Vec<&str> = failed.iter().map(|(h, _)| h.as_str()).collect();
        if json {
            if any {
                let items: Vec<super::json::Info> =
                    infos.iter().map(super::json::Info::from).collect();
                super::json::print(&items);
            }
        } else if terminal || any {
            let lines = render::status_lines(&env, &infos, &failed_hosts);
            let mut out = String::new();
            if terminal {
                // Home, then clear: the table is redrawn in place.
                out.push_str("\x1b[H\x1b[2J");
                out.push_str(&format!(
                    "dockstack status --watch: every {} ms; q or Ctrl-C ends\n",
                    REFRESH.as_millis()
                ));
            }
            for (n, line) in lines.iter().enumerate() {
                let marked = n > 0
                    && env.containers.get(n - 1).is_some_and(|c| {
                        changed.get(&c.name).is_some_and(|at| at.elapsed() < MARKED)
                    });
                out.push_str(if marked { "* " } else { "  " });
                out.push_str(line);
                out.push('\n');
            }
            for (h, e) in &failed {
                out.push_str(&format!("{}\n", super::host_failed(h, e)));
            }
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return Ok(ExitCode::SUCCESS);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            key = keys.recv(), if _keys_mode.is_some() => match key {
                // q, Q, Ctrl-C, or the end of the terminal.
                Some(b'q' | b'Q' | 0x03) | None => return Ok(ExitCode::SUCCESS),
                Some(_) => {}
            },
        }
    }
}
