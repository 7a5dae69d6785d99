//! End to end: what the client says when a dockstack server answers but
//! cannot serve it: TLS on one side only (both ways), a server certificate
//! that has expired, the file naming another host at that address, and a
//! server that speaks another protocol version (too old, too new). Each is
//! one sentence, asserted whole. (The client's own certificate refused:
//! e2e_tls; nothing or something else listening: e2e_errors.)

use std::net::IpAddr;
use std::process::Output;

use dockstack_tests::support::text;
use dockstack_tests::testbed::{BedOptions, TestBed};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType,
};

/// `dockstack -f FILE EXTRA status` with the environment `FILE` holds;
/// `env` are more variables of the client's.
fn status(bed: &TestBed, yaml: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let file = bed.dir().join("errors.yaml");
    std::fs::write(&file, yaml).unwrap();
    let bin = bed.client_command().get_program().to_owned();
    std::process::Command::new(bin)
        .arg("-f")
        .arg(&file)
        .args(extra)
        .arg("status")
        .envs(env.iter().copied())
        .output()
        .expect("run dockstack")
}

/// The `FAILED` lines of `out`'s stderr.
fn failed(out: &Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("FAILED"))
        .map(str::to_string)
        .collect()
}

/// [`status`] with the bed's certificates.
fn with_tls(bed: &TestBed, yaml: &str, env: &[(&str, &str)]) -> Output {
    let dir = bed.tls_dir();
    status(bed, yaml, &["--tls-dir", dir.to_str().unwrap()], env)
}

#[test]
fn tls_on_one_side_only_is_said_with_the_side_to_change() {
    // A server without TLS, asked by a client with certificates.
    let plain = TestBed::new(BedOptions {
        insecure: true,
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let h = plain.host(0);
    let tls = plain.dir().join("tls");
    let made = plain
        .client_command()
        .arg("-f")
        .arg(plain.write_environment(&[]))
        .arg("--tls-dir")
        .arg(&tls)
        .args(["certs", "init"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let yaml = plain.environment_yaml(&[]);
    let out = status(&plain, &yaml, &["--tls-dir", tls.to_str().unwrap()], &[]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {} ({}) answered without TLS: its dockstack-server runs with --insecure (give it certificates, or pass --insecure here too)",
            h.name(),
            h.addr()
        )]
    );

    // A server with TLS, asked in plaintext.
    let secure = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let h = secure.host(0);
    let out = status(&secure, &secure.environment_yaml(&[]), &["--insecure"], &[]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {} ({}) answered with TLS, and this client was started with --insecure: drop --insecure",
            h.name(),
            h.addr()
        )]
    );
}

#[test]
fn an_expired_server_certificate_is_said_with_the_command_to_reissue_it() {
    let mut bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let (name, ip) = (bed.host(0).name().to_string(), bed.host(0).mgmt_ip());
    let dir = bed.tls_dir();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        ca_key,
    )
    .unwrap();
    // As `certs add-host` makes it, but its time is up.
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dockstack");
    dn.push(DnType::CommonName, &name);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(30);
    p.not_after = now - time::Duration::days(1);
    p.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(ip)),
        SanType::DnsName(name.clone().try_into().unwrap()),
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    bed.restart_server(0).expect("the server starts with it");

    let out = with_tls(&bed, &bed.environment_yaml(&[]), &[]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {name} ({}): the server's certificate has expired: re-issue it with `dockstack certs add-host {name} --force`",
            bed.host(0).addr()
        )]
    );
}

#[test]
fn another_host_at_the_address_is_named() {
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let (h0, h1) = (bed.host(0), bed.host(1));
    // Host 0's name at host 1's address.
    let yaml = format!(
        "containerhosts:\n  {}:\n    ip: {}\n    port: {}\ncontainers: {{}}\n",
        h0.name(),
        h1.mgmt_ip(),
        h1.port()
    );
    let out = with_tls(&bed, &yaml, &[]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {}: request for host {} reached host {}: check containerhosts in the environment file",
            h0.name(),
            h0.name(),
            h1.name()
        )]
    );
}

#[test]
fn a_server_of_another_protocol_version_says_which_side_to_upgrade() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let yaml = bed.environment_yaml(&[]);
    let version = dockstack_types::protocol::VERSION;
    let h = bed.host(0).name();
    // A client newer than the server (a debug build says what it is told).
    let newer = (version + 1).to_string();
    let out = with_tls(&bed, &yaml, &[("DOCKSTACK_PROTOCOL", &newer)]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {h}: the server is older than this client (it speaks dockstack protocol up to {version}, the client {newer}): upgrade dockstack-server there"
        )]
    );
    // And older than the oldest it serves.
    let oldest = dockstack_types::protocol::OLDEST;
    let older = (oldest - 1).to_string();
    let out = with_tls(&bed, &yaml, &[("DOCKSTACK_PROTOCOL", &older)]);
    assert_eq!(
        failed(&out),
        [format!(
            "FAILED host {h}: the server is newer than this client (it speaks dockstack protocol {oldest} to {version}, the client {older}): upgrade the dockstack client"
        )]
    );
    // Its own version is served.
    let out = with_tls(&bed, &yaml, &[("DOCKSTACK_PROTOCOL", &version.to_string())]);
    assert!(out.status.success(), "{}", text(&out));
}
