//! Patterns in `[fs].read` and `[fs].write`, black box: the files they
//! match are opened (through the supervisor), nothing else is, root and
//! rootless; the answer is the same whether Landlock (a plain path) or the
//! supervisor (a pattern) holds a rule; the guest's own permissions hold
//! on the files a pattern grants; and a path flipped under the opener
//! never reaches a file no pattern matches.

#[macro_use]
mod common;

use common::*;

/// Tries each open and prints `WHAT ok[: first line]` or `WHAT ERRNO`.
const OPENS: &str = r#"
import errno, os, sys
def attempt(what, path, flags, dir_fd=None):
    try:
        fd = os.open(path, flags, 0o644, dir_fd=dir_fd)
    except OSError as e:
        print(what, errno.errorcode[e.errno]); return
    try:
        text = os.read(fd, 100).decode().strip() if flags & 3 != os.O_WRONLY else "written"
    except OSError as e:
        text = errno.errorcode[e.errno]
    print(what, "ok:", text); os.close(fd)
attempt("read a.csv", "/data/a.csv", os.O_RDONLY)
attempt("read b.txt", "/data/b.txt", os.O_RDONLY)
attempt("read sub/c.csv", "/data/sub/c.csv", os.O_RDONLY)
attempt("read link.csv -> b.txt", "/data/link.csv", os.O_RDONLY)
attempt("read gone.csv", "/data/gone.csv", os.O_RDONLY)
attempt("read a.csv as a directory", "/data/a.csv", os.O_RDONLY | os.O_DIRECTORY)
attempt("read-write a.csv", "/data/a.csv", os.O_RDWR)
attempt("append a.csv", "/data/a.csv", os.O_WRONLY | os.O_APPEND)
attempt("truncate a.csv", "/data/a.csv", os.O_WRONLY | os.O_TRUNC)
attempt("create new.csv", "/data/new.csv", os.O_WRONLY | os.O_CREAT)
attempt("read /data/../data/a.csv", "/data/../data/a.csv", os.O_RDONLY)
os.chdir("/data")
attempt("read a.csv from /data", "a.csv", os.O_RDONLY)
attempt("read b.txt from /data", "b.txt", os.O_RDONLY)
d = os.open("/", os.O_PATH)
attempt("read data/a.csv from a descriptor of /", "data/a.csv", os.O_RDONLY, dir_fd=d)
attempt("read data/b.txt from a descriptor of /", "data/b.txt", os.O_RDONLY, dir_fd=d)
"#;

fn data(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::write(dir.join("a.csv"), "public\n").unwrap();
    std::fs::write(dir.join("b.txt"), "SECRET\n").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/c.csv"), "deeper\n").unwrap();
    std::os::unix::fs::symlink("b.txt", dir.join("link.csv")).unwrap();
    std::os::unix::fs::symlink("none", dir.join("gone.csv")).unwrap();
    chown_tree(dir.path(), NOBODY);
    dir
}

fn opens(caller: Caller, policy: Option<&str>, data: &TempDir) -> String {
    let volume = format!("{}:/data:rw", data.str());
    let mut args = vec!["run"];
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    args.extend(["-v", &volume, "--", "python3", "-c", OPENS]);
    ok(&run(caller, &args))
}

both_callers!(a_read_pattern_opens_what_it_matches_and_nothing_else, |caller| {
    let data = data("pat-read");
    let (_dir, policy) = policy_file(
        "pat-read-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/*.csv\"]\nwrite = []\n",
    );
    let text = opens(caller, Some(&policy), &data);
    assert_eq!(
        text,
        "read a.csv ok: public\n\
         read b.txt EACCES\n\
         read sub/c.csv EACCES\n\
         read link.csv -> b.txt EACCES\n\
         read gone.csv ENOENT\n\
         read a.csv as a directory ENOTDIR\n\
         read-write a.csv EACCES\n\
         append a.csv EACCES\n\
         truncate a.csv EACCES\n\
         create new.csv EACCES\n\
         read /data/../data/a.csv ok: public\n\
         read a.csv from /data ok: public\n\
         read b.txt from /data EACCES\n\
         read data/a.csv from a descriptor of / ok: public\n\
         read data/b.txt from a descriptor of / EACCES\n",
        "{text}"
    );
    // A file made after the start matches too, and the directory a match
    // can be in may be listed (names only).
    let script = "import os\nprint(sorted(os.listdir('/data')))\n";
    let listed = ok(&run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "-v",
            &format!("{}:/data:rw", data.str()),
            "--",
            "python3",
            "-c",
            script,
        ],
    ));
    assert_eq!(
        listed, "['a.csv', 'b.txt', 'gone.csv', 'link.csv', 'sub']\n",
        "{listed}"
    );
    std::fs::write(data.join("later.csv"), "made later\n").unwrap();
    chown_tree(data.path(), NOBODY);
    let later = ok(&run(
        caller,
        &[
            "run",
            "--policy",
            &policy,
            "-v",
            &format!("{}:/data", data.str()),
            "--",
            "cat",
            "/data/later.csv",
        ],
    ));
    assert_eq!(later, "made later\n");
    // Without the file every open goes through: the rules did it.
    let text = opens(caller, None, &data);
    assert!(text.contains("read b.txt ok: SECRET"), "{text}");
});

