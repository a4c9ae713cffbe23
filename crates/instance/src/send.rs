//! Sends the supervisor performs, where `[net].connect` names UDP
//! destinations: a datagram socket names its destination in every
//! `sendto`, `sendmsg` and `sendmmsg`, in memory the guest could change
//! after a check, on a descriptor number another thread could point at
//! another socket. So the data, the address and the control messages are
//! copied once (bounded), the destination is decided on the copy, and the
//! supervisor sends that copy on the guest's own socket (`pidfd_getfd`),
//! with the guest's flags. The answer is the byte count (for `sendmmsg`
//! the count of messages, their lengths written back as the kernel
//! would). A send that finds no room is parked, never holding a serving
//! thread, and tried again until it goes or a signal interrupts it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use xvisor_kernel::dispatch::{errno, Decision, Wait};
use xvisor_kernel::net::{self, SendPlan};
use xvisor_sys::seccomp::{self, Notification};
use xvisor_trap::supervised::{ConnectRules, Target};
use xvisor_trap::table::{SENDMMSG, SENDTO};

use crate::perform::{self, Denied, Outcome};
use crate::sending::{try_send, Message, Sending, MMSGHDR_LEN, MSGHDR_LEN};

/// The most data one performed send copies from the guest. A UDP
/// datagram is at most 64 KiB and a unix one at most its socket's send
/// buffer (208 KiB by default): a larger message is refused with
/// `EMSGSIZE`, as the kernel would refuse it. A stream socket takes the
/// first 512 KiB and returns that count (a short write, which programs
/// writing to sockets handle).
pub(crate) const MAX_SEND: usize = 512 * 1024;
/// The most control-message bytes one message carries (the kernel's
/// `optmem_max` is 20–128 KiB): more is refused with `ENOBUFS`.
const MAX_CONTROL: usize = 64 * 1024;
/// `UIO_MAXIOV`: the most iovecs in one message, and the most messages
/// `sendmmsg` sends at once.
const MAX_IOV: usize = 1024;

const MSG_DONTWAIT: i32 = 0x40;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_ZEROCOPY: i32 = 0x400_0000;
const EMSGSIZE: i32 = 90;
const ENOBUFS: i32 = 105;

/// Reads exactly `len` bytes of guest memory, or EFAULT.
fn read_exact(pid: u32, address: u64, len: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len];
    match seccomp::read_guest_memory(pid, address, &mut buf) {
        Ok(n) if n == len => Ok(buf),
        _ if len == 0 => Ok(buf),
        _ => Err(errno::EFAULT),
    }
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn half(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// A message's parts as the call named them (pointers into the guest).
struct Parts {
    /// (address, length) of each piece of data.
    iov: Vec<(u64, u64)>,
    name: Option<(u64, usize)>,
    control: (u64, u64),
}

/// Reads a `struct msghdr` at `at`: its iovecs, name and control.
fn read_msghdr(pid: u32, at: u64) -> Result<Parts, i32> {
    let h = read_exact(pid, at, MSGHDR_LEN)?;
    let (name, namelen) = (word(&h, 0), half(&h, 8) as i32);
    let (iov, iovlen) = (word(&h, 16), word(&h, 24));
    let (control, controllen) = (word(&h, 32), word(&h, 40));
    if namelen < 0 {
        return Err(errno::EINVAL);
    }
    if iovlen > MAX_IOV as u64 {
        return Err(EMSGSIZE);
    }
    // The kernel reads at most a sockaddr_storage of the name.
    let name = (name != 0 && namelen != 0).then(|| (name, (namelen as usize).min(net::MAX_ADDRESS_LEN)));
    let vec = read_exact(pid, iov, iovlen as usize * 16)?;
    let iov = vec.chunks_exact(16).map(|c| (word(c, 0), word(c, 8))).collect();
    Ok(Parts {
        iov,
        name,
        control: (control, controllen),
    })
}

/// What the guest's socket is, for the decision and the send.
struct Socket<'a> {
    fd: BorrowedFd<'a>,
    family: i32,
    socket_type: i32,
}

