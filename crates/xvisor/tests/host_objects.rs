//! Host objects handed in are used, not owned (issue 20): a rootless
//! guest, whose root is the caller, cannot change the mode, owner, times
//! or extended attributes of a file or terminal it is handed — by
//! descriptor, by path, or racing another thread's `dup2` — while it
//! changes its own files as natively; and no guest, root's or rootless,
//! makes a host terminal its controlling terminal, while its own ptys
//! (`script`, `tmux`, sshd-like programs) still become one.

#[macro_use]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use common::*;

/// Every way to change a handed-in file's metadata the issue names, each
/// printed as `WHAT allowed` or `WHAT refused ERRNO`; fd 1 is the file.
const ATTACKS: &str = r#"
import errno, fcntl, os, struct
tries = [
    ("fchmod setuid", lambda: os.fchmod(1, 0o4755)),
    ("fchmod 666", lambda: os.fchmod(1, 0o666)),
    ("fchown", lambda: os.fchown(1, -1, 0)),
    ("fsetxattr", lambda: os.setxattr(1, "user.planted", b"1")),
    ("futimens", lambda: os.utime(1, (0, 0))),
    ("chmod by path", lambda: os.chmod("/proc/self/fd/1", 0o666)),
    ("chmod /dev/stdout", lambda: os.chmod("/dev/stdout", 0o666)),
    ("utime by path", lambda: os.utime("/proc/self/fd/1", (0, 0))),
    ("setxattr by path", lambda: os.setxattr("/proc/self/fd/1", "user.planted", b"1")),
    ("fchmod of a dup", lambda: os.fchmod(os.dup(1), 0o666)),
    ("chattr +d", lambda: fcntl.ioctl(1, 0x40086602, struct.pack("i", 0x40))),
]
for what, attempt in tries:
    try:
        attempt()
        os.write(2, (what + " allowed\n").encode())
    except OSError as e:
        os.write(2, (what + " refused " + errno.errorcode[e.errno] + "\n").encode())
"#;

/// The same calls on the guest's own files: all work, as natively.
const OWN_FILES: &str = r#"
import os
os.chdir("/tmp")
open("own", "w").close()
fd = os.open("own", os.O_RDONLY)
os.fchmod(fd, 0o600)
os.chmod("own", 0o4750)
os.chmod("/tmp/own", 0o640)
os.chown("own", 0, 0)
os.fchown(fd, -1, 0)
os.utime("own", (5, 5))
os.setxattr("own", "user.a", b"1")
os.setxattr(fd, "user.b", b"2")
os.removexattr("own", "user.a")
os.utime(fd, (7, 7))
os.chmod(f"/proc/self/fd/{fd}", 0o600)
os.chmod(f"/dev/fd/{fd}", 0o640)
st = os.stat("own")
print(oct(st.st_mode & 0o7777), int(st.st_mtime), sorted(os.listxattr("own")))
os.symlink("own", "link")
os.chmod("link", 0o604)
os.lchown("link", 0, 0)
print(oct(os.stat("own").st_mode & 0o7777))
try:
    os.chmod("missing", 0o600)
except OSError as e:
    print("missing", e.errno)
try:
    os.fchmod(os.open("own", os.O_PATH), 0o600)
except OSError as e:
    print("O_PATH", e.errno)
import fcntl, struct
fcntl.ioctl(fd, 0x40086602, struct.pack("i", 0x40))  # FS_IOC_SETFLAGS: nodump
print(hex(struct.unpack("i", fcntl.ioctl(fd, 0x80086601, b"\0" * 4))[0] & 0x40))
"#;

/// A file of the caller (uid 65534), mode 0644, to hand in as stdout.
fn callers_file(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("out");
    std::fs::write(&path, "").unwrap();
    set_mode(&path, 0o644);
    std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    path
}

fn unchanged(path: &std::path::Path, mtime: i64, report: &str) {
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "{report}");
    assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{report}");
    assert_eq!(meta.mtime(), mtime, "{report}");
    // Extended attributes, and the inode flags (FS_IOC_GETFLAGS).
    let names = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl,os,struct,sys\n\
             print(' '.join(os.listxattr(sys.argv[1])))\n\
             with open(sys.argv[1]) as f:\n\
             \x20   flags = struct.unpack('i', fcntl.ioctl(f, 0x80086601, bytes(4)))[0]\n\
             \x20   print('nodump' if flags & 0x40 else '')",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&names.stdout).trim(), "", "{report}");
}

#[test]
fn a_rootless_guest_cannot_change_a_file_it_is_handed() {
    let dir = TempDir::new("hostobj-file");
    let path = callers_file(&dir);
    let mtime = std::fs::metadata(&path).unwrap().mtime();
    let out = xvisor(Caller::Unprivileged, &["run", "--", "python3", "-c", ATTACKS])
        .stdin(Stdio::null())
        .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
        .output()
        .unwrap();
    let report = stderr(&out);
    // (xvisor's refusal lines share the stream: it is searched, not split.)
    assert!(!report.contains(" allowed"), "{report}");
    for what in [
        "chmod by path",
        "chmod /dev/stdout",
        "utime by path",
        "setxattr by path",
        "chattr +d",
        "fchmod setuid",
        "fchmod 666",
        "fchown",
        "fsetxattr",
        "futimens",
        "fchmod of a dup",
    ] {
        assert!(report.contains(&format!("{what} refused EPERM")), "{what}: {report}");
    }
    // Named once on stderr, with why.
    assert!(report.contains("used, not owned"), "{report}");
    unchanged(&path, mtime, &report);
}

