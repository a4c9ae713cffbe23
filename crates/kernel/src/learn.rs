//! `--learn`: what a run touched, and the smallest policy file that lets
//! the same run pass again.
//!
//! Each trapped call is read for what it names ([`observe`]: paths with
//! the base they are relative to, the kind of access, socket addresses);
//! the supervisor resolves the paths as the instance sees them, tells the
//! [`Learner`] whether each existed when the run first named it, lets the
//! call go on ("continue": learning decides nothing), and records it with
//! its result. At the end [`Learner::render`] writes the policy file.
//!
//! The rules are Landlock's, so a path is recorded for the kind of access
//! Landlock checks on it: reading a file or listing a directory, writing a
//! file, making or removing an entry in a directory (a right of the
//! directory), executing a file. Looking at a file (stat, access, readlink,
//! chdir, chmod, chown, times, xattrs) needs no rule — Landlock does not
//! govern it — so it adds none: a rule would only widen the policy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::decode::{read_address, Address, GuestMemory};
use crate::dispatch::syscall_of;
use crate::TrappedCall;

/// The longest path the kernel takes (`PATH_MAX`, its NUL included).
pub const PATH_MAX: usize = 4096;

const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;
const O_ACCMODE: u64 = 3;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_PATH: u64 = 0o10000000;
/// `O_TMPFILE` includes `O_DIRECTORY`.
const O_TMPFILE: u64 = 0o20000000;
const SOCK_STREAM: i32 = 1;

/// What a call does to a path, as Landlock sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Touch {
    /// Reads the file or lists the directory.
    Read,
    /// Writes or truncates the file; when the run created it, the rule goes
    /// on the directory it was created in.
    Write,
    /// Makes or removes an entry: a right of the directory the entry is in.
    Entry,
    /// Executes the file.
    Exec,
    /// Looks at it without Landlock's say (stat, access, readlink …).
    Look,
}

/// What a relative path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Cwd,
    /// A directory descriptor of the calling process.
    Fd(i32),
}

/// A path a call names, as copied from the guest (once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPath {
    pub base: Base,
    /// The bytes as the guest wrote them; empty with `AT_EMPTY_PATH` (the
    /// base itself is meant).
    pub path: Vec<u8>,
    pub touch: Touch,
}

/// Connects and binds (TCP's are what Landlock's port rules concern), and
/// sends that name a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Connect,
    Bind,
    /// `sendto` with an address, `sendmsg`, `sendmmsg`: a datagram's
    /// destination (a stream socket ignores the address).
    Send,
}

/// A connect or bind, on the calling process's descriptor `fd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetUse {
    pub direction: Direction,
    pub fd: i32,
    pub address: Address,
}

/// What one trapped call names, read from its registers and memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub paths: Vec<NamedPath>,
    pub net: Option<NetUse>,
    /// `socket(domain, type)`: the new descriptor's kind, to tell TCP from
    /// the rest at its connect or bind.
    pub socket: Option<(i32, i32)>,
    /// An `execve`/`execveat`: the program path is `paths[0]`.
    pub exec: bool,
}

/// Reads a path argument: up to `PATH_MAX` bytes, ending at a NUL. `None`
/// when unreadable or without a NUL in reach (the kernel fails the call
/// then: nothing to learn).
pub fn read_path(memory: &dyn GuestMemory, address: u64) -> Option<Vec<u8>> {
    if address == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = address;
    while out.len() < PATH_MAX {
        // Page by page: a path that ends just before an unmapped page is
        // still read.
        let to_page_end = 4096 - (at % 4096) as usize;
        let mut chunk = vec![0u8; to_page_end.min(PATH_MAX - out.len())];
        let n = memory.read(at, &mut chunk).min(chunk.len());
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(out);
        }
        if n < chunk.len() {
            return None;
        }
        out.extend_from_slice(&chunk[..n]);
        at = at.checked_add(n as u64)?;
    }
    None
}

/// What an open with these flags does.
fn open_touch(flags: u64) -> Touch {
    if flags & O_PATH != 0 {
        return Touch::Look;
    }
    if flags & O_TMPFILE == O_TMPFILE {
        // An unnamed file made in the directory named, itself the subject.
        return Touch::Write;
    }
    if flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0 {
        Touch::Write
    } else {
        Touch::Read
    }
}

fn base_of(register: u64) -> Base {
    match register as i32 {
        AT_FDCWD => Base::Cwd,
        fd => Base::Fd(fd),
    }
}

