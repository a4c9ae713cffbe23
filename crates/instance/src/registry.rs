//! The running instances of one user, by name.
//!
//! Each running instance's supervisor listens on an abstract Unix socket
//! named `xvisor/UID/NAME`. The kernel makes the name unique (a second
//! bind fails), and frees it when the supervisor's socket closes — at its
//! exit or its death by SIGKILL — so there is nothing to clean up, ever,
//! and a confined supervisor needs no right to remove files. Listing reads
//! the kernel's table of Unix sockets (`/proc/net/unix`) for the caller's
//! prefix: other users' instances are not shown.
//!
//! A name is only a claim: anyone who shares the network namespace may
//! bind one first — a guest run with the host's network (`--net host`)
//! too, since Landlock scopes connecting to abstract sockets, not binding
//! them — and a guest's uid may be the caller's (rootless: its root is the
//! caller) or 0 (a root caller's). So each end checks who holds the other
//! end ([`check_peer`]): a process of exactly the caller's uid (not "the
//! caller's or root's"), in the caller's pid namespace and, seen from a
//! client, its user namespace. Every guest runs in a pid and user
//! namespace of its own below the supervisor's, which it cannot leave, so
//! none passes; a name held by anything else is not listed, not asked,
//! handed nothing, and a supervisor that finds its name so taken says so.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process;
use xvisor_sys::socket;

use crate::exec::{ExecRequest, MAX_EXEC_REQUEST};
use std::os::fd::{BorrowedFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("an instance named {0:?} is already running")]
    NameInUse(String),
    #[error("no running instance is named {0:?}")]
    NoSuchInstance(String),
    #[error("{0:?} is not a valid instance name: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName(String),
    #[error("the name {name:?} is taken by {holder}, not by an xvisor instance of yours")]
    NameTaken { name: String, holder: String },
    #[error("instance {name:?}: its name is held by {holder}, not an xvisor instance of yours: refused")]
    NotOurs { name: String, holder: String },
    #[error("cannot {action}: {error}")]
    Io { action: &'static str, error: io::Error },
    #[error("instance {name:?} did not answer: {error}")]
    NoAnswer { name: String, error: io::Error },
    #[error("instance {name:?}: {message}")]
    Refused { name: String, message: String },
    #[error("a pool named {0:?} is already running")]
    PoolInUse(String),
    #[error("no running pool is named {0:?}")]
    NoSuchPool(String),
    #[error("pool {name:?}: its name is held by {holder}, not an xvisor pool of yours: refused")]
    PoolNotOurs { name: String, holder: String },
}

/// How long a client waits for a supervisor's answer.
const ANSWER_PATIENCE: Duration = Duration::from_secs(5);

/// One user's running instances.
#[derive(Debug, Clone)]
pub struct Registry {
    uid: u32,
}

impl Registry {
    /// The calling user's (effective uid's) registry.
    pub fn for_caller() -> Self {
        Self {
            uid: process::geteuid(),
        }
    }

    fn prefix(&self) -> String {
        format!("xvisor/{}/", self.uid)
    }

