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
//!   the durable message published before is still there.
//!
//! It prints the figures (the time from the kill to each cluster formed).
//! The steps are in `dockstack_tests::rabbitmq`. About 3 minutes once the
//! images exist.

#[test]
fn rabbitmq_cluster_comes_up_and_back_after_a_power_loss() {
    let figures = dockstack_tests::rabbitmq::run();
    eprintln!("{figures}");
}
