//! The hosts editor: arbitrary text, then register and deregister calls
//! (see the crate's `Input`), with the invariants in `dockstack_fuzz::hosts`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dockstack_fuzz::hosts::run(&dockstack_fuzz::Input::decode(data));
});