    fn abstract_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    fn address(&self, name: &str) -> Result<SocketAddr, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::InvalidName(name.to_string()));
        }
        SocketAddr::from_abstract_name(self.abstract_name(name)).map_err(|error| RegistryError::Io {
            action: "name the control socket",
            error,
        })
    }

    /// Registers a new instance under `name`: its control socket,
    /// listening, non-blocking.
    pub fn claim(&self, name: &str) -> Result<Claim, RegistryError> {
        let address = self.address(name)?;
        match UnixListener::bind_addr(&address) {
            Ok(listener) => {
                listener.set_nonblocking(true).map_err(|error| RegistryError::Io {
                    action: "set up the control socket",
                    error,
                })?;
                Ok(Claim {
                    listener,
                    uid: self.uid,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                // Ours (a second run under the same name), or taken by
                // something else — a guest can bind a name first.
                let holder = match UnixStream::connect_addr(&address) {
                    Ok(s) => match check_peer(s.as_fd(), self.uid, Check::Supervisor(&self.abstract_name(name))) {
                        Ok(()) => return Err(RegistryError::NameInUse(name.to_string())),
                        Err(holder) => holder,
                    },
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => "a socket that is not listening".into(),
                    Err(e) => format!("a socket that cannot be reached ({e})"),
                };
                Err(RegistryError::NameTaken {
                    name: name.to_string(),
                    holder,
                })
            }
            Err(error) => Err(RegistryError::Io {
                action: "create the control socket",
                error,
            }),
        }
    }

    /// The names of the caller's running instances, sorted.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        let table = std::fs::read_to_string("/proc/net/unix").map_err(|error| RegistryError::Io {
            action: "read /proc/net/unix",
            error,
        })?;
        Ok(listening_names(&table, &self.prefix()))
    }

    /// A connection to instance `name`'s control socket, whose listener is
    /// checked to be a supervisor of the caller's ([`check_peer`]): a name
    /// taken by another user or by a guest is never talked to.
    fn connect(&self, name: &str) -> Result<UnixStream, RegistryError> {
        let address = self.address(name)?;
        let stream = match UnixStream::connect_addr(&address) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(RegistryError::NoSuchInstance(name.to_string()))
            }
            Err(error) => {
                return Err(RegistryError::NoAnswer {
                    name: name.to_string(),
                    error,
                })
            }
        };
        match check_peer(stream.as_fd(), self.uid, Check::Supervisor(&self.abstract_name(name))) {
            Ok(()) => Ok(stream),
            Err(holder) => Err(RegistryError::NotOurs {
                name: name.to_string(),
                holder,
            }),
        }
    }

    /// Asks instance `name` one request; returns its answer's lines.
    pub fn ask(&self, name: &str, request: &Request) -> Result<Vec<String>, RegistryError> {
        let stream = self.connect(name)?;
        self.exchange(name, stream, request)
    }

    /// One request and its answer over a connection made by
    /// [`Registry::connect`].
    ///
    /// A supervisor that ends while the connection waits to be accepted
    /// closes its listener, and the kernel resets every connection still
    /// queued there: a reset (or an end before any answer) from a name that
    /// no longer listens is the instance's end, seen between the connect
    /// and the answer, not a failure to answer.
    fn exchange(&self, name: &str, stream: UnixStream, request: &Request) -> Result<Vec<String>, RegistryError> {
        let no_answer = |error: io::Error| self.no_answer(name, error);
        stream.set_read_timeout(Some(ANSWER_PATIENCE)).map_err(no_answer)?;
        stream.set_write_timeout(Some(ANSWER_PATIENCE)).map_err(no_answer)?;
        (&stream)
            .write_all(format!("{}\n", request.encode()).as_bytes())
            .map_err(no_answer)?;
        let mut lines = Vec::new();
        for line in BufReader::new(&stream).lines() {
            lines.push(line.map_err(no_answer)?);
        }
        match lines.first().map(String::as_str) {
            Some("ok") => Ok(lines.split_off(1)),
            Some(other) => Err(RegistryError::Refused {
                name: name.to_string(),
                message: other.strip_prefix("error: ").unwrap_or(other).to_string(),
            }),
            None => Err(no_answer(io::Error::from(io::ErrorKind::UnexpectedEof))),
        }
    }
}

impl Registry {
    /// What a failed exchange with `name` means: its end, when the name no
    /// longer listens; else a supervisor that did not answer.
    fn no_answer(&self, name: &str, error: io::Error) -> RegistryError {
        match self.names() {
            Ok(names) if !names.iter().any(|n| n == name) => RegistryError::NoSuchInstance(name.to_string()),
            _ => RegistryError::NoAnswer {
                name: name.to_string(),
                error,
            },
        }
    }

