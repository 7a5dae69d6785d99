//! Asking the servers: one connection per host, made once and shared by
//! its containers, the calls and their event streams, and what a failed
//! status means.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dockstack_proto as pb;
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::{Action, HostOverride};
use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::progress::{Printer, Progress};

pub(super) type Client = crate::connect::HostClient;

/// A failed call, before it is told whose action it was.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(super) struct Failure {
    pub code: Option<tonic::Code>,
    pub message: String,
}

/// How long one call may take unless `--timeout` sets it
/// ([`Connector::deadline`]): [`QUICK_DEADLINE`] for a look-up and
/// [`OPERATION_DEADLINE`] for an operation, whose hooks may each take the
/// server's hook timeout.
pub const QUICK_DEADLINE: Duration = Duration::from_secs(30);
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// `call`, given up after its deadline with a failure that says so.
async fn within<T>(
    conn: &Connector,
    what: &str,
    quick: bool,
    call: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let limit = conn.deadline().unwrap_or(if quick {
        QUICK_DEADLINE
    } else {
        OPERATION_DEADLINE
    });
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(Failure::new(format!(
            "{what}: no answer within {} s (--timeout)",
            limit.as_secs()
        )))
    })
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            code: None,
            message: message.into(),
        }
    }

    fn status(s: &tonic::Status, conn: &Connector) -> Self {
        Failure {
            code: Some(s.code()),
            message: conn.explain_status(s),
        }
    }

    /// The same failure (and code) with its message put in context.
    pub fn context(self, f: impl FnOnce(&str) -> String) -> Self {
        Failure {
            message: f(&self.message),
            code: self.code,
        }
    }
}

/// The request message for one container of the environment.
pub fn spec_of(c: &Container) -> pb::ContainerSpec {
    let r = &c.runtime;
    pb::ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone(),
        ip: c.ip.to_string(),
        prefix_len: u32::from(c.mask),
        gateway: c.gateway.map(|g| g.to_string()).unwrap_or_default(),
        ip6: c.ip6.map(|n| n.to_string()).unwrap_or_default(),
        gateway6: c.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        dns: c.dns.iter().map(ToString::to_string).collect(),
        domain: c.domain.clone().unwrap_or_default(),
        bridge: c.bridge.clone(),
        volumes: c.volumes.clone(),
        running: c.state,
        precreation: c.precreation.clone(),
        postcreation: c.postcreation.clone(),
        postdestroy: c.postdestroy.clone(),
        mac: c.mac.map(|m| m.to_string()).unwrap_or_default(),
        mtu: c.mtu.unwrap_or(0),
        vlan: c.vlan.map(u32::from).unwrap_or(0),
        env: c.env.clone().into_iter().collect(),
        command: c.command.clone(),
        privileged: c.privileged,
        cap_add: c.cap_add.clone(),
        restart: c.restart.map(|r| r.to_string()).unwrap_or_default(),
        allowed_addresses: c
            .allowed_addresses
            .iter()
            .map(ToString::to_string)
            .collect(),
        healthcheck: c.healthcheck.as_ref().map(|h| pb::Healthcheck {
            test: h.test.clone(),
            interval_ms: h.interval_ms,
            timeout_ms: h.timeout_ms,
            retries: h.retries,
            start_period_ms: h.start_period_ms,
        }),
        oneshot: c.oneshot,
        // Set by the caller, which knows the environment file.
        environment: String::new(),
        service: c.service.clone().unwrap_or_default(),
        config_volumes: c
            .config_volumes
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        stop_signal: r.stop_signal.clone().unwrap_or_default(),
        stop_grace_secs: r.stop_grace_secs,
        prestop: r.prestop.clone(),
        sysctls: r.sysctls.clone().into_iter().collect(),
        ulimits: r
            .ulimits
            .iter()
            .map(|(name, (soft, hard))| pb::Ulimit {
                name: name.clone(),
                soft: *soft,
                hard: *hard,
            })
            .collect(),
        tmpfs: r.tmpfs.clone().into_iter().collect(),
        user: r.user.clone().unwrap_or_default(),
        memory_bytes: r.memory_bytes.unwrap_or(0),
        nano_cpus: r.nano_cpus.unwrap_or(0),
        pids_limit: r.pids_limit.unwrap_or(0),
        init: r.init,
    }
}

