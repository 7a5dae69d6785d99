//! Why a server would refuse our own certificate, as far as the TLS
//! directory tells: expired, listed in its `crl.pem`, or not signed by its
//! `ca.pem`. A server's refusal reaches the client as a bare alert or a
//! closed connection; these facts name the cause and what to run.

use std::path::Path;

use time::OffsetDateTime;

use super::crl::revoked_serials;
use super::facts::{facts, strip_zeros};
use super::inventory::date;
use super::layout::{ca_cert, client_files};

/// Why the server refused our certificate `<name>.pem` of `dir`, if the
/// directory shows a reason; `None` when it looks good.
pub fn refusal_cause(dir: &Path, name: &str, now: OffsetDateTime) -> Option<String> {
    let (cert, _) = client_files(dir, name);
    let shown = cert.display();
    let f = facts(&cert).ok()?;
    if f.not_after < now {
        return Some(format!(
            "the server refused our certificate {shown}: it expired on {}; renew it with `dockstack certs renew {name}`",
            date(f.not_after)
        ));
    }
    if revoked_serials(dir)
        .ok()
        .is_some_and(|r| r.contains(strip_zeros(&f.serial)))
    {
        return Some(format!(
            "the server refused our certificate {shown}: it has been revoked; an admin issues a new one with `dockstack certs add-client {name} --role ROLE --force`"
        ));
    }
    if !signed_by_ca(&cert, &ca_cert(dir)) {
        return Some(format!(
            "the server refused our certificate {shown}: it is not signed by {}; make one with this cluster's CA (`dockstack certs add-client {name} --role ROLE`)",
            ca_cert(dir).display()
        ));
    }
    None
}

/// Whether the certificate at `cert` is signed by the one at `ca` (`true`
/// when either cannot be read: nothing is known then).
fn signed_by_ca(cert: &Path, ca: &Path) -> bool {
    let (Ok(cert), Ok(ca)) = (std::fs::read(cert), std::fs::read(ca)) else {
        return true;
    };
    let parse = |b: &[u8]| x509_parser::pem::parse_x509_pem(b).map(|(_, p)| p);
    let (Ok(cert), Ok(ca)) = (parse(&cert), parse(&ca)) else {
        return true;
    };
    let (Ok(cert), Ok(ca)) = (cert.parse_x509(), ca.parse_x509()) else {
        return true;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}
