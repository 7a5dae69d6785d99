//! Ethernet MAC addresses: parsing, printing, the MAC derived from an IPv4
//! address, the IPv6 link-local address derived from a MAC, and which MACs
//! a container's eth0 may be given.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A MAC address. Parsed from and printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// What is wrong with a MAC address given as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("invalid MAC address {0:?}: want six hex pairs such as 02:d5:0a:00:00:01")]
    Syntax(String),
    /// A multicast MAC is never an interface's own: frames from it would be
    /// flooded, and port security could not pin the port to it.
    #[error("mac {0} is a multicast address")]
    Multicast(Mac),
    /// 00:00:00:00:00:00 is no station's address.
    #[error("mac {0} is the all-zero address, which no interface has")]
    Zero(Mac),
}

impl Mac {
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// A locally administered MAC built from the IPv4 address: `02:d5:a.b.c.d`.
    /// The same address always gets the same MAC, so neighbours' caches stay
    /// right across restarts.
    pub const fn from_ip(ip: Ipv4Addr) -> Self {
        let o = ip.octets();
        Self([0x02, 0xd5, o[0], o[1], o[2], o[3]])
    }

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// The group bit of the first octet.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The link-local address the kernel gives an interface of this MAC
    /// (`addr_gen_mode` 0, RFC 4291's modified EUI-64): port security lets
    /// a port send from this one link-local address and no other.
    pub const fn link_local(self) -> Ipv6Addr {
        let [a, b, c, d, e, f] = self.0;
        Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([a ^ 0x02, b]),
            u16::from_be_bytes([c, 0xff]),
            u16::from_be_bytes([0xfe, d]),
            u16::from_be_bytes([e, f]),
        )
    }

    /// The MAC a container's eth0 may be given: any unicast one but the
    /// all-zero address.
    pub fn parse_interface(text: &str) -> Result<Self, MacError> {
        let mac: Mac = text.parse()?;
        if mac.is_multicast() {
            return Err(MacError::Multicast(mac));
        }
        if mac.0 == [0; 6] {
            return Err(MacError::Zero(mac));
        }
        Ok(mac)
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(mac: Mac) -> Self {
        mac.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MacError::Syntax(s.to_owned());
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let p = parts.next().ok_or_else(bad)?;
            // from_str_radix takes a sign too ("+2"): two hex digits only.
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m: Mac = "02:d5:0A:00:00:ff".parse().unwrap();
        assert_eq!(m.octets(), [0x02, 0xd5, 0x0a, 0, 0, 0xff]);
        assert_eq!(m.to_string(), "02:d5:0a:00:00:ff");
    }

    #[test]
    fn refuses_bad_forms() {
        for s in [
            "",
            "02:d5:0a:00:00",
            "02:d5:0a:00:00:ff:01",
            "2:d5:0a:00:00:ff",
            "02:d5:0a:00:00:gg",
            "+2:d5:0a:00:00:ff",
        ] {
            assert!(s.parse::<Mac>().is_err(), "{s} parsed");
        }
    }

    #[test]
    fn mac_is_derived_from_ip_and_round_trips() {
        let mac = Mac::from_ip(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(mac.to_string(), "02:d5:0a:00:00:03");
        assert_eq!("02:d5:0a:00:00:03".parse::<Mac>().ok(), Some(mac));
        assert_eq!("02:d5:0a:00:00".parse::<Mac>().ok(), None);
        assert_eq!("zz:d5:0a:00:00:03".parse::<Mac>().ok(), None);
    }

    #[test]
    fn the_link_local_address_is_the_modified_eui64_of_the_mac() {
        let mac: Mac = "02:d5:0a:00:00:03".parse().unwrap();
        assert_eq!(mac.link_local().to_string(), "fe80::d5:aff:fe00:3");
        let mac: Mac = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(mac.link_local().to_string(), "fe80::5054:ff:fe12:3456");
    }

    #[test]
    fn an_interface_mac_is_unicast() {
        assert!(Mac::parse_interface("02:42:0a:00:00:01").is_ok());
        assert_eq!(
            Mac::parse_interface("03:42:0a:00:00:01").unwrap_err(),
            MacError::Multicast(Mac::new([3, 0x42, 10, 0, 0, 1]))
        );
        assert_eq!(
            Mac::parse_interface("ff:ff:ff:ff:ff:ff").unwrap_err(),
            MacError::Multicast(Mac::new([0xff; 6]))
        );
        assert_eq!(
            Mac::parse_interface("00:00:00:00:00:00").unwrap_err(),
            MacError::Zero(Mac::new([0; 6]))
        );
    }
}
