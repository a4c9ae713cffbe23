//! Opens under `[fs]` patterns, performed by the supervisor.
//!
//! The guest's Landlock domain holds the plain paths of `[fs].read` and
//! `[fs].write` and knows nothing of their patterns: a file only a pattern
//! grants is refused by the kernel. Every open is trapped; the supervisor
//! copies the path once, resolves it inside the guest's root (with the
//! guest's file-system ids, so that the directories on the way are
//! searched as the guest would search them), finds the file it names, and
//! decides on that file's path. When a pattern grants the open, the
//! supervisor opens that very file again with the guest's flags and ids
//! and puts the descriptor into the guest as the call's answer (ADDFD with
//! SEND). Otherwise the call goes on in the kernel as made: there, the
//! guest's Landlock domain decides, whatever the guest's memory says by
//! then, and it grants nothing a pattern grants. So no answer here lets
//! the kernel reach a file that only a decision on memory allowed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use xvisor_kernel::dispatch::{errno, Decision};
use xvisor_sys::open_flags as o;
use xvisor_sys::seccomp::{self, Notification};
use xvisor_trap::supervised::{OpenAccess, OpenRules};
use xvisor_trap::table;

/// How a trapped open ends.
#[derive(Debug)]
pub(crate) enum Opened {
    /// No pattern concerns it: the kernel opens (or refuses) it as made.
    Kernel,
    /// It fails with this errno, as the kernel would have failed it.
    Failed(i32),
    /// The supervisor opened the file: this descriptor is the answer.
    File { file: OwnedFd, cloexec: bool },
}

impl Opened {
    /// The answer, for a call that was not given a descriptor.
    pub(crate) fn decision(&self) -> Decision {
        match self {
            Self::Kernel => Decision::Continue,
            Self::Failed(e) => Decision::Errno(*e),
            Self::File { .. } => Decision::Errno(errno::EPERM),
        }
    }
}

/// The `open_how` of `openat2`, first version (24 bytes).
const OPEN_HOW_SIZE: u64 = 24;
const PATH_MAX: usize = 4096;
const AT_FDCWD: i32 = -100;

/// Flags whose meaning an open performed here reproduces; a call with any
/// other is the kernel's (which refuses it, or the pattern's file).
const KNOWN_FLAGS: i32 = o::O_ACCMODE
    | o::O_CREAT
    | o::O_EXCL
    | o::O_NOCTTY
    | o::O_TRUNC
    | o::O_APPEND
    | o::O_NONBLOCK
    | o::O_DSYNC
    | o::O_SYNC
    | o::O_ASYNC
    | o::O_DIRECT
    | o::O_LARGEFILE
    | o::O_DIRECTORY
    | o::O_NOFOLLOW
    | o::O_NOATIME
    | o::O_CLOEXEC;

/// What the open asks, from its registers (and `openat2`'s `open_how`,
/// copied once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    dirfd: i32,
    path: u64,
    flags: i32,
}

fn request(notification: &Notification) -> Option<Request> {
    let a = notification.args;
    let nr = u32::try_from(notification.nr).ok()?;
    let request = match nr {
        table::OPEN => Request {
            dirfd: AT_FDCWD,
            path: a[0],
            flags: a[1] as u32 as i32,
        },
        table::CREAT => Request {
            dirfd: AT_FDCWD,
            path: a[0],
            flags: o::O_CREAT | o::O_WRONLY | o::O_TRUNC,
        },
        table::OPENAT => Request {
            dirfd: a[0] as u32 as i32,
            path: a[1],
            flags: a[2] as u32 as i32,
        },
        table::OPENAT2 => {
            // Any other size, or resolve flags, are the kernel's to judge.
            if a[3] != OPEN_HOW_SIZE {
                return None;
            }
            let mut how = [0u8; OPEN_HOW_SIZE as usize];
            let copied = seccomp::read_guest_memory(notification.pid, a[2], &mut how).ok()?;
            if copied != how.len() {
                return None;
            }
            let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let (flags, resolve) = (word(0), word(2));
            if resolve != 0 {
                return None;
            }
            Request {
                dirfd: a[0] as u32 as i32,
                path: a[1],
                flags: i32::try_from(flags).ok()?,
            }
        }
        _ => return None,
    };
    Some(request)
}

