//! The supervisor layer of policy files, black box: `[net].connect` by
//! address range and unix socket path, and programs pinned by sha256 —
//! refused and named as written, allowed as listed, root and rootless; the
//! decisions cannot be raced (another guest thread flipping the address,
//! the descriptor or the program path while the call is trapped); UDP
//! destinations, in every send that names one, sent by the supervisor;
//! and a TCP
//! port rule answers the same whether Landlock or the supervisor holds it.

#[macro_use]
mod common;

use common::*;

/// Tries each connection and prints `WHAT ok` or `WHAT ERRNO`, after
/// listening on the TCP ports and unix paths it will try.
const CONNECTS: &str = r#"
import errno, os, socket, sys
def attempt(what, family, kind, address):
    s = socket.socket(family, kind)
    try:
        s.connect(address); print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
listening = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for port in (8080, 8081):
        l = socket.socket(family); l.bind((host, port)); l.listen(); listening.append(l)
for name in ("ok", "no"):
    l = socket.socket(socket.AF_UNIX); l.bind(f"/tmp/{name}.sock"); l.listen(); listening.append(l)
os.symlink("/tmp/ok.sock", "/tmp/link.sock")
os.chdir("/tmp")
attempt("tcp 127.0.0.1:8080", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 8080))
attempt("tcp 127.0.0.1:8081", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 8081))
attempt("tcp [::1]:8080", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 8080))
attempt("tcp [::1]:8081", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 8081))
attempt("tcp [::ffff:127.0.0.1]:8080", socket.AF_INET6, socket.SOCK_STREAM, ("::ffff:127.0.0.1", 8080))
attempt("tcp [::ffff:127.0.0.1]:8081", socket.AF_INET6, socket.SOCK_STREAM, ("::ffff:127.0.0.1", 8081))
attempt("udp 127.0.0.1:8081", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 8081))
attempt("unix /tmp/ok.sock", socket.AF_UNIX, socket.SOCK_STREAM, "/tmp/ok.sock")
attempt("unix ok.sock", socket.AF_UNIX, socket.SOCK_STREAM, "ok.sock")
attempt("unix /tmp/link.sock", socket.AF_UNIX, socket.SOCK_STREAM, "/tmp/link.sock")
attempt("unix /tmp/no.sock", socket.AF_UNIX, socket.SOCK_STREAM, "/tmp/no.sock")
attempt("unix /tmp/none.sock", socket.AF_UNIX, socket.SOCK_STREAM, "/tmp/none.sock")
try:
    socket.socket(fileno=os.open("/tmp", os.O_RDONLY)).connect(("127.0.0.1", 8080))
except OSError as e:
    print("not a socket", errno.errorcode[e.errno])
"#;

