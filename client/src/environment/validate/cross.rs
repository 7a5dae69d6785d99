//! Checks across containers, once all are read: one address one container, the
//! names referred to elsewhere, and cycles of `after`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::hints::closest;
use super::{Checker, Placed};
use crate::environment::model::Container;
use crate::environment::yaml::Pos;

impl Checker {
    pub(super) fn unique_ips(&mut self) {
        let mut first: HashMap<Ipv4Addr, (String, Pos)> = HashMap::new();
        for (ip, pos, name) in std::mem::take(&mut self.ips) {
            match first.get(&ip) {
                Some((other, other_pos)) => {
                    let message = format!(
                        "ip {ip} is used by both `{other}` (line {}) and `{name}`",
                        other_pos.line
                    );
                    self.report(pos, &format!("containers.{name}.ip"), message);
                }
                None => {
                    first.insert(ip, (name, pos));
                }
            }
        }
    }

    pub(super) fn unique_ips6(&mut self) {
        let mut first: HashMap<Ipv6Addr, (String, Pos)> = HashMap::new();
        for (ip, pos, name) in std::mem::take(&mut self.ips6) {
            match first.get(&ip) {
                Some((other, other_pos)) => {
                    let message = format!(
                        "ip6 {ip} is used by both `{other}` (line {}) and `{name}`",
                        other_pos.line
                    );
                    self.report(pos, &format!("containers.{name}.ip6"), message);
                }
                None => {
                    first.insert(ip, (name, pos));
                }
            }
        }
    }

    pub(super) fn references(&mut self, containers: &[Container]) {
        for reference in std::mem::take(&mut self.references) {
            if reference.from.as_deref() == Some(reference.name.as_str()) {
                let message = format!("{} `{}`, which is itself", reference.what, reference.name);
                self.report(reference.pos, &reference.path, message);
                continue;
            }
            if containers.iter().any(|c| c.name == reference.name) {
                continue;
            }
            let hint = match closest(&reference.name, containers.iter().map(|c| c.name.as_str())) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            let message = format!(
                "{} `{}`, which is not in containers{hint}",
                reference.what, reference.name
            );
            self.report(reference.pos, &reference.path, message);
        }
    }

    /// Reports each cycle of `after` once, on the first container of the cycle in file
    /// order.
    pub(super) fn after_cycles(&mut self, containers: &[Container], placed: &[Placed]) {
        let index: HashMap<&str, usize> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        for (start, container) in containers.iter().enumerate() {
            let Some(cycle) = cycle_from(start, containers, &index) else {
                continue;
            };
            if cycle.iter().any(|&i| i < start) || cycle.len() < 2 {
                continue;
            }
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&start))
                .map(|&i| containers[i].name.as_str())
                .collect();
            let message = format!("`after` forms a cycle: {}", names.join(" → "));
            let path = format!("containers.{}.after", container.name);
            self.report(placed[start].after, &path, message);
        }
    }
}

/// A path of `after` edges from `start` back to it, as container indices.
fn cycle_from(
    start: usize,
    containers: &[Container],
    index: &HashMap<&str, usize>,
) -> Option<Vec<usize>> {
    fn walk(
        at: usize,
        start: usize,
        containers: &[Container],
        index: &HashMap<&str, usize>,
        seen: &mut Vec<bool>,
        path: &mut Vec<usize>,
    ) -> bool {
        path.push(at);
        for next in &containers[at].after {
            let Some(&next) = index.get(next.as_str()) else {
                continue;
            };
            if next == start {
                return true;
            }
            if !seen[next] {
                seen[next] = true;
                if walk(next, start, containers, index, seen, path) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
    let mut seen = vec![false; containers.len()];
    let mut path = Vec::new();
    walk(start, start, containers, index, &mut seen, &mut path).then_some(path)
}