both_callers!(a_write_pattern_opens_existing_files_for_writing, |caller| {
    let data = data("pat-write");
    std::fs::write(data.join("out-1.log"), "one\n").unwrap();
    // The files are the guest root's: the caller's (rootless), or host
    // root's, which the instance's volumes show as its root's.
    chown_tree(data.path(), if caller == Caller::Root { 0 } else { NOBODY });
    let (_dir, policy) = policy_file(
        "pat-write-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/*.log\"]\nwrite = [\"/data/out-*.log\"]\n",
    );
    let script = r#"
import errno, os
for what, path, flags in (("append out-1.log", "/data/out-1.log", os.O_WRONLY | os.O_APPEND),
                          ("read-write out-1.log", "/data/out-1.log", os.O_RDWR),
                          ("create out-2.log", "/data/out-2.log", os.O_WRONLY | os.O_CREAT),
                          ("append a.csv", "/data/a.csv", os.O_WRONLY | os.O_APPEND)):
    try:
        fd = os.open(path, flags, 0o644); os.write(fd, b"two\n"); os.close(fd); print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
print(open("/data/out-1.log").read().split())
"#;
    let volume = format!("{}:/data:rw", data.str());
    let text = ok(&run(
        caller,
        &["run", "--policy", &policy, "-v", &volume, "--", "python3", "-c", script],
    ));
    assert_eq!(
        text,
        "append out-1.log ok\n\
         read-write out-1.log ok\n\
         create out-2.log EACCES\n\
         append a.csv EACCES\n\
         ['two', 'two']\n",
        "{text}"
    );
    assert!(!data.join("out-2.log").exists());
});

#[test]
fn a_rule_answers_the_same_from_landlock_and_from_the_supervisor() {
    // The same file allowed by a plain path (Landlock) and by a pattern
    // that matches only it (the supervisor): the same attempts, the same
    // answers. (Listing /data differs by design: a pattern lets the
    // directory its matches can be in be listed.)
    let data = data("pat-same");
    let plain = policy_file(
        "pat-same-plain",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/a.csv\"]\nwrite = []\n",
    );
    let pattern = policy_file(
        "pat-same-pattern",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/a.cs[v]\"]\nwrite = []\n",
    );
    for caller in [Caller::Root, Caller::Unprivileged] {
        let by_landlock = opens(caller, Some(&plain.1), &data);
        let by_supervisor = opens(caller, Some(&pattern.1), &data);
        assert_eq!(by_landlock, by_supervisor, "{caller:?}");
        assert!(by_supervisor.contains("read a.csv ok: public"), "{by_supervisor}");
    }
}

#[test]
fn a_pattern_does_not_open_what_the_guest_may_not_read() {
    // The supervisor opens with the guest's ids and groups: a 0600 file of
    // another user, and a file in a directory the guest may not search,
    // stay refused, exactly as the kernel refuses them without the rules.
    // The guest runs as uid 1000 inside (root only: a rootless instance
    // maps one uid).
    let data = TempDir::new("pat-perm");
    for (name, mode) in [("private.csv", 0o600), ("public.csv", 0o644)] {
        std::fs::write(data.join(name), "text\n").unwrap();
        set_mode(&data.join(name), mode);
    }
    std::fs::create_dir(data.join("closed")).unwrap();
    std::fs::write(data.join("closed/inner.csv"), "text\n").unwrap();
    set_mode(&data.join("closed"), 0o700);
    let script = r#"
import errno, os
if os.fork() == 0:
    os.setgid(1000); os.setuid(1000)
    for name in ("private.csv", "public.csv", "closed/inner.csv"):
        try:
            open(f"/data/{name}").read(); print(name, "ok", flush=True)
        except OSError as e:
            print(name, errno.errorcode[e.errno], flush=True)
    os._exit(0)
os.wait()
"#;
    let (_dir, policy) = policy_file(
        "pat-perm-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/**/*.csv\"]\n",
    );
    let volume = format!("{}:/data", data.str());
    let with = ok(&run(
        Caller::Root,
        &["run", "--policy", &policy, "-v", &volume, "--", "python3", "-c", script],
    ));
    let without = ok(&run(
        Caller::Root,
        &["run", "-v", &volume, "--", "python3", "-c", script],
    ));
    assert_eq!(with, without, "the kernel's own answer");
    assert_eq!(with, "private.csv EACCES\npublic.csv ok\nclosed/inner.csv EACCES\n");
}

