//! A cluster's etcd (`cluster: {etcd: ...}` of the environment file): the
//! change lock of the whole cluster, a key on a lease, and the address
//! reservations, each made in one transaction fenced by that lock.
//!
//! The client talks to etcd, not the servers: it alone knows the file a
//! reservation records, the operator's own etcd credentials say who
//! acts, and a cluster without etcd asks nothing new of its servers. The
//! servers' own leases still fence each change on each host (the client
//! takes them after the etcd lock).
//!
//! Keys, under the prefix: `lock` (who holds the cluster, on a lease),
//! `addresses/<ip>` (a reservation, without a lease: it lasts until its
//! container is destroyed) and `audit/<time>` (a lock broken by
//! `unlock --force`: by whom, and whose it was).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dockstack_proto as pb;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};

use crate::environment::{Cluster, Container, Environment};

/// The lock's lease: a client that dies frees the cluster within it.
pub const LOCK_TTL_SECS: i64 = 10;
/// How long connecting to etcd, and one call, may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting client (`--wait`) asks again.
const WAIT_POLL: Duration = Duration::from_millis(250);
/// Reservations asked for at once.
const RESERVING_AT_ONCE: usize = 16;
/// How often a member that has no leader yet is asked again.
const ELECTION_POLL: Duration = Duration::from_millis(200);
/// How long a member is given to answer before the next is tried too.
const NEXT_MEMBER_AFTER: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "etcd ({endpoints}) cannot be reached: {message}; no change is made while it is down (status, show, plan and list still work)"
    )]
    Down { endpoints: String, message: String },
    #[error("cannot read {path}: {message}")]
    Tls { path: String, message: String },
    #[error("the cluster (etcd {prefix}) is {}{}", describe(.holder), super::lock::waited_for(*.waited))]
    Held {
        prefix: String,
        holder: Box<LockHolder>,
        waited: Option<Duration>,
    },
    #[error(
        "address {address} of {container} is reserved in etcd for container {} of {} on host {} (MAC {})",
        .by.container, .by.file, .by.host, .by.mac
    )]
    Reserved {
        address: IpAddr,
        container: String,
        by: Box<Reservation>,
    },
    #[error(
        "the cluster's etcd lock was lost (its lease lapsed or was revoked); nothing more is changed"
    )]
    Lost,
    #[error("etcd: {0}")]
    Etcd(String),
}

/// What the lock key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub holder: String,
    pub action: String,
    pub file: String,
    pub since_unix_ms: u64,
}

/// `locked by HOLDER for ACTION of FILE since TIME (held N s)`, as a
/// host's lock is described.
pub fn describe(h: &LockHolder) -> String {
    super::lock::describe(&pb::LockHolder {
        holder: h.holder.clone(),
        action: h.action.clone(),
        file: h.file.clone(),
        since_unix_ms: h.since_unix_ms,
        age_ms: now_ms().saturating_sub(h.since_unix_ms),
        // Not shown; the lease's own time to live would cost a round trip.
        expires_in_ms: 0,
    })
}

/// One address reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub address: IpAddr,
    pub container: String,
    pub host: String,
    pub file: String,
    pub mac: String,
    pub since_unix_ms: u64,
}

/// What a reservation found: made now, or this file's own already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    New,
    Kept,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn etcd_err(e: &etcd_client::Error) -> ClusterError {
    ClusterError::Etcd(e.to_string())
}

/// Connects to the cluster's etcd (mutual TLS when configured), checking
/// that it answers.
pub async fn connect(cluster: &Cluster) -> Result<Client, ClusterError> {
    let key = lock_key(&cluster.prefix);
    let probe = |mut c: Client| {
        let key = key.clone();
        async move { c.get(key, None).await.map(|_| ()) }
    };
    Ok(connect_with(cluster, probe).await?.0)
}

