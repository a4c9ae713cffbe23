//! Published TCP ports (`-p HOST:GUEST`) of `--net nat`, forwarded in the
//! kernel: a host connection and a connection to the guest's port made
//! inside the instance's network namespace, joined by `splice` through a
//! pipe each way, so no byte is copied through user space (slirp4netns's
//! own forwarding copies every byte through its TCP stack; it keeps the
//! UDP ports).
//!
//! The forwarder is xvisor's program executed as [`PROGRAM_NAME`]: a
//! process of its own, single-threaded, so that it can join the
//! instance's user namespace (rootless, that is what gives it the right to
//! its network namespace). It is outside the instance's pid namespace: no
//! guest process can name it. It holds the host listeners the supervisor
//! bound (a busy port is refused before the guest starts), connects to
//! the guest's address `10.0.2.100` (a server the guest binds to its own
//! loopback stays unpublished, as with Docker), and ends when the
//! supervisor closes its exit pipe, or the kernel does for a killed
//! supervisor.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};

use xvisor_sys::{event, process};

/// `argv[0]` of xvisor's program when it runs as a port forwarder.
pub const PROGRAM_NAME: &str = "xvisor-portfwd";

/// The guest's address on slirp4netns's network: where published ports lead.
pub const GUEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

/// Bytes a pipe is asked to hold per direction (fewer calls per byte than
/// the default 64 KiB; within the 1 MiB `fs.pipe-max-size` that binds an
/// unprivileged caller).
const PIPE_BYTES: usize = 1 << 20;

/// Connections served at once; more wait in the listener's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Turns of one connection's pumping before the others get theirs.
const TURNS: usize = 16;

/// Descriptor numbers in the forwarder.
const EXIT_FD: RawFd = 3;
const USER_NS_FD: RawFd = 4;
const NET_NS_FD: RawFd = 5;
const FIRST_LISTENER_FD: RawFd = 6;

/// A running forwarder.
#[derive(Debug)]
pub struct Forwarder {
    child: Child,
    exit: Option<OwnedFd>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.exit = None;
        let _ = self.child.wait();
    }
}

