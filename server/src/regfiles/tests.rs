//! File-level tests of registration: golden edits of the 2015 fixtures,
//! `puppet parser validate` on edited manifests, locking under concurrency,
//! refusal of malformed files and atomic replacement.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use super::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/dockstack-2015/"
);

/// The 2015 project's dnsmasq addn-hosts file, by its original name (a
/// file name, not a Docker label).
const HOSTS_FILE: &str = "dockstack.dns";

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}{name}");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dockstack-registration-{label}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// Files other than targets and their lock files: leftovers of a write.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// `text` with `new` inserted right after the first occurrence of `after`.
fn insert_after(text: &str, after: &str, new: &str) -> String {
    let at = text
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} not in text"))
        + after.len();
    format!("{}{new}{}", &text[..at], &text[at..])
}

/// `text` with the first occurrence of `old` replaced.
fn replace_once(text: &str, old: &str, new: &str) -> String {
    assert!(text.contains(old), "{old:?} not in text");
    text.replacen(old, new, 1)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn golden_dns_fixture() {
    let orig = fixture(HOSTS_FILE);
    let dir = Scratch::new("dns");
    let path = dir.file(HOSTS_FILE, &orig);

    assert_eq!(
        dns_add(&path, ip("10.0.0.17"), "memcache1.endor.lab").unwrap(),
        Change::Added
    );
    assert_eq!(
        read(&path),
        format!("{orig}10.0.0.17 memcache1.endor.lab\n")
    );
    assert_eq!(
        dns_add(&path, ip("10.0.0.17"), "memcache1.endor.lab").unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        dns_remove(&path, "memcache1.endor.lab").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), orig);

    // Replacing keeps the line's place; the padded dns1 line stays padded.
    assert_eq!(
        dns_add(&path, ip("10.0.0.40"), "galera1.endor.lab").unwrap(),
        Change::Replaced
    );
    let replaced = replace_once(
        &orig,
        "10.0.0.4 galera1.endor.lab\n",
        "10.0.0.40 galera1.endor.lab\n",
    );
    assert_eq!(read(&path), replaced);
    assert!(read(&path).starts_with("10.0.0.1    dns1.endor.lab\n10.0.0.254  vip.endor.lab\n"));
    assert_eq!(
        dns_add(&path, ip("10.0.0.4"), "galera1.endor.lab").unwrap(),
        Change::Replaced
    );
    assert_eq!(read(&path), orig);

    assert_eq!(
        dns_remove(&path, "galera1.endor.lab").unwrap(),
        Change::Removed
    );
    assert_eq!(
        read(&path),
        replace_once(&orig, "10.0.0.4 galera1.endor.lab\n", "")
    );
    assert_eq!(
        dns_remove(&path, "galera1.endor.lab").unwrap(),
        Change::Unchanged
    );

    // Unchanged for a registered host with unusual spacing: no rewrite at all.
    fs::write(&path, &orig).unwrap();
    assert_eq!(
        dns_add(&path, ip("10.0.0.1"), "dns1.endor.lab").unwrap(),
        Change::Unchanged
    );
    assert_eq!(read(&path), orig);
    assert!(dir.leftovers().is_empty());
}

#[test]
fn golden_hieradata_registered_fixture() {
    let orig = fixture("common-registered.yaml");
    let dir = Scratch::new("hiera");
    let path = dir.file("common.yaml", &orig);

    assert_eq!(
        hiera_add(&path, "haproxy", "haproxy2").unwrap(),
        Change::Added
    );
    assert_eq!(
        read(&path),
        insert_after(&orig, "  haproxy:\n  - haproxy1\n", "  - haproxy2\n")
    );
    assert_eq!(
        hiera_add(&path, "haproxy", "haproxy2").unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        hiera_remove(&path, "haproxy", "haproxy2").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), orig);

    // Null becomes a list at the key's indentation, and null again.
    assert_eq!(hiera_add(&path, "redis", "redis1").unwrap(), Change::Added);
    assert_eq!(
        read(&path),
        insert_after(&orig, "  redis:\n", "  - redis1\n")
    );
    assert_eq!(
        hiera_remove(&path, "redis", "redis1").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), orig);
    assert_eq!(hiera_add(&path, "dns", "dns1").unwrap(), Change::Added);
    assert_eq!(read(&path), insert_after(&orig, "  dns:\n", "  - dns1\n"));
    assert_eq!(hiera_remove(&path, "dns", "dns1").unwrap(), Change::Removed);
    assert_eq!(read(&path), orig);

    // The only entry removed leaves `galera:` null, as PyYAML wrote it.
    assert_eq!(
        hiera_remove(&path, "galera", "galera1").unwrap(),
        Change::Removed
    );
    assert_eq!(
        read(&path),
        replace_once(&orig, "  galera:\n  - galera1\n", "  galera:\n")
    );
    assert_eq!(
        hiera_add(&path, "galera", "galera1").unwrap(),
        Change::Added
    );
    assert_eq!(read(&path), orig);

    // A new service goes at the end of the map; removing leaves it null.
    assert_eq!(
        hiera_add(&path, "memcache", "memcache1").unwrap(),
        Change::Added
    );
    assert_eq!(read(&path), format!("{orig}  memcache:\n  - memcache1\n"));
    assert_eq!(
        hiera_remove(&path, "memcache", "memcache1").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), format!("{orig}  memcache:\n"));
    assert!(dir.leftovers().is_empty());
}

