//! `features`: what this runtime supports, as runtime-spec's
//! features.json, made from the very lists the config reader accepts, so
//! the two cannot drift apart.

use serde_json::{json, Value};

use crate::config::{
    ACCEPTED_FLAGS, ACTIONS, CAPABILITY_NAMES, NAMESPACES, NEUTRAL_OPTIONS, OPERATORS, OWN_OPTIONS, PROFILE_ANNOTATION,
    TMPFS_OPTIONS, TRACE_ANNOTATION,
};
use crate::spec_fields::HOOK_KINDS;

/// The features document (`xvisor features`).
pub fn features() -> Value {
    let mount_options: Vec<&str> = OWN_OPTIONS
        .iter()
        .chain(NEUTRAL_OPTIONS)
        .chain(TMPFS_OPTIONS)
        .copied()
        .collect();
    let capabilities: Vec<&str> = CAPABILITY_NAMES.iter().map(|(name, _)| *name).collect();
    let operators: Vec<&str> = OPERATORS.iter().map(|(name, _)| *name).collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": HOOK_KINDS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ACTIONS,
                "operators": operators,
                // Profiles may list any: xvisor's own filter kills every
                // other ABI.
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ACCEPTED_FLAGS,
                "supportedFlags": ACCEPTED_FLAGS
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            PROFILE_ANNOTATION: "default | strict: the system-call profile",
            TRACE_ANNOTATION: "an absolute path: record trapped calls as JSON lines"
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{default_config, parse_config};

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    fn accepts(config: &Value) -> Result<(), String> {
        parse_config(&config.to_string(), Path::new("/bundle"), "features")
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Every list `features` claims is taken by the config reader as it
    /// stands: an entry added to one and not the other fails here.
    #[test]
    fn what_features_lists_the_config_reader_accepts() {
        let f = features();
        for option in strings(&f["mountOptions"]) {
            let mut c = default_config(false);
            let mount = match option.as_str() {
                "bind" | "rbind" => json!({"destination": "/data", "source": "/tmp", "options": [option]}),
                "size" | "mode" | "nr_inodes" => {
                    let value = if option == "mode" { "755" } else { "64" };
                    json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                           "options": [format!("{option}={value}")]})
                }
                _ => json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": [option]}),
            };
            c["mounts"].as_array_mut().unwrap().push(mount);
            accepts(&c).unwrap_or_else(|e| panic!("mount option {option}: {e}"));
        }
        for kind in strings(&f["linux"]["namespaces"]) {
            let mut c = default_config(false);
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !list.iter().any(|ns| ns["type"] == kind.as_str()) {
                list.push(json!({"type": kind}));
            }
            accepts(&c).unwrap_or_else(|e| panic!("namespace {kind}: {e}"));
        }
        for cap in strings(&f["linux"]["capabilities"]) {
            let mut c = default_config(false);
            c["process"]["capabilities"] = json!({"bounding": [cap], "permitted": [cap]});
            accepts(&c).unwrap_or_else(|e| panic!("capability {cap}: {e}"));
        }
        for kind in strings(&f["hooks"]) {
            let mut c = default_config(false);
            c["hooks"] = json!({kind.clone(): [{"path": "/bin/true"}]});
            accepts(&c).unwrap_or_else(|e| panic!("hook {kind}: {e}"));
        }
        let seccomp = &f["linux"]["seccomp"];
        for action in strings(&seccomp["actions"]) {
            let mut c = default_config(false);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": action}]});
            accepts(&c).unwrap_or_else(|e| panic!("action {action}: {e}"));
        }
        for op in strings(&seccomp["operators"]) {
            let mut c = default_config(false);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 1, "value": 0, "op": op}]}]});
            accepts(&c).unwrap_or_else(|e| panic!("operator {op}: {e}"));
        }
        for flag in strings(&seccomp["supportedFlags"]) {
            let mut c = default_config(false);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]});
            accepts(&c).unwrap_or_else(|e| panic!("seccomp flag {flag}: {e}"));
        }
        for (annotation, value) in [(PROFILE_ANNOTATION, "strict"), (TRACE_ANNOTATION, "/tmp/trace")] {
            assert!(f["annotations"].get(annotation).is_some(), "{annotation}");
            let mut c = default_config(false);
            c["annotations"] = json!({annotation: value});
            accepts(&c).unwrap_or_else(|e| panic!("annotation {annotation}: {e}"));
        }
    }

    /// And what the reader refuses, `features` does not list.
    #[test]
    fn what_the_config_reader_refuses_features_does_not_list() {
        let f = features();
        assert!(!strings(&f["mountOptions"]).contains(&"idmap".to_string()));
        assert!(!strings(&f["linux"]["namespaces"]).contains(&"time".to_string()));
        assert!(!strings(&f["linux"]["seccomp"]["actions"]).contains(&"SCMP_ACT_NOTIFY".to_string()));
        let mut c = default_config(false);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        assert!(accepts(&c).is_err());
    }
}
