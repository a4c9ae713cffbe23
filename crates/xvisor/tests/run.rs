//! `xvisor run`, black box: isolation, limits, exit codes, signals, stdio,
//! terminals and teardown — as root and, for every rootless claim, as an
//! unprivileged user.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

both_callers!(host_paths_are_read_only, |caller| {
    let dir = TempDir::new("ro");
    std::fs::write(dir.join("file"), "original").unwrap();
    let target = format!("{}:/data", dir.str());
    let o = run(
        caller,
        &[
            "run",
            "-v",
            &target,
            "--",
            "sh",
            "-c",
            "echo changed > /data/file; echo x > /etc/xvisor-test; echo x > /usr/xvisor-test",
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("Read-only file system"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.join("file")).unwrap(), "original");
    assert!(!std::path::Path::new("/etc/xvisor-test").exists());
    assert!(!std::path::Path::new("/usr/xvisor-test").exists());
});

both_callers!(tmp_and_home_are_private_and_vanish, |caller| {
    let marker = format!("xvt-tmp-{}", std::process::id());
    let script = format!("echo hi > /tmp/{marker} && cat /tmp/{marker} && echo there > ~/{marker} && cat ~/{marker}");
    let out = ok(&run(caller, &["run", "--", "sh", "-c", &script]));
    assert_eq!(out, "hi\nthere\n");
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    let again = run(
        caller,
        &["run", "--", "sh", "-c", &format!("ls /tmp ~; test -e /tmp/{marker}")],
    );
    assert_eq!(code(&again), 1, "a second instance saw the first one's files");
    assert_eq!(stdout(&again).trim(), format!("/root:\n\n/tmp:"));
});

both_callers!(tmpfs_mounts_are_bounded, |caller| {
    // Defaults, as the kernel reports them (KiB).
    let mounts = ok(&run(caller, &["run", "--", "cat", "/proc/mounts"]));
    for (point, size) in [("/tmp", "1048576k"), ("/root", "1048576k"), ("/dev/shm", "65536k")] {
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(point))
            .unwrap_or_else(|| panic!("no {point} in {mounts}"));
        assert!(line.contains(&format!("size={size},")), "{line}");
        assert!(line.contains("nr_inodes="), "{line}");
    }
    // Past a small bound: ENOSPC, in each.
    let fill = "for f in /tmp/x ~/x /dev/shm/x; do head -c 3M /dev/zero > $f || echo full; done";
    let o = run(
        caller,
        &["run", "--tmpfs-size", "2M", "--shm-size", "1M", "--", "sh", "-c", fill],
    );
    assert_eq!(ok(&o), "full\nfull\nfull\n");
    assert_eq!(
        stderr(&o).matches("No space left on device").count(),
        3,
        "{}",
        stderr(&o)
    );
    // The throwaway writable layer of a root directory is bounded too.
    let rootfs = busybox_rootfs("tmpfs-size", caller);
    let o = run(
        caller,
        &[
            "run",
            "--rootfs",
            rootfs.str(),
            "--writable",
            "--tmpfs-size",
            "2M",
            "--",
            "sh",
            "-c",
            "busybox dd if=/dev/zero of=/big bs=1048576 count=3 2>&1 || echo full",
        ],
    );
    // (busybox dd names the errno; its head says only "I/O error")
    let out = ok(&o);
    assert!(
        out.ends_with("full\n") && out.contains("No space left on device"),
        "{out}"
    );
    let o = run(caller, &["run", "--tmpfs-size", "100k", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--tmpfs-size"), "{}", stderr(&o));
});

both_callers!(writable_rootfs_writes_vanish, |caller| {
    let rootfs = busybox_rootfs("wr", caller);
    let out = ok(&run(
        caller,
        &[
            "run",
            "--rootfs",
            rootfs.str(),
            "--writable",
            "--",
            "sh",
            "-c",
            "echo new > /bin/new-file && cat /bin/new-file && rm /bin/cat && echo removed",
        ],
    ));
    assert_eq!(out, "new\nremoved\n");
    assert!(!rootfs.join("bin/new-file").exists());
    assert!(rootfs.join("bin/cat").exists());
    let o = run(
        caller,
        &[
            "run",
            "--rootfs",
            rootfs.str(),
            "--",
            "sh",
            "-c",
            "echo x > /bin/new-file",
        ],
    );
    assert_ne!(code(&o), 0, "a read-only --rootfs accepted a write");
    assert!(!rootfs.join("bin/new-file").exists());
});

both_callers!(rootfs_without_mount_points_still_runs_read_only, |caller| {
    let rootfs = busybox_rootfs("nomp", caller);
    for d in ["proc", "dev", "sys", "tmp", "root"] {
        std::fs::remove_dir(rootfs.join(d)).unwrap();
    }
    let out = ok(&run(
        caller,
        &[
            "run",
            "--rootfs",
            rootfs.str(),
            "--",
            "sh",
            "-c",
            "ls /proc/self/ >/dev/null && echo ok; touch /x 2>/dev/null || echo ro",
        ],
    ));
    assert_eq!(out, "ok\nro\n");
    assert!(
        !rootfs.join("proc").exists(),
        "xvisor wrote into the user's root directory"
    );
});

both_callers!(rw_volume_writes_persist, |caller| {
    let dir = TempDir::new("rw");
    let target = format!("{}:/out:rw", dir.str());
    ok(&run(
        caller,
        &["run", "-v", &target, "--", "sh", "-c", "echo kept > /out/result"],
    ));
    assert_eq!(std::fs::read_to_string(dir.join("result")).unwrap(), "kept\n");
    // A missing source of a writable volume is made, as docker makes it,
    // with the caller's rights; a read-only one is refused.
    let made = format!("{}/out/deeper:/out:rw", dir.str());
    ok(&run(
        caller,
        &["run", "-v", &made, "--", "sh", "-c", "date > /out/stamp"],
    ));
    assert!(dir.join("out/deeper/stamp").exists());
    let want_owner = if caller == Caller::Root { 0 } else { NOBODY };
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.join("out")).unwrap()),
        want_owner
    );
    let missing = format!("{}/absent:/in", dir.str());
    let o = run(caller, &["run", "-v", &missing, "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(!dir.join("absent").exists());
});

both_callers!(host_data_is_invisible_unless_asked_for, |caller| {
    let dir = TempDir::new("canary");
    std::fs::write(dir.join("canary"), "secret-canary").unwrap();
    let canary = dir.join("canary");
    let canary = canary.to_str().unwrap();
    let o = run(caller, &["run", "--", "cat", canary]);
    assert_ne!(code(&o), 0, "canary visible by default: {}", stdout(&o));
    let o = run(
        caller,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "ls -d /home /root/* /srv /mnt /media /opt 2>/dev/null; find /var /run -path /var/lib/dpkg -prune -o ! -type d ! -type l -print",
        ],
    );
    // /var and /run are the instance's own: empty directories, and the
    // host's package database.
    assert_eq!(stdout(&o), "", "host data directories are visible");
    let vol = format!("{}:/seen", dir.str());
    assert_eq!(
        ok(&run(caller, &["run", "-v", &vol, "--", "cat", "/seen/canary"])),
        "secret-canary"
    );
    assert_eq!(
        ok(&run(caller, &["run", "--host-root", "--", "cat", canary])),
        "secret-canary"
    );
});

