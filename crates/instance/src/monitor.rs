//! The process monitor: the instance's table of guest processes and threads,
//! from birth to reaping.
//!
//! A dedicated thread of the supervisor follows the instance with ptrace:
//! it seizes the instance's init before the guest exists, with the fork,
//! vfork and clone events on (exec events too when tracing), so the kernel
//! attaches every task the instance ever creates — including threads that
//! never make a trapped call — and stops its creator until the monitor has
//! seen the birth. Exits are reported by the kernel to the tracer first.
//! The monitor never reads or changes a task's registers or memory; it
//! only learns and resumes.
//! Why ptrace rather than trapped clone/exit calls: a task created by an
//! allowed clone, or ended by a signal, makes no trapped call at all.
//!
//! Being the tracer has a second use: a traced task's id cannot be reused
//! until the tracer has collected its end, so every host id in the table
//! names the task it says (signals sent by id are race-free).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xvisor_kernel::trace::{TaskEvent, TaskRecord, Trace};
use xvisor_sys::process::WaitStatus;
use xvisor_sys::ptrace::{self, event, options, Report, Waited};
use xvisor_sys::signal;

use crate::procfs::{ids_of, stat_of, Ids};
use crate::sched::Parking;

/// A guest task as the monitor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Host ids: thread and thread group.
    pub host_tid: i32,
    pub host_pid: i32,
    /// Ids inside the instance.
    pub tid: i64,
    pub pid: i64,
    /// The process that created it (host pid), if seen.
    pub creator: Option<i32>,
    /// Since the instance was created.
    pub born_after: Duration,
    pub state: TaskState,
}

/// What the monitor knows of a task's state; [`crate::status`] refines a
/// live task's state with the kernel's view when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Alive (running, or waiting in a call).
    Alive,
    /// In a group stop (SIGSTOP, SIGTSTP …).
    Stopped,
    /// Ended; its parent has not collected it yet.
    Zombie,
}

/// The instance's tasks, by host thread id.
///
/// Each event the monitor sees costs O(1) amortized, whatever the number
/// of tasks or of zombies a guest keeps: a process's end touches only its
/// own threads (`members`), and collected zombies are looked for (a read
/// of `/proc/TID/stat` each: nothing tells the tracer when a parent
/// collects its child) only once the zombies have doubled since the last
/// look — so at most about two reads per process end. Re-reading every
/// zombie at every end made a guest holding thousands of them cost the
/// supervisor a CPU (fork and kill of 2,000 children: seconds, not
/// milliseconds).
#[derive(Debug)]
pub struct TaskTable {
    tasks: BTreeMap<i32, Task>,
    /// The host tids of the tasks in state Zombie.
    zombies: BTreeSet<i32>,
    /// Each process's tasks (host pid → host tids, its main thread's too).
    members: HashMap<i32, BTreeSet<i32>>,
    /// How many zombies make the next look for collected ones due.
    next_look: usize,
    /// When the task limit may look for collected zombies again.
    limit_look_after: Instant,
}

impl Default for TaskTable {
    fn default() -> Self {
        Self {
            tasks: BTreeMap::new(),
            zombies: BTreeSet::new(),
            members: HashMap::new(),
            next_look: ZOMBIE_CHECK_AFTER,
            limit_look_after: Instant::now(),
        }
    }
}

/// Zombies are dropped from the table once their parent has collected
/// them; looked for on demand, and whenever at least this many have piled
/// up (and twice as many as the last look left).
const ZOMBIE_CHECK_AFTER: usize = 64;

