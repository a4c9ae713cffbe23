//! A connected pair of message sockets, which may carry one descriptor per
//! message (`SCM_RIGHTS`): the supervisor's control channel to an instance.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check_int;

/// Creates a connected `SOCK_SEQPACKET` pair (message boundaries kept,
/// ordered, reliable), both ends close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one message, with `fd` attached when given.
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    send_fds(sock, data, fd.as_slice())
}

/// Receives one message into `buf`: its length (0 at end of stream) and the
/// descriptor it carried, if any. Extra descriptors are closed.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let (n, fds) = recv_fds(sock, buf)?;
    Ok((n, fds.into_iter().next()))
}

/// Waits for the next message of a message socket and returns its length,
/// leaving it queued (0: end of stream, or an empty message).
pub fn next_message_len(sock: BorrowedFd<'_>) -> io::Result<usize> {
    loop {
        // SAFETY: a zero-length buffer, which the kernel writes nothing to;
        // MSG_PEEK leaves the message queued and MSG_TRUNC makes the call
        // return its whole length.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Receives the next message of a message socket in a buffer of its own
/// size (a message longer than `max` is cut to `max + 1` bytes, for the
/// caller to refuse), with the descriptors it carried; empty at end of
/// stream. For a process that waits long for a message that may be large:
/// no buffer of the largest size is written (and so kept resident) ahead.
pub fn recv_sized(sock: BorrowedFd<'_>, max: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let len = next_message_len(sock)?;
    let mut buf = vec![0u8; len.min(max.saturating_add(1)).max(1)];
    let (n, fds) = recv_fds(sock, &mut buf)?;
    buf.truncate(n);
    Ok((buf, fds))
}

/// Who is at the other end of a connected Unix socket,/// Who is at the other end of a connected Unix socket, as the kernel
/// recorded it when the connection was made (for a client, when the
/// listener called `listen`): pid in the caller's pid namespace (0 when it
/// is not visible there), and uid and gid in the caller's user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// The peer's credentials (`SO_PEERCRED`).
pub fn peer_credentials(sock: BorrowedFd<'_>) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes at most `len` bytes of a `struct ucred` to
    // `cred`, which is that struct, alive and writable for the call.
    check_int(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCredentials {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `SO_PEERPIDFD` (Linux 6.5), x86_64's value: not exported by libc here.
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd of the process [`peer_credentials`] names, taken from the
/// socket itself (`SO_PEERPIDFD`, Linux 6.5): it names that very process
/// even if its pid has since been freed and reused, which a pidfd opened
/// by number cannot promise. Fails with ENOPROTOOPT on older kernels, and
/// (before 6.16) when that process is gone.
pub fn peer_pidfd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_PEERPIDFD writes at most `len` bytes (one int) to `fd`,
    // alive and writable for the call.
    check_int(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    if fd < 0 || len as usize != std::mem::size_of::<libc::c_int>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: on success the kernel installed a new descriptor, owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// Room for [`MAX_FDS`] descriptors: `CMSG_SPACE(253 * sizeof(int))`.
const CMSG_SPACE_MAX_FDS: usize = 16 + ((MAX_FDS * 4 + 7) & !7);

#[repr(C, align(8))]
struct ManyFdsBuffer([u8; CMSG_SPACE_MAX_FDS]);

/// Sends one message with every descriptor of `fds` attached (at most
/// [`MAX_FDS`]), on a message or stream socket.
pub fn send_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cmsg_buf = ManyFdsBuffer([0; CMSG_SPACE_MAX_FDS]);
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: an all-zero msghdr is valid (null name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
        // SAFETY: msg_control points to an 8-aligned buffer of
        // CMSG_SPACE(MAX_FDS ints) bytes, at least CMSG_SPACE(payload) since
        // fds.len() <= MAX_FDS: CMSG_FIRSTHDR is non-null and its data has
        // room for every int written.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
            let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
            for (i, fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: `msg` and everything it points to live across the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            // A stream socket may take part of the data: send the rest
            // (the descriptors went with the first part).
            let sent = n as usize;
            return match data.get(sent..) {
                Some(rest) if !rest.is_empty() => send_fds(sock, rest, &[]),
                _ => Ok(()),
            };
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Receives one message into `buf`: its length (0 at end of stream) and
/// every descriptor it carried (close-on-exec), up to [`MAX_FDS`].
pub fn recv_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg_buf = ManyFdsBuffer([0; CMSG_SPACE_MAX_FDS]);
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_SPACE_MAX_FDS;
    let n = loop {
        // SAFETY: `msg` points to our buffers, alive across the call;
        // MSG_CMSG_CLOEXEC makes received descriptors close-on-exec.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    };
    let mut received = Vec::new();
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG macros
    // walk only within them, and SCM_RIGHTS data holds whole ints, each a
    // descriptor now ours.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len - header) / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    received.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, received))
}

/// Connects `sock` to the address given as the bytes of a `struct
/// sockaddr_*` (at most `sockaddr_storage`'s 128 bytes; longer is EINVAL,
/// as the kernel says).
/// `sendmsg` of one buffer, to `address` (raw `sockaddr` bytes, at most
/// `sizeof(struct sockaddr_storage)`) or to the connected peer, with
/// `control` (raw control messages, copied into an aligned buffer here)
/// and `flags`. Returns the bytes sent.
pub fn send_message(
    sock: BorrowedFd<'_>,
    data: &[u8],
    address: Option<&[u8]>,
    control: &[u8],
    flags: i32,
) -> io::Result<usize> {
    let mut storage: libc::sockaddr_storage = zeroed_storage();
    let address_len = address.map_or(0, <[u8]>::len);
    if address_len > std::mem::size_of::<libc::sockaddr_storage>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if let Some(address) = address {
        // SAFETY: `storage` is at least `address.len()` bytes (checked
        // above); both are plain bytes owned here and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                address.as_ptr(),
                (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
                address.len(),
            )
        };
    }
    // Control messages are read by the kernel as `struct cmsghdr`s, which
    // are 8-aligned: copied into words.
    let mut aligned = vec![0u64; control.len().div_ceil(8)];
    // SAFETY: `aligned` has at least `control.len()` bytes; both are plain
    // bytes owned here and do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(control.as_ptr(), aligned.as_mut_ptr().cast::<u8>(), control.len()) };
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if address.is_some() {
        msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = address_len as libc::socklen_t;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = aligned.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
    }
    // SAFETY: `msg` and everything it points to (the storage, the iovec
    // over `data`, the aligned control buffer) live across the call, and
    // each length is that of its buffer; the kernel only reads them.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

pub fn connect_raw(sock: BorrowedFd<'_>, address: &[u8]) -> io::Result<()> {
    let storage = storage_holding(address)?;
    // SAFETY: the kernel reads `address.len()` bytes of `storage`, which
    // holds at least that many initialized bytes.
    check_int(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            address.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds `sock` to `address` (raw `sockaddr` bytes, as a guest passed
/// them).
pub fn bind_raw(sock: BorrowedFd<'_>, address: &[u8]) -> io::Result<()> {
    let storage = storage_holding(address)?;
    // SAFETY: the kernel reads `address.len()` bytes of `storage`, which
    // holds at least that many initialized bytes.
    check_int(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            address.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A `sockaddr_storage` whose first bytes are `address` (raw `sockaddr`
/// bytes), for the kernel to read `address.len()` of.
fn storage_holding(address: &[u8]) -> io::Result<libc::sockaddr_storage> {
    let mut storage: libc::sockaddr_storage = zeroed_storage();
    if address.len() > std::mem::size_of::<libc::sockaddr_storage>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `storage` is at least `address.len()` bytes (checked above)
    // and both are plain bytes owned here; they do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            address.as_ptr(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            address.len(),
        )
    };
    Ok(storage)
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers and byte arrays, for which
    // all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// A socket's address family and type (`SO_DOMAIN`, `SO_TYPE`): ENOTSOCK
/// for any other descriptor.
pub fn family_and_type(sock: BorrowedFd<'_>) -> io::Result<(i32, i32)> {
    Ok((int_option(sock, libc::SO_DOMAIN)?, int_option(sock, libc::SO_TYPE)?))
}

/// A socket's pending error (`SO_ERROR`, which reading clears): how a
/// connect that was in progress ended (0: connected).
pub fn take_error(sock: BorrowedFd<'_>) -> io::Result<i32> {
    int_option(sock, libc::SO_ERROR)
}

/// A `SOL_SOCKET` option whose value is one int.
fn int_option(sock: BorrowedFd<'_>, option: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option writes at most `len` bytes (one int) to `value`,
    // alive and writable for the call.
    check_int(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// `SIOCGSKNS`: a descriptor of the network namespace a socket belongs to.
const SIOCGSKNS: libc::c_ulong = 0x894C;

/// The network namespace `sock` lives in (needs CAP_NET_ADMIN over it:
/// EPERM for a namespace the caller has no say over).
pub fn network_namespace(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor.
    let fd = check_int(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS as _, 0) })?;
    // SAFETY: a fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_message_is_received_in_a_buffer_of_its_size_with_its_descriptors() {
        let (a, b) = seqpacket_pair().unwrap();
        send(a.as_fd(), b"ten bytes!", Some(a.as_fd())).unwrap();
        send(a.as_fd(), &[7u8; 100], None).unwrap();
        assert_eq!(next_message_len(b.as_fd()).unwrap(), 10);
        let (buf, fds) = recv_sized(b.as_fd(), 64).unwrap();
        assert_eq!((buf.as_slice(), buf.capacity(), fds.len()), (&b"ten bytes!"[..], 10, 1));
        // (The descriptor it carried is `a`'s: closed, for the end below.)
        drop(fds);
        // Longer than the most asked for: cut to one byte more.
        let (buf, fds) = recv_sized(b.as_fd(), 50).unwrap();
        assert_eq!((buf.len(), fds.len()), (51, 0));
        drop(a);
        let (buf, fds) = recv_sized(b.as_fd(), 50).unwrap();
        assert!(buf.is_empty() && fds.is_empty());
    }
}
