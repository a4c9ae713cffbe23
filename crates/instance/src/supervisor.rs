//! The supervisor side of an instance: creation, start, service, teardown.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xvisor_confine::cgroup::{self, CgroupHost, InstanceCgroup, Placement};
use xvisor_confine::identity::{self, IdMaps, IdRange};
use xvisor_confine::idpool::{self, IdPoolError, Lease, Pool};
use xvisor_confine::{CgroupError, GuestRoot, IdentityError, RootfsError};
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::process::{self, Forked, WaitStatus};
use xvisor_sys::{errno, mount, signal, socket};

use crate::exec::ExecRequest;
use crate::init;
use crate::lifecycle::{State, WrongState};
use crate::monitor::{Monitor, Observers};
use crate::protocol::{FromInit, ProtocolError, StartStage, ToInit, MAX_MESSAGE};
use crate::registry::{Claim, Registry, RegistryError, Request};
use crate::sched::Parking;
use crate::server::Server;
use crate::spec::{InstanceSpec, NamespaceKind, TraceTarget};
use crate::terminal::Relay;
use crate::watchdog::Watchdog;
use xvisor_kernel::trace::{Format as TraceFormat, Trace};
use xvisor_sys::seccomp;

mod detached;

/// Signals the supervisor handles itself (through a signalfd): the
/// terminating ones are forwarded to the instance. (Not SIGCHLD: the
/// monitor thread is the tracer of every guest task, and would wake the
/// event loop at each of their forks and execs; init's end is seen on its
/// pidfd.)
pub const SUPERVISOR_SIGNALS: &[i32] = &[
    signal::SIGINT,
    signal::SIGTERM,
    signal::SIGHUP,
    signal::SIGQUIT,
    signal::SIGUSR1,
    signal::SIGUSR2,
    signal::SIGWINCH,
];

/// How long the event loop sleeps at most when init has no pidfd to wake it.
const INIT_POLL_MS: i32 = 50;
/// How long the supervisor waits for the monitor to collect init's end.
const INIT_END_PATIENCE: Duration = Duration::from_secs(10);

/// How long teardown waits for killed processes to leave their cgroups.
const CGROUP_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    State(#[from] WrongState),
    #[error("{0}")]
    Setup(String),
    #[error("{program}: command not found{}", not_found_hint(program))]
    NotFound { program: String },
    #[error("{program}: cannot execute: {error}")]
    CannotExecute { program: String, error: io::Error },
    #[error("--workdir {dir}: {error}")]
    Workdir { dir: String, error: io::Error },
    #[error("cannot switch to the guest's identity: {0}")]
    GuestIdentity(io::Error),
    #[error("cannot install the system-call filter: {0}")]
    Filter(io::Error),
    #[error("process.apparmorProfile {profile:?}: AppArmor refused it: {error}")]
    AppArmor { profile: String, error: io::Error },
    #[error("--trace {path}: {error}")]
    Trace { path: String, error: io::Error },
    #[error("cannot {action}: {error}")]
    Host { action: &'static str, error: io::Error },
    #[error("the instance's init broke the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the instance's init ended during set-up")]
    InitVanished,
    #[error(transparent)]
    IdPool(#[from] IdPoolError),
    #[error(
        "cannot show {tree} with the instance's own host ids: {error} (its filesystem needs idmapped \
         mounts: Linux 5.12 for ext4, xfs, btrfs; 6.3 for tmpfs; or run with --userns host)"
    )]
    Idmap { tree: String, error: io::Error },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot follow the instance's processes (ptrace): {0}")]
    Monitor(io::Error),
    #[error("{origin}: {path}: {message}")]
    Namespace {
        origin: String,
        path: String,
        message: String,
    },
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Nat(#[from] crate::nat::NatError),
}

impl InstanceError {
    /// The exit status the command line gives for this failure: 127 for a
    /// program that does not exist, 126 for one that cannot run, 125 for a
    /// failure of xvisor itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. } => 127,
            Self::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}

/// Why a program named relative to the current directory is not found: the
/// host's current directory is not the instance's.
fn not_found_hint(program: &str) -> &'static str {
    if program.contains('/') && !program.starts_with('/') {
        " (the instance does not see the host's current directory: show it with -v \"$PWD\":/work -w /work)"
    } else {
        ""
    }
}

/// How a descriptor handed to the guest is called in messages.
fn handed_in_name(n: usize) -> String {
    match n {
        0 => "stdin".into(),
        1 => "stdout".into(),
        2 => "stderr".into(),
        n => format!("descriptor {n}"),
    }
}

fn host(action: &'static str) -> impl FnOnce(io::Error) -> InstanceError {
    move |error| InstanceError::Host { action, error }
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The guest program ended by itself or by a signal.
    Exited(WaitStatus),
    /// `--timeout` expired and the instance was killed.
    TimedOut { after: Duration },
    /// The kernel's OOM killer killed the guest under the memory limit.
    OutOfMemory { status: WaitStatus },
}

impl Outcome {
    /// The command line's exit status: the guest's, 128+N for signal N, 124
    /// for a timeout.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exited(s) | Self::OutOfMemory { status: s } => s.shell_code(),
            Self::TimedOut { .. } => 124,
        }
    }
}

/// How the wait for `start` ended (`Instance::serve_until_started`, in
/// `supervisor/detached.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWait {
    /// The guest runs; serve it with [`Instance::wait`].
    Started,
    /// A signal was sent before the start (by `kill`, or to the supervisor
    /// itself): the instance was killed and torn down; the number is the
    /// signal.
    Killed(i32),
    /// The instance's init ended by itself; the instance is torn down.
    Vanished,
}

/// One instance, seen from its supervisor.
#[derive(Debug)]
pub struct Instance {
    spec: InstanceSpec,
    state: State,
    init_pid: i32,
    init_pidfd: Option<OwnedFd>,
    init_reaped: bool,
    control: OwnedFd,
    signals: OwnedFd,
    cgroup: Option<InstanceCgroup>,
    watchdog: Option<Watchdog>,
    pty_master: Option<OwnedFd>,
    guest_pid: Option<i32>,
    started_at: Option<Instant>,
    /// The trace, shared by the serving thread (calls) and the monitor
    /// (task lifecycle).
    trace: Option<Arc<Mutex<Trace>>>,
    created_at: Instant,
    /// The instance's name in the caller's registry, held while it lives.
    claim: Option<Claim>,
    /// The process monitor, from just after init's birth.
    monitor: Option<Monitor>,
    /// The pool of threads serving the guest's trapped calls (joining its
    /// first thread joins all), and where their shared state goes once init
    /// hands the listener over.
    pool: Option<std::thread::JoinHandle<()>>,
    to_pool: Option<std::sync::mpsc::Sender<Arc<Server>>>,
    /// The scheduler's parked calls.
    parking: Arc<Parking>,
    /// When tracing or learning: results of continued calls (`outcome`).
    outcomes: Option<Arc<crate::outcome::Outcomes>>,
    /// When learning (`--learn`): what the run touched.
    learning: Option<Arc<crate::learning::Learning>>,
    /// When tracing a root made of host directories: the host paths the
    /// guest missed (`absent`).
    absent: Option<Arc<crate::absent::Absent>>,
    /// What the serving threads share, once the listener has arrived.
    server: Option<Arc<Server>>,
    /// Clients waiting on processes they asked to start in the running
    /// instance (exec sessions), and the next session's id.
    exec_clients: Vec<ExecClient>,
    next_exec_id: u32,
    /// Exec sessions whose client left before their process started: the
    /// process is killed as soon as init reports it started.
    abandoned_execs: Vec<u32>,
    /// Invoked by a user other than root: the instance maps one uid and
    /// one gid (learnt at creation: the confined supervisor may not ask).
    rootless: bool,
    /// The network, IPC and UTS namespaces the supervisor has moved into
    /// (the instance's), each with the supervisor's own to return to.
    moved: Vec<MovedNamespace>,
    /// The instance's own host ids, held until its last process is gone
    /// (dropped after `teardown` reaped init).
    id_lease: Option<Lease>,
    /// The host objects handed in (stdio, exec sessions' descriptors).
    handed_in: Arc<crate::hostobj::HandedIn>,
    /// init joined an existing user namespace (a pod's): its id maps are
    /// that namespace's, not ours to write.
    joins_user: bool,
    /// The user-mode network stack of `--net nat`, ended with the instance.
    nat: Option<crate::nat::Nat>,
    /// Told the outcome as soon as it is known, before the teardown
    /// ([`Instance::when_ended`]).
    when_ended: Option<WhenEnded>,
}

/// Who is told an instance's outcome before its teardown.
struct WhenEnded(Box<dyn FnOnce(Outcome) + Send>);

impl std::fmt::Debug for WhenEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WhenEnded")
    }
}

/// The supervisor's side of an exec session: the client's connection, and
/// what is known of its process.
#[derive(Debug)]
struct ExecClient {
    id: u32,
    client: std::os::unix::net::UnixStream,
    /// The program, for messages.
    program: String,
    /// The process's host pid, once it runs.
    host_pid: Option<i32>,
    /// Partial request lines from the client (`signal N`).
    input: Vec<u8>,
}

/// One namespace kind the supervisor shares with its instance.
#[derive(Debug)]
struct MovedNamespace {
    kind: NamespaceKind,
    runtime: OwnedFd,
    instance: OwnedFd,
}

impl Instance {
    /// creating → created: builds the instance; the guest does not run yet.
    ///
    /// Must be called while the process is single-threaded (the instance's
    /// init is forked from it).
    pub fn create(mut spec: InstanceSpec) -> Result<Self, InstanceError> {
        // Made in this order; on a failure, what exists is dropped in
        // reverse, as it was made.
        let Prepared {
            rootless_ids,
            id_lease,
            joins,
            claim,
            mut cgroup,
            mut watchdog,
            signals,
            trace,
        } = prepare(&mut spec)?;
        let Born {
            init_pid,
            init_pidfd,
            control,
            joins_user,
        } = fork_init(&mut spec, &joins, &mut cgroup, &mut watchdog)?;
        if spec.program_is_init {
            spec.hooks.point_state_at(init_pid);
        }
        let created_at = Instant::now();
        let parking = Arc::new(Parking::new().map_err(host("create the scheduler's wake-up pipe"))?);
        let learning = spec.learn.then(|| Arc::new(crate::learning::Learning::new(init_pid)));
        let outcomes = (trace.is_some() || learning.is_some()).then(|| Arc::new(crate::outcome::Outcomes::default()));
        let absent = trace
            .as_ref()
            .and_then(|_| xvisor_confine::absent::View::of(&spec.root))
            .map(|view| Arc::new(crate::absent::Absent::new(view)));
        // Followed from before it can create anything.
        let keep_none: Vec<u32> = Vec::new();
        let monitor = Monitor::start(
            init_pid,
            Observers {
                trace: trace.clone(),
                created_at,
                parking: Arc::clone(&parking),
                outcomes: outcomes.clone(),
                learning: learning.clone(),
                pinned: crate::pinned::PinnedPrograms::of(&spec.policy),
                guest_debuggers: spec.policy.allows_guest_debuggers(),
                program_is_init: spec.program_is_init,
            },
            move || confine_thread(&keep_none, &xvisor_trap::host::monitor_filter()),
        );
        let mut instance = Self {
            state: State::Creating,
            init_pid,
            init_pidfd,
            init_reaped: false,
            control,
            signals,
            cgroup,
            watchdog,
            pty_master: None,
            guest_pid: None,
            started_at: None,
            trace,
            pool: None,
            to_pool: None,
            parking,
            outcomes,
            learning,
            absent,
            server: None,
            exec_clients: Vec::new(),
            next_exec_id: 1,
            abandoned_execs: Vec::new(),
            rootless: process::geteuid() != 0 && spec.id_maps.is_none(),
            created_at,
            claim: Some(claim),
            monitor: None,
            spec,
            moved: Vec::new(),
            id_lease,
            handed_in: Arc::new(crate::hostobj::HandedIn::of_standard_descriptors().with_ids(rootless_ids)),
            joins_user,
            nat: None,
            when_ended: None,
        };
        instance.monitor = Some(monitor.map_err(InstanceError::Monitor)?);
        instance.finish_creating()?;
        Ok(instance)
    }

