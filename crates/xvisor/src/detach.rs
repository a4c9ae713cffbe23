//! Detached instances (`xvisor run -d`) and their life after the command
//! that started them: `logs`, `stop`, `wait`, `inspect`, `rm`.
//!
//! `run -d` forks a **keeper**: its own session, holding nothing of the
//! caller's once the program runs. The keeper forks the instance's
//! supervisor (the process `xvisor ps` shows, which dies with the keeper:
//! `PR_SET_PDEATHSIG`), whose stdout and stderr are one pipe that the
//! keeper copies into the instance's log, and records the end. What stays
//! on the host is the instance's **record**, a directory under the state
//! directory (`/run/xvisor/detached` as root, `$XDG_RUNTIME_DIR/xvisor/detached`
//! otherwise):
//!
//! - `meta.json`: the options, the command, the start time, the keeper's
//!   and the supervisor's pids;
//! - `log`, `log.1`: the output, each file at most `--log-size` (the older
//!   one replaced at each rotation: at most twice the cap in all);
//! - `exit.json`: the exit status and the end time, once it has ended.
//!
//! The record is what the keeper answers to: when it disappears (`xvisor
//! rm`, or the whole state directory removed), the keeper kills the
//! instance and ends without writing anything.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use xvisor_instance::registry::{Registry, RegistryError, Request};
use xvisor_instance::status::TaskRow;
use xvisor_instance::InstanceSpec;
use xvisor_oci::state::{now_rfc3339, process_start_time};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked, WaitStatus};
use xvisor_sys::signal;

use crate::run::RunOptions;

pub use crate::units::DEFAULT_LOG_SIZE;
/// How often the keeper checks that its record is still there.
const RECORD_CHECK: Duration = Duration::from_secs(1);
/// How often `wait`, `stop` and `logs -f` look again.
const LOOK_AGAIN: Duration = Duration::from_millis(50);

pub const LOGS_HELP: &str = "\
Show the output of an instance started with 'xvisor run -d'.

Usage: xvisor logs [-f] [--tail N] NAME

The instance's stdout and stderr, as one stream, in the order written.
A detached instance keeps at most --log-size (default 1M) of its latest
output and as much again before it; older output is dropped. The log is
kept after the instance ends, until 'xvisor rm NAME'.

Options:
  -f, --follow    keep printing what the program writes, until it ends
  -n, --tail N    only the last N lines (then follow, with -f)
  -h, --help      show this text

Examples:
  xvisor run -d --name web -- python3 -m http.server 8000
  xvisor logs web
  xvisor logs -f --tail 20 web
";

pub const STOP_HELP: &str = "\
Stop a running instance: TERM to its program, KILL after a grace period.

Usage: xvisor stop [-t SECONDS] NAME...

Sends TERM to the instance's program; if the instance has not ended
SECONDS later (default 10), KILL ends all of it. Returns once it has ended
and its processes, cgroups and control socket are gone, and prints its
name. A detached instance stays listed as exited ('xvisor ps -a'), with
its log and exit status, until 'xvisor rm NAME'. Stopping an instance that
has already ended does nothing.

Options:
  -t, --time SECONDS   the grace period (0: KILL at once)
  -h, --help           show this text

Examples:
  xvisor stop web
  xvisor stop -t 2 web
";

pub const WAIT_HELP: &str = "\
Wait for detached instances to end, and print their exit status.

Usage: xvisor wait NAME...

For each NAME (started with 'xvisor run -d'), waits until it has ended and
prints its exit status, one line each: the program's own, 128+N if it was
killed by signal N, 124 if its --timeout fired. The command itself exits
0 (as 'docker wait' does); 125 if an instance is unknown or ended without
a status (its keeper was killed).

Example:
  xvisor run -d --name job -- sh -c 'sleep 1; exit 3'
  xvisor wait job        # prints 3
";

pub const INSPECT_HELP: &str = "\
Show everything about instances, as JSON.

Usage: xvisor inspect NAME...

Prints a JSON array with one object per NAME: name, state (running,
exited), whether it is detached, the command, the options it was started
with (detached instances), its limits and policy, its supervisor's pid,
the host pids of its processes, start time, and, once ended, its exit
status and end time. Instances started in the foreground are shown while
they run, from what their supervisor says.

Example:
  xvisor inspect web | python3 -m json.tool
";

pub const RM_HELP: &str = "\
Remove what stays of ended detached instances: their log and exit status.

