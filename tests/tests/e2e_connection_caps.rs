//! End to end, one peer's idle TCP connections (no TLS handshake, no HTTP
//! request) to a server's gRPC port and to `/metrics`: beyond its share
//! they are closed at once, and a client from another address is served.

mod common;
use common::with_grpc;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use dockstack_proto as pb;
use dockstack_tests::testbed::{BedOptions, TestBed, ensure_test_image};

const METRICS_PORT: u16 = 9389;

/// Idle connections to `addr`, opened without pause for `how_long` by
/// `threads` threads from inside the host's network namespace: their
/// source is the host's own address, not the root namespace's that the
/// test's clients use. A connection the server refuses is kept too.
fn flood(bed: &TestBed, addr: SocketAddr, threads: usize, how_long: Duration) -> Flood {
    let until = Instant::now() + how_long;
    let netns = format!("/run/netns/{}", bed.host(0).netns());
    let handles = (0..threads)
        .map(|_| {
            let ns = File::open(&netns).expect("the host's netns");
            std::thread::spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                let mut conns = Vec::new();
                while Instant::now() < until {
                    if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                        conns.push(c);
                    }
                }
                conns
            })
        })
        .collect();
    Flood(handles)
}

struct Flood(Vec<std::thread::JoinHandle<Vec<TcpStream>>>);

impl Flood {
    fn connections(self) -> Vec<TcpStream> {
        self.0
            .into_iter()
            .flat_map(|h| h.join().expect("a flooding thread"))
            .collect()
    }
}

/// How many of `conns` the server has closed (end of stream or reset).
fn closed(conns: &mut [TcpStream]) -> usize {
    conns
        .iter_mut()
        .filter_map(|c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let shut = match c.read(&mut [0u8; 64]) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            };
            shut.then_some(())
        })
        .count()
}

/// A scrape from the root namespace: its status line.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: bed\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.lines().next().unwrap_or_default().to_string()
}

#[test]
fn one_peers_idle_connections_keep_no_other_client_out() {
    // The test's own descriptors: above the server's 1024 handshake slots.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
        .expect("setrlimit");
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions {
        server_args: vec!["--metrics".into(), format!("0.0.0.0:{METRICS_PORT}")],
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let mgmt: Ipv4Addr = bed.host(0).mgmt_ip();

    // gRPC: one peer opens idle connections faster than the handshake
    // timeout frees their slots; another client connects meanwhile.
    let attack = flood(&bed, bed.host(0).addr(), 8, Duration::from_secs(7));
    std::thread::sleep(Duration::from_secs(4));
    let listed = with_grpc(&bed, 0, async |mut c| {
        c.list(pb::ListRequest {
            host: bed.host(0).name().to_string(),
        })
        .await
    });
    let mut idle = attack.connections();
    listed.expect("a list while one peer floods the port with idle connections");
    // The last few may still wait in the kernel's accept queue, where the
    // server has not seen them yet: give it a moment to take and close them.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut shut = closed(&mut idle);
    while shut + 32 < idle.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        shut = closed(&mut idle);
    }
    eprintln!(
        "grpc: {} idle connections opened, {shut} closed",
        idle.len()
    );
    assert!(
        idle.len() > 1024 && shut >= idle.len() - 32,
        "{shut} of one peer's {} idle connections closed, want all but 32",
        idle.len()
    );
    drop(idle);

    // /metrics: one peer's idle connections, then a scrape from another.
    let metrics = SocketAddr::new(mgmt.into(), METRICS_PORT);
    let mut idle = flood(&bed, metrics, 1, Duration::from_millis(300)).connections();
    assert!(idle.len() > 40, "{} connections to /metrics", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let shut = closed(&mut idle);
    assert!(
        shut >= idle.len() - 4,
        "{shut} of one peer's {} idle /metrics connections closed at once, want all but 4",
        idle.len()
    );
    eprintln!(
        "metrics: {} idle connections opened, {shut} closed",
        idle.len()
    );
    let status = scrape(metrics);
    assert!(status.starts_with("HTTP/1.0 200"), "scrape: {status:?}");
}
