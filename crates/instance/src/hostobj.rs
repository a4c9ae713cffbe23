//! Host objects handed in are used, not owned (DESIGN.md, "Identity").
//!
//! The descriptors an instance is given (xvisor's stdio, an exec
//! session's) are host objects: the caller's terminal, an output file, a
//! pipe. Where the guest's ids are the caller's (a rootless instance maps
//! its root onto the caller), the kernel lets the guest change their
//! metadata as their owner — make the caller's terminal world-readable,
//! leave an output file setuid-caller. So there every call that changes a
//! file's mode, owner, times, extended attributes or flags
//! (`table::METADATA_CALLS`; `ioctl` `FS_IOC_SETFLAGS`, `FS_IOC_FSSETXATTR`)
//! is trapped and performed here: the file the call names is taken once
//! (the guest's descriptor duplicated with `pidfd_getfd`, or its path
//! resolved in the guest's root as an `O_PATH` handle), decided on (refused
//! when it is one of the host objects handed in), and changed through that
//! same handle. Another thread swapping the descriptor or the path
//! afterwards changes nothing here: the decision and the change are on one
//! file, and the kernel never looks the guest's argument up again.
//!
//! A controlling terminal (`ioctl(fd, TIOCSCTTY)`) is decided on the
//! terminal too: a pty of the instance's own devpts may become one (what
//! `script`, `tmux` and sshd-like programs make), a terminal of the host
//! may not. That call must be made by the kernel for the caller, so the
//! supervisor answers "continue" only when no other task shares the
//! caller's descriptor table: the caller, stopped in the call, is then
//! the only one that could change the descriptor, and no task can start
//! sharing the table (only a task sharing it can create one that does).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use xvisor_kernel::dispatch::{errno, Decision};
use xvisor_sys::attr::{self, Time};

use crate::metadata_agent::Change;
use xvisor_sys::seccomp::{self, Notification};

use crate::perform::Denied;

/// The host objects handed into an instance, as (device, inode), and who
/// changes the metadata of the others.
#[derive(Debug, Default)]
pub(crate) struct HandedIn {
    objects: Mutex<Vec<(u64, u64)>>,
    ids: RootlessIds,
}

/// How a rootless instance's guest ids reach the host (see
/// [`rootless_ids`]).
#[derive(Debug, Default)]
pub(crate) struct RootlessIds {
    /// With subordinate ids mapped: the agent that makes changes with the
    /// guest's credentials.
    agent: Option<crate::metadata_agent::Agent>,
    /// Subordinate ids are mapped: the agent is to be started
    /// ([`RootlessIds::start_agent`]).
    wants_agent: bool,
    /// With one id mapped: why, said once, at the first change of owner
    /// the single id cannot make.
    single: Option<xvisor_confine::identity::SingleId>,
    said: std::sync::atomic::AtomicBool,
}

/// Chooses the id maps of an instance started by an unprivileged caller
/// that wants ids of its own (`own_host_ids`, not `--userns host`; not an
/// engine's maps): its subordinate ids when it has them and the helpers
/// that map them, with the metadata agent to start for them
/// ([`RootlessIds::start_agent`]); else today's single id, and why.
pub(crate) fn rootless_ids(spec: &mut crate::spec::InstanceSpec) -> std::io::Result<RootlessIds> {
    let engines = matches!(spec.root.base, xvisor_confine::RootBase::Bundle { .. });
    let (euid, egid) = (xvisor_sys::process::geteuid(), xvisor_sys::process::getegid());
    if euid == 0 || engines || !spec.own_host_ids || spec.id_maps.is_some() {
        return Ok(RootlessIds::default());
    }
    match xvisor_confine::identity::subordinate_maps(euid, egid, spec.uid, spec.gid) {
        Ok(maps) => {
            spec.id_maps = Some(maps);
            Ok(RootlessIds {
                wants_agent: true,
                ..RootlessIds::default()
            })
        }
        Err(why) => Ok(RootlessIds {
            single: Some(why),
            ..RootlessIds::default()
        }),
    }
}

