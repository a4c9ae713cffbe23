//! systemd's service manager as the owner of the cgroup tree: on a systemd
//! host, a process may not create or move cgroups wherever it likes; it
//! asks the manager for a *transient scope* with delegation, which then
//! belongs to it (`Delegate=yes`). This module speaks just enough D-Bus to
//! do that over the manager's private socket (`/run/systemd/private` for
//! the system manager, `$XDG_RUNTIME_DIR/systemd/private` for a user's):
//! authenticate with the kernel's peer credentials, call
//! `StartTransientUnit`, and wait for the job's `JobRemoved` signal.
//!
//! The private socket needs no message bus (no dbus-daemon) and answers
//! only its owner (root, or the user whose manager it is). Everything read
//! from it is decoded defensively ([`wire`]): lengths are bounded, nothing
//! panics on a malformed message.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the manager may take to create the scope and move the
/// processes into it.
const JOB_PATIENCE: Duration = Duration::from_secs(10);

/// The longest unit name systemd accepts.
pub const UNIT_NAME_MAX: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot reach systemd at {path}: {error}")]
    Connect { path: PathBuf, error: io::Error },
    #[error("systemd at {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("systemd at {path} refused authentication as uid {uid}")]
    Rejected { path: PathBuf, uid: u32 },
    #[error("systemd at {path} sent a malformed message: {why}")]
    Malformed { path: PathBuf, why: &'static str },
    #[error("systemd refused to start {unit}: {message} ({name})")]
    Refused {
        unit: String,
        name: String,
        message: String,
    },
    #[error("systemd's job for {unit} ended with '{result}'")]
    JobFailed { unit: String, result: String },
    #[error("systemd did not finish starting {unit} within {} s", JOB_PATIENCE.as_secs())]
    Timeout { unit: String },
    #[error("{unit} is not a unit name systemd accepts")]
    BadName { unit: String },
}

/// Which service manager to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// The system's manager (pid 1), for root.
    System,
    /// The calling user's own manager (`user@UID.service`), for everyone else.
    User { runtime_dir: PathBuf },
}

impl Manager {
    /// The manager a process of `uid` asks: the system's for root, the
    /// user's own otherwise (`$XDG_RUNTIME_DIR`, else `/run/user/UID`).
    pub fn for_uid(uid: u32) -> Self {
        if uid == 0 {
            return Self::System;
        }
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
        Self::User { runtime_dir }
    }

    pub fn socket(&self) -> PathBuf {
        match self {
            Self::System => PathBuf::from("/run/systemd/private"),
            Self::User { runtime_dir } => runtime_dir.join("systemd/private"),
        }
    }

    /// Whether this host runs systemd as its manager: the way systemd's own
    /// tools decide it (`sd_booted`), plus the socket we would talk to.
    pub fn is_running(&self) -> bool {
        Path::new("/run/systemd/system").is_dir() && self.socket().exists()
    }
}

/// A transient scope to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `NAME.scope`.
    pub unit: String,
    /// The slice it goes in; `None`: the manager's default.
    pub slice: Option<String>,
    pub description: String,
    /// The processes that move into it.
    pub pids: Vec<u32>,
}

