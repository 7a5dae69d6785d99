//! The policy's checks: the built-in roles' rights, policy files and their
//! errors, and what a spec of each role may reach on the host (volumes and
//! their symlinks, config volumes).

use super::*;
use crate::spec::tests::spec;

fn builtin() -> Policy {
    Policy::builtin(Some(Path::new("/etc/dockstack/tls")))
}

#[test]
fn viewers_read_operators_run_and_only_admins_exec() {
    let p = builtin();
    for a in [Action::Show, Action::List, Action::Logs, Action::Events] {
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert!(p.check_action(r, a).is_ok(), "{r} {a:?}");
        }
    }
    let refused = p.check_action(Role::Viewer, Action::Run).unwrap_err();
    assert!(
        refused.rule.contains("viewer role may not run"),
        "{refused}"
    );
    assert!(p.check_action(Role::Operator, Action::Run).is_ok());
    assert!(p.check_action(Role::Operator, Action::Register).is_ok());
    assert!(p.check_action(Role::Operator, Action::Restart).is_ok());
    let refused = p.check_action(Role::Viewer, Action::Restart).unwrap_err();
    assert!(
        refused.rule.contains("viewer role may not restart"),
        "{refused}"
    );
    // An attached exec session is an admin's by default.
    assert!(p.check_exec_session(Role::Admin).is_ok());
    for r in [Role::Operator, Role::Viewer] {
        let refused = p.check_exec_session(r).unwrap_err();
        assert_eq!(refused.key, "exec");
        assert!(refused.rule.contains("allows no exec"), "{refused}");
    }
    // An operator's exec is only of the registration commands.
    let refused = p
        .check_exec(Role::Operator, "web1", "/bin/sh -c id")
        .unwrap_err();
    assert_eq!(refused.key, "command");
    assert!(
        refused
            .rule
            .contains("no exec but of the registration commands"),
        "{refused}"
    );
    // A certificate clean only in a master the policy names (none by
    // default), and only of a name in its domains.
    let refused = p
        .check_exec(
            Role::Operator,
            "puppet1",
            "puppet cert clean web1.endor.lab",
        )
        .unwrap_err();
    assert_eq!(refused.key, "container");
    assert!(
        p.check_exec(Role::Operator, "puppet1", "puppet cert clean --all")
            .is_err()
    );
    assert!(
        p.check_exec(Role::Operator, "web1", "puppet agent -t")
            .is_ok()
    );
    assert!(p.check_exec(Role::Admin, "web1", "/bin/sh -c id").is_ok());
    assert!(
        p.check_exec(Role::Admin, "puppet1", "puppet cert clean db1.admin.lab")
            .is_ok()
    );
}

#[test]
fn the_operator_defaults_refuse_what_reaches_the_host() {
    let p = builtin();
    type Change = fn(&mut ContainerSpec);
    let cases: [(&str, Change); 7] = [
        ("volumes[0]", |s| s.volumes = vec!["/:/host".into()]),
        ("volumes[1]", |s| {
            s.volumes = vec![
                "/srv/dockstack/ok:/data".into(),
                "/var/run/docker.sock:/var/run/docker.sock".into(),
            ]
        }),
        ("volumes[0]", |s| {
            s.volumes = vec!["/etc/dockstack/tls:/tls".into()]
        }),
        ("privileged", |s| s.privileged = true),
        ("cap_add[1]", |s| {
            s.cap_add = vec!["NET_ADMIN".into(), "SYS_ADMIN".into()]
        }),
        ("postcreation[0]", |s| {
            s.postcreation = vec!["/bin/sh -c true".into()]
        }),
        ("precreation[0]", |s| {
            s.precreation = vec!["/etc/dockstack/hooks/../x".into()]
        }),
    ];
    for (key, change) in cases {
        let mut s = spec();
        s.privileged = false;
        s.cap_add = vec![];
        s.volumes = vec![];
        assert!(p.check_spec(Role::Operator, &s).is_ok());
        change(&mut s);
        let refused = p.check_spec(Role::Operator, &s).unwrap_err();
        assert_eq!(refused.key, key, "{refused}");
        assert!(p.check_spec(Role::Admin, &s).is_ok(), "admin: {key}");
    }
    // Inside the policy: allowed.
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec!["CAP_NET_RAW".into(), "IPC_LOCK".into()];
    s.volumes = vec![
        "/srv/dockstack/web:/data".into(),
        "/srv/dockstack/etcetera:/x".into(),
    ];
    s.postcreation = vec!["/etc/dockstack/hooks/post arg".into()];
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));
}

