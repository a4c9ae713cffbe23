//! Arguments in readable form, by the kinds the table gives them.
//!
//! Guest memory is read through a caller-supplied function (the supervisor
//! passes `process_vm_readv`; tests pass a byte array), copied once and
//! bounded; nothing here can panic on what a guest puts in its registers or
//! memory.

use xvisor_trap::table::{Arg, Syscall};

use crate::TrappedCall;

/// Reads guest memory at an address into a buffer; returns the bytes read.
pub trait GuestMemory {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize;
}

impl<F: Fn(u64, &mut [u8]) -> usize> GuestMemory for F {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        self(address, buf)
    }
}

/// Longest string shown (longer ones end with "...").
pub const MAX_STRING: usize = 256;
/// Most argv/envp entries shown.
pub const MAX_ARRAY: usize = 16;

const AT_FDCWD: i32 = -100;

fn names(value: u64, table: &[(u64, &str)]) -> String {
    let mut rest = value;
    let mut parts: Vec<String> = Vec::new();
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 || parts.is_empty() {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4010000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
    (0o100000, "O_LARGEFILE"),
];

fn open_flags(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let mode = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = v & !3;
    if rest == 0 {
        mode.to_string()
    } else {
        format!("{mode}|{}", names(rest, OPEN_FLAGS))
    }
}

const CLONE_FLAGS: &[(u64, &str)] = &[
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
];

fn clone_flags(v: u64) -> String {
    let signal = v & 0xff;
    let flags = v & !0xff;
    match (flags, signal) {
        (0, s) => format!("{s}"),
        (f, 0) => names(f, CLONE_FLAGS),
        (f, s) => format!("{}|{}", names(f, CLONE_FLAGS), signal_name(s as i64)),
    }
}

fn signal_name(s: i64) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(s)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| s.to_string(), |n| n.to_string())
}

const PROT: &[(u64, &str)] = &[(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")];
const MAP: &[(u64, &str)] = &[
    (0x01, "MAP_SHARED"),
    (0x02, "MAP_PRIVATE"),
    (0x10, "MAP_FIXED"),
    (0x20, "MAP_ANONYMOUS"),
    (0x100, "MAP_GROWSDOWN"),
    (0x800, "MAP_DENYWRITE"),
    (0x2000, "MAP_LOCKED"),
    (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"),
    (0x20000, "MAP_STACK"),
    (0x100000, "MAP_FIXED_NOREPLACE"),
];
const AT: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_REMOVEDIR"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
];

fn domain(v: u64) -> String {
    match v & 0xffff_ffff {
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        40 => "AF_VSOCK".into(),
        other => other.to_string(),
    }
}

fn sock_type(v: u64) -> String {
    let base = match v & 0xf {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".to_string(),
        3 => "SOCK_RAW".to_string(),
        5 => "SOCK_SEQPACKET".to_string(),
        other => other.to_string(),
    };
    let mut s = base;
    if v & 0o4000 != 0 {
        s.push_str("|SOCK_NONBLOCK");
    }
    if v & 0o2000000 != 0 {
        s.push_str("|SOCK_CLOEXEC");
    }
    s
}

fn ioctl_request(v: u64) -> String {
    match v & 0xffff_ffff {
        0x5401 => "TCGETS".into(),
        0x5402 => "TCSETS".into(),
        0x5412 => "TIOCSTI".into(),
        0x541c => "TIOCLINUX".into(),
        0x5413 => "TIOCGWINSZ".into(),
        0x5414 => "TIOCSWINSZ".into(),
        0x540f => "TIOCGPGRP".into(),
        0x5410 => "TIOCSPGRP".into(),
        0x541b => "FIONREAD".into(),
        0x5421 => "FIONBIO".into(),
        0x5451 => "FIOCLEX".into(),
        other => format!("{other:#x}"),
    }
}

/// Reads a NUL-terminated string at `address`, at most [`MAX_STRING`] bytes.
pub fn read_string(memory: &dyn GuestMemory, address: u64) -> Option<(Vec<u8>, bool)> {
    if address == 0 {
        return None;
    }
    let mut buf = [0u8; MAX_STRING + 1];
    // Read up to the end of the page first, so a string near an unmapped
    // page is still read; then the rest.
    let to_page_end = (4096 - (address % 4096) as usize).min(buf.len());
    let mut n = memory.read(address, &mut buf[..to_page_end]);
    if n == to_page_end && !buf[..n].contains(&0) && n < buf.len() {
        n += memory.read(address.saturating_add(n as u64), &mut buf[n..]);
    }
    let n = n.min(buf.len());
    let bytes = &buf[..n];
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => Some((bytes[..end].to_vec(), false)),
        None if n == 0 => None,
        None => Some((bytes[..n.min(MAX_STRING)].to_vec(), true)),
    }
}

/// Quotes bytes as a C-like string literal.
pub fn quote(bytes: &[u8], truncated: bool) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if truncated {
        out.push_str("...");
    }
    out
}