/// The first-creation settings a Run of `c` carries: the server uses them
/// only if this Run makes the container (see `apply`'s recreate, which
/// leaves them out).
pub fn first_creation_of(c: &Container) -> Option<pb::FirstCreation> {
    c.first_creation.as_ref().map(|f| pb::FirstCreation {
        env: f.env.clone().into_iter().collect(),
        command: f.command.clone(),
    })
}

/// Lazily connected clients, one per host. Each host has its own cell, so
/// hosts connect in parallel (an unreachable one holds up only its own
/// containers), and a failed connect is remembered so every container of
/// that host reports it without waiting again.
pub(super) struct Clients {
    connector: Connector,
    overrides: HostOverride,
    pub env: Arc<Environment>,
    /// What containers record as their environment file.
    pub environment: String,
    cells: HashMap<String, OnceCell<Result<Client, Failure>>>,
}

impl Clients {
    pub fn new(env: Arc<Environment>, connector: Connector, overrides: HostOverride) -> Self {
        let cells = env
            .hosts
            .iter()
            .map(|h| (h.name.clone(), OnceCell::new()))
            .collect();
        Clients {
            connector,
            overrides,
            environment: super::environment_name(&env),
            env,
            cells,
        }
    }

    /// The settings every call to a host is made with.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    pub async fn get(&self, host: &str) -> Result<Client, Failure> {
        let (Some(cell), Some(h)) = (self.cells.get(host), self.env.host(host)) else {
            return Err(Failure::new(format!(
                "host {host} is not in containerhosts"
            )));
        };
        cell.get_or_init(|| async {
            let (ip, port) = self.overrides.address(h);
            self.connector
                .connect_leased(host, &ip, port)
                .await
                .map_err(|e| Failure::new(e.to_string()))
        })
        .await
        .clone()
    }
}

/// `action` on `c` alone, on its host: the call and its stream. A run or
/// start whose stream ends without the container's state has not
/// finished (the server's task died), so it is a failure.
pub(super) async fn operate(
    client: &mut Client,
    action: Action,
    c: &Container,
    environment: &str,
    printer: &dyn Printer,
    conn: &Connector,
) -> Result<Option<pb::ContainerInfo>, Failure> {
    let what = format!("{} of {} on host {}", action.name(), c.name, c.host);
    let quick = action == Action::Show;
    within(
        conn,
        &what,
        quick,
        operate_now(client, action, c, environment, printer, conn),
    )
    .await
}

