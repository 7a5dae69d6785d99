//! The gRPC face of a host: converts messages to domain types, checks
//! them against the policy, calls [`Host`], and turns the category of every
//! domain error into its gRPC code.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use dockstack_proto as pb;
use dockstack_types::name::is_docker_name;
use dockstack_types::protocol;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use crate::host::{Category, ContainerStatus, Host, HostError};
use crate::host::{DnsTarget, PuppetTarget, Registration};
use crate::lock::Locks;
use crate::metrics::metrics;
use crate::policy::{Action, Policy, ROLE_URI_PREFIX, Refusal, Role, SharedPolicy};
use crate::progress::{CHANNEL_CAPACITY, Progress, Reporter};
use crate::spec::{ContainerSpec, FirstCreation, SpecError};
use crate::tls::{RoleClaim, caller, role_claim};

mod lease;
mod streams;

/// The gRPC code of each kind of failure.
fn code(category: Category) -> Code {
    match category {
        Category::NotFound => Code::NotFound,
        Category::InvalidArgument => Code::InvalidArgument,
        Category::PermissionDenied => Code::PermissionDenied,
        Category::AlreadyExists => Code::AlreadyExists,
        Category::FailedPrecondition => Code::FailedPrecondition,
        Category::Aborted => Code::Aborted,
        Category::Unavailable => Code::Unavailable,
        Category::DeadlineExceeded => Code::DeadlineExceeded,
        Category::Internal => Code::Internal,
    }
}

/// The status of a failure of this server's own: its code, its message,
/// and this server's protocol version, which tells the client that the
/// server said it (and not its transport: a Docker that does not answer is
/// `Unavailable` too).
pub(crate) fn served(code: Code, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status.metadata_mut().insert(
        protocol::HEADER,
        tonic::metadata::AsciiMetadataValue::from(protocol::VERSION),
    );
    status
}

impl From<SpecError> for Status {
    fn from(e: SpecError) -> Status {
        served(code(Category::from(&e)), e.to_string())
    }
}

impl From<HostError> for Status {
    fn from(e: HostError) -> Status {
        served(code(e.category()), e.to_string())
    }
}

