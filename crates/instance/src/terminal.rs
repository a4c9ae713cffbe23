//! Relaying xvisor's own terminal to the guest's pseudo-terminal (`-t`).
//!
//! The host terminal goes raw, so every key (Ctrl-C included) reaches the
//! guest's terminal as a byte and the guest's line discipline turns it into
//! a signal for the guest's foreground job; window size follows SIGWINCH.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use xvisor_sys::event;
use xvisor_sys::tty::{self, Mode};

const STDIN: i32 = 0;
const STDOUT: i32 = 1;

fn stdio(n: i32) -> BorrowedFd<'static> {
    event::standard(n)
}

/// Restores the host terminal's mode when dropped.
#[derive(Debug)]
struct RawGuard {
    saved: Mode,
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = tty::set_mode(stdio(STDIN), &self.saved);
    }
}

#[derive(Debug)]
pub struct Relay {
    master: OwnedFd,
    pub stdin_open: bool,
    pub master_open: bool,
    _raw: Option<RawGuard>,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Self {
        let stdin = stdio(STDIN);
        let raw = if tty::is_terminal(stdin) {
            tty::get_mode(stdin).ok().and_then(|saved| {
                tty::set_mode(stdin, &tty::raw(&saved)).ok()?;
                Some(RawGuard { saved })
            })
        } else {
            None
        };
        let _ = event::set_nonblocking(master.as_fd(), true);
        let relay = Self {
            master,
            stdin_open: true,
            master_open: true,
            _raw: raw,
        };
        relay.follow_window_size();
        relay
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    pub fn stdin(&self) -> BorrowedFd<'static> {
        stdio(STDIN)
    }

    /// Copies the host terminal's size to the guest's.
    pub fn follow_window_size(&self) {
        for fd in [stdio(STDIN), stdio(STDOUT)] {
            if let Ok((rows, cols)) = tty::get_window_size(fd) {
                let _ = tty::set_window_size(self.master.as_fd(), rows, cols);
                return;
            }
        }
    }

    /// Moves what the user typed to the guest.
    pub fn pump_input(&mut self) {
        let mut buf = [0u8; 4096];
        match event::read(stdio(STDIN), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                if event::write_all(self.master.as_fd(), &buf[..n]).is_err() {
                    self.stdin_open = false;
                }
            }
        }
    }

    /// Moves what the guest wrote to xvisor's stdout; `false` once the
    /// guest's side is closed.
    pub fn pump_output(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        loop {
            match event::read(self.master.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if event::write_all(stdio(STDOUT), &buf[..n]).is_err() {
                        break;
                    }
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                // EIO: every slave descriptor is closed.
                Err(_) => break,
            }
        }
        self.master_open = false;
        false
    }
}
