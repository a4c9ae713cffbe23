//! Learn mode, black box: a run learned with `--learn FILE` passes again
//! under `--policy FILE`, and a read of a file the run never touched is
//! refused by Landlock — for a shell pipeline, python, git, and gcc with
//! make in a volume; root and rootless.
//!
//! These need Landlock, git, gcc, make and python3 (`scripts/setup`
//! installs them): a machine without them fails with the reason.

#[macro_use]
mod common;

use std::process::Output;

use common::*;

fn require_program(name: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "this test needs {name} (scripts/setup installs it)");
}

/// Runs `args` under `--learn`, then the same under `--policy` with what
/// was learned; both must pass and print the same. Returns the policy
/// file's text and its path.
fn learn_then_enforce(caller: Caller, dir: &TempDir, options: &[&str], command: &[&str]) -> (String, String) {
    let policy = dir.join("learned.toml").display().to_string();
    let run_with = |mode: &[&str]| -> Output {
        let mut args = vec!["run"];
        args.extend_from_slice(mode);
        args.extend_from_slice(options);
        args.push("--");
        args.extend_from_slice(command);
        run(caller, &args)
    };
    let learned = run_with(&["--learn", &policy]);
    let first = ok(&learned);
    assert!(
        stderr(&learned).contains("xvisor: learned a policy from"),
        "{}",
        stderr(&learned)
    );
    let text = std::fs::read_to_string(&policy).expect("the learned policy");
    assert!(text.contains("\nbase = \"default\"\n"), "{text}");
    assert!(text.starts_with("# Learned by xvisor from one run, "), "{text}");
    let checked = run(caller, &["policy", "check", &policy]);
    ok(&checked);
    let again = run_with(&["--policy", &policy]);
    assert_eq!(
        code(&again),
        0,
        "the learned policy refused the run it was learned from:\n{text}\nstderr: {}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), first, "{text}");
    (text, policy)
}

/// A read of `file` by the shell, under the policy, is refused by Landlock.
fn read_refused(caller: Caller, policy: &str, options: &[&str], file: &str, text: &str) {
    let mut args = vec!["run", "--policy", policy];
    args.extend_from_slice(options);
    let script = format!("read line < {file} && echo \"read: $line\"");
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    let out = run(caller, &args);
    assert_ne!(code(&out), 0, "{file} was read under the learned policy:\n{text}");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{file}: {}\n{text}",
        stderr(&out)
    );
}

/// Every rule `text` lists for `key` (`read = [ … ]`), as written.
fn rules(text: &str, key: &str) -> Vec<String> {
    let start = format!("\n{key} = [");
    let Some(at) = text.find(&start) else {
        return Vec::new();
    };
    text[at + start.len()..]
        .lines()
        .skip(1)
        .take_while(|l| *l != "]")
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next().map(str::to_string))
        .collect()
}

fn covered(text: &str, key: &str, path: &str) -> bool {
    rules(text, key)
        .iter()
        .any(|r| path == r || path.starts_with(&format!("{r}/")))
}

both_callers!(a_shell_pipeline, |caller| {
    require_landlock(1);
    let dir = TempDir::new("learn-sh");
    let (text, policy) = learn_then_enforce(
        caller,
        &dir,
        &[],
        &["sh", "-c", "cat /etc/hostname; ls /usr/share | wc -l"],
    );
    assert!(covered(&text, "read", "/etc/hostname"), "{text}");
    assert!(covered(&text, "allow", "/usr/bin/cat"), "{text}");
    // Nothing written, no port used: both restricted to nothing.
    assert!(text.contains("\nwrite = []\n"), "{text}");
    assert!(!covered(&text, "read", "/etc/passwd"), "{text}");
    read_refused(caller, &policy, &[], "/etc/passwd", &text);
    // A program the run did not use is refused too.
    let out = run(
        caller,
        &["run", "--policy", &policy, "--", "sh", "-c", "head -1 /etc/hostname"],
    );
    assert_ne!(code(&out), 0, "{text}");
});

both_callers!(python, |caller| {
    require_landlock(1);
    require_program("python3");
    let dir = TempDir::new("learn-py");
    let (text, policy) = learn_then_enforce(
        caller,
        &dir,
        &[],
        &[
            "python3",
            "-c",
            "import json, sqlite3; print(json.dumps(sqlite3.sqlite_version_info[:1]))",
        ],
    );
    assert!(
        rules(&text, "allow").iter().any(|p| p.starts_with("/usr/bin/python3")),
        "{text}"
    );
    assert!(!covered(&text, "read", "/etc/passwd"), "{text}");
    read_refused(caller, &policy, &[], "/etc/passwd", &text);
});

both_callers!(git, |caller| {
    require_landlock(1);
    require_program("git");
    let dir = TempDir::new("learn-git");
    let script = "cd /tmp && git init -q repo && cd repo && echo one > f && git add f \
        && git -c user.name=t -c user.email=t@example.org commit -qm first && git log --format=%s";
    let (text, policy) = learn_then_enforce(caller, &dir, &[], &["sh", "-c", script]);
    // The repository was made by the run: its rules are on /tmp, which was
    // there from the start.
    assert!(covered(&text, "write", "/tmp"), "{text}");
    assert!(!rules(&text, "read").iter().any(|r| r.starts_with("/tmp/")), "{text}");
    let untouched = ["/etc/passwd", "/etc/hostname", "/etc/group"]
        .into_iter()
        .find(|f| !covered(&text, "read", f))
        .unwrap_or_else(|| panic!("git read every candidate:\n{text}"));
    read_refused(caller, &policy, &[], untouched, &text);
});

