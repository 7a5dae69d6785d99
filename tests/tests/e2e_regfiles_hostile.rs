//! End to end: a hostile DNS container against the root server that edits
//! files in its volume. What it plants there from the inside (a symlink in
//! the lock's place or the hosts file's, a lock it never lets go of) must
//! not make the server touch a file outside the volume, nor stop
//! registrations for good; and a deregistration without its registry
//! container edits nothing.

use std::fs;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use dockstack_tests::support::{docker_exec, read, text};
use dockstack_tests::testbed::{
    BedContainer, BedOptions, DNSMASQ_IMAGE, TestBed, docker, ensure_dnsmasq_image,
    ensure_test_image,
};

/// The lock timeout the bed's servers get, in milliseconds.
const LOCK_TIMEOUT_MS: u64 = 1500;

/// A one-host bed whose server waits [`LOCK_TIMEOUT_MS`] for a lock.
fn bed() -> TestBed {
    ensure_test_image().expect("test image");
    ensure_dnsmasq_image().expect("dnsmasq image");
    TestBed::new(BedOptions {
        server_env: vec![(
            "DOCKSTACK_LOCK_TIMEOUT_MS".to_string(),
            LOCK_TIMEOUT_MS.to_string(),
        )],
        ..BedOptions::hosts(1)
    })
    .expect("test bed")
}

/// A DNS container, a web container and the registration of both, on host 0.
struct Dns {
    env: PathBuf,
    dns: String,
    web: String,
    web_ip: Ipv4Addr,
    dns_ip: Ipv4Addr,
    web_fqdn: String,
    dns_fqdn: String,
    /// The volume, as the host sees it, and the hosts file in it.
    dir: PathBuf,
    hostsfile: PathBuf,
    containers: Vec<BedContainer>,
}

impl Dns {
    /// Writes the environment and runs both containers.
    fn up(bed: &TestBed) -> Self {
        let domain = format!("bed{}.test", bed.slot());
        let (dns, web) = (bed.container_name("dns"), bed.container_name("web"));
        let (dns_ip, web_ip) = (bed.subnet_ip(2), bed.subnet_ip(20));
        let dir = bed.dir().join("dns");
        let hostsfile = dir.join("dockstack.dns");
        let mut dns_c = BedContainer::new(&dns, 0, dns_ip).with_yaml(&format!(
            "domain: {domain}\nvolumes:\n- {}:/etc/dnsmasq.d\n\
             command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
             --addn-hosts=/etc/dnsmasq.d/dockstack.dns --log-facility=- --user=root \
             --local=/{domain}/",
            dir.display()
        ));
        dns_c.image = DNSMASQ_IMAGE.to_string();
        let web_c = BedContainer::new(&web, 0, web_ip).with_yaml(&format!("domain: {domain}"));
        let containers = vec![dns_c, web_c];
        let registration = format!(
            "  dns:\n    container: {dns}\n    hostsfile: {}\n",
            hostsfile.display()
        );
        let env = bed.write_registered_environment("environment.yaml", &containers, &registration);
        let out = ok(bed, &env, &["run"]);
        let d = Dns {
            env,
            web_fqdn: format!("{web}.{domain}"),
            dns_fqdn: format!("{dns}.{domain}"),
            dns,
            web,
            web_ip,
            dns_ip,
            dir,
            hostsfile,
            containers,
        };
        assert_eq!(
            read(&d.hostsfile),
            format!("{dns_ip} {}\n{web_ip} {}\n", d.dns_fqdn, d.web_fqdn),
            "{}",
            text(&out)
        );
        d
    }

    /// The volume's `name` as the container sees it.
    fn inside(&self, name: &str) -> String {
        format!("/etc/dnsmasq.d/{name}")
    }

    fn lockfile(&self) -> PathBuf {
        self.dir.join(".dockstack.dns.lock")
    }
}

/// A file outside every volume, and its bytes as the test wrote them.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Victim {
    fn new(bed: &TestBed, name: &str, contents: &str) -> Self {
        let path = bed.dir().join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Victim {
            path,
            bytes: contents.as_bytes().to_vec(),
        }
    }

    fn untouched(&self, after: &str) {
        let now = fs::read(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        assert!(
            now == self.bytes,
            "{} changed after {after}: {:?}, was {:?}",
            self.path.display(),
            String::from_utf8_lossy(&now),
            String::from_utf8_lossy(&self.bytes)
        );
    }
}

/// `dockstack -f ENV ARGS`; one that takes over a minute is killed and
/// fails the test with what it said, rather than hanging it.
fn dockstack(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    let mut child = bed.spawn_client(env, args);
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for dockstack") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = Output {
                status: std::process::ExitStatus::default(),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
            panic!("dockstack {args:?} hung for a minute: {}", text(&out));
        }
        sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// `dockstack ARGS` that must succeed.