#[test]
fn golden_hieradata_common_fixture() {
    let orig = fixture("common.yaml");
    let dir = Scratch::new("common");
    let path = dir.file("common.yaml", &orig);
    let section = orig.find("registered_services:\n").unwrap();
    let (head, tail) = orig.split_at(section);

    // `ha` and `haproxy` are different services.
    assert_eq!(hiera_add(&path, "ha", "ha2").unwrap(), Change::Added);
    assert_eq!(
        read(&path),
        format!(
            "{head}{}",
            insert_after(tail, "  ha:\n  - ha1\n", "  - ha2\n")
        )
    );
    assert_eq!(hiera_remove(&path, "ha", "ha2").unwrap(), Change::Removed);
    assert_eq!(read(&path), orig);

    // The `webui1` under common.webui_nodes is not the registered one.
    assert_eq!(
        hiera_remove(&path, "webui", "webui1").unwrap(),
        Change::Removed
    );
    assert_eq!(
        read(&path),
        format!("{head}{}", replace_once(tail, "  - webui1\n", ""))
    );
    assert_eq!(hiera_add(&path, "webui", "webui1").unwrap(), Change::Added);
    assert_eq!(read(&path), orig);

    assert_eq!(hiera_add(&path, "redis", "redis1").unwrap(), Change::Added);
    assert_eq!(read(&path), format!("{orig}  redis:\n  - redis1\n"));
    assert_eq!(
        hiera_remove(&path, "redis", "redis1").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), format!("{orig}  redis:\n"));

    // Everything but registered_services reads as before.
    let text = read(&path);
    let reg = hieradata::registered(&text).unwrap().unwrap();
    assert_eq!(reg["redis"], Vec::<String>::new());
    assert_eq!(reg["ha"], ["ha1"]);
    assert!(text.starts_with(head));
}

