//! The shapes of `--output json`. serde_json sorts the keys of the maps the
//! client printed before these structs: the fields are declared in that order
//! so the output stays byte for byte the same.

use dockstack::environment::Container;
use dockstack::ops::Outcome;
use dockstack::ops::addresses::Holder;
use dockstack::ops::cluster::Reservation;
use dockstack_proto::ContainerInfo;
use serde::Serialize;

use super::render;

/// A container as a host reports it (`show`, `status`, the outcomes).
#[derive(Serialize)]
pub struct Info<'a> {
    actual_addresses: &'a [String],
    /// Only when eth0 has more than the server lists.
    #[serde(skip_serializing_if = "is_zero")]
    actual_addresses_omitted: u32,
    bridge: &'a str,
    /// Only when another node claims its address.
    #[serde(skip_serializing_if = "str::is_empty")]
    conflict: &'a str,
    environment: &'a str,
    exit_code: i32,
    /// Only when true, so that other containers show as they always did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    first_creation: bool,
    gateway: &'a str,
    gateway6: &'a str,
    health: &'a str,
    host: &'a str,
    id: &'a str,
    image: &'a str,
    ip: &'a str,
    ip6: &'a str,
    mac: &'a str,
    name: &'a str,
    network: &'a str,
    pid: u32,
    plugged: bool,
    port: &'a str,
    sandbox: &'a str,
    sandbox_state: &'a str,
    started_at: &'a str,
    state: &'a str,
}

impl<'a> From<&'a ContainerInfo> for Info<'a> {
    fn from(i: &'a ContainerInfo) -> Self {
        Info {
            actual_addresses: &i.actual_addresses,
            actual_addresses_omitted: i.actual_addresses_omitted,
            bridge: &i.bridge,
            conflict: &i.conflict,
            environment: &i.environment,
            exit_code: i.exit_code,
            first_creation: i.first_creation,
            gateway: &i.gateway,
            gateway6: &i.gateway6,
            health: &i.health,
            host: &i.host,
            id: &i.id,
            image: &i.image,
            ip: &i.ip,
            ip6: &i.ip6,
            mac: &i.mac,
            name: &i.name,
            network: i.network_mode().as_str(),
            pid: i.pid,
            plugged: i.plugged,
            port: &i.port,
            sandbox: &i.sandbox,
            sandbox_state: render::sandbox_state_shown(i),
            started_at: &i.started_at,
            state: i.container_state().as_str(),
        }
    }
}

/// One container's outcome of an action.
#[derive(Serialize)]
pub struct OutcomeItem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    container: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<Info<'a>>,
    ok: bool,
}

impl<'a> From<&'a Outcome> for OutcomeItem<'a> {
    fn from(o: &'a Outcome) -> Self {
        let (info, error, code) = match &o.result {
            Ok(info) => (info.as_ref().map(Info::from), None, None),
            Err(e) => (
                None,
                Some(e.message.as_str()),
                e.code.map(|code| format!("{code:?}")),
            ),
        };
        OutcomeItem {
            code,
            container: &o.container,
            error,
            host: &o.host,
            ok: o.result.is_ok(),
            info,
        }
    }
}

/// A container of the file (`list`).
#[derive(Serialize)]
pub struct ListItem<'a> {
    host: &'a str,
    image: &'a str,
    ip: String,
    ip6: Option<String>,
    mask: u8,
    name: &'a str,
    state: bool,
}

impl<'a> From<&'a Container> for ListItem<'a> {
    fn from(c: &'a Container) -> Self {
        ListItem {
            host: &c.host,
            image: &c.image,
            ip: c.ip.to_string(),
            ip6: c.ip6.map(|n| n.to_string()),
            mask: c.mask,
            name: &c.name,
            state: c.state,
        }
    }
}

/// An address of `addresses`: one a host's container holds, or, with
/// etcd, a reservation no container holds (state `orphan`).
#[derive(Serialize)]
pub struct Address<'a> {
    address: String,
    container: &'a str,
    environment: &'a str,
    host: &'a str,
    mac: &'a str,
    /// With etcd: `held` (reserved for this container) or `orphan`;
    /// absent when etcd reserves the address for nobody (or there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation: Option<&'static str>,
    state: &'a str,
}

impl<'a> Address<'a> {
    /// A host's container on its address; `reserved`: etcd reserves it
    /// for that container.
    pub fn held(h: &'a Holder, reserved: bool) -> Self {
        Address {
            address: h.address.to_string(),
            container: &h.container,
            environment: &h.environment,
            host: &h.host,
            mac: &h.mac,
            reservation: reserved.then_some("held"),
            state: &h.state,
        }
    }

    /// A reservation whose container no host reports.
    pub fn orphan(r: &'a Reservation) -> Self {
        Address {
            address: r.address.to_string(),
            container: &r.container,
            environment: &r.file,
            host: &r.host,
            mac: &r.mac,
            reservation: Some("orphan"),
            state: "orphan",
        }
    }
}

/// One change `apply` made.
#[derive(Serialize)]
pub struct Done<'a> {
    action: &'a str,
    container: &'a str,
}

/// What `apply` did.
#[derive(Serialize)]
pub struct Applied<'a> {
    done: Vec<Done<'a>>,
    error: Option<String>,
    plan_id: &'a str,
}

impl<'a> Applied<'a> {
    pub fn new(
        plan_id: &'a str,
        done: &'a [(String, &'static str)],
        error: Option<String>,
    ) -> Self {
        Applied {
            done: done
                .iter()
                .map(|(container, action)| Done { action, container })
                .collect(),
            error,
            plan_id,
        }
    }
}

// serde's skip_serializing_if takes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Prints `value` as one line of JSON.
pub fn print(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        // Strings, numbers and lists only: nothing here fails to serialize.
        Err(e) => eprintln!("dockstack: cannot write JSON: {e}"),
    }
}

#[cfg(test)]
mod tests;
