//! The host end of a plug: its name (at most [`IFNAMSIZ_MAX`] bytes, with
//! alternatives for names that hash alike), the alias that records its
//! owner, and whose a link found under one of those names is.

use rtnetlink::packet_route::link::InfoKind;
use sha2::{Digest, Sha256};

use crate::netlink::{LinkInfoSummary, Netlink, NetlinkError};
use crate::ovs::PortOwner;

/// Linux allows interface names of at most 15 bytes.
pub const IFNAMSIZ_MAX: usize = 15;

/// The host end's usual name: `ds`, up to six characters of the
/// container's name, and six hex digits of a hash of name and interface, so
/// it is readable, stable across restarts and at most 14 bytes. A hash can
/// collide, so a plug may take the next of [`host_ifname_candidates`].
pub fn host_ifname(container: &str, iface: &str) -> String {
    host_ifname_nth(container, iface, 0)
}

/// How many names the host end of one container interface may take.
pub(crate) const HOST_NAME_CANDIDATES: u32 = 4;

/// The names the host end may have, in order of preference. A plug takes
/// the first one that is free or already its own: the owner is recorded in
/// the link's alias (see [`owner_alias`]), so two containers whose names
/// hash alike each get a name of their own, and neither plug nor unplug
/// ever touches the other's link. The order is fixed, so a container gets
/// the same name again as long as the same names are taken.
pub fn host_ifname_candidates(container: &str, iface: &str) -> Vec<String> {
    (0..HOST_NAME_CANDIDATES)
        .map(|n| host_ifname_nth(container, iface, n))
        .collect()
}

fn host_ifname_nth(container: &str, iface: &str, n: u32) -> String {
    let readable: String = container
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    // The first name hashes as it always did, so plugs made before there
    // were alternatives keep their names.
    let digest = if n == 0 {
        Sha256::digest(format!("{container}\0{iface}").as_bytes())
    } else {
        Sha256::digest(format!("{container}\0{iface}\0{n}").as_bytes())
    };
    let hash: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    format!("ds{readable}{hash}")
}

/// What every owner alias starts with.
const ALIAS_PREFIX: &str = "netplug ";
/// The kernel keeps at most this many bytes of an alias (IFALIASZ - 1).
const ALIAS_MAX: usize = 255;

/// The alias of a host end that records whose plug it is:
/// `netplug CONTAINER/IFACE` (`ip link` shows it), or a hash of the two
/// where that would not fit.
pub fn owner_alias(container: &str, iface: &str) -> String {
    let readable = format!("{ALIAS_PREFIX}{container}/{iface}");
    if readable.len() <= ALIAS_MAX {
        return readable;
    }
    let digest = Sha256::digest(format!("{container}\0{iface}").as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{ALIAS_PREFIX}sha256:{hash}")
}

/// Whose a host link with one of a plug's candidate names is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    Ours,
    /// Somebody else's, described for an error message.
    Other(String),
}

/// `unmarked_veth_is_ours`: a veth without an owner alias here counts as
/// ours (see the callers).
fn holder(link: &LinkInfoSummary, unmarked_veth_is_ours: bool, alias: &str) -> Holder {
    match link.alias.as_deref() {
        Some(a) if a == alias => Holder::Ours,
        Some(a) if a.starts_with(ALIAS_PREFIX) => Holder::Other(format!(
            "{} (the plug of {})",
            link.name,
            &a[ALIAS_PREFIX.len()..]
        )),
        // A plug of an earlier netplug, which wrote no alias, or one made a
        // moment ago whose alias is not set yet: the caller tells which.
        _ if unmarked_veth_is_ours && link.kind == Some(InfoKind::Veth) => Holder::Ours,
        _ => Holder::Other(format!(
            "{} (a {} link that is no plug of netplug)",
            link.name,
            link.kind
                .as_ref()
                .map_or_else(|| "kernel".to_string(), |k| format!("{k:?}").to_lowercase())
        )),
    }
}

/// True when an OVS port's recorded owner is `container`'s `iface`.
pub(crate) fn is_owner(owner: Option<&PortOwner>, container: &str, iface: &str) -> bool {
    owner.is_some_and(|o| o.container == container && o.iface == iface)
}

/// The host end's name chosen for a plug.
#[derive(Debug)]
pub(crate) struct HostName {
    pub(crate) name: String,
    /// Our link of that name, when there is one already.
    pub(crate) existing: Option<LinkInfoSummary>,
    /// Further links of ours under other candidate names: leftovers.
    pub(crate) leftovers: Vec<String>,
    /// Names held by others, which nothing may touch.
    pub(crate) others: Vec<String>,
}

