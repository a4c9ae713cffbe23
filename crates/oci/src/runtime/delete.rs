//! `delete`: the container's supervisor killed if need be, its cgroups
//! and state removed, its `poststop` hooks run.

use std::time::Duration;

use xvisor_sys::{process, signal};

use super::base::{ends_within, state_json, Runtime};
use super::error::RuntimeError;
use crate::state::supervisor_alive;
use crate::{ContainerState, Status};

impl Runtime<'_> {
    /// Removes a stopped (or created) container; `force`: a running or
    /// paused one too, killed first, and one that is not there at all.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let store = self.store();
        let (state, status) = match self.status(id) {
            Ok(s) => s,
            Err(e) => {
                // A directory without readable state (a create that died
                // half way) goes too with --force.
                if force && store.dir(id).is_ok_and(|d| d.exists()) {
                    store.remove(id)?;
                    return Ok(());
                }
                // Forcing the deletion of what is not there succeeds, as
                // with runc: engines clean up that way after a failed
                // create.
                if force && store.dir(id).is_ok_and(|d| !d.exists()) {
                    return Ok(());
                }
                return Err(e);
            }
        };
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(RuntimeError::Refused(format!(
                "cannot delete container {id:?}: it is {} (stop it, or use --force)",
                status.name()
            )));
        }
        if supervisor_alive(&state) {
            let _ = process::kill(state.pid, signal::SIGKILL);
        }
        // The supervisor is gone (a zombie until its parent collects it) …
        let ended = ends_within(&state, Duration::from_secs(10));
        // … and a paused instance's processes hold their kill until thawed.
        kill_frozen(&state);
        if !ended {
            return Err(RuntimeError::Failed(format!(
                "the container's supervisor {} did not end",
                state.pid
            )));
        }
        // … and its watchdog removes the cgroups once their processes are
        // gone.
        if !state.cgroup_paths.is_empty() {
            let _ = xvisor_confine::cgroup::remove_dirs(&state.cgroup_paths, Duration::from_secs(10));
            if let Some(left) = state.cgroup_paths.iter().find(|p| p.exists()) {
                return Err(RuntimeError::Failed(format!(
                    "cgroup {} is still there",
                    left.display()
                )));
            }
        }
        store.remove(id)?;
        run_poststop(self, &state);
        Ok(())
    }
}

/// Kills every process left in a paused container's freezer cgroup and
/// thaws it, so that they take their SIGKILL and the cgroups empty.
fn kill_frozen(state: &ContainerState) {
    let Some(dir) = state.freezer.as_deref() else { return };
    if xvisor_confine::cgroup::frozen(dir) != Some(true) {
        return;
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = process::kill(pid, signal::SIGKILL);
    }
    let _ = xvisor_confine::cgroup::set_frozen(dir, false);
}

/// Runs the `poststop` hooks; a failure is only a warning (runtime-spec).
pub(crate) fn run_poststop(runtime: &Runtime<'_>, state: &ContainerState) {
    if state.poststop.is_empty() {
        return;
    }
    let stopped = state_json(state, Status::Stopped).to_string().into_bytes();
    for stored in &state.poststop {
        let hook = xvisor_instance::hooks::Hook::from(stored);
        if let Err(e) = xvisor_instance::hooks::run(&hook, &stopped) {
            runtime.log.warn(&e.to_string());
        }
    }
}
