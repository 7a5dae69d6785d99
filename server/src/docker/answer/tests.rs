//! The deadline against a fake dockerd on a unix socket that answers
//! `/_ping` and `/containers/json` each after a delay of the test's choosing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::docker::{DockerClient, DockerError};
use crate::envkey::EnvKey;

/// The fake's delays, in milliseconds, changed by the test as it goes.
#[derive(Default)]
struct Delays {
    ping_ms: AtomicU64,
    list_ms: AtomicU64,
}

async fn serve(listener: UnixListener, delays: Arc<Delays>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(connection(stream, Arc::clone(&delays)));
    }
}

/// One keep-alive connection: GET requests only, which have no body.
async fn connection(mut stream: UnixStream, delays: Arc<Delays>) {
    let mut buf = Vec::new();
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let (delay, body) = if path.ends_with("/_ping") {
            (&delays.ping_ms, "OK")
        } else if path.contains("/containers/json") {
            (&delays.list_ms, "[]")
        } else {
            (
                &AtomicU64::new(0),
                r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.24"}"#,
            )
        };
        tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Fake {
    delays: Arc<Delays>,
    _dir: PathBuf,
    uri: String,
}

fn fake(name: &str) -> Fake {
    let dir = std::env::temp_dir().join(format!(
        "dockstack-fake-docker-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("docker.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let delays = Arc::new(Delays::default());
    tokio::spawn(serve(listener, Arc::clone(&delays)));
    Fake {
        delays,
        uri: format!("unix://{}", Path::new(&sock).display()),
        _dir: dir,
    }
}

async fn client(fake: &Fake) -> DockerClient {
    DockerClient::connect(
        Some(&fake.uri),
        "h1",
        EnvKey::from_bytes([7; 32]),
        Duration::from_secs(1),
    )
    .await
    .expect("connect to the fake dockerd")
}

#[tokio::test]
async fn a_busy_docker_that_answers_pings_is_waited_on_past_the_deadline() {
    let fake = fake("busy");
    let docker = client(&fake).await;
    fake.delays.list_ms.store(2500, Ordering::Relaxed);
    let began = Instant::now();
    let listed = docker.list_managed().await;
    assert!(listed.is_ok(), "{listed:?}");
    assert!(began.elapsed() >= Duration::from_millis(2500));
}

#[tokio::test]
async fn a_docker_that_answers_no_ping_either_fails_this_call_and_the_next_at_once() {
    let fake = fake("hung");
    let docker = client(&fake).await;
    fake.delays.list_ms.store(60_000, Ordering::Relaxed);
    fake.delays.ping_ms.store(60_000, Ordering::Relaxed);
    let began = Instant::now();
    let err = docker.list_managed().await.unwrap_err();
    assert!(
        matches!(err, DockerError::NoAnswer { secs: 1, .. }),
        "{err}"
    );
    // The deadline, then a ping's wait (at most the deadline).
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let began = Instant::now();
    let err = docker.list_managed().await.unwrap_err();
    assert!(matches!(err, DockerError::NoAnswer { .. }), "{err}");
    assert!(
        began.elapsed() < Duration::from_millis(100),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_call_busy_past_six_deadlines_fails_alone() {
    let fake = fake("slow");
    let docker = client(&fake).await;
    fake.delays.list_ms.store(60_000, Ordering::Relaxed);
    let err = docker.list_managed().await.unwrap_err();
    assert!(
        matches!(err, DockerError::NoAnswer { secs: 6, .. }),
        "{err}"
    );
    // Docker answered pings all along: the next call asks it.
    fake.delays.list_ms.store(0, Ordering::Relaxed);
    let listed = docker.list_managed().await;
    assert!(listed.is_ok(), "{listed:?}");
}
