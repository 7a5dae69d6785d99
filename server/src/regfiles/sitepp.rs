//! Puppet `site.pp`: the host names listed on `node '<service>' ... {` lines.
//!
//! The 2015 tool appended each host as ` ,'fqdn'` before the ` {`
//! (`node 'haproxy' ,'haproxy1.endor.lab' {`), and removing takes exactly
//! that text out again. The file is lexed (strings, comments, heredocs,
//! regexes, brackets) so a stray quote or brace anywhere is refused with its
//! line instead of producing a manifest the master cannot parse.

use super::{Change, RegistrationError, SiteChange};

/// One node name: its token's byte span in the file and its value.
#[derive(Debug, Clone)]
pub struct NodeName {
    pub start: usize,
    pub end: usize,
    pub value: String,
}

/// A `node NAME, NAME ... {` header.
#[derive(Debug, Clone)]
pub struct NodeHeader {
    /// 1-based line of the `node` keyword.
    pub line: usize,
    pub names: Vec<NodeName>,
}

impl NodeHeader {
    fn has(&self, fqdn: &str) -> bool {
        self.names
            .iter()
            .any(|n| n.value.eq_ignore_ascii_case(fqdn))
    }
}

/// Appends ` ,'fqdn'` to the names of the service's node definition.
pub fn add(
    text: &str,
    service: &str,
    fqdn: &str,
) -> Result<(String, SiteChange), RegistrationError> {
    let headers = parse(text)?;
    let Some(node) = find(&headers, service)? else {
        return Ok((text.to_string(), SiteChange::NoNodeLine));
    };
    if node.has(fqdn) {
        return Ok((text.to_string(), SiteChange::Changed(Change::Unchanged)));
    }
    // Puppet refuses a catalog for a host matched by two node definitions.
    if let Some(other) = headers.iter().find(|h| h.line != node.line && h.has(fqdn)) {
        return Err(RegistrationError::conflict(
            other.line,
            format!(
                "{fqdn} is already listed for node '{}'; remove it there first",
                other.names[0].value
            ),
        ));
    }
    let at = node.names.last().map_or(0, |n| n.end);
    let out = format!("{} ,'{fqdn}'{}", &text[..at], &text[at..]);
    Ok((out, SiteChange::Changed(Change::Added)))
}

/// Takes `'fqdn'` and the separator before it out of the service's node
/// definition.
pub fn remove(
    text: &str,
    service: &str,
    fqdn: &str,
) -> Result<(String, SiteChange), RegistrationError> {
    let headers = parse(text)?;
    let Some(node) = find(&headers, service)? else {
        return Ok((text.to_string(), SiteChange::NoNodeLine));
    };
    // The first name is the service itself and stays; each later one goes
    // with the separator before it. The text is copied once around the
    // spans dropped: a line of many duplicates costs one pass, not one
    // copy of the file per duplicate.
    let mut out = String::with_capacity(text.len());
    let mut kept_from = 0;
    let mut changed = false;
    for k in 1..node.names.len() {
        if node.names[k].value.eq_ignore_ascii_case(fqdn) {
            let (start, end) = (node.names[k - 1].end, node.names[k].end);
            // A run of duplicates: the span starts where the last one ended.
            out.push_str(&text[kept_from..start.max(kept_from)]);
            kept_from = end;
            changed = true;
        }
    }
    out.push_str(&text[kept_from..]);
    let change = if changed {
        Change::Removed
    } else {
        Change::Unchanged
    };
    Ok((out, SiteChange::Changed(change)))
}

fn find<'a>(
    headers: &'a [NodeHeader],
    service: &str,
) -> Result<Option<&'a NodeHeader>, RegistrationError> {
    let mut matching = headers.iter().filter(|h| h.names[0].value == service);
    let first = matching.next();
    if let (Some(a), Some(b)) = (first, matching.next()) {
        return Err(RegistrationError::malformed(
            b.line,
            format!(
                "node '{service}' is defined again (first on line {})",
                a.line
            ),
        ));
    }
    Ok(first)
}

