//! The server's own events (plugs, re-plugs, refusals) as they happen,
//! and the last [`KEPT`] of them, for `dockstack events`.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast;

/// The server's own events kept for a later `events` (since a time).
pub const KEPT: usize = 4_096;
/// Events a slow listener may fall behind by before it loses some.
pub const LIVE: usize = 256;

/// One event of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    /// Nanoseconds since 1970.
    pub time_ns: i128,
    /// The application it is about (a sandbox's owner for its sandbox's).
    pub container: String,
    pub kind: String,
    pub detail: String,
}

impl HostEvent {
    /// RFC 3339 with nanoseconds.
    pub fn time(&self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.time_ns)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }
}

/// The server's own events, as they happen and the last [`KEPT`].
#[derive(Debug)]
pub struct Journal {
    live: broadcast::Sender<HostEvent>,
    kept: Mutex<VecDeque<HostEvent>>,
}

/// The journal of this process.
pub fn journal() -> &'static Journal {
    static JOURNAL: OnceLock<Journal> = OnceLock::new();
    JOURNAL.get_or_init(|| Journal {
        live: broadcast::channel(LIVE).0,
        kept: Mutex::new(VecDeque::new()),
    })
}

pub fn now_ns() -> i128 {
    i128::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    )
    .unwrap_or(0)
}

impl Journal {
    /// Notes that `kind` happened to `container`.
    pub fn record(&self, container: &str, kind: &str, detail: impl Into<String>) {
        let event = HostEvent {
            time_ns: now_ns(),
            container: container.to_string(),
            kind: kind.to_string(),
            detail: detail.into(),
        };
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= KEPT {
                kept.pop_front();
            }
            kept.push_back(event.clone());
        }
        // Nobody listening is no error.
        let _ = self.live.send(event);
    }

    pub fn since(&self, time_ns: i128) -> Vec<HostEvent> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .filter(|e| e.time_ns >= time_ns)
            .cloned()
            .collect()
    }
}

impl Journal {
    /// What is recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.live.subscribe()
    }
}
