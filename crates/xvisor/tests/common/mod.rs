//! Helpers for black-box tests of the real `xvisor` binary.
//!
//! Every test that needs root or a kernel feature checks for it and fails
//! with the reason: none passes silently on a machine that cannot run it.

#![allow(dead_code)]

/// Runs a test body once as root and once as the unprivileged caller:
/// `both_callers!(name, |caller| { … })` makes `name::as_root` and
/// `name::rootless`.
#[allow(unused_macros)]
macro_rules! both_callers {
    ($name:ident, |$caller:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($caller: Caller) $body
            #[test]
            fn as_root() {
                body(Caller::Root)
            }
            #[test]
            fn rootless() {
                body(Caller::Unprivileged)
            }
        }
    };
}

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Who invokes xvisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Root,
    /// uid/gid 65534 with no groups, via `setpriv`.
    Unprivileged,
}

pub const NOBODY: u32 = 65534;

/// `setpriv`'s arguments (before `--`) that make uid and gid 65534 with no
/// groups: the unprivileged caller.
pub const AS_NOBODY: [&str; 5] = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "these tests must run as root (they also drop to uid 65534 for the rootless checks)"
    );
}

/// The binary under test, copied once to a directory any user may read, so
/// the rootless runs can execute it whatever the checkout's permissions.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Copies left by earlier test processes that have ended.
        for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("xvt-bin-") {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("xvt-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dst = dir.join("xvisor");
        std::fs::copy(env!("CARGO_BIN_EXE_xvisor"), &dst).unwrap();
        set_mode(&dir, 0o755);
        set_mode(&dst, 0o755);
        dst
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A command that runs `xvisor ARGS` as `caller`.
pub fn xvisor(caller: Caller, args: &[&str]) -> Command {
    require_root();
    let mut cmd = match caller {
        Caller::Root => Command::new(binary()),
        Caller::Unprivileged => {
            let mut c = Command::new("setpriv");
            c.args(AS_NOBODY).arg("--");
            c.arg(binary());
            c
        }
    };
    cmd.args(args);
    cmd.current_dir("/");
    cmd
}

/// Runs to completion with empty stdin and returns the output.
pub fn run(caller: Caller, args: &[&str]) -> Output {
    xvisor(caller, args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn xvisor")
}

/// Runs with `input` on stdin.
pub fn run_with_input(caller: Caller, args: &[&str], input: &[u8]) -> Output {
    let mut child = xvisor(caller, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xvisor");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert_eq!(
        code(o),
        0,
        "xvisor failed: stdout={:?} stderr={:?}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A directory for one test, outside the instance's view, readable (and
/// writable) by the unprivileged caller too; removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Under /var/tmp: a host data directory the default instance must not show.
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = PathBuf::from(format!("/var/tmp/xvt-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        set_mode(&p, 0o777);
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal root directory: busybox (static) and its applets, owned by the
/// caller (a rootless user's root directory is their own).
pub fn busybox_rootfs(tag: &str, caller: Caller) -> TempDir {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is needed for root-directory tests: apt-get install busybox-static");
    let dir = TempDir::new(tag);
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    set_mode(&dir.join("bin/busybox"), 0o755);
    for applet in ["sh", "cat", "echo", "ls", "touch", "rm", "mkdir", "id", "sleep", "test"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    if caller == Caller::Unprivileged {
        chown_tree(dir.path(), NOBODY);
    }
    dir
}

pub fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), id);
        }
    }
}

/// Builds `tests/programs/NAME.c` (with `-pthread`) into a fresh
/// directory an instance can mount, as the executable `NAME`.
pub fn c_program(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let src = format!("{}/tests/programs/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("gcc is needed to build {src}: {e}"));
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    set_mode(dir.path(), 0o755);
    dir
}

/// Waits until `f` holds, up to `limit`.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live (non-zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if cmdline.contains(marker) && !zombie && pid != std::process::id().to_string() {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Every cgroup directory named `xvisor-<name>` on the host.
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let wanted = format!("xvisor-{name}");
    cgroup_dirs_where(|dir| dir.file_name().and_then(|n| n.to_str()) == Some(wanted.as_str()))
}

/// Every directory under /sys/fs/cgroup (all hierarchies) that `wanted`
/// picks.
pub fn cgroup_dirs_where(wanted: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let path = e.path();
                if wanted(&path) {
                    found.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    found
}

/// What a guest must not be able to change on a host node it is shown:
/// owner, mode and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMetadata {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
}

impl NodeMetadata {
    /// Held by a test for as long as its guests may touch host nodes, so
    /// one test's snapshot never sees another's guest at work.
    pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn of(path: &str) -> Self {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
            atime: (m.atime(), m.atime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    /// Puts `path` back as it was: a host node a guest changed is changed
    /// for every process of the host, so a failing test must not leave it so.
    pub fn restore(&self, path: &str) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid));
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.mode & 0o7777));
        // By path, without opening: opening some nodes has side effects.
        for (flag, (secs, nanos)) in [("-a", self.atime), ("-m", self.mtime)] {
            let _ = Command::new("touch")
                .args(["-h", flag, "-d", &format!("@{secs}.{nanos:09}"), path])
                .status();
        }
    }
}

/// Fails with the reason where the kernel cannot hold Landlock rules of
/// `abi` (1: paths; 4: TCP ports, Linux 6.7).
pub fn require_landlock(abi: u32) {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    let probe = std::process::Command::new("python3")
        .args(["-c", "import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))"])
        .output()
        .expect("python3 is needed to probe Landlock");
    let found: i64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap_or(-1);
    assert!(
        found >= i64::from(abi),
        "this test needs Landlock ABI {abi} (1: any Landlock; 4: TCP ports, Linux 6.7); this kernel has {}",
        if found < 0 {
            "no Landlock".to_string()
        } else {
            format!("ABI {found}")
        }
    );
}

/// A policy file readable by either caller.
pub fn policy_file(tag: &str, text: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    set_mode(&path, 0o644);
    let path = path.display().to_string();
    (dir, path)
}
