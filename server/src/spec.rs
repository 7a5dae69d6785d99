//! The domain's container spec: what a client asks for, valid by
//! construction (every check is in its `TryFrom<pb::ContainerSpec>`), and
//! hashed. Its Docker labels are the `record` module's.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use dockstack_proto as pb;
use dockstack_proto::ip6;
use ipnetwork::{Ipv4Network, Ipv6Network};
use netplug::Mac;
use sha2::{Digest, Sha256};

use crate::hooks::{HookError, check_hooks};

/// The interface every container gets.
pub const IFACE: &str = "eth0";

/// The MTUs eth0 may have: IPv4's least, and the most Linux allows a veth.
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65535;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container {container}: {message}")]
    Invalid { container: String, message: String },
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// Docker's restart policy of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

impl RestartPolicy {
    /// The policy named as Docker names it; empty means none was given.
    fn parse(s: &str) -> Option<Option<Self>> {
        Some(Some(match s {
            "" => return Some(None),
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure,
            _ => return None,
        }))
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure => "on-failure",
        })
    }
}

/// Docker's healthcheck of a container, as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", prog, args...]` or `["CMD-SHELL", line]`.
    pub test: Vec<String>,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub retries: u32,
    pub start_period_ms: u32,
}

impl Healthcheck {
    fn describe(&self) -> String {
        format!(
            "{} interval={}ms timeout={}ms retries={} start_period={}ms",
            self.test.join(" "),
            self.interval_ms,
            self.timeout_ms,
            self.retries,
            self.start_period_ms
        )
    }
}

/// At most this many config volumes: each is read on every plan.
const MAX_CONFIG_VOLUMES: usize = 64;

/// Longest healthcheck interval, timeout or start period a spec may ask for.
const MAX_HEALTH_MS: u32 = 3_600_000;

impl Healthcheck {
    fn try_from_pb(h: pb::Healthcheck) -> Result<Self, String> {
        match h.test.first().map(String::as_str) {
            Some("CMD") if h.test.len() >= 2 => {}
            Some("CMD-SHELL") if h.test.len() == 2 => {}
            _ => {
                return Err(format!(
                    "healthcheck test {:?} is neither [\"CMD\", program, args...] nor [\"CMD-SHELL\", line]",
                    h.test
                ));
            }
        }
        if h.test.len() > 256 || h.test.iter().any(|t| t.len() > 4096 || t.contains('\0')) {
            return Err("healthcheck test too long or holding a NUL".into());
        }
        for (what, ms, zero_ok) in [
            ("interval", h.interval_ms, false),
            ("timeout", h.timeout_ms, false),
            ("start_period", h.start_period_ms, true),
        ] {
            if (ms == 0 && !zero_ok) || ms > MAX_HEALTH_MS {
                return Err(format!(
                    "healthcheck {what} {ms} ms out of range 1..{MAX_HEALTH_MS}"
                ));
            }
        }
        if !(1..=1000).contains(&h.retries) {
            return Err(format!(
                "healthcheck retries {} out of range 1..1000",
                h.retries
            ));
        }
        Ok(Healthcheck {
            test: h.test,
            interval_ms: h.interval_ms,
            timeout_ms: h.timeout_ms,
            retries: h.retries,
            start_period_ms: h.start_period_ms,
        })
    }
}