    /// Asks instance `name` to start a second process with these
    /// descriptors (stdin, stdout, stderr, then `request.preserve_fds`
    /// more). The session that answers stays open until the process ends.
    pub fn exec(
        &self,
        name: &str,
        request: &ExecRequest,
        fds: &[BorrowedFd<'_>],
    ) -> Result<ExecSession, RegistryError> {
        let no_answer = |error: io::Error| self.no_answer(name, error);
        let stream = self.connect(name)?;
        let payload = request.encode();
        if payload.len() > MAX_EXEC_REQUEST {
            return Err(RegistryError::Refused {
                name: name.to_string(),
                message: format!("exec: the command and environment exceed {MAX_EXEC_REQUEST} bytes"),
            });
        }
        let mut message = format!("{}\n", Request::Exec { length: payload.len() }.encode()).into_bytes();
        message.extend_from_slice(&payload);
        stream.set_write_timeout(Some(ANSWER_PATIENCE)).map_err(no_answer)?;
        socket::send_fds(stream.as_fd(), &message, fds).map_err(no_answer)?;
        Ok(ExecSession {
            name: name.to_string(),
            stream,
            pending: Vec::new(),
            descriptors: Vec::new(),
        })
    }
}

/// What an exec session reports, in this order: the terminal (with a tty),
/// the start, the end — or a failure, at any point.
#[derive(Debug)]
pub enum ExecEvent {
    /// The master side of the process's terminal.
    Terminal(OwnedFd),
    /// The process runs, as this host pid.
    Started { host_pid: i32 },
    /// The process ended with this raw wait status.
    Exited { wait_status: i32 },
    /// The process could not be started (or the instance ended first).
    Failed(String),
}

/// A client's side of an exec session: events from the supervisor, and
/// signals for the process to it. Dropping it ends the session (the
/// process runs on, as a member of the instance).
#[derive(Debug)]
pub struct ExecSession {
    name: String,
    stream: UnixStream,
    pending: Vec<u8>,
    descriptors: Vec<OwnedFd>,
}

impl ExecSession {
    /// The session's socket, to wait on it beside other things.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// The next event: blocks until one arrives.
    pub fn next_event(&mut self) -> Result<ExecEvent, RegistryError> {
        loop {
            if let Some(at) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line[..at]).into_owned();
                return self.event_of(&line);
            }
            if self.pending.len() > 64 * 1024 {
                return Err(self.broken("an overlong line"));
            }
            let mut buf = [0u8; 4096];
            let (n, fds) =
                socket::recv_fds(self.stream.as_fd(), &mut buf).map_err(|error| RegistryError::NoAnswer {
                    name: self.name.clone(),
                    error,
                })?;
            self.descriptors.extend(fds);
            if n == 0 {
                return Err(self.broken("the end of the session"));
            }
            self.pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }

    /// Whether an event is already read and waiting (so a caller polling
    /// [`ExecSession::as_fd`] does not wait for it).
    pub fn has_buffered_event(&self) -> bool {
        self.pending.contains(&b'\n')
    }

    fn broken(&self, what: &str) -> RegistryError {
        RegistryError::Refused {
            name: self.name.clone(),
            message: format!("exec session broken: {what}"),
        }
    }

    fn event_of(&mut self, line: &str) -> Result<ExecEvent, RegistryError> {
        let number = |text: &str| text.trim().parse::<i32>().ok();
        match line.split_once(' ') {
            None if line == "terminal" => match self.descriptors.pop() {
                Some(fd) => Ok(ExecEvent::Terminal(fd)),
                None => Err(self.broken("a terminal without its descriptor")),
            },
            Some(("started", pid)) => number(pid)
                .map(|host_pid| ExecEvent::Started { host_pid })
                .ok_or_else(|| self.broken("a bad pid")),
            Some(("exited", status)) => number(status)
                .map(|wait_status| ExecEvent::Exited { wait_status })
                .ok_or_else(|| self.broken("a bad status")),
            Some(("error:", message)) => Ok(ExecEvent::Failed(message.to_string())),
            _ => Err(self.broken("an unknown line")),
        }
    }

    /// Sends `signal` to the process (once it runs; the instance's
    /// supervisor sends it, by the pid its monitor holds).
    pub fn signal(&self, signal: i32) -> Result<(), RegistryError> {
        (&self.stream)
            .write_all(format!("signal {signal}\n").as_bytes())
            .map_err(|error| RegistryError::NoAnswer {
                name: self.name.clone(),
                error,
            })
    }
}

/// A listening socket's flag in `/proc/net/unix` (`__SO_ACCEPTCON`).
const LISTENING: u32 = 0x0001_0000;

