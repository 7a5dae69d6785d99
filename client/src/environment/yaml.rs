//! The environment file as a tree of YAML nodes that keep their source position.
//!
//! Anchors, aliases and `<<` merge keys are resolved here, on the node level, so that
//! validation can point at the place where a value is written (a `gateway` merged in
//! from `containerdefault` is reported on the `containerdefault` line) and can tell
//! which `containerhosts` entry a `host: *host1` alias refers to.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use granit_parser::{Event, Options, Parser, ScalarStyle, Span, Tag};

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug)]
pub(super) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug)]
pub(super) enum Kind {
    Scalar {
        text: String,
        /// Quoted and block scalars are always strings, never null.
        plain: bool,
        /// The resolved core-schema tag (`str`, `null`, …) when one is written.
        core_tag: Option<String>,
    },
    Seq(Vec<Rc<Node>>),
    /// Merge keys are already applied: the entries are what the mapping means.
    Map(Vec<Entry>),
    /// `*name`: the position is the alias's, the target the anchored node itself.
    Alias(Rc<Node>),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: Rc<Node>,
    pub value: Rc<Node>,
}

/// A problem found while reading the YAML itself.
#[derive(Debug)]
pub(super) struct Issue {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

#[derive(Debug)]
pub(super) struct Document {
    /// `None` when the file holds no document, or after a syntax error.
    pub root: Option<Rc<Node>>,
    pub issues: Vec<Issue>,
    /// A syntax error leaves no tree worth validating.
    pub syntax_error: bool,
}

impl Node {
    /// The node an alias stands for; the node itself otherwise.
    pub fn target(&self) -> &Node {
        match &self.kind {
            Kind::Alias(target) => target.target(),
            _ => self,
        }
    }

    pub fn is_null(&self) -> bool {
        match &self.target().kind {
            Kind::Scalar {
                text,
                plain,
                core_tag,
            } => match core_tag.as_deref() {
                Some("null") => true,
                Some(_) => false,
                None => *plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
            },
            _ => false,
        }
    }