fn string_arg(memory: &dyn GuestMemory, address: u64) -> String {
    match read_string(memory, address) {
        Some((bytes, truncated)) => quote(&bytes, truncated),
        None if address == 0 => "NULL".into(),
        None => format!("{address:#x}"),
    }
}

fn string_array(memory: &dyn GuestMemory, address: u64) -> String {
    if address == 0 {
        return "NULL".into();
    }
    let mut items = Vec::new();
    for i in 0..MAX_ARRAY as u64 {
        let mut ptr = [0u8; 8];
        let Some(at) = address.checked_add(i * 8) else { break };
        if memory.read(at, &mut ptr) != 8 {
            items.push("?".to_string());
            break;
        }
        let p = u64::from_ne_bytes(ptr);
        if p == 0 {
            return format!("[{}]", items.join(", "));
        }
        items.push(string_arg(memory, p));
    }
    format!("[{}, ...]", items.join(", "))
}

/// One argument in readable form.
pub fn argument(kind: Arg, value: u64, memory: &dyn GuestMemory) -> String {
    let int = value as i32;
    match kind {
        Arg::Int | Arg::Fd | Arg::Pid => int.to_string(),
        Arg::Len => value.to_string(),
        Arg::DirFd if int == AT_FDCWD => "AT_FDCWD".into(),
        Arg::DirFd => int.to_string(),
        Arg::Path | Arg::Str => string_arg(memory, value),
        Arg::In | Arg::Out | Arg::Ptr if value == 0 => "NULL".into(),
        Arg::In | Arg::Out | Arg::Ptr => format!("{value:#x}"),
        Arg::OpenFlags => open_flags(value),
        Arg::Mode if value & 0o7777 == 0 => "0".into(),
        Arg::Mode => format!("0{:o}", value & 0o7777),
        Arg::Signal => signal_name(int as i64),
        Arg::CloneFlags => clone_flags(value),
        Arg::Prot if value & 7 == 0 => "PROT_NONE".into(),
        Arg::Prot => names(value & 0xffff_ffff, PROT),
        Arg::MapFlags => names(value & 0xffff_ffff, MAP),
        Arg::Domain => domain(value),
        Arg::SockType => sock_type(value),
        Arg::IoctlRequest => ioctl_request(value),
        Arg::AtFlags if value & 0xffff_ffff == 0 => "0".into(),
        Arg::AtFlags => names(value & 0xffff_ffff, AT),
        Arg::Flags => format!("{value:#x}"),
        Arg::Id if value as u32 == u32::MAX => "-1".into(),
        Arg::Id => (value as u32).to_string(),
        Arg::Offset => (value as i64).to_string(),
        Arg::StrArray => string_array(memory, value),
    }
}

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A socket address a call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// IPv4 or IPv6, with its port (host order).
    Inet { port: u16, shown: String },
    /// A unix socket path or abstract name.
    Unix(String),
    /// Another family (or none: a connect with `AF_UNSPEC` dissolves an
    /// association).
    Other(u16),
}

