//! Signals: blocking them, reading them from a `signalfd`, dispositions.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check_int;

pub use libc::{
    SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGPIPE, SIGQUIT, SIGSTOP, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU,
    SIGUSR1, SIGUSR2, SIGWINCH,
};

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: as above; an invalid number only makes sigaddset fail.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

/// Blocks `signals` for the calling thread (so they wait for a signalfd).
pub fn block(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: valid set pointer; a null old-set pointer is allowed.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Unblocks every signal for the calling thread.
pub fn unblock_all() -> io::Result<()> {
    // SAFETY: an all-zero sigset_t is valid storage for sigfillset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own.
    unsafe { libc::sigfillset(&mut set) };
    // SAFETY: valid set pointer; a null old-set pointer is allowed.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

extern "C" fn do_nothing(_signal: libc::c_int) {}

/// A signal that only interrupts: its handler does nothing, and without
/// SA_RESTART a blocking call of the thread it is sent to fails with EINTR
/// — a doorbell for a thread blocked in an ioctl that nothing else wakes.
pub fn install_doorbell(signal: i32) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = 0;
    // SAFETY: `action.sa_mask` is a valid sigset_t inside a value we own.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler is async-signal-safe (it does nothing); the
    // pointers are valid for the call, and a null old-action is allowed.
    check_int(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) }).map(drop)
}

/// The signal the supervisor uses as a doorbell for its serving threads
/// (a real-time signal the C library leaves free).
pub fn doorbell() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Sends `signal` to thread `tid` of this process.
pub fn ring(tid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers.
    crate::check(unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) }).map(drop)
}

/// The calling thread's id.
pub fn current_thread_id() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Sets `signal` to be ignored (`ignore`) or to its default action.
pub fn set_disposition(signal: i32, ignore: bool) -> io::Result<()> {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_IGN and SIG_DFL are not functions; installing them runs no
    // code of ours in signal context.
    let old = unsafe { libc::signal(signal, handler) };
    if old == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resets every catchable signal to its default action (what a freshly
/// exec'd program expects; exec keeps "ignored" dispositions otherwise).
pub fn reset_all_dispositions() {
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // Numbers the C library reserves fail here; nothing to do about them.
        let _ = set_disposition(signal, false);
    }
}

/// A `signalfd` delivering `signals` (which the caller must have blocked).
pub fn signal_fd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = sigset(signals);
    // SAFETY: -1 asks for a new descriptor; `set` is a valid sigset_t.
    let fd = check_int(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One signal read from a signalfd.
#[derive(Debug, Clone, Copy)]
pub struct SignalInfo {
    pub signal: i32,
    /// The pid of the sender (as seen in our pid namespace), 0 if kernel.
    pub sender_pid: u32,
}

/// Reads the next pending signal from a non-blocking signalfd; `None` when
/// nothing is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<SignalInfo>> {
    // SAFETY: an all-zero signalfd_siginfo is a valid buffer.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: we pass the buffer's exact size; the kernel writes whole records.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    if n == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) => Ok(None),
            Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    if n as usize != size {
        return Err(io::Error::other("short read from signalfd"));
    }
    Ok(Some(SignalInfo {
        signal: info.ssi_signo as i32,
        sender_pid: info.ssi_pid,
    }))
}

/// Every classic signal and its conventional name.
const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// The highest signal number Linux has (SIGRTMAX).
pub const MAX_SIGNAL: i32 = 64;

/// The conventional name of a signal ("SIGKILL"), for messages.
pub fn name(signal: i32) -> String {
    match NAMES.iter().find(|(n, _)| *n == signal) {
        Some((_, s)) => (*s).to_string(),
        None if (libc::SIGRTMIN()..=MAX_SIGNAL).contains(&signal) => format!("SIGRTMIN+{}", signal - libc::SIGRTMIN()),
        None => format!("signal {signal}"),
    }
}

/// A signal named as on a command line: `TERM`, `SIGTERM`, `sigterm`, `15`.
/// `None` for anything else (and for 0, which signals nothing).
pub fn by_name(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=MAX_SIGNAL).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(_, s)| &s[3..] == bare).map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_both_ways() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(libc::SIGRTMIN() + 2), format!("SIGRTMIN+2"));
        assert_eq!(name(0), "signal 0");
        assert_eq!(by_name("TERM"), Some(15));
        assert_eq!(by_name("sigkill"), Some(9));
        assert_eq!(by_name("SIGUSR1"), Some(libc::SIGUSR1));
        assert_eq!(by_name("64"), Some(64));
        for bad in ["0", "65", "-1", "", "SIG", "FOO", "9x"] {
            assert_eq!(by_name(bad), None, "{bad}");
        }
        for (n, _) in NAMES {
            assert_eq!(by_name(&name(*n)), Some(*n));
        }
    }
}
