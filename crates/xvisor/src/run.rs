//! `xvisor run`: options, their translation into an instance spec, and the
//! run itself.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use xvisor_confine::{Limits, RootBase, RootExtras, RootSpec, TmpfsSizes, Volume};
use xvisor_instance::{Instance, InstanceSpec, Network, Outcome, StdinMode, TraceTarget};
use xvisor_trap::{Policy, Profile};

use crate::units::{parse_duration, parse_size, show_size};

pub const HELP: &str = "\
Run a program in a new, isolated xvisor instance.

Usage: xvisor run [OPTIONS] [--] PROGRAM [ARGS...]
       xvisor run --image NAME [OPTIONS] [-- PROGRAM [ARGS...]]

By default the instance sees only the host's system directories, read-only
(/usr, /bin, /sbin, /lib*, and /etc with its secrets masked), a private
writable /tmp and home directory that vanish with it (1 GiB each, in
memory), a private writable /var and /run (1 GiB for both: empty
directories named as the host's state directories, and the host's
package database read-only), its own /proc, a minimal
/dev, /sys read-only, hostname 'xvisor', and no network but loopback. The
guest runs as root inside, with no privilege on the host: started by root,
its ids are a range of host ids of its own (host files keep their owners,
so what the host keeps for root stays out of reach); started by another
user, it is that user outside. Root inside holds the 14 capabilities
container engines grant by default, all of its own user namespace.
no_new_privs is always set: no exec gains privileges (set-uid bits, file
capabilities). Everything is gone when the program ends.

Root filesystem:
      --image NAME[:TAG]   use an image imported with 'xvisor image import' as
                           /: its layers read-only under a throwaway writable
                           layer; its Entrypoint, Cmd, Env, WorkingDir and
                           User are the defaults (PROGRAM replaces Cmd, as
                           with docker; --user, -e and -w override)
      --rootfs DIR         use DIR as / (read-only)
      --writable           with --rootfs: accept writes in a throwaway layer
      --host-root          show the whole host root, read-only
  -v, --volume SRC:DST[:ro|rw]
                           make host path SRC visible at DST (read-only
                           unless :rw; a missing SRC of a :rw volume is
                           made, as an empty directory); repeatable
  -w, --workdir DIR        start in DIR (default: the home directory)
      --mount type=bind,source=SRC,target=DST[,readonly=false]
                           docker's form of -v: read-only unless
                           readonly=false; SRC must exist. Also
                           type=tmpfs,target=DST[,tmpfs-size=SIZE]
                           [,tmpfs-mode=OCTAL], as --tmpfs
      --device PATH        show the host's device node PATH (below /dev, e.g.
                           /dev/fuse, /dev/kvm) in the instance's /dev, with
                           the host's permissions; repeatable

Identity and environment:
  -u, --user USER[:GROUP]  run as this user (and group) inside (default 0:0):
                           numbers (GID defaults to UID), or names from the
                           /etc/passwd and /etc/group the guest sees (the
                           image's, the --rootfs directory's, else the
                           host's; a name's group is its own)
  -e, --env KEY[=VALUE]    set a variable (KEY alone: take it from xvisor's
                           environment); the guest otherwise gets only PATH,
                           HOME and TERM; repeatable
      --env-file FILE      variables from FILE, one KEY=VALUE (or KEY) a
                           line, '#' comments, as docker reads it
      --entrypoint PROG    with --image: run PROG instead of the image's
                           Entrypoint (PROGRAM ARGS, or the image's Cmd,
                           follow)
      --userns auto|host   auto (default): started by root, the guest's ids
                           0-65535 are host ids of its own (image layers,
                           --rootfs and volumes show its files as its own;
                           what it writes to a volume belongs to the same
                           ids on the host, root's to root); rootless,
                           the caller's subordinate ids (/etc/subuid,
                           newuidmap) are guest ids 1, 2 ... when it has
                           some; host: the caller's ids, so a root
                           caller's guest root is host root (for hosts
                           without idmapped mounts), a rootless caller's
                           guest has one id (and starts faster)
      --hostname NAME      the instance's hostname (default: xvisor)
      --name NAME          the instance's name (default: generated)

Network:
      --net none|nat|host  none (default): own network, loopback only;
                           nat: own network with a way out through
                           slirp4netns (package slirp4netns): outbound
                           IPv4 TCP and UDP leave as the caller's own
                           connections; the host's loopback is out of
                           reach; /etc/resolv.conf names its DNS
                           forwarder 10.0.2.3; nat:host-loopback: the
                           same, with the host's loopback reachable as
                           10.0.2.2; host: the host's network.
                           An image's /etc/resolv.conf follows: the host's
                           with host, only 127.0.0.1 with none
  -p, --publish [IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]
                           with --net nat: forward a host port to the
                           instance's GUEST_PORT; IP defaults to 127.0.0.1
                           (the host's own users only; 0.0.0.0 shows it to
                           the network); a port that cannot be bound stops
                           the run before the program starts; repeatable

