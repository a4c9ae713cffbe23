//! The OCI runtime command line (runc's commands and flags), so that
//! podman, containerd and Docker can run containers in xvisor instances.
//!
//! `create` forks a detached supervisor for the container: a new session,
//! holding the standard descriptors `create` was given (they are the
//! container's) and nothing else of the caller's. The supervisor creates
//! the instance, records the container's state under `--root`, and waits on
//! the instance's control socket for `start`; it then serves the instance
//! to its end and exits with the guest's status, which is why its pid is
//! the container's pid for engines (they wait for it). `kill`, `state`,
//! `ps` and `start` talk to it over its control socket; `delete` kills it
//! if needed and removes every trace.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use xvisor_instance::exec::{ExecRequest, MAX_PRESERVED_FDS};
use xvisor_instance::registry::{Registry, RegistryError, Request};
use xvisor_instance::{Instance, Outcome, StartWait};
use xvisor_oci::state::{now_rfc3339, process_start_time, program_ended, supervisor_alive};
use xvisor_oci::{ContainerState, StateStore, Status, StoredHook};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{event, signal};

pub const HELP: &str = "\
xvisor as an OCI runtime: runc's command line, for podman, containerd,
Docker and Kubernetes (see docs/oci.md).

Usage: xvisor [GLOBAL OPTIONS] COMMAND [OPTIONS] ID

Commands:
  create ID     create a container from a bundle (--bundle DIR, default .);
                it waits, created, for 'start'
  start ID      start a created container's program
  run ID        create and start; wait for the end unless --detach
  state ID      print the container's state as OCI JSON
  kill ID [SIG] send a signal (name or number; default TERM)
  pause ID      freeze every process of a running container
  resume ID     thaw a paused container
  delete ID     remove a stopped (or created) container; --force kills first
  ps ID         the container's processes (--format json: host pids)
  list          the containers under --root (--format json, -q)
  features      what this runtime supports, as JSON
  spec          write a default config.json (--bundle DIR)
  exec ID [CMD] run another process in a running container

Global options (before COMMAND):
      --root DIR           state directory (default /run/xvisor-oci as root,
                           $XDG_RUNTIME_DIR/xvisor-oci otherwise)
      --log FILE           also write errors to FILE
      --log-format FMT     text (default) or json
      --debug              more messages in the log
      --systemd-cgroup     systemd's cgroup driver: each container in a
                           transient scope systemd makes (cgroupsPath
                           SLICE:PREFIX:NAME), with delegation

create / run options:
  -b, --bundle DIR         the bundle (config.json and the root) (default .)
      --pid-file FILE      write the container's pid (its supervisor) here
      --console-socket SOCK
                           with process.terminal: send the terminal's
                           master side to this Unix socket (SCM_RIGHTS)
      --preserve-fds N     pass descriptors 3 .. 3+N-1 into the container
      --no-pivot, --no-new-keyring
                           accepted (xvisor always pivots; keyrings are not
                           reachable from an instance)
  -d, --detach             run: do not wait for the end

