//! A thin verb layer over rtnetlink: links, addresses and routes in one
//! network namespace (the one the socket was opened in).

use std::fs::File;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteScope};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use crate::netns::{NetnsError, run_in_netns};

mod delete;
mod family;

pub use delete::Deleter;
use delete::delete_link_until_unlisted;
pub use family::Family;

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

    /// A link's addresses of family `A`, as [`Netlink::addrs`], read as
    /// the kernel sends them and at most `cap` kept, those in `first` ahead
    /// of the others; with how many it has in all. A container may give
    /// its link any number of addresses: none of them is held in memory
    /// beyond the cap.
    pub async fn addrs_capped<A: Family + PartialEq>(
        &self,
        index: u32,
        first: &[A],
        cap: usize,
    ) -> Result<(Vec<(A, u8)>, usize)> {
        let (mut kept, mut others, mut total) = (Vec::new(), Vec::new(), 0usize);
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_for_each(|msg| {
                if msg.header.index == index {
                    for attr in &msg.attributes {
                        if let AddressAttribute::Address(ip) = attr
                            && let Some(a) = A::plug_address(ip)
                        {
                            total += 1;
                            let to = if first.contains(&a) {
                                &mut kept
                            } else {
                                &mut others
                            };
                            if to.len() < cap {
                                to.push((a, msg.header.prefix_len));
                            }
                        }
                    }
                }
                futures::future::ready(Ok(()))
            })
            .await
            .map_err(request("list addresses"))?;
        kept.extend(others);
        kept.truncate(cap);
        Ok((kept, total))
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
