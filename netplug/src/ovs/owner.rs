//! Who a port belongs to, as ovs-docker and netplug record it in the
//! interface's `external_ids`.

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
    pub(super) fn from_external_ids(pairs: &[(String, String)]) -> Option<Self> {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let container = get(KEY_CONTAINER).filter(|c| !c.is_empty())?;
        Some(PortOwner {
            container,
            iface: get(KEY_IFACE).unwrap_or_default(),
            full_id: get(KEY_FULL_ID),
        })
    }
}

pub(super) const KEY_CONTAINER: &str = "container_id";
pub(super) const KEY_IFACE: &str = "container_iface";
pub(super) const KEY_FULL_ID: &str = "dockstack_container_id";

#[cfg(test)]
mod tests {
    use super::*;

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
