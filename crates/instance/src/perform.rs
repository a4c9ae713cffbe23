//! Calls the supervisor performs on the guest's behalf, because their
//! decision depends on memory the guest could change after the check: the
//! arguments are copied once, the decision is made on the copy, and the
//! call is made by the supervisor with that copy, on the guest's own
//! objects (its socket, duplicated with `pidfd_getfd`). The answer is the
//! call's result. Nothing here lets the kernel read the guest's memory
//! again, and nothing reaches further than the guest could itself: a unix
//! socket is found inside the guest's root and checked against the guest's
//! credentials, an abstract one only in the instance's own network.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::Mutex;

use xvisor_kernel::dispatch::{errno, Decision, Wait};
use xvisor_kernel::net::{self, ConnectPlan};
use xvisor_sys::seccomp::{self, Notification};
use xvisor_trap::supervised::{ConnectRules, Destination, Target};

/// A refusal by a supervisor rule, to be named on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    /// The call as shown: `connect(10.0.0.5:443)`.
    pub(crate) shown: String,
    /// Why: `not in [net].connect (web.toml)`.
    pub(crate) reason: String,
}

/// A connect (or a send) the supervisor makes for a parked call.
#[derive(Debug)]
pub(crate) struct Connecting {
    /// The guest's socket, duplicated.
    pub(crate) socket: OwnedFd,
    /// For a unix connect tried again: the address naming the socket file
    /// found (`/proc/self/fd/N`), and that file's descriptor, kept open.
    pub(crate) again: Option<(Vec<u8>, OwnedFd)>,
    /// For a send tried again (a parked `Wait::SendRoom`): what to send.
    pub(crate) sending: Option<crate::sending::Sending>,
    /// How a retried connect ended, once it has.
    pub(crate) ended: Mutex<Option<Decision>>,
}

/// The result of a performed call: its answer, the refusal to name if a
/// rule refused it, and for an answer `Park(Wait::Connected)` the socket
/// whose connect is in progress. `None` when the caller is gone (nothing
/// to answer).
pub(crate) type Outcome = Option<(Decision, Option<Denied>, Option<Connecting>)>;

fn failed(e: &std::io::Error) -> Decision {
    Decision::Errno(e.raw_os_error().unwrap_or(errno::EINVAL))
}

/// A socket address copied once from a `connect`/`bind` call's
/// registers 1 (pointer) and 2 (length).
struct AddressCopy {
    bytes: [u8; net::MAX_ADDRESS_LEN],
    length: usize,
}

impl AddressCopy {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

/// The call's address, copied once, or the answer Linux gives a bad one
/// (EINVAL for a length out of range, EFAULT for memory not all readable).
fn copy_address(notification: &Notification) -> Result<AddressCopy, Decision> {
    let [_, address, length, ..] = notification.args;
    let length = usize::try_from(length as u32 as i32).map_err(|_| Decision::Errno(errno::EINVAL))?;
    if length > net::MAX_ADDRESS_LEN {
        return Err(Decision::Errno(errno::EINVAL));
    }
    let mut bytes = [0u8; net::MAX_ADDRESS_LEN];
    let copied = seccomp::read_guest_memory(notification.pid, address, &mut bytes[..length]).unwrap_or(0);
    if copied < length {
        return Err(Decision::Errno(errno::EFAULT));
    }
    Ok(AddressCopy { bytes, length })
}

/// The guest's socket `fd` as it is now (another thread replacing the
/// descriptor number later changes nothing here), with its family and
/// type; or the answer to give (none for a caller that is gone).
fn guest_socket(pidfd: BorrowedFd<'_>, fd: i32) -> Result<(OwnedFd, i32, i32), Option<Decision>> {
    let socket = match seccomp::pidfd_getfd(pidfd, fd) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::ESRCH) => return Err(None),
        Err(e) => return Err(Some(failed(&e))),
    };
    match xvisor_sys::socket::family_and_type(socket.as_fd()) {
        Ok((family, socket_type)) => Ok((socket, family, socket_type)),
        Err(e) => Err(Some(failed(&e))),
    }
}

