//! Privileged tests of the netplug library against a real OVS (netdev
//! datapath) and a real Linux bridge, each in namespaces of its own.

mod common;

use std::time::Duration;

use common::{BRIDGE, GATEWAY, LINUX_BRIDGE, LINUX_GATEWAY, Netns, OvsHost, spec};
use netplug::{
    BridgeKind, Netlink, NetnsTarget, Ovs, PlugError, PlugSpec, Plugger, Settle, Step, host_ifname,
    host_ifname_candidates,
};

fn ovs_spec(owner: &str, address: &str) -> PlugSpec {
    spec(owner, address, BRIDGE, GATEWAY)
}

/// Plugs on a thread in `host`'s namespace.
// PlugError is the library's own, large because it keeps the kernel's error.
#[allow(clippy::result_large_err)]
fn plug(
    host: &OvsHost,
    target: &NetnsTarget,
    spec: &PlugSpec,
) -> Result<netplug::Plugged, PlugError> {
    let plugger = host.plugger();
    host.block_on(|| async move { plugger.plug(target, spec).await })
}

fn unplug(host: &OvsHost, owner: &str) {
    let plugger = host.plugger();
    host.block_on(|| async move { plugger.unplug(owner, "eth0").await })
        .expect("unplug");
}

/// `(ifindex of the host end, ifindex of eth0)`.
fn indexes(host: &OvsHost, c: &Netns, owner: &str) -> (u32, u32) {
    let name = host_ifname(owner, "eth0");
    let target = c.target();
    host.block_on(|| async move {
        let h = Netlink::current().unwrap();
        let host_end = h.link_by_name(&name).await.unwrap().expect("host end");
        let ns = target.open().unwrap();
        let inner = Netlink::in_netns(&ns).await.unwrap();
        let eth0 = inner.link_by_name("eth0").await.unwrap().expect("eth0");
        (host_end.index, eth0.index)
    })
}

fn assert_error_step(err: &PlugError, step: Step, errno: Option<i32>) {
    assert_eq!(err.step(), Some(step), "wrong step in: {err}");
    assert_eq!(err.errno(), errno, "wrong errno in: {err}");
    assert!(
        matches!(err, PlugError::Step { .. } | PlugError::NoBridge { .. }),
        "rollback must succeed: {err}"
    );
}

#[test]
fn ovs_plug_forwards_and_unplug_removes_everything() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let mut s = ovs_spec("web1", "10.240.0.2/24");
    s.mtu = Some(1400);

    let plugged = plug(&host, &c.target(), &s).expect("plug");
    assert!(plugged.changed);
    assert_eq!(plugged.bridge_kind, BridgeKind::Ovs);
    assert_eq!(plugged.host_ifname, host_ifname("web1", "eth0"));
    assert!(plugged.host_ifname.len() <= 15);
    assert!(c.ping(GATEWAY), "no ping from the container to the gateway");
    // The host end is no IP interface of the host: the userspace datapath
    // lets the host's stack see its frames, and it must not answer them.
    let bridge_mac = netplug::Mac::from(common::link_mac(&host.ns.name, BRIDGE)).to_string();
    let neigh = c.ip(&["neigh", "show", GATEWAY]);
    assert!(
        neigh.contains(&bridge_mac),
        "gateway not via {bridge_mac}: {neigh}"
    );
    let sysctl = |path: String| host.ns.exec(&["cat", &path]).stdout;
    let end = &plugged.host_ifname;
    assert_eq!(
        sysctl(format!("/proc/sys/net/ipv4/conf/{end}/arp_ignore")),
        b"8\n"
    );
    assert_eq!(
        sysctl(format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6")),
        b"1\n"
    );

    // The rows ovs-docker writes, plus the full id.
    let ids = host.interface_ids(&plugged.host_ifname);
    assert!(ids.contains("container_id=web1"), "{ids}");
    assert!(ids.contains("container_iface=eth0"), "{ids}");
    assert!(ids.contains("dockstack_container_id=web1-full-id"), "{ids}");
    assert_eq!(
        host.vsctl(&["port-to-br", &plugged.host_ifname]).trim(),
        BRIDGE
    );
    // Inside: lo up, eth0 with derived MAC, MTU, address, default route.
    let link = c.ip(&["-o", "link", "show", "eth0"]);
    assert!(link.contains("02:d5:0a:f0:00:02"), "{link}");
    assert!(link.contains("mtu 1400"), "{link}");
    assert!(c.ip(&["-o", "link", "show", "lo"]).contains("UP"));
    assert!(
        c.ip(&["-o", "addr", "show", "eth0"])
            .contains("10.240.0.2/24")
    );
    let routes = c.ip(&["route", "show", "default"]);
    assert!(
        routes.contains(&format!("via {GATEWAY} dev eth0")),
        "{routes}"
    );

    unplug(&host, "web1");
    assert!(!c.link_names().contains(&"eth0".to_string()));
    assert_eq!(host.counts(&[&c]), before);
    // Unplugging what is not plugged is fine.
    unplug(&host, "web1");
}

#[test]
fn linux_bridge_plug_forwards_and_unplug_removes_everything() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let s = spec("lb1", "10.240.1.2/24", LINUX_BRIDGE, LINUX_GATEWAY);

    let plugged = plug(&host, &c.target(), &s).expect("plug");
    assert!(plugged.changed);
    assert_eq!(plugged.bridge_kind, BridgeKind::Linux);
    assert!(c.ping(LINUX_GATEWAY), "no ping through the Linux bridge");
    let master = host.ns.ip(&["-o", "link", "show", &plugged.host_ifname]);
    assert!(
        master.contains(&format!("master {LINUX_BRIDGE}")),
        "{master}"
    );
    // Nothing in OVS for a Linux bridge plug.
    assert_eq!(host.counts(&[&c]).ports, before.ports);

    let again = plug(&host, &c.target(), &s).expect("second plug");
    assert!(!again.changed);

    unplug(&host, "lb1");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn linux_bridge_plugs_need_no_open_vswitch() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let plugger = Plugger::new(Ovs::new(Some(format!(
        "unix:{}/no-such-db.sock",
        host.dir.display()
    ))));
    let target = c.target();
    let s = spec("noovs", "10.240.1.3/24", LINUX_BRIDGE, LINUX_GATEWAY);
    let (plugged, missing) = host.block_on(|| async {
        let plugged = plugger.plug(&target, &s).await;
        let mut other = s.clone();
        other.bridge = "nosuchbr5".into();
        (plugged, plugger.plug(&target, &other).await)
    });
    assert!(plugged.expect("plug without OVS").changed);
    assert!(c.ping(LINUX_GATEWAY));
    let err = missing.unwrap_err();
    assert!(err.to_string().contains("nosuchbr5"), "{err}");
    host.block_on(|| async { plugger.unplug("noovs", "eth0").await })
        .expect("unplug without OVS");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn same_spec_twice_changes_nothing() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let mut s = ovs_spec("idem", "10.240.0.3/24");
    s.vlan = Some(0);
    assert!(plug(&host, &c.target(), &s).unwrap().changed);
    let first = indexes(&host, &c, "idem");
    let port_uuid = host.vsctl(&["get", "Port", &s.host_ifname(), "_uuid"]);

    let again = plug(&host, &c.target(), &s).expect("second plug");
    assert!(!again.changed, "the same spec must change nothing");
    assert_eq!(indexes(&host, &c, "idem"), first, "the veth was recreated");
    assert_eq!(
        host.vsctl(&["get", "Port", &s.host_ifname(), "_uuid"]),
        port_uuid,
        "the OVS port was recreated"
    );
    assert!(c.ping(GATEWAY));

    unplug(&host, "idem");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn different_spec_replaces_the_old_plug() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let old = ovs_spec("repl", "10.240.0.4/24");
    plug(&host, &c.target(), &old).expect("first plug");
    let first = indexes(&host, &c, "repl");

    // A new address and a VLAN: both must take effect.
    let mut new = ovs_spec("repl", "10.240.0.5/24");
    new.vlan = Some(0);
    let plugged = plug(&host, &c.target(), &new).expect("replacing plug");
    assert!(plugged.changed);
    assert_ne!(indexes(&host, &c, "repl"), first);
    let addrs = c.ip(&["-o", "addr", "show", "eth0"]);
    assert!(
        addrs.contains("10.240.0.5/24") && !addrs.contains("10.240.0.4"),
        "{addrs}"
    );
    assert_eq!(
        host.vsctl(&["get", "Port", &new.host_ifname(), "tag"])
            .trim(),
        "0"
    );
    assert!(c.ping(GATEWAY), "no ping after the replacing plug");
    assert_eq!(host.counts(&[&c]).ports.len(), before.ports.len() + 1);

    // And the MAC follows an explicit value.
    let mut mac = new.clone();
    mac.mac = Some(netplug::Mac::new([0x02, 0, 0, 0, 0, 0x42]));
    assert!(plug(&host, &c.target(), &mac).unwrap().changed);
    assert!(
        c.ip(&["-o", "link", "show", "eth0"])
            .contains("02:00:00:00:00:42")
    );
    assert!(c.ping(GATEWAY));

    unplug(&host, "repl");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn eth0_name_clash_in_the_netns_rolls_back() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    c.ip(&["link", "add", "eth0", "type", "bridge"]);
    let before = host.counts(&[&c]);
    let links = c.link_names();

    let err = plug(&host, &c.target(), &ovs_spec("clash", "10.240.0.6/24")).unwrap_err();
    // The peer is created in the container under its final name, so the
    // clash stops the plug before anything exists.
    assert_error_step(&err, Step::CreateVeth, Some(libc::EEXIST));
    assert!(err.to_string().contains("clash"), "{err}");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(c.link_names(), links, "a link was left in the container");
}

