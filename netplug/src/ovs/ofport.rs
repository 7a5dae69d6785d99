//! OpenFlow port numbers reserved ahead of a port, so that its rules can
//! be set before it exists.

use std::sync::{LazyLock, Mutex};

use serde_json::{Value, json};

use crate::ovsdb::{self, rows};

use super::error::{OvsError, Result};
use super::handle::Ovs;

/// The OpenFlow port numbers `ofport_request` may ask for.
pub(super) const OFPORT_MIN: u32 = 1;
pub(super) const OFPORT_MAX: u32 = 0xfeff;

/// Numbers held by [`OfportReservation`]s of this process.
pub(super) static RESERVED_OFPORTS: LazyLock<Mutex<std::collections::HashSet<u32>>> =
    LazyLock::new(Mutex::default);

/// An OpenFlow port number held for one plug until it is dropped.
#[derive(Debug)]
pub struct OfportReservation(u32);

impl OfportReservation {
    pub fn number(&self) -> u32 {
        self.0
    }
}

impl Drop for OfportReservation {
    fn drop(&mut self) {
        RESERVED_OFPORTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

impl Ovs {
    /// An OpenFlow port number that no interface of this OVS has or has
    /// asked for, and that no other plug of this process holds, so that a
    /// new port's rules can be set before the port exists (see
    /// [`crate::Plugger`]). Picked at random among the free ones, so that
    /// another process picking at the same moment is unlikely to pick the
    /// same; a port that gets another number anyway is caught afterwards.
    pub async fn reserve_ofport(&self) -> Result<OfportReservation> {
        let res = self.transact(vec![Self::select_ofports()]).await?;
        Self::reserve_among(&res[0])
    }

    pub(super) fn select_ofports() -> Value {
        json!({"op": "select", "table": "Interface", "where": [],
               "columns": ["ofport", "ofport_request"]})
    }

    /// Reserves a number that none of the interfaces `select` (of
    /// [`Ovs::select_ofports`]) found has or asked for.
    pub(super) fn reserve_among(select: &Value) -> Result<OfportReservation> {
        let mut used = std::collections::HashSet::new();
        for row in rows(select) {
            for col in ["ofport", "ofport_request"] {
                if let Some(n) = ovsdb::optional_int(&row[col]).and_then(|n| u32::try_from(n).ok())
                {
                    used.insert(n);
                }
            }
        }
        let mut reserved = RESERVED_OFPORTS.lock().unwrap_or_else(|p| p.into_inner());
        let span = OFPORT_MAX - OFPORT_MIN + 1;
        let start = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            u32::try_from(h.finish() % u64::from(span)).unwrap_or(0)
        };
        let number = (0..span)
            .map(|i| OFPORT_MIN + (start + i) % span)
            .find(|n| !used.contains(n) && !reserved.contains(n))
            .ok_or_else(|| OvsError::Interface {
                port: String::new(),
                error: "every OpenFlow port number is taken".into(),
            })?;
        reserved.insert(number);
        Ok(OfportReservation(number))
    }

    /// Waits for `port`'s OpenFlow port number and returns it.
    pub async fn ofport(&self, port: &str) -> Result<u32> {
        self.wait_ofport(port).await
    }
}