    fn finish_creating(&mut self) -> Result<(), InstanceError> {
        let maps = match &self.spec.id_maps {
            Some(given) => given.clone(),
            None => IdMaps::for_caller(self.spec.uid, self.spec.gid, process::geteuid(), process::getegid()),
        };
        if !self.joins_user {
            maps.write_for(self.init_pid)?;
            self.handed_in
                .enter_user_namespace(self.init_pid)
                .map_err(host("move the metadata agent into the instance's user namespace"))?;
        }
        if let Some(cg) = &self.cgroup {
            cg.add_process(self.init_pid, cg.v2_dir().is_some(), true)?;
        }
        self.send(ToInit::Proceed)?;
        // While init builds the root.
        self.start_serving_pool()?;
        if self.spec.own_host_ids && self.spec.root.has_guest_owned_trees() {
            self.idmap_guest_trees()?;
            self.send(ToInit::Proceed)?;
        }
        if !self.spec.hooks.create_runtime.is_empty() {
            match self.receive()? {
                (FromInit::NamespacesReady, _) => {}
                (FromInit::SetupFailed(text), _) => return Err(InstanceError::Setup(text)),
                (other, _) => return Err(InstanceError::Setup(format!("unexpected message from init: {other:?}"))),
            }
            crate::hooks::run_all(&self.spec.hooks.create_runtime, &self.spec.hooks.state_creating)?;
            self.send(ToInit::Proceed)?;
        }
        match self.receive()? {
            (FromInit::Created, fd) => {
                if self.spec.tty && fd.is_none() {
                    return Err(InstanceError::Setup("the instance sent no terminal".into()));
                }
                self.pty_master = fd;
                // init's network namespace exists: its way out is set up
                // from the supervisor's (the host's) network, before the
                // supervisor moves into the instance's.
                if let crate::spec::Network::Nat { host_loopback } = self.spec.network {
                    self.nat = Some(crate::nat::start(self.init_pid, &self.spec.publish, host_loopback)?);
                }
                self.move_into_instance_namespaces()?;
                self.state = self.state.after("finish creating")?;
                Ok(())
            }
            (FromInit::SetupFailed(text), _) => Err(InstanceError::Setup(text)),
            (other, _) => Err(InstanceError::Setup(format!("unexpected message from init: {other:?}"))),
        }
    }

    /// Shows each tree init sends (an image's layers, `--rootfs`, volumes:
    /// the guest's own files) through the instance's id maps, so files
    /// owned by id N on disk are the guest's N, and what the guest writes
    /// there is written as its ids inside (guest root's files are root's
    /// on the host, as with the caller's own ids). Host root's privilege
    /// over the host's filesystems is needed for it: init has none.
    fn idmap_guest_trees(&mut self) -> Result<(), InstanceError> {
        let (userns, _) = process::open_namespace(Path::new(&format!("/proc/{}/ns/user", self.init_pid)))
            .map_err(host("open the instance's user namespace"))?;
        loop {
            match self.receive()? {
                (FromInit::GuestTree(name), Some(tree)) => {
                    mount::set_idmap(tree.as_fd(), userns.as_fd(), true)
                        .map_err(|error| InstanceError::Idmap { tree: name, error })?;
                }
                (FromInit::GuestTreesSent, _) => return Ok(()),
                (FromInit::SetupFailed(text), _) => return Err(InstanceError::Setup(text)),
                (other, _) => return Err(InstanceError::Setup(format!("unexpected message from init: {other:?}"))),
            }
        }
    }

    /// Engines take the container's pid (the supervisor's) to find its
    /// namespaces at /proc/PID/ns/* — a pod's containers join the
    /// sandbox's network, IPC and UTS namespaces that way, and so do
    /// podman's and Docker's `container:ID` modes. So the supervisor moves
    /// into the instance's network, IPC and UTS namespaces (not its user,
    /// pid or mount namespaces, which it must stay out of to serve it).
    /// A caller without CAP_SYS_ADMIN in its own user namespace (rootless)
    /// cannot: it stays in its own, and /proc/PID/ns/* names those.
    fn move_into_instance_namespaces(&mut self) -> Result<(), InstanceError> {
        for (kind, proc_name) in [
            (NamespaceKind::Network, "net"),
            (NamespaceKind::Ipc, "ipc"),
            (NamespaceKind::Uts, "uts"),
        ] {
            if kind == NamespaceKind::Network && self.spec.network == crate::spec::Network::Host {
                continue;
            }
            let open = |pid: &str| {
                process::open_namespace(std::path::Path::new(&format!("/proc/{pid}/ns/{proc_name}")))
                    .map(|(fd, _)| fd)
                    .map_err(host("open the instance's namespaces"))
            };
            let runtime = open("self")?;
            let instance = open(&self.init_pid.to_string())?;
            match process::setns(instance.as_fd(), kind.flag()) {
                Ok(()) => self.moved.push(MovedNamespace {
                    kind,
                    runtime,
                    instance,
                }),
                Err(e) if e.raw_os_error() == Some(errno::EPERM) => return Ok(()),
                Err(e) => return Err(host("enter the instance's namespaces")(e)),
            }
        }
        Ok(())
    }

    /// Runs `f` (a hook) in the runtime's namespaces: the calling thread
    /// leaves the instance's for the time of the call.
    pub(crate) fn in_runtime_namespaces<T>(&self, f: impl FnOnce() -> T) -> Result<T, InstanceError> {
        for m in &self.moved {
            process::setns(m.runtime.as_fd(), m.kind.flag()).map_err(host("return to the runtime's namespaces"))?;
        }
        let result = f();
        for m in &self.moved {
            process::setns(m.instance.as_fd(), m.kind.flag()).map_err(host("enter the instance's namespaces"))?;
        }
        Ok(result)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The host pid of the instance's init (its pid 1, or its first
    /// process in a joined pid namespace).
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// Whether the program itself is init ([`InstanceSpec::program_is_init`]).
    pub fn program_is_init(&self) -> bool {
        self.spec.program_is_init
    }

    /// created → running: starts the guest program.
    pub fn start(&mut self) -> Result<(), InstanceError> {
        self.start_by(ToInit::Start, &[])
    }

    /// created → running, for a pooled instance (created before its
    /// program was known): starts `request`'s program (argv, environment
    /// over the instance's, working directory; nothing else) as the guest,
    /// on `stdio`. Everything else is as [`Instance::start`].
    pub fn start_with(&mut self, request: ExecRequest, stdio: [OwnedFd; 3]) -> Result<(), InstanceError> {
        // Checked here too, so that a bad request is the caller's error,
        // not init's.
        request
            .as_main(self.spec.main_process())
            .map_err(|e| InstanceError::Setup(e.to_string()))?;
        // The checks a cold start makes of its own stdio (prepare), made
        // of the run's: a host directory is refused where nothing else
        // walls it.
        let handed: Vec<_> = stdio
            .iter()
            .enumerate()
            .map(|(n, fd)| (fd.as_fd(), handed_in_name(n)))
            .collect();
        xvisor_confine::wall::check_handed_in(&handed, host_objects_need_guarding(&self.spec))
            .map_err(InstanceError::Setup)?;
        for fd in &stdio {
            self.handed_in.add(fd.as_fd());
        }
        self.spec.argv.clone_from(&request.argv);
        if let Some(workdir) = &request.workdir {
            self.spec.workdir.clone_from(workdir);
        }
        let fds = [stdio[0].as_fd(), stdio[1].as_fd(), stdio[2].as_fd()];
        self.start_by(
            ToInit::StartWith {
                request: Box::new(request),
            },
            &fds,
        )
    }

    /// Before a pooled instance's program is known: its guest's process is
    /// forked and confined (identity, filter, the listener served) and
    /// waits for [`Instance::start_with`], which then only hands it its
    /// program, descriptors and directory. Nothing is done for a guest
    /// that cannot be prepared (the program is init, a terminal,
    /// startContainer hooks): `start_with` then starts it whole.
    pub fn prepare_start(&mut self) -> Result<(), InstanceError> {
        self.state.after("start")?;
        if self.spec.program_is_init || self.spec.tty || !self.spec.hooks.start_container.is_empty() {
            return Ok(());
        }
        self.start_serving_pool()?;
        if let Some(m) = &self.monitor {
            m.attached().map_err(InstanceError::Monitor)?;
        }
        self.send(ToInit::Prepare)?;
        loop {
            match self.receive()? {
                (FromInit::Listener, Some(fd)) => self.serve_listener(fd)?,
                (FromInit::Prepared, _) => return Ok(()),
                (FromInit::StartFailed { stage, errno: code }, _) => return Err(self.start_error(stage, code)),
                (FromInit::SetupFailed(text), _) => return Err(InstanceError::Setup(text)),
                (other, _) => return Err(InstanceError::Setup(format!("unexpected message from init: {other:?}"))),
            }
        }
    }

    /// The registry's listener of a created instance that waits before
    /// its start (a pooled one): readable when a client (`xvisor ps`,
    /// `inspect`, `kill`) asks something, for [`Instance::answer_requests`].
    pub fn requests(&self) -> Option<BorrowedFd<'_>> {
        self.claim.as_ref().map(|c| c.listener().as_fd())
    }

    /// Answers the clients waiting on [`Instance::requests`], as a started
    /// instance answers them (an exec is refused until the start).
    pub fn answer_requests(&mut self) {
        self.answer_clients();
    }

