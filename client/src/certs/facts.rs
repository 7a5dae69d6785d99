//! What a certificate file says of itself: its name, role, use, expiry and serial.

use std::path::Path;

use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use super::CertError;
use super::layout::client_files;
use super::role::ROLE_URI_PREFIX;

pub(super) fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

pub(super) fn hex_serial(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What a certificate file says of itself.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub(super) common_name: Option<String>,
    /// The value of the first `dockstack:role:` URI SAN.
    pub(super) role: Option<String>,
    pub(super) client_auth: bool,
    pub(super) server_auth: bool,
    pub(super) is_ca: bool,
    pub(super) not_after: OffsetDateTime,
    /// Big-endian, without leading zeros.
    pub(super) serial: Vec<u8>,
}

impl Facts {
    pub(super) fn is_client(&self) -> bool {
        !self.is_ca && (self.client_auth || self.role.is_some())
    }

    pub(super) fn kind(&self) -> &'static str {
        if self.is_ca {
            "a CA certificate"
        } else if self.server_auth {
            "a server (host) certificate"
        } else {
            "a certificate of another kind"
        }
    }
}

pub(super) fn facts(path: &Path) -> Result<Facts, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| CertError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| bad(e.to_string()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad(format!("not a certificate: {e}")))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let role = cert
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) => u.strip_prefix(ROLE_URI_PREFIX).map(str::to_string),
                _ => None,
            })
        });
    let eku = cert.extended_key_usage().map_err(|e| bad(e.to_string()))?;
    Ok(Facts {
        common_name,
        role,
        client_auth: eku.as_ref().is_some_and(|e| e.value.client_auth),
        server_auth: eku.as_ref().is_some_and(|e| e.value.server_auth),
        is_ca: cert.is_ca(),
        not_after: cert.validity().not_after.to_datetime(),
        serial: strip_zeros(cert.raw_serial()).to_vec(),
    })
}

/// The facts of `<name>.pem`, which must be a client certificate.
pub(super) fn client_facts(dir: &Path, name: &str) -> Result<Facts, CertError> {
    let (c, _) = client_files(dir, name);
    if !c.exists() {
        return Err(CertError::NoClient {
            name: name.to_string(),
            path: c,
        });
    }
    let f = facts(&c)?;
    if !f.is_client() {
        return Err(CertError::NotClient {
            path: c,
            what: f.kind(),
        });
    }
    Ok(f)
}
