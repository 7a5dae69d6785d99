//! Registration of a container in DNS and Puppet, done by the host that runs
//! the DNS container or the Puppet master, and commands run inside managed
//! containers (dnsmasq's reload, Puppet's cert clean and agent).
//!
//! The file edits are the `regfiles` module's (locked, atomic); this
//! module checks that the registry container is this host's, reloads
//! dnsmasq, and reports what changed. The client decides what goes where:
//! a request carries only the targets this host is responsible for.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{Host, HostError, HostErrorKind};
use crate::docker::Inspected;
use crate::progress::Reporter;
use crate::regfiles::{self, Change, RegistrationError, SiteChange};

/// A container to register, and the registries of this host to register it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    /// `name.domain`, or the name alone.
    pub fqdn: String,
    pub ip: Ipv4Addr,
    /// The Puppet service; without one, Puppet's files are left alone.
    pub service: Option<String>,
    pub dns: Option<DnsTarget>,
    pub puppet: Option<PuppetTarget>,
}

/// The dnsmasq container of this host and its addn-hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTarget {
    pub container: String,
    pub hostsfile: PathBuf,
    /// Run inside the DNS container after an edit; empty: no reload.
    pub reload: String,
}

/// The Puppet master container of this host and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuppetTarget {
    pub master: String,
    pub hieradata: PathBuf,
    pub sitepp: PathBuf,
}

/// A registry container of this host, as a registration finds it.
#[derive(Debug)]
enum Presence {
    Running(Inspected),
    Stopped(Inspected),
    Absent,
}

impl Presence {
    fn container(&self) -> Option<&Inspected> {
        match self {
            Presence::Running(c) | Presence::Stopped(c) => Some(c),
            Presence::Absent => None,
        }
    }

    fn state(&self) -> &'static str {
        match self {
            Presence::Running(_) => "running",
            Presence::Stopped(_) => "stopped",
            Presence::Absent => "absent",
        }
    }
}

impl Host {
    /// Adds the container's DNS line (then reloads dnsmasq) and its Puppet
    /// entries. Refuses, before touching anything, when the DNS container is
    /// not this host's running container or the master is not this host's.
    pub async fn register(&self, r: &Registration, reporter: &Reporter) -> Result<(), HostError> {
        if let Some(dns) = &r.dns {
            let c = match self.registry("dns container", &dns.container).await? {
                Presence::Running(c) => c,
                other => {
                    return Err(self.registry_down("dns container", &dns.container, other.state()));
                }
            };
            self.check_visible("dns container", &c, &dns.hostsfile, reporter)?;
            let (ip, fqdn, file) = (r.ip, r.fqdn.clone(), dns.hostsfile.clone());
            let change = self
                .edit(move || regfiles::dns_add(&file, ip, &fqdn))
                .await?;
            reporter.step(format!(
                "dns: {} {} {} {}",
                r.ip,
                r.fqdn,
                said(change, "to"),
                dns.hostsfile.display()
            ));
            // Also when nothing changed: a repair must leave dnsmasq serving
            // what the file says, even after a hand edit without a reload.
            self.reload(dns, reporter).await?;
        }
        if let (Some(puppet), Some(service)) = (&r.puppet, &r.service) {
            // The files are edited whether the master runs or not.
            let presence = self.registry("puppet master", &puppet.master).await?;
            let Some(master) = presence.container() else {
                return Err(self.registry_down("puppet master", &puppet.master, "absent"));
            };
            self.check_visible("puppet master", master, &puppet.hieradata, reporter)?;
            self.check_visible("puppet master", master, &puppet.sitepp, reporter)?;
            let (file, svc, name) = (puppet.hieradata.clone(), service.clone(), r.name.clone());
            let change = self
                .edit(move || regfiles::hiera_add(&file, &svc, &name))
                .await?;
            reporter.step(format!(
                "puppet: {} {} registered_services.{service} in {}",
                r.name,
                said(change, "to"),
                puppet.hieradata.display()
            ));
            let (file, svc, fqdn) = (puppet.sitepp.clone(), service.clone(), r.fqdn.clone());
            let change = self
                .edit(move || regfiles::sitepp_add(&file, &svc, &fqdn))
                .await?;
            self.report_site(change, r, service, &puppet.sitepp, "to", reporter);
        }
        Ok(())
    }