/// `connect(fd, address, length)` under `[net].connect` rules.
/// `own_network`: the instance has a network namespace of its own (not
/// the host's, not one joined), so its abstract sockets are its own.
// Long: one connect checked and performed on the copied address, family by family.
pub(crate) fn connect(
    rules: &ConnectRules,
    notification: &Notification,
    listener: BorrowedFd<'_>,
    own_network: bool,
) -> Outcome {
    let fd = notification.args[0] as u32 as i32;
    // The address, copied once: every decision below is on this copy, and
    // the connect made below uses it too.
    let copy = match copy_address(notification) {
        Ok(copy) => copy,
        Err(refused) => return Some((refused, None, None)),
    };
    let bytes = copy.bytes();
    let host_tid = i32::try_from(notification.pid).unwrap_or(-1);
    let pidfd = xvisor_sys::process::pidfd_open_thread(host_tid).ok();
    // The thread is still in this very call: what was read is its memory,
    // and the pidfd names it, not a process that took over a freed pid.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let (socket, family, socket_type) = match guest_socket(pidfd?.as_fd(), fd) {
        Ok(found) => found,
        Err(answer) => return answer.map(|decision| (decision, None, None)),
    };
    let connect_with = |address: &[u8]| match xvisor_sys::socket::connect_raw(socket.as_fd(), address) {
        Ok(()) => Decision::Value(0),
        Err(e) => failed(&e),
    };
    // An IP socket in blocking mode would hold this serving thread for as
    // long as its peer takes to answer (minutes for one that never does):
    // the attempt is started non-blocking and the call parked until it
    // ends, as a blocking connect would wait in the kernel. (Unix stream
    // sockets answer at once, or say EAGAIN when their listener's queue is
    // full, which a blocking connect would wait out: they connect as they
    // are.)
    let connect_inet = |address: &[u8]| -> Decision {
        if xvisor_sys::event::is_nonblocking(socket.as_fd()).unwrap_or(true) {
            return connect_with(address);
        }
        if xvisor_sys::event::set_nonblocking(socket.as_fd(), true).is_err() {
            return connect_with(address);
        }
        let started = xvisor_sys::socket::connect_raw(socket.as_fd(), address);
        let _ = xvisor_sys::event::set_nonblocking(socket.as_fd(), false);
        match started {
            Ok(()) => Decision::Value(0),
            // Often over already (a peer on this machine answers within
            // the call): then no parking.
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {
                let mut watch = [xvisor_sys::event::Watch::new(
                    socket.as_fd(),
                    xvisor_sys::event::ready::OUT,
                )];
                match xvisor_sys::event::poll(&mut watch, 0) {
                    Ok(n) if n > 0 => match xvisor_sys::socket::take_error(socket.as_fd()) {
                        Ok(0) => Decision::Value(0),
                        Ok(e) => Decision::Errno(e),
                        Err(e) => failed(&e),
                    },
                    _ => Decision::Park(Wait::Connected),
                }
            }
            Err(e) => failed(&e),
        }
    };
    let denied = |target: &Target| Denied {
        shown: format!("connect({target})"),
        reason: format!("not in {}", rules.source),
    };
    // A unix connect parked until its listener has room: what it is tried
    // again with.
    let mut again = None;
    let outcome = match net::plan_connect(family, socket_type, bytes) {
        ConnectPlan::Fail(e) => (Decision::Errno(e), None),
        ConnectPlan::Perform if family == net::AF_INET || family == net::AF_INET6 => (connect_inet(bytes), None),
        ConnectPlan::Perform => (connect_with(bytes), None),
        ConnectPlan::Inet(target) if rules.allows(&target) => (connect_inet(bytes), None),
        ConnectPlan::Inet(target) => (Decision::Errno(errno::EACCES), Some(denied(&target))),
        ConnectPlan::Abstract(name) if !rules.allows(&Target::UnixAbstract(name.clone())) => (
            Decision::Errno(errno::EACCES),
            Some(denied(&Target::UnixAbstract(name))),
        ),
        ConnectPlan::Abstract(_) => match own_network && in_instance_network(socket.as_fd()) {
            true => (connect_with(bytes), None),
            false => (
                Decision::Errno(errno::EPERM),
                Some(Denied {
                    shown: "connect(abstract unix socket)".into(),
                    reason: "outside the instance's own network namespace (with --net host the supervisor cannot connect one for the guest)".into(),
                }),
            ),
        },
        ConnectPlan::UnixPath(path) => match resolve_unix_socket(host_tid, &path) {
            Err(e) => (Decision::Errno(e), None),
            Ok((file, shown)) => {
                let target = Target::UnixPath(shown);
                if rules.restricts_unix_paths() && !unix_rule_allows(rules, host_tid, &file) {
                    (Decision::Errno(errno::EACCES), Some(denied(&target)))
                } else {
                    // Through the file found in the guest's root: the
                    // kernel finds the socket by the descriptor's inode.
                    match net::unix_address(&format!("/proc/self/fd/{}", file.as_raw_fd())) {
                        None => (Decision::Errno(errno::ENAMETOOLONG), None),
                        // A blocking stream socket waits while the
                        // listener's queue is full: tried without
                        // waiting, then parked and tried again.
                        Some(address)
                            if socket_type != net::SOCK_DGRAM
                                && !xvisor_sys::event::is_nonblocking(socket.as_fd()).unwrap_or(true) =>
                        {
                            match connect_without_waiting(socket.as_fd(), &address) {
                                Some(ended) => (ended, None),
                                None => {
                                    again = Some((address, file));
                                    (Decision::Park(Wait::UnixQueue), None)
                                }
                            }
                        }
                        Some(address) => (connect_with(&address), None),
                    }
                }
            }
        },
    };
    let parked = matches!(outcome.0, Decision::Park(_)).then(|| Connecting {
        socket,
        again,
        sending: None,
        ended: std::sync::Mutex::new(None),
    });
    Some((outcome.0, outcome.1, parked))
}

