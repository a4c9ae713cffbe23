//! Messages between the supervisor and the instance's init (pid 1), one per
//! `SOCK_SEQPACKET` datagram.
//!
//! The supervisor treats everything it receives as untrusted: init runs
//! inside the instance, so a compromised guest could speak in its place.
//! Decoding therefore never panics, bounds every length and rejects
//! anything it does not know.

/// Largest message init sends or the supervisor accepts.
pub const MAX_MESSAGE: usize = 4096;

/// Largest message the supervisor sends to init (an exec request).
pub const MAX_TO_INIT: usize = crate::exec::MAX_EXEC_REQUEST + 16;

use crate::exec::{ExecError, ExecRequest};

/// From the supervisor to init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToInit {
    /// The id maps are written and the process sits in its cgroups: build
    /// the instance.
    Proceed,
    /// Start the guest program.
    Start,
    /// Start this program as the guest's (a pooled instance, created before
    /// its program was known): argv, environment over the instance's and
    /// working directory from the request; its stdin, stdout and stderr
    /// travel with the message.
    StartWith { request: Box<ExecRequest> },
    /// Prepare the guest's process before its program is known (a pooled
    /// instance): forked, its identity taken and its filter installed, it
    /// waits for `StartWith`'s program, descriptors and directory, which it
    /// then only has to take and exec. Answered by `Listener`, then
    /// `Prepared` (or `StartFailed`).
    Prepare,
    /// Start a second process (exec session `id`); its descriptors (stdio,
    /// then any preserved ones) travel with the message.
    Exec { id: u32, request: Box<ExecRequest> },
}

/// Why a guest could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartStage {
    /// Changing to the working directory.
    Workdir = 1,
    /// Dropping to the guest identity.
    Identity = 2,
    /// Executing the program.
    Exec = 3,
    /// Installing the system-call filter.
    Filter = 4,
    /// A `startContainer` hook failed (the number says which and how:
    /// see [`HookFailure`]).
    Hook = 5,
    /// Asking AppArmor for the program's profile.
    AppArmor = 6,
}

/// How a `startContainer` hook failed, packed into the start report's
/// number: the hook's index in the low byte, what happened above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFailure {
    Exited(u8),
    Signaled(u8),
    TimedOut,
    CannotRun,
}

impl HookFailure {
    pub fn encode(self, index: u8) -> i32 {
        let what = match self {
            Self::Exited(code) => i32::from(code),
            Self::Signaled(signal) => 0x100 | i32::from(signal),
            Self::TimedOut => 0x200,
            Self::CannotRun => 0x300,
        };
        (what << 8) | i32::from(index)
    }

    /// `(index, failure)`; any number decodes to something.
    pub fn decode(value: i32) -> (usize, Self) {
        let index = (value & 0xff) as usize;
        let what = (value >> 8) & 0xfff;
        let failure = match what >> 8 {
            0 => Self::Exited((what & 0xff) as u8),
            1 => Self::Signaled((what & 0xff) as u8),
            2 => Self::TimedOut,
            _ => Self::CannotRun,
        };
        (index, failure)
    }
}

/// From init to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromInit {
    /// Built and waiting for `Start` (a pty master travels with it on -t).
    Created,
    /// The namespaces exist and the root is not built yet: waiting for
    /// `Proceed` while the supervisor runs the `createRuntime` hooks.
    NamespacesReady,
    /// A host tree that shows the guest's own files (the text names it),
    /// cloned and not yet attached, travels with this message: the
    /// supervisor, which holds the privilege over the host's filesystems,
    /// makes it show through the instance's id maps.
    GuestTree(String),
    /// Every [`Self::GuestTree`] is sent: waiting for `Proceed`.
    GuestTreesSent,
    /// Building the instance failed; the text says what and why.
    SetupFailed(String),
    /// The guest program could not be started.
    StartFailed { stage: StartStage, errno: i32 },
    /// The guest's system-call filter is installed; its user-notification
    /// listener travels with this message.
    Listener,
    /// The guest's process is prepared (`Prepare`): waiting for
    /// `StartWith`.
    Prepared,
    /// The guest program runs, as this pid inside the instance.
    Running { guest_pid: i32 },
    /// init itself becomes the program (OCI): the channel its start
    /// reports go on travels with this message, for the supervisor to
    /// hear them (the listener, a failure, end-of-file once it runs) in
    /// place of `Listener`, `StartFailed` and `Running`.
    ProgramReports,
    /// The guest program ended with this raw wait status; `alone`: init
    /// has no other child left, so no other process of the instance
    /// exists (orphans come to init; only init may start new ones).
    Exited { wait_status: i32, alone: bool },
    /// Exec session `id`: the process's filter is installed; its listener
    /// travels with this message.
    ExecListener { id: u32 },
    /// Exec session `id`: the master side of the process's terminal travels
    /// with this message.
    ExecTerminal { id: u32 },
    /// Exec session `id`: the process runs, as this pid inside the instance.
    ExecStarted { id: u32, pid: i32 },
    /// Exec session `id`: the process could not be started.
    ExecFailed { id: u32, stage: StartStage, errno: i32 },
    /// Exec session `id`: the process ended with this raw wait status.
    ExecExited { id: u32, wait_status: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("empty message")]
    Empty,
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("message of tag {tag} has {len} payload bytes, expected {expected}")]
    BadLength { tag: u8, len: usize, expected: usize },
    #[error("unknown start stage {0}")]
    UnknownStage(u8),
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("exec request: {0}")]
    Exec(#[from] ExecError),
}

