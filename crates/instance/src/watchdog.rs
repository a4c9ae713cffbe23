//! The cgroup watchdog: a tiny process, outside the instance, that removes
//! the instance's cgroups if the supervisor dies without doing it (SIGKILL).
//!
//! It waits for end-of-file on a pipe whose only writer is the supervisor;
//! by then the kernel has killed the instance (parent-death signal of its
//! init), so it waits for the cgroups to empty and removes them. It starts
//! its own session, ignores terminal signals and holds none of xvisor's
//! descriptors (not even its stdout/stderr), so it never keeps a caller's
//! pipe open.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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

    /// The supervisor has removed the cgroups itself: let the watchdog go
    /// and reap it, so nothing outlives xvisor.
    pub(crate) fn finish(&mut self) {
        if self.keepalive.take().is_some() {
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
    if let Ok(null) = xvisor_sys::fs::open_read_write("/dev/null", true) {
        for n in 0..3 {
            let _ = event::dup_onto(null.as_fd(), n);
        }
    }
    let _ = process::close_all_from_except(3, &[keepalive.as_raw_fd()]);
    let _ = std::env::set_current_dir("/");
    let _ = process::set_process_name("xvisor-cgwatch");
    let mut buf = [0u8; 16];
    while let Ok(n) = event::read(keepalive.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
    }
    // A paused instance's processes hold their SIGKILL until thawed: thaw
    // (a directory without a freezer just refuses the write).
    for path in paths {
        if xvisor_confine::cgroup::frozen(path).is_some() {
            let _ = xvisor_confine::cgroup::set_frozen(path, false);
        }
    }
    let _ = xvisor_confine::cgroup::remove_dirs(paths, Duration::from_secs(30));
    process::exit_now(0)
}
