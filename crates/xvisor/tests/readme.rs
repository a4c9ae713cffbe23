//! Every command README.md shows, run as written.
//!
//! The commands are read from the file when the test runs, so an example is
//! tested the day it is written. What counts as an example: every line of a
//! fenced block opened with ```` ```sh ````, a line ending in `\` joined to
//! the next, blank and comment-only lines skipped. Each example is then one
//! of:
//!
//! - **xvisor's**: it starts with `xvisor ` (or `cargo run --release -- `,
//!   run as `xvisor `): run here with bash, in order, as root and again as
//!   uid 65534, from a work directory that holds what the examples name
//!   (`./untrusted`, a `Makefile`, `./rootfs`, `busybox.tar`,
//!   `./alpine-layout`), with the built binary first on `PATH` and a home,
//!   store and state directory of the test's own (`README_SHOW=1` prints
//!   what each example wrote). Lines with `-it` get a terminal
//!   (`script`) whose input is `exit`. The whole run is inside a network
//!   namespace made for it, where a web server listens on 127.0.0.1:8080
//!   for the `--net host` example. Limits (`--memory`, `--cpus`) need root
//!   or a delegated cgroup (README: Requirements), so their lines run as root
//!   only. An example fails when its status is not 0.
//! - **an engine's** (`podman`, `ctr`, `docker` first): they need the
//!   engines and their daemons, which `.ci/engines` installs and starts; it
//!   runs these lines, extracted by the same rules, against its private
//!   daemons.
//! - `scripts/test`: the command that runs this test.
//!
//! Any other line fails the test: a new kind of example needs a way to be
//! run before it is shown.

#[macro_use]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use xvisor_image::fixtures::{tar_of, write_dir, Fixture};
use xvisor_image::tar::Builder;

/// One command of README.md.
#[derive(Debug, Clone)]
struct Example {
    /// Where it starts (1-based).
    line: usize,
    text: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Xvisor,
    Engine,
    TheTestCommand,
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands of every ```` ```sh ```` block.
fn examples(text: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut in_block = false;
    let mut pending: Option<Example> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if !in_block {
            in_block = trimmed == "```sh";
            continue;
        }
        if trimmed.starts_with("```") {
            in_block = false;
            found.extend(pending.take());
            continue;
        }
        let (joined, start) = match pending.take() {
            Some(p) => (format!("{} {}", p.text, trimmed), p.line),
            None => (trimmed.to_string(), n + 1),
        };
        if let Some(head) = joined.strip_suffix('\\') {
            pending = Some(Example {
                line: start,
                text: head.trim_end().to_string(),
            });
            continue;
        }
        if joined.is_empty() || joined.starts_with('#') {
            continue;
        }
        found.push(Example {
            line: start,
            text: joined,
        });
    }
    found
}

fn kind(e: &Example) -> Option<Kind> {
    let first = e.text.split_whitespace().next().unwrap_or("");
    match first {
        "xvisor" => Some(Kind::Xvisor),
        "cargo" if e.text.starts_with("cargo run --release -- ") => Some(Kind::Xvisor),
        "podman" | "ctr" | "docker" => Some(Kind::Engine),
        "scripts/test" => Some(Kind::TheTestCommand),
        _ => None,
    }
}

/// The example as bash runs it here.
fn command_text(e: &Example) -> String {
    match e.text.strip_prefix("cargo run --release -- ") {
        Some(rest) => format!("xvisor {rest}"),
        None => e.text.clone(),
    }
}

fn wants_terminal(e: &Example) -> bool {
    e.text
        .split_whitespace()
        .any(|w| w == "-it" || w == "-ti" || w == "-t" || w == "--tty")
        && !e.text.contains(" stop -t ")
}

/// Lines that need what only root has here (cgroup limits).
fn root_only(e: &Example) -> bool {
    ["--memory", "--cpus"].iter().any(|o| e.text.contains(o))
}

#[test]
fn every_example_is_claimed_by_a_runner() {
    let all = examples(&readme());
    assert!(all.len() >= 30, "README.md shows only {} commands: {all:?}", all.len());
    let unclaimed: Vec<_> = all.iter().filter(|e| kind(e).is_none()).collect();
    assert!(
        unclaimed.is_empty(),
        "README.md shows commands no test runs (see tests/readme.rs for the kinds): {unclaimed:#?}"
    );
    // The engines' lines are run by .ci/engines, from the same file.
    let engines = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/engines")).unwrap();
    assert!(
        engines.contains("README.md") && all.iter().any(|e| kind(e) == Some(Kind::Engine)),
        ".ci/engines must run README.md's engine examples"
    );
}

#[test]
fn extraction_joins_continued_lines_and_skips_comments() {
    let text = "x\n```sh\n# a comment\nxvisor a \\\n    b   # c\n\nxvisor d\n```\nxvisor e\n```\nxvisor f\n```\n";
    let found: Vec<_> = examples(text).into_iter().map(|e| (e.line, e.text)).collect();
    assert_eq!(
        found,
        vec![(4, "xvisor a b   # c".to_string()), (7, "xvisor d".to_string())]
    );
}

/// Processes this test started, killed by pid when it ends.
struct Started(Vec<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A busybox layer for the images the examples import.
fn busybox_image(name: &str) -> Fixture {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is needed: apt-get install busybox-static");
    let mut b = Builder::new(Vec::new());
    for d in ["bin/", "etc/", "root/", "tmp/"] {
        b.dir(d).unwrap();
    }
    b.file("bin/busybox", 0o755, &std::fs::read(busybox).unwrap()).unwrap();
    for applet in ["sh", "ls", "id", "echo", "cat"] {
        b.symlink(&format!("bin/{applet}"), "busybox").unwrap();
    }
    b.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    b.file("etc/group", 0o644, b"root:x:0:\n").unwrap();
    let mut f = Fixture::new(
        vec![b.finish().unwrap()],
        serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["echo", "hello from the image"]}),
    );
    f.ref_name = name.into();
    f
}

