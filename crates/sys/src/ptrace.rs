//! Following a process tree with ptrace: seizing (no stop, no signal), the
//! fork/clone/exec events, and the waits that report them.
//!
//! Only what the process monitor needs: it never reads or writes a
//! tracee's memory through ptrace, and of its registers it reads them at a
//! signal-delivery stop and writes one: the return value of a system call
//! that a signal interrupted before the supervisor received it
//! ([`restart_interrupted_call`]); when tracing, it stops a task right
//! after a call the supervisor let the kernel perform, to read what the
//! call returned ([`interrupt`], [`call_registers`]).
//!
//! Waits return when a signal interrupts them ([`Waited::Interrupted`]),
//! so the monitor thread can be rung for such a request.

use std::io;

use crate::check;

/// `PTRACE_O_*` options for [`seize`].
pub mod options {
    pub const TRACE_FORK: u32 = libc::PTRACE_O_TRACEFORK as u32;
    pub const TRACE_VFORK: u32 = libc::PTRACE_O_TRACEVFORK as u32;
    pub const TRACE_CLONE: u32 = libc::PTRACE_O_TRACECLONE as u32;
    pub const TRACE_EXEC: u32 = libc::PTRACE_O_TRACEEXEC as u32;
    pub const EXIT_KILL: u32 = libc::PTRACE_O_EXITKILL as u32;
    /// Stops a tracee whose seccomp filter returns `SECCOMP_RET_TRACE`
    /// (a `PTRACE_EVENT_SECCOMP` stop, before the call runs).
    pub const TRACE_SECCOMP: u32 = libc::PTRACE_O_TRACESECCOMP as u32;
    /// Syscall stops report `SIGTRAP | 0x80`, never to be taken for a
    /// `SIGTRAP` on its way to the task.
    pub const TRACE_SYSGOOD: u32 = libc::PTRACE_O_TRACESYSGOOD as u32;
}

/// The stop signal of a syscall stop under [`options::TRACE_SYSGOOD`].
pub const SYSCALL_STOP: i32 = libc::SIGTRAP | 0x80;

/// The event of a ptrace event stop (`status >> 16`).
pub mod event {
    pub const FORK: i32 = libc::PTRACE_EVENT_FORK;
    pub const VFORK: i32 = libc::PTRACE_EVENT_VFORK;
    pub const CLONE: i32 = libc::PTRACE_EVENT_CLONE;
    pub const EXEC: i32 = libc::PTRACE_EVENT_EXEC;
    pub const STOP: i32 = libc::PTRACE_EVENT_STOP;
    pub const SECCOMP: i32 = libc::PTRACE_EVENT_SECCOMP;
}

fn request(request: libc::c_uint, tid: i32, data: libc::c_ulong) -> io::Result<libc::c_long> {
    // SAFETY: every request made through here (SEIZE, CONT, LISTEN,
    // INTERRUPT, DETACH, SYSCALL) takes
    // integers only: the address argument is unused (null) and `data` is an
    // option mask or a signal number, not a pointer.
    check(unsafe { libc::ptrace(request, tid, std::ptr::null_mut::<libc::c_void>(), data) })
}

/// Every request this module makes: a seccomp filter can permit these and
/// nothing else.
pub const REQUESTS_MADE: [u32; 9] = [
    libc::PTRACE_CONT,
    libc::PTRACE_DETACH,
    libc::PTRACE_SYSCALL,
    libc::PTRACE_GETEVENTMSG,
    libc::PTRACE_SEIZE,
    libc::PTRACE_LISTEN,
    libc::PTRACE_GETREGS,
    libc::PTRACE_POKEUSER,
    libc::PTRACE_INTERRUPT,
];

/// Asks a seized tracee to stop (`PTRACE_EVENT_STOP`) at its next return
/// to user space — after the system call it is in, if any.
pub fn interrupt(tid: i32) -> io::Result<()> {
    request(libc::PTRACE_INTERRUPT, tid, 0).map(drop)
}

/// A stopped tracee's registers that say which system call it last made
/// and what that call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRegisters {
    /// The call's number (`orig_rax`; -1 outside a system call).
    pub number: i64,
    /// Its return value (`rax`).
    pub returned: i64,
    /// Where the tracee resumes (`rip`): just after the `syscall`
    /// instruction when it returns from one.
    pub instruction_pointer: u64,
}