/// What access the flags ask for, or `None` when no pattern can grant the
/// open (it creates, truncates without writing, makes an unnamed file,
/// opens a handle only, or has flags not reproduced here).
fn access(flags: i32) -> Option<OpenAccess> {
    if flags & !KNOWN_FLAGS != 0 || flags & o::O_PATH != 0 {
        return None;
    }
    // O_TMPFILE includes O_DIRECTORY: its own bit is outside KNOWN_FLAGS.
    if flags & (o::O_CREAT | o::O_EXCL) == o::O_CREAT | o::O_EXCL {
        return None;
    }
    match flags & o::O_ACCMODE {
        o::O_RDONLY if flags & o::O_TRUNC == 0 => Some(OpenAccess::Read),
        o::O_WRONLY => Some(OpenAccess::Write),
        o::O_RDWR => Some(OpenAccess::ReadWrite),
        _ => None,
    }
}

/// Copies a NUL-terminated path from the guest, once.
fn copy_path(pid: u32, address: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; PATH_MAX];
    // A path may end just before an unmapped page: read up to each page's
    // end, page by page, until the NUL.
    let mut have = 0;
    while have < buf.len() {
        let at = address.checked_add(have as u64)?;
        let page_end = ((at / 4096) + 1) * 4096;
        let want = usize::try_from(page_end - at).ok()?.min(buf.len() - have);
        let n = seccomp::read_guest_memory(pid, at, &mut buf[have..have + want]).ok()?;
        if let Some(end) = buf[have..have + n].iter().position(|&b| b == 0) {
            buf.truncate(have + end);
            return Some(buf);
        }
        if n < want {
            return None;
        }
        have += n;
    }
    None
}

/// The file-system identity an open is made with: the guest thread's
/// fsuid, fsgid and groups, as host ids (`/proc/TID/status`, read from the
/// host's namespaces).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    fsuid: u32,
    fsgid: u32,
    groups: Vec<u32>,
}

impl Identity {
    fn parse(status: &str) -> Option<Self> {
        let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
        let fs_id = |key: &str| field(key)?.split_whitespace().nth(3)?.parse::<u32>().ok();
        let mut groups: Vec<u32> = field("Groups:")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect();
        groups.sort_unstable();
        Some(Self {
            fsuid: fs_id("Uid:")?,
            fsgid: fs_id("Gid:")?,
            groups,
        })
    }

    /// The serving thread's own (read once per thread: only
    /// [`as_guest`] changes them, and it puts them back).
    fn own() -> Option<Self> {
        thread_local! {
            static OWN: std::cell::OnceCell<Option<Identity>> = const { std::cell::OnceCell::new() };
        }
        OWN.with(|own| {
            own.get_or_init(|| {
                let mut groups = xvisor_sys::process::groups().ok()?;
                groups.sort_unstable();
                Some(Self {
                    fsuid: xvisor_sys::process::geteuid(),
                    fsgid: xvisor_sys::process::getegid(),
                    groups,
                })
            })
            .clone()
        })
    }
}

/// Runs `act` with `guest`'s file-system ids and groups on this thread
/// (root only: the file capabilities leave the effective set with uid 0),
/// then takes the thread's own back. `None` when the thread cannot take
/// them (a rootless supervisor, whose ids are not the guest's), or when the
/// guest is host root (whose capabilities the supervisor's are not): the
/// open is then left to the kernel.
fn as_guest<T>(guest: &Identity, act: impl FnOnce() -> T) -> Option<T> {
    let own = Identity::own()?;
    // Host root in the guest (`--userns host`): the supervisor's own
    // capabilities are not the guest's, and taking uid 0 drops none.
    if guest.fsuid == 0 {
        return None;
    }
    if own == *guest {
        return Some(act());
    }
    if own.fsuid != 0 {
        return None;
    }
    let took = xvisor_sys::process::setgroups(&guest.groups)
        .and_then(|()| xvisor_sys::process::set_fs_ids(guest.fsuid, guest.fsgid));
    let done = took.is_ok().then(act);
    let back = xvisor_sys::process::set_fs_ids(own.fsuid, own.fsgid)
        .and_then(|()| xvisor_sys::process::setgroups(&own.groups));
    if back.is_err() {
        // A serving thread left with a guest's ids would act with them
        // for the next call: nothing to continue with.
        std::process::abort();
    }
    done
}

