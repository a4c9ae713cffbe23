//! `xvisor ps` and `xvisor kill`: the caller's running instances, seen and
//! signalled through their supervisors' control sockets.

use std::ffi::OsString;

use anyhow::{bail, Context, Result};
use xvisor_instance::client::{self, InstanceInfo, Listing, Unanswered};
use xvisor_instance::registry::{Registry, Request};
use xvisor_trap::render::json_string;

use crate::units::show_size;

pub const PS_HELP: &str = "\
List your running instances, or the tasks of one.

Usage: xvisor ps [-a] [--json]
       xvisor ps NAME [--json]

Without NAME: one line per running instance of yours — its name, the pid
of its supervisor on the host, how many tasks (processes and threads) it
has, its age, its system-call profile, its limits, its published ports
(-p: a PORTS column, when some instance has any) and its command. With
-a, also the detached instances ('xvisor run -d') that have ended and are
kept (log and exit status) until 'xvisor rm', with a STATUS column.

With NAME: the instance's task tree, one line per task, as the instance
sees them — pid, tid, parent pid, number of threads (on the process's own
line), state (running, waiting, stopped, zombie), the system call a
waiting task is blocked in, age and command line. The list is complete:
the supervisor follows every fork, clone and exec of the instance.

Control characters in what is shown are escaped (\\x1b, \\n, \\\\): a
command line is the guest's to choose.

Instances of other users are not listed (root sees only root's).

Options:
  -a, --all     also ended detached instances
      --json    machine-readable output
  -h, --help    show this text

Examples:
  xvisor run --name web -- python3 -m http.server &
  xvisor ps
  xvisor ps web
  xvisor ps web --json
";

pub const KILL_HELP: &str = "\
Send a signal to a running instance.

Usage: xvisor kill NAME [SIGNAL]

SIGNAL is a name (TERM, SIGTERM, hup …) or a number; the default is TERM.
KILL ends the whole instance at once. Any other signal goes to the
instance's main program (the one 'xvisor run' started), which may handle
it; STOP and CONT pause and resume it.

Examples:
  xvisor kill web
  xvisor kill web HUP
  xvisor kill web KILL
";

/// Options shared by `ps` and `kill`: positional words and `--json`.
struct Words {
    words: Vec<String>,
    json: bool,
    all: bool,
}

fn parse(args: Vec<OsString>, command: &str) -> Result<Option<Words>> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut out = Words {
        words: Vec::new(),
        json: false,
        all: false,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("json") if command == "ps" => out.json = true,
            Short('a') | Long("all") if command == "ps" => out.all = true,
            Value(v) => out.words.push(
                v.into_string()
                    .map_err(|v| anyhow::anyhow!("{command}: {v:?} is not valid text"))?,
            ),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Some(out))
}

/// `xvisor ps`. Returns the exit status.
pub fn ps(args: Vec<OsString>) -> Result<i32> {
    let Some(w) = parse(args, "ps")? else {
        out!("{PS_HELP}");
        return Ok(0);
    };
    let registry = Registry::for_caller();
    match w.words.as_slice() {
        [] => list(&registry, w.json, w.all),
        [name] => tasks(&registry, name, w.json),
        _ => bail!("ps: give at most one instance name (see 'xvisor ps --help')"),
    }
}

/// `xvisor kill`. Returns the exit status.
pub fn kill(args: Vec<OsString>) -> Result<i32> {
    let Some(w) = parse(args, "kill")? else {
        out!("{KILL_HELP}");
        return Ok(0);
    };
    let (name, signal) = match w.words.as_slice() {
        [name] => (name, xvisor_sys::signal::SIGTERM),
        [name, signal] => (
            name,
            xvisor_sys::signal::by_name(signal)
                .with_context(|| format!("kill: {signal:?} is not a signal (try TERM, KILL, HUP or 1 to 64)"))?,
        ),
        _ => bail!("kill: give an instance name and optionally a signal (see 'xvisor kill --help')"),
    };
    Registry::for_caller().ask(name, &Request::Signal(signal))?;
    Ok(0)
}

