//! The instance: one isolated world with its own supervisor.
//!
//! [`Instance`] walks an explicit life cycle — creating → created → running
//! → stopped — so that a runtime can create an instance, start it later,
//! and start more processes in it while it runs ([`exec`]):
//!
//! - [`Instance::create`] makes the instance's first process in new
//!   namespaces, writes its id maps, puts it in its cgroups, and waits until
//!   it has built its root (`init` side: [`init`]);
//! - [`Instance::start`] lets init start the guest program;
//! - [`Instance::wait`] serves the instance (signals, terminal, timeout,
//!   exec sessions) until the guest ends, then tears everything down.
//!
//! If the supervisor dies, the kernel kills init (parent-death signal) and
//! with it every process of the pid namespace; a small watchdog removes the
//! instance's cgroups ([`watchdog`]). Nothing is left on the host.

#![forbid(unsafe_code)]

mod absent;
pub mod client;
pub mod exec;
pub mod hooks;
mod hostobj;
mod init;
mod learning;
pub mod lifecycle;
mod metadata_agent;
pub mod monitor;
pub mod nat;
mod open;
mod outcome;
mod perform;
mod pinned;
pub mod portfwd;
mod printable;
mod procfs;
pub mod protocol;
pub mod registry;
mod sched;
mod send;
mod sending;
mod server;
pub mod spec;
pub mod status;
mod supervisor;
pub mod terminal;
mod watchdog;

pub use lifecycle::State;
pub use printable::printable;
pub use spec::{InstanceSpec, JoinNamespace, NamespaceKind, Network, SharedWriter, StdinMode, TraceTarget};
pub use supervisor::{Instance, InstanceError, Outcome, StartWait, SUPERVISOR_SIGNALS};
pub use watchdog::{remove_for_dead_supervisor, PROGRAM_NAME as WATCHDOG_PROGRAM_NAME};
