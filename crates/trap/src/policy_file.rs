//! A policy file: what an instance may touch, written in TOML, read key by
//! key, and each rule given to the cheapest layer that holds it exactly.
//!
//! ```toml
//! base = "default"              # or "strict": the profile it starts from
//!
//! [fs]                          # each list, when present, restricts its kind
//! read  = ["/usr", "/etc", "/app"]
//! write = ["/tmp", "/app/data"]
//! exec  = ["/usr/bin", "/usr/lib"]
//! deny  = ["/app/**/*.key"]      # hidden, whatever the lists say
//!
//! [exec]
//! allow = ["/usr/bin/python3"]  # single programs (or trees) that may run
//!
//! [net]
//! connect = ["tcp:*:443", "tcp:10.0.0.0/8:5432", "udp:*:53", "unix:/run/app.sock"]
//! bind    = ["tcp:*:8080"]
//!
//! [syscalls]
//! deny  = ["ptrace", "mount"]   # EPERM
//! errno = { personality = "ENOSYS" }
//!
//! [process]
//! mdwe = true                   # memory never both writable and executable
//!
//! [limits]
//! memory = "256M"
//! pids = 64
//! ```
//!
//! Layers: call numbers go to the seccomp filter; path hierarchies and TCP
//! ports to Landlock; denied paths to the mount namespace (hidden before
//! any program runs); `[process]` to the guest's own process attributes;
//! `[limits]` to cgroups and rlimits, as the flags do; to the supervisor
//! (which traps only their calls) `[net].connect` lists naming address
//! ranges, UDP destinations or unix socket paths, and programs pinned by
//! sha256. Rules no layer holds yet (patterns in allow lists) are refused
//! by name: a rule is enforced as written or the file is not accepted.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::policy::{errno_name, Policy, Profile};
use crate::supervised::{
    self, AddressRange, ConnectRules, Destination, ExecPin, OpenRules, SupervisorRules, Transport,
};
use crate::table;

/// Where something is in the file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Position,
}

/// A file that cannot be accepted: one line, naming the place and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{at}: {key}{message}")]
pub struct PolicyFileError {
    pub file: String,
    pub at: Position,
    /// The key concerned, with a separator, or empty.
    key: String,
    message: String,
}

/// The layer that enforces a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The seccomp-bpf filter, on call numbers and registers.
    Filter,
    /// Landlock, on path hierarchies (any ABI) or TCP ports (ABI ≥ 4).
    Landlock { abi: u32 },
    /// The instance's mount namespace, built before any program runs.
    Mount,
    /// An attribute of the guest's process, set before its exec.
    Process,
    /// cgroups and rlimits, as the command-line flags.
    Limits,
    /// The supervisor: the call is trapped, its arguments copied once from
    /// the guest, decided on the copy and performed by the supervisor.
    Supervisor,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Filter => f.write_str("seccomp filter"),
            Self::Landlock { abi: 1 } => f.write_str("Landlock"),
            Self::Landlock { abi } => write!(f, "Landlock (ABI {abi}+)"),
            Self::Mount => f.write_str("mount namespace"),
            Self::Process => f.write_str("process attribute"),
            Self::Limits => f.write_str("limits (cgroups, rlimits)"),
            Self::Supervisor => f.write_str("supervisor"),
        }
    }
}

/// Path hierarchies by kind of access: `None` leaves that kind as the
/// default view has it; `Some` restricts it to the paths given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathRules {
    pub read: Option<Vec<Located<String>>>,
    pub write: Option<Vec<Located<String>>>,
    /// Trees (`[fs].exec`) and programs (`[exec].allow`) that may be
    /// executed.
    pub exec: Option<Vec<Located<String>>>,
    /// Patterns of `[fs].read` (not in `read`, which is Landlock's): the
    /// supervisor's.
    pub read_patterns: Vec<Located<String>>,
    /// Patterns of `[fs].write`.
    pub write_patterns: Vec<Located<String>>,
}

/// TCP ports by direction: `None` unrestricted, `Some` only those.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortRules {
    pub connect: Option<Vec<Located<u16>>>,
    pub bind: Option<Vec<Located<u16>>>,
}

/// Limits, as written (sizes and durations are the command line's syntax,
/// parsed by its caller).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitRules {
    pub memory: Option<Located<String>>,
    pub pids: Option<Located<u64>>,
    pub cpus: Option<Located<String>>,
    pub nofile: Option<Located<u64>>,
    pub timeout: Option<Located<String>>,
}

/// A policy file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFile {
    /// The name it is known by in messages.
    pub file: String,
    pub base: Profile,
    /// Calls refused by the filter with EPERM.
    pub deny: Vec<Located<&'static str>>,
    /// Calls refused by the filter with another errno.
    pub errno: Vec<(Located<&'static str>, i32)>,
    pub paths: PathRules,
    /// Paths and patterns hidden from the instance (`[fs].deny`), whatever
    /// the allow lists say.
    pub denied_paths: Vec<Located<String>>,
    pub ports: PortRules,
    /// `[net].connect` when it names what only the supervisor can check
    /// (address ranges, unix socket paths): then the whole list is the
    /// supervisor's and `ports.connect` is `None`.
    pub supervised_connect: Option<Vec<Located<Destination>>>,
    /// `[net].bind` when it names what Landlock cannot hold (an address,
    /// a UDP port, an abstract name): then the whole list is the
    /// supervisor's and `ports.bind` is `None`.
    pub supervised_bind: Option<Vec<Located<Destination>>>,
    /// `[exec].allow` entries pinned by sha256 (their paths are in
    /// `paths.exec` too, for Landlock).
    pub exec_pins: Vec<Located<ExecPin>>,
    /// PR_SET_MDWE: no memory both writable and executable, ever.
    pub mdwe: bool,
    pub limits: LimitRules,
    line_starts: Vec<usize>,
}

/// One rule as `xvisor policy check` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRule {
    pub at: Position,
    pub rule: String,
    pub layer: Layer,
}

/// The Landlock ABI that TCP port rules need.
pub const LANDLOCK_NET_ABI: u32 = 4;

/// Errno names a policy may answer with.
const ERRNO_CHOICES: &[&str] = &[
    "EPERM",
    "EACCES",
    "ENOSYS",
    "EINVAL",
    "ENOENT",
    "EAFNOSUPPORT",
    "EOPNOTSUPP",
];

/// A list's plain paths and its patterns, apart.
type PathsAndPatterns = (Vec<Located<String>>, Vec<Located<String>>);

/// A key of a table (its full dotted name), its value, and where the key
/// was written.
type Entry<'t, 'i> = (String, &'t Spanned<DeValue<'i>>, Range<usize>);

struct Reader<'a> {
    file: &'a str,
    line_starts: Vec<usize>,
}

