//! What a container may use and how it runs, as Docker takes them:
//! namespaced sysctls, ulimits, tmpfs mounts, its user, memory, CPUs and
//! pids limits.

/// The most sysctls, ulimits or tmpfs mounts one container may have.
pub const MAX_ENTRIES: usize = 64;
/// The longest sysctl value, tmpfs options or user.
pub const MAX_VALUE: usize = 256;

/// Docker's own rule for a container's sysctls: the IPC namespace's
/// `kernel.*` keys, POSIX message queues, and the network namespace's.
const SYSCTL_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
const SYSCTL_PREFIXES: &[&str] = &["net.", "fs.mqueue."];

/// Docker's names of ulimits.
pub const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// tmpfs mount options Docker passes on.
const TMPFS_OPTIONS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "noexec",
    "exec",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "ro",
    "rw",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "tmpcopyup",
    "notmpcopyup",
];

/// Docker's smallest memory limit: 6 MiB.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The largest memory limit dockstack takes: 16 TiB.
pub const MAX_MEMORY: u64 = 16 << 40;
/// CPUs in billionths, as Docker's `NanoCpus`: 0.01 to 1024.
pub const NANO_CPUS: std::ops::RangeInclusive<u64> = 10_000_000..=1_024_000_000_000;
/// The kernel's highest `pid_max`.
pub const MAX_PIDS: i64 = 4_194_304;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("at most {MAX_ENTRIES} {0}")]
    TooMany(&'static str),
    #[error(
        "sysctl {0:?} is not namespaced (allowed: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)"
    )]
    SysctlKey(String),
    #[error("sysctl {0}: value {1:?} is empty, too long or holds a control character")]
    SysctlValue(String, String),
    #[error("unknown ulimit {0:?} (Docker's: {list})", list = ULIMITS.join(", "))]
    UlimitName(String),
    #[error(
        "ulimit {name}: soft {soft} and hard {hard} must be -1 (unlimited) or more, soft at most hard"
    )]
    UlimitValue { name: String, soft: i64, hard: i64 },
    #[error("tmpfs {0:?} must be an absolute container path without '..', not /")]
    TmpfsPath(String),
    #[error("tmpfs {0}: option {1:?} unknown or malformed")]
    TmpfsOption(String, String),
    #[error("user {0:?} is not USER[:GROUP] of names or numbers")]
    User(String),
    #[error("memory {0:?} is not a size (bytes, or with b, k, m, g, t) of 6m..=16t")]
    Memory(String),
    #[error("cpus {0:?} is not a decimal of 0.01..=1024")]
    Cpus(String),
    #[error("pids_limit {0} out of range 1..={MAX_PIDS} (or -1: unlimited)")]
    Pids(i64),
}

/// A sysctl a container may set: a namespaced key, by Docker's own rule.
pub fn check_sysctl(key: &str, value: &str) -> Result<(), ResourceError> {
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    };
    let form_ok = key.len() <= MAX_VALUE && key.split('.').all(word_ok);
    let namespaced = SYSCTL_KEYS.contains(&key)
        || SYSCTL_PREFIXES
            .iter()
            .any(|p| key.starts_with(p) && key.len() > p.len());
    if !form_ok || !namespaced {
        return Err(ResourceError::SysctlKey(key.to_string()));
    }
    if value.trim().is_empty() || value.len() > MAX_VALUE || value.chars().any(char::is_control) {
        return Err(ResourceError::SysctlValue(
            key.to_string(),
            value.to_string(),
        ));
    }
    Ok(())
}

/// A ulimit by Docker's name; -1 is unlimited, and soft is at most hard.
pub fn check_ulimit(name: &str, soft: i64, hard: i64) -> Result<(), ResourceError> {
    if !ULIMITS.contains(&name) {
        return Err(ResourceError::UlimitName(name.to_string()));
    }
    let unlimited_last = |v: i64| if v == -1 { i128::MAX } else { i128::from(v) };
    if soft < -1 || hard < -1 || unlimited_last(soft) > unlimited_last(hard) {
        return Err(ResourceError::UlimitValue {
            name: name.to_string(),
            soft,
            hard,
        });
    }
    Ok(())
}

/// A tmpfs mount: an absolute container path, and options Docker knows
/// (`size=64m,mode=1777`), possibly none.
pub fn check_tmpfs(path: &str, options: &str) -> Result<(), ResourceError> {
    if !path.starts_with('/')
        || path == "/"
        || path.len() > MAX_VALUE
        || path.split('/').any(|p| p == "..")
        || path.contains([':', ','])
        || path.chars().any(char::is_control)
    {
        return Err(ResourceError::TmpfsPath(path.to_string()));
    }
    if options.len() > MAX_VALUE {
        return Err(ResourceError::TmpfsOption(
            path.to_string(),
            options.to_string(),
        ));
    }
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let (name, value) = o.split_once('=').unwrap_or((o, ""));
        let value_ok = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'%'));
        if !TMPFS_OPTIONS.contains(&name) || !value_ok {
            return Err(ResourceError::TmpfsOption(path.to_string(), o.to_string()));
        }
    }
    Ok(())
}

/// Docker's `USER[:GROUP]`, each a name or a number.
pub fn check_user(user: &str) -> Result<(), ResourceError> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && !p.starts_with('-')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    let ok = match user.split_once(':') {
        Some((u, g)) => part_ok(u) && part_ok(g),
        None => part_ok(user),
    };
    if ok {
        Ok(())
    } else {
        Err(ResourceError::User(user.to_string()))
    }
}

