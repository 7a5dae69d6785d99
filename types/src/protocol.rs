//! The version of the protocol between client and server: the client
//! sends its own with every request, and the server refuses one it does
//! not speak with a sentence that says which side to upgrade.
//!
//! A request without the header comes from a client made before the
//! header was: it speaks version 1.

/// The request header (gRPC metadata) that carries the client's version;
/// a server's own error statuses carry the server's under the same name,
/// which tells them apart from the transport's.
pub const HEADER: &str = "dockstack-protocol";

/// The version this build speaks. Raised when a request of the version
/// before would mean something else to this build.
pub const VERSION: u32 = 1;

/// The oldest version of client a server of this build still serves.
pub const OLDEST: u32 = 1;

/// A client's version that a server does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error(
        "the server is older than this client (it speaks dockstack protocol up to {server}, the client {client}): upgrade dockstack-server there"
    )]
    ServerOlder { client: u32, server: u32 },
    #[error(
        "the server is newer than this client (it speaks dockstack protocol {oldest} to {server}, the client {client}): upgrade the dockstack client"
    )]
    ClientOlder {
        client: u32,
        oldest: u32,
        server: u32,
    },
    #[error(
        "the client sent {sent:?} as its protocol version, which is no version: use a dockstack client"
    )]
    Unreadable { sent: String },
}

/// Whether a server of this build speaks the version `sent` by a client
/// (the header's value; `None` without one).
pub fn check(sent: Option<&str>) -> Result<(), Mismatch> {
    let Some(sent) = sent else { return Ok(()) };
    let client: u32 = sent.trim().parse().map_err(|_| Mismatch::Unreadable {
        sent: sent.chars().take(32).collect(),
    })?;
    if client > VERSION {
        Err(Mismatch::ServerOlder {
            client,
            server: VERSION,
        })
    } else if client < OLDEST {
        Err(Mismatch::ClientOlder {
            client,
            oldest: OLDEST,
            server: VERSION,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_is_told_to_upgrade_when_it_is_the_older() {
        assert_eq!(check(None), Ok(()));
        assert_eq!(check(Some(&VERSION.to_string())), Ok(()));
        let newer = check(Some(&(VERSION + 1).to_string())).unwrap_err();
        assert!(
            newer
                .to_string()
                .ends_with("upgrade dockstack-server there"),
            "{newer}"
        );
        let older = check(Some(&(OLDEST - 1).to_string())).unwrap_err();
        assert!(
            older.to_string().ends_with("upgrade the dockstack client"),
            "{older}"
        );
        assert!(matches!(check(Some("x")), Err(Mismatch::Unreadable { .. })));
    }
}
