//! The x86_64 system-call table: one row per call number, saying its name,
//! its argument kinds (for decoding and printing), how it is treated
//! (its [`Class`]) and which handler decides it when it is trapped.
//!
//! Everything else — the seccomp program, `xvisor syscalls`, the doc page —
//! is generated from this table, so it cannot drift from it.

use Arg::*;

/// How one argument register is read and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A signed integer.
    Int,
    /// A size, count or length.
    Len,
    /// A file descriptor.
    Fd,
    /// A directory descriptor for an `*at` call (`AT_FDCWD` shown by name).
    DirFd,
    /// A NUL-terminated path in guest memory.
    Path,
    /// A NUL-terminated string in guest memory that is not a path.
    Str,
    /// A buffer the call reads from guest memory.
    In,
    /// A buffer the call writes to guest memory.
    Out,
    /// A pointer to a structure.
    Ptr,
    /// `O_*` open flags.
    OpenFlags,
    /// A file mode (octal).
    Mode,
    /// A process or thread id.
    Pid,
    /// A signal number.
    Signal,
    /// `CLONE_*` flags.
    CloneFlags,
    /// `PROT_*` protection bits.
    Prot,
    /// `MAP_*` mapping flags.
    MapFlags,
    /// A socket address family (`AF_*`).
    Domain,
    /// A socket type (`SOCK_*`).
    SockType,
    /// An `ioctl` request number.
    IoctlRequest,
    /// `AT_*` flags.
    AtFlags,
    /// Other flags (hexadecimal).
    Flags,
    /// A user or group id.
    Id,
    /// A file offset.
    Offset,
    /// A NULL-terminated array of string pointers (argv, envp).
    StrArray,
}

/// Errno values used by the table (x86_64 Linux numbers).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const EACCES: i32 = 13;
    pub const EFAULT: i32 = 14;
    pub const EINVAL: i32 = 22;
    pub const ENAMETOOLONG: i32 = 36;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ENOSYS: i32 = 38;
    pub const EAFNOSUPPORT: i32 = 97;
    /// The kernel's "interrupted: restart if the handler has SA_RESTART,
    /// else EINTR" — never seen by a program: answered only to a call whose
    /// thread has a signal to take, which resolves it on the way out.
    pub const ERESTARTSYS: i32 = 512;
}

/// How a call is treated by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Safe on register values alone and acting only on resources the
    /// instance already owns (its memory, its descriptors, its own
    /// namespaces): may run in the host kernel without a supervisor round
    /// trip where the profile allows it.
    Hot,
    /// Carries meaning (paths, processes, sockets, identity, time, the
    /// kernel's state): what a trace records and what rules on files,
    /// programs and the network are about. Trapped only where something
    /// needs it in the supervisor (a trace, the strict profile, a rule
    /// neither the filter nor Landlock can hold); otherwise the confinement
    /// (namespaces, pivot_root, Landlock, the id map) already bounds it and
    /// the kernel runs it, guarded by its handler's register rules if any.
    Mediated,
    /// Refused in every profile, with the errno Linux gives a caller that
    /// lacks the privilege (EPERM) or a kernel that lacks the call (ENOSYS):
    /// it would bypass the filter or the supervisor, or attacks the host
    /// kernel.
    Refused(i32),
}

/// A refusal decided on argument registers alone, so the seccomp filter
/// can test it itself: a call guarded by such rules runs in the kernel
/// unless one of them matches, and is trapped (and refused by its handler)
/// when one does — the rare refused call pays a round trip, every other
/// call none. Tests read a register's low 32 bits: the kernel reads these
/// arguments as 32-bit values (`ioctl`'s request, a socket's family and
/// type, a personality) or keeps the tested bits there (`CLONE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterRule {
    /// Every one of these must hold for the rule to match.
    pub when: &'static [Condition],
    /// What the call fails with when the rule matches.
    pub errno: i32,
    /// The matching values, by name.
    pub names: &'static str,
}

/// One test of one argument register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// Which argument register (0..6).
    pub arg: u8,
    pub test: RegisterTest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterTest {
    /// Any of these bits is set.
    AnyBit(u32),
    /// The value is one of these.
    OneOf(&'static [u32]),
    /// The value is none of these.
    NoneOf(&'static [u32]),
    /// The value's bits under `mask` are one of `values` (a socket's type
    /// without its `SOCK_NONBLOCK`/`SOCK_CLOEXEC` flags).
    MaskedOneOf { mask: u32, values: &'static [u32] },
    /// The whole 64-bit register is not zero (a pointer given: both words
    /// are tested, so an address whose low word is zero is not taken for
    /// NULL).
    NotNull,
}

impl RegisterTest {
    pub fn holds(&self, value: u32) -> bool {
        match *self {
            Self::AnyBit(mask) => value & mask != 0,
            Self::OneOf(values) => values.contains(&value),
            Self::NoneOf(values) => !values.contains(&value),
            Self::MaskedOneOf { mask, values } => values.contains(&(value & mask)),
            Self::NotNull => value != 0,
        }
    }
}

impl Condition {
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let register = args.get(usize::from(self.arg)).copied().unwrap_or(0);
        match self.test {
            RegisterTest::NotNull => register != 0,
            test => test.holds(register as u32),
        }
    }
}

impl RegisterRule {
    /// Whether the call with these argument registers is refused by this
    /// rule.
    pub fn refuses(&self, args: &[u64; 6]) -> bool {
        self.when.iter().all(|c| c.holds(args))
    }
}

/// The first of `rules` that refuses a call with these registers.
pub fn refusing_rule(rules: &'static [RegisterRule], args: &[u64; 6]) -> Option<&'static RegisterRule> {
    rules.iter().find(|r| r.refuses(args))
}

/// `MSG_FASTOPEN`: a TCP connect made by `sendto`/`sendmsg`/`sendmmsg`
/// (TCP Fast Open), to the address they name, without a `connect` call.
pub const MSG_FASTOPEN: u32 = 0x2000_0000;

const FASTOPEN: &str = "MSG_FASTOPEN";

static SENDTO_FASTOPEN: [RegisterRule; 1] = [RegisterRule {
    when: &[Condition {
        arg: 3,
        test: RegisterTest::AnyBit(MSG_FASTOPEN),
    }],
    errno: errno::EOPNOTSUPP,
    names: FASTOPEN,
}];

static SENDMSG_FASTOPEN: [RegisterRule; 1] = [RegisterRule {
    when: &[Condition {
        arg: 2,
        test: RegisterTest::AnyBit(MSG_FASTOPEN),
    }],
    errno: errno::EOPNOTSUPP,
    names: FASTOPEN,
}];

/// The register rules that refuse TCP Fast Open on the calls that can
/// make it (`sendto`, `sendmsg`, `sendmmsg`: the flags are a register),
/// for policies whose connects the supervisor decides: such a send would
/// connect to an address the supervisor never saw. Refused with
/// EOPNOTSUPP, what a kernel with Fast Open turned off answers; programs
/// then connect first.
pub fn fastopen_rules(number: u32) -> Option<&'static [RegisterRule]> {
    match number {
        SENDTO | SENDMMSG => Some(&SENDTO_FASTOPEN),
        SENDMSG => Some(&SENDMSG_FASTOPEN),
        _ => None,
    }
}

/// `sendto`, `sendmsg`, `sendmmsg`: the calls that can name a datagram's
/// destination.
pub const SENDTO: u32 = 44;
/// `ptrace`'s number.
pub const PTRACE: u32 = 101;
/// The `ptrace` requests that make or end a tracer relationship:
/// `PTRACE_TRACEME`, `PTRACE_ATTACH`, `PTRACE_DETACH`, `PTRACE_SEIZE`.
/// Every other request acts only on the caller's own tracees (the kernel
/// checks it).
pub const PTRACE_ATTACH_FAMILY: &[u32] = &[0, 16, 17, 0x4206];
pub const SENDMSG: u32 = 46;
pub const SENDMMSG: u32 = 307;

/// `sendto` under a policy that restricts UDP destinations: Fast Open
/// refused as above, and a send naming a destination (`dest_addr` not
/// NULL, all 64 bits) trapped, to be performed by the supervisor. A send
/// with a NULL `dest_addr` names none (the socket's connected peer, which
/// its `connect` decided): it runs in the kernel.
static SENDTO_SUPERVISED: [RegisterRule; 2] = [
    SENDTO_FASTOPEN[0],
    RegisterRule {
        when: &[Condition {
            arg: 4,
            test: RegisterTest::NotNull,
        }],
        errno: errno::EACCES,
        names: "a destination address (decided and sent by the supervisor)",
    },
];

/// The filter's rules for `sendto` where the supervisor decides datagram
/// destinations ([`SENDTO_SUPERVISED`]).
pub fn sendto_supervised_rules() -> &'static [RegisterRule] {
    &SENDTO_SUPERVISED
}

/// `setsockopt`'s number.
pub const SETSOCKOPT: u32 = 54;

/// `bind`'s number (trapped where the supervisor holds `[net].bind`).
pub const BIND: u32 = 49;

/// `open`, `creat`, `openat`, `openat2`: the calls that open a file by
/// path (trapped where `[fs]` patterns make the supervisor decide opens).
pub const OPEN: u32 = 2;
pub const CREAT: u32 = 85;
pub const OPENAT: u32 = 257;
pub const OPENAT2: u32 = 437;
pub const OPEN_CALLS: &[u32] = &[OPEN, CREAT, OPENAT, OPENAT2];

/// A source route set on a socket: `IP_OPTIONS` (IPv4 options, where a
/// loose or strict source route makes the kernel send every packet to the
/// route's first hop instead of the address connected or sent to), and
/// IPv6's routing headers (`IPV6_RTHDR`, `IPV6_2292RTHDR`, and
/// `IPV6_2292PKTOPTIONS`, which can carry one). A policy whose destinations
/// the supervisor decides refuses them (EPERM): they would take a socket to
/// another host than the one decided on. Other socket options cost nothing:
/// the filter tests the level and name registers.
static SOURCE_ROUTE_RULES: [RegisterRule; 2] = [
    RegisterRule {
        when: &[
            Condition {
                arg: 1,
                test: RegisterTest::OneOf(&[0]), // SOL_IP
            },
            Condition {
                arg: 2,
                test: RegisterTest::OneOf(&[4]), // IP_OPTIONS
            },
        ],
        errno: errno::EPERM,
        names: "IP_OPTIONS",
    },
    RegisterRule {
        when: &[
            Condition {
                arg: 1,
                test: RegisterTest::OneOf(&[41]), // SOL_IPV6
            },
            Condition {
                arg: 2,
                // IPV6_2292RTHDR, IPV6_2292PKTOPTIONS, IPV6_RTHDR
                test: RegisterTest::OneOf(&[5, 6, 57]),
            },
        ],
        errno: errno::EPERM,
        names: "IPV6_RTHDR, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS",
    },
];

/// The register rules refusing source routes on `setsockopt`
/// ([`SOURCE_ROUTE_RULES`]).
pub fn source_route_rules() -> &'static [RegisterRule] {
    &SOURCE_ROUTE_RULES
}

