//! Host ids of an instance's own.
//!
//! An instance started by root maps its ids 0–65535 onto a range of host ids
//! that no other instance and no host user has, so the guest's root is
//! nobody on the host: host files keep their host owners and stay out of
//! reach as for any unprivileged user, instances cannot touch each other's
//! files or signal each other's processes, and per-user kernel limits
//! (processes, inotify instances) are per instance.
//!
//! The pool is the subordinate ranges of the user `xvisor` in /etc/subuid and
//! /etc/subgid when the administrator gave it some, else a built-in one,
//! [`BUILT_IN`]: 0x70000000–0x7FFDFFFF (4094 ranges of 65536: 4093 leased,
//! the last holding each slot's [`FAR_ID`]), above the
//! ranges `useradd` hands out, below 2³¹ (which some tools take for
//! negative), and below the range systemd keeps for foreign-owned files
//! (0x7FFE0000–0x7FFEFFFF). Built-in slots that overlap a subordinate range
//! of any user are never used.
//!
//! A range is leased by holding an exclusive `flock` on its slot file under
//! [`LOCK_DIR`] for the instance's life; the lock dies with its holder, so a
//! crashed supervisor never keeps a range. A slot whose file still names a
//! holder was not released cleanly: it is reused only once no process on
//! the host runs with an id of its range (the instance's files lived in its
//! own mount namespace and went with its last process).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use xvisor_sys::tree::{self, LockKind};

/// Ids an instance maps: every id a Linux distribution uses, up to
/// `nobody` (65534).
pub const RANGE_SIZE: u32 = 65536;

/// One more id an instance maps beside its range: 2³¹, the first id a
/// signed 32-bit type cannot hold, which test suites (CPython's among
/// them) chown files to as root to prove large ids work. Its host id comes
/// from the pool's last range, kept for these (one id per slot).
pub const FAR_ID: u32 = 1 << 31;

/// Where slot files live (root's alone).
pub const LOCK_DIR: &str = "/run/xvisor/id-ranges";

/// The user whose subordinate ranges form the pool when it has any.
pub const POOL_USER: &str = "xvisor";

/// The pool when /etc/subuid and /etc/subgid give [`POOL_USER`] nothing.
pub const BUILT_IN: Pool = Pool {
    first_uid: 0x7000_0000,
    first_gid: 0x7000_0000,
    slots: (0x7FFE_0000 - 0x7000_0000) / RANGE_SIZE,
};

#[derive(Debug, thiserror::Error)]
pub enum IdPoolError {
    #[error("{file}: {reason}")]
    Config { file: &'static str, reason: String },
    #[error(
        "every one of the {slots} host id ranges of the pool is in use \
         (give the user {POOL_USER} more in /etc/subuid and /etc/subgid, or use --userns host)"
    )]
    Exhausted { slots: u32 },
    #[error("cannot {what} {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

/// Ranges of [`RANGE_SIZE`] host uids and gids, `slots` of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub first_uid: u32,
    pub first_gid: u32,
    pub slots: u32,
}

/// A subordinate range of /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subordinate {
    owner: String,
    first: u64,
    count: u64,
}

/// The entries of a subordinate id file (`NAME:FIRST:COUNT` a line); lines
/// that are not entries are left out, as `newuidmap` does.
/// First and one-past-last id of `slot`'s range, in a pool starting at
/// `first`.
fn range_of(first: u32, slot: u32) -> (u64, u64) {
    let start = u64::from(first) + u64::from(slot) * u64::from(RANGE_SIZE);
    (start, start + u64::from(RANGE_SIZE))
}

/// The ranges a subordinate id file (its text) gives the user `name` of
/// uid `uid`, as (first, count), in the file's order: the entries naming
/// the user or its uid, as `newuidmap` and `newgidmap` match them (both
/// files are keyed by user).
pub fn ranges_of(text: &str, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let uid = uid.to_string();
    subordinates(text)
        .into_iter()
        .filter(|s| s.owner == uid || name.is_some_and(|n| s.owner == n))
        .filter(|s| s.count > 0)
        .map(|s| (s.first, s.count))
        .collect()
}

fn subordinates(text: &str) -> Vec<Subordinate> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?.to_string();
            let first = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            if owner.is_empty() || owner.starts_with('#') || fields.next().is_some() {
                return None;
            }
            Some(Subordinate { owner, first, count })
        })
        .collect()
}

