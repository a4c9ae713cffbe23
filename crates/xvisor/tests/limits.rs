//! xvisor's default limits: where the host lets xvisor make a cgroup (root,
//! or a delegated one), an instance gets at most half the memory xvisor may
//! use and 4096 processes and threads; `--memory` and `--pids` replace
//! them, `--no-limits` drops them; without such a cgroup the run goes on as
//! before, without a word (and RLIMIT_NPROC bounds each user of an
//! instance started by root). Nothing is left behind.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const DEFAULT_PIDS: &str = "4096";

/// This process's cgroup directory on the hierarchy with `controller`
/// (v1), or on the v2 one when `controller` is `None` or v2 offers it.
fn own_cgroup(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let v1 = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| PathBuf::from(format!("/sys/fs/cgroup/{ctrls}{path}")))
    });
    v1.or_else(|| {
        let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let top = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .find(|t| Path::new(t).join("cgroup.controllers").exists())?;
        let dir = PathBuf::from(format!("{top}{path}"));
        std::fs::read_to_string(dir.join("cgroup.controllers"))
            .ok()?
            .split_whitespace()
            .any(|c| c == controller)
            .then_some(dir)
    })
}

/// The memory limit of cgroup `dir` (v1 or v2), `None` when unlimited.
fn memory_limit(dir: &Path) -> Option<u64> {
    ["memory.limit_in_bytes", "memory.max"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What xvisor's default memory limit is for a run from this process's
/// cgroup: half of the host's RAM or of this cgroup's limit, whichever is
/// lower, rounded down to a MiB.
fn expected_default_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let ram = kib * 1024;
    let own = own_cgroup("memory").and_then(|d| memory_limit(&d));
    (own.map_or(ram, |o| o.min(ram)) / 2) & !((1 << 20) - 1)
}

/// Fails with the reason when this host gives root no memory and pids
/// cgroups (then the defaults cannot be seen here).
fn require_cgroups() {
    for c in ["memory", "pids"] {
        assert!(
            own_cgroup(c).is_some(),
            "this host has no {c} cgroup controller for this process: the default limits need one"
        );
    }
}

/// `xvisor run --name NAME EXTRA -- sleep 30`, started; the cgroup
/// directories of the instance once its program runs.
fn start_sleeping(name: &str, extra: &[&str]) -> (Child, Vec<PathBuf>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // A length of sleep no other test uses: the guest found by it.
    let seconds = format!(
        "{}{}",
        100_000 + std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sleep", &seconds]);
    let child = xvisor(Caller::Root, &args).stdin(Stdio::null()).spawn().unwrap();
    // The guest's own command line, not xvisor's (which holds the same
    // words after "--"): the instance is running, its cgroups made.
    let marker = format!("sleep {seconds}");
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&marker).iter().any(|c| c
            .split_once(": ")
            .is_some_and(|(_, command)| command.starts_with(&marker)))),
        "{name}: the instance never ran"
    );
    (child, cgroup_dirs_named(name))
}

/// Ends the run and checks that its cgroups went with it.
fn stop(mut child: Child, name: &str) {
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        eventually(Duration::from_secs(5), || cgroup_dirs_named(name).is_empty()),
        "cgroups left behind: {:?}",
        cgroup_dirs_named(name)
    );
}

/// (memory limit, pids.max) of an instance's cgroup directories.
fn limits_of(dirs: &[PathBuf]) -> (Option<u64>, Option<String>) {
    let memory = dirs.iter().find_map(|d| memory_limit(d));
    let pids = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("pids.max")).ok())
        .map(|p| p.trim().to_string());
    (memory, pids)
}

#[test]
fn an_instance_gets_the_default_memory_and_pids_limits() {
    require_cgroups();
    let name = format!("deflim{}", std::process::id());
    let (child, dirs) = start_sleeping(&name, &[]);
    let found = limits_of(&dirs);
    stop(child, &name);
    assert_eq!(
        found,
        (Some(expected_default_memory()), Some(DEFAULT_PIDS.into())),
        "{dirs:?}"
    );
    // Made below the cgroup xvisor runs in, on each hierarchy.
    for d in &dirs {
        let parent = d.parent().unwrap();
        assert!(
            own_cgroup("memory").as_deref() == Some(parent) || own_cgroup("pids").as_deref() == Some(parent),
            "{d:?} is not below xvisor's own cgroup"
        );
    }
}