impl RootlessIds {
    /// Starts the metadata agent if the ids need one. The process must
    /// still be single-threaded, and in its final cgroup: the agent is born
    /// where the supervisor is (a delegated cgroup it stayed in would
    /// refuse controllers, as it holds a process).
    pub(crate) fn start_agent(&mut self) -> std::io::Result<()> {
        if self.wants_agent && self.agent.is_none() {
            self.agent = Some(crate::metadata_agent::Agent::start()?);
        }
        Ok(())
    }
}

impl HandedIn {
    /// [`Self::of_standard_descriptors`], with the instance's rootless ids.
    pub(crate) fn with_ids(mut self, ids: RootlessIds) -> Self {
        self.ids = ids;
        self
    }

    /// Ends the metadata agent, if any (before the cgroups go).
    pub(crate) fn stop_agent(&self) {
        if let Some(agent) = &self.ids.agent {
            agent.stop();
        }
    }

    /// Once init's user namespace has its maps: the agent moves in.
    pub(crate) fn enter_user_namespace(&self, init_pid: i32) -> std::io::Result<()> {
        match &self.ids.agent {
            Some(agent) => agent.enter(init_pid),
            None => Ok(()),
        }
    }

    /// Remembers the file `fd` names as handed in.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>) {
        if let Ok(id) = attr::identify(fd) {
            let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
            if !objects.contains(&(id.device, id.inode)) {
                objects.push((id.device, id.inode));
            }
        }
    }

    /// The supervisor's own descriptors 0, 1 and 2: what the instance's
    /// first program is given (a standard input the guest does not get is
    /// counted too: protecting it costs nothing). An engine's preserved
    /// descriptors are not: OCI mode keeps the engine's identity rules.
    pub(crate) fn of_standard_descriptors() -> Self {
        let handed = Self::default();
        for n in 0..3 {
            handed.add(xvisor_sys::event::standard(n));
        }
        handed
    }

    /// The one line that says why a change of owner failed, the first
    /// time one does in an instance mapping a single id.
    fn say_single_id(&self, name: &str) -> Option<Denied> {
        let why = self.ids.single.as_ref()?;
        if self.ids.said.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        Some(Denied {
            shown: format!("{name}(to an id this instance does not map)"),
            reason: format!(
                "this rootless instance maps one id, yours ({why}); with subordinate ids in /etc/subuid \
                 and /etc/subgid and uidmap installed it maps them too (said once)"
            ),
        })
    }

    fn holds(&self, id: &attr::Identity) -> bool {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(id.device, id.inode))
    }
}

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;
const PATH_MAX: usize = 4096;
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const ERANGE: i32 = 34;
const E2BIG: i32 = 7;
const ENOTDIR: i32 = 20;
const ENOTTY: i32 = 25;

/// The file a metadata call names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A descriptor of the caller.
    Fd(i32),
    /// A path, relative to a directory descriptor (or the working
    /// directory); empty with `AT_EMPTY_PATH`: the descriptor itself.
    At {
        dirfd: i32,
        path: Vec<u8>,
        follow: bool,
        empty_allowed: bool,
    },
}

/// Reads guest memory once.
struct Guest {
    pid: u32,
}

impl Guest {
    /// A NUL-terminated string of at most `max` bytes (without the NUL):
    /// EFAULT when unreadable, `too_long` when longer.
    fn string(&self, address: u64, max: usize, too_long: i32) -> Result<Vec<u8>, i32> {
        if address == 0 {
            return Err(errno::EFAULT);
        }
        let mut buf = vec![0u8; max + 1];
        let got = seccomp::read_guest_memory(self.pid, address, &mut buf).unwrap_or(0);
        match buf[..got].iter().position(|&b| b == 0) {
            Some(end) => {
                buf.truncate(end);
                Ok(buf)
            }
            None if got == buf.len() => Err(too_long),
            None => Err(errno::EFAULT),
        }
    }

    fn path(&self, address: u64) -> Result<Vec<u8>, i32> {
        self.string(address, PATH_MAX - 1, errno::ENAMETOOLONG)
    }

