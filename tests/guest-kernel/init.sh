#!/bin/sh
# The guest's /init: pure cgroup v2 laid out as systemd lays it out, and
# xvisor's limits checked from each place systemd puts a process. Every
# check prints one "CHECK <name> ok" or "CHECK <name> FAIL <why>" line on
# the serial console; run.sh counts them.
export PATH=/usr/local/bin:/usr/bin:/bin HOME=/root
if [ ! -e /.copied ]; then
    # pivot_root (which xvisor uses) refuses the initramfs itself: copy it
    # into a tmpfs and start again from there.
    mount -t proc proc /proc
    mkdir /new && mount -t tmpfs -o size=1g,mode=755 tmpfs /new
    for f in /*; do case $f in /new|/proc) ;; *) cp -a "$f" /new/ ;; esac; done
    mkdir -p /new/proc && touch /new/.copied && umount /proc
    exec switch_root /new /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
# The options systemd mounts the unified hierarchy with.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mkdir -p /run/user/1000 && chown 1000:1000 /run/user/1000 && chmod 700 /run/user/1000
ip link set lo up 2>/dev/null
CG=/sys/fs/cgroup
on() { echo "+memory +pids +cpu" > "$1/cgroup.subtree_control"; }
on $CG
echo "GUEST kernel $(uname -r), cgroup controllers: $(cat $CG/cgroup.controllers)"

# systemd's layout: a login session's scope (with its shell), a service
# with Delegate=yes, the user manager's delegated subtree with a scope as
# `systemd-run --user --scope` makes it.
SESSION=$CG/user.slice/user-0.slice/session-1.scope
SERVICE=$CG/system.slice/xv.service
UM=$CG/user.slice/user-1000.slice/user@1000.service
USCOPE=$UM/app.slice/run-u.scope
mkdir -p $SESSION $SERVICE $USCOPE
on $CG/user.slice; on $CG/user.slice/user-0.slice; on $CG/system.slice
on $CG/user.slice/user-1000.slice; on $UM; on $UM/app.slice
chown -R 1000:1000 $UM
sleep 100000 & SHELL_PID=$!
echo $SHELL_PID > $SESSION/cgroup.procs

pass=0 fail=0
ok() { echo "CHECK $1 ok"; pass=$((pass + 1)); }
bad() { echo "CHECK $1 FAIL $2"; fail=$((fail + 1)); }
finish() {
    echo "RESULT $pass passed, $fail failed"
    echo "DONE"
    sync
    poweroff -f
}
# incg CGROUP CMD...: CMD as the only process of CGROUP (what a scope with
# Delegate=yes or a service's main process is). A file, for timeout.
printf '#!/bin/sh\ncg=$1; shift\necho $$ > "$cg/cgroup.procs" && exec "$@"\n' > /usr/local/bin/incg
chmod 755 /usr/local/bin/incg
U="probe as 1000 1000 env HOME=/tmp XDG_RUNTIME_DIR=/run/user/1000"
# x NAME CMD...: runs CMD, keeps its exit status in $rc and output in $out.
x() {
    n=$1; shift
    echo "RUN [$n] $*"
    out=$(timeout 300 "$@" </dev/null 2>&1); rc=$?
    echo "$out" | sed 's/^/  | /'
    echo "END [$n] rc=$rc"
}
has() { case $out in *"$1"*) return 0 ;; esac; return 1; }
memory() { # NAME WRAPPER...
    n=$1; shift
    x "$n" "$@" xvisor run --memory 64M -- probe hog 1024
    [ $rc = 137 ] && has "out of memory" && ok "$n" || bad "$n" "rc=$rc, no OOM kill"
}
pids() {
    n=$1; shift
    x "$n" "$@" xvisor run --pids 20 -- probe forks 200
    has "Resource temporarily unavailable" && ok "$n" || bad "$n" "rc=$rc, no EAGAIN"
}
cpus() {
    n=$1; shift
    x "$n" "$@" xvisor run --cpus 0.5 -- probe spin 1
    share=$(echo "$out" | sed -n 's/.*share \([0-9]*\).*/\1/p')
    [ $rc = 0 ] && [ -n "$share" ] && [ "$share" -le 600 ] && ok "$n" || bad "$n" "rc=$rc, CPU share ${share:-?}/1000"
}
# clean NAME CGROUP [PROCS]: nothing of xvisor's is left in CGROUP: no
# cgroup below it, no controller enabled, only PROCS in it.
clean() {
    left=$(find "$2" -mindepth 1 -type d | tr '\n' ' ')
    ctl=$(cat "$2/cgroup.subtree_control")
    procs=$(cat "$2/cgroup.procs" | tr '\n' ' ')
    [ -z "$left" ] && [ -z "$ctl" ] && [ "$procs" = "${3:-}" ] && ok "$1" ||
        bad "$1" "left: cgroups '$left' controllers '$ctl' processes '$procs'"
}

