//! The test bed: simulated container hosts (a network namespace each, with its own Open vSwitch and its own `dockstack-server`) on the machine's real dockerd, their slot allocation across test processes, their cleanup, and the locally built test images.
//!
//! A bed lives in a *slot* (1..=250 for tests, 0 for the demo) that fixes all
//! its names and addresses, so parallel test processes never collide:
//!
//! | what | name / address |
//! |---|---|
//! | host i's network namespace | `dsb<slot>h<i>` |
//! | host i's management veth, root end | `dsm<slot>h<i>`, 10.231.<slot>.<4i+1>/30 |
//! | host i's management veth, host end | `mgmt0`, 10.231.<slot>.<4i+2>/30 (the server listens here) |
//! | host i's run dir (OVS db, sockets, logs, `server.log`) | `/tmp/dockstack-testbed/<slot>/h<i>/` |
//! | host i's bridge `br0` | host 0: the gateway (default 10.232.<slot>.1/24); host i>0: the gateway network's `.250-i` |
//! | its IPv6 address (dual stack) | host 0: the IPv6 gateway fd00:232:<slot>::1/64; host i>0: the prefix's (250-i)-th address |
//! | the wire between host 0 and host i | veth `wire<i>` (in host 0) ↔ `wire0` (in host i), both OVS ports |
//! | host names (`--host-id`, `dockstack.host` label) | `bed<slot>-h<i>` |
//! | container names of the bed's tests | `t<slot>-<base>` |
//!
//! Nothing is ever sent outside the bed's own namespaces: the bed adds
//! `unreachable` routes for 10.231.<slot>.0/24 (and 10.232.<slot>.0/24 with the
//! default gateway) in the root namespace, so even a management link that is
//! down cannot leak traffic to the machine's default route.
//!
//! Cleanup (in `Drop`, [`TestBed::teardown`], on taking a slot that a crashed
//! process left behind, and `dockstack-testbed down`) is driven by the slot
//! number alone and gathers every error instead of stopping at the first.
//! Set `DOCKSTACK_TESTBED_KEEP=1` to leave a bed up after its test for
//! inspection (`dockstack-testbed down --slot N` removes it).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ipnetwork::{Ipv4Network, Ipv6Network};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where beds keep their run dirs, slot locks and image build locks.
pub const BED_ROOT: &str = "/tmp/dockstack-testbed";
/// The port every bed server listens on (each on its own management address).
pub const SERVER_PORT: u16 = 3288;
/// The busybox test image built by [`ensure_test_image`].
pub const TEST_IMAGE: &str = "dockstack-test-busybox:latest";
/// The dnsmasq test image built by [`ensure_dnsmasq_image`].
pub const DNSMASQ_IMAGE: &str = "dockstack-test-dnsmasq:latest";
/// The slot reserved for the demo (`dockstack-testbed up`); never allocated.
pub const DEMO_SLOT: u8 = 0;
/// The highest slot.
pub const MAX_SLOT: u8 = 250;
/// The most hosts a bed can have (management /30s of one /24, bridge addresses below .250).
pub const MAX_HOSTS: usize = 60;
/// Set (to anything but `0`) to leave beds up after their tests.
pub const KEEP_ENV: &str = "DOCKSTACK_TESTBED_KEEP";
/// What a sandbox's name ends with: its application's name comes first.
pub const SANDBOX_SUFFIX: &str = ".dockstack-sandbox";
/// The label by which a server marks the containers of its host.
pub const HOST_LABEL: &str = "dockstack.host";

const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(3);
const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// How to build a [`TestBed`].
#[derive(Debug, Clone)]
pub struct BedOptions {
    /// Number of simulated container hosts (1..=60).
    pub hosts: usize,
    /// `None`: allocate a free slot in 1..=250; `Some(0)` is the demo's.
    pub slot: Option<u8>,
    /// Address and prefix of host 0's bridge, the containers' gateway
    /// (default 10.232.<slot>.1/24). The prefix must be /24 or shorter.
    pub gateway: Option<Ipv4Network>,
    /// Name of the OVS bridge on every host.
    pub bridge: String,
    /// Start a `dockstack-server` in every host.
    pub start_servers: bool,
    /// Extra arguments appended to every server's command line.
    pub server_args: Vec<String>,
    /// Extra environment of every server (`DOCKSTACK_SERVER_PANIC`, ...);
    /// [`TestBed::set_server_env`] changes it for servers started later.
    pub server_env: Vec<(String, String)>,
    /// Host names (the servers' `--host-id`); empty: `bed<slot>-h<i>`.
    pub host_names: Vec<String>,
    /// The server binary; `None`: `$DOCKSTACK_SERVER_BIN`, else beside the test executable.
    pub server_bin: Option<PathBuf>,
    /// Start the servers in their own process groups, so that they outlive
    /// the creating process and its terminal (for `dockstack-testbed up`).
    pub detach_servers: bool,
    /// Run servers and client in plaintext (`--insecure`). Off by default:
    /// the bed makes its own CA and certificates, as `dockstack certs init`
    /// does for a real cluster, and everything talks mutual TLS.
    pub insecure: bool,
}

impl Default for BedOptions {
    fn default() -> Self {
        BedOptions {
            hosts: 1,
            slot: None,
            gateway: None,
            bridge: "br0".to_string(),
            start_servers: true,
            server_args: Vec::new(),
            server_env: Vec::new(),
            host_names: Vec::new(),
            server_bin: None,
            detach_servers: false,
            insecure: false,
        }
    }
}

impl BedOptions {
    /// Default options with `hosts` hosts.
    pub fn hosts(hosts: usize) -> Self {
        BedOptions {
            hosts,
            ..BedOptions::default()
        }
    }
}

/// A container for [`TestBed::write_environment`].
#[derive(Debug, Clone)]
pub struct BedContainer {
    /// The container's name, used as is (use [`TestBed::container_name`]).
    pub name: String,
    /// Index of the bed host that runs it.
    pub host: usize,
    pub ip: Ipv4Addr,
    pub image: String,
    /// More keys of the container's mapping, as YAML lines without
    /// indentation (`"dns: 10.232.1.2\nvolumes:\n- /a:/b"`). A key given here
    /// replaces the default one (`state: false`, `mask: 16`, ...).
    pub extra_yaml: String,
}

impl BedContainer {
    /// A container of [`TEST_IMAGE`] on host `host`.
    pub fn new(name: impl Into<String>, host: usize, ip: Ipv4Addr) -> Self {
        BedContainer {
            name: name.into(),
            host,
            ip,
            image: TEST_IMAGE.to_string(),
            extra_yaml: String::new(),
        }
    }

    /// The same container with more YAML keys (see [`BedContainer::extra_yaml`]).
    pub fn with_yaml(mut self, yaml: &str) -> Self {
        if !self.extra_yaml.is_empty() && !self.extra_yaml.ends_with('\n') {
            self.extra_yaml.push('\n');
        }
        self.extra_yaml.push_str(yaml);
        self
    }
}

/// One simulated container host of a bed.
#[derive(Debug)]
pub struct Host {
    index: usize,
    name: String,
    netns: String,
    mgmt_link: String,
    mgmt_ip: Ipv4Addr,
    port: u16,
    rundir: PathBuf,
    bridge_ip: Ipv4Addr,
    wire_ports: Vec<String>,
    server: Option<Child>,
}

