//! Port security on Linux bridges: the nftables rules (bridge family) that
//! let a port's frames through only from its container's MAC and addresses,
//! the equivalent of the OpenFlow rules [`crate::ovs`] sets on OVS.
//!
//! One table, `bridge dockstack`, holds a base chain on the bridge
//! `prerouting` hook (every frame entering any Linux bridge port, whether
//! forwarded or for the host) that looks up the ingress port's name in the
//! map `ports` and jumps to that port's own chain `p-<port>`. Ports not in
//! the map (anything netplug did not plug) pass untouched. Rules match the
//! port by name, so they are in place before the port joins its bridge:
//! there is no moment at which the port forwards unfiltered.
//!
//! The rules are written with the `nft` program, one atomic transaction per
//! change (`nft -f -`): its script language is nftables' stable interface,
//! and the transaction makes every change all or nothing even when several
//! plugs race.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use ipnetwork::Ipv4Network;

use crate::mac::Mac;

const TABLE: &str = "bridge dockstack";
/// UDP source ports of DHCP's and DHCPv6's servers and relays.
const DHCP_SERVER_PORT: u16 = 67;
const DHCPV6_SERVER_PORT: u16 = 547;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error(
        "port security on a Linux bridge needs nftables, and nft cannot be run ({0}): install the nftables package"
    )]
    Missing(std::io::Error),
    #[error("nft {action} failed ({status}): {stderr}")]
    Failed {
        action: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("nft {action}: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nft list: unexpected output: {0}")]
    Unexpected(String),
}

fn chain(port: &str) -> String {
    format!("p-{port}")
}

