//! End to end, an operator's registrations sent straight to a server's
//! gRPC API with an operator certificate: not in an admin's registry
//! container (the built-in policy names none for operators), not replacing
//! another container's line, and no certificate clean of another's name.

mod common;
use common::with_grpc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dockstack::connect::{Connector, Security};
use dockstack::environment::HostAddress;
use dockstack_proto as pb;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::support::{bed, text};
use dockstack_tests::testbed::TestBed;
use tonic::transport::Channel;

/// `dockstack certs add-client NAME --role operator`; a gRPC client of
/// host 0 with that certificate.
fn as_operator<T>(
    bed: &TestBed,
    name: &str,
    f: impl AsyncFnOnce(ContainerHostClient<Channel>) -> T,
) -> T {
    let out = bed
        .client_command()
        .args(["certs", "add-client", name, "--role", "operator"])
        .output()
        .expect("dockstack certs");
    assert!(out.status.success(), "add-client {name}: {}", text(&out));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let host = bed.host(0);
    rt.block_on(async {
        let connector =
            Connector::with_identity(Security::Tls(bed.tls_dir()), name, Duration::from_secs(5))
                .expect("the operator's certificate");
        let client = connector
            .connect(
                host.name(),
                &HostAddress::Ip(host.mgmt_ip().into()),
                host.port(),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        f(client).await
    })
}

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
    let admin_run = with_grpc(&bed, 0, async |mut c| {
        let req = pb::RunRequest {
            host: host.clone(),
            spec: Some(pb::ContainerSpec {
                name: dns.clone(),
                image: "dockstack-test-busybox:latest".into(),
                ip: bed.subnet_ip(71).to_string(),
                prefix_len: u32::from(bed.gateway().prefix()),
                bridge: bed.bridge().to_string(),
                running: true,
                volumes: vec![format!("{}:/reg", dir.0.display())],
                ..Default::default()
            }),
            ..Default::default()
        };
        drain(c.run(req).await).await
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
