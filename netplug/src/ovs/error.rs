//! The errors of Open vSwitch requests.

use std::time::Duration;

use serde_json::Value;

use crate::ovsdb::OvsdbError;
use crate::unixctl::UnixctlError;

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    #[error(transparent)]
    Db(#[from] OvsdbError),
    #[error("bridge {0} not found in ovsdb")]
    NoBridge(String),
    #[error("port {0} not found in ovsdb")]
    NoPort(String),
    #[error("port {port} already exists on bridge {bridge}")]
    PortOnOtherBridge { port: String, bridge: String },
    #[error("ovs-vswitchd did not apply the change within {0:?} (is it running?)")]
    NotApplied(Duration),
    #[error("ovs-vswitchd could not add interface {port}: {error}")]
    Interface { port: String, error: String },
    #[error(transparent)]
    Unixctl(#[from] UnixctlError),
    /// The port-security flows could not be set or removed.
    #[error("OpenFlow rules of bridge {bridge}: {error}")]
    OpenFlow { bridge: String, error: String },
}

impl OvsError {
    /// True when no ovsdb-server answers: this host has no Open vSwitch.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OvsError::Db(e) if e.is_unreachable())
    }
}

pub(super) type Result<T> = std::result::Result<T, OvsError>;

pub(super) fn unexpected(what: &str, value: &Value) -> OvsError {
    OvsError::Db(OvsdbError::Unexpected {
        what: what.into(),
        value: value.to_string(),
    })
}