/// Everything the server needs to create and plug one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub address: Ipv4Network,
    pub gateway: Option<Ipv4Addr>,
    /// Dual stack: eth0's IPv6 address and prefix; `None`: IPv4 only.
    pub address6: Option<Ipv6Network>,
    /// Only with `address6`.
    pub gateway6: Option<Ipv6Addr>,
    pub dns: Vec<String>,
    pub domain: String,
    pub bridge: String,
    pub volumes: Vec<String>,
    pub running: bool,
    pub precreation: Vec<String>,
    pub postcreation: Vec<String>,
    pub postdestroy: Vec<String>,
    /// The MAC the client asked for; see [`ContainerSpec::effective_mac`].
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub vlan: Option<u16>,
    /// Port security: the addresses besides its own the container may
    /// send from, each a network with no host bits (a /32 for an address).
    pub allowed_addresses: Vec<Ipv4Network>,
    pub env: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    /// The policy the file gives; see [`ContainerSpec::restart_policy`].
    pub restart: Option<RestartPolicy>,
    pub healthcheck: Option<Healthcheck>,
    /// Runs to completion: a run waits for its exit and checks its status.
    pub oneshot: bool,
    /// The environment file it came from (a record only: not hashed).
    pub environment: String,
    /// Its Puppet service (a record only: not hashed).
    pub service: String,
    /// Host paths whose contents belong to the spec (see `confighash`):
    /// the list is part of the hash, a change of their contents is a
    /// restart, not a different spec.
    pub config_volumes: Vec<PathBuf>,
    /// Private, so that outside this module a spec can only be made through
    /// `TryFrom<pb::ContainerSpec>`, where every check is.
    checked: Checked,
}

/// The mark of a spec that went through every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked;

impl TryFrom<pb::ContainerSpec> for ContainerSpec {
    type Error = SpecError;

