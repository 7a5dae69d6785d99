//! OpenFlow 1.4 on a bridge's management socket: the flow mods of port
//! security, replaced in one atomic bundle or deleted by cookie, without
//! forking `ovs-ofctl` (some 20 ms a call, most of a plug's time).
//!
//! Only what netplug sends is encoded: OXM matches on the fields of
//! [`Field`], the NORMAL action or none (drop). A [`FlowMod`] prints as the
//! line `ovs-ofctl add-flows` reads, which is how tests check the encoding:
//! the rules OVS holds after our bytes equal those it holds after
//! `ovs-ofctl` read our text.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use ipnetwork::{Ipv4Network, Ipv6Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::mac::Mac;

const VERSION: u8 = 0x05;

const HELLO: u8 = 0;
const ERROR: u8 = 1;
const ECHO_REQUEST: u8 = 2;
const ECHO_REPLY: u8 = 3;
const PACKET_OUT: u8 = 13;
const FLOW_MOD: u8 = 14;
const BARRIER_REQUEST: u8 = 20;
const BARRIER_REPLY: u8 = 21;
const BUNDLE_CONTROL: u8 = 33;
const BUNDLE_ADD_MESSAGE: u8 = 34;

const BUNDLE_OPEN_REQUEST: u16 = 0;
const BUNDLE_COMMIT_REQUEST: u16 = 4;
const BUNDLE_COMMIT_REPLY: u16 = 5;
const BUNDLE_ATOMIC: u16 = 1;
const BUNDLE_ORDERED: u16 = 2;

const OFPFC_ADD: u8 = 0;
const OFPFC_DELETE: u8 = 3;
const OFPTT_ALL: u8 = 0xff;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPG_ANY: u32 = 0xffff_ffff;
const OFPP_NORMAL: u32 = 0xffff_fffa;
const OFPP_TABLE: u32 = 0xffff_fff9;
/// The error type of a failed version negotiation.
const OFPET_HELLO_FAILED: u16 = 0;
const NO_BUFFER: u32 = 0xffff_ffff;
const OFPIT_APPLY_ACTIONS: u16 = 4;
const OFPAT_OUTPUT: u16 = 0;

const ETH_TYPE_IP: u16 = 0x0800;
const ETH_TYPE_ARP: u16 = 0x0806;
const ETH_TYPE_IPV6: u16 = 0x86dd;
const IP_PROTO_ICMPV6: u8 = 58;
const IP_PROTO_UDP: u8 = 17;

#[derive(Debug, thiserror::Error)]
pub enum OpenFlowError {
    #[error("cannot connect to {socket}: {source}")]
    Connect {
        socket: String,
        source: std::io::Error,
    },
    #[error("{socket}: {source}")]
    Io {
        socket: String,
        source: std::io::Error,
    },
    #[error("{socket}: no answer within {timeout:?}")]
    Timeout { socket: String, timeout: Duration },
    #[error("{socket}: OpenFlow 1.4 refused (the bridge's protocols must include OpenFlow14)")]
    Version { socket: String },
    /// OpenFlow's error message: the failed request's kind, and the
    /// error's type and code as the specification numbers them.
    #[error("{socket}: {request} failed: OpenFlow error type {kind} code {code}")]
    Refused {
        socket: String,
        request: &'static str,
        kind: u16,
        code: u16,
    },
    #[error("{socket}: malformed reply: {what}")]
    Malformed { socket: String, what: String },
}

/// One match field; IPv4 and IPv6 ones take a prefix (a full-length one is
/// an exact match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    InPort(u32),
    EthSrc(Mac),
    /// ARP, or IPv4, or IPv6 with its ICMPv6 type.
    Arp,
    Ip,
    Ipv6,
    Icmpv6Type(u8),
    /// UDP from this source port (after `Ip` or `Ipv6`).
    UdpSrc(u16),
    ArpSha(Mac),
    ArpSpa(Ipv4Network),
    Ipv4Src(Ipv4Network),
    Ipv6Src(Ipv6Network),
    NdTarget(Ipv6Network),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward as a learning switch would.
    Normal,
    Drop,
}

/// A flow mod: add one rule in table 0, or delete every rule whose cookie
/// matches under the mask and whose match is at least as narrow as
/// `fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowMod {
    Add {
        cookie: u64,
        priority: u16,
        fields: Vec<Field>,
        action: Action,
    },
    Delete {
        cookie: u64,
        cookie_mask: u64,
        fields: Vec<Field>,
    },
}

