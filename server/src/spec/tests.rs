//! The spec's checks, hash and record, against hand-made requests.

use super::*;

fn message() -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: "web1".into(),
        image: "busybox".into(),
        ip: "10.0.0.3".into(),
        prefix_len: 16,
        gateway: "10.0.0.100".into(),
        bridge: "br0".into(),
        volumes: vec!["/srv/web1:/data:ro".into()],
        running: true,
        privileged: true,
        cap_add: vec!["NET_ADMIN".into()],
        ..Default::default()
    }
}

pub(crate) fn spec() -> ContainerSpec {
    ContainerSpec::try_from(message()).unwrap()
}

#[test]
fn hash_changes_with_the_network_but_not_with_hooks() {
    let a = spec();
    let mut b = spec();
    b.postcreation = vec!["/bin/true".into()];
    b.running = false;
    assert_eq!(
        a.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
        b.hash(&crate::envkey::EnvKey::from_bytes([1; 32]))
    );
    b.address = "10.0.0.4/16".parse().unwrap();
    assert_ne!(
        a.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
        b.hash(&crate::envkey::EnvKey::from_bytes([1; 32]))
    );
}

#[test]
fn relative_and_dotdot_volumes_are_refused() {
    for bad in [
        "srv:/data",
        "/srv/../etc:/data",
        "/srv:data",
        "/srv",
        "/a:/b:rx",
    ] {
        let mut s = message();
        s.volumes = vec![bad.into()];
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(err.contains("web1"), "{err}");
    }
    ContainerSpec::try_from(message()).unwrap();
}

#[test]
fn restart_policies_are_docker_names_and_nothing_else() {
    for (name, running, policy) in [
        ("", true, RestartPolicy::UnlessStopped),
        ("", false, RestartPolicy::No),
        ("no", true, RestartPolicy::No),
        ("always", true, RestartPolicy::Always),
        ("unless-stopped", false, RestartPolicy::UnlessStopped),
        (
            "on-failure",
            true,
            RestartPolicy::OnFailure { max_retries: None },
        ),
    ] {
        let mut s = message();
        s.restart = name.into();
        s.running = running;
        assert_eq!(
            ContainerSpec::try_from(s).unwrap().restart_policy(),
            policy,
            "{name:?} running {running}"
        );
    }
    let mut s = message();
    s.restart = "sometimes".into();
    let err = ContainerSpec::try_from(s).unwrap_err().to_string();
    assert!(err.contains("unknown restart policy"), "{err}");
}

#[test]
fn bridge_mtu_vlan_mac_and_volume_fields_are_checked() {
    type Change = fn(&mut pb::ContainerSpec);
    let cases: [(&str, Change); 8] = [
        ("invalid bridge name", |s| s.bridge = "br/0".into()),
        ("invalid bridge name", |s| s.bridge = "br 0".into()),
        ("invalid bridge name", |s| {
            s.bridge = "a-very-long-bridge".into()
        }),
        ("mtu 67 out of range", |s| s.mtu = 67),
        ("mtu 70000 out of range", |s| s.mtu = 70000),
        ("vlan 4095 out of range", |s| s.vlan = 4095),
        ("invalid MAC address", |s| s.mac = "02:00:00:00:00".into()),
        ("more than HOST_PATH", |s| {
            s.volumes = vec!["/a:/b:ro:x".into()]
        }),
    ];
    for (want, change) in cases {
        let mut s = message();
        change(&mut s);
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("web1"), "{want}: {err}");
    }
}

#[test]
fn the_server_checks_a_dual_stack_spec_itself() {
    let mut s = message();
    s.ip6 = "fd00:10::3/64".into();
    s.gateway6 = "fd00:10::1".into();
    let dual = ContainerSpec::try_from(s).unwrap();
    assert_eq!(dual.address6.unwrap().to_string(), "fd00:10::3/64");
    assert_ne!(
        dual.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
        spec().hash(&crate::envkey::EnvKey::from_bytes([1; 32]))
    );
    let labels = crate::record::labels(&dual, "host1", &crate::envkey::EnvKey::from_bytes([1; 32]));
    assert_eq!(labels["dockstack.ip6"], "fd00:10::3/64");
    let labels: crate::record::Labels = labels.into_iter().collect();
    let plug = crate::record::plug_spec("web1", "id", &labels).unwrap();
    assert_eq!(plug.address6, dual.address6);
    assert_eq!(plug.gateway6, dual.gateway6);
    // No ip6: the hash every older spec had.
    assert!(!spec().describe(None).iter().any(|(k, _)| k.ends_with('6')));
    let cases: [(&str, &str, &str); 6] = [
        ("fd00:10::zz/64", "", "not an ipv6 address"),
        ("fd00:10::3/200", "", "out of range"),
        ("fd00:10::3", "", "ADDR/LEN"),
        ("fd00:10::3/64", "fd00:11::1", "outside the prefix"),
        ("", "fd00:10::1", "gateway6 is given without ip6"),
        ("fd00:10::3/64", "nonsense", "invalid gateway6"),
    ];
    for (ip6, gateway6, want) in cases {
        let mut s = message();
        s.ip6 = ip6.into();
        s.gateway6 = gateway6.into();
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("web1"),
            "{ip6} {gateway6}: {err}"
        );
    }
}