both_callers!(connect_rules_by_address_range_and_unix_path, |caller| {
    let (_dir, policy) = policy_file(
        "pol-sv-connect",
        "[net]\nconnect = [\"tcp:127.0.0.0/8:8080\", \"unix:/tmp/ok.sock\"]\n",
    );
    let out = run(caller, &["run", "--policy", &policy, "--", "python3", "-c", CONNECTS]);
    let text = ok(&out);
    assert_eq!(
        text,
        "tcp 127.0.0.1:8080 ok\n\
         tcp 127.0.0.1:8081 EACCES\n\
         tcp [::1]:8080 EACCES\n\
         tcp [::1]:8081 EACCES\n\
         tcp [::ffff:127.0.0.1]:8080 ok\n\
         tcp [::ffff:127.0.0.1]:8081 EACCES\n\
         udp 127.0.0.1:8081 ok\n\
         unix /tmp/ok.sock ok\n\
         unix ok.sock ok\n\
         unix /tmp/link.sock ok\n\
         unix /tmp/no.sock EACCES\n\
         unix /tmp/none.sock ENOENT\n\
         not a socket ENOTSOCK\n",
        "{text}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("xvisor: denied connect(127.0.0.1:8081) by /usr/bin/python3"),
        "{err}"
    );
    assert!(err.contains(&format!(": not in [net].connect ({policy})")), "{err}");
    // One line per call, program and rule each second: the other
    // refusals of this run are not named again.
    assert_eq!(err.matches("xvisor: denied").count(), 1, "{err}");
    // TCP Fast Open would connect without connect(): refused while the
    // supervisor decides connects (EOPNOTSUPP, as with Fast Open off).
    let fast_open = r#"
import errno, socket
l = socket.socket(); l.bind(("127.0.0.1", 8080)); l.listen()
try:
    socket.socket().sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", 8080)); print("sent")
except OSError as e:
    print(errno.errorcode[e.errno])
"#;
    let out = run(caller, &["run", "--policy", &policy, "--", "python3", "-c", fast_open]);
    assert_eq!(ok(&out), "ENOTSUP\n", "EOPNOTSUPP, by the name python gives it");
    assert!(
        stderr(&out).contains("denied sendto by /usr/bin/python3"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("TCP Fast Open connects without connect()"),
        "{}",
        stderr(&out)
    );
    // Without the file every destination is reached: the rules did it.
    let text = ok(&run(caller, &["run", "--", "python3", "-c", CONNECTS]));
    assert_eq!(text.matches(" EACCES").count(), 0, "{text}");
});

#[test]
fn a_unix_socket_the_guest_may_not_write_stays_refused() {
    // The supervisor connects for the guest; it must check the guest's
    // permission as the kernel would, since its own may be wider. The
    // listener is root's, mode 0600 (and one 0666 beside it); the
    // connecting process runs as uid 1000 inside.
    let script = r#"
import errno, os, socket
for name, mode in (("private", 0o600), ("public", 0o666)):
    l = socket.socket(socket.AF_UNIX); l.bind(f"/tmp/{name}.sock"); l.listen(); os.chmod(f"/tmp/{name}.sock", mode)
    globals()[name] = l
if os.fork() == 0:
    os.setgid(1000); os.setuid(1000)
    for name in ("private", "public"):
        try:
            socket.socket(socket.AF_UNIX).connect(f"/tmp/{name}.sock"); print(name, "ok", flush=True)
        except OSError as e:
            print(name, errno.errorcode[e.errno], flush=True)
    os._exit(0)
os.wait()
"#;
    let (_dir, policy) = policy_file(
        "pol-sv-perm",
        "[net]\nconnect = [\"unix:/tmp/private.sock\", \"unix:/tmp/public.sock\"]\n",
    );
    // Root only: a rootless instance maps one uid, so uid 1000 does not
    // exist there.
    let with = ok(&run(
        Caller::Root,
        &["run", "--policy", &policy, "--", "python3", "-c", script],
    ));
    let without = ok(&run(Caller::Root, &["run", "--", "python3", "-c", script]));
    assert_eq!(with, "private EACCES\npublic ok\n");
    assert_eq!(with, without, "the kernel's own answer");
}

/// Runs `flip_connect MODE …` with and without the policy: zero leaks
/// with it, some without (so the test can fail).
fn flip_connect(mode: &str, allowed: &str, denied: &str, iterations: &str) {
    let program = c_program("flip_connect");
    let (_dir, policy) = policy_file(
        "pol-sv-flip",
        "[net]\nconnect = [\"tcp:127.0.0.1:8080\", \"unix:/tmp/allowed.sock\"]\n",
    );
    let volume = format!("{}:/t", program.str());
    let args = [
        "-v",
        &volume,
        "--",
        "/t/flip_connect",
        mode,
        allowed,
        denied,
        iterations,
    ];
    let mut load = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &args].concat());
    let _ = load.kill();
    let _ = load.wait();
    let text = ok(&out);
    let count = |what: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == what)
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    assert_eq!(count("leaked"), 0, "{mode}: {text}");
    assert!(count("connected") > 100, "{mode}: {text}");
    assert!(count("refused") > 100, "{mode}: {text}");
    let text = ok(&run(Caller::Root, &[&["run"][..], &args].concat()));
    assert!(!text.ends_with("leaked 0\n"), "{mode} without the policy: {text}");
}

#[test]
fn a_flipped_address_never_connects_to_a_denied_port() {
    flip_connect("tcp", "8080", "8081", "100000");
}

#[test]
fn a_flipped_path_never_connects_to_a_denied_unix_socket() {
    flip_connect("unix", "/tmp/allowed.sock", "/tmp/refused.sock", "50000");
}

#[test]
fn a_flipped_descriptor_never_connects_a_denied_socket() {
    // Descriptor 100 flips between a UDP socket (UDP is not restricted by
    // this list) and a TCP one while the denied TCP port is connected to.
    flip_connect("fd", "8080", "8081", "100000");
}

