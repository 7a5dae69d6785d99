//! A thin verb layer over rtnetlink: links, addresses and routes in one
//! network namespace (the one the socket was opened in).

use std::fmt;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netns::{NetnsError, run_in_netns};

/// How long [`Netlink::del_link`] waits for the kernel at the most.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// `RTMGRP_LINK`: the multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;

/// Who sends a link's RTM_DELLINK and waits for the kernel's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleter {
    /// A thread of this process: the process cannot exit before the
    /// kernel has answered.
    Thread,
    /// A process of its own, which outlives this one if need be: for a
    /// process that exits right after (see `Plugger::short_lived`).
    Child,
}

/// Deletes link `index` of the calling thread's namespace and returns once
/// the kernel has unlisted it (or refused).
///
/// The kernel unlists a deleted link at once but answers the request only
/// after an RCU barrier, ~10–20 ms later on the project's VMs, and the
/// request blocks its sender all that time. So `deleter` sends it, and this
/// thread returns on the RTM_DELLINK notification the kernel sends as it
/// unlists the link, or on the kernel's answer, whichever comes first. The
/// name is free again from then on, which is all a re-plug needs.
fn delete_link_until_unlisted(index: u32, deleter: Deleter) -> std::io::Result<()> {
    use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    // Subscribed before the request, so the notification cannot be missed.
    let mut watch = Socket::new(NETLINK_ROUTE)?;
    watch.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    let request = dellink_request(index);
    let mut answer: Box<dyn FnMut() -> Option<std::io::Result<()>>> = match deleter {
        Deleter::Thread => {
            let (tx, rx) = std::sync::mpsc::channel();
            // A thread spawned here is in this thread's namespace too.
            std::thread::Builder::new()
                .name("netplug-dellink".into())
                .spawn(move || {
                    let _ = tx.send(delete_link_blocking(&request));
                })?;
            Box::new(move || match rx.try_recv() {
                Ok(answer) => Some(answer),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => Some(Err(
                    std::io::Error::other("the deleting thread ended unanswered"),
                )),
                Err(std::sync::mpsc::TryRecvError::Empty) => None,
            })
        }
        Deleter::Child => {
            let (pipe, pid) = spawn_deleting_process(&request)?;
            Box::new(move || {
                let answer = read_answer(&pipe);
                if answer.is_some() {
                    // Answered, so about to exit, or gone: reaped if gone.
                    // SAFETY: our own child's pid; no status wanted.
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                }
                answer
            })
        }
    };
    let deadline = std::time::Instant::now() + DELETE_TIMEOUT;
    let mut watching = true;
    loop {
        if let Some(answer) = answer() {
            return answer;
        }
        if std::time::Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the kernel did not delete link #{index} within {DELETE_TIMEOUT:?}"),
            ));
        }
        if !watching {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut pfd = libc::pollfd {
            fd: watch.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd that lives across the call.
        if unsafe { libc::poll(&raw mut pfd, 1, 1) } <= 0 {
            continue;
        }
        match watch.recv_from_full() {
            Ok((data, _)) if announces_deletion(&data, index) => return Ok(()),
            Ok(_) => {}
            // ENOBUFS: notifications were lost, perhaps ours; the kernel's
            // answer to the request still tells.
            Err(_) => watching = false,
        }
    }
}

/// True when the netlink messages in `data` include RTM_DELLINK of `index`.
fn announces_deletion(data: &[u8], index: u32) -> bool {
    let mut offset = 0;
    while offset < data.len() {
        let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]) else {
            return false;
        };
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) = &msg.payload
            && link.header.index == index
        {
            return true;
        }
        let len = msg.header.length as usize;
        if len == 0 {
            return false;
        }
        // Messages are aligned to 4 bytes.
        offset += (len + 3) & !3;
    }
    false
}

