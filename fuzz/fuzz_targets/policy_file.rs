//! Policy files are user input: reading one must never panic, and an
//! accepted one must compile to a filter and list its rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_trap::policy_file::PolicyFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = PolicyFile::parse("fuzz.toml", &text) {
        let program = xvisor_trap::bpf::compile(&file.filter_policy());
        assert!(program.len() <= xvisor_trap::bpf::MAX_INSTRUCTIONS);
        let _ = file.rules();
        // The supervisor's rules decide without panicking on any target.
        let rules = file.supervisor_rules();
        if let Some(connect) = &rules.connect {
            for target in [
                xvisor_trap::supervised::Target::UnixPath("/run/x.sock".into()),
                xvisor_trap::supervised::Target::Inet {
                    transport: xvisor_trap::supervised::Transport::Tcp,
                    address: std::net::IpAddr::from([10, 1, 2, 3]),
                    port: 443,
                },
            ] {
                let _ = connect.allows(&target);
            }
        }
    }
});
