//! `config.json` → [`Container`].
//!
//! The document is walked as JSON values rather than decoded into structs
//! with defaults: each object is taken key by key, and a key left over at
//! the end that the specification defines is refused with its full path
//! (`linux.intelRdt`), so nothing an engine asks for is silently dropped.
//! A key the specification does not define is not an error (it says so);
//! it is set aside and reported in [`Container::ignored`] for the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use xvisor_confine::cgroup::ScopeRequest;
use xvisor_confine::identity::{CapabilityCeiling, CapabilitySets, IdMaps, IdRange};
use xvisor_confine::rootfs::HostDevice;
use xvisor_confine::systemd::valid_unit_name;
use xvisor_confine::{Limits, RootBase, RootExtras, RootSpec, TmpfsMount, TmpfsSizes, Volume};
use xvisor_instance::hooks::{Hook, Hooks};
use xvisor_instance::{InstanceSpec, JoinNamespace, NamespaceKind, Network, StdinMode, TraceTarget};
use xvisor_trap::{Policy, Profile};

use crate::spec_fields;

/// The annotation choosing the system-call profile.
pub const PROFILE_ANNOTATION: &str = "dev.xvisor.profile";
/// The annotation naming a trace file (JSON lines).
pub const TRACE_ANNOTATION: &str = "dev.xvisor.trace";

/// The largest config.json read.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json: {path}: {message}")]
    Field { path: String, message: String },
    #[error("config.json: {0}")]
    Syntax(String),
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
}

pub(crate) fn field(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

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

/// Parses a process.json's text.
pub fn parse_process(text: &str) -> Result<ProcessConfig, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    spec_fields::take_set_aside();
    let process = Obj::new("process", value)?;
    let mut b = Builder::new(Path::new("/"), "exec");
    b.process(process)?;
    Ok(ProcessConfig {
        argv: b.argv,
        env: b.env,
        cwd: b.cwd,
        uid: b.uid,
        gid: b.gid,
        additional_gids: b.additional_gids,
        capabilities: b.capabilities,
        rlimits: b.rlimits,
        umask: b.umask,
        terminal: b.terminal,
        no_new_privileges: b.no_new_privileges,
        apparmor_profile: b.apparmor_profile,
        ignored: spec_fields::take_set_aside(),
    })
}

/// The number of a capability xvisor may grant, by name (`CAP_KILL` or
/// `KILL`, any case).
pub fn capability_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITY_NAMES.iter().find(|(n, _)| *n == full).map(|(_, c)| *c)
}
/// The most hooks of one kind.
const MAX_HOOKS: usize = 64;

/// An object being taken apart; leftover keys are sorted out by
/// [`Obj::finish`].
pub(crate) struct Obj {
    pub(crate) path: String,
    pub(crate) map: Map<String, Value>,
}

impl Obj {
    pub(crate) fn new(path: &str, value: Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_string(),
                map,
            }),
            _ => Err(field(path, "must be an object")),
        }
    }

    pub(crate) fn sub(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, `None` when absent or null.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub(crate) fn object(&mut self, key: &str) -> Result<Option<Obj>, ConfigError> {
        let path = self.sub(key);
        self.take(key).map(|v| Obj::new(&path, v)).transpose()
    }

    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(field(&path, "must be a string")),
        }
    }

    pub(crate) fn boolean(&mut self, key: &str) -> Result<bool, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(field(&path, "must be true or false")),
        }
    }

    pub(crate) fn int(&mut self, key: &str) -> Result<Option<i64>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
                .map(Some)
                .ok_or_else(|| field(&path, "must be a whole number")),
            Some(_) => Err(field(&path, "must be a number")),
        }
    }

    pub(crate) fn uint(&mut self, key: &str) -> Result<Option<u64>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| field(&path, "must be a whole number of at least 0")),
            Some(_) => Err(field(&path, "must be a number")),
        }
    }

    pub(crate) fn array(&mut self, key: &str) -> Result<Vec<Value>, ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(field(&path, "must be an array")),
        }
    }

    pub(crate) fn strings(&mut self, key: &str) -> Result<Vec<String>, ConfigError> {
        let path = self.sub(key);
        self.array(key)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(field(&format!("{path}[{i}]"), "must be a string")),
            })
            .collect()
    }

    /// Refuses `key` when present and not empty.
    pub(crate) fn refuse(&mut self, key: &str, why: &str) -> Result<(), ConfigError> {
        let path = self.sub(key);
        match self.take(key) {
            None => Ok(()),
            Some(Value::String(s)) if s.is_empty() => Ok(()),
            Some(Value::Array(a)) if a.is_empty() => Ok(()),
            Some(Value::Object(o)) if o.is_empty() => Ok(()),
            Some(_) => Err(field(&path, why)),
        }
    }

    /// Accepts `key` whatever it holds (the reason is in docs/oci.md).
    pub(crate) fn ignore(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Refuses a leftover key the specification defines (everything xvisor
    /// supports has been taken); sets aside one it does not.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if let Some(key) = self.map.keys().find(|key| spec_fields::defined(&self.path, key)) {
            return Err(field(&self.sub(key), "not supported by xvisor"));
        }
        for key in self.map.keys() {
            spec_fields::set_aside(self.sub(key));
        }
        Ok(())
    }
}

/// Whether a device cgroup rule of `kind` (`a`, `c`, `b`), `major` and
/// `minor` (absent or -1: any) covers one of the nodes an instance has:
/// null, zero, full, random, urandom (1:3, 1:5, 1:7, 1:8, 1:9), tty (5:0),
/// its devpts' ptmx (5:2) and terminals (136–143:any). All are character
/// devices.
fn denies_an_instance_node(kind: &str, major: Option<i64>, minor: Option<i64>) -> bool {
    const NODES: &[(i64, Option<i64>)] = &[
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(2)),
        (136, None),
        (137, None),
        (138, None),
        (139, None),
        (140, None),
        (141, None),
        (142, None),
        (143, None),
    ];
    NODES
        .iter()
        .any(|&(node_major, node_minor)| rule_covers(kind, major, minor, 'c', node_major, node_minor))
}

/// Whether a device cgroup rule (`kind` `a`, `c` or `b`; `major`/`minor`
/// absent or -1: any) covers the node `node_kind node_major:node_minor`
/// (`node_minor` `None`: every minor of that major).
fn rule_covers(
    kind: &str,
    major: Option<i64>,
    minor: Option<i64>,
    node_kind: char,
    node_major: i64,
    node_minor: Option<i64>,
) -> bool {
    let any = |v: Option<i64>| v.unwrap_or(-1) == -1;
    (kind == "a" || kind.starts_with(node_kind))
        && (any(major) || major == Some(node_major))
        && (any(minor) || node_minor.is_none() || minor == node_minor)
}

/// Reads and checks `BUNDLE/config.json` for container `id`.
pub fn load_bundle(bundle: &Path, id: &str) -> Result<Container, ConfigError> {
    let path = bundle.join("config.json");
    let read_error = |error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(&path).map_err(read_error)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Syntax(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(&path).map_err(read_error)?;
    parse_config(&text, bundle, id)
}

/// Parses config.json text; relative paths are taken from `bundle`.
pub fn parse_config(text: &str, bundle: &Path, id: &str) -> Result<Container, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    spec_fields::take_set_aside();
    let mut top = Obj::new("", value).map_err(|_| ConfigError::Syntax("not a JSON object".into()))?;
    let version = top
        .string("ociVersion")?
        .ok_or_else(|| field("ociVersion", "missing"))?;
    if !["1.0", "1.1", "1.2"]
        .iter()
        .any(|v| version == *v || version.starts_with(&format!("{v}.")) || version.starts_with(&format!("{v}-")))
    {
        return Err(field(
            "ociVersion",
            format!("{version:?} is not supported (runtime-spec 1.0 to 1.2 are)"),
        ));
    }
    let annotations = annotations(&mut top)?;
    let mut builder = Builder::new(bundle, id);
    let root = top.object("root")?.ok_or_else(|| field("root", "missing"))?;
    builder.root(root)?;
    let process = top
        .object("process")?
        .ok_or_else(|| field("process", "missing (xvisor needs the program to run)"))?;
    builder.process(process)?;
    let hostname = top.string("hostname")?;
    if let Some(h) = &hostname {
        if h.len() > 64 || h.contains(['\0', '/']) {
            return Err(field("hostname", "must be at most 64 characters, without '/'"));
        }
        if !h.is_empty() {
            builder.hostname = h.clone();
        }
    }
    top.refuse("domainname", "setting the NIS domain name is not supported")?;
    for (i, m) in top.array("mounts")?.into_iter().enumerate() {
        builder.mount(Obj::new(&format!("mounts[{i}]"), m)?)?;
    }
    if let Some(linux) = top.object("linux")? {
        builder.linux(linux)?;
    }
    // runtime-spec: the hostname is set in the container's UTS namespace,
    // which may be one it joins (as runc does); a pod's containers are
    // given the sandbox's own name this way.
    if let Some(join) = builder.joined.iter_mut().find(|j| j.kind == NamespaceKind::Uts) {
        join.hostname = hostname.filter(|h| !h.is_empty());
    }
    if let Some(hooks) = top.object("hooks")? {
        builder.hooks(hooks)?;
    }
    for other in ["windows", "solaris", "vm", "zos"] {
        top.refuse(other, "only Linux containers are supported")?;
    }
    top.finish()?;

    let mut policy_profile = Profile::Default;
    if let Some(name) = annotations.get(PROFILE_ANNOTATION) {
        policy_profile =
            Profile::parse(name).map_err(|e| field(&format!("annotations.{PROFILE_ANNOTATION}"), e.to_string()))?;
    }
    let trace = match annotations.get(TRACE_ANNOTATION) {
        None => None,
        Some(p) if p.starts_with('/') => Some(TraceTarget::File(PathBuf::from(p))),
        Some(_) => {
            return Err(field(
                &format!("annotations.{TRACE_ANNOTATION}"),
                "must be an absolute path",
            ))
        }
    };
    builder.finish(Policy::new(policy_profile), trace, annotations)
}

