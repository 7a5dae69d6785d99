//! OVSDB port verbs: add, delete, look up, list and tag ports, with the
//! rows and `external_ids` ovs-docker writes.

use serde_json::{Value, json};

use crate::ovsdb::{self, eq, map, named_uuid, rows, set, uuid};

use super::error::{OvsError, Result, unexpected};
use super::handle::Ovs;
use super::ofport::OfportReservation;
use super::owner::{KEY_CONTAINER, KEY_FULL_ID, KEY_IFACE, PortOwner};
use super::policy::Settle;
use super::rows::{PortInfo, PortRows};

impl Ovs {
    /// [`Ovs::prepare`] for a process about to add a port to `bridge`,
    /// in the same one round trip: also looks `bridge` up (its datapath,
    /// remembered; `None`: no such bridge) and reserves an OpenFlow port
    /// number (see [`Ovs::reserve_ofport`]).
    pub async fn prepare_to_add(
        &self,
        bridge: &str,
    ) -> Result<(Option<String>, OfportReservation)> {
        let settle = self.settles_others();
        let mut ops = vec![Self::select_datapath(bridge), Self::select_ofports()];
        if settle {
            ops.push(Self::select_cfgs());
        }
        let res = self.transact(ops).await?;
        let datapath = self.remember_datapath(bridge, &res[0]);
        let reservation = Self::reserve_among(&res[1])?;
        if settle {
            self.settle_others(res.get(2)).await?;
        }
        Ok((datapath, reservation))
    }

    pub async fn bridge_exists(&self, bridge: &str) -> Result<bool> {
        Ok(self.look_up_datapath(bridge).await?.is_some())
    }

    /// Adds `port` to `bridge` with its owner and, when given, an access VLAN
    /// tag, like `ovs-vsctl --may-exist add-port BRIDGE PORT [tag=VLAN] --
    /// set Interface PORT external_ids:...`: one transaction, which also
    /// checks that the bridge exists. A port already on `bridge` gets the
    /// owner and tag; one on another bridge is an error.
    pub async fn add_port(
        &self,
        bridge: &str,
        port: &str,
        owner: &PortOwner,
        vlan: Option<u16>,
    ) -> Result<()> {
        self.add_port_numbered(bridge, port, owner, vlan, None)
            .await
            .map(drop)
    }

