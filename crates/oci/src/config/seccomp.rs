//! `linux.seccomp`: the engine's profile (runtime-spec's seccomp object,
//! libseccomp's names) compiled into a program that the guest installs next
//! to xvisor's own filter. The kernel takes the stricter answer of the two,
//! so the profile can only ever refuse more.

use std::collections::BTreeMap;

use xvisor_trap::bpf::{ret, to_bytes};
use xvisor_trap::rules::{Compare, Condition, Rule, RuleSet};
use xvisor_trap::table;

use super::walker::{field, ConfigError, Obj};

/// The errno an `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE` action carries unless
/// the profile says otherwise (runtime-spec: EPERM).
const DEFAULT_ERRNO: u64 = 1;

/// Filter flags the profile may ask for, none of which can loosen it:
/// `TSYNC` (the guest is single-threaded when it installs the filter),
/// `LOG` (the kernel logs what the filter refuses), `SPEC_ALLOW` (ignored:
/// keeping speculative-store-bypass mitigation on is the stricter choice),
/// `WAIT_KILLABLE_RECV` (only about notifications, which a profile may not
/// ask for).
pub(crate) const ACCEPTED_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The actions a profile may name (`SCMP_ACT_NOTIFY` is refused by name:
/// notifications are the supervisor's); see [`action`].
pub(crate) const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// The comparisons an argument condition may name.
pub(crate) const OPERATORS: &[(&str, Compare)] = &[
    ("SCMP_CMP_EQ", Compare::Equal),
    ("SCMP_CMP_GE", Compare::GreaterOrEqual),
    ("SCMP_CMP_GT", Compare::Greater),
    ("SCMP_CMP_LE", Compare::LessOrEqual),
    ("SCMP_CMP_LT", Compare::Less),
    ("SCMP_CMP_MASKED_EQ", Compare::MaskedEqual),
    ("SCMP_CMP_NE", Compare::NotEqual),
];

/// The `linux.seccomp` object as a compiled program (`struct sock_filter`
/// bytes).
pub(crate) fn compile(mut s: Obj) -> Result<Vec<u8>, ConfigError> {
    let default_errno = s.uint("defaultErrnoRet")?;
    let default_action = s
        .string("defaultAction")?
        .ok_or_else(|| field(&s.sub("defaultAction"), "missing"))?;
    let default = action(&s.sub("defaultAction"), &default_action, default_errno)?;
    // Any list is fine: xvisor's own filter kills every other ABI.
    s.strings("architectures")?;
    for (i, flag) in s.strings("flags")?.into_iter().enumerate() {
        if !ACCEPTED_FLAGS.contains(&flag.as_str()) {
            return Err(field(
                &format!("{}[{i}]", s.sub("flags")),
                format!("unknown flag {flag:?}"),
            ));
        }
    }
    s.refuse(
        "listenerPath",
        "seccomp notifications go to xvisor's supervisor; another listener is not supported",
    )?;
    s.refuse("listenerMetadata", "seccomp notifications go to xvisor's supervisor")?;
    let mut calls: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    for (i, entry) in s.array("syscalls")?.into_iter().enumerate() {
        let path = format!("{}[{i}]", s.sub("syscalls"));
        let mut entry = Obj::new(&path, entry)?;
        let names = entry.strings("names")?;
        let errno = entry.uint("errnoRet")?;
        let name = entry
            .string("action")?
            .ok_or_else(|| field(&entry.sub("action"), "missing"))?;
        let rule_action = action(&entry.sub("action"), &name, errno)?;
        let mut conditions = Vec::new();
        for (j, arg) in entry.array("args")?.into_iter().enumerate() {
            conditions.push(condition(Obj::new(&format!("{path}.args[{j}]"), arg)?)?);
        }
        entry.ignore("comment");
        // Inclusion and exclusion by kernel version or capability are
        // decided by the engine before it writes config.json.
        entry.ignore("includes");
        entry.ignore("excludes");
        entry.finish()?;
        if conditions.len() > xvisor_trap::rules::MAX_CONDITIONS {
            return Err(field(
                &format!("{path}.args"),
                format!("at most {} conditions per rule", xvisor_trap::rules::MAX_CONDITIONS),
            ));
        }
        // Names of other architectures' calls (or of calls newer than this
        // table) are skipped, as libseccomp does for calls the native
        // architecture lacks: such a call answers ENOSYS under xvisor.
        for number in names.iter().filter_map(|n| table::by_name(n)).map(|s| s.number) {
            calls.entry(number).or_default().push(Rule {
                conditions: conditions.clone(),
                action: rule_action,
            });
        }
    }
    s.finish()?;
    let set = RuleSet { default, calls };
    let program = set.compile().map_err(|e| field("linux.seccomp", e.to_string()))?;
    Ok(to_bytes(&program))
}

/// An `SCMP_ACT_*` name as a seccomp return value.
fn action(path: &str, name: &str, errno: Option<u64>) -> Result<u32, ConfigError> {
    let data = || -> Result<u32, ConfigError> {
        let errno = errno.unwrap_or(DEFAULT_ERRNO);
        u32::try_from(errno)
            .ok()
            .filter(|&e| e <= ret::DATA_MASK)
            .ok_or_else(|| field(path, format!("errnoRet {errno} is out of range")))
    };
    // Every name in ACTIONS has its arm here (a test holds them together).
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => 0x0000_0000,
        "SCMP_ACT_KILL_PROCESS" => ret::KILL_PROCESS,
        "SCMP_ACT_TRAP" => 0x0003_0000,
        "SCMP_ACT_ERRNO" => ret::ERRNO | data()?,
        // The process monitor does not ask for seccomp stops, so the kernel
        // answers ENOSYS, as it does without a tracer.
        "SCMP_ACT_TRACE" => 0x7ff0_0000 | data()?,
        "SCMP_ACT_LOG" => 0x7ffc_0000,
        "SCMP_ACT_ALLOW" => ret::ALLOW,
        "SCMP_ACT_NOTIFY" => {
            return Err(field(
                path,
                "SCMP_ACT_NOTIFY: seccomp notifications go to xvisor's supervisor; another listener is not supported",
            ))
        }
        other => return Err(field(path, format!("unknown action {other:?}"))),
    })
}

