//! End to end, an operator's volumes sent straight to a server's gRPC API
//! with an operator certificate: only under the policy's allowlist (by
//! default `/srv/dockstack`), never a path that holds what makes a
//! container root on the host, nothing created outside it, never inside
//! (or above) another container's writable volume, and Docker given the
//! source's real path, which no container can swap for a symlink.

mod common;
use common::{as_operator, run_request, test_spec};

use std::path::{Path, PathBuf};

use dockstack_proto as pb;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::support::{bed, docker_exec, inspect};
use dockstack_tests::testbed::TestBed;
use tonic::transport::Channel;

/// The binds Docker was given for `container`'s volumes: all but the
/// server's own, its gate's read-only file.
fn volume_binds(container: &str) -> Vec<String> {
    let all: Vec<String> = serde_json::from_str(&inspect(container, "{{json .HostConfig.Binds}}"))
        .expect("the binds as JSON");
    all.into_iter()
        .filter(|b| !b.ends_with(":/.dockstack-gate:ro"))
        .collect()
}

/// A running container of the bed's test image with `volumes`.
fn spec(bed: &TestBed, name: &str, n: u32, volumes: &[String]) -> pb::RunRequest {
    let spec = pb::ContainerSpec {
        volumes: volumes.to_vec(),
        ..test_spec(bed, name, n)
    };
    run_request(bed, spec)
}

/// A `Run` to its end: `Ok` when it succeeded, the status it failed with.
async fn run(
    c: &mut ContainerHostClient<Channel>,
    req: pb::RunRequest,
) -> Result<(), tonic::Status> {
    let mut events = c.run(req).await?.into_inner();
    while events.message().await?.is_some() {}
    Ok(())
}

/// A directory of `/srv/dockstack` (the default allowlist) for one test,
/// removed when dropped.
struct SrvDir(PathBuf);

impl SrvDir {
    fn new(bed: &TestBed, base: &str) -> Self {
        let dir = Path::new("/srv/dockstack").join(bed.container_name(base));
        let _ = std::fs::remove_dir_all(&dir);
        SrvDir(dir)
    }
}

impl Drop for SrvDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_operator_may_not_mount_what_makes_it_root_nor_have_it_created() {
    let bed = bed(1);
    let web = bed.container_name("vol-root");
    let hooks = Path::new("/usr/local/lib/dockstack");
    let hooks_existed = hooks.exists();
    // Above the Docker socket, cron's spool, OVS's sockets, the operator's
    // own hook directory (a program written there is run as root by the
    // next `run` that names it as a hook), and a directory of it a run
    // would create.
    let reach_root = [
        "/run",
        "/var",
        "/var/lib",
        "/usr",
        "/run/openvswitch",
        "/var/spool/cron",
        "/usr/local/lib/dockstack",
        "/usr/local/lib/dockstack/from-a-container",
    ];
    let data = SrvDir::new(&bed, "vol-root");
    let results = as_operator(&bed, "ops", async |mut c| {
        let mut results = Vec::new();
        for src in reach_root {
            let req = spec(&bed, &web, 60, &[format!("{src}:/x")]);
            results.push((src, run(&mut c, req).await));
        }
        let req = spec(
            &bed,
            &web,
            60,
            &[format!("{}/data:/data", data.0.display())],
        );
        results.push(("allowed", run(&mut c, req).await));
        results
    });
    for (src, result) in &results[..reach_root.len()] {
        let status = result
            .as_ref()
            .expect_err(&format!("{src}: accepted for an operator"));
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{src}: {status:?}"
        );
        assert!(status.message().contains("volumes[0]"), "{src}: {status:?}");
    }
    assert_eq!(
        hooks.exists(),
        hooks_existed,
        "a refused run created {}",
        hooks.display()
    );
    // Under the allowlist: taken, its directory made.
    let (_, allowed) = results.last().unwrap();
    assert!(allowed.is_ok(), "{allowed:?}");
    assert!(data.0.join("data").is_dir());
    assert_eq!(
        volume_binds(&web),
        [format!("{}/data:/data", data.0.display())]
    );
}

#[test]
fn an_operators_volume_inside_another_containers_writable_one_is_refused_and_none_is_swappable() {
    let bed = bed(1);
    let root = SrvDir::new(&bed, "vol-swap");
    let r = root.0.display().to_string();
    let (a, b, c, d) = (
        bed.container_name("vol-a"),
        bed.container_name("vol-b"),
        bed.container_name("vol-c"),
        bed.container_name("vol-d"),
    );
    // D's source goes through a symlink the test makes; Docker must be
    // given where it leads.
    std::fs::create_dir_all(root.0.join("real")).unwrap();
    std::os::unix::fs::symlink(root.0.join("real"), root.0.join("link")).unwrap();
    let results = as_operator(&bed, "ops", async |mut cl| {
        let mut results = Vec::new();
        results.push(run(&mut cl, spec(&bed, &a, 61, &[format!("{r}/a:/a")])).await);
        // A writes a directory into its volume; B asks for it. Were B
        // taken, A could swap it for a symlink to /run, and B's next start
        // (by anyone, or by Docker's restart policy) would mount the
        // host's /run with the Docker socket.
        docker_exec(&a, &["mkdir", "/a/x"]);
        results.push(run(&mut cl, spec(&bed, &b, 62, &[format!("{r}/a/x:/x")])).await);
        // C, writable above A's volume, could swap A's in turn.
        results.push(run(&mut cl, spec(&bed, &c, 63, &[format!("{r}:/all")])).await);
        results.push(run(&mut cl, spec(&bed, &d, 64, &[format!("{r}/link/d:/d")])).await);
        results
    });
    assert!(results[0].is_ok(), "A: {:?}", results[0]);
    for (which, result, says) in [
        ("B", &results[1], "a writable volume of container"),
        ("C", &results[2], "holds"),
    ] {
        let status = result
            .as_ref()
            .expect_err(&format!("{which}: accepted for an operator"));
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{which}: {status:?}"
        );
        assert!(
            status.message().contains(says) && status.message().contains(&a),
            "{which}: {status:?}"
        );
    }
    assert!(
        bed.managed_containers(0)
            .iter()
            .all(|n| !n.contains("vol-b") && !n.contains("vol-c"))
    );
    // D: taken, with the real path given to Docker.
    assert!(results[3].is_ok(), "D: {:?}", results[3]);
    assert_eq!(volume_binds(&d), [format!("{r}/real/d:/d")]);
}
