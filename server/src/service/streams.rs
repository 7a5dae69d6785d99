//! The streaming RPCs of `dockstack logs`, `exec` and `events`: adapters
//! from their messages onto [`crate::logs`], [`crate::session`] and
//! [`crate::events`], each request checked and audited.

use std::pin::Pin;

use dockstack_proto as pb;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

use super::{HostService, check_name, code, served};
use crate::events::{self, EventsError, EventsQuery};
use crate::logs::{self, LogItem, LogsError, LogsQuery};
use crate::policy::Action;
use crate::session::{self, SessionError, SessionInput, SessionOutput, SessionStart};

pub type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogLine, Status>> + Send>>;
pub type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::ExecSessionOutput, Status>> + Send>>;
pub type HostEventStream = Pin<Box<dyn Stream<Item = Result<pb::HostEvent, Status>> + Send>>;

/// The largest piece of stdin one message may carry.
const MAX_STDIN_CHUNK: usize = 1024 * 1024;

impl From<LogsError> for Status {
    fn from(e: LogsError) -> Status {
        served(code(e.category()), e.to_string())
    }
}

impl From<SessionError> for Status {
    fn from(e: SessionError) -> Status {
        served(code(e.category()), e.to_string())
    }
}

impl From<EventsError> for Status {
    fn from(e: EventsError) -> Status {
        served(code(e.category()), e.to_string())
    }
}

fn check_names(names: &[String]) -> Result<(), Status> {
    names
        .iter()
        .try_for_each(|n| check_name("container name", n))
}

fn log_line(item: LogItem) -> pb::LogLine {
    match item {
        LogItem::Line {
            container,
            stderr,
            line,
            time,
        } => pb::LogLine {
            container,
            stderr,
            line,
            time,
            note: String::new(),
        },
        LogItem::Note { container, note } => pb::LogLine {
            container,
            note,
            ..Default::default()
        },
    }
}

/// A client's message once the session runs; `None` for one that is
/// dropped (a second start, a window out of range), which is logged.
fn session_input(m: pb::ExecSessionInput) -> Option<SessionInput> {
    use pb::exec_session_input::Kind;
    let input = match m.kind? {
        Kind::Stdin(bytes) if bytes.len() <= MAX_STDIN_CHUNK => SessionInput::Stdin(bytes),
        Kind::Resize(w) => {
            let (rows, cols) = session::window(w.rows, w.cols)?;
            SessionInput::Resize(rows, cols)
        }
        Kind::StdinClosed(true) => SessionInput::StdinClosed,
        other => {
            tracing::debug!(?other, "exec session: message dropped");
            return None;
        }
    };
    Some(input)
}

fn session_output(o: SessionOutput) -> pb::ExecSessionOutput {
    use pb::exec_session_output::Kind;
    let kind = match o {
        SessionOutput::Stdout(b) => Kind::Stdout(b),
        SessionOutput::Stderr(b) => Kind::Stderr(b),
        SessionOutput::Exit(code) => Kind::ExitCode(i32::try_from(code).unwrap_or(-1)),
    };
    pb::ExecSessionOutput { kind: Some(kind) }
}

impl HostService {
    pub(super) async fn logs_stream(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<LogStream, Status> {
        let shown = req.get_ref().containers.join(",");
        let who = self.authorize(&req, Action::Logs, &shown)?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_names(&req.containers)?;
        tracing::info!(client = %who.client, container = ?shown, action = "logs", follow = req.follow, "operation");
        let query = LogsQuery {
            containers: req.containers,
            follow: req.follow,
            since: req.since,
            tail: req.tail,
        };
        let rx = logs::open(std::sync::Arc::clone(&self.host), query).await?;
        Ok(Box::pin(ReceiverStream::new(rx).map(|i| Ok(log_line(i)))))
    }

    pub(super) async fn events_stream(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<HostEventStream, Status> {
        let shown = req.get_ref().containers.join(",");
        let who = self.authorize(&req, Action::Events, &shown)?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_names(&req.containers)?;
        tracing::info!(client = %who.client, container = ?shown, action = "events", follow = req.follow, "operation");
        let query = EventsQuery {
            containers: req.containers,
            follow: req.follow,
            since: req.since,
        };
        let rx = events::open(std::sync::Arc::clone(&self.host), query)?;
        Ok(Box::pin(ReceiverStream::new(rx).map(|e| {
            Ok(pb::HostEvent {
                time: e.time(),
                container: e.container,
                kind: e.kind,
                detail: e.detail,
            })
        })))
    }

    /// The session's first message says what to run; the caller's role
    /// is checked then, with the container and command in the audit line.
    pub(super) async fn session_stream(
        &self,
        req: Request<Streaming<pb::ExecSessionInput>>,
    ) -> Result<SessionStream, Status> {
        let (metadata, extensions, mut inbound) = req.into_parts();
        let first = inbound
            .message()
            .await?
            .and_then(|m| match m.kind {
                Some(pb::exec_session_input::Kind::Start(s)) => Some(s),
                _ => None,
            })
            .ok_or_else(|| Status::invalid_argument("an exec session starts with its start"))?;
        let req = Request::from_parts(metadata, extensions, ());
        let who = self.authorize(&req, Action::Exec, &first.container)?;
        self.policy()
            .check_exec_session(who.role)
            .map_err(|r| who.refused(Action::Exec, &first.container, &r))?;
        self.host.check_host(&first.host)?;
        check_name("container name", &first.container)?;
        let size = match first.size {
            Some(w) => Some(session::window(w.rows, w.cols).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "window {}x{}: each side 1 to {}",
                    w.rows,
                    w.cols,
                    session::MAX_WINDOW
                ))
            })?),
            None => None,
        };
        let start = SessionStart {
            container: first.container,
            command: first.command,
            tty: first.tty,
            stdin: first.stdin,
            size,
        };
        start.check()?;
        tracing::info!(
            target: "audit",
            client = %who.client,
            role = %who.role,
            action = "exec",
            container = ?start.container,
            command = ?start.command,
            tty = start.tty,
            "exec session"
        );
        let input = Box::pin(
            inbound
                .take_while(|m| std::future::ready(m.is_ok()))
                .filter_map(|m| std::future::ready(m.ok().and_then(session_input))),
        );
        let (tx, rx) = mpsc::channel(session::OUTPUT_CHANNEL);
        let (result_tx, result_rx) = tokio::sync::oneshot::channel::<Status>();
        let host = std::sync::Arc::clone(&self.host);
        let (client, container) = (who.client, start.container.clone());
        tokio::spawn(async move {
            match session::run(host, start, input, tx).await {
                Ok(()) => {
                    tracing::info!(%client, ?container, action = "exec", result = "ok", "operation")
                }
                Err(e) => {
                    tracing::warn!(%client, ?container, action = "exec", result = "error", error = %e, "operation");
                    let _ = result_tx.send(e.into());
                }
            }
        });
        let output = ReceiverStream::new(rx).map(|o| Ok(session_output(o)));
        let last = futures::stream::once(result_rx).filter_map(|r| async move { r.ok().map(Err) });
        Ok(Box::pin(output.chain(last)))
    }
}
