//! Open vSwitch ports through OVSDB transactions (no `ovs-vsctl`), with the
//! rows and `external_ids` that `ovs-docker` writes, so either tool can
//! remove the other's ports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::openflow::{self, FlowMod};
use crate::ovsdb::{self, Client, OvsdbError, eq, map, named_uuid, rows, set, uuid};
use crate::unixctl::{self, UnixctlError};

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    #[error(transparent)]
    Db(#[from] OvsdbError),
    #[error("bridge {0} not found in ovsdb")]
    NoBridge(String),
    #[error("port {0} not found in ovsdb")]
    NoPort(String),
    #[error("port {port} already exists on bridge {bridge}")]
    PortOnOtherBridge { port: String, bridge: String },
    #[error("ovs-vswitchd did not apply the change within {0:?} (is it running?)")]
    NotApplied(Duration),
    #[error("ovs-vswitchd could not add interface {port}: {error}")]
    Interface { port: String, error: String },
    #[error(transparent)]
    Unixctl(#[from] UnixctlError),
    /// The port-security flows could not be set or removed.
    #[error("OpenFlow rules of bridge {bridge}: {error}")]
    OpenFlow { bridge: String, error: String },
}

impl OvsError {
    /// True when no ovsdb-server answers: this host has no Open vSwitch.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OvsError::Db(e) if e.is_unreachable())
    }
}

type Result<T> = std::result::Result<T, OvsError>;

/// The owner of an OVS port, as stored in the interface's `external_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    /// `container_id`: the container's name, as ovs-docker stores it.
    pub container: String,
    /// `container_iface`: the interface inside the container.
    pub iface: String,
    /// `dockstack_container_id`: the full Docker id, when known.
    pub full_id: Option<String>,
}

impl PortOwner {
    fn from_external_ids(pairs: &[(String, String)]) -> Option<Self> {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let container = get(KEY_CONTAINER).filter(|c| !c.is_empty())?;
        Some(PortOwner {
            container,
            iface: get(KEY_IFACE).unwrap_or_default(),
            full_id: get(KEY_FULL_ID),
        })
    }
}

const KEY_CONTAINER: &str = "container_id";
const KEY_IFACE: &str = "container_iface";
const KEY_FULL_ID: &str = "dockstack_container_id";

/// What a port looks like in OVSDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The bridge whose `ports` hold it; `None` for an orphan row.
    pub bridge: Option<String>,
    pub tag: Option<u16>,
    /// `access`, `trunk`, ...; `None`: OVS's default (a trunk without tag).
    pub vlan_mode: Option<String>,
    /// From the interface of the same name.
    pub owner: Option<PortOwner>,
    /// Set by ovs-vswitchd once it has added the interface; -1 on failure.
    pub ofport: Option<i64>,
    /// Why ovs-vswitchd could not add the interface.
    pub error: Option<String>,
}

/// What a change waits for before it returns.
///
/// Measured on this project's VMs (OVS 3.1, netdev datapath; see
/// `benches/plug.rs`): an OVSDB transaction takes ~0.3 ms; ovs-vswitchd
/// adds a port to the datapath ~2–5 ms later, but needs ~6–19 ms to drop
/// one: it closes the port's packet socket, and the kernel's
/// `packet_release` waits for an RCU grace period (strace shows that one
/// `close` taking the time; with `/sys/kernel/rcu_expedited` set it takes
/// microseconds). Two hazards decide what must wait:
///
/// - A plug that returns before the datapath has the port loses its
///   gratuitous ARP and first packets: adding a port waits, always.
/// - A delete and a re-add of the same name (a replaced spec, a restarted
///   container, an unplug and plug in a row) that reach ovs-vswitchd in one
///   reconfiguration look to it like "port unchanged": it may keep its
///   packet socket on the deleted veth, and then the new port never
///   forwards (seen with `ovs-vsctl --no-wait` del-port, veth re-created,
///   add-port, while ovs-vswitchd was held: 100% loss, every time; and in
///   the benchmark, when a fresh handle did not know of the delete: one
///   plug in 20 never forwarded). So a re-add must wait until ovs-vswitchd
///   has applied the delete, but the delete itself need not.
///
/// What no wait here covers: datapath flows that OVS cached for the
/// container's MAC while it had no port (its revalidators turn them into
/// drops once the old port goes). A re-plug with the same MAC, which
/// netplug's MACs derived from the address make the rule, would meet them
/// until the revalidators have run again after the add, 2–5 ms after
/// `ofport` is set; OVS offers no cheap way to wait for that
/// (`revalidator/wait` returns at the end of the next round, up to 500 ms
/// away). So a plug deletes them instead: [`Ovs::forget_flows_to`].
///
/// Hence the default, [`Settle::Ofport`]: deletes return once committed and
/// remember the `next_cfg` that will show them applied; an add of a name
/// with such a pending delete first waits for it, then waits for the
/// interface's `ofport`, which ovs-vswitchd writes in the reconfiguration
/// that puts the port in the datapath. Pending deletes are known to every
/// handle on the same database in the process. Those of other processes
/// (a CLI that deleted and exited) cannot be, so a process's first add on a
/// database waits until ovs-vswitchd has applied every change committed
/// before it (`cur_cfg` reaches `next_cfg`), which costs one transaction
/// when nothing is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Settle {
    /// Nothing waits (`ovs-vsctl --no-wait`): unsafe, for measurements.
    None,
    /// Adds wait for `ofport` and for pending deletes of their name;
    /// deletes do not wait; other changes wait as for [`Settle::NextCfg`].
    #[default]
    Ofport,
    /// Every change bumps `next_cfg` and waits until ovs-vswitchd reports
    /// it in `cur_cfg`, as `ovs-vsctl` does.
    NextCfg,
}

