//! `dockstack-server`: listens for the dockstack client and keeps this
//! host's containers plugged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use dockstack_proto::container_host_server::ContainerHostServer;
use dockstack_proto::host_lock_server::HostLockServer;
use dockstack_server::docker::DockerClient;
use dockstack_server::host::{Host, HostConfig};
use dockstack_server::policy::{Policy, SharedPolicy};
use dockstack_server::service::HostService;
use netplug::{Netlink, Ovs};
use tonic::transport::Server;

#[derive(Parser)]
#[command(
    name = "dockstack-server",
    version,
    about = "dockstack container host daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ContainerHost API.
    Listen(ListenArgs),
}

#[derive(clap::Args)]
struct ListenArgs {
    /// Address to listen on.
    #[arg(long, conflicts_with = "interface")]
    ipaddress: Option<IpAddr>,
    /// Listen on this interface's IPv4 address (as the 2015 server did).
    #[arg(long, default_value = "eth0")]
    interface: String,
    #[arg(long, default_value_t = 3288)]
    port: u16,
    /// This server's name in `containerhosts` (default: the hostname).
    #[arg(long)]
    host_id: Option<String>,
    /// OVSDB socket, `unix:PATH` (default: $OVS_RUNDIR/db.sock, or the standard socket).
    #[arg(long)]
    ovsdb: Option<String>,
    /// Docker endpoint (default: unix:///var/run/docker.sock).
    #[arg(long)]
    docker: Option<String>,
    /// How long a call to Docker may take, in seconds: past it, a Docker
    /// that does not answer a ping either is taken as hung (the request
    /// fails, naming Docker, and the requests that follow fail at once until
    /// Docker answers again); a busy one is waited on up to six times as long.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = dockstack_server::docker::DEFAULT_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    docker_timeout: u64,
    /// Directory with ca.pem, HOST_ID.pem and HOST_ID.key.
    #[arg(long, env = "DOCKSTACK_TLS_DIR", default_value = "/etc/dockstack/tls")]
    tls_dir: PathBuf,
    /// Serve plaintext without client authentication. Anyone who can
    /// reach the port then owns this host.
    #[arg(long)]
    insecure: bool,
    /// Timeout of each hook command, in seconds.
    #[arg(long, default_value_t = 300)]
    hook_timeout: u64,
    /// Only run hook programs from this directory.
    #[arg(long)]
    allow_hooks: Option<PathBuf>,
    /// How long a fresh plug probes the bridge for its address (RFC 5227
    /// ARP probes): an address someone answers for is refused.
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=5000))]
    probe_ms: u64,
    /// Never probe (for networks that forbid ARP probes).
    #[arg(long)]
    no_probe: bool,
    /// Where to keep the config hashes last applied to each container.
    #[arg(long, default_value = "/var/lib/dockstack")]
    state_dir: PathBuf,
    /// What each role of client certificate may do (default:
    /// /etc/dockstack/policy.yaml when it exists, else the built-in policy).
    /// SIGHUP reads it again, with the TLS directory's crl.pem.
    #[arg(long)]
    policy: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (plain HTTP,
    /// no authentication: bind it where only monitoring reaches). Off
    /// unless given.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// How long a client's lease of this host's change lock lives without
    /// a renewal, in milliseconds: a client that died frees the host
    /// within it.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = dockstack_types::lock::DEFAULT_TTL_MS,
        value_parser = clap::value_parser!(u32).range(
            i64::from(dockstack_types::lock::MIN_TTL_MS)..=i64::from(dockstack_types::lock::MAX_TTL_MS)
        )
    )]
    lock_ttl_ms: u32,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs that go to files or journald stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Every event one line, whatever its fields hold: a client's value
    // never starts a line of its own (JSON escapes them itself).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(move || dockstack_server::logline::OneLine::new(std::io::stdout(), ansi));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn hostname() -> Result<String> {
    Ok(nix::unistd::gethostname()?.to_string_lossy().into_owned())
}

async fn interface_address(interface: &str) -> Result<IpAddr> {
    let nl = Netlink::current()?;
    let link = nl.link_by_name(interface).await?.ok_or_else(|| {
        anyhow!("interface {interface} not found: give --ipaddress or --interface")
    })?;
    let (ip, _) = nl
        .addrs(link.index)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("interface {interface} has no IPv4 address"))?;
    Ok(IpAddr::V4(ip))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

/// The policy file in force: the one given, or the default one if it
/// exists, or none (the built-in policy).
fn policy_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let default = PathBuf::from(dockstack_server::policy::DEFAULT_POLICY);
        default.exists().then_some(default)
    })
}

