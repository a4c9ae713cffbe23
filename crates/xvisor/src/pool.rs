//! Warm pools: `xvisor pool start|ls|stop` and `xvisor run --pool`.
//!
//! A pool process keeps SIZE instances created (namespaces, root, limits,
//! filter compiled, supervisor serving) whose program is not known yet.
//! Each is a supervisor forked by the pool that has run
//! `Instance::create` and waits on a socket pair for a client. A client's
//! request (program, environment, working directory, `--timeout`) and its
//! stdin, stdout and stderr are passed by the pool, with the client's
//! connection, to one waiting supervisor, which starts the program as the
//! instance's main program (`Instance::start_with`), serves the instance
//! as a cold run does and sends the exit status back. An instance serves
//! one run and ends with it; the pool forks another. Why so:
//! docs/design/pool.md.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use xvisor_instance::exec::{ExecRequest, MAX_EXEC_REQUEST};
use xvisor_instance::registry::{PoolClaim, Registry, Request};
use xvisor_instance::{Instance, InstanceSpec, SUPERVISOR_SIGNALS};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{signal, socket};

pub const HELP: &str = "\
xvisor pool: keep instances built and waiting, for fast starts.

Usage:
  xvisor pool start --name NAME --size N [RUN OPTIONS]
  xvisor pool ls [--json]
  xvisor pool stop NAME
  xvisor run --pool NAME [-e KEY=VALUE] [-w DIR] [--timeout T] [-i] [--] [PROGRAM [ARGS...]]

'pool start' starts a pool process in the background that keeps N
instances created with the run options given (--memory, --pids, --net,
--profile, --policy, -v, --image, ...) up to the point where only the
program is missing, and returns once all N are ready. 'run --pool' takes
one of them, hands it your stdin, stdout and stderr, the program, its
arguments, -e variables (over the pool's environment), -w and --timeout,
and exits with the program's status exactly as a cold 'xvisor run' does;
signals sent to it are passed on. An instance runs one program, never
two: the pool builds another in the background. Other run options cannot
be given per run (the instance is built before the run) and are refused.
A pool started with --image runs the image's Entrypoint and Cmd when a
run names no program.

A pool is its owner's alone (other users' connections are refused); it
lives until 'pool stop' or until its process is killed, and takes its
instances, running ones included, with it.

Options of 'pool start':
  --name NAME   the pool's name (letters, digits, '-', '_', '.')
  --size N      instances kept ready (1 to 256)

Example:
  xvisor pool start --name judge --size 4 --memory 256M --pids 64 --net none
  xvisor run --pool judge -- ./solution < input.txt
  xvisor pool stop judge
";

/// How long a waiting instance waits for more of a request than the pool
/// passed on, and a pool for a client's first line.
const CLIENT_PATIENCE: Duration = Duration::from_secs(5);
/// The most connections whose first line the pool waits for at once;
/// more wait in the listener's queue.
const MAX_ARRIVING: usize = 256;
/// How long `pool stop` waits for the instances to end before killing
/// their supervisors.
const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// The largest first message the pool reads from a client (the rest of a
/// longer request is read by the instance from the connection).
const FIRST_MESSAGE: usize = 64 * 1024;
const MAX_SIZE: usize = 256;
/// How long the pool builds nothing after handing a run over (a short
/// program has ended by then; runs that wait end it at once).
const QUIET_AFTER_HANDOVER: Duration = Duration::from_millis(20);

/// `xvisor pool ...`; returns the exit status.
pub fn main(mut args: Vec<OsString>) -> i32 {
    if args.is_empty() {
        eprint!("{HELP}");
        return 125;
    }
    let command = args.remove(0);
    let result = match command.to_str().unwrap_or("") {
        "start" => start(args),
        "ls" | "list" => list(args),
        "stop" => stop(args),
        "-h" | "--help" | "help" => {
            out!("{HELP}");
            Ok(0)
        }
        other => Err(anyhow!("pool: unknown command {other:?} (start, ls, stop)")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("xvisor: {}", crate::message::plain(&format!("{e:#}")));
        125
    })
}

/// Run options a pool cannot apply: they concern one run's output or its
/// instance's name, not how instances are built.
const NOT_FOR_A_POOL: &[&str] = &[
    "-d",
    "--detach",
    "-t",
    "--tty",
    "--trace",
    "--report",
    "--report-json",
    "--learn",
    "--stats",
    "--name",
    "--rm",
    "--log-size",
];

