//! Property tests of the registration file editors (`regfiles::{hosts,
//! hieradata, sitepp}`): on generated files in the layouts the 2015 tools and
//! people write, registering a fresh name and deregistering it again gives
//! back the original bytes, and no line other than the entry being edited is
//! ever lost, whatever sequence of registrations runs.
//!
//! The fuzz targets in `fuzz/` check the same on arbitrary text; these run in
//! the normal test run with modest case counts.

use std::net::Ipv4Addr;

use dockstack_server::regfiles::{Change, RegistrationError, SiteChange, hieradata, hosts, sitepp};
use proptest::prelude::*;
use proptest::sample::select;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Integration tests have no lib.rs for proptest to put a
        // regressions file beside; a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Lines with their terminators.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// A line without its terminator.
fn body(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

fn bodies(text: &str) -> Vec<&str> {
    lines(text).into_iter().map(body).collect()
}

fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// Joins lines with `eol`, the last one terminated or not.
fn join(lines: &[String], eol: &str, terminated: bool) -> String {
    let mut text = lines.join(eol);
    if terminated && !lines.is_empty() {
        text.push_str(eol);
    }
    text
}

fn eol() -> impl Strategy<Value = &'static str> {
    select(vec!["\n", "\r\n"])
}

// ---------------------------------------------------------------------------
// hosts

const HOSTS: &[&str] = &[
    "dns1.endor.lab",
    "vip.endor.lab",
    "puppet1.endor.lab",
    "haproxy1.endor.lab",
    "galera1.endor.lab",
    "compute1.endor.lab",
    "Compute2.Endor.Lab",
    "web",
];

/// One line of a dnsmasq hosts file: blank, comment or `IP NAME [ALIAS...]`
/// with the spacing and trailing comments people write.
fn hosts_line() -> impl Strategy<Value = String> {
    let entry = (
        any::<[u8; 4]>(),
        select(vec![" ", "  ", "\t", "    "]),
        proptest::collection::vec(select(HOSTS.to_vec()), 1..=3),
        select(vec!["", " # note", "\t#x", "  "]),
    )
        .prop_map(|(ip, sep, names, tail)| {
            format!("{}{sep}{}{tail}", Ipv4Addr::from(ip), names.join(sep))
        });
    prop_oneof![
        1 => Just(String::new()),
        1 => select(vec!["# dockstack", "#", "  # indented comment"]).prop_map(String::from),
        1 => Just("fe80::1 v6.endor.lab".to_string()),
        6 => entry,
    ]
}

fn hosts_file() -> impl Strategy<Value = (String, &'static str)> {
    (
        proptest::collection::vec(hosts_line(), 0..12),
        eol(),
        any::<bool>(),
    )
        .prop_map(|(lines, eol, terminated)| (join(&lines, eol, terminated), eol))
}

/// What adding a line leaves of the text before: its last line terminated,
/// with the line ending of the file's first line.
fn terminated(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        return text.to_string();
    }
    let eol = match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    };
    format!("{text}{eol}")
}

