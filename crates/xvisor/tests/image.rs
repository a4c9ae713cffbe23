//! `xvisor image` and `xvisor run --image`, black box: images made here from
//! the host's static busybox, as a docker archive and as OCI layouts
//! (directory and tar), imported into a store of the test's own
//! (`XVISOR_STORE`), run, listed, removed; and hostile archives refused —
//! as root and as an unprivileged user.

#[macro_use]
mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::*;
use xvisor_image::fixtures::{gzip, tar_of, write_dir, Fixture};
use xvisor_image::tar::{Builder, Header, Kind};

/// A test's own store and work directory.
struct Env {
    dir: TempDir,
    caller: Caller,
}

impl Env {
    fn new(tag: &str, caller: Caller) -> Self {
        Self {
            dir: TempDir::new(tag),
            caller,
        }
    }

    fn store(&self) -> String {
        format!("{}/store", self.dir.str())
    }

    fn xv(&self, args: &[&str]) -> Output {
        xvisor(self.caller, args)
            .env("XVISOR_STORE", self.store())
            .stdin(Stdio::null())
            .output()
            .expect("spawn xvisor")
    }

    /// Runs xvisor with `input` on its standard input.
    fn xv_with_input(&self, args: &[&str], input: Vec<u8>) -> Output {
        let mut child = xvisor(self.caller, args)
            .env("XVISOR_STORE", self.store())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn xvisor");
        let mut stdin = child.stdin.take().unwrap();
        // xvisor may refuse the stream before reading all of it.
        let writer = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
        let out = child.wait_with_output().expect("wait for xvisor");
        writer.join().unwrap();
        out
    }

    /// Asserts that the store holds `layers` layers and nothing in `tmp/`.
    fn assert_store_empty_but(&self, layers: usize) {
        let count = |d: &str| std::fs::read_dir(Path::new(&self.store()).join(d)).map_or(0, |e| e.count());
        assert_eq!((count("layers"), count("tmp")), (layers, 0));
    }

    /// Writes `files` as a directory (`dir` true) or a tar named `name`;
    /// returns its path.
    fn source(&self, name: &str, files: &[(String, Vec<u8>)], dir: bool) -> String {
        let p = self.dir.join(name);
        if dir {
            write_dir(files, &p).unwrap();
            let _ = std::process::Command::new("chmod")
                .args(["-R", "a+rX"])
                .arg(&p)
                .status();
        } else {
            std::fs::write(&p, tar_of(files)).unwrap();
            set_mode(&p, 0o644);
        }
        p.to_str().unwrap().to_string()
    }

    /// Asserts that no image, blob or layer is left in the store.
    fn assert_store_empty(&self) {
        for d in ["images", "blobs/sha256", "layers", "tmp"] {
            let p = Path::new(&self.store()).join(d);
            let Ok(entries) = std::fs::read_dir(&p) else { continue };
            let left: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            assert!(left.is_empty(), "left in {}: {left:?}", p.display());
        }
    }
}

fn busybox() -> Vec<u8> {
    let path = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is needed for the image tests: apt-get install busybox-static");
    std::fs::read(path).unwrap()
}

/// Layer 1: busybox and its applets, an /etc with two users, a file and a
/// directory the next layer deletes and makes opaque.
fn base_layer() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for d in [
        "bin/",
        "etc/",
        "var/",
        "var/cache/",
        "srv/",
        "root/",
        "home/",
        "home/app/",
    ] {
        b.dir(d).unwrap();
    }
    b.file("bin/busybox", 0o755, &busybox()).unwrap();
    for applet in ["sh", "cat", "echo", "ls", "id", "pwd", "test", "rm", "touch"] {
        b.symlink(&format!("bin/{applet}"), "busybox").unwrap();
    }
    b.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    b.file("etc/group", 0o644, b"root:x:0:\napp:x:1000:\n").unwrap();
    b.file("etc/motd", 0o644, b"from the base layer\n").unwrap();
    b.file("var/cache/old", 0o644, b"old\n").unwrap();
    b.finish().unwrap()
}

/// Layer 2: deletes /etc/motd (whiteout), makes /var/cache opaque with one
/// new file.
fn top_layer() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    b.file("etc/.wh.motd", 0o644, b"").unwrap();
    b.dir("var/cache/").unwrap();
    b.file("var/cache/.wh..wh..opq", 0o644, b"").unwrap();
    b.file("var/cache/new", 0o644, b"new\n").unwrap();
    b.finish().unwrap()
}

