//! The keys each mapping of the file may hold, and the values a missing key takes.

use dockstack_types::runtime::Runtime;

/// The port a `dockstack-server` listens on when `containerhosts` gives none.
pub const DEFAULT_PORT: u16 = 3288;
pub const DEFAULT_RELOAD: &str = "pkill -HUP -x dnsmasq";
pub const DEFAULT_CERTCLEAN: &str = "puppet cert clean {fqdn}";
pub const DEFAULT_AGENT: &str = "puppet agent -t";

pub(super) const TOP_KEYS: &[&str] = &[
    "common",
    "containerhosts",
    "containerdefault",
    "containers",
    "registration",
    "registered_services",
    "cluster",
];
pub(super) const CLUSTER_KEYS: &[&str] = &["etcd", "prefix", "tls"];
pub(super) const CLUSTER_TLS_KEYS: &[&str] = &["ca", "cert", "key"];
/// Where a cluster's keys live in etcd unless `cluster.prefix` says.
pub const DEFAULT_CLUSTER_PREFIX: &str = "/dockstack";
pub(super) const HOST_KEYS: &[&str] = &["ip", "port"];
/// A container's keys but its runtime settings ([`Runtime::KEYS`]).
const BASE_CONTAINER_KEYS: &[&str] = &[
    "image",
    "ip",
    "mask",
    "gateway",
    "ip6",
    "gateway6",
    "dns",
    "domain",
    "bridge",
    "host",
    "volumes",
    "state",
    "precreation",
    "postcreation",
    "postdestroy",
    "mac",
    "mtu",
    "vlan",
    "allowed_addresses",
    "env",
    "command",
    "privileged",
    "cap_add",
    "restart",
    "service",
    "after",
    "step",
    "healthcheck",
    "oneshot",
    "config_volumes",
    "first_creation",
];
/// Every key a container may hold: the runtime settings' names are those
/// the types crate gives them, listed once.
pub(super) static CONTAINER_KEYS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        BASE_CONTAINER_KEYS
            .iter()
            .chain(Runtime::KEYS.iter())
            .copied()
            .collect()
    });
pub(super) const FIRST_CREATION_KEYS: &[&str] = &["env", "command"];
pub(super) const ULIMIT_KEYS: &[&str] = &["soft", "hard"];
/// The highest `step`.
pub(super) const MAX_STEP: i64 = 1000;
pub(super) const HEALTHCHECK_KEYS: &[&str] =
    &["test", "interval", "timeout", "retries", "start_period"];
pub(super) const REGISTRATION_KEYS: &[&str] = &["dns", "puppet"];
pub(super) const DNS_KEYS: &[&str] = &["container", "hostsfile", "reload"];
pub(super) const PUPPET_KEYS: &[&str] = &["master", "hieradata", "sitepp", "certclean", "agent"];
