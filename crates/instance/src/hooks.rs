//! OCI hooks: programs the runtime runs at points of a container's life,
//! each given the container's state (JSON) on its standard input.
//!
//! Where each kind runs (docs/oci.md): `prestart` and `createRuntime` in
//! the supervisor, in the runtime's namespaces, once the instance's
//! namespaces exist and before its root is built; `createContainer` in
//! init, in the instance's namespaces, before the root is built (so its
//! path resolves in the runtime's file tree); `startContainer` in the
//! guest's own process, after its identity, capabilities and system-call
//! filter are in place and just before the program is executed (its path
//! resolves in the instance's root, and it runs as confined as the guest);
//! `poststart` in the supervisor once the program runs; `poststop` in the
//! `delete` command.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xvisor_sys::event::{self, ready, Watch};

/// The most of a failing hook's standard error quoted in the error.
const STDERR_QUOTED: usize = 2048;

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// What names it in messages (`hooks.createRuntime[0]`).
    pub origin: String,
    /// Absolute path of the program.
    pub path: PathBuf,
    /// Its argument vector, `argv[0]` included (empty: the path).
    pub args: Vec<String>,
    /// Its whole environment, `KEY=VALUE` entries.
    pub env: Vec<(String, String)>,
    /// Killed and failed after this long; `None`: no limit.
    pub timeout: Option<Duration>,
}

/// The hooks an instance runs itself, and the state they are given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `prestart` then `createRuntime` hooks.
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    /// The container's state with status `creating`, `created` and
    /// `running` (JSON, rendered by the runtime that knows its fields).
    pub state_creating: Vec<u8>,
    pub state_created: Vec<u8>,
    pub state_running: Vec<u8>,
    /// The pid the states name (`"pid":N`, as serde_json writes it), if
    /// it is to be replaced by the container's once that exists
    /// ([`Hooks::point_state_at`]).
    pub state_pid: Option<i32>,
}

impl Hooks {
    /// Makes the states name `pid` (the container's first process, as the
    /// host sees it) instead of [`Hooks::state_pid`]. Only the top-level
    /// `"pid":N` can match: inside a string a quote is escaped.
    pub fn point_state_at(&mut self, pid: i32) {
        let Some(old) = self.state_pid else { return };
        let from = format!("\"pid\":{old}");
        let to = format!("\"pid\":{pid}");
        for state in [
            &mut self.state_creating,
            &mut self.state_created,
            &mut self.state_running,
        ] {
            let text = String::from_utf8_lossy(state);
            if let Some(at) = text.find(&from) {
                let end = at + from.len();
                // The whole number, not a prefix of a longer one.
                if !text[end..].starts_with(|c: char| c.is_ascii_digit()) {
                    let replaced = format!("{}{to}{}", &text[..at], &text[end..]);
                    *state = replaced.into_bytes();
                }
            }
        }
        self.state_pid = Some(pid);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{origin} ({path}): cannot run it: {error}")]
    Spawn {
        origin: String,
        path: String,
        error: io::Error,
    },
    #[error("{origin} ({path}): {how}{stderr}")]
    Failed {
        origin: String,
        path: String,
        how: String,
        stderr: String,
        /// The exit status, or the signal that killed it.
        code: Option<u8>,
        signal: Option<u8>,
    },
    #[error("{origin} ({path}): did not finish within its timeout of {seconds} s and was killed")]
    TimedOut { origin: String, path: String, seconds: u64 },
}

/// Runs `hooks` in order, each to its end; the first failure stops.
pub fn run_all(hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run(h, state))
}

