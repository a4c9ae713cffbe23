//! The config reader, section by section, against what engines write.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xvisor_confine::identity::{CapabilityCeiling, CapabilitySets};
use xvisor_confine::RootBase;
use xvisor_instance::hooks::Hook;
use xvisor_instance::Network;

use super::cgroups_path::{cgroup_path, systemd_scope};
use super::resources::is_cpu_list;
use super::*;
use xvisor_sys::caps::cap;

fn parse(v: Value) -> Result<Container, ConfigError> {
    parse_config(&v.to_string(), Path::new("/bundle"), "test")
}

#[test]
fn the_default_config_is_accepted() {
    let c = parse(default_config(false)).unwrap();
    assert_eq!(c.spec.argv, vec!["sh"]);
    assert!(c.spec.tty);
    assert_eq!(c.spec.network, Network::None);
    assert_eq!(c.spec.nofile, Some(1024));
    assert!(c.spec.root.extras.readonly_root);
    assert!(c.spec.root.extras.masked.contains(&"/proc/kcore".to_string()));
    assert_eq!(
        c.spec.root.base,
        RootBase::Bundle {
            path: PathBuf::from("/bundle/rootfs")
        }
    );
    let caps = c.spec.capabilities.unwrap();
    assert_eq!(caps.granted, vec![cap::KILL, cap::NET_BIND_SERVICE, cap::AUDIT_WRITE]);
    assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
}

fn capability_sets(uid: u32, caps: Value) -> Result<CapabilitySets, ConfigError> {
    let mut config = default_config(false);
    config["process"]["user"]["uid"] = Value::from(uid);
    config["process"]["capabilities"] = caps;
    parse(config).map(|c| c.spec.capabilities.unwrap())
}

#[test]
fn inheritable_and_ambient_capabilities_are_honoured() {
    // What the conformance suite's generator writes: all five sets the
    // engines' 14.
    let all: Vec<&str> = CAPABILITY_NAMES.iter().map(|(n, _)| *n).collect();
    let every = serde_json::json!({
        "bounding": all, "effective": all, "permitted": all, "inheritable": all, "ambient": all
    });
    let sets = capability_sets(0, every.clone()).unwrap();
    let mut numbers: Vec<u32> = CAPABILITY_NAMES.iter().map(|(_, c)| *c).collect();
    numbers.sort_unstable();
    assert_eq!(sets.granted, numbers);
    assert_eq!(sets.inheritable, numbers);
    assert_eq!(sets.ambient, numbers);
    // A user other than root gets its ambient set as well.
    assert_eq!(capability_sets(1000, every).unwrap().ambient, numbers);
    let sets = capability_sets(
        1000,
        serde_json::json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        }),
    )
    .unwrap();
    assert_eq!(sets.granted, vec![cap::KILL, cap::NET_BIND_SERVICE]);
    // Inheritable may name bounding capabilities that are not permitted.
    assert_eq!(sets.inheritable, vec![cap::CHOWN, cap::NET_BIND_SERVICE]);
    assert_eq!(sets.ambient, vec![cap::NET_BIND_SERVICE]);
}