#[test]
fn a_link_holding_the_host_name_moves_the_plug_to_the_next_name() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    // The host end's usual name is taken by somebody else's link, which is
    // no plug: the plug takes the next name and leaves that link alone.
    let taken = host_ifname("hclash", "eth0");
    host.ns.ip(&["link", "add", &taken, "type", "bridge"]);
    let before = host.counts(&[&c]);
    let host_links = host.ns.link_names();

    let plugged = plug(&host, &c.target(), &ovs_spec("hclash", "10.240.0.7/24")).expect("plug");
    assert_eq!(
        plugged.host_ifname,
        host_ifname_candidates("hclash", "eth0")[1]
    );
    assert!(c.ping(GATEWAY), "no ping through the second name");
    let alias = host.ns.ip(&["-d", "link", "show", &plugged.host_ifname]);
    assert!(alias.contains("alias netplug hclash/eth0"), "{alias}");
    // Plugging again finds it under that name and changes nothing.
    let again = plug(&host, &c.target(), &ovs_spec("hclash", "10.240.0.7/24")).expect("plug");
    assert!(!again.changed);
    assert_eq!(again.host_ifname, plugged.host_ifname);

    unplug(&host, "hclash");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(
        host.ns.link_names(),
        host_links,
        "unplug touched links not its own"
    );
}

#[test]
fn every_host_name_taken_is_a_clear_error_and_nothing_is_made() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    for name in host_ifname_candidates("full", "eth0") {
        host.ns.ip(&["link", "add", &name, "type", "bridge"]);
    }
    let before = host.counts(&[&c]);
    let host_links = host.ns.link_names();

    let err = plug(&host, &c.target(), &ovs_spec("full", "10.240.0.23/24")).unwrap_err();
    assert_error_step(&err, Step::NameHostEnd, Some(libc::EEXIST));
    let text = err.to_string();
    assert!(text.contains("plug full: name the host end"), "{text}");
    assert!(text.contains("no plug of netplug"), "{text}");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(host.ns.link_names(), host_links);
}

/// Two container names whose usual host-end names are the same: the hash
/// has 24 bits, so some thousands of names with one readable part give a
/// pair.
fn colliding_names() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for n in 0..1_000_000 {
        let name = format!("twin{n}");
        // Equal names mean an equal readable part too.
        if let Some(first) = seen.insert(host_ifname(&name, "eth0"), name.clone()) {
            return (first, name);
        }
    }
    panic!("no colliding pair of names found");
}

/// Runs `test` for two containers whose names collide, each plugged on the
/// bridge `bridge` (OVS or Linux) in a namespace of its own.
fn with_colliding_plugs(bridge: &str, gateway: &str, net: &str) {
    let host = OvsHost::start();
    if bridge == LINUX_BRIDGE {
        host.add_linux_bridge();
    }
    let (a, b) = colliding_names();
    assert_eq!(host_ifname(&a, "eth0"), host_ifname(&b, "eth0"));
    let (ca, cb) = (Netns::new("npc"), Netns::new("npc"));
    let before = host.counts(&[&ca, &cb]);
    let spec_a = spec(&a, &format!("{net}.21/24"), bridge, gateway);
    let spec_b = spec(&b, &format!("{net}.22/24"), bridge, gateway);

    let pa = plug(&host, &ca.target(), &spec_a).expect("plug a");
    let pb = plug(&host, &cb.target(), &spec_b).expect("plug b");
    assert_eq!(pa.host_ifname, host_ifname(&a, "eth0"));
    assert_eq!(pb.host_ifname, host_ifname_candidates(&b, "eth0")[1]);
    assert!(ca.ping(gateway) && cb.ping(gateway), "both must forward");
    assert!(
        ca.ping(&format!("{net}.22")),
        "the twins must reach each other"
    );

    // Each finds its own plug again: same spec, nothing changes, and the
    // other keeps forwarding.
    assert!(!plug(&host, &cb.target(), &spec_b).expect("b again").changed);
    assert!(!plug(&host, &ca.target(), &spec_a).expect("a again").changed);
    let plugger = host.plugger();
    let (a2, b2) = (a.clone(), b.clone());
    let (end_a, end_b) = host.block_on(|| async move {
        (
            plugger
                .host_end(&a2, "eth0")
                .await
                .unwrap()
                .expect("a's end"),
            plugger
                .host_end(&b2, "eth0")
                .await
                .unwrap()
                .expect("b's end"),
        )
    });
    assert_eq!(
        (end_a.name, end_b.name),
        (pa.host_ifname, pb.host_ifname.clone())
    );

    // Unplugging b leaves a alone, and the other way round.
    unplug(&host, &b);
    assert!(ca.ping(gateway), "unplugging b broke a");
    assert!(!cb.link_names().contains(&"eth0".to_string()));
    plug(&host, &cb.target(), &spec_b).expect("plug b again");
    unplug(&host, &a);
    assert!(cb.ping(gateway), "unplugging a broke b");
    unplug(&host, &b);
    assert_eq!(host.counts(&[&ca, &cb]), before);
}

#[test]
fn containers_whose_names_hash_alike_plugged_at_once_get_a_host_end_each() {
    let host = OvsHost::start();
    let (a, b) = colliding_names();
    let (ca, cb) = (Netns::new("npc"), Netns::new("npc"));
    let before = host.counts(&[&ca, &cb]);
    let spec_a = ovs_spec(&a, "10.240.0.25/24");
    let spec_b = ovs_spec(&b, "10.240.0.26/24");
    for round in 0..5 {
        // Both find the usual name free and race for it; the loser picks
        // again instead of failing.
        let (pa, pb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| plug(&host, &ca.target(), &spec_a).map_err(|e| e.to_string()));
            let tb = scope.spawn(|| plug(&host, &cb.target(), &spec_b).map_err(|e| e.to_string()));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let (pa, pb) = (pa.expect("plug a"), pb.expect("plug b"));
        assert_ne!(pa.host_ifname, pb.host_ifname, "round {round}");
        assert!(ca.ping(GATEWAY) && cb.ping(GATEWAY), "round {round}");
        unplug(&host, &a);
        unplug(&host, &b);
        assert_eq!(host.counts(&[&ca, &cb]), before, "round {round}");
    }
}