/// What this process knows of the deletes ovs-vswitchd may not have
/// applied yet, on one database.
#[derive(Debug, Default)]
struct Pending {
    /// This process's deletes: port name to the `cur_cfg` that shows the
    /// delete applied.
    deletes: HashMap<String, i64>,
    /// Whether an add has waited for the changes other processes committed
    /// before this one first added.
    others_settled: bool,
}

/// The pending deletes of the database at `client`'s socket. One map per
/// database, not per handle: a handle that re-adds a port must know of a
/// delete that another handle made (a fresh `Plugger`, say), or it brings
/// back the hazard that [`Settle`] describes.
fn pending_for(client: &Client) -> Arc<Mutex<Pending>> {
    type Registry = Mutex<HashMap<PathBuf, Arc<Mutex<Pending>>>>;
    static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);
    let Ok(path) = client.path() else {
        // Unusable address: no delete can ever be pending there.
        return Arc::default();
    };
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry.entry(path.to_path_buf()).or_default().clone()
}

/// The OpenFlow port numbers `ofport_request` may ask for.
const OFPORT_MIN: u32 = 1;
const OFPORT_MAX: u32 = 0xfeff;

/// Numbers held by [`OfportReservation`]s of this process.
static RESERVED_OFPORTS: LazyLock<Mutex<std::collections::HashSet<u32>>> =
    LazyLock::new(Mutex::default);

/// An OpenFlow port number held for one plug until it is dropped.
#[derive(Debug)]
pub struct OfportReservation(u32);

impl OfportReservation {
    pub fn number(&self) -> u32 {
        self.0
    }
}

impl Drop for OfportReservation {
    fn drop(&mut self) {
        RESERVED_OFPORTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// A connection to one OVSDB (one host's Open vSwitch). Clones share the
/// connection.
#[derive(Debug, Clone)]
pub struct Ovs {
    client: Client,
    settle: Settle,
    settle_timeout: Duration,
    /// Deletes ovs-vswitchd may not have applied yet. Shared by every
    /// handle on the same database in this process (see [`pending_for`]).
    pending: Arc<Mutex<Pending>>,
    /// The rows of ports this handle made or looked up, by port name; a
    /// hint only, checked by every transaction that uses it.
    rows: Arc<Mutex<HashMap<String, PortRows>>>,
    /// Each bridge's datapath, for [`Ovs::forget_flows_to`].
    datapaths: Arc<Mutex<HashMap<String, String>>>,
}

/// The datapath name of a Bridge row (`datapath_type` empty: the kernel's).
fn datapath_name(row: &Value) -> String {
    let kind = row["datapath_type"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("system");
    format!("{kind}@ovs-{kind}")
}

/// The uuids of a port's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRows {
    port: String,
    interfaces: Vec<String>,
}

impl PortRows {
    fn from_row(row: &Value) -> Option<Self> {
        Some(PortRows {
            port: ovsdb::as_uuid(&row["_uuid"])?.to_string(),
            interfaces: ovsdb::set_members(&row["interfaces"])
                .into_iter()
                .filter_map(|u| ovsdb::as_uuid(u).map(str::to_string))
                .collect(),
        })
    }
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

    async fn transact(&self, ops: Vec<Value>) -> Result<Vec<Value>> {
        Ok(self.client.transact(ops, Duration::ZERO).await?)
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.settle_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// The operations that ask ovs-vswitchd to report when it has applied
    /// this transaction, and whose results give `(next_cfg, cur_cfg)`.
    /// `adds`: the change adds a port, which [`Settle::Ofport`] waits for
    /// without `next_cfg`.
    fn bump_cfg_ops(&self, adds: bool) -> Vec<Value> {
        if self.settle == Settle::None || (self.settle == Settle::Ofport && adds) {
            return Vec::new();
        }
        vec![
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["next_cfg", "+=", 1]]}),
            json!({"op": "select", "table": "Open_vSwitch", "where": [],
                   "columns": ["next_cfg", "cur_cfg"]}),
        ]
    }

    fn cfgs(select: Option<&Value>) -> Option<(i64, i64)> {
        let row = rows(select?).first()?;
        Some((row["next_cfg"].as_i64()?, row["cur_cfg"].as_i64()?))
    }

