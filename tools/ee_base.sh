#!/usr/bin/env bash
# The Debian base image of the 'ee' stage's execution and decision environments, made without any
# registry: debootstrap (minbase) of Debian bookworm from the mirror the host's apt uses, with Python 3,
# pip, venv and an SSH client, imported into podman. It trusts the host's CA certificates and uses the
# host's pip configuration (/etc/pip.conf, PIP_INDEX_URL), so pip inside a build reaches the package index
# wherever the host does. The tag is a hash of this recipe: the image is rebuilt only when it changes.
#
# Usage: tools/ee_base.sh WORKDIR     (podman's configuration comes from the caller: CONTAINERS_CONF, ...)
# Prints the image name (localhost/hzel-ee-base:HASH) on its last line.
set -euo pipefail
work=$1
PACKAGES=python3,python3-pip,python3-venv,ca-certificates,openssh-client
SUITE=bookworm

# The Debian mirror of the host's apt sources (deb822 or one-line format); deb.debian.org if none.
host_mirror() {
    local mirror
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
    if [ -z "$mirror" ]; then
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }')
    fi
    echo "${mirror:-http://deb.debian.org/debian}"
}

MIRROR=$(host_mirror)
CA=/etc/ssl/certs/ca-certificates.crt
PIP_CONF=
[ -f /etc/pip.conf ] && PIP_CONF=$(cat /etc/pip.conf)
if [ -n "${PIP_INDEX_URL:-}" ]; then
    PIP_CONF=$(printf '%s\n[global]\nindex-url = %s\n' "$PIP_CONF" "$PIP_INDEX_URL")
fi
HASH=$( { cat "$0"; echo "$MIRROR $SUITE $PACKAGES"; cat "$CA" 2>/dev/null; echo "$PIP_CONF"; } | sha256sum | cut -c1-16)
IMAGE=localhost/hzel-ee-base:$HASH

if podman image exists "$IMAGE"; then
    echo "$IMAGE"
    exit 0
fi
for tool in debootstrap podman chroot; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done
root=$work/rootfs
rm -rf "$root"
mkdir -p "$work"
echo "debootstrap --variant=minbase $SUITE from $MIRROR" >&2
# In two stages, so that dpkg unpacks without a sync per file (force-unsafe-io, as Debian's own container images
# do): the second stage, which installs every package, takes a fraction of the time.
debootstrap --foreign --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
chroot "$root" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
# apt inside the image: the same mirror, with the updates and security suites.
security=${MIRROR%/debian}/debian-security
[ "$MIRROR" = "${MIRROR%/debian}" ] && security=http://deb.debian.org/debian-security
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $security $SUITE-security main
SOURCES
# The host's CA certificates and pip configuration.
[ -f "$CA" ] && cp "$CA" "$root/etc/ssl/certs/ca-certificates.crt"
[ -n "$PIP_CONF" ] && printf '%s\n' "$PIP_CONF" > "$root/etc/pip.conf"
# A Debian base for ansible-builder: pip may install into the system Python (no PEP 668 marker), and a
# package manager that takes ansible-builder's 'install -y PACKAGES' and 'clean all' (see package_manager_path).
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
cat > "$root/usr/local/bin/apt-install" <<'SCRIPT'
#!/bin/sh
# ansible-builder's package manager interface on Debian: install -y PACKAGES..., clean all
set -e
case "$1" in
    install) shift; [ "$1" = -y ] && shift
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ;;
    clean) apt-get clean; rm -rf /var/lib/apt/lists/* ;;
    *) echo "apt-install: install -y PACKAGES... | clean all" >&2; exit 2 ;;
esac
SCRIPT
chmod 755 "$root/usr/local/bin/apt-install"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >"$work/import.log"
rm -rf "$root"
echo "$IMAGE"