#[test]
fn inheritable_and_ambient_capabilities_that_cannot_be_honoured_are_refused() {
    for (caps, needle) in [
        (
            serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL", "CAP_CHOWN"]}),
            "process.capabilities.inheritable[1]: CAP_CHOWN is not in the bounding set",
        ),
        (
            serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}),
            "process.capabilities.ambient[0]: CAP_KILL is not in the inheritable set",
        ),
        (
            serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"],
                               "inheritable": ["CAP_KILL", "CAP_CHOWN"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}),
            "process.capabilities.ambient[1]: CAP_CHOWN is not in the permitted set",
        ),
        (
            serde_json::json!({"inheritable": ["CAP_SYS_ADMIN"]}),
            "process.capabilities.inheritable[0]: CAP_SYS_ADMIN is not in the bounding set",
        ),
        (
            serde_json::json!({"ambient": ["CAP_SYS_ADMIN"]}),
            "process.capabilities.ambient[0]: CAP_SYS_ADMIN is not in the bounding, permitted and inheritable sets",
        ),
        (
            serde_json::json!({"bounding": ["CAP_NO_SUCH_THING"]}),
            "process.capabilities.bounding[0]: CAP_NO_SUCH_THING is not a capability",
        ),
    ] {
        for uid in [0, 1000] {
            let e = capability_sets(uid, caps.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}

#[test]
fn a_privileged_containers_full_set_is_taken_for_the_instance() {
    let all: Vec<&str> = CAPABILITY_NAMES.iter().map(|(n, _)| *n).collect();
    let sets = capability_sets(
        0,
        serde_json::json!({"bounding": all, "effective": all, "permitted": all}),
    )
    .unwrap();
    let known: Vec<u32> = (0..=xvisor_sys::caps::last_cap()).collect();
    assert_eq!(sets.granted, known);
    let c = parse(default_config(false)).unwrap();
    assert_eq!(c.spec.capability_ceiling, CapabilityCeiling::Any);
}

#[test]
fn a_privileged_containers_host_devices_are_not_given() {
    let mut config = default_config(false);
    config["linux"]["devices"] = serde_json::json!([
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/no-such-host-node", "type": "b", "major": 254, "minor": 0}
    ]);
    config["linux"]["resources"] = serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]});
    let c = parse(config.clone()).unwrap();
    assert!(c.spec.root.extras.devices.is_empty());
    assert_eq!(c.ignored.len(), 2, "{:?}", c.ignored);
    assert!(c.ignored[0].contains("privileged"), "{:?}", c.ignored);
    // Without the allow-all rule, a listed node is a device asked for.
    config["linux"]["resources"] = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
    let e = parse(config).unwrap_err().to_string();
    assert!(e.contains("linux.devices[0]"), "{e}");
}

