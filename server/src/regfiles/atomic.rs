//! Locked, atomic read-modify-write of one registration file.
//!
//! The DNS and Puppet files are read by live daemons (dnsmasq on SIGHUP, the
//! Puppet master on every catalog) and written by several servers' requests
//! at once, so a reader must only ever see the old or the new file, and two
//! writers must not lose each other's entries.
//!
//! The files live in directories a container writes to (the DNS container's
//! and the Puppet master's volumes) and the server runs as root, so nothing
//! below the directory the caller trusts is taken on trust: the file's
//! directory is opened once, beneath that root, with no symlink followed,
//! and the file, its lock and the temporary file are opened relative to it,
//! with no symlink followed either; the rename is relative to it too. A
//! symlink, or something other than a regular file, is refused with its name,
//! never followed: a container that plants one cannot have the server
//! create, read or replace a file outside its volume.

use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, Mode, SFlag};
use nix::unistd::{self, UnlinkatFlags};

use super::{Outcome, RegistrationError};
use crate::fsopen::{self, Opened};

/// The environment variable that sets how long an edit waits for a file's
/// lock, in milliseconds (read once, by the server).
pub const LOCK_TIMEOUT_ENV: &str = "DOCKSTACK_LOCK_TIMEOUT_MS";

/// How long an edit waits for a file's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest registration file read: far more than any hosts file,
/// hieradata or site.pp, and a bound on what a container can make the
/// server hold in memory.
pub const MAX_SIZE: u64 = 64 << 20;

/// What to do when the file does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Edit it as empty text; it is created only if the edit adds something.
    Empty,
    /// Refuse: the file belongs to another service's configuration.
    Fail,
}

/// A registration file as the editors may reach it: `root`, a directory
/// taken as its path names it (the host's: a volume's source, whose
/// ancestors may be symlinks such as /var/run), and the file's path beneath
/// it, of which no component is followed if it is a symlink. Messages name
/// the file as the request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegFile {
    root: PathBuf,
    beneath: PathBuf,
    shown: PathBuf,
}

impl RegFile {
    /// The file `beneath` below the trusted directory `root`, named `shown`.
    pub fn beneath(
        root: impl Into<PathBuf>,
        beneath: impl Into<PathBuf>,
        shown: impl Into<PathBuf>,
    ) -> Self {
        Self {
            root: root.into(),
            beneath: beneath.into(),
            shown: shown.into(),
        }
    }

    /// The file at `path`, its directory trusted as `path` names it: only
    /// the file, its lock and its temporary file are reached without
    /// following a symlink.
    pub fn in_dir(path: &Path) -> Self {
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self {
            root,
            beneath: path.file_name().map(PathBuf::from).unwrap_or_default(),
            shown: path.to_path_buf(),
        }
    }

    /// The file as the request named it.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// The directory taken on trust.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file's path below [`RegFile::root`].
    pub fn below_root(&self) -> &Path {
        &self.beneath
    }

    /// The file's directory as the request named it, for messages.
    fn shown_dir(&self) -> PathBuf {
        match self.shown.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The directory below the root and the file name; only plain names.
    fn split(&self) -> Result<(&Path, String), RegistrationError> {
        let plain = !self.beneath.as_os_str().is_empty()
            && self
                .beneath
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        let name = self.beneath.file_name().filter(|_| plain).ok_or_else(|| {
            io_err(
                &self.shown,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            )
        })?;
        let dir = self.beneath.parent().unwrap_or(Path::new(""));
        Ok((dir, name.to_string_lossy().into_owned()))
    }
}

impl From<&Path> for RegFile {
    fn from(path: &Path) -> Self {
        Self::in_dir(path)
    }
}

impl From<&PathBuf> for RegFile {
    fn from(path: &PathBuf) -> Self {
        Self::in_dir(path)
    }
}

impl From<PathBuf> for RegFile {
    fn from(path: PathBuf) -> Self {
        Self::in_dir(&path)
    }
}

impl From<&RegFile> for RegFile {
    fn from(file: &RegFile) -> Self {
        file.clone()
    }
}

/// How long an edit waits for a lock: `$DOCKSTACK_LOCK_TIMEOUT_MS`, else
/// [`DEFAULT_LOCK_TIMEOUT`].
pub fn lock_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| match std::env::var(LOCK_TIMEOUT_ENV) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => {
                tracing::warn!(
                    "{LOCK_TIMEOUT_ENV}={v:?} is not a number of milliseconds: \
                     waiting {DEFAULT_LOCK_TIMEOUT:?} for registration locks"
                );
                DEFAULT_LOCK_TIMEOUT
            }
        },
        Err(_) => DEFAULT_LOCK_TIMEOUT,
    })
}

