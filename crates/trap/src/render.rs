//! Human and machine listings of the table under a policy: the output of
//! `xvisor syscalls` and the doc page docs/syscalls.md.

use std::fmt::Write;

use crate::policy::{errno_name, Action, Policy};
use crate::table::{Arg, Class, EarlierCheck, Handler, SYSCALLS};

fn arg_name(a: Arg) -> &'static str {
    match a {
        Arg::Int => "int",
        Arg::Len => "len",
        Arg::Fd => "fd",
        Arg::DirFd => "dirfd",
        Arg::Path => "path",
        Arg::Str => "str",
        Arg::In => "in",
        Arg::Out => "out",
        Arg::Ptr => "ptr",
        Arg::OpenFlags => "open_flags",
        Arg::Mode => "mode",
        Arg::Pid => "pid",
        Arg::Signal => "signal",
        Arg::CloneFlags => "clone_flags",
        Arg::Prot => "prot",
        Arg::MapFlags => "map_flags",
        Arg::Domain => "domain",
        Arg::SockType => "sock_type",
        Arg::IoctlRequest => "ioctl_request",
        Arg::AtFlags => "at_flags",
        Arg::Flags => "flags",
        Arg::Id => "id",
        Arg::Offset => "offset",
        Arg::StrArray => "str_array",
    }
}

fn class_name(c: Class) -> String {
    match c {
        Class::Hot => "hot".into(),
        Class::Mediated => "mediated".into(),
        Class::Refused(e) => format!("refused ({})", errno_name(e)),
    }
}

/// What Linux checks before it refuses, in its order (the handler's
/// column of the listing).
fn earlier_checks(h: Handler) -> String {
    let Handler::RefuseAfter(checks) = h else {
        return String::new();
    };
    let names: Vec<&str> = checks
        .iter()
        .map(|c| match c {
            EarlierCheck::OpenFd(_) => "an open descriptor (EBADF)",
            EarlierCheck::NamespaceOfType => "a namespace of the type asked for (EINVAL)",
            EarlierCheck::Tracee => "an existing pid (ESRCH), the caller's tracee (ESRCH)",
        })
        .collect();
    format!(": {}", names.join(", "))
}

fn handler_name(h: Handler) -> &'static str {
    match h {
        Handler::Continue => "continue",
        Handler::Clone => "clone",
        Handler::Clone3 => "clone3",
        Handler::Unshare => "unshare",
        Handler::Ioctl => "ioctl",
        Handler::Socket => "socket",
        Handler::Personality => "personality",
        Handler::WaitChild => "wait-child",
        Handler::Refuse => "refuse",
        Handler::RefuseAfter(_) => "refuse after Linux's checks",
        Handler::SetsMode(_) => "sets-mode",
        Handler::OpenHow => "open-how",
    }
}

/// A plain-text table: number, name, arguments, class, action, handler.
pub fn text(policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "profile {}: {}", policy.profile, summary(policy));
    let width = SYSCALLS
        .iter()
        .map(|s| policy.action(s).to_string().len())
        .fold("action".len(), usize::max);
    let _ = writeln!(
        out,
        "{:>4}  {:<24} {:<width$} {:<16} {:<9} arguments",
        "nr", "name", "action", "class", "handler"
    );
    for s in SYSCALLS {
        let args: Vec<&str> = s.args.iter().map(|&a| arg_name(a)).collect();
        let _ = writeln!(
            out,
            "{:>4}  {:<24} {:<width$} {:<16} {:<9} {}",
            s.number,
            s.name,
            policy.action(s).to_string(),
            class_name(s.class),
            handler_name(s.handler),
            args.join(", ")
        );
    }
    out
}

/// Counts of each action over the table's calls.
pub fn summary(policy: &Policy) -> String {
    let (mut allow, mut unless, mut trap, mut named, mut errno) = (0, 0, 0, 0, 0);
    let mut checked = 0;
    for s in SYSCALLS {
        match policy.action(s) {
            Action::Allow => allow += 1,
            Action::AllowUnless(_) | Action::MonitorIf { trap_others: false, .. } => unless += 1,
            // Never continued: refused once Linux's argument checks are made.
            Action::Trap if matches!(s.handler, Handler::RefuseAfter(_)) => checked += 1,
            Action::Trap | Action::Monitor | Action::MonitorIf { trap_others: true, .. } => trap += 1,
            Action::Refuse(_) => named += 1,
            Action::Errno(_) | Action::Kill => errno += 1,
        }
    }
    let allowed = match unless {
        0 => format!("{allow} allowed in the kernel"),
        n => format!(
            "{} allowed in the kernel ({n} of them unless an argument is refused)",
            allow + n
        ),
    };
    let named = match named {
        0 => String::new(),
        n => format!(", {n} refused by the supervisor when made (and named on stderr)"),
    };
    let checked = match checked {
        0 => String::new(),
        n => format!(", {n} refused by the supervisor when made, after Linux's argument checks"),
    };
    format!("{allowed}, {trap} trapped to the supervisor{named}{checked}, {errno} refused by the filter")
}

