//! ovs-vswitchd's control socket (unixctl, JSON-RPC 1.0 over a Unix
//! socket), for what OVSDB does not reach: the flows its datapath caches.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum UnixctlError {
    #[error("no control socket of ovs-vswitchd beside {0}")]
    NotFound(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected answer: {answer}")]
    Protocol { path: PathBuf, answer: String },
    #[error("ovs-vswitchd refused {command}: {error}")]
    Command { command: String, error: String },
}

type Result<T> = std::result::Result<T, UnixctlError>;

/// How long one command may take before the session gives up.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The control socket of the ovs-vswitchd whose database listens at
/// `db_socket`, found as `ovs-appctl -t ovs-vswitchd` finds it: in the same
/// run directory, `ovs-vswitchd.<pid>.ctl` by its pidfile, else
/// `ovs-vswitchd.ctl` (a daemon started with `--unixctl` there).
pub fn vswitchd_socket(db_socket: &Path) -> Result<PathBuf> {
    let dir = db_socket.parent().unwrap_or(Path::new("/"));
    let by_pid = std::fs::read_to_string(dir.join("ovs-vswitchd.pid"))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .map(|pid| dir.join(format!("ovs-vswitchd.{pid}.ctl")));
    by_pid
        .into_iter()
        .chain([dir.join("ovs-vswitchd.ctl")])
        .find(|p| p.exists())
        .ok_or_else(|| UnixctlError::NotFound(dir.to_path_buf()))
}

/// One connection to a control socket; commands run one after another.
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    stream: UnixStream,
    next_id: u64,
}

impl Session {
    pub fn connect(path: &Path) -> Result<Self> {
        let io = |source| UnixctlError::Io {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        Ok(Session {
            path: path.to_path_buf(),
            stream,
            next_id: 0,
        })
    }

    /// Runs `command` with `params`, as `ovs-appctl COMMAND PARAMS...`
    /// would, and returns its output.
    pub fn call(&mut self, command: &str, params: &[&str]) -> Result<String> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"method": command, "params": params, "id": id});
        let io = |source| UnixctlError::Io {
            path: self.path.clone(),
            source,
        };
        self.stream
            .write_all(request.to_string().as_bytes())
            .map_err(io)?;
        let reply = self.read_reply()?;
        if reply["id"] != json!(id) {
            return Err(UnixctlError::Protocol {
                path: self.path.clone(),
                answer: reply.to_string(),
            });
        }
        match (&reply["error"], &reply["result"]) {
            (Value::Null, Value::String(out)) => Ok(out.clone()),
            (Value::Null, _) => Ok(String::new()),
            (error, _) => Err(UnixctlError::Command {
                command: command.to_string(),
                error: error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_string),
            }),
        }
    }

    /// Reads until the bytes so far make one JSON value.
    fn read_reply(&mut self) -> Result<Value> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|source| UnixctlError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(UnixctlError::Protocol {
                    path: self.path.clone(),
                    answer: format!(
                        "connection closed after {:?}",
                        String::from_utf8_lossy(&buf)
                    ),
                });
            }
            buf.extend_from_slice(&chunk[..n]);
            match serde_json::from_slice::<Value>(&buf) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_eof() => continue,
                Err(e) => {
                    return Err(UnixctlError::Protocol {
                        path: self.path.clone(),
                        answer: e.to_string(),
                    });
                }
            }
        }
    }
}

/// The ufids of the flows in `dpctl/dump-flows -m` output.
pub fn dumped_ufids(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter_map(|line| line.trim_start().strip_prefix("ufid:"))
        .filter_map(|rest| rest.split([',', ' ']).next())
        .filter(|ufid| !ufid.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ufids_are_read_from_a_verbose_dump() {
        let dump = "flow-dump from the main thread:\n\
            ufid:051a826f-56f4-47af-bde8-1a74642e52a7, recirc_id(0),in_port(br0),eth(src=7a:91:fd:9e:11:4c,dst=02:d5:0a:f0:00:0f), packets:1, bytes:42, used:0.1s, actions:drop\n\
            ufid:4f927141-2a58-4a7e-87a0-336431df1fd4, recirc_id(0),in_port(br0), actions:drop\n";
        assert_eq!(
            dumped_ufids(dump),
            [
                "051a826f-56f4-47af-bde8-1a74642e52a7",
                "4f927141-2a58-4a7e-87a0-336431df1fd4"
            ]
        );
        assert!(dumped_ufids("flow-dump from the main thread:\n").is_empty());
    }

    #[test]
    fn the_socket_is_found_by_pidfile_or_fixed_name() {
        let dir = std::env::temp_dir().join(format!("netplug-unixctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db.sock");
        assert!(matches!(
            vswitchd_socket(&db),
            Err(UnixctlError::NotFound(_))
        ));
        std::fs::write(dir.join("ovs-vswitchd.ctl"), "").unwrap();
        assert_eq!(vswitchd_socket(&db).unwrap(), dir.join("ovs-vswitchd.ctl"));
        std::fs::write(dir.join("ovs-vswitchd.pid"), "4242\n").unwrap();
        std::fs::write(dir.join("ovs-vswitchd.4242.ctl"), "").unwrap();
        assert_eq!(
            vswitchd_socket(&db).unwrap(),
            dir.join("ovs-vswitchd.4242.ctl")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
