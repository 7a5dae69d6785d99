//! Tests of the certificates: what is written, refused, revoked and listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt;

use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::facts::{facts, hex_serial, strip_zeros};
use super::files::load_issuer;
use super::issue::params;
use super::*;
use crate::environment::ContainerHost;

fn hosts() -> Vec<ContainerHost> {
    vec![ContainerHost {
        name: "host1".into(),
        ip: "10.231.9.2".parse().unwrap(),
        port: 3288,
    }]
}

/// A fresh directory of its own per test (they run in parallel).
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dockstack-certs-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn initialized(test: &str) -> PathBuf {
    let dir = temp_dir(test);
    init(&dir, &hosts(), false).unwrap();
    dir
}

/// The serials a CRL file lists, straight from the file.
fn crl_serials(dir: &Path) -> Vec<Vec<u8>> {
    let pem = std::fs::read(crl_path(dir)).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    assert_eq!(pem.label, "X509 CRL");
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| strip_zeros(r.raw_serial()).to_vec())
        .collect()
}

fn crl_number(dir: &Path) -> u64 {
    let pem = std::fs::read(crl_path(dir)).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
    crl.crl_number().unwrap().to_u64_digits()[0]
}

#[test]
fn init_writes_private_keys_0600_and_refuses_to_overwrite() {
    let dir = temp_dir("init");
    let files = init(&dir, &hosts(), false).unwrap();
    assert_eq!(files.len(), 7);
    assert!(files.contains(&crl_path(&dir)));
    for f in &files {
        if f.extension().unwrap() == "key" {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        } else {
            assert_eq!(mode(f), 0o644, "{}", f.display());
        }
    }
    assert_eq!(mode(&dir), 0o700);
    let before = std::fs::read(dir.join("ca.pem")).unwrap();
    let err = init(&dir, &hosts(), false).unwrap_err();
    assert!(matches!(err, CertError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    // A directory made wider is made 0700 again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    init(&dir, &hosts(), true).unwrap();
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    assert_eq!(mode(&dir), 0o700);
    let extra = ContainerHost {
        name: "host9".into(),
        ip: "10.231.9.6".parse().unwrap(),
        port: 3288,
    };
    add_host(&dir, &extra, false).unwrap();
    assert!(dir.join("host9.pem").exists());
    assert!(matches!(
        add_host(&dir, &extra, false),
        Err(CertError::Exists(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn init_makes_an_admin_client_a_year_long_and_an_empty_list() {
    let dir = initialized("init-client");
    let f = facts(&dir.join("client.pem")).unwrap();
    assert_eq!(f.common_name.as_deref(), Some("dockstack-client"));
    assert_eq!(f.role.as_deref(), Some("admin"));
    assert!(f.client_auth && !f.server_auth && !f.is_ca);
    let days = (f.not_after - OffsetDateTime::now_utc()).whole_days();
    assert!((364..=365).contains(&days), "{days}");
    // The CA and the hosts keep their ten years.
    let ca = facts(&dir.join("ca.pem")).unwrap();
    assert!(ca.is_ca);
    assert!((ca.not_after - OffsetDateTime::now_utc()).whole_days() >= 3649);
    let host = facts(&dir.join("host1.pem")).unwrap();
    assert!(host.server_auth && !host.is_client());
    assert!((host.not_after - OffsetDateTime::now_utc()).whole_days() >= 3649);
    // Every serial is its own.
    let serials: BTreeSet<_> = [ca.serial, f.serial, host.serial].into();
    assert_eq!(serials.len(), 3);
    assert!(crl_serials(&dir).is_empty());
    assert_eq!(crl_number(&dir), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn add_client_writes_a_certificate_with_its_role() {
    let dir = initialized("add-client");
    let files = add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
    let (c, k) = client_files(&dir, "alice");
    assert_eq!(files, vec![c.clone(), k.clone()]);
    assert_eq!(mode(&c), 0o644);
    assert_eq!(mode(&k), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let f = facts(&c).unwrap();
    assert_eq!(f.common_name.as_deref(), Some("alice"));
    assert_eq!(f.role.as_deref(), Some("operator"));
    assert!(f.client_auth && !f.server_auth);
    let days = (f.not_after - OffsetDateTime::now_utc()).whole_days();
    assert!((29..=30).contains(&days), "{days}");
    // The SAN is exactly the URI the servers look for.
    let pem = std::fs::read(&c).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("dockstack:role:operator")]
    );
    let o = cert.subject().iter_organization().next().unwrap();
    assert_eq!(o.as_str().unwrap(), "dockstack");
    // Signed by the CA: the key checks out against the certificate.
    assert!(KeyPair::from_pem(&std::fs::read_to_string(&k).unwrap()).is_ok());

    let before = std::fs::read(&c).unwrap();
    assert!(matches!(
        add_client(&dir, "alice", Role::Viewer, 30, false),
        Err(CertError::Exists(_))
    ));
    assert_eq!(std::fs::read(&c).unwrap(), before);
    // A wider key file is put back to 0600 when replaced.
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    add_client(&dir, "alice", Role::Viewer, 30, true).unwrap();
    assert_eq!(facts(&c).unwrap().role.as_deref(), Some("viewer"));
    assert_eq!(mode(&k), 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_names_are_refused() {
    let dir = initialized("bad-names");
    for name in [
        "",
        ".hidden",
        "../etc",
        "a/b",
        "ca",
        "crl",
        "white space",
        "é",
        "x\0",
    ] {
        let err = add_client(&dir, name, Role::Viewer, 1, true).unwrap_err();
        assert!(matches!(err, CertError::BadName { .. }), "{name:?}: {err}");
    }
    assert!(check_name(&"a".repeat(65)).is_err());
    for name in ["alice", "ci-bot_2", "team.ops", "A1", "client"] {
        check_name(name).unwrap();
    }
    // --force replaces clients, never a host's certificate or the CA.
    let before = std::fs::read(dir.join("host1.pem")).unwrap();
    let err = add_client(&dir, "host1", Role::Admin, 1, true).unwrap_err();
    assert!(matches!(err, CertError::NotClient { .. }), "{err}");
    assert!(err.to_string().contains("host"), "{err}");
    assert_eq!(std::fs::read(dir.join("host1.pem")).unwrap(), before);
    // ... and a host certificate does not replace a client's.
    add_client(&dir, "host7", Role::Viewer, 1, false).unwrap();
    let h7 = ContainerHost {
        name: "host7".into(),
        ip: "10.231.9.7".parse().unwrap(),
        port: 3288,
    };
    let err = add_host(&dir, &h7, true).unwrap_err();
    assert!(matches!(err, CertError::IsClient(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn revoking_twice_keeps_both_serials() {
    let dir = initialized("revoke");
    add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
    add_client(&dir, "bob", Role::Viewer, 30, false).unwrap();
    let alice = facts(&dir.join("alice.pem")).unwrap().serial;
    let bob = facts(&dir.join("bob.pem")).unwrap().serial;
    assert_ne!(alice, bob);

    let r = revoke(&dir, "alice").unwrap();
    assert!(!r.already);
    assert_eq!(r.count, 1);
    assert_eq!(r.crl, crl_path(&dir));
    assert_eq!(r.serial, hex_serial(&alice));
    assert_eq!(crl_serials(&dir), vec![alice.clone()]);
    assert_eq!(crl_number(&dir), 2);
    assert_eq!(mode(&crl_path(&dir)), 0o644);

    let r = revoke(&dir, "bob").unwrap();
    assert_eq!(r.count, 2);
    assert_eq!(crl_serials(&dir), vec![alice.clone(), bob.clone()]);
    assert_eq!(crl_number(&dir), 3);

    // Again: no second entry, but a list signed anew.
    let r = revoke(&dir, "alice").unwrap();
    assert!(r.already);
    assert_eq!(crl_serials(&dir), vec![alice.clone(), bob.clone()]);
    assert_eq!(crl_number(&dir), 4);

    // Re-issuing alice gives a new serial, not revoked; the old one stays.
    add_client(&dir, "alice", Role::Operator, 30, true).unwrap();
    let alice2 = facts(&dir.join("alice.pem")).unwrap().serial;
    assert_ne!(alice2, alice);
    revoke(&dir, "alice").unwrap();
    assert_eq!(crl_serials(&dir), vec![alice, bob, alice2]);
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Only client certificates are revoked.
    let err = revoke(&dir, "host1").unwrap_err();
    assert!(matches!(err, CertError::NotClient { .. }), "{err}");
    let err = revoke(&dir, "nobody").unwrap_err();
    assert!(err.to_string().contains("certs add-client nobody"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_list_of_another_ca_is_not_extended() {
    let dir = initialized("foreign-crl");
    let other = initialized("foreign-crl-other");
    std::fs::copy(crl_path(&other), crl_path(&dir)).unwrap();
    add_client(&dir, "alice", Role::Viewer, 1, false).unwrap();
    let err = revoke(&dir, "alice").unwrap_err();
    assert!(matches!(err, CertError::ForeignCrl { .. }), "{err}");
    std::fs::write(crl_path(&dir), "garbage").unwrap();
    assert!(matches!(
        revoke(&dir, "alice"),
        Err(CertError::Parse { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[test]
fn renew_keeps_the_role_and_the_name() {
    let dir = initialized("renew");
    add_client(&dir, "ci", Role::Viewer, 10, false).unwrap();
    let (c, k) = client_files(&dir, "ci");
    let old = facts(&c).unwrap();
    let old_key = std::fs::read(&k).unwrap();
    let r = renew(&dir, "ci", 200, None).unwrap();
    assert_eq!(r.role, Role::Viewer);
    let new = facts(&c).unwrap();
    assert_eq!(new.role.as_deref(), Some("viewer"));
    assert_eq!(new.common_name.as_deref(), Some("ci"));
    assert_ne!(new.serial, old.serial);
    assert_ne!(std::fs::read(&k).unwrap(), old_key);
    let days = (new.not_after - OffsetDateTime::now_utc()).whole_days();
    assert!((199..=200).contains(&days), "{days}");
    assert_eq!(mode(&c), 0o644);
    assert_eq!(mode(&k), 0o600);

    // The init one keeps its common name and admin role.
    renew(&dir, "client", CLIENT_VALIDITY_DAYS, None).unwrap();
    let f = facts(&dir.join("client.pem")).unwrap();
    assert_eq!(f.common_name.as_deref(), Some("dockstack-client"));
    assert_eq!(f.role.as_deref(), Some("admin"));

    // A role can be changed on the way; a revoked one is not renewed.
    renew(&dir, "ci", 10, Some(Role::Operator)).unwrap();
    assert_eq!(facts(&c).unwrap().role.as_deref(), Some("operator"));
    revoke(&dir, "ci").unwrap();
    let err = renew(&dir, "ci", 10, None).unwrap_err();
    assert!(matches!(err, CertError::RenewRevoked { .. }), "{err}");
    assert!(matches!(
        renew(&dir, "host1", 10, None),
        Err(CertError::NotClient { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_client_without_a_role_needs_one_to_renew() {
    let dir = initialized("renew-no-role");
    // A client certificate as `certs init` made them before roles.
    let issuer = load_issuer(&dir).unwrap();
    let mut p = params("dockstack-client", 30).unwrap();
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("old.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("old.key"), key.serialize_pem()).unwrap();
    let listed = list(&dir).unwrap();
    let old = listed.iter().find(|c| c.name == "old").unwrap();
    assert_eq!(old.role, None);
    let err = renew(&dir, "old", 30, None).unwrap_err();
    assert!(matches!(err, CertError::NoRole(_)), "{err}");
    renew(&dir, "old", 30, Some(Role::Admin)).unwrap();
    assert_eq!(
        facts(&dir.join("old.pem")).unwrap().role.as_deref(),
        Some("admin")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_shows_role_expiry_and_revocation() {
    let dir = initialized("list");
    add_client(&dir, "alice", Role::Operator, 30, false).unwrap();
    add_client(&dir, "bob-the-long-named", Role::Viewer, 365, false).unwrap();
    revoke(&dir, "alice").unwrap();
    std::fs::write(dir.join("notes.pem"), "not a certificate").unwrap();
    let certs = list(&dir).unwrap();
    let names: Vec<_> = certs.iter().map(|c| c.name.as_str()).collect();
    // Not ca, not crl, not host1, not what is no certificate.
    assert_eq!(names, ["alice", "bob-the-long-named", "client"]);
    let now = OffsetDateTime::now_utc();
    assert_eq!(certs[0].role.as_deref(), Some("operator"));
    assert!(certs[0].revoked);
    assert_eq!(date(certs[0].expires), date(now + Duration::days(30)));
    assert_eq!(certs[1].role.as_deref(), Some("viewer"));
    assert!(!certs[1].revoked);
    assert_eq!(certs[2].role.as_deref(), Some("admin"));

    let table = format_list(&certs, now);
    let lines: Vec<_> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    let exp = date(now + Duration::days(30));
    assert_eq!(
        lines[0], "NAME                ROLE      EXPIRES     REVOKED",
        "{table}"
    );
    assert_eq!(
        lines[1],
        format!("alice               operator  {exp}  yes"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("client              admin     "),
        "{table}"
    );
    assert!(lines[3].ends_with("  no"), "{table}");
    // Every column starts where its header does.
    for l in &lines[1..] {
        assert_eq!(&l[18..20], "  ", "{table}");
        assert_ne!(&l[20..21], " ", "{table}");
    }
    let expired = ClientCert {
        name: "old".into(),
        role: None,
        expires: now - Duration::days(2),
        revoked: false,
    };
    let table = format_list(&[expired], now);
    assert!(table.contains("old   none  "), "{table}");
    assert!(table.contains("(expired)"), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}
