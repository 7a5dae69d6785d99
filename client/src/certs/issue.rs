//! Issuing certificates: the CA with `certs init`, host and client certificates,
//! and renewals.

use std::io::Read;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::CertError;
use super::crl::{revoked_serials, write_crl};
use super::facts::{client_facts, facts};
use super::files::{ensure_dir, load_issuer, prepare, tighten_dir, write_atomic, write_file};
use super::layout::{
    DEFAULT_CLIENT, ca_cert, check_name, client_cert, client_files, crl_path, host_cert,
};
use super::role::Role;
use crate::environment::{ContainerHost, HostAddress};

/// The CA and the host certificates.
const VALIDITY_DAYS: i64 = 3650;
/// Client certificates, unless `--days` says otherwise.
pub const CLIENT_VALIDITY_DAYS: u32 = 365;
/// The common name of `client.pem` (logs and tests rely on it).
const DEFAULT_CLIENT_CN: &str = "dockstack-client";

/// 16 random bytes, positive and without a leading zero, so that each
/// certificate's serial is its own and reads back byte for byte.
pub(super) fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(CertError::Random)?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    Ok(SerialNumber::from(bytes.to_vec()))
}

pub(super) fn params(common_name: &str, days: i64) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dockstack");
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(days);
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// Writes a CA, one server certificate per host, the admin client
/// certificate `client.pem` and an empty revocation list. Returns the
/// files written.
pub fn init(dir: &Path, hosts: &[ContainerHost], force: bool) -> Result<Vec<PathBuf>, CertError> {
    let mut paths = vec![ca_cert(dir), dir.join("ca.key")];
    let (cc, ck) = client_cert(dir);
    paths.extend([cc, ck]);
    for h in hosts {
        let (c, k) = host_cert(dir, &h.name);
        paths.extend([c, k]);
    }
    paths.push(crl_path(dir));
    prepare(dir, &paths, force)?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = params("dockstack cluster CA", VALIDITY_DAYS)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    write_file(&ca_cert(dir), &ca.pem(), 0o644, force)?;
    write_file(&dir.join("ca.key"), &ca_key.serialize_pem(), 0o600, force)?;
    tighten_dir(dir)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let cert = client_pem(
        DEFAULT_CLIENT_CN,
        Role::Admin,
        CLIENT_VALIDITY_DAYS,
        &issuer,
    )?;
    let (cc, ck) = client_cert(dir);
    write_file(&cc, &cert.0, 0o644, force)?;
    write_file(&ck, &cert.1, 0o600, force)?;
    for h in hosts {
        issue_host(dir, h, &issuer, force)?;
    }
    // A new CA: whatever an old list revoked was of the old one.
    write_crl(dir, &issuer, SerialNumber::from(1u64), Vec::new())?;
    Ok(paths)
}

/// Adds a server certificate for one more host, signed by the existing CA.
pub fn add_host(dir: &Path, host: &ContainerHost, force: bool) -> Result<Vec<PathBuf>, CertError> {
    let (c, k) = host_cert(dir, &host.name);
    prepare(dir, &[c.clone(), k.clone()], force)?;
    if c.exists() && facts(&c).is_ok_and(|f| f.is_client()) {
        return Err(CertError::IsClient(c));
    }
    let issuer = load_issuer(dir)?;
    issue_host(dir, host, &issuer, force)?;
    Ok(vec![c, k])
}

pub(super) fn issue_host(
    dir: &Path,
    host: &ContainerHost,
    issuer: &Issuer<'_, KeyPair>,
    force: bool,
) -> Result<(), CertError> {
    // The servers are reached at their addresses, which their certificates
    // must name; a host known by name alone cannot have one.
    let HostAddress::Ip(ip) = host.ip else {
        return Err(CertError::BadIp {
            host: host.name.clone(),
            ip: host.ip.to_string(),
        });
    };
    let mut p = params(&host.name, VALIDITY_DAYS)?;
    p.subject_alt_names = vec![
        SanType::IpAddress(ip),
        SanType::DnsName(host.name.clone().try_into()?),
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    let (c, k) = host_cert(dir, &host.name);
    write_file(&c, &cert.pem(), 0o644, force)?;
    write_file(&k, &key.serialize_pem(), 0o600, force)
}

/// A client certificate and its key, as PEM: CN `common_name`,
/// O=dockstack, ClientAuth, the role's URI SAN, `days` long.
pub(super) fn client_pem(
    common_name: &str,
    role: Role,
    days: u32,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), CertError> {
    let mut p = params(common_name, i64::from(days))?;
    p.subject_alt_names = vec![SanType::URI(role.uri().try_into()?)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `<name>.pem` (0644) and `<name>.key` (0600): a client
/// certificate with CN `name` and `role`, signed by the existing CA.
pub fn add_client(
    dir: &Path,
    name: &str,
    role: Role,
    days: u32,
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    check_name(name)?;
    let (c, k) = client_files(dir, name);
    prepare(dir, &[c.clone(), k.clone()], force)?;
    // --force replaces a client certificate, never a host's or the CA.
    if c.exists() {
        let f = facts(&c)?;
        if !f.is_client() {
            return Err(CertError::NotClient {
                path: c,
                what: f.kind(),
            });
        }
    }
    let issuer = load_issuer(dir)?;
    let cn = if name == DEFAULT_CLIENT {
        DEFAULT_CLIENT_CN
    } else {
        name
    };
    let (cert, key) = client_pem(cn, role, days, &issuer)?;
    write_file(&c, &cert, 0o644, force)?;
    write_file(&k, &key, 0o600, force)?;
    Ok(vec![c, k])
}

/// What `renew` did.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub files: Vec<PathBuf>,
    pub role: Role,
    pub expires: OffsetDateTime,
}

/// A new key and certificate for client `name`, with the same common name
/// and role as the old one (or `role`, if given), `days` long. Each file is
/// replaced in one rename. A revoked certificate is not renewed.
pub fn renew(dir: &Path, name: &str, days: u32, role: Option<Role>) -> Result<Renewal, CertError> {
    check_name(name)?;
    let (c, k) = client_files(dir, name);
    let old = client_facts(dir, name)?;
    let role = match (role, old.role.as_deref()) {
        (Some(r), _) => r,
        (None, None) => return Err(CertError::NoRole(c)),
        (None, Some(r)) => r.parse::<Role>().map_err(|_| CertError::UnknownRole {
            path: c.clone(),
            role: r.to_string(),
        })?,
    };
    if revoked_serials(dir)?.contains(&old.serial) {
        return Err(CertError::RenewRevoked {
            name: name.to_string(),
        });
    }
    ensure_dir(dir)?;
    let issuer = load_issuer(dir)?;
    let cn = old.common_name.clone().unwrap_or_else(|| name.to_string());
    let (cert, key) = client_pem(&cn, role, days, &issuer)?;
    // The key first: until the certificate follows, the old pair is
    // broken, but never a new certificate with an old key.
    write_atomic(&k, &key, 0o600)?;
    write_atomic(&c, &cert, 0o644)?;
    let expires = facts(&c)?.not_after;
    Ok(Renewal {
        files: vec![c, k],
        role,
        expires,
    })
}