both_callers!(secrets_are_masked, |caller| {
    for root in [&[][..], &["--host-root"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(root);
        args.extend_from_slice(&[
            "--",
            "sh",
            "-c",
            "cat /etc/shadow /etc/gshadow 2>/dev/null | wc -c; ls -A /etc/sudoers.d 2>/dev/null | wc -l",
        ]);
        let out = ok(&run(caller, &args));
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"], "{root:?}");
    }
});

both_callers!(the_kernels_root_only_state_is_masked, |caller| {
    let files = ["/proc/slabinfo", "/proc/vmallocinfo", "/proc/kpageflags"];
    for f in files {
        assert!(
            std::path::Path::new(f).exists(),
            "the host has no {f}: this test needs a kernel that does"
        );
    }
    // Root-only on the host; a guest's root is its caller, here maybe root.
    let script = format!(
        "cat {} 2>/dev/null | wc -c; ls -A /sys/kernel/slab | wc -l",
        files.join(" ")
    );
    let out = ok(&run(caller, &["run", "--", "sh", "-c", &script]));
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
});

#[test]
fn inherited_descriptors_stay_outside() {
    // The shell opens descriptor 7 (not close-on-exec) and execs xvisor with it.
    let script = format!(
        "exec 7</etc/hostname; exec {} run -- ls /proc/self/fd",
        binary().display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let fds: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !fds.contains(&"7".to_string()),
        "descriptor 7 leaked into the guest: {fds:?}"
    );
    assert!(
        fds.iter().all(|f| ["0", "1", "2", "3"].contains(&f.as_str())),
        "{fds:?}"
    );
}

both_callers!(processes_and_names_are_the_instances_own, |caller| {
    let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let script = format!("ls /proc | grep -c '^[0-9]'; kill -9 {pid} 2>/dev/null && echo killed; hostname; cat /proc/sys/kernel/hostname /etc/hostname");
    let out = ok(&run(caller, &["run", "--", "sh", "-c", &script]));
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(alive, "the guest killed a host process");
    let lines: Vec<&str> = out.lines().collect();
    let count: u32 = lines[0].parse().unwrap();
    assert!(count <= 5, "the guest sees {count} processes");
    assert_eq!(&lines[1..], ["xvisor", "xvisor", "xvisor"]);
    let out = ok(&run(caller, &["run", "--hostname", "box1", "--", "hostname"]));
    assert_eq!(out, "box1\n");
});

both_callers!(network_none_has_only_loopback_host_reaches_the_host, |caller| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("echo hello > /dev/tcp/127.0.0.1/{port} && echo connected");
    let o = run(caller, &["run", "--net", "none", "--", "bash", "-c", &script]);
    assert_ne!(code(&o), 0, "--net none reached the host: {}", stdout(&o));
    let o = run(caller, &["run", "--", "cat", "/proc/net/dev"]);
    let ifaces: Vec<String> = stdout(&o)
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(ifaces, ["lo"]);
    let o = run(caller, &["run", "--net", "host", "--", "bash", "-c", &script]);
    assert_eq!(ok(&o), "connected\n");
});

