//! What OVSDB rows say of a port and a bridge.

use serde_json::Value;

use crate::ovsdb;

use super::owner::PortOwner;

/// What a port looks like in OVSDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The bridge whose `ports` hold it; `None` for an orphan row.
    pub bridge: Option<String>,
    pub tag: Option<u16>,
    /// `access`, `trunk`, ...; `None`: OVS's default (a trunk without tag).
    pub vlan_mode: Option<String>,
    /// From the interface of the same name.
    pub owner: Option<PortOwner>,
    /// Set by ovs-vswitchd once it has added the interface; -1 on failure.
    pub ofport: Option<i64>,
    /// Why ovs-vswitchd could not add the interface.
    pub error: Option<String>,
}

/// The datapath name of a Bridge row (`datapath_type` empty: the kernel's).
pub(super) fn datapath_name(row: &Value) -> String {
    let kind = row["datapath_type"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("system");
    format!("{kind}@ovs-{kind}")
}

/// The uuids of a port's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortRows {
    pub(super) port: String,
    pub(super) interfaces: Vec<String>,
}

impl PortRows {
    pub(super) fn from_row(row: &Value) -> Option<Self> {
        Some(PortRows {
            port: ovsdb::as_uuid(&row["_uuid"])?.to_string(),
            interfaces: ovsdb::set_members(&row["interfaces"])
                .into_iter()
                .filter_map(|u| ovsdb::as_uuid(u).map(str::to_string))
                .collect(),
        })
    }
}
