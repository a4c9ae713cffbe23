//! What the supervisor reads of a host task in `/proc`: its state letter
//! and parent, and its ids inside the instance. A leaf: the monitor, the
//! scheduler and the exec pins all read tasks this way.

/// A task's state letter and its parent's host pid, from `/proc/TID/stat`
/// (fields 3 and 4, counted after the last ')': the command name before
/// them may hold spaces and parentheses).
pub(crate) fn stat_of(host_tid: i32) -> Option<(char, i32)> {
    let stat = xvisor_sys::fs::read_small(format!("/proc/{host_tid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A task's ids, from `/proc/TID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    /// Its thread group on the host (its own id when unknown).
    pub(crate) host_pid: i32,
    /// Thread and thread group inside the instance (the last entries of
    /// NSpid and NStgid; -1 when unknown).
    pub(crate) tid: i64,
    pub(crate) pid: i64,
}

/// Host task `host_tid`'s ids.
pub(crate) fn ids_of(host_tid: i32) -> Ids {
    let status = xvisor_sys::fs::read_small(format!("/proc/{host_tid}/status")).unwrap_or_default();
    let last = |key: &str| -> Option<i64> {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    };
    Ids {
        host_pid: last("Tgid:").and_then(|v| i32::try_from(v).ok()).unwrap_or(host_tid),
        tid: last("NSpid:").unwrap_or(-1),
        pid: last("NStgid:").unwrap_or(-1),
    }
}
