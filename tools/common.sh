# shellcheck shell=bash
# Shared set-up of the demo and the test suite: one virtualenv with pinned
# packages, the ansible_collections/hzel/cloud path, and the emulator.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${HZEL_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
export PATH="$VENV/bin:$PATH"
export ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-1}
export ANSIBLE_FORCE_COLOR=0
export PY_COLORS=0
# Plays against localhost without an inventory are the norm here; keep their warnings out of the output.
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false

log() { printf '\n==> %s\n' "$*"; }

# The ansible-core versions the suite runs on, each with the controller Python it needs:
# the lowest that meta/runtime.yml supports, each stable release between, and the newest (its newest
# pre-release on the package index until its GA is published, then the GA).
# meta/runtime.yml and the README state this range; a test compares them.
# shellcheck disable=SC2034  # read by test.sh
CORES=(2.17.14/3.11 2.18.19/3.11 2.19.14/3.11 2.20.10/3.12 2.21.5/3.13 2.22.0rc1/3.13)
# The core of the development virtualenv (requirements-dev.txt); the other stages run on it.
# shellcheck disable=SC2034  # read by test.sh
DEV_CORE=2.19.14

pyenv_root() { echo "${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"; }

# find_python X.Y: the path of a Python X.Y interpreter (PATH first, then pyenv), or fail.
find_python() {
    local version=$1 candidate
    for candidate in "$(command -v "python$version" 2>/dev/null || true)" \
        "$(find "$(pyenv_root)/versions" -maxdepth 3 -path "*/versions/$version.*/bin/python$version" \
            2>/dev/null | sort -V | tail -n 1)"; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    echo "no Python $version found (on PATH or under pyenv); the ansible-core that needs it cannot be tested" >&2
    return 1
}

# target_python_path: the bin folders of every Python 3 that pyenv has, so that sanity's
# compile and import tests cover each Python that a core supports for modules.
target_python_path() {
    local dir path=
    for dir in "$(pyenv_root)"/versions/3.*/bin; do
        [ -d "$dir" ] && path=$path$dir:
    done
    echo "$path"
}

# pinned_venv VENV PYTHON_VERSION WANT PIP_ARGS...: VENV made with that Python (python3 when the version is empty)
# and "pip install PIP_ARGS", unless its stamp already says WANT (a hash of what it was made from).
# Jobs that run at once may ask for the same one (a core's own job and the examples stage): one makes it at a
# time, under a lock beside it, and the others then find it made.
pinned_venv() {
    local venv=$1 status=0 lock
    mkdir -p "$(dirname "$venv")"
    exec {lock}>"$venv.lock"
    flock "$lock"
    _pinned_venv "$@" || status=$?
    exec {lock}>&-
    return $status
}

_pinned_venv() {
    local venv=$1 python_version=$2 want=$3 python=python3
    shift 3
    if [ -x "$venv/bin/python" ] && [ -f "$venv/.requirements.sha" ] && [ "$(cat "$venv/.requirements.sha")" = "$want" ]; then
        return 0
    fi
    if [ -n "$python_version" ]; then python=$(find_python "$python_version") || return 1; fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    if ! { "$venv/bin/python" -m pip install --upgrade pip && "$venv/bin/python" -m pip install "$@"; } \
        >"$venv/install.log" 2>&1; then
        tail -n 40 "$venv/install.log" >&2
        return 1
    fi
    echo "$want" > "$venv/.requirements.sha"
}

# ensure_core_venv CORE PYTHON_VERSION: a virtualenv with that ansible-core and tests/requirements-core.txt.
ensure_core_venv() {
    local core=$1 python_version=$2
    # shellcheck disable=SC2034  # read by test.sh
    CORE_VENV=$ROOT/.venv-cores/$core
    pinned_venv "$CORE_VENV" "$python_version" \
        "$( (echo "$core"; cat "$ROOT/tests/requirements-core.txt") | sha256sum | cut -d' ' -f1)" \
        "ansible-core==$core" -r "$ROOT/tests/requirements-core.txt"
}

