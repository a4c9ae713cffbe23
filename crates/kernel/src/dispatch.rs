//! From a trapped call to a decision, through the table's handler.

use xvisor_trap::bpf::AUDIT_ARCH_X86_64;
use xvisor_trap::table::{self, EarlierCheck, Handler, Syscall};
use xvisor_trap::Policy;

use crate::TrappedCall;

/// Linux errno values the handlers answer with.
pub mod errno {
    pub use xvisor_trap::table::errno::*;
}

/// What the supervisor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The kernel performs the call as made (only for decisions on
    /// register values alone).
    Continue,
    /// The call fails with this errno.
    Errno(i32),
    /// The call must wait in the supervisor (without holding a thread of
    /// it) until this happens; then the kernel performs it.
    Park(Wait),
    /// The supervisor performs the call itself, on a copy of its memory
    /// arguments, and answers with the result: a decision on memory never
    /// lets the kernel read that memory again.
    Perform(Performed),
    /// The call returns this value (the result of a performed call).
    Value(i64),
}

/// A call the supervisor performs on the guest's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Performed {
    /// `connect` under `[net].connect` rules only the supervisor holds.
    Connect,
    /// `sendto` with an address, `sendmsg`, `sendmmsg` under `[net].connect`
    /// rules that name UDP destinations: the data, address and control
    /// messages copied once, the destination decided on the copy, the send
    /// made on the guest's own socket.
    Send,
    /// A change of a file's mode, owner, times or extended attributes
    /// where the guest's ids are the caller's: refused on a host object
    /// handed in, else made on the file decided on.
    Metadata,
    /// `bind` under `[net].bind` rules only the supervisor holds (an
    /// address, a UDP port, an abstract name): the address copied once,
    /// decided on the copy, the guest's own socket bound with it.
    Bind,
    /// `open`, `openat`, `openat2`, `creat` under `[fs]` patterns: the path
    /// copied once and resolved in the guest's root; a file a pattern
    /// grants opened by the supervisor and handed in (ADDFD with SEND);
    /// any other open left to the kernel and the guest's Landlock domain,
    /// which grants nothing a pattern grants.
    Open,
    /// `ioctl(fd, TIOCSCTTY)`: a pty of the instance's own may become the
    /// caller's controlling terminal, no other terminal.
    ControllingTerminal,
}

/// What a parked call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A child of the calling process ends: any child, or the one with this
    /// pid (inside the instance).
    ChildEnd { child: Option<i32> },
    /// A connect the supervisor started on the guest's socket (a blocking
    /// one, made non-blocking for the attempt) ends: the socket becomes
    /// writable, and its pending error is the call's answer.
    Connected,
    /// A unix stream connect the supervisor tried found its listener's
    /// queue full: tried again, without waiting, until there is room.
    UnixQueue,
    /// A send the supervisor performs found no room (a full send buffer, a
    /// unix receiver's full queue): tried again, without waiting, until it
    /// goes.
    SendRoom,
}

impl Decision {
    pub fn describe(&self) -> String {
        match self {
            Self::Continue => "continue".into(),
            Self::Errno(e) => format!("errno {}", xvisor_trap::policy::errno_name(*e)),
            Self::Park(Wait::ChildEnd { child: None }) => "park until a child ends".into(),
            Self::Park(Wait::ChildEnd { child: Some(pid) }) => format!("park until child {pid} ends"),
            Self::Park(Wait::Connected) => "park until the connect ends".into(),
            Self::Park(Wait::UnixQueue) => "park until the listener has room".into(),
            Self::Park(Wait::SendRoom) => "park until the send has room".into(),
            Self::Perform(
                Performed::Connect | Performed::Send | Performed::Metadata | Performed::Open | Performed::Bind,
            ) => "performed by the supervisor".into(),
            Self::Perform(Performed::ControllingTerminal) => "decided on the terminal".into(),
            Self::Value(v) => format!("performed, returned {v}"),
        }
    }
}

const WNOHANG: u64 = 1;
/// wait4's WUNTRACED, waitid's WSTOPPED.
const WSTOPPED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const WAIT4: u32 = 61;

