//! The user-space kernel: what the supervisor does with each trapped call.
//!
//! - [`dispatch`]: a trapped call (number + six registers) → its table row
//!   and a [`Decision`](dispatch::Decision) from its handler. Decisions are
//!   made on register values alone; anything unknown fails closed.
//! - [`decode`]: the call's arguments in readable form (paths and strings
//!   read from guest memory, flags by name), for the trace.
//! - [`net`]: what a connect's address means for its socket, for the
//!   `[net].connect` rules the supervisor holds.
//! - [`trace`]: the `--trace` records, as JSON lines or strace-like text.

#![forbid(unsafe_code)]

pub mod decode;
pub mod dispatch;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_input;
pub mod learn;
pub mod net;
pub mod trace;

/// A trapped call as the kernel reported it (independent of the ioctl
/// layer, so decisions and decoding are testable without a kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrappedCall {
    pub id: u64,
    /// Calling thread, as seen by the supervisor (host pid namespace).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}
