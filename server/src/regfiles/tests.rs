//! File-level tests of registration: golden edits of the 2015 fixtures,
//! `puppet parser validate` on edited manifests, locking under concurrency,
//! refusal of malformed files, atomic replacement, and what a hostile
//! container can plant in the directory: symlinks and FIFOs in the file's,
//! the lock's and the directory's place, a lock it never releases, and
//! temporary files of a crashed writer.

use std::fs::{self, File};
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
        dns_add(&path, ip("10.0.0.17"), None, "memcache1.endor.lab").unwrap(),
        Change::Added
    );
    assert_eq!(
        read(&path),
        format!("{orig}10.0.0.17 memcache1.endor.lab\n")
    );
    assert_eq!(
        dns_add(&path, ip("10.0.0.17"), None, "memcache1.endor.lab").unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        dns_remove(&path, "memcache1.endor.lab").unwrap(),
        Change::Removed
    );
    assert_eq!(read(&path), orig);

    // Replacing keeps the line's place; the padded dns1 line stays padded.
    assert_eq!(
        dns_add(&path, ip("10.0.0.40"), None, "galera1.endor.lab").unwrap(),
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
        dns_add(&path, ip("10.0.0.4"), None, "galera1.endor.lab").unwrap(),
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
        dns_add(&path, ip("10.0.0.1"), None, "dns1.endor.lab").unwrap(),
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
                    dns_add(&hosts, ip, None, &format!("web{i}.endor.lab")).unwrap(),
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
        dns_add(dir.join("hosts"), ip, None, &format!("{name}.lab")).unwrap();
        hiera_add(dir.join("common.yaml"), "web", &name).unwrap();
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
            dns_add(&hosts, ip("10.0.0.3"), None, "c.lab").map(drop),
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
        dns_add(&hosts, ip("10.0.0.1"), None, "a.lab").unwrap(),
        Change::Added
    );
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.1"), None, "a.lab").unwrap(),
        Change::Unchanged
    );

    let nodir = dir.0.join("no/such/dir/dockstack.dns");
    let err = dns_add(&nodir, ip("10.0.0.1"), None, "a.lab").unwrap_err();
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
    let err = sitepp_add(dir.0.join("site.pp"), "web", "web1.lab").unwrap_err();
    assert!(matches!(err, RegistrationError::Io { .. }), "{err}");
}

#[test]
fn replace_keeps_mode() {
    let dir = Scratch::new("mode");
    let hosts = dir.file(HOSTS_FILE, "10.0.0.1 a.lab\n");
    fs::set_permissions(&hosts, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap(),
        Change::Added
    );
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n10.0.0.2 b.lab\n");
    assert_eq!(
        fs::metadata(&hosts).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert!(dir.0.join(".dockstack.dns.lock").is_file());
    assert!(dir.leftovers().is_empty());
}

/// A file outside the directory the editors may write in, and its bytes.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Victim {
    fn new(dir: &Scratch, contents: &str) -> Self {
        let outside = dir.0.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let path = outside.join("victim");
        fs::write(&path, contents).unwrap();
        Self {
            path,
            bytes: contents.as_bytes().to_vec(),
        }
    }

    fn untouched(&self) {
        assert_eq!(fs::read(&self.path).unwrap(), self.bytes, "victim changed");
        let names: Vec<_> = fs::read_dir(self.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["victim"], "files appeared beside the victim");
    }
}

fn refused(err: &RegistrationError, path: &Path, what: &str) {
    match err {
        RegistrationError::Refused { path: p, what: w } => {
            assert_eq!(p, path, "{err}");
            assert!(w.contains(what), "{err}");
        }
        other => panic!("expected {} refused ({what}), got {other}", path.display()),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{err}"
    );
}

