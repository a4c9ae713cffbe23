//! Guest root is never host root: an instance started by root runs under
//! host ids of its own, and nothing the guest leaves on a host object can
//! raise privileges (issue 20's attacks, each reproduced).

#[macro_use]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use common::*;

/// The built-in pool (xvisor_confine::idpool::BUILT_IN), unless this host
/// gives the user `xvisor` subordinate ids.
const POOL_FIRST: u64 = 0x7000_0000;
const POOL_END: u64 = 0x7FFE_0000;

fn has_own_pool() -> bool {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.lines().any(|l| l.starts_with("xvisor:"))))
}

/// `0 OUTSIDE COUNT` of a one-line map.
fn parse_map(map: &str) -> (u64, u64, u64) {
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "one range expected: {map:?}");
    (fields[0], fields[1], fields[2])
}

#[test]
fn root_callers_get_host_ids_of_their_own_and_two_instances_get_disjoint_ones() {
    let start = |_| {
        xvisor(
            Caller::Root,
            &[
                "run",
                "--",
                "sh",
                "-c",
                "head -1 /proc/self/uid_map; head -1 /proc/self/gid_map; sleep 1",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let children: Vec<_> = (0..2).map(start).collect();
    let mut ranges = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = ok(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (inside, uid, count) = parse_map(lines[0]);
        let (_, gid, gid_count) = parse_map(lines[1]);
        assert_eq!((inside, count, gid_count), (0, 65536, 65536), "{text}");
        if !has_own_pool() {
            assert!(
                (POOL_FIRST..POOL_END).contains(&uid),
                "uid range {uid:#x} outside the pool"
            );
            assert!(
                (POOL_FIRST..POOL_END).contains(&gid),
                "gid range {gid:#x} outside the pool"
            );
        }
        ranges.push(uid);
    }
    assert!(
        ranges[0].abs_diff(ranges[1]) >= 65536,
        "two instances at once share host ids: {ranges:x?}"
    );
    // Asked for, the caller's ids as before.
    let out = run(Caller::Root, &["run", "--", "tail", "-1", "/proc/self/uid_map"]);
    let (far, outside, count) = parse_map(&ok(&out));
    assert_eq!(
        (far, count),
        (1 << 31, 1),
        "2^31 is mapped too (test suites chown to it)"
    );
    if !has_own_pool() {
        assert!((POOL_FIRST..POOL_END).contains(&outside), "{outside:#x}");
    }
    let out = run(
        Caller::Root,
        &["run", "--userns", "host", "--", "cat", "/proc/self/uid_map"],
    );
    assert_eq!(parse_map(&ok(&out)), (0, 0, 4_294_967_295));
}

#[test]
fn a_handed_in_file_keeps_its_mode_owner_and_capabilities() {
    let dir = TempDir::new("handed-in");
    let path = dir.join("out");
    std::fs::write(&path, "").unwrap();
    set_mode(&path, 0o644);
    let script = r#"
import os
tries = [
    ("fchmod", lambda: os.fchmod(1, 0o4755)),
    ("fchown", lambda: os.fchown(1, 65534, 65534)),
    ("setcap", lambda: os.setxattr(1, "security.capability", bytes.fromhex("0100000200200000000000000000000000000000"))),
    ("utime", lambda: os.utime(1, (0, 0))),
]
for what, attempt in tries:
    try:
        attempt()
        os.write(2, (what + " allowed\n").encode())
    except OSError as e:
        os.write(2, (what + " refused " + str(e.errno) + "\n").encode())
"#;
    let out = xvisor(Caller::Root, &["run", "--", "python3", "-c", script])
        .stdin(Stdio::null())
        .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
        .output()
        .unwrap();
    let report = stderr(&out);
    for what in ["fchmod", "fchown", "setcap", "utime"] {
        assert!(report.contains(&format!("{what} refused")), "{what}: {report}");
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "{report}");
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert!(xattr_names(&path).is_empty(), "extended attributes left on the file");
    assert_ne!(meta.mtime(), 0);
}

fn xattr_names(path: &Path) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import os,sys; print(' '.join(os.listxattr(sys.argv[1])))"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn root_only_files_under_shown_directories_stay_out_of_reach() {
    let secret = format!("/etc/xvisor-test-secret-{}", std::process::id());
    std::fs::write(&secret, "secret\n").unwrap();
    set_mode(Path::new(&secret), 0o600);
    let out = run(
        Caller::Root,
        &["run", "--", "sh", "-c", &format!("cat {secret}; echo status=$?")],
    );
    let _ = std::fs::remove_file(&secret);
    let text = stdout(&out);
    assert!(!text.contains("secret"), "a root-only host file was read: {text}");
    assert!(text.contains("status=1"), "{text} {}", stderr(&out));

    // Reading zram-control's hot_add creates a device on the host.
    let hot_add = "/sys/class/zram-control/hot_add";
    if !Path::new(hot_add).exists() {
        eprintln!("skipped the zram part: this host has no {hot_add}");
        return;
    }
    let out = run(
        Caller::Root,
        &["run", "--", "sh", "-c", &format!("cat {hot_add}; echo status=$?")],
    );
    assert!(stdout(&out).contains("status=1"), "{}", stdout(&out));
}

/// What a guest does to plant a privilege in a writable volume.
const PLANT: &str = "cd /v; echo x > a; \
    chmod 4755 a && echo chmod-setuid; \
    chmod 2755 a && echo chmod-setgid; \
    python3 -c 'import os; os.close(os.open(\"c\", os.O_CREAT | os.O_WRONLY, 0o4755))' 2>/dev/null && echo open-setuid; \
    python3 -c 'import os; os.setxattr(\"a\", \"security.capability\", bytes.fromhex(\"0100000200200000000000000000000000000000\"))' 2>/dev/null && echo setcap; \
    chmod 750 a && echo chmod-plain; \
    echo done";

both_callers!(nothing_planted_in_a_volume_raises_privileges, |caller| {
    let dir = TempDir::new("plant");
    if caller == Caller::Unprivileged {
        chown_tree(dir.path(), NOBODY);
    }
    let volume = format!("{}:/v:rw", dir.str());
    let out = run(caller, &["run", "-v", &volume, "--", "sh", "-c", PLANT]);
    let text = stdout(&out);
    assert!(
        text.contains("chmod-plain") && text.contains("done"),
        "{text} {}",
        stderr(&out)
    );
    for planted in ["chmod-setuid", "chmod-setgid", "open-setuid", "setcap"] {
        assert!(!text.contains(planted), "{planted} succeeded: {text}");
    }
    assert!(
        stderr(&out).contains("setuid or setgid mode is refused in an instance with a writable volume"),
        "the refusal is not named: {}",
        stderr(&out)
    );
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        assert_eq!(meta.mode() & 0o6000, 0, "{:?} carries a privilege bit", entry.path());
        assert!(
            xattr_names(&entry.path()).is_empty(),
            "{:?} carries xattrs",
            entry.path()
        );
    }
});

#[test]
fn package_managers_keep_privilege_bits_in_throwaway_storage() {
    let out = run(
        Caller::Root,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "echo x > /tmp/p && chmod 4755 /tmp/p && stat -c %a /tmp/p && \
             python3 -c 'import os; os.setxattr(\"/tmp/p\", \"security.capability\", bytes.fromhex(\"0100000200200000000000000000000000000000\")); print(\"setcap\")'",
        ],
    );
    assert_eq!(ok(&out).trim(), "4755\nsetcap");
}

