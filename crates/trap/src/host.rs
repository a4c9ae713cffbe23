//! The supervisor's own seccomp filter: once an instance runs, the
//! supervisor needs only these host calls, so a bug in a handler cannot be
//! turned into anything else on the host. Every other call fails with EPERM.

use crate::bpf::{compile_allowlist, Instruction, Permit};
use crate::table::{self, errno};

/// The host calls a running supervisor makes, each with why.
pub const SUPERVISOR_CALLS: &[(&str, &str)] = &[
    (
        "read",
        "control socket, signalfd, terminal relay, /proc/PID/status and cgroup files",
    ),
    ("write", "messages on stderr, the trace, the terminal relay"),
    ("close", "descriptors it is done with"),
    ("poll", "the event loop"),
    (
        "ioctl",
        "the seccomp listener (RECV, SEND, ID_VALID, ADDFD, SET_FLAGS); terminal size and mode; a guest socket's network namespace (SIOCGSKNS)",
    ),
    ("recvmsg", "the control socket (messages that carry descriptors)"),
    (
        "sendmsg",
        "the control socket; a guest's send naming a destination under `udp:` rules, made on the guest's own socket",
    ),
    (
        "openat",
        "/proc/PID/status (instance pids in the trace), cgroup files (the OOM counter)",
    ),
    (
        "openat2",
        "whether a path the guest named exists, and where it leads, resolved in the instance's root (--learn); the unix socket a guest's connect names, found in its root",
    ),
    ("statx", "file metadata in the standard library"),
    ("newfstatat", "file metadata in the standard library"),
    ("fstat", "file metadata in the standard library"),
    (
        "fstatfs",
        "whether a pinned program's file is on a read-only mount (its hash is then kept for the next exec)",
    ),
    ("lseek", "the standard library's file reads"),
    ("fcntl", "non-blocking terminal relay"),
    ("process_vm_readv", "guest memory, copied once, for the trace, --learn and the decisions on it (connect addresses)"),
    (
        "pidfd_send_signal",
        "signals to the instance's init (forwarded ones, SIGKILL at --timeout)",
    ),
    (
        "kill",
        "the same, on kernels without pidfds; signals to exec'd processes (`xvisor exec`, OCI `exec`)",
    ),
    (
        "tgkill",
        "ringing a serving thread blocked in RECV (the doorbell signal) at teardown",
    ),
    ("wait4", "reaping the instance's init and the cgroup watchdog"),
    ("waitid", "reaping, as the standard library does it"),
    ("rmdir", "removing the instance's cgroups"),
    (
        "flock",
        "locking the caller's cgroup while leaving its xvisor leaf (cgroup v2)",
    ),
    (
        "accept4",
        "answering `xvisor ps`, `xvisor kill` and `xvisor exec` on the instance's control socket",
    ),
    (
        "getsockopt",
        "who a control-socket client is (SO_PEERCRED, SO_PEERPIDFD); a guest socket's family and type",
    ),
    ("setsockopt", "time limits on a control-socket client"),
    (
        "connect",
        "a guest's connect under `[net].connect` rules, performed on the guest's own socket with the address as checked",
    ),
    (
        "pidfd_open",
        "a guest thread's pidfd, to take the socket a connect it made names",
    ),
    (
        "pidfd_getfd",
        "the guest's own socket, duplicated, for a connect the supervisor performs",
    ),
    (
        "readlink",
        "a new program's path (/proc/PID/exe) for the trace; a guest's cwd, root and descriptors (/proc/TID/cwd, root, fd/N) for --learn",
    ),
    ("mmap", "memory allocation"),
    ("munmap", "memory allocation"),
    ("mremap", "memory allocation"),
    ("mprotect", "memory allocation"),
    ("madvise", "memory allocation"),
    ("brk", "memory allocation"),
    ("futex", "the standard library's locks (stdio)"),
    ("rt_sigprocmask", "restoring the signal mask at teardown"),
    ("rt_sigreturn", "returning from a signal frame"),
    ("sigaltstack", "the standard library's signal stack at exit"),
    ("clock_gettime", "timeouts (when the vDSO is not used)"),
    ("clock_nanosleep", "waiting for killed processes to leave the cgroups"),
    ("nanosleep", "the same"),
    ("sched_yield", "the standard library's spin loops"),
    ("getrandom", "the standard library's hash seeds"),
    ("getpid", "the standard library"),
    ("gettid", "the standard library"),
    ("restart_syscall", "restarting an interrupted sleep"),
    ("exit_group", "leaving with the guest's status"),
    ("exit", "leaving"),
];