exec options (then ID, then the command unless --process):
  -p, --process FILE       the process as JSON (config.json's process)
  -d, --detach             do not wait: a waiter process (in --pid-file)
                           exits with the program's status
      --pid-file FILE      write the waiter's pid (detached) or our own
      --console-socket SOCK
                           with --tty: send the terminal's master here
  -t, --tty                give the process a terminal
  -e, --env KEY=VALUE      set a variable (repeatable)
      --cwd DIR            working directory
  -u, --user UID[:GID]     user and group
      --additional-gids G  supplementary groups (repeatable, or G1,G2)
  -c, --cap CAP            add a capability (repeatable; inside the
                           container's user namespace, like all of them)
      --no-new-privs       set no_new_privs for this process (otherwise
                           as the container's process.noNewPrivileges)
      --preserve-fds N     pass descriptors 3 .. 3+N-1 too

Exit status: 0 on success, 1 when the command failed; 'run' without
--detach: the program's own (128+N if killed by signal N).
";

/// Commands that only exist on the OCI command line.
pub const OCI_ONLY_COMMANDS: &[&str] = &[
    "create", "start", "state", "delete", "list", "features", "spec", "pause", "resume",
];

/// Global options of runc's command line, which come before the command.
pub const GLOBAL_OPTIONS: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--debug",
    "--systemd-cgroup",
    "--rootless",
];

/// The options given before the command.
#[derive(Debug, Clone)]
struct Global {
    root: PathBuf,
    log: Option<PathBuf>,
    log_json: bool,
    debug: bool,
    /// systemd's cgroup driver: each container runs in a transient scope
    /// named by its `cgroupsPath` (`SLICE:PREFIX:NAME`).
    systemd_cgroup: bool,
}

impl Global {
    fn store(&self) -> StateStore {
        StateStore::at(&self.root)
    }

    /// One line on stderr, and in `--log` as runc writes it.
    fn error(&self, message: &str) {
        let message = crate::plain(message);
        eprintln!("xvisor: {message}");
        self.log("error", &message);
    }

    /// Warns, in the log, of each property runtime-spec does not define
    /// that `source` (config.json, --process) had and that was ignored.
    fn log_ignored(&self, source: &str, ignored: &[String]) {
        for property in ignored {
            self.log(
                "warning",
                &format!("{source}: {property}: not defined by runtime-spec, ignored"),
            );
        }
    }

    fn log(&self, level: &str, message: &str) {
        let Some(path) = &self.log else { return };
        let line = if self.log_json {
            format!("{}\n", json!({"level": level, "msg": message, "time": now_rfc3339()}))
        } else {
            format!("{} {level}: {message}\n", now_rfc3339())
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// A warning on stderr and in `--log`; the command goes on.
    fn warn(&self, message: &str) {
        let message = crate::plain(message);
        eprintln!("xvisor: warning: {message}");
        self.log("warning", &message);
    }

    fn debug(&self, message: &str) {
        if self.debug {
            self.log("debug", message);
        }
    }
}

fn default_root() -> PathBuf {
    if process::geteuid() == 0 {
        return PathBuf::from("/run/xvisor-oci");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("xvisor-oci"),
        None => std::env::temp_dir().join(format!("xvisor-oci-{}", process::geteuid())),
    }
}

/// Whether `xvisor COMMAND ARGS` (a command xvisor also has of its own:
/// run, ps, kill, exec) is meant for the OCI command line. Called when no
/// global option came first (containerd and Docker always pass `--root`;
/// podman passes none). What tells an engine's call from a person's is
/// what only an engine hands over, never a flag both forms share (`-d`,
/// `-t`, `-u`, `-e` mean the same to both):
///
/// - `run`: a bundle (`--bundle`/`-b`; runc's `run` flags that xvisor's own
///   `run` does not have, `--pid-file`, `--console-socket`, count too);
/// - `exec`: a process file (`--process`/`-p`), or `--pid-file` /
///   `--console-socket`, which an engine's exec always passes;
/// - `ps`, `kill`: a container id with state under the default root (or
///   runc's `--format` / `--all`).
pub fn wants_oci(command: &str, args: &[OsString]) -> bool {
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let has = |flags: &[&str]| {
        words
            .iter()
            .any(|w| flags.iter().any(|f| w == f || w.starts_with(&format!("{f}="))))
    };
    let known_id = words
        .iter()
        .filter(|w| !w.starts_with('-'))
        .any(|w| xvisor_oci::state::valid_id(w) && default_root().join(w).join("state.json").exists());
    match command {
        "run" => run_has_oci_flags(&words),
        "ps" => has(&["--format", "-f"]) || known_id,
        "kill" => has(&["--all", "-a"]) || known_id,
        "exec" => exec_has_oci_flags(&words),
        _ => OCI_ONLY_COMMANDS.contains(&command),
    }
}

/// Whether one of `oci_flags` comes among the leading options of `words`,
/// before the first operand or `--`; options in `with_value` take the next
/// word as their value.
fn oci_flag_before_operands(words: &[&str], oci_flags: &[&str], with_value: &[&str]) -> bool {
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let flag = word.split_once('=').map_or(*word, |(f, _)| f);
        if *word == "--" || !word.starts_with('-') {
            return false;
        }
        if oci_flags.contains(&flag) {
            return true;
        }
        if with_value.contains(word) {
            rest.next();
        }
    }
    false
}

/// What a forked helper (a detached supervisor, an exec waiter) wrote on
/// its report pipe before closing it or ending: at most 64 KiB, as text.
pub(crate) fn read_report(pipe: std::os::fd::BorrowedFd<'_>) -> std::io::Result<String> {
    let mut report = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match event::read(pipe, &mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if report.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&report).into_owned())
}

/// Whether `xvisor exec WORDS` names what only an engine passes (a process
/// file, a pid file, a console socket) before the id (a program's own
/// flags after it are not looked at).
fn exec_has_oci_flags(words: &[&str]) -> bool {
    const OCI_FLAGS: &[&str] = &["--process", "-p", "--pid-file", "--console-socket"];
    const WITH_VALUE: &[&str] = &[
        "-e",
        "--env",
        "-u",
        "--user",
        "-w",
        "--workdir",
        "--cwd",
        "--cap",
        "-c",
        "--additional-gids",
        "-g",
        "--preserve-fds",
    ];
    oci_flag_before_operands(words, OCI_FLAGS, WITH_VALUE)
}

/// Whether `xvisor run WORDS` names a bundle (or runc's flags xvisor's own
/// `run` does not have) before xvisor's own program would begin; `-d` is
/// both forms' and says nothing.
fn run_has_oci_flags(words: &[&str]) -> bool {
    /// xvisor run's options that take a value.
    const WITH_VALUE: &[&str] = &[
        "--rootfs",
        "--image",
        "-v",
        "--volume",
        "-e",
        "--env",
        "-w",
        "--workdir",
        "--user",
        "--hostname",
        "--name",
        "--net",
        "--network",
        "--memory",
        "--pids",
        "--cpus",
        "--nofile",
        "--timeout",
        "--profile",
        "--deny-syscall",
        "--trace",
        "--policy",
        "--learn",
        "--env-file",
        "--entrypoint",
        "--tmpfs",
        "--tmpfs-size",
        "--shm-size",
        "--device",
        "-u",
        "--log-size",
        "--userns",
    ];
    const OCI_FLAGS: &[&str] = &[
        "--bundle",
        "-b",
        "--pid-file",
        "--console-socket",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
    ];
    oci_flag_before_operands(words, OCI_FLAGS, WITH_VALUE)
}

/// Entry point: `args` are everything after `xvisor` (global options
/// first, then the command).
pub fn main(args: Vec<OsString>) -> i32 {
    let mut global = Global {
        root: default_root(),
        log: None,
        log_json: false,
        debug: false,
        systemd_cgroup: false,
    };
    let mut rest = args.into_iter().peekable();
    // Global options, runc style, before the command.
    let mut command = None;
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy().to_string();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => rest
                    .next()
                    .map(|v| v.to_string_lossy().to_string())
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        let outcome: Result<(), String> = match flag.as_str() {
            "--root" => value("--root").map(|v| global.root = PathBuf::from(v)),
            "--log" => value("--log").map(|v| global.log = Some(PathBuf::from(v))),
            "--log-format" => value("--log-format").and_then(|v| match v.as_str() {
                "json" => {
                    global.log_json = true;
                    Ok(())
                }
                "text" => Ok(()),
                other => Err(format!("--log-format {other:?}: use text or json")),
            }),
            "--debug" => {
                global.debug = true;
                Ok(())
            }
            "--rootless" => value("--rootless").map(drop),
            "--systemd-cgroup" => {
                global.systemd_cgroup = true;
                Ok(())
            }
            _ => {
                command = Some(text);
                break;
            }
        };
        if let Err(message) = outcome {
            global.error(&message);
            return 1;
        }
    }
    let Some(command) = command else {
        eprint!("{HELP}");
        return 1;
    };
    let args: Vec<OsString> = rest.collect();
    global.debug(&format!("{command} {:?}", args));
    let result = match command.as_str() {
        "create" => create_command(&global, args, false),
        "run" => create_command(&global, args, true),
        "start" => start(&global, args),
        "state" => state(&global, args),
        "kill" => kill(&global, args),
        "delete" => delete(&global, args),
        "ps" => ps(&global, args),
        "list" => list(&global, args),
        "features" => features(args),
        "spec" => spec(args),
        "exec" => exec(&global, args),
        "pause" => pause(&global, args),
        "resume" => resume(&global, args),
        "checkpoint" | "restore" | "update" | "events" => Err(anyhow!("{command}: not supported by xvisor")),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(0)
        }
        other => Err(anyhow!("unknown command {other:?} (see 'xvisor oci --help')")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            global.error(&format!("{e:#}"));
            1
        }
    }
}

