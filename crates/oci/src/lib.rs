//! The OCI runtime: a bundle's `config.json` (runtime-spec 1.0–1.2) turned
//! into an [`InstanceSpec`](xvisor_instance::InstanceSpec) ([`config`], one
//! file per section of the specification), the per-container state kept
//! between invocations ([`state`]), the runtime's operations — create,
//! start, kill, pause, resume, delete, list, exec — behind typed requests
//! ([`runtime`]), and the `features` document made from the lists the
//! config reader accepts ([`features()`]). `xvisor`'s command line only
//! parses runc's arguments, calls these and prints.
//!
//! Every field runtime-spec defines is either honoured, accepted for a
//! reason written down in `docs/oci.md`, or refused with an error naming
//! it: a container never runs with less isolation than its configuration
//! asked for because a field went unread. Properties the specification
//! does not define are ignored, as it requires, and logged.

#![forbid(unsafe_code)]

pub mod config;
mod features;
pub mod runtime;
mod spec_fields;
pub mod state;

pub use config::{
    capability_number, default_config, load_bundle, parse_config, parse_process, ConfigError, Container, ProcessConfig,
    Rlimit,
};
pub use features::features;
pub use state::{ContainerState, StateError, StateStore, Status, StoredHook};