/// `wait4(pid, status, options, rusage)` / `waitid(idtype, id, info,
/// options, rusage)`: a blocking wait for the end of any child or of one
/// child parks; everything else (WNOHANG, stops and continues, process
/// groups, pidfds) is the kernel's at once.
fn wait_for_child(nr: u32, a: [u64; 6]) -> Decision {
    let (selector, options) = if nr == WAIT4 {
        let pid = a[0] as u32 as i32;
        let selector = match pid {
            -1 => Some(None),
            p if p > 0 => Some(Some(p)),
            _ => None,
        };
        (selector, a[2] & 0xffff_ffff)
    } else {
        let options = a[3] & 0xffff_ffff;
        if options & WEXITED == 0 {
            return Decision::Continue;
        }
        let selector = match a[0] & 0xffff_ffff {
            P_ALL => Some(None),
            P_PID => i32::try_from(a[1] & 0xffff_ffff).ok().filter(|p| *p > 0).map(Some),
            _ => None,
        };
        (selector, options)
    };
    match selector {
        Some(child) if options & (WNOHANG | WSTOPPED | WCONTINUED) == 0 => Decision::Park(Wait::ChildEnd { child }),
        _ => Decision::Continue,
    }
}

/// The first error Linux's own argument checks give a refused call, before
/// its refusal (see [`EarlierCheck`]). Read from /proc while the caller is
/// stopped in the call; another thread may change its descriptors at the
/// same time, which changes at most which refusal it gets: every path ends
/// in an errno.
fn earlier_error(checks: &[EarlierCheck], call: &TrappedCall) -> Option<i32> {
    let a = call.args;
    let tid = call.pid;
    let fd_link = |fd: i32| std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok();
    checks.iter().find_map(|check| match *check {
        EarlierCheck::OpenFd(n) => {
            let fd = a[usize::from(n)] as u32 as i32;
            (fd < 0 || fd_link(fd).is_none()).then_some(errno::EBADF)
        }
        EarlierCheck::NamespaceOfType => {
            let wanted = a[1] as u32;
            if wanted & !NAMESPACE_FLAGS != 0 {
                return Some(errno::EINVAL);
            }
            let target = fd_link(a[0] as u32 as i32)?;
            let target = target.to_string_lossy();
            match target.split_once(":[").map(|(kind, _)| kind) {
                Some(kind) => {
                    let flag = namespace_flag(kind)?;
                    (wanted != 0 && wanted != flag).then_some(errno::EINVAL)
                }
                // A pidfd names every namespace of a process: the flags
                // must say which.
                None if target == "anon_inode:[pidfd]" => (wanted == 0).then_some(errno::EINVAL),
                None => Some(errno::EINVAL),
            }
        }
        EarlierCheck::Tracee => {
            const PTRACE_TRACEME: u64 = 0;
            const PTRACE_ATTACH: u64 = 16;
            const PTRACE_SEIZE: u64 = 0x4206;
            let request = a[0];
            if request == PTRACE_TRACEME {
                // Every guest task already has its tracer: the monitor.
                return None;
            }
            let pid = a[1] as u32 as i32;
            // The instance's own /proc, through the caller's root.
            let exists = pid > 0 && std::fs::symlink_metadata(format!("/proc/{tid}/root/proc/{pid}")).is_ok();
            let attaching = matches!(request, PTRACE_ATTACH | PTRACE_SEIZE);
            (!exists || !attaching).then_some(errno::ESRCH)
        }
    })
}

/// Every `CLONE_NEW*` flag `setns` takes.
const NAMESPACE_FLAGS: u32 =
    0x0000_0080 | 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// The `CLONE_NEW*` flag of a namespace, by the name /proc gives its file.
fn namespace_flag(kind: &str) -> Option<u32> {
    Some(match kind {
        "time" | "time_for_children" => 0x0000_0080,
        "mnt" => 0x0002_0000,
        "cgroup" => 0x0200_0000,
        "uts" => 0x0400_0000,
        "ipc" => 0x0800_0000,
        "user" => 0x1000_0000,
        "pid" | "pid_for_children" => 0x2000_0000,
        "net" => 0x4000_0000,
        _ => return None,
    })
}