/// The LIMITS cell: memory, pids, cpus, nofile and timeout, as given.
fn limits(info: &InstanceInfo) -> String {
    let mut parts = Vec::new();
    if let Some(m) = info.get("memory_bytes").and_then(|m| m.parse().ok()) {
        parts.push(format!("memory={}", show_size(m)));
    }
    for (key, label) in [("pids", "pids"), ("cpus", "cpus"), ("nofile", "nofile")] {
        if let Some(v) = info.get(key) {
            parts.push(format!("{label}={v}"));
        }
    }
    if let Some(t) = info.get("timeout_s").and_then(|t| t.parse::<f64>().ok()) {
        parts.push(format!("timeout={}", show_age(t)));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn list(registry: &Registry, json: bool, all: bool) -> Result<i32> {
    let Listing {
        instances: infos,
        unanswered,
    } = client::running(registry)?;
    for problem in &unanswered {
        match problem {
            Unanswered::NotOurs(e) => eprintln!("xvisor: {}", crate::message::plain(&e.to_string())),
            Unanswered::Silent(e) => eprintln!("xvisor: {}", printable(&crate::message::plain(&e.to_string()))),
        }
    }
    let exited = if all { crate::detach::exited() } else { Vec::new() };
    if json {
        let mut items: Vec<String> = infos
            .iter()
            .map(|i| {
                let number = |key: &str| i.get(key).filter(|v| v.parse::<f64>().is_ok()).unwrap_or("null");
                let limits: Vec<String> = ["memory_bytes", "pids", "cpus", "nofile", "timeout_s"]
                    .iter()
                    .filter_map(|k| i.get(k).filter(|v| v.parse::<f64>().is_ok()).map(|v| format!("\"{k}\": {v}")))
                    .collect();
                let ports: Vec<String> = i
                    .get("ports")
                    .map(|p| p.split(',').map(json_string).collect())
                    .unwrap_or_default();
                format!(
                    "{{\"name\": {}, \"supervisor_pid\": {}, \"state\": {}, \"tasks\": {}, \"uptime_s\": {}, \"profile\": {}, \"limits\": {{{}}}, \"ports\": [{}], \"command\": {}}}",
                    json_string(i.get("name").unwrap_or("")),
                    number("supervisor_pid"),
                    json_string(i.get("state").unwrap_or("")),
                    number("tasks"),
                    number("uptime_s"),
                    json_string(i.get("profile").unwrap_or("")),
                    limits.join(", "),
                    ports.join(", "),
                    json_string(i.get("command").unwrap_or(""))
                )
            })
            .collect();
        for (name, status, code, command) in &exited {
            items.push(format!(
                "{{\"name\": {}, \"supervisor_pid\": null, \"state\": {}, \"exit_code\": {}, \"tasks\": 0, \"command\": {}}}",
                json_string(name),
                json_string(status),
                code.map_or_else(|| "null".to_string(), |c| c.to_string()),
                json_string(command)
            ));
        }
        outln!("[{}]", items.join(",\n "));
        return Ok(0);
    }
    let mut table = vec![["NAME", "PID", "TASKS", "UPTIME", "PROFILE", "LIMITS", "COMMAND"]
        .map(String::from)
        .to_vec()];
    if all {
        table[0].insert(1, "STATUS".into());
    }
    // Published ports (`-p`): a column only when some instance has any.
    let ports = infos.iter().any(|i| i.get("ports").is_some());
    if ports {
        let at = table[0].len() - 1;
        table[0].insert(at, "PORTS".into());
    }
    for i in &infos {
        let mut row = vec![
            i.get("name").unwrap_or("?").to_string(),
            i.get("supervisor_pid").unwrap_or("?").to_string(),
            i.get("tasks").unwrap_or("?").to_string(),
            i.get("uptime_s")
                .and_then(|u| u.parse().ok())
                .map_or_else(|| "?".into(), show_age),
            i.get("profile").unwrap_or("?").to_string(),
            limits(i),
            i.get("command").unwrap_or("").to_string(),
        ];
        if all {
            row.insert(1, "running".into());
        }
        if ports {
            let at = row.len() - 1;
            row.insert(at, i.get("ports").unwrap_or("-").to_string());
        }
        table.push(row);
    }
    for (name, status, code, command) in &exited {
        let status = match code {
            Some(code) => format!("{status} ({code})"),
            None => format!("{status} (?)"),
        };
        let mut cells = vec![name.as_str(), &status, "-", "0", "-", "-", "-", command.as_str()];
        if ports {
            cells.insert(cells.len() - 1, "-");
        }
        table.push(cells.iter().map(|c| c.to_string()).collect());
    }
    out!("{}", columns(&table));
    Ok(0)
}

fn tasks(registry: &Registry, name: &str, json: bool) -> Result<i32> {
    let rows = client::tasks(registry, name)?;
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"pid\": {}, \"tid\": {}, \"ppid\": {}, \"threads\": {}, \"state\": {}, \"call\": {}, \"uptime_s\": {:.3}, \"command\": {}}}",
                    r.pid,
                    r.tid,
                    r.ppid,
                    r.threads,
                    json_string(&r.state),
                    if r.call.is_empty() { "null".to_string() } else { json_string(&r.call) },
                    r.uptime_s,
                    json_string(&r.command)
                )
            })
            .collect();
        outln!(
            "{{\"name\": {}, \"tasks\": [{}]}}",
            json_string(name),
            items.join(",\n  ")
        );
        return Ok(0);
    }
    let mut table = vec![["PID", "TID", "PPID", "THREADS", "STATE", "CALL", "UPTIME", "COMMAND"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let indent = "  ".repeat(r.depth);
        let command = if r.is_process() {
            format!("{indent}{}", r.command)
        } else {
            format!("{indent}  {{thread}}")
        };
        table.push(vec![
            r.pid.to_string(),
            r.tid.to_string(),
            r.ppid.to_string(),
            if r.is_process() {
                r.threads.to_string()
            } else {
                "-".into()
            },
            r.state.clone(),
            if r.call.is_empty() { "-".into() } else { r.call.clone() },
            show_age(r.uptime_s),
            command,
        ]);
    }
    out!("{}", columns(&table));
    Ok(0)
}

