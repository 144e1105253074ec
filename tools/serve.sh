#!/usr/bin/env bash
# make serve [PORT=8080]: the hzel API emulator in the foreground, from the project's virtualenv,
# with its state in .cache/emulator.sqlite3. It prints its URL and the demo tokens; Ctrl-C stops it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ensure_venv
mkdir -p "$ROOT/.cache"
PYTHONPATH="$ROOT/tests/emulator" exec "$PY" -m hzel_emulator --port "${1:-8080}" --db "$ROOT/.cache/emulator.sqlite3" --announce
