//! What an OCI runtime request can fail with.
//!
//! Each message reads as one line when its chain is printed (`{e:#}`): a
//! variant with a source says what was being done, the source says why.

use std::io;

use xvisor_confine::CgroupError;
use xvisor_instance::registry::RegistryError;

use crate::{ConfigError, StateError};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle's config.json (or an exec's process file) is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The container's state under `--root`.
    #[error(transparent)]
    State(#[from] StateError),
    /// The container's supervisor, over its control socket.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Asking the container's supervisor for `what` failed.
    #[error("{what}")]
    Asked {
        what: String,
        #[source]
        source: RegistryError,
    },
    /// A system call made for `what` failed.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The container's cgroups (freezing, thawing) refused `what`.
    #[error("{what}")]
    Cgroup {
        what: String,
        #[source]
        source: CgroupError,
    },
    /// The request does not fit the container's status, its
    /// configuration or this host: the message says which.
    #[error("{0}")]
    Refused(String),
    /// A helper process (the container's supervisor, an exec session)
    /// failed, in its own words.
    #[error("{0}")]
    Failed(String),
}

impl RuntimeError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

impl RuntimeError {
    /// The message and each of its sources, joined by ": " (one line).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            out.push_str(": ");
            out.push_str(&e.to_string());
            source = e.source();
        }
        out
    }
}