fn annotations(top: &mut Obj) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    if let Some(a) = top.object("annotations")? {
        for (k, v) in a.map {
            match v {
                Value::String(s) => {
                    out.insert(k, s);
                }
                _ => return Err(field(&format!("annotations.{k}"), "must be a string")),
            }
        }
    }
    for key in out.keys() {
        if key.starts_with("dev.xvisor.") && key != PROFILE_ANNOTATION && key != TRACE_ANNOTATION {
            return Err(field(
                &format!("annotations.{key}"),
                format!("unknown xvisor annotation (known: {PROFILE_ANNOTATION}, {TRACE_ANNOTATION})"),
            ));
        }
    }
    Ok(out)
}

/// Mount destinations xvisor always provides itself, with the file-system
/// types an engine asks for there.
const BUILT_IN_MOUNTS: &[(&str, &[&str])] = &[
    ("/proc", &["proc"]),
    ("/dev", &["tmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/dev/shm", &["tmpfs"]),
    ("/dev/mqueue", &["mqueue"]),
    ("/sys", &["sysfs"]),
    ("/sys/fs/cgroup", &["cgroup", "cgroup2"]),
];

/// Mount options that change nothing here: the instance's mount namespace
/// is private, and access-time behaviour is not a matter of isolation.
const NEUTRAL_OPTIONS: &[&str] = &[
    "private",
    "rprivate",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "lazytime",
    "nolazytime",
    "nosuid",
    "nodev",
    "suid",
    "dev",
    "exec",
    "async",
    "rw",
];

/// Capability names as config.json spells them.
const CAPABILITY_NAMES: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_DAC_READ_SEARCH", 2),
    ("CAP_FOWNER", 3),
    ("CAP_FSETID", 4),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_LINUX_IMMUTABLE", 9),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_BROADCAST", 11),
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_IPC_LOCK", 14),
    ("CAP_IPC_OWNER", 15),
    ("CAP_SYS_MODULE", 16),
    ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_SYS_PTRACE", 19),
    ("CAP_SYS_PACCT", 20),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_BOOT", 22),
    ("CAP_SYS_NICE", 23),
    ("CAP_SYS_RESOURCE", 24),
    ("CAP_SYS_TIME", 25),
    ("CAP_SYS_TTY_CONFIG", 26),
    ("CAP_MKNOD", 27),
    ("CAP_LEASE", 28),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_AUDIT_CONTROL", 30),
    ("CAP_SETFCAP", 31),
    ("CAP_MAC_OVERRIDE", 32),
    ("CAP_MAC_ADMIN", 33),
    ("CAP_SYSLOG", 34),
    ("CAP_WAKE_ALARM", 35),
    ("CAP_BLOCK_SUSPEND", 36),
    ("CAP_AUDIT_READ", 37),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
    ("CAP_CHECKPOINT_RESTORE", 40),
];

