//! A second process in a running instance, from the client's side: the
//! request goes to the instance's supervisor with this process's stdio
//! (SCM_RIGHTS); the supervisor has the instance's init start the process
//! as a member of the instance and answers with its start and its end.
//! Used by the OCI `exec` and by `xvisor exec NAME`.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use xvisor_instance::exec::ExecRequest;
use xvisor_instance::registry::{ExecEvent, ExecSession, Registry};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked, WaitStatus};
use xvisor_sys::signal;

pub const HELP: &str = "\
Run another program in a running instance.

Usage: xvisor exec [OPTIONS] NAME [--] COMMAND [ARG...]

The program runs as a member of the instance NAME (started with
'xvisor run --name NAME'): in its namespaces, root and limits, under its
system-call policy, as its program's user by default, with its program's
environment and working directory. Its standard input, output and error
are this command's. The exit status is the program's (128+N when killed by
signal N); signals sent to this command are passed on to it.

Options:
  -e, --env KEY=VALUE   set a variable (repeatable)
  -w, --workdir DIR     working directory inside the instance
  -u, --user UID[:GID]  user and group inside the instance
  -h, --help            show this text

Examples:
  xvisor run --name web -- python3 -m http.server &
  xvisor exec web ps
  xvisor exec -e DEBUG=1 web -- sh -c 'echo $DEBUG'
";

/// Signals passed on to the exec'd process: those a supervisor passes on
/// to its instance.
const FORWARDED: &[i32] = xvisor_instance::SUPERVISOR_SIGNALS;

/// `UID[:GID]` (numbers; the group defaults to the uid's number).
pub fn parse_user(text: &str) -> Result<(u32, u32)> {
    let number = |t: &str| {
        t.parse::<u32>()
            .ok()
            .filter(|n| *n != u32::MAX)
            .ok_or_else(|| anyhow!("--user {text:?}: give UID[:GID] as numbers"))
    };
    match text.split_once(':') {
        Some((uid, gid)) => Ok((number(uid)?, number(gid)?)),
        None => {
            let uid = number(text)?;
            Ok((uid, uid))
        }
    }
}

/// `KEY=VALUE`.
pub fn parse_env(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--env {text:?}: give KEY=VALUE"),
    }
}

/// Where the session's events go besides the exit status.
pub struct Hooks<'a> {
    /// With a terminal: where its master side is sent (SCM_RIGHTS).
    pub console_socket: Option<&'a Path>,
    /// Called once the process runs, with its host pid.
    pub on_started: &'a mut dyn FnMut(i32) -> Result<()>,
}