/// The path of an open `O_PATH` descriptor as the guest sees it: the
/// kernel's name for it, checked to lead, inside the guest's root and
/// without a symlink, to that same file.
fn path_in_root(root: BorrowedFd<'_>, file: BorrowedFd<'_>, id: (u64, u64)) -> Option<String> {
    let name = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let name = name.to_str()?.to_string();
    if !name.starts_with('/') {
        return None;
    }
    let again = xvisor_sys::fs::open_object_in_root(root, name.as_bytes(), false).ok()?;
    (file_id(again.as_fd())? == id).then_some(name)
}

/// The device and inode of the file an `O_PATH` descriptor names.
fn file_id(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    xvisor_sys::fs::stat_fd(fd).ok().map(|st| (st.dev, st.ino))
}

/// Decides one trapped open under `rules`, performing it when a pattern
/// grants it. `None`: the caller is gone.
pub(crate) fn open(rules: &OpenRules, notification: &Notification, listener: BorrowedFd<'_>) -> Option<Opened> {
    let Some(request) = request(notification) else {
        return Some(Opened::Kernel);
    };
    let Some(access) = access(request.flags) else {
        return Some(Opened::Kernel);
    };
    let Some(path) = copy_path(notification.pid, request.path) else {
        return Some(Opened::Kernel);
    };
    if path.is_empty() {
        return Some(Opened::Kernel);
    }
    let host_tid = i32::try_from(notification.pid).ok()?;
    // The path as written, made absolute from the guest's working
    // directory or directory descriptor, as the guest's /proc entries name
    // them now.
    let absolute = if path.starts_with(b"/") {
        path
    } else {
        let base = match request.dirfd {
            AT_FDCWD => format!("/proc/{host_tid}/cwd"),
            fd if fd >= 0 => format!("/proc/{host_tid}/fd/{fd}"),
            _ => return Some(Opened::Kernel),
        };
        let Ok(base) = std::fs::read_link(base) else {
            return Some(Opened::Kernel);
        };
        let mut base = base.into_os_string().into_encoded_bytes();
        if !base.starts_with(b"/") {
            return Some(Opened::Kernel);
        }
        base.push(b'/');
        base.extend_from_slice(&path);
        base
    };
    let Ok(root) = xvisor_sys::fs::open_path(None, &format!("/proc/{host_tid}/root")) else {
        return Some(Opened::Kernel);
    };
    // What was read from /proc is the caller's: the thread is still in
    // this very call.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let follow = request.flags & o::O_NOFOLLOW == 0;
    // Found first with the supervisor's own ids, to decide: only a file a
    // pattern grants is looked for again as the guest (most opens are not
    // under a pattern, and cost no change of ids).
    let Ok(file) = xvisor_sys::fs::open_object_in_root(root.as_fd(), &absolute, follow) else {
        return Some(Opened::Kernel);
    };
    let Ok(found) = xvisor_sys::fs::stat_fd(file.as_fd()) else {
        return Some(Opened::Kernel);
    };
    let (kind, id) = (found.kind, (found.dev, found.ino));
    let Some(name) = path_in_root(root.as_fd(), file.as_fd(), id) else {
        return Some(Opened::Kernel);
    };
    let components: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
    let (granted, flags) = match kind {
        xvisor_sys::fs::FileKind::Regular if request.flags & o::O_DIRECTORY == 0 => {
            (rules.grants_file(&components, access), request.flags)
        }
        xvisor_sys::fs::FileKind::Directory if access == OpenAccess::Read => (
            rules.grants_listing(&components),
            o::O_RDONLY | o::O_DIRECTORY | (request.flags & (o::O_NONBLOCK | o::O_NOATIME)),
        ),
        // FIFOs, devices, sockets, a symlink under O_NOFOLLOW, a
        // directory opened for writing: the kernel's.
        _ => (false, 0),
    };
    // /proc's files check the opener's privileges beyond its ids (ptrace
    // access for a process's environ or memory), which the supervisor's
    // are not: they stay the kernel's (the guest may read /proc anyway).
    if !granted || xvisor_sys::fs::on_procfs(file.as_fd()).unwrap_or(true) {
        return Some(Opened::Kernel);
    }
    let Some(guest) = xvisor_sys::fs::read_small(format!("/proc/{host_tid}/status"))
        .ok()
        .and_then(|s| Identity::parse(&s))
    else {
        return Some(Opened::Kernel);
    };
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    // As the guest: the path resolved again (a directory on the way it may
    // not search stops it, as in the kernel), to the same file, which is
    // then opened for what the guest asked (the kernel checks the file's
    // permission as for the guest's own open).
    let opened = as_guest(&guest, || -> Result<OwnedFd, i32> {
        // Not found so, or renamed meanwhile: the kernel's, as any open
        // no pattern granted (it answers as it would for the guest).
        let again = xvisor_sys::fs::open_object_in_root(root.as_fd(), &absolute, follow).map_err(|_| 0)?;
        if file_id(again.as_fd()) != Some(id) {
            return Err(0);
        }
        xvisor_sys::fs::reopen(again.as_fd(), flags).map_err(|e| e.raw_os_error().unwrap_or(errno::EACCES))
    });
    let opened = match opened {
        Some(Ok(opened)) => opened,
        Some(Err(0)) | None => return Some(Opened::Kernel),
        Some(Err(e)) => return Some(Opened::Failed(e)),
    };
    Some(Opened::File {
        file: opened,
        cloexec: request.flags & o::O_CLOEXEC != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_say_what_access_a_pattern_must_grant() {
        assert_eq!(access(o::O_RDONLY), Some(OpenAccess::Read));
        assert_eq!(
            access(o::O_RDONLY | o::O_CLOEXEC | o::O_DIRECTORY),
            Some(OpenAccess::Read)
        );
        assert_eq!(access(o::O_WRONLY | o::O_APPEND), Some(OpenAccess::Write));
        assert_eq!(access(o::O_RDWR | o::O_CREAT), Some(OpenAccess::ReadWrite));
        // Only the kernel's.
        assert_eq!(access(o::O_WRONLY | o::O_CREAT | o::O_EXCL), None);
        assert_eq!(access(o::O_RDWR | o::O_TMPFILE), None);
        assert_eq!(access(o::O_PATH), None);
        assert_eq!(access(o::O_RDONLY | o::O_TRUNC), None);
        assert_eq!(access(3), None);
        assert_eq!(access(o::O_RDONLY | 0x4000_0000), None);
    }

    #[test]
    fn identities_are_read_from_status() {
        let status = "Uid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t102\nGroups:\t6 5 \n";
        let id = Identity::parse(status).unwrap();
        assert_eq!(
            id,
            Identity {
                fsuid: 1001,
                fsgid: 102,
                groups: vec![5, 6]
            }
        );
        assert!(Identity::parse("Uid:\t1\n").is_none());
    }

    #[test]
    fn paths_are_copied_up_to_their_nul() {
        let text = b"/data/a.csv\0junk";
        let path = copy_path(std::process::id(), text.as_ptr() as u64).unwrap();
        assert_eq!(path, b"/data/a.csv");
        let long = vec![b'a'; PATH_MAX + 10];
        assert!(copy_path(std::process::id(), long.as_ptr() as u64).is_none());
    }
}
