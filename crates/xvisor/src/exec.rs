//! A second process in a running instance, from the client's side: the
//! request goes to the instance's supervisor with this process's stdio
//! (SCM_RIGHTS); the supervisor has the instance's init start the process
//! as a member of the instance and answers with its start and its end.
//! Used by the OCI `exec` and by `xvisor exec NAME`.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use xvisor_instance::exec::ExecRequest;
use xvisor_instance::registry::{ExecEvent, ExecSession, Registry};
use xvisor_instance::terminal::Relay;
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked, WaitStatus};
use xvisor_sys::signal;

pub const HELP: &str = "\
Run another program in a running instance.

Usage: xvisor exec [OPTIONS] NAME [--] COMMAND [ARG...]

The program runs as a member of the instance NAME (started with
'xvisor run --name NAME', or 'xvisor run -d'): in its namespaces, root and
limits, under its system-call policy, as its program's user by default,
with its program's environment and working directory. Its standard output
and error are this command's, and so is its input when it is a pipe or a
file (a terminal only with -i or -t). The exit status is the program's
(128+N when killed by signal N); signals sent to this command are passed
on to it.

Options:
  -i, --interactive     give it this command's input even when that is a
                        terminal
  -t, --tty             give it a terminal of its own in the instance (a
                        pseudo-terminal, relayed to yours: Ctrl-C, window
                        size and full-screen programs work as at home);
                        needs a terminal on standard input
  -d, --detach          start it and return at once; its output is
                        dropped, it runs until it ends or the instance does
                        (followed by a waiter, 'xvisor-exec', in a session
                        of its own)
  -e, --env KEY=VALUE   set a variable (repeatable)
  -w, --workdir DIR     working directory inside the instance
  -u, --user USER[:GROUP]
                        user and group inside the instance: numbers, or
                        names from the instance's own /etc/passwd and
                        /etc/group
  -h, --help            show this text

Examples:
  xvisor run -d --name web -- python3 -m http.server 8000
  xvisor exec web -- ps
  xvisor exec -it web -- bash
  xvisor exec -e DEBUG=1 -u nobody web -- sh -c 'echo $DEBUG; id'
  xvisor exec -d web -- sh -c 'sleep 60'
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
    /// With a terminal and no console socket: relay it to this process's
    /// own terminal (`xvisor exec -t`).
    pub relay: bool,
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
            event::poll(&mut watches, -1).context("wait for the exec session")?;
            let session_ready = watches[0].ready != 0;
            let signals_ready = watches[1].ready != 0;
            let master_ready = watches.get(2).is_some_and(|w| w.ready != 0);
            let stdin_ready = watches.get(3).is_some_and(|w| w.ready != 0);
            drop(watches);
            if signals_ready {
                while let Some(info) = signal::read_signal(signals).context("read signals")? {
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
                relay: false,
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
    let mut user = None;
    let (mut interactive, mut detach) = (false, false);
    let text = |v: OsString| v.into_string().map_err(|v| anyhow!("exec: {v:?} is not valid text"));
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(0);
            }
            Short('e') | Long("env") => request.env.push(parse_env(&text(p.value()?)?)?),
            Short('w') | Long("workdir") | Long("cwd") => request.workdir = Some(text(p.value()?)?),
            Short('u') | Long("user") => user = Some(text(p.value()?)?),
            Short('i') | Long("interactive") => interactive = true,
            Short('t') | Long("tty") => request.tty = true,
            Short('d') | Long("detach") => detach = true,
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
    let stdin_is_terminal = xvisor_sys::tty::is_terminal(event::standard(0));
    if detach && (request.tty || interactive) {
        bail!("exec: -d starts the program with no terminal or input to give it: drop -i/-t");
    }
    if request.tty && !stdin_is_terminal {
        bail!("exec: -t needs a terminal on standard input (it is a pipe or a file here): drop -t, or run from a terminal");
    }
    if let Some(spec) = &user {
        request.user = Some(resolve_user(&name, spec)?);
    }
    let null = xvisor_sys::fs::open_read_write("/dev/null", true).context("open /dev/null")?;
    let mut fds = passed_descriptors(0)?;
    if detach {
        // Nothing of this command's is the process's: it outlives it.
        fds = vec![null.as_fd(); 3];
    } else if stdin_is_terminal && !interactive && !request.tty {
        // As with 'run': a terminal is not handed over unless asked for.
        fds[0] = null.as_fd();
    }
    if detach {
        // A session's end kills its process: a waiter in a session of its
        // own (as for the OCI `exec -d`) holds it until the process ends.
        run_detached(&name, &request, &fds, None)?;
        return Ok(0);
    }
    let hooks = Hooks {
        console_socket: None,
        relay: request.tty,
        on_started: &mut |_| Ok(()),
    };
    run_session(&name, &request, &fds, hooks)
}

/// `-u USER[:GROUP]` for a running instance: numbers as they are, names
/// from the instance's own account files, read through the root of one of
/// its processes (`/proc/PID/root`: the files the instance sees, whatever
/// its root is made of).
fn resolve_user(name: &str, spec: &str) -> Result<(u32, u32)> {
    if let Ok(ids) = parse_user(spec) {
        return Ok(ids);
    }
    let pids = crate::oci::container_pids(name).map_err(|e| anyhow!("exec: {e:#}"))?;
    // The instance's init may not let others see its root (it is not
    // dumpable); the guest's processes do, to their owner. Resolved in
    // that root, as the instance resolves them: the guest's symlinks lead
    // where they lead for it, never to the host's files.
    let read_in = |root: &std::os::fd::OwnedFd, file: &str| -> Option<String> {
        let fd = xvisor_sys::fs::open_path_in_root(root.as_fd(), file).ok()?;
        let mut text = String::new();
        std::fs::File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    let mut last = None;
    for pid in pids.iter().rev() {
        let Ok(root) = xvisor_sys::fs::open_dir(None, &format!("/proc/{pid}/root")) else {
            continue;
        };
        let Some(passwd) = read_in(&root, "etc/passwd") else {
            continue;
        };
        let group = read_in(&root, "etc/group").unwrap_or_default();
        let accounts = xvisor_image::user::Accounts::Read {
            passwd: &passwd,
            group: &group,
        };
        match xvisor_image::user::resolve_in(spec, accounts, "--user") {
            Ok(u) => return Ok((u.uid, u.gid)),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => bail!("exec: {e}"),
        None => bail!("exec: --user {spec:?}: the instance's /etc/passwd cannot be read"),
    }
}
