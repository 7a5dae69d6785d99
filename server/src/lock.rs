//! The change lock of this host: one lease at a time, taken by a client
//! before it changes anything, kept alive by its renewals, lapsing after
//! its time to live without one (so a client that died frees the host),
//! and the fence every change request passes: while a lease is live, only
//! requests carrying its token may change anything.
//!
//! The lease lives in memory only: a restarted server has no lock, and a
//! client that held one finds its next renewal refused and stops.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use dockstack_types::lock::{self as rules, LockFieldError};

/// Who holds the lock, as others are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The certificate subject (and address) of the client.
    pub holder: String,
    pub action: &'static str,
    pub file: String,
    pub since: SystemTime,
    /// How long it has been held.
    pub age: Duration,
    /// How long it lives on without a renewal.
    pub expires_in: Duration,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "locked by {} for {} of {} (held {:.1} s)",
            self.holder,
            self.action,
            self.file,
            self.age.as_secs_f64()
        )
    }
}

/// What an acquisition gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The caller holds the lock: its token, and the lease as others see it.
    Granted { token: String, lease: Holder },
    /// Another holds it.
    Held(Holder),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("invalid lock request: {0}")]
    Field(#[from] LockFieldError),
    /// A renewal or a fenced request whose lease is no longer the live one.
    #[error(
        "the lease is no longer held here (it lapsed without a renewal within {} s, or an admin broke it); nothing was changed: take the lock again",
        .ttl.as_secs_f64()
    )]
    Lapsed { ttl: Duration },
    /// A change request without the live lease's token.
    #[error(
        "this host is {0}; a change needs its lease (dockstack takes it: wait, or see `dockstack lock`)"
    )]
    Held(Holder),
    #[error("cannot draw a lease token from /dev/urandom: {0}")]
    Random(#[source] std::io::Error),
}

#[derive(Debug)]
struct Lease {
    token: String,
    holder: String,
    action: &'static str,
    file: String,
    since: SystemTime,
    taken: Instant,
    expires: Instant,
}

impl Lease {
    fn view(&self, now: Instant) -> Holder {
        Holder {
            holder: self.holder.clone(),
            action: self.action,
            file: self.file.clone(),
            since: self.since,
            age: now.saturating_duration_since(self.taken),
            expires_in: self.expires.saturating_duration_since(now),
        }
    }
}

/// The lock of one host.
#[derive(Debug)]
pub struct Locks {
    ttl: Duration,
    lease: Mutex<Option<Lease>>,
}

