//! What the default instance does not show of the host, said: its own
//! writable `/var` and `/run`, and the hint that names the `-v` to add when
//! a guest fails on a host path it does not see — as root and rootless.

#[macro_use]
mod common;

use common::*;

const HINT: &str = "xvisor: hint: ";

fn hints(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with(HINT))
        .map(str::to_string)
        .collect()
}

both_callers!(var_and_run_are_private_and_writable, |caller| {
    let dir = TempDir::new("var");
    std::fs::write(dir.join("canary"), "host-canary").unwrap();
    let script = "set -e
        touch /var/lib/a /var/log/b /var/cache/c /var/tmp/d /run/e.pid /run/lock/f /var/run/g /var/lock/h
        stat -c '%n %a' /var/tmp /run/lock
        readlink /var/run /var/lock
        ls -A /var/tmp
        find /var /run -path /var/lib/dpkg -prune -o -type f -print | sort
        ";
    let out = ok(&run(caller, &["run", "--", "sh", "-c", script]));
    assert_eq!(
        out,
        "/var/tmp 1777\n/run/lock 1777\n/run\n/run/lock\nd\n/run/e.pid\n/run/g\n/run/lock/f\n/run/lock/h\n/var/cache/c\n/var/lib/a\n/var/log/b\n/var/tmp/d\n",
        "nothing of the host's /var (here {}) may show",
        dir.str()
    );
    // The same tmpfs bound as /tmp: one for both.
    let out = ok(&run(
        caller,
        &[
            "run",
            "--tmpfs-size",
            "8M",
            "--",
            "sh",
            "-c",
            "df -k /var /run | tail -n +2",
        ],
    ));
    let sizes: Vec<&str> = out.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(sizes, ["8192", "8192"], "{out}");
    // A volume over it shows the host's; so does the host root.
    let vol = format!("{0}:{0}:ro", dir.str());
    let canary = format!("{}/canary", dir.str());
    assert_eq!(
        ok(&run(caller, &["run", "-v", &vol, "--", "cat", &canary])),
        "host-canary"
    );
    assert_eq!(
        ok(&run(caller, &["run", "-v", "/var:/var:ro", "--", "cat", &canary])),
        "host-canary"
    );
    assert_eq!(
        ok(&run(caller, &["run", "--host-root", "--", "cat", &canary])),
        "host-canary"
    );
});

both_callers!(packages_installed_are_listed, |caller| {
    assert!(
        std::path::Path::new("/var/lib/dpkg/status").exists(),
        "this test needs a Debian host (dpkg's database at /var/lib/dpkg)"
    );
    let out = ok(&run(
        caller,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "dpkg-query -W -f '${Package}\\n' dpkg; touch /var/lib/dpkg/x 2>/dev/null && echo written || echo refused",
        ],
    ));
    assert_eq!(out, "dpkg\nrefused\n");
    let out = ok(&run(
        caller,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "apt list --installed 2>/dev/null | grep -c installed",
        ],
    ));
    assert!(out.trim().parse::<u32>().unwrap() > 10, "{out}");
});