/// Every request, before its handler: a client whose protocol version this
/// server does not speak is refused, told which side to upgrade.
pub fn check_protocol(req: Request<()>) -> Result<Request<()>, Status> {
    let sent = req
        .metadata()
        .get(protocol::HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match protocol::check(sent.as_deref()) {
        Ok(()) => Ok(req),
        Err(e) => {
            tracing::warn!(sent = ?sent, error = %e, "request refused: protocol version");
            Err(served(Code::FailedPrecondition, e.to_string()))
        }
    }
}

fn status_to_pb(s: ContainerStatus) -> pb::ContainerInfo {
    pb::ContainerInfo {
        name: s.name,
        id: s.id,
        image: s.image,
        host: s.host,
        state: pb::ContainerState::from(s.state).into(),
        pid: s.pid,
        ip: s.ip,
        actual_addresses: s.actual_addresses,
        actual_addresses_omitted: s.actual_addresses_omitted,
        mac: s.mac,
        bridge: s.bridge,
        port: s.port,
        plugged: s.plugged,
        started_at: s.started_at,
        gateway: s.gateway,
        ip6: s.ip6,
        gateway6: s.gateway6,
        network: pb::NetworkMode::from(s.network).into(),
        sandbox: s.sandbox,
        sandbox_state: pb::ContainerState::from(s.sandbox_state).into(),
        health: s.health,
        exit_code: i32::try_from(s.exit_code).unwrap_or(-1),
        environment: s.environment,
        spec_hash: s.spec_hash,
        oneshot: s.oneshot,
        domain: s.domain,
        service: s.service,
        first_creation: s.first_creation,
        conflict: s.conflict,
    }
}

fn progress_to_pb(p: Progress) -> pb::Event {
    use pb::event::Kind;
    let kind = match p {
        Progress::Step(s) => Kind::Step(s),
        Progress::Warning(s) => Kind::Warning(s),
        Progress::HookOutput { hook, stderr, line } => {
            Kind::HookOutput(pb::HookOutput { hook, stderr, line })
        }
        Progress::HookExit {
            hook,
            code,
            duration,
        } => Kind::HookExit(pb::HookExit {
            hook,
            code,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        }),
    };
    pb::Event { kind: Some(kind) }
}

/// Converts a registration message, naming the container in every error.
pub fn registration_from_pb(r: pb::RegisterRequest) -> Result<Registration, Status> {
    check_name("container name", &r.name)?;
    let bad = |what: String| Status::invalid_argument(format!("container {}: {what}", r.name));
    let ip: Ipv4Addr =
        r.ip.parse()
            .map_err(|_| bad(format!("invalid IP address {:?}", r.ip)))?;
    let ip6: Option<Ipv6Addr> = (!r.ip6.is_empty())
        .then(|| {
            r.ip6
                .parse()
                .map_err(|_| bad(format!("invalid IPv6 address {:?}", r.ip6)))
        })
        .transpose()?;
    let absolute = |what: &str, p: String| {
        let path = std::path::PathBuf::from(&p);
        if path.is_absolute() {
            Ok(path)
        } else {
            Err(bad(format!("{what} {p:?} is not an absolute path")))
        }
    };
    if let Some(d) = &r.dns {
        check_name("dns container", &d.container)?;
    }
    if let Some(p) = &r.puppet {
        check_name("puppet master", &p.master)?;
    }
    let dns = match r.dns {
        Some(d) => Some(DnsTarget {
            hostsfile: absolute("hosts file", d.hostsfile)?,
            container: d.container,
            reload: d.reload,
        }),
        None => None,
    };
    let puppet = match r.puppet {
        Some(p) => Some(PuppetTarget {
            hieradata: absolute("hieradata", p.hieradata)?,
            sitepp: absolute("site.pp", p.sitepp)?,
            master: p.master,
        }),
        None => None,
    };
    Ok(Registration {
        fqdn: if r.fqdn.is_empty() {
            r.name.clone()
        } else {
            r.fqdn
        },
        service: (!r.service.is_empty()).then_some(r.service),
        name: r.name,
        ip,
        ip6,
        dns,
        puppet,
    })
}

/// The audit line of a quick (non-streaming) operation. A `show` that
/// succeeds logs at debug level: `apply` repeats it while it waits for
/// health, and those polls would drown the log. A failure is a warning.
fn audit<T>(
    client: &str,
    container: &str,
    action: &str,
    began: Instant,
    result: &Result<T, HostError>,
) {
    metrics().operation(action, result.is_ok(), began.elapsed());
    match result {
        Ok(_) if action == "show" => {
            tracing::debug!(%client, ?container, action, result = "ok", "operation")
        }
        Ok(_) => tracing::info!(%client, ?container, action, result = "ok", "operation"),
        Err(e) => {
            tracing::warn!(%client, ?container, action, result = "error", error = %e, "operation")
        }
    }
}

/// The most specs one plan request may carry: twice the containers the
/// benchmarks run on one host. Each costs an inspect, and the hashing of
/// its config volumes.
const MAX_PLAN_SPECS: usize = 2_048;

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

/// A container name as a request gives it (see [`is_docker_name`]).
fn check_name(what: &str, name: &str) -> Result<(), Status> {
    if is_docker_name(name) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid {what} {name:?}: a container name is letters, digits, '_', '.' and '-', a letter or digit first, at most 255"
        )))
    }
}

/// The tonic services over one [`Host`] and its change lock.
#[derive(Debug, Clone)]
pub struct HostService {
    host: Arc<Host>,
    policy: SharedPolicy,
    locks: Arc<Locks>,
}

/// A caller allowed to go on: who it is, for the audit line, and its role.
struct Allowed {
    client: String,
    role: Role,
}