impl Reader<'_> {
    fn position(&self, offset: usize) -> Position {
        position_in(&self.line_starts, offset)
    }

    fn error(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> PolicyFileError {
        PolicyFileError {
            file: self.file.to_string(),
            at: self.position(span.start),
            key: if key.is_empty() {
                String::new()
            } else {
                format!("{key}: ")
            },
            message: message.to_string(),
        }
    }

    fn located<T>(&self, value: T, span: Range<usize>) -> Located<T> {
        Located {
            value,
            at: self.position(span.start),
        }
    }

    /// The table's entries in file order, each key checked against `known`.
    fn entries<'t, 'i>(
        &self,
        table: &'t DeTable<'i>,
        section: &str,
        known: &[&str],
    ) -> Result<Vec<Entry<'t, 'i>>, PolicyFileError> {
        let mut out = Vec::new();
        let mut in_file_order: Vec<_> = table.iter().collect();
        in_file_order.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in in_file_order {
            let name = key.get_ref().to_string();
            let full = if section.is_empty() {
                name.clone()
            } else {
                format!("{section}.{name}")
            };
            if !known.contains(&name.as_str()) {
                let choices = known.join(", ");
                return Err(self.error(key.span(), &full, format_args!("unknown key (known here: {choices})")));
            }
            out.push((full, value, key.span()));
        }
        Ok(out)
    }

    fn string<'v>(&self, value: &'v Spanned<DeValue<'_>>, key: &str) -> Result<&'v str, PolicyFileError> {
        value.get_ref().as_str().ok_or_else(|| {
            self.error(
                value.span(),
                key,
                format_args!("expected a string, found {}", value.get_ref().type_str()),
            )
        })
    }

    fn strings(&self, value: &Spanned<DeValue<'_>>, key: &str) -> Result<Vec<Located<String>>, PolicyFileError> {
        let Some(items) = value.get_ref().as_array() else {
            return Err(self.error(
                value.span(),
                key,
                format_args!("expected a list of strings, found {}", value.get_ref().type_str()),
            ));
        };
        items
            .iter()
            .map(|item| Ok(self.located(self.string(item, key)?.to_string(), item.span())))
            .collect()
    }

    fn integer(&self, value: &Spanned<DeValue<'_>>, key: &str, range: Range<u64>) -> Result<u64, PolicyFileError> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match parsed {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(self.error(
                value.span(),
                key,
                format_args!("expected a whole number from {} to {}", range.start, range.end - 1),
            )),
        }
    }

    /// A size, count or duration written either as a string or a number.
    fn text_or_number(&self, value: &Spanned<DeValue<'_>>, key: &str) -> Result<String, PolicyFileError> {
        match value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            DeValue::Integer(i) if i.radix() == 10 => Ok(i.as_str().to_string()),
            DeValue::Float(f) => Ok(f.as_str().to_string()),
            other => Err(self.error(
                value.span(),
                key,
                format_args!("expected a string or a number, found {}", other.type_str()),
            )),
        }
    }

    fn table<'t, 'i>(&self, value: &'t Spanned<DeValue<'i>>, key: &str) -> Result<&'t DeTable<'i>, PolicyFileError> {
        value.get_ref().as_table().ok_or_else(|| {
            self.error(
                value.span(),
                key,
                format_args!("expected a table, found {}", value.get_ref().type_str()),
            )
        })
    }

    fn syscall(&self, name: &str, span: Range<usize>, key: &str) -> Result<&'static str, PolicyFileError> {
        table::by_name(name)
            .map(|row| row.name)
            .ok_or_else(|| self.error(span, key, format_args!("{name:?} is not an x86_64 system call")))
    }

    /// An absolute path without `.` or `..` components, or a refusal that
    /// says which layer it would need.
    fn path(&self, path: &Located<String>, span: Range<usize>, key: &str) -> Result<(), PolicyFileError> {
        let p = path.value.as_str();
        if p.contains(['*', '?', '[']) {
            let why = if key.starts_with("fs.exec") || key.starts_with("exec.") {
                "patterns are taken in [fs].read and [fs].write; an exec is not an open the supervisor can make for the guest, so programs are named (files or directories)"
            } else {
                "patterns are taken in [fs].read, [fs].write and [fs].deny; name the file"
            };
            return Err(self.error(span, key, format_args!("{p:?}: {why}")));
        }
        if !p.starts_with('/') {
            return Err(self.error(
                span,
                key,
                format_args!("{p:?}: paths are absolute (as the instance sees them)"),
            ));
        }
        if p.contains('\0') || p.split('/').any(|c| c == "." || c == "..") {
            return Err(self.error(span, key, format_args!("{p:?}: no '.', '..' or NUL in a path")));
        }
        Ok(())
    }

    fn paths(&self, value: &Spanned<DeValue<'_>>, key: &str) -> Result<Vec<Located<String>>, PolicyFileError> {
        let list = self.strings(value, key)?;
        let items = value
            .get_ref()
            .as_array()
            .map(|a| a.iter().map(|i| i.span()).collect::<Vec<_>>());
        for (path, span) in list.iter().zip(items.unwrap_or_default()) {
            self.path(path, span, key)?;
        }
        Ok(list)
    }

    /// A list of paths and patterns (`[fs].read`, `[fs].write`): the paths
    /// (for Landlock) and the patterns (for the supervisor), apart.
    fn paths_and_patterns(&self, value: &Spanned<DeValue<'_>>, key: &str) -> Result<PathsAndPatterns, PolicyFileError> {
        let list = self.strings(value, key)?;
        let items = value
            .get_ref()
            .as_array()
            .map(|a| a.iter().map(|i| i.span()).collect::<Vec<_>>());
        let (mut paths, mut patterns) = (Vec::new(), Vec::new());
        for (path, span) in list.into_iter().zip(items.unwrap_or_default()) {
            if crate::glob::is_pattern(&path.value) {
                crate::glob::Pattern::parse(&path.value).map_err(|e| self.error(span, key, e))?;
                patterns.push(path);
            } else {
                self.path(&path, span, key)?;
                paths.push(path);
            }
        }
        Ok((paths, patterns))
    }

    /// A destination: `tcp:ADDRESSES:PORT` (`tcp:PORT` is `tcp:*:PORT`;
    /// `udp:` the same for datagrams),
    /// where ADDRESSES is `*`, an IPv4 address or range (`10.0.0.0/8`) or
    /// an IPv6 one in brackets (`[fd00::]/8`) and PORT a number or `*`; or
    /// `unix:/absolute/path`.
    fn destination(&self, text: &str, span: Range<usize>, key: &str) -> Result<Destination, PolicyFileError> {
        let refuse = |what: String| self.error(span.clone(), key, format_args!("{text:?}: {what}"));
        let Some((proto, rest)) = text.split_once(':') else {
            return Err(refuse(
                "expected tcp:ADDRESSES:PORT, udp:ADDRESSES:PORT or unix:PATH (e.g. \"tcp:*:443\", \"tcp:10.0.0.0/8:5432\", \"udp:*:53\", \"unix:/run/app.sock\")"
                    .into(),
            ));
        };
        let transport = match proto {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            "unix" if rest.starts_with('@') => {
                let name = &rest[1..];
                if name.is_empty() {
                    return Err(refuse("an abstract name follows the '@': \"unix:@app\"".into()));
                }
                if name.len() > 107 {
                    return Err(refuse("an abstract name is at most 107 bytes".into()));
                }
                return Ok(Destination::UnixAbstract(name.as_bytes().to_vec()));
            }
            "unix" => {
                let path = Located {
                    value: rest.to_string(),
                    at: self.position(span.start),
                };
                self.path(&path, span.clone(), key)?;
                return Ok(Destination::UnixPath(rest.to_string()));
            }
            "abstract" => {
                return Err(refuse("an abstract unix socket is written unix:@NAME".into()))
            }
            _ => {
                return Err(refuse(
                    "expected tcp:ADDRESSES:PORT, udp:ADDRESSES:PORT or unix:PATH (e.g. \"tcp:*:443\", \"udp:*:53\", \"unix:/run/app.sock\")".into(),
                ))
            }
        };
        let (range, port) = match rest.rsplit_once(':') {
            // An IPv6 address without brackets would split inside it.
            Some((range, port)) if !range.contains(':') || range.starts_with('[') => (range, port),
            Some(_) => return Err(refuse("IPv6 addresses are written in brackets: tcp:[::1]:443".into())),
            None => ("*", rest),
        };
        let range = AddressRange::parse(range).map_err(refuse)?;
        let port = match port {
            "*" => None,
            p => Some(
                p.parse::<u16>()
                    .map_err(|_| refuse("the port is a number from 0 to 65535, or *".into()))?,
            ),
        };
        if range == AddressRange::Any && port.is_none() {
            return Err(refuse(format!(
                "any address and any port allows every {} destination: leave the rule out, or name ports",
                transport.name().to_uppercase()
            )));
        }
        Ok(Destination::Inet { transport, range, port })
    }

    fn destinations(
        &self,
        value: &Spanned<DeValue<'_>>,
        key: &str,
    ) -> Result<Vec<Located<Destination>>, PolicyFileError> {
        let Some(items) = value.get_ref().as_array() else {
            return Err(self.error(value.span(), key, "expected a list such as [\"tcp:*:443\"]"));
        };
        items
            .iter()
            .map(|item| {
                let text = self.string(item, key)?;
                Ok(self.located(self.destination(text, item.span(), key)?, item.span()))
            })
            .collect()
    }
}