/// Replaces rules as one atomic, ordered bundle: OVS applies all of
/// `mods`, in order, or none.
pub async fn bundle(
    socket: &Path,
    mods: &[FlowMod],
    timeout: Duration,
) -> Result<(), OpenFlowError> {
    let mut conn = Conn::open(socket, timeout).await?;
    let bundle_id = 1;
    let mut out = Vec::new();
    let open = conn.next_xid();
    control(&mut out, open, bundle_id, BUNDLE_OPEN_REQUEST);
    for m in mods {
        let xid = conn.next_xid();
        let inner = m.encode(xid);
        header(&mut out, BUNDLE_ADD_MESSAGE, 16 + inner.len(), xid);
        out.extend_from_slice(&bundle_id.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(BUNDLE_ATOMIC | BUNDLE_ORDERED).to_be_bytes());
        out.extend_from_slice(&inner);
    }
    let commit = conn.next_xid();
    control(&mut out, commit, bundle_id, BUNDLE_COMMIT_REQUEST);
    // OVS answers every request in turn: an error for a flow mod it
    // refused, then the commit's answer, a reply or the error that failed
    // the whole bundle.
    let (earlier, (kind, body)) = conn.exchange(&out, commit, "bundle").await?;
    if let Some(e) = earlier {
        return Err(e);
    }
    let reply = body.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match (kind, reply) {
        (BUNDLE_CONTROL, Some(BUNDLE_COMMIT_REPLY)) => Ok(()),
        (ERROR, _) => Err(conn.refused(&body, "bundle")?),
        (_, other) => Err(conn.malformed(format!(
            "bundle commit answered with message type {kind}, control type {other:?}"
        ))),
    }
}

/// Sends `mods` one by one, then a barrier: returns once OVS has applied
/// them all, with the first one it refused.
pub async fn send(socket: &Path, mods: &[FlowMod], timeout: Duration) -> Result<(), OpenFlowError> {
    let mut conn = Conn::open(socket, timeout).await?;
    let mut out = Vec::new();
    for m in mods {
        let xid = conn.next_xid();
        out.extend_from_slice(&m.encode(xid));
    }
    conn.with_barrier(out, "flow mod").await
}

/// Puts each of `frames` into the bridge as though it had come in on
/// OpenFlow port `in_port`: through table 0, so the port's rules apply to
/// it as to anything the port sends, and the learning switch learns its
/// source there. Returns once OVS has processed them all.
pub async fn packet_out(
    socket: &Path,
    in_port: u32,
    frames: &[&[u8]],
    timeout: Duration,
) -> Result<(), OpenFlowError> {
    let mut conn = Conn::open(socket, timeout).await?;
    let mut out = Vec::new();
    for frame in frames {
        let xid = conn.next_xid();
        header(&mut out, PACKET_OUT, 24 + 16 + frame.len(), xid);
        out.extend_from_slice(&NO_BUFFER.to_be_bytes());
        out.extend_from_slice(&in_port.to_be_bytes());
        out.extend_from_slice(&16u16.to_be_bytes()); // actions_len
        out.extend_from_slice(&[0; 6]);
        output_action(&mut out, OFPP_TABLE);
        out.extend_from_slice(frame);
    }
    conn.with_barrier(out, "packet out").await
}

/// A connection held open to a bridge's management socket, which ends
/// when ovs-vswitchd does: how a restart, which takes every flow with it,
/// is noticed at once.
pub struct Hold(Conn);

/// Connects to `socket` and waits for ovs-vswitchd to answer a barrier, so
/// that a socket file a dead ovs-vswitchd left behind is no hold.
pub async fn hold(socket: &Path, timeout: Duration) -> Result<Hold, OpenFlowError> {
    let mut conn = Conn::open(socket, timeout).await?;
    conn.with_barrier(Vec::new(), "barrier").await?;
    Ok(Hold(conn))
}

impl Hold {
    /// Returns when the connection ends (ovs-vswitchd exited, or the
    /// bridge went), answering ovs-vswitchd's echo requests meanwhile.
    pub async fn closed(&mut self) -> OpenFlowError {
        // Silence is no fault here: only the end of the stream is.
        self.0.timeout = Duration::from_secs(365 * 24 * 3600);
        loop {
            if let Err(e) = self.0.recv().await {
                return e;
            }
        }
    }
}

