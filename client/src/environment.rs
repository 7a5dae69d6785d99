//! The environment file: loading `environment.yaml`, merging its anchors and `<<`
//! defaults, and validating all of it before anything is touched.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub mod model;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

pub use model::*;
pub use validate::{
    DEFAULT_AGENT, DEFAULT_CERTCLEAN, DEFAULT_CLUSTER_PREFIX, DEFAULT_PORT, DEFAULT_RELOAD,
};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// One thing wrong with the file, where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the key, such as `containers.haproxy1.volums`; empty for the file
    /// as a whole.
    pub key_path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem of a file, in the order of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Loads, merges (`<<` merge keys and anchors, `host: *alias` or a host name) and
/// validates the file.
pub fn load(path: &Path) -> Result<Environment, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Like [`load`], for text already read; `path_for_messages` names the file in problems
/// and becomes [`Environment::path`].
pub fn parse(path_for_messages: &Path, text: &str) -> Result<Environment, EnvError> {
    let document = yaml::parse(text);
    let mut found: Vec<(yaml::Pos, String, String)> = document
        .issues
        .into_iter()
        .map(|i| (i.pos, i.path, i.message))
        .collect();
    let environment = if document.syntax_error {
        None
    } else {
        let (environment, more) = validate::check(path_for_messages, document.root.as_deref());
        found.extend(more.into_iter().map(|f| (f.pos, f.path, f.message)));
        Some(environment)
    };

    // A value merged into several containers is checked once per container; where it
    // is written, it is one problem.
    let mut seen = HashSet::new();
    found.retain(|(pos, _, message)| seen.insert((*pos, message.clone())));
    found.sort_by_key(|(pos, _, _)| *pos);

    match environment {
        Some(environment) if found.is_empty() => Ok(environment),
        _ => Err(EnvError::Invalid(Problems(
            found
                .into_iter()
                .map(|(pos, key_path, message)| Problem {
                    file: path_for_messages.to_owned(),
                    line: pos.line,
                    column: pos.column,
                    key_path,
                    message,
                })
                .collect(),
        ))),
    }
}