const DEFAULT_SCRIPT: &str =
    "echo \"$GREETING from $(pwd)\"; cat /etc/motd 2>/dev/null || echo motd-deleted; ls /var/cache; id -u";

fn image() -> Fixture {
    let mut f = Fixture::new(
        vec![base_layer(), top_layer()],
        serde_json::json!({
            "Env": ["PATH=/bin", "GREETING=hello"],
            "Cmd": ["sh", "-c", DEFAULT_SCRIPT],
            "WorkingDir": "/srv",
        }),
    );
    f.ref_name = "busybox-test:1".into();
    f
}

const EXPECTED_DEFAULT: &str = "hello from /srv\nmotd-deleted\nnew\n";

both_callers!(import_list_run_remove_every_format, |caller| {
    let env = Env::new("img", caller);
    let f = image();
    let docker = env.source("docker.tar", &f.docker_files(), false);
    let oci_dir = env.source("oci-layout", &f.oci_files(), true);
    let oci_tar = env.source("oci.tar", &f.oci_files(), false);

    let out = ok(&env.xv(&["image", "import", &docker]));
    assert!(out.starts_with("Imported busybox-test:1 ("), "{out}");
    let out = ok(&env.xv(&["image", "import", &oci_dir, "--name", "oci-dir"]));
    assert!(out.contains("2 already in the store"), "layers not shared: {out}");
    ok(&env.xv(&["image", "import", &oci_tar, "--name", "oci-tar:v2"]));

    let ls = ok(&env.xv(&["image", "ls"]));
    let names: Vec<&str> = ls.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["busybox-test:1", "oci-dir:latest", "oci-tar:v2"], "{ls}");
    let json: serde_json::Value = serde_json::from_str(&ok(&env.xv(&["image", "ls", "--json"]))).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(3));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.xv(&["image", "inspect", "oci-tar:v2", "--json"]))).unwrap();
    assert_eq!(inspect["config"]["WorkingDir"], "/srv");
    assert_eq!(inspect["layers"].as_array().map(Vec::len), Some(2));
    let text = ok(&env.xv(&["image", "inspect", "busybox-test:1"]));
    assert!(text.contains("Cmd:") && text.contains("GREETING=hello"), "{text}");

    // Each runs its default command; the whiteout and the opaque directory
    // of the second layer are honoured; root inside.
    for name in ["busybox-test:1", "oci-dir", "oci-tar:v2"] {
        let out = ok(&env.xv(&["run", "--image", name]));
        assert_eq!(out, format!("{EXPECTED_DEFAULT}0\n"), "{name}");
    }
    // A command replaces Cmd; -e, -w and --user override the image.
    let out = ok(&env.xv(&[
        "run",
        "--image",
        "oci-dir",
        "-e",
        "GREETING=bye",
        "-w",
        "/tmp",
        "--user",
        "1000",
        "--",
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; echo $HOME",
    ]));
    assert_eq!(out, "bye\n/tmp\n1000\n/home/app\n");
    // Writes go to a throwaway layer; the store is untouched.
    let out = ok(&env.xv(&[
        "run",
        "--image",
        "oci-dir",
        "--",
        "sh",
        "-c",
        "echo x > /bin/new && rm /bin/cat && cat /bin/new",
    ]));
    assert_eq!(out, "x\n");
    let out = ok(&env.xv(&[
        "run",
        "--image",
        "oci-dir",
        "--",
        "sh",
        "-c",
        "test -e /bin/new || ls /bin/cat",
    ]));
    assert_eq!(out, "/bin/cat\n");
    // The instance's own hostname, /proc and /dev.
    let out = ok(&env.xv(&[
        "run",
        "--image",
        "oci-dir",
        "--hostname",
        "imgbox",
        "--",
        "sh",
        "-c",
        "cat /etc/hostname; test -e /proc/self/status && test -c /dev/null && echo ok",
    ]));
    assert_eq!(out, "imgbox\nok\n");

    let o = env.xv(&["run", "--image", "no-such-image"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no image \"no-such-image\""), "{}", stderr(&o));

    for name in ["busybox-test:1", "oci-dir", "oci-tar:v2"] {
        ok(&env.xv(&["image", "rm", name]));
    }
    assert_eq!(ok(&env.xv(&["image", "ls"])).lines().count(), 1);
    env.assert_store_empty();
});

