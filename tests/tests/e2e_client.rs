//! The client across hosts: one host down while the other completes, hosts
//! connecting in parallel, a panicked task (in the client or the server)
//! counted as a failure, JSON output, and the live status table.

use dockstack_tests::support::text;
use std::time::{Duration, Instant, SystemTime};

use dockstack_proto as pb;
use dockstack_tests::testbed::{
    BedContainer, BedOptions, TestBed, docker, ensure_test_image, find_binary,
};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// When `container` last started, by Docker's clock (the machine's).
fn started_at(container: &str) -> SystemTime {
    let text = docker(&["inspect", "-f", "{{.State.StartedAt}}", container])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("StartedAt {text:?}: {e}"));
    SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(t.unix_timestamp_nanos()).unwrap())
}

#[test]
fn unreachable_hosts_do_not_hold_up_the_reachable_one() {
    // Seconds; long enough that one timeout and a run, and two timeouts,
    // are far apart.
    const TIMEOUT: u64 = 6;
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(3)).expect("test bed");
    // The reachable host sorts last, behind both unreachable ones: hosts
    // connecting one after another would start it after two timeouts.
    let down0 = bed.container_name("pdown0");
    let down1 = bed.container_name("pdown1");
    let up = bed.container_name("pup");
    let env = bed.write_environment(&[
        BedContainer::new(&down0, 0, bed.subnet_ip(41)),
        BedContainer::new(&down1, 1, bed.subnet_ip(42)),
        BedContainer::new(&up, 2, bed.subnet_ip(43)),
    ]);
    // The SYN is dropped inside the bed, so each connect waits its whole
    // timeout (a link down would fail sooner, after ARP gives up).
    bed.drop_server_traffic(0).expect("firewall host 0");
    bed.drop_server_traffic(1).expect("firewall host 1");

    let began_at = SystemTime::now();
    let began = Instant::now();
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["--connect-timeout", &TIMEOUT.to_string(), "run"])
        .output()
        .unwrap();
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (c, h) in [(&down0, 0), (&down1, 1)] {
        assert!(
            stderr.contains(&format!("FAILED {c} on {}", bed.host(h).name())),
            "{stderr}"
        );
    }
    assert!(stderr.contains("run: 1 succeeded, 2 failed"), "{stderr}");
    assert!(
        took >= Duration::from_secs(TIMEOUT),
        "took {took:?}: the unreachable hosts did not wait their {TIMEOUT} s connect timeout: {stderr}"
    );
    assert_eq!(bed.managed_apps(2), vec![up.clone()]);
    let state = docker(&["inspect", "-f", "{{.State.Status}}", &up]).unwrap();
    assert_eq!(state.trim(), "running");
    let started = started_at(&up).duration_since(began_at).unwrap_or_default();
    eprintln!(
        "connect timeout {TIMEOUT} s: client returned after {took:?}, the reachable host's container started {started:?} after the client"
    );
    // The change lock is taken host by host in one order, so the reachable
    // host (last) is locked once the others' connects have failed: after
    // one connect timeout (they connect at once), not two.
    assert!(
        started < Duration::from_secs(2 * TIMEOUT),
        "the reachable host's container started {started:?} after the client, not within one {TIMEOUT} s connect timeout and the run"
    );
    assert!(
        took < Duration::from_secs(2 * TIMEOUT),
        "took {took:?}: more than one {TIMEOUT} s connect timeout (two would be {} s)",
        2 * TIMEOUT
    );
}

