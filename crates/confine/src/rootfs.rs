//! The instance's file tree.
//!
//! Built inside the instance's new mount namespace, before `pivot_root`:
//!
//! 1. every host tree the instance will see through a user's path (the root
//!    directory, volumes, or the whole host root) is cloned as a detached
//!    mount first, so that nothing we mount afterwards can shadow it;
//! 2. a private *staging* tmpfs is mounted over the host's /tmp in this
//!    namespace only; the new root is attached at `staging/root`;
//! 3. the rest is attached into the new root through descriptors resolved
//!    with `RESOLVE_IN_ROOT`, so a symlink inside the tree can never point a
//!    mount back at the host;
//! 4. `pivot_root` into it; the host tree is detached.
//!
//! Every host mount is read-only, `nosuid`, `nodev` unless a volume says `rw`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use xvisor_sys::fs::{self as sysfs, FileKind};
use xvisor_sys::mount::{self, attr, FsOption};

use crate::cgroup::CgroupMounts;

/// What the instance's `/` is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootBase {
    /// The host's system directories only (`/usr`, `/bin`, `/sbin`, `/lib*`,
    /// `/etc` with secrets masked), read-only. The default.
    SystemDirs,
    /// The whole host root, read-only, secrets masked.
    HostRoot,
    /// A directory of the host as `/`, read-only; with `writable`, a
    /// throwaway overlay (upper layer on tmpfs) takes the guest's writes.
    Directory { path: PathBuf, writable: bool },
    /// An image's unpacked layers (bottom first), each mounted read-only as
    /// an overlay lower layer under a throwaway writable upper layer on
    /// tmpfs. The image's own /root and home directories are kept (no home
    /// tmpfs); /proc, /dev, /sys, /tmp and /etc/hostname are the instance's.
    Image { layers: Vec<PathBuf> },
    /// An OCI bundle's root directory, bound read-write as `/` itself, so
    /// the guest's writes land in it (engines read them back: `start` after
    /// a stop, copying out, committing). Only the mount points the instance
    /// needs are created in it, resolved inside it; nothing else of
    /// xvisor's is written there: no identity files, no home, no /tmp
    /// (engines mount their own). `/` is made read-only at the end by
    /// [`RootExtras::readonly_root`].
    Bundle { path: PathBuf },
}

/// Most layers an image may have (overlayfs itself takes up to 500).
pub const MAX_IMAGE_LAYERS: usize = 128;

/// A host path made visible inside the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host_path: PathBuf,
    /// Absolute path inside the instance.
    pub target: String,
    pub writable: bool,
    /// A slave of the host's mount (OCI's `rslave`, Kubernetes'
    /// HostToContainer): what the host mounts below the source after the
    /// instance starts appears in it too; nothing mounted in it goes back.
    /// The host's mount holding the source must be shared (or itself a
    /// slave); a private one is refused. Otherwise the volume is a private
    /// copy, fixed when the instance starts.
    pub slave: bool,
}

/// Everything that decides the instance's file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSpec {
    pub base: RootBase,
    pub volumes: Vec<Volume>,
    /// The guest's home directory (an empty private tmpfs).
    pub home: String,
    /// Owner of the home directory, as ids inside the instance.
    pub home_owner: (u32, u32),
    /// Written to the instance's /etc/hostname and /etc/hosts.
    pub hostname: String,
    /// The instance's /etc/resolv.conf, shown read-only over the root's own
    /// (see [`resolv_conf`]); `None` keeps what the root has. For
    /// [`RootBase::Image`] and roots of host directories (which otherwise
    /// show the host's); ignored for other roots.
    pub resolv_conf: Option<Vec<u8>>,
    /// Created (where writable) so the guest can start there.
    pub workdir: Option<String>,
    /// What an OCI bundle asks beyond the above (empty for `xvisor run`).
    pub extras: RootExtras,
    /// Bounds of the tmpfs mounts the guest can fill.
    pub tmpfs_sizes: TmpfsSizes,
}

/// How much the guest may put in xvisor's own tmpfs mounts, which live in
/// memory no process owns: without a bound each takes up to half the
/// host's memory (the kernel's default), and a guest without `--memory`
/// could pin several times that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsSizes {
    /// Bytes for each of `/tmp`, the home directory and the throwaway
    /// writable layer (an image's, `--writable`'s).
    pub scratch: u64,
    /// Bytes for `/dev/shm`.
    pub shm: u64,
}

impl TmpfsSizes {
    /// Room for a compiler's or a package manager's temporary files in
    /// each, while an instance left to its defaults pins at most about
    /// 3 GiB of the host's memory.
    pub const DEFAULT_SCRATCH: u64 = 1 << 30;
    /// Docker's default: POSIX shared memory and semaphores rarely need
    /// more (browsers and databases that do say so).
    pub const DEFAULT_SHM: u64 = 64 << 20;
    /// The smallest `scratch` accepted: the writable layer's tmpfs also
    /// holds the overlay's work directory and the instance's identity files.
    pub const MINIMUM_SCRATCH: u64 = 1 << 20;
}

impl Default for TmpfsSizes {
    fn default() -> Self {
        Self {
            scratch: Self::DEFAULT_SCRATCH,
            shm: Self::DEFAULT_SHM,
        }
    }
}

/// A tmpfs's `size=` and `nr_inodes=`: one inode per 8 KiB of size (each
/// costs the kernel about 1 KiB that `size` does not count; source trees
/// average more than 8 KiB a file), at least 1024.
struct TmpfsBound {
    size: String,
    inodes: String,
}

impl TmpfsBound {
    fn new(bytes: u64) -> Self {
        Self {
            size: bytes.to_string(),
            inodes: (bytes / 8192).max(1024).to_string(),
        }
    }

    /// `options` followed by the bound.
    fn with<'a>(&'a self, options: &[FsOption<'a>]) -> Vec<FsOption<'a>> {
        let mut all = options.to_vec();
        all.push(FsOption::Value("size", &self.size));
        all.push(FsOption::Value("nr_inodes", &self.inodes));
        all
    }
}

/// A tmpfs mounted at a path of the instance (an OCI `tmpfs` mount).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TmpfsMount {
    /// Absolute path inside the instance.
    pub target: String,
    /// Size in bytes (the kernel's default, half the memory, when `None`).
    pub size: Option<u64>,
    /// Permission bits of its root directory.
    pub mode: Option<u32>,
    pub readonly: bool,
    pub noexec: bool,
    /// The mount's source as /proc/self/mountinfo shows it (`tmpfs` when
    /// `None`).
    pub source: Option<String>,
}

/// Additions to the tree an OCI bundle may ask for; all empty by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootExtras {
    /// tmpfs mounts, made after the volumes.
    pub tmpfs: Vec<TmpfsMount>,
    /// Paths hidden behind an empty file or a read-only empty directory
    /// (missing ones are skipped).
    pub masked: Vec<String>,
    /// Paths made read-only, recursively (missing ones are skipped).
    pub readonly: Vec<String>,
    /// Make `/` read-only at the end, whatever the base (an OCI bundle's
    /// `root.readonly`: mount points are made first, in a writable tree).
    pub readonly_root: bool,
    /// The instance joins an IPC namespace it does not own: its message
    /// queue file system can be mounted only with privilege over that
    /// namespace, so `/dev/mqueue` stays an empty directory (the queues
    /// themselves work through their system calls).
    pub joined_ipc: bool,
    /// Host device nodes (`/dev/fuse`, `/dev/dri/card0`) bound at the same
    /// path in the instance's `/dev`, beside the default ones: in a user
    /// namespace no node can be made, only a host one shown.
    pub devices: Vec<String>,
    /// `/sys/fs/cgroup` shows the instance's own cgroups: the host's
    /// hierarchies in which it has a directory (`InstanceCgroup::view`),
    /// mounted anew in its cgroup namespace. `None` for an instance
    /// without cgroups of its own: the directory stays empty (each mount
    /// costs the start-up).
    pub cgroup_view: CgroupMounts,
    /// Who the guest's root is on the host, and so what the kernel's own
    /// permission checks already keep from it.
    pub guest_root: GuestRoot,
}

/// Who an instance's root is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestRoot {
    /// Host root (`--userns host`, an engine's config without a user
    /// namespace): every mask applies, `/proc/sys` is read-only.
    #[default]
    HostRoot,
    /// The invoking user (rootless): its supplementary groups still count
    /// on the host.
    Caller,
    /// Host ids of the instance's own: no host user or group.
    OwnIds,
}

impl GuestRoot {
    /// `/proc/sys` may be writable, for the settings of the instance's own
    /// namespaces (the IPC limits, `kernel.msgmax` …; `net.*` would need
    /// CAP_NET_ADMIN, which a guest does not have): the kernel lets only a
    /// namespace's owner change its settings, and host root the rest.
    fn may_write_namespaced_sysctls(self) -> bool {
        self != Self::HostRoot
    }

