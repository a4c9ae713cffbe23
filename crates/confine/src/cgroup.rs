//! Resource limits through cgroups, v2 where the host offers a controller on
//! the unified hierarchy, v1 where that is where the controller lives (hybrid
//! hosts: v1 controllers beside a nearly empty v2 mount).
//!
//! An instance's cgroups are always created *below* the cgroup xvisor itself
//! runs in (one per hierarchy used), never anywhere else. Every file here is
//! reached through a root path, so the logic runs against a fake tree in tests.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The limits an instance asks for. `None` means "not limited here".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// CPU time as a fraction of one CPU (1.5 = one and a half CPUs).
    pub cpus: Option<f64>,
    /// The accounting period of `cpus`, in µs (default 100 ms).
    pub cpu_period_us: Option<u64>,
    /// The CPU weight among sibling cgroups, in cgroup v1's `cpu.shares`
    /// units (2–262144; 1024 is the default weight).
    pub cpu_shares: Option<u64>,
    /// Real-time scheduling budget: `(period µs, runtime µs)`, cgroup v1.
    pub cpu_realtime: Option<(Option<u64>, Option<i64>)>,
    /// CPUs and memory nodes the instance may use (`0-3,6`).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.wanted().is_empty()
    }

    /// `(controller, option)` for every limit asked for: the option is what
    /// the user wrote, named in errors.
    fn wanted(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        if self.memory_bytes.is_some() {
            v.push(("memory", "--memory"));
        }
        if self.pids.is_some() {
            v.push(("pids", "--pids"));
        }
        if self.cpus.is_some() || self.cpu_period_us.is_some() {
            v.push(("cpu", "--cpus"));
        } else if self.cpu_shares.is_some() {
            v.push(("cpu", "linux.resources.cpu.shares"));
        } else if self.cpu_realtime.is_some() {
            v.push(("cpu", "linux.resources.cpu.realtimeRuntime"));
        }
        if self.cpuset_cpus.is_some() || self.cpuset_mems.is_some() {
            v.push(("cpuset", "linux.resources.cpu.cpus"));
        }
        v
    }
}

/// xvisor's default bound on an instance's processes and threads, all
/// users together (`pids.max`), where no `--pids` is given: room for a
/// parallel build or a busy server, and an end to a fork bomb long before
/// the host's own limit.
pub const DEFAULT_PIDS: u64 = 4096;

/// xvisor's default memory limit where no `--memory` is given: half of
/// the memory this process may use, the host's RAM or, when lower, the
/// limit of the memory cgroup xvisor runs in (rounded down to a MiB). A
/// fixed size would be too small on a build server and too large on a
/// small VM; half leaves the host (and its other instances) the other half
/// whatever one instance does, while a program that runs natively within
/// half the machine runs unchanged. `None` when neither can be read.
pub fn default_memory(host: &CgroupHost) -> Option<u64> {
    let ram = xvisor_sys::process::total_ram().ok().filter(|r| *r > 0);
    let own = host.hierarchy_for("memory").and_then(|h| {
        let file = match h.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        };
        xvisor_sys::fs::read_small(h.own_dir.join(file))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });
    let available = match (ram, own) {
        (Some(r), Some(o)) => r.min(o),
        (r, o) => r.or(o)?,
    };
    Some((available / 2) & !((1 << 20) - 1)).filter(|m| *m > 0)
}

impl Limits {
    /// These limits, with xvisor's defaults for memory and processes where
    /// they set none and the host has the controller.
    pub fn with_defaults(&self, host: &CgroupHost) -> Self {
        let mut l = self.clone();
        if l.memory_bytes.is_none() && host.hierarchy_for("memory").is_some() {
            l.memory_bytes = default_memory(host);
        }
        if l.pids.is_none() && host.hierarchy_for("pids").is_some() {
            l.pids = Some(DEFAULT_PIDS);
        }
        l
    }
}

/// Where an instance's cgroups go: always below the cgroup xvisor runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `xvisor-NAME`, on the hierarchies its limits need.
    Own { name: String },
    /// A relative path an engine chose (OCI `cgroupsPath`, made relative),
    /// on the hierarchies its limits need and on those that account memory,
    /// tasks and CPU time where the host has them: the engine looks for the
    /// container's usage there. Missing directories on the way are created,
    /// and removed again once empty.
    Chosen(PathBuf),
}

impl Placement {
    fn relative(&self) -> PathBuf {
        match self {
            Self::Own { name } => PathBuf::from(format!("xvisor-{name}")),
            Self::Chosen(path) => path.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot enforce {option}: this host has no {controller} cgroup controller")]
    NoController { controller: String, option: String },
    #[error(
        "cannot enforce {option}: cannot create cgroup {path}: {error} \
         (limits need root or a delegated cgroup; refusing to run unlimited)"
    )]
    Create {
        option: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "cannot enforce {option}: cannot enable the {controller} controller in {path}: {error} \
         (the cgroup is not delegated to this user, or holds processes itself)"
    )]
    Enable {
        option: String,
        controller: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "cannot enforce {option}: cgroup v2 forbids controllers in {path}, which holds processes; \
         run xvisor in a cgroup of its own, e.g. `systemd-run [--user] --scope -p Delegate=yes xvisor run …`"
    )]
    Populated { option: String, path: PathBuf },
    #[error(
        "cannot start the instance in cgroup {path}: {error} (cgroup v2 refuses a cgroup whose parent \
         holds processes; run xvisor in a cgroup of its own, e.g. `systemd-run [--user] --scope -p Delegate=yes xvisor run …`)"
    )]
    Enter { path: PathBuf, error: io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
    #[error("cannot lock cgroup {path}: {error}")]
    Lock { path: PathBuf, error: io::Error },
    #[error("cannot read the host's cgroups ({what}): {error}")]
    Detect { what: &'static str, error: io::Error },
    #[error("cgroup {path} still has processes after {waited_ms} ms; left in place")]
    Busy { path: PathBuf, waited_ms: u128 },
    #[error("cgroup {path}: its processes did not all stop within {waited_ms} ms; thawed again")]
    FreezeTimeout { path: PathBuf, waited_ms: u128 },
    #[error("cgroup {path}: no freezer (neither freezer.state nor cgroup.freeze)")]
    NoFreezer { path: PathBuf },
    #[error("cannot enforce {option}: no systemd scope {unit} for xvisor: {error}")]
    Systemd {
        option: String,
        unit: String,
        error: Box<crate::systemd::SystemdError>,
    },
    #[error("cannot enforce {option}: systemd started {unit}, but xvisor is not in it")]
    NotMoved { option: String, unit: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy and the cgroup xvisor runs in on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// Controllers usable on it (for v2: those offered to our own cgroup).
    pub controllers: Vec<String>,
    /// Directory of our own cgroup on this hierarchy.
    pub own_dir: PathBuf,
}

/// The cgroup hierarchies of this host, as seen from this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupHost {
    pub hierarchies: Vec<Hierarchy>,
    /// What the host mounts at /sys/fs/cgroup, from the same read of
    /// mountinfo: the instance's view is made of it, so that init need not
    /// read its own (longer, and slower to print) mountinfo again.
    pub mounts: CgroupMounts,
}

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let d = &bytes[i + 1..i + 4];
            if d.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/self/mountinfo, the fields xvisor reads.
pub(crate) struct MountEntry<'a> {
    /// The mount's root inside its file system.
    pub(crate) root: String,
    pub(crate) mount_point: String,
    pub(crate) fs_type: &'a str,
    /// The file system's own options (`rw,memory`, `rw,nsdelegate` …).
    pub(crate) super_options: &'a str,
}

/// The well-formed lines of `mountinfo`, in order (later mounts on a path
/// hide earlier ones).
pub(crate) fn mount_entries(mountinfo: &str) -> impl Iterator<Item = MountEntry<'_>> {
    mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let (fs_type, _source, super_options) = (right.next()?, right.next()?, right.next()?);
        Some(MountEntry {
            root: unescape_mountinfo(left.get(3)?),
            mount_point: unescape_mountinfo(left.get(4)?),
            fs_type,
            super_options,
        })
    })
}

/// What the host mounts at /sys/fs/cgroup, to be mounted anew inside an
/// instance: each hierarchy a fresh mount in the instance's cgroup
/// namespace, whose root is the instance's own cgroup (as a container
/// sees its own with runc), never the host's tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CgroupMounts {
    /// No cgroup file system there: the directory stays empty.
    #[default]
    None,
    /// One cgroup v2 hierarchy at /sys/fs/cgroup itself.
    Unified,
    /// A directory of hierarchies, each by its name below /sys/fs/cgroup
    /// (cgroup v1, and the v2 one of a hybrid host).
    Split(Vec<CgroupMount>),
}

/// One hierarchy below /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Its directory's name below /sys/fs/cgroup: one plain component.
    pub name: String,
    /// `None` for cgroup v2; for v1, the options that name the hierarchy
    /// (its controllers, `name=`, and the flags it was made with).
    pub v1_options: Option<Vec<String>>,
}

/// Mount options of a v1 hierarchy that are not ours to repeat: access
/// (the view is read-only anyway) and those a user namespace may not set.
const V1_OPTIONS_NOT_REPEATED: &[&str] = &["rw", "ro", "clone_children"];

