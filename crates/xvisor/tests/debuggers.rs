//! Debuggers inside an instance (docs/design/guest-debuggers.md): strace
//! and gdb work as natively, a guest attaches to its own children, and the
//! monitor keeps what it must (init is never lent, the task limit holds, a
//! tracer's end leaves nothing behind). Root and uid 65534.

#[macro_use]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// strace and gdb must be installed (scripts/setup installs them).
fn require_debuggers() {
    for tool in ["strace", "gdb", "gcc"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is needed for these tests (scripts/setup installs it)");
    }
}

/// The same command run natively, as the caller.
fn native(caller: Caller, args: &[&str]) -> std::process::Output {
    let mut cmd = match caller {
        Caller::Root => Command::new(args[0]),
        Caller::Unprivileged => {
            let mut c = Command::new("setpriv");
            c.args(AS_NOBODY).arg("--").arg(args[0]);
            c
        }
    };
    // The instance's environment: PATH alone (not the test's loader
    // paths).
    cmd.args(&args[1..])
        .current_dir("/")
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.output().expect("run natively")
}

/// strace's lines reduced to their shape: the call's name and whether it
/// failed (and with which errno), or the end line; addresses, pids and
/// the environment's size differ between any two runs.
fn shape(strace: &str) -> Vec<String> {
    strace
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with("+++") || line.starts_with("---") {
                return Some(line.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
            }
            let name = line.split('(').next()?.to_string();
            let result = line.rsplit_once(" = ")?.1;
            let outcome = if result.starts_with('-') {
                result.split_whitespace().nth(1).unwrap_or("?").to_string()
            } else if result.starts_with('?') {
                "?".to_string()
            } else {
                "ok".to_string()
            };
            Some(format!("{name} {outcome}"))
        })
        .collect()
}

both_callers!(strace_of_a_program_matches_native, |caller| {
    require_debuggers();
    let args = ["strace", "-f", "true"];
    let inside = run(caller, &["run", "--", args[0], args[1], args[2]]);
    let outside = native(caller, &args);
    assert_eq!(code(&inside), code(&outside), "{}", stderr(&inside));
    assert_eq!(code(&inside), 0, "{}", stderr(&inside));
    let (inside, outside) = (shape(&stderr(&inside)), shape(&stderr(&outside)));
    assert!(inside.iter().any(|l| l.starts_with("execve ok")), "{inside:?}");
    assert_eq!(inside, outside);
});

both_callers!(strace_passes_on_the_exit_status, |caller| {
    require_debuggers();
    for profile in ["default", "strict"] {
        for (script, status) in [("true; false", 1), ("true; exit 3", 3), ("true", 0)] {
            let args = ["strace", "-f", "-qq", "-e", "trace=none", "sh", "-c", script];
            let mut run_args = vec!["run", "--profile", profile, "--"];
            run_args.extend(args);
            let inside = run(caller, &run_args);
            assert_eq!(code(&inside), status, "{profile} {script}: {}", stderr(&inside));
            assert_eq!(code(&native(caller, &args)), status, "natively: {script}");
        }
    }
});

both_callers!(strace_follows_forks_as_natively, |caller| {
    require_debuggers();
    let args = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=write",
        "sh",
        "-c",
        "echo one; (echo two); echo three",
    ];
    for profile in ["default", "strict"] {
        let mut run_args = vec!["run", "--profile", profile, "--"];
        run_args.extend(args);
        let inside = run(caller, &run_args);
        assert_eq!(stdout(&inside), "one\ntwo\nthree\n", "{profile}: {}", stderr(&inside));
        let writes = |s: &str| s.lines().filter(|l| l.contains("write(1, ")).count();
        assert_eq!(writes(&stderr(&inside)), 3, "{profile}: {}", stderr(&inside));
    }
});

