//! The [`Plugger`] itself, and what it looks up ahead of a plug.

use crate::error::{PlugError, Step};
use crate::netlink::Netlink;
use crate::ovs::{OfportReservation, Ovs};

use super::bridge::{BridgeKind, bridge_kind_of};

/// Plugs and unplugs containers on one host: its own namespace and its OVS.
#[derive(Debug)]
pub struct Plugger {
    pub(super) ovs: Ovs,
    /// See [`Plugger::short_lived`].
    pub(super) short_lived: bool,
    /// See [`Plugger::prepare`].
    ahead: std::sync::Mutex<Option<Ahead>>,
}

/// What the next plug onto `bridge` would look up first, looked up by
/// [`Plugger::prepare`].
#[derive(Debug)]
pub(super) struct Ahead {
    pub(super) bridge: String,
    pub(super) kind: BridgeKind,
    /// An OVS port's number, for its rules (see `secure_ahead`).
    pub(super) reservation: Option<OfportReservation>,
}

impl Plugger {
    pub fn new(ovs: Ovs) -> Self {
        Plugger {
            ovs,
            short_lived: false,
            ahead: std::sync::Mutex::new(None),
        }
    }

    /// For a process about to plug onto `bridge` that has something else
    /// to wait for first (the CLI's inspect of the container): does,
    /// meanwhile, what the plug would do first and that does not depend on
    /// the container. OVSDB is connected and what other processes left
    /// pending is waited for (see [`Ovs::prepare`]), the bridge's kind is
    /// looked up, and an OVS port's number reserved; the next
    /// [`Plugger::plug`] onto `bridge` uses them. Whatever fails here is
    /// done again, and reported, by the plug.
    pub async fn prepare(&self, bridge: &str) {
        let Ok(host) = Netlink::current() else {
            return;
        };
        let (link, in_ovs) =
            tokio::join!(host.link_by_name(bridge), self.ovs.prepare_to_add(bridge));
        let (in_ovs, reservation) = match in_ovs {
            Ok((datapath, reservation)) => (Ok(datapath.is_some()), Some(reservation)),
            Err(e) => (Err(e), None),
        };
        let Ok(kind) = bridge_kind_of(bridge, link, in_ovs) else {
            return;
        };
        let reservation = reservation.filter(|_| kind == BridgeKind::Ovs);
        *self.ahead() = Some(Ahead {
            bridge: bridge.to_string(),
            kind,
            reservation,
        });
    }

    pub(super) fn ahead(&self) -> std::sync::MutexGuard<'_, Option<Ahead>> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For a process that exits as soon as its plugs are done (the CLI),
    /// which the kernel would otherwise hold at its exit for RCU grace
    /// periods (~20 ms each on a 250 Hz kernel) that a long-lived process
    /// pays off its critical path:
    ///
    /// - on OVS, the announcement is put into the bridge as from the port
    ///   (OpenFlow packet-out) instead of being sent from a packet socket
    ///   in the container, whose closing waits for a grace period; a
    ///   process that exits cannot repeat it later anyway;
    /// - a veth is deleted by a child process, which waits out the
    ///   kernel's RCU barrier after this one has gone; the deletion itself
    ///   is done (the link unlisted, the container's end gone) when
    ///   [`Plugger::unplug`] returns, and a failure is still reported.
    pub fn short_lived(mut self) -> Self {
        self.short_lived = true;
        self
    }

    pub fn ovs(&self) -> &Ovs {
        &self.ovs
    }

    pub async fn bridge_kind(&self, host: &Netlink, bridge: &str) -> Result<BridgeKind, PlugError> {
        // Both asked at once; OVS's answer is wasted on a Linux bridge, but
        // costs less than waiting for the kernel's first.
        let (link, in_ovs) =
            tokio::join!(host.link_by_name(bridge), self.ovs.bridge_exists(bridge));
        bridge_kind_of(bridge, link, in_ovs).map_err(|e| match e {
            None => PlugError::NoBridge {
                bridge: bridge.to_string(),
            },
            Some(source) => PlugError::Step {
                container: String::new(),
                step: Step::FindBridge,
                source,
            },
        })
    }
}
