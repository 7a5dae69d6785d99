//! Driving the hosts: each container's request goes to its host, hosts run
//! in parallel, containers others depend on go first (last on destroy).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dockstack_proto as pb;
use futures::StreamExt;
use tokio::sync::{Mutex, Semaphore};
use tonic::transport::Channel;

use crate::connect::{ConnectError, Connector};
use crate::environment::{Container, Environment};

mod registration;

type Client = pb::container_host_client::ContainerHostClient<Channel>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    Destroy,
    Start,
    Stop,
    Show,
    /// DNS and Puppet registration alone, without touching the container.
    Register,
    Deregister,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Destroy => "destroy",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Show => "show",
            Action::Register => "register",
            Action::Deregister => "deregister",
        }
    }
}

/// The result for one container.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub container: String,
    pub host: String,
    pub result: Result<Option<pb::ContainerInfo>, String>,
}

/// Where each host is reached; `--hostip`/`--hostport` override the file.
#[derive(Debug, Clone, Default)]
pub struct HostOverride {
    pub ip: Option<String>,
    pub port: Option<u16>,
}

/// Receives progress lines as they come.
pub trait Printer: Send + Sync {
    fn line(&self, container: &str, text: &str);
    /// A container's action has ended.
    fn done(&self, _container: &str, _ok: bool, _text: &str) {}
}

/// The request message for one container of the environment.
pub fn spec_of(c: &Container) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone(),
        ip: c.ip.to_string(),
        prefix_len: u32::from(c.mask),
        gateway: c.gateway.map(|g| g.to_string()).unwrap_or_default(),
        dns: c.dns.iter().map(ToString::to_string).collect(),
        domain: c.domain.clone().unwrap_or_default(),
        bridge: c.bridge.clone(),
        volumes: c.volumes.clone(),
        running: c.state,
        precreation: c.precreation.clone(),
        postcreation: c.postcreation.clone(),
        postdestroy: c.postdestroy.clone(),
        mac: c.mac.clone().unwrap_or_default(),
        mtu: c.mtu.unwrap_or(0),
        vlan: c.vlan.map(u32::from).unwrap_or(0),
        env: c.env.clone().into_iter().collect(),
        command: c.command.clone(),
        privileged: c.privileged,
        cap_add: c.cap_add.clone(),
        restart: c.restart.clone().unwrap_or_default(),
    }
}

