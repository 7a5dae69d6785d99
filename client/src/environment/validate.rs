//! Checks the YAML node tree against the environment-file schema and builds the
//! [`Environment`], collecting every problem instead of stopping at the first one.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::rc::Rc;

use super::model::{ContainerHost, Environment, Registration};
use super::yaml::{Node, Pos};
use accessors::Fields;
use keys::TOP_KEYS;

mod accessors;
mod cluster;
mod container;
mod cross;
mod health;
mod hints;
mod hosts;
mod keys;
mod network;
mod registration;
mod runtime;

pub use keys::{
    DEFAULT_AGENT, DEFAULT_CERTCLEAN, DEFAULT_CLUSTER_PREFIX, DEFAULT_PORT, DEFAULT_RELOAD,
};

/// One problem, before the file name is attached.
#[derive(Debug)]
pub(super) struct Found {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// Validates the whole document. The environment is complete only when no problem
/// was found.
pub(super) fn check(file: &Path, root: Option<&Node>) -> (Environment, Vec<Found>) {
    let mut checker = Checker::default();
    let environment = checker.environment(file, root);
    (environment, checker.found)
}

/// A container name given somewhere else than in `containers`, checked once all
/// containers are known.
struct Reference {
    name: String,
    pos: Pos,
    path: String,
    /// How the message names the reference, such as "puppet master".
    what: &'static str,
    /// The container whose `after` it is: naming itself is a mistake of its own.
    from: Option<String>,
}

struct KnownHost {
    host: ContainerHost,
    node: Rc<Node>,
}

/// Where the values that cross-container checks report on were written.
struct Placed {
    /// The container's `after` list, or its name when it has none.
    after: Pos,
}

#[derive(Default)]
struct Checker {
    found: Vec<Found>,
    hosts: Vec<KnownHost>,
    references: Vec<Reference>,
    /// Entries of `containerhosts` with a problem already reported: a container on one
    /// of them is not reported again.
    broken_hosts: Vec<(String, Rc<Node>)>,
    /// Every container's address, valid container or not, for the one-ip-one-container
    /// check.
    ips: Vec<(Ipv4Addr, Pos, String)>,
    /// The same for `ip6`.
    ips6: Vec<(Ipv6Addr, Pos, String)>,
}

impl Checker {
    fn report(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.found.push(Found {
            pos,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn environment(&mut self, file: &Path, root: Option<&Node>) -> Environment {
        let mut environment = Environment {
            path: file.to_owned(),
            common: BTreeMap::new(),
            hosts: Vec::new(),
            containers: Vec::new(),
            registration: Registration::default(),
            cluster: None,
        };
        let top = match root {
            Some(root) => self.fields(root, Pos::START, "", TOP_KEYS, "a mapping"),
            None => Some(Fields::empty(Pos::START, "")),
        };
        let Some(top) = top else {
            return environment;
        };

        if let Some(entry) = top.get("common") {
            environment.common = self.common(&entry.value, &top.path("common"));
        }

        match top.get("containerhosts") {
            Some(entry) => self.containerhosts(entry),
            None => self.report(
                top.owner,
                "containerhosts",
                "missing required key `containerhosts`",
            ),
        }
        environment.hosts = self.hosts.iter().map(|h| h.host.clone()).collect();

        // The defaults are checked on their own so a mistake in them is reported where it
        // is written even when no container merges them.
        if let Some(entry) = top.get("containerdefault") {
            self.container(
                "containerdefault",
                entry.key.pos,
                &entry.value,
                "containerdefault",
                true,
            );
        }

        let mut placed = Vec::new();
        match top.get("containers") {
            Some(entry) => {
                for (container, at) in self.containers(entry) {
                    environment.containers.push(container);
                    placed.push(at);
                }
            }
            None => self.report(top.owner, "containers", "missing required key `containers`"),
        }
        self.unique_ips();
        self.unique_ips6();

        if let Some(entry) = top.get("registration") {
            environment.registration = self.registration(entry);
        }
        if let Some(entry) = top.get("cluster") {
            environment.cluster = self.cluster(entry);
        }
        self.references(&environment.containers);
        self.after_cycles(&environment.containers, &placed);
        environment
    }
}
