//! The role a client certificate carries, and the URI SAN that carries it:
//! the client writes it into the certificates it issues, the server reads it
//! back from every peer.

use std::fmt;
use std::str::FromStr;

/// The prefix of the URI SAN that names a certificate's role:
/// `dockstack:role:<role>`.
pub const ROLE_URI_PREFIX: &str = "dockstack:role:";

/// What a client certificate lets its holder do, ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `show`, `list` and `status` only.
    Viewer,
    /// Runs, starts, stops and destroys containers, and registers them,
    /// within its policy; never `Exec`.
    Operator,
    /// Everything, within its policy (unrestricted when built in).
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (admin, operator or viewer)")]
pub struct RoleError(pub String);

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// The URI SAN that carries it.
    pub fn uri(self) -> String {
        format!("{ROLE_URI_PREFIX}{}", self.as_str())
    }

    /// The role named by a URI SAN; `None` for a URI of another kind, an
    /// error for a dockstack role URI naming no role.
    pub fn from_uri(uri: &str) -> Option<Result<Role, RoleError>> {
        uri.strip_prefix(ROLE_URI_PREFIX).map(str::parse)
    }
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_round_trips_through_its_uri() {
        for role in Role::ALL {
            assert_eq!(Role::from_uri(&role.uri()), Some(Ok(role)));
        }
        assert_eq!(Role::from_uri("spiffe://x"), None);
        assert!(matches!(
            Role::from_uri("dockstack:role:root"),
            Some(Err(_))
        ));
    }
}
