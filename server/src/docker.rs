//! The Docker side of the server through bollard: create, start, stop,
//! restart, remove, inspect and list the containers this host manages
//! (sandboxes and applications), build the pause image, follow container
//! events; `exec` follows their output and runs commands in them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptions, EventsOptions, ListContainersOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use dockstack_types::resources;
use futures::{Stream, StreamExt};

use crate::envkey::EnvKey;
use crate::policy::volumes::OtherMount;
use crate::record;
use crate::spec::{self, ContainerSpec, FirstCreation};

mod answer;
mod exec;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach dockerd at {uri}: {source}")]
    Connect {
        uri: String,
        #[source]
        source: BollardError,
    },
    /// A call Docker did not answer within `--docker-timeout`, or one made
    /// while it still has not answered the last (see `answer`).
    #[error("Docker ({uri}) did not answer within {secs} s")]
    NoAnswer { uri: String, secs: u64 },
    #[error("image {image} not found (no registry is used: build or load it there)")]
    NoImage { image: String },
    #[error("container {0} not found")]
    NotFound(String),
    #[error("container name {name} is taken by a container that dockstack does not manage")]
    NameTaken { name: String },
    #[error("docker build {image}: {message}")]
    Build { image: String, message: String },
    #[error("docker {op} {container}: {source}")]
    Api {
        op: &'static str,
        container: String,
        #[source]
        source: BollardError,
    },
    /// A call made on a task of its own (a replacement's stop) that ended
    /// without its answer.
    #[error("docker {op} {container}: {message}")]
    Task {
        op: &'static str,
        container: String,
        message: String,
    },
}

/// What the server needs to know of one container.
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    pub id: String,
    pub name: String,
    pub image: String,
    pub running: bool,
    pub status: String,
    pub pid: u32,
    pub started_at: String,
    pub labels: HashMap<String, String>,
    /// Host-side sources of the container's mounts (binds and volumes).
    pub mounts: Vec<std::path::PathBuf>,
    /// Docker's name of its restart policy; empty for none.
    pub restart_policy: String,
    /// Docker is about to start it again (a restart policy's back-off).
    pub restarting: bool,
    /// Docker's health status; empty without a healthcheck.
    pub health: String,
    /// The status it exited with (when it has).
    pub exit_code: i64,
    /// Its entrypoint is the gate (`crate::gate`): whatever starts it, its
    /// own program runs only once its address is in its netns.
    pub gated: bool,
}

/// One container of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub name: String,
    pub labels: HashMap<String, String>,
}

impl Inspected {
    /// Whether Docker brings it back by itself after it exits (restart
    /// policy other than `no`).
    pub fn restarts_itself(&self) -> bool {
        !matches!(self.restart_policy.as_str(), "" | "no")
    }

    pub fn is_managed(&self) -> bool {
        record::is_managed(&self.labels)
    }

    pub fn host(&self) -> Option<&str> {
        record::host(&self.labels)
    }
}

fn status_code(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// How long a call to Docker that a request waits on may take unless
/// `--docker-timeout` says otherwise: below the client's deadline for a
/// look-up (30 s), so that the client hears that Docker is the cause.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
    /// The endpoint, as errors name it.
    uri: String,
    /// How long one call may take (`--docker-timeout`).
    deadline: Duration,
    answering: Arc<answer::Answering>,
    host_id: String,
    /// What env values are hashed with in the labels.
    env_key: EnvKey,
}

// bollard's client is not Debug; the host it serves is what tells clients apart.
impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient")
            .field("host_id", &self.host_id)
            .finish_non_exhaustive()
    }
}

