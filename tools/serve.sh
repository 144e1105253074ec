#!/usr/bin/env bash
# make serve [PORT=8080] [SSH_PORT=2222] (0: a free port; a taken port is told, with how to choose others):
# the hzel API emulator in the foreground, from the project's
# virtualenv, with its state in .cache/emulator.sqlite3, and its SSH gateway to the running containers on
# 127.0.0.1:SSH_PORT (0: a free port) with its keys in .cache/emulator-ssh/. It prints the URL, the demo
# tokens, how to reach a container with ssh, and the export lines (HZEL_API_URL, HZEL_API_TOKEN, ANSIBLE_REMOTE_PORT,
# ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_SSH_COMMON_ARGS) that point the collection and Ansible at it; Ctrl-C stops it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ensure_venv
mkdir -p "$ROOT/.cache"
PYTHONPATH="$ROOT/tests/emulator" exec "$PY" -m hzel_emulator --port "${1:-8080}" --db "$ROOT/.cache/emulator.sqlite3" \
    --ssh-port "${SSH_PORT:-2222}" --announce