#[test]
fn a_path_flipped_under_the_opener_never_reaches_a_file_no_pattern_matches() {
    // 100,000 opens through a buffer another thread flips between a
    // matching and a non-matching file, with a busy loop beside: the
    // supervisor decides on its copy and opens that file itself; a copy
    // that matches nothing goes to the kernel, where Landlock refuses
    // whatever the buffer says by then.
    let data = TempDir::new("pat-flip");
    std::fs::write(data.join("public.csv"), "public").unwrap();
    std::fs::write(data.join("secret.txt"), "SECRET").unwrap();
    let program = c_program("flip_open");
    let (_dir, policy) = policy_file(
        "pat-flip-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/t\", \"/data/*.csv\"]\n",
    );
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
        "/data/public.csv",
        "/data/secret.txt",
        "100000",
        "SECRET",
    ];
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &flip].concat());
    let _ = load.kill();
    let _ = load.wait();
    let text = ok(&out);
    let opened: u64 = text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(opened > 1_000, "{text}");
    assert!(text.ends_with("leaked 0\n"), "{text}");
    // Without the policy the file is read: the test can fail.
    let text = ok(&run(Caller::Root, &[&["run"][..], &flip].concat()));
    assert!(!text.ends_with("leaked 0\n"), "{text}");
}

#[test]
fn without_patterns_no_open_is_trapped() {
    // Plain paths are Landlock's: the filter lets every open through.
    let (_dir, plain) = policy_file("pat-none", "[fs]\nread = [\"/usr\", \"/etc\"]\n");
    let (_dir2, pattern) = policy_file("pat-some", "[fs]\nread = [\"/usr\", \"/etc\", \"/tmp/*.csv\"]\n");
    let trapped = |policy: &str| -> u64 {
        let out = run(
            Caller::Root,
            &["run", "--stats", "--policy", policy, "--", "cat", "/etc/hostname"],
        );
        let err = stderr(&out);
        err.lines()
            .filter(|l| l.contains("calls trapped to the supervisor"))
            .find_map(|l| l.strip_prefix("xvisor: ")?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no count of trapped calls in: {err}"))
    };
    assert_eq!(trapped(&plain), 0);
    assert!(trapped(&pattern) >= 3, "cat's own opens");
}

#[test]
fn a_symlink_flipped_under_the_opener_never_reaches_a_file_no_pattern_matches() {
    // The name matches (`x.csv`), the file it leads to is decided on: a
    // link another thread points at a matching file, then at one no pattern
    // matches, 100,000 opens through it. The supervisor finds the file,
    // decides on the file's own path, finds it again as the guest and opens
    // only the same file; anything else is the kernel's, which Landlock
    // refuses.
    let data = TempDir::new("pat-link");
    std::fs::write(data.join("public.csv"), "public").unwrap();
    std::fs::write(data.join("secret.txt"), "SECRET").unwrap();
    let program = c_program("flip_link");
    let (_dir, policy) = policy_file(
        "pat-link-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/t\", \"/data/*.csv\"]\nwrite = [\"/data\"]\n",
    );
    let volumes = [format!("{}:/data:rw", data.str()), format!("{}:/t", program.str())];
    let flip = [
        "-v",
        &volumes[0],
        "-v",
        &volumes[1],
        "--",
        "/t/flip_link",
        "/data/x.csv",
        "/data/public.csv",
        "/data/secret.txt",
        "100000",
        "SECRET",
    ];
    let out = run(Caller::Root, &[&["run", "--policy", &policy][..], &flip].concat());
    let text = ok(&out);
    let opened: u64 = text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(opened > 1_000, "{text}");
    assert!(text.ends_with("leaked 0\n"), "{text}");
    let text = ok(&run(
        Caller::Root,
        &[&["run"][..], &flip[..flip.len() - 2], &["20000", "SECRET"]].concat(),
    ));
    assert!(!text.ends_with("leaked 0\n"), "{text}");
}

both_callers!(a_performed_open_is_traced_with_its_path_and_descriptor, |caller| {
    let data = data("pat-trace");
    let (_dir, policy) = policy_file(
        "pat-trace-policy",
        "[fs]\nread = [\"/usr\", \"/etc\", \"/data/*.csv\"]\n",
    );
    let traces = TempDir::new("pat-trace-out");
    if caller == Caller::Unprivileged {
        chown_tree(traces.path(), NOBODY);
    }
    let trace = traces.join("t.jsonl");
    let trace = trace.to_str().unwrap();
    let volume = format!("{}:/data", data.str());
    let out = run(
        caller,
        &[
            "run",
            "--trace",
            trace,
            "--policy",
            &policy,
            "-v",
            &volume,
            "--",
            "cat",
            "/data/a.csv",
        ],
    );
    assert_eq!(ok(&out), "public\n");
    let text = std::fs::read_to_string(trace).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"syscall\": \"openat\"") && l.contains("\\\"/data/a.csv\\\""))
        .unwrap_or_else(|| panic!("no open of /data/a.csv in {text}"));
    assert!(line.contains("\"decision\": \"performed, returned 3\""), "{line}");
});