impl Host {
    /// Index of the host in its bed.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The host's name: its server's `--host-id` and its name in `containerhosts`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The host's network namespace (`dsb<slot>h<i>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }
    /// The root-namespace end of the management link (`dsm<slot>h<i>`).
    pub fn mgmt_link(&self) -> &str {
        &self.mgmt_link
    }
    /// The host's management address; its server listens here.
    pub fn mgmt_ip(&self) -> Ipv4Addr {
        self.mgmt_ip
    }
    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The server's address, reachable from the root namespace.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.mgmt_ip, self.port))
    }
    /// The host's OVSDB (`unix:<rundir>/db.sock`).
    pub fn ovsdb(&self) -> String {
        format!("unix:{}", self.rundir.join("db.sock").display())
    }
    /// The host's run dir: OVS database, sockets and logs, `server.log`.
    pub fn rundir(&self) -> &Path {
        &self.rundir
    }
    /// The address of the host's bridge.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }
    /// The server's log (its stdout and stderr).
    pub fn server_log(&self) -> PathBuf {
        self.rundir.join("server.log")
    }
    /// The OVS ports of the wire to the other hosts.
    pub fn wire_ports(&self) -> &[String] {
        &self.wire_ports
    }
}

/// N simulated container hosts; everything is removed on drop.
#[derive(Debug)]
pub struct TestBed {
    slot: u8,
    opts: BedOptions,
    gateway: Ipv4Network,
    names: Vec<String>,
    hosts: Vec<Host>,
    server_bin: Option<PathBuf>,
    torn_down: bool,
    // Last: the slot stays ours until the cleanup in `drop` has finished.
    _lock: File,
}

impl TestBed {
    /// Builds a bed; on failure, removes whatever was made.
    pub fn new(opts: BedOptions) -> Result<TestBed> {
        check_preconditions()?;
        ensure!(
            (1..=MAX_HOSTS).contains(&opts.hosts),
            "a test bed has 1 to {MAX_HOSTS} hosts, not {}",
            opts.hosts
        );
        ensure!(
            opts.host_names.is_empty() || opts.host_names.len() == opts.hosts,
            "{} host names given for {} hosts",
            opts.host_names.len(),
            opts.hosts
        );
        ensure!(
            !opts.bridge.is_empty() && opts.bridge.len() <= 15 && !opts.bridge.contains('/'),
            "bad bridge name {:?}",
            opts.bridge
        );
        let server_bin = if opts.start_servers {
            Some(match &opts.server_bin {
                Some(p) if p.is_file() => p.clone(),
                Some(p) => bail!("dockstack-server not found at {}", p.display()),
                None => find_binary("dockstack-server", "DOCKSTACK_SERVER_BIN")?,
            })
        } else {
            None
        };
        fs::create_dir_all(BED_ROOT).with_context(|| format!("creating {BED_ROOT}"))?;
        let (slot, lock) = match opts.slot {
            Some(slot) => {
                ensure!(
                    slot <= MAX_SLOT,
                    "test bed slots are 0..={MAX_SLOT}, not {slot}"
                );
                let lock = lock_slot(slot)?.ok_or_else(|| slot_busy(slot))?;
                (slot, lock)
            }
            None => allocate_slot()?,
        };
        cleanup_slot_unlocked(slot, &[]).with_context(|| {
            format!("cleaning up what an earlier user of test bed slot {slot} left")
        })?;

        let gateway = match opts.gateway {
            Some(gw) => gw,
            None => Ipv4Network::new(Ipv4Addr::new(10, 232, slot, 1), 24)?,
        };
        ensure!(
            gateway.prefix() <= 24,
            "the gateway {gateway} must have a /24 or shorter prefix (hosts' bridges use .{}..=.249)",
            250 - opts.hosts
        );
        ensure!(
            gateway.ip() != gateway.network() && gateway.ip() != gateway.broadcast(),
            "the gateway {gateway} is its network's or broadcast address"
        );
        for i in 1..opts.hosts {
            ensure!(
                nth_address(gateway, 250 - host_number(i)) != gateway.ip(),
                "the gateway {gateway} collides with host {i}'s bridge address"
            );
        }
        let names = (0..opts.hosts)
            .map(|i| {
                opts.host_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("bed{slot}-h{i}"))
            })
            .collect::<Vec<_>>();

