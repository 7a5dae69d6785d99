//! Typed accessors: reading a mapping's known keys and its values as strings,
//! integers, booleans, addresses and command lines, reporting what does not fit.

use std::net::Ipv4Addr;

use super::Checker;
use super::hints::closest;
use crate::environment::yaml::{Entry, Node, Pos, join};

/// The keys of one mapping that passed the known-key check.
pub(super) struct Fields<'n> {
    /// Where a missing key is reported: the mapping's own key, or the file's start.
    pub(super) owner: Pos,
    pub(super) path: String,
    pub(super) entries: Vec<(&'n str, &'n Entry)>,
}

impl<'n> Fields<'n> {
    pub(super) fn empty(owner: Pos, path: &str) -> Self {
        Fields {
            owner,
            path: path.to_owned(),
            entries: Vec::new(),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
    }

    pub(super) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

impl Checker {
    /// Checks that `node` is a mapping (or empty) whose keys are all in `known`.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        owner: Pos,
        path: &str,
        known: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        if node.is_null() {
            return Some(Fields::empty(owner, path));
        }
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, what);
            return None;
        };
        let mut fields = Fields::empty(owner, path);
        for entry in entries {
            let Some(key) = entry.key.scalar() else {
                self.report(
                    entry.key.pos,
                    path,
                    format!("expected a key name, found {}", entry.key.describe()),
                );
                continue;
            };
            if known.contains(&key) {
                fields.entries.push((key, entry));
            } else {
                let hint = match closest(key, known.iter().copied()) {
                    Some(near) => format!(" (did you mean `{near}`?)"),
                    None => format!(" (known keys: {})", known.join(", ")),
                };
                self.report(
                    entry.key.pos,
                    &join(path, key),
                    format!("unknown key `{key}`{hint}"),
                );
            }
        }
        Some(fields)
    }

    pub(super) fn wrong_type(&mut self, node: &Node, path: &str, what: &str) {
        self.report(
            node.pos,
            path,
            format!("expected {what}, found {}", node.describe()),
        );
    }

    /// The value of `key` when it is there and not empty; reports it missing when
    /// `required`.
    pub(super) fn value<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        required: bool,
    ) -> Option<(&'n Node, String)> {
        match fields.get(key) {
            Some(entry) if !entry.value.is_null() => Some((&entry.value, fields.path(key))),
            Some(entry) => {
                if required {
                    self.report(
                        entry.key.pos,
                        &fields.path(key),
                        format!("required key `{key}` has no value"),
                    );
                }
                None
            }
            None => {
                if required {
                    self.report(
                        fields.owner,
                        &fields.path,
                        format!("missing required key `{key}`"),
                    );
                }
                None
            }
        }
    }

    pub(super) fn string(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        match node.scalar() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.wrong_type(node, path, what);
                None
            }
        }
    }

    pub(super) fn text_field(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let (node, path) = self.value(fields, key, required)?;
        let text = self.string(node, &path, "a string")?;
        if required && text.trim().is_empty() {
            self.report(node.pos, &path, format!("`{key}` is empty"));
            return None;
        }
        Some(text)
    }

    pub(super) fn ipv4(&mut self, node: &Node, path: &str) -> Option<Ipv4Addr> {
        match node.scalar().map(str::parse::<Ipv4Addr>) {
            Some(Ok(ip)) => Some(ip),
            _ => {
                self.wrong_type(node, path, "an ipv4 address");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, fields: &Fields<'_>, key: &str, default: bool) -> bool {
        let Some((node, path)) = self.value(fields, key, false) else {
            return default;
        };
        // The YAML 1.1 spellings too: the 2015 client read the file with PyYAML.
        match node.scalar() {
            Some("true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => true,
            Some("false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => false,
            _ => {
                self.wrong_type(node, &path, "true or false");
                default
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn integer(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let Some(number) = node.scalar().and_then(|t| t.parse::<i64>().ok()) else {
            self.wrong_type(node, path, &format!("an integer ({what})"));
            return None;
        };
        if !(min..=max).contains(&number) {
            self.report(
                node.pos,
                path,
                format!("{what} {number} is out of range {min}..={max}"),
            );
            return None;
        }
        Some(number)
    }

    /// A list of strings; a single string stands for a list of one. Empty means none.
    pub(super) fn strings(&mut self, node: &Node, path: &str, what: &str) -> Vec<(String, Pos)> {
        if node.is_null() {
            return Vec::new();
        }
        if let Some(text) = node.scalar() {
            return vec![(text.to_owned(), node.pos)];
        }
        let Some(items) = node.items() else {
            self.wrong_type(node, path, &format!("a list of {what}s"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(text) = self.string(item, &format!("{path}[{i}]"), &format!("a {what}")) {
                out.push((text, item.pos));
            }
        }
        out
    }

    pub(super) fn string_list(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        what: &str,
    ) -> Vec<(String, Pos)> {
        match fields.get(key) {
            Some(entry) => self.strings(&entry.value, &fields.path(key), what),
            None => Vec::new(),
        }
    }

    /// A command line, split later the way a shell would; checked here so a missing
    /// quote is found before anything runs.
    pub(super) fn command_line(&mut self, text: &str, pos: Pos, path: &str) -> bool {
        if text.trim().is_empty() {
            self.report(pos, path, "empty command line");
            return false;
        }
        if let Err(e) = shell_words::split(text) {
            self.report(pos, path, format!("cannot split the command line: {e}"));
            return false;
        }
        true
    }

    pub(super) fn commands(&mut self, fields: &Fields<'_>, key: &str) -> Vec<String> {
        let path = fields.path(key);
        let mut out = Vec::new();
        for (i, (line, pos)) in self
            .string_list(fields, key, "command line")
            .into_iter()
            .enumerate()
        {
            if self.command_line(&line, pos, &format!("{path}[{i}]")) {
                out.push(line);
            }
        }
        out
    }
}
