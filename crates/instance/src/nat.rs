//! `--net nat`: the instance's own network namespace (as with `--net none`)
//! given a way out through slirp4netns, a user-mode network stack that runs
//! on the host side, as the caller, root or not.
//!
//! slirp4netns joins the user and network namespaces of the instance's init,
//! creates `tap0` there (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder
//! 10.0.2.3) and turns the guest's packets into the host's own sockets:
//! outbound connections leave from the host as the caller's. The host's
//! loopback, which the stack would show at 10.0.2.2, is kept out of reach
//! (`--disable-host-loopback`). Published ports (`-p`) are listeners of
//! slirp4netns on the host, added through its API socket before the guest
//! starts.
//!
//! It lives as long as the supervisor holds the write end of its exit pipe:
//! closed at the instance's end, or by the kernel when the supervisor is
//! killed.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xvisor_sys::event;

/// The package that holds the helper, for the message when it is missing.
const PACKAGE: &str = "slirp4netns";

/// How long slirp4netns may take to set up the instance's network.
const READY_PATIENCE: Duration = Duration::from_secs(10);

/// The address the guest's resolver is told to use: slirp4netns's DNS
/// forwarder, which asks the host's resolvers.
pub const NAME_SERVER: &str = "10.0.2.3";

/// Whether the network namespace xvisor runs in uses IPv6: then the
/// instance gets it too, and reaches the world over it as the host would.
fn host_has_ipv6() -> bool {
    xvisor_sys::fs::read_small("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|s| s.trim() == "0")
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A host port forwarded to a port of the instance (`-p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The host address listened on.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub guest_port: u16,
    pub proto: Proto,
}

/// The host address a published port listens on when `-p` names none:
/// the host's loopback, reachable by the host's own users only. (Docker's
/// 0.0.0.0 would show the guest's server to the whole network by default.)
pub const DEFAULT_HOST_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip,
            self.host_port,
            self.guest_port,
            self.proto.name()
        )
    }
}

impl std::str::FromStr for Publish {
    type Err = String;

    /// `[IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]`, IPv4 only.
    fn from_str(text: &str) -> Result<Self, String> {
        let (ports, proto) = match text.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Proto::Tcp),
            Some((ports, "udp")) => (ports, Proto::Udp),
            Some((_, other)) => return Err(format!("{other:?} is not a protocol: use tcp or udp")),
            None => (text, Proto::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (ip, host, guest) = match parts.as_slice() {
            [host, guest] => (DEFAULT_HOST_IP, *host, *guest),
            [ip, host, guest] => {
                let ip = ip
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
                (ip, *host, *guest)
            }
            _ => return Err("use [IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]".into()),
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{p:?} is not a port (1-65535)")),
        };
        Ok(Self {
            host_ip: ip,
            host_port: port(host)?,
            guest_port: port(guest)?,
            proto,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("--net nat needs {PACKAGE}, which is not installed (install the package {PACKAGE})")]
    Missing,
    #[error(
        "refusing to start {PACKAGE}: the instance's network namespace is not its own \
         (it is the supervisor's)"
    )]
    NotOwnNamespace,
    #[error("--net nat: cannot {action}: {error}")]
    Host { action: &'static str, error: io::Error },
    #[error("--net nat: {PACKAGE} did not set up the instance's network within {} s", READY_PATIENCE.as_secs())]
    Timeout,
    #[error("--net nat: {PACKAGE} failed: {0}")]
    Failed(String),
    #[error("-p {port}: the host port is in use or cannot be bound ({answer})")]
    Publish { port: Publish, answer: String },
}

fn host(action: &'static str) -> impl FnOnce(io::Error) -> NatError {
    move |error| NatError::Host { action, error }
}

/// slirp4netns, running for an instance.
#[derive(Debug)]
pub struct Nat {
    child: Child,
    /// Its exit pipe's write end: closed, slirp4netns ends.
    exit: Option<OwnedFd>,
    /// The forwarder of the published TCP ports, if any.
    forwarder: Option<crate::portfwd::Forwarder>,
}

impl Drop for Nat {
    fn drop(&mut self) {
        self.exit = None;
        let _ = self.child.wait();
    }
}

impl Nat {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The forwarder's pid, when TCP ports are published.
    pub fn forwarder_pid(&self) -> Option<u32> {
        self.forwarder.as_ref().map(crate::portfwd::Forwarder::pid)
    }
}

/// The program, found on PATH.
fn find_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(PACKAGE))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// A directory only the caller may enter, for the API socket: under
/// `$XDG_RUNTIME_DIR` when it is the caller's, else the temporary directory.
fn private_dir() -> Result<PathBuf, NatError> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.metadata().is_ok_and(|m| m.uid() == xvisor_sys::process::geteuid()))
        .unwrap_or_else(std::env::temp_dir);
    let mut n = 0u32;
    loop {
        let dir = base.join(format!("xvisor-nat-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(host("create a directory for slirp4netns's API socket")(e)),
        }
    }
}

/// Removes the private directory however `start` ends.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts slirp4netns for the instance whose init is `init_pid` (a child of
/// ours, not yet reaped, so the pid is still its), waits until the network
/// is up, and publishes `ports`. The host's loopback is reachable (as
/// 10.0.2.2) only with `host_loopback`. Refused unless init's network namespace
/// differs from this thread's: slirp4netns configures whichever namespace
/// it is given, the host's included.
// Long: slirp4netns from its confined start to the network being up and ports published.
pub fn start(init_pid: i32, ports: &[Publish], host_loopback: bool) -> Result<Nat, NatError> {
    let program = find_program().ok_or(NatError::Missing)?;
    // Handed over open, not by pid: the namespaces checked here are the
    // ones slirp4netns enters. (Rootless, it could not open init's
    // /proc/PID/ns/* itself: init is not dumpable.)
    let open = |kind: &str| {
        xvisor_sys::process::open_namespace(Path::new(&format!("/proc/{init_pid}/ns/{kind}")))
            .map(|(fd, _)| std::fs::File::from(fd))
            .map_err(host("open the instance's namespaces"))
    };
    let (net, user) = (open("net")?, open("user")?);
    let theirs = net.metadata().map_err(host("read a network namespace"))?.ino();
    let ours = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(host("read a network namespace"))?
        .ino();
    if ours == theirs {
        return Err(NatError::NotOwnNamespace);
    }
    // Published TCP ports are bound here, before anything starts: a busy
    // one stops the run in one line. The forwarder joins the same
    // namespaces as slirp4netns.
    let mut listeners = Vec::new();
    for port in ports.iter().filter(|p| p.proto == Proto::Tcp) {
        let listener = std::net::TcpListener::bind((port.host_ip, port.host_port)).map_err(|e| NatError::Publish {
            port: *port,
            answer: e.to_string(),
        })?;
        listeners.push((listener, port.guest_port));
    }
    let forwarded_into = if listeners.is_empty() {
        None
    } else {
        let clone = |fd: &std::fs::File| fd.try_clone().map(OwnedFd::from).map_err(host("open a namespace"));
        Some((clone(&user)?, clone(&net)?))
    };
    let dir = DirGuard(private_dir()?);
    let socket = dir.0.join("api.sock");
    let log_path = dir.0.join("log");
    let log = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&log_path)
        .map_err(host("create slirp4netns's log"))?;
    let (exit_read, exit_write) = event::pipe().map_err(host("create a pipe"))?;
    let (ready_read, ready_write) = event::pipe().map_err(host("create a pipe"))?;
    let mut command = Command::new(&program);
    command
        .args(["--configure", "--mtu=65520"])
        .args((!host_loopback).then_some("--disable-host-loopback"))
        // IPv6 where the host has it (fd00::100/64, gateway fd00::2).
        .args(host_has_ipv6().then_some("--enable-ipv6"))
        // Confined: its own mount namespace with only what it needs, and
        // root's capabilities dropped (needs privilege over a new mount
        // namespace: root only); a seccomp filter (anyone).
        .args((xvisor_sys::process::geteuid() == 0).then_some("--enable-sandbox"))
        .arg("--enable-seccomp")
        .args(["--exit-fd", "3", "--ready-fd", "4", "--api-socket"])
        .arg(&socket)
        .args([
            "--netns-type=path",
            "--userns-path=/proc/self/fd/6",
            "/proc/self/fd/5",
            "tap0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().map_err(host("create slirp4netns's log"))?);
    xvisor_sys::process::pass_descriptors(
        &mut command,
        vec![(exit_read, 3), (ready_write, 4), (net.into(), 5), (user.into(), 6)],
    )
    .map_err(host("pass descriptors to slirp4netns"))?;
    let child = command.spawn().map_err(host("start slirp4netns"))?;
    // Dropping the command closes our copies of its ends of the pipes: a
    // slirp4netns that ends early shows as end of file on `ready_read`.
    drop(command);
    let mut nat = Nat {
        child,
        exit: Some(exit_write),
        forwarder: None,
    };
    let failed = |nat: Nat| {
        drop(nat);
        let text = std::fs::read(&log_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        // Its last words: the cause is the line before "child failed".
        let mut lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let from = lines.len().saturating_sub(3);
        lines.drain(..from);
        let said = if lines.is_empty() {
            "it ended".to_string()
        } else {
            lines.join("; ")
        };
        let mode = std::fs::metadata("/dev/net/tun").map(|m| m.mode() & 0o777).unwrap_or(0);
        if text.contains("/dev/net/tun") && mode & 0o006 != 0o006 {
            return NatError::Failed(format!(
                "{said} (rootless, the instance's network needs /dev/net/tun usable by all: \
                 it is {mode:o} here, most distributions make it 666)"
            ));
        }
        NatError::Failed(said.chars().filter(|c| !c.is_control()).take(300).collect())
    };
    let deadline = Instant::now() + READY_PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Stuck before its main loop, it would not see the exit pipe.
            let mut nat = nat;
            let _ = nat.child.kill();
            drop(nat);
            return Err(NatError::Timeout);
        }
        let mut watch = [event::Watch::new(ready_read.as_fd(), event::ready::IN)];
        let n = event::poll(&mut watch, left.as_millis().min(i32::MAX as u128) as i32)
            .map_err(host("wait for slirp4netns"))?;
        if n == 0 {
            continue;
        }
        let mut byte = [0u8; 1];
        match event::read(ready_read.as_fd(), &mut byte) {
            Ok(1) if byte[0] == b'1' => break,
            Ok(_) | Err(_) => return Err(failed(nat)),
        }
    }
    for port in ports.iter().filter(|p| p.proto == Proto::Udp) {
        publish(&socket, port)?;
    }
    if let Some((user, net)) = forwarded_into {
        nat.forwarder = Some(crate::portfwd::start(user, net, listeners).map_err(host("start the port forwarder"))?);
    }
    // Nothing else is asked of the API: the socket goes now, so a killed
    // supervisor leaves no file behind.
    drop(dir);
    Ok(nat)
}

/// Asks slirp4netns to forward `port`.
fn publish(socket: &Path, port: &Publish) -> Result<(), NatError> {
    let mut stream = UnixStream::connect(socket).map_err(host("connect to slirp4netns's API socket"))?;
    let _ = stream.set_read_timeout(Some(READY_PATIENCE));
    let request = format!(
        "{{\"execute\": \"add_hostfwd\", \"arguments\": {{\"proto\": \"{}\", \"host_addr\": \"{}\", \
         \"host_port\": {}, \"guest_port\": {}}}}}",
        port.proto.name(),
        port.host_ip,
        port.host_port,
        port.guest_port
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .map_err(host("talk to slirp4netns's API socket"))?;
    let mut answer = String::new();
    (&mut stream)
        .take(64 << 10)
        .read_to_string(&mut answer)
        .map_err(host("read slirp4netns's answer"))?;
    if answer.contains("\"return\"") && !answer.contains("\"error\"") {
        return Ok(());
    }
    Err(NatError::Publish {
        port: *port,
        answer: format!(
            "{PACKAGE}: {}",
            answer
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p: Publish = "8080:80".parse().unwrap();
        assert_eq!(
            p,
            Publish {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 8080,
                guest_port: 80,
                proto: Proto::Tcp
            }
        );
        let p: Publish = "0.0.0.0:5353:53/udp".parse().unwrap();
        assert_eq!(p.host_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.to_string(), "0.0.0.0:5353->53/udp");
        for bad in [
            "80",
            "0:80",
            "8080:0",
            "8080:80/sctp",
            "x:1:2",
            "1:2:3:4",
            "65536:1",
            ":80",
            "::1:80:80",
        ] {
            assert!(bad.parse::<Publish>().is_err(), "{bad}");
        }
    }

    #[test]
    fn publish_never_panics_on_any_short_text() {
        // Every text of up to four characters from the parser's alphabet.
        let alphabet: Vec<char> = "0123456789:./tcpudx-".chars().collect();
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            for t in &longer {
                let _ = t.parse::<Publish>();
            }
            texts = longer;
        }
        for (a, b) in [(1u16, 65535u16), (65535, 1), (8080, 80)] {
            let p: Publish = format!("127.0.0.2:{a}:{b}/udp").parse().unwrap();
            assert_eq!((p.host_port, p.guest_port, p.proto), (a, b, Proto::Udp));
        }
    }
}