/// What the serving threads need on top of [`SUPERVISOR_CALLS`].
pub const SERVING_CALLS: &[(&str, &str)] = &[
    (
        "kcmp",
        "whether a guest asking for a controlling terminal (TIOCSCTTY) shares its descriptor table with another task",
    ),
    (
        "process_vm_writev",
        "the message lengths a guest's sendmmsg returns, which the supervisor performed (under `udp:` rules)",
    ),
];

/// What the serving threads of an instance whose guest's ids are the
/// caller's (rootless) need besides: they perform the guest's metadata
/// calls on the file they decided on (`Policy::guard_host_objects`).
pub const METADATA_CALLS: &[(&str, &str)] = &[
    ("fchmodat2", "a guest's chmod, on the file decided on"),
    ("fchownat", "a guest's chown, on the file decided on"),
    ("utimensat", "a guest's utimes, on the file decided on"),
    ("setxattrat", "a guest's setxattr, on the file decided on"),
    ("removexattrat", "a guest's removexattr, on the file decided on"),
    ("setxattr", "the same, through /proc/self/fd/N before Linux 6.13"),
    ("removexattr", "the same, through /proc/self/fd/N before Linux 6.13"),
    (
        "readlinkat",
        "whether the instance's /dev/fd and /dev/stdout … are the usual symlinks to /proc/self/fd (a guest's chmod of /dev/stdout)",
    ),
];

/// What the serving threads of an instance whose policy has `[fs]`
/// patterns need besides: they open the files a pattern grants, as the
/// guest (its file-system ids and groups, taken for the open and given
/// back), and name the file they found.
pub const OPEN_CALLS: &[(&str, &str)] = &[
    (
        "setfsuid",
        "a guest's open under an [fs] pattern, made with its file-system uid",
    ),
    ("setfsgid", "the same, with its file-system gid"),
    ("setgroups", "the same, with its groups (this thread's only)"),
    (
        "getgroups",
        "the serving thread's own groups, to take back after such an open",
    ),
    (
        "geteuid",
        "whether the serving thread's ids are the guest's already (rootless)",
    ),
    ("getegid", "the same"),
    (
        "readlinkat",
        "the path of the file found in the instance's root, and of the guest's working directory",
    ),
];

/// What the serving threads of an instance whose `[net].bind` list is the
/// supervisor's need besides.
pub const BIND_CALLS: &[(&str, &str)] = &[(
    "bind",
    "a guest's bind under [net].bind rules naming addresses or UDP ports, made on the guest's own socket with the address as checked",
)];

/// The serving threads' filter: the supervisor's, [`SERVING_CALLS`], with
/// `metadata` [`METADATA_CALLS`], with `opens` [`OPEN_CALLS`] and with
/// `binds` [`BIND_CALLS`]. Compiled once per process.
pub fn serving_filter(metadata: bool, opens: bool, binds: bool) -> &'static [Instruction] {
    static CELLS: [std::sync::OnceLock<Vec<Instruction>>; 8] = [const { std::sync::OnceLock::new() }; 8];
    let cell = &CELLS[usize::from(metadata) | usize::from(opens) << 1 | usize::from(binds) << 2];
    cell.get_or_init(|| {
        let mut allowed = permits(SUPERVISOR_CALLS);
        allowed.extend(permits(SERVING_CALLS));
        if metadata {
            allowed.extend(permits(METADATA_CALLS));
        }
        if opens {
            allowed.extend(permits(OPEN_CALLS));
        }
        if binds {
            allowed.extend(permits(BIND_CALLS));
        }
        allowed.sort_by_key(|p| p.number);
        allowed.dedup_by_key(|p| p.number);
        compile_allowlist(&allowed, errno::EPERM)
    })
}

/// What the monitor thread needs on top of [`SUPERVISOR_CALLS`]. Seccomp
/// filters belong to a thread: no other supervisor thread may make these,
/// and the monitor thread holds no capability.
pub const MONITOR_CALLS: &[(&str, &str)] = &[
    (
        "ptrace",
        "the process monitor thread only, and only the requests it makes (`MONITOR_PTRACE_REQUESTS`): seizing init, resuming tasks after fork, clone and exec events, group stops and signal deliveries (where a trapped call interrupted before the supervisor received it is made to restart), when tracing stopping a task after a continued call to read its result, and under guest debuggers letting a task go to a guest tracer and seizing it back",
    ),
    (
        "getdents64",
        "under guest debuggers, a look at the instance's threads (/proc/PID/task) for tasks a lent task created",
    ),
];