    /// Whether the kernel's permission checks alone keep a host file of
    /// this owner and mode from the guest (reading it, or listing and
    /// entering it for a directory), so a mask over it would add nothing
    /// but a mount. With ids of its own the guest is "other" to every host
    /// file; a rootless guest is its caller, with the caller's groups.
    fn kept_out_by_permissions(self, st: &sysfs::FdStat) -> bool {
        let other = if st.kind == FileKind::Directory { 0o005 } else { 0o004 };
        match self {
            Self::HostRoot => false,
            Self::Caller => st.uid == 0 && st.mode & (other | other << 3) == 0,
            Self::OwnIds => st.mode & other == 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("--rootfs {0}: no such directory")]
    NoSuchRootDirectory(PathBuf),
    #[error("--rootfs {0}: not a directory")]
    RootNotDirectory(PathBuf),
    #[error("root.path {0}: not a directory")]
    BundleRootNotDirectory(PathBuf),
    #[error("image layer {0}: missing from the image store (import the image again)")]
    MissingLayer(PathBuf),
    #[error("the image has {0} layers; at most {MAX_IMAGE_LAYERS} are supported")]
    TooManyLayers(usize),
    #[error("--volume {0}: no such file or directory on the host")]
    NoSuchVolumeSource(PathBuf),
    #[error("--volume target {0:?}: must be an absolute path without '..'")]
    BadVolumeTarget(String),
    #[error("--volume target {0:?}: /proc, /sys and /dev are the instance's own; mount a volume elsewhere")]
    ReservedVolumeTarget(String),
    #[error(
        "volume {0}: rslave asks for the mounts the host makes below it, but the host's mount holding it is private (make it shared first: mount --make-rshared)"
    )]
    PrivateSlaveSource(PathBuf),
    #[error("--workdir {0:?}: must be an absolute path")]
    BadWorkdir(String),
    #[error("mount target {0:?}: must be an absolute path without '..'")]
    BadMountTarget(String),
    #[error("cannot {action}: {error}")]
    Mount { action: String, error: io::Error },
}

fn fail(action: impl Into<String>) -> impl FnOnce(io::Error) -> RootfsError {
    let action = action.into();
    move |error| RootfsError::Mount { action, error }
}

/// Splits an absolute instance path into its components, refusing `..`.
pub fn instance_path_components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

/// Files under /etc that hold secrets, hidden behind an empty file.
pub const MASKED_ETC_FILES: &[&str] = &[
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "security/opasswd",
    "krb5.keytab",
    "ipsec.secrets",
    "ppp/chap-secrets",
    "ppp/pap-secrets",
    "ssh/ssh_host_rsa_key",
    "ssh/ssh_host_dsa_key",
    "ssh/ssh_host_ecdsa_key",
    "ssh/ssh_host_ed25519_key",
];

/// Directories under /etc that hold secrets, hidden behind an empty,
/// read-only directory.
pub const MASKED_ETC_DIRS: &[&str] = &[
    "sudoers.d",
    "ssl/private",
    "wireguard",
    "letsencrypt",
    "NetworkManager/system-connections",
    "credstore",
    "credstore.encrypted",
    "docker",
    "containerd",
];

/// The host's top-level system directories shown in the default instance.
pub const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

/// The host's package databases, shown read-only in the default
/// instance's private /var: they describe the `/usr` and `/etc` it shows
/// (`apt list --installed`, `dpkg -l`, `rpm -qa`).
pub const PACKAGE_DATABASES: &[&str] = &["var/lib/dpkg", "var/lib/rpm", "var/lib/pacman/local"];

/// Directories of the default instance's private /var whose entries are
/// made again, empty, for each directory the host has there: the
/// directories packages make at installation (`/var/lib/nginx`,
/// `/var/log/nginx`, `/var/cache/man` …), which their daemons expect.
const STATE_DIRS_MIRRORED: &[&str] = &["lib", "log", "cache", "spool"];

/// What the default instance's /var always has (mode 0755 but `tmp`).
const STATE_DIRS_USUAL: &[&str] = &["tmp", "lib", "cache", "log", "spool", "local", "opt", "mail"];

/// Entries of /proc that stay read-only.
const PROC_READONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// Entries of /proc replaced by an empty one: kernel memory, other
/// namespaces' keys, the host's timers and devices, and what the host keeps
/// for root alone (the slab allocator's state, physical page flags, vmalloc
/// areas: material for kernel exploits) — the guest's root is its caller,
/// who may be root.
const PROC_MASKED: &[&str] = &[
    "kcore",
    "keys",
    "timer_list",
    "timer_stats",
    "latency_stats",
    "sched_debug",
    "kallsyms",
    "acpi",
    "asound",
    "scsi",
    "slabinfo",
    "vmallocinfo",
    "pagetypeinfo",
    "kpageflags",
    "kpagecount",
    "kpagecgroup",
];
/// Below /sys: firmware tables (ACPI, DMI: serial numbers), energy
/// counters (powercap: a side channel on what the CPU computes) and the
/// slab allocator's state. Root-only on the host, but the guest's root is
/// its caller, who may be root.
const SYS_MASKED: &[&str] = &["firmware", "devices/virtual/powercap", "kernel/slab"];

