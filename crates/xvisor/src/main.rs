//! The `xvisor` command line.

#![forbid(unsafe_code)]

#[macro_use]
mod message;

mod cli;
mod detach;
mod exec;
mod hints;
mod image;
mod learn;
mod manage;
mod oci;
mod policy;
mod pool;
mod report;
mod run;
mod syscalls;
mod units;

use std::ffi::OsString;

use message::{plain, usage_error};

const HELP: &str = "\
xvisor: secure user-space process virtualization for Linux.

Runs unmodified programs in isolated instances: own namespaces, a read-only
view of the host's system directories (or a root directory of your own),
private /tmp and home, resource limits, and nothing left behind.

Usage: xvisor COMMAND [OPTIONS]

Commands:
  run        run a program in a new instance ('xvisor run --help');
             -d: in the background
  pool       keep instances built and waiting: start, ls, stop
             ('xvisor run --pool NAME' takes one)
  ps         list your running instances (-a: and ended detached ones),
             or one instance's tasks
  exec       run another program in a running instance (-it: a shell)
  logs       show a detached instance's output (-f: follow it)
  stop       stop an instance: TERM, then KILL after a grace period
  wait       wait for a detached instance to end, print its exit status
  inspect    everything about an instance, as JSON
  rm         remove what stays of an ended detached instance
  kill       send a signal to a running instance
  image      import, list, inspect and remove images ('xvisor image --help')
  create, start, state, delete, list, features, spec (and run, exec, ps,
             kill as an engine calls them: after --root, or with a bundle
             or process file): the OCI runtime ('xvisor oci --help')
  report     a run's trace as one HTML page ('xvisor run --report FILE'
             writes it at the run's end)
  syscalls   how each system call is treated under a profile
  policy     check a policy file, show the built-in profiles as files
  completions  a completion script: 'xvisor completions bash|zsh|fish'
  man        the manual page, every command's help ('xvisor man > xvisor.1')
  help       show this text, or a command's ('xvisor help run')

Options:
  -h, --help     show this text
  -V, --version  show the version
";

fn main() {
    // The cgroup watchdog of a supervisor that died, executed by itself
    // (see `xvisor_instance::remove_for_dead_supervisor`).
    // The port forwarder of `--net nat -p` (see `xvisor_instance::portfwd`).
    let mut args = std::env::args_os();
    match args.next() {
        Some(a) if a == xvisor_instance::WATCHDOG_PROGRAM_NAME => {
            xvisor_instance::remove_for_dead_supervisor(&args.collect::<Vec<_>>())
        }
        Some(a) if a == xvisor_instance::portfwd::PROGRAM_NAME => {
            xvisor_instance::portfwd::serve(&args.collect::<Vec<_>>())
        }
        _ => {}
    }
    // No descriptor opened later may take a standard number.
    if let Err(e) = xvisor_sys::process::ensure_standard_fds() {
        eprintln!("xvisor: cannot open /dev/null for missing standard descriptors: {e}");
        std::process::exit(125);
    }
    let code = dispatch(std::env::args_os().skip(1).collect());
    std::process::exit(code)
}

