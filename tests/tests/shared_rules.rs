//! The rules client and server share give the same verdict on both sides:
//! each value goes once through the client's validation of an environment
//! file and once, as a client that checks nothing would send it, through the
//! server's conversion of a request. Needs no root and no Docker.

use std::path::Path;

use dockstack::environment;
use dockstack::ops::spec_of;
use dockstack_proto as pb;
use dockstack_server::spec::ContainerSpec;

/// One container with everything the file requires; `NAME` and `EXTRA` are
/// replaced by each case.
const FILE: &str = "\
containerhosts:
  host1:
    ip: 192.168.1.48
containers:
  NAME:
    image: busybox
    ip: 10.0.0.3
    mask: 16
    gateway: 10.0.0.100
    bridge: br0
    host: host1
EXTRA";

/// A value of one key: its YAML line(s) in the container, and the same
/// value set on a request that was checked by nobody.
struct Case {
    what: &'static str,
    name: &'static str,
    yaml: String,
    raw: Box<dyn Fn(&mut pb::ContainerSpec)>,
}

fn case(
    what: &'static str,
    yaml: impl Into<String>,
    raw: impl Fn(&mut pb::ContainerSpec) + 'static,
) -> Case {
    Case {
        what,
        name: "web1",
        yaml: yaml.into(),
        raw: Box::new(raw),
    }
}

fn request(name: &str) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: name.into(),
        image: "busybox".into(),
        ip: "10.0.0.3".into(),
        prefix_len: 16,
        gateway: "10.0.0.100".into(),
        bridge: "br0".into(),
        running: true,
        ..Default::default()
    }
}

fn names() -> Vec<Case> {
    let mut out = Vec::new();
    for name in [
        "web1",
        "db",
        "a.b-c_d",
        // Docker refuses a name of one character, so both sides do.
        "w",
        "-web",
        "web1.dockstack-sandbox",
        "web%1",
        // Docker resolves a full id before a name.
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        out.push(Case {
            what: "name",
            name,
            yaml: String::new(),
            raw: Box::new(move |s| s.name = name.into()),
        });
    }
    out
}

fn macs() -> Vec<Case> {
    [
        "02:42:0a:00:00:02",
        "02:42:0A:00:00:02",
        "03:42:0a:00:00:02",
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "02:42:0a:00:00",
        "+2:42:0a:00:00:02",
        "02:42:0a:00:00:02:01",
        "zz:42:0a:00:00:02",
    ]
    .into_iter()
    .map(|m| {
        case("mac", format!("    mac: \"{m}\"\n"), move |s| {
            s.mac = m.into()
        })
    })
    .collect()
}

fn volumes() -> Vec<Case> {
    let mut out: Vec<Case> = [
        "/srv/web:/var/www",
        "/srv/web:/var/www:ro",
        "/srv/web:/var/www:rw",
        "/srv/web",
        "srv/web:/var/www",
        "/srv/web:var/www",
        "/srv/../etc:/etc",
        "/srv/web:/var/www:rx",
        "/a:/b:ro:x",
    ]
    .into_iter()
    .map(|v| {
        case(
            "volume",
            format!("    volumes:\n    - \"{v}\"\n"),
            move |s| {
                s.volumes = vec![v.into()];
            },
        )
    })
    .collect();
    for p in ["/etc/haproxy", "etc/haproxy", "/etc/../root"] {
        out.push(case(
            "config volume",
            format!("    config_volumes:\n    - \"{p}\"\n"),
            move |s| s.config_volumes = vec![p.into()],
        ));
    }
    out
}

