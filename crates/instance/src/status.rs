//! What `xvisor ps NAME` shows: the monitor's task table, each live task
//! completed with the kernel's view of it (state, the call it waits in, its
//! parent and command line), in tree order.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::monitor::{TaskState, TaskTable};

/// One task, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Ids inside the instance; `ppid` is 0 for the instance's init.
    pub pid: i64,
    pub tid: i64,
    pub ppid: i64,
    /// Threads of the process (on its main thread's row; 0 on the others).
    pub threads: usize,
    /// running, waiting, stopped, zombie.
    pub state: String,
    /// The system call a waiting task is blocked in, or "".
    pub call: String,
    pub uptime_s: f64,
    /// Depth in the process tree (init is 0).
    pub depth: usize,
    pub command: String,
}

impl TaskRow {
    /// One line, fields separated by tabs (none can contain one).
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{}\t{}",
            self.pid, self.tid, self.ppid, self.threads, self.state, self.call, self.uptime_s, self.depth, self.command
        )
    }

    pub fn decode(line: &str) -> Option<Self> {
        let mut f = line.splitn(9, '\t');
        Some(Self {
            pid: f.next()?.parse().ok()?,
            tid: f.next()?.parse().ok()?,
            ppid: f.next()?.parse().ok()?,
            threads: f.next()?.parse().ok()?,
            state: f.next()?.to_string(),
            call: f.next()?.to_string(),
            uptime_s: f.next()?.parse().ok()?,
            depth: f.next()?.parse().ok()?,
            command: f.next()?.to_string(),
        })
    }

    /// Whether this row is a process's main thread.
    pub fn is_process(&self) -> bool {
        self.pid == self.tid
    }
}

/// The rows for every task in `table`, parents before children, each
/// process's threads right after it. `now` is the instance's age; `parked`
/// names the call each thread parked in the supervisor waits in.
pub(crate) fn rows(table: &mut TaskTable, now: Duration, parked: &BTreeMap<i32, &'static str>) -> Vec<TaskRow> {
    table.forget_collected();
    table.learn_instance_ids();
    let instance_pid: BTreeMap<i32, i64> = table
        .tasks()
        .filter(|t| t.host_tid == t.host_pid)
        .map(|t| (t.host_pid, t.pid))
        .collect();
    let mut threads: BTreeMap<i32, usize> = BTreeMap::new();
    for t in table.tasks() {
        *threads.entry(t.host_pid).or_default() += 1;
    }
    let mut rows: Vec<TaskRow> = table
        .tasks()
        .map(|t| {
            let kernel = KernelView::of(t.host_tid);
            let (state, call) = match (t.state, kernel.state) {
                _ if parked.contains_key(&t.host_tid) => (
                    "waiting",
                    format!("{} (parked)", parked.get(&t.host_tid).copied().unwrap_or("?")),
                ),
                (TaskState::Zombie, _) | (_, 'Z') | (_, 'X') => ("zombie", String::new()),
                (TaskState::Stopped, _) | (_, 'T') | (_, 't') => ("stopped", String::new()),
                (_, 'R') => ("running", String::new()),
                (_, _) => ("waiting", kernel.call.unwrap_or_default()),
            };
            let ppid = match kernel.ppid {
                Some(host) => instance_pid.get(&host).copied().unwrap_or(0),
                None => t.creator.and_then(|c| instance_pid.get(&c).copied()).unwrap_or(0),
            };
            let command = if t.state == TaskState::Zombie {
                "<defunct>".to_string()
            } else if t.pid == 1 {
                // The instance's own pid 1: a fork of xvisor, never exec'd.
                crate::init::INIT_NAME.to_string()
            } else {
                crate::monitor::command_line(t.host_tid).join(" ")
            };
            TaskRow {
                pid: t.pid,
                tid: t.tid,
                ppid,
                threads: if t.host_tid == t.host_pid {
                    threads.get(&t.host_pid).copied().unwrap_or(1)
                } else {
                    0
                },
                state: state.to_string(),
                call,
                uptime_s: now.saturating_sub(t.born_after).as_secs_f64(),
                depth: 0,
                command: command.replace(['\t', '\n', '\r'], " "),
            }
        })
        .collect();
    // Threads share their main thread's parent.
    let parent_of: BTreeMap<i64, i64> = rows
        .iter()
        .filter(|r| r.is_process())
        .map(|r| (r.pid, r.ppid))
        .collect();
    for r in rows.iter_mut().filter(|r| !r.is_process()) {
        r.ppid = parent_of.get(&r.pid).copied().unwrap_or(r.ppid);
    }
    tree_order(rows)
}

