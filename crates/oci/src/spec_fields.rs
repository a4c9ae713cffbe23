//! The properties runtime-spec (up to 1.3) defines, object by object.
//!
//! The specification asks two things of a runtime that meet here: an
//! unknown property must not be an error (config.md, "Extensibility"), and
//! a value it cannot honour must be (config.md, "Valid values"). So a key
//! left over once an object has been read is refused when the
//! specification defines it — xvisor read everything it supports — and
//! set aside, to be logged, when it does not.

use std::cell::RefCell;

/// Object paths as [`crate::config`] names them, with every array index
/// written `[]`, and the keys the specification defines there. Windows,
/// Solaris, z/OS, FreeBSD and VM sections are defined too, as top-level
/// keys; their contents are not looked at.
const DEFINED: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "ociVersion",
            "process",
            "root",
            "hostname",
            "domainname",
            "mounts",
            "hooks",
            "annotations",
            "linux",
            "solaris",
            "windows",
            "vm",
            "zos",
            "freebsd",
        ],
    ),
    (
        "process",
        &[
            "terminal",
            "consoleSize",
            "user",
            "args",
            "commandLine",
            "env",
            "cwd",
            "capabilities",
            "rlimits",
            "noNewPrivileges",
            "apparmorProfile",
            "oomScoreAdj",
            "scheduler",
            "selinuxLabel",
            "ioPriority",
            "execCPUAffinity",
        ],
    ),
    ("process.consoleSize", &["height", "width"]),
    ("process.user", &["uid", "gid", "umask", "additionalGids", "username"]),
    (
        "process.capabilities",
        &["bounding", "effective", "inheritable", "permitted", "ambient"],
    ),
    ("process.rlimits[]", &["type", "hard", "soft"]),
    (
        "process.scheduler",
        &["policy", "nice", "priority", "flags", "runtime", "deadline", "period"],
    ),
    ("process.ioPriority", &["class", "priority"]),
    ("process.execCPUAffinity", &["initial", "final"]),
    ("root", &["path", "readonly"]),
    (
        "mounts[]",
        &["destination", "type", "source", "options", "uidMappings", "gidMappings"],
    ),
    ("hooks", HOOK_KINDS),
    ("hooks.prestart[]", HOOK),
    ("hooks.createRuntime[]", HOOK),
    ("hooks.createContainer[]", HOOK),
    ("hooks.startContainer[]", HOOK),
    ("hooks.poststart[]", HOOK),
    ("hooks.poststop[]", HOOK),
    (
        "linux",
        &[
            "uidMappings",
            "gidMappings",
            "sysctl",
            "resources",
            "cgroupsPath",
            "namespaces",
            "devices",
            "netDevices",
            "seccomp",
            "rootfsPropagation",
            "maskedPaths",
            "readonlyPaths",
            "mountLabel",
            "intelRdt",
            "memoryPolicy",
            "personality",
            "timeOffsets",
        ],
    ),
    ("linux.namespaces[]", &["type", "path"]),
    ("linux.uidMappings[]", ID_MAPPING),
    ("linux.gidMappings[]", ID_MAPPING),
    (
        "linux.devices[]",
        &["path", "type", "major", "minor", "fileMode", "uid", "gid"],
    ),
    (
        "linux.resources",
        &[
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "network",
            "rdma",
            "unified",
        ],
    ),
    (
        "linux.resources.devices[]",
        &["allow", "type", "major", "minor", "access"],
    ),
    (
        "linux.resources.memory",
        &[
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ],
    ),
    (
        "linux.resources.cpu",
        &[
            "shares",
            "quota",
            "burst",
            "period",
            "realtimeRuntime",
            "realtimePeriod",
            "cpus",
            "mems",
            "idle",
        ],
    ),
    ("linux.resources.pids", &["limit"]),
    (
        "linux.resources.blockIO",
        &[
            "weight",
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ],
    ),
    (
        "linux.seccomp",
        &[
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "syscalls",
        ],
    ),
    ("linux.seccomp.syscalls[]", &["names", "action", "errnoRet", "args"]),
    ("linux.seccomp.syscalls[].args[]", &["index", "value", "valueTwo", "op"]),
];

/// The kinds of hook, in the order of a container's life.
pub(crate) const HOOK_KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];
const HOOK: &[&str] = &["path", "args", "env", "timeout"];
const ID_MAPPING: &[&str] = &["containerID", "hostID", "size"];

/// Whether the specification defines `key` in the object at `path`
/// (`linux.devices[3]`, `process`; `""` for the top level).
pub(crate) fn defined(path: &str, key: &str) -> bool {
    let pattern = without_indexes(path);
    DEFINED
        .iter()
        .any(|(object, keys)| *object == pattern && keys.contains(&key))
}

/// `linux.seccomp.syscalls[2].args[0]` → `linux.seccomp.syscalls[].args[]`.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

thread_local! {
    /// The unknown properties met by the parse running on this thread.
    static IGNORED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Sets an unknown property aside (its full path), for the caller of the
/// parse to log.
pub(crate) fn set_aside(path: String) {
    IGNORED.with(|ignored| ignored.borrow_mut().push(path));
}

/// Starts collecting for a new parse; returns what the last one set aside.
pub(crate) fn take_set_aside() -> Vec<String> {
    IGNORED.with(|ignored| std::mem::take(&mut *ignored.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dropped_from_paths() {
        assert_eq!(
            without_indexes("linux.seccomp.syscalls[12].args[0]"),
            "linux.seccomp.syscalls[].args[]"
        );
        assert_eq!(without_indexes("process"), "process");
        assert_eq!(without_indexes(""), "");
    }

    #[test]
    fn spec_properties_are_told_from_unknown_ones() {
        assert!(defined("linux", "intelRdt"));
        assert!(defined("linux.devices[4]", "fileMode"));
        assert!(defined("hooks.poststop[0]", "timeout"));
        assert!(defined("", "windows"));
        assert!(!defined("", "unknown"));
        assert!(!defined("process", "frobnicate"));
        // A key defined elsewhere is unknown here.
        assert!(!defined("root", "destination"));
        assert!(!defined("hooks.other[0]", "path"));
    }

    #[test]
    fn objects_are_listed_once() {
        for (i, (a, _)) in DEFINED.iter().enumerate() {
            assert!(DEFINED[i + 1..].iter().all(|(b, _)| a != b), "{a} twice");
        }
    }
}
