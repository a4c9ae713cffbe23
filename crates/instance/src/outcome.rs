//! What a call the kernel performed returned, for the trace.
//!
//! A call the supervisor answers with "continue" is performed by the kernel
//! after the answer, out of the supervisor's sight. When tracing, the
//! serving thread first asks the monitor thread (the tracer: only it may
//! make ptrace requests) to `PTRACE_INTERRUPT` the caller — which, waiting
//! killably for the answer, stops only once the call has returned to user
//! space — then answers; at that stop the monitor reads the return value
//! (checking that the call it sees is that one: same number, resuming just
//! after the same `syscall` instruction) and hands it back.
//!
//! A call that would block interruptibly is cut short by the pending stop
//! and restarts by itself (no signal is delivered); its result is not seen,
//! and that thread's next call is not watched, so it blocks in peace.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xvisor_sys::ptrace;

/// How long a serving thread waits for the monitor to arm a watch; past it
/// the call is answered unwatched.
const ARM_PATIENCE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The serving thread asks for the caller to be interrupted.
    Requested,
    /// The interrupt is pending: the caller stops after its call.
    Armed,
    /// The stop came: the call returned this (or was not seen).
    Seen(Option<i64>),
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    tid: i32,
    number: i64,
    instruction_pointer: u64,
    state: State,
}

#[derive(Debug, Default)]
struct Watches {
    /// By notification id: a thread's next call may be received (by the
    /// other serving thread) before the answer to its last is read.
    by_call: HashMap<u64, Watch>,
    /// Threads whose watched call was cut short and restarts: not watched
    /// again, once.
    skip_next: HashSet<i32>,
}

/// Shared by the serving threads and the monitor thread.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    watches: Mutex<Watches>,
    changed: Condvar,
    /// The monitor thread, rung out of its wait with the doorbell signal.
    monitor_tid: AtomicI32,
}

impl Outcomes {
    fn lock(&self) -> MutexGuard<'_, Watches> {
        self.watches.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called by the monitor thread once, before it waits for anything.
    pub(crate) fn monitor_is(&self, tid: i32) {
        self.monitor_tid.store(tid, Ordering::Release);
    }

