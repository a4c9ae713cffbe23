//! `--trace`: one record per trapped call — time, instance pid and tid,
//! name, decoded arguments, decision, result, handler latency — as JSON
//! lines (to a file) or strace-like text (to stderr).
//!
//! The JSON lines are versioned by [`VERSION`]: `xvisor run` in the
//! foreground begins its trace with a header (`{"trace": VERSION, …}`:
//! command, profile, policy, limits) and ends it with an `"end"` record
//! (status, outcome, calls trapped); a trace without a header is of
//! version 1 (or from `run -d`, an OCI runtime's `--trace`). Version 2 added to call records the rule that refused a call
//! (`"rule"`) and marks the answer of a parked call (`"after_park"`); a
//! call that failed on a host path the instance does not show may carry
//! a `"hint"` (an optional key: readers of version 2 ignore it).

use std::io::{self, Write};

use xvisor_trap::render::json_string;

use crate::dispatch::Decision;

/// The version of the JSON lines written here.
pub const VERSION: u32 = 2;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Text,
}

/// One trapped call, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Seconds since the instance started.
    pub time_s: f64,
    /// Process and thread id inside the instance (-1 when the thread was
    /// already gone).
    pub pid: i64,
    pub tid: i64,
    pub name: String,
    pub args: Vec<String>,
    pub decision: Decision,
    /// What a call the kernel performed (`Continue`) returned, when the
    /// monitor could see it: the raw value, `-errno` on failure.
    pub returned: Option<i64>,
    /// Time from receiving the call to answering it.
    pub latency_us: f64,
    /// Why a refused call was refused (`in --deny-syscall`), when the
    /// supervisor knows.
    pub rule: Option<String>,
    /// The answer of a call parked earlier (its first record said
    /// "parked"): the same call, not a new one.
    pub after_park: bool,
    /// A call that failed with `ENOENT` on a host path the instance does
    /// not show: the volume that would show it (`xvisor_confine::absent`).
    pub hint: Option<String>,
}

/// A raw return value as the trace shows it: `(result, errno name)`.
fn result_of(returned: i64) -> (i64, Option<String>) {
    match i32::try_from(-returned) {
        Ok(e) if (1..4096).contains(&e) => (-1, Some(xvisor_trap::policy::errno_name(e))),
        _ => (returned, None),
    }
}

/// What a record says the call came to.
enum Shown {
    /// A value, with the errno's name when it is a failure.
    Value(i64, Option<String>),
    /// Performed by the kernel, its result not seen.
    Unseen,
    Parked,
}

impl Record {
    fn shown(&self) -> Shown {
        match (self.decision, self.returned.map(result_of)) {
            (Decision::Errno(e), _) => Shown::Value(-1, Some(xvisor_trap::policy::errno_name(e))),
            (Decision::Continue, Some((value, name))) => Shown::Value(value, name),
            (Decision::Continue, None) => Shown::Unseen,
            (Decision::Park(_), _) => Shown::Parked,
            (Decision::Value(v), _) => Shown::Value(v, None),
            (Decision::Perform(_), _) => Shown::Unseen,
        }
    }

    pub fn to_json(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| json_string(a)).collect();
        let result = match self.shown() {
            Shown::Value(value, None) => format!("\"result\": {value}"),
            Shown::Value(value, Some(name)) => format!("\"result\": {value}, \"errno\": {}", json_string(&name)),
            Shown::Unseen => "\"result\": \"performed by the kernel\"".to_string(),
            Shown::Parked => "\"result\": \"parked\"".to_string(),
        };
        let mut extra = String::new();
        if let Some(rule) = &self.rule {
            extra.push_str(", \"rule\": ");
            extra.push_str(&json_string(rule));
        }
        if self.after_park {
            extra.push_str(", \"after_park\": true");
        }
        if let Some(hint) = &self.hint {
            extra.push_str(", \"hint\": ");
            extra.push_str(&json_string(hint));
        }
        format!(
            "{{\"time\": {:.6}, \"pid\": {}, \"tid\": {}, \"syscall\": {}, \"args\": [{}], \"decision\": {}, {}, \"latency_us\": {:.1}{extra}}}",
            self.time_s,
            self.pid,
            self.tid,
            json_string(&self.name),
            args.join(", "),
            json_string(&self.decision.describe()),
            result,
            self.latency_us
        )
    }

    pub fn to_text(&self) -> String {
        let who = if self.pid == self.tid {
            format!("[{}]", self.pid)
        } else {
            format!("[{}/{}]", self.pid, self.tid)
        };
        let outcome = match self.shown() {
            Shown::Value(value, None) => value.to_string(),
            Shown::Value(value, Some(name)) => format!("{value} {name}"),
            Shown::Unseen => "continue".to_string(),
            Shown::Parked => self.decision.describe(),
        };
        let hint = self.hint.as_ref().map_or_else(String::new, |h| format!(" (hint: {h})"));
        format!(
            "{:>10.6} {who} {}({}) = {outcome} <{:.1}µs>{hint}",
            self.time_s,
            self.name,
            self.args.join(", "),
            self.latency_us
        )
    }
}

