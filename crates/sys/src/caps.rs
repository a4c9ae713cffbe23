//! Capabilities: the bounding set, the ambient set, and the three sets of
//! the calling thread.

use std::io;

use crate::{check, check_int};

/// Capability numbers used by name elsewhere.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
}

/// The highest capability number this kernel knows (read once).
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        crate::fs::read_small("/proc/sys/kernel/cap_last_cap")
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
    set_all(effective, permitted, &[])
}

/// The three sets of a thread, as capability numbers in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadSets {
    pub effective: Vec<u32>,
    pub permitted: Vec<u32>,
    pub inheritable: Vec<u32>,
}

fn to_words(caps: &[u32]) -> [u32; 2] {
    let mut words = [0u32; 2];
    for &cap in caps {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < 2 {
            words[word] |= 1 << bit;
        }
    }
    words
}

fn from_words(words: [u32; 2]) -> Vec<u32> {
    (0..64u32)
        .filter(|&c| words[(c / 32) as usize] & (1 << (c % 32)) != 0)
        .collect()
}

/// Sets all three sets of the calling thread. The kernel refuses (EPERM) a
/// permitted set that is not a subset of the current one, an effective set
/// outside the new permitted one, and an inheritable capability that is in
/// neither the current inheritable set nor the bounding set (or, without
/// CAP_SETPCAP in effect, nor the current permitted set).
pub fn set_all(effective: &[u32], permitted: &[u32], inheritable: &[u32]) -> io::Result<()> {
    let (e, p, i) = (to_words(effective), to_words(permitted), to_words(inheritable));
    let data: [CapData; 2] = std::array::from_fn(|w| CapData {
        effective: e[w],
        permitted: p[w],
        inheritable: i[w],
    });
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header with two data words, as capset expects;
    // both live for the whole call and capset only reads them.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) }).map(drop)
}

/// The calling thread's three sets.
pub fn get() -> io::Result<ThreadSets> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a version-3 header and room for the two data words a
    // version-3 capget writes; both outlive the call.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) })?;
    Ok(ThreadSets {
        effective: from_words([data[0].effective, data[1].effective]),
        permitted: from_words([data[0].permitted, data[1].permitted]),
        inheritable: from_words([data[0].inheritable, data[1].inheritable]),
    })
}

/// Replaces the calling thread's inheritable set, leaving its effective and
/// permitted sets as they are.
pub fn set_inheritable(inheritable: &[u32]) -> io::Result<()> {
    let now = get()?;
    set_all(&now.effective, &now.permitted, inheritable)
}

/// Adds `cap` to the ambient set. The kernel requires it to be both
/// permitted and inheritable (EPERM otherwise).
pub fn raise_ambient(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE,
            cap as libc::c_ulong,
            0,
            0,
        )
    })
    .map(drop)
}

/// Turns the "keep capabilities" flag on or off: while on, a change of all
/// user ids away from 0 keeps the permitted set (it still clears the
/// effective and ambient sets). execve turns it off again.
pub fn set_keep_caps(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let caps = [0, 5, 31, 32, 40];
        assert_eq!(from_words(to_words(&caps)), caps.to_vec());
        assert_eq!(to_words(&[1, 33]), [2, 2]);
    }

    #[test]
    fn get_reads_this_thread() {
        // Whatever the test runs as, the effective set is within the
        // permitted one.
        let sets = get().unwrap();
        assert!(sets.effective.iter().all(|c| sets.permitted.contains(c)));
    }
}
