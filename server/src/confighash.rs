//! The contents of a container's config volumes as hashes, one per path,
//! and the record of the hashes last applied: what tells `plan` that a
//! container's configuration changed under it (TripleO's config hash).
//!
//! A hash covers every file and symlink under the path (names, contents,
//! link targets, modes), walked in name order without following symlinks,
//! so it changes when anything the container reads there changes. The
//! hashes a container was made with are in its labels; those of its last
//! config restart are in `<state_dir>/applied/<container id>.json`, as
//! Docker labels cannot change.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsopen::{self, Opened};

/// The most a config volume may hold: it is read on every plan.
const MAX_BYTES: u64 = 256 * 1024 * 1024;
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigHashError {
    #[error("config volume {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config volumes: the thread hashing them failed: {0}")]
    Thread(String),
    #[error("config volume {0} holds more than 100000 entries or 256 MiB")]
    TooBig(PathBuf),
    #[error("cannot record the applied config of {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Each path's hash; a path that does not exist hashes as `missing`.
pub fn hash_paths(paths: &[PathBuf]) -> Result<BTreeMap<String, String>, ConfigHashError> {
    paths
        .iter()
        .map(|p| hash_path(p).map(|h| (p.display().to_string(), h)))
        .collect()
}

fn hash_path(root: &Path) -> Result<String, ConfigHashError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigHashError::Io { path, source }
    };
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("missing".into()),
        Err(e) => return Err(io(root)(e)),
        Ok(_) => {}
    }
    let mut h = Sha256::new();
    let (mut entries, mut bytes) = (0usize, 0u64);
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(ConfigHashError::TooBig(root.to_path_buf()));
        }
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        let rel = path.strip_prefix(root).unwrap_or(&path);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(meta.permissions().mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            h.update(b"l");
            h.update(
                fs::read_link(&path)
                    .map_err(io(&path))?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        } else if meta.is_dir() {
            h.update(b"d");
            let mut children: Vec<PathBuf> = fs::read_dir(&path)
                .map_err(io(&path))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io(&path))?;
            // Popped last first: pushed in reverse name order.
            children.sort();
            children.reverse();
            stack.extend(children);
        } else if meta.is_file() {
            bytes += meta.size();
            if bytes > MAX_BYTES {
                return Err(ConfigHashError::TooBig(root.to_path_buf()));
            }
            // Opened only if it is still the regular file it was, and read
            // no further than the size seen: a container may swap it for a
            // FIFO, a device or a growing file meanwhile.
            match fsopen::regular(&path) {
                Ok(file) => {
                    h.update(b"f");
                    h.update(meta.size().to_le_bytes());
                    let mut file = file.take(meta.size());
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        let n = file.read(&mut buf).map_err(io(&path))?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
                Err(Opened::Symlink | Opened::NotRegular) => h.update(b"o"),
                Err(Opened::Errno(e)) => return Err(io(&path)(e.into())),
            }
        } else {
            // A socket or device: its name and kind are all there is.
            h.update(b"o");
        }
        h.update([0]);
    }
    Ok(h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The paths of `current` whose hash differs from `applied`.
pub fn changed(
    applied: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<String> {
    current
        .iter()
        .filter(|(p, h)| applied.get(*p) != Some(h))
        .map(|(p, _)| p.clone())
        .collect()
}

fn record_path(state_dir: &Path, container_id: &str) -> PathBuf {
    state_dir
        .join("applied")
        .join(format!("{container_id}.json"))
}

/// The hashes last applied by a config restart of the container, if any.
pub fn applied(state_dir: &Path, container_id: &str) -> Option<BTreeMap<String, String>> {
    let text = fs::read_to_string(record_path(state_dir, container_id)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `hashes` as applied to the container, atomically.
pub fn record_applied(
    state_dir: &Path,
    container_id: &str,
    hashes: &BTreeMap<String, String>,
) -> Result<(), ConfigHashError> {
    let path = record_path(state_dir, container_id);
    let err = |source| ConfigHashError::Record {
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(state_dir);
    fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{container_id}.json.tmp"));
    let text = serde_json::to_string(hashes).map_err(|e| err(std::io::Error::other(e)))?;
    fs::write(&tmp, text).map_err(err)?;
    fs::rename(&tmp, &path).map_err(err)
}

/// Forgets the record of a container that is gone.
pub fn forget(state_dir: &Path, container_id: &str) {
    let _ = fs::remove_file(record_path(state_dir, container_id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_anywhere_under_the_path_changes_its_hash_and_nothing_else_does() {
        let dir = std::env::temp_dir().join(format!("dockstack-confighash-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(dir.join("main.cfg"), "a=1\n").unwrap();
        fs::write(dir.join("conf.d/x.cfg"), "x\n").unwrap();
        let paths = [dir.clone(), dir.join("nothing-here")];
        let one = hash_paths(&paths).unwrap();
        assert_eq!(
            one[&dir.join("nothing-here").display().to_string()],
            "missing"
        );
        assert_eq!(
            hash_paths(&paths).unwrap(),
            one,
            "the same contents hash alike"
        );
        fs::write(dir.join("conf.d/x.cfg"), "y\n").unwrap();
        let two = hash_paths(&paths).unwrap();
        assert_eq!(changed(&one, &two), [dir.display().to_string()]);
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        assert_ne!(hash_paths(&paths).unwrap(), two, "a new symlink counts");
        let state = dir.join("state");
        assert!(applied(&state, "abc").is_none());
        record_applied(&state, "abc", &two).unwrap();
        assert_eq!(applied(&state, "abc").unwrap(), two);
        forget(&state, "abc");
        assert!(applied(&state, "abc").is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
