//! The gate every application starts behind (`pause/gate.c`): it executes
//! the application's own command only once its address is in the netns.
//!
//! Docker starts applications by itself (a restart policy, after a power
//! loss or a dockerd restart), maybe in its sandbox's new netns before the
//! server has plugged it; behind the gate the application's first
//! instruction still finds its address, and it need not be restarted once
//! the plug is done. A replacement's new application runs before the old
//! one stops, waiting here, so that Docker's start of the container (tens
//! of milliseconds of runc) is out of the address's gap.
//!
//! The program is embedded in the server and written to the state directory
//! under a name holding its hash, so a file a container has mounted is never
//! rewritten; the container gets it read-only at [`TARGET`].

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The gate program that build.rs compiles from `pause/gate.c`.
pub const GATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gate"));

/// Where the gate is mounted in the application container.
pub const TARGET: &str = "/.dockstack-gate";

/// What every line the gate writes (to stderr) starts with.
pub const SAYS: &str = "dockstack gate: ";
/// The gate's line once it waits for its addresses, its program found.
pub const WAITING: &str = "dockstack gate: waiting for";

/// The gate's process name (`/proc/PID/comm`) until it executes the
/// program: its file's name at [`TARGET`], which fits the kernel's 15
/// bytes.
pub const COMM: &str = ".dockstack-gate";
const _: () = assert!(COMM.len() <= 15);

/// Whether the gate still holds the container whose main process is `pid`
/// (Docker's; with `init` it is the init, and the gate its child): `None`
/// once that process is gone, `Some(false)` once the program runs.
pub fn holds(pid: u32) -> Option<bool> {
    let comm =
        |p: &str| fs::read_to_string(format!("/proc/{p}/comm")).map(|c| c.trim_end().to_string());
    let main = comm(&pid.to_string()).ok()?;
    if main == COMM {
        return Some(true);
    }
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let children: Vec<&str> = children.split_whitespace().collect();
    // An init that has not forked yet is still on its way to the gate.
    if main == "docker-init" && children.is_empty() {
        return Some(true);
    }
    Some(children.iter().any(|c| comm(c).is_ok_and(|c| c == COMM)))
}

/// How long the gate may take to say it waits: it does at once.
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot write the gate program {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "image {image} has no entrypoint and no command, and the container gives no command: \
         there is nothing to run"
    )]
    NothingToRun { image: String },
    /// The gate ended before it waited: the program cannot be run.
    #[error("{container} cannot start: {said}")]
    CannotStart { container: String, said: String },
}

/// The gate's file in `state_dir`, written there (whole, then renamed into
/// place) when it is not yet.
pub fn install(state_dir: &Path) -> Result<PathBuf, GateError> {
    let hash: String = Sha256::digest(GATE)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = state_dir.join(format!("gate-{hash}"));
    if fs::metadata(&path).is_ok_and(|m| m.len() == GATE.len() as u64) {
        return Ok(path);
    }
    let err = |source| GateError::Write {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(state_dir).map_err(err)?;
    let tmp = state_dir.join(format!("gate-{hash}.{}.tmp", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(GATE)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(path)
}

/// The entrypoint and command that run `image`'s own (or the container's
/// `command` over the image's) behind the gate of `addresses`. Docker runs
/// entrypoint then command, and drops an image's command once the
/// entrypoint is set: so the command is always given.
pub fn wrap(
    addresses: &[IpAddr],
    image: &str,
    image_entrypoint: &[String],
    image_cmd: &[String],
    command: &[String],
) -> Result<(Vec<String>, Vec<String>), GateError> {
    let cmd = if command.is_empty() {
        image_cmd.to_vec()
    } else {
        command.to_vec()
    };
    if image_entrypoint.is_empty() && cmd.is_empty() {
        return Err(GateError::NothingToRun {
            image: image.to_string(),
        });
    }
    let entrypoint = std::iter::once(TARGET.to_string())
        .chain(addresses.iter().map(IpAddr::to_string))
        .chain(std::iter::once("--".to_string()))
        .chain(image_entrypoint.iter().cloned())
        .collect();
    Ok((entrypoint, cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn the_gate_runs_what_docker_would_have_run() {
        let ip: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let (e, c) = wrap(&ip, "i", &s(&["/entry"]), &s(&["serve"]), &[]).unwrap();
        assert_eq!(e, s(&[TARGET, "10.0.0.5", "fd00::5", "--", "/entry"]));
        assert_eq!(c, s(&["serve"]));
        let (e, c) = wrap(&ip[..1], "i", &s(&["/entry"]), &s(&["serve"]), &s(&["x"])).unwrap();
        assert_eq!(e, s(&[TARGET, "10.0.0.5", "--", "/entry"]));
        assert_eq!(c, s(&["x"]));
        let (e, c) = wrap(&ip[..1], "i", &[], &s(&["sh"]), &[]).unwrap();
        assert_eq!(e, s(&[TARGET, "10.0.0.5", "--"]));
        assert_eq!(c, s(&["sh"]));
        assert!(matches!(
            wrap(&ip, "i", &[], &[], &[]),
            Err(GateError::NothingToRun { .. })
        ));
    }

    #[test]
    fn the_gate_is_written_once_and_executable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gate-test-{}", std::process::id()));
        let a = install(&dir).unwrap();
        let b = install(&dir).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs::read(&a).unwrap(), GATE);
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o755
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
