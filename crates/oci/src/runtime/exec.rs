//! A second process in a running instance, from the client's side: the
//! request goes to the instance's supervisor with the caller's stdio
//! (SCM_RIGHTS); the supervisor has the instance's init start the process
//! as a member of the instance and answers with its start and its end.
//! Used by the OCI `exec` and by `xvisor exec NAME`.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use xvisor_instance::exec::ExecRequest;
use xvisor_instance::registry::{ExecEvent, ExecSession, Registry};
use xvisor_instance::terminal::Relay;
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked, WaitStatus};
use xvisor_sys::signal;

use super::base::{read_report, write_pid_file, Runtime};
use super::error::RuntimeError;
use crate::{ProcessConfig, Status};

/// Signals passed on to the exec'd process: those a supervisor passes on
/// to its instance.
const FORWARDED: &[i32] = xvisor_instance::SUPERVISOR_SIGNALS;

/// What the OCI `exec` is asked.
#[derive(Debug, Clone, Default)]
pub struct ExecCall {
    pub id: String,
    pub request: ExecRequest,
    /// Do not wait: a waiter process (in `pid_file`) exits with the
    /// program's status.
    pub detach: bool,
    /// The waiter's pid (detached) or the caller's own.
    pub pid_file: Option<PathBuf>,
    /// With a terminal: where its master side goes.
    pub console_socket: Option<PathBuf>,
}

/// Where the session's events go besides the exit status.
pub struct Hooks<'a> {
    /// With a terminal: where its master side is sent (SCM_RIGHTS).
    pub console_socket: Option<&'a Path>,
    /// With a terminal and no console socket: relay it to this process's
    /// own terminal (`xvisor exec -t`).
    pub relay: bool,
    /// Called once the process runs, with its host pid.
    pub on_started: &'a mut dyn FnMut(i32) -> Result<(), RuntimeError>,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("console_socket", &self.console_socket)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl Runtime<'_> {
    /// The OCI `exec`: the process's shell exit code, or 0 once it runs
    /// when detached.
    pub fn exec(&self, call: &ExecCall) -> Result<i32, RuntimeError> {
        let (id, request) = (&call.id, &call.request);
        let console_socket = call.console_socket.as_deref();
        if request.tty && console_socket.is_none() {
            return Err(RuntimeError::Refused(
                "exec: a terminal (--tty, or process.terminal) needs --console-socket".into(),
            ));
        }
        if !request.tty && console_socket.is_some() {
            return Err(RuntimeError::Refused(
                "exec: --console-socket given without a terminal (--tty)".into(),
            ));
        }
        let (_, status) = self.status(id)?;
        match status {
            Status::Running => {}
            other => {
                return Err(RuntimeError::Refused(format!(
                    "cannot exec in container {id:?}: it is {}, not running",
                    other.name()
                )))
            }
        }
        let fds = passed_descriptors(request.preserve_fds)?;
        if call.detach {
            let waiter = run_detached(id, request, &fds, console_socket)?;
            if let Some(file) = &call.pid_file {
                write_pid_file(file, waiter)?;
            }
            return Ok(0);
        }
        let mut on_started = |_host_pid: i32| -> Result<(), RuntimeError> {
            match &call.pid_file {
                Some(file) => write_pid_file(file, process::getpid()),
                None => Ok(()),
            }
        };
        let hooks = Hooks {
            console_socket,
            relay: false,
            on_started: &mut on_started,
        };
        run_session(id, request, &fds, hooks)
    }
}

/// The request a process file describes (runc's meaning: it says
/// everything about the process; of the flags given, only the added
/// capabilities, the preserved descriptors and `--no-new-privs` apply).
pub fn request_from_process(process: ProcessConfig, flags: &ExecRequest) -> ExecRequest {
    ExecRequest {
        argv: process.argv,
        env: process.env,
        replace_env: true,
        workdir: Some(process.cwd),
        user: Some((process.uid, process.gid)),
        additional_gids: Some(process.additional_gids),
        capabilities: process.capabilities,
        add_capabilities: flags.add_capabilities.clone(),
        rlimits: process.rlimits.iter().map(|l| (l.resource, l.soft, l.hard)).collect(),
        umask: process.umask,
        tty: process.terminal,
        preserve_fds: flags.preserve_fds,
        no_new_privileges: Some(process.no_new_privileges || flags.no_new_privileges == Some(true)),
        apparmor_profile: process.apparmor_profile,
    }
}

