//! Fixtures for the privileged tests and benchmark of netplug (and of
//! netplug-cli, whose interop tests include this file): a private "host"
//! network namespace running its own ovsdb-server and ovs-vswitchd (netdev
//! datapath, bridge `br0` with the gateway address), fresh "container"
//! namespaces, and Docker containers for interop with ovs-docker. Every
//! fixture removes what it made when dropped, test failure or not.

// Each test target uses its own subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netplug::{Ovs, Owner, PlugSpec, Plugger};
use nix::sched::{CloneFlags, setns};

/// The bridge every [`OvsHost`] has.
pub const BRIDGE: &str = "br0";
/// Its gateway address; the test containers live in 10.240.0.0/24.
pub const GATEWAY: &str = "10.240.0.1";
/// A Linux bridge made by [`OvsHost::add_linux_bridge`], in 10.240.1.0/24.
pub const LINUX_BRIDGE: &str = "brl0";
pub const LINUX_GATEWAY: &str = "10.240.1.1";
/// The image of the interop containers, built from the host's busybox.
pub const BUSYBOX_IMAGE: &str = "netplug-test-busybox";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, short enough for every use.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fails (never skips) when the tests cannot run here.
pub fn require_root_and_ovs() {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "netplug's integration tests need root (they create network namespaces, veths and OVS daemons); run them as root"
    );
    for tool in [
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ip",
        "ping",
    ] {
        assert!(
            which(tool).is_some(),
            "{tool} not found in PATH, /usr/sbin or /usr/bin: install openvswitch-switch, iproute2 and iputils-ping"
        );
    }
    assert!(
        Path::new(SCHEMA).exists(),
        "OVS schema {SCHEMA} missing: install openvswitch-common"
    );
}

/// Like [`require_root_and_ovs`], plus Docker and ovs-docker.
pub fn require_docker() {
    require_root_and_ovs();
    for tool in ["docker", "ovs-docker", "uuidgen", "nsenter"] {
        assert!(
            which(tool).is_some(),
            "{tool} not found: the interop tests need docker, ovs-docker (openvswitch-common), uuid-runtime and util-linux"
        );
    }
    let info = Command::new("docker").arg("info").output();
    assert!(
        info.as_ref().is_ok_and(|o| o.status.success()),
        "the Docker daemon does not answer: {info:?}"
    );
}

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(which(program).unwrap_or_else(|| program.into()));
    c.args(args);
    c
}

/// Runs `f` on a new thread inside the namespace at `path`; the thread ends
/// with `f`, so no thread is left in a foreign namespace.
pub fn in_netns<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let ns = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {}: {e}", path.display()));
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// How long after the call frames first go both ways through the bridge
/// between the interface `iface` in the namespace at `netns` (`mac`, `ip`)
/// and the bridge's own port, whose MAC is `bridge_mac` and which holds
/// `gateway`: ARP requests for the gateway, one every millisecond, until
/// one is answered by the bridge's port. Answers with any other MAC do not
/// count: on the userspace datapath the host end's own kernel stack would
/// answer for the host's addresses, bypassing the bridge. `None` when no
/// answer came within `limit`.
pub fn time_to_forward(
    netns: &Path,
    iface: &str,
    (mac, ip): ([u8; 6], std::net::Ipv4Addr),
    gateway: std::net::Ipv4Addr,
    bridge_mac: [u8; 6],
    limit: Duration,
) -> Option<Duration> {
    in_netns(netns, || {
        let sock = netplug::arp::open_packet_socket().expect("packet socket");
        let index = nix::net::if_::if_nametoindex(iface).expect("interface index");
        let start = Instant::now();
        while start.elapsed() < limit {
            netplug::arp::request(&sock, index, mac, ip, gateway).expect("send ARP request");
            let sent = Instant::now();
            while sent.elapsed() < Duration::from_millis(1) {
                let reply = netplug::arp::await_reply(&sock, gateway, Duration::from_micros(200))
                    .expect("read ARP reply");
                if reply == Some(bridge_mac) {
                    return Some(start.elapsed());
                }
            }
        }
        None
    })
}

