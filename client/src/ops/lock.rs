//! The change lock from the client's side: which hosts a command locks,
//! taking their leases in one order (sorted host names), all or nothing,
//! keeping them alive while the command works, giving them back; and
//! `dockstack lock` / `unlock --force`.
//!
//! A lease lapses on a server unless renewed within its time to live, so a
//! client that dies frees its hosts within it. While this client holds a
//! host's lease, every request to it carries the token (see
//! [`crate::connect::Leases`]), which the server's fence asks of a change.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dockstack_proto as pb;
use dockstack_proto::host_lock_client::HostLockClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::HostOverride;
use crate::connect::{Connector, ProtocolHeader};
use crate::environment::{Container, Environment};

/// How long one lock call may take.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// How often a waiting client (`--wait`) asks again.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Why the lock was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// Another holds a host's lock: who, for what, since when.
    #[error("host {host} is {}{}", describe(.holder), waited_for(*.waited))]
    Held {
        host: String,
        holder: pb::LockHolder,
        /// How long `--wait` waited before giving up.
        waited: Option<Duration>,
    },
    #[error("host {host}: cannot take its change lock: {message}")]
    Failed { host: String, message: String },
}

pub(crate) fn waited_for(waited: Option<Duration>) -> String {
    waited
        .map(|w| format!(" (waited {:.1} s, --wait)", w.as_secs_f64()))
        .unwrap_or_else(|| " (--wait SECONDS waits for it)".to_string())
}

/// `locked by HOLDER for ACTION of FILE since TIME (held N s)`.
pub fn describe(h: &pb::LockHolder) -> String {
    let since = UNIX_EPOCH + Duration::from_millis(h.since_unix_ms);
    format!(
        "locked by {} for {} of {}, since {} (held {:.1} s)",
        h.holder,
        h.action,
        h.file,
        rfc3339(since),
        Duration::from_millis(h.age_ms).as_secs_f64()
    )
}

fn rfc3339(t: SystemTime) -> String {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "?".to_string())
}

