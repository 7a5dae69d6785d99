//! Benchmark: how long a recreated container's address goes unanswered, and
//! whose time that is. A dnsmasq container on a 1-host bed is asked a DNS
//! question every 5 ms from the host's namespace while `apply --yes`
//! recreates it (a changed `env`). The gap is split into the old
//! container's graceful stop (Docker's `kill` to its `die`), dockstack's own
//! work (the old `die` to the address back on the wire: the first ARP
//! packet from it afterwards, which the plug's announcement sends) and the
//! new application's start (that packet to the first answer: its gate
//! opening, its exec and dnsmasq's start). Docker's start of the new
//! container comes before the old one's stop (it waits behind its gate), and
//! is printed as how long before the old `die` it was. Build the release
//! binaries first (`cargo build --release --workspace --bins`), then
//! `cargo run --release -p dockstack-tests --bin bench-gap`.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use dockstack_tests::bench::timed;
use dockstack_tests::testbed::{
    BedContainer, BedOptions, DNSMASQ_IMAGE, TestBed, docker, ensure_dnsmasq_image,
};

const RUNS: usize = 5;
/// How often the querier asks.
const EVERY: Duration = Duration::from_millis(5);

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-gap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A question for `gap.test` A, with id `id`.
fn query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["gap", "test"] {
        q.push(u8::try_from(label.len()).unwrap_or(0));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Asks `server` every [`EVERY`] from the network namespace `netns`, and
/// keeps the wall-clock time of every answer (an answer with an address).
struct Querier {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<SystemTime>>>,
    handle: JoinHandle<Result<()>>,
}

impl Querier {
    fn start(netns: &str, server: Ipv4Addr) -> Result<Self> {
        let ns = File::open(format!("/run/netns/{netns}"))
            .with_context(|| format!("opening the namespace {netns}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let answers = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&answers);
        let handle = std::thread::spawn(move || -> Result<()> {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .context("entering the host's namespace")?;
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.connect(SocketAddrV4::new(server, 53))?;
            let mut id: u16 = 0;
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let _ = socket.send(&query(id));
                let next = Instant::now() + EVERY;
                while let Some(left) = next.checked_duration_since(Instant::now()) {
                    if left.is_zero() {
                        break;
                    }
                    socket.set_read_timeout(Some(left))?;
                    match socket.recv(&mut buf) {
                        // An answer (QR set, no error, one record at least).
                        Ok(n) if n > 12 && buf[2] & 0x80 != 0 && buf[3] & 0x0f == 0 => {
                            if buf[6] != 0 || buf[7] != 0 {
                                let now = SystemTime::now();
                                kept.lock().unwrap_or_else(|e| e.into_inner()).push(now);
                            }
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            break;
                        }
                        // The port unreachable of a namespace without dnsmasq.
                        Err(_) => std::thread::sleep(left),
                    }
                }
            }
            Ok(())
        });
        Ok(Querier {
            stop,
            answers,
            handle,
        })
    }

    /// Waits (up to `limit`) for an answer later than `after`.
    fn answered_after(&self, after: SystemTime, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            if answers.last().is_some_and(|t| *t > after) {
                return true;
            }
            drop(answers);
            std::thread::sleep(EVERY);
        }
        false
    }

    fn finish(self) -> Result<Vec<SystemTime>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow!("the querier panicked"))??;
        Ok(std::mem::take(
            &mut *self.answers.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// Keeps the wall-clock time of every ARP packet the address `ip` sends,
/// as seen in the network namespace `netns`.
struct ArpWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SystemTime>>>,
    handle: JoinHandle<Result<()>>,
}

impl ArpWatch {
    fn start(netns: &str, ip: Ipv4Addr) -> Result<Self> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let ns = File::open(format!("/run/netns/{netns}"))
            .with_context(|| format!("opening the namespace {netns}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&seen);
        let handle = std::thread::spawn(move || -> Result<()> {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .context("entering the host's namespace")?;
            let proto = i32::from(u16::try_from(libc::ETH_P_ARP)?.to_be());
            // SAFETY: socket takes plain integers and returns a new fd or -1.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
            ensure!(
                fd >= 0,
                "packet socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: the fd was just returned by the kernel and is ours alone.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            // SAFETY: the option's value is a timeval of the size given.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    std::ptr::from_ref(&timeout).cast(),
                    u32::try_from(std::mem::size_of::<libc::timeval>())?,
                );
            }
            let mut buf = [0u8; 128];
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: buf is writable for its length.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                // Ethernet header (14), then ARP: the sender's IPv4 at 14..18.
                if n >= 42 && buf[28..32] == ip.octets() {
                    let now = SystemTime::now();
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(now);
                }
            }
            Ok(())
        });
        Ok(ArpWatch { stop, seen, handle })
    }

    fn finish(self) -> Result<Vec<SystemTime>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow!("the ARP watch panicked"))??;
        Ok(std::mem::take(
            &mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// One container event: what, whose id, when.
#[derive(Debug)]
struct Event {
    status: String,
    id: String,
    at: SystemTime,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Docker's container events between `since` and `until`.
fn events(since: SystemTime, until: SystemTime) -> Result<Vec<Event>> {
    let out = docker(&[
        "events",
        "--since",
        &format!("{:.6}", unix(since)),
        "--until",
        &format!("{:.6}", unix(until)),
        "--filter",
        "type=container",
        "--format",
        "{{.Status}}|{{.ID}}|{{.TimeNano}}",
    ])?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.trim().split('|');
            let (status, id, nanos) = (f.next(), f.next(), f.next());
            let nanos: u64 = nanos
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("an event without its time: {l}"))?;
            Ok(Event {
                // `kill` events read `kill` (the signal is an attribute).
                status: status.unwrap_or_default().to_string(),
                id: id.unwrap_or_default().to_string(),
                at: UNIX_EPOCH + Duration::from_nanos(nanos),
            })
        })
        .collect()
}

fn at_of(events: &[Event], status: &str, id: &str) -> Result<SystemTime> {
    events
        .iter()
        .find(|e| e.status.starts_with(status) && e.id == id)
        .map(|e| e.at)
        .with_context(|| format!("no {status} event of {id}"))
}

fn between(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap_or_default()
}

/// The split of one recreate's gap.
#[derive(Debug, Clone, Copy)]
struct Split {
    gap: Duration,
    stop: Duration,
    ours: Duration,
    start: Duration,
    /// How long before the old `die` Docker started the new container.
    docker_start_ahead: Duration,
    apply: Duration,
}

fn recreate(bed: &TestBed, c: &BedContainer, round: usize) -> Result<Split> {
    let old_id = docker(&["inspect", "--format", "{{.Id}}", &c.name])?
        .trim()
        .to_string();
    let changed = c.clone().with_yaml(&format!("env:\n  ROUND: \"{round}\""));
    let env = bed.write_environment(std::slice::from_ref(&changed));
    let querier = Querier::start(bed.host(0).netns(), c.ip)?;
    let arp = ArpWatch::start(bed.host(0).netns(), c.ip)?;
    std::thread::sleep(Duration::from_millis(300));
    let since = SystemTime::now();
    let (_, apply) = timed(bed, &env, &["apply", "--yes"])?;
    // Until the new application has answered, and a little more.
    let answered = querier.answered_after(SystemTime::now(), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    let answers = querier.finish()?;
    let arps = arp.finish()?;
    let until = SystemTime::now();
    ensure!(answered, "round {round}: no answer within 5 s of the apply");
    let new_id = docker(&["inspect", "--format", "{{.Id}}", &c.name])?
        .trim()
        .to_string();
    ensure!(new_id != old_id, "apply did not recreate {}", c.name);
    let events = events(since, until)?;
    let kill = at_of(&events, "kill", &old_id)?;
    let die = at_of(&events, "die", &old_id)?;
    let start = at_of(&events, "start", &new_id)?;
    let Some(back) = arps.iter().find(|t| **t >= die).copied() else {
        bail!("round {round}: the address sent no ARP packet after the old container died");
    };
    let last_before = answers.iter().rev().find(|t| **t <= die).copied();
    let first_after = answers.iter().find(|t| **t >= back).copied();
    let (Some(last_before), Some(first_after)) = (last_before, first_after) else {
        bail!(
            "round {round}: {} answers, none before the old one died or none after its address came back; events: {events:?}",
            answers.len()
        );
    };
    Ok(Split {
        gap: between(last_before, first_after),
        stop: between(kill, die),
        ours: between(die, back),
        start: between(back, first_after),
        docker_start_ahead: between(start, die),
        apply,
    })
}

fn bench() -> Result<()> {
    ensure_dnsmasq_image()?;
    let bed = TestBed::new(BedOptions::hosts(1))?;
    let mut dns = BedContainer::new(bed.container_name("gapdns"), 0, bed.subnet_ip(2)).with_yaml(
        "command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
         --address=/gap.test/192.0.2.7 --log-facility=- --user=root",
    );
    dns.image = DNSMASQ_IMAGE.to_string();
    let env = bed.write_environment(std::slice::from_ref(&dns));
    timed(&bed, &env, &["apply", "--yes"])?;
    let mut splits = Vec::new();
    for round in 1..=RUNS {
        let s = recreate(&bed, &dns, round)?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  round {round}: gap {:6.1} ms = stop {:5.1} + dockstack {:6.1} + start {:5.1} (+ {:4.1} between the last answer and the stop); Docker started the new one {:.1} ms before; apply {:.0} ms",
            ms(s.gap),
            ms(s.stop),
            ms(s.ours),
            ms(s.start),
            ms(s.gap.saturating_sub(s.stop + s.ours + s.start)),
            ms(s.docker_start_ahead),
            ms(s.apply)
        );
        splits.push(s);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let row = |what: &str, f: fn(&Split) -> Duration| {
        let mut v: Vec<Duration> = splits.iter().map(f).collect();
        v.sort();
        println!(
            "  {what:<48} median {:7.1} ms (min {:.1}, max {:.1})",
            ms(v[v.len() / 2]),
            ms(v[0]),
            ms(v[v.len() - 1])
        );
    };
    println!(
        "recreate of one dnsmasq container ({RUNS} runs, a question every {} ms)",
        EVERY.as_millis()
    );
    row("address unanswered (last answer to first)", |s| s.gap);
    row("old container's graceful stop (kill to die)", |s| s.stop);
    row("dockstack's own work (old die to address back)", |s| s.ours);
    row("new application's start (address to answer)", |s| s.start);
    row("Docker's start of the new one, before the old die", |s| {
        s.docker_start_ahead
    });
    row("the whole apply --yes", |s| s.apply);
    // The server's own split of its part, when it logs one.
    let log = std::fs::read_to_string(bed.host(0).server_log()).unwrap_or_default();
    for line in log.lines().filter(|l| l.contains("replaced")) {
        println!("  server: {}", line.trim());
    }
    let changed = dns.with_yaml(&format!("env:\n  ROUND: \"{RUNS}\""));
    let env = bed.write_environment(std::slice::from_ref(&changed));
    timed(&bed, &env, &["destroy"])?;
    bed.teardown()?;
    Ok(())
}
