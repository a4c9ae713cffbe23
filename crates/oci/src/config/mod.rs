//! `config.json` → [`Container`], one file per section of runtime-spec's
//! config: [`process`](process.rs), [`root` and `mounts`](mounts.rs),
//! [`hooks`](hooks.rs), [`linux`](linux.rs) with its
//! [`resources`](resources.rs), [`cgroupsPath`](cgroups_path.rs) and
//! [`seccomp`](seccomp.rs); all read with the [object walker](walker.rs)
//! into a [`Builder`](builder.rs).
//!
//! The document is walked as JSON values rather than decoded into structs
//! with defaults: each object is taken key by key, and a key left over at
//! the end that the specification defines is refused with its full path
//! (`linux.intelRdt`), so nothing an engine asks for is silently dropped.
//! A key the specification does not define is not an error (it says so);
//! it is set aside and reported in [`Container::ignored`] for the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use xvisor_instance::{NamespaceKind, TraceTarget};
use xvisor_trap::{Policy, Profile};

use crate::spec_fields;

mod builder;
mod cgroups_path;
mod container;
mod default;
mod hooks;
mod linux;
mod mounts;
mod process;
mod resources;
mod seccomp;
#[cfg(test)]
mod tests;
mod walker;

use builder::Builder;
pub use container::{Container, ProcessConfig, Rlimit};
pub use default::default_config;
pub(crate) use linux::NAMESPACES;
pub(crate) use mounts::{NEUTRAL_OPTIONS, OWN_OPTIONS, TMPFS_OPTIONS};
pub use process::capability_number;
pub(crate) use process::CAPABILITY_NAMES;
pub(crate) use seccomp::{ACCEPTED_FLAGS, ACTIONS, OPERATORS};
pub use walker::ConfigError;
use walker::{field, Obj};

/// The annotation choosing the system-call profile.
pub const PROFILE_ANNOTATION: &str = "dev.xvisor.profile";
/// The annotation naming a trace file (JSON lines).
pub const TRACE_ANNOTATION: &str = "dev.xvisor.trace";

/// The largest config.json read.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Parses a process.json's text.
pub fn parse_process(text: &str) -> Result<ProcessConfig, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    spec_fields::take_set_aside();
    let process = Obj::new("process", value)?;
    let mut b = Builder::new(Path::new("/"), "exec");
    b.process(process)?;
    Ok(ProcessConfig {
        argv: b.argv,
        env: b.env,
        cwd: b.cwd,
        uid: b.uid,
        gid: b.gid,
        additional_gids: b.additional_gids,
        capabilities: b.capabilities,
        rlimits: b.rlimits,
        umask: b.umask,
        terminal: b.terminal,
        no_new_privileges: b.no_new_privileges,
        apparmor_profile: b.apparmor_profile,
        ignored: spec_fields::take_set_aside(),
    })
}

/// Reads and checks `BUNDLE/config.json` for container `id`.
pub fn load_bundle(bundle: &Path, id: &str) -> Result<Container, ConfigError> {
    let path = bundle.join("config.json");
    let read_error = |error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(&path).map_err(read_error)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Syntax(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(&path).map_err(read_error)?;
    parse_config(&text, bundle, id)
}

/// Parses config.json text; relative paths are taken from `bundle`.
pub fn parse_config(text: &str, bundle: &Path, id: &str) -> Result<Container, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    spec_fields::take_set_aside();
    let mut top = Obj::new("", value).map_err(|_| ConfigError::Syntax("not a JSON object".into()))?;
    let version = top
        .string("ociVersion")?
        .ok_or_else(|| field("ociVersion", "missing"))?;
    if !["1.0", "1.1", "1.2"]
        .iter()
        .any(|v| version == *v || version.starts_with(&format!("{v}.")) || version.starts_with(&format!("{v}-")))
    {
        return Err(field(
            "ociVersion",
            format!("{version:?} is not supported (runtime-spec 1.0 to 1.2 are)"),
        ));
    }
    let annotations = annotations(&mut top)?;
    let mut builder = Builder::new(bundle, id);
    let root = top.object("root")?.ok_or_else(|| field("root", "missing"))?;
    builder.root(root)?;
    let process = top
        .object("process")?
        .ok_or_else(|| field("process", "missing (xvisor needs the program to run)"))?;
    builder.process(process)?;
    let hostname = top.string("hostname")?;
    if let Some(h) = &hostname {
        if h.len() > 64 || h.contains(['\0', '/']) {
            return Err(field("hostname", "must be at most 64 characters, without '/'"));
        }
        if !h.is_empty() {
            builder.hostname = h.clone();
        }
    }
    top.refuse("domainname", "setting the NIS domain name is not supported")?;
    for (i, m) in top.array("mounts")?.into_iter().enumerate() {
        builder.mount(Obj::new(&format!("mounts[{i}]"), m)?)?;
    }
    if let Some(linux) = top.object("linux")? {
        builder.linux(linux)?;
    }
    // runtime-spec: the hostname is set in the container's UTS namespace,
    // which may be one it joins (as runc does); a pod's containers are
    // given the sandbox's own name this way.
    if let Some(join) = builder.joined.iter_mut().find(|j| j.kind == NamespaceKind::Uts) {
        join.hostname = hostname.filter(|h| !h.is_empty());
    }
    if let Some(hooks) = top.object("hooks")? {
        builder.hooks(hooks)?;
    }
    for other in ["windows", "solaris", "vm", "zos"] {
        top.refuse(other, "only Linux containers are supported")?;
    }
    top.finish()?;

    let mut policy_profile = Profile::Default;
    if let Some(name) = annotations.get(PROFILE_ANNOTATION) {
        policy_profile =
            Profile::parse(name).map_err(|e| field(&format!("annotations.{PROFILE_ANNOTATION}"), e.to_string()))?;
    }
    let trace = match annotations.get(TRACE_ANNOTATION) {
        None => None,
        Some(p) if p.starts_with('/') => Some(TraceTarget::File(PathBuf::from(p))),
        Some(_) => {
            return Err(field(
                &format!("annotations.{TRACE_ANNOTATION}"),
                "must be an absolute path",
            ))
        }
    };
    builder.finish(Policy::new(policy_profile), trace, annotations)
}

fn annotations(top: &mut Obj) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    if let Some(a) = top.object("annotations")? {
        for (k, v) in a.map {
            match v {
                Value::String(s) => {
                    out.insert(k, s);
                }
                _ => return Err(field(&format!("annotations.{k}"), "must be a string")),
            }
        }
    }
    for key in out.keys() {
        if key.starts_with("dev.xvisor.") && key != PROFILE_ANNOTATION && key != TRACE_ANNOTATION {
            return Err(field(
                &format!("annotations.{key}"),
                format!("unknown xvisor annotation (known: {PROFILE_ANNOTATION}, {TRACE_ANNOTATION})"),
            ));
        }
    }
    Ok(out)
}