both_callers!(gdb_runs_a_program_to_a_breakpoint, |caller| {
    require_debuggers();
    let dir = TempDir::new("debuggee");
    let src = format!("{}/tests/programs/debuggee.c", env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(dir.join("debuggee"))
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(built.success());
    set_mode(dir.path(), 0o755);
    let volume = format!("{}:/d", dir.str());

    // `bt` after the end says "No stack." and gdb -batch ends with 1, as
    // natively.
    let args = ["gdb", "-batch", "-ex", "run", "-ex", "bt", "--args", "/bin/true"];
    let mut run_args = vec!["run", "--"];
    run_args.extend(args);
    let o = run(caller, &run_args);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(code(&o), code(&native(caller, &args)), "{text}");
    assert!(text.contains("exited normally"), "{text}");
    assert!(text.contains("No stack."), "{text}");

    for profile in ["default", "strict"] {
        let o = run(
            caller,
            &[
                "run",
                "--profile",
                profile,
                "-v",
                &volume,
                "--",
                "gdb",
                "-batch",
                "-ex",
                "break main",
                "-ex",
                "run",
                "-ex",
                "print g",
                "-ex",
                "next",
                "-ex",
                "print g",
                "-ex",
                "continue",
                "/d/debuggee",
            ],
        );
        let text = stdout(&o);
        assert_eq!(code(&o), 0, "{profile}: {text}{}", stderr(&o));
        assert!(text.contains("$1 = 41"), "{profile}: {text}");
        assert!(text.contains("$2 = 42"), "{profile}: {text}");
        assert!(text.contains("g is 42"), "{profile}: {text}");
        assert!(text.contains("exited normally"), "{profile}: {text}");
    }
});

both_callers!(a_process_attaches_to_its_own_child_as_natively, |caller| {
    require_debuggers();
    let dir = c_program("ptrace_sibling");
    let volume = format!("{}:/t", dir.str());
    let outside = native(caller, &[dir.join("ptrace_sibling").to_str().unwrap()]);
    let expected = String::from_utf8_lossy(&outside.stdout).into_owned();
    assert!(expected.contains("attach running child: ok"), "natively: {expected}");
    for profile in ["default", "strict"] {
        // With arguments it also tries pid 1 (the instance's init, never
        // let go) and a host pid, the test's own (not nameable inside).
        let host_pid = std::process::id().to_string();
        let inside = run(
            caller,
            &[
                "run",
                "--profile",
                profile,
                "-v",
                &volume,
                "--",
                "/t/ptrace_sibling",
                "1",
                &host_pid,
            ],
        );
        assert_eq!(
            ok(&inside),
            format!("{expected}attach pid 1: EPERM\nattach host pid: ESRCH\n"),
            "{profile}: {}",
            stderr(&inside)
        );
    }
});

#[test]
fn the_task_limit_holds_under_strace() {
    require_root();
    require_debuggers();
    // Sleeps started in a loop under a limit of eight tasks: init, strace
    // and sh count, so five start before sh cannot fork (natively under a
    // pids.max of 8 the same). The sleeps are forked by a task strace
    // traces: not seen by the monitor until a look, counted by the cgroup.
    let o = run(
        Caller::Root,
        &[
            "run",
            "--pids",
            "8",
            "--",
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=none",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & echo $i; done; wait",
        ],
    );
    let started = stdout(&o).lines().count();
    assert!(
        (1..=5).contains(&started),
        "{started} sleeps started under --pids 8: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Cannot fork"), "{}", stderr(&o));
}

/// The host pid of a live process whose command line is exactly
/// `command`.
fn process_running(command: &str) -> Option<String> {
    processes_with(command)
        .iter()
        .filter_map(|p| p.split_once(": "))
        .find(|(_, line)| line.trim() == command)
        .map(|(pid, _)| pid.to_string())
}

/// The name of the tracer of the host process whose command line is
/// exactly `command`, if one is traced.
fn tracer_of(command: &str) -> Option<String> {
    let pid = process_running(command)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tracer = status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))?
        .trim()
        .to_string();
    if tracer == "0" {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{tracer}/comm")).ok()?;
    Some(comm.trim().to_string())
}