Usage: xvisor rm [-f] NAME...

A detached instance ('xvisor run -d') that has ended is kept, listed as
exited by 'xvisor ps -a', until removed. A running one is refused unless
-f is given: then it is killed first.

Options:
  -f, --force   kill a running instance first
  -h, --help    show this text

Example:
  xvisor rm web
";

/// Where the records of detached instances are kept: `detached` in the
/// machine's (root) or the user's xvisor state directory, or
/// `XVISOR_STATE_DIR` itself.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XVISOR_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = process::geteuid();
    let base = if uid == 0 {
        PathBuf::from("/run/xvisor")
    } else {
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("xvisor"),
            None => std::env::temp_dir().join(format!("xvisor-{uid}")),
        }
    };
    base.join("detached")
}

/// The records' directory, made if missing: a directory of the caller's
/// that no one else may enter, in a parent no one else may change (in a
/// shared /tmp, someone else's directory or a symlink there would put the
/// caller's records, and the instances they keep alive, in their hands).
fn open_state_dir() -> Result<PathBuf> {
    let dir = state_dir();
    let me = process::geteuid();
    // A directory given by XVISOR_STATE_DIR is taken where it is (its
    // parent is the user's choice); the default one's parent is checked.
    let given = std::env::var_os("XVISOR_STATE_DIR").is_some_and(|d| !d.is_empty());
    if let Some(parent) = dir.parent().filter(|_| !given) {
        // The machine's state directory is shared with other parts of
        // xvisor: it stays readable; the records' own directory does not.
        match std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent) {
            Ok(()) => {}
            Err(e) => return Err(anyhow!("create the state directory {}: {e}", parent.display())),
        }
        let meta =
            std::fs::symlink_metadata(parent).with_context(|| format!("state directory {}", parent.display()))?;
        if !meta.is_dir() || (meta.uid() != me && meta.uid() != 0) || meta.mode() & 0o022 != 0 {
            bail!(
                "the state directory {} is not a directory of yours (or root's) that only its owner can change; remove it or set XVISOR_STATE_DIR",
                parent.display()
            );
        }
    }
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow!("create the state directory {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir).with_context(|| format!("state directory {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        bail!(
            "the state directory {} is not a directory of yours that only you can enter (mode 700); remove it or set XVISOR_STATE_DIR",
            dir.display()
        );
    }
    Ok(dir)
}

/// One detached instance's record.
#[derive(Debug, Clone)]
struct Record {
    name: String,
    dir: PathBuf,
}

/// What a record says of its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Its keeper runs (the program runs, or is starting or ending).
    Running,
    /// It ended with this status.
    Exited(i32),
    /// Its keeper ended without recording a status (it was killed).
    Lost,
}

impl Record {
    /// The record of `name`, if there is one.
    fn find(name: &str) -> Option<Self> {
        if !xvisor_instance::registry::valid_name(name) {
            return None;
        }
        let dir = state_dir().join(name);
        dir.join("meta.json").is_file().then(|| Self {
            name: name.to_string(),
            dir,
        })
    }

    fn all() -> Vec<Self> {
        let mut names: Vec<String> = std::fs::read_dir(state_dir())
            .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.sort();
        names.iter().filter_map(|n| Self::find(n)).collect()
    }

    fn meta(&self) -> Value {
        read_json(&self.dir.join("meta.json")).unwrap_or(Value::Null)
    }

    fn exit(&self) -> Option<Value> {
        read_json(&self.dir.join("exit.json"))
    }

    fn life(&self) -> Life {
        if let Some(code) = self.exit().and_then(|e| e["exit_code"].as_i64()) {
            return Life::Exited(code as i32);
        }
        let meta = self.meta();
        let pid = meta["keeper_pid"].as_i64().unwrap_or(0) as i32;
        let start = meta["keeper_start_time"].as_u64();
        if start.is_some() && process_start_time(pid) == start {
            // The status may have been written since the first look.
            match self.exit().and_then(|e| e["exit_code"].as_i64()) {
                Some(code) => Life::Exited(code as i32),
                None => Life::Running,
            }
        } else {
            match self.exit().and_then(|e| e["exit_code"].as_i64()) {
                Some(code) => Life::Exited(code as i32),
                None => Life::Lost,
            }
        }
    }

