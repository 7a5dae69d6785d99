//! What Docker logged of this host's managed applications, for `dockstack
//! logs`: cut into lines, through a bounded channel (a slow client slows
//! the reading of Docker's log down, the server holds no more than
//! [`LOG_CHANNEL`] lines for it), and, when following, across the
//! container's restarts.

use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::host::{Category, Host, HostError};
use crate::progress::LineCutter;

/// The most containers one request may name: twice the containers the
/// benchmarks run on one host; each is a task and a Docker connection.
pub const MAX_CONTAINERS: usize = 2_048;

/// Lines held for a client that does not read: the readers of Docker's
/// logs wait beyond that.
pub const LOG_CHANNEL: usize = 256;

/// How often a followed container that stopped is looked at again.
const RESTART_POLL: Duration = Duration::from_millis(300);

/// What a client asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    /// Application containers of this host; empty: every managed one.
    pub containers: Vec<String>,
    pub follow: bool,
    /// Unix seconds; 0: from the start.
    pub since: i64,
    /// The last lines of each container only.
    pub tail: Option<u32>,
}

/// One line of a container's output, or a note about the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    Line {
        container: String,
        stderr: bool,
        line: String,
        /// When Docker logged it (RFC 3339).
        time: String,
    },
    Note {
        container: String,
        note: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{count} containers in one logs request, at most {MAX_CONTAINERS}")]
    TooMany { count: usize },
    #[error("since {0}: not a time in Unix seconds from 1970 to 2038")]
    BadSince(i64),
    #[error(transparent)]
    Host(#[from] HostError),
}

impl LogsError {
    pub fn category(&self) -> Category {
        match self {
            LogsError::TooMany { .. } | LogsError::BadSince(_) => Category::InvalidArgument,
            LogsError::Host(e) => e.category(),
        }
    }
}

/// Checks `query` and starts reading the logs of its containers; the
/// lines come through the receiver, which ends when every container's log
/// has (never, when following, until the receiver is dropped). A
/// container named that this host does not manage is a note, not an
/// error: the others are read.
pub async fn open(host: Arc<Host>, query: LogsQuery) -> Result<mpsc::Receiver<LogItem>, LogsError> {
    if query.containers.len() > MAX_CONTAINERS {
        return Err(LogsError::TooMany {
            count: query.containers.len(),
        });
    }
    if i32::try_from(query.since).map_or(true, |s| s < 0) {
        return Err(LogsError::BadSince(query.since));
    }
    let names = if query.containers.is_empty() {
        host.application_names().await?
    } else {
        query.containers.clone()
    };
    let (tx, rx) = mpsc::channel(LOG_CHANNEL);
    for name in names {
        match host.application(&name).await {
            Ok(_) => {
                let reader = Reader {
                    host: Arc::clone(&host),
                    name,
                    query: query.clone(),
                    tx: tx.clone(),
                };
                tokio::spawn(reader.run());
            }
            Err(e) if e.category() == Category::NotFound => {
                let note = format!("not found on host {}", host.id());
                // Room for it: nothing else was sent yet but other notes,
                // and a client gone makes the others pointless too.
                if tx
                    .send(LogItem::Note {
                        container: name,
                        note,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rx)
}

/// Reads one container's log into the channel.
struct Reader {
    host: Arc<Host>,
    name: String,
    query: LogsQuery,
    tx: mpsc::Sender<LogItem>,
}

impl Reader {
    async fn run(self) {
        let mut since = i32::try_from(self.query.since).unwrap_or(0);
        let mut tail = self.query.tail;
        // The last line's time: after a restart the log is read again from
        // its second, and what was sent already skipped.
        let mut last: Option<OffsetDateTime> = None;
        loop {
            let Some(seen) = self.read(since, tail, last).await else {
                return;
            };
            last = seen.or(last);
            if !self.query.follow {
                return;
            }
            // Docker ends a followed log when the container stops: wait for
            // it to run again (a restart policy, `docker restart`).
            if !self.wait_running().await {
                return;
            }
            self.note("started again; following").await;
            since = last.map_or(since, |t| {
                i32::try_from(t.unix_timestamp()).unwrap_or(since)
            });
            tail = None;
        }
    }

    /// One pass of Docker's log from `since`; the time of the last line
    /// sent, or `None` when the client has gone.
    async fn read(
        &self,
        since: i32,
        tail: Option<u32>,
        after: Option<OffsetDateTime>,
    ) -> Option<Option<OffsetDateTime>> {
        let options = bollard::query_parameters::LogsOptions {
            follow: self.query.follow,
            stdout: true,
            stderr: true,
            since,
            timestamps: true,
            tail: tail.map_or_else(|| "all".to_string(), |t| t.to_string()),
            ..Default::default()
        };
        let mut logs = self.host.docker().api().logs(&self.name, Some(options));
        let (mut out, mut err) = (LineCutter::default(), LineCutter::default());
        let mut last = None;
        loop {
            let chunk = tokio::select! {
                () = self.tx.closed() => return None,
                chunk = logs.next() => chunk,
            };
            let mut lines = Vec::new();
            match chunk {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(container = ?self.name, error = %e, "logs ended");
                    break;
                }
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    out.push(&message, |l| lines.push((false, l)));
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    err.push(&message, |l| lines.push((true, l)));
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
            }
            for (stderr, raw) in lines {
                let (time, line) = split_time(&raw);
                if let (Some(t), Some(a)) = (time, after)
                    && t <= a
                {
                    continue;
                }
                last = time.or(last);
                let item = LogItem::Line {
                    container: self.name.clone(),
                    stderr,
                    line: line.to_string(),
                    time: time
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .unwrap_or_default(),
                };
                self.tx.send(item).await.ok()?;
            }
        }
        Some(last)
    }

    /// Waits until the container runs again; false when it is gone or the
    /// client is.
    async fn wait_running(&self) -> bool {
        loop {
            tokio::select! {
                () = self.tx.closed() => return false,
                () = tokio::time::sleep(RESTART_POLL) => {}
            }
            match self.host.application(&self.name).await {
                Ok(c) if c.running => return true,
                Ok(_) => {}
                Err(e) => {
                    let why = match e.category() {
                        Category::NotFound => "removed".to_string(),
                        _ => e.to_string(),
                    };
                    self.note(&format!("{why}; no longer followed")).await;
                    return false;
                }
            }
        }
    }

    async fn note(&self, note: &str) {
        let _ = self
            .tx
            .send(LogItem::Note {
                container: self.name.clone(),
                note: note.to_string(),
            })
            .await;
    }
}

/// Docker's timestamp off the front of a line it logged with one.
fn split_time(raw: &str) -> (Option<OffsetDateTime>, &str) {
    match raw.split_once(' ') {
        Some((ts, rest)) => match OffsetDateTime::parse(ts, &Rfc3339) {
            Ok(t) => (Some(t), rest),
            Err(_) => (None, raw),
        },
        None => match OffsetDateTime::parse(raw, &Rfc3339) {
            Ok(t) => (Some(t), ""),
            Err(_) => (None, raw),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps_are_split_off_and_lines_without_one_kept_whole() {
        let (t, line) = split_time("2026-12-07T08:00:01.123456789Z hello world");
        assert_eq!(line, "hello world");
        assert_eq!(t.unwrap().unix_timestamp(), 1_796_630_401);
        assert_eq!(split_time("no time here"), (None, "no time here"));
        let (t, line) = split_time("2026-12-07T08:00:01Z");
        assert!(t.is_some());
        assert_eq!(line, "");
    }
}