    /// The run's `--timeout`, for a pooled instance whose run gives one.
    pub fn set_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.spec.timeout = timeout;
    }

    fn start_by(&mut self, message: ToInit, fds: &[BorrowedFd<'_>]) -> Result<(), InstanceError> {
        let next = self.state.after("start")?;
        self.start_serving_pool()?;
        if let Some(m) = &self.monitor {
            m.attached().map_err(InstanceError::Monitor)?;
        }
        if fds.is_empty() {
            self.send(message)?;
        } else {
            socket::send_fds(self.control.as_fd(), &message.encode(), fds).map_err(host("talk to the instance"))?;
        }
        loop {
            // The guest waits for init to hold its listener before its exec
            // (which the strict profile and a trace trap), so the listener
            // arrives before any call of the program needs serving.
            match self.receive()? {
                (FromInit::Listener, Some(fd)) => self.serve_listener(fd)?,
                (FromInit::ProgramReports, Some(pipe)) => {
                    // init becomes the program: its reports come here.
                    loop {
                        match init::read_report(self.init_pid, pipe.as_fd()).map_err(InstanceError::Setup)? {
                            init::Report::Listener(Some(fd)) => self.serve_listener(fd)?,
                            init::Report::Listener(None) => {}
                            init::Report::Running => {
                                self.started_at = Some(Instant::now());
                                self.state = next;
                                return Ok(());
                            }
                            init::Report::Failed { stage, errno: code } => return Err(self.start_error(stage, code)),
                        }
                    }
                }
                (FromInit::Running { guest_pid }, _) => {
                    self.guest_pid = Some(guest_pid);
                    self.started_at = Some(Instant::now());
                    self.state = next;
                    return Ok(());
                }
                (FromInit::StartFailed { stage, errno: code }, _) => return Err(self.start_error(stage, code)),
                (FromInit::SetupFailed(text), _) => return Err(InstanceError::Setup(text)),
                (other, _) => return Err(InstanceError::Setup(format!("unexpected message from init: {other:?}"))),
            }
        }
    }

    /// The guest program could not be started: at `stage`, with `code`.
    fn start_error(&self, stage: StartStage, code: i32) -> InstanceError {
        let error = io::Error::from_raw_os_error(code);
        let program = self.spec.argv.first().cloned().unwrap_or_default();
        match stage {
            StartStage::Exec if code == errno::ENOENT => InstanceError::NotFound { program },
            StartStage::Exec => InstanceError::CannotExecute { program, error },
            StartStage::Workdir => InstanceError::Workdir {
                dir: self.spec.workdir.clone(),
                error,
            },
            StartStage::Identity => InstanceError::GuestIdentity(error),
            StartStage::Filter => InstanceError::Filter(error),
            StartStage::Hook => self.start_hook_error(code),
            StartStage::AppArmor => InstanceError::AppArmor {
                profile: self.spec.apparmor_profile.clone().unwrap_or_default(),
                error,
            },
        }
    }

    /// The guest's first listener has arrived: the serving threads get it.
    fn serve_listener(&mut self, fd: OwnedFd) -> Result<(), InstanceError> {
        let _ = seccomp::request_sync_wakeup(fd.as_fd());
        let listener = Arc::new(fd);
        let tasks = match &self.monitor {
            Some(m) => m.shared_table(),
            None => Arc::default(),
        };
        let server = Arc::new(Server {
            listeners: Mutex::new(vec![listener]),
            generation: std::sync::atomic::AtomicU64::new(0),
            in_receive: std::sync::atomic::AtomicBool::new(false),
            policy: self.spec.policy.clone(),
            trace: self.trace.clone(),
            learning: self.learning.clone(),
            absent: self.absent.clone(),
            created_at: self.created_at,
            parking: Arc::clone(&self.parking),
            outcomes: self.outcomes.clone(),
            tasks,
            turn: Mutex::new(()),
            hung_up: std::sync::atomic::AtomicBool::new(false),
            blocking_receive: crate::server::serving_threads(self.records()) == 1,
            threads: Mutex::new(Vec::new()),
            trapped: std::sync::atomic::AtomicU64::new(0),
            refusals: Default::default(),
            own_network: self.spec.network.is_own(),
            handed_in: Arc::clone(&self.handed_in),
            devpts: std::sync::OnceLock::new(),
            init_pid: self.init_pid,
        });
        self.server = Some(Arc::clone(&server));
        if let Some(to_pool) = self.to_pool.take() {
            to_pool
                .send(server)
                .map_err(|_| InstanceError::Setup("the serving threads ended".into()))?;
        }
        Ok(())
    }

    /// Starts the serving threads (once). Every fork of the supervisor is
    /// behind us (init, the watchdog) once init has its id maps: the
    /// threads start and confine themselves while init builds the root,
    /// off the start's critical path, and wait for the guest's listener.
    fn start_serving_pool(&mut self) -> Result<(), InstanceError> {
        if self.pool.is_some() {
            return Ok(());
        }
        let keep = self.kept_capabilities();
        xvisor_sys::signal::install_doorbell(xvisor_sys::signal::doorbell())
            .map_err(host("install the serving threads' doorbell"))?;
        let metadata = self.spec.policy.guards_host_objects();
        let opens = self.spec.policy.supervises_opens();
        let binds = self.spec.policy.supervises_bind();
        let (pool, to_pool) = crate::server::start_pool(crate::server::serving_threads(self.records()), move || {
            confine_thread(&keep, xvisor_trap::host::serving_filter(metadata, opens, binds))
        })
        .map_err(host("start the serving threads"))?;
        self.pool = Some(pool);
        self.to_pool = Some(to_pool);
        Ok(())
    }

    /// The supervisor confines itself once its instance runs: `no_new_privs`,
    /// every capability dropped but CAP_SYS_PTRACE (reading the memory of a
    /// guest running under another uid, for the trace) and, when the
    /// instance has cgroups, CAP_DAC_OVERRIDE (removing them), and
    /// its own seccomp filter of the few host calls it still needs
    /// (`xvisor_trap::host::SUPERVISOR_CALLS`). Irreversible for the whole
    /// process: for a command that serves one instance.
    pub fn confine_supervisor(&self) -> Result<(), InstanceError> {
        confine_current_thread(&self.kept_capabilities()).map_err(host("confine the supervisor"))
    }

    /// Runs `work` on a thread of its own, confined as the supervisor is
    /// once its instance runs (its own filter, no capability kept): a
    /// pooled instance's watch on its client. Call before
    /// [`Instance::confine_supervisor`]; if the thread cannot confine
    /// itself, `work` does not run.
    pub fn spawn_confined(&self, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
        std::thread::Builder::new()
            .name("xvisor-client".into())
            .spawn(move || {
                if confine_current_thread(&[]).is_ok() {
                    work();
                }
            })
            .map(drop)
    }

    /// A `startContainer` hook's failure, from the guest's start report.
    fn start_hook_error(&self, report: i32) -> InstanceError {
        use crate::protocol::HookFailure;
        let (index, failure) = HookFailure::decode(report);
        let (origin, path) = match self.spec.hooks.start_container.get(index) {
            Some(h) => (h.origin.clone(), h.path.display().to_string()),
            None => ("hooks.startContainer".to_string(), "?".to_string()),
        };
        let how = match failure {
            HookFailure::Exited(code) => format!("exited with status {code}"),
            HookFailure::Signaled(signal) => format!("was killed by signal {signal}"),
            HookFailure::TimedOut => "did not finish within its timeout and was killed".to_string(),
            HookFailure::CannotRun => "cannot run it (in the container's root)".to_string(),
        };
        InstanceError::Setup(format!("{origin} ({path}): {how}"))
    }

    /// The instance's name (unique among the caller's running instances).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// CAP_SYS_PTRACE (a guest's memory, for the trace, under another uid)
    /// and, with cgroups, CAP_DAC_OVERRIDE (removing them: a hierarchy's
    /// root directory is mode 0555) — for a supervisor that has them. With
    /// host ids of its own, the guest's /proc files (`syscall`, `fd/`) are
    /// owned by those ids and readable by their owner alone:
    /// CAP_DAC_READ_SEARCH reads them (`ps`, learn mode).
    fn kept_capabilities(&self) -> Vec<u32> {
        use xvisor_sys::caps::cap;
        if process::geteuid() != 0 {
            return Vec::new();
        }
        let mut keep = vec![cap::SYS_PTRACE];
        if self.cgroup.is_some() {
            keep.push(cap::DAC_OVERRIDE);
        }
        if self.id_lease.is_some() {
            keep.push(cap::DAC_READ_SEARCH);
        }
        // A unix socket the supervisor connects for the guest is the guest's
        // (its ids, not the supervisor's): the guest's own permission is
        // checked first (instance::perform), then the kernel's check of the
        // supervisor is passed with this.
        if self.spec.policy.supervises_connect() && !keep.contains(&cap::DAC_OVERRIDE) {
            keep.push(cap::DAC_OVERRIDE);
        }
        // A file an `[fs]` pattern grants is opened with the guest's
        // file-system ids and groups (instance::open), taken for the open:
        // the kernel then checks the guest, not the supervisor.
        if self.spec.policy.supervises_opens() {
            keep.extend([cap::SETUID, cap::SETGID]);
        }
        // A port below 1024 the supervisor binds for a guest that may bind
        // it (instance::perform::bind checks the guest's capability).
        if self.spec.policy.supervises_bind() {
            keep.push(cap::NET_BIND_SERVICE);
        }
        keep
    }

    /// Sends `signal` to the instance (init forwards it to the guest;
    /// SIGKILL ends the whole instance at once).
    pub fn signal(&self, signal: i32) -> Result<(), InstanceError> {
        if self.init_reaped {
            return Ok(());
        }
        match &self.init_pidfd {
            Some(fd) => process::pidfd_send_signal(fd.as_fd(), signal),
            None => process::kill(self.init_pid, signal),
        }
        .map_err(host("signal the instance"))
    }

    /// Whether calls are read and recorded (`--trace`, `--learn`).
    fn records(&self) -> bool {
        self.trace.is_some() || self.learning.is_some()
    }

    /// When learning: what the run touched, so far (all of it once
    /// [`Instance::wait`] has returned).
    pub fn learned(&self) -> Option<std::sync::MutexGuard<'_, xvisor_kernel::learn::Learner>> {
        self.learning.as_ref().map(|l| l.learner())
    }

    /// When tracing: the host paths the guest missed because the instance
    /// does not show them, each with the volume that would (one per
    /// volume, the first few).
    pub fn absent_hints(&self) -> Vec<xvisor_confine::absent::Hint> {
        self.absent.as_ref().map(|a| a.found()).unwrap_or_default()
    }

    /// running → stopped: serves the instance until the guest ends, then
    /// tears it down.
    /// How many system calls the guest has trapped to the supervisor so far
    /// (0 before the guest runs).
    pub fn trapped_calls(&self) -> u64 {
        self.server
            .as_ref()
            .map_or(0, |s| s.trapped.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn wait(&mut self) -> Result<Outcome, InstanceError> {
        let next = self.state.after("stop")?;
        let started = self.started_at.unwrap_or_else(Instant::now);
        let mut waiting = Waiting {
            relay: self.pty_master.take().map(Relay::new),
            deadline: self.spec.timeout.map(|t| started + t),
            timed_out: false,
            guest_status: None,
            control_open: true,
        };
        let init_status = loop {
            let ready = self.look(&waiting)?;
            if let Some(status) = self.running(&mut waiting, ready)? {
                break status;
            }
        };
        self.reaped(waiting, next, init_status)
    }

    /// Waits for the next events of a running instance: signals, init's
    /// messages and end, clients, exec sessions, the terminal, the
    /// deadline.
    fn look(&self, waiting: &Waiting) -> Result<Ready, InstanceError> {
        let mut timeout_ms = match waiting.deadline {
            Some(d) if !waiting.timed_out => {
                let left = d.saturating_duration_since(Instant::now());
                i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX)
            }
            _ => -1,
        };
        if self.init_pidfd.is_none() && !(0..=INIT_POLL_MS).contains(&timeout_ms) {
            timeout_ms = INIT_POLL_MS;
        }
        // While a guest tracer holds a task, the monitor looks for what
        // its tracees create (and for tasks let go) every LOOK_EVERY.
        let lending = self.parking.lending();
        let look_ms = crate::monitor::LOOK_EVERY.as_millis() as i32;
        if lending && !(0..=look_ms).contains(&timeout_ms) {
            timeout_ms = look_ms;
        }
        let mut watches = vec![Watch::new(self.signals.as_fd(), ready::IN)];
        let clients_at = self.claim.as_ref().map(|c| {
            watches.push(Watch::new(c.listener().as_fd(), ready::IN));
            watches.len() - 1
        });
        let control_at = waiting.control_open.then(|| {
            watches.push(Watch::new(self.control.as_fd(), ready::IN));
            watches.len() - 1
        });
        let pidfd_at = self.init_pidfd.as_ref().map(|fd| {
            watches.push(Watch::new(fd.as_fd(), ready::IN));
            watches.len() - 1
        });
        // The monitor lent a first task: looks are due from now on.
        let lending_at = self.monitor.as_ref().and_then(Monitor::lending_fd).map(|fd| {
            watches.push(Watch::new(fd, ready::IN));
            watches.len() - 1
        });
        let exec_at = watches.len();
        for session in &self.exec_clients {
            watches.push(Watch::new(session.client.as_fd(), ready::IN));
        }
        let exec_end = watches.len();
        let (stdin_at, master_at) = match &waiting.relay {
            Some(r) => {
                let stdin_at = r.stdin_open.then(|| {
                    watches.push(Watch::new(r.stdin(), ready::IN));
                    watches.len() - 1
                });
                let master_at = r.master_open.then(|| {
                    watches.push(Watch::new(r.master(), ready::IN));
                    watches.len() - 1
                });
                (stdin_at, master_at)
            }
            None => (None, None),
        };
        event::poll(&mut watches, timeout_ms).map_err(host("wait for events"))?;
        if let Some(monitor) = &self.monitor {
            if lending_at.is_some_and(|i| watches[i].ready != 0) {
                monitor.heard_lending();
            }
            if lending {
                monitor.ring_for_look();
            }
        }
        let is_ready = |at: Option<usize>| at.is_some_and(|i| watches[i].ready != 0);
        Ok(Ready {
            signals: watches[0].ready != 0,
            control: is_ready(control_at),
            init: is_ready(pidfd_at),
            stdin: is_ready(stdin_at),
            master: is_ready(master_at),
            clients: is_ready(clients_at),
            exec: watches[exec_at..exec_end]
                .iter()
                .zip(&self.exec_clients)
                .filter(|(w, _)| w.ready != 0)
                .map(|(_, c)| c.id)
                .collect(),
        })
    }

    /// running: acts on what `look` found. Returns init's status once it
    /// has ended and been collected.
    fn running(&mut self, waiting: &mut Waiting, ready: Ready) -> Result<Option<WaitStatus>, InstanceError> {
        if let Some(d) = waiting.deadline {
            if !waiting.timed_out && Instant::now() >= d {
                waiting.timed_out = true;
                let _ = self.signal(signal::SIGKILL);
            }
        }
        if ready.signals {
            while let Some(info) = signal::read_signal(self.signals.as_fd()).map_err(host("read signals"))? {
                match info.signal {
                    signal::SIGWINCH => {
                        if let Some(r) = &waiting.relay {
                            r.follow_window_size();
                        }
                    }
                    other => {
                        let _ = self.signal(other);
                    }
                }
            }
        }
        if let Some(r) = waiting.relay.as_mut() {
            if ready.stdin {
                r.pump_input();
            }
            if ready.master {
                r.pump_output();
            }
        }
        if ready.control {
            self.hear_init(waiting);
        }
        for id in ready.exec {
            self.hear_exec_client(id);
        }
        if ready.clients {
            self.answer_clients();
        }
        if ready.init || self.init_pidfd.is_none() {
            // The monitor, init's tracer, collects its end.
            let patience = if ready.init { INIT_END_PATIENCE } else { Duration::ZERO };
            if let Some(status) = self.init_end(patience)? {
                self.init_reaped = true;
                // Everything init sent is queued by now, and a turn hears one
                // message: the guest's `Exited` may still wait behind the end
                // of an exec'd process that ended with it. Left unread, init's
                // own status (0) would be taken for the guest's.
                while waiting.control_open && self.control_readable()? {
                    self.hear_init(waiting);
                }
                return Ok(Some(status));
            }
        }
        Ok(None)
    }

    /// Hears one message of init's: the guest's status, or exec news.
    fn hear_init(&mut self, waiting: &mut Waiting) {
        match self.receive() {
            Ok((FromInit::Exited { wait_status, alone }, _)) => {
                waiting.guest_status = WaitStatus::from_raw(wait_status);
                // Nothing of the instance runs any more but init, which
                // is ending: the outcome is known.
                if let (true, Some(status)) = (alone, waiting.guest_status) {
                    if let Some(WhenEnded(tell)) = self.when_ended.take() {
                        tell(self.outcome_of(waiting.timed_out, status));
                    }
                }
            }
            Ok((message, fd)) => self.exec_news(message, fd),
            Err(_) => waiting.control_open = false,
        }
    }

    /// Whether a message (or end-of-file) waits on the control socket.
    fn control_readable(&self) -> Result<bool, InstanceError> {
        let mut watch = [Watch::new(self.control.as_fd(), ready::IN)];
        Ok(event::poll(&mut watch, 0).map_err(host("hear from the instance"))? > 0)
    }

    /// reaped: init has ended. The terminal's last output, the exec
    /// sessions told, everything torn down; the outcome.
    fn reaped(&mut self, waiting: Waiting, next: State, init_status: WaitStatus) -> Result<Outcome, InstanceError> {
        let Waiting {
            mut relay,
            timed_out,
            guest_status,
            ..
        } = waiting;
        if let Some(r) = relay.as_mut() {
            // The guest's last output: the terminal reports end-of-file once
            // the kernel has killed every process holding it. Bounded, in
            // case that takes a moment.
            let until = Instant::now() + Duration::from_secs(1);
            while r.master_open && Instant::now() < until {
                let mut w = [Watch::new(r.master(), ready::IN)];
                if event::poll(&mut w, 50).map_err(host("wait for the terminal"))? > 0 {
                    r.pump_output();
                }
            }
        }
        drop(relay);
        // Processes still running in the instance were killed with it.
        for session in std::mem::take(&mut self.exec_clients) {
            let raw = WaitStatus::Signaled {
                signal: signal::SIGKILL,
                core_dumped: false,
            }
            .to_raw();
            let _ = socket::send(session.client.as_fd(), format!("exited {raw}\n").as_bytes(), None);
        }
        self.state = next;
        let status = guest_status.unwrap_or(init_status);
        let outcome = self.outcome_of(timed_out, status);
        // init is reaped: every process of the instance has ended (its pid
        // namespace's end waits for them); what is left is the host's
        // side (cgroups, ids, the network's way out).
        if let Some(WhenEnded(tell)) = self.when_ended.take() {
            tell(outcome);
        }
        self.teardown()?;
        Ok(outcome)
    }

    /// How the instance ended, once the guest's status is known.
    fn outcome_of(&self, timed_out: bool, status: WaitStatus) -> Outcome {
        let oom_kills = || self.cgroup.as_ref().map_or(0, |c| c.oom_kills());
        if timed_out {
            Outcome::TimedOut {
                after: self.spec.timeout.unwrap_or_default(),
            }
        } else if status
            == (WaitStatus::Signaled {
                signal: signal::SIGKILL,
                core_dumped: false,
            })
            && oom_kills() > 0
        {
            Outcome::OutOfMemory { status }
        } else {
            Outcome::Exited(status)
        }
    }

    /// `tell` is given the outcome as soon as every process of the
    /// instance but init has ended (init reports it has no other child
    /// left when the guest ends), or else once init is reaped — before
    /// init's own end and the teardown of what is left on the host's side
    /// (cgroups, host ids, NAT), which [`Instance::wait`] still does before
    /// it returns. A pooled run answers its client so.
    pub fn when_ended(&mut self, tell: impl FnOnce(Outcome) + Send + 'static) {
        self.when_ended = Some(WhenEnded(Box::new(tell)));
    }

    /// init's end: collected by the monitor (init's tracer), or by us when
    /// there is no monitor.
    fn init_end(&self, patience: Duration) -> Result<Option<WaitStatus>, InstanceError> {
        match self.monitor.as_ref().filter(|m| m.attached().is_ok()) {
            Some(m) => match m.init_end(patience) {
                Some(status) => Ok(Some(status)),
                None if patience.is_zero() => Ok(None),
                None => Err(InstanceError::Setup(
                    "the process monitor did not report the end of the instance's init".into(),
                )),
            },
            None => Ok(process::wait_pid(self.init_pid, patience.is_zero())
                .map_err(host("wait for the instance's init"))?
                .map(|(_, status)| status)),
        }
    }

    /// Answers everyone waiting on the control socket (`xvisor ps`, `xvisor
    /// kill`): one request line each, bounded in size and time.
    fn answer_clients(&mut self) {
        let mut execs = Vec::new();
        while let Some(client) = self.claim.as_ref().and_then(|c| c.accept()) {
            let request = read_request(&client);
            let reply = match Request::decode(&request.line) {
                Some(Request::Exec { .. }) => {
                    execs.push((client, request));
                    continue;
                }
                Some(request) => self.reply_to(&request),
                None => format!("error: unknown request {:?}\n", request.line),
            };
            let _ = event::write_all(client.as_fd(), reply.as_bytes());
        }
        for (client, request) in execs {
            let (id, program) = match self.begin_exec(request) {
                Ok(started) => started,
                Err(message) => {
                    let line = format!("error: {}\n", message.replace('\n', " "));
                    let _ = socket::send(client.as_fd(), line.as_bytes(), None);
                    continue;
                }
            };
            // Its session: events go out as they come; its `signal N`
            // lines are read without blocking the event loop.
            let _ = client.set_nonblocking(true);
            self.exec_clients.push(ExecClient {
                id,
                program,
                client,
                host_pid: None,
                input: Vec::new(),
            });
        }
    }

    /// Starts exec session `request` (a `exec N` request, its payload and
    /// descriptors): checks it against the instance, and asks init to start
    /// the process.
    fn begin_exec(&mut self, request: ClientRequest) -> Result<(u32, String), String> {
        if self.state != State::Running {
            return Err(format!("exec: the instance is {}, not running", self.state));
        }
        let exec = crate::exec::ExecRequest::decode(&request.payload).map_err(|e| format!("exec: {e}"))?;
        exec.resolve(&self.spec, self.rootless)
            .map_err(|e| format!("exec: {e}"))?;
        let expected = 3 + exec.preserve_fds as usize;
        if request.fds.len() != expected {
            return Err(format!(
                "exec: {} descriptors came with the request, expected {expected}",
                request.fds.len()
            ));
        }
        let handed: Vec<_> = request
            .fds
            .iter()
            .enumerate()
            .map(|(n, fd)| (fd.as_fd(), handed_in_name(n)))
            .collect();
        xvisor_confine::wall::check_handed_in(&handed, self.spec.policy.guards_host_objects())
            .map_err(|e| format!("exec: {e}"))?;
        for fd in &request.fds {
            self.handed_in.add(fd.as_fd());
        }
        if let (Some(limit), Some(m)) = (self.spec.limits.pids, &self.monitor) {
            if u64::try_from(m.table().len()).unwrap_or(u64::MAX) >= limit {
                return Err(format!("exec: the instance has reached its task limit ({limit})"));
            }
        }
        let id = self.next_exec_id;
        self.next_exec_id = self.next_exec_id.wrapping_add(1).max(1);
        let program = exec.argv.first().cloned().unwrap_or_default();
        let message = ToInit::Exec {
            id,
            request: Box::new(exec),
        }
        .encode();
        let fds: Vec<_> = request.fds.iter().map(|fd| fd.as_fd()).collect();
        socket::send_fds(self.control.as_fd(), &message, &fds)
            .map_err(|e| format!("exec: cannot reach the instance's init: {e}"))?;
        Ok((id, program))
    }

    /// A message of init's about an exec session.
    fn exec_news(&mut self, message: FromInit, fd: Option<OwnedFd>) {
        let (id, line, ends) = match message {
            // Served whether or not its client is still there: the process
            // is a member of the instance either way.
            FromInit::ExecListener { .. } => {
                if let (Some(server), Some(fd)) = (&self.server, fd) {
                    server.add_listener(fd);
                }
                return;
            }
            FromInit::ExecTerminal { id } => {
                if let (Some(session), Some(fd)) = (self.exec_clients.iter().find(|c| c.id == id), fd) {
                    let _ = socket::send(session.client.as_fd(), b"terminal\n", Some(fd.as_fd()));
                }
                return;
            }
            FromInit::ExecStarted { id, pid } => {
                let host_pid = self
                    .monitor
                    .as_ref()
                    .and_then(|m| m.table().host_pid_of(i64::from(pid)));
                let Some(session) = self.exec_clients.iter_mut().find(|c| c.id == id) else {
                    if let Some(at) = self.abandoned_execs.iter().position(|a| *a == id) {
                        self.abandoned_execs.swap_remove(at);
                        if let Some(pid) = host_pid {
                            end_exec_process(pid);
                        }
                    }
                    return;
                };
                session.host_pid = host_pid;
                (id, format!("started {}\n", host_pid.unwrap_or(0)), false)
            }
            FromInit::ExecFailed { id, stage, errno: code } => {
                let program = self.exec_clients.iter().find(|c| c.id == id).map_or("", |c| &c.program);
                (id, format!("error: {}\n", exec_failure(program, stage, code)), true)
            }
            FromInit::ExecExited { id, wait_status } => (id, format!("exited {wait_status}\n"), true),
            _ => return,
        };
        if ends {
            self.abandoned_execs.retain(|a| *a != id);
        }
        if let Some(at) = self.exec_clients.iter().position(|c| c.id == id) {
            let _ = socket::send(self.exec_clients[at].client.as_fd(), line.as_bytes(), None);
            if ends {
                self.exec_clients.remove(at);
            }
        }
    }

    /// Exec session `id`'s client wrote (a `signal N` line) or left.
    fn hear_exec_client(&mut self, id: u32) {
        let Some(at) = self.exec_clients.iter().position(|c| c.id == id) else {
            return;
        };
        let mut buf = [0u8; 256];
        let gone = match event::read(self.exec_clients[at].client.as_fd(), &mut buf) {
            Ok(0) => true,
            Ok(n) => {
                let session = &mut self.exec_clients[at];
                session.input.extend_from_slice(buf.get(..n).unwrap_or_default());
                session.input.len() > MAX_REQUEST
            }
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        if gone {
            // The client has gone (or misbehaves): the session ends, and its
            // process with it. The client is the process's handle for
            // whoever started it — an engine writes its pid to exec's
            // --pid-file, and kills that pid to end an exec that ran too
            // long; a process outliving it would hold the exec's output
            // open with nobody left to end it.
            let session = self.exec_clients.remove(at);
            match session.host_pid {
                Some(pid) => end_exec_process(pid),
                None => self.abandoned_execs.push(session.id),
            }
            return;
        }
        let session = &mut self.exec_clients[at];
        while let Some(end) = session.input.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = session.input.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if let (Some(Request::Signal(n)), Some(pid)) = (Request::decode(&line), session.host_pid) {
                // The monitor traces the process: its pid is not reused
                // before the monitor has collected its end.
                let _ = process::kill(pid, n);
            }
        }
    }

    fn reply_to(&self, request: &Request) -> String {
        let mut out = String::from("ok\n");
        match request {
            Request::Info => {
                let tasks = self.monitor.as_ref().map_or(0, |m| m.table().len());
                let limits = &self.spec.limits;
                let mut fields: Vec<(&str, String)> = vec![
                    ("name", self.spec.name.clone()),
                    ("supervisor_pid", std::process::id().to_string()),
                    ("init_pid", self.init_pid.to_string()),
                    ("state", format!("{:?}", self.state).to_lowercase()),
                    ("profile", self.spec.policy.profile.name().to_string()),
                    ("uptime_s", format!("{:.3}", self.created_at.elapsed().as_secs_f64())),
                    ("tasks", tasks.to_string()),
                    ("command", self.spec.argv.join(" ")),
                ];
                if let Some(m) = limits.memory_bytes {
                    fields.push(("memory_bytes", m.to_string()));
                }
                if let Some(p) = limits.pids {
                    fields.push(("pids", p.to_string()));
                }
                if let Some(c) = limits.cpus {
                    fields.push(("cpus", c.to_string()));
                }
                if let Some(n) = self.spec.nofile {
                    fields.push(("nofile", n.to_string()));
                }
                if let Some(n) = self.spec.processes_per_user {
                    fields.push(("processes_per_user", n.to_string()));
                }
                if let Some(t) = self.spec.timeout {
                    fields.push(("timeout_s", format!("{:.3}", t.as_secs_f64())));
                }
                if !self.spec.publish.is_empty() {
                    let ports: Vec<String> = self.spec.publish.iter().map(|p| p.to_string()).collect();
                    fields.push(("ports", ports.join(",")));
                }
                for (key, value) in fields {
                    out.push_str(&format!("{key}\t{}\n", value.replace(['\t', '\n', '\r'], " ")));
                }
            }
            Request::Tasks => {
                if let Some(m) = &self.monitor {
                    let parked = self.parking.parked_threads();
                    let rows = crate::status::rows(&mut m.table(), self.created_at.elapsed(), &parked);
                    for row in rows {
                        out.push_str(&row.encode());
                        out.push('\n');
                    }
                }
            }
            Request::Signal(n) => {
                if let Err(e) = self.signal_guest(*n) {
                    return format!("error: {e}\n");
                }
            }
            Request::Start => return "error: the instance is not waiting to start\n".into(),
            Request::Exec { .. } => return format!("error: the instance is {}, not running\n", self.state),
        }
        out
    }

    /// `xvisor kill`: SIGKILL ends the whole instance; any other signal
    /// goes to the guest program's main process, as sent.
    fn signal_guest(&self, signal: i32) -> Result<(), InstanceError> {
        // The program is init: signalled through init's pidfd.
        if signal == signal::SIGKILL || self.spec.program_is_init {
            return self.signal(signal);
        }
        // The monitor is the guest's tracer: its host pid cannot have been
        // reused while the monitor lists it.
        let guest = match (&self.monitor, self.guest_pid) {
            (Some(m), Some(pid)) => m.table().host_pid_of(i64::from(pid)),
            _ => None,
        };
        match guest {
            Some(host_pid) => process::kill(host_pid, signal).map_err(host("signal the guest")),
            None => Err(InstanceError::Setup("the guest program has ended".into())),
        }
    }

    fn send(&self, msg: ToInit) -> Result<(), InstanceError> {
        socket::send(self.control.as_fd(), &msg.encode(), None).map_err(|e| {
            if e.raw_os_error() == Some(xvisor_sys::errno::EPIPE) {
                InstanceError::InitVanished
            } else {
                InstanceError::Host {
                    action: "talk to the instance",
                    error: e,
                }
            }
        })
    }

    fn receive(&self) -> Result<(FromInit, Option<OwnedFd>), InstanceError> {
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let (n, fd) = socket::recv(self.control.as_fd(), &mut buf).map_err(host("hear from the instance"))?;
        if n == 0 {
            return Err(InstanceError::InitVanished);
        }
        Ok((FromInit::decode(&buf[..n])?, fd))
    }

    /// Kills whatever is left and removes the cgroups. Idempotent.
    fn teardown(&mut self) -> Result<(), InstanceError> {
        if !self.init_reaped {
            let _ = self.signal(signal::SIGKILL);
            // A paused instance takes the kill only once thawed.
            if let Some(cg) = &self.cgroup {
                let _ = cg.thaw();
            }
            let _ = self.init_end(INIT_END_PATIENCE);
            self.init_reaped = true;
        }
        // In a joined pid namespace, init's end ends nothing else: what is
        // left of the instance (exec'd processes, the program's children)
        // is killed here, or the monitor would wait for it forever.
        if self.spec.joins(NamespaceKind::Pid) {
            if let Some(m) = &self.monitor {
                kill_remaining_tasks(m);
            }
        }
        // Every task is gone with init: the monitor has nothing left to
        // follow and ends.
        if let Some(m) = self.monitor.as_mut() {
            m.join();
        }
        // Every filtered task is gone with init: the serving threads see
        // the listener hang up and end, and stop the waiter; a pool that
        // never got a listener ends when its channel closes.
        self.to_pool = None;
        if let Some(pool) = self.pool.take() {
            if let Some(server) = &self.server {
                server.stop(&pool);
            }
            let _ = pool.join();
        }
        if let Some(trace) = &self.trace {
            let _ = trace.lock().map(|mut t| t.flush());
        }
        // The name is free again; so are the host ids, no process having
        // them any more (a run ends with `exit`, never dropping this).
        self.claim = None;
        self.id_lease = None;
        self.nat = None;
        self.handed_in.stop_agent();
        self.state = State::Stopped;
        let result = match self.cgroup.as_mut() {
            Some(cg) => cg.remove(CGROUP_PATIENCE).map_err(InstanceError::from),
            None => Ok(()),
        };
        if result.is_ok() {
            // The watchdog would retry the removal if it failed.
            if let Some(w) = self.watchdog.as_mut() {
                w.finish();
            }
        }
        result
    }
}

