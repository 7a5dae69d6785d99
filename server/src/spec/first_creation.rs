//! Settings for a container's first creation only (`first_creation` of the
//! file, `RunRequest.first_creation` on the wire): checked like the spec's
//! `env` and `command`, used by a Run that makes the container, and never
//! part of the spec, so never hashed nor compared by a plan.

use std::collections::BTreeMap;

use dockstack_proto as pb;
use dockstack_types::env;

use super::SpecError;

/// What a Run merges over the spec's `env` and puts in place of its
/// `command` when, and only when, it creates the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstCreation {
    pub env: BTreeMap<String, String>,
    /// Empty: the spec's command.
    pub command: Vec<String>,
}

impl FirstCreation {
    /// The request's settings for container `name`, checked; `None` when it
    /// carries none (or only empty ones, which would change nothing).
    pub fn from_request(
        name: &str,
        given: Option<pb::FirstCreation>,
    ) -> Result<Option<Self>, SpecError> {
        let Some(given) = given else {
            return Ok(None);
        };
        let bad = |message: String| SpecError::Invalid {
            container: name.to_owned(),
            message,
        };
        env::check_variables(&given.env).map_err(|e| bad(format!("first_creation.env: {e}")))?;
        env::check_command(&given.command)
            .map_err(|e| bad(format!("first_creation.command: {e}")))?;
        if given.env.is_empty() && given.command.is_empty() {
            return Ok(None);
        }
        Ok(Some(FirstCreation {
            env: given.env.into_iter().collect(),
            command: given.command,
        }))
    }

    /// `env` with these variables merged over it.
    pub fn env_over(&self, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = env.clone();
        out.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// This command, or `command` when it gives none.
    pub fn command_over(&self, command: &[String]) -> Vec<String> {
        if self.command.is_empty() {
            command.to_vec()
        } else {
            self.command.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_merged_and_empty_is_none() {
        let given = |env: &[(&str, &str)], command: &[&str]| pb::FirstCreation {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            command: command.iter().map(|w| (*w).to_owned()).collect(),
        };
        assert_eq!(FirstCreation::from_request("db1", None).unwrap(), None);
        assert_eq!(
            FirstCreation::from_request("db1", Some(given(&[], &[]))).unwrap(),
            None
        );
        let err = FirstCreation::from_request("db1", Some(given(&[("A=B", "1")], &[])))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("db1") && err.contains("first_creation.env"),
            "{err}"
        );
        let err = FirstCreation::from_request("db1", Some(given(&[], &["a\0"])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("first_creation.command"), "{err}");

        let f = FirstCreation::from_request("db1", Some(given(&[("BOOT", "1")], &[])))
            .unwrap()
            .unwrap();
        let env = BTreeMap::from([
            ("BOOT".to_owned(), "0".to_owned()),
            ("X".into(), "y".into()),
        ]);
        assert_eq!(
            f.env_over(&env),
            BTreeMap::from([
                ("BOOT".to_owned(), "1".to_owned()),
                ("X".into(), "y".into())
            ])
        );
        assert_eq!(f.command_over(&["run".to_owned()]), ["run"]);
        let f = FirstCreation {
            command: vec!["boot".into()],
            ..Default::default()
        };
        assert_eq!(f.command_over(&["run".to_owned()]), ["boot"]);
    }
}
