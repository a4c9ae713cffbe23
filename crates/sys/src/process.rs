//! Processes: creation (clone3, fork), waiting, signalling, identity, exec,
//! and the per-process switches (`prctl`, rlimits, hostname).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int};

/// Namespace flags for [`clone_process`].
pub mod ns {
    pub const USER: u64 = libc::CLONE_NEWUSER as u64;
    pub const PID: u64 = libc::CLONE_NEWPID as u64;
    pub const MOUNT: u64 = libc::CLONE_NEWNS as u64;
    pub const IPC: u64 = libc::CLONE_NEWIPC as u64;
    pub const UTS: u64 = libc::CLONE_NEWUTS as u64;
    pub const NET: u64 = libc::CLONE_NEWNET as u64;
    pub const CGROUP: u64 = libc::CLONE_NEWCGROUP as u64;
    pub const TIME: u64 = libc::CLONE_NEWTIME as u64;
}

/// A flag for [`clone_process`] beside the namespaces: the child's parent
/// is the caller's parent (`CLONE_PARENT`), not the caller. Its exit is
/// reported to that parent with the caller's own exit signal.
pub const AS_SIBLING: u64 = libc::CLONE_PARENT as u64;

/// `NS_GET_NSTYPE` (include/uapi/linux/nsfs.h): `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Opens a namespace file (`/proc/PID/ns/net`, or a bind mount of one such
/// as `/run/netns/NAME`) and returns it with its type (one of [`ns`]).
///
/// The path may come from untrusted configuration: it is opened
/// non-blocking (a FIFO cannot hang us) and only regular files are opened
/// at all (namespace files are; device nodes are never touched). A file
/// that is not a namespace fails with `ENOTTY`, the kernel's answer to the
/// namespace ioctl.
pub fn open_namespace(path: &std::path::Path) -> io::Result<(OwnedFd, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::from_raw_os_error(libc::ENOTTY));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let fd = OwnedFd::from(file);
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an integer;
    // on any other file the kernel answers ENOTTY.
    let kind = check_int(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) })?;
    Ok((fd, kind as u64))
}

/// `NS_GET_USERNS` (include/uapi/linux/nsfs.h): `_IO(0xb7, 0x1)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The user namespace that owns the namespace behind `fd`, opened. EPERM
/// when it lies outside the caller's own user namespace.
pub fn namespace_owner(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_USERNS takes no argument; it returns a new descriptor
    // (or -1), which nothing else owns.
    let owner = check_int(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_USERNS) })?;
    // SAFETY: a fresh descriptor the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(owner) })
}

/// Moves the calling thread into the namespace behind `fd`, which must be
/// of type `nstype` (one of [`ns`]; the kernel checks it too).
pub fn setns(fd: BorrowedFd<'_>, nstype: u64) -> io::Result<()> {
    // SAFETY: plain integers; the descriptor is borrowed for the call.
    check_int(unsafe { libc::setns(fd.as_raw_fd(), nstype as libc::c_int) }).map(drop)
}

/// The host name of the calling process's UTS namespace.
pub fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which the kernel fills
    // with a NUL-terminated name of at most 64 bytes.
    check_int(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) })?;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned())
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Layout of `struct clone_args` (include/uapi/linux/sched.h), version 2.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a process creation we are on.
#[derive(Debug)]
pub enum Forked {
    /// The original process; `pid` is the child's pid in our pid namespace.
    Parent { pid: i32, pidfd: Option<OwnedFd> },
    /// The new process.
    Child,
}

/// The numeric fields of `/proc/self/stat` numbered (from 1, as proc(5)
/// does) in `wanted`, in that order.
fn own_stat_fields<const N: usize>(wanted: [usize; N]) -> io::Result<[u64; N]> {
    let stat = crate::fs::read_small("/proc/self/stat")?;
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted from the last ')', which ends it; field 3 comes next.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let mut values = [0; N];
    for (value, number) in values.iter_mut().zip(wanted) {
        *value = number
            .checked_sub(3)
            .and_then(|i| fields.get(i))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no field {number} in /proc/self/stat")))?;
    }
    Ok(values)
}