impl Pool {
    /// The pool of this host: [`POOL_USER`]'s subordinate ranges (the first
    /// entry of each file), or [`BUILT_IN`] less what other users hold.
    /// Returns the pool and the slots it must skip.
    pub fn system() -> Result<(Self, Vec<u32>), IdPoolError> {
        let read = |file: &'static str| match std::fs::read_to_string(file) {
            Ok(text) => Ok(subordinates(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(IdPoolError::Io {
                what: "read",
                path: file.into(),
                error,
            }),
        };
        let (uids, gids) = (read("/etc/subuid")?, read("/etc/subgid")?);
        Self::from_subordinates(&uids, &gids)
    }

    fn from_subordinates(uids: &[Subordinate], gids: &[Subordinate]) -> Result<(Self, Vec<u32>), IdPoolError> {
        let own = |list: &[Subordinate]| list.iter().find(|s| s.owner == POOL_USER).cloned();
        match (own(uids), own(gids)) {
            (Some(u), Some(g)) => {
                let usable = |s: &Subordinate, file: &'static str| {
                    if s.first + s.count > u64::from(u32::MAX) {
                        return Err(IdPoolError::Config {
                            file,
                            reason: format!("the range of {POOL_USER} runs past the last id"),
                        });
                    }
                    Ok((s.first as u32, s.count / u64::from(RANGE_SIZE)))
                };
                let (first_uid, uid_slots) = usable(&u, "/etc/subuid")?;
                let (first_gid, gid_slots) = usable(&g, "/etc/subgid")?;
                let slots = uid_slots.min(gid_slots) as u32;
                if slots == 0 {
                    return Err(IdPoolError::Config {
                        file: "/etc/subuid",
                        reason: format!("{POOL_USER} needs at least {RANGE_SIZE} ids in /etc/subuid and /etc/subgid"),
                    });
                }
                Ok((
                    Self {
                        first_uid,
                        first_gid,
                        slots,
                    },
                    Vec::new(),
                ))
            }
            (None, None) => {
                let pool = BUILT_IN;
                let taken: Vec<u32> = (0..pool.slots)
                    .filter(|&slot| {
                        let (first, end) = pool.uid_bounds(slot);
                        uids.iter()
                            .chain(gids)
                            .any(|s| s.first < end && first < s.first + s.count)
                    })
                    .collect();
                Ok((pool, taken))
            }
            (Some(_), None) => Err(IdPoolError::Config {
                file: "/etc/subgid",
                reason: format!("{POOL_USER} has subordinate uids but no gids"),
            }),
            (None, Some(_)) => Err(IdPoolError::Config {
                file: "/etc/subuid",
                reason: format!("{POOL_USER} has subordinate gids but no uids"),
            }),
        }
    }

    /// First and one-past-last host uid of `slot`.
    fn uid_bounds(&self, slot: u32) -> (u64, u64) {
        range_of(self.first_uid, slot)
    }

    fn gid_bounds(&self, slot: u32) -> (u64, u64) {
        range_of(self.first_gid, slot)
    }

    /// Leases a free range, its slot file under `lock_dir`, skipping the
    /// slots of `skip`. Concurrent callers get different ranges, tried in
    /// [`probe_order`]: a few low slots first, whose files are warm, each
    /// caller from a slot picked from its pid, so they rarely contend.
    pub fn lease(&self, lock_dir: &Path, skip: &[u32]) -> Result<Lease, IdPoolError> {
        let io_at = |what, path: &Path| {
            let path = path.to_path_buf();
            move |error| IdPoolError::Io { what, path, error }
        };
        if let Some(parent) = lock_dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_at("create", parent))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(lock_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io_at("create", lock_dir)(error)),
        }
        let slots = self.leasable_slots();
        if slots == 0 {
            return Err(IdPoolError::Exhausted { slots: 0 });
        }
        for slot in probe_order(std::process::id(), slots) {
            if skip.contains(&slot) {
                continue;
            }
            let path = lock_dir.join(slot.to_string());
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io_at("open", &path))?;
            if !tree::lock(file.as_fd(), LockKind::Exclusive, false).map_err(io_at("lock", &path))? {
                continue;
            }
            let mut record = [0u8; RECORD_LEN];
            let read = file.read(&mut record).unwrap_or(0);
            // (A record written before this layout ended in the same word.)
            let released = read == 0 || String::from_utf8_lossy(&record[..read]).contains(RELEASED);
            if !released && self.in_use(slot) {
                continue;
            }
            write_record(&mut file, &format!("held by {}", std::process::id())).map_err(io_at("write", &path))?;
            let (far_uid, far_gid) = self.far_ids(slot, skip).unzip();
            return Ok(Lease {
                uid: self.uid_bounds(slot).0 as u32,
                gid: self.gid_bounds(slot).0 as u32,
                far_uid,
                far_gid,
                slot,
                file,
            });
        }
        Err(IdPoolError::Exhausted { slots })
    }

    /// The host uid and gid of `slot`'s [`FAR_ID`]: in the last range,
    /// unless the pool has only one or that range is not ours to use.
    fn far_ids(&self, slot: u32, skip: &[u32]) -> Option<(u32, u32)> {
        let last = self.slots.checked_sub(1).filter(|&l| l > 0 && !skip.contains(&l))?;
        let far = |first: u32| (range_of(first, last).0 + u64::from(slot)) as u32;
        Some((far(self.first_uid), far(self.first_gid)))
    }

    /// The slots leased as ranges: all but the last, which holds the
    /// [`FAR_ID`]s of the others (a pool of one range has none).
    fn leasable_slots(&self) -> u32 {
        if self.slots > 1 {
            self.slots - 1
        } else {
            self.slots
        }
    }

    /// Whether a process on the host runs with any id of `slot`'s ranges
    /// or its far ids.
    fn in_use(&self, slot: u32) -> bool {
        let (uids, gids) = (self.uid_bounds(slot), self.gid_bounds(slot));
        let (far_uid, far_gid) = match self.far_ids(slot, &[]) {
            Some((u, g)) => (u64::from(u), u64::from(g)),
            None => (u64::MAX, u64::MAX),
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            // Without /proc nothing can be known: the slot is not reused.
            return true;
        };
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
                return false;
            }
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                return false;
            };
            status.lines().any(|line| {
                let (ids, (first, end), far) = if let Some(rest) = line.strip_prefix("Uid:") {
                    (rest, uids, far_uid)
                } else if let Some(rest) = line.strip_prefix("Gid:") {
                    (rest, gids, far_gid)
                } else {
                    return false;
                };
                ids.split_whitespace()
                    .filter_map(|id| id.parse::<u64>().ok())
                    .any(|id| (first <= id && id < end) || id == far)
            })
        })
    }
}

