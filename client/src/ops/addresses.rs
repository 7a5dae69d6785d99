//! The cluster's live address table: which managed container holds which
//! address on the hosts of the file, as one parallel round trip asks them,
//! and the clashes a `run`, `start` or `apply` refuses before it plugs an
//! address that is someone else's.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use dockstack_proto as pb;

use std::sync::Arc;
use std::time::Duration;

use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::ops::{HostOverride, list_within};

/// The clashes of `selected` with what every host of `env` holds now, one
/// round trip to each at once; a host that has not answered within `wait`
/// is not waited for, and comes back with why.
pub async fn check(
    env: &Environment,
    selected: &[Container],
    connector: Connector,
    overrides: HostOverride,
    wait: Duration,
) -> (Vec<Clash>, Vec<(String, String)>) {
    let (infos, late) = list_within(Arc::new(env.clone()), connector, overrides, Some(wait)).await;
    let found = clashes(selected, &table(&infos), &HashSet::new());
    (found, late)
}

/// One address and the managed container that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// IPv4, or the IPv6 address of a dual-stack container (a row of its own).
    pub address: IpAddr,
    pub container: String,
    pub host: String,
    pub mac: String,
    pub state: String,
    /// The environment file its labels record; empty when none was.
    pub environment: String,
}

/// The holders of every address the hosts report, by address.
pub fn table(infos: &[pb::ContainerInfo]) -> Vec<Holder> {
    let mut t: Vec<Holder> = infos
        .iter()
        .flat_map(|i| {
            [&i.ip, &i.ip6].into_iter().filter_map(|ip| {
                let address = ip.split('/').next()?.parse().ok()?;
                Some(Holder {
                    address,
                    container: i.name.clone(),
                    host: i.host.clone(),
                    mac: i.mac.clone(),
                    state: i.container_state().to_string(),
                    environment: i.environment.clone(),
                })
            })
        })
        .collect();
    t.sort_by(|a, b| (a.address, &a.container).cmp(&(b.address, &b.container)));
    t
}

/// An address a container of the file wants that another container
/// holds, or a container of the file's name that runs on another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub wanted_by: String,
    pub holder: Holder,
    /// Same name on another host (rather than another name on the address).
    pub elsewhere: bool,
}

impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.holder;
        let file = if h.environment.is_empty() {
            "no environment file recorded".to_string()
        } else {
            format!("environment file {}", h.environment)
        };
        if self.elsewhere {
            write!(
                f,
                "container {} runs on host {} already ({file}, address {}): destroy it there, or let `dockstack apply` move it",
                h.container, h.host, h.address
            )
        } else {
            write!(
                f,
                "address {} of {} is held by container {} on host {} ({file}, {}, MAC {})",
                h.address, self.wanted_by, h.container, h.host, h.state, h.mac
            )
        }
    }
}

/// The clashes of `selected` with `holders`. The container of the same
/// name on the same host is the container itself (whichever file it came
/// from: the server compares its spec); the containers named in `freed`
/// give their addresses up before anything is plugged (an apply's
/// recreates, handovers and pruned orphans).
pub fn clashes(selected: &[Container], holders: &[Holder], freed: &HashSet<String>) -> Vec<Clash> {
    let mut out = Vec::new();
    for c in selected {
        let wanted = [Some(IpAddr::V4(c.ip)), c.ip6.map(|n| IpAddr::V6(n.ip()))];
        let mut elsewhere_told = false;
        for h in holders {
            if freed.contains(&h.container) {
                continue;
            }
            let same_name = h.container == c.name;
            // A dual-stack holder elsewhere has a row per address: one clash.
            let elsewhere = same_name && h.host != c.host && !elsewhere_told;
            elsewhere_told |= elsewhere;
            if elsewhere || (!same_name && wanted.contains(&Some(h.address))) {
                out.push(Clash {
                    wanted_by: c.name.clone(),
                    holder: h.clone(),
                    elsewhere: same_name,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(name: &str, ip: &str, env: &str) -> Holder {
        Holder {
            address: ip.parse().unwrap(),
            container: name.into(),
            host: "host2".into(),
            mac: "02:d5:0a:00:00:05".into(),
            state: "running".into(),
            environment: env.into(),
        }
    }

    #[test]
    fn another_name_on_the_address_or_the_name_on_another_host_clashes() {
        let env = crate::ops::recipe::tests::env();
        let mut web1 = env.container("web1").unwrap().clone();
        web1.host = "host2".into();
        let ip = web1.ip.to_string();
        let holders = vec![
            holder("web1", &ip, "/srv/a.yaml"),
            holder("intruder", &ip, "/srv/b.yaml"),
            holder("other", "10.9.9.9", "/srv/b.yaml"),
        ];
        let none = HashSet::new();
        // web1 on its own host is web1 itself.
        let c = clashes(std::slice::from_ref(&web1), &holders, &none);
        assert_eq!(c.len(), 1, "{c:?}");
        let text = c[0].to_string();
        assert!(
            text.contains("held by container intruder on host host2")
                && text.contains("/srv/b.yaml"),
            "{text}"
        );
        // The same name on another host is a second one.
        web1.host = "host1".into();
        let c = clashes(std::slice::from_ref(&web1), &holders, &none);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(
            c.iter()
                .any(|x| x.elsewhere && x.to_string().contains("runs on host host2")),
            "{c:?}"
        );
        // Freed first: no clash.
        let freed: HashSet<String> = ["intruder".to_string(), "web1".to_string()].into();
        assert!(clashes(&[web1], &holders, &freed).is_empty());
    }
}
