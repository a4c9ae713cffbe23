//! The cgroup watchdog: a tiny process, outside the instance, that removes
//! the instance's cgroups if the supervisor dies without doing it (SIGKILL).
//!
//! It waits for end-of-file on a pipe whose only writer is the supervisor;
//! by then the kernel has killed the instance (parent-death signal of its
//! init), so it waits for the cgroups to empty and removes them. On the
//! same pipe the supervisor tells it the directories that were made on the
//! way to them (an OCI `cgroupsPath`): those go too, once empty, without
//! waiting (other containers may live there). Moved with the supervisor
//! into the shared leaf of the caller's cgroup (cgroup v2), it leaves it
//! as the supervisor would have. It starts
//! its own session, ignores terminal signals and holds none of xvisor's
//! descriptors (not even its stdout/stderr), so it never keeps a caller's
//! pipe open.
//!
//! It is cheap where it is not needed: it shares the supervisor's memory
//! while it waits (`process::spawn_watcher`: no page table copied, no page
//! made copy-on-write, nothing to tear down at its end), and only when the
//! supervisor died without saying `finished` does it execute xvisor's own
//! program, named [`PROGRAM_NAME`], which does the removal
//! ([`remove_for_dead_supervisor`]).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use xvisor_sys::event;
use xvisor_sys::process::{self, Forked};
use xvisor_sys::signal;

#[derive(Debug)]
pub(crate) struct Watchdog {
    keepalive: Option<OwnedFd>,
    pid: i32,
}

impl Watchdog {
    pub(crate) fn spawn(paths: Vec<PathBuf>) -> io::Result<Self> {
        let (read_end, write_end) = event::pipe()?;
        if process::WATCHER_SUPPORTED {
            let program = xvisor_sys::fs::open_path(None, "/proc/self/exe")?;
            let mut argv = vec![CString::new(PROGRAM_NAME)?];
            for path in &paths {
                argv.push(CString::new(path.as_os_str().as_bytes())?);
            }
            let pid = process::spawn_watcher(read_end, program, &argv, PROGRAM_NAME, FINISHED)?;
            return Ok(Self {
                keepalive: Some(write_end),
                pid,
            });
        }
        match process::fork()? {
            Forked::Child => {
                drop(write_end);
                watch(read_end, &paths)
            }
            Forked::Parent { pid, .. } => {
                drop(read_end);
                Ok(Self {
                    keepalive: Some(write_end),
                    pid,
                })
            }
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Directories made on the way to the cgroups, to remove after them
    /// when nothing else lives there (deepest last in `made`, as made).
    pub(crate) fn also_remove_if_empty(&self, made: &[PathBuf]) -> io::Result<()> {
        let Some(pipe) = &self.keepalive else { return Ok(()) };
        for path in made {
            let mut line = path.as_os_str().as_bytes().to_vec();
            line.push(b'\n');
            event::write_all(pipe.as_fd(), &line)?;
        }
        Ok(())
    }

    /// The supervisor has removed the cgroups itself: let the watchdog go
    /// and reap it, so nothing outlives xvisor.
    pub(crate) fn finish(&mut self) {
        if let Some(pipe) = self.keepalive.take() {
            // Nothing left to remove: a directory made on the way may be
            // another container's again by the time the watchdog looks.
            let _ = event::write_all(pipe.as_fd(), FINISHED);
            drop(pipe);
            let _ = process::wait_pid(self.pid, false);
        }
    }
}

impl Drop for Watchdog {
    /// On a failed teardown the watchdog is left to finish the removal on
    /// its own (it retries for a while); the supervisor does not wait.
    fn drop(&mut self) {
        self.keepalive.take();
    }
}

/// The supervisor's last word when it removed everything itself (paths
/// are absolute: no path is this line).
const FINISHED: &[u8] = b"finished\n";

fn watch(keepalive: OwnedFd, paths: &[PathBuf]) -> ! {
    let _ = process::setsid();
    for s in [
        signal::SIGINT,
        signal::SIGTERM,
        signal::SIGHUP,
        signal::SIGQUIT,
        signal::SIGTSTP,
        signal::SIGTTIN,
        signal::SIGTTOU,
    ] {
        let _ = signal::set_disposition(s, true);
    }
    let _ = signal::unblock_all();
    process::stdio_to_null();
    let _ = process::close_all_from_except(3, &[keepalive.as_raw_fd()]);
    let _ = std::env::set_current_dir("/");
    let _ = process::set_process_name(PROGRAM_NAME);
    // Bounded: a path is at most 4 KiB, and only the supervisor writes.
    const MAX_TOLD: usize = 64 << 10;
    let mut told = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = event::read(keepalive.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        if told.len() + n <= MAX_TOLD {
            told.extend_from_slice(&buf[..n]);
        }
    }
    if has_finished(&told) {
        process::exit_now(0)
    }
    remove(paths, &told)
}

/// The name of the watchdog's process, and of xvisor's program when it
/// runs as the watchdog of a supervisor that died: `argv[0]`.
pub const PROGRAM_NAME: &str = "xvisor-cgwatch";

/// xvisor's program run as the watchdog of a dead supervisor: the
/// arguments after `argv[0]` are the instance's cgroup directories, then
/// what the supervisor told on the pipe (the directories made on the way,
/// one a line).
pub fn remove_for_dead_supervisor(args: &[OsString]) -> ! {
    let _ = process::set_process_name(PROGRAM_NAME);
    // The watcher kept every signal blocked; the terminal ones stay ignored.
    let _ = signal::unblock_all();
    let Some((told, paths)) = args.split_last() else {
        process::exit_now(0)
    };
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let told = told.as_bytes();
    if has_finished(told) {
        process::exit_now(0)
    }
    remove(&paths, told)
}

fn has_finished(told: &[u8]) -> bool {
    told.split(|b| *b == b'\n')
        .any(|l| FINISHED.strip_suffix(b"\n") == Some(l))
}

fn remove(paths: &[PathBuf], told: &[u8]) -> ! {
    let lines: Vec<&[u8]> = told.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    // A paused instance's processes hold their SIGKILL until thawed: thaw
    // (a directory without a freezer just refuses the write).
    for path in paths {
        if xvisor_confine::cgroup::frozen(path).is_some() {
            let _ = xvisor_confine::cgroup::set_frozen(path, false);
        }
    }
    let _ = xvisor_confine::cgroup::remove_dirs(paths, Duration::from_secs(30));
    for path in lines.iter().rev() {
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        // Only absolute paths were told; anything else is not ours.
        if path.is_absolute() {
            let _ = std::fs::remove_dir(path);
        }
    }
    // Moved out of the caller's cgroup with the supervisor (cgroup v2), the
    // watchdog puts it back in the supervisor's place.
    let _ = xvisor_confine::cgroup::leave_supervisor_leaf(Duration::from_secs(30));
    process::exit_now(0)
}
