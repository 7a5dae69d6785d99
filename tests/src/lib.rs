//! dockstack's end-to-end test support: the test bed of simulated container hosts ([`testbed`]).

pub mod bench;
pub mod support;
pub mod testbed;