impl TaskTable {
    /// Every task, ordered by host thread id.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn get(&self, host_tid: i32) -> Option<&Task> {
        self.tasks.get(&host_tid)
    }

    /// The host tids of process `host_pid`'s tasks the table knows.
    pub fn members_of(&self, host_pid: i32) -> Vec<i32> {
        self.members
            .get(&host_pid)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Fills in the ids inside the instance of the tasks the monitor has
    /// not needed them for yet (read from /proc while they live).
    pub fn learn_instance_ids(&mut self) {
        let mut gone = Vec::new();
        for task in self.tasks.values_mut().filter(|t| t.pid < 0) {
            let known = identify(task.host_tid, task.born_after, task.creator);
            task.pid = known.pid;
            task.tid = known.tid;
            // A task /proc does not know is gone without a word to the
            // monitor: a thread replaced by an exec in its group.
            if task.pid < 0 && task.state != TaskState::Zombie {
                gone.push(task.host_tid);
            }
        }
        for tid in gone {
            self.remove(tid);
        }
    }

    /// The host pid of the live process with this pid inside the instance.
    pub fn host_pid_of(&mut self, instance_pid: i64) -> Option<i32> {
        self.learn_instance_ids();
        self.tasks
            .values()
            .find(|t| t.pid == instance_pid && t.host_tid == t.host_pid && t.state != TaskState::Zombie)
            .map(|t| t.host_pid)
    }

    /// Drops zombies whose parent has collected them.
    pub fn forget_collected(&mut self) {
        let started = Instant::now();
        let collected: Vec<i32> = self.zombies.iter().copied().filter(|t| !is_zombie_still(*t)).collect();
        for tid in collected {
            self.remove(tid);
        }
        self.next_look = ZOMBIE_CHECK_AFTER.max(2 * self.zombies.len());
        // A guest spinning on fork at its limit asks again and again: the
        // look may take at most a tenth of the supervisor's time.
        self.limit_look_after = Instant::now() + (started.elapsed() * 10).max(Duration::from_millis(1));
    }

    /// The tasks the task limit counts (zombies included, as the kernel
    /// counts them), after a look for collected zombies when one may be
    /// counted still and the last look is not too recent.
    pub fn count_for_limit(&mut self) -> usize {
        if !self.zombies.is_empty() && Instant::now() >= self.limit_look_after {
            self.forget_collected();
        }
        self.tasks.len()
    }

    fn insert(&mut self, task: Task) {
        let (tid, pid, zombie) = (task.host_tid, task.host_pid, task.state == TaskState::Zombie);
        if let Some(old) = self.tasks.insert(tid, task) {
            self.unindex(&old);
        }
        self.members.entry(pid).or_default().insert(tid);
        if zombie {
            self.zombies.insert(tid);
        }
    }

    fn remove(&mut self, host_tid: i32) -> Option<Task> {
        let task = self.tasks.remove(&host_tid)?;
        self.unindex(&task);
        Some(task)
    }

    fn unindex(&mut self, task: &Task) {
        self.zombies.remove(&task.host_tid);
        if let Some(members) = self.members.get_mut(&task.host_pid) {
            members.remove(&task.host_tid);
            if members.is_empty() {
                self.members.remove(&task.host_pid);
            }
        }
    }

    fn set_state(&mut self, host_tid: i32, state: TaskState) {
        if let Some(t) = self.tasks.get_mut(&host_tid) {
            t.state = state;
            if state == TaskState::Zombie {
                self.zombies.insert(host_tid);
            } else {
                self.zombies.remove(&host_tid);
            }
        }
    }

    /// Drops every task of process `host_pid` but `keep`.
    fn forget_group_but(&mut self, host_pid: i32, keep: i32) {
        for tid in self.members_of(host_pid) {
            if tid != keep {
                self.remove(tid);
            }
        }
    }

    /// A task ended: a thread leaves the table, a process becomes a zombie
    /// until its parent collects it (its threads are gone with it).
    fn ended(&mut self, host_tid: i32) -> Option<Task> {
        let task = self.tasks.get(&host_tid)?.clone();
        if task.host_tid == task.host_pid {
            self.forget_group_but(task.host_pid, task.host_tid);
            self.set_state(host_tid, TaskState::Zombie);
            if self.zombies.len() >= self.next_look {
                self.forget_collected();
            }
        } else {
            self.remove(host_tid);
        }
        Some(task)
    }
}

/// Whether host task `tid` still exists as a zombie.
fn is_zombie_still(tid: i32) -> bool {
    stat_of(tid).is_some_and(|(state, _)| state == 'Z')
}

/// What the monitor thread shares with the rest of the supervisor.
#[derive(Debug, Default)]
struct Shared {
    table: Arc<Mutex<TaskTable>>,
    /// The monitor thread's id (0 until it runs), for the doorbell.
    thread_id: std::sync::atomic::AtomicI32,
    /// Under guest debuggers, a pipe (read end, write end) the monitor
    /// writes to when it lends a first task: the supervisor's main loop,
    /// which rings it for looks while anything is lent, may be waiting
    /// without a timeout.
    lending_wake: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    init_end: Mutex<Option<WaitStatus>>,
    init_ended: Condvar,
}

/// The monitor, seen from the supervisor's other threads.
#[derive(Debug)]
pub(crate) struct Monitor {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The monitor thread's word on seizing init, until heard; then what
    /// it said (as an errno, 0 for success).
    attached: Mutex<Attachment>,
}

#[derive(Debug)]
enum Attachment {
    Pending(std::sync::mpsc::Receiver<std::io::Result<()>>),
    Known(i32),
}

/// Who hears from the monitor: the trace (lifecycle events, timed from the
/// instance's creation) and the scheduler (ends of processes, which calls
/// parked in `wait4` wait for).
pub(crate) struct Observers {
    pub(crate) trace: Option<Arc<Mutex<Trace>>>,
    pub(crate) created_at: Instant,
    pub(crate) parking: Arc<Parking>,
    /// When tracing: the results of continued calls, read at stops the
    /// serving threads ask for.
    pub(crate) outcomes: Option<Arc<crate::outcome::Outcomes>>,
    /// When learning: which program each task runs, and the files exec
    /// ran (a script's interpreter among them).
    pub(crate) learning: Option<Arc<crate::learning::Learning>>,
    /// Programs pinned by sha256: each exec is checked at its stop, and a
    /// program whose contents are not the pinned ones is killed there.
    pub(crate) pinned: Option<crate::pinned::PinnedPrograms>,
    /// Guest debuggers allowed (the policy's `allows_guest_debuggers`):
    /// the ptrace attach family stops for the monitor, which lends tasks to
    /// guest tracers (see [`Lending`]).
    pub(crate) guest_debuggers: bool,
    /// init becomes the program and its first child is the exec starter,
    /// which is never lent.
    pub(crate) program_is_init: bool,
}

