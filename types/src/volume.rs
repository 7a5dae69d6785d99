//! Bind volumes (`HOST_PATH:CONTAINER_PATH[:ro|:rw]`) and config volumes:
//! absolute paths without `..`, since a relative or `..` source could reach
//! anywhere on the host.

use std::fmt;
use std::path::{Component, Path};

/// At most this many config volumes: each is read on every plan.
pub const MAX_CONFIG_VOLUMES: usize = 64;

/// What is wrong with a path that must be absolute and clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    NotAbsolute,
    ParentDir,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::NotAbsolute => "is not absolute",
            PathProblem::ParentDir => "has a `..` component",
        })
    }
}

/// `None` for an absolute path without a `..` component.
pub fn path_problem(path: &str) -> Option<PathProblem> {
    let path = Path::new(path);
    if !path.is_absolute() {
        Some(PathProblem::NotAbsolute)
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some(PathProblem::ParentDir)
    } else {
        None
    }
}

/// Which side of a bind a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Host,
    Container,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Host => "host",
            Side::Container => "container",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("volume `{0}` is not HOST:CONTAINER[:ro|:rw]")]
    Form(String),
    #[error("volume `{0}` has more than HOST_PATH:CONTAINER_PATH:MODE")]
    TooManyParts(String),
    #[error("volume `{volume}`: {side} path `{path}` {problem}")]
    Path {
        volume: String,
        side: Side,
        path: String,
        problem: PathProblem,
    },
}

/// One bind, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    pub host: &'a str,
    pub container: &'a str,
    pub read_only: bool,
}

impl<'a> Bind<'a> {
    pub fn parse(volume: &'a str) -> Result<Self, BindError> {
        let parts: Vec<&str> = volume.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [host, container] => (*host, *container, false),
            [host, container, mode @ ("ro" | "rw")] => (*host, *container, *mode == "ro"),
            [_, _, _, _, ..] => return Err(BindError::TooManyParts(volume.to_owned())),
            _ => return Err(BindError::Form(volume.to_owned())),
        };
        for (side, path) in [(Side::Host, host), (Side::Container, container)] {
            if let Some(problem) = path_problem(path) {
                return Err(BindError::Path {
                    volume: volume.to_owned(),
                    side,
                    path: path.to_owned(),
                    problem,
                });
            }
        }
        Ok(Bind {
            host,
            container,
            read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let b = Bind::parse("/srv/web:/var/www:ro").unwrap();
        assert_eq!(
            (b.host, b.container, b.read_only),
            ("/srv/web", "/var/www", true)
        );
        assert!(matches!(Bind::parse("/srv"), Err(BindError::Form(_))));
        assert!(matches!(Bind::parse("/a:/b:rx"), Err(BindError::Form(_))));
        assert!(matches!(
            Bind::parse("/a:/b:ro:x"),
            Err(BindError::TooManyParts(_))
        ));
        let e = Bind::parse("/srv/../etc:/etc").unwrap_err().to_string();
        assert_eq!(
            e,
            "volume `/srv/../etc:/etc`: host path `/srv/../etc` has a `..` component"
        );
        let e = Bind::parse("/srv:data").unwrap_err().to_string();
        assert!(e.contains("container path `data` is not absolute"), "{e}");
    }
}
