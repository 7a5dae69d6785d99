//! Running a container's hook command lines on the host: split like a shell
//! splits words, run without a shell in a process group of their own, with a
//! clean environment and a timeout that kills the whole group, output
//! streamed in bounded lines.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::progress::{LineCutter, Progress, Reporter};

/// The only variables a hook inherits, besides its `DOCKSTACK_*` ones.
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {hook:?} of {container}: cannot parse command line: {message}")]
    Parse {
        phase: &'static str,
        container: String,
        hook: String,
        message: String,
    },
    #[error("{phase} hook {hook:?} of {container}: cannot start: {source}")]
    Spawn {
        phase: &'static str,
        container: String,
        hook: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{phase} hook {hook:?} of {container} exited with status {code}")]
    Failed {
        phase: &'static str,
        container: String,
        hook: String,
        code: i32,
    },
    #[error("{phase} hook {hook:?} of {container} refused: {reason}")]
    NotAllowed {
        phase: &'static str,
        container: String,
        hook: String,
        reason: String,
    },
    #[error("{phase} hook {hook:?} of {container} timed out after {}s", .timeout.as_secs())]
    Timeout {
        phase: &'static str,
        container: String,
        hook: String,
        timeout: Duration,
    },
}

/// What a hook gets to know about the container it runs for.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub container: String,
    pub ip: String,
    /// A dual-stack container's IPv6 address (`DOCKSTACK_IP6`, set only then).
    pub ip6: Option<String>,
    pub host: String,
    pub action: &'static str,
    pub timeout: Duration,
}

/// The words a hook line runs: split as a shell would (quotes, escapes, a
/// backslash-newline continuing the word), the one split the policy's check,
/// this module's check and the runner all use.
pub fn words(hook: &str) -> Result<Vec<String>, shell_words::ParseError> {
    shell_words::split(hook)
}

/// Checks hook command lines before anything runs: each program must be an
/// absolute path without `..` and, with `allow_dir`, inside that directory.
/// A server runs hooks as root, so a client must not be able to name any
/// program it likes by a relative path or `$PATH` lookup.
pub fn check_hooks(
    phase: &'static str,
    container: &str,
    hooks: &[String],
    allow_dir: Option<&std::path::Path>,
) -> Result<(), HookError> {
    use std::path::{Component, Path};
    for hook in hooks {
        let refuse = |reason: String| HookError::NotAllowed {
            phase,
            container: container.to_string(),
            hook: hook.clone(),
            reason,
        };
        let argv = words(hook).map_err(|e| HookError::Parse {
            phase,
            container: container.to_string(),
            hook: hook.clone(),
            message: e.to_string(),
        })?;
        let Some(program) = argv.first() else {
            continue;
        };
        let path = Path::new(program);
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(refuse(format!(
                "the program {program:?} must be an absolute path without '..'"
            )));
        }
        if let Some(dir) = allow_dir
            && !path.starts_with(dir)
        {
            return Err(refuse(format!(
                "the program {program:?} is outside the allowed hook directory {}",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Runs `hooks` in order and stops at the first failure.
pub async fn run_hooks(
    phase: &'static str,
    hooks: &[String],
    ctx: &HookContext,
    reporter: &Reporter,
) -> Result<(), HookError> {
    for hook in hooks {
        run_hook(phase, hook, ctx, reporter).await?;
    }
    Ok(())
}

async fn run_hook(
    phase: &'static str,
    hook: &str,
    ctx: &HookContext,
    reporter: &Reporter,
) -> Result<(), HookError> {
    let argv = words(hook).map_err(|e| HookError::Parse {
        phase,
        container: ctx.container.clone(),
        hook: hook.to_string(),
        message: e.to_string(),
    })?;
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    reporter.step(format!("{phase} hook: {hook}"));
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        // The server's environment is its own (its TLS dir, its fault
        // points): a hook gets only what it needs.
        .env_clear()
        .env("PATH", HOOK_PATH)
        .env("DOCKSTACK_CONTAINER", &ctx.container)
        .env("DOCKSTACK_IP", &ctx.ip)
        .env("DOCKSTACK_HOST", &ctx.host)
        .env("DOCKSTACK_ACTION", ctx.action)
        .envs(ctx.ip6.as_deref().map(|ip6| ("DOCKSTACK_IP6", ip6)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HookError::Spawn {
            phase,
            container: ctx.container.clone(),
            hook: hook.to_string(),
            source,
        })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = forward_lines(stdout, false, hook, reporter);
    let err = forward_lines(stderr, true, hook, reporter);
    let work = async {
        let (_, _, status) = tokio::join!(out, err, child.wait());
        status
    };
    let status = match tokio::time::timeout(ctx.timeout, work).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            return Err(HookError::Spawn {
                phase,
                container: ctx.container.clone(),
                hook: hook.to_string(),
                source,
            });
        }
        Err(_) => {
            if let Some(pgid) = group {
                // The group outlives its leader only by what the leader
                // started: nothing else is ever in it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(HookError::Timeout {
                phase,
                container: ctx.container.clone(),
                hook: hook.to_string(),
                timeout: ctx.timeout,
            });
        }
    };
    let code = status.code().unwrap_or(-1);
    reporter.send(Progress::HookExit {
        hook: hook.to_string(),
        code,
        duration: started.elapsed(),
    });
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            phase,
            container: ctx.container.clone(),
            hook: hook.to_string(),
            code,
        })
    }
}

