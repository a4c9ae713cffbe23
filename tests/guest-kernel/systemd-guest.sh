#!/bin/sh
# The guest's side of systemd.sh, installed as /usr/local/lib/xvisor-guest/guest.sh.
#
#   guest.sh main      xv-checks.service's ExecStart (root, a service of its
#                      own): waits for the boot, starts uid 1000's user
#                      manager, runs the checks in a login session, prints
#                      DONE, powers off
#   guest.sh session   the checks, in the session su(1) opened through
#                      pam_systemd (user-0.slice/session-c1.scope)
#
# Output goes to the second serial port (/dev/ttyS1), which systemd.sh
# reads; the first carries the kernel's and systemd's own messages.
lib=/usr/local/lib/xvisor-guest
. $lib/env

# The helpers a CHECKS file uses.
pass=0 fail=0
ok() { echo "CHECK $1 ok"; pass=$((pass + 1)); }
bad() { echo "CHECK $1 FAIL $2"; fail=$((fail + 1)); }
uptime() { cut -d' ' -f1 /proc/uptime; }
# x NAME CMD...: runs CMD (at most 300 s), shows its output, keeps its exit
# status in $rc and its output in $out.
x() {
    _n=$1
    shift
    echo "RUN [$_n] $*"
    _t=$(uptime)
    out=$(timeout 300 "$@" </dev/null 2>&1)
    rc=$?
    [ -z "$out" ] || echo "$out" | sed 's/^/  | /'
    echo "END [$_n] rc=$rc, $(echo "$(uptime) $_t" | awk '{printf "%.1f", $1 - $2}') s"
}
# check NAME CMD...: CMD must exit 0.
check() {
    _c=$1
    x "$@"
    [ "$rc" = 0 ] && ok "$_c" || bad "$_c" "rc=$rc"
}
# has TEXT: $out contains TEXT.
has() { case $out in *"$1"*) return 0 ;; esac; return 1; }
# as_user CMD... (a program, $lib/bin/as_user, so that x and timeout can
# run it): CMD as uid 1000 ($USER1000), talking to its own user manager
# ($XDG_RUNTIME_DIR/systemd/private) and user bus.
# cgroup_of [PID]: the cgroup v2 path of PID (default: this shell), from /.
cgroup_of() { sed -n 's/^0:://p' "/proc/${1:-self}/cgroup"; }

case $1 in
session)
    export XVISOR IMAGE USER1000 PATH=$lib/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    cd /root 2>/dev/null || cd /
    echo "GUEST at $(uptime) s: checks in $(cgroup_of $$) (XDG_SESSION_ID=${XDG_SESSION_ID:-none})"
    . $lib/checks
    echo "RESULT $pass passed, $fail failed"
    [ $fail = 0 ]
    exit
    ;;
main) ;;
*)
    echo "usage: guest.sh main|session" >&2
    exit 2
    ;;
esac

echo "GUEST at $(uptime) s: kernel $(uname -r), systemd $(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')," \
    "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
state=$(timeout 120 systemctl is-system-running --wait 2>&1)
echo "GUEST at $(uptime) s: system state: $state"
case $state in
running) ok setup-system-running ;;
degraded)
    ok setup-system-running
    systemctl --failed --no-legend --plain | sed 's/^/GUEST failed unit: /'
    ;;
*) bad setup-system-running "$state" ;;
esac
systemd-analyze 2>/dev/null | sed -n '1s/^/GUEST /p'

# uid 1000's user manager: lingering starts it with logind; start it here
# too, which waits until it is up.
x setup-user-manager systemctl start user@1000.service
[ $rc = 0 ] && [ -S /run/user/1000/systemd/private ] && ok setup-user-manager ||
    bad setup-user-manager "rc=$rc, socket: $(ls -l /run/user/1000/systemd/private 2>&1)"

# The checks, in a login session of root's own.
echo "GUEST at $(uptime) s: opening a session"
# su(1)'s PAM stack (common-session: pam_systemd) asks logind for the
# session. Not a login shell: the host's profile scripts are not ours.
timeout 780 su -s /bin/sh root -c "$lib/guest.sh session"
rc=$?
case $rc in
0) ;;
1) ;; # a check failed (its line says so)
124) bad checks-finished "the checks did not finish within 780 s" ;;
*) bad checks-finished "the checks' shell ended with $rc" ;;
esac
# Something failed: the journal's warnings (the kernel's are in boot.log),
# for the reason.
if [ $rc != 0 ] || [ $fail != 0 ]; then
    journalctl -b -p warning --no-pager -o short-monotonic | grep -v '^\[[ 0-9.]*\] [^ ]* kernel: ' |
        tail -n 60 | sed 's/^/JOURNAL /'
fi
echo "RESULT setup $pass passed, $fail failed"
if [ -n "$(systemctl --failed --no-legend --plain)" ]; then
    systemctl --failed --no-legend --plain | sed 's/^/GUEST failed unit at the end: /'
fi
echo "GUEST at $(uptime) s: done"
echo DONE
sleep 0.5
systemctl poweroff -ff