both_callers!(
    a_tcp_port_rule_answers_alike_by_landlock_and_by_the_supervisor,
    |caller| {
        require_landlock(4);
        let (_landlock_dir, by_landlock) = policy_file("pol-sv-eq-ll", "[net]\nconnect = [\"tcp:*:8080\"]\n");
        // The same rule, written as address ranges: the supervisor's.
        let (_supervisor_dir, by_supervisor) = policy_file(
            "pol-sv-eq-sv",
            "[net]\nconnect = [\"tcp:0.0.0.0/0:8080\", \"tcp:[::]/0:8080\"]\n",
        );
        let shown = ok(&run(caller, &["policy", "check", &by_landlock]));
        assert!(
            shown.contains("Landlock (ABI 4+)          connect to TCP port 8080"),
            "{shown}"
        );
        let shown = ok(&run(caller, &["policy", "check", &by_supervisor]));
        assert!(
            shown.contains("supervisor                 connect to tcp:0.0.0.0/0:8080"),
            "{shown}"
        );
        let landlock = ok(&run(
            caller,
            &["run", "--policy", &by_landlock, "--", "python3", "-c", CONNECTS],
        ));
        let supervisor = ok(&run(
            caller,
            &["run", "--policy", &by_supervisor, "--", "python3", "-c", CONNECTS],
        ));
        assert_eq!(landlock, supervisor);
        assert!(landlock.contains("tcp 127.0.0.1:8081 EACCES\n"), "{landlock}");
        assert!(landlock.contains("tcp [::1]:8080 ok\n"), "{landlock}");
        // Neither restricts UDP or unix sockets.
        assert!(
            landlock.contains("udp 127.0.0.1:8081 ok\nunix /tmp/ok.sock ok\n"),
            "{landlock}"
        );
        assert!(landlock.contains("unix /tmp/no.sock ok\n"), "{landlock}");
    }
);

both_callers!(
    abstract_names_are_connected_only_in_the_instances_own_network,
    |caller| {
        // The guest's Landlock domain keeps it from abstract sockets made
        // outside the instance (Linux 6.12); the supervisor is outside that
        // domain, so it connects abstract names only where they are all the
        // instance's: its own network namespace.
        let (_dir, policy) = policy_file("pol-sv-abstract", "[net]\nconnect = [\"tcp:127.0.0.1:8080\"]\n");
        let script = r#"
import errno, os, socket
name = "\0xvisor-test-abstract-%d" % os.getppid()
l = socket.socket(socket.AF_UNIX); l.bind(name); l.listen()
try:
    socket.socket(socket.AF_UNIX).connect(name); print("abstract ok")
except OSError as e:
    print("abstract", errno.errorcode[e.errno])
"#;
        let own = ok(&run(
            caller,
            &["run", "--policy", &policy, "--", "python3", "-c", script],
        ));
        assert_eq!(own, "abstract ok\n");
        let out = run(
            caller,
            &[
                "run", "--net", "host", "--policy", &policy, "--", "python3", "-c", script,
            ],
        );
        assert_eq!(ok(&out), "abstract EPERM\n");
        assert!(
            stderr(&out).contains("denied connect(abstract unix socket)"),
            "{}",
            stderr(&out)
        );
    }
);

/// A connect to a listener whose queue is full waits (its SYN is dropped
/// and sent again a second later); meanwhile another thread connects
/// elsewhere, which it could not if the waiting connect held the
/// supervisor's serving thread; then room is made and the first one
/// completes; and a caught signal interrupts such a wait.
const SLOW_CONNECTS: &str = r#"
import errno, signal, socket, threading, time
full = socket.socket(); full.bind(("127.0.0.1", 8080)); full.listen(0)
first = socket.create_connection(("127.0.0.1", 8080))
other = socket.socket(); other.bind(("127.0.0.1", 8081)); other.listen()
result = {}
def slow():
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 8080)); result["slow"] = "ok"
    except OSError as e:
        result["slow"] = errno.errorcode[e.errno]
t = threading.Thread(target=slow); t.start()
time.sleep(0.3)
class Late(Exception): pass
def late(*_): raise Late()
signal.signal(signal.SIGALRM, late)
signal.alarm(5)
try:
    socket.create_connection(("127.0.0.1", 8081)); print("another connect meanwhile: ok", flush=True)
except Late:
    print("another connect meanwhile: held up", flush=True)
signal.alarm(0)
print("slow still waiting:", t.is_alive(), flush=True)
full.accept()
t.join(10)
print("slow:", result.get("slow"), flush=True)
# A blocked connect interrupted by a caught signal.
full2 = socket.socket(); full2.bind(("127.0.0.1", 8082)); full2.listen(0)
keep = socket.create_connection(("127.0.0.1", 8082))
signal.alarm(1)
try:
    socket.socket().connect(("127.0.0.1", 8082)); print("interrupted: no")
except Late:
    print("interrupted: yes")
"#;