#[test]
fn a_file_sets_what_it_names_and_keeps_the_rest() {
    let text = "\
roles:
  operator:
    hooks: [/opt/hooks]
    volumes:
      allow: [/srv]
    bridges: [br0]
    registration: [/srv/dns]
";
    let p = Policy::parse(text, Path::new("/p.yaml"), None).unwrap();
    assert_eq!(p.operator.hook_dirs, Some(paths(&["/opt/hooks"])));
    assert_eq!(p.operator.volume_allow, Some(paths(&["/srv"])));
    assert!(!p.operator.privileged);
    assert_eq!(p.admin, RolePolicy::unrestricted());
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    s.volumes = vec!["/data/x:/x".into()];
    let refused = p.check_spec(Role::Operator, &s).unwrap_err();
    assert_eq!(refused.key, "volumes[0]");
    assert!(refused.rule.contains("only under /srv"), "{refused}");
    s.volumes = vec![];
    s.bridge = "br1".into();
    assert_eq!(p.check_spec(Role::Operator, &s).unwrap_err().key, "bridge");
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_key() {
    for (text, want) in [
        (
            "roles:\n  operator:\n    hooks:\n      - /ok\n      - relative/dir\n",
            "/p.yaml:5: roles.operator.hooks[1]: \"relative/dir\" is not an absolute path",
        ),
        (
            "roles:\n  operator:\n    cap_add: [net_admin]\n",
            "/p.yaml:3: roles.operator.cap_add[0]",
        ),
    ] {
        let err = Policy::parse(text, Path::new("/p.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{err}\nwant {want}");
    }
    for (text, key, line) in [
        ("roles:\n  operator:\n    exex: true\n", "exex", "3"),
        ("roles:\n  superuser:\n    exec: true\n", "superuser", "2"),
        ("roles:\n  viewer:\n    exec: true\n", "viewer", "2"),
    ] {
        let err = Policy::parse(text, Path::new("/p.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/p.yaml") && err.contains(key) && err.contains(line),
            "{err}"
        );
    }
}

#[test]
fn a_symlink_does_not_lead_a_volume_past_a_rule() {
    let dir = std::env::temp_dir().join(format!("dockstack-policy-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("etc-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    let mut p = builtin();
    p.operator.volume_allow = Some(vec![dir.clone()]);
    s.volumes = vec![format!("{}/ssh:/x", link.display())];
    let refused = p.check_spec(Role::Operator, &s).unwrap_err();
    assert!(refused.rule.contains("or hold /etc"), "{refused}");
    s.volumes = vec![format!("{}/not/yet:/x", dir.display())];
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_volumes_meet_the_rules_of_volume_sources() {
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    s.volumes = vec![];
    // The server reads what a config volume holds: /etc/shadow is no
    // operator's to have hashed.
    s.config_volumes = vec!["/srv/dockstack/ok".into(), "/etc/shadow".into()];
    let refused = builtin().check_spec(Role::Operator, &s).unwrap_err();
    assert_eq!(refused.key, "config_volumes[1]", "{refused}");
    assert!(refused.rule.contains("or hold /etc"), "{refused}");
    s.config_volumes = vec!["/srv/dockstack/ok".into()];
    assert_eq!(builtin().check_spec(Role::Operator, &s), Ok(()));
}

#[test]
fn sysctls_and_ulimits_are_the_operators_allowlists() {
    let p = builtin();
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    s.volumes = vec![];
    s.runtime.sysctls = [("net.ipv4.ip_nonlocal_bind".to_string(), "1".to_string())].into();
    s.runtime.ulimits = [("nofile".to_string(), (1_048_576, 1_048_576))].into();
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));

    let mut wider = s.clone();
    wider
        .runtime
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "1".into());
    let refused = p.check_spec(Role::Operator, &wider).unwrap_err();
    assert_eq!(refused.key, "sysctls.net.ipv4.ip_forward", "{refused}");
    assert!(p.check_spec(Role::Admin, &wider).is_ok());

    for (name, limits) in [
        ("nofile", (1, 2_000_000)),
        ("nofile", (-1, -1)),
        ("memlock", (1, 1)),
    ] {
        let mut wider = s.clone();
        wider.runtime.ulimits = [(name.to_string(), limits)].into();
        let refused = p.check_spec(Role::Operator, &wider).unwrap_err();
        assert_eq!(refused.key, format!("ulimits.{name}"), "{refused}");
        assert!(p.check_spec(Role::Admin, &wider).is_ok());
    }

    let text = "roles:\n  operator:\n    sysctls: [\"net.ipv4.*\"]\n    ulimits: {memlock: -1}\n";
    let p = Policy::parse(text, Path::new("/p.yaml"), None).unwrap();
    let mut s = s.clone();
    s.runtime.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
    s.runtime.ulimits = [("memlock".to_string(), (-1, -1))].into();
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));
    s.runtime.sysctls = [("net.core.somaxconn".to_string(), "1024".to_string())].into();
    assert_eq!(
        p.check_spec(Role::Operator, &s).unwrap_err().key,
        "sysctls.net.core.somaxconn"
    );
}

