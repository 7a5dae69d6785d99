//! Where a role held to an allowlist may mount volumes from: only under
//! its allowed prefixes, never a source that is, is under or holds a denied
//! path or one the server protects, and each source pinned to its canonical
//! path, so that what Docker is given has no symlink to follow later.

use std::path::{Component, Path, PathBuf};

use dockstack_types::volume::Bind;

use super::{Refusal, Role, RolePolicy, list, refuse};

/// What the server protects from every role held to an allowlist, whatever
/// its policy file says: Docker's, containerd's and OVS's state and
/// sockets. The server adds its own directories (see
/// [`super::Policy::protect`]).
pub(super) const PROTECTED: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/docker",
    "/var/run/docker",
    "/var/lib/docker",
    "/run/containerd",
    "/var/run/containerd",
    "/var/lib/containerd",
    "/run/openvswitch",
    "/var/run/openvswitch",
    "/var/lib/openvswitch",
    "/etc/openvswitch",
    "/run/dbus",
    "/run/systemd",
    "/etc/dockstack",
    "/usr/local/lib/dockstack",
    "/var/lib/dockstack",
];

/// The default of an operator's `volumes.allow`.
pub const DEFAULT_VOLUME_ROOT: &str = "/srv/dockstack";

/// One bind of a spec as the policy admitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedBind {
    /// `volumes[i]`.
    pub key: String,
    /// The source, canonical: no symlink, `.` or `..` in it, and the part
    /// that does not exist yet (that `run` creates) appended.
    pub source: PathBuf,
    /// The allowed prefix, canonical, the source is under: `run` creates
    /// missing directories only from there down.
    pub within: PathBuf,
    pub container: String,
    pub read_only: bool,
}

impl PinnedBind {
    /// The bind as Docker is given it.
    pub fn docker(&self) -> String {
        let mode = if self.read_only { ":ro" } else { "" };
        format!("{}:{}{mode}", self.source.display(), self.container)
    }
}

/// `path` with its longest existing ancestor resolved (symlinks followed),
/// the rest, which a run would create, appended.
pub(super) fn resolved(path: &Path) -> PathBuf {
    for ancestor in path.ancestors() {
        if let Ok(real) = ancestor.canonicalize() {
            let rest = path.strip_prefix(ancestor).unwrap_or(Path::new(""));
            return real.join(rest);
        }
    }
    path.to_path_buf()
}

/// Whether `path` is `prefix` or under it, component by component (so
/// `/etcetera` is not under `/etc`).
pub(super) fn under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

/// Whether `a` is `b`, under it or holds it: a bind of either reaches the
/// other.
fn overlaps(a: &Path, b: &Path) -> bool {
    under(a, b) || under(b, a)
}

/// The paths a role's sources may not overlap, each as written and
/// resolved (`/var/run` is a symlink to `/run` on most hosts).
fn forbidden(p: &RolePolicy, protected: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    p.volume_deny
        .iter()
        .chain(protected)
        .map(|d| (d.clone(), resolved(d)))
        .collect()
}

/// Checks one source of `role` and returns it resolved, with the allowed
/// prefix it is under (`None` when the role may mount from anywhere).
pub(super) fn check_source(
    role: Role,
    p: &RolePolicy,
    protected: &[PathBuf],
    key: &str,
    given: &Path,
) -> Result<(PathBuf, Option<PathBuf>), Refusal> {
    // Where it really is: a symlink must not lead past a rule.
    let src = resolved(given);
    if src.components().all(|c| c == Component::RootDir) && !p.volume_root {
        return Err(refuse(
            key,
            format!("the {role} policy refuses / as a volume source"),
        ));
    }
    let Some(allow) = &p.volume_allow else {
        // Unrestricted in where (an admin by default): only its denials.
        if let Some(deny) = p.volume_deny.iter().find(|d| under(&src, d)) {
            return Err(refuse(
                key,
                format!(
                    "the {role} policy refuses volume sources under {}",
                    deny.display()
                ),
            ));
        }
        return Ok((src, None));
    };
    // Held to an allowlist: a source that holds a denied path reaches it
    // as surely as one under it does.
    for (written, real) in forbidden(p, protected) {
        if overlaps(&src, &real) || overlaps(&src, &written) {
            return Err(refuse(
                key,
                format!(
                    "the {role} policy refuses volume sources that are, are under or hold {}",
                    written.display()
                ),
            ));
        }
    }
    let within = allow.iter().map(|a| resolved(a)).find(|a| under(&src, a));
    match within {
        Some(within) => Ok((src, Some(within))),
        None => Err(refuse(
            key,
            format!(
                "the {role} policy allows volume sources only under {}",
                list(allow)
            ),
        )),
    }
}