fn start(args: Vec<OsString>) -> Result<i32> {
    let mut name = None;
    let mut size = None;
    let mut run_args = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let (key, inline) = match text.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| anyhow!("pool start: {what} needs a value")),
            }
        };
        match key.as_str() {
            "-h" | "--help" => {
                out!("{HELP}");
                return Ok(0);
            }
            "--name" => name = Some(value("--name")?),
            "--size" => {
                let v = value("--size")?;
                size = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_SIZE).contains(n))
                        .ok_or_else(|| anyhow!("pool start: --size {v:?}: give a number from 1 to {MAX_SIZE}"))?,
                );
            }
            _ => run_args.push(arg_from(&text)),
        }
    }
    let name = name.ok_or_else(|| anyhow!("pool start: give the pool a --name"))?;
    if !xvisor_instance::registry::valid_name(&name) {
        bail!("pool start: {name:?} is not a valid pool name: use 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let size = size.ok_or_else(|| anyhow!("pool start: give the number of instances to keep ready: --size N"))?;
    let refused: Vec<&str> = run_args
        .iter()
        .filter_map(|a| a.to_str())
        .map(|a| a.split_once('=').map_or(a, |(k, _)| k))
        .filter(|a| NOT_FOR_A_POOL.contains(a))
        .collect();
    if !refused.is_empty() {
        bail!("pool start: {} cannot be used for a pool", refused.join(", "));
    }
    let options: Vec<String> = run_args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut parse_args = run_args;
    parse_args.extend([OsString::from("--"), OsString::from("true")]);
    let parse = || crate::run::parse(parse_args.clone());
    let Some(mut o) = parse()? else {
        out!("{HELP}");
        return Ok(0);
    };
    if o.argv != ["true"] {
        bail!("pool start: no program: each 'run --pool' names its own");
    }
    // An image's Entrypoint and Cmd are the default of runs that name no
    // program; without an image (or when it has neither), each names its
    // own, and the instances are built with a placeholder.
    let mut default_command = o.image.is_some();
    o.argv = if default_command {
        Vec::new()
    } else {
        vec!["true".into()]
    };
    let spec = match crate::run::to_spec(o) {
        Ok(spec) => spec,
        Err(e) if default_command && e.to_string().contains("has no Entrypoint or Cmd") => {
            default_command = false;
            let Some(mut o) = parse()? else { return Ok(0) };
            o.argv = vec!["true".into()];
            crate::run::to_spec(o)?
        }
        Err(e) => return Err(e),
    };
    // Refused early, before the fork, when the name is taken.
    if Registry::for_caller().pool_names()?.contains(&name) {
        bail!("pool start: a pool named {name:?} is already running");
    }
    let (report_read, report_write) = event::pipe().context("create a pipe")?;
    match process::fork().context("fork the pool process")? {
        Forked::Child => {
            drop(report_read);
            // Claimed by the pool process itself: the socket's recorded
            // holder (SO_PEERCRED) is the process that listens on it.
            let claim = match Registry::for_caller().claim_pool(&name) {
                Ok(c) => c,
                Err(e) => {
                    let _ = event::write_all(report_write.as_fd(), format!("error {e}\n").as_bytes());
                    process::exit_now(125);
                }
            };
            let pool = Pool {
                name,
                size,
                default_command,
                options: options.join(" "),
                spec,
                claim: Some(claim),
                warm: Vec::new(),
                arriving: Vec::new(),
                pending: VecDeque::new(),
                spawned: 0,
                retry_at: None,
                quiet_until: None,
                last_error: None,
                report: Some(report_write),
                signals: None,
            };
            process::exit_now(pool.serve())
        }
        Forked::Parent { pid, .. } => {
            drop(report_write);
            let report = xvisor_oci::runtime::read_report(report_read.as_fd())
                .map_err(|e| anyhow!("read the pool's report: {e}"))?;
            if report.trim_end() == "ok" {
                return Ok(0);
            }
            let _ = process::wait_pid(pid, false);
            match report.strip_prefix("error ") {
                Some(message) => {
                    eprintln!("xvisor: pool start: {}", crate::message::plain(message.trim_end()));
                    Ok(125)
                }
                None => bail!("pool start: the pool process ended before its instances were ready"),
            }
        }
    }
}

fn arg_from(text: &str) -> OsString {
    OsString::from(text)
}

/// One instance of the pool: its supervisor, a child of the pool.
struct Warm {
    pid: i32,
    name: String,
    /// The pool's end of the pair; `None` once closed.
    sock: Option<OwnedFd>,
    ready: bool,
    in_use: bool,
}

/// A client whose first line has not all come yet: the pool reads it as
/// it comes, never waiting for it, and hangs up at `deadline`.
struct Arriving {
    conn: UnixStream,
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
    deadline: Instant,
}

/// A client's run, waiting for an instance.
struct Pending {
    conn: UnixStream,
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

struct Pool {
    name: String,
    size: usize,
    /// Whether the instances' own program (an image's Entrypoint and
    /// Cmd) runs when a run names none.
    default_command: bool,
    options: String,
    spec: InstanceSpec,
    claim: Option<PoolClaim>,
    warm: Vec<Warm>,
    arriving: Vec<Arriving>,
    pending: VecDeque<Pending>,
    spawned: u64,
    /// After an instance failed to build: when to try again.
    retry_at: Option<Instant>,
    /// Right after a run was handed over: no instance is built before
    /// this (unless runs wait), so that building one does not compete
    /// for the CPU with the start of the run just handed over.
    quiet_until: Option<Instant>,
    last_error: Option<String>,
    /// Until every instance was first ready: `pool start`'s pipe.
    report: Option<OwnedFd>,
    signals: Option<OwnedFd>,
}

const POOL_SIGNALS: &[i32] = &[signal::SIGCHLD, signal::SIGTERM, signal::SIGINT, signal::SIGHUP];

impl Pool {
    // Long: the pool's one event loop: signals, clients, its instances' news.
    fn serve(mut self) -> i32 {
        let _ = process::setsid();
        let _ = process::set_process_name("xvisor-pool");
        let _ = process::set_command_line(&format!("xvisor-pool {}", self.name));
        if let Ok(null) = xvisor_sys::fs::open_read_write("/dev/null", true) {
            for n in 0..3 {
                let _ = event::dup_onto(null.as_fd(), n);
            }
        }
        let signals = signal::block(POOL_SIGNALS).and_then(|()| signal::signal_fd(POOL_SIGNALS));
        match signals {
            Ok(fd) => self.signals = Some(fd),
            Err(e) => return self.fail(&format!("cannot create a signalfd: {e}")),
        }
        // Accepting never waits: a client gone before it is accepted
        // leaves the pool serving the others.
        if let Some(claim) = &self.claim {
            if let Err(e) = claim.listener().set_nonblocking(true) {
                return self.fail(&format!("cannot set up the pool's socket: {e}"));
            }
        }
        loop {
            self.refill();
            let ready = self.warm.iter().filter(|w| w.ready).count();
            if self.report.is_some() {
                if ready == self.size {
                    if let Some(report) = self.report.take() {
                        let _ = event::write_all(report.as_fd(), b"ok\n");
                    }
                } else if let Some(e) = self.last_error.clone() {
                    return self.fail(&e);
                }
            }
            let timeout = [self.retry_at, self.quiet_until]
                .into_iter()
                .flatten()
                .chain(self.arriving.iter().map(|a| a.deadline))
                .min()
                .map_or(-1, |at| {
                    i32::try_from(at.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(i32::MAX) + 1
                });
            let (Some(signals), Some(claim)) = (&self.signals, &self.claim) else {
                return 125;
            };
            let listen = if self.arriving.len() < MAX_ARRIVING {
                ready::IN
            } else {
                0
            };
            let mut watches = vec![
                Watch::new(signals.as_fd(), ready::IN),
                Watch::new(claim.listener().as_fd(), listen),
            ];
            let arriving = self.arriving.len();
            for a in &self.arriving {
                watches.push(Watch::new(a.conn.as_fd(), ready::IN));
            }
            let watched: Vec<usize> = (0..self.warm.len())
                .filter(|&i| !self.warm[i].in_use && self.warm[i].sock.is_some())
                .collect();
            for &i in &watched {
                if let Some(sock) = &self.warm[i].sock {
                    watches.push(Watch::new(sock.as_fd(), ready::IN));
                }
            }
            if event::poll(&mut watches, timeout).is_err() {
                continue;
            }
            let signals_ready = watches[0].ready != 0;
            let client_ready = watches[1].ready != 0;
            let heard: Vec<bool> = watches[2..2 + arriving].iter().map(|w| w.ready != 0).collect();
            let news: Vec<usize> = watches[2 + arriving..]
                .iter()
                .zip(&watched)
                .filter(|(w, _)| w.ready != 0)
                .map(|(_, &i)| i)
                .collect();
            drop(watches);
            for i in news {
                self.hear(i);
            }
            if signals_ready {
                let mut stop = false;
                while let Some(Ok(Some(info))) = self.signals.as_ref().map(|s| signal::read_signal(s.as_fd())) {
                    if info.signal != signal::SIGCHLD {
                        stop = true;
                    }
                }
                self.reap();
                if stop {
                    self.stop_all();
                    return 0;
                }
            }
            if client_ready {
                self.accept();
            }
            if let Some(stopper) = self.hear_clients(&heard) {
                self.stop_all();
                let _ = stopper.set_nonblocking(false);
                let mut stopper = stopper;
                let _ = stopper.write_all(b"ok\n");
                return 0;
            }
        }
    }

    /// Before the pool was ever ready: says why to `pool start`, ends.
    fn fail(&mut self, message: &str) -> i32 {
        if let Some(report) = self.report.take() {
            let _ = event::write_all(
                report.as_fd(),
                format!("error {}\n", message.replace('\n', " ")).as_bytes(),
            );
        }
        self.stop_all();
        125
    }

    /// Forks instances until SIZE are ready or being built.
    fn refill(&mut self) {
        if let Some(at) = self.quiet_until {
            if Instant::now() < at && self.pending.is_empty() {
                return;
            }
            self.quiet_until = None;
        }
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return;
            }
            self.retry_at = None;
        }
        while self.warm.iter().filter(|w| !w.in_use).count() < self.size {
            if self.spawn().is_err() {
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        self.spawned += 1;
        let short: String = self.name.chars().take(40).collect();
        let name = format!("{short}.{}.{}", process::getpid(), self.spawned);
        let (ours, theirs) = socket::seqpacket_pair()?;
        let pool = process::getpid();
        match process::fork()? {
            Forked::Child => {
                // Nothing of the pool's but the spec: its listener, the
                // other instances' sockets and clients are not this one's.
                let _ = process::set_parent_death_signal(signal::SIGKILL);
                if process::getppid() != pool {
                    process::exit_now(137);
                }
                drop(ours);
                self.claim = None;
                self.warm.clear();
                self.arriving.clear();
                self.pending.clear();
                self.report = None;
                self.signals = None;
                let _ = signal::unblock_all();
                let _ = process::set_command_line(&format!("xvisor-pooled {}", self.name));
                let mut spec = self.spec.clone();
                spec.name = name;
                let default = self.default_command.then(|| (self.name.clone(), spec.argv.clone()));
                process::exit_now(warm(spec, theirs, default))
            }
            Forked::Parent { pid, .. } => {
                self.warm.push(Warm {
                    pid,
                    name,
                    sock: Some(ours),
                    ready: false,
                    in_use: false,
                });
                Ok(())
            }
        }
    }

    /// Instance `i` says it is ready, or why it could not be built.
    fn hear(&mut self, i: usize) {
        let Some(sock) = &self.warm[i].sock else { return };
        let mut buf = [0u8; 4096];
        match socket::recv(sock.as_fd(), &mut buf) {
            Ok((n, _)) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text == "ready" {
                    self.warm[i].ready = true;
                    self.dispatch();
                } else if let Some(why) = text.strip_prefix("error ") {
                    self.last_error = Some(why.to_string());
                    self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            _ => self.warm[i].sock = None,
        }
    }

    /// Collects ended instances.
    fn reap(&mut self) {
        while let Ok(Some((pid, _))) = process::wait_pid(-1, true) {
            if let Some(at) = self.warm.iter().position(|w| w.pid == pid) {
                let w = self.warm.remove(at);
                if !w.ready && !w.in_use && self.retry_at.is_none() {
                    self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    if self.last_error.is_none() {
                        self.last_error = Some("an instance ended before it was ready".into());
                    }
                }
            }
        }
    }

    /// Accepts the clients waiting (those of the pool's owner): each is
    /// read from as its first line comes (`hear_clients`).
    fn accept(&mut self) {
        while self.arriving.len() < MAX_ARRIVING {
            let conn = match self.claim.as_ref().map(|c| c.accept()) {
                Some(Ok(Ok(conn))) => conn,
                // Another user's, or a guest's: hung up on.
                Some(Ok(Err(_))) => continue,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => return,
            };
            if conn.set_nonblocking(true).is_ok() {
                self.arriving.push(Arriving {
                    conn,
                    bytes: Vec::new(),
                    fds: Vec::new(),
                    deadline: Instant::now() + CLIENT_PATIENCE,
                });
            }
        }
    }

    /// Reads what came from the arriving clients (`heard[i]`: client `i`
    /// is readable) without waiting: a client whose first line is whole
    /// is served (a run queued, `status` answered), one past its deadline
    /// or gone is hung up on. Returns a `stop` client's connection.
    fn hear_clients(&mut self, heard: &[bool]) -> Option<UnixStream> {
        let now = Instant::now();
        let mut stopper = None;
        let mut i = 0;
        for &readable in heard {
            let a = &mut self.arriving[i];
            let mut complete = false;
            let mut gone = now >= a.deadline;
            if readable {
                let mut buf = vec![0u8; FIRST_MESSAGE.saturating_sub(a.bytes.len()).max(1)];
                match socket::recv_fds(a.conn.as_fd(), &mut buf) {
                    Ok((0, _)) => gone = true,
                    Ok((n, fds)) => {
                        a.bytes.extend_from_slice(&buf[..n]);
                        a.fds.extend(fds);
                        complete = a.bytes.contains(&b'\n');
                        gone = !complete && a.bytes.len() >= FIRST_MESSAGE;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => gone = true,
                }
            }
            if complete {
                let a = self.arriving.remove(i);
                if let Some(stop) = self.serve_client(a) {
                    stopper = Some(stop);
                }
            } else if gone {
                self.arriving.remove(i);
            } else {
                i += 1;
            }
        }
        // Those accepted after the poll (not in `heard`) are only timed.
        self.arriving.retain(|a| now < a.deadline);
        stopper
    }

    /// A client whose first line has come: a run is queued; `status`
    /// answered; `stop` returned; anything else hung up on.
    fn serve_client(&mut self, a: Arriving) -> Option<UnixStream> {
        let Arriving { conn, bytes, fds, .. } = a;
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        if first.starts_with(b"run ") {
            // The instance reads the rest of a long request itself, waiting.
            if conn.set_nonblocking(false).is_ok() {
                self.pending.push_back(Pending { conn, bytes, fds });
                self.dispatch();
            }
        } else if first == b"status" {
            let ready = self.warm.iter().filter(|w| w.ready).count();
            let in_use = self.warm.iter().filter(|w| w.in_use).count();
            // One short line: it fits the socket's buffer, or the client
            // that does not read it goes without.
            let _ = event::write_all(
                conn.as_fd(),
                format!("{} {ready} {in_use}\t{}\n", self.size, self.options).as_bytes(),
            );
        } else if first == b"stop" {
            return Some(conn);
        }
        None
    }

    /// Hands waiting runs to ready instances.
    fn dispatch(&mut self) {
        while let Some(i) = self.warm.iter().position(|w| w.ready) {
            let Some(run) = self.pending.pop_front() else { return };
            let mut fds: Vec<BorrowedFd<'_>> = run.fds.iter().map(|f| f.as_fd()).collect();
            fds.push(run.conn.as_fd());
            let sent = match &self.warm[i].sock {
                Some(sock) => socket::send_fds(sock.as_fd(), &run.bytes, &fds).is_ok(),
                None => false,
            };
            drop(fds);
            let w = &mut self.warm[i];
            w.ready = false;
            if sent {
                w.in_use = true;
                w.sock = None;
                self.quiet_until = Some(Instant::now() + QUIET_AFTER_HANDOVER);
            } else {
                // That instance is gone: the run waits for the next.
                w.sock = None;
                self.pending.push_front(run);
            }
        }
    }

    /// Ends every instance: waiting ones are told to go (their sockets
    /// close: they tear down), running ones are killed through their
    /// registry names; all are waited for, the stragglers killed.
    fn stop_all(&mut self) {
        self.claim = None;
        self.arriving.clear();
        self.pending.clear();
        let registry = Registry::for_caller();
        for w in &mut self.warm {
            w.sock = None;
            if w.in_use {
                let _ = registry.ask(&w.name, &Request::Signal(signal::SIGKILL));
            }
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        let mut killed = false;
        while !self.warm.is_empty() {
            match process::wait_pid(-1, true) {
                Ok(Some((pid, _))) => self.warm.retain(|w| w.pid != pid),
                Ok(None) => {
                    if Instant::now() >= deadline && !killed {
                        for w in &self.warm {
                            let _ = process::kill(w.pid, signal::SIGKILL);
                        }
                        killed = true;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => break,
            }
        }
    }
}

/// An instance of the pool, in its supervisor (the pool's child): built,
/// then waits for its one run; `default`: the pool's name, and the program
/// a run that names none runs (`None`: such a run is refused). Returns the
/// exit status.
fn warm(spec: InstanceSpec, pool: OwnedFd, default: Option<(String, Vec<String>)>) -> i32 {
    let _ = process::set_process_name("xvisor-pooled");
    let instance_memory = spec.limits.memory_bytes;
    let built = Instance::create(spec).and_then(|mut i| i.prepare_start().map(|()| i));
    let mut instance = match built {
        Ok(i) => i,
        Err(e) => {
            let message = format!("error {}", crate::message::plain(&e.to_string()));
            let _ = socket::send(pool.as_fd(), message.as_bytes(), None);
            return e.exit_code();
        }
    };
    if socket::send(pool.as_fd(), b"ready", None).is_err() {
        return 0;
    }
    // While it waits, it answers what its registry name is asked (`xvisor
    // ps` lists it), as any created instance does.
    loop {
        let mut watches = vec![Watch::new(pool.as_fd(), ready::IN)];
        if let Some(requests) = instance.requests() {
            watches.push(Watch::new(requests, ready::IN));
        }
        if event::poll(&mut watches, -1).is_err() {
            continue;
        }
        let (run, asked) = (watches[0].ready != 0, watches.get(1).is_some_and(|w| w.ready != 0));
        drop(watches);
        if asked {
            instance.answer_requests();
        }
        if run {
            break;
        }
    }
    // Sized to the message: a waiting instance holds no large buffer.
    let (buf, mut fds) = match socket::recv_sized(pool.as_fd(), FIRST_MESSAGE) {
        Ok((buf, fds)) if !buf.is_empty() => (buf, fds),
        // The pool closed it (stop) or is gone: the instance is torn down.
        _ => return 0,
    };
    drop(pool);
    if fds.len() != 4 {
        return 125;
    }
    let Some(conn) = fds.pop().map(UnixStream::from) else {
        return 125;
    };
    let parsed = read_request(&conn, buf).and_then(|(mut request, timeout, excess)| {
        if request.argv.is_empty() {
            match &default {
                Some((_, argv)) => request.argv.clone_from(argv),
                None => bail!("this pool has no default program (its instances are not built from an image with an Entrypoint or Cmd): name one, 'xvisor run --pool NAME -- PROGRAM'"),
            }
        }
        Ok((request, timeout, excess))
    });
    let (request, timeout, excess) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let _ = (&conn).write_all(format!("error {e}\n").as_bytes());
            return 125;
        }
    };
    // From here on this process's messages are the client's, as a cold
    // run's are its caller's. Its stdin and stdout stay /dev/null: the
    // client's are the program's alone, closed with its last process.
    let _ = event::dup_onto(fds[2].as_fd(), 2);
    let [stdin, stdout, stderr]: [OwnedFd; 3] = match fds.try_into() {
        Ok(three) => three,
        Err(_) => return 125,
    };
    if let Some(t) = timeout {
        instance.set_timeout(Some(t));
    }
    let done = Arc::new(AtomicBool::new(false));
    // The pool's patience with the client is no longer wanted: the
    // client's silence is the normal case from here on.
    let _ = conn.set_read_timeout(None);
    if let Ok(watched) = conn.try_clone() {
        let init = process::pidfd_open(instance.init_pid()).ok();
        let finished = Arc::clone(&done);
        let _ = instance.spawn_confined(move || follow_client(watched, excess, init, finished));
    }
    let memory = instance_memory;
    // The client is answered as soon as every process of the instance has
    // ended, before the host's side is torn down.
    let answer = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return 125,
    };
    let answered = Arc::clone(&done);
    instance.when_ended(move |outcome| {
        let code = crate::run::tell_outcome(outcome, memory);
        answered.store(true, Ordering::SeqCst);
        // write(2): the confined supervisor's filter has no sendto.
        let _ = event::write_all(answer.as_fd(), format!("exit {code}\n").as_bytes());
    });
    let failed = match instance.start_with(request, [stdin, stdout, stderr]) {
        Ok(()) => match instance.confine_supervisor() {
            Ok(()) => instance.wait().err(),
            Err(e) => Some(e),
        },
        Err(e) => Some(e),
    };
    let code = match &failed {
        Some(e) => crate::run::report(e),
        None => 0,
    };
    drop(instance);
    if !done.swap(true, Ordering::SeqCst) {
        let _ = event::write_all(conn.as_fd(), format!("exit {code}\n").as_bytes());
    }
    code
}

/// The run's request: `run LEN TIMEOUT_MS|-` then LEN bytes of an
/// [`ExecRequest`]; `bytes` is what the pool passed on, the rest is read
/// from the connection. Returns what follows the request too (the
/// client's first `signal` lines, if they came with it).
fn read_request(conn: &UnixStream, mut bytes: Vec<u8>) -> Result<(ExecRequest, Option<Duration>, Vec<u8>)> {
    let at = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| anyhow!("a request without its header"))?;
    let header = String::from_utf8_lossy(&bytes[..at]).into_owned();
    let mut words = header.split(' ');
    let (Some("run"), Some(length), Some(timeout)) = (words.next(), words.next(), words.next()) else {
        bail!("a malformed request");
    };
    let length: usize = length.parse().map_err(|_| anyhow!("a malformed request"))?;
    if length > MAX_EXEC_REQUEST {
        bail!("a request larger than {MAX_EXEC_REQUEST} bytes");
    }
    let timeout = match timeout {
        "-" => None,
        ms => Some(Duration::from_millis(
            ms.parse().map_err(|_| anyhow!("a malformed request"))?,
        )),
    };
    let mut payload = bytes.split_off(at + 1);
    if payload.len() < length {
        let mut rest = vec![0u8; length - payload.len()];
        conn.set_read_timeout(Some(CLIENT_PATIENCE))?;
        (&*conn).read_exact(&mut rest).context("read the request")?;
        conn.set_read_timeout(None)?;
        payload.extend(rest);
    }
    let excess = payload.split_off(length);
    let request = ExecRequest::decode(&payload).map_err(|e| anyhow!("{e}"))?;
    Ok((request, timeout, excess))
}

/// The client's side of a run, on a thread of the supervisor: `signal N`
/// lines are raised at the supervisor (which passes them on as it does a
/// cold run's), and a client that goes before the end takes the instance
/// with it (its init killed), as a cold run's caller does.
fn follow_client(conn: UnixStream, excess: Vec<u8>, init: Option<OwnedFd>, done: Arc<AtomicBool>) {
    // Read with read(2): the supervisor's filter has no recvfrom, which
    // std's socket reads use.
    let mut input = excess;
    let mut buf = [0u8; 512];
    loop {
        while let Some(at) = input.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = input.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line[..at]).into_owned();
            let Some(number) = line.strip_prefix("signal ") else {
                continue;
            };
            if let Ok(sig) = number.trim().parse::<i32>() {
                if SUPERVISOR_SIGNALS.contains(&sig) && sig != signal::SIGWINCH {
                    let _ = process::kill(process::getpid(), sig);
                }
            }
        }
        if input.len() > 4096 {
            break;
        }
        match event::read(conn.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !done.load(Ordering::SeqCst) {
        if let Some(init) = init {
            let _ = process::pidfd_send_signal(init.as_fd(), signal::SIGKILL);
        }
    }
}

/// `xvisor run --pool NAME ...`: options a pooled instance takes per run,
/// the rest refused by name. Returns the exit status.
pub fn run(args: Vec<OsString>) -> i32 {
    match run_client(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xvisor: {}", crate::message::plain(&format!("{e:#}")));
            125
        }
    }
}

/// Options `run --pool` takes: `(name, takes a value)`.
const PER_RUN: &[(&str, bool)] = &[
    ("--pool", true),
    ("-e", true),
    ("--env", true),
    ("-w", true),
    ("--workdir", true),
    ("--timeout", true),
    ("-i", false),
    ("--interactive", false),
];

/// Whether `args` (`run --pool`'s, without `--pool`) name a program: the
/// first word that is neither an option nor a per-run option's value, or
/// any word after `--`.
fn names_a_program(args: &[OsString]) -> bool {
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = it.next() {
        if arg == "--" {
            return it.next().is_some();
        }
        if !arg.starts_with('-') || arg == "-" {
            return true;
        }
        let key = arg.split_once('=').map_or(arg.as_ref(), |(k, _)| k);
        if PER_RUN.iter().any(|(k, value)| *k == key && *value) && !arg.contains('=') {
            it.next();
        }
    }
    false
}

/// Whether `args` ask for a pool (`--pool` before the program).
pub fn wants_pool(args: &[OsString]) -> bool {
    args.iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a == "--pool" || a.starts_with("--pool="))
}

fn run_client(args: Vec<OsString>) -> Result<i32> {
    // Split off --pool, then parse the rest as `run` does.
    let mut name = None;
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    let mut in_options = true;
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        if in_options && text == "--pool" {
            name = it.next().map(|v| v.to_string_lossy().into_owned());
            continue;
        }
        if in_options {
            if let Some(v) = text.strip_prefix("--pool=") {
                name = Some(v.to_string());
                continue;
            }
        }
        if text == "--" {
            in_options = false;
        }
        rest.push(arg);
    }
    let name = name.ok_or_else(|| anyhow!("run --pool: name the pool"))?;
    // No program: the pool's default (its image's Entrypoint and Cmd).
    let default_command = !names_a_program(&rest);
    let mut parse_args = rest.clone();
    if default_command {
        parse_args.extend([OsString::from("--"), OsString::from("true")]);
    }
    let Some(o) = crate::run::parse(parse_args)? else {
        out!("{}", crate::run::HELP);
        return Ok(0);
    };
    // The options part: what comes before the program.
    let options = if default_command {
        &rest[..]
    } else {
        &rest[..rest.len().saturating_sub(o.argv.len())]
    };
    let mut refused = Vec::new();
    let mut skip = false;
    for arg in options.iter().map(|a| a.to_string_lossy()) {
        if std::mem::take(&mut skip) || !arg.starts_with('-') || arg == "--" {
            continue;
        }
        let key = arg.split_once('=').map_or(arg.as_ref(), |(k, _)| k).to_string();
        match PER_RUN.iter().find(|(k, _)| *k == key) {
            Some((_, takes_value)) => skip = *takes_value && !arg.contains('='),
            None => {
                if !refused.contains(&key) {
                    refused.push(key);
                }
            }
        }
    }
    if !refused.is_empty() {
        bail!(
            "run --pool {name}: {} cannot be given per run (a pooled instance is built before its run): give them to 'xvisor pool start', or run without --pool",
            refused.join(", ")
        );
    }
    let mut request = ExecRequest {
        argv: if default_command { Vec::new() } else { o.argv },
        workdir: o.workdir,
        ..ExecRequest::default()
    };
    for e in &o.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => request.env.push((k.to_string(), v.to_string())),
            Some(_) => bail!("--env {e:?}: expected KEY=VALUE"),
            None => {
                if let Ok(v) = std::env::var(e) {
                    request.env.push((e.clone(), v));
                }
            }
        }
    }
    let payload = request.encode();
    if payload.len() > MAX_EXEC_REQUEST {
        bail!("run --pool: the command and environment exceed {MAX_EXEC_REQUEST} bytes");
    }
    let timeout = o.timeout.map_or_else(|| "-".to_string(), |t| t.as_millis().to_string());
    let mut message = format!("run {} {timeout}\n", payload.len()).into_bytes();
    message.extend_from_slice(&payload);
    // Signals are held from before the run starts, passed on once it has.
    let forwarded: Vec<i32> = SUPERVISOR_SIGNALS
        .iter()
        .copied()
        .filter(|s| *s != signal::SIGWINCH)
        .collect();
    signal::block(&forwarded).context("block signals")?;
    let signals = signal::signal_fd(&forwarded).context("create a signalfd")?;
    let conn = Registry::for_caller().connect_pool(&name)?;
    let null = xvisor_sys::fs::open_read_write("/dev/null", true).context("open /dev/null")?;
    let stdin_is_terminal = xvisor_sys::tty::is_terminal(event::standard(0));
    let stdin = if stdin_is_terminal && !o.interactive {
        null.as_fd()
    } else {
        event::standard(0)
    };
    let fds = [stdin, event::standard(1), event::standard(2)];
    socket::send_fds(conn.as_fd(), &message, &fds).context("hand the run to the pool")?;
    drop(null);
    follow_run(&name, &conn, signals.as_fd())
}