/// `bind(fd, address, length)` under `[net].bind` rules the supervisor
/// holds: the address copied once, decided on the copy, the guest's own
/// socket (`pidfd_getfd`) bound with it. `own_network` as for
/// [`connect`].
// Long: one bind checked and performed on the copied address, family by family.
pub(crate) fn bind(
    rules: &ConnectRules,
    notification: &Notification,
    listener: BorrowedFd<'_>,
    own_network: bool,
) -> Outcome {
    let fd = notification.args[0] as u32 as i32;
    let copy = match copy_address(notification) {
        Ok(copy) => copy,
        Err(refused) => return Some((refused, None, None)),
    };
    let bytes = copy.bytes();
    let host_tid = i32::try_from(notification.pid).unwrap_or(-1);
    let pidfd = xvisor_sys::process::pidfd_open_thread(host_tid).ok();
    let status = std::fs::read_to_string(format!("/proc/{host_tid}/status")).ok();
    let same_user_namespace = {
        let id = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
        let theirs = id(&format!("/proc/{host_tid}/ns/user"));
        theirs.is_some() && theirs == id("/proc/self/ns/user")
    };
    // What was read is the caller's: it is still in this very call.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let (socket, family, socket_type) = match guest_socket(pidfd?.as_fd(), fd) {
        Ok(found) => found,
        Err(answer) => return answer.map(|decision| (decision, None, None)),
    };
    let bind_with = || match xvisor_sys::socket::bind_raw(socket.as_fd(), bytes) {
        Ok(()) => Decision::Value(0),
        Err(e) => failed(&e),
    };
    let refused = |errno: i32, shown: String, reason: String| {
        Some((Decision::Errno(errno), Some(Denied { shown, reason }), None))
    };
    let not_listed = |target: &Target| {
        refused(
            errno::EACCES,
            format!("bind({target})"),
            format!("not in {}", rules.source),
        )
    };
    match net::plan_bind(family, socket_type, bytes) {
        net::BindPlan::Fail(e) => Some((Decision::Errno(e), None, None)),
        net::BindPlan::Inet(target) if !rules.allows(&target) => not_listed(&target),
        net::BindPlan::Inet(Target::Inet { port, .. }) if port != 0 && port < PRIVILEGED_PORTS => {
            // The kernel checks CAP_NET_BIND_SERVICE over the socket's
            // network namespace, of the binder: the guest's, which the
            // supervisor's would not be.
            let capable = status
                .as_deref()
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:")))
                .and_then(|c| u64::from_str_radix(c.trim(), 16).ok())
                .is_some_and(|c| c & (1 << CAP_NET_BIND_SERVICE) != 0);
            let reaches = same_user_namespace || (own_network && in_instance_network(socket.as_fd()));
            if capable && reaches {
                Some((bind_with(), None, None))
            } else {
                Some((Decision::Errno(errno::EACCES), None, None))
            }
        }
        net::BindPlan::Inet(_) | net::BindPlan::AsGiven => Some((bind_with(), None, None)),
        net::BindPlan::Abstract(name) if !rules.allows(&Target::UnixAbstract(name.clone())) => {
            not_listed(&Target::UnixAbstract(name))
        }
        net::BindPlan::Abstract(_) => Some((bind_with(), None, None)),
        net::BindPlan::UnixPath => refused(
            errno::EACCES,
            "bind(a unix socket file)".into(),
            format!("{} names addresses, so the supervisor makes every bind, and it does not make unix socket files for the guest (its ids, umask and Landlock domain): list only tcp:*:PORT entries to leave binds to Landlock", rules.source),
        ),
        net::BindPlan::NetlinkGroups => refused(
            errno::EPERM,
            "bind(netlink multicast groups)".into(),
            format!("{} names addresses, so the supervisor makes every bind, and the kernel would check the groups against its privileges, not the guest's", rules.source),
        ),
        net::BindPlan::Foreign => refused(
            errno::EPERM,
            format!("bind(an address of family {family})"),
            format!("{} names addresses, so the supervisor makes every bind, and it binds only IP, unix abstract and netlink addresses", rules.source),
        ),
    }
}