fn registers(tid: i32) -> io::Result<libc::user_regs_struct> {
    // SAFETY: an all-zero user_regs_struct is valid (plain integers).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETREGS writes one user_regs_struct at `data`, which
    // points to `regs`, alive and writable for the call.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut regs as *mut libc::user_regs_struct,
        )
    })?;
    Ok(regs)
}

/// The call registers of the stopped tracee `tid`.
pub fn call_registers(tid: i32) -> io::Result<CallRegisters> {
    let regs = registers(tid)?;
    Ok(CallRegisters {
        number: regs.orig_rax as i64,
        returned: regs.rax as i64,
        instruction_pointer: regs.rip,
    })
}

/// Whether `returned` is one of the kernel's "interrupted, restart"
/// values, which never reach user space.
pub fn is_restart(returned: i64) -> bool {
    [ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK].contains(&returned)
}

/// The kernel's "interrupted" return values: restart unless the handler
/// lacks SA_RESTART (`-ERESTARTSYS`), always restart (`-ERESTARTNOINTR`),
/// restart when no handler runs (`-ERESTARTNOHAND`), restart through
/// `restart_syscall` (`-ERESTART_RESTARTBLOCK`).
const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;

/// Where `rax` is in the user area (`struct user_regs_struct`).
const RAX_OFFSET: usize = std::mem::offset_of!(libc::user_regs_struct, rax);

/// At a signal-delivery stop of `tid`: if the system call it is in was
/// interrupted with `-ERESTARTSYS` and `restartable(number)` says the call
/// never sleeps interruptibly natively — so the interruption can only have
/// come from the wait for a seccomp supervisor that had not received the
/// call yet — makes the kernel restart the call after the handler, as if
/// the signal had come just before it. Returns the call's number when it
/// did so.
pub fn restart_interrupted_call(tid: i32, restartable: impl Fn(u64) -> bool) -> io::Result<Option<u64>> {
    let regs = registers(tid)?;
    // `orig_rax` is -1 outside a system call.
    if regs.rax as i64 != ERESTARTSYS || regs.orig_rax as i64 == -1 || !restartable(regs.orig_rax) {
        return Ok(None);
    }
    // SAFETY: PTRACE_POKEUSER takes the user-area offset as the address and
    // the new word as the data, both plain integers; nothing is dereferenced
    // in this process.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_POKEUSER,
            tid,
            RAX_OFFSET as *mut libc::c_void,
            ERESTARTNOINTR as libc::c_ulong,
        )
    })?;
    Ok(Some(regs.orig_rax))
}

/// The call a tracee stopped at a `PTRACE_EVENT_SECCOMP` stop is making:
/// its number and first two argument registers (all 64 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompCall {
    pub number: i64,
    pub arg0: u64,
    pub arg1: u64,
}

/// The call of tracee `tid`, in a seccomp stop.
pub fn seccomp_call(tid: i32) -> io::Result<SeccompCall> {
    let regs = registers(tid)?;
    Ok(SeccompCall {
        number: regs.orig_rax as i64,
        arg0: regs.rdi,
        arg1: regs.rsi,
    })
}

/// Where `orig_rax` (the call number) is in the user area.
const ORIG_RAX_OFFSET: usize = std::mem::offset_of!(libc::user_regs_struct, orig_rax);