both_callers!(a_connect_that_waits_is_parked_not_holding_the_supervisor, |caller| {
    let (_dir, policy) = policy_file("pol-sv-slow", "[net]\nconnect = [\"tcp:127.0.0.1:*\"]\n");
    let want = "another connect meanwhile: ok\nslow still waiting: True\nslow: ok\ninterrupted: yes\n";
    let text = ok(&run(
        caller,
        &["run", "--policy", &policy, "--", "python3", "-c", SLOW_CONNECTS],
    ));
    assert_eq!(text, want);
    // As natively (the instance without the rule).
    let text = ok(&run(caller, &["run", "--", "python3", "-c", SLOW_CONNECTS]));
    assert_eq!(text, want);
});

/// The same with a unix listener whose queue is full: a blocking
/// connect waits (the supervisor tries again without waiting, the call
/// parked), another connect goes through meanwhile, and a caught signal
/// interrupts the wait.
const SLOW_UNIX_CONNECTS: &str = r#"
import errno, os, signal, socket, threading, time
full = socket.socket(socket.AF_UNIX); full.bind("/tmp/full.sock"); full.listen(0)
first = socket.socket(socket.AF_UNIX); first.connect("/tmp/full.sock")
other = socket.socket(socket.AF_UNIX); other.bind("/tmp/other.sock"); other.listen()
result = {}
def slow():
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("/tmp/full.sock"); result["slow"] = "ok"
    except OSError as e:
        result["slow"] = errno.errorcode[e.errno]
t = threading.Thread(target=slow); t.start()
time.sleep(0.3)
class Late(Exception): pass
def late(*_): raise Late()
signal.signal(signal.SIGALRM, late)
signal.alarm(5)
try:
    socket.socket(socket.AF_UNIX).connect("/tmp/other.sock"); print("another connect meanwhile: ok", flush=True)
except Late:
    print("another connect meanwhile: held up", flush=True)
signal.alarm(0)
print("slow still waiting:", t.is_alive(), flush=True)
full.accept()
t.join(10)
print("slow:", result.get("slow"), flush=True)
signal.alarm(1)
try:
    socket.socket(socket.AF_UNIX).connect("/tmp/full.sock"); print("interrupted: no")
except Late:
    print("interrupted: yes")
"#;

both_callers!(a_unix_connect_that_waits_is_parked_too, |caller| {
    let (_dir, policy) = policy_file(
        "pol-sv-slow-unix",
        "[net]\nconnect = [\"unix:/tmp/full.sock\", \"unix:/tmp/other.sock\"]\n",
    );
    let want = "another connect meanwhile: ok\nslow still waiting: True\nslow: ok\ninterrupted: yes\n";
    let text = ok(&run(
        caller,
        &["run", "--policy", &policy, "--", "python3", "-c", SLOW_UNIX_CONNECTS],
    ));
    assert_eq!(text, want);
    let text = ok(&run(caller, &["run", "--", "python3", "-c", SLOW_UNIX_CONNECTS]));
    assert_eq!(text, want);
});

/// A directory with a copy of /bin/true (`good`) and of /bin/echo
/// (`evil`), and the sha256 of `good`.
fn programs(tag: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    std::fs::copy("/bin/true", dir.join("good")).unwrap();
    std::fs::copy("/bin/echo", dir.join("evil")).unwrap();
    std::os::unix::fs::symlink("good", dir.join("link")).unwrap();
    set_mode(dir.path(), 0o755);
    let out = std::process::Command::new("sha256sum")
        .arg(dir.join("good"))
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (dir, hash)
}

both_callers!(pinned_programs_run_only_with_their_contents, |caller| {
    require_landlock(1);
    let (dir, hash) = programs("pol-sv-pin");
    let volume = format!("{}:/p", dir.str());
    let wrong = "0".repeat(64);
    let (_d1, pinned) = policy_file(
        "pol-sv-pin-ok",
        &format!("[exec]\nallow = [\"/usr/bin\", {{ path = \"/p/good\", sha256 = \"{hash}\" }}, {{ path = \"/p/evil\", sha256 = \"{hash}\" }}]\n"),
    );
    let o = run(caller, &["run", "--policy", &pinned, "-v", &volume, "--", "/p/good"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The same pin on another program: killed before it prints.
    let o = run(
        caller,
        &["run", "--policy", &pinned, "-v", &volume, "--", "/p/evil", "RAN"],
    );
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "xvisor: denied exec of /p/evil [pid 2]: its sha256 {} is not the one pinned for /p/evil in [exec].allow ({pinned}); killed before its first instruction",
            sha256_of("/bin/echo")
        )),
        "{err}"
    );
    // A pin names a file, whichever path executes it: /p/link leads to
    // /p/good, so executing /p/good is checked against the link's pin.
    let (_d2, via_link) = policy_file(
        "pol-sv-pin-link",
        &format!("[exec]\nallow = [\"/usr/bin\", \"/p/good\", {{ path = \"/p/link\", sha256 = \"{wrong}\" }}]\n"),
    );
    let o = run(
        caller,
        &[
            "run",
            "--policy",
            &via_link,
            "-v",
            &volume,
            "--",
            "sh",
            "-c",
            "/p/good; echo $?",
        ],
    );
    assert_eq!(stdout(&o), "137\n", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not the one pinned for /p/link"),
        "{}",
        stderr(&o)
    );
    // A script's pin could never be checked (the kernel executes its
    // interpreter): nothing runs, and the line says why.
    std::fs::write(dir.join("script"), "#!/bin/sh\necho ran\n").unwrap();
    set_mode(&dir.join("script"), 0o755);
    let (_d3, script) = policy_file(
        "pol-sv-pin-script",
        &format!(
            "[exec]\nallow = [\"/usr/bin\", {{ path = \"/p/script\", sha256 = \"{}\" }}]\n",
            sha256_of(&dir.join("script").display().to_string())
        ),
    );
    let o = run(caller, &["run", "--policy", &script, "-v", &volume, "--", "/p/script"]);
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("/p/script is pinned but is a script"),
        "{}",
        stderr(&o)
    );
});