ensure_venv() {
    local stamp=$VENV/.requirements-dev.sha
    local want
    want=$(sha256sum "$ROOT/requirements-dev.txt" | cut -d' ' -f1)
    if [ -x "$PY" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "creating $VENV with the pinned packages of requirements-dev.txt"
    python3 -m venv "$VENV"
    if ! { "$PY" -m pip install --upgrade pip && "$PY" -m pip install -r "$ROOT/requirements-dev.txt"; } \
        >"$VENV/install.log" 2>&1; then
        tail -n 40 "$VENV/install.log" >&2
        return 1
    fi
    echo "$want" > "$stamp"
}

# ansible-test and ansible-playbook find the collection at .../ansible_collections/hzel/cloud.
# ansible-test resolves symlinks in its working directory, so this is a copy of
# the files git tracks or would track, refreshed on every call.
ensure_collection_path() {
    local key
    key=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
    COLLECTIONS_DIR=${HZEL_COLLECTIONS_DIR:-${TMPDIR:-/tmp}/hzel-cloud-$key}
    COLLECTION=$COLLECTIONS_DIR/ansible_collections/hzel/cloud
    "$PY" - "$ROOT" "$COLLECTION" <<'PY'
import os, shutil, subprocess, sys
root, dest = sys.argv[1:3]
listed = subprocess.run(["git", "-C", root, "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                        check=True, capture_output=True).stdout.decode().split("\0")
wanted = {name for name in listed if name and os.path.isfile(os.path.join(root, name))}
if os.path.islink(dest):
    os.unlink(dest)
if os.path.realpath(dest) == os.path.realpath(root):
    sys.exit("refusing to sync %s onto itself" % root)
if os.path.isdir(dest):
    for base, dirs, files in os.walk(dest, topdown=True):
        rel = os.path.relpath(base, dest)
        if rel == os.path.join("tests", "output"):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.normpath(os.path.join(rel, name))
            if path not in wanted:
                os.unlink(os.path.join(base, name))
for name in wanted:
    source, target = os.path.join(root, name), os.path.join(dest, name)
    if os.path.exists(target) and os.stat(target).st_mtime_ns == os.stat(source).st_mtime_ns \
            and os.path.getsize(target) == os.path.getsize(source):
        continue
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(source, target)
PY
    export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
    export COLLECTIONS_DIR COLLECTION
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_emulator DIR [extra emulator args]: sets EMULATOR_URL and EMULATOR_PID, and for its SSH gateway
# to the running containers (on 127.0.0.1, a free port): EMULATOR_SSH_PORT, EMULATOR_SSH_DIR (keys,
# known_hosts, ssh_config, gateway.json, homes), EMULATOR_SSH_KEY and EMULATOR_SSH_KNOWN_HOSTS.
start_emulator() {
    local dir=$1
    shift
    local port
    port=$(free_port)
    mkdir -p "$dir"
    PYTHONPATH="$ROOT/tests/emulator" "$PY" -m hzel_emulator --port "$port" --db "$dir/hzel.sqlite3" \
        --ssh-port 0 --ssh-dir "$dir/ssh" "$@" >"$dir/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    EMULATOR_URL=http://127.0.0.1:$port
    export EMULATOR_URL EMULATOR_PID
    for _ in $(seq 1 100); do
        if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/_emulator/health', timeout=1)" \
            "$EMULATOR_URL" 2>/dev/null; then
            # gateway.json is written before the API answers.
            { read -r EMULATOR_SSH_PORT; read -r EMULATOR_SSH_KEY; read -r EMULATOR_SSH_KNOWN_HOSTS; } < <("$PY" -c '
import json, sys
info = json.load(open(sys.argv[1]))
print("\n".join(str(info[key]) for key in ("port", "identity_file", "known_hosts")))' "$dir/ssh/gateway.json")
            EMULATOR_SSH_DIR=$(dirname "$EMULATOR_SSH_KEY")
            export EMULATOR_SSH_PORT EMULATOR_SSH_DIR EMULATOR_SSH_KEY EMULATOR_SSH_KNOWN_HOSTS
            return 0
        fi
        sleep 0.1
    done
    echo "the hzel emulator did not start; its log:" >&2
    cat "$dir/emulator.log" >&2
    return 1
}

stop_emulator() {
    if [ -n "${EMULATOR_PID:-}" ]; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
        EMULATOR_PID=
    fi
}

# ansible-test's sanity venvs fetch a pip bootstrap script from the internet;
# it reads it from its cache first, so the cache gets a local stand-in.
# ensure_pip_bootstrap [PYTHON]: for the ansible-test of that Python's environment.
ensure_pip_bootstrap() {
    local version
    version=$("${1:-$PY}" - <<'PY'
import re, ansible_test, pathlib
source = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", source).group(1).replace(".", "_"))
PY
)
    mkdir -p "$HOME/.ansible/test/cache"
    cp "$ROOT/tools/get_pip.py" "$HOME/.ansible/test/cache/get_pip_${version}.py"
}

# ansible-test of 2.22 pins dill for pylint to a source archive on a code host (for Python 3.15, which the
# suite does not run); only the package index is reachable from the machines the suite runs on, so the
# requirement becomes the package index's release of dill, which supports every Python the suite uses.
# ensure_index_requirements [PYTHON]: for the ansible-test of that Python's environment.
ensure_index_requirements() {
    "${1:-$PY}" - <<'PY'
import pathlib, re, ansible_test
folder = pathlib.Path(ansible_test.__file__).parent / "_data" / "requirements"
for path in folder.glob("*.txt"):
    text = path.read_text()
    fixed = re.sub(r"^dill @ https://\S+$", "dill==0.4.1", text, flags=re.MULTILINE)
    if fixed != text:
        path.write_text(fixed)
PY
}

# ensure_tool_venv NAME REQUIREMENTS: a virtualenv .venv-NAME with the pinned packages of REQUIREMENTS, for a
# tool whose pins conflict with the development virtualenv; sets TOOL_VENV.
ensure_tool_venv() {
    # shellcheck disable=SC2034  # read by test.sh
    TOOL_VENV=$ROOT/.venv-$1
    pinned_venv "$TOOL_VENV" "" "$(sha256sum "$2" | cut -d' ' -f1)" -r "$2"
}