/// Lexes the whole manifest and returns its node headers, refusing
/// unterminated strings, comments and heredocs and unbalanced brackets.
pub fn parse(text: &str) -> Result<Vec<NodeHeader>, RegistrationError> {
    Lexer::new(text).run()
}

/// Where the lexer is within a node header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Outside,
    /// After `node` or a comma: a name or (after a comma) the `{` comes next.
    WantName,
    /// After a name: a comma or the `{` comes next.
    WantSep,
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    /// Open brackets with the line each was opened on.
    stack: Vec<(u8, usize)>,
    headers: Vec<NodeHeader>,
    header: Header,
    /// Heredoc tags whose bodies start after the current line.
    heredocs: Vec<(String, usize)>,
    /// The previous two significant bytes, to spot `=~`/`!~` before a regex.
    prev: [u8; 2],
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-')
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            stack: Vec::new(),
            headers: Vec::new(),
            header: Header::Outside,
            heredocs: Vec::new(),
            prev: [b' ', b' '],
        }
    }

    fn err(&self, line: usize, message: impl Into<String>) -> RegistrationError {
        RegistrationError::malformed(line, message)
    }

    fn header_err(&self, found: &str) -> RegistrationError {
        let line = self.headers.last().map_or(self.line, |h| h.line);
        let expected = match self.header {
            Header::WantName => "a node name",
            _ => "',' or '{'",
        };
        self.err(
            line,
            format!(
                "node definition: expected {expected}, found {found} on line {}",
                self.line
            ),
        )
    }

    fn run(mut self) -> Result<Vec<NodeHeader>, RegistrationError> {
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.skip_heredoc_bodies()?;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'#' => self.skip_line_comment(),
                b'/' if self.bytes.get(self.pos + 1) == Some(&b'*') => self.skip_block_comment()?,
                b'/' if self.header == Header::WantName
                    || self.prev == [b'=', b'~']
                    || self.prev == [b'!', b'~'] =>
                {
                    let start = self.pos;
                    self.skip_regex()?;
                    self.name(start, self.text[start..self.pos].to_string())?;
                }
                b'\'' | b'"' => {
                    let start = self.pos;
                    let value = self.string(b)?;
                    self.name(start, value)?;
                }
                b'@' if self.bytes.get(self.pos + 1) == Some(&b'(') => self.heredoc_tag()?,
                b'$' => {
                    self.pos += 1;
                    self.skip_word();
                    self.not_in_header("a variable")?;
                }
                b'{' | b'(' | b'[' => {
                    if b == b'{' && self.header != Header::Outside {
                        if self.header == Header::WantName
                            && self.headers.last().is_some_and(|h| h.names.is_empty())
                        {
                            return Err(self.header_err("'{'"));
                        }
                        self.header = Header::Outside;
                    } else {
                        self.not_in_header(&format!("'{}'", b as char))?;
                    }
                    self.stack.push((b, self.line));
                    self.pos += 1;
                }
                b'}' | b')' | b']' => {
                    self.not_in_header(&format!("'{}'", b as char))?;
                    let open = match b {
                        b'}' => b'{',
                        b')' => b'(',
                        _ => b'[',
                    };
                    match self.stack.pop() {
                        Some((o, _)) if o == open => {}
                        Some((o, l)) => {
                            return Err(self.err(
                                self.line,
                                format!(
                                    "'{}' does not close the '{}' opened on line {l}",
                                    b as char, o as char
                                ),
                            ));
                        }
                        None => {
                            return Err(self.err(self.line, format!("unbalanced '{}'", b as char)));
                        }
                    }
                    self.pos += 1;
                }
                b',' if self.header == Header::WantSep => {
                    self.header = Header::WantName;
                    self.pos += 1;
                }
                _ if is_word(b) => {
                    let (start, line) = (self.pos, self.line);
                    self.skip_word();
                    let word = &self.text[start..self.pos];
                    if word == "node" && self.header == Header::Outside && self.stack.is_empty() {
                        self.headers.push(NodeHeader {
                            line,
                            names: Vec::new(),
                        });
                        self.header = Header::WantName;
                    } else {
                        self.name(start, word.to_string())?;
                    }
                }
                _ => {
                    self.not_in_header(&format!(
                        "'{}'",
                        self.text[self.pos..].chars().next().unwrap_or('?')
                    ))?;
                    self.pos += self.text[self.pos..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                }
            }
            if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                self.prev = [self.prev[1], b];
            }
        }
        if let Some(h) = self.headers.last()
            && self.header != Header::Outside
        {
            return Err(self.err(h.line, "node definition has no body"));
        }
        if let Some(&(o, l)) = self.stack.last() {
            return Err(self.err(l, format!("unclosed '{}'", o as char)));
        }
        if let Some((tag, l)) = self.heredocs.first() {
            return Err(self.err(*l, format!("heredoc {tag} has no end")));
        }
        Ok(self.headers)
    }

    /// A string, word or regex: a node name inside a header, nothing outside.
    fn name(&mut self, start: usize, value: String) -> Result<(), RegistrationError> {
        match self.header {
            Header::Outside => Ok(()),
            Header::WantName => {
                let end = self.pos;
                if let Some(h) = self.headers.last_mut() {
                    h.names.push(NodeName { start, end, value });
                }
                self.header = Header::WantSep;
                Ok(())
            }
            Header::WantSep => Err(self.header_err(&format!("{:?}", &self.text[start..self.pos]))),
        }
    }

    fn not_in_header(&self, what: &str) -> Result<(), RegistrationError> {
        if self.header == Header::Outside {
            Ok(())
        } else {
            Err(self.header_err(what))
        }
    }

    fn skip_word(&mut self) {
        while self.pos < self.bytes.len() && is_word(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn skip_line_comment(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), RegistrationError> {
        let line = self.line;
        match self.text[self.pos + 2..].find("*/") {
            Some(i) => {
                let end = self.pos + 2 + i + 2;
                self.line += self.text[self.pos..end].matches('\n').count();
                self.pos = end;
                Ok(())
            }
            None => Err(self.err(line, "unterminated comment")),
        }
    }

    fn skip_regex(&mut self) -> Result<(), RegistrationError> {
        let line = self.line;
        self.pos += 1;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\\' => self.pos += 2,
                b'/' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\n' => break,
                _ => self.pos += 1,
            }
        }
        Err(self.err(line, "unterminated regex"))
    }

    /// Scans a quoted string from its opening quote and returns its text
    /// (escapes of the quote and backslash resolved).
    fn string(&mut self, quote: u8) -> Result<String, RegistrationError> {
        let line = self.line;
        self.pos += 1;
        let mut value = String::new();
        let mut run = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\\' => {
                    value.push_str(&self.text[run..self.pos]);
                    match self.bytes.get(self.pos + 1) {
                        Some(&n) if n == quote || n == b'\\' => value.push(n as char),
                        _ => {}
                    }
                    if self.bytes.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    // Past the whole escaped character, which may be more
                    // than one byte.
                    let escaped = self.text[self.pos + 1..].chars().next();
                    self.pos += 1 + escaped.map_or(1, char::len_utf8);
                    run = self.pos;
                    continue;
                }
                b'\n' => self.line += 1,
                b'$' if quote == b'"' && self.bytes.get(self.pos + 1) == Some(&b'{') => {
                    self.pos += 2;
                    self.interpolation(line)?;
                    continue;
                }
                _ if b == quote => {
                    value.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(value);
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(self.err(line, "unterminated quoted string"))
    }

    /// Skips `${ ... }` inside a double-quoted string, which may itself hold
    /// braces and quoted strings.
    fn interpolation(&mut self, line: usize) -> Result<(), RegistrationError> {
        let mut depth = 1;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                b'\'' | b'"' => {
                    self.string(b)?;
                    continue;
                }
                b'\n' => self.line += 1,
                _ => {}
            }
            self.pos += 1;
        }
        Err(self.err(line, "unterminated interpolation in string"))
    }

    /// `@(TAG)`, `@("TAG":syntax/escapes)`: the body starts on the next line.
    fn heredoc_tag(&mut self) -> Result<(), RegistrationError> {
        let line = self.line;
        let rest = &self.text[self.pos + 2..];
        let close = rest
            .find([')', '\n'])
            .filter(|&i| rest.as_bytes()[i] == b')')
            .ok_or_else(|| self.err(line, "unterminated heredoc tag"))?;
        let spec = &rest[..close];
        let tag = spec
            .split([':', '/'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .trim();
        if tag.is_empty() {
            return Err(self.err(line, "heredoc without a tag"));
        }
        self.heredocs.push((tag.to_string(), line));
        self.pos += 2 + close + 1;
        Ok(())
    }

    /// At the start of a line: skips the bodies of heredocs opened on the
    /// previous line, through their end-tag lines (`|- TAG`, `| TAG`, `TAG`).
    fn skip_heredoc_bodies(&mut self) -> Result<(), RegistrationError> {
        for (tag, opened) in std::mem::take(&mut self.heredocs) {
            loop {
                if self.pos >= self.bytes.len() {
                    return Err(self.err(opened, format!("heredoc {tag} has no end")));
                }
                let end = self.text[self.pos..]
                    .find('\n')
                    .map_or(self.bytes.len(), |i| self.pos + i);
                let l = self.text[self.pos..end].trim();
                let l = l.strip_prefix('|').unwrap_or(l).trim_start();
                let l = l.strip_prefix('-').unwrap_or(l).trim_start();
                let done = l == tag;
                self.pos = (end + 1).min(self.bytes.len());
                if end < self.bytes.len() {
                    self.line += 1;
                }
                if done {
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PP: &str = "#nodes\nnode 'haproxy' ,'haproxy1.endor.lab' {\n  class { '::mymod::ha': }\n}\nnode 'redis' {\n  class { '::mymod::redis': }\n}\n";

    /// One pass: a node line of 100,000 duplicates loses them all well
    /// under the bound (one copy of the file per duplicate took minutes).
    #[test]
    fn a_node_line_of_100000_duplicates_loses_them_in_one_pass() {
        let mut text = String::from("node 'web'");
        for i in 0..100_000 {
            let name = if i == 500 { "keep.lab" } else { "dup.lab" };
            text.push_str(&format!(" ,'{name}'"));
        }
        text.push_str(" {\n}\n");
        let pad = "x".repeat(1 << 20);
        let text = format!("# {pad}\n{text}");
        let began = std::time::Instant::now();
        let (out, c) = remove(&text, "web", "DUP.lab").unwrap();
        assert_eq!(c, SiteChange::Changed(Change::Removed));
        assert_eq!(out, format!("# {pad}\nnode 'web' ,'keep.lab' {{\n}}\n"));
        let took = began.elapsed();
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    }

    #[test]
    fn add_and_remove_round_trip() {
        let (out, c) = add(PP, "haproxy", "haproxy2.endor.lab").unwrap();
        assert_eq!(c, SiteChange::Changed(Change::Added));
        assert_eq!(
            out,
            PP.replace(
                "node 'haproxy' ,'haproxy1.endor.lab' {",
                "node 'haproxy' ,'haproxy1.endor.lab' ,'haproxy2.endor.lab' {"
            )
        );
        let (back, c) = remove(&out, "haproxy", "haproxy2.endor.lab").unwrap();
        assert_eq!(
            (back.as_str(), c),
            (PP, SiteChange::Changed(Change::Removed))
        );

        let (out, _) = add(PP, "redis", "redis1.endor.lab").unwrap();
        assert!(
            out.contains("node 'redis' ,'redis1.endor.lab' {\n"),
            "{out}"
        );
        let (back, _) = remove(&out, "redis", "redis1.endor.lab").unwrap();
        assert_eq!(back, PP);
    }

    #[test]
    fn remove_middle_name() {
        let text = "node 'c' ,'c1.lab' ,'c2.lab' ,'c3.lab' {\n}\n";
        let (out, _) = remove(text, "c", "c2.lab").unwrap();
        assert_eq!(out, "node 'c' ,'c1.lab' ,'c3.lab' {\n}\n");
        let (out, _) = remove(text, "c", "c1.lab").unwrap();
        assert_eq!(out, "node 'c' ,'c2.lab' ,'c3.lab' {\n}\n");
    }

    #[test]
    fn idempotent_and_missing() {
        let (out, c) = add(PP, "haproxy", "haproxy1.endor.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            (PP, SiteChange::Changed(Change::Unchanged))
        );
        let (out, c) = remove(PP, "haproxy", "haproxy9.endor.lab").unwrap();
        assert_eq!(
            (out.as_str(), c),
            (PP, SiteChange::Changed(Change::Unchanged))
        );
        let (out, c) = add(PP, "nosuch", "x.endor.lab").unwrap();
        assert_eq!((out.as_str(), c), (PP, SiteChange::NoNodeLine));
        // A prefix of a service is another service.
        let (_, c) = add(PP, "redi", "x.endor.lab").unwrap();
        assert_eq!(c, SiteChange::NoNodeLine);
    }

    #[test]
    fn host_of_another_node_is_a_conflict() {
        let err = add(PP, "redis", "haproxy1.endor.lab").unwrap_err();
        assert!(
            matches!(err, RegistrationError::Conflict { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn other_syntax_is_understood() {
        let text = concat!(
            "/* block\n { comment */\n",
            "$x = \"a ${hash['k']} {\" # } comment\n",
            "if $::fqdn =~ /^db\\d{2}$/ { notice('x') }\n",
            "$h = @(\"END\"/L)\n  not code: ' { \"\n  |- END\n",
            "node /^web\\d{1,2}$/, 'web', default {\n}\n",
            "node \"db\" {\n}\n",
        );
        let nodes = parse(text).unwrap();
        let names: Vec<Vec<&str>> = nodes
            .iter()
            .map(|n| n.names.iter().map(|x| x.value.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [vec!["/^web\\d{1,2}$/", "web", "default"], vec!["db"]]
        );
        assert_eq!(nodes[1].line, 10);
        let (out, _) = add(text, "db", "db1.lab").unwrap();
        assert!(out.ends_with("node \"db\" ,'db1.lab' {\n}\n"), "{out}");
    }

    #[test]
    fn escapes_of_non_ascii_characters() {
        let text = "$x = '\\\u{e9}t\u{e9}'\nnode 'a' {\n}\n";
        let (out, c) = add(text, "a", "a1.lab").unwrap();
        assert_eq!(c, SiteChange::Changed(Change::Added));
        assert!(out.ends_with("node 'a' ,'a1.lab' {\n}\n"), "{out}");
        let err = add("$x = '\\\u{e9}", "a", "a1.lab").unwrap_err();
        assert!(
            matches!(err, RegistrationError::Malformed { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn malformed_manifests_are_refused_with_their_line() {
        for (text, line) in [
            (
                "node 'a' {\n}\nnode 'haproxy ,'haproxy1.endor.lab' {\n}\n",
                3,
            ),
            ("node 'a' {\n}\nnode 'b' ,'b1.lab {\n  x\n}\n", 3),
            ("node 'a' {\n}\nnode 'b' {{\n}\n", 3),
            ("node 'a' {\n}\n}\nnode 'b' {\n}\n", 3),
            ("node 'a' {\n  class { 'x': ]\n}\n", 2),
            ("node 'a' {\n}\nnode 'b'\n", 3),
            ("node 'a' {\n}\nnode 'a' {\n}\n", 3),
            ("node 'a' ,, 'b' {\n}\n", 1),
            ("/* open\nnode 'a' {\n}\n", 1),
        ] {
            let err = add(text, "a", "x.lab").unwrap_err();
            assert!(
                matches!(err, RegistrationError::Malformed { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
        }
    }
}
