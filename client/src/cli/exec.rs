//! `exec -c NAME [-i] [-t] -- CMD ARGS…`: the terminal's side of an
//! attached command. With `-t` on a terminal, the terminal is put in raw
//! mode (every key, Ctrl-C too, goes to the command as a byte), its size
//! is sent at the start and at each change, and it is restored at the end,
//! whatever happened.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::HostOverride;
use dockstack::ops::session::{self, ExecInput, ExecOutput, ExecStart};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::args::Cli;
use super::terminal::{RawMode, window_size};
use super::{Invalid, connector, exit, load};

/// Reads stdin on a thread of its own (a read blocks; the process may end
/// while it waits) into the session's input.
fn read_stdin(tx: mpsc::Sender<ExecInput>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(ExecInput::StdinClosed);
                    return;
                }
                Ok(n) => {
                    if tx
                        .blocking_send(ExecInput::Stdin(buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
}

/// Sends the window's size at each change (SIGWINCH).
fn follow_window(tx: mpsc::Sender<ExecInput>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return;
    };
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            if let Some((rows, cols)) = window_size()
                && tx.send(ExecInput::Resize(rows, cols)).await.is_err()
            {
                return;
            }
        }
    });
}

/// `exec`: the command's exit status is ours.
pub async fn exec(
    cli: &Cli,
    overrides: HostOverride,
    interactive: bool,
    tty: bool,
    command: &[String],
) -> Result<ExitCode> {
    let env = load(cli)?;
    let Some(name) = &cli.container else {
        return Err(Invalid("exec needs the container: -c NAME".into()).into());
    };
    let Some(c) = env.container(name).cloned() else {
        return Err(Invalid(format!(
            "{}: no container {name} in this file",
            cli.file.display()
        ))
        .into());
    };
    let connector = connector(cli)?;
    let (tx, rx) = mpsc::channel(16);
    let size = if tty { window_size() } else { None };
    let _raw = (tty && interactive && std::io::stdin().is_terminal())
        .then(RawMode::enter)
        .flatten();
    if interactive {
        read_stdin(tx.clone());
    }
    if size.is_some() {
        follow_window(tx.clone());
    }
    drop(tx);
    let start = ExecStart {
        command: command.to_vec(),
        tty,
        stdin: interactive,
        size,
    };
    let input = ReceiverStream::new(rx).boxed();
    let result = session::exec(
        Arc::new(env),
        connector,
        overrides,
        &c,
        start,
        input,
        |out| {
            let _ = match out {
                ExecOutput::Stdout(b) => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&b).and_then(|()| o.flush())
                }
                ExecOutput::Stderr(b) => {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&b).and_then(|()| e.flush())
                }
            };
        },
    )
    .await;
    drop(_raw);
    match result {
        // A status is 0 to 255; a signal's death (-1 here) is a failure.
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILED))),
        Err(e) => {
            eprintln!("FAILED exec in {} on {}: {e}", e.container, e.host);
            Ok(ExitCode::from(exit::FAILED))
        }
    }
}
