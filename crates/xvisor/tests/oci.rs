//! The OCI runtime command line, black box: bundles made here (busybox
//! root, config.json from `xvisor spec`, then edited), driven the way
//! engines drive runc.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A bundle: `rootfs/` (busybox) and `config.json`, plus a state root.
struct Bundle {
    dir: TempDir,
    // Keeps the root directory alive as long as the bundle.
    _rootfs: TempDir,
    state_root: PathBuf,
    caller: Caller,
    /// Containers created here, deleted (forcibly) when the test ends,
    /// whether it passed or not.
    created: std::cell::RefCell<Vec<String>>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.created.take() {
            if self.state_root.join(&id).exists() {
                let _ = self.oci(&["delete", "--force", &id]);
            }
        }
    }
}

impl Bundle {
    fn new(tag: &str, caller: Caller, args: &[&str]) -> Self {
        let dir = TempDir::new(tag);
        let rootfs = busybox_rootfs(&format!("{tag}-root"), caller);
        std::os::unix::fs::symlink(rootfs.path(), dir.join("rootfs")).unwrap();
        let state_root = dir.join("state");
        std::fs::create_dir_all(&state_root).unwrap();
        if caller == Caller::Unprivileged {
            std::os::unix::fs::chown(&state_root, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let bundle = Self {
            dir,
            _rootfs: rootfs,
            state_root,
            caller,
            created: Default::default(),
        };
        ok(&bundle.oci(&["spec", "--bundle", bundle.dir.str()]));
        bundle.edit(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = serde_json::json!(args);
        });
        bundle
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.join("config.json");
        let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut config);
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    fn global<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--root", self.state_root.to_str().unwrap()];
        all.extend_from_slice(args);
        all
    }

    /// `xvisor --root STATE ARGS`, to completion.
    fn oci(&self, args: &[&str]) -> Output {
        run(self.caller, &self.global(args))
    }

    /// `create`: its stdout and stderr are the container's, kept open by
    /// the supervisor: give it a file, not a pipe to wait on.
    fn create(&self, id: &str, extra: &[&str]) -> (Output, PathBuf) {
        self.create_with(&[], id, extra)
    }

    /// `create` with global options before it.
    fn create_with(&self, global: &[&str], id: &str, extra: &[&str]) -> (Output, PathBuf) {
        let out_path = self.dir.join(&format!("{id}.out"));
        let out = std::fs::File::create(&out_path).unwrap();
        if self.caller == Caller::Unprivileged {
            std::os::unix::fs::chown(&out_path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        self.created.borrow_mut().push(id.to_string());
        let mut args = global.to_vec();
        args.extend_from_slice(&["create", "--bundle", self.dir.str()]);
        args.extend_from_slice(extra);
        args.push(id);
        let status = xvisor(self.caller, &self.global(&args))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let output = Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&out_path).unwrap_or_default(),
        };
        (output, out_path)
    }

    /// More busybox applets in the root directory.
    fn applets(&self, names: &[&str]) {
        for name in names {
            let link = self.dir.join("rootfs").join("bin").join(name);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).unwrap();
            }
        }
    }

    fn status(&self, id: &str) -> String {
        let state: Value = serde_json::from_str(&ok(&self.oci(&["state", id]))).unwrap();
        state["status"].as_str().unwrap_or_default().to_string()
    }
}

fn container_id(tag: &str) -> String {
    // Unlike the bundle directories' names, so process lists tell them apart.
    format!("ct-{tag}-{}", std::process::id())
}

fn run_prints_output_and_exit_code(caller: Caller) {
    let b = Bundle::new("oci-run", caller, &["sh", "-c", "echo hello; id -u; exit 3"]);
    let id = container_id(if caller == Caller::Root { "run" } else { "run-nobody" });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 3, "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n0\n");
    assert!(!b.state_root.join(&id).exists(), "run leaves no state");
}

#[test]
fn run_prints_output_and_exit_code_as_root() {
    run_prints_output_and_exit_code(Caller::Root);
}

#[test]
fn run_prints_output_and_exit_code_rootless() {
    run_prints_output_and_exit_code(Caller::Unprivileged);
}

fn life_cycle(caller: Caller) {
    let b = Bundle::new(
        "oci-life",
        caller,
        &[
            "sh",
            "-c",
            "echo started; trap 'echo stopping; exit 7' TERM; while :; do sleep 0.05; done",
        ],
    );
    if caller == Caller::Root {
        // Limits make cgroups: they must go with the container too.
        b.edit(|c| {
            c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 64});
            c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 134217728});
        });
    }
    let id = container_id(if caller == Caller::Root { "life" } else { "life-nobody" });
    let pid_file = b.dir.join("pid");
    let (o, out_path) = b.create(&id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let state: Value = serde_json::from_str(&ok(&b.oci(&["state", &id]))).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(Path::new(state["bundle"].as_str().unwrap()), b.dir.path());
    if caller == Caller::Root {
        assert!(!cgroup_dirs_named(&id).is_empty(), "the limits' cgroups exist");
    }

    ok(&b.oci(&["start", &id]));
    assert_eq!(b.status(&id), "running");
    assert!(eventually(Duration::from_secs(5), || std::fs::read_to_string(
        &out_path
    )
    .unwrap_or_default()
    .contains("started")));
    let pids: Vec<i32> = serde_json::from_str(&ok(&b.oci(&["ps", "--format", "json", &id]))).unwrap();
    assert!(pids.len() >= 2, "init and the program: {pids:?}");
    let listed = ok(&b.oci(&["list", "--format", "json"]));
    assert!(listed.contains(&id), "{listed}");

    ok(&b.oci(&["kill", &id, "TERM"]));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    assert!(std::fs::read_to_string(&out_path).unwrap().contains("stopping"));
    let o = b.oci(&["kill", &id, "15"]);
    assert_eq!(code(&o), 1, "a stopped container cannot be signalled");
    // The words containerd's shim takes for "already gone".
    assert!(stderr(&o).contains("container not running"), "{}", stderr(&o));
    // --all asks that nothing be left running: already so (the shim's
    // clean-up after a container's end).
    ok(&b.oci(&["kill", "--all", &id, "KILL"]));

    ok(&b.oci(&["delete", &id]));
    assert!(!b.state_root.join(&id).exists());
    assert!(cgroup_dirs_named(&id).is_empty(), "no cgroup left");
    assert!(processes_with(&id).is_empty(), "no process left");
    assert!(
        !std::fs::read_to_string("/proc/net/unix").unwrap().contains(&id),
        "no control socket left"
    );
    let o = b.oci(&["state", &id]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn create_start_state_kill_delete_as_root() {
    life_cycle(Caller::Root);
}

#[test]
fn create_start_state_kill_delete_rootless() {
    life_cycle(Caller::Unprivileged);
}

#[test]
fn delete_force_cleans_up_after_a_killed_supervisor() {
    let b = Bundle::new("oci-force", Caller::Root, &["sleep", "60"]);
    b.edit(|c| c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 32}));
    let id = container_id("force");
    let pid_file = b.dir.join("pid");
    let (o, _) = b.create(&id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["start", &id]));
    let o = b.oci(&["delete", &id]);
    assert_eq!(code(&o), 1, "a running container needs --force");
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // The supervisor dies without any chance to clean up.
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    ok(&b.oci(&["delete", "--force", &id]));
    assert!(!b.state_root.join(&id).exists());
    assert!(
        eventually(Duration::from_secs(10), || cgroup_dirs_named(&id).is_empty()),
        "no cgroup left"
    );
    assert!(processes_with("sleep 60").iter().all(|p| !p.contains(&id)));
}

#[test]
fn a_killed_supervisors_watchdog_removes_its_cgroups_and_the_path_made_to_them() {
    let id = container_id("cgkill");
    let top = format!("xvisor-test-{id}");
    let relative = format!("{top}/inner/{id}");
    let b = Bundle::new("oci-cgkill", Caller::Root, &["sleep", "60"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = serde_json::json!(relative.clone());
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 32});
    });
    let pid_file = b.dir.join("pid");
    let (o, _) = b.create(&id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["start", &id]));
    assert!(
        !cgroup_dirs_ending_with(&relative).is_empty(),
        "no cgroup for the container"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // The supervisor dies without any chance to clean up: its watchdog
    // removes the container's cgroups and the directories made on the way.
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(
        eventually(Duration::from_secs(10), || cgroup_dirs_ending_with(&top).is_empty()),
        "left: {:?}",
        cgroup_dirs_ending_with(&top)
    );
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn properties_runtime_spec_does_not_define_are_ignored_and_logged() {
    let b = Bundle::new("oci-unknown", Caller::Root, &["echo", "ran"]);
    b.edit(|c| {
        c["frobnicate"] = serde_json::json!(true);
        c["process"]["someday"] = serde_json::json!({"x": 1});
    });
    let log = b.dir.join("log.json");
    let id = container_id("unknown");
    let o = b.oci(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        b.dir.str(),
        &id,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("ran"));
    assert!(
        stderr(&o).is_empty(),
        "nothing on stderr for engines to misread: {}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(&log).unwrap();
    for property in ["frobnicate", "process.someday"] {
        assert!(
            log.lines()
                .any(|l| l.contains("\"warning\"") && l.contains(&format!("{property}: not defined by runtime-spec"))),
            "{log}"
        );
    }
}

/// Cgroup directories whose path ends with `relative`.
fn cgroup_dirs_ending_with(relative: &str) -> Vec<PathBuf> {
    common::cgroup_dirs_where(|dir| dir.ends_with(relative))
}

#[test]
fn cgroups_path_places_the_container_below_the_runtimes_cgroup() {
    for (tag, absolute) in [("cgabs", true), ("cgrel", false)] {
        let id = container_id(tag);
        let top = format!("xvisor-test-{id}");
        let relative = format!("{top}/inner/{id}");
        let b = Bundle::new(&format!("oci-{tag}"), Caller::Root, &["sleep", "60"]);
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = serde_json::json!(if absolute {
                format!("/{relative}")
            } else {
                relative.clone()
            });
            c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
            c["linux"]["resources"]["cpu"] = serde_json::json!({"shares": 512, "quota": 20000, "period": 100000});
        });
        let (o, _) = b.create(&id, &[]);
        assert_eq!(code(&o), 0, "create: {}", stderr(&o));
        ok(&b.oci(&["start", &id]));
        let dirs = cgroup_dirs_ending_with(&relative);
        // Below the cgroup the runtime (this test's child) runs in, on each
        // hierarchy: never anywhere else.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        for d in &dirs {
            let inside = d.strip_prefix("/sys/fs/cgroup").unwrap().to_str().unwrap();
            assert!(
                own.lines().any(|l| {
                    let path = l.splitn(3, ':').nth(2).unwrap_or("");
                    inside.contains(&format!("{}/{relative}", path.trim_end_matches('/')))
                }),
                "{} is not below our own cgroup ({own})",
                d.display()
            );
        }
        let read = |file: &str| dirs.iter().find_map(|d| std::fs::read_to_string(d.join(file)).ok());
        assert_eq!(read("pids.max").as_deref().map(str::trim), Some("50"), "{dirs:?}");
        let cpu = read("cpu.shares").or_else(|| read("cpu.weight")).unwrap();
        assert!(matches!(cpu.trim(), "512" | "20"), "cpu weight {cpu}");
        let quota = read("cpu.cfs_quota_us").or_else(|| read("cpu.max")).unwrap();
        assert!(quota.starts_with("20000"), "quota {quota}");
        // The container's processes are members.
        let pids: Vec<i32> = serde_json::from_str(&ok(&b.oci(&["ps", "--format", "json", &id]))).unwrap();
        let guest = pids
            .iter()
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with("sleep")));
        let member = std::fs::read_to_string(format!("/proc/{}/cgroup", guest.expect("the sleep"))).unwrap();
        assert!(member.contains(&relative), "{member}");
        ok(&b.oci(&["delete", "--force", &id]));
        assert!(
            eventually(Duration::from_secs(10), || cgroup_dirs_ending_with(&top).is_empty()),
            "left: {:?}",
            cgroup_dirs_ending_with(&top)
        );
    }
}