/// How many low slots a lease tries first. Their files exist and were
/// written by the last instances, so they are in the page cache: a slot
/// picked anywhere in the pool is, on a host whose /run is on disk, a file
/// to create (about half a millisecond) or a cold block to read.
const HOT_SLOTS: u32 = 16;

/// The order in which a lease tries the slots `0..slots`: the first
/// [`HOT_SLOTS`], then the others; each part from a slot picked from
/// `seed` (the caller's pid), so that concurrent callers rarely contend.
/// Every slot once.
fn probe_order(seed: u32, slots: u32) -> impl Iterator<Item = u32> {
    let hot = slots.min(HOT_SLOTS);
    let cold = slots - hot;
    let hot_start = seed % hot.max(1);
    let cold_start = seed.wrapping_mul(2_654_435_761) % cold.max(1);
    (0..hot)
        .map(move |i| (hot_start + i) % hot)
        .chain((0..cold).map(move |i| hot + (cold_start + i) % cold))
}

/// A range of host ids held for one instance: [`RANGE_SIZE`] uids from
/// `uid` and as many gids from `gid`. Dropped after the instance's last
/// process is gone, it marks its slot clean and releases it.
#[derive(Debug)]
pub struct Lease {
    pub uid: u32,
    pub gid: u32,
    /// The host ids of [`FAR_ID`] inside, when the pool has room for them.
    pub far_uid: Option<u32>,
    pub far_gid: Option<u32>,
    pub slot: u32,
    file: File,
}

/// A slot file holds one fixed-size record, rewritten in place at offset 0
/// (a seek and a write: all the supervisor's own filter allows once it is
/// confined; no truncation): `held by PID` or [`RELEASED`].
const RECORD_LEN: usize = 24;

/// The record of a slot whose holder released it cleanly.
const RELEASED: &str = "released";

