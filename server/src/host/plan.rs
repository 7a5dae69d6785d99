//! What a plan is on one host: each spec beside the container of its name,
//! how the two differ, and the managed containers no spec names. Nothing
//! is changed.

use std::collections::HashMap;

use futures::StreamExt;

use super::status::PARALLEL;
use super::{ContainerStatus, Host, HostError};
use crate::record;
use crate::spec::ContainerSpec;

/// One spec of a plan, beside what this host runs under its name.
#[derive(Debug, Clone)]
pub struct PlanEntry {
    pub name: String,
    pub found: Option<ContainerStatus>,
    /// See [`record::spec_differences`]; empty when the same.
    pub differences: Vec<String>,
    pub image_present: bool,
    /// Config volumes whose contents changed since they were applied.
    pub config_changed: Vec<String>,
}

/// The plan of one host.
#[derive(Debug, Clone, Default)]
pub struct HostPlan {
    pub entries: Vec<PlanEntry>,
    pub unrequested: Vec<ContainerStatus>,
}

impl Host {
    pub async fn plan(&self, specs: &[ContainerSpec]) -> Result<HostPlan, HostError> {
        let listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        let apps: HashMap<String, record::Labels> = listed
            .into_iter()
            .filter(|l| matches!(record::member(&l.labels), record::Member::App(_)))
            .map(|l| (l.name, l.labels))
            .collect();
        let mut images: Vec<String> = specs.iter().map(|s| s.image.clone()).collect();
        images.sort_unstable();
        images.dedup();
        // Owned items: a stream of borrowed ones trips the compiler's
        // lifetime inference of the Send future a gRPC handler must be.
        let present: HashMap<String, bool> = futures::stream::iter(images)
            .map(|image| async move {
                let found = self.docker.image_exists(&image).await;
                (image, found)
            })
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|(image, found)| found.map(|f| (image, f)).map_err(|e| self.err(e)))
            .collect::<Result<_, _>>()?;

        let (apps, present) = (&apps, &present);
        let entries = futures::stream::iter(0..specs.len())
            .map(|i| {
                let spec = &specs[i];
                let labels = apps.get(&spec.name);
                async move {
                    let found = match labels {
                        Some(_) => self.status_if_there(&spec.name).await?,
                        None => None,
                    };
                    let differences = match (labels, &found) {
                        (Some(l), Some(_)) => {
                            record::spec_differences(spec, l, self.docker.env_key())
                        }
                        _ => Vec::new(),
                    };
                    let config_changed = match (labels, &found) {
                        // Only paths the container was made with (and its
                        // policy accepted then) are read, never one a plan
                        // request merely names.
                        (Some(l), Some(f))
                            if !spec.config_volumes.is_empty()
                                && record::config_volumes(l) == spec.config_volumes =>
                        {
                            let current = self.hash_config(spec.config_volumes.clone()).await?;
                            let applied = crate::confighash::applied(&self.config.state_dir, &f.id)
                                .unwrap_or_else(|| record::config_hashes(l));
                            crate::confighash::changed(&applied, &current)
                        }
                        _ => Vec::new(),
                    };
                    Ok::<_, HostError>(PlanEntry {
                        name: spec.name.clone(),
                        found,
                        differences,
                        config_changed,
                        image_present: present.get(spec.image.as_str()).copied().unwrap_or(false),
                    })
                }
            })
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;

        let mut others: Vec<String> = apps
            .keys()
            .filter(|n| !specs.iter().any(|s| &s.name == *n))
            .cloned()
            .collect();
        others.sort();
        let unrequested = self.statuses(others).await?;
        Ok(HostPlan {
            entries,
            unrequested,
        })
    }
}
