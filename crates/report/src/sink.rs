//! Trace lines as they are written: to a trace file, to a report, or both.

use std::io::{self, Write};

use crate::Builder;

/// Where the supervisor's JSON lines go during `xvisor run --report`
/// (and `--trace FILE`): each complete line is fed to the report as it
/// arrives, and the bytes are written on to the trace file, if any.
#[derive(Debug)]
pub struct Sink {
    file: Option<io::BufWriter<std::fs::File>>,
    builder: Option<Builder>,
    partial: Vec<u8>,
    lines: u64,
}

impl Sink {
    pub fn new(file: Option<std::fs::File>, report: bool) -> Self {
        Self {
            file: file.map(|f| io::BufWriter::with_capacity(64 * 1024, f)),
            builder: report.then(Builder::new),
            partial: Vec::new(),
            lines: 0,
        }
    }

    /// Ends the stream: a last line without its newline is fed as cut
    /// short, the file flushed. The report, if one was wanted.
    pub fn finish(&mut self) -> io::Result<Option<Builder>> {
        if !self.partial.is_empty() {
            self.lines += 1;
            let partial = std::mem::take(&mut self.partial);
            if let Some(b) = self.builder.as_mut() {
                b.feed_line(&partial, self.lines, true);
            }
        }
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(self.builder.take())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(buf)?;
        }
        if let Some(builder) = self.builder.as_mut() {
            let mut rest = buf;
            while let Some(at) = rest.iter().position(|&b| b == b'\n') {
                self.lines += 1;
                if self.partial.is_empty() {
                    builder.feed_line(&rest[..at], self.lines, false);
                } else {
                    self.partial.extend_from_slice(&rest[..at]);
                    builder.feed_line(&self.partial, self.lines, false);
                    self.partial.clear();
                }
                rest = &rest[at + 1..];
            }
            self.partial.extend_from_slice(rest);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_writes_are_fed_whole() {
        let mut sink = Sink::new(None, true);
        let line = br#"{"time": 0.1, "pid": 1, "tid": 1, "syscall": "getpid", "args": [], "decision": "continue", "result": 1, "latency_us": 2.0}"#;
        for chunk in line.chunks(7) {
            sink.write_all(chunk).unwrap();
        }
        sink.write_all(b"\n").unwrap();
        sink.write_all(&line[..20]).unwrap();
        let report = sink.finish().unwrap().unwrap().finish();
        assert_eq!(report.calls.total, 1);
        assert_eq!(report.lines_unread, 1);
        assert!(
            report.problems[0].starts_with("line 2: cut short"),
            "{:?}",
            report.problems
        );
    }
}