fn dispatch(mut args: Vec<OsString>) -> i32 {
    if args.is_empty() {
        eprint!("{HELP}");
        return 125;
    }
    // The OCI runtime command line: runc's global options come first (an
    // engine that passes none names a bundle, a process file or state
    // under the default root), and its commands that xvisor also has
    // (run, ps, kill, exec) are told apart by that (see oci::wants_oci).
    let first = args[0].to_str().unwrap_or("");
    let is_global = oci::GLOBAL_OPTIONS
        .iter()
        .any(|o| first == *o || first.starts_with(&format!("{o}=")));
    if is_global || oci::wants_oci(first, &args[1..]) || first == "oci" {
        if first == "oci" {
            args.remove(0);
        }
        return oci::main(args);
    }
    let command = args.remove(0);
    match command.to_str().unwrap_or("") {
        "run" if pool::wants_pool(&args) => pool::run(args),
        "run" => match run::parse(args) {
            Ok(Some(options)) => {
                // The trace's file and the report's, opened now (the
                // supervisor may create none once the guest runs).
                let record = if options.detach {
                    Ok(None)
                } else {
                    let beside_policy = options.learn.as_ref().filter(|_| options.report.is_none()).map(|l| {
                        match l.extension().and_then(|e| e.to_str()) {
                            Some("html") => l.with_extension("report.html"),
                            _ => l.with_extension("html"),
                        }
                    });
                    report::Target::open(
                        options.trace.as_deref(),
                        options.report.as_deref().or(beside_policy.as_deref()),
                        options.report_json.as_deref(),
                    )
                };
                let mut record = match record {
                    Ok(record) => record,
                    Err(e) => return usage_error(&e),
                };
                let policy_file = options.policy.clone();
                let learn = options.learn.clone();
                let stats = options.stats;
                let detached = options.detach.then(|| {
                    (
                        detach::options_json(&options),
                        options.log_size.unwrap_or(detach::DEFAULT_LOG_SIZE),
                        options.remove,
                    )
                });
                if let Some(name) = &options.name {
                    if let Err(e) = detach::check_name_free(name) {
                        return usage_error(&e);
                    }
                }
                match run::to_spec(options)
                    .and_then(|spec| Ok((spec, learn.map(|l| learn::Target::open(&l)).transpose()?)))
                {
                    Ok((spec, learn)) => match detached {
                        Some((options, log_size, remove)) => {
                            let d = detach::Detached {
                                spec,
                                learn,
                                stats,
                                options,
                                log_size,
                                remove,
                            };
                            detach::run(d).unwrap_or_else(|e| failure(&e))
                        }
                        None => {
                            let mut spec = spec;
                            if let Some(record) = record.as_mut() {
                                record.begin(&mut spec, policy_file.as_deref());
                            }
                            run::run(spec, learn, stats, record)
                        }
                    },
                    Err(e) => usage_error(&e),
                }
            }
            Ok(None) => {
                out!("{}", run::HELP);
                0
            }
            Err(e) => usage_error(&e),
        },
        "pool" => pool::main(args),
        "ps" => match manage::ps(args) {
            Ok(code) => code,
            Err(e) => failure(&e),
        },
        "kill" => match manage::kill(args) {
            Ok(code) => code,
            Err(e) => failure(&e),
        },
        "exec" => match exec::user_command(args) {
            Ok(code) => code,
            Err(e) => failure(&e),
        },
        "logs" => detach::logs(args).unwrap_or_else(|e| failure(&e)),
        "stop" => detach::stop(args).unwrap_or_else(|e| failure(&e)),
        "wait" => detach::wait(args).unwrap_or_else(|e| failure(&e)),
        "inspect" => detach::inspect(args).unwrap_or_else(|e| failure(&e)),
        "rm" => detach::rm(args).unwrap_or_else(|e| failure(&e)),
        "image" => image::main(args),
        "report" => report::main(args).unwrap_or_else(|e| usage_error(&e)),
        "policy" => policy::main(args),
        "syscalls" => match syscalls::main(args) {
            Ok(code) => code,
            Err(e) => usage_error(&e),
        },
        "help" | "-h" | "--help" => {
            match args.first().and_then(|a| a.to_str()).and_then(cli::find) {
                Some(command) => out!("{}", command.help),
                None => out!("{HELP}"),
            }
            0
        }
        "completions" => match args.first().and_then(|a| a.to_str()) {
            Some("-h" | "--help") => {
                out!("{}", cli::COMPLETIONS_HELP);
                0
            }
            Some(shell) if args.len() == 1 => match cli::completions(shell) {
                Some(script) => {
                    out!("{script}");
                    0
                }
                None => usage_error(&anyhow::anyhow!(
                    "completions: no script for {shell:?} (bash, zsh or fish)"
                )),
            },
            _ => usage_error(&anyhow::anyhow!("completions: name one shell: bash, zsh or fish")),
        },
        "man" => match args.first().and_then(|a| a.to_str()) {
            Some("-h" | "--help") => {
                out!("{}", cli::MAN_HELP);
                0
            }
            None => {
                out!("{}", cli::man(HELP, &version()));
                0
            }
            Some(other) => usage_error(&anyhow::anyhow!("man: unexpected argument {other:?}")),
        },
        "-V" | "--version" | "version" => {
            outln!("xvisor {}", version());
            0
        }
        other => {
            eprintln!(
                "xvisor: unknown command {other:?} (commands: run, pool, ps, exec, logs, stop, wait, inspect, rm, kill, image, report, syscalls, policy, completions, man, help)"
            );
            125
        }
    }
}

/// The version and the commit it was built from (build.rs; "unknown"
/// outside a git checkout).
fn version() -> String {
    format!("{} (commit {})", env!("CARGO_PKG_VERSION"), env!("XVISOR_COMMIT"))
}

/// A management command failed (no such instance, a bad argument): one
/// line, status 1.
/// A failure of xvisor itself (not of the guest's program): 125, as for
/// `run`, so a caller can tell it from the program's own status.
fn failure(e: &anyhow::Error) -> i32 {
    eprintln!("xvisor: {}", plain(&format!("{e:#}")));
    125
}
