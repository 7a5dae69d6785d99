//! Following a container's output and running commands in it (`docker
//! exec`): a one-shot's output to its end, a gate's first word, and the
//! registration commands (dnsmasq's reload, Puppet's cert clean and agent),
//! exec and prestop.

use bollard::errors::Error as BollardError;
use futures::{Stream, StreamExt};

use super::{DockerClient, DockerError, status_code};
use crate::progress::LineCutter;

impl DockerClient {
    /// Follows the output of container `name` (cut into lines as an exec's
    /// is, `true` for stderr) until it exits; returns its exit status.
    pub async fn follow_to_exit(
        &self,
        name: &str,
        mut on_line: impl FnMut(bool, String),
    ) -> Result<i64, DockerError> {
        let api = |op, source| DockerError::Api {
            op,
            container: name.to_string(),
            source,
        };
        let options = bollard::query_parameters::LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let logs = self.docker.logs(name, Some(options));
        cut_into_lines(logs, &mut on_line)
            .await
            .map_err(|e| api("logs", e))?;
        // The log stream ends with the process; wait gives its status
        // (and returns at once for one that has exited already).
        let options = bollard::query_parameters::WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut wait = self.docker.wait_container(name, Some(options));
        match wait.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(api("wait", e)),
            None => Ok(self.inspect(name).await?.map_or(-1, |c| c.exit_code)),
        }
    }
}

impl DockerClient {
    /// The first line of container `name`'s stderr that starts with
    /// `prefix`, following its output from the start; `None` when the
    /// output ends (the container stopped) first.
    pub async fn first_stderr_line(
        &self,
        name: &str,
        prefix: &str,
    ) -> Result<Option<String>, DockerError> {
        use bollard::container::LogOutput;
        let options = bollard::query_parameters::LogsOptions {
            follow: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = std::pin::pin!(self.docker.logs(name, Some(options)));
        let mut cutter = LineCutter::default();
        while let Some(chunk) = logs.next().await {
            let chunk = chunk.map_err(|source| DockerError::Api {
                op: "logs",
                container: name.to_string(),
                source,
            })?;
            if let LogOutput::StdErr { message } = chunk {
                let mut found = None;
                cutter.push(&message, |l| {
                    if found.is_none() && l.starts_with(prefix) {
                        found = Some(l);
                    }
                });
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }
}

/// Commands inside running containers (`docker exec`), for the registration
/// commands: dnsmasq's reload, Puppet's cert clean and agent.
impl DockerClient {
    /// Makes an exec of `argv` in the running container `name`, without a
    /// TTY or stdin; its id, for [`DockerClient::run_exec`].
    pub async fn create_exec(&self, name: &str, argv: &[String]) -> Result<String, DockerError> {
        let config = bollard::models::ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..Default::default()
        };
        match self.answered(self.docker.create_exec(name, config)).await? {
            Ok(c) => Ok(c.id),
            Err(e) if status_code(&e) == Some(404) => Err(DockerError::NotFound(name.into())),
            Err(source) => Err(DockerError::Api {
                op: "exec",
                container: name.to_string(),
                source,
            }),
        }
    }

    /// The host pid of a running exec, to kill one that timed out: Docker
    /// has no call to stop an exec, and it would run on in its container.
    pub async fn exec_pid(&self, exec_id: &str) -> Option<u32> {
        let state = self.docker.inspect_exec(exec_id).await.ok()?;
        (state.running == Some(true))
            .then_some(state.pid)
            .flatten()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0)
    }

    /// Starts the exec `exec_id` made in container `name`, handing each
    /// line of its output (cut at [`crate::progress::MAX_LINE`]) to
    /// `on_line` (with `true` for stderr) as it comes; returns the exit code.
    pub async fn run_exec(
        &self,
        name: &str,
        exec_id: &str,
        mut on_line: impl FnMut(bool, String),
    ) -> Result<i64, DockerError> {
        let api = |op, source| DockerError::Api {
            op,
            container: name.to_string(),
            source,
        };
        let created_id = exec_id;
        let mut output = match self
            .answered(self.docker.start_exec(created_id, None))
            .await?
            .map_err(|e| api("exec", e))?
        {
            bollard::exec::StartExecResults::Attached { output, .. } => output,
            bollard::exec::StartExecResults::Detached => Box::pin(futures::stream::empty()),
        };
        cut_into_lines(&mut output, &mut on_line)
            .await
            .map_err(|e| api("exec", e))?;
        // The output ends when the process does; its exit code can show up
        // in the exec's state a moment later.
        for _ in 0..50 {
            let state = self
                .docker
                .inspect_exec(created_id)
                .await
                .map_err(|e| api("exec inspect", e))?;
            if state.running != Some(true)
                && let Some(code) = state.exit_code
            {
                return Ok(code);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(-1)
    }
}

/// Hands each line of Docker's `output` (framed in chunks, not lines; cut
/// at [`crate::progress::MAX_LINE`]) to `on_line`, `true` for stderr.
async fn cut_into_lines(
    output: impl Stream<Item = Result<bollard::container::LogOutput, BollardError>>,
    on_line: &mut impl FnMut(bool, String),
) -> Result<(), BollardError> {
    use bollard::container::LogOutput;
    let mut output = std::pin::pin!(output);
    let (mut out, mut err) = (LineCutter::default(), LineCutter::default());
    while let Some(chunk) = output.next().await {
        match chunk? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.push(&message, |l| on_line(false, l))
            }
            LogOutput::StdErr { message } => err.push(&message, |l| on_line(true, l)),
            LogOutput::StdIn { .. } => {}
        }
    }
    for (cutter, stderr) in [(&mut out, false), (&mut err, true)] {
        if let Some(rest) = cutter.finish() {
            on_line(stderr, rest);
        }
    }
    Ok(())
}