both_callers!(short_names_resolve_as_podman_does, |caller| {
    let env = Env::new("imgnames", caller);
    // What 'podman save localhost/busybox:1' writes.
    let mut f = image();
    f.ref_name = "localhost/busybox:1".into();
    let src = env.source("podman.tar", &f.docker_files(), false);
    let out = ok(&env.xv(&["image", "import", &src]));
    assert!(out.starts_with("Imported localhost/busybox:1 ("), "{out}");
    for name in ["busybox:1", "localhost/busybox:1", "busybox", "localhost/busybox"] {
        let out = ok(&env.xv(&["run", "--image", name, "--", "echo", "ran"]));
        assert_eq!(out, "ran\n", "run --image {name}");
        let text = ok(&env.xv(&["image", "inspect", name]));
        assert!(
            text.contains("Names:       localhost/busybox:1"),
            "inspect {name}: {text}"
        );
    }
    // A name given with its registry stands for itself only.
    let o = env.xv(&["run", "--image", "docker.io/library/busybox:1", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no image"), "{}", stderr(&o));
    // Docker Hub's names, under every spelling Docker accepts.
    f.ref_name = "docker.io/library/busybox:1".into();
    let src = env.source("hub.tar", &f.docker_files(), false);
    let out = ok(&env.xv(&["image", "import", &src]));
    assert!(out.starts_with("Imported busybox:1 ("), "{out}");
    for name in [
        "busybox:1",
        "docker.io/library/busybox:1",
        "docker.io/busybox:1",
        "library/busybox:1",
    ] {
        let text = ok(&env.xv(&["image", "inspect", name]));
        assert!(
            text.contains("Names:       busybox:1, localhost/busybox:1"),
            "inspect {name}: {text}"
        );
    }
    // Two tags and no 'latest': one line naming both, exit 125, for run,
    // inspect and rm alike.
    f.ref_name = "localhost/busybox:2".into();
    let src = env.source("two.tar", &f.docker_files(), false);
    ok(&env.xv(&["image", "import", &src]));
    ok(&env.xv(&["image", "rm", "docker.io/library/busybox:1"]));
    for args in [
        &["run", "--image", "busybox", "--", "true"][..],
        &["image", "inspect", "busybox"][..],
        &["image", "rm", "busybox"][..],
    ] {
        let o = env.xv(args);
        assert_eq!(code(&o), 125, "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("ambiguous") && err.contains("localhost/busybox:1, localhost/busybox:2"),
            "{args:?}: {err}"
        );
    }
    let out = ok(&env.xv(&["image", "rm", "busybox:2"]));
    assert_eq!(out, "Removed localhost/busybox:2\n");
    let out = ok(&env.xv(&["image", "rm", "busybox"]));
    assert_eq!(out, "Removed localhost/busybox:1\n");
    env.assert_store_empty();
});

/// A pool of the test's, stopped on drop.
struct TestPool<'a> {
    env: &'a Env,
    name: String,
}

impl<'a> TestPool<'a> {
    fn start(env: &'a Env, tag: &str, options: &[&str]) -> Self {
        let who = if env.caller == Caller::Root { "r" } else { "u" };
        let name = format!("tpi-{tag}-{who}");
        let _ = env.xv(&["pool", "stop", &name]);
        let mut args = vec!["pool", "start", "--name", &name, "--size", "1"];
        args.extend_from_slice(options);
        ok(&env.xv(&args));
        TestPool { env, name }
    }
}

impl Drop for TestPool<'_> {
    fn drop(&mut self) {
        let _ = self.env.xv(&["pool", "stop", &self.name]);
    }
}

both_callers!(a_pool_of_an_image_runs_its_default_command, |caller| {
    let env = Env::new("imgpool", caller);
    let docker = env.source("docker.tar", &image().docker_files(), false);
    ok(&env.xv(&["image", "import", &docker]));
    let pool = TestPool::start(&env, "img", &["--image", "busybox-test:1"]);
    // No program: the image's Cmd, environment and working directory, as
    // a cold `run --image`; -e still applies.
    assert_eq!(
        ok(&env.xv(&["run", "--pool", &pool.name])),
        format!("{EXPECTED_DEFAULT}0\n")
    );
    let out = ok(&env.xv(&["run", "--pool", &pool.name, "-e", "GREETING=hi"]));
    assert!(out.starts_with("hi from /srv\n"), "{out}");
    // A program replaces it.
    assert_eq!(ok(&env.xv(&["run", "--pool", &pool.name, "--", "echo", "x"])), "x\n");
    // A pool without an image has no default: refused in one line.
    let bare = TestPool::start(&env, "bare", &[]);
    let o = env.xv(&["run", "--pool", &bare.name]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("no default program"), "{}", stderr(&o));
});