        let mut bed = TestBed {
            slot,
            opts,
            gateway,
            names,
            hosts: Vec::new(),
            server_bin,
            torn_down: false,
            _lock: lock,
        };
        if let Err(err) = bed.build() {
            bed.torn_down = true;
            return Err(match bed.cleanup() {
                Ok(()) => err,
                Err(cleanup) => {
                    anyhow!("{err:#}\n(and the cleanup after that failure failed too: {cleanup:#})")
                }
            });
        }
        Ok(bed)
    }

    fn build(&mut self) -> Result<()> {
        let dir = slot_dir(self.slot);
        fs::create_dir_all(self.dir()).with_context(|| format!("creating {}", dir.display()))?;
        let mut state = String::new();
        for (i, name) in self.names.iter().enumerate() {
            state.push_str(&format!("host\t{i}\t{name}\n"));
        }
        fs::write(dir.join("bed.state"), state)?;
        for net in safety_nets(self.slot, self.opts.gateway.is_none()) {
            ip(&["route", "add", "unreachable", &net, "metric", "4242"])?;
        }
        for i in 0..self.opts.hosts {
            self.add_host(i).with_context(|| {
                format!(
                    "setting up host {i} ({}) of test bed slot {}",
                    self.names[i], self.slot
                )
            })?;
        }
        Ok(())
    }

    fn add_host(&mut self, i: usize) -> Result<()> {
        let slot = self.slot;
        let (root_ip, mgmt_ip) = mgmt_addresses(slot, i);
        let bridge_ip = if i == 0 {
            self.gateway.ip()
        } else {
            nth_address(self.gateway, 250 - host_number(i))
        };
        let bridge_ip6 = if i == 0 {
            self.gateway6().ip()
        } else {
            self.subnet_ip6(250 - host_number(i))
        };
        let host = Host {
            index: i,
            name: self.names[i].clone(),
            netns: format!("dsb{slot}h{i}"),
            mgmt_link: format!("dsm{slot}h{i}"),
            mgmt_ip,
            port: SERVER_PORT,
            rundir: slot_dir(slot).join(format!("h{i}")),
            bridge_ip,
            wire_ports: Vec::new(),
            server: None,
        };
        let netns = host.netns.clone();
        let link = host.mgmt_link.clone();
        let rundir = host.rundir.clone();
        self.hosts.push(host);
        fs::create_dir_all(&rundir).with_context(|| format!("creating {}", rundir.display()))?;

        // The namespace and its management link.
        ip(&["netns", "add", &netns])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", "mgmt0", "netns", &netns,
        ])?;
        ip(&["addr", "add", &format!("{root_ip}/30"), "dev", &link])?;
        ip(&["link", "set", &link, "up"])?;
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{mgmt_ip}/30"),
            "dev",
            "mgmt0",
        ])?;
        ip(&["-n", &netns, "link", "set", "mgmt0", "up"])?;

        // Its own Open vSwitch and bridge.
        self.start_ovs(i)?;
        let br = self.opts.bridge.clone();
        self.ovs_vsctl(
            i,
            &[
                "add-br",
                &br,
                "--",
                "set",
                "bridge",
                &br,
                "datapath_type=netdev",
            ],
        )?;
        retry(Duration::from_secs(5), || {
            ip(&["-n", &netns, "link", "set", &br, "up"])
        })
        .with_context(|| format!("bringing up the bridge {br} made by ovs-vswitchd"))?;
        let prefix = self.gateway.prefix();
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{bridge_ip}/{prefix}"),
            "dev",
            &br,
        ])?;
        // The IPv6 gateway of dual-stack containers: `nodad`, so it answers
        // at once (the bed's addresses are its own).
        ip(&[
            "-n",
            &netns,
            "-6",
            "addr",
            "add",
            &format!("{bridge_ip6}/{}", self.gateway6().prefix()),
            "dev",
            &br,
            "nodad",
        ])?;

        // The wire to host 0.
        if i > 0 {
            let ns0 = self.hosts[0].netns.clone();
            let here = format!("wire{i}");
            let there = "wire0".to_string();
            self.hosts[0].wire_ports.push(here.clone());
            self.hosts[i].wire_ports.push(there.clone());
            ip(&[
                "-n", &ns0, "link", "add", &here, "type", "veth", "peer", "name", &there, "netns",
                &netns,
            ])?;
            ip(&["-n", &ns0, "link", "set", &here, "up"])?;
            ip(&["-n", &netns, "link", "set", &there, "up"])?;
            self.ovs_vsctl(0, &["add-port", &br, &here])?;
            self.ovs_vsctl(i, &["add-port", &br, &there])?;
        }

        if self.server_bin.is_some() {
            self.start_server(i)?;
        }
        Ok(())
    }

    fn start_ovs(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        let rd = h.rundir.display().to_string();
        let db = format!("{rd}/conf.db");
        run(Command::new(tool("ovsdb-tool")).args(["create", &db, OVS_SCHEMA]))?;
        self.ovs_daemon(i, "ovsdb-server", &ovsdb_server_args(&h.rundir))?;
        self.ovs_vsctl(i, &["--no-wait", "init"])?;
        self.ovs_daemon(
            i,
            "ovs-vswitchd",
            &[
                format!("unix:{rd}/db.sock"),
                format!("--pidfile={rd}/ovs-vswitchd.pid"),
                "--detach".into(),
                format!("--log-file={rd}/ovs-vswitchd.log"),
                format!("--unixctl={rd}/ovs-vswitchd.ctl"),
            ],
        )
    }

    fn ovs_daemon(&self, i: usize, daemon: &str, args: &[String]) -> Result<()> {
        let h = &self.hosts[i];
        let out_path = h.rundir.join(format!("{daemon}.out"));
        let out = File::create(&out_path)?;
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &h.netns])
            .arg(tool(daemon))
            .args(args)
            .envs(ovs_env(&h.rundir))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {}", show(&cmd)))?;
        if !status.success() {
            bail!(
                "`{}` failed ({status}):\n{}\n{}",
                show(&cmd),
                tail(&out_path, 20),
                tail(&h.rundir.join(format!("{daemon}.log")), 20)
            );
        }
        Ok(())
    }

    /// Starts host `i`'s server (after [`TestBed::kill_server`]) and waits until it accepts connections.
    /// Where the bed's CA, server and client certificates are.
    pub fn tls_dir(&self) -> PathBuf {
        slot_dir(self.slot).join("tls")
    }

    /// Whether servers and client talk plaintext.
    pub fn insecure(&self) -> bool {
        self.opts.insecure
    }

    /// Makes the bed's CA and client certificate with `dockstack certs init`
    /// on first use, and host `i`'s server certificate with `certs add-host`.
    fn ensure_certificates(&self, i: usize) -> Result<()> {
        let dir = self.tls_dir();
        let env = slot_dir(self.slot).join("hosts.yaml");
        fs::create_dir_all(slot_dir(self.slot))?;
        fs::write(&env, self.environment_yaml(&[]))
            .with_context(|| format!("writing {}", env.display()))?;
        let bin = find_binary("dockstack", "DOCKSTACK_BIN")?;
        let name = &self.hosts[i].name;
        let mut cmd = Command::new(&bin);
        cmd.arg("-f").arg(&env).arg("--tls-dir").arg(&dir);
        if !dir.join("ca.pem").exists() {
            cmd.args(["certs", "init", "--force"]);
        } else if !dir.join(format!("{name}.pem")).exists() {
            cmd.args(["certs", "add-host", name, "--force"]);
        } else {
            return Ok(());
        }
        run(&mut cmd).map(drop)
    }

    pub fn start_server(&mut self, i: usize) -> Result<()> {
        let bin = self
            .server_bin
            .clone()
            .ok_or_else(|| anyhow!("this test bed was made with start_servers: false"))?;
        ensure!(
            self.hosts[i].server.is_none(),
            "the server of {} is already running",
            self.hosts[i].name
        );
        if !self.opts.insecure {
            self.ensure_certificates(i)?;
        }
        let security: Vec<String> = if self.opts.insecure {
            vec!["--insecure".into()]
        } else {
            vec!["--tls-dir".into(), self.tls_dir().display().to_string()]
        };
        let h = &self.hosts[i];
        let log_path = h.server_log();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &h.netns, "env"])
            .arg(format!("OVS_RUNDIR={}", h.rundir.display()))
            .args(self.opts.server_env.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(&bin)
            .args(["listen", "--ipaddress"])
            .arg(h.mgmt_ip.to_string())
            .arg("--port")
            .arg(h.port.to_string())
            .args(["--host-id", &h.name, "--ovsdb", &h.ovsdb()])
            .args(&security)
            .args(&self.opts.server_args)
            .stdin(Stdio::null());
        writeln!(log, "==== test bed: {}", show(&cmd))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        if self.opts.detach_servers {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", show(&cmd)))?;
        fs::write(h.rundir.join("server.pid"), child.id().to_string())?;
        self.hosts[i].server = Some(child);
        self.wait_for_server(i)
    }

    fn wait_for_server(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        let addr = self.hosts[i].addr();
        loop {
            let h = &mut self.hosts[i];
            if let Some(child) = h.server.as_mut()
                && let Some(status) = child.try_wait()?
            {
                h.server = None;
                bail!(
                    "dockstack-server of {} exited ({status}) before accepting connections on {addr}; last lines of {}:\n{}",
                    h.name,
                    h.server_log().display(),
                    tail(&h.server_log(), 40)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "dockstack-server of {} did not accept connections on {addr} within {} s; last lines of {}:\n{}",
                    h.name,
                    SERVER_START_TIMEOUT.as_secs(),
                    h.server_log().display(),
                    tail(&h.server_log(), 40)
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Sets `key=value` in the environment of the servers started from now
    /// on (a restart applies it to a running one); names known only once the
    /// bed is up (its container names) can be passed this way.
    pub fn set_server_env(&mut self, key: &str, value: &str) {
        self.opts.server_env.retain(|(k, _)| k != key);
        self.opts
            .server_env
            .push((key.to_string(), value.to_string()));
    }

    /// Kills host `i`'s server with SIGKILL (a crash), leaving everything else up.
    pub fn kill_server(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.hosts[i].server.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops host `i`'s server: SIGTERM, then SIGKILL after 3 s.
    pub fn stop_server(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.hosts[i].server.take() {
            stop_child(&mut child)?;
        }
        Ok(())
    }

    /// Stops host `i`'s server (if running) and starts it again.
    pub fn restart_server(&mut self, i: usize) -> Result<()> {
        self.stop_server(i)?;
        self.start_server(i)
    }

    /// Whether host `i`'s server process is running.
    pub fn server_running(&mut self, i: usize) -> bool {
        match self.hosts[i].server.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The server's log of host `i`.
    pub fn server_log(&self, i: usize) -> String {
        fs::read_to_string(self.hosts[i].server_log()).unwrap_or_default()
    }

    /// Takes host `i`'s management link down (its `mgmt0`), so its server is
    /// unreachable; connections to it fail instead of leaving the bed.
    pub fn stop_host_link(&self, i: usize) -> Result<()> {
        ip(&["-n", &self.hosts[i].netns, "link", "set", "mgmt0", "down"])?;
        Ok(())
    }

    /// Makes host `i` silently drop the connections to its server (a
    /// firewall in its own namespace): the host is up, answers ARP, but a
    /// connect gets no answer and waits its whole timeout, where a link
    /// down fails after the kernel's ARP attempts (~3 s). Gone with the
    /// namespace.
    pub fn drop_server_traffic(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &h.netns])
            .arg(tool("iptables"))
            .args(["-A", "INPUT", "-p", "tcp", "-d"])
            .arg(h.mgmt_ip.to_string())
            .arg("--dport")
            .arg(h.port.to_string())
            .args(["-j", "DROP"]);
        run(&mut cmd).map(drop)
    }

    /// Brings host `i`'s management link back up.
    pub fn start_host_link(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        ip(&["-n", &h.netns, "link", "set", "mgmt0", "up"])?;
        // The address's route comes back with the link, but give the
        // kernel a moment to mark the peer as up again.
        retry(Duration::from_secs(3), || {
            let out = ip(&["-o", "link", "show", &h.mgmt_link])?;
            ensure!(out.contains("LOWER_UP"), "{} is not up yet", h.mgmt_link);
            Ok(())
        })
    }

    /// The bed's slot.
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// Host 0's bridge address with the containers' prefix.
    pub fn gateway(&self) -> Ipv4Network {
        self.gateway
    }

    /// The bridge name on every host.
    pub fn bridge(&self) -> &str {
        &self.opts.bridge
    }

    /// The bed's hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Host 0's bridge IPv6 address with the containers' prefix:
    /// fd00:232:<slot>::1/64.
    pub fn gateway6(&self) -> Ipv6Network {
        let ip = Ipv6Addr::new(0xfd00, 0x232, u16::from(self.slot), 0, 0, 0, 0, 1);
        Ipv6Network::new(ip, 64).expect("a /64")
    }

    /// The `n`-th address of the IPv6 gateway's prefix (`n` added to
    /// fd00:232:<slot>::, so 48 is `::30`).
    pub fn subnet_ip6(&self, n: u32) -> Ipv6Addr {
        let base = u128::from(self.gateway6().network());
        Ipv6Addr::from(base + u128::from(n))
    }

    /// Whether `ip` answers a `ping -6` from host `i` (retried for about 3 s).
    pub fn ping6_from_host(&self, i: usize, ip: Ipv6Addr) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = self.exec_in_host(i, &["ping", "-6", "-n", "-c1", "-W1", &ip.to_string()]);
            if out.status.success() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// The `n`-th address of the gateway's network (10.232.<slot>.n by default).
    pub fn subnet_ip(&self, n: u32) -> Ipv4Addr {
        nth_address(self.gateway, n)
    }

    /// A container name unique to this bed: `t<slot>-<base>`.
    pub fn container_name(&self, base: &str) -> String {
        format!("t{}-{base}", self.slot)
    }

    /// A directory of the bed for environment files and such; removed with the bed.
    pub fn dir(&self) -> PathBuf {
        slot_dir(self.slot).join("files")
    }

    /// Runs `argv` in host `i`'s namespace (`ip netns exec`).
    pub fn exec_in_host<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Output {
        let mut cmd = self.host_command(i, argv);
        cmd.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", show(&cmd)))
    }

    /// Runs `argv` in host `i`'s namespace; its stdout, or an error with its stderr.
    pub fn run_in_host<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Result<String> {
        run(&mut self.host_command(i, argv))
    }

    fn host_command<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Command {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.hosts[i].netns]).args(argv);
        cmd
    }

    /// Whether `ip` answers a ping from host `i` (`ping -c1 -W1`, retried for about 3 s).
    pub fn ping_from_host(&self, i: usize, ip: Ipv4Addr) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = self.exec_in_host(i, &["ping", "-n", "-c1", "-W1", &ip.to_string()]);
            if out.status.success() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// Runs `ovs-vsctl` against host `i`'s OVSDB; its stdout.
    pub fn ovs_vsctl<S: AsRef<OsStr>>(&self, i: usize, args: &[S]) -> Result<String> {
        let h = &self.hosts[i];
        run(Command::new(tool("ovs-vsctl"))
            .arg(format!("--db={}", h.ovsdb()))
            .arg("--timeout=20")
            .args(args)
            .envs(ovs_env(&h.rundir)))
    }

    /// The ports of host `i`'s bridge, but the wire's.
    pub fn ovs_ports(&self, i: usize) -> Vec<String> {
        let out = self
            .ovs_vsctl(i, &["list-ports", &self.opts.bridge])
            .unwrap_or_else(|e| panic!("{e:#}"));
        out.lines()
            .map(str::trim)
            .filter(|p| !p.is_empty() && !self.hosts[i].wire_ports.iter().any(|w| w == p))
            .map(String::from)
            .collect()
    }

    /// A command for the `dockstack` client (`$DOCKSTACK_BIN`, else beside
    /// the test executable), run in [`TestBed::dir`], with the bed's
    /// `--tls-dir` (or `--insecure`) as its only argument yet.
    pub fn client_command(&self) -> Command {
        let bin = find_binary("dockstack", "DOCKSTACK_BIN").unwrap_or_else(|e| panic!("{e:#}"));
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir());
        if self.opts.insecure {
            cmd.arg("--insecure");
        } else {
            cmd.arg("--tls-dir").arg(self.tls_dir());
        }
        cmd
    }

    /// Writes `environment.yaml` for `containers` into [`TestBed::dir`]; its path.
    pub fn write_environment(&self, containers: &[BedContainer]) -> PathBuf {
        let path = self.dir().join("environment.yaml");
        fs::write(&path, self.environment_yaml(containers))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Writes `name` in [`TestBed::dir`]: the environment of `containers`
    /// with a `registration` section (its body indented already); its path.
    pub fn write_registered_environment(
        &self,
        name: &str,
        containers: &[BedContainer],
        registration: &str,
    ) -> PathBuf {
        let path = self.dir().join(name);
        let yaml = format!(
            "{}registration:\n{registration}",
            self.environment_yaml(containers)
        );
        fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The text [`TestBed::write_environment`] writes.
    pub fn environment_yaml(&self, containers: &[BedContainer]) -> String {
        let mut y = format!(
            "# dockstack test bed, slot {}\ncommon:\n  domain: bed{}.test\ncontainerhosts:\n",
            self.slot, self.slot
        );
        for h in &self.hosts {
            y.push_str(&format!(
                "  {}:\n    ip: {}\n    port: {}\n",
                yaml_str(&h.name),
                h.mgmt_ip,
                h.port
            ));
        }
        if containers.is_empty() {
            y.push_str("containers: {}\n");
            return y;
        }
        y.push_str("containers:\n");
        for c in containers {
            let host = self
                .hosts
                .get(c.host)
                .unwrap_or_else(|| panic!("container {}: no host {} in the bed", c.name, c.host));
            let given: BTreeSet<&str> = c
                .extra_yaml
                .lines()
                .filter(|l| !l.starts_with([' ', '-', '#']) && !l.trim().is_empty())
                .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
                .collect();
            y.push_str(&format!("  {}:\n", yaml_str(&c.name)));
            let defaults = [
                ("image", yaml_str(&c.image)),
                ("ip", c.ip.to_string()),
                ("mask", self.gateway.prefix().to_string()),
                ("gateway", self.gateway.ip().to_string()),
                ("bridge", yaml_str(&self.opts.bridge)),
                ("host", yaml_str(&host.name)),
                ("state", "true".to_string()),
            ];
            for (key, value) in defaults {
                if !given.contains(key) {
                    y.push_str(&format!("    {key}: {value}\n"));
                }
            }
            for line in c.extra_yaml.lines().filter(|l| !l.trim().is_empty()) {
                y.push_str("    ");
                y.push_str(line);
                y.push('\n');
            }
        }
        y
    }

    /// veth links in the root namespace whose names start with `ds`: what a
    /// test may have leaked. Left out, as they belong to someone else running
    /// in parallel: the management links of test beds (`dsm<slot>h<i>`, this
    /// bed's and other beds'), and veths whose peer is in a named network
    /// namespace that is not this bed's (netplug's own tests make those).
    pub fn root_veths(&self) -> Vec<String> {
        let out = ip(&["-o", "link", "show", "type", "veth"]).unwrap_or_else(|e| panic!("{e:#}"));
        out.lines()
            .filter_map(|line| {
                let name = line.split(": ").nth(1)?;
                let name = name.split('@').next().unwrap_or(name);
                let peer_ns = line
                    .split_whitespace()
                    .skip_while(|w| *w != "link-netns")
                    .nth(1);
                let foreign = peer_ns.is_some_and(|ns| !self.hosts.iter().any(|h| h.netns == ns));
                (name.starts_with("ds") && !is_bed_mgmt_link(name) && !foreign)
                    .then(|| name.to_string())
            })
            .collect()
    }

    /// Names of the Docker containers (running or not) labelled as host `i`'s.
    pub fn managed_containers(&self, i: usize) -> Vec<String> {
        let label = format!("label={HOST_LABEL}={}", self.hosts[i].name);
        docker(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
            .unwrap_or_else(|e| panic!("{e:#}"))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Names of host `i`'s managed containers as their users know them:
    /// without the sandboxes, each of which is checked to be there; sorted.
    pub fn managed_apps(&self, i: usize) -> Vec<String> {
        let all = self.managed_containers(i);
        let mut apps: Vec<String> = all
            .iter()
            .filter(|n| !n.ends_with(SANDBOX_SUFFIX))
            .cloned()
            .collect();
        for app in &apps {
            let sandbox = format!("{app}{SANDBOX_SUFFIX}");
            assert!(
                all.contains(&sandbox),
                "container {app} on host {i} has no sandbox {sandbox}: {all:?}"
            );
        }
        apps.sort();
        apps
    }

    /// Removes everything now; the errors of every step.
    pub fn teardown(mut self) -> Result<()> {
        self.torn_down = true;
        self.cleanup()
    }

    /// Leaves the bed up after this process ends (for `dockstack-testbed up`).
    /// `dockstack-testbed down --slot N`, or the next bed in the slot, removes it.
    pub fn leave_up(self) {
        std::mem::forget(self);
    }

    fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for h in &mut self.hosts {
            if let Some(mut child) = h.server.take()
                && let Err(e) = stop_child(&mut child)
            {
                errors.push(format!("stopping the server of {}: {e:#}", h.name));
            }
        }
        if let Err(e) = cleanup_slot_unlocked(self.slot, &self.names) {
            errors.push(format!("{e:#}"));
        }
        join_errors(errors)
    }

    /// What a failed test needs to be understood afterwards: each host's
    /// server and ovs-vswitchd logs, and its links as they are now.
    fn dump_logs(&self) {
        for h in &self.hosts {
            for log in [h.server_log(), h.rundir.join("ovs-vswitchd.log")] {
                if log.exists() {
                    eprintln!(
                        "---- test bed slot {}: last lines of {} ({}) ----\n{}",
                        self.slot,
                        log.display(),
                        h.name,
                        tail(&log, 40)
                    );
                }
            }
            match ip(&["-n", &h.netns, "-d", "-o", "link", "show"]) {
                Ok(links) => eprintln!(
                    "---- test bed slot {}: links of {} ----\n{links}",
                    self.slot, h.name
                ),
                Err(e) => eprintln!("links of {}: {e:#}", h.name),
            }
        }
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
        if std::env::var_os(KEEP_ENV).is_some_and(|v| v != "0") {
            eprintln!(
                "test bed slot {} left up (${KEEP_ENV}); remove it with `dockstack-testbed down --slot {}`",
                self.slot, self.slot
            );
            return;
        }
        if let Err(e) = self.cleanup() {
            eprintln!("test bed slot {}: cleanup failed: {e:#}", self.slot);
        }
    }
}

// ---------------------------------------------------------------------------
// Slots

/// The directory of a slot: its hosts' run dirs, `bed.state`, `files/`.
pub fn slot_dir(slot: u8) -> PathBuf {
    Path::new(BED_ROOT).join(slot.to_string())
}

fn lock_path(slot: u8) -> PathBuf {
    Path::new(BED_ROOT).join(format!("slot-{slot}.lock"))
}

fn lock_slot(slot: u8) -> Result<Option<File>> {
    let path = lock_path(slot);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            write!(file, "{}", std::process::id())?;
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

fn slot_busy(slot: u8) -> anyhow::Error {
    let pid = fs::read_to_string(lock_path(slot)).unwrap_or_default();
    anyhow!(
        "test bed slot {slot} is in use by another process (pid {}, lock {})",
        pid.trim(),
        lock_path(slot).display()
    )
}

fn allocate_slot() -> Result<(u8, File)> {
    for slot in 1..=MAX_SLOT {
        if let Some(lock) = lock_slot(slot)? {
            return Ok((slot, lock));
        }
    }
    bail!("all test bed slots 1..={MAX_SLOT} are in use")
}

/// Removes everything of slot `slot` (servers, containers, OVS, namespaces,
/// links, routes, run dirs), as `Drop` does, from the slot number alone.
/// Fails if a running process holds the slot.
pub fn cleanup_slot(slot: u8) -> Result<()> {
    ensure!(
        slot <= MAX_SLOT,
        "test bed slots are 0..={MAX_SLOT}, not {slot}"
    );
    check_root()?;
    fs::create_dir_all(BED_ROOT)?;
    let _lock = lock_slot(slot)?.ok_or_else(|| slot_busy(slot))?;
    cleanup_slot_unlocked(slot, &[])
}

/// [`cleanup_slot`] for every slot that has something left and that no
/// running process holds; the slots cleaned.
pub fn cleanup_all() -> Result<Vec<u8>> {
    check_root()?;
    let netns = list_netns()?;
    let links = link_names(&["-o", "link", "show"])?;
    let mut cleaned = Vec::new();
    let mut errors = Vec::new();
    for slot in 0..=MAX_SLOT {
        let ns_prefix = format!("dsb{slot}h");
        let link_prefix = format!("dsm{slot}h");
        let used = slot_dir(slot).exists()
            || netns.iter().any(|n| indexed(n, &ns_prefix).is_some())
            || links.iter().any(|n| indexed(n, &link_prefix).is_some());
        if !used {
            continue;
        }
        match lock_slot(slot) {
            Ok(Some(_lock)) => match cleanup_slot_unlocked(slot, &[]) {
                Ok(()) => cleaned.push(slot),
                Err(e) => errors.push(format!("{e:#}")),
            },
            Ok(None) => eprintln!("test bed slot {slot} is in use; left alone"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    join_errors(errors)?;
    Ok(cleaned)
}

/// The cleanup proper; the caller holds the slot's lock.
fn cleanup_slot_unlocked(slot: u8, known_names: &[String]) -> Result<()> {
    let mut errors: Vec<String> = Vec::new();
    let dir = slot_dir(slot);
    let mut names: BTreeSet<String> = known_names.iter().cloned().collect();
    if let Ok(state) = fs::read_to_string(dir.join("bed.state")) {
        names.extend(
            state
                .lines()
                .filter_map(|l| l.strip_prefix("host\t"))
                .filter_map(|l| l.split('\t').nth(1))
                .map(String::from),
        );
    }
    let ns_prefix = format!("dsb{slot}h");
    let netns: Vec<String> = match list_netns() {
        Ok(all) => all
            .into_iter()
            .filter(|n| indexed(n, &ns_prefix).is_some())
            .collect(),
        Err(e) => {
            errors.push(format!("{e:#}"));
            Vec::new()
        }
    };
    let rundirs: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| indexed(&e.file_name().to_string_lossy(), "h").is_some())
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            errors.push(format!("reading {}: {e}", dir.display()));
            Vec::new()
        }
    };

    // 1. The servers.
    for rd in &rundirs {
        if let Err(e) = stop_pidfile(&rd.join("server.pid"), rd) {
            errors.push(format!("stopping the server of {}: {e:#}", rd.display()));
        }
    }
    // 2. Their containers.
    if let Err(e) = remove_bed_containers(slot, &names) {
        errors.push(format!("{e:#}"));
    }
    // 3. OVS, then anything else still running in the namespaces.
    for rd in &rundirs {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            if let Err(e) = stop_pidfile(&rd.join(format!("{daemon}.pid")), rd) {
                errors.push(format!("stopping {daemon} of {}: {e:#}", rd.display()));
            }
        }
    }
    for ns in &netns {
        if let Err(e) = kill_netns_processes(ns) {
            errors.push(format!("{e:#}"));
        }
    }
    // 4. The namespaces (and the veths in them).
    for ns in &netns {
        if let Err(e) = ip(&["netns", "delete", ns]) {
            errors.push(format!("{e:#}"));
        }
    }
    // 5. Root ends of management links that are still there.
    let link_prefix = format!("dsm{slot}h");
    match link_names(&["-o", "link", "show"]) {
        Ok(links) => {
            for link in links.iter().filter(|l| indexed(l, &link_prefix).is_some()) {
                if let Err(e) = ip(&["link", "delete", link])
                    && !format!("{e:#}").contains("Cannot find device")
                {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        Err(e) => errors.push(format!("{e:#}")),
    }
    // 6. The safety routes.
    for net in safety_nets(slot, true) {
        if let Err(e) = ip(&["route", "delete", "unreachable", &net])
            && !format!("{e:#}").contains("No such process")
        {
            errors.push(format!("{e:#}"));
        }
    }
    // 7. The run dirs; kept when something failed, for a later cleanup.
    if errors.is_empty() {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("removing {}: {e}", dir.display())),
        }
    } else {
        errors.push(format!("kept {} for a later cleanup", dir.display()));
    }
    join_errors(errors).with_context(|| format!("cleaning up test bed slot {slot}"))
}

fn remove_bed_containers(slot: u8, names: &BTreeSet<String>) -> Result<()> {
    let format = format!("{{{{.ID}}}}\t{{{{.Names}}}}\t{{{{.Label \"{HOST_LABEL}\"}}}}");
    let out = docker(&["ps", "-a", "--no-trunc", "--format", &format])?;
    let host_prefix = format!("bed{slot}-h");
    let name_prefix = format!("t{slot}-");
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let id = fields.next()?;
            let name = fields.next().unwrap_or("");
            let host = fields.next().unwrap_or("");
            let ours = names.contains(host)
                || indexed(host, &host_prefix).is_some()
                || name.starts_with(&name_prefix);
            ours.then_some(id)
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(ids);
    docker(&args)?;
    Ok(())
}

/// The `unreachable` routes that keep the bed's ranges from leaking to the
/// default route.
fn safety_nets(slot: u8, with_containers: bool) -> Vec<String> {
    let mut nets = vec![format!("10.231.{slot}.0/24")];
    if with_containers {
        nets.push(format!("10.232.{slot}.0/24"));
    }
    nets
}

fn mgmt_addresses(slot: u8, i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 4 * u8::try_from(i).expect("a bed has at most 63 hosts");
    (
        Ipv4Addr::new(10, 231, slot, base + 1),
        Ipv4Addr::new(10, 231, slot, base + 2),
    )
}

/// Host `i`'s number in address arithmetic; a bed has a handful of hosts.
fn host_number(i: usize) -> u32 {
    u32::try_from(i).expect("a bed has few hosts")
}

fn nth_address(net: Ipv4Network, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + n)
}

/// `Some(n)` when `name` is `prefix` followed by the decimal `n`.
fn indexed(name: &str, prefix: &str) -> Option<usize> {
    let rest = name.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

fn is_bed_mgmt_link(name: &str) -> bool {
    name.strip_prefix("dsm")
        .and_then(|rest| rest.split_once('h'))
        .is_some_and(|(slot, host)| {
            !slot.is_empty()
                && slot.bytes().all(|b| b.is_ascii_digit())
                && indexed(host, "").is_some()
        })
}

// ---------------------------------------------------------------------------
// Processes

fn stop_child(child: &mut Child) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = Pid::from_raw(child.id().cast_signed());
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Stops the process of a pid file if its command line names `rundir`
/// (a recycled pid of someone else's process is left alone).
fn stop_pidfile(pidfile: &Path, rundir: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(pidfile) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    let marker = format!("{}/", rundir.display());
    if !cmdline(pid).is_some_and(|c| c.contains(&marker)) {
        return Ok(());
    }
    stop_pid(pid)
}

/// SIGTERM, then SIGKILL after 3 s.
fn stop_pid(pid: i32) -> Result<()> {
    let p = Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGTERM);
    if wait_gone(pid, STOP_GRACE) {
        return Ok(());
    }
    let _ = kill(p, Signal::SIGKILL);
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "process {pid} survived SIGKILL"
    );
    Ok(())
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Stops every process left in namespace `ns` (it is the bed's own).
fn kill_netns_processes(ns: &str) -> Result<()> {
    let pids: Vec<i32> = ip(&["netns", "pids", ns])?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut errors = Vec::new();
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    for &pid in &pids {
        if !wait_gone(pid, STOP_GRACE) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            if !wait_gone(pid, Duration::from_secs(2)) {
                errors.push(format!("process {pid} in {ns} survived SIGKILL"));
            }
        }
    }
    join_errors(errors)
}

// ---------------------------------------------------------------------------
// Tools

/// Checks that this machine can run a test bed: root, `ip`, Open vSwitch, a
/// working dockerd. The error says what is missing and how to install it.
pub fn check_preconditions() -> Result<()> {
    static CHECKED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| preconditions().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn preconditions() -> Result<()> {
    let mut missing = Vec::new();
    if let Err(e) = check_root() {
        missing.push(format!("{e:#}"));
    }
    if which("ip").is_none() {
        missing.push("`ip` not found: apt-get install -y iproute2".to_string());
    }
    for bin in ["ovs-vsctl", "ovsdb-server", "ovs-vswitchd", "ovsdb-tool"] {
        if which(bin).is_none() {
            missing.push(format!(
                "`{bin}` not found in PATH or /usr/sbin: install Open vSwitch with `apt-get install -y openvswitch-switch`"
            ));
        }
    }
    if !Path::new(OVS_SCHEMA).is_file() {
        missing.push(format!(
            "{OVS_SCHEMA} not found: install Open vSwitch with `apt-get install -y openvswitch-switch`"
        ));
    }
    if which("docker").is_none() {
        missing.push("the `docker` CLI not found: apt-get install -y docker.io".to_string());
    } else if let Err(e) = docker(&["info", "--format", "{{.ServerVersion}}"]) {
        missing.push(format!(
            "`docker info` failed, so dockerd is not usable: start it (`service docker start`, or `dockerd &`) and check /var/run/docker.sock: {e:#}"
        ));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        bail!(
            "the dockstack test bed cannot run on this machine:\n - {}",
            missing.join("\n - ")
        )
    }
}

fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Fails, saying why, unless this process is root.
pub fn check_root() -> Result<()> {
    ensure!(
        geteuid() == 0,
        "not root (euid {}): the test bed makes network namespaces, veths, OVS bridges and Docker containers; run the tests as root (e.g. `sudo -E cargo nextest run -p dockstack-tests`)",
        geteuid()
    );
    Ok(())
}

/// `name` in `PATH` or the usual sbin directories.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn tool(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// The directory of the workspace's binaries: `target/<profile>/`, found
/// from the running executable (`target/<profile>/deps/<test>-<hash>` or
/// `target/<profile>/<bin>`).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the running executable")?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))?;
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir = dir.parent().unwrap_or(dir);
    }
    Ok(dir.to_path_buf())
}

/// A workspace binary: `$env_var`, else `target/<profile>/<name>`.
pub fn find_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => target_dir()?.join(name),
    };
    ensure!(
        path.is_file(),
        "{name} not found at {}: run `cargo build --workspace --bins` first (or set ${env_var})",
        path.display()
    );
    Ok(path)
}

/// ovsdb-server's arguments for the host whose run directory is `rundir`.
fn ovsdb_server_args(rundir: &Path) -> Vec<String> {
    let rd = rundir.display();
    vec![
        format!("{rd}/conf.db"),
        format!("--remote=punix:{rd}/db.sock"),
        format!("--pidfile={rd}/ovsdb-server.pid"),
        "--detach".into(),
        format!("--log-file={rd}/ovsdb-server.log"),
        format!("--unixctl={rd}/ovsdb-server.ctl"),
    ]
}

/// Stops the ovsdb-server of the host at `rundir` (its database stays), so
/// a test can make OVSDB fail between two steps of a server. Free of the
/// bed, so that a thread can do it while the bed starts a server.
pub fn stop_ovsdb(rundir: &Path) -> Result<()> {
    run(Command::new(tool("ovs-appctl"))
        .arg("-t")
        .arg(rundir.join("ovsdb-server.ctl"))
        .arg("exit"))
    .map(drop)
}

/// Starts again the ovsdb-server [`stop_ovsdb`] stopped, on its database.
pub fn start_ovsdb(netns: &str, rundir: &Path) -> Result<()> {
    run(Command::new(tool("ip"))
        .args(["netns", "exec", netns])
        .arg(tool("ovsdb-server"))
        .args(ovsdb_server_args(rundir))
        .envs(ovs_env(rundir)))
    .map(drop)
}

fn ovs_env(rundir: &Path) -> [(&'static str, &Path); 3] {
    [
        ("OVS_RUNDIR", rundir),
        ("OVS_LOGDIR", rundir),
        ("OVS_DBDIR", rundir),
    ]
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd`; its stdout, or an error naming it with its stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", show(cmd)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        bail!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            if stderr.trim().is_empty() {
                stdout.trim()
            } else {
                stderr.trim()
            }
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip` with `args` in the root namespace; its stdout.
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new(tool("ip")).args(args))
}

/// Runs `docker` with `args`; its stdout.
pub fn docker<S: AsRef<OsStr>>(args: &[S]) -> Result<String> {
    run(Command::new(tool("docker")).args(args))
}

fn list_netns() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect())
}