/// The instance names of listening sockets in `/proc/net/unix` text whose
/// abstract name starts with `prefix`, sorted, without duplicates.
fn listening_names(table: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            let path = fields.get(7)?;
            let name = path.strip_prefix('@')?.strip_prefix(prefix)?;
            (flags & LISTENING != 0 && valid_name(name)).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Warm pools (`xvisor pool`): each pool process listens on the abstract
/// socket `xvisor-pool/UID/NAME`, under the same rules as an instance's
/// control socket: freed by the kernel at the pool's end, however it
/// comes; each end checks the other ([`check_peer`]).
impl Registry {
    fn pool_prefix(&self) -> String {
        format!("xvisor-pool/{}/", self.uid)
    }

    fn pool_address(&self, name: &str) -> Result<SocketAddr, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::InvalidName(name.to_string()));
        }
        SocketAddr::from_abstract_name(format!("{}{name}", self.pool_prefix())).map_err(|error| RegistryError::Io {
            action: "name the pool's socket",
            error,
        })
    }

    /// Registers pool `name`: its socket, listening (blocking).
    pub fn claim_pool(&self, name: &str) -> Result<PoolClaim, RegistryError> {
        let address = self.pool_address(name)?;
        match UnixListener::bind_addr(&address) {
            Ok(listener) => Ok(PoolClaim {
                listener,
                uid: self.uid,
            }),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => match self.connect_pool(name) {
                Ok(_) => Err(RegistryError::PoolInUse(name.to_string())),
                Err(RegistryError::PoolNotOurs { holder, .. }) => Err(RegistryError::NameTaken {
                    name: name.to_string(),
                    holder,
                }),
                Err(_) => Err(RegistryError::PoolInUse(name.to_string())),
            },
            Err(error) => Err(RegistryError::Io {
                action: "create the pool's socket",
                error,
            }),
        }
    }

    /// A connection to pool `name`, whose listener is checked to be a
    /// process of the caller's outside every instance.
    pub fn connect_pool(&self, name: &str) -> Result<UnixStream, RegistryError> {
        let address = self.pool_address(name)?;
        let stream = match UnixStream::connect_addr(&address) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => {
                return Err(RegistryError::NoSuchPool(name.to_string()))
            }
            Err(error) => {
                return Err(RegistryError::Io {
                    action: "reach the pool",
                    error,
                })
            }
        };
        let abstract_name = format!("{}{name}", self.pool_prefix());
        match check_peer(stream.as_fd(), self.uid, Check::Supervisor(&abstract_name)) {
            Ok(()) => Ok(stream),
            Err(holder) => Err(RegistryError::PoolNotOurs {
                name: name.to_string(),
                holder,
            }),
        }
    }

    /// The names of the caller's running pools, sorted.
    pub fn pool_names(&self) -> Result<Vec<String>, RegistryError> {
        let table = std::fs::read_to_string("/proc/net/unix").map_err(|error| RegistryError::Io {
            action: "read /proc/net/unix",
            error,
        })?;
        Ok(listening_names(&table, &self.pool_prefix()))
    }
}

/// A pool's place in the registry, held by the pool process.
#[derive(Debug)]
pub struct PoolClaim {
    listener: UnixListener,
    uid: u32,
}

impl PoolClaim {
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts one client; `Err` names what held the other end of a
    /// connection refused (another user's process, a guest).
    pub fn accept(&self) -> io::Result<Result<UnixStream, String>> {
        let (stream, _) = self.listener.accept()?;
        Ok(check_peer(stream.as_fd(), self.uid, Check::Client).map(|()| stream))
    }
}

/// An instance's place in the registry, held by its supervisor for its
/// whole life: the listening control socket.
#[derive(Debug)]
pub struct Claim {
    listener: UnixListener,
    uid: u32,
}

impl Claim {
    /// The control socket, non-blocking.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts one waiting client, if any, and only if it is a process of
    /// the same user on the caller's side of every instance
    /// ([`check_peer`]); others are hung up on. Root is not let in to
    /// other users' instances: a root caller's guest is uid 0 too.
    pub fn accept(&self) -> Option<UnixStream> {
        let (stream, _) = self.listener.accept().ok()?;
        check_peer(stream.as_fd(), self.uid, Check::Client)
            .ok()
            .map(|()| stream)
    }
}

/// Which end checks the other: a client checks the supervisor behind a
/// name; a supervisor checks a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check<'a> {
    /// The one listening under this abstract name.
    Supervisor(&'a str),
    Client,
}

