//! `--net nat`: the instance's own network with a way out through
//! slirp4netns, and `-p`.
//!
//! Every run here happens inside network namespaces the test creates, never
//! in the machine's own: a "host" namespace where xvisor runs (with a
//! listener on its loopback that must stay out of reach) and an "outside"
//! one, joined to it by a veth pair, with the servers the instance reaches.

#[macro_use]
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The "outside" server's address, on the veth pair.
const OUTSIDE: &str = "192.168.77.2";
const HOST_SIDE: &str = "192.168.77.1";
/// The same two ends over IPv6 (the namespaces the test makes have it,
/// whether or not the machine's own has).
const OUTSIDE6: &str = "fd77::2";
const HOST_SIDE6: &str = "fd77::1";

fn require_slirp4netns() {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("slirp4netns").is_file()));
    assert!(
        found,
        "these tests need slirp4netns (install the package slirp4netns, or run scripts/setup)"
    );
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("run ip");
    assert!(status.success(), "{args:?} failed");
}

/// A "host" and an "outside" network namespace joined by a veth pair, the
/// servers started in them, and a name server the host namespace's
/// resolv.conf names; all removed on drop.
struct Lab {
    host: String,
    outside: String,
    servers: Vec<Child>,
    etc: PathBuf,
}

impl Lab {
    fn new() -> Self {
        require_root();
        require_slirp4netns();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let host = format!("xvtest-nat-{tag}-h");
        let outside = format!("xvtest-nat-{tag}-o");
        // `ip netns exec` shows /etc/netns/NAME/resolv.conf as the
        // namespace's /etc/resolv.conf: the host's resolver, for slirp4netns.
        let etc = PathBuf::from(format!("/etc/netns/{host}"));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), format!("nameserver {OUTSIDE}\n")).unwrap();
        sh(&["ip", "netns", "add", &host]);
        sh(&["ip", "netns", "add", &outside]);
        let (vh, vo) = (format!("xvn{tag}h"), format!("xvn{tag}o"));
        sh(&["ip", "link", "add", &vh, "type", "veth", "peer", "name", &vo]);
        sh(&["ip", "link", "set", &vh, "netns", &host]);
        sh(&["ip", "link", "set", &vo, "netns", &outside]);
        sh(&["ip", "-n", &host, "addr", "add", &format!("{HOST_SIDE}/24"), "dev", &vh]);
        sh(&[
            "ip",
            "-n",
            &outside,
            "addr",
            "add",
            &format!("{OUTSIDE}/24"),
            "dev",
            &vo,
        ]);
        for (ns, dev) in [(&host, &vh), (&outside, &vo)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&["ip", "-n", &host, "route", "add", "default", "via", OUTSIDE]);
        for (ns, dev, addr) in [(&host, &vh, HOST_SIDE6), (&outside, &vo, OUTSIDE6)] {
            sh(&[
                "ip",
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                dev,
                "nodad",
            ]);
        }
        sh(&["ip", "-n", &host, "-6", "route", "add", "default", "via", OUTSIDE6]);
        Self {
            host,
            outside,
            servers: Vec::new(),
            etc,
        }
    }

    /// Starts `script` (Python) in namespace `ns` and waits for its first
    /// line ("ready").
    fn server(&mut self, ns: &str, script: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "a test server did not start");
        self.servers.push(child);
    }

    /// A TCP server at `addr`:`port` that answers every connection with
    /// `reply`.
    fn tcp_server(&mut self, ns: &str, addr: &str, port: u16, reply: &str) {
        let ns = ns.to_string();
        self.server(
            &ns,
            &format!(
                r#"import socket
s = socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('{addr}', {port})); s.listen(16); print('ready', flush=True)
while True:
    c, _ = s.accept(); c.sendall(b'{reply}\n'); c.close()
"#
            ),
        );
    }

    /// `xvisor ARGS` as `caller`, inside the host namespace.
    fn xvisor(&self, caller: Caller, env_path: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.host]);
        if caller == Caller::Unprivileged {
            c.args([
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ]);
        }
        if let Some(path) = env_path {
            c.args(["env", &format!("PATH={path}")]);
        }
        c.arg(binary()).args(args).current_dir("/").stdin(Stdio::null());
        c
    }

    fn run(&self, caller: Caller, args: &[&str]) -> std::process::Output {
        self.xvisor(caller, None, args).output().unwrap()
    }

    /// Python `code` run in the host namespace (as root: the host's side).
    fn host_python(&self, code: &str) -> String {
        self.python_in(&self.host, code)
    }

    fn python_in(&self, ns: &str, code: &str) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", code])
            .output()
            .unwrap();
        assert!(o.status.success(), "host-side client failed: {}", stderr(&o));
        stdout(&o)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.host]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.outside]).status();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// The machine's own network namespace gained no interface from a test.