/// What `Instance::wait` keeps between two looks at a running instance.
struct Waiting {
    /// The terminal relay (`-t`): dropped, it gives the user's terminal
    /// its mode back.
    relay: Option<Relay>,
    deadline: Option<Instant>,
    timed_out: bool,
    /// The guest program's own status, as init reported it.
    guest_status: Option<WaitStatus>,
    control_open: bool,
}

/// What one look found ready.
struct Ready {
    signals: bool,
    control: bool,
    init: bool,
    stdin: bool,
    master: bool,
    clients: bool,
    /// The exec sessions whose clients spoke or left.
    exec: Vec<u32>,
}

/// What `prepare` makes before init is born, in the order it makes it.
struct Prepared {
    rootless_ids: crate::hostobj::RootlessIds,
    id_lease: Option<Lease>,
    joins: Vec<(usize, OwnedFd)>,
    claim: Claim,
    cgroup: Option<InstanceCgroup>,
    watchdog: Option<Watchdog>,
    signals: OwnedFd,
    trace: Option<Arc<Mutex<Trace>>>,
}

/// prepare: everything checked and made before init is born — the
/// descriptors handed in, the host ids, the policy's last settings, the
/// namespaces to join, the name, the cgroups and their watchdog, the
/// signals, the trace.
fn prepare(spec: &mut InstanceSpec) -> Result<Prepared, InstanceError> {
    spec.root.validate()?;
    check_handed_in(spec)?;
    let mut rootless_ids = crate::hostobj::rootless_ids(spec).map_err(host("choose the instance's ids"))?;
    let id_lease = lease_host_ids(spec)?;
    settle_guest_rights(spec);
    if let Some(n) = spec.nofile {
        identity::check_open_files(n)?;
    }
    // Checked before anything exists: a wrong path fails cleanly.
    let joins = open_joined_namespaces(spec)?;
    let claim = Registry::for_caller().claim(&spec.name)?;
    let (cgroup, watchdog) = set_up_cgroup(spec)?;
    // The default bound on processes is the cgroup's where there is one;
    // RLIMIT_NPROC per user only where there is none.
    if spec.default_limits && spec.limits.pids.is_none() && cgroup.as_ref().is_some_and(|c| c.has_controller("pids")) {
        spec.processes_per_user = None;
    }
    rootless_ids.start_agent().map_err(host("start the metadata agent"))?;
    // The instance sees its own cgroups at /sys/fs/cgroup when it has
    // any (programs size themselves by the limits they find there).
    spec.root.extras.cgroup_view = cgroup.as_ref().map(|c| c.view()).unwrap_or_default();
    signal::block(SUPERVISOR_SIGNALS).map_err(host("block signals"))?;
    let signals = signal::signal_fd(SUPERVISOR_SIGNALS).map_err(host("create a signalfd"))?;
    let trace = open_trace(spec)?;
    Ok(Prepared {
        rootless_ids,
        id_lease,
        joins,
        claim,
        cgroup,
        watchdog,
        signals,
        trace,
    })
}