/// `RLIMIT_*` names and numbers (x86_64).
const RLIMIT_NAMES: &[(&str, u32)] = &[
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// Kernel settings that belong to the IPC namespace.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

struct Builder {
    bundle: PathBuf,
    id: String,
    rootfs: Option<PathBuf>,
    readonly_root: bool,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    capabilities: Option<CapabilitySets>,
    rlimits: Vec<Rlimit>,
    oom_score_adj: Option<i32>,
    umask: Option<u32>,
    terminal: bool,
    no_new_privileges: bool,
    hostname: String,
    volumes: Vec<Volume>,
    extras: RootExtras,
    tmpfs_sizes: TmpfsSizes,
    network: Network,
    limits: Limits,
    cgroup_path: Option<PathBuf>,
    systemd_scope: Option<ScopeRequest>,
    apparmor_profile: Option<String>,
    id_maps: Option<IdMaps>,
    /// The host nodes `linux.devices` adds, by path (become
    /// `extras.devices` at the end).
    added_devices: Vec<(String, HostDevice)>,
    sysctls: Vec<(String, String)>,
    seccomp: Option<Vec<u8>>,
    joined: Vec<JoinNamespace>,
    hooks: Hooks,
    poststop: Vec<Hook>,
}

/// The namespace kinds a container may join by path.
const JOINABLE: &[(&str, NamespaceKind)] = &[
    ("network", NamespaceKind::Network),
    ("ipc", NamespaceKind::Ipc),
    ("uts", NamespaceKind::Uts),
    ("pid", NamespaceKind::Pid),
];

impl Builder {
    fn new(bundle: &Path, id: &str) -> Self {
        Self {
            bundle: bundle.to_path_buf(),
            id: id.to_string(),
            rootfs: None,
            readonly_root: false,
            argv: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            capabilities: None,
            rlimits: Vec::new(),
            oom_score_adj: None,
            umask: None,
            terminal: false,
            no_new_privileges: false,
            hostname: "xvisor".into(),
            volumes: Vec::new(),
            extras: RootExtras::default(),
            tmpfs_sizes: TmpfsSizes::default(),
            // runc's meaning: without a network namespace entry, the host's.
            network: Network::Host,
            limits: Limits::default(),
            cgroup_path: None,
            systemd_scope: None,
            apparmor_profile: None,
            id_maps: None,
            added_devices: Vec::new(),
            sysctls: Vec::new(),
            seccomp: None,
            joined: Vec::new(),
            hooks: Hooks::default(),
            poststop: Vec::new(),
        }
    }

    fn hooks(&mut self, mut h: Obj) -> Result<(), ConfigError> {
        // prestart (deprecated) runs where createRuntime does, before it.
        for &kind in spec_fields::HOOK_KINDS {
            let entries = h.array(kind)?;
            if entries.len() > MAX_HOOKS {
                return Err(field(&format!("hooks.{kind}"), format!("at most {MAX_HOOKS} hooks")));
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let hook = hook(Obj::new(&format!("hooks.{kind}[{i}]"), entry)?)?;
                match kind {
                    "prestart" | "createRuntime" => self.hooks.create_runtime.push(hook),
                    "createContainer" => self.hooks.create_container.push(hook),
                    "startContainer" => self.hooks.start_container.push(hook),
                    "poststart" => self.hooks.poststart.push(hook),
                    _ => self.poststop.push(hook),
                }
            }
        }
        h.finish()
    }

    fn bundle_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.bundle.join(p)
        }
    }

    fn root(&mut self, mut root: Obj) -> Result<(), ConfigError> {
        let path = root.string("path")?.ok_or_else(|| field("root.path", "missing"))?;
        self.rootfs = Some(self.bundle_path(&path));
        self.readonly_root = root.boolean("readonly")?;
        root.finish()
    }

    fn process(&mut self, mut p: Obj) -> Result<(), ConfigError> {
        self.terminal = p.boolean("terminal")?;
        // The pty's size follows the console socket's side (set by the
        // engine on the master it receives).
        p.ignore("consoleSize");
        self.argv = p.strings("args")?;
        if self.argv.is_empty() {
            return Err(field("process.args", "missing or empty"));
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(field("process.args", "must not contain NUL bytes"));
        }
        p.refuse("commandLine", "is for Windows containers")?;
        for (i, e) in p.strings("env")?.into_iter().enumerate() {
            let Some((k, v)) = e.split_once('=') else {
                return Err(field(&format!("process.env[{i}]"), "expected KEY=VALUE"));
            };
            if k.is_empty() || e.contains('\0') {
                return Err(field(&format!("process.env[{i}]"), "expected KEY=VALUE"));
            }
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        let cwd = p.string("cwd")?.unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(field("process.cwd", "must be an absolute path"));
        }
        self.cwd = cwd;
        if let Some(mut user) = p.object("user")? {
            self.uid = id_of(&mut user, "uid")?;
            self.gid = id_of(&mut user, "gid")?;
            if let Some(m) = user.uint("umask")? {
                if m > 0o777 {
                    return Err(field("process.user.umask", "must be at most 0777"));
                }
                self.umask = Some(m as u32);
            }
            for (i, g) in user.array("additionalGids")?.into_iter().enumerate() {
                let path = format!("process.user.additionalGids[{i}]");
                let gid = g
                    .as_u64()
                    .and_then(|g| u32::try_from(g).ok())
                    .filter(|g| *g != u32::MAX)
                    .ok_or_else(|| field(&path, "must be a group id"))?;
                if !self.additional_gids.contains(&gid) {
                    self.additional_gids.push(gid);
                }
            }
            user.refuse("username", "is for Windows containers")?;
            user.finish()?;
        }
        if let Some(c) = p.object("capabilities")? {
            self.capabilities = Some(capabilities(c)?);
        }
        for (i, r) in p.array("rlimits")?.into_iter().enumerate() {
            let path = format!("process.rlimits[{i}]");
            let mut r = Obj::new(&path, r)?;
            let kind = r
                .string("type")?
                .ok_or_else(|| field(&format!("{path}.type"), "missing"))?;
            let (name, resource) = RLIMIT_NAMES
                .iter()
                .find(|(n, _)| *n == kind)
                .copied()
                .ok_or_else(|| field(&format!("{path}.type"), format!("unknown resource {kind:?}")))?;
            let hard = r
                .uint("hard")?
                .ok_or_else(|| field(&format!("{path}.hard"), "missing"))?;
            let soft = r
                .uint("soft")?
                .ok_or_else(|| field(&format!("{path}.soft"), "missing"))?;
            r.finish()?;
            if soft > hard {
                return Err(field(
                    &path,
                    format!("{name}: soft limit {soft} is above hard limit {hard}"),
                ));
            }
            self.rlimits.retain(|l| l.resource != resource);
            self.rlimits.push(Rlimit {
                resource,
                name,
                soft,
                hard,
            });
        }
        // As asked: xvisor's filter and supervisor do not depend on it, and
        // what a set-uid program can gain is an id of the instance's own
        // user namespace.
        self.no_new_privileges = p.boolean("noNewPrivileges")?;
        // The engine has loaded it; every process of the container is
        // executed under it, beside xvisor's own confinement.
        if let Some(profile) = p.string("apparmorProfile")? {
            if profile.is_empty() || profile.len() > 4096 || profile.contains(['\0', '\n']) {
                return Err(field("process.apparmorProfile", "not a profile name"));
            }
            self.apparmor_profile = Some(profile);
        }
        p.refuse("selinuxLabel", "SELinux labels are not supported")?;
        if let Some(adj) = p.int("oomScoreAdj")? {
            if !(-1000..=1000).contains(&adj) {
                return Err(field("process.oomScoreAdj", "must be between -1000 and 1000"));
            }
            self.oom_score_adj = Some(adj as i32);
        }
        p.refuse("scheduler", "scheduling policies are not supported")?;
        p.refuse("ioPriority", "I/O priorities are not supported")?;
        p.refuse("execCPUAffinity", "CPU affinity is not supported")?;
        p.finish()
    }

    fn mount(&mut self, mut m: Obj) -> Result<(), ConfigError> {
        let path = m.path.clone();
        let destination = m
            .string("destination")?
            .ok_or_else(|| field(&format!("{path}.destination"), "missing"))?;
        let kind = m.string("type")?.unwrap_or_default();
        let source = m.string("source")?.unwrap_or_default();
        let options = m.strings("options")?;
        m.refuse("uidMappings", "id-mapped mounts are not supported")?;
        m.refuse("gidMappings", "id-mapped mounts are not supported")?;
        m.finish()?;
        let is_bind = kind == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let dest = normalize(&destination)
            .ok_or_else(|| field(&format!("{path}.destination"), "must be an absolute path without '..'"))?;
        if is_bind && dest == "/dev/shm" {
            // The instance's own /dev/shm (an engine's shared one, for
            // --ipc sharing between containers, is not joined).
            return Ok(());
        }
        if !is_bind {
            if let Some((_, kinds)) = BUILT_IN_MOUNTS.iter().find(|(d, _)| *d == dest) {
                if kinds.contains(&kind.as_str()) {
                    // The engine's size for /dev/shm (Docker's --shm-size)
                    // bounds the instance's own.
                    if dest == "/dev/shm" {
                        let size = options.iter().find_map(|o| o.strip_prefix("size="));
                        if let Some(size) = size {
                            self.tmpfs_sizes.shm = parse_size(size)
                                .filter(|s| *s > 0)
                                .ok_or_else(|| field(&path, "bad /dev/shm size"))?;
                        }
                    }
                    // Provided by the instance itself (docs/oci.md says how).
                    return Ok(());
                }
            }
        }
        let mut readonly = false;
        let mut noexec = false;
        let mut size = None;
        let mut mode = None;
        for (i, o) in options.iter().enumerate() {
            let opath = format!("{path}.options[{i}]");
            match o.as_str() {
                "ro" => readonly = true,
                "noexec" => noexec = true,
                "bind" | "rbind" if is_bind => {}
                o if NEUTRAL_OPTIONS.contains(&o) => {}
                o if kind == "tmpfs" && o.starts_with("size=") => {
                    size = Some(parse_size(&o["size=".len()..]).ok_or_else(|| field(&opath, "bad tmpfs size"))?)
                }
                o if kind == "tmpfs" && o.starts_with("mode=") => {
                    mode = Some(
                        u32::from_str_radix(&o["mode=".len()..], 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| field(&opath, "bad tmpfs mode"))?,
                    )
                }
                // Inode limits are a size matter; the size limit applies.
                o if kind == "tmpfs" && o.starts_with("nr_inodes=") => {}
                other => return Err(field(&opath, format!("mount option {other:?} is not supported"))),
            }
        }
        if is_bind {
            if source.is_empty() {
                return Err(field(&format!("{path}.source"), "missing"));
            }
            if noexec {
                return Err(field(&path, "noexec bind mounts are not supported"));
            }
            if dest == "/" {
                return Err(field(&format!("{path}.destination"), "cannot bind over the root"));
            }
            self.volumes.push(Volume {
                host_path: self.bundle_path(&source),
                target: dest,
                writable: !readonly,
            });
            return Ok(());
        }
        match kind.as_str() {
            "tmpfs" => {
                if dest == "/" {
                    return Err(field(&format!("{path}.destination"), "cannot mount over the root"));
                }
                self.extras.tmpfs.push(TmpfsMount {
                    target: dest,
                    size,
                    mode,
                    readonly,
                    noexec,
                    source: (!source.is_empty() && !source.contains('\0')).then(|| source.clone()),
                });
                Ok(())
            }
            "" => Err(field(&format!("{path}.type"), "missing")),
            other => Err(field(
                &format!("{path}.type"),
                format!("{other:?} mounts at {dest} are not supported (only bind and tmpfs mounts, and the standard /proc, /dev, /sys ones)"),
            )),
        }
    }

    fn linux(&mut self, mut l: Obj) -> Result<(), ConfigError> {
        let namespaces = l.array("namespaces")?;
        // A kind without an entry is the runtime's own (the host's):
        // honoured for the network (hostNetwork), refused for pid and ipc
        // (docs/kubernetes.md, "Host namespaces"), never narrowed silently.
        for (kind, field_name) in [("pid", "hostPID"), ("ipc", "hostIPC")] {
            let listed = namespaces
                .iter()
                .any(|ns| ns.get("type").and_then(Value::as_str) == Some(kind));
            if !listed {
                return Err(field(
                    "linux.namespaces",
                    format!(
                        "no {kind} namespace: sharing the host's ({field_name}) is not supported; an instance always has its own {kind} namespace"
                    ),
                ));
            }
        }
        for (i, ns) in namespaces.into_iter().enumerate() {
            let path = format!("linux.namespaces[{i}]");
            let mut ns = Obj::new(&path, ns)?;
            let kind = ns
                .string("type")?
                .ok_or_else(|| field(&format!("{path}.type"), "missing"))?;
            let ns_path = ns.string("path")?.filter(|p| !p.is_empty());
            ns.finish()?;
            if let Some(p) = ns_path {
                let origin = format!("{path}.path");
                let Some((_, joinable)) = JOINABLE.iter().find(|(name, _)| *name == kind) else {
                    return Err(field(
                        &origin,
                        format!(
                            "joining an existing {kind} namespace is not supported (only network, ipc, uts and pid namespaces can be joined; xvisor always makes the instance its own mount and cgroup namespaces, and its own user namespace unless it joins a pod's pid namespace)"
                        ),
                    ));
                };
                if !p.starts_with('/') || p.contains('\0') {
                    return Err(field(&origin, "must be an absolute path"));
                }
                if self.joined.iter().any(|j| j.kind == *joinable) {
                    return Err(field(&origin, format!("a second {kind} namespace to join")));
                }
                self.joined.push(JoinNamespace {
                    kind: *joinable,
                    path: PathBuf::from(p),
                    origin,
                    hostname: None,
                });
                if *joinable == NamespaceKind::Network {
                    self.network = Network::Joined;
                }
                continue;
            }
            match kind.as_str() {
                "network" => self.network = Network::None,
                // Always created; pid and ipc are checked above. (Without a
                // mount, user or cgroup entry the instance still gets its
                // own: they are what it is made of. docs/kubernetes.md.)
                "pid" | "mount" | "ipc" | "uts" | "user" | "cgroup" => {}
                other => {
                    return Err(field(
                        &format!("{path}.type"),
                        format!("{other:?} namespaces are not supported"),
                    ))
                }
            }
        }
        let uid = id_ranges(&mut l, "uidMappings")?;
        let gid = id_ranges(&mut l, "gidMappings")?;
        self.id_maps = match (uid, gid) {
            (None, None) => None,
            (Some(uid), Some(gid)) => Some(IdMaps::Given { uid, gid }),
            (Some(_), None) => return Err(field("linux.gidMappings", "missing (linux.uidMappings is given)")),
            (None, Some(_)) => return Err(field("linux.uidMappings", "missing (linux.gidMappings is given)")),
        };
        l.refuse("timeOffsets", "time namespaces are not supported")?;
        // What engines write for a privileged container: every device
        // allowed, and every node of the host's /dev listed. An instance
        // never takes the host's devices that way (the disks, /dev/mem,
        // /dev/kmsg would be open to a root whose id is a host id):
        // privileged means every capability inside the instance only.
        let privileged_devices = allows_every_device(l.map.get("resources"));
        for (i, d) in l.array("devices")?.into_iter().enumerate() {
            let path = format!("linux.devices[{i}]");
            let mut d = Obj::new(&path, d)?;
            let dev_path = d.string("path")?.unwrap_or_default();
            let kind = d.string("type")?.unwrap_or_default();
            let major = d.int("major")?;
            let minor = d.int("minor")?;
            // A host node is shown as it is on the host.
            for key in ["fileMode", "uid", "gid"] {
                d.ignore(key);
            }
            d.finish()?;
            if xvisor_confine::rootfs::is_default_device(&dev_path) {
                continue;
            }
            if privileged_devices {
                spec_fields::set_aside(format!(
                    "{path} ({dev_path}: a host device listed for a privileged container, not given)"
                ));
                continue;
            }
            let node = host_device(&dev_path, &kind, major, minor).map_err(|why| field(&path, why))?;
            self.added_devices.push((dev_path, node));
        }
        if let Some(path) = l.string("cgroupsPath")? {
            self.cgroup_path = cgroup_path(&path).map_err(|why| field("linux.cgroupsPath", why))?;
            self.systemd_scope = systemd_scope(&path);
        }
        if let Some(r) = l.object("resources")? {
            self.resources(r)?;
        }
        if let Some(sysctl) = l.object("sysctl")? {
            for (key, value) in sysctl.map {
                let path = format!("linux.sysctl.{key}");
                let Value::String(value) = value else {
                    return Err(field(&path, "must be a string"));
                };
                let namespaced = IPC_SYSCTLS.contains(&key.as_str())
                    || key.starts_with("fs.mqueue.")
                    || (key.starts_with("net.") && self.network != Network::Host);
                let clean = !key.is_empty()
                    && key.split('.').all(|part| {
                        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    });
                if !namespaced || !clean || value.contains('\0') {
                    return Err(field(
                        &path,
                        "only settings of the instance's own namespaces may be set (net.* with a network namespace, kernel.msg*/sem/shm*, fs.mqueue.*)",
                    ));
                }
                self.sysctls.push((key, value));
            }
        }
        // Stacked with xvisor's own filter: the stricter answer wins.
        if let Some(profile) = l.object("seccomp")? {
            self.seccomp = Some(crate::seccomp::compile(profile)?);
        }
        let rootfs_propagation = l.string("rootfsPropagation")?.unwrap_or_default();
        if !["", "private", "rprivate", "slave", "rslave"].contains(&rootfs_propagation.as_str()) {
            return Err(field(
                "linux.rootfsPropagation",
                format!("{rootfs_propagation:?} is not supported (the instance's mounts are private)"),
            ));
        }
        for (key, list) in [("maskedPaths", true), ("readonlyPaths", false)] {
            for (i, p) in l.strings(key)?.into_iter().enumerate() {
                let Some(p) = normalize(&p).filter(|p| p != "/") else {
                    return Err(field(
                        &format!("linux.{key}[{i}]"),
                        "must be an absolute path without '..'",
                    ));
                };
                if list {
                    self.extras.masked.push(p);
                } else {
                    self.extras.readonly.push(p);
                }
            }
        }
        l.refuse("mountLabel", "SELinux labels are not supported")?;
        l.refuse("intelRdt", "Intel RDT is not supported")?;
        l.refuse("personality", "execution domains are not supported")?;
        l.refuse("memoryPolicy", "NUMA memory policies are not supported")?;
        l.refuse("netDevices", "moving network devices in is not supported")?;
        l.finish()
    }

    fn resources(&mut self, mut r: Obj) -> Result<(), ConfigError> {
        // (path, allow, type, major, minor) of every rule, in order.
        let mut rules = Vec::new();
        for (i, d) in r.array("devices")?.into_iter().enumerate() {
            let path = format!("linux.resources.devices[{i}]");
            let mut d = Obj::new(&path, d)?;
            let allow = d.boolean("allow")?;
            let kind = d.string("type")?.unwrap_or_else(|| "a".into());
            let major = d.int("major")?;
            let minor = d.int("minor")?;
            d.ignore("access");
            d.finish()?;
            // The instance's /dev holds only the default nodes and device
            // files elsewhere are unusable (nodev): allowing changes
            // nothing, denying everything is what is already true, and
            // denying a device the instance has no node for too (Docker
            // denies /dev/fuse after its allow list). A denial that would
            // reach one of the instance's own nodes would have to be
            // enforced: refused.
            let deny_all = kind == "a" && major.unwrap_or(-1) == -1 && minor.unwrap_or(-1) == -1;
            if !allow && !deny_all && denies_an_instance_node(&kind, major, minor) {
                return Err(field(
                    &path,
                    "denying one of the instance's devices is not supported (its /dev has only null, zero, full, random, urandom, tty, ptmx and its own pts)",
                ));
            }
            rules.push((path, allow, kind, major, minor));
        }
        // An added node must be allowed by the last rule that covers it, if
        // any (nothing enforces a denial: the node is there or not).
        for (dev, node) in &self.added_devices {
            let last = rules.iter().rev().find(|(_, _, kind, major, minor)| {
                rule_covers(kind, *major, *minor, node.kind, node.major, Some(node.minor))
            });
            if let Some((rule, false, ..)) = last {
                return Err(field(
                    rule,
                    format!(
                        "denies {dev} ({} {}:{}), which linux.devices adds: a node that is there cannot be denied",
                        node.kind, node.major, node.minor
                    ),
                ));
            }
        }
        if let Some(mut m) = r.object("memory")? {
            if let Some(limit) = m.int("limit")? {
                if limit > 0 {
                    self.limits.memory_bytes = Some(limit as u64);
                }
            }
            // The limit covers swap too: xvisor never lets an instance
            // swap beyond it (stricter than any swap value asked).
            m.ignore("swap");
            // A soft target, not a limit.
            m.ignore("reservation");
            m.ignore("swappiness");
            m.ignore("useHierarchy");
            m.ignore("checkBeforeUpdate");
            m.refuse("kernel", "kernel memory limits are not supported")?;
            m.refuse("kernelTCP", "kernel TCP memory limits are not supported")?;
            if m.boolean("disableOOMKiller")? {
                return Err(field(
                    "linux.resources.memory.disableOOMKiller",
                    "disabling the OOM killer is not supported",
                ));
            }
            m.finish()?;
        }
        if let Some(mut p) = r.object("pids")? {
            if let Some(limit) = p.int("limit")? {
                if limit > 0 {
                    self.limits.pids = Some(limit as u64);
                }
            }
            p.finish()?;
        }
        if let Some(mut c) = r.object("cpu")? {
            let quota = c.int("quota")?;
            let period = c.uint("period")?.filter(|p| *p > 0);
            if let Some(period) = period {
                if !(1000..=1_000_000).contains(&period) {
                    return Err(field("linux.resources.cpu.period", "must be 1000 to 1000000 µs"));
                }
                self.limits.cpu_period_us = Some(period);
            }
            if let Some(q) = quota.filter(|q| *q > 0) {
                self.limits.cpus = Some(q as f64 / period.unwrap_or(100_000) as f64);
            }
            if let Some(shares) = c.uint("shares")?.filter(|s| *s > 0) {
                if !(2..=262_144).contains(&shares) {
                    return Err(field("linux.resources.cpu.shares", "must be 2 to 262144"));
                }
                self.limits.cpu_shares = Some(shares);
            }
            for (key, set) in [
                ("cpus", &mut self.limits.cpuset_cpus),
                ("mems", &mut self.limits.cpuset_mems),
            ] {
                if let Some(list) = c.string(key)?.filter(|l| !l.is_empty()) {
                    if !is_cpu_list(&list) {
                        return Err(field(
                            &format!("linux.resources.cpu.{key}"),
                            format!("{list:?} is not a list such as 0-3,6"),
                        ));
                    }
                    *set = Some(list);
                }
            }
            let rt_runtime = c.int("realtimeRuntime")?;
            let rt_period = c.uint("realtimePeriod")?;
            if rt_runtime.is_some() || rt_period.is_some() {
                self.limits.cpu_realtime = Some((rt_period, rt_runtime));
            }
            c.refuse("burst", "CPU burst is not supported")?;
            c.refuse("idle", "the idle CPU policy is not supported")?;
            c.finish()?;
        }
        if let Some(mut b) = r.object("blockIO")? {
            // Docker sends `{"weight": 0}`: 0 means no weight (as for runc).
            for key in ["weight", "leafWeight"] {
                if b.uint(key)?.is_some_and(|w| w > 0) {
                    return Err(field(&b.sub(key), "block I/O weights are not supported"));
                }
            }
            for key in [
                "weightDevice",
                "throttleReadBpsDevice",
                "throttleWriteBpsDevice",
                "throttleReadIOPSDevice",
                "throttleWriteIOPSDevice",
            ] {
                b.refuse(key, "block I/O limits are not supported")?;
            }
            b.finish()?;
        }
        r.refuse("hugepageLimits", "huge page limits are not supported")?;
        r.refuse("network", "network class and priority are not supported")?;
        r.refuse("rdma", "RDMA limits are not supported")?;
        r.refuse("unified", "cgroup v2 files are not supported")?;
        r.finish()
    }

    fn finish(
        self,
        policy: Policy,
        trace: Option<TraceTarget>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Container, ConfigError> {
        let rootfs = self.rootfs.ok_or_else(|| field("root.path", "missing"))?;
        // The program's ids must exist in its user namespace.
        if let Some(IdMaps::Given { uid, gid }) = &self.id_maps {
            // The instance's init runs as the container's root.
            if !IdRange::maps(uid, 0) {
                return Err(field(
                    "linux.uidMappings",
                    "uid 0 (the container's root) must be mapped",
                ));
            }
            if !IdRange::maps(gid, 0) {
                return Err(field(
                    "linux.gidMappings",
                    "gid 0 (the container's root) must be mapped",
                ));
            }
            if !IdRange::maps(uid, self.uid) {
                return Err(field(
                    "process.user.uid",
                    format!("{} is not mapped by linux.uidMappings", self.uid),
                ));
            }
            let groups = std::iter::once(("process.user.gid".to_string(), self.gid)).chain(
                self.additional_gids
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("process.user.additionalGids[{i}]"), *g)),
            );
            for (path, g) in groups {
                if !IdRange::maps(gid, g) {
                    return Err(field(&path, format!("{g} is not mapped by linux.gidMappings")));
                }
            }
        }
        let mut extras = self.extras;
        extras.devices = self.added_devices.into_iter().map(|(path, _)| path).collect();
        extras.readonly_root = self.readonly_root;
        extras.joined_ipc = self.joined.iter().any(|j| j.kind == NamespaceKind::Ipc);
        let nofile = self
            .rlimits
            .iter()
            .find(|l| l.name == "RLIMIT_NOFILE" && l.soft == l.hard)
            .map(|l| l.hard);
        let spec = InstanceSpec {
            name: self.id,
            argv: self.argv,
            env: self.env,
            workdir: self.cwd.clone(),
            uid: self.uid,
            gid: self.gid,
            root: RootSpec {
                // The bundle's root itself, so the container's writes stay
                // in it for the engine, as with runc (docs/oci.md).
                base: RootBase::Bundle { path: rootfs },
                volumes: self.volumes,
                home: "/root".into(),
                home_owner: (self.uid, self.gid),
                hostname: self.hostname.clone(),
                // Engines mount their own.
                resolv_conf: None,
                workdir: Some(self.cwd),
                extras,
                tmpfs_sizes: self.tmpfs_sizes,
            },
            hostname: self.hostname,
            network: self.network,
            publish: Vec::new(),
            limits: self.limits,
            cgroup_path: self.cgroup_path,
            systemd_scope: None,
            apparmor_profile: self.apparmor_profile.clone(),
            id_maps: self.id_maps,
            own_host_ids: false,
            processes_per_user: None,
            default_limits: false,
            nofile,
            timeout: None,
            tty: self.terminal,
            stdin: StdinMode::Inherit,
            policy,
            trace,
            learn: false,
            capabilities: self.capabilities,
            // The config decides; capabilities stay the instance's own.
            capability_ceiling: CapabilityCeiling::Any,
            no_new_privileges: self.no_new_privileges,
            additional_gids: self.additional_gids,
            preserve_fds: 0,
            sysctls: self.sysctls,
            extra_filter: self.seccomp,
            joined: self.joined,
            hooks: self.hooks,
            // Every container can be paused (docs/oci.md).
            freezable: true,
            denied_paths: Vec::new(),
            access: Default::default(),
            deny_write_execute: false,
            program_is_init: true,
        };
        Ok(Container {
            spec,
            rlimits: self.rlimits,
            oom_score_adj: self.oom_score_adj,
            umask: self.umask,
            annotations,
            poststop: self.poststop,
            ignored: spec_fields::take_set_aside(),
            systemd_scope: self.systemd_scope,
        })
    }
}

