//! What the client sees of a bed: its command, the `environment.yaml` of the bed's hosts and containers, and the containers the servers made.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use super::bed::TestBed;
use super::layout::{HOST_LABEL, SANDBOX_SUFFIX, TEST_IMAGE};
use super::options::BedContainer;
use super::tools::{docker, find_binary};

impl TestBed {
    /// A command for the `dockstack` client (`$DOCKSTACK_BIN`, else beside
    /// the test executable), run in [`TestBed::dir`], with the bed's
    /// `--tls-dir` (or `--insecure`) as its only argument yet.
    pub fn client_command(&self) -> Command {
        let bin = find_binary("dockstack", "DOCKSTACK_BIN").unwrap_or_else(|e| panic!("{e:#}"));
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir());
        if self.opts.insecure {
            cmd.arg("--insecure");
        } else {
            cmd.arg("--tls-dir").arg(self.tls_dir());
        }
        cmd
    }

    /// `dockstack certs add-client NAME --role ROLE` in the bed's TLS
    /// directory: a client certificate `--as NAME` then uses.
    pub fn add_client(&self, name: &str, role: &str) {
        let out = self
            .client_command()
            .args(["certs", "add-client", name, "--role", role])
            .output()
            .expect("dockstack certs");
        assert!(
            out.status.success(),
            "add-client {name}: {}",
            crate::support::text(&out)
        );
    }

    /// Starts `dockstack -f ENV ARGS` in the background, its output piped,
    /// for a test that acts while it runs (kills it, cuts its hosts,
    /// follows its stream).
    pub fn spawn_client(&self, env: &std::path::Path, args: &[&str]) -> std::process::Child {
        self.client_command()
            .arg("-f")
            .arg(env)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run dockstack")
    }

    /// Writes `environment.yaml` for `containers` into [`TestBed::dir`]; its path.
    pub fn write_environment(&self, containers: &[BedContainer]) -> PathBuf {
        let path = self.dir().join("environment.yaml");
        fs::write(&path, self.environment_yaml(containers))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Writes `name` in [`TestBed::dir`]: the environment of `containers`
    /// with a `registration` section (its body indented already); its path.
    pub fn write_registered_environment(
        &self,
        name: &str,
        containers: &[BedContainer],
        registration: &str,
    ) -> PathBuf {
        let path = self.dir().join(name);
        let yaml = format!(
            "{}registration:\n{registration}",
            self.environment_yaml(containers)
        );
        fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The text [`TestBed::write_environment`] writes.
    pub fn environment_yaml(&self, containers: &[BedContainer]) -> String {
        let mut y = format!(
            "# dockstack test bed, slot {}\ncommon:\n  domain: bed{}.test\ncontainerhosts:\n",
            self.slot, self.slot
        );
        for h in &self.hosts {
            y.push_str(&format!(
                "  {}:\n    ip: {}\n    port: {}\n",
                yaml_str(&h.name),
                h.mgmt_ip,
                h.port
            ));
        }
        if containers.is_empty() {
            y.push_str("containers: {}\n");
            return y;
        }
        y.push_str("containers:\n");
        for c in containers {
            let host = self
                .hosts
                .get(c.host)
                .unwrap_or_else(|| panic!("container {}: no host {} in the bed", c.name, c.host));
            let given: BTreeSet<&str> = c
                .extra_yaml
                .lines()
                .filter(|l| !l.starts_with([' ', '-', '#']) && !l.trim().is_empty())
                .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
                .collect();
            y.push_str(&format!("  {}:\n", yaml_str(&c.name)));
            let defaults = [
                ("image", yaml_str(&c.image)),
                ("ip", c.ip.to_string()),
                ("mask", self.gateway.prefix().to_string()),
                ("gateway", self.gateway.ip().to_string()),
                ("bridge", yaml_str(&self.opts.bridge)),
                ("host", yaml_str(&host.name)),
                ("state", "true".to_string()),
            ];
            for (key, value) in defaults {
                if !given.contains(key) {
                    y.push_str(&format!("    {key}: {value}\n"));
                }
            }
            // The test image's `sleep infinity` (or a shell) as PID 1 ignores
            // SIGTERM, so every graceful stop would wait out its grace
            // period; Docker's init forwards the signal and it ends at once.
            // Any tag of it; not where a test gives its own command, whose
            // start must fail as Docker's would without an init.
            let test_image = c.image.split(':').next() == TEST_IMAGE.split(':').next();
            if test_image && !given.contains("init") && !given.contains("command") {
                y.push_str("    init: true\n");
            }
            for line in c.extra_yaml.lines().filter(|l| !l.trim().is_empty()) {
                y.push_str("    ");
                y.push_str(line);
                y.push('\n');
            }
        }
        y
    }

    /// Names of the Docker containers (running or not) labelled as host `i`'s.
    pub fn managed_containers(&self, i: usize) -> Vec<String> {
        let label = format!("label={HOST_LABEL}={}", self.hosts[i].name);
        docker(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
            .unwrap_or_else(|e| panic!("{e:#}"))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Names of host `i`'s managed containers as their users know them:
    /// without the sandboxes, each of which is checked to be there; sorted.
    pub fn managed_apps(&self, i: usize) -> Vec<String> {
        let all = self.managed_containers(i);
        let mut apps: Vec<String> = all
            .iter()
            .filter(|n| !n.ends_with(SANDBOX_SUFFIX))
            .cloned()
            .collect();
        for app in &apps {
            let sandbox = format!("{app}{SANDBOX_SUFFIX}");
            assert!(
                all.contains(&sandbox),
                "container {app} on host {i} has no sandbox {sandbox}: {all:?}"
            );
        }
        apps.sort();
        apps
    }
}

fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !s.starts_with(['-', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_strings_are_quoted_when_needed() {
        assert_eq!(yaml_str("bed1-h0"), "bed1-h0");
        assert_eq!(
            yaml_str("dockstack-test-busybox:latest"),
            "\"dockstack-test-busybox:latest\""
        );
        assert_eq!(yaml_str("yes"), "\"yes\"");
        assert_eq!(yaml_str("12"), "\"12\"");
    }
}