impl CgroupMounts {
    /// From /proc/self/mountinfo (the last mount on a path is the visible one).
    pub fn parse(mountinfo: &str) -> Self {
        const TOP: &str = "/sys/fs/cgroup";
        let mut top: Option<String> = None;
        let mut below: Vec<CgroupMount> = Vec::new();
        for entry in mount_entries(mountinfo) {
            let (mount_point, fs_type) = (entry.mount_point.as_str(), entry.fs_type);
            if mount_point == TOP {
                // A new file system on top hides whatever was below it.
                top = Some(fs_type.to_string());
                below.clear();
                continue;
            }
            let Some(name) = mount_point.strip_prefix(TOP).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                continue;
            }
            let v1_options = match fs_type {
                "cgroup2" => None,
                "cgroup" => Some(
                    entry
                        .super_options
                        .split(',')
                        .filter(|o| {
                            !o.is_empty() && !V1_OPTIONS_NOT_REPEATED.contains(o) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect(),
                ),
                _ => continue,
            };
            below.retain(|m| m.name != name);
            below.push(CgroupMount {
                name: name.to_string(),
                v1_options,
            });
        }
        match top.as_deref() {
            Some("cgroup2") => Self::Unified,
            _ if !below.is_empty() => Self::Split(below),
            _ => Self::None,
        }
    }
}

/// The hierarchies in which an instance has a directory of its own: the
/// only ones its `/sys/fs/cgroup` shows. In any other, the root of its
/// cgroup namespace is the cgroup xvisor runs in (often the host's root
/// cgroup), and a mount there would show the host's whole tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupView {
    /// It has a directory on the v2 hierarchy.
    pub v2: bool,
    /// Controllers (or the freezer) of the v1 hierarchies it has a
    /// directory on; one names a v1 hierarchy, which holds each controller
    /// at most once.
    pub v1_controllers: Vec<String>,
}

impl CgroupMounts {
    /// What of the host's hierarchies `view` shows: the others are left out
    /// (no mount and no directory), so the instance sees only its own
    /// cgroups, never the tree above them.
    pub fn shown(self, view: &CgroupView) -> Self {
        match self {
            Self::Unified if view.v2 => Self::Unified,
            Self::Split(mut mounts) => {
                mounts.retain(|m| match &m.v1_options {
                    None => view.v2,
                    Some(options) => options.iter().any(|o| view.v1_controllers.contains(o)),
                });
                if mounts.is_empty() {
                    Self::None
                } else {
                    Self::Split(mounts)
                }
            }
            _ => Self::None,
        }
    }
}

/// Joins our cgroup path (from /proc/self/cgroup) onto a mount whose own
/// root inside the hierarchy is `mount_root`.
fn own_dir(mount_point: &str, mount_root: &str, own_path: &str) -> PathBuf {
    let rel = if mount_root == "/" {
        own_path
    } else {
        own_path.strip_prefix(mount_root).unwrap_or("")
    };
    let mut p = PathBuf::from(mount_point);
    for part in rel.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..") {
        p.push(part);
    }
    p
}

impl CgroupHost {
    /// Reads this process's view of the host.
    pub fn detect() -> Result<Self, CgroupError> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|error| CgroupError::Detect {
            what: "/proc/self/mountinfo",
            error,
        })?;
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|error| CgroupError::Detect {
            what: "/proc/self/cgroup",
            error,
        })?;
        Ok(Self::parse(&mountinfo, &own, |dir| {
            std::fs::read_to_string(dir.join("cgroup.controllers")).ok()
        }))
    }

    /// The host's hierarchies without reading mountinfo, for xvisor's
    /// default limits: the hierarchies /proc/self/cgroup names, at the
    /// places systemd (and every distribution's init) mounts them. `None`
    /// when anything is not as expected there; [`detect`](Self::detect)
    /// then reads the mounts. Holds no [`mounts`](Self::mounts): a default
    /// limit is given no view of `/sys/fs/cgroup`.
    pub fn detect_known(controllers: &[&str]) -> Option<Self> {
        // Outside the initial cgroup namespace /proc/self/cgroup is
        // relative to the namespace's root, which a mount may not be.
        let ns = std::fs::metadata("/proc/self/ns/cgroup").ok()?;
        if std::os::unix::fs::MetadataExt::ino(&ns) != INITIAL_CGROUP_NAMESPACE {
            return None;
        }
        let own = xvisor_sys::fs::read_small("/proc/self/cgroup").ok()?;
        Self::from_known_mounts(&own, Path::new("/sys/fs/cgroup"), controllers)
    }

    /// Pure part of [`detect_known`](Self::detect_known), `top` standing
    /// for /sys/fs/cgroup. A v1 hierarchy is at `top/CONTROLLERS` (as
    /// /proc/self/cgroup lists them, `cpu,cpuacct`), the v2 one at
    /// `top/unified` or `top`; each must be a mount of its hierarchy's
    /// root (v1: `cgroup.sane_behavior` is there and nowhere else; v2:
    /// `cgroup.controllers` without `cgroup.type`, which every other cgroup
    /// has), and our own cgroup a directory below it. Only the v2 hierarchy
    /// and the v1 ones holding one of `controllers` are looked at.
    pub fn from_known_mounts(self_cgroup: &str, top: &Path, controllers: &[&str]) -> Option<Self> {
        let mut hierarchies = Vec::new();
        for line in self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return None;
            };
            let rel = path.strip_prefix('/')?;
            if rel.split('/').any(|c| c == "." || c == "..") || rel.contains(" (deleted)") {
                return None;
            }
            if ctrls.is_empty() {
                let Some(root) = [top.join("unified"), top.to_path_buf()]
                    .into_iter()
                    .find(|m| m.join("cgroup.controllers").exists() && !m.join("cgroup.type").exists())
                else {
                    // No v2 mount where expected: a v1-only host, or one
                    // that mounts it elsewhere (then mountinfo is read).
                    continue;
                };
                let own_dir = if rel.is_empty() { root } else { root.join(rel) };
                let controllers = xvisor_sys::fs::read_small(own_dir.join("cgroup.controllers")).ok()?;
                hierarchies.push(Hierarchy {
                    version: Version::V2,
                    controllers: controllers.split_whitespace().map(str::to_string).collect(),
                    own_dir,
                });
            } else {
                let held: Vec<String> = ctrls
                    .split(',')
                    .filter(|c| !c.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                if !held.iter().any(|c| controllers.contains(&c.as_str())) {
                    continue;
                }
                if ctrls.contains('/') || ctrls.starts_with('.') {
                    return None;
                }
                let root = top.join(ctrls);
                let own_dir = if rel.is_empty() { root.clone() } else { root.join(rel) };
                if !root.join("cgroup.sane_behavior").exists() || !own_dir.is_dir() {
                    return None;
                }
                hierarchies.push(Hierarchy {
                    version: Version::V1,
                    controllers: held,
                    own_dir,
                });
            }
        }
        (!hierarchies.is_empty()).then_some(Self {
            hierarchies,
            mounts: CgroupMounts::None,
        })
    }

    /// Pure part of [`detect`](Self::detect). `v2_controllers` reads
    /// `cgroup.controllers` of a v2 directory.
    pub fn parse(mountinfo: &str, self_cgroup: &str, v2_controllers: impl Fn(&Path) -> Option<String>) -> Self {
        let mut v1_paths: Vec<(Vec<String>, String)> = Vec::new();
        let mut v2_path: Option<String> = None;
        for line in self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if ctrls.is_empty() {
                v2_path = Some(path.to_string());
            } else {
                v1_paths.push((ctrls.split(',').map(str::to_string).collect(), path.to_string()));
            }
        }
        let mut hierarchies = Vec::new();
        for entry in mount_entries(mountinfo) {
            let (root, mount_point) = (&entry.root, &entry.mount_point);
            match entry.fs_type {
                "cgroup2" => {
                    let Some(own) = &v2_path else { continue };
                    let dir = own_dir(mount_point, root, own);
                    let controllers = v2_controllers(&dir)
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    hierarchies.push(Hierarchy {
                        version: Version::V2,
                        controllers,
                        own_dir: dir,
                    });
                }
                "cgroup" => {
                    let opts: Vec<String> = entry.super_options.split(',').map(str::to_string).collect();
                    let Some((ctrls, own)) = v1_paths
                        .iter()
                        .find(|(ctrls, _)| ctrls.iter().any(|c| opts.contains(c)))
                    else {
                        continue;
                    };
                    let controllers: Vec<String> = ctrls.iter().filter(|c| !c.starts_with("name=")).cloned().collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    // The same hierarchy may be mounted twice; keep the first.
                    if hierarchies
                        .iter()
                        .any(|h: &Hierarchy| h.version == Version::V1 && h.controllers == controllers)
                    {
                        continue;
                    }
                    hierarchies.push(Hierarchy {
                        version: Version::V1,
                        controllers,
                        own_dir: own_dir(mount_point, root, own),
                    });
                }
                _ => {}
            }
        }
        Self {
            hierarchies,
            mounts: CgroupMounts::parse(mountinfo),
        }
    }

    /// The hierarchy that enforces `controller`: v2 when it offers it, else v1.
    ///
    /// `freezer` is special: v2 has no such controller, every v2 cgroup
    /// can be frozen (`cgroup.freeze`); a host that still mounts the v1
    /// freezer (hybrid) freezes there, as other runtimes do on such hosts.
    pub fn hierarchy_for(&self, controller: &str) -> Option<&Hierarchy> {
        let has = |h: &&Hierarchy| h.controllers.iter().any(|c| c == controller);
        if controller == FREEZER {
            return self
                .hierarchies
                .iter()
                .filter(|h| h.version == Version::V1)
                .find(has)
                .or_else(|| self.hierarchies.iter().find(|h| h.version == Version::V2));
        }
        self.hierarchies
            .iter()
            .filter(|h| h.version == Version::V2)
            .find(has)
            .or_else(|| self.hierarchies.iter().filter(|h| h.version == Version::V1).find(has))
    }
}

