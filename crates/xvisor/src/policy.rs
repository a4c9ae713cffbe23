//! `xvisor policy` and `run --policy`: policy files read, checked and
//! turned into the instance's layers.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
pub use xvisor_confine::policy::{access_rules, apply_limits};
use xvisor_trap::policy_file::{self, PolicyFile};
use xvisor_trap::Profile;

pub const HELP: &str = "\
Check policy files and show the built-in profiles as policy files.

Usage: xvisor policy check FILE...
       xvisor policy show [default|strict]

'check' reads each file as 'xvisor run --policy FILE' would, and prints
every rule with the layer that enforces it:
  seccomp filter   system calls, by number and register values (no cost
                   beyond the filter's few nanoseconds)
  Landlock         path hierarchies (read, write, exec) and TCP ports
                   (connect, bind; Linux 6.7+), enforced by the kernel
  process          attributes of every process of the instance (mdwe)
  limits           cgroups and rlimits, as the run options
  supervisor       connect destinations by address range or unix socket
                   path (connect trapped, decided on a copy of the address
                   and performed by the supervisor); programs pinned by
                   sha256 (checked at each exec, before it runs)
A file that cannot be enforced exactly as written - an unknown key, a value
of the wrong kind, a rule this kernel or this version cannot hold - is
refused with one line naming FILE:LINE:COLUMN and the key (exit 125).

'show' prints a built-in profile as a policy file, a starting point for
your own ('base = \"default\"' starts from it).

The policy language is described, with examples, in docs/policy.md.
";

/// Reads and checks a policy file.
pub fn load(path: &Path) -> Result<PolicyFile> {
    let text = std::fs::read(path).map_err(|e| anyhow!("--policy {}: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
    Ok(PolicyFile::parse(&path.display().to_string(), &text)?)
}

/// `xvisor policy …`.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    match args.first().map(String::as_str) {
        None => {
            // A usage mistake: the text goes where errors go.
            eprint!("{HELP}");
            125
        }
        Some("-h" | "--help" | "help") => {
            out!("{HELP}");
            0
        }
        Some("check") => match check(&args[1..]) {
            Ok(()) => 0,
            Err(e) => crate::message::usage_error(&e),
        },
        Some("show") => match show(&args[1..]) {
            Ok(()) => 0,
            Err(e) => crate::message::usage_error(&e),
        },
        Some(other) => {
            eprintln!("xvisor policy: unknown command {other:?} (check, show)");
            125
        }
    }
}

fn check(files: &[String]) -> Result<()> {
    if files.is_empty() {
        bail!("policy check: name a policy file (see 'xvisor policy --help')");
    }
    for name in files {
        let file = load(Path::new(name))?;
        let access = access_rules(&file);
        let kernel = match access.check_kernel() {
            Ok(()) => String::new(),
            Err(e) => format!(" (on this kernel: {e})"),
        };
        outln!("{name}: accepted{kernel}");
        for rule in file.rules() {
            let at = if rule.at.line == 0 {
                "     ".to_string()
            } else {
                format!("{:>5}", rule.at.line)
            };
            outln!("{at}  {:<26} {}", rule.layer.to_string(), rule.rule);
        }
        if !kernel.is_empty() {
            bail!("{name}: this kernel cannot enforce it{kernel}");
        }
    }
    Ok(())
}

fn show(args: &[String]) -> Result<()> {
    let profile = match args {
        [] => Profile::Default,
        [name] => Profile::parse(name)?,
        _ => bail!("policy show: one profile name at most (default, strict)"),
    };
    out!("{}", policy_file::profile_as_file(profile));
    Ok(())
}
