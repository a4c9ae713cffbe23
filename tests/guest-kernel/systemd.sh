#!/bin/sh
# systemd.sh [XVISOR [CHECKS]]: boots Debian 12's stock kernel (6.1) in a
# QEMU guest under software emulation with a real systemd as pid 1 on a
# pure cgroup v2 hierarchy, and runs the CHECKS file there (default:
# systemd-checks.sh next to this script), as root, in a login session.
#
# The guest's root is this host's own / shared read-only over 9p (so the
# guest runs the host's systemd, dbus, podman, crun and conmon: Debian 12
# with those installed), the run's own files laid over it (units, a uid
# 1000 user "xvuser", lingering, xvisor as /usr/local/bin/xvisor, the
# static probe of probe.c, the checks, podman's storage with a busybox
# image) and a tmpfs over both (systemd-initrd.sh). What boots: systemd
# with journald, dbus, logind, uid 1000's user manager and the checks'
# service (systemd-guest.sh), as target xv-checks.target; udev, getty,
# generators and the rest of sysinit.target are masked. README.md says how
# to write a CHECKS file.
#
# Prints the guest's CHECK lines, "N passed, N failed" and the boot time;
# exits non-zero when a check failed or the guest did not finish. As root.
# XVISOR defaults to target/debug/xvisor, built first. The work directory
# ($GUEST_SYSTEMD_WORK, default /tmp/xvisor-guest-systemd) keeps the kernel,
# its modules and the initramfs between runs; the guest's serial logs are
# left there (boot.log: kernel and systemd; checks.txt: the checks).
# $GUEST_SYSTEMD_APPEND is added to the kernel's command line (for example
# "loglevel=7 systemd.show_status=1" to see the boot in boot.log).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${GUEST_SYSTEMD_WORK:-${TMPDIR:-/tmp}/xvisor-guest-systemd}
user1000=xvuser
image=localhost/xvisor-busybox:1
mkdir -p "$work"
if [ $# -ge 1 ]; then
    xv=$1
else
    (cd "$top" && cargo build -q -p xvisor)
    xv=$top/target/debug/xvisor
fi
checks=${2:-$here/systemd-checks.sh}
[ -f "$checks" ] || { echo "systemd.sh: no checks file $checks" >&2; exit 2; }
[ -x "$xv" ] || { echo "systemd.sh: no xvisor at $xv" >&2; exit 2; }

# The guest runs what this host has installed.
. "$here/packages.sh"
need_packages qemu-system-x86 busybox-static cpio gcc libc6-dev systemd dbus libpam-systemd python3 podman crun conmon

# The kernel linux-image-amd64 depends on, unpacked, never installed, with
# the modules the initramfs loads (9p over virtio, overlay).
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci 9pnet 9pnet_virtio netfs fscache 9p overlay"
if [ ! -e "$work/vmlinuz" ] || [ ! -e "$work/modules/overlay.ko" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/ {print $2; exit}')
    rm -rf "$work/kpkg" "$work/modules" && mkdir -p "$work/kpkg" "$work/modules"
    (cd "$work/kpkg" && apt-get download -q "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root)
    for m in $mods; do
        find "$work/kpkg/root/lib/modules" -name "$m.ko" -exec cp {} "$work/modules/" \;
        [ -e "$work/modules/$m.ko" ] || { echo "systemd.sh: $pkg has no module $m" >&2; exit 1; }
    done
    cp "$work"/kpkg/root/boot/vmlinuz-* "$work/vmlinuz"
    rm -rf "$work/kpkg" "$work/initrd.gz"
fi

# The initramfs: busybox, the modules, systemd-initrd.sh as /init.
if [ ! -e "$work/initrd.gz" ] || [ "$here/systemd-initrd.sh" -nt "$work/initrd.gz" ]; then
    root=$(mktemp -d "$work/initrd.XXXXXX")
    mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev"
    cp /bin/busybox "$root/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
    done
    cp "$work"/modules/*.ko "$root/modules/"
    cp "$here/systemd-initrd.sh" "$root/init" && chmod 755 "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz.new"
    mv "$work/initrd.gz.new" "$work/initrd.gz"
    rm -rf "$root"
fi

# The run's own files, laid over the guest's root (the upper of the
# overlay's two lower layers) before systemd starts. Only root may look in
# (a copy of /etc/shadow is there); removed after the boot.
stage=$work/stage
rm -rf "$stage"
mkdir -m 700 "$stage"
lib=$stage/usr/local/lib/xvisor-guest
mkdir -p "$lib" "$stage/usr/local/bin" "$stage/etc/systemd/system" "$stage/etc/systemd/system-generators" \
    "$stage/etc/containers" "$stage/var/lib/systemd/linger" "$stage/home/$user1000" "$stage/root"
cp "$xv" "$stage/usr/local/bin/xvisor"
gcc -O2 -static -Wall -o "$stage/usr/local/bin/probe" "$here/probe.c"
cp "$here/systemd-guest.sh" "$lib/guest.sh" && chmod 755 "$lib/guest.sh"
cp "$checks" "$lib/checks"
mkdir -p "$lib/bin"
cat >"$lib/bin/as_user" <<EOF
#!/bin/sh
exec runuser -u $user1000 -- env HOME=/home/$user1000 XDG_RUNTIME_DIR=/run/user/1000 \\
    DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus "\$@"
EOF
cp "$here/systemd-manager-call.py" "$lib/bin/manager_call"
chmod 755 "$lib/bin/as_user" "$lib/bin/manager_call"
printf 'XVISOR=/usr/local/bin/xvisor\nIMAGE=%s\nUSER1000=%s\n' "$image" "$user1000" >"$lib/env"

# Users: the host's, with uid 1000 (and its group) replaced by our own,
# lingering, with subordinate ids for rootless runs.
for f in passwd group shadow gshadow subuid subgid; do
    [ -e "/etc/$f" ] || continue
    case $f in
    passwd | group) awk -F: '$3 != 1000' "/etc/$f" >"$stage/etc/$f" ;;
    *) grep -v "^$(getent passwd 1000 | cut -d: -f1):" "/etc/$f" >"$stage/etc/$f" || true ;;
    esac
done
echo "$user1000:x:1000:1000::/home/$user1000:/bin/sh" >>"$stage/etc/passwd"
echo "$user1000:x:1000:" >>"$stage/etc/group"
echo "$user1000:!:19000::::::" >>"$stage/etc/shadow"
echo "$user1000:!::" >>"$stage/etc/gshadow"
echo "$user1000:200000:65536" >>"$stage/etc/subuid"
echo "$user1000:200000:65536" >>"$stage/etc/subgid"
chmod 640 "$stage/etc/shadow" "$stage/etc/gshadow"
chown root:shadow "$stage/etc/shadow" "$stage/etc/gshadow" 2>/dev/null || true
chown -R 1000:1000 "$stage/home/$user1000"
chmod 700 "$stage/root"
touch "$stage/var/lib/systemd/linger/$user1000"
: >"$stage/etc/fstab"
# A machine id of the guest's own (not the host's).
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$stage/etc/machine-id" && echo >>"$stage/etc/machine-id"

# What boots: our target, and nothing of sysinit.target that needs devices,
# the network or persistent state.
for u in apparmor.service systemd-pstore.service systemd-timesyncd.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
    proc-sys-fs-binfmt_misc.automount systemd-binfmt.service systemd-firstboot.service \
    systemd-machine-id-commit.service systemd-modules-load.service kmod-static-nodes.service \
    modprobe@.service systemd-pcrphase-sysinit.service systemd-pcrphase.service \
    systemd-random-seed.service systemd-repart.service systemd-sysusers.service \
    systemd-update-utmp.service systemd-journal-flush.service ldconfig.service \
    systemd-update-done.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-setup.service \
    systemd-sysctl.service \
    systemd-tmpfiles-clean.timer sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
    systemd-ask-password-console.path systemd-ask-password-wall.path systemd-initctl.socket \
    systemd-journald-audit.socket docker.socket podman.socket timers.target getty.target \
    systemd-oomd.service systemd-oomd.socket user@0.service; do
    ln -s /dev/null "$stage/etc/systemd/system/$u"
done
for g in /lib/systemd/system-generators/*; do
    ln -s /dev/null "$stage/etc/systemd/system-generators/${g##*/}"
done
cat >"$stage/etc/systemd/system/xv-checks.target" <<'EOF'
[Unit]
Description=xvisor's checks under systemd
Requires=basic.target
Wants=dbus.socket dbus.service systemd-logind.service xv-checks.service
After=basic.target
AllowIsolate=yes
EOF
cat >"$stage/etc/systemd/system/xv-checks.service" <<'EOF'
[Unit]
Description=xvisor's checks
After=basic.target dbus.service systemd-logind.service systemd-user-sessions.service
[Service]
Type=exec
ExecStart=/usr/local/lib/xvisor-guest/guest.sh main
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS1
TTYReset=no
TTYVHangup=no
TimeoutStartSec=infinity
EOF
# podman: the storage holding the image imported below, no journald logging.
cat >"$stage/etc/containers/storage.conf" <<'EOF'
[storage]
driver = "vfs"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
EOF
cat >"$stage/etc/containers/containers.conf" <<'EOF'
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "systemd"
events_logger = "file"
EOF

# The busybox image (a root made as .ci/engines makes it), imported here
# into the storage the guest unpacks into /var/lib/containers (a tmpfs):
# the vfs driver, whose layers are plain directories; the libpod database
# is left for the guest to make (it records the storage's paths).
bb=$(mktemp -d "$work/busybox.XXXXXX")
mkdir -p "$bb/root/bin" "$bb/root/etc" "$bb/root/proc" "$bb/root/sys" "$bb/root/dev" "$bb/root/tmp" "$bb/root/root"
cp /bin/busybox "$bb/root/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$bb/root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bb/root/etc/passwd"
echo 'root:x:0:' >"$bb/root/etc/group"
if ! tar -C "$bb/root" -c . | podman --root "$bb/storage" --runroot "$bb/run" --tmpdir "$bb/tmp" \
    --storage-driver vfs --events-backend none import --change 'CMD ["/bin/sh"]' - "$image" >"$bb/import.log" 2>&1; then
    cat "$bb/import.log" >&2
    echo "systemd.sh: podman import failed" >&2
    exit 1
fi
rm -rf "$bb/storage/libpod"
tar -C "$bb" -cf "$lib/containers.tar" storage
rm -rf "$bb"

# One boot. The kernel and systemd write to the first serial port, the
# checks to the second.
rm -f "$work/boot.log" "$work/checks.log"
start=$(date +%s)
timeout 900 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 2048 -smp 2 \
    -nodefaults -display none -monitor none -no-reboot \
    -serial "file:$work/boot.log" -serial "file:$work/checks.log" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$stage",mount_tag=xvstage,security_model=none,readonly=on \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 systemd.unified_cgroup_hierarchy=1 systemd.unit=xv-checks.target systemd.show_status=error ${GUEST_SYSTEMD_APPEND:-}" \
    </dev/null >"$work/qemu.log" 2>&1 &
qpid=$!
trap 'kill $qpid 2>/dev/null; exit 130' INT TERM
wait $qpid || true
trap - INT TERM
took=$(($(date +%s) - start))
rm -rf "$stage"
tr -d '\r' <"$work/checks.log" >"$work/checks.txt"
grep '^CHECK ' "$work/checks.txt" || true
passed=$(grep -c '^CHECK .* ok$' "$work/checks.txt" || true)
failed=$(grep -c '^CHECK .* FAIL' "$work/checks.txt" || true)
if ! grep -q '^DONE' "$work/checks.txt"; then
    echo "systemd.sh: the guest did not finish its checks; see $work/boot.log and $work/checks.txt" >&2
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
echo "systemd.sh: boot, checks and poweroff took $took s ($(sed -n 's/^GUEST Startup finished in //p' "$work/checks.txt"));" \
    "logs: $work/boot.log, $work/checks.txt"
[ "$failed" = 0 ]