/// RTM_DELLINK of `index`, asking for an answer, as bytes.
fn dellink_request(index: u32) -> Vec<u8> {
    let mut link = LinkMessage::default();
    link.header.index = index;
    let mut msg = NetlinkMessage::from(RouteNetlinkMessage::DelLink(link));
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Sends `request` on a fresh socket of the calling thread's namespace
/// and waits for the kernel's answer.
fn delete_link_blocking(request: &[u8]) -> std::io::Result<()> {
    use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    let socket = Socket::new(NETLINK_ROUTE)?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(request, 0)?;
    loop {
        let (data, _) = socket.recv_from_full()?;
        let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if let NetlinkPayload::Error(e) = reply.payload {
            return match e.code {
                None => Ok(()),
                Some(_) => Err(e.to_io()),
            };
        }
    }
}

/// Starts a process, in the calling thread's namespace, that sends
/// `request` and writes the kernel's answer (an errno, 0 for done, as 4
/// bytes) to the pipe whose reading end this returns, with its pid.
///
/// One fork, not the double fork that would hand it to init at once: that
/// costs a second fork and a wait, ~0.3 ms of every delete. It is reaped
/// once its answer is read, when that comes first (see
/// `delete_link_until_unlisted`); otherwise it is a zombie until this
/// process, which exits right after (see `Plugger::short_lived`), is gone,
/// when init inherits and reaps it.
fn spawn_deleting_process(request: &[u8]) -> std::io::Result<(std::os::fd::OwnedFd, libc::pid_t)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds is an array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are open descriptors that nothing
    // else owns.
    let (read, write) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: from fork to _exit, the child calls only async-signal-safe
    // functions (close_range, socket, send, recv, write, _exit) on memory
    // made before the fork: nothing allocates or takes a lock that another
    // thread of this process might have held at the fork.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {
            // SAFETY: as above.
            unsafe {
                // Every descriptor but the pipe's goes: whoever reads this
                // process's output, or waits on one of its sockets, is not
                // to wait for the deleter as well.
                let keep = u32::try_from(write.as_raw_fd()).unwrap_or(0);
                if keep > 0 {
                    libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
                }
                libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
                let code: i32 = dellink_in_this_process(request);
                libc::write(write.as_raw_fd(), (&raw const code).cast(), 4);
                libc::_exit(0);
            }
        }
        _ => {}
    }
    drop(write);
    Ok((read, pid))
}

/// In the deleting process: sends `request` and returns the kernel's
/// answer as an errno (0: done). Async-signal-safe: see
/// `spawn_deleting_process`.
fn dellink_in_this_process(request: &[u8]) -> i32 {
    let errno = || {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: plain system calls on a descriptor opened here and on
    // buffers that live across each call; unconnected, a netlink socket
    // sends to the kernel.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return errno();
        }
        if libc::send(fd, request.as_ptr().cast(), request.len(), 0) < 0 {
            return errno();
        }
        let mut buf = [0u8; 1024];
        loop {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return errno();
            }
            // struct nlmsghdr (16 bytes), then struct nlmsgerr's error.
            let kind = u16::from_ne_bytes([buf[4], buf[5]]);
            if n >= 20 && i32::from(kind) == libc::NLMSG_ERROR {
                return -i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            }
        }
    }
}

