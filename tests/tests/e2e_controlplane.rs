//! The control plane example end to end, with the real service images of
//! `scripts/images` (Debian's MariaDB, Galera, haproxy, keepalived), under a
//! writer through the VIP from the other host the whole time:
//! - `apply` from nothing brings up two load balancers holding a VIP, a
//!   bootstrapping member and two joiners on two hosts; `plan` then shows no
//!   change; the cluster has three members read through the VIP;
//! - a rolling replacement of the three members by `apply` fails no write,
//!   loses no acknowledged row, keeps two members serving (Synced, or the
//!   IST donor) and one Synced at every moment, and each member shuts down
//!   cleanly, rejoins by IST and keeps its address and MAC;
//! - a load balancer's `stop` moves the VIP to the other and writes go on;
//! - a `docker restart` of a member and a SIGKILL of its mariadbd bring it
//!   back Synced with its address;
//! - `destroy` shuts every member down cleanly (its grastate keeps a seqno).
//!
//! It prints the figures (writes attempted and failed, the longest gap);
//! `bench-controlplane` runs it several times. The steps are in
//! `dockstack_tests::controlplane`.
//!
//! About 2 minutes once the images exist; building them from nothing adds
//! 2.5 to 3.5 minutes, once.

#[test]
fn controlplane_example_comes_up_with_galera_behind_the_vip() {
    let figures = dockstack_tests::controlplane::run();
    eprintln!("{figures}");
}
