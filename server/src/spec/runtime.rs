//! The spec's stop settings and process limits, checked again on the
//! server (each rule is `dockstack_types`', the client's own).

use std::collections::BTreeMap;

use dockstack_proto as pb;
use dockstack_types::runtime::Runtime;
use dockstack_types::{resources, stop};

/// The runtime half of a request, checked.
pub(super) fn check(s: &pb::ContainerSpec) -> Result<Runtime, String> {
    let text = |t: &str| (!t.is_empty()).then(|| t.to_string());
    if !s.stop_signal.is_empty() {
        stop::check_signal(&s.stop_signal).map_err(|e| e.to_string())?;
    }
    if let Some(g) = s.stop_grace_secs {
        stop::check_grace_secs(g).map_err(|e| e.to_string())?;
    }
    stop::check_prestop(&s.prestop).map_err(|e| e.to_string())?;
    for line in &s.prestop {
        shell_words::split(line).map_err(|e| format!("prestop command {line:?}: {e}"))?;
    }
    if s.sysctls.len() > resources::MAX_ENTRIES {
        return Err(format!("at most {} sysctls", resources::MAX_ENTRIES));
    }
    for (k, v) in &s.sysctls {
        resources::check_sysctl(k, v).map_err(|e| e.to_string())?;
    }
    let mut ulimits = BTreeMap::new();
    if s.ulimits.len() > resources::MAX_ENTRIES {
        return Err(format!("at most {} ulimits", resources::MAX_ENTRIES));
    }
    for u in &s.ulimits {
        resources::check_ulimit(&u.name, u.soft, u.hard).map_err(|e| e.to_string())?;
        if ulimits.insert(u.name.clone(), (u.soft, u.hard)).is_some() {
            return Err(format!("ulimit {} given twice", u.name));
        }
    }
    if s.tmpfs.len() > resources::MAX_ENTRIES {
        return Err(format!("at most {} tmpfs mounts", resources::MAX_ENTRIES));
    }
    for (path, options) in &s.tmpfs {
        resources::check_tmpfs(path, options).map_err(|e| e.to_string())?;
    }
    if !s.user.is_empty() {
        resources::check_user(&s.user).map_err(|e| e.to_string())?;
    }
    if s.memory_bytes != 0 {
        resources::check_memory(s.memory_bytes).map_err(|e| e.to_string())?;
    }
    if s.nano_cpus != 0 {
        resources::check_nano_cpus(s.nano_cpus).map_err(|e| e.to_string())?;
    }
    if s.pids_limit != 0 {
        resources::check_pids_limit(s.pids_limit).map_err(|e| e.to_string())?;
    }
    Ok(Runtime {
        stop_signal: text(&s.stop_signal),
        stop_grace_secs: s.stop_grace_secs,
        prestop: s.prestop.clone(),
        sysctls: s.sysctls.clone().into_iter().collect(),
        ulimits,
        tmpfs: s.tmpfs.clone().into_iter().collect(),
        user: text(&s.user),
        memory_bytes: (s.memory_bytes != 0).then_some(s.memory_bytes),
        nano_cpus: (s.nano_cpus != 0).then_some(s.nano_cpus),
        pids_limit: (s.pids_limit != 0).then_some(s.pids_limit),
        init: s.init,
    })
}
