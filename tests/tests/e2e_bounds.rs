//! End to end, what a flood, a crowd or a bad request can do to a server:
//! hooks that flood output keep its memory bounded and the operation is
//! marked as cut; idle connections don't keep a client out; a timed-out
//! exec is gone from its container; fields sent straight to the gRPC API
//! are checked by the server itself; a `logs` follower of a flood that
//! does not read keeps the server small.

mod common;
use common::{test_spec, with_grpc};
use std::net::TcpStream;
use std::time::Duration;

use dockstack_proto as pb;
use dockstack_tests::support::{bed, docker_exec, dockstack, inspect, ok, text};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};

/// A field of `/proc/<pid>/status` in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A postcreation hook item that prints one line of 100 MiB.
const LONG_LINE: &str = "- \"/bin/sh -c 'head -c 104857600 /dev/zero'\"";

#[test]
fn hooks_that_flood_output_keep_the_server_small_and_are_marked_as_cut() {
    let bed = bed(1);
    let web = bed.container_name("flood");
    // 1 GiB of 1000-byte lines, then one line (of NULs) of 100 MiB.
    let yaml = format!(
        "postcreation:\n- \"/bin/sh -c 'yes {} | head -c 1073741824'\"\n{LONG_LINE}",
        "a".repeat(999)
    );
    let env =
        bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(130)).with_yaml(&yaml)]);
    let pid = bed.host(0).server_pid().expect("server.pid");
    let out = ok(&bed, &env, &["-c", &web, "run"]);
    let shown = text(&out);
    assert!(
        shown.contains("cut: this operation passed on 8 MiB"),
        "{}",
        &shown[shown.len().saturating_sub(2000)..]
    );
    let peak_mib = status_kib(pid, "VmHWM") / 1024;
    println!(
        "server VmHWM after 1 GiB of hook output and a 100 MiB line: {peak_mib} MiB (goal < 64)"
    );
    assert!(peak_mib < 64, "the server grew to {peak_mib} MiB");

    // A 100 MiB line alone is cut at 64 KiB, marked.
    let yaml = format!("postcreation:\n{LONG_LINE}");
    let env =
        bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(130)).with_yaml(&yaml)]);
    ok(&bed, &env, &["-c", &web, "destroy"]);
    let out = ok(&bed, &env, &["-c", &web, "run"]);
    let shown = text(&out);
    assert!(
        shown.contains("[line cut at 64 KiB]"),
        "{}",
        &shown[..shown.len().min(2000)]
    );
    assert!(
        shown.len() < 1 << 20,
        "{} bytes of output reached the client",
        shown.len()
    );
    let peak_mib = status_kib(pid, "VmHWM") / 1024;
    assert!(peak_mib < 64, "the server grew to {peak_mib} MiB");
    ok(&bed, &env, &["-c", &web, "destroy"]);
}

#[test]
fn five_hundred_idle_connections_do_not_keep_a_client_out() {
    let bed = bed(1);
    let env = bed.write_environment(&[]);
    let addr = bed.host(0).addr();
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect"))
        .collect();
    let out = dockstack(&bed, &env, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(idle);
}

#[test]
fn a_timed_out_exec_is_gone_from_its_container() {
    ensure_test_image().expect("test image");
    let mut opts = BedOptions::hosts(1);
    opts.server_args = vec!["--hook-timeout".into(), "2".into()];
    let bed = TestBed::new(opts).expect("test bed");
    let web = bed.container_name("exec");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(131))]);
    ok(&bed, &env, &["-c", &web, "run"]);
    let host = bed.host(0).name().to_string();
    let status = with_grpc(&bed, 0, async |mut c| {
        let stream = c
            .exec(pb::ExecRequest {
                host: host.clone(),
                container: web.clone(),
                command: "sleep 4242".into(),
                ..Default::default()
            })
            .await;
        match stream {
            Err(s) => s,
            Ok(s) => {
                let mut s = s.into_inner();
                loop {
                    match s.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break tonic::Status::ok("ended"),
                        Err(e) => break e,
                    }
                }
            }
        }
    });
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let ps = docker_exec(&web, &["ps"]);
    assert!(!ps.contains("sleep 4242"), "the exec runs on:\n{ps}");
    ok(&bed, &env, &["-c", &web, "destroy"]);
}

#[test]
fn fields_sent_straight_to_the_api_are_checked_by_the_server() {
    let bed = bed(1);
    let web = bed.container_name("api");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(132))]);
    ok(&bed, &env, &["-c", &web, "run"]);
    let id = inspect(&web, "{{.Id}}");
    let host = bed.host(0).name().to_string();
    let spec = |f: fn(&mut pb::ContainerSpec)| {
        let mut s = test_spec(&bed, &format!("{web}-x"), 133);
        f(&mut s);
        s
    };
    let bad_specs = [
        ("name", spec(|s| s.name = "/etc".into())),
        ("bridge", spec(|s| s.bridge = "br/../0".into())),
        ("mtu", spec(|s| s.mtu = 40)),
        ("vlan", spec(|s| s.vlan = 5000)),
        ("volume", spec(|s| s.volumes = vec!["/a:/b:ro:x".into()])),
    ];
    let (refused, by_id, by_slash) = with_grpc(&bed, 0, async |mut c| {
        let mut refused = Vec::new();
        for (what, s) in bad_specs {
            let r = c
                .run(pb::RunRequest {
                    host: host.clone(),
                    spec: Some(s),
                    first_creation: None,
                    replace: false,
                })
                .await;
            refused.push((what, r.err().map(|s| s.code())));
        }
        let show = |name: String| pb::ContainerRef {
            host: host.clone(),
            name,
        };
        let by_id = c
            .show(show(id[..12].to_string()))
            .await
            .err()
            .map(|s| s.code());
        let by_slash = c
            .stop(show(format!("/{web}")))
            .await
            .err()
            .map(|s| s.code());
        (refused, by_id, by_slash)
    });
    for (what, code) in refused {
        assert_eq!(code, Some(tonic::Code::InvalidArgument), "{what}");
    }
    // An id prefix is not a name, and `/name` is no name at all.
    assert_eq!(by_id, Some(tonic::Code::NotFound));
    assert_eq!(by_slash, Some(tonic::Code::InvalidArgument));
    assert_eq!(inspect(&web, "{{.State.Running}}"), "true");
    ok(&bed, &env, &["-c", &web, "destroy"]);
}