/// What happened to a guest task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// A new process (fork, vfork, clone) or thread (clone with
    /// CLONE_THREAD); `child` is its instance pid, or tid for a thread.
    Spawn { child: i64, thread: bool },
    /// A new program image.
    Exec { path: String, argv: Vec<String> },
    /// A process or thread ended with this exit code.
    Exited { code: i32, thread: bool },
    /// A process or thread was killed by this signal.
    Killed { signal: i32, thread: bool },
}

/// A lifecycle record: spawn, exec, exit, in instance pids.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// Seconds since the instance started.
    pub time_s: f64,
    /// The task the event is about (for a spawn: the parent).
    pub pid: i64,
    pub tid: i64,
    pub event: TaskEvent,
}

impl TaskRecord {
    pub fn to_json(&self) -> String {
        let detail = match &self.event {
            TaskEvent::Spawn { child, thread } => format!(
                "\"event\": \"spawn\", \"child\": {child}, \"kind\": \"{}\"",
                kind(*thread)
            ),
            TaskEvent::Exec { path, argv } => {
                let argv: Vec<String> = argv.iter().map(|a| json_string(a)).collect();
                format!(
                    "\"event\": \"exec\", \"path\": {}, \"argv\": [{}]",
                    json_string(path),
                    argv.join(", ")
                )
            }
            TaskEvent::Exited { code, thread } => {
                format!("\"event\": \"exit\", \"kind\": \"{}\", \"code\": {code}", kind(*thread))
            }
            TaskEvent::Killed { signal, thread } => format!(
                "\"event\": \"exit\", \"kind\": \"{}\", \"signal\": {}",
                kind(*thread),
                json_string(&xvisor_sys::signal::name(*signal))
            ),
        };
        format!(
            "{{\"time\": {:.6}, \"pid\": {}, \"tid\": {}, {detail}}}",
            self.time_s, self.pid, self.tid
        )
    }

    pub fn to_text(&self) -> String {
        let who = if self.pid == self.tid {
            format!("[{}]", self.pid)
        } else {
            format!("[{}/{}]", self.pid, self.tid)
        };
        let what = match &self.event {
            TaskEvent::Spawn { child, thread } => format!("+++ spawn {} {child}", kind(*thread)),
            TaskEvent::Exec { path, argv } => {
                let argv: Vec<String> = argv.iter().map(|a| json_string(a)).collect();
                format!("+++ exec {} [{}]", json_string(path), argv.join(", "))
            }
            TaskEvent::Exited { code, thread } => format!("+++ {} exited with {code}", kind(*thread)),
            TaskEvent::Killed { signal, thread } => {
                format!("+++ {} killed by {}", kind(*thread), xvisor_sys::signal::name(*signal))
            }
        };
        format!("{:>10.6} {who} {what}", self.time_s)
    }
}

fn kind(thread: bool) -> &'static str {
    if thread {
        "thread"
    } else {
        "process"
    }
}

/// Where records go.
pub struct Trace {
    out: Box<dyn Write + Send>,
    format: Format,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("format", &self.format).finish()
    }
}

impl Trace {
    pub fn new(out: Box<dyn Write + Send>, format: Format) -> Self {
        Self { out, format }
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let line = match self.format {
            Format::JsonLines => record.to_json(),
            Format::Text => record.to_text(),
        };
        writeln!(self.out, "{line}")
    }