/// Whether `name` is a unit name of type `suffix` that systemd accepts:
/// letters, digits and `:-_.\@`, at most [`UNIT_NAME_MAX`] bytes.
pub fn valid_unit_name(name: &str, suffix: &str) -> bool {
    let Some(stem) = name.strip_suffix(suffix) else {
        return false;
    };
    !stem.is_empty()
        && name.len() <= UNIT_NAME_MAX
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// Asks `manager` for `scope` with delegation (the scope's subtree is
/// ours to divide), and returns once the processes are in it.
pub fn start_delegated_scope(manager: &Manager, scope: &Scope) -> Result<(), SystemdError> {
    if !valid_unit_name(&scope.unit, ".scope") || scope.slice.as_deref().is_some_and(|s| !valid_unit_name(s, ".slice"))
    {
        return Err(SystemdError::BadName {
            unit: scope.unit.clone(),
        });
    }
    let path = manager.socket();
    let mut conn = Connection::open(&path)?;
    let call = wire::start_transient_scope(1, scope);
    conn.send(&call)?;
    let deadline = Instant::now() + JOB_PATIENCE;
    let mut job: Option<String> = None;
    let mut removed: Vec<(String, String)> = Vec::new();
    loop {
        if let Some(job) = &job {
            if let Some((_, result)) = removed.iter().find(|(j, _)| j == job) {
                return if result == "done" {
                    Ok(())
                } else {
                    Err(SystemdError::JobFailed {
                        unit: scope.unit.clone(),
                        result: result.clone(),
                    })
                };
            }
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(SystemdError::Timeout {
                unit: scope.unit.clone(),
            });
        };
        let message = conn.receive(left)?.ok_or_else(|| SystemdError::Timeout {
            unit: scope.unit.clone(),
        })?;
        match message.kind {
            wire::METHOD_RETURN if message.reply_serial == Some(1) => {
                job = Some(conn.body(|r| r.string(), &message, "o")?);
            }
            wire::ERROR if message.reply_serial == Some(1) => {
                let text = if message.signature.starts_with('s') {
                    conn.body(|r| r.string(), &message, &message.signature)?
                } else {
                    String::new()
                };
                return Err(SystemdError::Refused {
                    unit: scope.unit.clone(),
                    name: message.error_name.clone().unwrap_or_default(),
                    message: text,
                });
            }
            wire::SIGNAL if message.member.as_deref() == Some("JobRemoved") => {
                let (job_path, result) = conn.body(
                    |r| {
                        r.u32()?;
                        let job = r.string()?;
                        r.string()?;
                        Ok((job, r.string()?))
                    },
                    &message,
                    "uoss",
                )?;
                removed.push((job_path, result));
            }
            _ => {}
        }
    }
}

/// One authenticated connection to a manager's private socket.
struct Connection {
    stream: UnixStream,
    path: PathBuf,
}

impl Connection {
    fn open(path: &Path) -> Result<Self, SystemdError> {
        let stream = UnixStream::connect(path).map_err(|error| SystemdError::Connect {
            path: path.to_path_buf(),
            error,
        })?;
        let mut conn = Self {
            stream,
            path: path.to_path_buf(),
        };
        conn.authenticate()?;
        Ok(conn)
    }

    fn io(&self, error: io::Error) -> SystemdError {
        SystemdError::Io {
            path: self.path.clone(),
            error,
        }
    }

    fn malformed(&self, why: &'static str) -> SystemdError {
        SystemdError::Malformed {
            path: self.path.clone(),
            why,
        }
    }

    /// The EXTERNAL mechanism: the server takes our uid from the socket's
    /// peer credentials and compares it with the one we claim. The three
    /// lines go in one write, and the first call only once the answer to
    /// the last but one has come, as sd-bus does it: systemd's server
    /// drops a call that reaches it in the same read as `BEGIN`.
    fn authenticate(&mut self) -> Result<(), SystemdError> {
        let uid = xvisor_sys::process::getuid();
        let hex: String = uid.to_string().bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n");
        self.stream
            .set_read_timeout(Some(JOB_PATIENCE))
            .map_err(|e| self.io(e))?;
        self.stream.write_all(hello.as_bytes()).map_err(|e| self.io(e))?;
        let ok = self.auth_line()?;
        if !ok.starts_with(b"OK ") {
            return Err(SystemdError::Rejected {
                path: self.path.clone(),
                uid,
            });
        }
        // AGREE_UNIX_FD, or ERROR where descriptors cannot pass: either
        // way the server has read BEGIN with it.
        self.auth_line().map(drop)
    }

    /// One line of the authentication exchange, read a byte at a time so
    /// that nothing after it is taken.
    fn auth_line(&mut self) -> Result<Vec<u8>, SystemdError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(self.malformed("an authentication line longer than 512 bytes"));
            }
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(self.malformed("the connection closed during authentication")),
                Ok(_) => line.push(byte[0]),
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(line)
    }

    fn send(&mut self, message: &[u8]) -> Result<(), SystemdError> {
        self.stream.write_all(message).map_err(|e| self.io(e))
    }

    /// The next message, or `None` when none came within `patience`.
    fn receive(&mut self, patience: Duration) -> Result<Option<wire::Message>, SystemdError> {
        self.stream
            .set_read_timeout(Some(patience.max(Duration::from_millis(1))))
            .map_err(|e| self.io(e))?;
        let mut fixed = [0u8; wire::FIXED_HEADER];
        match self.stream.read_exact(&mut fixed) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(None),
            Err(e) => return Err(self.io(e)),
        }
        let total = wire::message_length(&fixed).map_err(|why| self.malformed(why))?;
        let mut bytes = fixed.to_vec();
        bytes.resize(total, 0);
        // The rest of a message follows its start at once.
        self.stream
            .set_read_timeout(Some(JOB_PATIENCE))
            .map_err(|e| self.io(e))?;
        self.stream
            .read_exact(&mut bytes[wire::FIXED_HEADER..])
            .map_err(|e| self.io(e))?;
        wire::Message::parse(&bytes)
            .map(Some)
            .map_err(|why| self.malformed(why))
    }

    /// Decodes `message`'s body, which must have `signature`.
    fn body<T>(
        &self,
        decode: impl FnOnce(&mut wire::Reader) -> Result<T, &'static str>,
        message: &wire::Message,
        signature: &str,
    ) -> Result<T, SystemdError> {
        if message.signature != signature {
            return Err(self.malformed("a body of an unexpected signature"));
        }
        let mut reader = message.body_reader();
        decode(&mut reader).map_err(|why| self.malformed(why))
    }
}