fn sha256_of(path: &str) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_flipped_exec_path_never_runs_a_program_whose_pin_does_not_match() {
    require_landlock(1);
    let (dir, hash) = programs("pol-sv-flip-exec");
    let program = c_program("flip_exec");
    let volumes = [format!("{}:/p", dir.str()), format!("{}:/t", program.str())];
    let (_d, policy) = policy_file(
        "pol-sv-flip-exec-policy",
        &format!("[exec]\nallow = [\"/t/flip_exec\", {{ path = \"/p/good\", sha256 = \"{hash}\" }}, {{ path = \"/p/evil\", sha256 = \"{hash}\" }}]\n"),
    );
    let args = [
        "-v",
        &volumes[0],
        "-v",
        &volumes[1],
        "--",
        "/t/flip_exec",
        "/p/good",
        "/p/evil",
        "3000",
        "LEAK",
    ];
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &args].concat());
    let text = ok(&out);
    assert!(!text.contains("LEAK"), "{text}");
    let killed: u64 = text.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(killed > 10, "{text}");
    // Without the pins the other program does run: the test can fail.
    let text = ok(&run(Caller::Root, &[&["run"][..], &args].concat()));
    assert!(text.contains("LEAK"), "{text}");
}

/// `udp_send cases` with UDP port 5353 allowed (IPv4 and IPv6 loopback)
/// and 5354 not: what each way of naming a destination gets.
const UDP_CASES_UNDER_RULES: &str = "sendto allowed 1\n\
sendto denied EACCES\n\
sendto unspec denied EACCES\n\
sendto short address EINVAL\n\
sendto bad pointer EFAULT\n\
sendto bad data EFAULT\n\
sendmsg allowed 1\n\
sendmsg denied EACCES\n\
sendmsg gathered 5\n\
sendmsg pktinfo ttl 1\n\
sendmsg source route EPERM\n\
setsockopt source route EPERM\n\
sendmsg segments 6\n\
sendmmsg allowed allowed denied 2\n\
sendmmsg lengths 1 1 77\n\
sendmmsg denied first EACCES\n\
connect denied EACCES\n\
connect allowed 0\n\
send connected 1\n\
write connected 1\n\
sendto connected denied EACCES\n\
v6 sendto allowed 1\n\
v6 sendto denied EACCES\n\
mapped sendto allowed 1\n\
mapped sendto denied EACCES\n\
v6 socket v4 address denied EACCES\n\
v6 sendmsg denied EACCES\n\
unix sendmsg with a descriptor 1\n\
unix descriptor passed works\n\
unix sendto path 1\n\
unix recv 1\n\
allowed got 13 denied got 0\n";