Limits (refused, never ignored, where the host cannot enforce them):
      --memory SIZE        memory limit, e.g. 256M, 2G (default: half the
                           memory xvisor may use, where it can make a cgroup)
      --pids N             at most N processes and threads (default 4096)
      --cpus FRACTION      CPU time, e.g. 0.5 or 2
      --nofile N           open-file limit
      --timeout DURATION   kill the instance after e.g. 30s, 500ms, 5m
      --tmpfs-size SIZE    room in each of /tmp, the home directory and the
                           throwaway writable layer (--image, --writable);
                           default 1G, at least 1M; held in memory
      --shm-size SIZE      room in /dev/shm (default 64M)
      --tmpfs PATH[:size=SIZE]
                           a private, empty tmpfs at PATH (default 64M);
                           repeatable
      --read-only          no writable root: an image's or --rootfs's / is
                           read-only (/tmp, the home directory, /var and
                           /run, --tmpfs mounts and rw volumes stay
                           writable)
      --no-limits          drop xvisor's default limits: without it, where
                           the host lets xvisor make a cgroup (root, or a
                           delegated one), an instance may use at most half
                           of the memory xvisor may use (the host's RAM, or
                           its own cgroup's limit) and 4096 processes and
                           threads, unless --memory or --pids say otherwise;
                           without such a cgroup, an instance started by
                           root lets each of its users run at most 4096
                           (RLIMIT_NPROC). The tmpfs sizes above stay
      --rm                 every instance is removed at its end; with -d,
                           its log and exit status go too
      --init               accepted, as docker's: every instance's pid 1 is
                           already an init of xvisor's that reaps orphans
                           and passes signals on to the program

Detached (see 'xvisor logs --help', stop, wait, inspect, rm):
  -d, --detach             run in the background: print the instance's name
                           once its program runs, and return. Its output
                           (stdout and stderr) goes to a log ('xvisor logs
                           NAME'); stdin is /dev/null. After its end it is
                           listed by 'xvisor ps -a' as exited, with its log
                           and exit status, until 'xvisor rm NAME'
      --log-size SIZE      with -d: keep at most SIZE of output in the log
                           and SIZE more in the one before it (default 1M;
                           at least 4K); older output is dropped

Policy (see 'xvisor policy --help' and docs/policy.md):
      --policy FILE        what the instance may touch: files, programs, TCP
                           ports, system calls, limits; each rule enforced by
                           the cheapest layer that holds it (the filter,
                           Landlock); options given here override the file
      --profile NAME       default: calls run in the host kernel, bounded by
                           the instance's confinement, the dangerous ones
                           refused by the filter; strict: every call is
                           trapped and decided by the supervisor
      --deny-syscall LIST  refuse these calls too, with EPERM
                           (comma-separated names)
      --stats              at the end, say on stderr how many system calls were
                           trapped to the supervisor (what the policy cost)
      --trace FILE         trap and record every call that carries meaning
                           (paths, programs, sockets, identity) as JSON
                           lines in FILE; '-' prints a readable form on
                           stderr
      --report FILE        at the end, write the run's report to FILE: one
                           HTML page (no network needed to open it) with
                           the process tree, a timeline, calls by name and
                           class with their latency, every refusal and
                           what would allow it, the files, programs and
                           destinations touched; records as --trace does
                           (also see 'xvisor report --help')
      --report-json FILE   the report's data as JSON, for tools
      --learn FILE         run once, recording every file, program and TCP
                           port the run uses, then write to FILE the
                           smallest policy that lets the same run pass
                           ('xvisor run --policy FILE'): directories where
                           the run used many entries as one rule, each rule
                           with the programs that needed it; FILE is
                           replaced. Every call that carries meaning is
                           trapped (and let through) while learning;
                           the run's report goes beside FILE (FILE with
                           .html) unless --report names another

Terminal and input:
  -i, --interactive        keep stdin open even when it is a terminal
  -t, --tty                give the guest a pseudo-terminal (for shells)

From a warm pool ('xvisor pool --help'): 'xvisor run --pool NAME [-e ...]
[-w DIR] [--timeout T] [-i] -- PROGRAM' starts the program in an instance
built beforehand; only those options may be given per run, others are
refused by name. Exit status and signals are as below.

Exit status: the program's own; 128+N if it was killed by signal N; 124 if
--timeout fired; 125 if xvisor failed; 126 if the program cannot be executed;
127 if it was not found.

Examples:
  xvisor run -- sh -c 'id; hostname; ls /'
  xvisor run -it -- bash
  xvisor run -d --name web -- python3 -m http.server 8000
  xvisor run -v \"$PWD\":/work:rw -w /work -- make
  xvisor run --memory 256M --pids 64 --timeout 10s -v \"$PWD\":/work -w /work -- ./untrusted
  xvisor run --rootfs ./rootfs --writable -- /bin/sh
  xvisor run --image busybox                  # the image's default command
  xvisor run --image alpine:3.20 -- cat /etc/os-release
";

/// Everything `xvisor run` was told.
#[derive(Debug, Default, PartialEq)]
pub struct RunOptions {
    pub rootfs: Option<PathBuf>,
    pub image: Option<String>,
    pub writable: bool,
    pub host_root: bool,
    pub volumes: Vec<Volume>,
    pub devices: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<UserSpec>,
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub network: Network,
    /// `-p`: host ports forwarded into the instance (`--net nat`).
    pub publish: Vec<xvisor_instance::nat::Publish>,
    pub limits: Limits,
    pub nofile: Option<u64>,
    pub timeout: Option<Duration>,
    pub tmpfs_sizes: TmpfsSizes,
    pub env_files: Vec<PathBuf>,
    pub entrypoint: Option<String>,
    pub tmpfs: Vec<xvisor_confine::TmpfsMount>,
    pub read_only: bool,
    /// `--userns host`: the guest keeps the caller's host ids.
    pub share_host_ids: bool,
    /// `--no-limits`: none of xvisor's default bounds.
    pub no_limits: bool,
    pub interactive: bool,
    pub tty: bool,
    /// `None`: the policy file's base, else `default`.
    pub profile: Option<Profile>,
    pub policy: Option<PathBuf>,
    pub denied: Vec<String>,
    pub trace: Option<String>,
    /// `--report FILE`, `--report-json FILE`: the run's report.
    pub report: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub stats: bool,
    /// `--learn FILE`: where the learned policy goes.
    pub learn: Option<PathBuf>,
    /// `-d`: run in the background, output to a capped log.
    pub detach: bool,
    /// `--log-size`: the cap of each of a detached instance's two log files.
    pub log_size: Option<u64>,
    /// `--rm`: with `-d`, forget the instance (log, status) when it ends.
    pub remove: bool,
    pub argv: Vec<String>,
}

fn text(value: OsString, option: &str) -> Result<String> {
    value
        .into_string()
        .map_err(|v| anyhow::anyhow!("{option}: not valid UTF-8: {v:?}"))
}

fn parse_volume(spec: &str) -> Result<Volume> {
    let (rest, writable) = if let Some(r) = spec.strip_suffix(":rw") {
        (r, true)
    } else if let Some(r) = spec.strip_suffix(":ro") {
        (r, false)
    } else {
        (spec, false)
    };
    // SRC:DST:MODE with a mode that is not ro or rw (DST is absolute).
    if let [_, target, mode] = spec.splitn(3, ':').collect::<Vec<_>>()[..] {
        if target.starts_with('/') && !mode.starts_with('/') && rest == spec {
            bail!("--volume {spec:?}: unknown mode {mode:?} (use ro or rw)");
        }
    }
    let Some((source, target)) = rest.rsplit_once(':') else {
        bail!("--volume {spec:?}: expected SRC:DST[:ro|rw]");
    };
    if source.is_empty() || target.is_empty() {
        bail!("--volume {spec:?}: expected SRC:DST[:ro|rw]");
    }
    let host_path = std::path::absolute(source).with_context(|| format!("--volume {spec:?}"))?;
    Ok(Volume {
        host_path,
        target: target.to_string(),
        writable,
        slave: false,
    })
}

/// A writable volume whose source does not exist yet gets an empty
/// directory there, made with the caller's own rights, as docker makes it
/// (`-v "$PWD/out":/out:rw`). Read-only sources are never made: an empty
/// directory could only hide a typing mistake.
fn create_missing_writable_sources(volumes: &[Volume]) -> Result<()> {
    for v in volumes.iter().filter(|v| v.writable) {
        if std::fs::symlink_metadata(&v.host_path).is_err() {
            std::fs::create_dir_all(&v.host_path)
                .with_context(|| format!("--volume {}: cannot create it", v.host_path.display()))?;
        }
    }
    Ok(())
}

/// The smallest `--memory` an instance can start in.
const MINIMUM_MEMORY: u64 = 1 << 20;

/// `--tmpfs PATH[:size=SIZE[,mode=OCTAL]]`.
fn parse_tmpfs(spec: &str) -> Result<xvisor_confine::TmpfsMount> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let mut mount = xvisor_confine::TmpfsMount {
        target: target.to_string(),
        size: Some(64 << 20),
        mode: Some(0o1777),
        readonly: false,
        noexec: false,
        source: None,
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", v)) => mount.size = Some(parse_size(v).map_err(|e| anyhow!("--tmpfs {spec:?}: size {e}"))?),
            Some(("mode", v)) => {
                mount.mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| anyhow!("--tmpfs {spec:?}: mode {v:?} is not an octal mode"))?,
                )
            }
            _ => bail!("--tmpfs {spec:?}: unknown option {option:?} (size=SIZE, mode=OCTAL)"),
        }
    }
    if !target.starts_with('/') {
        bail!("--tmpfs {spec:?}: PATH is absolute (as the instance sees it)");
    }
    Ok(mount)
}

