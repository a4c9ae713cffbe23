//! `kill`: a signal for the container's program.

use xvisor_instance::registry::{Registry, Request};
use xvisor_sys::{process, signal};

use super::base::Runtime;
use super::error::RuntimeError;
use crate::state::supervisor_alive;
use crate::Status;

/// What `kill` is asked.
#[derive(Debug, Clone)]
pub struct KillRequest {
    pub id: String,
    pub signal: i32,
    /// `--all`: every process of the container (already true of a
    /// stopped one).
    pub all: bool,
}

impl Runtime<'_> {
    pub fn kill(&self, request: &KillRequest) -> Result<(), RuntimeError> {
        let (id, signal) = (&request.id, request.signal);
        let (state, status) = self.status(id)?;
        if status == Status::Stopped {
            // `--all` asks that no process be left: already true.
            // (containerd's shim sends it when it cleans up after a
            // container's end.) A signal for the program itself cannot be
            // delivered; the words "container not running" are what
            // engines recognise.
            if request.all {
                return Ok(());
            }
            return Err(RuntimeError::Refused(format!(
                "container {id:?}: container not running"
            )));
        }
        let sent = Registry::for_caller().ask(id, &Request::Signal(signal));
        if signal == signal::SIGKILL && status == Status::Paused {
            // Frozen processes take the kill once thawed (other signals
            // wait for `resume`, as they would for a stopped process).
            if let Some(dir) = state.freezer.as_deref() {
                let _ = xvisor_confine::cgroup::set_frozen(dir, false);
            }
        }
        match sent {
            Ok(_) => Ok(()),
            // The control socket is gone or stuck: the supervisor itself.
            Err(_) if supervisor_alive(&state) => process::kill(state.pid, signal).map_err(RuntimeError::io(format!(
                "signal the container's supervisor {}",
                state.pid
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