/// Device nodes of the host re-used inside the instance's /dev.
const DEVICE_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the staging tmpfs may be mounted (in the instance's namespace only).
const STAGING_CANDIDATES: &[&str] = &["/tmp", "/run", "/mnt", "/var/tmp", "/dev/shm"];

impl RootSpec {
    /// Checks what can be checked before any process is created, so the user
    /// gets one clear line about their own mistake.
    pub fn validate(&self) -> Result<(), RootfsError> {
        if let RootBase::Directory { path, .. } = &self.base {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(RootfsError::RootNotDirectory(path.clone())),
                Err(_) => return Err(RootfsError::NoSuchRootDirectory(path.clone())),
            }
        }
        if let RootBase::Bundle { path } = &self.base {
            if !std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
                return Err(RootfsError::BundleRootNotDirectory(path.clone()));
            }
        }
        if let RootBase::Image { layers } = &self.base {
            if layers.len() > MAX_IMAGE_LAYERS {
                return Err(RootfsError::TooManyLayers(layers.len()));
            }
            for layer in layers {
                if !std::fs::metadata(layer).is_ok_and(|m| m.is_dir()) {
                    return Err(RootfsError::MissingLayer(layer.clone()));
                }
            }
        }
        for v in &self.volumes {
            if std::fs::metadata(&v.host_path).is_err() {
                return Err(RootfsError::NoSuchVolumeSource(v.host_path.clone()));
            }
            match instance_path_components(&v.target) {
                Some(parts) if matches!(parts[..], ["proc", ..] | ["sys", ..] | ["dev"]) => {
                    return Err(RootfsError::ReservedVolumeTarget(v.target.clone()))
                }
                Some(parts) if !parts.is_empty() => {}
                _ => return Err(RootfsError::BadVolumeTarget(v.target.clone())),
            }
        }
        if let Some(w) = &self.workdir {
            if instance_path_components(w).is_none() {
                return Err(RootfsError::BadWorkdir(w.clone()));
            }
        }
        let extra_targets = self.extras.tmpfs.iter().map(|t| &t.target);
        for target in extra_targets.chain(&self.extras.masked).chain(&self.extras.readonly) {
            match instance_path_components(target) {
                Some(parts) if !parts.is_empty() => {}
                _ => return Err(RootfsError::BadMountTarget(target.clone())),
            }
        }
        Ok(())
    }

    /// The directories that must exist in the root as mount points.
    fn mount_points(&self) -> Vec<String> {
        self.mount_points_for(&[])
    }

    /// [`Self::mount_points`], leaving out the volumes marked as files in
    /// `file_volumes` (by index): a file volume needs a file to be mounted
    /// on, made when it is attached, and a directory there would make that
    /// mount fail.
    fn mount_points_for(&self, file_volumes: &[bool]) -> Vec<String> {
        let mut v: Vec<String> = ["proc", "dev", "sys", "tmp"].iter().map(|s| s.to_string()).collect();
        v.push(self.home.trim_start_matches('/').to_string());
        for (i, vol) in self.volumes.iter().enumerate() {
            if file_volumes.get(i).copied().unwrap_or(false) {
                continue;
            }
            v.push(vol.target.trim_start_matches('/').to_string());
        }
        for t in &self.extras.tmpfs {
            v.push(t.target.trim_start_matches('/').to_string());
        }
        v
    }

    /// Builds the tree and enters it. Must run in a new mount namespace
    /// (and, for /proc, as a process of the instance's pid namespace).
    pub fn enter(&self) -> Result<(), RootfsError> {
        let taken = self.take_host_trees()?;
        self.enter_with(taken)
    }

    /// The first half of [`Self::enter`]: clones every host tree the
    /// instance will show through a user's path, before anything is
    /// mounted. Done while the process still has the caller's host ids
    /// when the guest will not: path lookup on the host is the caller's.
    pub fn take_host_trees(&self) -> Result<HostTrees, RootfsError> {
        // Slave volumes are cloned first, while this namespace's copy of
        // the host's mount still receives from the host: a clone of it is
        // then a slave of the same peer group, which making everything
        // here private does not change.
        let slaves = self
            .volumes
            .iter()
            .map(|v| v.slave.then(|| clone_slave_volume(v)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        mount::make_all_private().map_err(fail("make mounts private"))?;
        HostTrees::take(self, slaves)
    }

    /// The second half of [`Self::enter`], with the trees
    /// [`Self::take_host_trees`] took (and perhaps idmapped since).
    pub fn enter_with(&self, taken: HostTrees) -> Result<(), RootfsError> {
        forget_empty_directory();
        let staging_path = STAGING_CANDIDATES
            .iter()
            .copied()
            .find(|p| std::fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false))
            .ok_or_else(|| RootfsError::Mount {
                action: "find a directory for the staging area".into(),
                error: io::Error::from_raw_os_error(xvisor_sys::errno::ENOENT),
            })?;
        let scratch = TmpfsBound::new(self.tmpfs_sizes.scratch);
        // It holds the throwaway writable layer, when there is one.
        let staging = mount::new_filesystem(
            "tmpfs",
            &scratch.with(&[FsOption::Value("mode", "0700")]),
            attr::NOSUID | attr::NODEV,
        )
        .map_err(fail("create the staging tmpfs"))?;
        let staging_target = sysfs::open_path(None, staging_path).map_err(fail(format!("open {staging_path}")))?;
        mount::attach(staging.as_fd(), staging_target.as_fd()).map_err(fail("mount the staging tmpfs"))?;
        drop(staging_target);
        let staging_dir = sysfs::open_dir(None, staging_path).map_err(fail("open the staging tmpfs"))?;
        sysfs::make_dir_at(staging_dir.as_fd(), "root", 0o755).map_err(fail("create the staging root"))?;

        let readonly_root = self.attach_base(&taken, staging_path, staging_dir.as_fd())?;
        let root = sysfs::open_path(Some(staging_dir.as_fd()), "root").map_err(fail("open the new root"))?;
        let root = root.as_fd();

        // Mount points: created in the root tmpfs or an overlay's upper
        // layer; already present in a host root or a complete root directory.
        // A bundle's /tmp is its own, as with runc: not a mount point.
        let bundle = matches!(self.base, RootBase::Bundle { .. });
        let own_tmp = matches!(self.base, RootBase::Image { .. } | RootBase::Bundle { .. });
        for dir in ["proc", "dev", "sys", "tmp"] {
            if dir == "tmp" && bundle {
                continue;
            }
            ensure_dir(root, dir).map_err(fail(format!("create /{dir} in the instance root")))?;
        }
        if matches!(self.base, RootBase::SystemDirs | RootBase::HostRoot) {
            mask_etc(root, self.extras.guest_root)?;
            self.write_identity_files(root, staging_dir.as_fd())?;
        }
        if matches!(self.base, RootBase::Image { .. }) {
            // The overlay is writable: give the image the files that carry
            // the instance's name, then cover them with the instance's own.
            for file in ["etc/hostname", "etc/hosts"] {
                ensure_file(root, file).map_err(fail(format!("create /{file} in the image")))?;
            }
            // Images often make it a symlink into a /run they do not ship
            // (systemd-resolved's stub): such an image keeps its own, as
            // the file it names cannot be made; the run goes on.
            if self.resolv_conf.is_some() {
                let _ = ensure_file(root, "etc/resolv.conf");
            }
            self.write_identity_files(root, staging_dir.as_fd())?;
        }
        mount_proc(root, self.extras.guest_root)?;
        mount_dev(
            root,
            self.extras.joined_ipc,
            &self.extras.devices,
            &TmpfsBound::new(self.tmpfs_sizes.shm),
        )?;
        mount_sys(root, &self.extras.cgroup_view)?;
        // An image's or a bundle's /tmp is its own (writable, and holding
        // whatever the image ships there); a root made of host directories
        // gets a fresh one.
        if !own_tmp {
            let tmp = mount::new_filesystem(
                "tmpfs",
                &scratch.with(&[FsOption::Value("mode", "1777")]),
                attr::NOSUID | attr::NODEV,
            )
            .map_err(fail("create /tmp"))?;
            attach_at(root, "tmp", tmp.as_fd()).map_err(fail("mount /tmp"))?;
        }
        if matches!(self.base, RootBase::SystemDirs) {
            state_dirs(root, staging_path, staging_dir.as_fd())?;
        }
        let home_rel = self.home.trim_start_matches('/');
        // A bundle's home is whatever the engine put there: creating one
        // would write into the engine's tree.
        if !bundle {
            ensure_dir(root, home_rel).map_err(fail(format!("create home {}", self.home)))?;
        }
        // An image keeps its own home directory (in its writable overlay).
        let private_home = !matches!(self.base, RootBase::Image { .. } | RootBase::Bundle { .. });
        let (uid, gid) = (self.home_owner.0.to_string(), self.home_owner.1.to_string());
        if private_home {
            let home = mount::new_filesystem(
                "tmpfs",
                &scratch.with(&[
                    FsOption::Value("mode", "0700"),
                    FsOption::Value("uid", &uid),
                    FsOption::Value("gid", &gid),
                ]),
                attr::NOSUID | attr::NODEV,
            )
            .map_err(fail("create the home tmpfs"))?;
            attach_at(root, home_rel, home.as_fd()).map_err(fail(format!("mount home {}", self.home)))?;
        }

        for (volume, tree) in self.volumes.iter().zip(taken.volumes) {
            let rel = volume.target.trim_start_matches('/');
            let source_kind = sysfs::kind_of_fd(tree.as_fd()).unwrap_or(FileKind::Directory);
            let made = if source_kind == FileKind::Directory {
                ensure_dir(root, rel)
            } else {
                ensure_file(root, rel)
            };
            made.map_err(fail(format!("create mount point {} for a volume", volume.target)))?;
            attach_at(root, rel, tree.as_fd()).map_err(fail(format!("mount volume at {}", volume.target)))?;
        }
        self.mount_extras(root)?;
        if let Some(w) = &self.workdir {
            // Best effort: where the tree is read-only the guest's chdir
            // reports the missing directory itself. A bundle gets its
            // missing working directory too, as runc creates it.
            let _ = ensure_dir(root, w.trim_start_matches('/'));
        }

        forget_empty_directory();
        let new_root = format!("{staging_path}/root");
        std::env::set_current_dir(&new_root).map_err(fail("enter the new root"))?;
        drop(staging_dir);
        mount::pivot_to_cwd().map_err(fail("pivot_root into the instance root"))?;
        if readonly_root || self.extras.readonly_root {
            mount::remount_root_readonly().map_err(fail("make / read-only"))?;
        }
        Ok(())
    }

    /// tmpfs mounts, then read-only paths, then masked paths (a mask over a
    /// read-only tree still hides it).
    fn mount_extras(&self, root: BorrowedFd<'_>) -> Result<(), RootfsError> {
        for t in &self.extras.tmpfs {
            let rel = t.target.trim_start_matches('/');
            ensure_dir(root, rel).map_err(fail(format!("create mount point {}", t.target)))?;
            let size = t.size.map(|s| s.to_string());
            let mode = t.mode.map(|m| format!("{m:o}"));
            let mut options = Vec::new();
            if let Some(size) = &size {
                options.push(FsOption::Value("size", size));
            }
            if let Some(mode) = &mode {
                options.push(FsOption::Value("mode", mode));
            }
            if let Some(source) = &t.source {
                options.push(FsOption::Value("source", source));
            }
            let mut attributes = attr::NOSUID | attr::NODEV;
            if t.readonly {
                attributes |= attr::RDONLY;
            }
            if t.noexec {
                attributes |= attr::NOEXEC;
            }
            let fs = mount::new_filesystem("tmpfs", &options, attributes)
                .map_err(fail(format!("create a tmpfs for {}", t.target)))?;
            attach_at(root, rel, fs.as_fd()).map_err(fail(format!("mount a tmpfs at {}", t.target)))?;
        }
        for path in &self.extras.readonly {
            let rel = path.trim_start_matches('/');
            let Ok(target) = sysfs::open_path_in_root(root, rel) else {
                continue;
            };
            let tree = mount::clone_tree(Some(target.as_fd()), "", true).map_err(fail(format!("clone {path}")))?;
            mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, true)
                .map_err(fail(format!("make {path} read-only")))?;
            mount::attach(tree.as_fd(), target.as_fd()).map_err(fail(format!("mount {path} read-only")))?;
        }
        for path in &self.extras.masked {
            mask(root, path.trim_start_matches('/'))?;
        }
        Ok(())
    }

    /// Attaches the base at `staging/root`; returns whether `/` must be made
    /// read-only once every mount point exists.
    fn attach_base(&self, taken: &HostTrees, staging_path: &str, staging: BorrowedFd<'_>) -> Result<bool, RootfsError> {
        let root_target = || sysfs::open_path(Some(staging), "root").map_err(fail("open the staging root"));
        match &self.base {
            RootBase::SystemDirs => {
                let base =
                    mount::new_filesystem("tmpfs", &[FsOption::Value("mode", "0755")], attr::NOSUID | attr::NODEV)
                        .map_err(fail("create the root tmpfs"))?;
                mount::attach(base.as_fd(), root_target()?.as_fd()).map_err(fail("mount the root tmpfs"))?;
                let root = sysfs::open_path(Some(staging), "root").map_err(fail("open the new root"))?;
                for name in SYSTEM_DIRS {
                    let host = format!("/{name}");
                    let Ok(meta) = std::fs::symlink_metadata(&host) else {
                        continue;
                    };
                    if meta.file_type().is_symlink() {
                        let target = std::fs::read_link(&host).map_err(fail(format!("read link {host}")))?;
                        let target = target.to_str().ok_or_else(|| RootfsError::Mount {
                            action: format!("copy link {host}"),
                            error: io::Error::from_raw_os_error(xvisor_sys::errno::EINVAL),
                        })?;
                        sysfs::symlink_at(target, root.as_fd(), name).map_err(fail(format!("create link /{name}")))?;
                    } else if meta.is_dir() {
                        let tree = mount::clone_tree(None, &host, true).map_err(fail(format!("clone {host}")))?;
                        mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, true)
                            .map_err(fail(format!("make {host} read-only")))?;
                        ensure_dir(root.as_fd(), name).map_err(fail(format!("create /{name}")))?;
                        attach_at(root.as_fd(), name, tree.as_fd()).map_err(fail(format!("mount {host}")))?;
                    }
                }
                Ok(true)
            }
            RootBase::HostRoot => {
                let tree = taken.base.as_ref().expect("host root cloned for HostRoot");
                mount::attach(tree.as_fd(), root_target()?.as_fd()).map_err(fail("mount the host root"))?;
                Ok(false)
            }
            RootBase::Image { layers } => {
                sysfs::make_dir_at(staging, "layers", 0o755).map_err(fail("create the image layer directory"))?;
                let layers_dir = sysfs::open_path(Some(staging), "layers").map_err(fail("open the layer directory"))?;
                let mut lowers = Vec::with_capacity(layers.len().max(1));
                for (i, tree) in taken.layers.iter().enumerate() {
                    let name = i.to_string();
                    sysfs::make_dir_at(layers_dir.as_fd(), &name, 0o755).map_err(fail("create a layer mount point"))?;
                    let target =
                        sysfs::open_path(Some(layers_dir.as_fd()), &name).map_err(fail("open a layer mount point"))?;
                    mount::attach(tree.as_fd(), target.as_fd()).map_err(fail(format!("mount image layer {i}")))?;
                    lowers.push(format!("{staging_path}/layers/{i}"));
                }
                if lowers.is_empty() {
                    // An image without layers: an empty lower layer.
                    lowers.push(format!("{staging_path}/layers"));
                }
                // Top layer first, as overlayfs wants them.
                lowers.reverse();
                for dir in ["upper", "work"] {
                    sysfs::make_dir_at(staging, dir, 0o755).map_err(fail("create the overlay directories"))?;
                }
                let lowerdir = lowers.join(":");
                let upper = format!("{staging_path}/upper");
                let work = format!("{staging_path}/work");
                let overlay = mount::new_filesystem(
                    "overlay",
                    &[
                        FsOption::Value("lowerdir", &lowerdir),
                        FsOption::Value("upperdir", &upper),
                        FsOption::Value("workdir", &work),
                        FsOption::Flag("userxattr"),
                    ],
                    attr::NOSUID | attr::NODEV,
                )
                .map_err(fail(format!("create the overlay of {} image layers", layers.len())))?;
                mount::attach(overlay.as_fd(), root_target()?.as_fd()).map_err(fail("mount the image overlay"))?;
                let root = sysfs::open_path(Some(staging), "root").map_err(fail("open the new root"))?;
                for point in self.mount_points_for(&taken.file_volumes) {
                    let _ = ensure_dir(root.as_fd(), &point);
                }
                Ok(false)
            }
            RootBase::Bundle { path } => {
                let tree = taken.base.as_ref().expect("directory cloned for Bundle");
                mount::attach(tree.as_fd(), root_target()?.as_fd())
                    .map_err(fail(format!("mount root.path {}", path.display())))?;
                Ok(false)
            }
            RootBase::Directory { path, writable } => {
                let tree = taken.base.as_ref().expect("directory cloned for Directory");
                let needs_overlay = *writable || !self.mount_points_exist(tree.as_fd());
                if !needs_overlay {
                    mount::attach(tree.as_fd(), root_target()?.as_fd())
                        .map_err(fail(format!("mount {}", path.display())))?;
                    return Ok(true);
                }
                for dir in ["lower", "upper", "work"] {
                    sysfs::make_dir_at(staging, dir, 0o755).map_err(fail("create the overlay directories"))?;
                }
                let lower_target = sysfs::open_path(Some(staging), "lower").map_err(fail("open the overlay lower"))?;
                mount::attach(tree.as_fd(), lower_target.as_fd()).map_err(fail(format!("mount {}", path.display())))?;
                let lower = format!("{staging_path}/lower");
                let upper = format!("{staging_path}/upper");
                let work = format!("{staging_path}/work");
                let overlay = mount::new_filesystem(
                    "overlay",
                    &[
                        FsOption::Value("lowerdir", &lower),
                        FsOption::Value("upperdir", &upper),
                        FsOption::Value("workdir", &work),
                        FsOption::Flag("userxattr"),
                    ],
                    attr::NOSUID | attr::NODEV,
                )
                .map_err(fail(format!("create the overlay over {}", path.display())))?;
                mount::attach(overlay.as_fd(), root_target()?.as_fd()).map_err(fail("mount the overlay"))?;
                let root = sysfs::open_path(Some(staging), "root").map_err(fail("open the new root"))?;
                for point in self.mount_points_for(&taken.file_volumes) {
                    // Volumes may need a file rather than a directory; those
                    // are created later, against the overlay, as needed.
                    let _ = ensure_dir(root.as_fd(), &point);
                }
                Ok(!*writable)
            }
        }
    }

    fn mount_points_exist(&self, dir: BorrowedFd<'_>) -> bool {
        self.mount_points()
            .iter()
            .all(|p| sysfs::open_path_in_root(dir, p).is_ok())
    }

    /// The instance's own /etc/hostname and /etc/hosts, so no file shows the
    /// host's name; an image's /etc/resolv.conf.
    fn write_identity_files(&self, root: BorrowedFd<'_>, staging: BorrowedFd<'_>) -> Result<(), RootfsError> {
        let mut files = vec![
            ("hostname", format!("{}\n", self.hostname).into_bytes()),
            (
                "hosts",
                format!(
                    "127.0.0.1\tlocalhost\n127.0.1.1\t{0}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                    self.hostname
                )
                .into_bytes(),
            ),
        ];
        if let Some(content) = &self.resolv_conf {
            files.push(("resolv.conf", content.clone()));
        }
        for (name, content) in files {
            let target = format!("etc/{name}");
            let Ok(target_fd) = sysfs::open_path_in_root(root, &target) else {
                continue;
            };
            let file = sysfs::create_file_in_root(staging, name, 0o644).map_err(fail(format!("write {name}")))?;
            xvisor_sys::event::write_all(file.as_fd(), &content).map_err(fail(format!("write {name}")))?;
            let tree = mount::clone_tree(Some(staging), name, false).map_err(fail(format!("clone {name}")))?;
            mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, false)
                .map_err(fail(format!("make /etc/{name} read-only")))?;
            mount::attach(tree.as_fd(), target_fd.as_fd()).map_err(fail(format!("mount /etc/{name}")))?;
        }
        Ok(())
    }
}

