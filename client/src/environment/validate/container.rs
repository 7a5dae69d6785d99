//! The `containers` section and each container's own keys (`containerdefault` too).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use dockstack_types::network::{AllowedAddressError, MAX_ALLOWED_ADDRESSES, parse_allowed_address};
use dockstack_types::volume::{Bind, MAX_CONFIG_VOLUMES, path_problem};
use dockstack_types::{Mac, RestartPolicy, env, link, name};
use ipnetwork::{Ipv4Network, Ipv6Network};

use super::accessors::Fields;
use super::keys::{CONTAINER_KEYS, FIRST_CREATION_KEYS, MAX_STEP};
use super::{Checker, Placed, Reference};
use crate::environment::model::{Container, FirstCreation};
use crate::environment::yaml::{Entry, Node, Pos, join};

/// A container's addresses, each with where it was written when a later check
/// reports on it.
struct Addresses {
    ip: Option<(Ipv4Addr, Pos, String)>,
    mask: Option<u8>,
    gateway: Option<(Ipv4Addr, Pos, String)>,
    ip6: Option<Ipv6Network>,
    gateway6: Option<Ipv6Addr>,
    dns: Vec<Ipv4Addr>,
}

/// The link keys of a container.
struct Link {
    mac: Option<Mac>,
    mtu: Option<u32>,
    vlan: Option<u16>,
}

impl Checker {
    pub(super) fn containers(&mut self, entry: &Entry) -> Vec<(Container, Placed)> {
        let path = "containers";
        let mut out = Vec::new();
        if entry.value.is_null() {
            return out;
        }
        let Some(entries) = entry.value.entries() else {
            self.wrong_type(&entry.value, path, "a mapping of container names");
            return out;
        };
        for container in entries {
            let Some(name) = container.key.scalar() else {
                self.wrong_type(&container.key, path, "a container name");
                continue;
            };
            let container_path = join(path, name);
            if let Err(e) = name::check_container_name(name) {
                self.report(container.key.pos, &container_path, e.to_string());
            }
            if let Some(built) = self.container(
                name,
                container.key.pos,
                &container.value,
                &container_path,
                false,
            ) {
                out.push(built);
            }
        }
        out
    }

    /// Checks one container. With `partial` (the defaults), nothing is required and
    /// nothing is built.
    pub(super) fn container(
        &mut self,
        name: &str,
        owner: Pos,
        node: &Node,
        path: &str,
        partial: bool,
    ) -> Option<(Container, Placed)> {
        let fields = self.fields(
            node,
            owner,
            path,
            &CONTAINER_KEYS,
            "a mapping of container keys",
        )?;
        let need = !partial;

        let image = self.image(&fields, need);
        let addresses = self.addresses(&fields, name, partial);
        let domain = self.text_field(&fields, "domain", false);
        let bridge = self.text_field(&fields, "bridge", need);
        if let Some(bridge) = &bridge {
            self.bridge(bridge, &fields);
        }
        let host = self.host(&fields, need);
        let volumes = self.volumes(&fields);

        let state = self.boolean(&fields, "state", true);
        let precreation = self.commands(&fields, "precreation");
        let postcreation = self.commands(&fields, "postcreation");
        let postdestroy = self.commands(&fields, "postdestroy");

        let link = self.link(&fields);
        let allowed_addresses = self.allowed_addresses(&fields);
        let env = self.env(&fields);
        let command = self.command(&fields);
        let first_creation = self.first_creation(&fields);
        // Not privileged unless asked: dockstack plugs the network from the
        // host, so containers need no privilege for it, and a privileged
        // container is root on the host (some Docker hosts refuse it too).
        // No capability either unless asked, NET_ADMIN included: with it a
        // container could reconfigure its own network (keepalived users add
        // it, with its VIP in `allowed_addresses`).
        let privileged = self.boolean(&fields, "privileged", false);
        let cap_add = self.cap_add(&fields);
        let restart_value = self.value(&fields, "restart", false);
        let restart = restart_value.clone().and_then(|(n, p)| self.restart(n, &p));
        let service = self.service(&fields);

        let step = self
            .value(&fields, "step", false)
            .and_then(|(n, p)| self.integer(n, &p, "step", 0, MAX_STEP))
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0);
        let healthcheck = self.healthcheck(&fields);
        let oneshot = self.boolean(&fields, "oneshot", false);
        if oneshot {
            self.oneshot_conflicts(&fields, restart_value, restart, state);
        }
        let config_volumes = self.config_volumes(&fields);
        let runtime = self.runtime(&fields);
        let after = self.after(&fields, name, partial);

