//! From a [`Policy`] to a classic-BPF seccomp program.
//!
//! The program:
//! 1. kills the process unless the call comes through the x86_64 ABI
//!    (`int 0x80` i386 calls carry another architecture tag, and mean other
//!    calls for the same numbers);
//! 2. kills x32 calls (numbers with bit 30 set);
//! 3. finds the call number's action with a balanced binary search over
//!    ranges of numbers that share an action: about log2(ranges) ≈ 7
//!    comparisons, so a call decided by number alone costs a few
//!    nanoseconds of filtering.
//!
//! Nothing here reads arguments: decisions that need them are trapped.

use crate::policy::{Action, Policy};
use crate::table::MAX_SYSCALL;

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Return values (`SECCOMP_RET_*`).
pub mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
    pub const DATA_MASK: u32 = 0x0000_ffff;
}

/// The kernel's limit on a filter's length.
pub const MAX_INSTRUCTIONS: usize = 4096;

fn stmt(code: u16, k: u32) -> Instruction {
    Instruction { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

/// The seccomp return value for an action.
pub fn return_value(action: Action) -> u32 {
    match action {
        Action::Allow => ret::ALLOW,
        Action::Trap => ret::USER_NOTIF,
        Action::Errno(e) => ret::ERRNO | (e as u32 & ret::DATA_MASK),
        Action::Kill => ret::KILL_PROCESS,
    }
}

/// Maximal runs of consecutive numbers sharing an action: `(first, action)`,
/// the last run reaching up to (but not including) the x32 bit. Every
/// number above the table behaves as `action_of(MAX_SYSCALL + 1)`.
fn ranges(action_of: impl Fn(u32) -> Action) -> Vec<(u32, Action)> {
    let mut out: Vec<(u32, Action)> = Vec::new();
    for n in 0..=MAX_SYSCALL + 1 {
        let action = action_of(n);
        if out.last().map(|&(_, a)| a) != Some(action) {
            out.push((n, action));
        }
    }
    out
}

/// Emits a search over `ranges` (sorted by first number, covering every
/// number from `ranges[0].0` upwards): the accumulator holds the number.
fn search(ranges: &[(u32, Action)]) -> Vec<Instruction> {
    if ranges.len() == 1 {
        return vec![stmt(RET_K, return_value(ranges[0].1))];
    }
    let mid = ranges.len() / 2;
    let left = search(&ranges[..mid]);
    let right = search(&ranges[mid..]);
    let pivot = ranges[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        // number >= pivot: skip the left half.
        Ok(skip) => out.push(jump(JMP_JGE_K, pivot, skip, 0)),
        Err(_) => {
            // Too far for a conditional jump: go through a long jump.
            out.push(jump(JMP_JGE_K, pivot, 0, 1));
            out.push(stmt(JMP_JA, left.len() as u32));
        }
    }
    out.extend(left);
    out.extend(right);
    out
}

/// Compiles `policy` into a seccomp program.
pub fn compile(policy: &Policy) -> Vec<Instruction> {
    compile_with(|n| policy.action_for_number(n))
}

/// Compiles an allow-list: the numbers in `allowed` run, every other call
/// fails with `refusal`'s errno (foreign ABIs are killed, as always).
pub fn compile_allowlist(allowed: &[u32], refusal: i32) -> Vec<Instruction> {
    compile_with(|n| {
        if allowed.contains(&n) {
            Action::Allow
        } else {
            Action::Errno(refusal)
        }
    })
}

fn compile_with(action_of: impl Fn(u32) -> Action) -> Vec<Instruction> {
    let mut prog = vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, ret::KILL_PROCESS),
        stmt(LD_W_ABS, OFFSET_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, ret::KILL_PROCESS),
    ];
    prog.extend(search(&ranges(action_of)));
    debug_assert!(prog.len() <= MAX_INSTRUCTIONS);
    prog
}

