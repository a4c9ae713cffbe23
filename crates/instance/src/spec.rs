//! What an instance is made of, fully resolved: the command line (or, later,
//! an OCI bundle) is turned into one of these before anything runs.

use std::time::Duration;

use std::path::PathBuf;

use xvisor_confine::{Limits, RootSpec};
use xvisor_trap::Policy;

/// The instance's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with only loopback, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// An existing network namespace, joined by path (see
    /// [`InstanceSpec::joined`]): set up by whoever made it.
    Joined,
    /// A new network namespace with loopback and a way out through a
    /// user-mode network stack on the host side (slirp4netns, see
    /// [`crate::nat`]). The host's loopback is out of reach unless
    /// `host_loopback`: then the gateway, 10.0.2.2, leads to it.
    Nat { host_loopback: bool },
}

impl Network {
    /// Whether init creates a network namespace of the instance's own.
    pub fn is_own(self) -> bool {
        matches!(self, Self::None | Self::Nat { .. })
    }

    /// As `--net` names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Host => "host",
            Self::Joined => "joined",
            Self::Nat { host_loopback: false } => "nat",
            Self::Nat { host_loopback: true } => "nat:host-loopback",
        }
    }
}

/// A namespace kind an instance may join instead of creating its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    Network,
    Ipc,
    Uts,
    /// A pod's pid namespace. The instance then also joins the user
    /// namespace that owns it, when that is not the runtime's own (a pod
    /// sandbox that is itself an xvisor instance), so that capabilities
    /// the instance is given hold over the pod's namespaces.
    Pid,
}

impl NamespaceKind {
    /// The `CLONE_NEW*` flag (`xvisor_sys::process::ns`).
    pub fn flag(self) -> u64 {
        use xvisor_sys::process::ns;
        match self {
            Self::Network => ns::NET,
            Self::Ipc => ns::IPC,
            Self::Uts => ns::UTS,
            Self::Pid => ns::PID,
        }
    }

    /// As config.json and the kernel's /proc/PID/ns links name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Ipc => "ipc",
            Self::Uts => "uts",
            Self::Pid => "pid",
        }
    }

    /// The file of this kind under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Network => "net",
            Self::Ipc => "ipc",
            Self::Uts => "uts",
            Self::Pid => "pid",
        }
    }
}

/// An existing namespace the instance joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinNamespace {
    pub kind: NamespaceKind,
    /// The namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub path: PathBuf,
    /// What names it in error messages (`linux.namespaces[1].path`).
    pub origin: String,
    /// For a UTS namespace: the host name to give it (an OCI bundle's
    /// `hostname`, which names the container's UTS namespace even when that
    /// is joined); `None` keeps the name it has.
    pub hostname: Option<String>,
}

/// Where `--trace` records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceTarget {
    /// JSON lines, appended to this file.
    File(PathBuf),
    /// Readable, strace-like lines on xvisor's stderr.
    Stderr,
    /// JSON lines into a writer the caller holds (`xvisor run --report`
    /// reads them as they come, and writes the trace's header and end).
    Writer(SharedWriter),
}

/// A writer shared between the caller and the supervisor's trace.
#[derive(Clone)]
pub struct SharedWriter(pub std::sync::Arc<std::sync::Mutex<dyn std::io::Write + Send>>);

impl SharedWriter {
    fn locked(&self) -> std::sync::MutexGuard<'_, dyn std::io::Write + Send + 'static> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.locked().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.locked().flush()
    }
}

impl std::fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWriter")
    }
}

impl PartialEq for SharedWriter {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedWriter {}

/// What the guest's standard input is when it has no terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinMode {
    /// xvisor's own standard input, passed through.
    Inherit,
    /// `/dev/null`.
    Null,
}

