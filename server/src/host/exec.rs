//! Commands run inside a managed container (`docker exec`): dnsmasq's
//! reload, Puppet's cert clean and agent.

use std::time::Instant;

use super::{Host, HostError, HostErrorKind};
use crate::docker::DockerError;
use crate::progress::{Progress, Reporter};

impl Host {
    /// Runs `command` (split like a hook line) inside the running managed
    /// container `name`, streaming its output; fails unless it exits with
    /// one of `success` (0 when empty). Takes no container lock: a command
    /// such as `puppet agent -t` may run for minutes, and a stop or destroy
    /// meanwhile only makes it fail.
    pub async fn exec(
        &self,
        name: &str,
        command: &str,
        success: &[i32],
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        let bad = |message: String| {
            self.err(HostErrorKind::BadCommand {
                container: name.to_string(),
                command: command.to_string(),
                message,
            })
        };
        let argv = shell_words::split(command).map_err(|e| bad(e.to_string()))?;
        if argv.is_empty() {
            return Err(bad("the command line is empty".into()));
        }
        // A sandbox is no container of the user's: only applications are asked.
        let c = self.managed_pair(name).await?.app;
        if !c.running {
            return Err(self.err(HostErrorKind::NotRunning {
                name: name.to_string(),
            }));
        }
        reporter.step(format!("exec in {name}: {command}"));
        let code = match self.exec_bounded(name, &argv, command, reporter).await {
            Ok(code) => code,
            Err(Bounded::Docker(DockerError::NotFound(_))) => return Err(self.not_found(name)),
            Err(Bounded::Docker(e)) => return Err(self.err(e)),
            Err(Bounded::TimedOut) => {
                return Err(self.err(HostErrorKind::ExecTimeout {
                    container: name.to_string(),
                    command: command.to_string(),
                    timeout: self.config.hook_timeout,
                }));
            }
        };
        let ok = if success.is_empty() {
            code == 0
        } else {
            success.iter().any(|s| i64::from(*s) == code)
        };
        if ok {
            Ok(())
        } else {
            Err(self.err(HostErrorKind::ExecFailed {
                container: name.to_string(),
                command: command.to_string(),
                code,
            }))
        }
    }

    /// Runs `argv` inside `name` for at most the hook timeout, its output
    /// streamed to the client and logged at debug level, and reports its
    /// exit; one that runs past the timeout is killed, since Docker would
    /// let it run on in the container.
    pub(super) async fn exec_bounded(
        &self,
        name: &str,
        argv: &[String],
        command: &str,
        reporter: &Reporter,
    ) -> Result<i64, Bounded> {
        let started = Instant::now();
        let exec_id = self
            .docker
            .create_exec(name, argv)
            .await
            .map_err(Bounded::Docker)?;
        let run = self.docker.run_exec(name, &exec_id, |stderr, line| {
            // A container's output is anyone's text: a field, escaped.
            tracing::debug!(container = ?name, ?command, stderr, ?line, "exec output");
            reporter.output_now(command, stderr, line);
        });
        let code = match tokio::time::timeout(self.config.hook_timeout, run).await {
            Ok(result) => result.map_err(Bounded::Docker)?,
            Err(_) => {
                if let Some(pid) = self.docker.exec_pid(&exec_id).await
                    && let Ok(pid) = i32::try_from(pid)
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return Err(Bounded::TimedOut);
            }
        };
        reporter.send(Progress::HookExit {
            hook: command.to_string(),
            code: i32::try_from(code).unwrap_or(-1),
            duration: started.elapsed(),
        });
        Ok(code)
    }
}

/// Why a bounded exec gave no exit status.
#[derive(Debug)]
pub(super) enum Bounded {
    Docker(DockerError),
    TimedOut,
}