#[test]
fn a_target_that_is_a_symlink_is_refused_not_followed() {
    let dir = Scratch::new("target-link");
    let vol = dir.0.join("vol");
    fs::create_dir(&vol).unwrap();
    let victim = Victim::new(&dir, "10.0.0.1 a.lab\n");
    let hiera_victim = dir.file("outside-common.yaml", &fixture("common-registered.yaml"));
    let site_victim = dir.file("outside-site.pp", &fixture("site.pp"));
    let (hiera_0, site_0) = (read(&hiera_victim), read(&site_victim));
    let hosts = vol.join(HOSTS_FILE);
    let (hiera, site) = (vol.join("common.yaml"), vol.join("site.pp"));
    std::os::unix::fs::symlink(&victim.path, &hosts).unwrap();
    std::os::unix::fs::symlink(&hiera_victim, &hiera).unwrap();
    std::os::unix::fs::symlink(&site_victim, &site).unwrap();

    let link = "is a symbolic link";
    refused(
        &dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap_err(),
        &hosts,
        link,
    );
    refused(&dns_remove(&hosts, "a.lab").unwrap_err(), &hosts, link);
    refused(&hiera_add(&hiera, "web", "web9").unwrap_err(), &hiera, link);
    refused(
        &hiera_remove(&hiera, "haproxy", "haproxy1").unwrap_err(),
        &hiera,
        link,
    );
    refused(
        &sitepp_add(&site, "haproxy", "h2.lab").unwrap_err(),
        &site,
        link,
    );
    refused(
        &sitepp_remove(&site, "haproxy", "haproxy1.endor.lab").unwrap_err(),
        &site,
        link,
    );
    victim.untouched();
    assert_eq!(read(&hiera_victim), hiera_0);
    assert_eq!(read(&site_victim), site_0);
    // The links stay as they were, and nothing is left behind.
    assert_eq!(fs::read_link(&hosts).unwrap(), victim.path);
    let names: Vec<String> = fs::read_dir(&vol)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    // A dangling one is no missing file to create either.
    let dangling = dir.0.join("outside").join("created");
    fs::remove_file(&hosts).unwrap();
    std::os::unix::fs::symlink(&dangling, &hosts).unwrap();
    refused(
        &dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap_err(),
        &hosts,
        link,
    );
    assert!(!dangling.exists());
    victim.untouched();
}

#[test]
fn a_planted_lock_symlink_is_refused_and_nothing_is_created() {
    let dir = Scratch::new("lock-link");
    let vol = dir.0.join("vol");
    fs::create_dir(&vol).unwrap();
    let victim = Victim::new(&dir, "do not touch\n");
    let hosts = vol.join(HOSTS_FILE);
    fs::write(&hosts, "10.0.0.1 a.lab\n").unwrap();
    let lock = vol.join(".dockstack.dns.lock");

    // To a file that does not exist: the old open(O_CREAT) created it.
    let nologin = dir.0.join("outside").join("nologin");
    std::os::unix::fs::symlink(&nologin, &lock).unwrap();
    let err = dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, &lock, "is a symbolic link");
    assert!(!nologin.exists(), "the lock symlink was followed");
    // To one that does.
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim.path, &lock).unwrap();
    let err = dns_remove(&hosts, "a.lab").unwrap_err();
    refused(&err, &lock, "is a symbolic link");
    victim.untouched();
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");

    // A FIFO in the lock's place is refused too, without blocking.
    fs::remove_file(&lock).unwrap();
    nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let err = dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, &lock, "is not a regular file");
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");
}

#[test]
fn a_target_that_is_no_regular_file_is_refused_without_blocking() {
    let dir = Scratch::new("fifo");
    let fifo = dir.0.join(HOSTS_FILE);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let err = dns_add(&fifo, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, &fifo, "is not a regular file");
    let subdir = dir.0.join("common.yaml");
    fs::create_dir(&subdir).unwrap();
    let err = hiera_add(&subdir, "web", "web1").unwrap_err();
    refused(&err, &subdir, "is not a regular file");
}

#[test]
fn a_file_too_large_to_be_a_registration_file_is_refused() {
    let dir = Scratch::new("large");
    let hosts = dir.file(HOSTS_FILE, "10.0.0.1 a.lab\n");
    // Sparse: no disk is used.
    File::options()
        .write(true)
        .open(&hosts)
        .unwrap()
        .set_len(atomic::MAX_SIZE + 1)
        .unwrap();
    let err = dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, &hosts, "larger than 64 MiB");
    assert_eq!(fs::metadata(&hosts).unwrap().len(), atomic::MAX_SIZE + 1);
    assert!(dir.leftovers().is_empty());
}