both_callers!(import_from_standard_input, |caller| {
    let env = Env::new("imgstdin", caller);
    let mut f = image();
    f.ref_name = "localhost/piped:1".into();
    // 'podman save … | xvisor image import -', both formats.
    let o = env.xv_with_input(&["image", "import", "-"], tar_of(&f.docker_files()));
    assert!(ok(&o).starts_with("Imported localhost/piped:1 ("), "{}", ok(&o));
    let o = env.xv_with_input(&["image", "import", "-", "--name", "oci:2"], tar_of(&f.oci_files()));
    assert!(ok(&o).contains("2 already in the store"), "{}", ok(&o));
    assert_eq!(ok(&env.xv(&["run", "--image", "piped", "--", "echo", "ran"])), "ran\n");
    env.assert_store_empty_but(2);
    // Cut short, bigger than allowed, not a tar, gzip-compressed: one line
    // each, and nothing left (no copy of the stream either).
    let whole = tar_of(&f.docker_files());
    let cases: Vec<(&str, Vec<&str>, Vec<u8>)> = vec![
        ("truncated", vec![], whole[..whole.len() / 2].to_vec()),
        ("larger than 1M", vec!["--max-layer-size", "1M"], whole.clone()),
        ("garbage", vec![], vec![0x41; 4096]),
        ("gunzip", vec![], gzip(&whole)),
    ];
    ok(&env.xv(&["image", "rm", "piped", "oci:2"]));
    for (what, extra, data) in cases {
        let mut args = vec!["image", "import", "-", "--name", "bad"];
        args.extend(extra);
        let o = env.xv_with_input(&args, data);
        assert_eq!(code(&o), 125, "{what} was accepted");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("xvisor: standard input: "), "{what}: {err}");
        if what != "garbage" {
            assert!(err.contains(what), "{err}");
        }
        env.assert_store_empty();
    }
});

both_callers!(resolv_conf_fits_the_network, |caller| {
    let env = Env::new("imgdns", caller);
    let src = env.source("dns.tar", &image().docker_files(), false);
    ok(&env.xv(&["image", "import", &src, "--name", "dns"]));
    let script = "cat /etc/resolv.conf; echo x 2>/dev/null > /etc/resolv.conf || echo read-only";
    // The host's network: the host's servers, as the host has them.
    let host = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    let out = ok(&env.xv(&["run", "--image", "dns", "--net", "host", "--", "sh", "-c", script]));
    assert_eq!(out, format!("{}read-only\n", String::from_utf8_lossy(&host)));
    // Its own network: loopback only, said so, and nothing outside named.
    let out = ok(&env.xv(&["run", "--image", "dns", "--", "sh", "-c", script]));
    let servers: Vec<&str> = out.lines().filter(|l| l.starts_with("nameserver")).collect();
    assert_eq!(servers, ["nameserver 127.0.0.1"], "{out}");
    assert!(out.contains("--net host") && out.ends_with("read-only\n"), "{out}");
    ok(&env.xv(&["image", "rm", "dns"]));
    env.assert_store_empty();
});