/// Register values the handlers' rules name.
pub mod value {
    pub const CLONE_NEWUSER: u32 = 0x1000_0000;
    /// The namespaces a guest may not make even with CAP_SYS_ADMIN inside
    /// its user namespace: a user namespace (a new set of capabilities
    /// over everything it would own), a pid namespace (tasks the process
    /// monitor would know by other numbers), a cgroup or time namespace.
    /// UTS, IPC, mount and network namespaces of its own stay open to it.
    pub const CLONE_NEWPID: u32 = 0x2000_0000;
    pub const CLONE_NEWCGROUP: u32 = 0x0200_0000;
    pub const CLONE_NEWTIME: u32 = 0x0000_0080;
    pub const TIOCSTI: u32 = 0x5412;
    pub const TIOCLINUX: u32 = 0x541c;
    /// Makes a terminal the caller's controlling terminal.
    pub const TIOCSCTTY: u32 = 0x540e;
    /// Set a file's inode flags (`chattr`: nodump, noatime …) and its
    /// extended flags and project (`struct fsxattr`).
    pub const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
    pub const FS_IOC_FSSETXATTR: u32 = 0x401c_5820;
    pub const AF_INET: u32 = 2;
    pub const AF_INET6: u32 = 10;
    pub const AF_PACKET: u32 = 17;
    pub const AF_VSOCK: u32 = 40;
    /// `SOCK_TYPE_MASK`: a socket type without its creation flags.
    pub const SOCK_TYPE_MASK: u32 = 0xf;
    pub const SOCK_RAW: u32 = 3;
    /// Obsolete: an `AF_INET` socket of this type is a packet socket.
    pub const SOCK_PACKET: u32 = 10;
    /// The personalities that keep address-space randomisation: Linux's
    /// own (`PER_LINUX`), with `UNAME26`, with `PER_LINUX32`'s address
    /// limit, both, and the query `0xffffffff` (the set container engines'
    /// default profiles allow). `ADDR_NO_RANDOMIZE` and the other flags are
    /// outside it.
    pub const PERSONALITIES_KEEPING_ASLR: &[u32] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];
}

const fn when(arg: u8, test: RegisterTest) -> Condition {
    Condition { arg, test }
}

const CLONE_RULES: &[RegisterRule] = &[RegisterRule {
    when: &[when(
        0,
        RegisterTest::AnyBit(
            value::CLONE_NEWUSER | value::CLONE_NEWPID | value::CLONE_NEWCGROUP | value::CLONE_NEWTIME,
        ),
    )],
    errno: errno::EPERM,
    names: "CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME",
}];

const IOCTL_RULES: &[RegisterRule] = &[
    RegisterRule {
        when: &[when(1, RegisterTest::OneOf(&[value::TIOCSTI, value::TIOCLINUX]))],
        errno: errno::EPERM,
        names: "TIOCSTI, TIOCLINUX",
    },
    // Trapped to be decided on the terminal it names: a pty of the
    // instance's own may become a controlling terminal, a terminal of the
    // host may not (see `Handler::Ioctl`).
    RegisterRule {
        when: &[when(1, RegisterTest::OneOf(&[value::TIOCSCTTY]))],
        errno: errno::EPERM,
        names: "TIOCSCTTY on a terminal not of the instance",
    },
];

/// `ioctl`'s register rules where host objects are guarded
/// (`Policy::guard_host_objects`): also the requests that set a file's
/// flags, which the supervisor performs like the other metadata calls.
pub const GUARDED_IOCTL_RULES: &[RegisterRule] = &[
    IOCTL_RULES[0],
    IOCTL_RULES[1],
    RegisterRule {
        when: &[when(
            1,
            RegisterTest::OneOf(&[value::FS_IOC_SETFLAGS, value::FS_IOC_FSSETXATTR]),
        )],
        errno: errno::EPERM,
        names: "FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR on a host object handed in",
    },
];

/// Whether an `ioctl` with these registers sets a file's flags.
pub fn sets_file_flags(args: &[u64; 6]) -> bool {
    matches!(args[1] as u32, value::FS_IOC_SETFLAGS | value::FS_IOC_FSSETXATTR)
}

/// Whether an `ioctl` with these registers makes a controlling terminal
/// (`TIOCSCTTY`): decided by the supervisor on the terminal itself.
pub fn takes_controlling_terminal(args: &[u64; 6]) -> bool {
    args[1] as u32 == value::TIOCSCTTY
}