/// Counts this process's threads from `/proc/self/stat` (field 20).
fn thread_count() -> io::Result<u64> {
    own_stat_fields([20]).map(|[count]| count)
}

/// Whether `[start, end)` lies within one mapping of `maps` (the text of
/// `/proc/self/maps`) that is readable and writable.
fn within_writable_mapping(maps: &str, start: u64, end: u64) -> bool {
    maps.lines().any(|line| {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            return false;
        };
        let Some((low, high)) = range.split_once('-') else {
            return false;
        };
        let (Ok(low), Ok(high)) = (u64::from_str_radix(low, 16), u64::from_str_radix(high, 16)) else {
            return false;
        };
        perms.starts_with("rw") && low <= start && end <= high
    })
}

/// Replaces this process's command line, as `/proc/PID/cmdline` (and `ps`)
/// show it, with `title` alone. The kernel reads it from the argument
/// strings' memory (`arg_start..arg_end` in `/proc/self/stat`), which a
/// process may overwrite in place; shortening the area itself would need
/// `PR_SET_MM` and CAP_SYS_RESOURCE. `title` is cut to the area's size.
///
/// Refused (`EBUSY`) unless the process has one thread: the standard
/// library reads that memory when asked for the arguments, which another
/// thread might do meanwhile. Meant for the child of a fork that will
/// not exec.
pub fn set_command_line(title: &str) -> io::Result<()> {
    if title.as_bytes().contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // One read for the thread count and the area (each read of
    // /proc/self/stat formats the whole line).
    let [threads, start, end] = own_stat_fields([20, 48, 49])?;
    if threads != 1 {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    let maps = crate::fs::read_small("/proc/self/maps")?;
    if start >= end || !within_writable_mapping(&maps, start, end) {
        return Err(io::Error::other(
            "the argument area is not writable memory of this process",
        ));
    }
    let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(end - start)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    // The title, then NULs; the area's last byte stays non-NUL, which tells
    // the kernel the process rewrote its arguments: it then shows the area
    // up to the first NUL (the title alone), not every byte of it.
    let mut area = vec![0u8; len];
    let shown = title.len().min(len - 1);
    area[..shown].copy_from_slice(&title.as_bytes()[..shown]);
    if len > shown + 1 {
        area[len - 1] = b' ';
    }
    let base = start as *mut u8;
    for (offset, byte) in area.into_iter().enumerate() {
        // SAFETY: `base + offset` is within `[start, end)`, which the kernel
        // reports as this process's argument strings and which lies inside
        // one readable, writable mapping of ours (checked above), so the
        // write cannot fault. No Rust reference points into that memory: the
        // standard library hands out copies of the arguments, never borrows,
        // and reads them only when asked, which no other thread can do now
        // (this process has one thread). Volatile: the reader is the kernel,
        // not code the compiler sees.
        unsafe { std::ptr::write_volatile(base.add(offset), byte) };
    }
    Ok(())
}

/// Fails unless the calling process has exactly one thread: only then may the
/// child of a fork go on running arbitrary code (no lock can be held by a
/// thread that does not exist in the child).
fn ensure_single_threaded() -> io::Result<()> {
    match thread_count()? {
        1 => Ok(()),
        n => Err(io::Error::other(format!("refusing to fork a process with {n} threads"))),
    }
}

/// Creates a child process with `namespaces` (see [`ns`]), optionally born
/// directly into the cgroup v2 directory `cgroup`, and returns a pidfd for it.
/// The child gets `SIGCHLD` on exit like a forked one. Fails unless the
/// process is single-threaded.
pub fn clone_process(namespaces: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    ensure_single_threaded()?;
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: namespaces | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        // clone3 takes no exit signal with CLONE_PARENT: the child gets
        // the caller's own.
        exit_signal: if namespaces & AS_SIBLING != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and with no stack duplicates the
    // process like fork(); `args` is a valid, fully initialised clone_args
    // whose size we pass, and `pidfd` outlives the call. The process was
    // checked to be single-threaded, so the child cannot inherit a lock held
    // by another thread.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new, owned descriptor in
    // `pidfd` when the call succeeded.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    Ok(Forked::Parent { pid: ret as i32, pidfd })
}

/// `fork()`, refused unless the process is single-threaded.
pub fn fork() -> io::Result<Forked> {
    clone_process(0, None).map(|f| match f {
        Forked::Parent { pid, pidfd } => Forked::Parent { pid, pidfd },
        Forked::Child => Forked::Child,
    })
}

/// How a child ended (or stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl WaitStatus {
    /// Decodes a raw `wait` status word. Stop/continue states are not
    /// requested by our callers and are read as "still running" (None).
    pub fn from_raw(status: i32) -> Option<Self> {
        if libc::WIFEXITED(status) {
            Some(Self::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Self::Signaled {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            })
        } else {
            None
        }
    }

    /// Re-encodes as a raw status word.
    pub fn to_raw(self) -> i32 {
        match self {
            Self::Exited(code) => (code & 0xff) << 8,
            Self::Signaled { signal, core_dumped } => (signal & 0x7f) | if core_dumped { 0x80 } else { 0 },
        }
    }

    /// The shell convention: the code itself, or 128 + signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled { signal, .. } => 128 + signal,
        }
    }
}

