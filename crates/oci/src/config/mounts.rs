//! `root` and `mounts`: the bundle's root, bind and tmpfs mounts, and the
//! standard file systems the instance provides itself.

use xvisor_confine::{TmpfsMount, Volume};

use super::builder::Builder;
use super::walker::{field, ConfigError, Obj};

/// Mount destinations xvisor always provides itself, with the file-system
/// types an engine asks for there.
pub(crate) const BUILT_IN_MOUNTS: &[(&str, &[&str])] = &[
    ("/proc", &["proc"]),
    ("/dev", &["tmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/dev/shm", &["tmpfs"]),
    ("/dev/mqueue", &["mqueue"]),
    ("/sys", &["sysfs"]),
    ("/sys/fs/cgroup", &["cgroup", "cgroup2"]),
];

/// Mount options with a meaning of their own here: a bind mount (`bind`,
/// `rbind`), read-only, no execution, a bind that receives the mounts the
/// host makes below its source (`slave`, `rslave`).
pub(crate) const OWN_OPTIONS: &[&str] = &["bind", "rbind", "ro", "noexec", "slave", "rslave"];

/// Options of a tmpfs mount that take a value (`size=64m`, `mode=1777`,
/// `nr_inodes=N`, which the size limit covers).
pub(crate) const TMPFS_OPTIONS: &[&str] = &["size", "mode", "nr_inodes"];

/// Mount options that change nothing here: the instance's mounts are
/// private unless a bind says `rslave`, and access-time behaviour is not a
/// matter of isolation.
pub(crate) const NEUTRAL_OPTIONS: &[&str] = &[
    "private",
    "rprivate",
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

impl Builder {
    pub(super) fn root(&mut self, mut root: Obj) -> Result<(), ConfigError> {
        let path = root.string("path")?.ok_or_else(|| field("root.path", "missing"))?;
        self.rootfs = Some(self.bundle_path(&path));
        self.readonly_root = root.boolean("readonly")?;
        root.finish()
    }

    // Long: the section's keys one after another, in the specification's order.
    pub(super) fn mount(&mut self, mut m: Obj) -> Result<(), ConfigError> {
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
        let mut slave = false;
        let mut size = None;
        let mut mode = None;
        for (i, o) in options.iter().enumerate() {
            let opath = format!("{path}.options[{i}]");
            match o.as_str() {
                "ro" => readonly = true,
                "noexec" => noexec = true,
                // A new tmpfs has no host mount to receive from.
                "slave" | "rslave" => slave = is_bind,
                "shared" | "rshared" => {
                    return Err(field(
                        &opath,
                        format!("{o:?} propagation is not supported (a mount made in the container never reaches the host; rslave receives the host's)"),
                    ))
                }
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
                slave,
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
}

/// `/a//b/./c/` → `/a/b/c`; `None` for relative paths and `..`.
pub(super) fn normalize(path: &str) -> Option<String> {
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
