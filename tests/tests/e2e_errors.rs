//! End to end: what the client says when the file points at the wrong
//! port: one clause per cause, and what to check. Nothing listening, a
//! listener that never answers, and another program (an HTTP server)
//! listening, with TLS and without. (A dockstack server that refuses is
//! e2e_tls's.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use dockstack_tests::support::text;
use dockstack_tests::testbed::find_binary;

/// An HTTP/1 server on a port of the loopback: it answers anything with a 400.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// A listener of the loopback that never takes a connection: its accept
/// queue (of one) is full, so the kernel drops every further SYN and a
/// client's connect times out, all on this machine.
fn full_backlog() -> (TcpListener, std::net::TcpStream, u16) {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket this function owns; it only lowers
    // the backlog of a listening socket.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let port = listener.local_addr().unwrap().port();
    let filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    (listener, filler, port)
}

/// A port of the loopback nobody listens on (bound, then let go).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `dockstack status` against host h1 at 127.0.0.1:`port`; its stderr.
fn status(dir: &Path, port: u16, tls: bool) -> String {
    status_within(dir, port, tls, 3)
}

/// [`status`] with `--connect-timeout SECS`.
fn status_within(dir: &Path, port: u16, tls: bool, secs: u32) -> String {
    let env = dir.join(format!("env-{port}.yaml"));
    std::fs::write(
        &env,
        format!("containerhosts:\n  h1: {{ip: 127.0.0.1, port: {port}}}\ncontainers:\n  web1: {{image: web, ip: 10.0.0.2, mask: 24, bridge: br0, host: h1}}\n"),
    )
    .unwrap();
    let bin = find_binary("dockstack", "DOCKSTACK_BIN").unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-f").arg(&env);
    if tls {
        let made = Command::new(cmd.get_program())
            .arg("-f")
            .arg(&env)
            .arg("--tls-dir")
            .arg(dir.join("tls"))
            .args(["certs", "init", "--force"])
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", text(&made));
        cmd.arg("--tls-dir").arg(dir.join("tls"));
    } else {
        cmd.arg("--insecure");
    }
    let out = cmd
        .args(["--connect-timeout", &secs.to_string(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_wrong_port_is_said_once_with_what_to_check() {
    let dir = Dir(std::env::temp_dir().join(format!("dockstack-errors-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();

    let port = closed_port();
    for tls in [false, true] {
        let err = status(&dir.0, port, tls);
        assert_eq!(
            failed_lines(&err),
            [format!(
                "FAILED host h1 (127.0.0.1:{port}) is unreachable: connection refused: nothing listens on that port (is dockstack-server running there, and is the port right?)"
            )],
            "{err}"
        );
    }

    let port = http_server();
    for tls in [false, true] {
        let err = status(&dir.0, port, tls);
        assert_eq!(
            failed_lines(&err),
            [format!(
                "FAILED host h1 (127.0.0.1:{port}) answered as an HTTP server, not as a dockstack server: is the port right?"
            )],
            "{err}"
        );
    }
}

#[test]
fn a_listener_that_never_answers_is_a_connect_timeout() {
    let dir = Dir(std::env::temp_dir().join(format!("dockstack-timeout-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (_listener, _filler, port) = full_backlog();
    for tls in [false, true] {
        let err = status_within(&dir.0, port, tls, 1);
        assert_eq!(
            failed_lines(&err),
            [format!(
                "FAILED host h1 (127.0.0.1:{port}) is unreachable: no answer within the connect timeout (--connect-timeout): is the address right and the host up?"
            )],
            "{err}"
        );
    }
}

/// The `FAILED` lines of a client's stderr.
fn failed_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("FAILED"))
        .map(str::to_string)
        .collect()
}