/// Connects to the cluster's etcd, `first` the first call: its answer
/// proves the member answers (connecting is lazy), and it is the command's
/// first step rather than one more round trip.
///
/// The members are tried in the file's order, each [`NEXT_MEMBER_AFTER`]
/// after the one before it or at once when all before it failed; the
/// first to answer serves the command. A healthy first member costs one
/// TLS handshake, not one per member; one channel over all of them would
/// keep sending to a member that is down (a refused connection fails the
/// call rather than moving on), and etcd forwards whatever a member gets
/// to its leader anyway. Should two answer, the other's `first` was done
/// for nothing (a lease granted that way lapses on its own).
async fn connect_with<T, F, Fut>(cluster: &Cluster, first: F) -> Result<(Client, T), ClusterError>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    if cluster.etcd.is_empty() {
        return Err(ClusterError::Down {
            endpoints: String::new(),
            message: "no etcd URL given".into(),
        });
    }
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_timeout(CALL_TIMEOUT);
    if let Some(tls) = &cluster.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| ClusterError::Tls {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        let config = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(&tls.ca)?))
            .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
        options = options.with_tls(config);
    }
    let (failed, failures) = tokio::sync::watch::channel(0_usize);
    let (failed, first) = (&failed, &first);
    let tries = cluster.etcd.iter().enumerate().map(|(i, url)| {
        let options = options.clone();
        let mut failures = failures.clone();
        Box::pin(async move {
            let turn = NEXT_MEMBER_AFTER.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
            let _ = tokio::time::timeout(turn, failures.wait_for(|n| *n >= i)).await;
            let tried = try_member(url, options, first).await;
            if tried.is_err() {
                failed.send_modify(|n| *n += 1);
            }
            tried
        })
    });
    match futures::future::select_ok(tries).await {
        Ok((answered, _)) => Ok(answered),
        Err(last) => Err(ClusterError::Down {
            endpoints: cluster.etcd.join(", "),
            message: last,
        }),
    }
}

/// One member: connected, and `first` answered. A member that answers
/// "unavailable" (its cluster electing a leader, as after a member's
/// loss) is asked again for a while.
async fn try_member<T, F, Fut>(
    url: &str,
    options: ConnectOptions,
    first: &F,
) -> Result<(Client, T), String>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let client = Client::connect([url], Some(options))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let began = Instant::now();
    loop {
        let left = CALL_TIMEOUT.saturating_sub(began.elapsed());
        match tokio::time::timeout(left, first(client.clone())).await {
            Ok(Ok(answer)) => return Ok((client, answer)),
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if s.code() == tonic::Code::Unavailable && left > ELECTION_POLL =>
            {
                tokio::time::sleep(ELECTION_POLL).await;
            }
            Ok(Err(e)) => return Err(format!("{url}: {e}")),
            Err(_) => {
                return Err(format!(
                    "{url}: no answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// This operator as the lock records it: the user, the machine and the
/// process.
fn whoami() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "?".into());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "?".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

/// The cluster's lock, held: its lease kept alive until released.
pub struct Session {
    client: Client,
    prefix: String,
    file: String,
    lease: i64,
    /// The lock key's create revision: every write compares it (the fence).
    fence: i64,
    keeper: tokio::task::JoinHandle<()>,
    /// How long it waited for another's lock (`--wait`).
    pub waited: Duration,
}

/// The session of this process's command, while it holds the lock: the
/// operations that reserve and release reach it here.
static CURRENT: Mutex<Option<Arc<Session>>> = Mutex::new(None);

/// The session held now, if the file has a cluster.
pub fn current() -> Option<Arc<Session>> {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn lock_key(prefix: &str) -> String {
    format!("{prefix}/lock")
}

fn address_key(prefix: &str, address: IpAddr) -> String {
    format!("{prefix}/addresses/{address}")
}

/// Takes the cluster's lock for `action` of `env`'s file; with `wait`,
/// asks again until it is free or `wait` has passed.
pub async fn acquire(
    env: &Environment,
    cluster: &Cluster,
    action: &str,
    wait: Option<Duration>,
) -> Result<Arc<Session>, ClusterError> {
    // The lease is the first call: one round trip less than a probe.
    let grant = |mut c: Client| async move { c.lease_grant(LOCK_TTL_SECS, None).await };
    let (mut client, lease) = connect_with(cluster, grant).await?;
    let lease = lease.id();
    let file = super::environment_name(env);
    let holder = LockHolder {
        holder: whoami(),
        action: action.to_string(),
        file: file.clone(),
        since_unix_ms: now_ms(),
    };
    let value = serde_json::to_string(&holder).map_err(|e| ClusterError::Etcd(e.to_string()))?;
    let key = lock_key(&cluster.prefix);
    let began = Instant::now();
    // Kept alive from now on: a wait (`--wait`) may outlast its lifetime.
    let keeper = tokio::spawn(keep_alive(client.clone(), lease));
    let fence = loop {
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                value.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.clone(), None)]);
        let r = match client.txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                keeper.abort();
                return Err(etcd_err(&e));
            }
        };
        if r.succeeded() {
            break r.header().map_or(0, etcd_client::ResponseHeader::revision);
        }
        let other = r
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .and_then(|v| serde_json::from_slice::<LockHolder>(&v).ok());
        let elapsed = began.elapsed();
        match (other, wait) {
            // Gone between the compare and the get: ask again at once.
            (None, _) => {}
            (Some(_), Some(w)) if elapsed < w => {
                tokio::time::sleep(WAIT_POLL.min(w - elapsed)).await;
            }
            (Some(h), _) => {
                keeper.abort();
                let _ = client.lease_revoke(lease).await;
                return Err(ClusterError::Held {
                    prefix: cluster.prefix.clone(),
                    holder: Box::new(h),
                    waited: wait.map(|_| elapsed),
                });
            }
        }
    };
    let session = Arc::new(Session {
        client,
        prefix: cluster.prefix.clone(),
        file,
        lease,
        fence,
        keeper,
        waited: began.elapsed(),
    });
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&session));
    Ok(session)
}

