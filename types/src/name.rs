//! Names of containers and services: Docker's own grammar, so that no
//! `/web1`, id, id prefix or path reaches Docker's API in a name's place.

/// What the name of every sandbox container ends with. No container of the
/// environment file may have such a name, so that a sandbox's name is never
/// one of the file's.
pub const SANDBOX_SUFFIX: &str = ".dockstack-sandbox";

/// The longest name accepted.
pub const MAX_NAME_LEN: usize = 255;

/// What is wrong with a container's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "`{0}` is not a valid container name \
         (at least 2 of letters, digits, `_`, `.`, `-`; a letter or digit first)"
    )]
    Invalid(String),
    #[error(
        "`{0}` ends with `{SANDBOX_SUFFIX}`, which dockstack keeps for the network sandboxes it makes"
    )]
    Sandbox(String),
}

/// Docker's rule for container names, `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (so at
/// least two characters: Docker refuses one), at most [`MAX_NAME_LEN`] bytes,
/// and not 64 hex digits: Docker resolves a full container id before a name,
/// so such a name could reach another container.
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    let id_like = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    !id_like
        && name.len() >= 2
        && name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A name the environment file may give a container: Docker's grammar, and
/// not a sandbox's.
pub fn check_container_name(name: &str) -> Result<(), NameError> {
    if !is_docker_name(name) {
        Err(NameError::Invalid(name.to_owned()))
    } else if name.ends_with(SANDBOX_SUFFIX) {
        Err(NameError::Sandbox(name.to_owned()))
    } else {
        Ok(())
    }
}

/// The sandbox container of the container `name`.
pub fn sandbox_name(name: &str) -> String {
    format!("{name}{SANDBOX_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_grammar() {
        for good in ["web1", "db", "a.b-c_d", "9x"] {
            assert_eq!(check_container_name(good), Ok(()), "{good}");
        }
        let id = "0123456789abcdef".repeat(4);
        for bad in [
            id.as_str(),
            "w",
            "",
            "-web",
            "/web1",
            "web 1",
            "web/1",
            "wéb",
            &"a".repeat(256),
        ] {
            assert!(
                matches!(check_container_name(bad), Err(NameError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_container_name(&sandbox_name("web1")),
            Err(NameError::Sandbox(_))
        ));
    }
}