/// The calls that change a file's mode, owner, times or extended
/// attributes, by descriptor or by path. Where the guest's ids are the
/// caller's (rootless), the supervisor performs them, so that no host
/// object handed in (stdio) is changed (`Policy::guard_host_objects`).
pub const METADATA_CALLS: &[u32] = &[
    90,  // chmod
    91,  // fchmod
    92,  // chown
    93,  // fchown
    94,  // lchown
    132, // utime
    188, // setxattr
    189, // lsetxattr
    190, // fsetxattr
    197, // removexattr
    198, // lremovexattr
    199, // fremovexattr
    235, // utimes
    260, // fchownat
    261, // futimesat
    268, // fchmodat
    280, // utimensat
    452, // fchmodat2
    463, // setxattrat
    466, // removexattrat
    469, // file_setattr
];

/// Whether `number` is one of [`METADATA_CALLS`].
pub fn changes_metadata(number: u32) -> bool {
    METADATA_CALLS.contains(&number)
}

const SOCKET_RULES: &[RegisterRule] = &[
    RegisterRule {
        when: &[when(0, RegisterTest::OneOf(&[value::AF_VSOCK]))],
        errno: errno::EAFNOSUPPORT,
        names: "AF_VSOCK",
    },
    // Packet and raw IP sockets see and forge every packet of the
    // instance's network (its own namespace) or the host's (`--net host`):
    // refused as Linux refuses a caller without CAP_NET_RAW.
    RegisterRule {
        when: &[when(0, RegisterTest::OneOf(&[value::AF_PACKET]))],
        errno: errno::EPERM,
        names: "AF_PACKET",
    },
    RegisterRule {
        when: &[
            when(0, RegisterTest::OneOf(&[value::AF_INET, value::AF_INET6])),
            when(
                1,
                RegisterTest::MaskedOneOf {
                    mask: value::SOCK_TYPE_MASK,
                    values: &[value::SOCK_RAW, value::SOCK_PACKET],
                },
            ),
        ],
        errno: errno::EPERM,
        names: "SOCK_RAW, SOCK_PACKET",
    },
];

/// `IPPROTO_SCTP`: an SCTP socket sets up associations from `sendmsg`
/// and from socket options (`SCTP_SOCKOPT_CONNECTX`) with addresses in
/// memory, never through a `connect` the supervisor sees.
pub const IPPROTO_SCTP: u32 = 132;

/// The socket rules while the supervisor decides `[net].connect`: the
/// built-in ones and SCTP over IP, refused as a kernel without SCTP
/// refuses it (`EPROTONOSUPPORT`).
pub const SUPERVISED_SOCKET_RULES: &[RegisterRule] = &[
    SOCKET_RULES[0],
    SOCKET_RULES[1],
    SOCKET_RULES[2],
    RegisterRule {
        when: &[
            when(0, RegisterTest::OneOf(&[value::AF_INET, value::AF_INET6])),
            when(2, RegisterTest::OneOf(&[IPPROTO_SCTP])),
        ],
        errno: 93, // EPROTONOSUPPORT
        names: "IPPROTO_SCTP while the supervisor decides [net].connect or [net].bind (it connects and binds without connect() and bind())",
    },
];

const PERSONALITY_RULES: &[RegisterRule] = &[RegisterRule {
    when: &[when(0, RegisterTest::NoneOf(value::PERSONALITIES_KEEPING_ASLR))],
    errno: errno::EPERM,
    names: "personalities other than 0x0, 0x8, 0x20000, 0x20008, 0xffffffff",
}];

/// The mode bits that raise a program's privileges when it runs
/// (`S_ISUID`, `S_ISGID`).
pub const PRIVILEGE_MODE_BITS: u32 = 0o6000;

/// A setuid or setgid mode in argument register `arg`.
macro_rules! privilege_mode_rule {
    ($arg:literal) => {
        &[RegisterRule {
            when: &[when($arg, RegisterTest::AnyBit(PRIVILEGE_MODE_BITS))],
            errno: errno::EPERM,
            names: "a setuid or setgid mode",
        }]
    };
}

const MODE_RULES_ARG1: &[RegisterRule] = privilege_mode_rule!(1);
const MODE_RULES_ARG2: &[RegisterRule] = privilege_mode_rule!(2);
const MODE_RULES_ARG3: &[RegisterRule] = privilege_mode_rule!(3);

/// A check Linux makes on a call's arguments before it refuses a caller
/// without the privilege the call needs: where a refused call carries such
/// checks, the supervisor makes them first, so a program probing with a
/// bad argument takes the branch it would natively (EBADF, EINVAL, ESRCH
/// before EPERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlierCheck {
    /// Argument register N is an open descriptor of the caller (EBADF).
    OpenFd(u8),
    /// `setns`: the descriptor in register 0 is a namespace or a pidfd, of
    /// the type register 1 names (0: any), and register 1 holds only
    /// namespace flags (EINVAL).
    NamespaceOfType,
    /// `ptrace`: the pid in register 1 exists in the instance (ESRCH), and
    /// a request other than attaching to it finds no tracee of the caller
    /// (ESRCH).
    Tracee,
}

/// Which handler decides a trapped call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Nothing to decide beyond the call number: the kernel performs the
    /// call. Trapped only to be recorded (`continue`).
    Continue,
    /// `clone`: refused when its flags ask for a new user namespace.
    Clone,
    /// `clone3`: its flags live in memory, which the kernel would read again
    /// after a decision: refused with ENOSYS so C libraries fall back to
    /// `clone`, whose flags are in a register.
    Clone3,
    /// `unshare`: refused when its flags ask for a new user namespace.
    Unshare,
    /// `ioctl`: refuses TIOCSTI and TIOCLINUX (input injection, console
    /// control); TIOCSCTTY is decided by the supervisor on the terminal it
    /// names (only a pty of the instance's own may become a controlling
    /// terminal).
    Ioctl,
    /// `socket`/`socketpair`: refuses address families that reach outside
    /// the instance's network namespace (AF_VSOCK), packet sockets and raw
    /// IP sockets.
    Socket,
    /// `personality`: refuses the personalities that turn off address-space
    /// randomisation (or other hardening).
    Personality,
    /// `wait4`/`waitid` for a child's end: under the strict profile, parked
    /// in the supervisor until a child of the caller has ended (the process
    /// monitor says when), then performed by the kernel; any other form, and
    /// any wait under the default profile, is performed at once.
    WaitChild,
    /// Answers the [`Class::Refused`] errno.
    Refuse,
    /// Answers the [`Class::Refused`] errno after these checks of the
    /// arguments, in Linux's order; trapped only when made.
    RefuseAfter(&'static [EarlierCheck]),
    /// A call that sets a file's mode (from argument register N): `chmod`,
    /// `open` with `O_CREAT`, `mknod` … Runs in the kernel, unless the
    /// instance keeps privilege bits off host files (a writable volume):
    /// then a setuid or setgid mode is refused ([`Handler::privilege_rules`]).
    SetsMode(u8),
    /// `openat2`: its mode lives in memory the kernel would read again
    /// after a decision; where setuid and setgid modes are refused it is
    /// refused with ENOSYS (C libraries and programs fall back to
    /// `openat`), elsewhere it runs in the kernel.
    OpenHow,
}