both_callers!(udp_destinations_are_decided_and_sent_by_the_supervisor, |caller| {
    let program = c_program("udp_send");
    let volume = format!("{}:/t", program.str());
    let (_dir, policy) = policy_file(
        "pol-sv-udp",
        "[net]\nconnect = [\"udp:127.0.0.1:5353\", \"udp:[::1]:5353\"]\n",
    );
    let shown = ok(&run(caller, &["policy", "check", &policy]));
    assert!(
        shown.contains("supervisor                 connect and send to udp:127.0.0.1:5353"),
        "{shown}"
    );
    assert!(shown.contains("connect: TCP and UDP to nothing else"), "{shown}");
    let out = run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "-v",
            &volume,
            "--",
            "/t/udp_send",
            "cases",
            "5353",
            "5354",
        ],
    );
    let text = ok(&out);
    assert_eq!(text, UDP_CASES_UNDER_RULES, "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("xvisor: denied sendto(127.0.0.1:5354) by /t/udp_send [pid 2]: not in [net].connect"),
        "{err}"
    );
    assert!(err.contains("xvisor: denied sendmsg(127.0.0.1:5354)"), "{err}");
    assert!(err.contains("xvisor: denied sendmmsg(127.0.0.1:5354)"), "{err}");
    assert!(
        err.contains("denied sendmsg(control message level 0 type 7)"),
        "the source route is named: {err}"
    );
    assert!(
        err.contains("denied setsockopt by /t/udp_send [pid 2]: IP_OPTIONS: a source route would send to another host than [net].connect"),
        "{err}"
    );
    // SCTP would set up associations without connect(): refused.
    let sctp = "import errno, socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_SEQPACKET, 132); print('made')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\n";
    let out = run(caller, &["run", "--policy", &policy, "--", "python3", "-c", sctp]);
    assert_eq!(ok(&out), "EPROTONOSUPPORT\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("IPPROTO_SCTP while the supervisor decides"),
        "{}",
        stderr(&out)
    );
    // Without the rules every datagram goes, the kernel's own answers.
    let native = ok(&run(
        caller,
        &["run", "-v", &volume, "--", "/t/udp_send", "cases", "5353", "5354"],
    ));
    assert!(native.contains("sendto denied 1\n"), "{native}");
    assert!(native.contains("setsockopt source route 0\n"), "{native}");
    assert!(native.ends_with("allowed got 13 denied got 10\n"), "{native}");
    // A list without udp: entries leaves UDP alone and traps no send.
    let (_tcp_dir, tcp_only) = policy_file("pol-sv-udp-tcp", "[net]\nconnect = [\"tcp:127.0.0.1:5353\"]\n");
    let out = run(
        caller,
        &[
            "run",
            "--stats",
            "--policy",
            &tcp_only,
            "-v",
            &volume,
            "--",
            "/t/udp_send",
            "cases",
            "5353",
            "5354",
        ],
    );
    let text = ok(&out);
    assert!(text.contains("sendto denied 1\n"), "{text}");
    assert!(text.contains("sendmsg source route 1\n"), "{text}");
    // A source route set on a socket is refused whenever the supervisor
    // decides destinations (TCP ones too).
    assert!(text.contains("setsockopt source route EPERM\n"), "{text}");
    // Its trapped calls: the two connects and that setsockopt (the sends
    // and other options are not trapped).
    let err = stderr(&out);
    assert!(err.contains("xvisor: 3 system calls trapped"), "{err}");
});

/// A send with no room (a unix datagram receiver's full queue) waits as
/// it would natively, holding no serving thread, and a caught signal
/// interrupts it.
const BLOCKED_SENDS: &str = r#"
import os, signal, socket, threading, time
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
n = 0
try:
    while True:
        a.send(b"x" * 100, socket.MSG_DONTWAIT); n += 1
except BlockingIOError:
    pass
done = []
t = threading.Thread(target=lambda: done.append(a.sendmsg([b"late"])))
t.start()
time.sleep(0.3)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("another send meanwhile:", u.sendmsg([b"y"], [], 0, ("127.0.0.1", 5353)))
print("blocked send still waiting:", t.is_alive())
for _ in range(n):
    b.recv(200)
t.join(5)
print("blocked send:", done, "got", b.recv(200))
class Alarm(Exception):
    pass
def ring(*_):
    raise Alarm()
signal.signal(signal.SIGALRM, ring)
try:
    while True:
        a.send(b"x" * 100, socket.MSG_DONTWAIT)
except BlockingIOError:
    pass
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    a.sendmsg([b"z"]); print("interrupted: no")
except Alarm:
    print("interrupted: yes")
"#;

both_callers!(a_send_without_room_is_parked_and_interrupted_as_natively, |caller| {
    let (_dir, policy) = policy_file("pol-sv-udp-park", "[net]\nconnect = [\"udp:127.0.0.1:5353\"]\n");
    let want = "another send meanwhile: 1\nblocked send still waiting: True\nblocked send: [4] got b'late'\ninterrupted: yes\n";
    let text = ok(&run(
        caller,
        &["run", "--policy", &policy, "--", "python3", "-c", BLOCKED_SENDS],
    ));
    assert_eq!(text, want);
    let text = ok(&run(caller, &["run", "--", "python3", "-c", BLOCKED_SENDS]));
    assert_eq!(text, want);
});