/// The program as the kernel's `struct sock_filter` array bytes.
pub fn to_bytes(prog: &[Instruction]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Runs a program the way the kernel would on a `seccomp_data` with this
/// number and architecture (arguments are never loaded by our programs).
/// Returns `None` for anything a valid program cannot do (fall off the
/// end, jump out, load out of bounds, unknown opcode).
pub fn interpret(prog: &[Instruction], nr: u32, arch: u32) -> Option<u32> {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    while let Some(i) = prog.get(pc) {
        steps += 1;
        if steps > MAX_INSTRUCTIONS {
            return None;
        }
        match i.code {
            LD_W_ABS => {
                acc = match i.k {
                    OFFSET_NR => nr,
                    OFFSET_ARCH => arch,
                    _ => return None,
                };
                pc += 1;
            }
            JMP_JA => pc = pc.checked_add(1 + i.k as usize)?,
            JMP_JEQ_K | JMP_JGE_K => {
                let taken = if i.code == JMP_JEQ_K { acc == i.k } else { acc >= i.k };
                pc += 1 + if taken { i.jt as usize } else { i.jf as usize };
            }
            RET_K => return Some(i.k),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Profile;

    fn policies() -> Vec<Policy> {
        let mut out: Vec<Policy> = Profile::ALL.iter().map(|&p| Policy::new(p)).collect();
        let mut denied = Policy::new(Profile::Default);
        for name in ["getppid", "openat", "read", "rseq"] {
            denied.deny(name).unwrap();
        }
        out.push(denied);
        out
    }

    #[test]
    fn every_number_gets_exactly_the_policys_action() {
        for policy in policies() {
            let prog = compile(&policy);
            assert!(prog.len() <= MAX_INSTRUCTIONS);
            for nr in 0..=MAX_SYSCALL + 64 {
                let want = return_value(policy.action_for_number(nr));
                assert_eq!(
                    interpret(&prog, nr, AUDIT_ARCH_X86_64),
                    Some(want),
                    "{:?} nr {nr}",
                    policy.profile
                );
            }
            for nr in [MAX_SYSCALL + 1000, X32_SYSCALL_BIT - 1] {
                let want = return_value(policy.action_for_number(MAX_SYSCALL + 1));
                assert_eq!(interpret(&prog, nr, AUDIT_ARCH_X86_64), Some(want));
            }
        }
    }

    #[test]
    fn foreign_abis_are_killed() {
        for policy in policies() {
            let prog = compile(&policy);
            for nr in [0, 1, 20, 110, 0x1ff] {
                assert_eq!(interpret(&prog, nr, AUDIT_ARCH_I386), Some(ret::KILL_PROCESS));
                assert_eq!(
                    interpret(&prog, nr | X32_SYSCALL_BIT, AUDIT_ARCH_X86_64),
                    Some(ret::KILL_PROCESS)
                );
            }
            assert_eq!(interpret(&prog, u32::MAX, AUDIT_ARCH_X86_64), Some(ret::KILL_PROCESS));
        }
    }

    #[test]
    fn search_depth_stays_logarithmic() {
        let prog = compile(&Policy::new(Profile::Default));
        // Count the instructions executed for the worst number.
        let mut worst = 0;
        for nr in 0..=MAX_SYSCALL {
            let mut pc = 0usize;
            let mut steps = 0;
            let mut acc = 0;
            while let Some(i) = prog.get(pc) {
                steps += 1;
                match i.code {
                    LD_W_ABS => {
                        acc = if i.k == OFFSET_NR { nr } else { AUDIT_ARCH_X86_64 };
                        pc += 1
                    }
                    JMP_JA => pc += 1 + i.k as usize,
                    JMP_JEQ_K => pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize,
                    JMP_JGE_K => pc += 1 + if acc >= i.k { i.jt } else { i.jf } as usize,
                    _ => break,
                }
            }
            worst = worst.max(steps);
        }
        assert!(worst <= 6 + 2 * 10, "worst path {worst} instructions");
    }

    #[test]
    fn long_jumps_are_used_when_needed() {
        // A synthetic policy-shaped range list, large enough for left halves
        // beyond 255 instructions, still lands every number right.
        let ranges: Vec<(u32, Action)> = (0..600)
            .map(|i| (i, if i % 2 == 0 { Action::Allow } else { Action::Trap }))
            .collect();
        let mut prog = vec![stmt(LD_W_ABS, OFFSET_NR)];
        prog.extend(search(&ranges));
        assert!(prog.iter().any(|i| i.code == JMP_JA));
        for nr in 0..700u32 {
            let want = if nr >= 599 {
                Action::Trap
            } else if nr % 2 == 0 {
                Action::Allow
            } else {
                Action::Trap
            };
            assert_eq!(interpret(&prog, nr, 0), Some(return_value(want)), "nr {nr}");
        }
    }

    #[test]
    fn allowlists_allow_exactly_their_numbers() {
        let allowed = [0, 1, 3, 7, 202, 231];
        let prog = compile_allowlist(&allowed, 1);
        for nr in 0..=MAX_SYSCALL + 10 {
            let want = if allowed.contains(&nr) {
                ret::ALLOW
            } else {
                ret::ERRNO | 1
            };
            assert_eq!(interpret(&prog, nr, AUDIT_ARCH_X86_64), Some(want), "nr {nr}");
        }
        assert_eq!(interpret(&prog, 0, AUDIT_ARCH_I386), Some(ret::KILL_PROCESS));
    }

    #[test]
    fn bytes_are_eight_per_instruction() {
        let prog = compile(&Policy::new(Profile::Strict));
        assert_eq!(to_bytes(&prog).len(), prog.len() * 8);
    }
}
