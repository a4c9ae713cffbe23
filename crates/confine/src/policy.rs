//! A policy file's access rules and limits, as the confinement layers
//! take them (`xvisor run --policy`).

use std::time::Duration;

use xvisor_trap::policy_file::{self, PolicyFile, PolicyFileError};

use crate::units::{parse_duration, parse_size};
use crate::wall::AccessRules;
use crate::Limits;

/// The file's Landlock rules.
pub fn access_rules(file: &PolicyFile) -> AccessRules {
    let paths = |list: &Option<Vec<policy_file::Located<String>>>| {
        list.as_ref()
            .map(|l| l.iter().map(|p| p.value.clone()).collect::<Vec<_>>())
    };
    let ports = |list: &Option<Vec<policy_file::Located<u16>>>| {
        list.as_ref().map(|l| l.iter().map(|p| p.value).collect::<Vec<_>>())
    };
    AccessRules {
        read: paths(&file.paths.read),
        write: paths(&file.paths.write),
        exec: paths(&file.paths.exec),
        connect_tcp: ports(&file.ports.connect),
        bind_tcp: ports(&file.ports.bind),
    }
}

/// The file's limits, where the command line set none.
pub fn apply_limits(
    file: &PolicyFile,
    limits: &mut Limits,
    nofile: &mut Option<u64>,
    timeout: &mut Option<Duration>,
) -> Result<(), PolicyFileError> {
    let l = &file.limits;
    if let (None, Some(memory)) = (limits.memory_bytes, &l.memory) {
        limits.memory_bytes =
            Some(parse_size(&memory.value).map_err(|e| file.error_at(memory.at, "limits.memory", e))?);
    }
    if let (None, Some(cpus)) = (limits.cpus, &l.cpus) {
        let n: f64 = cpus
            .value
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.01 && *n <= 4096.0)
            .ok_or_else(|| file.error_at(cpus.at, "limits.cpus", "a number of CPUs from 0.01 up, e.g. 0.5"))?;
        limits.cpus = Some(n);
    }
    if let (None, Some(pids)) = (limits.pids, &l.pids) {
        limits.pids = Some(pids.value);
    }
    if let (None, Some(n)) = (*nofile, &l.nofile) {
        if n.value < 3 {
            return Err(file.error_at(n.at, "limits.nofile", "at least 3"));
        }
        *nofile = Some(n.value);
    }
    if let (None, Some(t)) = (*timeout, &l.timeout) {
        *timeout = Some(parse_duration(&t.value).map_err(|e| file.error_at(t.at, "limits.timeout", e))?);
    }
    Ok(())
}
