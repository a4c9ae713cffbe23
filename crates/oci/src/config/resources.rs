//! `linux.resources`: memory, pids, CPU and block I/O limits, and device
//! cgroup rules checked against the nodes an instance has.

use super::builder::Builder;
use super::walker::{field, ConfigError, Obj};

impl Builder {
    // Long: the section's keys one after another, in the specification's order.
    pub(super) fn resources(&mut self, mut r: Obj) -> Result<(), ConfigError> {
        // (path, allow, type, major, minor) of every rule, in order.
        let mut rules = Vec::new();
        for (i, d) in r.array("devices")?.into_iter().enumerate() {
            let path = format!("linux.resources.devices[{i}]");
            let mut d = Obj::new(&path, d)?;
            let allow = d.boolean("allow")?;
            let kind = d.string("type")?.unwrap_or_else(|| "a".into());
            let major = d.int("major")?;
            let minor = d.int("minor")?;
            d.ignore("access");
            d.finish()?;
            // The instance's /dev holds only the default nodes and device
            // files elsewhere are unusable (nodev): allowing changes
            // nothing, denying everything is what is already true, and
            // denying a device the instance has no node for too (Docker
            // denies /dev/fuse after its allow list). A denial that would
            // reach one of the instance's own nodes would have to be
            // enforced: refused.
            let deny_all = kind == "a" && major.unwrap_or(-1) == -1 && minor.unwrap_or(-1) == -1;
            if !allow && !deny_all && denies_an_instance_node(&kind, major, minor) {
                return Err(field(
                    &path,
                    "denying one of the instance's devices is not supported (its /dev has only null, zero, full, random, urandom, tty, ptmx and its own pts)",
                ));
            }
            rules.push((path, allow, kind, major, minor));
        }
        // An added node must be allowed by the last rule that covers it, if
        // any (nothing enforces a denial: the node is there or not).
        for (dev, node) in &self.added_devices {
            let last = rules.iter().rev().find(|(_, _, kind, major, minor)| {
                rule_covers(kind, *major, *minor, node.kind, node.major, Some(node.minor))
            });
            if let Some((rule, false, ..)) = last {
                return Err(field(
                    rule,
                    format!(
                        "denies {dev} ({} {}:{}), which linux.devices adds: a node that is there cannot be denied",
                        node.kind, node.major, node.minor
                    ),
                ));
            }
        }
        if let Some(mut m) = r.object("memory")? {
            if let Some(limit) = m.int("limit")? {
                if limit > 0 {
                    self.limits.memory_bytes = Some(limit as u64);
                }
            }
            // The limit covers swap too: xvisor never lets an instance
            // swap beyond it (stricter than any swap value asked).
            m.ignore("swap");
            // A soft target, not a limit.
            m.ignore("reservation");
            m.ignore("swappiness");
            m.ignore("useHierarchy");
            m.ignore("checkBeforeUpdate");
            m.refuse("kernel", "kernel memory limits are not supported")?;
            m.refuse("kernelTCP", "kernel TCP memory limits are not supported")?;
            if m.boolean("disableOOMKiller")? {
                return Err(field(
                    "linux.resources.memory.disableOOMKiller",
                    "disabling the OOM killer is not supported",
                ));
            }
            m.finish()?;
        }
        if let Some(mut p) = r.object("pids")? {
            if let Some(limit) = p.int("limit")? {
                if limit > 0 {
                    self.limits.pids = Some(limit as u64);
                }
            }
            p.finish()?;
        }
        if let Some(mut c) = r.object("cpu")? {
            let quota = c.int("quota")?;
            let period = c.uint("period")?.filter(|p| *p > 0);
            if let Some(period) = period {
                if !(1000..=1_000_000).contains(&period) {
                    return Err(field("linux.resources.cpu.period", "must be 1000 to 1000000 µs"));
                }
                self.limits.cpu_period_us = Some(period);
            }
            if let Some(q) = quota.filter(|q| *q > 0) {
                self.limits.cpus = Some(q as f64 / period.unwrap_or(100_000) as f64);
            }
            if let Some(shares) = c.uint("shares")?.filter(|s| *s > 0) {
                if !(2..=262_144).contains(&shares) {
                    return Err(field("linux.resources.cpu.shares", "must be 2 to 262144"));
                }
                self.limits.cpu_shares = Some(shares);
            }
            for (key, set) in [
                ("cpus", &mut self.limits.cpuset_cpus),
                ("mems", &mut self.limits.cpuset_mems),
            ] {
                if let Some(list) = c.string(key)?.filter(|l| !l.is_empty()) {
                    if !is_cpu_list(&list) {
                        return Err(field(
                            &format!("linux.resources.cpu.{key}"),
                            format!("{list:?} is not a list such as 0-3,6"),
                        ));
                    }
                    *set = Some(list);
                }
            }
            let rt_runtime = c.int("realtimeRuntime")?;
            let rt_period = c.uint("realtimePeriod")?;
            if rt_runtime.is_some() || rt_period.is_some() {
                self.limits.cpu_realtime = Some((rt_period, rt_runtime));
            }
            c.refuse("burst", "CPU burst is not supported")?;
            c.refuse("idle", "the idle CPU policy is not supported")?;
            c.finish()?;
        }
        if let Some(mut b) = r.object("blockIO")? {
            // Docker sends `{"weight": 0}`: 0 means no weight (as for runc).
            for key in ["weight", "leafWeight"] {
                if b.uint(key)?.is_some_and(|w| w > 0) {
                    return Err(field(&b.sub(key), "block I/O weights are not supported"));
                }
            }
            for key in [
                "weightDevice",
                "throttleReadBpsDevice",
                "throttleWriteBpsDevice",
                "throttleReadIOPSDevice",
                "throttleWriteIOPSDevice",
            ] {
                b.refuse(key, "block I/O limits are not supported")?;
            }
            b.finish()?;
        }
        r.refuse("hugepageLimits", "huge page limits are not supported")?;
        r.refuse("network", "network class and priority are not supported")?;
        r.refuse("rdma", "RDMA limits are not supported")?;
        r.refuse("unified", "cgroup v2 files are not supported")?;
        r.finish()
    }
}

