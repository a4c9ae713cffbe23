//! trap — the Hypercall Interface: what is intercepted and how.
//!
//! - [`table`]: every x86_64 system call as data (name, argument kinds,
//!   class, handler);
//! - [`policy`]: profiles (`default`, `strict`) and `--deny-syscall` turned
//!   into one action per call number;
//! - [`policy_file`]: a policy file (TOML) read key by key, each rule given
//!   to the layer that enforces it;
//! - [`glob`]: the path patterns of policy files (`[fs].deny`);
//! - [`supervised`]: the rules only the supervisor can hold (address
//!   ranges, unix socket paths, programs pinned by sha256) and their
//!   decisions;
//! - [`bpf`]: the compiler from a policy to a classic-BPF seccomp program
//!   (checked by an interpreter in the tests);
//! - [`rules`]: an engine's seccomp profile (argument comparisons, actions)
//!   compiled into a second program that stacks with xvisor's;
//! - [`render`]: the `xvisor syscalls` listing and the doc page, generated
//!   from the same table.

#![forbid(unsafe_code)]

pub mod bpf;
pub mod glob;
pub mod host;
pub mod policy;
pub mod policy_file;
pub mod render;
pub mod rules;
pub mod supervised;
pub mod table;

pub use policy::{Action, Policy, PolicyError, Profile};