    fn bytes(&self, address: u64, length: usize) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; length];
        if length == 0 {
            return Ok(buf);
        }
        let got = seccomp::read_guest_memory(self.pid, address, &mut buf).unwrap_or(0);
        if got < length {
            return Err(errno::EFAULT);
        }
        Ok(buf)
    }

    /// `count` 64-bit words.
    fn words<const N: usize>(&self, address: u64) -> Result<[i64; N], i32> {
        let bytes = self.bytes(address, N * 8)?;
        let mut words = [0i64; N];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = i64::from_ne_bytes(chunk.try_into().map_err(|_| errno::EFAULT)?);
        }
        Ok(words)
    }

    /// Two `struct timeval`s (`utimes`, `futimesat`), as times.
    fn timevals(&self, address: u64) -> Result<Option<[Time; 2]>, i32> {
        if address == 0 {
            return Ok(None);
        }
        let [s0, us0, s1, us1] = self.words::<4>(address)?;
        let time = |seconds: i64, micros: i64| {
            if (0..1_000_000).contains(&micros) {
                Ok(Time {
                    seconds,
                    nanoseconds: micros * 1000,
                })
            } else {
                Err(errno::EINVAL)
            }
        };
        Ok(Some([time(s0, us0)?, time(s1, us1)?]))
    }

    /// Two `struct timespec`s (`utimensat`): the kernel checks them.
    fn timespecs(&self, address: u64) -> Result<Option<[Time; 2]>, i32> {
        if address == 0 {
            return Ok(None);
        }
        let [s0, n0, s1, n1] = self.words::<4>(address)?;
        Ok(Some([
            Time {
                seconds: s0,
                nanoseconds: n0,
            },
            Time {
                seconds: s1,
                nanoseconds: n1,
            },
        ]))
    }

    fn xattr_name(&self, address: u64) -> Result<Vec<u8>, i32> {
        let name = self.string(address, XATTR_NAME_MAX, ERANGE)?;
        if name.is_empty() {
            return Err(ERANGE);
        }
        Ok(name)
    }

    fn xattr_value(&self, address: u64, size: u64) -> Result<Vec<u8>, i32> {
        let size = usize::try_from(size).map_err(|_| E2BIG)?;
        if size > XATTR_SIZE_MAX {
            return Err(E2BIG);
        }
        self.bytes(address, size)
    }
}

fn fd_of(register: u64) -> i32 {
    register as u32 as i32
}

/// `*at` flags: only these two are known to the calls here.
fn at_flags(register: u64) -> Result<(bool, bool), i32> {
    let flags = register & 0xffff_ffff;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(errno::EINVAL);
    }
    Ok((flags & AT_SYMLINK_NOFOLLOW == 0, flags & AT_EMPTY_PATH != 0))
}