both_callers!(the_guest_changes_its_own_files_as_natively, |caller| {
    let text = ok(&run(caller, &["run", "--", "python3", "-c", OWN_FILES]));
    assert_eq!(text, "0o640 7 ['user.b']\n0o604\nmissing 2\nO_PATH 9\n0x40\n");
});

#[test]
fn what_an_exec_session_hands_in_is_kept_too() {
    let dir = TempDir::new("hostobj-exec");
    let path = callers_file(&dir);
    let mtime = std::fs::metadata(&path).unwrap().mtime();
    let name = format!("hostobj{}", std::process::id());
    let mut instance = xvisor(Caller::Unprivileged, &["run", "--name", &name, "--", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually(std::time::Duration::from_secs(10), || {
        code(&run(Caller::Unprivileged, &["exec", &name, "--", "true"])) == 0
    });
    let out = xvisor(
        Caller::Unprivileged,
        &["exec", &name, "--", "python3", "-c", "import os; os.fchmod(1, 0o4777)"],
    )
    .stdin(Stdio::null())
    .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
    .output()
    .unwrap();
    let _ = instance.kill();
    let _ = instance.wait();
    assert!(started, "the instance did not start");
    // (The refusal is named on the instance's stderr, not the session's.)
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
    unchanged(&path, mtime, &stderr(&out));
}

/// Another guest thread swaps descriptor 5 between the guest's own file
/// and a duplicate of the handed-in one while the first thread changes
/// fd 5's mode, times and owner in a loop: whatever the interleaving, the
/// handed-in file is never changed (the supervisor decides on the file it
/// took and changes that file).
const RACE: &str = r#"
import os, threading
open("/tmp/own", "w").close()
own = os.open("/tmp/own", os.O_RDONLY)
handed = os.dup(1)
done = False
def swap():
    while not done:
        os.dup2(own, 5)
        os.dup2(handed, 5)
t = threading.Thread(target=swap); t.start()
changed = refused = 0
for i in range(3000):
    for attempt in (lambda: os.fchmod(5, 0o4777), lambda: os.utime(5, (0, 0)),
                    lambda: os.chmod("/proc/self/fd/5", 0o666), lambda: os.fchown(5, -1, 0)):
        try:
            attempt(); changed += 1
        except OSError:
            refused += 1
done = True
t.join()
os.write(2, f"changed {changed} refused {refused}\n".encode())
"#;

#[test]
fn swapping_descriptors_between_check_and_use_changes_nothing_handed_in() {
    let dir = TempDir::new("hostobj-race");
    let path = callers_file(&dir);
    let mtime = std::fs::metadata(&path).unwrap().mtime();
    let out = xvisor(Caller::Unprivileged, &["run", "--", "python3", "-c", RACE])
        .stdin(Stdio::null())
        .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
        .output()
        .unwrap();
    let report = stderr(&out);
    let counts = report.lines().find(|l| l.starts_with("changed ")).unwrap_or_default();
    // Both sides of the swap were met: the own file changed, the handed-in
    // one refused.
    let numbers: Vec<u64> = counts.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(
        matches!(numbers[..], [changed, refused] if changed > 0 && refused > 0),
        "{report}"
    );
    unchanged(&path, mtime, &report);
}

/// Runs `xvisor ARGS` (as `caller`) with a new host pty's slave as stdin
/// and stdout — a pty made here (`/dev/ptmx`, what `posix_openpt` opens),
/// nobody's controlling terminal, its slave the caller's — and prints the
/// guest's exit status, the slave's mode afterwards and what the guest
/// wrote, as JSON.
const ON_A_HOST_PTY: &str = r#"
import fcntl, json, os, select, struct, subprocess, sys
master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))  # TIOCSPTLCK: unlock
n = struct.unpack("I", fcntl.ioctl(master, 0x80045430, b"\0" * 4))[0]  # TIOCGPTN
slave_path = f"/dev/pts/{n}"
uid = int(sys.argv[1])
os.chown(slave_path, uid, -1)
os.chmod(slave_path, 0o620)
slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
child = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=subprocess.PIPE)
os.close(slave)
out = b""
while True:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    elif child.poll() is not None:
        break
err = child.stderr.read()
child.wait()
print(json.dumps({"status": child.returncode, "mode": oct(os.stat(slave_path).st_mode & 0o7777),
                  "out": out.decode(errors="replace"), "err": err.decode(errors="replace")}))
"#;