/// Orders containers into levels: a container comes after the registration
/// containers and everything in its `after` list, and the Puppet master after
/// the DNS container (it registers there). Returns level per name.
pub fn levels(env: &Environment) -> HashMap<String, usize> {
    let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
    let registry: Vec<&str> = [
        env.registration.dns.as_ref().map(|d| d.container.as_str()),
        env.registration.puppet.as_ref().map(|p| p.master.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for c in &env.containers {
        let mut d: Vec<&str> = c.after.iter().map(String::as_str).collect();
        if !registry.contains(&c.name.as_str()) {
            d.extend(registry.iter().copied());
        } else if let (Some(dns), Some(p)) = (&env.registration.dns, &env.registration.puppet)
            && c.name == p.master
            && p.master != dns.container
        {
            d.push(dns.container.as_str());
        }
        deps.insert(c.name.as_str(), d);
    }
    let mut level: HashMap<String, usize> = HashMap::new();
    // Longest-path levels; a cycle is cut by the bound on rounds.
    for _ in 0..=env.containers.len() {
        let mut changed = false;
        for c in &env.containers {
            let l = deps[c.name.as_str()]
                .iter()
                .filter_map(|d| level.get(*d).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            if level.get(&c.name) != Some(&l) {
                level.insert(c.name.clone(), l);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    level
}

/// Lazily connected clients, one per host; a failed connect is remembered
/// so every container of that host reports it without waiting again.
struct Clients {
    connector: Connector,
    overrides: HostOverride,
    env: Arc<Environment>,
    cache: Mutex<HashMap<String, Result<Client, String>>>,
}

impl Clients {
    async fn get(&self, host: &str) -> Result<Client, String> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(host) {
            return c.clone();
        }
        let entry = self
            .env
            .host(host)
            .ok_or_else(|| format!("host {host} is not in containerhosts"));
        let result = match entry {
            Ok(h) => {
                let ip = self.overrides.ip.clone().unwrap_or_else(|| h.ip.clone());
                let port = self.overrides.port.unwrap_or(h.port);
                self.connector
                    .connect(host, &ip, port)
                    .await
                    .map_err(|e: ConnectError| e.to_string())
            }
            Err(e) => Err(e),
        };
        cache.insert(host.to_string(), result.clone());
        result
    }
}

/// Explains a gRPC status from a server, with TLS hints.
pub fn explain_status(s: &tonic::Status, insecure: bool) -> String {
    use std::error::Error as _;
    if matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) {
        if let Some(src) = s.source() {
            return crate::connect::explain_transport_error(src, !insecure);
        }
        return crate::connect::explain_transport_error(s, !insecure);
    }
    s.message().to_string()
}

async fn one(
    client: &mut Client,
    action: Action,
    c: &Container,
    printer: &dyn Printer,
    insecure: bool,
) -> Result<Option<pb::ContainerInfo>, String> {
    let host = c.host.clone();
    let explain = |s: tonic::Status| explain_status(&s, insecure);
    let stream = match action {
        Action::Show => {
            let info = client
                .show(pb::ContainerRef {
                    host,
                    name: c.name.clone(),
                })
                .await
                .map_err(explain)?;
            return Ok(Some(info.into_inner()));
        }
        Action::Run => client
            .run(pb::RunRequest {
                host,
                spec: Some(spec_of(c)),
            })
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Start => client
            .start(pb::ContainerRef {
                host,
                name: c.name.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Stop => client
            .stop(pb::ContainerRef {
                host,
                name: c.name.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner(),
        Action::Destroy => client
            .destroy(pb::DestroyRequest {
                host,
                name: c.name.clone(),
                postdestroy: c.postdestroy.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner(),
        // Registration alone: nothing to do on the container's host.
        Action::Register | Action::Deregister => return Ok(None),
    };
    follow(stream, &c.name, printer, insecure).await
}

/// Prints the progress of one streamed operation under `container`'s name;
/// the container's state if the operation ends with one.
async fn follow(
    mut stream: tonic::Streaming<pb::Event>,
    container: &str,
    printer: &dyn Printer,
    insecure: bool,
) -> Result<Option<pb::ContainerInfo>, String> {
    let mut done = None;
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|s| explain_status(&s, insecure))?;
        use pb::event::Kind;
        match ev.kind {
            Some(Kind::Step(s)) => printer.line(container, &s),
            Some(Kind::Warning(s)) => printer.line(container, &format!("warning: {s}")),
            Some(Kind::HookOutput(o)) => printer.line(container, &format!("| {}", o.line)),
            Some(Kind::HookExit(x)) => printer.line(
                container,
                &format!("hook exited {} after {} ms", x.code, x.duration_ms),
            ),
            Some(Kind::Done(info)) => done = Some(info),
            None => {}
        }
    }
    Ok(done)
}

/// Applies `action` to `selected`, hosts in parallel, at most `jobs`
/// containers at once per host, level by level.
pub async fn apply(
    env: Arc<Environment>,
    selected: Vec<Container>,
    action: Action,
    connector: Connector,
    overrides: HostOverride,
    jobs: usize,
    printer: Arc<dyn Printer>,
) -> Vec<Outcome> {
    let insecure = connector.is_insecure();
    let clients = Arc::new(Clients {
        connector,
        overrides,
        env: Arc::clone(&env),
        cache: Mutex::new(HashMap::new()),
    });
    let level_of = levels(&env);
    let mut by_level: BTreeMap<usize, Vec<Container>> = BTreeMap::new();
    for c in selected {
        by_level
            .entry(level_of.get(&c.name).copied().unwrap_or(0))
            .or_default()
            .push(c);
    }
    let mut order: Vec<Vec<Container>> = by_level.into_values().collect();
    if matches!(action, Action::Destroy | Action::Stop | Action::Deregister) {
        order.reverse();
    }
    let mut outcomes = Vec::new();
    for level in order {
        let mut by_host: BTreeMap<String, Vec<Container>> = BTreeMap::new();
        for c in level {
            by_host.entry(c.host.clone()).or_default().push(c);
        }
        let mut tasks = Vec::new();
        for (host, containers) in by_host {
            let clients = Arc::clone(&clients);
            let printer = Arc::clone(&printer);
            let limit = Arc::new(Semaphore::new(jobs.max(1)));
            tasks.push(tokio::spawn(async move {
                let client = clients.get(&host).await;
                let mut inner = Vec::new();
                for c in containers {
                    let client = client.clone();
                    let clients = Arc::clone(&clients);
                    let printer = Arc::clone(&printer);
                    let limit = Arc::clone(&limit);
                    let host = host.clone();
                    inner.push(tokio::spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        let result = registration::act(
                            &clients,
                            client,
                            action,
                            &c,
                            printer.as_ref(),
                            insecure,
                        )
                        .await;
                        match &result {
                            Ok(_) => printer.done(&c.name, true, action.name()),
                            Err(e) => printer.done(&c.name, false, e),
                        }
                        Outcome {
                            container: c.name.clone(),
                            host,
                            result,
                        }
                    }));
                }
                let mut out = Vec::new();
                for t in inner {
                    if let Ok(o) = t.await {
                        out.push(o);
                    }
                }
                out
            }));
        }
        for t in tasks {
            if let Ok(mut o) = t.await {
                outcomes.append(&mut o);
            }
        }
    }
    outcomes
}

/// Every managed container of every host, with the hosts that failed.
pub async fn list_all(
    env: Arc<Environment>,
    connector: Connector,
    overrides: HostOverride,
) -> (Vec<pb::ContainerInfo>, Vec<(String, String)>) {
    let clients = Arc::new(Clients {
        connector,
        overrides,
        env: Arc::clone(&env),
        cache: Mutex::new(HashMap::new()),
    });
    let insecure = clients.connector.is_insecure();
    let tasks: Vec<_> = env
        .hosts
        .iter()
        .map(|h| {
            let clients = Arc::clone(&clients);
            let name = h.name.clone();
            tokio::spawn(async move {
                let result = match clients.get(&name).await {
                    Ok(mut c) => c
                        .list(pb::ListRequest { host: name.clone() })
                        .await
                        .map(|r| r.into_inner().containers)
                        .map_err(|s| explain_status(&s, insecure)),
                    Err(e) => Err(e),
                };
                (name, result)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for t in tasks {
        if let Ok((host, r)) = t.await {
            match r {
                Ok(mut list) => all.append(&mut list),
                Err(e) => failed.push((host, e)),
            }
        }
    }
    (all, failed)
}