/// Whether a device cgroup rule of `kind` (`a`, `c`, `b`), `major` and
/// `minor` (absent or -1: any) covers one of the nodes an instance has:
/// null, zero, full, random, urandom (1:3, 1:5, 1:7, 1:8, 1:9), tty (5:0),
/// its devpts' ptmx (5:2) and terminals (136–143:any). All are character
/// devices.
fn denies_an_instance_node(kind: &str, major: Option<i64>, minor: Option<i64>) -> bool {
    const NODES: &[(i64, Option<i64>)] = &[
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(2)),
        (136, None),
        (137, None),
        (138, None),
        (139, None),
        (140, None),
        (141, None),
        (142, None),
        (143, None),
    ];
    NODES
        .iter()
        .any(|&(node_major, node_minor)| rule_covers(kind, major, minor, 'c', node_major, node_minor))
}

/// Whether a device cgroup rule (`kind` `a`, `c` or `b`; `major`/`minor`
/// absent or -1: any) covers the node `node_kind node_major:node_minor`
/// (`node_minor` `None`: every minor of that major).
fn rule_covers(
    kind: &str,
    major: Option<i64>,
    minor: Option<i64>,
    node_kind: char,
    node_major: i64,
    node_minor: Option<i64>,
) -> bool {
    let any = |v: Option<i64>| v.unwrap_or(-1) == -1;
    (kind == "a" || kind.starts_with(node_kind))
        && (any(major) || major == Some(node_major))
        && (any(minor) || node_minor.is_none() || minor == node_minor)
}

/// A CPU or memory-node list as cgroups take it: `0`, `0-3`, `0-3,6,8-9`.
pub(super) fn is_cpu_list(list: &str) -> bool {
    const MAX_LIST: usize = 1024;
    let number = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    list.len() <= MAX_LIST
        && list.split(',').all(|item| match item.split_once('-') {
            Some((a, b)) => number(a) && number(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
            None => number(item),
        })
}
