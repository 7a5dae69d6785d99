//! The pause image against the machine's real dockerd. Each test builds under
//! a name of its own (the process id is in it), so that tests and test-bed
//! servers sharing the daemon do not race for one tag.

use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

const MIB: u64 = 1024 * 1024;

/// Removes what a test made even when it fails half-way.
#[derive(Debug, Default)]
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

fn docker_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|e| {
            format!(
                "cannot run the `docker` CLI ({e}): install it with `apt-get install -y docker.io`"
            )
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn docker_ok(args: &[&str]) -> String {
    docker_cli(args).unwrap_or_else(|e| panic!("{e}"))
}

async fn connect() -> DockerClient {
    if let Err(e) = docker_cli(&["info", "--format", "{{.ServerVersion}}"]) {
        panic!(
            "these tests need a working dockerd: start it (`service docker start`, or `dockerd &`) and check /var/run/docker.sock: {e}"
        );
    }
    DockerClient::connect(
        None,
        "pause-test",
        crate::envkey::EnvKey::from_bytes([0; 32]),
        crate::docker::DEFAULT_TIMEOUT,
    )
    .await
    .unwrap_or_else(|e| panic!("dockerd is not reachable: {e}"))
}

fn test_name(what: &str) -> String {
    format!("dockstack-pause-test-{what}-{}", std::process::id())
}

#[test]
fn the_embedded_program_is_a_small_static_elf() {
    assert_eq!(
        &PAUSE[..4],
        b"\x7fELF",
        "the pause program is not an ELF file"
    );
    assert!(
        PAUSE.len() < 64 * 1024,
        "the pause program is {} bytes; it is meant to be a few KiB",
        PAUSE.len()
    );
    assert_eq!(TAG.len(), 12);
    assert!(TAG.bytes().all(|b| b.is_ascii_hexdigit()), "tag {TAG}");
    assert_eq!(image_ref(), format!("dockstack-pause:{TAG}"));
}

#[test]
fn the_context_holds_the_dockerfile_and_an_executable_pause() {
    let context = build_context().expect("context");
    let mut archive = tar::Archive::new(context.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mode = entry.header().mode().expect("mode");
        let size = entry.header().size().expect("size");
        seen.push((path, mode, size));
    }
    assert_eq!(
        seen,
        vec![
            ("Dockerfile".to_string(), 0o644, DOCKERFILE.len() as u64),
            ("pause".to_string(), 0o755, PAUSE.len() as u64),
        ]
    );
}

#[tokio::test]
async fn ensure_builds_a_missing_image_and_then_leaves_it_alone() {
    let docker = connect().await;
    let name = test_name("ensure");
    let image = format!("{name}:{TAG}");
    let _cleanup = Cleanup {
        images: vec![image.clone()],
        containers: Vec::new(),
    };
    let _ = docker_cli(&["rmi", "-f", &image]);
    assert!(!docker.image_exists(&image).await.expect("inspect"));

    let got = ensure_image_named(&docker, &name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, image);
    assert_eq!(
        docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}}",
            &image
        ]),
        r#"["/pause"]"#
    );
    let size: u64 = docker_ok(&["image", "inspect", "-f", "{{.Size}}", &image])
        .parse()
        .expect("size");
    assert!(
        size < MIB,
        "the pause image is {size} bytes, not under 1 MiB"
    );

    // Put a different image under the tag: a second call that built again
    // would replace it, one that only looks would leave it.
    let decoy = format!("FROM {image}\nLABEL decoy=yes\n");
    let built = Command::new("sh")
        .args([
            "-c",
            r#"printf %s "$2" | DOCKER_BUILDKIT=0 docker build -q -t "$1" -"#,
            "sh",
        ])
        .args([&image, &decoy])
        .output()
        .expect("sh");
    assert!(
        built.status.success(),
        "building the decoy: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let before = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &image]);

    let started = Instant::now();
    let again = ensure_image_named(&docker, &name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    assert_eq!(again, image);
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{.Id}}", &image]),
        before,
        "the second call rebuilt an image that was there"
    );
    assert!(
        took < Duration::from_secs(2),
        "the no-op call took {took:?}"
    );
}

#[tokio::test]
async fn a_pause_container_runs_and_stops_at_once_on_sigterm() {
    let docker = connect().await;
    let name = test_name("run");
    let mut cleanup = Cleanup {
        images: vec![format!("{name}:{TAG}")],
        containers: Vec::new(),
    };
    let image = ensure_image_named(&docker, &name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let container = name.clone();
    cleanup.containers.push(container.clone());

    docker_ok(&[
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        "none",
        &image,
    ]);
    // Give a program that would crash on start the time to do so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.Status}}", &container]),
        "running"
    );

    let started = Instant::now();
    docker_ok(&["stop", "-t", "10", &container]);
    let took = started.elapsed();
    // Ignoring SIGTERM would cost the whole 10 s grace period, then a SIGKILL.
    assert!(
        took < Duration::from_secs(2),
        "docker stop took {took:?}: the pause program did not exit on SIGTERM"
    );
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &container]),
        "0",
        "the pause program should exit 0 on SIGTERM"
    );
}

/// The pause program started as the init of a new PID namespace, the way a
/// container runs it, with its host pid; killed on drop if still there.
#[derive(Debug)]
struct NamespaceInit {
    unshare: std::process::Child,
    pid: u32,
    path: std::path::PathBuf,
}

impl NamespaceInit {
    fn start() -> NamespaceInit {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("dockstack-pause-{}", std::process::id()));
        std::fs::write(&path, PAUSE).expect("write the pause program");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork"])
            .arg(&path)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `unshare` ({e}): apt-get install -y util-linux")
            });
        let mut init = NamespaceInit {
            unshare,
            pid: 0,
            path,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while init.pid == 0 {
            assert!(
                Instant::now() < deadline,
                "unshare started no pause program"
            );
            init.pid = children(init.unshare.id()).first().copied().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(10));
        }
        init
    }
}

impl Drop for NamespaceInit {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        if self.pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .output();
        }
        let _ = self.unshare.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Child pids of `pid`, zombies included.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn as_a_namespace_init_it_reaps_orphans_and_exits_0_on_sigterm() {
    let mut init = NamespaceInit::start();

    // The shell exits at once, so its sleep is orphaned onto the namespace's
    // init, which must reap it when it ends.
    let entered = Command::new("nsenter")
        .args(["--target", &init.pid.to_string(), "--pid", "--", "sh", "-c"])
        .arg("sleep 0.5 & exit 0")
        .status()
        .unwrap_or_else(|e| panic!("cannot run `nsenter` ({e}): apt-get install -y util-linux"));
    assert!(entered.success(), "nsenter: {entered}");
    assert_eq!(
        children(init.pid).len(),
        1,
        "the orphaned sleep should be the pause program's child"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children(init.pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pause program left its ended child {:?} unreaped",
            children(init.pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    send_signal(init.pid, "-TERM");
    let status = loop {
        if let Some(status) = init.unshare.try_wait().expect("wait for unshare") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the pause program did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "the pause program's exit: {status}");
    init.pid = 0;
}

fn send_signal(pid: u32, signal: &str) {
    let out = Command::new("kill")
        .args([signal, &pid.to_string()])
        .output()
        .expect("run kill");
    assert!(out.status.success(), "kill {signal} {pid}: {out:?}");
}