#[test]
fn no_new_privileges_is_as_the_config_says() {
    let c = parse(default_config(false)).unwrap();
    assert!(c.spec.no_new_privileges, "xvisor spec writes true");
    let c = parse(with(
        default_config(false),
        "/process/noNewPrivileges",
        Value::Bool(false),
    ))
    .unwrap();
    assert!(!c.spec.no_new_privileges);
    let mut config = default_config(false);
    config["process"].as_object_mut().unwrap().remove("noNewPrivileges");
    assert!(!parse(config).unwrap().spec.no_new_privileges, "absent: false");
    let process = parse_process(r#"{"args": ["true"], "cwd": "/"}"#).unwrap();
    assert!(!process.no_new_privileges);
    let process = parse_process(r#"{"args": ["true"], "cwd": "/", "noNewPrivileges": true}"#).unwrap();
    assert!(process.no_new_privileges);
}

#[test]
fn host_pid_and_ipc_namespaces_are_refused_the_hosts_network_is_taken() {
    for (kind, field_name) in [("pid", "hostPID"), ("ipc", "hostIPC")] {
        let mut config = default_config(false);
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|ns| ns["type"] != kind);
        let e = parse(config).unwrap_err().to_string();
        assert!(
            e.starts_with("config.json: linux.namespaces: no ") || e.contains("linux.namespaces: no "),
            "{e}"
        );
        assert!(e.contains(field_name), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let mut config = default_config(false);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "network");
    assert_eq!(parse(config).unwrap().spec.network, Network::Host);
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = base.pointer_mut(parent).unwrap();
    match target {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().unwrap();
            a[i] = value;
        }
        _ => panic!("bad pointer"),
    }
    base
}

#[test]
fn unknown_and_unsupported_fields_are_named() {
    for (pointer, value, needle) in [
        (
            "/linux/devices",
            serde_json::json!([{"path": "/dev/xvisor-none", "type": "c", "major": 10, "minor": 229}]),
            "linux.devices[0]: device /dev/xvisor-none: no such node on the host",
        ),
        (
            "/linux/devices",
            serde_json::json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
                               {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 228}]),
            "linux.devices[1]: device /dev/fuse: the host's node is c 10:229, not c 10:228",
        ),
        (
            "/linux/devices",
            serde_json::json!([{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}]),
            "the instance's own",
        ),
        (
            "/linux/devices",
            serde_json::json!([{"path": "/tmp/../dev/null", "type": "c"}]),
            "only nodes below /dev",
        ),
        (
            "/linux/devices",
            serde_json::json!([{"path": "/dev/shm/x", "type": "p"}]),
            "FIFOs are not supported",
        ),
        ("/linux/intelRdt", serde_json::json!({"closID": "x"}), "linux.intelRdt"),
        (
            "/process/capabilities",
            serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_CHOWN"]}),
            "process.capabilities.ambient[0]: CAP_CHOWN is not in the bounding, permitted and inheritable sets",
        ),
        (
            "/linux/sysctl",
            serde_json::json!({"kernel.panic": "1"}),
            "linux.sysctl.kernel.panic: only settings",
        ),
        (
            "/hooks",
            serde_json::json!({"prestart": [{"path": "bin/true"}]}),
            "hooks.prestart[0].path: must be an absolute path",
        ),
        (
            "/hooks",
            serde_json::json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
            "hooks.poststop[0].timeout: must be greater than zero",
        ),
        (
            "/hooks",
            serde_json::json!({"createRuntime": [{"path": "/bin/true", "env": ["NOEQUALS"]}]}),
            "hooks.createRuntime[0].env[0]",
        ),
        (
            "/linux/namespaces/1",
            serde_json::json!({"type": "user", "path": "/proc/1/ns/user"}),
            "linux.namespaces[1].path: joining an existing user namespace is not supported",
        ),
        (
            "/linux/namespaces/4",
            serde_json::json!({"type": "mount", "path": "/proc/1/ns/mnt"}),
            "linux.namespaces[4].path: joining an existing mount namespace",
        ),
        (
            "/linux/namespaces/1",
            serde_json::json!({"type": "network", "path": "run/netns/x"}),
            "linux.namespaces[1].path: must be an absolute path",
        ),
        (
            "/linux/uidMappings",
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
            "linux.gidMappings: missing",
        ),
        (
            "/process/capabilities/bounding",
            serde_json::json!(["CAP_KILL", "SYS_ADMIN"]),
            "process.capabilities.bounding[1]: SYS_ADMIN is not a capability",
        ),
        (
            "/mounts/0",
            serde_json::json!({"destination": "/x", "type": "nfs", "source": "h:/e"}),
            "mounts[0].type",
        ),
        (
            "/mounts/0",
            serde_json::json!({"destination": "x", "type": "tmpfs", "source": "t"}),
            "mounts[0].destination",
        ),
        ("/ociVersion", serde_json::json!("2.0.0"), "ociVersion"),
        (
            "/annotations",
            serde_json::json!({"dev.xvisor.profle": "strict"}),
            "annotations.dev.xvisor.profle",
        ),
        (
            "/process/rlimits",
            serde_json::json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]),
            "process.rlimits[0].type",
        ),
        (
            "/linux/resources/devices",
            serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]),
            "linux.resources.devices[1]: denying one of the instance's devices",
        ),
        (
            "/linux/resources/devices",
            serde_json::json!([{"allow": false, "type": "c", "major": 136, "minor": 4, "access": "rwm"}]),
            "linux.resources.devices[0]: denying",
        ),
        (
            "/linux/resources/devices",
            serde_json::json!([{"allow": false, "type": "c", "access": "rwm"}]),
            "linux.resources.devices[0]: denying",
        ),
        (
            "/linux/resources/blockIO",
            serde_json::json!({"weight": 500}),
            "linux.resources.blockIO.weight: block I/O weights",
        ),
        (
            "/linux/resources/blockIO",
            serde_json::json!({"weight": 0, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}),
            "linux.resources.blockIO.throttleReadBpsDevice: block I/O limits",
        ),
    ] {
        let e = parse(with(default_config(false), pointer, value))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{pointer}: {e}");
        assert!(e.starts_with("config.json: "), "{e}");
    }
}

