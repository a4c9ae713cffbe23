//! Profiles: from the table's classes to one action per call number.

use std::collections::BTreeMap;
use std::fmt;

use crate::table::{self, errno, Class, Handler, RegisterRule, Syscall, MAX_SYSCALL};

/// A named policy preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Every call runs in the host kernel but those the filter refuses;
    /// a call is trapped only where some rule must decide it (or a trace
    /// record it) in the supervisor.
    #[default]
    Default,
    /// Every call is trapped and decided by the supervisor (refusals
    /// included): proves the whole path carries real programs.
    Strict,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Default, Profile::Strict];

    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Strict => "strict",
        }
    }

    pub fn parse(name: &str) -> Result<Self, PolicyError> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| PolicyError::UnknownProfile(name.to_string()))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the filter does with one call number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Runs in the host kernel, no supervisor round trip.
    Allow,
    /// Runs in the host kernel unless one of the rules matches its
    /// registers; then trapped, and refused by its handler.
    AllowUnless(&'static [RegisterRule]),
    /// Sent to the supervisor, which decides.
    Trap,
    /// Sent to the supervisor, which refuses it with this errno and names
    /// the refusal and the rule behind it on stderr: a call a user's policy
    /// denies costs a round trip only when it is made, and says why it
    /// failed.
    Refuse(i32),
    /// Refused by the filter with this errno.
    Errno(i32),
    /// Stops for the process monitor (`SECCOMP_RET_TRACE`) before it runs.
    Monitor,
    /// `ptrace` under guest debuggers: stops for the process monitor when
    /// the request (all of register 0) is one of `requests`, the attach
    /// family; any other request runs in the kernel, or is trapped (and
    /// continued) when `trap_others`.
    MonitorIf {
        requests: &'static [u32],
        trap_others: bool,
    },
    /// The whole process is killed (wrong ABI).
    Kill,
}

impl Action {
    /// What the filter does with a call carrying these argument registers
    /// (the model the compiled filter is tested against).
    #[cfg(test)]
    pub(crate) fn for_args(self, args: &[u64; 6]) -> Action {
        match self {
            Self::AllowUnless(rules) if table::refusing_rule(rules, args).is_some() => Self::Trap,
            Self::Refuse(_) => Self::Trap,
            Self::MonitorIf { requests, .. } if requests.iter().any(|&r| u64::from(r) == args[0]) => Self::Monitor,
            Self::MonitorIf { trap_others: true, .. } => Self::Trap,
            Self::MonitorIf { trap_others: false, .. } => Self::Allow,
            Self::AllowUnless(_) => Self::Allow,
            other => other,
        }
    }

