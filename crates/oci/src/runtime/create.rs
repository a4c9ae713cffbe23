//! `create` and `run`: the container's supervisor is forked, creates the
//! instance, records the container's state, and waits on the instance's
//! control socket for `start`; it then serves the instance to its end and
//! exits with the guest's status, which is why its pid is the container's
//! pid for engines (they wait for it).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use xvisor_instance::registry::{Registry, Request};
use xvisor_instance::{Instance, StartWait};
use xvisor_sys::process::{self, Forked};
use xvisor_sys::{event, signal};

use super::base::{read_report, state_json, write_pid_file, Runtime};
use super::delete::run_poststop;
use super::error::RuntimeError;
use crate::state::{now_rfc3339, process_start_time};
use crate::{ContainerState, StateStore, Status, StoredHook};

/// What `create` (and `run`) are asked.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub id: String,
    /// The bundle (config.json and the root).
    pub bundle: PathBuf,
    /// Where the container's pid is written.
    pub pid_file: Option<PathBuf>,
    /// With `process.terminal`: where the terminal's master side goes.
    pub console_socket: Option<PathBuf>,
    /// Descriptors 3 .. 3+N-1 passed into the container.
    pub preserve_fds: u32,
}

/// A created container's processes on the host.
#[derive(Debug, Clone, Copy)]
pub struct Created {
    pub supervisor: i32,
    /// The state's `pid` (the program).
    pub container: i32,
}

/// How `run` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Returns once the program has started.
    Detached,
    /// Waits for the container's end and returns its exit status.
    Foreground,
}

impl Runtime<'_> {
    /// `create`: the container waits, created, for `start`.
    pub fn create(&self, request: &CreateRequest) -> Result<Created, RuntimeError> {
        self.create_container(request, false)
    }

    /// `run`: create and start; in the foreground, the exit status of the
    /// container's program (its shell code), else 0.
    pub fn run(&self, request: &CreateRequest, mode: RunMode) -> Result<i32, RuntimeError> {
        let id = &request.id;
        let created = self.create_container(request, true)?;
        Registry::for_caller()
            .ask(id, &Request::Start)
            .map_err(|source| RuntimeError::Asked {
                what: format!("start {id}"),
                source,
            })?;
        if mode == RunMode::Detached {
            return Ok(0);
        }
        let store = self.store();
        let code = match process::wait_pid(created.supervisor, false) {
            Ok(Some((_, status))) => status.shell_code(),
            _ => store.exit_code(id).unwrap_or(1),
        };
        let state = store.load(id);
        let _ = store.remove(id);
        if let Ok(state) = state {
            run_poststop(self, &state);
        }
        Ok(code)
    }

    fn create_container(&self, request: &CreateRequest, run: bool) -> Result<Created, RuntimeError> {
        let id = &request.id;
        let refused = |message: String| Err(RuntimeError::Refused(message));
        let bundle = std::path::absolute(&request.bundle).map_err(RuntimeError::io("--bundle"))?;
        let mut container = crate::load_bundle(&bundle, id)?;
        if let Some(maps) = &container.spec.id_maps {
            if !maps.writable_by(process::geteuid(), process::getegid()) {
                return refused(
                    "config.json: linux.uidMappings: without root only the caller's own uid and gid can be mapped \
                     (one id each: mapping more needs newuidmap/newgidmap, which xvisor does not use)"
                        .into(),
                );
            }
        }
        self.log_ignored("config.json", &container.ignored);
        if let Some(profile) = &container.spec.apparmor_profile {
            let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled");
            if !enabled.is_ok_and(|e| e.trim() == "Y") {
                return refused(format!(
                    "config.json: process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
                ));
            }
        }
        if self.systemd_cgroup {
            use_systemd_scope(&mut container, id)?;
        }
        container.spec.preserve_fds = request.preserve_fds;
        if container.spec.tty && request.console_socket.is_none() && !run {
            return refused("config.json: process.terminal is true: create needs --console-socket".into());
        }
        if !container.spec.tty && request.console_socket.is_some() {
            return refused("--console-socket given but config.json's process.terminal is false".into());
        }
        for l in &container.rlimits {
            let (_, hard) = process::rlimit::get(l.resource).map_err(RuntimeError::io(format!("read {}", l.name)))?;
            if l.hard > hard {
                return refused(format!(
                    "config.json: process.rlimits: {} hard limit {} is above this process's hard limit {} (raising it needs CAP_SYS_RESOURCE; e.g. podman --ulimit {}={hard}:{hard})",
                    l.name,
                    l.hard,
                    hard,
                    l.name.trim_start_matches("RLIMIT_").to_lowercase()
                ));
            }
        }
        let store = self.store();
        store.reserve(id)?;
        let supervisor = Supervisor {
            runtime: self,
            store: &store,
            id,
            bundle: &bundle,
            console_socket: request.console_socket.as_deref(),
            foreground: run,
        };
        match supervisor.fork(container) {
            Ok(created) => {
                if let Some(file) = &request.pid_file {
                    write_pid_file(file, created.container)?;
                }
                Ok(created)
            }
            Err(e) => {
                let _ = store.remove(id);
                Err(e)
            }
        }
    }
}