/// Appends an `OFPAT_OUTPUT` action (16 bytes) to `port`, with no
/// `max_len`: nothing is ever sent to the controller.
fn output_action(out: &mut Vec<u8>, port: u32) {
    out.extend_from_slice(&OFPAT_OUTPUT.to_be_bytes());
    out.extend_from_slice(&16u16.to_be_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // max_len
    out.extend_from_slice(&[0; 6]);
}

struct Conn {
    stream: UnixStream,
    socket: String,
    timeout: Duration,
    xid: u32,
}

impl Conn {
    /// Connects and exchanges HELLOs, for OpenFlow 1.4 only: bundles are
    /// 1.4's.
    async fn open(socket: &Path, timeout: Duration) -> Result<Self, OpenFlowError> {
        let name = socket.display().to_string();
        let stream = match tokio::time::timeout(timeout, UnixStream::connect(socket)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(OpenFlowError::Connect {
                    socket: name,
                    source,
                });
            }
            Err(_) => {
                return Err(OpenFlowError::Timeout {
                    socket: name,
                    timeout,
                });
            }
        };
        let mut conn = Conn {
            stream,
            socket: name,
            timeout,
            xid: 0,
        };
        // Not waited for: OVS reads the requests that follow once it has
        // read the hello, and its own hello and any refusal of the version
        // come back ahead of their answers (see `recv`). A round trip to a
        // busy ovs-vswitchd saved per connection.
        let mut hello = Vec::new();
        let xid = conn.next_xid();
        header(&mut hello, HELLO, 8, xid);
        conn.send(&hello).await?;
        Ok(conn)
    }

    /// Sends `bytes`, then reads until the answer to request `last` (its
    /// reply or its error): that answer's kind and body, with the first
    /// error OVS sent for an earlier request.
    async fn exchange(
        &mut self,
        bytes: &[u8],
        last: u32,
        request: &'static str,
    ) -> Result<(Option<OpenFlowError>, (u8, Vec<u8>)), OpenFlowError> {
        self.send(bytes).await?;
        let mut earlier = None;
        loop {
            let (kind, xid, body) = self.recv().await?;
            if xid == last && matches!(kind, ERROR | BUNDLE_CONTROL | BARRIER_REPLY) {
                return Ok((earlier, (kind, body)));
            }
            if kind == ERROR {
                let refused = self.refused(&body, request)?;
                earlier.get_or_insert(refused);
            }
        }
    }

    /// Sends the requests in `out`, then a barrier: returns once OVS has
    /// processed them all, with the first one it refused.
    async fn with_barrier(
        &mut self,
        mut out: Vec<u8>,
        request: &'static str,
    ) -> Result<(), OpenFlowError> {
        let barrier = self.next_xid();
        header(&mut out, BARRIER_REQUEST, 8, barrier);
        let (earlier, (kind, body)) = self.exchange(&out, barrier, request).await?;
        match (earlier, kind) {
            (Some(e), _) => Err(e),
            (None, BARRIER_REPLY) => Ok(()),
            (None, ERROR) => Err(self.refused(&body, "barrier")?),
            (None, _) => Err(self.malformed(format!("barrier answered with message type {kind}"))),
        }
    }

    fn next_xid(&mut self) -> u32 {
        self.xid += 1;
        self.xid
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), OpenFlowError> {
        let io = |source| OpenFlowError::Io {
            socket: self.socket.clone(),
            source,
        };
        match tokio::time::timeout(self.timeout, self.stream.write_all(bytes)).await {
            Ok(r) => r.map_err(io),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// The next message: kind, xid and what follows the header. Echo
    /// requests are answered here, as a long bundle may meet one; OVS's
    /// hello is passed over (its version is checked in `recv_any`).
    async fn recv(&mut self) -> Result<(u8, u32, Vec<u8>), OpenFlowError> {
        loop {
            let (kind, xid, body) = self.recv_any().await?;
            if kind == HELLO {
                continue;
            }
            if kind == ECHO_REQUEST {
                let mut reply = Vec::new();
                header(&mut reply, ECHO_REPLY, 8 + body.len(), xid);
                reply.extend_from_slice(&body);
                self.send(&reply).await?;
                continue;
            }
            return Ok((kind, xid, body));
        }
    }

    async fn recv_any(&mut self) -> Result<(u8, u32, Vec<u8>), OpenFlowError> {
        let timeout = self.timeout;
        let read = async {
            let mut head = [0u8; 8];
            self.stream.read_exact(&mut head).await?;
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let mut body = vec![0u8; len.saturating_sub(8)];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>((head, len, body))
        };
        let (head, len, body) = match tokio::time::timeout(timeout, read).await {
            Ok(Ok(m)) => m,
            Ok(Err(source)) => {
                return Err(OpenFlowError::Io {
                    socket: self.socket.clone(),
                    source,
                });
            }
            Err(_) => return Err(self.timed_out()),
        };
        if len < 8 {
            return Err(self.malformed(format!("message of {len} bytes")));
        }
        // OVS's hello carries the highest version it allows: a lower one
        // than ours would be what the connection speaks. Its refusal of
        // ours (no common version) is the same error.
        let refused_version =
            head[1] == ERROR && body.get(..2) == Some(&OFPET_HELLO_FAILED.to_be_bytes()[..]);
        if (head[1] == HELLO && head[0] < VERSION) || refused_version {
            return Err(OpenFlowError::Version {
                socket: self.socket.clone(),
            });
        }
        let xid = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        Ok((head[1], xid, body))
    }

    fn refused(&self, body: &[u8], request: &'static str) -> Result<OpenFlowError, OpenFlowError> {
        match body {
            [k0, k1, c0, c1, ..] => Ok(OpenFlowError::Refused {
                socket: self.socket.clone(),
                request,
                kind: u16::from_be_bytes([*k0, *k1]),
                code: u16::from_be_bytes([*c0, *c1]),
            }),
            _ => Err(self.malformed("short error message".into())),
        }
    }

    fn malformed(&self, what: String) -> OpenFlowError {
        OpenFlowError::Malformed {
            socket: self.socket.clone(),
            what,
        }
    }

    fn timed_out(&self) -> OpenFlowError {
        OpenFlowError::Timeout {
            socket: self.socket.clone(),
            timeout: self.timeout,
        }
    }
}

fn header(out: &mut Vec<u8>, kind: u8, len: usize, xid: u32) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&xid.to_be_bytes());
}

