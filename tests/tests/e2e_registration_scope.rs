//! End to end, an operator's registrations sent straight to a server's
//! gRPC API with an operator certificate: not in an admin's registry
//! container (the built-in policy names none for operators), not replacing
//! another container's line, and no certificate clean of another's name.

mod common;
use common::{as_operator, run_request, test_spec, with_grpc};

use std::path::{Path, PathBuf};

use dockstack_proto as pb;
use dockstack_tests::support::bed;
use dockstack_tests::testbed::{BedOptions, TestBed, ensure_test_image};

/// A scratch directory of the admin's registry container, removed when
/// dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Drains a streamed operation: `Ok` when it succeeded.
async fn drain(
    events: Result<tonic::Response<tonic::Streaming<pb::Event>>, tonic::Status>,
) -> Result<(), tonic::Status> {
    let mut events = events?.into_inner();
    while events.message().await?.is_some() {}
    Ok(())
}

/// A running container of the bed's test image.
fn spec(bed: &TestBed, name: &str, n: u32, domain: &str, volumes: &[String]) -> pb::RunRequest {
    let spec = pb::ContainerSpec {
        domain: domain.into(),
        volumes: volumes.to_vec(),
        ..test_spec(bed, name, n)
    };
    run_request(bed, spec)
}

const ADMIN_LINE: &str = "10.232.200.7 admin1.admin.lab";

#[test]
fn an_operator_may_not_use_an_admins_registry_nor_take_over_anothers_name() {
    let bed = bed(1);
    let host = bed.host(0).name().to_string();
    let dns = bed.container_name("reg-admin-dns");
    let dir = Scratch(Path::new("/srv/dockstack").join(&dns));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let hostsfile = dir.0.join("hosts");
    std::fs::write(&hostsfile, format!("{ADMIN_LINE}\n")).unwrap();

    // The admin's DNS container, with the hosts file in its volume.
    let volume = format!("{}:/reg", dir.0.display());
    let admin_run = with_grpc(&bed, 0, async |mut c| {
        drain(c.run(spec(&bed, &dns, 71, "", &[volume])).await).await
    });
    admin_run.expect("the admin's registry container");

    let (register, clean) = as_operator(&bed, "ops-reg", async |mut c| {
        // The operator claims the admin's name for an address of its own.
        let req = pb::RegisterRequest {
            host: host.clone(),
            name: "admin1".into(),
            fqdn: "admin1.admin.lab".into(),
            ip: bed.subnet_ip(72).to_string(),
            dns: Some(pb::DnsTarget {
                container: dns.clone(),
                hostsfile: hostsfile.display().to_string(),
                reload: String::new(),
            }),
            ..Default::default()
        };
        let register = drain(c.register(req).await).await;
        let req = pb::ExecRequest {
            host: host.clone(),
            container: dns.clone(),
            command: "puppet cert clean admin1.admin.lab".into(),
            success_codes: vec![],
        };
        let clean = drain(c.exec(req).await).await;
        (register, clean)
    });

    let status = register.expect_err("an operator registered in the admin's DNS container");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("dns.container"),
        "register: {status:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&hostsfile).unwrap(),
        format!("{ADMIN_LINE}\n"),
        "the admin's line was replaced"
    );
    let status = clean.expect_err("an operator's cert clean of the admin's name was run");
    assert_eq!(
        status.code(),
        tonic::Code::PermissionDenied,
        "cert clean: {status:?}"
    );
}

#[test]
fn an_operator_registers_its_own_containers_as_their_records_say_in_the_registries_of_its_policy() {
    ensure_test_image().expect("test image");
    // The registry and its directory are named before the bed: the
    // policy names them.
    let dir = Scratch(Path::new("/srv/dockstack").join(format!("reg-ops-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let hostsfile = dir.0.join("hosts");
    std::fs::write(&hostsfile, format!("{ADMIN_LINE}\n")).unwrap();
    let policy = dir.0.with_extension("policy.yaml");
    let registry = format!("regops{}", std::process::id());
    std::fs::write(
        &policy,
        format!(
            "roles:\n  operator:\n    registration:\n      dns_containers: [{registry}]\n      \
             puppet_masters: [{registry}]\n      files: [{}]\n      domains: [ops.lab]\n",
            dir.0.display()
        ),
    )
    .unwrap();
    let bed = TestBed::new(BedOptions {
        server_args: vec!["--policy".into(), policy.display().to_string()],
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let _ = std::fs::remove_file(&policy);
    let host = bed.host(0).name().to_string();
    let (web, adm) = (bed.container_name("web-ops"), bed.container_name("adm"));
    let volume = format!("{}:/reg", dir.0.display());
    with_grpc(&bed, 0, async |mut c| {
        for req in [
            spec(&bed, &registry, 81, "", std::slice::from_ref(&volume)),
            spec(&bed, &adm, 83, "admin.lab", &[]),
        ] {
            drain(c.run(req).await)
                .await
                .expect("the admin's containers");
        }
    });

    let register = |name: &str, fqdn: &str, n: u32| pb::RegisterRequest {
        host: host.clone(),
        name: name.into(),
        fqdn: fqdn.into(),
        ip: bed.subnet_ip(n).to_string(),
        dns: Some(pb::DnsTarget {
            container: registry.clone(),
            hostsfile: hostsfile.display().to_string(),
            reload: String::new(),
        }),
        ..Default::default()
    };
    let clean = |fqdn: &str| pb::ExecRequest {
        host: host.clone(),
        container: registry.clone(),
        command: format!("puppet cert clean {fqdn}"),
        success_codes: vec![],
    };
    let web_fqdn = format!("{web}.ops.lab");
    let results = as_operator(&bed, "ops-own", async |mut c| {
        drain(c.run(spec(&bed, &web, 82, "ops.lab", &[])).await)
            .await
            .expect("the operator's container");
        let mut results = Vec::new();
        for req in [
            // Its own container, as its record says: taken.
            register(&web, &web_fqdn, 82),
            // Its own, at another container's address: not what the record says.
            register(&web, &web_fqdn, 83),
            // The admin's container, in the operator's domain or its own.
            register(&adm, &format!("{adm}.ops.lab"), 82),
            register(&adm, &format!("{adm}.admin.lab"), 83),
        ] {
            results.push(drain(c.register(req).await).await);
        }
        results.push(drain(c.exec(clean(&web_fqdn)).await).await);
        results.push(drain(c.exec(clean(&format!("{adm}.admin.lab"))).await).await);
        results
    });
    assert!(results[0].is_ok(), "its own registration: {:?}", results[0]);
    for (i, key) in [(1, "ip"), (2, "fqdn"), (3, "fqdn")] {
        let status = results[i]
            .as_ref()
            .expect_err(&format!("request {i} taken"));
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{i}: {status:?}"
        );
        assert!(
            status.message().contains(&format!(": {key}: ")),
            "{i}: {status:?}"
        );
    }
    // The clean of its own name is let through (busybox has no puppet).
    let status = results[4].as_ref().expect_err("busybox has no puppet");
    assert_ne!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let status = results[5].as_ref().expect_err("clean of the admin's name");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(
        std::fs::read_to_string(&hostsfile).unwrap(),
        format!("{ADMIN_LINE}\n{} {web_fqdn}\n", bed.subnet_ip(82)),
    );
}
