//! The domain's container spec: what a client asks for, valid by
//! construction (every check is in its `TryFrom<pb::ContainerSpec>`), and
//! hashed. Its Docker labels are the `record` module's.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use dockstack_proto as pb;
use dockstack_types::volume::{Bind, MAX_CONFIG_VOLUMES, path_problem};
use dockstack_types::{NameError, SANDBOX_SUFFIX, health, image, ip6, link, name, network};
use ipnetwork::{Ipv4Network, Ipv6Network};
use netplug::Mac;
use sha2::{Digest, Sha256};

pub use dockstack_types::RestartPolicy;
pub use dockstack_types::network::MAX_ALLOWED_ADDRESSES;
pub use dockstack_types::runtime::Runtime;
pub use first_creation::FirstCreation;

use crate::envkey::EnvKey;
use crate::hooks::{HookError, check_hooks};

/// The interface every container gets.
pub const IFACE: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container {container}: {message}")]
    Invalid { container: String, message: String },
    #[error(transparent)]
    Hook(#[from] HookError),
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

    fn try_from_pb(h: pb::Healthcheck) -> Result<Self, health::HealthError> {
        health::check(
            &h.test,
            h.interval_ms,
            h.timeout_ms,
            h.retries,
            h.start_period_ms,
        )?;
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
    /// How it is stopped and what its process may use.
    pub runtime: Runtime,
    /// Private, so that outside this module a spec can only be made through
    /// `TryFrom<pb::ContainerSpec>`, where every check is.
    checked: Checked,
}

/// The mark of a spec that went through every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked;

/// The network half of a spec, checked.
struct Network {
    address: Ipv4Network,
    gateway: Option<Ipv4Addr>,
    address6: Option<Ipv6Network>,
    gateway6: Option<Ipv6Addr>,
    mac: Option<Mac>,
    mtu: Option<u32>,
    vlan: Option<u16>,
    allowed_addresses: Vec<Ipv4Network>,
}

impl TryFrom<pb::ContainerSpec> for ContainerSpec {
    type Error = SpecError;

    /// Checks what a server must never do on a client's word alone, naming
    /// the container in every error. Each rule is `dockstack_types`'s, the
    /// client's own.
    fn try_from(s: pb::ContainerSpec) -> Result<Self, SpecError> {
        let bad = |message: String| SpecError::Invalid {
            container: s.name.clone(),
            message,
        };
        name::check_container_name(&s.name).map_err(|e| {
            bad(match e {
                NameError::Invalid(n) => format!("invalid container name {n:?}"),
                NameError::Sandbox(n) => format!(
                    "container name {n:?} ends with {SANDBOX_SUFFIX:?}, which dockstack keeps for its sandboxes"
                ),
            })
        })?;
        let network = Network::check(&s).map_err(bad)?;
        if s.image.is_empty() {
            return Err(bad("no image given".into()));
        }
        image::check_reference(&s.image).map_err(|e| bad(e.to_string()))?;
        link::check_ifname(&s.bridge)
            .map_err(|e| bad(format!("invalid bridge name {:?}: {e}", s.bridge)))?;
        for v in &s.volumes {
            Bind::parse(v).map_err(|e| bad(e.to_string()))?;
        }
        dockstack_types::env::check_variables(&s.env).map_err(|e| bad(format!("env: {e}")))?;
        dockstack_types::env::check_command(&s.command)
            .map_err(|e| bad(format!("command: {e}")))?;
        let restart = (!s.restart.is_empty())
            .then(|| s.restart.parse::<RestartPolicy>())
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        for (phase, hooks) in [
            ("precreation", &s.precreation),
            ("postcreation", &s.postcreation),
            ("postdestroy", &s.postdestroy),
        ] {
            check_hooks(phase, &s.name, hooks, None)?;
        }
        let healthcheck = s
            .healthcheck
            .clone()
            .map(Healthcheck::try_from_pb)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        check_oneshot(s.oneshot, s.running, restart).map_err(bad)?;
        check_records(&s).map_err(bad)?;
        let runtime = runtime::check(&s).map_err(bad)?;
        Ok(ContainerSpec {
            runtime,
            config_volumes: s.config_volumes.iter().map(PathBuf::from).collect(),
            healthcheck,
            oneshot: s.oneshot,
            environment: s.environment,
            service: s.service,
            address: network.address,
            gateway: network.gateway,
            address6: network.address6,
            gateway6: network.gateway6,
            mac: network.mac,
            mtu: network.mtu,
            vlan: network.vlan,
            allowed_addresses: network.allowed_addresses,
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

impl Network {
    fn check(s: &pb::ContainerSpec) -> Result<Self, String> {
        let ip: Ipv4Addr =
            s.ip.parse()
                .map_err(|_| format!("invalid IP address {:?}", s.ip))?;
        let prefix = u8::try_from(s.prefix_len)
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("mask {} out of range 0..32", s.prefix_len))?;
        let address = Ipv4Network::new(ip, prefix).map_err(|e| e.to_string())?;
        let gateway = (!s.gateway.is_empty())
            .then(|| s.gateway.parse())
            .transpose()
            .map_err(|_| format!("invalid gateway {:?}", s.gateway))?;
        let address6 = (!s.ip6.is_empty())
            .then(|| ip6::parse_ip6(&s.ip6).map_err(|e| format!("ip6: {e}")))
            .transpose()?;
        let gateway6 = if s.gateway6.is_empty() {
            None
        } else {
            let g: Ipv6Addr = s
                .gateway6
                .parse()
                .map_err(|_| format!("invalid gateway6 {:?}", s.gateway6))?;
            let net = address6.ok_or("gateway6 is given without ip6")?;
            ip6::check_gateway6(&net, g)?;
            Some(g)
        };
        let mac = (!s.mac.is_empty())
            .then(|| Mac::parse_interface(&s.mac))
            .transpose()
            .map_err(|e| e.to_string())?;
        let vlan = match s.vlan {
            0 => None,
            v => Some(
                link::VLAN
                    .contains(&v)
                    .then(|| u16::try_from(v).ok())
                    .flatten()
                    .ok_or_else(|| format!("vlan {v} out of range 1..4094"))?,
            ),
        };
        if s.mtu != 0 && !link::MTU.contains(&s.mtu) {
            return Err(format!(
                "mtu {} out of range {}..{}",
                s.mtu,
                link::MTU.start(),
                link::MTU.end()
            ));
        }
        let allowed_addresses = network::parse_allowed_addresses(&s.allowed_addresses)
            .map_err(|e| format!("allowed_addresses: {e}"))?;
        Ok(Network {
            address,
            gateway,
            address6,
            gateway6,
            mac,
            mtu: (s.mtu != 0).then_some(s.mtu),
            vlan,
            allowed_addresses,
        })
    }
}

/// A oneshot runs once: no restart policy but `no`, and meant to run.
fn check_oneshot(
    oneshot: bool,
    running: bool,
    restart: Option<RestartPolicy>,
) -> Result<(), String> {
    if !oneshot {
        return Ok(());
    }
    if let Some(r) = restart.filter(|r| !r.is_no()) {
        return Err(format!(
            "a oneshot runs once: restart policy {r} is refused"
        ));
    }
    if !running {
        return Err("a oneshot must be meant to run (running: true)".into());
    }
    Ok(())
}

/// What the spec records besides the container: the environment file, the
/// service, the config volumes.
fn check_records(s: &pb::ContainerSpec) -> Result<(), String> {
    if s.environment.len() > 4096 || s.environment.chars().any(char::is_control) {
        return Err("invalid environment file name".into());
    }
    if !s.service.is_empty() && !name::is_docker_name(&s.service) {
        return Err(format!("invalid service name {:?}", s.service));
    }
    if s.config_volumes.len() > MAX_CONFIG_VOLUMES {
        return Err(format!(
            "{} config_volumes, at most {MAX_CONFIG_VOLUMES}",
            s.config_volumes.len()
        ));
    }
    for p in &s.config_volumes {
        if path_problem(p).is_some() {
            return Err(format!(
                "config volume {p:?} must be an absolute path without '..'"
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

    /// A hash of everything that shapes the container, env values by
    /// their keyed hashes; hooks and the desired state are not part of it.
    pub fn hash(&self, key: &EnvKey) -> String {
        hash_fields(self.describe(Some(key)))
    }

    /// The hash an earlier dockstack recorded, over env values in clear:
    /// still taken as the same spec, so that an upgrade recreates nothing.
    pub fn legacy_hash(&self) -> String {
        hash_fields(self.describe(None))
    }

    /// The fields that the hash covers, for telling a user what differs;
    /// env values by their hashes under `key` (in clear without one).
    fn describe(&self, key: Option<&EnvKey>) -> Vec<(&'static str, String)> {
        let env_value = |v: &String| key.map_or_else(|| v.clone(), |k| k.digest(v));
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
                    .map(|(k, v)| format!("{k}={}", env_value(v)))
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
        self.runtime.describe(&mut fields);
        fields
    }

    /// Every field the hash covers, lists and maps one entry each
    /// (`volumes[1]`, `env.FOO`), so that a change can be named to the
    /// entry. Recorded on the container (see `record`): env values by their
    /// hashes under `key`, never in clear.
    pub fn flattened(&self, env_key: &EnvKey) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let list = |key: &str, items: &[String], out: &mut BTreeMap<String, String>| {
            for (i, v) in items.iter().enumerate() {
                out.insert(format!("{key}[{i}]"), v.clone());
            }
        };
        for (key, value) in self.describe(Some(env_key)) {
            if self.runtime.flatten(key, &mut out) {
                continue;
            }
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
                        out.insert(format!("env.{k}"), env_key.digest(v));
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

/// 16 bytes of SHA-256 over `fields`, in hex.
fn hash_fields(fields: Vec<(&'static str, String)>) -> String {
    let mut h = Sha256::new();
    for (k, v) in fields {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

mod first_creation;
mod runtime;

#[cfg(test)]
pub(crate) mod tests;
