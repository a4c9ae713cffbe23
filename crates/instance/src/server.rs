//! The serving threads: receive every trapped call of an instance, decide
//! it and answer it, as fast as the kernel lets a round trip go.
//!
//! A small fixed pool ([`serving_threads`]) takes turns at the listener,
//! leader and followers: the leader alone waits on the listener, with the
//! kernel's synchronous wake-up requested, so a trapped call wakes it on the
//! caller's CPU and the answer wakes the caller on the same CPU. Short
//! system-call work (a decision on registers) is done by the leader on the
//! spot, keeping its turn; work that takes longer (reading guest memory for
//! the trace) is done after handing the turn to a follower, so other guest
//! threads' calls are received meanwhile. A call that must wait is parked
//! ([`crate::sched`]). The pool ends when every filtered task is gone (the
//! listener reports hang-up).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xvisor_kernel::decode;
use xvisor_kernel::dispatch::{self, Decision, Performed, Wait};
use xvisor_kernel::trace::{Record, Trace};
use xvisor_kernel::TrappedCall;
use xvisor_sys::errno;
use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::seccomp::{self, Notification};
use xvisor_trap::Policy;

use crate::monitor::TaskTable;
use crate::sched::{Parked, Parking};

/// Threads serving one instance's trapped calls and completing its parked
/// ones, whatever its number of guest threads. A second thread pays off
/// only when some work is long enough to hand the listener on (today: the
/// trace's reads of guest memory); each thread costs the instance's start
/// ~0.3 ms (its own seccomp filter install: a confined thread may not
/// create threads), measured with `bench/startup`.
pub(crate) fn serving_threads(tracing: bool) -> usize {
    if tracing {
        2
    } else {
        1
    }
}

/// What the serving threads share.
#[derive(Debug)]
pub(crate) struct Server {
    /// One listener per filter installed in the instance: the guest
    /// program's, then one per exec'd process (each filter install makes
    /// its own). Added at run time; each leaves when it hangs up (every
    /// task under its filter gone).
    pub(crate) listeners: Mutex<Vec<Arc<OwnedFd>>>,
    /// Counts listener additions and removals, so a leader about to block
    /// in `RECV` on its lone listener sees that it is no longer alone, and
    /// serving threads know when to look the listeners up again.
    pub(crate) generation: AtomicU64,
    /// Set by the leader while it blocks (or is about to block) in `RECV`.
    pub(crate) in_receive: AtomicBool,
    pub(crate) policy: Policy,
    pub(crate) trace: Option<Arc<Mutex<Trace>>>,
    /// When learning (`--learn`): what the calls touch.
    pub(crate) learning: Option<Arc<crate::learning::Learning>>,
    /// When tracing: the host paths calls failed on (`absent`).
    pub(crate) absent: Option<Arc<crate::absent::Absent>>,
    pub(crate) created_at: Instant,
    pub(crate) parking: Arc<Parking>,
    /// When tracing or learning: what continued calls returned, read by
    /// the monitor.
    pub(crate) outcomes: Option<Arc<crate::outcome::Outcomes>>,
    /// The monitor's task table (instance pid → host pid for parked waits).
    pub(crate) tasks: Arc<Mutex<TaskTable>>,
    /// Held by the thread whose turn it is to wait on the listener.
    pub(crate) turn: Mutex<()>,
    pub(crate) hung_up: AtomicBool,
    /// A lone serving thread receives by blocking in `RECV` on a lone
    /// listener while nothing is parked, rather than `poll`ing first: one
    /// system call less per trapped call, and the kernel's poll of a
    /// listener walks every pending notification, which with hundreds of
    /// guest threads calling at once costs more than the call. With
    /// `SYNC_WAKE_UP` the guest's notification wakes the `RECV` on the
    /// guest's CPU as it does a `poll`. Not while tracing (two serving
    /// threads take turns) or while calls are parked (the scheduler's
    /// wake-ups come through the poll). Woken for teardown and for a new
    /// listener by the doorbell signal.
    pub(crate) blocking_receive: bool,
    /// The serving threads' ids, for the doorbell.
    pub(crate) threads: Mutex<Vec<i32>>,
    /// Calls received from the guest so far (what the instance paid in
    /// round trips).
    pub(crate) trapped: AtomicU64,
    /// Refusals named on stderr, and when.
    pub(crate) refusals: Refusals,
    /// The instance has a network namespace of its own (`--net none`):
    /// abstract unix sockets there are all the instance's, so the
    /// supervisor may connect one for the guest.
    pub(crate) own_network: bool,
    /// The host objects handed in, which a metadata call the supervisor
    /// performs may not change (`Policy::guards_host_objects`).
    pub(crate) handed_in: Arc<crate::hostobj::HandedIn>,
    /// The device of the instance's own `/dev/pts`: its ptys alone may
    /// become controlling terminals. Read at the first `TIOCSCTTY` (none
    /// at start-up).
    pub(crate) devpts: std::sync::OnceLock<Option<u64>>,
    /// The instance's init (host pid): xvisor's own code, which shares
    /// no descriptor table with a guest task.
    pub(crate) init_pid: i32,
}

