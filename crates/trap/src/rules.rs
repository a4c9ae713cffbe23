//! Rule sets as container engines write them (an OCI `linux.seccomp`
//! object, libseccomp's model): for some calls, rules made of argument
//! comparisons with an action each, and a default action for everything
//! else. Compiled here into a classic-BPF program of its own, installed in
//! the guest next to xvisor's filter: the kernel runs both and takes the
//! more restrictive answer, so the engine's profile and xvisor's policy
//! combine with the stricter winning, call by call.
//!
//! Within one call, rules are tried from the most restrictive action to the
//! least (kill, trap, errno, trace, log, allow): when several match, the
//! stricter one decides, whatever their order in the document.

use std::collections::BTreeMap;

use crate::bpf::{
    jump, offset_of_arg_low_word, prologue, ranges, search, stmt, Instruction, ALU_AND_K, JMP_JEQ_K, JMP_JGE_K,
    JMP_JGT_K, LD_W_ABS, MAX_INSTRUCTIONS, RET_K,
};

/// An argument comparison, on the whole 64-bit register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    NotEqual,
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
    /// `(argument & value) == value_two`.
    MaskedEqual,
}

/// One comparison of argument register `arg` (0..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub arg: u8,
    pub compare: Compare,
    pub value: u64,
    pub value_two: u64,
}

impl Condition {
    /// Whether the argument registers satisfy the comparison.
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let a = args.get(usize::from(self.arg)).copied().unwrap_or(0);
        match self.compare {
            Compare::NotEqual => a != self.value,
            Compare::Less => a < self.value,
            Compare::LessOrEqual => a <= self.value,
            Compare::Equal => a == self.value,
            Compare::GreaterOrEqual => a >= self.value,
            Compare::Greater => a > self.value,
            Compare::MaskedEqual => a & self.value == self.value_two,
        }
    }
}

/// A rule: when every condition holds, the call gets `action` (a seccomp
/// return value, `SECCOMP_RET_*` with its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub action: u32,
}

/// A whole profile: rules per call number, and the default action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSet {
    pub default: u32,
    pub calls: BTreeMap<u32, Vec<Rule>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("argument index {0} is out of range (0 to 5)")]
    ArgumentIndex(u8),
    #[error("the compiled profile has {0} instructions; the kernel takes at most {MAX_INSTRUCTIONS}")]
    TooLong(usize),
    #[error("call number {0} is out of range")]
    Number(u32),
    #[error("a rule has {0} conditions; at most {MAX_CONDITIONS} fit")]
    TooManyConditions(usize),
}

/// A rule's conditions, at most six instructions each, must fit the byte
/// that a failed condition's jump to the next rule has.
pub const MAX_CONDITIONS: usize = 40;

/// The kernel's precedence among actions: lower comes first (a signed
/// comparison of the action bits, as the kernel makes it).
pub fn precedence(action: u32) -> i32 {
    (action & 0xffff_0000) as i32
}

impl RuleSet {
    /// What the profile answers for a call, by the same rules the compiled
    /// program follows (the model the program is tested against).
    #[cfg(test)]
    pub(crate) fn evaluate(&self, nr: u32, args: &[u64; 6]) -> u32 {
        let Some(rules) = self.calls.get(&nr) else {
            return self.default;
        };
        ordered(rules)
            .into_iter()
            .find(|r| r.conditions.iter().all(|c| c.holds(args)))
            .map_or(self.default, |r| r.action)
    }