/// What `--mount` adds: a volume or a tmpfs.
enum Mount {
    Bind(Volume),
    Tmpfs(xvisor_confine::TmpfsMount),
}

/// `--mount type=bind|tmpfs,…`: docker's long form of `-v` and `--tmpfs`.
/// Keys: `type`, `source`/`src`, `target`/`destination`/`dst`,
/// `readonly`/`ro` (alone or `=true|false|1|0`), and for tmpfs
/// `tmpfs-size`, `tmpfs-mode`. A bind is read-only unless `readonly=false`,
/// as `-v` is (docker makes it writable); its source must exist, as
/// docker requires.
fn parse_mount(spec: &str) -> Result<Mount> {
    let mut kind = None;
    let mut source = None;
    let mut target = None;
    let mut readonly = None;
    let mut size = None;
    let mut mode = None;
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let value_of = || value.ok_or_else(|| anyhow!("--mount {spec:?}: {key} needs a value ({key}=…)"));
        match key {
            "type" => kind = Some(value_of()?),
            "source" | "src" => source = Some(value_of()?),
            "target" | "destination" | "dst" => target = Some(value_of()?),
            "readonly" | "ro" => {
                readonly = Some(match value {
                    None | Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    Some(other) => bail!("--mount {spec:?}: {key}={other:?}: use true or false"),
                })
            }
            "tmpfs-size" => size = Some(value_of()?),
            "tmpfs-mode" => mode = Some(value_of()?),
            other => bail!(
                "--mount {spec:?}: unknown key {other:?} (type, source, target, readonly, tmpfs-size, tmpfs-mode)"
            ),
        }
    }
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        bail!("--mount {spec:?}: give target=PATH (where the instance sees it)");
    };
    match kind {
        Some("bind") => {
            if size.is_some() || mode.is_some() {
                bail!("--mount {spec:?}: tmpfs-size and tmpfs-mode are for type=tmpfs");
            }
            let Some(source) = source.filter(|s| !s.is_empty()) else {
                bail!("--mount {spec:?}: a bind needs source=PATH (the host's)");
            };
            let host_path = std::path::absolute(source).with_context(|| format!("--mount {spec:?}"))?;
            if std::fs::symlink_metadata(&host_path).is_err() {
                bail!(
                    "--mount {spec:?}: the source {} does not exist (make it first, or use -v SRC:DST:rw, which makes it)",
                    host_path.display()
                );
            }
            Ok(Mount::Bind(Volume {
                host_path,
                target: target.to_string(),
                writable: readonly == Some(false),
                slave: false,
            }))
        }
        Some("tmpfs") => {
            if source.is_some() {
                bail!("--mount {spec:?}: a tmpfs has no source");
            }
            let mut options = Vec::new();
            options.extend(size.map(|s| format!("size={s}")));
            options.extend(mode.map(|m| format!("mode={m}")));
            let mut mount = parse_tmpfs(&format!("{target}:{}", options.join(",")))
                .map_err(|e| anyhow!("--mount {spec:?}: {}", plain_reason(&e)))?;
            mount.readonly = readonly == Some(true);
            Ok(Mount::Tmpfs(mount))
        }
        Some("volume") => {
            bail!("--mount {spec:?}: named volumes are not kept by xvisor: use type=bind with a host directory")
        }
        Some(other) => bail!("--mount {spec:?}: type {other:?}: use bind or tmpfs"),
        None => bail!("--mount {spec:?}: give type=bind or type=tmpfs"),
    }
}

