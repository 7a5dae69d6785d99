//! The plug path: the host end's name chosen, an existing plug kept if it
//! matches, stale plugs removed, a fresh plug made, and undone on failure.

use crate::error::{PlugError, Step, StepError, TeardownError};
use crate::hostend::{
    HOST_NAME_CANDIDATES, HostName, choose_host_name, host_ifname_candidates, is_owner,
    links_named, owner_alias, unmarked_first_is_ours,
};
use crate::netlink::{LinkInfoSummary, Netlink, NetlinkError};
use crate::netns::NetnsTarget;
use crate::nft;
use crate::ovs::{OvsError, PortOwner};

use super::bridge::BridgeKind;
use super::fresh::{Attempt, Created};
use super::plugger::Plugger;
use super::spec::{PlugSpec, Plugged};

impl Plugger {
    /// Plugs `spec.iface` into the namespace of `target`. On any failure
    /// everything this call created is removed again.
    pub async fn plug(&self, target: &NetnsTarget, spec: &PlugSpec) -> Result<Plugged, PlugError> {
        let container = spec.owner.name.clone();
        let fail = |step: Step| {
            let container = container.clone();
            move |e: StepError| PlugError::Step {
                container,
                step,
                source: e,
            }
        };
        let host = Netlink::current().map_err(|e| fail(Step::ConfigureHostEnd)(e.into()))?;
        let netns = target.open().map_err(|e| fail(Step::OpenNetns)(e.into()))?;
        // A container with the host's network (or a pid that is the
        // host's) would have eth0 and the address moved onto the host.
        if same_netns_as_ours(&netns) {
            return Err(fail(Step::OpenNetns)(StepError::HostNetns));
        }
        let candidates = host_ifname_candidates(&spec.owner.name, &spec.iface);
        let alias = owner_alias(&spec.owner.name, &spec.iface);
        let ahead = self.ahead().take().filter(|a| a.bridge == spec.bridge);
        // Independent look-ups, each a round trip to the kernel, a thread
        // or ovsdb-server: all at once.
        let (kind, inner, mut names) = tokio::join!(
            async {
                match &ahead {
                    Some(ahead) => Ok(ahead.kind),
                    None => self.bridge_kind(&host, &spec.bridge).await,
                }
            },
            Netlink::in_netns(&netns),
            self.names_in_use(&host, spec, &candidates),
        );
        let mut reserved = ahead.and_then(|a| a.reservation);
        let kind = kind.map_err(|e| match e {
            PlugError::Step { step, source, .. } => PlugError::Step {
                container: container.clone(),
                step,
                source,
            },
            other => other,
        })?;
        let inner = inner.map_err(|e| fail(Step::OpenNetns)(e.into()))?;
        if kind == BridgeKind::Linux
            && let Some(vlan) = spec.vlan
        {
            // Refused rather than silently ignored: netplug does not tag
            // Linux bridge ports.
            return Err(fail(Step::FindBridge)(StepError::VlanOnLinuxBridge {
                vlan,
                bridge: spec.bridge.clone(),
            }));
        }
        // Two containers whose names hash alike, plugged at once, may both
        // pick the same free name; the one that finds it taken when it
        // creates its veth picks again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (found, ports) = names;
            let found = found.map_err(|e| fail(Step::NameHostEnd)(e.into()))?;
            let unmarked_first_is_ours = unmarked_first_is_ours(&inner, &spec.iface, &found)
                .await
                .map_err(|e| fail(Step::NameHostEnd)(e.into()))?;
            let chosen = choose_host_name(&found, &alias, unmarked_first_is_ours)
                .map_err(|holders| fail(Step::NameHostEnd)(StepError::NamesTaken(holders)))?;
            let host_name = chosen.name.clone();

            if let Some(existing) = &chosen.existing {
                if chosen.leftovers.is_empty()
                    && self
                        .matches(&host, &inner, existing.index, kind, spec)
                        .await
                        .unwrap_or(false)
                    && self.secure_existing(kind, spec, &host_name).await.is_ok()
                {
                    self.announce(&netns, &inner, kind, spec, &host_name)
                        .await
                        .ok();
                    return Ok(Plugged {
                        host_ifname: host_name,
                        mac: spec.effective_mac(),
                        bridge_kind: kind,
                        changed: false,
                    });
                }
                tracing::info!(container = %container, port = %host_name, "replacing stale or different plug");
            }
            self.remove_stale(&host, spec, kind, &chosen, ports)
                .await
                .map_err(fail(Step::RemoveStale))?;

            let mut created = Created::default();
            let attempt = Attempt {
                host: &host,
                inner: &inner,
                netns: &netns,
                kind,
                spec,
                host_name: &host_name,
                alias: &alias,
            };
            let result = self
                .plug_fresh(attempt, reserved.take(), &mut created)
                .await;
            match result {
                Ok(()) => {
                    return Ok(Plugged {
                        host_ifname: host_name,
                        mac: spec.effective_mac(),
                        bridge_kind: kind,
                        changed: true,
                    });
                }
                // Nothing was made yet: the veth was what failed.
                Err((Step::CreateVeth, StepError::NameTakenMeanwhile(_)))
                    if attempts < HOST_NAME_CANDIDATES =>
                {
                    tracing::info!(container = %container, port = %host_name, "host end name taken meanwhile; picking again");
                    names = self.names_in_use(&host, spec, &candidates).await;
                }
                Err((step, source)) => {
                    return Err(self
                        .roll_back(&host, &container, &host_name, created, step, source)
                        .await);
                }
            }
        }
    }

    /// Removes the leftovers of an earlier run (the container's old netns
    /// is gone, the spec changed, or ovs-docker plugged it) before the plug
    /// is made anew, or they would block the name or keep an OVS port that
    /// forwards nowhere: `chosen`'s leftovers and existing link, and the
    /// `ports` that are ours or have the chosen name.
    async fn remove_stale(
        &self,
        host: &Netlink,
        spec: &PlugSpec,
        kind: BridgeKind,
        chosen: &HostName,
        ports: Result<Vec<(String, Option<PortOwner>)>, OvsError>,
    ) -> Result<(), StepError> {
        let host_name = &chosen.name;
        // ovs-docker names its veth like its port.
        // A port of the chosen name goes whoever owns it, as no live link
        // has that name but ours; names held by others are never touched.
        let ports = match ports {
            Ok(ports) => ports,
            Err(e) if kind == BridgeKind::Linux && e.is_unreachable() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut stale: Vec<String> = ports
            .into_iter()
            .filter(|(name, owner)| {
                !chosen.others.contains(name)
                    && (name == host_name
                        || is_owner(owner.as_ref(), &spec.owner.name, &spec.iface))
            })
            .map(|(name, _)| name)
            .collect();
        stale.extend(chosen.leftovers.iter().cloned());
        if chosen.existing.is_some() {
            stale.push(host_name.clone());
        }
        stale.sort();
        stale.dedup();
        let errors = self.remove_all(host, &stale).await;
        if !errors.is_empty() {
            return Err(StepError::Teardown(errors));
        }
        Ok(())
    }

    /// The host's links under each candidate name, and the OVS ports that
    /// concern the plug, looked up at once.
    async fn names_in_use(
        &self,
        host: &Netlink,
        spec: &PlugSpec,
        candidates: &[String],
    ) -> (
        Result<Vec<(String, Option<LinkInfoSummary>)>, NetlinkError>,
        Result<Vec<(String, Option<PortOwner>)>, OvsError>,
    ) {
        tokio::join!(
            links_named(host, candidates),
            self.ovs
                .ports_for(&spec.owner.name, &spec.iface, candidates),
        )
    }

    /// Removes what a failed plug attempt made, and says what failed.
    async fn roll_back(
        &self,
        host: &Netlink,
        container: &str,
        host_name: &str,
        created: Created,
        step: Step,
        source: StepError,
    ) -> PlugError {
        let mut rollback = Vec::new();
        if created.nft
            && let Err(e) = nft::clear_port(host_name).await
        {
            tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules of a failed plug");
        }
        if created.port
            && let Err(e) = self.ovs.clear_port_security(host_name).await
        {
            tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules of a failed plug");
        }
        if created.port
            && let Err(source) = self.ovs.del_port(host_name).await
        {
            rollback.push(TeardownError::DelPort {
                port: host_name.to_string(),
                source,
            });
        }
        // Only the veth this attempt made goes, by index: a link that merely
        // has one of our names (say, the one that made create_veth fail) is
        // not ours. Deleting the host end takes the peer with it, wherever
        // the peer is by now.
        if let Some(index) = created.veth
            && let Err(source) = host.del_link(index).await
            && source.errno() != Some(libc::ENODEV)
        {
            rollback.push(TeardownError::DelLink {
                name: host_name.to_string(),
                source,
            });
        }
        let container = container.to_string();
        if rollback.is_empty() {
            PlugError::Step {
                container,
                step,
                source,
            }
        } else {
            PlugError::RollbackFailed {
                container,
                step,
                source,
                rollback,
            }
        }
    }
}

/// Whether `netns` is the network namespace this process is in.
fn same_netns_as_ours(netns: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        netns.metadata(),
        std::fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
