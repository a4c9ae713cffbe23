//! Who the guest is: user-namespace id maps, capabilities, rlimits,
//! `no_new_privs`.

use std::io;

use xvisor_sys::caps::{self, cap};
use xvisor_sys::process;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot write the user namespace map {file}: {error}")]
    IdMap { file: String, error: io::Error },
    #[error("--nofile {requested}: above this host's hard limit of {hard} open files")]
    NofileAboveHardLimit { requested: u64, hard: u64 },
    #[error("cannot set {what}: {error}")]
    Setup { what: &'static str, error: io::Error },
    #[error("{helper} (writing the instance's subordinate id map) failed: {why}")]
    Helper { helper: String, why: String },
}

/// The id maps of an instance's user namespace.
///
/// Invoked by an unprivileged user, exactly one uid and one gid are mapped:
/// the guest's ids inside are the invoking user's outside. That needs no
/// privilege or helper and grants the guest nothing on the host the user
/// does not have. Invoked by root, the whole id space maps onto itself, so
/// root inside is root outside (still without any capability on the host)
/// and every other uid is itself: `chown`, `setgroups` and the users in
/// /etc/passwd work as they do natively.
///
/// An OCI engine may give its own maps instead (`Given`): as root any
/// ranges the kernel takes; rootless only the caller's own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMaps {
    Identity,
    Single {
        inside_uid: u32,
        inside_gid: u32,
        outside_uid: u32,
        outside_gid: u32,
    },
    Given {
        uid: Vec<IdRange>,
        gid: Vec<IdRange>,
    },
}

/// `count` ids from `inside` in the user namespace are `outside` … outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The most lines a map file takes (the kernel's limit since Linux 4.15).
pub const MAX_ID_RANGES: usize = 340;

impl IdRange {
    /// Why the kernel would refuse `ranges` as a map, in words: too many,
    /// empty, past the end of the id space, or overlapping inside or
    /// outside.
    pub fn check_all(ranges: &[IdRange]) -> Result<(), String> {
        if ranges.is_empty() {
            return Err("no range".into());
        }
        if ranges.len() > MAX_ID_RANGES {
            return Err(format!("more than {MAX_ID_RANGES} ranges"));
        }
        for (i, r) in ranges.iter().enumerate() {
            if r.count == 0 {
                return Err(format!("range {i} has size 0"));
            }
            // The kernel keeps the last id (4294967295) unmapped.
            if end(r.inside, r.count) > u64::from(u32::MAX) || end(r.outside, r.count) > u64::from(u32::MAX) {
                return Err(format!("range {i} runs past the last id"));
            }
            for (j, other) in ranges[..i].iter().enumerate() {
                let overlap = |a: u32, b: u32| u64::from(a) < end(b, other.count) && u64::from(b) < end(a, r.count);
                if overlap(r.inside, other.inside) {
                    return Err(format!("ranges {j} and {i} overlap inside"));
                }
                if overlap(r.outside, other.outside) {
                    return Err(format!("ranges {j} and {i} overlap outside"));
                }
            }
        }
        Ok(())
    }

    /// Whether `id` (inside) is mapped by one of `ranges`.
    pub fn maps(ranges: &[IdRange], id: u32) -> bool {
        ranges
            .iter()
            .any(|r| id >= r.inside && u64::from(id) < end(r.inside, r.count))
    }
}

/// One past the last id of `count` ids from `start` (without overflow).
fn end(start: u32, count: u32) -> u64 {
    u64::from(start) + u64::from(count)
}