#[test]
fn golden_sitepp_fixture() {
    let orig = fixture("site.pp");
    let dir = Scratch::new("sitepp");
    let path = dir.file("site.pp", &orig);
    let added = SiteChange::Changed(Change::Added);
    let removed = SiteChange::Changed(Change::Removed);
    let unchanged = SiteChange::Changed(Change::Unchanged);

    assert_eq!(
        sitepp_add(&path, "haproxy", "haproxy2.endor.lab").unwrap(),
        added
    );
    assert_eq!(
        read(&path),
        replace_once(
            &orig,
            "node 'haproxy' ,'haproxy1.endor.lab' {\n",
            "node 'haproxy' ,'haproxy1.endor.lab' ,'haproxy2.endor.lab' {\n"
        )
    );
    assert_eq!(
        sitepp_add(&path, "haproxy", "haproxy2.endor.lab").unwrap(),
        unchanged
    );
    assert_eq!(
        sitepp_remove(&path, "haproxy", "haproxy2.endor.lab").unwrap(),
        removed
    );
    assert_eq!(read(&path), orig);

    assert_eq!(
        sitepp_add(&path, "redis", "redis1.endor.lab").unwrap(),
        added
    );
    assert_eq!(
        read(&path),
        replace_once(
            &orig,
            "node 'redis' {\n",
            "node 'redis' ,'redis1.endor.lab' {\n"
        )
    );
    assert_eq!(
        sitepp_remove(&path, "redis", "redis1.endor.lab").unwrap(),
        removed
    );
    assert_eq!(read(&path), orig);

    assert_eq!(
        sitepp_remove(&path, "compute", "compute1.endor.lab").unwrap(),
        removed
    );
    assert_eq!(
        read(&path),
        replace_once(
            &orig,
            "node 'compute' ,'compute1.endor.lab' ,'compute2.endor.lab' {\n",
            "node 'compute' ,'compute2.endor.lab' {\n"
        )
    );
    assert_eq!(
        sitepp_remove(&path, "compute", "compute1.endor.lab").unwrap(),
        unchanged
    );
    fs::write(&path, &orig).unwrap();

    // `keyston` is a node of its own, not a prefix match for `keystone`.
    assert_eq!(
        sitepp_add(&path, "keyston", "ks9.endor.lab").unwrap(),
        added
    );
    assert_eq!(
        read(&path),
        replace_once(
            &orig,
            "node 'keyston' {\n",
            "node 'keyston' ,'ks9.endor.lab' {\n"
        )
    );
    fs::write(&path, &orig).unwrap();

    assert_eq!(
        sitepp_add(&path, "memcache", "memcache1.endor.lab").unwrap(),
        SiteChange::NoNodeLine
    );
    assert_eq!(
        sitepp_remove(&path, "memcache", "memcache1.endor.lab").unwrap(),
        SiteChange::NoNodeLine
    );
    assert_eq!(read(&path), orig);

    let err = sitepp_add(&path, "redis", "haproxy1.endor.lab").unwrap_err();
    assert!(
        matches!(&err, RegistrationError::Conflict { line: 2, .. }),
        "{err}"
    );
    assert_eq!(read(&path), orig);
    assert!(dir.leftovers().is_empty());
}

/// Every manifest the editor produces must be accepted by Puppet itself.
#[test]
fn edited_sitepp_passes_puppet_parser_validate() {
    let orig = fixture("site.pp");
    let dir = Scratch::new("puppet");
    let mut files = Vec::new();
    let edits: &[(&str, &str, bool)] = &[
        ("haproxy", "haproxy2.endor.lab", true),
        ("redis", "redis1.endor.lab", true),
        ("openstack", "openstack1.endor.lab", true),
        ("compute", "compute3.endor.lab", true),
        ("compute", "compute1.endor.lab", false),
        ("compute", "compute2.endor.lab", false),
        ("webui", "webui1.endor.lab", false),
    ];
    // Each edit alone, and all of them applied one after another.
    let all = dir.file("all.pp", &orig);
    for (k, &(service, fqdn, add)) in edits.iter().enumerate() {
        let one = dir.file(&format!("edit{k}.pp"), &orig);
        for path in [&one, &all] {
            let change = if add {
                sitepp_add(path, service, fqdn)
            } else {
                sitepp_remove(path, service, fqdn)
            };
            assert!(
                matches!(
                    change,
                    Ok(SiteChange::Changed(Change::Added | Change::Removed))
                ),
                "{change:?}"
            );
        }
        assert_ne!(read(&one), orig);
        files.push(one);
    }
    files.push(all);

    let puppet = |files: &[PathBuf]| {
        Command::new("puppet")
            .args(["parser", "validate"])
            .args(files)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `puppet parser validate` ({e}): install Puppet, \
                     e.g. `apt-get install -y puppet` on Debian"
                )
            })
    };
    let out = puppet(&files);
    assert!(
        out.status.success(),
        "puppet parser validate refused an edited site.pp:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The check must be able to fail, or the test above proves nothing.
    let broken = dir.file(
        "broken.pp",
        &replace_once(&orig, "node 'redis' {\n", "node 'redis' ,'x {\n"),
    );
    assert!(!puppet(&[broken]).status.success());
}