/// Renews the lease each third of its time to live, the first time a
/// third after its grant: a short command never opens the stream.
async fn keep_alive(mut client: Client, lease: i64) {
    let period = Duration::from_secs(u64::try_from(LOCK_TTL_SECS).unwrap_or(10)) / 3;
    tokio::time::sleep(period).await;
    let Ok((mut keeper, mut answers)) = client.lease_keep_alive(lease).await else {
        return;
    };
    loop {
        if keeper.keep_alive().await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(period, answers.message()).await;
        tokio::time::sleep(period).await;
    }
}

impl Session {
    /// Gives the lock back (its lease revoked, the key with it).
    pub async fn release(&self) {
        self.keeper.abort();
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut client = self.client.clone();
        match client.lease_revoke(self.lease).await {
            Ok(_) => {}
            // Gone already: broken by `unlock --force`, or lapsed.
            Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::NotFound => {}
            Err(e) => eprintln!(
                "dockstack: warning: the cluster's etcd lock was not given back ({e}); it lapses within {LOCK_TTL_SECS} s"
            ),
        }
    }

    fn fenced(&self) -> Compare {
        Compare::create_revision(lock_key(&self.prefix), CompareOp::Equal, self.fence)
    }

    /// Reserves the address of each of `containers` (and its IPv6 one),
    /// each in one transaction that succeeds only while this session holds
    /// the lock and nobody holds the address. One of this file's own is
    /// taken over (a re-run; one a dead client left between reserve and
    /// plug; an address the file moved to another of its containers,
    /// which the plan hands over); another file's never is. The first
    /// refusal ends it.
    pub async fn reserve(&self, containers: &[Container]) -> Result<(), ClusterError> {
        use futures::StreamExt;
        let wanted: Vec<(&Container, IpAddr)> = containers
            .iter()
            .flat_map(|c| {
                std::iter::once(IpAddr::V4(c.ip))
                    .chain(c.ip6.map(|n| n.ip().into()))
                    .map(move |a| (c, a))
            })
            .collect();
        // Several at once: each is a round trip of its own.
        let results: Vec<(IpAddr, Result<Made, ClusterError>)> = futures::stream::iter(wanted)
            .map(|(c, a)| async move { (a, self.reserve_one(c, a).await) })
            .buffer_unordered(RESERVING_AT_ONCE)
            .collect()
            .await;
        let Some(err) = results.iter().find_map(|(_, r)| r.as_ref().err().cloned()) else {
            injected_pause("reserved").await;
            return Ok(());
        };
        // Refused: what this call made is given back, so a change that did
        // nothing leaves nothing reserved.
        let made: Vec<IpAddr> = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Made::New)))
            .map(|(a, _)| *a)
            .collect();
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let _ = self
            .release_where(|r| made.contains(&r.address) && names.contains(&r.container))
            .await;
        Err(err)
    }

    async fn reserve_one(&self, c: &Container, address: IpAddr) -> Result<Made, ClusterError> {
        let key = address_key(&self.prefix, address);
        let wanted = Reservation {
            address,
            container: c.name.clone(),
            host: c.host.clone(),
            file: self.file.clone(),
            mac: c.effective_mac().to_string(),
            since_unix_ms: now_ms(),
        };
        let value = serde_json::to_vec(&wanted).map_err(|e| ClusterError::Etcd(e.to_string()))?;
        let mut client = self.client.clone();
        let txn = Txn::new()
            .when([
                self.fenced(),
                Compare::create_revision(key.clone(), CompareOp::Equal, 0),
            ])
            .and_then([TxnOp::put(key.clone(), value.clone(), None)])
            .or_else([
                TxnOp::get(key.clone(), None),
                TxnOp::get(lock_key(&self.prefix), None),
            ]);
        let r = client.txn(txn).await.map_err(|e| etcd_err(&e))?;
        if r.succeeded() {
            return Ok(Made::New);
        }
        let gets: Vec<Option<(Vec<u8>, i64, i64)>> = r
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(g) => g
                    .kvs()
                    .first()
                    .map(|kv| (kv.value().to_vec(), kv.create_revision(), kv.mod_revision())),
                _ => None,
            })
            .collect();
        if gets
            .get(1)
            .cloned()
            .flatten()
            .map(|(_, created, _)| created)
            != Some(self.fence)
        {
            return Err(ClusterError::Lost);
        }
        let Some(Some((held, _, modified))) = gets.first().cloned() else {
            // Released meanwhile: this session still holds the lock, so
            // only a destroy of its own did; try once more.
            return Box::pin(self.reserve_one(c, address)).await;
        };
        let by: Reservation =
            serde_json::from_slice(&held).map_err(|e| ClusterError::Etcd(e.to_string()))?;
        if by.file != self.file {
            return Err(ClusterError::Reserved {
                address,
                container: c.name.clone(),
                by: Box::new(by),
            });
        }
        if by.container == wanted.container && by.host == wanted.host && by.mac == wanted.mac {
            return Ok(Made::Kept);
        }
        // This file's own, given to another container, host or MAC:
        // recorded anew.
        let txn = Txn::new()
            .when([
                self.fenced(),
                Compare::mod_revision(key.clone(), CompareOp::Equal, modified),
            ])
            .and_then([TxnOp::put(key, value, None)]);
        let r = client.txn(txn).await.map_err(|e| etcd_err(&e))?;
        if r.succeeded() {
            Ok(Made::Kept)
        } else {
            Err(ClusterError::Lost)
        }
    }

    /// Releases this file's reservations of `containers` (destroyed).
    pub async fn release_containers(&self, names: &[String]) -> Result<(), ClusterError> {
        self.release_where(|r| names.contains(&r.container)).await
    }

    /// Releases this file's reservations that `env` no longer gives (a
    /// container gone from the file, or its address changed): after an
    /// apply has made the file's containers, nothing else holds them.
    pub async fn release_unwanted(&self, env: &Environment) -> Result<(), ClusterError> {
        self.release_where(|r| {
            env.container(&r.container).is_none_or(|c| {
                r.address != IpAddr::V4(c.ip)
                    && c.ip6.map(|n| IpAddr::from(n.ip())) != Some(r.address)
            })
        })
        .await
    }

    async fn release_where(
        &self,
        mut doomed: impl FnMut(&Reservation) -> bool,
    ) -> Result<(), ClusterError> {
        let mut client = self.client.clone();
        for (r, modified) in list_with(&mut client, &self.prefix).await? {
            if r.file != self.file || !doomed(&r) {
                continue;
            }
            let key = address_key(&self.prefix, r.address);
            let txn = Txn::new()
                .when([
                    self.fenced(),
                    Compare::mod_revision(key.clone(), CompareOp::Equal, modified),
                ])
                .and_then([TxnOp::delete(key, None)]);
            let done = client.txn(txn).await.map_err(|e| etcd_err(&e))?;
            if !done.succeeded() {
                return Err(ClusterError::Lost);
            }
        }
        Ok(())
    }
}

