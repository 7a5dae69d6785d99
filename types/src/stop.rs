//! How a container is stopped: its stop signal, its grace period, and the
//! commands run inside it before (`prestop`).

use crate::health::duration_ns;

/// The longest grace period: an hour.
pub const MAX_GRACE_SECS: u64 = 3600;

/// The most `prestop` commands, and bytes in one.
pub const MAX_PRESTOP: usize = 16;
pub const MAX_PRESTOP_LINE: usize = 4096;

/// Linux's signal names, without `SIG`, as Docker's signal map has them.
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE",
    "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN",
    "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// The highest signal number (SIGRTMAX on Linux).
const MAX_SIGNAL: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopError {
    #[error("stop_signal {0:?} is neither a signal's name (SIGTERM, QUIT) nor its number 1..=64")]
    Signal(String),
    #[error("stop_grace_period {0:?} is not a duration (10, 1m30s)")]
    GraceSyntax(String),
    #[error("stop_grace_period {0:?} out of range 0..=1h")]
    GraceRange(String),
    #[error("stop_grace_period {0:?} is not a whole number of seconds")]
    GraceWhole(String),
    #[error("at most {MAX_PRESTOP} prestop commands")]
    PrestopCount,
    #[error("prestop command {0:?}: {1}")]
    Prestop(String, &'static str),
}

/// A stop signal as Docker takes it: a name, with or without `SIG`, in any
/// case (`SIGTERM`, `quit`, `SIGRTMIN+3`), or a number.
pub fn check_signal(text: &str) -> Result<(), StopError> {
    let bad = || StopError::Signal(text.to_string());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (1..=MAX_SIGNAL).contains(&n) => Ok(()),
            _ => Err(bad()),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let real_time = |base: &str, sign: char| {
        name.strip_prefix(base)
            .and_then(|r| r.strip_prefix(sign))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=15).contains(&n))
    };
    if SIGNALS.contains(&name) || real_time("RTMIN", '+') || real_time("RTMAX", '-') {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The whole seconds of a grace period written as Docker and compose take
/// it (`10`, `90s`, `1m30s`), at most an hour.
pub fn grace_secs(text: &str) -> Result<u32, StopError> {
    let ns = duration_ns(text).ok_or_else(|| StopError::GraceSyntax(text.to_string()))?;
    let secs = u64::try_from(ns / 1_000_000_000)
        .ok()
        .filter(|s| ns >= 0 && *s <= MAX_GRACE_SECS)
        .ok_or_else(|| StopError::GraceRange(text.to_string()))?;
    if ns % 1_000_000_000 != 0 {
        return Err(StopError::GraceWhole(text.to_string()));
    }
    u32::try_from(secs).map_err(|_| StopError::GraceRange(text.to_string()))
}

/// A grace period as it reaches the server, in seconds.
pub fn check_grace_secs(secs: u32) -> Result<(), StopError> {
    if u64::from(secs) <= MAX_GRACE_SECS {
        Ok(())
    } else {
        Err(StopError::GraceRange(format!("{secs}s")))
    }
}

/// `prestop` command lines: a few, each non-empty, bounded and without a
/// NUL or a line break (each is split into words like a hook line).
pub fn check_prestop(lines: &[String]) -> Result<(), StopError> {
    if lines.len() > MAX_PRESTOP {
        return Err(StopError::PrestopCount);
    }
    for l in lines {
        let bad = |why| Err(StopError::Prestop(l.clone(), why));
        if l.trim().is_empty() {
            return bad("is empty");
        }
        if l.len() > MAX_PRESTOP_LINE {
            return bad("is too long");
        }
        if l.contains(['\0', '\n', '\r']) {
            return bad("holds a NUL or a line break");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        for ok in [
            "SIGTERM",
            "TERM",
            "sigquit",
            "quit",
            "SIGUSR1",
            "15",
            "1",
            "64",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGKILL",
        ] {
            assert_eq!(check_signal(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "SIG",
            "SIGFOO",
            "0",
            "65",
            "-15",
            "SIGRTMIN+16",
            "TERM ",
            "1.5",
        ] {
            assert!(check_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grace_periods_in_docker_and_go_forms() {
        assert_eq!(grace_secs("10"), Ok(10));
        assert_eq!(grace_secs("0"), Ok(0));
        assert_eq!(grace_secs("1m30s"), Ok(90));
        assert_eq!(grace_secs("1h"), Ok(3600));
        assert!(matches!(grace_secs("1h1s"), Err(StopError::GraceRange(_))));
        assert!(matches!(grace_secs("-5s"), Err(StopError::GraceRange(_))));
        assert!(matches!(grace_secs("1.5s"), Err(StopError::GraceWhole(_))));
        assert!(matches!(grace_secs("ten"), Err(StopError::GraceSyntax(_))));
        assert_eq!(check_grace_secs(3600), Ok(()));
        assert!(check_grace_secs(3601).is_err());
    }

    #[test]
    fn prestop_lines_are_bounded() {
        let l = |s: &str| vec![s.to_string()];
        assert_eq!(check_prestop(&l("haproxy-drain --wait 5")), Ok(()));
        assert!(check_prestop(&l("  ")).is_err());
        assert!(check_prestop(&l("a\nb")).is_err());
        assert!(check_prestop(&l(&"x".repeat(5000))).is_err());
        assert!(check_prestop(&vec!["true".to_string(); 17]).is_err());
    }
}