/// Runs `udp_send race MODE` with the rules: no datagram reaches the
/// denied port.
fn flip_send(caller: Caller, mode: &str, iterations: &str) {
    let program = c_program("udp_send");
    let (_dir, policy) = policy_file(
        "pol-sv-udp-flip",
        "[net]\nconnect = [\"udp:127.0.0.1:5353\", \"tcp:127.0.0.1:5353\"]\n",
    );
    let volume = format!("{}:/t", program.str());
    let args = [
        "-v",
        &volume,
        "--",
        "/t/udp_send",
        "race",
        mode,
        "5353",
        "5354",
        iterations,
    ];
    let mut load = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let out = run(caller, &[&["run", "--policy", &policy][..], &args].concat());
    let _ = load.kill();
    let _ = load.wait();
    let text = ok(&out);
    let count = |what: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == what)
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    assert_eq!(count("leaked"), 0, "{mode}: {text}");
    assert!(count("refused") > 100, "{mode}: {text}");
    if mode != "fd" {
        assert!(count("sent") > 100, "{mode}: {text}");
    }
    let text = ok(&run(caller, &[&["run"][..], &args].concat()));
    assert!(!text.ends_with("leaked 0\n"), "{mode} without the policy: {text}");
}

both_callers!(a_flipped_sendto_address_never_reaches_a_denied_port, |caller| {
    flip_send(caller, "addr", "100000");
});

both_callers!(a_flipped_msg_name_never_reaches_a_denied_port, |caller| {
    flip_send(caller, "name", "100000");
});

both_callers!(
    a_descriptor_flipped_between_tcp_and_udp_never_sends_to_a_denied_port,
    |caller| {
        flip_send(caller, "fd", "100000");
    }
);

both_callers!(abstract_unix_names_are_connect_rules, |caller| {
    // `unix:@NAME` names an abstract socket; once the list names one,
    // every other abstract name is refused (and, the list being the
    // supervisor's, every TCP destination not listed).
    let script = r#"
import errno, socket
listening = []
for name in (b"\0app", b"\0other", b"\0app-2"):
    l = socket.socket(socket.AF_UNIX); l.bind(name); l.listen(); listening.append(l)
for name in (b"\0app", b"\0other", b"\0app-2", b"\0ap"):
    try:
        socket.socket(socket.AF_UNIX).connect(name); print(name[1:].decode(), "ok")
    except OSError as e:
        print(name[1:].decode(), errno.errorcode[e.errno])
"#;
    let (_dir, policy) = policy_file("pol-sv-abstract", "[net]\nconnect = [\"unix:@app\"]\n");
    let out = run(caller, &["run", "--policy", &policy, "--", "python3", "-c", script]);
    assert_eq!(ok(&out), "app ok\nother EACCES\napp-2 EACCES\nap EACCES\n");
    assert!(
        stderr(&out).contains("xvisor: denied connect(unix:@other) by /usr/bin/python3"),
        "{}",
        stderr(&out)
    );
    let checked = ok(&run(caller, &["policy", "check", &policy]));
    assert!(checked.contains("supervisor"), "{checked}");
    assert!(checked.contains("connect to unix:@app"), "{checked}");
    assert!(checked.contains("abstract unix names to nothing else"), "{checked}");
    // Without a rule naming one, abstract names are not restricted.
    let (_dir, tcp) = policy_file("pol-sv-abstract-tcp", "[net]\nconnect = [\"tcp:127.0.0.1:80\"]\n");
    let text = ok(&run(caller, &["run", "--policy", &tcp, "--", "python3", "-c", script]));
    assert_eq!(text, "app ok\nother ok\napp-2 ok\nap ECONNREFUSED\n");
});

/// Tries each bind and prints `WHAT ok` or `WHAT ERRNO`.
const BINDS: &str = r#"
import errno, os, socket, sys
def attempt(what, family, kind, address):
    s = socket.socket(family, kind)
    try:
        s.bind(address); print(what, "ok", flush=True)
    except OSError as e:
        print(what, errno.errorcode[e.errno], flush=True)
    s.close()
T, U, A4, A6, X = socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX
attempt("tcp 127.0.0.1:8080", A4, T, ("127.0.0.1", 8080))
attempt("tcp 0.0.0.0:8080", A4, T, ("0.0.0.0", 8080))
attempt("tcp 127.0.0.1:8081", A4, T, ("127.0.0.1", 8081))
attempt("tcp [::ffff:127.0.0.1]:8080", A6, T, ("::ffff:127.0.0.1", 8080))
attempt("tcp 0.0.0.0:0", A4, T, ("0.0.0.0", 0))
attempt("tcp 0.0.0.0:80", A4, T, ("0.0.0.0", 80))
attempt("udp 0.0.0.0:5353", A4, U, ("0.0.0.0", 5353))
attempt("udp [::]:5353", A6, U, ("::", 5353))
attempt("udp 0.0.0.0:5354", A4, U, ("0.0.0.0", 5354))
attempt("unix @name", X, T, b"\0name")
attempt("unix /tmp/s", X, T, "/tmp/s")
if len(sys.argv) > 1:
    if os.fork() == 0:
        os.setgid(1000); os.setuid(1000)
        attempt("tcp 0.0.0.0:80 as uid 1000", A4, T, ("0.0.0.0", 80))
        os._exit(0)
    os.wait()
