//! The Docker record of a container: the `dockstack.*` labels, written from
//! a spec and read back into a plug spec or what a client is shown. This is
//! the only module that knows the label format.

use std::collections::{BTreeMap, HashMap};

use ipnetwork::Ipv4Network;
use netplug::{Owner, PlugSpec};

use crate::envkey::{self, EnvKey};
use crate::spec::{ContainerSpec, IFACE};

const PREFIX: &str = "dockstack.";
const MANAGED: &str = "dockstack.managed";
const HOST: &str = "dockstack.host";
const HASH: &str = "dockstack.spec-hash";
const IP: &str = "dockstack.ip";
const GATEWAY: &str = "dockstack.gateway";
const IP6: &str = "dockstack.ip6";
const GATEWAY6: &str = "dockstack.gateway6";
const BRIDGE: &str = "dockstack.bridge";
const MAC: &str = "dockstack.mac";
const MTU: &str = "dockstack.mtu";
const VLAN: &str = "dockstack.vlan";
/// Port security's extra sources, comma-separated CIDRs.
const ALLOWED_ADDRESSES: &str = "dockstack.allowed-addresses";
const IFACE_LABEL: &str = "dockstack.iface";
/// On an application: the name of the sandbox that holds its netns.
const SANDBOX: &str = "dockstack.sandbox";
/// On a sandbox: the name of the application it holds the netns of.
const SANDBOX_OF: &str = "dockstack.sandbox-of";
/// The spec's fields, one entry per list item or map key, as JSON: what
/// a plan names a difference by. Env values are there by their keyed
/// hashes (see `envkey`), never in clear.
const SPEC: &str = "dockstack.spec";
const ENVIRONMENT: &str = "dockstack.environment";
const ONESHOT: &str = "dockstack.oneshot";
const DOMAIN: &str = "dockstack.domain";
const SERVICE: &str = "dockstack.service";
/// The config volumes (a JSON list) and their hashes when it was made (a
/// JSON map): see `confighash`.
const CONFIG_VOLUMES: &str = "dockstack.config-volumes";
const CONFIG_HASH: &str = "dockstack.config-hash";
/// The prestop command lines (a JSON list): what a stop runs first.
const PRESTOP: &str = "dockstack.prestop";
/// `used` on an application made with first-creation settings. Not part of
/// the spec or its hash: adding or removing the settings is never a
/// difference.
const FIRST_CREATION: &str = "dockstack.first-creation";

pub use dockstack_types::SANDBOX_SUFFIX;

/// The name of the sandbox of container `name`.
pub fn sandbox_name(name: &str) -> String {
    format!("{name}{SANDBOX_SUFFIX}")
}

/// The application whose sandbox is named `name`, if it is a sandbox's name.
pub fn sandbox_owner(name: &str) -> Option<&str> {
    name.strip_suffix(SANDBOX_SUFFIX).filter(|n| !n.is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("container {container}: label {label} is missing or invalid")]
    Label {
        container: String,
        label: &'static str,
    },
}

/// A container's labels, as Docker reports them.
pub type Labels = HashMap<String, String>;

/// The labels that make Docker the record of this container.
pub fn labels(spec: &ContainerSpec, host_id: &str, key: &EnvKey) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(MANAGED.into(), "true".into());
    l.insert(HOST.into(), host_id.into());
    l.insert(HASH.into(), spec.hash(key));
    if let Ok(fields) = serde_json::to_string(&spec.flattened(key)) {
        l.insert(SPEC.into(), fields);
    }
    for (key, value) in [
        (ENVIRONMENT, &spec.environment),
        (DOMAIN, &spec.domain),
        (SERVICE, &spec.service),
    ] {
        if !value.is_empty() {
            l.insert(key.into(), value.clone());
        }
    }
    if spec.oneshot {
        l.insert(ONESHOT.into(), "true".into());
    }
    if !spec.runtime.prestop.is_empty()
        && let Ok(lines) = serde_json::to_string(&spec.runtime.prestop)
    {
        l.insert(PRESTOP.into(), lines);
    }
    network_labels(spec, &mut l);
    l
}

