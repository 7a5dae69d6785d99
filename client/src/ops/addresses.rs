//! The cluster's live address table: which managed container holds which
//! address on the hosts of the file, as one parallel round trip asks them,
//! and the clashes a `run`, `start` or `apply` refuses before it plugs an
//! address that is someone else's.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use dockstack_proto as pb;

use crate::environment::Container;

/// One address and the managed container that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub address: Ipv4Addr,
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
        .filter_map(|i| {
            let address = i.ip.split('/').next()?.parse().ok()?;
            Some(Holder {
                address,
                container: i.name.clone(),
                host: i.host.clone(),
                mac: i.mac.clone(),
                state: i.state.clone(),
                environment: i.environment.clone(),
            })
        })
        .collect();
    t.sort_by(|a, b| (a.address, &a.container).cmp(&(b.address, &b.container)));
    t
}

/// An address a container of the file wants that another holds, or a
/// container of the file's name that another environment file made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub wanted_by: String,
    pub holder: Holder,
    /// Same name, another file (rather than another name, same address).
    pub other_file: bool,
}

impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.holder;
        let file = if h.environment.is_empty() {
            "no environment file recorded".to_string()
        } else {
            format!("environment file {}", h.environment)
        };
        if self.other_file {
            write!(
                f,
                "container {} on host {} belongs to {file}, not to this one: refusing to touch it",
                h.container, h.host
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

/// The clashes of `selected` with `holders`. `environment` is this file's
/// recorded name; the containers named in `freed` give their addresses up
/// before anything is plugged (an apply's orphans and handovers).
pub fn clashes(
    selected: &[Container],
    holders: &[Holder],
    environment: &str,
    freed: &HashSet<String>,
) -> Vec<Clash> {
    let mut out = Vec::new();
    for c in selected {
        for h in holders {
            if freed.contains(&h.container) {
                continue;
            }
            let same_name = h.container == c.name;
            if same_name && !h.environment.is_empty() && h.environment != environment {
                out.push(Clash {
                    wanted_by: c.name.clone(),
                    holder: h.clone(),
                    other_file: true,
                });
            } else if !same_name && h.address == c.ip {
                out.push(Clash {
                    wanted_by: c.name.clone(),
                    holder: h.clone(),
                    other_file: false,
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
    fn another_name_on_the_address_or_another_file_on_the_name_clashes() {
        let env = crate::ops::recipe::tests::env();
        let web1 = env.container("web1").unwrap().clone();
        let ip = web1.ip.to_string();
        let holders = vec![
            holder("web1", &ip, "/srv/a.yaml"),
            holder("intruder", &ip, "/srv/b.yaml"),
            holder("other", "10.9.9.9", "/srv/b.yaml"),
        ];
        let none = HashSet::new();
        let c = clashes(std::slice::from_ref(&web1), &holders, "/srv/a.yaml", &none);
        assert_eq!(c.len(), 1, "{c:?}");
        let text = c[0].to_string();
        assert!(
            text.contains("held by container intruder on host host2")
                && text.contains("/srv/b.yaml"),
            "{text}"
        );
        // The same name from another file is not ours either.
        let c = clashes(std::slice::from_ref(&web1), &holders, "/srv/c.yaml", &none);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c.iter().any(|x| x.other_file), "{c:?}");
        // Freed first: no clash.
        let freed: HashSet<String> = ["intruder".to_string()].into();
        assert!(clashes(&[web1], &holders, "/srv/a.yaml", &freed).is_empty());
    }
}
