//! The registration file editors: DNS (dnsmasq hosts file) and Puppet (hieradata, site.pp).
//!
//! Each file has a pure text→text editor (`hosts`, `hieradata`, `sitepp`) and a
//! file-level function here that runs it under a lock with an atomic replace
//! (`atomic`). Editors keep every byte outside the entry they change, so the
//! files stay diffable and hand-editable, as the 2015 tools left them.
//!
//! A file is a [`RegFile`]: a directory trusted as its path names it (a
//! volume's source) and the file's path below it, where nothing is followed
//! that a container could have made a symlink (see `atomic`).

pub mod atomic;
pub mod hieradata;
pub mod hosts;
pub mod sitepp;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use atomic::RegFile;

/// What an edit did to the entry it was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Replaced,
    Removed,
    Unchanged,
}

/// Outcome of a site.pp edit: the service may have no node definition at all,
/// which the caller reports as a warning rather than an error (the 2015 tool
/// did the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteChange {
    Changed(Change),
    NoNodeLine,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    /// Someone held the lock all the time an edit waited for it.
    #[error("cannot lock {}: someone else holds it; gave up after {waited:?}", path.display())]
    LockHeld { path: PathBuf, waited: Duration },
    /// A symlink, or something other than a regular file, where the file,
    /// its lock or its directory is. They are in directories a container
    /// writes to, so it is refused, never followed.
    #[error("{}: {what}", path.display())]
    Refused { path: PathBuf, what: &'static str },
    #[error("{}line {line}: {message}", at(path))]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Valid input laid out in a way the line editors do not change safely
    /// (flow style, aliases, nested values); refused rather than guessed at.
    #[error("{}line {line}: {message}", at(path))]
    Unsupported {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}line {line}: {message}", at(path))]
    Conflict {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

fn at(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}: ", path.display())
    }
}

impl RegistrationError {
    /// The text editors know lines, not files: the file layer names the file.
    fn in_file(self, file: &Path) -> Self {
        match self {
            Self::Malformed {
                path,
                line,
                message,
            } if path.as_os_str().is_empty() => Self::Malformed {
                path: file.to_path_buf(),
                line,
                message,
            },
            Self::Unsupported {
                path,
                line,
                message,
            } if path.as_os_str().is_empty() => Self::Unsupported {
                path: file.to_path_buf(),
                line,
                message,
            },
            Self::Conflict {
                path,
                line,
                message,
            } if path.as_os_str().is_empty() => Self::Conflict {
                path: file.to_path_buf(),
                line,
                message,
            },
            other => other,
        }
    }

    pub(crate) fn malformed(line: usize, message: impl Into<String>) -> Self {
        Self::Malformed {
            path: PathBuf::new(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(line: usize, message: impl Into<String>) -> Self {
        Self::Unsupported {
            path: PathBuf::new(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(line: usize, message: impl Into<String>) -> Self {
        Self::Conflict {
            path: PathBuf::new(),
            line,
            message: message.into(),
        }
    }
}

/// Names written into the files: host names, container names and Puppet
/// services. The character set keeps them plain in all three formats (no
/// quoting in YAML or Puppet, no comment or separator characters in hosts).
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), RegistrationError> {
    let invalid = |reason| {
        Err(RegistrationError::InvalidName {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return invalid("it is empty");
    }
    if value.len() > 253 {
        return invalid("it is longer than 253 bytes");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return invalid("only letters, digits, '.', '-' and '_' are allowed");
    }
    if value.starts_with(['-', '.']) || value.ends_with('.') || value.contains("..") {
        return invalid("it must not start with '-' or '.', end with '.' or contain '..'");
    }
    Ok(())
}

/// Makes `IP FQDN` the line for `fqdn` in a dnsmasq addn-hosts file (and
/// `IP6 FQDN` its IPv6 one, with `ip6`), creating the file if it is
/// missing (its directory must exist).
pub fn dns_add(
    hostsfile: impl Into<RegFile>,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    fqdn: &str,
) -> Result<Change, RegistrationError> {
    check_name("host name", fqdn)?;
    atomic::update(&hostsfile.into(), atomic::IfMissing::Empty, |text| {
        hosts::add(text, ip, ip6, fqdn)
    })
}

/// Deletes the lines for `fqdn` from a dnsmasq addn-hosts file. A missing file
/// holds no entry, so it is left missing.
pub fn dns_remove(hostsfile: impl Into<RegFile>, fqdn: &str) -> Result<Change, RegistrationError> {
    check_name("host name", fqdn)?;
    atomic::update(&hostsfile.into(), atomic::IfMissing::Empty, |text| {
        hosts::remove(text, fqdn)
    })
}

/// Adds `name` to `registered_services.<service>` in a hieradata file.
pub fn hiera_add(
    hieradata: impl Into<RegFile>,
    service: &str,
    name: &str,
) -> Result<Change, RegistrationError> {
    check_name("service", service)?;
    check_name("container name", name)?;
    atomic::update(&hieradata.into(), atomic::IfMissing::Fail, |text| {
        hieradata::add(text, service, name)
    })
}

/// Removes `name` from `registered_services.<service>`; an emptied list
/// becomes null (`service:` alone), as PyYAML wrote it in 2015.
pub fn hiera_remove(
    hieradata: impl Into<RegFile>,
    service: &str,
    name: &str,
) -> Result<Change, RegistrationError> {
    check_name("service", service)?;
    check_name("container name", name)?;
    atomic::update(&hieradata.into(), atomic::IfMissing::Fail, |text| {
        hieradata::remove(text, service, name)
    })
}

/// Appends ` ,'fqdn'` to the names of `node '<service>' ... {`.
pub fn sitepp_add(
    sitepp: impl Into<RegFile>,
    service: &str,
    fqdn: &str,
) -> Result<SiteChange, RegistrationError> {
    check_name("service", service)?;
    check_name("host name", fqdn)?;
    atomic::update(&sitepp.into(), atomic::IfMissing::Fail, |text| {
        sitepp::add(text, service, fqdn)
    })
}

/// Takes `'fqdn'` out of the names of `node '<service>' ... {` again.
pub fn sitepp_remove(
    sitepp: impl Into<RegFile>,
    service: &str,
    fqdn: &str,
) -> Result<SiteChange, RegistrationError> {
    check_name("service", service)?;
    check_name("host name", fqdn)?;
    atomic::update(&sitepp.into(), atomic::IfMissing::Fail, |text| {
        sitepp::remove(text, service, fqdn)
    })
}

/// What a text edit reports, so the file layer knows whether to write.
pub trait Outcome {
    fn is_change(&self) -> bool;
}

impl Outcome for Change {
    fn is_change(&self) -> bool {
        *self != Change::Unchanged
    }
}

impl Outcome for SiteChange {
    fn is_change(&self) -> bool {
        matches!(self, SiteChange::Changed(c) if c.is_change())
    }
}

/// Splits text into lines that keep their terminators, so joining them gives
/// the input back byte for byte.
pub(crate) fn lines_of(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// The line ending new lines get: whatever the file already uses.
pub(crate) fn eol_of(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// Makes sure the last line is terminated before lines are added after it.
pub(crate) fn terminate_last(lines: &mut [String], eol: &str) {
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push_str(eol);
    }
}

/// A line without its terminator.
pub(crate) fn body(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}
