//! A minimal OVSDB JSON-RPC client (RFC 7047) over a unix socket: one
//! persistent connection, one request at a time, `transact` on
//! `Open_vSwitch`, and the few value encodings that needs.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The database every request of this crate talks to.
pub const DATABASE: &str = "Open_vSwitch";

/// How long a request may take when it does not wait for anything itself;
/// ovsdb-server answers in well under a millisecond.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error("unsupported ovsdb address {0:?} (only unix:PATH is supported)")]
    Address(String),
    #[error("cannot connect to ovsdb at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ovsdb at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ovsdb at {0} closed the connection")]
    Closed(PathBuf),
    #[error("ovsdb sent invalid json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("ovsdb {method} failed: {error}")]
    Rpc { method: String, error: String },
    #[error("ovsdb transaction failed at operation {index} ({op}): {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Op {
        index: usize,
        op: String,
        error: String,
        details: Option<String>,
    },
    #[error("ovsdb answered {what} with something unexpected: {value}")]
    Unexpected { what: String, value: String },
    #[error("ovsdb request thread failed: {0}")]
    Thread(String),
}

impl OvsdbError {
    /// True when no ovsdb-server listens at the address: no Open vSwitch on
    /// this host, which callers that only clean up treat as "nothing to do".
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            OvsdbError::Connect { source, .. }
                if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
        )
    }

    /// True when a `wait` operation with a timeout did not see its condition.
    pub fn is_timed_out_op(&self, at: usize) -> bool {
        matches!(self, OvsdbError::Op { index, error, .. } if *index == at && error == "timed out")
    }
}

type Result<T> = std::result::Result<T, OvsdbError>;

/// One ovsdb-server, reached through a persistent connection that is opened
/// on first use and opened again after any transport error.
///
/// Requests run on tokio's blocking pool with a blocking socket: a socket
/// registered with one tokio runtime hangs or fails when used from another,
/// and a request cancelled half-way through a write would corrupt the
/// stream; a blocking request always runs to its end, so neither can happen.
#[derive(Clone)]
pub struct Client {
    /// `Err` holds an address this client cannot use, reported on first use
    /// so that building a client never fails.
    path: std::result::Result<PathBuf, String>,
    conn: Arc<Mutex<Option<Conn>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("path", &self.path).finish()
    }
}

/// Where `ovs-vsctl` looks when given no `--db`.
pub fn default_socket() -> PathBuf {
    let rundir = std::env::var_os("OVS_RUNDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"));
    rundir.join("db.sock")
}

impl Client {
    /// `db` is `unix:PATH` (or a bare path); `None` is ovs-vsctl's default.
    pub fn new(db: Option<&str>) -> Self {
        let path = match db {
            None => Ok(default_socket()),
            Some(s) => match s.strip_prefix("unix:") {
                Some(p) => Ok(PathBuf::from(p)),
                None if s.starts_with('/') => Ok(PathBuf::from(s)),
                None => Err(s.to_string()),
            },
        };
        Client {
            path,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// The socket's path, or the unusable address.
    pub fn path(&self) -> Result<&Path> {
        self.path
            .as_deref()
            .map_err(|a| OvsdbError::Address(a.clone()))
    }

    /// Runs `ops` as one transaction on [`DATABASE`] and returns one result
    /// per operation. A failed operation or commit is an [`OvsdbError::Op`].
    /// `wait_for` is the longest `timeout` of a `wait` among `ops`.
    pub async fn transact(&self, ops: Vec<Value>, wait_for: Duration) -> Result<Vec<Value>> {
        let client = self.clone();
        let names: Vec<String> = ops
            .iter()
            .map(|op| op["op"].as_str().unwrap_or("?").to_string())
            .collect();
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(Value::String(DATABASE.into()));
        params.extend(ops);
        let result = tokio::task::spawn_blocking(move || {
            client.call("transact", Value::Array(params), IO_TIMEOUT + wait_for)
        })
        .await
        .map_err(|e| OvsdbError::Thread(e.to_string()))??;
        check_transact(result, &names)
    }

    /// Sends one request and returns its result, reconnecting once when a
    /// cached connection turns out to be dead before the request went out.
    fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value> {
        // A poisoned lock only means another request panicked; the
        // connection itself is dropped below on any error, so it is sound.
        let path = self.path()?;
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let reused = guard.is_some();
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(Conn::connect(path)?),
            };
            match conn.request(method, &params, timeout) {
                Ok(v) => return Ok(v),
                Err(Failure::Answered(e)) => return Err(e),
                Err(Failure::Unsent(e)) => {
                    *guard = None;
                    // Only a request that never reached the server may be
                    // sent again: a transaction that did may have committed.
                    if !reused {
                        return Err(e);
                    }
                }
                Err(Failure::Broken(e)) => {
                    *guard = None;
                    return Err(e);
                }
            }
        }
    }
}

