//! Noticing that Open vSwitch's daemons restarted: connections held open to
//! ovsdb-server and to each bridge's management socket end with them.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::openflow::{self, Hold};
use crate::ovsdb::{OvsdbError, optional_str, rows};

use super::error::{OvsError, Result};
use super::handle::Ovs;
use super::security::OPENFLOW_TIMEOUT;

/// Connections held to both daemons of one Open vSwitch, from
/// [`Ovs::watch`].
pub struct Watch {
    ovsdb: UnixStream,
    bridges: Vec<(String, Hold)>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("bridges", &self.bridges())
            .finish_non_exhaustive()
    }
}

/// Which daemon a [`Watch`] lost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// ovsdb-server closed the connection: it exited.
    Ovsdb,
    /// The management socket of `bridge` closed: ovs-vswitchd exited (and
    /// every OpenFlow rule with it), or the bridge was deleted.
    Vswitchd { bridge: String, error: String },
}

impl Ovs {
    /// The names of the bridges in OVSDB.
    pub async fn bridge_names(&self) -> Result<Vec<String>> {
        let res = self
            .transact(vec![json!({"op": "select", "table": "Bridge", "where": [],
                                  "columns": ["name"]})])
            .await?;
        Ok(rows(&res[0])
            .iter()
            .filter_map(|r| optional_str(&r["name"]).map(String::from))
            .collect())
    }

    /// Holds a connection to ovsdb-server and one to the management socket
    /// of every bridge of this OVS, each answered by its daemon. Fails while
    /// either daemon is down or not yet back (ovs-vswitchd opens a bridge's
    /// socket once it has made the bridge, with its ports).
    pub async fn watch(&self) -> Result<Watch> {
        // The management sockets first: tried every few ms while
        // ovs-vswitchd is away, a failed try then costs ovsdb-server no
        // session of its own (the names come over this handle's).
        let mut bridges = Vec::new();
        for bridge in self.bridge_names().await? {
            let socket = self.rundir()?.join(format!("{bridge}.mgmt"));
            let hold = openflow::hold(&socket, OPENFLOW_TIMEOUT)
                .await
                .map_err(|e| OvsError::OpenFlow {
                    bridge: bridge.clone(),
                    error: e.to_string(),
                })?;
            bridges.push((bridge, hold));
        }
        let db = self.client.path()?;
        let ovsdb = UnixStream::connect(db)
            .await
            .map_err(|source| OvsdbError::Connect {
                path: db.to_path_buf(),
                source,
            })?;
        Ok(Watch { ovsdb, bridges })
    }
}

impl Watch {
    /// The bridges whose management sockets are held.
    pub fn bridges(&self) -> Vec<&str> {
        self.bridges.iter().map(|(b, _)| b.as_str()).collect()
    }

    /// Returns when the first of the held connections ends; the watch is
    /// spent then, and also when this is cancelled (a message may have been
    /// half read).
    pub async fn lost(&mut self) -> Lost {
        let ovsdb = &mut self.ovsdb;
        let ovsdb_closed = async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match ovsdb.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        // ovsdb-server's liveness probe (off on unix
                        // sockets by default): answered, or it hangs up.
                        if std::str::from_utf8(&buf[..n])
                            .is_ok_and(|s| s.contains(r#""method":"echo""#))
                        {
                            let reply = br#"{"id":"echo","result":[],"error":null}"#;
                            if ovsdb.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        };
        let bridges = &mut self.bridges;
        let vswitchd_closed = async move {
            if bridges.is_empty() {
                return std::future::pending().await;
            }
            let ends = bridges.iter_mut().map(|(bridge, hold)| {
                Box::pin(async move {
                    let e = hold.closed().await;
                    Lost::Vswitchd {
                        bridge: bridge.clone(),
                        error: e.to_string(),
                    }
                })
            });
            futures::future::select_all(ends).await.0
        };
        tokio::select! {
            () = ovsdb_closed => Lost::Ovsdb,
            lost = vswitchd_closed => lost,
        }
    }
}

/// How often [`Ovs::watch`] is tried again while a daemon is away: the
/// bridge forwards without port security until the rules are back, and
/// finding it back is the first part of that window.
pub const WATCH_RETRY: Duration = Duration::from_millis(5);
