//! The Debian packages from `scripts/package`, installed on this machine
//! with `dpkg -i`: the files land where the unit, the README and the man
//! page say, the unit's own command line (its EnvironmentFile and
//! ExecStart, as systemd would run them; this machine's PID 1 is not
//! systemd) serves a container run by the packaged client, and a purge
//! leaves nothing behind. Runs alone (scripts/test): it installs into /usr
//! and /etc, and a purge removes /var/lib/dockstack.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use dockstack_tests::support::{answers_within, text};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, check_root, ensure_test_image};

const PACKAGES: [&str; 2] = ["dockstack", "dockstack-server"];

fn installed(package: &str) -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
}

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(out.status.success(), "{argv:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the packages however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").arg("--purge").args(PACKAGES).status();
    }
}

/// Files the packages install, which a purge must take away.
const FILES: [&str; 12] = [
    "/usr/bin/dockstack-server",
    "/usr/bin/netplug",
    "/usr/bin/dockstack",
    "/etc/default/dockstack-server",
    "/etc/dockstack/policy.yaml",
    "/usr/share/man/man1/dockstack.1.gz",
    "/usr/share/bash-completion/completions/dockstack",
    "/usr/share/zsh/vendor-completions/_dockstack",
    "/usr/share/fish/vendor_completions.d/dockstack.fish",
    "/usr/share/doc/dockstack-server/README.md",
    "/usr/share/doc/dockstack-server/docs/server.md",
    "/usr/share/doc/dockstack/docs/client.md",
];

fn unit_path() -> Option<PathBuf> {
    ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| Path::new(d).join("dockstack-server.service"))
        .find(|p| p.exists())
}

/// The packaged netplug is static-pie (see `.cargo/config.toml`): it names
/// no dynamic loader, and it runs, asking dockerd itself: of the running
/// container `name` it reports the bridge that is not there, and of one
/// that does not exist, just that.
fn packaged_netplug_is_static_and_asks_dockerd(name: &str) {
    const NETPLUG: &str = "/usr/bin/netplug";
    let elf = std::fs::read(NETPLUG).expect("read /usr/bin/netplug");
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    let phoff = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()))
        .expect("a program header offset that fits");
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    // PT_INTERP is program header type 3.
    let interp = (0..phnum).any(|i| elf[phoff + i * phentsize..][..4] == 3u32.to_le_bytes());
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01") && !interp,
        "{NETPLUG} is not a static-pie executable (it names a dynamic loader)"
    );
    let netplug = |container: &str| {
        Command::new(NETPLUG)
            .args([
                "--ovsdb=unix:/nonexistent/db.sock",
                "add-port",
                "dsnobr9",
                "eth9",
                container,
                "--ipaddress=10.99.0.2/24",
            ])
            .output()
            .expect("the packaged netplug")
    };
    let out = netplug(name);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("dsnobr9") && !err.contains("no such container"),
        "{}",
        text(&out)
    );
    let out = netplug("dockstack-package-no-such-container");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no such container"),
        "{}",
        text(&out)
    );
}