/// Positional words and flags of one command.
#[derive(Debug, Default)]
struct Parsed {
    words: Vec<String>,
    bundle: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    preserve_fds: u32,
    detach: bool,
    force: bool,
    all: bool,
    json: bool,
    quiet: bool,
    help: bool,
}

fn parse(command: &str, args: Vec<OsString>) -> Result<Parsed> {
    use lexopt::prelude::*;
    let mut out = Parsed::default();
    let mut p = lexopt::Parser::from_args(args);
    let text = |v: OsString, name: &str| {
        v.into_string()
            .map_err(|v| anyhow!("{command} {name}: not valid UTF-8: {v:?}"))
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => out.help = true,
            Short('b') | Long("bundle") => out.bundle = Some(PathBuf::from(p.value()?)),
            Long("pid-file") => out.pid_file = Some(PathBuf::from(p.value()?)),
            Long("console-socket") => out.console_socket = Some(PathBuf::from(p.value()?)),
            Long("preserve-fds") => {
                let v = text(p.value()?, "--preserve-fds")?;
                out.preserve_fds = v
                    .parse()
                    .ok()
                    .filter(|n| *n <= 1024)
                    .ok_or_else(|| anyhow!("--preserve-fds {v:?}: give a number of descriptors, 0 to 1024"))?;
            }
            Long("no-pivot") | Long("no-new-keyring") | Long("no-subreaper") => {}
            Short('d') | Long("detach") => out.detach = true,
            Short('f') | Long("force") if command == "delete" => out.force = true,
            Short('a') | Long("all") => out.all = true,
            Short('f') | Long("format") => {
                out.json = match text(p.value()?, "--format")?.as_str() {
                    "json" => true,
                    "table" => false,
                    other => bail!("{command} --format {other:?}: use table or json"),
                }
            }
            Short('q') | Long("quiet") => out.quiet = true,
            Long("rootless") => {
                let _ = p.value()?;
            }
            Value(v) => out.words.push(text(v, "argument")?),
            other => return Err(anyhow!("{command}: {}", other.unexpected())),
        }
    }
    Ok(out)
}

fn one_id(p: &Parsed, command: &str) -> Result<String> {
    match p.words.first() {
        Some(id) => Ok(id.clone()),
        None => bail!("{command}: give a container id (see 'xvisor oci --help')"),
    }
}

/// `create` and `run`.
/// systemd's cgroup driver: the container's scope is made by systemd (in
/// the slice `cgroupsPath` names) and the instance's cgroups go below it;
/// an empty `cgroupsPath` gets `xvisor-ID.scope` in the manager's default
/// slice.
fn use_systemd_scope(container: &mut xvisor_oci::Container, id: &str) -> Result<()> {
    let scope = match container.systemd_scope.take() {
        Some(scope) => scope,
        None if container.spec.cgroup_path.is_none() => xvisor_confine::cgroup::ScopeRequest {
            unit: xvisor_confine::systemd::instance_scope_name(id, std::process::id()),
            slice: None,
        },
        None => {
            bail!("config.json: linux.cgroupsPath: with --systemd-cgroup it must be SLICE:PREFIX:NAME naming a scope")
        }
    };
    container.spec.cgroup_path = None;
    container.spec.systemd_scope = Some(scope);
    Ok(())
}