/// The `ptrace` requests the monitor makes: PTRACE_CONT, PTRACE_GETEVENTMSG,
/// PTRACE_SEIZE, PTRACE_LISTEN, and at a signal-delivery stop
/// PTRACE_GETREGS and PTRACE_POKEUSER (to restart a trapped call the signal
/// interrupted before the supervisor received it); when tracing,
/// PTRACE_INTERRUPT and PTRACE_GETREGS to read what a continued call
/// returned; under guest debuggers, at a seccomp stop PTRACE_GETREGS (the
/// request), PTRACE_POKEUSER (a foreign `SECCOMP_RET_TRACE` skipped with
/// ENOSYS), PTRACE_DETACH (a task let go to a guest tracer) and
/// PTRACE_SYSCALL (the caller held at its call's exit). Nothing that reads
/// or writes a tracee's memory, or attaches by PTRACE_ATTACH.
pub const MONITOR_PTRACE_REQUESTS: &[u32] = &[7, 0x4201, 0x4206, 0x4208, 12, 6, 0x4207, 17, 24];

/// The supervisor's filter: the main thread and every serving thread
/// install it, so it is compiled once per process.
pub fn supervisor_filter() -> &'static [Instruction] {
    static FILTER: std::sync::OnceLock<Vec<Instruction>> = std::sync::OnceLock::new();
    FILTER.get_or_init(|| compile_allowlist(&permits(SUPERVISOR_CALLS), errno::EPERM))
}

/// The monitor thread's filter.
pub fn monitor_filter() -> Vec<Instruction> {
    let mut permits = permits(SUPERVISOR_CALLS);
    permits.extend(MONITOR_CALLS.iter().filter_map(|(name, _)| {
        let number = table::by_name(name)?.number;
        let only = (*name == "ptrace").then_some((0, MONITOR_PTRACE_REQUESTS));
        Some(Permit { number, only })
    }));
    compile_allowlist(&permits, errno::EPERM)
}

fn permits(calls: &[(&str, &str)]) -> Vec<Permit> {
    calls
        .iter()
        .filter_map(|(name, _)| table::by_name(name))
        .map(|s| Permit {
            number: s.number,
            only: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{interpret, ret, AUDIT_ARCH_X86_64};

    #[test]
    fn every_listed_call_exists_and_is_allowed() {
        let prog = supervisor_filter();
        for (name, why) in SUPERVISOR_CALLS {
            let s = table::by_name(name).unwrap_or_else(|| panic!("{name} is not a system call"));
            assert!(!why.is_empty());
            assert_eq!(
                interpret(prog, AUDIT_ARCH_X86_64, s.number, &[0; 6]),
                Some(ret::ALLOW),
                "{name}"
            );
        }
    }

    #[test]
    fn only_the_monitor_may_ptrace() {
        let ptrace = table::by_name("ptrace").unwrap().number;
        let refused = Some(ret::ERRNO | errno::EPERM as u32);
        let request =
            |prog: &[Instruction], request: u64| interpret(prog, AUDIT_ARCH_X86_64, ptrace, &[request, 2, 0, 0, 0, 0]);
        for &r in MONITOR_PTRACE_REQUESTS {
            assert_eq!(request(&monitor_filter(), u64::from(r)), Some(ret::ALLOW), "{r:#x}");
            assert_eq!(request(supervisor_filter(), u64::from(r)), refused, "{r:#x}");
        }
        // PTRACE_TRACEME, PEEKDATA, POKEDATA, SETREGS, ATTACH, SETREGSET,
        // SETOPTIONS; a permitted request with a high word.
        for r in [0, 2, 5, 13, 16, 0x4205, 0x4200, 0x1_0000_0007] {
            assert_eq!(request(&monitor_filter(), r), refused, "{r:#x}");
        }
    }

    #[test]
    fn what_an_attacker_wants_is_refused() {
        let prog = supervisor_filter();
        for name in [
            "execve",
            "execveat",
            "clone",
            "clone3",
            "fork",
            "ptrace",
            "mount",
            "socket",
            "bind",
            "listen",
            "unshare",
            "setns",
            "bpf",
            "init_module",
            "open_by_handle_at",
            "chmod",
            "unlink",
        ] {
            let s = table::by_name(name).unwrap();
            assert_eq!(
                interpret(prog, AUDIT_ARCH_X86_64, s.number, &[0; 6]),
                Some(ret::ERRNO | errno::EPERM as u32),
                "{name}"
            );
        }
    }
}

#[cfg(test)]
mod doc {
    use super::{MONITOR_CALLS, SUPERVISOR_CALLS};

    #[test]
    fn the_design_page_lists_every_supervisor_call() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/design/supervisor-confinement.md");
        let text = std::fs::read_to_string(path).unwrap();
        for (name, why) in SUPERVISOR_CALLS.iter().chain(MONITOR_CALLS) {
            assert!(
                text.contains(&format!("| `{name}` | {why} |")),
                "docs/design/supervisor-confinement.md lacks the row for {name}"
            );
        }
    }
}
