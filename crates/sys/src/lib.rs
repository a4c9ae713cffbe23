//! The one place in xvisor that talks to the kernel through `unsafe`.
//!
//! Every other crate is `#![forbid(unsafe_code)]` and reaches Linux through the
//! small, typed, safe functions here. Each `unsafe` block states why it holds.
//! Functions return `std::io::Result`, carrying the kernel's errno.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod attr;
pub mod caps;
pub mod clock;
pub mod event;
pub mod fs;
pub mod landlock;
pub mod mount;
pub mod net;
pub mod process;
pub mod ptrace;
pub mod seccomp;
pub mod signal;
pub mod socket;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;
pub mod tty;

use std::io;

/// Turns a raw `-1`-on-error return value into a `Result`.
pub(crate) fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`check`] for the many libc calls returning `c_int`.
pub(crate) fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Builds a C string from a path or argument; an interior NUL is `EINVAL`,
/// exactly what the kernel would say about such a string.
pub fn cstring(bytes: impl Into<Vec<u8>>) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Re-exported `open` flags the safe crates read in a trapped call.
pub mod open_flags {
    pub use libc::{
        O_ACCMODE, O_APPEND, O_ASYNC, O_CLOEXEC, O_CREAT, O_DIRECT, O_DIRECTORY, O_DSYNC, O_EXCL, O_LARGEFILE,
        O_NOATIME, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR, O_SYNC, O_TMPFILE, O_TRUNC, O_WRONLY,
    };
}

/// Re-exported errno values the safe crates need to compare against.
pub mod errno {
    pub use libc::{
        EACCES, EAGAIN, EBADF, EBUSY, ECHILD, EEXIST, EINTR, EINVAL, EIO, ELOOP, ENOENT, ENOEXEC, ENOPROTOOPT, ENOSYS,
        ENOTDIR, ENOTSUP, ENOTTY, EOPNOTSUPP, EPERM, EPIPE, EPROTO, ESRCH, EWOULDBLOCK, EXDEV,
    };
}