#[test]
fn a_policy_names_only_namespaced_sysctls_and_dockers_ulimits() {
    for (text, want) in [
        (
            "roles:\n  operator:\n    sysctls:\n      - net.core.somaxconn\n      - vm.swappiness\n",
            "/p.yaml:5: roles.operator.sysctls[1]",
        ),
        (
            "roles:\n  operator:\n    ulimits:\n      nofiles: 10\n",
            "/p.yaml:4: roles.operator.ulimits.nofiles",
        ),
    ] {
        let err = Policy::parse(text, Path::new("/p.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{err}\nwant {want}");
    }
}

/// A spec of `volumes` with nothing else the operator policy refuses.
fn with_volumes(volumes: &[&str]) -> ContainerSpec {
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    s.volumes = volumes.iter().map(|v| v.to_string()).collect();
    s
}

#[test]
fn an_operator_mounts_only_under_its_allowlist_and_never_what_holds_the_hosts_keys() {
    let mut p = builtin();
    p.protect([Path::new("/var/lib/dockstack-state")]);
    // What reaches root: the Docker socket's directory and what holds it,
    // cron's spool, OVS's sockets, the operator's own hook directory.
    let reach_root = [
        "/run",
        "/var",
        "/var/lib",
        "/usr",
        "/run/openvswitch",
        "/var/spool/cron",
        "/usr/local/lib/dockstack",
        "/srv",
    ];
    for src in reach_root {
        let s = with_volumes(&[&format!("{src}:/x")]);
        let refused = p.check_spec(Role::Operator, &s).unwrap_err();
        assert_eq!(refused.key, "volumes[0]", "{src}: {refused}");
        assert!(p.check_spec(Role::Admin, &s).is_ok(), "admin: {src}");
    }
    let s = with_volumes(&["/srv/dockstack/web/data:/x"]);
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));

    // However wide the file's allowlist, never what is, is under or holds
    // the server's own directories or Docker's and OVS's sockets.
    let text = "roles:\n  operator:\n    hooks: [/srv/hooks]\n    volumes:\n      allow: [/]\n      deny: []\n";
    let mut p = Policy::parse(text, Path::new("/p.yaml"), Some(Path::new("/srv/tls"))).unwrap();
    p.protect([Path::new("/srv/state")]);
    for src in [
        "/run",
        "/var",
        "/var/lib",
        "/usr",
        "/run/openvswitch",
        "/usr/local/lib/dockstack",
        "/etc/dockstack",
        "/srv",
        "/srv/hooks",
        "/srv/tls/x",
        "/srv/state",
    ] {
        let s = with_volumes(&[&format!("{src}:/x")]);
        let refused = p.check_spec(Role::Operator, &s).unwrap_err();
        assert!(
            refused.rule.contains("are, are under or hold"),
            "{src}: {refused}"
        );
    }
    let s = with_volumes(&["/var/spool/cron:/x", "/srv/data:/y"]);
    assert_eq!(p.check_spec(Role::Operator, &s), Ok(()));
}

