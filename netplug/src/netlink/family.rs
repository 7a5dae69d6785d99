//! The address families, IPv4 and IPv6, as the verbs on addresses and
//! routes see them.

use dockstack_types::ip6::is_link_local;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::route::RouteAddress;

/// An address family, by its address type ([`Ipv4Addr`] or [`Ipv6Addr`]):
/// what the verbs on addresses and routes need to know of it, so that one
/// verb serves both.
pub trait Family: Copy + fmt::Display + Into<IpAddr> + Send + Sync + 'static {
    /// The address in `ip`, when it is of this family and one a plug deals
    /// in: IPv6's link-local addresses, which the kernel gives every link
    /// itself, are not.
    fn plug_address(ip: &IpAddr) -> Option<Self>;
    /// The address in a route's attribute, when it is of this family.
    fn route_address(addr: &RouteAddress) -> Option<Self>;
    /// A route of this family, to filter a dump of routes with.
    fn routes() -> RouteMessageBuilder<Self>;
    /// The route to `dest` alone.
    fn host_route(dest: Self) -> RouteMessageBuilder<Self>;
    /// The default route through `gateway`.
    fn default_route(gateway: Self) -> RouteMessageBuilder<Self>;
    /// Adjusts the request that adds an address.
    fn prepare_address(_msg: &mut AddressMessage) {}
}

impl Family for Ipv4Addr {
    fn plug_address(ip: &IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        }
    }

    fn route_address(addr: &RouteAddress) -> Option<Self> {
        match addr {
            RouteAddress::Inet(a) => Some(*a),
            _ => None,
        }
    }

    fn routes() -> RouteMessageBuilder<Self> {
        RouteMessageBuilder::<Ipv4Addr>::new()
    }

    fn host_route(dest: Self) -> RouteMessageBuilder<Self> {
        Self::routes().destination_prefix(dest, 32)
    }

    fn default_route(gateway: Self) -> RouteMessageBuilder<Self> {
        Self::routes().gateway(gateway)
    }
}

impl Family for Ipv6Addr {
    fn plug_address(ip: &IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) if !is_link_local(*a) => Some(*a),
            _ => None,
        }
    }

    fn route_address(addr: &RouteAddress) -> Option<Self> {
        match addr {
            RouteAddress::Inet6(a) => Some(*a),
            _ => None,
        }
    }

    fn routes() -> RouteMessageBuilder<Self> {
        RouteMessageBuilder::<Ipv6Addr>::new()
    }

    fn host_route(dest: Self) -> RouteMessageBuilder<Self> {
        Self::routes().destination_prefix(dest, 128)
    }

    fn default_route(gateway: Self) -> RouteMessageBuilder<Self> {
        Self::routes().gateway(gateway)
    }

    /// Without Duplicate Address Detection (`nodad`): the address is usable
    /// at once, not tentative for a second; the plug probes for it
    /// beforehand instead.
    fn prepare_address(msg: &mut AddressMessage) {
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
}
