//! dockstack's end-to-end test support: the test bed of simulated container hosts ([`testbed`]), a private dockerd to hang ([`dockerd`]), the helpers the end-to-end tests share ([`support`]) those the benchmarks share ([`bench`](mod@bench)), and a database's load and its figures ([`load`]), and programs under a pseudo-terminal ([`pty`]).

pub mod bench;
pub mod controlplane;
pub mod dockerd;
pub mod example;
pub mod keystone;
pub mod load;
pub mod pty;
pub mod rabbitmq;
pub mod support;
pub mod testbed;
