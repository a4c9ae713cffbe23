# Checks for systemd.sh's guest (a CHECKS file: sourced by guest.sh as root,
# inside a login session scope, user-0.slice/session-*.scope). Each check
# prints one "CHECK <name> ok" or "CHECK <name> FAIL <why>" line, through
# the helpers guest.sh defines:
#   x NAME CMD...       run CMD (300 s at most), show its output; $rc, $out
#   check NAME CMD...   x, then ok if CMD exited 0, else FAIL
#   ok NAME / bad NAME WHY / has TEXT ($out contains TEXT)
#   as_user CMD...      CMD as uid 1000 ($USER1000) with XDG_RUNTIME_DIR set
#   manager_call SOCKET METHOD [ARG...]   a systemd Manager method over a
#                       private socket (/run/systemd/private, or
#                       /run/user/1000/systemd/private as uid 1000)
#   cgroup_of [PID]     PID's cgroup v2 path
# and the variables XVISOR (/usr/local/bin/xvisor), IMAGE (a busybox image
# in podman's storage), USER1000.

# This shell is in a session scope of logind's making.
case $(cgroup_of $$) in
/user.slice/user-0.slice/session-*.scope) ok session-scope ;;
*) bad session-scope "in $(cgroup_of $$)" ;;
esac

# D-Bus: a method call on systemd's private socket (as root), and one
# through dbus-daemon's system bus.
x dbus-private-socket manager_call /run/systemd/private GetUnit init.scope
[ $rc = 0 ] && has /org/freedesktop/systemd1/unit/init_2escope && ok dbus-private-socket ||
    bad dbus-private-socket "rc=$rc"
x dbus-system-bus busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
    org.freedesktop.systemd1.Manager GetUnit s init.scope
[ $rc = 0 ] && has /org/freedesktop/systemd1/unit/init_2escope && ok dbus-system-bus || bad dbus-system-bus "rc=$rc"

# A transient scope with delegation, made over /run/systemd/private: its
# holder may move itself into a leaf and enable controllers in the scope.
x delegate-scope systemd-run --quiet --scope -p Delegate=yes sh -c '
    cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
    echo "scope $cg"
    mkdir "$cg/leaf" && echo $$ >"$cg/leaf/cgroup.procs" &&
        echo "+memory +pids +cpu" >"$cg/cgroup.subtree_control" &&
        echo "enabled: $(cat "$cg/cgroup.subtree_control")"'
[ $rc = 0 ] && has "enabled: cpu memory pids" && ok delegate-scope || bad delegate-scope "rc=$rc"

# uid 1000's user manager answers on its private socket and has its
# delegated subtree (user@.service has Delegate=pids memory cpu).
x user-manager as_user systemctl --user is-system-running
{ [ $rc = 0 ] || has degraded; } && ok user-manager || bad user-manager "rc=$rc"
x user-dbus-private-socket as_user manager_call /run/user/1000/systemd/private GetUnit init.scope
[ $rc = 0 ] && has /org/freedesktop/systemd1/unit/init_2escope && ok user-dbus-private-socket ||
    bad user-dbus-private-socket "rc=$rc"
x user-delegate-scope as_user systemd-run --user --quiet --scope -p Delegate=yes sh -c '
    cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
    echo "scope $cg"
    mkdir "$cg/leaf" && echo $$ >"$cg/leaf/cgroup.procs" &&
        echo "+memory +pids" >"$cg/cgroup.subtree_control" &&
        echo "enabled: $(cat "$cg/cgroup.subtree_control")"'
[ $rc = 0 ] && has "/user@1000.service/" && has "enabled: memory pids" && ok user-delegate-scope ||
    bad user-delegate-scope "rc=$rc"

# podman with the systemd cgroup manager, crun as the runtime: the
# container runs, in a scope of systemd's with the memory limit.
x podman-crun-memory podman --cgroup-manager systemd --runtime crun run --rm --network none \
    --memory 64m "$IMAGE" sh -c 'cat /proc/self/cgroup /sys/fs/cgroup/memory.max'
[ $rc = 0 ] && has 67108864 && ok podman-crun-memory || bad podman-crun-memory "rc=$rc"

