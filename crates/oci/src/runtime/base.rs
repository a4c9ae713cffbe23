//! What every runtime command shares: where the state lives, how the
//! container's status is found, and the small files and pipes between the
//! runtime and the processes it forks.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use xvisor_instance::registry::{Registry, RegistryError, Request};
use xvisor_sys::{event, process};

use super::error::RuntimeError;
use crate::state::{program_ended, supervisor_alive};
use crate::{ContainerState, StateStore, Status};

/// Where the runtime's messages go besides the command's result: stderr
/// and the `--log` file, as the command line sets them up.
pub trait Log {
    /// A failure (of a container's supervisor, which has no caller to
    /// return it to).
    fn error(&self, message: &str);
    /// A warning; the request goes on.
    fn warn(&self, message: &str);
    /// A line for the log file only, at `level` (`warning`, `debug`).
    fn record(&self, level: &str, message: &str);
}

/// One OCI runtime: its state directory and its settings.
pub struct Runtime<'a> {
    /// The state directory (`--root`).
    pub root: PathBuf,
    /// systemd's cgroup driver: each container runs in a transient scope
    /// named by its `cgroupsPath` (`SLICE:PREFIX:NAME`).
    pub systemd_cgroup: bool,
    pub log: &'a dyn Log,
}

impl std::fmt::Debug for Runtime<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("root", &self.root)
            .field("systemd_cgroup", &self.systemd_cgroup)
            .finish_non_exhaustive()
    }
}

impl Runtime<'_> {
    pub fn store(&self) -> StateStore {
        StateStore::at(&self.root)
    }

    /// Warns, in the log, of each property runtime-spec does not define
    /// that `source` (config.json, --process) had and that was ignored.
    pub fn log_ignored(&self, source: &str, ignored: &[String]) {
        for property in ignored {
            self.log.record(
                "warning",
                &format!("{source}: {property}: not defined by runtime-spec, ignored"),
            );
        }
    }

    /// The container's state, its status found from the supervisor.
    pub fn status(&self, id: &str) -> Result<(ContainerState, Status), RuntimeError> {
        status_of(&self.store(), id)
    }
}

/// The runtime-spec state of a container (`state`, and what hooks read).
pub fn state_json(state: &ContainerState, status: Status) -> serde_json::Value {
    json!({
        "ociVersion": "1.2.0",
        "id": state.id,
        "status": status.name(),
        "pid": match status {
            Status::Stopped => 0,
            _ if state.process > 0 => state.process,
            _ => state.pid,
        },
        "bundle": state.bundle,
        "rootfs": state.bundle.join("rootfs"),
        "created": state.created,
        "owner": "",
        "annotations": state.annotations,
    })
}

/// The container's state, its status found from the supervisor.
pub(crate) fn status_of(store: &StateStore, id: &str) -> Result<(ContainerState, Status), RuntimeError> {
    let state = store.load(id)?;
    // Stopped once the program has ended, as engines expect (they reap it,
    // then ask), even while the supervisor still tears the instance down.
    if !supervisor_alive(&state) || program_ended(&state) == Some(true) {
        return Ok((state, Status::Stopped));
    }
    let status = match Registry::for_caller().ask(id, &Request::Info) {
        Ok(lines) => {
            let value = lines
                .iter()
                .find_map(|l| l.strip_prefix("state\t"))
                .unwrap_or_default()
                .to_string();
            match value.as_str() {
                "creating" => Status::Creating,
                "created" => Status::Created,
                "running" if is_frozen(&state) => Status::Paused,
                "running" => Status::Running,
                _ => Status::Stopped,
            }
        }
        // Alive but without its control socket: tearing down.
        Err(RegistryError::NoSuchInstance(_)) => Status::Stopped,
        // A supervisor killed while answering closes its socket during its
        // exit, before it becomes a zombie: the reset is its death, seen
        // early.
        Err(e @ RegistryError::NoAnswer { .. }) => {
            if ends_within(&state, Duration::from_secs(1)) {
                Status::Stopped
            } else {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok((state, status))
}

/// Whether the container's processes are frozen (`pause`).
pub(crate) fn is_frozen(state: &ContainerState) -> bool {
    state
        .freezer
        .as_deref()
        .is_some_and(|dir| xvisor_confine::cgroup::frozen(dir) == Some(true))
}

/// Whether the container's supervisor is gone (or a zombie) within `limit`.
pub(crate) fn ends_within(state: &ContainerState, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while supervisor_alive(state) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// What a forked helper (a detached supervisor, an exec waiter) wrote on
/// its report pipe before closing it or ending: at most 64 KiB, as text.
pub fn read_report(pipe: BorrowedFd<'_>) -> std::io::Result<String> {
    let mut report = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match event::read(pipe, &mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if report.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&report).into_owned())
}

/// Writes the pid file whole or not at all (an engine may read it at once).
pub fn write_pid_file(file: &Path, pid: i32) -> Result<(), RuntimeError> {
    let file = std::path::absolute(file).map_err(RuntimeError::io("--pid-file"))?;
    let what = || format!("--pid-file {}", file.display());
    let tmp = file.with_extension("xvisor-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(RuntimeError::io(what()))?;
    std::fs::rename(&tmp, &file).map_err(RuntimeError::io(what()))
}

/// The default state directory: `/run/xvisor-oci` as root,
/// `$XDG_RUNTIME_DIR/xvisor-oci` (or a per-user one in the temporary
/// directory) otherwise.
pub fn default_root() -> PathBuf {
    if process::geteuid() == 0 {
        return PathBuf::from("/run/xvisor-oci");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("xvisor-oci"),
        None => std::env::temp_dir().join(format!("xvisor-oci-{}", process::geteuid())),
    }
}