/// Whether `linux.resources` ends its device rules with one allowing every
/// device (`{"allow": true}` without type, major or minor, or type `a`):
/// the shape of a privileged container's config.
fn allows_every_device(resources: Option<&Value>) -> bool {
    let Some(last) = resources
        .and_then(|r| r.get("devices"))
        .and_then(Value::as_array)
        .and_then(|rules| rules.last())
    else {
        return false;
    };
    let any = |key: &str| last.get(key).is_none_or(Value::is_null);
    last.get("allow").and_then(Value::as_bool) == Some(true)
        && last.get("type").and_then(Value::as_str).is_none_or(|t| t == "a")
        && any("major")
        && any("minor")
}

/// Checks that `path` is a host device node of `kind` (`c`, `u` or `b`)
/// and, where given, of that major and minor number; returns what it is.
fn host_device(path: &str, kind: &str, major: Option<i64>, minor: Option<i64>) -> Result<HostDevice, String> {
    let wanted = match kind {
        "c" | "u" => 'c',
        "b" => 'b',
        "p" => return Err(format!("device {path}: FIFOs are not supported")),
        other => return Err(format!("device {path}: unknown type {other:?} (c, u, b)")),
    };
    let found = xvisor_confine::rootfs::host_device(path)?;
    let differs = |asked: Option<i64>, found: i64| asked.is_some_and(|a| a != found);
    if found.kind != wanted || differs(major, found.major) || differs(minor, found.minor) {
        return Err(format!(
            "device {path}: the host's node is {} {}:{}, not {wanted} {}:{}",
            found.kind,
            found.major,
            found.minor,
            major.map_or("*".into(), |m| m.to_string()),
            minor.map_or("*".into(), |m| m.to_string())
        ));
    }
    Ok(found)
}

