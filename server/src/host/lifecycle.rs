//! The life of a container: run, start, stop and destroy, with their hooks
//! and the volume directories a run creates.

use std::path::{Path, PathBuf};

use super::{ContainerStatus, Host, HostError, HostErrorKind};
use crate::docker::{DockerError, Inspected};
use crate::hooks::{check_hooks, run_hooks};
use crate::progress::Reporter;
use crate::record;
use crate::spec::ContainerSpec;

impl Host {
    /// Precreation hooks, create, start, plug, postcreation hooks.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("run", &spec.name);
        // The spec checked its hooks' form; where they may come from is
        // this host's policy.
        if let Some(allow) = self.config.allow_hooks.as_deref() {
            for (phase, hooks) in [
                ("precreation", &spec.precreation),
                ("postcreation", &spec.postcreation),
                ("postdestroy", &spec.postdestroy),
            ] {
                check_hooks(phase, &spec.name, hooks, Some(allow)).map_err(|e| self.err(e))?;
            }
        }
        let _guard = self.lock(&spec.name).await;
        let ip = spec.address.ip().to_string();

        if let Some(existing) = self.inspect_managed(&spec.name).await? {
            if record::hash(&existing.labels) != spec.hash() {
                return Err(self.err(HostErrorKind::SpecDiffers {
                    name: spec.name.clone(),
                    differs: describe_difference(spec, &existing),
                }));
            }
            reporter.step(format!("{} exists with the same spec", spec.name));
            if spec.running {
                let c = self.ensure_running(&existing).await?;
                self.plug(&c, reporter).await?;
            }
            return self.status_of(&spec.name).await;
        }

        if !self
            .docker
            .image_exists(&spec.image)
            .await
            .map_err(|e| self.err(e))?
        {
            return Err(self.err(DockerError::NoImage {
                image: spec.image.clone(),
            }));
        }

        let ctx = self.hook_context(&spec.name, &ip, "run");
        run_hooks("precreation", &spec.precreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;

        let created_dirs = create_volume_dirs(spec).map_err(|e| self.err(e))?;
        reporter.step(format!("create {} from {}", spec.name, spec.image));
        let created = self.docker.create(spec).await;
        if let Err(e) = created {
            remove_dirs(&created_dirs);
            return Err(self.err(e));
        }
        if spec.running {
            let started = async {
                reporter.step(format!("start {}", spec.name));
                let c = self.start_running(&spec.name).await?;
                self.plug(&c, reporter).await
            }
            .await;
            if let Err(e) = started {
                // All or nothing: a container that could not be started and
                // plugged is removed again, with its port.
                let _ = self.unplug(&spec.name).await;
                if let Err(rm) = self.docker.remove(&spec.name).await {
                    reporter.warn(format!("rollback: {rm}"));
                }
                remove_dirs(&created_dirs);
                return Err(e);
            }
        }

        // A failing postcreation hook fails the run but leaves the
        // container running and plugged, so it can be inspected and fixed.
        run_hooks("postcreation", &spec.postcreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;
        self.status_of(&spec.name).await
    }

    async fn ensure_running(&self, c: &Inspected) -> Result<Inspected, HostError> {
        if c.running {
            return Ok(c.clone());
        }
        self.start_running(&c.name).await
    }

    /// Starts the container and inspects it again: plugging needs the pid
    /// of the process that now runs.
    async fn start_running(&self, name: &str) -> Result<Inspected, HostError> {
        self.docker.start(name).await.map_err(|e| self.err(e))?;
        let c = self.inspect_existing(name).await?;
        if !c.running {
            return Err(self.err(HostErrorKind::NotRunning {
                name: name.to_string(),
            }));
        }
        Ok(c)
    }

    /// Starts a stopped container and plugs it from its labels.
    pub async fn start(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("start", name);
        let _guard = self.lock(name).await;
        let c = self.managed(name).await?;
        reporter.step(format!("start {name}"));
        let c = self.ensure_running(&c).await?;
        self.plug(&c, reporter).await?;
        self.status_of(name).await
    }

    /// Unplugs and stops.
    pub async fn stop(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("stop", name);
        let _guard = self.lock(name).await;
        self.managed(name).await?;
        reporter.step(format!("unplug {name}"));
        self.unplug(name).await?;
        reporter.step(format!("stop {name}"));
        self.docker.stop(name).await.map_err(|e| self.err(e))?;
        self.status_of(name).await
    }

    /// Stops, unplugs, removes, then runs the postdestroy hooks. Destroying
    /// a container that is not there only clears leftovers.
    pub async fn destroy(
        &self,
        name: &str,
        postdestroy: &[String],
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        crate::fault::point("destroy", name);
        check_hooks(
            "postdestroy",
            name,
            postdestroy,
            self.config.allow_hooks.as_deref(),
        )
        .map_err(|e| self.err(e))?;
        let _guard = self.lock(name).await;
        let Some(c) = self.inspect_managed(name).await? else {
            reporter.warn(format!(
                "container {name} does not exist on host {}",
                self.config.host_id
            ));
            self.unplug(name).await?;
            return Ok(());
        };
        let ip = record::ip(&c.labels).to_string();
        reporter.step(format!("unplug {name}"));
        let unplugged = self.unplug(name).await;
        reporter.step(format!("remove {name}"));
        self.docker.remove(name).await.map_err(|e| self.err(e))?;
        unplugged?;
        let ctx = self.hook_context(name, &ip, "destroy");
        run_hooks("postdestroy", postdestroy, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))
    }
}

/// Names the fields that differ between a spec and an existing container,
/// as far as its labels and image tell.
fn describe_difference(spec: &ContainerSpec, existing: &Inspected) -> String {
    let mut diffs = Vec::new();
    if existing.image != spec.image {
        diffs.push(format!("image {} → {}", existing.image, spec.image));
    }
    diffs.extend(record::differences(spec, &existing.labels));
    if diffs.is_empty() {
        "volumes, env, command, dns, domain, privileges or restart policy".into()
    } else {
        diffs.join(", ")
    }
}

/// Creates missing host directories of bind volumes, as the 2015 server
/// did; returns the ones it created so a failed run can remove them.
fn create_volume_dirs(spec: &ContainerSpec) -> Result<Vec<PathBuf>, HostErrorKind> {
    let mut created = Vec::new();
    for v in &spec.volumes {
        let src = Path::new(v.split(':').next().unwrap_or_default());
        if src.exists() {
            continue;
        }
        // Remember each ancestor that did not exist, outermost first.
        let mut missing: Vec<PathBuf> = src
            .ancestors()
            .take_while(|p| !p.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        if let Err(source) = std::fs::create_dir_all(src) {
            remove_dirs(&created);
            return Err(HostErrorKind::Volume {
                name: spec.name.clone(),
                path: src.to_path_buf(),
                source,
            });
        }
        created.extend(missing);
    }
    Ok(created)
}

fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}
