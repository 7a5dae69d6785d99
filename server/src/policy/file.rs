//! The policy file's form: its sections, each key with its line, applied
//! over the built-in roles; anything unknown or out of place refused with
//! its line.

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::*;

/// The file's shape; every key optional, unknown keys refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    #[serde(default)]
    roles: RolesSection,
}

impl PolicyFile {
    /// Sets what the file names over `policy`, the built-in roles.
    pub(super) fn apply_to(self, policy: &mut Policy, bad: Bad<'_>) -> Result<(), PolicyError> {
        // The viewer is read-only and takes no policy: not a key of the file.
        if let Some(section) = self.roles.admin {
            section.apply("roles.admin", &mut policy.admin, bad)?;
        }
        if let Some(section) = self.roles.operator {
            section.apply("roles.operator", &mut policy.operator, bad)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesSection {
    admin: Option<RoleSection>,
    operator: Option<RoleSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSection {
    hooks: Option<Spanned<Vec<Spanned<String>>>>,
    volumes: Option<VolumeSection>,
    privileged: Option<bool>,
    cap_add: Option<Vec<Spanned<String>>>,
    sysctls: Option<Vec<Spanned<String>>>,
    ulimits: Option<Spanned<BTreeMap<String, i64>>>,
    bridges: Option<Vec<String>>,
    registration: Option<registration::RegistrationSection>,
    exec: Option<bool>,
    registration_commands: Option<Vec<String>>,
    allowed_addresses: Option<network::AddressSection>,
    vlans: Option<Spanned<Vec<network::VlanEntry>>>,
    macs: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeSection {
    allow: Option<Vec<Spanned<String>>>,
    deny: Option<Vec<Spanned<String>>>,
    root: Option<bool>,
}

pub(super) type Bad<'a> = &'a dyn Fn(u64, String, String) -> PolicyError;

/// An absolute path without `..`, or an error at its line.
fn clean_path(p: &Spanned<String>, key: &str, bad: Bad<'_>) -> Result<PathBuf, PolicyError> {
    let path = Path::new(&p.value);
    if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
        Ok(path.to_path_buf())
    } else {
        Err(bad(
            p.referenced.line(),
            key.to_string(),
            format!("{:?} is not an absolute path without '..'", p.value),
        ))
    }
}

pub(super) fn clean_paths(
    v: &[Spanned<String>],
    key: &str,
    bad: Bad<'_>,
) -> Result<Vec<PathBuf>, PolicyError> {
    v.iter()
        .enumerate()
        .map(|(i, p)| clean_path(p, &format!("{key}[{i}]"), bad))
        .collect()
}

/// Sysctl names, or prefixes ending in `*`, each a namespaced one.
fn sysctl_allowlist(
    list: &[Spanned<String>],
    at: &str,
    bad: Bad<'_>,
) -> Result<Vec<String>, PolicyError> {
    match list
        .iter()
        .enumerate()
        .find(|(_, s)| !limits::is_sysctl_entry(&s.value))
    {
        None => Ok(list.iter().map(|s| s.value.clone()).collect()),
        Some((i, s)) => Err(bad(
            s.referenced.line(),
            format!("{at}.sysctls[{i}]"),
            format!(
                "{:?} is not a namespaced sysctl, nor a prefix of ones ending in *",
                s.value
            ),
        )),
    }
}

impl RoleSection {
    fn apply(self, at: &str, target: &mut RolePolicy, bad: Bad<'_>) -> Result<(), PolicyError> {
        if let Some(hooks) = &self.hooks {
            target.hook_dirs = Some(clean_paths(&hooks.value, &format!("{at}.hooks"), bad)?);
        }
        if let Some(v) = &self.volumes {
            if let Some(allow) = &v.allow {
                target.volume_allow =
                    Some(clean_paths(allow, &format!("{at}.volumes.allow"), bad)?);
            }
            if let Some(deny) = &v.deny {
                target.volume_deny = clean_paths(deny, &format!("{at}.volumes.deny"), bad)?;
            }
            if let Some(root) = v.root {
                target.volume_root = root;
            }
        }
        if let Some(p) = self.privileged {
            target.privileged = p;
        }
        if let Some(caps) = &self.cap_add {
            let mut out = Vec::new();
            for (i, c) in caps.iter().enumerate() {
                let ok = !c.value.is_empty()
                    && c.value
                        .chars()
                        .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch.is_ascii_digit());
                if !ok {
                    return Err(bad(
                        c.referenced.line(),
                        format!("{at}.cap_add[{i}]"),
                        format!("{:?} is not a capability name (like NET_ADMIN)", c.value),
                    ));
                }
                out.push(c.value.clone());
            }
            target.cap_add = Some(out);
        }
        if let Some(list) = &self.sysctls {
            target.sysctls = Some(sysctl_allowlist(list, at, bad)?);
        }
        if let Some(u) = &self.ulimits {
            if let Some((name, _)) = u
                .value
                .iter()
                .find(|(n, v)| !limits::is_ulimit_ceiling(n, **v))
            {
                return Err(bad(
                    u.referenced.line(),
                    format!("{at}.ulimits.{name}"),
                    "not one of Docker's ulimits with a limit of -1 (unlimited) or more".into(),
                ));
            }
            target.ulimits = Some(u.value.clone());
        }
        if let Some(b) = self.bridges {
            target.bridges = Some(b);
        }
        if let Some(r) = &self.registration {
            r.apply(at, &mut target.registration, bad)?;
        }
        if let Some(e) = self.exec {
            target.exec = e;
        }
        if let Some(c) = self.registration_commands {
            target.registration_commands = Some(c);
        }
        network::apply(
            at,
            self.allowed_addresses.as_ref(),
            self.vlans.as_ref(),
            self.macs.as_ref(),
            &mut target.network,
            bad,
        )
    }
}