fn create_command(global: &Global, args: Vec<OsString>, run: bool) -> Result<i32> {
    let p = parse(if run { "run" } else { "create" }, args)?;
    if p.help {
        print!("{HELP}");
        return Ok(0);
    }
    let id = one_id(&p, "create")?;
    let bundle = std::path::absolute(p.bundle.clone().unwrap_or_else(|| PathBuf::from("."))).context("--bundle")?;
    let mut container = xvisor_oci::load_bundle(&bundle, &id)?;
    if let Some(maps) = &container.spec.id_maps {
        if !maps.writable_by(process::geteuid(), process::getegid()) {
            bail!(
                "config.json: linux.uidMappings: without root only the caller's own uid and gid can be mapped \
                 (one id each: mapping more needs newuidmap/newgidmap, which xvisor does not use)"
            );
        }
    }
    global.log_ignored("config.json", &container.ignored);
    if let Some(profile) = &container.spec.apparmor_profile {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled");
        if !enabled.is_ok_and(|e| e.trim() == "Y") {
            bail!("config.json: process.apparmorProfile {profile:?}: AppArmor is not enabled on this host");
        }
    }
    if global.systemd_cgroup {
        use_systemd_scope(&mut container, &id)?;
    }
    container.spec.preserve_fds = p.preserve_fds;
    if container.spec.tty && p.console_socket.is_none() && !run {
        bail!("config.json: process.terminal is true: create needs --console-socket");
    }
    if !container.spec.tty && p.console_socket.is_some() {
        bail!("--console-socket given but config.json's process.terminal is false");
    }
    for l in &container.rlimits {
        let (_, hard) = process::rlimit::get(l.resource).with_context(|| format!("read {}", l.name))?;
        if l.hard > hard {
            bail!(
                "config.json: process.rlimits: {} hard limit {} is above this process's hard limit {} (raising it needs CAP_SYS_RESOURCE; e.g. podman --ulimit {}={hard}:{hard})",
                l.name,
                l.hard,
                hard,
                l.name.trim_start_matches("RLIMIT_").to_lowercase()
            );
        }
    }
    let store = global.store();
    store.reserve(&id)?;
    match fork_supervisor(
        global,
        &store,
        &id,
        &bundle,
        container,
        p.console_socket.as_deref(),
        run,
    ) {
        Ok(Pids {
            supervisor: pid,
            container,
        }) => {
            if let Some(file) = &p.pid_file {
                write_pid_file(file, container)?;
            }
            if !run {
                return Ok(0);
            }
            Registry::for_caller()
                .ask(&id, &Request::Start)
                .with_context(|| format!("start {id}"))?;
            if p.detach {
                return Ok(0);
            }
            let code = match process::wait_pid(pid, false) {
                Ok(Some((_, status))) => status.shell_code(),
                _ => store.exit_code(&id).unwrap_or(1),
            };
            let state = store.load(&id);
            let _ = store.remove(&id);
            if let Ok(state) = state {
                run_poststop(global, &state);
            }
            Ok(code)
        }
        Err(e) => {
            let _ = store.remove(&id);
            Err(e)
        }
    }
}