/// A socket address of `len` bytes at `address`.
pub fn read_address(memory: &dyn GuestMemory, address: u64, len: u64) -> Option<Address> {
    if address == 0 || len < 2 {
        return None;
    }
    let mut buf = [0u8; 110];
    let want = usize::try_from(len).unwrap_or(usize::MAX).min(buf.len());
    let n = memory.read(address, &mut buf[..want]).min(want);
    let bytes = &buf[..n];
    let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
    let port = |b: &[u8]| Some(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    match family {
        AF_INET if n >= 8 => {
            let a = &bytes[4..8];
            let port = port(bytes)?;
            Some(Address::Inet {
                port,
                shown: format!("{}.{}.{}.{}:{port}", a[0], a[1], a[2], a[3]),
            })
        }
        AF_INET6 if n >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&bytes[8..24]);
            let port = port(bytes)?;
            Some(Address::Inet {
                port,
                shown: format!("[{}]:{port}", std::net::Ipv6Addr::from(ip)),
            })
        }
        AF_UNIX => {
            let path = &bytes[2..];
            let shown = match path.first() {
                Some(0) => format!("@{}", String::from_utf8_lossy(&path[1..])),
                _ => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    String::from_utf8_lossy(&path[..end]).into_owned()
                }
            };
            Some(Address::Unix(shown))
        }
        AF_INET | AF_INET6 => None,
        other => Some(Address::Other(other)),
    }
}

/// A socket address as the trace shows it: `{127.0.0.1:80}`,
/// `{unix "/run/x.sock"}`, `{family 16}`.
fn socket_address(address: &Address) -> String {
    match address {
        Address::Inet { shown, .. } => format!("{{{shown}}}"),
        Address::Unix(path) => format!("{{unix {}}}", quote(path.as_bytes(), false)),
        Address::Other(family) => format!("{{family {family}}}"),
    }
}