/// The binds of `volumes`, pinned: each source canonical and checked. A
/// source under another writable bind of the same spec is refused unless
/// it is mounted at the same place inside that one, where the container
/// cannot replace it (a mount point cannot be renamed or removed in its
/// own namespace); otherwise the container could swap a directory of its
/// path for a symlink before its next start.
pub(super) fn pin(
    role: Role,
    p: &RolePolicy,
    protected: &[PathBuf],
    volumes: &[String],
) -> Result<Vec<PinnedBind>, Refusal> {
    let mut pinned: Vec<PinnedBind> = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let key = format!("volumes[{i}]");
        let bind = Bind::parse(v).map_err(|e| refuse(&key, e.to_string()))?;
        let (source, within) = check_source(role, p, protected, &key, Path::new(bind.host))?;
        let within = within.unwrap_or_else(|| PathBuf::from("/"));
        if source.to_str().is_none_or(|s| s.contains([':', ','])) {
            return Err(refuse(
                &key,
                format!(
                    "the source resolves to {}, which Docker cannot take as a bind",
                    source.display()
                ),
            ));
        }
        let b = PinnedBind {
            key,
            source,
            within,
            container: bind.container.to_string(),
            read_only: bind.read_only,
        };
        if let Some(outer) = pinned
            .iter()
            .find(|o| nested_in_own(&b, o) || nested_in_own(o, &b))
        {
            return Err(refuse(
                &b.key,
                format!(
                    "{} and {} ({}) are nested but not mounted at the same place: the \
                     container could replace the inner one with a symlink",
                    b.source.display(),
                    outer.source.display(),
                    outer.key
                ),
            ));
        }
        pinned.push(b);
    }
    Ok(pinned)
}

/// Whether `inner` lies strictly under the writable `outer` of the same
/// container without being mounted at its own place inside it.
fn nested_in_own(inner: &PinnedBind, outer: &PinnedBind) -> bool {
    let Ok(rest) = inner.source.strip_prefix(&outer.source) else {
        return false;
    };
    !outer.read_only
        && !rest.as_os_str().is_empty()
        && Path::new(&outer.container).join(rest) != Path::new(&inner.container)
}

/// A bind of another container, as Docker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherMount {
    pub container: String,
    pub source: PathBuf,
    pub writable: bool,
}

/// Why `bind` may not be mounted beside `other`: it lies strictly under
/// a writable bind of `other`, which could then swap a directory of its
/// path for a symlink, or it is writable and holds a bind of `other`,
/// whose path it could swap in turn. The same directory in both is safe:
/// neither container can rename or remove its own mount point.
pub fn clash(bind: &PinnedBind, other: &OtherMount) -> Option<String> {
    let theirs = [other.source.clone(), resolved(&other.source)];
    let strictly = |a: &Path, b: &Path| a != b && under(a, b);
    if other.writable && theirs.iter().any(|t| strictly(&bind.source, t)) {
        return Some(format!(
            "{}: {} is inside {}, a writable volume of container {}, which could \
             replace a directory of it with a symlink before a start",
            bind.key,
            bind.source.display(),
            other.source.display(),
            other.container
        ));
    }
    if !bind.read_only && theirs.iter().any(|t| strictly(t, &bind.source)) {
        return Some(format!(
            "{}: {} holds {}, a volume of container {}, and would be writable: \
             this container could replace a directory of that one's path",
            bind.key,
            bind.source.display(),
            other.source.display(),
            other.container
        ));
    }
    None
}