#[test]
fn volumes_show_the_guests_files_as_its_own_and_keep_its_ids_on_the_host() {
    let dir = TempDir::new("ids");
    std::fs::write(dir.join("theirs"), "").unwrap();
    std::os::unix::fs::chown(dir.join("theirs"), Some(1000), Some(1000)).unwrap();
    let volume = format!("{}:/v:rw", dir.str());
    let out = run(
        Caller::Root,
        &[
            "run",
            "-v",
            &volume,
            "--",
            "sh",
            "-c",
            "stat -c '%u:%g' /v/theirs; echo x > /v/mine; mkdir /v/www; chown 33:33 /v/www",
        ],
    );
    assert_eq!(ok(&out).trim(), "1000:1000");
    let owner = |name: &str| {
        let m = std::fs::metadata(dir.join(name)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("mine"), (0, 0), "guest root's file is the root caller's");
    assert_eq!(owner("www"), (33, 33));
}

#[test]
fn a_root_directory_shows_its_owners_to_the_guest() {
    let root = busybox_rootfs("own-ids-rootfs", Caller::Root);
    std::fs::create_dir_all(root.join("srv")).unwrap();
    std::os::unix::fs::chown(root.join("srv"), Some(33), Some(33)).unwrap();
    let out = run(
        Caller::Root,
        &[
            "run",
            "--rootfs",
            root.str(),
            "--writable",
            "--",
            "sh",
            "-c",
            "ls -ln /bin/busybox /srv -d | while read m l u g rest; do echo $u:$g; done; echo x > /etc/new && echo written",
        ],
    );
    assert_eq!(ok(&out).trim(), "0:0\n33:33\nwritten");
}

both_callers!(
    the_instances_own_namespace_settings_are_writable_and_no_others,
    |caller| {
        let host_swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        let host_msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
        let script = "echo 16000 > /proc/sys/kernel/msgmax && cat /proc/sys/kernel/msgmax; \
                  echo 1 > /proc/sys/vm/swappiness 2>/dev/null || echo refused";
        let out = run(caller, &["run", "--", "sh", "-c", script]);
        assert_eq!(ok(&out).trim(), "16000\nrefused");
        assert_eq!(std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(), host_msgmax);
        assert_eq!(
            std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
            host_swappiness
        );
        if caller == Caller::Root {
            // Guest root as host root: every setting stays read-only.
            let out = run(caller, &["run", "--userns", "host", "--", "sh", "-c", script]);
            assert!(
                stdout(&out).contains("refused") && !stdout(&out).contains("16000"),
                "{}",
                stdout(&out)
            );
        }
    }
);

/// The user whose subordinate ids the rootless-with-subordinate-ids tests
/// run under, and its first subordinate id. Made here when absent (a
/// system user without a home, and a line in /etc/subuid and /etc/subgid
/// each); never removed, and nothing else in those files is touched. Its
/// range, 0x60000000–0x6000FFFF, is below xvisor's pool of host ids
/// (0x70000000 on) and far above the ranges `useradd` hands out.
const SUBIDS_USER: &str = "xvisor-subids";
const SUBIDS_FIRST: u32 = 0x6000_0000;

fn subordinate_caller() -> (u32, u32) {
    require_root();
    for helper in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
        assert!(
            Path::new(helper).exists(),
            "{helper} is needed for the subordinate id tests: apt-get install uidmap (scripts/setup does)"
        );
    }
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, SUBIDS_USER])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().unwrap())
    };
    if id("-u").is_none() {
        let out = std::process::Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(SUBIDS_USER)
            .output()
            .unwrap();
        assert!(
            out.status.success() || id("-u").is_some(),
            "cannot create the test user {SUBIDS_USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = format!("{SUBIDS_USER}:{SUBIDS_FIRST}:65536\n");
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{SUBIDS_USER}:"))) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            if !text.is_empty() && !text.ends_with('\n') {
                std::io::Write::write_all(&mut f, b"\n").unwrap();
            }
            std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        }
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains(&line),
            "{file} gives {SUBIDS_USER} another range than the tests expect"
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// `xvisor ARGS` run by the subordinate-id user.
fn as_subordinate_caller(args: &[&str]) -> std::process::Command {
    let (uid, gid) = subordinate_caller();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid",
        &uid.to_string(),
        "--regid",
        &gid.to_string(),
        "--clear-groups",
        "--",
    ]);
    cmd.arg(binary()).args(args).current_dir("/").stdin(Stdio::null());
    cmd
}

