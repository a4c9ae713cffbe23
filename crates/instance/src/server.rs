//! The serving thread: receives every trapped call of an instance, decides
//! it and answers it, as fast as the kernel lets a round trip go.
//!
//! It waits on the listener alone (the rest of the supervisor's events are
//! the main thread's), with the kernel's synchronous wake-up requested, so
//! a trapped call wakes this thread on the caller's CPU and the answer wakes
//! the caller on the same CPU. It ends when every filtered task is gone (the
//! listener reports hang-up).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use xvisor_kernel::decode;
use xvisor_kernel::dispatch::{self, Decision};
use xvisor_kernel::trace::{Record, Trace};
use xvisor_kernel::TrappedCall;
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::seccomp;
use xvisor_trap::Policy;

/// Everything the serving thread owns.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) listener: OwnedFd,
    pub(crate) policy: Policy,
    pub(crate) trace: Option<Arc<Mutex<Trace>>>,
    pub(crate) created_at: Instant,
}

impl Server {
    /// Serves until every filtered task is gone. The thread has confined
    /// itself already (capabilities and filters belong to a thread).
    pub(crate) fn run(mut self) {
        let _ = seccomp::request_sync_wakeup(self.listener.as_fd());
        loop {
            let mut watch = [Watch::new(self.listener.as_fd(), ready::IN)];
            match event::poll(&mut watch, -1) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(_) => break,
            }
            if watch[0].ready & ready::IN != 0 {
                self.serve_one();
            } else if watch[0].ready & (ready::HUP | ready::ERR | ready::NVAL) != 0 {
                break;
            }
        }
        if let Some(t) = &self.trace {
            let _ = t.lock().map(|mut t| t.flush());
        }
    }

    /// Receives one trapped call, decides it, answers it, and records it
    /// when tracing. Decisions are made on registers; guest memory is read
    /// (for the trace only) before the answer, and the call's validity
    /// checked again after reading.
    fn serve_one(&mut self) {
        let listener = self.listener.as_fd();
        let notification = match seccomp::receive(listener) {
            Ok(n) => n,
            // The caller died between the wake-up and the receive.
            Err(_) => return,
        };
        // Clock reads only when tracing: nothing but decide-and-answer stays
        // on the path of a trapped call.
        let received = self.trace.as_ref().map(|_| Instant::now());
        let call = TrappedCall {
            id: notification.id,
            pid: notification.pid,
            nr: notification.nr,
            arch: notification.arch,
            args: notification.args,
        };
        let decision = dispatch::decide(&self.policy, &call);
        let described = self.trace.as_ref().map(|_| {
            let memory =
                |address: u64, buf: &mut [u8]| seccomp::read_guest_memory(notification.pid, address, buf).unwrap_or(0);
            let text = decode::describe(dispatch::syscall_of(&call), &call, &memory);
            // What was read is only trusted if the call is still the one we
            // read it for.
            let valid = seccomp::id_valid(listener, notification.id);
            (text, valid, instance_ids(notification.pid))
        });
        let response = match decision {
            Decision::Continue => seccomp::Response::Continue,
            Decision::Errno(e) => seccomp::Response::Errno(e),
        };
        let _ = seccomp::respond(listener, notification.id, response);
        if let (Some(trace), Some(received), Some(((name, args), valid, (pid, tid)))) =
            (self.trace.as_ref(), received, described)
        {
            let latency = received.elapsed();
            let args = if valid { args } else { vec!["<caller gone>".to_string()] };
            let record = Record {
                time_s: received.duration_since(self.created_at).as_secs_f64(),
                pid,
                tid,
                name,
                args,
                decision,
                latency_us: latency.as_secs_f64() * 1e6,
            };
            if let Ok(mut trace) = trace.lock() {
                let _ = trace.write(&record);
            }
        }
    }
}

/// The pid and tid inside the instance of a thread known by its host tid
/// (the last fields of NStgid and NSpid), or -1 when it is gone.
fn instance_ids(host_tid: u32) -> (i64, i64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{host_tid}/status")) else {
        return (-1, -1);
    };
    let last = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    (last("NStgid:"), last("NSpid:"))
}
