//! A container's stop settings and the limits Docker applies to its
//! process, as client and server both hold them once checked, and the
//! fields of them the spec hash and the plan's differences name.

use std::collections::BTreeMap;

/// How a container is stopped and what its process may use; each `None`
/// or empty is Docker's (or the image's) default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runtime {
    pub stop_signal: Option<String>,
    pub stop_grace_secs: Option<u32>,
    /// Command lines run inside the container before it is stopped.
    pub prestop: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    /// Name -> (soft, hard); -1 is unlimited.
    pub ulimits: BTreeMap<String, (i64, i64)>,
    /// Container path -> mount options.
    pub tmpfs: BTreeMap<String, String>,
    pub user: Option<String>,
    pub memory_bytes: Option<u64>,
    pub nano_cpus: Option<u64>,
    pub pids_limit: Option<i64>,
    pub init: bool,
}

impl Runtime {
    /// The file's keys these settings come from, as [`describe`](Self::describe) names them.
    pub const KEYS: [&'static str; 11] = [
        "stop_signal",
        "stop_grace_period",
        "prestop",
        "sysctls",
        "ulimits",
        "tmpfs",
        "user",
        "memory",
        "cpus",
        "pids_limit",
        "init",
    ];

    /// The value of one of [`KEYS`](Self::KEYS) as the hash covers it; empty
    /// when not given.
    pub fn value(&self, key: &str) -> String {
        let mut fields = Vec::new();
        self.describe(&mut fields);
        fields
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    /// The fields the hash covers, each only when given.
    pub fn describe(&self, fields: &mut Vec<(&'static str, String)>) {
        let joined = |m: &BTreeMap<String, String>, sep: &str| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(sep)
        };
        if let Some(s) = &self.stop_signal {
            fields.push(("stop_signal", s.clone()));
        }
        if let Some(g) = self.stop_grace_secs {
            fields.push(("stop_grace_period", format!("{g}s")));
        }
        if !self.prestop.is_empty() {
            fields.push(("prestop", self.prestop.join("\n")));
        }
        if !self.sysctls.is_empty() {
            fields.push(("sysctls", joined(&self.sysctls, ",")));
        }
        if !self.ulimits.is_empty() {
            fields.push(("ulimits", joined(&self.ulimits_text(), ",")));
        }
        if !self.tmpfs.is_empty() {
            // Options hold commas: one mount a line.
            fields.push(("tmpfs", joined(&self.tmpfs, "\n")));
        }
        if let Some(u) = &self.user {
            fields.push(("user", u.clone()));
        }
        if let Some(m) = self.memory_bytes {
            fields.push(("memory", m.to_string()));
        }
        if let Some(n) = self.nano_cpus {
            fields.push(("cpus", cpus_text(n)));
        }
        if let Some(p) = self.pids_limit {
            fields.push(("pids_limit", p.to_string()));
        }
        if self.init {
            fields.push(("init", "true".into()));
        }
    }

    /// The entries of a map or list field for the flattened record
    /// (`sysctls.net.ipv4.ip_forward`, `prestop[0]`); `false` for a field
    /// that is not one of these.
    pub fn flatten(&self, key: &str, out: &mut BTreeMap<String, String>) -> bool {
        let map = |m: &BTreeMap<String, String>, out: &mut BTreeMap<String, String>| {
            for (k, v) in m {
                out.insert(format!("{key}.{k}"), v.clone());
            }
        };
        match key {
            "prestop" => {
                for (i, l) in self.prestop.iter().enumerate() {
                    out.insert(format!("prestop[{i}]"), l.clone());
                }
            }
            "sysctls" => map(&self.sysctls, out),
            "ulimits" => map(&self.ulimits_text(), out),
            "tmpfs" => map(&self.tmpfs, out),
            _ => return false,
        }
        true
    }

    fn ulimits_text(&self) -> BTreeMap<String, String> {
        self.ulimits
            .iter()
            .map(|(k, (soft, hard))| (k.clone(), format!("{soft}:{hard}")))
            .collect()
    }
}

/// Billionths of a CPU as the decimal a file writes (`1.5`).
fn cpus_text(nano: u64) -> String {
    let whole = nano / 1_000_000_000;
    let fraction = nano % 1_000_000_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction:09}")
            .trim_end_matches('0')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_as_a_decimal() {
        assert_eq!(cpus_text(1_500_000_000), "1.5");
        assert_eq!(cpus_text(2_000_000_000), "2");
        assert_eq!(cpus_text(10_000_000), "0.01");
    }
}
