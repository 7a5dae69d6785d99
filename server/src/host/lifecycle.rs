//! The life of a container and its sandbox: run, start, stop and destroy,
//! with their hooks (the volume directories a run creates are in `binds`).

use std::path::PathBuf;

use super::binds::remove_dirs;
use super::{
    ContainerStatus, Host, HostError, HostErrorKind, Network, Pair, in_other_netns, same_netns,
};
use crate::confighash::ConfigHashError;
use crate::docker::{AppPlace, DockerError, Inspected};
use crate::hooks::{check_hooks, run_hooks};
use crate::pause;
use crate::policy::volumes::PinnedBind;
use crate::progress::Reporter;
use crate::record;
use crate::spec::{ContainerSpec, FirstCreation};

impl Host {
    /// Precreation hooks; the sandbox created, started and plugged; the
    /// application created in its netns and started; postcreation hooks.
    ///
    /// `first`, the first-creation settings, are used only where no
    /// container of the name exists and this run makes it, never on one
    /// that exists. A replacement is a destroy then a run, and Docker, this
    /// server's only record, keeps nothing of a destroyed container, so only
    /// the client can tell it from a first creation: it leaves them out of
    /// a recreate. Trusting it there risks nothing a client could not do
    /// anyway: the same values in `env` pass the same checks.
    ///
    /// `pinned`: the spec's binds as the policy pinned them for a role held
    /// to a volume allowlist, admitted against every other container's
    /// and given to Docker instead of the spec's volumes.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        first: Option<&FirstCreation>,
        pinned: Option<&[PinnedBind]>,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("run", &spec.name);
        self.check_spec_hooks(spec)?;
        let _guard = self.lock(&spec.name).await;
        let ip = spec.address.ip().to_string();

        if let Some(existing) = self.pair(&spec.name).await? {
            if !record::same_spec(spec, &existing.app.labels, self.docker.env_key()) {
                return Err(self.err(HostErrorKind::SpecDiffers {
                    name: spec.name.clone(),
                    differs: describe_difference(spec, &existing.app),
                }));
            }
            reporter.step(format!("{} exists with the same spec", spec.name));
            if first.is_some() {
                reporter.step(format!(
                    "{} exists: its first-creation settings are not used",
                    spec.name
                ));
            }
            if spec.oneshot {
                // It ran (or runs); running it again is a recreate, which
                // `apply` does when its last run failed.
                return self.status_of(&spec.name).await;
            }
            if spec.running {
                self.bring_up(&existing, reporter).await?;
            }
            return self.status_of(&spec.name).await;
        }

        let pause_image = self.images_for(spec).await?;
        let sandbox = record::sandbox_name(&spec.name);
        self.clear_orphan_sandbox(&sandbox).await?;

        // Held until the container is made: a run at the same time checks
        // against this MAC and these binds.
        let _mac = self.admit_mac(spec).await?;
        let _admitted = match pinned {
            Some(binds) => Some(self.admit_binds(&spec.name, binds).await?),
            None => None,
        };