"#;

both_callers!(bind_rules_with_addresses_and_udp_ports, |caller| {
    // Addresses and UDP ports are not Landlock's: the supervisor binds the
    // guest's own socket with the address it checked. A port below 1024
    // stays the privilege it is: uid 1000 inside may not bind port 80,
    // whatever the rules say.
    let (_dir, policy) = policy_file(
        "pol-sv-bind",
        "[net]\nbind = [\"tcp:127.0.0.1:8080\", \"udp:*:5353\", \"tcp:*:80\"]\n",
    );
    let mut args = vec!["run", "--policy", &policy, "--", "python3", "-c", BINDS];
    if caller == Caller::Root {
        // A rootless instance maps one uid: no uid 1000 inside.
        args.push("as-another-user");
    }
    let out = run(caller, &args);
    let mut want = "tcp 127.0.0.1:8080 ok\n\
                    tcp 0.0.0.0:8080 EACCES\n\
                    tcp 127.0.0.1:8081 EACCES\n\
                    tcp [::ffff:127.0.0.1]:8080 ok\n\
                    tcp 0.0.0.0:0 EACCES\n\
                    tcp 0.0.0.0:80 ok\n\
                    udp 0.0.0.0:5353 ok\n\
                    udp [::]:5353 ok\n\
                    udp 0.0.0.0:5354 EACCES\n\
                    unix @name ok\n\
                    unix /tmp/s EACCES\n"
        .to_string();
    if caller == Caller::Root {
        want.push_str("tcp 0.0.0.0:80 as uid 1000 EACCES\n");
    }
    assert_eq!(ok(&out), want);
    let err = stderr(&out);
    assert!(
        err.contains("xvisor: denied bind(0.0.0.0:8080) by /usr/bin/python3"),
        "{err}"
    );
    assert!(err.contains("denied bind(a unix socket file)"), "{err}");
    let checked = ok(&run(caller, &["policy", "check", &policy]));
    assert!(checked.contains("bind to udp:*:5353"), "{checked}");
    assert!(checked.contains("bind: TCP and UDP to nothing else"), "{checked}");
    // Without the file every bind goes through: the rules did it.
    let mut args = vec!["run", "--", "python3", "-c", BINDS];
    if caller == Caller::Root {
        args.push("as-another-user");
    }
    let text = ok(&run(caller, &args));
    assert_eq!(text.matches(" ok").count(), 11, "{text}");
    // A list of tcp:*:PORT entries is Landlock's, as before: no bind is
    // trapped.
    let (_dir, ports) = policy_file("pol-sv-bind-ports", "[net]\nbind = [\"tcp:*:8080\"]\n");
    let out = run(caller, &["run", "--stats", "--policy", &ports, "--", "true"]);
    assert!(
        stderr(&out).contains("xvisor: 0 system calls trapped"),
        "{}",
        stderr(&out)
    );
});

/// Runs `flip_bind MODE …` with and without the policy.
fn flip_bind(mode: &str) {
    let program = c_program("flip_bind");
    let (_dir, policy) = policy_file(
        "pol-sv-flip-bind",
        "[net]\nbind = [\"tcp:127.0.0.1:8080\", \"udp:127.0.0.1:8080\"]\n",
    );
    let volume = format!("{}:/t", program.str());
    let args = ["-v", &volume, "--", "/t/flip_bind", mode, "8080", "8081", "100000"];
    let mut load = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &args].concat());
    let _ = load.kill();
    let _ = load.wait();
    let text = ok(&out);
    let count = |what: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == what)
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    assert_eq!(count("leaked"), 0, "{mode}: {text}");
    assert!(count("bound") > 100, "{mode}: {text}");
    assert!(count("refused") > 100, "{mode}: {text}");
    let text = ok(&run(Caller::Root, &[&["run"][..], &args].concat()));
    assert!(!text.ends_with("leaked 0\n"), "{mode} without the policy: {text}");
}

#[test]
fn a_flipped_port_never_binds_a_denied_tcp_port() {
    flip_bind("tcp");
}

#[test]
fn a_flipped_port_never_binds_a_denied_udp_port() {
    flip_bind("udp");
}