/// Whether the process at the other end of the Unix socket `sock` is one
/// of `uid`'s outside every instance; if not, what holds it, for a
/// message.
///
/// - Its uid must be exactly `uid` (SO_PEERCRED, in the caller's user
///   namespace): a root caller's guest is uid 0, a rootless caller's is
///   the caller, so this alone tells other users apart, not guests.
/// - It must be in the caller's pid namespace: `/proc/PID/status`, read
///   through the caller's own /proc, lists one `NSpid` entry for a process
///   of that namespace and more for one below it. Every guest process runs
///   in its instance's pid namespace (created with the instance, never
///   joined) or deeper, and cannot leave it. This needs no right over the
///   process, so a confined supervisor, whose capabilities are gone, can
///   check a root client with it.
/// - A client also compares the supervisor's user namespace with its own
///   (`/proc/PID/ns/user`; a supervisor never leaves its caller's, a guest
///   never enters it): a second wall, readable by a client since the
///   supervisor is of its own uid and holds no capability it lacks.
///
/// The pid must still name the process the kernel recorded — for a client
/// that is whoever called `listen`, possibly long ago, and a guest could
/// let that process end and wait for its host pid to go to one of the
/// caller's own processes. With a pidfd taken from the socket itself
/// (SO_PEERPIDFD, Linux 6.5) the process is pinned: if it is still alive
/// after /proc was read, the pid was its own throughout. Without one
/// (older kernels), a supervisor must be seen to hold the very listening
/// socket (`/proc/PID/fd`); a client's connection is checked as it is
/// accepted, within moments of its connect, too soon for a pid to come
/// round again, and a confined supervisor could not open a pidfd anyway.
fn check_peer(sock: BorrowedFd<'_>, uid: u32, check: Check<'_>) -> Result<(), String> {
    let cred = socket::peer_credentials(sock).map_err(|e| format!("a socket whose holder cannot be known ({e})"))?;
    if cred.uid != uid {
        return Err(format!("a process of uid {}", cred.uid));
    }
    if cred.pid <= 0 {
        return Err("a process outside this pid namespace".into());
    }
    let pidfd = match socket::peer_pidfd(sock) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::ENOPROTOOPT) => None,
        // Before Linux 6.16 the kernel gives no pidfd of a process that is
        // gone.
        Err(_) => return Err("a process that has ended".into()),
    };
    let pid = cred.pid;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let levels = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|ids| ids.split_whitespace().collect::<Vec<_>>());
    match levels.as_deref() {
        Some([own]) if own.parse() == Ok(pid) => {}
        Some([]) | None => return Err("a process that has ended".into()),
        Some(_) => return Err("a process of another pid namespace (an instance's guest)".into()),
    }
    if matches!(check, Check::Supervisor(_)) {
        let same = namespace(&format!("/proc/{pid}/ns/user"))
            .and_then(|theirs| namespace("/proc/self/ns/user").map(|ours| theirs == ours))
            .map_err(|e| format!("a process whose namespaces cannot be read ({e})"))?;
        if !same {
            return Err("a process of another user namespace (an instance's guest)".into());
        }
    }
    match pidfd {
        Some(fd) => {
            let mut watch = [Watch::new(fd.as_fd(), ready::IN)];
            let ended = event::poll(&mut watch, 0).map_or(true, |_| watch[0].ready != 0);
            if ended {
                return Err("a process that has ended".into());
            }
        }
        None => {
            if let Check::Supervisor(name) = check {
                if !holds_listener(pid, name) {
                    return Err("a process that does not hold the name's socket".into());
                }
            }
        }
    }
    Ok(())
}

/// A namespace's identity: the device and inode of its `/proc` link.
fn namespace(link: &str) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(link).map(|m| (m.dev(), m.ino()))
}

/// Whether process `pid` holds the socket listening under abstract name
/// `name` (found in `/proc/net/unix`) among its descriptors.
fn holds_listener(pid: i32, name: &str) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let Some(inode) = listener_inode(&table, name) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()))
    })
}

/// The inode of the listening socket bound to abstract name `name`, in
/// `/proc/net/unix` text.
fn listener_inode(table: &str, name: &str) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
        let path = fields.get(7)?.strip_prefix('@')?;
        (flags & LISTENING != 0 && path == name)
            .then(|| fields.get(6)?.parse().ok())
            .flatten()
    })
}