        let ip6 = spec.address6.map(|a| a.ip().to_string());
        let ctx = self.hook_context(&spec.name, &ip, ip6, "run");
        run_hooks("precreation", &spec.precreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;

        let (created_dirs, binds) = self.volumes_for(spec, pinned)?;
        if let Err(e) = self
            .create_pair(spec, first, binds, &sandbox, &pause_image, reporter)
            .await
        {
            // All or nothing: whatever was made of the pair goes again, its
            // port with it.
            for rm in self.remove_pair(&spec.name, Some(&sandbox)).await {
                reporter.warn(format!("rollback: {rm}"));
            }
            remove_dirs(&created_dirs);
            return Err(e);
        }
        crate::fault::pause("run-started").await;

        // A failing postcreation hook fails the run but leaves the
        // container running and plugged, so it can be inspected and fixed.
        run_hooks("postcreation", &spec.postcreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;
        self.status_of(&spec.name).await
    }

    /// What a pair is made from: the spec's image, which must be here, and
    /// the pause image, built if missing; the pause image's name.
    pub(super) async fn images_for(&self, spec: &ContainerSpec) -> Result<String, HostError> {
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
        pause::ensure_image(&self.docker)
            .await
            .map_err(|e| self.err(e))
    }

    /// The spec checked its hooks' form; where they may come from is this
    /// host's policy.
    pub(super) fn check_spec_hooks(&self, spec: &ContainerSpec) -> Result<(), HostError> {
        if let Some(allow) = self.config.allow_hooks.as_deref() {
            for (phase, hooks) in [
                ("precreation", &spec.precreation),
                ("postcreation", &spec.postcreation),
                ("postdestroy", &spec.postdestroy),
            ] {
                check_hooks(phase, &spec.name, hooks, Some(allow)).map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// The sandbox first, started and plugged; only then the application,
    /// so that its first instruction finds eth0 with its address.
    async fn create_pair(
        &self,
        spec: &ContainerSpec,
        first: Option<&FirstCreation>,
        binds: Vec<String>,
        sandbox: &str,
        pause_image: &str,
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        reporter.step(format!("create sandbox {sandbox}"));
        self.docker
            .create_sandbox(spec, pause_image)
            .await
            .map_err(|e| self.err(e))?;
        crate::fault::pause("run-sandbox-made").await;
        if spec.running {
            reporter.step(format!("start sandbox {sandbox}"));
            let sb = self.start_running(sandbox).await?;
            self.plug(&spec.name, &sb, true, reporter).await?;
            crate::fault::pause("run-plugged").await;
        }
        let config = self.hash_config(spec.config_volumes.clone()).await?;
        let gated = self.gated(spec, first).await?;
        reporter.step(format!("create {} from {}", spec.name, spec.image));
        if first.is_some() {
            reporter.step(format!("{}: first creation, its settings used", spec.name));
        }
        let at = AppPlace {
            name: &spec.name,
            sandbox,
            join: sandbox,
            gate: &gated,
        };
        self.docker
            .create_app(spec, first, binds, at, &config)
            .await
            .map_err(|e| self.err(e))?;
        crate::fault::pause("run-created").await;
        if spec.oneshot {
            reporter.step(format!("run oneshot {} to its end", spec.name));
            self.docker
                .start(&spec.name)
                .await
                .map_err(|e| self.err(e))?;
            let code = self
                .docker
                .follow_to_exit(&spec.name, |stderr, line| {
                    reporter.output_now(&spec.name, stderr, line);
                })
                .await
                .map_err(|e| self.err(e))?;
            reporter.step(format!("oneshot {} exited with status {code}", spec.name));
            if code != 0 {
                return Err(self.err(HostErrorKind::OneshotFailed {
                    name: spec.name.clone(),
                    code,
                }));
            }
        } else if spec.running {
            reporter.step(format!("start {}", spec.name));
            let app = self.start_running(&spec.name).await?;
            self.gate_passed(&spec.name, &app).await?;
        }
        Ok(())
    }

    /// A sandbox of this name whose application is gone is removed; a
    /// container of this name that is not a sandbox of ours is an error.
    pub(super) async fn clear_orphan_sandbox(&self, sandbox: &str) -> Result<(), HostError> {
        let Some(c) = self
            .docker
            .inspect(sandbox)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(());
        };
        let ours = c.is_managed()
            && c.host() == Some(self.id())
            // A replacement's sandbox, made under another name (see
            // `Host::replace`), is not the orphan of the name it has.
            && matches!(record::member(&c.labels), record::Member::Sandbox(owner) if record::sandbox_name(&owner) == sandbox);
        if !ours {
            return Err(self.err(DockerError::NameTaken {
                name: sandbox.to_string(),
            }));
        }
        tracing::info!(sandbox, "removing a sandbox whose application is gone");
        self.docker.remove(sandbox).await.map_err(|e| self.err(e))
    }

    /// Removes the application (stopped first with its own signal and grace
    /// period: see `DockerClient::remove`), then its port, then its
    /// sandbox, going on past failures; every failure is returned.
    async fn remove_pair(&self, name: &str, sandbox: Option<&str>) -> Vec<HostError> {
        let mut errors = Vec::new();
        if let Err(e) = self.docker.remove(name).await {
            errors.push(self.err(e));
        }
        crate::fault::pause("remove-app-removed").await;
        if let Err(e) = self.unplug(name).await {
            errors.push(e);
        }
        crate::fault::pause("remove-unplugged").await;
        if let Some(sb) = sandbox
            && let Err(e) = self.docker.remove(sb).await
        {
            errors.push(self.err(e));
        }
        errors
    }

    /// Brings a pair up: its sandbox running and plugged, then the
    /// application running in that netns. An application that runs in
    /// another netns (of a sandbox since replaced), or that started before
    /// its sandbox was plugged without a gate to hold it, is restarted into
    /// the plugged one.
    pub(super) async fn bring_up(&self, pair: &Pair, reporter: &Reporter) -> Result<(), HostError> {
        let name = &pair.app.name;
        let Network::Sandbox(sandbox) = &pair.network else {
            let c = self.ensure_running(&pair.app).await?;
            self.plug(name, &c, true, reporter).await?;
            return Ok(());
        };
        let Some(sb) = &pair.sandbox else {
            return Err(self.err(HostErrorKind::SandboxMissing {
                name: name.clone(),
                sandbox: sandbox.clone(),
            }));
        };
        if !sb.running {
            reporter.step(format!("start sandbox {sandbox}"));
        }
        let sb = self.ensure_running(sb).await?;
        let changed = self.plug(name, &sb, true, reporter).await?;
        self.join(pair, &sb, changed, true, reporter).await
    }

    /// Puts the application into the netns of `sb`, just plugged (`changed`
    /// if the plug had to make or mend anything). A running application
    /// that is elsewhere, or that may have started before the plug (in
    /// this netns, but not behind the gate: a container made by an older
    /// server), is restarted. A stopped one is started when `start` is set.
    pub(super) async fn join(
        &self,
        pair: &Pair,
        sb: &Inspected,
        changed: bool,
        start: bool,
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        let name = &pair.app.name;
        let app = self.inspect_existing(name).await?;
        if app.running {
            // Behind its gate in this very netns, it has run nothing
            // before its address was there: a restart would only cost a
            // stop (a database's whole grace period, when it is still
            // starting) and a start.
            let waited = app.gated && same_netns(&app, sb);
            if (changed && !waited) || in_other_netns(&app, sb) {
                reporter.step(format!("restart {name} into its plugged sandbox"));
                self.docker.restart(name).await.map_err(|e| self.err(e))?;
            }
            return Ok(());
        }
        if start {
            reporter.step(format!("start {name}"));
            self.start_running(name).await?;
        }
        Ok(())
    }

    async fn ensure_running(&self, c: &Inspected) -> Result<Inspected, HostError> {
        if c.running {
            return Ok(c.clone());
        }
        self.start_running(&c.name).await
    }

    /// Starts the container and inspects it again: plugging needs the pid
    /// of the process that now runs.
    pub(super) async fn start_running(&self, name: &str) -> Result<Inspected, HostError> {
        self.docker.start(name).await.map_err(|e| self.err(e))?;
        let c = self.inspect_existing(name).await?;
        if !c.running {
            return Err(self.err(HostErrorKind::NotRunning {
                name: name.to_string(),
            }));
        }
        Ok(c)
    }

    /// Starts a stopped pair: its sandbox, plugged from its labels, then
    /// the application.
    pub async fn start(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("start", name);
        let _guard = self.lock(name).await;
        let pair = self.managed_pair(name).await?;
        reporter.step(format!("start {name}"));
        self.bring_up(&pair, reporter).await?;
        self.status_of(name).await
    }

    /// The hashes of config volumes `paths`, read off the async threads.
    pub(super) async fn hash_config(
        &self,
        paths: Vec<PathBuf>,
    ) -> Result<std::collections::BTreeMap<String, String>, HostError> {
        if paths.is_empty() {
            return Ok(Default::default());
        }
        tokio::task::spawn_blocking(move || crate::confighash::hash_paths(&paths))
            .await
            .map_err(|e| {
                self.err(HostErrorKind::Config(ConfigHashError::Thread(
                    e.to_string(),
                )))
            })?
            .map_err(|e| self.err(HostErrorKind::Config(e)))
    }

    /// Restarts the application in its sandbox (its network stays; a
    /// stopped one is started with its sandbox) and records the contents of
    /// its config volumes as applied.
    pub async fn restart(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("restart", name);
        let _guard = self.lock(name).await;
        let pair = self.managed_pair(name).await?;
        // Read before the restart: what the container then reads is at
        // least this new.
        let config = self
            .hash_config(record::config_volumes(&pair.app.labels))
            .await?;
        if pair.app.running && pair.holder().is_some_and(|h| h.running) {
            self.prestop(&pair.app, reporter).await;
            reporter.step(format!("restart {name}"));
            self.docker.restart(name).await.map_err(|e| self.err(e))?;
        } else {
            reporter.step(format!("start {name}"));
            self.bring_up(&pair, reporter).await?;
        }
        if !config.is_empty() {
            crate::confighash::record_applied(&self.config.state_dir, &pair.app.id, &config)
                .map_err(|e| self.err(HostErrorKind::Config(e)))?;
        }
        self.status_of(name).await
    }

    /// Stops the application while its network is still up, then unplugs
    /// and stops its sandbox.
    pub async fn stop(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("stop", name);
        let _guard = self.lock(name).await;
        let pair = self.managed_pair(name).await?;
        self.prestop(&pair.app, reporter).await;
        reporter.step(format!("stop {name}"));
        self.docker.stop(name).await.map_err(|e| self.err(e))?;
        reporter.step(format!("unplug {name}"));
        self.unplug(name).await?;
        if let Some(sb) = &pair.sandbox {
            reporter.step(format!("stop sandbox {}", sb.name));
            self.docker.stop(&sb.name).await.map_err(|e| self.err(e))?;
        }
        self.status_of(name).await
    }

    /// Stops the application gracefully and removes it, then its port and
    /// its sandbox, then runs the postdestroy hooks. Destroying a container that is not there only
    /// clears leftovers.
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
        let sandbox = record::sandbox_name(name);
        let Some(pair) = self.pair(name).await? else {
            reporter.warn(format!(
                "container {name} does not exist on host {}",
                self.config.host_id
            ));
            self.clear_orphan_sandbox(&sandbox).await?;
            self.unplug(name).await?;
            return Ok(());
        };
        let ip = record::ip(&pair.app.labels).to_string();
        let ip6 = record::ip6(&pair.app.labels).map(str::to_string);
        self.prestop(&pair.app, reporter).await;
        reporter.step(format!("stop and remove {name}"));
        let sandbox = match &pair.network {
            Network::Sandbox(sb) => Some(sb.as_str()),
            Network::Direct => None,
        };
        crate::confighash::forget(&self.config.state_dir, &pair.app.id);
        self.mark_removed(
            std::iter::once(pair.app.id.as_str())
                .chain(pair.sandbox.as_ref().map(|s| s.id.as_str())),
        );
        let mut errors = self.remove_pair(name, sandbox).await.into_iter();
        if let Some(first) = errors.next() {
            for e in errors {
                reporter.warn(e.to_string());
            }
            return Err(first);
        }
        let ctx = self.hook_context(name, &ip, ip6, "destroy");
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