/// Waits for a child. `pid` as in waitpid(2); `nohang` returns `Ok(None)`
/// when nothing has changed. Retries on EINTR.
pub fn wait_pid(pid: i32, nohang: bool) -> io::Result<Option<(i32, WaitStatus)>> {
    let flags = if nohang { libc::WNOHANG } else { 0 } | libc::__WALL;
    loop {
        let mut status = 0;
        // SAFETY: waitpid only writes the status word we own.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if ret == 0 {
            return Ok(None);
        }
        if let Some(ws) = WaitStatus::from_raw(status) {
            return Ok(Some((ret, ws)));
        }
    }
}

/// Sends `signal` to `pid` (a pid, or a negative process group).
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    check_int(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Sends `signal` to the process behind `pidfd`: unlike a pid, a pidfd
/// cannot name a recycled process.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: plain integers and a null siginfo, which the call allows.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &CString, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer is to a NUL-terminated string borrowed for the
    // whole call, and both arrays end with a null pointer.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends the process at once, without running exit handlers or flushing
/// buffers inherited from the parent (the right exit for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

pub fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

pub fn getgid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

/// Puts the calling process into a new process group of its own, in the
/// session it is in.
pub fn new_process_group() -> io::Result<()> {
    // SAFETY: no pointers.
    check_int(unsafe { libc::setpgid(0, 0) }).map(drop)
}

/// Starts a new session (the process leaves its controlling terminal).
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: plain integers. The raw syscall is used so that only this
    // thread's ids change (our callers are single-threaded anyway).
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// Sets the calling thread's file-system uid and gid, the ids the kernel
/// checks file access and ownership against. `setfsuid` and `setfsgid`
/// report no error: each is called again to read the id back, and a
/// change the kernel did not make is EPERM.
pub fn set_fs_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integers; the raw calls change this thread's ids only.
    // The ids are u32 in the kernel's ABI, as here.
    let changed = unsafe {
        libc::syscall(libc::SYS_setfsgid, gid);
        let gid_now = libc::syscall(libc::SYS_setfsgid, gid) as u32;
        libc::syscall(libc::SYS_setfsuid, uid);
        let uid_now = libc::syscall(libc::SYS_setfsuid, uid) as u32;
        (uid_now, gid_now)
    };
    if changed == (uid, gid) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

/// The calling thread's supplementary groups.
pub fn groups() -> io::Result<Vec<u32>> {
    // SAFETY: a size of 0 asks for the count and writes nothing.
    let n = check_int(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut out = vec![0u32; usize::try_from(n).unwrap_or(0)];
    // SAFETY: the pointer and length describe `out`, which we own.
    let n = check_int(unsafe { libc::getgroups(n, out.as_mut_ptr()) })?;
    out.truncate(usize::try_from(n).unwrap_or(0));
    Ok(out)
}

/// Sets the calling thread's supplementary groups (the raw call: only
/// this thread's change, where the C library would change every thread's).
pub fn setgroups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe the borrowed slice.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the borrowed string.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// Enters new namespaces (`ns::*` flags) without creating a process.
pub fn unshare(namespaces: u64) -> io::Result<()> {
    // SAFETY: plain integer flags.
    check_int(unsafe { libc::unshare(namespaces as libc::c_int) }).map(drop)
}

/// Sets `no_new_privs`: no exec may grant privileges again (set-uid bits,
/// file capabilities), and it is inherited forever.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Memory-deny-write-execute for this process and everything it creates
/// or executes from now on (PR_SET_MDWE, Linux ≥ 6.3): no mapping may be
/// made both writable and executable, nor made executable after being
/// writable. Cannot be undone.
pub fn deny_write_execute() -> io::Result<()> {
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    // SAFETY: prctl with integer arguments.
    check_int(unsafe {
        libc::prctl(
            PR_SET_MDWE,
            PR_MDWE_REFUSE_EXEC_GAIN,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// Asks the kernel to send `signal` to this process when its parent dies.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) }).map(drop)
}

/// A non-dumpable process cannot be ptraced or have its /proc files read by
/// processes without CAP_SYS_PTRACE, even of the same uid.
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Names the calling thread (what `ps` shows as comm), up to 15 bytes.
pub fn set_process_name(name: &str) -> io::Result<()> {
    let name = crate::cstring(name)?;
    // SAFETY: the pointer is to a NUL-terminated string alive for the call.
    check_int(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) }).map(drop)
}

/// Marks every descriptor from `first` upwards close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with the CLOEXEC flag only sets descriptor flags.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) }).map(drop)
}

/// Closes every descriptor from `first` upwards except those in `keep`.
///
/// Only for a freshly forked child that owns no Rust objects wrapping those
/// descriptors (or that forgets them): it is the step that guarantees that
/// nothing inherited crosses into an instance.
pub fn close_all_from_except(first: i32, keep: &[i32]) -> io::Result<()> {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for &k in keep.iter().chain(std::iter::once(&i32::MAX)) {
        if k > start {
            let end = if k == i32::MAX { u32::MAX } else { (k - 1) as u32 };
            // SAFETY: close_range only closes descriptors; callers own all
            // descriptors in the range (see the function's contract).
            check(unsafe { libc::syscall(libc::SYS_close_range, start as u32, end, 0u32) })?;
        }
        start = k.saturating_add(1);
    }
    Ok(())
}

/// Sets the file-mode creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask takes a plain integer and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Resource limits.
pub mod rlimit {
    use super::*;

    pub const NOFILE: u32 = libc::RLIMIT_NOFILE;
    pub const NPROC: u32 = libc::RLIMIT_NPROC;
    pub const CORE: u32 = libc::RLIMIT_CORE;

    /// `(soft, hard)`; `u64::MAX` is unlimited.
    pub fn get(resource: u32) -> io::Result<(u64, u64)> {
        let mut lim = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit64 on ourselves (pid 0) writes only `lim`.
        check_int(unsafe { libc::prlimit64(0, resource as _, std::ptr::null(), &mut lim) })?;
        Ok((lim.rlim_cur, lim.rlim_max))
    }

    pub fn set(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
        let lim = libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: prlimit64 on ourselves reads only `lim`.
        check_int(unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
    }
}

/// The host's RAM in bytes (`sysinfo`'s `totalram`).
pub fn total_ram() -> io::Result<u64> {
    // SAFETY: sysinfo writes only the zero-initialised struct it is given,
    // which lives for the call; all-zero bytes are a valid `sysinfo`.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: see above; `info` is a valid, writable `sysinfo`.
    check_int(unsafe { libc::sysinfo(&mut info) })?;
    // `c_ulong`: u64 here, u32 on 32-bit targets.
    Ok((info.totalram as u64).saturating_mul(u64::from(info.mem_unit.max(1))))
}

/// Opens a pidfd for an existing process.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integers; on success the kernel returns a new descriptor
    // that we take ownership of.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd of one thread rather than of its
/// thread group.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// A pidfd of thread `tid` (any thread, not only a group's leader):
/// `PIDFD_THREAD` where the kernel has it, else the thread group's pidfd
/// read from `/proc/TID/status`. Either names the descriptor table the
/// thread uses when threads share one (as they do unless made otherwise).
pub fn pidfd_open_thread(tid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integers; on success a new descriptor is returned.
    match check(unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) }) {
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
            let tgid = status
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse::<i32>().ok())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
            pidfd_open(tgid)
        }
        Err(e) => Err(e),
    }
}