/// The reason of a `--tmpfs` error without its `--tmpfs "…": ` prefix.
fn plain_reason(e: &anyhow::Error) -> String {
    let text = e.to_string();
    match text.split_once("\": ") {
        Some((_, reason)) => reason.to_string(),
        None => text,
    }
}

/// `--env-file`: docker's format — `KEY=VALUE` or `KEY` (taken from our
/// environment) a line, `#` comments and blank lines skipped.
fn read_env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("--env-file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `--user` as given: numbers, or names to look up in the root's
/// /etc/passwd and /etc/group once the root is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    /// `UID[:GID]`; GID defaults to UID.
    Ids(u32, u32),
    /// `NAME[:GROUP]`, `UID:GROUP` or `NAME:GID`.
    Names(String),
}

fn parse_user(spec: &str) -> Result<UserSpec> {
    if let Some((uid, gid)) = xvisor_image::user::numeric_ids(spec) {
        return Ok(UserSpec::Ids(uid, gid));
    }
    let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
            && !s.starts_with('-')
    };
    if !name(u) || !name(g) {
        bail!("--user {spec:?}: give UID[:GID] or NAME[:GROUP]");
    }
    Ok(UserSpec::Names(spec.to_string()))
}

/// The ids of `--user` for a root of host directories (or none): names
/// from the files the guest will see, the host's or the `--rootfs`
/// directory's.
fn root_user(o: &RunOptions) -> Result<(u32, u32)> {
    use xvisor_image::user::{resolve_in, Accounts};
    match &o.user {
        None => Ok((0, 0)),
        Some(UserSpec::Ids(uid, gid)) => Ok((*uid, *gid)),
        Some(UserSpec::Names(spec)) => {
            let accounts = match &o.rootfs {
                Some(dir) => Accounts::Directory(dir),
                None => Accounts::Host,
            };
            let u = resolve_in(spec, accounts, "--user")?;
            Ok((u.uid, u.gid))
        }
    }
}

