//! `xvisor syscalls`: what each system call does under a profile.

use std::ffi::OsString;

use anyhow::{bail, Result};
use xvisor_trap::{render, Policy, Profile};

pub const HELP: &str = "\
Show how xvisor treats every x86_64 system call under a profile.

Usage: xvisor syscalls [--profile default|strict] [--deny-syscall NAME,...] [--json | --markdown]

For each call: its number, name, argument kinds, class (hot: safe on
register values alone; mediated: carries meaning, trapped only where
something must decide or record it in the supervisor; refused: refused in
every profile), the handler that decides it when trapped, and the action
the seccomp filter takes under the profile (allow, allow unless some
register values, trap, errno).

Options:
      --profile NAME         default (every call in the kernel but those the
                             filter refuses) or strict (every call trapped)
      --deny-syscall LIST    refuse these calls too (comma-separated)
      --json                 one JSON object per call
      --markdown             the doc page (docs/syscalls.md)
";

enum Format {
    Text,
    Json,
    Markdown,
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut policy = Policy::new(Profile::Default);
    let mut denied: Vec<String> = Vec::new();
    let mut format = Format::Text;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                out!("{HELP}");
                return Ok(0);
            }
            Long("profile") => {
                let name = p.value()?.string()?;
                policy.profile = Profile::parse(&name)?;
            }
            Long("deny-syscall") => denied.extend(
                p.value()?
                    .string()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            Long("json") => format = Format::Json,
            Long("markdown") => format = Format::Markdown,
            Value(v) => bail!("unexpected argument {v:?} (see 'xvisor syscalls --help')"),
            _ => return Err(arg.unexpected().into()),
        }
    }
    for name in &denied {
        policy.deny(name)?;
    }
    let text = match format {
        Format::Text => render::text(&policy),
        Format::Json => render::json(&policy),
        Format::Markdown => render::markdown(),
    };
    out!("{text}");
    Ok(0)
}
