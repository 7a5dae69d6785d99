//! A failed connection or call in a person's words: one clause per cause
//! and what to check. The transport's own chain is said only when no
//! cause is known.

use crate::certs;

/// Where a message names the host, when it is known.
const HOST: &str = "HOST";

/// [`explain`] of a TLS client that got something else than TLS back
/// (the connection then asks what answered: see `probe`).
pub(super) const NOT_TLS: &str = "it answered, but not with TLS: is the port right?";

/// The messages of `e` and its sources, each said once: a source whose
/// message its parent has already said (tonic's `tcp connect error: tcp
/// connect error`, rustls' repeated alert) is left out, and so are tonic's
/// own wrappers that say nothing of the cause.
fn chain_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let m = err.to_string();
        if !parts.iter().any(|p| p.contains(&m)) && m != "transport error" {
            parts.push(m);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The cause of a failure whose chain says nothing more than that:
/// nothing listens, nothing answers, something else than a dockstack
/// server answers.
pub(super) fn plain_cause(lower: &str, tls: bool) -> Option<&'static str> {
    if lower.contains("connection refused") {
        Some(
            "connection refused: nothing listens on that port (is dockstack-server running there, and is the port right?)",
        )
    } else if !tls
        && (lower.contains("h2 protocol error")
            || lower.contains("connection closed")
            || lower.contains("broken pipe")
            || lower.contains("connection reset"))
    {
        // A server with TLS is found before the first request.
        Some("it answered, but not as a dockstack server: is the port right?")
    } else if tls && (lower.contains("corrupt message") || lower.contains("invalidcontenttype")) {
        Some(NOT_TLS)
    } else if lower.contains("timed out") || lower.contains("deadline has elapsed") {
        Some(
            "no answer within the connect timeout (--connect-timeout): is the address right and the host up?",
        )
    } else {
        None
    }
}

/// The cause of the server's refusal of our certificate `name`, from the
/// alert it sent, when the TLS directory told nothing ([`explain`]'s
/// `own`).
fn refusal(lower: &str, name: &str) -> String {
    if lower.contains("certificaterevoked") {
        format!("the server refused our certificate {name}: it has been revoked")
    } else if lower.contains("certificateexpired") {
        format!(
            "the server refused our certificate {name}: it has expired; renew it with `dockstack certs renew {name}`"
        )
    } else if lower.contains("fatal alert") {
        format!(
            "the server refused our certificate {name}: is it signed by the server's CA? (the server's log says why)"
        )
    } else {
        format!(
            "the server closed the connection after the TLS handshake: it probably refused our certificate {name} (the server's log says why)"
        )
    }
}

/// A failure explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Explained {
    /// The server answered (and refused, or was not one): not a matter
    /// of reaching it.
    pub answered: bool,
    pub text: String,
}

/// `e` explained, naming the client certificate `identity` and the host
/// `host` if known; `own` says why the server would refuse ours, if our
/// TLS directory shows a reason (see `certs::refusal_cause`).
pub(super) fn explain(
    e: &(dyn std::error::Error + 'static),
    tls: bool,
    identity: Option<&str>,
    host: Option<&str>,
    own: impl FnOnce() -> Option<String>,
) -> Explained {
    let text = explain_text(e, tls, identity, own).replace(HOST, host.unwrap_or(HOST));
    let answered = !(text.starts_with("connection refused") || text.starts_with("no answer"));
    Explained { answered, text }
}

fn explain_text(
    e: &(dyn std::error::Error + 'static),
    tls: bool,
    identity: Option<&str>,
    own: impl FnOnce() -> Option<String>,
) -> String {
    let name = identity.unwrap_or(certs::DEFAULT_CLIENT);
    let chain = chain_of(e);
    let lower = chain.to_lowercase();
    if let Some(cause) = plain_cause(&lower, tls) {
        return cause.to_string();
    }
    // Our own check of the server's certificate says "invalid peer
    // certificate"; the server refusing ours shows as an alert it sent, or
    // as the connection closing right after the handshake (TLS 1.3).
    if lower.contains("invalid peer certificate") {
        let cause = if lower.contains("unknownissuer") || lower.contains("badsignature") {
            "the server's certificate is not signed by our CA: are client and server using the same `dockstack certs init` output?"
        } else if lower.contains("notvalidforname") {
            "the server's certificate does not name this address: re-issue it with `dockstack certs add-host HOST --force`"
        } else if lower.contains("expired") {
            "the server's certificate has expired: re-issue it with `dockstack certs add-host HOST --force`"
        } else {
            return chain;
        };
        return cause.to_string();
    }
    let refused = tls
        && (lower.contains("fatal alert")
            || lower.contains("broken pipe")
            || lower.contains("connection reset")
            || lower.contains("connection closed")
            || lower.contains("canceled"));
    if refused {
        return own().unwrap_or_else(|| refusal(&lower, name));
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Text(&'static str);
    impl std::fmt::Display for Text {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Text {}

    #[test]
    fn a_revoked_or_expired_certificate_is_said_so_by_name() {
        // As rustls puts the alert the server sent.
        let revoked = Text("transport error: received fatal alert: CertificateRevoked");
        let m = explain_text(&revoked, true, Some("alice"), || None);
        assert_eq!(
            m,
            "the server refused our certificate alice: it has been revoked"
        );
        let expired = Text("received fatal alert: CertificateExpired");
        let m = explain_text(&expired, true, Some("ci"), || None);
        assert_eq!(
            m,
            "the server refused our certificate ci: it has expired; renew it with `dockstack certs renew ci`"
        );
        let other = Text("received fatal alert: UnknownCA");
        let m = explain_text(&other, true, Some("ci"), || None);
        assert!(
            m.contains("refused our certificate ci: is it signed"),
            "{m}"
        );
        // What the TLS directory knows comes first.
        let m = explain_text(&other, true, Some("ci"), || Some("known".into()));
        assert_eq!(m, "known");
    }

    #[test]
    fn a_cause_is_said_once() {
        let refused =
            Text("tcp connect error: tcp connect error: Connection refused (os error 111)");
        let m = explain(&refused, true, None, Some("h1"), || None);
        assert!(!m.answered);
        assert_eq!(m.text.matches("refused").count(), 1, "{m:?}");
        let unknown = Text("transport error: something new");
        assert_eq!(
            explain_text(&unknown, true, None, || None),
            "transport error: something new"
        );
    }
}
