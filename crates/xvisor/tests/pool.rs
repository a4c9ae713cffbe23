//! Warm pools: `xvisor pool start|ls|stop` and `xvisor run --pool`, as
//! root and as uid 65534.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A running pool, stopped on drop (a test's failure leaves nothing).
struct Pool {
    caller: Caller,
    name: String,
}

impl Pool {
    fn start(caller: Caller, tag: &str, size: usize, options: &[&str]) -> Self {
        let who = match caller {
            Caller::Root => "r",
            Caller::Unprivileged => "u",
        };
        let name = format!("tp-{tag}-{who}");
        // A pool left by an earlier, interrupted run of this test.
        let _ = run(caller, &["pool", "stop", &name]);
        let size = size.to_string();
        let mut args = vec!["pool", "start", "--name", &name, "--size", &size];
        args.extend_from_slice(options);
        ok(&run(caller, &args));
        Pool { caller, name }
    }

    fn run(&self, command: &[&str]) -> std::process::Output {
        let mut args = vec!["run", "--pool", &self.name, "--"];
        args.extend_from_slice(command);
        run(self.caller, &args)
    }

    /// The pool process's pid.
    fn pid(&self) -> i32 {
        let found = processes_with(&format!("xvisor-pool {}", self.name));
        let first = found
            .first()
            .unwrap_or_else(|| panic!("no pool process for {}", self.name));
        first.split(':').next().unwrap().parse().unwrap()
    }

