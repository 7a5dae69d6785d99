//! Hieradata `registered_services`: the container names registered for each
//! Puppet service, a map of block sequences in PyYAML's style:
//!
//! ```yaml
//! registered_services:
//!   haproxy:
//!   - haproxy1
//!   redis:
//! ```
//!
//! This is a line editor for that one structure, not a YAML rewriter. The
//! `yaml-edit` crate (0.3) was tried: it keeps untouched text, but turning the
//! null `redis:` into a list indents the items under the key (`    - redis1`),
//! a new key gets the same deeper indentation, an emptied list is written as
//! `[]` (and null as `redis: null`) where PyYAML wrote `redis:`, and its parser
//! accepts tab indentation and bad nesting. So the whole file is validated by
//! a strict YAML parser (serde-saphyr) first, the lines of
//! `registered_services` are edited directly, and the result is parsed again
//! and checked to hold exactly the intended data before it may be written.

use std::collections::BTreeMap;

use super::{Change, RegistrationError, body, eol_of, lines_of, terminate_last};

const KEY: &str = "registered_services";

/// The registered names per service, as a YAML reader sees them.
pub type Registered = BTreeMap<String, Vec<String>>;

#[derive(serde::Deserialize)]
struct Hiera {
    #[serde(default)]
    registered_services: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// Parses the whole document strictly and returns `registered_services`
/// (`None` when the key is absent or null).
pub fn registered(text: &str) -> Result<Option<Registered>, RegistrationError> {
    let hiera: Hiera = serde_saphyr::from_str(text).map_err(|e| {
        let line = e
            .location()
            .map_or(1, |l| usize::try_from(l.line()).unwrap_or(usize::MAX));
        RegistrationError::malformed(
            line,
            format!(
                "not valid hieradata ({KEY} must map services to lists of names): {}",
                e.without_snippet()
            ),
        )
    })?;
    Ok(hiera.registered_services.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    }))
}

/// Adds `name` to `registered_services.<service>`, creating the map, the
/// service key, or a list in place of null as needed.
pub fn add(text: &str, service: &str, name: &str) -> Result<(String, Change), RegistrationError> {
    let before = registered(text)?;
    // What the parser reads counts, also where the lines do not show it
    // (escapes in double quotes, merge keys).
    if listed(&before, service, name) {
        return Ok((text.to_string(), Change::Unchanged));
    }
    let mut lines = lines_of(text);
    let doc = scan(&lines)?;
    let eol = eol_of(text);
    let item = |indent: &str, dash: &str| format!("{indent}-{dash}{}{eol}", scalar(name));

    match &doc.block {
        None => {
            if let Some(end) = doc.document_end {
                return Err(RegistrationError::unsupported(
                    end,
                    format!("cannot append {KEY} after a document marker"),
                ));
            }
            terminate_last(&mut lines, eol);
            lines.push(format!("{KEY}:{eol}"));
            lines.push(format!("  {service}:{eol}"));
            lines.push(item("  ", " "));
        }
        Some(block) => {
            if let Some((line, why)) = &block.unsupported {
                return Err(RegistrationError::unsupported(*line, why.clone()));
            }
            match block.services.iter().find(|s| s.name == service) {
                None => {
                    let child = block.child_indent.unwrap_or(2);
                    let ci = " ".repeat(child);
                    let at = block.last_line;
                    if block.inline_null {
                        lines[block.key_line] = drop_inline_null(&lines[block.key_line], eol);
                    }
                    let new = [
                        format!("{ci}{service}:{eol}"),
                        item(&" ".repeat(child + block.list_offset), " "),
                    ];
                    insert_after(&mut lines, at, &new, eol);
                }
                Some(svc) => {
                    if let Some((line, why)) = &svc.unsupported {
                        return Err(RegistrationError::unsupported(*line, why.clone()));
                    }
                    if svc.items.iter().any(|i| i.value == name) {
                        return Ok((text.to_string(), Change::Unchanged));
                    }
                    let (at, new) = match svc.items.last() {
                        Some(last) => (last.line, item(&last.indent, &last.dash)),
                        None => {
                            let indent = " ".repeat(svc.indent + block.list_offset);
                            (svc.key_line, item(&indent, " "))
                        }
                    };
                    if svc.inline_null {
                        lines[svc.key_line] = drop_inline_null(&lines[svc.key_line], eol);
                    }
                    insert_after(&mut lines, at, &[new], eol);
                }
            }
        }
    }

    let out = lines.concat();
    let mut expected = before.unwrap_or_default();
    expected
        .entry(service.to_string())
        .or_default()
        .push(name.to_string());
    verify(&out, &expected, &doc)?;
    Ok((out, Change::Added))
}

