//! The validated environment: what the rest of the client works with.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

pub use dockstack_types::runtime::Runtime;
use dockstack_types::{Mac, RestartPolicy};
use ipnetwork::{Ipv4Network, Ipv6Network};

/// Where a container host's server is reached: an IP address, or a name
/// the resolver knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostAddress {
    Ip(IpAddr),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address")]
pub struct HostAddressError(pub String);

impl HostAddress {
    /// `address:port` as a URL takes it: an IPv6 address in brackets.
    pub fn authority(&self, port: u16) -> String {
        match self {
            HostAddress::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            other => format!("{other}:{port}"),
        }
    }
}

impl FromStr for HostAddress {
    type Err = HostAddressError;

    /// An IP address, or a host name: no whitespace and nothing a URL's
    /// authority would read as something else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = s.parse() {
            return Ok(HostAddress::Ip(ip));
        }
        let name_ok = !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/:@?#[]".contains(c));
        if name_ok {
            Ok(HostAddress::Name(s.to_owned()))
        } else {
            Err(HostAddressError(s.to_owned()))
        }
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddress::Ip(ip) => write!(f, "{ip}"),
            HostAddress::Name(name) => f.write_str(name),
        }
    }
}

/// A container host from `containerhosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHost {
    pub name: String,
    pub ip: HostAddress,
    /// 3288 when absent.
    pub port: u16,
}

/// `registration.dns` of the environment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRegistration {
    /// The dnsmasq container.
    pub container: String,
    /// Its addn-hosts file, a path on that container's host.
    pub hostsfile: PathBuf,
    /// Command line run inside the DNS container; default `pkill -HUP -x dnsmasq`.
    pub reload: String,
}

/// `registration.puppet` of the environment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuppetRegistration {
    pub master: String,
    pub hieradata: PathBuf,
    pub sitepp: PathBuf,
    /// Default `puppet cert clean {fqdn}`.
    pub certclean: String,
    /// Default `puppet agent -t`.
    pub agent: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub dns: Option<DnsRegistration>,
    pub puppet: Option<PuppetRegistration>,
}

/// One container with every default merged in, as the 2015 client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub ip: Ipv4Addr,
    /// Prefix length, 0..=32 (the file's `mask`).
    pub mask: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Dual stack: eth0's IPv6 address with its prefix length (`ip6`).
    pub ip6: Option<Ipv6Network>,
    /// The IPv6 default route's next hop; only with `ip6`.
    pub gateway6: Option<Ipv6Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub bridge: String,
    /// Name of the host in `containerhosts`.
    pub host: String,
    /// `HOST_PATH:CONTAINER_PATH[:ro]`.
    pub volumes: Vec<String>,
    /// `state`: true = running, false = created but stopped. Default true.
    pub state: bool,
    pub precreation: Vec<String>,
    pub postcreation: Vec<String>,
    pub postdestroy: Vec<String>,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub vlan: Option<u16>,
    /// Port security: IPv4 addresses or CIDRs, besides its own IP, that the
    /// container may send from (a keepalived VIP, say).
    pub allowed_addresses: Vec<Ipv4Network>,
    pub env: BTreeMap<String, String>,
    pub command: Vec<String>,
    /// Default false: dockstack needs no privilege inside the container.
    pub privileged: bool,
    /// Default none: the network is plugged from the host, and NET_ADMIN
    /// would let the container change it (keepalived needs it: add it).
    pub cap_add: Vec<String>,
    pub restart: Option<RestartPolicy>,
    pub service: Option<String>,
    pub after: Vec<String>,
    /// `step`: the stage of the environment the container belongs to, 0..=1000.
    /// Default 0. The client's only: the server is not told.
    pub step: u32,
    /// Docker's healthcheck; `None`: none given (the image's own, if any, is kept).
    pub healthcheck: Option<Healthcheck>,
    /// Runs to completion once: no restart policy but "no", and `state` true.
    /// Default false.
    pub oneshot: bool,
    /// Absolute host paths (no `..`) holding the container's configuration.
    pub config_volumes: Vec<PathBuf>,
    /// How it is stopped and what it may use; all optional.
    pub runtime: Runtime,
    /// Used only when the container is first made; not part of its spec.
    pub first_creation: Option<FirstCreation>,
}

/// `first_creation`: what a container is made with the first time only (a
/// bootstrap flag), never when it is recreated, started or restarted, and
/// never a difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstCreation {
    /// Merged over `env`.
    pub env: BTreeMap<String, String>,
    /// In place of `command`; empty: `command`.
    pub command: Vec<String>,
}

/// `healthcheck` of a container, with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// Docker's form: `["CMD", program, args...]` or `["CMD-SHELL", line]`.
    pub test: Vec<String>,
    /// Default 30 s.
    pub interval_ms: u32,
    /// Default 30 s.
    pub timeout_ms: u32,
    /// Default 3.
    pub retries: u32,
    /// Default 0.
    pub start_period_ms: u32,
}

impl Container {
    /// The MAC of eth0: the one the file gives, or the one the server
    /// derives from the IP.
    pub fn effective_mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| Mac::from_ip(self.ip))
    }

    /// `name.domain`, or the name alone when there is no domain.
    pub fn fqdn(&self) -> String {
        match &self.domain {
            Some(d) if !d.is_empty() => format!("{}.{}", self.name, d),
            _ => self.name.clone(),
        }
    }
}

/// A whole, validated environment file.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub path: PathBuf,
    /// `common`, kept as it is (free-form site settings), as YAML text re-rendered
    /// as `key: value` pairs of its top level.
    pub common: BTreeMap<String, String>,
    /// In file order.
    pub hosts: Vec<ContainerHost>,
    /// In file order.
    pub containers: Vec<Container>,
    pub registration: Registration,
    /// `cluster`: the etcd of a cluster shared by several files; `None`:
    /// the servers' own change lock alone.
    pub cluster: Option<Cluster>,
}

/// `cluster` of the environment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// etcd's client URLs.
    pub etcd: Vec<String>,
    /// The key prefix of this cluster's lock and reservations.
    pub prefix: String,
    /// Mutual TLS to etcd; `None` for plain `http://`.
    pub tls: Option<EtcdTls>,
}

/// `cluster.tls`: the CA that signed etcd's certificates, and this
/// operator's certificate and key for etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Environment {
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn host(&self, name: &str) -> Option<&ContainerHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}
