//! `xvisor report TRACE` and `xvisor run --report`: a run's trace as one
//! HTML page (and as JSON). The model and the page are xvisor-report's;
//! here only options, files and the trace's header and end records.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use xvisor_instance::{InstanceSpec, Outcome, SharedWriter, TraceTarget};
use xvisor_report::sink::Sink;
use xvisor_report::{html, Builder};
use xvisor_sys::process::WaitStatus;

pub const HELP: &str = "\
Build the report of a run from its trace: one HTML page a browser opens
without the network (its plots drawn inline, no script), and the same data
as JSON for tools. It shows the summary (command, duration, exit status,
profile, policy, limits, peak tasks), the process tree, a timeline of the
processes, the calls by name and class with the latency of trapped calls,
every refusal with the rule that refused it and what would allow it, and
the files, programs and network destinations the run touched.

Usage: xvisor report [OPTIONS] TRACE

TRACE is a file written by 'xvisor run --trace FILE' ('-': standard input).
A line that cannot be read (a cut-short trace, garbage, a newer version's
records) is named on stderr, and the report shows what could be read.

Options:
  -o, --output FILE        write the page to FILE (default: TRACE with .html)
      --json FILE          write the report's data as JSON to FILE ('-':
                           standard output)

Examples:
  xvisor run --trace run.jsonl -- make -j2 && xvisor report run.jsonl -o run.html
  xvisor run --report run.html -- make -j2     # the same, in one step
";

/// `xvisor report`.
pub fn main(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut trace: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut json: Option<PathBuf> = None;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                out!("{HELP}");
                return Ok(0);
            }
            Short('o') | Long("output") => output = Some(PathBuf::from(p.value()?)),
            Long("json") => json = Some(PathBuf::from(p.value()?)),
            Value(v) if trace.is_none() => trace = Some(PathBuf::from(v)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(trace) = trace else {
        bail!("report: name the trace (xvisor report run.jsonl -o run.html)");
    };
    let stdin = trace.as_os_str() == "-";
    let output = match output {
        Some(o) => Some(o),
        None if json.is_some() => None,
        None if stdin => bail!("report: give -o FILE for a trace read from standard input"),
        None => Some(trace.with_extension("html")),
    };
    for out in output.iter().chain(json.iter()) {
        if !stdin && (out == &trace || same_file(out, &trace)) {
            bail!(
                "report: {} is the trace itself: give -o FILE (the default, TRACE with .html, is only for a trace not named .html)",
                out.display()
            );
        }
    }
    let started = Instant::now();
    let mut builder = Builder::new();
    let shown = trace.display().to_string();
    let read = if stdin {
        builder.read_all(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&trace).map_err(|e| anyhow!("{shown}: {e}"))?;
        builder.read_all(std::io::BufReader::with_capacity(1 << 20, file))
    };
    if let Err(e) = read {
        // What was read before the error is still reported.
        eprintln!("xvisor: {shown}: {e}; reporting what was read");
    }
    warn_of_problems(&shown, &builder);
    let report = builder.finish();
    if let Some(path) = &output {
        let page = html::render(&report);
        std::fs::write(path, page).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &json {
        write_json(path, &report)?;
    }
    if let Some(path) = &output {
        eprintln!(
            "xvisor: report of {} calls in {:.2}s: {}",
            report.calls.total,
            started.elapsed().as_secs_f64(),
            path.display()
        );
    }
    Ok(0)
}

/// Whether two paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// One line naming the first unreadable line of a trace, and how many
/// there were.
fn warn_of_problems(trace: &str, builder: &Builder) {
    if let Some(first) = builder.first_problem() {
        let more = builder.lines_unread().saturating_sub(1);
        let more = if more > 0 {
            format!(" ({more} more unreadable lines)")
        } else {
            String::new()
        };
        eprintln!(
            "xvisor: {trace}:{}: {}{more}; the report shows what could be read",
            first.line, first.what
        );
    }
}

fn write_json(path: &Path, report: &xvisor_report::Report) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    if path.as_os_str() == "-" {
        outln!("{text}");
        return Ok(());
    }
    std::fs::write(path, text + "\n").map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// A file opened before the run: the supervisor, confined once the guest
/// runs, may no longer create files.
pub(crate) struct Output {
    pub(crate) file: std::fs::File,
    pub(crate) name: String,
}

/// `path` made empty for writing, its failure named after `option`.
pub(crate) fn create(path: &Path, option: &str) -> Result<Output> {
    let name = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| anyhow!("{option} {name}: {e}"))?;
    Ok(Output { file, name })
}

