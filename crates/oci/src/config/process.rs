//! `process`: the program, its environment, user, capabilities and
//! limits (also an exec's process file).

use xvisor_confine::identity::{CapabilityCeiling, CapabilitySets};

use super::builder::Builder;
use super::container::Rlimit;
use super::walker::{field, ConfigError, Obj};
use crate::spec_fields;

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

/// Capability names as config.json spells them.
pub(crate) const CAPABILITY_NAMES: &[(&str, u32)] = &[
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

impl Builder {
    // Long: the section's keys one after another, in the specification's order.
    pub(super) fn process(&mut self, mut p: Obj) -> Result<(), ConfigError> {
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