impl HostService {
    /// The policy's registry containers, files and names for `who`'s role,
    /// and, for a role held to it, the record of the container on this
    /// host (see `policy::registration::check_record`).
    async fn check_registration(
        &self,
        who: &Allowed,
        action: Action,
        r: &Registration,
    ) -> Result<(), Status> {
        let held = {
            let policy = self.policy();
            policy
                .check_registration(who.role, r)
                .map_err(|e| who.refused(action, &r.name, &e))?;
            policy.registration_held_to_record(who.role)
        };
        if held {
            let record = self.host.record_of(&r.name).await?;
            crate::policy::registration::check_record(who.role, r, &record)
                .map_err(|e| who.refused(action, &r.name, &e))?;
        }
        Ok(())
    }

    /// Leases of the change lock live `lock_ttl` without a renewal.
    pub fn new(host: Arc<Host>, policy: SharedPolicy, lock_ttl: std::time::Duration) -> Self {
        HostService {
            host,
            policy,
            locks: Arc::new(Locks::new(lock_ttl)),
        }
    }

    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the caller's role may ask for `action` on `container`; a
    /// refusal is an audit line and `permission_denied`, naming the
    /// certificate's subject, its role and what it asked for.
    /// Refused too: a change request without the live lease of this
    /// host's change lock (see [`lease::fence`]).
    fn authorize<T>(
        &self,
        req: &Request<T>,
        action: Action,
        container: &str,
    ) -> Result<Allowed, Status> {
        let allowed = self.allow(req, action, container)?;
        lease::fence(&self.locks, req, action).map_err(|e| allowed.fenced(action, container, e))?;
        Ok(allowed)
    }

    /// [`HostService::authorize`] without the lock's fence: the role and
    /// the policy alone.
    fn allow<T>(
        &self,
        req: &Request<T>,
        action: Action,
        container: &str,
    ) -> Result<Allowed, Status> {
        let client = caller(req);
        let role = match role_claim(req) {
            RoleClaim::Known(role) => role,
            claim => {
                let why = match claim {
                    RoleClaim::Revoked => {
                        "it has been revoked (its serial is in the CA's crl.pem): an admin issues a new one with `dockstack certs add-client NAME --role ROLE --force`".to_string()
                    }
                    RoleClaim::Expired => {
                        "it has expired (renew it with `dockstack certs renew NAME`)".to_string()
                    }
                    RoleClaim::Unknown(r) => format!(
                        "its role {r:?} is not one this server knows (admin, operator, viewer)"
                    ),
                    _ => format!(
                        "it carries no dockstack role (a URI SAN {ROLE_URI_PREFIX}<role>: make one with `dockstack certs add-client NAME --role ...`)"
                    ),
                };
                tracing::warn!(target: "audit", %client, role = "none", action = action.name(), ?container, "refused: {why}");
                let what = [action.name(), container].join(" ");
                return Err(Status::permission_denied(format!(
                    "refused: certificate {client} may not {}: {why}",
                    what.trim_end()
                )));
            }
        };
        let allowed = Allowed { client, role };
        self.policy()
            .check_action(role, action)
            .map_err(|r| allowed.refused(action, container, &r))?;
        Ok(allowed)
    }
}

impl Allowed {
    /// The audit line and the status of a refusal by the policy.
    fn refused(&self, action: Action, container: &str, r: &Refusal) -> Status {
        crate::journal::journal().record(
            container,
            "refused",
            format!(
                "{} (role {}) may not {}: {r}",
                self.client,
                self.role,
                action.name()
            ),
        );
        tracing::warn!(
            target: "audit",
            client = %self.client,
            role = %self.role,
            action = action.name(),
            ?container,
            key = %r.key,
            rule = %r.rule,
            "refused"
        );
        Status::permission_denied(format!(
            "refused: {} (role {}) may not {} {container}: {r}",
            self.client,
            self.role,
            action.name()
        ))
    }
}