both_callers!(image_user_from_its_passwd, |caller| {
    let env = Env::new("imguser", caller);
    let mut f = image();
    f.config = serde_json::json!({"User": "app", "Entrypoint": ["sh", "-c"], "Cmd": ["id -u; id -g; echo $HOME"], "Env": ["PATH=/bin"]});
    let src = env.source("user.tar", &f.docker_files(), false);
    ok(&env.xv(&["image", "import", &src, "--name", "user"]));
    assert_eq!(ok(&env.xv(&["run", "--image", "user"])), "1000\n1000\n/home/app\n");
    // With an Entrypoint, the command line gives its arguments.
    assert_eq!(ok(&env.xv(&["run", "--image", "user", "--", "echo entry"])), "entry\n");
    // --entrypoint replaces it; the arguments follow, or the image's Cmd.
    assert_eq!(
        ok(&env.xv(&["run", "--image", "user", "--entrypoint", "echo", "--", "replaced"])),
        "replaced\n"
    );
    assert_eq!(
        ok(&env.xv(&["run", "--image", "user", "--entrypoint", "echo"])),
        "id -u; id -g; echo $HOME\n"
    );
    f.config = serde_json::json!({"User": "ghost", "Cmd": ["true"]});
    let src = env.source("ghost.tar", &f.docker_files(), false);
    ok(&env.xv(&["image", "import", &src, "--name", "ghost"]));
    let o = env.xv(&["run", "--image", "ghost"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("\"ghost\": not in the image's /etc/passwd"),
        "{}",
        stderr(&o)
    );
    ok(&env.xv(&["image", "rm", "user", "ghost"]));
    env.assert_store_empty();
});

both_callers!(user_names_on_the_command_line, |caller| {
    let env = Env::new("imgusers", caller);
    let src = env.source("users.tar", &image().docker_files(), false);
    ok(&env.xv(&["image", "import", &src, "--name", "users"]));
    let show = ["--", "sh", "-c", "echo $(id -u):$(id -g) $HOME"];
    let run = |user: &str| {
        let mut args = vec!["run", "--image", "users", "--user", user];
        args.extend(show);
        env.xv(&args)
    };
    // Names from the image's own /etc/passwd and /etc/group.
    assert_eq!(ok(&run("app")), "1000:1000 /home/app\n");
    assert_eq!(ok(&run("app:root")), "1000:0 /home/app\n");
    assert_eq!(ok(&run("0:app")), "0:1000 /root\n");
    for (user, needle) in [
        ("ghost", "--user \"ghost\": not in the image's /etc/passwd"),
        ("app:wheel", "--user group \"wheel\": not in the image's /etc/group"),
        ("app:", "--user \"app:\": give UID[:GID] or NAME[:GROUP]"),
    ] {
        let o = run(user);
        assert_eq!(code(&o), 125, "{user}");
        assert_eq!(stderr(&o).lines().count(), 1, "{user}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{user}: {}", stderr(&o));
    }
    ok(&env.xv(&["image", "rm", "users"]));
    // The default root shows the host's /etc: its names.
    let host = |name: &str| {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let f: Vec<String> = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("the host has no user {name}"))
            .split(':')
            .map(str::to_string)
            .collect();
        format!("{}:{}\n", f[2], f[3])
    };
    let out = ok(&env.xv(&["run", "--user", "nobody", "--", "sh", "-c", "echo $(id -u):$(id -g)"]));
    assert_eq!(out, host("nobody"));
    let out = ok(&env.xv(&[
        "run",
        "--user",
        "daemon:root",
        "--",
        "sh",
        "-c",
        "echo $(id -u):$(id -g)",
    ]));
    let uid = host("daemon");
    assert_eq!(out, format!("{}:0\n", uid.split(':').next().unwrap()));
    let o = env.xv(&["run", "--user", "xv-no-such-user", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--user \"xv-no-such-user\": not in the host's /etc/passwd"),
        "{}",
        stderr(&o)
    );
    env.assert_store_empty();
});

/// Whether `s` is a size as xvisor shows them: `N B` or `N.N KiB|MiB|GiB`.
fn is_size(s: &str) -> bool {
    let Some((n, unit)) = s.split_once(' ') else {
        return false;
    };
    match unit {
        "B" => n.bytes().all(|b| b.is_ascii_digit()),
        "KiB" | "MiB" | "GiB" => n
            .split_once('.')
            .is_some_and(|(i, d)| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) && d.len() == 1),
        _ => false,
    }
}

