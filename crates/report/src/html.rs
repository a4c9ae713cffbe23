//! A report → one self-contained HTML page.
//!
//! Inline CSS and SVG drawn here, no script at all, and a content security
//! policy (`default-src 'none'`) so that the page neither runs a script
//! nor fetches anything even if some text slipped through unescaped.
//! Every string that came from the trace — from the guest — goes through
//! [`escape`] on its way into the page, in text and in attributes alike.

use std::fmt::Write as _;

use crate::model::{Process, Refusal, Report, ThreadSpan};

/// Rows of a table shown before the rest is summarised in one line.
const MAX_ROWS: usize = 1_000;
/// Processes drawn as lanes in the timeline.
const MAX_LANES: usize = 120;

/// `s` as HTML text or attribute value: `& < > " '` as entities, and
/// control characters (which the guest may put in a path) as U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A command line as one line of text (words with spaces or quotes quoted).
fn words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds, readably: `850 µs`, `12.3 ms`, `4.56 s`.
fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "?".to_string()
    } else if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        seconds(us / 1e6)
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:4px 0 8px}td,th{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #eee}
th{background:#f5f5f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nw{white-space:nowrap}
code,.mono{font-family:ui-monospace,monospace;font-size:12.5px;word-break:break-all}
.bad{color:#b00020}.muted{color:#6e6e73}.note{background:#fff8e1;border-left:3px solid #f0b400;padding:4px 8px;margin:6px 0}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dl.summary dt{color:#6e6e73}dl.summary dd{margin:0}
.bar{display:inline-block;height:10px;background:#4a7bd0;vertical-align:middle}
svg{display:block;margin:6px 0;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#333}svg text.muted{fill:#6e6e73}
details summary{cursor:pointer;color:#2a5db0}
nav a{margin-right:12px}
";

/// The page.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = if r.summary.command.is_empty() {
        "xvisor run".to_string()
    } else {
        format!("xvisor run: {}", crate::model::shorten(&words(&r.summary.command), 80))
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n<title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    h.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#processes\">Processes</a><a href=\"#timeline\">Timeline</a><a href=\"#calls\">Calls</a><a href=\"#refusals\">Refusals</a><a href=\"#touched\">Touched</a><a href=\"#about\">About</a></nav>\n");
    summary(&mut h, r);
    processes(&mut h, r);
    timeline(&mut h, r);
    calls(&mut h, r);
    refusals(&mut h, r);
    touched(&mut h, r);
    about(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, r: &Report) {
    let s = &r.summary;
    h.push_str("<h2 id=\"summary\">Summary</h2>\n");
    if !r.problems.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\" id=\"problems\">The trace had {} unreadable line(s); this report shows what could be read. First: {}</p>",
            r.lines_unread,
            escape(&r.problems[0])
        );
    }
    h.push_str("<dl class=\"summary\">\n");
    let mut row = |name: &str, id: &str, value: String| {
        let _ = writeln!(h, "<dt>{name}</dt><dd id=\"{id}\">{value}</dd>");
    };
    row(
        "command",
        "command",
        format!("<code>{}</code>", escape(&words(&s.command))),
    );
    if let Some(started) = &s.started {
        row("started", "started", escape(started));
    }
    row("duration", "duration", seconds(s.duration_s));
    let status = match (s.status, &s.outcome) {
        (Some(code), Some(outcome)) => format!("{code} ({})", escape(outcome)),
        (Some(code), None) => code.to_string(),
        (None, Some(outcome)) => escape(outcome),
        (None, None) => "not recorded (the trace has no end)".to_string(),
    };
    row("exit status", "status", status);
    row(
        "profile",
        "profile",
        escape(s.profile.as_deref().unwrap_or("not recorded")),
    );
    row("policy", "policy", escape(s.policy.as_deref().unwrap_or("none")));
    let limits = if s.limits.is_empty() {
        "none given".to_string()
    } else {
        s.limits
            .iter()
            .map(|(k, v)| format!("{} {}", escape(k), escape(v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    row("limits", "limits", limits);
    row("peak tasks", "peak-tasks", s.peak_tasks.to_string());
    row("processes", "processes-count", s.processes.to_string());
    row("threads", "threads-count", s.threads.to_string());
    row("calls recorded", "total-calls", s.calls.to_string());
    if let Some(t) = s.trapped {
        row("calls trapped (supervisor's count)", "trapped", t.to_string());
    }
    row(
        "waiting for the supervisor",
        "supervisor-wait",
        format!(
            "{} summed over tasks = {} of the run",
            seconds(r.calls.supervisor_wait_s),
            percent(r.calls.supervisor_share)
        ),
    );
    row(
        "refusals",
        "refusal-count",
        r.refusals.iter().map(|x| x.count).sum::<u64>().to_string(),
    );
    h.push_str("</dl>\n");
}

fn processes(h: &mut String, r: &Report) {
    h.push_str("<h2 id=\"processes\">Processes</h2>\n");
    h.push_str("<table id=\"process-tree\"><tr><th>pid</th><th>command line</th><th class=\"n\">start</th><th class=\"n\">lifetime</th><th>exit</th><th class=\"n\">threads</th><th class=\"n\">calls</th></tr>\n");
    for p in r.processes.iter().take(MAX_ROWS) {
        let command = if p.argv.is_empty() {
            match &p.program {
                Some(prog) => escape(prog),
                None if p.pid == 1 => {
                    "<span class=\"muted\">(xvisor's init: reaps orphans, passes signals on)</span>".to_string()
                }
                None => "<span class=\"muted\">(no exec seen: a copy of its parent)</span>".to_string(),
            }
        } else {
            escape(&crate::model::shorten(&words(&p.argv), 400))
        };
        let program = match &p.program {
            Some(prog) if p.argv.first().is_none_or(|a| a != prog) => {
                format!(" <span class=\"muted\">{}</span>", escape(prog))
            }
            _ => String::new(),
        };
        let execs = if p.execs.len() > 1 {
            format!(" <span class=\"muted\">({} execs)</span>", p.execs.len())
        } else {
            String::new()
        };
        let lifetime = match p.end_s {
            Some(end) => seconds(end - p.start_s),
            None => "ran to the end".to_string(),
        };
        let exit = match &p.exit {
            Some(e) if p.failed => format!("<span class=\"bad\">{}</span>", escape(e)),
            Some(e) => escape(e),
            None => "—".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr data-pid=\"{}\"><td class=\"n\">{}</td><td class=\"mono\" style=\"padding-left:{}px\">{}{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"nw\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            p.pid,
            p.pid,
            8 + 16 * p.depth.min(30),
            if p.depth > 0 { "└ " } else { "" },
            command,
            format_args!("{program}{execs}"),
            seconds(p.start_s),
            lifetime,
            exit,
            p.threads,
            p.calls
        );
    }
    h.push_str("</table>\n");
    let hidden = r.processes.len().saturating_sub(MAX_ROWS) as u64 + r.processes_not_described;
    if hidden > 0 {
        let _ = writeln!(h, "<p class=\"muted\">… and {hidden} more processes, not listed.</p>");
    }
}

fn timeline(h: &mut String, r: &Report) {
    h.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
    let duration = r.summary.duration_s.max(1e-6);
    let width = 1100.0;
    let left = 170.0;
    let plot = width - left - 10.0;
    let x = |t: f64| left + (t.max(0.0) / duration).min(1.0) * plot;
    // Calls over time.
    let bins = &r.timeline.calls;
    if !bins.is_empty() {
        let top = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
        let height = 70.0;
        let _ = writeln!(
            h,
            "<p class=\"muted\">Calls recorded per {} (highest: {}).</p>\n<svg id=\"calls-over-time\" viewBox=\"0 0 {width} {h2}\" width=\"{width}\" height=\"{h2}\" role=\"img\" aria-label=\"calls over time\">",
            seconds(r.timeline.bin_s),
            top as u64,
            h2 = height + 18.0
        );
        for (i, &n) in bins.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let t0 = i as f64 * r.timeline.bin_s;
            let x0 = x(t0);
            let w = (x(t0 + r.timeline.bin_s) - x0).max(1.0);
            let bar = (n as f64 / top) * height;
            let _ = writeln!(
                h,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{bar:.1}\" fill=\"#4a7bd0\"><title>{} calls from {}</title></rect>",
                height - bar,
                n,
                seconds(t0)
            );
        }
        axis(h, left, plot, height, duration);
        h.push_str("</svg>\n");
    }
    // Processes as lanes, each followed by its threads' thinner lanes.
    let mut lanes: Vec<(&Process, Option<&ThreadSpan>)> = Vec::new();
    let mut drawn = 0;
    for p in &r.processes {
        if lanes.len() >= MAX_LANES {
            break;
        }
        lanes.push((p, None));
        drawn += 1;
        for t in &p.thread_spans {
            if lanes.len() >= MAX_LANES {
                break;
            }
            lanes.push((p, Some(t)));
        }
    }
    if lanes.is_empty() {
        h.push_str("<p class=\"muted\">No process events in the trace.</p>\n");
        return;
    }
    let lane = 16.0;
    let height = lanes.len() as f64 * lane;
    let _ = writeln!(
        h,
        "<p class=\"muted\">Each process a lane, from its birth to its end, its threads in thinner lanes under it; ▲ an exec, ● its exit (red: failed or killed).</p>\n<svg id=\"lanes\" viewBox=\"0 0 {width} {h2}\" width=\"{width}\" height=\"{h2}\" role=\"img\" aria-label=\"processes over time\">",
        h2 = height + 18.0
    );
    for (i, (p, thread)) in lanes.iter().enumerate() {
        let y = i as f64 * lane;
        if let Some(t) = thread {
            let x0 = x(t.start_s);
            let x1 = x(t.end_s.or(p.end_s).unwrap_or(duration)).max(x0 + 1.0);
            let _ = writeln!(
                h,
                "<text x=\"16\" y=\"{:.1}\" class=\"muted\">thread {}</text><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"4\" fill=\"#c5d5f0\"><title>thread {} of pid {}: {} → {}</title></rect>",
                y + 11.0,
                t.tid,
                y + 6.0,
                x1 - x0,
                t.tid,
                p.pid,
                seconds(t.start_s),
                t.end_s.map_or_else(|| "its process's end".to_string(), seconds)
            );
            continue;
        }
        let label = p
            .argv
            .first()
            .cloned()
            .or_else(|| p.program.clone())
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\">{} {}</text>",
            y + 11.0,
            p.pid,
            escape(&crate::model::shorten(&label, 22))
        );
        let x0 = x(p.start_s);
        let x1 = x(p.end_s.unwrap_or(duration)).max(x0 + 1.0);
        let _ = writeln!(
            h,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#9db8e8\"><title>pid {}: {} → {}</title></rect>",
            y + 4.0,
            x1 - x0,
            p.pid,
            seconds(p.start_s),
            p.end_s.map_or_else(|| "the end".to_string(), seconds)
        );
        for (t, program) in &p.execs {
            let _ = writeln!(
                h,
                "<path d=\"M{:.1} {:.1}l4 7h-8z\" fill=\"#2a5db0\"><title>exec {} at {}</title></path>",
                x(*t),
                y + 1.0,
                escape(program),
                seconds(*t)
            );
        }
        if let (Some(end), Some(exit)) = (p.end_s, &p.exit) {
            let _ = writeln!(
                h,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{} at {}</title></circle>",
                x(end),
                y + 8.0,
                if p.failed { "#b00020" } else { "#2e7d32" },
                escape(exit),
                seconds(end)
            );
        }
    }
    axis(h, left, plot, height, duration);
    h.push_str("</svg>\n");
    let threads_hidden =
        r.processes.iter().map(|p| p.threads).sum::<u64>() > lanes.iter().filter(|(_, t)| t.is_some()).count() as u64;
    if r.processes.len() > drawn || threads_hidden {
        let _ = writeln!(
            h,
            "<p class=\"muted\">{MAX_LANES} lanes at most: {drawn} of {} processes are drawn (in tree order), and at most {} threads of each.</p>",
            r.processes.len(),
            crate::model::MAX_THREAD_SPANS
        );
    }
}

/// A time axis under a plot of height `y`.
fn axis(h: &mut String, left: f64, plot: f64, y: f64, duration: f64) {
    let _ = writeln!(
        h,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#999\"/>",
        left + plot
    );
    for i in 0..=5 {
        let t = duration * f64::from(i) / 5.0;
        let tx = left + plot * f64::from(i) / 5.0;
        let anchor = match i {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            h,
            "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            y + 14.0,
            seconds(t)
        );
    }
}

fn calls(h: &mut String, r: &Report) {
    let c = &r.calls;
    h.push_str("<h2 id=\"calls\">Calls</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} calls recorded: {} answered at once, {} parked until something happened (a child's end, a connect: {} of waiting, not counted as the supervisor's). Only trapped calls are recorded: under the default profile, calls the filter lets run in the kernel (read, write, mmap …) are not seen.</p>",
        c.total,
        c.answered,
        c.parked,
        seconds(c.parked_wait_s)
    );
    h.push_str(
        "<h3>By class</h3>\n<table id=\"by-class\"><tr><th>class</th><th class=\"n\">calls</th><th></th></tr>\n",
    );
    let top = c.by_class.first().map_or(1, |x| x.count.max(1));
    for k in &c.by_class {
        let _ = writeln!(
            h,
            "<tr data-class=\"{}\"><td>{}</td><td class=\"n\">{}</td><td><span class=\"bar\" style=\"width:{}px\"></span></td></tr>",
            escape(k.class),
            escape(k.class),
            k.count,
            (k.count * 300 / top).max(1)
        );
    }
    h.push_str("</table>\n");

    let l = &c.latency;
    h.push_str("<h3>Latency of trapped calls</h3>\n");
    let _ = writeln!(
        h,
        "<p>From the supervisor receiving a call to its answer (the trip through the kernel to the supervisor and back is not included; with the trace on, the supervisor reads each call's arguments before answering, so untraced calls are answered sooner): p50 <b id=\"p50\">{}</b>, p90 {}, p99 <b id=\"p99\">{}</b>, max {}, mean {}, over {} calls answered at once. Tasks spent <b>{}</b> waiting for these answers, summed over tasks: <b>{}</b> of the run's {}.</p>",
        micros(l.p50_us),
        micros(l.p90_us),
        micros(l.p99_us),
        micros(l.max_us),
        micros(l.mean_us),
        l.count,
        seconds(c.supervisor_wait_s),
        percent(c.supervisor_share),
        seconds(r.summary.duration_s)
    );
    if !l.histogram.is_empty() {
        let top = l.histogram.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        let bar_w = (900.0 / l.histogram.len() as f64).clamp(4.0, 40.0);
        let height = 120.0;
        let width = 60.0 + bar_w * l.histogram.len() as f64;
        let _ = writeln!(
            h,
            "<svg id=\"latency-histogram\" viewBox=\"0 0 {width:.0} {h2}\" width=\"{width:.0}\" height=\"{h2}\" role=\"img\" aria-label=\"latency histogram\">",
            h2 = height + 30.0
        );
        for (i, b) in l.histogram.iter().enumerate() {
            let bx = 50.0 + i as f64 * bar_w;
            let bh = if b.count == 0 {
                0.0
            } else {
                (b.count as f64 / top * height).max(1.0)
            };
            let _ = writeln!(
                h,
                "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#4a7bd0\"><title>{} calls from {} to {}</title></rect>",
                height - bh,
                (bar_w - 1.0).max(1.0),
                b.count,
                micros(b.from_us),
                micros(b.to_us)
            );
            if i % 5 == 0 {
                let _ = writeln!(
                    h,
                    "<text x=\"{bx:.1}\" y=\"{:.1}\">{}</text>",
                    height + 14.0,
                    micros(b.from_us)
                );
            }
        }
        let _ = writeln!(
            h,
            "<text x=\"0\" y=\"10\">{}</text><line x1=\"48\" y1=\"{height}\" x2=\"{width:.0}\" y2=\"{height}\" stroke=\"#999\"/></svg>",
            top as u64
        );
    }

    h.push_str("<h3>By name</h3>\n<table id=\"by-name\"><tr><th>call</th><th>class</th><th class=\"n\">calls</th><th class=\"n\">failed</th><th class=\"n\">refused</th><th class=\"n\">mean latency</th><th class=\"n\">total latency</th></tr>\n");
    for n in &c.by_name {
        let answered_mean = if n.count > 0 {
            n.latency_total_us / n.count as f64
        } else {
            0.0
        };
        let _ = writeln!(
            h,
            "<tr data-call=\"{}\"><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&n.name),
            escape(&n.name),
            escape(n.class),
            n.count,
            n.failed,
            n.refused,
            micros(answered_mean),
            micros(n.latency_total_us)
        );
    }
    h.push_str("</table>\n");
}

fn refusal_table(h: &mut String, id: &str, list: &[Refusal]) {
    let _ = writeln!(
        h,
        "<table id=\"{id}\"><tr><th class=\"n\">times</th><th>call</th><th>answer</th><th>program (first pid)</th><th>why</th><th>to allow it</th><th>first, as called</th></tr>"
    );
    for x in list.iter().take(MAX_ROWS) {
        let _ = writeln!(
            h,
            "<tr data-refused=\"{}\"><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"mono\">{} ({})</td><td>{}</td><td>{}</td><td class=\"mono\">{} at {}</td></tr>",
            escape(&x.syscall),
            x.count,
            escape(&x.syscall),
            escape(&x.answer),
            escape(&x.program),
            x.pid,
            escape(&x.rule),
            escape(&x.to_allow),
            escape(&x.example),
            seconds(x.first_s)
        );
    }
    h.push_str("</table>\n");
    if list.len() > MAX_ROWS {
        let _ = writeln!(
            h,
            "<p class=\"muted\">… and {} more, not listed.</p>",
            list.len() - MAX_ROWS
        );
    }
}

fn refusals(h: &mut String, r: &Report) {
    h.push_str("<h2 id=\"refusals\">Refusals</h2>\n");
    if r.refusals.is_empty() {
        h.push_str("<p id=\"no-refusals\">The supervisor refused no recorded call.</p>\n");
    } else {
        h.push_str("<p>Calls the supervisor refused, grouped by call, rule and program.</p>\n");
        refusal_table(h, "refusal-table", &r.refusals);
    }
    if !r.kernel_refusals.is_empty() {
        h.push_str("<h3>Refused by the kernel</h3>\n<p>Calls the supervisor let through that the kernel then refused with EACCES, EPERM or EROFS: Landlock rules of a policy file, a file's mode, a read-only mount.</p>\n");
        refusal_table(h, "kernel-refusal-table", &r.kernel_refusals);
    }
    if r.refusals_not_described > 0 {
        let _ = writeln!(
            h,
            "<p class=\"muted\">{} more refusals past the listed kinds.</p>",
            r.refusals_not_described
        );
    }
}

fn touched(h: &mut String, r: &Report) {
    let t = &r.touched;
    h.push_str("<h2 id=\"touched\">Files, programs and network destinations touched</h2>\n");
    h.push_str("<p>What the run named, as it named it (a relative path is relative to the process's directory at the time): what <code>xvisor run --learn</code> would write rules for. Learn mode resolves paths and joins directories used many times into one rule.</p>\n");
    let _ = writeln!(h, "<h3>Programs ({})</h3>", t.programs.len());
    h.push_str(
        "<table id=\"programs\"><tr><th>program</th><th class=\"n\">runs</th><th>first command line</th></tr>\n",
    );
    for p in t.programs.iter().take(MAX_ROWS) {
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td></tr>",
            escape(&p.path),
            p.runs,
            escape(&crate::model::shorten(&words(&p.example), 300))
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(h, "<h3>Network ({})</h3>", t.network.len());
    if t.network.is_empty() {
        h.push_str("<p class=\"muted\">No connect or bind recorded.</p>\n");
    } else {
        h.push_str("<table id=\"network\"><tr><th>call</th><th>address</th><th class=\"n\">calls</th><th class=\"n\">failed</th></tr>\n");
        for n in t.network.iter().take(MAX_ROWS) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                n.direction,
                escape(&n.address),
                n.calls,
                n.failed
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(h, "<h3>Files ({})</h3>", t.files.len());
    h.push_str("<details open><summary>every path, with how it was used</summary>\n<table id=\"files\"><tr><th>path</th><th>access</th><th class=\"n\">calls</th><th class=\"n\">failed</th></tr>\n");
    for f in t.files.iter().take(MAX_ROWS) {
        let access = if f.access.is_empty() {
            "<span class=\"muted\">none worked</span>".to_string()
        } else {
            f.access.join(", ")
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&f.path),
            access,
            f.calls,
            f.failed
        );
    }
    h.push_str("</table></details>\n");
    let hidden = t.files.len().saturating_sub(MAX_ROWS);
    if hidden > 0 {
        let _ = writeln!(
            h,
            "<p class=\"muted\">… and {hidden} more paths, in the JSON report (--report-json).</p>"
        );
    }
}

fn about(h: &mut String, r: &Report) {
    h.push_str("<h2 id=\"about\">About this report</h2>\n<ul>\n");
    let _ = writeln!(
        h,
        "<li>From a trace of version {} ({} lines read, {} unreadable){}.</li>",
        r.summary.trace_version,
        r.lines_read,
        r.lines_unread,
        r.summary
            .xvisor
            .as_ref()
            .map(|v| format!(", written by xvisor {}", escape(v)))
            .unwrap_or_default()
    );
    h.push_str("<li>Counts are exact; tables list at most 1000 rows and the timeline draws at most 120 processes (the JSON report has every kept row).</li>\n");
    for n in &r.notes {
        let _ = writeln!(h, "<li>{}</li>", escape(n));
    }
    for p in &r.problems {
        let _ = writeln!(h, "<li class=\"bad\">{}</li>", escape(p));
    }
    h.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_the_guest_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>\"&\u{1}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;\u{FFFD}"
        );
        let mut b = crate::Builder::new();
        let evil = r#"/tmp/<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"#;
        let line = serde_json::json!({
            "time": 0.1, "pid": 2, "tid": 2, "syscall": "openat",
            "args": ["AT_FDCWD", format!("\"{evil}\""), "O_RDONLY", "0"],
            "decision": "errno EPERM", "result": -1, "errno": "EPERM", "latency_us": 1.0,
            "rule": evil
        })
        .to_string();
        b.feed_line(line.as_bytes(), 1, false);
        let exec = serde_json::json!({"time": 0.05, "pid": 2, "tid": 2, "event": "exec", "path": evil, "argv": [evil]})
            .to_string();
        b.feed_line(exec.as_bytes(), 2, false);
        let page = render(&b.finish());
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn an_empty_trace_renders() {
        let page = render(&crate::Builder::new().finish());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("id=\"total-calls\">0<"));
    }
}