    /// Waits until ovs-vswitchd's `cur_cfg` reaches `target`; `cur` is the
    /// last value seen (`i64::MIN`: none). A `wait` for
    /// "cur_cfg == target" could hang when another client bumps `next_cfg`
    /// too and cur_cfg skips our value, so this waits for "cur_cfg changed"
    /// and looks again.
    async fn wait_cfg(&self, (target, mut cur): (i64, i64)) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        while cur < target {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            let ops = vec![
                json!({"op": "wait", "table": "Open_vSwitch", "where": [],
                       "columns": ["cur_cfg"], "until": "!=",
                       "rows": [{"cur_cfg": cur}], "timeout": ms}),
                json!({"op": "select", "table": "Open_vSwitch", "where": [],
                       "columns": ["cur_cfg"]}),
            ];
            let res = match self.client.transact(ops, left).await {
                Ok(r) => r,
                Err(e) if e.is_timed_out_op(0) => {
                    return Err(OvsError::NotApplied(self.settle_timeout));
                }
                Err(e) => return Err(e.into()),
            };
            cur = rows(&res[1])
                .first()
                .and_then(|r| r["cur_cfg"].as_i64())
                .ok_or_else(|| unexpected("cur_cfg", &res[1]))?;
        }
        Ok(())
    }

    /// Waits until ovs-vswitchd has given interface `port` an OpenFlow port
    /// number and returns it; fails with its `error` when it could not add
    /// it.
    async fn wait_ofport(&self, port: &str) -> Result<u32> {
        let ops = vec![
            json!({"op": "wait", "table": "Interface", "where": [eq("name", port)],
                   "columns": ["ofport"], "until": "!=",
                   "rows": [{"ofport": set([])}], "timeout": self.timeout_ms()}),
            json!({"op": "select", "table": "Interface", "where": [eq("name", port)],
                   "columns": ["ofport", "error"]}),
        ];
        let res = match self.client.transact(ops, self.settle_timeout).await {
            Ok(r) => r,
            Err(e) if e.is_timed_out_op(0) => {
                return Err(OvsError::NotApplied(self.settle_timeout));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(row) = rows(&res[1]).first() else {
            return Err(OvsError::Interface {
                port: port.into(),
                error: "the interface was removed meanwhile".into(),
            });
        };
        match ovsdb::optional_int(&row["ofport"]).and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(OvsError::Interface {
                port: port.into(),
                error: ovsdb::optional_str(&row["error"])
                    .unwrap_or("no OpenFlow port number")
                    .into(),
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The map holds plain values: a panic elsewhere leaves it sound.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rows_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, PortRows>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until ovs-vswitchd has applied every delete this process made
    /// on this database without waiting.
    pub async fn settle_pending(&self) -> Result<()> {
        let target = self.pending().deletes.values().copied().max();
        if let Some(target) = target {
            self.wait_cfg((target, i64::MIN)).await?;
            self.pending().deletes.retain(|_, t| *t > target);
        }
        Ok(())
    }

    /// What a process's first add waits for, done ahead: connects, and
    /// waits until ovs-vswitchd has applied the changes that other
    /// processes committed before (see [`Settle`]). A process's first add
    /// calls it; one that knows it is about to add does it ahead, with the
    /// add's first look-ups, through [`Ovs::prepare_to_add`].
    pub async fn prepare(&self) -> Result<()> {
        if !self.settles_others() {
            return Ok(());
        }
        let res = self.transact(vec![Self::select_cfgs()]).await?;
        self.settle_others(res.first()).await
    }

    /// [`Ovs::prepare`] for a process about to add a port to `bridge`,
    /// in the same one round trip: also looks `bridge` up (its datapath,
    /// remembered; `None`: no such bridge) and reserves an OpenFlow port
    /// number (see [`Ovs::reserve_ofport`]).
    pub async fn prepare_to_add(
        &self,
        bridge: &str,
    ) -> Result<(Option<String>, OfportReservation)> {
        let settle = self.settles_others();
        let mut ops = vec![Self::select_datapath(bridge), Self::select_ofports()];
        if settle {
            ops.push(Self::select_cfgs());
        }
        let res = self.transact(ops).await?;
        let datapath = self.remember_datapath(bridge, &res[0]);
        let reservation = Self::reserve_among(&res[1])?;
        if settle {
            self.settle_others(res.get(2)).await?;
        }
        Ok((datapath, reservation))
    }

    /// Whether this process has yet to wait for what others left pending.
    fn settles_others(&self) -> bool {
        self.settle != Settle::None && !self.pending().others_settled
    }

    fn select_cfgs() -> Value {
        json!({"op": "select", "table": "Open_vSwitch", "where": [],
               "columns": ["next_cfg", "cur_cfg"]})
    }

    /// Waits until ovs-vswitchd has applied the `next_cfg` that `select`
    /// (of [`Ovs::select_cfgs`]) saw.
    async fn settle_others(&self, select: Option<&Value>) -> Result<()> {
        let cfgs = Self::cfgs(select)
            .ok_or_else(|| unexpected("next_cfg", select.unwrap_or(&Value::Null)))?;
        self.wait_cfg(cfgs).await?;
        self.pending().others_settled = true;
        Ok(())
    }

    /// Before `port` is added again: waits for a pending delete of it, and,
    /// on this process's first add, for whatever other processes committed
    /// before (see [`Ovs::prepare`]).
    async fn settle_pending_delete(&self, port: &str) -> Result<()> {
        if self.settle == Settle::None {
            return Ok(());
        }
        self.prepare().await?;
        let target = self.pending().deletes.get(port).copied();
        if let Some(target) = target {
            self.wait_cfg((target, i64::MIN)).await?;
            self.pending()
                .deletes
                .retain(|name, t| name != port || *t > target);
        }
        Ok(())
    }

    /// Waits as [`Settle`] says after a change of `port` (when given).
    /// Returns the added port's OpenFlow number when it waited for one.
    async fn settle_after(
        &self,
        added: Option<&str>,
        cfgs: Option<(i64, i64)>,
    ) -> Result<Option<u32>> {
        match (self.settle, added) {
            (Settle::None, _) => Ok(None),
            (Settle::Ofport, Some(port)) => self.wait_ofport(port).await.map(Some),
            (Settle::NextCfg, Some(port)) => {
                self.wait_cfg(cfgs.ok_or_else(|| unexpected("next_cfg", &Value::Null))?)
                    .await?;
                // ovs-vsctl too reports an interface ovs-vswitchd refused.
                self.wait_ofport(port).await.map(Some)
            }
            (_, None) => self
                .wait_cfg(cfgs.ok_or_else(|| unexpected("next_cfg", &Value::Null))?)
                .await
                .map(|()| None),
        }
    }

    pub async fn bridge_exists(&self, bridge: &str) -> Result<bool> {
        Ok(self.look_up_datapath(bridge).await?.is_some())
    }

    fn datapaths(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.datapaths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The name of `bridge`'s datapath (`netdev@ovs-netdev`), remembered;
    /// `None` when there is no such bridge.
    async fn look_up_datapath(&self, bridge: &str) -> Result<Option<String>> {
        let res = self.transact(vec![Self::select_datapath(bridge)]).await?;
        Ok(self.remember_datapath(bridge, &res[0]))
    }

    fn select_datapath(bridge: &str) -> Value {
        json!({"op": "select", "table": "Bridge", "where": [eq("name", bridge)],
               "columns": ["datapath_type"]})
    }

    /// The datapath that `select` (of [`Ovs::select_datapath`]) found for
    /// `bridge`, remembered.
    fn remember_datapath(&self, bridge: &str, select: &Value) -> Option<String> {
        let name = datapath_name(rows(select).first()?);
        self.datapaths().insert(bridge.to_string(), name.clone());
        Some(name)
    }

    /// The name of `bridge`'s datapath, as [`Ovs::bridge_exists`] saw it
    /// or looked up now.
    async fn datapath_of(&self, bridge: &str) -> Result<String> {
        let known = self.datapaths().get(bridge).cloned();
        match known {
            Some(name) => Ok(name),
            None => self
                .look_up_datapath(bridge)
                .await?
                .ok_or_else(|| OvsError::NoBridge(bridge.into())),
        }
    }

    /// Adds `port` to `bridge` with its owner and, when given, an access VLAN
    /// tag, like `ovs-vsctl --may-exist add-port BRIDGE PORT [tag=VLAN] --
    /// set Interface PORT external_ids:...`: one transaction, which also
    /// checks that the bridge exists. A port already on `bridge` gets the
    /// owner and tag; one on another bridge is an error.
    pub async fn add_port(
        &self,
        bridge: &str,
        port: &str,
        owner: &PortOwner,
        vlan: Option<u16>,
    ) -> Result<()> {
        self.add_port_numbered(bridge, port, owner, vlan, None)
            .await
            .map(drop)
    }

    /// [`Ovs::add_port`], asking ovs-vswitchd for OpenFlow port number
    /// `ofport` (`ofport_request`; see [`Ovs::reserve_ofport`]); returns the
    /// number the port got, unless [`Settle::None`] waited for none.
    pub async fn add_port_numbered(
        &self,
        bridge: &str,
        port: &str,
        owner: &PortOwner,
        vlan: Option<u16>,
        ofport: Option<u32>,
    ) -> Result<Option<u32>> {
        self.settle_pending_delete(port).await?;
        let mut external_ids = vec![(KEY_CONTAINER, owner.container.as_str())];
        external_ids.push((KEY_IFACE, owner.iface.as_str()));
        if let Some(id) = &owner.full_id {
            external_ids.push((KEY_FULL_ID, id.as_str()));
        }
        // Always an access port: with no tag, OVS makes it an access port of
        // VLAN 0, dropping tagged frames from the container; without
        // `vlan_mode` a port with no tag would be a trunk of every VLAN.
        let mut port_row = json!({"name": port, "interfaces": named_uuid("np_iface"),
                                  "vlan_mode": "access"});
        if let Some(tag) = vlan {
            port_row["tag"] = json!(tag);
        }
        let mut iface_row =
            json!({"name": port, "external_ids": map(external_ids.iter().copied())});
        if let Some(n) = ofport {
            iface_row["ofport_request"] = json!(n);
        }
        let mut ops = vec![
            json!({"op": "comment", "comment": format!("netplug: add-port {bridge} {port}")}),
            json!({"op": "wait", "table": "Bridge", "where": [eq("name", bridge)],
                   "columns": ["name"], "until": "==", "rows": [{"name": bridge}],
                   "timeout": 0}),
            json!({"op": "wait", "table": "Port", "where": [eq("name", port)],
                   "columns": ["name"], "until": "==", "rows": [], "timeout": 0}),
            json!({"op": "insert", "table": "Interface", "uuid-name": "np_iface",
                   "row": iface_row}),
            json!({"op": "insert", "table": "Port", "uuid-name": "np_port", "row": port_row}),
            json!({"op": "mutate", "table": "Bridge", "where": [eq("name", bridge)],
                   "mutations": [["ports", "insert", set([named_uuid("np_port")])]]}),
        ];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(true));
        match self.transact(ops).await {
            Ok(res) => {
                let new_uuid = |i: usize| {
                    res.get(i)
                        .and_then(|r| ovsdb::as_uuid(&r["uuid"]))
                        .map(str::to_string)
                };
                if let (Some(iface), Some(port_uuid)) = (new_uuid(3), new_uuid(4)) {
                    self.rows_cache().insert(
                        port.to_string(),
                        PortRows {
                            port: port_uuid,
                            interfaces: vec![iface],
                        },
                    );
                }
                self.settle_after(Some(port), Self::cfgs(res.get(cfg_at)))
                    .await
            }
            Err(OvsError::Db(e)) if e.is_timed_out_op(1) => Err(OvsError::NoBridge(bridge.into())),
            Err(OvsError::Db(e)) if e.is_timed_out_op(2) => {
                self.update_existing(bridge, port, &external_ids, vlan)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// `--may-exist`: the port is there already.
    async fn update_existing(
        &self,
        bridge: &str,
        port: &str,
        external_ids: &[(&str, &str)],
        vlan: Option<u16>,
    ) -> Result<Option<u32>> {
        let info = self
            .port_info(port)
            .await?
            .ok_or_else(|| OvsError::NoPort(port.into()))?;
        if let Some(other) = info.bridge.filter(|b| b != bridge) {
            return Err(OvsError::PortOnOtherBridge {
                port: port.into(),
                bridge: other,
            });
        }
        let keys = set([KEY_CONTAINER, KEY_IFACE, KEY_FULL_ID].map(Value::from));
        let tag = vlan.map_or_else(|| set([]), |t| json!(t));
        let mut ops = vec![
            json!({"op": "mutate", "table": "Interface", "where": [eq("name", port)],
                   "mutations": [["external_ids", "delete", keys],
                                 ["external_ids", "insert", map(external_ids.iter().copied())]]}),
            json!({"op": "update", "table": "Port", "where": [eq("name", port)],
                   "row": {"tag": tag, "vlan_mode": "access"}}),
        ];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(true));
        let res = self.transact(ops).await?;
        self.settle_after(Some(port), Self::cfgs(res.get(cfg_at)))
            .await
    }

    /// Removes `port` from whatever bridge has it, with its interfaces, like
    /// `ovs-vsctl --if-exists del-port PORT`: a missing port is no error.
    /// Under [`Settle::Ofport`] it returns once committed; see [`Settle`].
    pub async fn del_port(&self, port: &str) -> Result<()> {
        // The rows' uuids, when this handle made or saw the port, save the
        // select: a delete is then one transaction, which starts
        // ovs-vswitchd's (slow) work on it sooner.
        let cached = self.rows_cache().get(port).cloned();
        if let Some(row) = cached
            && self.delete_rows(port, &row).await?
        {
            return Ok(());
        }
        let res = self
            .transact(vec![json!({"op": "select", "table": "Port",
                                   "where": [eq("name", port)],
                                   "columns": ["_uuid", "interfaces"]})])
            .await?;
        let Some(row) = rows(&res[0]).first() else {
            self.rows_cache().remove(port);
            return Ok(());
        };
        let row = PortRows::from_row(row).ok_or_else(|| unexpected("Port row", row))?;
        self.delete_rows(port, &row).await.map(drop)
    }

    /// Deletes the rows of `port`; `false` when they were gone already (or
    /// are other rows by now), and nothing changed.
    async fn delete_rows(&self, port: &str, row: &PortRows) -> Result<bool> {
        let mut ops = vec![
            json!({"op": "comment", "comment": format!("netplug: del-port {port}")}),
            // The row may have gone, or been replaced, since its uuid was
            // learnt; then nothing changes, and no transaction fails
            // half-way.
            json!({"op": "wait", "table": "Port", "where": [eq("_uuid", uuid(&row.port))],
                   "columns": ["name"], "until": "==", "rows": [{"name": port}],
                   "timeout": 0}),
            json!({"op": "mutate", "table": "Bridge", "where": [],
                   "mutations": [["ports", "delete", set([uuid(&row.port)])]]}),
            json!({"op": "delete", "table": "Port", "where": [eq("_uuid", uuid(&row.port))]}),
        ];
        for u in &row.interfaces {
            ops.push(
                json!({"op": "delete", "table": "Interface", "where": [eq("_uuid", uuid(u))]}),
            );
        }
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(false));
        let res = match self.transact(ops).await {
            Ok(res) => res,
            Err(OvsError::Db(e)) if e.is_timed_out_op(1) => {
                self.rows_cache().remove(port);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.rows_cache().remove(port);
        if self.settle == Settle::Ofport {
            let (target, cur) =
                Self::cfgs(res.get(cfg_at)).ok_or_else(|| unexpected("next_cfg", &Value::Null))?;
            let deletes = &mut self.pending().deletes;
            deletes.retain(|_, t| *t > cur);
            deletes.insert(port.to_string(), target);
        } else {
            self.settle_after(None, Self::cfgs(res.get(cfg_at))).await?;
        }
        Ok(true)
    }

    /// Deletes the flows that the datapath of `bridge` has cached for
    /// frames to `mac`, through ovs-vswitchd's control socket beside the
    /// database's; returns how many went.
    ///
    /// When a port goes, OVS's revalidators turn the flows cached toward its
    /// MAC into drops. A port added again for the same MAC (a restarted
    /// container: netplug's MACs follow the address) meets those drops
    /// until the revalidators have run again after the add, 2–5 ms later on
    /// this project's VMs, and what is sent to the container meanwhile is
    /// lost. Deleted, the next frame to the MAC is looked up afresh and
    /// finds the new port. Run once the new port is in the datapath.
    pub async fn forget_flows_to(&self, bridge: &str, mac: crate::mac::Mac) -> Result<usize> {
        let db = self.client.path()?.to_path_buf();
        let datapath = self.datapath_of(bridge).await?;
        let forget = move || -> std::result::Result<usize, UnixctlError> {
            let mut session = unixctl::Session::connect(&unixctl::vswitchd_socket(&db)?)?;
            let filter = format!("filter=dl_dst={mac}");
            let dump = session.call("dpctl/dump-flows", &["-m", &datapath, &filter])?;
            let mut forgotten = 0;
            for ufid in unixctl::dumped_ufids(&dump) {
                match session.call("dpctl/del-flow", &[&datapath, &format!("ufid:{ufid}")]) {
                    Ok(_) => forgotten += 1,
                    // Gone already: expired, or revalidated away meanwhile.
                    Err(UnixctlError::Command { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(forgotten)
        };
        let forgotten =
            tokio::task::spawn_blocking(forget)
                .await
                .map_err(|e| UnixctlError::Command {
                    command: "dpctl/del-flow".into(),
                    error: format!("the task ended: {e}"),
                })?;
        if forgotten.is_err() {
            // The bridge may have been made anew with another datapath.
            self.datapaths().remove(bridge);
        }
        Ok(forgotten?)
    }

    /// The run directory of the database's socket, where ovs-vswitchd
    /// keeps each bridge's OpenFlow management socket `<bridge>.mgmt`.
    fn rundir(&self) -> Result<PathBuf> {
        let db = self.client.path()?;
        Ok(db
            .parent()
            .unwrap_or(std::path::Path::new("/"))
            .to_path_buf())
    }

    /// An OpenFlow port number that no interface of this OVS has or has
    /// asked for, and that no other plug of this process holds, so that a
    /// new port's rules can be set before the port exists (see
    /// [`crate::plug`]). Picked at random among the free ones, so that
    /// another process picking at the same moment is unlikely to pick the
    /// same; a port that gets another number anyway is caught afterwards.
    pub async fn reserve_ofport(&self) -> Result<OfportReservation> {
        let res = self.transact(vec![Self::select_ofports()]).await?;
        Self::reserve_among(&res[0])
    }

    fn select_ofports() -> Value {
        json!({"op": "select", "table": "Interface", "where": [],
               "columns": ["ofport", "ofport_request"]})
    }

    /// Reserves a number that none of the interfaces `select` (of
    /// [`Ovs::select_ofports`]) found has or asked for.
    fn reserve_among(select: &Value) -> Result<OfportReservation> {
        let mut used = std::collections::HashSet::new();
        for row in rows(select) {
            for col in ["ofport", "ofport_request"] {
                if let Some(n) = ovsdb::optional_int(&row[col]).and_then(|n| u32::try_from(n).ok())
                {
                    used.insert(n);
                }
            }
        }
        let mut reserved = RESERVED_OFPORTS.lock().unwrap_or_else(|p| p.into_inner());
        let span = OFPORT_MAX - OFPORT_MIN + 1;
        let start = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            u32::try_from(h.finish() % u64::from(span)).unwrap_or(0)
        };
        let number = (0..span)
            .map(|i| OFPORT_MIN + (start + i) % span)
            .find(|n| !used.contains(n) && !reserved.contains(n))
            .ok_or_else(|| OvsError::Interface {
                port: String::new(),
                error: "every OpenFlow port number is taken".into(),
            })?;
        reserved.insert(number);
        Ok(OfportReservation(number))
    }

    /// Waits for `port`'s OpenFlow port number and returns it.
    pub async fn ofport(&self, port: &str) -> Result<u32> {
        self.wait_ofport(port).await
    }

    /// Port security, as Neutron does it: frames that enter `bridge` from
    /// `port` (OpenFlow port `ofport`) pass only with source MAC `mac` and
    /// as ARP whose sender is `mac` and one of `addresses`, or IPv4 from one
    /// of `addresses`; everything else from the port is dropped. Replaces,
    /// in one OpenFlow bundle, the rules netplug had for this port or for
    /// `ofport` (those of an earlier port that had the number).
    pub async fn set_port_security(
        &self,
        bridge: &str,
        port: &str,
        ofport: u32,
        mac: crate::mac::Mac,
        addresses: &[ipnetwork::Ipv4Network],
        address6: Option<std::net::Ipv6Addr>,
    ) -> Result<()> {
        let socket = self.mgmt_socket(bridge)?;
        let flows = port_security_flows(port_cookie(port), ofport, mac, addresses, address6);
        openflow::bundle(&socket, &flows, OPENFLOW_TIMEOUT)
            .await
            .map_err(|e| OvsError::OpenFlow {
                bridge: bridge.to_string(),
                error: e.to_string(),
            })
    }

    /// Sends `frames` into `bridge` as though port `ofport` had sent them,
    /// through its rules (see [`openflow::packet_out`]): an announcement
    /// made this way needs no socket in the container, whose closing would
    /// cost an RCU grace period.
    pub async fn inject(&self, bridge: &str, ofport: u32, frames: &[&[u8]]) -> Result<()> {
        let socket = self.mgmt_socket(bridge)?;
        openflow::packet_out(&socket, ofport, frames, OPENFLOW_TIMEOUT)
            .await
            .map_err(|e| OvsError::OpenFlow {
                bridge: bridge.to_string(),
                error: e.to_string(),
            })
    }

    /// Removes the port-security rules of `port` from every bridge of this
    /// OVS; no bridge or no rules is no error.
    pub async fn clear_port_security(&self, port: &str) -> Result<()> {
        let dir = self.rundir()?;
        let sockets: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "mgmt"))
                .collect(),
            Err(_) => Vec::new(),
        };
        let delete = [openflow::FlowMod::Delete {
            cookie: port_cookie(port),
            cookie_mask: u64::MAX,
            fields: Vec::new(),
        }];
        let results = futures::future::join_all(
            sockets
                .iter()
                .map(|socket| openflow::send(socket, &delete, OPENFLOW_TIMEOUT)),
        )
        .await;
        let mut first_err = None;
        for (socket, result) in sockets.iter().zip(results) {
            if let Err(e) = result {
                let bridge = socket
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                first_err.get_or_insert(OvsError::OpenFlow {
                    bridge,
                    error: e.to_string(),
                });
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `<rundir>/<bridge>.mgmt`, which must exist.
    fn mgmt_socket(&self, bridge: &str) -> Result<PathBuf> {
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

    /// Ports whose interface carries a `container_id`, with their owners.
    pub async fn owned_ports(&self) -> Result<Vec<(String, PortOwner)>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Interface", "where": [],
                                   "columns": ["name", "external_ids"]}),
            ])
            .await?;
        let mut out: Vec<(String, PortOwner)> = rows(&res[0])
            .iter()
            .filter_map(|r| {
                let owner = PortOwner::from_external_ids(&ovsdb::map_pairs(&r["external_ids"]))?;
                Some((r["name"].as_str()?.to_string(), owner))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The port of a container's interface, found by owner as ovs-docker
    /// does (`find interface external_ids:container_id=C
    /// external_ids:container_iface=I`).
    pub async fn find_port(&self, container: &str, iface: &str) -> Result<Option<String>> {
        let ids = [(KEY_CONTAINER, container), (KEY_IFACE, iface)];
        let res = self
            .transact(vec![json!({"op": "select", "table": "Interface",
                                   "where": [["external_ids", "includes", map(ids)]],
                                   "columns": ["name"]})])
            .await?;
        Ok(rows(&res[0])
            .iter()
            .filter_map(|r| r["name"].as_str())
            .min()
            .map(str::to_string))
    }

    /// The ports that concern a plug of `container`'s `iface`, each with
    /// the owner its interface names: those its owner ids name (ovs-docker's
    /// too), and those called one of `names`, whoever owns them; read in one
    /// transaction.
    pub async fn ports_for(
        &self,
        container: &str,
        iface: &str,
        names: &[String],
    ) -> Result<Vec<(String, Option<PortOwner>)>> {
        let ids = [(KEY_CONTAINER, container), (KEY_IFACE, iface)];
        let mut ops = vec![json!({"op": "select", "table": "Interface",
                                  "where": [["external_ids", "includes", map(ids)]],
                                  "columns": ["name", "external_ids"]})];
        for name in names {
            let by_name = [eq("name", name.as_str())];
            ops.push(json!({"op": "select", "table": "Port", "where": by_name,
                            "columns": ["_uuid", "name", "interfaces"]}));
            ops.push(
                json!({"op": "select", "table": "Interface", "where": by_name,
                            "columns": ["external_ids"]}),
            );
        }
        let res = self.transact(ops).await?;
        let owner_of =
            |row: &Value| PortOwner::from_external_ids(&ovsdb::map_pairs(&row["external_ids"]));
        let mut found: Vec<(String, Option<PortOwner>)> = rows(&res[0])
            .iter()
            .filter_map(|r| Some((r["name"].as_str()?.to_string(), owner_of(r))))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let (port, iface) = (&res[1 + 2 * i], &res[2 + 2 * i]);
            let Some(row) = rows(port).first() else {
                continue;
            };
            if let Some(port_rows) = PortRows::from_row(row) {
                self.rows_cache().insert(name.clone(), port_rows);
            }
            if !found.iter().any(|(n, _)| n == name) {
                found.push((name.clone(), rows(iface).first().and_then(owner_of)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Makes `port` an access port of `vlan`.
    pub async fn set_vlan(&self, port: &str, vlan: u16) -> Result<()> {
        let mut ops = vec![json!({"op": "update", "table": "Port",
                                  "where": [eq("name", port)], "row": {"tag": vlan}})];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(false));
        let res = self.transact(ops).await?;
        if res[0]["count"].as_u64() == Some(0) {
            return Err(OvsError::NoPort(port.into()));
        }
        self.settle_after(None, Self::cfgs(res.get(cfg_at)))
            .await
            .map(drop)
    }

    /// Everything about `port` (and its interface of the same name), read in
    /// one transaction; `None` when there is no such port.
    pub async fn port_info(&self, port: &str) -> Result<Option<PortInfo>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Port", "where": [eq("name", port)],
                       "columns": ["_uuid", "tag", "vlan_mode"]}),
                json!({"op": "select", "table": "Bridge", "where": [],
                       "columns": ["name", "ports"]}),
                json!({"op": "select", "table": "Interface", "where": [eq("name", port)],
                       "columns": ["external_ids", "ofport", "error"]}),
            ])
            .await?;
        let Some(port_row) = rows(&res[0]).first() else {
            return Ok(None);
        };
        let port_uuid = ovsdb::as_uuid(&port_row["_uuid"]);
        let bridge = rows(&res[1])
            .iter()
            .find(|b| {
                ovsdb::set_members(&b["ports"])
                    .into_iter()
                    .any(|p| ovsdb::as_uuid(p) == port_uuid)
            })
            .and_then(|b| b["name"].as_str().map(str::to_string));
        let iface = rows(&res[2]).first();
        Ok(Some(PortInfo {
            bridge,
            tag: ovsdb::optional_int(&port_row["tag"]).and_then(|t| u16::try_from(t).ok()),
            vlan_mode: ovsdb::optional_str(&port_row["vlan_mode"]).map(str::to_string),
            owner: iface
                .and_then(|i| PortOwner::from_external_ids(&ovsdb::map_pairs(&i["external_ids"]))),
            ofport: iface.and_then(|i| ovsdb::optional_int(&i["ofport"])),
            error: iface.and_then(|i| ovsdb::optional_str(&i["error"]).map(str::to_string)),
        }))
    }

    /// Names of the ports on `bridge` (the bridge's own internal port too).
    pub async fn bridge_ports(&self, bridge: &str) -> Result<Vec<String>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Bridge", "where": [eq("name", bridge)],
                       "columns": ["ports"]}),
                json!({"op": "select", "table": "Port", "where": [],
                       "columns": ["_uuid", "name"]}),
            ])
            .await?;
        let Some(b) = rows(&res[0]).first() else {
            return Err(OvsError::NoBridge(bridge.into()));
        };
        let members: Vec<&str> = ovsdb::set_members(&b["ports"])
            .into_iter()
            .filter_map(ovsdb::as_uuid)
            .collect();
        let mut names: Vec<String> = rows(&res[1])
            .iter()
            .filter(|p| ovsdb::as_uuid(&p["_uuid"]).is_some_and(|u| members.contains(&u)))
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// The top 16 bits of every cookie of netplug's flows.
const COOKIE_MARK: u64 = 0xd0c5 << 48;

/// fe80::/10, where the kernel's own neighbour discovery comes from.
const LINK_LOCAL: ipnetwork::Ipv6Network = match ipnetwork::Ipv6Network::new_checked(
    std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
    10,
) {
    Some(n) => n,
    None => panic!("fe80::/10 is a network"),
};

/// How long ovs-vswitchd may take to answer on a management socket.
const OPENFLOW_TIMEOUT: Duration = Duration::from_secs(10);
const COOKIE_MARK_MASK: u64 = 0xffff << 48;

/// The cookie of the port-security flows of `port`: netplug's mark and 48
/// bits of a hash of the port's name, which is unique on a host.
pub fn port_cookie(port: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(port.as_bytes());
    let mut low = [0u8; 8];
    low[2..].copy_from_slice(&digest[..6]);
    COOKIE_MARK | u64::from_be_bytes(low)
}

/// The flow mods that replace the port-security rules of the port with
/// `cookie` and `ofport`, in order: first every rule of netplug's for
/// `ofport` or with `cookie`, then the new ones.
pub fn port_security_flows(
    cookie: u64,
    ofport: u32,
    mac: crate::mac::Mac,
    addresses: &[ipnetwork::Ipv4Network],
    address6: Option<std::net::Ipv6Addr>,
) -> Vec<FlowMod> {
    use openflow::{Action, Field};
    let mut out = vec![
        FlowMod::Delete {
            cookie: COOKIE_MARK,
            cookie_mask: COOKIE_MARK_MASK,
            fields: vec![Field::InPort(ofport)],
        },
        FlowMod::Delete {
            cookie,
            cookie_mask: u64::MAX,
            fields: Vec::new(),
        },
    ];
    let mut add = |priority: u16, fields: &[Field], action: Action| {
        let mut all = vec![Field::InPort(ofport), Field::EthSrc(mac)];
        all.extend_from_slice(fields);
        out.push(FlowMod::Add {
            cookie,
            priority,
            fields: all,
            action,
        });
    };
    for a in addresses {
        add(
            100,
            &[Field::Arp, Field::ArpSha(mac), Field::ArpSpa(*a)],
            Action::Normal,
        );
        add(100, &[Field::Ip, Field::Ipv4Src(*a)], Action::Normal);
    }
    // RFC 5227's probes (sender 0.0.0.0): nobody learns from them.
    let unspecified = ipnetwork::Ipv4Network::from(std::net::Ipv4Addr::UNSPECIFIED);
    add(
        100,
        &[Field::Arp, Field::ArpSha(mac), Field::ArpSpa(unspecified)],
        Action::Normal,
    );
    // A dual-stack port: IPv6 from its address or a link-local one (the
    // kernel's own, for neighbour discovery), DAD and MLD from `::`;
    // never a router advertisement or a redirect, and a neighbour
    // advertisement only for its own address or a link-local one.
    if let Some(a6) = address6 {
        let own = ipnetwork::Ipv6Network::from(a6);
        let any = ipnetwork::Ipv6Network::from(std::net::Ipv6Addr::UNSPECIFIED);
        for t in [134, 137] {
            add(110, &[Field::Ipv6, Field::Icmpv6Type(t)], Action::Drop);
        }
        for target in [own, LINK_LOCAL] {
            add(
                105,
                &[Field::Ipv6, Field::Icmpv6Type(136), Field::NdTarget(target)],
                Action::Normal,
            );
        }
        add(104, &[Field::Ipv6, Field::Icmpv6Type(136)], Action::Drop);
        for src in [own, LINK_LOCAL] {
            add(100, &[Field::Ipv6, Field::Ipv6Src(src)], Action::Normal);
        }
        for t in [135, 143] {
            add(
                100,
                &[Field::Ipv6, Field::Ipv6Src(any), Field::Icmpv6Type(t)],
                Action::Normal,
            );
        }
    }
    out.push(FlowMod::Add {
        cookie,
        priority: 90,
        fields: vec![Field::InPort(ofport)],
        action: Action::Drop,
    });
    out
}

fn unexpected(what: &str, value: &Value) -> OvsError {
    OvsError::Db(OvsdbError::Unexpected {
        what: what.into(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_security_flows_allow_own_and_listed_addresses_then_drop() {
        let mac: crate::mac::Mac = "02:d5:0a:f0:00:02".parse().unwrap();
        let addrs = [
            "10.240.0.2/32".parse().unwrap(),
            "10.240.0.0/28".parse().unwrap(),
        ];
        let cookie = port_cookie("vethx");
        assert_eq!(cookie & COOKIE_MARK_MASK, COOKIE_MARK);
        assert_ne!(cookie, port_cookie("vethy"));
        let flows = port_security_flows(cookie, 7, mac, &addrs, None);
        let lines: Vec<String> = flows.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 8, "{lines:#?}");
        assert_eq!(
            lines[0],
            "delete cookie=0xd0c5000000000000/0xffff000000000000,in_port=7"
        );
        assert_eq!(lines[1], format!("delete cookie={cookie:#x}/-1"));
        assert!(lines[2].ends_with(
            "priority=100,in_port=7,dl_src=02:d5:0a:f0:00:02,arp,arp_sha=02:d5:0a:f0:00:02,arp_spa=10.240.0.2,actions=NORMAL"
        ));
        assert!(lines[3].ends_with("dl_src=02:d5:0a:f0:00:02,ip,nw_src=10.240.0.2,actions=NORMAL"));
        assert!(lines[5].ends_with("nw_src=10.240.0.0/28,actions=NORMAL"));
        assert!(lines[6].ends_with("arp,arp_sha=02:d5:0a:f0:00:02,arp_spa=0.0.0.0,actions=NORMAL"));
        assert!(lines[7].ends_with("priority=90,in_port=7,actions=drop"));
    }

    #[test]
    fn ovs_is_shareable_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Ovs>();
    }

    #[test]
    fn owners_are_read_from_ovs_docker_and_dockstack_ids() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let owner = PortOwner::from_external_ids(&pairs(&[
            ("container_iface", "eth0"),
            ("container_id", "web1"),
            ("dockstack_container_id", "abc"),
        ]))
        .unwrap();
        assert_eq!(owner.container, "web1");
        assert_eq!(owner.iface, "eth0");
        assert_eq!(owner.full_id.as_deref(), Some("abc"));
        let owner = PortOwner::from_external_ids(&pairs(&[
            ("container_id", "web2"),
            ("container_iface", "eth1"),
        ]))
        .unwrap();
        assert_eq!(owner.full_id, None);
        assert!(PortOwner::from_external_ids(&pairs(&[("container_id", "")])).is_none());
        assert!(PortOwner::from_external_ids(&[]).is_none());
    }
}
