//! Which registry containers, files and names a role's registrations may
//! use: the DNS containers and Puppet masters it may edit and run commands
//! in, where their files may be, and the domains the names it registers (or
//! cleans certificates of) must be in.

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::file::clean_paths;
use super::{Bad, PolicyError, Refusal, Role, list, refuse, volumes};
use crate::host::{RecordOf, Registration};

/// A role's registration allowlists; `None`: anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationRules {
    /// DNS containers a registration may edit the hosts file of and reload.
    pub dns_containers: Option<Vec<String>>,
    /// Puppet masters whose files it may edit and that may run its
    /// certificate cleans.
    pub puppet_masters: Option<Vec<String>>,
    /// Prefixes registration files must be under.
    pub files: Option<Vec<PathBuf>>,
    /// Domains a registered FQDN must be `NAME.DOMAIN` of, and a cleaned
    /// certificate's too. A held role's registrations are also held to the
    /// record of the container when it is on the registry's host.
    pub domains: Option<Vec<String>>,
}

impl RegistrationRules {
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// Nothing: no registry container, file or domain.
    pub fn none() -> Self {
        RegistrationRules {
            dns_containers: Some(Vec::new()),
            puppet_masters: Some(Vec::new()),
            files: Some(Vec::new()),
            domains: Some(Vec::new()),
        }
    }

    /// Whether a registration is held to the record of its container: a
    /// role that may name only some domains must not register another
    /// container's name under its own.
    pub fn held_to_record(&self) -> bool {
        self.domains.is_some()
    }

    /// Whether `fqdn` is `NAME.DOMAIN` of an allowed domain, with `NAME`
    /// not empty.
    pub fn fqdn_allowed(&self, fqdn: &str) -> bool {
        let Some(domains) = &self.domains else {
            return true;
        };
        domains.iter().any(|d| {
            fqdn.strip_suffix(d.as_str())
                .and_then(|n| n.strip_suffix('.'))
                .is_some_and(|n| !n.is_empty())
        })
    }

    /// Whether `container` may run a certificate clean (a registration
    /// command naming a `{fqdn}` or `{name}`).
    pub fn may_clean_in(&self, container: &str) -> bool {
        self.puppet_masters
            .as_ref()
            .is_none_or(|m| m.iter().any(|c| c == container))
    }