/// Ports below this need CAP_NET_BIND_SERVICE (`ip_unprivileged_port_start`,
/// 1024 in a new network namespace; the instance's `/proc/sys` is
/// read-only).
const PRIVILEGED_PORTS: u16 = 1024;
const CAP_NET_BIND_SERVICE: u32 = 10;

/// Connects a blocking unix socket without waiting (its `O_NONBLOCK` flag
/// set for the call and put back): `None` while the listener's queue is
/// full (EAGAIN), else how it ended.
pub(crate) fn connect_without_waiting(socket: BorrowedFd<'_>, address: &[u8]) -> Option<Decision> {
    if xvisor_sys::event::set_nonblocking(socket, true).is_err() {
        return Some(Decision::Errno(errno::EINVAL));
    }
    let tried = xvisor_sys::socket::connect_raw(socket, address);
    let _ = xvisor_sys::event::set_nonblocking(socket, false);
    match tried {
        Ok(()) => Some(Decision::Value(0)),
        Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::EAGAIN) => None,
        Err(e) => Some(failed(&e)),
    }
}

const EINPROGRESS: i32 = 115;

/// Whether `socket` lives in a network namespace the instance owns: the
/// supervisor may look at it (`SIOCGSKNS` needs CAP_NET_ADMIN over the
/// namespace, which the supervisor has, as the owner of the instance's user
/// namespace, only over namespaces made inside the instance). A socket of
/// the host's network handed into the instance is not.
pub(crate) fn in_instance_network(socket: BorrowedFd<'_>) -> bool {
    xvisor_sys::socket::network_namespace(socket).is_ok()
}

/// The guest's root directory, as an `O_PATH` descriptor.
fn guest_root(host_tid: i32) -> std::io::Result<OwnedFd> {
    xvisor_sys::fs::open_path(None, &format!("/proc/{host_tid}/root"))
}

