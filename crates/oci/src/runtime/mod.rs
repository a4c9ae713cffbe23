//! The OCI runtime itself: containers created, started, signalled,
//! paused, resumed, deleted, listed and exec'd into, each behind a typed
//! request and [`RuntimeError`]. The command line (`xvisor` with runc's
//! commands and flags) only parses, calls this and prints.
//!
//! `create` forks a detached supervisor for the container: a new session,
//! holding the standard descriptors `create` was given (they are the
//! container's) and nothing else of the caller's. The supervisor creates
//! the instance, records the container's state under the state directory,
//! and waits on the instance's control socket for `start`; it then serves
//! the instance to its end and exits with the guest's status, which is why
//! its pid is the container's pid for engines (they wait for it). `kill`,
//! `state`, `ps` and `start` talk to it over its control socket; `delete`
//! kills it if needed and removes every trace.

mod base;
mod create;
mod delete;
mod error;
pub mod exec;
mod kill;
mod list;
mod pause;
mod start;

pub use base::{default_root, read_report, state_json, write_pid_file, Log, Runtime};
pub use create::{CreateRequest, Created, RunMode};
pub use error::RuntimeError;
pub use exec::ExecCall;
pub use kill::KillRequest;
pub use list::container_pids;