/// Link names from `ip -o link show ...` (`7: name@peer: <...`).
fn link_names(args: &[&str]) -> Result<Vec<String>> {
    Ok(ip(args)?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => sleep(Duration::from_millis(100)),
        }
    }
}

/// The last `n` lines of a file (or why it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(raw) => {
            let text = String::from_utf8_lossy(&raw);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

fn join_errors(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("\n"))
    }
}

fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !s.starts_with(['-', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

// ---------------------------------------------------------------------------
// Interfaces

/// Turns TX checksum offload of interface `ifname` in the network namespace
/// `netns_file` (`/proc/<pid>/ns/net`, `/run/netns/<name>`) on or off
/// (`ethtool -K IFNAME tx off`, without ethtool).
///
/// With OVS's userspace datapath (`datapath_type=netdev`, as on the bed), a
/// veth that offloads TX checksums sends TCP and UDP with unfinished
/// checksums that OVS forwards as they are, so the receiver drops them: a
/// container's `eth0` on such a bridge needs `tx off` (ICMP works either way).
pub fn set_tx_checksum_offload(netns_file: &Path, ifname: &str, enabled: bool) -> Result<()> {
    let ns = File::open(netns_file).with_context(|| format!("opening {}", netns_file.display()))?;
    // The thread enters the namespace only to open a socket there, and ends
    // there; the ioctl acts in the socket's namespace from any thread.
    let socket = std::thread::spawn(move || -> Result<std::os::fd::OwnedFd> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the network namespace")?;
        Ok(netplug::ethtool::open_control_socket()?)
    })
    .join()
    .map_err(|_| anyhow!("namespace thread panicked"))??;
    netplug::ethtool::set_tx_checksum(&socket, ifname, enabled)
        .with_context(|| format!("ethtool tx {enabled} on {ifname}"))
}

// ---------------------------------------------------------------------------
// Test images

/// Builds (once, serialised across processes) [`TEST_IMAGE`]: a static
/// busybox `FROM scratch`, `sleep infinity` by default. Nothing is pulled.
pub fn ensure_test_image() -> Result<&'static str> {
    static BUILT: OnceLock<()> = OnceLock::new();
    if BUILT.get().is_none() {
        build_image_once(TEST_IMAGE, |ctx| {
            let busybox = static_busybox()?;
            let dest = ctx.join("busybox");
            fs::copy(&busybox, &dest).with_context(|| format!("copying {}", busybox.display()))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
            fs::write(
                ctx.join("Dockerfile"),
                "FROM scratch\n\
                 COPY busybox /bin/busybox\n\
                 RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                 CMD [\"/bin/sleep\", \"infinity\"]\n",
            )?;
            Ok(())
        })?;
        let _ = BUILT.set(());
    }
    Ok(TEST_IMAGE)
}