    /// Checks what a server must never do on a client's word alone, naming
    /// the container in every error.
    fn try_from(s: pb::ContainerSpec) -> Result<Self, SpecError> {
        let name = s.name.clone();
        let bad = |message: String| SpecError::Invalid {
            container: name.clone(),
            message,
        };
        if !is_container_name(&s.name) {
            return Err(bad(format!("invalid container name {:?}", s.name)));
        }
        if s.name.ends_with(crate::record::SANDBOX_SUFFIX) {
            return Err(bad(format!(
                "container name {:?} ends with {:?}, which dockstack keeps for its sandboxes",
                s.name,
                crate::record::SANDBOX_SUFFIX
            )));
        }
        let ip: Ipv4Addr =
            s.ip.parse()
                .map_err(|_| bad(format!("invalid IP address {:?}", s.ip)))?;
        let prefix = u8::try_from(s.prefix_len)
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad(format!("mask {} out of range 0..32", s.prefix_len)))?;
        let address = Ipv4Network::new(ip, prefix).map_err(|e| bad(e.to_string()))?;
        let gateway = if s.gateway.is_empty() {
            None
        } else {
            Some(
                s.gateway
                    .parse()
                    .map_err(|_| bad(format!("invalid gateway {:?}", s.gateway)))?,
            )
        };
        let address6 = (!s.ip6.is_empty())
            .then(|| ip6::parse_ip6(&s.ip6).map_err(|e| bad(format!("ip6: {e}"))))
            .transpose()?;
        let gateway6 = if s.gateway6.is_empty() {
            None
        } else {
            let g: Ipv6Addr = s
                .gateway6
                .parse()
                .map_err(|_| bad(format!("invalid gateway6 {:?}", s.gateway6)))?;
            let net = address6.ok_or_else(|| bad("gateway6 is given without ip6".into()))?;
            ip6::check_gateway6(&net, g).map_err(bad)?;
            Some(g)
        };
        let mac = if s.mac.is_empty() {
            None
        } else {
            Some(
                s.mac
                    .parse()
                    .map_err(|e: netplug::MacError| bad(e.to_string()))?,
            )
        };
        let vlan = match s.vlan {
            0 => None,
            v => Some(
                u16::try_from(v)
                    .ok()
                    .filter(|v| *v < 4095)
                    .ok_or_else(|| bad(format!("vlan {v} out of range 1..4094")))?,
            ),
        };
        if s.allowed_addresses.len() > MAX_ALLOWED_ADDRESSES {
            return Err(bad(format!(
                "{} allowed_addresses, at most {MAX_ALLOWED_ADDRESSES}",
                s.allowed_addresses.len()
            )));
        }
        let mut allowed_addresses = Vec::with_capacity(s.allowed_addresses.len());
        for a in &s.allowed_addresses {
            let net = parse_allowed_address(a).ok_or_else(|| {
                bad(format!(
                    "allowed_addresses: {a:?} is no IPv4 address or CIDR (like 10.0.0.5 or 10.0.0.0/28)"
                ))
            })?;
            if !allowed_addresses.contains(&net) {
                allowed_addresses.push(net);
            }
        }
        if s.image.is_empty() {
            return Err(bad("no image given".into()));
        }
        // Linux's rule for interface names: 1 to 15 bytes, no '/', no
        // whitespace, not `.` or `..`.
        let bridge_ok = !s.bridge.is_empty()
            && s.bridge.len() <= 15
            && s.bridge != "."
            && s.bridge != ".."
            && s.bridge
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
        if !bridge_ok {
            return Err(bad(format!("invalid bridge name {:?}", s.bridge)));
        }
        if s.mtu != 0 && !(MIN_MTU..=MAX_MTU).contains(&s.mtu) {
            return Err(bad(format!(
                "mtu {} out of range {MIN_MTU}..{MAX_MTU}",
                s.mtu
            )));
        }
        check_volumes(&s.volumes).map_err(bad)?;
        let restart = RestartPolicy::parse(&s.restart)
            .ok_or_else(|| bad(format!("unknown restart policy {:?}", s.restart)))?;
        for (phase, hooks) in [
            ("precreation", &s.precreation),
            ("postcreation", &s.postcreation),
            ("postdestroy", &s.postdestroy),
        ] {
            check_hooks(phase, &s.name, hooks, None)?;
        }
        let healthcheck = s
            .healthcheck
            .map(Healthcheck::try_from_pb)
            .transpose()
            .map_err(bad)?;
        if s.oneshot {
            if let Some(r) = restart.filter(|r| *r != RestartPolicy::No) {
                return Err(bad(format!(
                    "a oneshot runs once: restart policy {r} is refused"
                )));
            }
            if !s.running {
                return Err(bad("a oneshot must be meant to run (running: true)".into()));
            }
        }
        if s.environment.len() > 4096 || s.environment.chars().any(char::is_control) {
            return Err(bad("invalid environment file name".into()));
        }
        if !s.service.is_empty() && !is_container_name(&s.service) {
            return Err(bad(format!("invalid service name {:?}", s.service)));
        }
        if s.config_volumes.len() > MAX_CONFIG_VOLUMES {
            return Err(bad(format!(
                "{} config_volumes, at most {MAX_CONFIG_VOLUMES}",
                s.config_volumes.len()
            )));
        }
        for p in &s.config_volumes {
            if !is_absolute_clean(p) {
                return Err(bad(format!(
                    "config volume {p:?} must be an absolute path without '..'"
                )));
            }
        }
        Ok(ContainerSpec {
            config_volumes: s.config_volumes.iter().map(PathBuf::from).collect(),
            healthcheck,
            oneshot: s.oneshot,
            environment: s.environment,
            service: s.service,
            address,
            gateway,
            address6,
            gateway6,
            mac,
            mtu: (s.mtu != 0).then_some(s.mtu),
            vlan,
            allowed_addresses,
            dns: s.dns,
            domain: s.domain,
            bridge: s.bridge,
            volumes: s.volumes,
            running: s.running,
            precreation: s.precreation,
            postcreation: s.postcreation,
            postdestroy: s.postdestroy,
            env: s.env.into_iter().collect(),
            command: s.command,
            privileged: s.privileged,
            cap_add: s.cap_add,
            restart,
            name: s.name,
            image: s.image,
            checked: Checked,
        })
    }
}