#[test]
fn properties_the_specification_does_not_define_are_ignored_and_listed() {
    let mut c = default_config(false);
    c["unknown"] = serde_json::json!("unknown");
    c["process"]["frobnicate"] = serde_json::json!(1);
    c["hooks"] = serde_json::json!({"onReboot": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true", "x": 1}]});
    c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 1 << 30, "futureKnob": true});
    let container = parse(c).unwrap();
    assert_eq!(
        container.ignored,
        [
            "process.frobnicate",
            "linux.resources.memory.futureKnob",
            "hooks.poststop[0].x",
            "hooks.onReboot",
            "unknown"
        ]
    );
    // A second parse starts afresh.
    assert!(parse(default_config(false)).unwrap().ignored.is_empty());
    // What the specification defines and xvisor cannot honour stays an
    // error, wherever it is.
    let mut c = default_config(false);
    c["unknown"] = serde_json::json!("unknown");
    c["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
    let e = parse(c).unwrap_err().to_string();
    assert!(e.contains("linux.intelRdt"), "{e}");
    let process = parse_process(r#"{"args": ["true"], "cwd": "/", "someday": 1}"#).unwrap();
    assert_eq!(process.ignored, ["process.someday"]);
}

#[test]
fn systemd_form_names_the_scope_its_driver_makes() {
    let scope = |v: &str| systemd_scope(v).map(|s| (s.unit, s.slice));
    assert_eq!(
        scope("machine.slice:libpod:abc"),
        Some(("libpod-abc.scope".into(), Some("machine.slice".into())))
    );
    assert_eq!(scope(":libpod:abc"), Some(("libpod-abc.scope".into(), None)));
    assert_eq!(
        scope("system.slice::x.scope"),
        Some(("x.scope".into(), Some("system.slice".into())))
    );
    for not_a_scope in [
        "/a/b",
        "a.slice:p:",
        "system.slice::x.service",
        "a b.slice:p:n",
        "s.slice:p:a/b",
    ] {
        assert_eq!(scope(not_a_scope), None, "{not_a_scope}");
    }
}

#[test]
fn cgroup_paths_are_taken_below_our_own() {
    let ok = |v: &str| cgroup_path(v).unwrap().map(|p| p.display().to_string());
    assert_eq!(ok("/cgrouptest").as_deref(), Some("cgrouptest"));
    assert_eq!(
        ok("testdir/cgrouptest/container/").as_deref(),
        Some("testdir/cgrouptest/container")
    );
    assert_eq!(ok(""), None);
    assert_eq!(ok("/"), None);
    assert_eq!(
        ok("kubepods-besteffort-pod1.slice:cri-containerd:abc").as_deref(),
        Some("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope")
    );
    assert_eq!(
        ok("system.slice:docker:abc").as_deref(),
        Some("system.slice/docker-abc.scope")
    );
    assert_eq!(ok(":libpod:abc").as_deref(), Some("libpod-abc.scope"));
    for bad in [
        "/a/../b",
        "./a",
        "a:b",
        "x.service:p:n",
        "a--b.slice:p:n",
        "-a.slice:p:n",
        "a:b:c:d",
        "a\nb",
        "a\u{0}b",
    ] {
        assert!(cgroup_path(bad).is_err(), "{bad}");
    }
    assert!(cgroup_path(&"a/".repeat(3000)).is_err());
    // A slice name's expansion repeats every prefix: long ones are refused.
    let longest = format!("{}.slice", ["a"; 123].join("-"));
    assert_eq!(longest.len(), 251);
    assert!(cgroup_path(&format!("{longest}:p:n")).is_ok());
    let hostile = format!("{}.slice:p:n", ["a"; 2_000].join("-"));
    assert!(cgroup_path(&hostile)
        .unwrap_err()
        .contains("longer than systemd allows"));
    let mut c = default_config(false);
    c["linux"]["cgroupsPath"] = serde_json::json!("/../etc");
    let e = parse(c).unwrap_err().to_string();
    assert!(e.contains("linux.cgroupsPath"), "{e}");
}

#[test]
fn id_mappings_are_taken_and_must_cover_the_program() {
    let mut c = default_config(false);
    c["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = serde_json::json!([
        {"containerID": 0, "hostID": 200000, "size": 10},
        {"containerID": 10, "hostID": 300000, "size": 100}
    ]);
    let maps = parse(c.clone()).unwrap().spec.id_maps.unwrap();
    assert_eq!(maps.uid_map(), "0 100000 65536\n");
    assert_eq!(maps.gid_map(), "0 200000 10\n10 300000 100\n");
    for (pointer, value, needle) in [
        (
            "/process/user/uid",
            serde_json::json!(70000),
            "process.user.uid: 70000 is not mapped",
        ),
        (
            "/linux/uidMappings",
            serde_json::json!([{"containerID": 1, "hostID": 100000, "size": 65536}]),
            "uid 0 (the container's root) must be mapped",
        ),
        (
            "/process/user/gid",
            serde_json::json!(110),
            "process.user.gid: 110 is not mapped",
        ),
        (
            "/process/user/additionalGids",
            serde_json::json!([5, 500]),
            "process.user.additionalGids[1]: 500 is not mapped",
        ),
        (
            "/linux/uidMappings",
            serde_json::json!([{"containerID": 0, "hostID": 1, "size": 5}, {"containerID": 3, "hostID": 9, "size": 1}]),
            "linux.uidMappings: ranges 0 and 1 overlap inside",
        ),
        (
            "/linux/uidMappings",
            serde_json::json!([{"containerID": 0, "hostID": 1}]),
            "linux.uidMappings[0].size: missing",
        ),
        (
            "/linux/uidMappings",
            serde_json::json!([{"containerID": 0, "hostID": 4294967296u64, "size": 1}]),
            "linux.uidMappings[0].hostID: must be below",
        ),
    ] {
        let e = parse(with(c.clone(), pointer, value)).unwrap_err().to_string();
        assert!(e.contains(needle), "{pointer}: {e}");
    }
}

#[test]
fn a_host_device_node_is_added_and_must_stay_allowed() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "this test needs the host's /dev/fuse (c 10:229)"
    );
    let mut c = default_config(false);
    c["linux"]["devices"] = serde_json::json!([{"path": "/dev/full", "type": "c", "major": 1, "minor": 7}]);
    assert!(
        parse(c.clone()).unwrap().spec.root.extras.devices.is_empty(),
        "a default node"
    );
    c["linux"]["devices"] = serde_json::json!([
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
        {"path": "/dev/fuse", "type": "c"}
    ]);
    // What Docker writes for --device: deny all, allow it.
    c["linux"]["resources"]["devices"] = serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    ]);
    assert_eq!(parse(c.clone()).unwrap().spec.root.extras.devices, ["/dev/fuse"]);
    assert!(parse(c.clone()).is_ok());
    c["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"allow": false, "type": "c", "major": 10, "access": "rwm"}));
    let e = parse(c).unwrap_err().to_string();
    assert!(e.contains("linux.resources.devices[2]"), "{e}");
}

