//! `netplug`: the command-line face of the netplug library, with the
//! arguments of `ovs-docker` so either can stand in for the other.

use dockstack_types::ip6::is_link_local;
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use ipnetwork::{Ipv4Network, Ipv6Network};
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
        /// Dual stack: an IPv6 ADDR/LEN besides the IPv4 one.
        #[arg(long)]
        ipaddress6: Option<Ipv6Network>,
        /// The IPv6 default route's next hop; needs --ipaddress6.
        #[arg(long, requires = "ipaddress6")]
        gateway6: Option<Ipv6Addr>,
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

/// Docker's API on its socket (`$DOCKER_HOST` when it is a `unix://` one,
/// as the docker CLI reads it). API 1.41 (Docker 20.10): the one call made,
/// inspect, reads the same in every later version, and no round trip is
/// spent asking the daemon for its own.
fn docker() -> Result<bollard::Docker> {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
    let version = bollard::ClientVersion {
        major_version: 1,
        minor_version: 41,
    };
    bollard::Docker::connect_with_unix(&socket, 30, &version)
        .with_context(|| format!("cannot reach dockerd at {socket}"))
}

/// Resolves a container to its netns and owner by name or id, as
/// ovs-docker does through `docker inspect`, but asking dockerd itself
/// rather than forking the docker CLI (some 25 ms each time).
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
    let inspected = match docker()?.inspect_container(container, None).await {
        Ok(c) => c,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => bail!("container {container}: no such container"),
        Err(e) => bail!("container {container}: docker inspect: {e}"),
    };
    let pid = inspected
        .state
        .and_then(|s| s.pid)
        .and_then(|p| u32::try_from(p).ok())
        .ok_or_else(|| anyhow!("container {container}: no pid"))?;
    if pid == 0 {
        bail!("container {container} is not running");
    }
    let id = inspected.id.unwrap_or_default();
    let name = inspected
        .name
        .as_deref()
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
    // This process exits as soon as it is done; see `short_lived`.
    let plugger = Plugger::new(ovs.clone()).short_lived();
    match cli.command {
        Command::AddPort {
            bridge,
            interface,
            container,
            ipaddress,
            gateway,
            ipaddress6,
            gateway6,
            macaddress,
            mtu,
            vlan,
        } => {
            // What the plug would do first without the container goes
            // beside the inspect.
            let (resolved, ()) = tokio::join!(resolve(&container), plugger.prepare(&bridge));
            let (target, owner) = resolved?;
            let mac = macaddress.map(|m| m.parse::<Mac>()).transpose()?;
            let address6 = ipaddress6;
            if let (Some(net), Some(g)) = (&address6, gateway6)
                && !is_link_local(g)
                && !net.contains(g)
            {
                bail!("--gateway6 {g} is outside the prefix of --ipaddress6 {net}");
            }
            let spec = PlugSpec {
                bridge,
                iface: interface,
                address: ipaddress,
                gateway,
                address6,
                gateway6,
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
            // By the name as given first, which is what a port records and
            // what Docker itself resolves before an id prefix; Docker is
            // asked only when no plug has that name.
            let literal = if container.starts_with('/') {
                owner_name(&container).await
            } else {
                container.clone()
            };
            if !plugger.unplug_found(&literal, &interface).await? {
                let name = owner_name(&container).await;
                if name != literal {
                    plugger.unplug(&name, &interface).await?;
                }
            }
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
    // Deletes return before ovs-vswitchd has applied them, as with
    // `ovs-vsctl --no-wait`: the next process to add a port waits for them
    // (see netplug::Settle).
    Ok(())
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netplug: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // Every command's first OVSDB request runs on the blocking pool, and a
    // new thread takes ~0.25 ms to start here: it starts while the
    // arguments are parsed, and waits idle for that request.
    drop(runtime.spawn_blocking(|| {}));
    let cli = Cli::parse();
    let code = match runtime.block_on(run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("netplug: {e:#}");
            1
        }
    };
    // The runtime is not dropped: nothing is left for it to run, and its
    // shutdown joins the idle threads of its blocking pool one by one
    // (~0.15 ms of every command). The kernel closes what is open.
    std::process::exit(code)
}
