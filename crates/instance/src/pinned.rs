//! Programs pinned by sha256 (`[exec].allow` entries with a hash): checked
//! by the process monitor at the exec stop, when the kernel has loaded the
//! new program and before it runs a single instruction. The file checked
//! is the one the kernel executed (`/proc/TID/exe`), so no path the guest
//! passed, and no buffer it could change, takes part in the decision.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use sha2::{Digest, Sha256};
use xvisor_trap::supervised::{sha256_hex, ExecPin};
use xvisor_trap::Policy;

/// `O_NONBLOCK` (x86_64).
const O_NONBLOCK: i32 = 0o4000;

/// The pins of an instance's policy.
#[derive(Debug)]
pub(crate) struct PinnedPrograms {
    pins: Vec<ExecPin>,
    /// `[exec].allow (web.toml)`.
    source: String,
    /// When each program's refusal was last named: at most one line a
    /// second per program, as for the other refusals.
    named: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Hashes of files on read-only mounts, which nothing in the instance
    /// can change: a program executed again is not read again. Keyed by
    /// the file's identity and its change time, size and modification time.
    hashed: std::sync::Mutex<std::collections::HashMap<FileKey, [u8; 32]>>,
    /// A pinned path that is a script, found at the first exec: the kernel
    /// executes a script's interpreter, so the script's pin could never be
    /// checked. Every exec is then refused (the instance's program first):
    /// a pin is enforced as written or nothing runs.
    pinned_script: std::sync::OnceLock<Option<String>>,
}

/// (device, inode, size, modification time, change time) in nanoseconds.
type FileKey = (u64, u64, u64, i128, i128);

fn key_of(m: &std::fs::Metadata) -> FileKey {
    let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
    (
        m.dev(),
        m.ino(),
        m.size(),
        nanos(m.mtime(), m.mtime_nsec()),
        nanos(m.ctime(), m.ctime_nsec()),
    )
}

/// What the check of one exec found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No pin concerns the program.
    Unpinned,
    /// Its contents are the pinned ones.
    Matches,
    /// Not the pinned contents (or not readable): the process must not
    /// run. The line names it, unless it was named in the last second.
    Refused(Option<String>),
}

impl PinnedPrograms {
    /// The policy's pins, if it has any (exec stops are asked for only
    /// then: each is one more stop of the exec'ing task).
    pub(crate) fn of(policy: &Policy) -> Option<Self> {
        let rules = policy.supervised();
        (!rules.exec_pins.is_empty()).then(|| Self {
            pins: rules.exec_pins.clone(),
            source: rules.exec_source.clone(),
            named: Default::default(),
            hashed: Default::default(),
            pinned_script: std::sync::OnceLock::new(),
        })
    }

    /// Checks the program thread `tid` has just executed.
    // Long: one exec judged whole: pinned scripts refused, the executed file matched to its pin, hashed, compared.
    pub(crate) fn check(&self, tid: i32) -> Verdict {
        // The executed file as the instance names it (the link resolves to
        // the instance's own path), and the file itself.
        let shown = std::fs::read_link(format!("/proc/{tid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let root = xvisor_sys::fs::open_path(None, &format!("/proc/{tid}/root")).ok();
        let pinned_script = self.pinned_script.get_or_init(|| {
            let root = root.as_ref()?;
            self.pins.iter().find_map(|pin| {
                let file = xvisor_sys::fs::open_path_in_root(root.as_fd(), &pin.path).ok()?;
                let mut start = [0u8; 2];
                // Regular files only, opened without waiting (a FIFO there
                // must not hold the monitor).
                let mut readable = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(O_NONBLOCK)
                    .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
                    .ok()?;
                if !readable.metadata().ok()?.is_file() {
                    return None;
                }
                readable.read_exact(&mut start).ok()?;
                (&start == b"#!").then(|| pin.path.clone())
            })
        });
        if let Some(script) = pinned_script {
            let why = format!(
                "{script} is pinned but is a script, whose interpreter is what the kernel executes (pin the interpreter)"
            );
            return self.refused(tid, &shown, &why);
        }
        let Ok(mut file) = std::fs::File::open(format!("/proc/{tid}/exe")) else {
            return self.refused(tid, &shown, "its file could not be read");
        };
        let Ok(executed) = file.metadata() else {
            return self.refused(tid, &shown, "its file could not be read");
        };
        // A pin names a file: by its path as written, or by the file that
        // path leads to in the instance now (a symlink such as
        // /usr/bin/python3 leads to python3.11, which is what runs).
        let pin = self.pins.iter().find(|pin| {
            pin.path == shown
                || root.as_ref().is_some_and(|root| {
                    xvisor_sys::fs::open_path_in_root(root.as_fd(), &pin.path)
                        .map(std::fs::File::from)
                        .and_then(|f| f.metadata())
                        .is_ok_and(|m| (m.dev(), m.ino()) == (executed.dev(), executed.ino()))
                })
        });
        let Some(pin) = pin else {
            return Verdict::Unpinned;
        };
        let read_only = xvisor_sys::fs::on_read_only_mount(file.as_fd()).unwrap_or(false);
        let key = key_of(&executed);
        let known = read_only
            .then(|| self.hashed.lock().ok().and_then(|h| h.get(&key).copied()))
            .flatten();
        let digest = match known {
            Some(digest) => digest,
            None => {
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => hasher.update(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return self.refused(tid, &shown, "its file could not be read"),
                    }
                }
                let digest: [u8; 32] = hasher.finalize().into();
                if read_only {
                    if let Ok(mut hashed) = self.hashed.lock() {
                        if hashed.len() >= 1024 {
                            hashed.clear();
                        }
                        hashed.insert(key, digest);
                    }
                }
                digest
            }
        };
        if digest == pin.sha256 {
            Verdict::Matches
        } else {
            let why = format!(
                "its sha256 {} is not the one pinned for {}",
                sha256_hex(&digest),
                pin.path
            );
            self.refused(tid, &shown, &why)
        }
    }

    fn refused(&self, tid: i32, shown: &str, why: &str) -> Verdict {
        let now = std::time::Instant::now();
        {
            let mut named = self.named.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if named
                .get(shown)
                .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(1))
            {
                return Verdict::Refused(None);
            }
            if named.len() >= 256 {
                named.clear();
            }
            named.insert(shown.to_string(), now);
        }
        let pid = crate::procfs::ids_of(tid).pid;
        Verdict::Refused(Some(format!(
            "xvisor: denied exec of {} [pid {pid}]: {why} in {}; killed before its first instruction",
            crate::printable(shown),
            self.source
        )))
    }
}
