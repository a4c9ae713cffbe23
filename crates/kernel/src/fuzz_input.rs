//! The input format of the `trapped_call` fuzz target, shared by the target
//! (fuzz/) and the unit test that replays its corpus: seven little-endian
//! words — the call number (bit 63 set: a foreign architecture in bits
//! 32–62), then six arguments — followed by guest memory mapped at
//! [`MEMORY_BASE`].

use xvisor_trap::bpf::AUDIT_ARCH_X86_64;

use crate::TrappedCall;

/// Where the bytes after the header appear in guest memory.
pub const MEMORY_BASE: u64 = 0x10000;
const HEADER: usize = 7 * 8;

/// The trapped call and the guest memory an input describes; `None` for an
/// input shorter than the header.
pub fn parse(data: &[u8]) -> Option<(TrappedCall, &[u8])> {
    let header = data.get(..HEADER)?;
    let word = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&header[i * 8..i * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    let call = TrappedCall {
        id: 0,
        pid: 0,
        nr: word(0) as i32,
        arch: if word(0) >> 63 == 0 {
            AUDIT_ARCH_X86_64
        } else {
            (word(0) >> 32) as u32
        },
        args: [word(1), word(2), word(3), word(4), word(5), word(6)],
    };
    Some((call, &data[HEADER..]))
}

/// Guest memory holding `bytes` at `base` and nothing elsewhere, in the
/// shape [`crate::decode::GuestMemory`] reads.
pub fn guest_memory(bytes: &[u8], base: u64) -> impl Fn(u64, &mut [u8]) -> usize + '_ {
    move |address: u64, buf: &mut [u8]| {
        let Some(start) = address.checked_sub(base).and_then(|s| usize::try_from(s).ok()) else {
            return 0;
        };
        if start >= bytes.len() {
            return 0;
        }
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        n
    }
}