/// The table row of a trapped call, if it is a known x86_64 call.
pub fn syscall_of(call: &TrappedCall) -> Option<&'static Syscall> {
    if call.arch != AUDIT_ARCH_X86_64 {
        return None;
    }
    u32::try_from(call.nr).ok().and_then(table::lookup)
}

/// Decides a trapped call. Fails closed: a foreign ABI, an unknown number or
/// a refused call is answered with an errno, never a blind continue.
pub fn decide(policy: &Policy, call: &TrappedCall) -> Decision {
    if call.arch != AUDIT_ARCH_X86_64 {
        return Decision::Errno(errno::ENOSYS);
    }
    let Ok(nr) = u32::try_from(call.nr) else {
        return Decision::Errno(errno::ENOSYS);
    };
    // Under guest debuggers, a ptrace request outside the attach family
    // acts only on the caller's own tracees (the kernel checks it): the
    // kernel performs it (trapped under strict and when recording). The
    // attach family never comes here (it stops for the process monitor);
    // should it, it is refused below.
    if nr == table::PTRACE
        && policy.allows_guest_debuggers()
        && policy.user_denial(nr).is_none()
        && !table::PTRACE_ATTACH_FAMILY
            .iter()
            .any(|&r| u64::from(r) == call.args[0])
    {
        return Decision::Continue;
    }
    // One table lookup per trapped call: the refusal check and the handler
    // share the row.
    let row = table::lookup(nr);
    // The user's denial is looked up for these rare rows only: every
    // trapped call passes here.
    if let Some(Syscall {
        handler: Handler::RefuseAfter(checks),
        ..
    }) = row
    {
        if policy.user_denial(nr).is_none() {
            if let Some(e) = earlier_error(checks, call) {
                return Decision::Errno(e);
            }
        }
    }
    if let Some(e) = policy.refusal_of(nr, row) {
        return Decision::Errno(e);
    }
    let Some(s) = row else {
        return Decision::Errno(errno::ENOSYS);
    };
    let a = call.args;
    if policy.supervises_connect() {
        if s.number == xvisor_trap::policy::CONNECT {
            return Decision::Perform(Performed::Connect);
        }
        // TCP Fast Open would connect without a connect call.
        if let Some(rule) = table::fastopen_rules(nr).and_then(|rules| table::refusing_rule(rules, &a)) {
            return Decision::Errno(rule.errno);
        }
        // A source route would take the socket to another host.
        if nr == table::SETSOCKOPT {
            if let Some(rule) = table::refusing_rule(table::source_route_rules(), &a) {
                return Decision::Errno(rule.errno);
            }
        }
        // A datagram's destination is in memory (or, for sendto, named by
        // a pointer register): sent by the supervisor. A sendto without an
        // address names none.
        if policy.supervises_sends() {
            match nr {
                table::SENDMSG | table::SENDMMSG => return Decision::Perform(Performed::Send),
                table::SENDTO if a[4] != 0 => return Decision::Perform(Performed::Send),
                _ => {}
            }
        }
    }
    if policy.supervises_bind() && nr == table::BIND {
        return Decision::Perform(Performed::Bind);
    }
    if policy.supervises_opens() && table::OPEN_CALLS.contains(&nr) {
        // A setuid or setgid mode refused by its register first, and
        // openat2 (whose mode is in memory) as without patterns.
        if s.handler == Handler::OpenHow && policy.refuses_privilege_bits() {
            return Decision::Errno(errno::ENOSYS);
        }
        if let Some(rule) = table::refusing_rule(policy.register_rules(s.handler), &a) {
            return Decision::Errno(rule.errno);
        }
        return Decision::Perform(Performed::Open);
    }
    if s.handler == Handler::Ioctl && table::takes_controlling_terminal(&a) {
        return Decision::Perform(Performed::ControllingTerminal);
    }
    if policy.guards_host_objects() && s.handler == Handler::Ioctl && table::sets_file_flags(&a) {
        return Decision::Perform(Performed::Metadata);
    }
    if policy.guards_host_objects() && table::changes_metadata(nr) {
        // A setuid or setgid mode refused by its register first.
        if let Some(rule) = table::refusing_rule(policy.register_rules(s.handler), &a) {
            return Decision::Errno(rule.errno);
        }
        return Decision::Perform(Performed::Metadata);
    }
    match s.handler {
        Handler::Continue => Decision::Continue,
        Handler::Clone
        | Handler::Unshare
        | Handler::Ioctl
        | Handler::Socket
        | Handler::Personality
        | Handler::SetsMode(_) => match table::refusing_rule(policy.register_rules(s.handler), &a) {
            Some(rule) => Decision::Errno(rule.errno),
            None => Decision::Continue,
        },
        // clone3's flags are in memory the kernel would read again after
        // our decision: refuse, and C libraries fall back to clone.
        Handler::Clone3 => Decision::Errno(errno::ENOSYS),
        // Under strict the supervisor holds every decision, a blocking
        // wait's end included; otherwise the kernel blocks in it (cheaper:
        // no wake-up through the monitor and the scheduler).
        Handler::WaitChild if policy.profile == xvisor_trap::Profile::Strict => wait_for_child(nr, a),
        Handler::WaitChild => Decision::Continue,
        Handler::Refuse | Handler::RefuseAfter(_) => Decision::Errno(errno::EPERM),
        Handler::OpenHow if policy.refuses_privilege_bits() => Decision::Errno(errno::ENOSYS),
        Handler::OpenHow => Decision::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvisor_trap::Profile;

    const CLONE_NEWUSER: u64 = xvisor_trap::table::value::CLONE_NEWUSER as u64;
    const TIOCSTI: u64 = xvisor_trap::table::value::TIOCSTI as u64;
    const AF_VSOCK: u64 = xvisor_trap::table::value::AF_VSOCK as u64;

    fn call(nr: i32, args: [u64; 6]) -> TrappedCall {
        TrappedCall {
            id: 1,
            pid: 1,
            nr,
            arch: AUDIT_ARCH_X86_64,
            args,
        }
    }

    #[test]
    fn under_guest_debuggers_only_requests_on_own_tracees_are_continued() {
        let mut p = Policy::new(Profile::Strict);
        p.allow_guest_debuggers();
        let ptrace = |request: u64| decide(&p, &call(101, [request, 999_999, 0, 0, 0, 0]));
        // PEEKDATA, GETREGS, CONT, SETOPTIONS, INTERRUPT: the kernel checks
        // the caller traces the pid.
        for request in [2, 12, 7, 0x4200, 0x4207] {
            assert_eq!(ptrace(request), Decision::Continue, "{request:#x}");
        }
        // The attach family stops for the monitor; here it is refused.
        for request in [0, 16, 17, 0x4206] {
            assert_ne!(ptrace(request), Decision::Continue, "{request:#x}");
        }
        // Without guest debuggers, or denied by the user: refused.
        let plain = Policy::new(Profile::Strict);
        assert_eq!(
            decide(&plain, &call(101, [12, 1, 0, 0, 0, 0])),
            Decision::Errno(errno::ESRCH)
        );
        let mut denied = Policy::new(Profile::Strict);
        denied.allow_guest_debuggers();
        denied.deny("ptrace").unwrap();
        assert_eq!(
            decide(&denied, &call(101, [12, 1, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
    }

    #[test]
    fn register_checks() {
        let p = Policy::new(Profile::Strict);
        assert_eq!(
            decide(&p, &call(272, [CLONE_NEWUSER, 0, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(decide(&p, &call(272, [0x20000, 0, 0, 0, 0, 0])), Decision::Continue);
        assert_eq!(
            decide(&p, &call(56, [CLONE_NEWUSER | 17, 0, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(decide(&p, &call(56, [0x3d0f00, 0, 0, 0, 0, 0])), Decision::Continue);
        assert_eq!(decide(&p, &call(435, [0; 6])), Decision::Errno(errno::ENOSYS));
        assert_eq!(
            decide(&p, &call(16, [0, TIOCSTI, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(
            decide(&p, &call(16, [0, 0xffff_ffff_0000_5412, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(decide(&p, &call(16, [0, 0x5401, 0, 0, 0, 0])), Decision::Continue);
        assert_eq!(
            decide(&p, &call(41, [AF_VSOCK, 1, 0, 0, 0, 0])),
            Decision::Errno(errno::EAFNOSUPPORT)
        );
        assert_eq!(decide(&p, &call(41, [2, 1, 0, 0, 0, 0])), Decision::Continue);
    }

    #[test]
    fn blocking_waits_for_a_child_park() {
        assert_eq!(
            decide(&Policy::new(Profile::Default), &call(61, [u64::MAX, 0, 0, 0, 0, 0])),
            Decision::Continue
        );
        let p = Policy::new(Profile::Strict);
        let park = |child| Decision::Park(Wait::ChildEnd { child });
        let minus_one = u64::MAX; // -1 as the register holds it
        assert_eq!(decide(&p, &call(61, [minus_one, 0, 0, 0, 0, 0])), park(None));
        assert_eq!(
            decide(&p, &call(61, [0xffff_ffff, 0, 0x4000_0000, 0, 0, 0])),
            park(None)
        );
        assert_eq!(decide(&p, &call(61, [7, 0, 0, 0, 0, 0])), park(Some(7)));
        for options in [WNOHANG, WSTOPPED, WCONTINUED] {
            assert_eq!(
                decide(&p, &call(61, [minus_one, 0, options, 0, 0, 0])),
                Decision::Continue
            );
        }
        // Process groups: the kernel's.
        assert_eq!(decide(&p, &call(61, [0, 0, 0, 0, 0, 0])), Decision::Continue);
        assert_eq!(
            decide(&p, &call(61, [(-5i64) as u64, 0, 0, 0, 0, 0])),
            Decision::Continue
        );
        assert_eq!(decide(&p, &call(247, [P_ALL, 0, 0, WEXITED, 0, 0])), park(None));
        assert_eq!(decide(&p, &call(247, [P_PID, 9, 0, WEXITED, 0, 0])), park(Some(9)));
        assert_eq!(
            decide(&p, &call(247, [P_PID, 9, 0, WEXITED | WNOHANG, 0, 0])),
            Decision::Continue
        );
        assert_eq!(
            decide(&p, &call(247, [P_PID, 9, 0, WSTOPPED, 0, 0])),
            Decision::Continue
        );
        assert_eq!(decide(&p, &call(247, [3, 9, 0, WEXITED, 0, 0])), Decision::Continue);
        assert_eq!(decide(&p, &call(247, [P_PID, 0, 0, WEXITED, 0, 0])), Decision::Continue);
    }

    #[test]
    fn controlling_terminals_and_guarded_metadata_calls_are_the_supervisor_s() {
        let strict = Policy::new(Profile::Strict);
        assert_eq!(
            decide(&strict, &call(16, [0, 0x540e, 0, 0, 0, 0])),
            Decision::Perform(Performed::ControllingTerminal)
        );
        assert_eq!(decide(&strict, &call(91, [1, 0o644, 0, 0, 0, 0])), Decision::Continue);
        let mut guarded = Policy::new(Profile::Default);
        guarded.guard_host_objects();
        assert_eq!(
            decide(&guarded, &call(91, [1, 0o644, 0, 0, 0, 0])),
            Decision::Perform(Performed::Metadata)
        );
        assert_eq!(
            decide(&guarded, &call(280, [1, 0, 0, 0, 0, 0])),
            Decision::Perform(Performed::Metadata)
        );
        assert_eq!(
            decide(&guarded, &call(16, [1, 0x4008_6602, 0, 0, 0, 0])),
            Decision::Perform(Performed::Metadata)
        );
        assert_eq!(
            decide(&strict, &call(16, [1, 0x4008_6602, 0, 0, 0, 0])),
            Decision::Continue
        );
        // A setuid mode refused by its register rule is refused first.
        guarded.refuse_privilege_bits();
        assert_eq!(
            decide(&guarded, &call(91, [1, 0o4755, 0, 0, 0, 0])),
            Decision::Errno(errno::EPERM)
        );
    }

    #[test]
    fn sends_naming_a_destination_are_the_supervisor_s_when_udp_is_restricted() {
        use xvisor_trap::supervised::{AddressRange, ConnectRules, Destination, SupervisorRules, Transport};
        let rules = |transport| SupervisorRules {
            connect: Some(ConnectRules {
                allowed: vec![Destination::Inet {
                    transport,
                    range: AddressRange::Any,
                    port: Some(53),
                }],
                source: String::new(),
            }),
            ..Default::default()
        };
        let mut udp = Policy::new(Profile::Strict);
        udp.supervise(rules(Transport::Udp));
        let send = Decision::Perform(Performed::Send);
        assert_eq!(decide(&udp, &call(44, [3, 0x1000, 1, 0, 0x2000, 16])), send);
        assert_eq!(decide(&udp, &call(44, [3, 0x1000, 1, 0, 0, 0])), Decision::Continue);
        assert_eq!(decide(&udp, &call(46, [3, 0x1000, 0, 0, 0, 0])), send);
        assert_eq!(decide(&udp, &call(307, [3, 0x1000, 2, 0, 0, 0])), send);
        assert_eq!(
            decide(&udp, &call(44, [3, 0x1000, 1, 0x2000_0000, 0x2000, 16])),
            Decision::Errno(errno::EOPNOTSUPP),
            "Fast Open first"
        );
        // SCTP over IP would connect without connect().
        assert_eq!(decide(&udp, &call(41, [2, 5, 132, 0, 0, 0])), Decision::Errno(93));
        assert_eq!(decide(&udp, &call(41, [2, 2, 17, 0, 0, 0])), Decision::Continue);
        // Source routes refused, other options the kernel's.
        assert_eq!(
            decide(&udp, &call(54, [3, 0, 4, 0x1000, 8, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(
            decide(&udp, &call(54, [3, 41, 57, 0x1000, 8, 0])),
            Decision::Errno(errno::EPERM)
        );
        assert_eq!(decide(&udp, &call(54, [3, 0, 2, 0x1000, 4, 0])), Decision::Continue);
        assert_eq!(decide(&udp, &call(54, [3, 1, 4, 0x1000, 4, 0])), Decision::Continue);
        let mut tcp = Policy::new(Profile::Strict);
        tcp.supervise(rules(Transport::Tcp));
        assert_eq!(decide(&tcp, &call(46, [3, 0x1000, 0, 0, 0, 0])), Decision::Continue);
        assert_eq!(
            decide(&tcp, &call(44, [3, 0x1000, 1, 0, 0x2000, 16])),
            Decision::Continue
        );
    }

    #[test]
    fn fails_closed() {
        let p = Policy::new(Profile::Strict);
        assert_eq!(decide(&p, &call(-1, [0; 6])), Decision::Errno(errno::ENOSYS));
        assert_eq!(decide(&p, &call(400, [0; 6])), Decision::Errno(errno::ENOSYS));
        assert_eq!(decide(&p, &call(100_000, [0; 6])), Decision::Errno(errno::ENOSYS));
        assert_eq!(decide(&p, &call(321, [0; 6])), Decision::Errno(errno::EPERM));
        let mut foreign = call(0, [0; 6]);
        foreign.arch = xvisor_trap::bpf::AUDIT_ARCH_I386;
        assert_eq!(decide(&p, &foreign), Decision::Errno(errno::ENOSYS));
    }

    #[test]
    fn every_number_is_decided_without_panic() {
        for profile in Profile::ALL {
            let p = Policy::new(profile);
            for nr in -5..600 {
                let _ = decide(&p, &call(nr, [u64::MAX; 6]));
            }
        }
    }
}
