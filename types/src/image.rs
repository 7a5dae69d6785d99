//! Image references in Docker's grammar (distribution's `reference`), so
//! that nothing but a reference reaches the image in a Docker API path: no
//! `../`, `?` or `#` a URL would resolve into another endpoint.

/// The longest name Docker accepts, tag and digest aside.
pub const MAX_NAME_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an image reference ([HOST[:PORT]/]NAME[:TAG][@DIGEST], \
     NAME of lower-case letters, digits and separators)"
)]
pub struct ImageError(pub String);

/// Checks `reference` against `[domain/]path[:tag][@digest]`.
pub fn check_reference(reference: &str) -> Result<(), ImageError> {
    let bad = || ImageError(reference.to_owned());
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return Err(bad());
    }
    // A tag follows the last ':' that comes after the last '/': one before
    // is a registry's port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(bad());
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()))
    {
        if !is_domain(first) {
            return Err(bad());
        }
        components.remove(0);
    }
    if components.iter().all(|c| is_path_component(c)) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A registry: a host name (labels of letters, digits and inner `-`), an
/// IPv4 address or a bracketed IPv6 one, with an optional port.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = t.chars();
    t.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// `algorithm:hex`, the hex at least 32 digits.
fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_dockers_grammar() {
        for good in [
            "busybox",
            "dockstack/mariadb:latest",
            "dockstack/mariadb:3f2a9c",
            "registry.lab:5000/openstack/keystone:2024.1",
            "localhost/app",
            "[fd00::1]:5000/app:v1",
            "a__b/c-d/e.f",
            "my--image",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_reference(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "../images/get?names=x",
            "busybox?x=1",
            "busybox#frag",
            "Busybox",
            "busy box",
            "/busybox",
            "busybox/",
            "busybox:",
            "busybox:-tag",
            "a/../b",
            "busybox@sha256:short",
            "host:port:5000/x",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }
}
