//! Records → the report, aggregated as they come.
//!
//! Memory is bounded: the names of calls, the processes, refusals, paths
//! and destinations are each kept up to a bound (what is past it is
//! counted and said so); latencies are kept exactly in a histogram, and
//! up to [`LATENCY_SAMPLES`] of them for the percentiles (past that, a
//! uniform sample, and the report says so).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::read::{self, Line, Outcome, Problem, KNOWN_VERSION};

/// Latencies kept for the percentiles; past this many, a uniform sample.
pub const LATENCY_SAMPLES: usize = 1 << 21;
/// Processes described one by one.
pub const MAX_PROCESSES: usize = 5_000;
/// Distinct refusals (call, rule, program) kept.
pub const MAX_REFUSALS: usize = 2_000;
/// Distinct paths kept.
pub const MAX_PATHS: usize = 5_000;
/// Distinct programs and network destinations kept.
pub const MAX_OTHERS: usize = 2_000;
/// Problems kept (each names its line); the rest are counted.
pub const MAX_PROBLEMS: usize = 20;
/// Tasks followed for the peak count (alive, and ended).
const MAX_TASKS_FOLLOWED: usize = 4_000_000;
/// Threads of a process drawn in the timeline.
pub const MAX_THREAD_SPANS: usize = 16;
/// Execs remembered per process.
const MAX_EXECS: usize = 16;
/// Bins of the calls-over-time histogram.
const TIME_BINS: usize = 200;
/// Latency histogram: buckets per decade, from 0.1 µs to 100 s.
const PER_DECADE: usize = 10;
const FIRST_EDGE_US: f64 = 0.1;
const BUCKETS: usize = 9 * PER_DECADE;

/// Everything a report shows, as JSON (`--report-json`) and as the page.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub processes: Vec<Process>,
    /// Processes past [`MAX_PROCESSES`], counted only.
    pub processes_not_described: u64,
    pub calls: Calls,
    pub timeline: Timeline,
    pub refusals: Vec<Refusal>,
    /// Calls the supervisor let through that the kernel then refused with
    /// EACCES, EPERM or EROFS (Landlock, file modes, read-only mounts).
    pub kernel_refusals: Vec<Refusal>,
    pub refusals_not_described: u64,
    pub touched: Touched,
    /// What was wrong with the trace (first few; `lines_unread` counts all).
    pub problems: Vec<String>,
    pub lines_read: u64,
    pub lines_unread: u64,
    /// What was sampled or left out, in words.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub command: Vec<String>,
    pub started: Option<String>,
    pub xvisor: Option<String>,
    pub trace_version: u32,
    pub duration_s: f64,
    /// xvisor's exit status (the program's, 128+N when killed).
    pub status: Option<i32>,
    pub outcome: Option<String>,
    pub profile: Option<String>,
    pub policy: Option<String>,
    pub limits: BTreeMap<String, String>,
    /// Most tasks (processes and threads) alive at once.
    pub peak_tasks: u64,
    pub processes: u64,
    pub threads: u64,
    pub calls: u64,
    /// Calls trapped to the supervisor, as it counted them (the end record).
    pub trapped: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub pid: i64,
    pub parent: Option<i64>,
    /// Depth in the tree (0: a root).
    pub depth: u32,
    pub start_s: f64,
    pub end_s: Option<f64>,
    /// "exited 0", "killed by SIGKILL"; `None` while it ran at the end.
    pub exit: Option<String>,
    pub failed: bool,
    /// The program it last exec'd and its command line.
    pub program: Option<String>,
    pub argv: Vec<String>,
    /// (time, program) of each exec, the first [`MAX_EXECS`].
    pub execs: Vec<(f64, String)>,
    pub threads: u64,
    /// The first [`MAX_THREAD_SPANS`] threads it made, for the timeline.
    pub thread_spans: Vec<ThreadSpan>,
    pub calls: u64,
    pub refused: u64,
}

