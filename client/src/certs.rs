//! The cluster's certificates: one CA, a server certificate per container
//! host (its IP and name as SANs), client certificates that each carry a
//! role, and the list of revoked ones (`crl.pem`).
//!
//! A role rides in a client certificate as the URI SAN
//! `dockstack:role:<role>` ([`ROLE_URI_PREFIX`]); the servers read it from
//! there. `certs init` makes the CA, the host certificates and the admin
//! client certificate `client.pem`; `certs add-client` makes more, named
//! `<name>.pem` / `<name>.key`, and `--as <name>` picks which one the
//! client presents.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::environment::ContainerHost;

pub const DEFAULT_TLS_DIR: &str = "/etc/dockstack/tls";
/// The CA and the host certificates.
const VALIDITY_DAYS: i64 = 3650;
/// Client certificates, unless `--days` says otherwise.
pub const CLIENT_VALIDITY_DAYS: u32 = 365;
/// How far ahead a CRL's `nextUpdate` is put.
const CRL_VALIDITY_DAYS: i64 = 365;
/// The URI SAN prefix that carries a client certificate's role.
pub const ROLE_URI_PREFIX: &str = "dockstack:role:";
/// The client certificate `certs init` makes, and `--as`'s default.
pub const DEFAULT_CLIENT: &str = "client";
/// The common name of `client.pem` (logs and tests rely on it).
const DEFAULT_CLIENT_CN: &str = "dockstack-client";
/// The revocation list, next to the CA.
pub const CRL_FILE: &str = "crl.pem";
/// The longest client name: a common name has at most 64 characters.
const MAX_NAME_LEN: usize = 64;

