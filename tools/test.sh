#!/usr/bin/env bash
# The whole test suite: emulator tests, sanity, units, integration against the
# emulator, ansible-lint, the README's examples, the changelog, and a build-and-install check.
# Usage: tools/test.sh [stage ...]   (stages: emulator sanity units integration lint docs changelog build)
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"

STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(emulator sanity units integration lint docs changelog build)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hzel-test.XXXXXX")
PASSED=0
FAILED=0
FAILED_STAGES=()
cleanup() { stop_emulator; rm -rf "$WORK"; }
trap cleanup EXIT

stage_emulator() {
    (cd "$ROOT/tests/emulator" && "$PY" -m pytest -q -n 2 -p no:cacheprovider tests)
}

stage_sanity() {
    ensure_pip_bootstrap
    (cd "$COLLECTION" && ansible-test sanity --venv --python 3.11 --color no)
}

stage_units() {
    ensure_pip_bootstrap
    (cd "$COLLECTION" && ansible-test units --venv --python 3.11 --color no --requirements)
}

stage_integration() {
    start_emulator "$WORK/emulator" --provision-seconds 0.6
    cat > "$COLLECTION/tests/integration/integration_config.yml" <<CONFIG
---
hzel_api_url: $EMULATOR_URL
hzel_api_token: hzel-demo-token
hzel_other_token: hzel-bob-token
hzel_admin_token: hzel-admin-token
CONFIG
    local status=0
    (cd "$COLLECTION" && ansible-test integration --local --python 3.11 --color no) || status=$?
    stop_emulator
    return $status
}

stage_lint() {
    (cd "$ROOT" && ansible-lint --profile production --nocolor)
}

stage_docs() {
    "$PY" "$ROOT/tools/check_docs.py"
}

stage_changelog() {
    (cd "$ROOT" && antsibull-changelog lint)
}

stage_build() {
    local out=$WORK/build
    mkdir -p "$out/collections"
    (cd "$ROOT" && ansible-galaxy collection build --force --output-path "$out" >/dev/null)
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-galaxy collection install --force -p "$out/collections" "$out"/hzel-cloud-*.tar.gz >/dev/null
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t module hzel.cloud.hzel_container >/dev/null
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t inventory hzel.cloud.hzel >/dev/null
    # The installed copy works on its own: a playbook of it converges a container.
    start_emulator "$WORK/build-emulator" --provision-seconds 0.2
    ANSIBLE_COLLECTIONS_PATH=$out/collections HZEL_API_URL=$EMULATOR_URL HZEL_API_TOKEN=hzel-demo-token \
        ansible-playbook hzel.cloud.provision -e '{"hzel_fleet_containers": [{"hostname": "installed-1"}]}' \
        > "$out/provision.out"
    stop_emulator
    grep -Eq "^localhost +: ok=[0-9]+ +changed=1 .*failed=0" "$out/provision.out" || { cat "$out/provision.out"; return 1; }
    if tar -tzf "$out"/hzel-cloud-*.tar.gz | grep -E '^(\.venv|tools|\.ci)/'; then
        echo "development files leaked into the built collection" >&2
        return 1
    fi
    # What ansible-builder reads from the installed collection for an execution environment
    ansible-builder introspect --sanitize "$out/collections" > "$out/introspect.txt"
    grep -q "requests>=2.25.0.*# from collection hzel.cloud" "$out/introspect.txt" || { cat "$out/introspect.txt"; return 1; }
    # The collection's own definition as 'ansible-builder create' reads it. Its paths are relative to
    # the collection root (where introspection resolves them), so it is read from there.
    local installed=$out/collections/ansible_collections/hzel/cloud
    mkdir -p "$out/ee-own"
    cp "$installed/meta/execution-environment.yml" "$installed/requirements.txt" "$installed/bindep.txt" "$out/ee-own/"
    ansible-builder create -f "$out/ee-own/execution-environment.yml" -c "$out/ee-own/context" >/dev/null
    grep -q "^requests" "$out/ee-own/context/_build/requirements.txt"
    cat > "$out/execution-environment.yml" <<EE
---
version: 3
images:
  base_image:
    name: quay.io/ansible/awx-ee:latest
dependencies:
  galaxy:
    collections:
      - name: hzel.cloud
EE
    ansible-builder create -f "$out/execution-environment.yml" -c "$out/context" --output-filename Containerfile >/dev/null
    grep -q "ansible-galaxy collection install" "$out/context/Containerfile"
    grep -q "hzel.cloud" "$out/context/_build/requirements.yml"
    echo "built and installed $(basename "$out"/hzel-cloud-*.tar.gz); ansible-doc reads it; ansible-builder finds its requirements"
}

ensure_venv
ensure_collection_path
for stage in "${STAGES[@]}"; do
    log "stage: $stage"
    # A subshell outside any condition, so that 'set -e' holds inside the stage.
    set +e
    (set -e; trap stop_emulator EXIT; "stage_$stage")
    status=$?
    set -e
    if [ "$status" -eq 0 ]; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
        FAILED_STAGES+=("$stage")
    fi
done

log "summary"
[ ${#FAILED_STAGES[@]} -eq 0 ] || echo "failed stages: ${FAILED_STAGES[*]}"
echo "stages: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