# Booted with Landlock left out of lsm= (run.sh's second boot): a host
# directory handed in as stdin must not open the host's files.
case $(cat /proc/cmdline) in
*xvisor.check=nolandlock*)
    echo "== no Landlock: $(cat /sys/kernel/security/lsm 2>/dev/null || echo 'securityfs not mounted')"
    mkdir -p /run/hostdir && echo host-secret > /run/hostdir/secret
    stdin_dir() { # NAME WRAPPER...
        n=$1; shift
        echo "RUN [$n]"
        out=$(timeout 60 "$@" xvisor run -- cat /proc/self/fd/0/secret </run/hostdir 2>&1); rc=$?
        echo "$out" | sed 's/^/  | /'
        case $out in *host-secret*) bad "$n" "the guest read the host's file" ;;
        *) [ $rc = 125 ] && has "without Landlock" && ok "$n" || bad "$n" "rc=$rc" ;; esac
    }
    stdin_dir nolandlock-stdin-dir env
    stdin_dir nolandlock-stdin-dir-rootless $U
    x nolandlock-plain-run xvisor run -- echo runs
    [ $rc = 0 ] && has runs && ok nolandlock-plain-run || bad nolandlock-plain-run "rc=$rc"
    finish
    ;;
esac

echo "== root: host ids of the instance's own"
x own-host-ids xvisor run -- cat /proc/self/uid_map
case $out in *" 0 4294967295"*) bad own-host-ids "guest root is host root" ;;
*) [ $rc = 0 ] && has 65536 && ok own-host-ids || bad own-host-ids "rc=$rc" ;; esac
# / is a tmpfs here: Linux 6.1's tmpfs cannot be idmapped (6.3 can). A
# volume on it is refused with the reason, or shown where it can be.
mkdir -p /tmp/vol
x own-host-ids-volume xvisor run -v /tmp/vol:/v:rw -- sh -c 'echo x > /v/f'
if [ $rc = 0 ]; then
    [ "$(stat -c %u /tmp/vol/f)" = 0 ] && ok own-host-ids-volume || bad own-host-ids-volume "owner $(stat -c %u /tmp/vol/f)"
else
    [ $rc = 125 ] && has "idmapped" && has "--userns host" && ok own-host-ids-volume || bad own-host-ids-volume "rc=$rc"
fi
x userns-host-volume xvisor run --userns host -v /tmp/vol:/v:rw -- sh -c 'echo x > /v/g'
[ $rc = 0 ] && [ "$(stat -c %u /tmp/vol/g)" = 0 ] && ok userns-host-volume || bad userns-host-volume "rc=$rc"

echo "== root, in the root cgroup"
memory root-memory
pids root-pids
cpus root-cpus
left=$(ls -d $CG/xvisor* 2>/dev/null)
[ -z "$left" ] && ok root-clean || bad root-clean "$left"

echo "== root, in a login session's scope that holds the user's shell"
refused() { # NAME LIMIT...
    n=$1; shift
    x "$n" incg $SESSION xvisor run "$@" -- true
    [ $rc = 125 ] && has "cgroup v2 forbids controllers in $SESSION, which holds processes" && ! has namespaces &&
        ok "$n" || bad "$n" "rc=$rc"
}
refused session-memory --memory 64M
refused session-pids --pids 20
refused session-cpus --cpus 0.5
clean session-clean $SESSION "$SHELL_PID "

echo "== root, a service's main process (Delegate=yes)"
memory service-memory incg $SERVICE
pids service-pids incg $SERVICE
cpus service-cpus incg $SERVICE
clean service-clean $SERVICE
x service-failure incg $SERVICE xvisor run --memory 64M -- /nonexistent
[ $rc = 127 ] && ok service-failure || bad service-failure "rc=$rc"
clean service-failure-clean $SERVICE
# Two runs started together in one cgroup: each waits for the other to
# leave it, both are limited, the last one out puts the cgroup back.
echo "RUN [service-two]"
sh -c 'echo $$ > "$0/cgroup.procs"; xvisor run --pids 20 -- probe forks 200 >/tmp/two.1 2>&1 & exec xvisor run --pids 20 -- probe forks 200 >/tmp/two.2 2>&1' $SERVICE
i=0; while [ -n "$(cat $SERVICE/cgroup.procs $SERVICE/*/cgroup.procs 2>/dev/null)" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sed 's/^/  1| /' /tmp/two.1; sed 's/^/  2| /' /tmp/two.2
grep -q "Resource temporarily unavailable" /tmp/two.1 && grep -q "Resource temporarily unavailable" /tmp/two.2 &&
    ok service-two || bad service-two "not both limited"
sleep 0.5
clean service-two-clean $SERVICE

# A supervisor killed outright: its watchdog, moved along with it, removes
# the instance's cgroup and puts the service's cgroup back.
echo "RUN [service-killed]"
incg $SERVICE xvisor run --pids 20 -- sleep 1000 >/dev/null 2>&1 &
k=$!
i=0; until ls -d $SERVICE/xvisor-* >/dev/null 2>&1 || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5; kill -9 $k; wait $k
i=0; while [ -n "$(find $SERVICE -mindepth 1 -type d)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
clean service-killed-clean $SERVICE

echo "== uid 1000, a scope in its user manager's delegated subtree"
memory user-memory incg $USCOPE $U
pids user-pids incg $USCOPE $U
cpus user-cpus incg $USCOPE $U
clean user-clean $USCOPE

finish
