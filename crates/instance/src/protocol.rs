//! Messages between the supervisor and the instance's init (pid 1), one per
//! `SOCK_SEQPACKET` datagram.
//!
//! The supervisor treats everything it receives as untrusted: init runs
//! inside the instance, so a compromised guest could speak in its place.
//! Decoding therefore never panics, bounds every length and rejects
//! anything it does not know.

/// Largest message either side sends or accepts.
pub const MAX_MESSAGE: usize = 4096;

/// From the supervisor to init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToInit {
    /// The id maps are written and the process sits in its cgroups: build
    /// the instance.
    Proceed,
    /// Start the guest program.
    Start,
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
    /// Building the instance failed; the text says what and why.
    SetupFailed(String),
    /// The guest program could not be started.
    StartFailed { stage: StartStage, errno: i32 },
    /// The guest's system-call filter is installed; its user-notification
    /// listener travels with this message.
    Listener,
    /// The guest program runs, as this pid inside the instance.
    Running { guest_pid: i32 },
    /// The guest program ended with this raw wait status.
    Exited { wait_status: i32 },
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
}

const T_PROCEED: u8 = 1;
const T_START: u8 = 2;
const T_CREATED: u8 = 10;
const T_SETUP_FAILED: u8 = 11;
const T_START_FAILED: u8 = 12;
const T_RUNNING: u8 = 13;
const T_EXITED: u8 = 14;
const T_LISTENER: u8 = 15;
const T_NAMESPACES_READY: u8 = 16;

fn int_payload(tag: u8, payload: &[u8]) -> Result<i32, ProtocolError> {
    let bytes: [u8; 4] = payload.try_into().map_err(|_| ProtocolError::BadLength {
        tag,
        len: payload.len(),
        expected: 4,
    })?;
    Ok(i32::from_le_bytes(bytes))
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
        vec![match self {
            Self::Proceed => T_PROCEED,
            Self::Start => T_START,
        }]
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let (&tag, payload) = bytes.split_first().ok_or(ProtocolError::Empty)?;
        match tag {
            T_PROCEED => no_payload(tag, payload).map(|_| Self::Proceed),
            T_START => no_payload(tag, payload).map(|_| Self::Start),
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
            Self::SetupFailed(text) => {
                out.push(T_SETUP_FAILED);
                let mut end = text.len().min(MAX_MESSAGE - 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&text.as_bytes()[..end]);
            }
            Self::StartFailed { stage, errno } => {
                out.push(T_START_FAILED);
                out.push(*stage as u8);
                out.extend_from_slice(&errno.to_le_bytes());
            }
            Self::Listener => out.push(T_LISTENER),
            Self::Running { guest_pid } => {
                out.push(T_RUNNING);
                out.extend_from_slice(&guest_pid.to_le_bytes());
            }
            Self::Exited { wait_status } => {
                out.push(T_EXITED);
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
            T_START_FAILED => {
                let (&stage, rest) = payload.split_first().ok_or(ProtocolError::BadLength {
                    tag,
                    len: 0,
                    expected: 5,
                })?;
                let stage = match stage {
                    1 => StartStage::Workdir,
                    2 => StartStage::Identity,
                    3 => StartStage::Exec,
                    4 => StartStage::Filter,
                    5 => StartStage::Hook,
                    other => return Err(ProtocolError::UnknownStage(other)),
                };
                Ok(Self::StartFailed {
                    stage,
                    errno: int_payload(tag, rest)?,
                })
            }
            T_LISTENER => no_payload(tag, payload).map(|_| Self::Listener),
            T_RUNNING => Ok(Self::Running {
                guest_pid: int_payload(tag, payload)?,
            }),
            T_EXITED => Ok(Self::Exited {
                wait_status: int_payload(tag, payload)?,
            }),
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the property tests replay.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            FromInit::Created,
            FromInit::SetupFailed("cannot mount /proc: Operation not permitted".into()),
            FromInit::StartFailed {
                stage: StartStage::Exec,
                errno: 2,
            },
            FromInit::StartFailed {
                stage: StartStage::Workdir,
                errno: -1,
            },
            FromInit::Running { guest_pid: 2 },
            FromInit::Exited { wait_status: 9 },
            FromInit::Listener,
            FromInit::NamespacesReady,
            FromInit::StartFailed {
                stage: StartStage::Hook,
                errno: HookFailure::TimedOut.encode(3),
            },
            FromInit::StartFailed {
                stage: StartStage::Filter,
                errno: 22,
            },
        ];
        for m in msgs {
            assert_eq!(FromInit::decode(&m.encode()), Ok(m));
        }
        for m in [ToInit::Proceed, ToInit::Start] {
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
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let len = (rng.next() % 12) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Bias towards real tags so payload paths are exercised.
                if rng.next() % 2 == 0 {
                    *first = [1, 2, 10, 11, 12, 13, 14, 15][(rng.next() % 8) as usize];
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