/// Property: whatever a config says, a cgroupsPath is refused or becomes
/// a relative path of plain names — never absolute, never `..`, never
/// a control character (the watchdog reads paths as lines).
#[test]
fn any_cgroups_path_stays_below_our_cgroup() {
    const ALPHABET: &[char] = &['a', 'b', '-', '.', '/', ':', '\n', '\0', 's', 'l', 'i', 'c', 'e', ' '];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let text: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        if let Ok(Some(path)) = cgroup_path(&text) {
            assert!(path.is_relative(), "{text:?} -> {path:?}");
            for part in path.components() {
                let std::path::Component::Normal(name) = part else {
                    panic!("{text:?} -> {path:?}");
                };
                let name = name.to_str().unwrap();
                assert!(!name.chars().any(char::is_control), "{text:?} -> {path:?}");
                assert!(name != "." && name != "..", "{text:?}");
            }
        }
    }
}

#[test]
fn cpu_resources_are_read_whole() {
    let mut c = default_config(false);
    c["linux"]["resources"]["cpu"] = serde_json::json!({
        "shares": 2048, "quota": 50000, "period": 500000, "cpus": "0-1", "mems": "0",
        "realtimePeriod": 1000000, "realtimeRuntime": 950000
    });
    let limits = parse(c).unwrap().spec.limits;
    assert_eq!(limits.cpu_shares, Some(2048));
    assert_eq!(limits.cpu_period_us, Some(500_000));
    assert_eq!(limits.cpus, Some(0.1));
    assert_eq!(limits.cpuset_cpus.as_deref(), Some("0-1"));
    assert_eq!(limits.cpuset_mems.as_deref(), Some("0"));
    assert_eq!(limits.cpu_realtime, Some((Some(1_000_000), Some(950_000))));
    for (cpu, needle) in [
        (serde_json::json!({"cpus": "0-"}), "linux.resources.cpu.cpus"),
        (serde_json::json!({"mems": "a"}), "linux.resources.cpu.mems"),
        (serde_json::json!({"cpus": "3-1"}), "linux.resources.cpu.cpus"),
        (serde_json::json!({"shares": 1}), "linux.resources.cpu.shares"),
        (serde_json::json!({"period": 10}), "linux.resources.cpu.period"),
    ] {
        let mut c = default_config(false);
        c["linux"]["resources"]["cpu"] = cpu;
        let e = parse(c).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    assert!(is_cpu_list("0-3,6,8-9"));
    assert!(!is_cpu_list(""));
    assert!(!is_cpu_list("0,,1"));
}

#[test]
fn dockers_device_rules_and_empty_block_io_are_accepted() {
    // What Docker 20.10 writes for a default `docker run`: deny all,
    // allow the usual nodes, then deny /dev/fuse (10:229), which the
    // instance has no node for; blockIO with weight 0 means none.
    let mut c = default_config(false);
    c["linux"]["resources"] = serde_json::json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": false, "type": "b", "access": "rwm"}
        ],
        "memory": {"disableOOMKiller": false},
        "cpu": {"shares": 0},
        "blockIO": {"weight": 0}
    });
    parse(c).unwrap();
}

