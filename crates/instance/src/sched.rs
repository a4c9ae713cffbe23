//! The scheduler: every trapped call is a light task, run on a small fixed
//! pool of the supervisor's threads, whatever the number of guest threads.
//!
//! - **System-call work** (short, first): the serving threads
//!   ([`crate::server`]) take turns at the listener (one leader receives,
//!   the others wait for their turn) and decide each call on the spot.
//! - A call that must wait for something — a blocking `wait4` for a child's
//!   end — is **parked** here: a record in a table, no thread held. The
//!   guest thread stays in its trapped call; the supervisor's threads go on
//!   serving everyone else.
//! - The same serving threads complete parked calls, after any system-call
//!   work that is waiting, by two queues: *signaled* first (the guest thread
//!   has a signal to take: the call is answered "interrupted", and the
//!   kernel applies the program's own SA_RESTART choice on the way out —
//!   restart, or EINTR — exactly as for a call it had been blocking in
//!   itself), then *generic* (what the call waited for happened: the kernel
//!   performs it, now without blocking).
//!
//! The process monitor says when a process ends (its parent may be parked
//! in `wait4`), through a pipe the serving threads watch with the listener.
//! Pending signals cannot be waited for — a trapped call sleeps killably
//! once received, and the kernel does not say when a signal arrives for a
//! sleeping thread — so each parked thread's pending signals
//! (`/proc/TID/status`) are looked at every few milliseconds, less often as
//! more calls are parked.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xvisor_kernel::dispatch::{Decision, Wait};
use xvisor_kernel::trace::{Record, Trace};
use xvisor_sys::event;
use xvisor_sys::seccomp::{self, Response};
use xvisor_trap::table::errno::ERESTARTSYS;

use crate::perform::Connecting;

/// A trapped call waiting in the supervisor.
#[derive(Debug, Clone)]
pub(crate) struct Parked {
    pub(crate) id: u64,
    /// The listener the call came from (and is answered on).
    pub(crate) listener: Arc<OwnedFd>,
    pub(crate) host_tid: i32,
    pub(crate) host_pid: i32,
    pub(crate) name: &'static str,
    pub(crate) wait: Wait,
    /// For a wait on one child: its host pid (None when the instance has no
    /// such process: the kernel will say ECHILD).
    pub(crate) child_host_pid: Option<i32>,
    /// The caller's threads (host tids), whose children are its children.
    pub(crate) threads: Vec<i32>,
    pub(crate) since: Instant,
    /// For the trace: the call as described when it was received, and its
    /// instance pid and tid.
    pub(crate) described: Option<(Vec<String>, i64, i64)>,
    /// For a connect the supervisor started ([`Wait::Connected`]) or
    /// tries again ([`Wait::UnixQueue`]).
    pub(crate) connecting: Option<Arc<Connecting>>,
}

impl Parked {
    fn key(&self) -> (usize, u64) {
        (Arc::as_ptr(&self.listener) as usize, self.id)
    }
}

/// The parked calls, shared by the serving threads (which park), the
/// monitor (which reports ends) and the waiter (which completes).
#[derive(Debug)]
pub(crate) struct Parking {
    state: Mutex<ParkingState>,
    /// Held by the serving thread completing parked calls.
    completing: Mutex<()>,
    /// Whether a guest tracer holds a task the monitor let go: a tracer's
    /// blocking wait returns at its tracees' ptrace stops, which nothing
    /// tells the supervisor, so every wait is then the kernel's at once.
    lending: AtomicBool,
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

#[derive(Debug)]
struct ParkingState {
    /// By listener and notification id (ids are per filter).
    parked: BTreeMap<(usize, u64), Parked>,
    /// Processes whose child ended since the parked calls were last looked
    /// at (`None`: unknown parent, look at every parked call).
    ended_children_of: Vec<Option<i32>>,
    /// When parked threads' signals are next looked at.
    next_check: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Parking {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (wake_read, wake_write) = event::pipe()?;
        // Several threads may find the pipe readable; one empties it. A
        // full pipe wakes its reader as well as one more byte would.
        event::set_nonblocking(wake_read.as_fd(), true)?;
        event::set_nonblocking(wake_write.as_fd(), true)?;
        Ok(Self {
            state: Mutex::new(ParkingState {
                parked: BTreeMap::new(),
                ended_children_of: Vec::new(),
                next_check: Instant::now(),
            }),
            completing: Mutex::new(()),
            lending: AtomicBool::new(false),
            wake_read,
            wake_write,
        })
    }