/// The D-Bus wire format (marshalling), for the few messages used here.
pub mod wire {
    use super::Scope;

    pub const METHOD_CALL: u8 = 1;
    pub const METHOD_RETURN: u8 = 2;
    pub const ERROR: u8 = 3;
    pub const SIGNAL: u8 = 4;

    /// The fixed part of a header plus the length of its field array.
    pub const FIXED_HEADER: usize = 16;

    /// The largest message accepted from the manager (the protocol allows
    /// 128 MiB; the replies we wait for are a few hundred bytes).
    pub const MAX_MESSAGE: usize = 1 << 20;

    /// Nesting allowed in a signature (the protocol's own limit: 32 arrays
    /// and 32 structures).
    const MAX_DEPTH: usize = 64;

    const FIELD_PATH: u8 = 1;
    const FIELD_INTERFACE: u8 = 2;
    const FIELD_MEMBER: u8 = 3;
    const FIELD_ERROR_NAME: u8 = 4;
    const FIELD_REPLY_SERIAL: u8 = 5;
    const FIELD_DESTINATION: u8 = 6;
    const FIELD_SIGNATURE: u8 = 8;

    /// Builds a message; every value is aligned as the protocol requires,
    /// relative to the start of the header or of the body (both start at a
    /// multiple of 8).
    #[derive(Debug, Default)]
    pub struct Writer {
        pub buf: Vec<u8>,
    }

    impl Writer {
        fn pad(&mut self, align: usize) {
            while self.buf.len() % align != 0 {
                self.buf.push(0);
            }
        }

        pub fn byte(&mut self, v: u8) {
            self.buf.push(v);
        }