    /// [`Ovs::add_port`], asking ovs-vswitchd for OpenFlow port number
    /// `ofport` (`ofport_request`; see [`Ovs::reserve_ofport`]); returns the
    /// number the port got, unless [`Settle::None`] waited for none.
    pub async fn add_port_numbered(
        &self,
        bridge: &str,
        port: &str,
        owner: &PortOwner,
        vlan: Option<u16>,
        ofport: Option<u32>,
    ) -> Result<Option<u32>> {
        self.settle_pending_delete(port).await?;
        let mut external_ids = vec![(KEY_CONTAINER, owner.container.as_str())];
        external_ids.push((KEY_IFACE, owner.iface.as_str()));
        if let Some(id) = &owner.full_id {
            external_ids.push((KEY_FULL_ID, id.as_str()));
        }
        // Always an access port: with no tag, OVS makes it an access port of
        // VLAN 0, dropping tagged frames from the container; without
        // `vlan_mode` a port with no tag would be a trunk of every VLAN.
        let mut port_row = json!({"name": port, "interfaces": named_uuid("np_iface"),
                                  "vlan_mode": "access"});
        if let Some(tag) = vlan {
            port_row["tag"] = json!(tag);
        }
        let mut iface_row =
            json!({"name": port, "external_ids": map(external_ids.iter().copied())});
        if let Some(n) = ofport {
            iface_row["ofport_request"] = json!(n);
        }
        let mut ops = vec![
            json!({"op": "comment", "comment": format!("netplug: add-port {bridge} {port}")}),
            json!({"op": "wait", "table": "Bridge", "where": [eq("name", bridge)],
                   "columns": ["name"], "until": "==", "rows": [{"name": bridge}],
                   "timeout": 0}),
            json!({"op": "wait", "table": "Port", "where": [eq("name", port)],
                   "columns": ["name"], "until": "==", "rows": [], "timeout": 0}),
            json!({"op": "insert", "table": "Interface", "uuid-name": "np_iface",
                   "row": iface_row}),
            json!({"op": "insert", "table": "Port", "uuid-name": "np_port", "row": port_row}),
            json!({"op": "mutate", "table": "Bridge", "where": [eq("name", bridge)],
                   "mutations": [["ports", "insert", set([named_uuid("np_port")])]]}),
        ];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(true));
        match self.transact(ops).await {
            Ok(res) => {
                let new_uuid = |i: usize| {
                    res.get(i)
                        .and_then(|r| ovsdb::as_uuid(&r["uuid"]))
                        .map(str::to_string)
                };
                if let (Some(iface), Some(port_uuid)) = (new_uuid(3), new_uuid(4)) {
                    self.rows_cache().insert(
                        port.to_string(),
                        PortRows {
                            port: port_uuid,
                            interfaces: vec![iface],
                        },
                    );
                }
                self.settle_after(Some(port), Self::cfgs(res.get(cfg_at)))
                    .await
            }
            Err(OvsError::Db(e)) if e.is_timed_out_op(1) => Err(OvsError::NoBridge(bridge.into())),
            Err(OvsError::Db(e)) if e.is_timed_out_op(2) => {
                self.update_existing(bridge, port, &external_ids, vlan)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// `--may-exist`: the port is there already.
    pub(super) async fn update_existing(
        &self,
        bridge: &str,
        port: &str,
        external_ids: &[(&str, &str)],
        vlan: Option<u16>,
    ) -> Result<Option<u32>> {
        let info = self
            .port_info(port)
            .await?
            .ok_or_else(|| OvsError::NoPort(port.into()))?;
        if let Some(other) = info.bridge.filter(|b| b != bridge) {
            return Err(OvsError::PortOnOtherBridge {
                port: port.into(),
                bridge: other,
            });
        }
        let keys = set([KEY_CONTAINER, KEY_IFACE, KEY_FULL_ID].map(Value::from));
        let tag = vlan.map_or_else(|| set([]), |t| json!(t));
        let mut ops = vec![
            json!({"op": "mutate", "table": "Interface", "where": [eq("name", port)],
                   "mutations": [["external_ids", "delete", keys],
                                 ["external_ids", "insert", map(external_ids.iter().copied())]]}),
            json!({"op": "update", "table": "Port", "where": [eq("name", port)],
                   "row": {"tag": tag, "vlan_mode": "access"}}),
        ];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(true));
        let res = self.transact(ops).await?;
        self.settle_after(Some(port), Self::cfgs(res.get(cfg_at)))
            .await
    }

    /// Removes `port` from whatever bridge has it, with its interfaces, like
    /// `ovs-vsctl --if-exists del-port PORT`: a missing port is no error.
    /// Under [`Settle::Ofport`] it returns once committed; see [`Settle`].
    pub async fn del_port(&self, port: &str) -> Result<()> {
        // The rows' uuids, when this handle made or saw the port, save the
        // select: a delete is then one transaction, which starts
        // ovs-vswitchd's (slow) work on it sooner.
        let cached = self.rows_cache().get(port).cloned();
        if let Some(row) = cached
            && self.delete_rows(port, &row).await?
        {
            return Ok(());
        }
        let res = self
            .transact(vec![json!({"op": "select", "table": "Port",
                                   "where": [eq("name", port)],
                                   "columns": ["_uuid", "interfaces"]})])
            .await?;
        let Some(row) = rows(&res[0]).first() else {
            self.rows_cache().remove(port);
            return Ok(());
        };
        let row = PortRows::from_row(row).ok_or_else(|| unexpected("Port row", row))?;
        self.delete_rows(port, &row).await.map(drop)
    }

    /// Deletes the rows of `port`; `false` when they were gone already (or
    /// are other rows by now), and nothing changed.
    pub(super) async fn delete_rows(&self, port: &str, row: &PortRows) -> Result<bool> {
        let mut ops = vec![
            json!({"op": "comment", "comment": format!("netplug: del-port {port}")}),
            // The row may have gone, or been replaced, since its uuid was
            // learnt; then nothing changes, and no transaction fails
            // half-way.
            json!({"op": "wait", "table": "Port", "where": [eq("_uuid", uuid(&row.port))],
                   "columns": ["name"], "until": "==", "rows": [{"name": port}],
                   "timeout": 0}),
            json!({"op": "mutate", "table": "Bridge", "where": [],
                   "mutations": [["ports", "delete", set([uuid(&row.port)])]]}),
            json!({"op": "delete", "table": "Port", "where": [eq("_uuid", uuid(&row.port))]}),
        ];
        for u in &row.interfaces {
            ops.push(
                json!({"op": "delete", "table": "Interface", "where": [eq("_uuid", uuid(u))]}),
            );
        }
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(false));
        let res = match self.transact(ops).await {
            Ok(res) => res,
            Err(OvsError::Db(e)) if e.is_timed_out_op(1) => {
                self.rows_cache().remove(port);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.rows_cache().remove(port);
        if self.settle == Settle::Ofport {
            let (target, cur) =
                Self::cfgs(res.get(cfg_at)).ok_or_else(|| unexpected("next_cfg", &Value::Null))?;
            let deletes = &mut self.pending().deletes;
            deletes.retain(|_, t| *t > cur);
            deletes.insert(port.to_string(), target);
        } else {
            self.settle_after(None, Self::cfgs(res.get(cfg_at))).await?;
        }
        Ok(true)
    }

    /// Ports whose interface carries a `container_id`, with their owners.
    pub async fn owned_ports(&self) -> Result<Vec<(String, PortOwner)>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Interface", "where": [],
                                   "columns": ["name", "external_ids"]}),
            ])
            .await?;
        let mut out: Vec<(String, PortOwner)> = rows(&res[0])
            .iter()
            .filter_map(|r| {
                let owner = PortOwner::from_external_ids(&ovsdb::map_pairs(&r["external_ids"]))?;
                Some((r["name"].as_str()?.to_string(), owner))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The port of a container's interface, found by owner as ovs-docker
    /// does (`find interface external_ids:container_id=C
    /// external_ids:container_iface=I`).
    pub async fn find_port(&self, container: &str, iface: &str) -> Result<Option<String>> {
        let ids = [(KEY_CONTAINER, container), (KEY_IFACE, iface)];
        let res = self
            .transact(vec![json!({"op": "select", "table": "Interface",
                                   "where": [["external_ids", "includes", map(ids)]],
                                   "columns": ["name"]})])
            .await?;
        Ok(rows(&res[0])
            .iter()
            .filter_map(|r| r["name"].as_str())
            .min()
            .map(str::to_string))
    }

    /// The ports that concern a plug of `container`'s `iface`, each with
    /// the owner its interface names: those its owner ids name (ovs-docker's
    /// too), and those called one of `names`, whoever owns them; read in one
    /// transaction.
    pub async fn ports_for(
        &self,
        container: &str,
        iface: &str,
        names: &[String],
    ) -> Result<Vec<(String, Option<PortOwner>)>> {
        let ids = [(KEY_CONTAINER, container), (KEY_IFACE, iface)];
        let mut ops = vec![json!({"op": "select", "table": "Interface",
                                  "where": [["external_ids", "includes", map(ids)]],
                                  "columns": ["name", "external_ids"]})];
        for name in names {
            let by_name = [eq("name", name.as_str())];
            ops.push(json!({"op": "select", "table": "Port", "where": by_name,
                            "columns": ["_uuid", "name", "interfaces"]}));
            ops.push(
                json!({"op": "select", "table": "Interface", "where": by_name,
                            "columns": ["external_ids"]}),
            );
        }
        let res = self.transact(ops).await?;
        let owner_of =
            |row: &Value| PortOwner::from_external_ids(&ovsdb::map_pairs(&row["external_ids"]));
        let mut found: Vec<(String, Option<PortOwner>)> = rows(&res[0])
            .iter()
            .filter_map(|r| Some((r["name"].as_str()?.to_string(), owner_of(r))))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let (port, iface) = (&res[1 + 2 * i], &res[2 + 2 * i]);
            let Some(row) = rows(port).first() else {
                continue;
            };
            if let Some(port_rows) = PortRows::from_row(row) {
                self.rows_cache().insert(name.clone(), port_rows);
            }
            if !found.iter().any(|(n, _)| n == name) {
                found.push((name.clone(), rows(iface).first().and_then(owner_of)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Makes `port` an access port of `vlan`.
    pub async fn set_vlan(&self, port: &str, vlan: u16) -> Result<()> {
        let mut ops = vec![json!({"op": "update", "table": "Port",
                                  "where": [eq("name", port)], "row": {"tag": vlan}})];
        let cfg_at = ops.len() + 1;
        ops.extend(self.bump_cfg_ops(false));
        let res = self.transact(ops).await?;
        if res[0]["count"].as_u64() == Some(0) {
            return Err(OvsError::NoPort(port.into()));
        }
        self.settle_after(None, Self::cfgs(res.get(cfg_at)))
            .await
            .map(drop)
    }

    /// Everything about `port` (and its interface of the same name), read in
    /// one transaction; `None` when there is no such port.
    pub async fn port_info(&self, port: &str) -> Result<Option<PortInfo>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Port", "where": [eq("name", port)],
                       "columns": ["_uuid", "tag", "vlan_mode"]}),
                json!({"op": "select", "table": "Bridge", "where": [],
                       "columns": ["name", "ports"]}),
                json!({"op": "select", "table": "Interface", "where": [eq("name", port)],
                       "columns": ["external_ids", "ofport", "error"]}),
            ])
            .await?;
        let Some(port_row) = rows(&res[0]).first() else {
            return Ok(None);
        };
        let port_uuid = ovsdb::as_uuid(&port_row["_uuid"]);
        let bridge = rows(&res[1])
            .iter()
            .find(|b| {
                ovsdb::set_members(&b["ports"])
                    .into_iter()
                    .any(|p| ovsdb::as_uuid(p) == port_uuid)
            })
            .and_then(|b| b["name"].as_str().map(str::to_string));
        let iface = rows(&res[2]).first();
        Ok(Some(PortInfo {
            bridge,
            tag: ovsdb::optional_int(&port_row["tag"]).and_then(|t| u16::try_from(t).ok()),
            vlan_mode: ovsdb::optional_str(&port_row["vlan_mode"]).map(str::to_string),
            owner: iface
                .and_then(|i| PortOwner::from_external_ids(&ovsdb::map_pairs(&i["external_ids"]))),
            ofport: iface.and_then(|i| ovsdb::optional_int(&i["ofport"])),
            error: iface.and_then(|i| ovsdb::optional_str(&i["error"]).map(str::to_string)),
        }))
    }

    /// Names of the ports on `bridge` (the bridge's own internal port too).
    pub async fn bridge_ports(&self, bridge: &str) -> Result<Vec<String>> {
        let res = self
            .transact(vec![
                json!({"op": "select", "table": "Bridge", "where": [eq("name", bridge)],
                       "columns": ["ports"]}),
                json!({"op": "select", "table": "Port", "where": [],
                       "columns": ["_uuid", "name"]}),
            ])
            .await?;
        let Some(b) = rows(&res[0]).first() else {
            return Err(OvsError::NoBridge(bridge.into()));
        };
        let members: Vec<&str> = ovsdb::set_members(&b["ports"])
            .into_iter()
            .filter_map(ovsdb::as_uuid)
            .collect();
        let mut names: Vec<String> = rows(&res[1])
            .iter()
            .filter(|p| ovsdb::as_uuid(&p["_uuid"]).is_some_and(|u| members.contains(&u)))
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}