/// A thread's life, in the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadSpan {
    pub tid: i64,
    pub start_s: f64,
    pub end_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Calls {
    /// Calls recorded (a parked call once).
    pub total: u64,
    /// Answered at once: these make the latency figures.
    pub answered: u64,
    /// Parked until something happened (a child's end, a connect).
    pub parked: u64,
    pub parked_wait_s: f64,
    pub by_name: Vec<NameCount>,
    pub by_class: Vec<ClassCount>,
    pub latency: Latency,
    /// Time tasks spent waiting for the supervisor's answer (calls
    /// answered at once), summed over tasks.
    pub supervisor_wait_s: f64,
    /// That time as a share of the run's wall time (tasks wait in
    /// parallel: it may exceed 1).
    pub supervisor_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NameCount {
    pub name: String,
    pub class: &'static str,
    pub count: u64,
    pub failed: u64,
    pub refused: u64,
    pub latency_total_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassCount {
    pub class: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Non-empty range of buckets: `[from_us, to_us)`.
    pub histogram: Vec<Bucket>,
    /// How many latencies the percentiles come from (all, or a sample).
    pub percentiles_from: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub from_us: f64,
    pub to_us: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Width of each bin of `calls`, in seconds.
    pub bin_s: f64,
    pub calls: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub syscall: String,
    /// "errno EPERM" (the supervisor's) or the errno the kernel returned.
    pub answer: String,
    pub rule: String,
    pub to_allow: String,
    pub program: String,
    pub count: u64,
    pub first_s: f64,
    pub pid: i64,
    pub example: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Touched {
    pub files: Vec<FileUse>,
    pub files_not_described: u64,
    pub programs: Vec<ProgramUse>,
    pub network: Vec<NetUse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileUse {
    pub path: String,
    /// "read", "write", "create/remove", "exec", "look" — in that order.
    pub access: Vec<&'static str>,
    pub calls: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgramUse {
    pub path: String,
    pub runs: u64,
    pub example: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetUse {
    pub direction: &'static str,
    pub address: String,
    pub calls: u64,
    pub failed: u64,
}

/// What a call does to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    Read,
    Write,
    Entry,
    Exec,
    Look,
}

const ACCESS_NAMES: [&str; 5] = ["read", "write", "create/remove", "exec", "look"];

impl Touch {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct NameStats {
    count: u64,
    failed: u64,
    refused: u64,
    latency_us: f64,
}

#[derive(Debug, Default)]
struct PathStats {
    access: [u64; 5],
    calls: u64,
    failed: u64,
}

#[derive(Debug)]
struct Proc {
    parent: Option<i64>,
    start_s: f64,
    end_s: Option<f64>,
    exit: Option<String>,
    failed: bool,
    program: Option<String>,
    argv: Vec<String>,
    execs: Vec<(f64, String)>,
    threads: u64,
    thread_spans: Vec<ThreadSpan>,
    calls: u64,
    refused: u64,
}

impl Proc {
    fn new(parent: Option<i64>, start_s: f64) -> Self {
        Self {
            parent,
            start_s,
            end_s: None,
            exit: None,
            failed: false,
            program: None,
            argv: Vec::new(),
            execs: Vec::new(),
            threads: 0,
            thread_spans: Vec::new(),
            calls: 0,
            refused: 0,
        }
    }
}

/// Aggregates records into a [`Report`].
#[derive(Debug)]
pub struct Builder {
    summary: Summary,
    header_seen: bool,
    newer: bool,
    problems: Vec<Problem>,
    lines_read: u64,
    lines_unread: u64,
    names: HashMap<String, NameStats>,
    calls: Calls,
    buckets: [u64; BUCKETS + 2],
    latency_sum_us: f64,
    latency_max_us: f64,
    samples: Vec<f32>,
    sampled_over: u64,
    random: u64,
    bin_s: f64,
    bins: Vec<u64>,
    alive: HashSet<i64>,
    /// Tasks seen to end: a record written after the end (the monitor and
    /// the serving threads write concurrently) does not bring one back.
    gone: HashSet<i64>,
    processes: BTreeMap<i64, Proc>,
    processes_not_described: u64,
    threads: u64,
    refusals: HashMap<(String, String, String), Refusal>,
    kernel_refusals: HashMap<(String, String, String), Refusal>,
    refusals_not_described: u64,
    paths: HashMap<String, PathStats>,
    paths_not_described: u64,
    programs: HashMap<String, ProgramUse>,
    network: HashMap<(&'static str, String), NetUse>,
    last_time: f64,
    end: Option<(f64, Option<i32>, Option<String>)>,
    init_exit: Option<i32>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Reads a whole trace; returns the number of lines read. Bad lines
    /// are noted and skipped.
    pub fn read_all(&mut self, mut input: impl std::io::BufRead) -> std::io::Result<u64> {
        let mut buf = Vec::with_capacity(512);
        let mut number = 0u64;
        loop {
            buf.clear();
            let n = input.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(number);
            }
            number += 1;
            let ended = buf.last() == Some(&b'\n');
            if ended {
                buf.pop();
            }
            self.feed_line(&buf, number, !ended);
        }
    }

    pub fn new() -> Self {
        Self {
            summary: Summary {
                trace_version: 1,
                ..Summary::default()
            },
            header_seen: false,
            newer: false,
            problems: Vec::new(),
            lines_read: 0,
            lines_unread: 0,
            names: HashMap::new(),
            calls: Calls::default(),
            buckets: [0; BUCKETS + 2],
            latency_sum_us: 0.0,
            latency_max_us: 0.0,
            samples: Vec::new(),
            sampled_over: 0,
            random: 0x9E37_79B9_7F4A_7C15,
            bin_s: 0.001,
            bins: Vec::new(),
            alive: HashSet::new(),
            gone: HashSet::new(),
            processes: BTreeMap::new(),
            processes_not_described: 0,
            threads: 0,
            refusals: HashMap::new(),
            kernel_refusals: HashMap::new(),
            refusals_not_described: 0,
            paths: HashMap::new(),
            paths_not_described: 0,
            programs: HashMap::new(),
            network: HashMap::new(),
            last_time: 0.0,
            end: None,
            init_exit: None,
        }
    }

    /// The first problem met, if any (for the one line a command prints).
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// Lines that could not be read.
    pub fn lines_unread(&self) -> u64 {
        self.lines_unread
    }

    fn problem(&mut self, p: Problem) {
        self.lines_unread += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// One line of a trace, without its newline; `cut`: the trace's last
    /// line, with no newline after it.
    pub fn feed_line(&mut self, bytes: &[u8], number: u64, cut: bool) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match read::parse(bytes, number, cut) {
            Ok(line) => {
                // A line with a problem (no known kind, a second header)
                // counts as unread.
                let before = self.lines_unread;
                self.feed(&line, number);
                if self.lines_unread == before {
                    self.lines_read += 1;
                }
            }
            Err(p) => self.problem(p),
        }
    }

    /// One parsed record.
    pub fn feed(&mut self, line: &Line<'_>, number: u64) {
        if let Some(version) = line.trace {
            self.header(line, version, number);
            return;
        }
        let time = line.time.unwrap_or(self.last_time);
        if time.is_finite() && time > self.last_time {
            self.last_time = time;
        }
        if line.syscall.is_some() {
            self.call(line, time);
            return;
        }
        match line.event.as_deref() {
            Some("end") => {
                self.end = Some((time, line.status, line.outcome.clone()));
                self.summary.trapped = line.trapped;
            }
            Some("spawn") => self.spawn(line, time),
            Some("exec") => self.exec(line, time),
            Some("exit") => self.exit(line, time),
            _ if self.newer => {}
            _ => self.problem(Problem {
                line: number,
                what: "a record of no known kind".to_string(),
            }),
        }
    }

    fn header(&mut self, line: &Line<'_>, version: u32, number: u64) {
        if self.header_seen {
            self.problem(Problem {
                line: number,
                what: "a second header (two traces in one file?): kept the first".to_string(),
            });
            return;
        }
        self.header_seen = true;
        self.summary.trace_version = version;
        if version > KNOWN_VERSION {
            self.newer = true;
            self.problem(Problem {
                line: number,
                what: format!(
                    "written by a newer xvisor (trace version {version}; this one reads up to {KNOWN_VERSION}): showing what it understands"
                ),
            });
        }
        self.summary.command = line.command.clone();
        self.summary.profile = line.profile.clone();
        self.summary.policy = line.policy.clone();
        self.summary.limits = line.limits.clone();
        self.summary.started = line.started.clone();
        self.summary.xvisor = line.xvisor.clone();
    }

    fn seen(&mut self, pid: i64, tid: i64, time: f64) {
        if pid < 0 {
            return;
        }
        self.alive_now(tid);
        if !self.processes.contains_key(&pid) {
            if self.processes.len() < MAX_PROCESSES {
                self.processes.insert(pid, Proc::new(None, time));
            } else {
                self.processes_not_described += 1;
            }
        }
    }

    /// `tid` is alive (unless seen to end), for the peak.
    fn alive_now(&mut self, tid: i64) {
        if self.alive.len() < MAX_TASKS_FOLLOWED && !self.gone.contains(&tid) {
            self.alive.insert(tid);
        }
        self.summary.peak_tasks = self.summary.peak_tasks.max(self.alive.len() as u64);
    }

    fn program_of(&self, pid: i64) -> String {
        self.processes
            .get(&pid)
            .and_then(|p| p.program.clone())
            .unwrap_or_else(|| "?".to_string())
    }

    fn call(&mut self, line: &Line<'_>, time: f64) {
        let pid = line.pid.unwrap_or(-1);
        let tid = line.tid.unwrap_or(pid);
        self.seen(pid, tid, time);
        let name = line.syscall.as_deref().unwrap_or("?");
        let latency = line.latency_us.filter(|l| l.is_finite() && *l >= 0.0).unwrap_or(0.0);
        if line.after_park {
            self.calls.parked_wait_s += latency / 1e6;
            return;
        }
        let parked = matches!(&line.result, Some(Outcome::Words(w)) if w == "parked");
        let decision = line.decision.as_deref().unwrap_or("");
        // Since version 2 a refusal names its rule: an errno answer without
        // one is a call the supervisor performed that failed as the kernel
        // made it fail (a supervised connect to a closed port).
        let errno_answer = decision.starts_with("errno");
        let refused = errno_answer && (line.rule.is_some() || self.summary.trace_version < 2);
        let failed = errno_answer || matches!(line.result, Some(Outcome::Value(-1))) && line.errno.is_some();
        self.calls.total += 1;
        if parked {
            self.calls.parked += 1;
        } else {
            self.calls.answered += 1;
            self.latency(latency);
        }
        self.time_bin(time);
        let stats = match self.names.get_mut(name) {
            Some(s) => s,
            None => self.names.entry(name.to_string()).or_default(),
        };
        stats.count += 1;
        stats.failed += u64::from(failed);
        stats.refused += u64::from(refused);
        if !parked {
            stats.latency_us += latency;
        }
        if let Some(p) = self.processes.get_mut(&pid) {
            p.calls += 1;
            p.refused += u64::from(refused);
        }
        let args: Vec<&str> = line.args.iter().map(|a| a.as_ref()).collect();
        let errno = line.errno.as_deref().unwrap_or("");
        let touched = paths_of(name, &args);
        for (path, touch) in &touched {
            self.path(path, *touch, failed);
        }
        if let Some((direction, address)) = net_of(name, &args) {
            if self.network.len() < MAX_OTHERS || self.network.contains_key(&(direction, address.clone())) {
                let n = self.network.entry((direction, address.clone())).or_insert(NetUse {
                    direction,
                    address,
                    calls: 0,
                    failed: 0,
                });
                n.calls += 1;
                n.failed += u64::from(failed);
            }
        }
        if refused {
            let rule = line
                .rule
                .clone()
                .unwrap_or_else(|| "not recorded (a trace of version 1)".to_string());
            let to_allow = to_allow(name, &rule, &args);
            self.refusal(false, name, decision, rule, to_allow, pid, time, &args);
        } else if decision == "continue" && matches!(errno, "EACCES" | "EPERM" | "EROFS") {
            let (rule, to_allow) = match touched.first() {
                Some((path, touch)) => (
                    "refused by the kernel: the policy's Landlock rules, the file's mode, or a read-only mount"
                        .to_string(),
                    kernel_to_allow(path, *touch, errno),
                ),
                None => (
                    "refused by the kernel (permissions or capabilities inside the instance)".to_string(),
                    "—".to_string(),
                ),
            };
            self.refusal(true, name, errno, rule, to_allow, pid, time, &args);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn refusal(
        &mut self,
        by_kernel: bool,
        name: &str,
        answer: &str,
        rule: String,
        to_allow: String,
        pid: i64,
        time: f64,
        args: &[&str],
    ) {
        let program = self.program_of(pid);
        let key = (name.to_string(), format!("{rule}\0{to_allow}"), program.clone());
        let map = if by_kernel {
            &mut self.kernel_refusals
        } else {
            &mut self.refusals
        };
        if let Some(r) = map.get_mut(&key) {
            r.count += 1;
            return;
        }
        if map.len() >= MAX_REFUSALS {
            self.refusals_not_described += 1;
            return;
        }
        map.insert(
            key,
            Refusal {
                syscall: name.to_string(),
                answer: answer.to_string(),
                rule,
                to_allow,
                program,
                count: 1,
                first_s: time,
                pid,
                example: format!("{name}({})", shorten(&args.join(", "), 300)),
            },
        );
    }

    fn path(&mut self, path: &str, touch: Touch, failed: bool) {
        if !self.paths.contains_key(path) {
            if self.paths.len() >= MAX_PATHS {
                self.paths_not_described += 1;
                return;
            }
            self.paths.insert(path.to_string(), PathStats::default());
        }
        let Some(stats) = self.paths.get_mut(path) else { return };
        stats.calls += 1;
        if failed {
            stats.failed += 1;
        } else {
            stats.access[touch.index()] += 1;
        }
    }

    fn latency(&mut self, us: f64) {
        self.latency_sum_us += us;
        self.latency_max_us = self.latency_max_us.max(us);
        let bucket = if us < FIRST_EDGE_US {
            0
        } else {
            let k = ((us / FIRST_EDGE_US).log10() * PER_DECADE as f64).floor() as usize + 1;
            k.min(BUCKETS + 1)
        };
        self.buckets[bucket] += 1;
        let seen = self.calls.answered;
        if self.samples.len() < LATENCY_SAMPLES {
            self.samples.push(us as f32);
        } else {
            // Reservoir sampling: each latency kept with the same chance.
            self.sampled_over += 1;
            self.random ^= self.random << 13;
            self.random ^= self.random >> 7;
            self.random ^= self.random << 17;
            let at = self.random % seen.max(1);
            if let Ok(at) = usize::try_from(at) {
                if at < LATENCY_SAMPLES {
                    self.samples[at] = us as f32;
                }
            }
        }
    }

    fn time_bin(&mut self, time: f64) {
        if !time.is_finite() || time < 0.0 {
            return;
        }
        let mut at = (time / self.bin_s) as usize;
        while at >= TIME_BINS {
            // Twice as wide: pairs merge.
            let merged: Vec<u64> = self.bins.chunks(2).map(|c| c.iter().sum()).collect();
            self.bins = merged;
            self.bin_s *= 2.0;
            at = (time / self.bin_s) as usize;
        }
        if self.bins.len() <= at {
            self.bins.resize(at + 1, 0);
        }
        self.bins[at] += 1;
    }

    fn spawn(&mut self, line: &Line<'_>, time: f64) {
        let pid = line.pid.unwrap_or(-1);
        let tid = line.tid.unwrap_or(pid);
        self.seen(pid, tid, time);
        let Some(child) = line.child else { return };
        let thread = line.kind.as_deref() == Some("thread");
        self.alive_now(child);
        if thread {
            self.threads += 1;
            if let Some(p) = self.processes.get_mut(&pid) {
                p.threads += 1;
                if p.thread_spans.len() < MAX_THREAD_SPANS {
                    p.thread_spans.push(ThreadSpan {
                        tid: child,
                        start_s: time,
                        end_s: None,
                    });
                }
            }
            return;
        }
        let room = self.processes.len() < MAX_PROCESSES;
        match self.processes.get_mut(&child) {
            // Its own records came first.
            Some(p) => {
                p.parent = Some(pid);
                p.start_s = p.start_s.min(time);
            }
            None if room => {
                self.processes.insert(child, Proc::new(Some(pid), time));
            }
            None => self.processes_not_described += 1,
        }
    }

    fn exec(&mut self, line: &Line<'_>, time: f64) {
        let pid = line.pid.unwrap_or(-1);
        let tid = line.tid.unwrap_or(pid);
        self.seen(pid, tid, time);
        let path = line.path.clone().unwrap_or_default();
        let argv = line.argv.clone().unwrap_or_default();
        if let Some(p) = self.processes.get_mut(&pid) {
            p.program = Some(path.clone());
            p.argv.clone_from(&argv);
            if p.execs.len() < MAX_EXECS {
                p.execs.push((time, path.clone()));
            }
        }
        if self.programs.len() < MAX_OTHERS || self.programs.contains_key(&path) {
            let p = self.programs.entry(path.clone()).or_insert(ProgramUse {
                path,
                runs: 0,
                example: argv,
            });
            p.runs += 1;
        }
    }

    fn exit(&mut self, line: &Line<'_>, time: f64) {
        let pid = line.pid.unwrap_or(-1);
        let tid = line.tid.unwrap_or(pid);
        self.seen(pid, tid, time);
        self.alive.remove(&tid);
        if self.gone.len() < MAX_TASKS_FOLLOWED {
            self.gone.insert(tid);
        }
        if line.kind.as_deref() == Some("thread") {
            if let Some(span) = self
                .processes
                .get_mut(&pid)
                .and_then(|p| p.thread_spans.iter_mut().find(|t| t.tid == tid && t.end_s.is_none()))
            {
                span.end_s = Some(time);
            }
            return;
        }
        let (exit, failed) = match (&line.code, &line.signal) {
            (Some(code), _) => (format!("exited {code}"), *code != 0),
            (None, Some(signal)) => (format!("killed by {signal}"), true),
            (None, None) => ("ended".to_string(), false),
        };
        if pid == 1 {
            self.init_exit = line.code;
        }
        if let Some(p) = self.processes.get_mut(&pid) {
            p.end_s = Some(time);
            p.exit = Some(exit);
            p.failed = failed;
        }
    }

    /// The report of everything fed so far.
    pub fn finish(&self) -> Report {
        let mut summary = self.summary.clone();
        let (duration, status, outcome) = match &self.end {
            Some((t, status, outcome)) => (*t, *status, outcome.clone()),
            None => (self.last_time, self.init_exit, None),
        };
        summary.duration_s = duration.max(self.last_time);
        summary.status = status;
        summary.outcome = outcome;
        summary.calls = self.calls.total;
        summary.threads = self.threads;
        summary.processes = self.processes.len() as u64 + self.processes_not_described;
        if summary.command.is_empty() {
            // Before headers: the first program the guest ran.
            summary.command = self
                .processes
                .values()
                .find(|p| !p.argv.is_empty())
                .map(|p| p.argv.clone())
                .unwrap_or_default();
        }

        let mut calls = self.calls.clone();
        let mut by_name: Vec<NameCount> = self
            .names
            .iter()
            .map(|(name, s)| NameCount {
                name: name.clone(),
                class: class_of(name),
                count: s.count,
                failed: s.failed,
                refused: s.refused,
                latency_total_us: s.latency_us,
            })
            .collect();
        by_name.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        let mut classes: BTreeMap<&'static str, u64> = BTreeMap::new();
        for n in &by_name {
            *classes.entry(n.class).or_default() += n.count;
        }
        let mut by_class: Vec<ClassCount> = classes
            .into_iter()
            .map(|(class, count)| ClassCount { class, count })
            .collect();
        by_class.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.class.cmp(b.class)));
        calls.by_name = by_name;
        calls.by_class = by_class;
        calls.latency = self.latency_summary();
        calls.supervisor_wait_s = self.latency_sum_us / 1e6;
        calls.supervisor_share = if summary.duration_s > 0.0 {
            calls.supervisor_wait_s / summary.duration_s
        } else {
            0.0
        };

        let mut notes = Vec::new();
        if self.sampled_over > 0 {
            notes.push(format!(
                "The latency percentiles come from a uniform sample of {} of the {} calls answered at once; the histogram counts them all.",
                self.samples.len(),
                calls.answered
            ));
        }
        if self.processes_not_described > 0 {
            notes.push(format!(
                "{} processes past the first {MAX_PROCESSES} are counted, not described.",
                self.processes_not_described
            ));
        }
        if self.paths_not_described > 0 {
            notes.push(format!(
                "{} uses of paths past the first {MAX_PATHS} distinct paths are not listed.",
                self.paths_not_described
            ));
        }
        if self.refusals_not_described > 0 {
            notes.push(format!(
                "{} refusals past the first {MAX_REFUSALS} distinct ones are not listed.",
                self.refusals_not_described
            ));
        }

        let mut refusals: Vec<Refusal> = self.refusals.values().cloned().collect();
        refusals.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_s.total_cmp(&b.first_s)));
        let mut kernel_refusals: Vec<Refusal> = self.kernel_refusals.values().cloned().collect();
        kernel_refusals.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_s.total_cmp(&b.first_s)));

        let mut files: Vec<FileUse> = self
            .paths
            .iter()
            .map(|(path, s)| FileUse {
                path: path.clone(),
                access: ACCESS_NAMES
                    .iter()
                    .zip(s.access.iter())
                    .filter(|(_, n)| **n > 0)
                    .map(|(name, _)| *name)
                    .collect(),
                calls: s.calls,
                failed: s.failed,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut programs: Vec<ProgramUse> = self.programs.values().cloned().collect();
        programs.sort_by(|a, b| a.path.cmp(&b.path));
        let mut network: Vec<NetUse> = self.network.values().cloned().collect();
        network.sort_by(|a, b| (a.direction, &a.address).cmp(&(b.direction, &b.address)));

        Report {
            summary,
            processes: self.tree(),
            processes_not_described: self.processes_not_described,
            calls,
            timeline: Timeline {
                bin_s: self.bin_s,
                calls: self.bins.clone(),
            },
            refusals,
            kernel_refusals,
            refusals_not_described: self.refusals_not_described,
            touched: Touched {
                files,
                files_not_described: self.paths_not_described,
                programs,
                network,
            },
            problems: self.problems.iter().map(ToString::to_string).collect(),
            lines_read: self.lines_read,
            lines_unread: self.lines_unread,
            notes,
        }
    }

    fn latency_summary(&self) -> Latency {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f32::total_cmp);
        let pick = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            f64::from(sorted[at.min(sorted.len() - 1)])
        };
        let edge = |k: usize| FIRST_EDGE_US * 10f64.powf((k as f64 - 1.0) / PER_DECADE as f64);
        let first = self.buckets.iter().position(|&n| n > 0);
        let last = self.buckets.iter().rposition(|&n| n > 0);
        let histogram = match (first, last) {
            (Some(first), Some(last)) => (first..=last)
                .map(|k| Bucket {
                    from_us: if k == 0 { 0.0 } else { edge(k) },
                    to_us: if k == BUCKETS + 1 { f64::INFINITY } else { edge(k + 1) },
                    count: self.buckets[k],
                })
                .map(|mut b| {
                    if b.to_us.is_infinite() {
                        b.to_us = self.latency_max_us;
                    }
                    b
                })
                .collect(),
            _ => Vec::new(),
        };
        let count = self.calls.answered;
        Latency {
            count,
            p50_us: pick(0.5),
            p90_us: pick(0.9),
            p99_us: pick(0.99),
            max_us: self.latency_max_us,
            mean_us: if count > 0 {
                self.latency_sum_us / count as f64
            } else {
                0.0
            },
            histogram,
            percentiles_from: sorted.len() as u64,
        }
    }

    /// Processes in tree order: each after its parent, siblings by start.
    fn tree(&self) -> Vec<Process> {
        let mut children: BTreeMap<Option<i64>, Vec<i64>> = BTreeMap::new();
        for (&pid, p) in &self.processes {
            let parent = p
                .parent
                .filter(|parent| self.processes.contains_key(parent) && *parent != pid);
            children.entry(parent).or_default().push(pid);
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| {
                self.processes[a]
                    .start_s
                    .total_cmp(&self.processes[b].start_s)
                    .then(a.cmp(b))
            });
        }
        let shown = |pid: i64, p: &Proc, depth: u32| Process {
            pid,
            parent: p.parent,
            depth,
            start_s: p.start_s,
            end_s: p.end_s,
            exit: p.exit.clone(),
            failed: p.failed,
            program: p.program.clone(),
            argv: p.argv.clone(),
            execs: p.execs.clone(),
            threads: p.threads,
            thread_spans: p.thread_spans.clone(),
            calls: p.calls,
            refused: p.refused,
        };
        let mut out = Vec::with_capacity(self.processes.len());
        let mut placed = HashSet::new();
        let mut stack: Vec<(i64, u32)> = children
            .get(&None)
            .map(|roots| roots.iter().rev().map(|&r| (r, 0)).collect())
            .unwrap_or_default();
        while let Some((pid, depth)) = stack.pop() {
            if !placed.insert(pid) {
                continue;
            }
            out.push(shown(pid, &self.processes[&pid], depth));
            if let Some(kids) = children.get(&Some(pid)) {
                for &k in kids.iter().rev() {
                    stack.push((k, depth + 1));
                }
            }
        }
        // A cycle of parents (a bad trace) leaves some unplaced: listed last.
        for (&pid, p) in &self.processes {
            if !placed.contains(&pid) {
                out.push(shown(pid, p, 0));
            }
        }
        out
    }
}

/// `s`, at most `max` characters, with "…" when cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// A quoted string argument as the trace shows it (`"/etc/passwd"`),
/// without its quotes; `None` for anything else.
fn unquote(arg: &str) -> Option<&str> {
    let inner = arg.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.is_empty()).then_some(inner)
}