impl Monitor {
    /// Starts following the instance whose init is `init` (host pid): the
    /// thread seizes init, then confines itself (with `confine`). Returns at
    /// once; [`Monitor::attached`] says whether the seizing worked.
    pub(crate) fn start(
        init: i32,
        observers: Observers,
        confine: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let lending_wake = if observers.guest_debuggers {
            let (read, write) = xvisor_sys::event::pipe()?;
            xvisor_sys::event::set_nonblocking(read.as_fd(), true)?;
            xvisor_sys::event::set_nonblocking(write.as_fd(), true)?;
            Some((read, write))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            lending_wake,
            ..Shared::default()
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("xvisor-monitor".into())
            .spawn(move || {
                // Exec events only for the trace: each is one more stop of
                // the exec'ing task. Without them, a thread that execs in
                // place of its group's leader leaves its former id in the
                // table until the next look (`learn_instance_ids`).
                let exec = if observers.trace.is_some() || observers.learning.is_some() || observers.pinned.is_some() {
                    options::TRACE_EXEC
                } else {
                    0
                };
                let debuggers = if observers.guest_debuggers {
                    options::TRACE_SECCOMP | options::TRACE_SYSGOOD
                } else {
                    0
                };
                let options = options::TRACE_FORK
                    | options::TRACE_VFORK
                    | options::TRACE_CLONE
                    | exec
                    | debuggers
                    | options::EXIT_KILL;
                let seized = ptrace::seize(init, options);
                let ok = seized.is_ok();
                let _ = ready_tx.send(seized);
                if ok {
                    // Should confinement fail, following goes on (stopping
                    // would leave the guest unwatched); the main thread's
                    // own confinement reports the failure.
                    let _ = confine();
                    Follower {
                        shared: for_thread,
                        observers,
                        init,
                        options,
                        lending: std::cell::RefCell::new(Lending::default()),
                    }
                    .run();
                }
            })?;
        let monitor = Self {
            shared,
            thread: Some(thread),
            attached: Mutex::new(Attachment::Pending(ready_rx)),
        };
        monitor.table().insert(identify(init, Duration::ZERO, None));
        Ok(monitor)
    }

    /// Whether the monitor has seized init (waiting for its word once).
    pub(crate) fn attached(&self) -> std::io::Result<()> {
        let mut attached = lock(&self.attached);
        let code = match &*attached {
            Attachment::Known(code) => *code,
            Attachment::Pending(ready) => match ready.recv() {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => e.raw_os_error().unwrap_or(xvisor_sys::errno::EIO),
                Err(_) => xvisor_sys::errno::ESRCH,
            },
        };
        *attached = Attachment::Known(code);
        match code {
            0 => Ok(()),
            code => Err(std::io::Error::from_raw_os_error(code)),
        }
    }

    /// The task table, locked.
    pub(crate) fn table(&self) -> MutexGuard<'_, TaskTable> {
        lock(&self.shared.table)
    }

    /// The task table, for other threads to read.
    pub(crate) fn shared_table(&self) -> Arc<Mutex<TaskTable>> {
        Arc::clone(&self.shared.table)
    }

    /// init's end, once the monitor has collected it; waits up to `patience`.
    pub(crate) fn init_end(&self, patience: Duration) -> Option<WaitStatus> {
        let guard = lock(&self.shared.init_end);
        let (guard, _) = self
            .shared
            .init_ended
            .wait_timeout_while(guard, patience, |end| end.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard
    }

    /// Readable once the monitor has lent a task (see `Shared`); the main
    /// loop watches it and empties it with [`Monitor::heard_lending`].
    pub(crate) fn lending_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.shared.lending_wake.as_ref().map(|(read, _)| read.as_fd())
    }

    pub(crate) fn heard_lending(&self) {
        if let Some((read, _)) = &self.shared.lending_wake {
            let mut buf = [0u8; 64];
            while matches!(xvisor_sys::event::read(read.as_fd(), &mut buf), Ok(n) if n > 0) {}
        }
    }

    /// While a guest tracer holds a task, asks the monitor thread for a
    /// look (`Lending`): called by the supervisor's main loop at most every
    /// [`LOOK_EVERY`].
    pub(crate) fn ring_for_look(&self) {
        let tid = self.shared.thread_id.load(std::sync::atomic::Ordering::Acquire);
        if tid > 0 {
            let _ = xvisor_sys::signal::ring(tid, xvisor_sys::signal::doorbell());
        }
    }

