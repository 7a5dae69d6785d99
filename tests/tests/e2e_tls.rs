//! Mutual TLS between client and server, seen from both sides: a valid
//! client works and is audited; plaintext, no certificate, another CA's
//! certificate, an expired one and a revoked one are each refused, and
//! both ends say why, the client in the one sentence asserted here.

use dockstack_tests::support::text;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::testbed::{BedOptions, TestBed};
use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn status(bed: &TestBed, extra: &[&str]) -> Output {
    let env = bed.write_environment(&[]);
    let bin = bed.client_command().get_program().to_owned();
    // Not client_command(): these tests choose the security flags themselves.
    std::process::Command::new(bin)
        .arg("-f")
        .arg(env)
        .args(extra)
        .arg("status")
        .output()
        .expect("run dockstack")
}

/// The one `FAILED` line of a client's stderr, checked to say `sentence`
/// of host 0, after its address if the connection said it, or after its
/// name alone if the first request did (the server's refusal of our
/// certificate comes after the TLS 1.3 handshake has ended on our side).
fn assert_failed(bed: &TestBed, out: &Output, sentence: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("FAILED")).collect();
    let h = bed.host(0);
    let (named, addressed) = (
        format!("FAILED host {}: {sentence}", h.name()),
        format!("FAILED host {} ({}): {sentence}", h.name(), h.addr()),
    );
    assert!(
        lines == [named.as_str()] || lines == [addressed.as_str()],
        "expected:\n{addressed}\n{}",
        text(out)
    );
}

/// Waits until the server's log contains `needle` (log lines are written
/// a moment after the connection ends).
fn log_contains(bed: &TestBed, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if bed.server_log(0).contains(needle) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TLS dir with the bed's CA (so the client trusts the server) and the
/// client certificate and key given.
fn mixed_dir(bed: &TestBed, name: &str, cert_pem: &str, key_pem: &str) -> PathBuf {
    let dir = bed.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(bed.tls_dir().join("ca.pem"), dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("client.pem"), cert_pem).unwrap();
    std::fs::write(dir.join("client.key"), key_pem).unwrap();
    dir
}

fn client_params(
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "test-client");
    p.distinguished_name = dn;
    p.not_before = not_before;
    p.not_after = not_after;
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    // A role, so that what is tested is the handshake alone.
    p.subject_alt_names = vec![rcgen::SanType::URI(
        "dockstack:role:viewer".try_into().expect("a URI"),
    )];
    p
}

fn bed_issuer(dir: &Path) -> Issuer<'static, KeyPair> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    Issuer::from_ca_cert_pem(&std::fs::read_to_string(dir.join("ca.pem")).unwrap(), key).unwrap()
}

#[test]
fn a_client_with_the_cluster_certificate_works_and_is_audited() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let tls = bed.tls_dir();
    let out = status(&bed, &["--tls-dir", tls.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let show = bed
        .client_command()
        .arg("-f")
        .arg(bed.write_environment(&[]))
        .args(["-c", "nothing"])
        .arg("show")
        .output()
        .unwrap();
    // Asking for a container the file does not have fails before any request.
    assert_eq!(show.status.code(), Some(2), "{}", text(&show));
    assert!(
        bed.server_log(0).contains("tls=true"),
        "{}",
        bed.server_log(0)
    );
    assert!(
        log_contains(&bed, "CN=dockstack-client"),
        "no audit line with the client's subject: {}",
        bed.server_log(0)
    );
}

#[test]
fn plaintext_is_refused_and_both_sides_say_why() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let out = status(&bed, &["--insecure"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let h = bed.host(0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "FAILED host {} ({}) answered with TLS, and this client was started with --insecure: drop --insecure\n",
            h.name(),
            h.addr()
        )),
        "{}",
        text(&out)
    );
    assert!(
        log_contains(&bed, "plaintext client"),
        "the server does not log why: {}",
        bed.server_log(0)
    );
}