#[test]
fn a_directory_symlink_below_the_trusted_root_is_refused() {
    let dir = Scratch::new("dir-link");
    let vol = dir.0.join("vol");
    fs::create_dir_all(vol.join("real")).unwrap();
    fs::write(vol.join("real").join(HOSTS_FILE), "10.0.0.1 a.lab\n").unwrap();
    let victim = Victim::new(&dir, "10.0.0.1 a.lab\n");
    // The container's: `dns` swapped for a link out of the volume.
    std::os::unix::fs::symlink(victim.path.parent().unwrap(), vol.join("dns")).unwrap();
    let shown = Path::new("/as/requested/dns/victim");
    let file = RegFile::beneath(&vol, "dns/victim", shown);
    let err = dns_add(&file, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, Path::new("/as/requested/dns"), "symbolic link");
    victim.untouched();
    // A link inside the volume is not followed either.
    std::os::unix::fs::symlink("real", vol.join("inside")).unwrap();
    let file = RegFile::beneath(&vol, format!("inside/{HOSTS_FILE}"), shown);
    let err = dns_remove(&file, "a.lab").unwrap_err();
    refused(&err, Path::new("/as/requested/dns"), "symbolic link");
    // A FIFO where the directory should be is no directory, and not waited on.
    nix::unistd::mkfifo(
        &vol.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let file = RegFile::beneath(&vol, format!("fifo/{HOSTS_FILE}"), shown);
    assert!(matches!(
        dns_add(&file, ip("10.0.0.2"), None, "b.lab").unwrap_err(),
        RegistrationError::Io { .. }
    ));
    assert_eq!(read(&vol.join("real").join(HOSTS_FILE)), "10.0.0.1 a.lab\n");
    // `..` cannot climb out.
    let file = RegFile::beneath(vol.join("real"), "../../outside/victim", shown);
    assert!(matches!(
        dns_remove(&file, "a.lab").unwrap_err(),
        RegistrationError::Io { .. }
    ));
    victim.untouched();
    // The real directory is fine, and the root itself may be reached
    // through a symlink: it is trusted as named.
    std::os::unix::fs::symlink(&vol, dir.0.join("vol-link")).unwrap();
    let file = RegFile::beneath(dir.0.join("vol-link"), format!("real/{HOSTS_FILE}"), shown);
    assert_eq!(
        dns_add(&file, ip("10.0.0.2"), None, "b.lab").unwrap(),
        Change::Added
    );
    assert_eq!(
        read(&vol.join("real").join(HOSTS_FILE)),
        "10.0.0.1 a.lab\n10.0.0.2 b.lab\n"
    );
}

#[test]
fn the_stepwise_walk_follows_no_symlink_either() {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let dir = Scratch::new("stepwise");
    fs::create_dir_all(dir.0.join("a/b")).unwrap();
    std::os::unix::fs::symlink("b", dir.0.join("a/link")).unwrap();
    let root = || open(&dir.0, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    assert!(atomic::open_below_stepwise(root(), Path::new("a/b")).is_ok());
    assert_eq!(
        atomic::open_below_stepwise(root(), Path::new("a/link")).unwrap_err(),
        nix::errno::Errno::ELOOP
    );
    assert_eq!(
        atomic::open_below_stepwise(root(), Path::new("a/../a")).unwrap_err(),
        nix::errno::Errno::EXDEV
    );
    assert_eq!(
        atomic::open_below(root(), Path::new("a/link")).unwrap_err(),
        nix::errno::Errno::ELOOP
    );
}

#[test]
fn temporary_files_of_a_crashed_edit_are_removed_by_the_next() {
    let dir = Scratch::new("stale");
    let victim = Victim::new(&dir, "outside\n");
    let hosts = dir.file(HOSTS_FILE, "10.0.0.1 a.lab\n");
    let stale = [".dockstack.dns.4242.0.tmp", ".dockstack.dns.1.17.tmp"];
    for name in stale {
        dir.file(name, "10.0.0.9 half.lab\n");
    }
    // A stale name planted as a symlink: the link goes, not what it names.
    std::os::unix::fs::symlink(&victim.path, dir.0.join(".dockstack.dns.7.7.tmp")).unwrap();
    // Not temporary files of this target: left alone.
    let kept = [
        ".dockstack.dns.x.1.tmp",
        ".dockstack.dns.1.tmp",
        ".dockstack.dns.1.2.3.tmp",
        ".common.yaml.1.2.tmp",
        "dockstack.dns.1.2.tmp",
        ".dockstack.dns.1.2.tmp~",
    ];
    for name in kept {
        dir.file(name, "keep\n");
    }
    // Also when the edit changes nothing.
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.1"), None, "a.lab").unwrap(),
        Change::Unchanged
    );
    let mut left = dir.leftovers();
    left.sort();
    let mut want: Vec<String> = kept
        .iter()
        .filter(|n| n.ends_with(".tmp"))
        .map(|n| n.to_string())
        .collect();
    want.sort();
    assert_eq!(left, want);
    for name in kept {
        assert_eq!(read(&dir.0.join(name)), "keep\n", "{name}");
    }
    victim.untouched();
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");
}

#[test]
fn temporary_file_names_are_recognised() {
    assert!(atomic::is_temp_of(".hosts.1.0.tmp", "hosts"));
    assert!(atomic::is_temp_of(".a.b.12.34.tmp", "a.b"));
    assert!(!atomic::is_temp_of(".a.b.12.34.tmp", "a"));
    assert!(!atomic::is_temp_of(".a.12.tmp", "a"));
    assert!(!atomic::is_temp_of(".a..1.tmp", "a"));
    assert!(!atomic::is_temp_of(".a.1.2.lock", "a"));
    assert!(!atomic::is_temp_of(".a.lock", "a"));
}

#[test]
fn a_lock_held_by_someone_else_times_out_naming_it() {
    let dir = Scratch::new("held");
    let hosts = dir.file(HOSTS_FILE, "10.0.0.1 a.lab\n");
    let lock_path = dir.0.join(".dockstack.dns.lock");
    let holder = File::create(&lock_path).unwrap();
    holder.lock().unwrap();
    let started = std::time::Instant::now();
    let wait = std::time::Duration::from_millis(300);
    let err = atomic::update_within(
        &RegFile::from(&hosts),
        wait,
        atomic::IfMissing::Empty,
        |text| hosts::add(text, ip("10.0.0.2"), None, "b.lab"),
    )
    .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(&err, RegistrationError::LockHeld { path, waited } if path == &lock_path && *waited == wait),
        "{err}"
    );
    assert!(waited >= wait, "gave up after {waited:?}");
    assert!(waited < wait * 10, "gave up after {waited:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot lock {}: someone else holds it; gave up after 300ms",
            lock_path.display()
        )
    );
    assert_eq!(read(&hosts), "10.0.0.1 a.lab\n");
    // Released: the edit goes through.
    drop(holder);
    assert_eq!(
        dns_add(&hosts, ip("10.0.0.2"), None, "b.lab").unwrap(),
        Change::Added
    );
}

#[test]
fn invalid_names_are_refused_before_touching_files() {
    let dir = Scratch::new("names");
    let hosts = dir.0.join(HOSTS_FILE);
    for bad in ["", "a b", "a'b", "-a", "a\n10.0.0.9 evil", "a#b", "a..b"] {
        let err = dns_add(&hosts, ip("10.0.0.1"), None, bad).unwrap_err();
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

#[test]
fn a_planted_fifo_or_device_is_refused_without_being_opened() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let dir = Scratch::new("planted");
    let fifo = dir.0.join(HOSTS_FILE);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    // Every open of the planted node, for reading or writing, is an event.
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    watch.add_watch(&fifo, AddWatchFlags::IN_OPEN).unwrap();
    let err = dns_add(&fifo, ip("10.0.0.2"), None, "b.lab").unwrap_err();
    refused(&err, &fifo, "is not a regular file");
    let err = dns_remove(&fifo, "b.lab").unwrap_err();
    refused(&err, &fifo, "is not a regular file");
    let opened = watch.read_events().unwrap_or_default();
    assert!(
        opened.is_empty(),
        "the editors opened the planted FIFO {} times",
        opened.len()
    );
}
