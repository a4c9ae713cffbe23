//! Image archives are untrusted: the tar reader, entry-path checks, gzip
//! and the OCI / docker JSON documents must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xvisor_image::exercise_parsers(data);
});