    pub fn write_task(&mut self, record: &TaskRecord) -> io::Result<()> {
        let line = match self.format {
            Format::JsonLines => record.to_json(),
            Format::Text => record.to_text(),
        };
        writeln!(self.out, "{line}")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: Decision) -> Record {
        Record {
            time_s: 0.25,
            pid: 2,
            tid: 2,
            name: "openat".into(),
            args: vec!["AT_FDCWD".into(), "\"/etc/pass\\\"wd\"".into()],
            decision,
            returned: None,
            latency_us: 3.04,
            rule: None,
            after_park: false,
            hint: None,
        }
    }

    #[test]
    fn a_continued_calls_result_shows_when_seen() {
        let mut r = record(Decision::Continue);
        r.returned = Some(3);
        assert!(
            r.to_json().contains("\"decision\": \"continue\", \"result\": 3,"),
            "{}",
            r.to_json()
        );
        assert!(r.to_text().ends_with(") = 3 <3.0µs>"), "{}", r.to_text());
        r.returned = Some(-2);
        assert!(
            r.to_json().contains("\"result\": -1, \"errno\": \"ENOENT\""),
            "{}",
            r.to_json()
        );
        assert!(r.to_text().ends_with(") = -1 ENOENT <3.0µs>"), "{}", r.to_text());
        r.returned = Some(-5000);
        assert!(r.to_json().contains("\"result\": -5000,"), "{}", r.to_json());
    }

    #[test]
    fn json_lines_carry_every_field() {
        let j = record(Decision::Errno(1)).to_json();
        assert_eq!(
            j,
            "{\"time\": 0.250000, \"pid\": 2, \"tid\": 2, \"syscall\": \"openat\", \"args\": [\"AT_FDCWD\", \"\\\"/etc/pass\\\\\\\"wd\\\"\"], \"decision\": \"errno EPERM\", \"result\": -1, \"errno\": \"EPERM\", \"latency_us\": 3.0}"
        );
    }

    #[test]
    fn a_refusals_rule_and_a_parked_calls_answer_are_marked() {
        let mut r = record(Decision::Errno(1));
        r.rule = Some("in --deny-syscall".into());
        assert!(
            r.to_json()
                .ends_with("\"latency_us\": 3.0, \"rule\": \"in --deny-syscall\"}"),
            "{}",
            r.to_json()
        );
        let mut r = record(Decision::Continue);
        r.after_park = true;
        assert!(r.to_json().ends_with(", \"after_park\": true}"), "{}", r.to_json());
    }

    #[test]
    fn a_hint_ends_the_record() {
        let mut r = record(Decision::Continue);
        r.returned = Some(-2);
        r.hint = Some("/home/a/x is on the host but not in the instance: add -v /home/a:/home/a:ro".into());
        assert!(
            r.to_json().ends_with(
                ", \"hint\": \"/home/a/x is on the host but not in the instance: add -v /home/a:/home/a:ro\"}"
            ),
            "{}",
            r.to_json()
        );
        assert!(
            r.to_text().ends_with(
                "<3.0µs> (hint: /home/a/x is on the host but not in the instance: add -v /home/a:/home/a:ro)"
            ),
            "{}",
            r.to_text()
        );
    }

    #[test]
    fn task_records() {
        let spawn = TaskRecord {
            time_s: 1.5,
            pid: 1,
            tid: 1,
            event: TaskEvent::Spawn {
                child: 2,
                thread: false,
            },
        };
        assert_eq!(
            spawn.to_json(),
            "{\"time\": 1.500000, \"pid\": 1, \"tid\": 1, \"event\": \"spawn\", \"child\": 2, \"kind\": \"process\"}"
        );
        let killed = TaskRecord {
            time_s: 2.0,
            pid: 2,
            tid: 3,
            event: TaskEvent::Killed {
                signal: 9,
                thread: true,
            },
        };
        assert_eq!(killed.to_text(), "  2.000000 [2/3] +++ thread killed by SIGKILL");
        let exec = TaskRecord {
            time_s: 0.0,
            pid: 2,
            tid: 2,
            event: TaskEvent::Exec {
                path: "/bin/ls".into(),
                argv: vec!["ls".into(), "-l".into()],
            },
        };
        assert!(exec
            .to_json()
            .ends_with("\"event\": \"exec\", \"path\": \"/bin/ls\", \"argv\": [\"ls\", \"-l\"]}"));
    }

    #[test]
    fn text_reads_like_strace() {
        let t = record(Decision::Continue).to_text();
        assert_eq!(
            t,
            "  0.250000 [2] openat(AT_FDCWD, \"/etc/pass\\\"wd\") = continue <3.0µs>"
        );
    }
}
