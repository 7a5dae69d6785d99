//! Port security: the rules that let through only the container's own MAC
//! and addresses, set on an OVS port before it exists, or on a Linux bridge
//! port through nftables.

use crate::error::{Step, StepError};
use crate::nft;
use crate::ovs::{OfportReservation, OvsError};

use super::bridge::BridgeKind;
use super::plugger::Plugger;
use super::spec::PlugSpec;

impl Plugger {
    /// For an OVS port: reserves its OpenFlow number (unless `reserved`
    /// holds one already) and sets the port's rules for it, before the
    /// port exists. Nothing for a Linux bridge, whose rules name the port.
    pub(super) async fn secure_ahead(
        &self,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
        reserved: Option<OfportReservation>,
    ) -> Result<Option<OfportReservation>, (Step, StepError)> {
        if kind != BridgeKind::Ovs {
            return Ok(None);
        }
        let ovs_err = |e: OvsError| (Step::AttachToBridge, StepError::from(e));
        let reservation = match reserved {
            Some(reservation) => reservation,
            None => self.ovs.reserve_ofport().await.map_err(ovs_err)?,
        };
        self.secure_port(spec, host_name, reservation.number())
            .await
            .map_err(ovs_err)?;
        Ok(Some(reservation))
    }

    /// Sets the port-security rules of the OVS port `host_name` for its
    /// OpenFlow port `ofport`, as [`Ovs::set_port_security`] describes.
    async fn secure_port(
        &self,
        spec: &PlugSpec,
        host_name: &str,
        ofport: u32,
    ) -> Result<(), OvsError> {
        self.ovs
            .set_port_security(
                &spec.bridge,
                host_name,
                ofport,
                spec.effective_mac(),
                &spec.permitted_sources(),
                spec.address6.map(|a| a.ip()),
            )
            .await
    }

    /// Sets again the port-security rules of a plug that is already there
    /// (they may be gone: ovs-vswitchd restarted, or an older netplug made
    /// the plug).
    pub(super) async fn secure_existing(
        &self,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
    ) -> Result<(), StepError> {
        match kind {
            BridgeKind::Ovs => {
                let ofport = self.ovs.ofport(host_name).await?;
                Ok(self.secure_port(spec, host_name, ofport).await?)
            }
            BridgeKind::Linux => Ok(nft::secure_port(
                host_name,
                spec.effective_mac(),
                &spec.permitted_sources(),
                spec.address6.map(|a| a.ip()),
            )
            .await?),
        }
    }

    /// The rules of a new OVS port were set for the number it asked for;
    /// should ovs-vswitchd have given it another (`given`, when known: a
    /// process took that number meanwhile), they are set for the number it
    /// has; returns the number.
    pub(super) async fn confirm_port_security(
        &self,
        spec: &PlugSpec,
        host_name: &str,
        reservation: OfportReservation,
        given: Option<u32>,
    ) -> Result<u32, OvsError> {
        let ofport = match given {
            Some(n) => n,
            None => self.ovs.ofport(host_name).await?,
        };
        if ofport != reservation.number() {
            tracing::warn!(port = %host_name, asked = reservation.number(), got = ofport, "OpenFlow port number taken meanwhile; port security set afresh");
            self.secure_port(spec, host_name, ofport).await?;
        }
        Ok(ofport)
    }

    /// Drops what OVS cached for frames to the container's MAC while it had
    /// no port (see [`Ovs::forget_flows_to`]). Without it a re-plugged
    /// container misses what is sent to it for a few ms; that is all a
    /// failure costs, so it is logged, never fatal.
    pub(super) async fn forget_stale_flows(&self, spec: &PlugSpec) {
        match self
            .ovs
            .forget_flows_to(&spec.bridge, spec.effective_mac())
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(container = %spec.owner.name, flows = n, "forgot flows cached for the old port");
            }
            Err(e) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(error = %e, "cannot clear the flows OVS cached for re-plugged containers; they may miss a few ms of traffic");
                });
            }
        }
    }
}