/// At a seccomp stop of `tid`: skips the call, which then returns what
/// `rax` holds at that stop, `-ENOSYS` (the kernel sets it on entry) —
/// Linux's answer to a `SECCOMP_RET_TRACE` without a tracer that asked for
/// seccomp stops.
pub fn skip_call(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_POKEUSER takes the user-area offset as the address and
    // the new word as the data, both plain integers; nothing is dereferenced
    // in this process.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_POKEUSER,
            tid,
            ORIG_RAX_OFFSET as *mut libc::c_void,
            -1i64 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// Lets a stopped tracee go (it runs on untraced), delivering `signal` (0
/// for none). A tracee in a group stop stays stopped.
pub fn detach(tid: i32, signal: i32) -> io::Result<()> {
    let signal = libc::c_ulong::try_from(signal).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    request(libc::PTRACE_DETACH, tid, signal).map(drop)
}

/// Resumes a stopped tracee until its current system call's exit (a
/// syscall stop, [`SYSCALL_STOP`] under [`options::TRACE_SYSGOOD`]).
pub fn resume_to_call_exit(tid: i32) -> io::Result<()> {
    request(libc::PTRACE_SYSCALL, tid, 0).map(drop)
}

/// Attaches to `tid` without stopping it; `options` are [`options`] bits.
/// With the fork/clone options, every task it creates is attached too.
pub fn seize(tid: i32, options: u32) -> io::Result<()> {
    request(libc::PTRACE_SEIZE, tid, libc::c_ulong::from(options)).map(drop)
}

/// Resumes a stopped tracee, delivering `signal` (0 for none).
pub fn resume(tid: i32, signal: i32) -> io::Result<()> {
    let signal = libc::c_ulong::try_from(signal).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    request(libc::PTRACE_CONT, tid, signal).map(drop)
}

/// Leaves a tracee in its group-stop but lets it hear `SIGCONT` (for
/// seized tracees).
pub fn listen(tid: i32) -> io::Result<()> {
    request(libc::PTRACE_LISTEN, tid, 0).map(drop)
}

/// The message of the last event stop of `tid`: a new task's host id for
/// fork/vfork/clone, the former thread id for exec.
pub fn event_message(tid: i32) -> io::Result<u64> {
    let mut message: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long at `data`, which
    // points to `message`, alive and writable for the call.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut message as *mut libc::c_ulong,
        )
    })?;
    Ok(message)
}

/// What [`wait_traced`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// `(tid, raw wait status)` of a task traced by the calling thread.
    Task(i32, i32),
    /// A caught signal interrupted the wait.
    Interrupted,
    /// No traced task (or child) is left.
    None,
}

/// Waits for a state change of any task traced by the calling thread (and
/// of the calling thread's own children). Children of the process's other
/// threads are not reaped here.
pub fn wait_traced() -> io::Result<Waited> {
    let mut status = 0;
    // SAFETY: waitpid only writes the status word we own.
    let ret = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
    if ret == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => Ok(Waited::Interrupted),
            Some(libc::ECHILD) => Ok(Waited::None),
            _ => Err(err),
        };
    }
    Ok(Waited::Task(ret, status))
}

/// A traced task's state change, decoded from a wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The task ended.
    Ended(crate::process::WaitStatus),
    /// The task stopped: for `event` 0 a signal-delivery stop of `signal`,
    /// else an event stop (see [`event`]).
    Stopped { event: i32, signal: i32 },
}

impl Report {
    pub fn from_raw(status: i32) -> Option<Self> {
        if libc::WIFSTOPPED(status) {
            return Some(Self::Stopped {
                event: (status >> 16) & 0xff,
                signal: libc::WSTOPSIG(status),
            });
        }
        crate::process::WaitStatus::from_raw(status).map(Self::Ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::WaitStatus;

    #[test]
    fn restart_values_are_the_kernels_four() {
        let restarts: Vec<i64> = (-600..0).filter(|r| is_restart(*r)).collect();
        assert_eq!(restarts, [-516, -514, -513, -512]);
    }

    #[test]
    fn reports_decode() {
        assert_eq!(Report::from_raw(3 << 8), Some(Report::Ended(WaitStatus::Exited(3))));
        assert_eq!(
            Report::from_raw(9),
            Some(Report::Ended(WaitStatus::Signaled {
                signal: 9,
                core_dumped: false
            }))
        );
        // A fork event stop: SIGTRAP | PTRACE_EVENT_FORK << 8, in the stop byte.
        let fork = 0x7f | ((libc::SIGTRAP | (event::FORK << 8)) << 8);
        assert_eq!(
            Report::from_raw(fork),
            Some(Report::Stopped {
                event: event::FORK,
                signal: libc::SIGTRAP
            })
        );
        let delivery = 0x7f | (libc::SIGUSR1 << 8);
        assert_eq!(
            Report::from_raw(delivery),
            Some(Report::Stopped {
                event: 0,
                signal: libc::SIGUSR1
            })
        );
        assert_eq!(Report::from_raw(0xffff), None);
    }
}
