#!/bin/sh
# run.sh [XVISOR]: boots Debian 12's stock kernel (6.1) in a QEMU guest
# under software emulation, with a pure cgroup v2 hierarchy laid out as
# systemd lays it out, and runs xvisor's limits checks there (init.sh).
# Prints "N passed, N failed" and exits non-zero when a check failed or
# the guest did not finish. As root on Debian 12; about 30 s on a 2-vCPU
# machine, nearly all of it the one boot (the first run also installs
# QEMU and downloads the kernel). XVISOR defaults to target/debug/xvisor,
# built first. The work directory ($GUEST_KERNEL_WORK, default
# /tmp/xvisor-guest-kernel) keeps the kernel between runs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${GUEST_KERNEL_WORK:-${TMPDIR:-/tmp}/xvisor-guest-kernel}
mkdir -p "$work"
if [ $# -ge 1 ]; then
    xv=$1
else
    (cd "$top" && cargo build -q -p xvisor)
    xv=$top/target/debug/xvisor
fi
. "$here/packages.sh"
need_packages qemu-system-x86 busybox-static cpio gcc libc6-dev
gcc -O2 -static -Wall -o "$work/probe" "$here/probe.c"

# The kernel linux-image-amd64 depends on, unpacked, never installed.
if [ ! -e "$work/vmlinuz" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/ {print $2; exit}')
    (cd "$work" && rm -rf kpkg && mkdir kpkg && cd kpkg && apt-get download -q "$pkg" >/dev/null 2>&1 &&
        dpkg-deb -x ./*.deb root && cp root/boot/vmlinuz-* ../vmlinuz)
    rm -rf "$work/kpkg"
fi

# The initramfs: busybox with its applets, xvisor with the libraries it
# loads, the probe, the users, the checks as /init.
root=$(mktemp -d "$work/root.XXXXXX")
mkdir -p "$root/usr/bin" "$root/usr/local/bin" "$root/etc" "$root/root" "$root/proc" "$root/sys" \
    "$root/dev" "$root/tmp" "$root/run"
for d in bin sbin lib lib64; do
    mkdir -p "$root/usr/$d"
    ln -s "usr/$d" "$root/$d"
done
cp /bin/busybox "$root/usr/bin/busybox"
for a in $(/bin/busybox --list); do
    [ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
cp "$xv" "$root/usr/local/bin/xvisor"
cp "$work/probe" "$root/usr/local/bin/probe"
ldd "$xv" | awk '/=> \// {print $3} /^\t\/lib64\// {print $1}' | while read -r lib; do
    dst=$root/usr${lib#/usr}
    mkdir -p "$(dirname "$dst")" && cp -L "$lib" "$dst"
done
printf 'root:x:0:0::/root:/bin/sh\nu1000:x:1000:1000::/tmp:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nu1000:x:1000:\n' >"$root/etc/group"
cp "$here/init.sh" "$root/init" && chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"
rm -rf "$root"

# boot NAME EXTRA_CMDLINE: one boot, its serial log in $work/NAME.txt.
boot() {
    start=$(date +%s)
    timeout 900 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 2048 -smp 2 -nographic -no-reboot \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1 $2" \
        </dev/null >"$work/$1.log" 2>&1 || true
    echo "guest-kernel: boot '$1' and its checks took $(($(date +%s) - start)) s; log: $work/$1.log"
    tr -d '\r' <"$work/$1.log" >"$work/$1.txt"
    grep '^CHECK .* FAIL' "$work/$1.txt" || true
    if ! grep -q '^DONE' "$work/$1.txt"; then
        echo "guest-kernel: the guest '$1' did not finish its checks" >&2
        unfinished=$((unfinished + 1))
    fi
}
unfinished=0
boot cgroup2 ""
# Landlock left out of the kernel's LSM list, as on kernels before 5.13.
boot nolandlock "lsm=lockdown,capability,yama,apparmor,bpf xvisor.check=nolandlock"
passed=$(cat "$work/cgroup2.txt" "$work/nolandlock.txt" | grep -c '^CHECK .* ok$' || true)
failed=$(cat "$work/cgroup2.txt" "$work/nolandlock.txt" | grep -c '^CHECK .* FAIL' || true)
failed=$((failed + unfinished))
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
