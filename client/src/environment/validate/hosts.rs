//! The `common` and `containerhosts` sections, and a container's `host`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::accessors::Fields;
use super::hints::closest;
use super::keys::{DEFAULT_PORT, HOST_KEYS};
use super::{Checker, KnownHost};
use crate::environment::model::{ContainerHost, HostAddress};
use crate::environment::yaml::{Entry, Node, join};

impl Checker {
    pub(super) fn common(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut common = BTreeMap::new();
        if node.is_null() {
            return common;
        }
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, "a mapping");
            return common;
        };
        for entry in entries {
            match entry.key.scalar() {
                Some(key) => {
                    common.insert(key.to_owned(), entry.value.render());
                }
                None => self.report(
                    entry.key.pos,
                    path,
                    format!("expected a key name, found {}", entry.key.describe()),
                ),
            }
        }
        common
    }

    pub(super) fn containerhosts(&mut self, entry: &Entry) {
        let path = "containerhosts";
        if entry.value.is_null() {
            return;
        }
        let Some(entries) = entry.value.entries() else {
            self.wrong_type(&entry.value, path, "a mapping of host names");
            return;
        };
        for host in entries {
            let Some(name) = host.key.scalar() else {
                self.wrong_type(&host.key, path, "a host name");
                continue;
            };
            match self.known_host(name, host) {
                Some(known) => self.hosts.push(KnownHost {
                    host: known,
                    node: Rc::clone(&host.value),
                }),
                None => self
                    .broken_hosts
                    .push((name.to_owned(), Rc::clone(&host.value))),
            }
        }
    }

    pub(super) fn known_host(&mut self, name: &str, host: &Entry) -> Option<ContainerHost> {
        let path = join("containerhosts", name);
        let fields = self.fields(&host.value, host.key.pos, &path, HOST_KEYS, "{ip, port}")?;
        let ip = self.host_address(&fields);
        let port = match self.value(&fields, "port", false) {
            Some((node, path)) => self
                .integer(node, &path, "port", 1, 65535)
                .and_then(|p| u16::try_from(p).ok()),
            None => Some(DEFAULT_PORT),
        };
        let (ip, port) = (ip?, port?);
        if let Some(same) = self
            .hosts
            .iter()
            .find(|h| h.host.ip == ip && h.host.port == port)
        {
            let message = format!(
                "host `{name}` has the address {ip}:{port} of host `{}`",
                same.host.name
            );
            self.report(host.key.pos, &path, message);
            return None;
        }
        Some(ContainerHost {
            name: name.to_owned(),
            ip,
            port,
        })
    }

    pub(super) fn host_address(&mut self, fields: &Fields<'_>) -> Option<HostAddress> {
        let (node, path) = self.value(fields, "ip", true)?;
        let ip = self.string(node, &path, "an address")?;
        match ip.parse() {
            Ok(address) => Some(address),
            Err(e) => {
                self.report(node.pos, &path, format!("{e}"));
                None
            }
        }
    }

    /// The host's name, from `host: NAME` or from a mapping (`host: *host1`) that is, or
    /// has the address of, one `containerhosts` entry.
    pub(super) fn host(&mut self, fields: &Fields<'_>, required: bool) -> Option<String> {
        let (node, path) = self.value(fields, "host", required)?;
        if let Some(name) = node.scalar() {
            if self.hosts.iter().any(|h| h.host.name == name) {
                return Some(name.to_owned());
            }
            if self.broken_hosts.iter().any(|(n, _)| n == name) {
                return None;
            }
            let hint = match closest(name, self.hosts.iter().map(|h| h.host.name.as_str())) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            self.report(
                node.pos,
                &path,
                format!("host `{name}` is not in containerhosts{hint}"),
            );
            return None;
        }
        let Some(entries) = node.entries() else {
            self.wrong_type(node, &path, "a host name or a containerhosts entry");
            return None;
        };
        if let Some(known) = self
            .hosts
            .iter()
            .find(|h| std::ptr::eq(h.node.target(), node.target()))
        {
            return Some(known.host.name.clone());
        }
        if self
            .broken_hosts
            .iter()
            .any(|(_, n)| std::ptr::eq(n.target(), node.target()))
        {
            return None;
        }
        let get = |key: &str| {
            entries
                .iter()
                .find(|e| e.key.scalar() == Some(key))
                .and_then(|e| e.value.scalar())
        };
        let ip = get("ip").unwrap_or_default();
        let port = get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(DEFAULT_PORT);
        let matches: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| h.host.ip.to_string() == ip && h.host.port == port)
            .map(|h| h.host.name.as_str())
            .collect();
        match matches.as_slice() {
            [one] => Some((*one).to_owned()),
            [] => {
                let message = format!("host {} is not in containerhosts", node.render());
                self.report(node.pos, &path, message);
                None
            }
            several => {
                let message = format!(
                    "host {} matches several containerhosts entries: {}; name the host instead",
                    node.render(),
                    several.join(", ")
                );
                self.report(node.pos, &path, message);
                None
            }
        }
    }
}