/// Parses the arguments after `run`.
pub fn parse(args: Vec<OsString>) -> Result<Option<RunOptions>> {
    use lexopt::prelude::*;
    let mut o = RunOptions::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("rootfs") => o.rootfs = Some(PathBuf::from(p.value()?)),
            Long("writable") => o.writable = true,
            Long("image") => o.image = Some(text(p.value()?, "--image")?),
            Long("host-root") => o.host_root = true,
            Short('v') | Long("volume") => o.volumes.push(parse_volume(&text(p.value()?, "--volume")?)?),
            Long("device") => {
                let path = text(p.value()?, "--device")?;
                // Its reasons read "device PATH: …": "--device PATH: …".
                xvisor_confine::rootfs::host_device(&path).map_err(|why| anyhow!("--{why}"))?;
                if !o.devices.contains(&path) {
                    o.devices.push(path);
                }
            }
            Short('e') | Long("env") => o.env.push(text(p.value()?, "--env")?),
            Short('w') | Long("workdir") => o.workdir = Some(text(p.value()?, "--workdir")?),
            Short('u') | Long("user") => o.user = Some(parse_user(&text(p.value()?, "--user")?)?),
            Long("env-file") => o.env_files.push(PathBuf::from(p.value()?)),
            Long("entrypoint") => o.entrypoint = Some(text(p.value()?, "--entrypoint")?),
            Long("tmpfs") => o.tmpfs.push(parse_tmpfs(&text(p.value()?, "--tmpfs")?)?),
            Long("read-only") => o.read_only = true,
            Long("mount") => match parse_mount(&text(p.value()?, "--mount")?)? {
                Mount::Bind(volume) => o.volumes.push(volume),
                Mount::Tmpfs(mount) => o.tmpfs.push(mount),
            },
            // Every instance has an init as pid 1 already (see the help).
            Long("init") => {}
            Long("no-limits") => o.no_limits = true,
            Long("rm") => o.remove = true,
            Short('d') | Long("detach") => o.detach = true,
            Long("log-size") => {
                let v = text(p.value()?, "--log-size")?;
                let size = parse_size(&v).map_err(|e| anyhow!("--log-size {e}"))?;
                if size < crate::units::MINIMUM_LOG_SIZE {
                    bail!("--log-size {v:?}: give at least 4K");
                }
                o.log_size = Some(size);
            }
            Long("hostname") => {
                let h = text(p.value()?, "--hostname")?;
                if h.is_empty() || h.len() > 64 || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                {
                    bail!("--hostname {h:?}: use 1 to 64 letters, digits, '-' or '.'");
                }
                o.hostname = Some(h);
            }
            Long("name") => {
                let n = text(p.value()?, "--name")?;
                if !xvisor_instance::registry::valid_name(&n) {
                    bail!("--name {n:?}: use 1 to 64 letters, digits, '-', '_' or '.'");
                }
                o.name = Some(n);
            }
            Long("userns") => {
                o.share_host_ids = match text(p.value()?, "--userns")?.as_str() {
                    "auto" => false,
                    "host" => true,
                    other => bail!("--userns {other:?}: use auto or host"),
                }
            }
            Long("net") | Long("network") => {
                o.network = match text(p.value()?, "--net")?.as_str() {
                    "none" => Network::None,
                    "host" => Network::Host,
                    "nat" => Network::Nat { host_loopback: false },
                    "nat:host-loopback" => Network::Nat { host_loopback: true },
                    other => bail!("--net {other:?}: use none, nat, nat:host-loopback or host"),
                }
            }
            Short('p') | Long("publish") => {
                let v = text(p.value()?, "--publish")?;
                o.publish
                    .push(v.parse().map_err(|e: String| anyhow::anyhow!("-p {v:?}: {e}"))?);
            }
            Long("memory") => {
                let v = text(p.value()?, "--memory")?;
                let bytes = parse_size(&v).map_err(|e| anyhow::anyhow!("--memory {e}"))?;
                // The instance's own processes (its init, the guest's
                // start) need about half a megabyte before the program
                // runs; below that it could not even start.
                if bytes < MINIMUM_MEMORY {
                    bail!("--memory {v:?}: give at least 1M (an instance needs about half a megabyte to start)");
                }
                o.limits.memory_bytes = Some(bytes);
            }
            Long("pids") => {
                let v = text(p.value()?, "--pids")?;
                let n: u64 = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| anyhow::anyhow!("--pids {v:?}: give a whole number of at least 1"))?;
                o.limits.pids = Some(n);
            }
            Long("cpus") => {
                let v = text(p.value()?, "--cpus")?;
                let n: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite() && *n >= 0.01 && *n <= 4096.0)
                    .ok_or_else(|| anyhow::anyhow!("--cpus {v:?}: give a number of CPUs from 0.01 up, e.g. 0.5"))?;
                o.limits.cpus = Some(n);
            }
            Long("nofile") => {
                let v = text(p.value()?, "--nofile")?;
                let n: u64 = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 3)
                    .ok_or_else(|| anyhow::anyhow!("--nofile {v:?}: give a whole number of at least 3"))?;
                o.nofile = Some(n);
            }
            Long("timeout") => {
                o.timeout = Some(
                    parse_duration(&text(p.value()?, "--timeout")?).map_err(|e| anyhow::anyhow!("--timeout {e}"))?,
                )
            }
            Long("tmpfs-size") => {
                let v = text(p.value()?, "--tmpfs-size")?;
                o.tmpfs_sizes.scratch = parse_size(&v)
                    .map_err(|e| anyhow!("--tmpfs-size {e}"))
                    .and_then(|size| match size {
                        size if size >= TmpfsSizes::MINIMUM_SCRATCH => Ok(size),
                        _ => Err(anyhow!("--tmpfs-size {v:?}: give at least 1M")),
                    })?;
            }
            Long("shm-size") => {
                o.tmpfs_sizes.shm =
                    parse_size(&text(p.value()?, "--shm-size")?).map_err(|e| anyhow!("--shm-size {e}"))?;
            }
            Long("profile") => {
                o.profile = Some(
                    Profile::parse(&text(p.value()?, "--profile")?).map_err(|e| anyhow::anyhow!("--profile: {e}"))?,
                )
            }
            Long("deny-syscall") => {
                let list = text(p.value()?, "--deny-syscall")?;
                o.denied
                    .extend(list.split(',').filter(|s| !s.is_empty()).map(str::to_string));
            }
            Long("trace") => o.trace = Some(text(p.value()?, "--trace")?),
            Long("report") => o.report = Some(PathBuf::from(p.value()?)),
            Long("report-json") => o.report_json = Some(PathBuf::from(p.value()?)),
            Long("policy") => o.policy = Some(PathBuf::from(p.value()?)),
            Long("stats") => o.stats = true,
            Long("learn") => o.learn = Some(PathBuf::from(p.value()?)),
            Short('i') | Long("interactive") => o.interactive = true,
            Short('t') | Long("tty") => o.tty = true,
            Value(program) => {
                o.argv.push(text(program, "PROGRAM")?);
                for a in p.raw_args()? {
                    o.argv.push(text(a, "argument")?);
                }
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if o.argv.is_empty() && o.image.is_none() {
        bail!("no program given (e.g. xvisor run -- sh -c 'id; ls /')");
    }
    if o.image.is_some() && (o.rootfs.is_some() || o.host_root || o.writable) {
        bail!("--image excludes --rootfs, --host-root and --writable (an image's root is always a throwaway overlay)");
    }
    if o.entrypoint.is_some() && o.image.is_none() {
        bail!("--entrypoint needs --image (without an image, PROGRAM is what runs)");
    }
    if o.writable && o.rootfs.is_none() {
        bail!("--writable needs --rootfs DIR");
    }
    if o.host_root && o.rootfs.is_some() {
        bail!("--host-root and --rootfs exclude each other");
    }
    if o.detach && (o.tty || o.interactive) {
        bail!("-d runs the program in the background, with no terminal or input to give it: drop -i/-t (a shell in it later: xvisor exec -it NAME -- sh)");
    }
    if o.log_size.is_some() && !o.detach {
        bail!("--log-size needs -d (a program run in the foreground writes to your terminal, not to a log)");
    }
    if !o.publish.is_empty() && !matches!(o.network, Network::Nat { .. }) {
        bail!("-p publishes a port of the instance's own network with a way out: add --net nat");
    }
    if o.detach && (o.report.is_some() || o.report_json.is_some()) {
        bail!("--report is written when the run ends, by the xvisor that waits for it: drop -d, or use --trace FILE and 'xvisor report FILE' later");
    }
    if o.learn.is_some() && o.policy.is_some() {
        bail!("--learn and --policy exclude each other (learning runs under the base profile, and writes the policy)");
    }
    Ok(Some(o))
}