impl DockerClient {
    /// Connects to `uri` (`unix:///var/run/docker.sock` when `None`) and
    /// negotiates the API version with the daemon; every call is given up
    /// after `timeout` (a call that waits out a grace period excepted).
    pub async fn connect(
        uri: Option<&str>,
        host_id: &str,
        env_key: EnvKey,
        timeout: Duration,
    ) -> Result<Self, DockerError> {
        let shown = uri.unwrap_or("unix:///var/run/docker.sock").to_string();
        let connect_err = |source| DockerError::Connect {
            uri: shown.clone(),
            source,
        };
        let secs = timeout.as_secs().max(1);
        let docker = match uri {
            None => Docker::connect_with_local_defaults(),
            Some(u) if u.starts_with("unix://") || u.starts_with('/') => {
                Docker::connect_with_unix(u, secs, bollard::API_DEFAULT_VERSION)
            }
            Some(u) => Docker::connect_with_http(u, secs, bollard::API_DEFAULT_VERSION),
        }
        .map_err(connect_err)?
        // bollard's own limit, one deadline past the longest a call may
        // take while Docker answers pings (see `answer`), so that `answer`
        // decides; it holds alone for the streams read directly (logs,
        // events) until their first answer.
        .with_timeout(timeout * (answer::BUSY_FACTOR + 1));
        let docker = docker.negotiate_version().await.map_err(connect_err)?;
        Ok(DockerClient {
            docker,
            uri: shown,
            deadline: timeout,
            answering: Arc::default(),
            host_id: host_id.to_string(),
            env_key,
        })
    }

    /// bollard's client, for the streams that read Docker directly
    /// (`logs`, `session`).
    pub fn api(&self) -> &Docker {
        &self.docker
    }

    /// The key env values are hashed with in this host's labels.
    pub fn env_key(&self) -> &EnvKey {
        &self.env_key
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, DockerError> {
        match self.answered(self.docker.inspect_image(image)).await? {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(source) => Err(DockerError::Api {
                op: "inspect image",
                container: image.to_string(),
                source,
            }),
        }
    }

    /// The entrypoint and command of `image`'s config.
    pub async fn image_command(
        &self,
        image: &str,
    ) -> Result<(Vec<String>, Vec<String>), DockerError> {
        match self.answered(self.docker.inspect_image(image)).await? {
            Ok(i) => {
                let config = i.config.unwrap_or_default();
                Ok((
                    config.entrypoint.unwrap_or_default(),
                    config.cmd.unwrap_or_default(),
                ))
            }
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NoImage {
                image: image.to_string(),
            }),
            Err(source) => Err(DockerError::Api {
                op: "inspect image",
                container: image.to_string(),
                source,
            }),
        }
    }