impl Handler {
    /// The handler's whole decision when it depends on registers alone: the
    /// refusals it gives when one of these rules matches; otherwise the
    /// kernel performs the call. Empty for handlers that need more.
    pub const fn register_rules(self) -> &'static [RegisterRule] {
        match self {
            Self::Clone | Self::Unshare => CLONE_RULES,
            Self::Ioctl => IOCTL_RULES,
            Self::Socket => SOCKET_RULES,
            Self::Personality => PERSONALITY_RULES,
            _ => &[],
        }
    }

    /// The refusals of a handler that sets modes, where the instance keeps
    /// privilege bits off host files: a setuid or setgid mode.
    pub const fn privilege_rules(self) -> &'static [RegisterRule] {
        match self {
            Self::SetsMode(1) => MODE_RULES_ARG1,
            Self::SetsMode(2) => MODE_RULES_ARG2,
            Self::SetsMode(_) => MODE_RULES_ARG3,
            _ => &[],
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub number: u32,
    pub name: &'static str,
    pub args: &'static [Arg],
    pub class: Class,
    pub handler: Handler,
}

const fn hot(number: u32, name: &'static str, args: &'static [Arg]) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Hot,
        handler: Handler::Continue,
    }
}

/// Hot unless its handler's register rule matches: then trapped, and
/// refused by the handler.
const fn guarded(number: u32, name: &'static str, args: &'static [Arg], handler: Handler) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Hot,
        handler,
    }
}

const fn med(number: u32, name: &'static str, args: &'static [Arg]) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Mediated,
        handler: Handler::Continue,
    }
}

const fn with(number: u32, name: &'static str, args: &'static [Arg], handler: Handler) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Mediated,
        handler,
    }
}

const fn eperm(number: u32, name: &'static str, args: &'static [Arg]) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Refused(errno::EPERM),
        handler: Handler::Refuse,
    }
}

/// Refused with EPERM, after Linux's own argument checks.
const fn eperm_after(
    number: u32,
    name: &'static str,
    args: &'static [Arg],
    checks: &'static [EarlierCheck],
) -> Syscall {
    Syscall {
        handler: Handler::RefuseAfter(checks),
        ..eperm(number, name, args)
    }
}

const fn enosys(number: u32, name: &'static str, args: &'static [Arg]) -> Syscall {
    Syscall {
        number,
        name,
        args,
        class: Class::Refused(errno::ENOSYS),
        handler: Handler::Refuse,
    }
}

