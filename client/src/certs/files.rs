//! Writing the directory's files: new ones refused unless forced, replacements in
//! one rename, and the directory kept 0700; reading them and the CA back.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};

use super::CertError;
use super::layout::ca_cert;

pub(super) fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn write_file(
    path: &Path,
    contents: &str,
    mode: u32,
    force: bool,
) -> Result<(), CertError> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::Exists(path.to_path_buf())
        } else {
            CertError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    // An overwritten key keeps 0600 even if the old file was wider.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(write_err(path))?;
    f.write_all(contents.as_bytes()).map_err(write_err(path))
}

/// Replaces `path` with `contents` (mode `mode`) in one rename: a reader
/// sees the old file or the new one, never half of one.
pub(super) fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err(path))
}

pub(super) fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the directory 0700 (its parents as the umask says) if needed.
/// A directory that holds our CA key is put back to 0700 if it was wider.
pub(super) fn ensure_dir(dir: &Path) -> Result<(), CertError> {
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_err(dir)(e)),
        }
    }
    tighten_dir(dir)
}

/// A TLS directory made by `certs init` (it holds `ca.key`) is 0700.
pub(super) fn tighten_dir(dir: &Path) -> Result<(), CertError> {
    if !dir.join("ca.key").exists() {
        return Ok(());
    }
    let meta = std::fs::metadata(dir).map_err(write_err(dir))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(write_err(dir))?;
    }
    Ok(())
}

/// Creates the directory (0700) if needed and refuses to overwrite any of
/// `paths` unless `force`.
pub(super) fn prepare(dir: &Path, paths: &[PathBuf], force: bool) -> Result<(), CertError> {
    ensure_dir(dir)?;
    if !force && let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(CertError::Exists(p.clone()));
    }
    Ok(())
}

pub(super) fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, CertError> {
    let key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    Ok(Issuer::from_ca_cert_pem(&read(&ca_cert(dir))?, key)?)
}