# xvisor as root, from this session scope, with no limits.
check xvisor-run "$XVISOR" run -- true
# xvisor alone in a delegated scope: it moves into a leaf of its own and
# enables the memory controller in the scope.
check xvisor-scope-memory systemd-run --quiet --scope -p Delegate=yes "$XVISOR" run --memory 64M -- true
# The same as a service's main process (a transient service with
# Delegate=yes, its output piped back).
check xvisor-service-memory systemd-run --quiet --wait --pipe -p Delegate=yes \
    "$XVISOR" run --memory 64M -- true
# Rootless: xvisor as uid 1000 in a delegated scope of its user manager.
check xvisor-user-scope-memory as_user systemd-run --user --quiet --scope -p Delegate=yes \
    "$XVISOR" run --memory 64M -- true

# systemd's cgroup driver. This shell's session scope holds processes that
# are not xvisor's: xvisor asks systemd for a scope of its own and leaves
# the session's cgroup as it was.
session=/sys/fs/cgroup$(cgroup_of $$)
driver_clean() { # NAME: nothing of xvisor's left in the session's cgroup
    left=$(find "$session" -mindepth 1 -type d | tr '\n' ' ')
    ctl=$(cat "$session/cgroup.subtree_control")
    scopes=$(find /sys/fs/cgroup -name 'xvisor-*.scope' | tr '\n' ' ')
    [ -z "$left" ] && [ -z "$ctl" ] && [ -z "$scopes" ] && ok "$1" ||
        bad "$1" "left: cgroups '$left' controllers '$ctl' scopes '$scopes'"
}
x driver-memory "$XVISOR" run --memory 64M -- probe hog 1024
[ $rc = 137 ] && has "out of memory" && ok driver-memory || bad driver-memory "rc=$rc, no OOM kill"
driver_clean driver-memory-clean
x driver-pids "$XVISOR" run --pids 20 -- probe forks 200
has "Resource temporarily unavailable" && ok driver-pids || bad driver-pids "rc=$rc, no EAGAIN"
x driver-cpus "$XVISOR" run --cpus 0.5 -- probe spin 1
share=$(echo "$out" | sed -n 's/.*share \([0-9]*\).*/\1/p')
[ $rc = 0 ] && [ -n "$share" ] && [ "$share" -le 600 ] && ok driver-cpus || bad driver-cpus "rc=$rc, CPU share ${share:-?}/1000"
# Where it ran: its own scope, in the session's slice, with the limit shown.
x driver-where "$XVISOR" run --name where --memory 64M -- sh -c 'cat /sys/fs/cgroup/memory.max; cat /proc/1/cgroup' 
has 67108864 && ok driver-where || bad driver-where "rc=$rc"
x driver-unit sh -c "$XVISOR run --name unit --memory 64M -- sleep 3 & sleep 2; systemctl list-units --no-legend 'xvisor-*'; find /sys/fs/cgroup/user.slice/user-0.slice -maxdepth 1 -name 'xvisor-unit-*'; wait"
has "xvisor-unit-" && has "/user.slice/user-0.slice/xvisor-unit-" && ok driver-unit || bad driver-unit "rc=$rc"
driver_clean driver-clean
# Rootless: uid 1000 asks its own manager.
x driver-rootless-pids as_user "$XVISOR" run --pids 20 -- probe forks 200
has "Resource temporarily unavailable" && ok driver-rootless-pids || bad driver-rootless-pids "rc=$rc"
x driver-rootless-memory as_user "$XVISOR" run --memory 64M -- probe hog 1024
[ $rc = 137 ] && has "out of memory" && ok driver-rootless-memory || bad driver-rootless-memory "rc=$rc"
x driver-rootless-cpus as_user "$XVISOR" run --cpus 0.5 -- probe spin 1
share=$(echo "$out" | sed -n 's/.*share \([0-9]*\).*/\1/p')
[ $rc = 0 ] && [ -n "$share" ] && [ "$share" -le 600 ] && ok driver-rootless-cpus ||
    bad driver-rootless-cpus "rc=$rc, CPU share ${share:-?}/1000"
# podman with the systemd cgroup manager, xvisor as the runtime
# (--systemd-cgroup, cgroupsPath machine.slice:libpod:ID).
x driver-podman podman --cgroup-manager systemd --runtime "$XVISOR" run --rm --network none \
    --memory 64m "$IMAGE" sh -c 'cat /sys/fs/cgroup/memory.max /proc/self/attr/current'
