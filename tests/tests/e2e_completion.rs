//! End to end: bash completes `-c` with the container names of the file
//! the command line names with `-f`, asking the real `dockstack`; and the
//! new commands and their options are completed too.

use std::process::Command;

use dockstack_tests::testbed::find_binary;

/// What bash's completion offers for `words` (the last being completed).
fn complete(script: &str, path: &str, dir: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = format!(
        "{script}\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n_dockstack dockstack '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&line)
        .env("PATH", path)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_container_names_from_the_file_and_the_new_commands() {
    let bin = find_binary("dockstack", "DOCKSTACK_BIN").unwrap();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = std::env::temp_dir().join(format!("dockstack-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("other.yaml"),
        "containerhosts:\n  h1: {ip: 127.0.0.1, port: 3288}\ncontainers:\n  web1: {image: web, ip: 10.0.0.2, mask: 24, bridge: br0, host: h1}\n  web2: {image: web, ip: 10.0.0.3, mask: 24, bridge: br0, host: h1}\n  db1: {image: db, ip: 10.0.0.4, mask: 24, bridge: br0, host: h1}\n",
    )
    .unwrap();
    let script = Command::new(&bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8(script.stdout).unwrap();

    let offered = complete(
        &script,
        &path,
        &dir,
        &["dockstack", "-f", "other.yaml", "-c", "we"],
    );
    assert_eq!(offered, ["web1", "web2"]);
    let offered = complete(
        &script,
        &path,
        &dir,
        &["dockstack", "-f", "other.yaml", "logs", "--container", ""],
    );
    assert_eq!(offered, ["web1", "web2", "db1"]);
    // No such file: nothing offered, no error.
    let offered = complete(&script, &path, &dir, &["dockstack", "-c", ""]);
    assert!(offered.is_empty(), "{offered:?}");
    let offered = complete(&script, &path, &dir, &["dockstack", "ev"]);
    assert_eq!(offered, ["events"]);
    let offered = complete(&script, &path, &dir, &["dockstack", "logs", "--t"]);
    for o in ["--tail", "--timestamps"] {
        assert!(offered.iter().any(|x| x == o), "{o} in {offered:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