const T_PROCEED: u8 = 1;
const T_START: u8 = 2;
const T_CREATED: u8 = 10;
const T_SETUP_FAILED: u8 = 11;
const T_START_FAILED: u8 = 12;
const T_RUNNING: u8 = 13;
const T_EXITED: u8 = 14;
const T_LISTENER: u8 = 15;
const T_EXEC: u8 = 3;
const T_START_WITH: u8 = 4;
const T_EXEC_LISTENER: u8 = 16;
const T_EXEC_TERMINAL: u8 = 17;
const T_EXEC_STARTED: u8 = 18;
const T_EXEC_FAILED: u8 = 19;
const T_EXEC_EXITED: u8 = 20;

fn stage_of(byte: u8) -> Result<StartStage, ProtocolError> {
    Ok(match byte {
        1 => StartStage::Workdir,
        2 => StartStage::Identity,
        3 => StartStage::Exec,
        4 => StartStage::Filter,
        5 => StartStage::Hook,
        6 => StartStage::AppArmor,
        other => return Err(ProtocolError::UnknownStage(other)),
    })
}

/// Splits a payload into a leading exec session id and the rest.
fn id_and_rest(tag: u8, payload: &[u8]) -> Result<(u32, &[u8]), ProtocolError> {
    if payload.len() < 4 {
        return Err(ProtocolError::BadLength {
            tag,
            len: payload.len(),
            expected: 4,
        });
    }
    let (id, rest) = payload.split_at(4);
    Ok((u32::from_le_bytes([id[0], id[1], id[2], id[3]]), rest))
}

fn id_only(tag: u8, payload: &[u8]) -> Result<u32, ProtocolError> {
    let (id, rest) = id_and_rest(tag, payload)?;
    no_payload(tag, rest).map_err(|_| ProtocolError::BadLength {
        tag,
        len: payload.len(),
        expected: 4,
    })?;
    Ok(id)
}
const T_NAMESPACES_READY: u8 = 21;
const T_GUEST_TREE: u8 = 22;
const T_GUEST_TREES_SENT: u8 = 23;
const T_PROGRAM_REPORTS: u8 = 24;
const T_PREPARED: u8 = 25;
const T_PREPARE: u8 = 5;

fn int_payload(tag: u8, payload: &[u8]) -> Result<i32, ProtocolError> {
    let bytes: [u8; 4] = payload.try_into().map_err(|_| ProtocolError::BadLength {
        tag,
        len: payload.len(),
        expected: 4,
    })?;
    Ok(i32::from_le_bytes(bytes))
}

/// Appends as much of `text` as a message holds, cut at a character
/// boundary.
fn push_text(out: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(MAX_MESSAGE - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&text.as_bytes()[..end]);
}

fn no_payload(tag: u8, payload: &[u8]) -> Result<(), ProtocolError> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::BadLength {
            tag,
            len: payload.len(),
            expected: 0,
        })
    }
}

impl ToInit {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Proceed => vec![T_PROCEED],
            Self::Start => vec![T_START],
            Self::Prepare => vec![T_PREPARE],
            Self::StartWith { request } => {
                let mut out = vec![T_START_WITH];
                out.extend_from_slice(&request.encode());
                out
            }
            Self::Exec { id, request } => {
                let mut out = vec![T_EXEC];
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&request.encode());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_TO_INIT {
            return Err(ProtocolError::TooLong);
        }
        let (&tag, payload) = bytes.split_first().ok_or(ProtocolError::Empty)?;
        match tag {
            T_PROCEED => no_payload(tag, payload).map(|_| Self::Proceed),
            T_START => no_payload(tag, payload).map(|_| Self::Start),
            T_PREPARE => no_payload(tag, payload).map(|_| Self::Prepare),
            T_START_WITH => Ok(Self::StartWith {
                request: Box::new(ExecRequest::decode(payload)?),
            }),
            T_EXEC => {
                let (id, rest) = id_and_rest(tag, payload)?;
                Ok(Self::Exec {
                    id,
                    request: Box::new(ExecRequest::decode(rest)?),
                })
            }
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }
}

