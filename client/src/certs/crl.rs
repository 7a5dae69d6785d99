//! The revocation list `crl.pem`: revoking a client certificate, and reading the
//! list back (checked against the CA).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::CertError;
use super::facts::{client_facts, hex_serial, strip_zeros};
use super::files::{load_issuer, write_atomic};
use super::layout::{ca_cert, check_name, crl_path};

/// How far ahead a CRL's `nextUpdate` is put.
const CRL_VALIDITY_DAYS: i64 = 365;

/// What `revoke` did.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub crl: PathBuf,
    /// The revoked serial, as colon-separated hex.
    pub serial: String,
    /// It was revoked before (the list was signed again all the same).
    pub already: bool,
    /// How many certificates the list revokes now.
    pub count: usize,
}

/// Adds the serial of `<name>.pem` to `crl.pem`, keeping the entries it
/// had, and signs the list again with a CRL number one higher.
pub fn revoke(dir: &Path, name: &str) -> Result<Revocation, CertError> {
    check_name(name)?;
    let f = client_facts(dir, name)?;
    let issuer = load_issuer(dir)?;
    let (number, mut entries) = match read_crl(dir)? {
        Some(crl) => (crl.next_number, crl.entries),
        None => (SerialNumber::from(1u64), Vec::new()),
    };
    let already = entries
        .iter()
        .any(|e| strip_zeros(e.serial_number.as_ref()) == f.serial.as_slice());
    if !already {
        entries.push(RevokedCertParams {
            serial_number: SerialNumber::from(f.serial.clone()),
            revocation_time: OffsetDateTime::now_utc(),
            reason_code: None,
            invalidity_date: None,
        });
    }
    let count = entries.len();
    write_crl(dir, &issuer, number, entries)?;
    Ok(Revocation {
        crl: crl_path(dir),
        serial: hex_serial(&f.serial),
        already,
        count,
    })
}

pub(super) fn write_crl(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    number: SerialNumber,
    revoked_certs: Vec<RevokedCertParams>,
) -> Result<(), CertError> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(CRL_VALIDITY_DAYS),
        crl_number: number,
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer)?;
    write_atomic(&crl_path(dir), &crl.pem()?, 0o644)
}

/// The entries of `crl.pem` and the number the next list must have.
pub(super) struct Crl {
    next_number: SerialNumber,
    entries: Vec<RevokedCertParams>,
}

pub(super) fn read_crl(dir: &Path) -> Result<Option<Crl>, CertError> {
    let path = crl_path(dir);
    let pem = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CertError::Read { path, source }),
    };
    let bad = |message: String| CertError::Parse {
        path: path.clone(),
        message,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| bad(e.to_string()))?;
    let (_, crl) =
        x509_parser::parse_x509_crl(&pem.contents).map_err(|e| bad(format!("not a CRL: {e}")))?;
    let ca_path = ca_cert(dir);
    let ca_pem = std::fs::read(&ca_path).map_err(|source| CertError::Read {
        path: ca_path.clone(),
        source,
    })?;
    let ca_bad = |message: String| CertError::Parse {
        path: ca_path.clone(),
        message,
    };
    let (_, ca_pem) =
        x509_parser::pem::parse_x509_pem(&ca_pem).map_err(|e| ca_bad(e.to_string()))?;
    let ca = ca_pem.parse_x509().map_err(|e| ca_bad(e.to_string()))?;
    // Every CA `certs init` makes has the same name: the signature tells.
    if crl.issuer().as_raw() != ca.subject().as_raw()
        || crl.verify_signature(ca.public_key()).is_err()
    {
        return Err(CertError::ForeignCrl {
            crl: path,
            ca: ca_path,
        });
    }
    let next = crl
        .crl_number()
        .map(|n| n.clone() + 1u32)
        .unwrap_or_else(|| 1u32.into());
    let entries = crl
        .iter_revoked_certificates()
        .map(|r| RevokedCertParams {
            serial_number: SerialNumber::from(strip_zeros(r.raw_serial()).to_vec()),
            revocation_time: r.revocation_date.to_datetime(),
            reason_code: r.reason_code().and_then(|(_, c)| reason(c.0)),
            invalidity_date: r.invalidity_date().map(|(_, d)| d.to_datetime()),
        })
        .collect();
    Ok(Some(Crl {
        next_number: SerialNumber::from(next.to_bytes_be()),
        entries,
    }))
}

pub(super) fn reason(code: u8) -> Option<RevocationReason> {
    use RevocationReason::*;
    Some(match code {
        0 => Unspecified,
        1 => KeyCompromise,
        2 => CaCompromise,
        3 => AffiliationChanged,
        4 => Superseded,
        5 => CessationOfOperation,
        6 => CertificateHold,
        8 => RemoveFromCrl,
        9 => PrivilegeWithdrawn,
        10 => AaCompromise,
        _ => return None,
    })
}

/// The serials `crl.pem` revokes (none if there is no list).
pub(super) fn revoked_serials(dir: &Path) -> Result<BTreeSet<Vec<u8>>, CertError> {
    Ok(read_crl(dir)?
        .map(|crl| {
            crl.entries
                .iter()
                .map(|e| strip_zeros(e.serial_number.as_ref()).to_vec())
                .collect()
        })
        .unwrap_or_default())
}
