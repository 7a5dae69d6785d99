//! Entering another network namespace, always on a dedicated thread that
//! returns to its own namespace before it ends.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};

/// Where a container's network namespace is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    /// The network namespace of a running process.
    Pid(u32),
    /// A bind-mounted namespace file, e.g. `/run/netns/NAME`.
    Path(PathBuf),
}

impl NetnsTarget {
    pub fn path(&self) -> PathBuf {
        match self {
            NetnsTarget::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            NetnsTarget::Path(p) => p.clone(),
        }
    }

    /// Opens the namespace file; the open file keeps the namespace alive.
    pub fn open(&self) -> Result<File, NetnsError> {
        let path = self.path();
        File::open(&path).map_err(|source| NetnsError::Open { path, source })
    }
}

impl std::fmt::Display for NetnsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetnsTarget::Pid(pid) => write!(f, "netns of pid {pid}"),
            NetnsTarget::Path(p) => write!(f, "netns {}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot open network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter network namespace: {0}")]
    Enter(nix::Error),
    #[error("cannot return to the original network namespace: {0}")]
    Return(nix::Error),
    #[error("namespace thread failed: {0}")]
    Thread(String),
}

/// Runs `f` on a thread whose network namespace is `netns`, and returns
/// its result: a new thread, unless a pooled one is in `netns` already.
/// Sockets that `f` creates stay bound to `netns` after the thread has gone
/// back, so callers use them from anywhere.
///
/// The thread puts itself back into its original namespace whether `f`
/// succeeded or not, and it ends right after, so no thread of the process is
/// ever left in a foreign namespace.
pub async fn run_in_netns<T, F>(netns: &File, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let dup = || {
        netns
            .try_clone()
            .map_err(|e| NetnsError::Thread(format!("dup namespace fd: {e}")))
    };
    let runtime = tokio::runtime::Handle::try_current().ok();
    // When the caller is in `netns` (the host's, as a rule), so are the
    // runtime's pooled threads as a rule; one that is runs `f` as it is: it
    // enters nothing, so it cannot be left anywhere, and no thread is
    // started for it.
    let f = match &runtime {
        Some(rt) if is_current(netns) => {
            let target = dup()?;
            rt.spawn_blocking(move || if is_current(&target) { Ok(f()) } else { Err(f) })
                .await
                .map_err(|e| NetnsError::Thread(e.to_string()))?
        }
        _ => Err(f),
    };
    let f = match f {
        Ok(value) => return Ok(value),
        Err(f) => f,
    };
    let target = dup()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netplug-netns".into())
        .spawn(move || {
            let result = enter_and_run(&target, runtime, f);
            let _ = tx.send(result);
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?;
    rx.await
        .map_err(|_| NetnsError::Thread("namespace thread panicked".into()))?
}

/// Whether `netns` is the calling thread's network namespace.
fn is_current(netns: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        netns.metadata(),
        std::fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn enter_and_run<T, F>(
    target: &File,
    runtime: Option<tokio::runtime::Handle>,
    f: F,
) -> Result<T, NetnsError>
where
    F: FnOnce() -> T,
{
    let own = File::open("/proc/thread-self/ns/net").map_err(|source| NetnsError::Open {
        path: "/proc/thread-self/ns/net".into(),
        source,
    })?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(NetnsError::Enter)?;
    // Sockets registered with the tokio reactor need its context while they
    // are created; the guard is dropped before we leave the namespace.
    let value = {
        let _guard = runtime.as_ref().map(|rt| rt.enter());
        f()
    };
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET).map_err(NetnsError::Return)?;
    Ok(value)
}