/// Whether `name` may name an instance: 1 to 64 letters, digits, '-', '_'
/// or '.', not starting with '.'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
}

/// What a client may ask a supervisor over its control socket: one line
/// each way, then the supervisor closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `key\tvalue` lines about the instance.
    Info,
    /// One line per task (see [`crate::status::TaskRow`]).
    Tasks,
    /// Send this signal (SIGKILL ends the instance; others go to the guest
    /// program's main process).
    Signal(i32),
    /// Start the guest of an instance created and waiting (an OCI
    /// runtime's `start`); the answer comes once it runs or failed to.
    Start,
    /// Start a second process in the running instance: an encoded
    /// [`ExecRequest`] of this many bytes follows the line, with the
    /// process's descriptors (stdio, then preserved ones) attached. The
    /// connection stays open as the exec session (see [`ExecSession`]).
    Exec { length: usize },
}

impl Request {
    pub fn encode(&self) -> String {
        match self {
            Self::Info => "info".into(),
            Self::Tasks => "tasks".into(),
            Self::Signal(n) => format!("signal {n}"),
            Self::Start => "start".into(),
            Self::Exec { length } => format!("exec {length}"),
        }
    }

    pub fn decode(line: &str) -> Option<Self> {
        match line.trim_end().split_once(' ') {
            None => match line.trim_end() {
                "info" => Some(Self::Info),
                "tasks" => Some(Self::Tasks),
                "start" => Some(Self::Start),
                _ => None,
            },
            Some(("signal", n)) => n
                .parse()
                .ok()
                .filter(|n| (1..=xvisor_sys::signal::MAX_SIGNAL).contains(n))
                .map(Self::Signal),
            Some(("exec", n)) => n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_EXEC_REQUEST).contains(n))
                .map(|length| Self::Exec { length }),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_junk_is_refused() {
        for r in [
            Request::Info,
            Request::Tasks,
            Request::Signal(9),
            Request::Signal(64),
            Request::Start,
            Request::Exec { length: 12 },
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r.clone()));
        }
        for junk in [
            "",
            "signal",
            "signal 0",
            "signal 65",
            "signal x",
            "tasks now",
            "INFO",
            "signal -9",
            "exec 0",
            "exec 99999999999",
        ] {
            assert_eq!(Request::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn names_are_claimed_once_and_vanish_with_their_holder() {
        let name = format!("registry-test-{}", std::process::id());
        let registry = Registry::for_caller();
        let claim = registry.claim(&name).unwrap();
        assert!(matches!(registry.claim(&name), Err(RegistryError::NameInUse(_))));
        assert!(registry.names().unwrap().contains(&name));
        drop(claim);
        assert!(!registry.names().unwrap().contains(&name));
        assert!(matches!(
            registry.ask(&name, &Request::Info),
            Err(RegistryError::NoSuchInstance(_))
        ));
        drop(registry.claim(&name).unwrap());
    }

    #[test]
    fn an_instance_ending_before_it_answers_is_ended_not_silent() {
        let name = format!("registry-end-{}", std::process::id());
        let registry = Registry::for_caller();
        let claim = registry.claim(&name).unwrap();
        // Queued, never accepted: closing the listener resets it.
        let queued = registry.connect(&name).unwrap();
        drop(claim);
        assert!(matches!(
            registry.exchange(&name, queued, &Request::Info),
            Err(RegistryError::NoSuchInstance(_))
        ));
    }

    #[test]
    fn the_socket_table_is_read_for_this_user_only() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 1 @xvisor/0/web\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 2 @xvisor/0/web\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 3 @xvisor/1000/other\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4 @xvisor/0/../x\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 5 /run/xvisor/0/db\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 6 @xvisor/0/db\n\
            garbage\n";
        assert_eq!(
            listening_names(table, "xvisor/0/"),
            vec!["db".to_string(), "web".to_string()]
        );
    }

    #[test]
    fn the_listener_of_a_name_is_found_by_its_flag() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 11 @xvisor/0/web\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 12 @xvisor/0/web\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 13 @xvisor/0/webs\n";
        assert_eq!(listener_inode(table, "xvisor/0/web"), Some(12));
        assert_eq!(listener_inode(table, "xvisor/0/db"), None);
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", ".hidden", "a/b", "..", "x y", &"n".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("xv-1234-abcd"));
    }
}
