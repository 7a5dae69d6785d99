//! Registration of a container in DNS and Puppet, done by the host that runs
//! the DNS container or the Puppet master: the registry containers, where
//! their files are in their volumes, and the edits.
//!
//! The file edits are the `regfiles` module's (locked, atomic); this
//! module checks that the registry container is this host's, reloads
//! dnsmasq (a command run in it, see `exec`), and reports what changed. The client decides what goes where:
//! a request carries only the targets this host is responsible for.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use super::{Host, HostError, HostErrorKind};
use crate::docker::Inspected;
use crate::metrics::metrics;
use crate::progress::Reporter;
use crate::regfiles::{self, Change, Outcome, RegFile, RegistrationError, SiteChange};

/// A container to register, and the registries of this host to register it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    /// `name.domain`, or the name alone.
    pub fqdn: String,
    pub ip: Ipv4Addr,
    /// A dual-stack container's IPv6 address: its AAAA line.
    pub ip6: Option<Ipv6Addr>,
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

/// What this host's record of a container says it registers as, for a
/// registration held to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOf {
    /// No container of that name here: of another host, or destroyed.
    Absent,
    /// A container of that name that is not this dockstack host's.
    Foreign,
    Recorded {
        fqdn: String,
        ip: String,
        ip6: Option<String>,
        service: Option<String>,
    },
}

