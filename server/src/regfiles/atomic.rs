//! Locked, atomic read-modify-write of one registration file.
//!
//! The DNS and Puppet files are read by live daemons (dnsmasq on SIGHUP, the
//! Puppet master on every catalog) and written by several servers' requests
//! at once, so a reader must only ever see the old or the new file, and two
//! writers must not lose each other's entries.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Outcome, RegistrationError};

/// What to do when the file does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Edit it as empty text; it is created only if the edit adds something.
    Empty,
    /// Refuse: the file belongs to another service's configuration.
    Fail,
}

/// Runs `edit` on the file's text under an exclusive lock and, if it changed
/// anything, replaces the file atomically with the result.
///
/// The lock is `flock` on `.<name>.lock` beside the file rather than on the
/// file itself, because the file is replaced by rename: a lock on the old
/// inode would not exclude a writer that opened the new one. The lock file is
/// never removed, for the same reason.
pub fn update<T: Outcome>(
    path: &Path,
    if_missing: IfMissing,
    edit: impl FnOnce(&str) -> Result<(String, T), RegistrationError>,
) -> Result<T, RegistrationError> {
    let target = resolve(path)?;
    let (dir, name) = split(&target)?;
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(&lock_path)
        .map_err(|source| RegistrationError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    lock.lock().map_err(|source| RegistrationError::Lock {
        path: lock_path.clone(),
        source,
    })?;

    let (text, meta) = match fs::read(&target) {
        Ok(bytes) => {
            let meta = fs::metadata(&target).map_err(|source| io_err(&target, source))?;
            (utf8(bytes).map_err(|e| e.in_file(path))?, Some(meta))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && if_missing == IfMissing::Empty => {
            (String::new(), None)
        }
        Err(source) => return Err(io_err(path, source)),
    };
    let (new_text, outcome) = edit(&text).map_err(|e| e.in_file(path))?;
    if outcome.is_change() && (new_text != text || meta.is_none()) {
        replace(&target, dir, &name, new_text.as_bytes(), meta.as_ref())?;
    }
    // Unlocks on drop; kept explicit so the lock visibly covers the write.
    drop(lock);
    Ok(outcome)
}

/// Follows a symlink so the link stays and the file it points to is replaced.
fn resolve(path: &Path) -> Result<PathBuf, RegistrationError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|source| io_err(path, source))
        }
        _ => Ok(path.to_path_buf()),
    }
}

fn split(target: &Path) -> Result<(&Path, String), RegistrationError> {
    let name = target
        .file_name()
        .ok_or_else(|| {
            io_err(
                target,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok((dir, name)),
        Ok(_) => Err(io_err(
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        )),
        Err(source) => Err(io_err(dir, source)),
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, RegistrationError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        RegistrationError::malformed(line, "not valid utf-8")
    })
}

/// Writes a temporary file in the same directory (so rename cannot cross
/// file systems), makes it durable, then renames it over the target.
fn replace(
    target: &Path,
    dir: &Path,
    name: &str,
    contents: &[u8],
    old: Option<&fs::Metadata>,
) -> Result<(), RegistrationError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut tmp = TempFile {
        path: dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )),
        armed: true,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp.path)
        .map_err(|source| io_err(&tmp.path, source))?;
    if let Some(old) = old {
        // The mode is set explicitly because the umask may have narrowed the
        // one given to open().
        file.set_permissions(Permissions::from_mode(old.mode() & 0o7777))
            .map_err(|source| io_err(&tmp.path, source))?;
        // Keeping the owner needs privilege; without it the file becomes the
        // writer's, which is the best an unprivileged writer can do and still
        // leaves the mode (and so the readers' access) as it was.
        let new = file
            .metadata()
            .map_err(|source| io_err(&tmp.path, source))?;
        if new.uid() != old.uid() || new.gid() != old.gid() {
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
        }
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_err(&tmp.path, source))?;
    drop(file);
    fs::rename(&tmp.path, target).map_err(|source| io_err(target, source))?;
    tmp.armed = false;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_err(dir, source))
}

/// Removes the temporary file on every path that does not rename it.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> RegistrationError {
    RegistrationError::Io {
        path: path.to_path_buf(),
        source,
    }
}
