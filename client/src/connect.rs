//! Connections to container hosts: mutual TLS by default, a connect
//! timeout, and errors that name the host and say what to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dockstack_proto::container_host_client::ContainerHostClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::certs;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read {}: {source} (make certificates with `dockstack certs init`, or pass --tls-dir)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("host {host} ({addr}): invalid address: {message}")]
    Address {
        host: String,
        addr: String,
        message: String,
    },
    #[error("host {host} ({addr}) is unreachable: {message}")]
    Unreachable {
        host: String,
        addr: String,
        message: String,
    },
}

/// How the client talks to servers.
#[derive(Debug, Clone)]
pub enum Security {
    /// Mutual TLS with the files of this directory.
    Tls(PathBuf),
    /// Plaintext, only with --insecure.
    Insecure,
}

#[derive(Debug, Clone)]
pub struct Connector {
    security: Security,
    tls: Option<ClientTlsConfig>,
    pub timeout: Duration,
}

fn read(path: PathBuf) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(&path).map_err(|source| ConnectError::Read { path, source })
}

impl Connector {
    pub fn new(security: Security, timeout: Duration) -> Result<Self, ConnectError> {
        let tls = match &security {
            Security::Insecure => None,
            Security::Tls(dir) => Some(tls_config(dir)?),
        };
        Ok(Connector {
            security,
            tls,
            timeout,
        })
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self.security, Security::Insecure)
    }

    /// Connects to `host` at `ip:port`.
    pub async fn connect(
        &self,
        host: &str,
        ip: &str,
        port: u16,
    ) -> Result<ContainerHostClient<Channel>, ConnectError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let addr = format!("{ip}:{port}");
        let url = format!("{scheme}://{addr}");
        let bad = |message: String| ConnectError::Address {
            host: host.to_string(),
            addr: addr.clone(),
            message,
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(self.timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| bad(e.to_string()))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ConnectError::Unreachable {
                host: host.to_string(),
                addr: addr.clone(),
                message: explain_transport_error(&e, self.tls.is_some()),
            })?;
        Ok(ContainerHostClient::new(channel))
    }
}

fn tls_config(dir: &Path) -> Result<ClientTlsConfig, ConnectError> {
    let ca = read(certs::ca_cert(dir))?;
    let (cert, key) = certs::client_cert(dir);
    let identity = Identity::from_pem(read(cert)?, read(key)?);
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(identity))
}

/// The whole chain of a transport error, with a hint for the usual causes.
pub fn explain_transport_error(e: &(dyn std::error::Error + 'static), tls: bool) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_lowercase();
    // Our own check of the server's certificate says "invalid peer
    // certificate"; the server refusing ours shows as an alert it sent, or
    // as the connection closing right after the handshake (TLS 1.3).
    let ours = lower.contains("invalid peer certificate");
    let hint = if ours && (lower.contains("unknownissuer") || lower.contains("badsignature")) {
        " (the server's certificate is not signed by our CA: are client and server using the same `dockstack certs init` output?)"
    } else if ours && lower.contains("notvalidforname") {
        " (the server's certificate does not name this address: re-issue it with `dockstack certs add-host --force`)"
    } else if ours && lower.contains("expired") {
        " (the server's certificate has expired: re-issue it with `dockstack certs add-host --force`)"
    } else if lower.contains("certificateexpired") {
        " (the server refused our certificate: it has expired; re-issue it with `dockstack certs init --force`)"
    } else if tls && lower.contains("fatal alert") {
        " (the server refused our certificate: is it signed by the server's CA?)"
    } else if tls
        && (lower.contains("broken pipe")
            || lower.contains("connection reset")
            || lower.contains("canceled"))
    {
        " (the server closed the connection after the TLS handshake: it probably refused our certificate; is it signed by the server's CA, and not expired?)"
    } else if tls && (lower.contains("corrupt message") || lower.contains("invalidcontenttype")) {
        " (the server does not speak TLS: is it running with --insecure?)"
    } else if !tls
        && (lower.contains("h2 protocol error")
            || lower.contains("broken pipe")
            || lower.contains("connection reset")
            || lower.contains("frame"))
    {
        " (the server speaks TLS: drop --insecure and pass --tls-dir with the cluster's certificates)"
    } else if lower.contains("refused") {
        " (is dockstack-server running there?)"
    } else if lower.contains("timed out") || lower.contains("deadline") {
        " (no answer within the connect timeout)"
    } else {
        ""
    };
    format!("{chain}{hint}")
}