/// Docker's form of a container name (letters, digits, `_`, `.`, `-`, a
/// letter or digit first), at most 255 bytes: what every request names a
/// container by, so that no `/web1`, id or id prefix reaches one.
pub fn is_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Binds must be `HOST_PATH:CONTAINER_PATH[:ro|rw]` with absolute paths: a
/// relative or `..` source could reach anywhere on the host.
fn check_volumes(volumes: &[String]) -> Result<(), String> {
    for v in volumes {
        let mut parts = v.split(':');
        let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
            return Err(format!("volume {v:?} is not HOST_PATH:CONTAINER_PATH"));
        };
        for p in [src, dst] {
            if !is_absolute_clean(p) {
                return Err(format!(
                    "volume {v:?}: {p:?} must be an absolute path without '..'"
                ));
            }
        }
        if let Some(mode) = parts.next()
            && !matches!(mode, "ro" | "rw")
        {
            return Err(format!("volume {v:?}: unknown mode {mode:?}"));
        }
        if parts.next().is_some() {
            return Err(format!(
                "volume {v:?} has more than HOST_PATH:CONTAINER_PATH:MODE"
            ));
        }
    }
    Ok(())
}

impl ContainerSpec {
    /// The application's Docker restart policy. A container the file wants
    /// running and gives no policy is `unless-stopped`, so that it comes
    /// back after a dockerd restart or a reboot unless it was stopped.
    pub fn restart_policy(&self) -> RestartPolicy {
        if self.oneshot {
            return RestartPolicy::No;
        }
        match self.restart {
            Some(r) => r,
            None if self.running => RestartPolicy::UnlessStopped,
            None => RestartPolicy::No,
        }
    }

    /// The sandbox's policy: it comes back whenever its application may,
    /// and a `restart: "no"` container stays down after a dockerd restart
    /// with its sandbox, as Docker would leave it.
    pub fn sandbox_restart_policy(&self) -> RestartPolicy {
        match self.restart_policy() {
            RestartPolicy::No => RestartPolicy::No,
            _ => RestartPolicy::UnlessStopped,
        }
    }

    /// The MAC of eth0: the one asked for, or one derived from the IP, so
    /// it is stable across restarts.
    pub fn effective_mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| Mac::from_ip(self.address.ip()))
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
        let mut fields = vec![
            ("image", self.image.clone()),
            ("ip", self.address.to_string()),
            (
                "gateway",
                self.gateway.map(|g| g.to_string()).unwrap_or_default(),
            ),
            ("dns", self.dns.join(",")),
            ("domain", self.domain.clone()),
            ("bridge", self.bridge.clone()),
            ("volumes", self.volumes.join(",")),
            ("mac", self.effective_mac().to_string()),
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
            // No policy given hashes as the empty string it always did.
            (
                "restart",
                self.restart.map(|r| r.to_string()).unwrap_or_default(),
            ),
        ];
        // Only when given, so that the hash of every older spec stays.
        if let Some(a) = self.address6 {
            fields.push(("ip6", a.to_string()));
        }
        if let Some(g) = self.gateway6 {
            fields.push(("gateway6", g.to_string()));
        }
        if !self.allowed_addresses.is_empty() {
            fields.push(("allowed_addresses", self.allowed_addresses_label()));
        }
        if let Some(h) = &self.healthcheck {
            fields.push(("healthcheck", h.describe()));
        }
        if self.oneshot {
            fields.push(("oneshot", "true".into()));
        }
        // Which paths belong to the spec is part of it (their contents are
        // a restart, not a recreate): only when given, as above.
        if !self.config_volumes.is_empty() {
            fields.push((
                "config_volumes",
                self.config_volumes
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        fields
    }

    /// Every field the hash covers, lists and maps one entry each
    /// (`volumes[1]`, `env.FOO`), so that a change can be named to the
    /// entry. Recorded on the container (see `record`).
    pub fn flattened(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let list = |key: &str, items: &[String], out: &mut BTreeMap<String, String>| {
            for (i, v) in items.iter().enumerate() {
                out.insert(format!("{key}[{i}]"), v.clone());
            }
        };
        for (key, value) in self.describe() {
            match key {
                "dns" => list(key, &self.dns, &mut out),
                "volumes" => list(key, &self.volumes, &mut out),
                "cap_add" => list(key, &self.cap_add, &mut out),
                "config_volumes" => {
                    let c: Vec<String> = self
                        .config_volumes
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    list(key, &c, &mut out);
                }
                "allowed_addresses" => {
                    let a: Vec<String> = self
                        .allowed_addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    list(key, &a, &mut out);
                }
                "env" => {
                    for (k, v) in &self.env {
                        out.insert(format!("env.{k}"), v.clone());
                    }
                }
                _ if value.is_empty() => {}
                _ => {
                    out.insert(key.to_string(), value);
                }
            }
        }
        out
    }

    /// `allowed_addresses` comma-separated, as the record keeps them.
    pub fn allowed_addresses_label(&self) -> String {
        self.allowed_addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// At most this many `allowed_addresses`: each is two OpenFlow rules.
pub const MAX_ALLOWED_ADDRESSES: usize = 64;

/// An IPv4 address (a /32) or CIDR, with its host bits cleared; `None`
/// for anything else.
pub fn parse_allowed_address(s: &str) -> Option<Ipv4Network> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, len)) => {
            if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 2 {
                return None;
            }
            (ip, len.parse::<u8>().ok().filter(|p| *p <= 32)?)
        }
        None => (s, 32),
    };
    let ip: Ipv4Addr = ip.parse().ok()?;
    let net = Ipv4Network::new(ip, prefix).ok()?;
    Ipv4Network::new(net.network(), prefix).ok()
}

