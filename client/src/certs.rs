//! The cluster's certificates: one CA, a server certificate per container
//! host (its IP and name as SANs) and a client certificate, all made by
//! `dockstack certs init`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::environment::ContainerHost;

pub const DEFAULT_TLS_DIR: &str = "/etc/dockstack/tls";
const VALIDITY_DAYS: i64 = 3650;

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
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("host {host}: {ip:?} is not an IP address")]
    BadIp { host: String, ip: String },
}

/// Paths of the files one party needs.
pub fn ca_cert(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}
pub fn client_cert(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("client.pem"), dir.join("client.key"))
}
pub fn host_cert(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{host}.pem")),
        dir.join(format!("{host}.key")),
    )
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
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(
        |source| CertError::Write {
            path: path.to_path_buf(),
            source,
        },
    )?;
    f.write_all(contents.as_bytes())
        .map_err(|source| CertError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn params(common_name: &str) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dockstack");
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(VALIDITY_DAYS);
    Ok(p)
}

/// Creates the directory (0700) if needed and refuses to overwrite any of
/// `paths` unless `force`.
fn prepare(dir: &Path, paths: &[PathBuf], force: bool) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    if !force && let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(CertError::Exists(p.clone()));
    }
    Ok(())
}

/// Writes a CA, one server certificate per host and a client certificate.
/// Returns the files written.
pub fn init(dir: &Path, hosts: &[ContainerHost], force: bool) -> Result<Vec<PathBuf>, CertError> {
    let mut paths = vec![ca_cert(dir), dir.join("ca.key")];
    let (cc, ck) = client_cert(dir);
    paths.extend([cc.clone(), ck.clone()]);
    for h in hosts {
        let (c, k) = host_cert(dir, &h.name);
        paths.extend([c, k]);
    }
    prepare(dir, &paths, force)?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = params("dockstack cluster CA")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    write_file(&ca_cert(dir), &ca.pem(), 0o644, force)?;
    write_file(&dir.join("ca.key"), &ca_key.serialize_pem(), 0o600, force)?;
    let issuer = Issuer::new(ca_params, ca_key);

    issue_client(dir, "dockstack-client", &issuer, force)?;
    for h in hosts {
        issue_host(dir, h, &issuer, force)?;
    }
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
    let mut p = params(&host.name)?;
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

fn issue_client(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'_, KeyPair>,
    force: bool,
) -> Result<(), CertError> {
    let mut p = params(name)?;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    let (c, k) = client_cert(dir);
    write_file(&c, &cert.pem(), 0o644, force)?;
    write_file(&k, &key.serialize_pem(), 0o600, force)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn hosts() -> Vec<ContainerHost> {
        vec![ContainerHost {
            name: "host1".into(),
            ip: "10.231.9.2".into(),
            port: 3288,
        }]
    }

    #[test]
    fn init_writes_private_keys_0600_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("dockstack-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = init(&dir, &hosts(), false).unwrap();
        assert_eq!(files.len(), 6);
        for f in &files {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            if f.extension().unwrap() == "key" {
                assert_eq!(mode, 0o600, "{}", f.display());
            } else {
                assert_eq!(mode, 0o644, "{}", f.display());
            }
        }
        let before = std::fs::read(dir.join("ca.pem")).unwrap();
        let err = init(&dir, &hosts(), false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
        init(&dir, &hosts(), true).unwrap();
        assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
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
}
