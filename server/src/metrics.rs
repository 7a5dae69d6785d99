//! The server's Prometheus metrics: what it counts and times, and the
//! `/metrics` endpoint that `--metrics ADDR:PORT` serves them on, in
//! Prometheus' text format (encoded by `prometheus-client`).
//!
//! The counters are one per process, as a server is one host: every part
//! records through [`metrics()`] whether or not anyone scrapes. The
//! containers by state and health are read from the host (a
//! [`ContainerSource`], which lists them from Docker) at each scrape, never
//! kept, so they cannot drift from what `status` says.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    action: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    state: String,
    health: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EditLabels {
    file: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AddressLabel {
    address: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabel {
    file: String,
}

/// One managed container as a scrape counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSample {
    pub state: String,
    /// Docker's health, empty when the container has no healthcheck.
    pub health: String,
}

/// What a scrape reads the containers from, now (the host): the metrics
/// know no more of it than this, so the host can record through them.
pub trait ContainerSource {
    /// The managed containers, or why they cannot be listed.
    fn containers(&self) -> impl Future<Output = Result<Vec<ContainerSample>, String>> + Send;
}

/// Whether a plug was asked for (run, start: the address probed first) or
/// made again after Docker restarted a container's network holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlugKind {
    Plug,
    Replug,
}

impl PlugKind {
    pub fn label(self) -> &'static str {
        match self {
            PlugKind::Plug => "plug",
            PlugKind::Replug => "replug",
        }
    }
}

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Family<ActionLabel, Histogram>,
    plugs: Family<KindLabel, Counter>,
    plug_seconds: Family<KindLabel, Histogram>,
    plug_failures: Family<StepLabel, Counter>,
    containers: Family<ContainerLabels, Gauge>,
    events: Counter,
    event_reconnects: Counter,
    registration_edits: Family<EditLabels, Counter>,
    registration_failures: Family<FileLabel, Counter>,
    address_conflicts: Family<AddressLabel, Counter>,
    address_defences: Counter,
    addresses_in_conflict: Gauge,
    /// One scrape at a time: each clears and refills `containers`.
    scrape: tokio::sync::Mutex<()>,
}

