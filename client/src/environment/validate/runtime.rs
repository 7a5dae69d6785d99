//! How a container is stopped (`stop_signal`, `stop_grace_period`,
//! `prestop`) and what its process may use (`sysctls`, `ulimits`, `tmpfs`,
//! `user`, `memory`, `cpus`, `pids_limit`, `init`): each rule is
//! `dockstack_types`', the server's own.

use std::collections::BTreeMap;

use dockstack_types::resources::{self, MAX_ENTRIES, MAX_PIDS};
use dockstack_types::stop;

use super::Checker;
use super::accessors::Fields;
use super::keys::ULIMIT_KEYS;
use crate::environment::model::Runtime;
use crate::environment::yaml::{Node, join};

impl Checker {
    pub(super) fn runtime(&mut self, fields: &Fields<'_>) -> Runtime {
        let stop_signal = self.checked_text(fields, "stop_signal", stop::check_signal);
        let stop_grace_secs = self
            .checked_text(fields, "stop_grace_period", stop::grace_secs)
            .map(|(_, secs)| secs);
        let prestop = self.commands(fields, "prestop");
        if let Some((node, path)) = self.value(fields, "prestop", false)
            && let Err(e) = stop::check_prestop(&prestop)
        {
            self.report(node.pos, &path, e.to_string());
        }
        let user = self.checked_text(fields, "user", resources::check_user);
        let memory_bytes = self
            .checked_text(fields, "memory", resources::memory_bytes)
            .map(|(_, b)| b);
        let nano_cpus = self
            .checked_text(fields, "cpus", resources::nano_cpus)
            .map(|(_, n)| n);
        let pids_limit = self.value(fields, "pids_limit", false).and_then(|(n, p)| {
            let v = self.integer(n, &p, "pids_limit", -1, MAX_PIDS)?;
            self.checked(n, &p, resources::check_pids_limit(v))
                .map(|()| v)
        });
        Runtime {
            stop_signal: stop_signal.map(|(s, ())| s),
            stop_grace_secs,
            prestop,
            sysctls: self.sysctls(fields),
            ulimits: self.ulimits(fields),
            tmpfs: self.tmpfs(fields),
            user: user.map(|(u, ())| u),
            memory_bytes,
            nano_cpus,
            pids_limit,
            init: self.boolean(fields, "init", false),
        }
    }

    /// A scalar key checked by `rule`; the text and what the rule made of it.
    fn checked_text<T, E: std::fmt::Display>(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        rule: impl Fn(&str) -> Result<T, E>,
    ) -> Option<(String, T)> {
        let (node, path) = self.value(fields, key, false)?;
        let text = self.string(node, &path, "a string")?;
        let made = self.checked(node, &path, rule(&text))?;
        Some((text, made))
    }

    fn checked<T, E: std::fmt::Display>(
        &mut self,
        node: &Node,
        path: &str,
        verdict: Result<T, E>,
    ) -> Option<T> {
        verdict
            .map_err(|e| self.report(node.pos, path, e.to_string()))
            .ok()
    }