    /// Builds `context` (a tar stream holding a Dockerfile) with the daemon's
    /// classic builder and tags the result `image`.
    pub async fn build_image(&self, image: &str, context: Vec<u8>) -> Result<(), DockerError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(image)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        // The daemon reports a failed step in the stream, not in the status.
        while let Some(info) = stream.next().await {
            let info = info.map_err(|source| DockerError::Api {
                op: "build",
                container: image.to_string(),
                source,
            })?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError::Build {
                    image: image.to_string(),
                    message: message.trim_end().to_string(),
                });
            }
        }
        Ok(())
    }

    pub async fn inspect(&self, name: &str) -> Result<Option<Inspected>, DockerError> {
        let resp = match self
            .answered(self.docker.inspect_container(name, None))
            .await?
        {
            Ok(r) => r,
            Err(e) if status_code(&e) == Some(404) => return Ok(None),
            Err(source) => {
                return Err(DockerError::Api {
                    op: "inspect",
                    container: name.to_string(),
                    source,
                });
            }
        };
        let state = resp.state.unwrap_or_default();
        let config = resp.config.unwrap_or_default();
        let restart_policy = resp
            .host_config
            .and_then(|h| h.restart_policy)
            .and_then(|p| p.name)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mounts = resp
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.source.filter(|s| !s.is_empty()).map(Into::into))
            .collect();
        Ok(Some(Inspected {
            id: resp.id.unwrap_or_default(),
            name: resp
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: config.image.unwrap_or_default(),
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            pid: state.pid.unwrap_or(0).try_into().unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            mounts,
            restart_policy,
            restarting: state.restarting.unwrap_or(false),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| s != "none")
                .unwrap_or_default(),
            exit_code: state.exit_code.unwrap_or(0),
            gated: config
                .entrypoint
                .as_ref()
                .and_then(|e| e.first())
                .is_some_and(|e| e == crate::gate::TARGET),
        }))
    }

    /// Creates the sandbox of `spec`'s container from the pause image, with
    /// network `none`: dockstack plugs eth0 into it. What Docker refuses on a
    /// container that joins another's network goes here: the hostname, its
    /// FQDN in /etc/hosts, and resolv.conf.
    pub async fn create_sandbox(
        &self,
        spec: &ContainerSpec,
        pause_image: &str,
    ) -> Result<String, DockerError> {
        self.create_sandbox_as(spec, pause_image, &record::sandbox_name(&spec.name))
            .await
    }

    /// [`DockerClient::create_sandbox`] under the name `name` (a replacement
    /// made beside the sandbox it replaces, renamed once that one is gone).
    pub async fn create_sandbox_as(
        &self,
        spec: &ContainerSpec,
        pause_image: &str,
        name: &str,
    ) -> Result<String, DockerError> {
        // With no network Docker writes no line for the container's own
        // name; this one makes `hostname -f` print the FQDN.
        let names = if spec.domain.is_empty() {
            spec.name.clone()
        } else {
            format!("{}.{} {}", spec.name, spec.domain, spec.name)
        };
        let host_config = HostConfig {
            network_mode: Some("none".into()),
            dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
            dns_search: (!spec.domain.is_empty()).then(|| vec![spec.domain.clone()]),
            extra_hosts: Some(vec![format!("{names}:{}", spec.address.ip())]),
            restart_policy: restart_policy(spec.sandbox_restart_policy()),
            // The pause process alone runs there, but its namespaces are
            // the application's: nothing may fork in it beyond a few.
            pids_limit: Some(SANDBOX_PIDS_LIMIT),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(pause_image.to_string()),
            hostname: Some(spec.name.clone()),
            domainname: (!spec.domain.is_empty()).then(|| spec.domain.clone()),
            labels: Some(
                record::sandbox_labels(spec, &self.host_id, &self.env_key)
                    .into_iter()
                    .collect(),
            ),
            host_config: Some(host_config),
            ..Default::default()
        };
        self.create(name, pause_image, body).await
    }

    /// Creates the application container at the place `at`, joined to the
    /// network namespace of its sandbox, its program behind the gate. With
    /// `first`, its env and command are the first-creation ones (the gate's
    /// command carries the latter), and recorded so. `binds` are the spec's
    /// volumes as Docker gets them (pinned by the policy to canonical
    /// sources for a restricted role).
    pub async fn create_app(
        &self,
        spec: &ContainerSpec,
        first: Option<&FirstCreation>,
        binds: Vec<String>,
        at: AppPlace<'_>,
        config: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, DockerError> {
        let AppPlace {
            name,
            sandbox,
            join,
            gate,
        } = at;
        let mut binds = binds;
        binds.push(format!(
            "{}:{}:ro",
            gate.source.display(),
            crate::gate::TARGET
        ));
        let host_config = HostConfig {
            network_mode: Some(format!("container:{join}")),
            binds: Some(binds),
            privileged: Some(spec.privileged),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            restart_policy: restart_policy(spec.restart_policy()),
            ..runtime_host_config(&spec.runtime)
        };
        // The labels are the spec's own: the hash never sees `first`.
        let mut labels = record::app_labels(spec, &self.host_id, sandbox, config, &self.env_key);
        let env = match first {
            Some(f) => {
                record::mark_first_creation(&mut labels);
                f.env_over(&spec.env)
            }
            None => spec.env.clone(),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            user: spec.runtime.user.clone(),
            stop_signal: spec.runtime.stop_signal.clone(),
            stop_timeout: spec.runtime.stop_grace_secs.map(i64::from),
            env: (!env.is_empty()).then(|| env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            entrypoint: Some(gate.entrypoint.clone()),
            cmd: Some(gate.cmd.clone()),
            labels: Some(labels.into_iter().collect()),
            healthcheck: spec.healthcheck.as_ref().map(|h| {
                let ns = |ms: u32| i64::from(ms) * 1_000_000;
                bollard::models::HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(ns(h.interval_ms)),
                    timeout: Some(ns(h.timeout_ms)),
                    retries: Some(i64::from(h.retries)),
                    start_period: Some(ns(h.start_period_ms)),
                    start_interval: None,
                }
            }),
            host_config: Some(host_config),
            ..Default::default()
        };
        self.create(name, &spec.image, body).await
    }

    /// Gives the container `id` the name `name`.
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RenameContainerOptions {
            name: name.to_string(),
        };
        match self
            .answered(self.docker.rename_container(id, options))
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NotFound(id.into())),
            Err(e) if status_code(&e) == Some(409) => Err(DockerError::NameTaken {
                name: name.to_string(),
            }),
            Err(source) => Err(DockerError::Api {
                op: "rename",
                container: name.to_string(),
                source,
            }),
        }
    }

    async fn create(
        &self,
        name: &str,
        image: &str,
        body: ContainerCreateBody,
    ) -> Result<String, DockerError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        match self
            .answered(self.docker.create_container(Some(options), body))
            .await?
        {
            Ok(r) => Ok(r.id),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NoImage {
                image: image.to_string(),
            }),
            Err(e) if status_code(&e) == Some(409) => Err(DockerError::NameTaken {
                name: name.to_string(),
            }),
            Err(source) => Err(DockerError::Api {
                op: "create",
                container: name.to_string(),
                source,
            }),
        }
    }

    pub async fn start(&self, name: &str) -> Result<(), DockerError> {
        match self
            .answered(self.docker.start_container(name, None))
            .await?
        {
            Ok(()) => Ok(()),
            // 304: already running.
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NotFound(name.into())),
            Err(source) => Err(DockerError::Api {
                op: "start",
                container: name.to_string(),
                source,
            }),
        }
    }

    /// Stops the container with its own stop signal and grace period (as
    /// it was created: Docker's defaults, SIGTERM and 10 s, when none was
    /// given), and returns once it has exited. Docker kills it only when
    /// the grace period runs out.
    pub async fn stop(&self, name: &str) -> Result<(), DockerError> {
        let options = StopContainerOptions {
            t: None,
            signal: None,
        };
        self.answers().await?;
        match self.waiting().stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NotFound(name.into())),
            Err(source) => Err(DockerError::Api {
                op: "stop",
                container: name.to_string(),
                source,
            }),
        }
    }

    /// Stops (as [`DockerClient::stop`] does) and starts again.
    pub async fn restart(&self, name: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RestartContainerOptions {
            t: None,
            signal: None,
        };
        self.answers().await?;
        match self.waiting().restart_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NotFound(name.into())),
            Err(source) => Err(DockerError::Api {
                op: "restart",
                container: name.to_string(),
                source,
            }),
        }
    }

    /// The client for a call that lasts as long as a container's grace
    /// period: the default timeout would cut a long one short (whether
    /// Docker answers at all is asked first, within the deadline).
    fn waiting(&self) -> Docker {
        self.docker.clone().with_timeout(
            std::time::Duration::from_secs(dockstack_types::stop::MAX_GRACE_SECS)
                + std::time::Duration::from_secs(120),
        )
    }

    /// Stops the container gracefully (see [`DockerClient::stop`]) and only
    /// then removes it: dockstack never kills first. The remove is not
    /// forced, so a container its restart policy started again meanwhile is
    /// refused and stopped again. A container that is gone is no error.
    pub async fn remove(&self, name: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: false,
            v: false,
            link: false,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.stop(name).await {
                Ok(()) => {}
                Err(DockerError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
            match self
                .answered(self.docker.remove_container(name, Some(options.clone())))
                .await?
            {
                Ok(()) => return Ok(()),
                Err(e) if status_code(&e) == Some(404) => return Ok(()),
                // Running again (a restart policy), or a removal under way.
                Err(e) if status_code(&e) == Some(409) && attempt < 3 => {}
                Err(source) => {
                    return Err(DockerError::Api {
                        op: "remove",
                        container: name.to_string(),
                        source,
                    });
                }
            }
        }
    }

    /// Every container of this Docker, stopped ones too, that `filters`
    /// (Docker's list filters) let through.
    async fn list_all(
        &self,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        self.answered(self.docker.list_containers(Some(options)))
            .await?
            .map_err(|source| DockerError::Api {
                op: "list",
                container: String::new(),
                source,
            })
    }

    /// Every container of this host that dockstack manages, applications
    /// and sandboxes, by name.
    pub async fn list_managed(&self) -> Result<Vec<Listed>, DockerError> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), record::host_filters(&self.host_id));
        let list = self.list_all(Some(filters)).await?;
        let mut listed: Vec<Listed> = list
            .into_iter()
            .filter_map(|c| {
                let name = c.names.and_then(|n| n.into_iter().next())?;
                Some(Listed {
                    name: name.trim_start_matches('/').to_string(),
                    labels: c.labels.unwrap_or_default(),
                })
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// The mounts with a host source of every container of this Docker,
    /// managed or not, running or not.
    pub async fn list_mounts(&self) -> Result<Vec<OtherMount>, DockerError> {
        let list = self.list_all(None).await?;
        let mut mounts = Vec::new();
        for c in list {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(c.id)
                .unwrap_or_default();
            for m in c.mounts.unwrap_or_default() {
                if let Some(source) = m.source.filter(|s| !s.is_empty()) {
                    mounts.push(OtherMount {
                        container: name.clone(),
                        source: source.into(),
                        writable: m.rw.unwrap_or(true),
                    });
                }
            }
        }
        Ok(mounts)
    }

    /// Whether dockerd answers.
    pub async fn ping(&self) -> Result<(), BollardError> {
        self.docker.ping().await.map(drop)
    }

    /// Start, die and destroy events of this host's managed containers,
    /// from `since` on: Docker replays what it still has of the past, so
    /// nothing that happened while nobody listened is missed.
    pub fn container_events(
        &self,
        since: SystemTime,
    ) -> impl Stream<Item = Result<bollard::models::EventMessage, BollardError>> + use<> {
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        filters.insert(
            "event".to_string(),
            vec![
                "start".to_string(),
                "die".to_string(),
                "destroy".to_string(),
            ],
        );
        filters.insert("label".to_string(), record::host_filters(&self.host_id));
        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.docker.events(Some(EventsOptions {
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            filters: Some(filters),
            ..Default::default()
        }))
    }
}

/// Where an application container is made: its name, its sandbox's name
/// for its labels, and the container whose network namespace it joins (the
/// sandbox itself, or a replacement's sandbox until it takes that name).
#[derive(Debug, Clone, Copy)]
pub struct AppPlace<'a> {
    pub name: &'a str,
    pub sandbox: &'a str,
    pub join: &'a str,
    /// The gate (see `crate::gate`) its program starts behind.
    pub gate: &'a Gated,
}

