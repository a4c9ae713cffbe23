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
//!    nanoseconds of filtering;
//! 4. for a call allowed unless one of its [`RegisterRule`]s matches, loads
//!    the argument registers' low words the rules name and tests them: a
//!    match is trapped.
//!
//! Nothing here reads memory: decisions that need it are trapped.

use crate::policy::{Action, Policy};
use crate::table::{Condition, RegisterRule, RegisterTest, MAX_SYSCALL};

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub(crate) const LD_W_ABS: u16 = 0x20;
pub(crate) const JMP_JA: u16 = 0x05;
pub(crate) const JMP_JEQ_K: u16 = 0x15;
pub(crate) const JMP_JGE_K: u16 = 0x35;
pub(crate) const JMP_JGT_K: u16 = 0x25;
pub(crate) const JMP_JSET_K: u16 = 0x45;
pub(crate) const ALU_AND_K: u16 = 0x54;
pub(crate) const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// The offset of argument register `arg`'s low word (x86_64 is little
/// endian).
pub(crate) fn offset_of_arg_low_word(arg: u8) -> u32 {
    OFFSET_ARGS + 8 * u32::from(arg)
}

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Return values (`SECCOMP_RET_*`).
pub mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
    pub const DATA_MASK: u32 = 0x0000_ffff;
}

/// The kernel's limit on a filter's length.
pub const MAX_INSTRUCTIONS: usize = 4096;

pub(crate) fn stmt(code: u16, k: u32) -> Instruction {
    Instruction { code, jt: 0, jf: 0, k }
}

pub(crate) fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

/// The seccomp return value for an action decided on the number alone.
pub fn return_value(action: Action) -> u32 {
    match action {
        Action::Allow => ret::ALLOW,
        // Decided on a register: the safe side when asked without one.
        Action::Trap | Action::AllowUnless(_) | Action::Refuse(_) | Action::MonitorIf { .. } => ret::USER_NOTIF,
        Action::Monitor => ret::TRACE,
        Action::Errno(e) => ret::ERRNO | (e as u32 & ret::DATA_MASK),
        Action::Kill => ret::KILL_PROCESS,
    }
}

/// How the search for one number ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// A return value, whatever the arguments.
    Return(u32),
    /// Trap when one of the rules matches, else allow.
    TrapIf(&'static [RegisterRule]),
    /// Allow when argument `arg` (all 64 bits) is one of `values`, else
    /// return `otherwise`.
    AllowOnly {
        arg: u8,
        values: &'static [u32],
        otherwise: u32,
    },
    /// Return `matched` when argument `arg` (all 64 bits) is one of
    /// `values`, else `otherwise`.
    Choose {
        arg: u8,
        values: &'static [u32],
        matched: u32,
        otherwise: u32,
    },
}

impl Leaf {
    fn of(action: Action) -> Leaf {
        match action {
            Action::AllowUnless(rules) => Leaf::TrapIf(rules),
            Action::MonitorIf { requests, trap_others } => Leaf::Choose {
                arg: 0,
                values: requests,
                matched: ret::TRACE,
                otherwise: if trap_others { ret::USER_NOTIF } else { ret::ALLOW },
            },
            other => Leaf::Return(return_value(other)),
        }
    }

    fn emit(self) -> Vec<Instruction> {
        match self {
            Leaf::Return(value) => vec![stmt(RET_K, value)],
            Leaf::TrapIf(rules) => trap_if(rules),
            Leaf::AllowOnly { arg, values, otherwise } => choose(arg, values, ret::ALLOW, otherwise),
            Leaf::Choose {
                arg,
                values,
                matched,
                otherwise,
            } => choose(arg, values, matched, otherwise),
        }
    }
}