    /// Waits until the instance has ended (`None`: it has not within
    /// `limit`).
    fn wait_end(&self, limit: Option<Duration>) -> Option<Life> {
        let began = Instant::now();
        loop {
            match self.life() {
                Life::Running => {}
                ended => return Some(ended),
            }
            if limit.is_some_and(|l| began.elapsed() >= l) {
                return None;
            }
            std::thread::sleep(LOOK_AGAIN);
        }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `value` to `path` whole or not at all (readers may look at any
/// moment).
fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value:#}\n"))?;
    std::fs::rename(&tmp, path)
}

/// The options of a run, as `inspect` shows them.
pub fn options_json(o: &RunOptions) -> Value {
    json!({
        "image": o.image,
        "rootfs": o.rootfs,
        "writable": o.writable,
        "host_root": o.host_root,
        "read_only": o.read_only,
        "volumes": o.volumes.iter().map(|v| json!({
            "source": v.host_path, "target": v.target, "writable": v.writable,
        })).collect::<Vec<_>>(),
        "tmpfs": o.tmpfs.iter().map(|t| json!({"target": t.target, "size_bytes": t.size})).collect::<Vec<_>>(),
        "devices": o.devices,
        "env": o.env,
        "env_files": o.env_files,
        "workdir": o.workdir,
        "user": o.user.as_ref().map(|u| format!("{u:?}")),
        "entrypoint": o.entrypoint,
        "hostname": o.hostname,
        "network": o.network.name(),
        "publish": o.publish.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "limits": {
            "memory_bytes": o.limits.memory_bytes,
            "pids": o.limits.pids,
            "cpus": o.limits.cpus,
            "nofile": o.nofile,
            "timeout_s": o.timeout.map(|t| t.as_secs_f64()),
            "tmpfs_size_bytes": o.tmpfs_sizes.scratch,
            "shm_size_bytes": o.tmpfs_sizes.shm,
        },
        "policy": {
            "profile": match (&o.profile, &o.policy) {
                (Some(p), _) => p.name().to_string(),
                (None, Some(_)) => "the policy file's base".to_string(),
                (None, None) => "default".to_string(),
            },
            "file": o.policy,
            "denied_syscalls": o.denied,
            "trace": o.trace,
            "learn": o.learn,
        },
        "userns": if o.share_host_ids { "host" } else { "auto" },
        "no_limits": o.no_limits,
        "log_size_bytes": o.log_size.unwrap_or(DEFAULT_LOG_SIZE),
        "remove_at_end": o.remove,
    })
}

/// What the keeper needs to start and follow the instance.
pub struct Detached {
    pub spec: InstanceSpec,
    pub learn: Option<crate::learn::Target>,
    pub stats: bool,
    pub options: Value,
    pub log_size: u64,
    pub remove: bool,
}

/// `xvisor run -d`: starts the instance under a keeper, prints its name
/// once its program runs. Returns the exit status.
pub fn run(d: Detached) -> Result<i32> {
    let name = d.spec.name.clone();
    let state = open_state_dir()?;
    let dir = state.join(&name);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(name_taken(&name));
        }
        Err(e) => bail!("create the record {}: {e}", dir.display()),
    }
    let (report_read, report_write) = event::pipe().context("create a pipe")?;
    match process::fork().context("fork the instance's keeper")? {
        Forked::Child => {
            drop(report_read);
            let code = keep(d, &dir, report_write);
            process::exit_now(code)
        }
        Forked::Parent { pid, .. } => {
            drop(report_write);
            let report = xvisor_oci::runtime::read_report(report_read.as_fd())
                .map_err(|e| anyhow!("read the keeper's report: {e}"))?;
            if let Some(rest) = report.strip_prefix("ok ") {
                outln!("{}", rest.trim_end());
                return Ok(0);
            }
            // It has ended, or is ending, and has removed the record.
            let _ = process::wait_pid(pid, false);
            if let Some(rest) = report.strip_prefix("error ") {
                let (code, message) = rest.split_once(' ').unwrap_or(("125", rest));
                eprintln!("xvisor: {}", crate::message::plain(message.trim_end()));
                return Ok(code.parse().unwrap_or(125));
            }
            let _ = std::fs::remove_dir_all(&dir);
            bail!("the instance's keeper ended before the program started")
        }
    }
}

/// Why `name` cannot be taken by a new instance.
fn name_taken(name: &str) -> anyhow::Error {
    match Record::find(name).map(|r| r.life()) {
        Some(Life::Running) => anyhow!("the name {name:?} is in use by a running instance"),
        Some(_) => anyhow!(
            "the name {name:?} is kept by an instance that has ended (its log and status): 'xvisor rm {name}' removes it"
        ),
        None => anyhow!("the name {name:?} is in use (a record {} is in the way)", state_dir().join(name).display()),
    }
}

