//! dockstack's end-to-end test support: the test bed of simulated container hosts ([`testbed`]), the helpers the end-to-end tests share ([`support`]) and those the benchmarks share ([`bench`](mod@bench)).

pub mod bench;
pub mod support;
pub mod testbed;