/// The inode of the initial cgroup namespace (`PROC_CGROUP_INIT_INO`).
const INITIAL_CGROUP_NAMESPACE: u64 = 0xEFFF_FFFB;

/// The name under which the freezer is planned like a controller.
const FREEZER: &str = "freezer";

/// A transient scope an engine asked for (OCI `--systemd-cgroup` with a
/// `cgroupsPath` of the form `SLICE:PREFIX:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    /// `PREFIX-NAME.scope`.
    pub unit: String,
    /// `None`: the manager's default slice.
    pub slice: Option<String>,
}

/// Gives xvisor a cgroup in which the instance's v2 controllers can be
/// enabled, asking systemd for one where the host's manager owns the tree.
///
/// cgroup v2 forbids controllers in a cgroup that holds processes. Where
/// xvisor shares its cgroup with processes that are not xvisor's (a login
/// session's scope, a service, a user manager's app scope), it cannot make
/// room there, and may not create cgroups elsewhere: on a host run by
/// systemd it asks the manager for a transient scope of its own with
/// delegation (`Delegate=yes`: the subtree is then xvisor's to divide), as
/// other runtimes' systemd drivers do, and moves into it; the caller's
/// cgroup is left as it was. With `requested` (an engine's choice), that
/// scope is always made. Returns the host as seen from the new place; the
/// scope ends, and systemd removes it, once xvisor's processes are gone.
/// Without systemd nothing changes here, and [`InstanceCgroup::create`]
/// refuses with the reason.
pub fn settle(
    host: CgroupHost,
    limits: &Limits,
    name: &str,
    requested: Option<&ScopeRequest>,
) -> Result<CgroupHost, CgroupError> {
    let option = match (requested, limits.wanted().first()) {
        (Some(_), _) => "--systemd-cgroup".to_string(),
        (None, Some((_, o))) => o.to_string(),
        (None, None) => "pause".to_string(),
    };
    let manager = crate::systemd::Manager::for_uid(xvisor_sys::process::getuid());
    let scope = match requested {
        Some(r) => crate::systemd::Scope {
            unit: r.unit.clone(),
            slice: r.slice.clone(),
            description: format!("xvisor container {name}"),
            pids: vec![std::process::id()],
        },
        None => {
            let Some(v2) = host.hierarchies.iter().find(|h| h.version == Version::V2) else {
                return Ok(host);
            };
            // A controller the host has but does not offer our cgroup (systemd
            // enables `cpu` only where a unit asks for it) comes with a
            // delegated scope, which gets every controller.
            let offered_above = offered_at_root(&v2.own_dir);
            let v2_controllers: Vec<&str> = limits
                .wanted()
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| match host.hierarchy_for(c) {
                    Some(h) => h.version == Version::V2,
                    None => offered_above.split_whitespace().any(|o| o == *c),
                })
                .collect();
            let unoffered = v2_controllers.iter().any(|c| !v2.controllers.iter().any(|o| o == c));
            let enabled = std::fs::read_to_string(v2.own_dir.join("cgroup.subtree_control")).unwrap_or_default();
            let missing = v2_controllers
                .iter()
                .any(|c| !enabled.split_whitespace().any(|e| e == *c));
            let foreign = holds_processes(&v2.own_dir)
                && processes(&v2.own_dir)
                    .iter()
                    .any(|p| *p as u32 != std::process::id() && !same_program(*p));
            if !((unoffered || (missing && foreign)) && manager.is_running()) {
                return Ok(host);
            }
            crate::systemd::Scope {
                unit: crate::systemd::instance_scope_name(name, std::process::id()),
                slice: match manager {
                    crate::systemd::Manager::System => enclosing_slice(&v2.own_dir),
                    crate::systemd::Manager::User { .. } => None,
                },
                description: format!("xvisor instance {name}"),
                pids: vec![std::process::id()],
            }
        }
    };
    crate::systemd::start_delegated_scope(&manager, &scope).map_err(|error| CgroupError::Systemd {
        option: option.clone(),
        unit: scope.unit.clone(),
        error: Box::new(error),
    })?;
    let moved = CgroupHost::detect()?;
    // systemd names the scope's directory after it on every hierarchy it
    // manages (on a v1 host: each controller's).
    let arrived = moved
        .hierarchies
        .iter()
        .any(|h| h.own_dir.file_name() == Some(std::ffi::OsStr::new(&scope.unit)));
    if !arrived {
        return Err(CgroupError::NotMoved {
            option,
            unit: scope.unit,
        });
    }
    Ok(moved)
}

/// The controllers of the cgroup v2 hierarchy (or cgroup namespace) that
/// holds `dir`: those of its root, the one ancestor without `cgroup.type`.
fn offered_at_root(dir: &Path) -> String {
    dir.ancestors()
        .find(|a| !a.join("cgroup.type").exists() && a.join("cgroup.controllers").exists())
        .and_then(|root| std::fs::read_to_string(root.join("cgroup.controllers")).ok())
        .unwrap_or_default()
}

/// The slice a cgroup belongs to, for a scope beside it: its nearest
/// ancestor named `*.slice` (a session scope's `user-1000.slice`, a
/// service's `system.slice`).
fn enclosing_slice(dir: &Path) -> Option<String> {
    dir.ancestors()
        .filter_map(|a| a.file_name()?.to_str())
        .find(|n| crate::systemd::valid_unit_name(n, ".slice"))
        .map(str::to_string)
}

/// One directory of an instance's cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    version: Version,
    /// The cgroup xvisor runs in, on this hierarchy.
    base: PathBuf,
    path: PathBuf,
    controllers: Vec<&'static str>,
}

impl Dir {
    /// The controller named in messages: a limit's before the freezer.
    fn first_controller(&self) -> &'static str {
        self.controllers
            .iter()
            .copied()
            .find(|c| *c != FREEZER)
            .unwrap_or(FREEZER)
    }
}

/// Whether v2 cgroup `dir` holds processes and is not the root (which may
/// have both processes and controllers). Only non-root cgroups have
/// `cgroup.type`, also inside a cgroup namespace whose root they are.
fn holds_processes(dir: &Path) -> bool {
    dir.join("cgroup.type").exists() && !processes(dir).is_empty()
}

/// The cgroups of one instance; removed by [`remove`](Self::remove).
#[derive(Debug)]
pub struct InstanceCgroup {
    dirs: Vec<Dir>,
    /// The host's cgroup mounts, for the instance's view.
    mounts: CgroupMounts,
    /// How many of `dirs` exist (they are created in order).
    created: usize,
    /// Directories on the way to `dirs` that did not exist and were made
    /// for them, in the order made.
    made_on_the_way: Vec<PathBuf>,
    /// The option (flag or config key) that asked for each controller.
    options: Vec<(&'static str, &'static str)>,
    /// xvisor's processes moved into the shared leaf, when they were.
    moved: Option<Moved>,
    /// The lock on the cgroup xvisor runs in, held while creating.
    lock: Option<std::fs::File>,
}

/// The leaf below the cgroup xvisor runs in (its *base*) that xvisor's own
/// processes move into on cgroup v2, so that controllers can be enabled in
/// the base for an instance's cgroup beside it: v2 forbids controllers in
/// a non-root cgroup that holds processes. One leaf for every xvisor run
/// from that base (no instance is named so: theirs are `xvisor-NAME`); the
/// last to leave puts the base back as it was.
pub const SUPERVISOR_LEAF: &str = "xvisor.supervisors";

/// How long xvisor waits for other xvisor processes starting in the same
/// cgroup to move out of it too.
const ARRIVAL_PATIENCE: Duration = Duration::from_secs(2);

/// The v2 controllers xvisor enables; the only ones it disables again.
const ENABLED_BY_XVISOR: &[&str] = &["cpu", "cpuset", "memory", "pids"];

/// Processes of ours moved from `base` into its [`SUPERVISOR_LEAF`].
#[derive(Debug)]
struct Moved {
    base: PathBuf,
    pids: Vec<i32>,
}

/// Serialises xvisor's changes to cgroup `base` (moving into or out of the
/// leaf, enabling or disabling controllers, an instance's cgroup beside
/// it) between concurrent xvisor runs: `flock` on the directory itself.
fn lock_cgroup(base: &Path) -> Result<std::fs::File, CgroupError> {
    let locked = std::fs::File::open(base).and_then(|dir| {
        xvisor_sys::tree::lock(
            std::os::fd::AsFd::as_fd(&dir),
            xvisor_sys::tree::LockKind::Exclusive,
            true,
        )?;
        Ok(dir)
    });
    locked.map_err(|error| CgroupError::Lock {
        path: base.to_path_buf(),
        error,
    })
}

/// The processes of v2 cgroup `dir` (none when unreadable).
fn processes(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether process `pid` runs the same program file as this one.
fn same_program(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Ok(it)) = (
        std::fs::metadata("/proc/self/exe"),
        std::fs::metadata(format!("/proc/{pid}/exe")),
    ) else {
        return false;
    };
    (me.dev(), me.ino()) == (it.dev(), it.ino())
}

/// How many live cgroups are below v2 cgroup `dir`.
fn descendants(dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("cgroup.stat")).ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("nr_descendants "))
        .and_then(|n| n.trim().parse().ok())
}

