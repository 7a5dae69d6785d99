//! What a change waits for ([`Settle`]), and the deletes of this process
//! that ovs-vswitchd may not have applied yet, one registry per database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use crate::ovsdb::Client;

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
/// away). So a plug deletes them instead: [`crate::Ovs::forget_flows_to`].
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
pub(super) struct Pending {
    /// This process's deletes: port name to the `cur_cfg` that shows the
    /// delete applied.
    pub(super) deletes: HashMap<String, i64>,
    /// Whether an add has waited for the changes other processes committed
    /// before this one first added.
    pub(super) others_settled: bool,
}

/// The pending deletes of the database at `client`'s socket. One map per
/// database, not per handle: a handle that re-adds a port must know of a
/// delete that another handle made (a fresh `Plugger`, say), or it brings
/// back the hazard that [`Settle`] describes.
pub(super) fn pending_for(client: &Client) -> Arc<Mutex<Pending>> {
    type Registry = Mutex<HashMap<PathBuf, Arc<Mutex<Pending>>>>;
    static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);
    let Ok(path) = client.path() else {
        // Unusable address: no delete can ever be pending there.
        return Arc::default();
    };
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry.entry(path.to_path_buf()).or_default().clone()
}
