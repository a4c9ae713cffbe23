//! The reader's state between the sections of config.json, and the
//! [`Container`] it becomes once every section has been read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xvisor_confine::cgroup::ScopeRequest;
use xvisor_confine::identity::{CapabilityCeiling, CapabilitySets, IdMaps, IdRange};
use xvisor_confine::rootfs::HostDevice;
use xvisor_confine::{Limits, RootBase, RootExtras, RootSpec, TmpfsSizes, Volume};
use xvisor_instance::hooks::{Hook, Hooks};
use xvisor_instance::{InstanceSpec, JoinNamespace, NamespaceKind, Network, StdinMode, TraceTarget};
use xvisor_trap::Policy;

use super::container::{Container, Rlimit};
use super::walker::{field, ConfigError};
use crate::spec_fields;

/// What has been read so far: one field a setting, filled section by
/// section, made into a [`Container`] by [`Builder::finish`].
pub(super) struct Builder {
    pub(super) bundle: PathBuf,
    pub(super) id: String,
    pub(super) rootfs: Option<PathBuf>,
    pub(super) readonly_root: bool,
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) cwd: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) additional_gids: Vec<u32>,
    pub(super) capabilities: Option<CapabilitySets>,
    pub(super) rlimits: Vec<Rlimit>,
    pub(super) oom_score_adj: Option<i32>,
    pub(super) umask: Option<u32>,
    pub(super) terminal: bool,
    pub(super) no_new_privileges: bool,
    pub(super) hostname: String,
    pub(super) volumes: Vec<Volume>,
    pub(super) extras: RootExtras,
    pub(super) tmpfs_sizes: TmpfsSizes,
    pub(super) network: Network,
    pub(super) limits: Limits,
    pub(super) cgroup_path: Option<PathBuf>,
    pub(super) systemd_scope: Option<ScopeRequest>,
    pub(super) apparmor_profile: Option<String>,
    pub(super) id_maps: Option<IdMaps>,
    /// The host nodes `linux.devices` adds, by path (become
    /// `extras.devices` at the end).
    pub(super) added_devices: Vec<(String, HostDevice)>,
    pub(super) sysctls: Vec<(String, String)>,
    pub(super) seccomp: Option<Vec<u8>>,
    pub(super) joined: Vec<JoinNamespace>,
    pub(super) hooks: Hooks,
    pub(super) poststop: Vec<Hook>,
}

impl Builder {
    pub(super) fn new(bundle: &Path, id: &str) -> Self {
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

    pub(super) fn bundle_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.bundle.join(p)
        }
    }

    // Long: one field of the instance's spec a line.
    pub(super) fn finish(
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
            ping_sockets: false,
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
