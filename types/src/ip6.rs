//! The rules for a container's IPv6 address and gateway, shared so that
//! the client (reporting file:line) and the server (trusting no client)
//! refuse exactly the same things.

use std::net::Ipv6Addr;

use ipnetwork::Ipv6Network;

/// `ADDR/LEN` of an IPv6 interface address, or what is wrong with it.
pub fn parse_ip6(text: &str) -> Result<Ipv6Network, String> {
    let text = text.trim();
    let Some((addr, len)) = text.split_once('/') else {
        return Err(format!(
            "expected an ipv6 address with its prefix length (ADDR/LEN), found `{text}`"
        ));
    };
    let Ok(addr) = addr.parse::<Ipv6Addr>() else {
        return Err(format!("`{addr}` is not an ipv6 address"));
    };
    let digits = !len.is_empty() && len.len() <= 4 && len.bytes().all(|b| b.is_ascii_digit());
    let len = match len.parse::<u32>() {
        Ok(len) if digits && (1..=128).contains(&len) => len,
        Ok(len) if digits => {
            return Err(format!("prefix length /{len} is out of range (1 to 128)"));
        }
        _ => {
            return Err(format!(
                "prefix length `/{len}` is not a number from 1 to 128"
            ));
        }
    };
    let segments = addr.segments();
    if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
        return Err(format!(
            "{addr} is not a unicast address an interface can have"
        ));
    }
    if (segments[0] & 0xffc0) == 0xfe80 {
        return Err(format!(
            "{addr} is link-local: the kernel makes eth0's own, give a routable address"
        ));
    }
    if addr.to_ipv4_mapped().is_some() {
        return Err(format!(
            "{addr} is an ipv4-mapped address: give the ipv4 one as `ip`"
        ));
    }
    let len = u8::try_from(len).unwrap_or(128);
    let net = Ipv6Network::new(addr, len).map_err(|e| format!("`{text}`: {e}"))?;
    // The subnet-router anycast address (all host bits zero) is a router's.
    if len < 127 && net.network() == addr {
        return Err(format!(
            "{addr} is the subnet-router anycast address of {}/{len}",
            net.network()
        ));
    }
    Ok(net)
}

/// A gateway6 for `net`: a unicast address other than the container's own,
/// inside its prefix or link-local (routers commonly are, on IPv6).
pub fn check_gateway6(net: &Ipv6Network, gateway: Ipv6Addr) -> Result<(), String> {
    check_gateway6_alone(gateway)?;
    let prefix = Ipv6Network::new(net.network(), net.prefix()).unwrap_or(*net);
    if gateway == net.ip() {
        Err(format!("gateway6 {gateway} is the container's own ip6"))
    } else if !is_link_local(gateway) && !net.contains(gateway) {
        Err(format!("gateway6 {gateway} is outside the prefix {prefix}"))
    } else {
        Ok(())
    }
}

/// What a gateway6 must be whatever the address: a unicast address.
pub fn check_gateway6_alone(gateway: Ipv6Addr) -> Result<(), String> {
    if gateway.is_unspecified() || gateway.is_multicast() || gateway.is_loopback() {
        Err(format!("gateway6 {gateway} is not a unicast address"))
    } else {
        Ok(())
    }
}

/// fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_address_needs_a_prefix_in_range_and_must_be_routable_unicast() {
        assert_eq!(
            parse_ip6("fd00:10::5/64").unwrap().to_string(),
            "fd00:10::5/64"
        );
        for (bad, want) in [
            ("fd00:10::5", "ADDR/LEN"),
            ("fd00:10::zz/64", "not an ipv6 address"),
            ("10.0.0.5/24", "not an ipv6 address"),
            ("fd00:10::5/129", "out of range"),
            ("fd00:10::5/0", "out of range"),
            ("fd00:10::5/", "not a number"),
            ("fd00:10::5/+64", "not a number"),
            ("fe80::5/64", "link-local"),
            ("ff02::1/64", "unicast"),
            ("::/64", "unicast"),
            ("::1/128", "unicast"),
            ("::ffff:10.0.0.5/120", "ipv4-mapped"),
            ("fd00:10::/64", "anycast"),
        ] {
            let e = parse_ip6(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn a_gateway_is_inside_the_prefix_or_link_local_and_not_the_address() {
        let net = parse_ip6("fd00:10::5/64").unwrap();
        assert!(check_gateway6(&net, "fd00:10::1".parse().unwrap()).is_ok());
        assert!(check_gateway6(&net, "fe80::1".parse().unwrap()).is_ok());
        let e = check_gateway6(&net, "fd00:11::1".parse().unwrap()).unwrap_err();
        assert!(e.contains("outside the prefix fd00:10::/64"), "{e}");
        let e = check_gateway6(&net, "fd00:10::5".parse().unwrap()).unwrap_err();
        assert!(e.contains("own ip6"), "{e}");
        let e = check_gateway6(&net, "ff02::2".parse().unwrap()).unwrap_err();
        assert!(e.contains("unicast"), "{e}");
    }
}