    /// The monitor lent a task to a guest tracer (or took the last one
    /// back): waits parked meanwhile are answered at their next look.
    pub(crate) fn set_lending(&self, lending: bool) {
        self.lending.store(lending, Ordering::Release);
    }

    /// Whether a guest tracer holds a task of the instance.
    pub(crate) fn lending(&self) -> bool {
        self.lending.load(Ordering::Acquire)
    }

    pub(crate) fn wake(&self) {
        let _ = event::write_all(self.wake_write.as_fd(), &[1]);
    }

    /// Parks `call`, or answers it at once if what it waits for has
    /// happened already. Checked under the table's lock, so an end reported
    /// meanwhile by the monitor is not missed.
    pub(crate) fn park(&self, call: Parked) -> Option<Response> {
        let mut state = lock(&self.state);
        if (self.lending() && matches!(call.wait, Wait::ChildEnd { .. })) || wait_is_over(&call) {
            drop(state);
            let response = match answer_of(&call) {
                Decision::Value(v) => Response::Value(v),
                Decision::Errno(e) => Response::Errno(e),
                _ => Response::Continue,
            };
            let _ = seccomp::respond(call.listener.as_fd(), call.id, response);
            return Some(response);
        }
        if state.parked.is_empty() {
            state.next_check = Instant::now() + check_interval(1);
        }
        state.parked.insert(call.key(), call);
        None
    }

    /// The monitor saw process `parent`'s child end (`None`: parent unknown).
    pub(crate) fn child_ended(&self, parent: Option<i32>) {
        let mut state = lock(&self.state);
        if state.parked.is_empty() {
            return;
        }
        state.ended_children_of.push(parent);
        drop(state);
        self.wake();
    }

    /// The host tids of parked calls and the calls they are parked in.
    pub(crate) fn parked_threads(&self) -> BTreeMap<i32, &'static str> {
        lock(&self.state)
            .parked
            .values()
            .map(|p| (p.host_tid, p.name))
            .collect()
    }

    /// The sockets of parked connects, which the serving threads watch
    /// beside the listeners: a connect's end completes its call at once.
    pub(crate) fn connecting(&self) -> Vec<Arc<Connecting>> {
        lock(&self.state)
            .parked
            .values()
            .filter(|p| p.wait == Wait::Connected)
            .filter_map(|p| p.connecting.clone())
            .collect()
    }

    /// Whether any call is parked.
    pub(crate) fn has_parked(&self) -> bool {
        !lock(&self.state).parked.is_empty()
    }

    /// What the serving threads watch, with the listener, for parked work.
    pub(crate) fn wake_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.wake_read.as_fd()
    }

    /// How long a serving thread may wait for a trapped call before the
    /// parked calls are due a look (-1: none is parked).
    pub(crate) fn timeout_ms(&self) -> i32 {
        let state = lock(&self.state);
        if state.parked.is_empty() {
            return -1;
        }
        let left = state.next_check.saturating_duration_since(Instant::now());
        i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
    }

    /// Completes the parked calls whose time has come: the signaled queue
    /// first, then the generic one. One serving thread at a time; another
    /// that finds this work taken goes back to the listener.
    pub(crate) fn complete_due(&self, trace: &Option<Arc<Mutex<Trace>>>, created_at: Instant, woken: bool) {
        let Ok(_completing) = self.completing.try_lock() else {
            return;
        };
        if woken {
            let mut buf = [0u8; 64];
            while matches!(event::read(self.wake_read.as_fd(), &mut buf), Ok(n) if n == buf.len()) {}
        }
        let (signaled, resumed) = {
            let mut s = lock(&self.state);
            let check_signals = !s.parked.is_empty() && Instant::now() >= s.next_check;
            let ended = std::mem::take(&mut s.ended_children_of);
            let mut signaled = Vec::new();
            let mut resumed = Vec::new();
            let keys: Vec<(usize, u64)> = s.parked.keys().copied().collect();
            for key in keys {
                let Some(call) = s.parked.get(&key) else { continue };
                let concerned = matches!(call.wait, Wait::Connected | Wait::UnixQueue | Wait::SendRoom)
                    || ended.iter().any(|p| p.is_none_or(|p| p == call.host_pid));
                // What it waited for comes first: a child that ended as a
                // signal arrived is collected, as the kernel would.
                let over = self.lending() && matches!(call.wait, Wait::ChildEnd { .. });
                let outcome = if over || ((concerned || check_signals) && wait_is_over(call)) {
                    Some(&mut resumed)
                } else if check_signals && !seccomp::id_valid(call.listener.as_fd(), call.id) {
                    // Gone (killed): nothing to answer.
                    s.parked.remove(&key);
                    None
                } else if check_signals && has_signal_to_take(call.host_tid, call.host_pid) {
                    Some(&mut signaled)
                } else {
                    None
                };
                if let Some(queue) = outcome {
                    if let Some(call) = s.parked.remove(&key) {
                        queue.push(call);
                    }
                }
            }
            if check_signals {
                s.next_check = Instant::now() + check_interval(s.parked.len());
            }
            (signaled, resumed)
        };
        // The signaled queue first: those threads have somewhere to be.
        for call in signaled {
            complete(trace, created_at, call, Decision::Errno(ERESTARTSYS));
        }
        for call in resumed {
            let answer = answer_of(&call);
            complete(trace, created_at, call, answer);
        }
    }
}

