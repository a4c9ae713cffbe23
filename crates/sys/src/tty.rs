//! Terminals: pseudo-terminal pairs, modes, window size.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check_int;

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Opens a new pseudo-terminal from the `ptmx` device at `ptmx_path` and
/// returns `(master, slave)`. The slave is opened through the master
/// (`TIOCGPTPEER`), so it is the right one even if /dev/pts is replaced.
pub fn open_pty(ptmx_path: &str) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = crate::fs::open_read_write(ptmx_path, true)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int we own.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let slave = check_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// The slave of the pseudo-terminal whose master is `master`, opened
/// without becoming anyone's controlling terminal (`TIOCGPTPEER`); fails
/// (`ENOTTY`, `EIO`) when `master` is not a pty master.
pub fn slave_of_master(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let slave = check_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(slave) })
}

/// Gives up the calling process's controlling terminal, if it has one:
/// `TIOCNOTTY` on `/dev/tty`, which for a process that leads no session
/// only clears its own link (session and process group stay). Returns
/// whether the process is now without one, as the kernel reports it
/// (`/proc/self/stat`'s `tty_nr`): false when that cannot be told, so a
/// caller falls back to what needs no terminal to be gone.
pub fn leave_controlling_terminal() -> bool {
    // Failing to open it (ENXIO: there is none) or to leave it is settled
    // by what the kernel says below.
    if let Ok(current) = crate::fs::open_read_write("/dev/tty", true) {
        // SAFETY: TIOCNOTTY takes no argument.
        let _ = unsafe { libc::ioctl(current.as_raw_fd(), libc::TIOCNOTTY) };
    }
    crate::fs::read_small("/proc/self/stat").is_ok_and(|stat| controlling_terminal_of_stat(&stat) == Some(0))
}

/// `tty_nr`, the 7th field of a `/proc/PID/stat` line (the command name,
/// field 2, may hold spaces and parentheses: fields are counted after its
/// last `)`).
fn controlling_terminal_of_stat(stat: &str) -> Option<i64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(4)?.parse().ok()
}

/// Makes `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// A saved terminal mode.
#[derive(Clone, Copy)]
pub struct Mode(libc::termios);

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mode { .. }")
    }
}

pub fn get_mode(fd: BorrowedFd<'_>) -> io::Result<Mode> {
    // SAFETY: an all-zero termios is valid storage for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes only `t`.
    check_int(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(Mode(t))
}

pub fn set_mode(fd: BorrowedFd<'_>, mode: &Mode) -> io::Result<()> {
    // SAFETY: tcsetattr reads a valid termios.
    check_int(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &mode.0) }).map(drop)
}

/// `mode` turned raw: no echo, no line editing, no signal characters (they
/// pass through as bytes, to be interpreted by the guest's own terminal).
pub fn raw(mode: &Mode) -> Mode {
    let mut t = mode.0;
    // SAFETY: cfmakeraw edits the termios we own.
    unsafe { libc::cfmakeraw(&mut t) };
    Mode(t)
}

/// Window size `(rows, columns)`.
pub fn get_window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: an all-zero winsize is valid storage.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes only `ws`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, columns: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads `ws`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::controlling_terminal_of_stat;

    #[test]
    fn the_terminal_field_is_counted_after_the_command_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 34816 4242 4194560 100 0 0 0";
        assert_eq!(controlling_terminal_of_stat(line), Some(34816));
        assert_eq!(controlling_terminal_of_stat("1 (init) S 0 1 1 0 -1 4194560"), Some(0));
        assert_eq!(controlling_terminal_of_stat("1 (init) S"), None);
        assert_eq!(controlling_terminal_of_stat(""), None);
    }
}
