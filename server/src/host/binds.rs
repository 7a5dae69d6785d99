//! The binds a `run` gives Docker and the directories it creates for them.
//! For a role held to a volume allowlist: admitted only where no other
//! container can swap a directory of their path for a symlink (nor they one
//! of another's), and their missing directories created only beneath the
//! allowed prefix, never through a symlink.
//!
//! Why Docker's own resolution of a bind at every later start (a `start`,
//! its restart policy, a dockerd restart, a reboot: none passes through
//! this server) is then safe: the source Docker is given is canonical, so
//! every directory of its path is a real directory, and a path can only be
//! redirected by renaming or replacing one of them, which needs write
//! access to the directory above it. No container has that: a bind strictly
//! under another container's writable bind is refused here, and so is a
//! writable bind strictly above another's; the same directory in two
//! containers is harmless, as a mount point cannot be renamed or removed
//! from inside the namespace it is mounted in. Containers that come later
//! are held to the same rule against this one.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, mkdirat};

use super::{Host, HostError, HostErrorKind};
use crate::policy::volumes::{OtherMount, PinnedBind, clash};
use crate::spec::ContainerSpec;

/// Binds admitted by runs whose containers may not exist yet, by
/// container: a second run checks against them as against Docker's.
pub(super) type PendingBinds = std::sync::Mutex<HashMap<String, Vec<PinnedBind>>>;

/// Holds a run's binds among the pending ones until the run is over (its
/// container made, or not).
pub(super) struct Admitted<'a> {
    host: &'a Host,
    name: String,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.host
            .pending_binds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

impl Host {
    /// Admits the pinned binds of container `name` against every other
    /// container's mounts on this Docker and the binds of runs under way.
    /// Checked and recorded under one lock, with Docker listed inside it,
    /// so that two runs cannot both pass before either is recorded.
    pub(super) async fn admit_binds(
        &self,
        name: &str,
        binds: &[PinnedBind],
    ) -> Result<Admitted<'_>, HostError> {
        let _one_at_a_time = self.bind_admission.lock().await;
        let mut others = self.docker.list_mounts().await.map_err(|e| self.err(e))?;
        // Its own sandbox or a stale container of the name is no other.
        others.retain(|m| m.container != name);
        let mut pending = self.pending_binds.lock().unwrap_or_else(|e| e.into_inner());
        others.extend(
            pending
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .flat_map(|(n, bs)| {
                    bs.iter().map(|b| OtherMount {
                        container: n.clone(),
                        source: b.source.clone(),
                        writable: !b.read_only,
                    })
                }),
        );
        for b in binds {
            if let Some(reason) = others.iter().find_map(|o| clash(b, o)) {
                return Err(self.err(HostErrorKind::VolumeClash {
                    name: name.to_string(),
                    reason,
                }));
            }
        }
        pending.insert(name.to_string(), binds.to_vec());
        Ok(Admitted {
            host: self,
            name: name.to_string(),
        })
    }
}

impl Host {
    /// The spec's volumes as Docker gets them (`pinned`, when the policy
    /// pinned them, or as written) and the directories made for them,
    /// outermost first, for a failed run to remove again.
    pub(super) fn volumes_for(
        &self,
        spec: &ContainerSpec,
        pinned: Option<&[PinnedBind]>,
    ) -> Result<(Vec<PathBuf>, Vec<String>), HostError> {
        let (created, binds) = match pinned {
            Some(b) => (
                create_pinned_dirs(&spec.name, b),
                b.iter().map(PinnedBind::docker).collect(),
            ),
            None => (create_volume_dirs(spec), spec.volumes.clone()),
        };
        Ok((created.map_err(|e| self.err(e))?, binds))
    }
}