/// Sends each line of a hook's output to the client as it comes, cut at
/// [`crate::progress::MAX_LINE`]; a slow client slows the reading down.
async fn forward_lines<R: tokio::io::AsyncRead + Unpin>(
    pipe: Option<R>,
    stderr: bool,
    hook: &str,
    reporter: &Reporter,
) {
    let Some(mut pipe) = pipe else { return };
    let mut cutter = LineCutter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = Vec::new();
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        cutter.push(&buf[..n], |l| lines.push(l));
        for line in lines.drain(..) {
            reporter.output(hook, stderr, line).await;
        }
    }
    if let Some(line) = cutter.finish() {
        reporter.output(hook, stderr, line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> HookContext {
        HookContext {
            container: "web1".into(),
            ip: "10.0.0.3".into(),
            ip6: None,
            host: "host1".into(),
            action: "run",
            timeout: Duration::from_secs(5),
        }
    }

    /// The output lines of `hook`, run as a postcreation hook that succeeds.
    async fn output_of(hook: &str) -> Vec<String> {
        output_in(hook, &ctx()).await
    }

    async fn output_in(hook: &str, ctx: &HookContext) -> Vec<String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let reporter = Reporter::new(move |p| {
            let _ = tx.send(p);
        });
        run_hooks("postcreation", &[hook.to_string()], ctx, &reporter)
            .await
            .unwrap();
        let mut lines = Vec::new();
        while let Ok(p) = rx.try_recv() {
            if let Progress::HookOutput { line, .. } = p {
                lines.push(line);
            }
        }
        lines
    }

    #[tokio::test]
    async fn hooks_get_their_environment_and_quoted_words() {
        let lines = output_of(
            r#"/bin/sh -c 'echo "$DOCKSTACK_CONTAINER $DOCKSTACK_IP $DOCKSTACK_HOST $DOCKSTACK_ACTION $0"' 'two words'"#,
        )
        .await;
        assert_eq!(lines, vec!["web1 10.0.0.3 host1 run two words"]);
    }

    #[tokio::test]
    async fn a_dual_stack_container_s_hooks_get_its_ipv6_address_too() {
        let mut c = ctx();
        c.ip6 = Some("fd00::3".into());
        let lines = output_in(r#"/bin/sh -c 'echo "$DOCKSTACK_IP $DOCKSTACK_IP6"'"#, &c).await;
        assert_eq!(lines, vec!["10.0.0.3 fd00::3"]);
    }

    #[tokio::test]
    async fn a_hook_gets_a_clean_environment() {
        // The test's own environment (HOME, whatever the runner sets) must
        // not reach the hook.
        assert!(std::env::vars().count() > 1);
        let mut names: Vec<String> = output_of("/usr/bin/env")
            .await
            .iter()
            .map(|l| l.split('=').next().unwrap_or_default().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "DOCKSTACK_ACTION",
                "DOCKSTACK_CONTAINER",
                "DOCKSTACK_HOST",
                "DOCKSTACK_IP",
                "PATH"
            ]
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_hook_and_what_it_started() {
        let marker =
            std::env::temp_dir().join(format!("dockstack-hook-child-{}", std::process::id()));
        let hooks = vec![format!(
            "/bin/sh -c 'sleep 30 & echo $! > {}; wait'",
            marker.display()
        )];
        let mut c = ctx();
        c.timeout = Duration::from_millis(500);
        let err = run_hooks("postcreation", &hooks, &c, &Reporter::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }), "{err}");
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&marker).unwrap();
        // The background child went with the group (reaped by init soon).
        let gone = (0..50).any(|_| {
            let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let alive = !state.is_empty() && !state.contains(") Z ");
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(
            gone,
            "the hook's background child {child} survived its timeout"
        );
    }

    #[tokio::test]
    async fn a_failing_hook_stops_the_rest_and_names_itself() {
        let hooks = vec![
            "/bin/false".to_string(),
            "/bin/touch /nonexistent/x".to_string(),
        ];
        let err = run_hooks("precreation", &hooks, &ctx(), &Reporter::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, HookError::Failed { code: 1, .. }), "{err}");
        assert!(err.to_string().contains("/bin/false"));
    }

    #[test]
    fn relative_dotdot_and_outside_hooks_are_refused() {
        let allow = std::path::Path::new("/etc/dockstack/hooks");
        for bad in [
            "echo hi",
            "bin/true",
            "/etc/dockstack/hooks/../../../bin/sh -c id",
        ] {
            let err = check_hooks("precreation", "web1", &[bad.to_string()], None).unwrap_err();
            assert!(matches!(err, HookError::NotAllowed { .. }), "{bad}: {err}");
        }
        let err =
            check_hooks("postcreation", "web1", &["/bin/true".into()], Some(allow)).unwrap_err();
        assert!(err.to_string().contains("/etc/dockstack/hooks"), "{err}");
        check_hooks(
            "postcreation",
            "web1",
            &["/etc/dockstack/hooks/register web1".into()],
            Some(allow),
        )
        .unwrap();
        check_hooks("postcreation", "web1", &["/bin/echo 'a b'".into()], None).unwrap();
    }

    #[tokio::test]
    async fn a_slow_hook_times_out() {
        let mut c = ctx();
        c.timeout = Duration::from_millis(200);
        let err = run_hooks(
            "precreation",
            &["/bin/sleep 5".to_string()],
            &c,
            &Reporter::silent(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }), "{err}");
    }
}
