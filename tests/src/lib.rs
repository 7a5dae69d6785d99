//! dockstack's end-to-end test support: the test bed of simulated container hosts ([`testbed`]), the helpers the end-to-end tests share ([`support`]), those the benchmarks share ([`bench`](mod@bench)), a database's load and its figures ([`load`]), programs under a pseudo-terminal ([`pty`]), a private dockerd to hang ([`dockerd`]), a three-member etcd ([`etcd`](mod@etcd)), a node on a bed's bridge that dockstack does not know ([`foreign`]), and the control plane example ([`example`], its database tier [`controlplane`], [`rabbitmq`], [`keystone`], and all of it at once, [`whole`](mod@whole)).

pub mod bench;
pub mod controlplane;
pub mod dockerd;
pub mod etcd;
pub mod example;
pub mod foreign;
pub mod keystone;
pub mod load;
pub mod pty;
pub mod rabbitmq;
pub mod support;
pub mod testbed;
pub mod whole;
