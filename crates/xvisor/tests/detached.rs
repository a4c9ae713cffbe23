//! Detached instances (`run -d`) and their life after it: `logs`, `stop`,
//! `wait`, `inspect`, `rm`, `ps -a`; and `exec` into them with its own
//! terminal. Each test keeps its records in a state directory of its own
//! (`XVISOR_STATE_DIR`); removing it ends whatever a failed test left
//! running.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A state directory for one test's detached instances.
struct State {
    _dir: TempDir,
    path: PathBuf,
    caller: Caller,
}

impl State {
    fn new(tag: &str, caller: Caller) -> Self {
        let dir = TempDir::new(tag);
        // Made by xvisor itself, as the caller, on first use.
        let path = dir.join("state");
        Self {
            _dir: dir,
            path,
            caller,
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = xvisor(self.caller, args);
        c.env("XVISOR_STATE_DIR", &self.path);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().expect("spawn xvisor")
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&self.run(args))
    }

    /// `xvisor inspect NAME`'s one object.
    fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.ok(&["inspect", name]);
        let all: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(all.as_array().map(Vec::len), Some(1), "{text}");
        all[0].clone()
    }

    fn record(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // A failed test shows what its instances and supervisors wrote.
        if std::thread::panicking() {
            for record in std::fs::read_dir(&self.path).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(record.path().join("log")).unwrap_or_default();
                let exit = std::fs::read_to_string(record.path().join("exit.json")).unwrap_or_default();
                eprintln!("record {:?}: log {log:?} exit {exit:?}", record.file_name());
            }
        }
        // The keepers kill what is still running once their records go.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn name(tag: &str, caller: Caller) -> String {
    let who = if caller == Caller::Root { "r" } else { "u" };
    format!("dt-{tag}-{who}-{}", std::process::id())
}

/// `xvisor ps`'s names (running instances of the caller).
fn running(s: &State) -> String {
    s.ok(&["ps"])
}

