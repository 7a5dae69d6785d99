//! The site.pp editor: no panic, and what an edit leaves.

use dockstack_server::regfiles::sitepp::{self, NodeHeader};
use dockstack_server::regfiles::{Change, RegistrationError, SiteChange};

use crate::Input;

fn values(h: &NodeHeader) -> Vec<String> {
    h.names.iter().map(|n| n.value.clone()).collect()
}

fn node<'a>(headers: &'a [NodeHeader], service: &str) -> Option<&'a NodeHeader> {
    headers.iter().find(|h| h.names[0].value == service)
}

fn listed(h: &NodeHeader, fqdn: &str) -> bool {
    h.names.iter().any(|n| n.value.eq_ignore_ascii_case(fqdn))
}

pub fn run(input: &Input) {
    let mut cur = input.text.clone();
    for op in &input.ops {
        let (service, fqdn) = (op.service.as_str(), op.name.as_str());
        let before = sitepp::parse(&cur);
        if let Ok(headers) = &before {
            assert!(
                headers.iter().all(|h| !h.names.is_empty()),
                "a node without names"
            );
            for h in headers {
                for n in &h.names {
                    assert!(n.start < n.end && n.end <= cur.len());
                    assert!(cur.is_char_boundary(n.start) && cur.is_char_boundary(n.end));
                }
            }
        }
        let result = if op.add {
            sitepp::add(&cur, service, fqdn)
        } else {
            sitepp::remove(&cur, service, fqdn)
        };
        let (out, change) = match (result, before) {
            (Err(e), Ok(headers)) => {
                let _ = e.to_string();
                match e {
                    RegistrationError::Conflict { .. } => assert!(
                        op.add && headers.iter().any(|h| listed(h, fqdn)),
                        "a conflict without another node listing {fqdn}"
                    ),
                    RegistrationError::Malformed { .. } => assert!(
                        headers
                            .iter()
                            .filter(|h| h.names[0].value == service)
                            .count()
                            > 1,
                        "refused a file parse reads: {e}"
                    ),
                    e => panic!("unexpected error: {e}"),
                }
                return;
            }
            (Err(e), Err(_)) => {
                let _ = e.to_string();
                return;
            }
            (Ok(_), Err(e)) => panic!("edited a file parse refuses: {e}"),
            (Ok(r), Ok(headers)) => (r, headers),
        };
        let ((out, change), headers) = (out, change);
        let index = headers.iter().position(|h| h.names[0].value == service);
        let found = index.map(|i| &headers[i]);
        match change {
            SiteChange::NoNodeLine => {
                assert!(found.is_none());
                assert_eq!(out, cur);
                continue;
            }
            SiteChange::Changed(Change::Unchanged) => {
                assert_eq!(out, cur);
                let n = found.expect("a node");
                // Names after the first are the hosts; the first is the service.
                let hosts = n.names[1..]
                    .iter()
                    .any(|x| x.value.eq_ignore_ascii_case(fqdn));
                assert!(if op.add { listed(n, fqdn) } else { !hosts });
                continue;
            }
            SiteChange::Changed(_) => {}
        }
        let node_before = found.expect("a node");
        let after = sitepp::parse(&out).expect("the output parses");
        assert_eq!(after.len(), headers.len(), "node definitions changed");
        let node_after = node(&after, service).expect("the node is still there");
        for (i, (a, b)) in headers.iter().zip(&after).enumerate() {
            if Some(i) != index {
                assert_eq!(values(a), values(b), "another node changed");
            }
        }
        if op.add {
            assert_eq!(change, SiteChange::Changed(Change::Added));
            let mut expected = values(node_before);
            expected.push(fqdn.to_string());
            assert_eq!(values(node_after), expected);
            assert_eq!(out.len(), cur.len() + fqdn.len() + 4);
            let (again, c) = sitepp::add(&out, service, fqdn).expect("re-adding");
            assert_eq!(c, SiteChange::Changed(Change::Unchanged));
            assert_eq!(again, out);
            let (back, c) = sitepp::remove(&out, service, fqdn).expect("removing what was added");
            assert_eq!(c, SiteChange::Changed(Change::Removed));
            assert_eq!(back, cur, "add then remove of a fresh host");
        } else {
            assert_eq!(change, SiteChange::Changed(Change::Removed));
            let names = values(node_before);
            let mut expected = vec![names[0].clone()];
            expected.extend(
                names[1..]
                    .iter()
                    .filter(|v| !v.eq_ignore_ascii_case(fqdn))
                    .cloned(),
            );
            assert_eq!(values(node_after), expected);
            // Only the node's names changed.
            let first_end = node_before.names[0].end;
            assert_eq!(out[..first_end], cur[..first_end]);
            let old_end = node_before.names.last().expect("names").end;
            let new_end = node_after.names.last().expect("names").end;
            assert_eq!(out[new_end..], cur[old_end..]);
            let (again, c) = sitepp::remove(&out, service, fqdn).expect("removing again");
            assert_eq!(
                (again.as_str(), c),
                (out.as_str(), SiteChange::Changed(Change::Unchanged))
            );
        }
        cur = out;
    }
}
