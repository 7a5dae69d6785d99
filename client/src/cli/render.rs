//! The text tables and fields the commands print.

use dockstack::environment::{Container, Environment};
use dockstack_proto::ContainerInfo;
use dockstack_types::runtime::Runtime;
use dockstack_types::{ContainerState, NetworkMode};

/// A property `get` prints; `None` for a name it does not know.
pub fn property(env: &Environment, c: &Container, p: &str) -> Option<String> {
    let list = |v: &[String]| v.join(" ");
    Some(match p {
        "name" => c.name.clone(),
        "image" => c.image.clone(),
        "ip" => c.ip.to_string(),
        "mask" => c.mask.to_string(),
        "gateway" => c.gateway.map(|g| g.to_string()).unwrap_or_default(),
        // The address alone, as `ip` is; its prefix length is `prefix6`.
        "ip6" => c.ip6.map(|n| n.ip().to_string()).unwrap_or_default(),
        "prefix6" => c.ip6.map(|n| n.prefix().to_string()).unwrap_or_default(),
        "gateway6" => c.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        "dns" => c
            .dns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        "domain" => c.domain.clone().unwrap_or_default(),
        "fqdn" => c.fqdn(),
        "bridge" => c.bridge.clone(),
        "host" => c.host.clone(),
        "hostip" => env
            .host(&c.host)
            .map(|h| h.ip.to_string())
            .unwrap_or_default(),
        "hostport" => env
            .host(&c.host)
            .map(|h| h.port.to_string())
            .unwrap_or_default(),
        "volumes" => list(&c.volumes),
        "state" => c.state.to_string(),
        "mac" => c.effective_mac().to_string(),
        "mtu" => c.mtu.map(|m| m.to_string()).unwrap_or_default(),
        "vlan" => c.vlan.map(|v| v.to_string()).unwrap_or_default(),
        "service" => c.service.clone().unwrap_or_default(),
        "restart" => c.restart.map(|r| r.to_string()).unwrap_or_default(),
        "precreation" => c.precreation.join("\n"),
        "postcreation" => c.postcreation.join("\n"),
        "postdestroy" => c.postdestroy.join("\n"),
        "env" => c
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        "command" => list(&c.command),
        "privileged" => c.privileged.to_string(),
        "cap_add" => list(&c.cap_add),
        "allowed_addresses" => c
            .allowed_addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        "after" => list(&c.after),
        "step" => c.step.to_string(),
        "oneshot" => c.oneshot.to_string(),
        "config_volumes" => c
            .config_volumes
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        key if Runtime::KEYS.contains(&key) => c.runtime.value(key),
        _ => return None,
    })
}

/// How `show` names a container's network: its sandbox, or that it is
/// plugged directly (made before sandboxes).
pub fn network_shown(i: &ContainerInfo) -> String {
    match i.network_mode() {
        NetworkMode::Sandbox => format!("sandbox {} ({})", i.sandbox, i.sandbox_container_state()),
        NetworkMode::Direct => "direct (made before sandboxes: plugged after each start)".into(),
        NetworkMode::Unknown => NetworkMode::Unknown.to_string(),
    }
}

/// The sandbox's state as the client prints it: none for a container
/// plugged directly, which has no sandbox.
pub fn sandbox_state_shown(i: &ContainerInfo) -> &'static str {
    match i.network_mode() {
        NetworkMode::Direct => "",
        _ => i.sandbox_container_state().as_str(),
    }
}