#[test]
fn concurrent_registrations_lose_no_entry() {
    const N: usize = 50;
    let dir = Scratch::new("threads");
    let hosts = dir.0.join(HOSTS_FILE);
    let hiera = dir.file("common.yaml", &fixture("common-registered.yaml"));
    let site = dir.file("site.pp", &fixture("site.pp"));
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (hosts, hiera, site, barrier) =
                (hosts.clone(), hiera.clone(), site.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let ip = Ipv4Addr::new(10, 1, 0, u8::try_from(i + 1).unwrap());
                assert_eq!(
                    dns_add(&hosts, ip, &format!("web{i}.endor.lab")).unwrap(),
                    Change::Added
                );
                assert_eq!(
                    hiera_add(&hiera, "web", &format!("web{i}")).unwrap(),
                    Change::Added
                );
                assert_eq!(
                    hiera_add(&hiera, "redis", &format!("redis{i}")).unwrap(),
                    Change::Added
                );
                let c = sitepp_add(&site, "compute", &format!("web{i}.endor.lab")).unwrap();
                assert_eq!(c, SiteChange::Changed(Change::Added));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let text = read(&hosts);
    assert_eq!(text.lines().count(), N);
    let reg = hieradata::registered(&read(&hiera)).unwrap().unwrap();
    let site_nodes = sitepp::parse(&read(&site)).unwrap();
    let compute = site_nodes
        .iter()
        .find(|n| n.names[0].value == "compute")
        .unwrap();
    for i in 0..N {
        let fqdn = format!("web{i}.endor.lab");
        assert_eq!(
            hosts::lookup(&text, &fqdn).unwrap(),
            Some(Ipv4Addr::new(10, 1, 0, u8::try_from(i + 1).unwrap()).into())
        );
        assert!(reg["web"].contains(&format!("web{i}")), "web{i} lost");
        assert!(reg["redis"].contains(&format!("redis{i}")), "redis{i} lost");
        assert!(compute.names.iter().any(|n| n.value == fqdn), "{fqdn} lost");
    }
    assert_eq!(reg["web"].len(), N);
    assert_eq!(reg["redis"].len(), N);
    assert!(dir.leftovers().is_empty());
}

/// One writer of `concurrent_processes_lose_no_entry`, in a child process.
fn write_entries(dir: &Path, id: u8) {
    for k in 0..10u8 {
        let name = format!("p{id}x{k}");
        let ip = Ipv4Addr::new(10, 2, id, k + 1);
        dns_add(&dir.join("hosts"), ip, &format!("{name}.lab")).unwrap();
        hiera_add(&dir.join("common.yaml"), "web", &name).unwrap();
    }
}

#[test]
fn concurrent_processes_lose_no_entry() {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    const PROCS: u8 = 5;
    let dir = Scratch::new("procs");
    let hiera = dir.file("common.yaml", "registered_services:\n  web:\n");
    let mut children = Vec::new();
    for id in 0..PROCS {
        // SAFETY: the child only does file I/O through the library and then
        // leaves with _exit, never returning into the test harness; glibc's
        // allocator is safe to use after fork.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let ok = std::panic::catch_unwind(|| write_entries(&dir.0, id)).is_ok();
                // SAFETY: _exit ends the child without running the parent's
                // destructors or atexit handlers a second time.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }
    for child in children {
        let status = waitpid(child, None).expect("waitpid");
        assert_eq!(
            status,
            WaitStatus::Exited(child, 0),
            "a writer process failed"
        );
    }
    let procs = usize::from(PROCS);
    let text = read(&dir.0.join("hosts"));
    let reg = hieradata::registered(&read(&hiera)).unwrap().unwrap();
    assert_eq!(text.lines().count(), procs * 10);
    assert_eq!(reg["web"].len(), procs * 10);
    for id in 0..procs {
        for k in 0..10 {
            assert!(reg["web"].contains(&format!("p{id}x{k}")));
            assert!(
                hosts::lookup(&text, &format!("p{id}x{k}.lab"))
                    .unwrap()
                    .is_some()
            );
        }
    }
}

#[test]
fn malformed_files_are_refused_and_left_untouched() {
    let dir = Scratch::new("malformed");
    let hosts = dir.file(HOSTS_FILE, "10.0.0.1 a.lab\n10.0.0.x b.lab\n");
    let hiera = dir.file(
        "common.yaml",
        &replace_once(
            &fixture("common-registered.yaml"),
            "  redis:\n",
            "  redis:\n\t- redis0\n",
        ),
    );
    let site = dir.file(
        "site.pp",
        &replace_once(&fixture("site.pp"), "node 'redis' {\n", "node 'redis {\n"),
    );
    let flow = dir.file("flow.yaml", "registered_services:\n  web: [\n    web1\n");
    let not_map = dir.file("notmap.yaml", "a: 1\nregistered_services:\n- web1\n");
    let cases: Vec<(&Path, usize, Result<(), RegistrationError>)> = vec![
        (
            &hosts,
            2,
            dns_add(&hosts, ip("10.0.0.3"), "c.lab").map(drop),
        ),
        (&hosts, 2, dns_remove(&hosts, "a.lab").map(drop)),
        (&hiera, 24, hiera_add(&hiera, "web", "web1").map(drop)),
        (
            &hiera,
            24,
            hiera_remove(&hiera, "haproxy", "haproxy1").map(drop),
        ),
        (&flow, 2, hiera_add(&flow, "web", "web2").map(drop)),
        (&not_map, 3, hiera_add(&not_map, "web", "web2").map(drop)),
        (
            &site,
            12,
            sitepp_add(&site, "haproxy", "haproxy2.endor.lab").map(drop),
        ),
        (
            &site,
            12,
            sitepp_remove(&site, "haproxy", "haproxy1.endor.lab").map(drop),
        ),
    ];
    for (path, line, result) in cases {
        let err = result.unwrap_err();
        match &err {
            RegistrationError::Malformed {
                path: p, line: l, ..
            } => {
                assert_eq!((p.as_path(), *l), (path, line), "{err}");
            }
            other => panic!("{}: expected malformed, got {other}", path.display()),
        }
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}: line {line}: ", path.display())),
            "{shown}"
        );
    }
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n10.0.0.x b.lab\n");
    assert!(read(&hiera).contains("  redis:\n\t- redis0\n"));
    assert!(read(&site).contains("node 'redis {\n"));
    assert!(dir.leftovers().is_empty());
}

