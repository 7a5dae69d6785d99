//! The policy's allowlists of sysctls and ulimits: which a spec may set and
//! how an entry of a policy file is written. Plain functions of names and
//! values, so that they need none of the policy's own types.

use std::collections::BTreeMap;

use dockstack_types::resources::{ULIMITS, check_sysctl};

/// The first sysctl of `keys` that no entry of `allow` (a name, or a
/// prefix ending in `*`) names.
pub(super) fn first_sysctl_refused<'a>(
    allow: &[String],
    mut keys: impl Iterator<Item = &'a String>,
) -> Option<&'a String> {
    keys.find(|key| {
        !allow.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => a == *key,
        })
    })
}

/// The first ulimit that `allow` does not name, or whose soft or hard value
/// is above its ceiling (-1 is unlimited, above every number).
pub(super) fn first_ulimit_refused<'a>(
    allow: &BTreeMap<String, i64>,
    ulimits: &'a BTreeMap<String, (i64, i64)>,
) -> Option<&'a String> {
    let within = |v: i64, max: i64| max == -1 || (v != -1 && v <= max);
    ulimits
        .iter()
        .find(|(name, (soft, hard))| {
            !allow
                .get(*name)
                .is_some_and(|max| within(*soft, *max) && within(*hard, *max))
        })
        .map(|(name, _)| name)
}

/// Whether a policy entry names namespaced sysctls: one, a prefix of them
/// ending in `*` (checked as a name under it would be), or `*`.
pub(super) fn is_sysctl_entry(entry: &str) -> bool {
    let probe = match entry.strip_suffix('*') {
        Some(prefix) => format!("{prefix}x"),
        None => entry.to_string(),
    };
    entry == "*" || check_sysctl(&probe, "1").is_ok()
}

/// Whether a policy's ulimit ceiling is one of Docker's ulimits with a
/// value of -1 (unlimited) or more.
pub(super) fn is_ulimit_ceiling(name: &str, max: i64) -> bool {
    ULIMITS.contains(&name) && max >= -1
}