/// What an open's flags (as decoded: `O_WRONLY|O_CREAT`) do.
fn open_touch(flags: &str) -> Touch {
    if flags.contains("O_PATH") {
        Touch::Look
    } else if ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_TMPFILE"]
        .iter()
        .any(|f| flags.contains(f))
    {
        Touch::Write
    } else {
        Touch::Read
    }
}

/// The paths a call names, with what it does to each.
fn paths_of(name: &str, args: &[&str]) -> Vec<(String, Touch)> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let at = |i: usize, touch: Touch| unquote(arg(i)).map(|p| (p.to_string(), touch));
    let found: [Option<(String, Touch)>; 2] = match name {
        "open" => [at(0, open_touch(arg(1))), None],
        "openat" => [at(1, open_touch(arg(2))), None],
        "openat2" => [at(1, Touch::Read), None],
        "creat" | "truncate" => [at(0, Touch::Write), None],
        "execve" => [at(0, Touch::Exec), None],
        "execveat" => [at(1, Touch::Exec), None],
        "mkdir" | "rmdir" | "unlink" | "mknod" => [at(0, Touch::Entry), None],
        "mkdirat" | "unlinkat" | "mknodat" => [at(1, Touch::Entry), None],
        "rename" | "link" => [at(0, Touch::Entry), at(1, Touch::Entry)],
        "renameat" | "renameat2" | "linkat" => [at(1, Touch::Entry), at(3, Touch::Entry)],
        "symlink" => [at(1, Touch::Entry), None],
        "symlinkat" => [at(2, Touch::Entry), None],
        "stat" | "lstat" | "access" | "readlink" | "chdir" | "chmod" | "chown" | "lchown" | "utime" | "utimes"
        | "statfs" | "getxattr" | "lgetxattr" | "listxattr" | "llistxattr" | "setxattr" | "lsetxattr"
        | "removexattr" | "lremovexattr" => [at(0, Touch::Look), None],
        "newfstatat" | "statx" | "faccessat" | "faccessat2" | "readlinkat" | "fchmodat" | "fchmodat2" | "fchownat"
        | "futimesat" | "utimensat" => [at(1, Touch::Look), None],
        _ => [None, None],
    };
    found.into_iter().flatten().collect()
}