    /// Serving thread, before answering "continue": asks for thread `tid`
    /// to stop after call `number` (notification `call`), which returns to
    /// `instruction_pointer`. Whether the watch is armed (then
    /// [`Outcomes::seen`] must follow).
    pub(crate) fn watch(&self, call: u64, tid: i32, number: i64, instruction_pointer: u64) -> bool {
        let monitor = self.monitor_tid.load(Ordering::Acquire);
        let mut watches = self.lock();
        if monitor <= 0 || watches.skip_next.remove(&tid) {
            return false;
        }
        watches.by_call.insert(
            call,
            Watch {
                tid,
                number,
                instruction_pointer,
                state: State::Requested,
            },
        );
        drop(watches);
        let doorbell = xvisor_sys::signal::doorbell();
        let until = Instant::now() + ARM_PATIENCE;
        loop {
            // Rung again while waiting: a ring just before the monitor
            // blocks in its wait would be lost.
            let _ = xvisor_sys::signal::ring(monitor, doorbell);
            let watches = self.lock();
            let (mut watches, _) = self
                .changed
                .wait_timeout_while(watches, Duration::from_millis(2), |w| {
                    w.by_call.get(&call).is_some_and(|w| w.state == State::Requested)
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match watches.by_call.get(&call).map(|w| w.state) {
                Some(State::Requested) if Instant::now() < until => continue,
                Some(State::Requested) | None => {
                    watches.by_call.remove(&call);
                    return false;
                }
                Some(_) => return true,
            }
        }
    }

    /// Serving thread, after answering: what the watched call returned,
    /// waiting up to `patience` for it.
    pub(crate) fn seen(&self, call: u64, patience: Duration) -> Option<i64> {
        let watches = self.lock();
        let (mut watches, _) = self
            .changed
            .wait_timeout_while(watches, patience, |w| {
                w.by_call.get(&call).is_some_and(|w| w.state == State::Armed)
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Still armed: the monitor finds no watch at the stop and just
        // resumes the thread.
        match watches.by_call.remove(&call).map(|w| w.state) {
            Some(State::Seen(value)) => value,
            _ => None,
        }
    }

    /// Monitor thread, whenever it wakes: interrupts the threads asked for.
    pub(crate) fn arm_requested(&self) {
        let mut watches = self.lock();
        let mut changed = false;
        let mut failed = Vec::new();
        for (call, watch) in watches.by_call.iter_mut() {
            if watch.state == State::Requested {
                changed = true;
                match ptrace::interrupt(watch.tid) {
                    Ok(()) => watch.state = State::Armed,
                    Err(_) => failed.push(*call),
                }
            }
        }
        for call in failed {
            watches.by_call.remove(&call);
        }
        if changed {
            self.changed.notify_all();
        }
    }

    /// Monitor thread, at a `PTRACE_EVENT_STOP` of `tid` that is not a
    /// group stop: whether it was a watch's (then the thread is to be
    /// resumed, and nothing else is to be made of the stop).
    pub(crate) fn stopped(&self, tid: i32) -> bool {
        let mut watches = self.lock();
        let armed: Vec<u64> = watches
            .by_call
            .iter()
            .filter(|(_, w)| w.tid == tid && w.state == State::Armed)
            .map(|(call, _)| *call)
            .collect();
        if armed.is_empty() {
            return false;
        }
        let regs = ptrace::call_registers(tid).ok();
        for call in armed {
            let Some(watch) = watches.by_call.get_mut(&call) else {
                continue;
            };
            // A thread makes one call at a time: of several armed watches
            // (an earlier one whose stop an exec or fork event swallowed),
            // only the one that matches is this stop's.
            let seen = match regs {
                Some(r) if r.number == watch.number && ptrace::is_restart(r.returned) => {
                    watches.skip_next.insert(tid);
                    None
                }
                Some(r) if r.number == watch.number && r.instruction_pointer == watch.instruction_pointer => {
                    Some(r.returned)
                }
                _ => None,
            };
            if let Some(w) = watches.by_call.get_mut(&call) {
                w.state = State::Seen(seen);
            }
        }
        self.changed.notify_all();
        true
    }

    /// Monitor thread, at an exec or fork event of `tid`: the call in
    /// progress cannot be watched to its return (a new image resumes
    /// elsewhere; the event stop may take the place of the interrupt's).
    /// An exec event is an exec that succeeded: it returns 0.
    pub(crate) fn call_over(&self, tid: i32, exec: bool) {
        let mut watches = self.lock();
        let mut changed = false;
        for w in watches
            .by_call
            .values_mut()
            .filter(|w| w.tid == tid && w.state == State::Armed)
        {
            w.state = State::Seen(exec.then_some(0));
            changed = true;
        }
        if changed {
            self.changed.notify_all();
        }
    }

    /// Monitor thread: `tid` is gone. A watched call still awaited never
    /// returned (`exit`, or a fatal signal); one already seen keeps its
    /// result, which a serving thread may not have read yet.
    pub(crate) fn ended(&self, tid: i32) {
        let mut watches = self.lock();
        watches.skip_next.remove(&tid);
        for w in watches
            .by_call
            .values_mut()
            .filter(|w| w.tid == tid && !matches!(w.state, State::Seen(_)))
        {
            w.state = State::Seen(None);
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(tid: i32, state: State) -> Watch {
        Watch {
            tid,
            number: 257,
            instruction_pointer: 0x1000,
            state,
        }
    }

    #[test]
    fn a_result_seen_before_the_thread_ended_is_kept() {
        let outcomes = Outcomes::default();
        {
            let mut w = outcomes.lock();
            w.by_call.insert(1, watch(7, State::Seen(Some(3))));
            w.by_call.insert(2, watch(7, State::Armed));
            w.by_call.insert(3, watch(8, State::Armed));
        }
        outcomes.ended(7);
        assert_eq!(outcomes.seen(1, Duration::ZERO), Some(3));
        assert_eq!(outcomes.seen(2, Duration::ZERO), None);
        // Another thread's watch is untouched: still awaited.
        assert_eq!(outcomes.lock().by_call.get(&3).map(|w| w.state), Some(State::Armed));
    }
}
