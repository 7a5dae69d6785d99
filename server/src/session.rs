//! An attached command in a managed application container, for `dockstack
//! exec`: Docker's exec with stdin, a pseudo-terminal and its window size
//! when asked, its output through a bounded channel, and its exit status.
//! Every field of the start is checked here, whatever the client checked.

use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::ExecConfig;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::host::{Category, Host, HostError, HostErrorKind};

/// The most words a command may have.
pub const MAX_WORDS: usize = 256;
/// The most bytes of all its words together.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// The largest window a terminal may claim.
pub const MAX_WINDOW: u32 = 4_096;
/// Output chunks held for a client that does not read.
pub const OUTPUT_CHANNEL: usize = 64;

/// What a session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    pub container: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    /// Rows and columns, with a tty only.
    pub size: Option<(u16, u16)>,
}

/// What the client sends once the session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionInput {
    Stdin(Vec<u8>),
    Resize(u16, u16),
    StdinClosed,
}

/// What the session sends back; [`SessionOutput::Exit`] last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i64),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("exec in {container}: {message}")]
    BadStart { container: String, message: String },
    #[error("exec in {container}: docker: {source}")]
    Docker {
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(transparent)]
    Host(#[from] HostError),
}

impl SessionError {
    pub fn category(&self) -> Category {
        match self {
            SessionError::BadStart { .. } => Category::InvalidArgument,
            SessionError::Docker { .. } => Category::Unavailable,
            SessionError::Host(e) => e.category(),
        }
    }
}

/// A window size as a terminal claims it: each side 1 to [`MAX_WINDOW`].
pub fn window(rows: u32, cols: u32) -> Option<(u16, u16)> {
    let side = |n: u32| {
        u16::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_WINDOW).contains(&u32::from(*n)))
    };
    Some((side(rows)?, side(cols)?))
}

impl SessionStart {
    /// Checks what the client may not be trusted with: the command's size
    /// and bytes, the window.
    pub fn check(&self) -> Result<(), SessionError> {
        let bad = |message: String| SessionError::BadStart {
            container: self.container.clone(),
            message,
        };
        if self.command.is_empty() {
            return Err(bad("no command".into()));
        }
        if self.command.len() > MAX_WORDS {
            return Err(bad(format!(
                "{} words in the command, at most {MAX_WORDS}",
                self.command.len()
            )));
        }
        let bytes: usize = self.command.iter().map(String::len).sum();
        if bytes > MAX_COMMAND_BYTES {
            return Err(bad(format!(
                "the command is {bytes} bytes, at most {MAX_COMMAND_BYTES}"
            )));
        }
        if let Some(i) = self.command.iter().position(|w| w.contains('\0')) {
            return Err(bad(format!("word {i} of the command holds a NUL byte")));
        }
        if self.command[0].is_empty() {
            return Err(bad("the program's name is empty".into()));
        }
        if self.size.is_some() && !self.tty {
            return Err(bad("a window size without a terminal".into()));
        }
        Ok(())
    }
}