fn map_file(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

impl IdMaps {
    /// The maps for a guest running as `guest_uid:guest_gid`, created by a
    /// process with effective ids `euid:egid`.
    pub fn for_caller(guest_uid: u32, guest_gid: u32, euid: u32, egid: u32) -> Self {
        if euid == 0 {
            Self::Identity
        } else {
            Self::Single {
                inside_uid: guest_uid,
                inside_gid: guest_gid,
                outside_uid: euid,
                outside_gid: egid,
            }
        }
    }

    pub fn uid_map(&self) -> String {
        match self {
            Self::Identity => "0 0 4294967295\n".to_string(),
            Self::Single {
                inside_uid,
                outside_uid,
                ..
            } => format!("{inside_uid} {outside_uid} 1\n"),
            Self::Given { uid, .. } => map_file(uid),
        }
    }

    pub fn gid_map(&self) -> String {
        match self {
            Self::Identity => "0 0 4294967295\n".to_string(),
            Self::Single {
                inside_gid,
                outside_gid,
                ..
            } => format!("{inside_gid} {outside_gid} 1\n"),
            Self::Given { gid, .. } => map_file(gid),
        }
    }

    /// Whether an unprivileged caller with effective ids `euid:egid` can
    /// write these maps itself: only its own id, once.
    pub fn writable_by(&self, euid: u32, egid: u32) -> bool {
        let own = |ranges: &[IdRange], id: u32| matches!(ranges, [r] if r.outside == id && r.count == 1);
        match self {
            Self::Given { uid, gid } => euid == 0 || (own(uid, euid) && own(gid, egid)),
            _ => true,
        }
    }

    /// Writes the maps of the child `pid` (called by its parent, outside).
    /// With a single mapped gid `setgroups` must be denied first (the kernel
    /// requires it of an unprivileged writer); the guest then keeps no
    /// supplementary groups, which is all it needs. Maps an unprivileged
    /// caller cannot write itself (its subordinate ids, see
    /// [`subordinate_maps`]) are written by `newuidmap` and `newgidmap`,
    /// which check them against /etc/subuid and /etc/subgid; both run at
    /// once.
    pub fn write_for(&self, pid: i32) -> Result<(), IdentityError> {
        let (euid, egid) = (process::geteuid(), process::getegid());
        if let Self::Given { uid, gid } = self {
            if euid != 0 && !self.writable_by(euid, egid) {
                return write_with_helpers(pid, uid, gid);
            }
        }
        let write = |name: &str, content: &str| {
            let file = format!("/proc/{pid}/{name}");
            std::fs::write(&file, content).map_err(|error| IdentityError::IdMap { file, error })
        };
        if matches!(self, Self::Single { .. }) || (matches!(self, Self::Given { .. }) && process::geteuid() != 0) {
            write("setgroups", "deny")?;
        }
        write("uid_map", &self.uid_map())?;
        write("gid_map", &self.gid_map())
    }
}

/// The setuid helpers of Debian's `uidmap` (shadow's) that write the maps
/// of an unprivileged caller's subordinate ids.
const UID_HELPER: &str = "newuidmap";
const GID_HELPER: &str = "newgidmap";

/// Where `name` is: the first executable file of that name in `$PATH`, or
/// in /usr/bin or /bin.
fn helper(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|file| std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn write_with_helpers(pid: i32, uid: &[IdRange], gid: &[IdRange]) -> Result<(), IdentityError> {
    let start = |name: &'static str, ranges: &[IdRange]| {
        let fail = |why: String| IdentityError::Helper {
            helper: name.to_string(),
            why,
        };
        let path = helper(name).ok_or_else(|| fail("not found (install uidmap)".into()))?;
        let mut command = std::process::Command::new(&path);
        command.arg(pid.to_string());
        for r in ranges {
            command.args([r.inside.to_string(), r.outside.to_string(), r.count.to_string()]);
        }
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))
            .map(|child| (name, child))
    };
    let finish = |(name, child): (&'static str, std::process::Child)| {
        let out = child.wait_with_output().map_err(|e| IdentityError::Helper {
            helper: name.to_string(),
            why: e.to_string(),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        Err(IdentityError::Helper {
            helper: name.to_string(),
            why: format!("{} ({said})", out.status),
        })
    };
    let uids = start(UID_HELPER, uid)?;
    let gids = start(GID_HELPER, gid);
    let uids = finish(uids);
    uids.and(gids.and_then(finish))
}

/// Why a rootless instance maps one id, its caller's, rather than its
/// subordinate ids too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleId {
    /// /etc/subuid or /etc/subgid gives the caller no range.
    NoSubordinateIds { user: String },
    /// Its ranges hold its own id, or overlap each other: the kernel
    /// would refuse the map.
    UnusableRanges { user: String },
    /// `newuidmap` or `newgidmap` is not installed.
    NoHelpers,
    /// The caller runs with `no_new_privs`: the setuid helpers would run
    /// without their privilege.
    NoNewPrivileges,
    /// The guest's user or group is not among the ids the ranges give.
    GuestOutside { uid: u32, gid: u32 },
}