#[test]
fn containers_whose_names_hash_alike_get_a_host_end_each_on_ovs() {
    with_colliding_plugs(BRIDGE, GATEWAY, "10.240.0");
}

#[test]
fn containers_whose_names_hash_alike_get_a_host_end_each_on_a_linux_bridge() {
    with_colliding_plugs(LINUX_BRIDGE, LINUX_GATEWAY, "10.240.1");
}

#[test]
fn missing_bridge_is_named_and_nothing_is_made() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let links = host.ns.link_names();

    let s = spec("nobr", "10.240.0.8/24", "nosuchbr7", GATEWAY);
    let err = plug(&host, &c.target(), &s).unwrap_err();
    assert!(matches!(err, PlugError::NoBridge { .. }), "{err:?}");
    assert!(err.to_string().contains("nosuchbr7"), "{err}");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(host.ns.link_names(), links);
}

#[test]
fn address_in_use_in_the_netns_rolls_back() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    c.ip(&["link", "add", "other0", "type", "bridge"]);
    c.ip(&["addr", "add", "10.240.0.9/24", "dev", "other0"]);
    let before = host.counts(&[&c]);
    let links = c.link_names();

    let err = plug(&host, &c.target(), &ovs_spec("inuse", "10.240.0.9/24")).unwrap_err();
    assert_error_step(&err, Step::AddAddress, Some(libc::EADDRINUSE));
    assert!(err.to_string().contains("other0"), "{err}");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(c.link_names(), links);
}

#[test]
fn ovs_refusing_the_port_rolls_back() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    // OVSDB's schema allows tags up to 4095: the transaction fails after
    // the veth was made and configured.
    let mut s = ovs_spec("badtag", "10.240.0.10/24");
    s.vlan = Some(5000);
    let err = plug(&host, &c.target(), &s).unwrap_err();
    assert_error_step(&err, Step::AttachToBridge, None);
    assert!(err.to_string().contains("constraint"), "{err}");
    assert_eq!(host.counts(&[&c]), before);
    assert_eq!(c.link_names(), vec!["lo".to_string()]);
}

#[test]
fn restarted_target_gets_its_stale_port_removed_and_replugs() {
    let host = OvsHost::start();
    let name = common::unique("npr");
    let mut c = Netns::named(&name);
    let before = host.counts(&[]);
    let s = ovs_spec("restart", "10.240.0.11/24");
    plug(&host, &c.target(), &s).expect("first plug");
    assert!(c.ping(GATEWAY));

    // The container restarts: its netns goes (with the veth), a new one
    // comes at the same place; the OVS port is now stale.
    c.delete();
    let c = Netns::named(&name);
    assert!(
        host.ports().contains(&s.host_ifname()),
        "the stale port should still be there"
    );

    let plugged = plug(&host, &c.target(), &s).expect("plug after restart");
    assert!(plugged.changed);
    assert!(c.ping(GATEWAY), "no ping after the re-plug");
    assert_eq!(host.counts(&[]).ports.len(), before.ports.len() + 1);

    unplug(&host, "restart");
    assert_eq!(host.counts(&[]), before);
}

#[test]
fn gc_removes_the_ports_of_dead_owners_only() {
    let host = OvsHost::start();
    let mut dead = Netns::new("npd");
    let alive = Netns::new("npa");
    let before = host.counts(&[&alive]);
    plug(&host, &dead.target(), &ovs_spec("dead1", "10.240.0.12/24")).unwrap();
    plug(
        &host,
        &alive.target(),
        &ovs_spec("alive1", "10.240.0.13/24"),
    )
    .unwrap();
    dead.delete();

    let plugger = host.plugger();
    let (removed, errors) =
        host.block_on(|| async move { plugger.gc(|o| o.container == "alive1").await });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed, vec![host_ifname("dead1", "eth0")]);
    assert!(alive.ping(GATEWAY), "gc broke a live plug");

    unplug(&host, "alive1");
    assert_eq!(host.counts(&[&alive]), before);
}

#[test]
fn off_link_gateway_gets_a_link_route() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    // A /32: the gateway is outside the container's subnet.
    let s = ovs_spec("offlink", "10.240.0.14/32");
    plug(&host, &c.target(), &s).expect("plug");
    let routes = c.ip(&["-o", "route", "show"]);
    let has = |prefix: &str, word: &str| {
        routes
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains(word))
    };
    assert!(
        has(&format!("{GATEWAY} dev eth0"), "scope link"),
        "{routes}"
    );
    assert!(
        has(&format!("default via {GATEWAY} dev eth0"), ""),
        "{routes}"
    );
    assert!(c.ping(GATEWAY));
    assert!(!plug(&host, &c.target(), &s).unwrap().changed);

    unplug(&host, "offlink");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn many_containers_on_one_bridge_reach_each_other() {
    let host = OvsHost::start();
    let cs: Vec<Netns> = (0..4).map(|_| Netns::new("npm")).collect();
    let refs: Vec<&Netns> = cs.iter().collect();
    let before = host.counts(&refs);
    for (i, c) in cs.iter().enumerate() {
        let s = ovs_spec(&format!("many{i}"), &format!("10.240.0.{}/24", 20 + i));
        plug(&host, &c.target(), &s).expect("plug");
    }
    for (i, c) in cs.iter().enumerate() {
        let next = format!("10.240.0.{}", 20 + (i + 1) % cs.len());
        assert!(c.ping(&next), "many{i} cannot reach {next}");
    }
    for i in 0..cs.len() {
        unplug(&host, &format!("many{i}"));
    }
    assert_eq!(host.counts(&refs), before);
}