/// The prestop command lines a container was made with.
pub fn prestop(labels: &Labels) -> Vec<String> {
    labels
        .get(PRESTOP)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// Whether a container with `labels` was made from `spec`: by its hash,
/// or by the hash an earlier dockstack recorded (env values in clear).
pub fn same_spec(spec: &ContainerSpec, labels: &Labels, key: &EnvKey) -> bool {
    let old = hash(labels);
    old == spec.hash(key) || old == spec.legacy_hash()
}

/// How the spec a container was made from differs from `spec`, one entry
/// per field (`image a -> b`, `env.FOO`, `volumes[1] a -> b`); empty when
/// the two hash alike. Environment values are named, never shown: they
/// may be secrets.
pub fn spec_differences(spec: &ContainerSpec, labels: &Labels, key: &EnvKey) -> Vec<String> {
    let old_hash = hash(labels);
    let new_hash = spec.hash(key);
    if same_spec(spec, labels, key) {
        return Vec::new();
    }
    let Some(old) = labels
        .get(SPEC)
        .and_then(|j| serde_json::from_str::<BTreeMap<String, String>>(j).ok())
    else {
        return vec![format!(
            "spec (recorded by an earlier dockstack: hash {old_hash} -> {new_hash})"
        )];
    };
    let mut new = spec.flattened(key);
    // An earlier dockstack recorded env values in clear: compared so.
    for (k, v) in &spec.env {
        let k = format!("env.{k}");
        if old.get(&k).is_some_and(|o| !o.starts_with(envkey::PREFIX)) {
            new.insert(k, v.clone());
        }
    }
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let shown = |v: Option<&String>| v.map_or_else(|| "(none)".to_string(), Clone::clone);
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            if k.starts_with("env.") {
                k.clone()
            } else {
                format!("{k} {} -> {}", shown(old.get(k)), shown(new.get(k)))
            }
        })
        .collect();
    if out.is_empty() {
        out.push(format!("spec hash {old_hash} -> {new_hash}"));
    }
    out
}

/// The labels of a sandbox: managed by this host, holding the netns of
/// `spec`'s container, with the network spec it is plugged from.
pub fn sandbox_labels(
    spec: &ContainerSpec,
    host_id: &str,
    key: &EnvKey,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(MANAGED.into(), "true".into());
    l.insert(HOST.into(), host_id.into());
    l.insert(HASH.into(), spec.hash(key));
    l.insert(SANDBOX_OF.into(), spec.name.clone());
    network_labels(spec, &mut l);
    l
}

/// The labels of an application that joins the netns of `sandbox`, with
/// the hashes of its config volumes as they are now.
pub fn app_labels(
    spec: &ContainerSpec,
    host_id: &str,
    sandbox: &str,
    config: &BTreeMap<String, String>,
    key: &EnvKey,
) -> BTreeMap<String, String> {
    let mut l = labels(spec, host_id, key);
    l.insert(SANDBOX.into(), sandbox.into());
    if !spec.config_volumes.is_empty() {
        let paths: Vec<String> = spec
            .config_volumes
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let (Ok(paths), Ok(hashes)) =
            (serde_json::to_string(&paths), serde_json::to_string(config))
        {
            l.insert(CONFIG_VOLUMES.into(), paths);
            l.insert(CONFIG_HASH.into(), hashes);
        }
    }
    l
}

/// Records that the application was made with first-creation settings.
pub fn mark_first_creation(labels: &mut BTreeMap<String, String>) {
    labels.insert(FIRST_CREATION.into(), "used".into());
}

/// How a managed container reaches its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// It joins the netns of the sandbox of this name.
    Sandbox(String),
    /// Made before sandboxes: its own netns is plugged.
    Direct,
}

/// Which member of its pair a managed container is, from its labels (not
/// a client's role: that is `policy::Role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// An application, as the environment file names it.
    App(Network),
    /// The sandbox of the application of this name.
    Sandbox(String),
}

