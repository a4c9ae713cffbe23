//! `pause` and `resume`: every process of the container frozen or thawed
//! through its freezer cgroup.

use std::path::Path;
use std::time::Duration;

use super::base::Runtime;
use super::error::RuntimeError;
use crate::{ContainerState, Status};

/// How long `pause` waits for every process to stop.
const FREEZE_PATIENCE: Duration = Duration::from_secs(5);

impl Runtime<'_> {
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        let (state, status) = self.status(id)?;
        match status {
            Status::Running => {}
            Status::Paused => return Err(RuntimeError::Refused(format!("container {id:?} is already paused"))),
            other => {
                return Err(RuntimeError::Refused(format!(
                    "cannot pause container {id:?}: it is {}, not running",
                    other.name()
                )))
            }
        }
        let dir = freezer_of(&state, "pause")?;
        xvisor_confine::cgroup::freeze(dir, FREEZE_PATIENCE).map_err(|source| RuntimeError::Cgroup {
            what: format!("pause {id}"),
            source,
        })
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let (state, status) = self.status(id)?;
        if status != Status::Paused {
            return Err(RuntimeError::Refused(format!(
                "cannot resume container {id:?}: it is {}, not paused",
                status.name()
            )));
        }
        let dir = freezer_of(&state, "resume")?;
        xvisor_confine::cgroup::set_frozen(dir, false).map_err(|source| RuntimeError::Cgroup {
            what: format!("resume {id}"),
            source,
        })
    }
}

/// The container's freezer cgroup, or why it has none.
fn freezer_of<'a>(state: &'a ContainerState, command: &str) -> Result<&'a Path, RuntimeError> {
    state.freezer.as_deref().ok_or_else(|| {
        RuntimeError::Refused(format!(
            "{command} {}: the container has no freezer cgroup (it could not be made: cgroups need root or a delegated cgroup)",
            state.id
        ))
    })
}