/// A name no running instance has: pid and a little randomness.
fn generated_name() -> String {
    let mut bytes = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    format!("xv-{}-{}", std::process::id(), u32::from_le_bytes(bytes) % 0x10000)
}

/// The image's share of a run: its layers and the defaults it gives.
struct ImageDefaults {
    layers: Vec<PathBuf>,
    uid: u32,
    gid: u32,
    home: String,
    env: Vec<(String, String)>,
    argv: Vec<String>,
    workdir: Option<String>,
}

/// Keeps the image's layers from garbage collection until xvisor exits.
static IMAGE_LEASE: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

fn image_defaults(name: &str, o: &RunOptions) -> Result<ImageDefaults> {
    let store = xvisor_image::Store::at(xvisor_image::Store::default_location()?);
    let image = store.for_run(name)?;
    let config = image.config;
    let (uid, gid, home) = match &o.user {
        Some(UserSpec::Ids(uid, gid)) => {
            let found = xvisor_image::user::resolve(&uid.to_string(), &image.layers)?;
            (*uid, *gid, found.home)
        }
        Some(UserSpec::Names(spec)) => {
            let accounts = xvisor_image::user::Accounts::Image(&image.layers);
            let u = xvisor_image::user::resolve_in(spec, accounts, "--user")?;
            (u.uid, u.gid, u.home)
        }
        None => {
            let u = xvisor_image::user::resolve(config.user.as_deref().unwrap_or(""), &image.layers)
                .with_context(|| format!("image {name}"))?;
            (u.uid, u.gid, u.home)
        }
    };
    let home = home.unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    let mut env = Vec::new();
    for e in config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            if !k.is_empty() && !k.contains('\0') && !v.contains('\0') {
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    let mut argv: Vec<String> = match &o.entrypoint {
        Some(program) => vec![program.clone()],
        None => config.entrypoint.clone().unwrap_or_default(),
    };
    if o.argv.is_empty() {
        argv.extend(config.cmd.clone().unwrap_or_default());
    } else {
        argv.extend(o.argv.iter().cloned());
    }
    if argv.is_empty() {
        bail!("image {name} has no Entrypoint or Cmd: give a program (xvisor run --image {name} -- sh)");
    }
    let _ = IMAGE_LEASE.set(image.lease);
    Ok(ImageDefaults {
        layers: image.layers,
        uid,
        gid,
        home,
        env,
        argv,
        workdir: config.working_dir.filter(|w| w.starts_with('/')),
    })
}

/// Turns options into the instance spec.
pub fn to_spec(mut o: RunOptions) -> Result<InstanceSpec> {
    if o.tty && !xvisor_sys::tty::is_terminal(xvisor_sys::event::standard(0)) {
        bail!("-t needs a terminal on standard input (it is a pipe or a file here): drop -t, or run from a terminal");
    }
    let image = match &o.image {
        Some(name) => Some(image_defaults(name, &o)?),
        None => None,
    };
    let (uid, gid) = match &image {
        Some(i) => (i.uid, i.gid),
        None => root_user(&o)?,
    };
    let home = match &image {
        Some(i) => i.home.clone(),
        None if uid == 0 => "/root".to_string(),
        None => "/home/user".to_string(),
    };
    let term = std::env::var("TERM").ok().filter(|t| !t.is_empty());
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), home.clone()),
    ];
    if let Some(i) = &image {
        for (key, value) in &i.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
    }
    match (term, o.tty) {
        (Some(t), _) => env.push(("TERM".into(), t)),
        (None, true) => env.push(("TERM".into(), "xterm".into())),
        (None, false) => {}
    }
    let mut from_files = Vec::new();
    for file in &o.env_files {
        from_files.extend(read_env_file(file)?);
    }
    for e in from_files.iter().chain(&o.env) {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            bail!("--env {e:?}: expected KEY=VALUE");
        }
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    let workdir = match (&o.workdir, &image) {
        (Some(w), _) => w.clone(),
        (None, Some(i)) => i.workdir.clone().unwrap_or_else(|| "/".into()),
        (None, None) => home.clone(),
    };
    let hostname = o.hostname.clone().unwrap_or_else(|| "xvisor".into());
    let base = match (&o.rootfs, o.host_root) {
        _ if image.is_some() => RootBase::Image {
            layers: image.as_ref().map(|i| i.layers.clone()).unwrap_or_default(),
        },
        (Some(dir), _) => RootBase::Directory {
            path: std::path::absolute(dir).with_context(|| format!("--rootfs {}", dir.display()))?,
            writable: o.writable,
        },
        (None, true) => RootBase::HostRoot,
        (None, false) => RootBase::SystemDirs,
    };
    let stdin_is_terminal = xvisor_sys::tty::is_terminal(xvisor_sys::event::standard(0));
    let file = match &o.policy {
        Some(path) => Some(crate::policy::load(path)?),
        None => None,
    };
    let mut policy = file
        .as_ref()
        .map_or_else(|| Policy::new(Profile::Default), |f| f.filter_policy());
    if let Some(profile) = o.profile {
        policy.profile = profile;
    }
    for name in &o.denied {
        policy.deny(name)?;
    }
    let mut access = xvisor_confine::wall::AccessRules::default();
    let mut deny_write_execute = false;
    let mut denied_paths = Vec::new();
    if let Some(file) = &file {
        denied_paths = file.denied_paths.iter().map(|d| d.value.clone()).collect();
        crate::policy::apply_limits(file, &mut o.limits, &mut o.nofile, &mut o.timeout)?;
        access = crate::policy::access_rules(file);
        access.check_kernel().map_err(|e| anyhow!("{}: {e}", file.file))?;
        deny_write_execute = file.mdwe;
    }
    let trace = match o.trace.as_deref() {
        None => None,
        Some("-") => Some(TraceTarget::Stderr),
        Some(path) => Some(TraceTarget::File(
            std::path::absolute(path).with_context(|| format!("--trace {path}"))?,
        )),
    };
    create_missing_writable_sources(&o.volumes)?;
    let is_image = image.is_some();
    if let Some(i) = image {
        o.argv = i.argv;
    }
    Ok(InstanceSpec {
        name: o.name.unwrap_or_else(generated_name),
        argv: o.argv,
        env,
        workdir: workdir.clone(),
        uid,
        gid,
        root: RootSpec {
            base,
            volumes: o.volumes,
            home,
            home_owner: (uid, gid),
            hostname: hostname.clone(),
            resolv_conf: if matches!(o.network, Network::Nat { .. }) {
                // Shown over a host root's /etc/resolv.conf too: the
                // host's may name a resolver on its loopback, out of reach.
                Some(xvisor_confine::rootfs::resolv_conf_for(
                    false,
                    Some(xvisor_instance::nat::NAME_SERVER),
                ))
            } else {
                is_image.then(|| xvisor_confine::rootfs::resolv_conf(o.network == Network::Host))
            },
            workdir: Some(workdir),
            extras: RootExtras {
                devices: o.devices,
                tmpfs: o.tmpfs,
                readonly_root: o.read_only,
                ..Default::default()
            },
            tmpfs_sizes: o.tmpfs_sizes,
        },
        hostname,
        network: o.network,
        publish: o.publish,
        limits: o.limits,
        cgroup_path: None,
        systemd_scope: None,
        apparmor_profile: None,
        id_maps: None,
        own_host_ids: !o.share_host_ids,
        processes_per_user: None,
        default_limits: !o.no_limits,
        nofile: o.nofile,
        timeout: o.timeout,
        tty: o.tty,
        // A terminal is not handed to the guest unless asked for: pipes and
        // files pass through, a terminal becomes /dev/null without -i.
        stdin: if o.interactive || !stdin_is_terminal {
            StdinMode::Inherit
        } else {
            StdinMode::Null
        },
        policy,
        trace,
        learn: o.learn.is_some(),
        capabilities: None,
        capability_ceiling: Default::default(),
        // Always on for xvisor's own command line (`xvisor run --help`).
        no_new_privileges: true,
        additional_gids: Vec::new(),
        preserve_fds: 0,
        sysctls: Vec::new(),
        ping_sockets: true,
        extra_filter: None,
        joined: Vec::new(),
        hooks: Default::default(),
        freezable: false,
        denied_paths,
        access,
        deny_write_execute,
        program_is_init: false,
    })
}

