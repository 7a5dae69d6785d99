//! The domain's container spec: what a client asks for, checked, hashed and
//! written to and read back from Docker labels.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Component, Path};

use ipnetwork::Ipv4Network;
use netplug::{Mac, Owner, PlugSpec};
use sha2::{Digest, Sha256};

/// The interface every container gets.
pub const IFACE: &str = "eth0";

pub const LABEL_PREFIX: &str = "dockstack.";
pub const LABEL_MANAGED: &str = "dockstack.managed";
pub const LABEL_HOST: &str = "dockstack.host";
pub const LABEL_HASH: &str = "dockstack.spec-hash";
const LABEL_IP: &str = "dockstack.ip";
const LABEL_GATEWAY: &str = "dockstack.gateway";
const LABEL_BRIDGE: &str = "dockstack.bridge";
const LABEL_MAC: &str = "dockstack.mac";
const LABEL_MTU: &str = "dockstack.mtu";
const LABEL_VLAN: &str = "dockstack.vlan";
const LABEL_IFACE: &str = "dockstack.iface";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container {container}: {message}")]
    Invalid { container: String, message: String },
    #[error("container {container}: label {label} is missing or invalid")]
    Label { container: String, label: String },
}

/// Everything the server needs to create and plug one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub address: Option<Ipv4Network>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<String>,
    pub domain: String,
    pub bridge: String,
    pub volumes: Vec<String>,
    pub running: bool,
    pub precreation: Vec<String>,
    pub postcreation: Vec<String>,
    pub postdestroy: Vec<String>,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub vlan: Option<u16>,
    pub env: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub restart: String,
}

impl ContainerSpec {
    fn invalid(&self, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            container: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks what a server must never do on a client's word alone.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(self.invalid(format!("invalid container name {:?}", self.name)));
        }
        if self.image.is_empty() {
            return Err(self.invalid("no image given"));
        }
        if self.address.is_none() {
            return Err(self.invalid("no IP address given"));
        }
        if self.bridge.is_empty() || self.bridge.len() > 15 {
            return Err(self.invalid(format!("invalid bridge name {:?}", self.bridge)));
        }
        for v in &self.volumes {
            let mut parts = v.split(':');
            let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
                return Err(self.invalid(format!("volume {v:?} is not HOST_PATH:CONTAINER_PATH")));
            };
            for p in [src, dst] {
                if !is_absolute_clean(p) {
                    return Err(self.invalid(format!(
                        "volume {v:?}: {p:?} must be an absolute path without '..'"
                    )));
                }
            }
            if let Some(mode) = parts.next()
                && !matches!(mode, "ro" | "rw")
            {
                return Err(self.invalid(format!("volume {v:?}: unknown mode {mode:?}")));
            }
        }
        if !matches!(
            self.restart.as_str(),
            "" | "no" | "always" | "unless-stopped" | "on-failure"
        ) {
            return Err(self.invalid(format!("unknown restart policy {:?}", self.restart)));
        }
        Ok(())
    }

    pub fn effective_mac(&self) -> Option<Mac> {
        self.mac
            .or_else(|| self.address.map(|a| Mac::from_ip(a.ip())))
    }

    /// A hash of everything that shapes the container; hooks and the
    /// desired state are not part of it.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |k: &str, v: &str| {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        };
        for (k, v) in self.describe() {
            field(k, &v);
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The fields that the hash covers, for telling a user what differs.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("image", self.image.clone()),
            (
                "ip",
                self.address.map(|a| a.to_string()).unwrap_or_default(),
            ),
            (
                "gateway",
                self.gateway.map(|g| g.to_string()).unwrap_or_default(),
            ),
            ("dns", self.dns.join(",")),
            ("domain", self.domain.clone()),
            ("bridge", self.bridge.clone()),
            ("volumes", self.volumes.join(",")),
            (
                "mac",
                self.effective_mac()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ),
            ("mtu", self.mtu.map(|m| m.to_string()).unwrap_or_default()),
            ("vlan", self.vlan.map(|v| v.to_string()).unwrap_or_default()),
            (
                "env",
                self.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("command", self.command.join(" ")),
            ("privileged", self.privileged.to_string()),
            ("cap_add", self.cap_add.join(",")),
            ("restart", self.restart.clone()),
        ]
    }

    /// The labels that make Docker the record of this container.
    pub fn labels(&self, host_id: &str) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert(LABEL_MANAGED.into(), "true".into());
        l.insert(LABEL_HOST.into(), host_id.into());
        l.insert(LABEL_HASH.into(), self.hash());
        l.insert(LABEL_IFACE.into(), IFACE.into());
        if let Some(a) = self.address {
            l.insert(LABEL_IP.into(), a.to_string());
        }
        if let Some(g) = self.gateway {
            l.insert(LABEL_GATEWAY.into(), g.to_string());
        }
        l.insert(LABEL_BRIDGE.into(), self.bridge.clone());
        if let Some(m) = self.effective_mac() {
            l.insert(LABEL_MAC.into(), m.to_string());
        }
        if let Some(m) = self.mtu {
            l.insert(LABEL_MTU.into(), m.to_string());
        }
        if let Some(v) = self.vlan {
            l.insert(LABEL_VLAN.into(), v.to_string());
        }
        l
    }
}