/// A connect's or bind's destination as the trace shows it
/// (`{127.0.0.1:80}`, `{unix "/run/x.sock"}`).
fn net_of(name: &str, args: &[&str]) -> Option<(&'static str, String)> {
    let direction = match name {
        "connect" => "connect",
        "bind" => "bind",
        _ => return None,
    };
    let shown = args.get(1)?.strip_prefix('{')?.strip_suffix('}')?;
    Some((direction, shown.to_string()))
}

/// What to change so that a call the supervisor refused by `rule` passes.
pub fn to_allow(name: &str, rule: &str, args: &[&str]) -> String {
    if rule == "in --deny-syscall" {
        return format!("drop {name} from --deny-syscall");
    }
    if let Some(source) = rule.strip_prefix("in ") {
        // "[syscalls].deny (web.toml)"
        if let Some((key, file)) = source.split_once(" (") {
            return format!("remove \"{name}\" from {key} in {}", file.trim_end_matches(')'));
        }
        return format!("remove {name} from {source}");
    }
    if let Some(source) = rule.strip_prefix("not in ") {
        let destination = args
            .get(1)
            .and_then(|a| a.strip_prefix('{'))
            .and_then(|a| a.strip_suffix('}'))
            .map(|a| match a.strip_prefix("unix ") {
                Some(path) => format!("unix:{}", path.trim_matches('"')),
                None => format!("tcp:{a}"),
            })
            .unwrap_or_else(|| "the destination".to_string());
        // "[net].connect (web.toml)"
        return match source.split_once(" (") {
            Some((key, file)) => format!("add \"{destination}\" to {key} in {}", file.trim_end_matches(')')),
            None => format!("add \"{destination}\" to {source}"),
        };
    }
    if rule.contains("(--pids)") {
        return "raise --pids (or [limits].pids in the policy file)".to_string();
    }
    if rule.contains("writable volume") {
        return "drop the setuid/setgid bits, or make the volume read-only".to_string();
    }
    if rule.starts_with("not provided") {
        return "nothing: programs fall back by themselves".to_string();
    }
    if rule.contains("every profile") || rule.contains("not the guest's") || rule.contains("outside the instance") {
        return "nothing: xvisor refuses it whatever the policy".to_string();
    }
    "see docs/policy.md".to_string()
}