/// Fault injection for the tests, in debug builds only:
/// `DOCKSTACK_CLIENT_PAUSE=<step>:<ms>` holds the client at `step` for `ms`
/// milliseconds, saying so, so that a test can kill it there; `reserved`
/// (every address reserved in etcd, nothing plugged yet).
#[cfg(debug_assertions)]
async fn injected_pause(step: &str) {
    let Some(ms) = std::env::var("DOCKSTACK_CLIENT_PAUSE").ok().and_then(|v| {
        let (at, ms) = v.split_once(':')?;
        (at == step).then(|| ms.parse::<u64>().ok()).flatten()
    }) else {
        return;
    };
    eprintln!("dockstack: DOCKSTACK_CLIENT_PAUSE: held at {step} for {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(not(debug_assertions))]
async fn injected_pause(_step: &str) {}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("prefix", &self.prefix)
            .field("file", &self.file)
            .field("lease", &self.lease)
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

async fn list_with(
    client: &mut Client,
    prefix: &str,
) -> Result<Vec<(Reservation, i64)>, ClusterError> {
    let r = client
        .get(
            format!("{prefix}/addresses/"),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .map_err(|e| etcd_err(&e))?;
    Ok(r.kvs()
        .iter()
        .filter_map(|kv| {
            let res = serde_json::from_slice::<Reservation>(kv.value()).ok()?;
            Some((res, kv.mod_revision()))
        })
        .collect())
}

/// Every reservation of the cluster, by address (no lock needed).
pub async fn reservations(cluster: &Cluster) -> Result<Vec<Reservation>, ClusterError> {
    let mut client = connect(cluster).await?;
    let mut all: Vec<Reservation> = list_with(&mut client, &cluster.prefix)
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    all.sort_by_key(|r| r.address);
    Ok(all)
}

/// The lock key's holder and what a break compares and revokes.
struct Held {
    holder: LockHolder,
    lease: i64,
    modified: i64,
}

async fn read_lock(client: &mut Client, prefix: &str) -> Result<Option<Held>, ClusterError> {
    let r = client
        .get(lock_key(prefix), None)
        .await
        .map_err(|e| etcd_err(&e))?;
    let Some(kv) = r.kvs().first() else {
        return Ok(None);
    };
    let holder = serde_json::from_slice(kv.value())
        .map_err(|e| ClusterError::Etcd(format!("{}: not a lock holder: {e}", lock_key(prefix))))?;
    Ok(Some(Held {
        holder,
        lease: kv.lease(),
        modified: kv.mod_revision(),
    }))
}

/// Who holds the cluster's lock, if anyone (`dockstack lock`).
pub async fn inspect(cluster: &Cluster) -> Result<Option<LockHolder>, ClusterError> {
    let mut client = connect(cluster).await?;
    Ok(read_lock(&mut client, &cluster.prefix)
        .await?
        .map(|h| h.holder))
}

/// What `audit/<time>` records of a broken lock.
#[derive(Debug, Serialize)]
struct Broken<'a> {
    action: &'static str,
    /// This operator (user, machine, process) and the client certificate
    /// the servers let break their locks.
    by: String,
    certificate: &'a str,
    at_unix_ms: u64,
    was: &'a LockHolder,
}

/// Breaks the cluster's lock whoever holds it (`unlock --force`): the key
/// deleted and an audit record put in one transaction, then its lease
/// revoked, so the holder's fenced writes fail from then on. Whose it was;
/// none when it was free (then nothing is recorded).
pub async fn force_break(
    cluster: &Cluster,
    certificate: &str,
) -> Result<Option<LockHolder>, ClusterError> {
    let mut client = connect(cluster).await?;
    let key = lock_key(&cluster.prefix);
    loop {
        let Some(held) = read_lock(&mut client, &cluster.prefix).await? else {
            return Ok(None);
        };
        let at = now_ms();
        let record = Broken {
            action: "unlock",
            by: whoami(),
            certificate,
            at_unix_ms: at,
            was: &held.holder,
        };
        let record = serde_json::to_vec(&record).map_err(|e| ClusterError::Etcd(e.to_string()))?;
        let audit = format!("{}/audit/{at:020}-{}", cluster.prefix, std::process::id());
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                held.modified,
            )])
            .and_then([
                TxnOp::delete(key.clone(), None),
                TxnOp::put(audit, record, None),
            ]);
        // Changed meanwhile (released, or taken anew): read it again.
        if !client.txn(txn).await.map_err(|e| etcd_err(&e))?.succeeded() {
            continue;
        }
        if held.lease != 0 {
            // Already gone when its holder released it meanwhile: no error.
            let _ = client.lease_revoke(held.lease).await;
        }
        return Ok(Some(held.holder));
    }
}
