//! Shared input decoding and invariants of the fuzz targets.
//!
//! An input is the text of a file, optionally followed by a NUL byte and a
//! script of edits (decoded with `arbitrary`). The corpus seeds are plain
//! files, so they carry no script: a default one is derived from the names
//! in the text. The names an edit uses are taken from the text too, so edits
//! hit existing entries as often as fresh ones.

use std::net::Ipv4Addr;

use arbitrary::{Arbitrary, Unstructured};

pub mod hieradata;
pub mod hosts;
pub mod sitepp;

/// One register or deregister call.
#[derive(Debug, Clone)]
pub struct Op {
    pub add: bool,
    pub ip: Ipv4Addr,
    /// The hosts file's host name, the hieradata container name, the site.pp fqdn.
    pub name: String,
    /// The hieradata and site.pp service.
    pub service: String,
}

/// How an edit picks a name.
#[derive(Debug, Arbitrary)]
enum Pick {
    /// One of the names in the text.
    Existing(u8),
    /// One of the names in the text, in other letter case.
    Upper(u8),
    /// A name built from these bytes (made valid).
    Fresh(Vec<u8>),
    /// A few fixed names, so different edits collide.
    Fixed(u8),
}

#[derive(Debug, Arbitrary)]
struct RawOp {
    add: bool,
    ip: [u8; 4],
    name: Pick,
    service: Pick,
}

/// The file text and the edits to make on it.
#[derive(Debug)]
pub struct Input {
    pub text: String,
    pub ops: Vec<Op>,
}

const FIXED: &[&str] = &["a", "b.lab", "haproxy", "web1", "123", "yes", "x-y_z.lab"];

impl Input {
    pub fn decode(data: &[u8]) -> Input {
        let (text, script) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], Some(&data[i + 1..])),
            None => (data, None),
        };
        let text = String::from_utf8_lossy(text).into_owned();
        let pool = names_in(&text);
        let ops = match script {
            Some(script) => decode_ops(script, &pool),
            None => default_ops(&pool),
        };
        Input { text, ops }
    }
}

fn decode_ops(script: &[u8], pool: &[String]) -> Vec<Op> {
    let mut u = Unstructured::new(script);
    let mut ops = Vec::new();
    while ops.len() < 16 {
        let Ok(raw) = RawOp::arbitrary(&mut u) else {
            break;
        };
        ops.push(Op {
            add: raw.add,
            ip: Ipv4Addr::from(raw.ip),
            name: pick(&raw.name, pool),
            service: pick(&raw.service, pool),
        });
        if u.is_empty() {
            break;
        }
    }
    ops
}

fn pick(p: &Pick, pool: &[String]) -> String {
    let from_pool = |i: u8| {
        if pool.is_empty() {
            FIXED[usize::from(i) % FIXED.len()].to_string()
        } else {
            pool[usize::from(i) % pool.len()].clone()
        }
    };
    match p {
        Pick::Existing(i) => from_pool(*i),
        Pick::Upper(i) => from_pool(*i).to_ascii_uppercase(),
        Pick::Fixed(i) => FIXED[usize::from(*i) % FIXED.len()].to_string(),
        Pick::Fresh(bytes) => {
            const ALPHABET: &[u8] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
            let mut name: String = bytes
                .iter()
                .take(40)
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect();
            while name.starts_with(['-', '.']) {
                name.remove(0);
            }
            while name.ends_with('.') || name.contains("..") {
                name = name.trim_end_matches('.').replace("..", ".");
            }
            if is_name(&name) {
                name
            } else {
                "fresh1".to_string()
            }
        }
    }
}

/// Without a script: for four names of the text, register a fresh name to
/// it, deregister it, register the name itself and deregister it.
fn default_ops(pool: &[String]) -> Vec<Op> {
    let mut ops = Vec::new();
    let names: Vec<&str> = if pool.is_empty() {
        vec!["haproxy"]
    } else {
        // Spread over the text: the names that matter may come late.
        let mut at: Vec<usize> = (0..4).map(|k| k * (pool.len() - 1) / 3).collect();
        at.dedup();
        at.into_iter().map(|i| pool[i].as_str()).collect()
    };
    for (k, n) in names.iter().enumerate() {
        let fresh = format!("fuzz{k}.fresh.lab");
        let ip = Ipv4Addr::new(10, 9, 9, 1 + u8::try_from(k).unwrap_or(0));
        for (add, name, service) in [
            (true, fresh.as_str(), *n),
            (false, fresh.as_str(), *n),
            (true, *n, *n),
            (false, *n, *n),
        ] {
            ops.push(Op {
                add,
                ip,
                name: name.to_string(),
                service: service.to_string(),
            });
        }
    }
    ops
}

/// The names the editors accept (`regfiles::check_name`, which is private to
/// the server crate; the file-level functions check it before editing).
pub fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !value.starts_with(['-', '.'])
        && !value.ends_with('.')
        && !value.contains("..")
}

/// The valid names written in a text, first occurrence first, at most 32.
fn names_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        let token = token.trim_start_matches(['-', '.']).trim_end_matches('.');
        if is_name(token) && !out.iter().any(|n| n == token) {
            out.push(token.to_string());
            if out.len() == 32 {
                break;
            }
        }
    }
    out
}

/// Lines with their terminators, as the editors split them.
pub fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// A line without its terminator.
pub fn body(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// The line ending an editor gives new lines: the first line's.
pub fn eol_of(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// The text with its last line terminated by `eol`.
pub fn with_eol(text: &str, eol: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}{eol}")
    }
}

/// The text with its last line terminated, as an editor leaves it after
/// appending a line (with the file's own line ending).
pub fn terminated(text: &str) -> String {
    with_eol(text, eol_of(text))
}

/// Whether `small` is a subsequence of `big`.
pub fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}