/// How often parked threads' signals are looked at: every few
/// milliseconds, less often as more calls are parked (a look costs a read
/// of /proc/TID/status, ~15 µs).
fn check_interval(parked: usize) -> Duration {
    Duration::from_millis((5 + parked as u64 / 5).min(250))
}

fn complete(trace: &Option<Arc<Mutex<Trace>>>, created_at: Instant, call: Parked, decision: Decision) {
    let response = match decision {
        Decision::Errno(e) => Response::Errno(e),
        Decision::Value(v) => Response::Value(v),
        _ => Response::Continue,
    };
    let _ = seccomp::respond(call.listener.as_fd(), call.id, response);
    if let (Some(trace), Some((args, pid, tid))) = (trace, call.described) {
        let record = Record {
            time_s: created_at.elapsed().as_secs_f64(),
            pid,
            tid,
            name: call.name.to_string(),
            args,
            decision,
            // A parked call's completion is not watched: the scheduler
            // thread answers it, and waiting for its result here would
            // hold up the other parked calls.
            returned: None,
            latency_us: call.since.elapsed().as_secs_f64() * 1e6,
            rule: None,
            after_park: true,
            hint: None,
        };
        if let Ok(mut t) = trace.lock() {
            let _ = t.write(&record);
        }
    }
}

/// What a parked call whose wait is over is answered: a wait for a child
/// is the kernel's to perform now; a connect the supervisor started ends
/// as its socket says.
fn answer_of(call: &Parked) -> Decision {
    match (call.wait, &call.connecting) {
        (Wait::Connected, Some(c)) => match xvisor_sys::socket::take_error(c.socket.as_fd()) {
            Ok(0) => Decision::Value(0),
            Ok(e) => Decision::Errno(e),
            Err(e) => Decision::Errno(e.raw_os_error().unwrap_or(xvisor_sys::errno::EIO)),
        },
        (Wait::UnixQueue | Wait::SendRoom, Some(c)) => {
            lock(&c.ended).unwrap_or(Decision::Errno(xvisor_sys::errno::EIO))
        }
        (Wait::Connected | Wait::UnixQueue | Wait::SendRoom, None) => Decision::Errno(xvisor_sys::errno::EIO),
        (Wait::ChildEnd { .. }, _) => Decision::Continue,
    }
}

