//! Network interfaces (enough to bring loopback up in a new namespace) and
//! the TCP connect std does not offer: one that does not wait.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::check_int;

/// Sets the `IFF_UP` flag on interface `name` (e.g. "lo").
pub fn interface_up(name: &str) -> io::Result<()> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain integer arguments; a new descriptor on success.
    let sock = check_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: an all-zero ifreq is a valid request structure.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`.
    check_int(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: the union member written by SIOCGIFFLAGS is ifru_flags.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`.
    check_int(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

/// A TCP socket (non-blocking, close-on-exec) whose connection to `addr` has
/// begun: done or under way (`EINPROGRESS`). Its outcome is the socket's
/// `SO_ERROR` once it is writable (`TcpStream::take_error`).
pub fn connect_tcp_nonblocking(addr: std::net::SocketAddrV4) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; a new descriptor on success.
    let sock = check_int(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a complete sockaddr_in and its size is passed.
    let done = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            std::ptr::addr_of!(sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if done == -1 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
    }
    Ok(sock)
}