/// What `call` names. Memory is read once, here; the caller checks that
/// the call is still valid afterwards before trusting any of it.
pub fn observe(call: &TrappedCall, memory: &dyn GuestMemory) -> Observation {
    let mut seen = Observation::default();
    let Some(row) = syscall_of(call) else {
        return seen;
    };
    let a = call.args;
    let mut path = |base: Base, address: u64, touch: Touch, empty_ok: bool| {
        let bytes = match read_path(memory, address) {
            Some(p) if !p.is_empty() => p,
            // AT_EMPTY_PATH: the descriptor itself.
            Some(_) if empty_ok && matches!(base, Base::Fd(_)) => Vec::new(),
            _ => return,
        };
        seen.paths.push(NamedPath {
            base,
            path: bytes,
            touch,
        });
    };
    let at_flags = |r: u64| r & AT_EMPTY_PATH != 0;
    match row.name {
        "open" => path(Base::Cwd, a[0], open_touch(a[1]), false),
        "openat" => path(base_of(a[0]), a[1], open_touch(a[2]), false),
        "openat2" => {
            // struct open_how begins with the flags.
            let mut how = [0u8; 8];
            if a[3] >= 8 && memory.read(a[2], &mut how) == 8 {
                path(base_of(a[0]), a[1], open_touch(u64::from_ne_bytes(how)), false);
            }
        }
        "creat" => path(Base::Cwd, a[0], Touch::Write, false),
        "truncate" => path(Base::Cwd, a[0], Touch::Write, false),
        "execve" => {
            path(Base::Cwd, a[0], Touch::Exec, false);
            seen.exec = true;
        }
        "execveat" => {
            path(base_of(a[0]), a[1], Touch::Exec, at_flags(a[4]));
            seen.exec = true;
        }
        "mkdir" | "rmdir" | "unlink" | "mknod" => path(Base::Cwd, a[0], Touch::Entry, false),
        "mkdirat" | "unlinkat" | "mknodat" => path(base_of(a[0]), a[1], Touch::Entry, false),
        "rename" | "link" => {
            path(Base::Cwd, a[0], Touch::Entry, false);
            path(Base::Cwd, a[1], Touch::Entry, false);
        }
        "renameat" | "renameat2" => {
            path(base_of(a[0]), a[1], Touch::Entry, false);
            path(base_of(a[2]), a[3], Touch::Entry, false);
        }
        "linkat" => {
            path(base_of(a[0]), a[1], Touch::Entry, at_flags(a[4]));
            path(base_of(a[2]), a[3], Touch::Entry, false);
        }
        // The target is only text stored in the link.
        "symlink" => path(Base::Cwd, a[1], Touch::Entry, false),
        "symlinkat" => path(base_of(a[1]), a[2], Touch::Entry, false),
        "stat" | "lstat" | "access" | "readlink" | "chdir" | "chmod" | "chown" | "lchown" | "utime" | "utimes"
        | "statfs" | "getxattr" | "lgetxattr" | "listxattr" | "llistxattr" | "setxattr" | "lsetxattr"
        | "removexattr" | "lremovexattr" => path(Base::Cwd, a[0], Touch::Look, false),
        "newfstatat" | "statx" | "faccessat" | "faccessat2" | "readlinkat" | "fchmodat" | "fchmodat2" | "fchownat"
        | "futimesat" | "utimensat" => path(base_of(a[0]), a[1], Touch::Look, false),
        "connect" | "bind" => {
            let direction = if row.name == "connect" {
                Direction::Connect
            } else {
                Direction::Bind
            };
            if let Some(address) = read_address(memory, a[1], a[2]) {
                seen.net = Some(NetUse {
                    direction,
                    fd: a[0] as i32,
                    address,
                });
            }
        }
        // A datagram's destination, named by the send (sendmmsg: its first
        // message's).
        "sendto" | "sendmsg" | "sendmmsg" => {
            let name = if row.name == "sendto" {
                Some((a[4], a[5] & 0xffff_ffff))
            } else {
                // struct msghdr: msg_name, then msg_namelen.
                let mut header = [0u8; 12];
                (memory.read(a[1], &mut header) == header.len()).then(|| {
                    let mut pointer = [0u8; 8];
                    pointer.copy_from_slice(&header[..8]);
                    let mut length = [0u8; 4];
                    length.copy_from_slice(&header[8..]);
                    (u64::from_ne_bytes(pointer), u64::from(u32::from_ne_bytes(length)))
                })
            };
            if let Some(address) = name.and_then(|(at, len)| read_address(memory, at, len)) {
                seen.net = Some(NetUse {
                    direction: Direction::Send,
                    fd: a[0] as i32,
                    address,
                });
            }
        }
        "socket" => seen.socket = Some((a[0] as i32, (a[1] & 0xf) as i32)),
        _ => {}
    }
    seen
}