/// The /etc/resolv.conf an image instance gets. With the host's network:
/// the host's file as it is now (read here, on the host side, before the
/// instance exists; at most 64 KiB), whose servers the instance reaches as
/// the host does — a stub resolver on 127.0.0.53 included, the loopback
/// being the host's. With the instance's own network, loopback is all
/// there is and no outside server can answer: it names 127.0.0.1, where a
/// resolver the guest starts itself would listen, and where a lookup with
/// none there fails at once (connection refused) instead of after the
/// resolver's time-outs. A host without the file gives an empty one (the C
/// libraries then try 127.0.0.1 too).
pub fn resolv_conf(host_network: bool) -> Vec<u8> {
    resolv_conf_for(host_network, None)
}

/// [`resolv_conf`], or with `name_server` when the instance's network has
/// one of its own (`--net nat`: the user-mode stack's DNS forwarder).
pub fn resolv_conf_for(host_network: bool, name_server: Option<&str>) -> Vec<u8> {
    if let Some(server) = name_server {
        return format!(
            "# xvisor: this instance's network is its own, with a way out (--net nat):\n\
             # names are resolved by the forwarder below, which asks the host's resolvers.\n\
             nameserver {server}\n"
        )
        .into_bytes();
    }
    if !host_network {
        return b"# xvisor: this instance's network is its own, loopback only (--net none):\n\
# no name server outside it can be reached. --net host uses the host's.\n\
nameserver 127.0.0.1\n"
            .to_vec();
    }
    let mut content = Vec::new();
    if let Ok(f) = std::fs::File::open("/etc/resolv.conf") {
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, 64 << 10), &mut content);
    }
    content
}

/// Host trees cloned before anything is mounted in the namespace.
#[derive(Debug)]
pub struct HostTrees {
    base: Option<OwnedFd>,
    volumes: Vec<OwnedFd>,
    /// An image's layers, bottom first.
    layers: Vec<OwnedFd>,
    /// Per volume: whether its source is a file rather than a directory.
    file_volumes: Vec<bool>,
}

impl RootSpec {
    /// Whether [`HostTrees::guest_owned`] will hold any tree: an image, a
    /// `--rootfs` directory or a volume.
    pub fn has_guest_owned_trees(&self) -> bool {
        matches!(self.base, RootBase::Image { .. } | RootBase::Directory { .. }) || !self.volumes.is_empty()
    }
}

impl HostTrees {
    /// The trees that show the guest's own files, to be seen through the
    /// instance's id maps (an idmapped mount) when the guest's ids are not
    /// the caller's: an image's layers, a `--rootfs` directory, volumes.
    /// Not the host's own system directories or root: those keep their
    /// host owners, so what the host keeps for root stays out of reach.
    pub fn guest_owned(&self, spec: &RootSpec) -> Vec<(String, BorrowedFd<'_>)> {
        let mut trees = Vec::new();
        if let RootBase::Image { layers } = &spec.base {
            for (dir, tree) in layers.iter().zip(&self.layers) {
                trees.push((format!("image layer {}", dir.display()), tree.as_fd()));
            }
        }
        if let (Some(base), RootBase::Directory { path, .. }) = (&self.base, &spec.base) {
            trees.push((format!("--rootfs {}", path.display()), base.as_fd()));
        }
        for (volume, tree) in spec.volumes.iter().zip(&self.volumes) {
            trees.push((format!("volume {}", volume.host_path.display()), tree.as_fd()));
        }
        trees
    }