#[test]
fn a_certificate_of_another_ca_is_refused_and_both_sides_say_why() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let other = bed.dir().join("other-ca");
    let init = std::process::Command::new(bed.client_command().get_program())
        .arg("-f")
        .arg(bed.write_environment(&[]))
        .arg("--tls-dir")
        .arg(&other)
        .args(["certs", "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));

    // The other CA's whole set: the client does not trust the server either.
    let out = status(&bed, &["--tls-dir", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_failed(
        &bed,
        &out,
        "the server's certificate is not signed by our CA: are client and server using the same `dockstack certs init` output?",
    );

    // Our CA, but a client certificate of the other CA: the server refuses.
    let dir = mixed_dir(
        &bed,
        "foreign-client",
        &std::fs::read_to_string(other.join("client.pem")).unwrap(),
        &std::fs::read_to_string(other.join("client.key")).unwrap(),
    );
    let out = status(&bed, &["--tls-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_failed(
        &bed,
        &out,
        &format!(
            "the server refused our certificate {}: it is not signed by {}; make one with this cluster's CA (`dockstack certs add-client client --role ROLE`)",
            dir.join("client.pem").display(),
            dir.join("ca.pem").display()
        ),
    );
    assert!(
        log_contains(&bed, "TLS handshake failed: invalid peer certificate"),
        "{}",
        bed.server_log(0)
    );
}

#[test]
fn an_expired_certificate_is_refused_and_both_sides_say_why() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let issuer = bed_issuer(&bed.tls_dir());
    let key = KeyPair::generate().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let cert = client_params(
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )
    .signed_by(&key, &issuer)
    .unwrap();
    let dir = mixed_dir(&bed, "expired", &cert.pem(), &key.serialize_pem());
    let out = status(&bed, &["--tls-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_failed(
        &bed,
        &out,
        &format!(
            "the server refused our certificate {}: it expired on {}; renew it with `dockstack certs renew client`",
            dir.join("client.pem").display(),
            dockstack::certs::date(now - time::Duration::days(1))
        ),
    );
    assert!(log_contains(&bed, "xpired"), "{}", bed.server_log(0));

    // The same CA and a valid date works: the refusal was the date.
    let cert = client_params(now - time::Duration::days(1), now + time::Duration::days(1))
        .signed_by(&key, &issuer)
        .unwrap();
    let dir = mixed_dir(&bed, "valid", &cert.pem(), &key.serialize_pem());
    let out = status(&bed, &["--tls-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        log_contains(&bed, "CN=test-client"),
        "no audit line with the subject"
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let h = bed.host(0);
    let ca = std::fs::read(bed.tls_dir().join("ca.pem")).unwrap();
    let endpoint = Endpoint::from_shared(format!("https://{}", h.addr()))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)))
        .unwrap();
    let result = match endpoint.connect().await {
        Ok(channel) => ContainerHostClient::new(channel)
            .list(dockstack_proto::ListRequest {
                host: h.name().to_string(),
            })
            .await
            .map(drop)
            .map_err(|s| s.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(result.is_err(), "a client without a certificate was served");
    assert!(
        log_contains(&bed, "the client sent no certificate"),
        "{}",
        bed.server_log(0)
    );

    // With the bed's client identity the same call is served.
    let cert = std::fs::read(bed.tls_dir().join("client.pem")).unwrap();
    let key = std::fs::read(bed.tls_dir().join("client.key")).unwrap();
    let channel = Endpoint::from_shared(format!("https://{}", h.addr()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .identity(Identity::from_pem(cert, key)),
        )
        .unwrap()
        .connect()
        .await
        .expect("connect with the client certificate");
    ContainerHostClient::new(channel)
        .list(dockstack_proto::ListRequest {
            host: h.name().to_string(),
        })
        .await
        .expect("list with the client certificate");
}

#[test]
fn insecure_on_both_sides_works_and_warns_every_time() {
    let bed = TestBed::new(BedOptions {
        insecure: true,
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let out = status(&bed, &["--insecure"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --insecure"));
    assert!(bed.server_log(0).contains("--insecure: serving plaintext"));
    // A client that expects TLS does not fall back to plaintext.
    let out = status(
        &bed,
        &["--tls-dir", bed.dir().join("none").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certs init"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_revoked_certificate_is_refused_and_the_client_says_what_to_do() {
    let mut bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let tls = bed.tls_dir();
    let env = bed.write_environment(&[]);
    let certs = |args: &[&str]| {
        let out = bed
            .client_command()
            .arg("-f")
            .arg(&env)
            .arg("certs")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    certs(&["add-client", "bob", "--role", "viewer"]);
    certs(&["revoke", "bob"]);
    bed.restart_server(0).expect("restart the server");
    let out = status(&bed, &["--tls-dir", tls.to_str().unwrap(), "--as", "bob"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The server names the certificate and its address, which varies.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("FAILED"))
        .unwrap_or_else(|| panic!("{}", text(&out)));
    let (before, after) = (
        format!(
            "FAILED host {}: refused: certificate O=dockstack, CN=bob (",
            bed.host(0).name()
        ),
        ") may not list: it has been revoked (its serial is in the CA's crl.pem): an admin issues a new one with `dockstack certs add-client NAME --role ROLE --force`",
    );
    assert!(line.starts_with(&before) && line.ends_with(after), "{line}");
}
