//! [`TestBed`]: taking a slot, building the hosts, its accessors, and its removal (teardown, on drop, or left up).

use std::fs::{self, File};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail, ensure};
use ipnetwork::{Ipv4Network, Ipv6Network};

use super::cleanup::cleanup_slot_unlocked;
use super::host::Host;
use super::layout::{
    BED_ROOT, KEEP_ENV, MAX_HOSTS, MAX_SLOT, host_number, nth_address, safety_nets, slot_dir,
};
use super::options::BedOptions;
use super::preconditions::check_preconditions;
use super::process::stop_child;
use super::slots::{allocate_slot, lock_slot, slot_busy};
use super::tools::{find_binary, ip, join_errors, tail};

/// N simulated container hosts; everything is removed on drop.
#[derive(Debug)]
pub struct TestBed {
    pub(super) slot: u8,
    pub(super) opts: BedOptions,
    pub(super) gateway: Ipv4Network,
    pub(super) names: Vec<String>,
    pub(super) hosts: Vec<Host>,
    pub(super) server_bin: Option<PathBuf>,
    pub(super) torn_down: bool,
    // Last: the slot stays ours until the cleanup in `drop` has finished.
    pub(super) _lock: File,
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
    /// `fd00:232:<slot>::1/64`.
    pub fn gateway6(&self) -> Ipv6Network {
        let ip = Ipv6Addr::new(0xfd00, 0x232, u16::from(self.slot), 0, 0, 0, 0, 1);
        Ipv6Network::new(ip, 64).expect("a /64")
    }

    /// The `n`-th address of the IPv6 gateway's prefix (`n` added to
    /// `fd00:232:<slot>::`, so 48 is `::30`).
    pub fn subnet_ip6(&self, n: u32) -> Ipv6Addr {
        let base = u128::from(self.gateway6().network());
        Ipv6Addr::from(base + u128::from(n))
    }

    /// The `n`-th address of the gateway's network (`10.232.<slot>.n` by default).
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