/// Builds (once) [`DNSMASQ_IMAGE`]: the busybox image plus the machine's
/// `/usr/sbin/dnsmasq` and `/usr/bin/pkill` with their shared libraries, serving
/// `/etc/dnsmasq.d/dockstack.dns` (empty in the image) as extra hosts.
pub fn ensure_dnsmasq_image() -> Result<&'static str> {
    static BUILT: OnceLock<()> = OnceLock::new();
    if BUILT.get().is_none() {
        let base = ensure_test_image()?;
        build_image_once(DNSMASQ_IMAGE, |ctx| {
            let dnsmasq = Path::new("/usr/sbin/dnsmasq");
            ensure!(
                dnsmasq.is_file(),
                "/usr/sbin/dnsmasq not found: apt-get install -y dnsmasq-base"
            );
            // busybox has no pkill, and the default DNS reload is `pkill -HUP -x dnsmasq`.
            let pkill = Path::new("/usr/bin/pkill");
            ensure!(
                pkill.exists(),
                "/usr/bin/pkill not found (the DNS image needs it for the reload): apt-get install -y procps"
            );
            let root = ctx.join("rootfs");
            let mut libs = BTreeSet::new();
            for bin in [dnsmasq, pkill] {
                copy_at(&root, bin)?;
                libs.extend(shared_libraries(bin)?);
            }
            for lib in libs {
                copy_at(&root, &lib)?;
            }
            let files = [
                (
                    "etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                ),
                ("etc/group", "root:x:0:\ndip:x:30:\nnogroup:x:65534:\n"),
                ("etc/dnsmasq.d/dockstack.dns", ""),
            ];
            for (path, text) in files {
                let dest = root.join(path);
                fs::create_dir_all(dest.parent().expect("has a parent"))?;
                fs::write(&dest, text)?;
            }
            for dir in ["var/run", "run", "var/lib/misc", "root"] {
                fs::create_dir_all(root.join(dir))?;
            }
            fs::write(
                ctx.join("Dockerfile"),
                format!(
                    "FROM {base}\n\
                     COPY rootfs/ /\n\
                     CMD [\"/usr/sbin/dnsmasq\", \"-k\", \"--no-resolv\", \"--no-hosts\", \
                     \"--addn-hosts=/etc/dnsmasq.d/dockstack.dns\", \"--log-facility=-\", \"--user=root\"]\n"
                ),
            )?;
            Ok(())
        })?;
        let _ = BUILT.set(());
    }
    Ok(DNSMASQ_IMAGE)
}