/// The MAC of `link` in the namespace called `netns`.
pub fn link_mac(netns: &str, link: &str) -> [u8; 6] {
    let out = run(&mut cmd("ip", &["-n", netns, "-o", "link", "show", link]));
    out.split("link/ether ")
        .nth(1)
        .and_then(|rest| rest.get(..17))
        .and_then(|s| s.parse::<netplug::Mac>().ok())
        .map(netplug::Mac::octets)
        .unwrap_or_else(|| panic!("no MAC for {link} in: {out}"))
}

/// A network namespace made with `ip netns add`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Self {
        Self::named(&unique(prefix))
    }

    pub fn named(name: &str) -> Self {
        run(&mut cmd("ip", &["netns", "add", name]));
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    pub fn target(&self) -> netplug::NetnsTarget {
        netplug::NetnsTarget::Path(self.path())
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run(&mut cmd("ip", &all))
    }

    /// `ip netns exec NAME ARGS`.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        output(&mut cmd("ip", &all))
    }

    /// Names of the links of kind `kind` (e.g. "veth"), sorted.
    pub fn links_of_kind(&self, kind: &str) -> Vec<String> {
        link_names(&self.ip(&["-o", "link", "show", "type", kind]))
    }

    pub fn link_names(&self) -> Vec<String> {
        link_names(&self.ip(&["-o", "link", "show"]))
    }

    pub fn ping(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "3", "-q", addr])
            .status
            .success()
    }

    /// Deletes the namespace now (as a container restart would); `Drop`
    /// then has nothing left to do.
    pub fn delete(&mut self) {
        run(&mut cmd("ip", &["netns", "del", &self.name]));
        self.name.clear();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = output(&mut cmd("ip", &["netns", "del", &self.name]));
        }
    }
}

/// `ip -o link` lines to names (`name@peer:` becomes `name`).
fn link_names(out: &str) -> Vec<String> {
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names
}

/// A host of its own: a network namespace with ovsdb-server, ovs-vswitchd
/// and bridge [`BRIDGE`] (netdev datapath) holding [`GATEWAY`]/24.
pub struct OvsHost {
    pub ns: Netns,
    pub dir: PathBuf,
    daemons: Vec<&'static str>,
}