        pub fn u32(&mut self, v: u32) {
            self.pad(4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }

        pub fn boolean(&mut self, v: bool) {
            self.u32(u32::from(v));
        }

        /// A string or object path. Callers pass only what they built.
        pub fn string(&mut self, s: &str) {
            self.u32(s.len() as u32);
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(0);
        }

        pub fn signature(&mut self, s: &str) {
            self.buf.push(s.len() as u8);
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(0);
        }

        /// An array whose elements align to `align`: its byte length
        /// excludes the padding before the first element.
        pub fn array(&mut self, align: usize, elements: impl FnOnce(&mut Self)) {
            self.u32(0);
            let length_at = self.buf.len() - 4;
            self.pad(align);
            let start = self.buf.len();
            elements(self);
            let length = (self.buf.len() - start) as u32;
            self.buf[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
        }

        pub fn structure(&mut self) {
            self.pad(8);
        }
    }

    /// A whole message: the fixed header, the fields `fields` writes, the
    /// padding to 8, the body.
    fn message(kind: u8, flags: u8, serial: u32, body: &[u8], fields: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut h = Writer::default();
        h.byte(b'l');
        h.byte(kind);
        h.byte(flags);
        h.byte(1);
        h.u32(body.len() as u32);
        h.u32(serial);
        h.array(8, fields);
        h.pad(8);
        h.buf.extend_from_slice(body);
        h.buf
    }

    /// One header field: its code and a variant of signature `sig`.
    fn field(h: &mut Writer, code: u8, sig: &str, value: impl FnOnce(&mut Writer)) {
        h.structure();
        h.byte(code);
        h.signature(sig);
        value(h);
    }

    /// A method call of systemd's manager.
    fn manager_call(serial: u32, member: &str, signature: &str, body: &[u8]) -> Vec<u8> {
        message(METHOD_CALL, 0, serial, body, |h| {
            field(h, FIELD_PATH, "o", |h| h.string("/org/freedesktop/systemd1"));
            field(h, FIELD_INTERFACE, "s", |h| {
                h.string("org.freedesktop.systemd1.Manager")
            });
            field(h, FIELD_MEMBER, "s", |h| h.string(member));
            field(h, FIELD_DESTINATION, "s", |h| h.string("org.freedesktop.systemd1"));
            field(h, FIELD_SIGNATURE, "g", |h| h.signature(signature));
        })
    }

    /// `StartTransientUnit(name, "fail", properties, [])` for `scope`,
    /// delegated, collected once it ends whatever its result.
    pub fn start_transient_scope(serial: u32, scope: &Scope) -> Vec<u8> {
        let body = start_transient_scope_body(scope);
        manager_call(serial, "StartTransientUnit", "ssa(sv)a(sa(sv))", &body)
    }

    pub fn start_transient_scope_body(scope: &Scope) -> Vec<u8> {
        let mut b = Writer::default();
        b.string(&scope.unit);
        b.string("fail");
        let property = |b: &mut Writer, name: &str, sig: &str, value: &dyn Fn(&mut Writer)| {
            b.structure();
            b.string(name);
            b.signature(sig);
            value(b);
        };
        b.array(8, |b| {
            property(b, "Description", "s", &|b| b.string(&scope.description));
            if let Some(slice) = &scope.slice {
                property(b, "Slice", "s", &|b| b.string(slice));
            }
            property(b, "Delegate", "b", &|b| b.boolean(true));
            property(b, "CollectMode", "s", &|b| b.string("inactive-or-failed"));
            property(b, "PIDs", "au", &|b| {
                b.array(4, |b| {
                    for pid in &scope.pids {
                        b.u32(*pid);
                    }
                })
            });
        });
        b.array(8, |_| {});
        b.buf
    }

    /// The whole length of the message that starts with `fixed`.
    pub fn message_length(fixed: &[u8; FIXED_HEADER]) -> Result<usize, &'static str> {
        let big = match fixed[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err("an unknown byte order"),
        };
        let word = |at: usize| {
            let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
            (if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }) as usize
        };
        let (body, fields) = (word(4), word(12));
        if body > MAX_MESSAGE || fields > MAX_MESSAGE {
            return Err("a message longer than 1 MiB");
        }
        let header = (FIXED_HEADER + fields).next_multiple_of(8);
        let total = header + body;
        if total > MAX_MESSAGE {
            return Err("a message longer than 1 MiB");
        }
        Ok(total)
    }