fn allowed_addresses() -> Vec<Case> {
    let mut out: Vec<Case> = [
        "10.0.0.50",
        "10.0.1.7/28",
        "10.0.0.0/0",
        "10.0.0",
        "10.0.0.1/33",
        "10.0.0.1/",
        "10.0.0.1/+8",
        "fe80::1",
        "vip",
    ]
    .into_iter()
    .map(|a| {
        case(
            "allowed address",
            format!("    allowed_addresses:\n    - \"{a}\"\n"),
            move |s| s.allowed_addresses = vec![a.into()],
        )
    })
    .collect();
    for n in [64, 65] {
        let list: Vec<String> = (0..n).map(|i| format!("10.1.0.{i}")).collect();
        let yaml = format!("    allowed_addresses: [{}]\n", list.join(", "));
        out.push(case("allowed addresses", yaml, move |s| {
            s.allowed_addresses = list.clone();
        }));
    }
    out
}

/// A healthcheck with one duration or the retries changed: the client reads
/// text, the server milliseconds.
fn durations() -> Vec<Case> {
    let mut out = Vec::new();
    for (key, text, ms) in [
        ("interval", "1ms", 1),
        ("interval", "0s", 0),
        ("interval", "1h", 3_600_000),
        ("interval", "3601", 3_601_000),
        ("timeout", "30s", 30_000),
        ("timeout", "0", 0),
        ("start_period", "0s", 0),
        ("start_period", "1h", 3_600_000),
        ("start_period", "2h", 7_200_000),
    ] {
        let yaml =
            format!("    healthcheck:\n      test: [\"CMD\", \"true\"]\n      {key}: {text}\n");
        out.push(case("healthcheck duration", yaml, move |s| {
            let mut h = pb::Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                interval_ms: 30_000,
                timeout_ms: 30_000,
                retries: 3,
                start_period_ms: 0,
            };
            match key {
                "interval" => h.interval_ms = ms,
                "timeout" => h.timeout_ms = ms,
                _ => h.start_period_ms = ms,
            }
            s.healthcheck = Some(h);
        }));
    }
    for retries in [0, 1, 1000, 1001] {
        let yaml = format!(
            "    healthcheck:\n      test: [\"CMD\", \"true\"]\n      retries: {retries}\n"
        );
        out.push(case("healthcheck retries", yaml, move |s| {
            s.healthcheck = Some(pb::Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                interval_ms: 30_000,
                timeout_ms: 30_000,
                retries,
                start_period_ms: 0,
            });
        }));
    }
    out
}

fn ipv6() -> Vec<Case> {
    let mut out = Vec::new();
    for (ip6, gateway6) in [
        ("fd00:10::3/64", ""),
        ("fd00:10::3/64", "fd00:10::1"),
        ("fd00:10::3/64", "fe80::1"),
        ("fd00:10::3/64", "fd00:11::1"),
        ("fd00:10::3/64", "fd00:10::3"),
        ("fd00:10::3/64", "ff02::2"),
        ("fd00:10::3", ""),
        ("fd00:10::3/129", ""),
        ("fe80::3/64", ""),
        ("fd00:10::/64", ""),
        ("::ffff:10.0.0.5/120", ""),
    ] {
        let mut yaml = format!("    ip6: \"{ip6}\"\n");
        if !gateway6.is_empty() {
            yaml.push_str(&format!("    gateway6: \"{gateway6}\"\n"));
        }
        out.push(case("ip6", yaml, move |s| {
            s.ip6 = ip6.into();
            s.gateway6 = gateway6.into();
        }));
    }
    out
}