[ $rc = 0 ] && has 67108864 && has "containers-default" && ok driver-podman || bad driver-podman "rc=$rc"
# podman exec runs under the container's profile too.
x driver-podman-exec sh -c "id=\$(podman --cgroup-manager systemd --runtime $XVISOR run -d --network none $IMAGE sleep 60) &&
    podman --cgroup-manager systemd exec \$id cat /proc/self/attr/current; podman --cgroup-manager systemd rm -f -t 0 \$id >/dev/null"
[ $rc = 0 ] && has "containers-default" && ok driver-podman-exec || bad driver-podman-exec "rc=$rc"
x driver-podman-scope sh -c "id=\$(podman --cgroup-manager systemd --runtime $XVISOR run -d --network none --memory 64m $IMAGE sleep 60) &&
    sleep 1 && ls -d /sys/fs/cgroup/machine.slice/libpod-\$id.scope && cat /sys/fs/cgroup/machine.slice/libpod-\$id.scope/*/memory.max;
    podman --cgroup-manager systemd rm -f -t 0 \$id >/dev/null; sleep 1; ls -d /sys/fs/cgroup/machine.slice/libpod-\$id.scope 2>&1"
has "/libpod-" && has 67108864 && has "No such file" && ok driver-podman-scope || bad driver-podman-scope "rc=$rc"

# xvisor's default limits on pure cgroup v2: in a delegated scope xvisor
# alone holds, the instance gets pids.max 4096 and half the guest's RAM in
# memory.max; in this session scope (other processes, not xvisor's) and
# rootless without delegation it gets none, without a word, and nothing is
# made. MemTotal/2 rounded down to a MiB.
half=$(( $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) * 1024 / 2 / 1048576 * 1048576 ))
x default-scope sh -c "systemd-run --quiet --scope -p Delegate=yes $XVISOR run --name defl -- sleep 4 & sleep 2;
    d=\$(find /sys/fs/cgroup -type d -name xvisor-defl); echo \"dir \$d\"; cat \$d/memory.max \$d/pids.max; wait"
[ $rc = 0 ] && has "/xvisor-defl" && has "$half" && has 4096 && ok default-scope ||
    bad default-scope "rc=$rc, want memory.max $half and pids.max 4096"
x default-scope-hog systemd-run --quiet --scope -p Delegate=yes "$XVISOR" run -- probe hog $(( half / 1048576 + 256 ))
[ $rc = 137 ] && has "default memory limit" && ok default-scope-hog || bad default-scope-hog "rc=$rc, no OOM kill"
# (TasksMax=infinity: a scope of its own has systemd's default, 15% of the threads the
# kernel allows, 2340 on this 2 GiB guest, below xvisor's.)
x default-scope-forks systemd-run --quiet --scope -p Delegate=yes -p TasksMax=infinity "$XVISOR" run -- probe forks 5000
has "fork 4095 failed: Resource temporarily unavailable" && ok default-scope-forks || bad default-scope-forks "rc=$rc"
x default-user-scope as_user sh -c "systemd-run --user --quiet --scope -p Delegate=yes $XVISOR run --name defu -- sleep 4 & sleep 2;
    d=\$(find /sys/fs/cgroup/user.slice -type d -name xvisor-defu); echo \"dir \$d\"; cat \$d/pids.max; wait"
[ $rc = 0 ] && has "/xvisor-defu" && has 4096 && ok default-user-scope || bad default-user-scope "rc=$rc"
x default-session "$XVISOR" run -- echo ran
[ $rc = 0 ] && [ "$out" = ran ] && ok default-session || bad default-session "rc=$rc"
x default-rootless as_user "$XVISOR" run -- echo ran
[ $rc = 0 ] && [ "$out" = ran ] && ok default-rootless || bad default-rootless "rc=$rc"
driver_clean default-clean
x default-nothing-left sh -c "find /sys/fs/cgroup -name 'xvisor-*' -o -name xvisor.supervisors"
[ -z "$out" ] && ok default-nothing-left || bad default-nothing-left "left: $out"
