//! The metadata agent: a small process, inside the user namespace of a
//! rootless instance that maps subordinate ids, that makes the metadata
//! changes the supervisor decided on (`crate::hostobj`) with the
//! credentials of the guest thread that asked.
//!
//! A rootless supervisor is the caller on the host: it may change files of
//! the caller only, and the kernel would judge a change it made by the
//! caller's rights, not the guest's. Where the instance maps one id (the
//! caller's) the two are the same and the supervisor changes the file
//! itself. Where it also maps the caller's subordinate ids, a file may
//! belong to any of them and a guest user other than root must not change
//! root's files: the agent, the namespace's owner, takes the thread's file
//! system ids, groups and effective capabilities (read from
//! `/proc/TID/status`, which shows them in the agent's namespace), makes
//! the change through the handle the supervisor took, and goes back. The
//! kernel then decides exactly as it would for the guest.
//!
//! It is forked from the supervisor before anything else runs, enters the
//! instance's user namespace once init has it, holds none of xvisor's
//! descriptors but its socket, and ends with the supervisor (end of file,
//! or its parent-death signal).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use xvisor_sys::attr::{self, Time};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{caps, signal, socket};

/// What a metadata call changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Mode(u32),
    /// Ids inside the instance; `u32::MAX` leaves one as it is.
    Owner(u32, u32),
    /// `None`: both to now.
    Times(Option<[Time; 2]>),
    SetXattr {
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    RemoveXattr(Vec<u8>),
    /// `ioctl(FS_IOC_SETFLAGS)` or `ioctl(FS_IOC_FSSETXATTR)`: the request
    /// and the bytes it reads.
    Flags(u32, Vec<u8>),
}

const EPERM: i32 = 1;
const EINVAL: i32 = 22;
const EIO: i32 = 5;

/// The largest request: an xattr value (64 KiB), its name and the rest.
const MAX_REQUEST: usize = 64 * 1024 + 1024;

#[derive(Debug)]
pub(crate) struct Agent {
    /// `None` once stopped.
    socket: Mutex<Option<OwnedFd>>,
    pid: i32,
}

impl Agent {
    /// Forks the agent. The caller must be single-threaded.
    pub(crate) fn start() -> io::Result<Self> {
        let (ours, theirs) = socket::seqpacket_pair()?;
        match process::fork()? {
            Forked::Child => {
                drop(ours);
                serve(theirs)
            }
            Forked::Parent { pid, .. } => Ok(Self {
                socket: Mutex::new(Some(ours)),
                pid,
            }),
        }
    }

