//! `logs` and `events` across the hosts: one stream per host of the
//! selected containers, all at once, merged as their items come. A host
//! that cannot be reached, or whose stream breaks, is named; the others go
//! on.

use std::collections::BTreeMap;
use std::sync::Arc;

use dockstack_proto as pb;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::HostOverride;
use super::rpc::{Client, Clients};
use crate::connect::Connector;
use crate::environment::{Container, Environment};

/// Items held for the printer: a slow terminal slows the hosts down.
const MERGED: usize = 256;

/// One item of one host's stream, or why the host's stream ended early.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed<T> {
    Item { host: String, item: T },
    Failed { host: String, message: String },
}

/// What `logs` asks each host for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub follow: bool,
    /// Unix seconds; 0: from the start.
    pub since: i64,
    pub tail: Option<u32>,
}

/// What `events` asks each host for.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub follow: bool,
    /// Unix seconds; 0: the server's default (the last hour).
    pub since: i64,
}

/// The containers of `selected` by host, in the file's order.
fn by_host(selected: &[Container]) -> BTreeMap<String, Vec<String>> {
    let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in selected {
        hosts
            .entry(c.host.clone())
            .or_default()
            .push(c.name.clone());
    }
    hosts
}

/// The logs of `selected`, every host at once; the receiver ends when
/// every host's stream has.
pub fn logs(
    env: Arc<Environment>,
    selected: &[Container],
    connector: Connector,
    overrides: HostOverride,
    query: LogsQuery,
) -> mpsc::Receiver<Streamed<pb::LogLine>> {
    fan_in(
        env,
        selected,
        connector,
        overrides,
        move |mut client, host, names| {
            let request = pb::LogsRequest {
                host,
                containers: names,
                follow: query.follow,
                since: query.since,
                tail: query.tail,
            };
            async move { client.logs(request).await.map(tonic::Response::into_inner) }
        },
    )
}

/// The events of `selected`, every host at once.
pub fn events(
    env: Arc<Environment>,
    selected: &[Container],
    connector: Connector,
    overrides: HostOverride,
    query: EventsQuery,
) -> mpsc::Receiver<Streamed<pb::HostEvent>> {
    fan_in(
        env,
        selected,
        connector,
        overrides,
        move |mut client, host, names| {
            let request = pb::EventsRequest {
                host,
                containers: names,
                follow: query.follow,
                since: query.since,
            };
            async move {
                client
                    .events(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        },
    )
}

/// Opens `open`'s stream on every host of `selected` and merges them.
fn fan_in<T, F, Fut>(
    env: Arc<Environment>,
    selected: &[Container],
    connector: Connector,
    overrides: HostOverride,
    open: F,
) -> mpsc::Receiver<Streamed<T>>
where
    T: Send + 'static,
    F: Fn(Client, String, Vec<String>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<tonic::Streaming<T>, tonic::Status>> + Send,
{
    let (tx, rx) = mpsc::channel(MERGED);
    let clients = Arc::new(Clients::new(env, connector, overrides));
    for (host, names) in by_host(selected) {
        let (tx, clients, open) = (tx.clone(), Arc::clone(&clients), open.clone());
        tokio::spawn(async move {
            let failed = |message: String| Streamed::Failed {
                host: host.clone(),
                message,
            };
            let client = match clients.get(&host).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(failed(e.message)).await;
                    return;
                }
            };
            let explain = |s: &tonic::Status| clients.connector().explain_status(s);
            let mut stream = match open(client, host.clone(), names).await {
                Ok(s) => s,
                Err(s) => {
                    let _ = tx.send(failed(explain(&s))).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let sent = match item {
                    Ok(item) => {
                        tx.send(Streamed::Item {
                            host: host.clone(),
                            item,
                        })
                        .await
                    }
                    Err(s) => {
                        let _ = tx.send(failed(explain(&s))).await;
                        return;
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
    }
    rx
}
