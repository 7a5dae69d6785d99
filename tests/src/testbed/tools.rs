//! Running the outside tools the bed is made with (`ip`, `docker`, `ovs-*`), finding them and the workspace's binaries, and the small helpers around them (retries, log tails, gathered errors).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// `name` in `PATH` or the usual sbin directories.
pub(super) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub(super) fn tool(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// The directory of the workspace's binaries: `target/<profile>/`, found
/// from the running executable (`target/<profile>/deps/<test>-<hash>` or
/// `target/<profile>/<bin>`).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the running executable")?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))?;
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir = dir.parent().unwrap_or(dir);
    }
    Ok(dir.to_path_buf())
}

/// A workspace binary: `$env_var`, else `target/<profile>/<name>`.
pub fn find_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => target_dir()?.join(name),
    };
    ensure!(
        path.is_file(),
        "{name} not found at {}: run `cargo build --workspace --bins` first (or set ${env_var})",
        path.display()
    );
    Ok(path)
}

pub(super) fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd`; its stdout, or an error naming it with its stderr.
pub(super) fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", show(cmd)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        bail!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            if stderr.trim().is_empty() {
                stdout.trim()
            } else {
                stderr.trim()
            }
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip` with `args` in the root namespace; its stdout.
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new(tool("ip")).args(args))
}

/// Runs `docker` with `args`; its stdout.
pub fn docker<S: AsRef<OsStr>>(args: &[S]) -> Result<String> {
    run(Command::new(tool("docker")).args(args))
}

pub(super) fn list_netns() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect())
}

/// Link names from `ip -o link show ...` (`7: name@peer: <...`).
pub(super) fn link_names(args: &[&str]) -> Result<Vec<String>> {
    Ok(ip(args)?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

pub(super) fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => sleep(Duration::from_millis(100)),
        }
    }
}

/// The last `n` lines of a file (or why it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(raw) => {
            let text = String::from_utf8_lossy(&raw);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

pub(super) fn join_errors(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("\n"))
    }
}
