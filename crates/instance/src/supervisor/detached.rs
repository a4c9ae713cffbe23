//! A created instance waiting, in its own supervisor process, to be told to
//! start: the OCI runtime's `create` and `start` are separate invocations,
//! and between them the supervisor answers its control socket.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use xvisor_sys::event::{self, ready, Watch};
use xvisor_sys::signal;

use super::{host, Instance, InstanceError, StartWait};
use crate::lifecycle::State;
use crate::registry::Request;

impl Instance {
    /// Takes the terminal's master side (the instance was created with
    /// `tty`), so that it is handed to someone else (an OCI console socket)
    /// instead of being relayed by [`Instance::wait`].
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// The instance's cgroup directories on the host (empty without
    /// limits), for a caller that must see them gone.
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.cgroup.as_ref().map(|c| c.paths()).unwrap_or_default()
    }

    /// The cgroup directory that freezes the instance (OCI `pause`), when
    /// it has one.
    pub fn freezer_path(&self) -> Option<PathBuf> {
        self.cgroup
            .as_ref()
            .and_then(|c| c.freezer_dir())
            .map(|p| p.to_path_buf())
    }

    /// created → running on request: answers control-socket clients
    /// (`info`, `tasks`, `signal N`, `start`) until one asks to start, then
    /// starts the guest and tells that client how it went. A signal before
    /// the start ends the instance, as it would end a process that has not
    /// yet run its program.
    pub fn serve_until_started(&mut self) -> Result<StartWait, InstanceError> {
        loop {
            if self.state != State::Created {
                return Err(InstanceError::Setup("the instance is not waiting to start".into()));
            }
            let Some(claim) = &self.claim else {
                return Err(InstanceError::Setup("the instance has no control socket".into()));
            };
            let mut watches = vec![
                Watch::new(self.signals.as_fd(), ready::IN),
                Watch::new(claim.listener().as_fd(), ready::IN),
                Watch::new(self.control.as_fd(), ready::IN),
            ];
            if let Some(fd) = &self.init_pidfd {
                watches.push(Watch::new(fd.as_fd(), ready::IN));
            }
            event::poll(&mut watches, 1000).map_err(host("wait for the start"))?;
            let signals_ready = watches[0].ready != 0;
            let clients_ready = watches[1].ready != 0;
            let init_gone = watches[2].ready != 0 || watches.get(3).is_some_and(|w| w.ready != 0);
            drop(watches);
            if signals_ready {
                if let Some(info) = signal::read_signal(self.signals.as_fd()).map_err(host("read signals"))? {
                    self.teardown()?;
                    return Ok(StartWait::Killed(info.signal));
                }
            }
            if init_gone {
                self.teardown()?;
                return Ok(StartWait::Vanished);
            }
            if clients_ready {
                if let Some(ended) = self.answer_before_start()? {
                    return Ok(ended);
                }
            }
        }
    }

    /// One round of clients before the start; `Some` when the wait is over.
    fn answer_before_start(&mut self) -> Result<Option<StartWait>, InstanceError> {
        while let Some(client) = self.claim.as_ref().and_then(|c| c.accept()) {
            let request = super::read_request(&client);
            let line = request.line;
            match Request::decode(&line) {
                Some(Request::Start) => {
                    let mut result = self.start().map_err(|e| e.to_string());
                    if result.is_ok() {
                        // The program runs; the start has not returned yet.
                        let hooks = &self.spec.hooks;
                        let ran = self.in_runtime_namespaces(|| {
                            crate::hooks::run_all(&hooks.poststart, &hooks.state_running).map_err(|e| e.to_string())
                        });
                        if let Err(e) = ran.map_err(|e| e.to_string()).and_then(|r| r) {
                            // A failed poststart hook stops the container
                            // (runtime-spec, lifecycle step 9).
                            let _ = self.signal(signal::SIGKILL);
                            result = Err(e.to_string());
                        }
                    }
                    let reply = match result {
                        Ok(()) => "ok\n".to_string(),
                        Err(e) => format!("error: {}\n", e.replace('\n', " ")),
                    };
                    let _ = event::write_all(client.as_fd(), reply.as_bytes());
                    return Ok(Some(StartWait::Started));
                }
                Some(Request::Signal(n)) => {
                    let _ = event::write_all(client.as_fd(), b"ok\n");
                    drop(client);
                    self.teardown()?;
                    return Ok(Some(StartWait::Killed(n)));
                }
                Some(other) => {
                    let reply = self.reply_to(&other);
                    let _ = event::write_all(client.as_fd(), reply.as_bytes());
                }
                None => {
                    let _ = event::write_all(client.as_fd(), format!("error: unknown request {line:?}\n").as_bytes());
                }
            }
        }
        Ok(None)
    }
}
