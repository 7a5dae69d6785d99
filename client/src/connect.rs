//! Connections to container hosts: mutual TLS by default, a connect
//! timeout, and errors that name the host and say what to fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_types::lock::LEASE_HEADER;
use dockstack_types::protocol;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::certs;
use crate::environment::HostAddress;

mod explain;
mod probe;

use explain::{NOT_TLS, explain, plain_cause};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read {}: {source} (make certificates with `dockstack certs init`, or pass --tls-dir)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--as {name}: {source}")]
    BadIdentity {
        name: String,
        #[source]
        source: certs::CertError,
    },
    #[error("no client certificate {} for --as {name}: make one with `dockstack certs add-client {name} --role admin|operator|viewer` (or pass --tls-dir)", .path.display())]
    MissingIdentity { name: String, path: PathBuf },
    #[error("host {host} ({addr}): invalid address: {message}")]
    Address {
        host: String,
        addr: String,
        message: String,
    },
    /// No connection: nothing reached (`answered` false), or the server
    /// refused it (TLS).
    #[error("host {host} ({addr}){}: {message}", if *.answered { "" } else { " is unreachable" })]
    Unreachable {
        host: String,
        addr: String,
        message: String,
        answered: bool,
    },
    /// Something answered, but not as a dockstack server of this
    /// client's security: `message` says what and what to check.
    #[error("host {host} ({addr}) {message}")]
    Answered {
        host: String,
        addr: String,
        message: &'static str,
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

/// The lease tokens of the hosts whose change lock this client holds;
/// every request to such a host carries its token (see
/// `dockstack_types::lock::LEASE_HEADER`), which the server's fence asks
/// of every change. Shared by every clone of a [`Connector`].
#[derive(Debug, Clone, Default)]
pub struct Leases(Arc<RwLock<HashMap<String, AsciiMetadataValue>>>);

impl Leases {
    /// Sends `token` with every request to `host` from now on. A token the
    /// server gave is ASCII hex; anything else is not sent.
    pub fn set(&self, host: &str, token: &str) {
        if let Ok(value) = token.parse() {
            self.0
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host.to_string(), value);
        }
    }

    pub fn clear(&self, host: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host);
    }

    fn get(&self, host: &str) -> Option<AsciiMetadataValue> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
    }
}

/// The protocol version this client says it speaks: its own, or in a
/// debug build `$DOCKSTACK_PROTOCOL` (for the tests of a server that does
/// not speak it).
fn protocol_version() -> AsciiMetadataValue {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var("DOCKSTACK_PROTOCOL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return v;
    }
    AsciiMetadataValue::from(protocol::VERSION)
}

/// Puts the client's protocol version on each request.
#[derive(Debug, Clone, Copy)]
pub struct ProtocolHeader;

impl Interceptor for ProtocolHeader {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(protocol::HEADER, protocol_version());
        Ok(req)
    }
}

/// Puts the client's protocol version, and the lease token of its host if
/// the client holds one, on each request.
#[derive(Debug, Clone)]
pub struct LeaseHeader {
    leases: Leases,
    host: String,
}

impl Interceptor for LeaseHeader {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut req = ProtocolHeader.call(req)?;
        if let Some(token) = self.leases.get(&self.host) {
            req.metadata_mut().insert(LEASE_HEADER, token);
        }
        Ok(req)
    }
}

/// A client of one host's containers that carries the client's lease.
pub type HostClient = ContainerHostClient<InterceptedService<Channel, LeaseHeader>>;

#[derive(Debug, Clone)]
pub struct Connector {
    security: Security,
    tls: Option<ClientTlsConfig>,
    /// The client certificate presented: `<name>.pem` of the TLS directory.
    identity: String,
    pub timeout: Duration,
    /// How long one call may take (`--timeout`); `None` leaves each call its
    /// own default.
    deadline: Option<Duration>,
    leases: Leases,
    /// One connection per host address, shared by every clone: the lock,
    /// the plan and the operations of one command go over one handshake.
    /// A host that could not be reached is kept as why.
    channels: Arc<Mutex<HashMap<String, Result<Channel, Failed>>>>,
}

