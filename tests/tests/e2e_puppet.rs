//! End to end: Puppet registration with the real thing. Debian's
//! puppetserver (the example's `dockstack/puppetserver` image) is the
//! registration's master on host 0, registered in a real dnsmasq; a node of
//! the `web` service (`dockstack/puppet-agent`, Debian's puppet-agent) on
//! host 1:
//! - `apply` brings up the DNS, then the master (waited healthy: the JVM's
//!   start), then the node: its registration adds it to the master's
//!   site.pp node line and hieradata's `registered_services`, and the
//!   registration's `puppet agent -t --server MASTER` gets its certificate
//!   signed (autosign) and applies the catalog, whose file holds the
//!   service's members as hieradata lists them;
//! - `puppet agent -t` run again in the node applies the catalog (0 or 2);
//! - `destroy` of the node cleans its certificate on the master
//!   (`puppetserver ca clean --certname FQDN`: `puppetserver ca list --all`
//!   no longer shows it) and gives site.pp and hieradata back as they were.
//!
//! It prints how long each part took. About 2 minutes once the images
//! exist, most of it the master's JVM; building the images from nothing
//! adds a few minutes, once.

use std::fs;
use std::process::Command;
use std::time::Instant;

use dockstack_tests::support::{bed, docker_exec, inspect, ok, read, text};
use dockstack_tests::testbed::{BedContainer, DNSMASQ_IMAGE, ensure_dnsmasq_image, example_images};

/// The master's code: a class that writes the members of a service, as
/// hieradata's `registered_services` lists them, in a file; the `web`
/// service's node line, to which the registration adds each node.
const SITE_PP: &str = r#"# The members of each service, as dockstack's registration lists them in
# hieradata (registered_services), in a file of each of its nodes.
class registered (String $service) {
  $members = lookup("registered_services.${service}", Array[String], 'first', [])
  file { '/etc/dockstack-registered':
    ensure  => file,
    mode    => '0644',
    content => "${service}: ${members.join(' ')}\n",
  }
}

node 'web' {
  class { 'registered': service => 'web' }
}
"#;

/// Hieradata with a member registered before (from elsewhere): the node's
/// file must list it, which only hieradata can tell.
const COMMON_YAML: &str = "registered_services:\n  web:\n  - web0\n";

/// Where the node's catalog writes the members of its service.
const MANAGED_FILE: &str = "/etc/dockstack-registered";

/// `argv` run inside `container`: its exit code and output, whatever they are.
fn exec_status(container: &str, argv: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("docker")
        .arg("exec")
        .arg(container)
        .args(argv)
        .output()
        .expect("docker exec");
    (out.status.code(), text(&out))
}

/// The certificates the master's CA knows (`puppetserver ca list --all`).
fn ca_list(master: &str) -> String {
    let (code, out) = exec_status(master, &["puppetserver", "ca", "list", "--all"]);
    assert_eq!(code, Some(0), "puppetserver ca list --all: {out}");
    out
}

