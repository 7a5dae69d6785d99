//! Open vSwitch ports through `ovs-vsctl`, with the `external_ids` that
//! `ovs-docker` writes, so either tool can remove the other's ports.

use std::process::Stdio;

use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    #[error("cannot run ovs-vsctl (is openvswitch-switch installed?): {0}")]
    Spawn(std::io::Error),
    #[error("ovs-vsctl {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

type Result<T> = std::result::Result<T, OvsError>;

/// The owner of an OVS port, as stored in the interface's `external_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    /// `container_id`: the container's name, as ovs-docker stores it.
    pub container: String,
    /// `container_iface`: the interface inside the container.
    pub iface: String,
    /// `dockstack_container_id`: the full Docker id, when known.
    pub full_id: Option<String>,
}

/// A connection to one OVSDB (one host's Open vSwitch).
#[derive(Debug, Clone, Default)]
pub struct Ovs {
    /// `unix:PATH`; `None` uses ovs-vsctl's default socket.
    db: Option<String>,
}

impl Ovs {
    pub fn new(db: Option<String>) -> Self {
        Ovs { db }
    }

    /// Uses `$OVS_RUNDIR/db.sock` when that is set, as ovs-vsctl does.
    pub fn from_env() -> Self {
        Ovs {
            db: std::env::var("OVS_RUNDIR")
                .ok()
                .map(|d| format!("unix:{d}/db.sock")),
        }
    }

    async fn vsctl(&self, args: &[String]) -> Result<(bool, String, String)> {
        let mut cmd = Command::new("ovs-vsctl");
        cmd.arg("--timeout=10");
        if let Some(db) = &self.db {
            cmd.arg(format!("--db={db}"));
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().await.map_err(OvsError::Spawn)?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    async fn vsctl_ok(&self, args: &[String]) -> Result<String> {
        let (ok, stdout, stderr) = self.vsctl(args).await?;
        if ok {
            Ok(stdout)
        } else {
            Err(OvsError::Failed {
                args: args.join(" "),
                stderr,
            })
        }
    }

    pub async fn bridge_exists(&self, bridge: &str) -> Result<bool> {
        let (ok, _, stderr) = self.vsctl(&["br-exists".into(), bridge.into()]).await?;
        if ok {
            return Ok(true);
        }
        if stderr.is_empty() {
            // Exit status 2 with no message: the bridge does not exist.
            return Ok(false);
        }
        Err(OvsError::Failed {
            args: format!("br-exists {bridge}"),
            stderr,
        })
    }

    /// Adds `port` to `bridge` with its owner and, when given, an access VLAN tag.
    pub async fn add_port(
        &self,
        bridge: &str,
        port: &str,
        owner: &PortOwner,
        vlan: Option<u16>,
    ) -> Result<()> {
        let mut args: Vec<String> = vec![
            "--may-exist".into(),
            "add-port".into(),
            bridge.into(),
            port.into(),
        ];
        if let Some(tag) = vlan {
            args.push(format!("tag={tag}"));
        }
        args.extend([
            "--".into(),
            "set".into(),
            "Interface".into(),
            port.into(),
            format!("external_ids:container_id={}", owner.container),
            format!("external_ids:container_iface={}", owner.iface),
        ]);
        if let Some(id) = &owner.full_id {
            args.push(format!("external_ids:dockstack_container_id={id}"));
        }
        self.vsctl_ok(&args).await.map(drop)
    }

    pub async fn del_port(&self, port: &str) -> Result<()> {
        self.vsctl_ok(&["--if-exists".into(), "del-port".into(), port.into()])
            .await
            .map(drop)
    }

    /// Ports whose interface carries a `container_id`, with their owners.
    pub async fn owned_ports(&self) -> Result<Vec<(String, PortOwner)>> {
        let out = self
            .vsctl_ok(&[
                "--format=csv".into(),
                "--data=bare".into(),
                "--no-headings".into(),
                "--columns=name,external_ids".into(),
                "find".into(),
                "Interface".into(),
                "external_ids:container_id!=\"\"".into(),
            ])
            .await?;
        Ok(out.lines().filter_map(parse_owned_port_row).collect())
    }

    /// The port of a container's interface, found by owner as ovs-docker does.
    pub async fn find_port(&self, container: &str, iface: &str) -> Result<Option<String>> {
        Ok(self
            .owned_ports()
            .await?
            .into_iter()
            .find(|(_, o)| o.container == container && o.iface == iface)
            .map(|(name, _)| name))
    }

    pub async fn set_vlan(&self, port: &str, vlan: u16) -> Result<()> {
        self.vsctl_ok(&[
            "set".into(),
            "Port".into(),
            port.into(),
            format!("tag={vlan}"),
        ])
        .await
        .map(drop)
    }

    /// The bridge a port belongs to, if the port exists.
    pub async fn port_bridge(&self, port: &str) -> Result<Option<String>> {
        let (ok, stdout, _) = self.vsctl(&["port-to-br".into(), port.into()]).await?;
        Ok(ok.then(|| stdout.trim().to_string()))
    }
}

/// Parses one CSV row `name,"k1=v1 k2=v2"` of `ovs-vsctl find`.
fn parse_owned_port_row(line: &str) -> Option<(String, PortOwner)> {
    let (name, ids) = line.split_once(',')?;
    let ids = ids.trim().trim_matches('"');
    let mut owner = PortOwner {
        container: String::new(),
        iface: String::new(),
        full_id: None,
    };
    for pair in ids.split_whitespace() {
        let (k, v) = pair.split_once('=')?;
        let v = v.trim_matches('"').to_string();
        match k {
            "container_id" => owner.container = v,
            "container_iface" => owner.iface = v,
            "dockstack_container_id" => owner.full_id = Some(v),
            _ => {}
        }
    }
    (!owner.container.is_empty()).then(|| (name.trim_matches('"').to_string(), owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_docker_and_dockstack_rows() {
        let row =
            r#"dsweb1a1b2c3,"container_iface=eth0 container_id=web1 dockstack_container_id=abc""#;
        let (name, owner) = parse_owned_port_row(row).unwrap();
        assert_eq!(name, "dsweb1a1b2c3");
        assert_eq!(owner.container, "web1");
        assert_eq!(owner.iface, "eth0");
        assert_eq!(owner.full_id.as_deref(), Some("abc"));
        let row = r#"1234567890abc_l,"container_id=web2 container_iface=eth1""#;
        let (_, owner) = parse_owned_port_row(row).unwrap();
        assert_eq!(owner.full_id, None);
        assert!(parse_owned_port_row(r#"br0,"""#).is_none());
    }
}
