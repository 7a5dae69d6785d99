//! The test bed: simulated container hosts (a network namespace each, with its own Open vSwitch and its own `dockstack-server`) on the machine's real dockerd, their slot allocation across test processes, their cleanup, and the locally built test images.
//!
//! A bed lives in a *slot* (1..=250 for tests, 0 for the demo) that fixes all
//! its names and addresses, so parallel test processes never collide:
//!
//! | what | name / address |
//! |---|---|
//! | host i's network namespace | `dsb<slot>h<i>` |
//! | host i's management veth, root end | `dsm<slot>h<i>`, `10.231.<slot>.<4i+1>/30` |
//! | host i's management veth, host end | `mgmt0`, `10.231.<slot>.<4i+2>/30` (the server listens here) |
//! | host i's run dir (OVS db, sockets, logs, `server.log`) | `/tmp/dockstack-testbed/<slot>/h<i>/` |
//! | host i's bridge `br0` | host 0: the gateway (default `10.232.<slot>.1/24`); host i>0: the gateway network's `.250-i` |
//! | its IPv6 address (dual stack) | host 0: the IPv6 gateway `fd00:232:<slot>::1/64`; host i>0: the prefix's (250-i)-th address |
//! | the wire between host 0 and host i | veth `wire<i>` (in host 0) ↔ `wire0` (in host i), both OVS ports |
//! | host names (`--host-id`, `dockstack.host` label) | `bed<slot>-h<i>` |
//! | container names of the bed's tests | `t<slot>-<base>` |
//!
//! Nothing is ever sent outside the bed's own namespaces: the bed adds
//! `unreachable` routes for `10.231.<slot>.0/24` (and `10.232.<slot>.0/24` with the
//! default gateway) in the root namespace, so even a management link that is
//! down cannot leak traffic to the machine's default route.
//!
//! Cleanup (in `Drop`, [`TestBed::teardown`], on taking a slot that a crashed
//! process left behind, and `dockstack-testbed down`) is driven by the slot
//! number alone and gathers every error instead of stopping at the first.
//! Set `DOCKSTACK_TESTBED_KEEP=1` to leave a bed up after its test for
//! inspection (`dockstack-testbed down --slot N` removes it).

mod bed;
mod cleanup;
mod environment;
mod host;
mod hostnet;
mod images;
mod layout;
mod options;
mod ovs;
mod preconditions;
mod process;
mod servers;
mod setup;
mod slots;
mod tools;

pub use bed::TestBed;
pub use cleanup::{cleanup_all, cleanup_slot};
pub use host::Host;
pub use hostnet::set_tx_checksum_offload;
pub use images::{ensure_dnsmasq_image, ensure_test_image, example_images};
pub use layout::{
    BED_ROOT, DEMO_SLOT, DNSMASQ_IMAGE, HOST_LABEL, KEEP_ENV, MAX_HOSTS, MAX_SLOT, SANDBOX_SUFFIX,
    SERVER_PORT, TEST_IMAGE, slot_dir,
};
pub use options::{BedContainer, BedOptions};
pub use ovs::{kill_ovs_daemon, start_ovsdb, start_vswitchd, stop_ovsdb};
pub use preconditions::{check_preconditions, check_root};
pub use tools::{docker, find_binary, ip, tail, target_dir};
