//! Owns who may do what on this host: the role a client certificate
//! carries, and the per-role policy (built in, or read from a YAML file)
//! that every request is checked against before anything is done.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::host::Registration;
use crate::spec::ContainerSpec;

/// The policy in force; SIGHUP swaps it for one read anew.
pub type SharedPolicy = std::sync::Arc<std::sync::RwLock<std::sync::Arc<Policy>>>;

/// Where the server reads its policy when no `--policy` is given.
pub const DEFAULT_POLICY: &str = "/etc/dockstack/policy.yaml";

pub use dockstack_types::Role;
pub use dockstack_types::role::ROLE_URI_PREFIX;

/// A request, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Show,
    List,
    Run,
    Start,
    /// A graceful restart in place: an operator's, like start and stop.
    Restart,
    Stop,
    Destroy,
    Register,
    Deregister,
    Exec,
    /// Breaking another's change lock (`unlock --force`): admins only.
    Unlock,
    /// Reading what containers printed (`logs`): a viewer's, like `show`.
    Logs,
    /// Reading what happened to containers (`events`): a viewer's too.
    Events,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Show => "show",
            Action::List => "list",
            Action::Run => "run",
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Destroy => "destroy",
            Action::Register => "register",
            Action::Deregister => "deregister",
            Action::Exec => "exec",
            Action::Unlock => "unlock",
            Action::Logs => "logs",
            Action::Events => "events",
        }
    }
}

/// Why a request was refused: the rule, and what of the request broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The part of the request (`volumes[2]`, `privileged`, `postcreation[0]`),
    /// empty when the action itself is refused.
    pub key: String,
    /// The rule of the policy, in words.
    pub rule: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.rule)
        } else {
            write!(f, "{}: {}", self.key, self.rule)
        }
    }
}

fn refuse(key: impl Into<String>, rule: impl Into<String>) -> Refusal {
    Refusal {
        key: key.into(),
        rule: rule.into(),
    }
}

/// What one role may do, beyond which actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    /// Directories hook programs must be in; `None`: anywhere.
    pub hook_dirs: Option<Vec<PathBuf>>,
    /// Prefixes volume sources must be under; `None`: anywhere.
    pub volume_allow: Option<Vec<PathBuf>>,
    /// Prefixes volume sources may never be under (or be).
    pub volume_deny: Vec<PathBuf>,
    /// Whether `/` itself may be a volume source.
    pub volume_root: bool,
    pub privileged: bool,
    /// Capabilities `cap_add` may name; `None`: any.
    pub cap_add: Option<Vec<String>>,
    /// Sysctls a container may set, by name or by a prefix ending in `*`
    /// (`net.ipv4.*`); `None`: any namespaced one.
    pub sysctls: Option<Vec<String>>,
    /// Ulimits a container may set, each with the highest soft and hard
    /// value (-1: unlimited); `None`: any.
    pub ulimits: Option<BTreeMap<String, i64>>,
    /// Bridges that may be used; `None`: any.
    pub bridges: Option<Vec<String>>,
    /// The registry containers, files and domains of its registrations.
    pub registration: registration::RegistrationRules,
    /// `Exec` of any command.
    pub exec: bool,
    /// The commands of registration (the DNS reload, Puppet's cert clean
    /// and agent) a role without `exec` may still have run, as templates
    /// whose `{name}` and `{fqdn}` stand for one name; `None`: any.
    pub registration_commands: Option<Vec<String>>,
    /// Which `allowed_addresses`, `vlan` and `mac` a container may have.
    pub network: network::NetworkRules,
}

impl RolePolicy {
    fn unrestricted() -> Self {
        RolePolicy {
            hook_dirs: None,
            volume_allow: None,
            volume_deny: Vec::new(),
            volume_root: true,
            privileged: true,
            cap_add: None,
            sysctls: None,
            ulimits: None,
            bridges: None,
            registration: registration::RegistrationRules::unrestricted(),
            exec: true,
            registration_commands: None,
            network: network::NetworkRules::unrestricted(),
        }
    }