/// Jump offsets over at most a few instructions: a rule's list of values
/// is short (the compiler's callers name a handful).
fn short(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Tests one condition: falls through to the next instruction when it
/// holds, jumps `fail` instructions past its own end when it does not.
fn condition(c: &Condition, fail: usize) -> Vec<Instruction> {
    if c.test == RegisterTest::NotNull {
        // A high word other than zero holds at once (over the low word's
        // test); else the low word decides.
        return vec![
            stmt(LD_W_ABS, offset_of_arg_low_word(c.arg) + 4),
            jump(JMP_JEQ_K, 0, 0, 2),
            stmt(LD_W_ABS, offset_of_arg_low_word(c.arg)),
            jump(JMP_JEQ_K, 0, short(fail), 0),
        ];
    }
    let mut out = vec![stmt(LD_W_ABS, offset_of_arg_low_word(c.arg))];
    let one_of = |out: &mut Vec<Instruction>, values: &[u32]| {
        // The i-th comparison, on a match, jumps over the rest and the
        // failing jump.
        let n = values.len();
        for (i, &v) in values.iter().enumerate() {
            out.push(jump(JMP_JEQ_K, v, short(n - i), 0));
        }
        out.push(stmt(JMP_JA, fail as u32));
    };
    match c.test {
        RegisterTest::AnyBit(mask) => out.push(jump(JMP_JSET_K, mask, 0, short(fail))),
        RegisterTest::OneOf(values) => one_of(&mut out, values),
        RegisterTest::MaskedOneOf { mask, values } => {
            out.push(stmt(ALU_AND_K, mask));
            one_of(&mut out, values);
        }
        RegisterTest::NotNull => {}
        RegisterTest::NoneOf(values) => {
            // The i-th comparison, on a match, jumps over the rest to the
            // failure.
            let n = values.len();
            for (i, &v) in values.iter().enumerate() {
                out.push(jump(JMP_JEQ_K, v, short(n - 1 - i + fail), 0));
            }
        }
    }
    out
}

/// Traps when one of the rules matches (all its conditions hold), else
/// allows. Each rule is a block that ends in the trap; a condition that
/// does not hold jumps to the next block.
fn trap_if(rules: &[RegisterRule]) -> Vec<Instruction> {
    let mut out = Vec::new();
    for rule in rules {
        // Built backwards: each condition's failure jump is the length of
        // what follows it in the block.
        let mut block = vec![stmt(RET_K, ret::USER_NOTIF)];
        for c in rule.when.iter().rev() {
            let mut tested = condition(c, block.len());
            tested.extend(block);
            block = tested;
        }
        out.extend(block);
    }
    out.push(stmt(RET_K, ret::ALLOW));
    out
}

/// Returns `matched` only when the whole 64-bit argument is one of
/// `values`, else `otherwise`.
fn choose(arg: u8, values: &'static [u32], matched: u32, otherwise: u32) -> Vec<Instruction> {
    let n = values.len();
    // A high word other than zero: over the low load and the comparisons,
    // to the refusal.
    let mut out = vec![
        stmt(LD_W_ABS, offset_of_arg_low_word(arg) + 4),
        jump(JMP_JEQ_K, 0, 0, short(n + 1)),
        stmt(LD_W_ABS, offset_of_arg_low_word(arg)),
    ];
    for (i, &v) in values.iter().enumerate() {
        // Over the rest and the refusal, to the match.
        out.push(jump(JMP_JEQ_K, v, short(n - i), 0));
    }
    out.push(stmt(RET_K, otherwise));
    out.push(stmt(RET_K, matched));
    out
}

/// Maximal runs of consecutive numbers sharing a leaf: `(first, leaf)`, the
/// last run reaching up to (but not including) the x32 bit. Every number
/// above the table behaves as `leaf_of(MAX_SYSCALL + 1)`.
pub(crate) fn ranges<L: Copy + PartialEq>(leaf_of: impl Fn(u32) -> L) -> Vec<(u32, L)> {
    let mut out: Vec<(u32, L)> = Vec::new();
    for n in 0..=MAX_SYSCALL + 1 {
        let leaf = leaf_of(n);
        if out.last().map(|&(_, l)| l) != Some(leaf) {
            out.push((n, leaf));
        }
    }
    out
}

/// Emits a search over `ranges` (sorted by first number, covering every
/// number from `ranges[0].0` upwards): the accumulator holds the number;
/// `emit` gives the instructions that end it for one range.
pub(crate) fn search<L: Copy>(ranges: &[(u32, L)], emit: &impl Fn(L) -> Vec<Instruction>) -> Vec<Instruction> {
    if ranges.len() == 1 {
        return emit(ranges[0].1);
    }
    let mid = ranges.len() / 2;
    let left = search(&ranges[..mid], emit);
    let right = search(&ranges[mid..], emit);
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
    compile_with(|n| Leaf::of(policy.action_for_number(n)))
}

/// A call an allow-list permits: with any arguments, or only when one
/// argument is one of a few values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    pub number: u32,
    /// `(argument, values)`.
    pub only: Option<(u8, &'static [u32])>,
}

/// Compiles an allow-list: the permitted calls run, every other call (and
/// a permitted one with another argument value) fails with `refusal`'s
/// errno; foreign ABIs are killed, as always.
pub fn compile_allowlist(permits: &[Permit], refusal: i32) -> Vec<Instruction> {
    let refused = return_value(Action::Errno(refusal));
    compile_with(|n| match permits.iter().find(|p| p.number == n) {
        None => Leaf::Return(refused),
        Some(Permit { only: None, .. }) => Leaf::Return(ret::ALLOW),
        Some(&Permit {
            only: Some((arg, values)),
            ..
        }) => Leaf::AllowOnly {
            arg,
            values,
            otherwise: refused,
        },
    })
}

fn compile_with(leaf_of: impl Fn(u32) -> Leaf) -> Vec<Instruction> {
    let mut prog = prologue();
    prog.extend(search(&ranges(leaf_of), &Leaf::emit));
    debug_assert!(prog.len() <= MAX_INSTRUCTIONS);
    prog
}

/// Kills foreign ABIs and x32 numbers; leaves the number in the
/// accumulator.
pub(crate) fn prologue() -> Vec<Instruction> {
    vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, ret::KILL_PROCESS),
        stmt(LD_W_ABS, OFFSET_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, ret::KILL_PROCESS),
    ]
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
/// number, architecture and argument registers (the instruction pointer
/// reads as 0). Returns `None` for anything a valid program cannot do (fall
/// off the end, jump out, load out of bounds or misaligned, unknown opcode).
pub fn interpret(prog: &[Instruction], arch: u32, nr: u32, args: &[u64; 6]) -> Option<u32> {
    run(prog, arch, nr, args).map(|(value, _)| value)
}