/// The hosts `action` on `containers` changes, sorted and once each: the
/// order locks are taken in, which two clients share, so neither holds one
/// the other waits for. `apply` locks every host of the file (its plan
/// reads them all, and an orphan may be on any); `run`, `destroy`,
/// `register` and `deregister` lock the containers' hosts and those of the
/// DNS container and the Puppet master they register with; `start`,
/// `stop` and `restart` the containers' hosts.
pub fn hosts_touched(env: &Environment, containers: &[Container], action: &str) -> Vec<String> {
    let mut hosts: Vec<String> = if action == "apply" {
        env.hosts.iter().map(|h| h.name.clone()).collect()
    } else {
        containers.iter().map(|c| c.host.clone()).collect()
    };
    if matches!(action, "run" | "destroy" | "register" | "deregister") {
        let registries = [
            env.registration.dns.as_ref().map(|d| d.container.as_str()),
            env.registration.puppet.as_ref().map(|p| p.master.as_str()),
        ];
        hosts.extend(
            registries
                .into_iter()
                .flatten()
                .filter_map(|name| env.container(name))
                .map(|c| c.host.clone()),
        );
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The leases this client holds, renewed in the background until
/// [`Lock::release`] (or the end of the process).
#[derive(Debug)]
pub struct Lock {
    taken: Arc<Vec<TakenRef>>,
    connector: Connector,
    renewer: tokio::task::JoinHandle<()>,
    /// How long it waited for another's lock (`--wait`).
    pub waited: Duration,
}

/// One host's lease.
#[derive(Debug, Clone)]
struct TakenRef {
    host: String,
    client: HostLockClient<InterceptedService<Channel, ProtocolHeader>>,
    token: String,
}

async fn lock_client(
    env: &Environment,
    connector: &Connector,
    overrides: &HostOverride,
    host: &str,
) -> Result<HostLockClient<InterceptedService<Channel, ProtocolHeader>>, String> {
    let h = env
        .host(host)
        .ok_or_else(|| format!("host {host} is not in containerhosts"))?;
    let (ip, port) = overrides.address(h);
    connector
        .channel(host, &ip, port)
        .await
        .map(|c| HostLockClient::with_interceptor(c, ProtocolHeader))
        .map_err(|e| e.to_string())
}

/// `call`, given up after [`CALL_DEADLINE`]; its status explained.
async fn call<T>(
    connector: &Connector,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(connector.explain_status(&s)),
        Err(_) => Err(format!("no answer within {} s", CALL_DEADLINE.as_secs())),
    }
}

/// One round over `hosts` in order: every lease, or none (those taken
/// given back) and who holds the first one refused. The hosts are
/// connected to at once; a host that cannot be reached is not locked (no
/// change can reach it either: its containers fail on their own).
async fn try_all(
    env: &Environment,
    connector: &Connector,
    overrides: &HostOverride,
    action: &'static str,
    hosts: &[String],
) -> Result<Result<(Vec<TakenRef>, Duration), (String, pb::LockHolder)>, LockError> {
    let file = super::environment_name(env);
    let connects = hosts
        .iter()
        .map(|host| lock_client(env, connector, overrides, host));
    let connected = futures::future::join_all(connects).await;
    let mut taken = Vec::new();
    let mut ttl = Duration::MAX;
    for (host, client) in hosts.iter().zip(connected) {
        let Ok(mut client) = client else { continue };
        let request = pb::LockAcquireRequest {
            host: host.clone(),
            action: action.to_string(),
            file: file.clone(),
        };
        let grant = match call(connector, client.acquire(request)).await {
            Ok(g) => g,
            Err(message) => {
                give_back(connector, &taken).await;
                return Err(LockError::Failed {
                    host: host.clone(),
                    message,
                });
            }
        };
        if !grant.granted {
            give_back(connector, &taken).await;
            return Ok(Err((host.clone(), grant.holder.unwrap_or_default())));
        }
        ttl = ttl.min(Duration::from_millis(u64::from(grant.ttl_ms)));
        connector.leases().set(host, &grant.token);
        taken.push(TakenRef {
            host: host.clone(),
            client,
            token: grant.token,
        });
    }
    Ok(Ok((taken, ttl)))
}

/// Releases `taken`, in parallel; a host that does not answer lets its
/// lease lapse.
async fn give_back(connector: &Connector, taken: &[TakenRef]) {
    let releases = taken.iter().map(|t| {
        let mut client = t.client.clone();
        let lease = pb::LockLease {
            host: t.host.clone(),
            token: t.token.clone(),
        };
        connector.leases().clear(&t.host);
        async move { call(connector, client.release(lease)).await }
    });
    for (t, r) in taken.iter().zip(futures::future::join_all(releases).await) {
        if let Err(e) = r {
            eprintln!(
                "dockstack: warning: host {}: the lock was not given back ({e}); it lapses by itself",
                t.host
            );
        }
    }
}

/// Takes the change lock of `hosts` for `action`, all or nothing; with
/// `wait`, asks again until it is free or `wait` has passed.
pub async fn acquire(
    env: &Environment,
    connector: &Connector,
    overrides: &HostOverride,
    action: &'static str,
    hosts: &[String],
    wait: Option<Duration>,
) -> Result<Lock, LockError> {
    let began = Instant::now();
    let mut told = false;
    let (taken, ttl) = loop {
        match try_all(env, connector, overrides, action, hosts).await? {
            Ok(t) => break t,
            Err((host, holder)) => {
                let waited = began.elapsed();
                match wait {
                    Some(w) if waited < w => {
                        if !told {
                            eprintln!(
                                "dockstack: host {host} is {}; waiting up to {} s",
                                describe(&holder),
                                w.as_secs()
                            );
                            told = true;
                        }
                        tokio::time::sleep(WAIT_POLL.min(w - waited)).await;
                    }
                    _ => {
                        return Err(LockError::Held {
                            host,
                            holder,
                            waited: wait.map(|_| waited),
                        });
                    }
                }
            }
        }
    };
    let waited = began.elapsed();
    if told {
        eprintln!(
            "dockstack: lock taken after {:.1} s waiting",
            waited.as_secs_f64()
        );
    }
    let taken = Arc::new(taken);
    let ttl = if ttl == Duration::MAX {
        Duration::from_millis(u64::from(dockstack_types::lock::DEFAULT_TTL_MS))
    } else {
        ttl
    };
    let renewer = tokio::spawn(renew(connector.clone(), Arc::clone(&taken), ttl));
    injected_hold().await;
    Ok(Lock {
        taken,
        connector: connector.clone(),
        renewer,
        waited,
    })
}

/// Renews every lease each third of the time to live. A lease refused
/// (lapsed, or broken by an admin) is said once: the server's fence
/// refuses this client's changes to that host from then on.
async fn renew(connector: Connector, taken: Arc<Vec<TakenRef>>, ttl: Duration) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    let lost: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewals = taken.iter().map(|t| {
            let mut client = t.client.clone();
            let lease = pb::LockLease {
                host: t.host.clone(),
                token: t.token.clone(),
            };
            async move {
                let r = tokio::time::timeout(period, client.renew(lease)).await;
                (t, r)
            }
        });
        for (t, r) in futures::future::join_all(renewals).await {
            // A late answer is tried again next tick; a refusal is final.
            let Ok(Err(status)) = r else { continue };
            let mut lost = lost.lock().unwrap_or_else(|e| e.into_inner());
            if !lost.contains(&t.host) {
                eprintln!(
                    "dockstack: warning: host {}: the change lock was lost ({}); its changes will be refused",
                    t.host,
                    connector.explain_status(&status)
                );
                lost.push(t.host.clone());
            }
        }
    }
}