/// `run --trace FILE`, `--report FILE`, `--report-json FILE`: the trace's
/// lines go through here, to the trace file and into the report.
pub struct Target {
    sink: Arc<Mutex<Sink>>,
    html: Option<Output>,
    json: Option<Output>,
    began: Instant,
}

impl Target {
    /// `None` when the run records nothing here (no trace file, no report).
    pub fn open(trace: Option<&str>, html: Option<&Path>, json: Option<&Path>) -> Result<Option<Self>> {
        let trace_file = match trace {
            None => None,
            Some("-") if html.is_some() || json.is_some() => {
                bail!("--report reads the trace as JSON lines: use --trace FILE with it, or no --trace")
            }
            Some("-") => return Ok(None),
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow!("--trace {path}: {e}"))?,
            ),
        };
        if trace_file.is_none() && html.is_none() && json.is_none() {
            return Ok(None);
        }
        let html = html.map(|p| create(p, "--report")).transpose()?;
        let json = json.map(|p| create(p, "--report-json")).transpose()?;
        let report = html.is_some() || json.is_some();
        Ok(Some(Self {
            sink: Arc::new(Mutex::new(Sink::new(trace_file, report))),
            html,
            json,
            began: Instant::now(),
        }))
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the trace's header and points the instance's trace here.
    pub fn begin(&mut self, spec: &mut InstanceSpec, policy: Option<&Path>) {
        let mut limits = serde_json::Map::new();
        let mut limit = |key: &str, value: String| {
            limits.insert(key.to_string(), serde_json::Value::String(value));
        };
        if let Some(m) = spec.limits.memory_bytes {
            limit("memory", crate::units::show_size(m));
        }
        if let Some(n) = spec.limits.pids {
            limit("pids", n.to_string());
        }
        if let Some(c) = spec.limits.cpus {
            limit("cpus", c.to_string());
        }
        if let Some(n) = spec.nofile {
            limit("nofile", n.to_string());
        }
        if let Some(t) = spec.timeout {
            limit("timeout", format!("{:.3}s", t.as_secs_f64()));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // In the trace's own style: the version first.
        let json = |v: serde_json::Value| v.to_string();
        let header = format!(
            "{{\"trace\": {}, \"xvisor\": {}, \"started\": {}, \"command\": {}, \"profile\": {}, \"policy\": {}, \"limits\": {}}}",
            xvisor_kernel::trace::VERSION,
            json(env!("CARGO_PKG_VERSION").into()),
            json(xvisor_sys::clock::Utc::from_epoch_seconds(now).readable().into()),
            json(spec.argv.clone().into()),
            json(spec.policy.profile.name().into()),
            json(policy.map(|p| p.display().to_string()).into()),
            json(serde_json::Value::Object(limits)),
        );
        let _ = writeln!(self.sink(), "{header}");
        spec.trace = Some(TraceTarget::Writer(SharedWriter(self.sink.clone())));
        self.began = Instant::now();
    }

    /// Writes the trace's end and the report, once the instance has ended.
    pub fn finish(self, outcome: Option<&Outcome>, code: i32, trapped: u64) -> Result<()> {
        let words = match outcome {
            Some(Outcome::Exited(WaitStatus::Exited(_))) => "exited".to_string(),
            Some(Outcome::Exited(WaitStatus::Signaled { signal, .. })) => {
                format!("killed by {}", xvisor_sys::signal::name(*signal))
            }
            Some(Outcome::TimedOut { .. }) => "killed at --timeout".to_string(),
            Some(Outcome::OutOfMemory { .. }) => "killed at the --memory limit".to_string(),
            None => "xvisor failed".to_string(),
        };
        let end = format!(
            "{{\"time\": {:.6}, \"event\": \"end\", \"status\": {code}, \"outcome\": {}, \"trapped\": {trapped}}}",
            self.began.elapsed().as_secs_f64(),
            serde_json::Value::String(words),
        );
        let builder = {
            let mut sink = self.sink();
            let _ = writeln!(sink, "{end}");
            sink.finish().map_err(|e| anyhow!("--trace: {e}"))?
        };
        let Some(builder) = builder else { return Ok(()) };
        warn_of_problems("trace", &builder);
        let report = builder.finish();
        if let Some(mut out) = self.html {
            out.file
                .write_all(html::render(&report).as_bytes())
                .map_err(|e| anyhow!("--report {}: {e}", out.name))?;
            eprintln!("xvisor: report of {} calls: {}", report.calls.total, out.name);
        }
        if let Some(mut out) = self.json {
            let text = serde_json::to_string_pretty(&report)?;
            out.file
                .write_all(text.as_bytes())
                .and_then(|()| out.file.write_all(b"\n"))
                .map_err(|e| anyhow!("--report-json {}: {e}", out.name))?;
        }
        Ok(())
    }
}
