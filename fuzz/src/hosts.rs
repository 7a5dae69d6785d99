//! The dnsmasq hosts file editor: no panic, and what an edit leaves.

use std::net::IpAddr;

use dockstack_server::regfiles::{Change, hosts};

use crate::{Input, body, eol_of, lines, terminated, with_eol};

/// Whether a line names the host (the editor's own reading of one line).
fn mentions(line: &str, fqdn: &str) -> bool {
    matches!(hosts::lookup(line, fqdn), Ok(Some(_)))
}

/// The file's lines as they are once the host is taken out: lines that are
/// only the host go, lines listing it among other names lose that name.
fn without<'a>(text: &'a str, fqdn: &str) -> Vec<std::borrow::Cow<'a, str>> {
    lines(text)
        .into_iter()
        .filter_map(|l| {
            if mentions(l, fqdn) {
                let (rest, _) = hosts::remove(l, fqdn).expect("the line parsed");
                (!rest.is_empty()).then_some(std::borrow::Cow::Owned(rest))
            } else {
                Some(std::borrow::Cow::Borrowed(l))
            }
        })
        .collect()
}

pub fn run(input: &Input) {
    let mut cur = input.text.clone();
    for op in &input.ops {
        let fqdn = op.name.as_str();
        let before = hosts::lookup(&cur, fqdn);
        if op.add {
            let result = hosts::add(&cur, op.ip, None, fqdn);
            let ((out, change), before) = match (result, before) {
                (Err(e), Err(_)) => {
                    let _ = e.to_string();
                    return;
                }
                (Err(e), Ok(_)) => panic!("add refused a file lookup reads: {e}"),
                (Ok(_), Err(e)) => panic!("add accepted a file lookup refuses: {e}"),
                (Ok(r), Ok(before)) => (r, before),
            };
            let before = change_of(before, &change, &out, &cur);
            // The output is read back, and holds the new address.
            assert_eq!(
                hosts::lookup(&out, fqdn).expect("the output parses"),
                Some(IpAddr::V4(op.ip))
            );
            // No other line is lost or changed (the last may get its
            // terminator): the output is the file without the host, plus
            // one line for it.
            if change != Change::Unchanged {
                let new_line = format!("{} {fqdn}", op.ip);
                let mut now = lines(&out);
                let at = now
                    .iter()
                    .position(|l| body(l) == new_line)
                    .expect("the host's line");
                now.remove(at);
                let kept: String = without(&cur, fqdn).concat();
                let eol = eol_of(&cur);
                assert_eq!(
                    with_eol(&kept, eol),
                    with_eol(&now.concat(), eol),
                    "lines other than the host's changed"
                );
            }
            // Idempotent.
            let (again, c) = hosts::add(&out, op.ip, None, fqdn).expect("re-adding");
            assert_eq!((again.as_str(), c), (out.as_str(), Change::Unchanged));
            // A fresh host removed again gives the file back.
            if before.is_none() {
                let (back, c) = hosts::remove(&out, fqdn).expect("removing what was added");
                assert_eq!(c, Change::Removed);
                assert_eq!(back, terminated(&cur), "add then remove of a fresh host");
            }
            cur = out;
        } else {
            let result = hosts::remove(&cur, fqdn);
            let ((out, change), before) = match (result, before) {
                (Err(e), Err(_)) => {
                    let _ = e.to_string();
                    return;
                }
                (Err(e), Ok(_)) => panic!("remove refused a file lookup reads: {e}"),
                (Ok(_), Err(e)) => panic!("remove accepted a file lookup refuses: {e}"),
                (Ok(r), Ok(before)) => (r, before),
            };
            match change {
                Change::Unchanged => {
                    assert_eq!(out, cur);
                    assert!(before.is_none(), "remove left {fqdn} in place");
                }
                Change::Removed => assert!(before.is_some()),
                other => panic!("remove reported {other:?}"),
            }
            assert_eq!(hosts::lookup(&out, fqdn).expect("the output parses"), None);
            // Every other line stays byte for byte, in order.
            let kept = without(&cur, fqdn);
            let out_lines = lines(&out);
            assert_eq!(kept, out_lines, "lines other than the host's changed");
            let (again, c) = hosts::remove(&out, fqdn).expect("removing again");
            assert_eq!((again.as_str(), c), (out.as_str(), Change::Unchanged));
            cur = out;
        }
    }
}

/// Checks the reported change against the file before; returns the address before.
fn change_of(before: Option<IpAddr>, change: &Change, out: &str, cur: &str) -> Option<IpAddr> {
    match change {
        Change::Unchanged => assert_eq!(out, cur),
        Change::Added => assert!(before.is_none(), "Added, but the host was there"),
        Change::Replaced => assert!(before.is_some(), "Replaced, but the host was not there"),
        Change::Removed => panic!("add reported Removed"),
    }
    before
}
