//! Files, opened relative to a directory descriptor and resolved inside it
//! (`openat2` with `RESOLVE_IN_ROOT`, Linux ≥ 5.6): a path given by a user can
//! never climb out of the instance root, whatever symlinks it meets.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int, cstring};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct open_how`: libc's is non-exhaustive (the kernel may extend it),
/// so it cannot be built field by field; this is its first version.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn dirfd_raw(dirfd: Option<BorrowedFd<'_>>) -> libc::c_int {
    dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd())
}

fn openat2(root: BorrowedFd<'_>, path: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: NUL-terminated path and a valid open_how whose size we pass; a
    // new descriptor is returned on success.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether this process may create entries in directory `path` with its
/// effective ids and capabilities (`faccessat(W_OK|X_OK, AT_EACCESS)`): a
/// cheap look before work that only makes sense if it may.
pub fn may_create_in(path: &std::path::Path) -> bool {
    let Ok(c) = cstring(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; the
    // kernel only reads it.
    let ret = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK | libc::X_OK, libc::AT_EACCESS) };
    ret == 0
}

/// Reads a small file whole, as text: meant for /proc files, which report
/// a size of 0. `std::fs::read_to_string` asks for the size first (`statx`,
/// `lseek`) and then reads from 32 bytes up, doubling — six reads for a
/// `/proc/PID/stat` line, ten for a `maps`; a page-sized buffer takes such
/// a file in one read, then one more for the end.
pub fn read_small(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Opens `path` as an `O_PATH` handle (no access to the contents; enough to
/// mount on, or to resolve further from), relative to `dirfd` or the cwd.
pub fn open_path(dirfd: Option<BorrowedFd<'_>>, path: &str) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    // SAFETY: NUL-terminated path; a new descriptor is returned on success.
    let fd = check_int(unsafe { libc::openat(dirfd_raw(dirfd), cpath.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory for reading relative to `dirfd` or the cwd.
pub fn open_dir(dirfd: Option<BorrowedFd<'_>>, path: &str) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    // SAFETY: NUL-terminated path; a new descriptor is returned on success.
    let fd = check_int(unsafe {
        libc::openat(
            dirfd_raw(dirfd),
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` as an `O_PATH` handle, resolved as if `root` were `/`.
pub fn open_path_in_root(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    openat2(root, path.as_bytes(), libc::O_PATH, 0)
}

/// Opens a path without following its last component (a symlink there is
/// opened itself), resolved as if `root` were `/`.
pub fn open_entry_in_root(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    openat2(root, path.as_bytes(), libc::O_PATH | libc::O_NOFOLLOW, 0)
}

/// Opens any path (not only UTF-8 ones) as an `O_PATH` handle, resolved
/// as if `root` were `/`, following a symlink at its end or not.
pub fn open_object_in_root(root: BorrowedFd<'_>, path: &[u8], follow: bool) -> io::Result<OwnedFd> {
    let flags = if follow {
        libc::O_PATH
    } else {
        libc::O_PATH | libc::O_NOFOLLOW
    };
    openat2(root, path, flags, 0)
}

/// The target of the symlink an `O_PATH | O_NOFOLLOW` handle names
/// (`readlinkat(fd, "")`); EINVAL when it names no symlink.
pub fn symlink_target(link: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an empty path names the descriptor itself; the kernel writes
    // at most `buf.len()` bytes into `buf`, which we own.
    let n = check(unsafe {
        libc::readlinkat(link.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) as libc::c_long
    })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// Opens the file an `O_PATH` handle names, again, with `flags` (an open
/// with access to its contents), through `/proc/self/fd`: the same inode,
/// whatever its path has become; permission is checked as for any open,
/// against the calling thread's file-system ids. Always close-on-exec and
/// `O_NOCTTY` (the descriptor is for another process); `O_CREAT`, `O_EXCL`
/// and `O_NOFOLLOW` are dropped (the file exists, and is no symlink).
pub fn reopen(file: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let cpath = cstring(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let flags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW)) | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: NUL-terminated path; no mode is read without O_CREAT; a new
    // descriptor is returned on success.
    let fd = check_int(unsafe { libc::open(cpath.as_ptr(), flags) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory for reading, resolved as if `root` were `/`.
pub fn open_dir_in_root(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    openat2(root, path.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Creates (or opens) a regular file, resolved as if `root` were `/`.
pub fn create_file_in_root(root: BorrowedFd<'_>, path: &str, mode: u32) -> io::Result<OwnedFd> {
    openat2(
        root,
        path.as_bytes(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW,
        mode,
    )
}

/// Opens a file read-write relative to the cwd (devices, ptys).
pub fn open_read_write(path: &str, no_controlling_tty: bool) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if no_controlling_tty {
        flags |= libc::O_NOCTTY;
    }
    // SAFETY: NUL-terminated path; a new descriptor is returned on success.
    let fd = check_int(unsafe { libc::open(cpath.as_ptr(), flags) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(dir, name, mode)`; an existing entry is not an error.
pub fn make_dir_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<()> {
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated name.
    match check_int(unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), mode) }) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other.map(drop),
    }
}

/// `symlinkat(target, dir, name)`.
pub fn symlink_at(target: &str, dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let ctarget = cstring(target)?;
    let cname = cstring(name)?;
    // SAFETY: NUL-terminated strings.
    check_int(unsafe { libc::symlinkat(ctarget.as_ptr(), dir.as_raw_fd(), cname.as_ptr()) }).map(drop)
}

/// What kind of file a path is, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Regular,
    Symlink,
    Other,
}

/// Whether `fd` can name files beneath it: a directory, or any `O_PATH`
/// descriptor (which `openat` and `/proc/self/fd/N/…` resolve from).
pub fn reaches_paths(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument and reads only the descriptor.
    let flags = check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_PATH != 0 || kind_of_fd(fd)? == FileKind::Directory)
}

/// Whether the file behind `fd` (an `O_PATH` fd works) is on a read-only
/// mount.
pub fn on_read_only_mount(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero `statvfs` is a valid value for fstatvfs to
    // overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open; `st` is ours and outlives the call.
    check_int(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) })?;
    Ok(st.f_flag & libc::ST_RDONLY != 0)
}

/// Whether the file behind `fd` (an `O_PATH` fd works) is on a proc file
/// system, whose files check the opener's privileges beyond its ids (a
/// process's `environ`, `mem`: ptrace access).
pub fn on_procfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    // SAFETY: an all-zero `statfs` is a valid value for fstatfs to
    // overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open; `st` is ours and outlives the call.
    check_int(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    Ok(st.f_type as i64 == PROC_SUPER_MAGIC)
}

/// Kind of the file behind `fd` (an `O_PATH` fd works).
pub fn kind_of_fd(fd: BorrowedFd<'_>) -> io::Result<FileKind> {
    stat_fd(fd).map(|st| st.kind)
}

/// What `fstat` says of a descriptor (not following a symlink it names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdStat {
    pub kind: FileKind,
    pub uid: u32,
    pub gid: u32,
    /// The permission bits (`0o7777`).
    pub mode: u32,
    /// The device and inode: which file it is.
    pub dev: u64,
    pub ino: u64,
}

/// `fstat` of the descriptor itself (an `O_PATH` one of a symlink names
/// the symlink).
pub(crate) fn stat_itself(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: empty path with AT_EMPTY_PATH names the descriptor; `st` is ours.
    check_int(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<FdStat> {
    let st = stat_itself(fd)?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => FileKind::Directory,
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    };
    Ok(FdStat {
        kind,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

#[cfg(test)]
mod tests {
    use super::read_small;

    #[test]
    fn small_reads_take_the_whole_file_whatever_its_size() {
        let dir = std::env::temp_dir().join(format!("xvisor-read-small-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 20_000] {
            let path = dir.join(len.to_string());
            let text: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read_small(&path).unwrap(), text, "{len} bytes");
        }
        let _ = std::fs::remove_dir_all(&dir);
        // A /proc file, which says it is empty.
        let stat = read_small("/proc/self/stat").unwrap();
        assert!(stat.starts_with(&format!("{} (", std::process::id())), "{stat}");
        assert!(stat.ends_with('\n'));
        assert!(read_small("/proc/self/maps").unwrap().lines().count() > 3);
    }
}
