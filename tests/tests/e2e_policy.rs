//! End to end, least privilege: the role in a client certificate, the
//! server's policy for it, refusals that name what broke which rule and
//! leave an audit line, revocation, and a policy file that is read with care.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use dockstack_proto as pb;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::support::{bed, ok, text, wait_until};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// `dockstack --as NAME -f ENV ARGS`.
fn as_client(bed: &TestBed, name: &str, env: &Path, args: &[&str]) -> Output {
    bed.client_command()
        .args(["--as", name, "-f"])
        .arg(env)
        .args(args)
        .output()
        .expect("run dockstack")
}

fn audit_lines(bed: &TestBed) -> usize {
    bed.server_log(0).matches("audit: refused").count()
}

/// Sends SIGHUP to host 0's server and waits for its log to say `then`.
fn sighup(bed: &TestBed, then: &str) {
    let before = bed.server_log(0).matches(then).count();
    let sent = std::process::Command::new("kill")
        .args([
            "-HUP",
            &bed.host(0).server_pid().expect("server.pid").to_string(),
        ])
        .status()
        .expect("kill -HUP");
    assert!(sent.success());
    assert!(
        wait_until(Duration::from_secs(5), || bed
            .server_log(0)
            .matches(then)
            .count()
            > before),
        "no {then:?} after SIGHUP:\n{}",
        bed.server_log(0)
    );
}

/// Calls `Exec` on host 0 with the certificate `name` of the bed's TLS dir.
fn exec_as(
    bed: &TestBed,
    cert: &Path,
    key: &Path,
    container: &str,
    command: &str,
) -> tonic::Status {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let h = bed.host(0);
    let ca = std::fs::read(bed.tls_dir().join("ca.pem")).unwrap();
    let identity = Identity::from_pem(std::fs::read(cert).unwrap(), std::fs::read(key).unwrap());
    rt.block_on(async {
        let channel = Endpoint::from_shared(format!("https://{}", h.addr()))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&ca))
                    .identity(identity),
            )
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let mut client = ContainerHostClient::new(channel);
        let req = pb::ExecRequest {
            host: h.name().to_string(),
            container: container.to_string(),
            command: command.to_string(),
            ..Default::default()
        };
        match client.exec(req).await {
            Err(status) => status,
            Ok(_) => tonic::Status::ok("served"),
        }
    })
}