/// systemd's cgroup driver (`--systemd-cgroup`, podman's
/// `--cgroup-manager systemd`): the scope `cgroupsPath` names is made by
/// systemd. Without systemd (these machines) it is refused with one line
/// and leaves nothing; where systemd runs, the container is in the scope.
/// The guest-kernel boot with systemd (tests/guest-kernel) runs podman
/// through it.
#[test]
fn the_systemd_cgroup_driver_asks_systemd_for_the_scope() {
    let id = container_id("sdscope");
    let b = Bundle::new("oci-sdscope", Caller::Root, &["sleep", "60"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = serde_json::json!("plain/path"));
    let (o, _) = b.create_with(&["--systemd-cgroup"], &id, &[]);
    assert_ne!(code(&o), 0, "create: {}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("SLICE:PREFIX:NAME"), "{e}");
    b.edit(|c| c["linux"]["cgroupsPath"] = serde_json::json!(format!("xvisortest.slice:xvtest:{id}")));
    let (o, _) = b.create_with(&["--systemd-cgroup"], &id, &[]);
    if std::path::Path::new("/run/systemd/system").exists() {
        assert_eq!(code(&o), 0, "create: {}", stderr(&o));
        let scope = format!("xvtest-{id}.scope");
        assert!(!cgroup_dirs_ending_with(&scope).is_empty(), "no {scope}");
        ok(&b.oci(&["delete", "--force", &id]));
        assert!(eventually(Duration::from_secs(10), || cgroup_dirs_ending_with(&scope).is_empty()));
    } else {
        assert_ne!(code(&o), 0, "created without systemd: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("cannot reach systemd at /run/systemd/private"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!b.state_root.join(&id).exists(), "state left behind");
        assert!(cgroup_dirs_ending_with(&id).is_empty(), "cgroups left behind");
    }
}

/// An AppArmor profile is honoured where AppArmor runs (the systemd guest
/// boot checks podman's), and refused by name where it does not.
#[test]
fn an_apparmor_profile_is_applied_or_refused_never_dropped() {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|e| e.trim() == "Y");
    let id = container_id("aa");
    let b = Bundle::new("oci-aa", Caller::Root, &["cat", "/proc/self/attr/current"]);
    b.edit(|c| c["process"]["apparmorProfile"] = serde_json::json!("unconfined"));
    let (o, out) = b.create(&id, &[]);
    if enabled {
        assert_eq!(code(&o), 0, "create: {}", stderr(&o));
        ok(&b.oci(&["start", &id]));
        assert!(eventually(Duration::from_secs(10), || std::fs::read_to_string(&out)
            .is_ok_and(|t| t.contains("unconfined"))));
        ok(&b.oci(&["delete", "--force", &id]));
    } else {
        assert_ne!(code(&o), 0, "created without AppArmor: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("AppArmor is not enabled on this host") && e.lines().count() == 1,
            "{e}"
        );
        assert!(!b.state_root.join(&id).exists(), "state left behind");
    }
}

#[test]
fn a_host_directory_passed_in_opens_nothing_outside_the_root() {
    // An engine passes descriptor 3, a host directory (--preserve-fds 1):
    // the mount namespace does not stop `openat` beneath it; Landlock does.
    let b = Bundle::new(
        "oci-leak",
        Caller::Root,
        &[
            "sh",
            "-c",
            "cat /proc/self/fd/3/hostname && echo read; ls /proc/self/fd/3 >/dev/null && echo listed; echo done",
        ],
    );
    let id = container_id("leak");
    let script = format!(
        "exec 3</etc && exec {} --root {} run --preserve-fds 1 --bundle {} {id}",
        binary().display(),
        b.state_root.display(),
        b.dir.str()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "done\n", "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

#[test]
fn an_exec_d_process_signals_the_containers_own() {
    // One Landlock domain for the program and every exec'd process. (The
    // program is pid 1, which takes no SIGTERM it has no handler for: a
    // child of it is signalled.)
    let b = Bundle::new("oci-exec-kill", Caller::Root, &["sh", "-c", "sleep 307; exit 0"]);
    let id = container_id("exec-kill");
    b.running(&id);
    // The program's child exists (running means the program has started).
    assert!(eventually(Duration::from_secs(10), || !processes_with("sleep 307").is_empty()));
    let script =
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = sleep ] && kill -TERM ${p#/proc/} && echo sent; done";
    let o = b.oci(&["exec", &id, "sh", "-c", script]);
    assert_eq!(stdout(&o), "sent\n", "{}", stderr(&o));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    ok(&b.oci(&["delete", &id]));
}

#[test]
fn a_host_device_node_is_shown_where_asked() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "this test needs the host's /dev/fuse (c 10:229)"
    );
    let b = Bundle::new(
        "oci-device",
        Caller::Root,
        &[
            "sh",
            "-c",
            "test -c /dev/fuse && ls /dev/fuse && test ! -e /dev/kvm && echo only-it",
        ],
    );
    b.edit(|c| {
        c["linux"]["devices"] = serde_json::json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
        c["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]);
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("device")]);
    assert_eq!(stdout(&o), "/dev/fuse\nonly-it\n", "{}", stderr(&o));
}

#[test]
fn a_created_container_can_be_deleted_without_force() {
    let b = Bundle::new("oci-created", Caller::Root, &["echo", "never"]);
    let id = container_id("created");
    let (o, out_path) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["delete", &id]));
    assert!(!b.state_root.join(&id).exists());
    assert!(!std::fs::read_to_string(out_path).unwrap().contains("never"));
}

#[test]
fn unsupported_fields_are_refused_by_name() {
    let b = Bundle::new("oci-refuse", Caller::Root, &["true"]);
    for (edit, needle) in [
        (
            serde_json::json!({"linux": {"devices": [{"path": "/dev/xvisor-none", "type": "c", "major": 10, "minor": 229}]}}),
            "linux.devices[0]: device /dev/xvisor-none: no such node on the host",
        ),
        (
            serde_json::json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_RT"}}}),
            "process.ioPriority",
        ),
        (
            serde_json::json!({"linux": {"intelRdt": {"closID": "x"}}}),
            "linux.intelRdt",
        ),
        (
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount", "path": "/proc/1/ns/mnt"}]}}),
            "linux.namespaces[2].path: joining an existing mount namespace is not supported",
        ),
        // The host's pid or IPC namespace (Kubernetes' hostPID, hostIPC):
        // refused, not narrowed to the instance's own.
        (
            serde_json::json!({"linux": {"namespaces": [{"type": "ipc"}, {"type": "mount"}]}}),
            "linux.namespaces: no pid namespace: sharing the host's (hostPID) is not supported",
        ),
        (
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}),
            "linux.namespaces: no ipc namespace: sharing the host's (hostIPC) is not supported",
        ),
        // hostIPC by another name: the runtime's own IPC namespace by path.
        (
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                {"type": "ipc", "path": format!("/proc/{}/ns/ipc", std::process::id())}]}}),
            "is the runtime's own ipc namespace (the host's): sharing it (hostIPC) is not supported",
        ),
        (
            serde_json::json!({"linux": {"personality": {"domain": "LINUX32"}}}),
            "linux.personality",
        ),
    ] {
        let backup = std::fs::read_to_string(b.dir.join("config.json")).unwrap();
        b.edit(|c| merge(c, &edit));
        let id = container_id("refuse");
        let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
        assert_eq!(code(&o), 1, "{needle}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
        assert!(!b.state_root.join(&id).exists());
        std::fs::write(b.dir.join("config.json"), backup).unwrap();
    }
}