/// The links found under a plug's candidate names, by whose they are.
#[derive(Debug, Default)]
pub(crate) struct Holders {
    /// Our links, in candidate order.
    pub(crate) ours: Vec<LinkInfoSummary>,
    /// Names held by others, each with a description for an error message.
    pub(crate) others: Vec<(String, String)>,
    /// The first name that no link has.
    pub(crate) free: Option<String>,
}

/// Sorts the links found under the candidates (in candidate order).
/// `unmarked_first_is_ours`: a veth without an alias under the first name
/// is ours.
pub(crate) fn sort_holders(
    found: &[(String, Option<LinkInfoSummary>)],
    alias: &str,
    unmarked_first_is_ours: bool,
) -> Holders {
    let mut holders = Holders::default();
    for (i, (name, link)) in found.iter().enumerate() {
        match link {
            None => {
                holders.free.get_or_insert_with(|| name.clone());
            }
            Some(link) => match holder(link, i == 0 && unmarked_first_is_ours, alias) {
                Holder::Ours => holders.ours.push(link.clone()),
                Holder::Other(what) => holders.others.push((name.clone(), what)),
            },
        }
    }
    holders
}

/// Picks the host end's name from the candidates and the links found under
/// them (see [`sort_holders`]): our own link if there is one, else the first
/// free name. `Err` describes every holder when all are taken.
pub(crate) fn choose_host_name(
    found: &[(String, Option<LinkInfoSummary>)],
    alias: &str,
    unmarked_first_is_ours: bool,
) -> Result<HostName, String> {
    let Holders { ours, others, free } = sort_holders(found, alias, unmarked_first_is_ours);
    let other_names = others.iter().map(|(n, _)| n.clone()).collect();
    let mut ours = ours.into_iter();
    if let Some(existing) = ours.next() {
        return Ok(HostName {
            name: existing.name.clone(),
            existing: Some(existing),
            leftovers: ours.map(|l| l.name).collect(),
            others: other_names,
        });
    }
    match free {
        Some(name) => Ok(HostName {
            name,
            existing: None,
            leftovers: Vec::new(),
            others: other_names,
        }),
        None => Err(others
            .into_iter()
            .map(|(_, what)| what)
            .collect::<Vec<_>>()
            .join(", ")),
    }
}

/// Whether a veth without an owner alias under the first candidate name
/// is the plug of `iface` in the namespace of `inner`: only if its peer is
/// that interface. It may be a plug of an earlier netplug, which wrote no
/// alias, or the veth that a plug of another container whose name hashes
/// alike made a moment ago, before its alias was set.
pub(crate) async fn unmarked_first_is_ours(
    inner: &Netlink,
    iface: &str,
    found: &[(String, Option<LinkInfoSummary>)],
) -> Result<bool, NetlinkError> {
    let Some((_, Some(first))) = found.first() else {
        return Ok(false);
    };
    if first.alias.is_some() || first.kind != Some(InfoKind::Veth) {
        return Ok(false);
    }
    Ok(inner.link_by_name(iface).await?.is_some_and(|eth| {
        eth.peer_index == Some(first.index) && first.peer_index == Some(eth.index)
    }))
}