impl std::fmt::Display for SingleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSubordinateIds { user } => {
                write!(f, "/etc/subuid and /etc/subgid give {user} no subordinate ids")
            }
            Self::UnusableRanges { user } => {
                write!(f, "the subordinate ids of {user} overlap its own ids or each other")
            }
            Self::NoHelpers => write!(f, "newuidmap and newgidmap are not installed (Debian's uidmap)"),
            Self::NoNewPrivileges => write!(f, "xvisor runs with no_new_privs, so newuidmap cannot act"),
            Self::GuestOutside { uid, gid } => {
                write!(f, "the guest's {uid}:{gid} is beyond the subordinate ids")
            }
        }
    }
}

/// The maps of an instance started by an unprivileged caller `euid:egid`
/// for a guest running as `guest_uid:guest_gid`, when the caller has
/// subordinate ids (/etc/subuid, /etc/subgid) and the helpers that map
/// them: the layout rootless container engines use, the guest's 0 is the
/// caller and its 1, 2 … are the caller's subordinate ids in their files'
/// order, so every user of a distribution exists inside and `chown`,
/// `setgroups` and package managers work. Else why only the caller's id is
/// mapped.
pub fn subordinate_maps(euid: u32, egid: u32, guest_uid: u32, guest_gid: u32) -> Result<IdMaps, SingleId> {
    let name = user_name(euid);
    let read = |file: &str| std::fs::read_to_string(file).unwrap_or_default();
    let uids = crate::idpool::ranges_of(&read("/etc/subuid"), name.as_deref(), euid);
    let gids = crate::idpool::ranges_of(&read("/etc/subgid"), name.as_deref(), euid);
    let user = || name.clone().unwrap_or_else(|| format!("uid {euid}"));
    if uids.is_empty() || gids.is_empty() {
        return Err(SingleId::NoSubordinateIds { user: user() });
    }
    let (Some(uid), Some(gid)) = (with_subordinates(euid, &uids), with_subordinates(egid, &gids)) else {
        return Err(SingleId::UnusableRanges { user: user() });
    };
    if helper(UID_HELPER).is_none() || helper(GID_HELPER).is_none() {
        return Err(SingleId::NoHelpers);
    }
    let no_new_privs = xvisor_sys::fs::read_small("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "1"])
    });
    if no_new_privs {
        return Err(SingleId::NoNewPrivileges);
    }
    if !IdRange::maps(&uid, guest_uid) || !IdRange::maps(&gid, guest_gid) {
        return Err(SingleId::GuestOutside {
            uid: guest_uid,
            gid: guest_gid,
        });
    }
    Ok(IdMaps::Given { uid, gid })
}

/// The name /etc/passwd gives `uid` (what the subordinate files name).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2].parse() == Ok(uid)).then(|| fields[0].to_string())
    })
}