/// Parents before children (depth-first, by pid), threads after their
/// process.
fn tree_order(rows: Vec<TaskRow>) -> Vec<TaskRow> {
    let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut by_pid: BTreeMap<i64, Vec<TaskRow>> = BTreeMap::new();
    for r in rows {
        if r.is_process() {
            children.entry(r.ppid).or_default().push(r.pid);
        }
        by_pid.entry(r.pid).or_default().push(r);
    }
    let processes: Vec<i64> = by_pid.keys().copied().collect();
    // Roots: processes whose parent is not listed.
    let mut roots: Vec<i64> = processes
        .iter()
        .copied()
        .filter(|p| {
            by_pid
                .get(p)
                .and_then(|rs| rs.iter().find(|r| r.is_process()))
                .is_none_or(|r| !by_pid.contains_key(&r.ppid) || r.ppid == r.pid)
        })
        .collect();
    roots.sort_unstable();
    let mut out = Vec::new();
    let mut stack: Vec<(i64, usize)> = roots.into_iter().rev().map(|p| (p, 0)).collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some((pid, depth)) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(mut group) = by_pid.remove(&pid) {
            group.sort_by_key(|r| (!r.is_process(), r.tid));
            for mut r in group {
                r.depth = depth;
                out.push(r);
            }
        }
        if let Some(kids) = children.get(&pid) {
            let mut kids = kids.clone();
            kids.sort_unstable();
            for k in kids.into_iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
    // Anything in a cycle or otherwise unreached still shows.
    for (_, group) in by_pid {
        out.extend(group);
    }
    out
}

/// The kernel's view of a live task.
struct KernelView {
    /// The state letter of /proc/TID/stat ('?' when unreadable).
    state: char,
    /// The host pid of the parent process.
    ppid: Option<i32>,
    /// The call it is blocked in, by name.
    call: Option<String>,
}

impl KernelView {
    fn of(host_tid: i32) -> Self {
        let stat = crate::procfs::stat_of(host_tid);
        let state = stat.map_or('?', |(state, _)| state);
        let ppid = stat.map(|(_, ppid)| ppid);
        // "NR args…" while in a call, "running" or "-1 …" otherwise.
        let call = std::fs::read_to_string(format!("/proc/{host_tid}/syscall"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()))
            .map(|nr| xvisor_trap::table::lookup(nr).map_or_else(|| format!("syscall {nr}"), |s| s.name.to_string()));
        Self { state, ppid, call }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i64, tid: i64, ppid: i64) -> TaskRow {
        TaskRow {
            pid,
            tid,
            ppid,
            threads: 1,
            state: "waiting".into(),
            call: "wait4".into(),
            uptime_s: 1.5,
            depth: 0,
            command: "sh -c x".into(),
        }
    }

    #[test]
    fn rows_round_trip() {
        let r = row(3, 4, 2);
        assert_eq!(TaskRow::decode(&r.encode()), Some(r));
        assert_eq!(TaskRow::decode("1\t2"), None);
        assert_eq!(TaskRow::decode("x\t1\t1\t1\trunning\t\t0\t0\tsh"), None);
    }

    #[test]
    fn tree_order_puts_parents_first_and_threads_after_their_process() {
        let rows = vec![
            row(5, 5, 2),
            row(2, 2, 1),
            row(1, 1, 0),
            row(2, 7, 1),
            row(3, 3, 1),
            row(9, 9, 42),
        ];
        let order: Vec<(i64, i64, usize)> = tree_order(rows).iter().map(|r| (r.pid, r.tid, r.depth)).collect();
        assert_eq!(
            order,
            vec![(1, 1, 0), (2, 2, 1), (2, 7, 1), (5, 5, 2), (3, 3, 1), (9, 9, 0)]
        );
    }
}
