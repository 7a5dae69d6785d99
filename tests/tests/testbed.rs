//! Tests of the test bed itself: wiring, separate OVS per host, server management, cleanup, and the test images.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dockstack_tests::testbed::{
    BedContainer, BedOptions, DNSMASQ_IMAGE, TEST_IMAGE, TestBed, docker, ensure_dnsmasq_image,
    ensure_test_image, ip, set_tx_checksum_offload, slot_dir,
};

fn no_servers(hosts: usize) -> BedOptions {
    BedOptions {
        hosts,
        start_servers: false,
        ..BedOptions::default()
    }
}

/// What a bed of `slot` leaves in the root namespace and in /tmp.
fn leftovers(slot: u8) -> Vec<String> {
    let mut left = Vec::new();
    let netns = ip(&["netns", "list"]).unwrap();
    left.extend(
        netns
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("dsb{slot}h")))
            .map(|n| format!("netns {n}")),
    );
    let links = ip(&["-o", "link", "show"]).unwrap();
    left.extend(
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter(|n| n.starts_with(&format!("dsm{slot}h")))
            .map(|n| format!("link {n}")),
    );
    let routes = ip(&["route", "show"]).unwrap();
    left.extend(
        routes
            .lines()
            .filter(|r| {
                r.contains(&format!("10.231.{slot}.")) || r.contains(&format!("10.232.{slot}."))
            })
            .map(|r| format!("route {r}")),
    );
    if slot_dir(slot).exists() {
        left.push(format!("dir {}", slot_dir(slot).display()));
    }
    let containers = docker(&["ps", "-a", "--format", "{{.Names}}"]).unwrap();
    left.extend(
        containers
            .lines()
            .filter(|n| n.starts_with(&format!("t{slot}-")))
            .map(|n| format!("container {n}")),
    );
    left
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[test]
fn two_hosts_are_wired_have_their_own_ovs_and_are_removed_on_drop() -> Result<()> {
    let bed = TestBed::new(no_servers(2))?;
    let slot = bed.slot();
    assert!(
        (1..=250).contains(&slot),
        "tests never get the demo's slot 0"
    );
    let (h0, h1) = (bed.host(0), bed.host(1));
    assert_eq!(h0.name(), format!("bed{slot}-h0"));
    assert_eq!(h1.netns(), format!("dsb{slot}h1"));
    assert_eq!(h1.mgmt_ip(), Ipv4Addr::new(10, 231, slot, 6));
    assert_eq!(h0.bridge_ip(), Ipv4Addr::new(10, 232, slot, 1));
    assert_eq!(h1.bridge_ip(), Ipv4Addr::new(10, 232, slot, 249));
    assert_eq!(bed.gateway().to_string(), format!("10.232.{slot}.1/24"));
    assert_eq!(bed.subnet_ip(7), Ipv4Addr::new(10, 232, slot, 7));
    assert_eq!(bed.container_name("web"), format!("t{slot}-web"));

    // Across the wire, both ways.
    assert!(
        bed.ping_from_host(1, h0.bridge_ip()),
        "host 1 cannot ping host 0's bridge"
    );
    assert!(
        bed.ping_from_host(0, h1.bridge_ip()),
        "host 0 cannot ping host 1's bridge"
    );
    // The management addresses answer from the root namespace.
    let ping = std::process::Command::new("ping")
        .args(["-n", "-c1", "-W2", &h1.mgmt_ip().to_string()])
        .output()?;
    assert!(
        ping.status.success(),
        "root cannot ping host 1's management address"
    );

    // Each host has its own OVS: a port added on host 1 is not on host 0.
    for i in 0..2 {
        assert_eq!(bed.ovs_vsctl(i, &["list-br"])?.trim(), "br0");
        assert!(
            bed.ovs_ports(i).is_empty(),
            "host {i}: {:?}",
            bed.ovs_ports(i)
        );
    }
    bed.ovs_vsctl(
        1,
        &[
            "add-port",
            "br0",
            "probe",
            "--",
            "set",
            "interface",
            "probe",
            "type=internal",
        ],
    )?;
    assert_eq!(bed.ovs_ports(1), vec!["probe".to_string()]);
    assert!(bed.ovs_ports(0).is_empty());
    assert_ne!(
        bed.ovs_vsctl(0, &["get", "open_vswitch", ".", "_uuid"])?,
        bed.ovs_vsctl(1, &["get", "open_vswitch", ".", "_uuid"])?
    );
    let root_veths = bed.root_veths();
    assert!(
        !root_veths
            .iter()
            .any(|v| v.starts_with(&format!("dsm{slot}h"))),
        "the bed's own links are no leak: {root_veths:?}"
    );

    // The environment file names the hosts and the containers.
    let env = bed.write_environment(&[BedContainer::new(
        bed.container_name("web"),
        1,
        bed.subnet_ip(10),
    )
    .with_yaml("state: false\ndns: 10.232.0.2")]);
    let text = fs::read_to_string(&env)?;
    assert!(
        text.contains(&format!(
            "  bed{slot}-h1:\n    ip: 10.231.{slot}.6\n    port: 3288\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("    host: bed{slot}-h1\n")),
        "{text}"
    );
    assert!(
        text.contains("    state: false\n") && !text.contains("state: true"),
        "{text}"
    );

    drop(bed);
    assert_eq!(leftovers(slot), Vec::<String>::new());
    Ok(())
}

#[test]
fn a_bed_that_fails_half_way_removes_what_it_made() -> Result<()> {
    // The second host's server fails to start: host 0 is complete by then.
    let dir = tempdir("failing-server")?;
    let script = dir.join("server.sh");
    fs::write(
        &script,
        "#!/bin/sh\ncase \"$*\" in *bed249-h1*) echo 'no luck' >&2; exit 3;; esac\nexec busybox nc -ll -p 3288 -e /bin/true\n",
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let err = TestBed::new(BedOptions {
        hosts: 2,
        slot: Some(249),
        server_bin: Some(script),
        ..BedOptions::default()
    })
    .expect_err("the bed must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("exited") && msg.contains("no luck"), "{msg}");
    drop(dir);
    assert_eq!(leftovers(249), Vec::<String>::new());
    Ok(())
}

#[test]
fn servers_are_started_killed_restarted_and_cut_off() -> Result<()> {
    let dir = tempdir("stub-server")?;
    let script = dir.join("server.sh");
    // A stand-in for dockstack-server: says how it was called, then listens.
    fs::write(
        &script,
        "#!/bin/sh\necho \"stub $* OVS_RUNDIR=$OVS_RUNDIR\"\nexec busybox nc -ll -p 3288 -e /bin/true\n",
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let mut bed = TestBed::new(BedOptions {
        hosts: 2,
        server_bin: Some(script),
        server_args: vec!["--extra".into()],
        ..BedOptions::default()
    })?;
    let slot = bed.slot();
    let h1 = bed.host(1);
    let log = bed.server_log(1);
    let expected = format!(
        "stub listen --ipaddress 10.231.{slot}.6 --port 3288 --host-id bed{slot}-h1 --ovsdb unix:/tmp/dockstack-testbed/{slot}/h1/db.sock --tls-dir /tmp/dockstack-testbed/{slot}/tls --extra OVS_RUNDIR=/tmp/dockstack-testbed/{slot}/h1"
    );
    assert!(log.contains(&expected), "{log}");
    for file in [
        "ca.pem",
        "client.pem",
        "client.key",
        &format!("bed{slot}-h0.pem"),
        &format!("bed{slot}-h1.key"),
    ] {
        assert!(bed.tls_dir().join(file).exists(), "the bed made no {file}");
    }
    let (a0, a1) = (bed.host(0).addr(), h1.addr());
    assert!(connects(a0) && connects(a1));

    bed.kill_server(1)?;
    assert!(!bed.server_running(1));
    // (A connection's child of the stub may hold its socket for a moment.)
    assert!(
        (0..20).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            !connects(a1)
        }),
        "a killed server still accepts"
    );
    assert!(connects(a0), "the other host's server went too");
    bed.restart_server(1)?;
    assert!(bed.server_running(1) && connects(a1));
    bed.restart_server(0)?;
    assert!(connects(a0));

    bed.stop_host_link(1)?;
    assert!(
        !connects(a1),
        "a host with its link down is still reachable"
    );
    bed.start_host_link(1)?;
    assert!(
        (0..10).any(|_| connects(a1)),
        "the host did not come back with its link"
    );

    bed.teardown()?;
    drop(dir);
    assert_eq!(leftovers(slot), Vec::<String>::new());
    Ok(())
}

#[test]
fn containers_on_two_hosts_talk_over_the_wire() -> Result<()> {
    let image = ensure_test_image()?;
    let bed = TestBed::new(no_servers(2))?;
    let slot = bed.slot();
    // Plug a container into each host's br0 by hand, as netplug would.
    let mut ips = Vec::new();
    for i in 0..2 {
        let name = bed.container_name(&format!("wire{i}"));
        docker(&["run", "-d", "--net=none", "--name", &name, image])?;
        let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &name])?;
        let (pid, port, addr) = (
            pid.trim(),
            format!("t{slot}w{i}"),
            bed.subnet_ip(10 + u32::try_from(i)?),
        );
        let netns = bed.host(i).netns();
        ip(&[
            "-n", netns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", pid,
        ])?;
        bed.ovs_vsctl(i, &["add-port", "br0", &port])?;
        ip(&["-n", netns, "link", "set", &port, "up"])?;
        let nsenter = |args: &[&str]| -> Result<()> {
            let ns = format!("--net=/proc/{pid}/ns/net");
            let out = std::process::Command::new("nsenter")
                .arg(&ns)
                .args(args)
                .output()?;
            ensure!(
                out.status.success(),
                "nsenter {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        nsenter(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        nsenter(&["ip", "link", "set", "eth0", "up"])?;
        // Needed with OVS's userspace datapath; see set_tx_checksum_offload.
        set_tx_checksum_offload(Path::new(&format!("/proc/{pid}/ns/net")), "eth0", false)?;
        ips.push(addr);
    }
    assert_eq!(bed.ovs_ports(0), vec![format!("t{slot}w0")]);
    let (a, b) = (bed.container_name("wire0"), bed.container_name("wire1"));
    docker(&[
        "exec",
        "-d",
        &a,
        "sh",
        "-c",
        "echo hello-over-tcp | nc -l -p 5000",
    ])?;
    let mut got = String::new();
    for _ in 0..20 {
        got =
            docker(&["exec", &b, "nc", "-w", "3", &ips[0].to_string(), "5000"]).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(got.trim(), "hello-over-tcp");
    assert!(
        bed.ping_from_host(0, ips[1]),
        "host 0 cannot ping the container on host 1"
    );
    drop(bed);
    assert_eq!(leftovers(slot), Vec::<String>::new());
    Ok(())
}

#[test]
fn the_busybox_image_runs_echo() -> Result<()> {
    assert_eq!(ensure_test_image()?, TEST_IMAGE);
    let out = docker(&["run", "--rm", "--net=none", TEST_IMAGE, "echo", "ok"])?;
    assert_eq!(out.trim(), "ok");
    Ok(())
}

#[test]
fn the_dnsmasq_image_answers_from_its_hosts_file() -> Result<()> {
    assert_eq!(ensure_dnsmasq_image()?, DNSMASQ_IMAGE);
    let name = format!("dstest-dnsmasq-{}", std::process::id());
    let _guard = RemoveContainer(name.clone());
    docker(&["run", "-d", "--net=none", "--name", &name, DNSMASQ_IMAGE])?;
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo '10.232.0.3 web1.bed.test web1' > /etc/dnsmasq.d/dockstack.dns && pkill -HUP -x dnsmasq",
    ])?;
    let mut answer = String::new();
    for _ in 0..20 {
        // nslookup fails as a whole on the AAAA question dnsmasq refuses; read its answer anyway.
        let out = std::process::Command::new("docker")
            .args(["exec", &name, "nslookup", "web1.bed.test", "127.0.0.1"])
            .output()?;
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if answer.contains("10.232.0.3") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = std::process::Command::new("docker")
        .args(["logs", &name])
        .output()?;
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(
        answer.contains("10.232.0.3"),
        "answer: {answer}\nlogs: {logs}"
    );
    Ok(())
}

struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// A directory of the test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tempdir(what: &str) -> Result<TempDir> {
    let dir = Path::new("/tmp/dockstack-testbed").join(format!("{what}-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(TempDir(dir))
}

#[test]
fn the_real_server_runs_in_every_host() -> Result<()> {
    // Needs `cargo build --workspace --bins`; the error says so otherwise.
    let mut bed = TestBed::new(BedOptions::hosts(2))?;
    let slot = bed.slot();
    for i in 0..2 {
        assert!(
            bed.server_running(i) && connects(bed.host(i).addr()),
            "host {i}"
        );
        assert_eq!(bed.managed_containers(i), Vec::<String>::new());
    }
    bed.kill_server(0)?;
    assert!(!connects(bed.host(0).addr()));
    bed.restart_server(0)?;
    bed.restart_server(1)?;
    assert!(connects(bed.host(0).addr()) && connects(bed.host(1).addr()));
    // The client reaches both servers through the environment file.
    let env = bed.write_environment(&[]);
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("show")
        .output()?;
    assert!(
        out.status.success(),
        "dockstack show: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(bed);
    assert_eq!(leftovers(slot), Vec::<String>::new());
    Ok(())
}