/// `own` as id 0, then the subordinate `ranges` from id 1 on, as many as a
/// map holds; `None` without a usable range (or if the kernel would refuse
/// the map: a range holding `own`, overlapping ranges).
fn with_subordinates(own: u32, ranges: &[(u64, u64)]) -> Option<Vec<IdRange>> {
    let mut map = vec![IdRange {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next: u64 = 1;
    for &(first, count) in ranges {
        // The last id (4294967295) stays unmapped, inside and out.
        let room = (u64::from(u32::MAX) - next).min(u64::from(u32::MAX).saturating_sub(first));
        let count = count.min(room);
        if count == 0 || map.len() == MAX_ID_RANGES {
            break;
        }
        map.push(IdRange {
            inside: next as u32,
            outside: first as u32,
            count: count as u32,
        });
        next += count;
    }
    (map.len() > 1 && IdRange::check_all(&map).is_ok()).then_some(map)
}

/// The capabilities a guest running as uid 0 keeps *inside its own user
/// namespace* (none of them reach the host): the set container engines give
/// by default, enough for package managers and servers, and CAP_SYS_ADMIN
/// over what the instance owns, so that tools that isolate their own
/// children (`unshare -n`, `unshare -u`, test runners) can make UTS, IPC,
/// mount and network namespaces. What else that capability would open is
/// closed by the filter and the wall, whatever the capabilities: mounts,
/// keys, BPF, `setns`, user, pid, cgroup and time namespaces; the rest of
/// its checks are against the host's user namespace, where the guest holds
/// nothing. No CAP_NET_ADMIN or CAP_SYS_PTRACE.
pub const GUEST_ROOT_CAPABILITIES: &[u32] = &[
    cap::CHOWN,
    cap::DAC_OVERRIDE,
    cap::FOWNER,
    cap::FSETID,
    cap::KILL,
    cap::SETGID,
    cap::SETUID,
    cap::SETPCAP,
    cap::NET_BIND_SERVICE,
    cap::NET_RAW,
    cap::SYS_CHROOT,
    cap::SYS_ADMIN,
    cap::MKNOD,
    cap::AUDIT_WRITE,
    cap::SETFCAP,
];

/// How far an instance may go in giving its processes capabilities. Every
/// capability is one of the instance's own user namespace, never the
/// host's, and the system-call filter and the supervisor decide every call
/// whatever the capabilities (no mount, module, or namespace change unless
/// a policy allows it): the ceiling only decides what a process may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapabilityCeiling {
    /// [`GUEST_ROOT_CAPABILITIES`]: `xvisor run`'s instances.
    #[default]
    EnginesDefault,
    /// Any capability this kernel knows: an OCI engine's config.json says
    /// which (a privileged container's full set included).
    Any,
}

impl CapabilityCeiling {
    pub fn allows(self, capability: u32) -> bool {
        match self {
            Self::EnginesDefault => GUEST_ROOT_CAPABILITIES.contains(&capability),
            Self::Any => capability <= caps::last_cap(),
        }
    }

    /// Every capability the ceiling allows, ascending.
    pub fn capabilities(self) -> Vec<u32> {
        match self {
            Self::EnginesDefault => {
                let mut all = GUEST_ROOT_CAPABILITIES.to_vec();
                all.sort_unstable();
                all
            }
            Self::Any => (0..=caps::last_cap()).collect(),
        }
    }
}

/// The capabilities of a guest process (numbers; all inside the instance's
/// user namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySets {
    /// Its bounding set, and, running as uid 0, its permitted and effective
    /// sets: the most it can ever use.
    pub granted: Vec<u32>,
    /// Its inheritable set. The kernel only lets it hold capabilities of the
    /// bounding set at the time it is set: callers keep it within the
    /// instance's [`CapabilityCeiling`] (and an OCI config's bounding set).
    pub inheritable: Vec<u32>,
    /// Its ambient set: kept across execve, and for a user other than 0 the
    /// capabilities its program has. Always within `granted ∩ inheritable`
    /// (the kernel raises nothing else).
    pub ambient: Vec<u32>,
}

impl Default for CapabilitySets {
    /// What a guest has unless told otherwise: the engines' default set, no
    /// inheritable or ambient capability.
    fn default() -> Self {
        Self::granting(GUEST_ROOT_CAPABILITIES.to_vec())
    }
}

impl CapabilitySets {
    /// `granted`, with empty inheritable and ambient sets.
    pub fn granting(granted: Vec<u32>) -> Self {
        Self {
            granted,
            inheritable: Vec::new(),
            ambient: Vec::new(),
        }
    }

    /// Each set sorted, without duplicates.
    pub fn normalized(mut self) -> Self {
        for set in [&mut self.granted, &mut self.inheritable, &mut self.ambient] {
            set.sort_unstable();
            set.dedup();
        }
        self
    }

    /// The first capability that breaks the limits: one of any set above
    /// `ceiling`, or an ambient one not both granted and inheritable.
    pub fn violation(&self, ceiling: CapabilityCeiling) -> Option<CapabilityViolation> {
        if let Some(c) = self
            .granted
            .iter()
            .chain(&self.inheritable)
            .chain(&self.ambient)
            .find(|c| !ceiling.allows(**c))
        {
            return Some(CapabilityViolation::NotGranted(*c));
        }
        self.ambient
            .iter()
            .find(|c| !self.granted.contains(c) || !self.inheritable.contains(c))
            .map(|c| CapabilityViolation::AmbientNotPermittedAndInheritable(*c))
    }
}

