//! `hooks`: the programs run at each point of a container's life.

use std::path::PathBuf;

use xvisor_instance::hooks::Hook;

use super::builder::Builder;
use super::walker::{field, ConfigError, Obj};
use crate::spec_fields;

/// The most hooks of one kind.
const MAX_HOOKS: usize = 64;

impl Builder {
    pub(super) fn hooks(&mut self, mut h: Obj) -> Result<(), ConfigError> {
        // prestart (deprecated) runs where createRuntime does, before it.
        for &kind in spec_fields::HOOK_KINDS {
            let entries = h.array(kind)?;
            if entries.len() > MAX_HOOKS {
                return Err(field(&format!("hooks.{kind}"), format!("at most {MAX_HOOKS} hooks")));
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let hook = hook(Obj::new(&format!("hooks.{kind}[{i}]"), entry)?)?;
                match kind {
                    "prestart" | "createRuntime" => self.hooks.create_runtime.push(hook),
                    "createContainer" => self.hooks.create_container.push(hook),
                    "startContainer" => self.hooks.start_container.push(hook),
                    "poststart" => self.hooks.poststart.push(hook),
                    _ => self.poststop.push(hook),
                }
            }
        }
        h.finish()
    }
}

/// One hook: `path` (absolute), `args`, `env`, `timeout` (seconds, > 0).
fn hook(mut h: Obj) -> Result<Hook, ConfigError> {
    let origin = h.path.clone();
    let path = h
        .string("path")?
        .ok_or_else(|| field(&format!("{origin}.path"), "missing"))?;
    if !path.starts_with('/') || path.contains('\0') {
        return Err(field(&format!("{origin}.path"), "must be an absolute path"));
    }
    let args = h.strings("args")?;
    if args.iter().any(|a| a.contains('\0')) {
        return Err(field(&format!("{origin}.args"), "must not contain NUL bytes"));
    }
    let mut env = Vec::new();
    for (i, e) in h.strings("env")?.into_iter().enumerate() {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !e.contains('\0') => env.push((k.to_string(), v.to_string())),
            _ => return Err(field(&format!("{origin}.env[{i}]"), "expected KEY=VALUE")),
        }
    }
    let timeout = match h.int("timeout")? {
        None => None,
        Some(t) if t > 0 => Some(std::time::Duration::from_secs(t as u64)),
        Some(_) => return Err(field(&format!("{origin}.timeout"), "must be greater than zero")),
    };
    h.finish()?;
    Ok(Hook {
        origin,
        path: PathBuf::from(path),
        args,
        env,
        timeout,
    })
}