/// Decodes a metadata call: the file it names and what it changes, its
/// memory arguments copied once. `Ok(None)`: a call answered ENOSYS
/// (`file_setattr`: programs fall back to `ioctl(FS_IOC_FSSETXATTR)`).
// Long: one arm per metadata call, each copying its memory arguments once.
fn decode(nr: i64, a: [u64; 6], guest: &Guest) -> Result<Option<(Target, Change)>, i32> {
    let at = |dirfd: u64, path: u64, follow: bool, empty_allowed: bool| -> Result<Target, i32> {
        Ok(Target::At {
            dirfd: fd_of(dirfd),
            path: guest.path(path)?,
            follow,
            empty_allowed,
        })
    };
    let cwd = AT_FDCWD as u32 as u64;
    let mode = |r: u64| Change::Mode(r as u32);
    let owner = |u: u64, g: u64| Change::Owner(u as u32, g as u32);
    // A NULL path names the directory descriptor itself (futimens).
    let fd_or_at = |dirfd: u64, path: u64, follow: bool, empty: bool| -> Result<Target, i32> {
        match path {
            0 if fd_of(dirfd) == AT_FDCWD => Err(errno::EFAULT),
            0 => Ok(Target::Fd(fd_of(dirfd))),
            _ => at(dirfd, path, follow, empty),
        }
    };
    let set_xattr = |name: u64, value: u64, size: u64, flags: u64| -> Result<Change, i32> {
        Ok(Change::SetXattr {
            name: guest.xattr_name(name)?,
            value: guest.xattr_value(value, size)?,
            flags: flags as u32,
        })
    };
    let decoded = match nr {
        16 => {
            let request = a[1] as u32;
            let length = if request == attr::FS_IOC_SETFLAGS { 4 } else { 28 };
            (
                Target::Fd(fd_of(a[0])),
                Change::Flags(request, guest.bytes(a[2], length)?),
            )
        }
        90 => (at(cwd, a[0], true, false)?, mode(a[1])),
        91 => (Target::Fd(fd_of(a[0])), mode(a[1])),
        92 => (at(cwd, a[0], true, false)?, owner(a[1], a[2])),
        93 => (Target::Fd(fd_of(a[0])), owner(a[1], a[2])),
        94 => (at(cwd, a[0], false, false)?, owner(a[1], a[2])),
        132 => {
            let times = match a[1] {
                0 => None,
                address => {
                    let [access, modification] = guest.words::<2>(address)?;
                    Some([access, modification].map(|seconds| Time {
                        seconds,
                        nanoseconds: 0,
                    }))
                }
            };
            (at(cwd, a[0], true, false)?, Change::Times(times))
        }
        188 | 189 => (at(cwd, a[0], nr == 188, false)?, set_xattr(a[1], a[2], a[3], a[4])?),
        190 => (Target::Fd(fd_of(a[0])), set_xattr(a[1], a[2], a[3], a[4])?),
        197 | 198 => (
            at(cwd, a[0], nr == 197, false)?,
            Change::RemoveXattr(guest.xattr_name(a[1])?),
        ),
        199 => (Target::Fd(fd_of(a[0])), Change::RemoveXattr(guest.xattr_name(a[1])?)),
        235 => (at(cwd, a[0], true, false)?, Change::Times(guest.timevals(a[1])?)),
        260 => {
            let (follow, empty) = at_flags(a[4])?;
            (at(a[0], a[1], follow, empty)?, owner(a[2], a[3]))
        }
        261 => (fd_or_at(a[0], a[1], true, false)?, Change::Times(guest.timevals(a[2])?)),
        268 => (at(a[0], a[1], true, false)?, mode(a[2])),
        280 => {
            let (follow, empty) = at_flags(a[3])?;
            if a[1] == 0 && !follow {
                return Err(errno::EINVAL);
            }
            (
                fd_or_at(a[0], a[1], follow, empty)?,
                Change::Times(guest.timespecs(a[2])?),
            )
        }
        452 => {
            let (follow, empty) = at_flags(a[3])?;
            (at(a[0], a[1], follow, empty)?, mode(a[2]))
        }
        463 => {
            let (follow, empty) = at_flags(a[2])?;
            // struct xattr_args { u64 value; u32 size; u32 flags; }
            if a[5] != 16 {
                return Err(errno::EINVAL);
            }
            let args = guest.bytes(a[4], 16)?;
            let word = |range: std::ops::Range<usize>| {
                args.get(range)
                    .map(|b| b.iter().rev().fold(0u64, |v, &byte| (v << 8) | u64::from(byte)))
                    .unwrap_or(0)
            };
            let (value, size, flags) = (word(0..8), word(8..12), word(12..16));
            (at(a[0], a[1], follow, empty)?, set_xattr(a[3], value, size, flags)?)
        }
        466 => {
            let (follow, empty) = at_flags(a[2])?;
            (
                at(a[0], a[1], follow, empty)?,
                Change::RemoveXattr(guest.xattr_name(a[3])?),
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(decoded))
}

/// Where the guest's path begins: its working directory, or the
/// directory a descriptor names, as a path in the instance (what
/// `/proc/TID/cwd` and `/proc/TID/fd/N` read from the host's namespace:
/// the path below the instance's root).
fn base_of(tid: i32, pidfd: BorrowedFd<'_>, dirfd: i32) -> Result<Vec<u8>, i32> {
    use std::os::unix::ffi::OsStrExt;
    let link = if dirfd == AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else {
        let dir = taken(seccomp::pidfd_getfd(pidfd, dirfd), errno::EBADF)?;
        if !attr::identify(dir.as_fd()).is_ok_and(|id| id.is_directory()) {
            return Err(ENOTDIR);
        }
        format!("/proc/{tid}/fd/{dirfd}")
    };
    let target = std::fs::read_link(link).map_err(|_| errno::ENOENT)?;
    let bytes = target.as_os_str().as_bytes().to_vec();
    if !bytes.starts_with(b"/") {
        return Err(errno::ENOENT);
    }
    Ok(bytes)
}

/// A failed `pidfd_getfd`: the caller is gone (ESRCH), or its descriptor
/// is not open (`otherwise`).
fn taken(got: std::io::Result<OwnedFd>, otherwise: i32) -> Result<OwnedFd, i32> {
    got.map_err(|e| match e.raw_os_error() {
        Some(xvisor_sys::errno::ESRCH) => xvisor_sys::errno::ESRCH,
        _ => otherwise,
    })
}

/// The file `target` names, taken once: a duplicate of the descriptor, or
/// the path resolved in the guest's root (symlinks cannot climb out, magic
/// links are not followed: ELOOP), the caller's `/proc/self/fd/N` and its
/// usual aliases taken as its descriptor N.
/// With the metadata `agent`, a path is looked up with the guest's
/// credentials (search permission on its directories), not the caller's.
fn take(
    tid: i32,
    pidfd: BorrowedFd<'_>,
    target: &Target,
    agent: Option<&crate::metadata_agent::Agent>,
) -> Result<OwnedFd, i32> {
    match target {
        Target::Fd(fd) if *fd < 0 => Err(errno::EBADF),
        Target::Fd(fd) => {
            let file = taken(seccomp::pidfd_getfd(pidfd, *fd), errno::EBADF)?;
            // `fchmod`, `fchown`, `fsetxattr`, `futimens` … take an open
            // file, not an `O_PATH` handle.
            match attr::is_path_only(file.as_fd()) {
                Ok(false) => Ok(file),
                _ => Err(errno::EBADF),
            }
        }
        Target::At {
            dirfd,
            path,
            empty_allowed,
            ..
        } if path.is_empty() => match (*empty_allowed, *dirfd) {
            (false, _) => Err(errno::ENOENT),
            (true, AT_FDCWD) => xvisor_sys::fs::open_path(None, &format!("/proc/{tid}/cwd")).map_err(|_| errno::ENOENT),
            (true, fd) => taken(seccomp::pidfd_getfd(pidfd, fd), errno::EBADF),
        },
        Target::At {
            dirfd, path, follow, ..
        } => {
            let absolute = if path.starts_with(b"/") {
                path.clone()
            } else {
                let mut base = base_of(tid, pidfd, *dirfd)?;
                if !base.ends_with(b"/") {
                    base.push(b'/');
                }
                base.extend_from_slice(path);
                base
            };
            let root = xvisor_sys::fs::open_path(None, &format!("/proc/{tid}/root")).map_err(|_| errno::ENOENT)?;
            let opened = match agent {
                Some(agent) => agent.open_in_root(tid, root.as_fd(), &absolute, *follow),
                None => xvisor_sys::fs::open_object_in_root(root.as_fd(), &absolute, *follow)
                    .map_err(|e| e.raw_os_error().unwrap_or(errno::ENOENT)),
            };
            match opened {
                Ok(file) => Ok(file),
                Err(e) => {
                    // The supervisor, outside the instance's pid namespace,
                    // has no /proc/self there, and follows no magic link:
                    // the caller's own descriptor by its usual paths is
                    // taken as the descriptor.
                    match own_descriptor(root.as_fd(), &absolute) {
                        Some(fd) if *follow && matches!(e, errno::ENOENT | xvisor_sys::errno::ELOOP) => {
                            taken(seccomp::pidfd_getfd(pidfd, fd), e)
                        }
                        _ => Err(e),
                    }
                }
            }
        }
    }
}

/// The descriptor a path names when it is one of the caller's own
/// descriptors by its usual names: `/proc/self/fd/N`,
/// `/proc/thread-self/fd/N`, and, where the instance's `/dev/fd` and
/// `/dev/std{in,out,err}` are the usual symlinks to them, `/dev/fd/N` and
/// `/dev/stdout` …; `..` anywhere is not taken.
fn own_descriptor(root: BorrowedFd<'_>, path: &[u8]) -> Option<i32> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    if parts.contains(&&b".."[..]) {
        return None;
    }
    let number = |n: &[u8]| -> Option<i32> {
        let text = std::str::from_utf8(n).ok()?;
        (text.bytes().all(|b| b.is_ascii_digit()) && text.len() < 10)
            .then(|| text.parse().ok())
            .flatten()
    };
    let links_to = |link: &str, target: &[u8]| {
        xvisor_sys::fs::open_entry_in_root(root, link)
            .and_then(|l| xvisor_sys::fs::symlink_target(l.as_fd()))
            .is_ok_and(|t| t == target)
    };
    match parts[..] {
        [b"proc", b"self" | b"thread-self", b"fd", n] => number(n),
        [b"dev", b"fd", n] if links_to("/dev/fd", b"/proc/self/fd") => number(n),
        [b"dev", name] => {
            let n = match name {
                b"stdin" => 0,
                b"stdout" => 1,
                b"stderr" => 2,
                _ => return None,
            };
            links_to(
                &format!("/dev/{}", String::from_utf8_lossy(name)),
                format!("/proc/self/fd/{n}").as_bytes(),
            )
            .then_some(n)
        }
        _ => None,
    }
}

/// A guest id as the host knows it, by the instance's map
/// (`/proc/TID/uid_map` or `gid_map`); `u32::MAX` stays (unchanged).
fn host_id(tid: i32, map: &str, id: u32) -> Result<u32, i32> {
    if id == u32::MAX {
        return Ok(id);
    }
    let text = std::fs::read_to_string(format!("/proc/{tid}/{map}")).map_err(|_| errno::EINVAL)?;
    text.lines()
        .find_map(|line| {
            let v: Vec<u32> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            match v[..] {
                [inside, outside, count] if id >= inside && u64::from(id) < u64::from(inside) + u64::from(count) => {
                    outside.checked_add(id - inside)
                }
                _ => None,
            }
        })
        .ok_or(errno::EINVAL)
}

fn failed(e: std::io::Error) -> Decision {
    Decision::Errno(e.raw_os_error().unwrap_or(errno::EINVAL))
}

/// Performs a metadata call of the guest (see the module's comment): its
/// answer, and the refusal to name when it named a host object handed in.
/// `None` when the caller is gone.
pub(crate) fn change_metadata(
    notification: &Notification,
    listener: BorrowedFd<'_>,
    handed_in: &HandedIn,
    name: &str,
) -> Option<(Decision, Option<Denied>)> {
    let guest = Guest { pid: notification.pid };
    let decoded = decode(i64::from(notification.nr), notification.args, &guest);
    let tid = i32::try_from(notification.pid).unwrap_or(-1);
    let pidfd = xvisor_sys::process::pidfd_open_thread(tid).ok();
    // What was read is the thread's memory while it waits in this call,
    // and the pidfd names it, not a process that took over its id.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let pidfd = pidfd?;
    let (target, change) = match decoded {
        Ok(Some(call)) => call,
        Ok(None) => return Some((Decision::Errno(errno::ENOSYS), None)),
        Err(e) => return Some((Decision::Errno(e), None)),
    };
    let file = match take(tid, pidfd.as_fd(), &target, handed_in.ids.agent.as_ref()) {
        Ok(file) => file,
        Err(xvisor_sys::errno::ESRCH) => return None,
        Err(e) => return Some((Decision::Errno(e), None)),
    };
    let id = match attr::identify(file.as_fd()) {
        Ok(id) => id,
        Err(e) => return Some((failed(e), None)),
    };
    if handed_in.holds(&id) {
        let denied = Denied {
            shown: format!("{name}(a file handed in)"),
            reason: "a host object handed to the instance is used, not owned: its mode, owner, times and extended attributes are not the guest's to change".into(),
        };
        return Some((Decision::Errno(errno::EPERM), Some(denied)));
    }
    if let Some(agent) = &handed_in.ids.agent {
        let done = agent.change(tid, file.as_fd(), &change);
        return Some((done.map_or_else(Decision::Errno, |()| Decision::Value(0)), None));
    }
    let done = match change {
        Change::Mode(mode) => attr::chmod(file.as_fd(), mode),
        Change::Owner(uid, gid) => {
            let ids = host_id(tid, "uid_map", uid).and_then(|u| Ok((u, host_id(tid, "gid_map", gid)?)));
            match ids {
                Ok((uid, gid)) => attr::chown(file.as_fd(), uid, gid),
                Err(e) => return Some((Decision::Errno(e), handed_in.say_single_id(name))),
            }
        }
        Change::Times(times) => attr::set_times(file.as_fd(), times),
        Change::SetXattr { name, value, flags } => attr::set_xattr(file.as_fd(), &name, &value, flags),
        Change::RemoveXattr(name) => attr::remove_xattr(file.as_fd(), &name),
        Change::Flags(request, argument) => attr::set_flags(file.as_fd(), request, &argument),
    };
    Some((done.map_or_else(failed, |()| Decision::Value(0)), None))
}

/// `ioctl(fd, TIOCSCTTY, arg)` (see the module's comment). `devpts`: the
/// device of the instance's own `/dev/pts`; `others`: the host ids of
/// every other task of the instance. `None` when the caller is gone.
pub(crate) fn take_controlling_terminal(
    notification: &Notification,
    listener: BorrowedFd<'_>,
    devpts: Option<u64>,
    others: &[i32],
) -> Option<(Decision, Option<Denied>)> {
    let tid = i32::try_from(notification.pid).unwrap_or(-1);
    let fd = fd_of(notification.args[0]);
    let pidfd = xvisor_sys::process::pidfd_open_thread(tid).ok();
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let pidfd = pidfd?;
    let terminal = match taken(seccomp::pidfd_getfd(pidfd.as_fd(), fd), errno::EBADF) {
        Ok(t) => t,
        Err(xvisor_sys::errno::ESRCH) => return None,
        Err(e) => return Some((Decision::Errno(e), None)),
    };
    let Ok(id) = attr::identify(terminal.as_fd()) else {
        return Some((Decision::Errno(errno::EBADF), None));
    };
    if !id.is_character_device() || !xvisor_sys::tty::is_terminal(terminal.as_fd()) {
        return Some((Decision::Errno(ENOTTY), None));
    }
    let refused = |why: &str| {
        Some((
            Decision::Errno(errno::EPERM),
            Some(Denied {
                shown: "ioctl(TIOCSCTTY)".into(),
                reason: why.to_string(),
            }),
        ))
    };
    // A master names its slave's terminal: the slave's devpts decides.
    let slave_device = if is_pty_slave(&id) {
        Some(id.device)
    } else {
        xvisor_sys::tty::slave_of_master(terminal.as_fd())
            .ok()
            .and_then(|slave| attr::identify(slave.as_fd()).ok())
            .filter(is_pty_slave)
            .map(|slave| slave.device)
    };
    if devpts.is_none() || slave_device != devpts {
        return refused(
            "a terminal of the host cannot become the controlling terminal of a process of the instance (only a pty of the instance's own /dev/pts can)",
        );
    }
    // The kernel looks the descriptor up again after "continue": safe only
    // when no other task could replace it meanwhile.
    // A task that has just ended shares nothing; any other failure to
    // tell counts as sharing (fail closed).
    let shared = others.iter().filter(|&&other| other != tid).any(|&other| {
        match xvisor_sys::process::same_descriptor_table(tid, other) {
            Ok(same) => same,
            Err(e) => e.raw_os_error() != Some(xvisor_sys::errno::ESRCH),
        }
    });
    if shared {
        return refused(
            "the caller shares its descriptor table with another task, which could replace the terminal after the check: make the controlling terminal from a process of its own (as after fork)",
        );
    }
    Some((Decision::Continue, None))
}

/// The device of the instance's own `/dev/pts`, from init's mount table
/// (the guest can neither mount nor change init's root; init's root itself
/// is not the rootless supervisor's to open, its mount table is); `None`
/// without one.
pub(crate) fn devpts_of(init_pid: i32) -> Option<u64> {
    let table = std::fs::read_to_string(format!("/proc/{init_pid}/mountinfo")).ok()?;
    devpts_in(&table)
}

/// The device (as `st_dev`) of the devpts mounted last on `/dev/pts` in a
/// `/proc/PID/mountinfo` table.
fn devpts_in(mountinfo: &str) -> Option<u64> {
    mountinfo.lines().rev().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        let fields: Vec<&str> = mount.split(' ').collect();
        let (device, point) = (fields.get(2)?, fields.get(4)?);
        if *point != "/dev/pts" || filesystem.split(' ').next() != Some("devpts") {
            return None;
        }
        let (major, minor) = device.split_once(':')?;
        let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
        // The kernel's encoding of a device number in `st_dev`.
        Some((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32))
    })
}