/// Runs one hook: `state` on its standard input, standard output
/// discarded, standard error kept for the error message; it fails when it
/// cannot start, exits with a status other than 0, is killed, or outlives
/// its timeout (then it is killed).
// Long: one hook from spawn to reaping: its input, timeout and error output.
pub fn run(hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path.display().to_string();
    let mut command = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        command.arg0(first).args(rest);
    }
    command
        .env_clear()
        .envs(hook.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|error| HookError::Spawn {
        origin: hook.origin.clone(),
        path: path.clone(),
        error,
    })?;
    let deadline = hook.timeout.map(|t| Instant::now() + t);
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    for fd in stdin
        .as_ref()
        .map(|s| s.as_fd())
        .into_iter()
        .chain(stderr.as_ref().map(|s| s.as_fd()))
    {
        let _ = event::set_nonblocking(fd, true);
    }
    let mut written = 0;
    let mut quoted = Vec::new();
    let status = loop {
        if let Some(s) = child.try_wait().ok().flatten() {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::TimedOut {
                origin: hook.origin.clone(),
                path,
                seconds: hook.timeout.unwrap_or_default().as_secs(),
            });
        }
        // The state goes in as the hook takes it (a hook that never reads
        // it must not block us), and standard error comes out as it is
        // written (a full pipe would stop the hook).
        if let Some(input) = stdin.as_mut() {
            match input.write(state.get(written..).unwrap_or_default()) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => written = state.len(),
            }
            if written >= state.len() {
                stdin = None;
            }
        }
        let mut watches = Vec::new();
        if let Some(input) = &stdin {
            watches.push(Watch::new(input.as_fd(), ready::OUT));
        }
        if let Some(err) = &stderr {
            watches.push(Watch::new(err.as_fd(), ready::IN));
        }
        // The child's end is not a descriptor here: look again soon.
        let _ = event::poll(&mut watches, 10);
        drop(watches);
        if let Some(err) = stderr.as_mut() {
            if !drain(err, &mut quoted) {
                stderr = None;
            }
        }
    };
    if let Some(err) = stderr.as_mut() {
        drain(err, &mut quoted);
    }
    if status.success() {
        return Ok(());
    }
    let code = status.code();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    let how = match (code, signal) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    };
    let text = String::from_utf8_lossy(&quoted);
    let text = text.trim();
    Err(HookError::Failed {
        origin: hook.origin.clone(),
        path,
        how,
        code: code.and_then(|c| u8::try_from(c).ok()),
        signal: signal.and_then(|s| u8::try_from(s).ok()),
        stderr: if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.replace('\n', " "))
        },
    })
}

/// Reads what is there without blocking, keeping the first bytes; `false`
/// at end-of-file or on an error.
fn drain(from: &mut impl Read, kept: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let room = STDERR_QUOTED.saturating_sub(kept.len());
                kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str, args: &[&str], timeout: Option<u64>) -> Hook {
        Hook {
            origin: "hooks.test[0]".into(),
            path: PathBuf::from(path),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            timeout: timeout.map(Duration::from_secs),
        }
    }

    #[test]
    fn state_reaches_stdin_and_failures_are_named() {
        let dir = std::env::temp_dir().join(format!("xvisor-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("state");
        let script = format!("cat > {}", out.display());
        run(&hook("/bin/sh", &["sh", "-c", &script], Some(5)), b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");
        std::fs::remove_dir_all(&dir).unwrap();

        let e = run(&hook("/bin/sh", &["sh", "-c", "echo broken >&2; exit 3"], None), b"{}")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "hooks.test[0] (/bin/sh): exited with status 3: broken");
        let e = run(&hook("/bin/sh", &["sh", "-c", "sleep 5"], Some(1)), b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not finish within its timeout of 1 s"), "{e}");
        let e = run(&hook("/nonexistent/hook", &[], None), b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("hooks.test[0] (/nonexistent/hook): cannot run it"), "{e}");
        // A hook that ignores its input still runs (a large state does not
        // block on a full pipe).
        run(&hook("/bin/true", &["true"], Some(5)), &vec![b'x'; 1 << 20]).unwrap();
    }

    #[test]
    fn the_states_are_pointed_at_the_containers_pid() {
        let mut hooks = Hooks {
            state_creating: br#"{"annotations":{"a":"\"pid\":12"},"id":"c","pid":12,"status":"creating"}"#.to_vec(),
            state_created: br#"{"pid":123}"#.to_vec(),
            state_pid: Some(12),
            ..Hooks::default()
        };
        hooks.point_state_at(40);
        assert_eq!(
            hooks.state_creating,
            br#"{"annotations":{"a":"\"pid\":12"},"id":"c","pid":40,"status":"creating"}"#.to_vec()
        );
        assert_eq!(
            hooks.state_created,
            br#"{"pid":123}"#.to_vec(),
            "another number is left alone"
        );
        assert_eq!(hooks.state_pid, Some(40));
    }
}