/// The server's own directories, which no role held to a volume
/// allowlist may mount: its TLS and state directories, `--allow-hooks`,
/// its policy file and its own program.
struct OwnDirs {
    tls_dir: PathBuf,
    others: Vec<PathBuf>,
}

impl OwnDirs {
    fn new(
        tls_dir: &std::path::Path,
        state_dir: &std::path::Path,
        allow_hooks: Option<&std::path::Path>,
        policy_file: Option<&std::path::Path>,
    ) -> Self {
        let exe = std::env::current_exe().ok();
        let mut others = vec![state_dir.to_path_buf()];
        others.extend(allow_hooks.map(std::path::Path::to_path_buf));
        // The files themselves: a source that holds one (its directory or
        // above) is refused as surely, and their neighbours are not theirs.
        others.extend(policy_file.map(std::path::Path::to_path_buf));
        others.extend(exe);
        // A relative --state-dir is the server's working directory's.
        let cwd = std::env::current_dir().unwrap_or_default();
        let others = others.into_iter().map(|d| cwd.join(d)).collect();
        OwnDirs {
            tls_dir: cwd.join(tls_dir),
            others,
        }
    }
}

fn load_policy(path: Option<&std::path::Path>, own: &OwnDirs) -> Result<Policy> {
    let mut policy = match path {
        Some(p) => Policy::load(p, Some(&own.tls_dir))?,
        None => Policy::builtin(Some(&own.tls_dir)),
    };
    policy.protect(own.others.iter().map(PathBuf::as_path));
    Ok(policy)
}

/// On SIGHUP: the policy and the TLS settings (crl.pem above all) read
/// again. Either that fails keeps what is in force: a bad new policy never
/// leaves the server without one.
fn reload_on_sighup(
    policy_file: Option<PathBuf>,
    own: OwnDirs,
    host_id: String,
    policy: SharedPolicy,
    tls: Option<dockstack_server::tls::SharedTls>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler: no reloads");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match load_policy(policy_file.as_deref(), &own) {
                Ok(p) => {
                    tracing::info!(source = %p.source, "policy reloaded");
                    *policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
                }
                Err(e) => tracing::error!("policy not reloaded, the old one stays in force: {e:#}"),
            }
            if let Some(tls) = &tls {
                match dockstack_server::tls::server_state(&own.tls_dir, &host_id) {
                    Ok(c) => {
                        tls.replace(c);
                        tracing::info!("TLS settings and revocation list reloaded");
                    }
                    Err(e) => tracing::error!(
                        "TLS settings not reloaded, the old ones stay in force: {e}"
                    ),
                }
            }
        }
    });
}

/// Raises the soft limit of open files to the hard one: idle connections,
/// up to [`dockstack_server::tls::MAX_HANDSHAKES`] of them, must not use up
/// the descriptors that plugs and Docker need.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open files limit from {soft} to {hard}: {e}");
    }
}

/// This host, on the Docker at `docker` (its default when `None`), with
/// the pause image present.
async fn make_host(
    config: HostConfig,
    docker: Option<&str>,
    docker_timeout: Duration,
    ovs: Ovs,
) -> Result<Host> {
    let host_id = &config.host_id;
    let env_key = dockstack_server::envkey::EnvKey::load_or_create(&config.state_dir)?;
    let docker = DockerClient::connect(docker, host_id, env_key, docker_timeout)
        .await
        .with_context(|| format!("host {host_id}"))?;
    // Checked before serving so that a Docker that cannot build it is found
    // at start-up, not when the first sandbox is wanted.
    let pause = dockstack_server::pause::ensure_image(&docker)
        .await
        .with_context(|| format!("host {host_id}"))?;
    tracing::debug!(image = %pause, "pause image present");
    Ok(Host::new(config, docker, ovs))
}