/// Copies one message and decides its destination. `Err` carries the
/// errno and, for a refusal by a rule, what to name.
fn prepare(
    rules: &ConnectRules,
    call: &str,
    parts: &Parts,
    socket: &Socket<'_>,
    pidfd: BorrowedFd<'_>,
    host_tid: i32,
    own_network: bool,
) -> Result<Message, Refusal> {
    let pid = host_tid as u32;
    let plain = |e: i32| (e, None);
    // The data, gathered into one buffer: one datagram either way.
    let total = parts
        .iov
        .iter()
        .try_fold(0u64, |sum, &(_, len)| {
            i64::try_from(len).ok().and_then(|_| sum.checked_add(len))
        })
        .ok_or(plain(errno::EINVAL))?;
    let stream = socket.socket_type == net::SOCK_STREAM;
    if total > MAX_SEND as u64 && !stream {
        return Err(plain(EMSGSIZE));
    }
    let mut data = Vec::with_capacity(total.min(MAX_SEND as u64) as usize);
    for &(base, len) in &parts.iov {
        let room = MAX_SEND - data.len();
        if room == 0 {
            break;
        }
        let take = (len as usize).min(room);
        data.extend_from_slice(&read_exact(pid, base, take).map_err(plain)?);
    }
    let (control_at, control_len) = parts.control;
    if control_len > MAX_CONTROL as u64 {
        return Err(plain(ENOBUFS));
    }
    let mut control = read_exact(pid, control_at, control_len as usize).map_err(plain)?;
    let mut held = pass_control(&mut control, socket, pidfd, call)?;
    let address = match parts.name {
        Some((at, len)) => Some(read_exact(pid, at, len).map_err(plain)?),
        None => None,
    };
    let (address, file) = destination(rules, call, socket, address, host_tid, own_network)?;
    held.extend(file);
    Ok(Message {
        data,
        address,
        control,
        _held: held,
    })
}

const SOL_SOCKET: i32 = 1;
const SOL_IP: i32 = 0;
const SOL_IPV6: i32 = 41;
const SOL_UDP: i32 = 17;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// `sizeof(struct cmsghdr)`.
const CMSG_HEADER: usize = 16;

/// Control messages the supervisor passes on: what a datagram's sender
/// sets for itself (source address and interface, TTL, traffic class,
/// segmentation offload, timestamps, transmit time). Left out: source
/// routes (`IP_RETOPTS`, IPv6 routing and option headers), which would
/// take the datagram to another host than the one decided on, and
/// `SO_MARK` / `SO_PRIORITY`, which the kernel checks against the
/// sender's privileges (the supervisor's, not the guest's).
fn passed_on(level: i32, kind: i32) -> bool {
    matches!(
        (level, kind),
        (SOL_SOCKET, 37 | 61)                 // SO_TIMESTAMPING, SCM_TXTIME
            | (SOL_IP, 1 | 2 | 8)             // IP_TOS, IP_TTL, IP_PKTINFO
            | (SOL_IPV6, 50 | 52 | 62 | 67)   // IPV6_PKTINFO, HOPLIMIT, DONTFRAG, TCLASS
            | (SOL_UDP, 103) // UDP_SEGMENT
    )
}

/// Checks the control messages copied from the guest and makes them the
/// supervisor's: the descriptors `SCM_RIGHTS` names on a unix socket are
/// taken from the guest (the objects they name now) and their numbers in
/// the copy replaced by the supervisor's; credentials (`SCM_CREDENTIALS`)
/// are refused, since the kernel would check them against the
/// supervisor's ids. Returns the descriptors taken, to hold until sent.
fn pass_control(
    control: &mut [u8],
    socket: &Socket<'_>,
    pidfd: BorrowedFd<'_>,
    call: &str,
) -> Result<Vec<OwnedFd>, Refusal> {
    let mut held = Vec::new();
    for slot in descriptor_slots(control, socket.family == net::AF_UNIX, call)? {
        let fd = half(control, slot) as i32;
        let taken = seccomp::pidfd_getfd(pidfd, fd).map_err(|e| (e.raw_os_error().unwrap_or(errno::EBADF), None))?;
        control[slot..slot + 4].copy_from_slice(&taken.as_raw_fd().to_ne_bytes());
        held.push(taken);
    }
    Ok(held)
}

