//! The names and addresses a bed's slot fixes, and the constants every part of the bed shares.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;

/// Where beds keep their run dirs, slot locks and image build locks.
pub const BED_ROOT: &str = "/tmp/dockstack-testbed";
/// The port every bed server listens on (each on its own management address).
pub const SERVER_PORT: u16 = 3288;
/// The busybox test image built by [`ensure_test_image`](super::ensure_test_image).
pub const TEST_IMAGE: &str = "dockstack-test-busybox:latest";
/// The dnsmasq test image built by [`ensure_dnsmasq_image`](super::ensure_dnsmasq_image).
pub const DNSMASQ_IMAGE: &str = "dockstack-test-dnsmasq:latest";
/// The slot reserved for the demo (`dockstack-testbed up`); never allocated.
pub const DEMO_SLOT: u8 = 0;
/// The highest slot.
pub const MAX_SLOT: u8 = 250;
/// The most hosts a bed can have (management /30s of one /24, bridge addresses below .250).
pub const MAX_HOSTS: usize = 60;
/// Set (to anything but `0`) to leave beds up after their tests.
pub const KEEP_ENV: &str = "DOCKSTACK_TESTBED_KEEP";
/// What a sandbox's name ends with: its application's name comes first.
pub const SANDBOX_SUFFIX: &str = ".dockstack-sandbox";
/// The label by which a server marks the containers of its host.
pub const HOST_LABEL: &str = "dockstack.host";
/// The schema of every host's OVS database, from the machine's Open vSwitch.
pub(super) const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// The directory of a slot: its hosts' run dirs, `bed.state`, `files/`.
pub fn slot_dir(slot: u8) -> PathBuf {
    Path::new(BED_ROOT).join(slot.to_string())
}

/// The `unreachable` routes that keep the bed's ranges from leaking to the
/// default route.
pub(super) fn safety_nets(slot: u8, with_containers: bool) -> Vec<String> {
    let mut nets = vec![format!("10.231.{slot}.0/24")];
    if with_containers {
        nets.push(format!("10.232.{slot}.0/24"));
    }
    nets
}

pub(super) fn mgmt_addresses(slot: u8, i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 4 * u8::try_from(i).expect("a bed has at most 63 hosts");
    (
        Ipv4Addr::new(10, 231, slot, base + 1),
        Ipv4Addr::new(10, 231, slot, base + 2),
    )
}

/// Host `i`'s number in address arithmetic; a bed has a handful of hosts.
pub(super) fn host_number(i: usize) -> u32 {
    u32::try_from(i).expect("a bed has few hosts")
}

pub(super) fn nth_address(net: Ipv4Network, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + n)
}

/// `Some(n)` when `name` is `prefix` followed by the decimal `n`.
pub(super) fn indexed(name: &str, prefix: &str) -> Option<usize> {
    let rest = name.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

pub(super) fn is_bed_mgmt_link(name: &str) -> bool {
    name.strip_prefix("dsm")
        .and_then(|rest| rest.split_once('h'))
        .is_some_and(|(slot, host)| {
            !slot.is_empty()
                && slot.bytes().all(|b| b.is_ascii_digit())
                && indexed(host, "").is_some()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_exactly() {
        assert_eq!(indexed("dsb1h0", "dsb1h"), Some(0));
        assert_eq!(indexed("dsb1h12", "dsb1h"), Some(12));
        assert_eq!(indexed("dsb10h0", "dsb1h"), None);
        assert_eq!(indexed("dsb1h", "dsb1h"), None);
        assert_eq!(indexed("dsb1hx", "dsb1h"), None);
        assert!(is_bed_mgmt_link("dsm3h1"));
        assert!(!is_bed_mgmt_link("dsm3x1"));
        assert!(!is_bed_mgmt_link("dsmh1"));
        assert!(!is_bed_mgmt_link("dsc1"));
    }

    #[test]
    fn addresses_follow_the_slot() {
        assert_eq!(
            mgmt_addresses(7, 2),
            (Ipv4Addr::new(10, 231, 7, 9), Ipv4Addr::new(10, 231, 7, 10))
        );
        let gw: Ipv4Network = "10.0.0.100/16".parse().unwrap();
        assert_eq!(nth_address(gw, 249), Ipv4Addr::new(10, 0, 0, 249));
    }
}