/// The mount points at or below `/sys` in `mountinfo`, with their types.
fn mounts_at_sys(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fs_type = right.split(' ').next()?;
            (point == "/sys" || point.starts_with("/sys/")).then(|| (point.to_string(), fs_type.to_string()))
        })
        .collect()
}

both_callers!(sys_shows_none_of_what_the_host_mounts_below_it, |caller| {
    let host = mounts_at_sys(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    assert!(
        host.iter().any(|(point, _)| point != "/sys"),
        "the host mounts nothing below /sys (no cgroup hierarchy, no tracefs): this test needs a host that does"
    );
    // A network namespace of its own: a sysfs of its own, which lists the
    // instance's interfaces, and nothing mounted below it but the empty
    // covers of firmware tables, energy counters and the slab state.
    let inside = mounts_at_sys(&ok(&run(caller, &["run", "--", "cat", "/proc/self/mountinfo"])));
    assert_eq!(inside[0], ("/sys".to_string(), "sysfs".to_string()));
    for (point, fs_type) in &inside[1..] {
        assert!(
            fs_type == "tmpfs"
                && ["/sys/firmware", "/sys/devices/virtual/powercap", "/sys/kernel/slab"].contains(&point.as_str()),
            "{point} ({fs_type}) is mounted in the instance: {inside:?}"
        );
    }
    assert_eq!(ok(&run(caller, &["run", "--", "ls", "/sys/class/net"])), "lo\n");
    // The host's network: a copy of the host's sysfs tree (its submounts
    // are locked to it), then covers: each submount hidden under an empty
    // tmpfs at its place or above it.
    let inside = mounts_at_sys(&ok(&run(
        caller,
        &["run", "--net", "host", "--", "cat", "/proc/self/mountinfo"],
    )));
    assert!(
        inside.len() > host.len(),
        "nothing covers the host's submounts: {inside:?}"
    );
    let (copied, covers) = inside.split_at(host.len());
    assert_eq!(copied, &host[..], "the instance's /sys is not the host's tree");
    assert!(covers.iter().all(|(_, fs_type)| fs_type == "tmpfs"), "{covers:?}");
    for (point, fs_type) in copied.iter().filter(|(point, _)| point != "/sys") {
        let covered = covers
            .iter()
            .any(|(cover, _)| point == cover || point.starts_with(&format!("{cover}/")));
        assert!(covered, "{point} ({fs_type}) is visible in the instance: {inside:?}");
    }
    let listed = ok(&run(
        caller,
        &[
            "run",
            "--net",
            "host",
            "--",
            "sh",
            "-c",
            "ls -A /sys/fs/cgroup /sys/kernel/tracing 2>/dev/null | grep -v ':$' | grep -c . || true",
        ],
    ));
    assert_eq!(listed.trim(), "0");
    // Firmware tables and ACPI details: nothing, in either /sys.
    assert!(
        std::fs::read_dir("/sys/firmware").is_ok_and(|mut d| d.next().is_some()),
        "the host has no /sys/firmware entries: this test needs a host that does"
    );
    for net in ["none", "host"] {
        let script = "ls -A /sys/firmware /proc/acpi 2>/dev/null | grep -v ':$' | grep -c . || true";
        let listed = ok(&run(caller, &["run", "--net", net, "--", "sh", "-c", script]));
        assert_eq!(listed.trim(), "0", "--net {net}");
    }
});

#[test]
fn sys_fs_cgroup_shows_the_instances_own_limits() {
    require_root();
    // cgroup v2 (memory.max at the top) or v1 (a memory hierarchy).
    let script = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; true";
    for net in ["none", "host"] {
        let out = ok(&run(
            Caller::Root,
            &["run", "--net", net, "--memory", "64M", "--", "sh", "-c", script],
        ));
        assert_eq!(out.trim(), "67108864", "--net {net}");
    }
    // No cgroups of its own: nothing to show.
    assert_eq!(ok(&run(Caller::Root, &["run", "--", "ls", "-A", "/sys/fs/cgroup"])), "");
}

#[test]
fn sys_fs_cgroup_shows_no_cgroup_but_the_instances_own() {
    require_root();
    // A cgroup directory whose parent is a cgroup too: the instance's own
    // has none (the guest makes none, the view is read-only), so any is a
    // host cgroup above or beside it.
    let nested = "find /sys/fs/cgroup -name cgroup.procs | while read -r f; do \
                  d=${f%/cgroup.procs}; [ -e \"${d%/*}/cgroup.procs\" ] && echo \"$d\"; done; true";
    let host_nested = std::process::Command::new("sh")
        .args(["-c", nested])
        .output()
        .expect("run sh");
    assert!(
        !String::from_utf8_lossy(&host_nested.stdout).trim().is_empty(),
        "the host has no nested cgroups: this test needs a host that does"
    );
    for net in ["none", "host"] {
        let out = ok(&run(
            Caller::Root,
            &["run", "--net", net, "--memory", "64M", "--", "sh", "-c", nested],
        ));
        assert_eq!(out.trim(), "", "--net {net}: host cgroups visible in the instance");
        // The memory limit is still there to read.
        let shown = ok(&run(
            Caller::Root,
            &[
                "run",
                "--net",
                net,
                "--memory",
                "64M",
                "--",
                "sh",
                "-c",
                "ls /sys/fs/cgroup",
            ],
        ));
        assert!(!shown.trim().is_empty(), "--net {net}: empty /sys/fs/cgroup");
    }
}

/// The kernel's Landlock ABI version; a test that needs Landlock fails
/// here, saying so, rather than passing without it.
fn landlock_abi() -> u32 {
    let abi = xvisor_sys::landlock::abi_version().unwrap_or(0);
    assert!(
        abi >= 1,
        "this kernel has no Landlock (LSM not enabled?): the test needs it"
    );
    abi
}

both_callers!(an_abstract_socket_outside_the_instance_is_out_of_reach, |caller| {
    let abi = landlock_abi();
    assert!(
        abi >= 6,
        "Landlock scopes need ABI 6 (Linux 6.12); this kernel has {abi}"
    );
    use std::os::linux::net::SocketAddrExt;
    let name = format!("xvisor-test-{}-{}", std::process::id(), caller as u8);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _host = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    // With the host's network, the host's abstract sockets are visible, and
    // still out of reach; one bound inside the instance is not.
    let script = format!(
        "import socket, errno\n\
         s = socket.socket(socket.AF_UNIX)\n\
         try:\n    s.connect('\\0{name}'); print('connected to the host')\n\
         except OSError as e: print(errno.errorcode[e.errno])\n\
         inner = socket.socket(socket.AF_UNIX); inner.bind('\\0inner-{name}'); inner.listen()\n\
         c = socket.socket(socket.AF_UNIX); c.connect('\\0inner-{name}'); print('inner ok')\n"
    );
    let out = ok(&run(caller, &["run", "--net", "host", "--", "python3", "-c", &script]));
    assert_eq!(out, "EPERM\ninner ok\n");
});

both_callers!(a_host_device_is_shown_only_when_asked, |caller| {
    assert!(
        std::path::Path::new("/dev/fuse").exists(),
        "this test needs the host's /dev/fuse"
    );
    let probe = "test -c /dev/fuse && echo present || echo absent";
    assert_eq!(ok(&run(caller, &["run", "--", "sh", "-c", probe])), "absent\n");
    let out = ok(&run(caller, &["run", "--device", "/dev/fuse", "--", "sh", "-c", probe]));
    assert_eq!(out, "present\n");
    for (bad, why) in [
        ("/dev/xvisor-none", "no such node on the host"),
        ("/etc/passwd", "only nodes below /dev"),
        ("/dev/pts/0", "the instance's own /dev/pts"),
    ] {
        let o = run(caller, &["run", "--device", bad, "--", "true"]);
        assert_eq!(code(&o), 125, "{bad}");
        assert!(stderr(&o).contains(why), "{bad}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
});

both_callers!(host_nodes_shown_inside_cannot_be_changed, |caller| {
    // The guest's root is its caller's, here maybe the host's root: every
    // node the instance shows is a host object, and so is each mask (the
    // host's /dev/null again).
    let host_nodes = ["/dev/null", "/dev/zero", "/dev/fuse"];
    for node in host_nodes {
        assert!(std::path::Path::new(node).exists(), "this test needs the host's {node}");
    }
    assert!(
        std::path::Path::new("/proc/keys").exists(),
        "this test needs a kernel with /proc/keys (masked in the instance)"
    );
    let _exclusive = NodeMetadata::exclusive();
    let before: Vec<NodeMetadata> = host_nodes.iter().map(|n| NodeMetadata::of(n)).collect();
    let script = "for f in /dev/null /dev/zero /dev/fuse /proc/keys /etc/shadow; do \
                    chown 65534 $f && echo $f chown; chmod 600 $f && echo $f chmod; \
                    touch -d 2000-01-01 $f && echo $f touch; \
                  done 2>/dev/null; \
                  echo x > /dev/null && echo written; head -c 4 /dev/zero | wc -c";
    let o = run(caller, &["run", "--device", "/dev/fuse", "--", "sh", "-c", script]);
    let changed: Vec<String> = host_nodes
        .iter()
        .zip(&before)
        .filter_map(|(node, was)| {
            let now = NodeMetadata::of(node);
            (now != *was).then(|| {
                was.restore(node);
                format!("{node}: {was:?} became {now:?}")
            })
        })
        .collect();
    assert!(
        changed.is_empty(),
        "the guest changed host nodes (restored): {changed:#?}"
    );
    assert_eq!(ok(&o), "written\n4\n");
});

both_callers!(inits_command_line_is_short_and_fixed, |caller| {
    // init is a fork of xvisor: without care it shows xvisor's own command
    // line (host paths, -e values) to the instance.
    let out = ok(&run(
        caller,
        &[
            "run",
            "-e",
            "SECRET=abc",
            "--",
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; cat /proc/1/comm",
        ],
    ));
    assert_eq!(out, "xvisor-init\0\nxvisor-init\n");
});

both_callers!(exit_codes_follow_the_shell, |caller| {
    assert_eq!(code(&run(caller, &["run", "--", "true"])), 0);
    assert_eq!(code(&run(caller, &["run", "--", "sh", "-c", "exit 3"])), 3);
    assert_eq!(code(&run(caller, &["run", "--", "sh", "-c", "kill -9 $$"])), 137);
    let o = run(caller, &["run", "--", "no-such-program-xvt"]);
    assert_eq!(code(&o), 127);
    assert_eq!(stderr(&o), "xvisor: no-such-program-xvt: command not found\n");
    // Named from the current directory, which the instance does not see.
    let o = run(caller, &["run", "--", "./untrusted"]);
    assert_eq!(code(&o), 127);
    assert!(
        stderr(&o).contains("does not see the host's current directory"),
        "{}",
        stderr(&o)
    );
    // -t without a terminal would wait at a prompt for ever: refused.
    let start = Instant::now();
    let mut child = xvisor(caller, &["run", "-it", "--", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // xvisor may have refused before reading: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(b"echo x\n");
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("-t needs a terminal"), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(2));
    let o = run(caller, &["run", "--", "/etc/passwd"]);
    assert_eq!(code(&o), 126);
    assert!(
        stderr(&o).starts_with("xvisor: /etc/passwd: cannot execute"),
        "{}",
        stderr(&o)
    );
    let o = run(caller, &["run", "--rootfs", "/nope", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o), "xvisor: --rootfs /nope: no such directory\n");
    let o = run(caller, &["run", "--bogus", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
});

both_callers!(timeout_exits_124_promptly, |caller| {
    let start = Instant::now();
    let o = run(caller, &["run", "--timeout", "1s", "--", "sleep", "10"]);
    let took = start.elapsed();
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(stderr(&o).contains("--timeout 1s"), "{}", stderr(&o));
});

both_callers!(signals_reach_the_guest, |caller| {
    for (signal, name) in [(libc_sig::TERM, "TERM"), (libc_sig::INT, "INT"), (libc_sig::HUP, "HUP")] {
        let script = format!("trap 'echo got {name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done");
        let mut child = xvisor(caller, &["run", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 6];
        out.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"ready\n");
        // The caller of setpriv execs xvisor, so the pid is xvisor's.
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(rest, format!("got {name}\n"));
        assert_eq!(status.code(), Some(7));
    }
});

mod libc_sig {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

both_callers!(stdin_pipes_through, |caller| {
    let o = run_with_input(
        caller,
        &["run", "--", "sh", "-c", "tr a-z A-Z; echo done"],
        b"hello pipe\n",
    );
    assert_eq!(ok(&o), "HELLO PIPE\ndone\n");
});

/// `script` (util-linux), run as `caller` from `/`: runs the shell command
/// `cmd` with a controlling terminal.
fn script_as(caller: Caller, cmd: &str) -> std::process::Command {
    let mut c = match caller {
        Caller::Root => std::process::Command::new("script"),
        Caller::Unprivileged => {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--", "script"]);
            c
        }
    };
    c.args(["-qec", cmd, "/dev/null"]).current_dir("/");
    c
}

both_callers!(tty_session_works, |caller| {
    // `script` gives xvisor a terminal; the guest must get its own.
    let cmd = format!("{} run -t -- sh", binary().display());
    let mut child = script_as(caller, &cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed for the terminal test");
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"tty; echo $((6*7))\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    input.write_all(b"sleep 30\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    input.write_all(b"\x03").unwrap(); // Ctrl-C must interrupt the guest's sleep
    std::thread::sleep(Duration::from_millis(300));
    input.write_all(b"exit 5\n").unwrap();
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "Ctrl-C did not reach the guest"
    );
    assert!(text.contains("/dev/pts/0"), "no pty in the guest: {text:?}");
    assert!(text.contains("42"), "{text:?}");
    assert_eq!(out.status.code(), Some(5), "{text:?}");
});

both_callers!(without_t_the_guest_has_no_terminal_of_the_host, |caller| {
    // xvisor runs with a controlling terminal (`script`'s); a guest
    // without -t can neither open it nor take it, and sits in a process
    // group of its own in xvisor's session (its session's leader is
    // outside the instance: 0).
    let guest = "if (exec 3<>/dev/tty) 2>/dev/null; then echo terminal; else echo none; fi; \
                 echo pid \\$\\$; cut -d' ' -f5,6 /proc/\\$\\$/stat";
    let cmd = format!("{} run -- sh -c \"{guest}\"", binary().display());
    let out = script_as(caller, &cmd)
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) is needed for the terminal test");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"none"),
        "the guest opened the host's terminal: {text:?}"
    );
    let pid = lines.get(1).and_then(|l| l.strip_prefix("pid ")).expect("pid line");
    assert_eq!(
        lines.get(2).copied(),
        Some(format!("{pid} 0").as_str()),
        "process group and session: {text:?}"
    );
});

#[test]
fn unprivileged_limits_are_refused_not_ignored() {
    let o = run(Caller::Unprivileged, &["run", "--memory", "100M", "--", "true"]);
    if code(&o) == 0 {
        // A host that delegates cgroups to the user: then the limit must hold.
        return;
    }
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("cannot enforce --memory"), "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing to run unlimited"), "{}", stderr(&o));
}

#[test]
fn nofile_limit_applies_and_above_hard_is_refused() {
    let out = ok(&run(
        Caller::Root,
        &["run", "--nofile", "64", "--", "sh", "-c", "ulimit -n"],
    ));
    assert_eq!(out, "64\n");
    let o = run(Caller::Root, &["run", "--nofile", "99999999", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("hard limit"), "{}", stderr(&o));
}

#[test]
fn fork_bomb_is_contained_by_pids() {
    let dir = TempDir::new("bomb");
    // The main shell execs its sleep: a fork of its own could fail with
    // EAGAIN once the bomb fills the limit, ending the script early.
    std::fs::write(dir.join("bomb.sh"), "b() { b | b & }; b; exec sleep 30\n").unwrap();
    std::fs::write(
        dir.join("count.py"),
        "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(e.errno, n)\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))\n",
    )
    .unwrap();
    let vol = format!("{}:/t", dir.str());
    // Past the limit, fork fails with EAGAIN (11) and no more than 64 tasks exist.
    let out = ok(&run(
        Caller::Root,
        &["run", "-v", &vol, "--pids", "64", "--", "python3", "/t/count.py"],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("11 "), "{out}");
    assert!(lines[1].parse::<u32>().unwrap() <= 64, "{out}");
    let name = format!("bomb{}", std::process::id());
    let start = Instant::now();
    let o = run(
        Caller::Root,
        &[
            "run",
            "--name",
            &name,
            "-v",
            &vol,
            "--pids",
            "64",
            "--timeout",
            "3s",
            "--",
            "sh",
            "/t/bomb.sh",
        ],
    );
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(cgroup_dirs_named(&name).is_empty(), "cgroup left behind");
    assert!(
        eventually(Duration::from_secs(3), || processes_with("/t/bomb.sh").is_empty()),
        "bomb processes left behind"
    );
}

#[test]
fn memory_limit_stops_the_guest_with_a_report() {
    let o = run(
        Caller::Root,
        &[
            "run",
            "--memory",
            "256M",
            "--",
            "python3",
            "-c",
            "b = bytearray(1 << 30); print('survived')",
        ],
    );
    assert_eq!(code(&o), 137, "stdout={} stderr={}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("out of memory"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("survived"));
}

#[test]
fn cpu_limit_is_applied() {
    let name = format!("cpu{}", std::process::id());
    // The limit is read from the host side of the instance's cgroup while it
    // runs; xvisor is then SIGKILLed and the cgroup must still disappear.
    let mut child = xvisor(
        Caller::Root,
        &["run", "--name", &name, "--cpus", "0.5", "--", "sleep", "5"],
    )
    .stdin(Stdio::null())
    .spawn()
    .unwrap();
    let found = eventually(Duration::from_secs(3), || !cgroup_dirs_named(&name).is_empty());
    let dirs = cgroup_dirs_named(&name);
    let quota = dirs.iter().find_map(|d| {
        std::fs::read_to_string(d.join("cpu.cfs_quota_us"))
            .ok()
            .or_else(|| std::fs::read_to_string(d.join("cpu.max")).ok())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no cgroup for the instance");
    let quota = quota.expect("no cpu limit file");
    assert!(quota.starts_with("50000"), "quota {quota}");
    assert!(
        eventually(Duration::from_secs(5), || cgroup_dirs_named(&name).is_empty()),
        "cgroup left after SIGKILL of xvisor"
    );
}

both_callers!(nothing_is_left_after_exit_or_sigkill, |caller| {
    let marker = format!("{}.{}", std::process::id(), caller as u8 + 3);
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count();
    let tmp_before: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // Normal exit, with a child left running in the background.
    let o = run(
        caller,
        &["run", "--", "sh", "-c", &format!("sleep {marker}1 & echo started")],
    );
    assert_eq!(ok(&o), "started\n");
    assert!(
        eventually(Duration::from_secs(2), || processes_with(&format!("sleep {marker}1"))
            .is_empty()),
        "background process survived the instance"
    );
    // SIGKILL of xvisor mid-run (with cgroup limits when the caller may have them).
    let name = format!("leftover{}{}", std::process::id(), caller as u8);
    let mut args = vec!["run", "--name", &name];
    if caller == Caller::Root {
        args.extend_from_slice(&["--pids", "100", "--memory", "512M"]);
    }
    let sleep_arg = format!("{marker}2");
    args.extend_from_slice(&["--", "sleep", &sleep_arg]);
    let mut child = xvisor(caller, &args).stdin(Stdio::null()).spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !processes_with(&format!("sleep {marker}2"))
            .is_empty()),
        "the guest never started"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&format!("sleep {marker}2"))
            .is_empty()),
        "guest survived SIGKILL of xvisor"
    );
    assert!(
        eventually(Duration::from_secs(5), || cgroup_dirs_named(&name).is_empty()),
        "cgroup left after SIGKILL of xvisor"
    );
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&name).is_empty()),
        "xvisor processes left: {:?}",
        processes_with(&name)
    );
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count(),
        mounts_before,
        "host mounts changed"
    );
    let tmp_after: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("xvisor"))
        .collect();
    let new: Vec<_> = tmp_after.iter().filter(|n| !tmp_before.contains(n)).collect();
    assert!(new.is_empty(), "temporary files left: {new:?}");
});