/// Passes signals on and waits for the run's `exit CODE`.
fn follow_run(name: &str, conn: &UnixStream, signals: BorrowedFd<'_>) -> Result<i32> {
    let mut input = Vec::new();
    loop {
        let mut watches = [Watch::new(conn.as_fd(), ready::IN), Watch::new(signals, ready::IN)];
        event::poll(&mut watches, -1).context("wait for the run")?;
        let (conn_ready, signals_ready) = (watches[0].ready != 0, watches[1].ready != 0);
        if signals_ready {
            while let Some(info) = signal::read_signal(signals).context("read signals")? {
                let _ = (&*conn).write_all(format!("signal {}\n", info.signal).as_bytes());
            }
        }
        if !conn_ready {
            continue;
        }
        let mut buf = [0u8; 512];
        let n = (&*conn).read(&mut buf).unwrap_or(0);
        if n == 0 {
            eprintln!("xvisor: the instance of pool {name:?} ended without a status (its pool was stopped or killed)");
            return Ok(137);
        }
        input.extend_from_slice(&buf[..n]);
        while let Some(at) = input.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = input.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line[..at]).into_owned();
            if let Some(code) = line.strip_prefix("exit ") {
                return Ok(code.trim().parse().unwrap_or(125));
            }
            if let Some(message) = line.strip_prefix("error ") {
                bail!("run --pool {name}: {message}");
            }
        }
    }
}

