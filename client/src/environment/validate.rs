//! Checks the YAML node tree against the environment-file schema and builds the
//! [`Environment`], collecting every problem instead of stopping at the first one.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::model::{
    Container, ContainerHost, DnsRegistration, Environment, Healthcheck, PuppetRegistration,
    Registration,
};
use super::yaml::{Entry, Node, Pos, join};
use dockstack_proto::ip6::{check_gateway6, check_gateway6_alone, parse_ip6};
use ipnetwork::Ipv6Network;

/// The port a `dockstack-server` listens on when `containerhosts` gives none.
pub const DEFAULT_PORT: u16 = 3288;
pub const DEFAULT_RELOAD: &str = "pkill -HUP -x dnsmasq";
pub const DEFAULT_CERTCLEAN: &str = "puppet cert clean {fqdn}";
pub const DEFAULT_AGENT: &str = "puppet agent -t";
/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;

const TOP_KEYS: &[&str] = &[
    "common",
    "containerhosts",
    "containerdefault",
    "containers",
    "registration",
    "registered_services",
];
const HOST_KEYS: &[&str] = &["ip", "port"];
const CONTAINER_KEYS: &[&str] = &[
    "image",
    "ip",
    "mask",
    "gateway",
    "ip6",
    "gateway6",
    "dns",
    "domain",
    "bridge",
    "host",
    "volumes",
    "state",
    "precreation",
    "postcreation",
    "postdestroy",
    "mac",
    "mtu",
    "vlan",
    "allowed_addresses",
    "env",
    "command",
    "privileged",
    "cap_add",
    "restart",
    "service",
    "after",
    "step",
    "healthcheck",
    "oneshot",
    "config_volumes",
];
/// The highest `step`.
const MAX_STEP: i64 = 1000;
const HEALTHCHECK_KEYS: &[&str] = &["test", "interval", "timeout", "retries", "start_period"];
/// Docker's defaults for a healthcheck's interval and timeout.
const DEFAULT_HEALTH_INTERVAL_MS: u32 = 30_000;
const DEFAULT_HEALTH_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_HEALTH_RETRIES: u32 = 3;
/// The longest healthcheck interval, timeout or start period: the server's limit.
const MAX_HEALTH_MS: u32 = 3_600_000;
/// As many as the server takes: each is two OpenFlow rules on the host.
const MAX_ALLOWED_ADDRESSES: usize = 64;

/// An IPv4 address, or one with a `/LEN` of 0 to 32.
fn allowed_address_ok(text: &str) -> bool {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (text, None),
    };
    ip.parse::<Ipv4Addr>().is_ok()
        && len.is_none_or(|l| {
            !l.is_empty()
                && l.len() <= 2
                && l.bytes().all(|b| b.is_ascii_digit())
                && l.parse::<u8>().is_ok_and(|n| n <= 32)
        })
}

const REGISTRATION_KEYS: &[&str] = &["dns", "puppet"];
const DNS_KEYS: &[&str] = &["container", "hostsfile", "reload"];
const PUPPET_KEYS: &[&str] = &["master", "hieradata", "sitepp", "certclean", "agent"];

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

/// The keys of one mapping that passed the known-key check.
struct Fields<'n> {
    /// Where a missing key is reported: the mapping's own key, or the file's start.
    owner: Pos,
    path: String,
    entries: Vec<(&'n str, &'n Entry)>,
}

