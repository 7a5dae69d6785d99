//! The change lock's shared terms: the actions that take it, the header a
//! change request carries its lease token in, and the bounds the server
//! holds a lock request to (the client keeps within them).

/// The gRPC metadata key of the lease token on every request of a client
/// that holds a host's lock. A change request without the live lease's
/// token is refused while the lock is held.
pub const LEASE_HEADER: &str = "dockstack-lease";

/// The commands that take the lock before they change anything; `plan`,
/// `status` and `show` take none.
pub const LOCKING_ACTIONS: [&str; 8] = [
    "run",
    "destroy",
    "start",
    "stop",
    "restart",
    "register",
    "deregister",
    "apply",
];

/// How long a lease lives without a renewal, unless the server is told
/// otherwise: a client that died frees the host within it.
pub const DEFAULT_TTL_MS: u32 = 10_000;

/// The bounds of a server's `--lock-ttl`, in milliseconds: renewals come
/// every third of it, so below a second they would flood; above ten
/// minutes a dead client holds the cluster up for too long.
pub const MIN_TTL_MS: u32 = 1_000;
pub const MAX_TTL_MS: u32 = 600_000;

/// The longest environment file name a lock records (PATH_MAX).
pub const MAX_FILE_LEN: usize = 4_096;

/// A lease token: 32 lowercase hexadecimal digits (128 random bits).
pub const TOKEN_LEN: usize = 32;

/// Whether `token` has a lease token's form.
pub fn is_token(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a lock request's fields are refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockFieldError {
    #[error("action {0:?} takes no lock (one of {LOCKING_ACTIONS:?})")]
    Action(String),
    #[error("file: {0}")]
    File(&'static str),
    #[error("token: not a lease token (32 lowercase hexadecimal digits)")]
    Token,
}

/// `action` as one of [`LOCKING_ACTIONS`].
pub fn check_action(action: &str) -> Result<&'static str, LockFieldError> {
    LOCKING_ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .ok_or_else(|| LockFieldError::Action(action.chars().take(64).collect()))
}

/// The environment file a lock records: an absolute path, at most
/// [`MAX_FILE_LEN`] bytes, without control characters (it is shown to
/// other operators and written to the log).
pub fn check_file(file: &str) -> Result<(), LockFieldError> {
    if file.len() > MAX_FILE_LEN {
        return Err(LockFieldError::File("longer than 4096 bytes"));
    }
    if !file.starts_with('/') {
        return Err(LockFieldError::File("not an absolute path"));
    }
    if file.chars().any(char::is_control) {
        return Err(LockFieldError::File("contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_held_to_their_form() {
        assert_eq!(check_action("apply"), Ok("apply"));
        assert!(check_action("plan").is_err());
        assert!(check_action(&"x".repeat(10_000)).is_err());
        assert!(check_file("/srv/env/environment.yaml").is_ok());
        assert!(check_file("environment.yaml").is_err());
        assert!(check_file("/a\nb").is_err());
        assert!(check_file(&format!("/{}", "a".repeat(MAX_FILE_LEN))).is_err());
        assert!(is_token("0123456789abcdef0123456789abcdef"));
        assert!(!is_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_token("0123"));
    }
}