/// The deleting process's answer on `pipe`, once there is one.
fn read_answer(pipe: &std::os::fd::OwnedFd) -> Option<std::io::Result<()>> {
    let mut code = [0u8; 4];
    // SAFETY: reads at most 4 bytes into a 4-byte buffer.
    let n = unsafe { libc::read(pipe.as_raw_fd(), code.as_mut_ptr().cast(), 4) };
    match n {
        4 => match i32::from_ne_bytes(code) {
            0 => Some(Ok(())),
            errno => Some(Err(std::io::Error::from_raw_os_error(errno))),
        },
        // Closed unwritten: the process died before the kernel answered.
        0 => Some(Err(std::io::Error::other(
            "the deleting process ended unanswered",
        ))),
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) => None,
        _ => Some(Err(std::io::Error::last_os_error())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{op}: {source}")]
    Request {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{op}: {source}")]
    Os {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request {
                source: rtnetlink::Error::NetlinkError(msg),
                ..
            } => msg.code.map(|c| -c.get()),
            NetlinkError::Os { source, .. } | NetlinkError::Socket(source) => source.raw_os_error(),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

fn request(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let op = op.into();
    move |source| NetlinkError::Request { op, source }
}

/// What a link is, as far as plugging cares.
#[derive(Debug, Clone)]
pub struct LinkInfoSummary {
    pub index: u32,
    pub name: String,
    pub kind: Option<InfoKind>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: bool,
    /// For a veth: the peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// The bridge this link is a port of (Linux bridges only).
    pub controller: Option<u32>,
    /// `ip link set DEV alias ...`: netplug records a plug's owner there.
    pub alias: Option<String>,
}

impl LinkInfoSummary {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut s = LinkInfoSummary {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            peer_index: None,
            controller: None,
            alias: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => s.name = n.clone(),
                LinkAttribute::Mtu(m) => s.mtu = Some(*m),
                LinkAttribute::Link(i) => s.peer_index = Some(*i),
                LinkAttribute::Controller(i) => s.controller = Some(*i),
                LinkAttribute::IfAlias(a) => s.alias = Some(a.clone()),
                LinkAttribute::Address(a) if a.len() == 6 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(a);
                    s.mac = Some(mac);
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            s.kind = Some(k.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// A netlink connection bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
    /// The namespace itself, for requests sent from helper threads.
    netns: File,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// A connection in the caller's own namespace.
    pub fn current() -> Result<Self> {
        let netns = File::open("/proc/thread-self/ns/net").map_err(NetlinkError::Socket)?;
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(conn);
        Ok(Netlink {
            handle,
            task,
            netns,
        })
    }

    /// A connection whose socket lives in `netns`.
    pub async fn in_netns(netns: &File) -> Result<Self> {
        let (conn, handle, _) = run_in_netns(netns, rtnetlink::new_connection)
            .await?
            .map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(conn);
        Ok(Netlink {
            handle,
            task,
            netns: netns.try_clone().map_err(NetlinkError::Socket)?,
        })
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkInfoSummary>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(LinkInfoSummary::from_message(&msg))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(request(format!("get link {name}"))(e)),
        }
    }

    pub async fn link_by_index(&self, index: u32) -> Result<Option<LinkInfoSummary>> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(LinkInfoSummary::from_message(&msg))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(request(format!("get link #{index}"))(e)),
        }
    }

    /// Creates a veth pair whose peer is born inside `netns`, already named,
    /// addressed and sized. Moving a link between namespaces afterwards
    /// costs an RCU grace period (~18 ms on the project's VMs) where
    /// creating it there costs ~1.5 ms; and a name clash inside the
    /// container fails here, before anything exists.
    pub async fn create_veth_into(
        &self,
        name: &str,
        peer: &str,
        netns: &File,
        peer_mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<()> {
        // One queue each way for both ends, asked for: that is what a
        // veth gets anyway, but cut down from one per CPU after it is
        // registered, which waits for an RCU grace period per end (~0.5 ms
        // each here, more when the host is busy).
        let queues = [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)];
        let mut msg = LinkVeth::new(name, peer).build();
        msg.attributes.extend(queues.clone());
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        for attr in &mut msg.attributes {
            let LinkAttribute::LinkInfo(infos) = attr else {
                continue;
            };
            for info in infos {
                if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = info {
                    p.attributes.extend(queues.clone());
                    p.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
                    p.attributes.push(LinkAttribute::Address(peer_mac.to_vec()));
                    if let Some(mtu) = mtu {
                        p.attributes.push(LinkAttribute::Mtu(mtu));
                    }
                }
            }
        }
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(request(format!(
                "create veth {name} with peer {peer} in the container"
            )))
    }

    /// Sends one RTM_SETLINK, `what` naming it in an error.
    async fn set_link(&self, msg: LinkMessage, what: &'static str) -> Result<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(request(what))
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.set_link(msg, "set link up").await
    }

    /// Sets the link down.
    pub async fn set_down(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).down().build();
        self.set_link(msg, "set link down").await
    }

    /// Sets the link up and its alias, in one request.
    pub async fn set_up_with_alias(&self, index: u32, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().alias(alias).build();
        self.set_link(msg, "set link up with its alias").await
    }

    /// Makes the link a port of a Linux bridge.
    pub async fn set_controller(&self, index: u32, bridge_index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .controller(bridge_index)
            .build();
        self.set_link(msg, "attach to Linux bridge").await
    }

    /// Deletes a link and returns once it is gone from the namespace (a
    /// veth's peer goes with it, wherever it is); see
    /// `delete_link_until_unlisted` in this module.
    pub async fn del_link(&self, index: u32) -> Result<()> {
        self.del_link_by(index, Deleter::Thread).await
    }

    /// [`Netlink::del_link`], the kernel's answer awaited by `deleter`.
    pub async fn del_link_by(&self, index: u32, deleter: Deleter) -> Result<()> {
        let op = format!("delete link #{index}");
        run_in_netns(&self.netns, move || {
            delete_link_until_unlisted(index, deleter)
        })
        .await?
        .map_err(|source| NetlinkError::Os { op, source })
    }

    /// Adds `addr/prefix_len` to a link, as [`Family::prepare_address`]
    /// asks for the family.
    pub async fn add_addr<A: Family>(&self, index: u32, addr: A, prefix_len: u8) -> Result<()> {
        let mut req = self.handle.address().add(index, addr.into(), prefix_len);
        A::prepare_address(req.message_mut());
        req.execute()
            .await
            .map_err(request(format!("add address {addr}/{prefix_len}")))
    }

    /// A link's addresses of family `A` that a plug deals in (see
    /// [`Family::plug_address`]), with their prefix lengths.
    pub async fn addrs<A: Family>(&self, index: u32) -> Result<Vec<(A, u8)>> {
        Ok(self
            .addresses::<A>(Some(index))
            .await?
            .into_iter()
            .map(|(_, a, len)| (a, len))
            .collect())
    }

    /// Every address of family `A` in the namespace (see
    /// [`Family::plug_address`]), as `(ifindex, address, prefix)`.
    pub async fn all_addrs<A: Family>(&self) -> Result<Vec<(u32, A, u8)>> {
        self.addresses(None).await
    }

    /// The addresses of family `A` on link `index`, or on every link.
    async fn addresses<A: Family>(&self, index: Option<u32>) -> Result<Vec<(u32, A, u8)>> {
        let mut get = self.handle.address().get();
        if let Some(index) = index {
            get = get.set_link_index_filter(index);
        }
        let msgs: Vec<_> = get
            .execute()
            .try_collect()
            .await
            .map_err(request("list addresses"))?;
        let mut out = Vec::new();
        for msg in msgs {
            if index.is_some_and(|i| msg.header.index != i) {
                continue;
            }
            for attr in &msg.attributes {
                if let AddressAttribute::Address(ip) = attr
                    && let Some(a) = A::plug_address(ip)
                {
                    out.push((msg.header.index, a, msg.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// A link-scope route to one host, for a gateway outside the subnet.
    pub async fn add_link_route<A: Family>(&self, index: u32, dest: A) -> Result<()> {
        let route = A::host_route(dest)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(request(format!("add link route to {dest}")))
    }

    /// The default route of `gateway`'s family through it.
    pub async fn add_default_route<A: Family>(&self, index: u32, gateway: A) -> Result<()> {
        let route = A::default_route(gateway).output_interface(index).build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(request(format!("add default route via {gateway}")))
    }

    /// The gateway of family `A`'s default route, if any.
    pub async fn default_gateway<A: Family>(&self) -> Result<Option<A>> {
        let filter = A::routes().build();
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(filter)
            .execute()
            .try_collect()
            .await
            .map_err(request("list routes"))?;
        for r in routes {
            if r.header.destination_prefix_length != 0 {
                continue;
            }
            for attr in &r.attributes {
                if let RouteAttribute::Gateway(gw) = attr
                    && let Some(gw) = A::route_address(gw)
                {
                    return Ok(Some(gw));
                }
            }
        }
        Ok(None)
    }
}

/// An address family, by its address type ([`Ipv4Addr`] or [`Ipv6Addr`]):
/// what the verbs on addresses and routes need to know of it, so that one
/// verb serves both.
pub trait Family: Copy + fmt::Display + Into<IpAddr> + Send + Sync + 'static {
    /// The address in `ip`, when it is of this family and one a plug deals
    /// in: IPv6's link-local addresses, which the kernel gives every link
    /// itself, are not.
    fn plug_address(ip: &IpAddr) -> Option<Self>;
    /// The address in a route's attribute, when it is of this family.
    fn route_address(addr: &RouteAddress) -> Option<Self>;
    /// A route of this family, to filter a dump of routes with.
    fn routes() -> RouteMessageBuilder<Self>;
    /// The route to `dest` alone.
    fn host_route(dest: Self) -> RouteMessageBuilder<Self>;
    /// The default route through `gateway`.
    fn default_route(gateway: Self) -> RouteMessageBuilder<Self>;
    /// Adjusts the request that adds an address.
    fn prepare_address(_msg: &mut AddressMessage) {}
}

impl Family for Ipv4Addr {
    fn plug_address(ip: &IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        }
    }

    fn route_address(addr: &RouteAddress) -> Option<Self> {
        match addr {
            RouteAddress::Inet(a) => Some(*a),
            _ => None,
        }
    }

    fn routes() -> RouteMessageBuilder<Self> {
        RouteMessageBuilder::<Ipv4Addr>::new()
    }

    fn host_route(dest: Self) -> RouteMessageBuilder<Self> {
        Self::routes().destination_prefix(dest, 32)
    }

    fn default_route(gateway: Self) -> RouteMessageBuilder<Self> {
        Self::routes().gateway(gateway)
    }
}

impl Family for Ipv6Addr {
    fn plug_address(ip: &IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) if (a.segments()[0] & 0xffc0) != 0xfe80 => Some(*a),
            _ => None,
        }
    }

    fn route_address(addr: &RouteAddress) -> Option<Self> {
        match addr {
            RouteAddress::Inet6(a) => Some(*a),
            _ => None,
        }
    }

    fn routes() -> RouteMessageBuilder<Self> {
        RouteMessageBuilder::<Ipv6Addr>::new()
    }

    fn host_route(dest: Self) -> RouteMessageBuilder<Self> {
        Self::routes().destination_prefix(dest, 128)
    }

    fn default_route(gateway: Self) -> RouteMessageBuilder<Self> {
        Self::routes().gateway(gateway)
    }

    /// Without Duplicate Address Detection (`nodad`): the address is usable
    /// at once, not tentative for a second; the plug probes for it
    /// beforehand instead.
    fn prepare_address(msg: &mut AddressMessage) {
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
}