impl Host {
    /// The registration the record of container `name` gives (see
    /// [`RecordOf`]).
    pub async fn record_of(&self, name: &str) -> Result<RecordOf, HostError> {
        let c = match self.inspect_managed(name).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(RecordOf::Absent),
            Err(e) if matches!(e.kind(), HostErrorKind::NotManaged { .. }) => {
                return Ok(RecordOf::Foreign);
            }
            Err(e) => return Err(e),
        };
        let shown = crate::record::shown(&c.labels);
        Ok(RecordOf::Recorded {
            fqdn: if shown.domain.is_empty() {
                name.to_string()
            } else {
                format!("{name}.{}", shown.domain)
            },
            ip: crate::record::ip(&c.labels).to_string(),
            ip6: crate::record::ip6(&c.labels).map(str::to_string),
            service: (!shown.service.is_empty()).then_some(shown.service),
        })
    }

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
            let file = self.check_visible(
                "dns container",
                &c.name,
                &c.mounts,
                &dns.hostsfile,
                reporter,
            )?;
            let (ip, ip6, fqdn) = (r.ip, r.ip6, r.fqdn.clone());
            let change = self
                .edit("hosts", move || regfiles::dns_add(&file, ip, ip6, &fqdn))
                .await?;
            let shown = match r.ip6 {
                Some(v6) => format!("{} {v6}", r.ip),
                None => r.ip.to_string(),
            };
            reporter.step(format!(
                "dns: {shown} {} {} {}",
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
            let (name, mounts) = (&master.name, &master.mounts);
            let hieradata =
                self.check_visible("puppet master", name, mounts, &puppet.hieradata, reporter)?;
            let sitepp =
                self.check_visible("puppet master", name, mounts, &puppet.sitepp, reporter)?;
            let (svc, name) = (service.clone(), r.name.clone());
            let change = self
                .edit("hieradata", move || {
                    regfiles::hiera_add(&hieradata, &svc, &name)
                })
                .await?;
            reporter.step(format!(
                "puppet: {} {} registered_services.{service} in {}",
                r.name,
                said(change, "to"),
                puppet.hieradata.display()
            ));
            let (svc, fqdn) = (service.clone(), r.fqdn.clone());
            let change = self
                .edit("sitepp", move || regfiles::sitepp_add(&sitepp, &svc, &fqdn))
                .await?;
            self.report_site(change, r, service, &puppet.sitepp, "to", reporter);
        }
        Ok(())
    }

    /// Takes the container's DNS line and Puppet entries out again. The
    /// files are checked as `register` checks them, and edited even when
    /// the registry container is stopped, so they are right when it comes
    /// back; dnsmasq that is not running cannot be reloaded, which is an
    /// error unless it is the container going away. A registry container
    /// that does not exist is refused before anything is edited, but for
    /// its own deregistration after a destroy (see `visible_or_gone`).
    pub async fn deregister(&self, r: &Registration, reporter: &Reporter) -> Result<(), HostError> {
        if let Some(dns) = &r.dns {
            let role = "dns container";
            let presence = self.registry(role, &dns.container).await?;
            let file =
                self.visible_or_gone(role, &dns.container, &presence, &dns.hostsfile, r, reporter)?;
            let fqdn = r.fqdn.clone();
            let change = self
                .edit("hosts", move || regfiles::dns_remove(&file, &fqdn))
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
            // A stopped master's files are edited: they stay on this host.
            let role = "puppet master";
            let presence = self.registry(role, &puppet.master).await?;
            let master = &puppet.master;
            let hieradata =
                self.visible_or_gone(role, master, &presence, &puppet.hieradata, r, reporter)?;
            let sitepp =
                self.visible_or_gone(role, master, &presence, &puppet.sitepp, r, reporter)?;
            let (svc, name) = (service.clone(), r.name.clone());
            let change = self
                .edit("hieradata", move || {
                    regfiles::hiera_remove(&hieradata, &svc, &name)
                })
                .await?;
            reporter.step(format!(
                "puppet: {} {} registered_services.{service} in {}",
                r.name,
                said(change, "from"),
                puppet.hieradata.display()
            ));
            let (svc, fqdn) = (service.clone(), r.fqdn.clone());
            let change = self
                .edit("sitepp", move || {
                    regfiles::sitepp_remove(&sitepp, &svc, &fqdn)
                })
                .await?;
            self.report_site(change, r, service, &puppet.sitepp, "from", reporter);
        }
        Ok(())
    }

    /// The registry container `name` of this host. A container of another
    /// host, or not managed by dockstack, is an error: the request reached
    /// the wrong host and must not edit this host's files.
    async fn registry(&self, role: &'static str, name: &str) -> Result<Presence, HostError> {
        let found = self.inspect_managed(name).await;
        if let Ok(Some(c)) = &found {
            self.seen_mounts.remember(name, &c.mounts);
        }
        Ok(match found {
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
    ///
    /// The file is returned as the edit reaches it: below the volume's
    /// source, which is the host's (its path may go through symlinks), every
    /// component is the container's, and none is followed if it is a
    /// symlink, neither here nor when the file is edited.
    fn check_visible(
        &self,
        role: &'static str,
        container: &str,
        mounts: &[PathBuf],
        file: &Path,
        reporter: &Reporter,
    ) -> Result<RegFile, HostError> {
        let mounts: Vec<PathBuf> = mounts.iter().map(|m| resolved(m)).collect();
        let Some(found) = locate(file, &mounts) else {
            return Err(self.err(HostErrorKind::NotInVolume {
                role,
                container: container.to_string(),
                file: resolved(file),
            }));
        };
        if found.alone {
            reporter.warn(format!(
                "{} is mounted into {role} {container} on host {} as a file: the container goes \
                 on seeing the file as it was before an edit; mount its directory instead",
                file.display(),
                self.id()
            ));
        }
        Ok(found.file)
    }

    /// [`Host::check_visible`] for a deregistration. A registry container
    /// that does not exist cannot be checked, so nothing is edited for it,
    /// but for its own deregistration: a destroy removes the container
    /// first and then takes its own name out of its files, which are
    /// checked against its volumes as this server last saw them.
    fn visible_or_gone(
        &self,
        role: &'static str,
        name: &str,
        presence: &Presence,
        file: &Path,
        r: &Registration,
        reporter: &Reporter,
    ) -> Result<RegFile, HostError> {
        if let Some(c) = presence.container() {
            return self.check_visible(role, &c.name, &c.mounts, file, reporter);
        }
        let refused = |why: &str| self.registry_down(role, name, &format!("absent: {why}"));
        if name != r.name {
            return Err(refused(
                "nothing is edited, as a file can only be checked against the volumes of a \
                 container that exists",
            ));
        }
        let Some(mounts) = self.seen_mounts.last_seen(name) else {
            return Err(refused(
                "its volumes were never seen by this server, so nothing is edited: take its \
                 entries out by hand",
            ));
        };
        reporter.step(format!(
            "{role} {name} is gone: {} checked against its volumes as last seen",
            file.display()
        ));
        self.check_visible(role, name, &mounts, file, reporter)
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
    /// Runs the edit of registration file `file` (hosts, hieradata,
    /// sitepp) off the runtime, and counts it.
    async fn edit<T: Outcome + Send + 'static>(
        &self,
        file: &'static str,
        edit: impl FnOnce() -> Result<T, RegistrationError> + Send + 'static,
    ) -> Result<T, HostError> {
        match tokio::task::spawn_blocking(edit).await {
            Ok(Ok(outcome)) => {
                metrics().registration_edited(file, outcome.is_change());
                Ok(outcome)
            }
            Ok(Err(e)) => {
                metrics().registration_failed(file);
                Err(self.err(e))
            }
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

/// The mounts of the registry containers this host has found, by container
/// name: what a registry container's own deregistration is checked against
/// once a destroy has removed it. Kept for the life of the [`Host`]; a
/// server started since sees none, and refuses.
#[derive(Debug, Default)]
pub(super) struct SeenMounts(Mutex<BTreeMap<String, Vec<PathBuf>>>);

impl SeenMounts {
    fn remember(&self, name: &str, mounts: &[PathBuf]) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(name.to_string(), mounts.to_vec());
    }

    fn last_seen(&self, name: &str) -> Option<Vec<PathBuf>> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(name).cloned()
    }
}

/// Where a registration file is, for the edit.
#[derive(Debug, PartialEq, Eq)]
struct Located {
    file: RegFile,
    /// The file is a mount of its own.
    alone: bool,
}

/// Finds `file` in `mounts` (resolved): the first of its ancestors, from
/// the root down, that resolves to a path in a mount settles which mount it
/// is in; the path from that mount's source to the file is the container's,
/// to be taken as it is. Above it, symlinks are the host's and resolved
/// here. `None` for a file in no mount, a relative path or one with `..`.
fn locate(file: &Path, mounts: &[PathBuf]) -> Option<Located> {
    if !file.is_absolute() || file.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let mut ancestors: Vec<&Path> = file.ancestors().collect();
    ancestors.reverse();
    for a in ancestors {
        let canon = a.canonicalize().ok()?;
        // The outermost mount: everything below it is the container's.
        let Some(mount) = mounts
            .iter()
            .filter(|m| canon.starts_with(m))
            .min_by_key(|m| m.components().count())
        else {
            continue;
        };
        let rest = file.strip_prefix(a).ok()?;
        let below = canon.strip_prefix(mount).ok()?.join(rest);
        if below.as_os_str().is_empty() {
            // Mounted on its own: its directory is the host's.
            let (dir, name) = (mount.parent()?, mount.file_name()?);
            return Some(Located {
                file: RegFile::beneath(dir, name, file),
                alone: true,
            });
        }
        return Some(Located {
            file: RegFile::beneath(mount, below, file),
            alone: false,
        });
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A scratch directory, resolved, removed at the end of the test.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("dockstack-locate-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir.canonicalize().unwrap())
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn found(root: &Path, below: &str, shown: &Path) -> Option<Located> {
        Some(Located {
            file: RegFile::beneath(root, below, shown),
            alone: false,
        })
    }

    #[test]
    fn a_file_is_reached_below_the_volume_it_is_in() {
        let s = Scratch::new("volume");
        let vol = s.0.join("vol");
        fs::create_dir_all(vol.join("sub")).unwrap();
        fs::create_dir_all(s.0.join("other")).unwrap();
        let mounts = [s.0.join("elsewhere"), vol.clone()];

        let file = vol.join("hosts");
        assert_eq!(locate(&file, &mounts), found(&vol, "hosts", &file));
        // Not there yet: the edit creates it.
        let file = vol.join("sub").join("new");
        assert_eq!(locate(&file, &mounts), found(&vol, "sub/new", &file));
        assert_eq!(locate(&s.0.join("other").join("hosts"), &mounts), None);
        assert_eq!(locate(Path::new("vol/hosts"), &mounts), None);
        assert_eq!(
            locate(&vol.join("sub").join("..").join("hosts"), &mounts),
            None
        );
        // Of nested mounts, the outermost: all below it is the container's.
        let nested = [vol.join("sub"), vol.clone()];
        let file = vol.join("sub").join("hosts");
        assert_eq!(locate(&file, &nested), found(&vol, "sub/hosts", &file));
    }

    #[test]
    fn host_symlinks_above_the_volume_are_resolved_and_the_containers_are_not() {
        let s = Scratch::new("links");
        let vol = s.0.join("vol");
        fs::create_dir_all(vol.join("sub")).unwrap();
        fs::write(s.0.join("victim"), "x").unwrap();
        let mounts = [vol.clone()];

        // The host's: like /var/run -> /run.
        symlink(&s.0, s.0.join("run")).unwrap();
        let file = s.0.join("run").join("vol").join("hosts");
        assert_eq!(locate(&file, &mounts), found(&vol, "hosts", &file));
        // The host's, into the middle of the volume: `sub` is still the container's.
        symlink(vol.join("sub"), s.0.join("mid")).unwrap();
        let file = s.0.join("mid").join("hosts");
        assert_eq!(locate(&file, &mounts), found(&vol, "sub/hosts", &file));
        // The container's: kept as they are, for the edit to refuse.
        symlink(s.0.join("victim"), vol.join("hosts")).unwrap();
        let file = vol.join("hosts");
        assert_eq!(locate(&file, &mounts), found(&vol, "hosts", &file));
        symlink(&s.0, vol.join("up")).unwrap();
        let file = vol.join("up").join("victim");
        assert_eq!(locate(&file, &mounts), found(&vol, "up/victim", &file));
        // A host path that is a symlink to a file outside: in no volume.
        symlink(s.0.join("victim"), s.0.join("hosts-link")).unwrap();
        assert_eq!(locate(&s.0.join("hosts-link"), &mounts), None);
    }

    #[test]
    fn a_file_mounted_on_its_own_is_reached_from_its_hosts_directory() {
        let s = Scratch::new("alone");
        let file = s.0.join("dockstack.dns");
        fs::write(&file, "").unwrap();
        assert_eq!(
            locate(&file, std::slice::from_ref(&file)),
            Some(Located {
                file: RegFile::beneath(&s.0, "dockstack.dns", &file),
                alone: true,
            })
        );
    }

    #[test]
    fn the_volumes_of_a_registry_container_are_remembered_per_host() {
        // Each host keeps its own table.
        let (h_remember, h_other) = (SeenMounts::default(), SeenMounts::default());
        let mounts = vec![PathBuf::from("/srv/dns")];
        h_remember.remember("dns1", &mounts);
        assert_eq!(h_remember.last_seen("dns1"), Some(mounts));
        assert_eq!(h_other.last_seen("dns1"), None);
        assert_eq!(h_remember.last_seen("dns2"), None);
    }
}
