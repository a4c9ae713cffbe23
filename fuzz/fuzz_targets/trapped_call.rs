//! A trapped call is the guest's to shape: its registers and the memory they
//! point to. Deciding and describing it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvisor_kernel::decode::describe;
use xvisor_kernel::dispatch::{decide, syscall_of};
use xvisor_kernel::TrappedCall;
use xvisor_trap::{Policy, Profile};

fuzz_target!(|data: &[u8]| {
    if data.len() < 56 {
        return;
    }
    let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let call = TrappedCall {
        id: 0,
        pid: 0,
        nr: word(0) as i32,
        arch: if word(0) >> 63 == 0 { xvisor_trap::bpf::AUDIT_ARCH_X86_64 } else { (word(0) >> 32) as u32 },
        args: [word(1), word(2), word(3), word(4), word(5), word(6)],
    };
    // Guest memory: the rest of the input, mapped at 0x10000.
    let memory_bytes = &data[56..];
    let memory = |address: u64, buf: &mut [u8]| -> usize {
        if address < 0x10000 {
            return 0;
        }
        let start = (address - 0x10000) as usize;
        if start >= memory_bytes.len() {
            return 0;
        }
        let n = buf.len().min(memory_bytes.len() - start);
        buf[..n].copy_from_slice(&memory_bytes[start..start + n]);
        n
    };
    for profile in Profile::ALL {
        let _ = decide(&Policy::new(profile), &call);
    }
    let _ = describe(syscall_of(&call), &call, &memory);
});