/// Whether threads `a` and `b` (host ids) use the same descriptor table
/// (`kcmp(KCMP_FILES)`; needs ptrace access to both).
pub fn same_descriptor_table(a: i32, b: i32) -> io::Result<bool> {
    const KCMP_FILES: libc::c_long = 2;
    // SAFETY: plain integers; kcmp only compares kernel objects.
    let order = check(unsafe { libc::syscall(libc::SYS_kcmp, a, b, KCMP_FILES, 0, 0) })?;
    Ok(order == 0)
}

/// Points descriptors 0, 1 and 2 at /dev/null, as far as it can: a helper
/// process letting go of its caller's standard streams (an engine's pipes,
/// read to end-of-file) does not need them to fail loudly.
pub fn stdio_to_null() {
    if let Ok(null) = crate::fs::open_read_write("/dev/null", true) {
        for fd in 0..3 {
            let _ = crate::event::dup_onto(std::os::fd::AsFd::as_fd(&null), fd);
        }
    }
}

/// Makes sure descriptors 0, 1 and 2 are open (on /dev/null if they were
/// closed), so that no descriptor we open later takes a standard number and
/// ends up as a guest's stdin or stdout by accident.
pub fn ensure_standard_fds() -> io::Result<()> {
    for fd in 0..3 {
        if !crate::event::is_open(fd) {
            let null = crate::fs::open_read_write("/dev/null", true)?;
            crate::event::dup_onto(std::os::fd::AsFd::as_fd(&null), fd)?;
        }
    }
    Ok(())
}

