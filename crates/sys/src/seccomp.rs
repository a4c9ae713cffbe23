//! seccomp: installing a filter with a user-notification listener, and the
//! listener's ioctls (RECV, SEND, ID_VALID, ADDFD, SET_FLAGS); reading guest
//! memory with `process_vm_readv`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int};

// The kernel's structs, flags and ioctl numbers are the locked libc's
// (`seccomp_notif`, `SECCOMP_IOCTL_NOTIF_RECV` …); the test below holds
// them to the kernel's ABI.
use libc::{
    seccomp_notif, seccomp_notif_resp, sock_fprog, SECCOMP_FILTER_FLAG_NEW_LISTENER,
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_IOCTL_NOTIF_ID_VALID, SECCOMP_IOCTL_NOTIF_RECV,
    SECCOMP_IOCTL_NOTIF_SEND, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_SET_MODE_FILTER, SECCOMP_USER_NOTIF_FLAG_CONTINUE,
};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6; not in libc yet).
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// One trapped system call, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// Identifies the call until it is answered.
    pub id: u64,
    /// The calling thread, in the listener's pid namespace.
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// Installs `program` (classic-BPF `struct sock_filter` bytes, 8 per
/// instruction) on the calling thread and returns the user-notification
/// listener. `no_new_privs` must be set first.
///
/// Where the kernel offers it (Linux ≥ 5.19), a trapped call that the
/// supervisor has received waits for its answer killably: only a fatal
/// signal interrupts it, as for a call the kernel performs itself.
pub fn install_filter_with_listener(program: &[u8]) -> io::Result<OwnedFd> {
    match install(
        program,
        SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    ) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => install(program, SECCOMP_FILTER_FLAG_NEW_LISTENER),
        other => other,
    }
    .map(|fd| {
        // SAFETY: with NEW_LISTENER the kernel returns a fresh descriptor.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
}

/// Installs `program` without a listener (a filter of allow / errno / kill
/// actions only), e.g. on the supervisor itself.
pub fn install_filter(program: &[u8]) -> io::Result<()> {
    install(program, 0).map(drop)
}

fn install(program: &[u8], flags: libc::c_ulong) -> io::Result<i32> {
    if program.is_empty() || program.len() % 8 != 0 || program.len() / 8 > u16::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fprog = sock_fprog {
        len: (program.len() / 8) as libc::c_ushort,
        // Only read by the kernel.
        filter: program.as_ptr().cast_mut().cast(),
    };
    // SAFETY: `fprog` points to `len` complete sock_filter records in
    // `program`, which outlives the call; the kernel copies the program.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const sock_fprog,
        )
    })?;
    Ok(ret as i32)
}

/// Receives the next trapped call (blocks unless the listener is ready).
pub fn receive(listener: BorrowedFd<'_>) -> io::Result<Notification> {
    let mut raw = seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: RECV fills a zeroed seccomp_notif of exactly this size.
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_RECV,
            &mut raw as *mut seccomp_notif,
        )
    })?;
    Ok(Notification {
        id: raw.id,
        pid: raw.pid,
        nr: raw.data.nr,
        arch: raw.data.arch,
        instruction_pointer: raw.data.instruction_pointer,
        args: raw.data.args,
    })
}

/// How a trapped call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Errno(i32),
    /// The kernel performs the call as it was made.
    Continue,
}

/// Answers call `id`. `ENOENT` means the caller is gone (killed, or
/// interrupted by a signal): not an error for the supervisor.
pub fn respond(listener: BorrowedFd<'_>, id: u64, response: Response) -> io::Result<()> {
    let (val, error, flags) = match response {
        Response::Value(v) => (v, 0, 0),
        Response::Errno(e) => (0, -e, 0),
        Response::Continue => (0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    let mut raw = seccomp_notif_resp { id, val, error, flags };
    // SAFETY: SEND reads a seccomp_notif_resp of exactly this size.
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SEND,
            &mut raw as *mut seccomp_notif_resp,
        )
    })
    .map(drop)
}

