//! What an OCI runtime remembers about a container between invocations:
//! `ROOT/ID/state.json`, written by `create`, and `ROOT/ID/exit`, written
//! by the supervisor when the container's program ends.
//!
//! The supervisor process is the container's process on the host (its pid
//! is the one engines wait for); whether it still runs is checked against
//! its start time, so a recycled pid is never taken for the container.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("{0:?} is not a valid container id: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidId(String),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: damaged state: {error}")]
    Damaged { path: String, error: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |error| StateError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// An OCI container status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Running, with every process frozen (`pause`).
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerState {
    pub id: String,
    pub bundle: PathBuf,
    /// The supervisor, which serves the container for its whole life.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub pid_start_time: u64,
    /// The container's first process (its program) as the host sees it:
    /// the state's `pid` for engines. 0 in a state written before this
    /// field existed (the supervisor's pid was the container's then).
    #[serde(default)]
    pub process: i32,
    /// Its start time, as for the supervisor's.
    #[serde(default)]
    pub process_start_time: u64,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The instance's cgroup directories, for `delete` to see them gone.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// The host uid that created it (for `list`).
    #[serde(default)]
    pub owner: u32,
    /// The cgroup directory that freezes the container (`pause`), if it
    /// has one.
    #[serde(default)]
    pub freezer: Option<PathBuf>,
    /// The `poststop` hooks, run by `delete` (the bundle may be gone by
    /// then).
    #[serde(default)]
    pub poststop: Vec<StoredHook>,
}

/// A hook as `state.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredHook {
    pub origin: String,
    pub path: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

impl From<&xvisor_instance::hooks::Hook> for StoredHook {
    fn from(h: &xvisor_instance::hooks::Hook) -> Self {
        Self {
            origin: h.origin.clone(),
            path: h.path.clone(),
            args: h.args.clone(),
            env: h.env.clone(),
            timeout_seconds: h.timeout.map(|t| t.as_secs()),
        }
    }
}

impl From<&StoredHook> for xvisor_instance::hooks::Hook {
    fn from(h: &StoredHook) -> Self {
        Self {
            origin: h.origin.clone(),
            path: h.path.clone(),
            args: h.args.clone(),
            env: h.env.clone(),
            timeout: h.timeout_seconds.map(std::time::Duration::from_secs),
        }
    }
}

/// The directory of every container's state (`--root`).
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        if !valid_id(id) {
            return Err(StateError::InvalidId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    /// Makes the container's directory; fails if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id)?;
        std::fs::create_dir_all(&self.root).map_err(io_error(&self.root))?;
        set_mode(&self.root, 0o700);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StateError::Exists(id.to_string())),
            Err(e) => Err(io_error(&dir)(e)),
        }
    }

    /// Writes state.json atomically (a temporary file renamed over it).
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        let dir = self.dir(&state.id)?;
        let path = dir.join("state.json");
        let tmp = dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(state).map_err(|e| StateError::Damaged {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
        f.write_all(&text).map_err(io_error(&tmp))?;
        f.sync_all().map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error(&path))
    }

    pub fn load(&self, id: &str) -> Result<ContainerState, StateError> {
        let dir = self.dir(id)?;
        let path = dir.join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotFound(id.to_string())),
            Err(e) => return Err(io_error(&path)(e)),
        };
        serde_json::from_slice(&text).map_err(|e| StateError::Damaged {
            path: path.display().to_string(),
            error: e.to_string(),
        })
    }

    /// Records the container program's exit status (the supervisor does,
    /// before it exits).
    pub fn record_exit(&self, id: &str, code: i32) -> Result<(), StateError> {
        let path = self.dir(id)?.join("exit");
        std::fs::write(&path, format!("{code}\n")).map_err(io_error(&path))
    }

    /// The recorded exit status, if the supervisor wrote one.
    pub fn exit_code(&self, id: &str) -> Option<i32> {
        let path = self.dir(id).ok()?.join("exit");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// The ids with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_id(n))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes the container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&dir)(e)),
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Container ids double as instance names (control sockets, cgroups).
pub fn valid_id(id: &str) -> bool {
    xvisor_instance::registry::valid_name(id)
}

/// The start time of process `pid` in clock ticks since boot, if it exists
/// (and is not a zombie).
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is starttime.
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the container's program has ended (gone, or a zombie): the
/// container is stopped then, while its supervisor may still be tearing
/// it down. `None` for a state that does not name the program.
pub fn program_ended(state: &ContainerState) -> Option<bool> {
    (state.process > 0).then(|| process_start_time(state.process) != Some(state.process_start_time))
}

/// Whether the container's supervisor still runs (same pid, same start).
pub fn supervisor_alive(state: &ContainerState) -> bool {
    process_start_time(state.pid) == Some(state.pid_start_time)
}

/// Now as RFC 3339 UTC with nanoseconds (as runc prints it).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = xvisor_sys::clock::Utc::from_epoch_seconds(d.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_ids_are_checked() {
        let dir = std::env::temp_dir().join(format!("xvisor-oci-state-{}", std::process::id()));
        let store = StateStore::at(&dir);
        assert!(matches!(store.reserve("../x"), Err(StateError::InvalidId(_))));
        store.reserve("c1").unwrap();
        assert!(matches!(store.reserve("c1"), Err(StateError::Exists(_))));
        let state = ContainerState {
            id: "c1".into(),
            bundle: "/b".into(),
            pid: std::process::id() as i32,
            pid_start_time: process_start_time(std::process::id() as i32).unwrap(),
            process: 0,
            process_start_time: 0,
            created: now_rfc3339(),
            annotations: BTreeMap::new(),
            cgroup_paths: vec![],
            owner: 0,
            freezer: None,
            poststop: Vec::new(),
        };
        store.save(&state).unwrap();
        assert_eq!(store.load("c1").unwrap(), state);
        assert!(supervisor_alive(&state));
        assert_eq!(store.ids().unwrap(), vec!["c1".to_string()]);
        store.record_exit("c1", 3).unwrap();
        assert_eq!(store.exit_code("c1"), Some(3));
        store.remove("c1").unwrap();
        assert!(matches!(store.load("c1"), Err(StateError::NotFound(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dates_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