/// The work directory the examples run in: what they name.
fn work_directory(dir: &Path, caller: Caller) {
    std::fs::write(dir.join("untrusted"), "#!/bin/sh\necho untrusted ran\n").unwrap();
    set_mode(&dir.join("untrusted"), 0o755);
    std::fs::write(dir.join("Makefile"), "all:\n\t@echo made\n").unwrap();
    std::fs::write(
        dir.join("busybox.tar"),
        tar_of(&busybox_image("busybox:latest").docker_files()),
    )
    .unwrap();
    write_dir(&busybox_image("alpine:3.20").oci_files(), &dir.join("alpine-layout")).unwrap();
    let rootfs = busybox_rootfs("readme-rootfs", caller);
    std::fs::rename(rootfs.path(), dir.join("rootfs")).unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
    if caller == Caller::Unprivileged {
        chown_tree(dir, NOBODY);
    }
}

/// A network namespace of the test's own, with loopback up and a web
/// server on 127.0.0.1:8080; returns the holder's pid.
fn network(started: &mut Started, www: &Path) -> u32 {
    let holder = Command::new("unshare")
        .args(["--net", "--", "sleep", "3600"])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) makes the test's network namespace");
    let pid = holder.id();
    started.0.push(holder);
    // Until unshare has made it, the holder is still in this namespace.
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let made = eventually(Duration::from_secs(10), || {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own)
    });
    assert!(made, "unshare --net did not make a network namespace");
    let ns = format!("--net=/proc/{pid}/ns/net");
    let up = eventually(Duration::from_secs(10), || {
        Command::new("nsenter")
            .args([&ns, "--", "ip", "link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(up, "cannot bring up loopback in the test's network namespace");
    std::fs::write(www.join("index.html"), "hi\n").unwrap();
    let server = Command::new("nsenter")
        .args([
            &ns,
            "--",
            "/usr/bin/python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(www)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 serves the --net host example");
    started.0.push(server);
    let listening = eventually(Duration::from_secs(20), || {
        Command::new("nsenter")
            .args([&ns, "--", "curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:8080/"])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        listening,
        "the test's web server did not start (curl and python3 are needed)"
    );
    pid
}

fn run_examples(caller: Caller) {
    require_root();
    let all = examples(&readme());
    let scratch = TempDir::new(match caller {
        Caller::Root => "readme-root",
        Caller::Unprivileged => "readme-rootless",
    });
    let work = scratch.join("work");
    let www = scratch.join("www");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&www).unwrap();
    work_directory(&work, caller);
    let mut started = Started(Vec::new());
    let holder = network(&mut started, &www);
    let bin_dir = binary().parent().unwrap().display().to_string();
    // A home of the test's own, where the completion example writes.
    let home = scratch.join("home");
    std::fs::create_dir_all(home.join(".local/share/bash-completion/completions")).unwrap();
    if caller == Caller::Unprivileged {
        chown_tree(&home, NOBODY);
    }
    let home = home.display().to_string();
    let env = [
        (
            "PATH",
            format!("{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ),
        ("HOME", home),
        ("TERM", "xterm".to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("XVISOR_STORE", format!("{}/store", scratch.str())),
        ("XVISOR_STATE_DIR", format!("{}/state", scratch.str())),
    ];
    let mut names = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for e in all.iter().filter(|e| kind(e) == Some(Kind::Xvisor)) {
        if caller == Caller::Unprivileged && root_only(e) {
            continue;
        }
        let words: Vec<&str> = e.text.split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == "--name") {
            names.extend(words.get(at + 1).map(|n| n.to_string()));
        }
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{holder}/ns/net")).arg("--");
        if caller == Caller::Unprivileged {
            c.args([
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ]);
        }
        c.args(["timeout", "-k", "5", "120"]);
        let terminal = wants_terminal(e);
        if terminal {
            c.args(["script", "-qec", "bash -o pipefail -c \"$README_EXAMPLE\"", "/dev/null"]);
        } else {
            c.args(["bash", "-o", "pipefail", "-c", "eval \"$README_EXAMPLE\""]);
        }
        c.env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("README_EXAMPLE", command_text(e))
            .current_dir(&work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn the example");
        let mut input = child.stdin.take().unwrap();
        if terminal {
            let _ = input.write_all(b"exit\n");
            // `script` ends when the program does; its input stays open
            // until then, as a person's terminal would.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(60));
                drop(input);
            });
        } else {
            drop(input);
        }
        let out = child.wait_with_output().unwrap();
        ran += 1;
        if std::env::var_os("README_SHOW").is_some() {
            eprintln!(
                "README.md:{}: {}\n{}{}",
                e.line,
                e.text,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !out.status.success() {
            let tail = |b: &[u8]| {
                let s = String::from_utf8_lossy(b);
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(5)..].join("\n")
            };
            failures.push(format!(
                "README.md:{}: {}\n  status {:?}\n  stdout: {}\n  stderr: {}",
                e.line,
                e.text,
                out.status.code(),
                tail(&out.stdout),
                tail(&out.stderr)
            ));
        }
    }
    // Detached instances a failed example may have left.
    for name in names {
        let _ = xvisor(caller, &["rm", "-f", &name])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    assert!(ran >= 25, "only {ran} examples ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} README.md examples failed as written:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn readme_examples_run_as_written_as_root() {
    run_examples(Caller::Root);
}

#[test]
fn readme_examples_run_as_written_rootless() {
    run_examples(Caller::Unprivileged);
}