fn ok(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    let out = dockstack(bed, env, args);
    assert!(out.status.success(), "dockstack {args:?}: {}", text(&out));
    out
}

/// `dockstack ARGS` that must fail with `expected` in its stderr.
fn fails(bed: &TestBed, env: &Path, args: &[&str], expected: &str) -> Output {
    let out = dockstack(bed, env, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "dockstack {args:?}: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(expected),
        "dockstack {args:?} does not say {expected:?}: {}",
        text(&out)
    );
    out
}

/// `dig +short` from host 0 against `server`, for up to 3 s until it says `want`.
fn resolves(bed: &TestBed, server: Ipv4Addr, name: &str, want: Ipv4Addr) {
    let at = format!("@{server}");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = bed.exec_in_host(0, &["dig", "+short", "+time=1", "+tries=1", &at, name, "A"]);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got == want.to_string() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} via {server}: dig +short says {got:?}, want {want}"
        );
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn symlinks_planted_by_the_dns_container_are_refused_not_followed() {
    let bed = bed();
    let d = Dns::up(&bed);
    let hosts_0 = read(&d.hostsfile);

    // The lock replaced by a symlink to a file outside the volume...
    let victim = Victim::new(&bed, "victim.txt", "a file of the host's\n");
    docker_exec(
        &d.dns,
        &[
            "ln",
            "-sf",
            &victim.path.display().to_string(),
            &d.inside(".dockstack.dns.lock"),
        ],
    );
    let refused = format!("{}: is a symbolic link", d.lockfile().display());
    fails(&bed, &d.env, &["-c", &d.web, "deregister"], &refused);
    victim.untouched("deregister with a planted lock symlink");
    assert_eq!(read(&d.hostsfile), hosts_0);

    // ... or to one that does not exist: the server used to create it.
    let nologin = bed.dir().join("nologin");
    docker_exec(
        &d.dns,
        &[
            "ln",
            "-sf",
            &nologin.display().to_string(),
            &d.inside(".dockstack.dns.lock"),
        ],
    );
    fails(&bed, &d.env, &["-c", &d.dns, "register"], &refused);
    assert!(
        fs::symlink_metadata(&nologin).is_err(),
        "{} was created through the lock symlink",
        nologin.display()
    );
    assert_eq!(read(&d.hostsfile), hosts_0);
    docker_exec(&d.dns, &["rm", &d.inside(".dockstack.dns.lock")]);

    // The hosts file swapped for a symlink to a hosts file outside: neither
    // a removal nor an addition may rewrite it.
    let outside = Victim::new(
        &bed,
        "victim.hosts",
        &format!(
            "# the host's\n10.9.9.9 other.test\n{} {}\n",
            d.web_ip, d.web_fqdn
        ),
    );
    docker_exec(
        &d.dns,
        &[
            "ln",
            "-sf",
            &outside.path.display().to_string(),
            &d.inside("dockstack.dns"),
        ],
    );
    let refused = format!("{}: is a symbolic link", d.hostsfile.display());
    fails(&bed, &d.env, &["-c", &d.web, "deregister"], &refused);
    outside.untouched("deregister with the hosts file swapped for a symlink");
    fails(&bed, &d.env, &["-c", &d.dns, "register"], &refused);
    outside.untouched("register with the hosts file swapped for a symlink");
    fails(&bed, &d.env, &["-c", &d.web, "destroy"], &refused);
    outside.untouched("destroy with the hosts file swapped for a symlink");
    assert_eq!(
        fs::read_link(&d.hostsfile).expect("the planted link"),
        outside.path,
        "the planted link was replaced"
    );

    // The container takes its link away: registration works again.
    docker_exec(&d.dns, &["rm", &d.inside("dockstack.dns")]);
    ok(&bed, &d.env, &["-c", &d.dns, "register"]);
    ok(&bed, &d.env, &["-c", &d.web, "run"]);
    assert_eq!(
        read(&d.hostsfile),
        format!("{} {}\n{} {}\n", d.dns_ip, d.dns_fqdn, d.web_ip, d.web_fqdn)
    );
    resolves(&bed, d.dns_ip, &d.web_fqdn, d.web_ip);
    outside.untouched("the repair");
    victim.untouched("the repair");
}

/// `flock -n` from the host: whether someone holds `lock`.
fn lock_is_held(lock: &Path) -> bool {
    let status = Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(lock)
        .arg("true")
        .status()
        .expect("run flock");
    status.code() == Some(99)
}