/// systemd's cgroup driver: the container's scope is made by systemd (in
/// the slice `cgroupsPath` names) and the instance's cgroups go below it;
/// an empty `cgroupsPath` gets `xvisor-ID.scope` in the manager's default
/// slice.
fn use_systemd_scope(container: &mut crate::Container, id: &str) -> Result<(), RuntimeError> {
    let scope = match container.systemd_scope.take() {
        Some(scope) => scope,
        None if container.spec.cgroup_path.is_none() => xvisor_confine::cgroup::ScopeRequest {
            unit: xvisor_confine::systemd::instance_scope_name(id, std::process::id()),
            slice: None,
        },
        None => {
            return Err(RuntimeError::Refused(
                "config.json: linux.cgroupsPath: with --systemd-cgroup it must be SLICE:PREFIX:NAME naming a scope"
                    .into(),
            ))
        }
    };
    container.spec.cgroup_path = None;
    container.spec.systemd_scope = Some(scope);
    Ok(())
}

/// The container's supervisor, before and after its fork.
struct Supervisor<'a> {
    runtime: &'a Runtime<'a>,
    store: &'a StateStore,
    id: &'a str,
    bundle: &'a Path,
    console_socket: Option<&'a Path>,
    /// `run` in the foreground: the caller's session is kept.
    foreground: bool,
}