/// `base` joined with `path`, with `.` and `..` taken lexically; `None`
/// unless the result is absolute.
pub fn join(base: &[u8], path: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let whole: Vec<u8> = if path.first() == Some(&b'/') {
        path.to_vec()
    } else {
        if base.first() != Some(&b'/') {
            return None;
        }
        let mut w = base.to_vec();
        w.push(b'/');
        w.extend_from_slice(path);
        w
    };
    for part in whole.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(whole.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Some(out)
}

/// The directory `path` is in (`/` for `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Whether `path` is `dir` or beneath it.
pub fn beneath(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// The kinds of rule a policy file lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Read,
    Write,
    Exec,
}

/// Everything a run touched, as rules to be.
#[derive(Debug, Default)]
pub struct Learner {
    /// Every path the run named (resolved, lexical), at the first call that
    /// named it: where it led (the file's own path, symlinks followed) if it
    /// existed then; `None` if not — the run made it, and a rule must go on
    /// a directory that existed (Landlock rules attach to existing files).
    seen: HashMap<String, Option<String>>,
    /// Rule → the programs that needed it.
    uses: BTreeMap<(Kind, String), BTreeSet<String>>,
    ports: BTreeMap<(Direction, u16), BTreeSet<String>>,
    /// UDP ports sent to (or connected to): `udp:*:PORT` rules.
    udp_ports: BTreeMap<u16, BTreeSet<String>>,
    /// UDP ports bound: `udp:*:PORT` rules in `bind` (which make the
    /// supervisor decide every bind).
    udp_binds: BTreeMap<u16, BTreeSet<String>>,
    /// Connects and binds no port rule holds (UDP binds, unix, other families),
    /// shown as comments.
    unheld: BTreeMap<String, BTreeSet<String>>,
    /// Socket inode → type, from the `socket` calls seen.
    socket_types: HashMap<u64, i32>,
    /// Host thread id → the program it runs: the path it exec'd, or its
    /// creator's.
    programs: HashMap<i32, String>,
    /// Host thread id → the program it asked to execute and the program
    /// that asked, until the exec is done (the thread id may change: a
    /// non-leader thread takes its group's id).
    executing: HashMap<i32, (String, String)>,
    /// Calls recorded.
    pub calls: u64,
}

/// The host facts a [`Learner`] asks for about a path.
pub trait Probe {
    /// Where `path` leads in the instance (symlinks followed), if it exists.
    fn resolve(&mut self, path: &str) -> Option<String>;
}

impl<F: FnMut(&str) -> Option<String>> Probe for F {
    fn resolve(&mut self, path: &str) -> Option<String> {
        self(path)
    }
}

/// The path a rule for `touch` on `path` concerns: an entry's directory,
/// or the path itself.
pub fn subject(touch: Touch, path: &str) -> &str {
    match touch {
        Touch::Entry => parent(path),
        _ => path,
    }
}

impl Learner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes whether `path` and, while they do not exist, its ancestors
    /// exist now, unless an earlier call named them: call before the call
    /// that names it goes on.
    pub fn sight(&mut self, path: &str, probe: &mut dyn Probe) {
        let mut at = path;
        loop {
            let existed = match self.seen.get(at) {
                Some(known) => known.is_some(),
                None => {
                    let found = probe.resolve(at);
                    let existed = found.is_some();
                    self.seen.insert(at.to_string(), found);
                    existed
                }
            };
            if existed || at == "/" {
                return;
            }
            at = parent(at);
        }
    }

    /// Where a rule for `path` goes: the file it led to when the run first
    /// named it, or else the nearest directory above it that existed.
    fn target(&self, path: &str, made_by_the_run_ok: bool) -> Option<String> {
        match self.seen.get(path) {
            Some(Some(resolved)) => return Some(resolved.clone()),
            Some(None) if made_by_the_run_ok => {}
            // Never named before (the monitor's report of an exec): it was
            // there.
            None => return Some(path.to_string()),
            Some(None) => return None,
        }
        let mut at = path;
        while at != "/" {
            at = parent(at);
            if let Some(Some(resolved)) = self.seen.get(at) {
                return Some(resolved.clone());
            }
        }
        None
    }

    /// Records a call's access to `path` (resolved). `succeeded`: whether
    /// the call worked, `None` when its result was not seen — then only a
    /// path that existed counts (a failed lookup of a missing file must not
    /// grant its directory).
    pub fn touched(&mut self, path: &str, touch: Touch, program: &str, succeeded: Option<bool>) {
        let kind = match touch {
            Touch::Read => Kind::Read,
            Touch::Write | Touch::Entry => Kind::Write,
            Touch::Exec => Kind::Exec,
            Touch::Look => return,
        };
        if succeeded == Some(false) {
            return;
        }
        let Some(target) = self.target(subject(touch, path), succeeded == Some(true)) else {
            return;
        };
        self.uses.entry((kind, target)).or_default().insert(program.to_string());
    }

    /// A `socket` call returned a descriptor whose inode is `inode`.
    pub fn socket_made(&mut self, inode: u64, sock_type: i32) {
        self.socket_types.insert(inode, sock_type);
    }

    /// A connect or bind worked (or its result was not seen), on the
    /// socket with this inode (`None`: not known).
    pub fn net_used(&mut self, net: &NetUse, inode: Option<u64>, program: &str) {
        let tcp = match inode.and_then(|i| self.socket_types.get(&i)) {
            Some(&t) => t == SOCK_STREAM,
            // A send names a destination only on a datagram socket.
            None if net.direction == Direction::Send => false,
            // Made before it was seen: as if TCP, so that the run passes.
            None => true,
        };
        let verb = match net.direction {
            Direction::Connect => "connect",
            Direction::Bind => "bind",
            Direction::Send => "send to",
        };
        match &net.address {
            // A stream socket's send goes to its peer, whatever it names.
            Address::Inet { .. } if tcp && net.direction == Direction::Send => {}
            Address::Inet { port, .. } if tcp => {
                self.ports
                    .entry((net.direction, *port))
                    .or_default()
                    .insert(program.to_string());
            }
            Address::Inet { port, .. } if net.direction != Direction::Bind => {
                self.udp_ports.entry(*port).or_default().insert(program.to_string());
            }
            Address::Inet { port, .. } if net.direction == Direction::Bind => {
                self.udp_binds.entry(*port).or_default().insert(program.to_string());
            }
            Address::Inet { shown, .. } => {
                self.unheld
                    .entry(format!("{verb} udp {shown}"))
                    .or_default()
                    .insert(program.to_string());
            }
            Address::Unix(path) => {
                self.unheld
                    .entry(format!("{verb} unix {path}"))
                    .or_default()
                    .insert(program.to_string());
            }
            Address::Other(_) => {}
        }
    }

    /// Thread `child` was made by `creator`: it runs the same program.
    pub fn spawned(&mut self, creator: i32, child: i32) {
        if let Some(p) = self.programs.get(&creator).cloned() {
            self.programs.insert(child, p);
        }
    }

    /// Thread `tid`, running `caller`, asks to execute `path`.
    pub fn exec_asked(&mut self, tid: i32, path: &str, caller: &str) {
        self.executing.insert(tid, (path.to_string(), caller.to_string()));
    }

    /// Thread `former` exec'd and is now `tid`, running `image` (the file
    /// the kernel executed last: a script's interpreter, or the program).
    pub fn exec_done(&mut self, former: i32, tid: i32, image: Option<&str>) {
        let asked = self.executing.remove(&former).or_else(|| self.executing.remove(&tid));
        let (program, caller) = match (asked, image) {
            (Some(asked), _) => asked,
            (None, Some(image)) => (image.to_string(), image.to_string()),
            (None, None) => return,
        };
        if let Some(image) = image.filter(|i| i.starts_with('/')) {
            self.touched(image, Touch::Exec, &caller, Some(true));
        }
        self.programs.remove(&former);
        self.programs.insert(tid, program);
    }

    /// Thread `tid` is gone (its id may be reused).
    pub fn ended(&mut self, tid: i32) {
        self.programs.remove(&tid);
        self.executing.remove(&tid);
    }

    /// The program thread `tid` runs, if known.
    pub fn program_of(&self, tid: i32) -> Option<&str> {
        self.programs.get(&tid).map(String::as_str)
    }

    /// The policy file: `header` lines first (as comments), then the rules.
    pub fn render(&self, header: &[String], options: &RenderOptions) -> String {
        let mut out = String::new();
        for line in header {
            match line.as_str() {
                "" => out.push_str("#\n"),
                line => {
                    let _ = writeln!(out, "# {}", comment_text(line));
                }
            }
        }
        out.push_str("base = \"default\"\n\n[fs]\n");
        let list = |kind: Kind| -> Vec<(String, BTreeSet<String>)> {
            let mut rules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for ((k, path), programs) in &self.uses {
                if *k != kind || options.granted(kind, path) {
                    continue;
                }
                let path = nameable(path);
                rules.entry(path).or_default().extend(programs.iter().cloned());
            }
            collapse(rules, kind, options)
        };
        write_list(&mut out, "read", &list(Kind::Read));
        write_list(&mut out, "write", &list(Kind::Write));
        out.push_str("\n[exec]\n");
        write_list(&mut out, "allow", &list(Kind::Exec));
        out.push_str("\n[net]\n");
        let ports = |direction: Direction| -> Vec<(String, BTreeSet<String>)> {
            self.ports
                .iter()
                .filter(|((d, _), _)| *d == direction)
                .map(|((_, port), programs)| (format!("tcp:*:{port}"), programs.clone()))
                .collect()
        };
        let (mut connect, mut bind) = (ports(Direction::Connect), ports(Direction::Bind));
        let udp_binds: Vec<(String, BTreeSet<String>)> = self
            .udp_binds
            .iter()
            .map(|(port, programs)| (format!("udp:*:{port}"), programs.clone()))
            .collect();
        let udp: Vec<(String, BTreeSet<String>)> = self
            .udp_ports
            .iter()
            .map(|(port, programs)| (format!("udp:*:{port}"), programs.clone()))
            .collect();
        let mut unheld = self.unheld.clone();
        if options.port_rules {
            if !udp.is_empty() {
                out.push_str(
                    "# udp: rules make the supervisor decide and perform every send that names a\n\
                     # destination (sendto with an address, sendmsg, sendmmsg), and every connect:\n\
                     # a round trip each. Without them UDP is not restricted.\n",
                );
            }
            connect.extend(udp);
            write_list(&mut out, "connect", &connect);
            // udp: rules in bind make the supervisor make every bind, and
            // it makes no unix socket file: not written where the run
            // bound one.
            let bound_unix = self.unheld.keys().any(|k| k.starts_with("bind unix "));
            if !udp_binds.is_empty() && !bound_unix {
                out.push_str(
                    "# udp: rules in bind make the supervisor decide and perform every bind (a round
                     # trip each); no unix socket file is bound then.
",
                );
                bind.extend(udp_binds);
            } else {
                for (rule, programs) in udp_binds {
                    unheld.entry(format!("bind {rule}")).or_default().extend(programs);
                }
            }
            write_list(&mut out, "bind", &bind);
        } else {
            out.push_str(
                "# This kernel has no Landlock TCP rules (ABI 4, Linux 6.7): a file with\n\
                 # them would be refused here. What the run did:\n",
            );
            let mut text = String::new();
            write_list(&mut text, "connect", &connect);
            write_list(&mut text, "bind", &bind);
            for line in text.lines() {
                let _ = writeln!(out, "# {line}");
            }
            // A connect list of udp: rules alone would refuse every TCP
            // connect: shown only, beside the TCP ports.
            for (rule, programs) in udp {
                unheld.entry(format!("send to {rule}")).or_default().extend(programs);
            }
            for (rule, programs) in udp_binds {
                unheld.entry(format!("bind {rule}")).or_default().extend(programs);
            }
        }
        if !unheld.is_empty() {
            out.push_str(
                "# Also used, not written as rules: UDP ports bound where the run also bound a\n\
                 # unix socket file, and unix socket paths, which can be (connect = [\"unix:PATH\"])\n\
                 # at the price of the supervisor deciding every connect:\n",
            );
            for (what, programs) in &unheld {
                let _ = writeln!(
                    out,
                    "#   {} ({})",
                    comment_text(what),
                    comment_text(&programs_text(programs))
                );
            }
        }
        out
    }
}

