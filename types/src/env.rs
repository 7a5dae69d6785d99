//! A container's environment variables and command words: what Docker's
//! `NAME=value` form and an exec of the words can carry, for `env`,
//! `command` and their `first_creation` replacements alike.

/// What is wrong with a variable or a command word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("`{0}` is not a variable name (not empty, no `=`, no NUL)")]
    Name(String),
    #[error("the value of {0} holds a NUL character")]
    Value(String),
    #[error("command word {0} holds a NUL character")]
    CommandWord(usize),
}

/// A variable Docker passes as `NAME=value`: a name with no `=` (it would
/// move the split) and no NUL (it would end the string), and a value with
/// no NUL.
pub fn check_variable(name: &str, value: &str) -> Result<(), EnvError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(EnvError::Name(name.to_owned()));
    }
    if value.contains('\0') {
        return Err(EnvError::Value(name.to_owned()));
    }
    Ok(())
}

/// Every variable of a map.
pub fn check_variables<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), EnvError> {
    vars.into_iter().try_for_each(|(k, v)| check_variable(k, v))
}

/// A command's words, each an argument of an exec: no NUL.
pub fn check_command(words: &[String]) -> Result<(), EnvError> {
    match words.iter().position(|w| w.contains('\0')) {
        Some(i) => Err(EnvError::CommandWord(i)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_words() {
        assert_eq!(check_variable("GALERA_BOOTSTRAP", "1"), Ok(()));
        assert_eq!(check_variable("lower.dot-ok", ""), Ok(()));
        for bad in ["", "A=B", "A\0"] {
            assert_eq!(
                check_variable(bad, "x"),
                Err(EnvError::Name(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_variable("A", "x\0y"),
            Err(EnvError::Value("A".into()))
        );
        assert_eq!(check_command(&["sh".into(), "-c".into()]), Ok(()));
        assert_eq!(
            check_command(&["sh".into(), "a\0".into()]),
            Err(EnvError::CommandWord(1))
        );
    }
}
