//! What init sends is untrusted: decoding must never panic, and whatever
//! decodes must encode back to something that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_instance::protocol::{FromInit, ToInit};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = FromInit::decode(data) {
        assert_eq!(FromInit::decode(&msg.encode()), Ok(msg));
    }
    let _ = ToInit::decode(data);
});
