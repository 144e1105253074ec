#!/usr/bin/env bash
# The 'ee' stage of tools/test.sh: hzel.cloud as AWX runs it, inside an execution environment image.
#   1. podman, runc and debootstrap (installed with apt-get when missing); podman's settings from
#      tests/ee/containers.conf, its storage in the stage's cache (HZEL_EE_CACHE, default ~/.cache/hzel-ee).
#   2. A Debian base image without any registry (tools/ee_base.sh), an execution environment and a
#      decision environment on it, built by ansible-builder from the collection's own definitions
#      (tests/ee/definitions.py) with the collection from the tarball of 'ansible-galaxy collection build'.
#      Each image is tagged with a hash of what it is made from and built only when that changes.
#   3. The checks of tests/ee/run_ee.py against the emulator on the host: a job through ansible-runner's
#      transmit | worker | process, an inventory update, a configure play over SSH, ansible-navigator with
#      --ee true, and ansible-rulebook in the decision environment.
# Usage: tools/ee.sh WORKDIR
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
WORK=${1:?usage: tools/ee.sh WORKDIR}
CACHE=${HZEL_EE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hzel-ee}
mkdir -p "$WORK" "$CACHE"
WORK=$(cd "$WORK" && pwd)
started=$(date +%s)

# --- 1. the tools ---------------------------------------------------------------------------------
TOOLS=(podman runc debootstrap)
PACKAGES=(podman runc debootstrap uidmap fuse-overlayfs slirp4netns)
missing() { local tool; for tool in "${TOOLS[@]}"; do command -v "$tool" >/dev/null || echo "$tool"; done; }
if [ -n "$(missing)" ]; then
    hint="as root on Debian or Ubuntu: apt-get update && apt-get install -y ${PACKAGES[*]}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing ${PACKAGES[*]} (missing: $(missing | xargs))"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}"; } \
            >"$WORK/apt-get.log" 2>&1 || { tail -n 20 "$WORK/apt-get.log"; echo "FAIL: the installation failed; $hint" >&2; exit 1; }
    fi
    if [ -n "$(missing)" ]; then
        echo "FAIL: missing $(missing | xargs); $hint" >&2
        exit 1
    fi
fi
export CONTAINERS_CONF=$ROOT/tests/ee/containers.conf
export CONTAINERS_STORAGE_CONF=$CACHE/storage.conf
cat > "$CONTAINERS_STORAGE_CONF.new" <<CONF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$CACHE/run"
CONF
mv "$CONTAINERS_STORAGE_CONF.new" "$CONTAINERS_STORAGE_CONF"
log "$(podman --version), OCI runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), storage in $CACHE"

# --- 2. the images --------------------------------------------------------------------------------
log "base image (debootstrap of Debian, no registry)"
BASE=$("$ROOT/tools/ee_base.sh" "$CACHE/base" | tail -n 1)
echo "$BASE"
HZEL_COLLECTIONS_DIR=$WORK/collections ensure_collection_path >/dev/null
rm -rf "$WORK/dist"
(cd "$COLLECTION" && ansible-galaxy collection build --force --output-path "$WORK/dist" >/dev/null)
TARBALL=$(echo "$WORK"/dist/hzel-cloud-*.tar.gz)
"$PY" "$ROOT/tests/ee/definitions.py" "$ROOT" "$BASE" "$TARBALL" "$WORK/definitions"

# image_tag NAME DEFINITION: NAME:HASH of the definition, the collection's files that the image uses (not its
# tests or docs: tests/ee/definitions.py), and ansible-builder's version.
CONTENT_HASH=$("$PY" "$ROOT/tests/ee/definitions.py" --content-hash "$TARBALL")
image_tag() {
    local hash
    hash=$( { sed "s|$WORK|WORK|g" "$2"; echo "$CONTENT_HASH"; ansible-builder --version; } | sha256sum | cut -c1-16)
    echo "localhost/$1:$hash"
}
# build IMAGE DEFINITION: ansible-builder build, unless the image exists.
build() {
    local image=$1 definition=$2 dir
    dir=$(dirname "$definition")
    if podman image exists "$image"; then
        echo "$image (cached)"
        return 0
    fi
    if ansible-builder build -v 3 --container-runtime podman -f "$definition" -c "$dir/context" -t "$image" \
        --extra-build-cli-args="--network=host" >"$dir/build.log" 2>&1; then
        echo "$image (built)"
    else
        echo "ansible-builder build of $image failed; the end of its log:" >&2
        tail -n 40 "$dir/build.log" >&2
        return 1
    fi
}
EE=$(image_tag hzel-ee "$WORK/definitions/ee/execution-environment.yml")
DE=$(image_tag hzel-de "$WORK/definitions/de/decision-environment.yml")
log "ansible-builder build: execution environment and decision environment"
status=0
build "$EE" "$WORK/definitions/ee/execution-environment.yml" & ee_pid=$!
build "$DE" "$WORK/definitions/de/decision-environment.yml" & de_pid=$!
wait "$ee_pid" || status=1
wait "$de_pid" || status=1
[ "$status" -eq 0 ] || exit 1
ensure_tool_venv navigator "$ROOT/tests/ee/requirements-navigator.txt"
built=$(date +%s)

# --- 3. the checks --------------------------------------------------------------------------------
# Two emulators: one for the execution environment's checks, one for the decision environment's, which run meanwhile.
rm -rf "$WORK/emulator" "$WORK/de-emulator"
start_emulator "$WORK/de-emulator" --provision-seconds 0.3
DE_EMULATOR_URL=$EMULATOR_URL DE_EMULATOR_PID=$EMULATOR_PID
stop_both() { stop_emulator; EMULATOR_PID=$DE_EMULATOR_PID; stop_emulator; }
trap stop_both EXIT
start_emulator "$WORK/emulator" --provision-seconds 0.3
"$PY" "$ROOT/tests/ee/run_ee.py" --root "$ROOT" --ee "$EE" --de "$DE" --emulator "$EMULATOR_URL" \
    --de-emulator "$DE_EMULATOR_URL" --ssh-port "$EMULATOR_SSH_PORT" --ssh-key "$EMULATOR_SSH_KEY" \
    --known-hosts "$EMULATOR_SSH_KNOWN_HOSTS" --navigator "$TOOL_VENV" --work "$WORK/checks"
stop_both
ended=$(date +%s)
echo "ee stage: images $((built - started))s (tools, base image, ansible-builder), checks $((ended - built))s, total $((ended - started))s"