    /// `slaves`: per volume, the tree [`clone_slave_volume`] already took.
    fn take(spec: &RootSpec, mut slaves: Vec<Option<OwnedFd>>) -> Result<Self, RootfsError> {
        let mut layers = Vec::new();
        let base = match &spec.base {
            RootBase::SystemDirs => None,
            RootBase::Image { layers: dirs } => {
                for dir in dirs {
                    let p = dir.to_str().ok_or_else(|| RootfsError::MissingLayer(dir.clone()))?;
                    let tree = mount::clone_tree(None, p, false).map_err(fail(format!("clone image layer {p}")))?;
                    mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, false)
                        .map_err(fail(format!("make image layer {p} read-only")))?;
                    layers.push(tree);
                }
                None
            }
            RootBase::HostRoot => {
                let tree = mount::clone_tree(None, "/", true).map_err(fail("clone the host root"))?;
                mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, true)
                    .map_err(fail("make the host root read-only"))?;
                Some(tree)
            }
            RootBase::Directory { path, .. } => {
                let p = path
                    .to_str()
                    .ok_or_else(|| RootfsError::NoSuchRootDirectory(path.clone()))?;
                let tree = mount::clone_tree(None, p, true).map_err(fail(format!("clone --rootfs {p}")))?;
                mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, true)
                    .map_err(fail(format!("make --rootfs {p} read-only")))?;
                Some(tree)
            }
            RootBase::Bundle { path } => {
                let p = path
                    .to_str()
                    .ok_or_else(|| RootfsError::BundleRootNotDirectory(path.clone()))?;
                // Writable: the guest's writes belong in the engine's tree;
                // `nodev` as every host tree. Not `nosuid`: the image's
                // set-uid programs work as config.json's noNewPrivileges
                // says (ids of the instance's user namespace only).
                let tree = mount::clone_tree(None, p, true).map_err(fail(format!("clone root.path {p}")))?;
                mount::set_attributes(tree.as_fd(), attr::NODEV, true)
                    .map_err(fail(format!("set flags on root.path {p}")))?;
                Some(tree)
            }
        };
        let mut volumes = Vec::with_capacity(spec.volumes.len());
        let mut file_volumes = Vec::with_capacity(spec.volumes.len());
        for (i, v) in spec.volumes.iter().enumerate() {
            let p = v
                .host_path
                .to_str()
                .ok_or_else(|| RootfsError::NoSuchVolumeSource(v.host_path.clone()))?;
            let tree = match slaves.get_mut(i).and_then(Option::take) {
                Some(tree) => tree,
                None => mount::clone_tree(None, p, true).map_err(fail(format!("clone volume {p}")))?,
            };
            let mut attrs = attr::NOSUID | attr::NODEV;
            if !v.writable {
                attrs |= attr::RDONLY;
            }
            mount::set_attributes(tree.as_fd(), attrs, true).map_err(fail(format!("set flags on volume {p}")))?;
            file_volumes.push(sysfs::kind_of_fd(tree.as_fd()).is_ok_and(|k| k != FileKind::Directory));
            volumes.push(tree);
        }
        Ok(Self {
            base,
            volumes,
            layers,
            file_volumes,
        })
    }
}

/// A slave volume's tree: a clone of the host's mount at its source that
/// stays a slave of the host's peer group, so mounts the host makes below
/// the source later appear in it, and none made in it reach the host. The
/// mount holding the source must receive from the host (shared there, so
/// `shared:N` or, in a user namespace of its own, `master:N` here): a
/// private one is refused rather than given as a copy that never changes.
fn clone_slave_volume(v: &Volume) -> Result<OwnedFd, RootfsError> {
    let p = v
        .host_path
        .to_str()
        .ok_or_else(|| RootfsError::NoSuchVolumeSource(v.host_path.clone()))?;
    let source = sysfs::open_path(None, p).map_err(|_| RootfsError::NoSuchVolumeSource(v.host_path.clone()))?;
    let fdinfo = sysfs::read_small(format!("/proc/self/fdinfo/{}", source.as_raw_fd()))
        .map_err(fail(format!("read the mount of volume {p}")))?;
    let mountinfo = sysfs::read_small("/proc/self/mountinfo").map_err(fail("read /proc/self/mountinfo"))?;
    let receives = mount_id_of(&fdinfo).and_then(|id| receives_propagation(&mountinfo, id));
    match receives {
        Some(true) => {}
        Some(false) => return Err(RootfsError::PrivateSlaveSource(v.host_path.clone())),
        None => {
            return Err(RootfsError::Mount {
                action: format!("find the mount holding volume {p} in /proc/self/mountinfo"),
                error: io::Error::from_raw_os_error(xvisor_sys::errno::ENOENT),
            })
        }
    }
    let tree = mount::clone_tree(Some(source.as_fd()), "", true).map_err(fail(format!("clone volume {p}")))?;
    // A clone of a shared mount joins its peer group (the same user
    // namespace as the host's): make it receive only.
    mount::make_slave(tree.as_fd(), true).map_err(fail(format!("make volume {p} a slave of the host's mount")))?;
    Ok(tree)
}

/// The `mnt_id` line of a `/proc/self/fdinfo/N` file.
fn mount_id_of(fdinfo: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether mount `id` of a `/proc/PID/mountinfo` table receives mounts
/// from a peer group: its optional fields (between the options and `-`)
/// name one it is in (`shared:N`) or one it is a slave of (`master:N`).
/// `None` when no line is that mount's.
fn receives_propagation(mountinfo: &str, id: u64) -> Option<bool> {
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id))?;
    let (left, _) = line.split_once(" - ")?;
    Some(
        left.split(' ')
            .skip(6)
            .any(|f| f.starts_with("shared:") || f.starts_with("master:")),
    )
}

/// The default instance's private, writable `/var` and `/run`: both are
/// directories of the staging tmpfs (bounded as it is: one bound for
/// both), bound at `/var` and `/run`. `/var` holds the usual directories
/// (`tmp` mode 1777; `run` → `/run` and `lock` → `/run/lock`), one empty
/// directory for each the host has at `/var/*` and in its
/// [`STATE_DIRS_MIRRORED`] (names only: nothing of the host's is read
/// beyond them), and the host's [`PACKAGE_DATABASES`] read-only; `/run`
/// holds `lock` (1777). Nothing of the host's own /var or /run is shown.
fn state_dirs(root: BorrowedFd<'_>, staging_path: &str, staging: BorrowedFd<'_>) -> Result<(), RootfsError> {
    use std::os::unix::fs::PermissionsExt;
    // Relative to descriptors: one lookup per directory made.
    let fill = || -> io::Result<()> {
        for dir in ["var", "run"] {
            sysfs::make_dir_at(staging, dir, 0o755)?;
        }
        let var = sysfs::open_dir(Some(staging), "var")?;
        let run = sysfs::open_dir(Some(staging), "run")?;
        sysfs::make_dir_at(var.as_fd(), "tmp", 0o755)?;
        sysfs::make_dir_at(run.as_fd(), "lock", 0o755)?;
        for dir in ["var/tmp", "run/lock"] {
            std::fs::set_permissions(format!("{staging_path}/{dir}"), std::fs::Permissions::from_mode(0o1777))?;
        }
        sysfs::symlink_at("/run", var.as_fd(), "run")?;
        sysfs::symlink_at("/run/lock", var.as_fd(), "lock")?;
        for dir in STATE_DIRS_USUAL {
            sysfs::make_dir_at(var.as_fd(), dir, 0o755)?;
        }
        let mirror = |host: &str, into: BorrowedFd<'_>| {
            let Ok(entries) = std::fs::read_dir(host) else {
                return Ok(());
            };
            for entry in entries.flatten() {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                let name = entry.file_name();
                if let (true, Some(name)) = (is_dir, name.to_str()) {
                    sysfs::make_dir_at(into, name, 0o755)?;
                }
            }
            Ok::<(), io::Error>(())
        };
        mirror("/var", var.as_fd())?;
        for dir in STATE_DIRS_MIRRORED {
            let into = sysfs::open_dir(Some(var.as_fd()), dir)?;
            mirror(&format!("/var/{dir}"), into.as_fd())?;
        }
        Ok(())
    };
    fill().map_err(fail("make the instance's /var and /run"))?;
    for dir in ["var", "run"] {
        ensure_dir(root, dir).map_err(fail(format!("create /{dir} in the instance root")))?;
        let tree = mount::clone_tree(Some(staging), dir, false).map_err(fail(format!("clone /{dir}")))?;
        attach_at(root, dir, tree.as_fd()).map_err(fail(format!("mount /{dir}")))?;
    }
    for db in PACKAGE_DATABASES {
        let host = format!("/{db}");
        if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let tree = mount::clone_tree(None, &host, true).map_err(fail(format!("clone {host}")))?;
        mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NODEV, true)
            .map_err(fail(format!("make {host} read-only")))?;
        ensure_dir(root, db).map_err(fail(format!("create {host} in the instance")))?;
        attach_at(root, db, tree.as_fd()).map_err(fail(format!("mount {host}")))?;
    }
    Ok(())
}

/// Creates every missing directory of `rel` (relative to `root`, resolved
/// inside it).
fn ensure_dir(root: BorrowedFd<'_>, rel: &str) -> io::Result<()> {
    // O_PATH handles: creating an entry needs write and search permission on
    // its parent, but walking past an existing one must not need read
    // permission (a host's /root, for an unprivileged caller).
    let mut parent = sysfs::open_path_in_root(root, "/")?;
    let mut so_far = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(io::Error::from_raw_os_error(xvisor_sys::errno::EINVAL));
        }
        sysfs::make_dir_at(parent.as_fd(), part, 0o755)?;
        so_far.push('/');
        so_far.push_str(part);
        parent = sysfs::open_path_in_root(root, &so_far).map_err(|e| explain_symlink(root, &so_far, e))?;
    }
    Ok(())
}

