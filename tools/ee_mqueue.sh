#!/usr/bin/env bash
# Runs a command with a /dev/mqueue directory, without changing the machine's /dev: in a mount namespace of
# its own (unshare --mount --propagation private), /dev becomes a tmpfs that binds every entry of the real
# /dev and adds mqueue/ (POSIX message queues when the kernel lets it mount them, else an empty folder).
# ansible-navigator refuses to run podman without /dev/mqueue (ansible-runner gives containers --ipc=host).
# Usage: unshare --mount --propagation private tools/ee_mqueue.sh SCRATCH_DIR COMMAND [ARG...]
set -euo pipefail
shadow=$1
shift
if [ -d /dev/mqueue ]; then
    exec "$@"
fi
mkdir -p "$shadow"
mount -t tmpfs -o mode=755 devshadow "$shadow"
for entry in /dev/* /dev/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    name=${entry#/dev/}
    if [ -L "$entry" ]; then
        cp -a "$entry" "$shadow/$name"
    elif [ -d "$entry" ]; then
        mkdir "$shadow/$name"
        mount --rbind "$entry" "$shadow/$name"
    else
        touch "$shadow/$name"
        mount --bind "$entry" "$shadow/$name"
    fi
done
mkdir "$shadow/mqueue"
mount -t mqueue mqueue "$shadow/mqueue" 2>/dev/null || true
mount --move "$shadow" /dev
exec "$@"