    /// Takes the container's DNS line and Puppet entries out again. The
    /// files are edited even when the registry container is down, so they
    /// are right when it comes back; dnsmasq that is not running cannot be
    /// reloaded, which is an error unless it is the container going away.
    pub async fn deregister(&self, r: &Registration, reporter: &Reporter) -> Result<(), HostError> {
        if let Some(dns) = &r.dns {
            let presence = self.registry("dns container", &dns.container).await?;
            if let Some(c) = presence.container() {
                self.check_visible("dns container", c, &dns.hostsfile, reporter)?;
            }
            let (file, fqdn) = (dns.hostsfile.clone(), r.fqdn.clone());
            let change = self
                .edit(move || regfiles::dns_remove(&file, &fqdn))
                .await?;
            reporter.step(format!(
                "dns: {} {} {}",
                r.fqdn,
                said(change, "from"),
                dns.hostsfile.display()
            ));
            match presence {
                Presence::Running(_) => self.reload(dns, reporter).await?,
                _ if dns.container == r.name => {
                    reporter.step(format!("dns: {} is going away: no reload", dns.container));
                }
                other => {
                    return Err(self.registry_down("dns container", &dns.container, other.state()));
                }
            }
        }
        if let (Some(puppet), Some(service)) = (&r.puppet, &r.service) {
            // Only a master of another host is refused: the files stay on
            // this host when the master is gone.
            let presence = self.registry("puppet master", &puppet.master).await?;
            if let Some(master) = presence.container() {
                self.check_visible("puppet master", master, &puppet.hieradata, reporter)?;
                self.check_visible("puppet master", master, &puppet.sitepp, reporter)?;
            }
            let (file, svc, name) = (puppet.hieradata.clone(), service.clone(), r.name.clone());
            let change = self
                .edit(move || regfiles::hiera_remove(&file, &svc, &name))
                .await?;
            reporter.step(format!(
                "puppet: {} {} registered_services.{service} in {}",
                r.name,
                said(change, "from"),
                puppet.hieradata.display()
            ));
            let (file, svc, fqdn) = (puppet.sitepp.clone(), service.clone(), r.fqdn.clone());
            let change = self
                .edit(move || regfiles::sitepp_remove(&file, &svc, &fqdn))
                .await?;
            self.report_site(change, r, service, &puppet.sitepp, "from", reporter);
        }
        Ok(())
    }

    /// The registry container `name` of this host. A container of another
    /// host, or not managed by dockstack, is an error: the request reached
    /// the wrong host and must not edit this host's files.
    async fn registry(&self, role: &'static str, name: &str) -> Result<Presence, HostError> {
        Ok(match self.inspect_managed(name).await {
            Ok(Some(c)) if c.running => Presence::Running(c),
            Ok(Some(c)) => Presence::Stopped(c),
            Ok(None) => Presence::Absent,
            Err(e) => {
                let HostErrorKind::NotManaged { owner, .. } = e.kind() else {
                    return Err(e);
                };
                let state = match owner {
                    Some(o) => format!("it belongs to {o}"),
                    None => "it is not managed by dockstack".to_string(),
                };
                return Err(self.err(HostErrorKind::RegistryDown {
                    role,
                    name: name.to_string(),
                    state,
                }));
            }
        })
    }

    /// Refuses a file that is in none of the registry container's volumes:
    /// the container would never see the edit, and a server running as root
    /// must not edit whatever host file a request names. A file mounted on
    /// its own is a warning: the container keeps the old file open after an
    /// edit, which replaces the file (atomically, by rename).
    fn check_visible(
        &self,
        role: &'static str,
        c: &Inspected,
        file: &Path,
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        let file = resolved(file);
        let mut sources = c.mounts.iter().map(|m| resolved(m));
        let Some(source) = sources.find(|m| file.starts_with(m)) else {
            return Err(self.err(HostErrorKind::NotInVolume {
                role,
                container: c.name.clone(),
                file,
            }));
        };
        if source == file {
            reporter.warn(format!(
                "{} is mounted into {role} {} on host {} as a file: the container goes on seeing \
                 the file as it was before an edit; mount its directory instead",
                file.display(),
                c.name,
                self.id()
            ));
        }
        Ok(())
    }

    fn registry_down(&self, role: &'static str, name: &str, state: &str) -> HostError {
        self.err(HostErrorKind::RegistryDown {
            role,
            name: name.to_string(),
            state: state.to_string(),
        })
    }

    async fn reload(&self, dns: &DnsTarget, reporter: &Reporter) -> Result<(), HostError> {
        if dns.reload.trim().is_empty() {
            return Ok(());
        }
        self.exec(&dns.container, &dns.reload, &[], reporter).await
    }

    /// Runs a file edit off the async workers: it may wait on another
    /// writer's lock.
    async fn edit<T: Send + 'static>(
        &self,
        edit: impl FnOnce() -> Result<T, RegistrationError> + Send + 'static,
    ) -> Result<T, HostError> {
        match tokio::task::spawn_blocking(edit).await {
            Ok(result) => result.map_err(|e| self.err(e)),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn report_site(
        &self,
        change: SiteChange,
        r: &Registration,
        service: &str,
        sitepp: &Path,
        direction: &str,
        reporter: &Reporter,
    ) {
        match change {
            SiteChange::Changed(c) => reporter.step(format!(
                "puppet: '{}' {} node '{service}' in {}",
                r.fqdn,
                said(c, direction),
                sitepp.display()
            )),
            SiteChange::NoNodeLine => reporter.warn(format!(
                "{} on host {} has no node '{service}' line: {} of service {service} {}",
                sitepp.display(),
                self.id(),
                r.fqdn,
                if direction == "to" {
                    "is not added"
                } else {
                    "has nothing to remove"
                }
            )),
        }
    }
}

/// `path` with its directory's symlinks resolved, as Docker reports mounts;
/// as it is when the directory does not exist.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent().map(Path::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// "added to", "removed from", "already in", ... for progress lines.
fn said(change: Change, direction: &str) -> String {
    match change {
        Change::Added => format!("added {direction}"),
        Change::Replaced => format!("replaced {direction}"),
        Change::Removed => format!("removed {direction}"),
        Change::Unchanged if direction == "from" => "already absent from".to_string(),
        Change::Unchanged => "already in".to_string(),
    }
}
