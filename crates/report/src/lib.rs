//! The report of one run: what an instance did, read from its trace
//! (`--trace` JSON lines), as one self-contained HTML page and as JSON.
//!
//! - [`read`]: trace lines → records, with the problems of a bad trace
//!   (a line that is not a record, a cut-short end, a newer version) named
//!   by line number; what could be read is still reported.
//! - [`model`]: records → a [`Report`](model::Report), aggregated as they
//!   come (memory grows with the number of distinct names, paths and
//!   processes, each kept up to a bound, never with the number of calls).
//! - [`html`]: a report → one HTML page: inline CSS and SVG, no script,
//!   and a content security policy that forbids scripts and any fetch;
//!   everything that came from the guest is escaped.
//! - [`sink`]: trace lines as the supervisor writes them, fed to a
//!   report while they are also written to a trace file.

#![forbid(unsafe_code)]

pub mod html;
pub mod model;
pub mod read;
pub mod sink;

pub use model::{Builder, Report};

/// What can go wrong writing or reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("cannot write the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    /// A small deterministic generator, so the property tests replay.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const LINES: &[&str] = &[
        r#"{"trace": 2, "command": ["sh"], "profile": "strict", "limits": {"pids": "8"}}"#,
        r#"{"time": 0.001, "pid": 1, "tid": 1, "event": "spawn", "child": 2, "kind": "process"}"#,
        r#"{"time": 0.002, "pid": 2, "tid": 2, "event": "exec", "path": "/bin/sh", "argv": ["sh"]}"#,
        r#"{"time": 0.003, "pid": 2, "tid": 2, "syscall": "openat", "args": ["AT_FDCWD", "\"/etc/x\"", "O_RDONLY", "0"], "decision": "continue", "result": 3, "latency_us": 10.0}"#,
        r#"{"time": 0.004, "pid": 2, "tid": 2, "syscall": "connect", "args": ["3", "{10.0.0.1:443}", "16"], "decision": "errno EPERM", "result": -1, "errno": "EPERM", "latency_us": 3.0, "rule": "not in [net].connect (p.toml)"}"#,
        r#"{"time": 0.005, "pid": 2, "tid": 3, "event": "spawn", "child": 3, "kind": "thread"}"#,
        r#"{"time": 0.006, "pid": 2, "tid": 2, "syscall": "wait4", "args": ["-1"], "decision": "park until a child ends", "result": "parked", "latency_us": 1.0}"#,
        r#"{"time": 0.007, "pid": 2, "tid": 2, "event": "exit", "kind": "process", "signal": "SIGKILL"}"#,
        r#"{"time": 0.008, "event": "end", "status": 137, "outcome": "killed", "trapped": 3}"#,
    ];

    /// Pieces a hostile guest or a damaged file might put in a line.
    const SPLICES: &[&str] = &[
        "<script>alert(1)</script>",
        "\"'><img src=x onerror=alert(1)>",
        "\\u0000",
        "-1e400",
        "1e400",
        "null",
        "{",
        "]",
        "\"pid\": -9223372036854775808",
        "\u{feff}",
    ];

    #[test]
    fn any_damage_to_a_trace_is_read_without_panic_and_rendered_escaped() {
        let mut rng = XorShift(0x5eed_1234_abcd_9876);
        for round in 0..1500 {
            let mut builder = crate::Builder::new();
            let mut fed = 0u64;
            for (n, line) in LINES.iter().enumerate() {
                let mut bytes = line.as_bytes().to_vec();
                match rng.below(6) {
                    0 => {
                        let at = rng.below(bytes.len());
                        bytes.truncate(at);
                    }
                    1 => {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next() as u8;
                    }
                    2 | 3 => {
                        // Inside a string value, or anywhere.
                        let at = rng.below(bytes.len());
                        let piece = SPLICES[rng.below(SPLICES.len())];
                        bytes.splice(at..at, piece.bytes());
                    }
                    _ => {}
                }
                if !bytes.iter().all(u8::is_ascii_whitespace) {
                    fed += 1;
                }
                builder.feed_line(&bytes, n as u64 + 1, n + 1 == LINES.len());
            }
            let report = builder.finish();
            assert_eq!(report.lines_read + report.lines_unread, fed, "round {round}");
            let named: u64 = report.calls.by_name.iter().map(|c| c.count).sum();
            assert_eq!(named, report.calls.total, "round {round}");
            let page = crate::html::render(&report);
            assert!(
                !page.contains("<script") && !page.contains("<img"),
                "round {round}: markup reached the page"
            );
            serde_json::to_string(&report).expect("the report as JSON");
        }
    }
}