both_callers!(guest_user_option, |caller| {
    let out = ok(&run(
        caller,
        &[
            "run",
            "--user",
            "1000:1000",
            "--",
            "sh",
            "-c",
            "id -u; id -g; echo $HOME; touch ~/x && echo home-writable; cat /proc/self/status | grep CapEff",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["1000", "1000", "/home/user", "home-writable"]);
    assert_eq!(lines[4].split_whitespace().nth(1), Some("0000000000000000"));
});

#[test]
fn help_teaches() {
    let o = run(Caller::Root, &["run", "--help"]);
    let text = ok(&o);
    for needle in [
        "--rootfs",
        "--volume",
        "--memory",
        "--timeout",
        "Exit status",
        "Examples",
    ] {
        assert!(text.contains(needle), "run --help lacks {needle}");
    }
    assert_eq!(code(&run(Caller::Root, &[])), 125);
    assert!(ok(&run(Caller::Root, &["--version"])).starts_with("xvisor "));
}

#[test]
fn sigkill_at_any_moment_leaves_no_cgroup() {
    // Kill xvisor at spread-out moments of its start-up and run: the
    // watchdog must remove the cgroups every time.
    for i in 0..12u64 {
        let name = format!("anytime{}x{i}", std::process::id());
        let mut child = xvisor(
            Caller::Root,
            &["run", "--name", &name, "--pids", "50", "--", "sleep", "5"],
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_micros(i * i * 150));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(5), || cgroup_dirs_named(&name).is_empty()),
            "cgroup xvisor-{name} left after SIGKILL at ~{} µs",
            i * i * 150
        );
    }
}

