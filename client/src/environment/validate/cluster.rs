//! The `cluster` section: the etcd that holds the change lock and the
//! address reservations of a cluster shared by several files.

use super::Checker;
use super::keys::{CLUSTER_KEYS, CLUSTER_TLS_KEYS, DEFAULT_CLUSTER_PREFIX};
use crate::environment::model::{Cluster, EtcdTls};
use crate::environment::yaml::Entry;

impl Checker {
    pub(super) fn cluster(&mut self, entry: &Entry) -> Option<Cluster> {
        if entry.value.is_null() {
            return None;
        }
        let fields = self.fields(
            &entry.value,
            entry.key.pos,
            "cluster",
            CLUSTER_KEYS,
            "a mapping with etcd, prefix and tls",
        )?;
        let mut endpoints = Vec::new();
        let given = self.string_list(&fields, "etcd", "URL");
        let none_given = given.is_empty();
        for (url, pos) in given {
            if url.starts_with("https://") || url.starts_with("http://") {
                endpoints.push(url);
            } else {
                self.report(
                    pos,
                    &fields.path("etcd"),
                    format!("`{url}` is no etcd URL (https://HOST:PORT)"),
                );
            }
        }
        if none_given {
            self.report(
                fields.owner,
                &fields.path("etcd"),
                "cluster needs at least one etcd URL",
            );
        }
        let prefix = match self.value(&fields, "prefix", false) {
            Some((node, path)) => {
                let p = self.string(node, &path, "a key prefix")?;
                if !p.starts_with('/') || p.ends_with('/') || p.chars().any(char::is_control) {
                    self.report(
                        node.pos,
                        &path,
                        format!("prefix `{p}` must start with `/`, not end with one, and hold no control character"),
                    );
                    return None;
                }
                p
            }
            None => DEFAULT_CLUSTER_PREFIX.to_owned(),
        };
        let tls = match fields.get("tls").filter(|e| !e.value.is_null()) {
            Some(tls) => {
                let path = fields.path("tls");
                let f = self.fields(
                    &tls.value,
                    tls.key.pos,
                    &path,
                    CLUSTER_TLS_KEYS,
                    "a mapping with ca, cert and key",
                )?;
                let ca = self.absolute_path(&f, "ca");
                let cert = self.absolute_path(&f, "cert");
                let key = self.absolute_path(&f, "key");
                Some(EtcdTls {
                    ca: ca?,
                    cert: cert?,
                    key: key?,
                })
            }
            None => None,
        };
        if tls.is_none() && endpoints.iter().any(|u| u.starts_with("https://")) {
            self.report(
                fields.owner,
                &fields.path("tls"),
                "an https:// etcd needs tls: {ca, cert, key}",
            );
        }
        (!endpoints.is_empty()).then_some(Cluster {
            etcd: endpoints,
            prefix,
            tls,
        })
    }
}