    /// Ends the agent and reaps it: it leaves at the end of its socket; one
    /// still there after a second (held in a call) is killed. Before the
    /// instance's cgroups are removed: the agent lives in the supervisor's.
    pub(crate) fn stop(&self) {
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner()).take();
        if socket.is_none() {
            return;
        }
        drop(socket);
        for _ in 0..100 {
            match process::wait_pid(self.pid, true) {
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Ok(Some(_)) | Err(_) => return,
            }
        }
        let _ = process::kill(self.pid, signal::SIGKILL);
        let _ = process::wait_pid(self.pid, false);
    }

    /// Moves the agent into the user namespace of `init_pid`, once its maps
    /// are written.
    pub(crate) fn enter(&self, init_pid: i32) -> io::Result<()> {
        let namespace = std::fs::File::open(format!("/proc/{init_pid}/ns/user"))?;
        let (answer, _) = self.ask(b"E", &[namespace.as_fd()])?;
        match answer {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }

    /// Makes `change` to `file` as guest thread `tid` would: the errno
    /// the kernel answered, if any.
    pub(crate) fn change(&self, tid: i32, file: BorrowedFd<'_>, change: &Change) -> Result<(), i32> {
        let mut request = b"C".to_vec();
        request.extend_from_slice(&tid.to_ne_bytes());
        encode(change, &mut request);
        match self.ask(&request, &[file]) {
            Ok((0, _)) => Ok(()),
            Ok((errno, _)) => Err(errno),
            Err(_) => Err(EIO),
        }
    }

    /// Opens `path` in `root` (`xvisor_sys::fs::open_object_in_root`) as
    /// guest thread `tid` would look it up: with its search permissions on
    /// the way, not the caller's.
    pub(crate) fn open_in_root(
        &self,
        tid: i32,
        root: BorrowedFd<'_>,
        path: &[u8],
        follow: bool,
    ) -> Result<OwnedFd, i32> {
        let mut request = b"O".to_vec();
        request.extend_from_slice(&tid.to_ne_bytes());
        request.push(u8::from(follow));
        request.extend_from_slice(path);
        match self.ask(&request, &[root]) {
            Ok((0, mut fds)) if fds.len() == 1 => fds.pop().ok_or(EIO),
            Ok((0, _)) | Err(_) => Err(EIO),
            Ok((errno, _)) => Err(errno),
        }
    }

    fn ask(&self, request: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<(i32, Vec<OwnedFd>)> {
        let guard = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        let socket = guard.as_ref().ok_or_else(|| io::Error::from_raw_os_error(EIO))?;
        socket::send_fds(socket.as_fd(), request, fds)?;
        let mut answer = [0u8; 4];
        match socket::recv_fds(socket.as_fd(), &mut answer)? {
            (4, fds) => Ok((i32::from_ne_bytes(answer), fds)),
            _ => Err(io::Error::from_raw_os_error(EIO)),
        }
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    out.extend_from_slice(bytes);
}

fn encode(change: &Change, out: &mut Vec<u8>) {
    match change {
        Change::Mode(mode) => {
            out.push(1);
            out.extend_from_slice(&mode.to_ne_bytes());
        }
        Change::Owner(uid, gid) => {
            out.push(2);
            out.extend_from_slice(&uid.to_ne_bytes());
            out.extend_from_slice(&gid.to_ne_bytes());
        }
        Change::Times(times) => {
            out.push(3);
            match times {
                None => out.push(0),
                Some(times) => {
                    out.push(1);
                    for t in times {
                        out.extend_from_slice(&t.seconds.to_ne_bytes());
                        out.extend_from_slice(&t.nanoseconds.to_ne_bytes());
                    }
                }
            }
        }
        Change::SetXattr { name, value, flags } => {
            out.push(4);
            out.extend_from_slice(&flags.to_ne_bytes());
            put(out, name);
            put(out, value);
        }
        Change::RemoveXattr(name) => {
            out.push(5);
            put(out, name);
        }
        Change::Flags(request, argument) => {
            out.push(6);
            out.extend_from_slice(&request.to_ne_bytes());
            put(out, argument);
        }
    }
}

/// Reads what [`encode`] wrote (`None` for anything else).
struct Reader<'a>(&'a [u8]);

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn time(&mut self) -> Option<Time> {
        Some(Time {
            seconds: self.i64()?,
            nanoseconds: self.i64()?,
        })
    }
}

fn decode(bytes: &[u8]) -> Option<Change> {
    let mut r = Reader(bytes);
    let change = match r.u8()? {
        1 => Change::Mode(r.u32()?),
        2 => Change::Owner(r.u32()?, r.u32()?),
        3 => Change::Times(match r.u8()? {
            0 => None,
            _ => Some([r.time()?, r.time()?]),
        }),
        4 => {
            let flags = r.u32()?;
            Change::SetXattr {
                name: r.bytes()?,
                value: r.bytes()?,
                flags,
            }
        }
        5 => Change::RemoveXattr(r.bytes()?),
        6 => Change::Flags(r.u32()?, r.bytes()?),
        _ => return None,
    };
    r.0.is_empty().then_some(change)
}

fn serve(socket: OwnedFd) -> ! {
    let _ = process::set_parent_death_signal(signal::SIGKILL);
    let _ = process::setsid();
    if let Ok(null) = xvisor_sys::fs::open_read_write("/dev/null", true) {
        for n in 0..3 {
            let _ = xvisor_sys::event::dup_onto(null.as_fd(), n);
        }
    }
    let _ = process::close_all_from_except(3, &[socket.as_raw_fd()]);
    let _ = process::set_process_name("xvisor-chown");
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let (n, fds) = match socket::recv_fds(socket.as_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => process::exit_now(0),
            Ok(got) => got,
        };
        let tid = (n >= 5).then(|| i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]));
        let mut opened = None;
        let answer = match (buf.first(), fds.as_slice(), tid) {
            (Some(b'E'), [namespace], _) => match process::setns(namespace.as_fd(), process::ns::USER) {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(EPERM),
            },
            (Some(b'C'), [file], Some(tid)) => match decode(&buf[5..n]) {
                Some(change) => as_guest(tid, || make(file.as_fd(), &change)).err().unwrap_or(0),
                None => EINVAL,
            },
            (Some(b'O'), [root], Some(tid)) if n >= 6 => {
                let (follow, path) = (buf[5] != 0, &buf[6..n]);
                match as_guest(tid, || xvisor_sys::fs::open_object_in_root(root.as_fd(), path, follow)) {
                    Ok(file) => {
                        opened = Some(file);
                        0
                    }
                    Err(e) => e,
                }
            }
            _ => EINVAL,
        };
        let sent: Vec<BorrowedFd<'_>> = opened.iter().map(AsFd::as_fd).collect();
        if socket::send_fds(socket.as_fd(), &answer.to_ne_bytes(), &sent).is_err() {
            process::exit_now(0);
        }
    }
}

