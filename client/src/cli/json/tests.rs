//! The structs print what the `json!` maps they replace printed, byte for byte.

use dockstack::ops::OpError;
use dockstack_proto::ContainerInfo;
use serde_json::json;

use super::*;

fn info() -> ContainerInfo {
    ContainerInfo {
        name: "web1".into(),
        id: "0123456789abcdef".into(),
        image: "nginx".into(),
        host: "host1".into(),
        state: dockstack_proto::ContainerState::Running.into(),
        pid: 42,
        ip: "10.0.0.5/24".into(),
        actual_addresses: vec!["10.0.0.5/24".into()],
        mac: "02:d5:0a:00:00:05".into(),
        bridge: "br0".into(),
        port: "veth1".into(),
        plugged: true,
        started_at: "2026-01-01T00:00:00Z".into(),
        gateway: "10.0.0.1".into(),
        network: dockstack_proto::NetworkMode::Sandbox.into(),
        sandbox: "web1-net".into(),
        sandbox_state: dockstack_proto::ContainerState::Running.into(),
        health: "healthy".into(),
        exit_code: 3,
        environment: "/srv/environment.yaml".into(),
        ..Default::default()
    }
}

/// The map the client printed for a container's facts.
fn old_info(i: &ContainerInfo) -> serde_json::Value {
    json!({
        "name": i.name, "id": i.id, "image": i.image, "host": i.host, "state": "running",
        "pid": i.pid, "ip": i.ip, "gateway": i.gateway, "ip6": i.ip6, "gateway6": i.gateway6,
        "actual_addresses": i.actual_addresses,
        "mac": i.mac, "bridge": i.bridge, "port": i.port, "plugged": i.plugged,
        "started_at": i.started_at, "network": "sandbox", "sandbox": i.sandbox,
        "sandbox_state": "running", "health": i.health, "exit_code": i.exit_code,
        "environment": i.environment,
    })
}

fn same(new: &impl Serialize, old: &serde_json::Value) {
    assert_eq!(serde_json::to_string(new).unwrap(), old.to_string());
}

#[test]
fn info_and_outcomes_are_as_before() {
    let i = info();
    same(&Info::from(&i), &old_info(&i));
    let ok = Outcome {
        container: "web1".into(),
        host: "host1".into(),
        result: Ok(Some(i.clone())),
    };
    same(
        &OutcomeItem::from(&ok),
        &json!({"container": "web1", "host": "host1", "ok": true, "info": old_info(&i)}),
    );
    let done = Outcome {
        result: Ok(None),
        ..ok.clone()
    };
    same(
        &OutcomeItem::from(&done),
        &json!({"container": "web1", "host": "host1", "ok": true}),
    );
    for code in [Some(tonic::Code::PermissionDenied), None] {
        let failed = Outcome {
            result: Err(OpError {
                host: "host1".into(),
                container: "web1".into(),
                code,
                message: "refused".into(),
            }),
            ..ok.clone()
        };
        let mut old =
            json!({"container": "web1", "host": "host1", "ok": false, "error": "refused"});
        if let Some(code) = code {
            old["code"] = json!(format!("{code:?}"));
        }
        same(&OutcomeItem::from(&failed), &old);
    }
}

#[test]
fn list_addresses_and_apply_are_as_before() {
    let env = dockstack::environment::parse(
        std::path::Path::new("environment.yaml"),
        "containerhosts:\n  host1: {ip: 10.0.0.2}\ncontainers:\n  web1: {image: nginx, ip: 10.0.0.5, mask: 24, bridge: br0, host: host1}\n",
    )
    .unwrap();
    let c = &env.containers[0];
    same(
        &ListItem::from(c),
        &json!({"name": c.name, "host": c.host, "ip": c.ip.to_string(), "mask": c.mask, "ip6": c.ip6.map(|n| n.to_string()), "image": c.image, "state": c.state}),
    );
    let h = Holder {
        address: "10.0.0.5".parse().unwrap(),
        container: "web1".into(),
        host: "host1".into(),
        mac: "02:d5:0a:00:00:05".into(),
        state: "running".into(),
        environment: "/srv/environment.yaml".into(),
    };
    same(
        &Address::held(&h, false),
        &json!({"address": h.address.to_string(), "container": h.container, "host": h.host, "mac": h.mac, "state": h.state, "environment": h.environment}),
    );
    same(
        &Address::held(&h, true),
        &json!({"address": h.address.to_string(), "container": h.container, "host": h.host, "mac": h.mac, "state": h.state, "environment": h.environment, "reservation": "held"}),
    );
    let r = dockstack::ops::cluster::Reservation {
        address: h.address,
        container: "web2".into(),
        host: "host2".into(),
        file: "/srv/b.yaml".into(),
        mac: "02:d5:0a:00:00:06".into(),
        since_unix_ms: 0,
    };
    same(
        &Address::orphan(&r),
        &json!({"address": h.address.to_string(), "container": r.container, "host": r.host, "mac": r.mac, "state": "orphan", "environment": r.file, "reservation": "orphan"}),
    );
    let done = vec![("web1".to_string(), "create")];
    for error in [None, Some("boom".to_string())] {
        let old_done: Vec<_> = done
            .iter()
            .map(|(c, v)| json!({"container": c, "action": v}))
            .collect();
        same(
            &Applied::new("abc", &done, error.clone()),
            &json!({"plan_id": "abc", "done": old_done, "error": error}),
        );
    }
}
