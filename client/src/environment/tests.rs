//! Tests of loading and validating environment files: the 2015 fixture, and one
//! test per kind of problem with its exact place.

use std::net::Ipv4Addr;

use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/dockstack-2015/environment.yaml"
);

/// A small valid file; tests change one part of it. Line numbers are in the margin.
const BASE: &str = "\
containerhosts:
  host1: &host1
    ip: 192.168.1.48
    port: 3288
  host2:
    ip: 192.168.1.49
containerdefault: &containerdefault
  mask: 16
  gateway: 10.0.0.100
  dns: 10.0.0.1
  domain: endor.lab
  bridge: br0
  host: *host1
  volumes:
containers:
  dns1:
    <<: *containerdefault
    ip: 10.0.0.1
    image: dns
  web1:
    <<: *containerdefault
    ip: 10.0.0.2
    image: web
";
// 1  containerhosts:          13   host: *host1
// 2    host1: &host1          14   volumes:
// 3      ip: 192.168.1.48     15 containers:
// 4      port: 3288           16   dns1:
// 5    host2:                 17     <<: *containerdefault
// 6      ip: 192.168.1.49     18     ip: 10.0.0.1
// 7  containerdefault: &...   19     image: dns
// 8    mask: 16               20   web1:
// 9    gateway: 10.0.0.100    21     <<: *containerdefault
// 10   dns: 10.0.0.1          22     ip: 10.0.0.2
// 11   domain: endor.lab      23     image: web
// 12   bridge: br0

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

fn ok(text: &str) -> Environment {
    match parse(Path::new("env.yaml"), text) {
        Ok(environment) => environment,
        Err(e) => panic!("expected a valid file, got:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(Path::new("env.yaml"), text) {
        Ok(_) => panic!("expected problems, the file was valid:\n{text}"),
        Err(EnvError::Invalid(problems)) => problems.0,
        Err(e) => panic!("expected problems, got {e}"),
    }
}

/// The only problem of `text`, as `LINE:COLUMN: KEY_PATH: message`.
fn only(text: &str) -> String {
    let problems = problems(text);
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    let p = &problems[0];
    assert_eq!(p.file, Path::new("env.yaml"));
    format!("{}:{}: {}: {}", p.line, p.column, p.key_path, p.message)
}

#[test]
fn fixture_parses_unchanged() {
    let environment = load(Path::new(FIXTURE)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(environment.path, Path::new(FIXTURE));

    let names: Vec<&str> = environment
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dns1",
            "puppet1",
            "haproxy1",
            "galera1",
            "rabbitmq1",
            "keystone1",
            "glance1",
            "cinder1",
            "nova1",
            "neutron1",
            "dashboard1",
            "cassandra1",
            "config1",
            "control1",
            "analytics1",
            "webui1"
        ]
    );
    for (i, c) in environment.containers.iter().enumerate() {
        let n = u8::try_from(i + 1).unwrap();
        assert_eq!(c.ip, Ipv4Addr::new(10, 0, 0, n), "{}", c.name);
        assert_eq!(c.image, c.name.trim_end_matches('1'), "{}", c.name);
        assert_eq!(c.mask, 16, "{}", c.name);
        assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 0, 0, 100)), "{}", c.name);
        assert_eq!(c.dns, [Ipv4Addr::new(10, 0, 0, 1)], "{}", c.name);
        assert_eq!(c.domain.as_deref(), Some("endor.lab"), "{}", c.name);
        assert_eq!(c.bridge, "br0", "{}", c.name);
        assert_eq!(c.host, "host1", "{}", c.name);
        assert!(c.state, "{}", c.name);
        assert!(!c.privileged, "{}", c.name);
        // No capability by default: the network is plugged from the host.
        assert!(c.cap_add.is_empty(), "{}", c.name);
        assert!(c.allowed_addresses.is_empty(), "{}", c.name);
        assert!(c.command.is_empty() && c.env.is_empty() && c.after.is_empty());
        assert_eq!(c.fqdn(), format!("{}.endor.lab", c.name));
    }

    assert_eq!(
        environment.hosts,
        [
            ContainerHost {
                name: "host1".into(),
                ip: "192.168.1.48".parse().unwrap(),
                port: 3288
            },
            ContainerHost {
                name: "host2".into(),
                ip: "192.168.1.49".parse().unwrap(),
                port: 3288
            },
        ]
    );
    assert_eq!(environment.common.len(), 10);
    assert_eq!(environment.common["vip"], "10.0.0.254");
    assert_eq!(environment.common["vip_mask"], "16");
    assert_eq!(environment.common["haproxy_user"], "birdman");
    assert_eq!(environment.registration, Registration::default());

    let dns1 = environment.container("dns1").unwrap();
    assert_eq!(
        dns1.volumes,
        ["/dockervolumes/dns1/dnsmasq.d:/etc/dnsmasq.d"]
    );
    assert!(dns1.precreation.is_empty() && dns1.postcreation.is_empty());
    assert!(dns1.postdestroy.is_empty());

    let haproxy1 = environment.container("haproxy1").unwrap();
    assert_eq!(
        haproxy1.volumes,
        [
            "/dockervolumes/default/supervisor.conf:/etc/supervisor/supervisor.conf",
            "/dockervolumes/default/puppet.conf:/etc/puppet/puppet.conf",
            "/dockervolumes/haproxy1/etc/supervisor/conf.d:/etc/supervisor/conf.d",
        ]
    );
    assert_eq!(haproxy1.precreation.len(), 1);
    assert_eq!(haproxy1.postcreation.len(), 4);
    assert_eq!(haproxy1.postdestroy.len(), 3);
    // A plain scalar folded over two lines is one command line.
    assert_eq!(
        haproxy1.precreation[0],
        "/dockervolumes/default/registerService.py delcert --container haproxy1 --domain \
         endor.lab --master puppet1"
    );
    assert_eq!(
        haproxy1.postcreation[3],
        "/dockervolumes/default/registerService.py getconfig --container haproxy1"
    );

    let puppet1 = environment.container("puppet1").unwrap();
    assert_eq!(puppet1.volumes.len(), 8);
    assert!(puppet1.precreation.is_empty());
    assert_eq!(
        puppet1.postcreation[0],
        "/dockervolumes/puppet1/createcert.sh"
    );

    // Its only entry is a comment line: the list is empty.
    let cassandra1 = environment.container("cassandra1").unwrap();
    assert!(cassandra1.postcreation.is_empty());
    assert_eq!(cassandra1.precreation.len(), 1);
    assert_eq!(cassandra1.postdestroy.len(), 1);
    assert_eq!(cassandra1.volumes.len(), 2);

    let galera1 = environment.container("galera1").unwrap();
    assert_eq!(
        (galera1.precreation.len(), galera1.postcreation.len()),
        (5, 1)
    );
    assert_eq!(galera1.postdestroy.len(), 4);
}