    /// Whether the monitor thread has ended (no traced task is left).
    pub(crate) fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the monitor thread: it ends when every task is gone.
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the supervisor's main loop asks for a look while a task is
/// lent.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Guest debuggers (docs/design/guest-debuggers.md): the tasks the monitor
/// let go to a guest tracer, and the attach calls in progress.
///
/// A task already traced cannot be attached by anyone else, so the only
/// tasks a guest can trace are those the monitor lets go here: the caller
/// of `PTRACE_TRACEME`, or the target of an `ATTACH`/`SEIZE` taken from a
/// ptrace stop. Tasks a lent task creates (and a lent task its tracer lets
/// go) are untraced until a look finds them: every thread of the
/// instance's tree is listed, and those nobody traces are seized again.
#[derive(Debug, Default)]
struct Lending {
    /// Host tid → host tid of its tracer (TracerPid).
    lent: HashMap<i32, i32>,
    /// Attach calls held at their seccomp stop until the target stops:
    /// target host tid → caller host tid.
    pending: HashMap<i32, i32>,
    /// Callers resumed to their call's exit, where a look follows.
    /// Caller host tid → the target the monitor let go for its attach.
    at_exit: BTreeMap<i32, Option<i32>>,
    /// init's first child, once born: the guest program, or where init
    /// becomes the program, the exec starter.
    first_child: Option<i32>,
    /// When a look not asked for by an attach may run again: looks take
    /// at most a tenth of the monitor's time.
    next_look: Option<Instant>,
    /// When each task the monitor let go itself was let go: between the
    /// detach and the call that takes it (its own `TRACEME`, the caller's
    /// attach) it is untraced, and a look must not seize it back then.
    let_go_at: HashMap<i32, Instant>,
}

/// How long a task the monitor let go may stay untraced before a look
/// takes it back, unless the call that takes it is known to be over (an
/// attach's exit stop; a tracer seen by a look): the call runs as soon as
/// the task is scheduled after the detach — a `TRACEME` caller's own
/// call, whose end the monitor does not see — which on a loaded machine
/// can take far longer than the microseconds it takes when idle.
const LET_GO_GRACE: Duration = Duration::from_secs(2);

/// The monitor thread's side.
struct Follower {
    shared: Arc<Shared>,
    observers: Observers,
    init: i32,
    /// The options every task is seized with (a look's seizes too).
    options: u32,
    lending: std::cell::RefCell<Lending>,
}

impl Follower {
    fn run(self) {
        // Ends when no traced task is left (init and everything under it
        // are gone), or on an error the kernel should never give; with
        // PTRACE_O_EXITKILL, the instance does not outlive the monitor.
        let me = xvisor_sys::signal::current_thread_id();
        self.shared.thread_id.store(me, std::sync::atomic::Ordering::Release);
        if let Some(outcomes) = &self.observers.outcomes {
            outcomes.monitor_is(me);
        }
        loop {
            match ptrace::wait_traced() {
                Ok(Waited::Task(tid, status)) => match Report::from_raw(status) {
                    Some(Report::Ended(end)) => self.ended(tid, end),
                    Some(Report::Stopped { event, signal }) => {
                        if self.lending.borrow().pending.contains_key(&tid) {
                            self.target_stopped(tid, event, signal);
                        } else {
                            self.stopped(tid, event, signal);
                        }
                    }
                    None => {}
                },
                // Rung by a serving thread or, while a task is lent, by the
                // main loop for a look (the doorbell).
                Ok(Waited::Interrupted) => self.look_if_due(),
                Ok(Waited::None) | Err(_) => break,
            }
            if let Some(outcomes) = &self.observers.outcomes {
                outcomes.arm_requested();
            }
        }
    }

    fn now(&self) -> Duration {
        self.observers.created_at.elapsed()
    }

    fn record(&self, task: &Task, event: TaskEvent) {
        if let Some(trace) = &self.observers.trace {
            let record = TaskRecord {
                time_s: self.now().as_secs_f64(),
                pid: task.pid,
                tid: task.tid,
                event,
            };
            let _ = lock(trace).write_task(&record);
        }
    }

    fn ended(&self, tid: i32, end: WaitStatus) {
        if self.observers.guest_debuggers {
            self.lending_ended(tid);
        }
        if let Some(outcomes) = &self.observers.outcomes {
            outcomes.ended(tid);
        }
        if let Some(learning) = &self.observers.learning {
            learning.ended(tid);
        }
        let task = lock(&self.shared.table).ended(tid);
        if let Some(task) = &task {
            if task.host_tid == task.host_pid {
                // Its parent may be parked in wait4: say whose child ended
                // (the zombie still names its parent).
                self.observers.parking.child_ended(parent_of(tid));
            }
        }
        if let Some(task) = task {
            let thread = task.host_tid != task.host_pid;
            let event = match end {
                WaitStatus::Exited(code) => TaskEvent::Exited { code, thread },
                WaitStatus::Signaled { signal, .. } => TaskEvent::Killed { signal, thread },
            };
            self.record(&task, event);
        }
        if tid == self.init {
            // init's end is the instance's: nobody else will collect it.
            lock(&self.shared.table).remove(tid);
            *lock(&self.shared.init_end) = Some(end);
            self.shared.init_ended.notify_all();
        }
    }

