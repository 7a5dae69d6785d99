//! Privileged tests of Open vSwitch restarting under a plug: a [`netplug::OvsWatch`]
//! sees either daemon go, and the rules a handle set come back from its
//! memory for the ports still there.

mod common;

use std::time::Duration;

use common::{BRIDGE, GATEWAY, Netns, OvsHost};
use netplug::{Ovs, OvsLost, OvsWatch, PlugSpec, Plugger};

fn spec(owner: &str, address: &str) -> PlugSpec {
    common::spec(owner, address, BRIDGE, GATEWAY)
}

fn dump_flows(host: &OvsHost) -> String {
    let target = format!("unix:{}/{BRIDGE}.mgmt", host.dir.display());
    common::run(&mut common::cmd(
        "ovs-ofctl",
        &["--no-stats", "dump-flows", &target],
    ))
}

/// A watch of `ovs`, tried until both daemons answer.
async fn watch_again(ovs: &Ovs) -> OvsWatch {
    for _ in 0..1000 {
        if let Ok(w) = ovs.watch().await {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("Open vSwitch not back within 10 s");
}

#[test]
fn a_vswitchd_restart_is_seen_and_the_remembered_rules_come_back_for_ports_still_there() {
    let host = OvsHost::start();
    let (a, b) = (Netns::new("npr"), Netns::new("npr"));
    let ovs = host.ovs();
    let plugger = Plugger::new(ovs.clone());
    let (pa, pb) = (a.target(), b.target());
    let (port_a, flows_between) = host.block_on(|| async {
        let plugged = plugger
            .plug(&pa, &spec("npr-a", "10.240.0.21/24"))
            .await
            .expect("plug a");
        plugger
            .plug(&pb, &spec("npr-b", "10.240.0.22/24"))
            .await
            .expect("plug b");
        let mut watch = ovs.watch().await.expect("watch");
        assert_eq!(watch.bridges(), vec![BRIDGE]);
        host.kill_daemon("ovs-vswitchd");
        match watch.lost().await {
            OvsLost::Vswitchd { bridge, .. } => assert_eq!(bridge, BRIDGE),
            other => panic!("lost {other:?}"),
        }
        // b's port goes while ovs-vswitchd is away: its rules stay gone.
        host.vsctl(&[
            "--no-wait",
            "del-port",
            &netplug::host_ifname("npr-b", "eth0"),
        ]);
        host.respawn("ovs-vswitchd");
        let _watch = watch_again(&ovs).await;
        let between = dump_flows(&host);
        let restored = ovs.restore_port_security().await.expect("restore");
        assert_eq!(restored, vec![plugged.host_ifname.clone()]);
        (plugged.host_ifname, between)
    });
    assert!(
        !flows_between.contains("nw_src="),
        "rules survived ovs-vswitchd: {flows_between}"
    );
    let flows = dump_flows(&host);
    assert!(flows.contains("nw_src=10.240.0.21 "), "{flows}");
    assert!(!flows.contains("nw_src=10.240.0.22 "), "{flows}");
    assert!(a.ping(GATEWAY), "{port_a} does not forward");
    // The rules hold: a hand-added address gets nowhere.
    a.ip(&["addr", "add", "10.240.0.99/24", "dev", "eth0"]);
    assert!(
        !a.exec(&["ping", "-c1", "-W1", "-q", "-I", "10.240.0.99", GATEWAY])
            .status
            .success(),
        "a spoofed source passed after the restore"
    );
}

#[test]
fn an_ovsdb_server_restart_is_seen() {
    let host = OvsHost::start();
    let ovs = host.ovs();
    host.block_on(|| async {
        let mut watch = ovs.watch().await.expect("watch");
        host.kill_daemon("ovsdb-server");
        assert_eq!(watch.lost().await, OvsLost::Ovsdb);
        host.respawn("ovsdb-server");
        let watch = watch_again(&ovs).await;
        assert_eq!(watch.bridges(), vec![BRIDGE]);
    });
}
