//! Waiting on descriptors, and raw reads and writes on borrowed ones.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Interest and readiness bits for [`poll`].
pub mod ready {
    pub const IN: i16 = libc::POLLIN;
    pub const OUT: i16 = libc::POLLOUT;
    pub const HUP: i16 = libc::POLLHUP;
    pub const ERR: i16 = libc::POLLERR;
    pub const NVAL: i16 = libc::POLLNVAL;
}

/// One descriptor to watch.
#[derive(Debug, Clone, Copy)]
pub struct Watch<'fd> {
    pub fd: BorrowedFd<'fd>,
    pub interest: i16,
    /// Filled in by [`poll`].
    pub ready: i16,
}

impl<'fd> Watch<'fd> {
    pub fn new(fd: BorrowedFd<'fd>, interest: i16) -> Self {
        Self { fd, interest, ready: 0 }
    }
}

/// Waits until one of `watches` is ready or `timeout_ms` passes (negative:
/// forever). Returns how many are ready; 0 on timeout or interruption.
pub fn poll(watches: &mut [Watch<'_>], timeout_ms: i32) -> io::Result<usize> {
    let mut fds: Vec<libc::pollfd> = watches
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd.as_raw_fd(),
            events: w.interest,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(err);
    }
    for (w, p) in watches.iter_mut().zip(&fds) {
        w.ready = p.revents;
    }
    Ok(n as usize)
}

/// `read(2)` into `buf`, retrying on EINTR.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the pointer and length describe the borrowed buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `write(2)` of the whole of `buf`, retrying on EINTR and short writes.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: the pointer and length describe the borrowed buffer.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Duplicates `fd` onto descriptor number `target` (clearing close-on-exec).
pub fn dup_onto(fd: BorrowedFd<'_>, target: i32) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        // dup2 onto itself keeps FD_CLOEXEC; clear it explicitly.
        // SAFETY: fcntl on a descriptor we borrow, integer arguments.
        return crate::check_int(unsafe { libc::fcntl(target, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: dup2 of a valid borrowed descriptor onto a number the caller
    // owns (stdio in a freshly forked child).
    crate::check_int(unsafe { libc::dup2(fd.as_raw_fd(), target) }).map(drop)
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments on a borrowed descriptor.
    let flags = crate::check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    crate::check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// Whether `O_NONBLOCK` is set.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: fcntl with integer arguments on a borrowed descriptor.
    let flags = crate::check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Creates a pipe, both ends close-on-exec.
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    crate::check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Moves up to `len` bytes from `from` to `to` in the kernel (one of them a
/// pipe), without waiting on the pipe (`SPLICE_F_NONBLOCK`; a socket's side
/// waits unless the socket is non-blocking). 0: `from` is at its end.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: no offsets (null pointers: both are streams or pipes), integer
    // arguments on borrowed descriptors.
    let moved = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(moved as usize)
}

/// Asks for a pipe of `bytes` (rounded up by the kernel to pages; capped by
/// `fs.pipe-max-size` for an unprivileged caller). Returns the size it has.
pub fn set_pipe_size(pipe: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: fcntl with integer arguments on a borrowed descriptor.
    crate::check_int(unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) }).map(|n| n as usize)
}

/// Whether a borrowed descriptor is open at all.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; EBADF means closed.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Standard input (0), output (1) or error (2) as a borrowed descriptor.
pub fn standard(fd: i32) -> BorrowedFd<'static> {
    let fd = fd.clamp(0, 2);
    // SAFETY: descriptors 0-2 stay open for the life of the process: the
    // standard library never closes them and xvisor opens them on /dev/null
    // at start-up when they are missing (process::ensure_standard_fds).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// A close-on-exec copy of `fd` numbered `lowest` or above: moves a
/// descriptor out of the way of numbers about to be assigned with
/// [`dup_onto`].
pub fn dup_at_least(fd: BorrowedFd<'_>, lowest: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl with integer arguments on a borrowed descriptor.
    let copy = crate::check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, lowest) })?;
    // SAFETY: a fresh descriptor, owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) })
}

/// Descriptor `fd` of this process, borrowed for the rest of its life, if
/// it is open: for descriptors a caller passed in (an OCI runtime's
/// `--preserve-fds`), which nothing in the process closes.
pub fn borrow_open(fd: i32) -> io::Result<BorrowedFd<'static>> {
    if fd < 0 || !is_open(fd) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the descriptor is open (checked just above) and was given to
    // this process by its caller; no owner in this process closes it.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}
