//! The [`Ovs`] handle: its connection, its settings and its caches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::ovsdb::{Client, eq, rows};

use super::error::{OvsError, Result};
use super::policy::{Pending, Settle, pending_for};
use super::rows::{PortRows, datapath_name};

/// A connection to one OVSDB (one host's Open vSwitch). Clones share the
/// connection.
#[derive(Debug, Clone)]
pub struct Ovs {
    pub(super) client: Client,
    pub(super) settle: Settle,
    pub(super) settle_timeout: Duration,
    /// Deletes ovs-vswitchd may not have applied yet. Shared by every
    /// handle on the same database in this process (see [`pending_for`]).
    pub(super) pending: Arc<Mutex<Pending>>,
    /// The rows of ports this handle made or looked up, by port name; a
    /// hint only, checked by every transaction that uses it.
    pub(super) rows: Arc<Mutex<HashMap<String, PortRows>>>,
    /// The port-security rules last set for each port, by port name: what
    /// [`Ovs::restore_port_security`] sets again.
    pub(super) secured: Arc<Mutex<HashMap<String, Secured>>>,
    /// Each bridge's datapath, for [`Ovs::forget_flows_to`].
    pub(super) datapaths: Arc<Mutex<HashMap<String, String>>>,
}

/// The rules [`Ovs::set_port_security`] last set for one port.
#[derive(Debug, Clone)]
pub(super) struct Secured {
    pub(super) bridge: String,
    pub(super) ofport: u32,
    pub(super) flows: Vec<crate::openflow::FlowMod>,
}

impl Default for Ovs {
    fn default() -> Self {
        Ovs::new(None)
    }
}

impl Ovs {
    /// `db` is `unix:PATH`; `None` is ovs-vsctl's default socket,
    /// `$OVS_RUNDIR/db.sock` or `/var/run/openvswitch/db.sock`.
    pub fn new(db: Option<String>) -> Self {
        let client = Client::new(db.as_deref());
        Ovs {
            pending: pending_for(&client),
            client,
            settle: Settle::default(),
            settle_timeout: Duration::from_secs(10),
            rows: Arc::default(),
            secured: Arc::default(),
            datapaths: Arc::default(),
        }
    }

    /// Uses `$OVS_RUNDIR/db.sock` when that is set, as ovs-vsctl does.
    pub fn from_env() -> Self {
        Ovs::new(
            std::env::var("OVS_RUNDIR")
                .ok()
                .map(|d| format!("unix:{d}/db.sock")),
        )
    }

    /// What changes wait for; see [`Settle`].
    pub fn with_settle(mut self, settle: Settle) -> Self {
        self.settle = settle;
        self
    }

    /// How long a change waits for ovs-vswitchd before it fails.
    pub fn with_settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }

    pub fn settle(&self) -> Settle {
        self.settle
    }

    pub(super) async fn transact(&self, ops: Vec<Value>) -> Result<Vec<Value>> {
        Ok(self.client.transact(ops, Duration::ZERO).await?)
    }

    pub(super) fn timeout_ms(&self) -> u64 {
        u64::try_from(self.settle_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The map holds plain values: a panic elsewhere leaves it sound.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn rows_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, PortRows>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn secured(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secured>> {
        self.secured.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn datapaths(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.datapaths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The name of `bridge`'s datapath (`netdev@ovs-netdev`), remembered;
    /// `None` when there is no such bridge.
    pub(super) async fn look_up_datapath(&self, bridge: &str) -> Result<Option<String>> {
        let res = self.transact(vec![Self::select_datapath(bridge)]).await?;
        Ok(self.remember_datapath(bridge, &res[0]))
    }

    pub(super) fn select_datapath(bridge: &str) -> Value {
        json!({"op": "select", "table": "Bridge", "where": [eq("name", bridge)],
               "columns": ["datapath_type"]})
    }

    /// The datapath that `select` (of [`Ovs::select_datapath`]) found for
    /// `bridge`, remembered.
    pub(super) fn remember_datapath(&self, bridge: &str, select: &Value) -> Option<String> {
        let name = datapath_name(rows(select).first()?);
        self.datapaths().insert(bridge.to_string(), name.clone());
        Some(name)
    }

    /// The name of `bridge`'s datapath, as [`Ovs::bridge_exists`] saw it
    /// or looked up now.
    pub(super) async fn datapath_of(&self, bridge: &str) -> Result<String> {
        let known = self.datapaths().get(bridge).cloned();
        match known {
            Some(name) => Ok(name),
            None => self
                .look_up_datapath(bridge)
                .await?
                .ok_or_else(|| OvsError::NoBridge(bridge.into())),
        }
    }

    /// The run directory of the database's socket, where ovs-vswitchd
    /// keeps each bridge's OpenFlow management socket `<bridge>.mgmt`.
    pub(super) fn rundir(&self) -> Result<PathBuf> {
        let db = self.client.path()?;
        Ok(db
            .parent()
            .unwrap_or(std::path::Path::new("/"))
            .to_path_buf())
    }

    /// `<rundir>/<bridge>.mgmt`, which must exist.
    pub(super) fn mgmt_socket(&self, bridge: &str) -> Result<PathBuf> {
        let path = self.rundir()?.join(format!("{bridge}.mgmt"));
        if !path.exists() {
            return Err(OvsError::OpenFlow {
                bridge: bridge.into(),
                error: format!(
                    "no OpenFlow management socket {}: port security cannot be enforced",
                    path.display()
                ),
            });
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovs_is_shareable_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Ovs>();
    }
}