/// The standard descriptors handed in, checked here, where they are
/// still this process's own. (An engine's preserved descriptors are its
/// own pipes and sockets.)
fn check_handed_in(spec: &InstanceSpec) -> Result<(), InstanceError> {
    let stdin_handed = spec.stdin == crate::spec::StdinMode::Inherit;
    let handed: Vec<_> = (0..3)
        .filter(|&n| n != 0 || stdin_handed)
        .map(|n| (xvisor_sys::event::standard(n), handed_in_name(n as usize)))
        .collect();
    xvisor_confine::wall::check_handed_in(&handed, host_objects_need_guarding(spec)).map_err(InstanceError::Setup)
}

/// What the guest's root may do, and what the policy records and limits.
fn settle_guest_rights(spec: &mut InstanceSpec) {
    // What the kernel's own permission checks keep from the guest: a
    // guest root that is not host root may have /proc/sys writable (a
    // namespace's owner alone changes its settings, host root the
    // rest), and needs no mask over what only host root can read.
    spec.root.extras.guest_root = if spec.own_host_ids {
        GuestRoot::OwnIds
    } else if process::geteuid() != 0 {
        GuestRoot::Caller
    } else {
        GuestRoot::HostRoot
    };
    if spec.own_host_ids && spec.default_limits && spec.limits.pids.is_none() {
        spec.processes_per_user
            .get_or_insert(identity::DEFAULT_PROCESSES_PER_USER);
    }
    keep_privileges_off_volumes(spec);
    keep_metadata_of_host_objects(spec);
    if let Some(n) = spec.limits.pids {
        spec.policy.limit_tasks(n);
    }
    allow_guest_debuggers(spec);
    // A trace records every call that carries meaning: those calls are
    // trapped only when it is asked for.
    if spec.trace.is_some() || spec.learn {
        spec.policy.record_all();
    }
}

