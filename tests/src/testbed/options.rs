//! What a bed is made of: [`BedOptions`] for the bed, [`BedContainer`] for the environment it writes.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnetwork::Ipv4Network;

use super::layout::TEST_IMAGE;

/// How to build a [`TestBed`](super::TestBed).
#[derive(Debug, Clone)]
pub struct BedOptions {
    /// Number of simulated container hosts (1..=60).
    pub hosts: usize,
    /// `None`: allocate a free slot in 1..=250; `Some(0)` is the demo's.
    pub slot: Option<u8>,
    /// Address and prefix of host 0's bridge, the containers' gateway
    /// (default `10.232.<slot>.1/24`). The prefix must be /24 or shorter.
    pub gateway: Option<Ipv4Network>,
    /// Name of the OVS bridge on every host.
    pub bridge: String,
    /// Start a `dockstack-server` in every host.
    pub start_servers: bool,
    /// Extra arguments appended to every server's command line.
    pub server_args: Vec<String>,
    /// Extra environment of every server (`DOCKSTACK_SERVER_PANIC`, ...);
    /// [`TestBed::set_server_env`](super::TestBed::set_server_env) changes it for servers started later.
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

/// A container for [`TestBed::write_environment`](super::TestBed::write_environment).
#[derive(Debug, Clone)]
pub struct BedContainer {
    /// The container's name, used as is (use [`TestBed::container_name`](super::TestBed::container_name)).
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