#[test]
fn fixture_typo_is_found_on_its_line() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let text = text.replacen(
        "    image: haproxy\n    volumes:",
        "    image: haproxy\n    volums:",
        1,
    );
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "env.yaml:67:5: containers.haproxy1.volums: unknown key `volums` (did you mean `volumes`?)"
    );
}

#[test]
fn missing_file_is_a_read_error() {
    let err = load(Path::new("/nonexistent/environment.yaml")).unwrap_err();
    assert!(matches!(err, EnvError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/environment.yaml"));
}

#[test]
fn host_by_alias_by_name_and_by_address() {
    let environment = ok(&edit(
        "    image: web\n",
        "    image: web\n    host: host2\n",
    ));
    assert_eq!(environment.container("dns1").unwrap().host, "host1");
    assert_eq!(environment.container("web1").unwrap().host, "host2");
    assert_eq!(environment.host("host2").unwrap().port, DEFAULT_PORT);

    let environment = ok(&edit(
        "    image: web\n",
        "    image: web\n    host: *host1\n",
    ));
    assert_eq!(environment.container("web1").unwrap().host, "host1");

    // A mapping written out, not an alias, is matched by its address.
    let environment = ok(&edit(
        "    image: web\n",
        "    image: web\n    host: {ip: 192.168.1.49, port: 3288}\n",
    ));
    assert_eq!(environment.container("web1").unwrap().host, "host2");
}

#[test]
fn new_keys_and_their_defaults() {
    let environment = ok(&edit(
        "    image: web\n",
        "    image: web
    dns: [10.0.0.1, 10.0.0.254]
    mac: 02:42:0A:00:00:02
    mtu: 1450
    vlan: 12
    allowed_addresses: [10.0.0.50, 10.0.1.0/28]
    env: {MODE: fast, EMPTY: , N: 3}
    command: sh -c 'sleep 1000'
    privileged: false
    cap_add: [NET_ADMIN, SYS_ADMIN]
    restart: on-failure:3
    service: haproxy
    state: false
    after: [dns1]
",
    ));
    let web1 = environment.container("web1").unwrap();
    assert_eq!(
        web1.dns,
        [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 254)]
    );
    assert_eq!(web1.mac, Some("02:42:0a:00:00:02".parse().unwrap()));
    assert_eq!(web1.mtu, Some(1450));
    assert_eq!(web1.vlan, Some(12));
    assert_eq!(
        web1.allowed_addresses,
        [
            "10.0.0.50/32".parse().unwrap(),
            "10.0.1.0/28".parse().unwrap()
        ]
    );
    assert_eq!(web1.env["MODE"], "fast");
    assert_eq!(web1.env["EMPTY"], "");
    assert_eq!(web1.env["N"], "3");
    assert_eq!(web1.command, ["sh", "-c", "sleep 1000"]);
    assert!(!web1.privileged);
    assert_eq!(web1.cap_add, ["NET_ADMIN", "SYS_ADMIN"]);
    assert_eq!(
        web1.restart.map(|r| r.to_string()).as_deref(),
        Some("on-failure:3")
    );
    assert_eq!(web1.service.as_deref(), Some("haproxy"));
    assert!(!web1.state);
    assert_eq!(web1.after, ["dns1"]);

    let dns1 = environment.container("dns1").unwrap();
    assert_eq!(dns1.mac, None);
    assert_eq!((dns1.mtu, dns1.vlan), (None, None));
    assert!(!dns1.privileged && dns1.state);
    assert!(dns1.cap_add.is_empty());
    assert!(dns1.allowed_addresses.is_empty());
    assert!(dns1.command.is_empty());

    let environment = ok(&edit(
        "    image: web\n",
        "    image: web\n    command: [sh, -c, 'sleep 1000']\n",
    ));
    assert_eq!(
        environment.container("web1").unwrap().command,
        ["sh", "-c", "sleep 1000"]
    );
}

#[test]
fn registration_with_defaults() {
    let environment = ok(&format!(
        "{BASE}registration:
  dns:
    container: dns1
    hostsfile: /dockervolumes/dns1/hosts
  puppet:
    master: web1
    hieradata: /dockervolumes/puppet1/common.yaml
    sitepp: /dockervolumes/puppet1/site.pp
    certclean: puppetserver ca clean --certname {{fqdn}}
"
    ));
    let dns = environment.registration.dns.unwrap();
    assert_eq!(dns.container, "dns1");
    assert_eq!(dns.hostsfile, Path::new("/dockervolumes/dns1/hosts"));
    assert_eq!(dns.reload, "pkill -HUP -x dnsmasq");
    let puppet = environment.registration.puppet.unwrap();
    assert_eq!(puppet.master, "web1");
    assert_eq!(puppet.sitepp, Path::new("/dockervolumes/puppet1/site.pp"));
    assert_eq!(puppet.certclean, "puppetserver ca clean --certname {fqdn}");
    assert_eq!(puppet.agent, "puppet agent -t");
    assert_eq!(DEFAULT_CERTCLEAN, "puppet cert clean {fqdn}");
}

#[test]
fn yaml_syntax_error_has_its_position() {
    assert_eq!(
        only(&edit("    image: web\n", "    image: [web\n")),
        "23:12: containers.web1.image[0]: yaml syntax error: unclosed bracket '['"
    );
}

#[test]
fn unknown_alias_is_named_with_its_position() {
    let text = BASE.replace(
        "  web1:\n    <<: *containerdefault\n",
        "  web1:\n    <<: *webdefault\n",
    );
    assert!(text.contains("*webdefault"));
    // What the missing defaults leave out is reported too; the alias is
    // named at its own place.
    let problems = problems(&text);
    let shown: Vec<String> = problems
        .iter()
        .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.key_path, p.message))
        .collect();
    assert!(
        shown.contains(&"21:9: containers.web1.<<: unknown alias `*webdefault`".to_string()),
        "{shown:#?}"
    );
}