#[test]
fn binds_are_pinned_to_their_real_path_and_not_nested_in_their_own_writable_ones() {
    let dir = std::env::temp_dir().join(format!("dockstack-policy-pin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("real")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
    let mut p = builtin();
    p.operator.volume_allow = Some(vec![dir.clone()]);
    let d = dir.display();
    let s = with_volumes(&[&format!("{d}/link/x:/x:ro")]);
    let pinned = p.pin_volumes(Role::Operator, &s).unwrap().unwrap();
    assert_eq!(pinned[0].source, dir.join("real/x"));
    assert_eq!(pinned[0].within, dir);
    assert_eq!(pinned[0].docker(), format!("{d}/real/x:/x:ro"));
    assert_eq!(p.pin_volumes(Role::Admin, &s), Ok(None));

    // Inside its own writable bind, elsewhere in the container: it could
    // replace the inner directory with a symlink.
    let s = with_volumes(&[&format!("{d}/a:/a"), &format!("{d}/a/b:/b")]);
    let refused = p.check_spec(Role::Operator, &s).unwrap_err();
    assert_eq!(refused.key, "volumes[1]", "{refused}");
    // Mounted at its own place inside it, or inside a read-only one: safe.
    for ok in [
        [format!("{d}/a:/a"), format!("{d}/a/b:/a/b")],
        [format!("{d}/a:/a:ro"), format!("{d}/a/b:/b")],
    ] {
        let s = with_volumes(&[&ok[0], &ok[1]]);
        assert!(p.pin_volumes(Role::Operator, &s).is_ok(), "{ok:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bind_may_not_lie_inside_another_containers_writable_one_nor_hold_one() {
    use volumes::{OtherMount, PinnedBind, clash};
    let bind = |source: &str, read_only: bool| PinnedBind {
        key: "volumes[0]".into(),
        source: source.into(),
        within: "/srv/dockstack".into(),
        container: "/x".into(),
        read_only,
    };
    let other = |source: &str, writable: bool| OtherMount {
        container: "a".into(),
        source: source.into(),
        writable,
    };
    let a = "/srv/dockstack/a";
    // Inside A's writable volume: A could swap a directory of its path.
    let why = clash(&bind("/srv/dockstack/a/x", true), &other(a, true)).unwrap();
    assert!(why.contains("a writable volume of container a"), "{why}");
    assert!(clash(&bind("/srv/dockstack/a/x", true), &other(a, false)).is_none());
    // Holding A's volume, writable: it could swap A's.
    let why = clash(&bind("/srv/dockstack", false), &other(a, false)).unwrap();
    assert!(why.contains("holds /srv/dockstack/a"), "{why}");
    assert!(clash(&bind("/srv/dockstack", true), &other(a, true)).is_none());
    // The same directory, or a neighbour: neither can swap the other.
    assert!(clash(&bind(a, false), &other(a, true)).is_none());
    assert!(clash(&bind("/srv/dockstack/ab", false), &other(a, true)).is_none());
}

#[test]
fn a_hook_is_judged_by_the_words_the_runner_runs_and_by_canonical_directories() {
    let root = std::env::temp_dir().join(format!("dockstack-hooks-{}", std::process::id()));
    let dir = root.join("allowed");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(dir.join("sub"), root.join("link")).unwrap();
    let text = format!("roles:\n  operator:\n    hooks: [{}]\n", dir.display());
    let p = Policy::parse(&text, Path::new("policy.yaml"), None).unwrap();
    let check = |hook: &str| p.check_hooks(Role::Operator, "postcreation", &[hook.to_string()]);
    let d = dir.display();
    // The runner joins a backslash-newline: the program is sub/prog.
    assert!(check(&format!("{d}/sub\\\n/prog")).is_err());
    assert!(check(&format!("{d}/prog --flag")).is_ok());
    assert!(check(&format!("'{d}/prog' 'an argument'")).is_ok());
    assert!(check(&format!("{d}/sub/prog")).is_err());
    assert!(check(&format!("{d}/sub/../../prog")).is_err());
    // A symlink to the directory's child is that child.
    assert!(check(&format!("{}/link/prog", root.display())).is_err());
    assert!(check(&format!("{d}/'unterminated")).is_err());
    std::fs::remove_dir_all(&root).unwrap();
}

/// A spec an operator may run as far as the rest of the policy goes.
fn plain() -> ContainerSpec {
    let mut s = spec();
    s.privileged = false;
    s.cap_add = vec![];
    s.volumes = vec![];
    s
}

#[test]
fn an_operator_may_not_turn_port_security_off_nor_take_a_vlan_or_another_mac() {
    let p = builtin();
    type Change = fn(&mut ContainerSpec);
    // The spec: 10.0.0.3/16, gateway 10.0.0.100.
    let refused: [(&str, &str, Change); 7] = [
        (
            "allowed_addresses[0]",
            "0.0.0.0/0 is wider than the /28",
            |s| s.allowed_addresses = vec!["0.0.0.0/0".parse().unwrap()],
        ),
        ("allowed_addresses[1]", "10.0.0.0/16 is wider", |s| {
            s.allowed_addresses = vec![
                "10.0.0.50/32".parse().unwrap(),
                "10.0.0.0/16".parse().unwrap(),
            ]
        }),
        (
            "allowed_addresses[0]",
            "outside what the operator policy allows (its own subnet 10.0.0.0/16)",
            |s| s.allowed_addresses = vec!["10.9.0.1/32".parse().unwrap()],
        ),
        (
            "allowed_addresses[0]",
            "holds the gateway 10.0.0.100",
            |s| s.allowed_addresses = vec!["10.0.0.96/28".parse().unwrap()],
        ),
        ("vlan", "allows only vlans none", |s| s.vlan = Some(10)),
        (
            "mac",
            "no mac but the one derived from the ip (02:d5:0a:00:00:03)",
            |s| s.mac = Some("52:54:00:aa:bb:cc".parse().unwrap()),
        ),
        ("mac", "derived from the ip", |s| {
            s.mac = Some("02:d5:0a:00:00:64".parse().unwrap())
        }),
    ];
    for (key, why, change) in refused {
        let mut s = plain();
        change(&mut s);
        let r = p.check_spec(Role::Operator, &s).unwrap_err();
        assert_eq!(r.key, key, "{r}");
        assert!(r.rule.contains(why), "{r}\nwant {why}");
        // An admin keeps full freedom.
        assert!(p.check_spec(Role::Admin, &s).is_ok(), "{key}");
    }
    let mut s = plain();
    s.allowed_addresses = vec![
        "10.0.0.50/32".parse().unwrap(),
        "10.0.1.16/28".parse().unwrap(),
    ];
    s.mac = Some("02:d5:0a:00:00:03".parse().unwrap());
    assert!(p.check_spec(Role::Operator, &s).is_ok());
}

#[test]
fn a_file_sets_the_address_ranges_vlans_and_macs_a_role_may_use() {
    let text = "\
roles:
  operator:
    allowed_addresses:
      within: [subnet, 192.168.7.0/24]
      min_prefix: 24
    vlans: [10, 20-29]
    macs: [\"02:aa:*\", 02:bb:cc:dd:ee:ff]
  admin:
    vlans: [100-199]
";
    let p = Policy::parse(text, Path::new("/p.yaml"), None).unwrap();
    let mut s = plain();
    s.allowed_addresses = vec![
        "192.168.7.0/24".parse().unwrap(),
        "10.0.5.0/24".parse().unwrap(),
    ];
    s.vlan = Some(25);
    s.mac = Some("02:aa:01:02:03:04".parse().unwrap());
    assert!(p.check_spec(Role::Operator, &s).is_ok());
    s.mac = Some("02:bb:cc:dd:ee:ff".parse().unwrap());
    assert!(p.check_spec(Role::Operator, &s).is_ok());
    s.mac = Some("02:bb:cc:dd:ee:fe".parse().unwrap());
    let r = p.check_spec(Role::Operator, &s).unwrap_err();
    assert!(r.rule.ends_with("and 02:aa:*, 02:bb:cc:dd:ee:ff"), "{r}");
    s.mac = None;
    s.vlan = Some(30);
    let r = p.check_spec(Role::Operator, &s).unwrap_err();
    assert!(r.rule.contains("only vlans 10, 20-29"), "{r}");
    // The admin's VLANs are narrowed; its addresses stay free.
    assert_eq!(p.check_spec(Role::Admin, &s).unwrap_err().key, "vlan");
    s.vlan = Some(150);
    s.allowed_addresses = vec!["0.0.0.0/0".parse().unwrap()];
    assert!(p.check_spec(Role::Admin, &s).is_ok());

    for (text, want) in [
        (
            "roles:\n  operator:\n    vlans: [10, 5000]\n",
            "/p.yaml:3: roles.operator.vlans[1]: not a VLAN id",
        ),
        (
            "roles:\n  operator:\n    macs: [\"02:aa\"]\n",
            "/p.yaml:3: roles.operator.macs[0]: \"02:aa\" is not a MAC",
        ),
        (
            "roles:\n  operator:\n    allowed_addresses:\n      within: [everywhere]\n",
            "/p.yaml:4: roles.operator.allowed_addresses.within[0]: \"everywhere\" is neither",
        ),
        (
            "roles:\n  operator:\n    allowed_addresses:\n      min_prefix: 40\n",
            "/p.yaml:4: roles.operator.allowed_addresses.min_prefix: 40 is not a prefix length",
        ),
    ] {
        let err = Policy::parse(text, Path::new("/p.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{err}\nwant {want}");
    }
}

#[test]
fn the_hardened_policy_of_the_docs_parses() {
    let doc = include_str!("../../../docs/policy.md");
    let start = doc
        .find("# /etc/dockstack/policy.yaml\n")
        .expect("the example");
    let text = &doc[start..];
    let text = &text[..text.find("```").expect("its end")];
    let p = Policy::parse(text, Path::new("/p.yaml"), None).unwrap();
    let mut s = plain();
    s.allowed_addresses = vec!["10.0.0.50/31".parse().unwrap()];
    let r = p.check_spec(Role::Operator, &s).unwrap_err();
    assert_eq!(r.key, "allowed_addresses[0]", "{r}");
}

fn registration(name: &str, fqdn: &str) -> Registration {
    Registration {
        name: name.into(),
        fqdn: fqdn.into(),
        ip: "10.0.0.3".parse().unwrap(),
        ip6: None,
        service: Some("haproxy".into()),
        dns: Some(crate::host::DnsTarget {
            container: "dns1".into(),
            hostsfile: "/srv/registry/dns1/hosts".into(),
            reload: "pkill -HUP -x dnsmasq".into(),
        }),
        puppet: Some(crate::host::PuppetTarget {
            master: "puppet1".into(),
            hieradata: "/srv/registry/puppet1/common.yaml".into(),
            sitepp: "/srv/registry/puppet1/site.pp".into(),
        }),
    }
}

#[test]
fn an_operator_registers_only_in_the_registries_and_domains_its_policy_names() {
    let builtin = builtin();
    let r = registration("web1", "web1.ops.lab");
    // Built in: no registry container is the operator's; all the admin's.
    let refused = builtin.check_registration(Role::Operator, &r).unwrap_err();
    assert_eq!(refused.key, "dns.container", "{refused}");
    assert!(builtin.check_registration(Role::Admin, &r).is_ok());
    assert!(builtin.check_registration(Role::Viewer, &r).is_err());

    let text = "\
roles:
  operator:
    registration:
      dns_containers: [dns1]
      puppet_masters: [puppet1]
      files: [/srv/registry]
      domains: [ops.lab]
";
    let p = Policy::parse(text, Path::new("/p.yaml"), None).unwrap();
    assert!(p.check_registration(Role::Operator, &r).is_ok());
    assert!(p.registration_held_to_record(Role::Operator));
    assert!(!p.registration_held_to_record(Role::Admin));
    let refused_key = |r: &Registration| p.check_registration(Role::Operator, r).unwrap_err().key;
    let mut other = r.clone();
    other.dns.as_mut().unwrap().container = "dns-admin".into();
    assert_eq!(refused_key(&other), "dns.container");
    let mut other = r.clone();
    other.puppet.as_mut().unwrap().master = "puppet-admin".into();
    assert_eq!(refused_key(&other), "puppet.master");
    let mut other = r.clone();
    other.dns.as_mut().unwrap().hostsfile = "/srv/admin/etc/hosts".into();
    assert_eq!(refused_key(&other), "dns.hostsfile");
    // Another name than its own, or another domain: refused.
    for fqdn in ["db1.ops.lab", "web1.admin.lab", "web1", "web1.xops.lab"] {
        assert_eq!(refused_key(&registration("web1", fqdn)), "fqdn", "{fqdn}");
    }
    // A certificate clean in the listed master, of its domains only.
    assert!(
        p.check_exec(Role::Operator, "puppet1", "puppet cert clean web1.ops.lab")
            .is_ok()
    );
    let refused = p
        .check_exec(Role::Operator, "puppet1", "puppet cert clean db1.admin.lab")
        .unwrap_err();
    assert_eq!(refused.key, "command", "{refused}");
    assert!(
        p.check_exec(
            Role::Operator,
            "puppet-admin",
            "puppet cert clean web1.ops.lab"
        )
        .is_err()
    );
    // The list form is the files alone.
    let p = Policy::parse(
        "roles:\n  operator:\n    registration: [/srv/dns]\n",
        Path::new("/p.yaml"),
        None,
    )
    .unwrap();
    assert_eq!(p.operator.registration.files, Some(paths(&["/srv/dns"])));
    assert_eq!(p.operator.registration.dns_containers, Some(vec![]));
    let err = Policy::parse(
        "roles:\n  operator:\n    registration:\n      domains: [\"a..b\"]\n",
        Path::new("/p.yaml"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("roles.operator.registration.domains[0]"),
        "{err}"
    );
}

#[test]
fn a_held_registration_is_what_the_containers_record_says() {
    use crate::host::RecordOf;
    use registration::check_record;
    let r = registration("web1", "web1.ops.lab");
    let record = RecordOf::Recorded {
        fqdn: "web1.ops.lab".into(),
        ip: "10.0.0.3".into(),
        ip6: None,
        service: Some("haproxy".into()),
    };
    assert!(check_record(Role::Operator, &r, &record).is_ok());
    assert!(check_record(Role::Operator, &r, &RecordOf::Absent).is_ok());
    assert_eq!(
        check_record(Role::Operator, &r, &RecordOf::Foreign)
            .unwrap_err()
            .key,
        "name"
    );
    let mut other = r.clone();
    other.ip = "10.0.0.9".parse().unwrap();
    let refused = check_record(Role::Operator, &other, &record).unwrap_err();
    assert_eq!(refused.key, "ip");
    assert!(
        refused.rule.contains("ip 10.0.0.3, not 10.0.0.9"),
        "{refused}"
    );
    let mut other = r.clone();
    other.service = Some("db".into());
    assert_eq!(
        check_record(Role::Operator, &other, &record)
            .unwrap_err()
            .key,
        "service"
    );
    other = r.clone();
    other.ip6 = Some("fd00::3".parse().unwrap());
    assert_eq!(
        check_record(Role::Operator, &other, &record)
            .unwrap_err()
            .key,
        "ip6"
    );
}