#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Unique among running instances; names its cgroups.
    pub name: String,
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
    /// The guest's whole environment.
    pub env: Vec<(String, String)>,
    /// Where the guest starts.
    pub workdir: String,
    /// Guest ids inside the instance.
    pub uid: u32,
    pub gid: u32,
    pub root: RootSpec,
    pub hostname: String,
    pub network: Network,
    /// Host ports forwarded into the instance (`-p`), with [`Network::Nat`].
    pub publish: Vec<crate::nat::Publish>,
    pub limits: Limits,
    /// The user namespace's id maps, when not xvisor's own choice
    /// (`IdMaps::for_caller`): an OCI engine's `linux.uidMappings`.
    pub id_maps: Option<xvisor_confine::identity::IdMaps>,
    /// Whether a guest started by root gets host ids of its own when xvisor
    /// chooses the maps (`id_maps` is `None`): a leased range
    /// (`xvisor_confine::idpool`), the trees that hold the guest's files
    /// (image layers, `--rootfs`, volumes) shown through its maps. `false`
    /// keeps the caller's ids, so a root caller's guest root is host root
    /// (`--userns host`; OCI mode, where the engine's config decides).
    /// Rootless, `true` maps the caller's subordinate ids too when it has
    /// them (`crate::hostobj::rootless_ids`), `false` keeps its one id.
    /// After `Instance::create` it says whether a range was leased.
    pub own_host_ids: bool,
    /// Where the instance's cgroups go, relative to the cgroup xvisor runs
    /// in (an OCI `cgroupsPath`); `None`: `xvisor-NAME` there.
    pub cgroup_path: Option<std::path::PathBuf>,
    /// A transient systemd scope to create and run in (OCI
    /// `--systemd-cgroup`): the instance's cgroups go below it.
    pub systemd_scope: Option<xvisor_confine::cgroup::ScopeRequest>,
    /// The AppArmor profile every process of the instance is executed
    /// under (an OCI `process.apparmorProfile`, which the engine loaded).
    pub apparmor_profile: Option<String>,
    /// RLIMIT_NOFILE (soft and hard).
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC (soft and hard): processes and threads per user of the
    /// instance. Set by `Instance::create` to
    /// `identity::DEFAULT_PROCESSES_PER_USER` for an instance with host ids
    /// of its own and `default_limits`, unless `limits.pids` bounds it.
    pub processes_per_user: Option<u64>,
    /// xvisor's default bounds apply where the user gave none (`xvisor
    /// run`; not `--no-limits`, not OCI mode, where the config decides).
    pub default_limits: bool,
    /// The instance is killed when this has passed since start.
    pub timeout: Option<Duration>,
    /// Give the guest a pseudo-terminal relayed to xvisor's own stdio.
    pub tty: bool,
    pub stdin: StdinMode,
    /// The system-call policy: profile and refusals.
    pub policy: Policy,
    pub trace: Option<TraceTarget>,
    /// Record every file, program and port the run uses (`--learn`): every
    /// call that carries meaning is trapped, and answered "continue".
    pub learn: bool,
    /// The guest's capabilities (inside its user namespace); `None`: the
    /// engines' default set
    /// (`xvisor_confine::identity::GUEST_ROOT_CAPABILITIES`) for uid 0,
    /// nothing inheritable or ambient.
    pub capabilities: Option<xvisor_confine::identity::CapabilitySets>,
    /// How far the capabilities of its processes (its program's, exec'd
    /// ones') may go: the engines' default set (`xvisor run`), or any
    /// (an OCI engine's config says).
    pub capability_ceiling: xvisor_confine::identity::CapabilityCeiling,
    /// Its processes set `no_new_privs` (always, under `xvisor run`; as
    /// config.json's `process.noNewPrivileges` says in OCI mode). xvisor's
    /// own filter and supervisor do not depend on it.
    pub no_new_privileges: bool,
    /// Supplementary groups of the guest (ids inside the instance).
    pub additional_gids: Vec<u32>,
    /// Descriptors 3 .. 3+N of the supervisor pass into the guest (an OCI
    /// runtime's `--preserve-fds N`).
    pub preserve_fds: u32,
    /// Kernel settings of the instance's own namespaces (`net.*`, IPC
    /// ones), written by init: `("net.ipv4.ping_group_range", "0 0")`.
    pub sysctls: Vec<(String, String)>,
    /// Every group of the instance may open ICMP echo sockets in the
    /// instance's own network namespace (`net.ipv4.ping_group_range` over
    /// its mapped groups), so `ping` works without raw sockets, which stay
    /// refused. Only with a network namespace of its own; an OCI engine sets
    /// the range itself through `sysctls`.
    pub ping_sockets: bool,
    /// A second seccomp program (`struct sock_filter` bytes: an OCI
    /// engine's profile, compiled by `xvisor_trap::rules`), installed in the
    /// guest before xvisor's own: the kernel runs both and takes the
    /// stricter answer.
    pub extra_filter: Option<Vec<u8>>,
    /// Existing namespaces to join (at most one per kind) instead of
    /// creating new ones.
    pub joined: Vec<JoinNamespace>,
    /// OCI hooks run at the instance's points of its life.
    pub hooks: crate::hooks::Hooks,
    /// Give the instance a cgroup that can be frozen (OCI `pause`), even
    /// without limits; best effort for a caller who may not create cgroups.
    pub freezable: bool,
    /// Paths and patterns a policy denies (`[fs].deny`): hidden in the
    /// instance's tree before any program of it runs.
    pub denied_paths: Vec<String>,
    /// A policy's Landlock rules (paths, TCP ports), raised inside the
    /// root wall before any program of the instance runs.
    pub access: xvisor_confine::wall::AccessRules,
    /// No memory both writable and executable in any process of the
    /// instance (PR_SET_MDWE).
    pub deny_write_execute: bool,
    /// The program itself is the instance's first process (pid 1 of its
    /// pid namespace, or a member of a joined one), and its parent is the
    /// supervisor's parent, which reaps it and reads its status (an OCI
    /// engine's subreaper): what runtime-spec asks. Otherwise (`xvisor
    /// run`) xvisor's own init is pid 1 and the program its child.
    pub program_is_init: bool,
}

impl InstanceSpec {
    /// Whether the instance joins an existing namespace of `kind`.
    pub fn joins(&self, kind: NamespaceKind) -> bool {
        self.joined.iter().any(|j| j.kind == kind)
    }
}