/// What every policy grants without a rule, and how paths collapse.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Read and written whatever the file says (devices).
    pub always_read_write: Vec<String>,
    /// Read whatever the file says (`/proc`).
    pub always_read: Vec<String>,
    /// Executed whatever the file says (the dynamic loader).
    pub always_exec: Vec<String>,
    /// Trees whose files a program reads as a whole (the system's), granted
    /// whole once anything in them is read.
    pub system_trees: Vec<String>,
    /// A directory in which this many distinct entries were used is
    /// granted whole.
    pub collapse_at: usize,
    /// Whether this kernel holds TCP port rules.
    pub port_rules: bool,
}

/// Trees of the system's own files: a program reads in them what its
/// libraries, locale and configuration lead it to, which varies from run
/// to run; listing each file would make a fragile policy.
pub const SYSTEM_TREES: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
];

/// Directories with this many distinct entries used become one rule.
pub const COLLAPSE_AT: usize = 5;

impl RenderOptions {
    fn granted(&self, kind: Kind, path: &str) -> bool {
        // /proc is the calling process's own state: a rule on a path in it
        // would attach to the files of the process raising the wall, not to
        // the guest's.
        if beneath(path, "/proc") {
            return true;
        }
        let under = |list: &[String]| list.iter().any(|g| beneath(path, g));
        match kind {
            Kind::Read => under(&self.always_read_write) || under(&self.always_read),
            Kind::Write => under(&self.always_read_write),
            Kind::Exec => self.always_exec.iter().any(|g| g == path),
        }
    }
}