#[test]
fn unknown_key_suggests_the_closest() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    volums: []\n"
        )),
        "24:5: containers.web1.volums: unknown key `volums` (did you mean `volumes`?)"
    );
    // In the defaults, it is reported once, where it is written.
    assert_eq!(
        only(&edit("  volumes:\n", "  volums:\n")),
        "14:3: containerdefault.volums: unknown key `volums` (did you mean `volumes`?)"
    );
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        only(&format!("{BASE}contaners:\n")),
        "24:1: contaners: unknown key `contaners` (did you mean `containers`?)"
    );
    // The 2015 file's trailing key is known and ignored.
    ok(&format!("{BASE}registered_services:\n  - dns1\n"));
}

#[test]
fn allowed_addresses_must_be_ipv4_addresses_or_cidrs() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    allowed_addresses: [10.0.0.50, 10.0.0.0/33]\n"
        )),
        "24:36: containers.web1.allowed_addresses[1]: expected an ipv4 address or CIDR (like 10.0.0.5 or 10.0.0.0/28), found `10.0.0.0/33`"
    );
    for wrong in ["fe80::1", "10.0.0", "10.0.0.1/", "vip"] {
        let p = only(&edit(
            "    image: web\n",
            &format!("    image: web\n    allowed_addresses: [{wrong}]\n"),
        ));
        assert!(
            p.starts_with("24:") && p.contains("allowed_addresses[0]") && p.contains(wrong),
            "{p}"
        );
    }
    let many: Vec<String> = (0..65).map(|i| format!("10.1.0.{i}")).collect();
    let p = only(&edit(
        "    image: web\n",
        &format!(
            "    image: web\n    allowed_addresses: [{}]\n",
            many.join(", ")
        ),
    ));
    assert!(p.contains("65 allowed addresses, at most 64"), "{p}");
}

#[test]
fn wrong_types() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    state: maybe\n"
        )),
        "24:12: containers.web1.state: expected true or false, found `maybe`"
    );
    assert_eq!(
        only(&edit("    ip: 10.0.0.2\n", "    ip: [10.0.0.2]\n")),
        "22:9: containers.web1.ip: expected an ipv4 address, found a list"
    );
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    volumes: {a: b}\n"
        )),
        "24:14: containers.web1.volumes: expected a list of volumes, found a mapping"
    );
    assert_eq!(
        only(&edit("    port: 3288\n", "    port: http\n")),
        "4:11: containerhosts.host1.port: expected an integer (port), found `http`"
    );
}

#[test]
fn missing_required_fields() {
    assert_eq!(
        only(&edit("    image: web\n", "")),
        "20:3: containers.web1: missing required key `image`"
    );
    let text = format!("{BASE}  bare1:\n    image:\n");
    let problems = problems(&text);
    let seen: Vec<String> = problems
        .iter()
        .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.key_path, p.message))
        .collect();
    assert_eq!(
        seen,
        [
            "24:3: containers.bare1: missing required key `ip`",
            "24:3: containers.bare1: missing required key `mask`",
            "24:3: containers.bare1: missing required key `bridge`",
            "24:3: containers.bare1: missing required key `host`",
            "25:5: containers.bare1.image: required key `image` has no value",
        ]
    );
}

#[test]
fn mask_out_of_range() {
    assert_eq!(
        only(&edit("    image: web\n", "    image: web\n    mask: 33\n")),
        "24:11: containers.web1.mask: mask 33 is out of range 0..=32"
    );
}

#[test]
fn ip_and_gateway_outside_the_subnet() {
    assert_eq!(
        only(&edit("    ip: 10.0.0.2\n", "    ip: 10.0.255.255\n")),
        "22:9: containers.web1.ip: ip 10.0.255.255 is the broadcast address of 10.0.0.0/16"
    );
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    gateway: 10.1.0.1\n"
        )),
        "24:14: containers.web1.gateway: gateway 10.1.0.1 is outside the subnet 10.0.0.0/16"
    );
    // A wrong default is reported once, at the line of the default.
    assert_eq!(
        only(&edit("  gateway: 10.0.0.100\n", "  gateway: 10.1.0.100\n")),
        "9:12: containers.dns1.gateway: gateway 10.1.0.100 is outside the subnet 10.0.0.0/16"
    );
}

#[test]
fn two_containers_with_one_ip() {
    assert_eq!(
        only(&edit("    ip: 10.0.0.2\n", "    ip: 10.0.0.1\n")),
        "22:9: containers.web1.ip: ip 10.0.0.1 is used by both `dns1` (line 18) and `web1`"
    );
    // Across hosts too.
    assert_eq!(
        only(&edit(
            "    ip: 10.0.0.2\n",
            "    ip: 10.0.0.1\n    host: host2\n"
        )),
        "22:9: containers.web1.ip: ip 10.0.0.1 is used by both `dns1` (line 18) and `web1`"
    );
}

#[test]
fn host_not_in_containerhosts() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    host: host3\n"
        )),
        "24:11: containers.web1.host: host `host3` is not in containerhosts (did you mean `host1`?)"
    );
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    host: {ip: 192.168.1.50}\n"
        )),
        "24:11: containers.web1.host: host {ip: 192.168.1.50} is not in containerhosts"
    );
}

#[test]
fn host_mapping_that_is_ambiguous() {
    // Two entries with one address make any mapping of that address ambiguous; the
    // second entry is the mistake.
    assert_eq!(
        only(&edit("    ip: 192.168.1.49\n", "    ip: 192.168.1.48\n")),
        "5:3: containerhosts.host2: host `host2` has the address 192.168.1.48:3288 of host `host1`"
    );
}

#[test]
fn volume_problems() {
    let text = edit(
        "    image: web\n",
        "    image: web
    volumes:
    - /srv/web
    - srv/web:/var/www
    - /srv/web:var/www
    - /srv/../etc:/etc
    - /srv/web:/var/www:rx
    - /srv/web:/var/www:ro
",
    );
    let seen: Vec<String> = problems(&text)
        .iter()
        .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.key_path, p.message))
        .collect();
    assert_eq!(
        seen,
        [
            "25:7: containers.web1.volumes[0]: volume `/srv/web` is not HOST:CONTAINER[:ro|:rw]",
            "26:7: containers.web1.volumes[1]: volume `srv/web:/var/www`: host path `srv/web` is not absolute",
            "27:7: containers.web1.volumes[2]: volume `/srv/web:var/www`: container path `var/www` is not absolute",
            "28:7: containers.web1.volumes[3]: volume `/srv/../etc:/etc`: host path `/srv/../etc` has a `..` component",
            "29:7: containers.web1.volumes[4]: volume `/srv/web:/var/www:rx` is not HOST:CONTAINER[:ro|:rw]",
        ]
    );
}

