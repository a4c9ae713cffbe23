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
    }
});
