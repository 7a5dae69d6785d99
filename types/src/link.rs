//! What eth0 and its port may be: the bridge's name, the MTU, the VLAN tag.

use std::ops::RangeInclusive;

/// Linux's longest interface name, in bytes.
pub const MAX_IFNAME: usize = 15;

/// The MTUs eth0 may have: IPv4's least, and the most Linux allows a veth.
pub const MTU: RangeInclusive<u32> = 68..=65535;

/// The VLAN tags an access port may carry (0 and 4095 are reserved).
pub const VLAN: RangeInclusive<u32> = 1..=4094;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfnameError {
    #[error("bridge name `{name}` is {} bytes long; linux allows at most {MAX_IFNAME}", name.len())]
    TooLong { name: String },
    #[error("`{0}` is not a valid interface name")]
    Invalid(String),
}

/// Linux's rule for interface names: 1 to 15 bytes, no `/`, `:` or
/// whitespace, not `.` or `..`; printable ASCII only, so that a name is the
/// same in OVSDB, netlink and a log line.
pub fn check_ifname(name: &str) -> Result<(), IfnameError> {
    if name.len() > MAX_IFNAME {
        return Err(IfnameError::TooLong {
            name: name.to_owned(),
        });
    }
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(())
    } else {
        Err(IfnameError::Invalid(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert_eq!(check_ifname("br-int"), Ok(()));
        for bad in ["", ".", "..", "br/0", "br 0", "br:0", "bré"] {
            assert!(
                matches!(check_ifname(bad), Err(IfnameError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_ifname("a-very-long-bridge"),
            Err(IfnameError::TooLong { .. })
        ));
    }
}