#[test]
fn rlimits_above_the_hard_limit_are_refused_clearly() {
    let b = Bundle::new("oci-rlimit", Caller::Root, &["true"]);
    b.edit(|c| {
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1u64 << 40, "soft": 1024}]);
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("rlimit")]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("RLIMIT_NOFILE hard limit"), "{}", stderr(&o));
}

#[test]
fn the_bundle_config_reaches_the_guest() {
    let b = Bundle::new(
        "oci-config",
        Caller::Root,
        &["sh", "-c", "hostname; echo $GREETING; pwd; ulimit -n; cat /data/f; touch /data/g 2>/dev/null || echo ro; cat /proc/kcore | wc -c; ls /scratch"],
    );
    let data = TempDir::new("oci-data");
    std::fs::write(data.join("f"), "from the host\n").unwrap();
    b.edit(|c| {
        c["hostname"] = Value::from("box");
        c["process"]["env"].as_array_mut().unwrap().push(Value::from("GREETING=hi"));
        c["process"]["cwd"] = Value::from("/tmp");
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["mounts"].as_array_mut().unwrap().extend([
            serde_json::json!({"destination": "/data", "type": "bind", "source": data.str(), "options": ["rbind", "ro"]}),
            serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        ]);
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("config")]);
    assert_eq!(
        stdout(&o),
        "box\nhi\n/tmp\n256\nfrom the host\nro\n0\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_engines_seccomp_profile_stacks_with_xvisors_policy() {
    let b = Bundle::new(
        "oci-seccomp",
        Caller::Root,
        &[
            "sh",
            "-c",
            "mkdir /tmp/d 2>&1; echo mkdir $?; unshare -U true 2>&1; echo unshare $?; uname -s",
        ],
    );
    b.edit(|c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        });
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("seccomp")]);
    let out = stdout(&o);
    // The profile's refusal, with its errno (EACCES) …
    assert!(out.contains("Permission denied\nmkdir 1\n"), "{out}{}", stderr(&o));
    // … xvisor's own, which the profile allows (a new user namespace) …
    assert!(out.contains("unshare 1\n"), "{out}");
    assert!(!out.contains("unshare 0"), "{out}");
    // … and a rule on an argument: uname(NULL) refused, uname(buf) not.
    assert!(out.ends_with("Linux\n"), "{out}");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let b = Bundle::new("oci-seccomp-bad", Caller::Root, &["true"]);
    b.edit(|c| c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("seccomp-bad")]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn features_and_spec_are_json() {
    let o = run(Caller::Root, &["features"]);
    let f: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    let dir = TempDir::new("oci-spec");
    ok(&run(Caller::Root, &["spec", "--bundle", dir.str()]));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    let o = run(Caller::Root, &["spec", "--bundle", dir.str()]);
    assert_eq!(code(&o), 1, "an existing config.json is kept");
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl Bundle {
    /// A container created and started here, running `sleep 300`.
    fn running(&self, id: &str) {
        let (o, _) = self.create(id, &[]);
        assert_eq!(code(&o), 0, "create: {}", stderr(&o));
        ok(&self.oci(&["start", id]));
        assert_eq!(self.status(id), "running");
    }
}

/// Host pids of live processes whose command line is exactly `cmdline`.
fn pids_running(cmdline: &str) -> Vec<i32> {
    processes_with(cmdline)
        .iter()
        .filter(|line| line.split_once(": ").is_some_and(|(_, c)| c.trim_end() == cmdline))
        .filter_map(|line| line.split(':').next()?.parse().ok())
        .collect()
}

fn exec_output_and_exit_code(caller: Caller) {
    let b = Bundle::new("oci-exec", caller, &["sleep", "300"]);
    let id = container_id(if caller == Caller::Root { "exec" } else { "exec-nobody" });
    b.running(&id);
    let o = b.oci(&["exec", &id, "sh", "-c", "echo hello; id -u; echo oops >&2; exit 3"]);
    assert_eq!(code(&o), 3, "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n0\n");
    assert_eq!(stderr(&o), "oops\n");
    // Standard input is the caller's.
    let o = run_with_input(caller, &b.global(&["exec", &id, "cat"]), b"through\n");
    assert_eq!(stdout(&o), "through\n", "{}", stderr(&o));
    // Killed by a signal: 128+N.
    let o = b.oci(&["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    // A program that does not exist: one line.
    let o = b.oci(&["exec", &id, "no-such-program"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no-such-program: command not found"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(b.status(&id), "running", "the container lives on");
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn exec_prints_output_and_exit_code_as_root() {
    exec_output_and_exit_code(Caller::Root);
}

#[test]
fn exec_prints_output_and_exit_code_rootless() {
    exec_output_and_exit_code(Caller::Unprivileged);
}

#[test]
fn exec_takes_env_cwd_and_user_and_inherits_the_rest() {
    let b = Bundle::new("oci-exec-env", Caller::Root, &["sleep", "300"]);
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(Value::from("GREETING=hi"));
        c["process"]["cwd"] = Value::from("/root");
    });
    let id = container_id("exec-env");
    b.running(&id);
    let script = "echo $GREETING $EXTRA; pwd; id -u; id -g";
    let o = b.oci(&["exec", &id, "sh", "-c", script]);
    assert_eq!(stdout(&o), "hi\n/root\n0\n0\n", "{}", stderr(&o));
    let o = b.oci(&[
        "exec",
        "--env",
        "EXTRA=more",
        "-e",
        "GREETING=hello",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        &id,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(stdout(&o), "hello more\n/tmp\n1000\n1001\n", "{}", stderr(&o));
    // A process.json says everything (runc's --process).
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "terminal": false,
            "user": {"uid": 7, "gid": 8},
            "args": ["sh", "-c", "echo $ONLY $GREETING; pwd; id -u; id -g"],
            "env": ["PATH=/bin", "ONLY=this"],
            "cwd": "/tmp"
        })
        .to_string(),
    )
    .unwrap();
    let o = b.oci(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(stdout(&o), "this\n/tmp\n7\n8\n", "{}", stderr(&o));
    // Capabilities: the container's set, and --cap adds any (inside the
    // container's user namespace); a name that is none is refused.
    let o = b.oci(&["exec", "--cap", "CAP_SYS_ADMIN", &id, "sh", "-c", "exit 0"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = b.oci(&["exec", "--cap", "CAP_NO_SUCH_THING", &id, "sh", "-c", "exit 0"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("CAP_NO_SUCH_THING: not a capability"),
        "{}",
        stderr(&o)
    );
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn exec_detached_writes_a_pid_file_and_the_process_is_a_member() {
    let b = Bundle::new("oci-exec-detach", Caller::Root, &["sleep", "300"]);
    let id = container_id("exec-detach");
    b.running(&id);
    let pid_file = b.dir.join("exec.pid");
    // The process keeps the caller's stdout and stderr: files, not pipes
    // this test would wait on.
    let out_path = b.dir.join("detach.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let started = std::time::Instant::now();
    let status = xvisor(
        Caller::Root,
        &b.global(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "271",
        ]),
    )
    .stdin(Stdio::null())
    .stdout(out.try_clone().unwrap())
    .stderr(out)
    .status()
    .unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(&out_path).unwrap());
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "",
        "detached exec prints nothing"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "returns at once");
    let waiter: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{waiter}")).exists(), "the waiter runs");
    // The process is in the container: ps lists its host pid, and the
    // monitor's task table has it.
    let host = pids_running("sleep 271");
    assert_eq!(host.len(), 1, "{host:?}");
    let pids: Vec<i32> = serde_json::from_str(&ok(&b.oci(&["ps", "--format", "json", &id]))).unwrap();
    assert!(pids.contains(&host[0]), "{pids:?} lacks {host:?}");
    let table = ok(&run(Caller::Root, &["ps", &id, "--json"]));
    assert!(table.contains("sleep 271"), "the monitor's task table: {table}");
    // A signal to the waiter reaches the process; the waiter ends with it.
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &waiter.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(
        eventually(Duration::from_secs(10), || pids_running("sleep 271").is_empty()),
        "the process got SIGTERM"
    );
    assert!(eventually(Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{waiter}/stat")).unwrap_or_default();
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    }));
    // The container's end kills exec'd processes.
    let status = xvisor(Caller::Root, &b.global(&["exec", "-d", &id, "sleep", "272"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(pids_running("sleep 272").len(), 1);
    ok(&b.oci(&["kill", &id, "KILL"]));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    assert!(eventually(Duration::from_secs(5), || pids_running("sleep 272").is_empty()));
    ok(&b.oci(&["delete", &id]));
}

#[test]
fn exec_into_a_container_that_is_not_running_fails_clearly() {
    let b = Bundle::new("oci-exec-stopped", Caller::Root, &["sh", "-c", "exit 0"]);
    let missing = container_id("exec-missing");
    let o = b.oci(&["exec", &missing, "true"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    let id = container_id("exec-stopped");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    let o = b.oci(&["exec", &id, "true"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("created, not running"), "{}", stderr(&o));
    ok(&b.oci(&["start", &id]));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    let o = b.oci(&["exec", &id, "true"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("stopped, not running"), "{}", stderr(&o));
    ok(&b.oci(&["delete", &id]));
}

#[test]
fn exec_is_served_by_the_strict_profile_too() {
    let b = Bundle::new("oci-exec-strict", Caller::Root, &["sleep", "300"]);
    b.edit(|c| c["annotations"] = serde_json::json!({"dev.xvisor.profile": "strict"}));
    let id = container_id("exec-strict");
    b.running(&id);
    // Every call of the exec'd process is trapped: it only gets this far if
    // the supervisor serves its listener.
    for n in 0..3 {
        let o = b.oci(&["exec", &id, "sh", "-c", &format!("echo round {n}; ls / >/dev/null")]);
        assert_eq!(stdout(&o), format!("round {n}\n"), "{}", stderr(&o));
    }
    // Under strict, even the filter's refusals come from the supervisor.
    let o = b.oci(&["exec", &id, "sh", "-c", "echo $$"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn a_killed_exec_client_leaves_nothing_stuck() {
    let b = Bundle::new("oci-exec-client", Caller::Root, &["sleep", "300"]);
    let id = container_id("exec-client");
    b.running(&id);
    let mut client = xvisor(Caller::Root, &b.global(&["exec", &id, "sleep", "273"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || pids_running("sleep 273").len() == 1));
    client.kill().unwrap();
    client.wait().unwrap();
    // The supervisor answers the next one at once.
    let o = b.oci(&["exec", &id, "echo", "still served"]);
    assert_eq!(stdout(&o), "still served\n", "{}", stderr(&o));
    assert_eq!(b.status(&id), "running");
    ok(&b.oci(&["delete", "--force", &id]));
    assert!(eventually(Duration::from_secs(5), || pids_running("sleep 273").is_empty()));
}

/// What an engine does when an exec runs past its timeout (containerd's
/// ExecSync, a Kubernetes exec probe): SIGKILL to the pid in exec's
/// --pid-file, then read the exec's output to its end. The program, and
/// what it started, must end with that pid, or the output never closes.
#[test]
fn killing_the_exec_pid_file_pid_ends_the_program_and_its_output() {
    use std::io::Read;
    let b = Bundle::new("oci-exec-timeout", Caller::Root, &["sleep", "300"]);
    let id = container_id("exec-timeout");
    b.running(&id);
    let pid_file = b.dir.join("exec.pid");
    let (mut output, write_end) = std::io::pipe().unwrap();
    let status = xvisor(
        Caller::Root,
        &b.global(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "sleep 4321 & echo started; exec sleep 4322",
        ]),
    )
    .stdin(Stdio::null())
    .stdout(write_end.try_clone().unwrap())
    .stderr(write_end)
    .status()
    .unwrap();
    assert!(status.success());
    let mut started = [0u8; 8];
    output.read_exact(&mut started).unwrap();
    assert_eq!(&started, b"started\n");
    assert!(eventually(Duration::from_secs(10), || {
        pids_running("sleep 4321").len() == 1 && pids_running("sleep 4322").len() == 1
    }));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // The output reaches its end within a second: nothing holds it open.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = output.read_to_end(&mut rest);
        let _ = done.send(rest);
    });
    let rest = finished
        .recv_timeout(Duration::from_secs(1))
        .expect("the exec's output is still open a second after its pid-file pid was killed");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        eventually(Duration::from_secs(5), || pids_running("sleep 4321").is_empty()
            && pids_running("sleep 4322").is_empty()),
        "processes of the killed exec are left"
    );
    assert_eq!(b.status(&id), "running", "the container lives on");
    ok(&b.oci(&["delete", "--force", &id]));
}

/// A set-uid program owned by a mapped user other than root, in the
/// bundle's root: it runs with its owner's uid exactly when config.json's
/// noNewPrivileges is false (runtime-tools' and Kubernetes' nonewprivs).
#[test]
fn no_new_privileges_is_as_the_config_says() {
    require_root();
    // Static: the bundle's root is busybox, without a C library.
    let program = TempDir::new("euid");
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(program.join("euid"))
        .arg(format!("{}/tests/programs/euid.c", env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("gcc (and libc6-dev) are needed");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    for (no_new_privileges, expected) in [(false, "1000"), (true, "2000")] {
        let b = Bundle::new("oci-nnp", Caller::Root, &["/euid"]);
        let target = b.dir.join("rootfs").join("euid");
        std::fs::copy(program.join("euid"), &target).unwrap();
        std::os::unix::fs::chown(&target, Some(1000), Some(1000)).unwrap();
        set_mode(&target, 0o4755);
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = Value::Bool(no_new_privileges);
            c["process"]["user"] = serde_json::json!({"uid": 2000, "gid": 2000});
        });
        let id = container_id(&format!("nnp-{no_new_privileges}"));
        b.created.borrow_mut().push(id.clone());
        let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
        assert_eq!(
            stdout(&o).trim(),
            expected,
            "noNewPrivileges {no_new_privileges}: {}",
            stderr(&o)
        );
    }
}

/// Rootless too: init holds CAP_SYS_ADMIN of the instance's user namespace,
/// which is what the filters need without no_new_privs. An exec'd process
/// follows the container's setting unless told (`--no-new-privs`).
#[test]
fn no_new_privileges_can_be_left_off_rootless() {
    for (no_new_privileges, expected) in [(false, "NoNewPrivs:\t0"), (true, "NoNewPrivs:\t1")] {
        let b = Bundle::new("oci-nnp-rootless", Caller::Unprivileged, &["sleep", "300"]);
        b.applets(&["grep"]);
        b.edit(|c| c["process"]["noNewPrivileges"] = Value::Bool(no_new_privileges));
        let id = container_id(&format!("nnp-rootless-{no_new_privileges}"));
        b.running(&id);
        let o = b.oci(&["exec", &id, "grep", "NoNewPrivs", "/proc/1/status"]);
        // init (pid 1) too: every process it starts inherits its flag.
        assert_eq!(stdout(&o).trim(), expected, "init: {}", stderr(&o));
        let o = b.oci(&["exec", &id, "grep", "NoNewPrivs", "/proc/self/status"]);
        assert_eq!(stdout(&o).trim(), expected, "{}", stderr(&o));
        let o = b.oci(&["exec", "--no-new-privs", &id, "grep", "NoNewPrivs", "/proc/self/status"]);
        assert_eq!(stdout(&o).trim(), "NoNewPrivs:\t1", "{}", stderr(&o));
        ok(&b.oci(&["delete", "--force", &id]));
    }
}

/// config.json's capabilities, any of them, are the instance's own: the
/// filter and the supervisor still decide every call.
#[test]
fn a_privileged_set_of_capabilities_stays_inside_the_instance() {
    require_root();
    let script = "grep CapEff /proc/self/status; \
        mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; \
        umount /proc/kcore 2>/dev/null && echo UNMASKED; \
        rmmod no_such_module 2>&1 | grep -q 'Operation not permitted' && echo NO-MODULE; \
        ip link set lo mtu 1300 && ip link show lo | grep -q 'mtu 1300' && echo OWN-NET; \
        hostname changed && echo OWN-UTS; \
        date -s '2020-01-01 00:00:00' 2>&1 | grep -q \"can't set date\" && echo NO-CLOCK; \
        unshare -U true 2>/dev/null || echo NO-USERNS; \
        nsenter -t 1 -m true 2>/dev/null || echo NO-SETNS";
    let b = Bundle::new("oci-privileged", Caller::Root, &["sh", "-c", script]);
    b.applets(&[
        "mount", "umount", "rmmod", "ip", "grep", "hostname", "date", "unshare", "nsenter", "true",
    ]);
    b.edit(|c| {
        let names = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
            "CAP_PERFMON",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        ]
        .to_vec();
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": names, "effective": names, "permitted": names
        });
        c["process"]["noNewPrivileges"] = Value::Bool(false);
    });
    let id = container_id("privileged");
    b.created.borrow_mut().push(id.clone());
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    let out = stdout(&o);
    let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let full = format!("{:016x}", (1u64 << (last_cap + 1)) - 1);
    assert!(out.contains(&full), "every capability, inside: {out}{}", stderr(&o));
    assert!(!out.contains("MOUNTED"), "CAP_SYS_ADMIN inside mounted: {out}");
    assert!(!out.contains("UNMASKED"), "CAP_SYS_ADMIN inside unmasked a path: {out}");
    assert!(out.contains("NO-MODULE"), "CAP_SYS_MODULE: {out}{}", stderr(&o));
    assert!(
        out.contains("OWN-NET"),
        "CAP_NET_ADMIN in its own network namespace: {out}{}",
        stderr(&o)
    );
    assert!(out.contains("OWN-UTS"), "{out}{}", stderr(&o));
    assert!(out.contains("NO-CLOCK"), "CAP_SYS_TIME set the host's clock: {out}");
    assert!(out.contains("NO-USERNS"), "CAP_SYS_ADMIN made a user namespace: {out}");
    assert!(
        out.contains("NO-SETNS"),
        "CAP_SYS_ADMIN entered init's namespaces: {out}"
    );
}

/// CAP_NET_ADMIN reaches the instance's own network namespace only: not
/// one it joins (a pod's, made by the host).
#[test]
fn net_admin_inside_does_not_reach_a_joined_network_namespace() {
    require_root();
    let ns = format!("xvisor-netadmin-{}", std::process::id());
    host(&["ip", "netns", "add", &ns]);
    let b = Bundle::new(
        "oci-netadmin",
        Caller::Root,
        &["sh", "-c", "ip link set lo mtu 1300 2>&1; ip link show lo"],
    );
    b.applets(&["ip"]);
    b.edit(|c| {
        let names = vec!["CAP_NET_ADMIN", "CAP_SYS_ADMIN"];
        c["process"]["capabilities"] = serde_json::json!({"bounding": names, "effective": names, "permitted": names});
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = Value::from(format!("/run/netns/{ns}"));
            }
        }
    });
    let id = container_id("netadmin");
    b.created.borrow_mut().push(id.clone());
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    host(&["ip", "netns", "delete", &ns]);
    let out = stdout(&o);
    assert!(out.contains("Operation not permitted"), "{out}{}", stderr(&o));
    assert!(!out.contains("mtu 1300"), "{out}");
}

/// Runs a container whose bind of a fresh tmpfs has `propagation`, in a
/// mount namespace of this test's own (`unshare -m`: the host's mounts are
/// not touched, and everything mounted goes with it): the tmpfs is made
/// shared when `shared`, and after `start` the host mounts another tmpfs
/// below it. Returns the script's status and what the container printed:
/// the file on the late mount, or why not.
fn a_late_host_mount_in(propagation: &str, shared: bool) -> (i32, String) {
    require_root();
    let b = Bundle::new(
        "oci-rslave",
        Caller::Root,
        &[
            "sh",
            "-c",
            "i=0; while ! test -e /vol/go && test $i -lt 100; do sleep 0.1; i=$((i+1)); done; cat /vol/late/flag 2>&1",
        ],
    );
    let source = b.dir.join("source");
    std::fs::create_dir(&source).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/vol", "type": "bind", "source": source, "options": ["rbind", propagation]
        }));
    });
    let id = container_id(&format!("rslave-{propagation}"));
    b.created.borrow_mut().push(id.clone());
    let script = r#"
        mount -t tmpfs vol "$SRC" || exit 9
        if [ "$SHARED" = 1 ]; then mount --make-shared "$SRC" || exit 9; fi
        "$X" --root "$ROOT" create --bundle "$B" "$ID" >"$OUT" 2>&1 </dev/null || { cat "$OUT"; exit 3; }
        "$X" --root "$ROOT" start "$ID" || exit 4
        mkdir "$SRC/late" && mount -t tmpfs late "$SRC/late" && echo mounted-after-start >"$SRC/late/flag" || exit 9
        touch "$SRC/go"
        i=0
        until case $("$X" --root "$ROOT" state "$ID") in *'"stopped"'*) true ;; *) false ;; esac; do
            i=$((i+1)); [ $i -lt 200 ] || exit 5; sleep 0.1
        done
        "$X" --root "$ROOT" delete "$ID"
        cat "$OUT"
    "#;
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("X", binary())
        .env("ROOT", &b.state_root)
        .env("B", b.dir.path())
        .env("ID", &id)
        .env("SRC", &source)
        .env("OUT", b.dir.join("out"))
        .env("SHARED", if shared { "1" } else { "0" })
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(code(&o), 9, "setting up the test's mounts failed: {}", stderr(&o));
    (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn an_rslave_bind_receives_what_the_host_mounts_below_it_after_start() {
    let (status, out) = a_late_host_mount_in("rslave", true);
    assert_eq!((status, out.as_str()), (0, "mounted-after-start\n"));
}

#[test]
fn a_private_bind_is_a_copy_fixed_at_start() {
    let (status, out) = a_late_host_mount_in("rprivate", true);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("No such file"), "{out}");
}

#[test]
fn an_rslave_bind_of_a_private_host_mount_is_refused_at_create() {
    let (status, out) = a_late_host_mount_in("rslave", false);
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("rslave") && out.contains("private"), "{out}");
}