fn is_absolute_clean(p: &str) -> bool {
    let path = Path::new(p);
    path.is_absolute() && !path.components().any(|c| c == Component::ParentDir)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn message() -> pb::ContainerSpec {
        pb::ContainerSpec {
            name: "web1".into(),
            image: "busybox".into(),
            ip: "10.0.0.3".into(),
            prefix_len: 16,
            gateway: "10.0.0.100".into(),
            bridge: "br0".into(),
            volumes: vec!["/srv/web1:/data:ro".into()],
            running: true,
            privileged: true,
            cap_add: vec!["NET_ADMIN".into()],
            ..Default::default()
        }
    }

    pub(crate) fn spec() -> ContainerSpec {
        ContainerSpec::try_from(message()).unwrap()
    }

    #[test]
    fn hash_changes_with_the_network_but_not_with_hooks() {
        let a = spec();
        let mut b = spec();
        b.postcreation = vec!["/bin/true".into()];
        b.running = false;
        assert_eq!(a.hash(), b.hash());
        b.address = "10.0.0.4/16".parse().unwrap();
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
            let mut s = message();
            s.volumes = vec![bad.into()];
            let err = ContainerSpec::try_from(s).unwrap_err().to_string();
            assert!(err.contains("web1"), "{err}");
        }
        ContainerSpec::try_from(message()).unwrap();
    }

    #[test]
    fn restart_policies_are_docker_names_and_nothing_else() {
        for (name, running, policy) in [
            ("", true, RestartPolicy::UnlessStopped),
            ("", false, RestartPolicy::No),
            ("no", true, RestartPolicy::No),
            ("always", true, RestartPolicy::Always),
            ("unless-stopped", false, RestartPolicy::UnlessStopped),
            ("on-failure", true, RestartPolicy::OnFailure),
        ] {
            let mut s = message();
            s.restart = name.into();
            s.running = running;
            assert_eq!(
                ContainerSpec::try_from(s).unwrap().restart_policy(),
                policy,
                "{name:?} running {running}"
            );
        }
        let mut s = message();
        s.restart = "sometimes".into();
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(err.contains("unknown restart policy"), "{err}");
    }

    #[test]
    fn bridge_mtu_vlan_mac_and_volume_fields_are_checked() {
        type Change = fn(&mut pb::ContainerSpec);
        let cases: [(&str, Change); 8] = [
            ("invalid bridge name", |s| s.bridge = "br/0".into()),
            ("invalid bridge name", |s| s.bridge = "br 0".into()),
            ("invalid bridge name", |s| {
                s.bridge = "a-very-long-bridge".into()
            }),
            ("mtu 67 out of range", |s| s.mtu = 67),
            ("mtu 70000 out of range", |s| s.mtu = 70000),
            ("vlan 4095 out of range", |s| s.vlan = 4095),
            ("invalid MAC address", |s| s.mac = "02:00:00:00:00".into()),
            ("more than HOST_PATH", |s| {
                s.volumes = vec!["/a:/b:ro:x".into()]
            }),
        ];
        for (want, change) in cases {
            let mut s = message();
            change(&mut s);
            let err = ContainerSpec::try_from(s).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("web1"), "{want}: {err}");
        }
    }

    #[test]
    fn the_server_checks_a_dual_stack_spec_itself() {
        let mut s = message();
        s.ip6 = "fd00:10::3/64".into();
        s.gateway6 = "fd00:10::1".into();
        let dual = ContainerSpec::try_from(s).unwrap();
        assert_eq!(dual.address6.unwrap().to_string(), "fd00:10::3/64");
        assert_ne!(dual.hash(), spec().hash());
        let labels = crate::record::labels(&dual, "host1");
        assert_eq!(labels["dockstack.ip6"], "fd00:10::3/64");
        let labels: crate::record::Labels = labels.into_iter().collect();
        let plug = crate::record::plug_spec("web1", "id", &labels).unwrap();
        assert_eq!(plug.address6, dual.address6);
        assert_eq!(plug.gateway6, dual.gateway6);
        // No ip6: the hash every older spec had.
        assert!(!spec().describe().iter().any(|(k, _)| k.ends_with('6')));
        let cases: [(&str, &str, &str); 6] = [
            ("fd00:10::zz/64", "", "not an ipv6 address"),
            ("fd00:10::3/200", "", "out of range"),
            ("fd00:10::3", "", "ADDR/LEN"),
            ("fd00:10::3/64", "fd00:11::1", "outside the prefix"),
            ("", "fd00:10::1", "gateway6 is given without ip6"),
            ("fd00:10::3/64", "nonsense", "invalid gateway6"),
        ];
        for (ip6, gateway6, want) in cases {
            let mut s = message();
            s.ip6 = ip6.into();
            s.gateway6 = gateway6.into();
            let err = ContainerSpec::try_from(s).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("web1"),
                "{ip6} {gateway6}: {err}"
            );
        }
    }

    #[test]
    fn allowed_addresses_are_checked_and_normalised() {
        let mut s = message();
        s.allowed_addresses = vec![
            "10.0.0.50".into(),
            "10.0.1.7/28".into(),
            "10.0.0.50/32".into(),
        ];
        let spec = ContainerSpec::try_from(s).unwrap();
        assert_eq!(spec.allowed_addresses_label(), "10.0.0.50/32,10.0.1.0/28");
        assert_ne!(spec.hash(), super::tests::spec().hash());
        // None given: the hash every older spec had.
        assert!(
            !super::tests::spec()
                .describe()
                .iter()
                .any(|(k, _)| *k == "allowed_addresses")
        );
        for wrong in [
            "10.0.0",
            "10.0.0.1/33",
            "fe80::1",
            "10.0.0.1/",
            "host",
            "10.0.0.1/+8",
        ] {
            let mut s = message();
            s.allowed_addresses = vec![wrong.into()];
            let err = ContainerSpec::try_from(s).unwrap_err().to_string();
            assert!(
                err.contains("no IPv4 address or CIDR") && err.contains("web1"),
                "{wrong}: {err}"
            );
        }
        let mut s = message();
        s.allowed_addresses = (0..65).map(|i| format!("10.1.0.{i}")).collect();
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(err.contains("at most 64"), "{err}");
    }

    #[test]
    fn a_name_in_the_sandboxes_form_is_refused() {
        let mut s = message();
        s.name = crate::record::sandbox_name("web1");
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(err.contains("keeps for its sandboxes"), "{err}");
    }

    #[test]
    fn a_relative_hook_is_refused_with_the_spec() {
        let mut s = message();
        s.postcreation = vec!["true".into()];
        let err = ContainerSpec::try_from(s).unwrap_err();
        assert!(
            matches!(err, SpecError::Hook(HookError::NotAllowed { .. })),
            "{err}"
        );
    }
}
