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

/// The one-to-one id maps of an instance: the guest's uid and gid inside
/// map to the invoking user's outside. One id each works without any
/// privilege or helper (rootless) and grants the guest nothing on the host
/// that the invoking user does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMaps {
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub outside_uid: u32,
    pub outside_gid: u32,
}

impl IdMaps {
    pub fn uid_map(&self) -> String {
        format!("{} {} 1\n", self.inside_uid, self.outside_uid)
    }

    pub fn gid_map(&self) -> String {
        format!("{} {} 1\n", self.inside_gid, self.outside_gid)
    }

    /// Writes the maps of the child `pid` (called by its parent, outside).
    /// `setgroups` is denied unless the invoking user is root outside: an
    /// unprivileged user may not map a gid otherwise, and dropping
    /// supplementary groups is all the guest needs.
    pub fn write_for(&self, pid: i32) -> Result<(), IdentityError> {
        let write = |name: &str, content: &str| {
            let file = format!("/proc/{pid}/{name}");
            std::fs::write(&file, content).map_err(|error| IdentityError::IdMap { file, error })
        };
        if process::geteuid() != 0 {
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
    let setup = |what| move |error| IdentityError::Setup { what, error };
    caps::limit_bounding_set(keep).map_err(setup("the capability bounding set"))?;
    caps::clear_ambient().map_err(setup("the ambient capabilities"))?;
    if may_set_groups {
        process::setgroups(&[]).map_err(setup("supplementary groups"))?;
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
    fn maps_are_single_lines() {
        let m = IdMaps {
            inside_uid: 0,
            inside_gid: 0,
            outside_uid: 1000,
            outside_gid: 100,
        };
        assert_eq!(m.uid_map(), "0 1000 1\n");
        assert_eq!(m.gid_map(), "0 100 1\n");
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