#[test]
fn exec_into_an_instance_by_name() {
    let name = format!("exec-by-name-{}", std::process::id());
    let mut instance = xvisor(Caller::Root, &["run", "--name", &name, "--", "sleep", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || run(Caller::Root, &["ps"])
        .stdout
        .windows(name.len())
        .any(|w| w == name.as_bytes())));
    let o = run(
        Caller::Root,
        &["exec", "-e", "X=1", &name, "--", "sh", "-c", "echo $X; exit 5"],
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n");
    ok(&run(Caller::Root, &["kill", &name, "KILL"]));
    instance.wait().unwrap();
    let o = run(Caller::Root, &["exec", &name, "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no running instance"), "{}", stderr(&o));
}

/// Runs a host command that a test needs, failing the test with its output.
fn host(args: &[&str]) {
    let o = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Namespaces made for a test, removed when it ends: a network namespace
/// (`ip netns`) whose loopback is up with an address of its own, and IPC and UTS namespaces kept
/// alive by bind mounts on files in a temporary directory.
struct PodNamespaces {
    netns: String,
    dir: TempDir,
}

impl PodNamespaces {
    fn new(tag: &str) -> Self {
        require_root();
        let netns = format!("xvt-{tag}-{}", std::process::id());
        let dir = TempDir::new(&format!("oci-ns-{tag}"));
        let pod = Self { netns, dir };
        host(&["ip", "netns", "add", &pod.netns]);
        host(&["ip", "-n", &pod.netns, "addr", "add", "10.213.7.1/32", "dev", "lo"]);
        host(&["ip", "-n", &pod.netns, "link", "set", "lo", "up"]);
        std::fs::write(pod.ipc(), "").unwrap();
        std::fs::write(pod.uts(), "").unwrap();
        let ipc = format!("--ipc={}", pod.ipc().display());
        let uts = format!("--uts={}", pod.uts().display());
        host(&[
            "unshare",
            &ipc,
            &uts,
            "sh",
            "-c",
            "hostname pod-host && ipcmk -Q >/dev/null",
        ]);
        pod
    }

    fn net(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }

    fn ipc(&self) -> PathBuf {
        self.dir.join("ipc")
    }

    fn uts(&self) -> PathBuf {
        self.dir.join("uts")
    }
}

impl Drop for PodNamespaces {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        for f in [self.ipc(), self.uts()] {
            let _ = std::process::Command::new("umount").arg(&f).status();
        }
    }
}

#[test]
fn joins_network_ipc_and_uts_namespaces_by_path() {
    let pod = PodNamespaces::new("join");
    let b = Bundle::new(
        "oci-join",
        Caller::Root,
        &["sh", "-c", "ip addr show lo; hostname; cat /proc/sysvipc/msg"],
    );
    b.applets(&["hostname", "ip"]);
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "cgroup"},
            {"type": "network", "path": pod.net()},
            {"type": "ipc", "path": pod.ipc()},
            {"type": "uts", "path": pod.uts()},
        ]);
        // A network setting of the joined namespace, as podman asks.
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 0"});
    });
    let id = container_id("join");
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("inet 10.213.7.1/32"),
        "the joined network namespace's loopback: {out}"
    );
    assert!(out.contains("\npod-host\n"), "the joined UTS namespace's name: {out}");
    let queues = out.lines().skip_while(|l| !l.contains("msqid")).count();
    assert_eq!(queues, 2, "the joined IPC namespace's message queue: {out}");
    let range = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pod.netns,
            "cat",
            "/proc/sys/net/ipv4/ping_group_range",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&range.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"]
    );
    assert!(!b.state_root.join(&id).exists());
    assert!(processes_with(&id).is_empty(), "no process left");
}