both_callers!(a_guest_failing_on_a_host_path_gets_the_volume_to_add, |caller| {
    let dir = TempDir::new("absent");
    std::fs::write(dir.join("notes.txt"), "notes").unwrap();
    std::fs::copy("/usr/bin/true", dir.join("tool")).unwrap();
    let notes = format!("{}/notes.txt", dir.str());
    let want = format!(
        "{HINT}{notes} is on the host but not in the instance: add -v {0}:{0}:ro",
        dir.str()
    );
    // Named on the command line, and the guest failed.
    let o = run(caller, &["run", "--", "cat", &notes]);
    assert_eq!(code(&o), 1);
    assert_eq!(hints(&o), std::slice::from_ref(&want), "{}", stderr(&o));
    // Never when the guest succeeded, nor for a path the host lacks too.
    let o = run(
        caller,
        &["run", "--", "sh", "-c", "cat \"$0\" 2>/dev/null; true", &notes],
    );
    assert_eq!((code(&o), hints(&o)), (0, vec![]), "{}", stderr(&o));
    let missing = format!("{}/missing", dir.str());
    let o = run(caller, &["run", "--", "cat", &missing]);
    assert_eq!((code(&o), hints(&o)), (1, vec![]), "{}", stderr(&o));
    // Shown, then found: no hint.
    let vol = format!("{0}:{0}:ro", dir.str());
    assert_eq!(ok(&run(caller, &["run", "-v", &vol, "--", "cat", &notes])), "notes");
    // A program that is not there.
    let tool = format!("{}/tool", dir.str());
    let o = run(caller, &["run", "--", &tool]);
    assert_eq!(code(&o), 127);
    assert_eq!(
        hints(&o),
        [format!(
            "{HINT}{tool} is on the host but not in the instance: add -v {0}:{0}:ro",
            dir.str()
        )],
        "{}",
        stderr(&o)
    );
    // Not on the command line (the script's text names no path): only a
    // trace sees it.
    let trace = dir.join("trace.json");
    let trace = trace.to_str().unwrap();
    let script = format!("cat $(printf '%s' {}) 2>/dev/null; exit 3", notes.replace('/', "'/'"));
    let o = run(caller, &["run", "--trace", trace, "--", "sh", "-c", &script]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(hints(&o), [want], "{}", stderr(&o));
    let text = std::fs::read_to_string(trace).unwrap();
    let hinted: Vec<&str> = text.lines().filter(|l| l.contains("\"hint\": ")).collect();
    assert_eq!(hinted.len(), 1, "{text}");
    assert!(hinted[0].contains("\"errno\": \"ENOENT\""), "{}", hinted[0]);
    assert!(
        hinted[0].contains(&format!("add -v {0}:{0}:ro", dir.str())),
        "{}",
        hinted[0]
    );
    // A trace records it whatever the end; the line at exit is for failures.
    std::fs::remove_file(trace).unwrap();
    let script = format!("cat $(printf '%s' {}) 2>/dev/null; true", notes.replace('/', "'/'"));
    let o = run(caller, &["run", "--trace", trace, "--", "sh", "-c", &script]);
    assert_eq!((code(&o), hints(&o)), (0, vec![]), "{}", stderr(&o));
    assert!(std::fs::read_to_string(trace).unwrap().contains("\"hint\": "));
    // A missing directory to write in: `:rw` or `--tmpfs`.
    let made = format!("{}/new", dir.str());
    let script = format!("mkdir $(printf '%s' {}); exit 4", made.replace('/', "'/'"));
    let o = run(caller, &["run", "--trace", trace, "--", "sh", "-c", &script]);
    assert_eq!(code(&o), 4);
    assert_eq!(
        hints(&o),
        [format!(
            "{HINT}{made} cannot be made: the host's {0} is not in the instance (add -v {0}:{0}:rw, or --tmpfs {0} for an empty private one)",
            dir.str()
        )],
        "{}",
        stderr(&o)
    );
});

#[test]
fn debians_nginx_starts_with_its_stock_configuration() {
    assert!(
        std::path::Path::new("/usr/sbin/nginx").exists() && std::path::Path::new("/etc/nginx/nginx.conf").exists(),
        "this test needs Debian's nginx (apt-get install nginx; scripts/setup does)"
    );
    // Its own network: port 80 is the instance's. No flag: /run/nginx.pid,
    // /var/lib/nginx and /var/log/nginx are in the private /var and /run.
    let script = "nginx -g 'daemon off;' & pid=$!
        for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1/ && break; sleep 0.1; done
        curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1/
        ps -o user= --ppid $pid | sort -u
        kill -QUIT $pid; wait $pid; echo exit $?
        wc -l < /var/log/nginx/access.log";
    let out = ok(&run(Caller::Root, &["run", "--", "sh", "-c", script]));
    // 404: the default site's /var/www/html is the host's, not shown.
    // Two requests logged: the first answered in the wait loop, and one.
    assert_eq!(out, "404\nwww-data\nexit 0\n2\n");
    let out = ok(&run(
        Caller::Root,
        &["run", "-v", "/var/www:/var/www:ro", "--", "sh", "-c", script],
    ));
    assert!(out.starts_with("200\n"), "{out}");
}