pub fn member(labels: &Labels) -> Member {
    if let Some(app) = labels.get(SANDBOX_OF).filter(|v| !v.is_empty()) {
        return Member::Sandbox(app.clone());
    }
    match labels.get(SANDBOX).filter(|v| !v.is_empty()) {
        Some(sandbox) => Member::App(Network::Sandbox(sandbox.clone())),
        None => Member::App(Network::Direct),
    }
}

/// The labels of the network spec alone: what a spec change shows up in.
fn network_labels(spec: &ContainerSpec, l: &mut BTreeMap<String, String>) {
    l.insert(IFACE_LABEL.into(), IFACE.into());
    l.insert(IP.into(), spec.address.to_string());
    if let Some(g) = spec.gateway {
        l.insert(GATEWAY.into(), g.to_string());
    }
    if let Some(a) = spec.address6 {
        l.insert(IP6.into(), a.to_string());
    }
    if let Some(g) = spec.gateway6 {
        l.insert(GATEWAY6.into(), g.to_string());
    }
    l.insert(BRIDGE.into(), spec.bridge.clone());
    l.insert(MAC.into(), spec.effective_mac().to_string());
    if let Some(m) = spec.mtu {
        l.insert(MTU.into(), m.to_string());
    }
    if let Some(v) = spec.vlan {
        l.insert(VLAN.into(), v.to_string());
    }
    if !spec.allowed_addresses.is_empty() {
        l.insert(ALLOWED_ADDRESSES.into(), spec.allowed_addresses_label());
    }
}

/// The config volumes a container was made with.
pub fn config_volumes(labels: &Labels) -> Vec<std::path::PathBuf> {
    labels
        .get(CONFIG_VOLUMES)
        .and_then(|j| serde_json::from_str::<Vec<String>>(j).ok())
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}

/// The hashes of its config volumes when it was made.
pub fn config_hashes(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .get(CONFIG_HASH)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// Docker label filters that select this host's managed containers.
pub fn host_filters(host_id: &str) -> Vec<String> {
    vec![format!("{MANAGED}=true"), format!("{HOST}={host_id}")]
}

pub fn is_managed(labels: &Labels) -> bool {
    labels.get(MANAGED).map(String::as_str) == Some("true")
}

/// The dockstack host the container belongs to.
pub fn host(labels: &Labels) -> Option<&str> {
    labels.get(HOST).map(String::as_str)
}

/// The hash of the spec the container was created from.
pub fn hash(labels: &Labels) -> &str {
    labels.get(HASH).map_or("", String::as_str)
}

/// The container's IP address, without its prefix length.
pub fn ip(labels: &Labels) -> &str {
    labels
        .get(IP)
        .and_then(|a| a.split('/').next())
        .unwrap_or_default()
}

/// The IPv6 address of a dual-stack container, without its prefix length.
pub fn ip6(labels: &Labels) -> Option<&str> {
    labels
        .get(IP6)
        .and_then(|a| a.split('/').next())
        .filter(|a| !a.is_empty())
}

/// The record as a client is shown it, raw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    pub ip: String,
    pub gateway: String,
    pub ip6: String,
    pub gateway6: String,
    pub mac: String,
    pub bridge: String,
    pub environment: String,
    pub spec_hash: String,
    pub oneshot: bool,
    pub domain: String,
    pub service: String,
    pub first_creation: bool,
}

pub fn shown(labels: &Labels) -> Shown {
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    Shown {
        ip: label(IP),
        gateway: label(GATEWAY),
        ip6: label(IP6),
        gateway6: label(GATEWAY6),
        mac: label(MAC),
        bridge: label(BRIDGE),
        environment: label(ENVIRONMENT),
        spec_hash: label(HASH),
        oneshot: label(ONESHOT) == "true",
        domain: label(DOMAIN),
        service: label(SERVICE),
        first_creation: label(FIRST_CREATION) == "used",
    }
}

/// The network fields whose labels differ between `spec` and a container,
/// as `field old → new`.
pub fn differences(spec: &ContainerSpec, labels: &Labels) -> Vec<String> {
    let mut wanted = BTreeMap::new();
    network_labels(spec, &mut wanted);
    wanted
        .into_iter()
        .filter_map(|(key, new)| {
            let old = labels.get(&key).cloned().unwrap_or_default();
            (old != new).then(|| {
                let field = key.trim_start_matches(PREFIX);
                format!("{field} {old} → {new}")
            })
        })
        .collect()
}

