//! The cluster's certificates: one CA, a server certificate per container
//! host (its IP and name as SANs), client certificates that each carry a
//! role, and the list of revoked ones (`crl.pem`).
//!
//! A role rides in a client certificate as the URI SAN
//! `dockstack:role:<role>` ([`ROLE_URI_PREFIX`]); the servers read it from
//! there. `certs init` makes the CA, the host certificates and the admin
//! client certificate `client.pem`; `certs add-client` makes more, named
//! `<name>.pem` / `<name>.key`, and `--as <name>` picks which one the
//! client presents.

use std::path::PathBuf;

mod crl;
mod facts;
mod files;
mod inventory;
mod issue;
mod layout;
mod own;
mod role;

#[cfg(test)]
mod tests;

pub use crl::{Revocation, revoke};
pub use inventory::{ClientCert, date, format_list, list};
pub use issue::{CLIENT_VALIDITY_DAYS, Renewal, add_client, add_host, init, renew};
pub use layout::{
    CRL_FILE, DEFAULT_CLIENT, ca_cert, check_name, client_cert, client_files, crl_path, host_cert,
};
pub use own::refusal_cause;
pub use role::{ROLE_URI_PREFIX, Role, role_parser};

pub const DEFAULT_TLS_DIR: &str = "/etc/dockstack/tls";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{} already exists; use --force to overwrite", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source} (run `dockstack certs init` first)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no client certificate {} (make it with `dockstack certs add-client {name} --role admin|operator|viewer`)", .path.display())]
    NoClient { name: String, path: PathBuf },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("host {host}: {ip:?} is not an IP address")]
    BadIp { host: String, ip: String },
    #[error("bad certificate name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("{} is {what}, not a client certificate", .path.display())]
    NotClient { path: PathBuf, what: &'static str },
    #[error("{} is a client certificate; a host certificate cannot replace it (pick another host name, or remove it first)", .0.display())]
    IsClient(PathBuf),
    #[error("{} carries no role (made before roles?): pass --role admin|operator|viewer", .0.display())]
    NoRole(PathBuf),
    #[error("{} carries the role {role:?}, which this client does not know: pass --role admin|operator|viewer", .path.display())]
    UnknownRole { path: PathBuf, role: String },
    #[error(
        "{name} is revoked; renewing it would give its access back: if that is meant, issue it anew with `dockstack certs add-client {name} --role ROLE --force`"
    )]
    RenewRevoked { name: String },
    #[error("{} was not issued by the CA of {}: remove it (its entries are of another CA) and revoke again", .crl.display(), .ca.display())]
    ForeignCrl { crl: PathBuf, ca: PathBuf },
    #[error("cannot read random bytes: {0}")]
    Random(#[source] std::io::Error),
}