#[test]
fn package_installs_serves_a_container_through_its_unit_and_purges_cleanly() {
    check_root().expect("the package test installs packages");
    for p in PACKAGES {
        assert!(
            !installed(p),
            "{p} is installed on this machine already; this test installs and purges its own, so remove it first (dpkg --purge {p})"
        );
    }
    ensure_test_image().expect("test image");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A debug build: this test checks what the packages install and how the
    // unit runs, not the optimizer, and the suite has built the debug
    // binaries already, where a release build costs ~9 minutes on 2 CPUs.
    let out = Command::new(root.join("scripts/package"))
        .env("DOCKSTACK_PACKAGE_PROFILE", "dev")
        .output()
        .expect("scripts/package");
    assert!(out.status.success(), "scripts/package: {}", text(&out));
    let debs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(".deb"))
        .map(str::to_string)
        .collect();
    assert_eq!(debs.len(), 2, "{}", text(&out));

    let _purge = Purge;
    let mut dpkg = vec!["dpkg", "-i"];
    dpkg.extend(debs.iter().map(String::as_str));
    sh(&dpkg);
    for p in PACKAGES {
        assert!(installed(p), "{p} not installed");
    }
    for f in FILES {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    let tls = std::fs::metadata("/etc/dockstack/tls").expect("/etc/dockstack/tls");
    assert!(tls.is_dir());
    assert_eq!(tls.permissions().mode() & 0o777, 0o700);
    let man = sh(&["sh", "-c", "zcat /usr/share/man/man1/dockstack.1.gz"]);
    assert!(man.contains(".TH dockstack 1"), "{man}");
    assert!(
        man.contains("apply"),
        "the man page lists the subcommands: {man}"
    );
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/dockstack").unwrap();
    assert!(bash.contains("_dockstack()"), "{bash}");
    let version = sh(&["/usr/bin/dockstack-server", "--version"]);
    assert!(version.starts_with("dockstack-server "), "{version}");

    // The unit as systemd would run it: its EnvironmentFile read, its
    // ExecStart with the variables split on blanks.
    let unit_file = unit_path().expect("the systemd unit is installed");
    let unit = std::fs::read_to_string(&unit_file).unwrap();
    let line = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{} has no {key}", unit_file.display()))
            .to_string()
    };
    let exec_start = line("ExecStart=");
    let env_file = line("EnvironmentFile=");
    let env_file = env_file.trim_start_matches('-');
    assert_eq!(env_file, "/etc/default/dockstack-server");
    assert!(
        exec_start.starts_with("/usr/bin/dockstack-server listen "),
        "{exec_start}"
    );
    // What an operator would edit: here, the packaged policy file given
    // explicitly, so the server must read it (it is the built-in policy).
    std::fs::write(
        env_file,
        "DOCKSTACK_SERVER_ARGS=\"--policy /etc/dockstack/policy.yaml --log-format json\"\n",
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("dockstack-package-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("dockstack-server-unit");
    // The bed passes `listen` and then its own flags (address, port,
    // host id, OVSDB, TLS directory); ExecStart carries its own `listen`.
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nset -a\n. {env_file}\nset +a\nshift\nexec {exec_start} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let bed = TestBed::new(BedOptions {
        server_bin: Some(wrapper.clone()),
        ..BedOptions::hosts(1)
    })
    .expect("a test bed served by the packaged server");
    let log = bed.server_log(0);
    assert!(
        log.contains("\"policy in force\"") && log.contains("/etc/dockstack/policy.yaml"),
        "the unit's flags did not reach the server:\n{log}"
    );
    let name = bed.container_name("packaged");
    let ip = bed.subnet_ip(50);
    let env = bed.write_environment(&[BedContainer::new(&name, 0, ip)]);
    let client = |args: &[&str]| {
        Command::new("/usr/bin/dockstack")
            .arg("--tls-dir")
            .arg(bed.tls_dir())
            .arg("-f")
            .arg(&env)
            .args(args)
            .output()
            .expect("the packaged client")
    };
    let out = client(&["run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        answers_within(&bed, 0, ip, std::time::Duration::from_secs(5)),
        "{name} does not answer at {ip}"
    );
    packaged_netplug_is_static_and_asks_dockerd(&name);
    let out = client(&["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(bed);

    sh(&["dpkg", "--purge", "dockstack", "dockstack-server"]);
    for p in PACKAGES {
        assert!(!installed(p), "{p} still installed after the purge");
    }
    for f in FILES {
        assert!(!Path::new(f).exists(), "{f} left after the purge");
    }
    assert!(unit_path().is_none(), "the unit is left after the purge");
    assert!(
        !Path::new("/etc/dockstack").exists(),
        "/etc/dockstack left after the purge"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
