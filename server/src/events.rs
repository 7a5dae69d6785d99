//! What happens to this host's managed containers, for `dockstack events`:
//! Docker's start, die and health events of the applications and their
//! sandboxes, and what the server itself did (plugs, re-plugs, refusals),
//! which it notes in the [`journal`](crate::journal).

use std::sync::Arc;
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::host::{Category, Host, HostError};
use crate::journal::{HostEvent, journal, now_ns};
use crate::record;

/// Events held for a client that does not read.
pub const EVENTS_CHANNEL: usize = crate::journal::LIVE;
/// The most containers one request may name.
pub const MAX_CONTAINERS: usize = 2_048;
/// How far back `events` looks when no time is given.
const DEFAULT_SINCE: Duration = Duration::from_secs(3_600);

/// What a client asks for.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    /// Applications of this host; empty: every managed one.
    pub containers: Vec<String>,
    pub follow: bool,
    /// Unix seconds; 0: the last hour.
    pub since: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{count} containers in one events request, at most {MAX_CONTAINERS}")]
    TooMany { count: usize },
    #[error("since {0}: not a time in Unix seconds after 1970")]
    BadSince(i64),
    #[error(transparent)]
    Host(#[from] HostError),
}

impl EventsError {
    pub fn category(&self) -> Category {
        match self {
            EventsError::TooMany { .. } | EventsError::BadSince(_) => Category::InvalidArgument,
            EventsError::Host(e) => e.category(),
        }
    }
}

/// The events of `query` so far, in order of time, then (following) as
/// they happen, through a bounded channel.
pub fn open(host: Arc<Host>, query: EventsQuery) -> Result<mpsc::Receiver<HostEvent>, EventsError> {
    if query.containers.len() > MAX_CONTAINERS {
        return Err(EventsError::TooMany {
            count: query.containers.len(),
        });
    }
    if query.since < 0 {
        return Err(EventsError::BadSince(query.since));
    }
    let since_ns = if query.since == 0 {
        now_ns() - i128::try_from(DEFAULT_SINCE.as_nanos()).unwrap_or(0)
    } else {
        i128::from(query.since) * 1_000_000_000
    };
    let (tx, rx) = mpsc::channel(EVENTS_CHANNEL);
    // Subscribed before the past is read: nothing falls between the two.
    let live = journal().subscribe();
    tokio::spawn(async move {
        let wanted =
            |e: &HostEvent| query.containers.is_empty() || query.containers.contains(&e.container);
        let now = now_ns();
        let mut past: Vec<HostEvent> = docker_events(&host, since_ns, Some(now))
            .await
            .into_iter()
            .chain(journal().since(since_ns))
            .filter(|e| e.time_ns < now && wanted(e))
            .collect();
        past.sort_by_key(|e| e.time_ns);
        for e in past {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        if query.follow {
            follow(&host, now, live, &tx, &wanted).await;
        }
    });
    Ok(rx)
}

/// Docker's events and the journal's from `from_ns` on, as they come.
async fn follow(
    host: &Host,
    from_ns: i128,
    mut live: broadcast::Receiver<HostEvent>,
    tx: &mpsc::Sender<HostEvent>,
    wanted: &impl Fn(&HostEvent) -> bool,
) {
    let mut docker = host
        .docker()
        .api()
        .events(Some(options(host, from_ns, None)));
    loop {
        let event = tokio::select! {
            () = tx.closed() => return,
            m = docker.next() => match m {
                Some(Ok(m)) => from_docker(&m),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "docker events ended");
                    return;
                }
                None => return,
            },
            j = live.recv() => match j {
                Ok(e) if e.time_ns >= from_ns => Some(e),
                Ok(_) => None,
                Err(broadcast::error::RecvError::Lagged(n)) => Some(HostEvent {
                    time_ns: now_ns(),
                    container: String::new(),
                    kind: "lost".into(),
                    detail: format!("{n} events of the server were not read in time"),
                }),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(e) = event.filter(|e| wanted(e))
            && tx.send(e).await.is_err()
        {
            return;
        }
    }
}

fn options(host: &Host, since_ns: i128, until_ns: Option<i128>) -> EventsOptions {
    let stamp = |ns: i128| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let mut filters = std::collections::HashMap::new();
    filters.insert("type".to_string(), vec!["container".to_string()]);
    filters.insert(
        "event".to_string(),
        ["start", "die", "health_status", "oom", "destroy"]
            .map(String::from)
            .to_vec(),
    );
    filters.insert("label".to_string(), record::host_filters(host.id()));
    EventsOptions {
        since: Some(stamp(since_ns)),
        until: until_ns.map(stamp),
        filters: Some(filters),
    }
}

/// Docker's events between two times (the past: Docker ends the stream).
async fn docker_events(host: &Host, since_ns: i128, until_ns: Option<i128>) -> Vec<HostEvent> {
    let stream = host
        .docker()
        .api()
        .events(Some(options(host, since_ns, until_ns)));
    stream
        .filter_map(|m| async move { m.ok().and_then(|m| from_docker(&m)) })
        .collect()
        .await
}

/// One of Docker's events as ours: a sandbox's named after its owner.
fn from_docker(m: &EventMessage) -> Option<HostEvent> {
    let attributes = m.actor.as_ref()?.attributes.as_ref()?;
    let name = attributes.get("name")?;
    let action = m.action.as_deref()?;
    let (container, sandbox) = match record::sandbox_owner(name) {
        Some(owner) => (owner.to_string(), true),
        None => (name.clone(), false),
    };
    let (kind, mut detail) = match action.split_once(": ") {
        Some(("health_status", status)) => ("health".to_string(), status.to_string()),
        _ => (action.to_string(), String::new()),
    };
    if kind == "die"
        && let Some(code) = attributes.get("exitCode")
    {
        detail = format!("exit code {code}");
    }
    let kind = if sandbox {
        format!("sandbox {kind}")
    } else {
        kind
    };
    let time_ns = m
        .time_nano
        .map(i128::from)
        .or_else(|| m.time.map(|s| i128::from(s) * 1_000_000_000))?;
    Some(HostEvent {
        time_ns,
        container,
        kind,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn message(name: &str, action: &str, extra: &[(&str, &str)]) -> EventMessage {
        let mut attributes: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        attributes.insert("name".into(), name.into());
        EventMessage {
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".into()),
                attributes: Some(attributes),
            }),
            time_nano: Some(1_796_630_401_000_000_001),
            ..Default::default()
        }
    }

    #[test]
    fn dockers_events_are_named_after_the_application() {
        let e = from_docker(&message("web1", "die", &[("exitCode", "137")])).unwrap();
        assert_eq!((e.container.as_str(), e.kind.as_str()), ("web1", "die"));
        assert_eq!(e.detail, "exit code 137");
        assert_eq!(e.time(), "2026-12-07T08:00:01.000000001Z");
        let sandbox = format!("web1{}", record::SANDBOX_SUFFIX);
        let e = from_docker(&message(&sandbox, "start", &[])).unwrap();
        assert_eq!(
            (e.container.as_str(), e.kind.as_str()),
            ("web1", "sandbox start")
        );
        let e = from_docker(&message("web1", "health_status: healthy", &[])).unwrap();
        assert_eq!((e.kind.as_str(), e.detail.as_str()), ("health", "healthy"));
    }
}
