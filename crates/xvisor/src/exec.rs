//! `xvisor exec NAME`: another program in a running instance. The
//! session itself (the request, stdio handed over, signals passed on, the
//! exit status) is [`xvisor_oci::runtime::exec`]'s, shared with the OCI
//! `exec`.

use std::ffi::OsString;
use std::os::fd::AsFd;

use anyhow::{anyhow, bail, Context, Result};
use xvisor_instance::exec::ExecRequest;
use xvisor_oci::runtime::container_pids;
use xvisor_oci::runtime::exec::{passed_descriptors, run_detached, run_session, Hooks};
use xvisor_sys::event;

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

/// `UID[:GID]` (numbers; the group defaults to the uid's number).
pub fn parse_user(text: &str) -> Result<(u32, u32)> {
    xvisor_image::user::numeric_ids(text).ok_or_else(|| anyhow!("--user {text:?}: give UID[:GID] as numbers"))
}

/// `KEY=VALUE`.
pub fn parse_env(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--env {text:?}: give KEY=VALUE"),
    }
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
                out!("{HELP}");
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
    Ok(run_session(&name, &request, &fds, hooks)?)
}

/// `-u USER[:GROUP]` for a running instance: numbers as they are, names
/// from the instance's own account files
/// ([`xvisor_image::user::resolve_in_processes`]).
fn resolve_user(name: &str, spec: &str) -> Result<(u32, u32)> {
    if let Ok(ids) = parse_user(spec) {
        return Ok(ids);
    }
    let pids = container_pids(name).map_err(|e| anyhow!("exec: {}", e.chain()))?;
    match xvisor_image::user::resolve_in_processes(&pids, spec) {
        Ok(u) => Ok((u.uid, u.gid)),
        Err(e) => bail!("exec: {e}"),
    }
}
