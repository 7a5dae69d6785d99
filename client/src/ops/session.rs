//! `exec`: a command in one container, attached through the server of its
//! host: what the caller feeds goes to its stdin (and window size), what it
//! prints comes back, and its exit status ends it.

use std::sync::Arc;

use dockstack_proto as pb;
use futures::{Stream, StreamExt};

use super::rpc::Clients;
use super::{HostOverride, OpError};
use crate::connect::Connector;
use crate::environment::{Container, Environment};

/// What to run, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStart {
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    /// Rows and columns of the terminal, with a tty.
    pub size: Option<(u16, u16)>,
}

/// What the command prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// What the caller sends once the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    Stdin(Vec<u8>),
    StdinClosed,
    Resize(u16, u16),
}

/// Runs `start` in `c`, feeding it `input` and handing its output to
/// `on_output`; its exit status.
pub async fn exec(
    env: Arc<Environment>,
    connector: Connector,
    overrides: HostOverride,
    c: &Container,
    start: ExecStart,
    input: impl Stream<Item = ExecInput> + Send + 'static,
    mut on_output: impl FnMut(ExecOutput),
) -> Result<i32, OpError> {
    use pb::exec_session_input::Kind as In;
    use pb::exec_session_output::Kind as Out;
    let clients = Clients::new(env, connector, overrides);
    let fail = |code: Option<tonic::Code>, message: String| OpError {
        host: c.host.clone(),
        container: c.name.clone(),
        code,
        message,
    };
    let mut client = clients
        .get(&c.host)
        .await
        .map_err(|f| fail(f.code, f.message))?;
    let first = pb::ExecSessionInput {
        kind: Some(In::Start(pb::ExecSessionStart {
            host: c.host.clone(),
            container: c.name.clone(),
            command: start.command,
            tty: start.tty,
            stdin: start.stdin,
            size: start.size.map(|(rows, cols)| pb::WindowSize {
                rows: rows.into(),
                cols: cols.into(),
            }),
        })),
    };
    let rest = input.map(|i| pb::ExecSessionInput {
        kind: Some(match i {
            ExecInput::Stdin(b) => In::Stdin(b),
            ExecInput::StdinClosed => In::StdinClosed(true),
            ExecInput::Resize(rows, cols) => In::Resize(pb::WindowSize {
                rows: rows.into(),
                cols: cols.into(),
            }),
        }),
    });
    let outbound = futures::stream::once(async { first }).chain(rest);
    let explain = |s: tonic::Status| fail(Some(s.code()), clients.connector().explain_status(&s));
    let mut inbound = client
        .exec_session(outbound)
        .await
        .map_err(explain)?
        .into_inner();
    while let Some(m) = inbound.next().await {
        match m.map_err(explain)?.kind {
            Some(Out::Stdout(b)) => on_output(ExecOutput::Stdout(b)),
            Some(Out::Stderr(b)) => on_output(ExecOutput::Stderr(b)),
            Some(Out::ExitCode(code)) => return Ok(code),
            None => {}
        }
    }
    Err(fail(
        None,
        "the server ended the session without the command's exit status".into(),
    ))
}
