//! Capabilities: the bounding set, the ambient set, and the three sets of
//! the calling thread.

use std::io;

use crate::{check, check_int};

/// Capability numbers used by name elsewhere.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_RAW: u32 = 13;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
}

/// The highest capability number this kernel knows (read once).
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// Removes every capability not in `keep` from the bounding set, so no exec
/// can ever gain it again.
pub fn limit_bounding_set(keep: &[u32]) -> io::Result<()> {
    for cap in 0..=last_cap() {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        match check_int(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Empties the ambient set.
pub fn clear_ambient() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) }).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets the effective and permitted sets of the calling thread to exactly
/// `caps` and empties the inheritable set.
pub fn set_exact(caps: &[u32]) -> io::Result<()> {
    set_sets(caps, caps)
}

/// Sets the calling thread's effective set to `effective` and its permitted
/// set to `permitted` (a superset: what it may raise again later), and
/// empties the inheritable set.
pub fn set_sets(effective: &[u32], permitted: &[u32]) -> io::Result<()> {
    let mut data = [CapData::default(); 2];
    for &cap in permitted {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < 2 {
            data[word].permitted |= 1 << bit;
        }
    }
    for &cap in effective {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < 2 {
            data[word].effective |= 1 << bit;
        }
    }
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header with two data words, as capset expects.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) }).map(drop)
}
