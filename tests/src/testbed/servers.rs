//! The hosts' `dockstack-server`s: their certificates, starting, waiting for, stopping and restarting them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use super::bed::TestBed;
use super::layout::slot_dir;
use super::process::stop_child;
use super::tools::{find_binary, run, show, tail, tool};

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(15);

impl TestBed {
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

    /// Starts host `i`'s server (after [`TestBed::kill_server`]) and waits until it accepts connections.
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
}