/// Removes `name` from `registered_services.<service>`. An emptied list
/// leaves the key alone on its line, which YAML reads as null.
pub fn remove(
    text: &str,
    service: &str,
    name: &str,
) -> Result<(String, Change), RegistrationError> {
    let before = registered(text)?;
    let lines = lines_of(text);
    let doc = scan(&lines)?;
    // Nothing to take out, unless the parser reads the name where the lines
    // do not show it (escapes in double quotes, merge keys): saying it is
    // gone would leave it registered.
    let unchanged = |line: usize| {
        if listed(&before, service, name) {
            Err(RegistrationError::unsupported(
                line,
                format!(
                    "{KEY}.{service} lists {name}, but not on a line of its own that can be \
                     taken out (an escape in quotes, an alias or a merge key?); file left untouched"
                ),
            ))
        } else {
            Ok((text.to_string(), Change::Unchanged))
        }
    };
    let Some(block) = &doc.block else {
        return unchanged(1);
    };
    if let Some((line, why)) = &block.unsupported {
        return Err(RegistrationError::unsupported(*line, why.clone()));
    }
    let Some(svc) = block.services.iter().find(|s| s.name == service) else {
        return unchanged(block.key_line + 1);
    };
    if let Some((line, why)) = &svc.unsupported {
        return Err(RegistrationError::unsupported(*line, why.clone()));
    }
    // A set: a hostile master's file may list the name 250,000 times, and
    // every line is looked up once (one pass, not lines × duplicates).
    let drop: std::collections::HashSet<usize> = svc
        .items
        .iter()
        .filter(|i| i.value == name)
        .map(|i| i.line)
        .collect();
    if drop.is_empty() {
        return unchanged(svc.key_line + 1);
    }
    let out: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, l)| l.as_str())
        .collect();
    let mut expected = before.unwrap_or_default();
    if let Some(list) = expected.get_mut(service) {
        list.retain(|n| n != name);
    }
    verify(&out, &expected, &doc)?;
    Ok((out, Change::Removed))
}

fn listed(registered: &Option<Registered>, service: &str, name: &str) -> bool {
    registered
        .as_ref()
        .and_then(|r| r.get(service))
        .is_some_and(|names| names.iter().any(|n| n == name))
}