/// `linux.uidMappings` or `gidMappings`: `None` when absent or empty.
fn id_ranges(l: &mut Obj, key: &str) -> Result<Option<Vec<IdRange>>, ConfigError> {
    let path = l.sub(key);
    let mut ranges = Vec::new();
    for (i, entry) in l.array(key)?.into_iter().enumerate() {
        let entry_path = format!("{path}[{i}]");
        let mut e = Obj::new(&entry_path, entry)?;
        let mut id = |name: &str| -> Result<u32, ConfigError> {
            let value = e
                .uint(name)?
                .ok_or_else(|| field(&format!("{entry_path}.{name}"), "missing"))?;
            u32::try_from(value).map_err(|_| field(&format!("{entry_path}.{name}"), "must be below 4294967296"))
        };
        let (inside, outside, count) = (id("containerID")?, id("hostID")?, id("size")?);
        e.finish()?;
        ranges.push(IdRange { inside, outside, count });
    }
    if ranges.is_empty() {
        return Ok(None);
    }
    IdRange::check_all(&ranges).map_err(|why| field(&path, why))?;
    Ok(Some(ranges))
}

/// A `cgroupsPath` as a path below the cgroup xvisor runs in (`None`
/// for an empty one): `/a/b` and `a/b` alike, since xvisor never creates
/// cgroups elsewhere — on a host where it runs in the root cgroup, an
/// absolute path means what it means to runc. The systemd form
/// `SLICE:PREFIX:NAME` becomes the directory systemd would use,
/// `a.slice/a-b.slice/PREFIX-NAME.scope` for `a-b.slice`.
fn cgroup_path(value: &str) -> Result<Option<PathBuf>, String> {
    const MAX_PATH: usize = 4096;
    if value.len() > MAX_PATH {
        return Err(format!("longer than {MAX_PATH} bytes"));
    }
    let relative = match value.split(':').collect::<Vec<_>>()[..] {
        [_] => value.trim_start_matches('/').to_string(),
        [slice, prefix, name] => {
            let mut path = expand_slice(slice)?;
            if !name.is_empty() {
                path.push_str(&if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}-{name}.scope")
                });
            }
            path
        }
        _ => return Err(format!("{value:?} is neither a path nor SLICE:PREFIX:NAME")),
    };
    let mut out = PathBuf::new();
    for part in relative.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.len() > 255 || part.chars().any(char::is_control) {
            return Err(format!("{value:?}: {part:?} is not a cgroup name"));
        }
        out.push(part);
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// A `cgroupsPath` of the form `SLICE:PREFIX:NAME` (already accepted by
/// [`cgroup_path`]) as the scope systemd's driver makes: `PREFIX-NAME.scope`
/// (`NAME` itself when `PREFIX` is empty) in `SLICE` (the manager's
/// default when empty). `None` for a plain path or a name that is not a
/// scope's.
fn systemd_scope(value: &str) -> Option<ScopeRequest> {
    let [slice, prefix, name] = value.split(':').collect::<Vec<_>>()[..] else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    let unit = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    let slice = (!slice.is_empty()).then(|| slice.to_string());
    let valid = valid_unit_name(&unit, ".scope") && slice.as_deref().is_none_or(|s| valid_unit_name(s, ".slice"));
    valid.then_some(ScopeRequest { unit, slice })
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice/` (empty or `-.slice`:
/// the root).
fn expand_slice(slice: &str) -> Result<String, String> {
    // systemd's own limit on a unit name; it also bounds the expansion,
    // which repeats each prefix.
    const UNIT_NAME_MAX: usize = 255;
    if slice.is_empty() || slice == "-.slice" {
        return Ok(String::new());
    }
    if slice.len() > UNIT_NAME_MAX {
        return Err(format!(
            "a slice name of {} bytes is longer than systemd allows ({UNIT_NAME_MAX})",
            slice.len()
        ));
    }
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("{slice:?} is not a systemd slice name"));
    };
    if stem.is_empty() || stem.contains('/') || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("{slice:?} is not a systemd slice name"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push_str(&format!("{prefix}.slice/"));
    }
    Ok(path)
}

/// A CPU or memory-node list as cgroups take it: `0`, `0-3`, `0-3,6,8-9`.
fn is_cpu_list(list: &str) -> bool {
    const MAX_LIST: usize = 1024;
    let number = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    list.len() <= MAX_LIST
        && list.split(',').all(|item| match item.split_once('-') {
            Some((a, b)) => number(a) && number(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
            None => number(item),
        })
}

/// One hook: `path` (absolute), `args`, `env`, `timeout` (seconds, > 0).
fn hook(mut h: Obj) -> Result<Hook, ConfigError> {
    let origin = h.path.clone();
    let path = h
        .string("path")?
        .ok_or_else(|| field(&format!("{origin}.path"), "missing"))?;
    if !path.starts_with('/') || path.contains('\0') {
        return Err(field(&format!("{origin}.path"), "must be an absolute path"));
    }
    let args = h.strings("args")?;
    if args.iter().any(|a| a.contains('\0')) {
        return Err(field(&format!("{origin}.args"), "must not contain NUL bytes"));
    }
    let mut env = Vec::new();
    for (i, e) in h.strings("env")?.into_iter().enumerate() {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !e.contains('\0') => env.push((k.to_string(), v.to_string())),
            _ => return Err(field(&format!("{origin}.env[{i}]"), "expected KEY=VALUE")),
        }
    }
    let timeout = match h.int("timeout")? {
        None => None,
        Some(t) if t > 0 => Some(std::time::Duration::from_secs(t as u64)),
        Some(_) => return Err(field(&format!("{origin}.timeout"), "must be greater than zero")),
    };
    h.finish()?;
    Ok(Hook {
        origin,
        path: PathBuf::from(path),
        args,
        env,
        timeout,
    })
}

fn id_of(user: &mut Obj, key: &str) -> Result<u32, ConfigError> {
    let path = user.sub(key);
    match user.uint(key)? {
        None => Ok(0),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n != u32::MAX)
            .ok_or_else(|| field(&path, "must be an id below 4294967295")),
    }
}

/// The capability sets. Granted (bounding, and for uid 0 permitted and
/// effective): what is both permitted and in the bounding set (a process can
/// raise any permitted capability into its effective set itself, so
/// effective adds nothing). Inheritable: as given, within the bounding set
/// (the kernel takes no other). Ambient: as given, each both granted and
/// inheritable (the kernel raises no other). Refused when a set names no
/// capability, or one that cannot be honoured.
fn capabilities(mut c: Obj) -> Result<CapabilitySets, ConfigError> {
    let mut sets: Vec<(&str, Vec<u32>)> = Vec::new();
    for key in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        let path = c.sub(key);
        let mut set = Vec::new();
        for (i, name) in c.strings(key)?.into_iter().enumerate() {
            match CAPABILITY_NAMES.iter().find(|(n, _)| *n == name) {
                // Inside the instance's user namespace, any: the filter and
                // the supervisor still decide every call.
                Some((_, number)) if *number <= xvisor_sys::caps::last_cap() => set.push(*number),
                // One a newer kernel has: nothing to grant here (runc
                // passes over them the same way), said in the log.
                Some(_) => spec_fields::set_aside(format!("{path}[{i}] ({name}: unknown to this kernel)")),
                None => return Err(field(&format!("{path}[{i}]"), format!("{name} is not a capability"))),
            }
        }
        sets.push((key, set));
    }
    let (inheritable_path, ambient_path) = (c.sub("inheritable"), c.sub("ambient"));
    c.finish()?;
    let get = |k: &str| {
        sets.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    let name_of = |number: u32| {
        CAPABILITY_NAMES
            .iter()
            .find(|(_, n)| *n == number)
            .map_or("?", |(n, _)| n)
    };
    let bounding = get("bounding");
    let permitted = get("permitted");
    let inheritable = get("inheritable");
    let ambient = get("ambient");
    let granted: Vec<u32> = permitted.iter().copied().filter(|c| bounding.contains(c)).collect();
    if let Some((i, c)) = inheritable.iter().enumerate().find(|(_, c)| !bounding.contains(c)) {
        return Err(field(
            &format!("{inheritable_path}[{i}]"),
            format!(
                "{} is not in the bounding set (a process can inherit only capabilities of its bounding set)",
                name_of(*c)
            ),
        ));
    }
    for (i, c) in ambient.iter().enumerate() {
        let missing: Vec<&str> = [
            ("bounding", &bounding),
            ("permitted", &permitted),
            ("inheritable", &inheritable),
        ]
        .iter()
        .filter(|(_, set)| !set.contains(c))
        .map(|(name, _)| *name)
        .collect();
        let sets = match missing.as_slice() {
            [] => continue,
            [one] => format!("{one} set"),
            [first @ .., last] => format!("{} and {last} sets", first.join(", ")),
        };
        return Err(field(
            &format!("{ambient_path}[{i}]"),
            format!(
                "{} is not in the {sets} (an ambient capability must be in the bounding, permitted and inheritable sets)",
                name_of(*c)
            ),
        ));
    }
    let sets = CapabilitySets {
        granted,
        inheritable,
        ambient,
    }
    .normalized();
    debug_assert!(sets.violation(CapabilityCeiling::Any).is_none());
    Ok(sets)
}

/// `/a//b/./c/` → `/a/b/c`; `None` for relative paths and `..`.
fn normalize(path: &str) -> Option<String> {
    let parts = xvisor_confine::rootfs::instance_path_components(path)?;
    Some(format!("/{}", parts.join("/")))
}

/// tmpfs sizes: bytes, or with k, m, g (binary) suffixes.
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, factor) = match lower.chars().last()? {
        'k' => (&lower[..lower.len() - 1], 1u64 << 10),
        'm' => (&lower[..lower.len() - 1], 1 << 20),
        'g' => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

/// A config.json for `xvisor spec`: runs `sh` in `rootfs`, with the
/// namespaces, mounts and masked paths engines use.
pub fn default_config(rootless: bool) -> Value {
    let _ = rootless;
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "xvisor",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvisor_sys::caps::cap;

    fn parse(v: Value) -> Result<Container, ConfigError> {
        parse_config(&v.to_string(), Path::new("/bundle"), "test")
    }

    #[test]
    fn the_default_config_is_accepted() {
        let c = parse(default_config(false)).unwrap();
        assert_eq!(c.spec.argv, vec!["sh"]);
        assert!(c.spec.tty);
        assert_eq!(c.spec.network, Network::None);
        assert_eq!(c.spec.nofile, Some(1024));
        assert!(c.spec.root.extras.readonly_root);
        assert!(c.spec.root.extras.masked.contains(&"/proc/kcore".to_string()));
        assert_eq!(
            c.spec.root.base,
            RootBase::Bundle {
                path: PathBuf::from("/bundle/rootfs")
            }
        );
        let caps = c.spec.capabilities.unwrap();
        assert_eq!(caps.granted, vec![cap::KILL, cap::NET_BIND_SERVICE, cap::AUDIT_WRITE]);
        assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
    }

    fn capability_sets(uid: u32, caps: Value) -> Result<CapabilitySets, ConfigError> {
        let mut config = default_config(false);
        config["process"]["user"]["uid"] = Value::from(uid);
        config["process"]["capabilities"] = caps;
        parse(config).map(|c| c.spec.capabilities.unwrap())
    }

    #[test]
    fn inheritable_and_ambient_capabilities_are_honoured() {
        // What the conformance suite's generator writes: all five sets the
        // engines' 14.
        let all: Vec<&str> = CAPABILITY_NAMES.iter().map(|(n, _)| *n).collect();
        let every = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all, "inheritable": all, "ambient": all
        });
        let sets = capability_sets(0, every.clone()).unwrap();
        let mut numbers: Vec<u32> = CAPABILITY_NAMES.iter().map(|(_, c)| *c).collect();
        numbers.sort_unstable();
        assert_eq!(sets.granted, numbers);
        assert_eq!(sets.inheritable, numbers);
        assert_eq!(sets.ambient, numbers);
        // A user other than root gets its ambient set as well.
        assert_eq!(capability_sets(1000, every).unwrap().ambient, numbers);
        let sets = capability_sets(
            1000,
            serde_json::json!({
                "bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL"],
                "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
                "ambient": ["CAP_NET_BIND_SERVICE"]
            }),
        )
        .unwrap();
        assert_eq!(sets.granted, vec![cap::KILL, cap::NET_BIND_SERVICE]);
        // Inheritable may name bounding capabilities that are not permitted.
        assert_eq!(sets.inheritable, vec![cap::CHOWN, cap::NET_BIND_SERVICE]);
        assert_eq!(sets.ambient, vec![cap::NET_BIND_SERVICE]);
    }

    #[test]
    fn inheritable_and_ambient_capabilities_that_cannot_be_honoured_are_refused() {
        for (caps, needle) in [
            (
                serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL", "CAP_CHOWN"]}),
                "process.capabilities.inheritable[1]: CAP_CHOWN is not in the bounding set",
            ),
            (
                serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}),
                "process.capabilities.ambient[0]: CAP_KILL is not in the inheritable set",
            ),
            (
                serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"],
                                   "inheritable": ["CAP_KILL", "CAP_CHOWN"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}),
                "process.capabilities.ambient[1]: CAP_CHOWN is not in the permitted set",
            ),
            (
                serde_json::json!({"inheritable": ["CAP_SYS_ADMIN"]}),
                "process.capabilities.inheritable[0]: CAP_SYS_ADMIN is not in the bounding set",
            ),
            (
                serde_json::json!({"ambient": ["CAP_SYS_ADMIN"]}),
                "process.capabilities.ambient[0]: CAP_SYS_ADMIN is not in the bounding, permitted and inheritable sets",
            ),
            (
                serde_json::json!({"bounding": ["CAP_NO_SUCH_THING"]}),
                "process.capabilities.bounding[0]: CAP_NO_SUCH_THING is not a capability",
            ),
        ] {
            for uid in [0, 1000] {
                let e = capability_sets(uid, caps.clone()).unwrap_err().to_string();
                assert!(e.contains(needle), "{e}");
                assert_eq!(e.lines().count(), 1, "{e}");
            }
        }
    }

    #[test]
    fn a_privileged_containers_full_set_is_taken_for_the_instance() {
        let all: Vec<&str> = CAPABILITY_NAMES.iter().map(|(n, _)| *n).collect();
        let sets = capability_sets(
            0,
            serde_json::json!({"bounding": all, "effective": all, "permitted": all}),
        )
        .unwrap();
        let known: Vec<u32> = (0..=xvisor_sys::caps::last_cap()).collect();
        assert_eq!(sets.granted, known);
        let c = parse(default_config(false)).unwrap();
        assert_eq!(c.spec.capability_ceiling, CapabilityCeiling::Any);
    }

    #[test]
    fn a_privileged_containers_host_devices_are_not_given() {
        let mut config = default_config(false);
        config["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/no-such-host-node", "type": "b", "major": 254, "minor": 0}
        ]);
        config["linux"]["resources"] = serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]});
        let c = parse(config.clone()).unwrap();
        assert!(c.spec.root.extras.devices.is_empty());
        assert_eq!(c.ignored.len(), 2, "{:?}", c.ignored);
        assert!(c.ignored[0].contains("privileged"), "{:?}", c.ignored);
        // Without the allow-all rule, a listed node is a device asked for.
        config["linux"]["resources"] = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
        let e = parse(config).unwrap_err().to_string();
        assert!(e.contains("linux.devices[0]"), "{e}");
    }

    #[test]
    fn no_new_privileges_is_as_the_config_says() {
        let c = parse(default_config(false)).unwrap();
        assert!(c.spec.no_new_privileges, "xvisor spec writes true");
        let c = parse(with(
            default_config(false),
            "/process/noNewPrivileges",
            Value::Bool(false),
        ))
        .unwrap();
        assert!(!c.spec.no_new_privileges);
        let mut config = default_config(false);
        config["process"].as_object_mut().unwrap().remove("noNewPrivileges");
        assert!(!parse(config).unwrap().spec.no_new_privileges, "absent: false");
        let process = parse_process(r#"{"args": ["true"], "cwd": "/"}"#).unwrap();
        assert!(!process.no_new_privileges);
        let process = parse_process(r#"{"args": ["true"], "cwd": "/", "noNewPrivileges": true}"#).unwrap();
        assert!(process.no_new_privileges);
    }

    #[test]
    fn host_pid_and_ipc_namespaces_are_refused_the_hosts_network_is_taken() {
        for (kind, field_name) in [("pid", "hostPID"), ("ipc", "hostIPC")] {
            let mut config = default_config(false);
            config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|ns| ns["type"] != kind);
            let e = parse(config).unwrap_err().to_string();
            assert!(
                e.starts_with("config.json: linux.namespaces: no ") || e.contains("linux.namespaces: no "),
                "{e}"
            );
            assert!(e.contains(field_name), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let mut config = default_config(false);
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|ns| ns["type"] != "network");
        assert_eq!(parse(config).unwrap().spec.network, Network::Host);
    }

    fn with(mut base: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = base.pointer_mut(parent).unwrap();
        match target {
            Value::Object(m) => {
                m.insert(key.to_string(), value);
            }
            Value::Array(a) => {
                let i: usize = key.parse().unwrap();
                a[i] = value;
            }
            _ => panic!("bad pointer"),
        }
        base
    }

    #[test]
    fn unknown_and_unsupported_fields_are_named() {
        for (pointer, value, needle) in [
            (
                "/linux/devices",
                serde_json::json!([{"path": "/dev/xvisor-none", "type": "c", "major": 10, "minor": 229}]),
                "linux.devices[0]: device /dev/xvisor-none: no such node on the host",
            ),
            (
                "/linux/devices",
                serde_json::json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
                                   {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 228}]),
                "linux.devices[1]: device /dev/fuse: the host's node is c 10:229, not c 10:228",
            ),
            (
                "/linux/devices",
                serde_json::json!([{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}]),
                "the instance's own",
            ),
            (
                "/linux/devices",
                serde_json::json!([{"path": "/tmp/../dev/null", "type": "c"}]),
                "only nodes below /dev",
            ),
            (
                "/linux/devices",
                serde_json::json!([{"path": "/dev/shm/x", "type": "p"}]),
                "FIFOs are not supported",
            ),
            ("/linux/intelRdt", serde_json::json!({"closID": "x"}), "linux.intelRdt"),
            (
                "/process/capabilities",
                serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_CHOWN"]}),
                "process.capabilities.ambient[0]: CAP_CHOWN is not in the bounding, permitted and inheritable sets",
            ),
            (
                "/linux/sysctl",
                serde_json::json!({"kernel.panic": "1"}),
                "linux.sysctl.kernel.panic: only settings",
            ),
            (
                "/hooks",
                serde_json::json!({"prestart": [{"path": "bin/true"}]}),
                "hooks.prestart[0].path: must be an absolute path",
            ),
            (
                "/hooks",
                serde_json::json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
                "hooks.poststop[0].timeout: must be greater than zero",
            ),
            (
                "/hooks",
                serde_json::json!({"createRuntime": [{"path": "/bin/true", "env": ["NOEQUALS"]}]}),
                "hooks.createRuntime[0].env[0]",
            ),
            (
                "/linux/namespaces/1",
                serde_json::json!({"type": "user", "path": "/proc/1/ns/user"}),
                "linux.namespaces[1].path: joining an existing user namespace is not supported",
            ),
            (
                "/linux/namespaces/4",
                serde_json::json!({"type": "mount", "path": "/proc/1/ns/mnt"}),
                "linux.namespaces[4].path: joining an existing mount namespace",
            ),
            (
                "/linux/namespaces/1",
                serde_json::json!({"type": "network", "path": "run/netns/x"}),
                "linux.namespaces[1].path: must be an absolute path",
            ),
            (
                "/linux/uidMappings",
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
                "linux.gidMappings: missing",
            ),
            (
                "/process/capabilities/bounding",
                serde_json::json!(["CAP_KILL", "SYS_ADMIN"]),
                "process.capabilities.bounding[1]: SYS_ADMIN is not a capability",
            ),
            (
                "/mounts/0",
                serde_json::json!({"destination": "/x", "type": "nfs", "source": "h:/e"}),
                "mounts[0].type",
            ),
            (
                "/mounts/0",
                serde_json::json!({"destination": "x", "type": "tmpfs", "source": "t"}),
                "mounts[0].destination",
            ),
            ("/ociVersion", serde_json::json!("2.0.0"), "ociVersion"),
            (
                "/annotations",
                serde_json::json!({"dev.xvisor.profle": "strict"}),
                "annotations.dev.xvisor.profle",
            ),
            (
                "/process/rlimits",
                serde_json::json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]),
                "process.rlimits[0].type",
            ),
            (
                "/linux/resources/devices",
                serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]),
                "linux.resources.devices[1]: denying one of the instance's devices",
            ),
            (
                "/linux/resources/devices",
                serde_json::json!([{"allow": false, "type": "c", "major": 136, "minor": 4, "access": "rwm"}]),
                "linux.resources.devices[0]: denying",
            ),
            (
                "/linux/resources/devices",
                serde_json::json!([{"allow": false, "type": "c", "access": "rwm"}]),
                "linux.resources.devices[0]: denying",
            ),
            (
                "/linux/resources/blockIO",
                serde_json::json!({"weight": 500}),
                "linux.resources.blockIO.weight: block I/O weights",
            ),
            (
                "/linux/resources/blockIO",
                serde_json::json!({"weight": 0, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}),
                "linux.resources.blockIO.throttleReadBpsDevice: block I/O limits",
            ),
        ] {
            let e = parse(with(default_config(false), pointer, value))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{pointer}: {e}");
            assert!(e.starts_with("config.json: "), "{e}");
        }
    }

    #[test]
    fn properties_the_specification_does_not_define_are_ignored_and_listed() {
        let mut c = default_config(false);
        c["unknown"] = serde_json::json!("unknown");
        c["process"]["frobnicate"] = serde_json::json!(1);
        c["hooks"] =
            serde_json::json!({"onReboot": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true", "x": 1}]});
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 1 << 30, "futureKnob": true});
        let container = parse(c).unwrap();
        assert_eq!(
            container.ignored,
            [
                "process.frobnicate",
                "linux.resources.memory.futureKnob",
                "hooks.poststop[0].x",
                "hooks.onReboot",
                "unknown"
            ]
        );
        // A second parse starts afresh.
        assert!(parse(default_config(false)).unwrap().ignored.is_empty());
        // What the specification defines and xvisor cannot honour stays an
        // error, wherever it is.
        let mut c = default_config(false);
        c["unknown"] = serde_json::json!("unknown");
        c["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
        let e = parse(c).unwrap_err().to_string();
        assert!(e.contains("linux.intelRdt"), "{e}");
        let process = parse_process(r#"{"args": ["true"], "cwd": "/", "someday": 1}"#).unwrap();
        assert_eq!(process.ignored, ["process.someday"]);
    }

    #[test]
    fn systemd_form_names_the_scope_its_driver_makes() {
        let scope = |v: &str| systemd_scope(v).map(|s| (s.unit, s.slice));
        assert_eq!(
            scope("machine.slice:libpod:abc"),
            Some(("libpod-abc.scope".into(), Some("machine.slice".into())))
        );
        assert_eq!(scope(":libpod:abc"), Some(("libpod-abc.scope".into(), None)));
        assert_eq!(
            scope("system.slice::x.scope"),
            Some(("x.scope".into(), Some("system.slice".into())))
        );
        for not_a_scope in [
            "/a/b",
            "a.slice:p:",
            "system.slice::x.service",
            "a b.slice:p:n",
            "s.slice:p:a/b",
        ] {
            assert_eq!(scope(not_a_scope), None, "{not_a_scope}");
        }
    }

    #[test]
    fn cgroup_paths_are_taken_below_our_own() {
        let ok = |v: &str| cgroup_path(v).unwrap().map(|p| p.display().to_string());
        assert_eq!(ok("/cgrouptest").as_deref(), Some("cgrouptest"));
        assert_eq!(
            ok("testdir/cgrouptest/container/").as_deref(),
            Some("testdir/cgrouptest/container")
        );
        assert_eq!(ok(""), None);
        assert_eq!(ok("/"), None);
        assert_eq!(
            ok("kubepods-besteffort-pod1.slice:cri-containerd:abc").as_deref(),
            Some("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            ok("system.slice:docker:abc").as_deref(),
            Some("system.slice/docker-abc.scope")
        );
        assert_eq!(ok(":libpod:abc").as_deref(), Some("libpod-abc.scope"));
        for bad in [
            "/a/../b",
            "./a",
            "a:b",
            "x.service:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a:b:c:d",
            "a\nb",
            "a\u{0}b",
        ] {
            assert!(cgroup_path(bad).is_err(), "{bad}");
        }
        assert!(cgroup_path(&"a/".repeat(3000)).is_err());
        // A slice name's expansion repeats every prefix: long ones are refused.
        let longest = format!("{}.slice", ["a"; 123].join("-"));
        assert_eq!(longest.len(), 251);
        assert!(cgroup_path(&format!("{longest}:p:n")).is_ok());
        let hostile = format!("{}.slice:p:n", ["a"; 2_000].join("-"));
        assert!(cgroup_path(&hostile)
            .unwrap_err()
            .contains("longer than systemd allows"));
        let mut c = default_config(false);
        c["linux"]["cgroupsPath"] = serde_json::json!("/../etc");
        let e = parse(c).unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath"), "{e}");
    }

    #[test]
    fn id_mappings_are_taken_and_must_cover_the_program() {
        let mut c = default_config(false);
        c["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = serde_json::json!([
            {"containerID": 0, "hostID": 200000, "size": 10},
            {"containerID": 10, "hostID": 300000, "size": 100}
        ]);
        let maps = parse(c.clone()).unwrap().spec.id_maps.unwrap();
        assert_eq!(maps.uid_map(), "0 100000 65536\n");
        assert_eq!(maps.gid_map(), "0 200000 10\n10 300000 100\n");
        for (pointer, value, needle) in [
            (
                "/process/user/uid",
                serde_json::json!(70000),
                "process.user.uid: 70000 is not mapped",
            ),
            (
                "/linux/uidMappings",
                serde_json::json!([{"containerID": 1, "hostID": 100000, "size": 65536}]),
                "uid 0 (the container's root) must be mapped",
            ),
            (
                "/process/user/gid",
                serde_json::json!(110),
                "process.user.gid: 110 is not mapped",
            ),
            (
                "/process/user/additionalGids",
                serde_json::json!([5, 500]),
                "process.user.additionalGids[1]: 500 is not mapped",
            ),
            (
                "/linux/uidMappings",
                serde_json::json!([{"containerID": 0, "hostID": 1, "size": 5}, {"containerID": 3, "hostID": 9, "size": 1}]),
                "linux.uidMappings: ranges 0 and 1 overlap inside",
            ),
            (
                "/linux/uidMappings",
                serde_json::json!([{"containerID": 0, "hostID": 1}]),
                "linux.uidMappings[0].size: missing",
            ),
            (
                "/linux/uidMappings",
                serde_json::json!([{"containerID": 0, "hostID": 4294967296u64, "size": 1}]),
                "linux.uidMappings[0].hostID: must be below",
            ),
        ] {
            let e = parse(with(c.clone(), pointer, value)).unwrap_err().to_string();
            assert!(e.contains(needle), "{pointer}: {e}");
        }
    }

    #[test]
    fn a_host_device_node_is_added_and_must_stay_allowed() {
        assert!(
            Path::new("/dev/fuse").exists(),
            "this test needs the host's /dev/fuse (c 10:229)"
        );
        let mut c = default_config(false);
        c["linux"]["devices"] = serde_json::json!([{"path": "/dev/full", "type": "c", "major": 1, "minor": 7}]);
        assert!(
            parse(c.clone()).unwrap().spec.root.extras.devices.is_empty(),
            "a default node"
        );
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
            {"path": "/dev/fuse", "type": "c"}
        ]);
        // What Docker writes for --device: deny all, allow it.
        c["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]);
        assert_eq!(parse(c.clone()).unwrap().spec.root.extras.devices, ["/dev/fuse"]);
        assert!(parse(c.clone()).is_ok());
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"allow": false, "type": "c", "major": 10, "access": "rwm"}));
        let e = parse(c).unwrap_err().to_string();
        assert!(e.contains("linux.resources.devices[2]"), "{e}");
    }

    /// Property: whatever a config says, a cgroupsPath is refused or becomes
    /// a relative path of plain names — never absolute, never `..`, never
    /// a control character (the watchdog reads paths as lines).
    #[test]
    fn any_cgroups_path_stays_below_our_cgroup() {
        const ALPHABET: &[char] = &['a', 'b', '-', '.', '/', ':', '\n', '\0', 's', 'l', 'i', 'c', 'e', ' '];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(Some(path)) = cgroup_path(&text) {
                assert!(path.is_relative(), "{text:?} -> {path:?}");
                for part in path.components() {
                    let std::path::Component::Normal(name) = part else {
                        panic!("{text:?} -> {path:?}");
                    };
                    let name = name.to_str().unwrap();
                    assert!(!name.chars().any(char::is_control), "{text:?} -> {path:?}");
                    assert!(name != "." && name != "..", "{text:?}");
                }
            }
        }
    }

    #[test]
    fn cpu_resources_are_read_whole() {
        let mut c = default_config(false);
        c["linux"]["resources"]["cpu"] = serde_json::json!({
            "shares": 2048, "quota": 50000, "period": 500000, "cpus": "0-1", "mems": "0",
            "realtimePeriod": 1000000, "realtimeRuntime": 950000
        });
        let limits = parse(c).unwrap().spec.limits;
        assert_eq!(limits.cpu_shares, Some(2048));
        assert_eq!(limits.cpu_period_us, Some(500_000));
        assert_eq!(limits.cpus, Some(0.1));
        assert_eq!(limits.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(limits.cpuset_mems.as_deref(), Some("0"));
        assert_eq!(limits.cpu_realtime, Some((Some(1_000_000), Some(950_000))));
        for (cpu, needle) in [
            (serde_json::json!({"cpus": "0-"}), "linux.resources.cpu.cpus"),
            (serde_json::json!({"mems": "a"}), "linux.resources.cpu.mems"),
            (serde_json::json!({"cpus": "3-1"}), "linux.resources.cpu.cpus"),
            (serde_json::json!({"shares": 1}), "linux.resources.cpu.shares"),
            (serde_json::json!({"period": 10}), "linux.resources.cpu.period"),
        ] {
            let mut c = default_config(false);
            c["linux"]["resources"]["cpu"] = cpu;
            let e = parse(c).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        assert!(is_cpu_list("0-3,6,8-9"));
        assert!(!is_cpu_list(""));
        assert!(!is_cpu_list("0,,1"));
    }

    #[test]
    fn dockers_device_rules_and_empty_block_io_are_accepted() {
        // What Docker 20.10 writes for a default `docker run`: deny all,
        // allow the usual nodes, then deny /dev/fuse (10:229), which the
        // instance has no node for; blockIO with weight 0 means none.
        let mut c = default_config(false);
        c["linux"]["resources"] = serde_json::json!({
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                {"allow": false, "type": "b", "access": "rwm"}
            ],
            "memory": {"disableOOMKiller": false},
            "cpu": {"shares": 0},
            "blockIO": {"weight": 0}
        });
        parse(c).unwrap();
    }

    #[test]
    fn the_engines_dev_shm_size_bounds_the_instances_own() {
        let c = parse(default_config(false)).unwrap();
        assert_eq!(c.spec.root.tmpfs_sizes.shm, 65536 << 10);
        let mut c = default_config(false);
        let shm = c["mounts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        shm["options"] = serde_json::json!(["nosuid", "size=2g"]);
        assert_eq!(parse(c.clone()).unwrap().spec.root.tmpfs_sizes.shm, 2 << 30);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev/shm");
        let c = parse(c).unwrap();
        assert_eq!(c.spec.root.tmpfs_sizes, xvisor_confine::TmpfsSizes::default());
    }

    #[test]
    fn mounts_resources_and_annotations_are_honoured() {
        let mut c = default_config(false);
        c["mounts"].as_array_mut().unwrap().extend([
            serde_json::json!({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}),
            serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700", "noexec"]}),
        ]);
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864, "swap": 134217728});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 64});
        c["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000, "shares": 512});
        c["annotations"] = serde_json::json!({"dev.xvisor.profile": "strict", "other": "kept"});
        let c = parse(c).unwrap();
        assert_eq!(c.spec.root.volumes[0].host_path, PathBuf::from("/bundle/data"));
        assert!(!c.spec.root.volumes[0].writable);
        let t = &c.spec.root.extras.tmpfs[0];
        assert_eq!(
            (t.target.as_str(), t.size, t.mode, t.noexec),
            ("/run", Some(1 << 20), Some(0o700), true)
        );
        assert_eq!(t.source.as_deref(), Some("tmpfs"));
        assert_eq!(c.spec.limits.memory_bytes, Some(64 << 20));
        assert_eq!(c.spec.limits.pids, Some(64));
        assert_eq!(c.spec.limits.cpus, Some(0.5));
        assert_eq!(c.spec.policy.profile, Profile::Strict);
        assert_eq!(c.annotations.get("other").map(String::as_str), Some("kept"));
    }

    #[test]
    fn a_hostname_is_given_to_a_joined_uts_namespace() {
        let mut c = default_config(false);
        c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
        c["hostname"] = serde_json::json!("pod-a");
        let c = parse(c).unwrap();
        let uts = c.spec.joined.iter().find(|j| j.kind == NamespaceKind::Uts).unwrap();
        assert_eq!(uts.hostname.as_deref(), Some("pod-a"));
        // An empty hostname leaves the joined namespace's name alone.
        let mut c = default_config(false);
        c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
        c["hostname"] = serde_json::json!("");
        let c = parse(c).unwrap();
        assert_eq!(c.spec.joined[0].hostname, None);
    }

    #[test]
    fn namespaces_and_hooks_are_taken() {
        let mut c = default_config(false);
        c["linux"]["namespaces"][1] = serde_json::json!({"type": "network", "path": "/run/netns/pod"});
        c["linux"]["namespaces"][2] = serde_json::json!({"type": "ipc", "path": "/proc/7/ns/ipc"});
        c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
        c["linux"]["namespaces"][0] = serde_json::json!({"type": "pid", "path": "/proc/7/ns/pid"});
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 0"});
        c["hooks"] = serde_json::json!({
            "prestart": [{"path": "/p"}],
            "createRuntime": [{"path": "/r", "args": ["r", "-x"], "env": ["A=b=c"], "timeout": 3}],
            "createContainer": [{"path": "/c"}],
            "startContainer": [{"path": "/s"}],
            "poststart": [{"path": "/ps"}],
            "poststop": [{"path": "/stop"}]
        });
        let c = parse(c).unwrap();
        assert_eq!(c.spec.network, Network::Joined);
        let joined: Vec<_> = c
            .spec
            .joined
            .iter()
            .map(|j| (j.kind, j.path.display().to_string(), j.origin.as_str()))
            .collect();
        assert_eq!(
            joined,
            vec![
                (NamespaceKind::Pid, "/proc/7/ns/pid".into(), "linux.namespaces[0].path"),
                (
                    NamespaceKind::Network,
                    "/run/netns/pod".into(),
                    "linux.namespaces[1].path"
                ),
                (NamespaceKind::Ipc, "/proc/7/ns/ipc".into(), "linux.namespaces[2].path"),
                (NamespaceKind::Uts, "/proc/7/ns/uts".into(), "linux.namespaces[3].path"),
            ]
        );
        assert!(
            c.spec.joined.iter().all(|j| j.hostname.is_none()),
            "no hostname asked for"
        );
        assert_eq!(c.spec.sysctls.len(), 1);
        let h = &c.spec.hooks;
        let paths = |v: &[Hook]| v.iter().map(|h| h.path.display().to_string()).collect::<Vec<_>>();
        assert_eq!(paths(&h.create_runtime), vec!["/p", "/r"]);
        assert_eq!(h.create_runtime[1].origin, "hooks.createRuntime[0]");
        assert_eq!(h.create_runtime[1].args, vec!["r", "-x"]);
        assert_eq!(h.create_runtime[1].env, vec![("A".to_string(), "b=c".to_string())]);
        assert_eq!(h.create_runtime[1].timeout, Some(std::time::Duration::from_secs(3)));
        assert_eq!(paths(&h.create_container), vec!["/c"]);
        assert_eq!(paths(&h.start_container), vec!["/s"]);
        assert_eq!(paths(&h.poststart), vec!["/ps"]);
        assert_eq!(paths(&c.poststop), vec!["/stop"]);
        assert!(c.spec.freezable);
    }

    #[test]
    fn junk_never_panics() {
        for text in [
            "",
            "[]",
            "null",
            "{\"ociVersion\": 1}",
            "{\"ociVersion\": \"1.0.2\", \"root\": []}",
            "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[1]}}",
        ] {
            assert!(parse_config(text, Path::new("/b"), "x").is_err(), "{text}");
        }
    }

    /// Replays the fuzz corpus (fuzz/corpus/oci_config) on every test run.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/oci_config");
        let mut accepted = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if parse_config(text, Path::new("/b"), "x").is_ok() {
                    accepted.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        accepted.sort();
        // The seeds that are valid bundles stay valid.
        assert!(accepted.starts_with(&["default".to_string()]), "{accepted:?}");
        assert!(accepted.contains(&"seccomp".to_string()), "{accepted:?}");
    }
}