fn assert_host_untouched() {
    let o = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!stdout(&o).contains("tap0"), "tap0 in the test's own network namespace");
}

/// A DNS server answering every A query with 192.0.2.77.
const DNS_SERVER: &str = r#"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.168.77.2', 53)); print('ready', flush=True)
while True:
    q, a = s.recvfrom(512)
    i = 12
    while q[i]: i += q[i] + 1
    question = q[12:i + 5]
    r = q[:2] + b'\x81\x80' + b'\x00\x01\x00\x01\x00\x00\x00\x00' + question
    r += b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + bytes([192, 0, 2, 77])
    s.sendto(r, a)
"#;

/// A UDP server on the outside that echoes each datagram.
const UDP_ECHO: &str = r#"import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('192.168.77.2', 9100)); print('ready', flush=True)
while True:
    d, a = u.recvfrom(100); u.sendto(b'udp echo ' + d, a)
"#;

/// The guest's UDP client (a datagram may be lost: it asks again).
const UDP_CLIENT: &str = r#"import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)
for _ in range(10):
    try:
        u.sendto(b'hi', ('192.168.77.2', 9100)); print(u.recv(100).decode()); break
    except OSError:
        pass
"#;

both_callers!(outbound_works_host_loopback_does_not, |caller| {
    let mut lab = Lab::new();
    lab.tcp_server(&lab.outside.clone(), OUTSIDE, 9000, "outside");
    lab.tcp_server(&lab.host.clone(), "127.0.0.1", 9001, "host-loopback");
    lab.server(&lab.outside.clone(), DNS_SERVER);
    lab.server(&lab.outside.clone(), UDP_ECHO);
    let script = format!(
        "grep nameserver /etc/resolv.conf\n\
         exec 3<>/dev/tcp/{OUTSIDE}/9000 && cat <&3\n\
         exec 3<&-\n\
         for a in 10.0.2.2 127.0.0.1 {HOST_SIDE}; do\n\
           (exec 3<>/dev/tcp/$a/9001 && cat <&3) 2>/dev/null || echo $a:9001 unreachable\n\
         done\n\
         python3 -c 'import socket; print(\"resolved\", socket.gethostbyname(\"svc.xvtest.example\"))'\n\
         python3 -c \"$UDP_CLIENT\"\n"
    );
    let o = lab.run(
        caller,
        &[
            "run",
            "--net",
            "nat",
            "-e",
            &format!("UDP_CLIENT={UDP_CLIENT}"),
            "--",
            "bash",
            "-c",
            &script,
        ],
    );
    let out = ok(&o);
    assert!(out.contains("nameserver 10.0.2.3"), "{out}");
    assert!(out.contains("outside\n"), "outbound TCP failed: {out}");
    assert!(!out.contains("host-loopback"), "the host's loopback was reached: {out}");
    for a in ["10.0.2.2", "127.0.0.1", HOST_SIDE] {
        assert!(out.contains(&format!("{a}:9001 unreachable")), "{out}");
    }
    assert!(
        out.contains("resolved 192.0.2.77"),
        "DNS through 10.0.2.3 failed: {out}"
    );
    drop(lab);
    assert_host_untouched();
});

