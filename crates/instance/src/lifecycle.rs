//! The instance's life cycle as an explicit state machine.

use std::fmt;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Namespaces, cgroups and root are being built.
    Creating,
    /// Built; init waits for `start`. (The OCI `created` state.)
    Created,
    /// The guest program runs.
    Running,
    /// The guest ended and the instance is torn down.
    Stopped,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
        })
    }
}

/// An operation asked of an instance in a state that does not allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {operation} an instance that is {state}")]
pub struct WrongState {
    pub operation: &'static str,
    pub state: State,
}

impl State {
    /// The state after `operation`, if it is allowed from `self`.
    /// Any state may move to `Stopped` (failure, kill, exit).
    pub fn after(self, operation: &'static str) -> Result<State, WrongState> {
        let next = match (self, operation) {
            (Self::Creating, "finish creating") => Self::Created,
            (Self::Created, "start") => Self::Running,
            (_, "stop") => Self::Stopped,
            _ => return Err(WrongState { operation, state: self }),
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_exist() {
        assert_eq!(State::Creating.after("finish creating"), Ok(State::Created));
        assert_eq!(State::Created.after("start"), Ok(State::Running));
        assert_eq!(State::Running.after("stop"), Ok(State::Stopped));
        assert_eq!(State::Creating.after("stop"), Ok(State::Stopped));
        assert!(State::Creating.after("start").is_err());
        assert!(State::Running.after("start").is_err());
        assert!(State::Stopped.after("start").is_err());
        assert_eq!(
            State::Stopped.after("start").unwrap_err().to_string(),
            "cannot start an instance that is stopped"
        );
    }
}