/// Guest debuggers (docs/design/guest-debuggers.md) where the monitor can
/// step aside soundly: not when the policy pins programs (a pin is checked
/// at the monitor's exec stop, which a lent task's tracer would take), nor
/// in a joined pid namespace (init's end does not end it: teardown kills
/// what the table lists, which may lack a lent task's children), nor when
/// learning (which program each task runs is followed through the
/// monitor's exec events, which a guest tracer would take). There the
/// attach family stays refused, as before.
fn allow_guest_debuggers(spec: &mut InstanceSpec) {
    let pinned = crate::pinned::PinnedPrograms::of(&spec.policy).is_some();
    let joined_pid = spec.joined.iter().any(|j| j.kind == NamespaceKind::Pid);
    let denied = spec.policy.user_denial(xvisor_trap::table::PTRACE).is_some();
    if !pinned && !joined_pid && !spec.learn && !denied {
        spec.policy.allow_guest_debuggers();
    }
}

/// The instance's cgroups, planned and made, and the watchdog that
/// removes them (`None` for both when none is wanted, or when one wanted
/// only for pausing or for xvisor's default limits cannot be made).
fn set_up_cgroup(spec: &InstanceSpec) -> Result<(Option<InstanceCgroup>, Option<Watchdog>), InstanceError> {
    // A cgroup wanted only to freeze the instance is given up when it
    // cannot be made (a caller without cgroup delegation): the instance
    // runs, it just cannot be paused.
    let freezer_only = spec.limits.is_empty();
    if freezer_only && !spec.freezable {
        return Ok(if spec.default_limits {
            default_cgroup(spec)
        } else {
            (None, None)
        });
    }
    let placement = placement(spec);
    let host =
        CgroupHost::detect().and_then(|h| cgroup::settle(h, &spec.limits, &spec.name, spec.systemd_scope.as_ref()));
    let host = match host {
        Ok(h) => h,
        // A scope an engine asked for is never given up.
        Err(_) if freezer_only && spec.systemd_scope.is_none() => return Ok((None, None)),
        Err(e) => return Err(e.into()),
    };
    // The defaults beside the limits asked for, where the host takes them.
    if spec.default_limits {
        if let Ok(made) = make_cgroup(&host, &placement, &spec.limits.with_defaults(&host), spec.freezable) {
            return Ok(made);
        }
    }
    match make_cgroup(&host, &placement, &spec.limits, spec.freezable) {
        Ok(made) => Ok(made),
        Err(_) if freezer_only && spec.systemd_scope.is_none() => Ok((None, None)),
        Err(e) => Err(e),
    }
}

/// Where the instance's cgroups go.
fn placement(spec: &InstanceSpec) -> Placement {
    match &spec.cgroup_path {
        Some(path) => Placement::Chosen(path.clone()),
        None => Placement::Own {
            name: spec.name.clone(),
        },
    }
}

/// xvisor's default limits alone (`cgroup::DEFAULT_PIDS`,
/// `cgroup::default_memory`), in a cgroup below the one xvisor runs in,
/// where that can be made as it is: never a systemd scope asked for
/// them (a round trip to the manager on every start), never an error (a
/// caller without a delegated cgroup runs as before, bounded by
/// RLIMIT_NPROC where it has ids of its own), and no view of
/// `/sys/fs/cgroup` (the host's cgroups are found without reading its
/// mounts, [`CgroupHost::detect_known`]).
fn default_cgroup(spec: &InstanceSpec) -> (Option<InstanceCgroup>, Option<Watchdog>) {
    let Some(host) = CgroupHost::detect_known(&["memory", "pids"]).or_else(|| {
        let mut h = CgroupHost::detect().ok()?;
        h.mounts = Default::default();
        Some(h)
    }) else {
        return (None, None);
    };
    let limits = spec.limits.with_defaults(&host);
    if limits.is_empty() {
        return (None, None);
    }
    // Not even a watchdog where the look says it cannot be made.
    match InstanceCgroup::plan(&host, &placement(spec), &limits, false) {
        Ok(planned) if planned.looks_makeable() => {}
        _ => return (None, None),
    }
    make_cgroup(&host, &placement(spec), &limits, false).unwrap_or((None, None))
}

/// Plans and makes the instance's cgroups with `limits`, the watchdog
/// first: it knows the paths before they exist, so there is no moment at
/// which a SIGKILLed supervisor leaves one behind. Nothing is left on
/// error.
fn make_cgroup(
    cgroups: &CgroupHost,
    placement: &Placement,
    limits: &cgroup::Limits,
    freezable: bool,
) -> Result<(Option<InstanceCgroup>, Option<Watchdog>), InstanceError> {
    let mut cg = InstanceCgroup::plan(cgroups, placement, limits, freezable)?;
    let mut dog = Watchdog::spawn(cg.paths()).map_err(host("start the cgroup watchdog"))?;
    // The watchdog leaves the caller's cgroup with the supervisor.
    match cg.create(limits, &[dog.pid()]) {
        Ok(()) => {
            // Best effort: at worst an empty directory outlives a
            // SIGKILLed supervisor.
            let _ = dog.also_remove_if_empty(cg.made_on_the_way());
            Ok((Some(cg), Some(dog)))
        }
        Err(e) => {
            // `create` removed what it made; the watchdog is left a
            // removal only if that failed.
            if cg.remove(Duration::ZERO).is_ok() {
                dog.finish();
            }
            Err(e.into())
        }
    }
}

/// The trace asked for, opened.
fn open_trace(spec: &InstanceSpec) -> Result<Option<Arc<Mutex<Trace>>>, InstanceError> {
    Ok(match &spec.trace {
        None => None,
        Some(TraceTarget::Stderr) => Some(Arc::new(Mutex::new(Trace::new(
            Box::new(io::stderr()),
            TraceFormat::Text,
        )))),
        Some(TraceTarget::Writer(writer)) => Some(Arc::new(Mutex::new(Trace::new(
            Box::new(writer.clone()),
            TraceFormat::JsonLines,
        )))),
        Some(TraceTarget::File(path)) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| InstanceError::Trace {
                    path: path.display().to_string(),
                    error,
                })?;
            Some(Arc::new(Mutex::new(Trace::new(
                Box::new(io::BufWriter::new(file)),
                TraceFormat::JsonLines,
            ))))
        }
    })
}

/// What `fork_init` leaves the supervisor with.
struct Born {
    init_pid: i32,
    init_pidfd: Option<OwnedFd>,
    /// The supervisor's end of the control channel.
    control: OwnedFd,
    /// init joined an existing user namespace (a pod's).
    joins_user: bool,
}

