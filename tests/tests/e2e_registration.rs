//! End to end: DNS and Puppet registration on the host that runs the DNS
//! container or the Puppet master, through client and servers on the test
//! bed, with a real dnsmasq answering real queries.

use dockstack_tests::support::{bed, dockstack, ok, read, text};
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use dockstack_tests::testbed::{
    BedContainer, DNSMASQ_IMAGE, TestBed, docker, ensure_dnsmasq_image,
};

/// The 2015 project's files, as the registration library's own tests read them.
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/dockstack-2015/"
);

/// `dig` from host 0 against the bed's dnsmasq: the answers of `+short`.
fn dig_short(bed: &TestBed, server: Ipv4Addr, name: &str) -> String {
    let at = format!("@{server}");
    let out = bed.exec_in_host(0, &["dig", "+short", "+time=1", "+tries=1", &at, name, "A"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The status of the answer (`NOERROR`, `NXDOMAIN`, ...), or what dig said.
fn dig_status(bed: &TestBed, server: Ipv4Addr, name: &str) -> String {
    let at = format!("@{server}");
    let out = bed.exec_in_host(
        0,
        &[
            "dig",
            "+noall",
            "+comments",
            "+time=1",
            "+tries=1",
            &at,
            name,
            "A",
        ],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    shown
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(str::to_string)
        .unwrap_or_else(|| format!("no answer: {}", text(&out)))
}

/// Asks until `check` holds, for up to 3 s (dnsmasq reloads on SIGHUP, asynchronously).
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => sleep(Duration::from_millis(200)),
        }
    }
}

fn resolves(bed: &TestBed, server: Ipv4Addr, name: &str, ip: Ipv4Addr) {
    eventually(&format!("{name} via {server}"), || {
        let got = dig_short(bed, server, name);
        if got == ip.to_string() {
            Ok(())
        } else {
            Err(format!(
                "dig +short says {got:?}, want {ip} (status {})",
                dig_status(bed, server, name)
            ))
        }
    });
}

fn nxdomain(bed: &TestBed, server: Ipv4Addr, name: &str) {
    eventually(&format!("{name} via {server}"), || {
        match dig_status(bed, server, name) {
            s if s == "NXDOMAIN" => Ok(()),
            s => Err(format!("status {s}, want NXDOMAIN")),
        }
    });
}

/// Lines of the hosts file that name `fqdn`.
fn lines_naming(hostsfile: &Path, fqdn: &str) -> Vec<String> {
    let text = fs::read_to_string(hostsfile).unwrap_or_default();
    text.lines()
        .filter(|l| l.split_whitespace().skip(1).any(|n| n == fqdn))
        .map(str::to_string)
        .collect()
}

#[test]
fn registration_in_dnsmasq_follows_run_destroy_register_and_deregister() {
    let bed = bed(2);
    ensure_dnsmasq_image().expect("dnsmasq image");
    let domain = format!("bed{}.test", bed.slot());
    let (dns, web, web2) = (
        bed.container_name("dns"),
        bed.container_name("web"),
        bed.container_name("web2"),
    );
    let (dns_ip, web_ip, web2_ip) = (bed.subnet_ip(2), bed.subnet_ip(20), bed.subnet_ip(21));
    let dns_dir = bed.dir().join("dns");
    let hostsfile = dns_dir.join("dockstack.dns");
    let mut dns_c = BedContainer::new(&dns, 0, dns_ip).with_yaml(&format!(
        "domain: {domain}\nvolumes:\n- {}:/etc/dnsmasq.d\n\
         command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
         --addn-hosts=/etc/dnsmasq.d/dockstack.dns --log-facility=- --user=root \
         --local=/{domain}/",
        dns_dir.display()
    ));
    // `--local`: dnsmasq answers for the bed's domain alone, so a name it
    // does not know is NXDOMAIN rather than REFUSED for want of an upstream.
    dns_c.image = DNSMASQ_IMAGE.to_string();
    let web_c = BedContainer::new(&web, 1, web_ip).with_yaml(&format!("domain: {domain}"));
    let web2_c = BedContainer::new(&web2, 1, web2_ip).with_yaml(&format!("domain: {domain}"));
    let registration = format!(
        "  dns:\n    container: {dns}\n    hostsfile: {}\n",
        hostsfile.display()
    );
    let env = bed.write_registered_environment(
        "environment.yaml",
        &[dns_c.clone(), web_c.clone()],
        &registration,
    );
    let (web_fqdn, dns_fqdn) = (format!("{web}.{domain}"), format!("{dns}.{domain}"));

    // Run everything: the DNS container first (it registers itself in the
    // hosts file, which does not exist yet), then the web container.
    let out = ok(&bed, &env, &["run"]);
    assert_eq!(
        lines_naming(&hostsfile, &web_fqdn),
        vec![format!("{web_ip} {web_fqdn}")],
        "{}",
        text(&out)
    );
    assert_eq!(
        lines_naming(&hostsfile, &dns_fqdn),
        vec![format!("{dns_ip} {dns_fqdn}")]
    );
    resolves(&bed, dns_ip, &web_fqdn, web_ip);
    resolves(&bed, dns_ip, &dns_fqdn, dns_ip);

    // Again: nothing changes, nothing is duplicated.
    let before = read(&hostsfile);
    ok(&bed, &env, &["run"]);
    assert_eq!(
        read(&hostsfile),
        before,
        "a second run changed the hosts file"
    );

    // Repair by hand: deregister alone, then register alone; the container stays.
    ok(&bed, &env, &["-c", &web, "deregister"]);
    assert_eq!(lines_naming(&hostsfile, &web_fqdn), Vec::<String>::new());
    nxdomain(&bed, dns_ip, &web_fqdn);
    assert_eq!(bed.managed_apps(1), vec![web.clone()]);
    ok(&bed, &env, &["-c", &web, "register"]);
    assert_eq!(
        lines_naming(&hostsfile, &web_fqdn),
        vec![format!("{web_ip} {web_fqdn}")]
    );
    resolves(&bed, dns_ip, &web_fqdn, web_ip);

    // Destroy takes the name out of DNS.
    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_eq!(lines_naming(&hostsfile, &web_fqdn), Vec::<String>::new());
    nxdomain(&bed, dns_ip, &web_fqdn);
    resolves(&bed, dns_ip, &dns_fqdn, dns_ip);

    // With the DNS container stopped, a run says so and keeps its container.
    docker(&["stop", "-t", "1", &dns]).expect("docker stop");
    let env2 = bed.write_registered_environment(
        "environment2.yaml",
        &[dns_c, web_c, web2_c],
        &registration,
    );
    let out = dockstack(&bed, &env2, &["-c", &web2, "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "dns container {dns} is not running on host {}",
            bed.host(0).name()
        )),
        "the error does not name the DNS container and its host: {}",
        text(&out)
    );
    assert!(stderr.contains("registration failed"), "{}", text(&out));
    assert_eq!(bed.managed_apps(1), vec![web2.clone()]);
    assert_eq!(
        lines_naming(&hostsfile, &format!("{web2}.{domain}")),
        Vec::<String>::new()
    );

    // Back up: register repairs; destroying everything empties the file.
    ok(&bed, &env2, &["-c", &dns, "start"]);
    ok(&bed, &env2, &["-c", &web2, "register"]);
    resolves(&bed, dns_ip, &format!("{web2}.{domain}"), web2_ip);
    ok(&bed, &env2, &["destroy"]);
    assert_eq!(
        read(&hostsfile).trim(),
        "",
        "entries left in the hosts file"
    );
    assert_eq!(bed.managed_containers(0), Vec::<String>::new());
    assert_eq!(bed.managed_containers(1), Vec::<String>::new());
}