#[test]
fn the_engines_dev_shm_size_bounds_the_instances_own() {
    let c = parse(default_config(false)).unwrap();
    assert_eq!(c.spec.root.tmpfs_sizes.shm, 65536 << 10);
    let mut c = default_config(false);
    let shm = c["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    shm["options"] = serde_json::json!(["nosuid", "size=2g"]);
    assert_eq!(parse(c.clone()).unwrap().spec.root.tmpfs_sizes.shm, 2 << 30);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev/shm");
    let c = parse(c).unwrap();
    assert_eq!(c.spec.root.tmpfs_sizes, xvisor_confine::TmpfsSizes::default());
}

#[test]
fn mounts_resources_and_annotations_are_honoured() {
    let mut c = default_config(false);
    c["mounts"].as_array_mut().unwrap().extend([
        serde_json::json!({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}),
        serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700", "noexec"]}),
    ]);
    c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864, "swap": 134217728});
    c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 64});
    c["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000, "shares": 512});
    c["annotations"] = serde_json::json!({"dev.xvisor.profile": "strict", "other": "kept"});
    let c = parse(c).unwrap();
    assert_eq!(c.spec.root.volumes[0].host_path, PathBuf::from("/bundle/data"));
    assert!(!c.spec.root.volumes[0].writable);
    let t = &c.spec.root.extras.tmpfs[0];
    assert_eq!(
        (t.target.as_str(), t.size, t.mode, t.noexec),
        ("/run", Some(1 << 20), Some(0o700), true)
    );
    assert_eq!(t.source.as_deref(), Some("tmpfs"));
    assert_eq!(c.spec.limits.memory_bytes, Some(64 << 20));
    assert_eq!(c.spec.limits.pids, Some(64));
    assert_eq!(c.spec.limits.cpus, Some(0.5));
    assert_eq!(c.spec.policy.profile, Profile::Strict);
    assert_eq!(c.annotations.get("other").map(String::as_str), Some("kept"));
}

#[test]
fn rslave_binds_receive_the_hosts_mounts_and_rshared_is_refused() {
    let mut c = default_config(false);
    c["mounts"].as_array_mut().unwrap().extend([
        serde_json::json!({"destination": "/a", "type": "bind", "source": "/a", "options": ["rbind", "rslave"]}),
        serde_json::json!({"destination": "/b", "type": "bind", "source": "/b", "options": ["rbind", "slave", "ro"]}),
        serde_json::json!({"destination": "/c", "type": "bind", "source": "/c", "options": ["rbind", "rprivate"]}),
        serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rslave"]}),
    ]);
    let c = parse(c).unwrap();
    let slaves: Vec<_> = c
        .spec
        .root
        .volumes
        .iter()
        .map(|v| (v.target.as_str(), v.slave))
        .collect();
    assert_eq!(slaves, [("/a", true), ("/b", true), ("/c", false)]);
    for option in ["rshared", "shared"] {
        let mut c = default_config(false);
        c["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/a", "type": "bind", "source": "/a", "options": ["rbind", option]}),
        );
        let n = c["mounts"].as_array().unwrap().len() - 1;
        let e = parse(c).unwrap_err().to_string();
        assert!(
            e.contains(&format!("mounts[{n}].options[1]")) && e.contains("propagation is not supported"),
            "{e}"
        );
    }
}