fn write_record(file: &mut File, text: &str) -> io::Result<()> {
    let mut record = [b' '; RECORD_LEN];
    record[RECORD_LEN - 1] = b'\n';
    let text = text.as_bytes();
    let len = text.len().min(RECORD_LEN - 1);
    record[..len].copy_from_slice(&text[..len]);
    file.rewind()?;
    file.write_all(&record)
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Best effort: a slot left marked is only checked for processes
        // before its next use.
        let _ = write_record(&mut self.file, RELEASED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests fork (a process under a pool id): a fork taken while
    /// another test holds a slot file would hold its lock until exec.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xvisor-idpool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn require_root() {
        assert_eq!(
            xvisor_sys::process::geteuid(),
            0,
            "this test needs root (it starts a process under an id of the pool)"
        );
    }

    #[test]
    fn leases_are_exclusive_and_released_with_their_holder() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = scratch("exclusive");
        let pool = Pool {
            first_uid: 0x7100_0000,
            first_gid: 0x7100_0000,
            slots: 3,
        };
        let a = pool.lease(&dir, &[]).unwrap();
        let b = pool.lease(&dir, &[]).unwrap();
        assert_ne!(a.slot, b.slot);
        assert_eq!(a.uid.abs_diff(b.uid), RANGE_SIZE);
        // The last range holds the far ids, one per slot.
        let far_range = 0x7100_0000 + 2 * RANGE_SIZE;
        assert_eq!(a.far_uid, Some(far_range + a.slot));
        assert_eq!(b.far_gid, Some(far_range + b.slot));
        assert!(matches!(
            pool.lease(&dir, &[]),
            Err(IdPoolError::Exhausted { slots: 2 })
        ));
        let freed = a.slot;
        drop(a);
        assert_eq!(pool.lease(&dir, &[]).unwrap().slot, freed);
        assert!(matches!(pool.lease(&dir, &[0, 1]), Err(IdPoolError::Exhausted { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_crashed_holders_range_waits_until_no_process_runs_in_it() {
        use std::os::unix::process::CommandExt;
        require_root();
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = scratch("crashed");
        let pool = Pool {
            first_uid: 0x7200_0000,
            first_gid: 0x7200_0000,
            slots: 1,
        };
        // A holder that ended without releasing: its slot still names it,
        // and a process of its instance still runs under one of its ids.
        drop(pool.lease(&dir, &[]).unwrap());
        std::fs::write(dir.join("0"), "held by 12345").unwrap();
        let mut straggler = std::process::Command::new("sleep")
            .arg("30")
            .uid(0x7200_0000 + 1000)
            .gid(0x7200_0000 + 1000)
            .spawn()
            .unwrap();
        let refused = pool.lease(&dir, &[]);
        straggler.kill().unwrap();
        straggler.wait().unwrap();
        assert!(matches!(refused, Err(IdPoolError::Exhausted { .. })), "{refused:?}");
        let lease = pool.lease(&dir, &[]).unwrap();
        assert_eq!(lease.uid, 0x7200_0000);
        drop(lease);
        let left = std::fs::read_to_string(dir.join("0")).unwrap();
        assert_eq!(left.len(), RECORD_LEN);
        assert!(left.starts_with(RELEASED), "a clean release: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_slot_is_tried_once_the_hot_ones_first() {
        for slots in [1, 2, 15, 16, 17, 100, BUILT_IN.slots] {
            for seed in [0, 1, 7, 16, 12345, u32::MAX] {
                let order: Vec<u32> = probe_order(seed, slots).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..slots).collect::<Vec<_>>(), "slots {slots}, seed {seed}");
                let hot = slots.min(HOT_SLOTS) as usize;
                assert!(
                    order[..hot].iter().all(|&s| s < HOT_SLOTS),
                    "slots {slots}, seed {seed}"
                );
            }
        }
    }

    #[test]
    fn subordinate_files_parse_as_newuidmap_reads_them() {
        let list = subordinates("alice:100000:65536\n# comment\nbroken\nxvisor:200000:131072\nbad:1:x\n");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].owner, "xvisor");
        assert_eq!((list[1].first, list[1].count), (200_000, 131_072));
    }

    #[test]
    fn a_users_ranges_are_found_by_name_or_uid_in_order() {
        let text = "alice:100000:65536\n1000:300000:10\nbob:200000:65536\nalice:400000:5\nalice:1:0\n";
        assert_eq!(
            ranges_of(text, Some("alice"), 1000),
            vec![(100_000, 65_536), (300_000, 10), (400_000, 5)]
        );
        assert_eq!(ranges_of(text, None, 1000), vec![(300_000, 10)]);
        assert!(ranges_of(text, Some("carol"), 1001).is_empty());
    }

    #[test]
    fn the_pool_is_the_users_ranges_or_the_built_in_one_less_others() {
        let own = subordinates("xvisor:200000:131072\n");
        let (pool, skip) = Pool::from_subordinates(&own, &own).unwrap();
        assert_eq!((pool.first_uid, pool.slots), (200_000, 2));
        assert!(skip.is_empty());
        let other = subordinates(&format!("bob:{}:70000\n", 0x7000_0000u32 + 65536));
        let (pool, skip) = Pool::from_subordinates(&other, &[]).unwrap();
        assert_eq!(pool, BUILT_IN);
        assert_eq!(skip, vec![1, 2]);
        assert_eq!(BUILT_IN.slots, 4094);
        assert!(Pool::from_subordinates(&own, &[]).is_err());
        let small = subordinates("xvisor:200000:1000\n");
        assert!(Pool::from_subordinates(&small, &small).is_err());
    }
}
