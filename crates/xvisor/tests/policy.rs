//! Policy files, black box: each kind of rule refuses what it must and
//! allows what it lists, root and rootless; bad files are refused before
//! anything starts; every example of docs/policy.md is accepted.
//!
//! These need Landlock (ABI 4 for the port rules): a kernel without it
//! fails them with the reason.

#[macro_use]
mod common;

use common::*;

both_callers!(fs_rules_allow_what_they_list_and_nothing_else, |caller| {
    require_landlock(1);
    let (_dir, policy) = policy_file(
        "pol-fs",
        r#"
[fs]
read  = ["/usr", "/etc", "/tmp"]
write = ["/tmp"]
exec  = ["/usr/bin"]
"#,
    );
    let script = "cat /etc/hostname; echo kept > /tmp/x && cat /tmp/x; \
        (echo no > ~/y) 2>/dev/null || echo 'home write refused'; \
        (ls / >/dev/null) 2>/dev/null || echo 'root listing refused'; \
        (/usr/sbin/nologin) 2>/dev/null; echo \"sbin exec $?\"";
    let out = ok(&run(caller, &["run", "--policy", &policy, "--", "sh", "-c", script]));
    assert_eq!(
        out, "xvisor\nkept\nhome write refused\nroot listing refused\nsbin exec 126\n",
        "{out}"
    );
    // Without the file, the same script reaches all of it.
    let out = ok(&run(caller, &["run", "--", "sh", "-c", script]));
    assert!(!out.contains("refused"), "{out}");
});

both_callers!(the_exec_list_names_single_programs, |caller| {
    require_landlock(1);
    let (_dir, policy) = policy_file(
        "pol-exec",
        "[exec]\nallow = [\"/usr/bin/python3\", \"/usr/bin/dash\"]\n",
    );
    let out = ok(&run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "--",
            "sh",
            "-c",
            "python3 -c 'print(6*7)'; cat /etc/hostname 2>/dev/null; echo \"cat $?\"",
        ],
    ));
    assert_eq!(out, "42\ncat 126\n");
});

both_callers!(tcp_port_rules_hold_for_bind_and_connect, |caller| {
    require_landlock(4);
    let (_dir, policy) = policy_file(
        "pol-net",
        "[net]\nbind = [\"tcp:*:8080\"]\nconnect = [\"tcp:*:8080\"]\n",
    );
    let script = r#"
import errno, socket
def attempt(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
server = socket.socket()
attempt("bind 8080", lambda: server.bind(("127.0.0.1", 8080)))
server.listen()
other = socket.socket()
attempt("bind 8081", lambda: other.bind(("127.0.0.1", 8081)))
attempt("connect 8080", lambda: socket.create_connection(("127.0.0.1", 8080)))
attempt("connect 9", lambda: socket.socket().connect(("127.0.0.1", 9)))
"#;
    let out = ok(&run(
        caller,
        &["run", "--policy", &policy, "--", "python3", "-c", script],
    ));
    assert_eq!(
        out, "bind 8080 ok\nbind 8081 EACCES\nconnect 8080 ok\nconnect 9 EACCES\n",
        "{out}"
    );
});

both_callers!(syscall_rules_answer_as_written, |caller| {
    let (_dir, policy) = policy_file(
        "pol-sys",
        "[syscalls]\ndeny = [\"getppid\"]\nerrno = { uname = \"ENOSYS\" }\n",
    );
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print("getppid", libc.syscall(110), ctypes.get_errno())
for _ in range(50):
    libc.syscall(110)
buf = ctypes.create_string_buffer(390)
print("uname", libc.uname(buf), ctypes.get_errno())
"#;
    for profile in [&[][..], &["--profile", "strict"][..]] {
        let mut args = vec!["run", "--policy", &policy];
        args.extend_from_slice(profile);
        args.extend_from_slice(&["--", "python3", "-c", script]);
        let o = run(caller, &args);
        assert_eq!(ok(&o), "getppid -1 1\nuname -1 38\n", "{profile:?}");
        // Each refusal named once (the 51 getppid calls within a second
        // give one line), with the program, the pid and the rule.
        let err = stderr(&o);
        let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
        let named = |call: &str, key: &str| {
            format!(
                "xvisor: denied {call} by {} [pid 2]: in [syscalls].{key} ({policy})",
                python.display()
            )
        };
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines, [named("getppid", "deny"), named("uname", "errno")], "{err}");
    }
});

#[test]
fn built_in_refusals_are_named_once_a_second() {
    let script = "import socket\nfor _ in range(20):\n    try:\n        socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n    except OSError as e:\n        n = e.errno\nprint(n)\n";
    let o = run(Caller::Root, &["run", "--", "python3", "-c", script]);
    assert_eq!(ok(&o), "1\n");
    let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
    assert_eq!(
        stderr(&o),
        format!(
            "xvisor: denied socket by {} [pid 2]: AF_PACKET is refused in every profile\n",
            python.display()
        )
    );
}