/// Creates the missing directories of pinned binds, each only beneath its
/// allowed prefix and without following a symlink; returns those it
/// created, outermost first, so a failed run can remove them.
pub(super) fn create_pinned_dirs(
    name: &str,
    binds: &[PinnedBind],
) -> Result<Vec<PathBuf>, HostErrorKind> {
    let mut created = Vec::new();
    for b in binds {
        if b.source.symlink_metadata().is_ok() {
            // Admitted as canonical; still so, or it is not given to Docker.
            if b.source.canonicalize().ok().as_ref() != Some(&b.source) {
                remove_dirs(&created);
                return Err(HostErrorKind::Volume {
                    name: name.to_string(),
                    path: b.source.clone(),
                    source: std::io::Error::other("it changed into a symlink since it was checked"),
                });
            }
            continue;
        }
        if let Err(source) = create_beneath(&b.within, &b.source, &mut created) {
            remove_dirs(&created);
            return Err(HostErrorKind::Volume {
                name: name.to_string(),
                path: b.source.clone(),
                source,
            });
        }
    }
    Ok(created)
}

/// Creates `path`'s missing directories below `within` (made first if it
/// is missing: it is the policy's own), one at a time from an open
/// directory, so that no symlink put in the way leads elsewhere.
fn create_beneath(within: &Path, path: &Path, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let rest = path
        .strip_prefix(within)
        .map_err(|_| std::io::Error::other(format!("not under {}", within.display())))?;
    std::fs::create_dir_all(within)?;
    let nofollow = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = File::from(open(within, nofollow, Mode::empty())?);
    let mut at = within.to_path_buf();
    for c in rest.components() {
        let Component::Normal(c) = c else {
            return Err(std::io::Error::other(format!(
                "{} is not a plain path below {}",
                path.display(),
                within.display()
            )));
        };
        at.push(c);
        match mkdirat(dir.as_fd(), c, Mode::from_bits_truncate(0o755)) {
            Ok(()) => created.push(at.clone()),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = File::from(openat(dir.as_fd(), c, nofollow, Mode::empty())?);
    }
    Ok(())
}

/// Creates missing host directories of bind volumes, as the 2015 server
/// did, for a role that may mount from anywhere; returns the ones it created so a failed run can remove them.
pub(super) fn create_volume_dirs(spec: &ContainerSpec) -> Result<Vec<PathBuf>, HostErrorKind> {
    let mut created = Vec::new();
    for v in &spec.volumes {
        let src = Path::new(v.split(':').next().unwrap_or_default());
        if src.exists() {
            continue;
        }
        // Remember each ancestor that did not exist, outermost first.
        let mut missing: Vec<PathBuf> = src
            .ancestors()
            .take_while(|p| !p.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        if let Err(source) = std::fs::create_dir_all(src) {
            remove_dirs(&created);
            return Err(HostErrorKind::Volume {
                name: spec.name.clone(),
                path: src.to_path_buf(),
                source,
            });
        }
        created.extend(missing);
    }
    Ok(created)
}

pub(super) fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_made_beneath_the_prefix_and_never_through_a_symlink() {
        let root = std::env::temp_dir().join(format!("dockstack-binds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let within = root.join("allowed");
        let mut created = Vec::new();
        create_beneath(&within, &within.join("a/b"), &mut created).unwrap();
        assert_eq!(created, [within.join("a"), within.join("a/b")]);
        assert!(within.join("a/b").is_dir());

        // A symlink in the way is not followed, and nothing is made there.
        let outside = root.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, within.join("link")).unwrap();
        let mut created = Vec::new();
        let e = create_beneath(&within, &within.join("link/x"), &mut created).unwrap_err();
        // O_NOFOLLOW with O_DIRECTORY: ENOTDIR or ELOOP, by kernel.
        let refused = [Errno::ENOTDIR as i32, Errno::ELOOP as i32];
        assert!(refused.contains(&e.raw_os_error().unwrap_or(0)), "{e}");
        assert!(created.is_empty(), "{created:?}");
        assert!(!outside.join("x").exists());
        // Not below the prefix at all: refused.
        assert!(create_beneath(&within, &outside.join("y"), &mut created).is_err());
        assert!(!outside.join("y").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