impl HostService {
    /// Runs `op` in its own task, so a client that goes away does not
    /// cancel it halfway, and streams its progress and result.
    /// A request that names one container: `action` allowed to its
    /// caller, meant for this host, the name checked; the caller and name.
    fn container_ref(
        &self,
        req: Request<pb::ContainerRef>,
        action: Action,
    ) -> Result<(String, String), Status> {
        let client = self.authorize(&req, action, &req.get_ref().name)?.client;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_name("container name", &req.name)?;
        Ok((client, req.name))
    }

    fn stream_op<F, Fut>(
        &self,
        client: String,
        action: &'static str,
        container: String,
        op: F,
    ) -> EventStream
    where
        F: FnOnce(Arc<Host>, Reporter) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<ContainerStatus>, HostError>> + Send + 'static,
    {
        let host = Arc::clone(&self.host);
        spawn_op(client, action, container, move |reporter| {
            op(host, reporter)
        })
    }
}

/// The message of a panic's payload, as `panic!` formatted it.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Spawns the operation and turns its progress and outcome into a stream.
/// A panic is caught and ends the stream with `internal`: without that the
/// dropped sender would end it as if all went well, with no result.
fn spawn_op<F, Fut>(client: String, action: &'static str, container: String, op: F) -> EventStream
where
    F: FnOnce(Reporter) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<ContainerStatus>, HostError>> + Send + 'static,
{
    // Progress through a bounded channel: a slow client slows the output
    // of hooks down instead of filling the server's memory. The result
    // comes last, once the operation (and with it the sender) is done.
    let (progress_tx, progress_rx) = mpsc::channel::<Progress>(CHANNEL_CAPACITY);
    let (result_tx, result_rx) = tokio::sync::oneshot::channel::<Result<pb::Event, Status>>();
    let reporter = Reporter::channel(progress_tx);
    tokio::spawn(async move {
        let began = Instant::now();
        // Unwind safety holds: the future owns what it touches, and nothing
        // of it is used after a panic (the container lock is a tokio mutex,
        // which a panic does not poison).
        let result = AssertUnwindSafe(async move { op(reporter).await })
            .catch_unwind()
            .await;
        let took = began.elapsed();
        let duration_ms = took.as_secs_f64() * 1e3;
        metrics().operation(action, matches!(result, Ok(Ok(_))), took);
        let last = match result {
            Ok(Ok(status)) => {
                tracing::info!(%client, ?container, action, duration_ms, result = "ok", "operation");
                status.map(|s| {
                    Ok(pb::Event {
                        kind: Some(pb::event::Kind::Done(status_to_pb(s))),
                    })
                })
            }
            Ok(Err(e)) => {
                tracing::warn!(%client, ?container, action, duration_ms, result = "error", error = %e, "operation");
                Some(Err(e.into()))
            }
            Err(payload) => {
                let msg = format!(
                    "internal error: {action} of {container} panicked: {}",
                    panic_message(payload.as_ref())
                );
                tracing::error!(%client, ?container, action, duration_ms, result = "panic", "{msg}");
                Some(Err(Status::internal(msg)))
            }
        };
        if let Some(last) = last {
            let _ = result_tx.send(last);
        }
    });
    let progress = ReceiverStream::new(progress_rx).map(|p| Ok(progress_to_pb(p)));
    let last = futures::stream::once(result_rx).filter_map(|r| async move { r.ok() });
    Box::pin(progress.chain(last))
}

#[tonic::async_trait]
impl pb::container_host_server::ContainerHost for HostService {
    type RunStream = EventStream;
    type StartStream = EventStream;
    type StopStream = EventStream;
    type RestartStream = EventStream;
    type DestroyStream = EventStream;
    type RegisterStream = EventStream;
    type DeregisterStream = EventStream;
    type ExecStream = EventStream;
    type LogsStream = streams::LogStream;
    type ExecSessionStream = streams::SessionStream;
    type EventsStream = streams::HostEventStream;

    async fn logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        self.logs_stream(req).await.map(Response::new)
    }

    async fn exec_session(
        &self,
        req: Request<tonic::Streaming<pb::ExecSessionInput>>,
    ) -> Result<Response<Self::ExecSessionStream>, Status> {
        self.session_stream(req).await.map(Response::new)
    }

    async fn events(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        self.events_stream(req).await.map(Response::new)
    }

    async fn run(&self, req: Request<pb::RunRequest>) -> Result<Response<EventStream>, Status> {
        let name = req
            .get_ref()
            .spec
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let who = self.authorize(&req, Action::Run, &name)?;
        if req.get_ref().replace {
            self.authorize(&req, Action::Destroy, &name)?;
        }
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let spec = ContainerSpec::try_from(
            req.spec
                .ok_or_else(|| Status::invalid_argument("no spec"))?,
        )?;
        let first = FirstCreation::from_request(&spec.name, req.first_creation)?;
        let policy = self.policy();
        policy
            .check_spec(who.role, &spec)
            .map_err(|r| who.refused(Action::Run, &name, &r))?;
        // What Docker is given for a restricted role: canonical sources.
        let pinned = policy
            .pin_volumes(who.role, &spec)
            .map_err(|r| who.refused(Action::Run, &name, &r))?;
        let client = who.client;
        let (op, replace) = if req.replace {
            ("replace", true)
        } else {
            ("run", false)
        };
        Ok(Response::new(self.stream_op(
            client,
            op,
            name,
            move |host, reporter| async move {
                if replace {
                    host.replace(&spec, pinned.as_deref(), &reporter)
                        .await
                        .map(Some)
                } else {
                    host.run(&spec, first.as_ref(), pinned.as_deref(), &reporter)
                        .await
                        .map(Some)
                }
            },
        )))
    }

    async fn start(&self, req: Request<pb::ContainerRef>) -> Result<Response<EventStream>, Status> {
        let (client, name) = self.container_ref(req, Action::Start)?;
        Ok(Response::new(self.stream_op(
            client,
            "start",
            name.clone(),
            |host, reporter| async move { host.start(&name, &reporter).await.map(Some) },
        )))
    }

    async fn restart(
        &self,
        req: Request<pb::ContainerRef>,
    ) -> Result<Response<EventStream>, Status> {
        let (client, name) = self.container_ref(req, Action::Restart)?;
        Ok(Response::new(self.stream_op(
            client,
            "restart",
            name.clone(),
            |host, reporter| async move { host.restart(&name, &reporter).await.map(Some) },
        )))
    }

    async fn stop(&self, req: Request<pb::ContainerRef>) -> Result<Response<EventStream>, Status> {
        let (client, name) = self.container_ref(req, Action::Stop)?;
        Ok(Response::new(self.stream_op(
            client,
            "stop",
            name.clone(),
            |host, reporter| async move { host.stop(&name, &reporter).await.map(Some) },
        )))
    }

    async fn destroy(
        &self,
        req: Request<pb::DestroyRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let who = self.authorize(&req, Action::Destroy, &req.get_ref().name)?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_name("container name", &req.name)?;
        let name = req.name;
        let hooks = req.postdestroy;
        self.policy()
            .check_hooks(who.role, "postdestroy", &hooks)
            .map_err(|r| who.refused(Action::Destroy, &name, &r))?;
        let client = who.client;
        Ok(Response::new(
            self.stream_op(
                client,
                "destroy",
                name.clone(),
                |host, reporter| async move {
                    host.destroy(&name, &hooks, &reporter).await.map(|()| None)
                },
            ),
        ))
    }

    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let who = self.authorize(&req, Action::Register, &req.get_ref().name)?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let r = registration_from_pb(req)?;
        self.check_registration(&who, Action::Register, &r).await?;
        let client = who.client;
        Ok(Response::new(self.stream_op(
            client,
            "register",
            r.name.clone(),
            |host, reporter| async move { host.register(&r, &reporter).await.map(|()| None) },
        )))
    }

    async fn deregister(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let who = self.authorize(&req, Action::Deregister, &req.get_ref().name)?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let r = registration_from_pb(req)?;
        self.check_registration(&who, Action::Deregister, &r)
            .await?;
        let client = who.client;
        Ok(Response::new(self.stream_op(
            client,
            "deregister",
            r.name.clone(),
            |host, reporter| async move { host.deregister(&r, &reporter).await.map(|()| None) },
        )))
    }

    async fn exec(&self, req: Request<pb::ExecRequest>) -> Result<Response<EventStream>, Status> {
        let who = self.authorize(&req, Action::Exec, &req.get_ref().container)?;
        self.policy()
            .check_exec(who.role, &req.get_ref().container, &req.get_ref().command)
            .map_err(|r| who.refused(Action::Exec, &req.get_ref().container, &r))?;
        let client = who.client;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_name("container name", &req.container)?;
        let name = req.container;
        let (command, success) = (req.command, req.success_codes);
        Ok(Response::new(self.stream_op(
            client,
            "exec",
            name.clone(),
            |host, reporter| async move {
                host.exec(&name, &command, &success, &reporter)
                    .await
                    .map(|()| None)
            },
        )))
    }

    async fn show(
        &self,
        req: Request<pb::ContainerRef>,
    ) -> Result<Response<pb::ContainerInfo>, Status> {
        let client = self
            .authorize(&req, Action::Show, &req.get_ref().name)?
            .client;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        check_name("container name", &req.name)?;
        let began = Instant::now();
        let result = self.host.show(&req.name).await;
        audit(&client, &req.name, "show", began, &result);
        Ok(Response::new(status_to_pb(result?)))
    }

    async fn plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        let client = self.authorize(&req, Action::List, "")?.client;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        if req.specs.len() > MAX_PLAN_SPECS {
            return Err(Status::invalid_argument(format!(
                "{} specs in one plan, at most {MAX_PLAN_SPECS}",
                req.specs.len()
            )));
        }
        // One spec per container: a request naming one many times would
        // have it inspected, and its config volumes hashed, each time.
        let mut named = std::collections::HashSet::new();
        for spec in &req.specs {
            if !named.insert(spec.name.as_str()) {
                check_name("container name", &spec.name)?;
                return Err(Status::invalid_argument(format!(
                    "container {}: named by more than one spec of the plan",
                    spec.name
                )));
            }
        }
        let specs = req
            .specs
            .into_iter()
            .map(ContainerSpec::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let began = Instant::now();
        let result = self.host.plan(&specs).await;
        audit(&client, "", "plan", began, &result);
        let plan = result?;
        Ok(Response::new(pb::PlanResponse {
            entries: plan
                .entries
                .into_iter()
                .map(|e| pb::PlanEntry {
                    name: e.name,
                    found: e.found.map(status_to_pb),
                    differences: e.differences,
                    image_present: e.image_present,
                    config_changed: e.config_changed,
                })
                .collect(),
            unrequested: plan.unrequested.into_iter().map(status_to_pb).collect(),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let client = self.authorize(&req, Action::List, "")?.client;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let began = Instant::now();
        let result = self.host.list().await;
        audit(&client, "", "list", began, &result);
        let containers = result?.into_iter().map(status_to_pb).collect();
        Ok(Response::new(pb::ListResponse { containers }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_operation_ends_its_stream_with_internal_naming_the_container() {
        let mut stream = spawn_op("test".into(), "run", "web1".into(), |reporter| async move {
            reporter.step("about to fail".to_string());
            crate::fault::point("run", "web1");
            panic!("boom");
        });
        let first = stream.next().await.unwrap().unwrap();
        assert!(matches!(first.kind, Some(pb::event::Kind::Step(_))));
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
        assert_eq!(err.message(), "internal error: run of web1 panicked: boom");
        assert!(stream.next().await.is_none());
    }
}