    fn stopped(&self, tid: i32, event: i32, signal: i32) {
        match event {
            event::FORK | event::VFORK | event::CLONE => {
                if let Some(outcomes) = &self.observers.outcomes {
                    outcomes.call_over(tid, false);
                }
                if let Ok(child) = ptrace::event_message(tid).map(|m| i32::try_from(m).unwrap_or(-1)) {
                    self.born(tid, child, event == event::CLONE);
                }
                let _ = ptrace::resume(tid, 0);
            }
            event::EXEC => {
                if let Some(outcomes) = &self.observers.outcomes {
                    outcomes.call_over(tid, true);
                }
                // Before the new program's first instruction: a pinned
                // program whose contents differ never runs.
                if let Some(pinned) = &self.observers.pinned {
                    if let crate::pinned::Verdict::Refused(line) = pinned.check(tid) {
                        let _ = xvisor_sys::process::kill(tid, signal::SIGKILL);
                        if let Some(line) = line {
                            eprintln!("{line}");
                        }
                    }
                }
                self.exec(tid);
                let _ = ptrace::resume(tid, 0);
            }
            event::STOP => {
                if is_stop_signal(signal) {
                    // A group stop: stay stopped, but hear SIGCONT.
                    lock(&self.shared.table).set_state(tid, TaskState::Stopped);
                    let _ = ptrace::listen(tid);
                } else if self.observers.outcomes.as_ref().is_some_and(|o| o.stopped(tid)) {
                    // Stopped after a continued call, for the trace.
                    let _ = ptrace::resume(tid, 0);
                } else {
                    // A new task's first stop, the end of a group stop, or
                    // a watch's stop the serving thread stopped waiting for.
                    self.known(tid);
                    lock(&self.shared.table).set_state(tid, TaskState::Alive);
                    let _ = ptrace::resume(tid, 0);
                }
            }
            event::SECCOMP => self.seccomp_stop(tid),
            0 if signal == ptrace::SYSCALL_STOP => self.call_exit(tid),
            0 => {
                // A signal on its way to the task: deliver it as sent. A
                // trapped call it interrupted before the supervisor had it
                // restarts after the handler, where natively the call could
                // not have been interrupted at all.
                let _ = ptrace::restart_interrupted_call(tid, xvisor_trap::table::never_interrupted);
                let _ = ptrace::resume(tid, signal);
            }
            _ => {
                let _ = ptrace::resume(tid, 0);
            }
        }
    }

    /// Makes sure `tid` is in the table (a new task may report its first
    /// stop before its creator reports the birth).
    fn known(&self, tid: i32) -> Task {
        if let Some(task) = lock(&self.shared.table).get(tid) {
            return task.clone();
        }
        // A new task whose creator has not reported it yet: which thread
        // group it joins is settled then (see `born`).
        let task = self.describe(tid, tid, None);
        lock(&self.shared.table).insert(task.clone());
        task
    }

    /// A task as the table keeps it. Its ids inside the instance are read
    /// from /proc now only when the trace needs them at once; `xvisor ps`
    /// reads them when asked (every /proc read here delays the task the
    /// kernel stopped for the monitor).
    fn describe(&self, host_tid: i32, host_pid: i32, creator: Option<i32>) -> Task {
        if self.observers.trace.is_some() {
            identify(host_tid, self.now(), creator)
        } else {
            Task {
                host_tid,
                host_pid,
                tid: -1,
                pid: -1,
                creator,
                born_after: self.now(),
                state: TaskState::Alive,
            }
        }
    }

    fn born(&self, creator_tid: i32, child: i32, clone: bool) {
        if child <= 0 {
            return;
        }
        let creator = self.known(creator_tid);
        if !clone && creator_tid == self.init {
            let mut lending = self.lending.borrow_mut();
            if lending.first_child.is_none() {
                lending.first_child = Some(child);
            }
        }
        let mut task = self.known(child);
        // fork and vfork make processes; clone makes a thread when the
        // child is one of the creator's thread group's tasks.
        let thread = clone && std::path::Path::new(&format!("/proc/{}/task/{child}", creator.host_pid)).exists();
        task.host_pid = if thread { creator.host_pid } else { child };
        if task.pid < 0 && self.observers.trace.is_some() {
            task = identify(child, task.born_after, None);
        }
        task.creator = Some(creator.host_pid);
        lock(&self.shared.table).insert(task.clone());
        if let Some(learning) = &self.observers.learning {
            learning.spawned(creator_tid, child);
        }
        self.record(
            &creator,
            TaskEvent::Spawn {
                child: if thread { task.tid } else { task.pid },
                thread,
            },
        );
    }