/// What to add to a policy file for a path the kernel refused.
fn kernel_to_allow(path: &str, touch: Touch, errno: &str) -> String {
    if errno == "EROFS" {
        return format!("mount a writable volume at or above {path} (-v SRC:DST:rw)");
    }
    let list = match touch {
        Touch::Read | Touch::Look => "read",
        Touch::Write | Touch::Entry => "write",
        Touch::Exec => "exec",
    };
    let subject = match touch {
        Touch::Entry => path
            .rsplit_once('/')
            .map_or(path, |(dir, _)| if dir.is_empty() { "/" } else { dir }),
        _ => path,
    };
    format!("if a policy file restricts it: add \"{subject}\" to [fs].{list}")
}

/// The class a call belongs to, for the by-class counts.
pub fn class_of(name: &str) -> &'static str {
    const FILE: &[&str] = &[
        "open",
        "openat",
        "openat2",
        "creat",
        "close",
        "close_range",
        "read",
        "write",
        "pread64",
        "pwrite64",
        "readv",
        "writev",
        "preadv",
        "pwritev",
        "preadv2",
        "pwritev2",
        "lseek",
        "stat",
        "lstat",
        "fstat",
        "newfstatat",
        "statx",
        "statfs",
        "fstatfs",
        "access",
        "faccessat",
        "faccessat2",
        "readlink",
        "readlinkat",
        "getdents",
        "getdents64",
        "mkdir",
        "mkdirat",
        "rmdir",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "chmod",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "fchown",
        "lchown",
        "fchownat",
        "truncate",
        "ftruncate",
        "fsync",
        "fdatasync",
        "sync",
        "syncfs",
        "fcntl",
        "ioctl",
        "dup",
        "dup2",
        "dup3",
        "chdir",
        "fchdir",
        "getcwd",
        "mknod",
        "mknodat",
        "utime",
        "utimes",
        "utimensat",
        "futimesat",
        "fallocate",
        "sendfile",
        "copy_file_range",
        "splice",
        "tee",
        "flock",
        "umask",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "inotify_init1",
        "inotify_add_watch",
        "inotify_rm_watch",
        "fanotify_init",
        "name_to_handle_at",
        "open_by_handle_at",
    ];
    const PROCESS: &[&str] = &[
        "clone",
        "clone3",
        "fork",
        "vfork",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "wait4",
        "waitid",
        "kill",
        "tkill",
        "tgkill",
        "prctl",
        "arch_prctl",
        "setns",
        "unshare",
        "ptrace",
        "getpid",
        "getppid",
        "gettid",
        "set_tid_address",
        "getpgid",
        "setpgid",
        "getpgrp",
        "getsid",
        "setsid",
        "prlimit64",
        "getrlimit",
        "setrlimit",
        "getrusage",
        "sched_yield",
        "sched_getaffinity",
        "sched_setaffinity",
        "getpriority",
        "setpriority",
        "pidfd_open",
        "pidfd_send_signal",
        "pidfd_getfd",
        "set_robust_list",
        "get_robust_list",
        "rseq",
        "seccomp",
        "personality",
        "uname",
        "sysinfo",
        "getrandom",
        "sethostname",
        "setdomainname",
        "process_vm_readv",
        "process_vm_writev",
    ];
    const NETWORK: &[&str] = &[
        "socket",
        "socketpair",
        "connect",
        "bind",
        "listen",
        "accept",
        "accept4",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "shutdown",
        "getsockname",
        "getpeername",
        "getsockopt",
        "setsockopt",
    ];
    const IDENTITY: &[&str] = &[
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "getresuid",
        "getresgid",
        "setfsuid",
        "setfsgid",
        "getgroups",
        "setgroups",
        "capget",
        "capset",
    ];
    const MEMORY: &[&str] = &[
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "mremap",
        "madvise",
        "mlock",
        "mlock2",
        "munlock",
        "mlockall",
        "munlockall",
        "msync",
        "mincore",
        "memfd_create",
        "pkey_mprotect",
        "pkey_alloc",
        "pkey_free",
        "mbind",
        "set_mempolicy",
        "get_mempolicy",
        "membarrier",
    ];
    const SIGNAL: &[&str] = &[
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "rt_sigsuspend",
        "sigaltstack",
        "signalfd",
        "signalfd4",
        "pause",
    ];
    const TIME: &[&str] = &[
        "clock_gettime",
        "clock_getres",
        "clock_nanosleep",
        "clock_settime",
        "clock_adjtime",
        "nanosleep",
        "gettimeofday",
        "settimeofday",
        "time",
        "times",
        "alarm",
        "getitimer",
        "setitimer",
        "timer_create",
        "timer_settime",
        "timer_gettime",
        "timer_getoverrun",
        "timer_delete",
        "timerfd_create",
        "timerfd_settime",
        "timerfd_gettime",
        "adjtimex",
    ];
    const WAIT_AND_IPC: &[&str] = &[
        "pipe",
        "pipe2",
        "eventfd",
        "eventfd2",
        "futex",
        "futex_waitv",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "shmget",
        "shmat",
        "shmdt",
        "shmctl",
        "msgget",
        "msgsnd",
        "msgrcv",
        "msgctl",
        "semget",
        "semop",
        "semtimedop",
        "semctl",
        "mq_open",
        "mq_unlink",
        "mq_timedsend",
        "mq_timedreceive",
        "mq_notify",
        "mq_getsetattr",
    ];
    let groups: [(&'static str, &[&str]); 8] = [
        ("file", FILE),
        ("process", PROCESS),
        ("network", NETWORK),
        ("identity", IDENTITY),
        ("memory", MEMORY),
        ("signal", SIGNAL),
        ("time", TIME),
        ("ipc and waiting", WAIT_AND_IPC),
    ];
    groups.iter().find(|(_, names)| names.contains(&name)).map_or_else(
        || {
            if name.contains("xattr") {
                "file"
            } else {
                "other"
            }
        },
        |(class, _)| class,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(lines: &[&str]) -> Report {
        let mut b = Builder::new();
        for (i, l) in lines.iter().enumerate() {
            b.feed_line(l.as_bytes(), i as u64 + 1, false);
        }
        b.finish()
    }

    const RUN: &[&str] = &[
        r#"{"trace": 2, "command": ["sh", "-c", "x"], "profile": "strict", "limits": {"pids": "64"}}"#,
        r#"{"time": 0.001, "pid": 1, "tid": 1, "event": "spawn", "child": 2, "kind": "process"}"#,
        r#"{"time": 0.002, "pid": 2, "tid": 2, "event": "exec", "path": "/usr/bin/dash", "argv": ["sh", "-c", "x"]}"#,
        r#"{"time": 0.003, "pid": 2, "tid": 2, "syscall": "openat", "args": ["AT_FDCWD", "\"/etc/hostname\"", "O_RDONLY", "0"], "decision": "continue", "result": 3, "latency_us": 10.0}"#,
        r#"{"time": 0.004, "pid": 2, "tid": 2, "syscall": "openat", "args": ["AT_FDCWD", "\"/out\"", "O_WRONLY|O_CREAT", "0644"], "decision": "continue", "result": -1, "errno": "EACCES", "latency_us": 20.0}"#,
        r#"{"time": 0.005, "pid": 2, "tid": 2, "syscall": "getpid", "args": [], "decision": "errno EPERM", "result": -1, "errno": "EPERM", "latency_us": 30.0, "rule": "in --deny-syscall"}"#,
        r#"{"time": 0.006, "pid": 2, "tid": 2, "event": "spawn", "child": 3, "kind": "thread"}"#,
        r#"{"time": 0.007, "pid": 2, "tid": 3, "syscall": "wait4", "args": ["-1"], "decision": "park until a child ends", "result": "parked", "latency_us": 5.0}"#,
        r#"{"time": 0.009, "pid": 2, "tid": 3, "syscall": "wait4", "args": ["-1"], "decision": "continue", "result": "performed by the kernel", "latency_us": 2000.0, "after_park": true}"#,
        r#"{"time": 0.010, "pid": 2, "tid": 3, "event": "exit", "kind": "thread", "code": 0}"#,
        r#"{"time": 0.011, "pid": 2, "tid": 2, "event": "exit", "kind": "process", "code": 3}"#,
        r#"{"time": 0.012, "pid": 1, "tid": 1, "event": "exit", "kind": "process", "code": 3}"#,
        r#"{"time": 0.013, "event": "end", "status": 3, "outcome": "exited", "trapped": 5}"#,
    ];

    #[test]
    fn a_known_run_is_counted_exactly() {
        let r = build(RUN);
        assert_eq!(r.lines_unread, 0, "{:?}", r.problems);
        assert_eq!(r.summary.command, ["sh", "-c", "x"]);
        assert_eq!(r.summary.status, Some(3));
        assert_eq!(r.summary.peak_tasks, 3);
        assert_eq!((r.summary.processes, r.summary.threads), (2, 1));
        assert_eq!((r.calls.total, r.calls.answered, r.calls.parked), (4, 3, 1));
        assert!((r.calls.parked_wait_s - 0.002).abs() < 1e-9);
        assert!((r.calls.supervisor_wait_s - 60e-6).abs() < 1e-9);
        assert_eq!(r.calls.latency.p50_us, 20.0);
        let hist: u64 = r.calls.latency.histogram.iter().map(|b| b.count).sum();
        assert_eq!(hist, 3);
        let openat = r.calls.by_name.iter().find(|n| n.name == "openat").unwrap();
        assert_eq!((openat.count, openat.failed, openat.class), (2, 1, "file"));
        assert_eq!(r.refusals.len(), 1);
        assert_eq!(r.refusals[0].to_allow, "drop getpid from --deny-syscall");
        assert_eq!(r.refusals[0].program, "/usr/bin/dash");
        assert_eq!(r.kernel_refusals.len(), 1);
        assert!(r.kernel_refusals[0].to_allow.contains("[fs].write"));
        let files: Vec<(&str, &[&str])> = r
            .touched
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.access.as_slice()))
            .collect();
        assert_eq!(files, vec![("/etc/hostname", &["read"][..]), ("/out", &[][..])]);
        assert_eq!(
            r.processes.iter().map(|p| (p.pid, p.depth)).collect::<Vec<_>>(),
            [(1, 0), (2, 1)]
        );
        assert_eq!(r.processes[1].exit.as_deref(), Some("exited 3"));
        let span = &r.processes[1].thread_spans[0];
        assert_eq!((span.tid, span.start_s, span.end_s), (3, 0.006, Some(0.010)));
        assert_eq!(r.timeline.calls.iter().sum::<u64>(), 4);
    }

    #[test]
    fn a_record_after_a_tasks_end_does_not_bring_it_back() {
        let mut lines = RUN.to_vec();
        // A child ends before its birth is reported, then a late call.
        lines.insert(
            1,
            r#"{"time": 0.0005, "pid": 9, "tid": 9, "event": "exit", "kind": "process", "code": 0}"#,
        );
        lines.insert(
            2,
            r#"{"time": 0.0006, "pid": 1, "tid": 1, "event": "spawn", "child": 9, "kind": "process"}"#,
        );
        lines.insert(3, r#"{"time": 0.0004, "pid": 9, "tid": 9, "syscall": "getpid", "args": [], "decision": "continue", "result": 9, "latency_us": 1.0}"#);
        let r = build(&lines);
        assert_eq!(r.summary.peak_tasks, 3, "{:#?}", r.summary);
    }

    #[test]
    fn a_performed_call_that_failed_is_not_a_refusal() {
        let mut lines = RUN.to_vec();
        lines.insert(3, r#"{"time": 0.0025, "pid": 2, "tid": 2, "syscall": "connect", "args": ["3", "{127.0.0.1:9}", "16"], "decision": "errno ECONNREFUSED", "result": -1, "errno": "ECONNREFUSED", "latency_us": 9.0}"#);
        let r = build(&lines);
        assert_eq!(r.refusals.len(), 1, "{:#?}", r.refusals);
        let connect = r.calls.by_name.iter().find(|n| n.name == "connect").unwrap();
        assert_eq!((connect.failed, connect.refused), (1, 0));
    }

    #[test]
    fn a_bad_line_is_named_and_the_rest_read() {
        let mut lines = RUN.to_vec();
        lines.insert(4, "garbage");
        let r = build(&lines);
        assert_eq!(r.lines_unread, 1);
        assert!(
            r.problems[0].starts_with("line 5: not a trace record"),
            "{:?}",
            r.problems
        );
        assert_eq!(r.calls.total, 4);
    }

    #[test]
    fn a_newer_trace_is_read_as_far_as_understood() {
        let mut lines = RUN.to_vec();
        lines[0] = r#"{"trace": 9, "command": ["x"]}"#;
        lines.push(r#"{"time": 0.2, "event": "future-kind"}"#);
        let r = build(&lines);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].starts_with("line 1: written by a newer xvisor"));
        assert_eq!(r.calls.total, 4);
    }

    #[test]
    fn a_version_1_trace_still_loads() {
        let r = build(&RUN[1..RUN.len() - 1]);
        assert_eq!(r.summary.trace_version, 1);
        assert_eq!(r.summary.command, ["sh", "-c", "x"]);
        assert_eq!(r.summary.status, Some(3));
        assert_eq!(r.lines_unread, 0);
    }

    #[test]
    fn time_bins_widen_and_keep_every_call() {
        let mut b = Builder::new();
        for i in 0..5000u32 {
            let l = format!(
                r#"{{"time": {}, "pid": 1, "tid": 1, "syscall": "getpid", "args": [], "decision": "continue", "result": 1, "latency_us": 1.0}}"#,
                f64::from(i) * 0.01
            );
            b.feed_line(l.as_bytes(), u64::from(i) + 1, false);
        }
        let r = b.finish();
        assert!(r.timeline.calls.len() <= TIME_BINS);
        assert_eq!(r.timeline.calls.iter().sum::<u64>(), 5000);
    }

    #[test]
    fn suggestions_name_what_to_change() {
        assert_eq!(
            to_allow("ptrace", "in [syscalls].deny (web.toml)", &[]),
            "remove \"ptrace\" from [syscalls].deny in web.toml"
        );
        assert_eq!(
            to_allow(
                "connect",
                "not in [net].connect (web.toml)",
                &["3", "{10.0.0.5:443}", "16"]
            ),
            "add \"tcp:10.0.0.5:443\" to [net].connect in web.toml"
        );
        assert!(to_allow("bpf", "refused in every profile (xvisor's system-call table)", &[]).starts_with("nothing"));
    }
}