/// Refuses a foreground `run --name NAME` when an ended detached instance
/// keeps that name, as its log and status would then belong to two.
pub fn check_name_free(name: &str) -> Result<()> {
    if Record::find(name).is_some() {
        return Err(name_taken(name));
    }
    Ok(())
}

/// The keeper (a child of `xvisor run -d`). Returns its exit status.
fn keep(d: Detached, dir: &Path, report: OwnedFd) -> i32 {
    let say = |report: &OwnedFd, code: i32, message: &str| {
        let _ = event::write_all(
            report.as_fd(),
            format!("error {code} {}\n", message.replace('\n', " ")).as_bytes(),
        );
        let _ = std::fs::remove_dir_all(dir);
        code
    };
    let _ = process::setsid();
    let _ = process::set_process_name("xvisor-keeper");
    let me = process::getpid();
    let identity = match std::fs::metadata(dir) {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => return say(&report, 125, &format!("the record {}: {e}", dir.display())),
    };
    let mut meta = json!({
        "name": d.spec.name,
        "command": d.spec.argv,
        "options": d.options,
        "created": now_rfc3339(),
        "keeper_pid": me,
        "keeper_start_time": process_start_time(me),
    });
    if let Err(e) = write_json(&dir.join("meta.json"), &meta) {
        return say(&report, 125, &format!("write the record {}: {e}", dir.display()));
    }
    let mut log = match LogWriter::create(dir, d.log_size) {
        Ok(l) => l,
        Err(e) => return say(&report, 125, &format!("create the log in {}: {e}", dir.display())),
    };
    let null = match xvisor_sys::fs::open_read_write("/dev/null", true) {
        Ok(n) => n,
        Err(e) => return say(&report, 125, &format!("open /dev/null: {e}")),
    };
    let pipes = event::pipe().and_then(|output| Ok((output, event::pipe()?)));
    let ((output_read, output_write), (started_read, started_write)) = match pipes {
        Ok(p) => p,
        Err(e) => return say(&report, 125, &format!("create a pipe: {e}")),
    };
    let memory = d.spec.limits.memory_bytes;
    let child = match process::fork() {
        Ok(c) => c,
        Err(e) => return say(&report, 125, &format!("fork the supervisor: {e}")),
    };
    let supervisor = match child {
        Forked::Child => {
            // The supervisor: the instance dies with its keeper.
            let _ = process::set_parent_death_signal(signal::SIGKILL);
            if std::os::unix::process::parent_id() as i32 != me {
                process::exit_now(125);
            }
            drop(report);
            drop(output_read);
            drop(started_read);
            for (fd, target) in [(null.as_fd(), 0), (output_write.as_fd(), 1), (output_write.as_fd(), 2)] {
                if event::dup_onto(fd, target).is_err() {
                    process::exit_now(125);
                }
            }
            drop(output_write);
            drop(null);
            let _ = process::set_process_name("xvisor");
            let code = match crate::run::start(d.spec) {
                Ok(instance) => {
                    let _ = event::write_all(started_write.as_fd(), b"ok\n");
                    drop(started_write);
                    crate::run::serve(instance, memory, d.learn, d.stats, None, None)
                }
                Err(e) => {
                    let line = format!("error {} {}\n", e.exit_code(), e.to_string().replace('\n', " "));
                    let _ = event::write_all(started_write.as_fd(), line.as_bytes());
                    e.exit_code()
                }
            };
            process::exit_now(code)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(output_write);
    drop(started_write);
    let answer = xvisor_oci::runtime::read_report(started_read.as_fd()).unwrap_or_default();
    if !answer.starts_with("ok") {
        let _ = process::wait_pid(supervisor, false);
        let _ = event::write_all(report.as_fd(), answer.as_bytes());
        if !answer.starts_with("error ") {
            return say(
                &report,
                125,
                "the instance's supervisor ended before the program started",
            );
        }
        let _ = std::fs::remove_dir_all(dir);
        return 125;
    }
    meta["supervisor_pid"] = json!(supervisor);
    meta["started"] = json!(now_rfc3339());
    let _ = write_json(&dir.join("meta.json"), &meta);
    let _ = event::write_all(report.as_fd(), format!("ok {}\n", d.spec.name).as_bytes());
    drop(report);
    // Nothing of the caller's stays open here: its pipes reach end-of-file.
    for n in 0..3 {
        let _ = event::dup_onto(null.as_fd(), n);
    }
    drop(null);
    let ended = follow(supervisor, &output_read, &mut log, dir, identity);
    drop(log);
    let Some(status) = ended else {
        // The record is gone: so is the instance, and nothing is written.
        return 0;
    };
    let (code, ended_by) = match status {
        WaitStatus::Exited(code) => (code, "exited".to_string()),
        WaitStatus::Signaled { signal: n, .. } => {
            (128 + n, format!("its supervisor was killed by {}", signal::name(n)))
        }
    };
    let end = json!({"exit_code": code, "finished": now_rfc3339(), "ended_by": ended_by});
    if d.remove {
        let _ = std::fs::remove_dir_all(dir);
    } else if still_there(dir, identity) {
        let _ = write_json(&dir.join("exit.json"), &end);
    }
    0
}

/// Whether the record directory is still the one the keeper made.
fn still_there(dir: &Path, identity: (u64, u64)) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| (m.dev(), m.ino()) == identity)
}