both_callers!(sizes_in_one_unit_system, |caller| {
    let env = Env::new("imgunits", caller);
    let src = env.source("units.tar", &image().oci_files(), false);
    let out = ok(&env.xv(&["image", "import", &src, "--name", "units"]));
    let size = out.trim_end().rsplit(", ").next().unwrap().trim_end_matches(')');
    assert!(is_size(size), "import: {out}");
    let text = ok(&env.xv(&["image", "inspect", "units"]));
    let size = text.lines().find_map(|l| l.strip_prefix("Size:")).unwrap();
    assert!(is_size(size.trim().trim_end_matches(" unpacked")), "{text}");
    let layers: Vec<&str> = text.lines().filter(|l| l.starts_with("  sha256:")).collect();
    assert_eq!(layers.len(), 2, "{text}");
    for l in layers {
        let (_, sizes) = l.trim().split_once("  ").unwrap();
        let (unpacked, imported) = sizes.split_once(" unpacked, ").unwrap();
        assert!(
            is_size(unpacked) && is_size(imported.trim_end_matches(" imported")),
            "{l}"
        );
    }
    let ls = ok(&env.xv(&["image", "ls"]));
    let row = ls.lines().nth(1).unwrap();
    let words: Vec<&str> = row.split_whitespace().collect();
    assert!(is_size(&words[words.len() - 2..].join(" ")), "{ls}");
    // --json: bytes, as numbers.
    let json: serde_json::Value = serde_json::from_str(&ok(&env.xv(&["image", "inspect", "units", "--json"]))).unwrap();
    assert!(json["size"].is_u64() && json["layers"][0]["size"].is_u64(), "{json}");
    ok(&env.xv(&["image", "rm", "units"]));
});

/// A layer holding one hostile entry after a harmless one.
fn layer_with(add: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    b.file("ok", 0o644, b"fine").unwrap();
    add(&mut b);
    b.finish().unwrap()
}

