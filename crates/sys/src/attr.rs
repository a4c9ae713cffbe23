//! A file's metadata changed through a descriptor of it (an `O_PATH` one
//! works): the supervisor performs a guest's `chmod`, `chown`, `utimensat`
//! and xattr calls on the very file it decided on, never by a path the
//! guest could swap afterwards.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{check, check_int, cstring};

/// Which file a descriptor names, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub device: u64,
    pub inode: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// The device a device file stands for.
    pub rdev: u64,
}

impl Identity {
    pub fn is_directory(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_character_device(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFCHR
    }

    /// The major number of the device a device file stands for.
    pub fn rdev_major(&self) -> u32 {
        libc::major(self.rdev)
    }
}

/// Whether `fd` was opened with `O_PATH` (names a file, gives no access to
/// it: the calls that take "a descriptor" refuse it with EBADF).
pub fn is_path_only(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument and reads only the descriptor.
    let flags = check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_PATH != 0)
}

/// `fstat` of the descriptor itself (an `O_PATH` one of a symlink names
/// the symlink).
pub fn identify(fd: BorrowedFd<'_>) -> io::Result<Identity> {
    let st = crate::fs::stat_itself(fd)?;
    Ok(Identity {
        device: st.st_dev,
        inode: st.st_ino,
        mode: st.st_mode,
        rdev: st.st_rdev,
    })
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` (Linux ≥ 6.6): the file itself.
pub fn chmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: empty NUL-terminated path with AT_EMPTY_PATH names the
    // descriptor itself; the other arguments are integers.
    check(unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`: the file itself (a symlink
/// is changed itself); `u32::MAX` leaves an id as it is.
pub fn chown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: empty path with AT_EMPTY_PATH names the descriptor itself.
    check_int(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) }).map(drop)
}

/// A time for [`set_times`]: seconds and nanoseconds, or the kernel's
/// `UTIME_NOW` / `UTIME_OMIT` in `nanoseconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub seconds: i64,
    pub nanoseconds: i64,
}

pub const UTIME_NOW: i64 = libc::UTIME_NOW;
pub const UTIME_OMIT: i64 = libc::UTIME_OMIT;

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`: access and modification
/// times of the file itself; `None` sets both to now.
pub fn set_times(fd: BorrowedFd<'_>, times: Option<[Time; 2]>) -> io::Result<()> {
    let spec = times.map(|t| {
        t.map(|t| libc::timespec {
            tv_sec: t.seconds,
            tv_nsec: t.nanoseconds,
        })
    });
    let pointer = spec.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: empty path with AT_EMPTY_PATH names the descriptor; `pointer`
    // is null or points at two timespecs that outlive the call.
    check_int(unsafe { libc::utimensat(fd.as_raw_fd(), c"".as_ptr(), pointer, libc::AT_EMPTY_PATH) }).map(drop)
}

#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// Sets the extended attribute `name` of the file itself (`setxattrat`
/// with AT_EMPTY_PATH, Linux ≥ 6.13; before it, and for an `O_PATH`
/// descriptor, through `/proc/self/fd/N`, which names the same file).
pub fn set_xattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8], flags: u32) -> io::Result<()> {
    let cname = cstring(name)?;
    let args = XattrArgs {
        value: value.as_ptr() as u64,
        size: u32::try_from(value.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        flags,
    };
    // SAFETY: empty path with AT_EMPTY_PATH names the descriptor; the name is
    // NUL-terminated; `args` points at `value`, which outlives the call.
    let done = check(unsafe {
        libc::syscall(
            SYS_SETXATTRAT,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            cname.as_ptr(),
            &args as *const XattrArgs,
            std::mem::size_of::<XattrArgs>(),
        )
    });
    match done {
        // Before Linux 6.13, or an `O_PATH` descriptor (which the xattr
        // calls take only by path).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EBADF)) => {
            let path = cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
            // SAFETY: NUL-terminated path and name; `value` outlives the call.
            check_int(unsafe {
                libc::setxattr(
                    path.as_ptr(),
                    cname.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    flags as libc::c_int,
                )
            })
            .map(drop)
        }
        other => other.map(drop),
    }
}

/// Removes the extended attribute `name` of the file itself
/// (`removexattrat`, or through `/proc/self/fd/N` before Linux 6.13).
pub fn remove_xattr(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: empty path with AT_EMPTY_PATH names the descriptor; the name
    // is NUL-terminated.
    let done = check(unsafe {
        libc::syscall(
            SYS_REMOVEXATTRAT,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            cname.as_ptr(),
        )
    });
    match done {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EBADF)) => {
            let path = cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
            // SAFETY: NUL-terminated path and name.
            check_int(unsafe { libc::removexattr(path.as_ptr(), cname.as_ptr()) }).map(drop)
        }
        other => other.map(drop),
    }
}

/// `ioctl(fd, request, argument)` for a request that only reads its
/// argument (`FS_IOC_SETFLAGS`: an int; `FS_IOC_FSSETXATTR`: a `struct
/// fsxattr`), given as the bytes the kernel reads.
pub fn set_flags(fd: BorrowedFd<'_>, request: u32, argument: &[u8]) -> io::Result<()> {
    let needed = match request {
        FS_IOC_SETFLAGS => 4,
        FS_IOC_FSSETXATTR => 28,
        _ => return Err(io::Error::from_raw_os_error(libc::ENOTTY)),
    };
    if argument.len() < needed {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    // SAFETY: the request is one of the two above, which only read
    // `needed` bytes at the pointer, and `argument` holds that many.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::c_ulong::from(request), argument.as_ptr()) }).map(drop)
}

pub const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
pub const FS_IOC_FSSETXATTR: u32 = 0x401c_5820;

const SYS_SETXATTRAT: libc::c_long = 463;
const SYS_REMOVEXATTRAT: libc::c_long = 466;
