//! What end-to-end tests share that needs the client library (a dev
//! dependency, so not in the testbed library): a gRPC client of a host.
#![allow(
    dead_code,
    reason = "each test binary uses what it needs of this module"
)]

use std::time::Duration;

use dockstack::connect::{Connector, Security};
use dockstack::environment::HostAddress;
use dockstack_proto as pb;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::testbed::TestBed;
use tonic::transport::Channel;

/// Runs `f` with a gRPC client of host `i`, over the bed's mutual TLS.
pub fn with_grpc<T>(
    bed: &TestBed,
    i: usize,
    f: impl AsyncFnOnce(ContainerHostClient<Channel>) -> T,
) -> T {
    grpc_as(bed, i, None, f)
}

/// `dockstack certs add-client NAME --role operator`; runs `f` with a gRPC
/// client of host 0 with that certificate.
pub fn as_operator<T>(
    bed: &TestBed,
    name: &str,
    f: impl AsyncFnOnce(ContainerHostClient<Channel>) -> T,
) -> T {
    bed.add_client(name, "operator");
    grpc_as(bed, 0, Some(name), f)
}

/// A gRPC client of host `i` with the certificate `identity` of the bed's
/// TLS directory (the bed's admin client without one).
fn grpc_as<T>(
    bed: &TestBed,
    i: usize,
    identity: Option<&str>,
    f: impl AsyncFnOnce(ContainerHostClient<Channel>) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let host = bed.host(i);
    rt.block_on(async {
        let security = Security::Tls(bed.tls_dir());
        let timeout = Duration::from_secs(5);
        let connector = match identity {
            Some(name) => Connector::with_identity(security, name, timeout),
            None => Connector::new(security, timeout),
        }
        .expect("the client certificate");
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

/// A running container `name` of the bed's test image at the bed's address
/// `n`, on its bridge, as a raw request carries it (no gateway, nothing
/// else set).
pub fn test_spec(bed: &TestBed, name: &str, n: u32) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: name.into(),
        image: "dockstack-test-busybox:latest".into(),
        ip: bed.subnet_ip(n).to_string(),
        prefix_len: u32::from(bed.gateway().prefix()),
        bridge: bed.bridge().to_string(),
        running: true,
        ..Default::default()
    }
}

/// A Run of `spec` on host 0.
pub fn run_request(bed: &TestBed, spec: pb::ContainerSpec) -> pb::RunRequest {
    pb::RunRequest {
        host: bed.host(0).name().to_string(),
        spec: Some(spec),
        ..Default::default()
    }
}