/// Rebuilds the network part of a container's spec from its labels.
pub fn plug_spec(container: &str, full_id: &str, labels: &Labels) -> Result<PlugSpec, RecordError> {
    let missing = |label: &'static str| RecordError::Label {
        container: container.to_string(),
        label,
    };
    let get = |label: &str| labels.get(label).filter(|v| !v.is_empty());
    let address: Ipv4Network = get(IP)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing(IP))?;
    let bridge = get(BRIDGE).cloned().ok_or_else(|| missing(BRIDGE))?;
    let gateway = get(GATEWAY)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(GATEWAY))?;
    let address6 = get(IP6)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(IP6))?;
    let gateway6 = get(GATEWAY6)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(GATEWAY6))?;
    let mac = get(MAC)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(MAC))?;
    let mtu = get(MTU)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(MTU))?;
    let vlan = get(VLAN)
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| missing(VLAN))?;
    let allowed_addresses = match get(ALLOWED_ADDRESSES) {
        None => Vec::new(),
        Some(v) => v
            .split(',')
            .map(|a| dockstack_types::network::parse_allowed_address(a.trim()).ok())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| missing(ALLOWED_ADDRESSES))?,
    };
    Ok(PlugSpec {
        bridge,
        iface: get(IFACE_LABEL).cloned().unwrap_or_else(|| IFACE.into()),
        address,
        gateway,
        address6,
        gateway6,
        mac,
        mtu,
        vlan,
        allowed_addresses,
        // The caller decides: a fresh plug probes, a re-plug does not.
        probe: None,
        owner: Owner {
            name: container.to_string(),
            full_id: Some(full_id.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec;

    fn key() -> EnvKey {
        EnvKey::from_bytes([7; 32])
    }

    #[test]
    fn the_stop_and_runtime_keys_are_named_in_differences_and_prestop_is_recorded() {
        let old = spec();
        let labels: Labels = labels(&old, "host1", &key()).into_iter().collect();
        assert!(prestop(&labels).is_empty());
        let mut new = spec();
        new.runtime.stop_grace_secs = Some(60);
        new.runtime
            .sysctls
            .insert("net.ipv4.ip_nonlocal_bind".into(), "1".into());
        new.runtime.prestop = vec!["drain".into()];
        assert_eq!(
            spec_differences(&new, &labels, &key()),
            [
                "prestop[0] (none) -> drain",
                "stop_grace_period (none) -> 60s",
                "sysctls.net.ipv4.ip_nonlocal_bind (none) -> 1",
            ]
        );
        let made: Labels = super::labels(&new, "host1", &key()).into_iter().collect();
        assert_eq!(prestop(&made), ["drain"]);
        assert!(spec_differences(&new, &made, &key()).is_empty());
    }

    #[test]
    fn differences_are_named_field_by_field_and_env_values_never_shown() {
        let old = spec();
        let labels: Labels = labels(&old, "host1", &key()).into_iter().collect();
        assert!(spec_differences(&old, &labels, &key()).is_empty());
        let mut new = spec();
        new.image = "busybox:2".into();
        new.env.insert("FOO".into(), "secret".into());
        new.volumes.push("/srv/more:/more".into());
        let d = spec_differences(&new, &labels, &key());
        assert_eq!(
            d,
            [
                "env.FOO",
                "image busybox -> busybox:2",
                "volumes[1] (none) -> /srv/more:/more",
            ]
        );
        // A container recorded before the field-by-field record.
        let mut older = labels.clone();
        older.remove(SPEC);
        let d = spec_differences(&new, &older, &key());
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("spec (recorded by an earlier dockstack"),
            "{d:?}"
        );
    }

    #[test]
    fn env_values_reach_no_label_and_an_older_clear_record_still_matches() {
        let mut s = spec();
        s.env.insert("SECRET".into(), "hunter2".into());
        let made = labels(&s, "host1", &key());
        for (k, v) in &made {
            assert!(!v.contains("hunter2"), "{k}={v}");
        }
        let made: Labels = made.into_iter().collect();
        assert!(spec_differences(&s, &made, &key()).is_empty());
        let mut changed = s.clone();
        changed.env.insert("SECRET".into(), "hunter3".into());
        assert_eq!(spec_differences(&changed, &made, &key()), ["env.SECRET"]);
        // Another host's key: every value differs.
        assert!(!same_spec(&s, &made, &EnvKey::from_bytes([8; 32])));
        // A container an earlier dockstack made: hash and record in clear.
        let mut older = made.clone();
        older.insert(HASH.into(), s.legacy_hash());
        let mut fields: BTreeMap<String, String> = serde_json::from_str(&older[SPEC]).unwrap();
        fields.insert("env.SECRET".into(), "hunter2".into());
        older.insert(SPEC.into(), serde_json::to_string(&fields).unwrap());
        assert!(same_spec(&s, &older, &key()));
        changed.image = "busybox:2".into();
        assert_eq!(
            spec_differences(&changed, &older, &key()),
            ["env.SECRET", "image busybox -> busybox:2"]
        );
        changed.env.insert("SECRET".into(), "hunter2".into());
        assert_eq!(
            spec_differences(&changed, &older, &key()),
            ["image busybox -> busybox:2"]
        );
    }

    #[test]
    fn labels_round_trip_to_the_plug_spec() {
        let s = spec();
        let labels: Labels = labels(&s, "host1", &key()).into_iter().collect();
        let plug = plug_spec("web1", "abc", &labels).unwrap();
        assert_eq!(plug.address, s.address);
        assert_eq!(plug.gateway, s.gateway);
        assert_eq!(plug.bridge, "br0");
        assert_eq!(plug.iface, "eth0");
        assert_eq!(plug.effective_mac(), s.effective_mac());
        assert_eq!(host(&labels), Some("host1"));
        assert!(is_managed(&labels));
        assert!(differences(&s, &labels).is_empty());
        assert_eq!(member(&labels), Member::App(Network::Direct));
    }

    #[test]
    fn allowed_addresses_survive_in_a_label() {
        let mut s = spec();
        assert!(
            plug_spec(
                "web1",
                "abc",
                &labels(&s, "h", &key()).into_iter().collect()
            )
            .unwrap()
            .allowed_addresses
            .is_empty()
        );
        s.allowed_addresses = vec![
            "10.0.0.50/32".parse().unwrap(),
            "10.0.1.0/28".parse().unwrap(),
        ];
        let labels: Labels = labels(&s, "host1", &key()).into_iter().collect();
        assert_eq!(
            labels.get(ALLOWED_ADDRESSES).map(String::as_str),
            Some("10.0.0.50/32,10.0.1.0/28")
        );
        let plug = plug_spec("web1", "abc", &labels).unwrap();
        assert_eq!(plug.allowed_addresses, s.allowed_addresses);
        let mut bad = labels.clone();
        bad.insert(ALLOWED_ADDRESSES.into(), "10.0.0.50/32,nope".into());
        assert!(plug_spec("web1", "abc", &bad).is_err());
    }

    #[test]
    fn a_pair_is_told_apart_by_its_labels() {
        let s = spec();
        let sandbox = sandbox_name(&s.name);
        let app: Labels = app_labels(&s, "host1", &sandbox, &BTreeMap::new(), &key())
            .into_iter()
            .collect();
        let sb: Labels = sandbox_labels(&s, "host1", &key()).into_iter().collect();
        assert_eq!(member(&app), Member::App(Network::Sandbox(sandbox.clone())));
        assert_eq!(member(&sb), Member::Sandbox("web1".into()));
        assert_eq!(sandbox_owner(&sandbox), Some("web1"));
        assert_eq!(sandbox_owner("web1"), None);
        assert_eq!(sandbox_owner(SANDBOX_SUFFIX), None);
        // The sandbox is plugged from its own labels, as its application's owner.
        let plug = plug_spec("web1", "abc", &sb).unwrap();
        assert_eq!(plug.address, s.address);
        assert!(is_managed(&sb) && is_managed(&app));
    }
}
