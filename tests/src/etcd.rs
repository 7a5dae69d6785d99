//! A three-member etcd (Debian's `etcd`) for the tests of a cluster with
//! `cluster: {etcd: ...}`: one member in each of a bed's first hosts,
//! with mutual TLS everywhere (a CA, a certificate per member, the
//! client's) made by rcgen. Clients reach the members on the hosts'
//! management addresses; the members reach each other over the bridge.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::support::wait_until;
use crate::testbed::TestBed;

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;

/// The cluster; its members are killed when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Member>,
    prefix: String,
}

#[derive(Debug)]
struct Member {
    name: String,
    client_ip: Ipv4Addr,
    child: Option<Child>,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p
}

impl EtcdCluster {
    /// Starts a member on each of `bed`'s first three hosts and waits for
    /// the cluster to be healthy.
    pub fn start(bed: &TestBed) -> Self {
        let dir = bed.dir().join("etcd");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = params("dockstack test etcd CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        write(&dir.join("ca.pem"), &ca.pem());
        let issuer = Issuer::new(ca_params, ca_key);
        let issue = |name: &str, ips: &[Ipv4Addr], usages: Vec<ExtendedKeyUsagePurpose>| {
            let mut p = params(name);
            p.subject_alt_names = ips
                .iter()
                .map(|ip| SanType::IpAddress(IpAddr::V4(*ip)))
                .collect();
            p.extended_key_usages = usages;
            let key = KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, &issuer).expect("cert");
            write(&dir.join(format!("{name}.pem")), &cert.pem());
            write(&dir.join(format!("{name}.key")), &key.serialize_pem());
        };
        issue("client", &[], vec![ExtendedKeyUsagePurpose::ClientAuth]);
        let hosts: Vec<usize> = (0..3).collect();
        let initial: Vec<String> = hosts
            .iter()
            .map(|&i| format!("m{i}=https://{}:{PEER_PORT}", bed.host(i).bridge_ip()))
            .collect();
        let mut members = Vec::new();
        for &i in &hosts {
            let h = bed.host(i);
            let name = format!("m{i}");
            issue(
                &name,
                &[h.mgmt_ip(), h.bridge_ip()],
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            );
            members.push(Member {
                name,
                client_ip: h.mgmt_ip(),
                child: None,
            });
        }
        let mut cluster = EtcdCluster {
            dir,
            members,
            prefix: format!("/dockstack-test-{}", bed.slot()),
        };
        for (i, m) in cluster.members.iter_mut().enumerate() {
            let h = bed.host(i);
            let d = &cluster.dir;
            let pem = |n: &str| d.join(n).display().to_string();
            let log = std::fs::File::create(d.join(format!("{}.log", m.name))).expect("log");
            let child = Command::new("ip")
                .args(["netns", "exec", h.netns(), "etcd"])
                .arg(format!("--name={}", m.name))
                .arg(format!(
                    "--data-dir={}",
                    d.join(format!("{}.data", m.name)).display()
                ))
                .arg(format!(
                    "--listen-client-urls=https://{}:{CLIENT_PORT}",
                    h.mgmt_ip()
                ))
                .arg(format!(
                    "--advertise-client-urls=https://{}:{CLIENT_PORT}",
                    h.mgmt_ip()
                ))
                .arg(format!(
                    "--listen-peer-urls=https://{}:{PEER_PORT}",
                    h.bridge_ip()
                ))
                .arg(format!(
                    "--initial-advertise-peer-urls=https://{}:{PEER_PORT}",
                    h.bridge_ip()
                ))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .arg("--initial-cluster-state=new")
                .arg(format!("--initial-cluster-token=dsb{}", bed.slot()))
                .arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", pem("ca.pem")))
                .arg(format!("--cert-file={}", pem(&format!("{}.pem", m.name))))
                .arg(format!("--key-file={}", pem(&format!("{}.key", m.name))))
                .arg("--peer-client-cert-auth")
                .arg(format!("--peer-trusted-ca-file={}", pem("ca.pem")))
                .arg(format!(
                    "--peer-cert-file={}",
                    pem(&format!("{}.pem", m.name))
                ))
                .arg(format!(
                    "--peer-key-file={}",
                    pem(&format!("{}.key", m.name))
                ))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start etcd");
            m.child = Some(child);
        }
        let healthy = cluster.wait_healthy(3);
        assert!(healthy, "etcd did not come up: {}", cluster.logs());
        cluster
    }

    /// Waits up to a minute for `members` of the members to answer as
    /// healthy (after a kill: once the others have elected a leader).
    pub fn wait_healthy(&self, members: usize) -> bool {
        wait_until(Duration::from_secs(60), || self.healthy(members))
    }

    fn healthy(&self, members: usize) -> bool {
        let out = self.etcdctl(&["endpoint", "health"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        text.matches("is healthy").count() >= members
    }

    /// `etcdctl ARGS` against every member, with the client's certificate.
    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let pem = |n: &str| self.dir.join(n).display().to_string();
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
            .arg(format!("--cacert={}", pem("ca.pem")))
            .arg(format!("--cert={}", pem("client.pem")))
            .arg(format!("--key={}", pem("client.key")))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=3s")
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("https://{}:{CLIENT_PORT}", m.client_ip))
            .collect()
    }

    /// The prefix of this bed's keys.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `cluster` section of an environment file for this etcd.
    pub fn yaml(&self) -> String {
        let pem = |n: &str| self.dir.join(n).display().to_string();
        format!(
            "cluster:\n  etcd: [{}]\n  prefix: {}\n  tls:\n    ca: {}\n    cert: {}\n    key: {}\n",
            self.endpoints().join(", "),
            self.prefix,
            pem("ca.pem"),
            pem("client.pem"),
            pem("client.key")
        )
    }

    /// The client's flags for this etcd (`--etcd` and its TLS), for a file
    /// without a `cluster` section.
    pub fn flags(&self) -> Vec<String> {
        let pem = |n: &str| self.dir.join(n).display().to_string();
        vec![
            "--etcd".into(),
            self.endpoints().join(","),
            "--etcd-ca".into(),
            pem("ca.pem"),
            "--etcd-cert".into(),
            pem("client.pem"),
            "--etcd-key".into(),
            pem("client.key"),
        ]
    }

    /// The value at `key`, empty when there is none.
    pub fn value(&self, key: &str) -> String {
        let out = self.etcdctl(&["get", key, "--print-value-only"]);
        assert!(out.status.success(), "etcdctl get {key}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Kills member `i` (SIGKILL), as a host that loses power.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every member's log, for a failure's message.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- {} ---\n{}",
                    m.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