/// The script that makes (or replaces) the rules of `port`.
pub fn secure_script(
    port: &str,
    mac: Mac,
    sources: &[Ipv4Network],
    address6: Option<Ipv6Addr>,
) -> String {
    let chain = chain(port);
    let addrs = sources
        .iter()
        .map(|a| {
            if a.prefix() == 32 {
                a.ip().to_string()
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = String::new();
    // `add` of what exists is no error, and the base chain's one rule is
    // flushed and added again, so the script is the same for the first
    // port and the hundredth, and two plugs may run it at once.
    let _ = writeln!(s, "add table {TABLE}");
    let _ = writeln!(
        s,
        "add chain {TABLE} portsec {{ type filter hook prerouting priority -200; policy accept; }}"
    );
    let _ = writeln!(s, "add map {TABLE} ports {{ type ifname : verdict; }}");
    let _ = writeln!(s, "flush chain {TABLE} portsec");
    let _ = writeln!(s, "add rule {TABLE} portsec iifname vmap @ports");
    let _ = writeln!(s, "add chain {TABLE} {chain}");
    let _ = writeln!(s, "flush chain {TABLE} {chain}");
    let _ = writeln!(s, "add rule {TABLE} {chain} ether saddr != {mac} drop");
    // A DHCP server's answers, as on OVS.
    let _ = writeln!(
        s,
        "add rule {TABLE} {chain} ip protocol udp udp sport {DHCP_SERVER_PORT} drop"
    );
    let _ = writeln!(
        s,
        "add rule {TABLE} {chain} arp saddr ether {mac} arp saddr ip {{ {addrs} }} accept"
    );
    let _ = writeln!(s, "add rule {TABLE} {chain} ip saddr {{ {addrs} }} accept");
    // RFC 5227's probes (sender 0.0.0.0): nobody learns from them.
    let _ = writeln!(
        s,
        "add rule {TABLE} {chain} arp saddr ether {mac} arp saddr ip 0.0.0.0 accept"
    );
    // A dual-stack port, as on OVS (see `ovs::port_security_flows`): only
    // its own link-local address besides its address; nft has no name for
    // a neighbour advertisement's target here, so it is matched as the 128
    // bits at offset 8 of the ICMPv6 header.
    if let Some(a6) = address6 {
        let link_local = mac.link_local();
        let own = format!("{a6}, {link_local}");
        let _ = writeln!(
            s,
            "add rule {TABLE} {chain} icmpv6 type {{ nd-router-advert, nd-redirect }} drop"
        );
        let _ = writeln!(
            s,
            "add rule {TABLE} {chain} meta l4proto udp udp sport {DHCPV6_SERVER_PORT} drop"
        );
        let _ = writeln!(
            s,
            "add rule {TABLE} {chain} icmpv6 type nd-neighbor-advert @th,64,128 != {:#034x} @th,64,128 != {:#034x} drop",
            u128::from(a6),
            u128::from(link_local)
        );
        let _ = writeln!(s, "add rule {TABLE} {chain} ip6 saddr {{ {own} }} accept");
        let _ = writeln!(
            s,
            "add rule {TABLE} {chain} ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, mld2-listener-report }} accept"
        );
    }
    // Tagged frames (a VLAN sub-interface in the container), IPv6, and
    // anything else end here: the port is an access port of its own
    // addresses.
    let _ = writeln!(s, "add rule {TABLE} {chain} drop");
    let _ = writeln!(
        s,
        "add element {TABLE} ports {{ \"{port}\" : jump {chain} }}"
    );
    s
}

/// The script that removes the rules of `port`, present or not (each is
/// made before it is deleted, in the same transaction); it fails only when
/// the table itself is missing.
pub fn clear_script(port: &str) -> String {
    let chain = chain(port);
    format!(
        "add map {TABLE} ports {{ type ifname : verdict; }}\n\
         add chain {TABLE} {chain}\n\
         add element {TABLE} ports {{ \"{port}\" : jump {chain} }}\n\
         delete element {TABLE} ports {{ \"{port}\" }}\n\
         delete chain {TABLE} {chain}\n"
    )
}

/// Lets frames from `port` into its bridge only from `mac` and, as ARP or
/// IPv4, from one of `sources`; everything else from it is dropped.
pub async fn secure_port(
    port: &str,
    mac: Mac,
    sources: &[Ipv4Network],
    address6: Option<Ipv6Addr>,
) -> Result<(), NftError> {
    run(
        "secure port",
        &["-f", "-"],
        Some(secure_script(port, mac, sources, address6)),
    )
    .await
    .map(drop)
}

/// Removes the rules of `port`; none, or no table, is no error.
pub async fn clear_port(port: &str) -> Result<(), NftError> {
    match run("clear port", &["-f", "-"], Some(clear_script(port))).await {
        Err(NftError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(())
        }
        other => other.map(drop),
    }
}

/// The ports that have rules; none when there is no table.
pub async fn secured_ports() -> Result<Vec<String>, NftError> {
    let out = match run(
        "list",
        &["-j", "list", "map", "bridge", "dockstack", "ports"],
        None,
    )
    .await
    {
        Ok(out) => out,
        // No table, or no nft at all: no rules were ever made.
        Err(NftError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => {
            return Ok(Vec::new());
        }
        Err(NftError::Missing(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    parse_ports(&out)
}

/// The port names in `nft -j list map` output.
pub fn parse_ports(json: &str) -> Result<Vec<String>, NftError> {
    let bad = || NftError::Unexpected(json.chars().take(200).collect());
    let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad())?;
    let items = v["nftables"].as_array().ok_or_else(bad)?;
    let mut ports = Vec::new();
    for item in items {
        let Some(map) = item.get("map") else { continue };
        let Some(elems) = map.get("elem") else {
            continue;
        };
        for e in elems.as_array().ok_or_else(bad)? {
            let name = e.get(0).and_then(|n| n.as_str()).ok_or_else(bad)?;
            ports.push(name.to_string());
        }
    }
    Ok(ports)
}

async fn run(
    action: &'static str,
    args: &[&str],
    stdin: Option<String>,
) -> Result<String, NftError> {
    use tokio::io::AsyncWriteExt;
    let program = ["/usr/sbin/nft", "/sbin/nft", "/usr/local/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft");
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(NftError::Missing)?;
    let io = |source| NftError::Io { action, source };
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).await.map_err(io)?;
        }
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(io)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftError::Failed {
            action,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_chain_allows_own_and_listed_sources_then_drops() {
        let mac: Mac = "02:00:0a:00:00:05".parse().unwrap();
        let s = secure_script(
            "vethab",
            mac,
            &[
                "10.0.0.5/32".parse().unwrap(),
                "10.0.9.0/24".parse().unwrap(),
            ],
            None,
        );
        let rules: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("add rule bridge dockstack p-vethab "))
            .collect();
        assert_eq!(
            rules,
            [
                "add rule bridge dockstack p-vethab ether saddr != 02:00:0a:00:00:05 drop",
                "add rule bridge dockstack p-vethab ip protocol udp udp sport 67 drop",
                "add rule bridge dockstack p-vethab arp saddr ether 02:00:0a:00:00:05 arp saddr ip { 10.0.0.5, 10.0.9.0/24 } accept",
                "add rule bridge dockstack p-vethab ip saddr { 10.0.0.5, 10.0.9.0/24 } accept",
                "add rule bridge dockstack p-vethab arp saddr ether 02:00:0a:00:00:05 arp saddr ip 0.0.0.0 accept",
                "add rule bridge dockstack p-vethab drop",
            ]
        );
        assert!(s.ends_with("add element bridge dockstack ports { \"vethab\" : jump p-vethab }\n"));
    }

    #[test]
    fn listed_ports_are_read_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"map": {"family": "bridge", "name": "ports", "table": "dockstack", "type": "ifname", "map": "verdict", "elem": [["vx1", {"jump": {"target": "p-vx1"}}], ["vx2", {"jump": {"target": "p-vx2"}}]]}}]}"#;
        assert_eq!(parse_ports(json).unwrap(), ["vx1", "vx2"]);
        let empty = r#"{"nftables": [{"metainfo": {}}, {"map": {"name": "ports"}}]}"#;
        assert!(parse_ports(empty).unwrap().is_empty());
        assert!(parse_ports("not json").is_err());
    }
}

#[cfg(test)]
mod dual_stack_tests {
    use super::*;

    #[test]
    fn a_dual_stack_port_lets_its_ipv6_through_and_no_router_advertisement() {
        let mac: Mac = "02:00:0a:00:00:05".parse().unwrap();
        let s = secure_script(
            "vethab",
            mac,
            &["10.0.0.5/32".parse().unwrap()],
            Some("fd00:10::5".parse().unwrap()),
        );
        for want in [
            "icmpv6 type { nd-router-advert, nd-redirect } drop",
            "meta l4proto udp udp sport 547 drop",
            "icmpv6 type nd-neighbor-advert @th,64,128 != 0xfd000010000000000000000000000005 @th,64,128 != 0xfe8000000000000000000afffe000005 drop",
            "ip6 saddr { fd00:10::5, fe80::aff:fe00:5 } accept",
            "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept",
        ] {
            assert!(s.contains(want), "{want}\n{s}");
        }
        // The IPv6 rules come before the final drop.
        let last = s.lines().rfind(|l| l.starts_with("add rule")).unwrap();
        assert!(last.ends_with("p-vethab drop"), "{last}");
    }
}
