//! The value rules the server holds too (names, MACs, restart policies, paths,
//! allowed addresses, durations and health limits, IPv6), each a small function of its
//! own so the client and the server can share one definition.

use std::net::Ipv4Addr;
use std::path::{Component, Path};

pub(super) use dockstack_proto::ip6::{check_gateway6, check_gateway6_alone, parse_ip6};

/// Docker's defaults for a healthcheck's interval and timeout.
pub(super) const DEFAULT_HEALTH_INTERVAL_MS: u32 = 30_000;
pub(super) const DEFAULT_HEALTH_TIMEOUT_MS: u32 = 30_000;
pub(super) const DEFAULT_HEALTH_RETRIES: u32 = 3;
/// The longest healthcheck interval, timeout or start period: the server's limit.
pub(super) const MAX_HEALTH_MS: u32 = 3_600_000;
/// As many as the server takes: each is two OpenFlow rules on the host.
pub(super) const MAX_ALLOWED_ADDRESSES: usize = 64;

/// An IPv4 address, or one with a `/LEN` of 0 to 32.
pub(super) fn allowed_address_ok(text: &str) -> bool {
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

/// The nanoseconds of a duration written as Docker and compose take it: an integer of
/// seconds, or Go's form (`500ms`, `1.5s`, `1m30s`; units ns, us, ms, s, m, h).
pub(super) fn duration_ns(text: &str) -> Option<i128> {
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
pub(super) fn docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// What is wrong with a `HOST:CONTAINER[:ro|:rw]` bind, if anything.
pub(super) fn volume_problem(volume: &str) -> Option<String> {
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

pub(super) fn path_problem(path: &str) -> Option<&'static str> {
    let path = Path::new(path);
    if !path.is_absolute() {
        Some("is not absolute")
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("has a `..` component")
    } else {
        None
    }
}

/// Why a `mac` value is refused.
pub(super) enum MacProblem {
    /// Not six colon-separated pairs of hex digits.
    Malformed,
    /// The group bit of the first octet is set.
    Multicast,
}

/// A unicast MAC written as `02:42:0a:00:00:01`, in lower case.
pub(super) fn parse_mac(text: &str) -> Result<String, MacProblem> {
    let octets: Vec<Option<u8>> = text
        .split(':')
        .map(|o| {
            (o.len() == 2)
                .then(|| u8::from_str_radix(o, 16).ok())
                .flatten()
        })
        .collect();
    if octets.len() != 6 || octets.iter().any(Option::is_none) {
        return Err(MacProblem::Malformed);
    }
    if octets[0].is_some_and(|first| first & 1 == 1) {
        return Err(MacProblem::Multicast);
    }
    Ok(text.to_ascii_lowercase())
}

/// Docker's restart policies: no, always, unless-stopped, on-failure, on-failure:N.
pub(super) fn restart_policy_ok(text: &str) -> bool {
    match text.split_once(':') {
        None => matches!(text, "no" | "always" | "unless-stopped" | "on-failure"),
        Some(("on-failure", count)) => count.parse::<u32>().is_ok(),
        Some(_) => false,
    }
}
