//! `--trace`'s hints: a call that failed with `ENOENT` on a host path the
//! instance does not show carries, in its record, the volume that would
//! show it ([`xvisor_confine::absent`]); the first few found are kept for
//! the run's end. Only when tracing, whose calls are trapped and whose
//! results the monitor reads anyway: nothing is trapped for this.

use std::sync::Mutex;

use xvisor_confine::absent::{Hint, View};
use xvisor_kernel::decode::GuestMemory;
use xvisor_kernel::learn::{self, Touch};
use xvisor_kernel::TrappedCall;

/// Most hints kept for the run's end (each names a different volume).
const KEPT: usize = 8;

#[derive(Debug)]
pub(crate) struct Absent {
    view: View,
    found: Mutex<Vec<Hint>>,
}

/// A call's paths, absolute in the instance, each with whether the call
/// makes an entry there: read and resolved before the call is answered
/// (the guest's memory may change after, and the thread may be gone).
pub(crate) struct Named(Vec<(Vec<u8>, bool)>);

impl Absent {
    pub(crate) fn new(view: View) -> Self {
        Self {
            view,
            found: Mutex::new(Vec::new()),
        }
    }

    /// Reads the paths `call` names (before its answer: the guest's memory
    /// may change after).
    pub(crate) fn note(call: &TrappedCall, memory: &dyn GuestMemory) -> Named {
        let tid = i32::try_from(call.pid).unwrap_or(-1);
        let paths = learn::observe(call, memory).paths.into_iter().filter_map(|p| {
            let writes = matches!(p.touch, Touch::Write | Touch::Entry);
            crate::learning::absolute(tid, p.base, &p.path).map(|a| (a, writes))
        });
        Named(paths.collect())
    }

    /// The hint for a call that returned `returned`, if it failed with
    /// `ENOENT` on a host path the instance does not show; kept.
    pub(crate) fn hint(&self, named: Named, returned: Option<i64>) -> Option<String> {
        if returned != Some(-i64::from(xvisor_trap::table::errno::ENOENT)) {
            return None;
        }
        named.0.iter().find_map(|(absolute, writes)| {
            let path = std::str::from_utf8(absolute).ok()?;
            let hint = self.view.hint(path, *writes)?;
            let text = hint.to_string();
            let mut found = self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if found.len() < KEPT && !found.iter().any(|h| h.volume == hint.volume) {
                found.push(hint);
            }
            Some(text)
        })
    }

    /// The hints found so far, one per volume, in the order found.
    pub(crate) fn found(&self) -> Vec<Hint> {
        self.found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