impl OvsHost {
    pub fn start() -> Self {
        require_root_and_ovs();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/netplug-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the run dir");
        let mut host = OvsHost {
            ns: Netns::named(&format!("npt{}h{n}", std::process::id())),
            dir,
            daemons: Vec::new(),
        };
        let db = host.dir.join("conf.db");
        run(&mut cmd(
            "ovsdb-tool",
            &["create", db.to_str().unwrap(), SCHEMA],
        ));
        host.start_ovsdb_server();
        host.vsctl(&["--no-wait", "init"]);
        host.start_vswitchd();
        host.vsctl(&[
            "add-br",
            BRIDGE,
            "--",
            "set",
            "bridge",
            BRIDGE,
            "datapath_type=netdev",
        ]);
        host.ns
            .ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE]);
        host.ns.ip(&["link", "set", BRIDGE, "up"]);
        host
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    pub fn db(&self) -> String {
        format!("unix:{}", self.sock().display())
    }

    fn start_ovsdb_server(&mut self) {
        self.respawn("ovsdb-server");
        self.daemons.push("ovsdb-server");
    }

    fn start_vswitchd(&mut self) {
        self.respawn("ovs-vswitchd");
        self.daemons.push("ovs-vswitchd");
    }

    /// Starts `name` (`ovsdb-server`, `ovs-vswitchd`) as [`OvsHost::start`]
    /// does, on this host's database; after [`OvsHost::kill_daemon`].
    pub fn respawn(&self, name: &'static str) {
        let db = self.dir.join("conf.db");
        let remote = format!("--remote=punix:{}", self.sock().display());
        let client = format!("unix:{}", self.sock().display());
        let args: Vec<&str> = match name {
            "ovsdb-server" => vec![db.to_str().unwrap(), &remote],
            _ => vec![&client],
        };
        self.spawn_daemon(name, &args);
    }

    /// SIGKILLs one of our daemons, as a crash would end it, and waits
    /// until it is gone; [`OvsHost::respawn`] starts it again.
    pub fn kill_daemon(&self, name: &str) {
        let pid = self.pid(name).expect("the daemon's pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL");
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(Instant::now() < deadline, "{name} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn spawn_daemon(&self, name: &'static str, args: &[&str]) {
        let d = self.dir.display();
        let pidfile = format!("--pidfile={d}/{name}.pid");
        let log = format!("--log-file={d}/{name}.log");
        let ctl = format!("--unixctl={d}/{name}.ctl");
        let program = which(name).expect("daemon binary");
        let mut all: Vec<&str> = vec!["netns", "exec", &self.ns.name, program.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&[&pidfile, "--detach", &log, &ctl]);
        run(self.env(&mut cmd("ip", &all)));
    }

    /// Points every OVS tool at this host's run dir, never the system's.
    pub fn env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env("OVS_RUNDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
    }

    fn pid(&self, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops one of our daemons by the pid it wrote, and waits for it.
    fn stop_daemon(&mut self, name: &str) {
        self.daemons.retain(|d| *d != name);
        let Some(pid) = self.pid(name) else { return };
        let pid = nix::unistd::Pid::from_raw(pid);
        // A paused daemon would not act on SIGTERM.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid.as_raw()) {
            if Instant::now() > deadline {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) our ovs-vswitchd, to make it
    /// see several database changes at once, as a busy one does.
    pub fn pause_vswitchd(&self, pause: bool) {
        let pid = nix::unistd::Pid::from_raw(self.pid("ovs-vswitchd").expect("ovs-vswitchd pid"));
        let signal = if pause {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        nix::sys::signal::kill(pid, signal).expect("signal ovs-vswitchd");
    }

    /// Restarts ovsdb-server, breaking every client connection.
    pub fn restart_ovsdb_server(&mut self) {
        self.stop_daemon("ovsdb-server");
        self.start_ovsdb_server();
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db={}", self.db());
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        run(self.env(&mut cmd("ovs-vsctl", &all)))
    }

    /// Every Port row (also those on no bridge), sorted.
    pub fn ports(&self) -> Vec<String> {
        let mut ports: Vec<String> = self
            .vsctl(&["--bare", "--columns=name", "list", "Port"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        ports.sort();
        ports
    }

    /// The `external_ids` of interface `name`, as ovs-vsctl prints them.
    pub fn interface_ids(&self, name: &str) -> String {
        self.vsctl(&["get", "Interface", name, "external_ids"])
            .trim()
            .to_string()
    }

    pub fn ovs(&self) -> Ovs {
        Ovs::new(Some(self.db()))
    }

    pub fn plugger(&self) -> Plugger {
        Plugger::new(self.ovs())
    }

    /// Runs the future that `make` returns on a thread in this host's
    /// namespace, as the server would run it on its host.
    pub fn block_on<C, Fut>(&self, make: C) -> Fut::Output
    where
        C: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        in_netns(&self.ns.path(), || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(make())
        })
    }

    /// A Linux bridge [`LINUX_BRIDGE`] holding [`LINUX_GATEWAY`]/24. Its
    /// MAC is set, as a real gateway bridge's should be: otherwise Linux
    /// gives the bridge the lowest MAC of its ports, and unplugging that
    /// port changes the gateway's MAC under every other container.
    pub fn add_linux_bridge(&self) {
        self.ns.ip(&[
            "link",
            "add",
            LINUX_BRIDGE,
            "address",
            "02:00:0a:f0:01:01",
            "type",
            "bridge",
        ]);
        self.ns.ip(&[
            "addr",
            "add",
            &format!("{LINUX_GATEWAY}/24"),
            "dev",
            LINUX_BRIDGE,
        ]);
        self.ns.ip(&["link", "set", LINUX_BRIDGE, "up"]);
    }

    /// `ovs-docker ARGS` in this host, talking to this host's OVS.
    pub fn ovs_docker(&self, args: &[&str]) -> Output {
        let program = which("ovs-docker").expect("ovs-docker");
        let mut all = vec!["netns", "exec", &self.ns.name, program.to_str().unwrap()];
        all.extend_from_slice(args);
        output(self.env(&mut cmd("ip", &all)))
    }

    /// What must be the same before and after a test: the veths of this
    /// host and of `others`, and the OVS ports.
    pub fn counts(&self, others: &[&Netns]) -> Counts {
        Counts {
            host_veths: self.ns.links_of_kind("veth"),
            other_veths: others
                .iter()
                .map(|ns| (ns.name.clone(), ns.links_of_kind("veth")))
                .collect(),
            ports: self.ports(),
            rule_ports: self.rule_ports(),
        }
    }

    /// The ports that have nftables port-security rules here.
    pub fn rule_ports(&self) -> Vec<String> {
        let out = self
            .ns
            .exec(&["nft", "-j", "list", "map", "bridge", "dockstack", "ports"]);
        if !out.status.success() {
            return Vec::new();
        }
        let mut ports = netplug::parse_nft_ports(&String::from_utf8_lossy(&out.stdout))
            .expect("nft's list of ports");
        ports.sort();
        ports
    }
}

impl Drop for OvsHost {
    fn drop(&mut self) {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            if self.daemons.contains(&name) {
                self.stop_daemon(name);
            }
        }
        if std::env::var_os("NETPLUG_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// True while `pid` runs; a zombie has finished (the detached daemons are
/// reaped by whatever init this machine has, maybe late).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub host_veths: Vec<String>,
    pub other_veths: Vec<(String, Vec<String>)>,
    pub ports: Vec<String>,
    pub rule_ports: Vec<String>,
}

/// A running Docker container with no network (`--net=none`), removed on
/// drop.
pub struct Container {
    pub name: String,
    pub id: String,
    pub pid: u32,
}

impl Container {
    pub fn start() -> Self {
        ensure_busybox_image();
        let name = unique("netplug-test-");
        let id = run(&mut cmd(
            "docker",
            &[
                "run",
                "-d",
                "--net=none",
                "--name",
                &name,
                BUSYBOX_IMAGE,
                "/bin/sleep",
                "3600",
            ],
        ))
        .trim()
        .to_string();
        // Made before the inspect, so that a failure still removes it.
        let mut c = Container { name, id, pid: 0 };
        let pid = run(&mut cmd(
            "docker",
            &["inspect", "-f", "{{.State.Pid}}", &c.name],
        ));
        c.pid = pid.trim().parse().expect("container pid");
        c
    }

    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid))
    }

    /// `nsenter --net=... ARGS`: a host binary in the container's netns.
    pub fn exec(&self, args: &[&str]) -> Output {
        let net = format!("--net={}", self.netns_path().display());
        let mut all = vec![net.as_str(), "--"];
        all.extend_from_slice(args);
        output(&mut cmd("nsenter", &all))
    }

    pub fn ping(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "3", "-q", addr])
            .status
            .success()
    }

    pub fn link_names(&self) -> Vec<String> {
        link_names(&String::from_utf8_lossy(
            &self.exec(&["ip", "-o", "link", "show"]).stdout,
        ))
    }

    pub fn veths(&self) -> Vec<String> {
        link_names(&String::from_utf8_lossy(
            &self
                .exec(&["ip", "-o", "link", "show", "type", "veth"])
                .stdout,
        ))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = output(&mut cmd("docker", &["rm", "-f", &self.name]));
    }
}

