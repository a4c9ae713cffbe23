//! Building and reading a file tree from untrusted names (image layers)
//! without ever following a symlink while writing.
//!
//! Every call works on a directory descriptor plus either a relative path
//! resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` (so it can neither leave the
//! tree nor pass through a link), or a single name created with an `*at`
//! call that does not follow a final symlink (`mkdirat`, `symlinkat`,
//! `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`, `openat` with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`). Names are raw bytes, as in a tar archive.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int, cstring};

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// `struct open_how`: libc's is non-exhaustive (the kernel may extend it),
/// so it cannot be built field by field; this is its first version.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2_beneath(dir: BorrowedFd<'_>, path: &[u8], flags: i32, follow_symlinks: bool) -> io::Result<OwnedFd> {
    // openat2 refuses an empty path; "." names the directory itself.
    let path = if path.is_empty() { &b"."[..] } else { path };
    let cpath = cstring(path)?;
    let mut resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    if !follow_symlinks {
        resolve |= RESOLVE_NO_SYMLINKS;
    }
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: NUL-terminated path and a valid open_how whose size we pass;
    // the kernel only reads both; a new descriptor is returned on success.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens the directory at `path` below `dir` for reading (and for
/// `fchmod`, `fsetxattr`), refusing any symlink on the way or at the end,
/// any `..` that would leave `dir`, and any mount crossing. An empty path is
/// `dir` itself.
pub fn open_dir_beneath(dir: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    openat2_beneath(dir, path, libc::O_RDONLY | libc::O_DIRECTORY, false)
}

/// Opens the file at `path` below `dir` for reading. With `follow_symlinks`
/// a symlink is followed as long as it stays below `dir` (reading a layout
/// directory the caller gave); without, any symlink is refused (`ELOOP`).
pub fn open_read_beneath(dir: BorrowedFd<'_>, path: &[u8], follow_symlinks: bool) -> io::Result<OwnedFd> {
    openat2_beneath(dir, path, libc::O_RDONLY, follow_symlinks)
}

