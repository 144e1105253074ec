#!/usr/bin/env bash
# Type-check plugins/module_utils as the package Ansible imports them from
# (ansible_collections.hzel.cloud.plugins.module_utils), with the settings of pyproject.toml.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ensure_venv
HZEL_COLLECTIONS_DIR=${HZEL_MYPY_DIR:-${TMPDIR:-/tmp}/hzel-mypy-$(id -u)} ensure_collection_path >/dev/null
cd "$COLLECTIONS_DIR"
MYPYPATH=$COLLECTIONS_DIR mypy --config-file "$ROOT/pyproject.toml" -p ansible_collections.hzel.cloud.plugins.module_utils