/// One `args` entry: `{index, value, valueTwo, op}`.
fn condition(mut a: Obj) -> Result<Condition, ConfigError> {
    let index = a.uint("index")?.ok_or_else(|| field(&a.sub("index"), "missing"))?;
    let arg = u8::try_from(index)
        .ok()
        .filter(|&i| i < 6)
        .ok_or_else(|| field(&a.sub("index"), "must be 0 to 5"))?;
    let value = a.uint("value")?.unwrap_or(0);
    let value_two = a.uint("valueTwo")?.unwrap_or(0);
    let op = a.string("op")?.ok_or_else(|| field(&a.sub("op"), "missing"))?;
    let Some(&(_, compare)) = OPERATORS.iter().find(|(name, _)| *name == op) else {
        return Err(field(&a.sub("op"), format!("unknown comparison {op:?}")));
    };
    a.finish()?;
    Ok(Condition {
        arg,
        compare,
        value,
        value_two,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use xvisor_trap::bpf::{interpret, AUDIT_ARCH_X86_64};

    fn program(profile: Value) -> Result<Vec<xvisor_trap::bpf::Instruction>, ConfigError> {
        let bytes = compile(Obj::new("linux.seccomp", profile)?)?;
        Ok(bytes
            .chunks(8)
            .map(|c| xvisor_trap::bpf::Instruction {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect())
    }

    fn nr(name: &str) -> u32 {
        table::by_name(name).unwrap().number
    }

    #[test]
    fn an_engine_profile_compiles_to_its_answers() {
        let prog = program(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["read", "write", "arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["chmod"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        }))
        .unwrap();
        let call = |name: &str, a0: u64| interpret(&prog, AUDIT_ARCH_X86_64, nr(name), &[a0, 0, 0, 0, 0, 0]);
        assert_eq!(call("read", 0), Some(ret::ALLOW));
        assert_eq!(call("personality", 8), Some(ret::ALLOW));
        assert_eq!(call("personality", 0x0040_0000), Some(ret::ERRNO | 38));
        assert_eq!(call("clone", 0x0120_0011), Some(ret::ALLOW));
        assert_eq!(call("clone", 0x1000_0000 | 0x11), Some(ret::ERRNO | 38));
        assert_eq!(call("mkdir", 0), Some(ret::ERRNO | 13));
        assert_eq!(call("chmod", 0), Some(ret::KILL_PROCESS));
        assert_eq!(call("openat", 0), Some(ret::ERRNO | 38));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let refused = |profile: Value, needle: &str| {
            let e = program(profile).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        refused(json!({"syscalls": []}), "linux.seccomp.defaultAction: missing");
        refused(json!({"defaultAction": "SCMP_ACT_MAYBE"}), "unknown action");
        refused(
            json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY",
        );
        refused(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
            "linux.seccomp.listenerPath",
        );
        refused(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW"]}),
            "linux.seccomp.flags[0]",
        );
        refused(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index",
        );
        refused(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ABOUT"}]}]}),
            "unknown comparison",
        );
        refused(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
            "errnoRet 70000 is out of range",
        );
        // A property runtime-spec does not define is ignored, as it requires.
        assert!(program(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "when": 1}]})
        )
        .is_ok());
    }

    #[test]
    fn every_listed_action_and_operator_is_read() {
        for name in ACTIONS {
            assert!(action("a", name, None).is_ok(), "{name}");
        }
        assert!(action("a", "SCMP_ACT_NOTIFY", None).is_err());
        assert!(action("a", "SCMP_ACT_MAYBE", None).is_err());
        for (op, _) in OPERATORS {
            let arg = json!({"index": 0, "value": 1, "op": op});
            assert!(condition(Obj::new("c", arg).unwrap()).is_ok(), "{op}");
        }
    }
}