#[test]
fn a_hostname_is_set_in_a_joined_uts_namespace() {
    let pod = PodNamespaces::new("utsname");
    let b = Bundle::new("oci-utsname", Caller::Root, &["sh", "-c", "hostname"]);
    b.applets(&["hostname"]);
    b.edit(|c| {
        c["hostname"] = Value::from("given-name");
        c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": pod.uts()});
    });
    let id = container_id("utsname");
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // (/etc/hostname is the engine's to mount, as with runc.)
    assert_eq!(stdout(&o), "given-name\n");
    // The name belongs to the joined namespace, as runtime-spec says.
    let uts = format!("--uts={}", pod.uts().display());
    let o = std::process::Command::new("nsenter")
        .args([uts.as_str(), "hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "given-name\n");
    assert!(!b.state_root.join(&id).exists());
}

#[test]
fn a_namespace_path_of_another_kind_is_refused() {
    require_root();
    let b = Bundle::new("oci-nskind", Caller::Root, &["true"]);
    let not_a_namespace = b.dir.join("config.json");
    let uts = PathBuf::from(format!("/proc/{}/ns/uts", std::process::id()));
    for (path, needle) in [
        (
            uts.clone(),
            &*format!(
                "linux.namespaces[1].path: {}: is a uts namespace, not a network namespace",
                uts.display()
            ),
        ),
        (
            not_a_namespace.clone(),
            &*format!(
                "linux.namespaces[1].path: {}: not a namespace file",
                not_a_namespace.display()
            ),
        ),
        (
            PathBuf::from("/nonexistent/netns"),
            "linux.namespaces[1].path: /nonexistent/netns: cannot open it",
        ),
    ] {
        b.edit(|c| c["linux"]["namespaces"][1] = serde_json::json!({"type": "network", "path": path}));
        let id = container_id("nskind");
        let (o, _) = b.create(&id, &[]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
        assert!(!b.state_root.join(&id).exists());
    }
}

fn an_engines_id_maps_are_the_user_namespaces(caller: Caller) {
    // As root any ranges; rootless only the caller's own id (nobody here).
    let (host, size) = if caller == Caller::Root {
        (100_000, 65_536)
    } else {
        (NOBODY, 1)
    };
    let b = Bundle::new(
        "oci-idmap",
        caller,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /made",
        ],
    );
    chown_tree(&b.dir.join("rootfs").canonicalize().unwrap(), host);
    b.edit(|c| {
        c["root"]["readonly"] = Value::Bool(false);
        map_ids(c, host, size);
    });
    let id = container_id(if caller == Caller::Root {
        "idmap"
    } else {
        "idmap-nobody"
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    let expected = vec!["0".to_string(), host.to_string(), size.to_string()];
    assert_eq!(lines[0], expected, "{out}");
    assert_eq!(lines[1], expected, "{out}");
    assert_eq!(lines[2], ["0"], "{out}");
    // The container's root is `host` outside.
    let made = std::fs::metadata(b.dir.join("rootfs/made")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&made), host);
}

#[test]
fn an_engines_id_maps_are_the_user_namespaces_as_root() {
    an_engines_id_maps_are_the_user_namespaces(Caller::Root);
}

#[test]
fn an_engines_id_maps_are_the_user_namespaces_rootless() {
    an_engines_id_maps_are_the_user_namespaces(Caller::Unprivileged);
}

/// Gives the container `size` uids and gids from 0, at `host` outside.
fn map_ids(c: &mut Value, host: u32, size: u32) {
    let range = serde_json::json!([{"containerID": 0, "hostID": host, "size": size}]);
    c["linux"]["uidMappings"] = range.clone();
    c["linux"]["gidMappings"] = range;
}

#[test]
fn exec_runs_as_any_user_of_an_engines_id_maps_and_no_other() {
    let b = Bundle::new("oci-idmap-exec", Caller::Root, &["sleep", "300"]);
    chown_tree(&b.dir.join("rootfs").canonicalize().unwrap(), 100_000);
    b.edit(|c| {
        map_ids(c, 100_000, 65_536);
    });
    let id = container_id("idmap-exec");
    b.running(&id);
    let o = b.oci(&["exec", "--user", "1000:1001", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!(stdout(&o), "1000\n1001\n", "{}", stderr(&o));
    let o = b.oci(&["exec", "--user", "70000:0", &id, "id"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("not mapped by the container's linux.uidMappings"),
        "{}",
        stderr(&o)
    );
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn rootless_id_maps_beyond_the_callers_own_id_are_refused() {
    let b = Bundle::new("oci-idmap-refused", Caller::Unprivileged, &["true"]);
    b.edit(|c| {
        map_ids(c, 100_000, 65_536);
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("idmap-refused")]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("linux.uidMappings: without root only the caller's own uid"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn joining_a_namespace_rootless_is_refused_with_the_reason() {
    let pod = PodNamespaces::new("rootless");
    let b = Bundle::new("oci-join-nobody", Caller::Unprivileged, &["true"]);
    b.edit(|c| c["linux"]["namespaces"][1] = serde_json::json!({"type": "network", "path": pod.net()}));
    let id = container_id("join-nobody");
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("linux.namespaces[1].path") && err.contains("cannot join it") && err.contains("CAP_SYS_ADMIN"),
        "{err}"
    );
}

/// A hook that records its standard input (the state) in DIR/NAME.json,
/// and its host name and its kind in DIR/order.
fn recording_hook(dir: &str, name: &str) -> Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} $(hostname) >> {dir}/order")],
        "env": ["PATH=/usr/bin:/bin"],
        "timeout": 10
    })
}

#[test]
fn hooks_run_at_their_points_with_the_state() {
    require_root();
    let b = Bundle::new(
        "oci-hooks",
        Caller::Root,
        &[
            "sh",
            "-c",
            "test -f /hooks/startContainer.json && echo program >> /hooks/order; sleep 30",
        ],
    );
    b.applets(&["hostname"]);
    let out = b.dir.join("hooks");
    std::fs::create_dir(&out).unwrap();
    let out = out.to_str().unwrap().to_string();
    b.edit(|c| {
        c["hostname"] = Value::from("hooked");
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/hooks", "type": "bind", "source": out, "options": ["rbind"]}));
        c["hooks"] = serde_json::json!({
            "prestart": [recording_hook(&out, "prestart")],
            "createRuntime": [recording_hook(&out, "createRuntime")],
            "createContainer": [recording_hook(&out, "createContainer")],
            // Resolved and run inside the container: its root, its /hooks.
            "startContainer": [recording_hook("/hooks", "startContainer")],
            "poststart": [recording_hook(&out, "poststart")],
            "poststop": [recording_hook(&out, "poststop")],
        });
    });
    let read = |name: &str| std::fs::read_to_string(Path::new(&out).join(name)).unwrap_or_default();
    let state = |name: &str| -> Value { serde_json::from_str(&read(&format!("{name}.json"))).unwrap() };
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_name = host_name.trim();
    let id = container_id("hooks");
    let pid_file = b.dir.join("pid");
    let (o, _) = b.create(&id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    assert_eq!(
        read("order"),
        format!("prestart {host_name}\ncreateRuntime {host_name}\ncreateContainer hooked\n"),
        "runtime hooks in the host's namespaces, createContainer in the container's"
    );
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    for name in ["prestart", "createRuntime", "createContainer"] {
        let s = state(name);
        assert_eq!(
            (s["id"].as_str(), s["status"].as_str()),
            (Some(id.as_str()), Some("creating")),
            "{name}: {s}"
        );
        assert_eq!(s["pid"].as_i64(), Some(pid), "{name}: {s}");
        assert_eq!(Path::new(s["bundle"].as_str().unwrap()), b.dir.path());
    }
    ok(&b.oci(&["start", &id]));
    // poststart has run when start returns.
    assert_eq!(state("poststart")["status"], "running");
    assert_eq!(state("startContainer")["status"], "created");
    assert!(eventually(Duration::from_secs(5), || read("order").contains("program")));
    let order = read("order");
    let lines: Vec<&str> = order.lines().collect();
    let runtime = |kind: &str| format!("{kind} {host_name}");
    assert_eq!(
        lines.get(..4),
        Some(
            &[
                &*runtime("prestart"),
                &*runtime("createRuntime"),
                "createContainer hooked",
                "startContainer hooked"
            ][..]
        ),
        "{order}"
    );
    // The program and poststart run at the same time after that.
    let mut rest: Vec<&str> = lines.get(4..).unwrap_or_default().to_vec();
    rest.sort_unstable();
    assert_eq!(rest, vec![&*runtime("poststart"), "program"], "{order}");
    assert!(!Path::new(&out).join("poststop.json").exists());
    ok(&b.oci(&["delete", "--force", &id]));
    assert_eq!(state("poststop")["status"], "stopped");
    assert!(processes_with(&id).is_empty(), "no process left");
}

#[test]
fn a_failing_or_late_hook_fails_its_operation() {
    require_root();
    let b = Bundle::new("oci-hook-fail", Caller::Root, &["sleep", "30"]);
    let fails = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo no good >&2; exit 3"]});
    let hangs = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 20"], "timeout": 1});
    for (kind, hook, needle) in [
        (
            "createRuntime",
            &fails,
            "hooks.createRuntime[0] (/bin/sh): exited with status 3: no good",
        ),
        (
            "prestart",
            &hangs,
            "hooks.prestart[0] (/bin/sh): did not finish within its timeout of 1 s",
        ),
        (
            "createContainer",
            &fails,
            "hooks.createContainer[0] (/bin/sh): exited with status 3",
        ),
        (
            "startContainer",
            &fails,
            "hooks.startContainer[0] (/bin/sh): exited with status 3",
        ),
        (
            "startContainer",
            &hangs,
            "hooks.startContainer[0] (/bin/sh): did not finish within its timeout",
        ),
        (
            "poststart",
            &fails,
            "hooks.poststart[0] (/bin/sh): exited with status 3: no good",
        ),
    ] {
        b.edit(|c| c["hooks"] = serde_json::json!({ kind: [hook] }));
        let id = container_id(&format!("hookfail-{}", kind.to_lowercase()));
        let (o, _) = b.create(&id, &[]);
        let start_time = matches!(kind, "startContainer" | "poststart");
        if !start_time {
            assert_eq!(code(&o), 1, "{kind}: create should fail");
            let err = stderr(&o);
            assert!(err.contains(needle), "{kind}: {err}");
            assert!(!b.state_root.join(&id).exists(), "{kind}: nothing left");
        } else {
            assert_eq!(code(&o), 0, "{kind}: create: {}", stderr(&o));
            let o = b.oci(&["start", &id]);
            assert_eq!(code(&o), 1, "{kind}: start should fail");
            assert!(stderr(&o).contains(needle), "{kind}: {}", stderr(&o));
            assert!(
                eventually(Duration::from_secs(10), || b.status(&id) == "stopped"),
                "{kind}: the container is stopped"
            );
            ok(&b.oci(&["delete", &id]));
        }
        assert!(processes_with(&id).is_empty(), "{kind}: no process left");
    }
    // A failing poststop hook is a warning: delete succeeds.
    b.edit(|c| c["hooks"] = serde_json::json!({ "poststop": [fails] }));
    let id = container_id("hookfail-poststop");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    let o = b.oci(&["delete", &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: hooks.poststop[0] (/bin/sh): exited with status 3"),
        "{}",
        stderr(&o)
    );
    assert!(!b.state_root.join(&id).exists());
}

fn counter(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require_root();
    let b = Bundle::new(
        "oci-pause",
        Caller::Root,
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /out/counter; sleep 0.02; done",
        ],
    );
    let out = TempDir::new("oci-pause-out");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/out", "type": "bind", "source": out.str(), "options": ["rbind"]}))
    });
    let file = out.join("counter");
    let id = container_id("pause");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    let o = b.oci(&["pause", &id]);
    assert_eq!(code(&o), 1, "a created container is not paused");
    ok(&b.oci(&["start", &id]));
    for round in 0..2 {
        assert!(
            eventually(Duration::from_secs(5), || counter(&file) > 3),
            "round {round}: it counts"
        );
        ok(&b.oci(&["pause", &id]));
        assert_eq!(b.status(&id), "paused");
        let frozen_at = counter(&file);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(counter(&file), frozen_at, "round {round}: no progress while paused");
        let pids: Vec<i32> = serde_json::from_str(&ok(&b.oci(&["ps", "--format", "json", &id]))).unwrap();
        assert!(pids.len() >= 2, "ps while paused: {pids:?}");
        assert_eq!(code(&b.oci(&["pause", &id])), 1, "already paused");
        ok(&b.oci(&["resume", &id]));
        assert_eq!(b.status(&id), "running");
        assert!(
            eventually(Duration::from_secs(5), || counter(&file) > frozen_at + 3),
            "round {round}: it counts again"
        );
        std::fs::write(&file, "0").unwrap();
    }
    assert_eq!(code(&b.oci(&["resume", &id])), 1, "a running container is not resumed");
    // A paused container is killed all the same.
    ok(&b.oci(&["pause", &id]));
    ok(&b.oci(&["kill", &id, "KILL"]));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    ok(&b.oci(&["delete", &id]));
    assert!(!b.state_root.join(&id).exists());
    assert!(cgroup_dirs_named(&id).is_empty(), "no cgroup left");
    assert!(processes_with(&id).is_empty(), "no process left");
}

#[test]
fn delete_force_ends_a_paused_container() {
    require_root();
    let b = Bundle::new("oci-pause-force", Caller::Root, &["sleep", "60"]);
    let id = container_id("pause-force");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["start", &id]));
    ok(&b.oci(&["pause", &id]));
    let o = b.oci(&["delete", &id]);
    assert_eq!(code(&o), 1, "a paused container needs --force");
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));
    ok(&b.oci(&["delete", "--force", &id]));
    assert!(!b.state_root.join(&id).exists());
    assert!(
        eventually(Duration::from_secs(10), || cgroup_dirs_named(&id).is_empty()),
        "no cgroup left"
    );
    assert!(processes_with(&id).is_empty(), "no process left");
}