/// Names a refusal the user can act on, on xvisor's stderr: a call their
/// policy denies, or one a built-in register rule refuses. At most one line
/// per distinct refusal (call, program, rule) per second, so a program
/// retrying in a loop cannot flood the terminal or hold the serving thread.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    last: Mutex<std::collections::HashMap<(u32, String), Instant>>,
}

/// Distinct refusals remembered at most (older ones are forgotten first).
const REFUSALS_REMEMBERED: usize = 256;

impl Refusals {
    /// The line naming this refusal, if it is one to name and was not named
    /// in the last second.
    fn name(&self, policy: &Policy, call: &TrappedCall) -> Option<String> {
        let row = dispatch::syscall_of(call)?;
        let reason = Self::reason(policy, call)?;
        self.line(row.number, row.name.to_string(), reason, call)
    }

    /// Why `call` is refused, when a rule of the policy or of the table
    /// refuses it (`None` for the table's own refusals of calls programs
    /// probe routinely, io_uring, bpf …).
    fn reason(policy: &Policy, call: &TrappedCall) -> Option<String> {
        let row = dispatch::syscall_of(call)?;
        Some(match policy.user_denial(row.number) {
            Some(source) => format!("in {source}"),
            None => match xvisor_trap::table::refusing_rule(policy.register_rules(row.handler), &call.args) {
                Some(rule) if matches!(row.handler, xvisor_trap::table::Handler::SetsMode(_)) => format!(
                    "{} is refused in an instance with a writable volume (the host would keep it on the file)",
                    rule.names
                ),
                Some(rule) if rule.names.starts_with("IPPROTO_SCTP") => format!("{} is refused", rule.names),
                Some(rule) => format!("{} is refused in every profile", rule.names),
                None if policy.supervises_connect()
                    && xvisor_trap::table::fastopen_rules(row.number)
                        .and_then(|rules| xvisor_trap::table::refusing_rule(rules, &call.args))
                        .is_some() =>
                {
                    let source = policy.supervised().connect.as_ref().map_or("", |c| c.source.as_str());
                    format!("TCP Fast Open connects without connect(), which {source} decides")
                }
                None if policy.supervises_connect() && row.number == xvisor_trap::table::SETSOCKOPT => {
                    let rule = xvisor_trap::table::refusing_rule(xvisor_trap::table::source_route_rules(), &call.args)?;
                    let source = policy.supervised().connect.as_ref().map_or("", |c| c.source.as_str());
                    format!(
                        "{}: a source route would send to another host than {source} decided",
                        rule.names
                    )
                }
                // The table's own refusals (io_uring, bpf …) are probed by
                // programs routinely: not worth a line.
                None => return None,
            },
        })
    }

    /// The line naming a refusal by a rule the supervisor decided on the
    /// call's arguments (`connect(10.0.0.5:443)`), at most once a second
    /// per call, program and rule.
    fn name_denied(&self, call: &TrappedCall, denied: crate::perform::Denied) -> Option<String> {
        let row = dispatch::syscall_of(call)?;
        self.line(row.number, denied.shown, denied.reason, call)
    }

