//! The hieradata editor: no panic, and what an edit leaves.

use dockstack_server::regfiles::hieradata::{self, Registered};
use dockstack_server::regfiles::{Change, RegistrationError};

use crate::{Input, body, is_subsequence, lines};

/// The document without `registered_services`, where it reads as JSON data.
fn rest_of(text: &str) -> Option<serde_json::Value> {
    let mut value: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    if value.is_null() {
        // An empty document: adding makes it a map.
        value = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(map) = value.as_object_mut() {
        map.remove("registered_services");
    }
    Some(value)
}

fn has(reg: &Option<Registered>, service: &str, name: &str) -> bool {
    reg.as_ref()
        .and_then(|r| r.get(service))
        .is_some_and(|l| l.iter().any(|n| n == name))
}

/// A key line with an inline null (`svc: ~`), which adding rewrites.
fn inline_null(line: &str) -> bool {
    let b = body(line);
    let value = b.split_once(':').map_or("", |(_, v)| v);
    let value = value.split(" #").next().unwrap_or("").trim();
    matches!(value, "~" | "null" | "Null" | "NULL")
}

/// The safety net (re-parse and compare) caught an edit the line editor got
/// wrong; reported when FUZZ_STRICT is set, to look for such inputs.
fn strict_refusal(e: &RegistrationError) {
    if std::env::var_os("FUZZ_STRICT").is_some() && e.to_string().contains("would not give") {
        panic!("safety net: {e}");
    }
}

pub fn run(input: &Input) {
    let mut cur = input.text.clone();
    for op in &input.ops {
        let (service, name) = (op.service.as_str(), op.name.as_str());
        let before = hieradata::registered(&cur);
        if op.add {
            let (out, change) = match (hieradata::add(&cur, service, name), &before) {
                (Err(e), _) => {
                    let _ = e.to_string();
                    strict_refusal(&e);
                    return;
                }
                (Ok(_), Err(e)) => panic!("add accepted a file the parser refuses: {e}"),
                (Ok(r), Ok(_)) => r,
            };
            let before = before.expect("checked");
            let after = hieradata::registered(&out).expect("the output parses");
            assert!(has(&after, service, name), "{name} is not registered");
            match change {
                Change::Unchanged => {
                    assert_eq!(out, cur);
                    assert!(
                        has(&before, service, name),
                        "Unchanged, but it was not there"
                    );
                    continue;
                }
                Change::Added => {
                    assert!(!has(&before, service, name), "Added, but it was there");
                }
                other => panic!("add reported {other:?}"),
            }
            // Other services and the rest of the document are what they were.
            let mut expected = before.clone().unwrap_or_default();
            expected
                .entry(service.to_string())
                .or_default()
                .push(name.to_string());
            assert_eq!(after, Some(expected));
            if let Some(rest) = rest_of(&cur) {
                assert_eq!(rest_of(&out), Some(rest), "other data changed");
            }
            // No line is lost: only a `svc: ~` key line may be rewritten.
            let old: Vec<&str> = lines(&cur).into_iter().map(body).collect();
            let new: Vec<&str> = lines(&out).into_iter().map(body).collect();
            let mut it = new.iter();
            let mut rewritten = 0;
            for line in &old {
                if !it.clone().any(|n| n == line) {
                    assert!(inline_null(line), "line {line:?} was lost");
                    rewritten += 1;
                } else {
                    it.any(|n| n == line);
                }
            }
            assert!(rewritten <= 1, "{rewritten} lines rewritten");
            // Idempotent.
            let (again, c) = hieradata::add(&out, service, name).expect("re-adding");
            assert_eq!((again.as_str(), c), (out.as_str(), Change::Unchanged));
            // Removed again: the data is back (an emptied list reads as
            // null, so the service may stay), and when adding only inserted
            // the item's line, so are the bytes.
            let (back, c) =
                hieradata::remove(&out, service, name).expect("removing what was added");
            assert_eq!(c, Change::Removed);
            let mut expected = before.clone().unwrap_or_default();
            expected.entry(service.to_string()).or_default();
            assert_eq!(
                hieradata::registered(&back).expect("parses"),
                Some(expected)
            );
            let (cl, ol) = (lines(&cur), lines(&out));
            if ol.len() == cl.len() + 1 && is_subsequence(&cl, &ol) {
                assert_eq!(back, cur, "add then remove of a fresh name");
            }
            cur = out;
        } else {
            let (out, change) = match (hieradata::remove(&cur, service, name), &before) {
                (Err(e), _) => {
                    let _ = e.to_string();
                    strict_refusal(&e);
                    return;
                }
                (Ok(_), Err(e)) => panic!("remove accepted a file the parser refuses: {e}"),
                (Ok(r), Ok(_)) => r,
            };
            let before = before.expect("checked");
            let after = hieradata::registered(&out).expect("the output parses");
            assert!(!has(&after, service, name), "{name} is still registered");
            match change {
                Change::Unchanged => {
                    assert_eq!(out, cur);
                    continue;
                }
                Change::Removed => {}
                other => panic!("remove reported {other:?}"),
            }
            let mut expected = before.clone().unwrap_or_default();
            if let Some(list) = expected.get_mut(service) {
                list.retain(|n| n != name);
            }
            assert_eq!(after, Some(expected));
            if let Some(rest) = rest_of(&cur) {
                assert_eq!(rest_of(&out), Some(rest), "other data changed");
            }
            // Only lines were dropped, each naming the container.
            let (cl, ol) = (lines(&cur), lines(&out));
            assert!(is_subsequence(&ol, &cl), "a line was changed");
            let mut it = ol.iter().peekable();
            for line in &cl {
                if it.peek() == Some(&line) {
                    it.next();
                } else {
                    assert!(line.contains(name), "dropped {line:?}");
                }
            }
            let (again, c) = hieradata::remove(&out, service, name).expect("removing again");
            assert_eq!((again.as_str(), c), (out.as_str(), Change::Unchanged));
            cur = out;
        }
    }
}
