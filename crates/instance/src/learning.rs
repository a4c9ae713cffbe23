//! `--learn`: the supervisor's side of [`xvisor_kernel::learn`] — where the
//! paths a guest names lead, as the instance sees them.
//!
//! Relative paths and directory descriptors are resolved through the
//! caller's `/proc/TID/cwd` and `/proc/TID/fd/N` links. Read by the
//! supervisor, which lives in the host's mount namespace, such a link
//! shows the path up to the root of the mount tree the file is in — the
//! instance's own root after its `pivot_root`, which no path of the host
//! reaches — so it reads exactly as the instance's path. An absolute path
//! is taken from the caller's root (`/proc/TID/root`, which reads `/`
//! unless the guest chroot'ed, and then the chroot's path in the
//! instance). Whether a path exists, and where its symlinks lead, is asked
//! of the instance's root itself (`openat2` with `RESOLVE_IN_ROOT` on init's
//! root), so that an absolute symlink leads where it leads for the guest.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, MutexGuard, OnceLock};

use xvisor_kernel::decode::GuestMemory;
use xvisor_kernel::learn::{self, Base, Learner, NetUse, Touch};
use xvisor_kernel::TrappedCall;

/// What the serving threads and the monitor share while learning.
#[derive(Debug)]
pub(crate) struct Learning {
    learner: Mutex<Learner>,
    /// init's host pid: its root is the instance's.
    init: i32,
    /// The instance's root, opened at the first call (by then init has
    /// entered it).
    root: OnceLock<Option<OwnedFd>>,
}

/// A trapped call's accesses, resolved before it goes on, recorded once
/// its result is known.
#[derive(Debug)]
pub(crate) struct Noted {
    host_tid: i32,
    program: String,
    paths: Vec<(String, Touch)>,
    net: Option<(NetUse, Option<u64>)>,
    socket: Option<i32>,
}

fn link(path: &str) -> Option<Vec<u8>> {
    let target = std::fs::read_link(path).ok()?;
    let bytes = target.as_os_str().as_bytes().to_vec();
    // A link to something without a path (pipe:[…], socket:[…]) or to a
    // file since removed leads nowhere a rule could name.
    (bytes.first() == Some(&b'/') && !bytes.ends_with(b" (deleted)")).then_some(bytes)
}

fn link_text(path: &str) -> Option<String> {
    link(path).and_then(|b| String::from_utf8(b).ok())
}

/// The socket inode a descriptor of `tid` holds.
fn socket_inode(tid: i32, fd: i32) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
    let text = target.to_str()?;
    text.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The longest UTF-8 prefix of `path` that ends at a component boundary:
/// a policy file names paths as text.
fn nameable(path: &[u8]) -> (String, bool) {
    match std::str::from_utf8(path) {
        Ok(s) => (s.to_string(), true),
        Err(e) => {
            let valid = &path[..e.valid_up_to()];
            let cut = valid.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let dir = if cut == 0 {
                "/"
            } else {
                std::str::from_utf8(&valid[..cut]).unwrap_or("/")
            };
            (dir.to_string(), false)
        }
    }
}

/// `base`/`path`, named by thread `tid`, as an absolute path in the
/// instance.
pub(crate) fn absolute(tid: i32, base: Base, path: &[u8]) -> Option<Vec<u8>> {
    if path.first() == Some(&b'/') {
        let root = link(&format!("/proc/{tid}/root"))?;
        return learn::join(&root, &path[1..]);
    }
    let base = match base {
        Base::Cwd => link(&format!("/proc/{tid}/cwd"))?,
        Base::Fd(fd) => link(&format!("/proc/{tid}/fd/{fd}"))?,
    };
    if path.is_empty() {
        return learn::join(&base, b".");
    }
    learn::join(&base, path)
}

impl Learning {
    pub(crate) fn new(init: i32) -> Self {
        Self {
            learner: Mutex::new(Learner::new()),
            init,
            root: OnceLock::new(),
        }
    }

    pub(crate) fn learner(&self) -> MutexGuard<'_, Learner> {
        self.learner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn root(&self) -> Option<&OwnedFd> {
        self.root
            .get_or_init(|| xvisor_sys::fs::open_path(None, &format!("/proc/{}/root", self.init)).ok())
            .as_ref()
    }

    /// Where `path` leads in the instance, if it exists.
    fn resolve(&self, path: &str) -> Option<String> {
        let root = self.root()?;
        let file = xvisor_sys::fs::open_path_in_root(root.as_fd(), path).ok()?;
        link_text(&format!("/proc/self/fd/{}", file.as_raw_fd()))
    }

