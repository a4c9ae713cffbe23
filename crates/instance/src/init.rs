//! The instance's init: the first process in the new namespaces.
//!
//! It builds the instance (hostname, loopback, root, limits), reports to the
//! supervisor, starts the guest program when told to, and then stays as the
//! pid namespace's tiny pid 1: it reaps orphans, forwards signals to the
//! guest, and reports the guest's end. When it exits, the kernel kills every
//! other process of the instance.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use xvisor_confine::identity::{self, CapabilityCeiling, IdMaps, NoNewPrivileges};
use xvisor_sys::caps::{self, cap};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{errno, net, seccomp, signal, socket, tty};

use crate::exec::{ExecRequest, ProcessSpec};
use crate::hooks;
use crate::protocol::{FromInit, HookFailure, StartStage, ToInit, MAX_TO_INIT};
use crate::spec::{InstanceSpec, NamespaceKind};

/// init's command line and name, as the instance and `xvisor ps` show them.
pub(crate) const INIT_NAME: &str = "xvisor-init";

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

/// init's answer to that report: "I hold your listener" (or gave up on it).
const LISTENER_TAKEN: u8 = 1;

/// The channel a starting process reports on, in 5-byte messages, and init
/// answers on: a message socket pair, close-on-exec, so the process's exec
/// closes it and init reads end-of-file ("it runs").
fn report_channel() -> io::Result<(OwnedFd, OwnedFd)> {
    socket::seqpacket_pair()
}

/// The capabilities init keeps in its permitted set once the guest runs,
/// for the processes it starts later (exec): the most any of them may have,
/// the identity changes (SETUID, SETGID, SETPCAP: all in that set), and
/// SYS_PTRACE to take a new process's listener when it runs under another
/// uid. Only KILL stays effective; the rest is raised by a child between
/// fork and exec, or around `pidfd_getfd`. All of them are capabilities of
/// the instance's user namespace only. (Under [`CapabilityCeiling::Any`]
/// that includes CAP_SYS_ADMIN, which a process that leaves `no_new_privs`
/// off needs to install its filters.)
fn kept_for_exec(ceiling: CapabilityCeiling) -> Vec<u32> {
    let mut keep = ceiling.capabilities();
    if !keep.contains(&cap::SYS_PTRACE) {
        keep.push(cap::SYS_PTRACE);
    }
    keep
}

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
        let state = xvisor_sys::fs::read_small(format!("/proc/{guest}/stat")).unwrap_or_default();
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

/// The name of init's child that starts exec'd processes when the program
/// itself is init ([`InstanceSpec::program_is_init`]).
pub(crate) const EXEC_STARTER_NAME: &str = "xvisor-starter";

