//! Where each file of the TLS directory is, and which client names are allowed.

use std::path::{Path, PathBuf};

use super::CertError;

/// The client certificate `certs init` makes, and `--as`'s default.
pub const DEFAULT_CLIENT: &str = "client";
/// The revocation list, next to the CA.
pub const CRL_FILE: &str = "crl.pem";
/// The longest client name: a common name has at most 64 characters.
pub(super) const MAX_NAME_LEN: usize = 64;

/// Paths of the files one party needs.
pub fn ca_cert(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}
/// `client.pem` and `client.key`: the certificate `certs init` makes.
pub fn client_cert(dir: &Path) -> (PathBuf, PathBuf) {
    client_files(dir, DEFAULT_CLIENT)
}
/// `<name>.pem` and `<name>.key`: the client certificate `--as <name>` uses.
pub fn client_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}
pub fn host_cert(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{host}.pem")),
        dir.join(format!("{host}.key")),
    )
}
/// The revocation list every server checks client certificates against.
pub fn crl_path(dir: &Path) -> PathBuf {
    dir.join(CRL_FILE)
}

/// A client certificate's name must be a plain file name of its own:
/// letters, digits, `_`, `.` and `-`, not starting with `.`, and not one of
/// the directory's other files (`ca`, `crl`).
pub fn check_name(name: &str) -> Result<(), CertError> {
    let bad = |reason: &str| {
        Err(CertError::BadName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!("longer than {MAX_NAME_LEN} characters"));
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return bad(&format!(
            "{c:?} is not allowed (only letters, digits, '_', '.' and '-')"
        ));
    }
    if name == "ca" || name == "crl" {
        return bad(&format!("{name}.pem is the cluster's own file"));
    }
    Ok(())
}