both_callers!(detached_run_logs_wait_inspect_rm, |caller| {
    let s = State::new("detach", caller);
    let n = name("life", caller);
    let began = Instant::now();
    let out = s.ok(&[
        "run",
        "-d",
        "--name",
        &n,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; read x || echo no input; while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3",
    ]);
    assert_eq!(out, format!("{n}\n"));
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "run -d returned only after {:?}",
        began.elapsed()
    );
    assert!(running(&s).contains(&n), "{}", running(&s));
    // The program runs: listed as running, with its supervisor and pids.
    let info = s.inspect(&n);
    assert_eq!(info["state"], "running", "{info:#}");
    assert_eq!(info["detached"], true);
    assert!(info["supervisor_pid"].as_i64().is_some_and(|p| p > 0), "{info:#}");
    assert!(info["pids"].as_array().is_some_and(|p| !p.is_empty()), "{info:#}");
    assert_eq!(info["command"][0], "sh");
    assert!(info["started"].is_string() && info["exit_code"].is_null(), "{info:#}");
    // Told to end (by a second program in it), it exits 3.
    s.ok(&["exec", &n, "--", "touch", "/tmp/go"]);
    assert_eq!(s.ok(&["wait", &n]), "3\n");
    // Both streams are in the log; stdin was /dev/null.
    let log = s.ok(&["logs", &n]);
    assert!(
        log.contains("out\n") && log.contains("err\n") && log.contains("no input\n"),
        "{log:?}"
    );
    // Kept, as exited, until rm.
    let all = s.ok(&["ps", "-a"]);
    assert!(
        all.lines().any(|l| l.starts_with(&n) && l.contains("exited (3)")),
        "{all}"
    );
    assert!(!running(&s).contains(&n));
    let info = s.inspect(&n);
    assert_eq!(info["state"], "exited", "{info:#}");
    assert_eq!(info["exit_code"], 3);
    assert!(info["finished"].is_string(), "{info:#}");
    assert_eq!(info["options"]["limits"]["memory_bytes"], serde_json::Value::Null);
    // The name stays taken until then.
    let again = s.run(&["run", "-d", "--name", &n, "--", "true"]);
    assert_eq!(code(&again), 125, "{}", stderr(&again));
    assert!(stderr(&again).contains(&format!("xvisor rm {n}")), "{}", stderr(&again));
    assert_eq!(s.ok(&["rm", &n]), format!("{n}\n"));
    assert!(!s.record(&n).exists());
    assert!(!s.ok(&["ps", "-a"]).contains(&n));
    let o = s.run(&["logs", &n]);
    assert_eq!(code(&o), 125);
    // Failures at start come back to the caller, and leave no record.
    let o = s.run(&["run", "-d", "--name", &n, "--", "/no/such/program"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(!s.record(&n).exists());
    // --rm: nothing is kept after the end.
    let m = format!("{n}-rm");
    s.ok(&["run", "-d", "--rm", "--name", &m, "--", "true"]);
    assert!(eventually(Duration::from_secs(10), || !s.record(&m).exists()));
    // Options that make no sense in the background are refused.
    let o = s.run(&["run", "-d", "-t", "--", "sh"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("-d runs the program in the background"),
        "{}",
        stderr(&o)
    );
});

both_callers!(stop_sends_term_then_kill_and_leaves_nothing, |caller| {
    let s = State::new("stop", caller);
    // A program that ends on TERM: stopped by it, status 143.
    let n = name("term", caller);
    s.ok(&["run", "-d", "--name", &n, "--", "sleep", "1000"]);
    assert_eq!(s.ok(&["stop", &n]), format!("{n}\n"));
    assert_eq!(s.ok(&["wait", &n]), "143\n");
    // One that ignores TERM: KILL after the grace period, status 137.
    let n = name("kill", caller);
    let marker = format!("stop-marker-{n}");
    let mut args = vec!["run", "-d", "--name", &n];
    if caller == Caller::Root {
        // Limits, so that there are cgroups to see gone.
        args.extend(["--pids", "64"]);
    }
    let script = format!("trap '' TERM; echo ready; while :; do sleep 1; done # {marker}");
    args.extend(["--", "sh", "-c", &script]);
    s.ok(&args);
    assert!(eventually(Duration::from_secs(10), || s
        .ok(&["logs", &n])
        .contains("ready")));
    if caller == Caller::Root {
        assert!(!cgroup_dirs_named(&n).is_empty(), "the limits' cgroups exist");
    }
    assert_eq!(s.ok(&["stop", "-t", "1", &n]), format!("{n}\n"));
    assert_eq!(s.ok(&["wait", &n]), "137\n");
    // Once stop has returned: no process, no cgroup, no control socket.
    assert!(processes_with(&marker).is_empty(), "{:?}", processes_with(&marker));
    assert!(cgroup_dirs_named(&n).is_empty(), "{:?}", cgroup_dirs_named(&n));
    assert!(!running(&s).contains(&n));
    // Stopping what has ended does nothing, and says nothing is wrong.
    assert_eq!(s.ok(&["stop", &n]), format!("{n}\n"));
    s.ok(&["rm", &n]);
    let o = s.run(&["stop", "no-such-instance"]);
    assert_eq!(code(&o), 125);
    // rm -f kills a running one first.
    let n = name("rmf", caller);
    s.ok(&["run", "-d", "--name", &n, "--", "sleep", "1000"]);
    let o = s.run(&["rm", &n]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("is running"), "{}", stderr(&o));
    s.ok(&["rm", "-f", &n]);
    assert!(!s.record(&n).exists() && !running(&s).contains(&n));
});

/// Starts a detached `sleep 1000` whose command line carries a marker to
/// look for; returns the instance's name and the marker.
fn start_sleeper(s: &State, tag: &str, marker_tag: &str, limits: &[&str]) -> (String, String) {
    let n = name(tag, s.caller);
    let marker = format!("{marker_tag}-marker-{n}");
    let script = format!("sleep 1000 # {marker}");
    let mut args = vec!["run", "-d", "--name", &n];
    args.extend(limits);
    args.extend(["--", "sh", "-c", &script]);
    s.ok(&args);
    (n, marker)
}

both_callers!(
    a_killed_supervisor_or_a_removed_state_directory_leaves_nothing,
    |caller| {
        let s = State::new("sigkill", caller);
        let limits: &[&str] = if caller == Caller::Root { &["--pids", "64"] } else { &[] };
        // SIGKILL of the supervisor: the instance dies with it, the keeper
        // records how it ended.
        let (n, marker) = start_sleeper(&s, "sk", "sigkill", limits);
        let supervisor = s.inspect(&n)["supervisor_pid"].as_i64().expect("a supervisor pid") as i32;
        assert!(std::process::Command::new("kill")
            .args(["-KILL", &supervisor.to_string()])
            .status()
            .unwrap()
            .success());
        assert_eq!(s.ok(&["wait", &n]), "137\n");
        assert!(s.inspect(&n)["ended_by"].as_str().unwrap_or("").contains("SIGKILL"));
        assert!(
            eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()),
            "{:?}",
            processes_with(&marker)
        );
        assert!(
            eventually(Duration::from_secs(10), || cgroup_dirs_named(&n).is_empty()),
            "{:?}",
            cgroup_dirs_named(&n)
        );
        assert!(!running(&s).contains(&n));
        s.ok(&["rm", &n]);
        // SIGKILL of the keeper: the supervisor dies with it, the instance
        // with the supervisor; the record says it ended without a status.
        let (n, marker) = start_sleeper(&s, "kk", "keeper", limits);
        let keeper = s.inspect(&n)["keeper_pid"].as_i64().expect("a keeper pid") as i32;
        assert!(std::process::Command::new("kill")
            .args(["-KILL", &keeper.to_string()])
            .status()
            .unwrap()
            .success());
        assert!(
            eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()),
            "{:?}",
            processes_with(&marker)
        );
        assert!(eventually(Duration::from_secs(10), || cgroup_dirs_named(&n).is_empty()));
        assert!(eventually(Duration::from_secs(10), || !running(&s).contains(&n)));
        let o = s.run(&["wait", &n]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("without a status"), "{}", stderr(&o));
        assert!(s.ok(&["ps", "-a"]).contains("exited (?)"));
        s.ok(&["rm", &n]);
        // The whole state directory removed: every instance recorded there
        // ends, and nothing is written back.
        let names: Vec<String> = (0..2).map(|i| format!("{}-{i}", name("gone", caller))).collect();
        for n in &names {
            let script = format!("sleep 1000 # gone-marker-{n}");
            let mut args = vec!["run", "-d", "--name", n];
            args.extend(limits);
            args.extend(["--", "sh", "-c", &script]);
            s.ok(&args);
        }
        std::fs::remove_dir_all(&s.path).unwrap();
        for n in &names {
            let marker = format!("gone-marker-{n}");
            assert!(
                eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()),
                "{:?}",
                processes_with(&marker)
            );
            assert!(
                eventually(Duration::from_secs(10), || cgroup_dirs_named(n).is_empty()),
                "{:?}",
                cgroup_dirs_named(n)
            );
            assert!(eventually(Duration::from_secs(10), || !running(&s).contains(n.as_str())));
        }
        assert!(!s.path.exists(), "the state directory came back");
    }
);

