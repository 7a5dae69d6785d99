//! Opening a file a container may have planted: only a regular file is ever
//! opened for reading or writing.
//!
//! The registration files and the config volumes live in directories
//! containers write to, and the server runs as root. An open is itself an
//! act on what it opens (a device's driver runs, a FIFO blocks until a writer
//! comes, a terminal may become ours), so the name is first opened with
//! `O_PATH | O_NOFOLLOW`, which touches nothing, the kind is read from that
//! descriptor, and only a regular file is opened again, through
//! `/proc/self/fd`, which reaches the very inode already checked: a swap of
//! the name between the check and the open changes nothing.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode, SFlag};

/// Why a name could not be opened as a regular file.
#[derive(Debug)]
pub enum Opened {
    Errno(Errno),
    Symlink,
    NotRegular,
}

/// The flags every open here adds: never follow the last component, never
/// block on a FIFO, never take a terminal, never leak into a hook.
const SAFE: OFlag = OFlag::O_NOFOLLOW
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

/// Opens the regular file `name` of `dir` with `flags` (`O_CREAT` makes it
/// when missing, as a regular file of mode 0644).
pub fn regular_at(dir: BorrowedFd<'_>, name: &str, flags: OFlag) -> Result<File, Opened> {
    let at = |path_flags| fcntl::openat(dir, name, path_flags, Mode::empty());
    let path = match at(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if flags.contains(OFlag::O_CREAT) => {
            // A new file is regular; O_EXCL with O_NOFOLLOW creates nothing
            // through a name planted meanwhile.
            let create = (flags - OFlag::O_CREAT) | OFlag::O_CREAT | OFlag::O_EXCL | SAFE;
            match fcntl::openat(dir, name, create, Mode::from_bits_truncate(0o644)) {
                Ok(fd) => return checked(File::from(fd)),
                // Made by another meanwhile: open what is there now.
                Err(Errno::EEXIST) => at(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                    .map_err(Opened::Errno)?,
                Err(e) => return Err(Opened::Errno(e)),
            }
        }
        Err(e) => return Err(Opened::Errno(e)),
    };
    reopen(&path, flags - OFlag::O_CREAT)
}

/// Opens the regular file at `path` for reading, its last component not
/// followed if it is a symlink.
pub fn regular(path: &Path) -> Result<File, Opened> {
    let fd = fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Opened::Errno)?;
    reopen(&fd, OFlag::O_RDONLY)
}

/// `path` (an `O_PATH` descriptor) opened with `flags` if it is a regular file.
fn reopen(path: &OwnedFd, flags: OFlag) -> Result<File, Opened> {
    let st = stat::fstatat(path, "", AtFlags::AT_EMPTY_PATH).map_err(Opened::Errno)?;
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => {}
        SFlag::S_IFLNK => return Err(Opened::Symlink),
        _ => return Err(Opened::NotRegular),
    }
    let proc = format!("/proc/self/fd/{}", path.as_raw_fd());
    // The magic link is followed on purpose: it is the inode checked above.
    let fd = fcntl::open(
        proc.as_str(),
        flags | (SAFE - OFlag::O_NOFOLLOW),
        Mode::empty(),
    )
    .map_err(Opened::Errno)?;
    let file = checked(File::from(fd))?;
    let same = file
        .metadata()
        .is_ok_and(|m| m.dev() == st.st_dev && m.ino() == st.st_ino);
    if same {
        Ok(file)
    } else {
        Err(Opened::NotRegular)
    }
}

fn checked(file: File) -> Result<File, Opened> {
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(Opened::NotRegular),
        Err(e) => Err(Opened::Errno(Errno::from_raw(
            e.raw_os_error().unwrap_or(0),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn only_a_regular_file_is_opened_and_a_fifo_is_not_even_touched() {
        let dir = std::env::temp_dir().join(format!("dockstack-fsopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), "text").unwrap();
        nix::unistd::mkfifo(&dir.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink(dir.join("file"), dir.join("link")).unwrap();

        let mut text = String::new();
        regular(&dir.join("file"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "text");
        assert!(matches!(
            regular(&dir.join("fifo")),
            Err(Opened::NotRegular)
        ));
        assert!(matches!(regular(&dir.join("link")), Err(Opened::Symlink)));
        assert!(matches!(
            regular(Path::new("/dev/zero")),
            Err(Opened::NotRegular)
        ));

        let d = fcntl::open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        use std::os::fd::AsFd;
        assert!(matches!(
            regular_at(d.as_fd(), "fifo", OFlag::O_RDONLY | OFlag::O_CREAT),
            Err(Opened::NotRegular)
        ));
        let made = regular_at(d.as_fd(), "new", OFlag::O_RDONLY | OFlag::O_CREAT).unwrap();
        assert!(made.metadata().unwrap().is_file());
        assert!(regular_at(d.as_fd(), "new", OFlag::O_RDONLY | OFlag::O_CREAT).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
