//! A database under load while dockstack changes it: what a writer through a
//! VIP and pollers of each member record, and the figures read from that.
//!
//! The writer and the pollers run in a container of the test bed (the
//! example's MariaDB image has the client) and append one line per attempt
//! to files in a directory the test reads:
//! - `writes`: `ID START_NS END_NS ok|fail`, one INSERT per connection;
//! - `state-ADDRESS`: `AT_NS STATE`, a member's `wsrep_local_state_comment`
//!   (or `none` when it did not answer within a second).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The writer and pollers' script (bash), run by the test bed's `writer`
/// container with `VIP`, `MEMBERS` and `DB_ROOT_PASSWORD` in its environment.
pub const WRITER_SCRIPT: &str = r#"#!/bin/bash
set -u
out=/load
client=(mariadb -uroot "-p$DB_ROOT_PASSWORD" --connect-timeout=2 -N -B)
until "${client[@]}" -h "$VIP" -e "CREATE DATABASE IF NOT EXISTS writer;
    CREATE TABLE IF NOT EXISTS writer.writes (id INT PRIMARY KEY, at BIGINT)" 2>>$out/errors; do
  sleep 0.5
done
poll() {
  while :; do
    t=$(date +%s%N)
    s=$(timeout 1 "${client[@]}" -h "$1" -e "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null)
    s=${s##*[[:space:]]}
    echo "$t ${s:-none}" >>"$out/state-$1"
    sleep 0.2
  done
}
for m in $MEMBERS; do poll "$m" & done
echo ready >$out/ready
i=0
while :; do
  i=$((i + 1))
  t=$(date +%s%N)
  if timeout 5 "${client[@]}" -h "$VIP" -e "INSERT INTO writer.writes VALUES ($i, $t)" 2>>$out/errors; then
    r=ok
  else
    r=fail
  fi
  echo "$i $t $(date +%s%N) $r" >>$out/writes
  sleep 0.05
done
"#;

/// Nanoseconds since the epoch, the clock the writer's `date +%s%N` reads.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One INSERT the writer tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub id: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub acked: bool,
}

/// Parses the writer's `writes` file; a torn last line is skipped.
pub fn parse_writes(text: &str) -> Vec<Write> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [id, start, end, result] = f.as_slice() else {
                return None;
            };
            Some(Write {
                id: id.parse().ok()?,
                start_ns: start.parse().ok()?,
                end_ns: end.parse().ok()?,
                acked: match *result {
                    "ok" => true,
                    "fail" => false,
                    _ => return None,
                },
            })
        })
        .collect()
}

/// The figures of the writes begun within `[from_ns, to_ns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFigures {
    pub attempted: usize,
    pub failed: usize,
    /// The longest time between two acknowledged writes' ends, the window's
    /// edges counting as acknowledgements (a window with none at all is
    /// one long gap).
    pub longest_gap: Duration,
    /// When the longest gap began.
    pub gap_from_ns: u64,
}

pub fn write_figures(writes: &[Write], from_ns: u64, to_ns: u64) -> WriteFigures {
    let within: Vec<&Write> = writes
        .iter()
        .filter(|w| (from_ns..=to_ns).contains(&w.start_ns))
        .collect();
    let mut acks: Vec<u64> = within
        .iter()
        .filter(|w| w.acked)
        .map(|w| w.end_ns)
        .collect();
    acks.push(from_ns);
    acks.push(to_ns);
    acks.sort_unstable();
    let (longest, gap_from_ns) = acks
        .windows(2)
        .map(|pair| (pair[1].saturating_sub(pair[0]), pair[0]))
        .max()
        .unwrap_or((0, from_ns));
    WriteFigures {
        attempted: within.len(),
        failed: within.iter().filter(|w| !w.acked).count(),
        longest_gap: Duration::from_nanos(longest),
        gap_from_ns,
    }
}

/// The ids acknowledged to the writer.
pub fn acked_ids(writes: &[Write]) -> BTreeSet<u64> {
    writes.iter().filter(|w| w.acked).map(|w| w.id).collect()
}

/// Parses a poller's `state-ADDRESS` file: `(at_ns, state)`.
pub fn parse_states(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|line| {
            let (at, state) = line.split_once(' ')?;
            Some((at.parse().ok()?, state.trim().to_string()))
        })
        .collect()
}

