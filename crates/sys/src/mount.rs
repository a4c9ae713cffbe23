//! Mounts, through the descriptor-based mount API (Linux ≥ 5.12 for
//! `mount_setattr`): every mount is built on a descriptor and attached to a
//! descriptor, so no path is resolved twice and no symlink can redirect it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int, cstring};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// Mount attributes (`MOUNT_ATTR_*`).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// Ids through a user namespace's maps (`MOUNT_ATTR_IDMAP`).
    pub const IDMAP: u64 = 0x0010_0000;
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `path` (with every mount below it
/// when `recursive`), not yet attached anywhere. An empty `path` clones
/// the tree at `dirfd` itself (a descriptor opened with `RESOLVE_IN_ROOT`,
/// so no symlink is followed out of a root).
pub fn clone_tree(dirfd: Option<BorrowedFd<'_>>, path: &str, recursive: bool) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    // SAFETY: the path is a NUL-terminated string alive for the call; the
    // result is a new descriptor we take ownership of.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, cpath.as_ptr(), flags) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sets mount attributes on the mount behind `mount_fd` (and, when
/// `recursive`, every mount below it).
pub fn set_attributes(mount_fd: BorrowedFd<'_>, set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(
        mount_fd,
        &MountAttr {
            attr_set: set,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        },
        recursive,
    )
}

/// Makes the detached mount behind `mount_fd` (and, when `recursive`,
/// every mount below it) a slave of the peer group it was cloned from:
/// mounts made there later appear in it, none made in it go back. A clone
/// of a private mount has no such group and stays private.
pub fn make_slave(mount_fd: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    mount_setattr(
        mount_fd,
        &MountAttr {
            attr_set: 0,
            attr_clr: 0,
            propagation: libc::MS_SLAVE,
            userns_fd: 0,
        },
        recursive,
    )
}

/// Shows the detached mount behind `mount_fd` (and every mount below it
/// when `recursive`) through the id maps of the user namespace `userns`:
/// a file whose owner is id N on disk shows as owned by whatever N inside
/// `userns` is outside, and files created through the mount are written
/// with the reverse. Needs CAP_SYS_ADMIN over the filesystem (host root
/// for a disk filesystem) and a filesystem that supports it (Linux 5.12:
/// ext4, xfs, btrfs, vfat; 6.3: tmpfs); the mount must never have been
/// attached.
pub fn set_idmap(mount_fd: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    mount_setattr(
        mount_fd,
        &MountAttr {
            attr_set: attr::IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        },
        recursive,
    )
}

fn mount_setattr(mount_fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: an empty path with AT_EMPTY_PATH names the descriptor itself;
    // `attr` is a valid mount_attr whose size we pass; a `userns_fd` in it
    // is a descriptor the caller borrows for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches the detached mount `mount_fd` on top of the directory (or file)
/// opened as `target` (an `O_PATH` descriptor is enough).
pub fn attach(mount_fd: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both paths are empty strings naming the descriptors themselves.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// One `fsconfig` option for [`new_filesystem`].
#[derive(Debug, Clone, Copy)]
pub enum FsOption<'a> {
    Flag(&'a str),
    Value(&'a str, &'a str),
}

/// Creates a new, detached filesystem instance of `fstype` (tmpfs, proc,
/// devpts, overlay, mqueue …) with `options`, mounted with `attributes`.
/// Its source (as mountinfo shows it) is the type's name unless `options`
/// name one, as `mount -t TYPE TYPE DIR` gives.
pub fn new_filesystem(fstype: &str, options: &[FsOption<'_>], attributes: u64) -> io::Result<OwnedFd> {
    let cfstype = cstring(fstype)?;
    // SAFETY: NUL-terminated name; a new descriptor is returned on success.
    let fs = check(unsafe { libc::syscall(libc::SYS_fsopen, cfstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    let named = options.iter().any(|o| matches!(o, FsOption::Value("source", _)));
    let default_source = [FsOption::Value("source", fstype)];
    let defaults: &[FsOption<'_>] = if named { &[] } else { &default_source };
    for option in defaults.iter().chain(options) {
        let (cmd, key, value) = match *option {
            FsOption::Flag(key) => (FSCONFIG_SET_FLAG, cstring(key)?, None),
            FsOption::Value(key, value) => (FSCONFIG_SET_STRING, cstring(key)?, Some(cstring(value)?)),
        };
        let value_ptr = value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: key and value (or null for a flag) are NUL-terminated
        // strings alive for the call.
        check(unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, key.as_ptr(), value_ptr, 0) })?;
    }
    // SAFETY: null key and value, as FSCONFIG_CMD_CREATE requires.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: plain integers; a new descriptor is returned on success.
    let mnt = check(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attributes) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as i32) })
}

/// Makes every mount in this mount namespace private, so nothing we mount
/// propagates back to the host (or from it).
pub fn make_all_private() -> io::Result<()> {
    // SAFETY: the target is a NUL-terminated literal; the other pointers are
    // null, which mount(2) accepts for a propagation change.
    check_int(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// `pivot_root(".", ".")` followed by a lazy unmount of the old root: the
/// current directory becomes `/` and the host's tree disappears from this
/// mount namespace.
pub fn pivot_to_cwd() -> io::Result<()> {
    // SAFETY: both arguments are the literal "."; the current directory is
    // the new root (callers chdir there first).
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    // SAFETY: "." now names the old root stacked under the new one.
    check_int(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) })?;
    std::env::set_current_dir("/")
}

/// Makes the root mount read-only (not recursively). Its `nosuid` stays as
/// it was mounted: an OCI bundle's root honours set-uid bits (as
/// config.json's noNewPrivileges allows), every other root refuses them.
pub fn remount_root_readonly() -> io::Result<()> {
    let root = crate::fs::open_path(None, "/")?;
    set_attributes(root.as_fd(), attr::RDONLY | attr::NODEV, false)
}
