//! A container's MAC is its own on this host: a run is refused one that
//! another managed container, or a run under way, holds. Two ports of one
//! MAC split its traffic between them, and port security, which pins a
//! port to its MAC, would let a container pose as the other.

use std::collections::HashMap;

use dockstack_types::Mac;

use super::{Host, HostError, HostErrorKind};
use crate::record;
use crate::spec::ContainerSpec;

/// The MACs of runs whose containers may not exist yet, by container.
pub(super) type PendingMacs = std::sync::Mutex<HashMap<String, Mac>>;

/// Holds a run's MAC among the pending ones until the run is over.
pub(super) struct MacAdmitted<'a> {
    host: &'a Host,
    name: String,
}

impl Drop for MacAdmitted<'_> {
    fn drop(&mut self) {
        self.host
            .pending_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

impl Host {
    /// Admits `spec`'s MAC against every other managed container of this
    /// host (a stale container of the name and its own sandbox are no
    /// other) and the runs under way; checked and recorded under one lock,
    /// with Docker listed inside it, so that two runs cannot both pass.
    pub(super) async fn admit_mac(
        &self,
        spec: &ContainerSpec,
    ) -> Result<MacAdmitted<'_>, HostError> {
        let _one_at_a_time = self.mac_admission.lock().await;
        let mac = spec.effective_mac();
        let wanted = mac.to_string();
        let sandbox = record::sandbox_name(&spec.name);
        let listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        let taken = |holder: String| {
            self.err(HostErrorKind::MacTaken {
                name: spec.name.clone(),
                mac,
                holder,
            })
        };
        // A replacement of this same container that a killed request left
        // (`replace` removes it before making its own) holds no other's MAC.
        if let Some(c) = listed.iter().find(|c| {
            c.name != spec.name
                && c.name != sandbox
                && super::replace::replaced_by(&c.name) != Some(spec.name.as_str())
                && record::shown(&c.labels).mac == wanted
        }) {
            let holder = record::sandbox_owner(&c.name).unwrap_or(&c.name);
            return Err(taken(holder.to_string()));
        }
        let mut pending = self.pending_macs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((holder, _)) = pending
            .iter()
            .find(|(n, m)| n.as_str() != spec.name && **m == mac)
        {
            return Err(taken(holder.clone()));
        }
        pending.insert(spec.name.clone(), mac);
        Ok(MacAdmitted {
            host: self,
            name: spec.name.clone(),
        })
    }
}