fn position_in(line_starts: &[usize], offset: usize) -> Position {
    let line = line_starts.partition_point(|&start| start <= offset);
    let start = line_starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
    Position {
        line: line.max(1),
        column: offset.saturating_sub(start) + 1,
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

impl PolicyFile {
    /// Reads `text` (the contents of `file`): every key known, every value
    /// of its kind, every rule enforceable by some layer.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyFileError> {
        let reader = Reader {
            file,
            line_starts: line_starts(text),
        };
        let document = DeTable::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().lines().next().unwrap_or("not valid TOML").to_string();
            reader.error(span, "", format_args!("not valid TOML: {message}"))
        })?;
        let mut policy = PolicyFile {
            file: file.to_string(),
            base: Profile::Default,
            deny: Vec::new(),
            errno: Vec::new(),
            paths: PathRules::default(),
            denied_paths: Vec::new(),
            ports: PortRules::default(),
            supervised_connect: None,
            supervised_bind: None,
            exec_pins: Vec::new(),
            mdwe: false,
            limits: LimitRules::default(),
            line_starts: reader.line_starts.clone(),
        };
        let sections = ["base", "fs", "exec", "net", "syscalls", "process", "limits"];
        for (key, value, _) in reader.entries(document.get_ref(), "", &sections)? {
            match key.as_str() {
                "base" => {
                    let name = reader.string(value, &key)?;
                    policy.base = Profile::parse(name).map_err(|e| reader.error(value.span(), &key, e))?;
                }
                "fs" => policy.read_fs(&reader, reader.table(value, &key)?)?,
                "exec" => policy.read_exec(&reader, reader.table(value, &key)?)?,
                "net" => policy.read_net(&reader, reader.table(value, &key)?)?,
                "syscalls" => policy.read_syscalls(&reader, reader.table(value, &key)?)?,
                "process" => {
                    for (key, value, _) in reader.entries(reader.table(value, &key)?, "process", &["mdwe"])? {
                        policy.mdwe = value
                            .get_ref()
                            .as_bool()
                            .ok_or_else(|| reader.error(value.span(), &key, "expected true or false"))?;
                    }
                }
                "limits" => policy.read_limits(&reader, reader.table(value, &key)?)?,
                _ => {}
            }
        }
        Ok(policy)
    }

    fn read_fs(&mut self, r: &Reader<'_>, table: &DeTable<'_>) -> Result<(), PolicyFileError> {
        let known = ["read", "write", "exec", "deny"];
        for (key, value, key_span) in r.entries(table, "fs", &known)? {
            match key.as_str() {
                "fs.read" => {
                    let (paths, patterns) = r.paths_and_patterns(value, &key)?;
                    self.paths.read = Some(paths);
                    self.paths.read_patterns = patterns;
                }
                "fs.write" => {
                    let (paths, patterns) = r.paths_and_patterns(value, &key)?;
                    self.paths.write = Some(paths);
                    self.paths.write_patterns = patterns;
                }
                "fs.exec" => self
                    .paths
                    .exec
                    .get_or_insert_with(Vec::new)
                    .extend(r.paths(value, &key)?),
                _ => {
                    let _ = key_span;
                    let Some(items) = value.get_ref().as_array() else {
                        return Err(r.error(value.span(), &key, "expected a list of paths or patterns"));
                    };
                    for item in items.iter() {
                        let text = r.string(item, &key)?;
                        crate::glob::Pattern::parse(text).map_err(|e| r.error(item.span(), &key, e))?;
                        self.denied_paths.push(r.located(text.to_string(), item.span()));
                    }
                }
            }
        }
        Ok(())
    }

    /// `[exec] allow`: paths, or `{ path = "/usr/bin/python3", sha256 =
    /// "…" }` for a program that may run only with exactly those contents.
    fn read_exec(&mut self, r: &Reader<'_>, table: &DeTable<'_>) -> Result<(), PolicyFileError> {
        for (key, value, _) in r.entries(table, "exec", &["allow"])? {
            let Some(items) = value.get_ref().as_array() else {
                return Err(r.error(value.span(), &key, "expected a list of paths"));
            };
            let mut programs = Vec::new();
            for item in items.iter() {
                if let Some(pinned) = item.get_ref().as_table() {
                    let (mut path, mut sha256) = (None, None);
                    for (field, field_value, _) in r.entries(pinned, &key, &["path", "sha256"])? {
                        let text = r.string(field_value, &field)?;
                        if field.ends_with(".path") {
                            let located = r.located(text.to_string(), field_value.span());
                            r.path(&located, field_value.span(), &field)?;
                            path = Some(located);
                        } else {
                            let digest =
                                supervised::parse_sha256(text).map_err(|e| r.error(field_value.span(), &field, e))?;
                            sha256 = Some(digest);
                        }
                    }
                    let (Some(path), Some(sha256)) = (path, sha256) else {
                        return Err(r.error(
                            item.span(),
                            &key,
                            "a pinned program is { path = \"/usr/bin/python3\", sha256 = \"<64 hex digits>\" }",
                        ));
                    };
                    self.exec_pins.push(Located {
                        value: ExecPin {
                            path: path.value.clone(),
                            sha256,
                        },
                        at: path.at,
                    });
                    programs.push(path);
                    continue;
                }
                let text = r.string(item, &key)?;
                if text.contains("@sha256:") {
                    return Err(r.error(
                        item.span(),
                        &key,
                        format_args!("{text:?}: a program pinned by hash is written {{ path = \"/usr/bin/python3\", sha256 = \"<64 hex digits>\" }}"),
                    ));
                }
                let path = r.located(text.to_string(), item.span());
                r.path(&path, item.span(), &key)?;
                programs.push(path);
            }
            self.paths.exec.get_or_insert_with(Vec::new).extend(programs);
        }
        Ok(())
    }

    fn read_net(&mut self, r: &Reader<'_>, table: &DeTable<'_>) -> Result<(), PolicyFileError> {
        for (key, value, key_span) in r.entries(table, "net", &["connect", "bind", "send"])? {
            match key.as_str() {
                "net.connect" => {
                    let destinations = r.destinations(value, &key)?;
                    // Landlock holds a list of TCP ports exactly; anything
                    // else makes the whole list the supervisor's (a
                    // Landlock port list beside it would refuse what an
                    // address rule allows).
                    match tcp_ports_only(&destinations) {
                        Some(ports) => {
                            self.ports.connect = Some(ports);
                            self.supervised_connect = None;
                        }
                        None => {
                            self.ports.connect = None;
                            self.supervised_connect = Some(destinations);
                        }
                    }
                }
                "net.bind" => {
                    let destinations = r.destinations(value, &key)?;
                    if let Some(d) = destinations.iter().find(|d| matches!(d.value, Destination::UnixPath(_))) {
                        return Err(PolicyFileError {
                            file: r.file.to_string(),
                            at: d.at,
                            key: format!("{key}: "),
                            message: format!(
                                "{:?}: a unix socket file is made by a bind; where one may be made is [fs].write (its directory)",
                                d.value.to_string()
                            ),
                        });
                    }
                    // Landlock holds TCP ports on any address; anything
                    // else makes the whole list the supervisor's.
                    match tcp_ports_only(&destinations) {
                        Some(ports) => {
                            self.ports.bind = Some(ports);
                            self.supervised_bind = None;
                        }
                        None => {
                            self.ports.bind = None;
                            self.supervised_bind = Some(destinations);
                        }
                    }
                }
                _ => {
                    return Err(r.error(
                        key_span,
                        &key,
                        "datagram destinations are written in [net].connect (\"udp:*:53\", \"udp:10.0.0.0/8:*\"), which holds connects and every send naming a destination",
                    ))
                }
            }
        }
        Ok(())
    }

    fn read_syscalls(&mut self, r: &Reader<'_>, table: &DeTable<'_>) -> Result<(), PolicyFileError> {
        for (key, value, _) in r.entries(table, "syscalls", &["deny", "errno"])? {
            if key == "syscalls.deny" {
                let Some(items) = value.get_ref().as_array() else {
                    return Err(r.error(value.span(), &key, "expected a list of system call names"));
                };
                for item in items.iter() {
                    let name = r.syscall(r.string(item, &key)?, item.span(), &key)?;
                    self.deny.push(r.located(name, item.span()));
                }
            } else {
                for (call, answer) in r.table(value, &key)? {
                    let key = format!("syscalls.errno.{}", call.get_ref());
                    let name = r.syscall(call.get_ref(), call.span(), &key)?;
                    let errno_text = r.string(answer, &key)?;
                    let Some(errno) = (1..4096).find(|&e| errno_name(e) == errno_text) else {
                        return Err(r.error(
                            answer.span(),
                            &key,
                            format_args!(
                                "{errno_text:?}: expected an errno name such as {}",
                                ERRNO_CHOICES.join(", ")
                            ),
                        ));
                    };
                    self.errno.push((r.located(name, call.span()), errno));
                }
            }
        }
        for (call, _) in &self.errno {
            if let Some(denied) = self.deny.iter().find(|d| d.value == call.value) {
                return Err(PolicyFileError {
                    file: r.file.to_string(),
                    at: call.at,
                    key: format!("syscalls.errno.{}: ", call.value),
                    message: format!("contradicts syscalls.deny at {} (one answer per call)", denied.at),
                });
            }
        }
        Ok(())
    }

    fn read_limits(&mut self, r: &Reader<'_>, table: &DeTable<'_>) -> Result<(), PolicyFileError> {
        let known = ["memory", "pids", "cpus", "nofile", "timeout"];
        for (key, value, _) in r.entries(table, "limits", &known)? {
            let at = r.position(value.span().start);
            match key.as_str() {
                "limits.memory" => {
                    self.limits.memory = Some(Located {
                        value: r.text_or_number(value, &key)?,
                        at,
                    })
                }
                "limits.cpus" => {
                    self.limits.cpus = Some(Located {
                        value: r.text_or_number(value, &key)?,
                        at,
                    })
                }
                "limits.timeout" => {
                    self.limits.timeout = Some(Located {
                        value: r.text_or_number(value, &key)?,
                        at,
                    })
                }
                "limits.pids" => {
                    self.limits.pids = Some(Located {
                        value: r.integer(value, &key, 1..1 << 22)?,
                        at,
                    })
                }
                _ => {
                    self.limits.nofile = Some(Located {
                        value: r.integer(value, &key, 1..1 << 30)?,
                        at,
                    })
                }
            }
        }
        Ok(())
    }

    /// A refusal of a value the caller parses itself (a size, a duration),
    /// placed where the value was written.
    pub fn error_at(&self, at: Position, key: &str, message: impl fmt::Display) -> PolicyFileError {
        PolicyFileError {
            file: self.file.clone(),
            at,
            key: format!("{key}: "),
            message: message.to_string(),
        }
    }

    /// What the supervisor decides: `[net].connect` when Landlock cannot
    /// hold it, and the pinned programs.
    pub fn supervisor_rules(&self) -> SupervisorRules {
        let patterns = |present: bool, list: &[Located<String>]| {
            // Checked when read.
            present.then(|| {
                list.iter()
                    .filter_map(|p| crate::glob::Pattern::parse(&p.value).ok())
                    .collect::<Vec<_>>()
            })
        };
        let has_patterns = !self.paths.read_patterns.is_empty() || !self.paths.write_patterns.is_empty();
        SupervisorRules {
            connect: self.supervised_connect.as_ref().map(|list| ConnectRules {
                allowed: list.iter().map(|d| d.value.clone()).collect(),
                source: format!("[net].connect ({})", self.file),
            }),
            bind: self.supervised_bind.as_ref().map(|list| ConnectRules {
                allowed: list.iter().map(|d| d.value.clone()).collect(),
                source: format!("[net].bind ({})", self.file),
            }),
            open: has_patterns.then(|| OpenRules {
                read: patterns(self.paths.read.is_some(), &self.paths.read_patterns),
                write: patterns(self.paths.write.is_some(), &self.paths.write_patterns),
                source: format!("[fs] patterns ({})", self.file),
            }),
            exec_pins: self.exec_pins.iter().map(|p| p.value.clone()).collect(),
            exec_source: if self.exec_pins.is_empty() {
                String::new()
            } else {
                format!("[exec].allow ({})", self.file)
            },
        }
    }

    /// The system-call part: the base profile, the refusals, and the rules
    /// the supervisor decides (which trap only their own calls).
    pub fn filter_policy(&self) -> Policy {
        let mut policy = Policy::new(self.base);
        policy.supervise(self.supervisor_rules());
        // Names were checked against the table when read.
        for call in &self.deny {
            let _ = policy.refuse_with(
                call.value,
                crate::table::errno::EPERM,
                &format!("[syscalls].deny ({})", self.file),
            );
        }
        for (call, errno) in &self.errno {
            let _ = policy.refuse_with(call.value, *errno, &format!("[syscalls].errno ({})", self.file));
        }
        policy
    }

    /// Every rule with the layer that enforces it, in file order.
    pub fn rules(&self) -> Vec<ShownRule> {
        let mut out = vec![ShownRule {
            at: Position::default(),
            rule: format!(
                "base = {:?}: {}",
                self.base.name(),
                crate::render::summary(&self.filter_policy())
            ),
            layer: Layer::Filter,
        }];
        for call in &self.deny {
            out.push(ShownRule {
                at: call.at,
                rule: format!("{}: refused with EPERM, named on stderr when made", call.value),
                layer: Layer::Filter,
            });
        }
        for (call, errno) in &self.errno {
            out.push(ShownRule {
                at: call.at,
                rule: format!(
                    "{}: refused with {}, named on stderr when made",
                    call.value,
                    errno_name(*errno)
                ),
                layer: Layer::Filter,
            });
        }
        for denied in &self.denied_paths {
            out.push(ShownRule {
                at: denied.at,
                rule: format!(
                    "deny {}: {}",
                    denied.value,
                    if crate::glob::is_pattern(&denied.value) {
                        "each match at start appears empty and read-only"
                    } else {
                        "appears empty and read-only"
                    }
                ),
                layer: Layer::Mount,
            });
        }
        let path_kinds = [
            ("read", &self.paths.read),
            ("write (and create, remove, rename)", &self.paths.write),
            ("execute", &self.paths.exec),
        ];
        for (kind, list) in path_kinds {
            for path in list.iter().flatten() {
                out.push(ShownRule {
                    at: path.at,
                    rule: format!("{kind} beneath {}", path.value),
                    layer: Layer::Landlock { abi: 1 },
                });
            }
            if list.as_ref().is_some_and(Vec::is_empty) {
                out.push(ShownRule {
                    at: Position::default(),
                    rule: format!("{kind}: nothing beyond the always-granted devices and /proc"),
                    layer: Layer::Landlock { abi: 1 },
                });
            }
        }
        let pattern_kinds = [
            (
                "read files matching",
                "(and list the directories a match can be in)",
                &self.paths.read_patterns,
            ),
            ("write files matching", "(existing files)", &self.paths.write_patterns),
        ];
        for (kind, what, list) in pattern_kinds {
            for pattern in list {
                out.push(ShownRule {
                    at: pattern.at,
                    rule: format!(
                        "{kind} {} {what}: every open trapped, the path resolved in the instance's root, a match opened by the supervisor and handed in",
                        pattern.value
                    ),
                    layer: Layer::Supervisor,
                });
            }
        }
        for (kind, list) in [("connect to", &self.ports.connect), ("bind", &self.ports.bind)] {
            for port in list.iter().flatten() {
                out.push(ShownRule {
                    at: port.at,
                    rule: format!("{kind} TCP port {}", port.value),
                    layer: Layer::Landlock { abi: LANDLOCK_NET_ABI },
                });
            }
            if list.as_ref().is_some_and(Vec::is_empty) {
                out.push(ShownRule {
                    at: Position::default(),
                    rule: format!("{kind} no TCP port"),
                    layer: Layer::Landlock { abi: LANDLOCK_NET_ABI },
                });
            }
        }
        if let Some(list) = &self.supervised_connect {
            for destination in list {
                let udp = matches!(
                    destination.value,
                    Destination::Inet {
                        transport: Transport::Udp,
                        ..
                    }
                );
                out.push(ShownRule {
                    at: destination.at,
                    rule: if udp {
                        format!(
                            "connect and send to {}: connect and every send naming a destination (sendto with an address, sendmsg, sendmmsg) trapped, decided on a copy, performed by the supervisor",
                            destination.value
                        )
                    } else {
                        format!(
                            "connect to {}: connect trapped, decided on a copy, performed by the supervisor",
                            destination.value
                        )
                    },
                    layer: Layer::Supervisor,
                });
            }
            let rules = self.supervisor_rules();
            let connect = rules.connect.as_ref();
            let restricted = ["TCP"]
                .into_iter()
                .chain(connect.is_some_and(ConnectRules::restricts_udp).then_some("UDP"))
                .chain(
                    connect
                        .is_some_and(ConnectRules::restricts_unix_paths)
                        .then_some("unix socket paths"),
                )
                .chain(
                    connect
                        .is_some_and(ConnectRules::restricts_abstract)
                        .then_some("abstract unix names"),
                )
                .collect::<Vec<_>>()
                .join(" and ");
            out.push(ShownRule {
                at: list.first().map(|d| d.at).unwrap_or_default(),
                rule: format!("connect: {restricted} to nothing else"),
                layer: Layer::Supervisor,
            });
        }
        if let Some(list) = &self.supervised_bind {
            for destination in list {
                out.push(ShownRule {
                    at: destination.at,
                    rule: format!(
                        "bind to {}: bind trapped, decided on a copy, performed by the supervisor on the guest's socket",
                        destination.value
                    ),
                    layer: Layer::Supervisor,
                });
            }
            let rules = self.supervisor_rules();
            let bind = rules.bind.as_ref();
            let restricted = ["TCP"]
                .into_iter()
                .chain(bind.is_some_and(ConnectRules::restricts_udp).then_some("UDP"))
                .chain(
                    bind.is_some_and(ConnectRules::restricts_abstract)
                        .then_some("abstract unix names"),
                )
                .collect::<Vec<_>>()
                .join(" and ");
            out.push(ShownRule {
                at: list.first().map(|d| d.at).unwrap_or_default(),
                rule: format!(
                    "bind: {restricted} to nothing else; no unix socket file is bound while this list is the supervisor's (EACCES)"
                ),
                layer: Layer::Supervisor,
            });
        }
        for pin in &self.exec_pins {
            out.push(ShownRule {
                at: pin.at,
                rule: format!(
                    "execute {} only with sha256 {}: checked at exec, before its first instruction",
                    pin.value.path,
                    supervised::sha256_hex(&pin.value.sha256)
                ),
                layer: Layer::Supervisor,
            });
        }
        if self.mdwe {
            out.push(ShownRule {
                at: Position::default(),
                rule: "no memory both writable and executable (PR_SET_MDWE)".into(),
                layer: Layer::Process,
            });
        }
        let limits = [
            ("memory", self.limits.memory.as_ref().map(|l| (l.at, l.value.clone()))),
            ("cpus", self.limits.cpus.as_ref().map(|l| (l.at, l.value.clone()))),
            ("timeout", self.limits.timeout.as_ref().map(|l| (l.at, l.value.clone()))),
            ("pids", self.limits.pids.as_ref().map(|l| (l.at, l.value.to_string()))),
            (
                "nofile",
                self.limits.nofile.as_ref().map(|l| (l.at, l.value.to_string())),
            ),
        ];
        for (name, limit) in limits {
            if let Some((at, value)) = limit {
                out.push(ShownRule {
                    at,
                    rule: format!("{name} = {value}"),
                    layer: Layer::Limits,
                });
            }
        }
        out.sort_by_key(|r| (r.at.line, r.at.column));
        out
    }

    /// Where `offset` (a byte offset into the file) is.
    pub fn position(&self, offset: usize) -> Position {
        position_in(&self.line_starts, offset)
    }
}

