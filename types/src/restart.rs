//! Docker's restart policies, named as Docker names them.

use std::fmt;
use std::str::FromStr;

/// Docker's restart policy of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// `on-failure`, or `on-failure:N` with at most N restarts.
    OnFailure {
        max_retries: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown restart policy `{0}` (expected no, always, unless-stopped, on-failure or on-failure:N)"
)]
pub struct RestartPolicyError(pub String);

impl RestartPolicy {
    /// The policy that runs a container once and leaves it.
    pub const fn is_no(self) -> bool {
        matches!(self, RestartPolicy::No)
    }
}

impl FromStr for RestartPolicy {
    type Err = RestartPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RestartPolicyError(s.to_owned());
        Ok(match s.split_once(':') {
            None => match s {
                "no" => RestartPolicy::No,
                "always" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                "on-failure" => RestartPolicy::OnFailure { max_retries: None },
                _ => return Err(bad()),
            },
            Some(("on-failure", count)) => {
                // u32's parse takes a sign ("+3"): digits only.
                if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                RestartPolicy::OnFailure {
                    max_retries: Some(count.parse().map_err(|_| bad())?),
                }
            }
            Some(_) => return Err(bad()),
        })
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_round_trip_and_nothing_else_parses() {
        for name in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            assert_eq!(name.parse::<RestartPolicy>().unwrap().to_string(), name);
        }
        for bad in [
            "",
            "sometimes",
            "on-failure:",
            "on-failure:+3",
            "always:3",
            "No",
        ] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
    }
}