fn build_image_once(tag: &str, prepare: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    fs::create_dir_all(BED_ROOT)?;
    let lock_file = Path::new(BED_ROOT).join("images.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .with_context(|| format!("opening {}", lock_file.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_file.display()))?;
    if docker(&["image", "inspect", "--format", "{{.Id}}", tag]).is_ok() {
        return Ok(());
    }
    let safe: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let ctx = Path::new(BED_ROOT).join(format!("build-{safe}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&ctx);
    fs::create_dir_all(&ctx)?;
    let result = prepare(&ctx).and_then(|()| {
        docker(&[
            OsStr::new("build"),
            OsStr::new("--network=none"),
            OsStr::new("--label=dockstack.test=true"),
            OsStr::new("-t"),
            OsStr::new(tag),
            ctx.as_os_str(),
        ])
        .with_context(|| format!("building the test image {tag}"))
    });
    let _ = fs::remove_dir_all(&ctx);
    result.map(|_| ())
}

fn static_busybox() -> Result<PathBuf> {
    for path in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(path);
        if path.is_file() && is_static_elf(path)? {
            return Ok(path.to_path_buf());
        }
    }
    bail!(
        "no statically linked busybox at /bin/busybox (the test image is built FROM scratch): apt-get install -y busybox-static"
    )
}

/// Whether `path` is a 64-bit little-endian ELF without a program interpreter.
fn is_static_elf(path: &Path) -> Result<bool> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    if raw.len() < 64 || &raw[..4] != b"\x7fELF" || raw[4] != 2 || raw[5] != 1 {
        return Ok(false);
    }
    let u16_at = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]) as usize;
    let phoff = usize::try_from(u64::from_le_bytes(
        raw[0x20..0x28].try_into().expect("8 bytes"),
    ))?;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for k in 0..phnum {
        let at = phoff + k * phentsize;
        let Some(p_type) = raw.get(at..at + 4) else {
            return Ok(false);
        };
        if u32::from_le_bytes(p_type.try_into().expect("4 bytes")) == 3 {
            return Ok(false); // PT_INTERP: dynamically linked
        }
    }
    Ok(true)
}