    /// The text of a scalar that is not null.
    pub fn scalar(&self) -> Option<&str> {
        match &self.target().kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.target().kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Rc<Node>]> {
        match &self.target().kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// How the node reads in a "found …" message.
    pub fn describe(&self) -> String {
        match &self.target().kind {
            _ if self.is_null() => "nothing".to_owned(),
            Kind::Scalar { text, .. } => format!("`{text}`"),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
            Kind::Alias(_) => unreachable!("target() follows aliases"),
        }
    }

    /// The node as a line of text: scalars as written, collections in flow style.
    pub fn render(&self) -> String {
        match &self.target().kind {
            _ if self.is_null() => String::new(),
            Kind::Scalar { text, .. } => text.clone(),
            Kind::Seq(items) => {
                let items: Vec<String> = items.iter().map(|i| i.render()).collect();
                format!("[{}]", items.join(", "))
            }
            Kind::Map(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|e| format!("{}: {}", e.key.render(), e.value.render()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Kind::Alias(_) => unreachable!("target() follows aliases"),
        }
    }
}

/// Joins a key path: `containers` + `dns1` = `containers.dns1`.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn parse(text: &str) -> Document {
    let mut options = Options::default();
    // Comments carry no data; without them the event stream is only nodes.
    options.set_emit_comments(false);
    // Otherwise the parser stops at an unknown alias with an error that
    // does not say which; as an event, the builder reports it by name.
    options.emit_unresolved_aliases = true;
    let mut builder = Builder::default();
    let mut syntax_error = false;
    for next in Parser::new_from_str_with_options(text, options) {
        match next {
            Ok((event, span)) => {
                if !builder.event(event, &span) {
                    break;
                }
            }
            Err(error) => {
                let marker = error.marker();
                builder.issues.push(Issue {
                    pos: Pos {
                        line: marker.line(),
                        column: marker.col() + 1,
                    },
                    path: builder.child_path(),
                    message: format!("yaml syntax error: {}", error.info()),
                });
                syntax_error = true;
                break;
            }
        }
    }
    Document {
        root: if syntax_error { None } else { builder.root },
        issues: builder.issues,
        syntax_error,
    }
}

#[derive(Debug)]
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        path: String,
        items: Vec<Rc<Node>>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        path: String,
        entries: Vec<Entry>,
        key: Option<Rc<Node>>,
    },
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    documents: usize,
    issues: Vec<Issue>,
}

impl Builder {
    /// Takes one parser event; false stops the parse.
    fn event(&mut self, event: Event<'_>, span: &Span) -> bool {
        let pos = Pos::of(span);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.issues.push(Issue {
                        pos,
                        path: String::new(),
                        message: "the file holds more than one yaml document".to_owned(),
                    });
                    return false;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Rc::new(Node {
                    pos,
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        core_tag: tag.and_then(|t| core_tag(&t)),
                    },
                });
                self.anchor(anchor, &node);
                self.push(node);
            }
            Event::Alias(id) => {
                let kind = match self.anchors.get(&id) {
                    Some(target) => Kind::Alias(Rc::clone(target)),
                    None => {
                        // Only an alias inside its own anchored collection gets here.
                        self.issues.push(Issue {
                            pos,
                            path: self.child_path(),
                            message: "alias refers to a node that contains it".to_owned(),
                        });
                        null_kind()
                    }
                };
                self.push(Rc::new(Node { pos, kind }));
            }
            Event::UnresolvedAlias(name) => {
                self.issues.push(Issue {
                    pos,
                    path: self.child_path(),
                    message: format!("unknown alias `*{name}`"),
                });
                self.push(Rc::new(Node {
                    pos,
                    kind: null_kind(),
                }));
            }
            Event::SequenceStart(_, anchor, _) => {
                let path = self.child_path();
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    path,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, _) => {
                let path = self.child_path();
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    path,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq {
                        pos, anchor, items, ..
                    }) => {
                        let node = Rc::new(Node {
                            pos,
                            kind: Kind::Seq(items),
                        });
                        self.anchor(anchor, &node);
                        node
                    }
                    Some(Frame::Map {
                        pos,
                        anchor,
                        path,
                        entries,
                        ..
                    }) => {
                        let entries = self.merge(&path, entries);
                        let node = Rc::new(Node {
                            pos,
                            kind: Kind::Map(entries),
                        });
                        self.anchor(anchor, &node);
                        node
                    }
                    None => return true,
                };
                self.push(node);
            }
            _ => {}
        }
        true
    }

    fn anchor(&mut self, anchor: usize, node: &Rc<Node>) {
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(node));
        }
    }

    fn push(&mut self, node: Rc<Node>) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
    }

    /// The key path of the node that comes next.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map {
                path,
                key: Some(key),
                ..
            }) => join(path, &key.render()),
            Some(Frame::Map { path, .. }) => path.clone(),
        }
    }

    /// Applies the mapping's `<<` entries and drops repeated keys (the first one wins,
    /// after a problem is reported).
    fn merge(&mut self, path: &str, entries: Vec<Entry>) -> Vec<Entry> {
        let mut first_at: HashMap<String, Pos> = HashMap::new();
        let mut keep = Vec::with_capacity(entries.len());
        for entry in &entries {
            let Some(key) = key_text(&entry.key).filter(|_| !is_merge_key(&entry.key)) else {
                keep.push(true);
                continue;
            };
            match first_at.get(key) {
                Some(first) => {
                    self.issues.push(Issue {
                        pos: entry.key.pos,
                        path: join(path, key),
                        message: format!("duplicate key `{key}` (first at line {})", first.line),
                    });
                    keep.push(false);
                }
                None => {
                    first_at.insert(key.to_owned(), entry.key.pos);
                    keep.push(true);
                }
            }
        }

        // Keys written in the mapping itself win over merged ones, and earlier merge
        // sources win over later ones.
        let mut present: HashSet<String> = first_at.into_keys().collect();
        let mut merged = Vec::with_capacity(entries.len());
        for (entry, keep) in entries.into_iter().zip(keep) {
            if !keep {
                continue;
            }
            if !is_merge_key(&entry.key) {
                merged.push(entry);
                continue;
            }
            for source in self.merge_sources(path, &entry.value) {
                for from in source.entries().unwrap_or_default() {
                    match key_text(&from.key) {
                        Some(key) if !present.insert(key.to_owned()) => {}
                        _ => merged.push(from.clone()),
                    }
                }
            }
        }
        merged
    }

    fn merge_sources(&mut self, path: &str, value: &Rc<Node>) -> Vec<Rc<Node>> {
        let target = resolve(value);
        match &target.kind {
            Kind::Map(_) => vec![target],
            Kind::Seq(items) => {
                let mut sources = Vec::new();
                for item in items {
                    let item_target = resolve(item);
                    if matches!(item_target.kind, Kind::Map(_)) {
                        sources.push(item_target);
                    } else {
                        self.issues.push(Issue {
                            pos: item.pos,
                            path: join(path, "<<"),
                            message: format!(
                                "a merge key (`<<`) takes only mappings, found {}",
                                item.describe()
                            ),
                        });
                    }
                }
                sources
            }
            _ => {
                self.issues.push(Issue {
                    pos: value.pos,
                    path: join(path, "<<"),
                    message: format!(
                        "a merge key (`<<`) takes a mapping or a list of mappings, found {}",
                        value.describe()
                    ),
                });
                Vec::new()
            }
        }
    }
}

fn null_kind() -> Kind {
    Kind::Scalar {
        text: String::new(),
        plain: true,
        core_tag: None,
    }
}

fn resolve(node: &Rc<Node>) -> Rc<Node> {
    match &node.kind {
        Kind::Alias(target) => resolve(target),
        _ => Rc::clone(node),
    }
}

fn key_text(key: &Node) -> Option<&str> {
    match &key.target().kind {
        Kind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn is_merge_key(key: &Node) -> bool {
    match &key.kind {
        Kind::Scalar {
            text,
            plain,
            core_tag,
        } => match core_tag.as_deref() {
            Some(tag) => tag == "merge",
            None => *plain && text == "<<",
        },
        _ => false,
    }
}

/// The core-schema type a tag names; `merge` too, which YAML 1.2 left out of the core
/// schema but the 2015 files rely on.
fn core_tag(tag: &Tag) -> Option<String> {
    if tag.handle() == "tag:yaml.org,2002:" && tag.suffix() == "merge" {
        return Some("merge".to_owned());
    }
    tag.core_suffix().map(str::to_owned)
}