/// Checks control messages as copied (`unix`: for a unix socket) and
/// finds where the descriptors `SCM_RIGHTS` names are: their offsets.
fn descriptor_slots(control: &[u8], unix: bool, call: &str) -> Result<Vec<usize>, Refusal> {
    let mut slots = Vec::new();
    let mut at = 0usize;
    while at + CMSG_HEADER <= control.len() {
        let len = usize::try_from(word(control, at)).unwrap_or(usize::MAX);
        if len < CMSG_HEADER || len > control.len() - at {
            return Err((errno::EINVAL, None));
        }
        let level = half(control, at + 8) as i32;
        let kind = half(control, at + 12) as i32;
        match (level, kind) {
            (SOL_SOCKET, SCM_RIGHTS) if unix => {
                let count = (len - CMSG_HEADER) / 4;
                if slots.len() + count > xvisor_sys::socket::MAX_FDS {
                    return Err((errno::EINVAL, None));
                }
                slots.extend((0..count).map(|i| at + CMSG_HEADER + 4 * i));
            }
            (SOL_SOCKET, SCM_CREDENTIALS) if unix => {
                return Err((
                    errno::EPERM,
                    Some(Denied {
                        shown: format!("{call}(SCM_CREDENTIALS)"),
                        reason: "credentials passed by hand are not sent by the supervisor, whose ids the kernel would check them against".into(),
                    }),
                ))
            }
            // Ignored by the kernel on other sockets.
            (SOL_SOCKET, SCM_RIGHTS | SCM_CREDENTIALS) => {}
            (level, kind) if passed_on(level, kind) => {}
            (level, kind) => {
                return Err((
                    errno::EPERM,
                    Some(Denied {
                        shown: format!("{call}(control message level {level} type {kind})"),
                        reason: "not passed on by the supervisor, which sends datagrams under udp: rules".into(),
                    }),
                ))
            }
        }
        at += len.next_multiple_of(8);
    }
    Ok(slots)
}