/// The safety net of the line editor: the edited text must parse and hold
/// exactly the intended `registered_services`, or nothing is written.
fn verify(out: &str, expected: &Registered, doc: &Doc) -> Result<(), RegistrationError> {
    let line = doc.block.as_ref().map_or(1, |b| b.key_line + 1);
    let fail = |detail: String| {
        RegistrationError::unsupported(
            line,
            format!(
                "editing {KEY} here would not give the intended data ({detail}); file left untouched"
            ),
        )
    };
    match registered(out) {
        Ok(Some(got)) if &got == expected => Ok(()),
        Ok(got) => Err(fail(format!("got {got:?}"))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// A YAML plain scalar for a checked name (see `check_name`), quoted when a
/// YAML 1.1 reader such as Puppet's would take it for a number, bool or null.
fn scalar(name: &str) -> String {
    const SPECIAL: &[&str] = &[
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    let word = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !SPECIAL.contains(&name.to_ascii_lowercase().as_str());
    if word {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

fn insert_after(lines: &mut Vec<String>, at: usize, new: &[String], eol: &str) {
    if !lines[at].ends_with('\n') {
        lines[at].push_str(eol);
    }
    for (k, l) in new.iter().enumerate() {
        lines.insert(at + 1 + k, l.clone());
    }
}

/// `key: ~  # note` → `key:  # note`, so a block list can follow.
fn drop_inline_null(line: &str, eol: &str) -> String {
    let text = body(line);
    let colon = key_colon(text).unwrap_or(text.len());
    let rest = &text[colon + 1..];
    let comment = rest.find('#').map(|i| &rest[i..]);
    let end = if line.ends_with('\n') { eol } else { "" };
    match comment {
        Some(c) => format!("{}: {c}{end}", &text[..colon]),
        None => format!("{}:{end}", &text[..colon]),
    }
}

/// What the scan found in the document.
struct Doc {
    block: Option<Block>,
    /// Line (1-based) of a `---`/`...` marker after the start of the document.
    document_end: Option<usize>,
}

/// The `registered_services:` block. Line indexes are 0-based.
struct Block {
    key_line: usize,
    inline_null: bool,
    /// The last content line of the block (the key line if it has none).
    last_line: usize,
    child_indent: Option<usize>,
    /// Where the dashes of lists stand relative to their key (0 in PyYAML's
    /// style), taken from the first list so new lists look like the others.
    list_offset: usize,
    services: Vec<Service>,
    /// Why the block as a whole cannot be edited, with its 1-based line.
    unsupported: Option<(usize, String)>,
}

struct Service {
    name: String,
    key_line: usize,
    indent: usize,
    inline_null: bool,
    items: Vec<Item>,
    /// Why this service's value cannot be edited, with its 1-based line.
    unsupported: Option<(usize, String)>,
}

struct Item {
    line: usize,
    indent: String,
    /// The blanks between `-` and the value.
    dash: String,
    value: String,
}

fn indent_of(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

fn is_null(value: &str) -> bool {
    matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// The value part after a key's colon, without its comment.
fn strip_comment(rest: &str) -> &str {
    let mut prev_blank = true;
    for (i, c) in rest.char_indices() {
        if c == '#' && prev_blank {
            return rest[..i].trim();
        }
        prev_blank = c == ' ' || c == '\t';
    }
    rest.trim()
}

/// Byte index of the colon that ends a block mapping key, if the line is one.
fn key_colon(text: &str) -> Option<usize> {
    let t = text.trim_start_matches(' ');
    let offset = text.len() - t.len();
    let after_key = match t.chars().next()? {
        q @ ('\'' | '"') => {
            let end = quoted_end(t, q)?;
            t[end..].find(|c| c != ' ').map(|i| end + i)?
        }
        '-' if t.len() == 1 || t[1..].starts_with([' ', '\t']) => return None,
        '#' => return None,
        _ => {
            let b = t.as_bytes();
            return (0..b.len())
                .find(|&i| b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' '))
                .map(|i| offset + i);
        }
    };
    t[after_key..]
        .starts_with(':')
        .then_some(offset + after_key)
}

/// Byte index just past the closing quote of a scalar starting at `t[0]`.
fn quoted_end(t: &str, q: char) -> Option<usize> {
    let mut chars = t.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if q == '"' && c == '\\' {
            chars.next();
        } else if c == q {
            if q == '\'' && t[i + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            return Some(i + 1);
        }
    }
    None
}

fn unquote(t: &str) -> String {
    match t.chars().next() {
        Some('\'') => t[1..t.len() - 1].replace("''", "'"),
        Some('"') => t[1..t.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\"),
        _ => t.to_string(),
    }
}

/// A key's name, unquoted.
fn key_name(text: &str, colon: usize) -> String {
    unquote(text[..colon].trim())
}

/// A sequence item's scalar, or why it is not one this editor handles.
fn item_value(rest: &str) -> Result<String, &'static str> {
    let t = rest.trim_start();
    match t.chars().next() {
        None | Some('#') => Err("a list item without a value on its line"),
        Some(q @ ('\'' | '"')) => {
            let end = quoted_end(t, q).ok_or("a quoted item spanning lines")?;
            if !strip_comment(&t[end..]).is_empty() {
                return Err("text after a quoted item");
            }
            Ok(unquote(&t[..end]))
        }
        Some('[' | '{' | '&' | '*' | '!' | '|' | '>' | '-' | '?') => {
            Err("a list item that is not a plain name")
        }
        _ if key_colon(t).is_some() => Err("a list item that is a map"),
        _ => Ok(strip_comment(t).to_string()),
    }
}

/// Finds the `registered_services` block and its services. Relies on the
/// document having passed the strict parser, so indentation is consistent.
fn scan(lines: &[String]) -> Result<Doc, RegistrationError> {
    let mut doc = Doc {
        block: None,
        document_end: None,
    };
    let mut seen_content = false;
    let mut i = 0;
    while i < lines.len() {
        let text = body(&lines[i]);
        let content = !text.trim().is_empty() && !text.trim_start().starts_with('#');
        if content && indent_of(text) == 0 {
            if text.starts_with("---") || text.starts_with("...") {
                if seen_content {
                    doc.document_end.get_or_insert(i + 1);
                }
            } else if let Some(colon) = key_colon(text)
                && key_name(text, colon) == KEY
            {
                if doc.block.is_some() {
                    return Err(RegistrationError::malformed(
                        i + 1,
                        format!("{KEY} appears twice"),
                    ));
                }
                let (block, next) = scan_block(lines, i, colon)?;
                doc.block = Some(block);
                seen_content = true;
                i = next;
                continue;
            }
            seen_content = true;
        }
        i += 1;
    }
    Ok(doc)
}

/// Scans the block starting at its key line; returns it and the index of the
/// first line after it.
fn scan_block(
    lines: &[String],
    key_line: usize,
    colon: usize,
) -> Result<(Block, usize), RegistrationError> {
    let text = body(&lines[key_line]);
    let value = strip_comment(&text[colon + 1..]);
    let mut block = Block {
        key_line,
        inline_null: !value.is_empty() && is_null(value),
        last_line: key_line,
        child_indent: None,
        list_offset: 0,
        services: Vec::new(),
        unsupported: (!is_null(value)).then(|| {
            (
                key_line + 1,
                format!("{KEY} written as {value:?} is not edited; write it as a block map"),
            )
        }),
    };
    let mut offset_seen = false;
    let mut i = key_line + 1;
    while i < lines.len() {
        let text = body(&lines[i]);
        let trimmed = text.trim_start_matches(' ');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let indent = indent_of(text);
        if indent == 0 {
            break;
        }
        if trimmed.starts_with('\t') {
            return Err(RegistrationError::malformed(i + 1, "tab in indentation"));
        }
        block.last_line = i;
        let child = *block.child_indent.get_or_insert(indent);
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        if indent < child {
            return Err(RegistrationError::malformed(
                i + 1,
                format!("indentation of {indent} is less than the {child} of the lines above"),
            ));
        }
        if indent == child && !is_item {
            let Some(colon) = key_colon(text) else {
                return Err(RegistrationError::malformed(
                    i + 1,
                    format!("expected a service key in {KEY}"),
                ));
            };
            let value = strip_comment(&text[colon + 1..]);
            block.services.push(Service {
                name: key_name(text, colon),
                key_line: i,
                indent,
                inline_null: !value.is_empty() && is_null(value),
                items: Vec::new(),
                unsupported: (!is_null(value)).then(|| {
                    (
                        i + 1,
                        format!(
                            "a service written as {value:?} is not edited; write it as a block list"
                        ),
                    )
                }),
            });
            i += 1;
            continue;
        }
        let Some(svc) = block.services.last_mut() else {
            return Err(RegistrationError::malformed(
                i + 1,
                format!("expected a service key in {KEY}"),
            ));
        };
        if !is_item {
            svc.unsupported.get_or_insert((
                i + 1,
                format!("the value of {KEY}.{} is not a list of names", svc.name),
            ));
            i += 1;
            continue;
        }
        let after = &trimmed[1..];
        let dash_len = after.len() - after.trim_start_matches(' ').len();
        match item_value(after) {
            Ok(value) => {
                if !offset_seen {
                    block.list_offset = indent - svc.indent;
                    offset_seen = true;
                }
                svc.items.push(Item {
                    line: i,
                    indent: " ".repeat(indent),
                    dash: after[..dash_len].to_string(),
                    value,
                });
            }
            Err(why) => {
                svc.unsupported.get_or_insert((
                    i + 1,
                    format!("{KEY}.{} has {why}; it is not edited", svc.name),
                ));
            }
        }
        i += 1;
    }
    Ok((block, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "common:\n  domain: lab\nregistered_services:\n  dns:\n  haproxy:\n  - haproxy1\n  redis:\nother: 1\n";

    #[test]
    fn add_to_list_null_and_new_key() {
        let (out, c) = add(BASE, "haproxy", "haproxy2").unwrap();
        assert_eq!(c, Change::Added);
        assert_eq!(
            out,
            BASE.replace("  - haproxy1\n", "  - haproxy1\n  - haproxy2\n")
        );
        let (out, _) = add(BASE, "redis", "redis1").unwrap();
        assert_eq!(out, BASE.replace("  redis:\n", "  redis:\n  - redis1\n"));
        let (out, _) = add(BASE, "memcache", "mc1").unwrap();
        assert_eq!(
            out,
            BASE.replace("  redis:\n", "  redis:\n  memcache:\n  - mc1\n")
        );
    }

    /// One pass: 200,000 duplicates of a name take well under the bound
    /// (the editor that looked each line up in the list of lines to drop
    /// took minutes, under the file's lock).
    #[test]
    fn a_name_listed_200000_times_is_taken_out_in_one_pass() {
        let mut text = String::from("registered_services:\n  web:\n");
        for _ in 0..200_000 {
            text.push_str("  - a\n");
        }
        text.push_str("  - b\n");
        let began = std::time::Instant::now();
        let (out, c) = remove(&text, "web", "a").unwrap();
        assert_eq!(c, Change::Removed);
        assert_eq!(out, "registered_services:\n  web:\n  - b\n");
        let took = began.elapsed();
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    }

    #[test]
    fn creates_the_map_when_missing() {
        let (out, _) = add("common:\n  a: 1", "web", "web1").unwrap();
        assert_eq!(
            out,
            "common:\n  a: 1\nregistered_services:\n  web:\n  - web1\n"
        );
        let (out, _) = add("", "web", "web1").unwrap();
        assert_eq!(out, "registered_services:\n  web:\n  - web1\n");
        let (out, _) = add("a: 1\nregistered_services:\nb: 2\n", "web", "web1").unwrap();
        assert_eq!(out, "a: 1\nregistered_services:\n  web:\n  - web1\nb: 2\n");
        let (out, _) = add("registered_services: ~ # none yet\n", "web", "web1").unwrap();
        assert_eq!(out, "registered_services: # none yet\n  web:\n  - web1\n");
    }

    #[test]
    fn follows_an_indented_list_style() {
        let text = "registered_services:\n    web:\n      - web1   # first\n    db:\n";
        let (out, _) = add(text, "web", "web2").unwrap();
        assert_eq!(out, text.replace("# first\n", "# first\n      - web2\n"));
        let (out, _) = add(text, "db", "db1").unwrap();
        assert_eq!(out, format!("{text}      - db1\n"));
        let (out, _) = add(text, "mq", "mq1").unwrap();
        assert_eq!(out, format!("{text}    mq:\n      - mq1\n"));
    }

    #[test]
    fn remove_makes_an_emptied_list_null() {
        let (added, _) = add(BASE, "redis", "redis1").unwrap();
        let (out, c) = remove(&added, "redis", "redis1").unwrap();
        assert_eq!((out.as_str(), c), (BASE, Change::Removed));
        let (out, _) = remove(BASE, "haproxy", "haproxy1").unwrap();
        assert_eq!(out, BASE.replace("  - haproxy1\n", ""));
        assert_eq!(
            registered(&out).unwrap().unwrap()["haproxy"],
            Vec::<String>::new()
        );
    }

    #[test]
    fn idempotent() {
        let (once, _) = add(BASE, "haproxy", "haproxy2").unwrap();
        let (twice, c) = add(&once, "haproxy", "haproxy2").unwrap();
        assert_eq!((twice.as_str(), c), (once.as_str(), Change::Unchanged));
        for (svc, name) in [("haproxy", "nope"), ("nope", "x"), ("dns", "x")] {
            let (out, c) = remove(BASE, svc, name).unwrap();
            assert_eq!((out.as_str(), c), (BASE, Change::Unchanged));
        }
        let (out, c) = add("registered_services:\n  a:\n  - 'x1' # q\n", "a", "x1").unwrap();
        assert_eq!(c, Change::Unchanged);
        assert_eq!(out, "registered_services:\n  a:\n  - 'x1' # q\n");
    }

    #[test]
    fn ambiguous_names_are_quoted() {
        let (out, _) = add("registered_services:\n", "web", "123").unwrap();
        assert_eq!(out, "registered_services:\n  web:\n  - '123'\n");
        let (out, c) = remove(&out, "web", "123").unwrap();
        assert_eq!(
            (out.as_str(), c),
            ("registered_services:\n  web:\n", Change::Removed)
        );
        assert_eq!(scalar("yes"), "'yes'");
        assert_eq!(scalar("web1"), "web1");
    }

    #[test]
    fn malformed_yaml_is_refused_with_its_line() {
        for (text, line) in [
            ("a:\n\tb: 1\n", 2),
            ("registered_services:\n  a:\n  - x\n b:\n", 4),
            ("registered_services: 3\n", 1),
            ("registered_services:\n  a: [x\n", 2),
            ("registered_services:\n  a:\n  - x\n  a:\n", 4),
            ("registered_services:\n  a:\n  - b: 1\n", 3),
            ("- a\n- b\n", 1),
        ] {
            for r in [add(text, "a", "y"), remove(text, "a", "x")] {
                let err = r.unwrap_err();
                assert!(
                    matches!(err, RegistrationError::Malformed { line: l, .. } if l == line),
                    "{text:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn layouts_it_cannot_edit_losslessly_are_refused() {
        for (text, line) in [
            ("registered_services: {a: [x]}\n", 1),
            ("registered_services:\n  a: [x]\n", 2),
            ("x: &r\n  a:\n  - x\nregistered_services: *r\n", 4),
            ("registered_services:\n  a:\n  -\n    x\n", 3),
        ] {
            let err = add(text, "a", "y").unwrap_err();
            assert!(
                matches!(err, RegistrationError::Unsupported { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
        }
        // Other services' layout does not matter.
        let text = "registered_services:\n  a: [x]\n  b:\n  - y\n";
        let (out, _) = add(text, "b", "z").unwrap();
        assert_eq!(out, format!("{text}  - z\n"));
    }

    #[test]
    fn keeps_comments_markers_and_line_endings() {
        let text = "---\n# hiera\nregistered_services:   # map\n  # services\n  web:\n  - a  # first\n\n  # end\nother: 1";
        let (out, _) = add(text, "web", "b").unwrap();
        assert_eq!(out, text.replace("# first\n", "# first\n  - b\n"));
        let (out, _) = add(text, "db", "d").unwrap();
        assert_eq!(out, text.replace("# first\n", "# first\n  db:\n  - d\n"));
        let (out, _) = remove(text, "web", "a").unwrap();
        assert_eq!(out, text.replace("  - a  # first\n", ""));

        let text = "registered_services:\n  web:\n  - a";
        let (out, _) = add(text, "web", "b").unwrap();
        assert_eq!(out, "registered_services:\n  web:\n  - a\n  - b\n");
        let (out, _) = add("x: 1\r\nregistered_services:\r\n  web:\r\n", "web", "b").unwrap();
        assert_eq!(out, "x: 1\r\nregistered_services:\r\n  web:\r\n  - b\r\n");
        let (out, _) = add(
            "\"registered_services\":\n  'web': null # none\n",
            "web",
            "b",
        )
        .unwrap();
        assert_eq!(out, "\"registered_services\":\n  'web': # none\n  - b\n");
    }

    #[test]
    fn names_the_lines_do_not_show_are_not_reported_gone() {
        for (text, line) in [
            ("registered_services:\n  web:\n  - \"a\\x41\"\n", 2),
            ("registered_services:\n  \"w\\x65b\":\n  - aA\n", 1),
            ("d: &d\n  web:\n  - aA\nregistered_services:\n  <<: *d\n", 4),
        ] {
            let err = remove(text, "web", "aA").unwrap_err();
            assert!(
                matches!(err, RegistrationError::Unsupported { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
            let (out, c) = add(text, "web", "aA").unwrap();
            assert_eq!((out.as_str(), c), (text, Change::Unchanged));
        }
    }

    #[test]
    fn refuses_to_append_after_a_document_end() {
        let err = add("a: 1\n...\n", "web", "web1").unwrap_err();
        assert!(
            matches!(err, RegistrationError::Unsupported { line: 2, .. }),
            "{err}"
        );
    }
}