fn on_a_host_pty(caller: Caller, args: &[&str]) -> serde_json::Value {
    let uid = match caller {
        Caller::Root => 0,
        Caller::Unprivileged => NOBODY,
    };
    let xvisor_command = xvisor(caller, args);
    let mut command = std::process::Command::new("python3");
    command.args(["-c", ON_A_HOST_PTY, &uid.to_string()]);
    command.arg(xvisor_command.get_program());
    command.args(xvisor_command.get_args());
    command.current_dir("/");
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_rootless_guest_cannot_open_up_the_callers_terminal() {
    let script = "import os\n\
        for fd, mode in ((1, 0o666), (0, 0o4777)):\n\
        \x20   try:\n\
        \x20       os.fchmod(fd, mode); print('allowed')\n\
        \x20   except OSError as e:\n\
        \x20       print('refused', e.errno)\n\
        try:\n\
        \x20   os.chmod('/proc/self/fd/1', 0o666); print('allowed')\n\
        except OSError as e:\n\
        \x20   print('refused by path')\n";
    let got = on_a_host_pty(Caller::Unprivileged, &["run", "-i", "--", "python3", "-c", script]);
    assert_eq!(got["status"], 0, "{got}");
    assert_eq!(got["mode"], "0o620", "{got}");
    let out = got["out"].as_str().unwrap_or_default().replace('\r', "");
    assert_eq!(out, "refused 1\nrefused 1\nrefused by path\n", "{got}");
}

/// In a child of its own (the guest leads a process group, so cannot
/// `setsid` itself): a new session, then `TIOCSCTTY` on the host pty
/// handed in as stdin; then a pty of the instance's own becomes a new
/// child's controlling terminal (`pty.fork`: `login_tty`'s `TIOCSCTTY`).
const CONTROLLING_TERMINAL: &str = r#"
import errno, fcntl, os, pty, sys, termios
pid = os.fork()
if pid == 0:
    os.setsid()
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.write(1, b"host pty: adopted\n")
    except OSError as e:
        os.write(1, f"host pty: {errno.errorcode[e.errno]}\n".encode())
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
        os.write(1, b"/dev/tty: opened\n")
    except OSError as e:
        os.write(1, f"/dev/tty: {errno.errorcode[e.errno]}\n".encode())
    child, master = pty.fork()
    if child == 0:
        os.write(1, f"own pty: {os.ttyname(0).startswith('/dev/pts/')} {os.open('/dev/tty', os.O_RDWR) > 0}\n".encode())
        os._exit(0)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 1000)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(child, 0)
    os.write(1, seen.replace(b"\r", b""))
    os._exit(0)
os.waitpid(pid, 0)
"#;

both_callers!(a_host_terminal_never_becomes_a_controlling_terminal, |caller| {
    let got = on_a_host_pty(caller, &["run", "-i", "--", "python3", "-c", CONTROLLING_TERMINAL]);
    assert_eq!(got["status"], 0, "{got}");
    let out = got["out"].as_str().unwrap_or_default().replace('\r', "");
    assert_eq!(out, "host pty: EPERM\n/dev/tty: ENXIO\nown pty: True True\n", "{got}");
    assert!(
        got["err"].as_str().unwrap_or_default().contains("TIOCSCTTY"),
        "the refusal is named: {got}"
    );
});

/// One thread swaps descriptor 5 between a pty of the instance's own and
/// the host pty (stdin) while another, leading a new session, asks for fd
/// 5 as its controlling terminal: the descriptor table is shared, so the
/// supervisor, which cannot hold the descriptor still until the kernel
/// looks it up, refuses every time — and the host pty is never adopted.
const CTTY_RACE: &str = r#"
import errno, fcntl, os, termios, threading
pid = os.fork()
if pid == 0:
    os.setsid()
    master, slave = os.openpty()
    host = os.dup(0)
    done = False
    def swap():
        while not done:
            os.dup2(slave, 5)
            os.dup2(host, 5)
    t = threading.Thread(target=swap); t.start()
    results = set()
    for i in range(2000):
        try:
            fcntl.ioctl(5, termios.TIOCSCTTY, 0)
            results.add("adopted")
            break
        except OSError as e:
            results.add(errno.errorcode[e.errno])
    done = True
    t.join()
    tty_nr = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
    host_rdev = os.fstat(host).st_rdev
    os.write(1, f"{sorted(results)} host adopted: {tty_nr == host_rdev}\n".encode())
    os._exit(0)
os.waitpid(pid, 0)
"#;

both_callers!(a_racing_thread_cannot_slip_a_host_terminal_in, |caller| {
    let got = on_a_host_pty(caller, &["run", "-i", "--", "python3", "-c", CTTY_RACE]);
    let out = got["out"].as_str().unwrap_or_default().replace('\r', "");
    assert_eq!(out, "['EPERM'] host adopted: False\n", "{got}");
    // The instance's own pty was met too, and refused for the sharing.
    assert!(
        got["err"]
            .as_str()
            .unwrap_or_default()
            .contains("shares its descriptor table"),
        "{got}"
    );
});