    /// Checks the registry containers, files and names of `r`.
    pub fn check(&self, role: Role, r: &Registration) -> Result<(), Refusal> {
        if let Some(d) = &r.dns {
            check_listed(role, "dns.container", &d.container, &self.dns_containers)?;
        }
        if let Some(p) = &r.puppet {
            check_listed(role, "puppet.master", &p.master, &self.puppet_masters)?;
        }
        if (r.dns.is_some() || r.puppet.is_some())
            && let Some(domains) = &self.domains
        {
            let own = domains.iter().any(|d| r.fqdn == format!("{}.{d}", r.name));
            if !own {
                return Err(refuse(
                    "fqdn",
                    format!(
                        "the {role} policy registers a container only as NAME.DOMAIN of the \
                         domains {}",
                        names(domains)
                    ),
                ));
            }
        }
        let Some(allowed) = &self.files else {
            return Ok(());
        };
        let mut files = Vec::new();
        if let Some(d) = &r.dns {
            files.push(("dns.hostsfile", &d.hostsfile));
        }
        if let Some(p) = &r.puppet {
            files.push(("puppet.hieradata", &p.hieradata));
            files.push(("puppet.sitepp", &p.sitepp));
        }
        for (key, file) in files {
            if !allowed
                .iter()
                .any(|a| volumes::under(&volumes::resolved(file), a))
            {
                return Err(refuse(
                    key,
                    format!(
                        "the {role} policy allows registration files only under {}",
                        list(allowed)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a held role's registration against what this host's record of
/// the container says: its name, address and service as the server made
/// them, not as the client claims. A container this host does not have is
/// left to the domains (it is another host's, or destroyed).
pub fn check_record(role: Role, r: &Registration, record: &RecordOf) -> Result<(), Refusal> {
    let (fqdn, ip, ip6, service) = match record {
        RecordOf::Absent => return Ok(()),
        RecordOf::Foreign => {
            return Err(refuse(
                "name",
                format!(
                    "the {role} policy registers only containers of dockstack; {} is another's",
                    r.name
                ),
            ));
        }
        RecordOf::Recorded {
            fqdn,
            ip,
            ip6,
            service,
        } => (fqdn, ip, ip6, service),
    };
    let asked_ip6 = r.ip6.map(|a| a.to_string());
    for (key, asked, recorded) in [
        ("fqdn", Some(r.fqdn.clone()), Some(fqdn.clone())),
        ("ip", Some(r.ip.to_string()), Some(ip.clone())),
        ("ip6", asked_ip6, ip6.clone()),
        ("service", r.service.clone(), service.clone()),
    ] {
        if asked != recorded {
            return Err(refuse(
                key,
                format!(
                    "the {role} policy registers a container as its record says: {} has {key} \
                     {}, not {}",
                    r.name,
                    recorded.as_deref().unwrap_or("(none)"),
                    asked.as_deref().unwrap_or("(none)")
                ),
            ));
        }
    }
    Ok(())
}

fn check_listed(
    role: Role,
    key: &str,
    name: &str,
    allowed: &Option<Vec<String>>,
) -> Result<(), Refusal> {
    match allowed {
        Some(a) if !a.iter().any(|c| c == name) => Err(refuse(
            key,
            format!(
                "the {role} policy allows registration only in {} {}",
                if key == "dns.container" {
                    "the dns containers"
                } else {
                    "the puppet masters"
                },
                names(a)
            ),
        )),
        _ => Ok(()),
    }
}

fn names(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

/// The `registration` key of a role: a list of file prefixes (as before
/// the containers and domains were keys), or the map of every allowlist.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RegistrationSection {
    Files(Vec<Spanned<String>>),
    Rules(RulesSection),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesSection {
    dns_containers: Option<Vec<Spanned<String>>>,
    puppet_masters: Option<Vec<Spanned<String>>>,
    files: Option<Vec<Spanned<String>>>,
    domains: Option<Vec<Spanned<String>>>,
}

impl RegistrationSection {
    pub(super) fn apply(
        &self,
        at: &str,
        target: &mut RegistrationRules,
        bad: Bad<'_>,
    ) -> Result<(), PolicyError> {
        let at = format!("{at}.registration");
        let rules = match self {
            RegistrationSection::Files(f) => {
                target.files = Some(clean_paths(f, &at, bad)?);
                return Ok(());
            }
            RegistrationSection::Rules(r) => r,
        };
        if let Some(f) = &rules.files {
            target.files = Some(clean_paths(f, &format!("{at}.files"), bad)?);
        }
        let container = |s: &str| dockstack_types::name::is_docker_name(s);
        let domain = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        for (key, given, slot, ok) in [
            (
                "dns_containers",
                &rules.dns_containers,
                &mut target.dns_containers,
                &container as &dyn Fn(&str) -> bool,
            ),
            (
                "puppet_masters",
                &rules.puppet_masters,
                &mut target.puppet_masters,
                &container,
            ),
            ("domains", &rules.domains, &mut target.domains, &domain),
        ] {
            let Some(given) = given else { continue };
            if let Some((i, s)) = given.iter().enumerate().find(|(_, s)| !ok(&s.value)) {
                return Err(bad(
                    s.referenced.line(),
                    format!("{at}.{key}[{i}]"),
                    format!("{:?} is not a container name or domain", s.value),
                ));
            }
            *slot = Some(given.iter().map(|s| s.value.clone()).collect());
        }
        Ok(())
    }
}
