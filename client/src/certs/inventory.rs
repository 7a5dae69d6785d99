//! Listing the client certificates of the TLS directory, and `certs list`'s table.

use std::path::Path;

use time::OffsetDateTime;

use super::CertError;
use super::crl::revoked_serials;
use super::facts::facts;
use super::layout::check_name;

/// One line of `certs list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub name: String,
    /// The role its SAN carries, as written there; `None` without one.
    pub role: Option<String>,
    pub expires: OffsetDateTime,
    pub revoked: bool,
}

/// The client certificates of the TLS directory (`*.pem` with ClientAuth
/// or a role; not the CA, the list or host certificates), by name.
pub fn list(dir: &Path) -> Result<Vec<ClientCert>, CertError> {
    let revoked = revoked_serials(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|source| CertError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CertError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pem"))
        else {
            continue;
        };
        if check_name(name).is_err() {
            continue;
        }
        // Not a certificate (or not ours to judge): not a client either.
        let Ok(f) = facts(&path) else { continue };
        if !f.is_client() {
            continue;
        }
        out.push(ClientCert {
            name: name.to_string(),
            role: f.role.clone(),
            expires: f.not_after,
            revoked: revoked.contains(&f.serial),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `YYYY-MM-DD`.
pub fn date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The table `certs list` prints: NAME, ROLE, EXPIRES, REVOKED, aligned.
pub fn format_list(certs: &[ClientCert], now: OffsetDateTime) -> String {
    let rows: Vec<[String; 4]> = certs
        .iter()
        .map(|c| {
            let mut expires = date(c.expires);
            if c.expires < now {
                expires.push_str(" (expired)");
            }
            [
                c.name.clone(),
                c.role.clone().unwrap_or_else(|| "none".into()),
                expires,
                if c.revoked { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let header = ["NAME", "ROLE", "EXPIRES", "REVOKED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