both_callers!(ipv6_reaches_out_where_the_host_has_it, |caller| {
    let mut lab = Lab::new();
    lab.tcp_server(&lab.outside.clone(), OUTSIDE6, 9000, "outside6");
    lab.tcp_server(&lab.host.clone(), "::1", 9001, "host-loopback6");
    // No waiting for the address: a program that starts first has it.
    let script = format!(
        "import socket\n\
         print(socket.create_connection(('{OUTSIDE6}', 9000), timeout=5).recv(100).decode().strip())\n\
         for a in ['fd00::2', '::1', '{HOST_SIDE6}']:\n\
         \x20   try:\n\
         \x20       print(socket.create_connection((a, 9001), timeout=2).recv(100).decode().strip())\n\
         \x20   except OSError:\n\
         \x20       print(a, 'unreachable')\n"
    );
    let o = lab.run(caller, &["run", "--net", "nat", "--", "python3", "-c", &script]);
    let out = ok(&o);
    assert!(out.contains("outside6\n"), "outbound IPv6 failed: {out}");
    assert!(
        !out.contains("host-loopback6"),
        "the host's loopback was reached over IPv6: {out}"
    );
    for a in ["fd00::2", "::1", HOST_SIDE6] {
        assert!(out.contains(&format!("{a} unreachable")), "{out}");
    }
});

both_callers!(ping_reaches_out_where_the_host_allows_it, |caller| {
    require_ping();
    let lab = Lab::new();
    // The host side's own choice: ICMP echo sockets for every group (as
    // hosts under systemd have). slirp4netns sends the guest's echoes
    // through such a socket.
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.host,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ping_group_range=0 2147483647",
    ]);
    let script = format!(
        "ping -c1 -W5 127.0.0.1 >/dev/null && echo loopback answered\n\
         ping -c1 -W5 10.0.2.2 >/dev/null && echo gateway answered\n\
         ping -c1 -W5 {OUTSIDE} >/dev/null && echo outside answered\n\
         python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)' 2>/dev/null || echo raw refused\n"
    );
    let o = lab.run(caller, &["run", "--net", "nat", "--", "sh", "-c", &script]);
    let out = ok(&o);
    for what in [
        "loopback answered",
        "gateway answered",
        "outside answered",
        "raw refused",
    ] {
        assert!(out.contains(what), "{what}: {out}");
    }
    // Without the host's permission the echo goes nowhere, and says so.
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.host,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ping_group_range=1 0",
    ]);
    let o = lab.run(
        caller,
        &[
            "run",
            "--net",
            "nat",
            "--",
            "sh",
            "-c",
            &format!("ping -c1 -W5 {OUTSIDE} || echo no answer"),
        ],
    );
    assert!(ok(&o).contains("no answer"), "{}", ok(&o));
});

fn require_ping() {
    assert!(
        std::path::Path::new("/usr/bin/ping").is_file(),
        "this test needs ping (install the package iputils-ping, or run scripts/setup)"
    );
}

/// Python: connects to ADDR:PORT until the guest's server answers
/// (slirp4netns accepts before the guest listens), over TCP or UDP.
fn client(addr: &str, port: u16, udp: bool) -> String {
    format!(
        r#"import socket, time
end = time.time() + 20
while True:
    try:
        if {udp}:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
            s.sendto(b'ping', ('{addr}', {port})); print(s.recv(100).decode()); break
        s = socket.create_connection(('{addr}', {port}), timeout=2)
        data = s.recv(100)
        if data: print(data.decode()); break
    except OSError:
        pass
    if time.time() > end: print('no answer'); break
    time.sleep(0.1)
"#,
        udp = if udp { "True" } else { "False" }
    )
}

both_callers!(published_ports_reach_the_guest, |caller| {
    let lab = Lab::new();
    let base = 20000 + (std::process::id() % 1000) as u16 * 10 + caller as u16 * 3;
    let (tcp, udp) = (base.to_string(), (base + 1).to_string());
    let guest = r#"import socket, threading
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 53))
t = socket.socket(); t.bind(('0.0.0.0', 80)); t.listen(4)
def udp():
    d, a = u.recvfrom(100); u.sendto(b'udp ' + d, a)