#[test]
fn rootless_callers_with_subordinate_ids_map_them_and_chown_works() {
    let (uid, _) = subordinate_caller();
    let start = |_| {
        as_subordinate_caller(&[
            "run",
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f; sleep 1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    // Two at once: the helpers and the agents are per instance.
    let children: Vec<_> = (0..2).map(start).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = ok(&out);
        let lines: Vec<Vec<u64>> = text
            .lines()
            .take(4)
            .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
            .collect();
        assert_eq!(lines[0], [0, u64::from(uid), 1], "{text}");
        assert_eq!(lines[1], [1, u64::from(SUBIDS_FIRST), 65536], "{text}");
        assert_eq!(lines[3], [1, u64::from(SUBIDS_FIRST), 65536], "{text}");
        assert_eq!(text.lines().nth(4), Some("1000:1000"), "{text}");
        assert!(!stderr(&out).contains("maps one id"), "{}", stderr(&out));
    }
}

#[test]
fn with_subordinate_ids_each_guest_user_changes_only_what_it_may() {
    subordinate_caller();
    // Guest 1000 may change its own file, not root's: the change is made
    // with the guest's credentials, not the caller's.
    // Paths are looked up as the guest would: through directories only
    // their owner may search.
    let script = "touch /tmp/root-owned; \
                  setpriv --reuid 1000 --regid 1000 --clear-groups sh -c \
                  'mkdir -m 700 /tmp/d && touch /tmp/d/mine && chmod 600 /tmp/d/mine && touch -d @0 /tmp/d/mine \
                   && stat -c %a:%u:%Y /tmp/d/mine; chmod 777 /tmp/root-owned 2>/dev/null || echo refused'; \
                  stat -c %a /tmp/root-owned; chmod 640 /tmp/d/mine && chown 5 /tmp/d/mine && stat -c %a:%u /tmp/d/mine";
    let out = as_subordinate_caller(&["run", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(ok(&out).trim(), "600:1000:0\nrefused\n644\n640:5");
}

#[test]
fn with_subordinate_ids_a_volume_keeps_guest_root_as_the_caller_and_others_as_subordinate_ids() {
    let (uid, gid) = subordinate_caller();
    let dir = TempDir::new("subids-volume");
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    let volume = format!("{}:/v:rw", dir.str());
    let out = as_subordinate_caller(&[
        "run",
        "-v",
        &volume,
        "--",
        "sh",
        "-c",
        "echo x > /v/root; echo y > /v/user; chown 1000:1000 /v/user",
    ])
    .output()
    .unwrap();
    ok(&out);
    let owner = |name: &str| {
        let m = std::fs::metadata(dir.join(name)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("root"), (uid, gid), "guest root's file is the caller's");
    assert_eq!(owner("user"), (SUBIDS_FIRST + 999, SUBIDS_FIRST + 999));
}

#[test]
fn with_subordinate_ids_debians_nginx_starts_rootless_with_its_stock_configuration() {
    assert!(
        Path::new("/usr/sbin/nginx").exists() && Path::new("/etc/nginx/nginx.conf").exists(),
        "this test needs Debian's nginx (apt-get install nginx; scripts/setup does)"
    );
    // No flag: /run/nginx.pid, /var/lib/nginx and /var/log/nginx are in the
    // instance's private /var and /run; its workers run as www-data.
    let script = "nginx -g 'daemon off;' & pid=$!
        for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1/ && break; sleep 0.1; done
        curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1/
        ps -o user= --ppid $pid | sort -u
        kill -QUIT $pid; wait $pid; echo exit $?";
    let out = as_subordinate_caller(&["run", "-v", "/var/www:/var/www:ro", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "200\nwww-data\nexit 0\n");
}

#[test]
fn without_subordinate_ids_the_single_id_is_said_once_when_it_matters() {
    let has = |file: &str| {
        std::fs::read_to_string(file)
            .is_ok_and(|t| t.lines().any(|l| l.starts_with("nobody:") || l.starts_with("65534:")))
    };
    assert!(
        !has("/etc/subuid") && !has("/etc/subgid"),
        "this test needs uid 65534 (nobody) without subordinate ids"
    );
    let out = run(Caller::Unprivileged, &["run", "--", "cat", "/proc/self/uid_map"]);
    assert_eq!(ok(&out).split_whitespace().collect::<Vec<_>>(), ["0", "65534", "1"]);
    assert_eq!(stderr(&out), "", "nothing said while nothing needs another id");
    let out = run(
        Caller::Unprivileged,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "touch /tmp/f; chown 1000 /tmp/f; chown 1001 /tmp/f; chown 1002 /tmp/f; true",
        ],
    );
    ok(&out);
    let err = stderr(&out);
    let said: Vec<&str> = err.lines().filter(|l| l.starts_with("xvisor:")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("maps one id") && said[0].contains("/etc/subuid"),
        "{}",
        said[0]
    );
}

#[test]
fn with_subordinate_ids_a_handed_in_file_still_keeps_its_metadata() {
    let (uid, gid) = subordinate_caller();
    let dir = TempDir::new("subids-handed-in");
    let path = dir.join("out");
    std::fs::write(&path, "").unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    set_mode(&path, 0o644);
    let script = "import os\n\
                  for what, attempt in [('fchmod', lambda: os.fchmod(1, 0o4755)), ('chmod', lambda: os.chmod('/proc/self/fd/1', 0o666)), ('fchown', lambda: os.fchown(1, 1000, 1000))]:\n\
                  \x20   try:\n\
                  \x20       attempt(); os.write(2, (what + ' allowed\\n').encode())\n\
                  \x20   except OSError as e:\n\
                  \x20       os.write(2, (what + ' refused\\n').encode())\n";
    let out = as_subordinate_caller(&["run", "--", "python3", "-c", script])
        .stdout(std::fs::OpenOptions::new().append(true).open(&path).unwrap())
        .output()
        .unwrap();
    let report = stderr(&out);
    for what in ["fchmod", "chmod", "fchown"] {
        assert!(report.contains(&format!("{what} refused")), "{what}: {report}");
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "{report}");
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
}

#[test]
fn with_subordinate_ids_a_guest_user_changes_its_descriptors_as_itself() {
    subordinate_caller();
    let script = "import os\n\
                  fd = os.open('/tmp/q', os.O_CREAT | os.O_WRONLY, 0o644)\n\
                  os.fchmod(fd, 0o600)\n\
                  os.setxattr(fd, 'user.k', b'v')\n\
                  print(oct(os.stat('/tmp/q').st_mode & 0o777), os.getxattr('/tmp/q', 'user.k').decode())\n\
                  try:\n\
                  \x20   os.fchown(fd, 0, 0)\n\
                  \x20   print('given to root')\n\
                  except OSError as e:\n\
                  \x20   print('refused', e.errno)\n";
    let out = as_subordinate_caller(&["run", "--user", "1000", "--", "python3", "-c", script])
        .output()
        .unwrap();
    assert_eq!(ok(&out).trim(), "0o600 v\nrefused 1");
}