/// A root directory is untrusted input: a symlink at a mount point resolves
/// inside the root, and when its target is missing there, the error says so
/// rather than a bare "no such file" for a path that seems to exist.
fn explain_symlink(root: BorrowedFd<'_>, rel: &str, error: io::Error) -> io::Error {
    let is_link = sysfs::open_entry_in_root(root, rel)
        .and_then(|fd| sysfs::kind_of_fd(fd.as_fd()))
        .is_ok_and(|k| k == FileKind::Symlink);
    if is_link && error.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            error.kind(),
            format!("{rel} is a symlink whose target is missing inside the root (symlinks resolve inside it)"),
        )
    } else {
        error
    }
}

/// Creates an empty file at `rel` (and its parent directories) as a mount
/// point for a file.
fn ensure_file(root: BorrowedFd<'_>, rel: &str) -> io::Result<()> {
    if sysfs::open_path_in_root(root, rel).is_ok() {
        return Ok(());
    }
    if let Some((parent, _)) = rel.rsplit_once('/') {
        ensure_dir(root, parent)?;
    }
    sysfs::create_file_in_root(root, rel, 0o644).map(drop)
}

fn attach_at(root: BorrowedFd<'_>, rel: &str, tree: BorrowedFd<'_>) -> io::Result<()> {
    let target = sysfs::open_path_in_root(root, rel)?;
    mount::attach(tree, target.as_fd())
}

/// A host device node an instance may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDevice {
    /// `'c'` (character) or `'b'` (block).
    pub kind: char,
    pub major: i64,
    pub minor: i64,
}

/// Checks that `path` names a device node of the host below `/dev` that an
/// instance can be shown at the same path (not one of the instance's own
/// `/dev/ptmx`, `pts`, `shm`, `mqueue`, `fd`, `std*`), and says what it is.
/// No node can be made in a user namespace: the host's is bound in.
pub fn host_device(path: &str) -> Result<HostDevice, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some(rest) = path.strip_prefix("/dev/") else {
        return Err(format!("device {path}: only nodes below /dev are supported"));
    };
    if path.len() > 255 || !rest.split('/').all(|p| !p.is_empty() && p != "." && p != "..") {
        return Err(format!("device {path}: only nodes below /dev are supported"));
    }
    let first = rest.split('/').next().unwrap_or_default();
    if ["ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr"].contains(&first) {
        return Err(format!("device {path}: the instance's own /dev/{first} is there"));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        format!("device {path}: no such node on the host ({e}); xvisor shows the host's node, it cannot make one")
    })?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        return Err(format!("device {path}: not a device node on the host"));
    };
    let (major, minor) = xvisor_sys::tree::device_numbers(meta.rdev());
    Ok(HostDevice {
        kind,
        major: i64::from(major),
        minor: i64::from(minor),
    })
}

/// Whether `path` is one of the device nodes every instance has.
pub fn is_default_device(path: &str) -> bool {
    path.strip_prefix("/dev/")
        .is_some_and(|node| DEVICE_NODES.contains(&node))
}

/// The most directory entries a policy's deny patterns may have the
/// start-up search look at: the search costs start-up time, and a pattern
/// that needs more is better written narrower.
pub const DENY_SEARCH_BUDGET: usize = 100_000;

/// Why a policy's denied paths could not be hidden.
#[derive(Debug, thiserror::Error)]
pub enum DenyError {
    #[error("[fs].deny {path}: it does not exist, and the instance could create it where it is writable; deny its directory instead")]
    CouldBeCreated { path: String },
    #[error("[fs].deny {pattern}: the search for matches looked at more than {budget} entries; start the pattern deeper (e.g. /srv/**/*.pem rather than /**/*.pem)")]
    TooWide { pattern: String, budget: usize },
    #[error(transparent)]
    Mount(#[from] RootfsError),
}

/// Hides every path of the instance that a policy denies behind an empty,
/// read-only file or directory: its contents never reach the guest, and it
/// can be neither written, nor moved or linked elsewhere (a mount point),
/// nor removed. Runs in init once the root is entered (`/` is the
/// instance's own), before Landlock and before any program of the
/// instance. Patterns are searched for matches now: a match the program
/// creates later is its own data, which the rule does not concern; a
/// plain path that does not exist is accepted only where it cannot be
/// created (a read-only mount). Returns how many paths were hidden.
pub fn deny_paths(patterns: &[xvisor_trap::glob::Pattern]) -> Result<usize, DenyError> {
    let root = sysfs::open_dir(None, "/").map_err(fail("open the instance's /"))?;
    let mut found: Vec<String> = Vec::new();
    for pattern in patterns {
        let prefix = pattern.literal_prefix();
        let mut budget = DENY_SEARCH_BUDGET;
        if prefix.iter().map(String::as_str).collect::<Vec<_>>().join("/")
            == pattern.to_string().trim_start_matches('/')
        {
            let rel = prefix.join("/");
            if sysfs::open_path_in_root(root.as_fd(), &rel).is_err() {
                // Missing: fine only where nothing can be created.
                let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                let creatable = match sysfs::open_path_in_root(root.as_fd(), parent) {
                    Ok(dir) => !sysfs::on_read_only_mount(dir.as_fd()).unwrap_or(false),
                    // Its directory is missing too: look further up.
                    Err(_) => !ancestor_read_only(root.as_fd(), parent),
                };
                if creatable {
                    return Err(DenyError::CouldBeCreated {
                        path: pattern.to_string(),
                    });
                }
                continue;
            }
            found.push(rel);
            continue;
        }
        search(pattern, &mut prefix.clone(), &mut found, &mut budget).map_err(|_| DenyError::TooWide {
            pattern: pattern.to_string(),
            budget: DENY_SEARCH_BUDGET,
        })?;
    }
    found.sort();
    found.dedup();
    // What lies below a hidden directory is hidden with it.
    let mut hidden: Vec<String> = Vec::new();
    for rel in found {
        if hidden.iter().any(|h| rel.starts_with(&format!("{h}/"))) {
            continue;
        }
        hide_denied(root.as_fd(), &rel)?;
        hidden.push(rel);
    }
    Ok(hidden.len())
}

fn ancestor_read_only(root: BorrowedFd<'_>, mut rel: &str) -> bool {
    loop {
        if let Ok(dir) = sysfs::open_path_in_root(root, rel) {
            return sysfs::on_read_only_mount(dir.as_fd()).unwrap_or(false);
        }
        match rel.rsplit_once('/') {
            Some((parent, _)) => rel = parent,
            None if !rel.is_empty() => rel = "",
            None => return false,
        }
    }
}

/// Walks the directory `path` (components below `/`) for matches of
/// `pattern`, entering only real directories (never a symlink) the pattern
/// can still match below. `Err` when the budget runs out.
fn search(
    pattern: &xvisor_trap::glob::Pattern,
    path: &mut Vec<String>,
    found: &mut Vec<String>,
    budget: &mut usize,
) -> Result<(), ()> {
    let dir = format!("/{}", path.join("/"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let names: Vec<(String, bool)> = entries
        .flatten()
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name().to_string_lossy().into_owned(), is_dir)
        })
        .collect();
    for (name, is_dir) in names {
        *budget = budget.checked_sub(1).ok_or(())?;
        path.push(name);
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        if pattern.matches(&parts) {
            found.push(path.join("/"));
        } else if is_dir && pattern.may_match_below(&parts) {
            search(pattern, path, found, budget)?;
        }
        path.pop();
    }
    Ok(())
}

/// Covers one denied path: a directory with an empty read-only tmpfs, a
/// file (of any kind) with an empty read-only regular file.
fn hide_denied(root: BorrowedFd<'_>, rel: &str) -> Result<(), RootfsError> {
    let target = sysfs::open_path_in_root(root, rel).map_err(fail(format!("open /{rel} to deny it")))?;
    let kind = sysfs::kind_of_fd(target.as_fd()).map_err(fail(format!("inspect /{rel}")))?;
    let read_only = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    let cover = mount::new_filesystem(
        "tmpfs",
        &[FsOption::Value("size", "4k"), FsOption::Value("mode", "0555")],
        if kind == FileKind::Directory {
            read_only
        } else {
            attr::NOSUID | attr::NODEV | attr::NOEXEC
        },
    )
    .map_err(fail(format!("deny /{rel}")))?;
    let cover = if kind == FileKind::Directory {
        cover
    } else {
        drop(sysfs::create_file_in_root(cover.as_fd(), "denied", 0o444).map_err(fail(format!("deny /{rel}")))?);
        let file = mount::clone_tree(Some(cover.as_fd()), "denied", false).map_err(fail(format!("deny /{rel}")))?;
        mount::set_attributes(file.as_fd(), read_only, false).map_err(fail(format!("deny /{rel}")))?;
        file
    };
    mount::attach(cover.as_fd(), target.as_fd()).map_err(fail(format!("deny /{rel}")))
}

/// Hides a file or directory of the new root behind an empty one.
fn mask(root: BorrowedFd<'_>, rel: &str) -> Result<(), RootfsError> {
    mask_unless_kept_out(root, rel, GuestRoot::HostRoot)
}