threading.Thread(target=udp).start()
c, a = t.accept(); c.sendall(b'tcp from ' + a[0].encode())
"#;
    let child = lab
        .xvisor(
            caller,
            None,
            &[
                "run",
                "--timeout",
                "30s",
                "--net",
                "nat",
                "-p",
                &format!("{tcp}:80"),
                "-p",
                &format!("0.0.0.0:{udp}:53/udp"),
                "--",
                "python3",
                "-c",
                guest,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // UDP from another machine: slirp4netns drops the guest's answers to
    // a client on the host's loopback (seen as 10.0.2.2, which
    // --disable-host-loopback closes).
    let got_udp = lab.python_in(&lab.outside, &client(HOST_SIDE, base + 1, true));
    let got_tcp = lab.host_python(&client("127.0.0.1", base, false));
    let o = child.wait_with_output().unwrap();
    ok(&o);
    // The forwarder connects from inside: the guest sees its own address.
    assert_eq!(got_tcp.trim(), "tcp from 10.0.2.100");
    assert_eq!(got_udp.trim(), "udp ping");
    // A port that is taken: refused before the program starts, in one
    // line naming it.
    let mut lab = lab;
    lab.tcp_server(&lab.host.clone(), "127.0.0.1", base + 2, "taken");
    let o = lab.run(
        caller,
        &[
            "run",
            "--net",
            "nat",
            "-p",
            &format!("{}:80", base + 2),
            "--",
            "echo",
            "ran",
        ],
    );
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(!stdout(&o).contains("ran"));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", base + 2)) && err.contains("in use"),
        "{err}"
    );
    drop(lab);
    assert_host_untouched();
});

/// slirp4netns processes serving the supervisor `pid` (their API socket's
/// path names it).
/// The port forwarders started by the supervisor `pid` (children named
/// xvisor-portfwd).
fn forwarders_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID ..."
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm.ends_with("(xvisor-portfwd") && ppid == Some(pid) {
            found.extend(entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        }
    }
    found
}

/// Running (a zombie waiting for its new parent's wait has ended).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn helpers_of(pid: u32) -> Vec<String> {
    processes_with(&format!("xvisor-nat-{pid}-"))
        .into_iter()
        .filter(|p| p.contains("slirp4netns"))
        .collect()
}

fn api_dirs_of(pid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let bases = [
        std::env::temp_dir(),
        PathBuf::from(format!("/run/user/{NOBODY}")),
        "/run/user/0".into(),
    ];
    for base in bases {
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("xvisor-nat-{pid}-"))
            {
                found.push(e.path());
            }
        }
    }
    found
}

both_callers!(nothing_is_left_after_exit_or_sigkill, |caller| {
    let lab = Lab::new();
    let port = 21000 + (std::process::id() % 1000) as u16 * 10 + caller as u16 * 3;
    let publish = format!("{port}:80");
    // Normal exit.
    let child = lab
        .xvisor(caller, None, &["run", "--net", "nat", "-p", &publish, "--", "true"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(helpers_of(pid).is_empty(), "slirp4netns outlived its instance");
    assert!(api_dirs_of(pid).is_empty(), "API socket left: {:?}", api_dirs_of(pid));
    // SIGKILL of xvisor while the program runs.
    let mut child = lab
        .xvisor(
            caller,
            None,
            &["run", "--net", "nat", "-p", &publish, "--", "sleep", "60"],
        )
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(
        eventually(Duration::from_secs(10), || !helpers_of(pid).is_empty()),
        "slirp4netns did not start"
    );
    assert!(
        eventually(Duration::from_secs(10), || api_dirs_of(pid).is_empty()),
        "the API socket stays while the instance runs"
    );
    assert!(
        eventually(Duration::from_secs(10), || !forwarders_of(pid).is_empty()),
        "the port forwarder did not start"
    );
    let forwarders = forwarders_of(pid);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        eventually(Duration::from_secs(5), || helpers_of(pid).is_empty()),
        "slirp4netns survived SIGKILL of xvisor: {:?}",
        helpers_of(pid)
    );
    assert!(
        eventually(Duration::from_secs(5), || !forwarders.iter().any(|&f| alive(f))),
        "the port forwarder survived SIGKILL of xvisor: {forwarders:?}"
    );
    // The published port is free again.
    let free = lab.host_python(&format!(
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', {port})); print('free')"
    ));
    assert_eq!(free.trim(), "free");
    drop(lab);
    assert_host_untouched();
});

both_callers!(a_missing_helper_is_named, |caller| {
    let lab = Lab::new();
    let o = lab
        .xvisor(
            caller,
            Some("/nonexistent"),
            &["run", "--net", "nat", "--", "/bin/true"],
        )
        .output()
        .unwrap();
    assert_eq!(code(&o), 125);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("install the package slirp4netns"), "{err}");
});