/// Runs the instance to its end; returns xvisor's exit status. With
/// `learn`, writes the learned policy once the instance has ended; with
/// `stats`, says how many calls were trapped.
/// With `record`, writes the trace's end and the run's report.
pub fn run(
    spec: InstanceSpec,
    learn: Option<crate::learn::Target>,
    stats: bool,
    record: Option<crate::report::Target>,
) -> i32 {
    let memory = spec.limits.memory_bytes;
    let hints = crate::hints::ExitHints::of(&spec);
    match start(spec) {
        Ok(instance) => serve(instance, memory, learn, stats, record, hints.as_ref()),
        Err(e) => {
            let code = report(&e);
            if let Some(hints) = &hints {
                hints.after_start_failure(&e);
            }
            if let Some(record) = record {
                if let Err(e) = record.finish(None, code, 0) {
                    eprintln!("xvisor: {e:#}");
                }
            }
            code
        }
    }
}

/// Creates and starts the instance, then confines this process, which from
/// then on only serves it: the guest's program runs when this returns.
pub fn start(spec: InstanceSpec) -> Result<Instance, xvisor_instance::InstanceError> {
    let mut instance = Instance::create(spec)?;
    instance.start()?;
    instance.confine_supervisor()?;
    Ok(instance)
}

/// Serves a started instance to its end; returns xvisor's exit status.
/// `memory` is the `--memory` limit, for the message after an OOM kill;
/// `hints`, for the line after a guest that failed.
pub fn serve(
    mut instance: Instance,
    memory: Option<u64>,
    learn: Option<crate::learn::Target>,
    stats: bool,
    record: Option<crate::report::Target>,
    hints: Option<&crate::hints::ExitHints>,
) -> i32 {
    let started = std::time::Instant::now();
    let waited = instance.wait();
    if stats {
        eprintln!(
            "xvisor: {} system calls trapped to the supervisor in {:.3} s",
            instance.trapped_calls(),
            started.elapsed().as_secs_f64()
        );
    }
    if let (Some(target), Ok(_)) = (learn, &waited) {
        if let Some(learner) = instance.learned() {
            if let Err(e) = target.write(&learner) {
                eprintln!("xvisor: {e:#}");
                return 125;
            }
        }
    }
    if let Some(record) = record {
        let code = match &waited {
            Ok(outcome) => outcome.exit_code(),
            Err(e) => e.exit_code(),
        };
        if let Err(e) = record.finish(waited.as_ref().ok(), code, instance.trapped_calls()) {
            eprintln!("xvisor: {e:#}");
        }
    }
    match waited {
        Ok(outcome @ Outcome::Exited(_)) => {
            let code = outcome.exit_code();
            if let Some(hints) = hints {
                hints.after_exit(code, instance.absent_hints());
            }
            code
        }
        Ok(outcome) => tell_outcome(outcome, memory),
        Err(e) => report(&e),
    }
}