    /// The BPF program: foreign ABIs and x32 numbers killed, then a search
    /// over call numbers, ending for a call with rules in their tests.
    pub fn compile(&self) -> Result<Vec<Instruction>, RulesError> {
        for (&nr, rules) in &self.calls {
            if nr >= crate::bpf::X32_SYSCALL_BIT {
                return Err(RulesError::Number(nr));
            }
            for rule in rules {
                if rule.conditions.len() > MAX_CONDITIONS {
                    return Err(RulesError::TooManyConditions(rule.conditions.len()));
                }
                if let Some(c) = rule.conditions.iter().find(|c| c.arg > 5) {
                    return Err(RulesError::ArgumentIndex(c.arg));
                }
            }
        }
        // Leaves: None = the default action, Some(nr) = that call's rules.
        // Numbers above the table's range with rules get their own leaf;
        // the search covers 0 up to the x32 bit.
        let highest = self.calls.keys().next_back().copied().unwrap_or(0);
        let leaf_of = |n: u32| self.calls.contains_key(&n).then_some(n);
        let mut runs = ranges(leaf_of);
        let top = crate::table::MAX_SYSCALL + 1;
        for n in top + 1..=highest.max(top) {
            let leaf = leaf_of(n);
            if runs.last().map(|&(_, l)| l) != Some(leaf) {
                runs.push((n, leaf));
            }
        }
        if highest >= top {
            // After the highest numbered call, the default again.
            if runs.last().map(|&(_, l)| l) != Some(None) {
                runs.push((highest + 1, None));
            }
        }
        let emit = |leaf: Option<u32>| match leaf.and_then(|n| self.calls.get(&n)) {
            None => vec![stmt(RET_K, self.default)],
            Some(rules) => call_rules(rules, self.default),
        };
        let mut prog = prologue();
        prog.extend(search(&runs, &emit));
        if prog.len() > MAX_INSTRUCTIONS {
            return Err(RulesError::TooLong(prog.len()));
        }
        Ok(prog)
    }
}

/// Rules from the most restrictive action to the least; the document's
/// order among equals.
fn ordered(rules: &[Rule]) -> Vec<&Rule> {
    let mut out: Vec<&Rule> = rules.iter().collect();
    out.sort_by_key(|r| precedence(r.action));
    out
}

/// Where a jump in a condition goes.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// The condition holds: on to the next condition (or the rule's
    /// action).
    Holds,
    /// The condition fails: on to the next rule.
    Fails,
}

/// One instruction of a condition, before its jumps are resolved.
enum Step {
    Load(u32),
    And(u32),
    Jump { code: u16, k: u32, yes: To, no: To },
}

/// The steps testing one 64-bit comparison: high words first; only when
/// they are equal do the low words decide.
fn condition_steps(c: &Condition) -> Vec<Step> {
    use Step::{And, Jump, Load};
    use To::{Fails, Holds, Next};
    let low = offset_of_arg_low_word(c.arg);
    let high = low + 4;
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let test = |code| move |k, yes, no| Jump { code, k, yes, no };
    let (jeq, jgt, jge) = (test(JMP_JEQ_K), test(JMP_JGT_K), test(JMP_JGE_K));
    match c.compare {
        Compare::Equal => vec![Load(high), jeq(vh, Next, Fails), Load(low), jeq(vl, Holds, Fails)],
        Compare::NotEqual => vec![Load(high), jeq(vh, Next, Holds), Load(low), jeq(vl, Fails, Holds)],
        Compare::MaskedEqual => {
            let (mh, ml) = ((c.value >> 32) as u32, c.value as u32);
            let (eh, el) = ((c.value_two >> 32) as u32, c.value_two as u32);
            vec![
                Load(high),
                And(mh),
                jeq(eh, Next, Fails),
                Load(low),
                And(ml),
                jeq(el, Holds, Fails),
            ]
        }
        Compare::Greater => vec![
            Load(high),
            jgt(vh, Holds, Next),
            jeq(vh, Next, Fails),
            Load(low),
            jgt(vl, Holds, Fails),
        ],
        Compare::GreaterOrEqual => vec![
            Load(high),
            jgt(vh, Holds, Next),
            jeq(vh, Next, Fails),
            Load(low),
            jge(vl, Holds, Fails),
        ],
        Compare::Less => vec![
            Load(high),
            jgt(vh, Fails, Next),
            jeq(vh, Next, Holds),
            Load(low),
            jge(vl, Fails, Holds),
        ],
        Compare::LessOrEqual => vec![
            Load(high),
            jgt(vh, Fails, Next),
            jeq(vh, Next, Holds),
            Load(low),
            jgt(vl, Fails, Holds),
        ],
    }
}