#[test]
fn every_settle_mode_forwards_at_once_after_a_quick_replug() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    for settle in [Settle::Ofport, Settle::NextCfg] {
        let plugger = Plugger::new(host.ovs().with_settle(settle));
        let target = c.target();
        for round in 0..3 {
            let s = ovs_spec("settle", "10.240.0.15/24");
            let plugger = &plugger;
            let target = &target;
            host.block_on(|| async move {
                plugger.plug(target, &s).await.expect("plug");
            });
            // One ARP, one echo, no retry: the port forwards when plug
            // returns, though OVS cached drops for this MAC while it had no
            // port (see `Ovs::forget_flows_to`).
            let out = c.exec(&["ping", "-c", "1", "-W", "1", "-q", GATEWAY]);
            assert!(
                out.status.success(),
                "{settle:?} round {round}: no forwarding at return"
            );
            host.block_on(|| async move {
                plugger.unplug("settle", "eth0").await.expect("unplug");
            });
        }
    }
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn a_quick_replug_waits_until_vswitchd_has_dropped_the_old_port() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    let s = ovs_spec("quick", "10.240.0.16/24");
    let plugger = host.plugger();
    let target = c.target();
    host.block_on(|| async { plugger.plug(&target, &s).await.expect("plug") });
    assert!(c.ping(GATEWAY));

    // A held ovs-vswitchd sees the delete and the re-add together, as a
    // busy one may.
    host.pause_vswitchd(true);
    // The unplug does not wait for ovs-vswitchd...
    host.block_on(|| async { plugger.unplug("quick", "eth0").await.expect("unplug") });
    // ...but the re-plug of the same name does, even through another
    // handle on the same database.
    let other = host.plugger();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let r = host.block_on(|| async { other.plug(&target, &s).await });
            tx.send(r).unwrap();
        });
        std::thread::sleep(Duration::from_millis(300));
        let early = rx.try_recv();
        host.pause_vswitchd(false);
        assert!(
            early.is_err(),
            "the re-plug returned before ovs-vswitchd dropped the old port"
        );
    });
    rx.recv().unwrap().expect("re-plug");
    assert!(c.ping(GATEWAY), "no ping after the quick re-plug");

    host.block_on(|| async { plugger.unplug("quick", "eth0").await.expect("unplug") });
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn a_plug_goes_on_without_the_vswitchd_control_socket() {
    let host = OvsHost::start();
    let c = Netns::new("npc");
    let before = host.counts(&[&c]);
    // The control socket serves only to drop cached flows after a re-plug;
    // where it cannot be reached (OVS in another container, say) plugging
    // works all the same.
    let ctl = host.dir.join("ovs-vswitchd.ctl");
    let hidden = host.dir.join("hidden.ctl");
    std::fs::rename(&ctl, &hidden).expect("hide the control socket");
    let s = ovs_spec("noctl", "10.240.0.24/24");
    let result = plug(&host, &c.target(), &s);
    std::fs::rename(&hidden, &ctl).expect("restore the control socket");
    assert!(result.expect("plug").changed);
    assert!(c.ping(GATEWAY));
    unplug(&host, "noctl");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn ovsdb_connection_survives_a_server_restart() {
    let mut host = OvsHost::start();
    let ovs = host.ovs();
    let o = ovs.clone();
    assert!(host.block_on(|| async move { o.bridge_exists(BRIDGE).await.unwrap() }));
    host.restart_ovsdb_server();
    let o = ovs.clone();
    assert!(
        host.block_on(|| async move { o.bridge_exists(BRIDGE).await.unwrap() }),
        "no reconnect after the restart"
    );
    let o = ovs.clone();
    assert!(!host.block_on(|| async move { o.bridge_exists("nosuchbr").await.unwrap() }));
}

#[test]
fn ovs_verbs_keep_ovs_vsctl_semantics() {
    let host = OvsHost::start();
    let ovs = host.ovs();
    let owner = netplug::PortOwner {
        container: "verbs".into(),
        iface: "eth1".into(),
        full_id: None,
    };
    host.vsctl(&[
        "add-br",
        "br1",
        "--",
        "set",
        "bridge",
        "br1",
        "datapath_type=netdev",
    ]);
    host.ns.ip(&["link", "add", "vb0", "type", "bridge"]);
    let (o, w) = (ovs.clone(), owner.clone());
    host.block_on(|| async move {
        o.add_port(BRIDGE, "vb0", &w, Some(7)).await.expect("add");
        // --may-exist: the same again is fine, and converges the tag.
        o.add_port(BRIDGE, "vb0", &w, None)
            .await
            .expect("may-exist add");
        let info = o.port_info("vb0").await.unwrap().expect("port");
        assert_eq!(info.bridge.as_deref(), Some(BRIDGE));
        assert_eq!(info.tag, None);
        assert_eq!(info.owner.as_ref(), Some(&w));
        assert!(info.ofport.is_some_and(|n| n > 0), "{info:?}");
        // On another bridge it is an error.
        let err = o.add_port("br1", "vb0", &w, None).await.unwrap_err();
        assert!(
            err.to_string().contains("already exists on bridge br0"),
            "{err}"
        );
        let err = o.add_port("nosuchbr", "vb1", &w, None).await.unwrap_err();
        assert!(err.to_string().contains("nosuchbr"), "{err}");
        o.set_vlan("vb0", 9).await.expect("set-vlan");
        assert_eq!(
            o.find_port("verbs", "eth1").await.unwrap().as_deref(),
            Some("vb0")
        );
        assert_eq!(o.find_port("verbs", "eth0").await.unwrap(), None);
        assert_eq!(
            o.owned_ports().await.unwrap(),
            vec![("vb0".to_string(), w.clone())]
        );
        assert!(
            o.bridge_ports(BRIDGE)
                .await
                .unwrap()
                .contains(&"vb0".to_string())
        );
        // --if-exists.
        o.del_port("vb0").await.expect("del");
        o.del_port("vb0").await.expect("del of a missing port");
        assert_eq!(o.port_info("vb0").await.unwrap(), None);
    });
    assert_eq!(host.vsctl(&["list-ports", BRIDGE]).trim(), "");
    // Rows as ovs-vsctl sees them: no Interface left behind.
    assert!(
        !host
            .vsctl(&["--bare", "--columns=name", "list", "Interface"])
            .contains("vb0")
    );
}

#[test]
fn settle_timeout_is_reported_when_vswitchd_is_missing() {
    let host = OvsHost::start();
    // A second database that no ovs-vswitchd serves.
    let dir = host.dir.join("lonely");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("conf.db");
    common::run(&mut common::cmd(
        "ovsdb-tool",
        &[
            "create",
            db.to_str().unwrap(),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ],
    ));
    let sock = dir.join("db.sock");
    let mut server = std::process::Command::new(common::which("ovsdb-server").unwrap())
        .args([
            db.to_str().unwrap(),
            &format!("--remote=punix:{}", sock.display()),
            &format!("--unixctl={}/ctl", dir.display()),
        ])
        .env("OVS_RUNDIR", &dir)
        .env("OVS_LOGDIR", &dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let db = format!("unix:{}", sock.display());
    common::run(&mut common::cmd(
        "ovs-vsctl",
        &[&format!("--db={db}"), "--no-wait", "init"],
    ));
    common::run(&mut common::cmd(
        "ovs-vsctl",
        &[&format!("--db={db}"), "--no-wait", "add-br", "brx"],
    ));
    let ovs = Ovs::new(Some(db)).with_settle_timeout(Duration::from_millis(300));
    let owner = netplug::PortOwner {
        container: "x".into(),
        iface: "eth0".into(),
        full_id: None,
    };
    let err = host
        .block_on(|| async move { ovs.add_port("brx", "px0", &owner, None).await })
        .unwrap_err();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        err.to_string().contains("ovs-vswitchd did not apply"),
        "{err}"
    );
}

#[test]
fn namespace_threads_return_home() {
    common::require_root_and_ovs();
    let c = Netns::new("npn");
    let own = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
    let target = std::fs::File::open(c.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = rt
        .block_on(netplug::run_in_netns(&target, || {
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        }))
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let target_ino = std::fs::metadata(c.path()).unwrap().ino();
    assert_eq!(inside.to_string_lossy(), format!("net:[{target_ino}]"));
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        own.ino()
    );
}

/// `ovs-ofctl dump-flows` of `bridge` on `host`, through its management socket.
fn dump_flows(host: &OvsHost, bridge: &str) -> String {
    let target = format!("unix:{}/{bridge}.mgmt", host.dir.display());
    common::run(&mut common::cmd(
        "ovs-ofctl",
        &["--no-stats", "dump-flows", &target],
    ))
}

/// `ping` once from `c` with source address `from`.
fn ping_from(c: &Netns, from: &str, to: &str) -> bool {
    c.exec(&["ping", "-c", "1", "-W", "2", "-q", "-I", from, to])
        .status
        .success()
}

#[test]
fn a_port_without_vlan_is_an_access_port_and_tagged_frames_are_dropped() {
    let host = OvsHost::start();
    let (a, b) = (Netns::new("npv"), Netns::new("npv"));
    let before = host.counts(&[&a, &b]);
    // `a` has no VLAN, but may send from the address of its VLAN
    // sub-interface, so that only the VLAN stands in the way.
    let mut sa = ovs_spec("untagged", "10.240.0.30/24");
    sa.allowed_addresses = vec!["10.240.2.30/32".parse().unwrap()];
    let pa = plug(&host, &a.target(), &sa).expect("plug a");
    let mut sb = spec("tagged", "10.240.2.31/24", BRIDGE, GATEWAY);
    sb.vlan = Some(10);
    plug(&host, &b.target(), &sb).expect("plug b");
    assert_eq!(
        host.vsctl(&["get", "port", &pa.host_ifname, "vlan_mode"])
            .trim(),
        "access"
    );
    assert!(a.ping(GATEWAY), "the untagged container lost its network");

    // The container (with NET_ADMIN) sends on VLAN 10 on its own: an ARP
    // request tagged 10, as a sub-interface `eth0.10` would (this kernel
    // has no 8021q module, so the frame is made by hand).
    let a_mac = sa.effective_mac().octets();
    let send_tagged = || {
        common::in_netns(&a.path(), || {
            let sock = netplug::arp::open_packet_socket().expect("packet socket");
            let index = nix::net::if_::if_nametoindex("eth0").expect("eth0");
            let arp = netplug::arp::request_frame(
                a_mac,
                "10.240.2.30".parse().unwrap(),
                "10.240.2.31".parse().unwrap(),
            );
            let mut frame = Vec::with_capacity(46);
            frame.extend_from_slice(&arp[..12]);
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 10]);
            frame.extend_from_slice(&arp[12..]);
            for _ in 0..3 {
                netplug::arp::send_frame(&sock, index, &frame).expect("send tagged frame");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // The neighbour learns the sender of every ARP request it receives.
    let b_learnt = || {
        b.ip(&["neigh", "show", "10.240.2.30"])
            .contains(&netplug::Mac::from(a_mac).to_string())
    };
    send_tagged();
    assert!(
        !b_learnt(),
        "a tagged frame from an untagged container reached VLAN 10"
    );

    // The check itself: had the port been a trunk (OVS's default for a
    // port without tag), the same frame would have got through.
    host.vsctl(&["clear", "port", &pa.host_ifname, "vlan_mode"]);
    send_tagged();
    assert!(
        b_learnt(),
        "the test does not show what access mode prevents"
    );
    // A re-plug notices the port is no access port any more.
    assert!(plug(&host, &a.target(), &sa).expect("re-plug").changed);
    b.ip(&["neigh", "flush", "all"]);
    send_tagged();
    assert!(!b_learnt(), "VLAN 10 reachable after the re-plug");

    unplug(&host, "untagged");
    unplug(&host, "tagged");
    assert_eq!(host.counts(&[&a, &b]), before);
}

/// The nftables rules of the test host (empty when there is no table).
fn bridge_rules(host: &OvsHost) -> String {
    let out = host
        .ns
        .exec(&["nft", "list", "table", "bridge", "dockstack"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Port security on `bridge`: a container sending from an address or MAC
/// not its own is dropped, one from an allowed address passes; the rules
/// go with the unplug. `rules` shows the rules of the port.
fn spoofing_is_dropped_on(
    host: &OvsHost,
    bridge: &str,
    gateway: &str,
    net: &str,
    rules: impl Fn(&str) -> bool,
) {
    let c = Netns::new("nps");
    let before = host.counts(&[&c]);
    let addr = |n: u8| format!("{net}.{n}");
    let mut s = spec("spoofer", &format!("{}/24", addr(40)), bridge, gateway);
    s.allowed_addresses = vec![
        addr(45).parse().unwrap(),
        format!("{}/30", addr(48)).parse().unwrap(),
    ];
    let plugged = plug(host, &c.target(), &s).expect("plug");
    assert!(c.ping(gateway), "no ping from the container's own address");
    assert!(rules(&plugged.host_ifname), "no rules for the port");

    // A second address, not allowed: nothing from it gets through.
    c.ip(&["addr", "add", &format!("{}/24", addr(44)), "dev", "eth0"]);
    assert!(
        !ping_from(&c, &addr(44), gateway),
        "a spoofed source IP got through"
    );
    // Allowed ones (a keepalived VIP, say), as an address or in a CIDR.
    c.ip(&["addr", "add", &format!("{}/24", addr(45)), "dev", "eth0"]);
    assert!(
        ping_from(&c, &addr(45), gateway),
        "an allowed address was dropped"
    );
    c.ip(&["addr", "add", &format!("{}/24", addr(50)), "dev", "eth0"]);
    assert!(
        ping_from(&c, &addr(50), gateway),
        "an address of an allowed CIDR was dropped"
    );
    assert!(c.ping(gateway));

    // Another MAC: dropped, even from the container's own address.
    c.ip(&["link", "set", "eth0", "address", "02:00:00:00:00:99"]);
    c.ip(&["neigh", "flush", "dev", "eth0"]);
    host.ns.ip(&["neigh", "flush", "dev", bridge]);
    assert!(!c.ping(gateway), "a spoofed source MAC got through");
    let own = s.effective_mac().to_string();
    c.ip(&["link", "set", "eth0", "address", &own]);
    assert!(
        c.ping(gateway),
        "no ping once the MAC is the container's again"
    );

    unplug(host, "spoofer");
    assert!(!rules(&plugged.host_ifname), "rules left after unplug");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn spoofed_source_addresses_and_macs_are_dropped_allowed_ones_pass() {
    let host = OvsHost::start();
    spoofing_is_dropped_on(&host, BRIDGE, GATEWAY, "10.240.0", |port| {
        let cookie = format!("{:#x}", netplug::port_cookie(port));
        let flows = dump_flows(&host, BRIDGE);
        flows.contains(&cookie) || flows.contains("in_port")
    });
}

#[test]
fn a_new_ovs_port_gets_the_number_its_rules_were_set_for() {
    let host = OvsHost::start();
    let c = Netns::new("npo");
    let plugged = plug(&host, &c.target(), &ovs_spec("numbered", "10.240.0.70/24")).expect("plug");
    let port = &plugged.host_ifname;
    // The rules were made for the number the port asked for, before the
    // port existed: no frame of it ever met the bridge without them.
    let requested = host.vsctl(&["get", "interface", port, "ofport_request"]);
    let got = host.vsctl(&["get", "interface", port, "ofport"]);
    assert_eq!(requested.trim(), got.trim());
    let flows = dump_flows(&host, BRIDGE);
    assert!(
        flows.contains(&format!("in_port={}", got.trim()))
            || flows.contains(&format!("in_port=\"{port}\"")),
        "{flows}"
    );
    unplug(&host, "numbered");
}

#[test]
fn a_linux_bridge_port_drops_spoofed_sources_too() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    spoofing_is_dropped_on(&host, LINUX_BRIDGE, LINUX_GATEWAY, "10.240.1", |port| {
        bridge_rules(&host).contains(&format!("\"{port}\""))
    });
}

#[test]
fn a_linux_bridge_port_drops_tagged_frames() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    let (a, b) = (Netns::new("npv"), Netns::new("npv"));
    let before = host.counts(&[&a, &b]);
    let sa = spec("untagged", "10.240.1.30/24", LINUX_BRIDGE, LINUX_GATEWAY);
    let pa = plug(&host, &a.target(), &sa).expect("plug a");
    let sb = spec("neighbour", "10.240.1.31/24", LINUX_BRIDGE, LINUX_GATEWAY);
    plug(&host, &b.target(), &sb).expect("plug b");
    // `b` has a VLAN 10 sub-interface's address, untagged: only the tag of
    // what `a` sends tells the two apart.
    let a_mac = sa.effective_mac().octets();
    let send = |tag: Option<u16>| {
        common::in_netns(&a.path(), || {
            let sock = netplug::arp::open_packet_socket().expect("packet socket");
            let index = nix::net::if_::if_nametoindex("eth0").expect("eth0");
            let arp = netplug::arp::request_frame(
                a_mac,
                "10.240.1.30".parse().unwrap(),
                "10.240.1.31".parse().unwrap(),
            );
            let mut frame = Vec::with_capacity(46);
            frame.extend_from_slice(&arp[..12]);
            if let Some(tag) = tag {
                frame.extend_from_slice(&[0x81, 0x00]);
                frame.extend_from_slice(&tag.to_be_bytes());
            }
            frame.extend_from_slice(&arp[12..]);
            for _ in 0..3 {
                netplug::arp::send_frame(&sock, index, &frame).expect("send frame");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let b_learnt = || {
        b.ip(&["neigh", "show", "10.240.1.30"])
            .contains(&netplug::Mac::from(a_mac).to_string())
    };
    b.ip(&["neigh", "flush", "all"]);
    send(Some(10));
    assert!(
        !b_learnt(),
        "a tagged frame got through a Linux bridge port"
    );
    // The check itself: the same request untagged does get through.
    send(None);
    assert!(b_learnt(), "the test does not show what the rules prevent");

    unplug(&host, "untagged");
    unplug(&host, "neighbour");
    assert!(
        !bridge_rules(&host).contains(&pa.host_ifname),
        "rules left after unplug"
    );
    assert_eq!(host.counts(&[&a, &b]), before);
}

#[test]
fn a_failed_linux_bridge_plug_and_a_vanished_port_leave_no_rules() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    // The address is taken in the container: the plug fails after the
    // rules were made, and rolls them back.
    let c = Netns::new("npr");
    c.ip(&["link", "add", "other0", "type", "bridge"]);
    c.ip(&["addr", "add", "10.240.1.60/24", "dev", "other0"]);
    let s = spec("rollsback", "10.240.1.60/24", LINUX_BRIDGE, LINUX_GATEWAY);
    plug(&host, &c.target(), &s).expect_err("address in use");
    let port = s.host_ifname();
    assert!(
        !bridge_rules(&host).contains(&format!("\"{port}\"")),
        "rules of a failed plug left: {}",
        bridge_rules(&host)
    );
    // A port whose namespace vanished (its container died) keeps its rules
    // until gc, which removes them and nothing else.
    let mut d = Netns::new("npr");
    let live = Netns::new("npr");
    let sd = spec("vanishes", "10.240.1.61/24", LINUX_BRIDGE, LINUX_GATEWAY);
    let sl = spec("stays", "10.240.1.62/24", LINUX_BRIDGE, LINUX_GATEWAY);
    let pd = plug(&host, &d.target(), &sd).expect("plug");
    let pl = plug(&host, &live.target(), &sl).expect("plug");
    d.delete();
    // The kernel tears a namespace down in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.ns.link_names().contains(&pd.host_ifname) {
        assert!(
            std::time::Instant::now() < deadline,
            "the veth outlived its namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(bridge_rules(&host).contains(&format!("\"{}\"", pd.host_ifname)));
    let plugger = host.plugger();
    let (removed, errors) = host.block_on(|| async move { plugger.gc_bridge_rules().await });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed, vec![pd.host_ifname.clone()]);
    let rules = bridge_rules(&host);
    assert!(
        !rules.contains(&format!("\"{}\"", pd.host_ifname)),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("\"{}\"", pl.host_ifname)),
        "{rules}"
    );
    unplug(&host, "stays");
}

#[test]
fn gc_removes_the_port_security_rules_too() {
    let host = OvsHost::start();
    let c = Netns::new("npg");
    let s = ovs_spec("gcrules", "10.240.0.42/24");
    plug(&host, &c.target(), &s).expect("plug");
    assert!(dump_flows(&host, BRIDGE).contains("in_port"));
    let plugger = host.plugger();
    let (removed, errors) = host.block_on(|| async move { plugger.gc(|_| false).await });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(removed.len(), 1);
    let flows = dump_flows(&host, BRIDGE);
    assert!(!flows.contains("in_port"), "rules left after gc: {flows}");
}

#[test]
fn a_linux_bridge_refuses_vlan() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    let c = Netns::new("npl");
    let before = host.counts(&[&c]);
    let mut s = spec("lbvlan", "10.240.1.5/24", LINUX_BRIDGE, LINUX_GATEWAY);
    s.vlan = Some(10);
    let err = plug(&host, &c.target(), &s).expect_err("vlan on a Linux bridge");
    assert!(
        err.to_string()
            .contains("vlan 10 needs an Open vSwitch bridge"),
        "{err}"
    );
    assert_eq!(host.counts(&[&c]), before);
}

/// `probe_answered_is_refused_on` a bridge: an address another namespace
/// holds on the bridge is refused, naming its MAC, and nothing is made; a
/// free one is plugged after the probe.
fn an_answered_probe_is_refused_on(host: &OvsHost, bridge: &str, gateway: &str, net: &str) {
    let (holder, newcomer) = (Netns::new("npp"), Netns::new("npp"));
    let taken = format!("{net}.80/24");
    let held = spec("holder", &taken, bridge, gateway);
    plug(host, &holder.target(), &held).expect("plug the holder");
    let before = host.counts(&[&newcomer]);
    let mut s = spec("newcomer", &taken, bridge, gateway);
    s.mac = Some("02:00:00:00:00:81".parse().unwrap());
    s.probe = Some(Duration::from_millis(150));
    let err = plug(host, &newcomer.target(), &s).expect_err("an address someone answers for");
    assert_error_step(&err, Step::Probe, Some(libc::EADDRINUSE));
    let want = held.effective_mac().to_string();
    assert!(err.to_string().contains(&want), "{err}");
    assert_eq!(host.counts(&[&newcomer]), before);
    assert!(holder.ping(gateway), "the holder lost its address");
    // A free address passes the probe.
    let free = spec("newcomer", &format!("{net}.81/24"), bridge, gateway);
    let free = PlugSpec {
        probe: Some(Duration::from_millis(150)),
        ..free
    };
    plug(host, &newcomer.target(), &free).expect("a free address");
    assert!(newcomer.ping(gateway));
    unplug(host, "newcomer");
    unplug(host, "holder");
}

#[test]
fn a_probe_answered_on_ovs_refuses_the_plug_naming_the_mac() {
    let host = OvsHost::start();
    an_answered_probe_is_refused_on(&host, BRIDGE, GATEWAY, "10.240.0");
}

#[test]
fn a_probe_answered_on_a_linux_bridge_refuses_the_plug_naming_the_mac() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    an_answered_probe_is_refused_on(&host, LINUX_BRIDGE, LINUX_GATEWAY, "10.240.1");
}

/// Dual stack on `bridge`: eth0 gets its IPv6 address usable at once (not
/// tentative), a default route through gateway6, router advertisements
/// ignored; ping6 of the gateway passes, one from another IPv6 source is
/// dropped; a re-plug of the same spec is unchanged; unplug leaves nothing.
fn dual_stack_on(host: &OvsHost, bridge: &str, gateway: &str, net: &str, net6: &str) {
    host.ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{net6}::1/64"),
        "dev",
        bridge,
        "nodad",
    ]);
    let c = Netns::new("np6");
    let before = host.counts(&[&c]);
    let mut s = spec("dual", &format!("{net}.60/24"), bridge, gateway);
    s.address6 = Some(format!("{net6}::60/64").parse().unwrap());
    s.gateway6 = Some(format!("{net6}::1").parse().unwrap());
    plug(host, &c.target(), &s).expect("dual-stack plug");
    let gw6 = format!("{net6}::1");
    assert!(c.ping(gateway), "no IPv4");
    assert!(c.ping(&gw6), "no ping6 of the IPv6 gateway");
    let addrs =
        String::from_utf8_lossy(&c.exec(&["ip", "-6", "addr", "show", "dev", "eth0"]).stdout)
            .into_owned();
    let line = addrs
        .lines()
        .find(|l| l.contains(&format!("{net6}::60/64")))
        .unwrap_or_else(|| panic!("no IPv6 address: {addrs}"));
    assert!(!line.contains("tentative"), "{line}");
    let routes = String::from_utf8_lossy(&c.exec(&["ip", "-6", "route", "show", "default"]).stdout)
        .into_owned();
    assert!(
        routes.contains(&format!("default via {gw6} dev eth0")),
        "{routes}"
    );
    let ra = c.exec(&["cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra"]);
    assert_eq!(String::from_utf8_lossy(&ra.stdout).trim(), "0");
    // The same spec again: nothing to do.
    assert!(!plug(host, &c.target(), &s).expect("re-plug").changed);
    // Another IPv6 source on eth0: dropped by port security.
    c.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{net6}::66/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    assert!(
        !ping_from(&c, &format!("{net6}::66"), &gw6),
        "a spoofed IPv6 source got through"
    );
    assert!(ping_from(&c, &format!("{net6}::60"), &gw6));
    unplug(host, "dual");
    assert_eq!(host.counts(&[&c]), before);
}