both_callers!(logs_are_capped_rotated_and_followed, |caller| {
    let s = State::new("logs", caller);
    let n = name("cap", caller);
    // 200,000 lines (about 1.3 MB) through a 4 KiB cap.
    s.ok(&[
        "run",
        "-d",
        "--log-size",
        "4K",
        "--name",
        &n,
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert_eq!(s.ok(&["wait", &n]), "0\n");
    let current = std::fs::metadata(s.record(&n).join("log")).unwrap().len();
    let previous = std::fs::metadata(s.record(&n).join("log.1")).unwrap().len();
    assert!(current <= 4096 && previous <= 4096, "{current} + {previous} bytes");
    assert_eq!(s.ok(&["logs", "--tail", "2", &n]), "line 199998\nline 199999\n");
    let all = s.ok(&["logs", &n]);
    assert!(
        all.len() <= 8192 && all.ends_with("line 199999\n"),
        "{} bytes",
        all.len()
    );
    let o = s.run(&["run", "--log-size", "4K", "--", "true"]);
    assert_eq!(code(&o), 125, "--log-size without -d");
    // -f follows until the end, across rotations.
    let n = name("follow", caller);
    s.ok(&[
        "run",
        "-d",
        "--log-size",
        "4K",
        "--name",
        &n,
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do echo step $i; i=$((i+1)); sleep 0.05; done; head -c 10000 /dev/zero | tr '\\0' x; echo; echo last",
    ]);
    let followed = s.ok(&["logs", "-f", &n]);
    assert!(
        followed.starts_with("step 0\n"),
        "{:?}",
        &followed[..followed.len().min(100)]
    );
    assert!(
        followed.ends_with("\nlast\n"),
        "{:?}",
        &followed[followed.len().saturating_sub(100)..]
    );
    assert!(followed.contains("step 29\n"));
});

/// Drives `argv` on a pseudo-terminal from python3 (the host's): waits for
/// a prompt, asks for the terminal's name and size, resizes it, interrupts
/// a sleep with Ctrl-C, and exits 7. Prints what the terminal showed and
/// the status.
const PTY_DRIVER: &str = r##"
import os, pty, fcntl, termios, struct, time, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
out, step, deadline = b"", 0, time.time() + 30
while time.time() < deadline:
    if step == 0 and b"# " in out:
        os.write(fd, b"tty; stty size\n"); step = 1
    elif step == 1 and b"30 100" in out:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        time.sleep(0.3)
        os.write(fd, b"stty size; sleep 100; echo after$((1+1))\n"); step = 2
    elif step == 2 and b"40 120" in out:
        time.sleep(0.3); os.write(fd, b"\x03"); step = 3
    elif step == 3 and out.count(b"# ") >= 3:
        os.write(fd, b"exit 7\n"); step = 4
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        out += data
else:
    # Stuck: end it, so that the test fails instead of hanging.
    os.kill(pid, 9)
_, st = os.waitpid(pid, 0)
print(out.decode(errors="replace").replace("\r", ""))
print("status", os.waitstatus_to_exitcode(st))
"##;

both_callers!(exec_it_gets_a_terminal_of_its_own, |caller| {
    let s = State::new("execit", caller);
    let n = name("it", caller);
    s.ok(&["run", "-d", "--name", &n, "--", "sleep", "1000"]);
    let mut driver = std::process::Command::new("/usr/bin/python3");
    driver.args(["-c", PTY_DRIVER]);
    if caller == Caller::Unprivileged {
        driver.arg("setpriv").args(common::AS_NOBODY).arg("--");
    }
    driver.arg(binary());
    // PS1 fixed: the driver waits for '# '.
    driver.args(["exec", "-it", "-e", "PS1=# ", &n, "--", "sh"]);
    driver.env("XVISOR_STATE_DIR", &s.path).current_dir("/");
    let o = driver
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/python3 drives the pty in this test");
    let shown = stdout(&o);
    assert!(
        shown.contains("/dev/pts/"),
        "no terminal of its own: {shown:?} {}",
        stderr(&o)
    );
    assert!(
        shown.contains("30 100") && shown.contains("40 120"),
        "window size: {shown:?}"
    );
    assert!(
        !shown.contains("after2"),
        "Ctrl-C did not interrupt the sleep: {shown:?}"
    );
    assert!(shown.trim_end().ends_with("status 7"), "{shown:?} {}", stderr(&o));
    // The instance's own program is untouched by all that.
    assert!(running(&s).contains(&n));
    // -t without a terminal: refused at once, as run's is (`echo x |
    // xvisor run -it -- bash` would otherwise wait at a prompt for ever).
    for args in [
        &["run", "-it", "--", "bash"][..],
        &["exec", "-it", &n, "--", "bash"][..],
    ] {
        let began = Instant::now();
        let mut child = s
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"echo x\n");
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("-t needs a terminal"), "{}", stderr(&o));
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{args:?}: {:?}",
            began.elapsed()
        );
    }
    s.ok(&["rm", "-f", &n]);
});

