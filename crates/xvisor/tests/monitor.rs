//! The process monitor and the scheduler, black box: `xvisor ps` lists
//! every task of an instance with the right parents and states, lifecycle
//! events reach the trace, parked calls keep Linux's signal semantics, and
//! `xvisor kill` / names work for the caller's own instances only.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Builds the task test program into a directory the instance mounts.
fn tasks_program() -> TempDir {
    c_program("tasks")
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0)
}

fn ps_json(caller: Caller, name: &str) -> Value {
    let o = run(caller, &["ps", name, "--json"]);
    serde_json::from_str(&ok(&o)).unwrap_or_else(|e| panic!("ps --json: {e}: {}", stdout(&o)))
}

fn list_json(caller: Caller) -> Vec<Value> {
    let o = run(caller, &["ps", "--json"]);
    match serde_json::from_str(&ok(&o)) {
        Ok(Value::Array(items)) => items,
        other => panic!("ps --json: {other:?}"),
    }
}

/// Starts `xvisor run` in the background; waits for its first stdout line.
/// An `xvisor run` in the background, killed (SIGKILL: the whole instance
/// goes) if the test ends before it does — a failed assertion included.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start(caller: Caller, args: &[&str]) -> (Running, String, BufReader<std::process::ChildStdout>) {
    let mut child = xvisor(caller, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn xvisor");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (running, line, out)
}