/// A container with NET_ADMIN gives eth0 thousands of addresses: `show`
/// and `list` (raw gRPC, and the client's JSON) list a bounded few, its own
/// first, and say how many more there are, so no answer outgrows a gRPC
/// message however many it adds.
#[test]
fn a_container_adding_thousands_of_addresses_is_shown_with_a_bounded_few() {
    const ADDED: usize = 3000;
    let bed = bed(1);
    let name = bed.container_name("many");
    let ip = bed.subnet_ip(90);
    let env =
        bed.write_environment(&[BedContainer::new(&name, 0, ip).with_yaml("cap_add: [NET_ADMIN]")]);
    ok(&bed, &env, &["run"]);
    // Added from the host into its namespace, in one batch: addresses of
    // the benchmarking range, which no route leads to.
    let pid = inspect(&name, "{{.State.Pid}}");
    let batch: String = (0..ADDED)
        .map(|i| format!("addr add 198.18.{}.{}/32 dev eth0\n", i / 250, i % 250 + 1))
        .collect();
    let mut nsenter = std::process::Command::new("nsenter")
        .args(["-t", pid.trim(), "-n", "ip", "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nsenter");
    use std::io::Write;
    nsenter
        .stdin
        .take()
        .expect("stdin")
        .write_all(batch.as_bytes())
        .expect("write the batch");
    assert!(
        nsenter.wait().expect("nsenter").success(),
        "ip -batch failed"
    );

    let own = format!("{ip}/{}", bed.gateway().prefix());
    let check = |what: &str, info: &pb::ContainerInfo| {
        let listed = info.actual_addresses.len();
        assert!(
            listed <= 2 * netplug::MAX_OBSERVED_ADDRESSES,
            "{what} lists {listed} addresses of eth0's {}",
            ADDED + 1
        );
        assert_eq!(info.actual_addresses.first(), Some(&own), "{what}");
        assert_eq!(
            listed + info.actual_addresses_omitted as usize,
            ADDED + 1,
            "{what}: {listed} listed and {} said to be omitted",
            info.actual_addresses_omitted
        );
        assert!(info.plugged, "{what}: not plugged");
    };
    let host = bed.host(0).name().to_string();
    let (shown, listed) = with_grpc(&bed, 0, async |mut c| {
        let shown = c
            .show(pb::ContainerRef {
                host: host.clone(),
                name: name.clone(),
            })
            .await
            .expect("show")
            .into_inner();
        let listed = c
            .list(pb::ListRequest { host: host.clone() })
            .await
            .expect("list")
            .into_inner();
        (shown, listed)
    });
    check("show", &shown);
    let mine = listed
        .containers
        .iter()
        .find(|c| c.name == name)
        .expect("listed");
    check("list", mine);
    // The client says so too.
    let out = ok(&bed, &env, &["-c", &name, "--output", "json", "show"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        json[0]["info"]["actual_addresses_omitted"],
        shown.actual_addresses_omitted,
        "{}",
        text(&out)
    );
    let out = ok(&bed, &env, &["-c", &name, "show"]);
    assert!(text(&out).contains("more, not listed)"), "{}", text(&out));
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn a_logs_reader_that_does_not_read_keeps_the_server_small() {
    let bed = bed(1);
    let name = bed.container_name("chatty");
    // 1000-byte lines into Docker's log as fast as it takes them (Docker
    // rotates the file), while a follower does not read.
    let yaml = format!(
        "init: true\ncommand: [\"sh\", \"-c\", \"yes {} | head -c 4294967296; sleep 100000\"]\n",
        "b".repeat(999)
    );
    let env =
        bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(131)).with_yaml(&yaml)]);
    ok(&bed, &env, &["-c", &name, "run"]);
    let pid = bed.host(0).server_pid().expect("server.pid");
    let before = status_kib(pid, "VmRSS") / 1024;
    let (read, peak) = with_grpc(&bed, 0, async |mut client| {
        let mut stream = client
            .logs(pb::LogsRequest {
                host: bed.host(0).name().into(),
                containers: vec![name.clone()],
                follow: true,
                ..Default::default()
            })
            .await
            .expect("logs")
            .into_inner();
        let first = stream.message().await.expect("a line").expect("a line");
        assert_eq!(first.container, name);
        // A client that reads nothing for a while: the server waits for it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let peak = status_kib(pid, "VmHWM") / 1024;
        let mut read = 1u64;
        while read < 20_000 {
            stream.message().await.expect("a line").expect("a line");
            read += 1;
        }
        (read, peak)
    });
    println!(
        "server VmRSS {before} MiB before, VmHWM {peak} MiB with a follower of a flood that paused 5 s (goal < 64)"
    );
    assert_eq!(read, 20_000);
    assert!(peak < 64, "the server grew to {peak} MiB");
    ok(&bed, &env, &["-c", &name, "destroy"]);
}