/// `name(arg, arg, ...)` for a trapped call; unknown numbers show as
/// `syscall_N(raw registers)`.
pub fn describe(syscall: Option<&Syscall>, call: &TrappedCall, memory: &dyn GuestMemory) -> (String, Vec<String>) {
    match syscall {
        Some(s) => {
            let mut args: Vec<String> = s
                .args
                .iter()
                .zip(call.args.iter())
                .map(|(&kind, &v)| argument(kind, v, memory))
                .collect();
            if matches!(s.name, "connect" | "bind") {
                if let (Some(address), Some(shown)) =
                    (read_address(memory, call.args[1], call.args[2]), args.get_mut(1))
                {
                    *shown = socket_address(&address);
                }
            }
            // A datagram's destination, where sendto names one.
            if s.name == "sendto" {
                if let (Some(address), Some(shown)) = (
                    read_address(memory, call.args[4], call.args[5] & 0xffff_ffff),
                    args.get_mut(4),
                ) {
                    *shown = socket_address(&address);
                }
            }
            (s.name.to_string(), args)
        }
        None => (
            format!("syscall_{}", call.nr),
            call.args.iter().map(|v| format!("{v:#x}")).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvisor_trap::table;

    /// Guest memory: `bytes` mapped at `base`, nothing elsewhere.
    fn memory(base: u64, bytes: Vec<u8>) -> impl Fn(u64, &mut [u8]) -> usize {
        move |address: u64, buf: &mut [u8]| crate::fuzz_input::guest_memory(&bytes, base)(address, buf)
    }

    #[test]
    fn openat_reads_like_strace() {
        let mem = memory(0x1000, b"/etc/passwd\0".to_vec());
        let call = TrappedCall {
            id: 1,
            pid: 1,
            nr: 257,
            arch: 0,
            args: [(-100i64) as u64, 0x1000, 0o2000000, 0, 0, 0],
        };
        let (name, args) = describe(table::lookup(257), &call, &mem);
        assert_eq!(
            format!("{name}({})", args.join(", ")),
            "openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY|O_CLOEXEC, 0)"
        );
    }

    #[test]
    fn execve_shows_argv() {
        let mut bytes = vec![0u8; 64];
        bytes[..8].copy_from_slice(&0x2020u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&0x2030u64.to_ne_bytes());
        bytes[32..35].copy_from_slice(b"ls\0");
        bytes[48..52].copy_from_slice(b"-la\0");
        let mem = memory(0x2000, bytes);
        assert_eq!(argument(Arg::StrArray, 0x2000, &mem), "[\"ls\", \"-la\"]");
    }

    #[test]
    fn socket_addresses_are_shown() {
        let mut bytes = vec![2, 0, 0, 80, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(b"\x01\x00/run/x.sock\0");
        let mem = memory(0x1000, bytes);
        let connect = TrappedCall {
            id: 1,
            pid: 1,
            nr: 42,
            arch: 0,
            args: [3, 0x1000, 16, 0, 0, 0],
        };
        let (name, args) = describe(table::lookup(42), &connect, &mem);
        assert_eq!(format!("{name}({})", args.join(", ")), "connect(3, {10.0.0.1:80}, 16)");
        let bind = TrappedCall {
            nr: 49,
            args: [3, 0x1010, 14, 0, 0, 0],
            ..connect
        };
        let (_, args) = describe(table::lookup(49), &bind, &mem);
        assert_eq!(args[1], "{unix \"/run/x.sock\"}");
        // Unreadable: the pointer, as before.
        let (_, args) = describe(
            table::lookup(42),
            &TrappedCall {
                args: [3, 0x9000, 16, 0, 0, 0],
                ..connect
            },
            &mem,
        );
        assert_eq!(args[1], "0x9000");
        let sendto = TrappedCall {
            nr: 44,
            args: [3, 0x9000, 1, 0, 0x1000, 16],
            ..connect
        };
        let (_, args) = describe(table::lookup(44), &sendto, &mem);
        assert_eq!(args[4], "{10.0.0.1:80}");
    }

    #[test]
    fn flags_and_specials() {
        let none = |_: u64, _: &mut [u8]| 0;
        assert_eq!(
            argument(Arg::OpenFlags, 0o101 | 0o1000, &none),
            "O_WRONLY|O_CREAT|O_TRUNC"
        );
        assert_eq!(
            argument(Arg::CloneFlags, 0x1000_0000 | 17, &none),
            "CLONE_NEWUSER|SIGCHLD"
        );
        assert_eq!(argument(Arg::Prot, 3, &none), "PROT_READ|PROT_WRITE");
        assert_eq!(argument(Arg::MapFlags, 0x22, &none), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(argument(Arg::Path, 0, &none), "NULL");
        assert_eq!(argument(Arg::Path, 0xdead, &none), "0xdead");
        assert_eq!(argument(Arg::Id, u64::MAX, &none), "-1");
        assert_eq!(argument(Arg::IoctlRequest, 0x5412, &none), "TIOCSTI");
        assert_eq!(argument(Arg::Signal, 200, &none), "200");
    }

    #[test]
    fn long_and_unterminated_strings_are_bounded() {
        let mem = memory(0x3000, vec![b'a'; 10_000]);
        let s = argument(Arg::Path, 0x3000, &mem);
        assert!(s.ends_with("\"...") && s.len() < MAX_STRING + 10, "{s}");
        let odd = memory(0x4000, vec![0xff, b'"', b'\n', 0]);
        assert_eq!(argument(Arg::Str, 0x4000, &odd), "\"\\xff\\\"\\n\"");
    }

    #[test]
    fn arbitrary_registers_and_memory_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let garbage: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
        let mem = memory(0x10000, garbage);
        for _ in 0..20_000 {
            let nr = (next() % 520) as i32 - 10;
            let args = [0u64; 6].map(|_| {
                if next() % 2 == 0 {
                    0x10000 + next() % 5000
                } else {
                    next()
                }
            });
            let call = TrappedCall {
                id: 0,
                pid: 0,
                nr,
                arch: 0,
                args,
            };
            let row = u32::try_from(nr).ok().and_then(table::lookup);
            let _ = describe(row, &call, &mem);
        }
    }
}

#[cfg(test)]
mod corpus {
    use super::*;
    use crate::dispatch::{decide, syscall_of};
    use crate::fuzz_input::{guest_memory, parse, MEMORY_BASE};
    use xvisor_trap::{Policy, Profile};

    /// Replays fuzz/corpus/trapped_call (the format of
    /// [`crate::fuzz_input`]).
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/trapped_call");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let Some((call, bytes)) = parse(&data) else { continue };
            let memory = guest_memory(bytes, MEMORY_BASE);
            for profile in Profile::ALL {
                let _ = decide(&Policy::new(profile), &call);
            }
            let (name, args) = describe(syscall_of(&call), &call, &memory);
            if name == "openat" {
                assert_eq!(args[1], "\"/etc/passwd\"");
            }
            seen += 1;
        }
        assert!(seen >= 5, "corpus too small: {seen}");
    }
}