    /// `sysctls`: a mapping, or a list of `KEY=VALUE`, as compose takes them.
    fn sysctls(&mut self, fields: &Fields<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some((node, path)) = self.value(fields, "sysctls", false) else {
            return out;
        };
        let mut pairs = Vec::new();
        if let Some(entries) = node.entries() {
            for e in entries {
                let Some(key) = self.string(&e.key, &path, "a sysctl name") else {
                    continue;
                };
                let at = join(&path, &key);
                if let Some(value) = self.string(&e.value, &at, "a value") {
                    pairs.push((key, value, e.value.pos, at));
                }
            }
        } else if node.items().is_some() {
            for (i, (text, pos)) in self
                .strings(node, &path, "KEY=VALUE")
                .into_iter()
                .enumerate()
            {
                let at = format!("{path}[{i}]");
                match text.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_owned(), v.to_owned(), pos, at)),
                    None => self.report(pos, &at, format!("expected KEY=VALUE, found `{text}`")),
                }
            }
        } else {
            self.wrong_type(node, &path, "a mapping of sysctls");
        }
        if pairs.len() > MAX_ENTRIES {
            self.report(node.pos, &path, format!("at most {MAX_ENTRIES} sysctls"));
        }
        for (key, value, pos, at) in pairs {
            match resources::check_sysctl(&key, &value) {
                Ok(()) => {
                    out.insert(key, value);
                }
                Err(e) => self.report(pos, &at, e.to_string()),
            }
        }
        out
    }

    /// `ulimits`: name -> a number (soft and hard alike) or `{soft, hard}`.
    fn ulimits(&mut self, fields: &Fields<'_>) -> BTreeMap<String, (i64, i64)> {
        let mut out = BTreeMap::new();
        let Some((node, path)) = self.value(fields, "ulimits", false) else {
            return out;
        };
        let Some(entries) = node.entries() else {
            self.wrong_type(node, &path, "a mapping of ulimits");
            return out;
        };
        if entries.len() > MAX_ENTRIES {
            self.report(node.pos, &path, format!("at most {MAX_ENTRIES} ulimits"));
        }
        for e in entries {
            let Some(name) = self.string(&e.key, &path, "a ulimit name") else {
                continue;
            };
            let at = join(&path, &name);
            let limits = if e.value.scalar().is_some() {
                self.integer(&e.value, &at, "ulimit", -1, i64::MAX)
                    .map(|n| (n, n))
            } else {
                self.soft_hard(&e.value, &at)
            };
            let Some((soft, hard)) = limits else { continue };
            if self
                .checked(&e.value, &at, resources::check_ulimit(&name, soft, hard))
                .is_some()
            {
                out.insert(name, (soft, hard));
            }
        }
        out
    }

    fn soft_hard(&mut self, node: &Node, path: &str) -> Option<(i64, i64)> {
        let f = self.fields(
            node,
            node.pos,
            path,
            ULIMIT_KEYS,
            "a number or {soft, hard}",
        )?;
        let mut limit = |key| {
            self.value(&f, key, true)
                .and_then(|(n, p)| self.integer(n, &p, key, -1, i64::MAX))
        };
        let soft = limit("soft");
        let hard = limit("hard");
        Some((soft?, hard?))
    }

    /// `tmpfs`: `PATH[:OPTIONS]` (one, or a list), or a mapping of paths to
    /// options.
    fn tmpfs(&mut self, fields: &Fields<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some((node, path)) = self.value(fields, "tmpfs", false) else {
            return out;
        };
        let mut mounts = Vec::new();
        if let Some(entries) = node.entries() {
            for e in entries {
                let Some(target) = self.string(&e.key, &path, "a container path") else {
                    continue;
                };
                let at = join(&path, &target);
                let options = if e.value.is_null() {
                    Some(String::new())
                } else {
                    self.string(&e.value, &at, "mount options")
                };
                if let Some(options) = options {
                    mounts.push((target, options, e.key.pos, at));
                }
            }
        } else {
            let list = node.items().is_some();
            for (i, (text, pos)) in self
                .strings(node, &path, "container path")
                .into_iter()
                .enumerate()
            {
                let at = if list {
                    format!("{path}[{i}]")
                } else {
                    path.clone()
                };
                let (target, options) = text.split_once(':').unwrap_or((&text, ""));
                mounts.push((target.to_owned(), options.to_owned(), pos, at));
            }
        }
        if mounts.len() > MAX_ENTRIES {
            self.report(
                node.pos,
                &path,
                format!("at most {MAX_ENTRIES} tmpfs mounts"),
            );
        }
        for (target, options, pos, at) in mounts {
            match resources::check_tmpfs(&target, &options) {
                Ok(()) => {
                    out.insert(target, options);
                }
                Err(e) => self.report(pos, &at, e.to_string()),
            }
        }
        out
    }
}