#[test]
fn bridge_names() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    bridge: br-sixteen-bytes\n"
        )),
        "24:13: containers.web1.bridge: bridge name `br-sixteen-bytes` is 16 bytes long; linux allows at most 15"
    );
    ok(&edit(
        "    image: web\n",
        "    image: web\n    bridge: br-fifteen-byte\n",
    ));
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    bridge: ''\n"
        )),
        "24:13: containers.web1.bridge: `bridge` is empty"
    );
}

#[test]
fn references_to_unknown_containers() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    after: [dns2]\n"
        )),
        "24:13: containers.web1.after[0]: `after` names container `dns2`, which is not in containers (did you mean `dns1`?)"
    );
    let text = format!(
        "{BASE}registration:
  dns: {{container: dnsmasq, hostsfile: /srv/hosts}}
  puppet:
    master: puppet1
    hieradata: etc/common.yaml
    sitepp: /srv/site.pp
"
    );
    let seen: Vec<String> = problems(&text)
        .iter()
        .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.key_path, p.message))
        .collect();
    assert_eq!(
        seen,
        [
            "25:20: registration.dns.container: dns container `dnsmasq`, which is not in containers",
            "27:13: registration.puppet.master: puppet master `puppet1`, which is not in containers",
            "28:16: registration.puppet.hieradata: path `etc/common.yaml` is not absolute",
        ]
    );
}

#[test]
fn after_cycle_is_reported_once() {
    let text = edit("    image: dns\n", "    image: dns\n    after: [web1]\n").replacen(
        "    image: web\n",
        "    image: web\n    after: [dns1]\n",
        1,
    );
    assert_eq!(
        only(&text),
        "20:12: containers.dns1.after: `after` forms a cycle: dns1 → web1 → dns1"
    );
}

#[test]
fn duplicate_container_names() {
    assert_eq!(
        only(&format!(
            "{BASE}  dns1:\n    <<: *containerdefault\n    ip: 10.0.0.3\n    image: dns\n"
        )),
        "24:3: containers.dns1: duplicate key `dns1` (first at line 16)"
    );
}

#[test]
fn hook_with_unbalanced_quote() {
    assert_eq!(
        only(&edit(
            "    image: web\n",
            "    image: web\n    postcreation:\n    - echo 'hi\n"
        )),
        "25:7: containers.web1.postcreation[0]: cannot split the command line: missing closing quote"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = edit("  gateway: 10.0.0.100\n", "  gateway: 10.1.0.100\n")
        .replacen("    ip: 10.0.0.2\n", "    ip: 10.0.0.1\n", 1)
        .replacen(
            "    image: web\n",
            "    image: web\n    volums: []\n    mask: 40\n    host: host9\n",
            1,
        );
    let err = parse(Path::new("env.yaml"), &text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\
env.yaml:9:12: containers.dns1.gateway: gateway 10.1.0.100 is outside the subnet 10.0.0.0/16
env.yaml:22:9: containers.web1.ip: ip 10.0.0.1 is used by both `dns1` (line 18) and `web1`
env.yaml:24:5: containers.web1.volums: unknown key `volums` (did you mean `volumes`?)
env.yaml:25:11: containers.web1.mask: mask 40 is out of range 0..=32
env.yaml:26:11: containers.web1.host: host `host9` is not in containerhosts (did you mean `host1`?)"
    );
}

#[test]
fn merge_lists_and_precedence() {
    // Keys written in the container win; among merged mappings, the first one wins.
    let environment = ok("\
containerhosts: {h1: {ip: 192.168.1.48}}
registered_services: [&a {mask: 8, bridge: br0}, &b {host: h1, mask: 9, dns: 10.9.9.9}]
containers:
  a1:
    !!merge <<: [*a, *b]
    ip: 10.0.0.1
    image: x
    dns: [10.1.1.1]
");
    let a1 = environment.container("a1").unwrap();
    assert_eq!((a1.mask, a1.bridge.as_str()), (8, "br0"));
    assert_eq!(a1.host, "h1");
    assert_eq!(a1.dns, [Ipv4Addr::new(10, 1, 1, 1)]);

    // The defaults did not come in, so the required keys are missing too.
    let problems = problems(&edit(
        "    <<: *containerdefault\n    ip: 10.0.0.2\n",
        "    <<: 5\n    ip: 10.0.0.2\n",
    ));
    let merge = problems.iter().find(|p| p.key_path == "containers.web1.<<");
    assert_eq!(
        merge.map(|p| (p.line, p.column, p.message.as_str())),
        Some((
            21,
            9,
            "a merge key (`<<`) takes a mapping or a list of mappings, found `5`"
        ))
    );
}

#[test]
fn a_name_in_the_form_of_a_sandbox_is_refused_on_its_line() {
    assert_eq!(
        only(&edit("  web1:\n", "  web1.dockstack-sandbox:\n")),
        "20:3: containers.web1.dockstack-sandbox: `web1.dockstack-sandbox` ends with \
         `.dockstack-sandbox`, which dockstack keeps for the network sandboxes it makes"
    );
}

/// `web1` with `lines` (each indented as a key of it) after its image.
fn web1_with(lines: &str) -> String {
    edit("    image: web\n", &format!("    image: web\n{lines}"))
}

#[test]
fn step_healthcheck_oneshot_and_config_volumes_are_taken() {
    let environment = ok(&web1_with(
        "    step: 3
    healthcheck:
      test: curl -f http://localhost/
      interval: 10s
      timeout: 1500ms
      retries: 5
      start_period: 1m30s
    oneshot: true
    restart: no
    config_volumes: [/srv/web/conf, /etc/web]
",
    ));
    let web1 = environment.container("web1").unwrap();
    assert_eq!(web1.step, 3);
    assert_eq!(
        web1.healthcheck,
        Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "curl -f http://localhost/".into()],
            interval_ms: 10_000,
            timeout_ms: 1_500,
            retries: 5,
            start_period_ms: 90_000,
        })
    );
    assert!(web1.oneshot);
    assert_eq!(web1.restart, Some(dockstack_types::RestartPolicy::No));
    assert_eq!(
        web1.config_volumes,
        [Path::new("/srv/web/conf"), Path::new("/etc/web")]
    );

    // The defaults: step 0, no healthcheck, not a oneshot, no config volume.
    let dns1 = environment.container("dns1").unwrap();
    assert_eq!(dns1.step, 0);
    assert_eq!(dns1.healthcheck, None);
    assert!(!dns1.oneshot);
    assert!(dns1.config_volumes.is_empty());

    // The bounds of step; a oneshot without restart; one path alone.
    for (step, n) in [("0", 0), ("1000", 1000)] {
        let environment = ok(&web1_with(&format!(
            "    step: {step}\n    oneshot: yes\n    config_volumes: /srv/conf\n"
        )));
        let web1 = environment.container("web1").unwrap();
        assert_eq!(web1.step, n);
        assert!(web1.oneshot && web1.restart.is_none());
        assert_eq!(web1.config_volumes, [Path::new("/srv/conf")]);
    }
    ok(&web1_with("    oneshot: false\n    restart: always\n"));
    ok(&web1_with(
        "    oneshot: true\n    restart: 'no'\n    state: true\n",
    ));
}

