//! The per-host key that environment values are hashed with before they
//! reach a label: labels are read by anyone with `docker inspect`, Docker's
//! events or monitoring, and a plain hash of a weak secret lets them test
//! guesses. An HMAC under a key only this host's root can read does not.
//!
//! The key is 32 random bytes in `<state_dir>/env-key` (0600), made the
//! first time a server starts. It is not derived from the host's TLS key:
//! renewing that certificate would change every recorded hash (and so show
//! every container with env as changed), and `--insecure` has no key.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The file of the key, in the state directory.
pub const FILE: &str = "env-key";
const LEN: usize = 32;
/// What a hashed value starts with in a label, telling it from a value an
/// earlier dockstack recorded in clear.
pub const PREFIX: &str = "hmac-sha256:";

#[derive(Debug, thiserror::Error)]
pub enum EnvKeyError {
    #[error("env key {}: {message}", .path.display())]
    Io { path: PathBuf, message: String },
}

/// The key; cheap to clone.
#[derive(Clone)]
pub struct EnvKey(Arc<[u8; LEN]>);

impl std::fmt::Debug for EnvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvKey(..)")
    }
}

impl EnvKey {
    pub fn from_bytes(bytes: [u8; LEN]) -> Self {
        EnvKey(Arc::new(bytes))
    }

    /// The key of `state_dir`, made (from the kernel's random source) when
    /// there is none yet.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, EnvKeyError> {
        let path = state_dir.join(FILE);
        let err = |message: String| EnvKeyError::Io {
            path: path.clone(),
            message,
        };
        match fs::read(&path) {
            Ok(bytes) => return Self::checked(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        fs::create_dir_all(state_dir).map_err(|e| err(e.to_string()))?;
        let mut bytes = [0u8; LEN];
        fs::File::open("/dev/urandom")
            .and_then(|mut r| r.read_exact(&mut bytes))
            .map_err(|e| err(format!("no random bytes: {e}")))?;
        // Written whole under another name, then linked into place: a
        // crash never leaves a short key, and of two servers starting at
        // once the second reads the first's.
        let tmp = state_dir.join(format!("{FILE}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        let written = write().and_then(|()| fs::hard_link(&tmp, &path));
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(Self::from_bytes(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = fs::read(&path).map_err(|e| err(e.to_string()))?;
                Self::checked(&path, &bytes)
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    fn checked(path: &Path, bytes: &[u8]) -> Result<Self, EnvKeyError> {
        let err = |message: String| EnvKeyError::Io {
            path: path.to_path_buf(),
            message,
        };
        let key: [u8; LEN] = bytes.try_into().map_err(|_| {
            err(format!(
                "{} bytes, not {LEN} (remove it to make a new key: every container with env then shows its env as changed)",
                bytes.len()
            ))
        })?;
        let mode = fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| err(format!("readable by others and cannot be made 0600: {e}")))?;
            tracing::warn!(path = %path.display(), "env key was readable by others: made 0600");
        }
        Ok(Self::from_bytes(key))
    }

    /// HMAC-SHA256 (RFC 2104) of `value`, its first 16 bytes in hex after
    /// [`PREFIX`].
    pub fn digest(&self, value: &str) -> String {
        const BLOCK: usize = 64;
        let mut ipad = [0x36u8; BLOCK];
        let mut opad = [0x5cu8; BLOCK];
        for (i, b) in self.0.iter().enumerate() {
            ipad[i] ^= b;
            opad[i] ^= b;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(value.as_bytes())
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        let hex: String = outer[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2's data under a 32-byte key of "Jefe" padded
        // with zeros: HMAC pads a short key with zeros, so it is the same.
        let mut key = [0u8; LEN];
        key[..4].copy_from_slice(b"Jefe");
        let d = EnvKey::from_bytes(key).digest("what do ya want for nothing?");
        assert_eq!(d, format!("{PREFIX}5bdcc146bf60754e6a042426089575c7"));
    }

    #[test]
    fn a_key_is_made_once_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("envkey-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = EnvKey::load_or_create(&dir).unwrap();
        let mode = fs::metadata(dir.join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = EnvKey::load_or_create(&dir).unwrap();
        assert_eq!(a.digest("x"), b.digest("x"));
        assert_ne!(a.digest("x"), a.digest("y"));
        fs::write(dir.join(FILE), b"short").unwrap();
        let e = EnvKey::load_or_create(&dir).unwrap_err().to_string();
        assert!(e.contains("5 bytes"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