fn control(out: &mut Vec<u8>, xid: u32, bundle_id: u32, kind: u16) {
    header(out, BUNDLE_CONTROL, 16, xid);
    out.extend_from_slice(&bundle_id.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(BUNDLE_ATOMIC | BUNDLE_ORDERED).to_be_bytes());
}

impl FlowMod {
    /// The whole OFPT_FLOW_MOD message.
    fn encode(&self, xid: u32) -> Vec<u8> {
        let (command, table, cookie, cookie_mask, priority, fields, action) = match self {
            FlowMod::Add {
                cookie,
                priority,
                fields,
                action,
            } => (OFPFC_ADD, 0, *cookie, 0, *priority, fields, Some(*action)),
            FlowMod::Delete {
                cookie,
                cookie_mask,
                fields,
            } => (
                OFPFC_DELETE,
                OFPTT_ALL,
                *cookie,
                *cookie_mask,
                0,
                fields,
                None,
            ),
        };
        let mut body = Vec::with_capacity(128);
        body.extend_from_slice(&cookie.to_be_bytes());
        body.extend_from_slice(&cookie_mask.to_be_bytes());
        body.push(table);
        body.push(command);
        body.extend_from_slice(&0u16.to_be_bytes()); // idle timeout
        body.extend_from_slice(&0u16.to_be_bytes()); // hard timeout
        body.extend_from_slice(&priority.to_be_bytes());
        body.extend_from_slice(&NO_BUFFER.to_be_bytes());
        body.extend_from_slice(&OFPP_ANY.to_be_bytes());
        body.extend_from_slice(&OFPG_ANY.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes()); // flags
        body.extend_from_slice(&0u16.to_be_bytes()); // importance
        encode_match(&mut body, fields);
        if action == Some(Action::Normal) {
            body.extend_from_slice(&OFPIT_APPLY_ACTIONS.to_be_bytes());
            body.extend_from_slice(&24u16.to_be_bytes());
            body.extend_from_slice(&[0; 4]);
            output_action(&mut body, OFPP_NORMAL);
        }
        let mut out = Vec::with_capacity(8 + body.len());
        header(&mut out, FLOW_MOD, 8 + body.len(), xid);
        out.extend_from_slice(&body);
        out
    }
}