#[test]
fn pause_rootless_says_why_it_cannot() {
    let b = Bundle::new("oci-pause-nobody", Caller::Unprivileged, &["sleep", "30"]);
    let id = container_id("pause-nobody");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["start", &id]));
    let o = b.oci(&["pause", &id]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no freezer cgroup"), "{}", stderr(&o));
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn a_container_joins_another_containers_namespaces_through_its_pid() {
    // A pod: the sandbox container makes the namespaces; the next joins
    // them at /proc/PID/ns/* of the sandbox's pid, as the CRI does.
    require_root();
    let sandbox = Bundle::new("oci-sandbox", Caller::Root, &["sleep", "30"]);
    sandbox.edit(|c| c["hostname"] = Value::from("sandbox-host"));
    let sandbox_id = container_id("sandbox");
    let pid_file = sandbox.dir.join("pid");
    let (o, _) = sandbox.create(&sandbox_id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&sandbox.oci(&["start", &sandbox_id]));
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    for ns in ["net", "ipc", "uts"] {
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
            "the container's pid names the instance's {ns} namespace, not the host's"
        );
    }
    let member = Bundle::new(
        "oci-member",
        Caller::Root,
        &["sh", "-c", "hostname; ip -o link | wc -l"],
    );
    member.applets(&["hostname", "ip", "wc"]);
    member.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "mount"},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")},
            {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        ]);
    });
    let o = member.oci(&["run", "--bundle", member.dir.str(), &container_id("member")]);
    assert_eq!(
        stdout(&o),
        "sandbox-host\n1\n",
        "the sandbox's name and its network (only lo): {}",
        stderr(&o)
    );
    ok(&sandbox.oci(&["delete", "--force", &sandbox_id]));
}