/// What a client certificate lets its holder do; the servers decide what
/// each role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Everything.
    Admin,
    /// Run, start, stop, destroy and register containers.
    Operator,
    /// Show, list and status only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// The URI SAN that carries it: `dockstack:role:<role>`.
    pub fn uri(self) -> String {
        format!("{ROLE_URI_PREFIX}{}", self.as_str())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{} already exists; use --force to overwrite", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source} (run `dockstack certs init` first)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no client certificate {} (make it with `dockstack certs add-client {name} --role admin|operator|viewer`)", .path.display())]
    NoClient { name: String, path: PathBuf },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("host {host}: {ip:?} is not an IP address")]
    BadIp { host: String, ip: String },
    #[error("bad certificate name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("{} is {what}, not a client certificate", .path.display())]
    NotClient { path: PathBuf, what: &'static str },
    #[error("{} is a client certificate; a host certificate cannot replace it (pick another host name, or remove it first)", .0.display())]
    IsClient(PathBuf),
    #[error("{} carries no role (made before roles?): pass --role admin|operator|viewer", .0.display())]
    NoRole(PathBuf),
    #[error("{} carries the role {role:?}, which this client does not know: pass --role admin|operator|viewer", .path.display())]
    UnknownRole { path: PathBuf, role: String },
    #[error(
        "{name} is revoked; renewing it would give its access back: if that is meant, issue it anew with `dockstack certs add-client {name} --role ROLE --force`"
    )]
    RenewRevoked { name: String },
    #[error("{} was not issued by the CA of {}: remove it (its entries are of another CA) and revoke again", .crl.display(), .ca.display())]
    ForeignCrl { crl: PathBuf, ca: PathBuf },
    #[error("cannot read random bytes: {0}")]
    Random(#[source] std::io::Error),
}

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

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, contents: &str, mode: u32, force: bool) -> Result<(), CertError> {
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
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
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

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// 16 random bytes, positive and without a leading zero, so that each
/// certificate's serial is its own and reads back byte for byte.
fn random_serial() -> Result<SerialNumber, CertError> {
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

fn params(common_name: &str, days: i64) -> Result<CertificateParams, CertError> {
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

/// Creates the directory 0700 (its parents as the umask says) if needed.
/// A directory that holds our CA key is put back to 0700 if it was wider.
fn ensure_dir(dir: &Path) -> Result<(), CertError> {
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
fn tighten_dir(dir: &Path) -> Result<(), CertError> {
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
fn prepare(dir: &Path, paths: &[PathBuf], force: bool) -> Result<(), CertError> {
    ensure_dir(dir)?;
    if !force && let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(CertError::Exists(p.clone()));
    }
    Ok(())
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

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, CertError> {
    let key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    Ok(Issuer::from_ca_cert_pem(&read(&ca_cert(dir))?, key)?)
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

fn issue_host(
    dir: &Path,
    host: &ContainerHost,
    issuer: &Issuer<'_, KeyPair>,
    force: bool,
) -> Result<(), CertError> {
    let ip = host.ip.parse().map_err(|_| CertError::BadIp {
        host: host.name.clone(),
        ip: host.ip.clone(),
    })?;
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
fn client_pem(
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
        (None, Some(r)) => Role::parse(r).ok_or_else(|| CertError::UnknownRole {
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

fn write_crl(
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
struct Crl {
    next_number: SerialNumber,
    entries: Vec<RevokedCertParams>,
}

fn read_crl(dir: &Path) -> Result<Option<Crl>, CertError> {
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

fn reason(code: u8) -> Option<RevocationReason> {
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
fn revoked_serials(dir: &Path) -> Result<BTreeSet<Vec<u8>>, CertError> {
    Ok(read_crl(dir)?
        .map(|crl| {
            crl.entries
                .iter()
                .map(|e| strip_zeros(e.serial_number.as_ref()).to_vec())
                .collect()
        })
        .unwrap_or_default())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn hex_serial(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What a certificate file says of itself.
#[derive(Debug, Clone)]
struct Facts {
    common_name: Option<String>,
    /// The value of the first `dockstack:role:` URI SAN.
    role: Option<String>,
    client_auth: bool,
    server_auth: bool,
    is_ca: bool,
    not_after: OffsetDateTime,
    /// Big-endian, without leading zeros.
    serial: Vec<u8>,
}

impl Facts {
    fn is_client(&self) -> bool {
        !self.is_ca && (self.client_auth || self.role.is_some())
    }

    fn kind(&self) -> &'static str {
        if self.is_ca {
            "a CA certificate"
        } else if self.server_auth {
            "a server (host) certificate"
        } else {
            "a certificate of another kind"
        }
    }
}

fn facts(path: &Path) -> Result<Facts, CertError> {
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
fn client_facts(dir: &Path, name: &str) -> Result<Facts, CertError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<ContainerHost> {
        vec![ContainerHost {
            name: "host1".into(),
            ip: "10.231.9.2".into(),
            port: 3288,
        }]
    }

    /// A fresh directory of its own per test (they run in parallel).
    fn temp_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dockstack-certs-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn initialized(test: &str) -> PathBuf {
        let dir = temp_dir(test);
        init(&dir, &hosts(), false).unwrap();
        dir
    }

    /// The serials a CRL file lists, straight from the file.
    fn crl_serials(dir: &Path) -> Vec<Vec<u8>> {
        let pem = std::fs::read(crl_path(dir)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        assert_eq!(pem.label, "X509 CRL");
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| strip_zeros(r.raw_serial()).to_vec())
            .collect()
    }

    fn crl_number(dir: &Path) -> u64 {
        let pem = std::fs::read(crl_path(dir)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
        crl.crl_number().unwrap().to_u64_digits()[0]
    }

    #[test]
    fn init_writes_private_keys_0600_and_refuses_to_overwrite() {
        let dir = temp_dir("init");
        let files = init(&dir, &hosts(), false).unwrap();
        assert_eq!(files.len(), 7);
        assert!(files.contains(&crl_path(&dir)));
        for f in &files {
            if f.extension().unwrap() == "key" {
                assert_eq!(mode(f), 0o600, "{}", f.display());
            } else {
                assert_eq!(mode(f), 0o644, "{}", f.display());
            }
        }
        assert_eq!(mode(&dir), 0o700);
        let before = std::fs::read(dir.join("ca.pem")).unwrap();
        let err = init(&dir, &hosts(), false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
        // A directory made wider is made 0700 again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        init(&dir, &hosts(), true).unwrap();
        assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
        assert_eq!(mode(&dir), 0o700);
        let extra = ContainerHost {
            name: "host9".into(),
            ip: "10.231.9.6".into(),
            port: 3288,
        };
        add_host(&dir, &extra, false).unwrap();
        assert!(dir.join("host9.pem").exists());
        assert!(matches!(
            add_host(&dir, &extra, false),
            Err(CertError::Exists(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn init_makes_an_admin_client_a_year_long_and_an_empty_list() {
        let dir = initialized("init-client");
        let f = facts(&dir.join("client.pem")).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("dockstack-client"));
        assert_eq!(f.role.as_deref(), Some("admin"));
        assert!(f.client_auth && !f.server_auth && !f.is_ca);
        let days = (f.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((364..=365).contains(&days), "{days}");
        // The CA and the hosts keep their ten years.
        let ca = facts(&dir.join("ca.pem")).unwrap();
        assert!(ca.is_ca);
        assert!((ca.not_after - OffsetDateTime::now_utc()).whole_days() >= 3649);
        let host = facts(&dir.join("host1.pem")).unwrap();
        assert!(host.server_auth && !host.is_client());
        assert!((host.not_after - OffsetDateTime::now_utc()).whole_days() >= 3649);
        // Every serial is its own.
        let serials: BTreeSet<_> = [ca.serial, f.serial, host.serial].into();
        assert_eq!(serials.len(), 3);
        assert!(crl_serials(&dir).is_empty());
        assert_eq!(crl_number(&dir), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn add_client_writes_a_certificate_with_its_role() {
        let dir = initialized("add-client");
        let files = add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
        let (c, k) = client_files(&dir, "alice");
        assert_eq!(files, vec![c.clone(), k.clone()]);
        assert_eq!(mode(&c), 0o644);
        assert_eq!(mode(&k), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let f = facts(&c).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("alice"));
        assert_eq!(f.role.as_deref(), Some("operator"));
        assert!(f.client_auth && !f.server_auth);
        let days = (f.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((29..=30).contains(&days), "{days}");
        // The SAN is exactly the URI the servers look for.
        let pem = std::fs::read(&c).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::URI("dockstack:role:operator")]
        );
        let o = cert.subject().iter_organization().next().unwrap();
        assert_eq!(o.as_str().unwrap(), "dockstack");
        // Signed by the CA: the key checks out against the certificate.
        assert!(KeyPair::from_pem(&std::fs::read_to_string(&k).unwrap()).is_ok());

        let before = std::fs::read(&c).unwrap();
        assert!(matches!(
            add_client(&dir, "alice", Role::Viewer, 30, false),
            Err(CertError::Exists(_))
        ));
        assert_eq!(std::fs::read(&c).unwrap(), before);
        // A wider key file is put back to 0600 when replaced.
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        add_client(&dir, "alice", Role::Viewer, 30, true).unwrap();
        assert_eq!(facts(&c).unwrap().role.as_deref(), Some("viewer"));
        assert_eq!(mode(&k), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = initialized("bad-names");
        for name in [
            "",
            ".hidden",
            "../etc",
            "a/b",
            "ca",
            "crl",
            "white space",
            "é",
            "x\0",
        ] {
            let err = add_client(&dir, name, Role::Viewer, 1, true).unwrap_err();
            assert!(matches!(err, CertError::BadName { .. }), "{name:?}: {err}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
        for name in ["alice", "ci-bot_2", "team.ops", "A1", "client"] {
            check_name(name).unwrap();
        }
        // --force replaces clients, never a host's certificate or the CA.
        let before = std::fs::read(dir.join("host1.pem")).unwrap();
        let err = add_client(&dir, "host1", Role::Admin, 1, true).unwrap_err();
        assert!(matches!(err, CertError::NotClient { .. }), "{err}");
        assert!(err.to_string().contains("host"), "{err}");
        assert_eq!(std::fs::read(dir.join("host1.pem")).unwrap(), before);
        // ... and a host certificate does not replace a client's.
        add_client(&dir, "host7", Role::Viewer, 1, false).unwrap();
        let h7 = ContainerHost {
            name: "host7".into(),
            ip: "10.231.9.7".into(),
            port: 3288,
        };
        let err = add_host(&dir, &h7, true).unwrap_err();
        assert!(matches!(err, CertError::IsClient(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn revoking_twice_keeps_both_serials() {
        let dir = initialized("revoke");
        add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
        add_client(&dir, "bob", Role::Viewer, 30, false).unwrap();
        let alice = facts(&dir.join("alice.pem")).unwrap().serial;
        let bob = facts(&dir.join("bob.pem")).unwrap().serial;
        assert_ne!(alice, bob);

        let r = revoke(&dir, "alice").unwrap();
        assert!(!r.already);
        assert_eq!(r.count, 1);
        assert_eq!(r.crl, crl_path(&dir));
        assert_eq!(r.serial, hex_serial(&alice));
        assert_eq!(crl_serials(&dir), vec![alice.clone()]);
        assert_eq!(crl_number(&dir), 2);
        assert_eq!(mode(&crl_path(&dir)), 0o644);

        let r = revoke(&dir, "bob").unwrap();
        assert_eq!(r.count, 2);
        assert_eq!(crl_serials(&dir), vec![alice.clone(), bob.clone()]);
        assert_eq!(crl_number(&dir), 3);

        // Again: no second entry, but a list signed anew.
        let r = revoke(&dir, "alice").unwrap();
        assert!(r.already);
        assert_eq!(crl_serials(&dir), vec![alice.clone(), bob.clone()]);
        assert_eq!(crl_number(&dir), 4);

        // Re-issuing alice gives a new serial, not revoked; the old one stays.
        add_client(&dir, "alice", Role::Operator, 30, true).unwrap();
        let alice2 = facts(&dir.join("alice.pem")).unwrap().serial;
        assert_ne!(alice2, alice);
        revoke(&dir, "alice").unwrap();
        assert_eq!(crl_serials(&dir), vec![alice, bob, alice2]);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // Only client certificates are revoked.
        let err = revoke(&dir, "host1").unwrap_err();
        assert!(matches!(err, CertError::NotClient { .. }), "{err}");
        let err = revoke(&dir, "nobody").unwrap_err();
        assert!(err.to_string().contains("certs add-client nobody"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_list_of_another_ca_is_not_extended() {
        let dir = initialized("foreign-crl");
        let other = initialized("foreign-crl-other");
        std::fs::copy(crl_path(&other), crl_path(&dir)).unwrap();
        add_client(&dir, "alice", Role::Viewer, 1, false).unwrap();
        let err = revoke(&dir, "alice").unwrap_err();
        assert!(matches!(err, CertError::ForeignCrl { .. }), "{err}");
        std::fs::write(crl_path(&dir), "garbage").unwrap();
        assert!(matches!(
            revoke(&dir, "alice"),
            Err(CertError::Parse { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }

    #[test]
    fn renew_keeps_the_role_and_the_name() {
        let dir = initialized("renew");
        add_client(&dir, "ci", Role::Viewer, 10, false).unwrap();
        let (c, k) = client_files(&dir, "ci");
        let old = facts(&c).unwrap();
        let old_key = std::fs::read(&k).unwrap();
        let r = renew(&dir, "ci", 200, None).unwrap();
        assert_eq!(r.role, Role::Viewer);
        let new = facts(&c).unwrap();
        assert_eq!(new.role.as_deref(), Some("viewer"));
        assert_eq!(new.common_name.as_deref(), Some("ci"));
        assert_ne!(new.serial, old.serial);
        assert_ne!(std::fs::read(&k).unwrap(), old_key);
        let days = (new.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((199..=200).contains(&days), "{days}");
        assert_eq!(mode(&c), 0o644);
        assert_eq!(mode(&k), 0o600);

        // The init one keeps its common name and admin role.
        renew(&dir, "client", CLIENT_VALIDITY_DAYS, None).unwrap();
        let f = facts(&dir.join("client.pem")).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("dockstack-client"));
        assert_eq!(f.role.as_deref(), Some("admin"));

        // A role can be changed on the way; a revoked one is not renewed.
        renew(&dir, "ci", 10, Some(Role::Operator)).unwrap();
        assert_eq!(facts(&c).unwrap().role.as_deref(), Some("operator"));
        revoke(&dir, "ci").unwrap();
        let err = renew(&dir, "ci", 10, None).unwrap_err();
        assert!(matches!(err, CertError::RenewRevoked { .. }), "{err}");
        assert!(matches!(
            renew(&dir, "host1", 10, None),
            Err(CertError::NotClient { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_client_without_a_role_needs_one_to_renew() {
        let dir = initialized("renew-no-role");
        // A client certificate as `certs init` made them before roles.
        let issuer = load_issuer(&dir).unwrap();
        let mut p = params("dockstack-client", 30).unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join("old.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("old.key"), key.serialize_pem()).unwrap();
        let listed = list(&dir).unwrap();
        let old = listed.iter().find(|c| c.name == "old").unwrap();
        assert_eq!(old.role, None);
        let err = renew(&dir, "old", 30, None).unwrap_err();
        assert!(matches!(err, CertError::NoRole(_)), "{err}");
        renew(&dir, "old", 30, Some(Role::Admin)).unwrap();
        assert_eq!(
            facts(&dir.join("old.pem")).unwrap().role.as_deref(),
            Some("admin")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn list_shows_role_expiry_and_revocation() {
        let dir = initialized("list");
        add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
        add_client(&dir, "bob-the-long-named", Role::Viewer, 365, false).unwrap();
        revoke(&dir, "alice").unwrap();
        std::fs::write(dir.join("notes.pem"), "not a certificate").unwrap();
        let certs = list(&dir).unwrap();
        let names: Vec<_> = certs.iter().map(|c| c.name.as_str()).collect();
        // Not ca, not crl, not host1, not what is no certificate.
        assert_eq!(names, ["alice", "bob-the-long-named", "client"]);
        let now = OffsetDateTime::now_utc();
        assert_eq!(certs[0].role.as_deref(), Some("operator"));
        assert!(certs[0].revoked);
        assert_eq!(date(certs[0].expires), date(now + Duration::days(30)));
        assert_eq!(certs[1].role.as_deref(), Some("viewer"));
        assert!(!certs[1].revoked);
        assert_eq!(certs[2].role.as_deref(), Some("admin"));

        let table = format_list(&certs, now);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let exp = date(now + Duration::days(30));
        assert_eq!(
            lines[0], "NAME                ROLE      EXPIRES     REVOKED",
            "{table}"
        );
        assert_eq!(
            lines[1],
            format!("alice               operator  {exp}  yes"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("client              admin     "),
            "{table}"
        );
        assert!(lines[3].ends_with("  no"), "{table}");
        // Every column starts where its header does.
        for l in &lines[1..] {
            assert_eq!(&l[18..20], "  ", "{table}");
            assert_ne!(&l[20..21], " ", "{table}");
        }
        let expired = ClientCert {
            name: "old".into(),
            role: None,
            expires: now - Duration::days(2),
            revoked: false,
        };
        let table = format_list(&[expired], now);
        assert!(table.contains("old   none  "), "{table}");
        assert!(table.contains("(expired)"), "{table}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