both_callers!(a_killed_tracer_leaves_nothing_behind, |caller| {
    require_debuggers();
    // Root and rootless run at once: a marker of each's own.
    let marker = 4000 + std::process::id() % 1000 + if caller == Caller::Root { 0 } else { 1000 };
    let sleep = format!("sleep {marker}");
    // strace is killed while it traces a sleep: the sleep, untraced, is
    // taken back by the monitor at its next look. Then xvisor itself is
    // killed: the instance ends, the sleep with it.
    // strace's output file says when it traces the sleep.
    let script = format!(
        "strace -f -o /tmp/trace {sleep} & while ! grep -q nanosleep /tmp/trace 2>/dev/null; do sleep 0.1; done; \
         kill -9 $!; wait $!; echo killed; sleep 120"
    );
    let mut child = xvisor(caller, &["run", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn xvisor");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line);
    assert_eq!(line, "killed\n");
    let taken_back = eventually(Duration::from_secs(30), || {
        tracer_of(&sleep).as_deref() == Some("xvisor-monitor")
    });
    let tracer = tracer_of(&sleep);
    let _ = child.kill();
    let _ = child.wait();
    assert!(taken_back, "the sleep's tracer: {tracer:?}");
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&sleep).is_empty()),
        "left behind: {:?}",
        processes_with(&sleep)
    );
});

// Where the monitor cannot step aside soundly, guest debuggers stay
// refused as before: pinned programs (checked at the monitor's exec
// stops), learning, a user's denial of ptrace.
both_callers!(debuggers_stay_refused_where_the_monitor_needs_every_exec, |caller| {
    require_debuggers();
    require_landlock(1);
    let out = Command::new("sha256sum").arg("/usr/bin/true").output().unwrap();
    let hash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (_pins, pinned) = policy_file(
        "dbg-pins",
        &format!(
            "[exec]\nallow = [\"/usr\", \"/bin\", \"/lib\", {{ path = \"/usr/bin/true\", sha256 = \"{hash}\" }}]\n"
        ),
    );
    let learned = TempDir::new("dbg-learn");
    let learn_file = learned.join("learned.toml");
    let learn_file = learn_file.to_str().unwrap();
    for options in [
        vec!["--policy", &pinned],
        vec!["--learn", learn_file],
        vec!["--deny-syscall", "ptrace"],
    ] {
        let mut args = vec!["run"];
        args.extend(options.iter().copied());
        args.extend(["--", "strace", "-f", "true"]);
        let o = run(caller, &args);
        assert_ne!(code(&o), 0, "{options:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("Operation not permitted"),
            "{options:?}: {}",
            stderr(&o)
        );
    }
});

// A tracer cannot get around the filter: a call it changes at the
// syscall-entry stop is filtered as changed (here into a new user
// namespace, which natively it may make), and its tracee's filter cannot
// be suspended, even by host root (natively root may).
both_callers!(a_tracer_cannot_get_around_the_filter, |caller| {
    require_debuggers();
    let dir = c_program("ptrace_swap");
    let volume = format!("{}:/t", dir.str());
    let natively = native(caller, &[dir.join("ptrace_swap").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&natively.stdout).contains("unshare(CLONE_NEWUSER): ok"),
        "natively: {}",
        String::from_utf8_lossy(&natively.stdout)
    );
    for profile in ["default", "strict"] {
        let o = run(
            caller,
            &["run", "--profile", profile, "-v", &volume, "--", "/t/ptrace_swap"],
        );
        assert_eq!(
            ok(&o),
            "getppid turned into unshare(CLONE_NEWUSER): EPERM\nseize with PTRACE_O_SUSPEND_SECCOMP: EPERM\n",
            "{profile}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("denied unshare"), "{profile}: {}", stderr(&o));
    }
});