both_callers!(hostile_archives_are_refused, |caller| {
    let env = Env::new("hostile", caller);
    let canary = format!("/var/tmp/xvt-escaped-{}", std::process::id());
    let rel = format!("../../../../../../..{canary}");
    let cases: Vec<(&str, Fixture, &str)> = vec![
        (
            "dotdot",
            Fixture::new(
                vec![layer_with(|b| b.file(&rel, 0o644, b"x").unwrap())],
                serde_json::json!({}),
            ),
            "'..' component",
        ),
        (
            "absolute",
            Fixture::new(
                vec![layer_with(|b| b.file(&canary, 0o644, b"x").unwrap())],
                serde_json::json!({}),
            ),
            "absolute path",
        ),
        (
            "through-symlink",
            Fixture::new(
                vec![layer_with(|b| {
                    b.symlink("out", "/var/tmp").unwrap();
                    b.file(&format!("out/xvt-escaped-{}", std::process::id()), 0o644, b"x")
                        .unwrap();
                })],
                serde_json::json!({}),
            ),
            "passes through a symlink",
        ),
        (
            "hardlink-outside",
            Fixture::new(
                vec![layer_with(|b| {
                    b.append(&Header::new(Kind::HardLink, "h").link("/etc/passwd"), b"")
                        .unwrap()
                })],
                serde_json::json!({}),
            ),
            "outside the layer",
        ),
        (
            "hardlink-dotdot",
            Fixture::new(
                vec![layer_with(|b| {
                    b.append(&Header::new(Kind::HardLink, "h").link("../x"), b"").unwrap()
                })],
                serde_json::json!({}),
            ),
            "outside the layer",
        ),
        (
            "hardlink-later",
            Fixture::new(
                vec![layer_with(|b| {
                    b.append(&Header::new(Kind::HardLink, "h").link("later"), b"").unwrap()
                })],
                serde_json::json!({}),
            ),
            "not (yet) in the layer",
        ),
        (
            "device",
            Fixture::new(
                vec![layer_with(|b| {
                    b.append(&Header::new(Kind::CharDevice, "mem").device(1, 1), b"")
                        .unwrap()
                })],
                serde_json::json!({}),
            ),
            "device node",
        ),
    ];
    for (name, fixture, needle) in &cases {
        for (kind, files) in [("oci", fixture.oci_files()), ("docker", fixture.docker_files())] {
            let src = env.source(&format!("{name}-{kind}.tar"), &files, false);
            let o = env.xv(&["image", "import", &src]);
            assert_eq!(code(&o), 125, "{name} {kind} was accepted");
            let err = stderr(&o);
            assert_eq!(err.lines().count(), 1, "{name} {kind}: {err}");
            assert!(err.contains(needle), "{name} {kind}: {err}");
            assert!(!Path::new(&canary).exists(), "{name} {kind} wrote outside the store");
            env.assert_store_empty();
        }
    }

    let good = image();
    // A digest mismatch: a layer blob replaced by other content.
    let mut files = good.oci_files();
    let other = gzip(&layer_with(|_| {}));
    let layer = files
        .iter()
        .find(|(n, d)| n.starts_with("blobs/") && d.starts_with(&[0x1f, 0x8b]))
        .map(|(n, _)| n.clone())
        .unwrap();
    files.iter_mut().find(|(n, _)| *n == layer).unwrap().1 = other.clone();
    refused(
        &env,
        "mismatch",
        &files,
        &["digest mismatch", "where the manifest says"],
    );
    // The same in a docker archive (its layers are checked against the
    // config's diff ids).
    let mut files = good.docker_files();
    files.iter_mut().find(|(n, _)| n.ends_with("layer.tar")).unwrap().1 = layer_with(|_| {});
    refused(&env, "docker-mismatch", &files, &["digest mismatch"]);
    // A truncated layer: the blob cut in half (size and digest then differ,
    // and the gzip stream ends early).
    let mut files = good.oci_files();
    let blob = files.iter_mut().find(|(n, _)| *n == layer).unwrap();
    let cut = blob.1.len() / 2;
    blob.1.truncate(cut);
    refused(
        &env,
        "truncated",
        &files,
        &["truncated", "where the manifest says", "digest mismatch"],
    );
    // A manifest naming a missing blob.
    let mut files = good.oci_files();
    files.retain(|(n, _)| *n != layer);
    refused(&env, "missing", &files, &["which is not in the archive"]);
    let mut files = good.docker_files();
    files.retain(|(n, _)| !n.ends_with("layer.tar"));
    refused(&env, "docker-missing", &files, &["which is not in the archive"]);
    // Malformed JSON.
    let mut files = good.oci_files();
    files.iter_mut().find(|(n, _)| n == "index.json").unwrap().1 = b"{\"manifests\": [{".to_vec();
    refused(&env, "json", &files, &["index.json: malformed JSON"]);
    let mut files = good.docker_files();
    files.iter_mut().find(|(n, _)| n == "manifest.json").unwrap().1 = b"[{\"Config\": 7}]".to_vec();
    refused(&env, "docker-json", &files, &["manifest.json: malformed JSON"]);
    // zstd layers: named, not guessed at.
    let mut z = image();
    z.media_type = Some("application/vnd.oci.image.layer.v1.tar+zstd".into());
    refused(
        &env,
        "zstd",
        &z.oci_files(),
        &["unsupported media type application/vnd.oci.image.layer.v1.tar+zstd"],
    );
    // A gzip bomb: 64 MiB of zeros in about 64 KiB.
    let mut b = Builder::new(Vec::new());
    b.file("zeros", 0o644, &vec![0u8; 64 << 20]).unwrap();
    let bomb = Fixture::new(vec![b.finish().unwrap()], serde_json::json!({}));
    let src = env.source("bomb.tar", &bomb.oci_files(), false);
    let o = env.xv(&["image", "import", "--max-layer-size", "16M", &src]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("expands past 16M (--max-layer-size)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("decompression bomb"), "{}", stderr(&o));
    env.assert_store_empty();
    // Not an archive at all.
    let src = env.source("garbage.tar", &[], false);
    std::fs::write(&src, vec![0x41u8; 2048]).unwrap();
    let o = env.xv(&["image", "import", &src]);
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    env.assert_store_empty();
});

fn refused(env: &Env, tag: &str, files: &[(String, Vec<u8>)], any_of: &[&str]) {
    let src = env.source(&format!("{tag}.tar"), files, false);
    let o = env.xv(&["image", "import", &src]);
    assert_eq!(code(&o), 125, "{tag} was accepted");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{tag}: {err}");
    assert!(any_of.iter().any(|n| err.contains(n)), "{tag}: {err}");
    env.assert_store_empty();
}

#[test]
fn help_teaches_images() {
    let text = ok(&run(Caller::Root, &["image", "--help"]));
    for needle in ["import", "inspect", "XVISOR_STORE", "Examples", "run --image"] {
        assert!(text.contains(needle), "image --help lacks {needle}");
    }
    let text = ok(&run(Caller::Root, &["run", "--help"]));
    assert!(text.contains("--image NAME"), "run --help lacks --image");
    let o = run(Caller::Root, &["run", "--image", "x", "--rootfs", "/", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--image excludes"), "{}", stderr(&o));
}