/// `sendto` (with an address), `sendmsg` or `sendmmsg` under `[net].connect`
/// rules naming UDP destinations.
pub(crate) fn send(
    rules: &ConnectRules,
    notification: &Notification,
    listener: BorrowedFd<'_>,
    own_network: bool,
) -> Outcome {
    let a = notification.args;
    let nr = u32::try_from(notification.nr).unwrap_or(0);
    let call = match nr {
        SENDTO => "sendto",
        SENDMMSG => "sendmmsg",
        _ => "sendmsg",
    };
    let pid = notification.pid;
    let host_tid = i32::try_from(pid).unwrap_or(-1);
    let fail = |e: i32| Some((Decision::Errno(e), None, None));
    let guest_flags = match nr {
        SENDTO | SENDMMSG => a[3],
        _ => a[2],
    } as u32 as i32;
    if guest_flags & MSG_ZEROCOPY != 0 {
        // The kernel would send from pages of the supervisor's copy after
        // the call returned: refused as a kernel that cannot pin answers.
        return fail(ENOBUFS);
    }
    // The message headers, copied once.
    let (messages, lengths_at) = match nr {
        SENDTO => {
            let length = a[5] as u32 as i32;
            if !(0..=net::MAX_ADDRESS_LEN as i32).contains(&length) {
                return fail(errno::EINVAL);
            }
            // sendto's address is used whatever its length (the kernel
            // gives the protocol an address of length 0, which UDP
            // refuses and a unix socket takes for none).
            let parts = Parts {
                iov: vec![(a[1], a[2])],
                name: Some((a[4], length as usize)),
                control: (0, 0),
            };
            (vec![parts], None)
        }
        SENDMMSG => {
            let count = (a[2] as u32 as usize).min(MAX_IOV);
            let mut out = Vec::with_capacity(count);
            for i in 0..count {
                match read_msghdr(pid, a[1] + i as u64 * MMSGHDR_LEN) {
                    Ok(parts) => out.push(parts),
                    Err(e) if i == 0 => return fail(e),
                    Err(_) => break,
                }
            }
            (out, Some(a[1]))
        }
        _ => match read_msghdr(pid, a[1]) {
            Ok(parts) => (vec![parts], None),
            Err(e) => return fail(e),
        },
    };
    let pidfd = xvisor_sys::process::pidfd_open_thread(host_tid).ok();
    // The thread is still in this very call: what was read is its memory,
    // and the pidfd names it.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let pidfd = pidfd?;
    let socket = match seccomp::pidfd_getfd(pidfd.as_fd(), a[0] as u32 as i32) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::ESRCH) => return None,
        Err(e) => return fail(e.raw_os_error().unwrap_or(errno::EBADF)),
    };
    let (family, socket_type) = match xvisor_sys::socket::family_and_type(socket.as_fd()) {
        Ok(kind) => kind,
        Err(e) => return fail(e.raw_os_error().unwrap_or(errno::EINVAL)),
    };
    let kind = Socket {
        fd: socket.as_fd(),
        family,
        socket_type,
    };
    let mut prepared = Vec::with_capacity(messages.len());
    for (i, parts) in messages.iter().enumerate() {
        let message = prepare(rules, call, parts, &kind, pidfd.as_fd(), host_tid, own_network);
        match message {
            Ok(m) => prepared.push(m),
            Err((e, denied)) if i == 0 => return Some((Decision::Errno(e), denied, None)),
            // Later messages: the ones before are sent, and the next call
            // meets this one's error.
            Err(_) => break,
        }
    }
    // Read after the first check: the caller must still be in this call
    // (its thread not gone and its id taken by another) for the copies to
    // be its memory.
    if !seccomp::id_valid(listener, notification.id) {
        return None;
    }
    let sending = Sending {
        messages: prepared,
        flags: guest_flags | MSG_DONTWAIT | MSG_NOSIGNAL,
        quiet: guest_flags & MSG_NOSIGNAL != 0,
        lengths_at,
        guest: pid,
        thread: pidfd,
    };
    match try_send(socket.as_fd(), &sending) {
        Some(answer) => Some((answer, None, None)),
        // Asked only when there is no room: most sends go at once.
        None if guest_flags & MSG_DONTWAIT != 0
            || xvisor_sys::event::is_nonblocking(socket.as_fd()).unwrap_or(true) =>
        {
            fail(xvisor_sys::errno::EAGAIN)
        }
        None => Some((
            Decision::Park(Wait::SendRoom),
            None,
            Some(crate::perform::Connecting {
                socket,
                again: None,
                sending: Some(sending),
                ended: std::sync::Mutex::new(None),
            }),
        )),
    }
}

/// Why a message is not sent: the errno, and for a refusal by a rule what
/// to name.
type Refusal = (i32, Option<Denied>);