/// A JSON string literal (quotes, backslashes and control characters
/// escaped). JSON requires only C0 escaped; DEL and C1 are too, so the
/// text is also safe on a terminal (C1 `CSI` starts an escape sequence on
/// some).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array, one object per call.
pub fn json(policy: &Policy) -> String {
    let mut out = String::from("[\n");
    for (i, s) in SYSCALLS.iter().enumerate() {
        let args: Vec<String> = s.args.iter().map(|&a| json_string(arg_name(a))).collect();
        let action = policy.action(s);
        let detail = match action {
            Action::Errno(e) | Action::Refuse(e) => format!(", \"errno\": {}", json_string(&errno_name(e))),
            Action::AllowUnless(rules) => {
                format!(", \"trapped_when\": {}", json_string(&crate::policy::rule_names(rules)))
            }
            Action::MonitorIf { .. } => ", \"monitor_stops\": \"the attach family (guest debuggers)\"".to_string(),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "  {{\"number\": {}, \"name\": {}, \"args\": [{}], \"class\": {}, \"handler\": {}, \"action\": {}{}}}",
            s.number,
            json_string(s.name),
            args.join(", "),
            json_string(&class_name(s.class)),
            json_string(handler_name(s.handler)),
            json_string(match action {
                Action::Allow | Action::AllowUnless(_) | Action::MonitorIf { trap_others: false, .. } => "allow",
                Action::Trap | Action::Refuse(_) | Action::MonitorIf { trap_others: true, .. } => "trap",
                Action::Monitor => "monitor",
                Action::Errno(_) => "errno",
                Action::Kill => "kill",
            }),
            detail
        );
        out.push_str(if i + 1 < SYSCALLS.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

/// The doc page: every call under every profile.
pub fn markdown() -> String {
    use crate::policy::Profile;
    // As an instance has them unless it pins programs, learns, joins a
    // pid namespace or denies ptrace: with guest debuggers.
    let mut default = Policy::new(Profile::Default);
    default.allow_guest_debuggers();
    let mut strict = Policy::new(Profile::Strict);
    strict.allow_guest_debuggers();
    let mut out = String::new();
    out.push_str("# System calls\n\n");
    out.push_str("Generated from `crates/trap/src/table.rs` by `xvisor syscalls --markdown`; a test fails when\n");
    out.push_str("this page and the table disagree.\n\n");
    out.push_str("- **hot**: safe on register values alone, on resources the instance already owns; runs in the\n");
    out.push_str("  host kernel under `default`. A hot call whose handler refuses some register values (\"allow\n");
    out.push_str("  unless …\") has them tested by the filter itself: those calls are trapped and refused.\n");
    out.push_str("- **mediated**: carries meaning (paths, processes, sockets, identity, time). Trapped only where\n");
    out.push_str("  something needs it in the supervisor: `--trace`, the `strict` profile, or a rule neither the\n");
    out.push_str("  filter nor Landlock can hold; otherwise, as under `default`, it runs in the host kernel\n");
    out.push_str("  (guarded by its handler's register rules, if any), bounded by the instance's confinement.\n");
    out.push_str("- **refused**: would bypass the filter or the supervisor, or attacks the host kernel; refused in\n");
    out.push_str("  every profile with the errno shown.\n\n");
    out.push_str("Any other ABI (i386 `int 0x80`, x32) is killed. Numbers 335–423 are unassigned on x86_64 and\n");
    out.push_str("answer ENOSYS.\n\n");
    out.push_str("`ptrace` is shown as an instance has it by default, with guest debuggers: its attach family\n");
    out.push_str("(`TRACEME`, `ATTACH`, `SEIZE`, `DETACH`) stops for the process monitor, which lets the task go\n");
    out.push_str("to the guest's tracer (docs/design/guest-debuggers.md). With pinned programs, `--learn`, a\n");
    out.push_str("joined pid namespace or a denial it is refused as its handler says.\n\n");
    let _ = writeln!(out, "- `default`: {}.", summary(&default));
    let _ = writeln!(out, "- `strict`: {}.\n", summary(&strict));
    out.push_str("| nr | name | arguments | class | handler | default | strict |\n");
    out.push_str("|---:|---|---|---|---|---|---|\n");
    for s in SYSCALLS {
        let args: Vec<&str> = s.args.iter().map(|&a| arg_name(a)).collect();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            s.number,
            s.name,
            args.join(", "),
            class_name(s.class),
            handler_name(s.handler).to_string() + &earlier_checks(s.handler),
            default.action(s),
            strict.action(s)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Profile;

    #[test]
    fn doc_page_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/syscalls.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/syscalls.md is out of date: regenerate it with `cargo run -q -- syscalls --markdown > docs/syscalls.md`"
        );
    }

    #[test]
    fn strict_listing_shows_zero_allowed() {
        let p = Policy::new(Profile::Strict);
        assert!(summary(&p).starts_with("0 allowed"), "{}", summary(&p));
        assert!(!json(&p).contains("\"action\": \"allow\""));
    }

    #[test]
    fn json_is_one_object_per_call() {
        let j = json(&Policy::new(Profile::Default));
        assert_eq!(j.matches("\"number\":").count(), SYSCALLS.len());
        assert!(j.contains("{\"number\": 321, \"name\": \"bpf\""));
        assert!(j.contains("\"errno\": \"EPERM\""));
        assert!(j.contains("\"name\": \"clone\", \"args\": [\"clone_flags\""), "{j}");
        assert!(j.contains(
            "\"action\": \"allow\", \"trapped_when\": \"CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME\""
        ));
    }
}