/// Why a host could not be connected to, kept for the command's other
/// requests to it.
#[derive(Debug, Clone)]
enum Failed {
    Unreachable(String, bool),
    Answered(&'static str),
}

fn read(path: PathBuf) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(&path).map_err(|source| ConnectError::Read { path, source })
}

impl Connector {
    /// Presents `client.pem` (with TLS).
    pub fn new(security: Security, timeout: Duration) -> Result<Self, ConnectError> {
        Self::with_identity(security, certs::DEFAULT_CLIENT, timeout)
    }

    /// Presents `<identity>.pem` and `<identity>.key` (with TLS): `--as`.
    pub fn with_identity(
        security: Security,
        identity: &str,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let tls = match &security {
            Security::Insecure => None,
            Security::Tls(dir) => Some(tls_config(dir, identity)?),
        };
        Ok(Connector {
            security,
            tls,
            identity: identity.to_string(),
            timeout,
            deadline: None,
            leases: Leases::default(),
            channels: Arc::default(),
        })
    }

    /// Every call given up after `deadline` (`--timeout`) instead of its own
    /// default.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The deadline `--timeout` set for every call, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The name of the client certificate presented.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self.security, Security::Insecure)
    }

    /// Explains a gRPC status from a server, with TLS hints that name the
    /// client certificate this connector presents.
    pub fn explain_status(&self, s: &tonic::Status) -> String {
        use std::error::Error as _;
        if s.code() == tonic::Code::Unimplemented {
            return "the server does not know this request: it is older than this client (upgrade dockstack-server on that host)".into();
        }
        // The server's own failure, said in its words, whatever the code.
        if s.metadata().contains_key(protocol::HEADER) {
            return s.message().to_string();
        }
        // hyper's own failure, whatever code tonic gave it: no server's
        // message starts so.
        if s.message().starts_with("h2 protocol error")
            && let Some(cause) = plain_cause(&s.message().to_lowercase(), self.tls.is_some())
        {
            return cause.to_string();
        }
        if matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ) {
            let tls = self.tls.is_some();
            let identity = tls.then_some(self.identity.as_str());
            return match s.source() {
                Some(src) => explain(src, tls, identity, None, || self.own_refusal()).text,
                None => explain(s, tls, identity, None, || self.own_refusal()).text,
            };
        }
        s.message().to_string()
    }

    /// Why a server would refuse our certificate, if the TLS directory
    /// shows a reason (expired, revoked, of another CA).
    fn own_refusal(&self) -> Option<String> {
        match &self.security {
            Security::Tls(dir) => {
                certs::refusal_cause(dir, &self.identity, time::OffsetDateTime::now_utc())
            }
            Security::Insecure => None,
        }
    }

    /// The lease tokens this client's requests carry.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Connects to `host` at `ip:port`.
    pub async fn connect(
        &self,
        host: &str,
        ip: &HostAddress,
        port: u16,
    ) -> Result<ContainerHostClient<Channel>, ConnectError> {
        Ok(ContainerHostClient::new(
            self.channel(host, ip, port).await?,
        ))
    }

    /// [`Connector::connect`], the client's lease of `host` on every request.
    pub async fn connect_leased(
        &self,
        host: &str,
        ip: &HostAddress,
        port: u16,
    ) -> Result<HostClient, ConnectError> {
        let channel = self.channel(host, ip, port).await?;
        Ok(ContainerHostClient::with_interceptor(
            channel,
            LeaseHeader {
                leases: self.leases.clone(),
                host: host.to_string(),
            },
        ))
    }

    /// The connection to `host` at `ip:port`: the one made before, or a
    /// new one. A host found unreachable is not tried again by this
    /// command: each of its containers fails with the same error at once.
    pub async fn channel(
        &self,
        host: &str,
        ip: &HostAddress,
        port: u16,
    ) -> Result<Channel, ConnectError> {
        let addr = ip.authority(port);
        let key = format!("{host} {addr}");
        let cached = self
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let (host, addr_) = (host.to_string(), addr.clone());
        match cached {
            Some(Ok(c)) => return Ok(c),
            Some(Err(Failed::Unreachable(message, answered))) => {
                return Err(ConnectError::Unreachable {
                    host,
                    addr: addr_,
                    message,
                    answered,
                });
            }
            Some(Err(Failed::Answered(message))) => {
                return Err(ConnectError::Answered {
                    host,
                    addr: addr_,
                    message,
                });
            }
            None => {}
        }
        let result = self.connect_channel(&host, ip, port).await;
        let entry = match &result {
            Ok(c) => Ok(c.clone()),
            Err(ConnectError::Unreachable {
                message, answered, ..
            }) => Err(Failed::Unreachable(message.clone(), *answered)),
            Err(ConnectError::Answered { message, .. }) => Err(Failed::Answered(message)),
            Err(_) => return result,
        };
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, entry);
        result
    }

    async fn connect_channel(
        &self,
        host: &str,
        ip: &HostAddress,
        port: u16,
    ) -> Result<Channel, ConnectError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let addr = ip.authority(port);
        let url = format!("{scheme}://{addr}");
        let bad = |message: String| ConnectError::Address {
            host: host.to_string(),
            addr: addr.clone(),
            message,
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(self.timeout)
            .tcp_nodelay(true)
            // A server that vanished mid-call (host down, link cut) is found
            // by its missing pings, not after the call's whole deadline.
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| bad(e.to_string()))?;
        }
        let answered = |message| ConnectError::Answered {
            host: host.to_string(),
            addr: addr.clone(),
            message,
        };
        let tls = self.tls.is_some();
        match endpoint.connect().await {
            // Without TLS a wrong answer shows only at the first request,
            // where the address is no longer known: what answers is asked
            // now.
            Ok(channel) if !tls => match probe::probe(&addr, self.timeout).await {
                probe::Found::Tls => Err(answered(ANSWERED_TLS)),
                probe::Found::Http1 => Err(answered(ANSWERED_HTTP)),
                probe::Found::Other => Err(answered(ANSWERED_OTHER)),
                probe::Found::Http2 | probe::Found::Unknown => Ok(channel),
            },
            Ok(channel) => Ok(channel),
            Err(e) => {
                let explained = explain(&e, tls, Some(&self.identity), Some(host), || {
                    self.own_refusal()
                });
                if tls && explained.text == NOT_TLS {
                    return Err(answered(match probe::probe(&addr, self.timeout).await {
                        probe::Found::Http2 => ANSWERED_PLAINTEXT,
                        probe::Found::Http1 => ANSWERED_HTTP,
                        probe::Found::Tls | probe::Found::Other | probe::Found::Unknown => {
                            ANSWERED_OTHER
                        }
                    }));
                }
                Err(ConnectError::Unreachable {
                    host: host.to_string(),
                    addr: addr.clone(),
                    message: explained.text,
                    answered: explained.answered,
                })
            }
        }
    }
}