impl FromInit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        match self {
            Self::Created => out.push(T_CREATED),
            Self::NamespacesReady => out.push(T_NAMESPACES_READY),
            Self::GuestTree(name) => {
                out.push(T_GUEST_TREE);
                push_text(&mut out, name);
            }
            Self::GuestTreesSent => out.push(T_GUEST_TREES_SENT),
            Self::SetupFailed(text) => {
                out.push(T_SETUP_FAILED);
                push_text(&mut out, text);
            }
            Self::StartFailed { stage, errno } => {
                out.push(T_START_FAILED);
                out.push(*stage as u8);
                out.extend_from_slice(&errno.to_le_bytes());
            }
            Self::Listener => out.push(T_LISTENER),
            Self::Prepared => out.push(T_PREPARED),
            Self::ProgramReports => out.push(T_PROGRAM_REPORTS),
            Self::Running { guest_pid } => {
                out.push(T_RUNNING);
                out.extend_from_slice(&guest_pid.to_le_bytes());
            }
            Self::Exited { wait_status, alone } => {
                out.push(T_EXITED);
                out.extend_from_slice(&wait_status.to_le_bytes());
                out.push(u8::from(*alone));
            }
            Self::ExecListener { id } => {
                out.push(T_EXEC_LISTENER);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Self::ExecTerminal { id } => {
                out.push(T_EXEC_TERMINAL);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Self::ExecStarted { id, pid } => {
                out.push(T_EXEC_STARTED);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&pid.to_le_bytes());
            }
            Self::ExecFailed { id, stage, errno } => {
                out.push(T_EXEC_FAILED);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(*stage as u8);
                out.extend_from_slice(&errno.to_le_bytes());
            }
            Self::ExecExited { id, wait_status } => {
                out.push(T_EXEC_EXITED);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&wait_status.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ProtocolError::TooLong);
        }
        let (&tag, payload) = bytes.split_first().ok_or(ProtocolError::Empty)?;
        match tag {
            T_CREATED => no_payload(tag, payload).map(|_| Self::Created),
            T_NAMESPACES_READY => no_payload(tag, payload).map(|_| Self::NamespacesReady),
            T_SETUP_FAILED => Ok(Self::SetupFailed(String::from_utf8_lossy(payload).into_owned())),
            T_GUEST_TREE => Ok(Self::GuestTree(String::from_utf8_lossy(payload).into_owned())),
            T_GUEST_TREES_SENT => no_payload(tag, payload).map(|_| Self::GuestTreesSent),
            T_START_FAILED => {
                let (&stage, rest) = payload.split_first().ok_or(ProtocolError::BadLength {
                    tag,
                    len: 0,
                    expected: 5,
                })?;
                Ok(Self::StartFailed {
                    stage: stage_of(stage)?,
                    errno: int_payload(tag, rest)?,
                })
            }
            T_EXEC_LISTENER => Ok(Self::ExecListener {
                id: id_only(tag, payload)?,
            }),
            T_EXEC_TERMINAL => Ok(Self::ExecTerminal {
                id: id_only(tag, payload)?,
            }),
            T_EXEC_STARTED => {
                let (id, rest) = id_and_rest(tag, payload)?;
                Ok(Self::ExecStarted {
                    id,
                    pid: int_payload(tag, rest)?,
                })
            }
            T_EXEC_FAILED => {
                let (id, rest) = id_and_rest(tag, payload)?;
                let (&stage, rest) = rest.split_first().ok_or(ProtocolError::BadLength {
                    tag,
                    len: payload.len(),
                    expected: 9,
                })?;
                Ok(Self::ExecFailed {
                    id,
                    stage: stage_of(stage)?,
                    errno: int_payload(tag, rest)?,
                })
            }
            T_EXEC_EXITED => {
                let (id, rest) = id_and_rest(tag, payload)?;
                Ok(Self::ExecExited {
                    id,
                    wait_status: int_payload(tag, rest)?,
                })
            }
            T_LISTENER => no_payload(tag, payload).map(|_| Self::Listener),
            T_PREPARED => no_payload(tag, payload).map(|_| Self::Prepared),
            T_PROGRAM_REPORTS => no_payload(tag, payload).map(|_| Self::ProgramReports),
            T_RUNNING => Ok(Self::Running {
                guest_pid: int_payload(tag, payload)?,
            }),
            T_EXITED => match payload {
                [status @ .., alone @ (0 | 1)] if status.len() == 4 => Ok(Self::Exited {
                    wait_status: int_payload(tag, status)?,
                    alone: *alone == 1,
                }),
                _ => Err(ProtocolError::BadLength {
                    tag,
                    len: payload.len(),
                    expected: 5,
                }),
            },
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the property tests replay.

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            FromInit::Created,
            FromInit::SetupFailed("cannot mount /proc: Operation not permitted".into()),
            FromInit::GuestTree("volume /srv/data".into()),
            FromInit::GuestTreesSent,
            FromInit::StartFailed {
                stage: StartStage::Exec,
                errno: 2,
            },
            FromInit::StartFailed {
                stage: StartStage::Workdir,
                errno: -1,
            },
            FromInit::Running { guest_pid: 2 },
            FromInit::Exited {
                wait_status: 9,
                alone: true,
            },
            FromInit::Exited {
                wait_status: 256,
                alone: false,
            },
            FromInit::Listener,
            FromInit::Prepared,
            FromInit::ProgramReports,
            FromInit::NamespacesReady,
            FromInit::StartFailed {
                stage: StartStage::Hook,
                errno: HookFailure::TimedOut.encode(3),
            },
            FromInit::StartFailed {
                stage: StartStage::Filter,
                errno: 22,
            },
            FromInit::ExecListener { id: 7 },
            FromInit::ExecTerminal { id: 0 },
            FromInit::ExecStarted { id: 3, pid: 41 },
            FromInit::ExecFailed {
                id: u32::MAX,
                stage: StartStage::Workdir,
                errno: 2,
            },
            FromInit::ExecExited {
                id: 3,
                wait_status: 256,
            },
        ];
        for m in msgs {
            assert_eq!(FromInit::decode(&m.encode()), Ok(m));
        }
        let exec = ToInit::Exec {
            id: 9,
            request: Box::new(ExecRequest {
                argv: vec!["id".into()],
                ..ExecRequest::default()
            }),
        };
        let start_with = ToInit::StartWith {
            request: Box::new(ExecRequest {
                argv: vec!["true".into()],
                workdir: Some("/tmp".into()),
                ..ExecRequest::default()
            }),
        };
        for m in [ToInit::Proceed, ToInit::Start, ToInit::Prepare, exec, start_with] {
            assert_eq!(ToInit::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn hook_failures_round_trip() {
        for f in [
            HookFailure::Exited(1),
            HookFailure::Exited(255),
            HookFailure::Signaled(9),
            HookFailure::TimedOut,
            HookFailure::CannotRun,
        ] {
            for index in [0u8, 7, 255] {
                assert_eq!(HookFailure::decode(f.encode(index)), (usize::from(index), f));
            }
        }
        let _ = HookFailure::decode(-1);
        let _ = HookFailure::decode(i32::MAX);
    }

    #[test]
    fn long_setup_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_MESSAGE);
        let encoded = FromInit::SetupFailed(text).encode();
        assert!(encoded.len() <= MAX_MESSAGE);
        match FromInit::decode(&encoded) {
            Ok(FromInit::SetupFailed(t)) => assert!(t.chars().all(|c| c == 'é')),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_valid_decodes_reencode() {
        let mut rng = xvisor_sys::testing::XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let len = (rng.next() % 12) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Bias towards real tags so payload paths are exercised.
                if rng.next() % 2 == 0 {
                    *first = [1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20][(rng.next() % 14) as usize];
                }
            }
            if let Ok(m) = FromInit::decode(&bytes) {
                assert_eq!(FromInit::decode(&m.encode()), Ok(m));
            }
            let _ = ToInit::decode(&bytes);
        }
    }

