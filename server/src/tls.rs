//! Mutual TLS for the server: the server's identity, the cluster CA every
//! client certificate must chain to and the CA's list of revoked ones, a
//! handshake that logs why it refused someone, and who the caller is: the
//! subject and role of its certificate.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use std::collections::HashSet;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::policy::{ROLE_URI_PREFIX, Role};

/// Long enough for a client across a slow link, short enough that idle
/// connections cannot hold descriptors for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Handshakes in progress at once; a connection beyond is closed at once.
/// Well above what clients make (one per host and run), well below the
/// descriptors the server raises its limit to.
pub const MAX_HANDSHAKES: usize = 1024;
/// Handshakes in progress from one address: far more than one client
/// makes (a connection per host it drives), far fewer than all, so that
/// one peer's idle connections cannot keep the others out.
pub const MAX_HANDSHAKES_PER_PEER: usize = 32;

/// How long a connection whose certificate a reload revoked stays open:
/// long enough to answer what its client is sending with the reason.
const REVOKED_CLOSE_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {message} (make the certificates with `dockstack certs init`)", .path.display())]
    Read { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError::Read {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in file".into()));
    }
    Ok(certs)
}

/// The serial numbers the CA's revocation list, `crl.pem`, names (none
/// without the file).
fn revoked_serials(dir: &Path) -> Result<HashSet<Vec<u8>>, TlsError> {
    let path = dir.join("crl.pem");
    if !path.exists() {
        return Ok(HashSet::new());
    }
    let err = |message: String| TlsError::Read {
        path: path.clone(),
        message,
    };
    let mut serials = HashSet::new();
    for der in CertificateRevocationListDer::pem_file_iter(&path).map_err(|e| err(e.to_string()))? {
        let der = der.map_err(|e| err(e.to_string()))?;
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| err(e.to_string()))?;
        serials.extend(
            crl.iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec()),
        );
    }
    Ok(serials)
}

/// What the server's TLS needs, read from the TLS directory at start and
/// again on SIGHUP.
#[derive(Debug)]
pub struct TlsState {
    pub config: Arc<ServerConfig>,
    /// Serials of revoked client certificates. Checked after the handshake,
    /// by every request against the list in force then, so that the client
    /// is told why (a handshake refusal reaches it only as a closed
    /// connection) and a connection opened before a revocation is refused
    /// too.
    pub revoked: HashSet<Vec<u8>>,
}

/// The rustls settings from `dir`: `ca.pem`, `<host_id>.pem`,
/// `<host_id>.key`; and the revoked serials of `crl.pem`, when it exists.
/// Clients must present a certificate signed by the CA.
pub fn server_state(dir: &Path, host_id: &str) -> Result<TlsState, TlsError> {
    Ok(TlsState {
        config: server_config(dir, host_id)?,
        revoked: revoked_serials(dir)?,
    })
}