async fn listen(args: ListenArgs) -> Result<()> {
    let ListenArgs {
        ipaddress,
        interface,
        port,
        host_id,
        ovsdb,
        docker,
        docker_timeout,
        tls_dir,
        insecure,
        hook_timeout,
        allow_hooks,
        state_dir,
        probe_ms,
        no_probe,
        policy,
        log_format: _,
        metrics,
        lock_ttl_ms,
    } = args;
    let host_id = match host_id {
        Some(h) => h,
        None => hostname()?,
    };
    let ip = match ipaddress {
        Some(ip) => ip,
        None => interface_address(&interface).await?,
    };
    let addr = SocketAddr::new(ip, port);
    raise_open_files();
    // Before anything else: a server never runs on a policy it could not read.
    let policy_file = policy_path(policy);
    let own = OwnDirs::new(
        &tls_dir,
        &state_dir,
        allow_hooks.as_deref(),
        policy_file.as_deref(),
    );
    let policy = load_policy(policy_file.as_deref(), &own).context("policy")?;
    tracing::info!(source = %policy.source, "policy in force");
    let policy: SharedPolicy = Arc::new(std::sync::RwLock::new(Arc::new(policy)));
    let ovs = match ovsdb {
        Some(db) => Ovs::new(Some(db)),
        None => Ovs::from_env(),
    };
    let config = HostConfig {
        host_id: host_id.clone(),
        hook_timeout: Duration::from_secs(hook_timeout),
        allow_hooks,
        state_dir,
        probe: (!no_probe).then(|| Duration::from_millis(probe_ms)),
    };
    let docker_timeout = Duration::from_secs(docker_timeout);
    let host = Arc::new(make_host(config, docker.as_deref(), docker_timeout, ovs).await?);
    // Bound before the reconcile, so a bad address fails the start at once.
    let metrics = match metrics {
        Some(addr) => Some((
            addr,
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?,
        )),
        None => None,
    };
    let began = std::time::Instant::now();
    match host.reconcile().await {
        Ok(()) => tracing::info!(
            duration_ms = began.elapsed().as_secs_f64() * 1e3,
            "start-up reconcile done"
        ),
        Err(e) => tracing::error!("start-up reconcile failed: {e}"),
    }
    // After the reconcile, which plugged (and so listed) every running pair.
    if let Err(e) = Arc::clone(host.guard()).watch(tokio::runtime::Handle::current()) {
        tracing::warn!("no address conflict watch (a packet socket needs CAP_NET_RAW): {e}");
    }
    tokio::spawn(Arc::clone(&host).follow_events());
    tokio::spawn(Arc::clone(&host).follow_ovs());
    if let Some((addr, listener)) = metrics {
        tracing::info!(%addr, "serving metrics at /metrics");
        tokio::spawn(dockstack_server::metrics::serve(
            listener,
            Arc::clone(&host),
        ));
    }

    // Load certificates before binding, so a missing file fails fast.
    let tls = if insecure {
        tracing::warn!(
            "--insecure: serving plaintext gRPC without client authentication; anyone who can reach {addr} controls this host"
        );
        None
    } else {
        Some(dockstack_server::tls::LiveTls::new(
            dockstack_server::tls::server_state(&tls_dir, &host_id)?,
        ))
    };
    reload_on_sighup(
        policy_file,
        own,
        host_id.clone(),
        Arc::clone(&policy),
        tls.clone(),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(host = %host_id, %addr, tls = !insecure, "listening");
    let lock_ttl = Duration::from_millis(u64::from(lock_ttl_ms));
    serve(listener, HostService::new(host, policy, lock_ttl), tls).await
}

/// How long a connection is served before the server asks the client (by
/// HTTP/2 GOAWAY) to open a new one: a new connection is a new handshake,
/// with the CA, the expiry and the revocation list of the moment.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(3600);
/// How long the requests under way on a connection past its age may still
/// take before it is closed: room for a `run` with slow hooks.
const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(3600);
/// Requests under way at once on one connection; a client's further ones
/// wait for a free stream. The client keeps a few per container of a step;
/// a flood of costly ones (plans) on one connection is held to this.
const MAX_CONCURRENT_STREAMS: u32 = 32;

/// Serves gRPC on `listener` (over mutual TLS unless `tls` is `None`)
/// until a shutdown signal.
async fn serve(
    listener: tokio::net::TcpListener,
    service: HostService,
    tls: Option<dockstack_server::tls::SharedTls>,
) -> Result<()> {
    let mut server = Server::builder()
        .tcp_nodelay(true)
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let router = server
        .add_service(ContainerHostServer::with_interceptor(
            service.clone(),
            dockstack_server::service::check_protocol,
        ))
        .add_service(HostLockServer::with_interceptor(
            service,
            dockstack_server::service::check_protocol,
        ));
    match tls {
        Some(config) => {
            router
                .serve_with_incoming_shutdown(
                    dockstack_server::tls::incoming(listener, config),
                    shutdown_signal(),
                )
                .await?
        }
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown_signal())
                .await?
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Listen(args) => {
            init_tracing(args.log_format);
            listen(args).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockstack-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