/// [`mask`], left out where the kernel's permission checks already keep
/// the path from a guest whose root is `guest_root` (each mask is a mount,
/// and start-up pays for every one).
fn mask_unless_kept_out(root: BorrowedFd<'_>, rel: &str, guest_root: GuestRoot) -> Result<(), RootfsError> {
    let Ok(target) = sysfs::open_path_in_root(root, rel) else {
        return Ok(());
    };
    let st = sysfs::stat_fd(target.as_fd()).map_err(fail(format!("inspect /{rel}")))?;
    if guest_root.kept_out_by_permissions(&st) {
        return Ok(());
    }
    let kind = st.kind;
    let cover = if kind == FileKind::Directory {
        empty_directory()
    } else {
        host_node("/dev/null")
    }
    .map_err(fail(format!("mask /{rel}")))?;
    mount::attach(cover.as_fd(), target.as_fd()).map_err(fail(format!("mask /{rel}")))
}

/// The cover of masked directories while a root is built: one empty tmpfs,
/// whose clones (bind mounts) cover them all.
enum EmptyDirectory {
    NotYet,
    Shared(OwnedFd),
    /// The kernel cannot clone a mount that is not attached anywhere (an
    /// older one): a tmpfs for each mask, as before.
    OnePerMask,
}

thread_local! {
    static EMPTY_DIRECTORY: std::cell::RefCell<EmptyDirectory> =
        const { std::cell::RefCell::new(EmptyDirectory::NotYet) };
}

/// An empty, read-only directory mount to hide a directory behind. Every
/// mask of a root is a clone of one tmpfs (until [`forget_empty_directory`]):
/// the start-up creates, and the instance's end destroys, one superblock
/// for them all rather than one a mask. The superblock itself is read-only
/// (not just each mount), so nothing can be written through any of them:
/// the masks share their emptiness and nothing else.
fn empty_directory() -> io::Result<OwnedFd> {
    EMPTY_DIRECTORY.with(|cell| {
        let mut state = cell.borrow_mut();
        if let EmptyDirectory::Shared(fs) = &*state {
            return mount::clone_tree(Some(fs.as_fd()), "", false);
        }
        let fs = mount::new_filesystem(
            "tmpfs",
            &[
                FsOption::Value("size", "4k"),
                FsOption::Value("mode", "0755"),
                FsOption::Flag("ro"),
            ],
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
        )?;
        if matches!(*state, EmptyDirectory::OnePerMask) {
            return Ok(fs);
        }
        match mount::clone_tree(Some(fs.as_fd()), "", false) {
            Ok(clone) => {
                *state = EmptyDirectory::Shared(fs);
                Ok(clone)
            }
            Err(_) => {
                *state = EmptyDirectory::OnePerMask;
                Ok(fs)
            }
        }
    })
}

/// Closes the shared cover of [`empty_directory`] once the root is built.
fn forget_empty_directory() {
    EMPTY_DIRECTORY.with(|cell| *cell.borrow_mut() = EmptyDirectory::NotYet);
}

fn mask_etc(root: BorrowedFd<'_>, guest_root: GuestRoot) -> Result<(), RootfsError> {
    for f in MASKED_ETC_FILES.iter().chain(MASKED_ETC_DIRS) {
        mask_unless_kept_out(root, &format!("etc/{f}"), guest_root)?;
    }
    // Any other private key of the host's SSH daemon.
    if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with("_key") && !MASKED_ETC_FILES.contains(&format!("ssh/{name}").as_str()) {
                mask_unless_kept_out(root, &format!("etc/ssh/{name}"), guest_root)?;
            }
        }
    }
    Ok(())
}

fn mount_proc(root: BorrowedFd<'_>, guest_root: GuestRoot) -> Result<(), RootfsError> {
    let proc = mount::new_filesystem("proc", &[], attr::NOSUID | attr::NODEV | attr::NOEXEC)
        .map_err(fail("mount a fresh /proc"))?;
    attach_at(root, "proc", proc.as_fd()).map_err(fail("mount /proc"))?;
    for p in PROC_READONLY {
        if *p == "sys" && guest_root.may_write_namespaced_sysctls() {
            continue;
        }
        let rel = format!("proc/{p}");
        if sysfs::open_path_in_root(root, &rel).is_err() {
            continue;
        }
        let tree = mount::clone_tree(Some(root), &rel, true).map_err(fail(format!("clone /{rel}")))?;
        mount::set_attributes(
            tree.as_fd(),
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            true,
        )
        .map_err(fail(format!("make /{rel} read-only")))?;
        attach_at(root, &rel, tree.as_fd()).map_err(fail(format!("mount /{rel}")))?;
    }
    for p in PROC_MASKED {
        mask_unless_kept_out(root, &format!("proc/{p}"), guest_root)?;
    }
    Ok(())
}

/// `/sys`, read-only: a new sysfs where the instance has a network
/// namespace of its own (its `class/net` then lists the instance's
/// interfaces); else — the kernel lends a sysfs only to the owner of the
/// network namespace — the host's, with everything the host mounts below
/// it hidden. Either way never the host's tracefs, debugfs, securityfs,
/// bpf, pstore or cgroup tree (`/sys/fs/cgroup` shows the instance's own
/// cgroups, the hierarchies of `cgroup_view`, and is empty otherwise), nor
/// [`SYS_MASKED`].
fn mount_sys(root: BorrowedFd<'_>, cgroup_view: &CgroupMounts) -> Result<(), RootfsError> {
    const READ_ONLY: u64 = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    match mount::new_filesystem("sysfs", &[], READ_ONLY) {
        Ok(sys) => attach_at(root, "sys", sys.as_fd()).map_err(fail("mount /sys"))?,
        Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::EPERM) => {
            // Mounts inherited from a more privileged namespace are locked
            // to the ones above them: only the whole tree can be cloned,
            // and what is below is covered instead.
            let sys = mount::clone_tree(None, "/sys", true).map_err(fail("clone /sys"))?;
            mount::set_attributes(sys.as_fd(), READ_ONLY, true).map_err(fail("make /sys read-only"))?;
            attach_at(root, "sys", sys.as_fd()).map_err(fail("mount /sys"))?;
            // Read only here: printing init's mountinfo (the host's
            // mounts and the new root's) costs a start about 0.1 ms.
            let mountinfo =
                std::fs::read_to_string("/proc/self/mountinfo").map_err(fail("read /proc/self/mountinfo"))?;
            for below in outermost_mounts_below(&mountinfo, "/sys") {
                mask(root, below.trim_start_matches('/'))?;
            }
        }
        Err(e) => return Err(fail("mount a fresh /sys")(e)),
    }
    for p in SYS_MASKED {
        mask(root, &format!("sys/{p}"))?;
    }
    if *cgroup_view != CgroupMounts::None {
        mount_cgroups(root, cgroup_view, READ_ONLY)?;
    }
    Ok(())
}

/// The mount points strictly below `top` in `mountinfo` that are not below
/// another of them.
fn outermost_mounts_below(mountinfo: &str, top: &str) -> Vec<String> {
    let prefix = format!("{}/", top.trim_end_matches('/'));
    let mut points: Vec<String> = crate::cgroup::mount_entries(mountinfo)
        .map(|entry| entry.mount_point)
        .filter(|point| point.starts_with(&prefix))
        .collect();
    points.sort();
    points.dedup();
    let mut outermost: Vec<String> = Vec::new();
    for point in points {
        if !outermost.iter().any(|o| point.starts_with(&format!("{o}/"))) {
            outermost.push(point);
        }
    }
    outermost
}

/// The host's cgroup hierarchies in which the instance has a directory of
/// its own, each mounted anew in the instance's cgroup namespace (whose
/// root there is that directory). A hierarchy the kernel
/// will not mount here is left out, an empty directory: the view is a
/// convenience for programs that read their limits, not a confinement.
fn mount_cgroups(root: BorrowedFd<'_>, mounts: &CgroupMounts, read_only: u64) -> Result<(), RootfsError> {
    const TOP: &str = "sys/fs/cgroup";
    match mounts {
        CgroupMounts::None => Ok(()),
        CgroupMounts::Unified => {
            if let Ok(hierarchy) = mount::new_filesystem("cgroup2", &[], read_only) {
                attach_at(root, TOP, hierarchy.as_fd()).map_err(fail("mount /sys/fs/cgroup"))?;
            }
            Ok(())
        }
        CgroupMounts::Split(hierarchies) => {
            let dir = mount::new_filesystem(
                "tmpfs",
                &[FsOption::Value("mode", "0755"), FsOption::Value("size", "16k")],
                attr::NOSUID | attr::NODEV | attr::NOEXEC,
            )
            .map_err(fail("mount a tmpfs on /sys/fs/cgroup"))?;
            for h in hierarchies {
                sysfs::make_dir_at(dir.as_fd(), &h.name, 0o755).map_err(fail(format!("create /{TOP}/{}", h.name)))?;
            }
            // The host's aliases (`cpu` -> `cpu,cpuacct`), between names
            // of this directory only.
            if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
                for entry in entries.flatten() {
                    let file_name = entry.file_name();
                    let (Ok(target), Some(name)) = (std::fs::read_link(entry.path()), file_name.to_str()) else {
                        continue;
                    };
                    let Some(target) = target.to_str().filter(|t| hierarchies.iter().any(|h| h.name == *t)) else {
                        continue;
                    };
                    if !hierarchies.iter().any(|h| h.name == name) {
                        sysfs::symlink_at(target, dir.as_fd(), name).map_err(fail(format!("create /{TOP}/{name}")))?;
                    }
                }
            }
            attach_at(root, TOP, dir.as_fd()).map_err(fail("mount /sys/fs/cgroup"))?;
            for h in hierarchies {
                let hierarchy = match &h.v1_options {
                    None => mount::new_filesystem("cgroup2", &[], read_only),
                    Some(options) => {
                        let options: Vec<FsOption<'_>> = options
                            .iter()
                            .map(|o| match o.split_once('=') {
                                Some((key, value)) => FsOption::Value(key, value),
                                None => FsOption::Flag(o),
                            })
                            .collect();
                        mount::new_filesystem("cgroup", &options, read_only)
                    }
                };
                if let Ok(hierarchy) = hierarchy {
                    attach_at(root, &format!("{TOP}/{}", h.name), hierarchy.as_fd())
                        .map_err(fail(format!("mount /{TOP}/{}", h.name)))?;
                }
            }
            mount::set_attributes(dir.as_fd(), read_only, false).map_err(fail("make /sys/fs/cgroup read-only"))
        }
    }
}