    /// Reads values from a message, checking every length and alignment.
    #[derive(Debug)]
    pub struct Reader<'a> {
        buf: &'a [u8],
        /// Alignment is counted from here (the start of the header or body).
        origin: usize,
        pos: usize,
        big: bool,
    }

    impl<'a> Reader<'a> {
        fn new(buf: &'a [u8], origin: usize, big: bool) -> Self {
            Self {
                buf,
                origin,
                pos: origin,
                big,
            }
        }

        fn align(&mut self, n: usize) -> Result<(), &'static str> {
            let rel = self.pos - self.origin;
            let to = rel.next_multiple_of(n) + self.origin;
            if to > self.buf.len() {
                return Err("a value past the end of the message");
            }
            if self.buf[self.pos..to].iter().any(|b| *b != 0) {
                return Err("padding that is not zero");
            }
            self.pos = to;
            Ok(())
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
            let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
            let end = end.ok_or("a value past the end of the message")?;
            let bytes = &self.buf[self.pos..end];
            self.pos = end;
            Ok(bytes)
        }

        pub fn byte(&mut self) -> Result<u8, &'static str> {
            Ok(self.take(1)?[0])
        }

        pub fn u32(&mut self) -> Result<u32, &'static str> {
            self.align(4)?;
            let b = self.take(4)?;
            let b = [b[0], b[1], b[2], b[3]];
            Ok(if self.big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        }

        /// A string or object path: UTF-8, no NUL inside, NUL after.
        pub fn string(&mut self) -> Result<String, &'static str> {
            let len = self.u32()? as usize;
            let bytes = self.take(len)?;
            if self.byte()? != 0 || bytes.contains(&0) {
                return Err("a string not ended by its NUL");
            }
            String::from_utf8(bytes.to_vec()).map_err(|_| "a string that is not UTF-8")
        }

        pub fn signature(&mut self) -> Result<String, &'static str> {
            let len = self.byte()? as usize;
            let bytes = self.take(len)?;
            if self.byte()? != 0 {
                return Err("a signature not ended by its NUL");
            }
            let sig = String::from_utf8(bytes.to_vec()).map_err(|_| "a signature that is not ASCII")?;
            // Checked whole here, so that skipping can trust it.
            let mut rest = sig.as_bytes();
            while !rest.is_empty() {
                rest = &rest[complete_type(rest, 0)?..];
            }
            Ok(sig)
        }

        /// Skips one value of the single complete type `sig`.
        fn skip(&mut self, sig: &[u8], depth: usize) -> Result<(), &'static str> {
            if depth > MAX_DEPTH {
                return Err("values nested too deeply");
            }
            match sig.first().copied().ok_or("an empty signature")? {
                b'y' => self.take(1).map(drop),
                b'n' | b'q' => self.align(2).and_then(|_| self.take(2)).map(drop),
                b'b' | b'i' | b'u' | b'h' => self.u32().map(drop),
                b'x' | b't' | b'd' => self.align(8).and_then(|_| self.take(8)).map(drop),
                b's' | b'o' => self.string().map(drop),
                b'g' => self.signature().map(drop),
                b'v' => {
                    let inner = self.signature()?;
                    if complete_type(inner.as_bytes(), 0)? != inner.len() {
                        return Err("a variant holding more than one type");
                    }
                    self.skip(inner.as_bytes(), depth + 1)
                }
                b'a' => {
                    let len = self.u32()? as usize;
                    let element = &sig[1..];
                    self.align(alignment(element.first().copied().unwrap_or(b'y')))?;
                    let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                    let end = end.ok_or("an array past the end of the message")?;
                    while self.pos < end {
                        self.skip(element, depth + 1)?;
                    }
                    if self.pos != end {
                        return Err("an array whose length splits an element");
                    }
                    Ok(())
                }
                open @ (b'(' | b'{') => {
                    self.align(8)?;
                    let close = if open == b'(' { b')' } else { b'}' };
                    let mut inner = &sig[1..];
                    while inner.first() != Some(&close) {
                        let n = complete_type(inner, depth + 1)?;
                        self.skip(&inner[..n], depth + 1)?;
                        inner = &inner[n..];
                    }
                    Ok(())
                }
                _ => Err("an unknown type in a signature"),
            }
        }
    }

    fn alignment(code: u8) -> usize {
        match code {
            b'n' | b'q' => 2,
            b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
            b'x' | b't' | b'd' | b'(' | b'{' => 8,
            _ => 1,
        }
    }

    /// The length of the single complete type at the start of `sig`.
    fn complete_type(sig: &[u8], depth: usize) -> Result<usize, &'static str> {
        if depth > MAX_DEPTH {
            return Err("a signature nested too deeply");
        }
        match sig.first().copied().ok_or("an incomplete signature")? {
            b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o' | b'g' | b'v' => Ok(1),
            b'a' => Ok(1 + complete_type(&sig[1..], depth + 1)?),
            open @ (b'(' | b'{') => {
                let close = if open == b'(' { b')' } else { b'}' };
                let mut at = 1;
                let mut members = 0;
                while sig.get(at) != Some(&close) {
                    at += complete_type(sig.get(at..).ok_or("an incomplete signature")?, depth + 1)?;
                    members += 1;
                }
                let ok = if open == b'(' { members > 0 } else { members == 2 };
                if !ok {
                    return Err("an empty structure or a bad dictionary entry");
                }
                Ok(at + 1)
            }
            _ => Err("an unknown type in a signature"),
        }
    }

    /// A message received: the header fields used here, and the body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Message {
        pub kind: u8,
        pub serial: u32,
        pub reply_serial: Option<u32>,
        pub member: Option<String>,
        pub error_name: Option<String>,
        pub signature: String,
        big: bool,
        body: Vec<u8>,
    }

    impl Message {
        /// Decodes a whole message (as sized by [`message_length`]).
        pub fn parse(bytes: &[u8]) -> Result<Self, &'static str> {
            let fixed: &[u8; FIXED_HEADER] = bytes
                .get(..FIXED_HEADER)
                .and_then(|b| b.try_into().ok())
                .ok_or("a message shorter than its header")?;
            if message_length(fixed)? != bytes.len() {
                return Err("a message whose length is not its header's");
            }
            let big = bytes[0] == b'B';
            let mut r = Reader::new(bytes, 0, big);
            r.take(1)?;
            let kind = r.byte()?;
            r.byte()?;
            if r.byte()? != 1 {
                return Err("a protocol version other than 1");
            }
            let body_len = r.u32()? as usize;
            let serial = r.u32()?;
            if serial == 0 {
                return Err("a serial of 0");
            }
            let fields_len = r.u32()? as usize;
            let fields_end = FIXED_HEADER + fields_len;
            let mut message = Self {
                kind,
                serial,
                reply_serial: None,
                member: None,
                error_name: None,
                signature: String::new(),
                big,
                body: Vec::new(),
            };
            while r.pos < fields_end {
                r.align(8)?;
                let code = r.byte()?;
                let sig = r.signature()?;
                match (code, sig.as_str()) {
                    (FIELD_MEMBER, "s") => message.member = Some(r.string()?),
                    (FIELD_ERROR_NAME, "s") => message.error_name = Some(r.string()?),
                    (FIELD_REPLY_SERIAL, "u") => message.reply_serial = Some(r.u32()?),
                    (FIELD_SIGNATURE, "g") => message.signature = r.signature()?,
                    _ => {
                        if complete_type(sig.as_bytes(), 0)? != sig.len() {
                            return Err("a header field holding more than one type");
                        }
                        r.skip(sig.as_bytes(), 1)?;
                    }
                }
            }
            if r.pos != fields_end {
                return Err("header fields past their array");
            }
            r.align(8)?;
            if bytes.len() - r.pos != body_len {
                return Err("a body whose length is not its header's");
            }
            message.body = bytes[r.pos..].to_vec();
            Ok(message)
        }

        pub fn body_reader(&self) -> Reader<'_> {
            Reader::new(&self.body, 0, self.big)
        }

        /// Checks that the body holds exactly what its signature says.
        pub fn validate_body(&self) -> Result<(), &'static str> {
            let mut r = self.body_reader();
            let mut sig = self.signature.as_bytes();
            while !sig.is_empty() {
                let n = complete_type(sig, 0)?;
                r.skip(&sig[..n], 0)?;
                sig = &sig[n..];
            }
            if r.pos != self.body.len() {
                return Err("bytes after the body's values");
            }
            Ok(())
        }
    }

    /// Builds a reply or signal as the manager would send it (the tests,
    /// which also made the fuzz corpus's seeds).
    #[cfg(test)]
    pub fn reply(
        kind: u8,
        serial: u32,
        reply_serial: Option<u32>,
        member: Option<&str>,
        signature: &str,
        body: &[u8],
    ) -> Vec<u8> {
        message(kind, 1, serial, body, |h| {
            if let Some(s) = reply_serial {
                field(h, FIELD_REPLY_SERIAL, "u", |h| h.u32(s));
            }
            if let Some(m) = member {
                let code = if kind == ERROR { FIELD_ERROR_NAME } else { FIELD_MEMBER };
                field(h, code, "s", |h| h.string(m));
            }
            if !signature.is_empty() {
                field(h, FIELD_SIGNATURE, "g", |h| h.signature(signature));
            }
        })
    }
}