/// Runs `start` in its container: `input` feeds its stdin and window,
/// `output` gets what it prints and, last, its exit status. Returns once
/// it has exited, or the client has gone (the command is then hung up on:
/// SIGHUP, as a closed terminal would).
pub async fn run(
    host: Arc<Host>,
    start: SessionStart,
    input: impl Stream<Item = SessionInput> + Send + Unpin + 'static,
    output: mpsc::Sender<SessionOutput>,
) -> Result<(), SessionError> {
    start.check()?;
    let app = host.application(&start.container).await?;
    if !app.running {
        return Err(host
            .error(HostErrorKind::NotRunning {
                name: start.container.clone(),
            })
            .into());
    }
    let docker = host.docker().api().clone();
    let api = |source| SessionError::Docker {
        container: start.container.clone(),
        source,
    };
    let config = ExecConfig {
        attach_stdin: Some(start.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(start.tty),
        cmd: Some(start.command.clone()),
        ..Default::default()
    };
    // By id: the container looked up is the one the command runs in.
    let exec = docker.create_exec(&app.id, config).await.map_err(api)?.id;
    let started = docker
        .start_exec(
            &exec,
            Some(bollard::exec::StartExecOptions {
                detach: false,
                tty: start.tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(api)?;
    let bollard::exec::StartExecResults::Attached {
        output: mut from,
        input: to,
    } = started
    else {
        return Err(SessionError::BadStart {
            container: start.container.clone(),
            message: "Docker detached the exec".into(),
        });
    };
    if let Some((rows, cols)) = start.size {
        resize(&docker, &exec, rows, cols).await;
    }
    let feeder = tokio::spawn(feed(docker.clone(), exec.clone(), input, to));
    let mut gone = false;
    while let Some(chunk) = tokio::select! {
        () = output.closed() => { gone = true; None }
        chunk = from.next() => chunk,
    } {
        let out = match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                SessionOutput::Stdout(message.to_vec())
            }
            Ok(LogOutput::StdErr { message }) => SessionOutput::Stderr(message.to_vec()),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => {
                tracing::debug!(container = ?start.container, error = %e, "exec output ended");
                break;
            }
        };
        if output.send(out).await.is_err() {
            gone = true;
            break;
        }
    }
    feeder.abort();
    if gone {
        hang_up(&docker, &exec).await;
        return Ok(());
    }
    let code = exit_code(&docker, &exec).await.map_err(api)?;
    let _ = output.send(SessionOutput::Exit(code)).await;
    Ok(())
}

/// Passes the client's input on until it ends.
async fn feed(
    docker: bollard::Docker,
    exec: String,
    mut input: impl Stream<Item = SessionInput> + Unpin,
    mut to: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
) {
    while let Some(i) = input.next().await {
        match i {
            SessionInput::Stdin(bytes) => {
                if to.write_all(&bytes).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
            SessionInput::Resize(rows, cols) => resize(&docker, &exec, rows, cols).await,
            SessionInput::StdinClosed => {
                let _ = to.shutdown().await;
            }
        }
    }
}

async fn resize(docker: &bollard::Docker, exec: &str, rows: u16, cols: u16) {
    let size = bollard::exec::ResizeExecOptions {
        height: rows,
        width: cols,
    };
    if let Err(e) = docker.resize_exec(exec, size).await {
        tracing::debug!(error = %e, "exec resize");
    }
}

/// The exit status, which can show in the exec's state a moment after its
/// output has ended.
async fn exit_code(docker: &bollard::Docker, exec: &str) -> Result<i64, bollard::errors::Error> {
    for _ in 0..100 {
        let state = docker.inspect_exec(exec).await?;
        if state.running != Some(true)
            && let Some(code) = state.exit_code
        {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(-1)
}

/// SIGHUP to a command whose client went away: Docker would let it run on.
async fn hang_up(docker: &bollard::Docker, exec: &str) {
    let Ok(state) = docker.inspect_exec(exec).await else {
        return;
    };
    if state.running == Some(true)
        && let Some(pid) = state.pid.and_then(|p| i32::try_from(p).ok())
        && pid > 0
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(command: &[&str]) -> SessionStart {
        SessionStart {
            container: "web1".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            size: None,
        }
    }

    #[test]
    fn a_start_is_checked_field_by_field() {
        assert!(start(&["sh", "-c", "exit 7"]).check().is_ok());
        let err = |s: SessionStart| s.check().unwrap_err().to_string();
        assert_eq!(err(start(&[])), "exec in web1: no command");
        assert!(err(start(&["a"; MAX_WORDS + 1])).contains("257 words"));
        let long = "x".repeat(MAX_COMMAND_BYTES + 1);
        assert!(err(start(&[&long])).contains("at most 65536"));
        assert!(err(start(&["sh", "a\0b"])).contains("word 1"));
        assert!(err(start(&[""])).contains("empty"));
        let mut s = start(&["sh"]);
        s.size = Some((24, 80));
        assert!(err(s).contains("without a terminal"));
        assert_eq!(window(24, 80), Some((24, 80)));
        assert_eq!(window(0, 80), None);
        assert_eq!(window(24, MAX_WINDOW + 1), None);
    }
}