impl Lock {
    /// Gives every lease back.
    pub async fn release(self) {
        self.renewer.abort();
        give_back(&self.connector, &self.taken).await;
    }

    /// The hosts locked, in the order taken.
    pub fn hosts(&self) -> Vec<&str> {
        self.taken.iter().map(|t| t.host.as_str()).collect()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Fault injection for the tests, in debug builds only:
/// `DOCKSTACK_LOCK_HOLD_MS=N` holds the lock N ms before acting, as a slow
/// command would.
#[cfg(debug_assertions)]
async fn injected_hold() {
    if let Some(ms) = std::env::var("DOCKSTACK_LOCK_HOLD_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[cfg(not(debug_assertions))]
async fn injected_hold() {}

/// Each host's answer: its lock's holder (none when free), or why it
/// was not learnt.
pub type HostLocks = Vec<(String, Result<Option<pb::LockHolder>, String>)>;

/// Who holds the lock of each of `hosts`, asked in parallel; with
/// `force_break`, breaks it (the admin role only) and says whose it was.
pub async fn inspect(
    env: &Environment,
    connector: &Connector,
    overrides: &HostOverride,
    hosts: &[String],
    force_break: bool,
) -> HostLocks {
    let asks = hosts.iter().map(|host| async move {
        let mut client = lock_client(env, connector, overrides, host).await?;
        let req = pb::LockInspectRequest { host: host.clone() };
        let state = if force_break {
            call(connector, client.r#break(req)).await?
        } else {
            call(connector, client.inspect(req)).await?
        };
        Ok(state.holder)
    });
    hosts
        .iter()
        .cloned()
        .zip(futures::future::join_all(asks).await)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_locks_every_host_and_run_the_registries_too_in_one_order() {
        let env = super::super::recipe::tests::env();
        let web = env.container("web1").unwrap().clone();
        let all: Vec<String> = {
            let mut h: Vec<String> = env.hosts.iter().map(|h| h.name.clone()).collect();
            h.sort();
            h
        };
        assert_eq!(hosts_touched(&env, &[], "apply"), all);
        let run = hosts_touched(&env, std::slice::from_ref(&web), "run");
        let mut sorted = run.clone();
        sorted.sort();
        assert_eq!(run, sorted);
        assert!(run.contains(&web.host));
        let dns_host = env
            .container(&env.registration.dns.as_ref().unwrap().container)
            .unwrap()
            .host
            .clone();
        assert!(run.contains(&dns_host), "{run:?}");
        assert_eq!(
            hosts_touched(&env, std::slice::from_ref(&web), "stop"),
            vec![web.host.clone()]
        );
    }

    #[test]
    fn a_holder_is_described_with_its_action_file_and_age() {
        let h = pb::LockHolder {
            holder: "CN=alice (10.0.0.1:5000)".into(),
            action: "apply".into(),
            file: "/srv/environment.yaml".into(),
            since_unix_ms: 1_700_000_000_000,
            age_ms: 2_500,
            expires_in_ms: 9_000,
        };
        let e = LockError::Held {
            host: "h1".into(),
            holder: h,
            waited: None,
        };
        assert_eq!(
            e.to_string(),
            "host h1 is locked by CN=alice (10.0.0.1:5000) for apply of /srv/environment.yaml, since 2023-11-14T22:13:20Z (held 2.5 s) (--wait SECONDS waits for it)"
        );
    }
}