    /// Whether some calls run in the kernel without the supervisor.
    pub fn allows(self) -> bool {
        matches!(
            self,
            Self::Allow | Self::AllowUnless(_) | Self::MonitorIf { trap_others: false, .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::AllowUnless(rules) => write!(f, "allow unless {}", rule_names(rules)),
            Self::Trap => f.write_str("trap"),
            Self::Refuse(e) => write!(f, "refuse {} (named on stderr)", errno_name(*e)),
            Self::Errno(e) => write!(f, "errno {}", errno_name(*e)),
            Self::Kill => f.write_str("kill"),
            Self::Monitor => f.write_str("stop for the process monitor"),
            Self::MonitorIf { trap_others, .. } => write!(
                f,
                "stop for the process monitor when attaching or detaching, else {}",
                if *trap_others { "trap" } else { "allow" }
            ),
        }
    }
}

/// The names of what `rules` refuse, for listings.
pub fn rule_names(rules: &[RegisterRule]) -> String {
    rules.iter().map(|r| r.names).collect::<Vec<_>>().join("; ")
}

/// `connect`'s number: trapped when the supervisor holds `[net].connect`.
pub const CONNECT: u32 = 42;

/// Whether a call creates a task: `fork`, `vfork`, `clone`, `clone3`.
pub fn creates_task(s: &Syscall) -> bool {
    matches!(s.name, "fork" | "vfork" | "clone" | "clone3")
}

/// x86_64 errno values and their names, for the trace.
const ERRNO_NAMES: &[(i32, &str)] = &[
    (errno::EPERM, "EPERM"),
    (2, "ENOENT"),
    (3, "ESRCH"),
    (4, "EINTR"),
    (5, "EIO"),
    (6, "ENXIO"),
    (7, "E2BIG"),
    (8, "ENOEXEC"),
    (9, "EBADF"),
    (10, "ECHILD"),
    (errno::EAGAIN, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (18, "EXDEV"),
    (19, "ENODEV"),
    (20, "ENOTDIR"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (23, "ENFILE"),
    (24, "EMFILE"),
    (25, "ENOTTY"),
    (26, "ETXTBSY"),
    (27, "EFBIG"),
    (28, "ENOSPC"),
    (29, "ESPIPE"),
    (30, "EROFS"),
    (31, "EMLINK"),
    (32, "EPIPE"),
    (33, "EDOM"),
    (34, "ERANGE"),
    (35, "EDEADLK"),
    (36, "ENAMETOOLONG"),
    (37, "ENOLCK"),
    (errno::ENOSYS, "ENOSYS"),
    (39, "ENOTEMPTY"),
    (40, "ELOOP"),
    (61, "ENODATA"),
    (75, "EOVERFLOW"),
    (88, "ENOTSOCK"),
    (90, "EMSGSIZE"),
    (92, "ENOPROTOOPT"),
    (93, "EPROTONOSUPPORT"),
    (95, "EOPNOTSUPP"),
    (errno::EAFNOSUPPORT, "EAFNOSUPPORT"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (101, "ENETUNREACH"),
    (104, "ECONNRESET"),
    (105, "ENOBUFS"),
    (106, "EISCONN"),
    (107, "ENOTCONN"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (114, "EALREADY"),
    (115, "EINPROGRESS"),
    (errno::ERESTARTSYS, "ERESTARTSYS"),
];

/// The symbolic name of an errno value (its number when unnamed here).
pub fn errno_name(e: i32) -> String {
    ERRNO_NAMES
        .iter()
        .find(|(n, _)| *n == e)
        .map_or_else(|| e.to_string(), |(_, name)| (*name).to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown profile {0:?} (profiles: default, strict)")]
    UnknownProfile(String),
    #[error("--deny-syscall {0:?}: no such x86_64 system call")]
    UnknownSyscall(String),
}

/// A profile plus the calls the user refused on top of it, the
/// instance's task limit if it has one, and whether every call that carries
/// meaning is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub profile: Profile,
    /// Call number → the errno it is refused with, and where the user said
    /// so (`--deny-syscall`, a policy file), for the refusal's message.
    denied: BTreeMap<u32, (i32, String)>,
    task_limit: Option<u64>,
    recording: bool,
    privilege_bits_refused: bool,
    host_objects_guarded: bool,
    /// Guest debuggers: the ptrace attach family stops for the process
    /// monitor, which steps aside for the guest's tracer.
    guest_debuggers: bool,
    /// Rules decided in the supervisor on arguments in memory (performed
    /// there on a copy): only their calls are trapped for them.
    supervised: crate::supervised::SupervisorRules,
}

impl Policy {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            denied: BTreeMap::new(),
            task_limit: None,
            recording: false,
            privilege_bits_refused: false,
            host_objects_guarded: false,
            guest_debuggers: false,
            supervised: Default::default(),
        }
    }

    /// Lets guest debuggers trace the instance's tasks
    /// (docs/design/guest-debuggers.md): `ptrace`'s attach family
    /// (`TRACEME`, `ATTACH`, `SEIZE`, `DETACH`) stops for the process
    /// monitor, which lets the target go to the guest's tracer; every
    /// other request acts only on the caller's own tracees and runs in the
    /// kernel (trapped and continued under strict). A user's denial of
    /// `ptrace` still refuses it.
    pub fn allow_guest_debuggers(&mut self) {
        self.guest_debuggers = true;
    }

    pub fn allows_guest_debuggers(&self) -> bool {
        self.guest_debuggers
    }

    /// Adds the rules only the supervisor can hold; their calls (`connect`
    /// for `[net].connect`) are trapped from then on.
    pub fn supervise(&mut self, rules: crate::supervised::SupervisorRules) {
        self.supervised = rules;
    }

    pub fn supervised(&self) -> &crate::supervised::SupervisorRules {
        &self.supervised
    }

    /// Whether a connect is decided (and performed) by the supervisor.
    pub fn supervises_connect(&self) -> bool {
        self.supervised.connect.is_some()
    }

    /// Whether binds are decided (and performed) by the supervisor.
    pub fn supervises_bind(&self) -> bool {
        self.supervised.bind.is_some()
    }

    /// Whether opens are decided by the supervisor (`[fs]` patterns): then
    /// every `open`, `openat`, `openat2` and `creat` is trapped.
    pub fn supervises_opens(&self) -> bool {
        self.supervised.open.is_some()
    }

    /// Whether datagram destinations are decided by the supervisor (the
    /// connect list names `udp:` destinations): then every send that can
    /// name a destination is performed by it (`sendto` with an address,
    /// `sendmsg`, `sendmmsg`).
    pub fn supervises_sends(&self) -> bool {
        self.supervised
            .connect
            .as_ref()
            .is_some_and(crate::supervised::ConnectRules::restricts_udp)
    }

    /// Every call that carries meaning ([`Class::Mediated`]) is trapped, so
    /// that the supervisor sees and records it (`--trace`). Without this,
    /// the default profile traps only what some rule must decide there:
    /// trapping a call only to answer "continue" is cost without control.
    pub fn record_all(&mut self) {
        self.recording = true;
    }

    #[cfg(test)]
    pub(crate) fn records_all(&self) -> bool {
        self.recording
    }

    /// At most `n` tasks (processes and threads) in the instance: every
    /// call that creates one is trapped, and the supervisor refuses it with
    /// EAGAIN once the process monitor counts `n` — before the kernel's own
    /// limit (the cgroup's `pids.max`) is reached.
    pub fn limit_tasks(&mut self, n: u64) {
        self.task_limit = Some(n);
    }

    pub fn task_limit(&self) -> Option<u64> {
        self.task_limit
    }

    /// Refuses `name` with EPERM whatever the profile says (`--deny-syscall`).
    pub fn deny(&mut self, name: &str) -> Result<(), PolicyError> {
        self.refuse_with(name, errno::EPERM, "--deny-syscall")
    }

    /// Refuses `name` with `errno` whatever the profile says; `source`
    /// names the rule in the refusal's message.
    pub fn refuse_with(&mut self, name: &str, errno: i32, source: &str) -> Result<(), PolicyError> {
        let s = table::by_name(name).ok_or_else(|| PolicyError::UnknownSyscall(name.to_string()))?;
        self.denied.insert(s.number, (errno, source.to_string()));
        Ok(())
    }

    /// Whether the user's policy denies `number`, and where that is said.
    pub fn user_denial(&self, number: u32) -> Option<&str> {
        self.denied.get(&number).map(|(_, source)| source.as_str())
    }

    pub fn denied(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.denied.keys().filter_map(|&n| table::lookup(n)).map(|s| s.name)
    }

    /// The filter's action for a row of the table.
    pub fn action(&self, s: &Syscall) -> Action {
        if let Some(&(e, _)) = self.denied.get(&s.number) {
            return Action::Refuse(e);
        }
        if self.guest_debuggers && s.number == table::PTRACE {
            return Action::MonitorIf {
                requests: table::PTRACE_ATTACH_FAMILY,
                trap_others: self.profile == Profile::Strict || self.recording,
            };
        }
        if self.task_limit.is_some() && creates_task(s) {
            return Action::Trap;
        }
        if self.supervises_connect() && s.number == CONNECT {
            return Action::Trap;
        }
        if self.supervises_bind() && s.number == table::BIND {
            return Action::Trap;
        }
        if self.supervises_opens() && table::OPEN_CALLS.contains(&s.number) {
            return Action::Trap;
        }
        // Sends naming a destination: decided by the supervisor under udp:
        // rules, seen by it when recording (a trace, --learn).
        if self.supervises_sends() || self.recording {
            match s.number {
                table::SENDMSG | table::SENDMMSG => return Action::Trap,
                table::SENDTO if self.profile == Profile::Default => {
                    return Action::AllowUnless(table::sendto_supervised_rules())
                }
                _ => {}
            }
        }
        if self.supervises_connect() && s.number == table::SETSOCKOPT && self.profile == Profile::Default {
            return Action::AllowUnless(table::source_route_rules());
        }
        if self.supervises_connect() && self.profile == Profile::Default {
            if let Some(rules) = table::fastopen_rules(s.number) {
                return Action::AllowUnless(rules);
            }
        }
        if self.host_objects_guarded && table::changes_metadata(s.number) {
            return Action::Trap;
        }
        match (self.profile, s.class) {
            (Profile::Strict, _) => Action::Trap,
            // Linux's own argument checks come first: made by the
            // supervisor, for calls made rarely (setns, ptrace).
            (Profile::Default, Class::Refused(_)) if matches!(s.handler, Handler::RefuseAfter(_)) => Action::Trap,
            (Profile::Default, Class::Refused(e)) => Action::Errno(e),
            (Profile::Default, Class::Mediated) if self.recording => Action::Trap,
            (Profile::Default, Class::Hot | Class::Mediated) => self.cheapest(s.handler),
        }
    }

    /// Keeps setuid and setgid bits off every file the guest creates or
    /// changes: an instance with a writable volume (a host directory,
    /// whose files keep what the guest sets on them where every host user
    /// can run them). Calls that set such a mode are refused with EPERM
    /// (and named); `openat2`, whose mode is in memory, with ENOSYS.
    /// Every other mode costs nothing: the filter tests the mode register.
    pub fn refuse_privilege_bits(&mut self) {
        self.privilege_bits_refused = true;
    }

    pub fn refuses_privilege_bits(&self) -> bool {
        self.privilege_bits_refused
    }

    /// Host objects handed in (stdio) are used, not owned: where the
    /// guest's ids are the caller's (rootless), the kernel would let it
    /// change their mode, owner, times and extended attributes, so every
    /// call that changes a file's metadata ([`table::METADATA_CALLS`]) is
    /// trapped and performed by the supervisor on the file it decided on,
    /// or refused when that file was handed in. Programs that change no
    /// metadata pay nothing.
    pub fn guard_host_objects(&mut self) {
        self.host_objects_guarded = true;
    }

    pub fn guards_host_objects(&self) -> bool {
        self.host_objects_guarded
    }

    /// The register rules that decide `handler`'s calls under this policy:
    /// its built-in refusals, and a setuid or setgid mode where
    /// [`Self::refuse_privilege_bits`] was asked.
    pub fn register_rules(&self, handler: Handler) -> &'static [RegisterRule] {
        match handler {
            Handler::SetsMode(_) if self.privilege_bits_refused => handler.privilege_rules(),
            Handler::Ioctl if self.host_objects_guarded => table::GUARDED_IOCTL_RULES,
            Handler::Socket if self.supervises_connect() || self.supervises_bind() => table::SUPERVISED_SOCKET_RULES,
            _ => handler.register_rules(),
        }
    }

    /// The cheapest filter action that holds the handler's whole decision
    /// when nothing else needs the call in the supervisor.
    fn cheapest(&self, handler: Handler) -> Action {
        match handler {
            Handler::SetsMode(_) if self.privilege_bits_refused => Action::AllowUnless(handler.privilege_rules()),
            Handler::OpenHow if self.privilege_bits_refused => Action::Errno(errno::ENOSYS),
            Handler::SetsMode(_) | Handler::OpenHow => Action::Allow,
            // Its flags are in memory: refused outright (C libraries fall
            // back to clone, whose flags are in a register).
            Handler::Clone3 => Action::Errno(errno::ENOSYS),
            Handler::Refuse | Handler::RefuseAfter(_) => Action::Errno(errno::EPERM),
            // The kernel blocks in it, as it would natively.
            Handler::Continue | Handler::WaitChild => Action::Allow,
            Handler::Clone | Handler::Unshare | Handler::Ioctl | Handler::Socket | Handler::Personality => {
                Action::AllowUnless(self.register_rules(handler))
            }
        }
    }

    /// The filter's action for any number of the x86_64 ABI.
    pub fn action_for_number(&self, number: u32) -> Action {
        match table::lookup(number) {
            Some(s) => self.action(s),
            None if self.profile == Profile::Strict => Action::Trap,
            None => Action::Errno(errno::ENOSYS),
        }
    }

    /// The answer the supervisor gives for a trapped number it cannot
    /// decide otherwise: the table's refusal, a user's denial, or ENOSYS for
    /// numbers the table does not know.
    pub fn refusal(&self, number: u32) -> Option<i32> {
        self.refusal_of(number, table::lookup(number))
    }

    /// [`refusal`](Self::refusal) for a caller that has looked the row up
    /// already (the supervisor, once per trapped call).
    pub fn refusal_of(&self, number: u32, row: Option<&Syscall>) -> Option<i32> {
        if let Some(&(e, _)) = self.denied.get(&number) {
            return Some(e);
        }
        match row {
            Some(Syscall {
                class: Class::Refused(e),
                ..
            }) => Some(*e),
            Some(_) => None,
            None => Some(errno::ENOSYS),
        }
    }

    /// Numbers 0..=MAX_SYSCALL with their actions (for listings).
    pub fn actions(&self) -> impl Iterator<Item = (u32, Action)> + '_ {
        (0..=MAX_SYSCALL).map(|n| (n, self.action_for_number(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_allows_nothing_without_the_supervisor() {
        let p = Policy::new(Profile::Strict);
        assert!(p.actions().all(|(_, a)| !a.allows()));
        assert_eq!(p.action_for_number(110), Action::Trap);
        assert_eq!(p.action_for_number(400), Action::Trap);
        assert_eq!(p.refusal(321), Some(errno::EPERM));
        assert_eq!(p.refusal(400), Some(errno::ENOSYS));
    }

    #[test]
    fn default_traps_only_what_a_rule_needs_and_refuses_the_dangerous() {
        let p = Policy::new(Profile::Default);
        assert_eq!(p.action_for_number(0), Action::Allow); // read
        assert_eq!(p.action_for_number(257), Action::Allow); // openat: nothing to decide
        assert_eq!(p.action_for_number(61), Action::Allow); // wait4: the kernel blocks in it
        assert_eq!(p.action_for_number(435), Action::Errno(errno::ENOSYS)); // clone3
        assert!(matches!(p.action_for_number(41), Action::AllowUnless(_))); // socket
        assert!(matches!(p.action_for_number(135), Action::AllowUnless(_))); // personality
        assert_eq!(p.action_for_number(321), Action::Errno(errno::EPERM)); // bpf
        assert_eq!(p.action_for_number(425), Action::Errno(errno::ENOSYS)); // io_uring_setup
        assert_eq!(p.action_for_number(400), Action::Errno(errno::ENOSYS)); // unassigned
        let clone = p.action_for_number(56);
        assert!(matches!(clone, Action::AllowUnless(_)), "{clone:?}");
        assert_eq!(clone.for_args(&[0x1200011, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(clone.for_args(&[0x1000_0011, 0, 0, 0, 0, 0]), Action::Trap);
        assert_eq!(
            clone.to_string(),
            "allow unless CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME"
        );
    }

    #[test]
    fn guarded_host_objects_trap_only_the_metadata_calls() {
        let mut p = Policy::new(Profile::Default);
        p.guard_host_objects();
        for &n in table::METADATA_CALLS {
            assert_eq!(p.action_for_number(n), Action::Trap, "{n}");
        }
        assert_eq!(p.action_for_number(0), Action::Allow); // read
        assert_eq!(p.action_for_number(257), Action::Allow); // openat
        let plain = Policy::new(Profile::Default);
        assert_eq!(plain.action_for_number(91), Action::Allow); // fchmod
                                                                // TIOCSCTTY alone of the terminal ioctls reaches the supervisor;
                                                                // a file's flags only where host objects are guarded.
        let ioctl = plain.action_for_number(16);
        assert_eq!(ioctl.for_args(&[0, 0x540e, 0, 0, 0, 0]), Action::Trap);
        assert_eq!(ioctl.for_args(&[0, 0x5401, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(ioctl.for_args(&[0, 0x4008_6602, 0, 0, 0, 0]), Action::Allow);
        let ioctl = p.action_for_number(16);
        assert_eq!(ioctl.for_args(&[0, 0x4008_6602, 0, 0, 0, 0]), Action::Trap);
        assert_eq!(ioctl.for_args(&[0, 0x401c_5820, 0, 0, 0, 0]), Action::Trap);
        assert_eq!(ioctl.for_args(&[0, 0x5412, 0, 0, 0, 0]), Action::Trap);
        assert_eq!(ioctl.for_args(&[0, 0x5401, 0, 0, 0, 0]), Action::Allow);
    }

    #[test]
    fn recording_traps_every_call_that_carries_meaning() {
        let mut p = Policy::new(Profile::Default);
        p.record_all();
        assert!(p.records_all());
        for s in table::SYSCALLS {
            let want = match s.class {
                Class::Mediated => Action::Trap,
                Class::Refused(_) if matches!(s.handler, Handler::RefuseAfter(_)) => Action::Trap,
                Class::Refused(e) => Action::Errno(e),
                // Sends that name a destination: recorded too.
                Class::Hot if matches!(s.number, table::SENDMSG | table::SENDMMSG) => Action::Trap,
                Class::Hot if s.number == table::SENDTO => Action::AllowUnless(table::sendto_supervised_rules()),
                Class::Hot => Policy::new(Profile::Default).action(s),
            };
            assert_eq!(p.action(s), want, "{}", s.name);
        }
        // Nothing is trapped in the plain default but the refusals that
        // make Linux's argument checks first (and never continue).
        let plain = Policy::new(Profile::Default);
        for (number, action) in plain.actions() {
            if action == Action::Trap {
                let s = table::lookup(number).unwrap();
                assert!(matches!(s.handler, Handler::RefuseAfter(_)), "{} is trapped", s.name);
            }
        }
    }

    #[test]
    fn denied_calls_are_refused_in_every_profile() {
        for profile in Profile::ALL {
            let mut p = Policy::new(profile);
            p.deny("getppid").unwrap();
            assert_eq!(p.action_for_number(110), Action::Refuse(errno::EPERM));
            assert_eq!(p.user_denial(110), Some("--deny-syscall"));
            assert_eq!(p.user_denial(39), None);
            assert_eq!(p.refusal(110), Some(errno::EPERM));
        }
        let mut p = Policy::new(Profile::Default);
        assert_eq!(
            p.deny("no_such_call").unwrap_err().to_string(),
            "--deny-syscall \"no_such_call\": no such x86_64 system call"
        );
    }

    #[test]
    fn a_task_limit_traps_every_creation() {
        let mut p = Policy::new(Profile::Default);
        let fork = table::by_name("fork").unwrap();
        assert_eq!(p.action(fork), Action::Allow);
        assert!(p.action(table::by_name("clone").unwrap()).allows());
        p.limit_tasks(8);
        assert_eq!(p.task_limit(), Some(8));
        for name in ["fork", "vfork", "clone"] {
            assert_eq!(p.action(table::by_name(name).unwrap()), Action::Trap, "{name}");
        }
        assert_eq!(p.action(table::by_name("read").unwrap()), Action::Allow);
        p.deny("fork").unwrap();
        assert_eq!(p.action(fork), Action::Refuse(errno::EPERM));
    }

    #[test]
    fn profiles_parse_by_name() {
        assert_eq!(Profile::parse("strict"), Ok(Profile::Strict));
        assert!(Profile::parse("lax").is_err());
    }
}
