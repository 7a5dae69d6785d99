//! Healthchecks: Docker's test forms, durations as Docker and compose write
//! them, and the limits of each field.

use std::ops::RangeInclusive;

/// Docker's defaults for what a healthcheck leaves out.
pub const DEFAULT_INTERVAL_MS: u32 = 30_000;
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_START_PERIOD_MS: u32 = 0;

/// The longest interval, timeout or start period: an hour.
pub const MAX_MS: u32 = 3_600_000;

/// How many failures in a row make a container unhealthy.
pub const RETRIES: RangeInclusive<u32> = 1..=1000;

/// The most words a test may have, and bytes a word.
pub const MAX_TEST_WORDS: usize = 256;
pub const MAX_TEST_WORD: usize = 4096;

/// The three durations of a healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    Interval,
    Timeout,
    StartPeriod,
}

impl Duration {
    pub const fn key(self) -> &'static str {
        match self {
            Duration::Interval => "interval",
            Duration::Timeout => "timeout",
            Duration::StartPeriod => "start_period",
        }
    }

    /// Only the start period may be zero (no grace).
    pub const fn zero_ok(self) -> bool {
        matches!(self, Duration::StartPeriod)
    }

    /// The range as the client's messages name it.
    pub const fn range_text(self) -> &'static str {
        if self.zero_ok() { "0..=1h" } else { "1ms..=1h" }
    }

    /// Whether `ms` milliseconds is in range.
    pub const fn allows(self, ms: u32) -> bool {
        (ms > 0 || self.zero_ok()) && ms <= MAX_MS
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a duration")]
    Syntax,
    #[error("out of range")]
    OutOfRange,
    #[error("not a whole number of milliseconds")]
    NotWholeMs,
}

/// The milliseconds of a healthcheck duration written as text (see
/// [`duration_ns`]), checked against its range.
pub fn duration_ms(which: Duration, text: &str) -> Result<u32, DurationError> {
    let ns = duration_ns(text).ok_or(DurationError::Syntax)?;
    let ms = u32::try_from(ns / 1_000_000)
        .ok()
        .filter(|ms| which.allows(*ms))
        .ok_or(DurationError::OutOfRange)?;
    if ns % 1_000_000 != 0 {
        return Err(DurationError::NotWholeMs);
    }
    Ok(ms)
}

/// The nanoseconds of a duration written as Docker and compose take it: an
/// integer of seconds, or Go's form (`500ms`, `1.5s`, `1m30s`; units ns, us,
/// ms, s, m, h).
pub fn duration_ns(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let total = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        number(digits)? * 1_000_000_000
    } else {
        go_duration_ns(digits)?
    };
    let total = i128::try_from(total).ok()?;
    Some(if negative { -total } else { total })
}

/// Digits as a number; none is zero, more than 18 too many.
fn number(digits: &str) -> Option<u128> {
    if digits.is_empty() {
        Some(0)
    } else if digits.len() <= 18 {
        digits.parse().ok()
    } else {
        None
    }
}

/// Go's `time.ParseDuration` form, unsigned.
fn go_duration_ns(text: &str) -> Option<u128> {
    let mut total: u128 = 0;
    let mut rest = text;
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
    Some(total)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    #[error(
        "healthcheck test {0:?} is neither [\"CMD\", program, args...] nor [\"CMD-SHELL\", line]"
    )]
    TestForm(Vec<String>),
    #[error("healthcheck test too long or holding a NUL")]
    TestSize,
    #[error("healthcheck {} {ms} ms out of range {}", which.key(), which.range_text())]
    Duration { which: Duration, ms: u32 },
    #[error("healthcheck retries {0} out of range 1..=1000")]
    Retries(u32),
}

/// A healthcheck in Docker's form, every field in range.
pub fn check(
    test: &[String],
    interval_ms: u32,
    timeout_ms: u32,
    retries: u32,
    start_period_ms: u32,
) -> Result<(), HealthError> {
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() >= 2 => {}
        Some("CMD-SHELL") if test.len() == 2 => {}
        _ => return Err(HealthError::TestForm(test.to_vec())),
    }
    if test.len() > MAX_TEST_WORDS
        || test
            .iter()
            .any(|t| t.len() > MAX_TEST_WORD || t.contains('\0'))
    {
        return Err(HealthError::TestSize);
    }
    for (which, ms) in [
        (Duration::Interval, interval_ms),
        (Duration::Timeout, timeout_ms),
        (Duration::StartPeriod, start_period_ms),
    ] {
        if !which.allows(ms) {
            return Err(HealthError::Duration { which, ms });
        }
    }
    if !RETRIES.contains(&retries) {
        return Err(HealthError::Retries(retries));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_docker_and_go_forms() {
        assert_eq!(duration_ms(Duration::Interval, "30"), Ok(30_000));
        assert_eq!(duration_ms(Duration::Interval, "1m30s"), Ok(90_000));
        assert_eq!(duration_ms(Duration::Interval, "1.5s"), Ok(1_500));
        assert_eq!(duration_ms(Duration::StartPeriod, "0s"), Ok(0));
        assert_eq!(
            duration_ms(Duration::Interval, "0s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(
            duration_ms(Duration::Timeout, "-5s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(
            duration_ms(Duration::Interval, "1h1s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(
            duration_ms(Duration::Interval, "1500us"),
            Err(DurationError::NotWholeMs)
        );
        for bad in ["", "s", "5x", "1..5s", "ten"] {
            assert_eq!(
                duration_ms(Duration::Interval, bad),
                Err(DurationError::Syntax),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_check_in_dockers_form() {
        let cmd = |w: &[&str]| w.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert!(check(&cmd(&["CMD", "true"]), 1000, 1000, 3, 0).is_ok());
        assert!(check(&cmd(&["CMD-SHELL", "true"]), 1000, 1000, 3, 0).is_ok());
        assert!(check(&cmd(&["CMD"]), 1000, 1000, 3, 0).is_err());
        assert!(check(&cmd(&["true"]), 1000, 1000, 3, 0).is_err());
        assert!(check(&cmd(&["CMD", "true"]), 0, 1000, 3, 0).is_err());
        assert!(check(&cmd(&["CMD", "true"]), 1000, 1000, 0, 0).is_err());
    }
}
