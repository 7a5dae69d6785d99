//! Each host's own Open vSwitch: starting its daemons, `ovs-vsctl` against it and its bridge's ports, and stopping and restarting its OVSDB for tests.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::bed::TestBed;
use super::layout::OVS_SCHEMA;
use super::tools::{run, show, tail, tool};

impl TestBed {
    pub(super) fn start_ovs(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        let rd = h.rundir.display().to_string();
        let db = format!("{rd}/conf.db");
        run(Command::new(tool("ovsdb-tool")).args(["create", &db, OVS_SCHEMA]))?;
        self.ovs_daemon(i, "ovsdb-server", &ovsdb_server_args(&h.rundir))?;
        self.ovs_vsctl(i, &["--no-wait", "init"])?;
        self.ovs_daemon(i, "ovs-vswitchd", &vswitchd_args(&h.rundir))
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

/// ovs-vswitchd's arguments for the host whose run directory is `rundir`.
fn vswitchd_args(rundir: &Path) -> Vec<String> {
    let rd = rundir.display();
    vec![
        format!("unix:{rd}/db.sock"),
        format!("--pidfile={rd}/ovs-vswitchd.pid"),
        "--detach".into(),
        format!("--log-file={rd}/ovs-vswitchd.log"),
        format!("--unixctl={rd}/ovs-vswitchd.ctl"),
    ]
}

/// SIGKILLs the daemon (`ovs-vswitchd`, `ovsdb-server`) of the host at
/// `rundir`, as a crash would end it (its pidfile and sockets stay
/// behind), and waits until it is gone.
pub fn kill_ovs_daemon(rundir: &Path, daemon: &str) -> Result<()> {
    let pidfile = rundir.join(format!("{daemon}.pid"));
    let pid = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("reading {}", pidfile.display()))?;
    let pid = pid.trim();
    run(Command::new("kill").args(["-KILL", pid]))?;
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if std::time::Instant::now() > gone {
            bail!("{daemon} (pid {pid}) still there 10 s after SIGKILL");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// Starts ovs-vswitchd again as the bed starts it, on the host's database;
/// returns once it has detached (its bridges may still be being made).
pub fn start_vswitchd(netns: &str, rundir: &Path) -> Result<()> {
    run(Command::new(tool("ip"))
        .args(["netns", "exec", netns])
        .arg(tool("ovs-vswitchd"))
        .args(vswitchd_args(rundir))
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
