//! Replacing a container by a new one of another spec on the same host
//! (`apply`'s recreate): the new pair is made beside the old one, so that
//! between the old application's exit and the new one's start there is only
//! the move of the address.
//!
//! The new sandbox is created and started (with no network: it holds a
//! netns with nothing in it) and the new application created in it and
//! started behind the gate (`crate::gate`), which runs the application's
//! own command only once the address is there; both under names kept for
//! dockstack (they end with the sandbox suffix, which no container of an
//! environment file may). Only then is the old application stopped,
//! gracefully, as a destroy stops it. Once it has exited its port goes and
//! the new sandbox is plugged with the same address (without the RFC 5227
//! probe: the address was our own container's a moment ago, and that one is
//! gone; the announcements still go out so the neighbours learn the new
//! MAC, if any), which opens the gate. The old pair is removed after that,
//! and the new one takes its names.
//!
//! Never two holders: the old application has exited and its port is gone
//! before the new sandbox gets the address. Nothing half done: if the new
//! pair cannot be made, or its program cannot be found, it is removed and
//! the old one was never touched; if the move fails, the new pair is
//! removed and the old one brought up again.

use super::binds::remove_dirs;
use super::{ContainerStatus, Host, HostError, Pair};
use crate::docker::{AppPlace, DockerError, Inspected};
use crate::hooks::run_hooks;
use crate::policy::volumes::PinnedBind;
use crate::progress::Reporter;
use crate::record;
use crate::spec::ContainerSpec;

/// What a replacement's containers are named until the old pair is gone.
/// Both end with the sandbox suffix: no file's container has such a name,
/// and Docker's events for them find no pair to act on (see
/// `Host::clear_orphan_sandbox`).
fn next_names(name: &str) -> (String, String) {
    (
        record::sandbox_name(&format!("{name}{NEXT}")),
        record::sandbox_name(&format!("{name}{NEXT_APP}")),
    )
}

/// What [`next_names`] adds to the name, before the sandbox suffix.
const NEXT: &str = ".dockstack-next";
const NEXT_APP: &str = ".dockstack-next-app";

/// The container whose replacement a container named `name` belongs to,
/// if it is one of [`next_names`].
pub(super) fn replaced_by(name: &str) -> Option<&str> {
    let base = record::sandbox_owner(name)?;
    base.strip_suffix(NEXT_APP)
        .or_else(|| base.strip_suffix(NEXT))
        .filter(|n| !n.is_empty())
}

/// The new pair, made and started, its application waiting at the gate.
struct Next {
    sandbox: Inspected,
    app_id: String,
}

