//! The OCI runtime command line (runc's commands and flags), so that
//! podman, containerd and Docker can run containers in xvisor instances:
//! runc-style arguments parsed, [`xvisor_oci::runtime`] called, its answer
//! printed.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use xvisor_instance::exec::{ExecRequest, MAX_PRESERVED_FDS};
use xvisor_oci::runtime::{
    self, default_root, state_json, CreateRequest, ExecCall, KillRequest, Log, RunMode, Runtime,
};
use xvisor_oci::state::now_rfc3339;
use xvisor_sys::{process, signal};

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
    /// The runtime these options describe.
    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            root: self.root.clone(),
            systemd_cgroup: self.systemd_cgroup,
            log: self,
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

    fn debug(&self, message: &str) {
        if self.debug {
            self.log("debug", message);
        }
    }
}

impl Log for Global {
    /// One line on stderr, and in `--log` as runc writes it.
    fn error(&self, message: &str) {
        let message = crate::message::plain(message);
        eprintln!("xvisor: {message}");
        self.log("error", &message);
    }

    /// A warning on stderr and in `--log`; the command goes on.
    fn warn(&self, message: &str) {
        let message = crate::message::plain(message);
        eprintln!("xvisor: warning: {message}");
        self.log("warning", &message);
    }

    fn record(&self, level: &str, message: &str) {
        self.log(level, message);
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
// Long: runc's global options, then one arm per command.
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
            out!("{HELP}");
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
fn create_command(global: &Global, args: Vec<OsString>, run: bool) -> Result<i32> {
    let p = parse(if run { "run" } else { "create" }, args)?;
    if p.help {
        out!("{HELP}");
        return Ok(0);
    }
    let request = CreateRequest {
        id: one_id(&p, "create")?,
        bundle: p.bundle.unwrap_or_else(|| PathBuf::from(".")),
        pid_file: p.pid_file,
        console_socket: p.console_socket,
        preserve_fds: p.preserve_fds,
    };
    let runtime = global.runtime();
    if !run {
        runtime.create(&request)?;
        return Ok(0);
    }
    let mode = if p.detach {
        RunMode::Detached
    } else {
        RunMode::Foreground
    };
    Ok(runtime.run(&request, mode)?)
}

fn pause(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("pause", args)?;
    global.runtime().pause(&one_id(&p, "pause")?)?;
    Ok(0)
}

fn resume(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("resume", args)?;
    global.runtime().resume(&one_id(&p, "resume")?)?;
    Ok(0)
}

fn start(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("start", args)?;
    global.runtime().start(&one_id(&p, "start")?)?;
    Ok(0)
}

/// `exec`: a second process in a running container.
// Long: one arm per flag of runc's exec.
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
                out!("{HELP}");
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
    let runtime = global.runtime();
    if let Some(file) = &process_file {
        // runc's meaning: the process file says everything about the
        // process; the flags above that describe it do not apply.
        let text = std::fs::read_to_string(file).with_context(|| format!("--process {}", file.display()))?;
        let process = xvisor_oci::parse_process(&text).with_context(|| format!("--process {}", file.display()))?;
        runtime.log_ignored("--process", &process.ignored);
        request = runtime::exec::request_from_process(process, &request);
    } else if request.argv.is_empty() {
        bail!("exec: give a command to run (or --process FILE)");
    }
    let call = ExecCall {
        id,
        request,
        detach,
        pid_file,
        console_socket,
    };
    Ok(runtime.exec(&call)?)
}

fn state(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("state", args)?;
    let id = one_id(&p, "state")?;
    let (state, status) = global.runtime().status(&id)?;
    outln!("{}", serde_json::to_string_pretty(&state_json(&state, status))?);
    Ok(0)
}

fn kill(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("kill", args)?;
    let id = one_id(&p, "kill")?;
    let signal = match p.words.get(1) {
        None => signal::SIGTERM,
        Some(s) => signal::by_name(s).with_context(|| format!("kill: {s:?} is not a signal (TERM, KILL, 15 …)"))?,
    };
    global.runtime().kill(&KillRequest { id, signal, all: p.all })?;
    Ok(0)
}

fn delete(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("delete", args)?;
    let id = one_id(&p, "delete")?;
    global.runtime().delete(&id, p.force)?;
    Ok(0)
}

fn ps(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("ps", args)?;
    let id = one_id(&p, "ps")?;
    let pids = global.runtime().processes(&id)?;
    if p.json {
        outln!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    outln!("{:>8} CMD", "PID");
    for pid in pids {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        outln!("{pid:>8} {}", xvisor_instance::printable(cmd.trim_end()));
    }
    Ok(0)
}

fn list(global: &Global, args: Vec<OsString>) -> Result<i32> {
    let p = parse("list", args)?;
    let rows = global.runtime().list()?;
    if p.quiet {
        for (s, _) in &rows {
            outln!("{}", s.id);
        }
    } else if p.json {
        let list: Vec<_> = rows.iter().map(|(s, st)| state_json(s, *st)).collect();
        outln!("{}", serde_json::to_string(&list)?);
    } else {
        outln!("{:<20} {:>8} {:<8} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
        for (s, st) in &rows {
            let pid = if *st == xvisor_oci::Status::Stopped { 0 } else { s.pid };
            outln!(
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
    outln!("{}", serde_json::to_string_pretty(&xvisor_oci::features())?);
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