/// The unit name for an instance's scope: `xvisor-NAME-PID.scope`, with
/// every byte systemd does not accept in a name escaped as `\xNN`.
pub fn instance_scope_name(name: &str, pid: u32) -> String {
    let mut unit = String::from("xvisor-");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"_.".contains(&b) || (b == b'-') {
            unit.push(b as char);
        } else {
            unit.push_str(&format!("\\x{b:02x}"));
        }
    }
    let suffix = format!("-{pid}.scope");
    // Within systemd's limit whatever the name's length.
    let mut cut = UNIT_NAME_MAX - suffix.len();
    while !unit.is_char_boundary(cut.min(unit.len())) {
        cut -= 1;
    }
    unit.truncate(cut.min(unit.len()));
    // A cut escape would be refused: drop its remains.
    if let Some(at) = unit.rfind('\\') {
        if unit.len() - at < 4 {
            unit.truncate(at);
        }
    }
    unit + &suffix
}

#[cfg(test)]
mod tests {
    use super::wire::*;
    use super::*;
    use std::os::unix::net::UnixListener;

    fn scope() -> Scope {
        Scope {
            unit: "xvisor-web-42.scope".into(),
            slice: Some("user-1000.slice".into()),
            description: "xvisor instance web".into(),
            pids: vec![42, 43],
        }
    }

