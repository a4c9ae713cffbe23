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

/// The host tid of task `host_tid`'s tracer (`TracerPid`, 0: none), or
/// `None` when /proc no longer knows the task.
pub(crate) fn tracer_of(host_tid: i32) -> Option<i32> {
    let status = xvisor_sys::fs::read_small(format!("/proc/{host_tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Which pid namespace task `host_tid` is in (the link's text names it).
pub(crate) fn pid_namespace_of(host_tid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{host_tid}/ns/pid")).ok()
}

/// Every thread of the process tree under `root` (host pid), each as
/// `(host tid, host pid)`: each process's threads (`/proc/PID/task`), then
/// each thread's children (`/proc/PID/task/TID/children`). A process
/// reparented while the walk runs may be missed: callers walk again until
/// a walk finds nothing new.
pub(crate) fn threads_under(root: i32) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut processes = vec![root];
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = processes.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for entry in threads.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else {
                continue;
            };
            out.push((tid, pid));
            if let Ok(children) = xvisor_sys::fs::read_small(format!("/proc/{pid}/task/{tid}/children")) {
                processes.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
        }
    }
    out
}