/// 128 random bits as 32 hexadecimal digits.
fn new_token() -> Result<String, LockError> {
    use std::io::Read;
    let mut bytes = [0u8; rules::TOKEN_LEN / 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(LockError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Locks {
    /// A lock whose leases live `ttl` without a renewal.
    pub fn new(ttl: Duration) -> Self {
        Locks {
            ttl,
            lease: Mutex::new(None),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The live lease, a lapsed one dropped first.
    fn live(&self) -> std::sync::MutexGuard<'_, Option<Lease>> {
        // Nothing panics while the mutex is held; a poisoned one is whole.
        let mut lease = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if lease.as_ref().is_some_and(|l| l.expires <= Instant::now())
            && let Some(l) = lease.take()
        {
            tracing::info!(holder = %l.holder, action = l.action, file = %l.file, "lock lapsed without a renewal");
        }
        lease
    }

    /// Takes the lock for `holder` doing `action` with `file`, if nobody
    /// holds it; never waits.
    pub fn acquire(&self, holder: &str, action: &str, file: &str) -> Result<Grant, LockError> {
        let action = rules::check_action(action)?;
        rules::check_file(file)?;
        let mut lease = self.live();
        let now = Instant::now();
        if let Some(l) = lease.as_ref() {
            return Ok(Grant::Held(l.view(now)));
        }
        let token = new_token()?;
        let l = Lease {
            token: token.clone(),
            holder: holder.to_string(),
            action,
            file: file.to_string(),
            since: SystemTime::now(),
            taken: now,
            expires: now + self.ttl,
        };
        let view = l.view(now);
        *lease = Some(l);
        tracing::info!(holder, action, file, "lock taken");
        Ok(Grant::Granted { token, lease: view })
    }

    /// Extends the lease of `token` by the time to live.
    pub fn renew(&self, token: &str) -> Result<Holder, LockError> {
        check_token(token)?;
        let mut lease = self.live();
        match lease.as_mut() {
            Some(l) if l.token == token => {
                let now = Instant::now();
                l.expires = now + self.ttl;
                Ok(l.view(now))
            }
            _ => Err(LockError::Lapsed { ttl: self.ttl }),
        }
    }

    /// Gives the lease of `token` back; the lock as it is then. A lease
    /// that is no longer live is not an error: the lock is not the
    /// caller's either way.
    pub fn release(&self, token: &str) -> Result<Option<Holder>, LockError> {
        check_token(token)?;
        let mut lease = self.live();
        if lease.as_ref().is_some_and(|l| l.token == token)
            && let Some(l) = lease.take()
        {
            tracing::info!(holder = %l.holder, action = l.action, file = %l.file, held_ms = l.taken.elapsed().as_millis(), "lock released");
        }
        Ok(lease.as_ref().map(|l| l.view(Instant::now())))
    }

    /// Who holds the lock, if anyone.
    pub fn inspect(&self) -> Option<Holder> {
        self.live().as_ref().map(|l| l.view(Instant::now()))
    }

    /// Breaks the lock, whoever holds it; the lease it had.
    pub fn force_break(&self) -> Option<Holder> {
        self.live().take().map(|l| l.view(Instant::now()))
    }

    /// The fence of a change request carrying `token` (or none): passes
    /// with the live lease's token, or with no token while nobody holds
    /// the lock; refused with another's, or with one that is no longer live.
    pub fn check_fence(&self, token: Option<&str>) -> Result<(), LockError> {
        let lease = self.live();
        match (lease.as_ref(), token) {
            (Some(l), Some(t)) if l.token == t => Ok(()),
            (Some(l), _) => Err(LockError::Held(l.view(Instant::now()))),
            (None, Some(_)) => Err(LockError::Lapsed { ttl: self.ttl }),
            (None, None) => Ok(()),
        }
    }
}

fn check_token(token: &str) -> Result<(), LockError> {
    if rules::is_token(token) {
        Ok(())
    } else {
        Err(LockFieldError::Token.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/srv/environment.yaml";

    fn granted(g: Grant) -> String {
        match g {
            Grant::Granted { token, .. } => token,
            Grant::Held(h) => panic!("held: {h}"),
        }
    }

    #[test]
    fn one_holder_at_a_time_and_its_token_alone_passes_the_fence() {
        let locks = Locks::new(Duration::from_secs(10));
        locks.check_fence(None).unwrap();
        let token = granted(locks.acquire("CN=alice", "apply", FILE).unwrap());
        assert!(rules::is_token(&token), "{token}");
        match locks.acquire("CN=bob", "run", FILE).unwrap() {
            Grant::Held(h) => {
                assert_eq!(h.holder, "CN=alice");
                assert_eq!(h.action, "apply");
                let m = h.to_string();
                assert!(
                    m.contains("locked by CN=alice for apply of /srv/environment.yaml"),
                    "{m}"
                );
            }
            g => panic!("{g:?}"),
        }
        locks.check_fence(Some(&token)).unwrap();
        assert!(matches!(locks.check_fence(None), Err(LockError::Held(_))));
        let other = "0".repeat(32);
        assert!(matches!(
            locks.check_fence(Some(&other)),
            Err(LockError::Held(_))
        ));
        locks.renew(&token).unwrap();
        assert!(matches!(locks.renew(&other), Err(LockError::Lapsed { .. })));
        assert_eq!(locks.release(&token).unwrap(), None);
        assert!(matches!(
            locks.check_fence(Some(&token)),
            Err(LockError::Lapsed { .. })
        ));
        locks.check_fence(None).unwrap();
    }

    #[test]
    fn a_lease_lapses_without_renewal_and_its_token_is_fenced_off() {
        let locks = Locks::new(Duration::from_millis(100));
        let old = granted(locks.acquire("CN=alice", "run", FILE).unwrap());
        std::thread::sleep(Duration::from_millis(150));
        assert!(locks.inspect().is_none());
        assert!(matches!(locks.renew(&old), Err(LockError::Lapsed { .. })));
        let new = granted(locks.acquire("CN=bob", "apply", FILE).unwrap());
        assert!(matches!(
            locks.check_fence(Some(&old)),
            Err(LockError::Held(_))
        ));
        locks.check_fence(Some(&new)).unwrap();
        // Renewals keep it.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(50));
            locks.renew(&new).unwrap();
        }
        assert_eq!(locks.inspect().unwrap().holder, "CN=bob");
        assert_eq!(locks.force_break().unwrap().holder, "CN=bob");
        assert!(locks.inspect().is_none());
    }

    #[test]
    fn bad_fields_are_refused_naming_them() {
        let locks = Locks::new(Duration::from_secs(10));
        let e = locks.acquire("CN=a", "plan", FILE).unwrap_err();
        assert!(e.to_string().contains("action \"plan\""), "{e}");
        let e = locks.acquire("CN=a", "run", "relative.yaml").unwrap_err();
        assert!(e.to_string().contains("file: not an absolute path"), "{e}");
        let e = locks.renew("nope").unwrap_err();
        assert!(e.to_string().contains("token"), "{e}");
        assert!(locks.inspect().is_none());
    }
}