/// Writes the pid file whole or not at all (an engine may read it at once).
fn write_pid_file(file: &Path, pid: i32) -> Result<()> {
    let file = std::path::absolute(file).context("--pid-file")?;
    let tmp = file.with_extension("xvisor-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("--pid-file {}", file.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("--pid-file {}", file.display()))
}

/// A created container's processes on the host.
struct Pids {
    supervisor: i32,
    /// The state's `pid` (the program).
    container: i32,
}

/// Forks the container's supervisor and waits for its report: its pid and
/// the container's once the instance is created and its state recorded.
fn fork_supervisor(
    global: &Global,
    store: &StateStore,
    id: &str,
    bundle: &Path,
    container: xvisor_oci::Container,
    console_socket: Option<&Path>,
    foreground: bool,
) -> Result<Pids> {
    let (report_read, report_write) = event::pipe().context("create a pipe")?;
    match process::fork().context("fork the supervisor")? {
        Forked::Child => {
            drop(report_read);
            let code = supervise(
                global,
                store,
                id,
                bundle,
                container,
                console_socket,
                foreground,
                report_write,
            );
            process::exit_now(code)
        }
        Forked::Parent { pid, .. } => {
            drop(report_write);
            let report = read_report(report_read.as_fd()).map_err(|e| anyhow!("read the supervisor's report: {e}"))?;
            match report.strip_prefix("ok") {
                // The container's pid: its program's (see `supervise`), or
                // the supervisor's.
                Some(rest) => Ok(Pids {
                    supervisor: pid,
                    container: rest.trim().parse().ok().filter(|p| *p > 0).unwrap_or(pid),
                }),
                None => {
                    // It has ended or is ending: collect it.
                    let _ = process::wait_pid(pid, false);
                    match report.strip_prefix("error: ") {
                        Some(message) => Err(anyhow!("{}", message.trim_end())),
                        None => Err(anyhow!("the container's supervisor ended during creation")),
                    }
                }
            }
        }
    }
}

/// The container's supervisor. Returns its exit status.
#[allow(clippy::too_many_arguments)]
fn supervise(
    global: &Global,
    store: &StateStore,
    id: &str,
    bundle: &Path,
    container: xvisor_oci::Container,
    console_socket: Option<&Path>,
    foreground: bool,
    report: std::os::fd::OwnedFd,
) -> i32 {
    let fail = |message: String| -> i32 {
        let _ = event::write_all(report.as_fd(), format!("error: {message}\n").as_bytes());
        125
    };
    if !foreground {
        // Its own session: the caller's terminal and process group are not
        // the container's business.
        let _ = process::setsid();
    }
    let _ = process::set_process_name("xvisor-oci");
    let xvisor_oci::Container {
        mut spec,
        rlimits,
        oom_score_adj,
        umask,
        annotations,
        poststop,
        ignored: _,
        systemd_scope: _,
    } = container;
    let me = process::getpid();
    let mut state = ContainerState {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        pid: me,
        pid_start_time: process_start_time(me).unwrap_or_default(),
        process: 0,
        process_start_time: 0,
        created: now_rfc3339(),
        annotations,
        cgroup_paths: Vec::new(),
        owner: process::geteuid(),
        freezer: None,
        poststop: poststop.iter().map(StoredHook::from).collect(),
    };
    // What the hooks read on their standard input, at each point.
    for (status, target) in [
        (Status::Creating, &mut spec.hooks.state_creating),
        (Status::Created, &mut spec.hooks.state_created),
        (Status::Running, &mut spec.hooks.state_running),
    ] {
        *target = state_json(&state, status).to_string().into_bytes();
    }
    // They name the supervisor until the program exists (Instance::create).
    spec.hooks.state_pid = Some(me);
    let tty = spec.tty;
    if tty && console_socket.is_some() {
        // The container's standard streams are its terminal: the caller's
        // (an engine's pipes, read to end-of-file) must not stay open here.
        if let Ok(null) = xvisor_sys::fs::open_read_write("/dev/null", true) {
            for n in 0..3 {
                let _ = event::dup_onto(null.as_fd(), n);
            }
        }
    }
    if let Some(mask) = umask {
        process::set_umask(mask);
    }
    if let Some(adj) = oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            return fail(format!("config.json: process.oomScoreAdj {adj}: {e}"));
        }
    }
    for l in &rlimits {
        if let Err(e) = process::rlimit::set(l.resource, l.soft, l.hard) {
            return fail(format!(
                "config.json: process.rlimits: {} {}:{}: {e}",
                l.name, l.soft, l.hard
            ));
        }
    }
    let mut instance = match Instance::create(spec) {
        Ok(i) => i,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(socket) = console_socket {
        let Some(master) = instance.take_terminal() else {
            return fail("the instance has no terminal".into());
        };
        let sent = std::os::unix::net::UnixStream::connect(socket)
            .and_then(|s| xvisor_sys::socket::send(s.as_fd(), b"/dev/ptmx", Some(master.as_fd())));
        if let Err(e) = sent {
            return fail(format!("--console-socket {}: {e}", socket.display()));
        }
    }
    if instance.program_is_init() {
        state.process = instance.init_pid();
        state.process_start_time = process_start_time(state.process).unwrap_or_default();
    }
    state.cgroup_paths = instance.cgroup_paths();
    state.freezer = instance.freezer_path();
    if let Err(e) = store.save(&state) {
        return fail(e.to_string());
    }
    let _ = event::write_all(report.as_fd(), format!("ok {}\n", state.process.max(0)).as_bytes());
    drop(report);
    let code = match instance.serve_until_started() {
        Ok(StartWait::Started) => {
            if let Err(e) = instance.confine_supervisor() {
                global.error(&e.to_string());
                let _ = instance.signal(signal::SIGKILL);
            }
            match instance.wait() {
                Ok(outcome) => exit_code_of(&outcome),
                Err(e) => {
                    global.error(&e.to_string());
                    e.exit_code()
                }
            }
        }
        Ok(StartWait::Killed(n)) => 128 + n,
        Ok(StartWait::Vanished) => 137,
        Err(e) => {
            global.error(&e.to_string());
            e.exit_code()
        }
    };
    let _ = store.record_exit(id, code);
    code
}

fn exit_code_of(outcome: &Outcome) -> i32 {
    outcome.exit_code()
}