impl Supervisor<'_> {
    /// Forks the container's supervisor and waits for its report: its pid
    /// and the container's once the instance is created and its state
    /// recorded.
    fn fork(&self, container: crate::Container) -> Result<Created, RuntimeError> {
        let (report_read, report_write) = event::pipe().map_err(RuntimeError::io("create a pipe"))?;
        match process::fork().map_err(RuntimeError::io("fork the supervisor"))? {
            Forked::Child => {
                drop(report_read);
                let code = self.supervise(container, report_write);
                process::exit_now(code)
            }
            Forked::Parent { pid, .. } => {
                drop(report_write);
                let report = read_report(report_read.as_fd())
                    .map_err(|e| RuntimeError::Failed(format!("read the supervisor's report: {e}")))?;
                match report.strip_prefix("ok") {
                    // The container's pid: its program's (see `supervise`),
                    // or the supervisor's.
                    Some(rest) => Ok(Created {
                        supervisor: pid,
                        container: rest.trim().parse().ok().filter(|p| *p > 0).unwrap_or(pid),
                    }),
                    None => {
                        // It has ended or is ending: collect it.
                        let _ = process::wait_pid(pid, false);
                        match report.strip_prefix("error: ") {
                            Some(message) => Err(RuntimeError::Failed(message.trim_end().to_string())),
                            None => Err(RuntimeError::Failed(
                                "the container's supervisor ended during creation".into(),
                            )),
                        }
                    }
                }
            }
        }
    }

    /// The container's supervisor. Returns its exit status.
    // Long: the forked supervisor from the container's state to its exit, each failure reported on one pipe.
    fn supervise(&self, container: crate::Container, report: OwnedFd) -> i32 {
        let fail = |message: String| -> i32 {
            let _ = event::write_all(report.as_fd(), format!("error: {message}\n").as_bytes());
            125
        };
        if !self.foreground {
            // Its own session: the caller's terminal and process group are
            // not the container's business.
            let _ = process::setsid();
        }
        let _ = process::set_process_name("xvisor-oci");
        let crate::Container {
            mut spec,
            rlimits,
            oom_score_adj,
            umask,
            annotations,
            poststop,
            ignored: _,
            systemd_scope: _,
        } = container;
        let me = process::getpid();
        let mut state = ContainerState {
            id: self.id.to_string(),
            bundle: self.bundle.to_path_buf(),
            pid: me,
            pid_start_time: process_start_time(me).unwrap_or_default(),
            process: 0,
            process_start_time: 0,
            created: now_rfc3339(),
            annotations,
            cgroup_paths: Vec::new(),
            owner: process::geteuid(),
            freezer: None,
            poststop: poststop.iter().map(StoredHook::from).collect(),
        };
        // What the hooks read on their standard input, at each point.
        for (status, target) in [
            (Status::Creating, &mut spec.hooks.state_creating),
            (Status::Created, &mut spec.hooks.state_created),
            (Status::Running, &mut spec.hooks.state_running),
        ] {
            *target = state_json(&state, status).to_string().into_bytes();
        }
        // They name the supervisor until the program exists (Instance::create).
        spec.hooks.state_pid = Some(me);
        let tty = spec.tty;
        if tty && self.console_socket.is_some() {
            // The container's standard streams are its terminal: the
            // caller's (an engine's pipes, read to end-of-file) must not
            // stay open here.
            process::stdio_to_null();
        }
        if let Some(mask) = umask {
            process::set_umask(mask);
        }
        if let Some(adj) = oom_score_adj {
            if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
                return fail(format!("config.json: process.oomScoreAdj {adj}: {e}"));
            }
        }
        for l in &rlimits {
            if let Err(e) = process::rlimit::set(l.resource, l.soft, l.hard) {
                return fail(format!(
                    "config.json: process.rlimits: {} {}:{}: {e}",
                    l.name, l.soft, l.hard
                ));
            }
        }
        let mut instance = match Instance::create(spec) {
            Ok(i) => i,
            Err(e) => return fail(e.to_string()),
        };
        if let Some(socket) = self.console_socket {
            let Some(master) = instance.take_terminal() else {
                return fail("the instance has no terminal".into());
            };
            let sent = std::os::unix::net::UnixStream::connect(socket)
                .and_then(|s| xvisor_sys::socket::send(s.as_fd(), b"/dev/ptmx", Some(master.as_fd())));
            if let Err(e) = sent {
                return fail(format!("--console-socket {}: {e}", socket.display()));
            }
        }
        if instance.program_is_init() {
            state.process = instance.init_pid();
            state.process_start_time = process_start_time(state.process).unwrap_or_default();
        }
        state.cgroup_paths = instance.cgroup_paths();
        state.freezer = instance.freezer_path();
        if let Err(e) = self.store.save(&state) {
            return fail(e.to_string());
        }
        let _ = event::write_all(report.as_fd(), format!("ok {}\n", state.process.max(0)).as_bytes());
        drop(report);
        let code = self.serve(&mut instance);
        let _ = self.store.record_exit(self.id, code);
        code
    }

    /// Serves the created instance: until `start`, then to its end.
    /// Returns the container's exit status.
    fn serve(&self, instance: &mut Instance) -> i32 {
        let log = self.runtime.log;
        match instance.serve_until_started() {
            Ok(StartWait::Started) => {
                if let Err(e) = instance.confine_supervisor() {
                    log.error(&e.to_string());
                    let _ = instance.signal(signal::SIGKILL);
                }
                match instance.wait() {
                    Ok(outcome) => outcome.exit_code(),
                    Err(e) => {
                        log.error(&e.to_string());
                        e.exit_code()
                    }
                }
            }
            Ok(StartWait::Killed(n)) => 128 + n,
            Ok(StartWait::Vanished) => 137,
            Err(e) => {
                log.error(&e.to_string());
                e.exit_code()
            }
        }
    }
}