/// Why a [`CapabilitySets`] cannot be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityViolation {
    /// Above the instance's [`CapabilityCeiling`].
    NotGranted(u32),
    /// An ambient capability the process would not hold in both its
    /// permitted and inheritable sets.
    AmbientNotPermittedAndInheritable(u32),
}

/// Becomes `uid:gid` for good, with `keep` as the only capabilities left
/// (and the only ones any later exec can have), supplementary groups
/// dropped, and `no_new_privs` set.
pub fn become_guest(uid: u32, gid: u32, keep: &[u32], may_set_groups: bool) -> Result<(), IdentityError> {
    become_guest_with_groups(
        uid,
        gid,
        &[],
        &CapabilitySets::granting(keep.to_vec()),
        may_set_groups,
        NoNewPrivileges::Set,
    )
}

/// Whether a process sets `no_new_privs` as it becomes the guest: set, no
/// exec of it gains privileges (set-uid bits, file capabilities); left, as
/// an OCI config may ask (`process.noNewPrivileges: false`, the engines'
/// default), a set-uid program of the instance's root takes its owner's id
/// (inside the instance's user namespace, like every id there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoNewPrivileges {
    Set,
    Left,
}

/// [`become_guest`] with these supplementary groups (which need
/// `may_set_groups`: a rootless instance maps one gid and may not set any)
/// and these capability sets.
///
pub fn become_guest_with_groups(
    uid: u32,
    gid: u32,
    groups: &[u32],
    caps: &CapabilitySets,
    may_set_groups: bool,
    no_new_privileges: NoNewPrivileges,
) -> Result<(), IdentityError> {
    let setup = |what| move |error| IdentityError::Setup { what, error };
    caps::set_inheritable(&caps.inheritable).map_err(setup("the inheritable capabilities"))?;
    caps::limit_bounding_set(&caps.granted).map_err(setup("the capability bounding set"))?;
    caps::clear_ambient().map_err(setup("the ambient capabilities"))?;
    if may_set_groups {
        process::setgroups(groups).map_err(setup("supplementary groups"))?;
    } else if !groups.is_empty() {
        return Err(IdentityError::Setup {
            what: "supplementary groups",
            error: io::Error::from_raw_os_error(xvisor_sys::errno::EPERM),
        });
    }
    process::setresgid(gid).map_err(setup("the guest gid"))?;
    let keep_caps = uid != 0 && !caps.ambient.is_empty();
    if keep_caps {
        caps::set_keep_caps(true).map_err(setup("the keep-capabilities flag"))?;
    }
    process::setresuid(uid).map_err(setup("the guest uid"))?;
    // A guest staying uid 0 keeps exactly `granted`. Any other user keeps
    // its ambient capabilities only (what its program will have): a change
    // to its uid without keep-caps cleared the permitted set, and one
    // without a change (a rootless instance, whose creator already was that
    // uid) did not, so it is set here either way.
    let permitted = if uid == 0 { &caps.granted } else { &caps.ambient };
    caps::set_all(permitted, permitted, &caps.inheritable).map_err(setup("capabilities"))?;
    for &cap in &caps.ambient {
        caps::raise_ambient(cap).map_err(setup("the ambient capabilities"))?;
    }
    if keep_caps {
        caps::set_keep_caps(false).map_err(setup("the keep-capabilities flag"))?;
    }
    match no_new_privileges {
        NoNewPrivileges::Set => process::set_no_new_privs().map_err(setup("no_new_privs")),
        NoNewPrivileges::Left => Ok(()),
    }
}

/// Applies `--nofile` (soft = hard = N), refusing values above the host's
/// hard limit with a message instead of the kernel's bare EPERM.
pub fn limit_open_files(n: u64) -> Result<(), IdentityError> {
    let (_, hard) = process::rlimit::get(process::rlimit::NOFILE).map_err(|error| IdentityError::Setup {
        what: "RLIMIT_NOFILE",
        error,
    })?;
    if n > hard {
        return Err(IdentityError::NofileAboveHardLimit { requested: n, hard });
    }
    process::rlimit::set(process::rlimit::NOFILE, n, n).map_err(|error| IdentityError::Setup {
        what: "RLIMIT_NOFILE",
        error,
    })
}

