//! `start`: a created container's program begins.

use xvisor_instance::registry::{Registry, RegistryError, Request};

use super::base::Runtime;
use super::error::RuntimeError;
use crate::Status;

impl Runtime<'_> {
    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let (_, status) = self.status(id)?;
        match status {
            Status::Created => {}
            Status::Stopped => {
                return Err(RuntimeError::Refused(
                    "cannot start a container that has stopped".into(),
                ))
            }
            other => {
                return Err(RuntimeError::Refused(format!(
                    "cannot start a container in the {} state",
                    other.name()
                )))
            }
        }
        Registry::for_caller().ask(id, &Request::Start).map_err(|e| match e {
            RegistryError::Refused { message, .. } => RuntimeError::Refused(format!("start {id}: {message}")),
            other => RuntimeError::Registry(other),
        })?;
        Ok(())
    }
}