impl Host {
    /// Replaces the managed container `spec.name` by one of `spec`; a run
    /// when there is none or it has this spec already, a destroy and a run
    /// when the new one would not run (stopped, or a oneshot).
    ///
    /// A replacement is never a first creation (its first-creation settings
    /// are not used), and its binds are admitted as a run's are: `pinned`
    /// as [`Host::run`] takes them.
    pub async fn replace(
        &self,
        spec: &ContainerSpec,
        pinned: Option<&[PinnedBind]>,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("replace", &spec.name);
        self.check_spec_hooks(spec)?;
        let guard = self.lock(&spec.name).await;
        let old = match self.pair(&spec.name).await? {
            Some(old) if !record::same_spec(spec, &old.app.labels, self.docker.env_key()) => old,
            _ => {
                drop(guard);
                return self.run(spec, None, pinned, reporter).await;
            }
        };
        if !spec.running || spec.oneshot {
            drop(guard);
            self.destroy(&spec.name, &spec.postdestroy, reporter)
                .await?;
            return self.run(spec, None, pinned, reporter).await;
        }
        let pause_image = self.images_for(spec).await?;
        let ip = spec.address.ip().to_string();
        let ip6 = spec.address6.map(|a| a.ip().to_string());
        let ctx = self.hook_context(&spec.name, &ip, ip6, "run");
        run_hooks("precreation", &spec.precreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;
        // Held until the new pair is made: a run at the same time checks
        // against these binds (the old pair's, of the same name, are no
        // other container's).
        let _admitted = match pinned {
            Some(binds) => Some(self.admit_binds(&spec.name, binds).await?),
            None => None,
        };
        let (created_dirs, binds) = self.volumes_for(spec, pinned)?;
        let next = match self.make_next(spec, binds, &pause_image, reporter).await {
            Ok(next) => next,
            Err(e) => {
                self.remove_next(&spec.name, reporter).await;
                remove_dirs(&created_dirs);
                return Err(e);
            }
        };
        crate::fault::pause("replace-next-made").await;
        self.switch(spec, &old, &next, reporter).await?;

        let old_ip = record::ip(&old.app.labels).to_string();
        let old_ip6 = record::ip6(&old.app.labels).map(str::to_string);
        let destroyed = self.hook_context(&spec.name, &old_ip, old_ip6, "destroy");
        run_hooks("postdestroy", &spec.postdestroy, &destroyed, reporter)
            .await
            .map_err(|e| self.err(e))?;
        run_hooks("postcreation", &spec.postcreation, &ctx, reporter)
            .await
            .map_err(|e| self.err(e))?;
        drop(guard);
        self.status_of(&spec.name).await
    }

    /// The new sandbox created and started, the new application created
    /// in its netns.
    async fn make_next(
        &self,
        spec: &ContainerSpec,
        binds: Vec<String>,
        pause_image: &str,
        reporter: &Reporter,
    ) -> Result<Next, HostError> {
        let (sandbox, app) = next_names(&spec.name);
        // What a replacement that failed half-way may have left.
        self.remove_next(&spec.name, reporter).await;
        reporter.step(format!("create the new sandbox {sandbox}"));
        self.docker
            .create_sandbox_as(spec, pause_image, &sandbox)
            .await
            .map_err(|e| self.err(e))?;
        let sb = self.start_running(&sandbox).await?;
        let config = self.hash_config(spec.config_volumes.clone()).await?;
        let gated = self.gated(spec, None).await?;
        reporter.step(format!("create the new {} from {}", spec.name, spec.image));
        let app_id = self
            .docker
            .create_app(
                spec,
                None,
                binds,
                AppPlace {
                    name: &app,
                    sandbox: &record::sandbox_name(&spec.name),
                    join: &sb.id,
                    gate: &gated,
                },
                &config,
            )
            .await
            .map_err(|e| self.err(e))?;
        reporter.step(format!(
            "start the new {} (it waits for its address)",
            spec.name
        ));
        self.start_running(&app).await?;
        self.gate_waits(&spec.name, &app).await?;
        Ok(Next {
            sandbox: sb,
            app_id,
        })
    }

    /// Removes what [`Host::make_next`] made, if anything.
    async fn remove_next(&self, name: &str, reporter: &Reporter) {
        let (sandbox, app) = next_names(name);
        for c in [app, sandbox] {
            if let Err(e) = self.docker.remove(&c).await {
                reporter.warn(format!("removing {c}: {e}"));
            }
        }
    }

    /// The old application stopped, the address moved to the new sandbox,
    /// the new application started; then the old pair removed and the new
    /// one renamed. A failure before the new application runs brings the
    /// old pair back up.
    async fn switch(
        &self,
        spec: &ContainerSpec,
        old: &Pair,
        next: &Next,
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        let name = &spec.name;
        self.prestop(&old.app, reporter).await;
        self.mark_removed(
            std::iter::once(old.app.id.as_str()).chain(old.sandbox.as_ref().map(|s| s.id.as_str())),
        );
        reporter.step(format!("stop the old {name}"));
        // The process is watched from before the stop is asked for, so its
        // pid cannot be another's by then.
        let exit = match self.docker.inspect(&old.app.id).await {
            Ok(Some(app)) if app.running => ProcessExit::watch(app.pid),
            _ => None,
        };
        let docker = self.docker.clone();
        let old_id = old.app.id.clone();
        let mut stop = tokio::spawn(async move { docker.stop(&old_id).await });
        // Whether the stop's answer was taken already, and whether the old
        // process had exited (so the old pair's port may be gone).
        let (mut stop_taken, mut exited) = (false, false);
        let moved = async {
            let began = std::time::Instant::now();
            // The address is free once the old application's process has
            // exited (the kernel ends the rest of its pid namespace first):
            // Docker's own bookkeeping of the exit, which its stop waits
            // for, goes on beside the move.
            let stop_done = match exit {
                Some(exit) => tokio::select! {
                    done = &mut stop => Some(done),
                    () = exit.wait() => None,
                },
                None => Some((&mut stop).await),
            };
            if let Some(done) = stop_done {
                stop_taken = true;
                done.map_err(|e| self.err(stop_task(name, &e)))?
                    .map_err(|e| self.err(e))?;
            }
            exited = true;
            let stopped = began.elapsed();
            reporter.step(format!("move {} to the new sandbox", spec.address));
            self.unplug(name).await?;
            let unplugged = began.elapsed();
            crate::fault::pause("replace-unplugged").await;
            // The new application's gate opens as the address arrives.
            self.plug(name, &next.sandbox, false, reporter).await?;
            let plugged = began.elapsed();
            crate::fault::pause("replace-plugged").await;
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            tracing::info!(
                container = %name,
                stop_ms = ms(stopped),
                unplug_ms = ms(unplugged - stopped),
                plug_ms = ms(plugged - unplugged),
                "replaced: the address moved to the new pair"
            );
            Ok(())
        }
        .await;
        // Whatever happened, Docker's stop of the old one is seen to its end.
        let stopped = if stop_taken {
            Ok(())
        } else {
            match stop.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(self.err(e)),
                Err(e) => Err(self.err(stop_task(name, &e))),
            }
        };
        let moved = moved.and(stopped);
        if let Err(e) = moved {
            self.remove_next(name, reporter).await;
            if !exited {
                // The old one never stopped: its port and its pair are as
                // they were.
                return Err(e);
            }
            reporter.warn(format!(
                "the new {name} did not start ({e}): bringing the old one back"
            ));
            if let Err(e) = self.unplug(name).await {
                reporter.warn(format!("rollback: {e}"));
            }
            match self.pair(name).await {
                Ok(Some(pair)) => {
                    if let Err(e) = self.bring_up(&pair, reporter).await {
                        reporter.warn(format!("rollback: {e}"));
                    }
                }
                Ok(None) => reporter.warn(format!("rollback: the old {name} is gone")),
                Err(e) => reporter.warn(format!("rollback: {e}")),
            }
            return Err(e);
        }

        reporter.step(format!("remove the old {name}"));
        crate::confighash::forget(&self.config.state_dir, &old.app.id);
        let mut errors = Vec::new();
        for c in std::iter::once(&old.app).chain(old.sandbox.as_ref()) {
            if let Err(e) = self.docker.remove(&c.id).await {
                errors.push(self.err(e));
            }
        }
        let (sandbox, app) = next_names(name);
        if errors.is_empty() {
            crate::fault::pause("replace-old-removed").await;
            for (id, from, to) in [
                (next.app_id.as_str(), &app, name.clone()),
                (
                    next.sandbox.id.as_str(),
                    &sandbox,
                    record::sandbox_name(name),
                ),
            ] {
                if let Err(e) = self.docker.rename(id, &to).await {
                    errors.push(self.err(e));
                    reporter.warn(format!("{from} could not be renamed {to}"));
                }
            }
        }
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(first) => {
                for e in errors {
                    reporter.warn(e.to_string());
                }
                Err(first)
            }
        }
    }
}