/// Processes and threads each user of an instance may have at once when
/// nothing else bounds them: room for a parallel build or a busy server,
/// and an end to a fork bomb long before the host's own limit.
pub const DEFAULT_PROCESSES_PER_USER: u64 = 4096;

/// At most `n` processes and threads per user (RLIMIT_NPROC, soft and
/// hard; the guest may lower it, never raise it). The kernel counts them by
/// host user: a bound on the instance only where its users are host ids
/// of its own, and free (no cgroup to create).
pub fn limit_processes_per_user(n: u64) -> Result<(), IdentityError> {
    process::rlimit::set(process::rlimit::NPROC, n, n).map_err(|error| IdentityError::Setup {
        what: "RLIMIT_NPROC",
        error,
    })
}

/// Checks `--nofile` against the hard limit without changing anything.
pub fn check_open_files(n: u64) -> Result<(), IdentityError> {
    let (_, hard) = process::rlimit::get(process::rlimit::NOFILE).map_err(|error| IdentityError::Setup {
        what: "RLIMIT_NOFILE",
        error,
    })?;
    if n > hard {
        return Err(IdentityError::NofileAboveHardLimit { requested: n, hard });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_callers_map_one_id_root_maps_all() {
        let m = IdMaps::for_caller(0, 0, 1000, 100);
        assert_eq!(m.uid_map(), "0 1000 1\n");
        assert_eq!(m.gid_map(), "0 100 1\n");
        let m = IdMaps::for_caller(1000, 1000, 1000, 100);
        assert_eq!(m.uid_map(), "1000 1000 1\n");
        assert_eq!(IdMaps::for_caller(0, 0, 0, 0), IdMaps::Identity);
        assert_eq!(IdMaps::Identity.uid_map(), "0 0 4294967295\n");
    }

    fn range(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange { inside, outside, count }
    }

    #[test]
    fn subordinate_ranges_follow_the_callers_own_id() {
        let map = with_subordinates(1000, &[(100_000, 65_536), (300_000, 10)]).unwrap();
        assert_eq!(
            map,
            vec![range(0, 1000, 1), range(1, 100_000, 65_536), range(65_537, 300_000, 10)]
        );
        assert_eq!(with_subordinates(1000, &[]), None);
        // A range holding the caller's own id is one the kernel refuses.
        assert_eq!(with_subordinates(1000, &[(900, 200)]), None);
        // Clipped below the last id, inside and out.
        let far = with_subordinates(1000, &[(u64::from(u32::MAX) - 10, 100)]).unwrap();
        assert_eq!(far[1], range(1, u32::MAX - 10, 10));
        let ranges: Vec<(u64, u64)> = (0..400).map(|i| (1_000_000 + i * 10, 5)).collect();
        assert_eq!(with_subordinates(1000, &ranges).unwrap().len(), MAX_ID_RANGES);
    }

    /// Property: on small id spaces, `check_all` accepts exactly the sets
    /// of non-empty ranges in which no id is mapped twice, inside or out.
    #[test]
    fn range_checks_agree_with_counting_every_id() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..5_000 {
            let ranges: Vec<IdRange> = (0..1 + next(4))
                .map(|_| range(next(16) as u32, next(16) as u32, next(6) as u32))
                .collect();
            let mut inside = [0u8; 32];
            let mut outside = [0u8; 32];
            for r in &ranges {
                for i in 0..r.count {
                    inside[(r.inside + i) as usize] += 1;
                    outside[(r.outside + i) as usize] += 1;
                }
            }
            let expected = ranges.iter().all(|r| r.count > 0) && inside.iter().chain(&outside).all(|&n| n <= 1);
            assert_eq!(IdRange::check_all(&ranges).is_ok(), expected, "{ranges:?}");
        }
    }

    #[test]
    fn given_maps_are_written_as_given_and_checked_as_the_kernel_would() {
        let m = IdMaps::Given {
            uid: vec![range(0, 100_000, 65_536)],
            gid: vec![range(0, 200_000, 10), range(10, 300_000, 5)],
        };
        assert_eq!(m.uid_map(), "0 100000 65536\n");
        assert_eq!(m.gid_map(), "0 200000 10\n10 300000 5\n");
        assert!(m.writable_by(0, 0));
        assert!(!m.writable_by(1000, 1000));
        let own = IdMaps::Given {
            uid: vec![range(0, 1000, 1)],
            gid: vec![range(0, 100, 1)],
        };
        assert!(own.writable_by(1000, 100));
        assert!(IdRange::check_all(&[range(0, 0, u32::MAX)]).is_ok());
        for (bad, why) in [
            (vec![], "no range"),
            (vec![range(0, 0, 0)], "size 0"),
            (vec![range(1, 0, u32::MAX)], "past the last id"),
            (vec![range(0, 10, 5), range(4, 100, 1)], "overlap inside"),
            (vec![range(0, 10, 5), range(5, 14, 1)], "overlap outside"),
            (vec![range(0, 0, 1); MAX_ID_RANGES + 1], "more than"),
        ] {
            let e = IdRange::check_all(&bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(IdRange::check_all(&[range(0, 10, 5), range(5, 15, 1)]).is_ok());
        assert!(IdRange::maps(&[range(0, 10, 5)], 4));
        assert!(!IdRange::maps(&[range(0, 10, 5)], 5));
    }

    #[test]
    fn capability_sets_stay_within_the_granted_ones() {
        assert_eq!(
            CapabilitySets::default().violation(CapabilityCeiling::EnginesDefault),
            None
        );
        assert_eq!(CapabilitySets::default().granted, GUEST_ROOT_CAPABILITIES);
        let sets = |granted: &[u32], inheritable: &[u32], ambient: &[u32]| CapabilitySets {
            granted: granted.to_vec(),
            inheritable: inheritable.to_vec(),
            ambient: ambient.to_vec(),
        };
        // Inheritable beyond granted is fine; ambient needs both.
        let ok = sets(&[cap::KILL], &[cap::KILL, cap::CHOWN], &[cap::KILL]);
        assert_eq!(ok.violation(CapabilityCeiling::EnginesDefault), None);
        assert_eq!(
            sets(&[cap::KILL], &[cap::CHOWN], &[cap::CHOWN]).violation(CapabilityCeiling::Any),
            Some(CapabilityViolation::AmbientNotPermittedAndInheritable(cap::CHOWN))
        );
        assert_eq!(
            sets(&[cap::KILL], &[], &[cap::KILL]).violation(CapabilityCeiling::EnginesDefault),
            Some(CapabilityViolation::AmbientNotPermittedAndInheritable(cap::KILL))
        );
        for outside in [
            sets(&[cap::SYS_PTRACE], &[], &[]),
            sets(&[], &[cap::NET_ADMIN], &[]),
            sets(&[cap::NET_ADMIN], &[cap::NET_ADMIN], &[cap::NET_ADMIN]),
        ] {
            assert!(
                matches!(
                    outside.violation(CapabilityCeiling::EnginesDefault),
                    Some(CapabilityViolation::NotGranted(_))
                ),
                "{outside:?}"
            );
            // An OCI engine's instance may hold any capability (inside).
            assert_eq!(outside.violation(CapabilityCeiling::Any), None, "{outside:?}");
        }
        let everything = CapabilityCeiling::Any.capabilities();
        assert_eq!(everything.len() as u32, caps::last_cap() + 1);
        assert_eq!(
            sets(&everything, &everything, &everything).violation(CapabilityCeiling::Any),
            None
        );
        assert_eq!(
            sets(&[caps::last_cap() + 1], &[], &[]).violation(CapabilityCeiling::Any),
            Some(CapabilityViolation::NotGranted(caps::last_cap() + 1)),
            "beyond what this kernel knows"
        );
        let n = sets(&[5, 0, 5], &[10, 10], &[]).normalized();
        assert_eq!((n.granted, n.inheritable), (vec![0, 5], vec![10]));
    }

    #[test]
    fn nofile_above_hard_limit_is_refused() {
        let (_, hard) = process::rlimit::get(process::rlimit::NOFILE).unwrap();
        if hard != u64::MAX {
            let e = check_open_files(hard + 1).unwrap_err();
            assert!(e.to_string().contains("hard limit"), "{e}");
        }
        assert!(check_open_files(16).is_ok());
    }
}