    fn operator() -> Self {
        RolePolicy {
            hook_dirs: Some(paths(&["/etc/dockstack/hooks", "/usr/local/lib/dockstack"])),
            volume_allow: Some(paths(&[volumes::DEFAULT_VOLUME_ROOT])),
            volume_deny: paths(&[
                "/etc",
                "/proc",
                "/sys",
                "/dev",
                "/boot",
                "/root",
                "/var/run/docker.sock",
                "/run/docker.sock",
                "/var/run/docker",
                "/run/docker",
                "/var/lib/docker",
                "/run/containerd",
                "/var/lib/containerd",
            ]),
            volume_root: false,
            privileged: false,
            cap_add: Some(
                // Not SYS_NICE: real-time priorities let one container
                // starve the host's other processes, the server among them.
                ["NET_ADMIN", "NET_RAW", "IPC_LOCK"]
                    .map(String::from)
                    .to_vec(),
            ),
            // What haproxy, keepalived and databases ask for; each is the
            // container's own network namespace's.
            sysctls: Some(
                [
                    "net.ipv4.ip_nonlocal_bind",
                    "net.ipv6.ip_nonlocal_bind",
                    "net.core.somaxconn",
                    "net.ipv4.ip_local_port_range",
                    "net.ipv4.tcp_keepalive_time",
                    "net.ipv4.tcp_keepalive_intvl",
                    "net.ipv4.tcp_keepalive_probes",
                ]
                .map(String::from)
                .to_vec(),
            ),
            // kolla gives every service nofile 1048576 (the kernel's
            // default fs.nr_open).
            ulimits: Some(BTreeMap::from([
                ("nofile".to_string(), 1_048_576),
                ("nproc".to_string(), 65_536),
            ])),
            bridges: None,
            // No registry container until the site's policy names its own:
            // the admin's DNS container and Puppet master are not the
            // operator's to edit.
            registration: registration::RegistrationRules::none(),
            exec: false,
            registration_commands: Some(
                [
                    "pkill -HUP -x dnsmasq",
                    "puppet cert clean {fqdn}",
                    "puppet agent -t",
                ]
                .map(String::from)
                .to_vec(),
            ),
            network: network::NetworkRules::operator(),
        }
    }

    fn viewer() -> Self {
        RolePolicy {
            hook_dirs: Some(Vec::new()),
            volume_allow: Some(Vec::new()),
            volume_root: false,
            privileged: false,
            cap_add: Some(Vec::new()),
            sysctls: Some(Vec::new()),
            ulimits: Some(BTreeMap::new()),
            bridges: Some(Vec::new()),
            registration: registration::RegistrationRules::none(),
            exec: false,
            volume_deny: Vec::new(),
            registration_commands: Some(Vec::new()),
            network: network::NetworkRules::none(),
        }
    }
}

fn paths(p: &[&str]) -> Vec<PathBuf> {
    p.iter().map(PathBuf::from).collect()
}

/// The policy of every role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub admin: RolePolicy,
    pub operator: RolePolicy,
    pub viewer: RolePolicy,
    /// Where it came from: a file, or `built-in`.
    pub source: String,
    /// What no role held to a volume allowlist may mount, be under or hold,
    /// whatever the file says: Docker's, containerd's and OVS's state and
    /// sockets, and the server's own directories. Every role's hook
    /// directories are added when checked.
    pub protected: Vec<PathBuf>,
}

impl Policy {
    /// The defaults: admin unrestricted (the 2015 environment file keeps
    /// working), operator as the README says, viewer read-only. `tls_dir`
    /// is protected too (see [`Policy::protect`]).
    pub fn builtin(tls_dir: Option<&Path>) -> Self {
        let mut policy = Policy {
            admin: RolePolicy::unrestricted(),
            operator: RolePolicy::operator(),
            viewer: RolePolicy::viewer(),
            source: "built-in".into(),
            protected: paths(volumes::PROTECTED),
        };
        policy.protect(tls_dir);
        policy
    }