#[test]
fn tty_window_size_follows() {
    // A pty driven from python3 (the host's): the guest sees the initial
    // size, then the new one after the terminal is resized.
    let driver = r#"
import os, pty, fcntl, termios, struct, time, select, sys
x = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(x, [x, "run", "-t", "--", "sh", "-c", "stty size; sleep 1; stty size"])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
out, resized, deadline = b"", False, time.time() + 15
while time.time() < deadline:
    if not resized and b"30 100" in out:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        resized = True
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        out += data
os.waitpid(pid, 0)
print(out.decode(errors="replace").replace("\r", ""), end="")
"#;
    require_root();
    let o = std::process::Command::new("/usr/bin/python3")
        .args(["-c", driver, binary().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/python3 drives the pty in this test");
    assert_eq!(stdout(&o), "30 100\n40 120\n", "{}", stderr(&o));
}

both_callers!(docker_options_people_type_without_thinking, |caller| {
    let dir = TempDir::new("dockeropts");
    let env_file = dir.join("env");
    std::fs::write(&env_file, "# a comment\nA=1\n\nB=two words\n").unwrap();
    set_mode(&env_file, 0o644);
    let env_file = env_file.display().to_string();
    let out = ok(&run(
        caller,
        &[
            "run",
            "--rm",
            "--env-file",
            &env_file,
            "-e",
            "C=3",
            "-u",
            "5:6",
            "--",
            "sh",
            "-c",
            "echo $A $B $C; id -u; id -g",
        ],
    ));
    assert_eq!(out, "1 two words 3\n5\n6\n");
    // --tmpfs: private, bounded, the mode asked for.
    let out = ok(&run(
        caller,
        &[
            "run",
            "--tmpfs",
            "/scratch:size=1m,mode=700",
            "--",
            "sh",
            "-c",
            "stat -c %a /scratch; head -c 2000000 /dev/zero > /scratch/f || echo full",
        ],
    ));
    assert_eq!(out, "700\nfull\n", "{out}");
    // --read-only: the writable root is not, /tmp still is.
    let root = busybox_rootfs("ro-root", caller);
    let out = ok(&run(
        caller,
        &[
            "run",
            "--rootfs",
            root.str(),
            "--writable",
            "--read-only",
            "--",
            "/bin/sh",
            "-c",
            "touch /x 2>/dev/null || echo refused; touch /tmp/y && echo tmp",
        ],
    ));
    assert_eq!(out, "refused\ntmp\n");
    // --mount, docker's long form: a bind read-only unless readonly=false,
    // a tmpfs; --init accepted (pid 1 is already an init).
    let shared = TempDir::new("mount");
    if caller == Caller::Unprivileged {
        chown_tree(shared.path(), NOBODY);
    }
    let ro = format!("type=bind,source={},target=/ro", shared.str());
    let rw = format!("type=bind,src={},dst=/rw,readonly=false", shared.str());
    let out = ok(&run(
        caller,
        &[
            "run",
            "--init",
            "--mount",
            &ro,
            "--mount",
            &rw,
            "--mount",
            "type=tmpfs,target=/scratch,tmpfs-mode=700",
            "--",
            "sh",
            "-c",
            "touch /ro/x 2>/dev/null || echo ro; touch /rw/y && echo rw; stat -c %a /scratch; cat /proc/1/comm",
        ],
    ));
    assert_eq!(out, "ro\nrw\n700\nxvisor-init\n", "{out}");
    assert!(shared.join("y").exists() && !shared.join("x").exists());
});

#[test]
fn mistakes_in_options_get_one_line_that_names_them() {
    for (args, want) in [
        (
            &["run", "-v", "/tmp:/x:rwx", "--", "true"][..],
            "unknown mode \"rwx\" (use ro or rw)",
        ),
        (
            &["run", "-v", "/tmp:/proc", "--", "true"][..],
            "/proc, /sys and /dev are the instance's own",
        ),
        (
            &["run", "-v", "/tmp:/sys/fs", "--", "true"][..],
            "/proc, /sys and /dev are the instance's own",
        ),
        (&["run", "--memory", "1K", "--", "true"][..], "give at least 1M"),
        (
            &["run", "--entrypoint", "sh", "--", "true"][..],
            "--entrypoint needs --image",
        ),
        (&["run", "--tmpfs", "scratch", "--", "true"][..], "PATH is absolute"),
        (
            &["run", "--tmpfs", "/s:color=red", "--", "true"][..],
            "unknown option \"color=red\"",
        ),
        (
            &["run", "--env-file", "/no/such/file", "--", "true"][..],
            "--env-file /no/such/file",
        ),
        (
            &[
                "run",
                "--mount",
                "type=bind,source=/no/such/dir,target=/x",
                "--",
                "true",
            ][..],
            "does not exist",
        ),
        (&["ps", "no-such-instance"][..], "no running instance"),
        (&["kill", "no-such-instance"][..], "no running instance"),
        (&["exec", "no-such-instance", "--", "true"][..], "no running instance"),
        (&["logs", "no-such-instance"][..], "no instance"),
        (&["stop", "no-such-instance"][..], "no instance"),
        (&["wait", "no-such-instance"][..], "no instance"),
        (&["rm", "no-such-instance"][..], "no instance"),
        (&["inspect", "no-such-instance"][..], "no running instance"),
        (&["image", "inspect", "no-such-image"][..], "no image"),
        (&["policy", "check", "/no/such/policy"][..], "No such file"),
        (&["completions", "csh"][..], "bash, zsh or fish"),
    ] {
        let o = run(Caller::Root, args);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
}