/// What `status` says of a pair that is not as it should be.
pub fn status_note(i: &ContainerInfo) -> String {
    let network: String = match (i.network_mode(), i.sandbox_container_state()) {
        (NetworkMode::Direct, _) => "direct (no sandbox)".into(),
        (NetworkMode::Sandbox, ContainerState::Missing) => "sandbox missing".into(),
        (NetworkMode::Sandbox, ContainerState::Running) => String::new(),
        (NetworkMode::Sandbox, s) if i.container_state() == ContainerState::Running => {
            format!("sandbox {s}")
        }
        _ => String::new(),
    };
    let conflict = if i.conflict.is_empty() {
        String::new()
    } else {
        format!("CONFLICT: {}", i.conflict)
    };
    // Docker's health, when the container has a healthcheck.
    [i.health.as_str(), network.as_str(), conflict.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn uptime(started_at: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
    else {
        return "-".into();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `list`'s table: name, host, address and image.
pub fn list_table(containers: &[Container]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for c in containers {
        writeln!(
            out,
            "{:<16} {:<12} {:<18} {}",
            c.name,
            c.host,
            format!("{}/{}", c.ip, c.mask),
            c.image
        )?;
    }
    Ok(())
}

/// `status`'s table: every container of the file, as its host reports it,
/// `unknown` on a host that did not answer.
pub fn status_table(env: &Environment, infos: &[ContainerInfo], failed_hosts: &[&str]) {
    for line in status_lines(env, infos, failed_hosts) {
        println!("{line}");
    }
}

/// The status table's lines: a header, then one per container of the file.
pub fn status_lines(
    env: &Environment,
    infos: &[ContainerInfo],
    failed_hosts: &[&str],
) -> Vec<String> {
    // The IPv6 column only for a file that has dual-stack containers.
    let v6 = env.containers.iter().any(|c| c.ip6.is_some());
    let ip6_of = |c: &Container| {
        if v6 {
            let ip6 = c.ip6.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            format!(" {ip6:<28}")
        } else {
            String::new()
        }
    };
    let mut lines = vec![format!(
        "{:<16} {:<12} {:<24} {:<18}{} {:<10} {:<8} {:<10} NOTE",
        "NAME",
        "HOST",
        "IMAGE",
        "IP",
        if v6 {
            format!(" {:<28}", "IP6")
        } else {
            String::new()
        },
        "STATE",
        "PLUGGED",
        "UPTIME"
    )];
    for c in &env.containers {
        let info = infos.iter().find(|i| i.name == c.name);
        let (state, plugged, up, note) = match info {
            Some(i) => (
                i.container_state().as_str(),
                if i.plugged { "yes" } else { "no" },
                uptime(&i.started_at),
                status_note(i),
            ),
            None if failed_hosts.contains(&c.host.as_str()) => {
                ("unknown", "-", "-".into(), String::new())
            }
            None => ("absent", "-", "-".into(), String::new()),
        };
        lines.push(format!(
            "{:<16} {:<12} {:<24} {:<18}{} {:<10} {:<8} {:<10} {}",
            c.name,
            c.host,
            c.image,
            format!("{}/{}", c.ip, c.mask),
            ip6_of(c),
            state,
            plugged,
            up,
            note
        ));
    }
    lines
}

/// eth0's addresses, and how many more it has than the server listed.
fn eth0_shown(i: &ContainerInfo) -> String {
    let listed = i.actual_addresses.join(" ");
    match i.actual_addresses_omitted {
        0 => listed,
        n => format!("{listed} (and {n} more, not listed)"),
    }
}

/// `show`'s fields of one container, the IPv6 ones only when it has them.
pub fn show(i: &ContainerInfo) {
    println!("{}:", i.name);
    for (k, v) in [
        ("host", i.host.clone()),
        ("id", i.id.chars().take(12).collect()),
        ("image", i.image.clone()),
        ("state", i.container_state().to_string()),
        ("pid", i.pid.to_string()),
        ("ip", i.ip.clone()),
        ("eth0", eth0_shown(i)),
        ("gateway", i.gateway.clone()),
        ("ip6", i.ip6.clone()),
        ("gateway6", i.gateway6.clone()),
        ("mac", i.mac.clone()),
        ("bridge", i.bridge.clone()),
        ("port", i.port.clone()),
        ("plugged", i.plugged.to_string()),
        ("started", i.started_at.clone()),
        ("network", network_shown(i)),
    ] {
        if v.is_empty() && k.ends_with('6') {
            continue;
        }
        println!("  {k:<8} {v}");
    }
    if i.first_creation {
        println!("  {:<8} with its first_creation settings", "created");
    }
    if !i.conflict.is_empty() {
        println!("  {:<8} {}", "conflict", i.conflict);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::property;

    #[test]
    fn get_knows_every_key_of_a_container_and_prints_an_absent_one_empty() {
        let env = dockstack::environment::parse(
            Path::new("environment.yaml"),
            "\
containerhosts:
  h1: {ip: 10.1.0.1}
containers:
  db1:
    image: db
    ip: 10.0.0.3
    mask: 16
    bridge: br0
    host: h1
    env: {A: '1', B: two}
    command: [mariadbd, --verbose]
    stop_grace_period: 2m
    ulimits: {nofile: 16384}
    init: true
    prestop: [/usr/local/bin/drain]
",
        )
        .unwrap();
        let c = env.container("db1").unwrap();
        let get = |p| property(&env, c, p);
        assert_eq!(get("env").as_deref(), Some("A=1\nB=two"));
        assert_eq!(get("command").as_deref(), Some("mariadbd --verbose"));
        assert_eq!(get("stop_grace_period").as_deref(), Some("120s"));
        assert_eq!(get("ulimits").as_deref(), Some("nofile=16384:16384"));
        assert_eq!(get("init").as_deref(), Some("true"));
        assert_eq!(get("prestop").as_deref(), Some("/usr/local/bin/drain"));
        assert_eq!(get("memory").as_deref(), Some(""), "a key left out");
        assert_eq!(get("step").as_deref(), Some("0"));
        assert_eq!(get("no_such_key"), None);
    }
}
