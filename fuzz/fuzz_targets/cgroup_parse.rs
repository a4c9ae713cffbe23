//! /proc/self/mountinfo and /proc/self/cgroup parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_confine::cgroup::CgroupHost;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (mountinfo, own) = text.split_once('\u{0}').unwrap_or((&text, "0::/\n"));
    let host = CgroupHost::parse(mountinfo, own, |_| Some("memory pids cpu".into()));
    for c in ["memory", "pids", "cpu"] {
        let _ = host.hierarchy_for(c);
    }
});