pub(crate) use xvisor_instance::printable;

/// Left-aligned columns, the last one unpadded; every cell [`printable`].
fn columns(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|cell| printable(cell)).collect())
        .collect();
    let width = rows.first().map_or(0, Vec::len);
    let mut widths = vec![0; width];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// 0.4s, 12s, 5m02s, 3h07m, 2d04h.
fn show_age(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(show_age(0.42), "0.4s");
        assert_eq!(show_age(42.0), "42s");
        assert_eq!(show_age(302.0), "5m02s");
        assert_eq!(show_age(11_220.0), "3h07m");
        assert_eq!(show_age(187_200.0), "2d04h");
        assert_eq!(show_age(f64::NAN), "?");
    }

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["long".to_string(), "x".into(), "tail text".into()],
        ];
        assert_eq!(columns(&rows), "A     BB  C\nlong  x   tail text\n");
    }

    #[test]
    fn no_cell_reaches_the_terminal_raw() {
        let table = columns(&[vec!["A".into(), "B".into()], vec!["\u{1b}[2J".into(), "\u{1b}c".into()]]);
        assert!(!table.contains('\u{1b}'), "{table:?}");
        assert_eq!(table, "A        B\n\\x1b[2J  \\x1bc\n");
    }

    #[test]
    fn json_strings_escape_every_control_character() {
        let text = json_string("a\u{1b}]52;c;x\u{7}\u{7f}\u{9b}\"\\\n");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, "a\u{1b}]52;c;x\u{7}\u{7f}\u{9b}\"\\\n");
    }

    #[test]
    fn ps_and_kill_arguments() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(parse(args(&["web", "--json"]), "ps").unwrap().unwrap().json);
        assert!(parse(args(&["--help"]), "ps").unwrap().is_none());
        assert!(parse(args(&["web", "--json"]), "kill").is_err());
        assert!(kill(args(&["web", "NOPE"])).is_err());
        assert!(kill(args(&["web", "0"])).is_err());
        assert!(kill(args(&[])).is_err());
        assert!(ps(args(&["a", "b"])).is_err());
    }
}
