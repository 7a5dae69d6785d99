//! The dnsmasq addn-hosts file: `IP NAME [ALIAS...]` lines, `#` comments.
//!
//! Only lines naming the host are touched; every other byte (spacing such as
//! `10.0.0.1    dns1.endor.lab`, comments, blank lines) is kept as it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Change, RegistrationError, body, eol_of, lines_of, terminate_last};

/// One address line: the byte spans of its host names within the line.
struct Entry {
    ip: IpAddr,
    names: Vec<(usize, usize)>,
}

impl Entry {
    fn names_host(&self, line: &str, fqdn: &str) -> bool {
        self.names
            .iter()
            .any(|&(s, e)| line[s..e].eq_ignore_ascii_case(fqdn))
    }

    /// A line that is `IP FQDN` and nothing more: "the line for the host".
    /// `IP FQDN fqdn` is one too: taking the host out as an alias would
    /// leave an address without a name, which the file may not hold.
    fn is_only(&self, line: &str, fqdn: &str) -> bool {
        !self.names.is_empty()
            && self
                .names
                .iter()
                .all(|&(s, e)| line[s..e].eq_ignore_ascii_case(fqdn))
    }
}

/// Parses one line; `None` for blank and comment lines.
fn parse(line: &str, number: usize) -> Result<Option<Entry>, RegistrationError> {
    let content = body(line);
    let content = &content[..content.find('#').unwrap_or(content.len())];
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in content.char_indices() {
        match (c.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                tokens.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push((s, content.len()));
    }
    let Some(&(s, e)) = tokens.first() else {
        return Ok(None);
    };
    let ip: IpAddr = content[s..e].parse().map_err(|_| {
        RegistrationError::malformed(number, format!("{:?} is not an ip address", &content[s..e]))
    })?;
    if tokens.len() < 2 {
        return Err(RegistrationError::malformed(
            number,
            format!("address {ip} has no host name"),
        ));
    }
    Ok(Some(Entry {
        ip,
        names: tokens[1..].to_vec(),
    }))
}

fn parse_all(lines: &[String]) -> Result<Vec<Option<Entry>>, RegistrationError> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| parse(l, i + 1))
        .collect()
}

/// Drops `fqdn` (and the blank before it) from a line that has other names,
/// so their entries survive.
fn strip_alias(line: &str, entry: &Entry, fqdn: &str) -> String {
    let mut out = line.to_string();
    for (i, &(s, e)) in entry.names.iter().enumerate().rev() {
        if line[s..e].eq_ignore_ascii_case(fqdn) {
            let prev_end = if i == 0 {
                // The address token ends where the first name's blank starts.
                line[..s].trim_end().len()
            } else {
                entry.names[i - 1].1
            };
            out.replace_range(prev_end..e, "");
        }
    }
    out
}

/// Makes `IP FQDN` the host's line, and `IP6 FQDN` its IPv6 line when it
/// has one (dnsmasq answers A and AAAA queries from them): an existing
/// line of the host of each family is replaced where it stands, duplicates
/// and a line of a family it no longer has are dropped, and the host is
/// taken out of other lines that list it as an alias (it would resolve
/// twice).
pub fn add(
    text: &str,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    fqdn: &str,
) -> Result<(String, Change), RegistrationError> {
    let lines = lines_of(text);
    let entries = parse_all(&lines)?;
    let wanted: Vec<IpAddr> = std::iter::once(IpAddr::V4(ip))
        .chain(ip6.map(IpAddr::V6))
        .collect();
    let mentions: Vec<usize> = (0..lines.len())
        .filter(|&i| matches!(&entries[i], Some(e) if e.names_host(&lines[i], fqdn)))
        .collect();
    let as_wanted = mentions.len() == wanted.len()
        && wanted.iter().all(|w| {
            mentions.iter().any(
                |&i| matches!(&entries[i], Some(e) if e.ip == *w && e.is_only(&lines[i], fqdn)),
            )
        });
    if as_wanted {
        return Ok((text.to_string(), Change::Unchanged));
    }

    let eol = eol_of(text);
    let mut placed = vec![false; wanted.len()];
    let mut out = Vec::with_capacity(lines.len() + wanted.len());
    for (line, entry) in lines.iter().zip(&entries) {
        match entry {
            Some(e) if e.is_only(line, fqdn) => {
                let family = wanted
                    .iter()
                    .position(|w| w.is_ipv4() == e.ip.is_ipv4())
                    .filter(|&k| !placed[k]);
                if let Some(k) = family {
                    let end = if line.ends_with('\n') {
                        &line[body(line).len()..]
                    } else {
                        eol
                    };
                    out.push(format!("{} {fqdn}{end}", wanted[k]));
                    placed[k] = true;
                }
            }
            Some(e) if e.names_host(line, fqdn) => out.push(strip_alias(line, e, fqdn)),
            _ => out.push(line.clone()),
        }
    }
    for (k, w) in wanted.iter().enumerate() {
        if !placed[k] {
            terminate_last(&mut out, eol);
            out.push(format!("{w} {fqdn}{eol}"));
        }
    }
    let change = if mentions.is_empty() {
        Change::Added
    } else {
        Change::Replaced
    };
    Ok((out.concat(), change))
}