/// The container's state, its status found from the supervisor.
fn status_of(store: &StateStore, id: &str) -> Result<(ContainerState, Status)> {
    let state = store.load(id)?;
    // Stopped once the program has ended, as engines expect (they reap it,
    // then ask), even while the supervisor still tears the instance down.
    if !supervisor_alive(&state) || program_ended(&state) == Some(true) {
        return Ok((state, Status::Stopped));
    }
    let status = match Registry::for_caller().ask(id, &Request::Info) {
        Ok(lines) => {
            let value = lines
                .iter()
                .find_map(|l| l.strip_prefix("state\t"))
                .unwrap_or_default()
                .to_string();
            match value.as_str() {
                "creating" => Status::Creating,
                "created" => Status::Created,
                "running" if is_frozen(&state) => Status::Paused,
                "running" => Status::Running,
                _ => Status::Stopped,
            }
        }
        // Alive but without its control socket: tearing down.
        Err(RegistryError::NoSuchInstance(_)) => Status::Stopped,
        // A supervisor killed while answering closes its socket during its
        // exit, before it becomes a zombie: the reset is its death, seen
        // early.
        Err(e @ RegistryError::NoAnswer { .. }) => {
            if ends_within(&state, Duration::from_secs(1)) {
                Status::Stopped
            } else {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok((state, status))
}

/// Whether the container's processes are frozen (`pause`).
fn is_frozen(state: &ContainerState) -> bool {
    state
        .freezer
        .as_deref()
        .is_some_and(|dir| xvisor_confine::cgroup::frozen(dir) == Some(true))
}

/// The container's freezer cgroup, or why it has none.
fn freezer_of<'a>(state: &'a ContainerState, command: &str) -> Result<&'a Path> {
    state.freezer.as_deref().ok_or_else(|| {
        anyhow!(
            "{command} {}: the container has no freezer cgroup (it could not be made: cgroups need root or a delegated cgroup)",
            state.id
        )
    })
}

/// How long `pause` waits for every process to stop.
const FREEZE_PATIENCE: Duration = Duration::from_secs(5);

fn pause(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("pause", args)?;
    let id = one_id(&p, "pause")?;
    let (state, status) = status_of(&global.store(), &id)?;
    match status {
        Status::Running => {}
        Status::Paused => bail!("container {id:?} is already paused"),
        other => bail!("cannot pause container {id:?}: it is {}, not running", other.name()),
    }
    let dir = freezer_of(&state, "pause")?;
    xvisor_confine::cgroup::freeze(dir, FREEZE_PATIENCE).with_context(|| format!("pause {id}"))?;
    Ok(0)
}

fn resume(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("resume", args)?;
    let id = one_id(&p, "resume")?;
    let (state, status) = status_of(&global.store(), &id)?;
    if status != Status::Paused {
        bail!("cannot resume container {id:?}: it is {}, not paused", status.name());
    }
    let dir = freezer_of(&state, "resume")?;
    xvisor_confine::cgroup::set_frozen(dir, false).with_context(|| format!("resume {id}"))?;
    Ok(0)
}

/// Kills every process left in a paused container's freezer cgroup and
/// thaws it, so that they take their SIGKILL and the cgroups empty.
fn kill_frozen(state: &ContainerState) {
    let Some(dir) = state.freezer.as_deref() else { return };
    if xvisor_confine::cgroup::frozen(dir) != Some(true) {
        return;
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = process::kill(pid, signal::SIGKILL);
    }
    let _ = xvisor_confine::cgroup::set_frozen(dir, false);
}

/// Runs the `poststop` hooks; a failure is only a warning (runtime-spec).
fn run_poststop(global: &Global, state: &ContainerState) {
    if state.poststop.is_empty() {
        return;
    }
    let stopped = state_json(state, Status::Stopped).to_string().into_bytes();
    for stored in &state.poststop {
        let hook = xvisor_instance::hooks::Hook::from(stored);
        if let Err(e) = xvisor_instance::hooks::run(&hook, &stopped) {
            global.warn(&e.to_string());
        }
    }
}

/// Whether the container's supervisor is gone (or a zombie) within `limit`.
fn ends_within(state: &ContainerState, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while supervisor_alive(state) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn start(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("start", args)?;
    let id = one_id(&p, "start")?;
    let (_, status) = status_of(&global.store(), &id)?;
    match status {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        other => bail!("cannot start a container in the {} state", other.name()),
    }
    Registry::for_caller().ask(&id, &Request::Start).map_err(|e| match e {
        RegistryError::Refused { message, .. } => anyhow!("start {id}: {message}"),
        other => anyhow!(other),
    })?;
    Ok(0)
}

/// `exec`: a second process in a running container (see crate::exec).
fn exec(global: &Global, args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut request = ExecRequest::default();
    let mut process_file: Option<PathBuf> = None;
    let mut detach = false;
    let mut pid_file: Option<PathBuf> = None;
    let mut console_socket: Option<PathBuf> = None;
    let mut id = None;
    let mut groups: Vec<u32> = Vec::new();
    let text = |v: OsString, name: &str| {
        v.into_string()
            .map_err(|v| anyhow!("exec {name}: not valid UTF-8: {v:?}"))
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(0);
            }
            Short('p') | Long("process") => process_file = Some(PathBuf::from(p.value()?)),
            Short('d') | Long("detach") => detach = true,
            Long("pid-file") => pid_file = Some(PathBuf::from(p.value()?)),
            Long("console-socket") => console_socket = Some(PathBuf::from(p.value()?)),
            Short('t') | Long("tty") => request.tty = true,
            Short('e') | Long("env") => request.env.push(crate::exec::parse_env(&text(p.value()?, "--env")?)?),
            Long("cwd") => request.workdir = Some(text(p.value()?, "--cwd")?),
            Short('u') | Long("user") => request.user = Some(crate::exec::parse_user(&text(p.value()?, "--user")?)?),
            Short('g') | Long("additional-gids") => {
                for g in text(p.value()?, "--additional-gids")?.split(',') {
                    groups.push(
                        g.trim()
                            .parse()
                            .ok()
                            .filter(|g| *g != u32::MAX)
                            .ok_or_else(|| anyhow!("exec --additional-gids {g:?}: give group numbers"))?,
                    );
                }
            }
            Short('c') | Long("cap") => {
                let name = text(p.value()?, "--cap")?;
                request.add_capabilities.push(
                    xvisor_oci::capability_number(&name)
                        .ok_or_else(|| anyhow!("exec --cap {name}: not a capability"))?,
                );
            }
            Long("no-new-privs") => request.no_new_privileges = Some(true),
            Long("apparmor") | Long("process-label") => {
                bail!("exec: AppArmor profiles and SELinux labels are not supported")
            }
            Long("preserve-fds") => {
                let v = text(p.value()?, "--preserve-fds")?;
                request.preserve_fds = v.parse().ok().filter(|n| *n <= MAX_PRESERVED_FDS).ok_or_else(|| {
                    anyhow!("exec --preserve-fds {v:?}: give a number of descriptors, 0 to {MAX_PRESERVED_FDS}")
                })?;
            }
            Value(v) => {
                id = Some(text(v, "ID")?);
                request.argv = p.raw_args()?.map(|a| text(a, "argument")).collect::<Result<Vec<_>>>()?;
                if request.argv.first().map(String::as_str) == Some("--") {
                    request.argv.remove(0);
                }
                break;
            }
            other => return Err(anyhow!("exec: {}", other.unexpected())),
        }
    }
    let Some(id) = id else {
        bail!("exec: give a container id (see 'xvisor oci --help')");
    };
    if !groups.is_empty() {
        request.additional_gids = Some(groups);
    }
    if let Some(file) = &process_file {
        // runc's meaning: the process file says everything about the
        // process; the flags above that describe it do not apply.
        let text = std::fs::read_to_string(file).with_context(|| format!("--process {}", file.display()))?;
        let process = xvisor_oci::parse_process(&text).with_context(|| format!("--process {}", file.display()))?;
        global.log_ignored("--process", &process.ignored);
        request = ExecRequest {
            argv: process.argv,
            env: process.env,
            replace_env: true,
            workdir: Some(process.cwd),
            user: Some((process.uid, process.gid)),
            additional_gids: Some(process.additional_gids),
            capabilities: process.capabilities,
            add_capabilities: request.add_capabilities,
            rlimits: process.rlimits.iter().map(|l| (l.resource, l.soft, l.hard)).collect(),
            umask: process.umask,
            tty: process.terminal,
            preserve_fds: request.preserve_fds,
            no_new_privileges: Some(process.no_new_privileges || request.no_new_privileges == Some(true)),
            apparmor_profile: process.apparmor_profile,
        };
    } else if request.argv.is_empty() {
        bail!("exec: give a command to run (or --process FILE)");
    }
    if request.tty && console_socket.is_none() {
        bail!("exec: a terminal (--tty, or process.terminal) needs --console-socket");
    }
    if !request.tty && console_socket.is_some() {
        bail!("exec: --console-socket given without a terminal (--tty)");
    }
    let (_, status) = status_of(&global.store(), &id)?;
    match status {
        Status::Running => {}
        other => bail!("cannot exec in container {id:?}: it is {}, not running", other.name()),
    }
    let fds = crate::exec::passed_descriptors(request.preserve_fds)?;
    if detach {
        let waiter = crate::exec::run_detached(&id, &request, &fds, console_socket.as_deref())?;
        if let Some(file) = &pid_file {
            write_pid_file(file, waiter)?;
        }
        return Ok(0);
    }
    let mut on_started = |_host_pid: i32| -> Result<()> {
        match &pid_file {
            Some(file) => write_pid_file(file, process::getpid()),
            None => Ok(()),
        }
    };
    let hooks = crate::exec::Hooks {
        console_socket: console_socket.as_deref(),
        relay: false,
        on_started: &mut on_started,
    };
    crate::exec::run_session(&id, &request, &fds, hooks)
}