/// Copies the supervisor's output into the log until it ends; its status,
/// or `None` when the record vanished and the instance was killed.
fn follow(
    supervisor: i32,
    output: &OwnedFd,
    log: &mut LogWriter,
    dir: &Path,
    identity: (u64, u64),
) -> Option<WaitStatus> {
    let pidfd = process::pidfd_open(supervisor).ok();
    let mut buf = vec![0u8; 64 * 1024];
    let mut output_open = true;
    let mut last_check = Instant::now();
    loop {
        let mut watches = Vec::with_capacity(2);
        if output_open {
            watches.push(Watch::new(output.as_fd(), ready::IN));
        }
        if let Some(fd) = &pidfd {
            watches.push(Watch::new(fd.as_fd(), ready::IN));
        }
        let _ = event::poll(&mut watches, RECORD_CHECK.as_millis() as i32);
        let output_ready = output_open && watches.first().is_some_and(|w| w.ready != 0);
        let ended = pidfd.is_some() && watches.last().is_some_and(|w| w.ready != 0);
        drop(watches);
        if output_ready {
            match event::read(output.as_fd(), &mut buf) {
                Ok(0) => output_open = false,
                Ok(n) => log.write(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => output_open = false,
            }
        }
        if ended || (!output_open && pidfd.is_none()) {
            // What is still in the pipe, without waiting for a writer a
            // leftover process might hold.
            let _ = event::set_nonblocking(output.as_fd(), true);
            while let Ok(n @ 1..) = event::read(output.as_fd(), &mut buf) {
                log.write(buf.get(..n).unwrap_or_default());
            }
            return process::wait_pid(supervisor, false).ok().flatten().map(|(_, s)| s);
        }
        if last_check.elapsed() >= RECORD_CHECK {
            last_check = Instant::now();
            if !still_there(dir, identity) {
                let _ = process::kill(supervisor, signal::SIGKILL);
                let _ = process::wait_pid(supervisor, false);
                return None;
            }
        }
    }
}

/// The log with its cap: `log` grows to the cap, then becomes `log.1`
/// (replacing the one before) and a new `log` begins.
struct LogWriter {
    dir: PathBuf,
    file: Option<File>,
    written: u64,
    cap: u64,
}

impl LogWriter {
    fn create(dir: &Path, cap: u64) -> std::io::Result<Self> {
        let file = Self::open(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file: Some(file),
            written: 0,
            cap,
        })
    }

    fn open(dir: &Path) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join("log"))
    }

    /// Writes what it can; output that cannot be kept (a full disk, a
    /// removed record) is dropped rather than blocking the program.
    fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.written >= self.cap {
                self.file = None;
                let _ = std::fs::rename(self.dir.join("log"), self.dir.join("log.1"));
                self.file = Self::open(&self.dir).ok();
                self.written = 0;
            }
            let room = (self.cap - self.written).min(data.len() as u64) as usize;
            let (now, later) = data.split_at(room);
            if let Some(f) = &mut self.file {
                let _ = f.write_all(now);
            }
            self.written += now.len() as u64;
            data = later;
        }
    }
}