impl<'n> Fields<'n> {
    fn empty(owner: Pos, path: &str) -> Self {
        Fields {
            owner,
            path: path.to_owned(),
            entries: Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
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
        self.references(&environment.containers);
        self.after_cycles(&environment.containers, &placed);
        environment
    }

    /// Checks that `node` is a mapping (or empty) whose keys are all in `known`.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        owner: Pos,
        path: &str,
        known: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        if node.is_null() {
            return Some(Fields::empty(owner, path));
        }
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, what);
            return None;
        };
        let mut fields = Fields::empty(owner, path);
        for entry in entries {
            let Some(key) = entry.key.scalar() else {
                self.report(
                    entry.key.pos,
                    path,
                    format!("expected a key name, found {}", entry.key.describe()),
                );
                continue;
            };
            if known.contains(&key) {
                fields.entries.push((key, entry));
            } else {
                let hint = match closest(key, known.iter().copied()) {
                    Some(near) => format!(" (did you mean `{near}`?)"),
                    None => format!(" (known keys: {})", known.join(", ")),
                };
                self.report(
                    entry.key.pos,
                    &join(path, key),
                    format!("unknown key `{key}`{hint}"),
                );
            }
        }
        Some(fields)
    }

    fn wrong_type(&mut self, node: &Node, path: &str, what: &str) {
        self.report(
            node.pos,
            path,
            format!("expected {what}, found {}", node.describe()),
        );
    }

    /// The value of `key` when it is there and not empty; reports it missing when
    /// `required`.
    fn value<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        required: bool,
    ) -> Option<(&'n Node, String)> {
        match fields.get(key) {
            Some(entry) if !entry.value.is_null() => Some((&entry.value, fields.path(key))),
            Some(entry) => {
                if required {
                    self.report(
                        entry.key.pos,
                        &fields.path(key),
                        format!("required key `{key}` has no value"),
                    );
                }
                None
            }
            None => {
                if required {
                    self.report(
                        fields.owner,
                        &fields.path,
                        format!("missing required key `{key}`"),
                    );
                }
                None
            }
        }
    }

    fn string(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        match node.scalar() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.wrong_type(node, path, what);
                None
            }
        }
    }

    fn text_field(&mut self, fields: &Fields<'_>, key: &str, required: bool) -> Option<String> {
        let (node, path) = self.value(fields, key, required)?;
        let text = self.string(node, &path, "a string")?;
        if required && text.trim().is_empty() {
            self.report(node.pos, &path, format!("`{key}` is empty"));
            return None;
        }
        Some(text)
    }

    fn ipv4(&mut self, node: &Node, path: &str) -> Option<Ipv4Addr> {
        match node.scalar().map(str::parse::<Ipv4Addr>) {
            Some(Ok(ip)) => Some(ip),
            _ => {
                self.wrong_type(node, path, "an ipv4 address");
                None
            }
        }
    }

    fn boolean(&mut self, fields: &Fields<'_>, key: &str, default: bool) -> bool {
        let Some((node, path)) = self.value(fields, key, false) else {
            return default;
        };
        // The YAML 1.1 spellings too: the 2015 client read the file with PyYAML.
        match node.scalar() {
            Some("true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => true,
            Some("false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => false,
            _ => {
                self.wrong_type(node, &path, "true or false");
                default
            }
        }
    }

    /// An integer in `min..=max`.
    fn integer(&mut self, node: &Node, path: &str, what: &str, min: i64, max: i64) -> Option<i64> {
        let Some(number) = node.scalar().and_then(|t| t.parse::<i64>().ok()) else {
            self.wrong_type(node, path, &format!("an integer ({what})"));
            return None;
        };
        if !(min..=max).contains(&number) {
            self.report(
                node.pos,
                path,
                format!("{what} {number} is out of range {min}..={max}"),
            );
            return None;
        }
        Some(number)
    }

    /// A list of strings; a single string stands for a list of one. Empty means none.
    fn strings(&mut self, node: &Node, path: &str, what: &str) -> Vec<(String, Pos)> {
        if node.is_null() {
            return Vec::new();
        }
        if let Some(text) = node.scalar() {
            return vec![(text.to_owned(), node.pos)];
        }
        let Some(items) = node.items() else {
            self.wrong_type(node, path, &format!("a list of {what}s"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(text) = self.string(item, &format!("{path}[{i}]"), &format!("a {what}")) {
                out.push((text, item.pos));
            }
        }
        out
    }

    fn string_list(&mut self, fields: &Fields<'_>, key: &str, what: &str) -> Vec<(String, Pos)> {
        match fields.get(key) {
            Some(entry) => self.strings(&entry.value, &fields.path(key), what),
            None => Vec::new(),
        }
    }

    /// A command line, split later the way a shell would; checked here so a missing
    /// quote is found before anything runs.
    fn command_line(&mut self, text: &str, pos: Pos, path: &str) -> bool {
        if text.trim().is_empty() {
            self.report(pos, path, "empty command line");
            return false;
        }
        if let Err(e) = shell_words::split(text) {
            self.report(pos, path, format!("cannot split the command line: {e}"));
            return false;
        }
        true
    }

    fn commands(&mut self, fields: &Fields<'_>, key: &str) -> Vec<String> {
        let path = fields.path(key);
        let mut out = Vec::new();
        for (i, (line, pos)) in self
            .string_list(fields, key, "command line")
            .into_iter()
            .enumerate()
        {
            if self.command_line(&line, pos, &format!("{path}[{i}]")) {
                out.push(line);
            }
        }
        out
    }

    fn common(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
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

    fn containerhosts(&mut self, entry: &Entry) {
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

    fn known_host(&mut self, name: &str, host: &Entry) -> Option<ContainerHost> {
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

    fn host_address(&mut self, fields: &Fields<'_>) -> Option<String> {
        let (node, path) = self.value(fields, "ip", true)?;
        let ip = self.string(node, &path, "an address")?;
        if ip.contains(char::is_whitespace) {
            self.report(node.pos, &path, format!("`{ip}` is not an address"));
            return None;
        }
        Some(ip)
    }

    fn containers(&mut self, entry: &Entry) -> Vec<(Container, Placed)> {
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
            if !docker_name(name) {
                self.report(
                    container.key.pos,
                    &container_path,
                    format!(
                        "`{name}` is not a valid container name \
                         (at least 2 of letters, digits, `_`, `.`, `-`; a letter or digit first)"
                    ),
                );
            } else if name.ends_with(dockstack_proto::SANDBOX_SUFFIX) {
                self.report(
                    container.key.pos,
                    &container_path,
                    format!(
                        "`{name}` ends with `{}`, which dockstack keeps for the network sandboxes it makes",
                        dockstack_proto::SANDBOX_SUFFIX
                    ),
                );
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
    fn container(
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
            CONTAINER_KEYS,
            "a mapping of container keys",
        )?;
        let need = !partial;

        let image = self.text_field(&fields, "image", need);
        let ip = self
            .value(&fields, "ip", need)
            .and_then(|(n, p)| Some((self.ipv4(n, &p)?, n.pos, p)));
        let mask = self
            .value(&fields, "mask", need)
            .and_then(|(n, p)| self.integer(n, &p, "mask", 0, 32))
            .and_then(|m| u8::try_from(m).ok());
        let gateway = self
            .value(&fields, "gateway", false)
            .and_then(|(n, p)| Some((self.ipv4(n, &p)?, n.pos, p)));
        if let (Some((ip, ip_pos, _)), false) = (&ip, partial) {
            self.ips.push((*ip, *ip_pos, name.to_owned()));
        }
        if let (Some((ip, ip_pos, ip_path)), Some(mask)) = (&ip, mask) {
            self.subnet(*ip, *ip_pos, ip_path, mask, gateway.as_ref());
        }
        let (ip6, gateway6) = self.dual_stack(&fields, name, partial);

        let mut dns = Vec::new();
        if let Some(entry) = fields.get("dns") {
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
        }

        let domain = self.text_field(&fields, "domain", false);
        let bridge = self.text_field(&fields, "bridge", need);
        if let Some(bridge) = &bridge {
            self.bridge(bridge, &fields);
        }
        let host = self.host(&fields, need);

        let mut volumes = Vec::new();
        let volumes_path = fields.path("volumes");
        for (i, (volume, pos)) in self
            .string_list(&fields, "volumes", "volume")
            .into_iter()
            .enumerate()
        {
            match volume_problem(&volume) {
                Some(message) => self.report(pos, &format!("{volumes_path}[{i}]"), message),
                None => volumes.push(volume),
            }
        }

        let state = self.boolean(&fields, "state", true);
        let precreation = self.commands(&fields, "precreation");
        let postcreation = self.commands(&fields, "postcreation");
        let postdestroy = self.commands(&fields, "postdestroy");

        let mac = self
            .value(&fields, "mac", false)
            .and_then(|(n, p)| self.mac(n, &p));
        let mtu = self
            .value(&fields, "mtu", false)
            .and_then(|(n, p)| self.integer(n, &p, "mtu", 68, 65535))
            .and_then(|m| u32::try_from(m).ok());
        let vlan = self
            .value(&fields, "vlan", false)
            .and_then(|(n, p)| self.integer(n, &p, "vlan", 0, 4095))
            .and_then(|v| u16::try_from(v).ok());
        let mut allowed_addresses = Vec::new();
        let allowed_path = fields.path("allowed_addresses");
        let listed = self.string_list(&fields, "allowed_addresses", "ipv4 address or CIDR");
        if listed.len() > MAX_ALLOWED_ADDRESSES
            && let Some(entry) = fields.get("allowed_addresses")
        {
            self.report(
                entry.value.pos,
                &allowed_path,
                format!(
                    "{} allowed addresses, at most {MAX_ALLOWED_ADDRESSES}",
                    listed.len()
                ),
            );
        }
        for (i, (text, pos)) in listed.into_iter().enumerate() {
            if allowed_address_ok(&text) {
                allowed_addresses.push(text);
            } else {
                self.report(
                    pos,
                    &format!("{allowed_path}[{i}]"),
                    format!("expected an ipv4 address or CIDR (like 10.0.0.5 or 10.0.0.0/28), found `{text}`"),
                );
            }
        }
        let env = self.env(&fields);
        let command = self.command(&fields);
        // Not privileged unless asked: dockstack plugs the network from the
        // host, so containers need no privilege for it, and a privileged
        // container is root on the host (some Docker hosts refuse it too).
        // No capability either unless asked, NET_ADMIN included: with it a
        // container could reconfigure its own network (keepalived users add
        // it, with its VIP in `allowed_addresses`).
        let privileged = self.boolean(&fields, "privileged", false);
        let cap_add = match fields.get("cap_add") {
            Some(_) => self
                .string_list(&fields, "cap_add", "capability")
                .into_iter()
                .map(|(c, _)| c)
                .collect(),
            None => Vec::new(),
        };
        let restart_value = self.value(&fields, "restart", false);
        let restart = restart_value.clone().and_then(|(n, p)| self.restart(n, &p));
        let service = self.text_field(&fields, "service", false);

        let step = self
            .value(&fields, "step", false)
            .and_then(|(n, p)| self.integer(n, &p, "step", 0, MAX_STEP))
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0);
        let healthcheck = self.healthcheck(&fields);
        let oneshot = self.boolean(&fields, "oneshot", false);
        if oneshot {
            if let (Some((node, path)), Some(policy)) = (restart_value, &restart)
                && policy != "no"
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
            if !state && let Some((node, path)) = self.value(&fields, "state", false) {
                self.report(
                    node.pos,
                    &path,
                    "a oneshot runs when it is made: `state: false` is refused",
                );
            }
        }
        let config_volumes = self.config_volumes(&fields);

        let mut after = Vec::new();
        let after_path = fields.path("after");
        for (i, (other, pos)) in self
            .string_list(&fields, "after", "container name")
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

        if partial {
            return None;
        }
        let after_pos = fields.get("after").map_or(owner, |e| e.value.pos);
        let (ip, _, _) = ip?;
        let container = Container {
            name: name.to_owned(),
            image: image?,
            ip,
            mask: mask?,
            gateway: gateway.map(|(g, _, _)| g),
            ip6,
            gateway6,
            dns,
            domain,
            bridge: bridge?,
            host: host?,
            volumes,
            state,
            precreation,
            postcreation,
            postdestroy,
            mac,
            mtu,
            vlan,
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
        };
        Some((container, Placed { after: after_pos }))
    }

    fn subnet(
        &mut self,
        ip: Ipv4Addr,
        ip_pos: Pos,
        ip_path: &str,
        mask: u8,
        gateway: Option<&(Ipv4Addr, Pos, String)>,
    ) {
        let netmask = if mask == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(mask))
        };
        let network = Ipv4Addr::from(u32::from(ip) & netmask);
        let broadcast = Ipv4Addr::from(u32::from(ip) | !netmask);
        // /31 and /32 have no network or broadcast address to avoid.
        if mask <= 30 {
            if ip == network {
                let message = format!("ip {ip} is the network address of {network}/{mask}");
                self.report(ip_pos, ip_path, message);
            } else if ip == broadcast {
                let message = format!("ip {ip} is the broadcast address of {network}/{mask}");
                self.report(ip_pos, ip_path, message);
            }
        }
        let Some((gateway, pos, path)) = gateway else {
            return;
        };
        if u32::from(*gateway) & netmask != u32::from(network) {
            let message = format!("gateway {gateway} is outside the subnet {network}/{mask}");
            self.report(*pos, path, message);
        } else if *gateway == ip {
            let message = format!("gateway {gateway} is the container's own ip");
            self.report(*pos, path, message);
        }
    }

    /// `ip6` and `gateway6`: an address and prefix fit for an interface,
    /// and a next hop inside that prefix (or a link-local one, which is how
    /// routers commonly announce themselves on IPv6).
    fn dual_stack(
        &mut self,
        fields: &Fields<'_>,
        name: &str,
        partial: bool,
    ) -> (Option<Ipv6Network>, Option<Ipv6Addr>) {
        let ip6 = self.value(fields, "ip6", false).and_then(|(node, path)| {
            let text = self.string(node, &path, "an ipv6 address with /LEN")?;
            match parse_ip6(&text) {
                Ok(net) => Some((net, node.pos, path)),
                Err(message) => {
                    self.report(node.pos, &path, message);
                    None
                }
            }
        });
        let gateway6 = self
            .value(fields, "gateway6", false)
            .and_then(|(node, path)| {
                let text = self.string(node, &path, "an ipv6 address")?;
                match text.trim().parse::<Ipv6Addr>() {
                    Ok(g) => Some((g, node.pos, path)),
                    Err(_) => {
                        let message = format!("expected an ipv6 address, found `{text}`");
                        self.report(node.pos, &path, message);
                        None
                    }
                }
            });
        if let (Some((net, pos, _)), false) = (&ip6, partial) {
            self.ips6.push((net.ip(), *pos, name.to_owned()));
        }
        if let Some((gateway, pos, path)) = &gateway6 {
            let problem = match &ip6 {
                Some((net, _, _)) => check_gateway6(net, *gateway).err(),
                // A gateway6 merged from the defaults serves the containers
                // that have an ip6; written in an IPv4-only one, it is a
                // mistake. Merged keys are written before the container's
                // own (YAML defines an anchor before any alias of it).
                None if !partial
                    && fields.get("ip6").is_none()
                    && fields
                        .get("gateway6")
                        .is_some_and(|e| e.key.pos.line >= fields.owner.line) =>
                {
                    Some("`gateway6` is given without `ip6`".to_string())
                }
                None => check_gateway6_alone(*gateway).err(),
            };
            if let Some(message) = problem {
                self.report(*pos, path, message);
            }
        }
        let ip6 = ip6.map(|(n, _, _)| n);
        // A merged gateway6 an IPv4-only container has no use for.
        (ip6, gateway6.filter(|_| ip6.is_some()).map(|(g, _, _)| g))
    }

    fn bridge(&mut self, bridge: &str, fields: &Fields<'_>) {
        let Some((node, path)) = self.value(fields, "bridge", false) else {
            return;
        };
        let message = if bridge.len() > MAX_IFNAME {
            format!(
                "bridge name `{bridge}` is {} bytes long; linux allows at most {MAX_IFNAME}",
                bridge.len()
            )
        } else if bridge == "."
            || bridge == ".."
            || bridge.contains(['/', ':'])
            || bridge.contains(char::is_whitespace)
        {
            format!("`{bridge}` is not a valid interface name")
        } else {
            return;
        };
        self.report(node.pos, &path, message);
    }

    /// The host's name, from `host: NAME` or from a mapping (`host: *host1`) that is, or
    /// has the address of, one `containerhosts` entry.
    fn host(&mut self, fields: &Fields<'_>, required: bool) -> Option<String> {
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
            .filter(|h| h.host.ip == ip && h.host.port == port)
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

    fn mac(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path, "a mac address")?;
        let octets: Vec<Option<u8>> = text
            .split(':')
            .map(|o| {
                (o.len() == 2)
                    .then(|| u8::from_str_radix(o, 16).ok())
                    .flatten()
            })
            .collect();
        if octets.len() != 6 || octets.iter().any(Option::is_none) {
            self.wrong_type(node, path, "a mac address like 02:42:0a:00:00:01");
            return None;
        }
        if octets[0].is_some_and(|first| first & 1 == 1) {
            self.report(node.pos, path, format!("mac {text} is a multicast address"));
            return None;
        }
        Some(text.to_ascii_lowercase())
    }

    fn env(&mut self, fields: &Fields<'_>) -> BTreeMap<String, String> {
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
            if entry.value.is_null() {
                env.insert(key.to_owned(), String::new());
            } else if let Some(value) = self.string(&entry.value, &value_path, "a string") {
                env.insert(key.to_owned(), value);
            }
        }
        env
    }

    fn command(&mut self, fields: &Fields<'_>) -> Vec<String> {
        let Some((node, path)) = self.value(fields, "command", false) else {
            return Vec::new();
        };
        if let Some(line) = node.scalar() {
            return match shell_words::split(line) {
                Ok(words) => words,
                Err(e) => {
                    self.report(
                        node.pos,
                        &path,
                        format!("cannot split the command line: {e}"),
                    );
                    Vec::new()
                }
            };
        }
        self.strings(node, &path, "command word")
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    fn restart(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path, "a restart policy")?;
        let valid = match text.split_once(':') {
            None => matches!(
                text.as_str(),
                "no" | "always" | "unless-stopped" | "on-failure"
            ),
            Some(("on-failure", count)) => count.parse::<u32>().is_ok(),
            Some(_) => false,
        };
        if !valid {
            self.report(
                node.pos,
                path,
                format!(
                    "unknown restart policy `{text}` \
                     (expected no, always, unless-stopped, on-failure or on-failure:N)"
                ),
            );
            return None;
        }
        Some(text)
    }

    /// `config_volumes`: absolute host paths with no `..`.
    fn config_volumes(&mut self, fields: &Fields<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let Some(entry) = fields.get("config_volumes") else {
            return out;
        };
        let path = fields.path("config_volumes");
        let list = entry.value.items().is_some();
        for (i, (text, pos)) in self
            .strings(&entry.value, &path, "host path")
            .into_iter()
            .enumerate()
        {
            match path_problem(&text) {
                Some(problem) => {
                    let at = if list {
                        format!("{path}[{i}]")
                    } else {
                        path.clone()
                    };
                    self.report(pos, &at, format!("path `{text}` {problem}"));
                }
                None => out.push(text),
            }
        }
        out
    }

    /// `healthcheck`: `test` required, Docker's defaults for the rest. Checked in the
    /// defaults too: a container's own `healthcheck` replaces the default's whole, so a
    /// default without `test` is never completed.
    fn healthcheck(&mut self, fields: &Fields<'_>) -> Option<Healthcheck> {
        let entry = fields.get("healthcheck").filter(|e| !e.value.is_null())?;
        let path = fields.path("healthcheck");
        let f = self.fields(
            &entry.value,
            entry.key.pos,
            &path,
            HEALTHCHECK_KEYS,
            "a mapping of healthcheck keys",
        )?;
        let test = self
            .value(&f, "test", true)
            .and_then(|(n, p)| self.health_test(n, &p));
        let interval = self.duration_field(&f, "interval", DEFAULT_HEALTH_INTERVAL_MS, false);
        let timeout = self.duration_field(&f, "timeout", DEFAULT_HEALTH_TIMEOUT_MS, false);
        let start_period = self.duration_field(&f, "start_period", 0, true);
        let retries = match self.value(&f, "retries", false) {
            Some((n, p)) => self
                .integer(n, &p, "retries", 1, 1000)
                .and_then(|r| u32::try_from(r).ok()),
            None => Some(DEFAULT_HEALTH_RETRIES),
        };
        Some(Healthcheck {
            test: test?,
            interval_ms: interval?,
            timeout_ms: timeout?,
            retries: retries?,
            start_period_ms: start_period?,
        })
    }

    /// A healthcheck's `test` in Docker's form: a command line becomes
    /// `["CMD-SHELL", line]`, a list of words `["CMD", words...]` unless it starts with
    /// `CMD` or `CMD-SHELL` already.
    fn health_test(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        if let Some(line) = node.scalar() {
            return self
                .command_line(line, node.pos, path)
                .then(|| vec!["CMD-SHELL".to_owned(), line.to_owned()]);
        }
        let Some(items) = node.items() else {
            self.wrong_type(node, path, "a command line or a list of words");
            return None;
        };
        let mut words = Vec::new();
        for (i, item) in items.iter().enumerate() {
            words.push(self.string(item, &format!("{path}[{i}]"), "a word"));
        }
        let words: Vec<String> = words.into_iter().collect::<Option<_>>()?;
        let at = |i: usize| (items[i].pos, format!("{path}[{i}]"));
        match words.first().map(String::as_str) {
            None => {
                self.report(node.pos, path, "an empty list runs nothing");
                None
            }
            Some("CMD-SHELL") if words.len() != 2 => {
                let message = format!(
                    "`CMD-SHELL` takes one command line after it, found {}",
                    words.len() - 1
                );
                self.report(node.pos, path, message);
                None
            }
            Some("CMD-SHELL") => {
                let (pos, item_path) = at(1);
                self.command_line(&words[1], pos, &item_path)
                    .then_some(words)
            }
            Some("CMD") if words.len() < 2 => {
                self.report(node.pos, path, "`CMD` takes a program after it");
                None
            }
            Some("NONE") => {
                let (pos, item_path) = at(0);
                self.report(
                    pos,
                    &item_path,
                    "`NONE` (turning the image's healthcheck off) is not supported",
                );
                None
            }
            Some(first) => {
                let program = if first == "CMD" { 1 } else { 0 };
                if words[program].trim().is_empty() {
                    let (pos, item_path) = at(program);
                    self.report(pos, &item_path, "empty program name");
                    return None;
                }
                if program == 0 {
                    Some(std::iter::once("CMD".to_owned()).chain(words).collect())
                } else {
                    Some(words)
                }
            }
        }
    }

    /// A healthcheck duration of `key`, in milliseconds: more than 0 (or 0 too with
    /// `zero_ok`) and at most an hour; `default` when absent.
    fn duration_field(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        default: u32,
        zero_ok: bool,
    ) -> Option<u32> {
        let Some((node, path)) = self.value(fields, key, false) else {
            return Some(default);
        };
        let Some((text, ns)) = node.scalar().and_then(|t| Some((t, duration_ns(t)?))) else {
            self.wrong_type(
                node,
                &path,
                "a duration (whole seconds, or like 500ms, 2s, 1m30s)",
            );
            return None;
        };
        let range = if zero_ok { "0..=1h" } else { "1ms..=1h" };
        let ms = u32::try_from(ns / 1_000_000)
            .ok()
            .filter(|ms| (zero_ok || *ms > 0) && *ms <= MAX_HEALTH_MS);
        let Some(ms) = ms else {
            let message = format!("{key} `{text}` is out of range {range}");
            self.report(node.pos, &path, message);
            return None;
        };
        if ns % 1_000_000 != 0 {
            let message = format!("{key} `{text}` is not a whole number of milliseconds");
            self.report(node.pos, &path, message);
            return None;
        }
        Some(ms)
    }

    fn unique_ips(&mut self) {
        let mut first: HashMap<Ipv4Addr, (String, Pos)> = HashMap::new();
        for (ip, pos, name) in std::mem::take(&mut self.ips) {
            match first.get(&ip) {
                Some((other, other_pos)) => {
                    let message = format!(
                        "ip {ip} is used by both `{other}` (line {}) and `{name}`",
                        other_pos.line
                    );
                    self.report(pos, &format!("containers.{name}.ip"), message);
                }
                None => {
                    first.insert(ip, (name, pos));
                }
            }
        }
    }

    fn unique_ips6(&mut self) {
        let mut first: HashMap<Ipv6Addr, (String, Pos)> = HashMap::new();
        for (ip, pos, name) in std::mem::take(&mut self.ips6) {
            match first.get(&ip) {
                Some((other, other_pos)) => {
                    let message = format!(
                        "ip6 {ip} is used by both `{other}` (line {}) and `{name}`",
                        other_pos.line
                    );
                    self.report(pos, &format!("containers.{name}.ip6"), message);
                }
                None => {
                    first.insert(ip, (name, pos));
                }
            }
        }
    }

    fn registration(&mut self, entry: &Entry) -> Registration {
        let mut registration = Registration::default();
        let Some(fields) = self.fields(
            &entry.value,
            entry.key.pos,
            "registration",
            REGISTRATION_KEYS,
            "a mapping with dns and puppet",
        ) else {
            return registration;
        };

        if let Some(dns) = fields.get("dns").filter(|e| !e.value.is_null()) {
            let path = fields.path("dns");
            if let Some(f) = self.fields(&dns.value, dns.key.pos, &path, DNS_KEYS, "a mapping") {
                let container = self.registered_container(&f, "container", "dns container");
                let hostsfile = self.absolute_path(&f, "hostsfile");
                let reload = self.command_field(&f, "reload", DEFAULT_RELOAD);
                if let (Some(container), Some(hostsfile), Some(reload)) =
                    (container, hostsfile, reload)
                {
                    registration.dns = Some(DnsRegistration {
                        container,
                        hostsfile,
                        reload,
                    });
                }
            }
        }

        if let Some(puppet) = fields.get("puppet").filter(|e| !e.value.is_null()) {
            let path = fields.path("puppet");
            if let Some(f) = self.fields(
                &puppet.value,
                puppet.key.pos,
                &path,
                PUPPET_KEYS,
                "a mapping",
            ) {
                let master = self.registered_container(&f, "master", "puppet master");
                let hieradata = self.absolute_path(&f, "hieradata");
                let sitepp = self.absolute_path(&f, "sitepp");
                let certclean = self.command_field(&f, "certclean", DEFAULT_CERTCLEAN);
                let agent = self.command_field(&f, "agent", DEFAULT_AGENT);
                if let (Some(master), Some(hieradata), Some(sitepp), Some(certclean), Some(agent)) =
                    (master, hieradata, sitepp, certclean, agent)
                {
                    registration.puppet = Some(PuppetRegistration {
                        master,
                        hieradata,
                        sitepp,
                        certclean,
                        agent,
                    });
                }
            }
        }
        registration
    }

    fn registered_container(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        what: &'static str,
    ) -> Option<String> {
        let (node, path) = self.value(fields, key, true)?;
        let name = self.string(node, &path, "a container name")?;
        self.references.push(Reference {
            name: name.clone(),
            pos: node.pos,
            path,
            what,
            from: None,
        });
        Some(name)
    }

    fn absolute_path(&mut self, fields: &Fields<'_>, key: &str) -> Option<PathBuf> {
        let (node, path) = self.value(fields, key, true)?;
        let text = self.string(node, &path, "an absolute path")?;
        if let Some(problem) = path_problem(&text) {
            self.report(node.pos, &path, format!("path `{text}` {problem}"));
            return None;
        }
        Some(PathBuf::from(text))
    }

    fn command_field(&mut self, fields: &Fields<'_>, key: &str, default: &str) -> Option<String> {
        let Some((node, path)) = self.value(fields, key, false) else {
            return Some(default.to_owned());
        };
        let line = self.string(node, &path, "a command line")?;
        self.command_line(&line, node.pos, &path).then_some(line)
    }

    fn references(&mut self, containers: &[Container]) {
        for reference in std::mem::take(&mut self.references) {
            if reference.from.as_deref() == Some(reference.name.as_str()) {
                let message = format!("{} `{}`, which is itself", reference.what, reference.name);
                self.report(reference.pos, &reference.path, message);
                continue;
            }
            if containers.iter().any(|c| c.name == reference.name) {
                continue;
            }
            let hint = match closest(&reference.name, containers.iter().map(|c| c.name.as_str())) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            let message = format!(
                "{} `{}`, which is not in containers{hint}",
                reference.what, reference.name
            );
            self.report(reference.pos, &reference.path, message);
        }
    }

    /// Reports each cycle of `after` once, on the first container of the cycle in file
    /// order.
    fn after_cycles(&mut self, containers: &[Container], placed: &[Placed]) {
        let index: HashMap<&str, usize> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        for (start, container) in containers.iter().enumerate() {
            let Some(cycle) = cycle_from(start, containers, &index) else {
                continue;
            };
            if cycle.iter().any(|&i| i < start) || cycle.len() < 2 {
                continue;
            }
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&start))
                .map(|&i| containers[i].name.as_str())
                .collect();
            let message = format!("`after` forms a cycle: {}", names.join(" → "));
            let path = format!("containers.{}.after", container.name);
            self.report(placed[start].after, &path, message);
        }
    }
}

/// A path of `after` edges from `start` back to it, as container indices.
fn cycle_from(
    start: usize,
    containers: &[Container],
    index: &HashMap<&str, usize>,
) -> Option<Vec<usize>> {
    fn walk(
        at: usize,
        start: usize,
        containers: &[Container],
        index: &HashMap<&str, usize>,
        seen: &mut Vec<bool>,
        path: &mut Vec<usize>,
    ) -> bool {
        path.push(at);
        for next in &containers[at].after {
            let Some(&next) = index.get(next.as_str()) else {
                continue;
            };
            if next == start {
                return true;
            }
            if !seen[next] {
                seen[next] = true;
                if walk(next, start, containers, index, seen, path) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
    let mut seen = vec![false; containers.len()];
    let mut path = Vec::new();
    walk(start, start, containers, index, &mut seen, &mut path).then_some(path)
}

/// The nanoseconds of a duration written as Docker and compose take it: an integer of
/// seconds, or Go's form (`500ms`, `1.5s`, `1m30s`; units ns, us, ms, s, m, h).
fn duration_ns(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number = |digits: &str| -> Option<u128> {
        if digits.is_empty() {
            Some(0)
        } else if digits.len() <= 18 {
            digits.parse().ok()
        } else {
            None
        }
    };
    let total = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        number(digits)? * 1_000_000_000
    } else {
        let mut total: u128 = 0;
        let mut rest = digits;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (whole, after) = rest.split_at(whole_len);
            let (fraction, after) = match after.strip_prefix('.') {
                Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
                None => ("", after),
            };
            if whole.is_empty() && fraction.is_empty() {
                return None;
            }
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return None,
            };
            let places = u32::try_from(fraction.len()).ok()?;
            let part = number(whole)? * scale + number(fraction)? * scale / 10u128.pow(places);
            total = total.checked_add(part)?;
            rest = next;
        }
        total
    };
    let total = i128::try_from(total).ok()?;
    Some(if negative { -total } else { total })
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// What is wrong with a `HOST:CONTAINER[:ro|:rw]` bind, if anything.
fn volume_problem(volume: &str) -> Option<String> {
    let parts: Vec<&str> = volume.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [host, container] | [host, container, "ro" | "rw"] => (*host, *container),
        _ => return Some(format!("volume `{volume}` is not HOST:CONTAINER[:ro|:rw]")),
    };
    if let Some(problem) = path_problem(host) {
        return Some(format!("volume `{volume}`: host path `{host}` {problem}"));
    }
    if let Some(problem) = path_problem(container) {
        return Some(format!(
            "volume `{volume}`: container path `{container}` {problem}"
        ));
    }
    None
}

fn path_problem(path: &str) -> Option<&'static str> {
    let path = Path::new(path);
    if !path.is_absolute() {
        Some("is not absolute")
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("has a `..` component")
    } else {
        None
    }
}

/// The candidate nearest to a misspelt `word`, when it is near enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| {
            (
                strsim::levenshtein(&word.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= 2 && *d < word.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