#[test]
fn healthcheck_test_forms_and_defaults() {
    let test_of = |test: &str| {
        let environment = ok(&web1_with(&format!("    healthcheck: {{test: {test}}}\n")));
        let check = environment.container("web1").unwrap().healthcheck.clone();
        let check = check.expect("a healthcheck");
        // Docker's defaults.
        assert_eq!(
            (
                check.interval_ms,
                check.timeout_ms,
                check.retries,
                check.start_period_ms
            ),
            (30_000, 30_000, 3, 0)
        );
        check.test
    };
    assert_eq!(
        test_of("'pg_isready -U postgres || exit 1'"),
        ["CMD-SHELL", "pg_isready -U postgres || exit 1"]
    );
    assert_eq!(
        test_of("[curl, -f, 'http://localhost/']"),
        ["CMD", "curl", "-f", "http://localhost/"]
    );
    assert_eq!(test_of("[CMD, curl, -f]"), ["CMD", "curl", "-f"]);
    assert_eq!(
        test_of("[CMD-SHELL, 'curl -f localhost']"),
        ["CMD-SHELL", "curl -f localhost"]
    );

    // In the defaults, it is every container's.
    let environment = ok(&edit(
        "  volumes:\n",
        "  volumes:\n  healthcheck:\n    test: [true]\n    retries: 1\n",
    ));
    for c in &environment.containers {
        let check = c.healthcheck.as_ref().unwrap();
        assert_eq!(
            (check.test.as_slice(), check.retries),
            (&["CMD".to_owned(), "true".to_owned()][..], 1)
        );
    }
    // One without `test` in the defaults is reported once, where it is written.
    assert_eq!(
        only(&edit(
            "  volumes:\n",
            "  volumes:\n  healthcheck:\n    retries: 1\n"
        )),
        "15:3: containerdefault.healthcheck: missing required key `test`"
    );
}

#[test]
fn healthcheck_durations_as_docker_writes_them() {
    let interval = |text: &str| {
        let environment = ok(&web1_with(&format!(
            "    healthcheck: {{test: 'true', interval: {text}}}\n"
        )));
        environment
            .container("web1")
            .unwrap()
            .healthcheck
            .as_ref()
            .unwrap()
            .interval_ms
    };
    for (text, ms) in [
        ("45", 45_000),
        ("'45'", 45_000),
        ("500ms", 500),
        ("2s", 2_000),
        ("1m", 60_000),
        ("1m30s", 90_000),
        ("1h", 3_600_000),
        ("1.5s", 1_500),
        ("1h0m0s", 3_600_000),
        ("250000us", 250),
        ("1ms", 1),
    ] {
        assert_eq!(interval(text), ms, "{text}");
    }
    // start_period alone may be 0.
    let environment = ok(&web1_with(
        "    healthcheck: {test: 'true', timeout: 3600, start_period: 0}\n",
    ));
    let check = environment
        .container("web1")
        .unwrap()
        .healthcheck
        .clone()
        .unwrap();
    assert_eq!((check.timeout_ms, check.start_period_ms), (3_600_000, 0));
    let environment = ok(&web1_with(
        "    healthcheck: {test: 'true', start_period: 0s}\n",
    ));
    assert_eq!(
        environment
            .container("web1")
            .unwrap()
            .healthcheck
            .as_ref()
            .unwrap()
            .start_period_ms,
        0
    );
}