/// init is born: in new namespaces (or joined ones), in the instance's
/// cgroup; the child runs [`init::run`] and never returns here.
// Long: the clone and its undo share the namespaces entered for it.
fn fork_init(
    spec: &mut InstanceSpec,
    joins: &[(usize, OwnedFd)],
    cgroup: &mut Option<InstanceCgroup>,
    watchdog: &mut Option<Watchdog>,
) -> Result<Born, InstanceError> {
    let (control, init_end) = socket::seqpacket_pair().map_err(host("create the control channel"))?;
    let v2_dir = match cgroup.as_ref().and_then(|c| c.v2_dir()) {
        Some(dir) => {
            Some(xvisor_sys::fs::open_dir(None, &dir.to_string_lossy()).map_err(host("open the instance cgroup"))?)
        }
        None => None,
    };
    // The network namespace, when wanted, is created by init itself, in
    // parallel with the id-map writes below. Joined namespaces are
    // entered here, by the supervisor, which holds the privilege over
    // them (init, in its new user namespace, holds none), so init is
    // born in them; the supervisor then returns to its own.
    //
    // A pod's pid namespace is joined the same way (init is born in
    // it). When it belongs to another user namespace (the pod
    // sandbox's own instance), init joins that one first thing and
    // creates its mount (and any other own) namespaces from there, so
    // that they, too, belong to it (`init::run`).
    let join_user = joined_user_namespace(spec, joins)?;
    let mut namespaces = 0;
    if join_user.is_none() {
        namespaces |= process::ns::USER | process::ns::MOUNT;
        for kind in [NamespaceKind::Ipc, NamespaceKind::Uts] {
            if !spec.joins(kind) {
                namespaces |= kind.flag();
            }
        }
    }
    if !spec.joins(NamespaceKind::Pid) {
        namespaces |= process::ns::PID;
    }
    // The program is init (OCI): its parent is ours — `create`, and
    // once that has exited, the engine's subreaper — which reaps it and
    // reads its status, as engines expect of the container's pid. The
    // supervisor follows it as its tracer (the monitor), and the
    // monitor's PTRACE_O_EXITKILL ends it should the supervisor die.
    if spec.program_is_init {
        namespaces |= process::AS_SIBLING;
    }
    // Init enters the v1 cgroups itself, first thing (cheap; see
    // `InstanceCgroup::v1_entry`).
    let mut v1_entry = match cgroup.as_ref() {
        Some(cg) => cg.v1_entry()?,
        None => None,
    };
    let own_namespaces = enter_joined_namespaces(spec, joins)?;
    let forked = process::clone_process(namespaces, v2_dir.as_ref().map(|d| d.as_fd()));
    if !matches!(forked, Ok(Forked::Child)) {
        if let Err(e) = return_to_own_namespaces(&own_namespaces) {
            if let Ok(Forked::Parent { pid, .. }) = &forked {
                let _ = process::kill(*pid, signal::SIGKILL);
            }
            return Err(e);
        }
    }
    let forked = match forked {
        Ok(forked) => forked,
        Err(error) => {
            let error = clone_error(error, cgroup.as_ref().and_then(|c| c.v2_dir()));
            // Nothing was born in them: removed now rather than by the
            // watchdog after xvisor has gone.
            if let Some(cg) = cgroup.as_mut() {
                if cg.remove(Duration::ZERO).is_ok() {
                    if let Some(w) = watchdog.as_mut() {
                        w.finish();
                    }
                }
            }
            return Err(error);
        }
    };
    let (init_pid, init_pidfd) = match forked {
        Forked::Child => {
            if let Some(Err(e)) = v1_entry.take().map(|entry| entry.enter()) {
                eprintln!("xvisor: {e}");
                process::exit_now(1);
            }
            init::run(spec, init_end, join_user.as_ref().map(|fd| fd.as_fd()))
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(init_end);
    Ok(Born {
        init_pid,
        init_pidfd,
        control,
        joins_user: join_user.is_some(),
    })
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.teardown();
        let _ = signal::unblock_all();
    }
}

/// Leases the host ids of an instance that gets its own (see
/// [`InstanceSpec::own_host_ids`]) and makes them its maps: its ids 0–65535
/// are a range no host user and no other instance has.
fn lease_host_ids(spec: &mut InstanceSpec) -> Result<Option<Lease>, InstanceError> {
    if !spec.own_host_ids || spec.id_maps.is_some() || process::geteuid() != 0 {
        spec.own_host_ids = false;
        return Ok(None);
    }
    let (pool, skip) = Pool::system()?;
    let lease = pool.lease(Path::new(idpool::LOCK_DIR), &skip)?;
    let ranges = |outside, far: Option<u32>| {
        let mut ranges = vec![IdRange {
            inside: 0,
            outside,
            count: idpool::RANGE_SIZE,
        }];
        ranges.extend(far.map(|outside| IdRange {
            inside: idpool::FAR_ID,
            outside,
            count: 1,
        }));
        ranges
    };
    spec.id_maps = Some(IdMaps::Given {
        uid: ranges(lease.uid, lease.far_uid),
        gid: ranges(lease.gid, lease.far_gid),
    });
    Ok(Some(lease))
}

/// A writable volume is a host directory: what the guest leaves there,
/// every host user can run. Nothing there may raise privileges: no setuid
/// or setgid mode (refused by the filter, see
/// `Policy::refuse_privilege_bits`) and no file capabilities (the guest
/// lacks CAP_SETFCAP, so the kernel refuses `security.capability`). Checked
/// per instance rather than per file: a path can be moved between a check
/// and the kernel's use of it, the mode register cannot. An OCI engine's
/// binds are the engine's to judge (runtime-spec decides there).
fn keep_privileges_off_volumes(spec: &mut InstanceSpec) {
    let engines = matches!(spec.root.base, xvisor_confine::RootBase::Bundle { .. });
    if engines || !spec.root.volumes.iter().any(|v| v.writable) {
        return;
    }
    spec.policy.refuse_privilege_bits();
    let setfcap = xvisor_sys::caps::cap::SETFCAP;
    let caps = spec.capabilities.get_or_insert_with(Default::default);
    for set in [&mut caps.granted, &mut caps.inheritable, &mut caps.ambient] {
        set.retain(|&c| c != setfcap);
    }
}

/// Rootless, the guest's root is the caller: the kernel would let it
/// change the mode, owner, times and extended attributes of what the
/// caller hands in (its terminal, an output file). The supervisor then
/// performs every such call, refusing it on a host object handed in
/// (`crate::hostobj`). An OCI engine's identity is the engine's to judge.
fn keep_metadata_of_host_objects(spec: &mut InstanceSpec) {
    if host_objects_need_guarding(spec) {
        spec.policy.guard_host_objects();
    }
}

fn host_objects_need_guarding(spec: &InstanceSpec) -> bool {
    let engines = matches!(spec.root.base, xvisor_confine::RootBase::Bundle { .. });
    !engines && process::geteuid() != 0
}

/// What a failed `clone3` of init means. Born into its v2 cgroup
/// (`CLONE_INTO_CGROUP`), init is refused with EOPNOTSUPP when the cgroup
/// cannot take processes (an ancestor holds processes and has controllers
/// enabled) and with EBUSY when it has controllers enabled itself: causes
/// of the cgroup, not of the namespaces.
fn clone_error(error: io::Error, cgroup: Option<&Path>) -> InstanceError {
    match (cgroup, error.raw_os_error()) {
        (Some(path), Some(errno::EOPNOTSUPP | errno::EBUSY)) => InstanceError::Cgroup(CgroupError::Enter {
            path: path.to_path_buf(),
            error,
        }),
        _ => host("create the instance's namespaces")(error),
    }
}

/// Kills an exec'd process whose session has ended, and the processes of
/// its process group (it leads one: see init's `start_process`), which
/// would otherwise keep its output open. The monitor traces the process,
/// so its pid is not reused before the monitor has collected its end.
fn end_exec_process(host_pid: i32) {
    let _ = process::kill(-host_pid, signal::SIGKILL);
    let _ = process::kill(host_pid, signal::SIGKILL);
}

/// SIGKILLs every task the monitor still follows, until none is left
/// (one killed while forking leaves a child the monitor then follows), for
/// a bounded time. The monitor traces them: no pid is reused meanwhile.
/// Once the monitor has ended, nothing traced is left, and its table is
/// no longer kept: nothing more is signalled.
fn kill_remaining_tasks(monitor: &Monitor) {
    let until = Instant::now() + INIT_END_PATIENCE;
    while !monitor.finished() {
        // (A zombie is ended already; the pod's pid 1 may never collect it.)
        let pids: Vec<i32> = monitor
            .table()
            .tasks()
            .filter(|t| t.state != crate::monitor::TaskState::Zombie)
            .map(|t| t.host_pid)
            .collect();
        if pids.is_empty() || Instant::now() > until {
            return;
        }
        for pid in pids {
            let _ = process::kill(pid, signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The user namespace that owns the pid namespace `spec` joins: init joins
/// it (see `Instance::create`). One owned by the supervisor's own user
/// namespace is refused.
fn joined_user_namespace(spec: &InstanceSpec, joins: &[(usize, OwnedFd)]) -> Result<Option<OwnedFd>, InstanceError> {
    use std::os::unix::fs::MetadataExt;
    let Some((index, fd)) = joins
        .iter()
        .find(|(index, _)| spec.joined.get(*index).is_some_and(|j| j.kind == NamespaceKind::Pid))
    else {
        return Ok(None);
    };
    let join = &spec.joined[*index];
    let owner = process::namespace_owner(fd.as_fd()).map_err(|e| InstanceError::Namespace {
        origin: join.origin.clone(),
        path: join.path.display().to_string(),
        message: format!("cannot find the user namespace that owns it: {e}"),
    })?;
    let inode = |path: String| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    let theirs = inode(format!("/proc/self/fd/{}", owner.as_raw_fd())).map_err(host("inspect a namespace"))?;
    let ours = inode("/proc/self/ns/user".into()).map_err(host("inspect a namespace"))?;
    if theirs == ours {
        // The host's pid namespace, or a pod's made by another runtime:
        // the instance could not have its /proc there (that takes
        // privilege over the runtime's user namespace), and would live
        // among the host's processes under host ids (hostPID, refused).
        return Err(InstanceError::Namespace {
            origin: join.origin.clone(),
            path: join.path.display().to_string(),
            message: "belongs to the runtime's own user namespace (the host's, or a pod sandbox not run by \
                      xvisor): only a pid namespace of another xvisor instance can be joined"
                .into(),
        });
    }
    Ok(Some(owner))
}

/// The files of the namespaces `spec` joins, opened and checked to be of
/// the kind asked for; with each, its index in `spec.joined`.
fn open_joined_namespaces(spec: &InstanceSpec) -> Result<Vec<(usize, OwnedFd)>, InstanceError> {
    let mut out = Vec::new();
    for (index, join) in spec.joined.iter().enumerate() {
        let fail = |message: String| InstanceError::Namespace {
            origin: join.origin.clone(),
            path: join.path.display().to_string(),
            message,
        };
        let (fd, kind) = process::open_namespace(&join.path).map_err(|e| {
            if e.raw_os_error() == Some(errno::ENOTTY) {
                fail("not a namespace file".into())
            } else {
                fail(format!("cannot open it: {e}"))
            }
        })?;
        if kind != join.kind.flag() {
            return Err(fail(format!(
                "is {}, not a {} namespace",
                namespace_kind_name(kind),
                join.kind.name()
            )));
        }
        if join.kind == NamespaceKind::Ipc && is_own_namespace(fd.as_fd(), "ipc")? {
            // hostIPC by another name (docs/kubernetes.md, "Host namespaces").
            return Err(fail(
                "is the runtime's own ipc namespace (the host's): sharing it (hostIPC) is not supported".into(),
            ));
        }
        out.push((index, fd));
    }
    Ok(out)
}

/// Whether the namespace file `fd` is this process's own namespace of
/// kind `name` (`/proc/self/ns/NAME`).
fn is_own_namespace(fd: BorrowedFd<'_>, name: &str) -> Result<bool, InstanceError> {
    use std::os::unix::fs::MetadataExt;
    let inode = |path: String| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    let theirs = inode(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(host("inspect a namespace"))?;
    let ours = inode(format!("/proc/self/ns/{name}")).map_err(host("inspect a namespace"))?;
    Ok(theirs == ours)
}

/// "a uts namespace", for a `CLONE_NEW*` flag.
fn namespace_kind_name(flag: u64) -> &'static str {
    use process::ns;
    match flag {
        ns::NET => "a network namespace",
        ns::IPC => "an ipc namespace",
        ns::UTS => "a uts namespace",
        ns::PID => "a pid namespace",
        ns::MOUNT => "a mount namespace",
        ns::USER => "a user namespace",
        ns::CGROUP => "a cgroup namespace",
        ns::TIME => "a time namespace",
        _ => "a namespace of an unknown kind",
    }
}

/// Moves the supervisor into the joined namespaces, writes the kernel
/// settings that belong to them (init, unprivileged there, could not), gives
/// a joined UTS namespace the host name asked for, if any, and takes its
/// host name as the instance's. Returns the
/// supervisor's own namespaces, to return to once init is born.
fn enter_joined_namespaces(
    spec: &mut InstanceSpec,
    joins: &[(usize, OwnedFd)],
) -> Result<Vec<(NamespaceKind, OwnedFd)>, InstanceError> {
    let mut own: Vec<(NamespaceKind, OwnedFd)> = Vec::new();
    for (index, fd) in joins {
        let Some(join) = spec.joined.get(*index) else { continue };
        let proc_name = join.kind.proc_name();
        let (mine, _) = process::open_namespace(std::path::Path::new(&format!("/proc/self/ns/{proc_name}")))
            .map_err(host("open the supervisor's own namespaces"))?;
        if let Err(e) = process::setns(fd.as_fd(), join.kind.flag()) {
            return_to_own_namespaces(&own)?;
            let hint = if e.raw_os_error() == Some(errno::EPERM) {
                " (joining needs CAP_SYS_ADMIN over the user namespace that owns it: run as root, or as root of that user namespace)"
            } else {
                ""
            };
            return Err(InstanceError::Namespace {
                origin: join.origin.clone(),
                path: join.path.display().to_string(),
                message: format!("cannot join it: {e}{hint}"),
            });
        }
        own.push((join.kind, mine));
    }
    let joined_kind_of = |key: &str| {
        let kind = if key.starts_with("net.") {
            NamespaceKind::Network
        } else {
            NamespaceKind::Ipc
        };
        spec.joins(kind)
    };
    let (ours, theirs): (Vec<_>, Vec<_>) = spec.sysctls.iter().cloned().partition(|(k, _)| joined_kind_of(k));
    for (key, value) in &ours {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        if let Err(e) = std::fs::write(&path, value) {
            return_to_own_namespaces(&own)?;
            return Err(InstanceError::Setup(format!("cannot set sysctl {key}: {e}")));
        }
    }
    spec.sysctls = theirs;
    if let Some(name) = spec
        .joined
        .iter()
        .find(|j| j.kind == NamespaceKind::Uts)
        .and_then(|j| j.hostname.as_deref())
    {
        // Set here, by the supervisor, which is privileged over the joined
        // namespace; init (born in its own user namespace) is not.
        if let Err(e) = process::sethostname(name) {
            return_to_own_namespaces(&own)?;
            return Err(InstanceError::Setup(format!(
                "cannot set the host name {name:?} in the joined UTS namespace: {e}"
            )));
        }
    }
    if spec.joins(NamespaceKind::Uts) {
        let name = process::hostname().map_err(host("read the joined UTS namespace's host name"))?;
        spec.hostname = name.clone();
        spec.root.hostname = name;
    }
    Ok(own)
}

/// Back into the namespaces [`enter_joined_namespaces`] left.
fn return_to_own_namespaces(own: &[(NamespaceKind, OwnedFd)]) -> Result<(), InstanceError> {
    for (kind, fd) in own {
        process::setns(fd.as_fd(), kind.flag()).map_err(host("return to the supervisor's own namespaces"))?;
    }
    Ok(())
}

/// Confines the calling thread for good: `no_new_privs`, capabilities cut
/// to `keep` (bounding, ambient, effective and permitted sets), and the
/// supervisor's own seccomp filter (`xvisor_trap::host`). Capabilities and
/// filters belong to a thread: each supervisor thread calls this.
pub(crate) fn confine_current_thread(keep: &[u32]) -> io::Result<()> {
    confine_thread(keep, xvisor_trap::host::supervisor_filter())
}

/// [`confine_current_thread`] with another filter (the monitor thread's).
fn confine_thread(keep: &[u32], filter: &[xvisor_trap::bpf::Instruction]) -> io::Result<()> {
    process::set_no_new_privs()?;
    if process::geteuid() == 0 {
        xvisor_sys::caps::limit_bounding_set(keep)?;
        xvisor_sys::caps::clear_ambient()?;
        xvisor_sys::caps::set_exact(keep)?;
    }
    seccomp::install_filter(&xvisor_trap::bpf::to_bytes(filter))
}

/// A control-socket client's request: its line, and for an exec request
/// the payload after it and the descriptors that came with it.
pub(crate) struct ClientRequest {
    pub(crate) line: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Reads a control-socket client's request, bounded in size and time.
/// recvmsg (the standard library's socket I/O would need recvfrom and
/// sendto, which the supervisor's filter does not allow), so that an exec
/// request's descriptors are received.
pub(crate) fn read_request(client: &std::os::unix::net::UnixStream) -> ClientRequest {
    let _ = client.set_read_timeout(Some(CLIENT_PATIENCE));
    let _ = client.set_write_timeout(Some(CLIENT_PATIENCE));
    let deadline = Instant::now() + CLIENT_PATIENCE;
    let mut bytes = Vec::new();
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut receive = |bytes: &mut Vec<u8>, fds: &mut Vec<OwnedFd>| -> bool {
        if Instant::now() > deadline {
            return false;
        }
        match socket::recv_fds(client.as_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => false,
            Ok((n, got)) => {
                bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
                fds.extend(got);
                true
            }
        }
    };
    while bytes.len() < MAX_REQUEST && !bytes.contains(&b'\n') {
        if !receive(&mut bytes, &mut fds) {
            break;
        }
    }
    let (line, mut payload) = match bytes.iter().position(|b| *b == b'\n') {
        Some(end) => (
            String::from_utf8_lossy(&bytes[..end]).into_owned(),
            bytes.get(end + 1..).unwrap_or_default().to_vec(),
        ),
        None => (String::from_utf8_lossy(&bytes).into_owned(), Vec::new()),
    };
    if let Some(Request::Exec { length }) = Request::decode(&line) {
        while payload.len() < length {
            if !receive(&mut payload, &mut fds) {
                break;
            }
        }
    } else {
        payload.clear();
    }
    ClientRequest { line, payload, fds }
}

/// Why an exec session's process could not start, in a user's words.
fn exec_failure(program: &str, stage: StartStage, code: i32) -> String {
    let error = io::Error::from_raw_os_error(code);
    match stage {
        StartStage::Exec if code == errno::ENOENT => format!("exec: {program}: command not found"),
        StartStage::Exec if code == errno::EAGAIN => "exec: the instance has reached its task limit".to_string(),
        StartStage::Exec => format!("exec: {program}: cannot execute: {error}"),
        StartStage::Workdir => format!("exec: working directory: {error}"),
        StartStage::Identity => format!("exec: cannot set up the process (identity, limits or stdio): {error}"),
        StartStage::Filter => format!("exec: cannot install the system-call filter: {error}"),
        StartStage::AppArmor => format!("exec: AppArmor refused the container's profile: {error}"),
        // Only the main program runs startContainer hooks.
        StartStage::Hook => format!("exec: the process could not start: {error}"),
    }
}

/// How long the supervisor gives a control-socket client to ask and read.
const CLIENT_PATIENCE: Duration = Duration::from_secs(2);
/// The longest request line read.
const MAX_REQUEST: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// A running instance as `wait` sees it, reduced to its control channel
    /// (`control`, the supervisor's end) and init (`init_pid`, a child of the
    /// test): no monitor, cgroups, serving threads or registry name.
    fn bare_running(control: OwnedFd, init_pid: i32) -> Instance {
        let spec = InstanceSpec {
            name: "bare".into(),
            argv: vec!["true".into()],
            env: Vec::new(),
            workdir: "/".into(),
            uid: 0,
            gid: 0,
            root: xvisor_confine::rootfs::RootSpec {
                base: xvisor_confine::rootfs::RootBase::HostRoot,
                volumes: Vec::new(),
                home: "/root".into(),
                home_owner: (0, 0),
                hostname: "bare".into(),
                resolv_conf: None,
                workdir: None,
                extras: Default::default(),
                tmpfs_sizes: xvisor_confine::rootfs::TmpfsSizes { scratch: 0, shm: 0 },
            },
            hostname: "bare".into(),
            network: Default::default(),
            publish: Vec::new(),
            limits: Default::default(),
            id_maps: None,
            own_host_ids: false,
            cgroup_path: None,
            systemd_scope: None,
            apparmor_profile: None,
            nofile: None,
            processes_per_user: None,
            default_limits: false,
            timeout: None,
            tty: false,
            stdin: crate::spec::StdinMode::Null,
            policy: Default::default(),
            trace: None,
            learn: false,
            capabilities: None,
            capability_ceiling: Default::default(),
            no_new_privileges: true,
            additional_gids: Vec::new(),
            preserve_fds: 0,
            sysctls: Vec::new(),
            ping_sockets: false,
            extra_filter: None,
            joined: Vec::new(),
            hooks: Default::default(),
            freezable: false,
            denied_paths: Vec::new(),
            access: Default::default(),
            deny_write_execute: false,
            program_is_init: false,
        };
        Instance {
            spec,
            state: State::Running,
            init_pid,
            init_pidfd: None,
            init_reaped: false,
            control,
            signals: std::fs::File::open("/dev/null").expect("open /dev/null").into(),
            cgroup: None,
            watchdog: None,
            pty_master: None,
            guest_pid: None,
            started_at: Some(Instant::now()),
            trace: None,
            created_at: Instant::now(),
            claim: None,
            monitor: None,
            pool: None,
            to_pool: None,
            parking: Arc::new(Parking::new().expect("the scheduler's wake-up pipe")),
            outcomes: None,
            learning: None,
            absent: None,
            server: None,
            exec_clients: Vec::new(),
            next_exec_id: 1,
            abandoned_execs: Vec::new(),
            rootless: false,
            moved: Vec::new(),
            id_lease: None,
            handed_in: Default::default(),
            joins_user: false,
            nat: None,
            when_ended: None,
        }
    }

    /// init reaps an exec'd process and the guest in one pass: it sends the
    /// process's end, then the guest's, and ends with status 0. A turn of
    /// `wait` that finds both messages queued and init ended must still
    /// give the guest's status, not init's.
    #[test]
    // The child standing for init is reaped by the turn under test.
    #[allow(clippy::zombie_processes)]
    fn the_guests_end_queued_behind_an_exec_end_is_its_status() {
        let (ours, inits) = socket::seqpacket_pair().expect("a socket pair");
        for message in [
            FromInit::ExecExited { id: 1, wait_status: 0 },
            FromInit::Exited {
                wait_status: WaitStatus::Exited(3).to_raw(),
                alone: true,
            },
        ] {
            socket::send(inits.as_fd(), &message.encode(), None).expect("send");
        }
        drop(inits);
        // Stands for init: ends with status 0, reaped by the turn.
        let init = std::process::Command::new("true").spawn().expect("spawn true");
        let init_pid = i32::try_from(init.id()).expect("a pid");
        let mut instance = bare_running(ours, init_pid);
        let mut waiting = Waiting {
            relay: None,
            deadline: None,
            timed_out: false,
            guest_status: None,
            control_open: true,
        };
        let ready = Ready {
            signals: false,
            control: true,
            init: true,
            stdin: false,
            master: false,
            clients: false,
            exec: Vec::new(),
        };
        let init_status = instance.running(&mut waiting, ready).expect("a turn");
        assert_eq!(init_status, Some(WaitStatus::Exited(0)));
        let outcome = instance
            .reaped(waiting, State::Stopped, WaitStatus::Exited(0))
            .expect("reaped");
        assert_eq!(outcome, Outcome::Exited(WaitStatus::Exited(3)));
        assert_eq!(outcome.exit_code(), 3);
    }

    #[test]
    fn a_cgroup_refusing_init_is_named_as_the_cause() {
        let dir = Path::new("/sys/fs/cgroup/s.scope/xvisor-a");
        for errno in [errno::EOPNOTSUPP, errno::EBUSY] {
            let message = clone_error(io::Error::from_raw_os_error(errno), Some(dir)).to_string();
            assert!(message.starts_with("cannot start the instance in cgroup /sys/fs/cgroup/s.scope/xvisor-a: "));
            assert!(!message.contains("namespaces"), "{message}");
        }
        let message = clone_error(io::Error::from_raw_os_error(errno::EOPNOTSUPP), None).to_string();
        assert!(message.starts_with("cannot create the instance's namespaces"));
        let message = clone_error(io::Error::from_raw_os_error(errno::EPERM), Some(dir)).to_string();
        assert!(message.starts_with("cannot create the instance's namespaces"));
    }
}
