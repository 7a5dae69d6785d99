//! The gate every application starts behind (`crate::gate`): the command
//! it is given, and what the server reads of it once it is started.

use super::{Host, HostError};
use crate::docker::{Gated, Inspected};
use crate::gate::GateError;
use crate::spec::{ContainerSpec, FirstCreation};

impl Host {
    /// The command the application runs (its image's, under the spec's
    /// `command`, under the first creation's) behind the gate of its
    /// addresses. Every application starts so: Docker starts it by itself
    /// too (a restart policy after a power loss may start it in a new,
    /// unplugged netns), and its first instruction must still find its
    /// address.
    pub(super) async fn gated(
        &self,
        spec: &ContainerSpec,
        first: Option<&FirstCreation>,
    ) -> Result<Gated, HostError> {
        let source = crate::gate::install(&self.config.state_dir).map_err(|e| self.err(e))?;
        let (entrypoint, cmd) = self
            .docker
            .image_command(&spec.image)
            .await
            .map_err(|e| self.err(e))?;
        let addresses: Vec<std::net::IpAddr> = std::iter::once(spec.address.ip().into())
            .chain(spec.address6.map(|a| a.ip().into()))
            .collect();
        let command = first.map_or_else(|| spec.command.clone(), |f| f.command_over(&spec.command));
        let (entrypoint, cmd) =
            crate::gate::wrap(&addresses, &spec.image, &entrypoint, &cmd, &command)
                .map_err(|e| self.err(e))?;
        Ok(Gated {
            source,
            entrypoint,
            cmd,
        })
    }

    /// Returns once the new application `app`'s gate says it waits for its
    /// address, its program found; an error if it says it cannot start it
    /// (the old one is then never touched). A log driver Docker cannot
    /// read back leaves nothing to wait for.
    pub(super) async fn gate_waits(&self, name: &str, app: &str) -> Result<(), HostError> {
        use crate::gate::{ANSWER_WITHIN, SAYS, WAITING};
        let said = tokio::time::timeout(ANSWER_WITHIN, self.docker.first_stderr_line(app, SAYS));
        let said = match said.await {
            Ok(Ok(Some(line))) if line.starts_with(WAITING) => return Ok(()),
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => "it stopped".to_string(),
            Ok(Err(e)) => {
                tracing::debug!(container = %name, "the gate's output cannot be read: {e}");
                return Ok(());
            }
            Err(_) => format!("its gate said nothing in {} s", ANSWER_WITHIN.as_secs()),
        };
        Err(self.cannot_start(name, said))
    }

    /// Returns once the gate of the application `app`, just started with
    /// its address there, has executed its program; an error in the
    /// gate's words if it could not (a program not in the image), as
    /// Docker's start would have said for an entrypoint of its own.
    pub(super) async fn gate_passed(&self, name: &str, app: &Inspected) -> Result<(), HostError> {
        use crate::gate::{ANSWER_WITHIN, SAYS, holds};
        let deadline = std::time::Instant::now() + ANSWER_WITHIN;
        loop {
            match holds(app.pid) {
                Some(false) => return Ok(()),
                None => break,
                Some(true) if std::time::Instant::now() >= deadline => {
                    tracing::warn!(container = %name, "its gate still waits for its address");
                    return Ok(());
                }
                Some(true) => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
            }
        }
        // Gone: the gate, or a program that ran and ended at once.
        let said = tokio::time::timeout(ANSWER_WITHIN, self.docker.first_stderr_line(name, SAYS));
        match said.await {
            Ok(Ok(Some(said))) => Err(self.cannot_start(name, said)),
            _ => Ok(()),
        }
    }

    /// The error of `name`'s gate, which could not run its program.
    fn cannot_start(&self, name: &str, said: String) -> HostError {
        self.err(GateError::CannotStart {
            container: name.to_string(),
            said,
        })
    }
}