/// The shared libraries and the loader of `bin`, from `ldd`.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = run(Command::new(tool("ldd")).arg(bin))?;
    let mut libs = Vec::new();
    for line in out.lines() {
        ensure!(
            !line.contains("not found"),
            "{}: a library is missing: {}",
            bin.display(),
            line.trim()
        );
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    ensure!(
        !libs.is_empty(),
        "ldd found no libraries of {}",
        bin.display()
    );
    Ok(libs)
}

/// Copies `path` (following links) to the same path under `root`.
fn copy_at(root: &Path, path: &Path) -> Result<()> {
    let dest = root.join(path.strip_prefix("/").unwrap_or(path));
    fs::create_dir_all(dest.parent().expect("has a parent"))?;
    fs::copy(path, &dest).with_context(|| format!("copying {}", path.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_exactly() {
        assert_eq!(indexed("dsb1h0", "dsb1h"), Some(0));
        assert_eq!(indexed("dsb1h12", "dsb1h"), Some(12));
        assert_eq!(indexed("dsb10h0", "dsb1h"), None);
        assert_eq!(indexed("dsb1h", "dsb1h"), None);
        assert_eq!(indexed("dsb1hx", "dsb1h"), None);
        assert!(is_bed_mgmt_link("dsm3h1"));
        assert!(!is_bed_mgmt_link("dsm3x1"));
        assert!(!is_bed_mgmt_link("dsmh1"));
        assert!(!is_bed_mgmt_link("dsc1"));
    }

    #[test]
    fn addresses_follow_the_slot() {
        assert_eq!(
            mgmt_addresses(7, 2),
            (Ipv4Addr::new(10, 231, 7, 9), Ipv4Addr::new(10, 231, 7, 10))
        );
        let gw: Ipv4Network = "10.0.0.100/16".parse().unwrap();
        assert_eq!(nth_address(gw, 249), Ipv4Addr::new(10, 0, 0, 249));
    }

    #[test]
    fn yaml_strings_are_quoted_when_needed() {
        assert_eq!(yaml_str("bed1-h0"), "bed1-h0");
        assert_eq!(
            yaml_str("dockstack-test-busybox:latest"),
            "\"dockstack-test-busybox:latest\""
        );
        assert_eq!(yaml_str("yes"), "\"yes\"");
        assert_eq!(yaml_str("12"), "\"12\"");
    }
}
