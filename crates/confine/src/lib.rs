//! Confinement: the host-kernel walls around an instance (DESIGN.md, layer 1).
//!
//! - [`rootfs`]: the instance's file tree (read-only system directories or a
//!   root directory, masked secrets, private /tmp and home, /proc, /dev, /sys,
//!   volumes), built in a new mount namespace and entered with `pivot_root`;
//! - [`cgroup`]: memory, pids and cpu limits on cgroup v2 or v1;
//! - [`identity`]: user-namespace id maps, capabilities, rlimits;
//! - [`wall`]: Landlock, the second wall around the files;
//! - [`absent`]: which host paths an instance does not show, and the volume
//!   that would.
//!
//! Everything here runs through the safe wrappers of `xvisor-sys`.

#![forbid(unsafe_code)]

pub mod absent;
pub mod cgroup;
pub mod identity;
pub mod idpool;
pub mod policy;
pub mod rootfs;
pub mod systemd;
pub mod units;
pub mod wall;

pub use cgroup::{CgroupError, InstanceCgroup, Limits, Placement};
pub use identity::IdentityError;
pub use rootfs::{GuestRoot, RootBase, RootExtras, RootSpec, RootfsError, TmpfsMount, TmpfsSizes, Volume};