#[test]
fn allowed_addresses_are_checked_and_normalised() {
    let mut s = message();
    s.allowed_addresses = vec![
        "10.0.0.50".into(),
        "10.0.1.7/28".into(),
        "10.0.0.50/32".into(),
    ];
    let spec = ContainerSpec::try_from(s).unwrap();
    assert_eq!(spec.allowed_addresses_label(), "10.0.0.50/32,10.0.1.0/28");
    assert_ne!(
        spec.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
        super::tests::spec().hash(&crate::envkey::EnvKey::from_bytes([1; 32]))
    );
    // None given: the hash every older spec had.
    assert!(
        !super::tests::spec()
            .describe(None)
            .iter()
            .any(|(k, _)| *k == "allowed_addresses")
    );
    for wrong in [
        "10.0.0",
        "10.0.0.1/33",
        "fe80::1",
        "10.0.0.1/",
        "host",
        "10.0.0.1/+8",
    ] {
        let mut s = message();
        s.allowed_addresses = vec![wrong.into()];
        let err = ContainerSpec::try_from(s).unwrap_err().to_string();
        assert!(
            err.contains("no IPv4 address or CIDR") && err.contains("web1"),
            "{wrong}: {err}"
        );
    }
    let mut s = message();
    s.allowed_addresses = (0..65).map(|i| format!("10.1.0.{i}")).collect();
    let err = ContainerSpec::try_from(s).unwrap_err().to_string();
    assert!(err.contains("at most 64"), "{err}");
}

#[test]
fn a_name_in_the_sandboxes_form_is_refused() {
    let mut s = message();
    s.name = crate::record::sandbox_name("web1");
    let err = ContainerSpec::try_from(s).unwrap_err().to_string();
    assert!(err.contains("keeps for its sandboxes"), "{err}");
}

#[test]
fn a_relative_hook_is_refused_with_the_spec() {
    let mut s = message();
    s.postcreation = vec!["true".into()];
    let err = ContainerSpec::try_from(s).unwrap_err();
    assert!(
        matches!(err, SpecError::Hook(HookError::NotAllowed { .. })),
        "{err}"
    );
}

#[test]
fn the_new_keys_are_hashed_only_when_given() {
    // The hash of a spec without them is the one it always was.
    let plain = spec();
    let mut m = message();
    m.stop_signal = String::new();
    m.stop_grace_secs = None;
    assert_eq!(
        ContainerSpec::try_from(m)
            .unwrap()
            .hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
        plain.hash(&crate::envkey::EnvKey::from_bytes([1; 32]))
    );
    type Change = fn(&mut pb::ContainerSpec);
    let changes: [(&str, Change); 11] = [
        ("stop_signal", |m| m.stop_signal = "SIGQUIT".into()),
        ("stop_grace_period", |m| m.stop_grace_secs = Some(0)),
        ("prestop[0]", |m| m.prestop = vec!["drain --now".into()]),
        ("sysctls.net.ipv4.ip_nonlocal_bind", |m| {
            m.sysctls = [("net.ipv4.ip_nonlocal_bind".into(), "1".into())].into()
        }),
        ("ulimits.nofile", |m| {
            m.ulimits = vec![pb::Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            }]
        }),
        ("tmpfs./run", |m| {
            m.tmpfs = [("/run".into(), "size=1m".into())].into()
        }),
        ("user", |m| m.user = "999:999".into()),
        ("memory", |m| m.memory_bytes = 64 << 20),
        ("cpus", |m| m.nano_cpus = 1_500_000_000),
        ("pids_limit", |m| m.pids_limit = 100),
        ("init", |m| m.init = true),
    ];
    for (key, change) in changes {
        let mut m = message();
        change(&mut m);
        let s = ContainerSpec::try_from(m).unwrap();
        assert_ne!(
            s.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
            plain.hash(&crate::envkey::EnvKey::from_bytes([1; 32])),
            "{key}"
        );
        assert!(
            s.flattened(&crate::envkey::EnvKey::from_bytes([1; 32]))
                .contains_key(key),
            "{key}: {:?}",
            s.flattened(&crate::envkey::EnvKey::from_bytes([1; 32]))
        );
    }
}

#[test]
fn the_server_refuses_bad_runtime_keys_itself() {
    type Change = fn(&mut pb::ContainerSpec);
    let cases: [(Change, &str); 12] = [
        (|m| m.stop_signal = "SIGFOO".into(), "stop_signal"),
        (|m| m.stop_grace_secs = Some(3601), "stop_grace_period"),
        (|m| m.prestop = vec!["say 'unclosed".into()], "prestop"),
        (|m| m.prestop = vec![String::new()], "prestop"),
        (
            |m| m.sysctls = [("kernel.hostname".into(), "x".into())].into(),
            "not namespaced",
        ),
        (
            |m| {
                m.ulimits = vec![pb::Ulimit {
                    name: "nofile".into(),
                    soft: 10,
                    hard: 5,
                }]
            },
            "ulimit nofile",
        ),
        (
            |m| {
                m.ulimits = vec![pb::Ulimit {
                    name: "files".into(),
                    soft: 1,
                    hard: 1,
                }]
            },
            "unknown ulimit",
        ),
        (
            |m| m.tmpfs = [("run".into(), String::new())].into(),
            "tmpfs",
        ),
        (|m| m.user = "a b".into(), "user"),
        (|m| m.memory_bytes = 1024, "memory"),
        (|m| m.nano_cpus = 1, "cpus"),
        (|m| m.pids_limit = -5, "pids_limit"),
    ];
    for (change, want) in cases {
        let mut m = message();
        change(&mut m);
        let err = ContainerSpec::try_from(m).unwrap_err().to_string();
        assert!(err.starts_with("container web1: "), "{err}");
        assert!(err.contains(want), "{err}\nwant {want}");
    }
}
