//! The instance's init: the first process in the new namespaces.
//!
//! It builds the instance (hostname, loopback, root, limits), reports to the
//! supervisor, starts the guest program when told to, and then stays as the
//! pid namespace's tiny pid 1: it reaps orphans, forwards signals to the
//! guest, and reports the guest's end. When it exits, the kernel kills every
//! other process of the instance.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use xvisor_confine::identity::{self, GUEST_ROOT_CAPABILITIES};
use xvisor_sys::caps::{self, cap};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{errno, net, seccomp, signal, socket, tty};

use crate::hooks;
use crate::protocol::{FromInit, HookFailure, StartStage, ToInit};
use crate::spec::{InstanceSpec, NamespaceKind, Network, StdinMode};

/// Signals init passes on to the guest program.
pub(crate) const FORWARDED_SIGNALS: &[i32] = &[
    signal::SIGINT,
    signal::SIGTERM,
    signal::SIGHUP,
    signal::SIGQUIT,
    signal::SIGUSR1,
    signal::SIGUSR2,
    signal::SIGWINCH,
    signal::SIGCONT,
    signal::SIGALRM,
];

/// Tag of the guest's report "my filter's listener will be descriptor N".
const REPORT_LISTENER: u8 = 9;

/// Takes the guest's seccomp listener (descriptor `fd` of process `guest`),
/// retrying for the moment between the guest's announcement and its
/// `seccomp()` call.
/// `None` when the guest ended first (it failed before exec and reports why
/// on the pipe).
fn fetch_listener(guest: i32, fd: i32) -> Result<Option<OwnedFd>, String> {
    let pidfd = process::pidfd_open(guest).map_err(context("open the guest's pidfd"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        if let Ok(candidate) = seccomp::pidfd_getfd(pidfd.as_fd(), fd) {
            let link = std::fs::read_link(format!("/proc/self/fd/{}", candidate.as_raw_fd())).unwrap_or_default();
            if link.to_string_lossy() == "anon_inode:seccomp notify" {
                return Ok(Some(candidate));
            }
        }
        let state = std::fs::read_to_string(format!("/proc/{guest}/stat")).unwrap_or_default();
        if state
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        {
            return Ok(None);
        }
        if std::time::Instant::now() > deadline {
            let _ = process::kill(guest, signal::SIGKILL);
            return Err(format!(
                "the guest's system-call filter did not appear at descriptor {fd}"
            ));
        }
        // The guest is a few instructions away from installing its filter:
        // yield to it first (a sleep costs the timer slack, ~50 µs), and
        // only sleep if it is slow to get there.
        if attempts < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// Runs in the child created by the supervisor. Never returns.
pub(crate) fn run(spec: &InstanceSpec, control: OwnedFd) -> ! {
    let code = match serve(spec, control.as_fd()) {
        Ok(code) => code,
        Err(text) => {
            let _ = send(control.as_fd(), &FromInit::SetupFailed(text), None);
            125
        }
    };
    process::exit_now(code)
}

fn send(control: BorrowedFd<'_>, msg: &FromInit, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    socket::send(control, &msg.encode(), fd)
}

fn receive(control: BorrowedFd<'_>) -> Result<ToInit, String> {
    let mut buf = [0u8; 16];
    let (n, _) = socket::recv(control, &mut buf).map_err(|e| format!("control channel: {e}"))?;
    if n == 0 {
        // The supervisor is gone: nothing to report to.
        process::exit_now(125);
    }
    ToInit::decode(&buf[..n]).map_err(|e| format!("control channel: {e}"))
}

fn context(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |e| format!("cannot {what}: {e}")
}

fn serve(spec: &InstanceSpec, control: BorrowedFd<'_>) -> Result<i32, String> {
    process::set_parent_death_signal(signal::SIGKILL).map_err(context("set the parent-death signal"))?;
    // Nothing xvisor inherited or opened crosses into the instance. (The
    // supervisor's descriptor objects are copies in this process's memory;
    // this process never returns into code that would drop them.)
    // Except those an OCI engine asked to pass (`--preserve-fds`).
    let mut keep: Vec<i32> = (3..3i32.saturating_add_unsigned(spec.preserve_fds)).collect();
    keep.push(control.as_raw_fd());
    process::close_all_from_except(3, &keep).map_err(context("close inherited descriptors"))?;
    // The network namespace is the costliest to create (about half a
    // millisecond): create it here, while the supervisor writes our id maps,
    // rather than in clone(). Capabilities in the new user namespace are
    // ours from birth, before any map exists.
    if spec.network == Network::None {
        process::unshare(process::ns::NET).map_err(context("create the network namespace"))?;
    }
    match receive(control)? {
        ToInit::Proceed => {}
        other => return Err(format!("control channel: unexpected {other:?}")),
    }
    // The supervisor has moved us into the instance's cgroups: that is the
    // root of the instance's cgroup namespace.
    process::unshare(process::ns::CGROUP).map_err(context("create the cgroup namespace"))?;
    // A joined UTS namespace keeps the name its owner gave it (and is not
    // ours to change).
    if !spec.joins(NamespaceKind::Uts) {
        process::sethostname(&spec.hostname).map_err(context("set the hostname"))?;
    }
    if spec.network == Network::None {
        net::interface_up("lo").map_err(context("bring up loopback"))?;
    }
    // Namespaced kernel settings (an OCI bundle's linux.sysctl, checked
    // there): /proc/sys shows this process's own network and IPC
    // namespaces, still through the host's /proc at this point. (Those of
    // joined namespaces were written by the supervisor, which holds the
    // privilege over them.)
    for (key, value) in &spec.sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| format!("cannot set sysctl {key}: {e}"))?;
    }
    // The runtime environment exists, the root is not built: the
    // supervisor's createRuntime hooks, then ours in the container's
    // namespaces (their paths resolve in the runtime's file tree, which
    // this mount namespace still shows).
    if !spec.hooks.create_runtime.is_empty() {
        send(control, &FromInit::NamespacesReady, None).map_err(context("report to the supervisor"))?;
        match receive(control)? {
            ToInit::Proceed => {}
            other => return Err(format!("control channel: unexpected {other:?}")),
        }
    }
    hooks::run_all(&spec.hooks.create_container, &spec.hooks.state_creating).map_err(|e| e.to_string())?;
    spec.root.enter().map_err(|e| e.to_string())?;
    if let Some(n) = spec.nofile {
        identity::limit_open_files(n).map_err(|e| e.to_string())?;
    }
    let _ = process::set_process_name("xvisor-init");

    let pty = if spec.tty {
        Some(tty::open_pty("/dev/ptmx").map_err(context("open a pseudo-terminal"))?)
    } else {
        None
    };
    send(
        control,
        &FromInit::Created,
        pty.as_ref().map(|(master, _)| master.as_fd()),
    )
    .map_err(context("report to the supervisor"))?;
    let slave = pty.map(|(master, slave)| {
        drop(master);
        slave
    });
    match receive(control)? {
        ToInit::Start => {}
        other => return Err(format!("control channel: unexpected {other:?}")),
    }

    let mut watched: Vec<i32> = FORWARDED_SIGNALS.to_vec();
    watched.push(signal::SIGCHLD);
    signal::block(&watched).map_err(context("block signals"))?;
    let signals = signal::signal_fd(&watched).map_err(context("create a signalfd"))?;
    let (report_read, report_write) = event::pipe().map_err(context("create a pipe"))?;
    let filter = xvisor_trap::bpf::to_bytes(&xvisor_trap::bpf::compile(&spec.policy));
    let prepared = match PreparedExec::new(spec) {
        Ok(p) => p,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(errno::EINVAL);
            let _ = send(
                control,
                &FromInit::StartFailed {
                    stage: StartStage::Exec,
                    errno,
                },
                None,
            );
            return Ok(127);
        }
    };

    let guest = match process::fork().map_err(context("fork the guest"))? {
        Forked::Child => {
            drop(report_read);
            start_guest(spec, &prepared, slave, report_write, &filter)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(report_write);
    drop(slave);

    // The guest reports on the pipe in 5-byte messages: where its filter's
    // listener will be, or why it could not start. Its exec closes the pipe:
    // end-of-file means it runs.
    loop {
        let mut report = [0u8; 5];
        let n = event::read(report_read.as_fd(), &mut report).map_err(context("read the start report"))?;
        if n == 0 {
            break;
        }
        if n != report.len() {
            return Err("the guest sent a short start report".into());
        }
        let value = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
        if report[0] == REPORT_LISTENER {
            if let Some(listener) = fetch_listener(guest, value)? {
                send(control, &FromInit::Listener, Some(listener.as_fd()))
                    .map_err(context("hand over the listener"))?;
            }
            continue;
        }
        let stage = match report[0] {
            1 => StartStage::Workdir,
            2 => StartStage::Identity,
            4 => StartStage::Filter,
            5 => StartStage::Hook,
            _ => StartStage::Exec,
        };
        let _ = process::wait_pid(guest, false);
        let _ = send(control, &FromInit::StartFailed { stage, errno: value }, None);
        return Ok(127);
    }
    send(control, &FromInit::Running { guest_pid: guest }, None).map_err(context("report to the supervisor"))?;

    // From here on init needs nothing but to signal its children (which may
    // run under another uid): keep CAP_KILL only, and become undumpable so
    // the guest cannot ptrace or read it.
    let _ = process::set_dumpable(false);
    let _ = caps::limit_bounding_set(&[cap::KILL]);
    let _ = caps::set_exact(&[cap::KILL]);

    loop {
        let mut watches = [Watch::new(signals.as_fd(), ready::IN), Watch::new(control, ready::IN)];
        event::poll(&mut watches, -1).map_err(context("poll"))?;
        if watches[1].ready != 0 {
            let mut buf = [0u8; 16];
            match socket::recv(control, &mut buf) {
                Ok((0, _)) | Err(_) => return Ok(137),
                Ok(_) => {}
            }
        }
        if watches[0].ready == 0 {
            continue;
        }
        while let Some(info) = signal::read_signal(signals.as_fd()).map_err(context("read signals"))? {
            if info.signal != signal::SIGCHLD {
                let _ = process::kill(guest, info.signal);
                continue;
            }
            // Reap everything that has ended: the guest, and orphans that
            // were re-parented to us.
            while let Ok(Some((pid, status))) = process::wait_pid(-1, true) {
                if pid == guest {
                    let _ = send(
                        control,
                        &FromInit::Exited {
                            wait_status: status.to_raw(),
                        },
                        None,
                    );
                    return Ok(0);
                }
            }
        }
    }
}

/// Runs in the guest's process, between fork and exec. Never returns.
/// What the guest's process needs, prepared by init *before* forking it, so
/// the forked copy does as little as possible before exec (every page it
/// writes is a copy-on-write fault).
struct PreparedExec {
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
    /// Paths to try, in order: the program itself when it names a path,
    /// else the PATH entries where a file of that name exists.
    candidates: Vec<std::ffi::CString>,
    may_set_groups: bool,
}

impl PreparedExec {
    fn new(spec: &InstanceSpec) -> io::Result<Self> {
        let argv = spec
            .argv
            .iter()
            .map(|a| xvisor_sys::cstring(a.as_str()))
            .collect::<io::Result<Vec<_>>>()?;
        if argv.is_empty() {
            return Err(io::Error::from_raw_os_error(errno::EINVAL));
        }
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| xvisor_sys::cstring(format!("{k}={v}")))
            .collect::<io::Result<Vec<_>>>()?;
        let program = &spec.argv[0];
        let candidates = if program.contains('/') {
            vec![xvisor_sys::cstring(program.as_str())?]
        } else {
            let path = spec
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map_or("/usr/bin:/bin", |(_, v)| v.as_str());
            path.split(':')
                .map(|dir| {
                    if dir.is_empty() {
                        format!("./{program}")
                    } else {
                        format!("{dir}/{program}")
                    }
                })
                .filter(|candidate| std::fs::metadata(candidate).is_ok_and(|m| !m.is_dir()))
                .map(xvisor_sys::cstring)
                .collect::<io::Result<Vec<_>>>()?
        };
        let may_set_groups = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow");
        // Read now so the guest's process finds it cached.
        let _ = caps::last_cap();
        Ok(Self {
            argv,
            envp,
            candidates,
            may_set_groups,
        })
    }
}

fn start_guest(
    spec: &InstanceSpec,
    prepared: &PreparedExec,
    slave: Option<OwnedFd>,
    report: OwnedFd,
    filter: &[u8],
) -> ! {
    let fail = |stage: StartStage, error: io::Error| -> ! {
        let errno = error.raw_os_error().unwrap_or(errno::EINVAL);
        let mut msg = [0u8; 5];
        msg[0] = stage as u8;
        msg[1..].copy_from_slice(&errno.to_le_bytes());
        let _ = event::write_all(report.as_fd(), &msg);
        process::exit_now(127)
    };
    // A new session: the guest has no controlling terminal but its own pty,
    // so it can never inject input into a terminal of the host.
    if let Err(e) = process::setsid() {
        fail(StartStage::Identity, e);
    }
    if let Some(slave) = &slave {
        let setup = tty::set_controlling_terminal(slave.as_fd())
            .and_then(|_| (0..3).try_for_each(|n| event::dup_onto(slave.as_fd(), n)));
        if let Err(e) = setup {
            fail(StartStage::Identity, e);
        }
    } else if spec.stdin == StdinMode::Null {
        let null = xvisor_sys::fs::open_read_write("/dev/null", true).and_then(|null| event::dup_onto(null.as_fd(), 0));
        if let Err(e) = null {
            fail(StartStage::Identity, e);
        }
    }
    drop(slave);
    if let Err(e) = std::env::set_current_dir(&spec.workdir) {
        fail(StartStage::Workdir, e);
    }
    let capabilities = spec.capabilities.as_deref().unwrap_or(GUEST_ROOT_CAPABILITIES);
    if let Err(e) = identity::become_guest_with_groups(
        spec.uid,
        spec.gid,
        &spec.additional_gids,
        capabilities,
        prepared.may_set_groups,
    ) {
        let error = match &e {
            identity::IdentityError::Setup { error, .. } => {
                io::Error::from_raw_os_error(error.raw_os_error().unwrap_or(errno::EPERM))
            }
            _ => io::Error::from_raw_os_error(errno::EPERM),
        };
        fail(StartStage::Identity, error);
    }
    signal::reset_all_dispositions();
    if let Err(e) = signal::unblock_all() {
        fail(StartStage::Identity, e);
    }
    // Last step before exec: the system-call filter. init takes its listener
    // from this process (pidfd_getfd) at the number announced here — the
    // lowest free one, which is what the kernel gives the listener — since
    // any call made after the filter may already wait for the supervisor.
    // A change of uid made this process undumpable, and its memory still
    // belongs to the host's user namespace (it was forked, not exec'd): init
    // could not take the listener. exec decides dumpability afresh anyway.
    if let Err(e) = process::set_dumpable(true) {
        fail(StartStage::Filter, e);
    }
    // The engine's profile first: xvisor's installation and the exec must
    // pass it (as they would under any runtime), and it can never be
    // loosened by anything after it.
    if let Some(extra) = &spec.extra_filter {
        if let Err(e) = seccomp::install_filter(extra) {
            fail(StartStage::Filter, e);
        }
    }
    let at = match seccomp::lowest_free_fd() {
        Ok(fd) => fd,
        Err(e) => fail(StartStage::Filter, e),
    };
    let mut msg = [0u8; 5];
    msg[0] = REPORT_LISTENER;
    msg[1..].copy_from_slice(&at.to_le_bytes());
    if let Err(e) = event::write_all(report.as_fd(), &msg) {
        fail(StartStage::Filter, e);
    }
    match seccomp::install_filter_with_listener(filter) {
        // Close-on-exec: the guest program never holds its own listener.
        Ok(listener) => std::mem::forget(listener),
        Err(e) => fail(StartStage::Filter, e),
    }
    if !spec.hooks.start_container.is_empty() {
        run_start_container_hooks(spec, &report);
    }
    fail(StartStage::Exec, exec_candidates(prepared))
}

/// `execvp` semantics over the prepared candidates: each is tried in turn;
/// a missing file moves on, a denied one is remembered. Returns only the
/// failure.
fn exec_candidates(prepared: &PreparedExec) -> io::Error {
    let mut denied = false;
    for candidate in &prepared.candidates {
        let err = process::execve(candidate, &prepared.argv, &prepared.envp);
        match err.raw_os_error() {
            Some(errno::EACCES) => denied = true,
            Some(errno::ENOENT) | Some(errno::ENOTDIR) => {}
            _ => return err,
        }
    }
    io::Error::from_raw_os_error(if denied { errno::EACCES } else { errno::ENOENT })
}

/// The `startContainer` hooks, run by the guest's process itself once it is
/// as confined as the program will be (identity, capabilities,
/// `no_new_privs`, the system-call filter served by the supervisor): they
/// run in the container's namespaces and root, and are no freer than the
/// program. A failure is reported on the start pipe and ends the process.
fn run_start_container_hooks(spec: &InstanceSpec, report: &OwnedFd) {
    // A hook that closes its input early must not kill us with SIGPIPE.
    let _ = signal::set_disposition(signal::SIGPIPE, true);
    for (index, hook) in spec.hooks.start_container.iter().enumerate() {
        let Err(error) = hooks::run(hook, &spec.hooks.state_created) else {
            continue;
        };
        let failure = match error {
            hooks::HookError::Spawn { .. } => HookFailure::CannotRun,
            hooks::HookError::TimedOut { .. } => HookFailure::TimedOut,
            hooks::HookError::Failed { code: Some(code), .. } => HookFailure::Exited(code),
            hooks::HookError::Failed { signal, .. } => HookFailure::Signaled(signal.unwrap_or(0)),
        };
        let mut msg = [0u8; 5];
        msg[0] = StartStage::Hook as u8;
        msg[1..].copy_from_slice(&failure.encode(u8::try_from(index).unwrap_or(u8::MAX)).to_le_bytes());
        let _ = event::write_all(report.as_fd(), &msg);
        process::exit_now(127)
    }
    let _ = signal::set_disposition(signal::SIGPIPE, false);
}