#[test]
fn the_hosts_pid_namespace_is_not_joined_by_path() {
    // hostPID by another name: a pid namespace of the runtime's own user
    // namespace (this test's) is refused at create, naming the entry.
    require_root();
    let b = Bundle::new("oci-hostpid", Caller::Root, &["true"]);
    let ours = format!("/proc/{}/ns/pid", std::process::id());
    b.edit(|c| c["linux"]["namespaces"][0] = serde_json::json!({"type": "pid", "path": ours}));
    let id = container_id("hostpid");
    let (o, _) = b.create(&id, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "linux.namespaces[0].path: {ours}: belongs to the runtime's own user namespace"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(!b.state_root.join(&id).exists());
}

/// A created and started container's pid file and its supervisor's pid
/// (what `ROOT/ID/state.json` keeps for the runtime).
fn started_with_pids(b: &Bundle, id: &str) -> (i32, i32, PathBuf) {
    let pid_file = b.dir.join(format!("{id}.pid").as_str());
    let (o, out_path) = b.create(id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "create: {}", stderr(&o));
    ok(&b.oci(&["start", id]));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(b.state_root.join(id).join("state.json")).unwrap()).unwrap();
    let supervisor = stored["pid"].as_i64().unwrap() as i32;
    (pid, supervisor, out_path)
}

/// Whether host pid `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn the_state_pid_is_the_program_and_it_is_pid_1() {
    require_root();
    let b = Bundle::new(
        "oci-pid1",
        Caller::Root,
        &["sh", "-c", "echo inside=$$; exec sleep 300"],
    );
    let id = container_id("pid1");
    let (pid, supervisor, out_path) = started_with_pids(&b, &id);
    assert_ne!(pid, supervisor, "the state pid is not the supervisor's");
    let state: Value = serde_json::from_str(&ok(&b.oci(&["state", &id]))).unwrap();
    assert_eq!(state["pid"], pid, "state and --pid-file agree");
    assert!(eventually(Duration::from_secs(10), || std::fs::read(format!(
        "/proc/{pid}/cmdline"
    ))
    .unwrap_or_default()
        == b"sleep\x00300\x00"));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.ends_with("bin/busybox"),
        "the program's executable, not xvisor's: {exe:?}"
    );
    assert_eq!(std::fs::read_to_string(out_path).unwrap(), "inside=1\n", "pid 1 inside");
    // Its namespaces are the container's: engines use /proc/PID/ns/*
    // (nsenter -t, a pod's containers).
    for ns in ["pid", "mnt", "net", "user"] {
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
            "{ns}"
        );
    }
    // An exec'd process sees the program as pid 1.
    let o = b.oci(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout(&o), "sleep\u{0}300\u{0}", "{}", stderr(&o));
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn a_subreaper_above_create_reaps_the_programs_own_status() {
    // What containerd's shim and conmon do: they are subreapers, run
    // `create`, and wait for the state pid to learn the exit status.
    require_root();
    let python = ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test needs python3 (a subreaper made with prctl through ctypes)");
    let b = Bundle::new("oci-reap", Caller::Root, &["sh", "-c", "sleep 0.2; exit 42"]);
    let id = container_id("reap");
    let pid_file = b.dir.join("pid");
    b.created.borrow_mut().push(id.clone());
    let script = r#"
import ctypes, os, subprocess, sys
xvisor, root, bundle, cid, pid_file = sys.argv[1:]
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_CHILD_SUBREAPER failed")
null = open(os.devnull, "r+")
subprocess.run([xvisor, "--root", root, "create", "--bundle", bundle, "--pid-file", pid_file, cid],
               check=True, stdin=null, stdout=null, stderr=null)
pid = int(open(pid_file).read())
subprocess.run([xvisor, "--root", root, "start", cid], check=True)
while True:
    ended, status = os.waitpid(-1, 0)
    if ended == pid:
        print("program", os.waitstatus_to_exitcode(status))
        break
"#;
    let o = std::process::Command::new(python)
        .args([
            "-c",
            script,
            binary().to_str().unwrap(),
            b.state_root.to_str().unwrap(),
            b.dir.str(),
            &id,
            pid_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "program 42\n", "{}", stderr(&o));
    assert!(eventually(Duration::from_secs(10), || b.status(&id) == "stopped"));
    ok(&b.oci(&["delete", &id]));
}

#[test]
fn killing_the_supervisor_kills_the_container() {
    require_root();
    let b = Bundle::new("oci-orphan", Caller::Root, &["sh", "-c", "sleep 300 & exec sleep 301"]);
    let id = container_id("orphan");
    let (pid, supervisor, _) = started_with_pids(&b, &id);
    assert!(eventually(Duration::from_secs(10), || !processes_with("sleep 300").is_empty()));
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &supervisor.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(
        eventually(Duration::from_secs(10), || ended(pid)),
        "the program ends with its supervisor"
    );
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&id).is_empty()
            && processes_with("sleep 300").iter().all(|p| !p.contains(&id))),
        "nothing of the container is left"
    );
    ok(&b.oci(&["delete", "--force", &id]));
}

#[test]
fn a_container_joins_another_containers_pid_namespace_by_path() {
    // A pod with a shared pid namespace (critest's default, Kubernetes'
    // shareProcessNamespace): the member joins the sandbox's pid namespace
    // and the user namespace owning it, and sees the sandbox's processes.
    require_root();
    let sandbox = Bundle::new("oci-pidpod", Caller::Root, &["sleep", "302"]);
    let sandbox_id = container_id("pidpod");
    let (pid, _, _) = started_with_pids(&sandbox, &sandbox_id);
    let member = Bundle::new(
        "oci-pidmember",
        Caller::Root,
        &[
            "sh",
            "-c",
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; echo self=$$; hostname pod-renamed && hostname",
        ],
    );
    member.applets(&["tr", "hostname"]);
    member.edit(|c| {
        c["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_SYS_ADMIN"]);
        c["process"]["capabilities"]["permitted"] = serde_json::json!(["CAP_SYS_ADMIN"]);
        c["process"]["capabilities"]["effective"] = serde_json::json!(["CAP_SYS_ADMIN"]);
        c["linux"]["namespaces"] = serde_json::json!([
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")},
            {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        ]);
    });
    let member_id = container_id("pidmember");
    let o = member.oci(&["run", "--bundle", member.dir.str(), &member_id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("sleep 302"), "the sandbox's program is seen: {out}");
    assert!(!out.contains("self=1\n"), "the member is not pid 1 of the pod: {out}");
    // CAP_SYS_ADMIN of the member holds over the pod's UTS namespace,
    // which belongs to the pod's user namespace it joined.
    assert!(out.ends_with("pod-renamed\n"), "{out} {}", stderr(&o));
    let o = sandbox.oci(&["exec", &sandbox_id, "cat", "/proc/sys/kernel/hostname"]);
    assert_eq!(
        stdout(&o),
        "pod-renamed\n",
        "the pod's own name changed: {}",
        stderr(&o)
    );
    assert_eq!(
        sandbox.status(&sandbox_id),
        "running",
        "the sandbox outlives its member"
    );
    assert!(processes_with(&member_id).is_empty(), "nothing of the member is left");
    ok(&sandbox.oci(&["delete", "--force", &sandbox_id]));
}

/// The capability numbers of the 14 xvisor may grant (the engines' default
/// set).
const ENGINE_CAPABILITIES: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_FOWNER", 3),
    ("CAP_FSETID", 4),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_RAW", 13),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_MKNOD", 27),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_SETFCAP", 31),
];

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