/// One pool's status line: `SIZE READY IN-USE\tOPTIONS`.
fn status(registry: &Registry, name: &str) -> Result<(usize, usize, usize, String)> {
    let mut conn = registry.connect_pool(name)?;
    conn.set_read_timeout(Some(CLIENT_PATIENCE))?;
    conn.write_all(b"status\n")?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let (numbers, options) = line
        .trim_end_matches('\n')
        .split_once('\t')
        .unwrap_or((line.trim(), ""));
    let n: Vec<usize> = numbers.split(' ').filter_map(|w| w.parse().ok()).collect();
    match n[..] {
        [size, ready, in_use] => Ok((size, ready, in_use, options.to_string())),
        _ => bail!("pool {name:?} gave no status"),
    }
}

fn list(args: Vec<OsString>) -> Result<i32> {
    let json = match args.first().and_then(|a| a.to_str()) {
        None => false,
        Some("--json") if args.len() == 1 => true,
        Some("-h" | "--help") => {
            out!("{HELP}");
            return Ok(0);
        }
        Some(other) => bail!("pool ls: unexpected argument {other:?}"),
    };
    let registry = Registry::for_caller();
    let mut rows = Vec::new();
    for name in registry.pool_names()? {
        if let Ok(s) = status(&registry, &name) {
            rows.push((name, s));
        }
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, (size, ready, in_use, options))| {
                json!({"name": name, "size": size, "ready": ready, "in_use": in_use, "options": options})
            })
            .collect();
        outln!("{}", serde_json::Value::Array(list));
        return Ok(0);
    }
    outln!("{:<20} {:>5} {:>5} {:>6}  OPTIONS", "NAME", "SIZE", "READY", "IN-USE");
    for (name, (size, ready, in_use, options)) in rows {
        outln!("{name:<20} {size:>5} {ready:>5} {in_use:>6}  {options}");
    }
    Ok(0)
}

fn stop(args: Vec<OsString>) -> Result<i32> {
    let [name] = &args[..] else {
        bail!("pool stop: name one pool");
    };
    let name = name.to_string_lossy().into_owned();
    if name == "-h" || name == "--help" {
        out!("{HELP}");
        return Ok(0);
    }
    let registry = Registry::for_caller();
    let mut conn = registry.connect_pool(&name)?;
    conn.set_read_timeout(Some(STOP_PATIENCE * 2))?;
    conn.write_all(b"stop\n")?;
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    // The pool has ended its instances; its name goes with its process.
    let deadline = Instant::now() + STOP_PATIENCE;
    while registry.pool_names()?.contains(&name) {
        if Instant::now() >= deadline {
            bail!("pool stop: pool {name:?} is still running");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(0)
}