/// Leaves the [`SUPERVISOR_LEAF`] of `base` for good, with `base` locked.
/// Only the last one out changes anything: when the leaf is all that is
/// left below `base`, nothing uses a controller enabled there, so those
/// xvisor enables are disabled again, `pids` move back into `base` and the
/// leaf goes (waiting up to `patience` for other xvisor processes that
/// left it just before, and are ending, to be gone). `base` held processes
/// when xvisor started in it, so, as a domain cgroup, it had no
/// controllers enabled then; a threaded domain's are left as they are.
fn leave(base: &Path, pids: &[i32], patience: Duration) -> Result<(), CgroupError> {
    if descendants(base) != Some(1) {
        return Ok(());
    }
    if std::fs::read_to_string(base.join("cgroup.type")).is_ok_and(|t| t.trim() == "domain") {
        let control = base.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        for c in ENABLED_BY_XVISOR
            .iter()
            .filter(|c| enabled.split_whitespace().any(|e| e == **c))
        {
            write_file(control.clone(), &format!("-{c}"))?;
        }
    }
    for pid in pids {
        match std::fs::write(base.join("cgroup.procs"), pid.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::ESRCH) => {}
            Err(error) => {
                return Err(CgroupError::Write {
                    path: base.join("cgroup.procs"),
                    error,
                })
            }
        }
    }
    remove_dirs(&[base.join(SUPERVISOR_LEAF)], patience)
}

/// For a process xvisor moved into the shared leaf along with itself (its
/// cgroup watchdog, finishing for a supervisor that died): leaves it as
/// the supervisor would have. Nothing to do from any other cgroup.
pub fn leave_supervisor_leaf(patience: Duration) -> Result<(), CgroupError> {
    let host = CgroupHost::detect()?;
    let Some(leaf) = host.hierarchies.iter().find(|h| h.version == Version::V2) else {
        return Ok(());
    };
    if leaf.own_dir.file_name() != Some(std::ffi::OsStr::new(SUPERVISOR_LEAF)) {
        return Ok(());
    }
    let Some(base) = leaf.own_dir.parent() else {
        return Ok(());
    };
    let _lock = lock_cgroup(base)?;
    leave(base, &[std::process::id() as i32], patience)
}

/// Controllers an engine's chosen cgroup is placed in even without a limit:
/// they account what engines report (memory, tasks, CPU time).
const ACCOUNTING: &[&str] = &["memory", "pids", "cpu", "cpuacct"];

fn write_file(path: PathBuf, content: &str) -> Result<(), CgroupError> {
    std::fs::write(&path, content).map_err(|error| CgroupError::Write { path, error })
}

impl InstanceCgroup {
    /// Decides where the instance's cgroups go (see [`Placement`]) without
    /// creating anything, so a watchdog can know the paths before they
    /// exist. With `freezer`, one of them can also be frozen (OCI `pause`).
    pub fn plan(host: &CgroupHost, placement: &Placement, limits: &Limits, freezer: bool) -> Result<Self, CgroupError> {
        let relative = placement.relative();
        let mut dirs: Vec<Dir> = Vec::new();
        let mut wanted = limits.wanted();
        if freezer {
            wanted.push((FREEZER, "pause"));
        }
        if matches!(placement, Placement::Chosen(_)) {
            let accounted = ACCOUNTING
                .iter()
                .filter(|c| !wanted.iter().any(|(w, _)| w == *c))
                // Never a v2 controller to enable for accounting alone: the
                // cgroup xvisor runs in may hold processes, which forbids it.
                .filter(|c| host.hierarchy_for(c).is_some_and(|h| h.version == Version::V1));
            let accounted: Vec<_> = accounted.map(|c| (*c, "")).collect();
            wanted.extend(accounted);
        }
        let options = wanted.clone();
        for (controller, option) in wanted {
            let h = host
                .hierarchy_for(controller)
                .ok_or_else(|| CgroupError::NoController {
                    controller: controller.into(),
                    option: option.into(),
                })?;
            if controller == "cpu" && h.version == Version::V2 && limits.cpu_realtime.is_some() {
                return Err(CgroupError::NoController {
                    controller: "real-time cpu (cgroup v1)".into(),
                    option: "linux.resources.cpu.realtimeRuntime".into(),
                });
            }
            let path = h.own_dir.join(&relative);
            match dirs.iter_mut().find(|d| d.path == path) {
                Some(d) => d.controllers.push(controller),
                None => dirs.push(Dir {
                    version: h.version,
                    base: h.own_dir.clone(),
                    path,
                    controllers: vec![controller],
                }),
            }
        }
        Ok(Self {
            dirs,
            mounts: host.mounts.clone(),
            created: 0,
            made_on_the_way: Vec::new(),
            options,
            moved: None,
            lock: None,
        })
    }

    /// The option that asked for `controller`, for messages.
    fn option(&self, controller: &str) -> String {
        self.options
            .iter()
            .find(|(c, _)| *c == controller)
            .map_or("", |(_, o)| *o)
            .to_string()
    }

    /// Creates the directories between `dir.base` and `dir.path`, and on
    /// v2 enables the controllers in each level above `dir.path`; on the
    /// v1 cpuset hierarchy a new level gets its parent's CPUs and nodes (an
    /// empty cpuset takes no task).
    fn prepare_the_way(&mut self, dir: &Dir) -> Result<(), CgroupError> {
        let Ok(below) = dir.path.strip_prefix(&dir.base) else {
            return Ok(());
        };
        let first = dir.first_controller();
        let mut level = dir.base.clone();
        let parts: Vec<_> = below.components().collect();
        for (i, part) in parts.iter().enumerate() {
            if dir.version == Version::V2 {
                self.enable_controllers(&level, &dir.controllers)?;
            }
            let parent = level.clone();
            level.push(part);
            if i + 1 == parts.len() {
                break;
            }
            match std::fs::create_dir(&level) {
                Ok(()) => self.made_on_the_way.push(level.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(CgroupError::Create {
                        option: self.option(first),
                        path: level,
                        error,
                    })
                }
            }
            if dir.version == Version::V1 && dir.controllers.contains(&"cpuset") {
                inherit_cpuset(&parent, &level).map_err(|error| CgroupError::Write {
                    path: level.join("cpuset.cpus"),
                    error,
                })?;
            }
        }
        Ok(())
    }

