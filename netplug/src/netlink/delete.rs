//! Deleting a link without waiting out the kernel's RCU barrier: the
//! request sent by a thread or a process of its own, and the return on the
//! notification that the link is unlisted.

use std::os::fd::AsRawFd;
use std::time::Duration;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;

/// How long [`super::Netlink::del_link`] waits for the kernel at the most.
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
pub(super) fn delete_link_until_unlisted(index: u32, deleter: Deleter) -> std::io::Result<()> {
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