/// Every x86_64 system call up to [`MAX_SYSCALL`], in number order.
///
/// Calls that never block natively and whose only meaning is confined by
/// the instance's pid namespace (fork, vfork, clone without a new user
/// namespace, exit, exit_group, the signal-sending calls) are hot. Numbers
/// 335–423 are unassigned on x86_64 (they are taken by 32-bit calls on other
/// architectures) and have no row: the filter refuses them with ENOSYS.
pub static SYSCALLS: &[Syscall] = &[
    hot(0, "read", &[Fd, Out, Len]),
    hot(1, "write", &[Fd, In, Len]),
    with(2, "open", &[Path, OpenFlags, Mode], Handler::SetsMode(2)),
    hot(3, "close", &[Fd]),
    med(4, "stat", &[Path, Out]),
    hot(5, "fstat", &[Fd, Out]),
    med(6, "lstat", &[Path, Out]),
    hot(7, "poll", &[Ptr, Len, Int]),
    hot(8, "lseek", &[Fd, Offset, Int]),
    hot(9, "mmap", &[Ptr, Len, Prot, MapFlags, Fd, Offset]),
    hot(10, "mprotect", &[Ptr, Len, Prot]),
    hot(11, "munmap", &[Ptr, Len]),
    hot(12, "brk", &[Ptr]),
    hot(13, "rt_sigaction", &[Signal, In, Out, Len]),
    hot(14, "rt_sigprocmask", &[Int, In, Out, Len]),
    hot(15, "rt_sigreturn", &[]),
    guarded(16, "ioctl", &[Fd, IoctlRequest, Ptr], Handler::Ioctl),
    hot(17, "pread64", &[Fd, Out, Len, Offset]),
    hot(18, "pwrite64", &[Fd, In, Len, Offset]),
    hot(19, "readv", &[Fd, Ptr, Len]),
    hot(20, "writev", &[Fd, Ptr, Len]),
    med(21, "access", &[Path, Int]),
    hot(22, "pipe", &[Out]),
    hot(23, "select", &[Int, Ptr, Ptr, Ptr, Ptr]),
    hot(24, "sched_yield", &[]),
    hot(25, "mremap", &[Ptr, Len, Len, Flags, Ptr]),
    hot(26, "msync", &[Ptr, Len, Flags]),
    hot(27, "mincore", &[Ptr, Len, Out]),
    hot(28, "madvise", &[Ptr, Len, Int]),
    hot(29, "shmget", &[Int, Len, Flags]),
    hot(30, "shmat", &[Int, Ptr, Flags]),
    hot(31, "shmctl", &[Int, Int, Ptr]),
    hot(32, "dup", &[Fd]),
    hot(33, "dup2", &[Fd, Fd]),
    hot(34, "pause", &[]),
    hot(35, "nanosleep", &[Ptr, Out]),
    hot(36, "getitimer", &[Int, Out]),
    hot(37, "alarm", &[Len]),
    hot(38, "setitimer", &[Int, In, Out]),
    hot(39, "getpid", &[]),
    hot(40, "sendfile", &[Fd, Fd, Ptr, Len]),
    with(41, "socket", &[Domain, SockType, Int], Handler::Socket),
    med(42, "connect", &[Fd, Ptr, Len]),
    hot(43, "accept", &[Fd, Out, Ptr]),
    hot(44, "sendto", &[Fd, In, Len, Flags, Ptr, Len]),
    hot(45, "recvfrom", &[Fd, Out, Len, Flags, Out, Ptr]),
    hot(46, "sendmsg", &[Fd, Ptr, Flags]),
    hot(47, "recvmsg", &[Fd, Ptr, Flags]),
    hot(48, "shutdown", &[Fd, Int]),
    med(49, "bind", &[Fd, Ptr, Len]),
    hot(50, "listen", &[Fd, Int]),
    hot(51, "getsockname", &[Fd, Out, Ptr]),
    hot(52, "getpeername", &[Fd, Out, Ptr]),
    with(53, "socketpair", &[Domain, SockType, Int, Out], Handler::Socket),
    hot(54, "setsockopt", &[Fd, Int, Int, In, Len]),
    hot(55, "getsockopt", &[Fd, Int, Int, Out, Ptr]),
    guarded(56, "clone", &[CloneFlags, Ptr, Ptr, Ptr, Int], Handler::Clone),
    hot(57, "fork", &[]),
    hot(58, "vfork", &[]),
    med(59, "execve", &[Path, StrArray, StrArray]),
    hot(60, "exit", &[Int]),
    with(61, "wait4", &[Pid, Out, Flags, Out], Handler::WaitChild),
    hot(62, "kill", &[Pid, Signal]),
    hot(63, "uname", &[Out]),
    hot(64, "semget", &[Int, Int, Flags]),
    hot(65, "semop", &[Int, Ptr, Len]),
    hot(66, "semctl", &[Int, Int, Int, Ptr]),
    hot(67, "shmdt", &[Ptr]),
    hot(68, "msgget", &[Int, Flags]),
    hot(69, "msgsnd", &[Int, In, Len, Flags]),
    hot(70, "msgrcv", &[Int, Out, Len, Int, Flags]),
    hot(71, "msgctl", &[Int, Int, Ptr]),
    hot(72, "fcntl", &[Fd, Int, Int]),
    hot(73, "flock", &[Fd, Int]),
    hot(74, "fsync", &[Fd]),
    hot(75, "fdatasync", &[Fd]),
    med(76, "truncate", &[Path, Offset]),
    hot(77, "ftruncate", &[Fd, Offset]),
    hot(78, "getdents", &[Fd, Out, Len]),
    hot(79, "getcwd", &[Out, Len]),
    med(80, "chdir", &[Path]),
    hot(81, "fchdir", &[Fd]),
    med(82, "rename", &[Path, Path]),
    med(83, "mkdir", &[Path, Mode]),
    med(84, "rmdir", &[Path]),
    with(85, "creat", &[Path, Mode], Handler::SetsMode(1)),
    med(86, "link", &[Path, Path]),
    med(87, "unlink", &[Path]),
    med(88, "symlink", &[Str, Path]),
    med(89, "readlink", &[Path, Out, Len]),
    with(90, "chmod", &[Path, Mode], Handler::SetsMode(1)),
    Syscall {
        handler: Handler::SetsMode(1),
        ..hot(91, "fchmod", &[Fd, Mode])
    },
    med(92, "chown", &[Path, Id, Id]),
    hot(93, "fchown", &[Fd, Id, Id]),
    med(94, "lchown", &[Path, Id, Id]),
    hot(95, "umask", &[Mode]),
    hot(96, "gettimeofday", &[Out, Out]),
    hot(97, "getrlimit", &[Int, Out]),
    hot(98, "getrusage", &[Int, Out]),
    hot(99, "sysinfo", &[Out]),
    hot(100, "times", &[Out]),
    eperm_after(101, "ptrace", &[Int, Pid, Ptr, Ptr], &[EarlierCheck::Tracee]),
    hot(102, "getuid", &[]),
    eperm(103, "syslog", &[Int, Out, Len]),
    hot(104, "getgid", &[]),
    med(105, "setuid", &[Id]),
    med(106, "setgid", &[Id]),
    hot(107, "geteuid", &[]),
    hot(108, "getegid", &[]),
    med(109, "setpgid", &[Pid, Pid]),
    hot(110, "getppid", &[]),
    hot(111, "getpgrp", &[]),
    med(112, "setsid", &[]),
    med(113, "setreuid", &[Id, Id]),
    med(114, "setregid", &[Id, Id]),
    hot(115, "getgroups", &[Len, Out]),
    med(116, "setgroups", &[Len, In]),
    med(117, "setresuid", &[Id, Id, Id]),
    hot(118, "getresuid", &[Out, Out, Out]),
    med(119, "setresgid", &[Id, Id, Id]),
    hot(120, "getresgid", &[Out, Out, Out]),
    hot(121, "getpgid", &[Pid]),
    med(122, "setfsuid", &[Id]),
    med(123, "setfsgid", &[Id]),
    hot(124, "getsid", &[Pid]),
    hot(125, "capget", &[Ptr, Out]),
    med(126, "capset", &[Ptr, In]),
    hot(127, "rt_sigpending", &[Out, Len]),
    hot(128, "rt_sigtimedwait", &[In, Out, Ptr, Len]),
    hot(129, "rt_sigqueueinfo", &[Pid, Signal, In]),
    hot(130, "rt_sigsuspend", &[In, Len]),
    hot(131, "sigaltstack", &[In, Out]),
    med(132, "utime", &[Path, In]),
    with(133, "mknod", &[Path, Mode, Int], Handler::SetsMode(1)),
    enosys(134, "uselib", &[Path]),
    with(135, "personality", &[Flags], Handler::Personality),
    enosys(136, "ustat", &[Int, Out]),
    med(137, "statfs", &[Path, Out]),
    hot(138, "fstatfs", &[Fd, Out]),
    enosys(139, "sysfs", &[Int, Ptr, Ptr]),
    hot(140, "getpriority", &[Int, Int]),
    med(141, "setpriority", &[Int, Int, Int]),
    med(142, "sched_setparam", &[Pid, In]),
    hot(143, "sched_getparam", &[Pid, Out]),
    med(144, "sched_setscheduler", &[Pid, Int, In]),
    hot(145, "sched_getscheduler", &[Pid]),
    hot(146, "sched_get_priority_max", &[Int]),
    hot(147, "sched_get_priority_min", &[Int]),
    hot(148, "sched_rr_get_interval", &[Pid, Out]),
    hot(149, "mlock", &[Ptr, Len]),
    hot(150, "munlock", &[Ptr, Len]),
    hot(151, "mlockall", &[Flags]),
    hot(152, "munlockall", &[]),
    eperm(153, "vhangup", &[]),
    eperm(154, "modify_ldt", &[Int, Ptr, Len]),
    eperm(155, "pivot_root", &[Path, Path]),
    enosys(156, "_sysctl", &[Ptr]),
    med(157, "prctl", &[Int, Flags, Flags, Flags, Flags]),
    hot(158, "arch_prctl", &[Int, Ptr]),
    med(159, "adjtimex", &[Ptr]),
    med(160, "setrlimit", &[Int, In]),
    med(161, "chroot", &[Path]),
    hot(162, "sync", &[]),
    eperm(163, "acct", &[Path]),
    eperm(164, "settimeofday", &[In, In]),
    eperm(165, "mount", &[Str, Path, Str, Flags, Ptr]),
    eperm(166, "umount2", &[Path, Flags]),
    eperm(167, "swapon", &[Path, Flags]),
    eperm(168, "swapoff", &[Path]),
    eperm(169, "reboot", &[Int, Int, Int, Ptr]),
    med(170, "sethostname", &[Str, Len]),
    med(171, "setdomainname", &[Str, Len]),
    eperm(172, "iopl", &[Int]),
    eperm(173, "ioperm", &[Len, Len, Int]),
    enosys(174, "create_module", &[Str, Len]),
    eperm(175, "init_module", &[In, Len, Str]),
    eperm(176, "delete_module", &[Str, Flags]),
    enosys(177, "get_kernel_syms", &[Ptr]),
    enosys(178, "query_module", &[Str, Int, Ptr, Len, Ptr]),
    eperm(179, "quotactl", &[Int, Path, Id, Ptr]),
    enosys(180, "nfsservctl", &[Int, Ptr, Ptr]),
    enosys(181, "getpmsg", &[]),
    enosys(182, "putpmsg", &[]),
    enosys(183, "afs_syscall", &[]),
    enosys(184, "tuxcall", &[]),
    enosys(185, "security", &[]),
    hot(186, "gettid", &[]),
    hot(187, "readahead", &[Fd, Offset, Len]),
    med(188, "setxattr", &[Path, Str, In, Len, Flags]),
    med(189, "lsetxattr", &[Path, Str, In, Len, Flags]),
    hot(190, "fsetxattr", &[Fd, Str, In, Len, Flags]),
    med(191, "getxattr", &[Path, Str, Out, Len]),
    med(192, "lgetxattr", &[Path, Str, Out, Len]),
    hot(193, "fgetxattr", &[Fd, Str, Out, Len]),
    med(194, "listxattr", &[Path, Out, Len]),
    med(195, "llistxattr", &[Path, Out, Len]),
    hot(196, "flistxattr", &[Fd, Out, Len]),
    med(197, "removexattr", &[Path, Str]),
    med(198, "lremovexattr", &[Path, Str]),
    hot(199, "fremovexattr", &[Fd, Str]),
    hot(200, "tkill", &[Pid, Signal]),
    hot(201, "time", &[Out]),
    hot(202, "futex", &[Ptr, Int, Int, Ptr, Ptr, Int]),
    hot(203, "sched_setaffinity", &[Pid, Len, In]),
    hot(204, "sched_getaffinity", &[Pid, Len, Out]),
    hot(205, "set_thread_area", &[Ptr]),
    hot(206, "io_setup", &[Len, Out]),
    hot(207, "io_destroy", &[Int]),
    hot(208, "io_getevents", &[Int, Len, Len, Out, Ptr]),
    hot(209, "io_submit", &[Int, Len, Ptr]),
    hot(210, "io_cancel", &[Int, Ptr, Out]),
    hot(211, "get_thread_area", &[Ptr]),
    enosys(212, "lookup_dcookie", &[Int, Out, Len]),
    hot(213, "epoll_create", &[Int]),
    enosys(214, "epoll_ctl_old", &[]),
    enosys(215, "epoll_wait_old", &[]),
    hot(216, "remap_file_pages", &[Ptr, Len, Prot, Len, Flags]),
    hot(217, "getdents64", &[Fd, Out, Len]),
    hot(218, "set_tid_address", &[Ptr]),
    hot(219, "restart_syscall", &[]),
    hot(220, "semtimedop", &[Int, Ptr, Len, Ptr]),
    hot(221, "fadvise64", &[Fd, Offset, Len, Int]),
    hot(222, "timer_create", &[Int, Ptr, Out]),
    hot(223, "timer_settime", &[Int, Flags, In, Out]),
    hot(224, "timer_gettime", &[Int, Out]),
    hot(225, "timer_getoverrun", &[Int]),
    hot(226, "timer_delete", &[Int]),
    eperm(227, "clock_settime", &[Int, In]),
    hot(228, "clock_gettime", &[Int, Out]),
    hot(229, "clock_getres", &[Int, Out]),
    hot(230, "clock_nanosleep", &[Int, Flags, In, Out]),
    hot(231, "exit_group", &[Int]),
    hot(232, "epoll_wait", &[Fd, Out, Int, Int]),
    hot(233, "epoll_ctl", &[Fd, Int, Fd, Ptr]),
    hot(234, "tgkill", &[Pid, Pid, Signal]),
    med(235, "utimes", &[Path, In]),
    enosys(236, "vserver", &[]),
    hot(237, "mbind", &[Ptr, Len, Int, In, Len, Flags]),
    hot(238, "set_mempolicy", &[Int, In, Len]),
    hot(239, "get_mempolicy", &[Out, Out, Len, Ptr, Flags]),
    med(240, "mq_open", &[Str, OpenFlags, Mode, Ptr]),
    med(241, "mq_unlink", &[Str]),
    hot(242, "mq_timedsend", &[Fd, In, Len, Int, In]),
    hot(243, "mq_timedreceive", &[Fd, Out, Len, Out, In]),
    hot(244, "mq_notify", &[Fd, In]),
    hot(245, "mq_getsetattr", &[Fd, In, Out]),
    eperm(246, "kexec_load", &[Ptr, Len, Ptr, Flags]),
    with(247, "waitid", &[Int, Pid, Out, Flags, Out], Handler::WaitChild),
    eperm(248, "add_key", &[Str, Str, In, Len, Int]),
    eperm(249, "request_key", &[Str, Str, Str, Int]),
    eperm(250, "keyctl", &[Int, Flags, Flags, Flags, Flags]),
    med(251, "ioprio_set", &[Int, Int, Int]),
    hot(252, "ioprio_get", &[Int, Int]),
    hot(253, "inotify_init", &[]),
    med(254, "inotify_add_watch", &[Fd, Path, Flags]),
    hot(255, "inotify_rm_watch", &[Fd, Int]),
    med(256, "migrate_pages", &[Pid, Len, In, In]),
    with(257, "openat", &[DirFd, Path, OpenFlags, Mode], Handler::SetsMode(3)),
    med(258, "mkdirat", &[DirFd, Path, Mode]),
    with(259, "mknodat", &[DirFd, Path, Mode, Int], Handler::SetsMode(2)),
    med(260, "fchownat", &[DirFd, Path, Id, Id, AtFlags]),
    med(261, "futimesat", &[DirFd, Path, In]),
    med(262, "newfstatat", &[DirFd, Path, Out, AtFlags]),
    med(263, "unlinkat", &[DirFd, Path, AtFlags]),
    med(264, "renameat", &[DirFd, Path, DirFd, Path]),
    med(265, "linkat", &[DirFd, Path, DirFd, Path, AtFlags]),
    med(266, "symlinkat", &[Str, DirFd, Path]),
    med(267, "readlinkat", &[DirFd, Path, Out, Len]),
    with(268, "fchmodat", &[DirFd, Path, Mode], Handler::SetsMode(2)),
    med(269, "faccessat", &[DirFd, Path, Int]),
    hot(270, "pselect6", &[Int, Ptr, Ptr, Ptr, Ptr, Ptr]),
    hot(271, "ppoll", &[Ptr, Len, Ptr, In, Len]),
    guarded(272, "unshare", &[CloneFlags], Handler::Unshare),
    hot(273, "set_robust_list", &[Ptr, Len]),
    hot(274, "get_robust_list", &[Pid, Out, Out]),
    hot(275, "splice", &[Fd, Ptr, Fd, Ptr, Len, Flags]),
    hot(276, "tee", &[Fd, Fd, Len, Flags]),
    hot(277, "sync_file_range", &[Fd, Offset, Offset, Flags]),
    hot(278, "vmsplice", &[Fd, Ptr, Len, Flags]),
    med(279, "move_pages", &[Pid, Len, In, In, Out, Flags]),
    med(280, "utimensat", &[DirFd, Path, In, AtFlags]),
    hot(281, "epoll_pwait", &[Fd, Out, Int, Int, In, Len]),
    hot(282, "signalfd", &[Fd, In, Len]),
    hot(283, "timerfd_create", &[Int, Flags]),
    hot(284, "eventfd", &[Len]),
    hot(285, "fallocate", &[Fd, Int, Offset, Len]),
    hot(286, "timerfd_settime", &[Fd, Flags, In, Out]),
    hot(287, "timerfd_gettime", &[Fd, Out]),
    hot(288, "accept4", &[Fd, Out, Ptr, Flags]),
    hot(289, "signalfd4", &[Fd, In, Len, Flags]),
    hot(290, "eventfd2", &[Len, Flags]),
    hot(291, "epoll_create1", &[Flags]),
    hot(292, "dup3", &[Fd, Fd, Flags]),
    hot(293, "pipe2", &[Out, Flags]),
    hot(294, "inotify_init1", &[Flags]),
    hot(295, "preadv", &[Fd, Ptr, Len, Offset, Offset]),
    hot(296, "pwritev", &[Fd, Ptr, Len, Offset, Offset]),
    hot(297, "rt_tgsigqueueinfo", &[Pid, Pid, Signal, In]),
    eperm(298, "perf_event_open", &[Ptr, Pid, Int, Fd, Flags]),
    hot(299, "recvmmsg", &[Fd, Ptr, Len, Flags, Ptr]),
    eperm(300, "fanotify_init", &[Flags, Flags]),
    eperm(301, "fanotify_mark", &[Fd, Flags, Flags, DirFd, Path]),
    med(302, "prlimit64", &[Pid, Int, In, Out]),
    eperm(303, "name_to_handle_at", &[DirFd, Path, Out, Out, AtFlags]),
    eperm(304, "open_by_handle_at", &[Fd, In, OpenFlags]),
    // A query (modes 0) reads the clock's state; every change needs
    // CAP_SYS_TIME in the host's namespace, which the kernel checks and no
    // guest has (a PTP clock's, write access to a device the instance is
    // shown only by `--device`).
    med(305, "clock_adjtime", &[Int, Ptr]),
    hot(306, "syncfs", &[Fd]),
    hot(307, "sendmmsg", &[Fd, Ptr, Len, Flags]),
    eperm_after(
        308,
        "setns",
        &[Fd, CloneFlags],
        &[EarlierCheck::OpenFd(0), EarlierCheck::NamespaceOfType],
    ),
    hot(309, "getcpu", &[Out, Out, Ptr]),
    med(310, "process_vm_readv", &[Pid, Ptr, Len, Ptr, Len, Flags]),
    med(311, "process_vm_writev", &[Pid, Ptr, Len, Ptr, Len, Flags]),
    med(312, "kcmp", &[Pid, Pid, Int, Len, Len]),
    eperm(313, "finit_module", &[Fd, Str, Flags]),
    med(314, "sched_setattr", &[Pid, In, Flags]),
    hot(315, "sched_getattr", &[Pid, Out, Len, Flags]),
    med(316, "renameat2", &[DirFd, Path, DirFd, Path, Flags]),
    med(317, "seccomp", &[Int, Flags, Ptr]),
    hot(318, "getrandom", &[Out, Len, Flags]),
    med(319, "memfd_create", &[Str, Flags]),
    eperm(320, "kexec_file_load", &[Fd, Fd, Len, Str, Flags]),
    eperm(321, "bpf", &[Int, Ptr, Len]),
    med(322, "execveat", &[DirFd, Path, StrArray, StrArray, AtFlags]),
    eperm(323, "userfaultfd", &[Flags]),
    hot(324, "membarrier", &[Int, Flags, Int]),
    hot(325, "mlock2", &[Ptr, Len, Flags]),
    hot(326, "copy_file_range", &[Fd, Ptr, Fd, Ptr, Len, Flags]),
    hot(327, "preadv2", &[Fd, Ptr, Len, Offset, Offset, Flags]),
    hot(328, "pwritev2", &[Fd, Ptr, Len, Offset, Offset, Flags]),
    hot(329, "pkey_mprotect", &[Ptr, Len, Prot, Int]),
    hot(330, "pkey_alloc", &[Flags, Flags]),
    hot(331, "pkey_free", &[Int]),
    med(332, "statx", &[DirFd, Path, AtFlags, Flags, Out]),
    hot(333, "io_pgetevents", &[Int, Len, Len, Out, Ptr, Ptr]),
    hot(334, "rseq", &[Ptr, Len, Flags, Int]),
    hot(424, "pidfd_send_signal", &[Fd, Signal, In, Flags]),
    enosys(425, "io_uring_setup", &[Len, Ptr]),
    enosys(426, "io_uring_enter", &[Fd, Len, Len, Flags, Ptr, Len]),
    enosys(427, "io_uring_register", &[Fd, Int, Ptr, Len]),
    eperm(428, "open_tree", &[DirFd, Path, Flags]),
    eperm(429, "move_mount", &[DirFd, Path, DirFd, Path, Flags]),
    eperm(430, "fsopen", &[Str, Flags]),
    eperm(431, "fsconfig", &[Fd, Int, Str, Ptr, Int]),
    eperm(432, "fsmount", &[Fd, Flags, Flags]),
    eperm(433, "fspick", &[DirFd, Path, Flags]),
    med(434, "pidfd_open", &[Pid, Flags]),
    with(435, "clone3", &[Ptr, Len], Handler::Clone3),
    hot(436, "close_range", &[Fd, Fd, Flags]),
    with(437, "openat2", &[DirFd, Path, Ptr, Len], Handler::OpenHow),
    med(438, "pidfd_getfd", &[Fd, Fd, Flags]),
    med(439, "faccessat2", &[DirFd, Path, Int, AtFlags]),
    med(440, "process_madvise", &[Fd, Ptr, Len, Int, Flags]),
    hot(441, "epoll_pwait2", &[Fd, Out, Int, In, In, Len]),
    eperm(442, "mount_setattr", &[DirFd, Path, AtFlags, Ptr, Len]),
    eperm(443, "quotactl_fd", &[Fd, Int, Id, Ptr]),
    med(444, "landlock_create_ruleset", &[In, Len, Flags]),
    med(445, "landlock_add_rule", &[Fd, Int, In, Flags]),
    med(446, "landlock_restrict_self", &[Fd, Flags]),
    med(447, "memfd_secret", &[Flags]),
    med(448, "process_mrelease", &[Fd, Flags]),
    hot(449, "futex_waitv", &[Ptr, Len, Flags, In, Int]),
    hot(450, "set_mempolicy_home_node", &[Ptr, Len, Int, Flags]),
    hot(451, "cachestat", &[Fd, In, Out, Flags]),
    with(452, "fchmodat2", &[DirFd, Path, Mode, AtFlags], Handler::SetsMode(2)),
    hot(453, "map_shadow_stack", &[Ptr, Len, Flags]),
    hot(454, "futex_wake", &[Ptr, Flags, Int, Flags]),
    hot(455, "futex_wait", &[Ptr, Flags, Flags, In, Int]),
    hot(456, "futex_requeue", &[Ptr, Flags, Int, Int]),
    eperm(457, "statmount", &[In, Out, Len, Flags]),
    eperm(458, "listmount", &[In, Out, Len, Flags]),
    hot(459, "lsm_get_self_attr", &[Int, Out, Ptr, Flags]),
    med(460, "lsm_set_self_attr", &[Int, In, Len, Flags]),
    hot(461, "lsm_list_modules", &[Out, Ptr, Flags]),
    med(462, "mseal", &[Ptr, Len, Flags]),
    med(463, "setxattrat", &[DirFd, Path, AtFlags, Str, Ptr, Len]),
    med(464, "getxattrat", &[DirFd, Path, AtFlags, Str, Ptr, Len]),
    med(465, "listxattrat", &[DirFd, Path, AtFlags, Out, Len]),
    med(466, "removexattrat", &[DirFd, Path, AtFlags, Str]),
    eperm(467, "open_tree_attr", &[DirFd, Path, Flags, Ptr, Len]),
    med(468, "file_getattr", &[DirFd, Path, Out, Len, AtFlags]),
    med(469, "file_setattr", &[DirFd, Path, In, Len, AtFlags]),
];

