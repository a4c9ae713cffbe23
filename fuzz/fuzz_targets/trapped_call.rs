//! A trapped call is the guest's to shape: its registers and the memory they
//! point to. Deciding and describing it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_kernel::decode::describe;
use xvisor_kernel::dispatch::{decide, syscall_of};
use xvisor_kernel::fuzz_input::{guest_memory, parse, MEMORY_BASE};
use xvisor_trap::{Policy, Profile};

fuzz_target!(|data: &[u8]| {
    let Some((call, memory_bytes)) = parse(data) else { return };
    let memory = guest_memory(memory_bytes, MEMORY_BASE);
    for profile in Profile::ALL {
        let _ = decide(&Policy::new(profile), &call);
    }
    let _ = describe(syscall_of(&call), &call, &memory);
});