#[test]
fn a_viewer_reads_but_may_not_run_and_the_refusal_is_audited() {
    let bed = bed(1);
    bed.add_client("alice", "viewer");
    let web = bed.container_name("web");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(120))]);
    let out = as_client(&bed, "alice", &env, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = as_client(&bed, "alice", &env, &["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("CN=alice")
            && shown.contains("role viewer")
            && shown.contains("may not run"),
        "{shown}"
    );
    assert!(bed.managed_containers(0).is_empty());
    assert_eq!(audit_lines(&bed), 1, "{}", bed.server_log(0));
}

#[test]
fn an_operator_restarts_a_viewer_may_not_and_both_are_logged() {
    let bed = bed(1);
    bed.add_client("alice", "viewer");
    bed.add_client("bob", "operator");
    let web = bed.container_name("web");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(122))]);
    let out = as_client(&bed, "bob", &env, &["run"]);
    assert!(out.status.success(), "{}", text(&out));
    let started = || {
        let out = std::process::Command::new("docker")
            .args(["inspect", "--format", "{{.State.StartedAt}}", &web])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = started();

    let out = as_client(&bed, "alice", &env, &["restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("CN=alice")
            && shown.contains("role viewer")
            && shown.contains("may not restart"),
        "{shown}"
    );
    assert_eq!(started(), before, "a viewer's restart restarted it");
    assert_eq!(audit_lines(&bed), 1, "{}", bed.server_log(0));

    let out = as_client(&bed, "bob", &env, &["restart"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(
        started(),
        before,
        "an operator's restart did not restart it"
    );
    let log = bed.server_log(0);
    assert!(
        log.lines().any(|l| l.contains("CN=bob")
            && l.contains("action=\"restart\"")
            && l.contains("result=\"ok\"")),
        "{log}"
    );
    let out = as_client(&bed, "bob", &env, &["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_operator_is_refused_what_reaches_the_host_and_runs_what_stays_inside() {
    let bed = bed(1);
    bed.add_client("ci", "operator");
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(121);
    let cases = [
        ("volumes: [\"/:/host\"]", "volumes[0]"),
        (
            "volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]",
            "volumes[0]",
        ),
        ("privileged: true", "privileged"),
        ("cap_add: [SYS_ADMIN]", "cap_add[0]"),
        // Real-time priorities would let a container starve the host.
        ("cap_add: [SYS_NICE]", "cap_add[0]"),
        ("postcreation: [\"/bin/sh -c true\"]", "postcreation[0]"),
    ];
    for (yaml, key) in cases {
        let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml(yaml)]);
        let out = as_client(&bed, "ci", &env, &["run"]);
        assert!(!out.status.success(), "{yaml}: {}", text(&out));
        let shown = text(&out);
        assert!(
            shown.contains("role operator") && shown.contains(&format!("{web}: {key}: ")),
            "{yaml}: {shown}"
        );
        assert!(
            bed.managed_containers(0).is_empty(),
            "{yaml} created something"
        );
    }
    // Exec of its own choosing.
    let dir = bed.tls_dir();
    let status = exec_as(
        &bed,
        &dir.join("ci.pem"),
        &dir.join("ci.key"),
        &web,
        "/bin/sh -c id",
    );
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("command: "), "{status:?}");
    assert_eq!(audit_lines(&bed), cases.len() + 1, "{}", bed.server_log(0));

    // Inside the policy: a volume of its own under the default allowlist,
    // a capability it may add.
    let data = Path::new("/srv/dockstack").join(&web);
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml(&format!(
        "volumes: [\"{}:/data\"]\ncap_add: [NET_RAW]",
        data.display()
    ))]);
    let out = as_client(&bed, "ci", &env, &["run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(bed.ping_from_host(0, ip));
    let out = as_client(&bed, "ci", &env, &["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(bed.managed_containers(0).is_empty());
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_revoked_certificate_is_refused_after_sighup_and_after_a_restart() {
    let mut bed = bed(1);
    bed.add_client("bob", "operator");
    let env = bed.write_environment(&[]);
    let out = as_client(&bed, "bob", &env, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bed
        .client_command()
        .args(["certs", "revoke", "bob"])
        .output()
        .expect("dockstack certs revoke");
    assert!(out.status.success(), "{}", text(&out));
    assert!(bed.tls_dir().join("crl.pem").exists());
    let listed = bed
        .client_command()
        .args(["certs", "list"])
        .output()
        .expect("certs list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let bob = listed
        .lines()
        .find(|l| l.starts_with("bob "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(bob.contains("operator") && bob.contains("yes"), "{listed}");

    sighup(&bed, "revocation list reloaded");
    let out = as_client(&bed, "bob", &env, &["status"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    assert!(
        wait_until(Duration::from_secs(5), || bed
            .server_log(0)
            .contains("has been revoked")),
        "{}",
        bed.server_log(0)
    );
    bed.restart_server(0).expect("restart the server");
    let out = as_client(&bed, "bob", &env, &["status"]);
    assert!(!out.status.success(), "{}", text(&out));
    // The others are still served.
    ok(&bed, &env, &["status"]);
}

/// Finding 5 of the second audit: revocation was checked at the
/// handshake only, so a connection opened before `certs revoke` and
/// SIGHUP went on being served.
#[test]
fn a_connection_open_across_a_revocation_is_refused_at_its_next_request() {
    let bed = bed(1);
    bed.add_client("bob", "operator");
    let dir = bed.tls_dir();
    let h = bed.host(0);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let identity = Identity::from_pem(
        std::fs::read(dir.join("bob.pem")).unwrap(),
        std::fs::read(dir.join("bob.key")).unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let list = pb::ListRequest {
        host: h.name().to_string(),
    };
    let mut client = rt.block_on(async {
        let channel = Endpoint::from_shared(format!("https://{}", h.addr()))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&ca))
                    .identity(identity),
            )
            .unwrap()
            .connect()
            .await
            .expect("connect");
        ContainerHostClient::new(channel)
    });
    rt.block_on(client.list(list.clone()))
        .expect("bob is served before the revocation");
    let out = bed
        .client_command()
        .args(["certs", "revoke", "bob"])
        .output()
        .expect("dockstack certs revoke");
    assert!(out.status.success(), "{}", text(&out));
    sighup(&bed, "revocation list reloaded");
    // The same channel: its connection was opened before the revocation.
    let status = rt
        .block_on(client.list(list))
        .expect_err("a revoked certificate served on its old connection");
    assert_eq!(
        status.code(),
        tonic::Code::PermissionDenied,
        "{status:?}\n{}",
        bed.server_log(0)
    );
    assert!(status.message().contains("revoked"), "{status:?}");
    // And the connection is closed.
    assert!(
        wait_until(Duration::from_secs(5), || bed.server_log(0).contains(
            "closing the connection: its certificate has been revoked"
        )),
        "{}",
        bed.server_log(0)
    );
}

#[tokio::test]
async fn a_certificate_without_a_role_is_refused_naming_its_subject() {
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let dir = bed.tls_dir();
    let key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(dir.join("ca.pem")).unwrap(), key)
            .unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "no-role-client");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&client_key, &issuer).unwrap();
    let h = bed.host(0);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let channel = Endpoint::from_shared(format!("https://{}", h.addr()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .identity(Identity::from_pem(cert.pem(), client_key.serialize_pem())),
        )
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let status = ContainerHostClient::new(channel)
        .list(pb::ListRequest {
            host: h.name().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("CN=no-role-client")
            && status.message().contains("carries no dockstack role")
            && status.message().contains("may not list"),
        "{status:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || audit_lines(&bed) == 1),
        "{}",
        bed.server_log(0)
    );
}

#[test]
fn a_bad_policy_stops_the_server_at_its_line_and_a_bad_one_on_sighup_keeps_the_old() {
    ensure_test_image().expect("test image");
    let path = std::env::temp_dir().join(format!("dockstack-policy-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "# operators may add NET_ADMIN and nothing else\nroles:\n  operator:\n    cap_add: [NET_ADMIN]\n",
    )
    .unwrap();
    let mut opts = BedOptions::hosts(1);
    opts.server_args = vec!["--policy".into(), path.display().to_string()];
    let mut bed = TestBed::new(opts).expect("test bed");
    bed.add_client("op", "operator");
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(122);
    let with_cap = |cap: &str| {
        bed.write_environment(&[
            BedContainer::new(&web, 0, ip).with_yaml(&format!("cap_add: [{cap}]"))
        ])
    };
    let refused = |bed: &TestBed, cap: &str| {
        let out = as_client(bed, "op", &with_cap(cap), &["run"]);
        let shown = text(&out);
        !out.status.success() && shown.contains("cap_add[0]")
    };
    assert!(refused(&bed, "NET_RAW"), "the file's rule is not in force");

    // A bad policy on SIGHUP is refused; the old one stays in force.
    std::fs::write(
        &path,
        "roles:\n  operator:\n    cap_add: NET_RAW\n    exex: true\n",
    )
    .unwrap();
    sighup(&bed, "policy not reloaded");
    assert!(
        refused(&bed, "NET_RAW"),
        "a bad policy replaced the good one"
    );
    // A good one is taken.
    std::fs::write(
        &path,
        "roles:\n  operator:\n    cap_add: [NET_ADMIN, NET_RAW]\n",
    )
    .unwrap();
    sighup(&bed, "policy reloaded");
    let out = as_client(&bed, "op", &with_cap("NET_RAW"), &["run"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = as_client(&bed, "op", &with_cap("NET_RAW"), &["destroy"]);
    assert!(out.status.success(), "{}", text(&out));

    // At start, a bad policy stops the server with its line and key.
    std::fs::write(&path, "roles:\n  operator:\n    hooks: [relative/dir]\n").unwrap();
    bed.stop_server(0).expect("stop the server");
    let err = format!(
        "{:#}",
        bed.start_server(0).expect_err("a server on a bad policy")
    );
    assert!(
        err.contains(&format!("{}:3: roles.operator.hooks[0]", path.display())),
        "{err}"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn key_files_are_0600_and_the_tls_directory_0700() {
    let bed = bed(1);
    bed.add_client("carol", "viewer");
    let dir = bed.tls_dir();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let keys: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    assert!(keys.iter().any(|k| k.ends_with("carol.key")), "{keys:?}");
    for k in keys {
        assert_eq!(mode(&k), 0o600, "{}", k.display());
    }
}

#[test]
fn an_admin_runs_a_2015_style_environment_with_its_hooks_that_an_operator_may_not() {
    ensure_test_image().expect("test image");
    // Operators may mount from the beds' directories: what is refused is
    // the hooks.
    let policy =
        std::env::temp_dir().join(format!("dockstack-policy-2015-{}.yaml", std::process::id()));
    std::fs::write(
        &policy,
        "roles:\n  operator:\n    volumes:\n      allow: [/tmp/dockstack-testbed]\n",
    )
    .unwrap();
    let mut opts = BedOptions::hosts(1);
    opts.server_args = vec!["--policy".into(), policy.display().to_string()];
    let bed = TestBed::new(opts).expect("test bed");
    let _ = std::fs::remove_file(&policy);
    bed.add_client("ops", "operator");
    // As the 2015 project laid it out: hook scripts and volumes under
    // /dockervolumes (here, the bed's directory), hooks with arguments.
    let root = bed.dir().join("dockervolumes");
    let hook = root.join("default/registerService.py");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    let log = root.join("hooks.log");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let web = bed.container_name("haproxy1");
    let yaml = format!(
        "volumes:\n- {root}/haproxy1/etc/supervisor/conf.d:/etc/supervisor/conf.d\n\
         precreation:\n- {hook} delcert --container {web} --domain endor.lab --master puppet1\n\
         postcreation:\n- {hook} add --container {web} --service haproxy\n\
         postdestroy:\n- {hook} del --container {web} --service haproxy",
        root = root.display(),
        hook = hook.display(),
    );
    let env =
        bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(123)).with_yaml(&yaml)]);
    let out = as_client(&bed, "ops", &env, &["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("precreation[0]"), "{}", text(&out));
    assert!(!log.exists(), "a hook ran for the operator");

    ok(&bed, &env, &["run"]);
    ok(&bed, &env, &["destroy"]);
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        ran.lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["delcert", "add", "del"],
        "{ran}"
    );
    assert!(bed.managed_containers(0).is_empty());
}