/// Runs `edit` on the file's text under an exclusive lock and, if it changed
/// anything, replaces the file atomically with the result.
///
/// The lock is `flock` on `.<name>.lock` beside the file rather than on the
/// file itself, because the file is replaced by rename: a lock on the old
/// inode would not exclude a writer that opened the new one. The lock file is
/// never removed, for the same reason. It is waited for [`lock_timeout`].
pub fn update<T: Outcome>(
    file: &RegFile,
    if_missing: IfMissing,
    edit: impl FnOnce(&str) -> Result<(String, T), RegistrationError>,
) -> Result<T, RegistrationError> {
    update_within(file, lock_timeout(), if_missing, edit)
}

/// [`update`], waiting `timeout` for the lock.
pub fn update_within<T: Outcome>(
    file: &RegFile,
    timeout: Duration,
    if_missing: IfMissing,
    edit: impl FnOnce(&str) -> Result<(String, T), RegistrationError>,
) -> Result<T, RegistrationError> {
    let path = file.path();
    let (below, name) = file.split()?;
    let shown_dir = file.shown_dir();
    let root = open_root(&file.root).map_err(|e| io_err(&shown_dir, e.into()))?;
    let dir = open_below(root, below).map_err(|e| match e {
        Errno::ELOOP | Errno::EXDEV => RegistrationError::Refused {
            path: shown_dir.clone(),
            what: "is or passes through a symbolic link: refused, not followed",
        },
        e => io_err(&shown_dir, e.into()),
    })?;
    let dir = dir.as_fd();

    let lock_name = format!(".{name}.lock");
    let lock = lock(dir, &lock_name, &shown_dir.join(&lock_name), timeout)?;
    remove_stale_temps(dir, &name, &shown_dir);

    let (text, meta) = match open_regular(dir, &name, OFlag::O_RDONLY) {
        Ok(f) => {
            let meta = f.metadata().map_err(|source| io_err(path, source))?;
            let mut bytes = Vec::new();
            f.take(MAX_SIZE + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| io_err(path, source))?;
            if meta.len() > MAX_SIZE || bytes.len() as u64 > MAX_SIZE {
                return Err(RegistrationError::Refused {
                    path: path.to_path_buf(),
                    what: "is larger than 64 MiB: refused",
                });
            }
            (utf8(bytes).map_err(|e| e.in_file(path))?, Some(meta))
        }
        Err(Opened::Errno(Errno::ENOENT)) if if_missing == IfMissing::Empty => {
            (String::new(), None)
        }
        Err(e) => return Err(e.into_error(path)),
    };
    let (new_text, outcome) = edit(&text).map_err(|e| e.in_file(path))?;
    if outcome.is_change() && (new_text != text || meta.is_none()) {
        replace(
            dir,
            &name,
            path,
            &shown_dir,
            new_text.as_bytes(),
            meta.as_ref(),
        )?;
    }
    // Unlocks on drop; kept explicit so the lock visibly covers the write.
    drop(lock);
    Ok(outcome)
}

/// Opens the trusted directory, its path resolved as usual.
fn open_root(root: &Path) -> Result<OwnedFd, Errno> {
    fcntl::open(root, DIR_FLAGS, Mode::empty())
}

/// O_NONBLOCK: a FIFO planted where a directory should be is refused
/// (O_DIRECTORY) and never waited on.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

/// Opens `below` (plain names, possibly none) beneath the directory `root`
/// as a directory, following no symlink.
pub(crate) fn open_below(root: OwnedFd, below: &Path) -> Result<OwnedFd, Errno> {
    if below.as_os_str().is_empty() {
        return Ok(root);
    }
    // RESOLVE_NO_SYMLINKS covers the last component too (ELOOP), where
    // O_NOFOLLOW with O_DIRECTORY would say ENOTDIR.
    let how = OpenHow::new()
        .flags(DIR_FLAGS)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    match fcntl::openat2(&root, below, how) {
        // Before Linux 5.6: the same, one component at a time.
        Err(Errno::ENOSYS) => open_below_stepwise(root, below),
        other => other,
    }
}

/// Opens `below` beneath `dir` one plain name at a time, none of them
/// followed if it is a symlink.
pub(crate) fn open_below_stepwise(dir: OwnedFd, below: &Path) -> Result<OwnedFd, Errno> {
    let flags = DIR_FLAGS | OFlag::O_NOFOLLOW;
    let mut dir = dir;
    for c in below.components() {
        let Component::Normal(name) = c else {
            return Err(Errno::EXDEV);
        };
        dir = match fcntl::openat(&dir, name, flags, Mode::empty()) {
            // O_NOFOLLOW with O_DIRECTORY: a symlink is "not a directory".
            Err(Errno::ENOTDIR)
                if stat::fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
                }) =>
            {
                return Err(Errno::ELOOP);
            }
            other => other?,
        };
    }
    Ok(dir)
}

impl Opened {
    fn into_error(self, path: &Path) -> RegistrationError {
        match self {
            Opened::Errno(e) => io_err(path, e.into()),
            Opened::Symlink => RegistrationError::Refused {
                path: path.to_path_buf(),
                what: "is a symbolic link: refused, not followed",
            },
            Opened::NotRegular => RegistrationError::Refused {
                path: path.to_path_buf(),
                what: "is not a regular file: refused",
            },
        }
    }
}