#[test]
fn a_dual_stack_plug_on_ovs_gets_its_ipv6_address_and_route_and_port_security() {
    let host = OvsHost::start();
    dual_stack_on(&host, BRIDGE, GATEWAY, "10.240.0", "fd00:240");
}

#[test]
fn a_dual_stack_plug_on_a_linux_bridge_gets_its_ipv6_address_and_route_and_port_security() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    dual_stack_on(&host, LINUX_BRIDGE, LINUX_GATEWAY, "10.240.1", "fd00:241");
}

/// Whether a UDP datagram sent in `from` from `src` to `dst` reaches a
/// socket bound to `listen` in `to`.
fn udp_arrives(
    from: &Netns,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    to: &Netns,
    listen: std::net::SocketAddr,
) -> bool {
    let rx = common::in_netns(&to.path(), || {
        std::net::UdpSocket::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"))
    });
    rx.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let tx = common::in_netns(&from.path(), || {
        std::net::UdpSocket::bind(src).unwrap_or_else(|e| panic!("bind {src}: {e}"))
    });
    let payload = b"dockstack port security";
    for _ in 0..3 {
        tx.send_to(payload, dst).expect("send");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut buf = [0u8; 64];
    loop {
        match rx.recv_from(&mut buf) {
            Ok((n, _)) if &buf[..n] == payload => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Whether a neighbour advertisement for `target` that `from` sends from
/// its own link-local address (`mac`'s) reaches `to`.
fn advertisement_arrives(
    from: &Netns,
    mac: netplug::Mac,
    target: std::net::Ipv6Addr,
    to: &Netns,
) -> bool {
    let rx = common::in_netns(&to.path(), || {
        netplug::ndp::open_packet_socket().expect("packet socket")
    });
    common::in_netns(&from.path(), || {
        let sock = netplug::arp::open_packet_socket().expect("packet socket");
        let index = nix::net::if_::if_nametoindex("eth0").expect("eth0");
        let frame = netplug::ndp::na_frame(mac.octets(), mac.link_local(), target);
        for _ in 0..3 {
            netplug::arp::send_frame(&sock, index, &frame).expect("send advertisement");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    netplug::arp::await_frame(&rx, Duration::from_millis(1500), |f, _| {
        let na = f.len() >= 78 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136;
        (na && f[62..78] == target.octets()).then_some(())
    })
    .expect("read frames")
    .is_some()
}

/// A dual-stack container on `bridge` cannot pose as the router (fe80::1)
/// or as a DHCP or DHCPv6 server: another IPv6 link-local source than its
/// own, a neighbour advertisement for another link-local target, and UDP
/// from the servers' ports 67 and 547 are dropped; its own link-local
/// address (the EUI-64 of its MAC) and other ports pass.
fn router_and_dhcp_spoofing_is_dropped_on(
    host: &OvsHost,
    bridge: &str,
    gateway: &str,
    net: &str,
    net6: &str,
) {
    use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
    let (a, b) = (Netns::new("npr6"), Netns::new("npr6"));
    let before = host.counts(&[&a, &b]);
    let mut sa = spec("poser", &format!("{net}.70/24"), bridge, gateway);
    sa.address6 = Some(format!("{net6}::70/64").parse().unwrap());
    let mut sb = spec("victim", &format!("{net}.71/24"), bridge, gateway);
    sb.address6 = Some(format!("{net6}::71/64").parse().unwrap());
    plug(host, &a.target(), &sa).expect("plug a");
    plug(host, &b.target(), &sb).expect("plug b");
    let mac = sa.effective_mac();
    let eth0 = common::in_netns(&a.path(), || {
        nix::net::if_::if_nametoindex("eth0").expect("eth0")
    });
    let scoped = |ip: Ipv6Addr, port: u16| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, eth0));
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let any6 = |port: u16| SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));

    // Its own link-local address, the kernel's, passes once its DAD is
    // done (a socket cannot be bound to a tentative address).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let shown = a.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
        let line = shown
            .lines()
            .find(|l| l.contains(&format!("{}/64", mac.link_local())));
        if line.is_some_and(|l| !l.contains("tentative")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "eth0 has not the link-local address {} (its MAC's EUI-64): {shown}",
            mac.link_local()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        udp_arrives(
            &a,
            scoped(mac.link_local(), 0),
            scoped(all_nodes, 5301),
            &b,
            any6(5301)
        ),
        "nothing from the container's own link-local address {} got through",
        mac.link_local()
    );
    // The router's link-local address: dropped.
    let router: Ipv6Addr = "fe80::1".parse().unwrap();
    a.ip(&["-6", "addr", "add", "fe80::1/64", "dev", "eth0", "nodad"]);
    assert!(
        !udp_arrives(
            &a,
            scoped(router, 0),
            scoped(all_nodes, 5302),
            &b,
            any6(5302)
        ),
        "a datagram from the link-local address fe80::1, not the container's, got through"
    );
    // Neighbour advertisements: for its own link-local address only.
    assert!(
        advertisement_arrives(&a, mac, mac.link_local(), &b),
        "an advertisement of the container's own link-local address was dropped"
    );
    assert!(
        !advertisement_arrives(&a, mac, router, &b),
        "an advertisement of fe80::1 (the router's) got through"
    );

    // DHCP: a server's answer (from port 67) is dropped, a client's passes.
    let (a4, b4) = (format!("{net}.70"), format!("{net}.71"));
    let at = |ip: &str, port: u16| SocketAddr::new(ip.parse().unwrap(), port);
    assert!(
        udp_arrives(&a, at(&a4, 68), at(&b4, 67), &b, at("0.0.0.0", 67)),
        "a DHCP client's request was dropped"
    );
    assert!(
        !udp_arrives(&a, at(&a4, 67), at(&b4, 68), &b, at("0.0.0.0", 68)),
        "a DHCP server's answer from the container got through"
    );
    // DHCPv6 likewise, from port 547.
    let (a6, b6) = (format!("{net6}::70"), format!("{net6}::71"));
    assert!(
        udp_arrives(&a, at(&a6, 546), at(&b6, 547), &b, any6(547)),
        "a DHCPv6 client's request was dropped"
    );
    assert!(
        !udp_arrives(&a, at(&a6, 547), at(&b6, 546), &b, any6(546)),
        "a DHCPv6 server's answer from the container got through"
    );

    unplug(host, "poser");
    unplug(host, "victim");
    assert_eq!(host.counts(&[&a, &b]), before);
}

#[test]
fn a_container_cannot_pose_as_the_router_or_a_dhcp_server_on_ovs() {
    let host = OvsHost::start();
    router_and_dhcp_spoofing_is_dropped_on(&host, BRIDGE, GATEWAY, "10.240.0", "fd00:240");
}

#[test]
fn a_container_cannot_pose_as_the_router_or_a_dhcp_server_on_a_linux_bridge() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    router_and_dhcp_spoofing_is_dropped_on(
        &host,
        LINUX_BRIDGE,
        LINUX_GATEWAY,
        "10.240.1",
        "fd00:241",
    );
}

/// Duplicate Address Detection on `bridge`: an IPv6 address another
/// namespace holds (its IPv4 address free) is refused, naming the holder's
/// MAC, and nothing is made; a free one passes the probe.
fn an_answered_dad_probe_is_refused_on(
    host: &OvsHost,
    bridge: &str,
    gateway: &str,
    net: &str,
    net6: &str,
) {
    host.ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{net6}::1/64"),
        "dev",
        bridge,
        "nodad",
    ]);
    let (holder, newcomer) = (Netns::new("npd"), Netns::new("npd"));
    let mut held = spec("holder6", &format!("{net}.90/24"), bridge, gateway);
    held.address6 = Some(format!("{net6}::90/64").parse().unwrap());
    let plugged = plug(host, &holder.target(), &held).expect("plug the holder");
    let before = host.counts(&[&newcomer]);
    let mut s = spec("newcomer6", &format!("{net}.91/24"), bridge, gateway);
    s.address6 = held.address6;
    s.probe = Some(Duration::from_millis(150));
    let err = plug(host, &newcomer.target(), &s).expect_err("an IPv6 address someone holds");
    assert_error_step(&err, Step::Probe, Some(libc::EADDRINUSE));
    let want = format!(
        "address {net6}::90 is already answered for on the bridge by MAC {}",
        plugged.mac
    );
    assert!(err.to_string().contains(&want), "{err}");
    assert_eq!(host.counts(&[&newcomer]), before);
    // A free IPv6 address passes.
    s.address6 = Some(format!("{net6}::92/64").parse().unwrap());
    plug(host, &newcomer.target(), &s).expect("a free IPv6 address");
    assert!(newcomer.ping(&format!("{net6}::1")));
    unplug(host, "newcomer6");
    unplug(host, "holder6");
}