/// A message's destination, decided: the address to send with (`None`:
/// the connected peer) and the unix socket file to hold, or the refusal.
fn destination(
    rules: &ConnectRules,
    call: &str,
    socket: &Socket<'_>,
    address: Option<Vec<u8>>,
    host_tid: i32,
    own_network: bool,
) -> Result<(Option<Vec<u8>>, Option<OwnedFd>), Refusal> {
    let denied = |shown: String| Denied {
        shown: format!("{call}({shown})"),
        reason: format!("not in {}", rules.source),
    };
    match net::plan_send(socket.family, socket.socket_type, address.as_deref()) {
        SendPlan::Fail(e) => Err((e, None)),
        SendPlan::NoAddress => Ok((None, None)),
        SendPlan::AsGiven => Ok((address, None)),
        SendPlan::Inet(target) if rules.allows(&target) => Ok((address, None)),
        SendPlan::Inet(target) => {
            let shown = match &target {
                Target::Inet { address, port, .. } => std::net::SocketAddr::new(*address, *port).to_string(),
                other => other.to_string(),
            };
            Err((errno::EACCES, Some(denied(shown))))
        }
        SendPlan::Abstract(name) if !rules.allows(&Target::UnixAbstract(name.clone())) => {
            Err((errno::EACCES, Some(denied(Target::UnixAbstract(name).to_string()))))
        }
        SendPlan::Abstract(_) if own_network && perform::in_instance_network(socket.fd) => Ok((address, None)),
        SendPlan::Abstract(_) => Err((
            errno::EPERM,
            Some(Denied {
                shown: format!("{call}(abstract unix socket)"),
                reason: "outside the instance's own network namespace (with --net host the supervisor cannot send to one for the guest)".into(),
            }),
        )),
        SendPlan::Foreign => Err((
            errno::EPERM,
            Some(Denied {
                shown: format!("{call}(an address of family {})", socket.family),
                reason: "the supervisor sends only to IP, unix and netlink-kernel destinations under udp: rules".into(),
            }),
        )),
        SendPlan::UnixPath(path) => {
            let (file, shown) = perform::resolve_unix_socket(host_tid, &path).map_err(|e| (e, None))?;
            if rules.restricts_unix_paths() && !perform::unix_rule_allows(rules, host_tid, &file) {
                return Err((errno::EACCES, Some(denied(format!("unix:{shown}")))));
            }
            let through = net::unix_address(&format!("/proc/self/fd/{}", file.as_raw_fd()))
                .ok_or((errno::ENAMETOOLONG, None))?;
            Ok((Some(through), Some(file)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut out = ((CMSG_HEADER + data.len()) as u64).to_ne_bytes().to_vec();
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }

    #[test]
    fn control_messages_are_passed_on_refused_or_have_their_descriptors_found() {
        let ttl = cmsg(SOL_IP, 2, &9i32.to_ne_bytes());
        assert_eq!(descriptor_slots(&ttl, false, "sendmsg").unwrap(), Vec::<usize>::new());
        let route = cmsg(SOL_IP, 7, &[0x83, 7, 4, 10, 0, 0, 1, 1]);
        let (e, denied) = descriptor_slots(&route, false, "sendmsg").unwrap_err();
        assert_eq!(e, errno::EPERM);
        assert_eq!(denied.unwrap().shown, "sendmsg(control message level 0 type 7)");
        let rights = cmsg(SOL_SOCKET, SCM_RIGHTS, &[3, 0, 0, 0, 4, 0, 0, 0]);
        let mut both = ttl.clone();
        both.extend_from_slice(&rights);
        assert_eq!(
            descriptor_slots(&both, true, "sendmsg").unwrap(),
            [ttl.len() + 16, ttl.len() + 20]
        );
        assert_eq!(
            descriptor_slots(&rights, false, "sendmsg").unwrap(),
            Vec::<usize>::new(),
            "ignored off unix"
        );
        let credentials = cmsg(SOL_SOCKET, SCM_CREDENTIALS, &[0; 12]);
        assert_eq!(
            descriptor_slots(&credentials, true, "sendmsg").unwrap_err().0,
            errno::EPERM
        );
        assert!(descriptor_slots(&credentials, false, "sendmsg").is_ok());
        let mut long = ttl.clone();
        long[0] = 200;
        assert_eq!(descriptor_slots(&long, false, "sendmsg").unwrap_err().0, errno::EINVAL);
        // Shorter than a header: nothing to read, as the kernel reads it.
        assert!(descriptor_slots(&[1, 2, 3], false, "sendmsg").unwrap().is_empty());
    }

    #[test]
    fn any_control_bytes_are_checked_without_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 96) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8).collect();
            // Often a plausible header: a small length, a known level.
            if len >= 16 && round % 2 == 0 {
                bytes[..8].copy_from_slice(&(seed % 40).to_ne_bytes());
                bytes[8..12].copy_from_slice(&[0i32, 1, 41, 17][(seed % 4) as usize].to_ne_bytes());
            }
            if let Ok(slots) = descriptor_slots(&bytes, round % 3 == 0, "sendmsg") {
                assert!(slots.iter().all(|&s| s + 4 <= bytes.len()));
            }
        }
    }
}