    /// Adds the server's own directories (its TLS and state directories,
    /// `--allow-hooks`, the policy file's) to what a role held to an
    /// allowlist may never mount, be under or hold.
    pub fn protect<'a>(&mut self, dirs: impl IntoIterator<Item = &'a Path>) {
        for d in dirs {
            if !self.protected.iter().any(|p| p == d) {
                self.protected.push(d.to_path_buf());
            }
        }
    }

    /// The protected paths, with every role's hook directories: a
    /// container that could write a program there would have it run as
    /// root by the next `run` that names it.
    fn protected_now(&self) -> Vec<PathBuf> {
        let hooks = [&self.admin, &self.operator]
            .into_iter()
            .filter_map(|r| r.hook_dirs.as_deref())
            .flatten();
        self.protected.iter().chain(hooks).cloned().collect()
    }

    /// The binds of `spec` pinned for Docker, for a role held to a volume
    /// allowlist: each source canonical, checked as by
    /// [`Policy::check_spec`]. `None` for a role that may mount from
    /// anywhere (an admin by default): its binds go to Docker as written.
    pub fn pin_volumes(
        &self,
        role: Role,
        spec: &ContainerSpec,
    ) -> Result<Option<Vec<volumes::PinnedBind>>, Refusal> {
        let p = self.of(role);
        if p.volume_allow.is_none() {
            return Ok(None);
        }
        volumes::pin(role, p, &self.protected_now(), &spec.volumes).map(Some)
    }

    fn of(&self, role: Role) -> &RolePolicy {
        match role {
            Role::Admin => &self.admin,
            Role::Operator => &self.operator,
            Role::Viewer => &self.viewer,
        }
    }

    /// Whether `role` may ask for `action` at all. An operator's `Exec` is
    /// then held to the registration commands by [`Policy::check_exec`].
    pub fn check_action(&self, role: Role, action: Action) -> Result<(), Refusal> {
        let least = match action {
            Action::Show | Action::List | Action::Logs | Action::Events => Role::Viewer,
            Action::Unlock => Role::Admin,
            _ => Role::Operator,
        };
        if role >= least {
            return Ok(());
        }
        let why = if least == Role::Admin {
            "only the admin role may"
        } else {
            "viewers are read-only"
        };
        Err(refuse(
            "",
            format!("the {role} role may not {} ({why})", action.name()),
        ))
    }

    /// Whether `role` may have `command` run in `container`: any command
    /// with `exec`, else only a registration command of the policy; one
    /// that names a container (a certificate clean) only in a Puppet master
    /// the role may use, and only of a name in its domains.
    pub fn check_exec(&self, role: Role, container: &str, command: &str) -> Result<(), Refusal> {
        let p = self.of(role);
        if p.exec {
            return Ok(());
        }
        if let Some(named) = self.registration_words(role, command) {
            let rules = &p.registration;
            if !named.is_empty() && !rules.may_clean_in(container) {
                return Err(refuse(
                    "container",
                    format!(
                        "the {role} policy runs a command naming a container only in the \
                         puppet masters {}",
                        names(rules.puppet_masters.as_deref().unwrap_or_default())
                    ),
                ));
            }
            if let Some(word) = named.iter().find(|w| !rules.fqdn_allowed(w)) {
                return Err(refuse(
                    "command",
                    format!(
                        "the {role} policy names in commands only NAME.DOMAIN of the domains \
                         {}, not {word}",
                        names(rules.domains.as_deref().unwrap_or_default())
                    ),
                ));
            }
            return Ok(());
        }
        Err(refuse(
            "command",
            format!(
                "the {role} policy allows no exec but of the registration commands ({})",
                p.registration_commands
                    .as_deref()
                    .unwrap_or_default()
                    .join("; ")
            ),
        ))
    }

    /// Whether `role` may run a command of its own choosing, attached
    /// (`dockstack exec`): only with `exec`; no registration command makes
    /// up for it, as a session can run anything.
    pub fn check_exec_session(&self, role: Role) -> Result<(), Refusal> {
        if self.of(role).exec {
            Ok(())
        } else {
            Err(refuse(
                "exec",
                format!("the {role} policy allows no exec (`exec: true` in its policy allows it)"),
            ))
        }
    }

    /// Whether `command` is one of `role`'s registration commands.
    pub fn is_registration_command(&self, role: Role, command: &str) -> bool {
        self.registration_words(role, command).is_some()
    }

    /// The words that stand for a container's `{name}` or `{fqdn}` in the
    /// first of `role`'s registration commands `command` is, if any.
    fn registration_words<'c>(&self, role: Role, command: &'c str) -> Option<Vec<&'c str>> {
        match &self.of(role).registration_commands {
            None => Some(Vec::new()),
            Some(templates) => templates.iter().find_map(|t| template_words(t, command)),
        }
    }

    /// Checks every field of a spec that the policy restricts.
    pub fn check_spec(&self, role: Role, spec: &ContainerSpec) -> Result<(), Refusal> {
        let p = self.of(role);
        // A config volume is read by the server (hashed on every plan): the
        // same rules as a volume's source.
        let sources = spec
            .volumes
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    format!("volumes[{i}]"),
                    Path::new(v.split(':').next().unwrap_or_default()),
                )
            })
            .chain(
                spec.config_volumes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("config_volumes[{i}]"), c.as_path())),
            );
        let protected = self.protected_now();
        for (key, given) in sources {
            volumes::check_source(role, p, &protected, &key, given)?;
        }
        self.pin_volumes(role, spec)?;
        if spec.privileged && !p.privileged {
            return Err(refuse(
                "privileged",
                format!("the {role} policy refuses privileged containers"),
            ));
        }
        if let Some(caps) = &p.cap_add {
            for (i, c) in spec.cap_add.iter().enumerate() {
                let bare = c.trim_start_matches("CAP_");
                if !caps.iter().any(|a| a.trim_start_matches("CAP_") == bare) {
                    return Err(refuse(
                        format!("cap_add[{i}]"),
                        format!(
                            "the {role} policy allows only cap_add {}",
                            if caps.is_empty() {
                                "none".to_string()
                            } else {
                                caps.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        check_sysctls(role, p, spec)?;
        check_ulimits(role, p, spec)?;
        p.network.check(role, spec)?;
        if let Some(bridges) = &p.bridges
            && !bridges.contains(&spec.bridge)
        {
            return Err(refuse(
                "bridge",
                format!(
                    "the {role} policy allows only bridges {}",
                    bridges.join(", ")
                ),
            ));
        }
        for (phase, hooks) in [
            ("precreation", &spec.precreation),
            ("postcreation", &spec.postcreation),
            ("postdestroy", &spec.postdestroy),
        ] {
            self.check_hooks(role, phase, hooks)?;
        }
        Ok(())
    }

    /// Checks the programs of hooks of one phase.
    pub fn check_hooks(&self, role: Role, phase: &str, hooks: &[String]) -> Result<(), Refusal> {
        let Some(dirs) = &self.of(role).hook_dirs else {
            return Ok(());
        };
        // The program's directory as the runner will find it: the line split
        // as the runner splits it, and both sides canonical, so that neither
        // an escape nor a symlink nor `..` leads from an allowed directory
        // into another. A directory that does not exist (yet) is compared as
        // written: `..` in it still differs, and nothing runs from it.
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let allowed: Vec<PathBuf> = dirs.iter().map(|d| canonical(d)).collect();
        for (i, hook) in hooks.iter().enumerate() {
            let words = crate::hooks::words(hook).map_err(|e| {
                refuse(
                    format!("{phase}[{i}]"),
                    format!("the line cannot be split into words: {e}"),
                )
            })?;
            let inside = words
                .first()
                .and_then(|program| Path::new(program).parent())
                .is_some_and(|parent| allowed.contains(&canonical(parent)));
            if !inside {
                return Err(refuse(
                    format!("{phase}[{i}]"),
                    format!(
                        "the {role} policy allows hook programs only from {}",
                        list(dirs)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the files a registration would edit, and the reload it
    /// would run.
    pub fn check_registration(&self, role: Role, r: &Registration) -> Result<(), Refusal> {
        if let Some(d) = &r.dns
            && !d.reload.is_empty()
            && !self.is_registration_command(role, &d.reload)
        {
            return Err(refuse(
                "dns.reload",
                format!(
                    "the {role} policy allows only the registration commands ({})",
                    self.of(role)
                        .registration_commands
                        .as_deref()
                        .unwrap_or_default()
                        .join("; ")
                ),
            ));
        }
        self.of(role).registration.check(role, r)
    }

    /// Whether `role`'s registrations are held to the record of the
    /// container they name, where the registry's host has it.
    pub fn registration_held_to_record(&self, role: Role) -> bool {
        self.of(role).registration.held_to_record()
    }

    /// Reads a policy file; every error names the file, line and key.
    /// Roles or keys the file leaves out keep their built-in defaults.
    pub fn load(path: &Path, tls_dir: Option<&Path>) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, tls_dir)
    }

    pub fn parse(text: &str, path: &Path, tls_dir: Option<&Path>) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_saphyr::from_str(text).map_err(|e| PolicyError::Syntax {
            path: path.to_path_buf(),
            line: e.location().map_or(1, |l| l.line()),
            message: e.without_snippet().to_string(),
        })?;
        let mut policy = Policy::builtin(tls_dir);
        policy.source = path.display().to_string();
        let bad = |line: u64, key: String, message: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        };
        file.apply_to(&mut policy, &bad)?;
        Ok(policy)
    }
}

/// Sysctls widen what a container may do to its kernel's namespaces: only
/// those the role's allowlist names.
fn check_sysctls(role: Role, p: &RolePolicy, spec: &ContainerSpec) -> Result<(), Refusal> {
    let Some(allow) = &p.sysctls else {
        return Ok(());
    };
    match limits::first_sysctl_refused(allow, spec.runtime.sysctls.keys()) {
        None => Ok(()),
        Some(k) => Err(refuse(
            format!("sysctls.{k}"),
            format!("the {role} policy allows only sysctls {}", names(allow)),
        )),
    }
}

/// Ulimits raise what a container may take of the host: only those the
/// role's allowlist names, up to its value.
fn check_ulimits(role: Role, p: &RolePolicy, spec: &ContainerSpec) -> Result<(), Refusal> {
    let Some(allow) = &p.ulimits else {
        return Ok(());
    };
    match limits::first_ulimit_refused(allow, &spec.runtime.ulimits) {
        None => Ok(()),
        Some(name) => {
            let allowed: Vec<String> = allow.iter().map(|(k, v)| format!("{k} <= {v}")).collect();
            Err(refuse(
                format!("ulimits.{name}"),
                format!("the {role} policy allows only ulimits {}", names(&allowed)),
            ))
        }
    }
}

fn names(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// If `command` is `template` word for word, where `{name}` and `{fqdn}`
/// stand for one word of letters, digits, `.`, `_` and `-`: those words.
fn template_words<'c>(template: &str, command: &'c str) -> Option<Vec<&'c str>> {
    let (t, c): (Vec<&str>, Vec<&str>) = (
        template.split_whitespace().collect(),
        command.split_whitespace().collect(),
    );
    if t.len() != c.len() {
        return None;
    }
    let mut named = Vec::new();
    for (t, c) in t.iter().zip(&c) {
        match *t {
            "{name}" | "{fqdn}" => {
                let word = !c.is_empty()
                    && !c.starts_with('-')
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
                if !word {
                    return None;
                }
                named.push(*c);
            }
            t if t == *c => {}
            _ => return None,
        }
    }
    Some(named)
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(nowhere)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}:{line}: {key}: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        key: String,
        message: String,
    },
}

mod file;
use file::{Bad, PolicyFile};
mod limits;
pub mod network;
pub mod registration;
pub mod volumes;

#[cfg(test)]
mod tests;