/// A bind of the host's device node `host`, read-only: the device still
/// takes reads and writes, but its owner, mode, times and xattrs — the
/// host's, for every process of the host — cannot change (EROFS), even for
/// a guest whose root is the host's. No `nodev`: the node is there to be
/// used.
fn host_node(host: &str) -> io::Result<OwnedFd> {
    let tree = mount::clone_tree(None, host, false)?;
    mount::set_attributes(tree.as_fd(), attr::RDONLY | attr::NOSUID | attr::NOEXEC, false)?;
    Ok(tree)
}

/// Shows the host's node `host` (`/dev/…`, taken as `tree`) at the same
/// path in the new root.
fn bind_host_node(root: BorrowedFd<'_>, host: &str, tree: BorrowedFd<'_>) -> Result<(), RootfsError> {
    let rel = host.trim_start_matches('/');
    if let Some(parent) = rel.rsplit_once('/').map(|(p, _)| p).filter(|p| *p != "dev") {
        ensure_dir(root, parent).map_err(fail(format!("create /{parent}")))?;
    }
    sysfs::create_file_in_root(root, rel, 0o644).map_err(fail(format!("create {host}")))?;
    attach_at(root, rel, tree).map_err(fail(format!("mount {host}")))
}

fn mount_dev(root: BorrowedFd<'_>, joined_ipc: bool, devices: &[String], shm: &TmpfsBound) -> Result<(), RootfsError> {
    let dev = mount::new_filesystem(
        "tmpfs",
        &[FsOption::Value("mode", "0755"), FsOption::Value("size", "64k")],
        attr::NOSUID | attr::NOEXEC,
    )
    .map_err(fail("create /dev"))?;
    attach_at(root, "dev", dev.as_fd()).map_err(fail("mount /dev"))?;
    for node in DEVICE_NODES {
        let host = format!("/dev/{node}");
        if let Ok(tree) = host_node(&host) {
            bind_host_node(root, &host, tree.as_fd())?;
        }
    }
    // Checked by whoever asked for them (a host node of that path, kind
    // and number); a node gone since is an error, not a silent omission.
    // The default nodes are there already.
    for host in devices.iter().filter(|d| !is_default_device(d)) {
        let tree = host_node(host).map_err(fail(format!("take device {host}")))?;
        bind_host_node(root, host, tree.as_fd())?;
    }
    ensure_dir(root, "dev/pts").map_err(fail("create /dev/pts"))?;
    let pts = mount::new_filesystem(
        "devpts",
        &[
            FsOption::Flag("newinstance"),
            FsOption::Value("ptmxmode", "0666"),
            FsOption::Value("mode", "0620"),
        ],
        attr::NOSUID | attr::NOEXEC,
    )
    .map_err(fail("mount /dev/pts"))?;
    attach_at(root, "dev/pts", pts.as_fd()).map_err(fail("mount /dev/pts"))?;
    ensure_dir(root, "dev/shm").map_err(fail("create /dev/shm"))?;
    let shm = mount::new_filesystem(
        "tmpfs",
        &shm.with(&[FsOption::Value("mode", "1777"), FsOption::Value("source", "shm")]),
        attr::NOSUID | attr::NODEV,
    )
    .map_err(fail("create /dev/shm"))?;
    attach_at(root, "dev/shm", shm.as_fd()).map_err(fail("mount /dev/shm"))?;
    ensure_dir(root, "dev/mqueue").map_err(fail("create /dev/mqueue"))?;
    if !joined_ipc {
        let mq = mount::new_filesystem("mqueue", &[], attr::NOSUID | attr::NODEV | attr::NOEXEC)
            .map_err(fail("mount /dev/mqueue"))?;
        attach_at(root, "dev/mqueue", mq.as_fd()).map_err(fail("mount /dev/mqueue"))?;
    }
    let dev_dir = sysfs::open_dir_in_root(root, "dev").map_err(fail("open /dev"))?;
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        sysfs::symlink_at(target, dev_dir.as_fd(), name).map_err(fail(format!("create /dev/{name}")))?;
    }
    mount::set_attributes(dev.as_fd(), attr::RDONLY | attr::NOSUID | attr::NOEXEC, false)
        .map_err(fail("make /dev read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outermost_mounts_below_a_directory_are_covered() {
        let mountinfo = "23 27 0:22 / /sys rw - sysfs sysfs rw\n\
                         31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                         32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                         33 23 0:30 / /sys/kernel/tracing rw - tracefs none rw\n\
                         34 23 0:31 / /sys/odd\\040name rw - tmpfs tmpfs rw\n\
                         35 27 0:32 / /system rw - tmpfs tmpfs rw\n\
                         36 33 0:30 / /sys/kernel/tracing rw - tracefs none rw\n";
        assert_eq!(
            outermost_mounts_below(mountinfo, "/sys"),
            ["/sys/fs/cgroup", "/sys/kernel/tracing", "/sys/odd name"]
        );
    }

    #[test]
    fn a_mount_receives_propagation_when_shared_or_a_slave() {
        let mountinfo = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                         40 25 0:50 / /srv/a rw shared:7 master:3 - tmpfs a rw\n\
                         41 25 0:51 / /srv/b rw master:9 - tmpfs b rw\n\
                         42 25 0:52 / /srv/c rw - tmpfs shared:5 rw\n\
                         43 25 0:53 / /srv/d\\040master:2 rw - tmpfs d rw\n";
        assert_eq!(receives_propagation(mountinfo, 25), Some(true));
        assert_eq!(receives_propagation(mountinfo, 40), Some(true));
        assert_eq!(receives_propagation(mountinfo, 41), Some(true));
        // After the `-`, a field is the file system's, not a peer group.
        assert_eq!(receives_propagation(mountinfo, 42), Some(false));
        // A mount point is field 5, never an optional field.
        assert_eq!(receives_propagation(mountinfo, 43), Some(false));
        assert_eq!(receives_propagation(mountinfo, 4), None);
        assert_eq!(
            mount_id_of("pos:\t0\nflags:\t012000000\nmnt_id:\t40\nino:\t7\n"),
            Some(40)
        );
        assert_eq!(mount_id_of("pos:\t0\n"), None);
    }

    #[test]
    fn mountinfo_and_fdinfo_readers_take_any_text() {
        // Kernel text, but read back whole: whatever it holds, no panic.
        let pieces = [
            "1",
            " ",
            "-",
            "shared:",
            "master:2",
            "\n",
            "mnt_id:",
            "\t",
            "x",
            "18446744073709551616",
            "é",
        ];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = receives_propagation(&text, seed % 4);
            let _ = mount_id_of(&text);
        }
    }

    #[test]
    fn components_refuse_relative_and_parent_paths() {
        assert_eq!(instance_path_components("/a/b/./c"), Some(vec!["a", "b", "c"]));
        assert_eq!(instance_path_components("/"), Some(vec![]));
        assert_eq!(instance_path_components("a/b"), None);
        assert_eq!(instance_path_components("/a/../b"), None);
    }

    fn spec() -> RootSpec {
        RootSpec {
            base: RootBase::SystemDirs,
            volumes: vec![],
            home: "/root".into(),
            home_owner: (0, 0),
            tmpfs_sizes: TmpfsSizes::default(),
            hostname: "xvisor".into(),
            resolv_conf: None,
            workdir: None,
            extras: RootExtras::default(),
        }
    }

    #[test]
    fn validate_names_the_missing_root() {
        let mut s = spec();
        s.base = RootBase::Directory {
            path: "/nope/not/here".into(),
            writable: false,
        };
        let e = s.validate().unwrap_err();
        assert_eq!(e.to_string(), "--rootfs /nope/not/here: no such directory");
    }

    #[test]
    fn validate_refuses_bad_volume_targets() {
        let mut s = spec();
        s.volumes.push(Volume {
            slave: false,
            host_path: "/".into(),
            target: "relative".into(),
            writable: false,
        });
        assert!(matches!(s.validate(), Err(RootfsError::BadVolumeTarget(_))));
        s.volumes[0].target = "/".into();
        assert!(matches!(s.validate(), Err(RootfsError::BadVolumeTarget(_))));
        s.volumes[0].target = "/data/../etc".into();
        assert!(matches!(s.validate(), Err(RootfsError::BadVolumeTarget(_))));
        s.volumes[0].target = "/data".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn mount_points_include_home_and_volumes() {
        let mut s = spec();
        s.volumes.push(Volume {
            slave: false,
            host_path: "/".into(),
            target: "/srv/data".into(),
            writable: true,
        });
        let points = s.mount_points();
        assert!(points.contains(&"root".to_string()));
        assert!(points.contains(&"srv/data".to_string()));
        assert!(points.contains(&"proc".to_string()));
    }
}