fn state_json(state: &ContainerState, status: Status) -> serde_json::Value {
    json!({
        "ociVersion": "1.2.0",
        "id": state.id,
        "status": status.name(),
        "pid": match status {
            Status::Stopped => 0,
            _ if state.process > 0 => state.process,
            _ => state.pid,
        },
        "bundle": state.bundle,
        "rootfs": state.bundle.join("rootfs"),
        "created": state.created,
        "owner": "",
        "annotations": state.annotations,
    })
}

fn state(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("state", args)?;
    let id = one_id(&p, "state")?;
    let (state, status) = status_of(&global.store(), &id)?;
    println!("{}", serde_json::to_string_pretty(&state_json(&state, status))?);
    Ok(0)
}

fn kill(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("kill", args)?;
    let id = one_id(&p, "kill")?;
    let signal = match p.words.get(1) {
        None => signal::SIGTERM,
        Some(s) => signal::by_name(s).with_context(|| format!("kill: {s:?} is not a signal (TERM, KILL, 15 …)"))?,
    };
    let (state, status) = status_of(&global.store(), &id)?;
    if status == Status::Stopped {
        // `--all` asks that no process be left: already true. (containerd's
        // shim sends it when it cleans up after a container's end.) A
        // signal for the program itself cannot be delivered; the words
        // "container not running" are what engines recognise.
        if p.all {
            return Ok(0);
        }
        bail!("container {id:?}: container not running");
    }
    let sent = Registry::for_caller().ask(&id, &Request::Signal(signal));
    if signal == signal::SIGKILL && status == Status::Paused {
        // Frozen processes take the kill once thawed (other signals wait
        // for `resume`, as they would for a stopped process).
        if let Some(dir) = state.freezer.as_deref() {
            let _ = xvisor_confine::cgroup::set_frozen(dir, false);
        }
    }
    match sent {
        Ok(_) => Ok(0),
        // The control socket is gone or stuck: the supervisor itself.
        Err(_) if supervisor_alive(&state) => {
            process::kill(state.pid, signal)
                .with_context(|| format!("signal the container's supervisor {}", state.pid))?;
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

fn delete(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("delete", args)?;
    let id = one_id(&p, "delete")?;
    let store = global.store();
    let (state, status) = match status_of(&store, &id) {
        Ok(s) => s,
        Err(e) => {
            // A directory without readable state (a create that died half
            // way) goes too with --force.
            if p.force && store.dir(&id).is_ok_and(|d| d.exists()) {
                store.remove(&id)?;
                return Ok(0);
            }
            // Forcing the deletion of what is not there succeeds, as with
            // runc: engines clean up that way after a failed create.
            if p.force && store.dir(&id).is_ok_and(|d| !d.exists()) {
                return Ok(0);
            }
            return Err(e);
        }
    };
    if matches!(status, Status::Running | Status::Paused) && !p.force {
        bail!(
            "cannot delete container {id:?}: it is {} (stop it, or use --force)",
            status.name()
        );
    }
    if supervisor_alive(&state) {
        let _ = process::kill(state.pid, signal::SIGKILL);
    }
    // The supervisor is gone (a zombie until its parent collects it) …
    let ended = ends_within(&state, Duration::from_secs(10));
    // … and a paused instance's processes hold their kill until thawed.
    kill_frozen(&state);
    if !ended {
        bail!("the container's supervisor {} did not end", state.pid);
    }
    // … and its watchdog removes the cgroups once their processes are gone.
    if !state.cgroup_paths.is_empty() {
        let _ = xvisor_confine::cgroup::remove_dirs(&state.cgroup_paths, Duration::from_secs(10));
        if let Some(left) = state.cgroup_paths.iter().find(|p| p.exists()) {
            bail!("cgroup {} is still there", left.display());
        }
    }
    store.remove(&id)?;
    run_poststop(global, &state);
    Ok(0)
}

/// Host pids of the container's processes: its init and every
/// descendant (read from `/proc/PID/stat`, which any user may read, unlike
/// the namespace links of an undumpable init).
pub(crate) fn container_pids(id: &str) -> Result<Vec<i32>> {
    let info = Registry::for_caller().ask(id, &Request::Info)?;
    let init: i32 = info
        .iter()
        .find_map(|l| l.strip_prefix("init_pid\t"))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("container {id:?} did not say its init pid"))?;
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut pids = vec![init];
    let mut i = 0;
    while let Some(&parent) = pids.get(i) {
        pids.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn ps(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("ps", args)?;
    let id = one_id(&p, "ps")?;
    let (_, status) = status_of(&global.store(), &id)?;
    let pids = if status == Status::Stopped {
        Vec::new()
    } else {
        container_pids(&id)?
    };
    if p.json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    println!("{:>8} CMD", "PID");
    for pid in pids {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        println!("{pid:>8} {}", crate::manage::printable(cmd.trim_end()));
    }
    Ok(0)
}

fn list(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("list", args)?;
    let store = global.store();
    let mut rows = Vec::new();
    for id in store.ids()? {
        if let Ok((state, status)) = status_of(&store, &id) {
            rows.push((state, status));
        }
    }
    if p.quiet {
        for (s, _) in &rows {
            println!("{}", s.id);
        }
    } else if p.json {
        let list: Vec<_> = rows.iter().map(|(s, st)| state_json(s, *st)).collect();
        println!("{}", serde_json::to_string(&list)?);
    } else {
        println!("{:<20} {:>8} {:<8} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
        for (s, st) in &rows {
            let pid = if *st == Status::Stopped { 0 } else { s.pid };
            println!(
                "{:<20} {:>8} {:<8} {:<40} {}",
                s.id,
                pid,
                st.name(),
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(0)
}

fn features(args: Vec<OsString>) -> Result<i32> {
    let _ = parse("features", args)?;
    let features = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate",
                          "slave", "rslave", "relatime", "strictatime", "noatime", "size", "mode"],
        "linux": {
            "namespaces": ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"],
            "capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                             "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
                             "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"],
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "dev.xvisor.profile": "default | strict: the system-call profile",
            "dev.xvisor.trace": "an absolute path: record trapped calls as JSON lines"
        }
    });
    println!("{}", serde_json::to_string_pretty(&features)?);
    Ok(0)
}

fn spec(args: Vec<OsString>) -> Result<i32> {
    let p = parse("spec", args)?;
    let bundle = p.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    let text = serde_json::to_string_pretty(&xvisor_oci::default_config(process::geteuid() != 0))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_told_apart_by_flags_before_the_program() {
        assert!(run_has_oci_flags(&["--bundle", "/b", "id"]));
        assert!(run_has_oci_flags(&["-d", "--pid-file", "p", "id"]));
        assert!(!run_has_oci_flags(&["--", "ls", "-d", "/"]));
        assert!(!run_has_oci_flags(&["ls", "-d", "/"]));
        assert!(!run_has_oci_flags(&["--net", "host", "sh", "-c", "x", "--detach"]));
        assert!(!run_has_oci_flags(&["-e", "-d", "sh"]));
        // -d is a person's detached run as much as runc's.
        assert!(!run_has_oci_flags(&["-d", "--name", "web", "--", "sleep", "9"]));
        assert!(!run_has_oci_flags(&["--detach", "--log-size", "4K", "sh"]));
    }

    #[test]
    fn exec_is_told_apart_by_flags_before_the_id() {
        assert!(exec_has_oci_flags(&["--process", "/p.json", "-d", "id"]));
        assert!(exec_has_oci_flags(&[
            "-e",
            "A=1",
            "--cwd",
            "/",
            "--pid-file",
            "p",
            "id",
            "ls"
        ]));
        assert!(exec_has_oci_flags(&["--tty", "--console-socket", "/s", "id", "sh"]));
        // A person's flags, whatever they share with runc's: not an engine.
        assert!(!exec_has_oci_flags(&["-d", "web", "ls"]));
        assert!(!exec_has_oci_flags(&[
            "-it", "-u", "nobody", "--cwd", "/tmp", "web", "--", "sh"
        ]));
        assert!(!exec_has_oci_flags(&["web", "ls", "-d"]));
        assert!(!exec_has_oci_flags(&["-e", "-d", "web", "sh"]));
    }
}