/// Asks instance `name` to run `request` with `fds` as its stdio (and
/// preserved descriptors), then follows the session to the process's end:
/// passes on signals, and returns its shell exit code.
pub fn run_session(
    name: &str,
    request: &ExecRequest,
    fds: &[BorrowedFd<'_>],
    hooks: Hooks<'_>,
) -> Result<i32, RuntimeError> {
    signal::block(FORWARDED).map_err(RuntimeError::io("block signals"))?;
    let signals = signal::signal_fd(FORWARDED).map_err(RuntimeError::io("create a signalfd"))?;
    let mut session = Registry::for_caller().exec(name, request, fds)?;
    follow(&mut session, signals.as_fd(), hooks)
}

// Long: one event loop: the session, signals and a terminal relay.
fn follow(session: &mut ExecSession, signals: BorrowedFd<'_>, hooks: Hooks<'_>) -> Result<i32, RuntimeError> {
    let mut started = false;
    // The terminal relay (`-t`): dropped, it gives the user's terminal its
    // mode back.
    let mut relay: Option<Relay> = None;
    loop {
        if !session.has_buffered_event() {
            let mut watches = vec![Watch::new(session.as_fd(), ready::IN), Watch::new(signals, ready::IN)];
            if let Some(r) = &relay {
                if r.master_open {
                    watches.push(Watch::new(r.master(), ready::IN));
                    if r.stdin_open {
                        watches.push(Watch::new(r.stdin(), ready::IN));
                    }
                }
            }
            event::poll(&mut watches, -1).map_err(RuntimeError::io("wait for the exec session"))?;
            let session_ready = watches[0].ready != 0;
            let signals_ready = watches[1].ready != 0;
            let master_ready = watches.get(2).is_some_and(|w| w.ready != 0);
            let stdin_ready = watches.get(3).is_some_and(|w| w.ready != 0);
            drop(watches);
            if signals_ready {
                while let Some(info) = signal::read_signal(signals).map_err(RuntimeError::io("read signals"))? {
                    match &relay {
                        // The process's terminal takes the new size; its
                        // kernel tells the foreground job.
                        Some(r) if info.signal == signal::SIGWINCH => r.follow_window_size(),
                        _ => {
                            let _ = session.signal(info.signal);
                        }
                    }
                }
            }
            if let Some(r) = &mut relay {
                if master_ready {
                    r.pump_output();
                }
                if stdin_ready {
                    r.pump_input();
                }
            }
            if !session_ready {
                continue;
            }
        }
        let event = match session.next_event() {
            Ok(event) => event,
            // The supervisor ended without a word: the instance, and the
            // process with it, were killed.
            Err(_) if started => return Ok(128 + signal::SIGKILL),
            Err(e) => return Err(e.into()),
        };
        match event {
            ExecEvent::Terminal(master) => {
                let Some(socket) = hooks.console_socket else {
                    if hooks.relay {
                        relay = Some(Relay::new(master));
                        continue;
                    }
                    return Err(RuntimeError::Refused(
                        "the process has a terminal but no --console-socket was given".into(),
                    ));
                };
                std::os::unix::net::UnixStream::connect(socket)
                    .and_then(|s| xvisor_sys::socket::send(s.as_fd(), b"/dev/ptmx", Some(master.as_fd())))
                    .map_err(RuntimeError::io(format!("--console-socket {}", socket.display())))?;
            }
            ExecEvent::Started { host_pid } => {
                started = true;
                (hooks.on_started)(host_pid)?;
            }
            ExecEvent::Exited { wait_status } => {
                // What the process wrote last is still in its terminal.
                if let Some(r) = &mut relay {
                    while r.master_open && r.pump_output() {
                        let mut watch = [Watch::new(r.master(), ready::IN)];
                        if event::poll(&mut watch, 100).map_or(true, |n| n == 0) {
                            break;
                        }
                    }
                }
                return Ok(WaitStatus::from_raw(wait_status).map_or(1, |s| s.shell_code()));
            }
            ExecEvent::Failed(message) => return Err(RuntimeError::Failed(message)),
        }
    }
}

/// Runs the session in a detached child (a new session, signals passed on,
/// exiting with the process's status) and returns that child's pid once
/// the process runs: the pid an engine waits for and signals, as it does
/// the container's supervisor.
pub fn run_detached(
    name: &str,
    request: &ExecRequest,
    fds: &[BorrowedFd<'_>],
    console_socket: Option<&Path>,
) -> Result<i32, RuntimeError> {
    let (report_read, report_write) = event::pipe().map_err(RuntimeError::io("create a pipe"))?;
    match process::fork().map_err(RuntimeError::io("fork the exec session's waiter"))? {
        Forked::Child => {
            drop(report_read);
            let _ = process::setsid();
            let _ = process::set_process_name("xvisor-exec");
            let mut report = Some(report_write);
            let mut on_started = |_host_pid: i32| -> Result<(), RuntimeError> {
                if let Some(pipe) = report.take() {
                    event::write_all(pipe.as_fd(), b"ok\n").map_err(RuntimeError::io("report the start"))?;
                }
                // The process has its own copies of the stdio: the
                // engine's pipes must not stay open here.
                process::stdio_to_null();
                Ok(())
            };
            let hooks = Hooks {
                console_socket,
                relay: false,
                on_started: &mut on_started,
            };
            let code = match run_session(name, request, fds, hooks) {
                Ok(code) => code,
                Err(e) => {
                    if let Some(pipe) = report.take() {
                        let _ = event::write_all(pipe.as_fd(), format!("error: {}\n", e.chain()).as_bytes());
                    }
                    1
                }
            };
            process::exit_now(code)
        }
        Forked::Parent { pid, .. } => {
            drop(report_write);
            let answer = read_report(report_read.as_fd())
                .map_err(|e| RuntimeError::Failed(format!("read the exec session's report: {e}")))?;
            if answer.starts_with("ok") {
                return Ok(pid);
            }
            let _ = process::wait_pid(pid, false);
            match answer.strip_prefix("error: ") {
                Some(message) => Err(RuntimeError::Failed(message.trim_end().to_string())),
                None => Err(RuntimeError::Failed(
                    "the exec session ended before the process started".into(),
                )),
            }
        }
    }
}

/// This process's stdio and `preserved` more descriptors from 3 on.
pub fn passed_descriptors(preserved: u32) -> Result<Vec<BorrowedFd<'static>>, RuntimeError> {
    let mut fds: Vec<BorrowedFd<'static>> = (0..3).map(event::standard).collect();
    for n in 3..3 + preserved as i32 {
        fds.push(
            xvisor_sys::event::borrow_open(n)
                .map_err(RuntimeError::io(format!("--preserve-fds: descriptor {n} is not open")))?,
        );
    }
    Ok(fds)
}