/// Operations take from a millisecond (status) to minutes (a run whose
/// hooks pull images): 1 ms to ~65 s.
fn operation_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Plugs take milliseconds, a probing one ~150 ms more: 0.5 ms to ~8 s.
fn plug_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("dockstack");
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operations",
            "Operations asked of this server, by action and result (ok, error)",
            operations.clone(),
        );
        let operation_seconds = Family::<ActionLabel, Histogram>::new_with_constructor(
            operation_histogram as fn() -> _,
        );
        registry.register(
            "operation_duration_seconds",
            "How long operations took, by action",
            operation_seconds.clone(),
        );
        let plugs = Family::<KindLabel, Counter>::default();
        registry.register(
            "plugs",
            "eth0 plugs made: plug (run, start) or replug (after Docker restarted the network holder)",
            plugs.clone(),
        );
        let plug_seconds =
            Family::<KindLabel, Histogram>::new_with_constructor(plug_histogram as fn() -> _);
        registry.register(
            "plug_duration_seconds",
            "How long plugs and re-plugs took",
            plug_seconds.clone(),
        );
        let plug_failures = Family::<StepLabel, Counter>::default();
        registry.register(
            "plug_failures",
            "Plugs that failed, by the step that failed",
            plug_failures.clone(),
        );
        let containers = Family::<ContainerLabels, Gauge>::default();
        registry.register(
            "containers",
            "Containers this server manages, by state and health, as Docker reports them at the scrape",
            containers.clone(),
        );
        let events = Counter::default();
        registry.register(
            "docker_events",
            "Docker container events seen",
            events.clone(),
        );
        let event_reconnects = Counter::default();
        registry.register(
            "docker_event_stream_reconnects",
            "Times the Docker event stream ended and was followed again",
            event_reconnects.clone(),
        );
        let registration_edits = Family::<EditLabels, Counter>::default();
        registry.register(
            "registration_edits",
            "Edits of registration files (hosts, hieradata, site.pp), by result (changed, unchanged)",
            registration_edits.clone(),
        );
        let registration_failures = Family::<FileLabel, Counter>::default();
        registry.register(
            "registration_failures",
            "Registration file edits that failed",
            registration_failures.clone(),
        );
        let address_conflicts = Family::<AddressLabel, Counter>::default();
        registry.register(
            "address_conflicts",
            "ARP packets from another MAC claiming the address of a container plugged here, by address",
            address_conflicts.clone(),
        );
        let address_defences = Counter::default();
        registry.register(
            "address_defences",
            "Gratuitous ARPs sent to defend a plugged address against a conflicting claim",
            address_defences.clone(),
        );
        let addresses_in_conflict = Gauge::default();
        registry.register(
            "addresses_in_conflict",
            "Plugged containers whose address another MAC claims now (as `status` shows them)",
            addresses_in_conflict.clone(),
        );
        Metrics {
            registry,
            operations,
            operation_seconds,
            plugs,
            plug_seconds,
            plug_failures,
            containers,
            events,
            event_reconnects,
            registration_edits,
            registration_failures,
            address_conflicts,
            address_defences,
            addresses_in_conflict,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    pub fn operation(&self, action: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.operations
            .get_or_create(&OperationLabels {
                action: action.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.operation_seconds
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn plugged(&self, kind: PlugKind, took: Duration) {
        let label = KindLabel {
            kind: kind.label().to_string(),
        };
        self.plugs.get_or_create(&label).inc();
        self.plug_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// A failed plug; `step` is netplug's name for it, or `None` when the
    /// failure came before netplug (the container's labels).
    pub fn plug_failed(&self, step: Option<netplug::Step>) {
        let step = step.map_or("spec", netplug::Step::name).to_string();
        self.plug_failures.get_or_create(&StepLabel { step }).inc();
    }

    pub fn event(&self) {
        self.events.inc();
    }

    pub fn event_stream_reconnected(&self) {
        self.event_reconnects.inc();
    }

    /// An edit of registration file `file` (hosts, hieradata, sitepp)
    /// that went through, changing the file or not.
    pub fn registration_edited(&self, file: &'static str, changed: bool) {
        let result = if changed { "changed" } else { "unchanged" };
        self.registration_edits
            .get_or_create(&EditLabels {
                file: file.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn registration_failed(&self, file: &'static str) {
        self.registration_failures
            .get_or_create(&FileLabel {
                file: file.to_string(),
            })
            .inc();
    }

    /// Another MAC's ARP claimed the plugged `address`.
    pub fn address_conflict(&self, address: &str) {
        self.address_conflicts
            .get_or_create(&AddressLabel {
                address: address.to_string(),
            })
            .inc();
    }

    pub fn address_defended(&self) {
        self.address_defences.inc();
    }

    /// How many plugged containers have a conflict shown now.
    pub fn conflicts_now(&self, count: usize) {
        self.addresses_in_conflict
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The text exposition, with the containers read from `source` now.
    pub async fn render(&self, source: &impl ContainerSource) -> String {
        let _one = self.scrape.lock().await;
        match source.containers().await {
            Ok(list) => {
                self.containers.clear();
                for c in list {
                    let health = if c.health.is_empty() {
                        "none".to_string()
                    } else {
                        c.health
                    };
                    self.containers
                        .get_or_create(&ContainerLabels {
                            state: c.state,
                            health,
                        })
                        .inc();
                }
            }
            // Docker away: the last figures stay, as Prometheus expects of
            // a gauge it cannot refresh; the operations' errors show why.
            Err(e) => tracing::debug!("metrics: cannot list containers: {e}"),
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("metrics: cannot encode: {e}");
        }
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The server's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// `/metrics` connections open at once: scrapers make one each.
pub const MAX_METRICS_CONNECTIONS: usize = 64;
/// `/metrics` connections open at once from one address.
pub const MAX_METRICS_PER_PEER: usize = 4;
/// How long one `/metrics` connection may stay open, keep-alive scrapes
/// included: a scrape takes well under a second.
pub const METRICS_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `GET /metrics` on `listener` until the process ends; any other
/// path is 404. Plain HTTP, as Prometheus scrapes: bind it to an address
/// only the monitoring network reaches.
pub async fn serve<S>(listener: tokio::net::TcpListener, host: Arc<S>)
where
    S: ContainerSource + Send + Sync + 'static,
{
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    let slots = crate::slots::PeerSlots::new(MAX_METRICS_CONNECTIONS, MAX_METRICS_PER_PEER);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                tracing::debug!(%peer, "metrics: refused connection: {full}");
                drop(stream);
                continue;
            }
        };
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let host = Arc::clone(&host);
                async move {
                    if req.uri().path() == "/metrics" && req.method() == hyper::Method::GET {
                        Response::builder()
                            .header(
                                hyper::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(metrics().render(&*host).await)))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"only /metrics is here\n")))
                    }
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(io, service);
            let served = tokio::select! {
                served = tokio::time::timeout(METRICS_CONNECTION_TIMEOUT, conn) => served,
                () = slot.evicted() => {
                    tracing::debug!(%peer, "metrics: closed: a newer connection of its address took its slot");
                    return;
                }
            };
            match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics: connection: {e}"),
                Err(_) => tracing::debug!(
                    %peer,
                    "metrics: connection closed after {}s",
                    METRICS_CONNECTION_TIMEOUT.as_secs()
                ),
            }
        });
    }
}