fn wait_with_timeout(Running(child): &mut Running, limit: Duration) -> i32 {
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("xvisor did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ps_lists_every_task_with_parents_and_states() {
    let dir = tasks_program();
    let name = unique("tree");
    let volume = format!("{}:/t", dir.str());
    // strict: the parent's blocking wait4 is parked in the supervisor.
    let (mut child, first, mut out) = start(
        Caller::Root,
        &[
            "run",
            "--profile",
            "strict",
            "--name",
            &name,
            "-v",
            &volume,
            "--",
            "/t/tasks",
            "tree",
        ],
    );
    assert!(first.starts_with("ready "), "{first}");
    let parent: i64 = first.trim().trim_start_matches("ready ").parse().unwrap();

    // Thread creation ends before the children report ready; the stops,
    // and the new threads reaching their sleeps and reads (on a busy
    // machine, after a few trapped calls of their own), may take a moment.
    let mut tasks = Vec::new();
    let settled = eventually(Duration::from_secs(10), || {
        let v = ps_json(Caller::Root, &name);
        tasks = v["tasks"].as_array().cloned().unwrap_or_default();
        let in_call = |names: &[&str]| {
            tasks
                .iter()
                .filter(|t| t["state"] != "stopped" && names.iter().any(|n| t["call"] == *n))
                .count()
        };
        tasks.iter().filter(|t| t["state"] == "stopped").count() == 2 * 6
            && in_call(&["clock_nanosleep", "nanosleep"]) == 8 * 2
            && in_call(&["read"]) >= 8 * 3
    });
    assert!(
        settled,
        "two children never showed stopped, or threads never reached their calls: {tasks:#?}"
    );
    // init, the parent, 10 children × (main thread + 5 threads).
    assert_eq!(tasks.len(), 2 + 60, "{tasks:#?}");
    let by_pid = |pid: i64| tasks.iter().filter(move |t| t["pid"] == pid).collect::<Vec<_>>();
    let init = &by_pid(1)[0];
    assert_eq!(init["ppid"], 0);
    assert_eq!(init["command"], "xvisor-init");
    let p = by_pid(parent);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["ppid"], 1);
    assert_eq!(p[0]["state"], "waiting");
    assert_eq!(p[0]["call"], "wait4 (parked)", "{:#?}", p[0]);
    let children: Vec<i64> = tasks
        .iter()
        .filter(|t| t["ppid"] == parent && t["pid"] == t["tid"])
        .map(|t| t["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(children.len(), 10, "{tasks:#?}");
    let mut computing = 0;
    for c in &children {
        let group = by_pid(*c);
        assert_eq!(group.len(), 6, "child {c}: {group:#?}");
        let main = group.iter().find(|t| t["tid"] == *c).unwrap();
        assert_eq!(main["threads"], 6);
        assert!(
            main["command"].as_str().unwrap().ends_with("/t/tasks tree"),
            "{main:#?}"
        );
        for t in &group {
            assert_eq!(t["ppid"], parent, "threads share their process's parent: {t:#?}");
        }
        let stopped = group.iter().all(|t| t["state"] == "stopped");
        if !stopped {
            // The computing thread makes no system call at all, yet is
            // listed; the others wait where the program put them.
            if group.iter().any(|t| t["state"] == "running") {
                computing += 1;
            }
            let calls: Vec<&str> = group.iter().filter_map(|t| t["call"].as_str()).collect();
            assert_eq!(
                calls
                    .iter()
                    .filter(|c| **c == "clock_nanosleep" || **c == "nanosleep")
                    .count(),
                2,
                "{group:#?}"
            );
            assert_eq!(calls.iter().filter(|c| **c == "read").count(), 3, "{group:#?}");
        }
    }
    // Eight computing threads on two CPUs: each is seen running or runnable.
    assert!(computing >= 6, "{tasks:#?}");

    // Released (the parked wait4 is interrupted by the handler and, with
    // SA_RESTART, resumes): every child is collected and leaves the table.
    ok(&run(Caller::Root, &["kill", &name, "USR1"]));
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "reaped 10 after the signal: 1\n");
    let left = eventually(Duration::from_secs(5), || {
        ps_json(Caller::Root, &name)["tasks"].as_array().map_or(0, Vec::len) == 2
    });
    assert!(left, "{:#?}", ps_json(Caller::Root, &name));
    let listed = list_json(Caller::Root);
    let me = listed.iter().find(|i| i["name"] == name.as_str()).expect("listed");
    assert_eq!(me["tasks"], 2);
    assert_eq!(me["profile"], "strict");
    ok(&run(Caller::Root, &["kill", &name, "TERM"]));
    assert_eq!(wait_with_timeout(&mut child, Duration::from_secs(10)), 0);
    assert!(!list_json(Caller::Root).iter().any(|i| i["name"] == name.as_str()));
    let gone = run(Caller::Root, &["ps", &name]);
    assert_eq!(code(&gone), 125);
    assert!(stderr(&gone).contains("no running instance"), "{}", stderr(&gone));
}

/// What a program prints natively and under xvisor must match.
fn same_as_native(mode: &str, profile: &str) {
    let dir = tasks_program();
    let native = std::process::Command::new(dir.join("tasks"))
        .arg(mode)
        .output()
        .unwrap();
    let volume = format!("{}:/t", dir.str());
    let o = run(
        Caller::Root,
        &["run", "--profile", profile, "-v", &volume, "--", "/t/tasks", mode],
    );
    assert_eq!(stdout(&o), String::from_utf8_lossy(&native.stdout), "{}", stderr(&o));
    assert_eq!(code(&o), native.status.code().unwrap_or(-1));
}

#[test]
fn a_parked_wait_interrupted_without_sa_restart_fails_with_eintr() {
    same_as_native("eintr", "default");
    same_as_native("eintr", "strict");
}

#[test]
fn a_parked_wait_interrupted_with_sa_restart_resumes() {
    same_as_native("restart", "default");
    same_as_native("restart", "strict");
}

#[test]
fn the_trace_follows_a_fork_exec_exit_storm() {
    let dir = TempDir::new("storm");
    let trace = dir.join("trace.jsonl");
    let script = "i=0; while [ $i -lt 1000 ]; do \
        if [ $((i % 10)) = 0 ]; then sh -c 'kill -9 $$'; else /bin/true; fi; \
        i=$((i+1)); done; echo done";
    let o = run(
        Caller::Root,
        &["run", "--trace", trace.to_str().unwrap(), "--", "sh", "-c", script],
    );
    assert_eq!(ok(&o), "done\n");
    let text = std::fs::read_to_string(&trace).unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.contains("\"event\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |f: &dyn Fn(&Value) -> bool| events.iter().filter(|e| f(e)).count();
    let spawns = count(&|e| e["event"] == "spawn" && e["kind"] == "process");
    let exits = count(&|e| e["event"] == "exit" && e["kind"] == "process");
    let execs_true = count(&|e| e["event"] == "exec" && e["argv"][0] == "/bin/true");
    let true_ok = count(&|e| e["event"] == "exit" && e["code"] == 0 && e["kind"] == "process");
    let killed = count(&|e| e["event"] == "exit" && e["signal"] == "SIGKILL");
    assert_eq!(execs_true, 900);
    assert_eq!(killed, 100);
    // Every process born is seen to end: the shell, the 1000 children and
    // init itself (which nobody spawned inside the instance).
    assert_eq!(spawns, 1 + 1000, "spawns");
    assert_eq!(exits, spawns + 1, "exits");
    assert!(true_ok >= 900 + 2, "{true_ok}");
}

/// Each process's end costs the supervisor O(1): a guest holding
/// thousands of zombies does not make every further end re-read them all.
/// `zombies` forks 2,000 children, kills them all, and only then reaps
/// them; under xvisor it must stay within 5x its native time (with a floor,
/// for the instance's start and a busy machine).
#[test]
fn thousands_of_zombies_cost_the_supervisor_little() {
    const CHILDREN: &str = "2000";
    let dir = c_program("zombies");
    let started = std::time::Instant::now();
    let native = std::process::Command::new(dir.join("zombies"))
        .arg(CHILDREN)
        .output()
        .expect("run the program natively");
    let native_time = started.elapsed();
    assert_eq!(String::from_utf8_lossy(&native.stdout), "2000\n", "natively");

    let bound = (native_time * 5).max(Duration::from_secs(3));
    let volume = format!("{}:/z", dir.str());
    let started = std::time::Instant::now();
    let mut child = Running(
        xvisor(Caller::Root, &["run", "-v", &volume, "--", "/z/zombies", CHILDREN])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xvisor"),
    );
    // Past twice the bound it is only waited for to be killed.
    let status = wait_with_timeout(&mut child, bound * 2);
    let took = started.elapsed();
    let mut out = String::new();
    if let Some(mut stdout) = child.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    }
    assert_eq!((status, out.as_str()), (0, "2000\n"));
    assert!(
        took < bound,
        "fork, kill and reap of {CHILDREN} children: {took:?} under xvisor, {native_time:?} natively (bound {bound:?})"
    );
}

/// The supervisor's CPU for a guest holding 3,000 zombies under `--cpus
/// 0.1` stays within the instance's own limit: its work per task event
/// is bounded, so a throttled guest cannot make it spin (the supervisor
/// is not in the instance's cgroup; docs/design/ptrace-monitor.md says why).
#[test]
fn a_zombie_storm_under_a_cpu_limit_keeps_the_supervisor_within_it() {
    let script = "import os, time\n\
                  for i in range(3000):\n\
                  \x20   if os.fork() == 0:\n\
                  \x20       os._exit(0)\n\
                  print('made', flush=True)\n\
                  time.sleep(3)\n";
    let started = std::time::Instant::now();
    let mut child = Running(
        xvisor(Caller::Root, &["run", "--cpus", "0.1", "--", "python3", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xvisor"),
    );
    let pid = child.0.id();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "made\n");
    // The supervisor's own user and system time (not its children's),
    // while the zombies stand.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let cpu = Duration::from_millis(ticks * 10);
    let wall = started.elapsed();
    assert_eq!(wait_with_timeout(&mut child, Duration::from_secs(120)), 0);
    assert!(
        cpu.as_secs_f64() < 0.1 * wall.as_secs_f64(),
        "the supervisor used {cpu:?} of CPU in {wall:?}: above the instance's 0.1 CPU"
    );
}

#[test]
fn names_are_unique_and_other_users_instances_are_invisible() {
    let name = unique("mine");
    let (mut child, first, _out) = start(
        Caller::Root,
        &["run", "--name", &name, "--", "sh", "-c", "echo up; sleep 30"],
    );
    assert_eq!(first, "up\n");
    let again = run(Caller::Root, &["run", "--name", &name, "--", "true"]);
    assert_eq!(code(&again), 125);
    assert!(stderr(&again).contains("already running"), "{}", stderr(&again));
    // Another user sees nothing of root's instance and cannot signal it.
    assert!(!list_json(Caller::Unprivileged)
        .iter()
        .any(|i| i["name"] == name.as_str()));
    let theirs = run(Caller::Unprivileged, &["kill", &name, "KILL"]);
    assert_eq!(code(&theirs), 125);
    assert!(stderr(&theirs).contains("no running instance"), "{}", stderr(&theirs));
    ok(&run(Caller::Root, &["kill", &name, "KILL"]));
    assert_eq!(wait_with_timeout(&mut child, Duration::from_secs(10)), 137);
}

#[test]
fn rootless_instances_are_listed_and_signalled_by_their_user() {
    let name = unique("rootless");
    let (mut child, first, _out) = start(
        Caller::Unprivileged,
        &[
            "run",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "trap 'echo bye; exit 3' TERM; echo up; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(first, "up\n");
    let mine = list_json(Caller::Unprivileged);
    assert!(mine.iter().any(|i| i["name"] == name.as_str()), "{mine:#?}");
    assert!(!list_json(Caller::Root).iter().any(|i| i["name"] == name.as_str()));
    let tasks = ps_json(Caller::Unprivileged, &name);
    assert!(tasks["tasks"].as_array().is_some_and(|t| t.len() >= 2), "{tasks:#?}");
    ok(&run(Caller::Unprivileged, &["kill", &name, "TERM"]));
    assert_eq!(wait_with_timeout(&mut child, Duration::from_secs(10)), 3);
}

/// A `--net host` guest shares the host's abstract socket names, and
/// Landlock scopes only connecting to them: it can bind the name an
/// instance of its caller would have. Clients must not take it for one:
/// not listed, not asked, handed no descriptors, and the real instance
/// cannot be started under a name so taken.
fn a_guest_cannot_pose_as_an_instance(caller: Caller) {
    let uid = match caller {
        Caller::Root => 0,
        Caller::Unprivileged => NOBODY,
    };
    let name = unique("posing");
    // Answers whatever comes as a supervisor would, and says what it was
    // handed (the request line and the number of descriptors).
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.bind('\\0xvisor/{uid}/{name}'); s.listen(16)\n\
         print('bound', flush=True)\n\
         while True:\n\
         \x20   c, _ = s.accept(); c.settimeout(2)\n\
         \x20   try: data, anc, _, _ = c.recvmsg(65536, socket.CMSG_SPACE(64 * 4))\n\
         \x20   except OSError: data, anc = b'', []\n\
         \x20   fds = sum(len(d) // 4 for (l, t, d) in anc if t == socket.SCM_RIGHTS)\n\
         \x20   if data or fds: print('handed', data.split(b'\\n')[0], fds, flush=True)\n\
         \x20   try: c.sendall(b'ok\\nname\\t{name}\\nstate\\trunning\\nsupervisor_pid\\t1\\n')\n\
         \x20   except OSError: pass\n\
         \x20   c.close()\n"
    );
    let (mut guest, first, mut out) = start(caller, &["run", "--net", "host", "--", "python3", "-c", &script]);
    assert_eq!(first, "bound\n");

    let listed = list_json(caller);
    assert!(
        !listed.iter().any(|i| i["name"] == name.as_str()),
        "ps lists the guest's socket: {listed:#?}"
    );
    for args in [
        vec!["exec", name.as_str(), "--", "true"],
        vec!["kill", name.as_str()],
        vec!["ps", name.as_str()],
    ] {
        let o = run(caller, &args);
        assert_ne!(code(&o), 0, "{args:?} succeeded against the guest's socket");
        let err = stderr(&o);
        assert!(
            err.contains("not an xvisor instance of yours") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let taken = run(caller, &["run", "--name", &name, "--", "true"]);
    assert_eq!(code(&taken), 125);
    assert!(stderr(&taken).contains("taken"), "{}", stderr(&taken));

    let _ = guest.0.kill();
    let _ = guest.0.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    assert!(!rest.contains("handed"), "the guest was handed: {rest}");
}

#[test]
fn a_guest_cannot_pose_as_an_instance_of_root() {
    a_guest_cannot_pose_as_an_instance(Caller::Root);
}

#[test]
fn a_guest_cannot_pose_as_an_instance_of_a_rootless_user() {
    a_guest_cannot_pose_as_an_instance(Caller::Unprivileged);
}

#[test]
fn ps_prints_no_escape_sequence_a_guest_chose() {
    // An OSC 52 clipboard write and a screen clear in the guest's argv.
    let hostile = "\u{1b}]52;c;aGVsbG8=\u{7}\u{1b}[2J";
    let name = unique("escapes");
    let (mut child, first, _out) = start(
        Caller::Root,
        &[
            "run",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "echo up; sleep 30; :",
            hostile,
        ],
    );
    assert_eq!(first, "up\n");
    for args in [&["ps"][..], &["ps", &name]] {
        let o = run(Caller::Root, args);
        let text = ok(&o);
        assert!(
            !o.stdout.contains(&0x1b) && !o.stdout.contains(&0x07),
            "{args:?}: {text:?}"
        );
        assert!(text.contains("\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J"), "{args:?}: {text}");
    }
    // JSON keeps the text exactly, escaped as JSON says.
    let tasks = ps_json(Caller::Root, &name);
    let shell = tasks["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["pid"] != 1 && t["pid"] == t["tid"]).cloned())
        .unwrap_or_default();
    assert!(
        shell["command"].as_str().unwrap_or_default().ends_with(hostile),
        "{tasks:#?}"
    );
    let listed = list_json(Caller::Root);
    let mine = listed
        .iter()
        .find(|i| i["name"] == name.as_str())
        .cloned()
        .unwrap_or_default();
    assert!(
        mine["command"].as_str().unwrap_or_default().ends_with(hostile),
        "{listed:#?}"
    );
    ok(&run(Caller::Root, &["kill", &name, "KILL"]));
    assert_eq!(wait_with_timeout(&mut child, Duration::from_secs(10)), 137);
}

#[test]
fn kill_refuses_what_is_not_a_signal() {
    let o = run(Caller::Root, &["kill", "whatever", "NOPE"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("is not a signal"), "{}", stderr(&o));
    let o = run(Caller::Root, &["ps", "bad/name"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not a valid instance name"), "{}", stderr(&o));
}

#[test]
fn the_monitor_refuses_tasks_past_the_limit_with_eagain() {
    // The supervisor, counting the monitor's tasks, answers the fork that
    // would pass --pids with EAGAIN itself: the trace shows its decision.
    let script = "import os, time\nn = 0\ntry:\n    for _ in range(100):\n        if os.fork() == 0:\n            time.sleep(3); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(e.errno, n)\n";
    let o = run(
        Caller::Root,
        &["run", "--pids", "16", "--trace", "-", "--", "python3", "-c", script],
    );
    let out = ok(&o);
    let err = stderr(&o);
    let (errno, forks) = out.trim().split_once(' ').expect("python reports the failed fork");
    assert_eq!(errno, "11", "{out}");
    // init, python, and its children: at most 16 tasks.
    assert!(forks.parse::<u32>().unwrap() <= 14, "{out}");
    assert!(
        err.lines().any(|l| l.contains("clone(") && l.contains("= -1 EAGAIN")),
        "no clone refused by the supervisor in the trace:\n{err}"
    );
}