/// `[CapInh, CapPrm, CapEff, CapBnd, CapAmb]` of a /proc/PID/status text.
fn capability_lines(status: &str) -> [u64; 5] {
    let get = |key: &str| {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {status}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(get)
}

/// The container's program prints its /proc/self/status; an exec'd
/// process in a running container does too.
fn capabilities_seen(b: &Bundle, tag: &str) -> ([u64; 5], [u64; 5]) {
    let id = container_id(tag);
    b.edit(|c| c["process"]["args"] = serde_json::json!(["cat", "/proc/self/status"]));
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run = capability_lines(&stdout(&o));
    b.edit(|c| c["process"]["args"] = serde_json::json!(["sleep", "300"]));
    let id = container_id(&format!("{tag}-exec"));
    b.running(&id);
    let o = b.oci(&["exec", &id, "cat", "/proc/self/status"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let exec = capability_lines(&stdout(&o));
    ok(&b.oci(&["delete", "--force", &id]));
    (run, exec)
}

fn root_gets_inheritable_and_ambient_capabilities(caller: Caller) {
    let b = Bundle::new("oci-caps-root", caller, &["true"]);
    // What the conformance suite's generator writes: all five sets equal.
    let names: Vec<&str> = ENGINE_CAPABILITIES.iter().map(|(n, _)| *n).collect();
    b.edit(|c| {
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": names, "effective": names, "permitted": names,
            "inheritable": names, "ambient": names
        });
    });
    let all = mask(&ENGINE_CAPABILITIES.iter().map(|(_, c)| *c).collect::<Vec<_>>());
    let tag = if caller == Caller::Root {
        "caps-root"
    } else {
        "caps-root-nobody"
    };
    let (run, exec) = capabilities_seen(&b, tag);
    assert_eq!(run, [all; 5], "CapInh, CapPrm, CapEff, CapBnd, CapAmb");
    assert_eq!(exec, [all; 5], "an exec'd process has the container's sets");
}

#[test]
fn root_gets_inheritable_and_ambient_capabilities_as_root() {
    root_gets_inheritable_and_ambient_capabilities(Caller::Root);
}

#[test]
fn root_gets_inheritable_and_ambient_capabilities_rootless() {
    root_gets_inheritable_and_ambient_capabilities(Caller::Unprivileged);
}

fn another_user_uses_its_ambient_capabilities(caller: Caller) {
    let b = Bundle::new("oci-caps-user", caller, &["true"]);
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
    });
    // The default config's bounding set: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
    let bounding = mask(&[5, 10, 29]);
    let bind = mask(&[10]);
    let tag = if caller == Caller::Root {
        "caps-user"
    } else {
        "caps-user-nobody"
    };
    let (run, exec) = capabilities_seen(&b, tag);
    // Permitted and effective: the ambient set (execve's rule for a user
    // other than root).
    assert_eq!(
        run,
        [bind, bind, bind, bounding, bind],
        "CapInh, CapPrm, CapEff, CapBnd, CapAmb"
    );
    assert_eq!(exec, run, "an exec'd process has the container's sets");
    // Without ambient capabilities that user has none.
    b.edit(|c| {
        c["process"]["capabilities"]["ambient"] = serde_json::json!([]);
    });
    let (run, _) = capabilities_seen(&b, &format!("{tag}-none"));
    assert_eq!(run, [bind, 0, 0, bounding, 0]);
}

#[test]
fn another_user_uses_its_ambient_capabilities_as_root() {
    another_user_uses_its_ambient_capabilities(Caller::Root);
}

#[test]
fn another_user_uses_its_ambient_capabilities_rootless() {
    another_user_uses_its_ambient_capabilities(Caller::Unprivileged);
}

#[test]
fn capabilities_that_cannot_be_honoured_are_refused_by_name() {
    let b = Bundle::new("oci-caps-refuse", Caller::Root, &["true"]);
    for (caps, needle) in [
        (
            // Not inheritable: the kernel would not raise it.
            serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}),
            "process.capabilities.ambient[0]: CAP_KILL is not in the inheritable set",
        ),
        (
            serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"]}),
            "process.capabilities.inheritable[0]: CAP_CHOWN is not in the bounding set",
        ),
        (
            serde_json::json!({"inheritable": ["CAP_NO_SUCH_THING"]}),
            "process.capabilities.inheritable[0]: CAP_NO_SUCH_THING is not a capability",
        ),
    ] {
        b.edit(|c| c["process"]["capabilities"] = caps);
        let id = container_id("caps-refuse");
        let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
        assert_eq!(code(&o), 1, "{needle}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
}

#[test]
fn exec_cap_and_process_json_set_the_capabilities() {
    let b = Bundle::new("oci-caps-exec", Caller::Root, &["sleep", "300"]);
    b.edit(|c| {
        c["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(Value::from("CAP_CHOWN"));
    });
    let id = container_id("caps-exec");
    b.running(&id);
    // --cap grants it, and makes it ambient as it is inheritable (so
    // another user has it too).
    let o = b.oci(&[
        "exec",
        "--cap",
        "CAP_CHOWN",
        "--user",
        "1000:1000",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let chown = mask(&[0]);
    let [inh, prm, eff, bnd, amb] = capability_lines(&stdout(&o));
    assert_eq!((inh, prm, eff, amb), (mask(&[0, 10]), chown, chown, chown));
    assert_eq!(bnd, mask(&[0, 5, 10, 29]));
    // A process.json's sets replace the container's.
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "user": {"uid": 1000, "gid": 1000},
            "args": ["cat", "/proc/self/status"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_SETUID"], "permitted": ["CAP_KILL", "CAP_SETUID"],
                "inheritable": ["CAP_SETUID"], "ambient": ["CAP_SETUID"]
            }
        })
        .to_string(),
    )
    .unwrap();
    let o = b.oci(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let setuid = mask(&[7]);
    assert_eq!(
        capability_lines(&stdout(&o)),
        [setuid, setuid, setuid, mask(&[5, 7]), setuid]
    );
    ok(&b.oci(&["delete", "--force", &id]));
}

fn writes_land_in_the_bundle_rootfs(caller: Caller) {
    let b = Bundle::new(
        "oci-writes",
        caller,
        &["sh", "-c", "echo kept > /marker && mkdir /made && echo there > /made/f"],
    );
    b.edit(|c| c["root"]["readonly"] = Value::Bool(false));
    let id = container_id(if caller == Caller::Root {
        "writes"
    } else {
        "writes-nobody"
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rootfs = b.dir.join("rootfs");
    // After the container is gone, as an engine reads them back.
    assert_eq!(std::fs::read_to_string(rootfs.join("marker")).unwrap(), "kept\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("made/f")).unwrap(), "there\n");
    if caller == Caller::Unprivileged {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(rootfs.join("marker")).unwrap().uid(), NOBODY);
    }
    // Nothing of xvisor's is left in the engine's tree but mount points
    // (busybox's root already has them).
    for name in ["etc/hostname", "etc/hosts"] {
        assert!(!rootfs.join(name).exists(), "{name} written into the rootfs");
    }
}

#[test]
fn writes_land_in_the_bundle_rootfs_as_root() {
    writes_land_in_the_bundle_rootfs(Caller::Root);
}

#[test]
fn writes_land_in_the_bundle_rootfs_rootless() {
    writes_land_in_the_bundle_rootfs(Caller::Unprivileged);
}

fn a_readonly_root_takes_no_write(caller: Caller) {
    let b = Bundle::new(
        "oci-rootro",
        caller,
        &[
            "sh",
            "-c",
            "echo lost > /marker 2>/dev/null; echo $?; mkdir /made 2>/dev/null; echo $?",
        ],
    );
    b.edit(|c| c["root"]["readonly"] = Value::Bool(true));
    let id = container_id(if caller == Caller::Root {
        "rootro"
    } else {
        "rootro-nobody"
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n1\n", "{}", stderr(&o));
    let rootfs = b.dir.join("rootfs");
    assert!(!rootfs.join("marker").exists());
    assert!(!rootfs.join("made").exists());
}

#[test]
fn a_readonly_root_takes_no_write_as_root() {
    a_readonly_root_takes_no_write(Caller::Root);
}

#[test]
fn a_readonly_root_takes_no_write_rootless() {
    a_readonly_root_takes_no_write(Caller::Unprivileged);
}

/// The rootfs is the engine's (untrusted) input: a symlink at a mount point
/// resolves inside it, never on the host.
#[test]
fn a_symlink_at_a_mount_point_never_reaches_the_host() {
    // A host path that does not exist: nothing may create it.
    let outside = std::env::temp_dir().join(format!("xvisor-outside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    // A host directory that exists: nothing may be created in it.
    let host_dir = TempDir::new("oci-symlink-host");
    let data = TempDir::new("oci-symlink-data");
    std::fs::write(data.join("f"), "data\n").unwrap();

    let b = Bundle::new("oci-symlink-proc", Caller::Root, &["true"]);
    let rootfs = b.dir.join("rootfs");
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("proc")).unwrap();
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("symlink-proc")]);
    assert_ne!(code(&o), 0, "a /proc that is not there inside the root");
    assert!(
        stderr(&o).contains("/proc is a symlink whose target is missing inside the root"),
        "{}",
        stderr(&o)
    );
    assert!(!outside.exists(), "created on the host");

    let b = Bundle::new("oci-symlink-vol", Caller::Root, &["cat", "/mnt/vol/f"]);
    let rootfs = b.dir.join("rootfs");
    std::os::unix::fs::symlink(host_dir.path(), rootfs.join("mnt")).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt/vol", "type": "bind", "source": data.str(), "options": ["rbind", "ro"]}
        ));
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("symlink-vol")]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("/mnt is a symlink whose target is missing inside the root"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(host_dir.path()).unwrap().count(),
        0,
        "written on the host"
    );

    // A symlink whose target is inside the root is followed there.
    let b = Bundle::new("oci-symlink-in", Caller::Root, &["cat", "/mnt/vol/f"]);
    let rootfs = b.dir.join("rootfs");
    std::fs::create_dir(rootfs.join("inside")).unwrap();
    std::os::unix::fs::symlink("/inside", rootfs.join("mnt")).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt/vol", "type": "bind", "source": data.str(), "options": ["rbind", "ro"]}
        ));
    });
    let o = b.oci(&["run", "--bundle", b.dir.str(), &container_id("symlink-in")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "data\n");
    assert!(rootfs.join("inside/vol").is_dir(), "the mount point, inside the root");
}