#[test]
fn a_lock_held_forever_times_out_and_deregister_needs_its_registry_container() {
    let bed = bed();
    let d = Dns::up(&bed);
    let hosts_0 = read(&d.hostsfile);

    // The DNS container takes the lock and never lets go (busybox has no
    // flock: the host's, which needs only the libc the image has).
    docker(&["cp", "/usr/bin/flock", &format!("{}:/bin/flock", d.dns)]).expect("docker cp");
    docker(&[
        "exec",
        "-d",
        &d.dns,
        "sh",
        "-c",
        &format!(
            "echo $$ > /holder.pid; exec flock -o {} sleep 1000",
            d.inside(".dockstack.dns.lock")
        ),
    ])
    .expect("docker exec -d flock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock_is_held(&d.lockfile()) {
        assert!(
            Instant::now() < deadline,
            "the container never took the lock"
        );
        sleep(Duration::from_millis(100));
    }

    let held = format!(
        "cannot lock {}: someone else holds it; gave up after {}s",
        d.lockfile().display(),
        Duration::from_millis(LOCK_TIMEOUT_MS).as_secs_f64()
    );
    for action in ["register", "deregister"] {
        let started = Instant::now();
        fails(&bed, &d.env, &["-c", &d.web, action], &held);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(LOCK_TIMEOUT_MS) && took < Duration::from_secs(15),
            "{action} gave up after {took:?}"
        );
    }
    assert_eq!(read(&d.hostsfile), hosts_0);

    // Let go: the next edit goes through.
    docker_exec(&d.dns, &["sh", "-c", "kill $(cat /holder.pid)"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock_is_held(&d.lockfile()) {
        assert!(Instant::now() < deadline, "the lock was not released");
        sleep(Duration::from_millis(100));
    }
    ok(&bed, &d.env, &["-c", &d.web, "deregister"]);
    assert_eq!(read(&d.hostsfile), format!("{} {}\n", d.dns_ip, d.dns_fqdn));

    // A registry container that does not exist: nothing can be checked,
    // so nothing is edited, whatever file the request names.
    let gone = bed.container_name("gone");
    let gone_ip = bed.subnet_ip(40);
    let domain = format!("bed{}.test", bed.slot());
    let gone_fqdn = format!("{gone}.{domain}");
    let outside = Victim::new(
        &bed,
        "victim.hosts",
        &format!(
            "# the host's\n{} {}\n{gone_ip} {gone_fqdn}\n",
            d.web_ip, d.web_fqdn
        ),
    );
    let gone_c = BedContainer::new(&gone, 0, gone_ip).with_yaml(&format!("domain: {domain}"));
    let web_c = d.containers[1].clone();
    let env_gone = bed.write_registered_environment(
        "gone.yaml",
        &[gone_c.clone(), web_c.clone()],
        &format!(
            "  dns:\n    container: {gone}\n    hostsfile: {}\n",
            outside.path.display()
        ),
    );
    let host = bed.host(0).name().to_string();
    fails(
        &bed,
        &env_gone,
        &["-c", &d.web, "deregister"],
        &format!("dns container {gone} is not running on host {host} (absent: nothing is edited"),
    );
    outside.untouched("deregister with an absent dns container");
    // Nor for the registry container's own deregistration, by a server
    // that never saw its volumes.
    fails(
        &bed,
        &env_gone,
        &["-c", &gone, "deregister"],
        &format!(
            "dns container {gone} is not running on host {host} (absent: its volumes were never seen"
        ),
    );
    outside.untouched("the absent dns container's own deregistration");

    // The same for an absent Puppet master.
    let hiera = Victim::new(
        &bed,
        "victim-common.yaml",
        &format!("registered_services:\n  web:\n  - {}\n", d.web),
    );
    let site = Victim::new(
        &bed,
        "victim-site.pp",
        &format!("node 'web' ,'{}' {{\n}}\n", d.web_fqdn),
    );
    let web_svc = web_c.clone().with_yaml("service: web");
    let env_puppet = bed.write_registered_environment(
        "gone-puppet.yaml",
        &[gone_c, web_svc],
        &format!(
            "  puppet:\n    master: {gone}\n    hieradata: {}\n    sitepp: {}\n    \
             certclean: 'true'\n    agent: 'true'\n",
            hiera.path.display(),
            site.path.display()
        ),
    );
    fails(
        &bed,
        &env_puppet,
        &["-c", &d.web, "deregister"],
        &format!("puppet master {gone} is not running on host {host} (absent: nothing is edited"),
    );
    hiera.untouched("deregister with an absent puppet master");
    site.untouched("deregister with an absent puppet master");

    // Destroying the DNS container last takes its own line out, checked
    // against its volumes as the server saw them before it went.
    ok(&bed, &d.env, &["destroy"]);
    assert_eq!(read(&d.hostsfile), "", "entries left in the hosts file");
    outside.untouched("destroy");
}