#[test]
#[allow(clippy::too_many_lines)]
fn bad_new_keys_are_named_on_their_line() {
    let cases: &[(&str, &str)] = &[
        (
            "    step: 1001\n",
            "24:11: containers.web1.step: step 1001 is out of range 0..=1000",
        ),
        (
            "    step: -1\n",
            "24:11: containers.web1.step: step -1 is out of range 0..=1000",
        ),
        (
            "    step: first\n",
            "24:11: containers.web1.step: expected an integer (step), found `first`",
        ),
        (
            "    oneshot: maybe\n",
            "24:14: containers.web1.oneshot: expected true or false, found `maybe`",
        ),
        (
            "    config_volumes: [/srv/conf, srv/conf]\n",
            "24:33: containers.web1.config_volumes[1]: path `srv/conf` is not absolute",
        ),
        (
            "    config_volumes: /srv/../etc\n",
            "24:21: containers.web1.config_volumes: path `/srv/../etc` has a `..` component",
        ),
        (
            "    config_volumes: {a: b}\n",
            "24:21: containers.web1.config_volumes: expected a list of host paths, found a mapping",
        ),
        (
            "    healthcheck: 5\n",
            "24:18: containers.web1.healthcheck: expected a mapping of healthcheck keys, found `5`",
        ),
        (
            "    healthcheck:\n      interval: 5s\n",
            "24:5: containers.web1.healthcheck: missing required key `test`",
        ),
        (
            "    healthcheck:\n      test:\n",
            "25:7: containers.web1.healthcheck.test: required key `test` has no value",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      intervall: 5s\n",
            "26:7: containers.web1.healthcheck.intervall: unknown key `intervall` (did you mean `interval`?)",
        ),
        (
            "    healthcheck:\n      test: {a: b}\n",
            "25:13: containers.web1.healthcheck.test: expected a command line or a list of words, found a mapping",
        ),
        (
            "    healthcheck:\n      test: echo 'hi\n",
            "25:13: containers.web1.healthcheck.test: cannot split the command line: missing closing quote",
        ),
        (
            "    healthcheck:\n      test: []\n",
            "25:13: containers.web1.healthcheck.test: an empty list runs nothing",
        ),
        (
            "    healthcheck:\n      test: [CMD]\n",
            "25:13: containers.web1.healthcheck.test: `CMD` takes a program after it",
        ),
        (
            "    healthcheck:\n      test: [CMD-SHELL, a, b]\n",
            "25:13: containers.web1.healthcheck.test: `CMD-SHELL` takes one command line after it, found 2",
        ),
        (
            "    healthcheck:\n      test: [CMD-SHELL, '']\n",
            "25:25: containers.web1.healthcheck.test[1]: empty command line",
        ),
        (
            "    healthcheck:\n      test: [NONE]\n",
            "25:14: containers.web1.healthcheck.test[0]: `NONE` (turning the image's healthcheck off) is not supported",
        ),
        (
            "    healthcheck:\n      test: [CMD, '']\n",
            "25:19: containers.web1.healthcheck.test[1]: empty program name",
        ),
        (
            "    healthcheck:\n      test: [curl, [a]]\n",
            "25:20: containers.web1.healthcheck.test[1]: expected a word, found a list",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      retries: 0\n",
            "26:16: containers.web1.healthcheck.retries: retries 0 is out of range 1..=1000",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      retries: 1001\n",
            "26:16: containers.web1.healthcheck.retries: retries 1001 is out of range 1..=1000",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      interval: 0\n",
            "26:17: containers.web1.healthcheck.interval: interval `0` is out of range 1ms..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      interval: 0s\n",
            "26:17: containers.web1.healthcheck.interval: interval `0s` is out of range 1ms..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      interval: 1h1s\n",
            "26:17: containers.web1.healthcheck.interval: interval `1h1s` is out of range 1ms..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      timeout: -5s\n",
            "26:16: containers.web1.healthcheck.timeout: timeout `-5s` is out of range 1ms..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      timeout: 3601\n",
            "26:16: containers.web1.healthcheck.timeout: timeout `3601` is out of range 1ms..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      start_period: 2h\n",
            "26:21: containers.web1.healthcheck.start_period: start_period `2h` is out of range 0..=1h",
        ),
        (
            "    healthcheck:\n      test: 'true'\n      interval: 1500us\n",
            "26:17: containers.web1.healthcheck.interval: interval `1500us` is not a whole number of milliseconds",
        ),
    ];
    for (lines, expected) in cases {
        assert_eq!(only(&web1_with(lines)), *expected, "{lines}");
    }
    for wrong in [
        "5 s",
        "5sec",
        "1d",
        "s",
        "1.5",
        ".s",
        "1m30",
        "--5s",
        "[5s]",
        "99999999999999999999h",
    ] {
        let p = only(&web1_with(&format!(
            "    healthcheck:\n      test: 'true'\n      interval: {wrong}\n"
        )));
        assert!(
            p.starts_with("26:17: containers.web1.healthcheck.interval: expected a duration (whole seconds, or like 500ms, 2s, 1m30s), found "),
            "{wrong}: {p}"
        );
    }
}

#[test]
fn a_oneshot_with_a_restart_policy_is_always_refused() {
    for policy in ["always", "unless-stopped", "on-failure", "on-failure:3"] {
        assert_eq!(
            only(&web1_with(&format!(
                "    restart: {policy}\n    oneshot: true\n"
            ))),
            format!(
                "24:14: containers.web1.restart: a oneshot runs once: restart `{policy}` is refused \
                 (leave `restart` out or make it `\"no\"`)"
            ),
            "{policy}"
        );
    }
    // A restart policy of the defaults is refused at its line, once, for every
    // oneshot that merges it.
    let text = edit("  volumes:\n", "  volumes:\n  restart: always\n")
        .replacen("    image: dns\n", "    image: dns\n    oneshot: true\n", 1)
        .replacen("    image: web\n", "    image: web\n    oneshot: true\n", 1);
    assert_eq!(
        only(&text),
        "15:12: containers.dns1.restart: a oneshot runs once: restart `always` is refused \
         (leave `restart` out or make it `\"no\"`)"
    );
    // Both a oneshot and its restart in the defaults: reported where written.
    assert_eq!(
        only(&edit(
            "  volumes:\n",
            "  volumes:\n  restart: on-failure\n  oneshot: true\n"
        )),
        "15:12: containerdefault.restart: a oneshot runs once: restart `on-failure` is refused \
         (leave `restart` out or make it `\"no\"`)"
    );
    // A policy that is wrong anyway is reported for that only.
    assert_eq!(
        only(&web1_with("    restart: sometimes\n    oneshot: true\n")),
        "24:14: containers.web1.restart: unknown restart policy `sometimes` \
         (expected no, always, unless-stopped, on-failure or on-failure:N)"
    );
    // A oneshot is made to run.
    assert_eq!(
        only(&web1_with("    state: false\n    oneshot: true\n")),
        "24:12: containers.web1.state: a oneshot runs when it is made: `state: false` is refused"
    );
}

#[test]
fn dual_stack_addresses_are_read() {
    let environment = ok(
        &edit("  volumes:\n", "  volumes:\n  gateway6: fd00:10::1\n").replacen(
            "    image: web\n",
            "    image: web\n    ip6: fd00:10::2/64\n",
            1,
        ),
    );
    let web1 = environment.container("web1").unwrap();
    assert_eq!(web1.ip6.unwrap().to_string(), "fd00:10::2/64");
    // The merged gateway6 of the IPv4-only dns1 is left out.
    let dns1 = environment.container("dns1").unwrap();
    assert_eq!((dns1.ip6, dns1.gateway6), (None, None));
    assert_eq!(web1.gateway6, Some("fd00:10::1".parse().unwrap()));
    // A link-local next hop, as routers announce themselves, is fine too.
    let environment = ok(&edit(
        "    image: web\n",
        "    image: web\n    ip6: fd00:10::2/64\n    gateway6: fe80::1\n",
    ));
    assert_eq!(
        environment.container("web1").unwrap().gateway6,
        Some("fe80::1".parse().unwrap())
    );
    // Without the keys: IPv4 only, as in 2015.
    assert_eq!(ok(BASE).container("web1").unwrap().ip6, None);
}