/// OXM field numbers of the OpenFlow basic class.
mod oxm {
    pub const IN_PORT: u8 = 0;
    pub const ETH_SRC: u8 = 4;
    pub const ETH_TYPE: u8 = 5;
    pub const IP_PROTO: u8 = 10;
    pub const IPV4_SRC: u8 = 11;
    pub const UDP_SRC: u8 = 15;
    pub const ARP_SPA: u8 = 22;
    pub const ARP_SHA: u8 = 24;
    pub const IPV6_SRC: u8 = 26;
    pub const ICMPV6_TYPE: u8 = 29;
    pub const IPV6_ND_TARGET: u8 = 31;
}

/// An `ofp_match` of OXM type, its prerequisites (ethernet type, IP
/// protocol) before the fields that need them, padded to 8 bytes.
fn encode_match(out: &mut Vec<u8>, fields: &[Field]) {
    let mut tlvs = Vec::new();
    let mut put = |field: u8, value: &[u8], mask: Option<&[u8]>| {
        let len = value.len() * if mask.is_some() { 2 } else { 1 };
        let head = (0x8000u32 << 16)
            | (u32::from(field) << 9)
            | (u32::from(mask.is_some()) << 8)
            | u32::try_from(len).unwrap_or(0);
        tlvs.extend_from_slice(&head.to_be_bytes());
        tlvs.extend_from_slice(value);
        if let Some(m) = mask {
            tlvs.extend_from_slice(m);
        }
    };
    let v4 = |n: &Ipv4Network| {
        let mask = (n.prefix() < 32).then(|| n.mask().octets());
        (n.network().octets(), mask)
    };
    let v6 = |n: &Ipv6Network| {
        let mask = (n.prefix() < 128).then(|| n.mask().octets());
        (n.network().octets(), mask)
    };
    // Fields in the order of their prerequisites.
    let rank = |f: &Field| match f {
        Field::InPort(_) => 0,
        Field::EthSrc(_) => 1,
        Field::Arp | Field::Ip | Field::Ipv6 => 2,
        Field::Icmpv6Type(_) | Field::UdpSrc(_) => 3,
        _ => 4,
    };
    let mut sorted: Vec<&Field> = fields.iter().collect();
    sorted.sort_by_key(|f| rank(f));
    for f in sorted {
        match f {
            Field::InPort(p) => put(oxm::IN_PORT, &p.to_be_bytes(), None),
            Field::EthSrc(m) => put(oxm::ETH_SRC, &m.octets(), None),
            Field::Arp => put(oxm::ETH_TYPE, &ETH_TYPE_ARP.to_be_bytes(), None),
            Field::Ip => put(oxm::ETH_TYPE, &ETH_TYPE_IP.to_be_bytes(), None),
            Field::Ipv6 => put(oxm::ETH_TYPE, &ETH_TYPE_IPV6.to_be_bytes(), None),
            Field::Icmpv6Type(t) => {
                put(oxm::IP_PROTO, &[IP_PROTO_ICMPV6], None);
                put(oxm::ICMPV6_TYPE, &[*t], None);
            }
            Field::UdpSrc(p) => {
                put(oxm::IP_PROTO, &[IP_PROTO_UDP], None);
                put(oxm::UDP_SRC, &p.to_be_bytes(), None);
            }
            Field::ArpSha(m) => put(oxm::ARP_SHA, &m.octets(), None),
            Field::ArpSpa(n) => {
                let (v, m) = v4(n);
                put(oxm::ARP_SPA, &v, m.as_ref().map(|m| &m[..]));
            }
            Field::Ipv4Src(n) => {
                let (v, m) = v4(n);
                put(oxm::IPV4_SRC, &v, m.as_ref().map(|m| &m[..]));
            }
            Field::Ipv6Src(n) => {
                let (v, m) = v6(n);
                put(oxm::IPV6_SRC, &v, m.as_ref().map(|m| &m[..]));
            }
            Field::NdTarget(n) => {
                let (v, m) = v6(n);
                put(oxm::IPV6_ND_TARGET, &v, m.as_ref().map(|m| &m[..]));
            }
        }
    }
    let len = 4 + tlvs.len();
    out.extend_from_slice(&1u16.to_be_bytes()); // OFPMT_OXM
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&tlvs);
    out.resize(out.len() + (8 - len % 8) % 8, 0);
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v4 = |n: &Ipv4Network| {
            if n.prefix() == 32 {
                n.ip().to_string()
            } else {
                n.to_string()
            }
        };
        let v6 = |n: &Ipv6Network| {
            if n.prefix() == 128 {
                n.ip().to_string()
            } else {
                n.to_string()
            }
        };
        match self {
            Field::InPort(p) => write!(f, "in_port={p}"),
            Field::EthSrc(m) => write!(f, "dl_src={m}"),
            Field::Arp => f.write_str("arp"),
            Field::Ip => f.write_str("ip"),
            Field::Ipv6 => f.write_str("ipv6"),
            Field::Icmpv6Type(t) => write!(f, "icmp6,icmp_type={t}"),
            Field::UdpSrc(p) => write!(f, "nw_proto=17,tp_src={p}"),
            Field::ArpSha(m) => write!(f, "arp_sha={m}"),
            Field::ArpSpa(n) => write!(f, "arp_spa={}", v4(n)),
            Field::Ipv4Src(n) => write!(f, "nw_src={}", v4(n)),
            Field::Ipv6Src(n) => write!(f, "ipv6_src={}", v6(n)),
            Field::NdTarget(n) => write!(f, "nd_target={}", v6(n)),
        }
    }
}