fn names_host(line: &str, fqdn: &str) -> bool {
    matches!(hosts::lookup(line, fqdn), Ok(Some(_)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hosts_register_then_deregister_gives_back_the_bytes(
        (text, _eol) in hosts_file(),
        ip in any::<[u8; 4]>(),
        n in 0..5u8,
    ) {
        let fqdn = format!("new{n}.endor.lab");
        let (added, c) = hosts::add(&text, Ipv4Addr::from(ip), None, &fqdn).unwrap();
        prop_assert_eq!(c, Change::Added);
        prop_assert_eq!(
            hosts::lookup(&added, &fqdn).unwrap(),
            Some(Ipv4Addr::from(ip).into())
        );
        let (back, c) = hosts::remove(&added, &fqdn).unwrap();
        prop_assert_eq!(c, Change::Removed);
        // Byte for byte; a last line without a terminator got one when the
        // host's line was appended after it.
        prop_assert_eq!(back, terminated(&text));
    }

    #[test]
    fn hosts_never_lose_another_line(
        (text, _eol) in hosts_file(),
        ops in proptest::collection::vec(
            (any::<bool>(), select(HOSTS.to_vec()), any::<[u8; 4]>()), 1..6),
    ) {
        let mut cur = text.clone();
        for (add, fqdn, ip) in &ops {
            let (out, _) = if *add {
                hosts::add(&cur, Ipv4Addr::from(*ip), None, fqdn).unwrap()
            } else {
                hosts::remove(&cur, fqdn).unwrap()
            };
            prop_assert_eq!(hosts::lookup(&out, fqdn).unwrap().is_some(), *add);
            cur = out;
        }
        // Every line that names none of the edited hosts is still there, in order.
        let touched = |l: &&str| ops.iter().any(|(_, f, _)| names_host(l, f));
        let untouched: Vec<&str> = bodies(&text).into_iter().filter(|l| !touched(l)).collect();
        let now = bodies(&cur);
        prop_assert!(is_subsequence(&untouched, &now), "{:?}\n->\n{:?}", text, cur);
    }
}

// ---------------------------------------------------------------------------
// hieradata

const SERVICES: &[&str] = &["haproxy", "redis", "galera", "web", "dns", "puppet"];
const CONTAINERS: &[&str] = &[
    "ha1", "ha2", "gal1", "web1", "123", "yes", "x_y-z.1", "puppet",
];

/// A YAML item for a container name: plain where it reads as a string,
/// quoted where it must be (or where the author quoted it anyway).
fn item_text(name: &str, quote: bool) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic()) && name != "yes";
    if plain && !quote {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

#[derive(Debug, Clone)]
enum Value {
    /// `svc:` alone, or `svc: ~` (`inline` true).
    Null { inline: bool },
    /// A block list, each item maybe quoted and maybe commented.
    List(Vec<(&'static str, bool, bool)>),
}

#[derive(Debug, Clone)]
struct Hiera {
    /// Top-level entries before and after the block.
    before: Vec<&'static str>,
    after: Vec<&'static str>,
    /// `None`: no `registered_services` at all.
    block: Option<Vec<(&'static str, Value)>>,
    /// Service key indentation and the dashes' offset from their key.
    indent: usize,
    offset: usize,
    comment_in_block: bool,
}

const TOP: &[&str] = &[
    "common:\n  domain: endor.lab\n  vip: 10.0.0.254\n  vip_mask: '16'",
    "common_nodes:\n  - c1\n  - c2",
    "galera:\n  password: password",
    "# hand-edited",
    "other: 1",
    "",
];

fn hiera_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(|inline| Value::Null { inline }),
        proptest::sample::subsequence(CONTAINERS.to_vec(), 1..4).prop_flat_map(|names| {
            let n = names.len();
            (
                Just(names),
                proptest::collection::vec(any::<bool>(), n),
                proptest::collection::vec(any::<bool>(), n),
            )
                .prop_map(|(names, quoted, commented)| {
                    Value::List(
                        names
                            .into_iter()
                            .zip(quoted)
                            .zip(commented)
                            .map(|((a, b), c)| (a, b, c))
                            .collect(),
                    )
                })
        }),
    ]
}

fn hiera() -> impl Strategy<Value = Hiera> {
    let block = proptest::sample::subsequence(SERVICES.to_vec(), 0..5).prop_flat_map(|svcs| {
        let n = svcs.len();
        (Just(svcs), proptest::collection::vec(hiera_value(), n))
            .prop_map(|(svcs, values)| svcs.into_iter().zip(values).collect::<Vec<_>>())
    });
    (
        proptest::collection::vec(select(TOP.to_vec()), 0..3),
        proptest::collection::vec(select(TOP.to_vec()), 0..3),
        proptest::option::weighted(0.85, block),
        select(vec![2usize, 4]),
        select(vec![0usize, 2]),
        any::<bool>(),
    )
        .prop_map(
            |(before, after, block, indent, offset, comment_in_block)| Hiera {
                before,
                after,
                block,
                indent,
                offset,
                comment_in_block,
            },
        )
}

impl Hiera {
    fn render(&self, eol: &str) -> String {
        // A top-level key written twice would be a duplicate key.
        let mut seen = std::collections::HashSet::new();
        let mut top = |entries: &[&'static str]| -> Vec<String> {
            entries
                .iter()
                .filter(|e| e.is_empty() || e.starts_with('#') || seen.insert(**e))
                .map(|e| e.to_string())
                .collect()
        };
        let mut out = top(&self.before);
        if let Some(services) = &self.block {
            out.push("registered_services:".to_string());
            let key = " ".repeat(self.indent);
            let dash = " ".repeat(self.indent + self.offset);
            if self.comment_in_block {
                out.push(format!("{key}# services"));
            }
            for (svc, value) in services {
                match value {
                    Value::Null { inline: false } => out.push(format!("{key}{svc}:")),
                    Value::Null { inline: true } => out.push(format!("{key}{svc}: ~")),
                    Value::List(items) => {
                        out.push(format!("{key}{svc}:"));
                        for (name, quote, comment) in items {
                            let c = if *comment { "  # added by hand" } else { "" };
                            out.push(format!("{dash}- {}{c}", item_text(name, *quote)));
                        }
                    }
                }
            }
        }
        out.extend(top(&self.after));
        join(&out, "\n", true).replace('\n', eol)
    }

    fn inline_null(&self, service: &str) -> bool {
        self.block
            .iter()
            .flatten()
            .any(|(s, v)| *s == service && matches!(v, Value::Null { inline: true }))
    }

    fn has_service(&self, service: &str) -> bool {
        self.block.iter().flatten().any(|(s, _)| *s == service)
    }
}

fn has(text: &str, service: &str, name: &str) -> bool {
    hieradata::registered(text)
        .unwrap()
        .and_then(|r| r.get(service).cloned())
        .is_some_and(|l| l.iter().any(|n| n == name))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hieradata_register_then_deregister_gives_back_the_bytes(
        doc in hiera(),
        eol in eol(),
        service in select(SERVICES.to_vec()),
        n in 0..5u8,
    ) {
        let text = doc.render(eol);
        let before = hieradata::registered(&text).unwrap();
        let name = format!("fresh{n}");
        let (added, c) = hieradata::add(&text, service, &name).unwrap();
        prop_assert_eq!(c, Change::Added);
        prop_assert!(has(&added, service, &name));
        let (back, c) = hieradata::remove(&added, service, &name).unwrap();
        prop_assert_eq!(c, Change::Removed);
        if doc.has_service(service) && !doc.inline_null(service) {
            prop_assert_eq!(&back, &text, "{}", added);
        } else {
            // A new service key (or the map itself) stays, as null, where
            // PyYAML wrote `svc:`; `svc: ~` became `svc:`. Nothing else moved.
            let mut expected = before.unwrap_or_default();
            expected.entry(service.to_string()).or_default();
            prop_assert_eq!(hieradata::registered(&back).unwrap(), Some(expected));
            let old: Vec<&str> = bodies(&text)
                .into_iter()
                .filter(|l| !l.ends_with(&format!("{service}: ~")))
                .collect();
            prop_assert!(is_subsequence(&old, &bodies(&back)), "{}\n->\n{}", text, back);
        }
    }

    #[test]
    fn hieradata_never_loses_another_line(
        doc in hiera(),
        eol in eol(),
        ops in proptest::collection::vec(
            (any::<bool>(), select(SERVICES.to_vec()), select(CONTAINERS.to_vec())), 1..6),
    ) {
        let text = doc.render(eol);
        let mut cur = text.clone();
        for (add, service, name) in &ops {
            let (out, _) = if *add {
                hieradata::add(&cur, service, name).unwrap()
            } else {
                hieradata::remove(&cur, service, name).unwrap()
            };
            prop_assert_eq!(has(&out, service, name), *add);
            cur = out;
        }
        // Every line is still there, in order, but the items of names that
        // were deregistered and `svc: ~` keys that got a list.
        let removed = |l: &str| {
            ops.iter().any(|(add, _, name)| !add && l.trim_start().starts_with('-') && l.contains(name))
        };
        let kept: Vec<&str> = bodies(&text)
            .into_iter()
            .filter(|l| !removed(l) && !l.ends_with(": ~"))
            .collect();
        prop_assert!(is_subsequence(&kept, &bodies(&cur)), "{}\n->\n{}", text, cur);
    }
}

// ---------------------------------------------------------------------------
// site.pp

const NODE_HOSTS: &[&str] = &[
    "haproxy1.endor.lab",
    "haproxy2.endor.lab",
    "galera1.endor.lab",
    "web1.endor.lab",
    "web2.endor.lab",
    "dns1.endor.lab",
];

#[derive(Debug, Clone)]
enum Chunk {
    Text(&'static str),
    /// A node: its service, its hosts, the separator before each host and
    /// whether names are double-quoted.
    Node(&'static str, Vec<&'static str>, &'static str, bool),
}

const OTHER: &[&str] = &[
    "#nodes",
    "/* generated\n   by dockstack { */",
    "$domain = 'endor.lab'",
    "class { '::mymod::base': }",
    "if $::fqdn =~ /^web\\d+$/ { notice(\"web ${::fqdn}\") }",
    "",
];

fn sitepp_file() -> impl Strategy<Value = (String, Vec<&'static str>)> {
    let nodes = proptest::sample::subsequence(SERVICES.to_vec(), 1..5).prop_flat_map(|svcs| {
        let n = svcs.len();
        (
            Just(svcs),
            proptest::collection::vec(0..3usize, n),
            proptest::sample::subsequence(NODE_HOSTS.to_vec(), 0..=NODE_HOSTS.len()),
            select(vec![" ,", ", ", ",", " , "]),
            proptest::collection::vec(any::<bool>(), n),
        )
            .prop_map(|(svcs, counts, hosts, sep, dq)| {
                // Each host on at most one node, as Puppet requires.
                let mut hosts = hosts.into_iter();
                svcs.iter()
                    .zip(counts)
                    .zip(dq)
                    .map(|((s, k), dq)| Chunk::Node(s, hosts.by_ref().take(k).collect(), sep, dq))
                    .collect::<Vec<_>>()
            })
    });
    (
        nodes,
        proptest::collection::vec(select(OTHER.to_vec()).prop_map(Chunk::Text), 0..4),
        any::<bool>(),
        eol(),
    )
        .prop_map(|(nodes, mut others, terminated, eol)| {
            let services = nodes
                .iter()
                .filter_map(|c| match c {
                    Chunk::Node(s, ..) => Some(*s),
                    Chunk::Text(_) => None,
                })
                .collect();
            // Interleave the other text between the nodes.
            let mut chunks = Vec::new();
            for node in nodes {
                if let Some(t) = others.pop() {
                    chunks.push(t);
                }
                chunks.push(node);
            }
            chunks.extend(others);
            let lines: Vec<String> = chunks
                .iter()
                .map(|c| match c {
                    Chunk::Text(t) => t.to_string(),
                    Chunk::Node(s, hosts, sep, dq) => {
                        let q = if *dq { "\"" } else { "'" };
                        let mut head = format!("node {q}{s}{q}");
                        for h in hosts {
                            head.push_str(&format!("{sep}{q}{h}{q}"));
                        }
                        format!("{head} {{\n  class {{ '::mymod::{s}': }}\n}}")
                    }
                })
                .collect();
            let text = join(&lines, "\n", terminated).replace('\n', eol);
            (text, services)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sitepp_register_then_deregister_gives_back_the_bytes(
        (text, services) in sitepp_file(),
        k in any::<prop::sample::Index>(),
        n in 0..5u8,
    ) {
        let service = services[k.index(services.len())];
        let fqdn = format!("{service}{n}.fresh.lab");
        let (added, c) = sitepp::add(&text, service, &fqdn).unwrap();
        prop_assert_eq!(c, SiteChange::Changed(Change::Added));
        let (back, c) = sitepp::remove(&added, service, &fqdn).unwrap();
        prop_assert_eq!(c, SiteChange::Changed(Change::Removed));
        prop_assert_eq!(back, text);
    }

    #[test]
    fn sitepp_never_loses_another_line(
        (text, services) in sitepp_file(),
        ops in proptest::collection::vec(
            (any::<bool>(), any::<prop::sample::Index>(), select(NODE_HOSTS.to_vec())), 1..6),
    ) {
        let mut cur = text.clone();
        let mut touched = Vec::new();
        for (add, k, fqdn) in &ops {
            let service = services[k.index(services.len())];
            let result = if *add {
                sitepp::add(&cur, service, fqdn)
            } else {
                sitepp::remove(&cur, service, fqdn)
            };
            match result {
                Ok((out, c)) => {
                    prop_assert_ne!(c, SiteChange::NoNodeLine);
                    cur = out;
                }
                // The host is on another node: refused, nothing written.
                Err(RegistrationError::Conflict { .. }) => prop_assert!(*add),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
            touched.push(service);
        }
        // Only the header lines of the nodes edited changed.
        let header = |l: &str, s: &str| {
            l.starts_with(&format!("node '{s}'")) || l.starts_with(&format!("node \"{s}\""))
        };
        let (old, new) = (lines(&text), lines(&cur));
        prop_assert_eq!(old.len(), new.len());
        for (a, b) in old.iter().zip(&new) {
            if !touched.iter().any(|s| header(a, s)) {
                prop_assert_eq!(a, b);
            }
        }
        prop_assert!(sitepp::parse(&cur).is_ok());
    }
}
