//! Mutual TLS for the server: its identity and the cluster CA that every
//! client certificate must be signed by, and who the caller is.

use std::path::{Path, PathBuf};

use tonic::Request;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source} (make the certificates with `dockstack certs init`)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn read(path: PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
}

/// The server's TLS settings from `dir`: `ca.pem`, and `<host_id>.pem` with
/// `<host_id>.key`. A client must present a certificate signed by the CA.
pub fn server_config(dir: &Path, host_id: &str) -> Result<ServerTlsConfig, TlsError> {
    let ca = read(dir.join("ca.pem"))?;
    let cert = read(dir.join(format!("{host_id}.pem")))?;
    let key = read(dir.join(format!("{host_id}.key")))?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca)))
}

/// The subject of the client's certificate, for the audit line.
pub fn peer_subject<T>(req: &Request<T>) -> Option<String> {
    let certs = req.peer_certs()?;
    let der = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.subject().to_string())
}