    fn line(&self, number: u32, shown: String, reason: String, call: &TrappedCall) -> Option<String> {
        let host_tid = i32::try_from(call.pid).unwrap_or(-1);
        // The program as the instance sees it (the link resolves in the
        // caller's mount namespace, to the instance's own path).
        let program = std::fs::read_link(format!("/proc/{host_tid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let key = (number, format!("{program}\0{reason}"));
            if last
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1))
            {
                return None;
            }
            if last.len() >= REFUSALS_REMEMBERED {
                if let Some(oldest) = last.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                    last.remove(&oldest);
                }
            }
            last.insert(key, now);
        }
        let pid = crate::monitor::identify(host_tid, Duration::ZERO, None).pid;
        Some(format!(
            "xvisor: denied {} by {} [pid {pid}]: {reason}",
            crate::printable(&shown),
            crate::printable(&program)
        ))
    }
}

/// Starts the pool: the first thread starts the others (a confined
/// thread may not create threads), then each confines itself (`confine`;
/// filters and capabilities belong to a thread). They all wait for the
/// shared state, sent once the listener has arrived; dropping the sender
/// instead ends them. Joining the returned thread joins the whole pool.
pub(crate) fn start_pool(
    threads: usize,
    confine: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
) -> std::io::Result<(std::thread::JoinHandle<()>, std::sync::mpsc::Sender<Arc<Server>>)> {
    let (to_pool, from_supervisor) = std::sync::mpsc::channel::<Arc<Server>>();
    let confine = Arc::new(confine);
    let first = std::thread::Builder::new()
        .name("xvisor-serve0".into())
        .spawn(move || {
            let mut others = Vec::new();
            let mut senders = Vec::new();
            for n in 1..threads {
                let (tx, rx) = std::sync::mpsc::channel::<Arc<Server>>();
                let confine = Arc::clone(&confine);
                let spawned = std::thread::Builder::new()
                    .name(format!("xvisor-serve{n}"))
                    .spawn(move || {
                        // Should confinement fail, serving goes on (refusing
                        // would hang the guest); the main thread's own
                        // confinement reports the failure.
                        let _ = confine();
                        if let Ok(server) = rx.recv() {
                            server.run();
                        }
                    });
                if let Ok(handle) = spawned {
                    others.push(handle);
                    senders.push(tx);
                }
            }
            let _ = confine();
            let Ok(server) = from_supervisor.recv() else {
                return;
            };
            for tx in senders {
                let _ = tx.send(Arc::clone(&server));
            }
            server.run();
            for handle in others {
                let _ = handle.join();
            }
        })?;
    Ok((first, to_pool))
}

impl Server {
    /// One serving thread's life: serves until every filtered task is gone.
    /// The thread has confined itself already (capabilities and filters
    /// belong to a thread).
    pub(crate) fn run(&self) {
        if let Ok(mut threads) = self.threads.lock() {
            threads.push(xvisor_sys::signal::current_thread_id());
        }
        loop {
            let turn = self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if self.hung_up.load(Ordering::Acquire) {
                break;
            }
            let work = self.lead();
            // Longer work is done off the turn: another thread receives
            // meanwhile.
            drop(turn);
            match work {
                Longer::HungUp => break,
                Longer::Traced(notification, listener) => self.serve(notification, &listener),
                Longer::Parked { woken } => self.parking.complete_due(&self.trace, self.created_at, woken),
            }
        }
    }

