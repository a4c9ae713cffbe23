#!/bin/sh
# The initramfs's /init for systemd.sh: loads the 9p and overlay modules of
# the booted kernel, mounts the host's / (read-only, 9p tag "hostroot")
# with the run's own files (9p tag "xvstage": units, users, xvisor, the
# checks) over it and a tmpfs over both (so that /etc,
# /var and the rest are writable), and hands the machine to systemd.
export PATH=/bin
die() {
    echo "INITRD FAIL $*"
    echo "INITRD FAIL $*" >/dev/ttyS1
    poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
    9pnet 9pnet_virtio netfs fscache 9p overlay; do
    insmod "/modules/$m.ko" || die "insmod $m"
done
mkdir -p /lower /stage /rw /newroot
echo "INITRD at $(cut -d' ' -f1 /proc/uptime)"
opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro
i=0
until mount -t 9p -o "$opts" hostroot /lower 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 50 ] || die "cannot mount the host's root over 9p"
    sleep 0.1
done
mount -t 9p -o "$opts" xvstage /stage || die "cannot mount the run's files over 9p"
mount -t tmpfs -o mode=755 tmpfs /rw || die "tmpfs"
mkdir -p /rw/upper /rw/work
# The run's files over the host's: nothing is copied, what the guest
# changes goes to the tmpfs.
mount -t overlay -o lowerdir=/stage:/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
    die "cannot mount the overlay"
# The host is a container (/.dockerenv): left visible, systemd would take
# the guest for one too and ignore the kernel's command line.
rm -f /newroot/.dockerenv /newroot/run/.containerenv /newroot/run/systemd/container
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /newroot/run
# Empty and writable where the host's own files have no business: the
# host's /tmp.
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp
# podman's storage on a tmpfs of its own, holding the image systemd.sh
# imported (as one file: unpacked here rather than read file by file over
# 9p, which makes each container's copy of the image slow).
mkdir -p /newroot/var/lib/containers
mount -t tmpfs -o mode=700 tmpfs /newroot/var/lib/containers
tar -C /newroot/var/lib/containers -xf /newroot/usr/local/lib/xvisor-guest/containers.tar ||
    die "cannot unpack podman's storage"
mount --move /dev /newroot/dev
echo "INITRD at $(cut -d' ' -f1 /proc/uptime)"
umount /sys /proc
exec switch_root /newroot /lib/systemd/systemd