#[test]
fn inside_the_default_limits_hold_and_show_no_host_cgroup() {
    require_cgroups();
    // The guest is at the root of its cgroup namespace, on its own cgroup;
    // a default limit adds no view of /sys/fs/cgroup; RLIMIT_NPROC is left
    // as it was (the cgroup bounds the processes).
    let script = "cut -d: -f3 /proc/self/cgroup | sort -u; ls -A /sys/fs/cgroup | wc -l; \
                  python3 -c 'import resource; print(*resource.getrlimit(resource.RLIMIT_NPROC))'";
    let out = ok(&run(Caller::Root, &["run", "--", "sh", "-c", script]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["/", "0"], "{out}");
    assert_ne!(lines[2], "4096 4096", "{out}");
}

#[test]
fn memory_and_pids_options_replace_the_defaults_and_no_limits_drops_them() {
    require_cgroups();
    let name = format!("optlim{}", std::process::id());
    let (child, dirs) = start_sleeping(&name, &["--pids", "100"]);
    let found = limits_of(&dirs);
    stop(child, &name);
    assert_eq!(found, (Some(expected_default_memory()), Some("100".into())));

    let (child, dirs) = start_sleeping(&name, &["--memory", "256M"]);
    let found = limits_of(&dirs);
    stop(child, &name);
    assert_eq!(found, (Some(256 << 20), Some(DEFAULT_PIDS.into())));

    let (child, dirs) = start_sleeping(&name, &["--no-limits"]);
    stop(child, &name);
    assert!(dirs.is_empty(), "--no-limits made cgroups: {dirs:?}");
}

#[test]
fn rootless_without_a_delegated_cgroup_runs_without_a_word() {
    let own = own_cgroup("memory").expect("a memory cgroup on this host");
    let o = run(Caller::Unprivileged, &["run", "--", "echo", "ran"]);
    assert_eq!(ok(&o), "ran\n");
    assert_eq!(stderr(&o), "", "a default limit that cannot be had is no error");
    // Not delegated to uid 65534 here (else the defaults would apply).
    let probe = Command::new("setpriv")
        .args(AS_NOBODY)
        .args(["--", "mkdir"])
        .arg(own.join(format!("xvt-probe-{}", std::process::id())))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(own.join(format!("xvt-probe-{}", std::process::id())));
    assert!(
        !probe.status.success(),
        "uid 65534 may make cgroups below {own:?} on this host: this test needs one where it may not"
    );
}

/// Runs `sh -c SCRIPT` as root in a mount namespace of its own whose
/// /sys/fs/cgroup is an empty tmpfs: a host without cgroups for xvisor.
fn without_cgroups(script: &str) -> std::process::Output {
    let bin = binary();
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none /sys/fs/cgroup && XV={} && {script}",
            bin.display()
        ))
        .stdin(Stdio::null())
        .output()
        .expect("unshare")
}

#[test]
fn without_cgroups_each_user_of_a_root_instance_has_rlimit_nproc() {
    let nproc = "python3 -c 'import resource; print(*resource.getrlimit(resource.RLIMIT_NPROC))'";
    let o = without_cgroups(&format!("\"$XV\" run -- {nproc} && \"$XV\" run --no-limits -- {nproc}"));
    let out = ok(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "4096 4096", "the fallback bound");
    assert_ne!(lines[1], "4096 4096", "--no-limits drops it");
    assert_eq!(stderr(&o), "");
}

/// A Python fork loop: children sleep; prints how many forks succeeded and
/// the errno of the one that failed.
const FORK_BOMB: &str = "import os, time\n\
                         n = 0\n\
                         try:\n\
                         \x20   while True:\n\
                         \x20       if os.fork() == 0:\n\
                         \x20           time.sleep(30)\n\
                         \x20           os._exit(0)\n\
                         \x20       n += 1\n\
                         except OSError as e:\n\
                         \x20   print(n, e.errno)\n";

#[test]
fn a_fork_bomb_ends_at_the_default_bound_with_and_without_cgroups() {
    require_cgroups();
    // The cgroup's pids.max counts every task of the instance: init and
    // the bomb's parent are two of the 4096.
    let out = run(Caller::Root, &["run", "--", "python3", "-c", FORK_BOMB]);
    assert_eq!(ok(&out).trim(), "4094 11");
    // RLIMIT_NPROC counts by user: the same.
    let o = without_cgroups(&format!("\"$XV\" run -- python3 -c '{FORK_BOMB}'"));
    assert_eq!(ok(&o).trim(), "4094 11");
}

#[test]
fn a_memory_hog_is_stopped_by_the_default_limit() {
    require_cgroups();
    // xvisor runs in a memory cgroup of 512 MiB made for the test below
    // its own: its default is then 256 MiB, which a 1 GiB allocation
    // passes (the host's half would take this host's memory to show).
    let own = own_cgroup("memory").unwrap();
    let box_dir = own.join(format!("xvt-hog-{}", std::process::id()));
    std::fs::create_dir(&box_dir).expect("a memory cgroup below this test's own for xvisor to run in");
    let limit = if box_dir.join("memory.max").exists() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    std::fs::write(box_dir.join(limit), (512u64 << 20).to_string()).expect("a limit on the test's memory cgroup");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} run -- python3 -c 'b = bytearray(1 << 30); print(\"survived\")'",
            box_dir.display(),
            binary().display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The shell has exited: the box is empty once xvisor's cgroup is gone.
    let removed = eventually(Duration::from_secs(5), || std::fs::remove_dir(&box_dir).is_ok());
    assert_eq!(code(&o), 137, "stdout={} stderr={}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("default memory limit"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("survived"));
    assert!(removed, "{box_dir:?} could not be removed: something was left in it");
}

#[test]
fn a_sigkilled_run_leaves_no_default_cgroup() {
    require_cgroups();
    for i in 0..6u64 {
        let name = format!("defkill{}x{i}", std::process::id());
        let mut child = xvisor(Caller::Root, &["run", "--name", &name, "--", "sleep", "5"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(i * i * 400));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(5), || cgroup_dirs_named(&name).is_empty()),
            "cgroup xvisor-{name} left after SIGKILL at ~{} µs",
            i * i * 400
        );
    }
}