/// Restart policies, the bridge's name, MTU, VLAN and service names.
fn others() -> Vec<Case> {
    let mut out = Vec::new();
    for image in [
        "busybox",
        "dockstack/mariadb:1f2e3d",
        "registry.lab:5000/openstack/keystone:2024.1",
        "../images/get?names=x&x=",
        "busybox?x=1",
        "Busybox",
        "busybox:",
    ] {
        out.push(case(
            "image",
            format!("    image: \"{image}\"\n"),
            move |s| {
                s.image = image.into();
            },
        ));
    }
    for r in [
        "no",
        "always",
        "unless-stopped",
        "on-failure",
        "on-failure:3",
        "sometimes",
        "on-failure:+3",
        "always:3",
    ] {
        out.push(case(
            "restart",
            format!("    restart: \"{r}\"\n"),
            move |s| {
                s.restart = r.into();
            },
        ));
    }
    for b in ["br-int", "a-very-long-bridge", "br/0", "br:0", ".."] {
        out.push(case("bridge", format!("    bridge: \"{b}\"\n"), move |s| {
            s.bridge = b.into();
        }));
    }
    for m in [68, 1450, 65535, 67, 65536] {
        out.push(case("mtu", format!("    mtu: {m}\n"), move |s| s.mtu = m));
    }
    for v in [1, 4094, 4095] {
        out.push(case("vlan", format!("    vlan: {v}\n"), move |s| {
            s.vlan = v
        }));
    }
    for service in ["galera", "haproxy-1", "gal era", "-x"] {
        out.push(case(
            "service",
            format!("    service: \"{service}\"\n"),
            move |s| {
                s.service = service.into();
            },
        ));
    }
    out
}

/// Variables and command words (`first_creation`'s are read by the same
/// code on both sides).
fn process() -> Vec<Case> {
    let mut out = Vec::new();
    for (yaml_key, key) in [
        ("GALERA_BOOTSTRAP", "GALERA_BOOTSTRAP"),
        ("lower.dot-ok", "lower.dot-ok"),
        ("\"A=B\"", "A=B"),
        ("\"\"", ""),
        ("\"A\\0\"", "A\0"),
    ] {
        out.push(case(
            "env name",
            format!("    env:\n      {yaml_key}: \"1\"\n"),
            move |s| s.env = [(key.to_string(), "1".to_string())].into(),
        ));
    }
    for (yaml_value, value) in [("\"a b\"", "a b"), ("\"a\\0\"", "a\0")] {
        out.push(case(
            "env value",
            format!("    env:\n      V: {yaml_value}\n"),
            move |s| s.env = [("V".to_string(), value.to_string())].into(),
        ));
    }
    for (yaml_word, word) in [("\"-c\"", "-c"), ("\"a\\0\"", "a\0")] {
        out.push(case(
            "command word",
            format!("    command: [sh, {yaml_word}]\n"),
            move |s| s.command = vec!["sh".into(), word.into()],
        ));
    }
    out
}

/// How a container is stopped: signal, grace period and prestop lines.
fn stopping() -> Vec<Case> {
    let mut out = Vec::new();
    for sig in [
        "SIGTERM",
        "quit",
        "15",
        "SIGRTMIN+3",
        "SIGFOO",
        "0",
        "65",
        "SIG",
    ] {
        out.push(case(
            "stop_signal",
            format!("    stop_signal: \"{sig}\"\n"),
            move |s| s.stop_signal = sig.into(),
        ));
    }
    for (text, secs) in [
        ("10", 10),
        ("1m30s", 90),
        ("1h", 3600),
        ("0", 0),
        ("3601", 3601),
    ] {
        out.push(case(
            "stop_grace_period",
            format!("    stop_grace_period: {text}\n"),
            move |s| s.stop_grace_secs = Some(secs),
        ));
    }
    for line in ["haproxy-drain --wait 5", "echo 'unclosed", "  "] {
        out.push(case(
            "prestop",
            format!("    prestop: [\"{line}\"]\n"),
            move |s| s.prestop = vec![line.into()],
        ));
    }
    out
}

