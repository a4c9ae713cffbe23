//! System-call interception, black box: hostile programs get the documented
//! refusal while the supervisor keeps serving the instance; profiles; the
//! trace.

#[macro_use]
mod common;

use std::process::Stdio;

use common::*;

/// Builds the hostile test program into a directory the instance mounts.
fn hostile() -> TempDir {
    c_program("hostile")
}

const REFUSED: &[(&str, &str)] = &[
    ("io_uring_setup", "ENOSYS"),
    ("bpf", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("open_by_handle_at", "EPERM"),
    ("unshare_user", "EPERM"),
    ("clone_user", "EPERM"),
    ("keyctl", "EPERM"),
    ("tiocsti", "EPERM"),
    ("vsock", "EAFNOSUPPORT"),
    ("packet", "EPERM"),
    ("raw", "EPERM"),
    ("raw6", "EPERM"),
    ("inet_packet", "EPERM"),
    ("personality", "EPERM"),
    ("clone3", "ENOSYS"),
];

macro_rules! each_profile {
    ($name:ident, |$profile:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($profile: &str) $body
            #[test]
            fn default_profile() {
                body("default")
            }
            #[test]
            fn strict_profile() {
                body("strict")
            }
        }
    };
}

each_profile!(the_first_program_is_served_from_its_start, |profile| {
    // Its exec runs in the kernel under the default profile: the
    // supervisor must hold the listener before it, or the program's first
    // trapped call finds nobody (ENOSYS, or a kill when init gives up).
    let dir = hostile();
    let vol = format!("{}:/t", dir.str());
    for call in ["personality", "tiocsti", "packet"] {
        let start = std::time::Instant::now();
        let out = ok(&run(
            Caller::Root,
            &["run", "--profile", profile, "-v", &vol, "--", "/t/hostile", call],
        ));
        assert_eq!(out, format!("{call}: EPERM\nstill served: xvisor\n"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }
});

#[test]
fn the_default_profile_traps_nothing_it_would_only_continue() {
    let out = ok(&run(Caller::Root, &["syscalls"]));
    let summary = out.lines().next().unwrap_or_default();
    assert!(summary.contains(" 0 trapped to the supervisor"), "{summary}");
    let traced = ok(&run(Caller::Root, &["syscalls", "--profile", "strict"]));
    assert!(
        !traced.lines().next().unwrap_or_default().contains(" 0 trapped"),
        "{traced}"
    );
}

each_profile!(a_signal_never_interrupts_a_call_that_natively_cannot_be, |profile| {
    // A trapped call waits for the supervisor; a caught signal arriving
    // before the supervisor has the call failed it with EINTR until the
    // monitor restarted such calls (`ptrace::restart_interrupted_call`).
    let dir = c_program("signals");
    let volume = format!("{}:/t", dir.str());
    let o = run(
        Caller::Root,
        &["run", "--profile", profile, "-v", &volume, "--", "/t/signals", "3000"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "interrupted 0 failed 0\n", "{}", stderr(&o));
});

each_profile!(hostile_calls_are_refused_and_service_goes_on, |profile| {
    let dir = hostile();
    let vol = format!("{}:/t", dir.str());
    let mut script = String::new();
    for (call, _) in REFUSED {
        script.push_str(&format!("/t/hostile {call}; "));
    }
    // Another ABI is killed (SIGSYS, 128+31), and the instance goes on.
    script
        .push_str("/t/hostile int80; echo \"int80 exit $?\"; /t/hostile x32; echo \"x32 exit $?\"; cat /etc/hostname");
    let out = ok(&run(
        Caller::Root,
        &["run", "--profile", profile, "-v", &vol, "--", "sh", "-c", &script],
    ));
    for (call, errno) in REFUSED {
        assert!(
            out.contains(&format!("{call}: {errno}\nstill served: xvisor\n")),
            "{call}: {out}"
        );
    }
    assert!(out.contains("int80 exit 159\n"), "{out}");
    assert!(out.contains("x32 exit 159\n"), "{out}");
    assert!(!out.contains("survived"), "{out}");
    assert!(out.ends_with("xvisor\n"), "{out}");
});

each_profile!(ptrace_of_the_supervisor_is_refused, |profile| {
    let dir = hostile();
    // The shell's pid becomes xvisor's (exec): the supervisor's host pid.
    let script = format!(
        "exec {} run --profile {profile} -v {}:/t -- /t/hostile ptrace_attach $$",
        binary().display(),
        dir.str()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The supervisor is no process of the instance: Linux's answer for a
    // pid outside the caller's pid namespace, ESRCH, comes first.
    assert_eq!(
        stdout(&o),
        "ptrace_attach: ESRCH\nstill served: xvisor\n",
        "{}",
        stderr(&o)
    );
});

#[test]
fn strict_profile_carries_real_programs() {
    let script = "set -e; cd /tmp; mkdir -p a/b; echo hi > a/b/f; cp -r a c; cat c/b/f; ls -la /usr | grep -c . >/dev/null; \
                  printf '3\\n1\\n2\\n' | sort | tr '\\n' ' '; echo; \
                  python3 -c 'import threading, subprocess, socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); \
t = threading.Thread(target=lambda: socket.create_connection(s.getsockname()).sendall(b\"ping\")); t.start(); \
c, _ = s.accept(); print(c.recv(4).decode(), subprocess.run([\"echo\", \"sub\"], capture_output=True, text=True).stdout.strip()); t.join()'";
    // Under strict fork and close are trapped calls: a SIGCHLD caught
    // before the supervisor has one must not fail it (the monitor makes it
    // restart), so a shell's pipelines and forks work as natively.
    let o = run(Caller::Root, &["run", "--profile", "strict", "--", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n1 2 3 \nping sub\n");
}

#[test]
fn denied_syscalls_are_refused() {
    let out = ok(&run(
        Caller::Root,
        &[
            "run",
            "--deny-syscall",
            "mkdir,mkdirat",
            "--",
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1 || echo refused",
        ],
    ));
    assert!(
        out.contains("Operation not permitted") && out.ends_with("refused\n"),
        "{out}"
    );
    let o = run(Caller::Root, &["run", "--deny-syscall", "nonsense", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no such x86_64 system call"), "{}", stderr(&o));
}

#[test]
fn trace_records_decoded_calls_as_json_lines() {
    let dir = TempDir::new("trace");
    let file = dir.join("trace.jsonl");
    let file = file.to_str().unwrap();
    let o = run(
        Caller::Root,
        // strict: every call is trapped, so forks, reads and exits show too.
        &[
            "run",
            "--profile",
            "strict",
            "--trace",
            file,
            "--",
            "sh",
            "-c",
            "cat /etc/hostname >/dev/null; exit 4",
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{text}");
    // The header first (the trace's version, the command), then the
    // records, the run's end last.
    assert!(
        lines[0].starts_with("{\"trace\": 2, ") && lines[0].contains("\"command\": [\"sh\",\"-c\","),
        "{}",
        lines[0]
    );
    assert!(
        lines[lines.len() - 1].contains("\"event\": \"end\", \"status\": 4, \"outcome\": \"exited\""),
        "{text}"
    );
    let lines = &lines[1..];
    assert!(lines
        .iter()
        .all(|l| l.starts_with("{\"time\": ") && (l.contains("\"latency_us\": ") || l.contains("\"event\": "))));
    let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).copied();
    let find_both = |a: &str, b: &str| lines.iter().find(|l| l.contains(a) && l.contains(b)).copied();
    // Arguments are JSON strings holding the readable form: a path shows
    // as \"/etc/hostname\" inside them.
    let open = find_both("\"syscall\": \"openat\"", "\\\"/etc/hostname\\\"")
        .unwrap_or_else(|| panic!("no open of /etc/hostname: {text}"));
    assert!(
        open.contains("\"syscall\": \"openat\"") && open.contains("\"O_RDONLY\""),
        "{open}"
    );
    assert!(open.contains("\"decision\": \"continue\""), "{open}");
    // What the kernel returned for calls it performed: the descriptor,
    // a failure's errno, an exec's 0 (the monitor reads them at a stop
    // right after the call).
    assert!(open.contains("\"result\": 3,"), "{open}");
    let missing = find_both("\"syscall\": \"newfstatat\"", "\\\"/usr/local/sbin/cat\\\"")
        .or_else(|| find_both("\"syscall\": \"execve\"", "\\\"/usr/local/sbin/cat\\\""))
        .unwrap_or_else(|| panic!("no look for /usr/local/sbin/cat: {text}"));
    assert!(missing.contains("\"result\": -1, \"errno\": \"ENOENT\""), "{missing}");
    assert!(
        find_both("\"syscall\": \"read\"", "\"args\": [\"3\"").is_some(),
        "no read of fd 3: {text}"
    );
    let exec = find_both("\"syscall\": \"execve\"", "\\\"/usr/bin/cat\\\"").expect("exec of cat");
    assert!(
        exec.contains("\"syscall\": \"execve\"") && exec.contains("\\\"cat\\\", \\\"/etc/hostname\\\""),
        "{exec}"
    );
    assert!(exec.contains("\"result\": 0,"), "{exec}");
    assert!(
        find("\"syscall\": \"vfork\"")
            .or(find("\"syscall\": \"clone\""))
            .is_some(),
        "no fork: {text}"
    );
    // cat exits 0, the shell 4.
    assert!(
        find_both("\"syscall\": \"exit_group\"", "\"args\": [\"0\"]").is_some(),
        "{text}"
    );
    assert!(
        find_both("\"syscall\": \"exit_group\"", "\"args\": [\"4\"]").is_some(),
        "{text}"
    );
    // Instance pids: the shell is pid 2 (init is 1), cat a later one.
    assert!(exec.contains("\"pid\": 3,") || exec.contains("\"pid\": 2,"), "{exec}");
    // The lifecycle, from the process monitor: init spawns the shell, the
    // shell spawns cat, each execs, cat exits 0, the shell 4.
    let events: Vec<&str> = lines.iter().filter(|l| l.contains("\"event\": ")).copied().collect();
    let has = |parts: &[&str]| events.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "\"pid\": 1,",
            "\"event\": \"spawn\", \"child\": 2, \"kind\": \"process\""
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "\"pid\": 2,",
            "\"event\": \"spawn\", \"child\": 3, \"kind\": \"process\""
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "\"pid\": 3,",
            "\"event\": \"exec\", \"path\": \"/usr/bin/cat\", \"argv\": [\"cat\", \"/etc/hostname\"]"
        ]),
        "{text}"
    );
    assert!(
        has(&["\"pid\": 3,", "\"event\": \"exit\", \"kind\": \"process\", \"code\": 0"]),
        "{text}"
    );
    assert!(
        has(&["\"pid\": 2,", "\"event\": \"exit\", \"kind\": \"process\", \"code\": 4"]),
        "{text}"
    );
}

#[test]
fn readable_trace_goes_to_stderr() {
    let o = run(Caller::Root, &["run", "--trace", "-", "--", "cat", "/etc/hostname"]);
    assert_eq!(stdout(&o), "xvisor\n");
    let err = stderr(&o);
    assert!(
        err.contains("openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY, 0) = 3 <"),
        "{err}"
    );
}

#[test]
fn refusals_show_in_the_trace() {
    let o = run(Caller::Root, &["run", "--trace", "-", "--", "unshare", "-U", "true"]);
    assert_ne!(code(&o), 0);
    let err = stderr(&o);
    assert!(err.contains("unshare(CLONE_NEWUSER) = -1 EPERM"), "{err}");
}

both_callers!(
    guests_make_uts_ipc_mount_and_network_namespaces_of_their_own,
    |caller| {
        // What tools that isolate their own children do; each prints its
        // outcome, and the instance's own names stay as they were.
        let script = "unshare -n ip -o link | cut -d: -f2 | tr -d ' '; \
                  unshare -u sh -c 'hostname inner; hostname'; hostname; \
                  unshare -i sh -c 'ipcmk -Q >/dev/null && ipcs -q | grep -c 0x'; ipcs -q | grep -c 0x; \
                  unshare -m --propagation unchanged sh -c 'echo mount namespace'; \
                  for f in -U -p -C -T; do unshare $f true 2>/dev/null && echo $f made || echo $f refused; done; \
                  unshare -m true 2>/dev/null || echo propagation change refused";
        let o = run(caller, &["run", "--", "sh", "-c", script]);
        let out = ok(&o);
        assert_eq!(
        out,
        "lo\ninner\nxvisor\n1\n0\nmount namespace\n-U refused\n-p refused\n-C refused\n-T refused\npropagation change refused\n",
        "{}",
        stderr(&o)
    );
    }
);

#[test]
fn syscalls_listing_under_strict_allows_nothing() {
    let out = ok(&run(Caller::Root, &["syscalls", "--profile", "strict"]));
    assert!(out.starts_with("profile strict: 0 allowed in the kernel"), "{out}");
    let json = ok(&run(Caller::Root, &["syscalls", "--json"]));
    assert!(json.trim_start().starts_with('[') && json.contains("\"name\": \"openat\""));
}

#[test]
fn the_supervisor_confines_itself_once_the_instance_runs() {
    let marker = format!("{}.25", std::process::id() % 1000 + 7);
    // Without cgroups (which the supervisor keeps CAP_DAC_OVERRIDE to
    // remove): the smallest set it keeps.
    let mut child = xvisor(Caller::Root, &["run", "--no-limits", "--", "sleep", &marker])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(std::time::Duration::from_secs(5), || !processes_with(&format!(
            "sleep {marker}"
        ))
        .is_empty()),
        "the guest never started"
    );
    // The guest runs once start() returned; confinement follows at once
    // (within a few seconds on a loaded machine).
    let read_status = || std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field_of = |status: &str, key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_string())
            .unwrap_or_default()
    };
    eventually(std::time::Duration::from_secs(5), || {
        field_of(&read_status(), "Seccomp:") == "2"
    });
    let status = read_status();
    let _ = child.kill();
    let _ = child.wait();
    let field = |key: &str| field_of(&status, key);
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    // CAP_SYS_PTRACE (bit 19) and, for the guest's /proc files under its
    // own host ids, CAP_DAC_READ_SEARCH (bit 2) only.
    assert_eq!(field("CapEff:"), "0000000000080004", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000080004", "{status}");
}

/// The clock's state can be read (glibc's `adjtimex` is `clock_adjtime`
/// with modes 0) and never changed: the kernel asks for CAP_SYS_TIME in
/// the host's namespace, which no guest has.
#[test]
fn the_clock_can_be_queried_never_adjusted() {
    let script = "import ctypes, os\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  timex = ctypes.create_string_buffer(512)\n\
                  print('query', libc.adjtimex(timex) >= 0)\n\
                  ctypes.memmove(timex, (ctypes.c_uint * 1)(1), 4)\n\
                  print('change', libc.adjtimex(timex), ctypes.get_errno())\n";
    for profile in ["default", "strict"] {
        let out = run(
            Caller::Root,
            &["run", "--profile", profile, "--", "python3", "-c", script],
        );
        assert_eq!(ok(&out).trim(), "query True\nchange -1 1", "{profile}");
    }
}

/// Refused calls answer as Linux answers an unprivileged caller, after the
/// argument checks it makes first: uid 65534 outside any instance is the
/// oracle.
#[test]
fn refusals_come_after_linuxs_own_argument_checks() {
    let script = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
def call(name, f):
    r = f()
    print(name, "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno()))
ns = os.open("/proc/self/ns/net", os.O_RDONLY)
plain = os.open("/etc/hostname", os.O_RDONLY)
call("setns -1", lambda: libc.setns(-1, 0))
call("setns closed", lambda: libc.setns(999, 0))
call("setns file", lambda: libc.setns(plain, 0))
call("setns net", lambda: libc.setns(ns, 0x40000000))
call("setns net as uts", lambda: libc.setns(ns, 0x04000000))
call("setns bad flags", lambda: libc.setns(ns, 1))
call("ptrace peek missing", lambda: libc.ptrace(2, 999999, None, None))
call("ptrace peek parent", lambda: libc.ptrace(2, os.getppid(), None, None))
call("ptrace attach missing", lambda: libc.ptrace(16, 999999, None, None))
call("syslog bad type", lambda: libc.klogctl(42, None, 0))
"#;
    let native = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv and python3");
    let expected = String::from_utf8_lossy(&native.stdout).to_string();
    assert!(expected.contains("setns closed EBADF"), "the oracle: {expected}");
    for caller in [Caller::Root, Caller::Unprivileged] {
        for profile in ["default", "strict"] {
            let out = run(caller, &["run", "--profile", profile, "--", "python3", "-c", script]);
            assert_eq!(ok(&out), expected, "{caller:?}, {profile}");
        }
    }
}