both_callers!(exec_takes_run_s_options, |caller| {
    let s = State::new("execopt", caller);
    let n = name("opt", caller);
    s.ok(&["run", "-d", "--name", &n, "--", "sleep", "1000"]);
    // -u by name, from the instance's own /etc/passwd; -e; -w.
    let args = [
        "exec",
        "-u",
        "nobody",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        &n,
        "--",
        "sh",
        "-c",
        "id -u; echo $A; pwd",
    ];
    if caller == Caller::Root {
        assert_eq!(s.ok(&args), "65534\n1\n/tmp\n");
    } else {
        // A rootless instance maps one user: another is refused in one line.
        let o = s.run(&args);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("rootless"), "{}", stderr(&o));
        assert_eq!(
            s.ok(&[
                "exec",
                "-u",
                "root",
                "-e",
                "A=1",
                "-w",
                "/tmp",
                &n,
                "--",
                "sh",
                "-c",
                "id -u; echo $A; pwd"
            ]),
            "0\n1\n/tmp\n"
        );
    }
    let o = s.run(&["exec", "-u", "no-such-user", &n, "--", "id"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no-such-user"), "{}", stderr(&o));
    // -d: started, and left to run after exec returns.
    assert_eq!(
        s.ok(&["exec", "-d", &n, "--", "sh", "-c", "sleep 0.5; echo done > /tmp/flag"]),
        ""
    );
    assert!(eventually(Duration::from_secs(10), || {
        stdout(&s.run(&["exec", &n, "--", "cat", "/tmp/flag"])) == "done\n"
    }));
    // -i: a pipe on stdin goes through; the exit status is the program's.
    let mut child = s
        .command(&["exec", "-i", &n, "--", "sh", "-c", "read x; echo got $x; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!((code(&o), stdout(&o)), (5, "got hello\n".to_string()), "{}", stderr(&o));
    s.ok(&["rm", "-f", &n]);
});