fn server_config(dir: &Path, host_id: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs(&dir.join("ca.pem"))? {
        roots
            .add(ca)
            .map_err(|e| TlsError::Config(format!("ca.pem: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let chain = certs(&dir.join(format!("{host_id}.pem")))?;
    let key_path = dir.join(format!("{host_id}.key"));
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Read {
        path: key_path,
        message: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub addr: Option<SocketAddr>,
    /// The subject of the client certificate.
    pub subject: Option<String>,
    /// What its certificate says of its role.
    pub role: RoleClaim,
    /// Its certificate's serial, looked up in the revocation list in force
    /// at each request.
    pub serial: Option<Vec<u8>>,
    /// When its certificate expires: a connection outliving it is served
    /// no more.
    pub not_after: Option<SystemTime>,
    /// The TLS settings in force, for the revocation list of the moment.
    pub tls: Option<SharedTls>,
}

impl PeerInfo {
    /// Why its certificate is no longer good, by the revocation list in
    /// force now and the clock: [`RoleClaim::Revoked`] or
    /// [`RoleClaim::Expired`].
    fn lapsed(&self) -> Option<RoleClaim> {
        if let (Some(tls), Some(serial)) = (&self.tls, &self.serial)
            && tls.current().revoked.contains(serial)
        {
            return Some(RoleClaim::Revoked);
        }
        self.not_after
            .is_some_and(|t| t <= SystemTime::now())
            .then_some(RoleClaim::Expired)
    }
}

/// The role a client certificate claims, as its URI SAN
/// `dockstack:role:<role>` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoleClaim {
    Known(Role),
    /// A role this server does not know.
    Unknown(String),
    /// No role at all (a certificate made before roles, or by hand).
    #[default]
    None,
    /// Whatever its role, the certificate is on the revocation list.
    Revoked,
    /// The certificate has expired while its connection stayed open.
    Expired,
}

/// The TLS settings in force; SIGHUP swaps them for ones read anew and
/// tells every open connection, so that one whose certificate the new
/// list revokes is closed.
#[derive(Debug)]
pub struct LiveTls {
    state: std::sync::RwLock<Arc<TlsState>>,
    reloads: tokio::sync::watch::Sender<()>,
}

pub type SharedTls = Arc<LiveTls>;

impl LiveTls {
    pub fn new(state: TlsState) -> SharedTls {
        Arc::new(LiveTls {
            state: std::sync::RwLock::new(Arc::new(state)),
            reloads: tokio::sync::watch::Sender::new(()),
        })
    }

    pub fn current(&self) -> Arc<TlsState> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `state` in force and has every open connection check its
    /// certificate against it.
    pub fn replace(&self, state: TlsState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
        self.reloads.send_replace(());
    }
}

fn serial_of(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(cert.raw_serial().to_vec())
}

fn not_after_of(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Resolves when the connection of `info` must close: its certificate
/// expired, or a reload revoked it. Never for a connection without one.
fn end_of(info: &PeerInfo) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let (Some(tls), Some(_)) = (info.tls.clone(), info.serial.as_ref()) else {
        return Box::pin(std::future::pending());
    };
    let info = info.clone();
    let mut reloads = tls.reloads.subscribe();
    Box::pin(async move {
        // No expiry known (a certificate x509-parser cannot read, which
        // the handshake accepted): the connection's age bounds it instead.
        let expiry = info.not_after.map_or(Duration::MAX, |t| {
            t.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let expired = tokio::time::sleep(expiry);
        tokio::pin!(expired);
        loop {
            tokio::select! {
                () = &mut expired => return,
                changed = reloads.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                    if info.lapsed().is_some() {
                        // Requests sent meanwhile are refused naming the
                        // revocation; a connection closed at once would
                        // tell its client only of a broken pipe.
                        tokio::time::sleep(REVOKED_CLOSE_DELAY).await;
                        return;
                    }
                }
            }
        }
    })
}

/// A TLS connection that tells tonic who the peer is, and ends (as if the
/// peer had closed it) once its certificate is revoked or expires.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: PeerInfo,
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("info", &self.info)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.ended && self.end.as_mut().poll(cx).is_ready() {
            tracing::info!(client = ?self.info.subject, peer = ?self.info.addr, "closing the connection: its certificate has been revoked or has expired");
            self.ended = true;
        }
        if self.ended {
            // End of stream: the HTTP/2 server closes the connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

fn subject_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(cert.subject().to_string())
}

/// The role of a certificate: the first URI SAN under our prefix.
fn role_of(cert: &CertificateDer<'_>) -> RoleClaim {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return RoleClaim::None;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return RoleClaim::None;
    };
    san.value
        .general_names
        .iter()
        .find_map(|n| match n {
            GeneralName::URI(uri) => uri.strip_prefix(ROLE_URI_PREFIX),
            _ => None,
        })
        .map_or(RoleClaim::None, |r| match r.parse() {
            Ok(role) => RoleClaim::Known(role),
            Err(_) => RoleClaim::Unknown(r.to_string()),
        })
}

/// Accepts connections on `listener` and completes the TLS handshake of
/// each on its own task; a refused handshake is logged with the reason.
pub fn incoming(
    listener: TcpListener,
    tls: SharedTls,
) -> ReceiverStream<Result<TlsConn, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let slots = crate::slots::PeerSlots::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER);
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let slot = match slots.acquire(addr.ip()) {
                Ok(slot) => slot,
                Err(full) => {
                    // Logged at debug level: a peer that fills its slots
                    // would fill the log too.
                    tracing::debug!(peer = %addr, "refused connection: {full} (TLS handshakes)");
                    drop(tcp);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let state = tls.current();
            let tls = Arc::clone(&tls);
            let acceptor = TlsAcceptor::from(Arc::clone(&state.config));
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::select! {
                    h = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => h,
                    () = slot.evicted() => {
                        tracing::debug!(peer = %addr, "closed a handshake: a newer connection of its address took its slot");
                        return;
                    }
                };
                drop(slot);
                match handshake {
                    Ok(Ok(stream)) => {
                        let leaf = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first());
                        let info = PeerInfo {
                            addr: Some(addr),
                            subject: leaf.and_then(subject_of),
                            role: leaf.map_or(RoleClaim::None, role_of),
                            serial: leaf.and_then(serial_of),
                            not_after: leaf.and_then(not_after_of),
                            tls: Some(tls),
                        };
                        let end = end_of(&info);
                        let conn = TlsConn {
                            stream,
                            info,
                            end,
                            ended: false,
                        };
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => {
                        let text = e.to_string();
                        let why = if text.contains("InvalidContentType") {
                            format!("{text} (a plaintext client: was it started with --insecure?)")
                        } else if text.contains("CertificateRequired")
                            || text.contains("NoCertificatesPresented")
                            || text.contains("no certificates")
                        {
                            format!("{text} (the client sent no certificate)")
                        } else if text.contains("handshake eof") {
                            format!("{text} (the client gave up: does it trust this server's CA?)")
                        } else {
                            text
                        };
                        tracing::warn!(peer = %addr, "refused connection: TLS handshake failed: {why}");
                    }
                    Err(_) => {
                        tracing::warn!(peer = %addr, "refused connection: no TLS handshake within {}s", HANDSHAKE_TIMEOUT.as_secs());
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The caller's role. A plaintext server (`--insecure`) has no
/// certificates to tell roles by: everyone is admin, as its start-up
/// warning says.
pub fn role_claim<T>(req: &Request<T>) -> RoleClaim {
    match req.extensions().get::<PeerInfo>() {
        Some(info) => info.lapsed().unwrap_or_else(|| info.role.clone()),
        None => RoleClaim::Known(Role::Admin),
    }
}

/// The caller for the audit line: the client certificate's subject and
/// address under TLS, the address alone in plaintext.
pub fn caller<T>(req: &Request<T>) -> String {
    if let Some(info) = req.extensions().get::<PeerInfo>() {
        let addr = info.addr.map(|a| a.to_string()).unwrap_or_default();
        return match &info.subject {
            Some(s) => format!("{s} ({addr})"),
            None => addr,
        };
    }
    req.extensions()
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .map(|a| format!("{a} (insecure)"))
        .unwrap_or_else(|| "unknown".into())
}
