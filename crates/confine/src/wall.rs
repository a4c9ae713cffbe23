//! The second wall around the files (DESIGN.md, layer 1): Landlock.
//!
//! The mount namespace already shows an instance nothing but its own tree.
//! Landlock holds where that view can be stepped around: a descriptor of a
//! host directory that reaches the instance (an engine's `--preserve-fds`,
//! a descriptor passed over a unix socket) cannot be used to open anything
//! outside the instance's root, because every file-system right is granted
//! only beneath it. Where the kernel knows scopes (Landlock ABI 6), the
//! instance's processes also cannot connect to abstract unix sockets or
//! signal processes outside the instance — with `--net host` the host's
//! abstract sockets (a desktop session's, another instance's control
//! socket) stay out of reach.
//!
//! init raises the wall on itself once it has entered the root, before the
//! guest or any exec'd process exists, so all of them are in one domain and
//! may connect to and signal one another.

use std::io;
use std::os::fd::AsFd;

use xvisor_sys::errno;
use xvisor_sys::landlock::{self, Ruleset};

/// What was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wall {
    /// Every file-system right beneath `/` only; with `scoped`, abstract
    /// unix sockets and signals within the instance only.
    Raised { abi: u32, scoped: bool },
    /// The kernel has no Landlock (not built in, or not enabled at boot):
    /// the mount namespace is the only wall.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot wall the instance in with Landlock ({what}): {error}")]
pub struct WallError {
    what: &'static str,
    error: io::Error,
}

fn failed(what: &'static str) -> impl FnOnce(io::Error) -> WallError {
    move |error| WallError { what, error }
}

/// Restricts the calling process, and everything it creates from now on, to
/// the tree under its current root. Sets `no_new_privs` (Landlock's
/// condition for an unprivileged caller).
pub fn wall_in_root() -> Result<Wall, WallError> {
    let abi = match landlock::abi_version() {
        Ok(v) => v,
        Err(e) if matches!(e.raw_os_error(), Some(errno::ENOSYS | errno::EOPNOTSUPP)) => return Ok(Wall::Unavailable),
        Err(e) => return Err(failed("ask the kernel's version")(e)),
    };
    let rights = landlock::fs_rights_of(abi);
    let scopes = landlock::scopes_of(abi);
    let ruleset = Ruleset::new(abi, rights, scopes).map_err(failed("create a ruleset"))?;
    let root = xvisor_sys::fs::open_path(None, "/").map_err(failed("open /"))?;
    ruleset
        .allow_beneath(root.as_fd(), rights)
        .map_err(failed("allow everything beneath /"))?;
    xvisor_sys::process::set_no_new_privs().map_err(failed("set no_new_privs"))?;
    ruleset.restrict_self().map_err(failed("restrict"))?;
    Ok(Wall::Raised {
        abi,
        scoped: scopes != 0,
    })
}