/// Finds the unix socket file `path` names for the guest: relative to its
/// working directory, resolved inside its root (symlinks cannot climb out),
/// and checked as the kernel would check the guest: search permission on
/// the directories on the way, write permission on the socket. Returns the
/// file (`O_PATH`) and the path as the instance sees it, or the errno.
pub(crate) fn resolve_unix_socket(host_tid: i32, path: &[u8]) -> Result<(OwnedFd, String), i32> {
    let path = std::str::from_utf8(path).map_err(|_| errno::EACCES)?;
    let absolute = if path.starts_with('/') {
        path.to_string()
    } else {
        let cwd = std::fs::read_link(format!("/proc/{host_tid}/cwd")).map_err(|_| errno::ENOENT)?;
        format!("{}/{path}", cwd.display().to_string().trim_end_matches('/'))
    };
    let root = guest_root(host_tid).map_err(|e| e.raw_os_error().unwrap_or(errno::ENOENT))?;
    let credentials = Credentials::of(host_tid).ok_or(errno::ENOENT)?;
    // Every directory the kernel would walk through, as written.
    let mut prefix = String::new();
    for component in absolute.split('/').filter(|c| !c.is_empty()) {
        let directory = if prefix.is_empty() { "/" } else { prefix.as_str() };
        let dir = xvisor_sys::fs::open_path_in_root(root.as_fd(), directory)
            .map_err(|e| e.raw_os_error().unwrap_or(errno::ENOENT))?;
        let meta = std::fs::File::from(dir).metadata().map_err(|_| errno::ENOENT)?;
        if !credentials.may(&meta, Access::Search) {
            return Err(errno::EACCES);
        }
        prefix.push('/');
        prefix.push_str(component);
    }
    let file = xvisor_sys::fs::open_path_in_root(root.as_fd(), &absolute)
        .map_err(|e| e.raw_os_error().unwrap_or(errno::ENOENT))?;
    let meta = std::fs::File::from(file.try_clone().map_err(|_| errno::ENOENT)?)
        .metadata()
        .map_err(|_| errno::ENOENT)?;
    if !meta.file_type().is_socket() {
        return Err(ECONNREFUSED);
    }
    if !credentials.may(&meta, Access::Write) {
        return Err(errno::EACCES);
    }
    Ok((file, absolute))
}

const ECONNREFUSED: i32 = 111;