/// The fewest members Synced at once within `[from_ns, to_ns]`, and when.
///
/// A member counts as Synced from a sample that says so until its next
/// sample, and for at most `stale` after it: a member whose poller hears
/// nothing for longer is not counted. The moments looked at are every
/// sample of every member.
pub fn fewest_synced(
    members: &BTreeMap<String, Vec<(u64, String)>>,
    from_ns: u64,
    to_ns: u64,
    stale: Duration,
) -> (usize, u64) {
    let stale = u64::try_from(stale.as_nanos()).unwrap_or(u64::MAX);
    let moments: BTreeSet<u64> = members
        .values()
        .flatten()
        .map(|(at, _)| *at)
        .filter(|at| (from_ns..=to_ns).contains(at))
        .collect();
    let synced_at = |samples: &[(u64, String)], t: u64| {
        let last = samples.partition_point(|(at, _)| *at <= t);
        last > 0 && {
            let (at, state) = &samples[last - 1];
            state == "Synced" && t - at <= stale
        }
    };
    moments
        .into_iter()
        .map(|t| {
            let n = members.values().filter(|s| synced_at(s, t)).count();
            (n, t)
        })
        .min()
        .unwrap_or((0, from_ns))
}

/// Each member's samples within `span` of `at_ns`, for a failure's message.
pub fn samples_around(
    members: &BTreeMap<String, Vec<(u64, String)>>,
    at_ns: u64,
    span: Duration,
) -> String {
    let span = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    members
        .iter()
        .map(|(m, samples)| {
            let near: Vec<String> = samples
                .iter()
                .filter(|(t, _)| t.abs_diff(at_ns) <= span)
                .map(|(t, s)| format!("{:+.2}s {s}", (*t as f64 - at_ns as f64) / 1e9))
                .collect();
            format!("{m}: {}", near.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files of one writer container's load directory.
#[derive(Debug, Clone)]
pub struct LoadDir(pub PathBuf);

impl LoadDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn ready(&self) -> bool {
        self.0.join("ready").exists()
    }

    pub fn writes(&self) -> Vec<Write> {
        parse_writes(&std::fs::read_to_string(self.0.join("writes")).unwrap_or_default())
    }

    /// Each member's samples, by its address.
    pub fn states(&self, members: &[String]) -> BTreeMap<String, Vec<(u64, String)>> {
        members
            .iter()
            .map(|m| {
                let file = self.0.join(format!("state-{m}"));
                let text = std::fs::read_to_string(file).unwrap_or_default();
                (m.clone(), parse_states(&text))
            })
            .collect()
    }

    /// The last lines of the writer's client errors.
    pub fn errors(&self) -> String {
        let text = std::fs::read_to_string(self.0.join("errors")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn gaps_count_from_the_window_edges_and_failures_are_counted() {
        let writes = parse_writes(
            "1 100000000 110000000 ok\n2 160000000 170000000 fail\n\
             3 1000000000 1010000000 ok\n4 2000000000 2010000000 ok\n5 20000",
        );
        assert_eq!(writes.len(), 4, "the torn line is skipped");
        let f = write_figures(&writes, 50 * MS, 2100 * MS);
        assert_eq!(f.attempted, 4);
        assert_eq!(f.failed, 1);
        assert_eq!(f.longest_gap, Duration::from_millis(1000));
        assert_eq!(f.gap_from_ns, 1010 * MS);
        let f = write_figures(&writes, 1500 * MS, 1900 * MS);
        assert_eq!((f.attempted, f.failed), (0, 0));
        assert_eq!(f.longest_gap, Duration::from_millis(400));
        assert_eq!(acked_ids(&writes), BTreeSet::from([1, 3, 4]));
    }

    #[test]
    fn a_member_silent_or_not_synced_is_not_counted() {
        let member = |text: &str| parse_states(text);
        let members = BTreeMap::from([
            ("a".into(), member("100 Synced\n300 Synced\n500 Synced")),
            (
                "b".into(),
                member("100 Synced\n310 Donor/Desynced\n510 Synced"),
            ),
            // Silent after 100: stale from 100 + 250 on.
            ("c".into(), member("100 Synced")),
        ]);
        let stale = Duration::from_nanos(250);
        assert_eq!(fewest_synced(&members, 0, 600, stale), (1, 500));
        assert_eq!(fewest_synced(&members, 0, 200, stale), (3, 100));
        // At 310: a Synced, b a donor, c's sample 210 ns old.
        assert_eq!(fewest_synced(&members, 0, 400, stale), (2, 310));
    }
}
