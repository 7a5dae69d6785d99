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

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

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
/// A path unchanged since it was last hashed is not read again (see
/// [`signature`]): plans repeat, and a volume may hold 256 MiB.
pub fn hash_paths(paths: &[PathBuf]) -> Result<BTreeMap<String, String>, ConfigHashError> {
    let settled_before = SystemTime::now() - SETTLE;
    paths
        .iter()
        .map(|p| hash_cached(p, settled_before).map(|h| (p.display().to_string(), h)))
        .collect()
}

/// How long ago an entry must have last changed for its tree's hash to be
/// kept: a file written twice within one tick of the file system's clock
/// keeps its times, so a hash taken between the writes must not be kept.
const SETTLE: Duration = Duration::from_secs(2);
/// The trees whose hash is kept; past it, the cache starts over.
const CACHED_TREES: usize = 10_000;

/// A tree's [`signature`] and hash when it was last hashed.
type Kept = ([u8; 32], String);

/// Each tree's signature and hash when it was last hashed.
static CACHE: LazyLock<Mutex<HashMap<PathBuf, Kept>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Files whose contents were read, for the tests of the cache.
static FILES_READ: AtomicUsize = AtomicUsize::new(0);

fn hash_cached(root: &Path, settled_before: SystemTime) -> Result<String, ConfigHashError> {
    // Taken before the contents are read: a change meanwhile changes the
    // next signature, so a hash kept is never older than its signature.
    let sig = signature(root, settled_before)?;
    let cache = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sig) = sig
        && let Some((kept, hash)) = cache().get(root)
        && *kept == sig
    {
        return Ok(hash.clone());
    }
    let hash = hash_path(root)?;
    if let Some(sig) = sig {
        let mut cache = cache();
        if cache.len() >= CACHED_TREES {
            cache.clear();
        }
        cache.insert(root.to_path_buf(), (sig, hash.clone()));
    }
    Ok(hash)
}

/// What changes when anything under `root` does, from `lstat` alone: each
/// entry's name, device, inode, mode, size, mtime and ctime (which no
/// process can set back). `None` when something changed after
/// `settled_before`, or there is too much: such a tree is not cached.
fn signature(root: &Path, settled_before: SystemTime) -> Result<Option<[u8; 32]>, ConfigHashError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigHashError::Io { path, source }
    };
    let settled = settled_before
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut h = Sha256::new();
    let mut stack = vec![root.to_path_buf()];
    let mut entries = 0usize;
    while let Some(path) = stack.pop() {
        entries += 1;
        if entries > MAX_ENTRIES {
            return Ok(None);
        }
        let meta = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == root => {
                return Ok(None);
            }
            other => other.map_err(io(&path))?,
        };
        if meta.mtime() >= settled || meta.ctime() >= settled {
            return Ok(None);
        }
        h.update(path.as_os_str().as_encoded_bytes());
        h.update([0]);
        for n in [meta.dev(), meta.ino(), u64::from(meta.mode()), meta.size()] {
            h.update(n.to_le_bytes());
        }
        for n in [
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ] {
            h.update(n.to_le_bytes());
        }
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = fs::read_dir(&path)
                .map_err(io(&path))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io(&path))?;
            children.sort();
            stack.extend(children);
        }
    }
    Ok(Some(h.finalize().into()))
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
                    FILES_READ.fetch_add(1, Ordering::Relaxed);
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

    #[test]
    fn an_unchanged_tree_is_not_read_again_and_a_change_is_seen() {
        let dir =
            std::env::temp_dir().join(format!("dockstack-confighash-c-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(dir.join("main.cfg"), "a=1\n").unwrap();
        fs::write(dir.join("conf.d/x.cfg"), "x\n").unwrap();
        let read = || FILES_READ.load(Ordering::Relaxed);
        // Everything just written: nothing settled, nothing kept.
        let now = SystemTime::now() - SETTLE;
        let before = read();
        let one = hash_cached(&dir, now).unwrap();
        hash_cached(&dir, now).unwrap();
        assert_eq!(read() - before, 4, "fresh files are read every time");
        // Settled (as if two seconds had passed): read once, then kept.
        let later = SystemTime::now() + SETTLE;
        let before = read();
        assert_eq!(hash_cached(&dir, later).unwrap(), one);
        assert_eq!(hash_cached(&dir, later).unwrap(), one);
        assert_eq!(read() - before, 2, "a settled tree is read once");
        // Same size, new contents: the ctime tells.
        fs::write(dir.join("conf.d/x.cfg"), "y\n").unwrap();
        let later = SystemTime::now() + SETTLE;
        let two = hash_cached(&dir, later).unwrap();
        assert_ne!(two, one);
        assert_eq!(two, hash_path(&dir).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