    /// Reads what `call` names (its memory once) and resolves it; notes
    /// each path's existence before the call can change it. The caller
    /// checks that the call is still valid before recording.
    pub(crate) fn note(&self, call: &TrappedCall, memory: &dyn GuestMemory) -> Noted {
        let tid = i32::try_from(call.pid).unwrap_or(-1);
        let seen = learn::observe(call, memory);
        let mut paths = Vec::new();
        for named in &seen.paths {
            let Some(resolved) = absolute(tid, named.base, &named.path) else {
                continue;
            };
            let (path, whole) = nameable(&resolved);
            // A name a policy cannot hold stands for its directory: reading
            // or writing in it, or making an entry there.
            let touch = match named.touch {
                Touch::Entry if !whole => Touch::Write,
                t => t,
            };
            paths.push((path, touch));
        }
        let mut learner = self.learner();
        for (path, touch) in &paths {
            // The path itself too for an entry: a directory made now must
            // not count as there from the start when read later.
            learner.sight(path, &mut |p: &str| self.resolve(p));
            learner.sight(learn::subject(*touch, path), &mut |p: &str| self.resolve(p));
        }
        let program = match (learner.program_of(tid), &paths[..]) {
            (Some(p), _) => p.to_string(),
            // The first guest program, exec'd by init's fork: it needs itself.
            (None, [(path, Touch::Exec), ..]) if seen.exec => path.clone(),
            (None, _) => self.program_image(tid),
        };
        if seen.exec {
            if let Some((path, Touch::Exec)) = paths.first() {
                learner.exec_asked(tid, path, &program);
            }
        }
        drop(learner);
        let net = seen.net.map(|n| {
            let inode = socket_inode(tid, n.fd);
            (n, inode)
        });
        Noted {
            host_tid: tid,
            program,
            paths,
            net,
            socket: seen.socket.map(|(_, t)| t),
        }
    }

    /// The program `tid` runs, by the file it was executed from — unless
    /// that file is not in the instance (init, a fork of the supervisor).
    fn program_image(&self, tid: i32) -> String {
        match link_text(&format!("/proc/{tid}/exe")) {
            Some(image) if self.resolve(&image).as_deref() == Some(image.as_str()) => image,
            _ => "xvisor-init".to_string(),
        }
    }

    /// Records a noted call with what it returned (`None`: not seen).
    pub(crate) fn record(&self, noted: Noted, returned: Option<i64>) {
        let succeeded = returned.map(|r| r >= 0);
        let mut learner = self.learner();
        learner.calls += 1;
        for (path, touch) in &noted.paths {
            learner.touched(path, *touch, &noted.program, succeeded);
        }
        if let (Some(sock_type), Some(fd)) = (noted.socket, returned.filter(|r| *r >= 0)) {
            if let Some(inode) = socket_inode(noted.host_tid, i32::try_from(fd).unwrap_or(-1)) {
                learner.socket_made(inode, sock_type);
            }
        }
        if let Some((net, inode)) = &noted.net {
            // Failures the kernel reports before Landlock looks at the port
            // (or Landlock's own refusal) need no rule; a refused or
            // unreachable peer was let through.
            const NOT_REACHED: [i64; 7] = [-1, -9, -13, -14, -22, -88, -97];
            if !returned.is_some_and(|r| NOT_REACHED.contains(&r)) {
                learner.net_used(net, *inode, &noted.program);
            }
        }
    }

    /// Thread `child` was made by `creator`.
    pub(crate) fn spawned(&self, creator: i32, child: i32) {
        self.learner().spawned(creator, child);
    }

    /// Thread `former` exec'd and is now `tid`.
    pub(crate) fn exec_done(&self, former: i32, tid: i32) {
        let image = link_text(&format!("/proc/{tid}/exe"));
        self.learner().exec_done(former, tid, image.as_deref());
    }

    pub(crate) fn ended(&self, tid: i32) {
        self.learner().ended(tid);
    }
}

#[cfg(test)]
mod tests {
    use super::nameable;

    #[test]
    fn names_a_policy_cannot_hold_stand_for_their_directory() {
        assert_eq!(nameable(b"/tmp/caf\xc3\xa9"), ("/tmp/caf\u{e9}".to_string(), true));
        assert_eq!(nameable(b"/tmp/d/bad\xff/x"), ("/tmp/d".to_string(), false));
        assert_eq!(nameable(b"/bad\xff"), ("/".to_string(), false));
    }
}
