//! RabbitMQ of the control plane example on a test bed: its members'
//! Erlang cookie, the cluster each member sees, a message across members,
//! the drains recorded before their stops, and a publisher through the VIP.
//! The steps [`whole`](crate::whole) takes with them.

use std::path::Path;
use std::time::Duration;

use crate::support::wait_until;
use crate::testbed::{TestBed, docker};

pub const MEMBERS: [&str; 3] = ["rabbit1", "rabbit2", "rabbit3"];
/// The members' addresses' last bytes, as `MEMBERS`.
const ADDRESSES: [u32; 3] = [31, 32, 33];
const VIP: u32 = 10;
const AMQP: &str = "/usr/local/share/dockstack/amqp.py";
pub const PUBLISHER: &str = "publisher";
/// The key of the members' environment (an anchor they share) and the one
/// a rolling change adds before it.
pub const ROLL: (&str, &str) = ("RABBITMQ_PEERS", "RABBITMQ_ROLL");

/// A client publishing a confirmed message through the VIP every 100 ms
/// from the host that lb1 (holding the VIP) is not on; one line a message
/// in its volume (see amqp.py).
pub const PUBLISHER_YAML: &str = "
  publisher:
    <<: *containerdefault
    image: dockstack/rabbitmq:latest
    host: *host2
    step: 6
    ip: 10.0.0.39
    init: true
    command: [python3, /usr/local/share/dockstack/amqp.py, load, 10.0.0.10, load, /load]
    volumes:
    - /var/lib/dockstack-demo/controlplane/publisher:/load
    env:
      AMQP_USER: openstack
      AMQP_PASSWORD: controlplane
";

/// The Erlang cookie every member reads from its volume, made as an
/// operator would before the first apply.
pub fn make_cookie(data: &Path) {
    let dir = data.join("rabbitmq-cookie");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = [0u8; 20];
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut random, &mut bytes).unwrap();
    let cookie: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("cookie"), cookie).unwrap();
}

/// The running nodes `container`'s member sees in its cluster.
fn running_nodes(container: &str) -> Result<Vec<String>, String> {
    let out = docker(&[
        "exec",
        container,
        "rabbitmqctl",
        "-q",
        "cluster_status",
        "--formatter",
        "json",
    ])
    .map_err(|e| format!("{e:#}"))?;
    let status: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| format!("cluster_status is not JSON ({e}): {out}"))?;
    let mut nodes: Vec<String> = status["running_nodes"]
        .as_array()
        .ok_or_else(|| format!("no running_nodes in {out}"))?
        .iter()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    nodes.sort();
    Ok(nodes)
}

/// The example's AMQP client run inside `container` (with its AMQP_USER
/// and AMQP_PASSWORD): `publish HOST QUEUE BODY` or `get HOST QUEUE`.
pub fn amqp(container: &str, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["exec", container, "python3", AMQP];
    argv.extend(args);
    docker(&argv)
        .map(|out| out.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}

/// The three members on a bed.
#[derive(Debug)]
pub struct Rabbits<'b> {
    pub bed: &'b TestBed,
}

impl Rabbits<'_> {
    fn name(&self, n: &str) -> String {
        self.bed.container_name(n)
    }

    fn ip(&self, n: u32) -> String {
        self.bed.subnet_ip(n).to_string()
    }

    /// The members' container names.
    pub fn names(&self) -> Vec<String> {
        MEMBERS.iter().map(|r| self.name(r)).collect()
    }

    /// The three nodes, as each member names them.
    fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = MEMBERS
            .iter()
            .map(|r| format!("rabbit@{}", self.name(r)))
            .collect();
        nodes.sort();
        nodes
    }

    /// Every member sees the three nodes running.
    fn formed(&self) -> Result<(), String> {
        let want = self.nodes();
        for r in MEMBERS {
            let seen = running_nodes(&self.name(r))?;
            if seen != want {
                return Err(format!("{r} sees {seen:?} running"));
            }
        }
        Ok(())
    }

    /// rabbit1 sees the three running: one member's view, cheaper to ask
    /// for while waiting (each CLI run is an Erlang VM of its own).
    pub fn formed_at_rabbit1(&self) -> Result<(), String> {
        let seen = running_nodes(&self.name("rabbit1"))?;
        if seen == self.nodes() {
            Ok(())
        } else {
            Err(format!("rabbit1 sees {seen:?} running"))
        }
    }

    /// Waits a minute at most until every member's `cluster_status` lists
    /// the three running.
    pub fn wait_formed(&self, when: &str) {
        let mut last = Ok(());
        let formed = wait_until(Duration::from_secs(60), || {
            last = self.formed();
            last.is_ok()
        });
        assert!(formed, "RabbitMQ's cluster {when}: {last:?}");
    }

    /// A message published through the VIP is taken from another member's
    /// address, and one published at a member from a third.
    pub fn message_across_members(&self) {
        let vip = self.ip(VIP);
        let [r1, r2, r3] = MEMBERS.map(|r| self.name(r));
        let [a1, a2, a3] = ADDRESSES.map(|n| self.ip(n));
        for (from, at, to, on, body) in [
            (&r2, &vip, &r3, &a3, "through the VIP"),
            (&r1, &a1, &r2, &a2, "at rabbit1"),
        ] {
            let published = amqp(from, &["publish", at, "e2e", body]);
            assert_eq!(
                published.as_deref(),
                Ok("published"),
                "publishing {body} from {from} at {at}"
            );
            let got = amqp(to, &["get", on, "e2e"]);
            assert_eq!(
                got.as_deref(),
                Ok(body),
                "the message published {body}, taken from {to} at {on}"
            );
        }
    }

    /// A durable message published through the VIP from rabbit2.
    pub fn publish_through_vip(&self, body: &str) {
        let published = amqp(
            &self.name("rabbit2"),
            &["publish", &self.ip(VIP), "e2e", body],
        );
        assert_eq!(published.as_deref(), Ok("published"), "publishing {body}");
    }

    /// The next message of the queue, taken through the VIP from rabbit3.
    pub fn get_through_vip(&self) -> Result<String, String> {
        amqp(&self.name("rabbit3"), &["get", &self.ip(VIP), "e2e"])
    }

    /// The drains recorded on `member`'s data volume (ns since the epoch).
    pub fn drains(&self, member: &str) -> Vec<u64> {
        let file = self
            .bed
            .dir()
            .join("controlplane")
            .join(self.name(member))
            .join("dockstack-drains");
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}