/// The host's links under each of `names`, in that order.
pub(crate) async fn links_named(
    host: &Netlink,
    names: &[String],
) -> Result<Vec<(String, Option<LinkInfoSummary>)>, NetlinkError> {
    let links = futures::future::join_all(names.iter().map(|n| host.link_by_name(n))).await;
    names
        .iter()
        .cloned()
        .zip(links)
        .map(|(name, link)| Ok((name, link?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ifname_is_short_stable_and_distinct() {
        let a = host_ifname("haproxy1", "eth0");
        assert!(a.len() <= IFNAMSIZ_MAX, "{a}");
        assert_eq!(a, host_ifname("haproxy1", "eth0"));
        assert_ne!(a, host_ifname("haproxy2", "eth0"));
        assert_ne!(a, host_ifname("haproxy1", "eth1"));
        let long = host_ifname("a-very-long-container-name-indeed", "eth0");
        assert!(long.len() <= IFNAMSIZ_MAX, "{long}");
    }

    #[test]
    fn candidates_start_with_the_usual_name_and_are_distinct() {
        let names = host_ifname_candidates("haproxy1", "eth0");
        assert_eq!(names.len(), HOST_NAME_CANDIDATES as usize);
        assert_eq!(names[0], host_ifname("haproxy1", "eth0"));
        for (i, a) in names.iter().enumerate() {
            assert!(a.len() <= IFNAMSIZ_MAX, "{a}");
            assert!(a.starts_with("dshaprox"), "{a}");
            assert!(!names[i + 1..].contains(a), "{names:?}");
        }
        assert_eq!(names, host_ifname_candidates("haproxy1", "eth0"));
    }

    #[test]
    fn owner_alias_is_readable_and_always_fits() {
        assert_eq!(owner_alias("web1", "eth0"), "netplug web1/eth0");
        let long = "x".repeat(400);
        let alias = owner_alias(&long, "eth0");
        assert!(alias.len() <= ALIAS_MAX, "{}", alias.len());
        assert!(alias.starts_with("netplug sha256:"), "{alias}");
        assert_ne!(alias, owner_alias(&"y".repeat(400), "eth0"));
    }

    fn link(name: &str, kind: InfoKind, alias: Option<&str>) -> LinkInfoSummary {
        LinkInfoSummary {
            index: 7,
            name: name.into(),
            kind: Some(kind),
            mac: None,
            mtu: None,
            up: true,
            peer_index: None,
            controller: None,
            alias: alias.map(str::to_string),
        }
    }

    fn found(links: [Option<LinkInfoSummary>; 3]) -> Vec<(String, Option<LinkInfoSummary>)> {
        ["n0", "n1", "n2"]
            .into_iter()
            .map(str::to_string)
            .zip(links)
            .collect()
    }

    const OURS: &str = "netplug web1/eth0";

    #[test]
    fn a_plug_takes_its_own_link_or_the_first_free_name() {
        let chosen = choose_host_name(&found([None, None, None]), OURS, true).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.existing.is_none()),
            ("n0", true)
        );

        // Another container's plug holds the first name: the next is ours.
        let other = link("n0", InfoKind::Veth, Some("netplug web7/eth0"));
        let chosen =
            choose_host_name(&found([Some(other.clone()), None, None]), OURS, true).unwrap();
        assert_eq!(chosen.name, "n1");
        assert_eq!(chosen.others, ["n0"]);

        // Our plug under the second name stays ours, though the first is
        // free again by now.
        let ours = link("n1", InfoKind::Veth, Some(OURS));
        let chosen = choose_host_name(&found([None, Some(ours), None]), OURS, true).unwrap();
        assert_eq!(chosen.name, "n1");
        assert!(chosen.existing.is_some());

        // A veth of the first name with no alias is an older netplug's plug;
        // a bridge of that name is nobody's plug, and not ours to take.
        let legacy = link("n0", InfoKind::Veth, None);
        let chosen =
            choose_host_name(&found([Some(legacy.clone()), None, None]), OURS, true).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.existing.is_some()),
            ("n0", true)
        );
        // Unless its peer is not our interface: then it is a colliding
        // container's, made a moment ago.
        let chosen = choose_host_name(&found([Some(legacy), None, None]), OURS, false).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.others),
            ("n1", vec!["n0".to_string()])
        );
        let bridge = link("n0", InfoKind::Bridge, None);
        let chosen = choose_host_name(&found([Some(bridge), None, None]), OURS, true).unwrap();
        assert_eq!(chosen.name, "n1");

        // Two of ours: the first is used, the other is a leftover.
        let (a, b) = (
            link("n0", InfoKind::Veth, Some(OURS)),
            link("n2", InfoKind::Veth, Some(OURS)),
        );
        let chosen = choose_host_name(&found([Some(a), None, Some(b)]), OURS, true).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.leftovers),
            ("n0", vec!["n2".to_string()])
        );
    }

    #[test]
    fn all_names_taken_names_every_holder() {
        let taken = found([
            Some(link("n0", InfoKind::Veth, Some("netplug web7/eth0"))),
            Some(link("n1", InfoKind::Bridge, None)),
            Some(link("n2", InfoKind::Veth, Some("netplug db2/eth0"))),
        ]);
        let err = choose_host_name(&taken, OURS, true).unwrap_err();
        assert!(err.contains("n0 (the plug of web7/eth0)"), "{err}");
        assert!(err.contains("n1 (a bridge link"), "{err}");
        assert!(err.contains("n2 (the plug of db2/eth0)"), "{err}");
    }
}