/// The bytes of a memory size as Docker writes them: a number (possibly
/// decimal), then `b`, `k`, `m`, `g` or `t` (any case, `kb` as `k`).
pub fn memory_bytes(text: &str) -> Result<u64, ResourceError> {
    let bad = || ResourceError::Memory(text.to_string());
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let scale: u64 = match unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit)
    {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = decimal_times(number, scale).ok_or_else(bad)?;
    check_memory(bytes).map(|()| bytes).map_err(|_| bad())
}

/// A memory limit as it reaches the server, in bytes.
pub fn check_memory(bytes: u64) -> Result<(), ResourceError> {
    if (MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
        Ok(())
    } else {
        Err(ResourceError::Memory(format!("{bytes}")))
    }
}

/// CPUs written as a decimal (`1.5`), in billionths as Docker's `NanoCpus`.
pub fn nano_cpus(text: &str) -> Result<u64, ResourceError> {
    decimal_times(text.trim(), 1_000_000_000)
        .filter(|n| NANO_CPUS.contains(n))
        .ok_or_else(|| ResourceError::Cpus(text.to_string()))
}

/// CPUs as they reach the server.
pub fn check_nano_cpus(n: u64) -> Result<(), ResourceError> {
    if NANO_CPUS.contains(&n) {
        Ok(())
    } else {
        Err(ResourceError::Cpus(format!("{}", n as f64 / 1e9)))
    }
}

/// The pids limit of a container whose file gives none: enough for a
/// database's threads, and a fork bomb stops there instead of starving the
/// host and its server. `pids_limit: -1` lifts it.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// A pids limit: 1 to the kernel's largest, or -1 for none.
pub fn check_pids_limit(n: i64) -> Result<(), ResourceError> {
    if n == -1 || (1..=MAX_PIDS).contains(&n) {
        Ok(())
    } else {
        Err(ResourceError::Pids(n))
    }
}

/// `number` (digits, at most one point) times `scale`, whole; `None` when
/// malformed, fractional after scaling, or too large.
fn decimal_times(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 18
        || fraction.len() > 18
    {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let places = u32::try_from(fraction.len()).ok()?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let denominator = 10u128.pow(places);
    let scaled_fraction = fraction_value * u128::from(scale);
    if !scaled_fraction.is_multiple_of(denominator) {
        return None;
    }
    let total = whole * u128::from(scale) + scaled_fraction / denominator;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_sysctls() {
        for ok in [
            "net.ipv4.ip_nonlocal_bind",
            "net.core.somaxconn",
            "kernel.shmmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
        ] {
            assert_eq!(check_sysctl(ok, "1"), Ok(()), "{ok}");
        }
        for bad in [
            "kernel.hostname",
            "vm.swappiness",
            "fs.file-max",
            "net.",
            "net..x",
            "kernel.shm",
            "net.ipv4/../x",
        ] {
            assert!(
                matches!(check_sysctl(bad, "1"), Err(ResourceError::SysctlKey(_))),
                "{bad}"
            );
        }
        assert!(check_sysctl("net.ipv4.ip_forward", "").is_err());
        assert!(check_sysctl("net.ipv4.ip_forward", "1\n2").is_err());
    }

    #[test]
    fn ulimits_by_dockers_names() {
        assert_eq!(check_ulimit("nofile", 1_048_576, 1_048_576), Ok(()));
        assert_eq!(check_ulimit("core", -1, -1), Ok(()));
        assert_eq!(check_ulimit("core", 0, -1), Ok(()));
        assert!(check_ulimit("nofiles", 1, 1).is_err());
        assert!(check_ulimit("nofile", 2, 1).is_err());
        assert!(check_ulimit("nofile", -1, 1).is_err());
        assert!(check_ulimit("nofile", -2, -2).is_err());
    }

    #[test]
    fn tmpfs_paths_and_options() {
        assert_eq!(check_tmpfs("/run", ""), Ok(()));
        assert_eq!(check_tmpfs("/tmp", "size=64m,mode=1777,noexec"), Ok(()));
        assert!(check_tmpfs("run", "").is_err());
        assert!(check_tmpfs("/", "").is_err());
        assert!(check_tmpfs("/a/../b", "").is_err());
        assert!(check_tmpfs("/tmp", "size=1g,bogus").is_err());
        assert!(check_tmpfs("/tmp", "size=1 g").is_err());
    }

    #[test]
    fn users_in_dockers_form() {
        for ok in ["mysql", "999", "999:999", "www-data:adm", "_apt"] {
            assert_eq!(check_user(ok), Ok(()), "{ok}");
        }
        for bad in ["", ":", "a:", "a b", "a:b:c", "-x", "a/b"] {
            assert!(check_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(memory_bytes("512m"), Ok(512 << 20));
        assert_eq!(memory_bytes("1G"), Ok(1 << 30));
        assert_eq!(memory_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(memory_bytes("64mb"), Ok(64 << 20));
        assert_eq!(memory_bytes("67108864"), Ok(64 << 20));
        for bad in ["", "m", "5m", "1x", "1.5.5g", "-1g", "17t", "1e9"] {
            assert!(memory_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_and_pids() {
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("0.01"), Ok(10_000_000));
        for bad in ["0", "0.001", "", "-1", "1025", "one", "0.0000000001"] {
            assert!(nano_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(check_pids_limit(-1), Ok(()));
        assert_eq!(check_pids_limit(100), Ok(()));
        assert!(check_pids_limit(0).is_err());
        assert!(check_pids_limit(-2).is_err());
        assert!(check_pids_limit(MAX_PIDS + 1).is_err());
    }
}
