#!/usr/bin/env bash
# Benchmarks that print figures: the modules (requests of an unchanged run, a loop
# against ansible.builtin.uri), the inventory plugin with 10,000 containers, the fleet module, the event
# source, hosts reached over SSH, the transport (CPU, 429s, api_rate_limit, the API's budget headers) and a
# play limited to one host of 10,000 (against a static YAML and a script inventory, on two cores), and the
# autoscaling loop on the real ansible-rulebook (needs Java 17).
# Usage: tools/bench.sh [modules] [inventory] [fleet] [events] [connect] [transport] [playbook] [autoscale]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(modules inventory fleet events connect transport playbook autoscale)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hzel-bench.XXXXXX")
trap 'stop_emulator; rm -rf "$WORK"' EXIT
ensure_venv
ensure_collection_path
start_emulator "$WORK/emulator" --provision-seconds 0.2
for bench in "${BENCHES[@]}"; do
    log "benchmark: $bench"
    if [ "$bench" = autoscale ]; then
        ensure_tool_venv eda "$ROOT/tests/requirements-eda.txt"
        export HZEL_EDA_VENV=$TOOL_VENV
        JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
        export JAVA_HOME
    fi
    "$PY" "$ROOT/tests/benchmarks/bench_$bench.py"
done