both_callers!(gcc_and_make_in_a_volume, |caller| {
    require_landlock(1);
    require_program("gcc");
    require_program("make");
    let dir = TempDir::new("learn-cc");
    let src = TempDir::new("learn-cc-src");
    std::fs::write(
        src.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("Makefile"),
        "hello: hello.o\n\tgcc -o hello hello.o\nhello.o: hello.c\n\tgcc -c hello.c\n",
    )
    .unwrap();
    for f in ["hello.c", "Makefile"] {
        set_mode(&src.join(f), 0o666);
    }
    let volume = format!("{}:/work:rw", src.str());
    let options = ["-v", volume.as_str(), "-w", "/work"];
    let policy = dir.join("learned.toml").display().to_string();
    let build = ["sh", "-c", "make && ./hello"];
    let mut learn_args = vec!["run", "--learn", policy.as_str()];
    learn_args.extend_from_slice(&options);
    learn_args.push("--");
    learn_args.extend_from_slice(&build);
    let first = ok(&run(caller, &learn_args));
    assert!(first.ends_with("hello\n"), "{first}");
    let text = std::fs::read_to_string(&policy).unwrap();
    // The build's outputs, made by the run, are granted through the
    // volume's directory; the compiler's helpers are executed.
    assert!(covered(&text, "write", "/work"), "{text}");
    assert!(covered(&text, "allow", "/work/hello"), "{text}");
    assert!(rules(&text, "allow").iter().any(|p| p.contains("gcc")), "{text}");
    // From a clean tree, as it was learned.
    for f in ["hello", "hello.o"] {
        std::fs::remove_file(src.join(f)).unwrap();
    }
    let mut enforce_args = vec!["run", "--policy", policy.as_str()];
    enforce_args.extend_from_slice(&options);
    enforce_args.push("--");
    enforce_args.extend_from_slice(&build);
    let again = run(caller, &enforce_args);
    assert_eq!(code(&again), 0, "{text}\n{}", stderr(&again));
    assert_eq!(stdout(&again), first);
    assert!(!covered(&text, "read", "/etc/passwd"), "{text}");
    read_refused(caller, &policy, &options, "/etc/passwd", &text);
});

both_callers!(tcp_ports_on_loopback, |caller| {
    require_landlock(1);
    let dir = TempDir::new("learn-net");
    let script = "import socket\n\
        s = socket.socket(); s.bind(('127.0.0.1', 8765)); s.listen()\n\
        c = socket.create_connection(('127.0.0.1', 8765)); a, _ = s.accept()\n\
        c.send(b'x'); print(a.recv(1).decode())";
    let (text, policy) = learn_then_enforce(caller, &dir, &[], &["python3", "-c", script]);
    if !text.contains("\nconnect = [\n") {
        // No Landlock TCP rules here: shown only, as comments.
        assert!(text.contains("# connect = [\n#     \"tcp:*:8765\""), "{text}");
        return;
    }
    assert_eq!(rules(&text, "connect"), ["tcp:*:8765"], "{text}");
    assert_eq!(rules(&text, "bind"), ["tcp:*:8765"], "{text}");
    let out = run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "--",
            "python3",
            "-c",
            "import socket; socket.socket().bind(('127.0.0.1', 8766))",
        ],
    );
    assert_ne!(code(&out), 0, "{text}");
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
});

both_callers!(udp_destinations_become_rules, |caller| {
    require_landlock(1);
    let dir = TempDir::new("learn-udp");
    let script = "import socket\n\
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', 5353))\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.sendto(b'q', ('127.0.0.1', 5353)); print(r.recv(1).decode())";
    let (text, policy) = learn_then_enforce(caller, &dir, &[], &["python3", "-c", script]);
    if !text.contains("\nconnect = [\n") {
        // No Landlock TCP rules here: shown only, as comments.
        assert!(text.contains("#   send to udp:*:5353 (/usr/bin/python3)"), "{text}");
        return;
    }
    assert_eq!(rules(&text, "connect"), ["udp:*:5353"], "{text}");
    assert!(
        text.contains("# udp: rules make the supervisor decide and perform every send"),
        "{text}"
    );
    // Another destination is refused and named.
    let out = run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "--",
            "python3",
            "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('127.0.0.1', 5354))",
        ],
    );
    assert_ne!(code(&out), 0, "{text}");
    assert!(
        stderr(&out).contains("denied sendto(127.0.0.1:5354)"),
        "{}",
        stderr(&out)
    );
});

#[test]
fn learn_writes_a_policy_and_so_takes_none() {
    let dir = TempDir::new("learn-args");
    let file = dir.join("p.toml").display().to_string();
    let out = run(
        Caller::Root,
        &["run", "--learn", &file, "--policy", &file, "--", "true"],
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--learn and --policy exclude each other"),
        "{}",
        stderr(&out)
    );
    let help = ok(&run(Caller::Root, &["run", "--help"]));
    assert!(help.contains("--learn FILE"), "{help}");
}