    #[test]
    fn malformed_messages_are_named() {
        assert_eq!(FromInit::decode(&[]), Err(ProtocolError::Empty));
        assert_eq!(FromInit::decode(&[99]), Err(ProtocolError::UnknownTag(99)));
        assert_eq!(
            FromInit::decode(&[T_RUNNING, 1, 2]),
            Err(ProtocolError::BadLength {
                tag: T_RUNNING,
                len: 2,
                expected: 4
            })
        );
        assert_eq!(
            FromInit::decode(&[T_START_FAILED, 7, 0, 0, 0, 0]),
            Err(ProtocolError::UnknownStage(7))
        );
        assert_eq!(
            FromInit::decode(&vec![T_CREATED; MAX_MESSAGE + 1]),
            Err(ProtocolError::TooLong)
        );
    }
}

#[cfg(test)]
mod corpus {
    use super::*;

    /// Replays the fuzz corpus (fuzz/corpus/protocol_from_init) on every
    /// test run, so a crash the fuzzer once found stays fixed.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/protocol_from_init");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(m) = FromInit::decode(&bytes) {
                assert_eq!(FromInit::decode(&m.encode()), Ok(m));
            }
            let _ = ToInit::decode(&bytes);
            seen += 1;
        }
        assert!(seen >= 5, "corpus too small: {seen}");
        let created = std::fs::read(dir.join("created")).unwrap();
        assert_eq!(FromInit::decode(&created), Ok(FromInit::Created));
    }
}
