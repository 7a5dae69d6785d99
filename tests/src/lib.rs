//! dockstack's end-to-end test support: the test bed of simulated container hosts ([`testbed`]).

pub mod support;
pub mod testbed;
