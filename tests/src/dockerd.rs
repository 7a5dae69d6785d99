//! A private dockerd for a test that must hang or break Docker itself
//! (SIGSTOP): its own data root, exec root, socket and managed containerd
//! under a directory of its own, no bridge and no iptables rules, so the
//! machine's dockerd, which every other test uses, is never touched.
//! Dropping it resumes it if paused, removes its containers, stops it and
//! removes its directory, however the test ended.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::testbed::docker as machine_docker;

/// How long a fresh dockerd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A dockerd of the test's own; see the module.
#[derive(Debug)]
pub struct PrivateDockerd {
    dir: PathBuf,
    child: Child,
}

impl PrivateDockerd {
    /// Starts a dockerd under `dir` (made empty first) and waits until it
    /// answers.
    pub fn start(dir: &Path) -> Result<PrivateDockerd> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Its own (empty) configuration: the machine's daemon.json names a
        // data root of its own, which would clash with --data-root.
        fs::write(dir.join("daemon.json"), "{}\n")?;
        let log = fs::File::create(dir.join("dockerd.log"))?;
        let at = |p: &str| dir.join(p).display().to_string();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--config-file")
            .arg(at("daemon.json"))
            .arg("--data-root")
            .arg(at("data"))
            .arg("--exec-root")
            .arg(at("exec"))
            .arg("--pidfile")
            .arg(at("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", at("docker.sock")))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                // Whatever the file system under `dir` is, vfs works on it.
                "--storage-driver",
                "vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting /usr/sbin/dockerd (is docker.io installed?)")?;
        let mut dockerd = PrivateDockerd {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = dockerd.child.try_wait()? {
                bail!(
                    "the private dockerd exited ({status}); its log:\n{}",
                    fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
                );
            }
            if dockerd.docker(&["info", "--format", "{{.ID}}"]).is_ok() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the private dockerd did not answer within {} s",
                START_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Its own containerd, not the machine's.
        let containerd = dir.join("exec/containerd/containerd.sock");
        ensure!(
            containerd.exists(),
            "the private dockerd runs no containerd of its own at {}",
            containerd.display()
        );
        Ok(dockerd)
    }

    /// Its endpoint, as `--docker` takes it.
    pub fn uri(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// dockerd's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `docker -H URI ARGS`; its stdout, or an error with its stderr.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        let out = self.command(args).output()?;
        text_of(&out, args)
    }

    /// `docker -H URI ARGS`, to be run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H").arg(self.uri()).args(args);
        cmd
    }

    /// Copies `image` from the machine's dockerd into this one.
    pub fn load_image(&self, image: &str) -> Result<()> {
        let saved = self.dir.join("image.tar");
        let path = saved.display().to_string();
        machine_docker(&["save", "-o", &path, image])?;
        self.docker(&["load", "-i", &path])?;
        let _ = fs::remove_file(&saved);
        Ok(())
    }

    /// SIGSTOP: dockerd stops answering; its containers run on.
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, s: Signal) -> Result<()> {
        kill(Pid::from_raw(self.child.id().cast_signed()), s)
            .with_context(|| format!("{s} to the private dockerd"))
    }

    /// Everything undone: see the module.
    fn remove(&mut self) -> Result<()> {
        let _ = self.resume();
        let mut errors = Vec::new();
        if let Ok(ids) = self.docker(&["ps", "-aq"]) {
            for id in ids.split_whitespace() {
                if let Err(e) = self.docker(&["rm", "-f", id]) {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        let _ = self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // What a killed dockerd may have left mounted under its directory.
        let marker = format!("{}/", self.dir.display());
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&marker))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            errors.push(format!("removing {}: {e}", self.dir.display()));
        }
        ensure!(errors.is_empty(), "{}", errors.join("; "));
        Ok(())
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("private dockerd under {}: {e:#}", self.dir.display());
        }
    }
}

fn text_of(out: &Output, args: &[&str]) -> Result<String> {
    ensure!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