    #[test]
    fn the_call_decodes_as_the_manager_would_read_it() {
        let bytes = start_transient_scope(7, &scope());
        let mut fixed = [0u8; FIXED_HEADER];
        fixed.copy_from_slice(&bytes[..FIXED_HEADER]);
        assert_eq!(message_length(&fixed).unwrap(), bytes.len());
        let m = Message::parse(&bytes).unwrap();
        assert_eq!((m.kind, m.serial), (METHOD_CALL, 7));
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.signature, "ssa(sv)a(sa(sv))");
        m.validate_body().unwrap();
        let mut r = m.body_reader();
        assert_eq!(r.string().unwrap(), "xvisor-web-42.scope");
        assert_eq!(r.string().unwrap(), "fail");
    }

    /// The same call written by sd-bus (`busctl call … StartTransientUnit
    /// 'ssa(sv)a(sa(sv))' xvisor-web-42.scope fail 5 Description s "xvisor
    /// instance web" Slice s user-1000.slice Delegate b true CollectMode s
    /// inactive-or-failed PIDs au 2 42 43 0`, captured from the socket).
    #[test]
    fn the_body_is_byte_for_byte_what_sd_bus_writes() {
        let golden = include_bytes!("../testdata/start_transient_scope.body");
        assert_eq!(start_transient_scope_body(&scope()), golden.to_vec());
    }

    /// A known message, byte for byte: a JobRemoved signal as sd-bus
    /// lays it out (little-endian, fields padded to 8).
    #[test]
    fn a_job_removed_signal_decodes() {
        let mut body = Writer::default();
        body.u32(5);
        body.string("/org/freedesktop/systemd1/job/5");
        body.string("x.scope");
        body.string("done");
        let bytes = reply(SIGNAL, 9, None, Some("JobRemoved"), "uoss", &body.buf);
        assert_eq!(&bytes[..4], b"l\x04\x01\x01");
        assert_eq!(bytes.len() % 8, body.buf.len() % 8);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.member.as_deref(), Some("JobRemoved"));
        m.validate_body().unwrap();
        let mut r = m.body_reader();
        assert_eq!(r.u32().unwrap(), 5);
        assert_eq!(r.string().unwrap(), "/org/freedesktop/systemd1/job/5");
    }

    #[test]
    fn malformed_messages_are_refused_not_trusted() {
        let good = reply(METHOD_RETURN, 2, Some(1), None, "o", &{
            let mut w = Writer::default();
            w.string("/job/1");
            w.buf
        });
        assert!(Message::parse(&good).is_ok());
        let mut fixed = [0u8; FIXED_HEADER];
        fixed.copy_from_slice(&good[..FIXED_HEADER]);
        fixed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_length(&fixed).is_err());
        // Every truncation and every single flipped byte: an error or a
        // message, never a panic.
        for cut in 0..good.len() {
            let _ = Message::parse(&good[..cut]);
        }
        for at in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff, b'a', b'(', b'v'] {
                let mut bad = good.clone();
                bad[at] = v;
                if let Ok(m) = Message::parse(&bad) {
                    let _ = m.validate_body();
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seed = reply(SIGNAL, 3, None, Some("JobRemoved"), "uoss", &[0; 24]);
        for _ in 0..20_000 {
            let mut bytes = seed.clone();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            let keep = (next() as usize) % (bytes.len() + 1);
            bytes.truncate(keep.max(FIXED_HEADER.min(bytes.len())));
            if let Ok(m) = Message::parse(&bytes) {
                let _ = m.validate_body();
            }
        }
    }

    /// Replays the fuzz corpus (fuzz/corpus/systemd_message) on every test
    /// run; its seeds are the four messages of a scope's start (the call,
    /// the reply, JobRemoved, an error), as built by this module's tests.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/systemd_message");
        let mut decoded = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(m) = Message::parse(&bytes) {
                m.validate_body().unwrap();
                decoded += 1;
            }
        }
        assert!(decoded >= 3, "{decoded} seeds decode");
    }

    #[test]
    fn deep_signatures_are_refused() {
        let deep = "a".repeat(200) + "y";
        assert!(complete_type_len(&deep).is_err());
        assert_eq!(complete_type_len("a(sv)").unwrap(), 5);
        assert!(complete_type_len("()").is_err());
        assert!(complete_type_len("{sv").is_err());
    }

    fn complete_type_len(sig: &str) -> Result<usize, &'static str> {
        let mut w = Writer::default();
        w.signature(sig);
        let bytes = reply(METHOD_RETURN, 1, Some(1), None, "g", &w.buf);
        let m = Message::parse(&bytes)?;
        m.body_reader().signature().map(|s| s.len())
    }

    #[test]
    fn unit_names_are_what_systemd_accepts() {
        assert!(valid_unit_name("xvisor-a-1.scope", ".scope"));
        assert!(!valid_unit_name(".scope", ".scope"));
        assert!(!valid_unit_name("a b.scope", ".scope"));
        assert!(!valid_unit_name("a.slice", ".scope"));
        assert_eq!(instance_scope_name("web", 7), "xvisor-web-7.scope");
        assert_eq!(instance_scope_name("a b", 7), "xvisor-a\\x20b-7.scope");
        let long = instance_scope_name(&"é".repeat(300), 123);
        assert!(valid_unit_name(&long, ".scope"), "{long}");
        assert!(long.len() <= UNIT_NAME_MAX);
    }

    /// A fake manager on a socket: authentication, the call, an early
    /// signal for another job, the reply, then the job's end.
    fn fake_manager(result: &'static str, refuse: bool) -> (tempdir::Dir, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempdir::Dir::new();
        std::fs::create_dir_all(dir.0.join("systemd")).unwrap();
        let listener = UnixListener::bind(dir.0.join("systemd/private")).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(b"BEGIN\r\n") {
                s.read_exact(&mut byte).unwrap();
                got.push(byte[0]);
            }
            s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n")
                .unwrap();
            let mut fixed = [0u8; FIXED_HEADER];
            s.read_exact(&mut fixed).unwrap();
            let mut call = fixed.to_vec();
            call.resize(message_length(&fixed).unwrap(), 0);
            s.read_exact(&mut call[FIXED_HEADER..]).unwrap();
            let removed = |job: &str, result: &str| {
                let mut w = Writer::default();
                w.u32(1);
                w.string(job);
                w.string("x.scope");
                w.string(result);
                reply(SIGNAL, 5, None, Some("JobRemoved"), "uoss", &w.buf)
            };
            if refuse {
                let mut w = Writer::default();
                w.string("Unit xvisor-web-42.scope already exists.");
                let m = reply(
                    ERROR,
                    2,
                    Some(1),
                    Some("org.freedesktop.systemd1.UnitExists"),
                    "s",
                    &w.buf,
                );
                s.write_all(&m).unwrap();
            } else {
                s.write_all(&removed("/job/other", "failed")).unwrap();
                let mut w = Writer::default();
                w.string("/job/7");
                s.write_all(&reply(METHOD_RETURN, 3, Some(1), None, "o", &w.buf))
                    .unwrap();
                s.write_all(&removed("/job/7", result)).unwrap();
            }
            got.extend_from_slice(&call);
            got
        });
        (dir, server)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir().join(format!("xvisor-systemd-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn run_against(result: &'static str, refuse: bool) -> (Result<(), SystemdError>, Vec<u8>) {
        let (dir, server) = fake_manager(result, refuse);
        let manager = Manager::User {
            runtime_dir: dir.0.clone(),
        };
        let got = start_delegated_scope(&manager, &scope());
        (got, server.join().unwrap())
    }

    #[test]
    fn a_scope_is_asked_for_and_its_job_awaited() {
        let (got, sent) = run_against("done", false);
        got.unwrap();
        let uid = xvisor_sys::process::getuid();
        let hex: String = uid.to_string().bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n");
        assert!(sent.starts_with(hello.as_bytes()));
        let call = &sent[hello.len()..];
        let m = Message::parse(call).unwrap();
        m.validate_body().unwrap();
        assert_eq!(call, &start_transient_scope(1, &scope())[..]);
    }

    #[test]
    fn a_failed_job_and_a_refusal_are_errors_that_say_so() {
        let (got, _) = run_against("failed", false);
        assert!(matches!(got, Err(SystemdError::JobFailed { ref result, .. }) if result == "failed"));
        let (got, _) = run_against("done", true);
        let e = got.unwrap_err().to_string();
        assert!(e.contains("already exists") && e.contains("UnitExists"), "{e}");
    }

    #[test]
    fn an_absent_manager_is_a_connect_error() {
        let m = Manager::User {
            runtime_dir: PathBuf::from("/nonexistent-xvisor"),
        };
        assert!(!m.is_running());
        assert!(matches!(
            start_delegated_scope(&m, &scope()),
            Err(SystemdError::Connect { .. })
        ));
    }
}