/// One call's rules, then its default. A rule is its conditions followed by
/// its action's return; a failed condition jumps to the next rule, which
/// starts right after that return. [`MAX_CONDITIONS`] (checked by
/// [`RuleSet::compile`]) keeps every such jump within a byte.
fn call_rules(rules: &[Rule], default: u32) -> Vec<Instruction> {
    let mut out = Vec::new();
    for rule in ordered(rules) {
        let conditions: Vec<Vec<Step>> = rule.conditions.iter().map(condition_steps).collect();
        let length: usize = conditions.iter().map(Vec::len).sum();
        // The rule's block: the conditions' instructions, then the return.
        let end_of_conditions = length;
        let next_rule = length + 1;
        let mut at = 0;
        for steps in conditions {
            let end_of_this = at + steps.len();
            for step in steps {
                let resolve = |to: To| -> u8 {
                    let target = match to {
                        To::Next => at + 1,
                        To::Holds => end_of_this,
                        To::Fails => next_rule,
                    };
                    // Forward only, and within a byte by MAX_CONDITIONS.
                    u8::try_from(target - (at + 1)).unwrap_or(u8::MAX)
                };
                out.push(match step {
                    Step::Load(offset) => stmt(LD_W_ABS, offset),
                    Step::And(k) => stmt(ALU_AND_K, k),
                    Step::Jump { code, k, yes, no } => jump(code, k, resolve(yes), resolve(no)),
                });
                at += 1;
            }
        }
        debug_assert_eq!(at, end_of_conditions);
        out.push(stmt(RET_K, rule.action));
    }
    out.push(stmt(RET_K, default));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{interpret, ret, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

    const EPERM: u32 = ret::ERRNO | 1;

    fn eq(arg: u8, value: u64) -> Condition {
        Condition {
            arg,
            compare: Compare::Equal,
            value,
            value_two: 0,
        }
    }

    use xvisor_sys::testing::XorShift as Random;

    /// Values that make comparisons interesting: near the boundaries,
    /// equal high words, all bits.
    fn value(r: &mut Random, pool: &[u64]) -> u64 {
        match r.below(4) {
            0 => pool[r.below(pool.len() as u64) as usize],
            1 => pool[r.below(pool.len() as u64) as usize]
                .wrapping_add(r.below(3))
                .wrapping_sub(1),
            2 => r.next(),
            _ => r.below(8),
        }
    }

    const ACTIONS: [u32; 6] = [
        ret::ALLOW,
        ret::ERRNO | 1,
        ret::ERRNO | 38,
        ret::KILL_PROCESS,
        0x7ffc_0000, // log
        0x0003_0000, // trap (SIGSYS)
    ];

    fn random_set(r: &mut Random) -> (RuleSet, Vec<u64>) {
        let pool: Vec<u64> = (0..6)
            .map(|_| match r.below(3) {
                0 => r.next(),
                1 => r.below(1 << 40),
                _ => r.below(16),
            })
            .collect();
        let mut set = RuleSet {
            default: ACTIONS[r.below(ACTIONS.len() as u64) as usize],
            calls: BTreeMap::new(),
        };
        for _ in 0..r.below(12) {
            let nr = r.below(u64::from(crate::table::MAX_SYSCALL) + 40) as u32;
            let rules = set.calls.entry(nr).or_default();
            for _ in 0..=r.below(3) {
                let conditions = (0..r.below(4))
                    .map(|_| Condition {
                        arg: r.below(6) as u8,
                        compare: [
                            Compare::NotEqual,
                            Compare::Less,
                            Compare::LessOrEqual,
                            Compare::Equal,
                            Compare::GreaterOrEqual,
                            Compare::Greater,
                            Compare::MaskedEqual,
                        ][r.below(7) as usize],
                        value: value(r, &pool),
                        value_two: value(r, &pool),
                    })
                    .collect();
                rules.push(Rule {
                    conditions,
                    action: ACTIONS[r.below(ACTIONS.len() as u64) as usize],
                });
            }
        }
        (set, pool)
    }

    #[test]
    fn the_program_answers_as_the_rules_say() {
        let mut r = Random(0x2545_f491_4f6c_dd1d);
        for _ in 0..300 {
            let (set, pool) = random_set(&mut r);
            let prog = set.compile().unwrap();
            let numbers: Vec<u32> = set
                .calls
                .keys()
                .copied()
                .chain([0, 1, crate::table::MAX_SYSCALL + 100, X32_SYSCALL_BIT - 1])
                .collect();
            for &nr in &numbers {
                for _ in 0..40 {
                    let mut args = [0u64; 6];
                    for a in &mut args {
                        *a = value(&mut r, &pool);
                    }
                    // Arguments equal to a masked comparison's expectation.
                    if let Some(c) = set
                        .calls
                        .get(&nr)
                        .and_then(|rs| rs.first())
                        .and_then(|r| r.conditions.first())
                    {
                        if r.below(2) == 0 {
                            args[usize::from(c.arg)] = c.value_two | (args[usize::from(c.arg)] & !c.value);
                        }
                    }
                    assert_eq!(
                        interpret(&prog, AUDIT_ARCH_X86_64, nr, &args),
                        Some(set.evaluate(nr, &args)),
                        "nr {nr} args {args:x?} rules {:?}",
                        set.calls.get(&nr)
                    );
                }
            }
            assert_eq!(interpret(&prog, AUDIT_ARCH_I386, 0, &[0; 6]), Some(ret::KILL_PROCESS));
            assert_eq!(
                interpret(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1, &[0; 6]),
                Some(ret::KILL_PROCESS)
            );
        }
    }

    #[test]
    fn the_stricter_matching_rule_decides() {
        let mut set = RuleSet {
            default: EPERM,
            calls: BTreeMap::new(),
        };
        // allow personality(0) and personality(8); kill personality(8) too.
        set.calls.insert(
            135,
            vec![
                Rule {
                    conditions: vec![eq(0, 0)],
                    action: ret::ALLOW,
                },
                Rule {
                    conditions: vec![eq(0, 8)],
                    action: ret::ALLOW,
                },
                Rule {
                    conditions: vec![eq(0, 8)],
                    action: ret::KILL_PROCESS,
                },
            ],
        );
        let prog = set.compile().unwrap();
        let call = |a0| interpret(&prog, AUDIT_ARCH_X86_64, 135, &[a0, 0, 0, 0, 0, 0]);
        assert_eq!(call(0), Some(ret::ALLOW));
        assert_eq!(call(8), Some(ret::KILL_PROCESS));
        assert_eq!(call(0x1_0000_0000), Some(EPERM));
        assert_eq!(interpret(&prog, AUDIT_ARCH_X86_64, 0, &[0; 6]), Some(EPERM));
    }

    #[test]
    fn calls_beyond_the_table_can_have_rules() {
        let mut set = RuleSet {
            default: ret::ALLOW,
            calls: BTreeMap::new(),
        };
        let beyond = crate::table::MAX_SYSCALL + 7;
        set.calls.insert(
            beyond,
            vec![Rule {
                conditions: vec![],
                action: EPERM,
            }],
        );
        let prog = set.compile().unwrap();
        assert_eq!(interpret(&prog, AUDIT_ARCH_X86_64, beyond, &[0; 6]), Some(EPERM));
        assert_eq!(
            interpret(&prog, AUDIT_ARCH_X86_64, beyond + 1, &[0; 6]),
            Some(ret::ALLOW)
        );
        assert_eq!(
            interpret(&prog, AUDIT_ARCH_X86_64, beyond - 1, &[0; 6]),
            Some(ret::ALLOW)
        );
    }

    #[test]
    fn bad_rule_sets_are_refused() {
        let mut set = RuleSet::default();
        set.calls.insert(
            1,
            vec![Rule {
                conditions: vec![eq(6, 0)],
                action: 0,
            }],
        );
        assert_eq!(set.compile(), Err(RulesError::ArgumentIndex(6)));
        let mut set = RuleSet::default();
        set.calls.insert(X32_SYSCALL_BIT, vec![]);
        assert_eq!(set.compile(), Err(RulesError::Number(X32_SYSCALL_BIT)));
        let mut set = RuleSet::default();
        let many = Rule {
            conditions: vec![eq(0, 1); MAX_CONDITIONS + 1],
            action: 0,
        };
        set.calls.insert(1, vec![many.clone()]);
        assert_eq!(set.compile(), Err(RulesError::TooManyConditions(MAX_CONDITIONS + 1)));
        // The longest allowed rule still compiles and answers right.
        let mut set = RuleSet {
            default: EPERM,
            calls: BTreeMap::new(),
        };
        let longest = Rule {
            conditions: vec![
                Condition {
                    arg: 0,
                    compare: Compare::Less,
                    value: 5,
                    value_two: 0,
                };
                MAX_CONDITIONS
            ],
            action: ret::ALLOW,
        };
        set.calls.insert(1, vec![longest]);
        let prog = set.compile().unwrap();
        assert_eq!(
            interpret(&prog, AUDIT_ARCH_X86_64, 1, &[4, 0, 0, 0, 0, 0]),
            Some(ret::ALLOW)
        );
        assert_eq!(interpret(&prog, AUDIT_ARCH_X86_64, 1, &[5, 0, 0, 0, 0, 0]), Some(EPERM));
    }
}