/// Whether call `id` is still waiting for its answer (its thread alive and
/// in the call): checked after reading guest memory, since a pid can be
/// reused once its thread is gone.
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: ID_VALID reads the u64 we own.
    unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
}

/// Asks the kernel to wake the supervisor and the trapped thread
/// synchronously, on the same CPU when it can (Linux ≥ 6.6). Returns
/// whether the kernel supports it.
pub fn request_sync_wakeup(listener: BorrowedFd<'_>) -> bool {
    // SAFETY: SET_FLAGS takes the flags by value (not through a pointer,
    // whatever its _IOW encoding suggests); no memory is passed.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            USER_NOTIF_FD_SYNC_WAKE_UP as libc::c_ulong,
        ) == 0
    }
}

/// Copies guest memory at `address` into `buf`; returns how many bytes were
/// readable (a short count stops at the first unmapped page).
pub fn read_guest_memory(pid: u32, address: u64, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our own buffer; `remote` is only read by the
    // kernel in the target's address space, with its own checks.
    let n = check(unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) } as libc::c_long)?;
    Ok(n as usize)
}

/// Copies `buf` into guest memory at `address` (a result the kernel would
/// have written there, such as `sendmmsg`'s message lengths); returns how
/// many bytes were written.
pub fn write_guest_memory(pid: u32, address: u64, buf: &[u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our own buffer, only read; `remote` is
    // written by the kernel in the target's address space, with its own
    // checks (an unmapped or read-only page gives a short count or EFAULT).
    let n = check(unsafe { libc::process_vm_writev(pid as i32, &local, 1, &remote, 1, 0) } as libc::c_long)?;
    Ok(n as usize)
}

/// Puts `fd` into the trapped caller of call `id` as a new descriptor of
/// its own (close-on-exec if `cloexec`), and answers the call with that
/// descriptor's number in the same step (`SECCOMP_IOCTL_NOTIF_ADDFD` with
/// `SECCOMP_ADDFD_FLAG_SEND`, Linux ≥ 5.14): the caller never sees a
/// descriptor it was not answered with. `ENOENT`: the caller is gone.
/// Another error (EMFILE, the caller's descriptor limit) leaves the call
/// unanswered.
pub fn add_fd_and_answer(listener: BorrowedFd<'_>, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
    /// `SECCOMP_ADDFD_FLAG_SEND`.
    const ADDFD_FLAG_SEND: u32 = 1 << 1;
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: ADDFD_FLAG_SEND,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: ADDFD reads a seccomp_notif_addfd of exactly this size, ours
    // for the call; the kernel duplicates `srcfd` (still open: borrowed).
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            &addfd as *const libc::seccomp_notif_addfd,
        )
    })
}

/// Takes a duplicate of descriptor `target_fd` of the process behind
/// `pidfd` (Linux ≥ 5.6; needs ptrace access to it).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integers; a new descriptor is returned on success.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The lowest descriptor number not in use (what the next new descriptor
/// of a single-threaded process will get).
pub fn lowest_free_fd() -> io::Result<i32> {
    // SAFETY: F_DUPFD of stdin creates a descriptor we close at once.
    let fd = check_int(unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created by us and is not used elsewhere.
    unsafe { libc::close(fd) };
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<seccomp_notif>(), 80);
        assert_eq!(std::mem::size_of::<seccomp_notif_resp>(), 24);
        assert_eq!(std::mem::size_of::<libc::seccomp_notif_addfd>(), 24);
        assert_eq!(SECCOMP_IOCTL_NOTIF_RECV, 0xc050_2100);
        assert_eq!(SECCOMP_IOCTL_NOTIF_SEND, 0xc018_2101);
        assert_eq!(SECCOMP_IOCTL_NOTIF_ID_VALID, 0x4008_2102);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_ADDFD, 0x4018_2103);
        assert_eq!(SECCOMP_IOCTL_NOTIF_SET_FLAGS, 0x4008_2104);
    }

    #[test]
    fn malformed_programs_are_refused_before_the_kernel() {
        assert!(install_filter_with_listener(&[]).is_err());
        assert!(install_filter_with_listener(&[0; 7]).is_err());
    }
}