/// The highest call number the table knows.
pub const MAX_SYSCALL: u32 = 469;

/// The row for `number`, if the number is assigned on x86_64.
pub fn lookup(number: u32) -> Option<&'static Syscall> {
    // Rows 0..=334 sit at their own index (a test holds the table to it):
    // no search for those; the later numbers (424 and up) are searched.
    let direct = usize::try_from(number).ok().and_then(|i| SYSCALLS.get(i));
    match direct {
        Some(row) if row.number == number => Some(row),
        _ => SYSCALLS
            .binary_search_by_key(&number, |s| s.number)
            .ok()
            .map(|i| &SYSCALLS[i]),
    }
}

/// Calls that never sleep interruptibly in the kernel, so never end with
/// "interrupted" natively. Trapped, each waits for the supervisor, and a
/// signal caught before the supervisor has received it would make it fail
/// with EINTR — a shell's `close` of a pipe end failing so leaks the end
/// into its next command, which then never sees end-of-file. The process
/// monitor, at the signal's delivery, makes such a call restart instead
/// (`ptrace::restart_interrupted_call`): it had not begun. Calls that may
/// sleep interruptibly natively (`read`, `open` of a FIFO, `connect`,
/// `wait4`, `fcntl(F_SETLKW)` …) keep the kernel's answer.
pub const NEVER_INTERRUPTED: &[&str] = &[
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "lseek",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "umask",
    "utimensat",
    "truncate",
    "ftruncate",
    "mmap",
    "mprotect",
    "munmap",
    "mremap",
    "brk",
    "madvise",
    "mincore",
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getpgrp",
    "getpgid",
    "getsid",
    "setpgid",
    "setsid",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    "prctl",
    "arch_prctl",
    "uname",
    "sysinfo",
    "times",
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "set_tid_address",
    "set_robust_list",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "pipe",
    "pipe2",
    "socket",
    "socketpair",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "shutdown",
    "memfd_create",
    "eventfd",
    "eventfd2",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "signalfd",
    "signalfd4",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "execve",
    "execveat",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
];