/// Runs in the child created by the supervisor. Never returns.
/// `join_user`: the user namespace to join first (a pod's, see
/// `Instance::create`).
pub(crate) fn run(spec: &InstanceSpec, control: OwnedFd, join_user: Option<BorrowedFd<'_>>) -> ! {
    // The hooks this process runs (createContainer, startContainer) are
    // told the container's pid: when the program is init, this process's
    // own as the host sees it — the host's /proc is still mounted here.
    let pointed;
    let hooked = !spec.hooks.create_container.is_empty() || !spec.hooks.start_container.is_empty();
    let spec = if spec.program_is_init && hooked {
        let mut own = spec.clone();
        if let Ok(Ok(pid)) = std::fs::read_link("/proc/self").map(|l| l.to_string_lossy().parse::<i32>()) {
            own.hooks.point_state_at(pid);
        }
        pointed = own;
        &pointed
    } else {
        spec
    };
    let code = match serve(spec, control.as_fd(), join_user) {
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

/// The start: `Start`, or a pooled program's `StartWith` and its stdio.
fn receive_start(control: BorrowedFd<'_>) -> Result<(ToInit, Vec<OwnedFd>), String> {
    // Sized to the message: an instance waits here until its start (a
    // pooled one for long), holding no large buffer.
    let (buf, fds) = socket::recv_sized(control, MAX_TO_INIT).map_err(|e| format!("control channel: {e}"))?;
    if buf.is_empty() {
        // The supervisor is gone: nothing to report to.
        process::exit_now(125);
    }
    let message = ToInit::decode(&buf).map_err(|e| format!("control channel: {e}"))?;
    Ok((message, fds))
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

/// init's side of the protocol with the supervisor, phase by phase:
/// prepare (this process becomes init), the guest's trees shown through
/// the id maps, namespaces ready (createRuntime hooks), root built,
/// created, start, running; then it serves exec'd processes until the end.
fn serve(spec: &InstanceSpec, control: BorrowedFd<'_>, join_user: Option<BorrowedFd<'_>>) -> Result<i32, String> {
    prepare(spec, control, join_user)?;
    proceed(control)?;
    let guest_trees = send_guest_trees(spec, control)?;
    set_up_namespaces(spec)?;
    // The runtime environment exists, the root is not built: the
    // supervisor's createRuntime hooks, then ours in the container's
    // namespaces (their paths resolve in the runtime's file tree, which
    // this mount namespace still shows).
    if !spec.hooks.create_runtime.is_empty() {
        send(control, &FromInit::NamespacesReady, None).map_err(context("report to the supervisor"))?;
        proceed(control)?;
    }
    build_root(spec, guest_trees)?;
    let slave = created(spec, control)?;
    // The guest's filter and exec are prepared while the supervisor takes
    // the news (as runc, the program is looked up before the start; a
    // failure is reported once the start is asked for).
    let filters = Filters {
        engine: spec.extra_filter.clone(),
        own: xvisor_trap::bpf::to_bytes(&xvisor_trap::bpf::compile(&spec.policy)),
    };
    let main = spec.main_process();
    let prepared = PreparedExec::new(&main);
    let (main, prepared, given) = match receive_start(control)? {
        (ToInit::Prepare, _) => return serve_prepared(spec, control, &filters, &main, prepared),
        (ToInit::Start, _) => (main, prepared, Vec::new()),
        // A pooled instance: its program arrives now, with its stdio.
        (ToInit::StartWith { request }, fds) if fds.len() == 3 => {
            let main = request.as_main(main).map_err(|e| format!("control channel: {e}"))?;
            let prepared = PreparedExec::new(&main);
            (main, prepared, fds)
        }
        (other, _) => return Err(format!("control channel: unexpected {other:?}")),
    };

    let mut watched: Vec<i32> = FORWARDED_SIGNALS.to_vec();
    watched.push(signal::SIGCHLD);
    signal::block(&watched).map_err(context("block signals"))?;
    let signals = signal::signal_fd(&watched).map_err(context("create a signalfd"))?;
    let (report_read, report_write) = report_channel().map_err(context("create the start report channel"))?;
    let prepared = match prepared {
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
    let start = Start {
        spec,
        control,
        signals: signals.as_fd(),
        filters: &filters,
        main: &main,
        prepared: &prepared,
    };
    let started = start.guest(report_read, report_write, slave, given)?;
    let (guest, report_read) = match started {
        Started::Guest { pid, report_read } => (pid, report_read),
        Started::Ended(code) => return Ok(code),
    };
    if let Some(code) = until_running(control, guest, report_read.as_fd())? {
        return Ok(code);
    }
    send(control, &FromInit::Running { guest_pid: guest }, None).map_err(context("report to the supervisor"))?;
    serve_execs(spec, control, signals.as_fd(), &filters, guest)
}

/// A pooled instance's start in two steps (`ToInit::Prepare`): the guest's
/// process is forked and confined now ([`start_prepared`]), and handed its
/// program on `StartWith`; then as [`serve`].
fn serve_prepared(
    spec: &InstanceSpec,
    control: BorrowedFd<'_>,
    filters: &Filters,
    main: &ProcessSpec,
    prepared: io::Result<PreparedExec>,
) -> Result<i32, String> {
    if spec.program_is_init || spec.tty || !spec.hooks.start_container.is_empty() {
        return Err("control channel: this instance's guest cannot be prepared before its program".into());
    }
    let may_set_groups = prepared.map_err(context("prepare the guest"))?.may_set_groups;
    let mut watched: Vec<i32> = FORWARDED_SIGNALS.to_vec();
    watched.push(signal::SIGCHLD);
    signal::block(&watched).map_err(context("block signals"))?;
    let signals = signal::signal_fd(&watched).map_err(context("create a signalfd"))?;
    let (report_read, report_write) = report_channel().map_err(context("create the start report channel"))?;
    let (request, request_theirs) = socket::seqpacket_pair().map_err(context("create the guest's request channel"))?;
    let guest = match process::fork().map_err(context("fork the guest"))? {
        Forked::Child => {
            drop(report_read);
            drop(request);
            start_prepared(main, may_set_groups, request_theirs, report_write, filters)
        }
        Forked::Parent { pid, .. } => pid,
    };
    drop(report_write);
    drop(request_theirs);
    // Its listener, before it waits: the supervisor serves it from now on.
    loop {
        match read_report(guest, report_read.as_fd())? {
            Report::Listener(Some(listener)) => {
                send(control, &FromInit::Listener, Some(listener.as_fd()))
                    .map_err(context("hand over the listener"))?;
                break;
            }
            Report::Listener(None) => {}
            Report::Running => return Err("the prepared guest ended before its program came".into()),
            Report::Failed { stage, errno } => {
                let _ = process::wait_pid(guest, false);
                let _ = send(control, &FromInit::StartFailed { stage, errno }, None);
                return Ok(127);
            }
        }
    }
    send(control, &FromInit::Prepared, None).map_err(context("report to the supervisor"))?;
    let (request_message, fds) = match receive_start(control)? {
        (ToInit::StartWith { request }, fds) if fds.len() == 3 => (request, fds),
        (other, _) => return Err(format!("control channel: unexpected {other:?}")),
    };
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    socket::send_fds(request.as_fd(), &request_message.encode(), &borrowed)
        .map_err(context("hand the program to the guest"))?;
    drop(borrowed);
    drop(fds);
    drop(request);
    if let Some(code) = until_running(control, guest, report_read.as_fd())? {
        return Ok(code);
    }
    send(control, &FromInit::Running { guest_pid: guest }, None).map_err(context("report to the supervisor"))?;
    serve_execs(spec, control, signals.as_fd(), filters, guest)
}

/// Waits for the supervisor's go (`Proceed`).
fn proceed(control: BorrowedFd<'_>) -> Result<(), String> {
    match receive(control)? {
        ToInit::Proceed => Ok(()),
        other => Err(format!("control channel: unexpected {other:?}")),
    }
}

/// prepare: this process becomes the instance's init — its name, its
/// parent's death, a pod's user namespace joined, nothing inherited kept,
/// no controlling terminal, its own network namespace made.
fn prepare(spec: &InstanceSpec, control: BorrowedFd<'_>, join_user: Option<BorrowedFd<'_>>) -> Result<(), String> {
    // A fork of the supervisor shows the supervisor's command line as its
    // own — host paths, `-e` values — and the instance reads it as
    // /proc/1/cmdline: a short, fixed one instead, before any guest exists.
    process::set_command_line(INIT_NAME).map_err(context("replace the command line inherited from xvisor"))?;
    let _ = process::set_process_name(INIT_NAME);
    // When the program is init, its parent is the supervisor's (`create`,
    // which exits): the supervisor's death reaches it through the monitor
    // (PTRACE_O_EXITKILL) and, until the monitor holds it, through the
    // control channel (its end-of-file ends this process).
    if !spec.program_is_init {
        process::set_parent_death_signal(signal::SIGKILL).map_err(context("set the parent-death signal"))?;
    }
    // A pod's user namespace: joined first, so that the namespaces made
    // from here on belong to it (and the capabilities the guest is given
    // hold over the pod's namespaces, which belong to it too).
    if let Some(user) = join_user {
        process::setns(user, process::ns::USER).map_err(context("join the pod's user namespace"))?;
        let mut own = process::ns::MOUNT;
        for kind in [NamespaceKind::Ipc, NamespaceKind::Uts] {
            if !spec.joins(kind) {
                own |= kind.flag();
            }
        }
        process::unshare(own).map_err(context("create the instance's namespaces"))?;
    }
    // Nothing xvisor inherited or opened crosses into the instance. (The
    // supervisor's descriptor objects are copies in this process's memory;
    // this process never returns into code that would drop them.)
    // Except those an OCI engine asked to pass (`--preserve-fds`).
    let mut keep: Vec<i32> = (3..3i32.saturating_add_unsigned(spec.preserve_fds)).collect();
    keep.push(control.as_raw_fd());
    process::close_all_from_except(3, &keep).map_err(context("close inherited descriptors"))?;
    // Out of the host's terminal for good: neither init nor any process it
    // forks has a controlling terminal (see `start_process`).
    WITHOUT_CONTROLLING_TERMINAL.store(tty::leave_controlling_terminal(), std::sync::atomic::Ordering::Relaxed);
    // The network namespace is the costliest to create (about half a
    // millisecond): create it here, while the supervisor writes our id maps,
    // rather than in clone(). Capabilities in the new user namespace are
    // ours from birth, before any map exists.
    if spec.network.is_own() {
        process::unshare(process::ns::NET).map_err(context("create the network namespace"))?;
    }
    Ok(())
}

/// The trees holding the guest's files, sent to the supervisor to be shown
/// through the instance's id maps (with host ids of its own only).
fn send_guest_trees(
    spec: &InstanceSpec,
    control: BorrowedFd<'_>,
) -> Result<Option<xvisor_confine::rootfs::HostTrees>, String> {
    // With host ids of its own, the guest's root is nobody on the host: the
    // host trees are taken while this process still has the caller's ids
    // (path lookup on the host is the caller's), and those holding the
    // guest's files go to the supervisor to be shown through our maps.
    Ok(if spec.own_host_ids {
        let trees = spec.root.take_host_trees().map_err(|e| e.to_string())?;
        if spec.root.has_guest_owned_trees() {
            for (name, tree) in trees.guest_owned(&spec.root) {
                send(control, &FromInit::GuestTree(name), Some(tree)).map_err(context("report to the supervisor"))?;
            }
            send(control, &FromInit::GuestTreesSent, None).map_err(context("report to the supervisor"))?;
            proceed(control)?;
        }
        Some(trees)
    } else {
        None
    })
}

/// The instance's namespaces set up from inside: its ids (an engine's
/// maps), its cgroup namespace, hostname, loopback and sysctls.
fn set_up_namespaces(spec: &InstanceSpec) -> Result<(), String> {
    // With an engine's maps, our host ids (the supervisor's) are not among
    // them: become the namespace's root, and drop the supervisor's groups,
    // which would otherwise stay with us unmapped. (xvisor's own maps map
    // the supervisor's ids themselves.)
    if matches!(spec.id_maps, Some(IdMaps::Given { .. })) {
        // Rootless, the kernel denies setgroups (and there are no groups of
        // the caller's to drop but its own).
        let denied = xvisor_sys::fs::read_small("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        if !denied {
            process::setgroups(&[]).map_err(context("drop the supervisor's groups"))?;
        }
        process::setresgid(0).map_err(context("become gid 0 of the user namespace (is it mapped?)"))?;
        process::setresuid(0).map_err(context("become uid 0 of the user namespace (is it mapped?)"))?;
    }
    // The supervisor has moved us into the instance's cgroups: that is the
    // root of the instance's cgroup namespace.
    process::unshare(process::ns::CGROUP).map_err(context("create the cgroup namespace"))?;
    // A joined UTS namespace keeps the name its owner gave it (and is not
    // ours to change).
    if !spec.joins(NamespaceKind::Uts) {
        process::sethostname(&spec.hostname).map_err(context("set the hostname"))?;
    }
    if spec.network.is_own() {
        net::interface_up("lo").map_err(context("bring up loopback"))?;
    }
    if matches!(spec.network, crate::spec::Network::Nat { .. }) {
        // The user-mode stack's tap, made after this, takes its IPv6 address
        // from the stack's router advertisement (where the host has IPv6):
        // asked for at once and used without duplicate detection (nothing
        // else is on that link), it is there within milliseconds, not seconds.
        for (setting, value) in [("accept_dad", "0"), ("router_solicitation_delay", "0")] {
            let path = format!("/proc/sys/net/ipv6/conf/default/{setting}");
            if std::path::Path::new(&path).exists() {
                std::fs::write(&path, value).map_err(context("configure IPv6 for the instance's network"))?;
            }
        }
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
    if spec.ping_sockets && spec.network.is_own() {
        let gid_map =
            xvisor_sys::fs::read_small("/proc/self/gid_map").map_err(context("read the instance's gid map"))?;
        if let Some((low, high)) = ping_group_range(&gid_map) {
            // A kernel without ICMP echo sockets has no such setting.
            match std::fs::write("/proc/sys/net/ipv4/ping_group_range", format!("{low} {high}")) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(context("let the instance's groups open ICMP echo sockets")(e))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The groups of the instance that `net.ipv4.ping_group_range` can name,
/// from its `gid_map` (`inside outside count` lines): from gid 0 to the
/// highest gid whose host id is above gid 0's. The kernel keeps the range as
/// host ids and wants both ends mapped; host ids in between that are not
/// the instance's cannot be in its network namespace anyway.
fn ping_group_range(gid_map: &str) -> Option<(u32, u32)> {
    let lines: Vec<(u64, u64, u64)> = gid_map
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().map(|w| w.parse::<u64>().ok());
            Some((words.next()??, words.next()??, words.next()??))
        })
        // Values are u32s from the kernel: their sums cannot overflow a u64.
        .filter(|&(inside, _, count)| count > 0 && inside <= u64::from(u32::MAX) && count <= u64::from(u32::MAX))
        .collect();
    let &(_, root_outside, _) = lines.iter().find(|&&(inside, _, _)| inside == 0)?;
    let high = lines
        .iter()
        .filter(|&&(_, outside, _)| outside >= root_outside)
        .filter_map(|&(inside, _, count)| (inside + count).checked_sub(1))
        .max()?;
    Some((0, u32::try_from(high).ok()?))
}

/// root built: the createContainer hooks, the root entered, the paths
/// denied, the walls raised, the limits set.
fn build_root(spec: &InstanceSpec, guest_trees: Option<xvisor_confine::rootfs::HostTrees>) -> Result<(), String> {
    hooks::run_all(&spec.hooks.create_container, &spec.hooks.state_creating).map_err(|e| e.to_string())?;
    match guest_trees {
        Some(trees) => spec.root.enter_with(trees),
        None => spec.root.enter(),
    }
    .map_err(|e| e.to_string())?;
    if !spec.denied_paths.is_empty() {
        let patterns = spec
            .denied_paths
            .iter()
            .map(|p| xvisor_trap::glob::Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("[fs].deny {e}"))?;
        xvisor_confine::rootfs::deny_paths(&patterns).map_err(|e| e.to_string())?;
    }
    // Before the guest or any exec'd process exists: they are all in one
    // Landlock domain, init's.
    // init holds CAP_SYS_ADMIN of the instance's user namespace here: an
    // instance whose processes may leave `no_new_privs` off (an OCI
    // config's choice) must not have init set it, as they would inherit it.
    let init_no_new_privileges = if spec.no_new_privileges {
        NoNewPrivileges::Set
    } else {
        NoNewPrivileges::Left
    };
    xvisor_confine::wall::wall_in_root(init_no_new_privileges).map_err(|e| e.to_string())?;
    spec.access.raise(init_no_new_privileges).map_err(|e| e.to_string())?;
    if spec.deny_write_execute {
        process::deny_write_execute().map_err(context(
            "deny memory both writable and executable (PR_SET_MDWE, Linux 6.3)",
        ))?;
    }
    if let Some(n) = spec.processes_per_user {
        identity::limit_processes_per_user(n).map_err(|e| e.to_string())?;
    }
    if let Some(n) = spec.nofile {
        identity::limit_open_files(n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// created: the supervisor is told (with the terminal's master side when
/// there is one); returns the terminal's slave side.
fn created(spec: &InstanceSpec, control: BorrowedFd<'_>) -> Result<Option<OwnedFd>, String> {
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
    Ok(pty.map(|(master, slave)| {
        drop(master);
        slave
    }))
}

/// What starting the guest needs.
struct Start<'a> {
    spec: &'a InstanceSpec,
    control: BorrowedFd<'a>,
    signals: BorrowedFd<'a>,
    filters: &'a Filters,
    main: &'a ProcessSpec,
    prepared: &'a PreparedExec,
}

/// How the start went, for this process.
enum Started {
    /// The guest is forked (it runs `start_process`): its pid, and the
    /// pipe it reports its start on.
    Guest { pid: i32, report_read: OwnedFd },
    /// This process's part is over (the exec starter's serving ended):
    /// its exit status.
    Ended(i32),
}

impl Start<'_> {
    /// start: the guest is forked (or, when the program is init, this
    /// process becomes it and its child stays to start exec'd processes).
    fn guest(
        &self,
        report_read: OwnedFd,
        report_write: OwnedFd,
        slave: Option<OwnedFd>,
        given: Vec<OwnedFd>,
    ) -> Result<Started, String> {
        let Start {
            spec,
            control,
            signals,
            filters,
            main,
            prepared,
        } = *self;
        let guest = if spec.program_is_init {
            // This process becomes the program. Its start reports go to the
            // supervisor itself (which takes its listener as init does a
            // child's below): a program that ends at once takes every other
            // process of its pid namespace with it, so nothing of the instance
            // could be relied on to pass them on. Its child stays behind to
            // start exec'd processes, as init otherwise does, and dies with it.
            send(control, &FromInit::ProgramReports, Some(report_read.as_fd()))
                .map_err(context("report to the supervisor"))?;
            drop(report_read);
            let me = process::getpid();
            match process::fork().map_err(context("fork the exec starter"))? {
                Forked::Child => {
                    process::set_parent_death_signal(signal::SIGKILL)
                        .map_err(context("set the parent-death signal"))?;
                    if process::getppid() != me {
                        return Ok(Started::Ended(137));
                    }
                    let _ = process::set_command_line(EXEC_STARTER_NAME);
                    let _ = process::set_process_name(EXEC_STARTER_NAME);
                    drop(report_write);
                    drop(slave);
                    return serve_execs(spec, control, signals, filters, me).map(Started::Ended);
                }
                Forked::Parent { .. } => {
                    let stdio = Stdio {
                        terminal: slave,
                        given: Vec::new(),
                        preserved: spec.preserve_fds,
                    };
                    start_process(main, prepared, stdio, report_write, filters, Some(spec))
                }
            }
        } else {
            match process::fork().map_err(context("fork the guest"))? {
                Forked::Child => {
                    drop(report_read);
                    let stdio = Stdio {
                        terminal: slave,
                        given,
                        preserved: spec.preserve_fds,
                    };
                    start_process(main, prepared, stdio, report_write, filters, Some(spec))
                }
                Forked::Parent { pid, .. } => pid,
            }
        };
        drop(report_write);
        drop(slave);
        Ok(Started::Guest {
            pid: guest,
            report_read,
        })
    }
}

/// running: the guest reports on the pipe in 5-byte messages where its
/// filter's listener will be, or why it could not start; its exec closes
/// the pipe, and end-of-file means it runs. `Some(127)` when it could not
/// start.
fn until_running(control: BorrowedFd<'_>, guest: i32, report_read: BorrowedFd<'_>) -> Result<Option<i32>, String> {
    loop {
        match read_report(guest, report_read)? {
            Report::Listener(Some(listener)) => {
                send(control, &FromInit::Listener, Some(listener.as_fd())).map_err(context("hand over the listener"))?
            }
            Report::Listener(None) => {}
            Report::Running => return Ok(None),
            Report::Failed { stage, errno } => {
                let _ = process::wait_pid(guest, false);
                let _ = send(control, &FromInit::StartFailed { stage, errno }, None);
                return Ok(Some(127));
            }
        }
    }
}

/// init once the guest runs (or init's exec starter, when the program is
/// init): starts exec'd processes and reaps them until the instance ends;
/// init also forwards signals to `guest` and reports its end.
fn serve_execs(
    spec: &InstanceSpec,
    control: BorrowedFd<'_>,
    signals: BorrowedFd<'_>,
    filters: &Filters,
    guest: i32,
) -> Result<i32, String> {
    // From here on init signals its children (which may run under another
    // uid) and starts exec'd processes: KILL stays effective, what those
    // processes may be given stays permitted (see `kept_for_exec`); and init
    // becomes undumpable so the guest cannot ptrace or read it.
    let _ = process::set_dumpable(false);
    let keep = kept_for_exec(spec.capability_ceiling);
    let _ = caps::limit_bounding_set(&keep);
    let _ = caps::set_sets(&[cap::KILL], &keep);

    let mut execs = Execs {
        kept: keep,
        ..Execs::default()
    };
    loop {
        let mut watches = vec![Watch::new(signals, ready::IN), Watch::new(control, ready::IN)];
        for pending in &execs.pending {
            watches.push(Watch::new(pending.report.as_fd(), ready::IN));
        }
        event::poll(&mut watches, -1).map_err(context("poll"))?;
        let control_ready = watches[1].ready != 0;
        let signals_ready = watches[0].ready != 0;
        let reports_ready: Vec<u32> = watches[2..]
            .iter()
            .zip(&execs.pending)
            .filter(|(w, _)| w.ready != 0)
            .map(|(_, p)| p.id)
            .collect();
        drop(watches);
        for id in reports_ready {
            execs.hear_from(control, id)?;
        }
        if control_ready {
            // Sized to the message: init holds no large buffer while the
            // instance runs.
            match socket::recv_sized(control, MAX_TO_INIT) {
                Err(_) => return Ok(137),
                Ok((message, _)) if message.is_empty() => return Ok(137),
                Ok((message, fds)) => {
                    if let Ok(ToInit::Exec { id, request }) = ToInit::decode(&message) {
                        execs.start(spec, control, filters, id, &request, fds);
                    }
                }
            }
        }
        if !signals_ready {
            continue;
        }
        while let Some(info) = signal::read_signal(signals).map_err(context("read signals"))? {
            if info.signal != signal::SIGCHLD {
                let _ = process::kill(guest, info.signal);
                continue;
            }
            // Reap everything that has ended: the guest, exec'd processes,
            // and orphans that were re-parented to us.
            while let Ok(Some((pid, status))) = process::wait_pid(-1, true) {
                if pid == guest {
                    // Whether any other process is left: the supervisor
                    // may tell the outcome before this process's own end
                    // (the teardown of its mounts) when none is.
                    let alone = loop {
                        match process::wait_pid(-1, true) {
                            Ok(Some((other, status))) => execs.ended(control, other, status.to_raw())?,
                            Ok(None) => break false,
                            Err(e) => break e.raw_os_error() == Some(errno::ECHILD),
                        }
                    };
                    let _ = send(
                        control,
                        &FromInit::Exited {
                            wait_status: status.to_raw(),
                            alone,
                        },
                        None,
                    );
                    return Ok(0);
                }
                execs.ended(control, pid, status.to_raw())?;
            }
        }
    }
}

/// What a starting process said on its report pipe.
pub(crate) enum Report {
    /// Its filter's listener (`None`: it ended before installing it).
    Listener(Option<OwnedFd>),
    /// It exec'd its program (the pipe closed on exec).
    Running,
    Failed {
        stage: StartStage,
        errno: i32,
    },
}

/// Reads one report of process `pid` from its pipe (5-byte messages).
pub(crate) fn read_report(pid: i32, pipe: BorrowedFd<'_>) -> Result<Report, String> {
    let mut report = [0u8; 5];
    let n = event::read(pipe, &mut report).map_err(context("read the start report"))?;
    if n == 0 {
        return Ok(Report::Running);
    }
    if n != report.len() {
        return Err("a starting process sent a short report".into());
    }
    let value = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
    if report[0] == REPORT_LISTENER {
        let listener = fetch_listener(pid, value);
        // The process waits for this before its exec: its listener is
        // close-on-exec, and calls it makes may run in the kernel without
        // a trap that would hold it until the supervisor is served. Gone or
        // killed, it hears nothing, and needs nothing.
        if let Ok(Some(_)) = &listener {
            event::write_all(pipe, &[LISTENER_TAKEN]).map_err(context("answer the start report"))?;
        }
        return listener.map(Report::Listener);
    }
    let stage = match report[0] {
        1 => StartStage::Workdir,
        2 => StartStage::Identity,
        4 => StartStage::Filter,
        5 => StartStage::Hook,
        6 => StartStage::AppArmor,
        _ => StartStage::Exec,
    };
    Ok(Report::Failed { stage, errno: value })
}

/// A process started for an exec session, until it has exec'd (or failed).
struct PendingExec {
    id: u32,
    pid: i32,
    report: OwnedFd,
}

/// init's exec sessions.
#[derive(Default)]
struct Execs {
    pending: Vec<PendingExec>,
    /// Running exec'd processes: pid → session.
    running: Vec<(i32, u32)>,
    /// init's permitted set ([`kept_for_exec`]).
    kept: Vec<u32>,
}

impl Execs {
    /// Starts the process of exec session `id` as a child of init, through
    /// the same steps as the guest's own program (`start_process`).
    fn start(
        &mut self,
        spec: &InstanceSpec,
        control: BorrowedFd<'_>,
        filters: &Filters,
        id: u32,
        request: &ExecRequest,
        fds: Vec<OwnedFd>,
    ) {
        let failed = |stage: StartStage, error: io::Error| {
            let errno = error.raw_os_error().unwrap_or(errno::EINVAL);
            let _ = send(control, &FromInit::ExecFailed { id, stage, errno }, None);
        };
        // Rootless instances map one id; root's map the whole id space, or
        // an engine's ranges (checked against them).
        let rootless = spec.id_maps.is_none()
            && !std::fs::read_to_string("/proc/self/uid_map")
                .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
        // The supervisor resolved the same request against the same spec
        // already; this cannot fail unless it was bypassed.
        let Ok(process) = request.resolve(spec, rootless) else {
            return failed(StartStage::Identity, io::Error::from_raw_os_error(errno::EINVAL));
        };
        let expected = 3 + request.preserve_fds as usize;
        if fds.len() != expected {
            return failed(StartStage::Identity, io::Error::from_raw_os_error(errno::EBADF));
        }
        let prepared = match PreparedExec::new(&process) {
            Ok(p) => p,
            Err(e) => return failed(StartStage::Exec, e),
        };
        let mut given = fds;
        let terminal = if request.tty {
            let (master, slave) = match tty::open_pty("/dev/ptmx") {
                Ok(pair) => pair,
                Err(e) => return failed(StartStage::Identity, e),
            };
            if let Err(e) = send(control, &FromInit::ExecTerminal { id }, Some(master.as_fd())) {
                return failed(StartStage::Identity, e);
            }
            // The terminal is the process's stdio: the client's go unused.
            given.drain(..3);
            Some(slave)
        } else {
            None
        };
        let (report_read, report_write) = match report_channel() {
            Ok(pair) => pair,
            Err(e) => return failed(StartStage::Identity, e),
        };
        match process::fork() {
            Ok(Forked::Child) => {
                drop(report_read);
                let stdio = Stdio {
                    terminal,
                    given,
                    preserved: request.preserve_fds,
                };
                start_process(&process, &prepared, stdio, report_write, filters, None)
            }
            Ok(Forked::Parent { pid, .. }) => self.pending.push(PendingExec {
                id,
                pid,
                report: report_read,
            }),
            // EAGAIN: the instance's task limit (pids.max).
            Err(e) => failed(StartStage::Exec, e),
        }
    }

    /// Exec session `id`'s starting process has something to say.
    fn hear_from(&mut self, control: BorrowedFd<'_>, id: u32) -> Result<(), String> {
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            return Ok(());
        };
        let pid = self.pending[at].pid;
        // May raise SYS_PTRACE: the process may already run under its uid.
        let report = {
            let _ = caps::set_sets(&[cap::KILL, cap::SYS_PTRACE], &self.kept);
            let report = read_report(pid, self.pending[at].report.as_fd());
            let _ = caps::set_sets(&[cap::KILL], &self.kept);
            report
        };
        let report = match report {
            Ok(report) => report,
            // A process that broke the start protocol (or whose filter
            // never appeared) fails its session, not the instance.
            Err(_) => {
                let _ = process::kill(pid, signal::SIGKILL);
                Report::Failed {
                    stage: StartStage::Filter,
                    errno: errno::EPROTO,
                }
            }
        };
        match report {
            Report::Listener(Some(listener)) => {
                send(control, &FromInit::ExecListener { id }, Some(listener.as_fd()))
                    .map_err(context("hand over a listener"))?;
            }
            Report::Listener(None) => {}
            Report::Running => {
                self.pending.remove(at);
                self.running.push((pid, id));
                send(control, &FromInit::ExecStarted { id, pid }, None).map_err(context("report to the supervisor"))?;
            }
            Report::Failed { stage, errno } => {
                // It ends by itself; its end is not reported.
                self.pending.remove(at);
                let _ = send(control, &FromInit::ExecFailed { id, stage, errno }, None);
            }
        }
        Ok(())
    }

    /// Process `pid` ended (reaped by init).
    fn ended(&mut self, control: BorrowedFd<'_>, pid: i32, wait_status: i32) -> Result<(), String> {
        // Its reports are all in its pipe by now (the pipe closed with it):
        // hear them first, so the session hears of its start before its end.
        while let Some(id) = self.pending.iter().find(|p| p.pid == pid).map(|p| p.id) {
            self.hear_from(control, id)?;
        }
        if let Some(at) = self.running.iter().position(|(p, _)| *p == pid) {
            let (_, id) = self.running.remove(at);
            let _ = send(control, &FromInit::ExecExited { id, wait_status }, None);
        }
        Ok(())
    }
}

/// What a new process needs, prepared by init *before* forking it, so
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
    fn new(spec: &ProcessSpec) -> io::Result<Self> {
        let may_set_groups = xvisor_sys::fs::read_small("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow");
        // Read now so the guest's process finds it cached.
        let _ = caps::last_cap();
        Self::with_groups(spec, may_set_groups)
    }

    /// As [`PreparedExec::new`], with what /proc/self/setgroups says given.
    fn with_groups(spec: &ProcessSpec, may_set_groups: bool) -> io::Result<Self> {
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
        Ok(Self {
            argv,
            envp,
            candidates,
            may_set_groups,
        })
    }
}

/// The standard descriptors (and others) a starting process gets.
struct Stdio {
    /// A terminal's slave side: stdio and controlling terminal.
    terminal: Option<OwnedFd>,
    /// Descriptors for 0, 1, 2, … in order (without a terminal), or for 3,
    /// 4, … (with one); empty: init's own are kept.
    given: Vec<OwnedFd>,
    /// How many descriptors from 3 on pass into the program.
    preserved: u32,
}

/// The seccomp programs every process of the instance installs, in order.
struct Filters {
    /// An OCI engine's profile, without a listener.
    engine: Option<Vec<u8>>,
    /// xvisor's own, with the listener the supervisor serves.
    own: Vec<u8>,
}

/// Whether init has no controlling terminal (it leaves the caller's first
/// thing); its children inherit that.
static WITHOUT_CONTROLLING_TERMINAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reports why a starting process could not start (at `stage`) on its
/// report channel, and ends it.
fn fail_start(report: &OwnedFd, stage: StartStage, error: io::Error) -> ! {
    let errno = error.raw_os_error().unwrap_or(errno::EINVAL);
    let mut msg = [0u8; 5];
    msg[0] = stage as u8;
    msg[1..].copy_from_slice(&errno.to_le_bytes());
    let _ = event::write_all(report.as_fd(), &msg);
    process::exit_now(127)
}

/// Runs in a new process of the instance (the guest's program, or an exec
/// session's), between fork and exec: session, stdio, working directory,
/// limits, identity, then the system-call filter. Never returns.
fn start_process(
    spec: &ProcessSpec,
    prepared: &PreparedExec,
    stdio: Stdio,
    report: OwnedFd,
    filters: &Filters,
    // The instance's main program runs its startContainer hooks; an exec'd
    // process does not.
    main_of: Option<&InstanceSpec>,
) -> ! {
    enter_session(stdio.terminal.is_some(), &report);
    place_stdio(spec, stdio, &report);
    if let Err(e) = std::env::set_current_dir(&spec.workdir) {
        fail_start(&report, StartStage::Workdir, e);
    }
    confine_process(spec, prepared.may_set_groups, &report, filters);
    if let Some(instance) = main_of.filter(|i| !i.hooks.start_container.is_empty()) {
        run_start_container_hooks(instance, &report);
    }
    exec_program(spec, prepared, &report)
}

/// A pooled instance's guest, prepared before its program is known
/// (`ToInit::Prepare`): the steps of [`start_process`] that do not depend
/// on the program, in the same order and under the same conditions, then
/// a wait on `request` for the program, its stdio and its working
/// directory, which it takes as the guest (identity and filter are its
/// own by then) and execs. Never returns.
fn start_prepared(base: &ProcessSpec, may_set_groups: bool, request: OwnedFd, report: OwnedFd, filters: &Filters) -> ! {
    enter_session(false, &report);
    if let Err(e) = process::cloexec_from(3) {
        fail_start(&report, StartStage::Identity, e);
    }
    confine_process(base, may_set_groups, &report, filters);
    // The program: one message, the request and its three descriptors.
    let (buf, given) = match socket::recv_sized(request.as_fd(), MAX_TO_INIT) {
        Ok((buf, fds)) if !buf.is_empty() => (buf, fds),
        // init is gone, or gave up on the instance: nothing to start.
        _ => process::exit_now(125),
    };
    drop(request);
    let malformed = || io::Error::from_raw_os_error(errno::EINVAL);
    let main = match ExecRequest::decode(&buf).map(|r| r.as_main(base.clone())) {
        Ok(Ok(main)) => main,
        _ => fail_start(&report, StartStage::Exec, malformed()),
    };
    if given.len() != 3 {
        fail_start(
            &report,
            StartStage::Identity,
            io::Error::from_raw_os_error(errno::EBADF),
        );
    }
    let prepared = match PreparedExec::with_groups(&main, may_set_groups) {
        Ok(p) => p,
        Err(e) => fail_start(&report, StartStage::Exec, e),
    };
    let stdio = Stdio {
        terminal: None,
        given,
        preserved: 0,
    };
    place_stdio(&main, stdio, &report);
    if let Err(e) = std::env::set_current_dir(&main.workdir) {
        fail_start(&report, StartStage::Workdir, e);
    }
    exec_program(&main, &prepared, &report)
}

/// Never a terminal of the host's. A process given its own pty
/// (`terminal`) leads a new session (only a session leader can take a
/// controlling terminal). Any other stays in the supervisor's session, in
/// a process group of its own (the caller's terminal signals and a guest's
/// kill(0, …) stay apart): init has left its controlling terminal, so this
/// process has none, and, leading no session, can take none. Staying in
/// the session is for speed: where the scheduler groups processes by
/// session (autogroup, when the supervisor sits in the root CPU cgroup, as
/// on a host without a cgroup v2 cpu controller), a guest in a session of
/// its own is scheduled in another group than the supervisor, and every
/// trapped call's two switches between them cost ~0.5 µs more
/// (ARCHITECTURE.md, "The scheduler").
fn enter_session(terminal: bool, report: &OwnedFd) {
    let own_session = terminal || !WITHOUT_CONTROLLING_TERMINAL.load(std::sync::atomic::Ordering::Relaxed);
    let grouped = if own_session {
        process::setsid()
    } else {
        process::new_process_group()
    };
    if let Err(e) = grouped {
        fail_start(report, StartStage::Identity, e);
    }
}

/// The standard descriptors (a terminal, the given ones, /dev/null as
/// stdin when asked), and nothing else of init's past the preserved ones.
fn place_stdio(spec: &ProcessSpec, stdio: Stdio, report: &OwnedFd) {
    // Given descriptors first move above every number they are going to,
    // so that no dup2 overwrites one still to be placed.
    let first_target = if stdio.terminal.is_some() { 3 } else { 0 };
    let above = first_target + i32::try_from(stdio.given.len()).unwrap_or(i32::MAX - 3) + 3;
    let moved: io::Result<Vec<OwnedFd>> = stdio
        .given
        .iter()
        .map(|fd| event::dup_at_least(fd.as_fd(), above))
        .collect();
    let placed = moved.and_then(|moved| {
        moved
            .iter()
            .zip(first_target..)
            .try_for_each(|(fd, target)| event::dup_onto(fd.as_fd(), target))
    });
    if let Err(e) = placed {
        fail_start(report, StartStage::Identity, e);
    }
    if let Some(slave) = &stdio.terminal {
        let setup = tty::set_controlling_terminal(slave.as_fd())
            .and_then(|_| (0..3).try_for_each(|n| event::dup_onto(slave.as_fd(), n)));
        if let Err(e) = setup {
            fail_start(report, StartStage::Identity, e);
        }
    } else if spec.stdin_null {
        let null = xvisor_sys::fs::open_read_write("/dev/null", true).and_then(|null| event::dup_onto(null.as_fd(), 0));
        if let Err(e) = null {
            fail_start(report, StartStage::Identity, e);
        }
    }
    drop(stdio.terminal);
    // Nothing of init's beyond the passed descriptors reaches the program.
    if let Err(e) = process::cloexec_from(3 + stdio.preserved) {
        fail_start(report, StartStage::Identity, e);
    }
}

/// Limits, identity and the system-call filters, in the one order that
/// works (see below); the process is the guest afterwards.
fn confine_process(spec: &ProcessSpec, may_set_groups: bool, report: &OwnedFd, filters: &Filters) {
    for &(resource, soft, hard) in &spec.rlimits {
        if let Err(e) = process::rlimit::set(resource, soft, hard) {
            fail_start(report, StartStage::Identity, e);
        }
    }
    if let Some(mask) = spec.umask {
        process::set_umask(mask);
    }
    // init keeps what a process may be given in its permitted set only.
    let keep = kept_for_exec(spec.capability_ceiling);
    if let Err(e) = caps::set_sets(&keep, &keep) {
        fail_start(report, StartStage::Identity, e);
    }
    let become_guest = |no_new_privileges| {
        if let Err(e) = identity::become_guest_with_groups(
            spec.uid,
            spec.gid,
            &spec.additional_gids,
            &spec.capabilities,
            may_set_groups,
            no_new_privileges,
        ) {
            let error = match &e {
                identity::IdentityError::Setup { error, .. } => {
                    io::Error::from_raw_os_error(error.raw_os_error().unwrap_or(errno::EPERM))
                }
                _ => io::Error::from_raw_os_error(errno::EPERM),
            };
            fail_start(report, StartStage::Identity, error);
        }
    };
    // With `no_new_privs`, the filters go in last, as the guest (nothing
    // of the identity change runs under them). Without it, installing a
    // filter needs CAP_SYS_ADMIN in effect (of the instance's user
    // namespace, which init kept for this): they go in first, while this
    // process still holds init's capabilities, and the identity change
    // then runs under them, as with other runtimes (an engine's profile
    // must allow it).
    if spec.no_new_privileges {
        become_guest(NoNewPrivileges::Set);
    } else {
        // The process becomes dumpable below, for init to take its
        // listener: until it is the guest, it holds no capability beyond
        // the guest's own but those the filters and the identity change
        // need. (A process of the instance with the same uid could then
        // reach its memory only by holding all of these, or
        // CAP_SYS_PTRACE, itself.)
        let mut during = spec.capabilities.granted.clone();
        during.extend([cap::SYS_ADMIN, cap::SETPCAP, cap::SETUID, cap::SETGID]);
        if let Err(e) = caps::set_sets(&during, &during) {
            fail_start(report, StartStage::Identity, e);
        }
    }
    signal::reset_all_dispositions();
    if let Err(e) = signal::unblock_all() {
        fail_start(report, StartStage::Identity, e);
    }
    if let Err(e) = install_filters(report, filters) {
        fail_start(report, StartStage::Filter, e);
    }
    if !spec.no_new_privileges {
        become_guest(NoNewPrivileges::Left);
    }
}

/// The last steps: AppArmor's profile for the program, and its exec.
fn exec_program(spec: &ProcessSpec, prepared: &PreparedExec, report: &OwnedFd) -> ! {
    if let Some(profile) = &spec.apparmor_profile {
        if let Err(e) = apparmor_on_exec(profile) {
            fail_start(report, StartStage::AppArmor, e);
        }
    }
    fail_start(report, StartStage::Exec, exec_candidates(prepared))
}

/// Installs the engine's profile and xvisor's filter on the starting
/// process, and waits until init holds the listener.
fn install_filters(report: &OwnedFd, filters: &Filters) -> io::Result<()> {
    // init takes the listener from this process (pidfd_getfd) at the number
    // announced here — the lowest free one, which is what the kernel gives
    // the listener — since any call made after the filter may already wait
    // for the supervisor. A change of uid made before (with `no_new_privs`)
    // made this process undumpable, and its memory still belongs to the
    // host's user namespace (it was forked, not exec'd): init could not take
    // the listener. exec decides dumpability afresh anyway.
    process::set_dumpable(true)?;
    // The engine's profile first: xvisor's installation and the exec must
    // pass it (as they would under any runtime), and it can never be
    // loosened by anything after it.
    if let Some(engine) = &filters.engine {
        seccomp::install_filter(engine)?;
    }
    let at = seccomp::lowest_free_fd()?;
    let mut msg = [0u8; 5];
    msg[0] = REPORT_LISTENER;
    msg[1..].copy_from_slice(&at.to_le_bytes());
    event::write_all(report.as_fd(), &msg)?;
    // Close-on-exec: the guest program never holds its own listener.
    std::mem::forget(seccomp::install_filter_with_listener(&filters.own)?);
    // Until init holds the listener, it must outlive this process's exec.
    let mut taken = [0u8; 1];
    loop {
        match event::read(report.as_fd(), &mut taken) {
            Ok(1) if taken[0] == LISTENER_TAKEN => break,
            Err(e) if e.raw_os_error() == Some(errno::EINTR) => continue,
            Ok(_) => return Err(io::Error::from_raw_os_error(errno::EPIPE)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Asks AppArmor to confine this process's next program with `profile`
/// (loaded by the engine), as other runtimes do: written to this thread's
/// own `attr` file, the LSM-specific one where the kernel has it.
fn apparmor_on_exec(profile: &str) -> io::Result<()> {
    use std::io::Write;
    let request = format!("exec {profile}");
    let mut last = io::Error::from_raw_os_error(errno::ENOENT);
    for path in ["/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"] {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(mut f) => return f.write_all(request.as_bytes()),
            Err(e) => last = e,
        }
    }
    Err(last)
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

#[cfg(test)]
mod tests {
    use super::ping_group_range;

    #[test]
    fn ping_groups_span_the_instances_own_range() {
        // Root caller: one range of host ids of the instance's own.
        assert_eq!(ping_group_range("         0 1610612736      65536\n"), Some((0, 65535)));
        // Rootless with subordinate ids: 0 is the caller, 1.. their range.
        assert_eq!(ping_group_range("0 1000 1\n1 1610612736 65536\n"), Some((0, 65536)));
        // Rootless without: the caller alone.
        assert_eq!(ping_group_range("0 1000 1\n"), Some((0, 0)));
        // A range below gid 0's host id cannot be in the kernel's range.
        assert_eq!(ping_group_range("0 5000 1\n1 100 10\n"), Some((0, 0)));
        // No gid 0, or nothing readable: nothing written.
        assert_eq!(ping_group_range("1 1000 1\n"), None);
        assert_eq!(ping_group_range("garbage\n"), None);
        assert_eq!(ping_group_range(""), None);
        assert_eq!(ping_group_range("0 0 4294967295\n"), Some((0, u32::MAX - 1)));
    }
}