fn is_absolute_clean(p: &str) -> bool {
    let path = Path::new(p);
    path.is_absolute() && !path.components().any(|c| c == Component::ParentDir)
}

/// Rebuilds the network part of a container's spec from its labels.
pub fn plug_spec_from_labels(
    container: &str,
    full_id: &str,
    labels: &std::collections::HashMap<String, String>,
) -> Result<PlugSpec, SpecError> {
    let missing = |label: &str| SpecError::Label {
        container: container.to_string(),
        label: label.to_string(),
    };
    let get = |label: &str| labels.get(label).filter(|v| !v.is_empty());
    let address: Ipv4Network = get(LABEL_IP)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing(LABEL_IP))?;
    let bridge = get(LABEL_BRIDGE)
        .cloned()
        .ok_or_else(|| missing(LABEL_BRIDGE))?;
    let gateway = match get(LABEL_GATEWAY) {
        Some(g) => Some(g.parse().map_err(|_| missing(LABEL_GATEWAY))?),
        None => None,
    };
    let mac = match get(LABEL_MAC) {
        Some(m) => Some(m.parse().map_err(|_| missing(LABEL_MAC))?),
        None => None,
    };
    let mtu = match get(LABEL_MTU) {
        Some(m) => Some(m.parse().map_err(|_| missing(LABEL_MTU))?),
        None => None,
    };
    let vlan = match get(LABEL_VLAN) {
        Some(v) => Some(v.parse().map_err(|_| missing(LABEL_VLAN))?),
        None => None,
    };
    Ok(PlugSpec {
        bridge,
        iface: get(LABEL_IFACE).cloned().unwrap_or_else(|| IFACE.into()),
        address,
        gateway,
        mac,
        mtu,
        vlan,
        owner: Owner {
            name: container.to_string(),
            full_id: Some(full_id.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "web1".into(),
            image: "busybox".into(),
            address: Some("10.0.0.3/16".parse().unwrap()),
            gateway: Some("10.0.0.100".parse().unwrap()),
            bridge: "br0".into(),
            volumes: vec!["/srv/web1:/data:ro".into()],
            running: true,
            privileged: true,
            cap_add: vec!["NET_ADMIN".into()],
            ..Default::default()
        }
    }

    #[test]
    fn labels_round_trip_to_the_plug_spec() {
        let s = spec();
        let labels: std::collections::HashMap<_, _> = s.labels("host1").into_iter().collect();
        let plug = plug_spec_from_labels("web1", "abc", &labels).unwrap();
        assert_eq!(plug.address, s.address.unwrap());
        assert_eq!(plug.gateway, s.gateway);
        assert_eq!(plug.bridge, "br0");
        assert_eq!(plug.iface, "eth0");
        assert_eq!(Some(plug.effective_mac()), s.effective_mac());
        assert_eq!(labels[LABEL_HOST], "host1");
    }

    #[test]
    fn hash_changes_with_the_network_but_not_with_hooks() {
        let a = spec();
        let mut b = spec();
        b.postcreation = vec!["/bin/true".into()];
        b.running = false;
        assert_eq!(a.hash(), b.hash());
        b.address = Some("10.0.0.4/16".parse().unwrap());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn relative_and_dotdot_volumes_are_refused() {
        for bad in [
            "srv:/data",
            "/srv/../etc:/data",
            "/srv:data",
            "/srv",
            "/a:/b:rx",
        ] {
            let mut s = spec();
            s.volumes = vec![bad.into()];
            let err = s.check().unwrap_err().to_string();
            assert!(err.contains("web1"), "{err}");
        }
        spec().check().unwrap();
    }
}