/// Whether some `unix:` rule names the file `socket` is (the same inode,
/// found in the guest's root now: a rule names a file, whichever path
/// leads to it).
pub(crate) fn unix_rule_allows(rules: &ConnectRules, host_tid: i32, socket: &OwnedFd) -> bool {
    let Ok(root) = guest_root(host_tid) else {
        return false;
    };
    let Ok(target) = socket.try_clone().map(std::fs::File::from).and_then(|f| f.metadata()) else {
        return false;
    };
    rules.allowed.iter().any(|d| match d {
        Destination::UnixPath(path) => xvisor_sys::fs::open_path_in_root(root.as_fd(), path)
            .map(std::fs::File::from)
            .and_then(|f| f.metadata())
            .is_ok_and(|m| (m.dev(), m.ino()) == (target.dev(), target.ino())),
        Destination::Inet { .. } | Destination::UnixAbstract(_) => false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Search (execute) permission on a directory.
    Search,
    /// Write permission (what connecting to a unix socket needs).
    Write,
}

/// A guest thread's file-system credentials as host ids, from
/// `/proc/TID/status` and its user namespace's maps (read from the host's
/// namespace, which the supervisor is in).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credentials {
    fsuid: u32,
    fsgid: u32,
    groups: Vec<u32>,
    dac_override: bool,
    dac_read_search: bool,
    /// (first host id, count) of each line of uid_map / gid_map.
    uid_map: Vec<(u32, u32)>,
    gid_map: Vec<(u32, u32)>,
}

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;

impl Credentials {
    fn of(host_tid: i32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{host_tid}/status")).ok()?;
        let map = |name: &str| -> Option<Vec<(u32, u32)>> {
            let text = std::fs::read_to_string(format!("/proc/{host_tid}/{name}")).ok()?;
            Some(
                text.lines()
                    .filter_map(|l| {
                        let v: Vec<u32> = l.split_whitespace().filter_map(|n| n.parse().ok()).collect();
                        (v.len() == 3).then(|| (v[1], v[2]))
                    })
                    .collect(),
            )
        };
        Self::parse(&status, map("uid_map")?, map("gid_map")?)
    }

    fn parse(status: &str, uid_map: Vec<(u32, u32)>, gid_map: Vec<(u32, u32)>) -> Option<Self> {
        let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
        // Real, effective, saved, file system: the fourth is checked.
        let fs_id = |key: &str| field(key)?.split_whitespace().nth(3)?.parse::<u32>().ok();
        let capabilities = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
        Some(Self {
            fsuid: fs_id("Uid:")?,
            fsgid: fs_id("Gid:")?,
            groups: field("Groups:")
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
            dac_override: capabilities & (1 << CAP_DAC_OVERRIDE) != 0,
            dac_read_search: capabilities & (1 << CAP_DAC_READ_SEARCH) != 0,
            uid_map,
            gid_map,
        })
    }

    /// The kernel's permission check (owner, group, other bits; then the
    /// capabilities of the guest's user namespace, which count only for
    /// files whose owner and group are mapped there). ACLs are not read:
    /// a file an ACL opens to the guest is refused (narrower, never wider).
    fn may(&self, file: &std::fs::Metadata, access: Access) -> bool {
        self.may_on(file.uid(), file.gid(), file.mode(), access)
    }

    /// [`may`](Self::may) on a file's owner, group and mode.
    fn may_on(&self, uid: u32, gid: u32, mode: u32, access: Access) -> bool {
        let want = match access {
            Access::Search => 0o1,
            Access::Write => 0o2,
        };
        let bits = if uid == self.fsuid {
            mode >> 6
        } else if gid == self.fsgid || self.groups.contains(&gid) {
            mode >> 3
        } else {
            mode
        };
        if bits & want != 0 {
            return true;
        }
        let mapped = |map: &[(u32, u32)], id: u32| {
            map.iter()
                .any(|&(first, count)| id >= first && u64::from(id) < u64::from(first) + u64::from(count))
        };
        let privileged = mapped(&self.uid_map, uid) && mapped(&self.gid_map, gid);
        let capable = match access {
            Access::Search => self.dac_override || self.dac_read_search,
            Access::Write => self.dac_override,
        };
        privileged && capable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_from_status() {
        let status = "Name:\tsh\nUid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t102\nGroups:\t5 6 \nCapEff:\t0000000000000002\n";
        let c = Credentials::parse(status, vec![(1000, 1)], vec![(100, 10)]).unwrap();
        assert_eq!((c.fsuid, c.fsgid), (1001, 102));
        assert_eq!(c.groups, [5, 6]);
        assert!(c.dac_override && !c.dac_read_search);
        assert!(Credentials::parse("Uid:\t1\n", vec![], vec![]).is_none());
    }

    #[test]
    fn permission_is_checked_as_the_kernel_would() {
        // A guest whose ids 0..65536 are host ids 100000..165536.
        let root = "Uid:\t100000\t100000\t100000\t100000\nGid:\t100000\t100000\t100000\t100000\nGroups:\t\nCapEff:\t00000000a80425fb\n";
        let user = "Uid:\t101000\t101000\t101000\t101000\nGid:\t101000\t101000\t101000\t101000\nGroups:\t100005\nCapEff:\t0000000000000000\n";
        let maps = || (vec![(100000, 65536)], vec![(100000, 65536)]);
        let (u, g) = maps();
        let root = Credentials::parse(root, u, g).unwrap();
        let (u, g) = maps();
        let user = Credentials::parse(user, u, g).unwrap();
        // Owner, group (supplementary), other bits.
        assert!(user.may_on(101000, 0, 0o200, Access::Write));
        assert!(!user.may_on(100000, 100000, 0o600, Access::Write));
        assert!(user.may_on(100000, 100005, 0o620, Access::Write));
        assert!(user.may_on(0, 0, 0o602, Access::Write));
        assert!(!user.may_on(100000, 100000, 0o700, Access::Search));
        // The guest's root overrides bits on files its namespace maps ...
        assert!(root.may_on(101000, 101000, 0o600, Access::Write));
        assert!(root.may_on(101000, 101000, 0o700, Access::Search));
        // ... and not on the host's own (host root's 0600 socket).
        assert!(!root.may_on(0, 0, 0o600, Access::Write));
        assert!(!root.may_on(0, 0, 0o700, Access::Search));
        assert!(root.may_on(0, 0, 0o755, Access::Search));
    }
}