/// [`interpret`], also counting the instructions executed.
fn run(prog: &[Instruction], arch: u32, nr: u32, args: &[u64; 6]) -> Option<(u32, usize)> {
    let word = |offset: u32| -> Option<u32> {
        match offset {
            OFFSET_NR => Some(nr),
            OFFSET_ARCH => Some(arch),
            8 | 12 => Some(0),
            o if (OFFSET_ARGS..OFFSET_ARGS + 48).contains(&o) && o % 4 == 0 => {
                let arg = args[((o - OFFSET_ARGS) / 8) as usize];
                Some(if (o - OFFSET_ARGS) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                })
            }
            _ => None,
        }
    };
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
                acc = word(i.k)?;
                pc += 1;
            }
            JMP_JA => pc = pc.checked_add(1 + i.k as usize)?,
            ALU_AND_K => {
                acc &= i.k;
                pc += 1;
            }
            JMP_JEQ_K | JMP_JGE_K | JMP_JGT_K | JMP_JSET_K => {
                let taken = match i.code {
                    JMP_JEQ_K => acc == i.k,
                    JMP_JGE_K => acc >= i.k,
                    JMP_JGT_K => acc > i.k,
                    _ => acc & i.k != 0,
                };
                pc += 1 + if taken { i.jt as usize } else { i.jf as usize };
            }
            RET_K => return Some((i.k, steps)),
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
        // Datagram destinations decided by the supervisor: sendto tested
        // on its address register (both words), sendmsg trapped.
        let mut udp = Policy::new(Profile::Default);
        udp.supervise(crate::supervised::SupervisorRules {
            connect: Some(crate::supervised::ConnectRules {
                allowed: vec![crate::supervised::Destination::Inet {
                    transport: crate::supervised::Transport::Udp,
                    range: crate::supervised::AddressRange::Any,
                    port: Some(53),
                }],
                source: String::new(),
            }),
            ..Default::default()
        });
        out.push(udp);
        // Guest debuggers: ptrace's attach family stops for the monitor.
        for profile in Profile::ALL {
            let mut debuggers = Policy::new(profile);
            debuggers.allow_guest_debuggers();
            out.push(debuggers);
        }
        out
    }

    /// Argument registers that exercise every register rule both ways:
    /// nothing set, each rule's matches, the same in the high words only,
    /// everything set, and a spread of other values.
    fn argument_sets() -> Vec<[u64; 6]> {
        let mut out = vec![[0; 6], [u64::MAX; 6], [0xffff_ffff_0000_0000; 6]];
        let values_of = |test: RegisterTest| -> Vec<u32> {
            match test {
                RegisterTest::AnyBit(mask) => vec![mask, mask | 0x11, mask & mask.wrapping_neg()],
                RegisterTest::OneOf(values) | RegisterTest::NoneOf(values) => values.to_vec(),
                RegisterTest::MaskedOneOf { mask, values } => {
                    values.iter().flat_map(|&v| [v, v | !mask, v | 0x80800]).collect()
                }
                RegisterTest::NotNull => vec![0, 1, 0x1000],
            }
        };
        for s in crate::table::SYSCALLS {
            let extra = match s.number {
                crate::table::SENDTO => crate::table::sendto_supervised_rules(),
                crate::table::SETSOCKOPT => crate::table::source_route_rules(),
                41 => crate::table::SUPERVISED_SOCKET_RULES,
                _ => &[],
            };
            for rule in s.handler.register_rules().iter().chain(extra) {
                // Each condition's values alone, and every pairing of the
                // first two conditions' values (rules of two conditions).
                for c in rule.when {
                    for v in values_of(c.test) {
                        for v in [u64::from(v), u64::from(v) << 32, u64::from(v) + 1] {
                            let mut args = [0; 6];
                            args[usize::from(c.arg)] = v;
                            out.push(args);
                        }
                    }
                }
                if let [first, second, ..] = rule.when {
                    for a in values_of(first.test) {
                        for b in values_of(second.test) {
                            for (a, b) in [(a, b), (a, b.wrapping_add(1)), (a.wrapping_add(1), b)] {
                                let mut args = [0; 6];
                                args[usize::from(first.arg)] = u64::from(a);
                                args[usize::from(second.arg)] = u64::from(b);
                                out.push(args);
                            }
                        }
                    }
                }
            }
        }
        // ptrace's attach family, with high words and neighbours.
        for &r in crate::table::PTRACE_ATTACH_FAMILY {
            for v in [u64::from(r), u64::from(r) | 1 << 32, u64::from(r) + 1] {
                out.push([v, 1, 0, 0, 0, 0]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..16 {
            let mut args = [0; 6];
            for a in &mut args {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *a = x;
            }
            out.push(args);
        }
        out
    }

    #[test]
    fn the_attach_family_stops_for_the_monitor_and_nothing_else_does() {
        let ptrace = crate::table::PTRACE;
        for profile in Profile::ALL {
            let mut policy = Policy::new(profile);
            policy.allow_guest_debuggers();
            let prog = compile(&policy);
            let run = |request: u64| interpret(&prog, AUDIT_ARCH_X86_64, ptrace, &[request, 1, 0, 0, 0, 0]);
            for request in [0, 16, 17, 0x4206] {
                assert_eq!(run(request), Some(ret::TRACE), "{profile:?} {request:#x}");
            }
            // PEEKDATA, GETREGS, CONT, SETOPTIONS, INTERRUPT; TRACEME with a
            // high word (another request to the kernel).
            let others = if profile == Profile::Strict {
                ret::USER_NOTIF
            } else {
                ret::ALLOW
            };
            for request in [2, 12, 7, 0x4200, 0x4207, 1 << 32] {
                assert_eq!(run(request), Some(others), "{profile:?} {request:#x}");
            }
            // No other call returns RET_TRACE.
            for nr in (0..=MAX_SYSCALL).filter(|&n| n != ptrace) {
                assert_ne!(
                    interpret(&prog, AUDIT_ARCH_X86_64, nr, &[0; 6]),
                    Some(ret::TRACE),
                    "{nr}"
                );
            }
        }
        // Without guest debuggers, ptrace never stops for the monitor.
        let prog = compile(&Policy::new(Profile::Default));
        assert_ne!(interpret(&prog, AUDIT_ARCH_X86_64, ptrace, &[0; 6]), Some(ret::TRACE));
    }

    #[test]
    fn every_number_gets_exactly_the_policys_action() {
        let sets = argument_sets();
        for policy in policies() {
            let prog = compile(&policy);
            assert!(prog.len() <= MAX_INSTRUCTIONS);
            for nr in 0..=MAX_SYSCALL + 64 {
                let action = policy.action_for_number(nr);
                for args in &sets {
                    assert_eq!(
                        interpret(&prog, AUDIT_ARCH_X86_64, nr, args),
                        Some(return_value(action.for_args(args))),
                        "{:?} nr {nr} args {args:x?}",
                        policy.profile
                    );
                }
            }
            for nr in [MAX_SYSCALL + 1000, X32_SYSCALL_BIT - 1] {
                let want = return_value(policy.action_for_number(MAX_SYSCALL + 1));
                assert_eq!(interpret(&prog, AUDIT_ARCH_X86_64, nr, &[0; 6]), Some(want));
            }
        }
    }

    #[test]
    fn foreign_abis_are_killed() {
        for policy in policies() {
            let prog = compile(&policy);
            for nr in [0, 1, 20, 110, 0x1ff] {
                assert_eq!(interpret(&prog, AUDIT_ARCH_I386, nr, &[0; 6]), Some(ret::KILL_PROCESS));
                assert_eq!(
                    interpret(&prog, AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT, &[0; 6]),
                    Some(ret::KILL_PROCESS)
                );
            }
            assert_eq!(
                interpret(&prog, AUDIT_ARCH_X86_64, u32::MAX, &[0; 6]),
                Some(ret::KILL_PROCESS)
            );
        }
    }

    #[test]
    fn search_depth_stays_logarithmic() {
        let prog = compile(&Policy::new(Profile::Default));
        // The instructions executed for the worst number and arguments.
        let sets = argument_sets();
        let worst = (0..=MAX_SYSCALL)
            .flat_map(|nr| sets.iter().map(move |args| (nr, args)))
            .map(|(nr, args)| run(&prog, AUDIT_ARCH_X86_64, nr, args).unwrap().1)
            .max()
            .unwrap();
        assert!(worst <= 6 + 2 * 10 + 4, "worst path {worst} instructions");
    }

    #[test]
    fn register_rules_are_tested_in_the_filter() {
        let prog = compile(&Policy::new(Profile::Default));
        let clone = 56;
        let newuser = u64::from(crate::table::value::CLONE_NEWUSER);
        let fork_flags = 0x0120_0011; // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
        let call = |nr, a0, a1| interpret(&prog, AUDIT_ARCH_X86_64, nr, &[a0, a1, 0, 0, 0, 0]);
        assert_eq!(call(clone, fork_flags, 0), Some(ret::ALLOW));
        assert_eq!(call(clone, fork_flags | newuser, 0), Some(ret::USER_NOTIF));
        assert_eq!(call(16, 1, 0x5401), Some(ret::ALLOW)); // ioctl TCGETS
        assert_eq!(call(16, 1, 0x5412), Some(ret::USER_NOTIF)); // ioctl TIOCSTI
        assert_eq!(call(16, 1, 0x541c), Some(ret::USER_NOTIF)); // ioctl TIOCLINUX
        assert!(prog.iter().any(|i| i.code == JMP_JSET_K));
        // Sockets: families and, for IP, raw and packet types.
        assert_eq!(call(41, 2, 1), Some(ret::ALLOW)); // AF_INET, SOCK_STREAM
        assert_eq!(call(41, 10, 2 | 0x80800), Some(ret::ALLOW)); // AF_INET6, SOCK_DGRAM|NONBLOCK|CLOEXEC
        assert_eq!(call(41, 16, 3), Some(ret::ALLOW)); // AF_NETLINK, SOCK_RAW: ip(8)
        assert_eq!(call(41, 2, 3), Some(ret::USER_NOTIF)); // AF_INET, SOCK_RAW
        assert_eq!(call(41, 10, 3 | 0x80000), Some(ret::USER_NOTIF)); // AF_INET6, SOCK_RAW|CLOEXEC
        assert_eq!(call(41, 2, 10), Some(ret::USER_NOTIF)); // AF_INET, SOCK_PACKET
        assert_eq!(call(41, 17, 2), Some(ret::USER_NOTIF)); // AF_PACKET
        assert_eq!(call(41, 40, 1), Some(ret::USER_NOTIF)); // AF_VSOCK
                                                            // personality: only the values that keep address-space randomisation.
        assert_eq!(call(135, 0xffff_ffff, 0), Some(ret::ALLOW));
        assert_eq!(call(135, 0, 0), Some(ret::ALLOW));
        assert_eq!(call(135, 0x0040000, 0), Some(ret::USER_NOTIF)); // ADDR_NO_RANDOMIZE
                                                                    // The path calls run in the kernel: no rule needs them trapped.
        assert_eq!(call(257, 0, 0), Some(ret::ALLOW)); // openat
        assert_eq!(call(59, 0, 0), Some(ret::ALLOW)); // execve
        assert_eq!(call(435, 0, 0), Some(ret::ERRNO | 38)); // clone3: ENOSYS
                                                            // Strict and a task limit trap clone whatever its flags.
        let mut limited = Policy::new(Profile::Default);
        limited.limit_tasks(8);
        for policy in [Policy::new(Profile::Strict), limited] {
            let prog = compile(&policy);
            assert_eq!(
                interpret(&prog, AUDIT_ARCH_X86_64, clone, &[fork_flags, 0, 0, 0, 0, 0]),
                Some(ret::USER_NOTIF)
            );
        }
    }

    #[test]
    fn long_jumps_are_used_when_needed() {
        // A synthetic policy-shaped range list, large enough for left halves
        // beyond 255 instructions, still lands every number right.
        let ranges: Vec<(u32, Leaf)> = (0..600)
            .map(|i| (i, Leaf::of(if i % 2 == 0 { Action::Allow } else { Action::Trap })))
            .collect();
        let mut prog = vec![stmt(LD_W_ABS, OFFSET_NR)];
        prog.extend(search(&ranges, &Leaf::emit));
        assert!(prog.iter().any(|i| i.code == JMP_JA));
        for nr in 0..700u32 {
            let want = if nr >= 599 {
                Action::Trap
            } else if nr % 2 == 0 {
                Action::Allow
            } else {
                Action::Trap
            };
            assert_eq!(interpret(&prog, 0, nr, &[0; 6]), Some(return_value(want)), "nr {nr}");
        }
    }

    #[test]
    fn allowlists_allow_exactly_their_numbers() {
        let allowed = [0, 1, 3, 7, 202, 231];
        let permits: Vec<Permit> = allowed.iter().map(|&number| Permit { number, only: None }).collect();
        let prog = compile_allowlist(&permits, 1);
        for nr in 0..=MAX_SYSCALL + 10 {
            let want = if allowed.contains(&nr) {
                ret::ALLOW
            } else {
                ret::ERRNO | 1
            };
            assert_eq!(interpret(&prog, AUDIT_ARCH_X86_64, nr, &[0; 6]), Some(want), "nr {nr}");
        }
        assert_eq!(interpret(&prog, AUDIT_ARCH_I386, 0, &[0; 6]), Some(ret::KILL_PROCESS));
    }

    #[test]
    fn allowlists_can_permit_only_some_values_of_one_argument() {
        let permits = [
            Permit { number: 0, only: None },
            Permit {
                number: 101,
                only: Some((0, &[7, 0x4206])),
            },
        ];
        let prog = compile_allowlist(&permits, 1);
        let call = |nr, a0: u64| interpret(&prog, AUDIT_ARCH_X86_64, nr, &[a0, 5, 0, 0, 0, 0]);
        assert_eq!(call(101, 7), Some(ret::ALLOW));
        assert_eq!(call(101, 0x4206), Some(ret::ALLOW));
        for refused in [0, 6, 16, 0x4207, 0x1_0000_0007, 0xffff_ffff_0000_4206, u64::MAX] {
            assert_eq!(call(101, refused), Some(ret::ERRNO | 1), "{refused:#x}");
        }
        assert_eq!(call(0, u64::MAX), Some(ret::ALLOW));
        assert_eq!(call(1, 7), Some(ret::ERRNO | 1));
    }

    #[test]
    fn bytes_are_eight_per_instruction() {
        let prog = compile(&Policy::new(Profile::Strict));
        assert_eq!(to_bytes(&prog).len(), prog.len() * 8);
    }
}