/// Turns a `transact` result into one value per operation, or the error of
/// the first operation (or the commit) that failed.
fn check_transact(result: Value, names: &[String]) -> Result<Vec<Value>> {
    let Value::Array(results) = result else {
        return Err(OvsdbError::Unexpected {
            what: "transact".into(),
            value: result.to_string(),
        });
    };
    for (index, r) in results.iter().enumerate() {
        if let Some(error) = r.get("error").filter(|e| !e.is_null()) {
            return Err(OvsdbError::Op {
                index,
                op: names.get(index).cloned().unwrap_or_else(|| "commit".into()),
                error: error.as_str().unwrap_or_default().to_string(),
                details: r.get("details").and_then(Value::as_str).map(str::to_string),
            });
        }
    }
    Ok(results)
}

/// How a request failed, which decides what happens to the connection.
enum Failure {
    /// The server answered with an error; the connection is fine.
    Answered(OvsdbError),
    /// Nothing reached the server; the connection is dead.
    Unsent(OvsdbError),
    /// The request may have reached the server; the connection is dead.
    Broken(OvsdbError),
}

struct Conn {
    path: PathBuf,
    stream: UnixStream,
    buf: Vec<u8>,
    next_id: u64,
}

impl Conn {
    fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path).map_err(|source| OvsdbError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Conn {
            path: path.to_path_buf(),
            stream,
            buf: Vec::with_capacity(4096),
            next_id: 0,
        })
    }

    fn io(&self, source: std::io::Error) -> OvsdbError {
        OvsdbError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn request(
        &mut self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params});
        let bytes = serde_json::to_vec(&msg).map_err(|e| Failure::Unsent(e.into()))?;
        self.send(&bytes).map_err(|e| match e {
            SendError::Nothing(e) => Failure::Unsent(self.io(e)),
            SendError::Part(e) => Failure::Broken(self.io(e)),
        })?;
        let deadline = Instant::now() + timeout;
        loop {
            let msg = self.receive(deadline).map_err(Failure::Broken)?;
            if msg.get("method").and_then(Value::as_str) == Some("echo") {
                // The server's liveness probe: answer it or be disconnected.
                let reply = json!({"id": msg["id"], "result": msg["params"], "error": null});
                let bytes = serde_json::to_vec(&reply).map_err(|e| Failure::Broken(e.into()))?;
                self.send(&bytes)
                    .map_err(|(SendError::Nothing(e) | SendError::Part(e))| {
                        Failure::Broken(self.io(e))
                    })?;
                continue;
            }
            // Answers to requests of earlier, abandoned calls and
            // notifications are skipped: only our id answers us.
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(error) = msg.get("error").filter(|e| !e.is_null()) {
                return Err(Failure::Answered(OvsdbError::Rpc {
                    method: method.to_string(),
                    error: error.to_string(),
                }));
            }
            return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::result::Result<(), SendError> {
        self.stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(SendError::Nothing)?;
        let mut sent = 0;
        while sent < bytes.len() {
            // MSG_NOSIGNAL: a peer that went away must be an EPIPE error to
            // reconnect on, not a SIGPIPE that kills a process which did
            // not ignore it.
            match nix::sys::socket::send(
                self.stream.as_raw_fd(),
                &bytes[sent..],
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            )
            .map_err(std::io::Error::from)
            {
                Ok(0) => {
                    let e = std::io::ErrorKind::WriteZero.into();
                    return Err(if sent == 0 {
                        SendError::Nothing(e)
                    } else {
                        SendError::Part(e)
                    });
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if sent == 0 => return Err(SendError::Nothing(e)),
                Err(e) => return Err(SendError::Part(e)),
            }
        }
        Ok(())
    }

    /// Reads until one whole JSON value is buffered and returns it. OVSDB
    /// frames nothing: messages are simply concatenated JSON texts.
    fn receive(&mut self, deadline: Instant) -> Result<Value> {
        loop {
            if !self.buf.is_empty() {
                let mut stream =
                    serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
                match stream.next() {
                    Some(Ok(value)) => {
                        let used = stream.byte_offset();
                        self.buf.drain(..used);
                        return Ok(value);
                    }
                    Some(Err(e)) if !e.is_eof() => return Err(e.into()),
                    _ => {}
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.io(std::io::ErrorKind::TimedOut.into()));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| self.io(e))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(OvsdbError::Closed(self.path.clone())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
    }
}

enum SendError {
    Nothing(std::io::Error),
    Part(std::io::Error),
}

// Value encodings of RFC 7047, section 5.1.

/// `["map", [[k, v], ...]]`.
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", pairs])
}

/// `["set", [...]]`.
pub fn set(items: impl IntoIterator<Item = Value>) -> Value {
    json!(["set", items.into_iter().collect::<Vec<_>>()])
}

pub fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

pub fn named_uuid(name: &str) -> Value {
    json!(["named-uuid", name])
}

/// The condition `[column, "==", value]`.
pub fn eq(column: &str, value: impl Into<Value>) -> Value {
    json!([column, "==", value.into()])
}

/// The members of a set column, whether sent as a bare atom or a set.
pub fn set_members(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .map(|items| items.iter().collect())
            .unwrap_or_default(),
        other => vec![other],
    }
}

/// The uuid string of `["uuid", "..."]`.
pub fn as_uuid(v: &Value) -> Option<&str> {
    match v {
        Value::Array(a) if a.len() == 2 && a[0] == "uuid" => a[1].as_str(),
        _ => None,
    }
}

/// The pairs of a map column.
pub fn map_pairs(v: &Value) -> Vec<(String, String)> {
    v.get(1)
        .and_then(Value::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.into(), p.get(1)?.as_str()?.into())))
                .collect()
        })
        .unwrap_or_default()
}

