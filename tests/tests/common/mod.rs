//! What end-to-end tests share that needs the client library (a dev
//! dependency, so not in the testbed library): a gRPC client of a host.

use std::time::Duration;

use dockstack::connect::{Connector, Security};
use dockstack::environment::HostAddress;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::testbed::TestBed;
use tonic::transport::Channel;

/// Runs `f` with a gRPC client of host `i`, over the bed's mutual TLS.
pub fn with_grpc<T>(
    bed: &TestBed,
    i: usize,
    f: impl AsyncFnOnce(ContainerHostClient<Channel>) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let host = bed.host(i);
    rt.block_on(async {
        let connector = Connector::new(Security::Tls(bed.tls_dir()), Duration::from_secs(5))
            .expect("the bed's client certificate");
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