    /// Enables `controllers` for the children of v2 cgroup `level`.
    /// cgroup v2 forbids that in a cgroup that holds processes (the root
    /// excepted): refused here before anything is written, since the kernel
    /// accepts the threaded controllers (pids, cpu) there and only refuses
    /// the child's first process, with a cause that names neither.
    fn enable_controllers(&self, level: &Path, controllers: &[&'static str]) -> Result<(), CgroupError> {
        let control = level.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        // The v2 freezer is in every cgroup, not a controller to enable.
        let missing: Vec<&'static str> = controllers
            .iter()
            .copied()
            .filter(|c| *c != FREEZER && !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        let Some(first) = missing.first() else {
            return Ok(());
        };
        // Ours have just left (the kernel lists them no more).
        let ours = self.moved.as_ref().map_or(&[][..], |m| &m.pids[..]);
        if level.join("cgroup.type").exists() && processes(level).iter().any(|p| !ours.contains(p)) {
            return Err(CgroupError::Populated {
                option: self.option(first),
                path: level.to_path_buf(),
            });
        }
        for c in missing {
            std::fs::write(&control, format!("+{c}")).map_err(|error| {
                // Someone moved a process in since the look above.
                if error.raw_os_error() == Some(xvisor_sys::errno::EBUSY) {
                    CgroupError::Populated {
                        option: self.option(c),
                        path: level.to_path_buf(),
                    }
                } else {
                    CgroupError::Enable {
                        option: self.option(c),
                        controller: c.to_string(),
                        path: level.to_path_buf(),
                        error,
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Creates the planned directories and writes the limits. Nothing is
    /// left behind on error.
    ///
    /// On v2, when the cgroup xvisor runs in holds processes and a
    /// controller must be enabled there, and those processes are xvisor's
    /// own (this one and `companions`, or other xvisor runs starting
    /// there), they move into the [`SUPERVISOR_LEAF`] first; any other
    /// process is refused: it is not xvisor's to move.
    pub fn create(&mut self, limits: &Limits, companions: &[i32]) -> Result<(), CgroupError> {
        let result = self.create_all(limits, companions);
        if result.is_err() {
            let _ = self.remove(Duration::ZERO);
        }
        self.lock = None;
        result
    }

    /// Whether `dir`'s base must lose its processes before a controller
    /// can be enabled there.
    fn must_arrive(dir: &Dir) -> bool {
        let enabled = std::fs::read_to_string(dir.base.join("cgroup.subtree_control")).unwrap_or_default();
        dir.version == Version::V2
            && dir
                .controllers
                .iter()
                .any(|c| *c != FREEZER && !enabled.split_whitespace().any(|e| e == *c))
            && holds_processes(&dir.base)
    }

    /// Moves xvisor's processes (this one and `companions`) out of `dir`'s
    /// base into the shared leaf. Other xvisor runs starting in the same
    /// cgroup are waited for (they move as well), with the lock let go
    /// meanwhile; anything else there is refused. Leaves the base locked.
    fn arrive(&mut self, dir: &Dir, companions: &[i32]) -> Result<(), CgroupError> {
        let base = dir.base.clone();
        let leaf = base.join(SUPERVISOR_LEAF);
        let mut ours = vec![std::process::id() as i32];
        ours.extend_from_slice(companions);
        let start = Instant::now();
        loop {
            self.lock = Some(lock_cgroup(&base)?);
            let others: Vec<i32> = processes(&base).into_iter().filter(|p| !ours.contains(p)).collect();
            if !others.iter().all(|p| same_program(*p)) || (!others.is_empty() && start.elapsed() > ARRIVAL_PATIENCE) {
                return Err(CgroupError::Populated {
                    option: self.option(dir.first_controller()),
                    path: base,
                });
            }
            if self.moved.is_none() {
                match std::fs::create_dir(&leaf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => {
                        return Err(CgroupError::Create {
                            option: self.option(dir.first_controller()),
                            path: leaf,
                            error,
                        })
                    }
                }
                let moved = self.moved.insert(Moved {
                    base: base.clone(),
                    pids: Vec::new(),
                });
                for pid in &ours {
                    write_file(leaf.join("cgroup.procs"), &pid.to_string())?;
                    moved.pids.push(*pid);
                }
            }
            if others.is_empty() {
                return Ok(());
            }
            self.lock = None;
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn create_all(&mut self, limits: &Limits, companions: &[i32]) -> Result<(), CgroupError> {
        for i in self.created..self.dirs.len() {
            let dir = self.dirs[i].clone();
            if self.moved.is_none() && Self::must_arrive(&dir) {
                self.arrive(&dir, companions)?;
            }
            self.prepare_the_way(&dir)?;
            let mut made = std::fs::create_dir(&dir.path);
            if made.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
                // A parent shared with another container went with that
                // container's end between our look and our mkdir: once more.
                if self.prepare_the_way(&dir).is_ok() {
                    made = std::fs::create_dir(&dir.path);
                }
            }
            if let Err(error) = made {
                return Err(CgroupError::Create {
                    option: self.option(dir.first_controller()),
                    path: dir.path,
                    error,
                });
            }
            self.created = i + 1;
            write_limits(&dir, limits)?;
        }
        Ok(())
    }

    /// The v2 directory, for creating the instance directly inside it.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.version == Version::V2)
            .map(|d| d.path.as_path())
    }

    /// The directory that freezes the instance, when one was planned.
    pub fn freezer_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.contains(&FREEZER))
            .map(|d| d.path.as_path())
    }

    /// Thaws the instance if it was frozen (a frozen process takes even
    /// SIGKILL only once thawed).
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer_dir() {
            Some(dir) if self.created > 0 => set_frozen(dir, false),
            _ => Ok(()),
        }
    }

    /// Directories that did not exist and were made on the way to the
    /// instance's, in the order made.
    pub fn made_on_the_way(&self) -> &[PathBuf] {
        &self.made_on_the_way
    }

    /// What the instance's `/sys/fs/cgroup` shows: the host's hierarchies
    /// in which it has a directory (see [`CgroupMounts::shown`]).
    pub fn view(&self) -> CgroupMounts {
        self.mounts.clone().shown(&self.own_hierarchies())
    }

    /// The hierarchies the instance has a directory on.
    pub fn own_hierarchies(&self) -> CgroupView {
        let mut view = CgroupView::default();
        for d in &self.dirs {
            match d.version {
                Version::V2 => view.v2 = true,
                Version::V1 => view.v1_controllers.extend(d.controllers.iter().map(|c| c.to_string())),
            }
        }
        view
    }

    /// Whether [`create`](Self::create) looks able to make the planned
    /// directories as things are: the caller may create entries in each
    /// base, and on v2 nothing but xvisor's own processes would have to
    /// leave a base for its controllers to be enabled. A cheap look for a
    /// cgroup nobody asked for (xvisor's default limits), before its
    /// watchdog is started; `create` still decides.
    pub fn looks_makeable(&self) -> bool {
        self.dirs.iter().all(|d| {
            let parent = d.path.parent().unwrap_or(&d.base);
            let foreign = || {
                processes(&d.base)
                    .iter()
                    .any(|p| *p as u32 != std::process::id() && !same_program(*p))
            };
            xvisor_sys::fs::may_create_in(parent) && !(d.version == Version::V2 && Self::must_arrive(d) && foreign())
        })
    }

    /// Whether the instance has a cgroup with `controller` (`pids`: its
    /// processes are bounded there).
    pub fn has_controller(&self, controller: &str) -> bool {
        self.dirs.iter().any(|d| d.controllers.contains(&controller))
    }

    /// Every directory, for the clean-up watchdog.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Moves process `pid` into every directory (`skip_v2` when it was born
    /// there already, `skip_v1` when it entered the v1 ones itself, see
    /// [`Self::v1_entry`]).
    pub fn add_process(&self, pid: i32, skip_v2: bool, skip_v1: bool) -> Result<(), CgroupError> {
        for d in &self.dirs {
            if (skip_v2 && d.version == Version::V2) || (skip_v1 && d.version == Version::V1) {
                continue;
            }
            write_file(d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The `tasks` files of the v1 directories, opened for the instance's
    /// first process to enter them itself ([`V1Entry::enter`]); `None`
    /// without v1 directories. Moving another process into a cgroup (a pid
    /// written to `cgroup.procs`) write-locks every thread group of the
    /// host, which waits for an RCU grace period: 4–12 ms on an idle
    /// 2-CPU VM, more than the rest of a start. A single thread moving
    /// itself (`0` written to `tasks`) takes no such lock (about 0.07 ms).
    /// On v2 the process is born in its cgroup instead
    /// (`CLONE_INTO_CGROUP`).
    pub fn v1_entry(&self) -> Result<Option<V1Entry>, CgroupError> {
        let mut files = Vec::new();
        for d in self.dirs[..self.created].iter().filter(|d| d.version == Version::V1) {
            let path = d.path.join("tasks");
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|error| CgroupError::Write {
                    path: path.clone(),
                    error,
                })?;
            files.push((path, file));
        }
        Ok((!files.is_empty()).then_some(V1Entry { files }))
    }

    /// How many times the kernel's OOM killer killed a process in the
    /// instance's memory cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(d) = self.dirs.iter().find(|d| d.controllers.contains(&"memory")) else {
            return 0;
        };
        let (file, key) = match d.version {
            Version::V2 => ("memory.events", "oom_kill"),
            Version::V1 => ("memory.oom_control", "oom_kill"),
        };
        std::fs::read_to_string(d.path.join(file))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    /// Removes the directories, waiting up to `patience` for the instance's
    /// last processes (already killed) to leave; then those made on the way
    /// to them, when nothing else has come to live there (never waited for:
    /// other containers may share them).
    ///
    /// Then xvisor's processes leave the shared leaf (see [`leave`]).
    pub fn remove(&mut self, patience: Duration) -> Result<(), CgroupError> {
        let existing: Vec<PathBuf> = self.dirs[..self.created].iter().map(|d| d.path.clone()).collect();
        remove_dirs(&existing, patience)?;
        self.created = 0;
        while let Some(dir) = self.made_on_the_way.pop() {
            let _ = std::fs::remove_dir(dir);
        }
        let Some(moved) = self.moved.take() else {
            return Ok(());
        };
        let _lock = match self.lock.take() {
            Some(held) => held,
            None => lock_cgroup(&moved.base)?,
        };
        leave(&moved.base, &moved.pids, patience)
    }
}

/// The v1 cgroups of an instance, to be entered by its first process
/// itself (see [`InstanceCgroup::v1_entry`]).
#[derive(Debug)]
pub struct V1Entry {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl V1Entry {
    /// Moves the calling thread into every directory. The caller must be
    /// single-threaded (only the calling thread moves; its children are
    /// born where it is).
    pub fn enter(&self) -> Result<(), CgroupError> {
        for (path, file) in &self.files {
            let mut file = file;
            io::Write::write_all(&mut file, b"0").map_err(|error| CgroupError::Write {
                path: path.clone(),
                error,
            })?;
        }
        Ok(())
    }
}

/// Removes cgroup directories, retrying while they are busy. A directory
/// that is already gone is fine. Used by the supervisor and its watchdog.
pub fn remove_dirs(paths: &[PathBuf], patience: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    // A reaped process may still count in its cgroup until its last
    // switch away from its CPU (a busy host delays that): short waits
    // first, since the usual wait is that short.
    let mut pause = Duration::from_micros(20);
    for path in paths {
        loop {
            match std::fs::remove_dir(path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::EBUSY) && start.elapsed() < patience => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
                Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::EBUSY) => {
                    return Err(CgroupError::Busy {
                        path: path.clone(),
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                Err(error) => {
                    return Err(CgroupError::Write {
                        path: path.clone(),
                        error,
                    })
                }
            }
        }
    }
    Ok(())
}

/// Asks the freezer of cgroup directory `dir` to freeze or thaw it: v1
/// `freezer.state` (`FROZEN`, `THAWED`) or v2 `cgroup.freeze` (1, 0).
/// Returns at once; see [`frozen`] and [`freeze`].
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let v1 = dir.join("freezer.state");
    if v1.exists() {
        return write_file(v1, if frozen { "FROZEN" } else { "THAWED" });
    }
    let v2 = dir.join("cgroup.freeze");
    if v2.exists() {
        return write_file(v2, if frozen { "1" } else { "0" });
    }
    Err(CgroupError::NoFreezer {
        path: dir.to_path_buf(),
    })
}

/// Whether every process of cgroup directory `dir` is frozen (`None`: the
/// directory has no freezer, or is gone). A v1 cgroup on its way
/// (`FREEZING`) is not frozen yet.
pub fn frozen(dir: &Path) -> Option<bool> {
    if let Ok(state) = std::fs::read_to_string(dir.join("freezer.state")) {
        return Some(state.trim() == "FROZEN");
    }
    let events = std::fs::read_to_string(dir.join("cgroup.events")).ok()?;
    Some(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// Freezes cgroup directory `dir` and waits until every process in it has
/// stopped; when that takes longer than `patience`, thaws it again and
/// fails, so a half-frozen instance is never left behind.
pub fn freeze(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        // v1 may stay FREEZING while a task is in a state it cannot freeze
        // yet; asking again retries those.
        set_frozen(dir, true)?;
        if frozen(dir) == Some(true) {
            return Ok(());
        }
        if start.elapsed() > patience {
            let _ = set_frozen(dir, false);
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Gives a new v1 cpuset cgroup its parent's CPUs and memory nodes.
fn inherit_cpuset(parent: &Path, dir: &Path) -> io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = std::fs::read_to_string(parent.join(file))?;
        std::fs::write(dir.join(file), value.trim())?;
    }
    Ok(())
}

/// cgroup v1's `cpu.shares` (2–262144) as cgroup v2's `cpu.weight`
/// (1–10000), the conversion the other runtimes use: 2 → 1, 1024 → 39,
/// 262144 → 10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

/// Writes the limits that are set; a controller placed without a limit
/// keeps the kernel's defaults.
fn write_limits(dir: &Dir, limits: &Limits) -> Result<(), CgroupError> {
    let p = |f: &str| dir.path.join(f);
    for c in &dir.controllers {
        match (*c, dir.version) {
            ("memory", Version::V2) => {
                if let Some(m) = limits.memory_bytes {
                    write_file(p("memory.max"), &m.to_string())?;
                    if p("memory.swap.max").exists() {
                        write_file(p("memory.swap.max"), "0")?;
                    }
                }
            }
            ("memory", Version::V1) => {
                if let Some(m) = limits.memory_bytes {
                    write_file(p("memory.limit_in_bytes"), &m.to_string())?;
                    // With swap accounting, memory + swap gets the same
                    // ceiling so the limit cannot be dodged by swapping.
                    if p("memory.memsw.limit_in_bytes").exists() {
                        write_file(p("memory.memsw.limit_in_bytes"), &m.to_string())?;
                    }
                }
            }
            ("pids", _) => {
                if let Some(n) = limits.pids {
                    write_file(p("pids.max"), &n.to_string())?;
                }
            }
            ("cpu", v) => write_cpu_limits(&dir.path, v, limits)?,
            ("cpuset", v) => {
                if v == Version::V1 {
                    // Set before any task joins: an empty cpuset takes none.
                    let parent = dir.path.parent().unwrap_or(&dir.path);
                    inherit_cpuset(parent, &dir.path).map_err(|error| CgroupError::Write {
                        path: dir.path.join("cpuset.cpus"),
                        error,
                    })?;
                }
                if let Some(cpus) = &limits.cpuset_cpus {
                    write_file(p("cpuset.cpus"), cpus)?;
                }
                if let Some(mems) = &limits.cpuset_mems {
                    write_file(p("cpuset.mems"), mems)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn write_cpu_limits(dir: &Path, version: Version, limits: &Limits) -> Result<(), CgroupError> {
    let p = |f: &str| dir.join(f);
    let period = limits.cpu_period_us.unwrap_or(100_000);
    let quota = limits
        .cpus
        .map(|cpus| ((cpus * period as f64).round() as u64).max(1000));
    match version {
        Version::V2 => {
            if quota.is_some() || limits.cpu_period_us.is_some() {
                let quota = quota.map_or("max".to_string(), |q| q.to_string());
                write_file(p("cpu.max"), &format!("{quota} {period}"))?;
            }
            if let Some(shares) = limits.cpu_shares {
                write_file(p("cpu.weight"), &shares_to_weight(shares).to_string())?;
            }
        }
        Version::V1 => {
            if let Some(shares) = limits.cpu_shares {
                write_file(p("cpu.shares"), &shares.to_string())?;
            }
            if quota.is_some() || limits.cpu_period_us.is_some() {
                write_file(p("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = quota {
                write_file(p("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            // The period first: the runtime may not exceed it.
            if let Some((rt_period, rt_runtime)) = limits.cpu_realtime {
                if let Some(period) = rt_period {
                    write_file(p("cpu.rt_period_us"), &period.to_string())?;
                }
                if let Some(runtime) = rt_runtime {
                    write_file(p("cpu.rt_runtime_us"), &runtime.to_string())?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/pids rw,nosuid shared:12 - cgroup cgroup rw,pids
29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:14 - cgroup cgroup rw,xattr,name=systemd
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
3:pids:/
2:cpu,cpuacct:/
0::/
";

    #[test]
    fn hybrid_host_uses_v1_for_controllers_v2_lacks() {
        let host = CgroupHost::parse(HYBRID_MOUNTINFO, HYBRID_SELF, |_| Some("hugetlb\n".into()));
        let mem = host.hierarchy_for("memory").unwrap();
        assert_eq!(mem.version, Version::V1);
        assert_eq!(mem.own_dir, PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"));
        let cpu = host.hierarchy_for("cpu").unwrap();
        assert_eq!(cpu.own_dir, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(host.hierarchy_for("hugetlb").unwrap().version, Version::V2);
        assert!(host.hierarchy_for("systemd").is_none());
    }

    #[test]
    fn unified_host_uses_v2() {
        let mi = "30 25 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let own = "0::/user.slice/user-1000.slice/session-1.scope\n";
        let host = CgroupHost::parse(mi, own, |d| {
            assert_eq!(
                d,
                Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope")
            );
            Some("cpu memory pids".into())
        });
        let h = host.hierarchy_for("pids").unwrap();
        assert_eq!(h.version, Version::V2);
    }

    #[test]
    fn bind_mounted_hierarchy_strips_its_root() {
        let mi = "30 25 0:24 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let own = "0::/docker/abc/inner\n";
        let host = CgroupHost::parse(mi, own, |_| Some("memory".into()));
        assert_eq!(
            host.hierarchy_for("memory").unwrap().own_dir,
            PathBuf::from("/sys/fs/cgroup/inner")
        );
    }

    #[test]
    fn garbage_input_yields_no_hierarchies() {
        let host = CgroupHost::parse("x - y\n\n - - -", "::::\nnonsense", |_| None);
        assert!(host.hierarchy_for("memory").is_none());
    }

    #[test]
    fn the_hosts_cgroup_mounts_are_read_from_mountinfo() {
        let v2 = "23 27 0:22 / /sys rw - sysfs sysfs rw\n\
                  30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(CgroupMounts::parse(v2), CgroupMounts::Unified);
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
                      32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup ro,memory,clone_children\n\
                      40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                      42 31 0:39 / /sys/fs/cgroup/a/deeper rw - cgroup cgroup rw,pids\n";
        let v1 = |name: &str, options: &[&str]| CgroupMount {
            name: name.into(),
            v1_options: Some(options.iter().map(|o| o.to_string()).collect()),
        };
        assert_eq!(
            CgroupMounts::parse(hybrid),
            CgroupMounts::Split(vec![
                v1("cpu,cpuacct", &["cpu", "cpuacct"]),
                v1("memory", &["memory"]),
                v1("systemd", &["xattr", "name=systemd"]),
                CgroupMount {
                    name: "unified".into(),
                    v1_options: None
                },
            ])
        );
        // A later mount on /sys/fs/cgroup hides what was below it.
        let covered = format!("{hybrid}50 23 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n");
        assert_eq!(CgroupMounts::parse(&covered), CgroupMounts::None);
        assert_eq!(
            CgroupMounts::parse("23 27 0:22 / /sys rw - sysfs sysfs rw\n"),
            CgroupMounts::None
        );
    }

    #[test]
    fn the_view_shows_only_hierarchies_with_the_instances_own_directory() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
                      32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                      33 31 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let names = |mounts: CgroupMounts| match mounts {
            CgroupMounts::Split(m) => m.into_iter().map(|m| m.name).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let view = |v2: bool, v1: &[&str]| CgroupView {
            v2,
            v1_controllers: v1.iter().map(|c| c.to_string()).collect(),
        };
        assert_eq!(
            names(CgroupMounts::parse(hybrid).shown(&view(false, &["memory"]))),
            ["memory"]
        );
        assert_eq!(
            names(CgroupMounts::parse(hybrid).shown(&view(false, &["cpuacct", "pids"]))),
            ["cpu,cpuacct", "pids"]
        );
        assert_eq!(names(CgroupMounts::parse(hybrid).shown(&view(true, &[]))), ["unified"]);
        assert_eq!(CgroupMounts::parse(hybrid).shown(&view(false, &[])), CgroupMounts::None);
        let v2 = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(CgroupMounts::parse(v2).shown(&view(true, &[])), CgroupMounts::Unified);
        assert_eq!(
            CgroupMounts::parse(v2).shown(&view(false, &["memory"])),
            CgroupMounts::None
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/a\\04"), "/a\\04");
        assert_eq!(unescape_mountinfo("\\"), "\\");
    }

    fn fake_host(root: &Path, version: Version) -> CgroupHost {
        CgroupHost {
            hierarchies: vec![Hierarchy {
                version,
                controllers: vec!["memory".into(), "pids".into(), "cpu".into()],
                own_dir: root.to_path_buf(),
            }],
            mounts: CgroupMounts::None,
        }
    }

    fn own(name: &str) -> Placement {
        Placement::Own { name: name.into() }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xvisor-cgtest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn v1_limits_are_written_where_expected() {
        let root = temp_dir("v1");
        let limits = Limits {
            memory_bytes: Some(256 << 20),
            pids: Some(64),
            cpus: Some(0.5),
            ..Default::default()
        };
        let mut cg = InstanceCgroup::plan(&fake_host(&root, Version::V1), &own("t1"), &limits, false).unwrap();
        assert!(!root.join("xvisor-t1").exists(), "planning created something");
        cg.create(&limits, &[]).unwrap();
        let dir = root.join("xvisor-t1");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), (256u64 << 20).to_string());
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(cg.paths(), vec![dir.clone()]);
        let view = CgroupView {
            v2: false,
            v1_controllers: vec!["memory".into(), "pids".into(), "cpu".into()],
        };
        assert_eq!(cg.own_hierarchies(), view);
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 2);
        cg.remove(Duration::ZERO).unwrap_err(); // a real cgroup directory removes with its files; a plain one does not
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v2_enables_controllers_in_the_parent() {
        let root = temp_dir("v2");
        let limits = Limits {
            memory_bytes: None,
            pids: Some(10),
            cpus: Some(2.0),
            ..Default::default()
        };
        let mut cg = InstanceCgroup::plan(&fake_host(&root, Version::V2), &own("t2"), &limits, false).unwrap();
        cg.create(&limits, &[]).unwrap();
        assert_eq!(cg.v2_dir(), Some(root.join("xvisor-t2").as_path()));
        let dir = root.join("xvisor-t2");
        assert_eq!(std::fs::read_to_string(dir.join("cpu.max")).unwrap(), "200000 100000");
        // A plain directory records only the last write; the real file
        // accumulates. What matters is that an enable was written.
        assert!(std::fs::read_to_string(root.join("cgroup.subtree_control"))
            .unwrap()
            .starts_with('+'));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A fake non-root v2 cgroup (it has `cgroup.type`) holding `procs`.
    fn fake_v2_cgroup(dir: &Path, procs: &str) {
        std::fs::write(dir.join("cgroup.type"), "domain\n").unwrap();
        std::fs::write(dir.join("cgroup.procs"), procs).unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    }

    #[test]
    fn a_cgroup_that_would_need_others_moved_does_not_look_makeable() {
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            pids: Some(20),
            ..Default::default()
        };
        let root = temp_dir("makeable");
        // Only xvisor's own process (this test) there: it would move.
        fake_v2_cgroup(&root, &format!("{}\n", std::process::id()));
        let planned = |v| InstanceCgroup::plan(&fake_host(&root, v), &own("m"), &limits, false).unwrap();
        assert!(planned(Version::V2).looks_makeable());
        // pid 1 is never this test: another program holds the cgroup.
        fake_v2_cgroup(&root, "1\n");
        assert!(!planned(Version::V2).looks_makeable());
        // v1 has no such rule.
        assert!(planned(Version::V1).looks_makeable());
        // Controllers already enabled: nothing needs to move.
        std::fs::write(root.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        assert!(planned(Version::V2).looks_makeable());
        // A base the caller cannot create in (root may write anywhere: one
        // that is not there).
        let missing = root.join("gone");
        let host = fake_host(&missing, Version::V1);
        assert!(!InstanceCgroup::plan(&host, &own("m"), &limits, false)
            .unwrap()
            .looks_makeable());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn v2_controllers_are_never_enabled_in_a_cgroup_holding_processes() {
        let root = temp_dir("populated");
        // pid 1 is never this test: another program holds the cgroup.
        fake_v2_cgroup(&root, "1\n");
        for limits in [
            Limits {
                memory_bytes: Some(64 << 20),
                ..Default::default()
            },
            Limits {
                pids: Some(20),
                ..Default::default()
            },
            Limits {
                cpus: Some(0.5),
                ..Default::default()
            },
        ] {
            let mut cg = InstanceCgroup::plan(&fake_host(&root, Version::V2), &own("p"), &limits, false).unwrap();
            let e = cg.create(&limits, &[]).unwrap_err();
            let message = e.to_string();
            assert!(matches!(e, CgroupError::Populated { .. }), "{message}");
            assert!(
                message.contains(&format!(
                    "cgroup v2 forbids controllers in {}, which holds processes",
                    root.display()
                )),
                "{message}"
            );
            assert_eq!(
                std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
                ""
            );
            assert!(!root.join("xvisor-p").exists());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn xvisor_alone_in_its_cgroup_moves_into_a_leaf_and_puts_everything_back() {
        let root = temp_dir("leaf");
        let me = std::process::id().to_string();
        fake_v2_cgroup(&root, &format!("{me}\n"));
        std::fs::write(root.join("cgroup.stat"), "nr_descendants 1\nnr_dying_descendants 0\n").unwrap();
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            ..Default::default()
        };
        let mut cg = InstanceCgroup::plan(&fake_host(&root, Version::V2), &own("l"), &limits, false).unwrap();
        cg.create(&limits, &[]).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        let leaf = root.join(SUPERVISOR_LEAF);
        assert_eq!(read(leaf.join("cgroup.procs")), me);
        assert_eq!(read(root.join("cgroup.subtree_control")), "+memory");
        assert_eq!(read(root.join("xvisor-l/memory.max")), (64u64 << 20).to_string());
        // What the kernel does by itself, a plain tree needs done: the
        // instance's directory goes with its files, the subtree_control
        // file reads back without the sign, the leaf empties as we leave.
        std::fs::remove_dir_all(root.join("xvisor-l")).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::remove_file(leaf.join("cgroup.procs")).unwrap();
        std::fs::write(root.join("cgroup.procs"), "").unwrap();
        cg.remove(Duration::ZERO).unwrap();
        assert_eq!(read(root.join("cgroup.subtree_control")), "-memory");
        assert_eq!(read(root.join("cgroup.procs")), me);
        assert!(!leaf.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_leaf_stays_while_another_instance_uses_the_controllers() {
        let root = temp_dir("leaf-shared");
        let me = std::process::id().to_string();
        fake_v2_cgroup(&root, &format!("{me}\n"));
        // Our leaf and another run's instance.
        std::fs::write(root.join("cgroup.stat"), "nr_descendants 2\nnr_dying_descendants 0\n").unwrap();
        let limits = Limits {
            pids: Some(8),
            ..Default::default()
        };
        let mut cg = InstanceCgroup::plan(&fake_host(&root, Version::V2), &own("m"), &limits, false).unwrap();
        cg.create(&limits, &[]).unwrap();
        std::fs::remove_dir_all(root.join("xvisor-m")).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "pids\n").unwrap();
        cg.remove(Duration::ZERO).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "pids\n"
        );
        assert!(root.join(SUPERVISOR_LEAF).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_chosen_path_is_made_below_our_own_and_its_parents_removed_once_empty() {
        let root = temp_dir("chosen");
        let mut host = fake_host(&root, Version::V1);
        host.hierarchies[0].controllers = vec!["cpu".into()];
        let limits = Limits {
            cpus: Some(0.4),
            cpu_period_us: Some(500_000),
            cpu_shares: Some(2048),
            cpu_realtime: Some((Some(1_000_000), Some(950_000))),
            ..Default::default()
        };
        let placement = Placement::Chosen(PathBuf::from("a/b/leaf"));
        let mut cg = InstanceCgroup::plan(&host, &placement, &limits, false).unwrap();
        let leaf = root.join("a/b/leaf");
        assert_eq!(cg.paths(), vec![leaf.clone()]);
        std::fs::create_dir(root.join("a")).unwrap(); // someone else's
        cg.create(&limits, &[]).unwrap();
        let read = |f: &str| std::fs::read_to_string(leaf.join(f)).unwrap();
        assert_eq!(read("cpu.shares"), "2048");
        assert_eq!(read("cpu.cfs_period_us"), "500000");
        assert_eq!(read("cpu.cfs_quota_us"), "200000");
        assert_eq!(read("cpu.rt_period_us"), "1000000");
        assert_eq!(read("cpu.rt_runtime_us"), "950000");
        // What the kernel does to a cgroup directory, a plain one needs done.
        std::fs::remove_dir_all(&leaf).unwrap();
        cg.remove(Duration::ZERO).unwrap();
        assert!(!root.join("a/b").exists(), "the directory made on the way stays");
        assert!(root.join("a").exists(), "a directory that existed before is gone");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn accounting_controllers_join_a_chosen_path_on_v1_only() {
        let host = CgroupHost::parse(HYBRID_MOUNTINFO, HYBRID_SELF, |_| Some("memory pids\n".into()));
        let limits = Limits {
            pids: Some(5),
            ..Default::default()
        };
        let chosen = Placement::Chosen(PathBuf::from("x"));
        let cg = InstanceCgroup::plan(&host, &chosen, &limits, false).unwrap();
        // v2 offers memory and pids here: one directory there, nothing to
        // enable for accounting alone; cpu lives on v1.
        assert_eq!(
            cg.paths(),
            vec![
                PathBuf::from("/sys/fs/cgroup/unified/x"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/x")
            ]
        );
        let cg = InstanceCgroup::plan(&host, &own("x"), &limits, false).unwrap();
        assert_eq!(cg.paths(), vec![PathBuf::from("/sys/fs/cgroup/unified/xvisor-x")]);
    }

    #[test]
    fn shares_convert_to_weights_as_other_runtimes_do() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn missing_controller_is_refused_by_name() {
        let host = CgroupHost::default();
        let e = InstanceCgroup::plan(
            &host,
            &own("x"),
            &Limits {
                pids: Some(1),
                ..Default::default()
            },
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot enforce --pids: this host has no pids cgroup controller"
        );
    }

    #[test]
    fn the_freezer_is_v1_where_mounted_and_v2_otherwise() {
        let hybrid_mi = format!(
            "{HYBRID_MOUNTINFO}31 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid shared:15 - cgroup cgroup rw,freezer\n"
        );
        let hybrid_self = format!("5:freezer:/outer\n{HYBRID_SELF}");
        let host = CgroupHost::parse(&hybrid_mi, &hybrid_self, |_| Some("hugetlb\n".into()));
        let cg = InstanceCgroup::plan(&host, &own("f"), &Limits::default(), true).unwrap();
        assert_eq!(
            cg.freezer_dir(),
            Some(Path::new("/sys/fs/cgroup/freezer/outer/xvisor-f"))
        );
        // A unified host freezes in the v2 directory that also holds the
        // limits, without enabling any controller for it.
        let host = CgroupHost::parse(
            "30 25 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/a\n",
            |_| Some("memory pids".into()),
        );
        let limits = Limits {
            pids: Some(5),
            ..Default::default()
        };
        let cg = InstanceCgroup::plan(&host, &own("f"), &limits, true).unwrap();
        assert_eq!(cg.paths(), vec![PathBuf::from("/sys/fs/cgroup/a/xvisor-f")]);
        assert_eq!(cg.freezer_dir(), cg.v2_dir());
        assert!(InstanceCgroup::plan(&host, &own("f"), &limits, false)
            .unwrap()
            .freezer_dir()
            .is_none());
    }

    #[test]
    fn freezer_files_are_read_and_written_per_version() {
        let v1 = temp_dir("freeze-v1");
        std::fs::write(v1.join("freezer.state"), "THAWED\n").unwrap();
        assert_eq!(frozen(&v1), Some(false));
        set_frozen(&v1, true).unwrap();
        assert_eq!(frozen(&v1), Some(true));
        let v2 = temp_dir("freeze-v2");
        std::fs::write(v2.join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(v2.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        set_frozen(&v2, true).unwrap();
        assert_eq!(std::fs::read_to_string(v2.join("cgroup.freeze")).unwrap(), "1");
        assert_eq!(frozen(&v2), Some(false), "frozen only once the kernel says so");
        // Never frozen: freeze gives up and thaws again.
        let e = freeze(&v2, Duration::from_millis(20)).unwrap_err().to_string();
        assert!(e.contains("did not all stop"), "{e}");
        assert_eq!(std::fs::read_to_string(v2.join("cgroup.freeze")).unwrap(), "0");
        let none = temp_dir("freeze-none");
        assert_eq!(frozen(&none), None);
        assert!(set_frozen(&none, true).is_err());
        for d in [v1, v2, none] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    /// A fake /sys/fs/cgroup: `v1` hierarchies by their names, `v2` at
    /// `unified` (hybrid) or at the top (pure), with our cgroup `own` in
    /// each.
    fn fake_mounts(tag: &str, v1: &[&str], v2: Option<&str>, own: &str) -> PathBuf {
        let top = temp_dir(tag);
        for h in v1 {
            let root = top.join(h);
            std::fs::create_dir_all(root.join(own)).unwrap();
            std::fs::write(root.join("cgroup.sane_behavior"), "0").unwrap();
        }
        if let Some(at) = v2 {
            let root = top.join(at);
            std::fs::create_dir_all(root.join(own)).unwrap();
            std::fs::write(root.join("cgroup.controllers"), "cpu memory pids").unwrap();
            std::fs::write(root.join(own).join("cgroup.controllers"), "memory pids").unwrap();
            if !own.is_empty() {
                std::fs::write(root.join(own).join("cgroup.type"), "domain").unwrap();
            }
        }
        top
    }

    #[test]
    fn known_mounts_find_the_hierarchies_without_mountinfo() {
        // Hybrid: v1 controllers, an empty v2 beside them; only the
        // hierarchies asked about are looked at.
        let top = fake_mounts(
            "known-hybrid",
            &["memory", "pids", "cpu,cpuacct"],
            Some("unified"),
            "a/b",
        );
        std::fs::write(top.join("unified/a/b/cgroup.controllers"), "").unwrap();
        let own = "9:name=systemd:/a/b\n8:pids:/a/b\n4:memory:/a/b\n2:cpu,cpuacct:/a/b\n0::/a/b\n";
        let host = CgroupHost::from_known_mounts(own, &top, &["memory", "pids"]).unwrap();
        let memory = host.hierarchy_for("memory").unwrap();
        assert_eq!(
            (memory.version, memory.own_dir.clone()),
            (Version::V1, top.join("memory/a/b"))
        );
        assert_eq!(host.hierarchy_for("pids").unwrap().own_dir, top.join("pids/a/b"));
        assert!(host.hierarchy_for("cpu").is_none(), "not asked about");
        assert_eq!(host.mounts, CgroupMounts::None, "no view for a default limit");
        let _ = std::fs::remove_dir_all(&top);
        // Pure v2 at the top.
        let top = fake_mounts("known-v2", &[], Some(""), "user.slice/x.scope");
        let host = CgroupHost::from_known_mounts("0::/user.slice/x.scope\n", &top, &["memory", "pids"]).unwrap();
        let pids = host.hierarchy_for("pids").unwrap();
        assert_eq!(
            (pids.version, pids.own_dir.clone()),
            (Version::V2, top.join("user.slice/x.scope"))
        );
        let _ = std::fs::remove_dir_all(&top);
    }

    #[test]
    fn known_mounts_give_up_on_anything_unexpected() {
        let top = fake_mounts("known-odd", &["memory"], None, "a");
        let find = |own: &str| CgroupHost::from_known_mounts(own, &top, &["memory"]);
        assert!(find("4:memory:/a\n").is_some());
        // Our cgroup not where /proc/self/cgroup says (a bind-mounted
        // hierarchy whose root is not the hierarchy's).
        assert!(find("4:memory:/elsewhere\n").is_none());
        // A path relative to a cgroup namespace's root, a deleted cgroup,
        // names that would leave the top, garbage.
        for odd in [
            "4:memory:/../a\n",
            "4:memory:/a (deleted)\n",
            "4:../memory:/a\n",
            "4:memory\n",
            "4:memory:a\n",
        ] {
            assert!(find(odd).is_none(), "{odd:?}");
        }
        // Not the root of a v1 hierarchy.
        std::fs::remove_file(top.join("memory/cgroup.sane_behavior")).unwrap();
        assert!(find("4:memory:/a\n").is_none());
        // Nothing found at all.
        assert!(find("").is_none());
        let _ = std::fs::remove_dir_all(&top);
    }

    #[test]
    fn defaults_fill_what_is_not_asked_for_where_the_host_has_it() {
        let v1 = |controllers: &[&str]| CgroupHost {
            hierarchies: controllers
                .iter()
                .map(|c| Hierarchy {
                    version: Version::V1,
                    controllers: vec![c.to_string()],
                    own_dir: PathBuf::from("/nonexistent"),
                })
                .collect(),
            mounts: CgroupMounts::None,
        };
        let host = v1(&["memory", "pids"]);
        let d = Limits::default().with_defaults(&host);
        assert_eq!(d.pids, Some(DEFAULT_PIDS));
        let ram = xvisor_sys::process::total_ram().unwrap();
        assert_eq!(d.memory_bytes, Some((ram / 2) & !((1 << 20) - 1)));
        let asked = Limits {
            memory_bytes: Some(1 << 30),
            pids: Some(10),
            ..Default::default()
        };
        assert_eq!(asked.with_defaults(&host), asked);
        // No controller, no default for it.
        let d = Limits::default().with_defaults(&v1(&["pids"]));
        assert_eq!((d.memory_bytes, d.pids), (None, Some(DEFAULT_PIDS)));
        assert!(Limits::default().with_defaults(&v1(&[])).is_empty());
    }

    #[test]
    fn the_default_memory_is_half_of_the_lower_of_ram_and_our_cgroups_limit() {
        let dir = temp_dir("default-memory");
        std::fs::write(dir.join("memory.max"), "536870912\n").unwrap();
        let host = CgroupHost {
            hierarchies: vec![Hierarchy {
                version: Version::V2,
                controllers: vec!["memory".into()],
                own_dir: dir.clone(),
            }],
            mounts: CgroupMounts::None,
        };
        assert_eq!(default_memory(&host), Some(256 << 20));
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        let ram = xvisor_sys::process::total_ram().unwrap();
        assert_eq!(default_memory(&host), Some((ram / 2) & !((1 << 20) - 1)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn remove_tolerates_missing_dirs() {
        remove_dirs(&[PathBuf::from("/nonexistent/xvisor-test")], Duration::ZERO).unwrap();
    }
}

#[cfg(test)]
mod corpus {
    use super::*;

    /// Replays the fuzz corpus (fuzz/corpus/cgroup_parse) on every test run.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cgroup_parse");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let (mountinfo, own) = text.split_once('\u{0}').unwrap_or((&text, "0::/\n"));
            let host = CgroupHost::parse(mountinfo, own, |_| Some("memory".into()));
            let _ = host.hierarchy_for("memory");
            seen += 1;
        }
        assert!(seen >= 2);
        let escaped = std::fs::read_to_string(dir.join("escaped_v2")).unwrap();
        let (mi, own) = escaped.split_once('\u{0}').unwrap();
        let host = CgroupHost::parse(mi, own, |_| Some("memory".into()));
        assert_eq!(
            host.hierarchy_for("memory").unwrap().own_dir,
            PathBuf::from("/sys/fs/cgroup/a b/x/y")
        );
    }
}