/// A built-in profile as a policy file.
pub fn profile_as_file(profile: Profile) -> String {
    let policy = Policy::new(profile);
    let mut out = String::new();
    out.push_str(&format!(
        "# The built-in profile {:?}: {}.\n",
        profile.name(),
        crate::render::summary(&policy)
    ));
    match profile {
        Profile::Default => out.push_str(
            "# Calls run in the host kernel, bounded by the instance's namespaces, root,\n\
             # Landlock wall and limits; the filter refuses what would bypass them (below)\n\
             # and tests a few register values itself. Nothing is trapped to the supervisor\n\
             # unless a trace asks for it.\n",
        ),
        Profile::Strict => out.push_str(
            "# Every call is trapped and decided by the supervisor, refusals included:\n\
             # the whole path, at a round trip per call.\n",
        ),
    }
    out.push_str(&format!("base = {:?}\n\n", profile.name()));
    out.push_str("# Refused in every profile (with the errno a caller without the privilege or\n# a kernel without the call gets):\n");
    for s in table::SYSCALLS {
        if let table::Class::Refused(e) = s.class {
            out.push_str(&format!("#   {:<24} {}\n", s.name, errno_name(e)));
        }
    }
    out.push_str("# Refused by register values:\n");
    for s in table::SYSCALLS {
        for rule in s.handler.register_rules() {
            out.push_str(&format!(
                "#   {:<24} {} ({})\n",
                s.name,
                rule.names,
                errno_name(rule.errno)
            ));
        }
    }
    out.push_str("\n[syscalls]\ndeny = []\n");
    out
}