    /// The leader's turn: receives and serves short work on the spot,
    /// keeping the turn (no other thread is woken), until there is longer
    /// work to do.
    // Long: the leader's receive loop, whose listener set and turn it keeps between calls.
    fn lead(&self) -> Longer {
        // The listeners as of `seen`: looked up again only when one was
        // added or removed, not at every call.
        let mut listeners: Vec<Arc<OwnedFd>> = Vec::new();
        let mut seen = None;
        loop {
            if self.hung_up.load(Ordering::Acquire) {
                return Longer::HungUp;
            }
            let generation = self.generation.load(Ordering::SeqCst);
            if seen != Some(generation) {
                listeners = self.listeners_now();
                seen = Some(generation);
            }
            if listeners.is_empty() {
                self.hung_up.store(true, Ordering::Release);
                return Longer::HungUp;
            }
            // Blocking in RECV hears one listener only: for a lone one.
            if self.blocking_receive && listeners.len() == 1 && !self.parking.has_parked() {
                let listener = &listeners[0];
                // Announced before looking at the generation, and the adder
                // bumps the generation before looking at this: either this
                // thread sees the new listener, or the adder sees it in RECV
                // and rings it out.
                self.in_receive.store(true, Ordering::SeqCst);
                if self.generation.load(Ordering::SeqCst) != generation {
                    self.in_receive.store(false, Ordering::SeqCst);
                    continue;
                }
                let received = seccomp::receive(listener.as_fd());
                self.in_receive.store(false, Ordering::SeqCst);
                match received {
                    Ok(notification) => self.serve(notification, listener),
                    // The doorbell (teardown, a new listener).
                    Err(e) if e.raw_os_error() == Some(errno::EINTR) => {}
                    // A caller that died between its notification and the
                    // receive — or every task under the filter is gone,
                    // where RECV fails at once, again and again, instead of
                    // waiting: only a poll tells the hang-up.
                    Err(e) if e.raw_os_error() == Some(errno::ENOENT) => {
                        let mut lone = [Watch::new(listener.as_fd(), ready::IN)];
                        let hung_up = matches!(event::poll(&mut lone, 0), Ok(n) if n > 0)
                            && lone[0].ready & (ready::HUP | ready::ERR | ready::NVAL) != 0;
                        if hung_up {
                            self.remove_listener(listener);
                        }
                    }
                    Err(_) => self.remove_listener(listener),
                }
                continue;
            }
            let connecting = self.parking.connecting();
            let mut watch: Vec<Watch<'_>> = listeners.iter().map(|l| Watch::new(l.as_fd(), ready::IN)).collect();
            watch.push(Watch::new(self.parking.wake_fd(), ready::IN));
            watch.extend(connecting.iter().map(|c| Watch::new(c.socket.as_fd(), ready::OUT)));
            let wake_at = listeners.len();
            let parked_due = match event::poll(&mut watch, self.parking.timeout_ms()) {
                Ok(0) => true,
                // The wake-up pipe, or a parked connect that ended.
                Ok(_) => watch[wake_at..].iter().any(|w| w.ready != 0),
                Err(_) => {
                    self.hung_up.store(true, Ordering::Release);
                    return Longer::HungUp;
                }
            };
            let woken = watch[wake_at].ready & ready::IN != 0;
            for (listener, ready) in listeners.iter().zip(watch.iter().map(|w| w.ready)) {
                if ready & ready::IN != 0 {
                    // System-call work first.
                    let Ok(notification) = seccomp::receive(listener.as_fd()) else {
                        // The caller died between the wake-up and the receive.
                        continue;
                    };
                    if self.trace.is_some() || self.learning.is_some() {
                        // Reading guest memory for the trace takes a while.
                        return Longer::Traced(notification, Arc::clone(listener));
                    }
                    self.serve(notification, listener);
                } else if ready & (ready::HUP | ready::ERR | ready::NVAL) != 0 {
                    self.remove_listener(listener);
                }
            }
            if parked_due {
                return Longer::Parked { woken };
            }
        }
    }