#[test]
fn publishing_needs_nat() {
    let lab = Lab::new();
    let o = lab.run(Caller::Root, &["run", "-p", "8080:80", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--net nat"), "{}", stderr(&o));
}

both_callers!(policy_connect_rules_decide_destinations, |caller| {
    let mut lab = Lab::new();
    lab.tcp_server(&lab.outside.clone(), OUTSIDE, 9000, "allowed");
    lab.tcp_server(&lab.outside.clone(), OUTSIDE, 9002, "refused-one");
    let (_dir, policy) = policy_file("nat-policy", &format!("[net]\nconnect = [\"tcp:{OUTSIDE}:9000\"]\n"));
    let script = format!(
        "for p in 9000 9002; do (exec 3<>/dev/tcp/{OUTSIDE}/$p && cat <&3) 2>/dev/null || echo $p refused; done"
    );
    let o = lab.run(
        caller,
        &["run", "--net", "nat", "--policy", &policy, "--", "bash", "-c", &script],
    );
    let out = ok(&o);
    assert!(out.contains("allowed\n"), "{out}");
    assert!(out.contains("9002 refused") && !out.contains("refused-one"), "{out}");
    assert!(stderr(&o).contains("not in [net].connect"), "{}", stderr(&o));
    drop(lab);
    assert_host_untouched();
});

both_callers!(host_loopback_is_reached_only_when_asked_for, |caller| {
    let mut lab = Lab::new();
    lab.tcp_server(&lab.host.clone(), "127.0.0.1", 9001, "host-loopback");
    let script = "(exec 3<>/dev/tcp/10.0.2.2/9001 && cat <&3) 2>/dev/null || echo unreachable";
    let o = lab.run(
        caller,
        &["run", "--net", "nat:host-loopback", "--", "bash", "-c", script],
    );
    assert_eq!(ok(&o), "host-loopback\n");
    drop(lab);
    assert_host_untouched();
});

both_callers!(ps_shows_published_ports, |caller| {
    let lab = Lab::new();
    let state = TempDir::new("nat-ps-state");
    let name = format!("natps{}{}", std::process::id(), caller as u8);
    let port = 22000 + (std::process::id() % 1000) as u16 * 10 + caller as u16 * 3;
    let xv = |args: &[&str]| {
        lab.xvisor(caller, None, args)
            .env("XVISOR_STATE_DIR", state.join("state"))
            .output()
            .unwrap()
    };
    let publish = format!("{port}:80");
    ok(&xv(&[
        "run", "-d", "--name", &name, "--net", "nat", "-p", &publish, "--", "sleep", "60",
    ]));
    let listed = xv(&["ps"]);
    let json = xv(&["ps", "--json"]);
    ok(&xv(&["rm", "-f", &name]));
    let table = ok(&listed);
    assert!(table.lines().next().unwrap_or("").contains("PORTS"), "{table}");
    assert!(table.contains(&format!("127.0.0.1:{port}->80/tcp")), "{table}");
    let items: serde_json::Value = serde_json::from_str(&ok(&json)).unwrap();
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name.as_str())
        .expect("the instance in ps --json");
    assert_eq!(item["ports"], serde_json::json!([format!("127.0.0.1:{port}->80/tcp")]));
    let supervisor = item["supervisor_pid"].as_u64().expect("supervisor_pid") as u32;
    assert!(
        eventually(Duration::from_secs(5), || helpers_of(supervisor).is_empty()),
        "slirp4netns left after rm -f"
    );
    drop(lab);
    assert_host_untouched();
});