/// A record that must exist (`logs`, `wait`).
fn record_of(name: &str, command: &str) -> Result<Record> {
    if let Some(record) = Record::find(name) {
        return Ok(record);
    }
    if Registry::for_caller()
        .names()
        .unwrap_or_default()
        .iter()
        .any(|n| n == name)
    {
        bail!("{command}: {name:?} runs in the foreground (not started with 'xvisor run -d'): its output and status go to the command that started it");
    }
    bail!("{command}: no instance {name:?} (see 'xvisor ps -a')")
}

/// Positional words and flags of the lifecycle commands.
struct Args {
    words: Vec<String>,
    follow: bool,
    force: bool,
    tail: Option<usize>,
    time: Option<u64>,
}

fn parse(args: Vec<OsString>, command: &str) -> Result<Option<Args>> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut a = Args {
        words: Vec::new(),
        follow: false,
        force: false,
        tail: None,
        time: None,
    };
    let text = |v: OsString| {
        v.into_string()
            .map_err(|v| anyhow!("{command}: {v:?} is not valid text"))
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Short('f') | Long("follow") if command == "logs" => a.follow = true,
            Short('n') | Long("tail") if command == "logs" => {
                let v = text(p.value()?)?;
                a.tail = Some(if v == "all" {
                    usize::MAX
                } else {
                    v.parse().map_err(|_| anyhow!("--tail {v:?}: give a number of lines"))?
                });
            }
            Short('f') | Long("force") if command == "rm" => a.force = true,
            Short('t') | Long("time") | Long("timeout") if command == "stop" => {
                let v = text(p.value()?)?;
                a.time = Some(
                    v.parse()
                        .map_err(|_| anyhow!("stop -t {v:?}: give a whole number of seconds"))?,
                );
            }
            Value(v) => a.words.push(text(v)?),
            other => return Err(other.unexpected().into()),
        }
    }
    if a.words.is_empty() {
        bail!("{command}: give an instance name (see 'xvisor {command} --help')");
    }
    Ok(Some(a))
}

/// `xvisor logs`.
pub fn logs(args: Vec<OsString>) -> Result<i32> {
    let Some(a) = parse(args, "logs")? else {
        out!("{LOGS_HELP}");
        return Ok(0);
    };
    let [name] = a.words.as_slice() else {
        bail!("logs: give one instance name");
    };
    let record = record_of(name, "logs")?;
    let mut out = std::io::stdout().lock();
    let mut old = Vec::new();
    if let Ok(mut f) = File::open(record.dir.join("log.1")) {
        let _ = f.read_to_end(&mut old);
    }
    let mut current = File::open(record.dir.join("log")).ok();
    let mut now = Vec::new();
    if let Some(f) = &mut current {
        let _ = f.read_to_end(&mut now);
    }
    old.extend_from_slice(&now);
    let shown = match a.tail {
        Some(n) => last_lines(&old, n),
        None => &old[..],
    };
    write_out(&mut out, shown)?;
    if !a.follow {
        return Ok(0);
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Read what was added to the file we have, then see whether the
        // log was rotated (a new file under the name) or the end came.
        let ended = record.life() != Life::Running;
        if let Some(f) = &mut current {
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => write_out(&mut out, buf.get(..n).unwrap_or_default())?,
                }
            }
        }
        let rotated = match (&current, std::fs::metadata(record.dir.join("log"))) {
            (Some(f), Ok(m)) => f.metadata().map(|o| o.ino() != m.ino()).unwrap_or(true),
            (None, Ok(_)) => true,
            (_, Err(_)) => false,
        };
        if rotated {
            current = File::open(record.dir.join("log")).ok();
            if let Some(f) = &mut current {
                let _ = f.seek(SeekFrom::Start(0));
            }
            continue;
        }
        if ended || !record.dir.exists() {
            return Ok(0);
        }
        std::thread::sleep(LOOK_AGAIN * 4);
    }
}

fn write_out(out: &mut impl Write, data: &[u8]) -> Result<()> {
    match out.write_all(data).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`| head`): nothing more to show.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => process::exit_now(0),
        Err(e) => Err(anyhow!("write the log: {e}")),
    }
}

/// The last `n` lines of `data` (a last line without a newline counts).
fn last_lines(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return data.get(i + 1..).unwrap_or_default();
            }
        }
    }
    data
}

/// Whether a foreground instance `name` (no record) is still listed.
fn listed(name: &str) -> bool {
    Registry::for_caller()
        .names()
        .unwrap_or_default()
        .iter()
        .any(|n| n == name)
}