/// An application's command behind the gate: the gate program's file on
/// the host, and the entrypoint and command that run it (`gate::wrap`).
#[derive(Debug, Clone)]
pub struct Gated {
    pub source: std::path::PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// The most processes in a sandbox (the pause process, and `docker exec`s
/// into it, which there are none of).
const SANDBOX_PIDS_LIMIT: i64 = 16;

/// What the spec's runtime settings make of the application's host config.
fn runtime_host_config(r: &spec::Runtime) -> HostConfig {
    let map = |m: &std::collections::BTreeMap<String, String>| {
        (!m.is_empty()).then(|| m.clone().into_iter().collect())
    };
    HostConfig {
        sysctls: map(&r.sysctls),
        tmpfs: map(&r.tmpfs),
        ulimits: (!r.ulimits.is_empty()).then(|| {
            r.ulimits
                .iter()
                .map(|(name, (soft, hard))| bollard::models::ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect()
        }),
        memory: r.memory_bytes.and_then(|m| i64::try_from(m).ok()),
        nano_cpus: r.nano_cpus.and_then(|n| i64::try_from(n).ok()),
        pids_limit: Some(r.pids_limit.unwrap_or(resources::DEFAULT_PIDS_LIMIT)),
        init: r.init.then_some(true),
        ..Default::default()
    }
}

fn restart_policy(policy: spec::RestartPolicy) -> Option<RestartPolicy> {
    let name = match policy {
        spec::RestartPolicy::No => return None,
        spec::RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
        spec::RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        spec::RestartPolicy::OnFailure { .. } => RestartPolicyNameEnum::ON_FAILURE,
    };
    let maximum_retry_count = match policy {
        spec::RestartPolicy::OnFailure {
            max_retries: Some(n),
        } => Some(i64::from(n)),
        _ => None,
    };
    Some(RestartPolicy {
        name: Some(name),
        maximum_retry_count,
    })
}