/// What [`ConnectError::Answered`] says after "host H (ADDR)".
const ANSWERED_HTTP: &str =
    "answered as an HTTP server, not as a dockstack server: is the port right?";
const ANSWERED_TLS: &str =
    "answered with TLS, and this client was started with --insecure: drop --insecure";
const ANSWERED_PLAINTEXT: &str = "answered without TLS: its dockstack-server runs with --insecure (give it certificates, or pass --insecure here too)";
const ANSWERED_OTHER: &str = "answered, but not as a dockstack server: is the port right?";

fn tls_config(dir: &Path, name: &str) -> Result<ClientTlsConfig, ConnectError> {
    certs::check_name(name).map_err(|source| ConnectError::BadIdentity {
        name: name.to_string(),
        source,
    })?;
    let ca = read(certs::ca_cert(dir))?;
    let (cert, key) = certs::client_files(dir, name);
    // `client` is made by `certs init`, whose hint `Read` gives; the
    // others by `certs add-client`.
    let read_identity = |path: PathBuf| match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != certs::DEFAULT_CLIENT => {
            Err(ConnectError::MissingIdentity {
                name: name.to_string(),
                path,
            })
        }
        Err(source) => Err(ConnectError::Read { path, source }),
        Ok(b) => Ok(b),
    };
    let identity = Identity::from_pem(read_identity(cert)?, read_identity(key)?);
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn as_picks_the_files_and_a_missing_one_says_how_to_make_it() {
        let dir = std::env::temp_dir().join(format!("dockstack-connect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        certs::init(&dir, &[], false).unwrap();
        let timeout = Duration::from_secs(1);
        let c = Connector::with_identity(Security::Tls(dir.clone()), "client", timeout).unwrap();
        assert_eq!(c.identity(), "client");
        let err =
            Connector::with_identity(Security::Tls(dir.clone()), "alice", timeout).unwrap_err();
        let m = err.to_string();
        assert!(matches!(err, ConnectError::MissingIdentity { .. }), "{m}");
        assert!(m.contains("alice.pem"), "{m}");
        assert!(m.contains("dockstack certs add-client alice --role"), "{m}");
        certs::add_client(&dir, "alice", certs::Role::Viewer, 1, false).unwrap();
        let c = Connector::with_identity(Security::Tls(dir.clone()), "alice", timeout).unwrap();
        assert_eq!(c.identity(), "alice");
        let err =
            Connector::with_identity(Security::Tls(dir.clone()), "../x", timeout).unwrap_err();
        assert!(matches!(err, ConnectError::BadIdentity { .. }), "{err}");
        // Without certificates, no file is read.
        Connector::with_identity(Security::Insecure, "nobody", timeout).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A server that checks certificates against crl.pem as the real one
    /// does: what the client then says of a revoked certificate.
    #[tokio::test]
    async fn a_server_refusing_a_revoked_certificate_is_understood() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

        let dir = std::env::temp_dir().join(format!("dockstack-revoked-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let host = crate::environment::ContainerHost {
            name: "h1".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 0,
        };
        certs::init(&dir, &[host], false).unwrap();
        certs::add_client(&dir, "alice", certs::Role::Viewer, 1, false).unwrap();
        certs::revoke(&dir, "alice").unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
            .unwrap();
        let crls = CertificateRevocationListDer::pem_file_iter(dir.join("crl.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .build()
        .unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_file(dir.join("h1.pem")).unwrap()],
                PrivateKeyDer::from_pem_file(dir.join("h1.key")).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Each handshake's outcome, as the server sees it.
        let (tx, mut handshakes) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let outcome = acceptor.accept(tcp).await.map(drop);
                let _ = tx.send(outcome.map_err(|e| e.to_string()));
            }
        });
        // What the client says after its first call as `name`.
        let call_as = |name: &str| {
            let connector =
                Connector::with_identity(Security::Tls(dir.clone()), name, Duration::from_secs(5))
                    .unwrap();
            async move {
                match connector
                    .connect("h1", &"127.0.0.1".parse().unwrap(), port)
                    .await
                {
                    Err(e) => e.to_string(),
                    Ok(mut client) => {
                        let status = client
                            .list(dockstack_proto::ListRequest { host: "h1".into() })
                            .await
                            .unwrap_err();
                        connector.explain_status(&status)
                    }
                }
            }
        };

        // A certificate the list does not name is taken (this server speaks
        // no gRPC, so the call itself fails all the same).
        let message = call_as("client").await;
        assert!(!message.contains("revoked"), "{message}");
        assert_eq!(handshakes.recv().await.unwrap(), Ok(()));

        // The TLS directory's crl.pem names it: what to do is said too.
        let message = call_as("alice").await;
        assert_eq!(
            message,
            format!(
                "the server refused our certificate {}: it has been revoked; an admin issues a new one with `dockstack certs add-client alice --role ROLE --force`",
                dir.join("alice.pem").display()
            )
        );
        let refused = handshakes.recv().await.unwrap().unwrap_err();
        assert!(refused.contains("Revoked"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