impl Forwarder {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts the forwarder for `listeners` (each with the guest port it leads
/// to) into the instance whose namespaces are `user_ns` and `net_ns`.
pub fn start(user_ns: OwnedFd, net_ns: OwnedFd, listeners: Vec<(TcpListener, u16)>) -> io::Result<Forwarder> {
    let (exit_read, exit_write) = event::pipe()?;
    let mut command = Command::new("/proc/self/exe");
    std::os::unix::process::CommandExt::arg0(&mut command, PROGRAM_NAME);
    command
        .args(listeners.iter().map(|(_, port)| port.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    let mut descriptors = vec![(exit_read, EXIT_FD), (user_ns, USER_NS_FD), (net_ns, NET_NS_FD)];
    for (n, (listener, _)) in listeners.into_iter().enumerate() {
        descriptors.push((OwnedFd::from(listener), FIRST_LISTENER_FD + n as RawFd));
    }
    process::pass_descriptors(&mut command, descriptors)?;
    let child = command.spawn()?;
    drop(command);
    Ok(Forwarder {
        child,
        exit: Some(exit_write),
    })
}

/// xvisor's program run as [`PROGRAM_NAME`]: the arguments after `argv[0]`
/// are the guest ports of the listeners at descriptors 6, 7, …
pub fn serve(args: &[OsString]) -> ! {
    let _ = process::set_process_name(PROGRAM_NAME);
    let ports: Option<Vec<u16>> = args.iter().map(|a| a.to_str()?.parse().ok()).collect();
    let Some(ports) = ports else { process::exit_now(2) };
    // The numbers `start` placed.
    let (Ok(user_ns), Ok(net_ns), Ok(exit)) = (
        event::borrow_open(USER_NS_FD),
        event::borrow_open(NET_NS_FD),
        event::borrow_open(EXIT_FD),
    ) else {
        process::exit_now(2)
    };
    // Root holds the right to the instance's network namespace already;
    // a rootless caller gets it by joining the user namespace it owns.
    if process::setns(net_ns, process::ns::NET).is_err()
        && (process::setns(user_ns, process::ns::USER).is_err() || process::setns(net_ns, process::ns::NET).is_err())
    {
        process::exit_now(1)
    }
    let mut listeners = Vec::with_capacity(ports.len());
    for (n, port) in ports.into_iter().enumerate() {
        let Ok(fd) = event::borrow_open(FIRST_LISTENER_FD + n as RawFd) else {
            process::exit_now(2)
        };
        let Ok(listener) = fd.try_clone_to_owned() else {
            process::exit_now(1)
        };
        let listener = TcpListener::from(listener);
        if listener.set_nonblocking(true).is_err() {
            process::exit_now(1)
        }
        listeners.push((listener, port));
    }
    run(exit, &listeners)
}

/// The forwarder's loop: accept, connect inside, pump, until the exit pipe
/// closes.
fn run(exit: BorrowedFd<'_>, listeners: &[(TcpListener, u16)]) -> ! {
    let mut connections: Vec<Connection> = Vec::new();
    loop {
        let mut watches = vec![event::Watch::new(exit, event::ready::IN)];
        if connections.len() < MAX_CONNECTIONS {
            watches.extend(
                listeners
                    .iter()
                    .map(|(l, _)| event::Watch::new(l.as_fd(), event::ready::IN)),
            );
        }
        let first_connection = watches.len();
        for c in &connections {
            let (host, guest) = c.interest();
            watches.push(event::Watch::new(c.host.as_fd(), host));
            watches.push(event::Watch::new(c.guest.as_fd(), guest));
        }
        if event::poll(&mut watches, -1).is_err() {
            continue;
        }
        if watches[0].ready != 0 {
            process::exit_now(0)
        }
        let woken: Vec<bool> = watches[first_connection..]
            .chunks(2)
            .map(|w| w[0].ready != 0 || w[1].ready != 0)
            .collect();
        let accepting = first_connection > 1;
        drop(watches);
        let mut n = 0;
        connections.retain_mut(|c| {
            let keep = !woken[n] || c.step();
            n += 1;
            keep
        });
        if accepting {
            for (listener, port) in listeners {
                while connections.len() < MAX_CONNECTIONS {
                    let Ok((host, _)) = listener.accept() else { break };
                    if let Some(c) = Connection::new(host, *port) {
                        connections.push(c);
                    }
                }
            }
        }
    }
}

/// One direction of a connection: `from`'s bytes through a pipe to `to`.
struct Flow {
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    /// Bytes in the pipe, and what it can hold.
    held: usize,
    room: usize,
    /// `from` is at its end.
    ended: bool,
    /// `to` was told the end (its writing half shut).
    told: bool,
}

impl Flow {
    fn new() -> io::Result<Self> {
        let (pipe_read, pipe_write) = event::pipe()?;
        let room = event::set_pipe_size(pipe_write.as_fd(), PIPE_BYTES).unwrap_or(1 << 16);
        Ok(Self {
            pipe_read,
            pipe_write,
            held: 0,
            room,
            ended: false,
            told: false,
        })
    }

    /// Moves what can move now, a bounded number of turns. Err: the
    /// connection is broken.
    fn pump(&mut self, from: &TcpStream, to: &TcpStream) -> io::Result<()> {
        for _ in 0..TURNS {
            let mut moved = false;
            if self.held > 0 {
                match event::splice(self.pipe_read.as_fd(), to.as_fd(), self.held) {
                    Ok(n) => {
                        self.held -= n;
                        moved |= n > 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if !self.ended && self.held < self.room {
                match event::splice(from.as_fd(), self.pipe_write.as_fd(), self.room - self.held) {
                    Ok(0) => {
                        self.ended = true;
                        moved = true;
                    }
                    Ok(n) => {
                        self.held += n;
                        moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if self.ended && self.held == 0 && !self.told {
                self.told = true;
                let _ = to.shutdown(std::net::Shutdown::Write);
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    /// What this flow waits for: readable `from`, writable `to`.
    fn interest(&self) -> (i16, i16) {
        let read = if !self.ended && self.held < self.room {
            event::ready::IN
        } else {
            0
        };
        let write = if self.held > 0 { event::ready::OUT } else { 0 };
        (read, write)
    }
}

/// A host connection and its connection to the guest.
struct Connection {
    host: TcpStream,
    guest: TcpStream,
    /// The connection to the guest is still being made.
    connecting: bool,
    to_guest: Flow,
    to_host: Flow,
}

impl Connection {
    fn new(host: TcpStream, port: u16) -> Option<Self> {
        host.set_nonblocking(true).ok()?;
        let guest = xvisor_sys::net::connect_tcp_nonblocking(SocketAddrV4::new(GUEST_ADDRESS, port)).ok()?;
        let guest = TcpStream::from(guest);
        let _ = host.set_nodelay(true);
        let _ = guest.set_nodelay(true);
        Some(Self {
            host,
            guest,
            connecting: true,
            to_guest: Flow::new().ok()?,
            to_host: Flow::new().ok()?,
        })
    }

    /// Poll interests of the host and guest sockets.
    fn interest(&self) -> (i16, i16) {
        if self.connecting {
            return (0, event::ready::OUT);
        }
        let (host_read, guest_write) = self.to_guest.interest();
        let (guest_read, host_write) = self.to_host.interest();
        (host_read | host_write, guest_read | guest_write)
    }

    /// Advances; false when the connection is over.
    fn step(&mut self) -> bool {
        if self.connecting {
            match self.guest.take_error() {
                Ok(None) if self.guest.peer_addr().is_ok() => self.connecting = false,
                // Not connected yet (a spurious wake-up).
                Ok(None) => return true,
                _ => return false,
            }
        }
        if self.to_guest.pump(&self.host, &self.guest).is_err() || self.to_host.pump(&self.guest, &self.host).is_err() {
            return false;
        }
        !(self.to_guest.told && self.to_host.told)
    }
}
