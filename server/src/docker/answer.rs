//! Whether Docker answers: every call a request waits on has a deadline
//! (`--docker-timeout`), and once one call has gone unanswered the next ones
//! fail at once, until a probe finds Docker answering again. A dockerd that
//! hangs (paused, wedged on a storage driver) then costs one call's wait,
//! not one wait and one open connection per request that comes meanwhile.
//! A dockerd that is only busy (a hundred creates queued behind its locks)
//! still answers a ping at once: a call past its deadline is waited on
//! while Docker does, up to [`BUSY_FACTOR`] deadlines.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;

use super::{DockerClient, DockerError};

/// How long the probe waits between two pings that failed at once (a
/// dockerd that is restarting refuses them rather than hanging).
const PROBE_PAUSE: Duration = Duration::from_millis(200);

/// How many deadlines a call may take while Docker answers pings meanwhile:
/// 6 × the default 20 s is kubelet's 2 minutes for a runtime request.
pub(super) const BUSY_FACTOR: u32 = 6;

/// The longest a ping may take, past a call's deadline, for Docker to count
/// as busy rather than hung.
const PING_WITHIN: Duration = Duration::from_secs(5);

/// Shared by every clone of a [`DockerClient`].
#[derive(Debug, Default)]
pub(super) struct Answering {
    /// Set from a call that went unanswered until a ping is answered.
    silent: AtomicBool,
}

impl DockerClient {
    /// The error of a call Docker did not answer in time.
    fn no_answer(&self) -> DockerError {
        self.no_answer_within(self.deadline)
    }

    fn no_answer_within(&self, waited: Duration) -> DockerError {
        DockerError::NoAnswer {
            uri: self.uri.clone(),
            secs: waited.as_secs(),
        }
    }

    /// `call` (a request to Docker) within the deadline; or, when Docker
    /// did not answer the last call, the error that says so at once. The
    /// inner result is Docker's own answer, for the caller to read.
    pub(super) async fn answered<T>(
        &self,
        call: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<Result<T, BollardError>, DockerError> {
        if self.answering.silent.load(Ordering::Acquire) {
            return Err(self.no_answer());
        }
        let mut call = std::pin::pin!(call);
        let mut waited = Duration::ZERO;
        loop {
            let answer = tokio::time::timeout(self.deadline, &mut call).await;
            waited += self.deadline;
            match answer {
                Ok(Err(BollardError::RequestTimeoutError)) => break,
                Ok(answer) => return Ok(answer),
                // Busy for too long is this call's failure alone; only a
                // Docker that does not ping either fails the calls to come.
                Err(_) if waited >= self.deadline * BUSY_FACTOR => {
                    return Err(self.no_answer_within(waited));
                }
                Err(_) if !self.pings().await => break,
                Err(_) => tracing::debug!(
                    docker = %self.uri,
                    waited_s = waited.as_secs(),
                    "Docker is slow to answer a call but answers a ping: still waiting"
                ),
            }
        }
        self.went_silent();
        Err(self.no_answer_within(waited))
    }

    /// Whether Docker answers a ping soon: busy, not hung.
    async fn pings(&self) -> bool {
        let within = PING_WITHIN.min(self.deadline);
        matches!(
            tokio::time::timeout(within, self.docker.ping()).await,
            Ok(Ok(_))
        )
    }

    /// Before a call that may rightly take longer than the deadline (a stop
    /// that waits out a grace period): whether Docker answers at all.
    pub(super) async fn answers(&self) -> Result<(), DockerError> {
        // A ping that fails otherwise is left to the call that follows.
        self.answered(self.docker.ping()).await.map(drop)
    }

    /// Marks Docker silent and, unless one runs already, starts the probe
    /// that clears the mark once a ping is answered.
    fn went_silent(&self) {
        if self.answering.silent.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            docker = %self.uri,
            timeout_s = self.deadline.as_secs(),
            "Docker did not answer in time: requests fail at once until it answers again"
        );
        tokio::spawn(probe(
            self.docker.clone(),
            Arc::clone(&self.answering),
            self.deadline,
            self.uri.clone(),
        ));
    }
}

/// Pings until Docker answers, then clears the mark: one call at a time,
/// each within the deadline.
async fn probe(docker: Docker, answering: Arc<Answering>, deadline: Duration, uri: String) {
    let began = std::time::Instant::now();
    loop {
        match tokio::time::timeout(deadline, docker.ping()).await {
            Ok(Ok(_)) => break,
            Ok(Err(_)) => tokio::time::sleep(PROBE_PAUSE).await,
            Err(_) => {}
        }
    }
    answering.silent.store(false, Ordering::Release);
    tracing::info!(
        docker = %uri,
        silent_ms = began.elapsed().as_millis(),
        "Docker answers again"
    );
}

#[cfg(test)]
mod tests;