impl Host {
    /// What replacements cut short (the server killed, or dockerd gone,
    /// half-way) left among `listed`'s names, settled: each pair whole or
    /// gone. True if there was any.
    pub(super) async fn settle_replacements(&self, listed: &[String]) -> bool {
        let replaced: std::collections::BTreeSet<&str> =
            listed.iter().filter_map(|n| replaced_by(n)).collect();
        for name in &replaced {
            // A replacement under way holds this lock to its end: what is
            // found under it is left over.
            let _guard = self.lock(name).await;
            if let Err(e) = self.settle_replacement(name).await {
                tracing::error!(container = %name, "settling a replacement cut short: {e}");
            }
        }
        !replaced.is_empty()
    }

    /// Where the old application is gone, the old pair was being removed
    /// and the new one is whole: the old sandbox goes and the new pair
    /// takes the names, as the replacement would have. Anywhere earlier the
    /// new pair goes, and the old one is brought up again (its address
    /// unplugged first if the new sandbox had it), as a failed replacement
    /// leaves it.
    async fn settle_replacement(&self, name: &str) -> Result<(), HostError> {
        let (sandbox, app) = next_names(name);
        let inspect =
            |c: String| async move { self.docker.inspect(&c).await.map_err(|e| self.err(e)) };
        let (next_sandbox, next_app) =
            (inspect(sandbox.clone()).await?, inspect(app.clone()).await?);
        let old = self.pair(name).await?;
        if let (None, Some(sb), Some(new)) = (&old, &next_sandbox, &next_app) {
            tracing::warn!(container = %name, "a replacement was cut short after the old pair's removal: finishing it");
            let old_sandbox = record::sandbox_name(name);
            self.docker
                .remove(&old_sandbox)
                .await
                .map_err(|e| self.err(e))?;
            self.docker
                .rename(&new.id, name)
                .await
                .map_err(|e| self.err(e))?;
            self.docker
                .rename(&sb.id, &old_sandbox)
                .await
                .map_err(|e| self.err(e))?;
            return Ok(());
        }
        tracing::warn!(container = %name, "a replacement was cut short: removing its new pair");
        let reporter = Reporter::silent();
        self.remove_next(name, &reporter).await;
        // An old application still running was never touched: its plug
        // stands. One that was stopped may have lost its address to the
        // new sandbox.
        if let Some(old) = old.filter(|o| !o.app.running) {
            self.unplug(name).await?;
            self.bring_up(&old, &reporter).await?;
        }
        Ok(())
    }
}

/// The error of a stop whose task ended without its answer.
fn stop_task(name: &str, e: &tokio::task::JoinError) -> DockerError {
    DockerError::Task {
        op: "stop",
        container: name.to_string(),
        message: e.to_string(),
    }
}

/// The exit of one process, watched through a pidfd.
struct ProcessExit(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>);

impl ProcessExit {
    /// `None` when the process is gone already (or no pidfd can be had):
    /// Docker's stop is then waited for alone.
    fn watch(pid: u32) -> Option<Self> {
        use std::os::fd::FromRawFd;
        let pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the fd was just returned by the kernel and is ours alone.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns the fd, which nothing else can close.
        unsafe { tokio::io::unix::AsyncFd::register(fd) }
            .ok()
            .map(ProcessExit)
    }

    /// Returns once the process has exited: a pidfd turns readable then.
    async fn wait(self) {
        let _ = self.0.readable().await;
    }
}
