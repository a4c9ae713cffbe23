//! `linux`: namespaces (created or joined), id mappings, device nodes,
//! sysctls, masked and read-only paths; its `resources`, `cgroupsPath` and
//! `seccomp` have files of their own.

use std::path::PathBuf;

use serde_json::Value;
use xvisor_confine::identity::{IdMaps, IdRange};
use xvisor_confine::rootfs::HostDevice;
use xvisor_instance::{JoinNamespace, NamespaceKind, Network};

use super::builder::Builder;
use super::cgroups_path::{cgroup_path, systemd_scope};
use super::mounts::normalize;
use super::walker::{field, ConfigError, Obj};
use crate::spec_fields;

/// The namespace kinds an instance has of its own (besides a network
/// namespace, which `network` asks for: without one, the host's).
pub(crate) const NAMESPACES: &[&str] = &["pid", "network", "ipc", "uts", "mount", "user", "cgroup"];

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

/// The namespace kinds a container may join by path.
const JOINABLE: &[(&str, NamespaceKind)] = &[
    ("network", NamespaceKind::Network),
    ("ipc", NamespaceKind::Ipc),
    ("uts", NamespaceKind::Uts),
    ("pid", NamespaceKind::Pid),
];

impl Builder {
    // Long: the section's keys one after another, in the specification's order.
    pub(super) fn linux(&mut self, mut l: Obj) -> Result<(), ConfigError> {
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
                k if NAMESPACES.contains(&k) => {}
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
            self.seccomp = Some(super::seccomp::compile(profile)?);
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