/// A path a policy file can name: the nearest ancestor free of glob
/// characters (which the file would take for globs).
fn nameable(path: &str) -> String {
    let mut at = path;
    while at.contains(['*', '?', '[']) {
        at = parent(at);
    }
    at.to_string()
}

/// Merges rules: beneath a system tree (reads) the tree; in a directory
/// (not `/`) where `collapse_at` distinct entries were used, the directory;
/// and a path beneath another rule's is dropped.
fn collapse(
    rules: BTreeMap<String, BTreeSet<String>>,
    kind: Kind,
    options: &RenderOptions,
) -> Vec<(String, BTreeSet<String>)> {
    let mut children: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for path in rules.keys() {
        let mut at = path.as_str();
        while at != "/" {
            let up = parent(at);
            let name = &at[up.len()..];
            children.entry(up).or_default().insert(name);
            at = up;
        }
    }
    let mut merged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, programs) in &rules {
        let system = match kind {
            Kind::Read => options.system_trees.iter().find(|t| beneath(path, t)).cloned(),
            _ => None,
        };
        let target = system.unwrap_or_else(|| {
            // The shallowest ancestor used widely enough.
            let mut ancestors = Vec::new();
            let mut at = path.as_str();
            while at != "/" {
                at = parent(at);
                ancestors.push(at);
            }
            ancestors
                .into_iter()
                .rev()
                .find(|d| *d != "/" && children.get(d).is_some_and(|c| c.len() >= options.collapse_at))
                .map_or_else(|| path.clone(), str::to_string)
        });
        merged.entry(target).or_default().extend(programs.iter().cloned());
    }
    // A rule beneath another is held by it.
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (path, programs) in merged {
        match out.iter_mut().find(|(p, _)| beneath(&path, p)) {
            Some((_, held)) => held.extend(programs),
            None => out.push((path, programs)),
        }
    }
    out
}

fn programs_text(programs: &BTreeSet<String>) -> String {
    const SHOWN: usize = 3;
    let mut names: Vec<&str> = programs.iter().map(String::as_str).take(SHOWN).collect();
    let more = programs.len().saturating_sub(SHOWN);
    let more_text = format!("and {more} more");
    if more > 0 {
        names.push(&more_text);
    }
    names.join(", ")
}