    /// The listeners, as they are now.
    fn listeners_now(&self) -> Vec<Arc<OwnedFd>> {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A listener hung up: every task under its filter is gone.
    fn remove_listener(&self, listener: &Arc<OwnedFd>) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        listeners.retain(|l| !Arc::ptr_eq(l, listener));
        if listeners.is_empty() {
            self.hung_up.store(true, Ordering::Release);
        }
        // Other serving threads look their listeners up again.
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Serves one more listener (an exec'd process's filter) from now on.
    /// A leader polling sees it at its next turn (the wake-up pipe ends its
    /// poll); a leader blocked in `RECV` on its lone listener is rung out of
    /// it with the doorbell, again and again until it has left the call (a
    /// ring just before it enters would be lost).
    pub(crate) fn add_listener(&self, listener: OwnedFd) {
        let _ = seccomp::request_sync_wakeup(listener.as_fd());
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(listener));
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.parking.wake();
        let doorbell = xvisor_sys::signal::doorbell();
        let until = Instant::now() + Duration::from_secs(1);
        while self.in_receive.load(Ordering::SeqCst) && Instant::now() < until {
            if let Ok(threads) = self.threads.lock() {
                for tid in threads.iter() {
                    let _ = xvisor_sys::signal::ring(*tid, doorbell);
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Decides one trapped call and answers it (or parks it), recording it
    /// when tracing or learning. Decisions are made on registers; guest
    /// memory is read (for the records only) before the answer, and the
    /// call's validity checked again after reading.
    // Long: the path of every trapped call (decide, answer, record), kept in one place to be read whole.
    fn serve(&self, notification: Notification, on: &Arc<OwnedFd>) {
        self.trapped.fetch_add(1, Ordering::Relaxed);
        let listener = on.as_fd();
        // Clock reads only when tracing: nothing but decide-and-answer stays
        // on the path of a trapped call.
        let received = self.trace.as_ref().map(|_| Instant::now());
        let memory =
            |address: u64, buf: &mut [u8]| seccomp::read_guest_memory(notification.pid, address, buf).unwrap_or(0);
        let call = TrappedCall {
            id: notification.id,
            pid: notification.pid,
            nr: notification.nr,
            arch: notification.arch,
            args: notification.args,
        };
        let over_limit = self.over_task_limit(&call);
        let decision = match over_limit {
            true => Decision::Errno(xvisor_trap::table::errno::EAGAIN),
            false => dispatch::decide(&self.policy, &call),
        };
        // A call the supervisor performs itself: decided on its arguments as
        // copied once, made with that copy; the answer is its result.
        // A call performed here fails as the kernel would make it fail
        // (EBADF, ENOTTY …): only a refusal it names is worth a line.
        let performed = matches!(decision, Decision::Perform(_));
        // A file the supervisor opened for the guest: the answer.
        let mut opened = None;
        let (decision, denied, connecting) = match decision {
            Decision::Perform(Performed::Open) => {
                match self
                    .policy
                    .supervised()
                    .open
                    .as_ref()
                    .and_then(|rules| crate::open::open(rules, &notification, listener))
                {
                    // Handed in with the answer, below (after the trace
                    // has read the call's arguments).
                    Some(crate::open::Opened::File { file, cloexec }) => {
                        opened = Some((file, cloexec));
                        (Decision::Value(0), None, None)
                    }
                    Some(other) => (other.decision(), None, None),
                    None => (Decision::Errno(xvisor_trap::table::errno::EPERM), None, None),
                }
            }
            Decision::Perform(Performed::Connect) => self
                .policy
                .supervised()
                .connect
                .as_ref()
                .and_then(|rules| crate::perform::connect(rules, &notification, listener, self.own_network))
                // The caller is gone: the answer goes nowhere.
                .unwrap_or((Decision::Errno(xvisor_trap::table::errno::EPERM), None, None)),
            Decision::Perform(Performed::Bind) => self
                .policy
                .supervised()
                .bind
                .as_ref()
                .and_then(|rules| crate::perform::bind(rules, &notification, listener, self.own_network))
                .unwrap_or((Decision::Errno(xvisor_trap::table::errno::EPERM), None, None)),
            Decision::Perform(Performed::Send) => self
                .policy
                .supervised()
                .connect
                .as_ref()
                .and_then(|rules| crate::send::send(rules, &notification, listener, self.own_network))
                .unwrap_or((Decision::Errno(xvisor_trap::table::errno::EPERM), None, None)),
            Decision::Perform(Performed::Metadata) => {
                let name = dispatch::syscall_of(&call).map_or("?", |s| s.name);
                let (decision, denied) =
                    crate::hostobj::change_metadata(&notification, listener, &self.handed_in, name)
                        .unwrap_or((Decision::Errno(xvisor_trap::table::errno::EPERM), None));
                (decision, denied, None)
            }
            Decision::Perform(Performed::ControllingTerminal) => {
                // Every task of the instance but zombies (which share
                // nothing any more) and init (which makes its children
                // with fork, and which a rootless supervisor may not
                // compare: init never exec'd, so its memory belongs to the
                // host's user namespace).
                let others: Vec<i32> = self
                    .tasks
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .tasks()
                    .filter(|task| task.state != crate::monitor::TaskState::Zombie && task.host_pid != self.init_pid)
                    .map(|task| task.host_tid)
                    .collect();
                let devpts = *self.devpts.get_or_init(|| crate::hostobj::devpts_of(self.init_pid));
                let (decision, denied) =
                    crate::hostobj::take_controlling_terminal(&notification, listener, devpts, &others)
                        .unwrap_or((Decision::Errno(xvisor_trap::table::errno::EPERM), None));
                (decision, denied, None)
            }
            other => (other, None, None),
        };
        // Learning reads first: the trace's validity check below then covers
        // both reads.
        let noted = self.learning.as_ref().map(|l| l.note(&call, &memory));
        let named = self
            .absent
            .as_ref()
            .map(|_| crate::absent::Absent::note(&call, &memory));
        let described = self.trace.as_ref().map(|_| {
            let text = decode::describe(dispatch::syscall_of(&call), &call, &memory);
            // What was read is only trusted if the call is still the one we
            // read it for.
            let valid = seccomp::id_valid(listener, notification.id);
            // Ids inside the instance (-1 when the thread is gone).
            let ids = crate::monitor::identify(i32::try_from(notification.pid).unwrap_or(-1), Duration::ZERO, None);
            (text, valid, (ids.pid, ids.tid))
        });
        let valid = match (&described, &noted) {
            (Some((_, valid, _)), _) => *valid,
            (None, Some(_)) => seccomp::id_valid(listener, notification.id),
            (None, None) => false,
        };
        let host_tid = i32::try_from(notification.pid).unwrap_or(-1);
        let watched = match (&self.outcomes, decision) {
            (Some(outcomes), Decision::Continue) if valid => outcomes.watch(
                notification.id,
                host_tid,
                i64::from(notification.nr),
                notification.instruction_pointer,
            ),
            _ => false,
        };
        let mut rule = None;
        // The answer, where it was made only now (a descriptor handed in).
        let mut answer = None;
        match decision {
            Decision::Continue => {
                let _ = seccomp::respond(listener, notification.id, seccomp::Response::Continue);
            }
            Decision::Value(v) => match opened.take() {
                // The descriptor handed in and the call answered with its
                // number in one step, or, if the guest cannot take it (its
                // descriptor limit), the call failed as the kernel would
                // fail it.
                Some((file, cloexec)) => {
                    answer = Some(
                        match seccomp::add_fd_and_answer(listener, notification.id, file.as_fd(), cloexec) {
                            Ok(fd) => Decision::Value(i64::from(fd)),
                            Err(e) => {
                                let e = e.raw_os_error().unwrap_or(xvisor_trap::table::errno::EPERM);
                                let _ = seccomp::respond(listener, notification.id, seccomp::Response::Errno(e));
                                Decision::Errno(e)
                            }
                        },
                    );
                }
                None => {
                    let _ = seccomp::respond(listener, notification.id, seccomp::Response::Value(v));
                }
            },
            // Performed above; never left to the kernel.
            Decision::Perform(_) => {
                let _ = seccomp::respond(
                    listener,
                    notification.id,
                    seccomp::Response::Errno(xvisor_trap::table::errno::EPERM),
                );
            }
            Decision::Errno(e) => {
                // The rule, for the trace: every refusal, not only those
                // named on stderr.
                if self.trace.is_some() {
                    rule = match &denied {
                        Some(denied) => Some(denied.reason.clone()),
                        None if over_limit => Some(format!(
                            "the instance's limit of {} tasks (--pids)",
                            self.policy.task_limit().unwrap_or(0)
                        )),
                        None if performed => None,
                        None => Refusals::reason(&self.policy, &call).or_else(|| {
                            Some(
                                if e == xvisor_trap::table::errno::ENOSYS {
                                    "not provided in an instance (ENOSYS: programs fall back to an older call)"
                                } else {
                                    "refused in every profile (xvisor's system-call table)"
                                }
                                .to_string(),
                            )
                        }),
                    };
                }
                // Who made it is read while it still waits for the answer.
                let named = match denied {
                    Some(denied) => self.refusals.name_denied(&call, denied),
                    None if performed => None,
                    None => self.refusals.name(&self.policy, &call),
                };
                let _ = seccomp::respond(listener, notification.id, seccomp::Response::Errno(e));
                if let Some(line) = named {
                    eprintln!("{line}");
                }
            }
            Decision::Park(wait) => self.park(&notification, on, wait, described.as_ref(), connecting),
        }
        let decision = answer.unwrap_or(decision);
        let latency = received.map(|r| r.elapsed());
        let returned = match (&self.outcomes, watched) {
            (Some(outcomes), true) => outcomes.seen(notification.id, OUTCOME_PATIENCE),
            _ => None,
        };
        if let (Some(learning), Some(noted), true) = (&self.learning, noted, valid) {
            let returned = match decision {
                Decision::Errno(e) => Some(-i64::from(e)),
                Decision::Value(v) => Some(v),
                _ => returned,
            };
            learning.record(noted, returned);
        }
        if let (Some(trace), Some(received), Some(latency), Some(((name, args), valid, (pid, tid)))) =
            (self.trace.as_ref(), received, latency, described)
        {
            let hint = match (&self.absent, named, valid) {
                (Some(absent), Some(named), true) => absent.hint(named, returned),
                _ => None,
            };
            let args = if valid { args } else { vec!["<caller gone>".to_string()] };
            let record = Record {
                time_s: received.duration_since(self.created_at).as_secs_f64(),
                pid,
                tid,
                name,
                args,
                decision,
                returned,
                latency_us: latency.as_secs_f64() * 1e6,
                rule,
                after_park: false,
                hint,
            };
            if let Ok(mut trace) = trace.lock() {
                let _ = trace.write(&record);
            }
        }
    }

    /// Whether `call` would create a task beyond the instance's limit, as
    /// the monitor counts them (zombies included, as the kernel does). A
    /// creation allowed just before may not be counted yet: the cgroup's
    /// `pids.max` stays the hard stop.
    fn over_task_limit(&self, call: &TrappedCall) -> bool {
        let Some(limit) = self.policy.task_limit() else {
            return false;
        };
        let creates = dispatch::syscall_of(call).is_some_and(xvisor_trap::policy::creates_task);
        creates && {
            let mut tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            u64::try_from(tasks.count_for_limit()).unwrap_or(u64::MAX) >= limit
        }
    }

    fn park(
        &self,
        notification: &Notification,
        on: &Arc<OwnedFd>,
        wait: Wait,
        described: Option<&DescribedCall>,
        connecting: Option<crate::perform::Connecting>,
    ) {
        let host_tid = i32::try_from(notification.pid).unwrap_or(-1);
        let (host_pid, child_host_pid, threads) = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let host_pid = tasks.get(host_tid).map_or(host_tid, |t| t.host_pid);
            let child = match wait {
                Wait::ChildEnd { child: Some(pid) } => tasks.host_pid_of(i64::from(pid)),
                Wait::ChildEnd { child: None } | Wait::Connected | Wait::UnixQueue | Wait::SendRoom => None,
            };
            let threads = tasks.members_of(host_pid);
            (host_pid, child, threads)
        };
        let name = u32::try_from(notification.nr)
            .ok()
            .and_then(xvisor_trap::table::lookup)
            .map_or("?", |s| s.name);
        let parked = Parked {
            id: notification.id,
            listener: Arc::clone(on),
            host_tid,
            host_pid,
            name,
            wait,
            child_host_pid,
            threads: if threads.is_empty() { vec![host_tid] } else { threads },
            since: Instant::now(),
            described: described.map(|((_, args), _, (pid, tid))| (args.clone(), *pid, *tid)),
            connecting: connecting.map(Arc::new),
        };
        let _ = self.parking.park(parked);
    }
}

impl Server {
    /// Ends the serving threads once every guest task is gone: a thread
    /// blocked in `RECV` hears nothing else, so its doorbell rings until the
    /// pool has ended (a ring just before the thread blocks would be lost).
    pub(crate) fn stop(&self, pool: &std::thread::JoinHandle<()>) {
        self.hung_up.store(true, Ordering::Release);
        let doorbell = xvisor_sys::signal::doorbell();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut next_ring = std::time::Instant::now();
        while !pool.is_finished() && std::time::Instant::now() < until {
            if std::time::Instant::now() >= next_ring {
                if let Ok(threads) = self.threads.lock() {
                    for tid in threads.iter() {
                        let _ = xvisor_sys::signal::ring(*tid, doorbell);
                    }
                }
                next_ring = std::time::Instant::now() + std::time::Duration::from_millis(5);
            }
            // The rung thread ends within microseconds: look often.
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// Work a serving thread does after handing its turn on.
enum Longer {
    /// Every filtered task is gone.
    HungUp,
    /// A call to decide and record in the trace, and its listener.
    Traced(Notification, Arc<OwnedFd>),
    /// Parked calls are due a look (`woken`: the monitor said something).
    Parked { woken: bool },
}

type DescribedCall = ((String, Vec<String>), bool, (i64, i64));

/// How long a serving thread waits for a continued call's result before
/// recording it without: a call that blocks uninterruptibly longer (a slow
/// disk) goes unseen, one that blocks interruptibly is cut short at once.
const OUTCOME_PATIENCE: Duration = Duration::from_millis(50);
