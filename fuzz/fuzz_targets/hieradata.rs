//! The hieradata editor: arbitrary text, then register and deregister calls
//! (see the crate's `Input`), with the invariants in `dockstack_fuzz::hieradata`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dockstack_fuzz::hieradata::run(&dockstack_fuzz::Input::decode(data));
});