/// The single integer of an optional integer column (`["set", []]` is none).
pub fn optional_int(v: &Value) -> Option<i64> {
    set_members(v).first().and_then(|x| x.as_i64())
}

/// The single string of an optional string column.
pub fn optional_str(v: &Value) -> Option<&str> {
    set_members(v).first().and_then(|x| x.as_str())
}

/// The `rows` of a `select` result.
pub fn rows(result: &Value) -> &[Value] {
    result
        .get("rows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sets_maps_and_optionals() {
        assert_eq!(set_members(&json!(["set", [1, 2]])).len(), 2);
        assert_eq!(set_members(&json!(["uuid", "x"])).len(), 1);
        assert_eq!(optional_int(&json!(["set", []])), None);
        assert_eq!(optional_int(&json!(7)), Some(7));
        assert_eq!(optional_str(&json!("e")), Some("e"));
        let m = map([("container_id", "web1"), ("container_iface", "eth0")]);
        assert_eq!(
            map_pairs(&m),
            vec![
                ("container_id".to_string(), "web1".to_string()),
                ("container_iface".to_string(), "eth0".to_string())
            ]
        );
        assert_eq!(as_uuid(&uuid("abc")), Some("abc"));
    }

    #[test]
    fn transact_errors_name_the_failing_operation() {
        let names = vec!["wait".to_string(), "insert".to_string()];
        let err = check_transact(
            json!([{"error": "timed out", "details": "\"wait\" timed out"}, null]),
            &names,
        )
        .unwrap_err();
        assert!(err.is_timed_out_op(0), "{err}");
        assert!(err.to_string().contains("operation 0 (wait)"), "{err}");
        let err = check_transact(
            json!([{}, {"uuid": ["uuid", "x"]}, {"error": "constraint violation"}]),
            &names,
        )
        .unwrap_err();
        assert!(err.to_string().contains("(commit)"), "{err}");
        assert_eq!(check_transact(json!([{}, {}]), &names).unwrap().len(), 2);
    }

    #[test]
    fn addresses_are_unix_paths() {
        assert_eq!(
            Client::new(Some("unix:/x/db.sock")).path().unwrap(),
            Path::new("/x/db.sock")
        );
        assert!(Client::new(Some("tcp:1.2.3.4:6640")).path().is_err());
    }
}
