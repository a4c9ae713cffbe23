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

use crate::identity::NoNewPrivileges;
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

impl WallError {
    fn from_io(what: &'static str, error: io::Error) -> Self {
        Self { what, error }
    }
}

/// Restricts the calling process, and everything it creates from now on, to
/// the tree under its current root. With [`NoNewPrivileges::Set`], sets
/// `no_new_privs` (Landlock's condition for an unprivileged caller); with
/// `Left` (for an instance whose processes may leave it off), the caller
/// must hold CAP_SYS_ADMIN in its user namespace instead.
pub fn wall_in_root(no_new_privileges: NoNewPrivileges) -> Result<Wall, WallError> {
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
    // POSIX message queues open through the kernel's own mount of the
    // instance's mqueue filesystem, which no path beneath / reaches:
    // Landlock's walk up from a queue ends at that filesystem's root, the
    // same directory as the instance's /dev/mqueue. A rule there grants
    // the instance's own queues and nothing else.
    if let Ok(queues) = xvisor_sys::fs::open_path(None, "/dev/mqueue") {
        ruleset
            .allow_beneath(queues.as_fd(), rights)
            .map_err(failed("allow the instance's message queues"))?;
    }
    if no_new_privileges == NoNewPrivileges::Set {
        xvisor_sys::process::set_no_new_privs().map_err(failed("set no_new_privs"))?;
    }
    ruleset.restrict_self().map_err(failed("restrict"))?;
    Ok(Wall::Raised {
        abi,
        scoped: scopes != 0,
    })
}

/// Without Landlock, the mount namespace is the only wall, and a host
/// directory handed to the guest as a descriptor (stdin from a directory,
/// a preserved O_PATH descriptor) would reach the host's files beneath it
/// through `openat` or `/proc/self/fd/N/…`. Then such descriptors are
/// refused: `what` names them in the message. With Landlock they are
/// harmless (nothing beyond the instance's root opens) and accepted —
/// unless `caller_ids` (the guest's ids are the caller's, rootless):
/// Landlock does not cover `chmod`, `chown`, `utimes` or xattrs, so the
/// guest could change the metadata of the caller's files beneath it.
pub fn check_handed_in(fds: &[(std::os::fd::BorrowedFd<'_>, String)], caller_ids: bool) -> Result<(), String> {
    let landlock = landlock::abi_version().is_ok();
    if landlock && !caller_ids {
        return Ok(());
    }
    for (fd, what) in fds {
        if xvisor_sys::fs::reaches_paths(*fd).unwrap_or(false) {
            return Err(if landlock {
                format!(
                    "{what} is a directory (or path handle) of the host, and a rootless instance's root is you: it could change the mode, owner and times of your files beneath it; hand in a file or a pipe"
                )
            } else {
                format!(
                    "{what} is a directory (or path handle) of the host, and without Landlock (this kernel has none, or its lsm= list leaves it out) the instance could open the host's files beneath it; hand in a file or a pipe"
                )
            });
        }
    }
    Ok(())
}

/// A policy's own wall, raised inside the first: path hierarchies by kind
/// of access and TCP ports by direction. `None` leaves that kind as the
/// first wall has it; `Some` grants it only beneath the paths (or on the
/// ports) listed, plus what every program needs ([`ALWAYS_READ_WRITE`],
/// [`ALWAYS_READ`], the dynamic loader).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRules {
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
    /// Executing also reads the program (the kernel opens it for reading).
    pub exec: Option<Vec<String>>,
    pub connect_tcp: Option<Vec<u16>>,
    pub bind_tcp: Option<Vec<u16>>,
}

/// Devices every program may read and write, where they exist.
pub const ALWAYS_READ_WRITE: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// Trees every program may read: its own process's state.
pub const ALWAYS_READ: &[&str] = &["/proc"];

/// The dynamic loader, which the kernel opens for execution with every
/// dynamically linked program.
pub const DYNAMIC_LOADERS: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/usr/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
];

/// Why a policy's wall could not be raised.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the policy needs Landlock, which this kernel lacks (not built in, or left out of its lsm= list)")]
    NoLandlock,
    #[error("the policy's TCP port rules need Landlock ABI 4 (Linux 6.7); this kernel has ABI {0}")]
    NoNetworkRules(u32),
    #[error("the policy names {path}, which does not exist in the instance: {error}")]
    Missing { path: String, error: io::Error },
    #[error(transparent)]
    Wall(#[from] WallError),
}