#[test]
fn a_dad_probe_answered_on_ovs_refuses_the_plug_naming_the_mac() {
    let host = OvsHost::start();
    an_answered_dad_probe_is_refused_on(&host, BRIDGE, GATEWAY, "10.240.0", "fd00:240");
}

#[test]
fn a_dad_probe_answered_on_a_linux_bridge_refuses_the_plug_naming_the_mac() {
    let host = OvsHost::start();
    host.add_linux_bridge();
    an_answered_dad_probe_is_refused_on(&host, LINUX_BRIDGE, LINUX_GATEWAY, "10.240.1", "fd00:241");
}

/// A bridge that does not speak OpenFlow 1.4 is reported as such, not as
/// a refused request, though its hello is read only with the answers to
/// the requests sent behind ours; and no rule is made.
#[test]
fn a_bridge_without_openflow14_is_reported_as_such() {
    let host = OvsHost::start();
    host.vsctl(&["set", "bridge", BRIDGE, "protocols=OpenFlow10"]);
    let ovs = host.ovs();
    let mac: netplug::Mac = "02:d5:0a:f0:00:38".parse().unwrap();
    let addrs: Vec<ipnetwork::Ipv4Network> = vec!["10.240.0.56/32".parse().unwrap()];
    let err = host
        .block_on(|| ovs.set_port_security(BRIDGE, "dsofversion0", 4243, mac, &addrs, None))
        .expect_err("OpenFlow 1.4 refused");
    assert!(err.to_string().contains("OpenFlow14"), "{err}");
    assert!(!dump_flows(&host, BRIDGE).contains("cookie="));
}