/// The line `ovs-ofctl add-flows` reads for the same flow mod.
impl fmt::Display for FlowMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, fields) = match self {
            FlowMod::Add {
                cookie,
                priority,
                fields,
                ..
            } => (
                format!("add cookie={cookie:#x},table=0,priority={priority}"),
                fields,
            ),
            FlowMod::Delete {
                cookie,
                cookie_mask,
                fields,
            } => {
                let mask = if *cookie_mask == u64::MAX {
                    "-1".to_string()
                } else {
                    format!("{cookie_mask:#x}")
                };
                (format!("delete cookie={cookie:#x}/{mask}"), fields)
            }
        };
        f.write_str(&head)?;
        for field in fields {
            write!(f, ",{field}")?;
        }
        match self {
            FlowMod::Add {
                action: Action::Normal,
                ..
            } => f.write_str(",actions=NORMAL"),
            FlowMod::Add {
                action: Action::Drop,
                ..
            } => f.write_str(",actions=drop"),
            FlowMod::Delete { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_mod_is_padded_and_carries_its_length() {
        let m = FlowMod::Add {
            cookie: 0xd0c5_0000_0000_0001,
            priority: 100,
            fields: vec![
                Field::Ipv4Src("10.0.0.0/24".parse().unwrap()),
                Field::InPort(7),
                Field::Ip,
            ],
            action: Action::Normal,
        };
        let bytes = m.encode(9);
        assert_eq!(bytes[0], VERSION);
        assert_eq!(bytes[1], FLOW_MOD);
        assert_eq!(
            usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            bytes.len()
        );
        assert_eq!(bytes.len() % 8, 0);
        // The match: in_port, then eth_type before nw_src, which needs it.
        let oxm = &bytes[48 + 4..];
        assert_eq!(&oxm[..4], &[0x80, 0x00, 0x00, 0x04]);
        assert_eq!(&oxm[8..12], &[0x80, 0x00, 0x0a, 0x02]);
        assert_eq!(&oxm[14..18], &[0x80, 0x00, 0x17, 0x08]);
        assert_eq!(&oxm[18..26], &[10, 0, 0, 0, 255, 255, 255, 0]);
        assert_eq!(
            m.to_string(),
            "add cookie=0xd0c5000000000001,table=0,priority=100,nw_src=10.0.0.0/24,in_port=7,ip,actions=NORMAL"
        );
    }

    #[test]
    fn a_drop_has_no_instructions_and_a_delete_spans_every_table() {
        let drop = FlowMod::Add {
            cookie: 1,
            priority: 90,
            fields: vec![Field::InPort(3)],
            action: Action::Drop,
        }
        .encode(1);
        // Header, fixed part, an 8-byte OXM match padded to 16: nothing more.
        assert_eq!(drop.len(), 48 + 16);
        let delete = FlowMod::Delete {
            cookie: 1,
            cookie_mask: u64::MAX,
            fields: vec![],
        };
        let bytes = delete.encode(1);
        assert_eq!(bytes[24], OFPTT_ALL);
        assert_eq!(bytes[25], OFPFC_DELETE);
        assert_eq!(delete.to_string(), "delete cookie=0x1/-1");
    }
}