impl AccessRules {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The Landlock ABI these rules need (0: none).
    pub fn abi_needed(&self) -> u32 {
        if self.connect_tcp.is_some() || self.bind_tcp.is_some() {
            xvisor_trap::policy_file::LANDLOCK_NET_ABI
        } else if self.read.is_some() || self.write.is_some() || self.exec.is_some() {
            1
        } else {
            0
        }
    }

    /// Whether this kernel can hold these rules.
    pub fn check_kernel(&self) -> Result<(), AccessError> {
        let needed = self.abi_needed();
        if needed == 0 {
            return Ok(());
        }
        let abi = landlock::abi_version().map_err(|_| AccessError::NoLandlock)?;
        if abi < needed {
            return Err(AccessError::NoNetworkRules(abi));
        }
        Ok(())
    }

    /// Restricts the calling process and everything it creates from now on
    /// to these rules. Call inside the instance's root, after
    /// [`wall_in_root`], with the same `no_new_privileges`.
    pub fn raise(&self, no_new_privileges: NoNewPrivileges) -> Result<(), AccessError> {
        use landlock::fs;
        if self.is_empty() {
            return Ok(());
        }
        self.check_kernel()?;
        let abi = landlock::abi_version().map_err(|_| AccessError::NoLandlock)?;
        let known = landlock::fs_rights_of(abi);
        let read = fs::READ_FILE | fs::READ_DIR;
        let write = known & !(read | fs::EXECUTE | fs::IOCTL_DEV);
        let exec = fs::EXECUTE | fs::READ_FILE;
        let mut handled = 0;
        for (list, rights) in [(&self.read, read), (&self.write, write), (&self.exec, fs::EXECUTE)] {
            if list.is_some() {
                handled |= rights;
            }
        }
        let mut handled_net = 0;
        if self.connect_tcp.is_some() {
            handled_net |= landlock::net::CONNECT_TCP;
        }
        if self.bind_tcp.is_some() {
            handled_net |= landlock::net::BIND_TCP;
        }
        let ruleset =
            Ruleset::handling(abi, handled, handled_net, 0).map_err(|e| WallError::from_io("create a ruleset", e))?;
        let grant = |path: &str, rights: u64, required: bool| -> Result<(), AccessError> {
            let file = match xvisor_sys::fs::open_path(None, path) {
                Ok(f) => f,
                Err(_) if !required => return Ok(()),
                Err(error) => {
                    return Err(AccessError::Missing {
                        path: path.to_string(),
                        error,
                    })
                }
            };
            // A file takes only the rights that concern files.
            let rights = match xvisor_sys::fs::kind_of_fd(file.as_fd()) {
                Ok(xvisor_sys::fs::FileKind::Directory) => rights,
                _ => rights & (fs::EXECUTE | fs::READ_FILE | fs::WRITE_FILE | fs::TRUNCATE | fs::IOCTL_DEV),
            } & handled;
            // The kernel refuses a rule that grants nothing it handles.
            if rights == 0 {
                return Ok(());
            }
            ruleset
                .allow_beneath(file.as_fd(), rights)
                .map_err(|e| WallError::from_io("add a rule", e).into())
        };
        for (list, rights) in [(&self.read, read), (&self.write, write), (&self.exec, exec)] {
            for path in list.iter().flatten() {
                grant(path, rights, true)?;
            }
        }
        for path in ALWAYS_READ_WRITE {
            grant(path, read | write, false)?;
        }
        for path in ALWAYS_READ {
            grant(path, read, false)?;
        }
        if self.exec.is_some() {
            for path in DYNAMIC_LOADERS {
                grant(path, exec, false)?;
            }
        }
        for (list, access) in [
            (&self.connect_tcp, landlock::net::CONNECT_TCP),
            (&self.bind_tcp, landlock::net::BIND_TCP),
        ] {
            for &port in list.iter().flatten() {
                ruleset
                    .allow_port(port, access)
                    .map_err(|e| WallError::from_io("add a port rule", e))?;
            }
        }
        if no_new_privileges == NoNewPrivileges::Set {
            xvisor_sys::process::set_no_new_privs().map_err(|e| WallError::from_io("set no_new_privs", e))?;
        }
        ruleset.restrict_self().map_err(|e| WallError::from_io("restrict", e))?;
        Ok(())
    }
}
