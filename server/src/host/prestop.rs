//! `prestop`: the command lines run inside a container before it is
//! stopped (a drain). Each has the hook timeout; its output goes to the
//! client and the log. A failure is logged and the stop goes on: a drain
//! that cannot run must not keep a container from stopping.

use super::Host;
use super::exec::Bounded;
use crate::docker::Inspected;
use crate::progress::Reporter;
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
        tracing::info!(container = ?name, ?command, "prestop");
        let code = match self.exec_bounded(name, &argv, command, reporter).await {
            Ok(code) => code,
            Err(Bounded::Docker(e)) => return Err(e.to_string()),
            Err(Bounded::TimedOut) => {
                return Err(format!("timed out after {:?}", self.config.hook_timeout));
            }
        };
        if code == 0 {
            Ok(())
        } else {
            Err(format!("exited with status {code}"))
        }
    }
}