fn write_list(out: &mut String, key: &str, items: &[(String, BTreeSet<String>)]) {
    if items.is_empty() {
        let _ = writeln!(out, "{key} = []");
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for (value, programs) in items {
        let _ = writeln!(
            out,
            "    {},  # {}",
            toml_string(value),
            comment_text(&programs_text(programs))
        );
    }
    out.push_str("]\n");
}

/// Characters shown escaped: controls (TOML forbids them in comments and
/// raw in strings) and bidirectional overrides (which would reorder what a
/// reader sees).
fn escaped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A TOML basic string holding `s` exactly.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if escaped(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text safe in a TOML comment: one line, no control characters.
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A command line as a shell would take it back: plain words bare, others
/// quoted; control characters as `$'…'` escapes, so it stays one line.
pub fn shell_words(words: &[String]) -> String {
    words.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" ")
}

fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        return w.to_string();
    }
    if !w.chars().any(escaped) {
        return format!("'{}'", w.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in w.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if escaped(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvisor_trap::bpf::AUDIT_ARCH_X86_64;
    use xvisor_trap::policy_file::PolicyFile;

    /// Guest memory: `bytes` mapped at `base`, nothing elsewhere.
    fn memory(base: u64, bytes: Vec<u8>) -> impl Fn(u64, &mut [u8]) -> usize {
        move |address: u64, buf: &mut [u8]| crate::fuzz_input::guest_memory(&bytes, base)(address, buf)
    }

    fn call(nr: i32, args: [u64; 6]) -> TrappedCall {
        TrappedCall {
            id: 1,
            pid: 1,
            nr,
            arch: AUDIT_ARCH_X86_64,
            args,
        }
    }

    const AT: u64 = AT_FDCWD as u64;

    fn options() -> RenderOptions {
        RenderOptions {
            always_read_write: vec!["/dev/null".into()],
            always_read: vec!["/proc".into()],
            always_exec: vec!["/lib64/ld-linux-x86-64.so.2".into()],
            system_trees: SYSTEM_TREES.iter().map(|s| s.to_string()).collect(),
            collapse_at: COLLAPSE_AT,
            port_rules: true,
        }
    }

    /// A probe of a fixed file tree: `existing` paths exist, and lead to
    /// themselves.
    fn tree(existing: &'static [&'static str]) -> impl FnMut(&str) -> Option<String> {
        move |p: &str| existing.contains(&p).then(|| p.to_string())
    }

    fn file(learner: &Learner) -> PolicyFile {
        let text = learner.render(&["made in a test".into()], &options());
        PolicyFile::parse("learned.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn values(list: &Option<Vec<xvisor_trap::policy_file::Located<String>>>) -> Vec<String> {
        list.iter().flatten().map(|l| l.value.clone()).collect()
    }

    #[test]
    fn opens_are_read_or_write_by_their_flags() {
        let mem = memory(0x1000, b"/etc/passwd\0".to_vec());
        let touch = |flags: u64| observe(&call(257, [AT, 0x1000, flags, 0, 0, 0]), &mem).paths[0].touch;
        assert_eq!(touch(0), Touch::Read);
        assert_eq!(touch(0o200000), Touch::Read);
        assert_eq!(touch(1), Touch::Write);
        assert_eq!(touch(2), Touch::Write);
        assert_eq!(touch(O_CREAT), Touch::Write);
        assert_eq!(touch(O_TRUNC), Touch::Write);
        assert_eq!(touch(O_PATH), Touch::Look);
        assert_eq!(touch(O_TMPFILE | 2), Touch::Write);
        let seen = observe(&call(257, [7, 0x1000, 0, 0, 0, 0]), &mem);
        assert_eq!(seen.paths[0].base, Base::Fd(7));
        assert_eq!(seen.paths[0].path, b"/etc/passwd");
    }

    #[test]
    fn renames_and_links_name_both_entries() {
        let mem = memory(0x1000, b"a\0\0\0b/c\0".to_vec());
        let seen = observe(&call(316, [AT, 0x1000, 5, 0x1004, 0, 0]), &mem);
        let names: Vec<_> = seen.paths.iter().map(|p| (p.base, p.path.clone(), p.touch)).collect();
        assert_eq!(
            names,
            vec![
                (Base::Cwd, b"a".to_vec(), Touch::Entry),
                (Base::Fd(5), b"b/c".to_vec(), Touch::Entry)
            ]
        );
        // symlink(target, linkpath): the target is only text.
        let seen = observe(&call(88, [0x1000, 0x1004, 0, 0, 0, 0]), &mem);
        assert_eq!(seen.paths.len(), 1);
        assert_eq!(seen.paths[0].path, b"b/c");
    }

    #[test]
    fn empty_paths_only_with_at_empty_path() {
        let mem = memory(0x1000, b"\0".to_vec());
        assert!(observe(&call(257, [AT, 0x1000, 0, 0, 0, 0]), &mem).paths.is_empty());
        let seen = observe(&call(322, [4, 0x1000, 0, 0, AT_EMPTY_PATH, 0]), &mem);
        assert_eq!(seen.paths[0].base, Base::Fd(4));
        assert!(seen.paths[0].path.is_empty() && seen.exec);
    }

    #[test]
    fn socket_addresses() {
        let mut v4 = vec![2, 0, 0x1f, 0x90, 127, 0, 0, 1];
        v4.resize(16, 0);
        let mem = memory(0x1000, v4);
        let seen = observe(&call(42, [3, 0x1000, 16, 0, 0, 0]), &mem);
        assert_eq!(
            seen.net,
            Some(NetUse {
                direction: Direction::Connect,
                fd: 3,
                address: Address::Inet {
                    port: 8080,
                    shown: "127.0.0.1:8080".into()
                }
            })
        );
        let mut v6 = vec![10, 0, 0x01, 0xbb, 0, 0, 0, 0];
        v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0; 4]);
        let mem = memory(0x1000, v6);
        let seen = observe(&call(49, [3, 0x1000, 28, 0, 0, 0]), &mem);
        assert!(matches!(
            seen.net,
            Some(NetUse {
                direction: Direction::Bind,
                address: Address::Inet { port: 443, .. },
                ..
            })
        ));
        // Too short for its family: nothing.
        let mem = memory(0x1000, vec![2, 0, 0, 80]);
        assert_eq!(observe(&call(42, [3, 0x1000, 4, 0, 0, 0]), &mem).net, None);
        let mem = memory(0x1000, b"\x01\x00\x00abstract".to_vec());
        assert_eq!(read_address(&mem, 0x1000, 12), Some(Address::Unix("@abstract".into())));
    }

    #[test]
    fn paths_are_bounded_and_may_cross_pages() {
        let mut bytes = vec![b'a'; 8192];
        bytes[5000] = 0;
        let mem = memory(0x1000, bytes);
        assert_eq!(read_path(&mem, 0x1000 + 4000).map(|p| p.len()), Some(1000));
        assert_eq!(read_path(&mem, 0x1000), None, "no NUL within PATH_MAX");
        assert_eq!(read_path(&mem, 0x9000), None, "unmapped");
        assert_eq!(read_path(&mem, 0), None);
    }

    #[test]
    fn joins_are_lexical_and_absolute() {
        let j = |b: &str, p: &str| join(b.as_bytes(), p.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(j("/tmp/d", "x").as_deref(), Some("/tmp/d/x"));
        assert_eq!(j("/tmp/d", "../x/./y//").as_deref(), Some("/tmp/x/y"));
        assert_eq!(j("/tmp", "/etc/../../usr").as_deref(), Some("/usr"));
        assert_eq!(j("/", "..").as_deref(), Some("/"));
        assert_eq!(j("/tmp", ".").as_deref(), Some("/tmp"));
        assert_eq!(j("pipe:[3]", "x"), None);
    }

    #[test]
    fn arbitrary_registers_and_memory_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let garbage: Vec<u8> = (0..8192).map(|_| next() as u8).collect();
        let mem = memory(0x10000, garbage);
        let mut learner = Learner::new();
        for _ in 0..20_000 {
            let nr = (next() % 480) as i32;
            let args = [0u64; 6].map(|_| {
                if next() % 2 == 0 {
                    0x10000 + next() % 9000
                } else {
                    next()
                }
            });
            let seen = observe(&call(nr, args), &mem);
            for p in &seen.paths {
                if let Some(path) = join(b"/cwd", &p.path).and_then(|v| String::from_utf8(v).ok()) {
                    learner.sight(&path, &mut |_: &str| None);
                    learner.touched(&path, p.touch, "x", Some(true));
                }
            }
            if let Some(net) = &seen.net {
                learner.net_used(net, None, "x");
            }
        }
        let _ = learner.render(&[], &options());
    }

    #[test]
    fn a_file_the_run_made_is_granted_through_its_directory() {
        let mut l = Learner::new();
        let mut probe = tree(&["/", "/tmp", "/etc", "/etc/hostname"]);
        l.sight("/etc/hostname", &mut probe);
        l.touched("/etc/hostname", Touch::Read, "/usr/bin/cat", Some(true));
        // Made by the run, then read and written: /tmp, which was there.
        for (touch, name) in [
            (Touch::Entry, "/tmp/d"),
            (Touch::Write, "/tmp/d/f"),
            (Touch::Read, "/tmp/d/f"),
        ] {
            l.sight(name, &mut probe);
            l.sight(subject(touch, name), &mut probe);
            l.touched(name, touch, "/usr/bin/sh", Some(true));
        }
        // A failed open, and a missing file whose result was not seen:
        // nothing.
        l.sight("/etc/nothing", &mut probe);
        l.touched("/etc/nothing", Touch::Read, "/usr/bin/sh", Some(false));
        l.touched("/etc/nothing", Touch::Read, "/usr/bin/sh", None);
        // Looking needs no rule.
        l.sight("/etc", &mut probe);
        l.touched("/etc", Touch::Look, "/usr/bin/sh", Some(true));
        let f = file(&l);
        assert_eq!(values(&f.paths.read), ["/etc/hostname", "/tmp"]);
        assert_eq!(values(&f.paths.write), ["/tmp"]);
        assert_eq!(values(&f.paths.exec), Vec::<String>::new());
        assert_eq!(f.ports.connect.as_ref().map(Vec::len), Some(0));
    }

    #[test]
    fn first_sight_wins() {
        let mut l = Learner::new();
        l.sight("/tmp/x", &mut tree(&["/", "/tmp"]));
        // Made meanwhile: still the run's own.
        l.sight("/tmp/x", &mut tree(&["/", "/tmp", "/tmp/x"]));
        l.touched("/tmp/x", Touch::Write, "p", Some(true));
        assert_eq!(values(&file(&l).paths.write), ["/tmp"]);
    }

    #[test]
    fn symlinks_lead_to_their_files() {
        let mut l = Learner::new();
        let mut probe = |p: &str| match p {
            "/lib/x86_64-linux-gnu/libc.so.6" => Some("/usr/lib/x86_64-linux-gnu/libc.so.6".to_string()),
            "/home/u/link" => Some("/home/u/data".to_string()),
            _ => None,
        };
        l.sight("/lib/x86_64-linux-gnu/libc.so.6", &mut probe);
        l.touched("/lib/x86_64-linux-gnu/libc.so.6", Touch::Read, "p", Some(true));
        l.sight("/home/u/link", &mut probe);
        l.touched("/home/u/link", Touch::Write, "p", Some(true));
        let f = file(&l);
        assert_eq!(values(&f.paths.read), ["/usr"]);
        assert_eq!(values(&f.paths.write), ["/home/u/data"]);
    }

    #[test]
    fn directories_used_widely_become_one_rule() {
        let mut l = Learner::new();
        let existing: Vec<String> = (0..COLLAPSE_AT)
            .map(|i| format!("/srv/app/m{i}.py"))
            .chain(["/srv/data/one".to_string(), "/srv/data/two".to_string()])
            .collect();
        for p in &existing {
            let p = p.clone();
            let q = p.clone();
            l.sight(&p, &mut move |x: &str| (x == q).then(|| x.to_string()));
            l.touched(&p, Touch::Read, "/usr/bin/python3", Some(true));
        }
        let f = file(&l);
        assert_eq!(values(&f.paths.read), ["/srv/app", "/srv/data/one", "/srv/data/two"]);
    }

    #[test]
    fn what_every_policy_grants_is_left_out() {
        let mut l = Learner::new();
        for (p, t) in [
            ("/dev/null", Touch::Write),
            ("/proc/self/status", Touch::Read),
            ("/proc/self/oom_score_adj", Touch::Write),
            ("/lib64/ld-linux-x86-64.so.2", Touch::Exec),
        ] {
            l.touched(p, t, "p", Some(true));
        }
        let text = l.render(&[], &options());
        let f = PolicyFile::parse("t", &text).unwrap();
        assert!(
            values(&f.paths.read).is_empty() && values(&f.paths.write).is_empty(),
            "{text}"
        );
        assert!(values(&f.paths.exec).is_empty(), "{text}");
    }

    #[test]
    fn odd_paths_and_program_names_round_trip() {
        let odd = [
            "/tmp/a \"quoted\" name",
            "/tmp/back\\slash",
            "/tmp/new\nline",
            "/tmp/tab\tand\u{7f}del\u{202e}rtl",
        ];
        let mut l = Learner::new();
        for p in odd {
            l.touched(p, Touch::Read, "/usr/bin/evil\n[exec]\nallow = [\"/\"]", Some(true));
        }
        // A glob character would be taken for a glob: its directory.
        l.touched("/srv/w[1]/f", Touch::Write, "p", Some(true));
        let f = file(&l);
        let mut want: Vec<String> = odd.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(values(&f.paths.read), want);
        assert_eq!(values(&f.paths.write), ["/srv"]);
        // The program's name stayed in its comment.
        assert!(values(&f.paths.exec).is_empty());
        let text = l.render(&[], &options());
        assert!(text.contains("# /usr/bin/evil\\n[exec]\\nallow = [\"/\"]"), "{text}");
        assert!(!text.contains('\u{202e}'), "{text}");
    }

    #[test]
    fn udp_ports_bound_become_bind_rules_unless_a_unix_file_was_bound() {
        let inet = |port| Address::Inet {
            port,
            shown: format!("0.0.0.0:{port}"),
        };
        let bind = |address| NetUse {
            direction: Direction::Bind,
            fd: 3,
            address,
        };
        let mut l = Learner::new();
        l.socket_made(12, 2);
        l.net_used(&bind(inet(5353)), Some(12), "/usr/sbin/avahi");
        let text = l.render(&[], &options());
        let f = PolicyFile::parse("t", &text).unwrap();
        let rules = f.supervisor_rules().bind.expect("the supervisor's bind list");
        assert!(rules.restricts_udp(), "{text}");
        assert!(text.contains("    \"udp:*:5353\",  # /usr/sbin/avahi"), "{text}");
        l.net_used(&bind(Address::Unix("/run/a.sock".into())), None, "/usr/sbin/avahi");
        let text = l.render(&[], &options());
        let f = PolicyFile::parse("t", &text).unwrap();
        assert!(f.supervisor_rules().bind.is_none(), "{text}");
        assert!(text.contains("#   bind udp:*:5353 (/usr/sbin/avahi)"), "{text}");
    }

    #[test]
    fn ports_by_direction_and_what_no_rule_holds() {
        let mut l = Learner::new();
        let inet = |port| Address::Inet {
            port,
            shown: format!("127.0.0.1:{port}"),
        };
        l.socket_made(11, SOCK_STREAM);
        l.socket_made(12, 2);
        let use_ = |direction, address| NetUse {
            direction,
            fd: 3,
            address,
        };
        l.net_used(&use_(Direction::Connect, inet(443)), Some(11), "/usr/bin/curl");
        l.net_used(&use_(Direction::Bind, inet(8080)), None, "/usr/bin/python3");
        l.net_used(&use_(Direction::Connect, inet(53)), Some(12), "/usr/bin/dig");
        l.net_used(
            &use_(Direction::Connect, Address::Unix("/run/x.sock".into())),
            None,
            "p",
        );
        let text = l.render(&[], &options());
        let f = PolicyFile::parse("t", &text).unwrap();
        let ports = |list: &Option<Vec<xvisor_trap::policy_file::Located<u16>>>| {
            list.iter().flatten().map(|l| l.value).collect::<Vec<_>>()
        };
        assert!(
            f.ports.connect.is_none(),
            "a udp: rule makes the list the supervisor's: {text}"
        );
        assert_eq!(ports(&f.ports.bind), [8080]);
        // UDP destinations become udp: rules, which the supervisor holds.
        assert!(text.contains("    \"udp:*:53\",  # /usr/bin/dig"), "{text}");
        assert!(
            text.contains("# udp: rules make the supervisor decide and perform every send"),
            "{text}"
        );
        let udp = f.supervisor_rules().connect.expect("the supervisor's list");
        assert!(udp.restricts_udp(), "{text}");
        assert_eq!(udp.allowed.len(), 2, "tcp:*:443 and udp:*:53: {text}");
        assert!(text.contains("#   connect unix /run/x.sock (p)"), "{text}");
        // Without port rules in the kernel, the lists are only shown.
        let text = l.render(
            &[],
            &RenderOptions {
                port_rules: false,
                ..options()
            },
        );
        let f = PolicyFile::parse("t", &text).unwrap();
        assert!(f.ports.connect.is_none() && f.ports.bind.is_none(), "{text}");
        assert!(text.contains("# connect = [\n#     \"tcp:*:443\""), "{text}");
        assert!(f.supervisor_rules().connect.is_none(), "{text}");
        assert!(text.contains("#   send to udp:*:53 (/usr/bin/dig)"), "{text}");
    }

    #[test]
    fn programs_follow_spawns_and_execs() {
        let mut l = Learner::new();
        l.exec_asked(10, "/bin/sh", "/bin/sh");
        l.exec_done(10, 10, Some("/usr/bin/dash"));
        assert_eq!(l.program_of(10), Some("/bin/sh"));
        l.spawned(10, 11);
        assert_eq!(l.program_of(11), Some("/bin/sh"));
        // A script: the kernel ran its interpreter.
        l.exec_asked(11, "/tmp/run.sh", "/bin/sh");
        l.exec_done(11, 11, Some("/usr/bin/python3.11"));
        assert_eq!(l.program_of(11), Some("/tmp/run.sh"));
        l.ended(11);
        assert_eq!(l.program_of(11), None);
        let f = file(&l);
        assert_eq!(values(&f.paths.exec), ["/usr/bin/dash", "/usr/bin/python3.11"]);
        let text = l.render(&[], &options());
        assert!(text.contains("\"/usr/bin/python3.11\",  # /bin/sh"), "{text}");
    }

    #[test]
    fn header_words_and_dates() {
        let words: Vec<String> = ["xvisor", "run", "--", "sh", "-c", "echo 'hi'; ls", "a\nb"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            shell_words(&words),
            "xvisor run -- sh -c 'echo '\\''hi'\\''; ls' $'a\\nb'"
        );
        let mut l = Learner::new();
        l.touched("/etc/x", Touch::Read, "p", Some(true));
        let text = l.render(&["line one".into(), "".into(), shell_words(&words)], &options());
        assert!(text.starts_with("# line one\n#\n# xvisor run -- sh -c"), "{text}");
        PolicyFile::parse("t", &text).unwrap();
    }
}