#[test]
fn a_hostname_is_given_to_a_joined_uts_namespace() {
    let mut c = default_config(false);
    c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
    c["hostname"] = serde_json::json!("pod-a");
    let c = parse(c).unwrap();
    let uts = c.spec.joined.iter().find(|j| j.kind == NamespaceKind::Uts).unwrap();
    assert_eq!(uts.hostname.as_deref(), Some("pod-a"));
    // An empty hostname leaves the joined namespace's name alone.
    let mut c = default_config(false);
    c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
    c["hostname"] = serde_json::json!("");
    let c = parse(c).unwrap();
    assert_eq!(c.spec.joined[0].hostname, None);
}

#[test]
fn namespaces_and_hooks_are_taken() {
    let mut c = default_config(false);
    c["linux"]["namespaces"][1] = serde_json::json!({"type": "network", "path": "/run/netns/pod"});
    c["linux"]["namespaces"][2] = serde_json::json!({"type": "ipc", "path": "/proc/7/ns/ipc"});
    c["linux"]["namespaces"][3] = serde_json::json!({"type": "uts", "path": "/proc/7/ns/uts"});
    c["linux"]["namespaces"][0] = serde_json::json!({"type": "pid", "path": "/proc/7/ns/pid"});
    c.as_object_mut().unwrap().remove("hostname");
    c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 0"});
    c["hooks"] = serde_json::json!({
        "prestart": [{"path": "/p"}],
        "createRuntime": [{"path": "/r", "args": ["r", "-x"], "env": ["A=b=c"], "timeout": 3}],
        "createContainer": [{"path": "/c"}],
        "startContainer": [{"path": "/s"}],
        "poststart": [{"path": "/ps"}],
        "poststop": [{"path": "/stop"}]
    });
    let c = parse(c).unwrap();
    assert_eq!(c.spec.network, Network::Joined);
    let joined: Vec<_> = c
        .spec
        .joined
        .iter()
        .map(|j| (j.kind, j.path.display().to_string(), j.origin.as_str()))
        .collect();
    assert_eq!(
        joined,
        vec![
            (NamespaceKind::Pid, "/proc/7/ns/pid".into(), "linux.namespaces[0].path"),
            (
                NamespaceKind::Network,
                "/run/netns/pod".into(),
                "linux.namespaces[1].path"
            ),
            (NamespaceKind::Ipc, "/proc/7/ns/ipc".into(), "linux.namespaces[2].path"),
            (NamespaceKind::Uts, "/proc/7/ns/uts".into(), "linux.namespaces[3].path"),
        ]
    );
    assert!(
        c.spec.joined.iter().all(|j| j.hostname.is_none()),
        "no hostname asked for"
    );
    assert_eq!(c.spec.sysctls.len(), 1);
    let h = &c.spec.hooks;
    let paths = |v: &[Hook]| v.iter().map(|h| h.path.display().to_string()).collect::<Vec<_>>();
    assert_eq!(paths(&h.create_runtime), vec!["/p", "/r"]);
    assert_eq!(h.create_runtime[1].origin, "hooks.createRuntime[0]");
    assert_eq!(h.create_runtime[1].args, vec!["r", "-x"]);
    assert_eq!(h.create_runtime[1].env, vec![("A".to_string(), "b=c".to_string())]);
    assert_eq!(h.create_runtime[1].timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(paths(&h.create_container), vec!["/c"]);
    assert_eq!(paths(&h.start_container), vec!["/s"]);
    assert_eq!(paths(&h.poststart), vec!["/ps"]);
    assert_eq!(paths(&c.poststop), vec!["/stop"]);
    assert!(c.spec.freezable);
}

#[test]
fn junk_never_panics() {
    for text in [
        "",
        "[]",
        "null",
        "{\"ociVersion\": 1}",
        "{\"ociVersion\": \"1.0.2\", \"root\": []}",
        "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[1]}}",
    ] {
        assert!(parse_config(text, Path::new("/b"), "x").is_err(), "{text}");
    }
}

/// Replays the fuzz corpus (fuzz/corpus/oci_config) on every test run.
#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/oci_config");
    let mut accepted = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if parse_config(text, Path::new("/b"), "x").is_ok() {
                accepted.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    accepted.sort();
    // The seeds that are valid bundles stay valid.
    assert!(accepted.starts_with(&["default".to_string()]), "{accepted:?}");
    assert!(accepted.contains(&"seccomp".to_string()), "{accepted:?}");
}