    /// Processes and cgroups of the pool and its instances still there.
    fn leftovers(&self) -> Vec<String> {
        let mut left = processes_with(&format!("xvisor-pool {}", self.name));
        left.extend(processes_with(&format!("xvisor-pooled {}", self.name)));
        let prefix = format!("xvisor-{}.", self.name);
        left.extend(
            cgroup_dirs_where(|d| {
                d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .into_iter()
            .map(|d| d.display().to_string()),
        );
        left
    }
}

/// Options that build the pool's instances: limits as root; without a
/// delegated cgroup an unprivileged caller can set none (a cold run
/// refuses them too).
fn limits(caller: Caller, memory: &'static str) -> Vec<&'static str> {
    match caller {
        Caller::Root => vec!["--memory", memory, "--pids", "64"],
        Caller::Unprivileged => vec!["--net", "none"],
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = run(self.caller, &["pool", "stop", &self.name]);
    }
}

both_callers!(exit_status_stdout_and_stdin_go_through_the_pool, |caller| {
    let pool = Pool::start(caller, "io", 2, &limits(caller, "256M"));
    let o = pool.run(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "{}", stderr(&o));

    let mut args = vec!["run", "--pool", &pool.name, "--", "cat"];
    let o = run_with_input(caller, &args, b"fed through the pool\n");
    assert_eq!(ok(&o), "fed through the pool\n");

    args = vec![
        "run",
        "--pool",
        &pool.name,
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo $A; pwd",
    ];
    assert_eq!(ok(&run(caller, &args)), "1\n/tmp\n");

    // The same codes as a cold run: exit, a signal, not found, --timeout.
    for command in [
        &["sh", "-c", "exit 3"][..],
        &["sh", "-c", "kill -TERM $$"][..],
        &["sh", "-c", "kill -KILL $$"][..],
        &["/no/such/program"][..],
    ] {
        let cold = {
            let mut args = vec!["run", "--"];
            args.extend_from_slice(command);
            run(caller, &args)
        };
        let warm = pool.run(command);
        assert_eq!(code(&warm), code(&cold), "{command:?}: {}", stderr(&warm));
    }
    let o = run(
        caller,
        &["run", "--pool", &pool.name, "--timeout", "200ms", "--", "sleep", "10"],
    );
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
});

both_callers!(signals_are_passed_on_to_the_program, |caller| {
    let pool = Pool::start(caller, "sig", 1, &[]);
    let mut child = xvisor(
        caller,
        &[
            "run",
            "--pool",
            &pool.name,
            "--",
            "sh",
            "-c",
            "trap 'echo got it; exit 3' USR1; echo ready; while :; do sleep 0.05; done",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let sent = std::process::Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got it\n");
    assert_eq!(status.code(), Some(3));
});

both_callers!(options_a_pooled_instance_cannot_take_are_refused_by_name, |caller| {
    let pool = Pool::start(caller, "opt", 1, &limits(caller, "128M"));
    let o = run(
        caller,
        &[
            "run", "--pool", &pool.name, "--memory", "1G", "-v", "/tmp:/x", "--", "true",
        ],
    );
    assert_eq!(code(&o), 125);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--memory") && err.contains("-v"), "{err}");
    // Options for the run's output cannot make a pool either.
    let o = run(caller, &["pool", "start", "--name", "tp-bad", "--size", "1", "-d"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("-d"), "{}", stderr(&o));
});

both_callers!(an_instance_is_never_reused, |caller| {
    let pool = Pool::start(caller, "once", 1, &[]);
    ok(&pool.run(&["sh", "-c", "echo left > /tmp/mark"]));
    let o = pool.run(&["sh", "-c", "test -e /tmp/mark && echo present || echo absent"]);
    assert_eq!(ok(&o), "absent\n");
    // And the pool filled up again.
    assert!(eventually(Duration::from_secs(10), || {
        ok(&run(caller, &["pool", "ls", "--json"])).contains(&format!(
            "{{\"in_use\":0,\"name\":\"{}\",\"options\":\"\",\"ready\":1,\"size\":1}}",
            pool.name
        ))
    }));
});

both_callers!(pool_stop_leaves_nothing, |caller| {
    let pool = Pool::start(caller, "stop", 2, &limits(caller, "64M"));
    let listed = ok(&run(caller, &["pool", "ls"]));
    assert!(listed.contains(&pool.name), "{listed}");
    assert!(!pool.leftovers().is_empty());
    ok(&run(caller, &["pool", "stop", &pool.name]));
    assert!(!ok(&run(caller, &["pool", "ls"])).contains(&pool.name));
    assert!(
        eventually(Duration::from_secs(10), || pool.leftovers().is_empty()),
        "left: {:?}",
        pool.leftovers()
    );
});

both_callers!(a_killed_pool_leaves_nothing, |caller| {
    let pool = Pool::start(caller, "kill", 2, &limits(caller, "64M"));
    // One instance busy with a run, one waiting.
    let seconds = match caller {
        Caller::Root => "987651",
        Caller::Unprivileged => "987652",
    };
    let marker = format!("sleep {seconds}");
    let client = xvisor(caller, &["run", "--pool", &pool.name, "--", "sleep", seconds])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guests = || guest_programs(&marker);
    assert!(eventually(Duration::from_secs(10), || !guests().is_empty()));
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pool.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        eventually(Duration::from_secs(10), || pool.leftovers().is_empty()
            && guests().is_empty()),
        "left: {:?} {:?}",
        pool.leftovers(),
        guests()
    );
    let o = client.wait_with_output().unwrap();
    assert_eq!(code(&o), 137, "{}", stderr(&o));
});

both_callers!(two_clients_run_at_once, |caller| {
    let pool = Pool::start(caller, "two", 2, &[]);
    let clients: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|x| {
            let env = format!("X={x}");
            xvisor(
                caller,
                &[
                    "run",
                    "--pool",
                    &pool.name,
                    "-e",
                    &env,
                    "--",
                    "sh",
                    "-c",
                    "sleep 0.2; echo $X",
                ],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (client, x) in clients.into_iter().zip(["a", "b", "c"]) {
        let o = client.wait_with_output().unwrap();
        assert_eq!(ok(&o), format!("{x}\n"));
    }
});

#[test]
fn a_client_of_another_uid_is_refused() {
    let pool = Pool::start(Caller::Unprivileged, "uid", 1, &[]);
    // Root names the pool of uid 65534 by its socket: refused unanswered.
    let address = SocketAddr::from_abstract_name(format!("xvisor-pool/{NOBODY}/{}", pool.name)).unwrap();
    let mut conn = UnixStream::connect_addr(&address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = conn.write_all(b"status\n");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // And root's own command line does not find it.
    let o = run(Caller::Root, &["run", "--pool", &pool.name, "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no running pool"), "{}", stderr(&o));
    assert!(!ok(&run(Caller::Root, &["pool", "ls"])).contains(&pool.name));
}

both_callers!(a_prepared_guest_under_the_strict_profile_takes_its_program, |caller| {
    // Under `strict` every call of the prepared guest is trapped, those it
    // makes while it waits for its program and takes it too: served by the
    // supervisor from before the run.
    let mut options = limits(caller, "256M");
    options.extend(["--profile", "strict"]);
    let pool = Pool::start(caller, "strict", 1, &options);
    let args = [
        "run",
        "--pool",
        &pool.name,
        "-w",
        "/tmp",
        "-e",
        "A=1",
        "--",
        "sh",
        "-c",
        "echo $A $(pwd); exit 4",
    ];
    let o = run(caller, &args);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1 /tmp\n");
    let o = run(caller, &["run", "--pool", &pool.name, "--", "/no/such/program"]);
    let cold = run(caller, &["run", "--profile", "strict", "--", "/no/such/program"]);
    assert_eq!(code(&o), code(&cold), "{} / {}", stderr(&o), stderr(&cold));
    assert_eq!(stderr(&o), stderr(&cold));
});

both_callers!(waiting_instances_answer_ps, |caller| {
    let pool = Pool::start(caller, "ps", 2, &limits(caller, "256M"));
    // Each waiting instance answers what its registry name is asked.
    let o = run(caller, &["ps"]);
    let prefix = format!("{}.", pool.name);
    // (Other instances of the caller's, of other tests, may be listed too.)
    assert!(!stderr(&o).contains(&prefix), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with(&prefix)).count(),
        2,
        "{}",
        stdout(&o)
    );
    // And still takes its run.
    assert_eq!(ok(&pool.run(&["echo", "after"])), "after\n");
});

#[test]
fn a_silent_or_slow_client_holds_up_no_other() {
    let pool = Pool::start(Caller::Root, "idle", 1, &[]);
    let address = SocketAddr::from_abstract_name(format!("xvisor-pool/0/{}", pool.name)).unwrap();
    // One client that says nothing, one that has said half its line.
    let silent = UnixStream::connect_addr(&address).unwrap();
    let mut slow = UnixStream::connect_addr(&address).unwrap();
    slow.write_all(b"sta").unwrap();
    // Others are served meanwhile.
    assert_eq!(ok(&pool.run(&["echo", "served"])), "served\n");
    assert!(ok(&run(Caller::Root, &["pool", "ls"])).contains(&pool.name));
    // Before the pool gave up on the silent one: it did not wait for it.
    silent.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let held = matches!((&silent).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(
        held,
        "the pool hung up on the silent client before it served the others"
    );
    // The slow one's line, once whole, is answered.
    slow.write_all(b"tus\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    BufReader::new(&slow).read_line(&mut line).unwrap();
    assert!(line.starts_with("1 "), "status: {line:?}");
    // The silent one is hung up on in the end.
    silent.set_nonblocking(false).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let end = loop {
        match (&silent).read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other.unwrap(),
        }
    };
    assert_eq!(end, 0);
}

#[test]
fn what_a_rootless_run_hands_in_is_checked_and_kept_as_a_cold_runs() {
    let pool = Pool::start(Caller::Unprivileged, "handed", 1, &[]);
    let dir = TempDir::new("pool-handed");
    let path = dir.join("out");
    std::fs::write(&path, "").unwrap();
    std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    set_mode(&path, 0o644);
    let o = xvisor(
        Caller::Unprivileged,
        &[
            "run",
            "--pool",
            &pool.name,
            "--",
            "sh",
            "-c",
            "chmod 600 /dev/stdout; echo rc=$? >&2",
        ],
    )
    .stdin(Stdio::null())
    .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
    .output()
    .unwrap();
    assert!(stderr(&o).contains("rc=1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("used, not owned"), "{}", stderr(&o));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    // A host directory as stdin is refused, as for a cold run.
    let o = xvisor(Caller::Unprivileged, &["run", "--pool", &pool.name, "--", "true"])
        .stdin(std::fs::File::open(dir.path()).unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("stdin is a directory"), "{}", stderr(&o));
}

/// The processes running `marker` (`sleep N`) as a program: not the
/// client, whose command line names it too.
fn guest_programs(marker: &str) -> Vec<String> {
    processes_with(marker)
        .into_iter()
        .filter(|p| {
            p.split_once(": ")
                .is_some_and(|(_, cmdline)| cmdline.starts_with(marker))
        })
        .collect()
}

both_callers!(a_client_that_goes_takes_its_instance_with_it, |caller| {
    let pool = Pool::start(caller, "gone", 1, &[]);
    let seconds = match caller {
        Caller::Root => "987653",
        Caller::Unprivileged => "987654",
    };
    let marker = format!("sleep {seconds}");
    let mut client = xvisor(caller, &["run", "--pool", &pool.name, "--", "sleep", seconds])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || !guest_programs(&marker).is_empty()));
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || guest_programs(&marker).is_empty()),
        "{:?}",
        guest_programs(&marker)
    );
    // The pool goes on serving.
    assert_eq!(ok(&pool.run(&["echo", "next"])), "next\n");
});

#[test]
fn hostile_programs_meet_the_walls_of_a_cold_run_through_a_pool() {
    let dir = c_program("hostile");
    let volume = format!("{}:/t", dir.str());
    let script = "for c in io_uring_setup bpf userfaultfd open_by_handle_at unshare_user clone_user keyctl \
                  tiocsti vsock packet raw personality clone3; do /t/hostile $c; done; \
                  /t/hostile int80; echo \"int80 exit $?\"; cat /etc/shadow 2>/dev/null | wc -c; \
                  ls /proc/self/fd; cat /etc/hostname";
    for profile in ["default", "strict"] {
        let cold = ok(&run(
            Caller::Root,
            &["run", "--profile", profile, "-v", &volume, "--", "sh", "-c", script],
        ));
        assert!(
            cold.contains("int80 exit 159\n") && cold.contains("bpf: EPERM\n"),
            "{cold}"
        );
        let pool = Pool::start(
            Caller::Root,
            &format!("hostile-{profile}"),
            1,
            &["--profile", profile, "-v", &volume],
        );
        let warm = ok(&pool.run(&["sh", "-c", script]));
        assert_eq!(warm, cold, "{profile}");
    }
}

#[test]
fn descriptors_of_the_pool_and_the_client_stay_outside() {
    let name = "tp-fds-r";
    let _ = run(Caller::Root, &["pool", "stop", name]);
    let bin = binary().display().to_string();
    // Descriptor 7 open (not close-on-exec) in the pool's starter, 8 in the
    // client.
    let started = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("exec 7</etc/hostname; exec {bin} pool start --name {name} --size 1"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&started), 0, "{}", stderr(&started));
    let pool = Pool {
        caller: Caller::Root,
        name: name.to_string(),
    };
    let o = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("exec 8</etc/hostname; exec {bin} run --pool {name} -- ls /proc/self/fd"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let fds: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", pool.name);
}
