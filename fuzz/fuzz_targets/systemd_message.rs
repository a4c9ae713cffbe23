//! What the service manager sends over D-Bus is decoded before it is
//! trusted: no length, alignment or signature may make the decoder panic,
//! loop or read outside the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_confine::systemd::wire::{message_length, Message, FIXED_HEADER};

fuzz_target!(|data: &[u8]| {
    if let Some(fixed) = data.get(..FIXED_HEADER).and_then(|b| <&[u8; FIXED_HEADER]>::try_from(b).ok()) {
        let _ = message_length(fixed);
    }
    if let Ok(m) = Message::parse(data) {
        let _ = m.validate_body();
        let mut r = m.body_reader();
        let _ = r.u32();
        let _ = r.string();
        let _ = r.signature();
    }
});
