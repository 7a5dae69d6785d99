//! End to end, requests sent straight to a server's gRPC API with names and
//! images that are not Docker's: each is refused as an invalid argument
//! before anything reaches Docker's API (where `../` and `?` in a URL path
//! would reach another endpoint), and a name is never written raw into the
//! server's log.

mod common;
use common::with_grpc;

use dockstack_proto as pb;
use dockstack_tests::support::{bed, ok};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};
use tonic::Code;

/// A path and query that bollard would put into the URL of an inspect.
const ESCAPE: &str = "../images/get?names=busybox&x=";

fn spec(name: &str, image: &str) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: name.into(),
        image: image.into(),
        ip: "10.232.9.9".into(),
        prefix_len: 24,
        bridge: "br0".into(),
        running: true,
        ..Default::default()
    }
}

#[test]
fn names_and_images_outside_dockers_grammar_are_refused_on_every_rpc() {
    let bed = bed(1);
    let host = bed.host(0).name().to_string();
    let forged = "x\naudit: refused client=forged role=admin action=run";
    let codes = with_grpc(&bed, 0, async |mut c| {
        let r = |name: &str| pb::ContainerRef {
            host: host.clone(),
            name: name.into(),
        };
        let mut codes = Vec::new();
        codes.push(("show ../", c.show(r(ESCAPE)).await.map(|_| ()).err()));
        codes.push(("show newline", c.show(r(forged)).await.map(|_| ()).err()));
        let id = "0123456789abcdef".repeat(4);
        codes.push(("show id", c.show(r(&id)).await.map(|_| ()).err()));
        let plan = pb::PlanRequest {
            host: host.clone(),
            specs: vec![spec("web1", ESCAPE)],
        };
        codes.push(("plan image", c.plan(plan).await.map(|_| ()).err()));
        let run = pb::RunRequest {
            host: host.clone(),
            spec: Some(spec("web1", "busybox?x=1")),
            first_creation: None,
            replace: false,
        };
        codes.push(("run image", c.run(run).await.map(|_| ()).err()));
        let register = pb::RegisterRequest {
            host: host.clone(),
            name: "web1".into(),
            ip: "10.232.9.9".into(),
            dns: Some(pb::DnsTarget {
                container: ESCAPE.into(),
                hostsfile: "/srv/hosts".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        codes.push(("register dns", c.register(register).await.map(|_| ()).err()));
        let register = pb::RegisterRequest {
            host: host.clone(),
            name: "web1".into(),
            ip: "10.232.9.9".into(),
            puppet: Some(pb::PuppetTarget {
                master: ESCAPE.into(),
                hieradata: "/srv/common.yaml".into(),
                sitepp: "/srv/site.pp".into(),
            }),
            ..Default::default()
        };
        codes.push((
            "register puppet",
            c.register(register).await.map(|_| ()).err(),
        ));
        codes
    });
    for (what, status) in codes {
        let status = status.unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    }
    let log = bed.server_log(0);
    assert!(
        !log.lines()
            .any(|l| l.trim_start().starts_with("audit: refused client=forged")),
        "a name wrote a line of its own into the log:\n{log}"
    );
}

/// Finding 11 of the second audit: a viewer's plan of 10,000 specs naming
/// one container had it inspected, and its config volumes hashed, 10,000
/// times. One spec per container, and at most 2,048 of them.
#[test]
fn a_plan_naming_a_container_twice_or_too_many_is_refused() {
    let bed = bed(1);
    let host = bed.host(0).name().to_string();
    let plan = |names: Vec<String>| pb::PlanRequest {
        host: host.clone(),
        specs: names.iter().map(|n| spec(n, "busybox")).collect(),
    };
    let (many, twice, over, most) = with_grpc(&bed, 0, async |mut c| {
        let many = c.plan(plan(vec!["web1".into(); 10_000])).await;
        let twice = c.plan(plan(vec!["web1".into(), "web1".into()])).await;
        let over = c
            .plan(plan((0..2_049).map(|i| format!("web{i}")).collect()))
            .await;
        let most = c
            .plan(plan((0..2_048).map(|i| format!("web{i}")).collect()))
            .await;
        (many, twice, over, most)
    });
    for (what, result, says) in [
        ("10000 of one", many, "at most 2048"),
        ("two of one", twice, "named by more than one spec"),
        ("2049", over, "at most 2048"),
    ] {
        let status = result.err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(status.message().contains(says), "{what}: {status:?}");
    }
    let most = most.expect("2048 containers, each once").into_inner();
    assert_eq!(most.entries.len(), 2_048);
}

/// Finding 15 of the second audit, the rest of it: values a client may
/// send with a line break in them (a command word of an exec, a file's
/// path in a registration), and a line a container prints, are logged as
/// one line each, at every level.
#[test]
fn a_line_break_sent_by_a_client_or_printed_by_a_container_forges_no_log_line() {
    ensure_test_image().expect("test image");
    let mut opts = BedOptions::hosts(1);
    opts.server_env.push(("RUST_LOG".into(), "debug".into()));
    let bed = TestBed::new(opts).expect("test bed");
    let web = bed.container_name("web");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(70))]);
    ok(&bed, &env, &["-c", &web, "run"]);
    let host = bed.host(0).name().to_string();
    let forged = "audit: refused client=forged role=admin action=exec";
    let codes = with_grpc(&bed, 0, async |mut c| {
        let mut codes = Vec::new();
        for command in [
            format!("/bin/echo \"ok\n{forged}\""),
            format!("/bin/sh -c \"exit 3\" \"\n{forged}\""),
        ] {
            let req = pb::ExecRequest {
                host: host.clone(),
                container: web.clone(),
                command,
                success_codes: Vec::new(),
            };
            let mut events = c.exec(req).await.expect("exec accepted").into_inner();
            let end = loop {
                match events.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break Code::Ok,
                    Err(s) => break s.code(),
                }
            };
            codes.push(end);
        }
        // A path may hold a line break; the error naming it is logged.
        let register = pb::RegisterRequest {
            host: host.clone(),
            name: web.clone(),
            ip: "10.232.9.9".into(),
            dns: Some(pb::DnsTarget {
                container: web.clone(),
                hostsfile: format!("/nonexistent\n{forged}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let end = match c.register(register).await {
            Err(s) => s.code(),
            Ok(r) => {
                let mut events = r.into_inner();
                loop {
                    match events.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break Code::Ok,
                        Err(s) => break s.code(),
                    }
                }
            }
        };
        codes.push(end);
        codes
    });
    assert_eq!(codes[..2], [Code::Ok, Code::Aborted]);
    assert_ne!(codes[2], Code::Ok, "a hosts file that is not there");
    let log = bed.server_log(0);
    assert!(
        log.contains("exec output"),
        "no exec output logged at debug level:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with(forged)),
        "a client's value or a container's output wrote a line of its own into the log:\n{log}"
    );
    // Still logged, escaped.
    assert!(
        log.contains(&format!("/nonexistent\\n{forged}")),
        "the refused registration is not logged:\n{log}"
    );
}
