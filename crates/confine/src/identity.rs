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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMaps {
    Identity,
    Single {
        inside_uid: u32,
        inside_gid: u32,
        outside_uid: u32,
        outside_gid: u32,
    },
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
        }
    }

    /// Writes the maps of the child `pid` (called by its parent, outside).
    /// With a single mapped gid `setgroups` must be denied first (the kernel
    /// requires it of an unprivileged writer); the guest then keeps no
    /// supplementary groups, which is all it needs.
    pub fn write_for(&self, pid: i32) -> Result<(), IdentityError> {
        let write = |name: &str, content: &str| {
            let file = format!("/proc/{pid}/{name}");
            std::fs::write(&file, content).map_err(|error| IdentityError::IdMap { file, error })
        };
        if matches!(self, Self::Single { .. }) {
            write("setgroups", "deny")?;
        }
        write("uid_map", &self.uid_map())?;
        write("gid_map", &self.gid_map())
    }
}

/// The capabilities a guest running as uid 0 keeps *inside its own user
/// namespace* (none of them reach the host): the set container engines give
/// by default, enough for package managers and servers, without
/// CAP_SYS_ADMIN, CAP_NET_ADMIN or CAP_SYS_PTRACE.
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
    cap::MKNOD,
    cap::AUDIT_WRITE,
    cap::SETFCAP,
];

/// Becomes `uid:gid` for good, with `keep` as the only capabilities left
/// (and the only ones any later exec can have), supplementary groups
/// dropped, and `no_new_privs` set.
pub fn become_guest(uid: u32, gid: u32, keep: &[u32], may_set_groups: bool) -> Result<(), IdentityError> {
    become_guest_with_groups(uid, gid, &[], keep, may_set_groups)
}

/// [`become_guest`] with these supplementary groups (which need
/// `may_set_groups`: a rootless instance maps one gid and may not set any).
pub fn become_guest_with_groups(
    uid: u32,
    gid: u32,
    groups: &[u32],
    keep: &[u32],
    may_set_groups: bool,
) -> Result<(), IdentityError> {
    let setup = |what| move |error| IdentityError::Setup { what, error };
    caps::limit_bounding_set(keep).map_err(setup("the capability bounding set"))?;
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
    process::setresuid(uid).map_err(setup("the guest uid"))?;
    // A change to a non-zero uid already cleared the sets; a guest staying
    // uid 0 keeps exactly `keep`.
    let keep = if uid == 0 { keep } else { &[] };
    caps::set_exact(keep).map_err(setup("capabilities"))?;
    process::set_no_new_privs().map_err(setup("no_new_privs"))
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
