# Sourced by the guest-kernel scripts. need_packages PKG...: installs the
# Debian packages missing from this host, refreshing the package lists
# first when something is missing or the kernel package is unknown (the
# scripts download Debian's stock kernel with apt-get).
need_packages() {
    missing=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ] || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    fi
    if [ -n "$missing" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
    fi
}