#[test]
fn bad_ipv6_input_is_refused_with_its_place() {
    let web = |extra: &str| edit("    image: web\n", &format!("    image: web\n{extra}"));
    for (extra, want) in [
        (
            "    ip6: fd00:10::zz/64\n",
            "24:10: containers.web1.ip6: `fd00:10::zz` is not an ipv6 address",
        ),
        (
            "    ip6: fd00:10::2\n",
            "24:10: containers.web1.ip6: expected an ipv6 address with its prefix length (ADDR/LEN), found `fd00:10::2`",
        ),
        (
            "    ip6: fd00:10::2/129\n",
            "24:10: containers.web1.ip6: prefix length /129 is out of range (1 to 128)",
        ),
        (
            "    ip6: fd00:10::2/64\n    gateway6: fd00:11::1\n",
            "25:15: containers.web1.gateway6: gateway6 fd00:11::1 is outside the prefix fd00:10::/64",
        ),
        (
            "    ip6: fd00:10::2/64\n    gateway6: fd00:10::2\n",
            "25:15: containers.web1.gateway6: gateway6 fd00:10::2 is the container's own ip6",
        ),
        (
            "    gateway6: fd00:10::1\n",
            "24:15: containers.web1.gateway6: `gateway6` is given without `ip6`",
        ),
        (
            "    ip6: fe80::2/64\n",
            "24:10: containers.web1.ip6: fe80::2 is link-local: the kernel makes eth0's own, give a routable address",
        ),
    ] {
        assert_eq!(only(&web(extra)), want, "{extra}");
    }
    // Two containers with one IPv6 address, written differently.
    let text = edit(
        "    ip: 10.0.0.1\n",
        "    ip: 10.0.0.1\n    ip6: fd00:10::2/64\n",
    )
    .replacen(
        "    image: web\n",
        "    image: web\n    ip6: fd00:10:0::0002/112\n",
        1,
    );
    assert_eq!(
        only(&text),
        "25:10: containers.web1.ip6: ip6 fd00:10::2 is used by both `dns1` (line 19) and `web1`"
    );
    // The file name and line, as a user sees them.
    let err = parse(Path::new("env.yaml"), &web("    ip6: fd00::2/200\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "env.yaml:24:10: containers.web1.ip6: prefix length /200 is out of range (1 to 128)"
    );
}

#[test]
fn a_host_address_is_an_ip_or_a_name_and_an_ipv6_one_is_bracketed() {
    let v6: HostAddress = "fd00::1".parse().unwrap();
    assert_eq!(v6.authority(3288), "[fd00::1]:3288");
    let v4: HostAddress = "10.0.0.1".parse().unwrap();
    assert_eq!(v4.authority(3288), "10.0.0.1:3288");
    let name: HostAddress = "host1.lab".parse().unwrap();
    assert_eq!(name, HostAddress::Name("host1.lab".into()));
    for bad in ["", "host 1", "a/b", "user@host", "h:1"] {
        assert!(bad.parse::<HostAddress>().is_err(), "{bad}");
    }
}

#[test]
fn stop_and_runtime_keys_are_taken() {
    let env = ok(&web1_with(
        "    stop_signal: SIGQUIT\n    stop_grace_period: 1m30s\n    prestop: [\"drain --wait 5\"]\n    \
         sysctls:\n      net.ipv4.ip_nonlocal_bind: 1\n    ulimits:\n      nofile: 1048576\n      \
         nproc: {soft: 1024, hard: 2048}\n    tmpfs: ['/run:size=64m,mode=1777', /tmp]\n    \
         user: '999:999'\n    memory: 1.5g\n    cpus: 0.5\n    pids_limit: -1\n    init: true\n",
    ));
    let r = &env.container("web1").unwrap().runtime;
    assert_eq!(r.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(r.stop_grace_secs, Some(90));
    assert_eq!(r.prestop, ["drain --wait 5"]);
    assert_eq!(r.sysctls["net.ipv4.ip_nonlocal_bind"], "1");
    assert_eq!(r.ulimits["nofile"], (1_048_576, 1_048_576));
    assert_eq!(r.ulimits["nproc"], (1024, 2048));
    assert_eq!(r.tmpfs["/run"], "size=64m,mode=1777");
    assert_eq!(r.tmpfs["/tmp"], "");
    assert_eq!(r.user.as_deref(), Some("999:999"));
    assert_eq!(r.memory_bytes, Some(3 << 29));
    assert_eq!(r.nano_cpus, Some(500_000_000));
    assert_eq!(r.pids_limit, Some(-1));
    assert!(r.init);
    // Left out, each is Docker's default.
    let dns1 = &env.container("dns1").unwrap().runtime;
    assert_eq!(*dns1, crate::environment::model::Runtime::default());
    // The sysctl list form and a tmpfs mapping, as compose takes them too.
    let env = ok(&web1_with(
        "    sysctls: [net.core.somaxconn=1024]\n    tmpfs:\n      /run: size=1m\n",
    ));
    let r = &env.container("web1").unwrap().runtime;
    assert_eq!(r.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(r.tmpfs["/run"], "size=1m");
}

#[test]
fn bad_stop_and_runtime_keys_are_named_on_their_line() {
    let cases: &[(&str, &str)] = &[
        (
            "    stop_signal: SIGFOO\n",
            "24:18: containers.web1.stop_signal: stop_signal \"SIGFOO\" is neither a signal's name (SIGTERM, QUIT) nor its number 1..=64",
        ),
        (
            "    stop_grace_period: 2h\n",
            "24:24: containers.web1.stop_grace_period: stop_grace_period \"2h\" out of range 0..=1h",
        ),
        (
            "    stop_grace_period: 1.5s\n",
            "24:24: containers.web1.stop_grace_period: stop_grace_period \"1.5s\" is not a whole number of seconds",
        ),
        (
            "    prestop: [\"echo 'hi\"]\n",
            "24:15: containers.web1.prestop[0]: cannot split the command line: missing closing quote",
        ),
        (
            "    sysctls:\n      kernel.hostname: x\n",
            "25:24: containers.web1.sysctls.kernel.hostname: sysctl \"kernel.hostname\" is not namespaced (allowed: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)",
        ),
        (
            "    sysctls: [vm.swappiness]\n",
            "24:15: containers.web1.sysctls[0]: expected KEY=VALUE, found `vm.swappiness`",
        ),
        (
            "    ulimits:\n      nofile: {soft: 10, hard: 5}\n",
            "25:15: containers.web1.ulimits.nofile: ulimit nofile: soft 10 and hard 5 must be -1 (unlimited) or more, soft at most hard",
        ),
        (
            "    ulimits:\n      nofile: {soft: 10}\n",
            "25:15: containers.web1.ulimits.nofile: missing required key `hard`",
        ),
        (
            "    ulimits: [nofile]\n",
            "24:14: containers.web1.ulimits: expected a mapping of ulimits, found a list",
        ),
        (
            "    tmpfs: [run]\n",
            "24:13: containers.web1.tmpfs[0]: tmpfs \"run\" must be an absolute container path without '..', not /",
        ),
        (
            "    tmpfs: '/run:size=1m,bogus'\n",
            "24:12: containers.web1.tmpfs: tmpfs /run: option \"bogus\" unknown or malformed",
        ),
        (
            "    user: 'a b'\n",
            "24:11: containers.web1.user: user \"a b\" is not USER[:GROUP] of names or numbers",
        ),
        (
            "    memory: 5m\n",
            "24:13: containers.web1.memory: memory \"5m\" is not a size (bytes, or with b, k, m, g, t) of 6m..=16t",
        ),
        (
            "    cpus: 0\n",
            "24:11: containers.web1.cpus: cpus \"0\" is not a decimal of 0.01..=1024",
        ),
        (
            "    pids_limit: 0\n",
            "24:17: containers.web1.pids_limit: pids_limit 0 out of range 1..=4194304 (or -1: unlimited)",
        ),
        (
            "    pids_limit: -2\n",
            "24:17: containers.web1.pids_limit: pids_limit -2 is out of range -1..=4194304",
        ),
        (
            "    init: maybe\n",
            "24:11: containers.web1.init: expected true or false, found `maybe`",
        ),
    ];
    for (lines, expected) in cases {
        assert_eq!(only(&web1_with(lines)), *expected, "{lines}");
    }
    let p = only(&web1_with("    ulimits:\n      nofiles: 10\n"));
    assert!(
        p.starts_with("25:16: containers.web1.ulimits.nofiles: unknown ulimit \"nofiles\""),
        "{p}"
    );
}

#[test]
fn first_creation_is_read_apart_from_env_and_command() {
    let env = ok(&format!(
        "{BASE}    env:\n      BOOT: \"0\"\n    first_creation:\n      env:\n        BOOT: \"1\"\n      command: mysqld --wsrep-new-cluster\n"
    ));
    let web = env.container("web1").unwrap();
    assert_eq!(web.env["BOOT"], "0");
    assert!(web.command.is_empty());
    let first = web.first_creation.as_ref().expect("first_creation");
    assert_eq!(first.env["BOOT"], "1");
    assert_eq!(first.command, ["mysqld", "--wsrep-new-cluster"]);
    assert_eq!(env.container("dns1").unwrap().first_creation, None);
    // Empty: nothing to use.
    let env = ok(&format!("{BASE}    first_creation: {{env: {{}}}}\n"));
    assert_eq!(env.container("web1").unwrap().first_creation, None);
}

#[test]
fn first_creation_problems_are_placed() {
    // 24 first_creation:, 25 env:, 26 the variable.
    let at = |tail: &str| only(&format!("{BASE}    first_creation:\n{tail}"));
    assert_eq!(
        at("      env:\n        \"A\\0B\": x\n"),
        "26:9: containers.web1.first_creation.env.A\0B: `A\0B` is not a variable name (not empty, no `=`, no NUL)"
    );
    assert_eq!(
        at("      env:\n        BOOT: \"1\\0\"\n"),
        "26:15: containers.web1.first_creation.env.BOOT: the value of BOOT holds a NUL character"
    );
    assert_eq!(
        at("      env:\n        =x: \"1\"\n"),
        "26:9: containers.web1.first_creation.env: expected a variable name, found `=x`"
    );
    assert_eq!(
        at("      comand: [sh]\n"),
        "25:7: containers.web1.first_creation.comand: unknown key `comand` (did you mean `command`?)"
    );
    assert_eq!(
        at("      command: \"sh -c 'x\"\n"),
        "25:16: containers.web1.first_creation.command: cannot split the command line: missing closing quote"
    );
    assert_eq!(
        at("      - GALERA_BOOTSTRAP=1\n"),
        "25:7: containers.web1.first_creation: expected a mapping of `env` and `command`, found a list"
    );
}

#[test]
fn controlplane_bootstraps_galera1_at_its_first_creation_only() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/controlplane/environment.yaml"
    );
    let env = load(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let galera1 = env.container("galera1").unwrap();
    let first = galera1.first_creation.as_ref().expect("galera1 bootstraps");
    assert_eq!(first.env["GALERA_BOOTSTRAP"], "1");
    for name in ["galera1", "galera2", "galera3"] {
        let c = env.container(name).unwrap();
        assert!(!c.env.contains_key("GALERA_BOOTSTRAP"), "{name}");
        // galera2 and galera3 merge galera1's keys: not this one.
        if name != "galera1" {
            assert_eq!(c.first_creation, None, "{name}");
        }
    }
}

#[test]
fn cluster_names_its_etcd_prefix_and_tls() {
    let env = ok(&format!(
        "{BASE}cluster:\n  etcd: [https://10.0.0.11:2379, https://10.0.0.12:2379]\n  prefix: /dockstack/prod\n  tls:\n    ca: /etc/e/ca.pem\n    cert: /etc/e/me.pem\n    key: /etc/e/me.key\n"
    ));
    let c = env.cluster.expect("a cluster");
    assert_eq!(c.etcd.len(), 2);
    assert_eq!(c.prefix, "/dockstack/prod");
    assert_eq!(c.tls.unwrap().key, Path::new("/etc/e/me.key"));
    // Without it, none; without a prefix, the default one.
    assert_eq!(ok(BASE).cluster, None);
    let c = ok(&format!("{BASE}cluster:\n  etcd: http://10.0.0.11:2379\n"))
        .cluster
        .unwrap();
    assert_eq!(c.prefix, DEFAULT_CLUSTER_PREFIX);
}

#[test]
fn cluster_problems_are_placed() {
    // 24 cluster:, 25 etcd:
    assert_eq!(
        only(&format!("{BASE}cluster:\n  etcd: [10.0.0.11:2379]\n")),
        "25:10: cluster.etcd: `10.0.0.11:2379` is no etcd URL (https://HOST:PORT)"
    );
    assert!(
        only(&format!(
            "{BASE}cluster:\n  etcd: [https://10.0.0.11:2379]\n"
        ))
        .contains("an https:// etcd needs tls")
    );
    assert!(
        only(&format!(
            "{BASE}cluster:\n  etcd: [http://e:2379]\n  prefix: dockstack/\n"
        ))
        .contains("prefix `dockstack/` must start with `/`")
    );
}