/// A slave of a UNIX 98 pty (majors 136–143).
fn is_pty_slave(id: &attr::Identity) -> bool {
    id.is_character_device() && (136..=143).contains(&id.rdev_major())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_devpts_is_found_in_init_s_mount_table() {
        let table = "99 1 0:40 / / rw - overlay overlay rw\n\
            105 99 0:48 / /dev rw,nosuid - tmpfs tmpfs rw\n\
            106 105 0:49 / /dev/pts rw,nosuid,noexec - devpts devpts rw,mode=620\n\
            107 105 0:1234 / /dev/ptsx rw - devpts devpts rw\n";
        assert_eq!(devpts_in(table), Some(49));
        // A large minor number, encoded as the kernel encodes st_dev.
        assert_eq!(
            devpts_in("1 1 259:300 / /dev/pts rw - devpts devpts rw\n"),
            Some((300 & 0xff) | (259 << 8) | ((300 & !0xff) << 12))
        );
        assert_eq!(devpts_in("1 1 0:49 / /dev/pts rw - tmpfs tmpfs rw\n"), None);
        for garbage in [
            "",
            "\n\n",
            " - ",
            "a b c d /dev/pts - devpts",
            "1 1 x:y / /dev/pts rw - devpts d",
        ] {
            assert_eq!(devpts_in(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_callers_own_descriptors_are_known_by_their_usual_paths() {
        let root = xvisor_sys::fs::open_path(None, "/").unwrap();
        let own = |path: &str| own_descriptor(root.as_fd(), path.as_bytes());
        assert_eq!(own("/proc/self/fd/3"), Some(3));
        assert_eq!(own("//proc/./thread-self/fd/12"), Some(12));
        for other in [
            "/proc/self/../self/fd/1",
            "/proc/self/fd/x",
            "/proc/self/fd/-1",
            "/proc/self/fd/99999999999",
            "/proc/1/fd/1",
            "/proc/self/fd",
            "/proc/self/fd/1/x",
            "/dev/stdfoo",
            "",
        ] {
            assert_eq!(own(other), None, "{other}");
        }
    }

    #[test]
    fn at_flags_are_checked() {
        assert_eq!(at_flags(0), Ok((true, false)));
        assert_eq!(at_flags(0x100), Ok((false, false)));
        assert_eq!(at_flags(0x1100), Ok((false, true)));
        assert_eq!(at_flags(0x200), Err(errno::EINVAL));
        // Only the low 32 bits are the kernel's int.
        assert_eq!(at_flags(0xffff_ffff_0000_0000), Ok((true, false)));
    }

    #[test]
    fn calls_without_memory_arguments_decode_from_registers() {
        let guest = Guest { pid: 0 };
        assert_eq!(
            decode(91, [1, 0o4755, 0, 0, 0, 0], &guest),
            Ok(Some((Target::Fd(1), Change::Mode(0o4755))))
        );
        assert_eq!(
            decode(93, [2, u64::from(u32::MAX), 0, 0, 0, 0], &guest),
            Ok(Some((Target::Fd(2), Change::Owner(u32::MAX, 0))))
        );
        // futimens: utimensat(fd, NULL, NULL, 0).
        assert_eq!(
            decode(280, [1, 0, 0, 0, 0, 0], &guest),
            Ok(Some((Target::Fd(1), Change::Times(None))))
        );
        assert_eq!(decode(280, [1, 0, 0, 0x100, 0, 0], &guest), Err(errno::EINVAL));
        assert_eq!(
            decode(280, [AT_FDCWD as u32 as u64, 0, 0, 0, 0, 0], &guest),
            Err(errno::EFAULT)
        );
        assert_eq!(decode(469, [0; 6], &guest), Ok(None));
    }
}