both_callers!(mdwe_refuses_writable_executable_memory, |caller| {
    let (_dir, policy) = policy_file("pol-mdwe", "[process]\nmdwe = true\n");
    let script = r#"
import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("rwx mapped")
except OSError as e:
    print("rwx refused", e.errno)
"#;
    let out = ok(&run(
        caller,
        &["run", "--policy", &policy, "--", "python3", "-c", script],
    ));
    assert_eq!(out, "rwx refused 13\n");
    let out = ok(&run(caller, &["run", "--", "python3", "-c", script]));
    assert_eq!(out, "rwx mapped\n");
});

#[test]
fn limits_come_from_the_file_and_flags_override_them() {
    let (_dir, policy) = policy_file("pol-lim", "[limits]\nnofile = 40\ntimeout = \"30s\"\n");
    let out = ok(&run(
        Caller::Root,
        &["run", "--policy", &policy, "--", "sh", "-c", "ulimit -n"],
    ));
    assert_eq!(out, "40\n");
    let out = ok(&run(
        Caller::Root,
        &[
            "run",
            "--policy",
            &policy,
            "--nofile",
            "50",
            "--",
            "sh",
            "-c",
            "ulimit -n",
        ],
    ));
    assert_eq!(out, "50\n");
}

#[test]
fn bad_files_are_refused_with_their_place_and_nothing_starts() {
    let marker = TempDir::new("pol-bad-marker");
    let witness = marker.join("started");
    for (text, want) in [
        ("[fs]\nread = [\"/usr\"\n", ":2:"),
        ("[fs]\nreed = [\"/usr\"]\n", ":2:1: fs.reed: unknown key"),
        (
            "[fs]\nexec = [\"/usr/bin/py*\"]\n",
            ":2:9: fs.exec: \"/usr/bin/py*\": patterns are taken in [fs].read and [fs].write",
        ),
        (
            "[syscalls]\ndeny = [\"nosuchcall\"]\n",
            ":2:9: syscalls.deny: \"nosuchcall\" is not",
        ),
        (
            "[limits]\nmemory = \"12 parsecs\"\n",
            ":2:10: limits.memory: \"12 parsecs\": unknown unit",
        ),
        (
            "[fs]\nread = [\"/no/such/dir\"]\n",
            "/no/such/dir, which does not exist in the instance",
        ),
    ] {
        let (_dir, policy) = policy_file("pol-bad", text);
        let o = run(
            Caller::Root,
            &[
                "run",
                "--policy",
                &policy,
                "-v",
                &format!("{}:/m:rw", marker.str()),
                "--",
                "touch",
                "/m/started",
            ],
        );
        assert_eq!(code(&o), 125, "{text:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{text:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!witness.exists(), "{text:?}: the program ran");
    }
    let o = run(Caller::Root, &["run", "--policy", "/no/such/policy.toml", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("/no/such/policy.toml"), "{}", stderr(&o));
}

#[test]
fn check_shows_each_rule_with_its_layer() {
    let (_dir, policy) = policy_file(
        "pol-check",
        "[fs]\nread = [\"/usr\"]\n[net]\nbind = [\"tcp:*:80\"]\n[syscalls]\ndeny = [\"ptrace\"]\n",
    );
    let out = ok(&run(Caller::Root, &["policy", "check", &policy]));
    assert!(out.contains(": accepted"), "{out}");
    for want in [
        "2  Landlock                   read beneath /usr",
        "4  Landlock (ABI 4+)          bind TCP port 80",
        "6  seccomp filter             ptrace: refused with EPERM",
        "0 trapped to the supervisor",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    let o = run(Caller::Root, &["policy", "check", "/no/such.toml"]);
    assert_eq!(code(&o), 125);
}

#[test]
fn built_in_profiles_show_as_files_that_check() {
    for profile in ["default", "strict"] {
        let shown = ok(&run(Caller::Root, &["policy", "show", profile]));
        assert!(shown.contains(&format!("base = \"{profile}\"")), "{shown}");
        let (_dir, policy) = policy_file("pol-show", &shown);
        ok(&run(Caller::Root, &["policy", "check", &policy]));
    }
}

#[test]
fn every_example_in_the_docs_is_accepted() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md")).unwrap();
    let mut examples = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let (_dir, policy) = policy_file("pol-doc", text);
        let out = ok(&run(Caller::Root, &["policy", "check", &policy]));
        assert!(out.contains("accepted"), "{text}\n{out}");
        examples += 1;
    }
    assert!(examples >= 4, "{examples} examples found");
}

#[test]
fn the_untrusted_code_example_runs_a_script_and_refuses_the_rest() {
    require_landlock(4);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md")).unwrap();
    let untrusted = doc
        .split("### A runner for untrusted generated code")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the untrusted-code example");
    let (_dir, policy) = policy_file("pol-untrusted", untrusted);
    let script = b"import os, subprocess\nprint(sum(range(10)))\n\
try:\n    open('/root/.profile', 'w')\nexcept OSError as e:\n    print('write', e.errno)\n\
try:\n    subprocess.run(['/bin/ls'])\nexcept OSError as e:\n    print('exec', e.errno)\n";
    // Its memory limit needs a cgroup: root's (or a delegated one's).
    let o = run_with_input(
        Caller::Root,
        &["run", "--policy", &policy, "--", "python3", "-"],
        script,
    );
    assert_eq!(stdout(&o), "45\nwrite 13\nexec 13\n", "{}", stderr(&o));
}

both_callers!(
    denied_paths_never_show_their_contents_and_cannot_be_moved_out,
    |caller| {
        let data = TempDir::new("pol-deny-data");
        std::fs::create_dir_all(data.join("sub/deep")).unwrap();
        std::fs::write(data.join("key.pem"), "SECRET-1").unwrap();
        std::fs::write(data.join("sub/deep/b.pem"), "SECRET-2").unwrap();
        std::fs::write(data.join("readme"), "public").unwrap();
        if caller == Caller::Unprivileged {
            chown_tree(data.path(), NOBODY);
        }
        let (_dir, policy) = policy_file(
            "pol-deny",
            "[fs]\nread = [\"/usr\", \"/etc\", \"/data\"]\ndeny = [\"/data/**/*.pem\", \"/etc/hostname\"]\n",
        );
        let volume = format!("{}:/data:rw", data.str());
        let script = "cat /data/key.pem /data/sub/deep/b.pem /etc/hostname; cat /data/readme; echo; \
        mv /data/key.pem /data/moved 2>/dev/null || echo 'mv refused'; \
        ln /data/key.pem /data/linked 2>/dev/null || echo 'ln refused'; \
        (echo x > /data/key.pem) 2>/dev/null || echo 'write refused'; \
        rm -f /data/key.pem 2>/dev/null || echo 'rm refused'; \
        cp /data/sub/deep/b.pem /data/copy && cat /data/copy; echo";
        let out = ok(&run(
            caller,
            &["run", "--policy", &policy, "-v", &volume, "--", "sh", "-c", script],
        ));
        assert!(!out.contains("SECRET"), "{out}");
        assert_eq!(
            out, "public\nmv refused\nln refused\nwrite refused\nrm refused\n\n",
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(data.join("key.pem")).unwrap(), "SECRET-1");
        assert!(!data.join("moved").exists() && !data.join("linked").exists());
    }
);

#[test]
fn denials_that_cannot_hold_are_refused_at_start() {
    // A missing path where the instance could create it.
    let (_dir, policy) = policy_file("pol-deny-missing", "[fs]\ndeny = [\"/tmp/not-yet\"]\n");
    let o = run(Caller::Root, &["run", "--policy", &policy, "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/tmp/not-yet: it does not exist, and the instance could create it"),
        "{}",
        stderr(&o)
    );
    // A missing path in the read-only system directories holds.
    let (_dir, policy) = policy_file("pol-deny-ro", "[fs]\ndeny = [\"/usr/no/such/thing\"]\n");
    ok(&run(Caller::Root, &["run", "--policy", &policy, "--", "true"]));
    // A search too wide to make at every start.
    let (_dir, policy) = policy_file("pol-deny-wide", "[fs]\ndeny = [\"/usr/**/*.pem\"]\n");
    let o = run(Caller::Root, &["run", "--policy", &policy, "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("looked at more than"), "{}", stderr(&o));
}

#[test]
fn a_path_flipped_under_the_opener_never_reaches_a_denied_file() {
    // The deny is held by the mount namespace: there is no decision on
    // the path to race. 100,000 opens through a buffer another thread
    // flips between an allowed and a denied file, with a busy loop beside.
    let data = TempDir::new("pol-flip");
    std::fs::write(data.join("public"), "public").unwrap();
    std::fs::write(data.join("secret.pem"), "SECRET").unwrap();
    let program = c_program("flip_open");
    let (_dir, policy) = policy_file("pol-flip-policy", "[fs]\ndeny = [\"/data/*.pem\"]\n");
    let volumes = [format!("{}:/data", data.str()), format!("{}:/t", program.str())];
    let mut load = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let flip = [
        "-v",
        &volumes[0],
        "-v",
        &volumes[1],
        "--",
        "/t/flip_open",
        "/data/public",
        "/data/secret.pem",
        "100000",
        "SECRET",
    ];
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &flip].concat());
    let _ = load.kill();
    let _ = load.wait();
    let text = ok(&out);
    let opened: u64 = text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    // Torn mixtures of the two names fail to open; how many depends on how
    // the two threads are scheduled, which another test's load changes.
    assert!(opened > 1_000, "{text}");
    assert!(text.ends_with("leaked 0\n"), "{text}");
    // The same run without the policy does read the file: the test can fail.
    let text = ok(&run(Caller::Root, &[&["run"][..], &flip].concat()));
    assert!(!text.ends_with("leaked 0\n"), "{text}");
}
