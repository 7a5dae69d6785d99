//! Whether this machine can run a bed: root, `ip`, Open vSwitch and a working dockerd.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail, ensure};

use super::layout::OVS_SCHEMA;
use super::tools::{docker, which};

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