#[test]
fn a_panicked_client_task_is_a_named_failure_and_the_others_go_on() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let a = bed.container_name("ka");
    let boom = bed.container_name("kboom");
    let c = bed.container_name("kc");
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, bed.subnet_ip(51)),
        BedContainer::new(&boom, 0, bed.subnet_ip(52)),
        BedContainer::new(&c, 0, bed.subnet_ip(53)),
    ]);
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("run")
        .env("DOCKSTACK_CLIENT_PANIC", &boom)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = bed.host(0).name();
    assert!(
        stderr.contains(&format!(
            "FAILED {boom} on {host}: the client's task for {boom} panicked"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("run: 2 succeeded, 1 failed"), "{stderr}");
    let mut running = bed.managed_apps(0);
    running.sort();
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(running, want);
}

#[test]
fn a_panic_in_the_servers_run_is_a_named_failure() {
    ensure_test_image().expect("test image");
    let mut bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let boom = bed.container_name("sboom");
    bed.set_server_env("DOCKSTACK_SERVER_PANIC", &format!("run:{boom}"));
    bed.restart_server(0)
        .expect("restart the server with the fault");
    let env = bed.write_environment(&[BedContainer::new(&boom, 0, bed.subnet_ip(61))]);
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["-c", &boom, "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = stderr
        .lines()
        .find(|l| l.starts_with(&format!("FAILED {boom} on ")))
        .unwrap_or_else(|| panic!("no failure of {boom}: {stderr}"));
    // The message itself names the container, not only the summary's prefix.
    let (_, message) = failed.split_once(": ").expect("a message");
    eprintln!("the client says: {failed}");
    assert!(message.contains(&boom), "{failed}");
    assert!(stderr.contains("run: 0 succeeded, 1 failed"), "{stderr}");
}

#[test]
fn one_host_down_fails_fast_while_the_other_completes() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let up = bed.container_name("up");
    let down = bed.container_name("down");
    let env = bed.write_environment(&[
        BedContainer::new(&up, 0, bed.subnet_ip(21)),
        BedContainer::new(&down, 1, bed.subnet_ip(22)),
    ]);
    bed.stop_host_link(1).expect("cut host 1 off");

    let began = Instant::now();
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["--connect-timeout", "2", "run"])
        .output()
        .unwrap();
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = bed.host(1);
    assert!(
        stderr.contains(&format!("FAILED {down} on {}", host.name())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&host.mgmt_ip().to_string()),
        "no address in: {stderr}"
    );
    assert!(stderr.contains("run: 1 succeeded, 1 failed"), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} with a 2 s connect timeout"
    );

    // The reachable host did its part.
    assert_eq!(bed.managed_apps(0), vec![up.clone()]);
    assert!(bed.ping_from_host(0, bed.subnet_ip(21)));
    assert!(bed.managed_containers(1).is_empty());

    // status: the live table says which host could not be asked.
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["--connect-timeout", "2", "--output", "json", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![up.as_str()]);
    assert_eq!(list[0]["plugged"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains(host.name()));
}

#[test]
fn show_and_status_report_what_the_hosts_see() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let a = bed.container_name("sa");
    let b = bed.container_name("sb");
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, bed.subnet_ip(31)),
        BedContainer::new(&b, 1, bed.subnet_ip(32)).with_yaml("state: false"),
    ]);
    let run = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("run")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));

    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["-c", &a, "--output", "json", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let info = &shown[0]["info"];
    assert_eq!(info["state"], "running");
    assert_eq!(info["plugged"], true);
    let want = format!("{}/{}", bed.subnet_ip(31), bed.gateway().prefix());
    assert_eq!(info["actual_addresses"][0], want.as_str());
    assert_eq!(info["host"], bed.host(0).name());

    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let row_a = table.lines().find(|l| l.starts_with(&a)).expect("row of a");
    assert!(
        row_a.contains("running") && row_a.contains("yes"),
        "{row_a}"
    );
    let row_b = table.lines().find(|l| l.starts_with(&b)).expect("row of b");
    assert!(
        row_b.contains("created"),
        "state: false means created, not running: {row_b}"
    );
}

/// A server whose run and start streams end after a step, without the
/// container's state: what a server whose task died used to send.
struct EndsEarly;

type Events = std::pin::Pin<
    Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<pb::Event, Status>> + Send>,
>;

fn one_step() -> Result<Response<Events>, Status> {
    let step = pb::Event {
        kind: Some(pb::event::Kind::Step("creating".into())),
    };
    Ok(Response::new(Box::pin(tonic::codegen::tokio_stream::iter(
        vec![Ok(step)],
    ))))
}

#[tonic::async_trait]
impl pb::container_host_server::ContainerHost for EndsEarly {
    type RunStream = Events;
    type StartStream = Events;
    type StopStream = Events;
    type DestroyStream = Events;
    type RegisterStream = Events;
    type DeregisterStream = Events;
    type ExecStream = Events;

