//! What a bundle's config.json (or an exec's process file) comes to.

use std::collections::BTreeMap;

use xvisor_confine::cgroup::ScopeRequest;
use xvisor_confine::identity::CapabilitySets;
use xvisor_instance::hooks::Hook;
use xvisor_instance::InstanceSpec;

/// One resource limit of the container's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The `RLIMIT_*` resource number.
    pub resource: u32,
    pub name: &'static str,
    pub soft: u64,
    pub hard: u64,
}

/// What a bundle asks for, ready to create.
#[derive(Debug, Clone)]
pub struct Container {
    pub spec: InstanceSpec,
    /// Applied by the supervisor to itself before the instance is created,
    /// so that init and the guest inherit them.
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    pub umask: Option<u32>,
    pub annotations: BTreeMap<String, String>,
    /// Run by `delete` (the others travel in `spec.hooks`, whose states
    /// the runtime fills in).
    pub poststop: Vec<Hook>,
    /// Properties runtime-spec does not define, by path (`linux.foo`):
    /// ignored, as the specification requires.
    pub ignored: Vec<String>,
    /// `cgroupsPath` read as systemd's cgroup driver reads it
    /// (`SLICE:PREFIX:NAME`), for an engine that asks for that driver.
    pub systemd_scope: Option<ScopeRequest>,
}

/// A process.json (an OCI runtime's `exec --process`): config.json's
/// `process` object, read by the same rules.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `None`: the container's own sets.
    pub capabilities: Option<CapabilitySets>,
    pub rlimits: Vec<Rlimit>,
    pub umask: Option<u32>,
    pub terminal: bool,
    /// `noNewPrivileges` (absent: false, as runtime-spec says).
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    /// As [`Container::ignored`].
    pub ignored: Vec<String>,
}
