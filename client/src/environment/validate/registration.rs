//! The `registration` section: DNS and Puppet.

use std::path::PathBuf;

use super::accessors::Fields;
use super::keys::{
    DEFAULT_AGENT, DEFAULT_CERTCLEAN, DEFAULT_RELOAD, DNS_KEYS, PUPPET_KEYS, REGISTRATION_KEYS,
};
use super::{Checker, Reference};
use crate::environment::model::{DnsRegistration, PuppetRegistration, Registration};
use crate::environment::yaml::Entry;
use dockstack_types::volume::path_problem;

impl Checker {
    pub(super) fn registration(&mut self, entry: &Entry) -> Registration {
        let mut registration = Registration::default();
        let Some(fields) = self.fields(
            &entry.value,
            entry.key.pos,
            "registration",
            REGISTRATION_KEYS,
            "a mapping with dns and puppet",
        ) else {
            return registration;
        };

        if let Some(dns) = fields.get("dns").filter(|e| !e.value.is_null()) {
            let path = fields.path("dns");
            if let Some(f) = self.fields(&dns.value, dns.key.pos, &path, DNS_KEYS, "a mapping") {
                let container = self.registered_container(&f, "container", "dns container");
                let hostsfile = self.absolute_path(&f, "hostsfile");
                let reload = self.command_field(&f, "reload", DEFAULT_RELOAD);
                if let (Some(container), Some(hostsfile), Some(reload)) =
                    (container, hostsfile, reload)
                {
                    registration.dns = Some(DnsRegistration {
                        container,
                        hostsfile,
                        reload,
                    });
                }
            }
        }

        if let Some(puppet) = fields.get("puppet").filter(|e| !e.value.is_null()) {
            let path = fields.path("puppet");
            if let Some(f) = self.fields(
                &puppet.value,
                puppet.key.pos,
                &path,
                PUPPET_KEYS,
                "a mapping",
            ) {
                let master = self.registered_container(&f, "master", "puppet master");
                let hieradata = self.absolute_path(&f, "hieradata");
                let sitepp = self.absolute_path(&f, "sitepp");
                let certclean = self.command_field(&f, "certclean", DEFAULT_CERTCLEAN);
                let agent = self.command_field(&f, "agent", DEFAULT_AGENT);
                if let (Some(master), Some(hieradata), Some(sitepp), Some(certclean), Some(agent)) =
                    (master, hieradata, sitepp, certclean, agent)
                {
                    registration.puppet = Some(PuppetRegistration {
                        master,
                        hieradata,
                        sitepp,
                        certclean,
                        agent,
                    });
                }
            }
        }
        registration
    }

    pub(super) fn registered_container(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        what: &'static str,
    ) -> Option<String> {
        let (node, path) = self.value(fields, key, true)?;
        let name = self.string(node, &path, "a container name")?;
        self.references.push(Reference {
            name: name.clone(),
            pos: node.pos,
            path,
            what,
            from: None,
        });
        Some(name)
    }

    pub(super) fn absolute_path(&mut self, fields: &Fields<'_>, key: &str) -> Option<PathBuf> {
        let (node, path) = self.value(fields, key, true)?;
        let text = self.string(node, &path, "an absolute path")?;
        if let Some(problem) = path_problem(&text) {
            self.report(node.pos, &path, format!("path `{text}` {problem}"));
            return None;
        }
        Some(PathBuf::from(text))
    }

    pub(super) fn command_field(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        default: &str,
    ) -> Option<String> {
        let Some((node, path)) = self.value(fields, key, false) else {
            return Some(default.to_owned());
        };
        let line = self.string(node, &path, "a command line")?;
        self.command_line(&line, node.pos, &path).then_some(line)
    }
}
