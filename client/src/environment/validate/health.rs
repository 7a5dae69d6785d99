//! `healthcheck`: its test command in Docker's form and its durations.

use super::Checker;
use super::accessors::Fields;
use super::keys::HEALTHCHECK_KEYS;
use crate::environment::model::Healthcheck;
use crate::environment::yaml::Node;
use dockstack_types::health::{self, Duration, DurationError};

impl Checker {
    /// `healthcheck`: `test` required, Docker's defaults for the rest. Checked in the
    /// defaults too: a container's own `healthcheck` replaces the default's whole, so a
    /// default without `test` is never completed.
    pub(super) fn healthcheck(&mut self, fields: &Fields<'_>) -> Option<Healthcheck> {
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
        let interval = self.duration_field(&f, Duration::Interval, health::DEFAULT_INTERVAL_MS);
        let timeout = self.duration_field(&f, Duration::Timeout, health::DEFAULT_TIMEOUT_MS);
        let start_period =
            self.duration_field(&f, Duration::StartPeriod, health::DEFAULT_START_PERIOD_MS);
        let retries = match self.value(&f, "retries", false) {
            Some((n, p)) => self
                .integer(
                    n,
                    &p,
                    "retries",
                    i64::from(*health::RETRIES.start()),
                    i64::from(*health::RETRIES.end()),
                )
                .and_then(|r| u32::try_from(r).ok()),
            None => Some(health::DEFAULT_RETRIES),
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
    pub(super) fn health_test(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
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

    /// A healthcheck duration, in milliseconds, in its range (see
    /// [`health::duration_ms`]); `default` when absent.
    pub(super) fn duration_field(
        &mut self,
        fields: &Fields<'_>,
        which: Duration,
        default: u32,
    ) -> Option<u32> {
        let key = which.key();
        let Some((node, path)) = self.value(fields, key, false) else {
            return Some(default);
        };
        let parsed = node.scalar().map(|t| (t, health::duration_ms(which, t)));
        let message = match parsed {
            Some((_, Ok(ms))) => return Some(ms),
            None | Some((_, Err(DurationError::Syntax))) => {
                self.wrong_type(
                    node,
                    &path,
                    "a duration (whole seconds, or like 500ms, 2s, 1m30s)",
                );
                return None;
            }
            Some((text, Err(DurationError::OutOfRange))) => {
                format!("{key} `{text}` is out of range {}", which.range_text())
            }
            Some((text, Err(DurationError::NotWholeMs))) => {
                format!("{key} `{text}` is not a whole number of milliseconds")
            }
        };
        self.report(node.pos, &path, message);
        None
    }
}