/// Creates a new regular file `name` in `dir` for writing; an existing
/// entry (a symlink included) is `EEXIST`, never opened.
pub fn create_new_file(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<OwnedFd> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; a new descriptor is returned on success.
    let fd = check_int(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(dir, name, mode)`; an existing entry is `EEXIST`.
pub fn make_dir(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; mkdirat never follows a final symlink.
    check_int(unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), mode) }).map(drop)
}

/// `symlinkat(target, dir, name)`: stores `target` as it is, never resolving it.
pub fn make_symlink(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let ctarget = cstring(target)?;
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated strings.
    check_int(unsafe { libc::symlinkat(ctarget.as_ptr(), dir.as_raw_fd(), cname.as_ptr()) }).map(drop)
}

/// An overlayfs whiteout: a character device 0/0 named `name`. Linux ≥ 5.8
/// lets unprivileged users create exactly this device.
pub fn make_whiteout(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; mknodat never follows a final symlink.
    check_int(unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) }).map(drop)
}

/// A named pipe `name` in `dir`.
pub fn make_fifo(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; mknodat never follows a final symlink.
    check_int(unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), libc::S_IFIFO | (mode & 0o777), 0) }).map(drop)
}

/// A hard link `new_dir/new_name` to `old_dir/old_name`; a symlink at
/// `old_name` is linked itself, never followed.
pub fn make_hard_link(
    old_dir: BorrowedFd<'_>,
    old_name: &[u8],
    new_dir: BorrowedFd<'_>,
    new_name: &[u8],
) -> io::Result<()> {
    let old = cstring(old_name)?;
    let new = cstring(new_name)?;
    // SAFETY: NUL-terminated names; flags 0 means a final symlink is not followed.
    check_int(unsafe { libc::linkat(old_dir.as_raw_fd(), old.as_ptr(), new_dir.as_raw_fd(), new.as_ptr(), 0) })
        .map(drop)
}

/// Removes the entry `name` of `dir` (an empty directory when `directory`).
pub fn remove_entry(dir: BorrowedFd<'_>, name: &[u8], directory: bool) -> io::Result<()> {
    let cname = cstring(name)?;
    let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: NUL-terminated name; unlinkat acts on the entry itself.
    check_int(unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), flags) }).map(drop)
}

/// What an entry is, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Directory,
    Regular,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

/// The parts of `stat` a tree builder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Device number (major, minor) of a device node.
    pub rdev: (u32, u32),
}

impl EntryStat {
    /// An overlayfs whiteout (character device 0/0).
    pub fn is_whiteout(&self) -> bool {
        self.kind == EntryType::CharDevice && self.rdev == (0, 0)
    }
}

/// A device number's major and minor, as the C library splits it.
pub fn device_numbers(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `Ok(None)` when absent.
pub fn stat_entry(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<EntryStat>> {
    let cname = cstring(name)?;
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated name; `st` is ours and large enough.
    let ret = unsafe { libc::fstatat(dir.as_raw_fd(), cname.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if ret == -1 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => EntryType::Directory,
        libc::S_IFREG => EntryType::Regular,
        libc::S_IFLNK => EntryType::Symlink,
        libc::S_IFCHR => EntryType::CharDevice,
        libc::S_IFBLK => EntryType::BlockDevice,
        libc::S_IFIFO => EntryType::Fifo,
        _ => EntryType::Socket,
    };
    Ok(Some(EntryStat {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        rdev: device_numbers(st.st_rdev),
    }))
}

/// Changes owner and group of `dir/name`, a symlink itself if it is one.
pub fn chown_entry(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; AT_SYMLINK_NOFOLLOW acts on the entry itself.
    check_int(unsafe { libc::fchownat(dir.as_raw_fd(), cname.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// `fchmod(fd, mode)` on an open file or directory.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain call on a descriptor we borrow.
    check_int(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// Sets extended attribute `name` to `value` on an open file or directory.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name; `value` is valid for `value.len()` bytes
    // and only read.
    check_int(unsafe { libc::fsetxattr(fd.as_raw_fd(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

/// Reads extended attribute `name` (at most 256 bytes) of an open file or
/// directory; `Ok(None)` when it is not set.
pub fn get_xattr(fd: BorrowedFd<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
    let cname = cstring(name)?;
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated name; `buf` is writable for its length.
    let ret = unsafe { libc::fgetxattr(fd.as_raw_fd(), cname.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENODATA) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(buf.get(..ret as usize).map(<[u8]>::to_vec))
}

/// How [`lock`] locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// `flock` on `fd`. With `wait`, blocks until the lock is granted; without,
/// returns `Ok(false)` when another holder has it.
pub fn lock(fd: BorrowedFd<'_>, kind: LockKind, wait: bool) -> io::Result<bool> {
    let mut op = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: plain call on a descriptor we borrow.
        match check_int(unsafe { libc::flock(fd.as_raw_fd(), op) }) {
            Ok(_) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) && !wait => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("xvisor-sys-tree-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn beneath_refuses_symlinks_and_escapes() {
        let base = scratch("beneath");
        std::fs::create_dir(base.join("d")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("link")).unwrap();
        std::os::unix::fs::symlink("d", base.join("inner")).unwrap();
        let dir = std::fs::File::open(&base).unwrap();
        assert!(open_dir_beneath(dir.as_fd(), b"d").is_ok());
        assert!(open_dir_beneath(dir.as_fd(), b"").is_ok());
        assert!(open_dir_beneath(dir.as_fd(), b"link").is_err());
        assert!(open_dir_beneath(dir.as_fd(), b"inner").is_err());
        assert!(open_dir_beneath(dir.as_fd(), b"../").is_err());
        assert!(open_read_beneath(dir.as_fd(), b"link/passwd", true).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn new_files_never_open_existing_links() {
        let base = scratch("create");
        std::os::unix::fs::symlink("/tmp/xvisor-should-not-exist", base.join("l")).unwrap();
        let dir = std::fs::File::open(&base).unwrap();
        let e = create_new_file(dir.as_fd(), b"l", 0o644).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(!std::path::Path::new("/tmp/xvisor-should-not-exist").exists());
        make_whiteout(dir.as_fd(), b"gone").unwrap();
        assert!(stat_entry(dir.as_fd(), b"gone").unwrap().unwrap().is_whiteout());
        assert_eq!(stat_entry(dir.as_fd(), b"absent").unwrap(), None);
        let _ = std::fs::remove_dir_all(&base);
    }
}
