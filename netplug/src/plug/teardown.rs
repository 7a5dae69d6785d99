//! Unplugging: a plug's port, rules and veth removed, every error
//! gathered; and the garbage collection of plugs whose owner is gone.

use rtnetlink::packet_route::link::InfoKind;

use crate::error::{TeardownError, UnplugError};
use crate::hostend::{host_ifname_candidates, is_owner, links_named, owner_alias, sort_holders};
use crate::netlink::{Deleter, Netlink};
use crate::nft;
use crate::ovs::PortOwner;

use super::plugger::Plugger;

impl Plugger {
    /// Removes the OVS port, its rules and the host end of veth
    /// `host_name`, gathering every error. A link of that name that is not
    /// a veth is left alone: it is not a plug.
    ///
    /// The host end goes down first: a veth drops what its peer sends while
    /// it is down, so from then on nothing the container sends reaches the
    /// bridge, and the veth, the rules and the port can go at once (the
    /// rules only before the port, whose removal from the datapath stalls
    /// ovs-vswitchd for an RCU grace period (see `Settle`), and the rules'
    /// removal would wait behind it). Should the host end not go down, the
    /// veth goes first, so that its rules never go while it can still send.
    async fn remove_host_side(
        &self,
        host: &Netlink,
        host_name: &str,
    ) -> Result<(), Vec<TeardownError>> {
        let flows = async {
            // Port security rules left behind would keep dropping what
            // comes in on the port number, whichever port gets it next; a
            // plug replaces those of its number anyway, so this is no error.
            if let Err(e) = self.ovs.clear_port_security(host_name).await
                && !e.is_unreachable()
            {
                tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules");
            }
        };
        let rules_then_port = async {
            flows.await;
            match self.ovs.del_port(host_name).await {
                Err(source) if !source.is_unreachable() => Some(TeardownError::DelPort {
                    port: host_name.to_string(),
                    source,
                }),
                _ => None,
            }
        };
        let mut errors = Vec::new();
        let link = match host.link_by_name(host_name).await {
            Ok(Some(link)) if link.kind == Some(InfoKind::Veth) => Some(link),
            Ok(_) => None,
            Err(e) => {
                errors.push(TeardownError::FindLinks(e));
                None
            }
        };
        // ENODEV: the kernel got there first, tearing down the peer's
        // namespace; the veth is gone, so nothing can send.
        let quiet = match &link {
            Some(link) => match host.set_down(link.index).await {
                Ok(()) => true,
                Err(e) => e.errno() == Some(libc::ENODEV),
            },
            None => true,
        };
        let veth = async {
            let mut errors = Vec::new();
            let Some(link) = link else {
                return errors;
            };
            let on_linux_bridge = match link.controller {
                Some(index) => matches!(host.link_by_index(index).await,
                        Ok(Some(c)) if c.kind == Some(InfoKind::Bridge)),
                None => false,
            };
            let deleter = if self.short_lived {
                Deleter::Child
            } else {
                Deleter::Thread
            };
            match host.del_link_by(link.index, deleter).await {
                Err(source) if source.errno() != Some(libc::ENODEV) => {
                    errors.push(TeardownError::DelLink {
                        name: host_name.to_string(),
                        source,
                    });
                }
                _ => {}
            }
            // After the link, never before: the port is not to forward
            // unfiltered for a moment.
            if on_linux_bridge && let Err(source) = nft::clear_port(host_name).await {
                errors.push(TeardownError::ClearRules {
                    port: host_name.to_string(),
                    source,
                });
            }
            errors
        };
        let (veth, port) = if quiet {
            tokio::join!(veth, rules_then_port)
        } else {
            let veth = veth.await;
            (veth, rules_then_port.await)
        };
        errors.extend(veth);
        errors.extend(port);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::remove_host_side`] of every port at once; all errors.
    pub(super) async fn remove_all(&self, host: &Netlink, ports: &[String]) -> Vec<TeardownError> {
        futures::future::join_all(ports.iter().map(|p| self.remove_host_side(host, p)))
            .await
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .collect()
    }

    /// Removes a container's plug: its OVS port (found by owner as ovs-docker
    /// does, and by name) and its veth. Deleting the host end also removes
    /// the peer inside the container. Missing pieces are not errors, and
    /// links and ports of other owners that happen to have one of its
    /// names are left alone.
    pub async fn unplug(&self, container: &str, iface: &str) -> Result<(), UnplugError> {
        self.unplug_found(container, iface).await.map(drop)
    }

    /// [`Plugger::unplug`]; `false` when there was nothing to remove.
    pub async fn unplug_found(&self, container: &str, iface: &str) -> Result<bool, UnplugError> {
        let mut errors = Vec::new();
        let candidates = host_ifname_candidates(container, iface);
        let alias = owner_alias(container, iface);
        let host = match Netlink::current() {
            Ok(host) => host,
            Err(e) => {
                return Err(UnplugError {
                    container: container.to_string(),
                    errors: vec![TeardownError::Connect(e)],
                });
            }
        };
        let (found, ports) = tokio::join!(
            links_named(&host, &candidates),
            self.ovs.ports_for(container, iface, &candidates)
        );
        let (mut ours, mut others) = (Vec::new(), Vec::new());
        match found {
            Ok(found) => {
                // An unmarked veth under the first name is taken to be an
                // earlier netplug's plug of this container. (A colliding
                // container's plug leaves its veth unmarked only for the
                // ~0.1 ms before its alias is set.)
                let holders = sort_holders(&found, &alias, true);
                ours.extend(holders.ours.into_iter().map(|l| l.name));
                others.extend(holders.others.into_iter().map(|(name, _)| name));
            }
            Err(e) => errors.push(TeardownError::FindLinks(e)),
        }
        match ports {
            // A port ovs-docker made is named after its veth too. A port of
            // our first name that records no owner is taken to be ours, as
            // ports made by hand or by old tools carry none.
            Ok(ports) => ours.extend(
                ports
                    .into_iter()
                    .filter(|(name, owner)| {
                        !others.contains(name)
                            && (is_owner(owner.as_ref(), container, iface)
                                || (owner.is_none() && *name == candidates[0]))
                    })
                    .map(|(name, _)| name),
            ),
            Err(e) if e.is_unreachable() => {}
            Err(e) => errors.push(TeardownError::ListPorts(e)),
        }
        ours.sort();
        ours.dedup();
        errors.extend(self.remove_all(&host, &ours).await);
        if errors.is_empty() {
            Ok(!ours.is_empty())
        } else {
            Err(UnplugError {
                container: container.to_string(),
                errors,
            })
        }
    }

    /// Removes every OVS port whose owner `is_alive` says is gone, with its
    /// veth. Returns the ports removed and every error; one port that
    /// cannot be removed does not keep the others.
    pub async fn gc(
        &self,
        is_alive: impl Fn(&PortOwner) -> bool,
    ) -> (Vec<String>, Vec<TeardownError>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        let ports = match self.ovs.owned_ports().await {
            Ok(p) => p,
            Err(e) => return (removed, vec![TeardownError::ListPorts(e)]),
        };
        let host = match Netlink::current() {
            Ok(h) => h,
            Err(e) => return (removed, vec![TeardownError::Connect(e)]),
        };
        for (port, owner) in ports {
            if is_alive(&owner) {
                continue;
            }
            match self.remove_host_side(&host, &port).await {
                Ok(()) => removed.push(port),
                Err(mut errs) => errors.append(&mut errs),
            }
        }
        (removed, errors)
    }

    /// Removes the nftables rules of Linux bridge ports whose host end is
    /// gone (its container's namespace went with it). Rules of a port whose
    /// link cannot be looked up are kept.
    pub async fn gc_bridge_rules(&self) -> (Vec<String>, Vec<TeardownError>) {
        let (mut removed, mut errors) = (Vec::new(), Vec::new());
        let ports = match nft::secured_ports().await {
            Ok(p) => p,
            Err(source) => {
                errors.push(TeardownError::ClearRules {
                    port: "(list)".into(),
                    source,
                });
                return (removed, errors);
            }
        };
        let host = match Netlink::current() {
            Ok(h) => h,
            Err(e) => return (removed, vec![TeardownError::Connect(e)]),
        };
        for port in ports {
            match host.link_by_name(&port).await {
                Ok(None) => match nft::clear_port(&port).await {
                    Ok(()) => removed.push(port),
                    Err(source) => errors.push(TeardownError::ClearRules { port, source }),
                },
                Ok(Some(_)) => {}
                Err(e) => errors.push(TeardownError::FindLinks(e)),
            }
        }
        (removed, errors)
    }
}