/// Asks instance `name` to run `request` with `fds` as its stdio (and
/// preserved descriptors), then follows the session to the process's end:
/// passes on signals, and returns its shell exit code.
pub fn run_session(name: &str, request: &ExecRequest, fds: &[BorrowedFd<'_>], hooks: Hooks<'_>) -> Result<i32> {
    signal::block(FORWARDED).context("block signals")?;
    let signals = signal::signal_fd(FORWARDED).context("create a signalfd")?;
    let mut session = Registry::for_caller().exec(name, request, fds)?;
    follow(&mut session, signals.as_fd(), hooks)
}

fn follow(session: &mut ExecSession, signals: BorrowedFd<'_>, hooks: Hooks<'_>) -> Result<i32> {
    let mut started = false;
    loop {
        if !session.has_buffered_event() {
            let mut watches = [Watch::new(session.as_fd(), ready::IN), Watch::new(signals, ready::IN)];
            event::poll(&mut watches, -1).context("wait for the exec session")?;
            if watches[1].ready != 0 {
                while let Some(info) = signal::read_signal(signals).context("read signals")? {
                    let _ = session.signal(info.signal);
                }
            }
            if watches[0].ready == 0 {
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
                    bail!("the process has a terminal but no --console-socket was given");
                };
                std::os::unix::net::UnixStream::connect(socket)
                    .and_then(|s| xvisor_sys::socket::send(s.as_fd(), b"/dev/ptmx", Some(master.as_fd())))
                    .with_context(|| format!("--console-socket {}", socket.display()))?;
            }
            ExecEvent::Started { host_pid } => {
                started = true;
                (hooks.on_started)(host_pid)?;
            }
            ExecEvent::Exited { wait_status } => {
                return Ok(WaitStatus::from_raw(wait_status).map_or(1, |s| s.shell_code()));
            }
            ExecEvent::Failed(message) => bail!("{message}"),
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
) -> Result<i32> {
    let (report_read, report_write) = event::pipe().context("create a pipe")?;
    match process::fork().context("fork the exec session's waiter")? {
        Forked::Child => {
            drop(report_read);
            let _ = process::setsid();
            let _ = process::set_process_name("xvisor-exec");
            let mut report = Some(report_write);
            let mut on_started = |_host_pid: i32| -> Result<()> {
                if let Some(pipe) = report.take() {
                    event::write_all(pipe.as_fd(), b"ok\n").context("report the start")?;
                }
                // The process has its own copies of the stdio: the engine's
                // pipes must not stay open here.
                if let Ok(null) = xvisor_sys::fs::open_read_write("/dev/null", true) {
                    for n in 0..3 {
                        let _ = event::dup_onto(null.as_fd(), n);
                    }
                }
                Ok(())
            };
            let hooks = Hooks {
                console_socket,
                on_started: &mut on_started,
            };
            let code = match run_session(name, request, fds, hooks) {
                Ok(code) => code,
                Err(e) => {
                    if let Some(pipe) = report.take() {
                        let _ = event::write_all(pipe.as_fd(), format!("error: {e:#}\n").as_bytes());
                    }
                    1
                }
            };
            process::exit_now(code)
        }
        Forked::Parent { pid, .. } => {
            drop(report_write);
            let answer = crate::oci::read_report(report_read.as_fd())
                .map_err(|e| anyhow::anyhow!("read the exec session's report: {e}"))?;
            if answer.starts_with("ok") {
                return Ok(pid);
            }
            let _ = process::wait_pid(pid, false);
            match answer.strip_prefix("error: ") {
                Some(message) => bail!("{}", message.trim_end()),
                None => bail!("the exec session ended before the process started"),
            }
        }
    }
}

/// This process's stdio and `preserved` more descriptors from 3 on.
pub fn passed_descriptors(preserved: u32) -> Result<Vec<BorrowedFd<'static>>> {
    let mut fds: Vec<BorrowedFd<'static>> = (0..3).map(event::standard).collect();
    for n in 3..3 + preserved as i32 {
        fds.push(
            xvisor_sys::event::borrow_open(n).with_context(|| format!("--preserve-fds: descriptor {n} is not open"))?,
        );
    }
    Ok(fds)
}

/// `xvisor exec NAME [--] COMMAND...`. Returns the exit status.
pub fn user_command(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut request = ExecRequest::default();
    let mut name = None;
    let text = |v: OsString| v.into_string().map_err(|v| anyhow!("exec: {v:?} is not valid text"));
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(0);
            }
            Short('e') | Long("env") => request.env.push(parse_env(&text(p.value()?)?)?),
            Short('w') | Long("workdir") => request.workdir = Some(text(p.value()?)?),
            Short('u') | Long("user") => request.user = Some(parse_user(&text(p.value()?)?)?),
            Value(v) => {
                name = Some(text(v)?);
                request.argv = p.raw_args()?.map(text).collect::<Result<Vec<_>>>()?;
                if request.argv.first().map(String::as_str) == Some("--") {
                    request.argv.remove(0);
                }
                break;
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let Some(name) = name else {
        bail!("exec: give an instance name and a command (see 'xvisor exec --help')");
    };
    if request.argv.is_empty() {
        bail!("exec: give a command to run in {name:?}");
    }
    let fds = passed_descriptors(0)?;
    let hooks = Hooks {
        console_socket: None,
        on_started: &mut |_| Ok(()),
    };
    run_session(&name, &request, &fds, hooks)
}