#[test]
fn missing_files() {
    let dir = Scratch::new("missing");
    let hosts = dir.0.join(HOSTS_FILE);
    assert_eq!(dns_remove(&hosts, "a.lab").unwrap(), Change::Unchanged);
    assert!(
        !hosts.exists(),
        "removing from a missing file must not create it"
    );
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.1"), "a.lab").unwrap(),
        Change::Added
    );
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.1"), "a.lab").unwrap(),
        Change::Unchanged
    );

    let nodir = dir.0.join("no/such/dir/dockstack.dns");
    let err = dns_add(&nodir, ip("10.0.0.1"), "a.lab").unwrap_err();
    assert!(
        matches!(&err, RegistrationError::Io { path, .. } if path == &dir.0.join("no/such/dir")),
        "{err}"
    );
    assert!(err.to_string().contains("no/such/dir"), "{err}");

    let hiera = dir.0.join("common.yaml");
    let err = hiera_add(&hiera, "web", "web1").unwrap_err();
    assert!(
        matches!(&err, RegistrationError::Io { path, .. } if path == &hiera),
        "{err}"
    );
    let err = sitepp_add(&dir.0.join("site.pp"), "web", "web1.lab").unwrap_err();
    assert!(matches!(err, RegistrationError::Io { .. }), "{err}");
}

#[test]
fn replace_keeps_mode_and_symlinks() {
    let dir = Scratch::new("mode");
    let hosts = dir.file("real.dns", "10.0.0.1 a.lab\n");
    fs::set_permissions(&hosts, fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.0.join(HOSTS_FILE);
    std::os::unix::fs::symlink("real.dns", &link).unwrap();

    assert_eq!(
        dns_add(&link, ip("10.0.0.2"), "b.lab").unwrap(),
        Change::Added
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n10.0.0.2 b.lab\n");
    assert_eq!(
        fs::metadata(&hosts).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert!(dir.0.join(".real.dns.lock").exists());
    assert!(dir.leftovers().is_empty());
}

#[test]
fn invalid_names_are_refused_before_touching_files() {
    let dir = Scratch::new("names");
    let hosts = dir.0.join(HOSTS_FILE);
    for bad in ["", "a b", "a'b", "-a", "a\n10.0.0.9 evil", "a#b", "a..b"] {
        let err = dns_add(&hosts, ip("10.0.0.1"), bad).unwrap_err();
        assert!(
            matches!(err, RegistrationError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
        assert!(matches!(
            hiera_add(&hosts, "web", bad),
            Err(RegistrationError::InvalidName { .. })
        ));
        assert!(matches!(
            sitepp_add(&hosts, bad, "a.lab"),
            Err(RegistrationError::InvalidName { .. })
        ));
    }
    assert!(!hosts.exists());
}
