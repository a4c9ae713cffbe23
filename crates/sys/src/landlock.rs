//! Landlock: unprivileged access control a process imposes on itself and
//! its descendants (Linux ≥ 5.13), through its three system calls.
//!
//! A ruleset names the access rights it *handles*; rules then grant some of
//! them beneath directories; after `restrict_self` every handled right is
//! refused everywhere else, also through descriptors opened later from ones
//! that lead elsewhere. What a ruleset can handle grows with the kernel's
//! Landlock ABI version ([`abi_version`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check;

/// `LANDLOCK_ACCESS_FS_*`: rights on files and directories.
pub mod fs {
    pub const EXECUTE: u64 = 1 << 0;
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const REMOVE_DIR: u64 = 1 << 4;
    pub const REMOVE_FILE: u64 = 1 << 5;
    pub const MAKE_CHAR: u64 = 1 << 6;
    pub const MAKE_DIR: u64 = 1 << 7;
    pub const MAKE_REG: u64 = 1 << 8;
    pub const MAKE_SOCK: u64 = 1 << 9;
    pub const MAKE_FIFO: u64 = 1 << 10;
    pub const MAKE_BLOCK: u64 = 1 << 11;
    pub const MAKE_SYM: u64 = 1 << 12;
    /// ABI 2: linking or renaming a file into another directory.
    pub const REFER: u64 = 1 << 13;
    /// ABI 3.
    pub const TRUNCATE: u64 = 1 << 14;
    /// ABI 5: `ioctl` on a device file.
    pub const IOCTL_DEV: u64 = 1 << 15;
}

/// `LANDLOCK_ACCESS_NET_*` (ABI 4): TCP ports.
pub mod net {
    pub const BIND_TCP: u64 = 1 << 0;
    pub const CONNECT_TCP: u64 = 1 << 1;
}

/// `LANDLOCK_SCOPE_*` (ABI 6): IPC the domain's processes may not have with
/// processes outside it.
pub mod scope {
    /// Connecting to an abstract unix socket bound outside the domain.
    pub const ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    /// Sending a signal to a process outside the domain.
    pub const SIGNAL: u64 = 1 << 1;
}

/// Every file-system right the kernel's ABI `version` knows.
pub fn fs_rights_of(version: u32) -> u64 {
    let mut rights = (fs::MAKE_SYM << 1) - 1;
    if version >= 2 {
        rights |= fs::REFER;
    }
    if version >= 3 {
        rights |= fs::TRUNCATE;
    }
    if version >= 5 {
        rights |= fs::IOCTL_DEV;
    }
    rights
}

/// Every scope the kernel's ABI `version` knows.
pub fn scopes_of(version: u32) -> u64 {
    if version >= 6 {
        scope::ABSTRACT_UNIX_SOCKET | scope::SIGNAL
    } else {
        0
    }
}

const CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;
const RULE_NET_PORT: libc::c_int = 2;

/// `struct landlock_ruleset_attr` as of ABI 6; older kernels are given the
/// prefix they know (8 bytes up to ABI 3, 16 up to ABI 5).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed: 12 bytes).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The kernel's Landlock ABI version; an error (ENOSYS, EOPNOTSUPP) when
/// Landlock is not built in or not enabled.
pub fn abi_version() -> io::Result<u32> {
    // SAFETY: with the VERSION flag the attribute pointer must be null and
    // the size 0; nothing is read or written.
    let version = check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    })?;
    u32::try_from(version).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A ruleset being built.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
    handled_fs: u64,
    handled_net: u64,
}

impl Ruleset {
    /// A ruleset handling `handled_fs` rights and `scoped` IPC, for a kernel
    /// of ABI `version` (which must know them: [`fs_rights_of`],
    /// [`scopes_of`]).
    pub fn new(version: u32, handled_fs: u64, scoped: u64) -> io::Result<Self> {
        Self::handling(version, handled_fs, 0, scoped)
    }

    /// A ruleset that also handles `handled_net` TCP rights ([`net`]; ABI
    /// 4 and later).
    pub fn handling(version: u32, handled_fs: u64, handled_net: u64, scoped: u64) -> io::Result<Self> {
        if (handled_net != 0 && version < 4) || (scoped != 0 && version < 6) {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        let attr = RulesetAttr {
            handled_access_fs: handled_fs,
            handled_access_net: handled_net,
            scoped,
        };
        let size = match version {
            0..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` is a valid ruleset attribute whose first `size`
        // bytes are the prefix this kernel's ABI defines; it outlives the
        // call, which only reads it.
        let fd = check(unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0 as libc::c_uint,
            )
        })?;
        let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: a fresh descriptor from the kernel, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            handled_fs,
            handled_net,
        })
    }

    /// Grants `access` (within the handled TCP rights) on `port`.
    pub fn allow_port(&self, port: u16, access: u64) -> io::Result<()> {
        let attr = NetPortAttr {
            allowed_access: access & self.handled_net,
            port: u64::from(port),
        };
        // SAFETY: `attr` is a valid net-port rule that outlives the call,
        // which only reads it; the ruleset descriptor is open.
        check(unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_NET_PORT,
                &attr as *const NetPortAttr,
                0 as libc::c_uint,
            )
        })
        .map(drop)
    }

    /// Grants `access` (within the handled rights) on everything beneath
    /// the directory `dir` (an `O_PATH` descriptor will do).
    pub fn allow_beneath(&self, dir: BorrowedFd<'_>, access: u64) -> io::Result<()> {
        let attr = PathBeneathAttr {
            allowed_access: access & self.handled_fs,
            parent_fd: dir.as_raw_fd(),
        };
        // SAFETY: `attr` is a valid path-beneath rule that outlives the
        // call, which only reads it; both descriptors are open.
        check(unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0 as libc::c_uint,
            )
        })
        .map(drop)
    }

    /// Puts the calling thread (and all it creates from now on) under the
    /// ruleset. Needs `no_new_privs` or CAP_SYS_ADMIN in its user
    /// namespace.
    pub fn restrict_self(self) -> io::Result<()> {
        // SAFETY: plain integer arguments; the descriptor is open.
        check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, self.fd.as_raw_fd(), 0 as libc::c_uint) })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_layouts_are_the_kernels() {
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::size_of::<RulesetAttr>(), 24);
        assert_eq!(std::mem::size_of::<NetPortAttr>(), 16);
    }

    #[test]
    fn rights_grow_with_the_abi() {
        assert_eq!(fs_rights_of(1), 0x1fff);
        assert_eq!(fs_rights_of(2), 0x3fff);
        assert_eq!(fs_rights_of(3), 0x7fff);
        assert_eq!(fs_rights_of(4), 0x7fff);
        assert_eq!(fs_rights_of(5), 0xffff);
        assert_eq!(scopes_of(5), 0);
        assert_eq!(scopes_of(6), 3);
    }
}