/// The rules OVS holds after `set_port_security` (our OpenFlow 1.4 bytes)
/// are the very ones it holds after `ovs-ofctl --bundle add-flows` read the
/// same flow mods as text; `clear_port_security` leaves none.
#[test]
fn port_security_rules_sent_as_openflow_equal_those_ovs_ofctl_makes_of_their_text() {
    let host = OvsHost::start();
    let ovs = host.ovs();
    let mac: netplug::Mac = "02:d5:0a:f0:00:37".parse().unwrap();
    let addrs: Vec<ipnetwork::Ipv4Network> = vec![
        "10.240.0.55/32".parse().unwrap(),
        "10.240.0.64/27".parse().unwrap(),
    ];
    let a6: std::net::Ipv6Addr = "fd00:232::37".parse().unwrap();
    let port = "dsofcompare0";
    host.block_on(|| ovs.set_port_security(BRIDGE, port, 4242, mac, &addrs, Some(a6)))
        .expect("set port security over OpenFlow");
    let ours = dump_flows(&host, BRIDGE);
    let ours: Vec<&str> = ours.lines().filter(|l| l.contains("cookie=")).collect();
    assert_eq!(ours.len(), 17, "{ours:#?}");
    assert!(
        ours.iter()
            .any(|l| l.contains(&format!("nd_target={}", mac.link_local()))
                && l.contains("actions=NORMAL")),
        "{ours:#?}"
    );

    host.block_on(|| ovs.clear_port_security(port))
        .expect("clear port security over OpenFlow");
    let cleared = dump_flows(&host, BRIDGE);
    assert!(!cleared.contains("cookie="), "{cleared}");

    let text: String =
        netplug::port_security_flows(netplug::port_cookie(port), 4242, mac, &addrs, Some(a6))
            .iter()
            .map(|m| format!("{m}\n"))
            .collect();
    let target = format!("unix:{}/{BRIDGE}.mgmt", host.dir.display());
    let mut ofctl = common::cmd("ovs-ofctl", &["--bundle", "add-flows", &target, "-"]);
    ofctl.stdin(std::process::Stdio::piped());
    let mut child = ofctl
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ovs-ofctl refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = dump_flows(&host, BRIDGE);
    let theirs: Vec<&str> = theirs.lines().filter(|l| l.contains("cookie=")).collect();
    let mut a = ours.clone();
    let mut b = theirs.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// RFC 5227's simultaneous probes: two namespaces plugging one address on
/// one bridge at the same moment each see the other's probe, and at most
/// one of them gets the address (today both back off). Every other round
/// both have the MAC derived from the address, as two environment files
/// giving one address would: the other's probe, with our own MAC, is
/// still the other's.
#[test]
fn two_plugs_of_one_address_at_once_do_not_both_get_it() {
    let host = OvsHost::start();
    let (a, b) = (Netns::new("npq"), Netns::new("npq"));
    let before = host.counts(&[&a, &b]);
    for round in 0..6 {
        let mut spec_a = spec("twin-a", "10.240.0.90/24", BRIDGE, GATEWAY);
        let mut spec_b = spec("twin-b", "10.240.0.90/24", BRIDGE, GATEWAY);
        if round % 2 == 0 {
            spec_a.mac = Some("02:00:00:00:00:a1".parse().unwrap());
            spec_b.mac = Some("02:00:00:00:00:b1".parse().unwrap());
        }
        spec_a.probe = Some(Duration::from_millis(150));
        spec_b.probe = Some(Duration::from_millis(150));
        let (ra, rb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| plug(&host, &a.target(), &spec_a).map_err(|e| e.to_string()));
            let tb = scope.spawn(|| plug(&host, &b.target(), &spec_b).map_err(|e| e.to_string()));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        assert!(
            ra.is_err() || rb.is_err(),
            "round {round}: both plugs got 10.240.0.90"
        );
        for (r, name) in [(&ra, "twin-a"), (&rb, "twin-b")] {
            match r {
                Ok(_) => unplug(&host, name),
                Err(e) => assert!(
                    e.contains("02:00:00:00:00") || e.contains("02:d5:0a:f0:00:5a"),
                    "round {round}: {e}"
                ),
            }
        }
        assert_eq!(host.counts(&[&a, &b]), before, "round {round}");
    }
}