/// A guest thread's credentials, as its user namespace (the agent's)
/// shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credentials {
    fsuid: u32,
    fsgid: u32,
    groups: Vec<u32>,
    effective: Vec<u32>,
}

fn parse_status(status: &str) -> Option<Credentials> {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let ids = |name: &str| -> Option<Vec<u32>> {
        field(name)?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<Vec<u32>>>()
    };
    let uids = ids("Uid:")?;
    let gids = ids("Gid:")?;
    let mask = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    Some(Credentials {
        fsuid: *uids.get(3)?,
        fsgid: *gids.get(3)?,
        groups: ids("Groups:").unwrap_or_default(),
        effective: (0..64).filter(|c| mask & (1 << c) != 0).collect(),
    })
}

fn make(file: BorrowedFd<'_>, change: &Change) -> io::Result<()> {
    match change {
        Change::Mode(mode) => attr::chmod(file, *mode),
        Change::Owner(uid, gid) => attr::chown(file, *uid, *gid),
        Change::Times(times) => attr::set_times(file, *times),
        Change::SetXattr { name, value, flags } => attr::set_xattr(file, name, value, *flags),
        Change::RemoveXattr(name) => attr::remove_xattr(file, name),
        Change::Flags(request, argument) => attr::set_flags(file, *request, argument),
    }
}

/// Runs `act` with the credentials of thread `tid`, then takes back the
/// agent's own (all of the namespace's capabilities, ids 0).
fn as_guest<T>(tid: i32, act: impl FnOnce() -> io::Result<T>) -> Result<T, i32> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(EPERM);
    let all = caps::get().map_err(errno)?.permitted;
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(errno)?;
    let mut guest = parse_status(&status).ok_or(EPERM)?;
    // Capabilities count in their own user namespace: a thread in one
    // nested below the instance's has none in it.
    let namespace = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    match (
        namespace(&format!("/proc/{tid}/ns/user")),
        namespace("/proc/self/ns/user"),
    ) {
        (Ok(theirs), Ok(ours)) if theirs == ours => {}
        _ => guest.effective.clear(),
    }
    guest.effective.retain(|c| all.contains(c));
    process::setgroups(&guest.groups).map_err(errno)?;
    process::set_fs_ids(guest.fsuid, guest.fsgid).map_err(errno)?;
    // (A file-system uid other than 0 has just cleared the file
    // capabilities from the effective set: this sets exactly the guest's.)
    let done = caps::set_sets(&guest.effective, &all)
        .map_err(errno)
        .and_then(|()| act().map_err(errno));
    // Back to the namespace's root; failing that, the agent cannot be
    // trusted to act for the next caller.
    let back = caps::set_sets(&all, &all)
        .and_then(|()| process::set_fs_ids(0, 0))
        .and_then(|()| caps::set_sets(&all, &all))
        .and_then(|()| process::setgroups(&[]));
    if back.is_err() {
        process::exit_now(1);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_travel_unchanged() {
        let time = |seconds, nanoseconds| Time { seconds, nanoseconds };
        for change in [
            Change::Mode(0o4755),
            Change::Owner(1000, u32::MAX),
            Change::Times(None),
            Change::Times(Some([time(1, 2), time(-3, attr::UTIME_NOW)])),
            Change::SetXattr {
                name: b"user.x".to_vec(),
                value: vec![0; 65536],
                flags: 1,
            },
            Change::RemoveXattr(b"user.y".to_vec()),
            Change::Flags(0x4008_6602, vec![1, 2, 3, 4]),
        ] {
            let mut bytes = Vec::new();
            encode(&change, &mut bytes);
            assert!(bytes.len() <= MAX_REQUEST);
            assert_eq!(decode(&bytes), Some(change.clone()));
            // Cut short or lengthened, it is refused, never misread.
            for cut in 0..bytes.len().min(40) {
                assert_eq!(decode(&bytes[..cut]), None);
            }
            bytes.push(0);
            assert_eq!(decode(&bytes), None);
        }
        assert_eq!(decode(&[9]), None);
    }

    #[test]
    fn credentials_are_the_file_system_ids_groups_and_effective_set() {
        let status = "Name:\tsh\nUid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t101\nGroups:\t4 27 \nCapEff:\t0000000000000003\n";
        assert_eq!(
            parse_status(status),
            Some(Credentials {
                fsuid: 1001,
                fsgid: 101,
                groups: vec![4, 27],
                effective: vec![0, 1],
            })
        );
        assert_eq!(parse_status("Uid:\t1\n"), None);
    }
}
