//! `netplug`: the command-line face of the netplug library, with the
//! arguments of `ovs-docker` so either can stand in for the other.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use ipnetwork::Ipv4Network;
use netplug::{Mac, NetnsTarget, Ovs, Owner, PlugSpec, Plugger};

#[derive(Parser)]
#[command(
    name = "netplug",
    version,
    about = "Plug containers into OVS or Linux bridges with static IPs"
)]
struct Cli {
    /// OVSDB to talk to, e.g. unix:/run/openvswitch/db.sock (default: $OVS_RUNDIR/db.sock, else /var/run/openvswitch/db.sock).
    #[arg(long, global = true)]
    ovsdb: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add INTERFACE to CONTAINER and connect it to BRIDGE.
    AddPort {
        bridge: String,
        interface: String,
        /// Docker name or id, or a netns path (/run/netns/NAME, /proc/PID/ns/net).
        container: String,
        #[arg(long)]
        ipaddress: Ipv4Network,
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        #[arg(long)]
        macaddress: Option<String>,
        #[arg(long)]
        mtu: Option<u32>,
        /// OVS access VLAN tag.
        #[arg(long)]
        vlan: Option<u16>,
    },
    /// Remove INTERFACE of CONTAINER from BRIDGE.
    DelPort {
        bridge: String,
        interface: String,
        container: String,
    },
    /// Remove every interface of CONTAINER from BRIDGE.
    DelPorts { bridge: String, container: String },
    /// Set the access VLAN of INTERFACE of CONTAINER.
    SetVlan {
        bridge: String,
        interface: String,
        container: String,
        vlan: u16,
    },
}

/// Resolves a container to its netns and owner, through `docker inspect`
/// for names and ids, as ovs-docker does.
async fn resolve(container: &str) -> Result<(NetnsTarget, Owner)> {
    if container.starts_with('/') {
        let name = std::path::Path::new(container)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| container.to_string());
        return Ok((
            NetnsTarget::Path(container.into()),
            Owner {
                name,
                full_id: None,
            },
        ));
    }
    let out = tokio::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Pid}} {{.Id}} {{.Name}}",
            container,
        ])
        .output()
        .await
        .context("cannot run docker inspect")?;
    if !out.status.success() {
        bail!(
            "container {container}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let pid: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("container {container}: no pid"))?;
    if pid == 0 {
        bail!("container {container} is not running");
    }
    let id = parts.next().unwrap_or_default().to_string();
    let name = parts
        .next()
        .unwrap_or(container)
        .trim_start_matches('/')
        .to_string();
    Ok((
        NetnsTarget::Pid(pid),
        Owner {
            name,
            full_id: Some(id),
        },
    ))
}

async fn owner_name(container: &str) -> String {
    match resolve(container).await {
        Ok((_, owner)) => owner.name,
        Err(_) => container.to_string(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let ovs = match cli.ovsdb {
        Some(db) => Ovs::new(Some(db)),
        None => Ovs::from_env(),
    };
    let plugger = Plugger::new(ovs.clone());
    match cli.command {
        Command::AddPort {
            bridge,
            interface,
            container,
            ipaddress,
            gateway,
            macaddress,
            mtu,
            vlan,
        } => {
            let (target, owner) = resolve(&container).await?;
            let mac = macaddress.map(|m| m.parse::<Mac>()).transpose()?;
            let spec = PlugSpec {
                bridge,
                iface: interface,
                address: ipaddress,
                gateway,
                mac,
                mtu,
                vlan,
                allowed_addresses: Vec::new(),
                probe: None,
                owner,
            };
            let plugged = plugger.plug(&target, &spec).await?;
            println!(
                "{} {} {}",
                plugged.host_ifname,
                plugged.mac,
                if plugged.changed {
                    "plugged"
                } else {
                    "unchanged"
                }
            );
        }
        Command::DelPort {
            interface,
            container,
            ..
        } => {
            let name = owner_name(&container).await;
            plugger.unplug(&name, &interface).await?;
        }
        Command::DelPorts { container, .. } => {
            let name = owner_name(&container).await;
            let mut errors = Vec::new();
            for (_, owner) in ovs.owned_ports().await? {
                if owner.container == name
                    && let Err(e) = plugger.unplug(&name, &owner.iface).await
                {
                    errors.push(e.to_string());
                }
            }
            if !errors.is_empty() {
                bail!(errors.join("; "));
            }
        }
        Command::SetVlan {
            interface,
            container,
            vlan,
            ..
        } => {
            let name = owner_name(&container).await;
            let port = ovs
                .find_port(&name, &interface)
                .await?
                .ok_or_else(|| anyhow!("no port for {interface} of {name}"))?;
            ovs.set_vlan(&port, vlan).await?;
        }
    }
    // Deletes return before ovs-vswitchd has applied them (see
    // netplug::Settle); whoever plugs next may be another process, which
    // cannot know, so a process waits for them before it exits.
    ovs.settle_pending().await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netplug: {e:#}");
            ExitCode::FAILURE
        }
    }
}
