//! A send the supervisor performs for the guest, copied and ready: what
//! `send` (the decision) builds and what a parked send tries again
//! (`sched`). Nothing in it is read from the guest again.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use xvisor_kernel::dispatch::{errno, Decision};
use xvisor_sys::seccomp;

/// `sizeof(struct msghdr)` and `sizeof(struct mmsghdr)` on x86_64.
pub(crate) const MSGHDR_LEN: usize = 56;
pub(crate) const MMSGHDR_LEN: u64 = 64;
const EPIPE: i32 = 32;
const SIGPIPE: i32 = 13;

/// One message, ready to send: nothing in it is read from the guest again.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) data: Vec<u8>,
    pub(crate) address: Option<Vec<u8>>,
    pub(crate) control: Vec<u8>,
    /// Descriptors the control messages name (taken from the guest), and
    /// the unix socket file the address names: kept open until sent.
    pub(crate) _held: Vec<OwnedFd>,
}

/// A performed send: the messages, and what answering needs.
#[derive(Debug)]
pub(crate) struct Sending {
    pub(crate) messages: Vec<Message>,
    /// The guest's flags, with `MSG_DONTWAIT` (the supervisor never
    /// blocks in a send) and `MSG_NOSIGNAL` (a broken pipe signals the
    /// guest, not the supervisor).
    pub(crate) flags: i32,
    /// The guest passed `MSG_NOSIGNAL`.
    pub(crate) quiet: bool,
    /// `sendmmsg`: where the guest's array is, for the lengths.
    pub(crate) lengths_at: Option<u64>,
    pub(crate) guest: u32,
    /// The calling thread, for `SIGPIPE`.
    pub(crate) thread: OwnedFd,
}

/// The sends of [`Sending`] on `socket`, without waiting: `None` when the
/// first found no room (nothing sent), else the call's answer.
pub(crate) fn try_send(socket: BorrowedFd<'_>, sending: &Sending) -> Option<Decision> {
    let mut sent: i64 = 0;
    for (i, m) in sending.messages.iter().enumerate() {
        match xvisor_sys::socket::send_message(socket, &m.data, m.address.as_deref(), &m.control, sending.flags) {
            Ok(n) => {
                let Some(at) = sending.lengths_at else {
                    return Some(Decision::Value(n as i64));
                };
                let length = u32::try_from(n).unwrap_or(u32::MAX).to_ne_bytes();
                let _ = seccomp::write_guest_memory(
                    sending.guest,
                    at + i as u64 * MMSGHDR_LEN + MSGHDR_LEN as u64,
                    &length,
                );
                sent += 1;
            }
            Err(e) if i == 0 && e.raw_os_error() == Some(xvisor_sys::errno::EAGAIN) => return None,
            Err(e) if i == 0 => {
                if e.raw_os_error() == Some(EPIPE) && !sending.quiet {
                    let _ = xvisor_sys::process::pidfd_send_signal(sending.thread.as_fd(), SIGPIPE);
                }
                return Some(Decision::Errno(e.raw_os_error().unwrap_or(errno::EINVAL)));
            }
            // The kernel's sendmmsg: the count of messages sent, the error
            // for the next call.
            Err(_) => break,
        }
    }
    Some(Decision::Value(sent))
}