/// Whether the event a parked call waits for has happened (or never can:
/// then the kernel gives the answer, e.g. ECHILD).
fn wait_is_over(call: &Parked) -> bool {
    match call.wait {
        Wait::Connected => call.connecting.as_ref().is_none_or(|c| {
            let mut watch = [event::Watch::new(c.socket.as_fd(), event::ready::OUT)];
            matches!(event::poll(&mut watch, 0), Ok(n) if n > 0)
        }),
        Wait::UnixQueue => call.connecting.as_ref().is_none_or(|c| {
            let Some((address, _file)) = &c.again else {
                return true;
            };
            match crate::perform::connect_without_waiting(c.socket.as_fd(), address) {
                None => false,
                Some(ended) => {
                    *lock(&c.ended) = Some(ended);
                    true
                }
            }
        }),
        Wait::SendRoom => call.connecting.as_ref().is_none_or(|c| {
            let Some(sending) = &c.sending else {
                return true;
            };
            match crate::sending::try_send(c.socket.as_fd(), sending) {
                None => false,
                Some(ended) => {
                    *lock(&c.ended) = Some(ended);
                    true
                }
            }
        }),
        Wait::ChildEnd { child } => {
            let children = children_of(call.host_pid, &call.threads);
            match (child, call.child_host_pid) {
                (Some(_), None) => true,
                (Some(_), Some(c)) => !children.contains(&c) || is_zombie(c),
                (None, _) => children.is_empty() || children.iter().any(|c| is_zombie(*c)),
            }
        }
    }
}

/// The host pids of a process's children: those of each of its threads
/// (`/proc/PID/task/TID/children`).
fn children_of(host_pid: i32, threads: &[i32]) -> Vec<i32> {
    let mut children = Vec::new();
    for tid in threads {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{host_pid}/task/{tid}/children")) {
            children.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    children
}

fn is_zombie(host_pid: i32) -> bool {
    crate::procfs::stat_of(host_pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X'))
}

/// Signals whose default action is to do nothing: they interrupt a call
/// only when the program catches them.
const IGNORED_BY_DEFAULT: u64 = bit(17) | bit(18) | bit(23) | bit(28); // CHLD, CONT, URG, WINCH

const fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

/// Whether thread `host_tid` has a signal it will take on its way out of
/// the call: pending for the thread (or for its process, when the process
/// has this one thread — else another thread may take it, as natively),
/// not blocked, not ignored, and either caught or acting by default (stop,
/// or end the process).
fn has_signal_to_take(host_tid: i32, host_pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{host_pid}/task/{host_tid}/status")) else {
        return false;
    };
    signal_to_take(&status)
}

fn signal_to_take(status: &str) -> bool {
    let mask = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let mut pending = mask("SigPnd:");
    if threads == 1 {
        pending |= mask("ShdPnd:");
    }
    let caught = mask("SigCgt:");
    pending & !mask("SigBlk:") & !mask("SigIgn:") & !(IGNORED_BY_DEFAULT & !caught) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(pnd: u64, shd: u64, blk: u64, ign: u64, cgt: u64, threads: u32) -> String {
        format!(
            "Name:\tx\nThreads:\t{threads}\nSigQ:\t0/1\nSigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n"
        )
    }

    #[test]
    fn which_signals_interrupt_a_parked_call() {
        let alrm = bit(14);
        let chld = bit(17);
        // A caught SIGALRM for the process, one thread: yes.
        assert!(signal_to_take(&status(0, alrm, 0, 0, alrm, 1)));
        // The same with other threads: one of them may take it.
        assert!(!signal_to_take(&status(0, alrm, 0, 0, alrm, 3)));
        // Sent to this thread: yes, whatever the thread count.
        assert!(signal_to_take(&status(alrm, 0, 0, 0, alrm, 3)));
        // Blocked or ignored: no.
        assert!(!signal_to_take(&status(alrm, 0, alrm, 0, alrm, 1)));
        assert!(!signal_to_take(&status(alrm, 0, 0, alrm, 0, 1)));
        // SIGCHLD: only if caught.
        assert!(!signal_to_take(&status(chld, 0, 0, 0, 0, 1)));
        assert!(signal_to_take(&status(chld, 0, 0, 0, chld, 1)));
        // An uncaught SIGTERM ends the process: it must leave the call.
        assert!(signal_to_take(&status(bit(15), 0, 0, 0, 0, 1)));
        assert!(!signal_to_take(""));
    }

    #[test]
    fn checks_thin_out_with_many_parked_calls() {
        assert_eq!(check_interval(0), Duration::from_millis(5));
        assert_eq!(check_interval(100), Duration::from_millis(25));
        assert_eq!(check_interval(100_000), Duration::from_millis(250));
    }
}