/// Opens the regular file `name` of `dir` with `flags` (see [`fsopen`]).
fn open_regular(dir: BorrowedFd<'_>, name: &str, flags: OFlag) -> Result<File, Opened> {
    fsopen::regular_at(dir, name, flags)
}

/// Takes the lock `name` of `dir` (created if missing), waiting up to
/// `timeout` for whoever holds it.
fn lock(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    timeout: Duration,
) -> Result<File, RegistrationError> {
    let lock = open_regular(dir, name, OFlag::O_RDONLY | OFlag::O_CREAT).map_err(|e| {
        match e.into_error(shown) {
            RegistrationError::Io { path, source } => RegistrationError::Lock { path, source },
            other => other,
        }
    })?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(source)) => {
                return Err(RegistrationError::Lock {
                    path: shown.to_path_buf(),
                    source,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(RegistrationError::LockHeld {
                path: shown.to_path_buf(),
                waited: timeout,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The name of the `seq`th temporary file of process `pid` for `name`.
fn temp_name(name: &str, pid: u32, seq: u64) -> String {
    format!(".{name}.{pid}.{seq}.tmp")
}

/// Whether `entry` is a temporary file of `name`: `.<name>.<pid>.<seq>.tmp`.
pub(crate) fn is_temp_of(entry: &str, name: &str) -> bool {
    let Some(rest) = entry
        .strip_prefix('.')
        .and_then(|e| e.strip_prefix(name))
        .and_then(|e| e.strip_prefix('.'))
        .and_then(|e| e.strip_suffix(".tmp"))
    else {
        return false;
    };
    let mut parts = rest.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Removes the temporary files of `name` a crashed writer left in `dir`.
/// Under the lock no other writer of `name` has one, so every one there is
/// stale; only those names are removed, relative to `dir`. A failure is
/// logged: the edit does not depend on it.
fn remove_stale_temps(dir: BorrowedFd<'_>, name: &str, shown_dir: &Path) {
    // The open directory itself, whatever has become of its path.
    let entries = match fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(
                "listing {} for stale temporary files: {e}",
                shown_dir.display()
            );
            return;
        }
    };
    for entry in entries.flatten() {
        let entry = entry.file_name();
        let Some(entry) = entry.to_str() else {
            continue;
        };
        if !is_temp_of(entry, name) {
            continue;
        }
        match unistd::unlinkat(dir, entry, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => tracing::warn!(
                "removed {}, left behind by an edit that did not finish",
                shown_dir.join(entry).display()
            ),
            Err(e) => tracing::warn!(
                "cannot remove the stale {}: {e}",
                shown_dir.join(entry).display()
            ),
        }
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
/// file systems), makes it durable, then renames it over the target; all
/// relative to `dir`, so a symlink put in the target's place is replaced,
/// not followed.
fn replace(
    dir: BorrowedFd<'_>,
    name: &str,
    target: &Path,
    shown_dir: &Path,
    contents: &[u8],
    old: Option<&Metadata>,
) -> Result<(), RegistrationError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp_name = temp_name(
        name,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
    );
    let tmp_path = shown_dir.join(&tmp_name);
    // O_EXCL: an existing name, a symlink included, is an error.
    let fd = fcntl::openat(
        dir,
        tmp_name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| io_err(&tmp_path, e.into()))?;
    let mut tmp = TempFile {
        dir,
        name: &tmp_name,
        armed: true,
    };
    let mut file = File::from(fd);
    if let Some(old) = old {
        // The mode is set explicitly because the umask may have narrowed the
        // one given to open().
        file.set_permissions(Permissions::from_mode(old.mode() & 0o7777))
            .map_err(|source| io_err(&tmp_path, source))?;
        // Keeping the owner needs privilege; without it the file becomes the
        // writer's, which is the best an unprivileged writer can do and still
        // leaves the mode (and so the readers' access) as it was.
        let new = file
            .metadata()
            .map_err(|source| io_err(&tmp_path, source))?;
        if new.uid() != old.uid() || new.gid() != old.gid() {
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
        }
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_err(&tmp_path, source))?;
    drop(file);
    fcntl::renameat(dir, tmp_name.as_str(), dir, name).map_err(|e| io_err(target, e.into()))?;
    tmp.armed = false;
    // The rename is durable only once the directory entry is.
    unistd::fsync(dir).map_err(|e| io_err(shown_dir, e.into()))
}

/// Removes the temporary file on every path that does not rename it.
struct TempFile<'a> {
    dir: BorrowedFd<'a>,
    name: &'a str,
    armed: bool,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = unistd::unlinkat(self.dir, self.name, UnlinkatFlags::NoRemoveDir);
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> RegistrationError {
    RegistrationError::Io {
        path: path.to_path_buf(),
        source,
    }
}