#[test]
fn registration_in_puppet_edits_the_masters_files_and_runs_its_commands() {
    let bed = bed(2);
    let domain = format!("bed{}.test", bed.slot());
    let (master, web, web2) = (
        bed.container_name("puppet"),
        bed.container_name("web"),
        bed.container_name("web2"),
    );
    let (web_fqdn, web2_fqdn) = (format!("{web}.{domain}"), format!("{web2}.{domain}"));
    let dir = bed.dir().join("puppet");
    fs::create_dir_all(&dir).expect("puppet dir");
    let (hieradata, sitepp) = (dir.join("common.yaml"), dir.join("site.pp"));
    let hiera_0 = read(&Path::new(FIXTURES).join("common-registered.yaml"));
    let site_0 = read(&Path::new(FIXTURES).join("site.pp"));
    fs::write(&hieradata, &hiera_0).expect("hieradata");
    fs::write(&sitepp, &site_0).expect("site.pp");

    let containers = [
        // The master sees its files through a volume, as a real one would.
        BedContainer::new(&master, 0, bed.subnet_ip(30))
            .with_yaml(&format!("volumes:\n- {}:/etc/puppet", dir.display())),
        BedContainer::new(&web, 1, bed.subnet_ip(31))
            .with_yaml(&format!("domain: {domain}\nservice: haproxy")),
        // A service in hieradata without a node line in site.pp.
        BedContainer::new(&web2, 1, bed.subnet_ip(32))
            .with_yaml(&format!("domain: {domain}\nservice: dns")),
    ];
    let registration = format!(
        "  puppet:\n    master: {master}\n    hieradata: {}\n    sitepp: {}\n    \
         certclean: /bin/sh -c 'echo certclean {{fqdn}} in $(hostname)'\n    \
         agent: /bin/sh -c 'echo agent {{fqdn}} {{ip}} in $(hostname)'\n",
        hieradata.display(),
        sitepp.display()
    );
    let env = bed.write_registered_environment("environment.yaml", &containers, &registration);

    let out = ok(&bed, &env, &["run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("| certclean {web_fqdn} in {master}")),
        "cert clean did not run in the master: {}",
        text(&out)
    );
    assert!(
        stdout.contains(&format!(
            "| agent {web_fqdn} {} in {web}",
            bed.subnet_ip(31)
        )),
        "the agent did not run in the new container: {}",
        text(&out)
    );
    assert!(
        stdout.contains("no node 'dns' line"),
        "no warning for a service without a node line: {}",
        text(&out)
    );
    let hiera_1 = read(&hieradata);
    assert!(
        hiera_1.contains(&format!("  haproxy:\n  - haproxy1\n  - {web}\n")),
        "{hiera_1}"
    );
    assert!(
        hiera_1.contains(&format!("  dns:\n  - {web2}\n")),
        "{hiera_1}"
    );
    let site_1 = read(&sitepp);
    assert!(
        site_1.contains(&format!(
            "node 'haproxy' ,'haproxy1.endor.lab' ,'{web_fqdn}' {{\n"
        )),
        "{site_1}"
    );
    assert!(!site_1.contains(&web2_fqdn), "{site_1}");

    // Again: the files stay as they are, and an existing container's
    // certificate is left alone (the agent runs again).
    let out = ok(&bed, &env, &["run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("| certclean"), "{}", text(&out));
    assert!(
        stdout.contains(&format!("| agent {web_fqdn}")),
        "{}",
        text(&out)
    );
    assert_eq!(read(&hieradata), hiera_1);
    assert_eq!(read(&sitepp), site_1);

    // Malformed hieradata is refused with its file and line, untouched.
    let broken = hiera_0.replacen("  redis:\n", "  redis:\n\t- redis0\n", 1);
    fs::write(&hieradata, &broken).expect("hieradata");
    let out = dockstack(&bed, &env, &["-c", &web, "register"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: line 24: ", hieradata.display())),
        "{}",
        text(&out)
    );
    assert_eq!(read(&hieradata), broken);
    fs::write(&hieradata, &hiera_1).expect("hieradata");

    // A file the master cannot see is refused, and left alone.
    let elsewhere = bed.dir().join("elsewhere.pp");
    fs::write(&elsewhere, &site_0).expect("site.pp elsewhere");
    let registration_elsewhere = registration.replace(
        &sitepp.display().to_string(),
        &elsewhere.display().to_string(),
    );
    let env_elsewhere =
        bed.write_registered_environment("elsewhere.yaml", &containers, &registration_elsewhere);
    let out = dockstack(&bed, &env_elsewhere, &["-c", &web, "register"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{} is in no volume of puppet master {master} on host {}",
            elsewhere.display(),
            bed.host(0).name()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(read(&elsewhere), site_0);
    assert_eq!(read(&hieradata), hiera_1);

    // Destroying everything gives the 2015 files back byte for byte.
    let out = ok(&bed, &env, &["destroy"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("| certclean {web_fqdn} in {master}")),
        "no cert clean after destroy: {}",
        text(&out)
    );
    assert_eq!(read(&hieradata), hiera_0);
    assert_eq!(read(&sitepp), site_0);
}