/// Ends `name` as `stop` does; `Ok(false)` when it was not running.
fn stop_one(name: &str, grace: Duration) -> Result<bool> {
    let registry = Registry::for_caller();
    let record = Record::find(name);
    let ended = |limit: Duration| -> bool {
        match &record {
            Some(r) => r.wait_end(Some(limit)).is_some(),
            None => {
                let began = Instant::now();
                while listed(name) {
                    if began.elapsed() >= limit {
                        return false;
                    }
                    std::thread::sleep(LOOK_AGAIN);
                }
                true
            }
        }
    };
    let first = if grace.is_zero() {
        signal::SIGKILL
    } else {
        signal::SIGTERM
    };
    match registry.ask(name, &Request::Signal(first)) {
        Ok(_) => {}
        Err(RegistryError::NoSuchInstance(_)) => {
            return match &record {
                // Starting or ending: its keeper will settle it.
                Some(r) if r.life() == Life::Running => Ok(ended(Duration::from_secs(10))),
                Some(_) => Ok(false),
                None => bail!("stop: no instance {name:?}"),
            };
        }
        // Refused by a supervisor whose instance is ending by itself (its
        // init already gone): the end settles it.
        Err(e @ RegistryError::Refused { .. }) => {
            return if ended(Duration::from_secs(5)) {
                Ok(true)
            } else {
                Err(e.into())
            };
        }
        Err(e) => return Err(e.into()),
    }
    if ended(grace) {
        return Ok(true);
    }
    match registry.ask(name, &Request::Signal(signal::SIGKILL)) {
        Ok(_) | Err(RegistryError::NoSuchInstance(_)) => {}
        Err(e @ RegistryError::Refused { .. }) if !ended(Duration::from_secs(5)) => return Err(e.into()),
        Err(RegistryError::Refused { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // A killed instance's supervisor tears down and ends within moments.
    if !ended(Duration::from_secs(30)) {
        bail!("stop: {name:?} did not end within 30 s of KILL");
    }
    Ok(true)
}

/// `xvisor stop`.
pub fn stop(args: Vec<OsString>) -> Result<i32> {
    let Some(a) = parse(args, "stop")? else {
        out!("{STOP_HELP}");
        return Ok(0);
    };
    let grace = Duration::from_secs(a.time.unwrap_or(10));
    for name in &a.words {
        stop_one(name, grace)?;
        outln!("{name}");
    }
    Ok(0)
}

/// `xvisor wait`.
pub fn wait(args: Vec<OsString>) -> Result<i32> {
    let Some(a) = parse(args, "wait")? else {
        out!("{WAIT_HELP}");
        return Ok(0);
    };
    let records = a
        .words
        .iter()
        .map(|n| record_of(n, "wait"))
        .collect::<Result<Vec<_>>>()?;
    for record in records {
        match record.wait_end(None) {
            Some(Life::Exited(code)) => outln!("{code}"),
            _ => bail!("wait: {:?} ended without a status (its keeper was killed)", record.name),
        }
    }
    Ok(0)
}

/// `xvisor rm`.
pub fn rm(args: Vec<OsString>) -> Result<i32> {
    let Some(a) = parse(args, "rm")? else {
        out!("{RM_HELP}");
        return Ok(0);
    };
    for name in &a.words {
        let Some(record) = Record::find(name) else {
            if listed(name) {
                bail!("rm: {name:?} runs in the foreground and keeps nothing after its end (end it with 'xvisor stop {name}')");
            }
            bail!("rm: no instance {name:?} (see 'xvisor ps -a')");
        };
        if record.life() == Life::Running {
            if !a.force {
                bail!("rm: {name:?} is running: 'xvisor stop {name}' first, or 'xvisor rm -f {name}'");
            }
            stop_one(name, Duration::ZERO)?;
        }
        std::fs::remove_dir_all(&record.dir).with_context(|| format!("rm: remove {}", record.dir.display()))?;
        outln!("{name}");
    }
    Ok(0)
}

/// `xvisor inspect`.
pub fn inspect(args: Vec<OsString>) -> Result<i32> {
    let Some(a) = parse(args, "inspect")? else {
        out!("{INSPECT_HELP}");
        return Ok(0);
    };
    let mut all = Vec::new();
    for name in &a.words {
        all.push(inspect_one(name)?);
    }
    outln!("{:#}", Value::Array(all));
    Ok(0)
}

fn inspect_one(name: &str) -> Result<Value> {
    let registry = Registry::for_caller();
    let record = Record::find(name);
    let live = match registry.ask(name, &Request::Info) {
        Ok(lines) => Some(lines),
        Err(RegistryError::NoSuchInstance(_)) if record.is_some() => None,
        Err(e) => return Err(anyhow!("inspect: {e}")),
    };
    let mut out = json!({"name": name, "detached": record.is_some()});
    if let Some(r) = &record {
        let meta = r.meta();
        out["command"] = meta["command"].clone();
        out["options"] = meta["options"].clone();
        out["limits"] = meta["options"]["limits"].clone();
        out["policy"] = meta["options"]["policy"].clone();
        out["created"] = meta["created"].clone();
        out["started"] = meta["started"].clone();
        out["keeper_pid"] = meta["keeper_pid"].clone();
        out["log"] = json!({
            "path": r.dir.join("log"),
            "previous": r.dir.join("log.1"),
            "size_cap_bytes": meta["options"]["log_size_bytes"],
        });
        let (state, code) = match r.life() {
            Life::Running => ("running", Value::Null),
            Life::Exited(code) => ("exited", json!(code)),
            Life::Lost => ("exited", Value::Null),
        };
        out["state"] = json!(state);
        out["exit_code"] = code;
        let exit = r.exit();
        out["finished"] = exit.as_ref().map_or(Value::Null, |e| e["finished"].clone());
        out["ended_by"] = exit.as_ref().map_or(Value::Null, |e| e["ended_by"].clone());
    }
    if let Some(lines) = live {
        let info: Vec<(String, String)> = lines
            .iter()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |key: &str| info.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let number = |key: &str| get(key).and_then(|v| v.parse::<f64>().ok());
        out["state"] = json!(get("state").map(|s| if s == "stopped" { "exited".into() } else { s }));
        out["supervisor_pid"] = json!(number("supervisor_pid").map(|n| n as i64));
        out["init_pid"] = json!(number("init_pid").map(|n| n as i64));
        out["uptime_s"] = json!(number("uptime_s"));
        out["tasks"] = json!(number("tasks").map(|n| n as u64));
        if record.is_none() {
            out["command"] = json!(get("command"));
            out["limits"] = json!({
                "memory_bytes": number("memory_bytes").map(|n| n as u64),
                "pids": number("pids").map(|n| n as u64),
                "cpus": number("cpus"),
                "nofile": number("nofile").map(|n| n as u64),
                "timeout_s": number("timeout_s"),
            });
            out["policy"] = json!({"profile": get("profile")});
        } else if let Some(meta) = record.as_ref().map(|r| r.meta()) {
            out["supervisor_pid"] = meta["supervisor_pid"].clone();
        }
        out["pids"] = json!(xvisor_oci::runtime::container_pids(name).unwrap_or_default());
        let tasks = registry.ask(name, &Request::Tasks).unwrap_or_default();
        out["processes"] = tasks
            .iter()
            .filter_map(|l| TaskRow::decode(l))
            .filter(|t| t.is_process())
            .map(
                |t| json!({"pid": t.pid, "ppid": t.ppid, "state": t.state, "threads": t.threads, "command": t.command}),
            )
            .collect();
    } else {
        out["pids"] = json!([]);
        if let Some(meta) = record.as_ref().map(|r| r.meta()) {
            out["supervisor_pid"] = meta["supervisor_pid"].clone();
        }
    }
    Ok(out)
}

/// Ended detached instances, for `xvisor ps -a`: name, state, exit
/// status (if known) and command.
pub fn exited() -> Vec<(String, String, Option<i32>, String)> {
    let names = Registry::for_caller().names().unwrap_or_default();
    Record::all()
        .into_iter()
        .filter(|r| !names.contains(&r.name))
        .filter_map(|r| {
            let code = match r.life() {
                Life::Running => return None,
                Life::Exited(code) => Some(code),
                Life::Lost => None,
            };
            let command = r.meta()["command"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            Some((r.name, "exited".to_string(), code, command))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn the_log_never_passes_its_cap() {
        let dir = std::env::temp_dir().join(format!("xvisor-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = LogWriter::create(&dir, 4096).unwrap();
        for i in 0..1000 {
            log.write(format!("line {i:05}\n").as_bytes());
        }
        drop(log);
        let current = std::fs::read(dir.join("log")).unwrap();
        let previous = std::fs::read(dir.join("log.1")).unwrap();
        assert!(current.len() <= 4096 && previous.len() == 4096);
        let all = [previous, current].concat();
        assert!(String::from_utf8_lossy(&all).ends_with("line 00999\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
