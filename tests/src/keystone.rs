//! keystone of the control plane example on a test bed: a client issuing a
//! token through the VIP every 100 ms, a token asked for through the VIP
//! and validated at each member. The steps [`whole`](crate::whole) takes
//! with them.

use std::time::{Duration, Instant};

use crate::support::wait_until;
use crate::testbed::{TestBed, docker};

pub const MEMBERS: [&str; 2] = ["keystone1", "keystone2"];
/// The members' addresses' last bytes, as `MEMBERS`.
const ADDRESSES: [u32; 2] = [51, 52];
pub const ONESHOTS: [&str; 3] = ["keystone-db", "keystone-keys", "keystone-bootstrap"];
const VIP: u32 = 10;
const TOKENS: &str = "/usr/local/share/dockstack/tokens.py";
pub const CLIENT: &str = "keystone-client";
/// The key of the members' environment (an anchor they share) and the one
/// a rolling change adds before it.
pub const ROLL: (&str, &str) = ("MEMCACHED_SERVERS", "KEYSTONE_ROLL");

/// A client issuing a token through the VIP every 100 ms from the host
/// that lb1 (holding the VIP) is not on; one line a request in its volume
/// (see tokens.py).
pub const CLIENT_YAML: &str = "
  keystone-client:
    <<: *containerdefault
    image: dockstack/keystone:latest
    host: *host2
    step: 9
    ip: 10.0.0.59
    init: true
    command: [python3, /usr/local/share/dockstack/tokens.py, load, http://10.0.0.10:5000/v3, /load]
    volumes:
    - /var/lib/dockstack-demo/controlplane/keystone-client:/load
    env:
      KEYSTONE_ADMIN_PASSWORD: controlplane
";

/// The example's keystone client run inside `container`.
fn tokens(container: &str, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["exec", container, "python3", TOKENS];
    argv.extend(args);
    docker(&argv)
        .map(|out| out.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}

/// The members and the client on a bed.
#[derive(Debug)]
pub struct Keystone<'b> {
    pub bed: &'b TestBed,
}

impl Keystone<'_> {
    fn url(&self, n: u32) -> String {
        format!("http://{}:5000/v3", self.bed.subnet_ip(n))
    }

    /// A token through the VIP, asked for from the client's container
    /// until one comes or `within` has passed (the first login of a member
    /// loads much of keystone: seconds on a loaded machine).
    pub fn token_through_vip(&self, within: Duration) -> Result<String, String> {
        let client = self.bed.container_name(CLIENT);
        let url = self.url(VIP);
        let mut last = Err(String::new());
        wait_until(within, || {
            last = tokens(&client, &["issue", &url]);
            last.is_ok()
        });
        last
    }

    /// A token issued through the VIP is valid at each member (they share
    /// the fernet keys). Returns how long the first token took.
    pub fn token_everywhere(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let token = self
            .token_through_vip(Duration::from_secs(180))
            .map_err(|e| format!("no token through the VIP: {e}"))?;
        let first = started.elapsed();
        let client = self.bed.container_name(CLIENT);
        for (m, n) in MEMBERS.iter().zip(ADDRESSES) {
            let url = self.url(n);
            let mut last = Err(String::new());
            wait_until(Duration::from_secs(120), || {
                last = tokens(&client, &["validate", &url, &token]);
                last.is_ok()
            });
            if last.as_deref() != Ok("admin") {
                return Err(format!(
                    "the token issued through the VIP, validated at {m} ({url}): {last:?}"
                ));
            }
        }
        Ok(first)
    }
}