/// What the process may use: sysctls, ulimits, tmpfs, user, memory, cpus
/// and pids.
fn resources() -> Vec<Case> {
    let mut out = Vec::new();
    for key in [
        "net.ipv4.ip_nonlocal_bind",
        "kernel.shmmax",
        "fs.mqueue.msg_max",
        "kernel.hostname",
        "vm.swappiness",
        "kernel.shm",
    ] {
        out.push(case(
            "sysctl",
            format!("    sysctls:\n      {key}: \"1\"\n"),
            move |s| s.sysctls = [(key.to_string(), "1".to_string())].into(),
        ));
    }
    for (name, soft, hard) in [
        ("nofile", 1024, 2048),
        ("core", -1, -1),
        ("nofile", 10, 5),
        ("files", 1, 1),
        ("nproc", -2, 1),
    ] {
        out.push(case(
            "ulimit",
            format!("    ulimits:\n      {name}: {{soft: {soft}, hard: {hard}}}\n"),
            move |s| {
                s.ulimits = vec![pb::Ulimit {
                    name: name.into(),
                    soft,
                    hard,
                }]
            },
        ));
    }
    for (path, options) in [
        ("/run", ""),
        ("/tmp", "size=64m,mode=1777"),
        ("run", ""),
        ("/", ""),
        ("/a/../b", ""),
        ("/tmp", "bogus"),
    ] {
        let yaml = if options.is_empty() {
            format!("    tmpfs: ['{path}']\n")
        } else {
            format!("    tmpfs: ['{path}:{options}']\n")
        };
        out.push(case("tmpfs", yaml, move |s| {
            s.tmpfs = [(path.to_string(), options.to_string())].into()
        }));
    }
    for user in ["mysql", "999:999", "a b", "a:b:c", "-x"] {
        out.push(case("user", format!("    user: \"{user}\"\n"), move |s| {
            s.user = user.into()
        }));
    }
    for (text, bytes) in [
        ("64m", 64u64 << 20),
        ("1.5g", 3 << 29),
        ("5m", 5 << 20),
        ("17t", 17 << 40),
    ] {
        out.push(case("memory", format!("    memory: {text}\n"), move |s| {
            s.memory_bytes = bytes
        }));
    }
    for (text, nano) in [
        ("1.5", 1_500_000_000u64),
        ("0.01", 10_000_000),
        ("0.001", 1_000_000),
        ("2000", 2_000_000_000_000),
    ] {
        out.push(case("cpus", format!("    cpus: {text}\n"), move |s| {
            s.nano_cpus = nano
        }));
    }
    for n in [100i64, -1, 4_194_304, -2, 4_194_305] {
        out.push(case(
            "pids_limit",
            format!("    pids_limit: {n}\n"),
            move |s| s.pids_limit = n,
        ));
    }
    out
}

#[test]
fn client_and_server_judge_every_shared_rule_alike() {
    let cases: Vec<Case> = [
        names(),
        macs(),
        volumes(),
        allowed_addresses(),
        durations(),
        ipv6(),
        others(),
        stopping(),
        resources(),
        process(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for c in &cases {
        // The file replaces the duplicate `bridge:` of the base with the case's.
        let mut file = FILE.replace("NAME", c.name).replace("EXTRA", &c.yaml);
        if c.yaml.contains("    bridge:") {
            file = file.replacen("    bridge: br0\n", "", 1);
        }
        if c.yaml.contains("    image:") {
            file = file.replacen("    image: busybox\n", "", 1);
        }
        let client = environment::parse(Path::new("env.yaml"), &file);
        let mut raw = request(c.name);
        (c.raw)(&mut raw);
        let server = ContainerSpec::try_from(raw);
        let client_ok = client.is_ok();
        if client_ok != server.is_ok() {
            disagreements.push(format!(
                "{} {:?} / {}: client {}, server {}",
                c.what,
                c.name,
                c.yaml.trim(),
                client
                    .as_ref()
                    .map_or_else(|e| format!("refuses ({e})"), |_| "accepts".into()),
                server
                    .as_ref()
                    .map_or_else(|e| format!("refuses ({e})"), |_| "accepts".into()),
            ));
            continue;
        }
        // What the client accepts it sends as it made it, and the server
        // takes that too.
        if let Ok(env) = client {
            let sent = spec_of(&env.containers[0]);
            if let Err(e) = ContainerSpec::try_from(sent) {
                disagreements.push(format!(
                    "{} {}: the server refuses what the client sent: {e}",
                    c.what,
                    c.yaml.trim()
                ));
            }
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both verdicts were reached, so the table tests something either way.
    assert!(
        accepted > 20 && refused > 20,
        "{accepted} accepted, {refused} refused"
    );
}