/// Builds [`BUSYBOX_IMAGE`] from the host's static busybox, once; no
/// registry is needed.
pub fn ensure_busybox_image() {
    let present = output(&mut cmd("docker", &["image", "inspect", BUSYBOX_IMAGE]));
    if present.status.success() {
        return;
    }
    let busybox = which("busybox").expect("busybox (busybox-static) is needed for the test image");
    let dir = PathBuf::from(format!("/tmp/{}", unique("netplug-image-")));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&busybox, dir.join("busybox")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .unwrap();
    let out = output(&mut cmd(
        "docker",
        &["build", "-q", "-t", BUSYBOX_IMAGE, dir.to_str().unwrap()],
    ));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "docker build {BUSYBOX_IMAGE}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A plug of `owner`'s eth0 with `address` on `bridge`, `gateway` its
/// default route, and nothing else set.
pub fn spec(owner: &str, address: &str, bridge: &str, gateway: &str) -> PlugSpec {
    PlugSpec {
        bridge: bridge.into(),
        iface: "eth0".into(),
        address: address.parse().unwrap(),
        gateway: Some(gateway.parse().unwrap()),
        address6: None,
        gateway6: None,
        mac: None,
        mtu: None,
        vlan: None,
        allowed_addresses: Vec::new(),
        probe: None,
        owner: Owner {
            name: owner.into(),
            full_id: Some(format!("{owner}-full-id")),
        },
    }
}
