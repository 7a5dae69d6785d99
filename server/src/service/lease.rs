//! The gRPC face of the change lock ([`crate::lock`]): the `HostLock`
//! calls, and the fence every change request of `ContainerHost` passes.

use std::time::{Duration, UNIX_EPOCH};

use dockstack_proto as pb;
use dockstack_types::lock::{LEASE_HEADER, check_action};
use tonic::{Request, Response, Status};

use super::{Allowed, HostService};
use crate::lock::{Grant, Holder, LockError, Locks};
use crate::policy::Action;

/// Whether `action` changes the host, and so passes the fence.
fn fenced(action: Action) -> bool {
    matches!(
        action,
        Action::Run
            | Action::Start
            | Action::Restart
            | Action::Stop
            | Action::Destroy
            | Action::Register
            | Action::Deregister
    )
}

/// The fence of a change request: the lease token it carries (if any)
/// must be the live lease's, or no lease must be live. A token that is no
/// text is no lease's.
pub(super) fn fence<T>(locks: &Locks, req: &Request<T>, action: Action) -> Result<(), LockError> {
    if !fenced(action) {
        return Ok(());
    }
    let token = req
        .metadata()
        .get(LEASE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    locks.check_fence(token)
}

/// The policy's action a lock taken for `action` needs: the role must be
/// allowed to do what it locks for (`apply` runs, at least).
fn needs(action: &str) -> Action {
    match action {
        "destroy" => Action::Destroy,
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "register" => Action::Register,
        "deregister" => Action::Deregister,
        _ => Action::Run,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn holder_to_pb(h: Holder) -> pb::LockHolder {
    pb::LockHolder {
        holder: h.holder,
        action: h.action.to_string(),
        file: h.file,
        since_unix_ms: h.since.duration_since(UNIX_EPOCH).map_or(0, millis),
        age_ms: millis(h.age),
        expires_in_ms: millis(h.expires_in),
    }
}

impl From<LockError> for Status {
    fn from(e: LockError) -> Status {
        match e {
            LockError::Field(_) => Status::invalid_argument(e.to_string()),
            LockError::Lapsed { .. } | LockError::Held(_) => Status::aborted(e.to_string()),
            LockError::Random(_) => Status::internal(e.to_string()),
        }
    }
}

impl Allowed {
    /// The status of a change request the fence refused, logged.
    pub(super) fn fenced(&self, action: Action, container: &str, e: LockError) -> Status {
        tracing::warn!(client = %self.client, action = action.name(), ?container, error = %e, "refused by the change lock");
        let status = Status::from(e);
        Status::new(
            status.code(),
            format!(
                "refused: {} of {container}: {}",
                action.name(),
                status.message()
            ),
        )
    }
}

impl HostService {
    fn ttl_ms(&self) -> u32 {
        u32::try_from(self.locks.ttl().as_millis()).unwrap_or(u32::MAX)
    }
}

#[tonic::async_trait]
impl pb::host_lock_server::HostLock for HostService {
    async fn acquire(
        &self,
        req: Request<pb::LockAcquireRequest>,
    ) -> Result<Response<pb::LockGrant>, Status> {
        let action = check_action(&req.get_ref().action).map_err(LockError::from)?;
        self.host.check_host(&req.get_ref().host)?;
        let on = format!("on host {}", req.get_ref().host);
        let who = self.allow(&req, needs(action), &on)?;
        let req = req.into_inner();
        let grant = match self.locks.acquire(&who.client, action, &req.file)? {
            Grant::Granted { token, lease } => pb::LockGrant {
                granted: true,
                token,
                ttl_ms: self.ttl_ms(),
                holder: Some(holder_to_pb(lease)),
            },
            Grant::Held(h) => pb::LockGrant {
                granted: false,
                token: String::new(),
                ttl_ms: self.ttl_ms(),
                holder: Some(holder_to_pb(h)),
            },
        };
        Ok(Response::new(grant))
    }

    async fn renew(&self, req: Request<pb::LockLease>) -> Result<Response<pb::LockGrant>, Status> {
        self.allow(&req, Action::List, "")?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let lease = self.locks.renew(&req.token)?;
        Ok(Response::new(pb::LockGrant {
            granted: true,
            token: req.token,
            ttl_ms: self.ttl_ms(),
            holder: Some(holder_to_pb(lease)),
        }))
    }

    async fn release(
        &self,
        req: Request<pb::LockLease>,
    ) -> Result<Response<pb::LockState>, Status> {
        self.allow(&req, Action::List, "")?;
        let req = req.into_inner();
        self.host.check_host(&req.host)?;
        let holder = self.locks.release(&req.token)?;
        Ok(Response::new(pb::LockState {
            holder: holder.map(holder_to_pb),
        }))
    }

    async fn inspect(
        &self,
        req: Request<pb::LockInspectRequest>,
    ) -> Result<Response<pb::LockState>, Status> {
        self.allow(&req, Action::List, "")?;
        self.host.check_host(&req.get_ref().host)?;
        Ok(Response::new(pb::LockState {
            holder: self.locks.inspect().map(holder_to_pb),
        }))
    }

    async fn r#break(
        &self,
        req: Request<pb::LockInspectRequest>,
    ) -> Result<Response<pb::LockState>, Status> {
        let who = self.allow(&req, Action::Unlock, "")?;
        self.host.check_host(&req.get_ref().host)?;
        let broken = self.locks.force_break();
        match &broken {
            Some(h) => tracing::warn!(
                target: "audit",
                client = %who.client,
                role = %who.role,
                action = "unlock",
                holder = %h.holder,
                held_for = h.action,
                file = %h.file,
                age_ms = millis(h.age),
                "lock broken"
            ),
            None => {
                tracing::info!(target: "audit", client = %who.client, role = %who.role, action = "unlock", "unlock: nobody held the lock")
            }
        }
        Ok(Response::new(pb::LockState {
            holder: broken.map(holder_to_pb),
        }))
    }
}
