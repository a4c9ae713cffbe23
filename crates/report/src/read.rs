//! Trace lines → records.
//!
//! A trace is JSON lines of four shapes: the header (`{"trace": 2, …}`,
//! written first by `xvisor run`), call records (`"syscall"`), task
//! records (`"event": "spawn" | "exec" | "exit"`) and the end
//! (`"event": "end"`). Fields this version does not know are ignored; a
//! trace without a header is of version 1 (before headers).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

/// The newest trace version this reader knows (xvisor-kernel's
/// `trace::VERSION`).
pub const KNOWN_VERSION: u32 = 2;

/// A call's result as the trace shows it: a number, or words ("performed
/// by the kernel", "parked").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Outcome<'a> {
    Value(i64),
    #[serde(borrow)]
    Words(Cow<'a, str>),
}

/// One line, every field optional: which are present says its shape.
#[derive(Debug, Default, Deserialize)]
pub struct Line<'a> {
    pub trace: Option<u32>,
    #[serde(default)]
    pub command: Vec<String>,
    pub profile: Option<String>,
    pub policy: Option<String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
    pub started: Option<String>,
    pub xvisor: Option<String>,

    pub time: Option<f64>,
    pub pid: Option<i64>,
    pub tid: Option<i64>,

    #[serde(borrow)]
    pub syscall: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub args: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub decision: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub result: Option<Outcome<'a>>,
    #[serde(borrow)]
    pub errno: Option<Cow<'a, str>>,
    pub latency_us: Option<f64>,
    pub rule: Option<String>,
    #[serde(default)]
    pub after_park: bool,

    #[serde(borrow)]
    pub event: Option<Cow<'a, str>>,
    pub child: Option<i64>,
    #[serde(borrow)]
    pub kind: Option<Cow<'a, str>>,
    pub path: Option<String>,
    pub argv: Option<Vec<String>>,
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub status: Option<i32>,
    pub outcome: Option<String>,
    pub trapped: Option<u64>,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: u64,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// Parses one line (without its newline). `last`: the line is the trace's
/// last and had no newline (the writer was cut short).
pub fn parse(bytes: &[u8], line: u64, last: bool) -> Result<Line<'_>, Problem> {
    serde_json::from_slice::<Line<'_>>(bytes).map_err(|e| Problem {
        line,
        what: if last && e.is_eof() {
            "cut short: the trace ends in the middle of a record".to_string()
        } else {
            format!("not a trace record ({e})")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_parses() {
        let call = parse(
            br#"{"time": 0.5, "pid": 2, "tid": 3, "syscall": "openat", "args": ["AT_FDCWD", "\"/etc/x\""], "decision": "continue", "result": -1, "errno": "ENOENT", "latency_us": 4.5, "rule": "r", "after_park": true}"#,
            1,
            false,
        )
        .unwrap();
        assert_eq!(call.syscall.as_deref(), Some("openat"));
        assert_eq!(call.args[1], "\"/etc/x\"");
        assert_eq!(call.result, Some(Outcome::Value(-1)));
        assert!(call.after_park);
        let words = parse(br#"{"syscall": "wait4", "result": "parked"}"#, 1, false).unwrap();
        assert_eq!(words.result, Some(Outcome::Words("parked".into())));
        let header = parse(
            br#"{"trace": 2, "command": ["ls"], "limits": {"pids": "64"}, "future": [1]}"#,
            1,
            false,
        )
        .unwrap();
        assert_eq!(header.trace, Some(2));
        assert_eq!(header.limits.get("pids").map(String::as_str), Some("64"));
    }

    #[test]
    fn bad_lines_say_why() {
        let p = parse(b"{\"time\": 0.5, \"pid\"", 7, true).unwrap_err();
        assert_eq!(p.line, 7);
        assert!(p.what.contains("cut short"), "{p}");
        let p = parse(b"garbage", 3, false).unwrap_err();
        assert!(p.to_string().starts_with("line 3: not a trace record"), "{p}");
        assert!(parse(b"{\"time\": \"x\"}", 1, false).is_err());
    }
}