/// Has the program `command` starts find each `(fd, number)` of
/// `descriptors` open as descriptor `number` (without close-on-exec), for
/// programs told on their command line which descriptors to use. The
/// descriptors are the command's from here on; those the program is not
/// given stay closed in it, as everything close-on-exec does.
pub fn pass_descriptors(command: &mut std::process::Command, descriptors: Vec<(OwnedFd, i32)>) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let above = descriptors.iter().map(|(_, n)| *n).max().unwrap_or(2).saturating_add(1);
    // Numbered above every target, so that placing one never closes
    // another still to be placed.
    let mut moved = Vec::with_capacity(descriptors.len());
    for (fd, number) in descriptors {
        if number < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        moved.push((crate::event::dup_at_least(fd.as_fd(), above)?, number));
    }
    let placement: Vec<(i32, i32)> = moved.iter().map(|(fd, n)| (fd.as_raw_fd(), *n)).collect();
    // SAFETY: the closure runs in the forked child before exec and calls
    // only dup2, which is async-signal-safe, on descriptors that `moved`
    // (kept alive by the closure, which `command` owns) holds open in the
    // parent and so in the child. dup2 onto another number clears
    // close-on-exec on the copy; the sources, numbered above every target,
    // are never overwritten by an earlier placement.
    unsafe {
        command.pre_exec(move || {
            let _keep = &moved;
            for &(fd, number) in &placement {
                if libc::dup2(fd, number) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_round_trips_and_follows_the_shell() {
        for ws in [
            WaitStatus::Exited(0),
            WaitStatus::Exited(3),
            WaitStatus::Exited(255),
            WaitStatus::Signaled {
                signal: 9,
                core_dumped: false,
            },
            WaitStatus::Signaled {
                signal: 11,
                core_dumped: true,
            },
        ] {
            assert_eq!(WaitStatus::from_raw(ws.to_raw()), Some(ws));
        }
        assert_eq!(WaitStatus::Exited(3).shell_code(), 3);
        assert_eq!(
            WaitStatus::Signaled {
                signal: 9,
                core_dumped: false
            }
            .shell_code(),
            137
        );
    }

    #[test]
    fn a_single_threaded_test_process_is_refused_a_fork_when_threaded() {
        // The test harness runs tests on worker threads: this process has
        // more than one thread, so fork must refuse.
        let count = thread_count().unwrap();
        if count > 1 {
            assert!(fork().is_err());
        }
    }

    #[test]
    fn only_a_writable_mapping_holding_the_whole_range_will_do() {
        let maps = "7ffc0000-7ffc2000 rw-p 00000000 00:00 0 [stack]\n\
                    55550000-55551000 r--p 00000000 08:01 12 /usr/bin/xvisor\n";
        assert!(within_writable_mapping(maps, 0x7ffc1000, 0x7ffc1100));
        assert!(within_writable_mapping(maps, 0x7ffc0000, 0x7ffc2000));
        assert!(!within_writable_mapping(maps, 0x7ffc1f00, 0x7ffc2100));
        assert!(!within_writable_mapping(maps, 0x55550100, 0x55550200));
        assert!(!within_writable_mapping("garbage\n-\nzz-yy rw-p\n", 0, 1));
    }

    #[test]
    fn the_command_line_is_refused_while_threads_run() {
        // The test harness runs tests on worker threads.
        if thread_count().unwrap() > 1 {
            let e = set_command_line("xvisor-test").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        }
        assert_eq!(set_command_line("a\0b").unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn rlimits_read_back() {
        let (soft, hard) = rlimit::get(rlimit::NOFILE).unwrap();
        assert!(soft <= hard);
        rlimit::set(rlimit::NOFILE, soft, hard).unwrap();
    }
}

/// A watcher: a process that shares this one's memory (`CLONE_VM`, so
/// starting it copies no page table and makes no page copy-on-write) and
/// nothing else, and that only waits. It blocks every signal for good (no
/// handler of this process ever runs in it: a blocked signal waits, and a
/// fault it causes takes the default action), ignores the terminal
/// signals, starts its own session, puts `/dev/null` on descriptors 0–2, closes every other descriptor but
/// `keepalive` and `program`, moves to `/`, and takes the name `name`.
/// Then it reads `keepalive` (at most [`WATCHER_TOLD_MAX`] bytes kept)
/// until end-of-file: when what it read contains the line `quit` it exits
/// 0; otherwise it executes `program` (an `O_PATH` descriptor of an ELF
/// file) with `argv` and what it read as one more, last argument, in an
/// empty environment — only then does it get memory of its own, never
/// having touched this process's heap or locks; every signal is still
/// blocked there, for `program` to unblock (the ignored ones are then
/// discarded). Exits 127 if that fails.
///
/// Between spawn and exec it uses nothing but its own stack and buffers
/// (leaked here: it may outlive this process's use of anything) and raw
/// system calls (never libc's, which would write this thread's `errno`).
/// Its exit is reported with `SIGCHLD`, as a forked child's. Only on
/// x86_64 and aarch64 (`Unsupported` elsewhere).
pub fn spawn_watcher(
    keepalive: OwnedFd,
    program: OwnedFd,
    argv: &[CString],
    name: &str,
    quit: &[u8],
) -> io::Result<i32> {
    if !WATCHER_SUPPORTED {
        return Err(io::ErrorKind::Unsupported.into());
    }
    let null = crate::fs::open_read_write("/dev/null", true)?;
    let mut name_bytes = [0u8; 16];
    for (slot, b) in name_bytes.iter_mut().zip(name.bytes().take(15)) {
        *slot = b;
    }
    let mut quit_line = quit.to_vec();
    if quit_line.last() != Some(&b'\n') {
        quit_line.push(b'\n');
    }
    // Leaked on purpose: the watcher reads them for as long as it lives.
    let argv_strings: &'static [CString] = Box::leak(argv.to_vec().into_boxed_slice());
    let mut pointers: Vec<*const libc::c_char> = argv_strings.iter().map(|a| a.as_ptr()).collect();
    let told: *mut u8 = Box::leak(vec![0u8; WATCHER_TOLD_MAX + 1].into_boxed_slice()).as_mut_ptr();
    pointers.push(told.cast_const().cast());
    pointers.push(std::ptr::null());
    let plan: &'static mut WatcherPlan = Box::leak(Box::new(WatcherPlan {
        keepalive: keepalive.as_raw_fd(),
        program: program.as_raw_fd(),
        null: null.as_raw_fd(),
        name: name_bytes,
        quit: Box::leak(quit_line.into_boxed_slice()),
        argv: Box::leak(pointers.into_boxed_slice()).as_mut_ptr(),
        told,
        envp: [std::ptr::null()],
    }));
    const STACK: usize = 64 << 10;
    let page = 4096usize.max(page_size());
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // A guard page below the stack: an overflow faults instead of writing
    // into other memory. The mapping is never unmapped (leaked like the
    // plan): the watcher may outlive everything else here.
    // SAFETY: the first page of the mapping just made, ours alone.
    check_int(unsafe { libc::mprotect(stack, page, libc::PROT_NONE) })?;
    // SAFETY: `stack` + `STACK + page` is the end of the mapping; the
    // stack grows down from there to the guard page.
    let top = unsafe { stack.cast::<u8>().add(STACK + page) };
    // SAFETY: `watcher_main` runs on its own stack, in memory shared with
    // this process, and touches only `plan` (leaked, never written by this
    // process again), its own stack, and raw system calls: no libc state
    // (errno, locks, the heap) and no thread-local storage, which it would
    // share with this thread. Without CLONE_FILES, CLONE_FS, CLONE_SIGHAND
    // and CLONE_THREAD its descriptors, directory and signal actions are
    // its own copies. The descriptors in `plan` stay open here until the
    // clone returned (the watcher has its own copies then).
    let pid = unsafe {
        libc::clone(
            watcher_main,
            top.cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            (plan as *mut WatcherPlan).cast(),
        )
    };
    let pid = check_int(pid)?;
    drop((keepalive, program, null));
    Ok(pid)
}

/// Whether [`spawn_watcher`] works on this architecture.
pub const WATCHER_SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// How much of what the watcher is told on its pipe it keeps.
pub const WATCHER_TOLD_MAX: usize = 64 << 10;

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// What [`spawn_watcher`]'s process reads: prepared by the caller before
/// the clone and never written by it afterwards.
struct WatcherPlan {
    keepalive: i32,
    program: i32,
    null: i32,
    name: [u8; 16],
    quit: &'static [u8],
    /// NULL-terminated; its last argument is `told`.
    argv: *mut *const libc::c_char,
    /// `WATCHER_TOLD_MAX + 1` bytes (room for the final NUL).
    told: *mut u8,
    envp: [*const libc::c_char; 1],
}

/// The signals a watcher ignores (all are blocked).
const WATCHER_IGNORED: [i32; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// The kernel's `struct sigaction` for `rt_sigaction` (no restorer needed
/// for SIG_IGN).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

extern "C" fn watcher_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the leaked plan `spawn_watcher` passed, valid for
    // the rest of this process's life and not written by anyone else.
    let plan = unsafe { &*(arg as *const WatcherPlan) };
    // SAFETY: each call below is a raw system call whose pointer arguments
    // point into this stack frame or into the leaked plan, all valid for
    // the call's duration; none touches libc state.
    unsafe {
        let all: u64 = !0;
        raw::call(
            libc::SYS_rt_sigprocmask,
            &[libc::SIG_SETMASK as usize, &all as *const u64 as usize, 0, 8],
        );
        raw::call(libc::SYS_setsid, &[]);
        let ignore = KernelSigaction {
            handler: 1, // SIG_IGN
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in WATCHER_IGNORED {
            raw::call(
                libc::SYS_rt_sigaction,
                &[sig as usize, &ignore as *const KernelSigaction as usize, 0, 8],
            );
        }
        for n in 0..3 {
            if plan.null != n {
                raw::call(libc::SYS_dup3, &[plan.null as usize, n as usize, 0]);
            }
        }
        let (low, high) = if plan.keepalive < plan.program {
            (plan.keepalive, plan.program)
        } else {
            (plan.program, plan.keepalive)
        };
        for (first, last) in [(3, low - 1), (low + 1, high - 1), (high + 1, i32::MAX)] {
            if first <= last {
                raw::call(libc::SYS_close_range, &[first as usize, last as u32 as usize, 0]);
            }
        }
        raw::call(libc::SYS_chdir, &[c"/".as_ptr() as usize]);
        raw::call(
            libc::SYS_prctl,
            &[libc::PR_SET_NAME as usize, plan.name.as_ptr() as usize, 0, 0, 0],
        );
        let mut len = 0usize;
        let mut scratch = [0u8; 512];
        loop {
            let want = if len < WATCHER_TOLD_MAX {
                WATCHER_TOLD_MAX - len
            } else {
                scratch.len()
            };
            let into = if len < WATCHER_TOLD_MAX {
                plan.told.add(len)
            } else {
                scratch.as_mut_ptr()
            };
            let n = raw::call(libc::SYS_read, &[plan.keepalive as usize, into as usize, want]);
            if n == -(libc::EINTR as isize) {
                continue;
            }
            if n <= 0 {
                break;
            }
            if len < WATCHER_TOLD_MAX {
                len += n as usize;
            }
        }
        *plan.told.add(len) = 0;
        let told = std::slice::from_raw_parts(plan.told, len);
        if has_line(told, plan.quit) {
            raw::call(libc::SYS_exit, &[0]);
        }
        // Stray NULs would cut the argument short: the program sees lines.
        for i in 0..len {
            if *plan.told.add(i) == 0 {
                *plan.told.add(i) = b'\n';
            }
        }
        raw::call(
            libc::SYS_execveat,
            &[
                plan.program as usize,
                c"".as_ptr() as usize,
                plan.argv as usize,
                plan.envp.as_ptr() as usize,
                libc::AT_EMPTY_PATH as usize,
            ],
        );
        raw::call(libc::SYS_exit, &[127]);
    }
    127
}

/// Whether `text` holds `line` (which ends in a newline) at its start or
/// right after a newline. No allocation, no panic.
fn has_line(text: &[u8], line: &[u8]) -> bool {
    let mut start = 0;
    while start + line.len() <= text.len() {
        if text.get(start..start + line.len()) == Some(line) {
            return true;
        }
        match text.get(start..).and_then(|rest| rest.iter().position(|b| *b == b'\n')) {
            Some(at) => start += at + 1,
            None => return false,
        }
    }
    false
}

/// System calls without libc: no `errno` written, no lock taken.
mod raw {
    /// Up to six arguments; the kernel's return value (`-errno` on failure).
    ///
    /// # Safety
    /// The arguments must be what system call `nr` expects, pointers valid
    /// for what it reads and writes.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn call(nr: libc::c_long, args: &[usize]) -> isize {
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        let ret: isize;
        // SAFETY: the caller's contract; the kernel clobbers rcx and r11.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a(0), in("rsi") a(1), in("rdx") a(2),
                in("r10") a(3), in("r8") a(4), in("r9") a(5),
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// See the x86_64 version.
    ///
    /// # Safety
    /// As there.
    #[cfg(target_arch = "aarch64")]
    pub(super) unsafe fn call(nr: libc::c_long, args: &[usize]) -> isize {
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        let ret: isize;
        // SAFETY: the caller's contract.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") nr as usize,
                inlateout("x0") a(0) => ret,
                in("x1") a(1), in("x2") a(2), in("x3") a(3), in("x4") a(4), in("x5") a(5),
                options(nostack),
            );
        }
        ret
    }

    /// Never reached: [`super::spawn_watcher`] refuses other architectures.
    ///
    /// # Safety
    /// None needed.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn call(_nr: libc::c_long, _args: &[usize]) -> isize {
        -(libc::ENOSYS as isize)
    }
}

#[cfg(test)]
mod watcher_tests {
    use super::has_line;

    #[test]
    fn the_quit_line_is_found_only_as_a_whole_line() {
        assert!(has_line(b"finished\n", b"finished\n"));
        assert!(has_line(b"/a/b\nfinished\n", b"finished\n"));
        assert!(!has_line(b"/a/finished\n", b"finished\n"));
        assert!(!has_line(b"finished", b"finished\n"));
        assert!(!has_line(b"", b"finished\n"));
    }
}