async fn operate_now(
    client: &mut Client,
    action: Action,
    c: &Container,
    environment: &str,
    printer: &dyn Printer,
    conn: &Connector,
) -> Result<Option<pb::ContainerInfo>, Failure> {
    let host = c.host.clone();
    let explain = |s: tonic::Status| Failure::status(&s, conn);
    let reference = || pb::ContainerRef {
        host: host.clone(),
        name: c.name.clone(),
    };
    let stream = match action {
        Action::Show => {
            let info = client.show(reference()).await.map_err(explain)?;
            return Ok(Some(info.into_inner()));
        }
        Action::Run | Action::Replace => client
            .run(pb::RunRequest {
                host: host.clone(),
                spec: Some(pb::ContainerSpec {
                    environment: environment.to_string(),
                    ..spec_of(c)
                }),
                first_creation: first_creation_of(c),
                replace: action == Action::Replace,
            })
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Start => client
            .start(reference())
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Restart => client
            .restart(reference())
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Stop => client
            .stop(reference())
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Destroy => client
            .destroy(pb::DestroyRequest {
                host: host.clone(),
                name: c.name.clone(),
                postdestroy: c.postdestroy.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner(),
        // Registration alone: nothing to do on the container's host.
        Action::Register | Action::Deregister => return Ok(None),
    };
    let done = follow(stream, &c.name, printer, conn).await?;
    if done.is_none()
        && matches!(
            action,
            Action::Run | Action::Replace | Action::Start | Action::Restart
        )
    {
        return Err(Failure::new(format!(
            "the server on host {} ended the {} of {} without its result (did its task fail? see the server's log)",
            c.host,
            action.name(),
            c.name
        )));
    }
    Ok(done)
}

/// Whether `c` exists on its host already.
pub(super) async fn exists(
    client: &mut Client,
    c: &Container,
    conn: &Connector,
) -> Result<bool, Failure> {
    let what = format!("show of {} on host {}", c.name, c.host);
    let asked = match tokio::time::timeout(
        conn.deadline().unwrap_or(QUICK_DEADLINE),
        client.show(pb::ContainerRef {
            host: c.host.clone(),
            name: c.name.clone(),
        }),
    )
    .await
    {
        Ok(asked) => asked,
        Err(_) => {
            return Err(Failure::new(format!(
                "{what}: no answer in time (--timeout)"
            )));
        }
    };
    match asked {
        Ok(_) => Ok(true),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
        Err(s) => Err(Failure::status(&s, conn)),
    }
}

/// Registers (`add`) or deregisters with `req`, progress under `name`.
pub(super) async fn register(
    client: &mut Client,
    add: bool,
    req: pb::RegisterRequest,
    name: &str,
    printer: &dyn Printer,
    conn: &Connector,
) -> Result<(), Failure> {
    let what = format!("registration of {name}");
    within(conn, &what, false, async {
        let stream = if add {
            client.register(req).await
        } else {
            client.deregister(req).await
        }
        .map_err(|s| Failure::status(&s, conn))?
        .into_inner();
        follow(stream, name, printer, conn).await.map(drop)
    })
    .await
}

/// Runs `req`'s command in its container, progress under `name`.
pub(super) async fn exec(
    client: &mut Client,
    req: pb::ExecRequest,
    name: &str,
    printer: &dyn Printer,
    conn: &Connector,
) -> Result<(), Failure> {
    let what = format!("{:?} in {}", req.command, req.container);
    within(conn, &what, false, async {
        let stream = client
            .exec(req)
            .await
            .map_err(|s| Failure::status(&s, conn))?
            .into_inner();
        follow(stream, name, printer, conn).await.map(drop)
    })
    .await
}

/// Every managed container of `host`.
pub(super) async fn list(clients: &Clients, host: &str) -> Result<Vec<pb::ContainerInfo>, Failure> {
    let mut client = clients.get(host).await?;
    within(
        &clients.connector,
        &format!("list of host {host}"),
        true,
        async {
            client
                .list(pb::ListRequest {
                    host: host.to_string(),
                })
                .await
                .map(|r| r.into_inner().containers)
                .map_err(|s| Failure::status(&s, &clients.connector))
        },
    )
    .await
}

/// Hands the progress of one streamed operation to the printer under
/// `container`'s name; the container's state if the operation ends with one.
async fn follow(
    mut stream: tonic::Streaming<pb::Event>,
    container: &str,
    printer: &dyn Printer,
    conn: &Connector,
) -> Result<Option<pb::ContainerInfo>, Failure> {
    let mut done = None;
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|s| Failure::status(&s, conn))?;
        use pb::event::Kind;
        let event = match &ev.kind {
            Some(Kind::Step(s)) => Progress::Step(s),
            Some(Kind::Warning(s)) => Progress::Warning(s),
            Some(Kind::HookOutput(o)) => Progress::HookOutput(&o.line),
            Some(Kind::HookExit(x)) => Progress::HookExit {
                code: x.code,
                duration_ms: x.duration_ms,
            },
            Some(Kind::Done(info)) => {
                done = Some(info.clone());
                continue;
            }
            None => continue,
        };
        printer.progress(container, event);
    }
    Ok(done)
}

/// What `host` runs of `specs`, and what else it runs; see the Plan call.
pub(super) async fn plan(
    clients: &Clients,
    host: &str,
    specs: Vec<pb::ContainerSpec>,
) -> Result<pb::PlanResponse, Failure> {
    let mut client = clients.get(host).await?;
    within(
        &clients.connector,
        &format!("plan of host {host}"),
        true,
        async {
            client
                .plan(pb::PlanRequest {
                    host: host.to_string(),
                    specs,
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| Failure::status(&s, &clients.connector))
        },
    )
    .await
}

/// The state of container `name` on `host`.
pub(super) async fn show(
    clients: &Clients,
    host: &str,
    name: &str,
) -> Result<pb::ContainerInfo, Failure> {
    let mut client = clients.get(host).await?;
    within(
        &clients.connector,
        &format!("show of {name} on host {host}"),
        true,
        async {
            client
                .show(pb::ContainerRef {
                    host: host.to_string(),
                    name: name.to_string(),
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| Failure::status(&s, &clients.connector))
        },
    )
    .await
}