/// The ports of a list whose every entry is a TCP port on any address
/// (what Landlock holds exactly), or None when an entry needs the
/// supervisor.
fn tcp_ports_only(destinations: &[Located<Destination>]) -> Option<Vec<Located<u16>>> {
    destinations
        .iter()
        .map(|d| match d.value {
            Destination::Inet { port: Some(port), .. } if d.value.is_tcp_port_only() => {
                Some(Located { value: port, at: d.at })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PolicyFile, String> {
        PolicyFile::parse("t.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_is_read_key_by_key() {
        let p = parse(
            r#"
base = "strict"
[fs]
read = ["/usr", "/etc"]
write = ["/tmp"]
exec = ["/usr/bin"]
[exec]
allow = ["/opt/app/run"]
[net]
connect = ["tcp:*:443", "tcp:80"]
bind = []
[syscalls]
deny = ["ptrace", "mount"]
errno = { personality = "ENOSYS" }
[process]
mdwe = true
[limits]
memory = "256M"
pids = 64
cpus = 0.5
nofile = 1024
timeout = "30s"
"#,
        )
        .unwrap();
        assert_eq!(p.base, Profile::Strict);
        let values = |l: &Option<Vec<Located<String>>>| l.iter().flatten().map(|p| p.value.clone()).collect::<Vec<_>>();
        assert_eq!(values(&p.paths.read), ["/usr", "/etc"]);
        assert_eq!(values(&p.paths.exec), ["/usr/bin", "/opt/app/run"]);
        assert_eq!(
            p.ports
                .connect
                .as_ref()
                .unwrap()
                .iter()
                .map(|l| l.value)
                .collect::<Vec<_>>(),
            [443, 80]
        );
        assert_eq!(p.ports.bind, Some(vec![]));
        assert_eq!(p.deny.iter().map(|d| d.value).collect::<Vec<_>>(), ["ptrace", "mount"]);
        assert_eq!(p.errno[0].0.value, "personality");
        assert_eq!(p.errno[0].1, 38);
        assert!(p.mdwe);
        assert_eq!(p.limits.cpus.as_ref().unwrap().value, "0.5");
        assert_eq!(p.limits.pids.as_ref().unwrap().value, 64);
        let read = &p.paths.read.as_ref().unwrap()[1];
        assert_eq!(read.at, Position { line: 4, column: 17 });
        let filter = p.filter_policy();
        assert_eq!(filter.action_for_number(135), crate::Action::Refuse(38));
        assert_eq!(filter.action_for_number(101), crate::Action::Refuse(1));
        assert_eq!(filter.user_denial(101), Some("[syscalls].deny (t.toml)"));
        let shown = p.rules();
        assert!(shown
            .iter()
            .any(|r| r.rule == "connect to TCP port 443" && r.layer == Layer::Landlock { abi: 4 }));
        assert!(shown.iter().any(|r| r.rule == "bind no TCP port"));
    }

    #[test]
    fn address_ranges_and_unix_paths_go_to_the_supervisor() {
        let p = parse(
            r#"
[net]
connect = ["tcp:10.0.0.0/8:5432", "tcp:[::1]:*", "unix:/run/app.sock", "tcp:*:443"]
bind = ["tcp:*:8080"]
[exec]
allow = ["/usr/bin", { path = "/usr/bin/python3", sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }]
"#,
        )
        .unwrap();
        assert_eq!(p.ports.connect, None, "the supervisor holds the whole list");
        assert_eq!(p.ports.bind.as_ref().map(Vec::len), Some(1));
        let rules = p.supervisor_rules();
        let connect = rules.connect.as_ref().unwrap();
        assert_eq!(connect.allowed.len(), 4);
        assert_eq!(connect.source, "[net].connect (t.toml)");
        assert_eq!(connect.allowed[1].to_string(), "tcp:[::1]:*");
        assert!(connect.restricts_unix_paths());
        assert_eq!(rules.exec_pins.len(), 1);
        assert_eq!(rules.pin_for("/usr/bin/python3").map(|p| p.sha256[0]), Some(0xe3));
        let values = |l: &Option<Vec<Located<String>>>| l.iter().flatten().map(|p| p.value.clone()).collect::<Vec<_>>();
        assert_eq!(values(&p.paths.exec), ["/usr/bin", "/usr/bin/python3"]);
        let filter = p.filter_policy();
        assert_eq!(filter.action_for_number(42), crate::Action::Trap, "connect is trapped");
        assert_eq!(filter.action_for_number(49), crate::Action::Allow, "bind is not");
        // TCP Fast Open would connect without connect: trapped and refused
        // by its flag, other sends run in the kernel.
        let sendto = filter.action_for_number(44);
        assert_eq!(
            sendto.for_args(&[3, 0, 1, 0x2000_0000, 0x1000, 16]),
            crate::Action::Trap
        );
        assert_eq!(sendto.for_args(&[3, 0, 1, 0x40, 0x1000, 16]), crate::Action::Allow);
        let sendmsg = filter.action_for_number(46);
        assert_eq!(
            sendmsg.for_args(&[3, 0x1000, 0x2000_0000, 0, 0, 0]),
            crate::Action::Trap
        );
        assert_eq!(sendmsg.for_args(&[3, 0x1000, 0, 0, 0, 0]), crate::Action::Allow);
        assert!(!filter.supervises_sends(), "no udp: rule, UDP unrestricted");
        let shown = p.rules();
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor && r.rule.starts_with("connect to tcp:10.0.0.0/8:5432")));
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor
                && r.rule.starts_with("execute /usr/bin/python3 only with sha256 e3b0")));
        // A list of ports alone stays Landlock's: nothing trapped.
        let ports = parse("[net]\nconnect = [\"tcp:*:443\", \"tcp:80\"]\n").unwrap();
        assert!(ports.supervised_connect.is_none());
        assert_eq!(ports.filter_policy(), Policy::new(Profile::Default));
    }

    #[test]
    fn udp_destinations_make_the_supervisor_send() {
        let p = parse("[net]\nconnect = [\"udp:*:53\", \"udp:10.0.0.0/8:*\", \"udp:[::1]:5353\"]\n").unwrap();
        assert_eq!(p.ports.connect, None);
        let rules = p.supervisor_rules();
        let connect = rules.connect.as_ref().unwrap();
        assert!(connect.restricts_udp() && !connect.restricts_unix_paths());
        assert_eq!(connect.allowed[1].to_string(), "udp:10.0.0.0/8:*");
        let filter = p.filter_policy();
        assert!(filter.supervises_sends());
        assert_eq!(filter.action_for_number(42), crate::Action::Trap);
        assert_eq!(filter.action_for_number(46), crate::Action::Trap, "sendmsg");
        assert_eq!(filter.action_for_number(307), crate::Action::Trap, "sendmmsg");
        let sendto = filter.action_for_number(44);
        assert_eq!(
            sendto.for_args(&[3, 0x1000, 1, 0, 0, 0]),
            crate::Action::Allow,
            "NULL address"
        );
        assert_eq!(
            sendto.for_args(&[3, 0x1000, 1, 0, 0x7f00_0000_1000, 16]),
            crate::Action::Trap
        );
        assert_eq!(
            sendto.for_args(&[3, 0x1000, 1, 0, 0x7f00_0000_0000, 16]),
            crate::Action::Trap,
            "a low word of zero is not NULL"
        );
        assert_eq!(filter.action_for_number(45), crate::Action::Allow, "recvfrom");
        let shown = p.rules();
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor && r.rule.starts_with("connect and send to udp:*:53")));
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor && r.rule == "connect: TCP and UDP to nothing else"));
        // Strict traps every send anyway.
        let strict = parse("base = \"strict\"\n[net]\nconnect = [\"udp:*:53\"]\n").unwrap();
        assert_eq!(strict.filter_policy().action_for_number(44), crate::Action::Trap);
    }

    #[test]
    fn abstract_names_are_supervisor_connect_rules() {
        let p = parse("[net]\nconnect = [\"unix:@app\", \"tcp:*:443\"]\n").unwrap();
        let rules = p.supervisor_rules().connect.unwrap();
        assert_eq!(
            rules.allowed,
            vec![
                Destination::UnixAbstract(b"app".to_vec()),
                Destination::Inet {
                    transport: Transport::Tcp,
                    range: AddressRange::Any,
                    port: Some(443)
                }
            ]
        );
        assert!(rules.restricts_abstract() && !rules.restricts_unix_paths() && !rules.restricts_udp());
        assert_eq!(p.ports.connect, None, "the whole list is the supervisor's");
        assert_eq!(p.filter_policy().action_for_number(42), crate::Action::Trap);
        let shown = p.rules();
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor && r.rule.starts_with("connect to unix:@app:")));
        for (bad, want) in [
            ("unix:@", "an abstract name follows the '@'"),
            ("abstract:app", "an abstract unix socket is written unix:@NAME"),
        ] {
            let e = parse(&format!("[net]\nconnect = [\"{bad}\"]\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn bind_lists_with_addresses_or_udp_are_the_supervisor_s() {
        let landlock = parse("[net]\nbind = [\"tcp:*:8080\", \"tcp:443\"]\n").unwrap();
        assert_eq!(
            landlock
                .ports
                .bind
                .as_ref()
                .map(|l| l.iter().map(|p| p.value).collect::<Vec<_>>()),
            Some(vec![8080, 443])
        );
        assert!(landlock.supervisor_rules().bind.is_none());
        assert_eq!(landlock.filter_policy().action_for_number(49), crate::Action::Allow);
        let p = parse("[net]\nbind = [\"tcp:127.0.0.1:8080\", \"udp:*:5353\", \"unix:@app\"]\n").unwrap();
        assert_eq!(p.ports.bind, None);
        let rules = p.supervisor_rules().bind.unwrap();
        assert!(rules.restricts_udp() && rules.restricts_abstract());
        assert_eq!(rules.source, "[net].bind (t.toml)");
        assert_eq!(p.filter_policy().action_for_number(49), crate::Action::Trap);
        let shown = p.rules();
        assert!(shown
            .iter()
            .any(|r| r.layer == Layer::Supervisor && r.rule.starts_with("bind to udp:*:5353:")));
        assert!(shown.iter().any(|r| r
            .rule
            .starts_with("bind: TCP and UDP and abstract unix names to nothing else")));
        let e = parse("[net]\nbind = [\"tcp:*:80\", \"unix:/run/a.sock\"]\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.toml:2:21: net.bind: \"unix:/run/a.sock\": a unix socket file is made"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_file_is_the_default_profile() {
        let p = parse("").unwrap();
        assert_eq!(p.base, Profile::Default);
        assert_eq!(p.filter_policy(), Policy::new(Profile::Default));
    }

    #[test]
    fn bad_input_names_the_place_and_the_key() {
        let cases = [
            ("[fs]\nread = [\"/usr\"\n", "t.toml:2:"),
            ("colour = 1\n", "t.toml:1:1: colour: unknown key"),
            ("[fs]\nreed = []\n", "t.toml:2:1: fs.reed: unknown key"),
            (
                "[fs]\nread = \"/usr\"\n",
                "t.toml:2:8: fs.read: expected a list of strings, found string",
            ),
            (
                "[fs]\nread = [\"usr\"]\n",
                "t.toml:2:9: fs.read: \"usr\": paths are absolute",
            ),
            (
                "[fs]\nread = [\"/usr/../etc\"]\n",
                "fs.read: \"/usr/../etc\": no '.', '..'",
            ),
            (
                "[fs]\nexec = [\"/usr/bin/py*\"]\n",
                "fs.exec: \"/usr/bin/py*\": patterns are taken in [fs].read and [fs].write",
            ),
            (
                "[fs]\nread = [\"/home/*/../x*\"]\n",
                "fs.read: \"/home/*/../x*\": no empty, '.' or '..' component",
            ),
            (
                "[fs]\ndeny = [\"/etc/[ab\"]\n",
                "t.toml:2:9: fs.deny: \"/etc/[ab\": a '[' class is not closed",
            ),
            ("[fs]\ndeny = [\"etc\"]\n", "fs.deny: \"etc\": paths are absolute"),
            (
                "[net]\nconnect = [\"tcp:10.1.0.0/8:443\"]\n",
                "net.connect: \"tcp:10.1.0.0/8:443\": 10.1.0.0/8: bits are set beyond the /8 prefix",
            ),
            (
                "[net]\nconnect = [\"tcp:::1:443\"]\n",
                "IPv6 addresses are written in brackets",
            ),
            ("[net]\nconnect = [\"tcp:*:*\"]\n", "any address and any port"),
            ("[net]\nconnect = [\"unix:run/x\"]\n", "paths are absolute"),
            (
                "[net]\nbind = [\"unix:/run/x.sock\"]\n",
                "net.bind: \"unix:/run/x.sock\": a unix socket file is made by a bind",
            ),
            (
                "[exec]\nallow = [{ path = \"/bin/sh\" }]\n",
                "exec.allow: a pinned program is { path",
            ),
            (
                "[exec]\nallow = [{ path = \"/bin/sh\", sha256 = \"ab\" }]\n",
                "exec.allow.sha256: \"ab\": a sha256 is 64 hexadecimal digits",
            ),
            (
                "[exec]\nallow = [{ path = \"/bin/sh\", sha = \"ab\" }]\n",
                "exec.allow.sha: unknown key",
            ),
            ("[net]\nconnect = [\"udp:*:*\"]\n", "every UDP destination"),
            ("[net]\nsend = [\"udp:*:53\"]\n", "written in [net].connect"),
            ("[net]\nbind = [\"udp:*:*\"]\n", "every UDP destination"),
            (
                "[net]\nconnect = [\"tcp:*:99999\"]\n",
                "the port is a number from 0 to 65535",
            ),
            (
                "[syscalls]\ndeny = [\"no_such_call\"]\n",
                "t.toml:2:9: syscalls.deny: \"no_such_call\" is not an x86_64 system call",
            ),
            (
                "[syscalls]\nerrno = { uname = \"EWHAT\" }\n",
                "syscalls.errno.uname: \"EWHAT\": expected an errno name",
            ),
            (
                "[syscalls]\ndeny = [\"uname\"]\nerrno = { uname = \"ENOSYS\" }\n",
                "t.toml:3:11: syscalls.errno.uname: contradicts syscalls.deny at 2:9",
            ),
            ("base = \"lax\"\n", "t.toml:1:8: base: unknown profile"),
            ("[limits]\npids = 0\n", "limits.pids: expected a whole number from 1"),
            ("[limits]\npids = -3\n", "limits.pids: expected a whole number"),
            ("[process]\nmdwe = \"yes\"\n", "process.mdwe: expected true or false"),
            ("[exec]\nallow = [\"/bin/sh@sha256:00\"]\n", "pinned by hash"),
            ("fs = 3\n", "t.toml:1:6: fs: expected a table, found integer"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn positions_count_lines_and_columns_from_one() {
        let starts = line_starts("ab\ncd\n\nef");
        assert_eq!(position_in(&starts, 0), Position { line: 1, column: 1 });
        assert_eq!(position_in(&starts, 4), Position { line: 2, column: 2 });
        assert_eq!(position_in(&starts, 6), Position { line: 3, column: 1 });
        assert_eq!(position_in(&starts, 8), Position { line: 4, column: 2 });
        assert_eq!(position_in(&starts, 1000).line, 4);
    }

    #[test]
    fn built_in_profiles_read_back_as_themselves() {
        for profile in Profile::ALL {
            let text = profile_as_file(profile);
            let p = PolicyFile::parse("builtin", &text).unwrap();
            assert_eq!(p.filter_policy(), Policy::new(profile), "{text}");
        }
    }

    fn corpus() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_file");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        assert!(!out.is_empty());
        out
    }

    /// Replays fuzz/corpus/policy_file (the examples of docs/policy.md):
    /// each is accepted and compiles to a filter.
    #[test]
    fn fuzz_corpus_replays() {
        for text in corpus() {
            let p = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(crate::bpf::compile(&p.filter_policy()).len() <= crate::bpf::MAX_INSTRUCTIONS);
        }
    }

    /// Property: any mutation of an accepted file (bytes dropped, doubled,
    /// replaced) is accepted or refused with one line, never a panic; what
    /// is accepted compiles, and every rule it shows has a place in it.
    #[test]
    fn mutated_files_are_accepted_or_refused_in_one_line() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"[]{}=\",.:*/\\\n #0123456789abcdefxyz_-\t";
        for text in corpus() {
            for _ in 0..400 {
                let mut bytes = text.clone().into_bytes();
                for _ in 0..1 + next() % 4 {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = (next() % bytes.len() as u64) as usize;
                    match next() % 3 {
                        0 => {
                            bytes.remove(at);
                        }
                        1 => bytes.insert(at, bytes[at]),
                        _ => bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                    }
                }
                let mutated = String::from_utf8_lossy(&bytes);
                match parse(&mutated) {
                    Ok(p) => {
                        let _ = crate::bpf::compile(&p.filter_policy());
                        let lines = mutated.lines().count();
                        for rule in p.rules() {
                            assert!(rule.at.line <= lines, "{rule:?} in\n{mutated}");
                        }
                    }
                    Err(e) => assert_eq!(e.lines().count(), 1, "{e}"),
                }
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A few hostile shapes: deep nesting, huge numbers, odd bytes.
        let deep = format!("a = {}{}", "[".repeat(2000), "]".repeat(2000));
        for text in [
            deep.as_str(),
            "[limits]\npids = 99999999999999999999999999\n",
            "\u{0}\u{ffff}",
            "[fs]\nread = [\"/\u{0}\"]\n",
            "[[fs]]\nread=[]\n",
            "[syscalls.errno]\n\"\" = \"EPERM\"\n",
        ] {
            let _ = parse(text);
        }
    }
}