/// How long the master took from its container's start to its log's
/// "started" line: the JVM and the server's services coming up.
fn server_start(master: &str) -> Result<f64, String> {
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("{s}: {e}"))
    };
    let started = parse(&inspect(master, "{{.State.StartedAt}}"))?;
    let out = Command::new("docker")
        .args(["logs", "-t", master])
        .output()
        .map_err(|e| e.to_string())?;
    let logs = String::from_utf8_lossy(&out.stdout);
    let line = logs
        .lines()
        .find(|l| l.contains("Puppet Server has successfully started"))
        .ok_or("no \"successfully started\" line in its log")?;
    let ready = parse(line.split_whitespace().next().unwrap_or_default())?;
    Ok((ready - started).as_seconds_f64())
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_node_registered_with_a_real_puppet_master_gets_its_catalog_and_destroy_cleans_its_cert() {
    let started = Instant::now();
    let built =
        example_images(&["puppetserver", "puppet-agent"]).unwrap_or_else(|e| panic!("{e:#}"));
    let images_took = started.elapsed();
    eprintln!(
        "scripts/images in {:.1} s:\n{built}",
        images_took.as_secs_f64()
    );
    let bed = bed(2);
    ensure_dnsmasq_image().expect("dnsmasq image");
    let domain = format!("bed{}.test", bed.slot());
    let (dns, master, node) = (
        bed.container_name("dns"),
        bed.container_name("puppet"),
        bed.container_name("web"),
    );
    let (master_fqdn, node_fqdn) = (format!("{master}.{domain}"), format!("{node}.{domain}"));
    let dns_ip = bed.subnet_ip(2);

    // The master's production environment, a volume from host 0's files
    // that the registration edits.
    let production = bed.dir().join("puppet/production");
    let (sitepp, hieradata) = (
        production.join("manifests/site.pp"),
        production.join("data/common.yaml"),
    );
    fs::create_dir_all(sitepp.parent().unwrap()).unwrap();
    fs::create_dir_all(hieradata.parent().unwrap()).unwrap();
    fs::write(&sitepp, SITE_PP).unwrap();
    fs::write(&hieradata, COMMON_YAML).unwrap();
    let dns_dir = bed.dir().join("dns");
    let hostsfile = dns_dir.join("dockstack.dns");

    let mut dns_c = BedContainer::new(&dns, 0, dns_ip).with_yaml(&format!(
        "domain: {domain}\nstep: 1\nvolumes:\n- {}:/etc/dnsmasq.d\n\
         command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
         --addn-hosts=/etc/dnsmasq.d/dockstack.dns --log-facility=- --user=root \
         --local=/{domain}/",
        dns_dir.display()
    ));
    dns_c.image = DNSMASQ_IMAGE.to_string();
    let mut master_c = BedContainer::new(&master, 0, bed.subnet_ip(3)).with_yaml(&format!(
        "domain: {domain}\nstep: 2\n\
         volumes:\n- {}:/etc/puppet/code/environments/production\n\
         healthcheck:\n  test: [CMD, /usr/local/bin/healthcheck]\n  interval: 3s\n  \
         timeout: 5s\n  retries: 3\n  start_period: 20m\n\
         stop_grace_period: 30s",
        production.display()
    ));
    master_c.image = "dockstack/puppetserver:latest".into();
    let mut node_c = BedContainer::new(&node, 1, bed.subnet_ip(4)).with_yaml(&format!(
        "domain: {domain}\nservice: web\nstep: 3\ndns: [{dns_ip}]"
    ));
    node_c.image = "dockstack/puppet-agent:latest".into();
    let registration = format!(
        "  dns:\n    container: {dns}\n    hostsfile: {}\n  \
         puppet:\n    master: {master}\n    hieradata: {}\n    sitepp: {}\n    \
         certclean: puppetserver ca clean --certname {{fqdn}}\n    \
         agent: puppet agent -t --server {master_fqdn}\n",
        hostsfile.display(),
        hieradata.display(),
        sitepp.display()
    );
    let env = bed.write_registered_environment(
        "environment.yaml",
        &[dns_c, master_c, node_c],
        &registration,
    );

    // apply: the master is waited healthy before the node is made.
    let t = Instant::now();
    let out = ok(&bed, &env, &["apply", "--yes"]);
    let apply_took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let master_start = server_start(&master);
    assert!(
        stdout.contains(&format!("File[{MANAGED_FILE}]/ensure: defined content")),
        "the agent's run in the node applied no catalog with the file: {}",
        text(&out)
    );

    // The master's files carry the node.
    let site = read(&sitepp);
    assert!(
        site.contains(&format!("node 'web' ,'{node_fqdn}' {{\n")),
        "{site}"
    );
    assert_eq!(
        read(&hieradata),
        format!("registered_services:\n  web:\n  - web0\n  - {node}\n")
    );
    // The catalog's file lists the service's members as hieradata does.
    assert_eq!(
        docker_exec(&node, &["cat", MANAGED_FILE]),
        format!("web: web0 {node}\n")
    );
    assert!(
        ca_list(&master).contains(&node_fqdn),
        "the master's CA has no certificate of {node_fqdn}"
    );

    // The agent again, as an operator would run it: the catalog applies.
    let t = Instant::now();
    let (code, agent_out) =
        exec_status(&node, &["puppet", "agent", "-t", "--server", &master_fqdn]);
    let agent_took = t.elapsed();
    assert!(
        matches!(code, Some(0 | 2)),
        "puppet agent -t in {node}: {agent_out}"
    );

    // destroy: the certificate is cleaned on the master, the lines go.
    let t = Instant::now();
    let out = ok(&bed, &env, &["-c", &node, "destroy"]);
    let destroy_took = t.elapsed();
    let listed = ca_list(&master);
    assert!(
        !listed.contains(&node_fqdn),
        "{node_fqdn}'s certificate is still on the master after destroy: {listed}\n{}",
        text(&out)
    );
    assert!(
        listed.contains(&master_fqdn),
        "the master's own certificate is not listed: {listed}"
    );
    assert_eq!(read(&sitepp), SITE_PP);
    assert_eq!(read(&hieradata), COMMON_YAML);
    assert!(
        !read(&hostsfile).contains(&node_fqdn),
        "{}",
        read(&hostsfile)
    );

    ok(&bed, &env, &["destroy"]);
    assert_eq!(bed.managed_containers(0), Vec::<String>::new());
    assert_eq!(bed.managed_containers(1), Vec::<String>::new());
    eprintln!(
        "e2e_puppet: images {:.1} s, apply {:.1} s (the master up and healthy {}), \
         agent again {:.1} s (exit {code:?}), destroy of the node {:.1} s, all {:.1} s",
        images_took.as_secs_f64(),
        apply_took.as_secs_f64(),
        master_start.map_or_else(
            |e| format!("?: {e}"),
            |s| format!("{s:.1} s after its start")
        ),
        agent_took.as_secs_f64(),
        destroy_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