    fn exec(&self, tid: i32) {
        // The exec'ing thread now has the thread group's id; every other
        // thread of the group is gone.
        let former = ptrace::event_message(tid).ok().and_then(|m| i32::try_from(m).ok());
        let task = {
            let mut table = lock(&self.shared.table);
            let born = former
                .and_then(|f| table.get(f).cloned())
                .or_else(|| table.get(tid).cloned());
            let group = born.as_ref().map_or(tid, |t| t.host_pid);
            table.forget_group_but(group, tid);
            let mut task = self.describe(tid, tid, born.as_ref().and_then(|b| b.creator));
            if let Some(b) = &born {
                task.born_after = b.born_after;
            }
            table.insert(task.clone());
            task
        };
        if let Some(learning) = &self.observers.learning {
            learning.exec_done(former.unwrap_or(tid), tid);
        }
        if self.observers.trace.is_some() {
            let path = std::fs::read_link(format!("/proc/{tid}/exe"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let argv = command_line(tid);
            self.record(&task, TaskEvent::Exec { path, argv });
        }
    }
}

/// `ptrace` requests of the attach family, as register 0 holds them.
const PTRACE_TRACEME: u64 = 0;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_DETACH: u64 = 17;
const PTRACE_SEIZE: u64 = 0x4206;

/// Guest debuggers: the monitor's side of [`Lending`].
impl Follower {
    /// A seccomp stop: a guest task calls the ptrace attach family (the
    /// only calls the instance's filter gives `SECCOMP_RET_TRACE`). The
    /// monitor lets the task the call needs go, or nothing, and resumes
    /// the caller: the kernel answers the call, after its own checks.
    fn seccomp_stop(&self, tid: i32) {
        let call = ptrace::seccomp_call(tid).ok();
        let attach_family = call.is_some_and(|c| {
            c.number == i64::from(xvisor_trap::table::PTRACE)
                && [PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SEIZE].contains(&c.arg0)
        });
        let Some(call) = call.filter(|_| attach_family && self.observers.guest_debuggers) else {
            // A filter of the guest's own asked for a tracer: Linux's
            // answer where no tracer asked for seccomp stops.
            let _ = ptrace::skip_call(tid);
            let _ = ptrace::resume(tid, 0);
            return;
        };
        match call.arg0 {
            PTRACE_TRACEME if self.may_lend(tid) => {
                // The caller is the tracee: let go from this stop, it never
                // runs untraced in user space before its own call. Should
                // the call fail, a look takes it back.
                let tracer = parent_of(tid).unwrap_or(0);
                self.lend(tid, tracer, 0);
            }
            PTRACE_ATTACH | PTRACE_SEIZE => match self.lendable(tid, call.arg1) {
                Some(target) if ptrace::interrupt(target).is_ok() => {
                    // Held here until the target's stop, where it is let go.
                    self.lending.borrow_mut().pending.insert(target, tid);
                }
                _ => self.hold_to_exit(tid),
            },
            // DETACH, or a TRACEME of init or the starter (the kernel
            // answers EPERM: they stay the monitor's).
            _ => self.hold_to_exit(tid),
        }
    }

    /// Whether task `tid` may be lent at all. Never init, nor the exec
    /// starter, nor a process `xvisor exec` started (a child of init other
    /// than the guest program, or of the starter): the supervisor signals
    /// those by host pid, which is safe only while the monitor traces them
    /// (their pid cannot be reused before the monitor has collected their
    /// end; a guest tracer's tracee is reaped without the monitor).
    fn may_lend(&self, tid: i32) -> bool {
        let (group, creator) = {
            let table = lock(&self.shared.table);
            let group = table.get(tid).map_or(tid, |t| t.host_pid);
            (group, table.get(group).and_then(|t| t.creator))
        };
        let first_child = self.lending.borrow().first_child;
        let starter = if self.observers.program_is_init {
            first_child
        } else {
            None
        };
        let exec_started = if self.observers.program_is_init {
            starter.is_some() && creator == starter
        } else {
            creator == Some(self.init) && Some(group) != first_child
        };
        group != self.init && Some(group) != starter && !exec_started
    }

    /// The host tid of the task `pid` names in `caller`'s pid namespace, if
    /// the monitor may let it go ([`Follower::may_lend`]), it is not in the
    /// caller's thread group (the kernel refuses that anyway) and no other
    /// caller wants it already.
    fn lendable(&self, caller: i32, pid: u64) -> Option<i32> {
        let pid = i64::try_from(pid)
            .ok()
            .filter(|p| (1..i64::from(i32::MAX)).contains(p))?;
        let namespace = crate::procfs::pid_namespace_of(caller)?;
        let target = {
            let mut table = lock(&self.shared.table);
            table.learn_instance_ids();
            let found = table
                .tasks()
                .find(|t| t.tid == pid && t.state != TaskState::Zombie)
                .cloned();
            found
        }?;
        let caller_group = lock(&self.shared.table).get(caller).map_or(caller, |t| t.host_pid);
        let busy = {
            let lending = self.lending.borrow();
            lending.lent.contains_key(&target.host_tid) || lending.pending.contains_key(&target.host_tid)
        };
        let refused = busy || target.host_pid == caller_group || !self.may_lend(target.host_tid);
        (!refused && crate::procfs::pid_namespace_of(target.host_tid).as_ref() == Some(&namespace))
            .then_some(target.host_tid)
    }

    /// Resumes `tid` to its call's exit, where a look follows.
    fn hold_to_exit(&self, tid: i32) {
        if ptrace::resume_to_call_exit(tid).is_ok() {
            self.lending.borrow_mut().at_exit.insert(tid, None);
        } else {
            let _ = ptrace::resume(tid, 0);
        }
    }

    /// Lets stopped task `tid` go to `tracer` (host tid, 0: unknown yet),
    /// delivering `signal`; then resumes the attach call that waited for
    /// it, if any — only now, so it finds the task untraced.
    fn lend(&self, tid: i32, tracer: i32, signal: i32) {
        let detached = ptrace::detach(tid, signal).is_ok();
        let caller = {
            let mut lending = self.lending.borrow_mut();
            if detached {
                lending.lent.insert(tid, tracer);
                lending.let_go_at.insert(tid, Instant::now());
            }
            lending.pending.remove(&tid)
        };
        if let Some(caller) = caller {
            self.hold_to_exit(caller);
            if let Some(target) = self.lending.borrow_mut().at_exit.get_mut(&caller) {
                *target = Some(tid);
            }
        }
        if detached && !self.observers.parking.lending() {
            self.observers.parking.set_lending(true);
            if let Some((_, write)) = &self.shared.lending_wake {
                let _ = xvisor_sys::event::write_all(write.as_fd(), &[1]);
            }
        }
    }

    /// A stop of a task an attach call waits for: whatever the stop, the
    /// task is let go from it, as the stop would have resumed it (a
    /// signal on its way is delivered; a task in a group stop stays
    /// stopped), and the caller goes on to its call.
    fn target_stopped(&self, tid: i32, event: i32, signal: i32) {
        let mut deliver = 0;
        match event {
            // Its own attach-family call or call exit: handled as ever;
            // the interrupt's stop comes after it.
            event::SECCOMP => return self.seccomp_stop(tid),
            0 if signal == ptrace::SYSCALL_STOP => return self.call_exit(tid),
            event::FORK | event::VFORK | event::CLONE => {
                if let Some(outcomes) = &self.observers.outcomes {
                    outcomes.call_over(tid, false);
                }
                if let Ok(child) = ptrace::event_message(tid).map(|m| i32::try_from(m).unwrap_or(-1)) {
                    self.born(tid, child, event == event::CLONE);
                }
            }
            event::EXEC => {
                if let Some(outcomes) = &self.observers.outcomes {
                    outcomes.call_over(tid, true);
                }
                self.exec(tid);
            }
            event::STOP => {
                if let Some(outcomes) = &self.observers.outcomes {
                    outcomes.stopped(tid);
                }
                self.known(tid);
                let state = if is_stop_signal(signal) {
                    TaskState::Stopped
                } else {
                    TaskState::Alive
                };
                lock(&self.shared.table).set_state(tid, state);
            }
            0 => {
                let _ = ptrace::restart_interrupted_call(tid, xvisor_trap::table::never_interrupted);
                deliver = signal;
            }
            _ => {}
        }
        let caller = self.lending.borrow().pending.get(&tid).copied().unwrap_or(0);
        self.lend(tid, caller, deliver);
    }

    /// The exit stop of an attach-family call the monitor held: its tracee
    /// (or the task it failed to take) is looked for, and the caller goes
    /// on.
    ///
    /// The look is skipped when one ran too recently (looks take at most a
    /// tenth of the monitor's time, whatever a guest's rate of attach
    /// calls): while a task is lent, the next comes within `LOOK_EVERY`.
    fn call_exit(&self, tid: i32) {
        let held = {
            let mut lending = self.lending.borrow_mut();
            let held = lending.at_exit.remove(&tid);
            // The attach is over: its target is the caller's now, or
            // nobody's, and may be taken back.
            if let Some(Some(target)) = held {
                lending.let_go_at.remove(&target);
            }
            held.is_some()
        };
        let lending = self.lending.borrow();
        let due = lending.at_exit.is_empty() && lending.next_look.is_none_or(|at| Instant::now() >= at);
        drop(lending);
        if held && due {
            self.look();
        }
        let _ = ptrace::resume(tid, 0);
    }

    /// A task the monitor traced ended: attach calls it made or waited for
    /// are over, and if it was a guest tracer, its tracees are untraced
    /// now: a look, when one is due (else within `LOOK_EVERY`).
    fn lending_ended(&self, tid: i32) {
        let caller = {
            let mut lending = self.lending.borrow_mut();
            lending.pending.retain(|_, caller| *caller != tid);
            lending.at_exit.remove(&tid);
            lending.pending.remove(&tid)
        };
        if let Some(caller) = caller {
            self.hold_to_exit(caller);
        }
        self.look_if_due();
    }

    /// A look when one is due while tasks are lent (rung every
    /// [`LOOK_EVERY`] by the main loop), at most a tenth of the time.
    fn look_if_due(&self) {
        let due = {
            let lending = self.lending.borrow();
            !lending.lent.is_empty() && lending.next_look.is_none_or(|at| Instant::now() >= at)
        };
        // Not while an attach-family call the monitor let run is under
        // way: its target is untraced until the call takes it (the look at
        // the call's exit stop comes instead).
        let due = due && self.lending.borrow().at_exit.is_empty();
        if due {
            self.look();
        }
    }

    /// Finds every thread of the instance's tree: those nobody traces (a
    /// lent task's new children, a task its tracer let go or left by
    /// ending) are seized again and enter the table; those a guest tracer
    /// holds are lent; lent tasks that ended leave. Walks again after it
    /// seized anything, until a walk seizes nothing: a seized task creates
    /// nothing unseen any more.
    fn look(&self) {
        let started = Instant::now();
        let me = xvisor_sys::signal::current_thread_id();
        for _ in 0..64 {
            let mut seized = false;
            for (tid, pid) in crate::procfs::threads_under(self.init) {
                let lent = self.lending.borrow().lent.contains_key(&tid);
                if !lent && lock(&self.shared.table).get(tid).is_some() {
                    continue;
                }
                match crate::procfs::tracer_of(tid) {
                    Some(0) if !self.in_grace(tid) && ptrace::seize(tid, self.options).is_ok() => {
                        seized = true;
                        self.lending.borrow_mut().lent.remove(&tid);
                        let known = lock(&self.shared.table).get(tid).is_some();
                        if known {
                            // Taken back: a group stop, if any, reports
                            // itself to the monitor again.
                            lock(&self.shared.table).set_state(tid, TaskState::Alive);
                        } else {
                            self.found(tid, pid);
                        }
                    }
                    Some(tracer) if tracer == me => {
                        self.lending.borrow_mut().lent.remove(&tid);
                        self.known(tid);
                    }
                    Some(tracer) => {
                        let mut lending = self.lending.borrow_mut();
                        lending.lent.insert(tid, tracer);
                        // Taken: its grace is over.
                        lending.let_go_at.remove(&tid);
                        drop(lending);
                        if lock(&self.shared.table).get(tid).is_none() {
                            self.found(tid, pid);
                        }
                    }
                    _ => {}
                }
            }
            if !seized {
                break;
            }
        }
        // Lent tasks that ended: a process stays a zombie until collected.
        let lent: Vec<i32> = self.lending.borrow().lent.keys().copied().collect();
        for tid in lent {
            match crate::procfs::stat_of(tid) {
                Some(('Z' | 'X', parent)) => {
                    let mut table = lock(&self.shared.table);
                    if table
                        .get(tid)
                        .is_some_and(|t| t.host_tid == t.host_pid && t.state != TaskState::Zombie)
                    {
                        table.ended(tid);
                        drop(table);
                        self.observers.parking.child_ended(Some(parent));
                    }
                }
                Some(_) => {}
                None => {
                    let mut lending = self.lending.borrow_mut();
                    lending.lent.remove(&tid);
                    lending.let_go_at.remove(&tid);
                    drop(lending);
                    lock(&self.shared.table).remove(tid);
                }
            }
        }
        let mut lending = self.lending.borrow_mut();
        lending.next_look = Some(Instant::now() + (started.elapsed() * 10).max(Duration::from_millis(1)));
        self.observers.parking.set_lending(!lending.lent.is_empty());
    }

    /// Whether `tid` was let go by the monitor too recently to be taken
    /// back (see [`LET_GO_GRACE`]).
    fn in_grace(&self, tid: i32) -> bool {
        let mut lending = self.lending.borrow_mut();
        match lending.let_go_at.get(&tid) {
            Some(at) if at.elapsed() < LET_GO_GRACE => true,
            Some(_) => {
                lending.let_go_at.remove(&tid);
                false
            }
            None => false,
        }
    }

    /// A task a look found that the table did not know: entered as born
    /// to its parent (recorded as a spawn when tracing).
    fn found(&self, tid: i32, pid: i32) {
        let creator = if tid == pid { parent_of(pid) } else { Some(pid) };
        let mut task = identify(tid, self.now(), creator);
        task.host_pid = pid;
        lock(&self.shared.table).insert(task.clone());
        let parent = creator.and_then(|c| lock(&self.shared.table).get(c).cloned());
        if let Some(parent) = parent {
            let thread = tid != pid;
            self.record(
                &parent,
                TaskEvent::Spawn {
                    child: if thread { task.tid } else { task.pid },
                    thread,
                },
            );
        }
    }
}

fn is_stop_signal(signal: i32) -> bool {
    [signal::SIGSTOP, signal::SIGTSTP, signal::SIGTTIN, signal::SIGTTOU].contains(&signal)
}

/// The host pid of a process's parent (`/proc/PID/stat`, field 4).
fn parent_of(host_pid: i32) -> Option<i32> {
    stat_of(host_pid).map(|(_, ppid)| ppid)
}

/// A task's identity from `/proc/TID/status`: thread group, and the ids
/// inside the instance (the last entries of NSpid and NStgid).
pub(crate) fn identify(host_tid: i32, born_after: Duration, creator: Option<i32>) -> Task {
    let Ids { host_pid, tid, pid } = ids_of(host_tid);
    Task {
        host_tid,
        host_pid,
        tid,
        pid,
        creator,
        born_after,
        state: TaskState::Alive,
    }
}

/// A process's arguments from `/proc/PID/cmdline`.
pub(crate) fn command_line(host_pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{host_pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_end_drops_its_threads_and_collected_zombies_are_looked_for_seldom() {
        // Host ids above any pid_max: /proc knows none, so a look finds
        // every zombie collected.
        let base = 1 << 30;
        let task = |host_tid, host_pid| Task {
            host_tid,
            host_pid,
            tid: -1,
            pid: -1,
            creator: None,
            born_after: Duration::ZERO,
            state: TaskState::Alive,
        };
        let mut table = TaskTable::default();
        table.insert(task(base, base));
        table.insert(task(base + 1, base));
        table.insert(task(base + 2, base + 2));
        table.ended(base);
        assert_eq!(table.members_of(base), vec![base]);
        assert_eq!(table.get(base).map(|t| t.state), Some(TaskState::Zombie));
        for i in 0..ZOMBIE_CHECK_AFTER as i32 - 2 {
            table.insert(task(base + 10 + i, base + 10 + i));
            table.ended(base + 10 + i);
        }
        assert_eq!(table.zombies.len(), ZOMBIE_CHECK_AFTER - 1, "looked too early");
        table.insert(task(base + 3, base + 3));
        table.ended(base + 3);
        assert!(table.zombies.is_empty());
        assert_eq!(table.tasks().map(|t| t.host_tid).collect::<Vec<_>>(), vec![base + 2]);
        assert_eq!(table.members.len(), 1);
    }

    #[test]
    fn the_monitor_filter_permits_exactly_the_requests_the_monitor_makes() {
        let mut made = xvisor_sys::ptrace::REQUESTS_MADE.to_vec();
        let mut permitted = xvisor_trap::host::MONITOR_PTRACE_REQUESTS.to_vec();
        made.sort_unstable();
        permitted.sort_unstable();
        assert_eq!(made, permitted);
    }
}