/// Says why an instance was ended, if xvisor ended it (`--timeout`, out of
/// memory); returns xvisor's exit status for the outcome.
pub fn tell_outcome(outcome: Outcome, memory: Option<u64>) -> i32 {
    match outcome {
        Outcome::TimedOut { after } => {
            eprintln!(
                "xvisor: --timeout {} expired; the instance was killed",
                show_duration(after)
            );
        }
        Outcome::OutOfMemory { .. } => match memory {
            Some(m) => eprintln!(
                "xvisor: out of memory: the instance reached its --memory limit of {} and the kernel killed the guest",
                show_size(m)
            ),
            None => eprintln!(
                "xvisor: out of memory: the instance reached xvisor's default memory limit (half the memory \
                 xvisor may use) and the kernel killed the guest; --memory SIZE sets another, --no-limits none"
            ),
        },
        Outcome::Exited(_) => {}
    }
    outcome.exit_code()
}

pub fn report(e: &xvisor_instance::InstanceError) -> i32 {
    eprintln!("xvisor: {}", crate::message::plain(&e.to_string()));
    e.exit_code()
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_then_program_and_its_own_options() {
        let o = parse(args(&[
            "--net", "host", "-e", "A=1", "--pids", "64", "ls", "-la", "--net",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.network, Network::Host);
        assert_eq!(o.env, vec!["A=1"]);
        assert_eq!(o.limits.pids, Some(64));
        assert_eq!(o.argv, vec!["ls", "-la", "--net"]);
    }

    #[test]
    fn double_dash_ends_options() {
        let o = parse(args(&["-it", "--", "-weird-name"])).unwrap().unwrap();
        assert!(o.interactive && o.tty);
        assert_eq!(o.argv, vec!["-weird-name"]);
    }

    #[test]
    fn mount_reads_dockers_keys() {
        let Mount::Bind(v) = parse_mount("type=bind,source=/tmp,target=/data").unwrap() else {
            panic!("not a bind")
        };
        assert_eq!(
            (v.host_path.as_path(), v.target.as_str(), v.writable),
            (std::path::Path::new("/tmp"), "/data", false)
        );
        let Mount::Bind(v) = parse_mount("type=bind,src=/tmp,dst=/data,readonly=false").unwrap() else {
            panic!("not a bind")
        };
        assert!(v.writable);
        let Mount::Bind(v) = parse_mount("type=bind,src=/tmp,destination=/data,ro").unwrap() else {
            panic!("not a bind")
        };
        assert!(!v.writable);
        let Mount::Tmpfs(t) = parse_mount("type=tmpfs,target=/s,tmpfs-size=1m,tmpfs-mode=700").unwrap() else {
            panic!("not a tmpfs")
        };
        assert_eq!((t.target.as_str(), t.size, t.mode), ("/s", Some(1 << 20), Some(0o700)));
        for (spec, want) in [
            ("type=bind,target=/x", "needs source=PATH"),
            ("type=bind,source=/tmp", "give target=PATH"),
            ("type=bind,source=/no/such/dir,target=/x", "does not exist"),
            ("type=volume,source=v,target=/x", "named volumes"),
            ("type=bind,source=/tmp,target=/x,color=red", "unknown key \"color\""),
            ("type=bind,source=/tmp,target=/x,readonly=maybe", "use true or false"),
            ("type=tmpfs,target=/x,tmpfs-size=lots", "size"),
            ("source=/tmp,target=/x", "give type=bind or type=tmpfs"),
        ] {
            let e = parse_mount(spec).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(want) && e.starts_with("--mount"), "{spec}: {e}");
        }
    }

    #[test]
    fn volumes_default_to_read_only() {
        let v = parse_volume("/srv:/data").unwrap();
        assert!(!v.writable);
        assert_eq!(v.target, "/data");
        assert!(parse_volume("/srv:/data:rw").unwrap().writable);
        assert!(parse_volume("/srv").is_err());
        assert!(parse_volume(":/x").is_err());
    }

    #[test]
    fn bad_values_name_their_option() {
        for (argv, needle) in [
            (vec!["--memory", "lots", "x"], "--memory"),
            (vec!["--pids", "0", "x"], "--pids"),
            (vec!["--timeout", "1d", "x"], "--timeout"),
            (vec!["--net", "bridge", "x"], "--net"),
            (vec!["--user", "alice:", "x"], "--user"),
            (vec!["--user", "a/b", "x"], "--user"),
            (vec!["--writable", "x"], "--writable"),
            (vec!["--hostname", "a b", "x"], "--hostname"),
            (vec!["--cpus", "NaN", "x"], "--cpus"),
        ] {
            let e = parse(args(&argv)).unwrap_err().to_string();
            assert!(e.contains(needle), "{argv:?}: {e}");
        }
        assert!(parse(args(&[])).unwrap_err().to_string().contains("no program"));
    }

    #[test]
    fn guest_environment_is_clean_plus_requested() {
        let o = parse(args(&["-e", "FOO=bar", "-e", "PATH=/x", "env"]))
            .unwrap()
            .unwrap();
        let spec = to_spec(o).unwrap();
        let get = |k: &str| spec.env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("FOO").as_deref(), Some("bar"));
        assert_eq!(get("PATH").as_deref(), Some("/x"));
        assert_eq!(get("HOME").as_deref(), Some("/root"));
        assert!(get("USER").is_none() && get("SSH_AUTH_SOCK").is_none());
    }

    #[test]
    fn another_user_gets_its_own_home() {
        let o = parse(args(&["--user", "1000:100", "id"])).unwrap().unwrap();
        let spec = to_spec(o).unwrap();
        assert_eq!((spec.uid, spec.gid), (1000, 100));
        assert_eq!(spec.workdir, "/home/user");
    }
}