        if partial {
            return None;
        }
        let after_pos = fields.get("after").map_or(owner, |e| e.value.pos);
        let (ip, _, _) = addresses.ip?;
        let container = Container {
            name: name.to_owned(),
            image: image?,
            ip,
            mask: addresses.mask?,
            gateway: addresses.gateway.map(|(g, _, _)| g),
            ip6: addresses.ip6,
            gateway6: addresses.gateway6,
            dns: addresses.dns,
            domain,
            bridge: bridge?,
            host: host?,
            volumes,
            state,
            precreation,
            postcreation,
            postdestroy,
            mac: link.mac,
            mtu: link.mtu,
            vlan: link.vlan,
            allowed_addresses,
            env,
            command,
            privileged,
            cap_add,
            restart,
            service,
            after,
            step,
            healthcheck,
            oneshot,
            config_volumes,
            runtime,
            first_creation,
        };
        Some((container, Placed { after: after_pos }))
    }

    /// `ip`, `mask`, `gateway`, `ip6`, `gateway6` and `dns`, with the subnet checks
    /// between them.
    fn addresses(&mut self, fields: &Fields<'_>, name: &str, partial: bool) -> Addresses {
        let need = !partial;
        let ip = self
            .value(fields, "ip", need)
            .and_then(|(n, p)| Some((self.ipv4(n, &p)?, n.pos, p)));
        let mask = self
            .value(fields, "mask", need)
            .and_then(|(n, p)| self.integer(n, &p, "mask", 0, 32))
            .and_then(|m| u8::try_from(m).ok());
        let gateway = self
            .value(fields, "gateway", false)
            .and_then(|(n, p)| Some((self.ipv4(n, &p)?, n.pos, p)));
        if let (Some((ip, ip_pos, _)), false) = (&ip, partial) {
            self.ips.push((*ip, *ip_pos, name.to_owned()));
        }
        if let (Some((ip, ip_pos, ip_path)), Some(mask)) = (&ip, mask) {
            self.subnet(*ip, *ip_pos, ip_path, mask, gateway.as_ref());
        }
        let (ip6, gateway6) = self.dual_stack(fields, name, partial);
        let dns = self.dns(fields);
        Addresses {
            ip,
            mask,
            gateway,
            ip6,
            gateway6,
            dns,
        }
    }

    fn dns(&mut self, fields: &Fields<'_>) -> Vec<Ipv4Addr> {
        let mut dns = Vec::new();
        let Some(entry) = fields.get("dns") else {
            return dns;
        };
        let dns_path = fields.path("dns");
        let servers = self.strings(&entry.value, &dns_path, "dns server");
        let list = entry.value.items().is_some();
        for (i, (text, pos)) in servers.into_iter().enumerate() {
            match text.parse::<Ipv4Addr>() {
                Ok(server) => dns.push(server),
                Err(_) => {
                    let at = if list {
                        format!("{dns_path}[{i}]")
                    } else {
                        dns_path.clone()
                    };
                    self.report(
                        pos,
                        &at,
                        format!("expected an ipv4 address, found `{text}`"),
                    );
                }
            }
        }
        dns
    }

    fn volumes(&mut self, fields: &Fields<'_>) -> Vec<String> {
        let mut volumes = Vec::new();
        let volumes_path = fields.path("volumes");
        for (i, (volume, pos)) in self
            .string_list(fields, "volumes", "volume")
            .into_iter()
            .enumerate()
        {
            match Bind::parse(&volume) {
                Err(e) => self.report(pos, &format!("{volumes_path}[{i}]"), e.to_string()),
                Ok(_) => volumes.push(volume),
            }
        }
        volumes
    }

    /// `mac`, `mtu` and `vlan`.
    fn link(&mut self, fields: &Fields<'_>) -> Link {
        let mac = self
            .value(fields, "mac", false)
            .and_then(|(n, p)| self.mac(n, &p));
        let mtu = self
            .value(fields, "mtu", false)
            .and_then(|(n, p)| {
                let (min, max) = (link::MTU.start(), link::MTU.end());
                self.integer(n, &p, "mtu", i64::from(*min), i64::from(*max))
            })
            .and_then(|m| u32::try_from(m).ok());
        let vlan = self
            .value(fields, "vlan", false)
            // 0 is no tag, as the server reads it.
            .and_then(|(n, p)| self.integer(n, &p, "vlan", 0, i64::from(*link::VLAN.end())))
            .and_then(|v| u16::try_from(v).ok());
        Link { mac, mtu, vlan }
    }

    fn allowed_addresses(&mut self, fields: &Fields<'_>) -> Vec<Ipv4Network> {
        let mut allowed_addresses = Vec::new();
        let allowed_path = fields.path("allowed_addresses");
        let listed = self.string_list(fields, "allowed_addresses", "ipv4 address or CIDR");
        if listed.len() > MAX_ALLOWED_ADDRESSES
            && let Some(entry) = fields.get("allowed_addresses")
        {
            let message = AllowedAddressError::TooMany(listed.len()).to_string();
            self.report(entry.value.pos, &allowed_path, message);
        }
        for (i, (text, pos)) in listed.into_iter().enumerate() {
            if let Ok(net) = parse_allowed_address(&text) {
                allowed_addresses.push(net);
            } else {
                self.report(
                    pos,
                    &format!("{allowed_path}[{i}]"),
                    format!("expected an ipv4 address or CIDR (like 10.0.0.5 or 10.0.0.0/28), found `{text}`"),
                );
            }
        }
        allowed_addresses
    }

    fn cap_add(&mut self, fields: &Fields<'_>) -> Vec<String> {
        match fields.get("cap_add") {
            Some(_) => self
                .string_list(fields, "cap_add", "capability")
                .into_iter()
                .map(|(c, _)| c)
                .collect(),
            None => Vec::new(),
        }
    }

    /// A oneshot runs once, when it is made: a restart policy other than `no`, or
    /// `state: false`, contradicts it.
    fn oneshot_conflicts(
        &mut self,
        fields: &Fields<'_>,
        restart_value: Option<(&Node, String)>,
        restart: Option<RestartPolicy>,
        state: bool,
    ) {
        if let (Some((node, path)), Some(policy)) = (restart_value, restart)
            && !policy.is_no()
        {
            self.report(
                node.pos,
                &path,
                format!(
                    "a oneshot runs once: restart `{policy}` is refused \
                     (leave `restart` out or make it `\"no\"`)"
                ),
            );
        }
        if !state && let Some((node, path)) = self.value(fields, "state", false) {
            self.report(
                node.pos,
                &path,
                "a oneshot runs when it is made: `state: false` is refused",
            );
        }
    }

    /// `after`: the names are checked once all containers are known.
    fn after(&mut self, fields: &Fields<'_>, name: &str, partial: bool) -> Vec<String> {
        let mut after = Vec::new();
        let after_path = fields.path("after");
        for (i, (other, pos)) in self
            .string_list(fields, "after", "container name")
            .into_iter()
            .enumerate()
        {
            if !partial {
                self.references.push(Reference {
                    name: other.clone(),
                    pos,
                    path: format!("{after_path}[{i}]"),
                    what: "`after` names container",
                    from: Some(name.to_owned()),
                });
            }
            after.push(other);
        }
        after
    }

    /// `first_creation`: `env` and `command` read as the container's own are;
    /// `None` when it gives neither.
    fn first_creation(&mut self, fields: &Fields<'_>) -> Option<FirstCreation> {
        let entry = fields
            .get("first_creation")
            .filter(|e| !e.value.is_null())?;
        let sub = self.fields(
            &entry.value,
            entry.key.pos,
            &fields.path("first_creation"),
            FIRST_CREATION_KEYS,
            "a mapping of `env` and `command`",
        )?;
        let first = FirstCreation {
            env: self.env(&sub),
            command: self.command(&sub),
        };
        (!first.env.is_empty() || !first.command.is_empty()).then_some(first)
    }

    pub(super) fn env(&mut self, fields: &Fields<'_>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some((node, path)) = self.value(fields, "env", false) else {
            return env;
        };
        let Some(entries) = node.entries() else {
            self.wrong_type(node, &path, "a mapping of variables");
            return env;
        };
        for entry in entries {
            let Some(key) = entry
                .key
                .scalar()
                .filter(|k| !k.is_empty() && !k.contains('='))
            else {
                self.wrong_type(&entry.key, &path, "a variable name");
                continue;
            };
            let value_path = join(&path, key);
            let value = if entry.value.is_null() {
                Some(String::new())
            } else {
                self.string(&entry.value, &value_path, "a string")
            };
            let Some(value) = value else { continue };
            // The server's rule: what Docker's `NAME=value` can carry.
            if let Err(e) = env::check_variable(key, &value) {
                let pos = match e {
                    env::EnvError::Value(_) => entry.value.pos,
                    _ => entry.key.pos,
                };
                self.report(pos, &value_path, e.to_string());
                continue;
            }
            env.insert(key.to_owned(), value);
        }
        env
    }

    pub(super) fn command(&mut self, fields: &Fields<'_>) -> Vec<String> {
        let Some((node, path)) = self.value(fields, "command", false) else {
            return Vec::new();
        };
        let words = self.command_words(node, &path);
        // The server's rule, as for `env`.
        if let Err(e) = env::check_command(&words) {
            self.report(node.pos, &path, e.to_string());
            return Vec::new();
        }
        words
    }

    fn command_words(&mut self, node: &Node, path: &str) -> Vec<String> {
        if let Some(line) = node.scalar() {
            return match shell_words::split(line) {
                Ok(words) => words,
                Err(e) => {
                    self.report(
                        node.pos,
                        path,
                        format!("cannot split the command line: {e}"),
                    );
                    Vec::new()
                }
            };
        }
        self.strings(node, path, "command word")
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    /// `image`: a reference in Docker's grammar, as the server requires.
    fn image(&mut self, fields: &Fields<'_>, required: bool) -> Option<String> {
        let image = self.text_field(fields, "image", required)?;
        if image.trim().is_empty() {
            return Some(image);
        }
        if let Err(e) = dockstack_types::image::check_reference(&image) {
            if let Some((node, path)) = self.value(fields, "image", false) {
                self.report(node.pos, &path, e.to_string());
            }
            return None;
        }
        Some(image)
    }

    /// `service`: a name of Docker's grammar, as the server requires.
    fn service(&mut self, fields: &Fields<'_>) -> Option<String> {
        let service = self.text_field(fields, "service", false)?;
        if !service.is_empty() && !name::is_docker_name(&service) {
            if let Some((node, path)) = self.value(fields, "service", false) {
                let message = format!(
                    "`{service}` is not a valid service name \
                     (at least 2 of letters, digits, `_`, `.`, `-`; a letter or digit first)"
                );
                self.report(node.pos, &path, message);
            }
            return None;
        }
        Some(service)
    }

    pub(super) fn restart(&mut self, node: &Node, path: &str) -> Option<RestartPolicy> {
        let text = self.string(node, path, "a restart policy")?;
        match text.parse() {
            Ok(policy) => Some(policy),
            Err(e) => {
                self.report(node.pos, path, format!("{e}"));
                None
            }
        }
    }

    /// `config_volumes`: absolute host paths with no `..`.
    pub(super) fn config_volumes(&mut self, fields: &Fields<'_>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Some(entry) = fields.get("config_volumes") else {
            return out;
        };
        let path = fields.path("config_volumes");
        let list = entry.value.items().is_some();
        let listed = self.strings(&entry.value, &path, "host path");
        if listed.len() > MAX_CONFIG_VOLUMES {
            let message = format!(
                "{} config_volumes, at most {MAX_CONFIG_VOLUMES}",
                listed.len()
            );
            self.report(entry.value.pos, &path, message);
        }
        for (i, (text, pos)) in listed.into_iter().enumerate() {
            match path_problem(&text) {
                Some(problem) => {
                    let at = if list {
                        format!("{path}[{i}]")
                    } else {
                        path.clone()
                    };
                    self.report(pos, &at, format!("path `{text}` {problem}"));
                }
                None => out.push(PathBuf::from(text)),
            }
        }
        out
    }
}
