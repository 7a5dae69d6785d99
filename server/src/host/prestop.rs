//! `prestop`: the command lines run inside a container before it is
//! stopped (a drain). Each has the hook timeout; its output goes to the
//! client and the log. A failure is logged and the stop goes on: a drain
//! that cannot run must not keep a container from stopping.

use std::time::Instant;

use super::Host;
use crate::docker::Inspected;
use crate::progress::{Progress, Reporter};
use crate::record;

impl Host {
    /// Runs the prestop commands the application `app` was made with, if
    /// it is running.
    pub(super) async fn prestop(&self, app: &Inspected, reporter: &Reporter) {
        let commands = record::prestop(&app.labels);
        if !app.running || commands.is_empty() {
            return;
        }
        for command in &commands {
            if let Err(why) = self.prestop_one(&app.name, command, reporter).await {
                reporter.warn(format!(
                    "prestop in {}: {command}: {why}; stopping it anyway",
                    app.name
                ));
            }
        }
    }

    async fn prestop_one(
        &self,
        name: &str,
        command: &str,
        reporter: &Reporter,
    ) -> Result<(), String> {
        let argv = shell_words::split(command).map_err(|e| e.to_string())?;
        if argv.is_empty() {
            return Err("the command line is empty".into());
        }
        reporter.step(format!("prestop in {name}: {command}"));
        tracing::info!(container = name, command, "prestop");
        let started = Instant::now();
        let exec_id = self
            .docker
            .create_exec(name, &argv)
            .await
            .map_err(|e| e.to_string())?;
        let run = self.docker.run_exec(name, &exec_id, |stderr, line| {
            tracing::info!(container = name, command, stderr, "prestop: {line}");
            reporter.output_now(command, stderr, line);
        });
        let code = match tokio::time::timeout(self.config.hook_timeout, run).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                // Docker would let it run on in the container.
                if let Some(pid) = self.docker.exec_pid(&exec_id).await
                    && let Ok(pid) = i32::try_from(pid)
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return Err(format!("timed out after {:?}", self.config.hook_timeout));
            }
        };
        reporter.send(Progress::HookExit {
            hook: command.to_string(),
            code: i32::try_from(code).unwrap_or(-1),
            duration: started.elapsed(),
        });
        if code == 0 {
            Ok(())
        } else {
            Err(format!("exited with status {code}"))
        }
    }
}
