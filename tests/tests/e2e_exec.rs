//! End to end: `exec` runs a command in a container on its host, its exit
//! status the client's; with `-it` under a pseudo-terminal, keys (Ctrl-C
//! too) reach the command and `stty size` shows the window's size, after a
//! resize too; an operator is refused by default and the refusal audited,
//! a viewer refused; every exec is an audit line.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use dockstack_tests::pty::PtyChild;
use dockstack_tests::support::{assert_nothing_left, bed, dockstack, ok, text};
use dockstack_tests::testbed::{BedContainer, TestBed};

/// `exec -it` under a pseudo-terminal of 33 rows and 101 columns.
fn terminal(bed: &TestBed, env: &Path, name: &str) {
    let mut cmd = bed.client_command();
    cmd.arg("-f")
        .arg(env)
        .args(["-c", name, "exec", "-it", "--", "sh"]);
    let mut term = PtyChild::spawn(cmd, 33, 101);
    let wait = Duration::from_secs(10);
    let mark = term.mark();
    term.write(b"stty size\r");
    assert!(
        term.wait_for(mark, wait, |o| o.contains("33 101")),
        "{:?}",
        term.output()
    );
    // A key typed is echoed by the container's terminal.
    let mark = term.mark();
    term.write(b"echo typed-$((6*7))\r");
    assert!(
        term.wait_for(mark, wait, |o| o.contains("typed-42")),
        "{:?}",
        term.output()
    );
    // Ctrl-C reaches the command (the client is in raw mode, so it is a
    // byte for the container's terminal, not a signal of ours).
    let mark = term.mark();
    term.write(b"sleep 60; echo slept\r");
    std::thread::sleep(Duration::from_millis(500));
    term.write(b"\x03");
    term.write(b"echo after-$((1+1))\r");
    assert!(
        term.wait_for(mark, wait, |o| o.contains("after-2")),
        "{:?}",
        term.output()
    );
    // The command line is echoed; its output would start a line.
    assert!(!term.since(mark).contains("\nslept"), "{:?}", term.output());
    // A resize reaches it too.
    term.resize(40, 120);
    let mark = term.mark();
    term.write(b"stty size\r");
    assert!(
        term.wait_for(mark, wait, |o| o.contains("40 120")),
        "{:?}",
        term.output()
    );
    term.write(b"exit 5\r");
    assert_eq!(term.wait(wait).and_then(|s| s.code()), Some(5));
}

#[test]
fn exec_passes_status_terminal_and_keys_and_only_admins_may() {
    let bed = bed(1);
    let name = bed.container_name("shell");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(90))]);
    ok(&bed, &env, &["apply", "--yes"]);

    // The command's exit status is the client's; its output is ours.
    let out = dockstack(
        &bed,
        &env,
        &["-c", &name, "exec", "--", "sh", "-c", "exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = ok(
        &bed,
        &env,
        &[
            "-c",
            &name,
            "exec",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    // -i: stdin goes through, and its end too.
    let mut child = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args([
            "-c",
            &name,
            "exec",
            "-i",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\ndone\n");

    terminal(&bed, &env, &name);

    // The admin's execs were audited, naming the command.
    let log = bed.server_log(0);
    assert!(
        log.lines()
            .any(|l| l.contains("exec session") && l.contains(&name) && l.contains("exit 7")),
        "{log}"
    );

    // An operator is refused by default, and the refusal audited; a viewer too.
    for (who, role, why) in [
        ("ops1", "operator", "the operator policy allows no exec"),
        ("view1", "viewer", "the viewer role may not exec"),
    ] {
        bed.add_client(who, role);
        let out = dockstack(&bed, &env, &["--as", who, "-c", &name, "exec", "--", "id"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "{}", text(&out));
        let log = bed.server_log(0);
        assert!(
            log.lines().any(|l| l.contains("refused")
                && l.contains(&format!("CN={who}"))
                && l.contains("action=\"exec\"")
                && l.contains(&name)),
            "no audit line of {who}'s refusal: {log}"
        );
    }

    // The server checks every field itself: an empty program is refused.
    let out = dockstack(&bed, &env, &["-c", &name, "exec", "--", ""]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the program's name is empty"),
        "{}",
        text(&out)
    );

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}