    async fn run(&self, _: Request<pb::RunRequest>) -> Result<Response<Events>, Status> {
        one_step()
    }
    async fn start(&self, _: Request<pb::ContainerRef>) -> Result<Response<Events>, Status> {
        one_step()
    }
    async fn stop(&self, _: Request<pb::ContainerRef>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn destroy(&self, _: Request<pb::DestroyRequest>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn show(
        &self,
        _: Request<pb::ContainerRef>,
    ) -> Result<Response<pb::ContainerInfo>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn list(
        &self,
        _: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn plan(
        &self,
        _: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    type RestartStream = Events;
    async fn restart(&self, _: Request<pb::ContainerRef>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn register(&self, _: Request<pb::RegisterRequest>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn deregister(
        &self,
        _: Request<pb::RegisterRequest>,
    ) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn exec(&self, _: Request<pb::ExecRequest>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    type LogsStream = Unimplemented<pb::LogLine>;
    async fn logs(
        &self,
        _: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    type ExecSessionStream = Unimplemented<pb::ExecSessionOutput>;
    async fn exec_session(
        &self,
        _: Request<tonic::Streaming<pb::ExecSessionInput>>,
    ) -> Result<Response<Self::ExecSessionStream>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    type EventsStream = Unimplemented<pb::HostEvent>;
    async fn events(
        &self,
        _: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

/// The stream type of an RPC the fake does not offer.
type Unimplemented<T> =
    std::pin::Pin<Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// The fake's change lock: always free, every lease granted.
#[tonic::async_trait]
impl pb::host_lock_server::HostLock for EndsEarly {
    async fn acquire(
        &self,
        _: Request<pb::LockAcquireRequest>,
    ) -> Result<Response<pb::LockGrant>, Status> {
        Ok(Response::new(pb::LockGrant {
            granted: true,
            token: "0".repeat(32),
            ttl_ms: 10_000,
            holder: None,
        }))
    }
    async fn renew(&self, r: Request<pb::LockLease>) -> Result<Response<pb::LockGrant>, Status> {
        Ok(Response::new(pb::LockGrant {
            granted: true,
            token: r.into_inner().token,
            ttl_ms: 10_000,
            holder: None,
        }))
    }
    async fn release(&self, _: Request<pb::LockLease>) -> Result<Response<pb::LockState>, Status> {
        Ok(Response::new(pb::LockState::default()))
    }
    async fn inspect(
        &self,
        _: Request<pb::LockInspectRequest>,
    ) -> Result<Response<pb::LockState>, Status> {
        Ok(Response::new(pb::LockState::default()))
    }
    async fn r#break(
        &self,
        _: Request<pb::LockInspectRequest>,
    ) -> Result<Response<pb::LockState>, Status> {
        Ok(Response::new(pb::LockState::default()))
    }
}

#[test]
fn a_run_or_start_whose_stream_ends_without_its_result_fails() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Loopback only, plaintext: a fake of this process, no bed needed.
    let incoming = runtime
        .block_on(async { TcpIncoming::bind("127.0.0.1:0".parse().unwrap()) })
        .expect("bind");
    let port = incoming.local_addr().unwrap().port();
    runtime.spawn(
        Server::builder()
            .add_service(pb::container_host_server::ContainerHostServer::new(
                EndsEarly,
            ))
            .add_service(pb::host_lock_server::HostLockServer::new(EndsEarly))
            .serve_with_incoming(incoming),
    );
    let env =
        std::env::temp_dir().join(format!("dockstack-ends-early-{}.yaml", std::process::id()));
    std::fs::write(
        &env,
        format!(
            "containerhosts:\n  fake: {{ip: 127.0.0.1, port: {port}}}\ncontainers:\n  early1: {{image: web, ip: 10.0.0.2, mask: 24, bridge: br0, host: fake}}\n"
        ),
    )
    .unwrap();
    let bin = find_binary("dockstack", "DOCKSTACK_BIN").unwrap();
    for action in ["run", "start"] {
        let out = std::process::Command::new(&bin)
            .arg("--insecure")
            .arg("-f")
            .arg(&env)
            .arg(action)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{action}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "FAILED early1 on fake: the server on host fake ended the {action} of early1 without its result"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("{action}: 0 succeeded, 1 failed")),
            "{stderr}"
        );
    }
    // A request the server does not offer: it is older than the client.
    let out = std::process::Command::new(&bin)
        .arg("--insecure")
        .arg("-f")
        .arg(&env)
        .arg("logs")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "logs: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "FAILED host fake: the server does not know this request: it is older than this client (upgrade dockstack-server on that host)"
        ),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_file(&env);
}