/// Deletes the host's lines and takes it out of lines where it is an alias.
pub fn remove(text: &str, fqdn: &str) -> Result<(String, Change), RegistrationError> {
    let lines = lines_of(text);
    let entries = parse_all(&lines)?;
    let mut changed = false;
    let mut out = Vec::with_capacity(lines.len());
    for (line, entry) in lines.iter().zip(&entries) {
        match entry {
            Some(e) if e.is_only(line, fqdn) => changed = true,
            Some(e) if e.names_host(line, fqdn) => {
                out.push(strip_alias(line, e, fqdn));
                changed = true;
            }
            _ => out.push(line.clone()),
        }
    }
    if changed {
        Ok((out.concat(), Change::Removed))
    } else {
        Ok((text.to_string(), Change::Unchanged))
    }
}

/// Every address a host name has in the file, in file order.
pub fn addresses(text: &str, fqdn: &str) -> Result<Vec<IpAddr>, RegistrationError> {
    let lines = lines_of(text);
    Ok(parse_all(&lines)?
        .iter()
        .zip(&lines)
        .filter_map(|(e, l)| e.as_ref().filter(|e| e.names_host(l, fqdn)).map(|e| e.ip))
        .collect())
}

/// The address a host name has in the file, if any (for callers and tests).
pub fn lookup(text: &str, fqdn: &str) -> Result<Option<IpAddr>, RegistrationError> {
    let lines = lines_of(text);
    Ok(parse_all(&lines)?
        .iter()
        .zip(&lines)
        .find_map(|(e, l)| e.as_ref().filter(|e| e.names_host(l, fqdn)).map(|e| e.ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn add_appends_and_terminates_last_line() {
        let (out, c) = add("10.0.0.1 a.lab", ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(out, "10.0.0.1 a.lab\n10.0.0.2 b.lab\n");
        assert_eq!(c, Change::Added);
        let (out, c) = add("", ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!((out.as_str(), c), ("10.0.0.2 b.lab\n", Change::Added));
    }

    #[test]
    fn add_replaces_in_place_and_drops_duplicates() {
        let text =
            "# lab\n10.0.0.1    a.lab\n10.0.0.9 b.lab # old\n10.0.0.3 c.lab\n10.0.0.8 B.lab\n";
        let (out, c) = add(text, ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(
            out,
            "# lab\n10.0.0.1    a.lab\n10.0.0.2 b.lab\n10.0.0.3 c.lab\n"
        );
        assert_eq!(c, Change::Replaced);
    }

    #[test]
    fn add_same_is_unchanged_even_with_odd_spacing() {
        let text = "10.0.0.1    a.lab\n";
        let (out, c) = add(text, ip("10.0.0.1"), None, "a.lab").unwrap();
        assert_eq!((out.as_str(), c), (text, Change::Unchanged));
    }

    #[test]
    fn alias_lines_keep_their_other_names() {
        let text = "10.0.0.5 x.lab b.lab  y.lab\n";
        let (out, c) = add(text, ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(out, "10.0.0.5 x.lab  y.lab\n10.0.0.2 b.lab\n");
        assert_eq!(c, Change::Replaced);
        let (out, c) = remove("10.0.0.5 b.lab x.lab\n", "b.lab").unwrap();
        assert_eq!((out.as_str(), c), ("10.0.0.5 x.lab\n", Change::Removed));
    }

    #[test]
    fn remove_only_touches_that_host() {
        let text = "10.0.0.1 a.lab\n10.0.0.2 b.lab\n10.0.0.22 bb.lab\n";
        let (out, c) = remove(text, "b.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            ("10.0.0.1 a.lab\n10.0.0.22 bb.lab\n", Change::Removed)
        );
        let (out, c) = remove(&out, "b.lab").unwrap();
        assert_eq!(c, Change::Unchanged);
        assert_eq!(out, "10.0.0.1 a.lab\n10.0.0.22 bb.lab\n");
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let (out, _) = add("10.0.0.1 a.lab\r\n", ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(out, "10.0.0.1 a.lab\r\n10.0.0.2 b.lab\r\n");
        let (out, _) = add(&out, ip("10.0.0.3"), None, "a.lab").unwrap();
        assert_eq!(out, "10.0.0.3 a.lab\r\n10.0.0.2 b.lab\r\n");
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (text, line) in [
            ("10.0.0.1 a.lab\nnot-an-ip b.lab\n", 2),
            ("10.0.0.1 a.lab\n\n10.0.0.2   # no name\n", 3),
            ("10.0.0.300 a.lab\n", 1),
        ] {
            for err in [
                add(text, ip("10.0.0.9"), None, "z.lab").unwrap_err(),
                remove(text, "z.lab").unwrap_err(),
            ] {
                assert!(
                    matches!(err, RegistrationError::Malformed { line: l, .. } if l == line),
                    "{text:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_line_naming_only_the_host_twice_is_its_line() {
        let text = "10.0.0.1 a.lab\n10.0.0.5 b.lab B.lab\n10.0.0.3 c.lab\n";
        let (out, c) = remove(text, "b.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            ("10.0.0.1 a.lab\n10.0.0.3 c.lab\n", Change::Removed)
        );
        let (out, c) = add(text, ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            (
                "10.0.0.1 a.lab\n10.0.0.2 b.lab\n10.0.0.3 c.lab\n",
                Change::Replaced
            )
        );
    }

    #[test]
    fn a_dual_stack_host_has_one_line_per_family() {
        let v6: Ipv6Addr = "fd00:10::5".parse().unwrap();
        let text = "# lab\n10.0.0.1 a.lab\n10.0.0.9 b.lab\n";
        let (out, c) = add(text, ip("10.0.0.5"), Some(v6), "b.lab").unwrap();
        assert_eq!(c, Change::Replaced);
        assert_eq!(
            out,
            "# lab\n10.0.0.1 a.lab\n10.0.0.5 b.lab\nfd00:10::5 b.lab\n"
        );
        assert_eq!(
            addresses(&out, "b.lab").unwrap(),
            vec![IpAddr::from(ip("10.0.0.5")), IpAddr::from(v6)]
        );
        // Again: unchanged, byte for byte.
        let (again, c) = add(&out, ip("10.0.0.5"), Some(v6), "b.lab").unwrap();
        assert_eq!((again.as_str(), c), (out.as_str(), Change::Unchanged));
        // A new IPv6 address replaces the line where it stands.
        let moved: Ipv6Addr = "fd00:10::6".parse().unwrap();
        let (out, _) = add(&out, ip("10.0.0.5"), Some(moved), "b.lab").unwrap();
        assert_eq!(
            out,
            "# lab\n10.0.0.1 a.lab\n10.0.0.5 b.lab\nfd00:10::6 b.lab\n"
        );
        // IPv4 only again: the AAAA line goes.
        let (out, c) = add(&out, ip("10.0.0.5"), None, "b.lab").unwrap();
        assert_eq!(c, Change::Replaced);
        assert_eq!(out, "# lab\n10.0.0.1 a.lab\n10.0.0.5 b.lab\n");
        // Remove takes both lines.
        let (out, _) = add(&out, ip("10.0.0.5"), Some(v6), "b.lab").unwrap();
        let (out, c) = remove(&out, "b.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            ("# lab\n10.0.0.1 a.lab\n", Change::Removed)
        );
    }

    #[test]
    fn ipv6_lines_are_accepted() {
        let text = "fe80::1 v6.lab\n";
        let (out, _) = add(text, ip("10.0.0.2"), None, "b.lab").unwrap();
        assert_eq!(out, "fe80::1 v6.lab\n10.0.0.2 b.lab\n");
        assert_eq!(
            lookup(&out, "b.lab").unwrap(),
            Some("10.0.0.2".parse().unwrap())
        );
    }
}
