//! RabbitMQ and memcached of the control plane example end to end, with
//! Galera and the load balancers (the real service images of
//! `scripts/images`, Debian's packages):
//! - `apply` from nothing brings up three RabbitMQ members on two hosts
//!   (fixed node names, classic-config peer discovery), memcached, and the
//!   database tier; `plan` then shows no change;
//! - every member's `cluster_status` lists the three running; a message
//!   published through the VIP is taken from another member, one published
//!   at a member from a third;
//! - a power loss: every process of every container of the example is
//!   SIGKILLed at once; with no command from anyone (Docker's restart
//!   policies alone) Galera forms its primary component again from its saved
//!   state (`pc.recovery`), RabbitMQ's three form their cluster again, and
//!   the durable message published before is still there;
//! - a rolling apply replaces the three members one at a time under a
//!   client publishing a confirmed message through the VIP every 100 ms;
//!   each member is drained (maintenance mode) before its stop.
//!
//! It prints the figures (the time from the kill to each cluster formed,
//! the messages attempted and failed and the longest gap). The steps are in
//! `dockstack_tests::rabbitmq`. A RabbitMQ member takes 10 to 20 s to boot
//! on an idle 2-CPU machine and minutes on a loaded one, which sets the
//! test's length: 27 minutes while several other builds and tests ran.

#[test]
fn rabbitmq_cluster_comes_up_and_back_after_a_power_loss() {
    let figures = dockstack_tests::rabbitmq::run();
    eprintln!("{figures}");
}