/// Whether the call numbered `number` is one of [`NEVER_INTERRUPTED`].
pub fn never_interrupted(number: u64) -> bool {
    u32::try_from(number)
        .ok()
        .and_then(lookup)
        .is_some_and(|row| NEVER_INTERRUPTED.contains(&row.name))
}

/// The row named `name`.
pub fn by_name(name: &str) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_interrupted_names_are_rows() {
        for name in NEVER_INTERRUPTED {
            assert!(by_name(name).is_some(), "{name}");
        }
        assert!(never_interrupted(3)); // close
        assert!(!never_interrupted(0)); // read
        assert!(!never_interrupted(u64::MAX));
    }

    #[test]
    fn lookup_finds_every_row_by_its_number() {
        for row in SYSCALLS {
            assert_eq!(lookup(row.number).map(|r| r.name), Some(row.name));
        }
        assert!(lookup(400).is_none());
        assert!(lookup(u32::MAX).is_none());
        // The direct index `lookup` relies on before it searches.
        for (index, row) in SYSCALLS.iter().take(335).enumerate() {
            assert_eq!(row.number as usize, index, "{}", row.name);
        }
    }

    #[test]
    fn numbers_are_strictly_increasing_and_names_unique() {
        for pair in SYSCALLS.windows(2) {
            assert!(
                pair[0].number < pair[1].number,
                "{} then {}",
                pair[0].name,
                pair[1].name
            );
        }
        let mut names: Vec<&str> = SYSCALLS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate names");
    }

    #[test]
    fn every_number_is_covered_exactly_once_or_known_unassigned() {
        for n in 0..=MAX_SYSCALL {
            let rows = SYSCALLS.iter().filter(|s| s.number == n).count();
            let unassigned = (335..=423).contains(&n);
            assert_eq!(rows, if unassigned { 0 } else { 1 }, "number {n}");
        }
        assert_eq!(SYSCALLS.last().unwrap().number, MAX_SYSCALL);
        assert_eq!(SYSCALLS.len(), 335 + (MAX_SYSCALL as usize - 424 + 1));
    }

    #[test]
    fn calls_the_design_names_are_refused() {
        for name in [
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "bpf",
            "userfaultfd",
            "perf_event_open",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "open_by_handle_at",
            "name_to_handle_at",
            "keyctl",
            "add_key",
            "request_key",
            "ptrace",
        ] {
            let s = by_name(name).unwrap();
            assert!(matches!(s.class, Class::Refused(_)), "{name} is {:?}", s.class);
            assert!(
                matches!(s.handler, Handler::Refuse | Handler::RefuseAfter(_)),
                "{name}: {:?}",
                s.handler
            );
        }
    }

    #[test]
    fn hot_rows_are_decided_by_number_or_by_a_register_rule() {
        for s in SYSCALLS.iter().filter(|s| s.class == Class::Hot) {
            assert!(
                s.handler == Handler::Continue
                    || !s.handler.register_rules().is_empty()
                    || !s.handler.privilege_rules().is_empty(),
                "{} is hot but its handler {:?} needs the supervisor",
                s.name,
                s.handler
            );
        }
        for s in SYSCALLS {
            for rule in s.handler.register_rules().iter().chain(s.handler.privilege_rules()) {
                assert!(!rule.when.is_empty(), "{}: a rule without conditions", s.name);
                for c in rule.when {
                    assert!(usize::from(c.arg) < s.args.len(), "{}", s.name);
                }
            }
        }
    }

    #[test]
    fn privilege_rules_refuse_setuid_and_setgid_modes_only() {
        let chmod = by_name("chmod").unwrap().handler;
        let openat = by_name("openat").unwrap().handler;
        let refused = |h: Handler, args: [u64; 6]| refusing_rule(h.privilege_rules(), &args).map(|r| r.errno);
        assert_eq!(refused(chmod, [0, 0o4755, 0, 0, 0, 0]), Some(errno::EPERM));
        assert_eq!(refused(chmod, [0, 0o2775, 0, 0, 0, 0]), Some(errno::EPERM));
        assert_eq!(refused(chmod, [0, 0o1777, 0, 0, 0, 0]), None);
        assert_eq!(refused(chmod, [0, 0o755, 0, 0, 0, 0]), None);
        assert_eq!(refused(openat, [0, 0, 0o101, 0o4755, 0, 0]), Some(errno::EPERM));
        assert_eq!(refused(openat, [0, 0, 0o101, 0o644, 0, 0]), None);
        for s in SYSCALLS {
            if let Handler::SetsMode(arg) = s.handler {
                assert_eq!(
                    s.args.get(usize::from(arg)),
                    Some(&Arg::Mode),
                    "{}: the mode register",
                    s.name
                );
            }
        }
    }

    #[test]
    fn register_rules_read_the_low_32_bits() {
        let refused = |h: Handler, args: [u64; 6]| refusing_rule(h.register_rules(), &args).map(|r| r.errno);
        assert_eq!(
            refused(Handler::Clone, [u64::from(value::CLONE_NEWUSER) | 17, 0, 0, 0, 0, 0]),
            Some(errno::EPERM)
        );
        assert_eq!(refused(Handler::Clone, [0x3d0f00, 0, 0, 0, 0, 0]), None);
        assert_eq!(refused(Handler::Clone, [0x1000_0000_0000_0000, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            refused(Handler::Ioctl, [0, 0xffff_ffff_0000_5412, 0, 0, 0, 0]),
            Some(errno::EPERM)
        );
        assert_eq!(refused(Handler::Ioctl, [0x5412, 0x5401, 0, 0, 0, 0]), None);
        assert!(Handler::Continue.register_rules().is_empty());
    }

    #[test]
    fn sockets_that_see_every_packet_are_refused_and_netlink_is_not() {
        let socket = |family: u32, kind: u32| {
            refusing_rule(
                Handler::Socket.register_rules(),
                &[family.into(), kind.into(), 0, 0, 0, 0],
            )
            .map(|r| r.errno)
        };
        assert_eq!(socket(value::AF_VSOCK, 1), Some(errno::EAFNOSUPPORT));
        assert_eq!(socket(value::AF_PACKET, 3), Some(errno::EPERM));
        assert_eq!(socket(value::AF_INET, value::SOCK_RAW), Some(errno::EPERM));
        assert_eq!(socket(value::AF_INET6, value::SOCK_RAW | 0x80800), Some(errno::EPERM));
        assert_eq!(socket(value::AF_INET, value::SOCK_PACKET), Some(errno::EPERM));
        assert_eq!(socket(value::AF_INET, 1), None);
        assert_eq!(socket(value::AF_INET6, 2 | 0x800), None);
        assert_eq!(socket(16, value::SOCK_RAW), None); // AF_NETLINK: ip(8), udev
        assert_eq!(socket(1, value::SOCK_RAW), None); // AF_UNIX refuses it itself
    }

    #[test]
    fn only_personalities_that_keep_randomisation_pass() {
        let personality = |p: u64| refusing_rule(Handler::Personality.register_rules(), &[p, 0, 0, 0, 0, 0]).is_some();
        for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert!(!personality(p), "{p:#x}");
        }
        for p in [0x0040000, 0x0040008, 0x0400000, 0x1] {
            assert!(personality(p), "{p:#x}");
        }
    }

    #[test]
    fn argument_lists_fit_six_registers_and_paths_are_marked() {
        for s in SYSCALLS {
            assert!(s.args.len() <= 6, "{}", s.name);
        }
        for name in ["open", "openat", "stat", "execve", "unlink", "mkdir", "chdir", "statx"] {
            assert!(by_name(name).unwrap().args.contains(&Path), "{name}");
        }
    }

    #[test]
    fn lookup_matches_the_kernel_numbers_we_depend_on() {
        for (n, name) in [
            (0, "read"),
            (39, "getpid"),
            (59, "execve"),
            (110, "getppid"),
            (257, "openat"),
            (435, "clone3"),
        ] {
            assert_eq!(lookup(n).unwrap().name, name);
        }
        assert!(lookup(400).is_none());
        assert!(lookup(MAX_SYSCALL + 1).is_none());
    }
}
