//! A bundle's config.json is untrusted: the walk over its fields, the
//! seccomp profile's compilation included, must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = xvisor_oci::parse_config(text, std::path::Path::new("/bundle"), "fuzz");
    }
});
