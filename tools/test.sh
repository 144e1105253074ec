#!/usr/bin/env bash
# The whole test suite. On every ansible-core of the matrix (common.sh: CORES): sanity (every
# target Python found here for compile and import), units, and integration against the emulator
# (every target on the lowest, the development and the newest core; the README's playbooks, the
# role, the hosts over SSH and the no-token check on the others); the built tarball installed by each
# core's own ansible-galaxy (installable). On the development core: the emulator's tests, style (ruff, mypy, pre-commit),
# ansible-lint, the README's examples, the changelog, the collection docs and docsite, a built and
# installed tarball, and a release in a scratch copy; the event source and rulebooks on the real
# ansible-rulebook (eda).
#
# Usage: tools/test.sh [stage[@core] ...]     (no argument: everything)
#   matrix stages: sanity units installable integration  (on every core, or only @core)
#   other stages:  emulator style lint docs changelog collection-docs build release eda ee
# One line per stage as it ends (a failing stage also prints the end of its log); each log stays in
# tests/output/suite/ (HZEL_TEST_LOGS moves them); a table of stage x core closes the run. HZEL_TEST_JOBS sets how many jobs
# run at once (default 2); HZEL_INTEGRATION_TARGETS (names, space-separated) runs only those integration targets.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"

MATRIX_STAGES=(sanity units installable integration)
OTHER_STAGES=(emulator style lint docs changelog collection-docs build release eda examples ee)
FULL_INTEGRATION=("${CORES[0]%%/*}" "$DEV_CORE" "${CORES[${#CORES[@]}-1]%%/*}")
JOBS=${HZEL_TEST_JOBS:-2}
LOGS=${HZEL_TEST_LOGS:-$ROOT/tests/output/suite}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hzel-test.XXXXXX")
RESULTS=$WORK/results
# ansible-test builds its virtualenvs under ~/.ansible/test: one builder at a time.
VENV_LOCK=$WORK/ansible-test-venvs.lock
cleanup() { stop_emulator; rm -rf "$WORK"; }
trap cleanup EXIT

# --- stages on one core: CORE, CORE_PYTHON, CORE_VENV and COLLECTION are set --------------------
stage_sanity() {
    ensure_pip_bootstrap "$CORE_VENV/bin/python"
    ensure_index_requirements "$CORE_VENV/bin/python"
    (cd "$COLLECTION" && PATH="$CORE_VENV/bin:$(target_python_path)$PATH" \
        flock "$VENV_LOCK" ansible-test sanity --venv --color no)
}

stage_units() {
    ensure_pip_bootstrap "$CORE_VENV/bin/python"
    (cd "$COLLECTION" && flock "$VENV_LOCK" ansible-test units --venv --python "$CORE_PYTHON" --color no --requirements)
}

stage_installable() {
    # The tarball built by this core's ansible-galaxy and installed by it, with no override of its
    # requires_ansible check: a core that refuses the collection (as 2.21 and later do for a core outside
    # meta/runtime.yml's range) fails here.
    local out=$JOB_WORK/installable
    rm -rf "$out"
    mkdir -p "$out/collections"
    (cd "$COLLECTION" && ansible-galaxy collection build --force --output-path "$out" >/dev/null)
    env -u ANSIBLE_COLLECTIONS_ON_ANSIBLE_VERSION_MISMATCH ANSIBLE_COLLECTIONS_PATH="$out/collections" \
        ansible-galaxy collection install -p "$out/collections" "$out"/hzel-cloud-*.tar.gz >"$out/install.out" 2>&1 \
        || { cat "$out/install.out"; return 1; }
    cat "$out/install.out"
    [ -f "$out/collections/ansible_collections/hzel/cloud/MANIFEST.json" ] || { echo "nothing was installed" >&2; return 1; }
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t module hzel.cloud.hzel_containers >/dev/null
    ansible-galaxy --version >"$out/version.out"
    echo "$(head -n 1 "$out/version.out" | tr -d '[]'): installed $(basename "$out"/hzel-cloud-*.tar.gz) without any override"
}

stage_integration() {
    local targets=()
    # shellcheck disable=SC2076
    if [[ ! " ${FULL_INTEGRATION[*]} " =~ " $CORE " ]]; then
        # the README's playbooks, the role, the hosts over SSH, and no token in any output at -vvvv
        targets=(hzel_fleet hzel_connect hzel_no_log)
    fi
    if [ -n "${HZEL_INTEGRATION_TARGETS:-}" ]; then
        read -r -a targets <<<"$HZEL_INTEGRATION_TARGETS"
    fi
    # hzel_budget's API: a request budget it does not tell (a spent one shows only as 429).
    start_emulator "$JOB_WORK/budget-emulator" --provision-seconds 0.2 --budget 30/10s --budget-quiet
    local budget_url=$EMULATOR_URL budget_pid=$EMULATOR_PID
    start_emulator "$JOB_WORK/emulator" --provision-seconds 0.6
    cat > "$COLLECTION/tests/integration/integration_config.yml" <<CONFIG
---
hzel_api_url: $EMULATOR_URL
hzel_api_token: hzel-demo-token
hzel_other_token: hzel-bob-token
hzel_admin_token: hzel-admin-token
hzel_ssh_port: $EMULATOR_SSH_PORT
hzel_ssh_dir: $EMULATOR_SSH_DIR
hzel_budget_api_url: $budget_url
CONFIG
    local status=0
    (cd "$COLLECTION" && ansible-test integration --local --python "$CORE_PYTHON" --color no ${targets[@]+"${targets[@]}"}) \
        || status=$?
    stop_emulator
    kill "$budget_pid" 2>/dev/null || true
    wait "$budget_pid" 2>/dev/null || true
    return $status
}

# --- stages on the development core ---------------------------------------------------------------
stage_emulator() {
    (cd "$ROOT/tests/emulator" && "$PY" -m pytest -q -n 2 -p no:cacheprovider tests)
}

stage_style() {
    (cd "$ROOT" && ruff check . && ruff format --check . && pre-commit validate-config .pre-commit-config.yaml)
    HZEL_MYPY_DIR=$JOB_WORK/mypy "$ROOT/tools/mypy.sh"
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

stage_collection-docs() {
    (cd "$COLLECTION" && antsibull-docs lint-collection-docs --plugin-docs .)
    # The pages of the event source, rulebooks and playbooks (which ansible-doc does not read) match their files.
    "$PY" "$ROOT/tests/eda/docs_pages.py" --check
    "$ROOT/tools/docs_site.sh" "$JOB_WORK/site"
    local page
    for page in hzel_container_module hzel_containers_module hzel_container_info_module hzel_inventory hzel_fleet_role \
        usage_filter to_fleet_filter docsite/connecting docsite/event_driven_ansible docsite/hzel_events_source \
        docsite/eda_rulebooks docsite/playbooks docsite/autoscaling; do
        grep -q "hzel.cloud" "$JOB_WORK/site/build/html/collections/hzel/cloud/$page.html"
    done
    echo "docsite built: $(find "$JOB_WORK/site/build/html" -name '*.html' | wc -l) pages"
}

stage_release() {
    # A release in a scratch copy: version bumped in one place and read everywhere, changelog
    # written from the fragments, tarball built.
    local copy=$JOB_WORK/release-copy name
    mkdir -p "$copy"
    # The working tree as git sees it (tracked and new files, not ignored ones).
    (cd "$ROOT" && git ls-files -z -c -o --exclude-standard) | while IFS= read -r -d '' name; do
        [ -f "$ROOT/$name" ] && (cd "$ROOT" && cp --parents -t "$copy" "$name")
    done
    (cd "$copy" && HZEL_VENV=$VENV make release VERSION=9.8.7 >"$JOB_WORK/release.out")
    grep -q "^version: 9.8.7$" "$copy/galaxy.yml"
    grep -q 'COLLECTION_VERSION = "9.8.7"' "$copy/plugins/module_utils/_transport.py"
    grep -q "v9.8.7" "$copy/CHANGELOG.rst"
    grep -q "9.8.7" "$copy/changelogs/changelog.yaml"
    [ -z "$(find "$copy/changelogs/fragments" -name '*.yml')" ]
    [ -f "$copy/dist/hzel-cloud-9.8.7.tar.gz" ]
    echo "release 9.8.7 in a scratch copy: version, changelog and tarball"
}

# version_at_least_1: galaxy.yml's version is 1.0.0 or later (what Automation Hub requires of certified content).
version_at_least_1() { ! grep -Eq '^version: 0\.' "$ROOT/galaxy.yml"; }

stage_build() {
    local out=$JOB_WORK/build
    mkdir -p "$out/collections"
    (cd "$ROOT" && ansible-galaxy collection build --force --output-path "$out" >/dev/null)
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-galaxy collection install --force -p "$out/collections" "$out"/hzel-cloud-*.tar.gz >/dev/null
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t module hzel.cloud.hzel_containers >/dev/null
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t inventory hzel.cloud.hzel >/dev/null
    # The installed copy works on its own: a playbook of it converges a container.
    start_emulator "$JOB_WORK/build-emulator" --provision-seconds 0.2
    ANSIBLE_COLLECTIONS_PATH=$out/collections HZEL_API_URL=$EMULATOR_URL HZEL_API_TOKEN=hzel-demo-token \
        ansible-playbook hzel.cloud.provision -e '{"hzel_fleet_containers": [{"hostname": "installed-1"}]}' \
        > "$out/provision.out"
    stop_emulator
    grep -Eq "^localhost +: ok=[0-9]+ +changed=1 .*failed=0" "$out/provision.out" || { cat "$out/provision.out"; return 1; }
    if tar -tzf "$out"/hzel-cloud-*.tar.gz | grep -E '^(\.venv|tools|\.ci|dist)/'; then
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
    # The example decision environment, as the installed collection ships it.
    ansible-builder create -f "$installed/meta/decision-environment.yml" -c "$out/de-context" \
        --output-filename Containerfile >/dev/null
    grep -q "hzel.cloud" "$out/de-context/_build/requirements.yml"
    grep -q "^ansible-rulebook" "$out/de-context/_build/requirements.txt"
    grep -q "^java-17-openjdk" "$out/de-context/_build/bindep.txt"
    # The importer that Galaxy and Automation Hub run on an upload, with its ansible-lint step (its
    # ansible-test step needs a container engine; the sanity stages run that). Clean means no line of
    # its output is a warning or an error. It runs with an empty home, as on Galaxy: a hzel.cloud installed
    # under ~/.ansible/collections would let ansible-lint find what the uploaded tarball alone does not.
    ensure_tool_venv importer "$ROOT/tests/requirements-importer.txt"
    mkdir -p "$out/importer-home"
    (cd "$out" && HOME=$out/importer-home PATH="$TOOL_VENV/bin:$PATH" \
        GALAXY_IMPORTER_REQUIRE_V1_OR_GREATER="$(version_at_least_1 && echo true || echo false)" \
        "$TOOL_VENV/bin/python" -m galaxy_importer.main "$(basename "$out"/hzel-cloud-*.tar.gz)") >"$out/importer.out" 2>&1 \
        || { cat "$out/importer.out"; return 1; }
    grep -q "^Importer processing completed successfully" "$out/importer.out" || { cat "$out/importer.out"; return 1; }
    if grep -E "(WARNING|ERROR|CRITICAL)|[Ww]arning:|[Ee]rror:" "$out/importer.out"; then
        echo "galaxy-importer is not clean" >&2
        return 1
    fi
    echo "built and installed $(basename "$out"/hzel-cloud-*.tar.gz); ansible-doc reads it; ansible-builder finds its requirements; galaxy-importer accepts it"
}

# --- the eda stage: ansible-rulebook (pinned, in a virtualenv of its own) with a Java 17 JDK -------
# eda_java: prints the JAVA_HOME of a Java 17 or newer, or fails with how to install one.
eda_java() {
    local java=${JAVA_HOME:+$JAVA_HOME/bin/java} version
    local hint="install a Java 17 JDK (Debian, Ubuntu: apt-get install openjdk-17-jdk-headless; Fedora, RHEL: dnf install java-17-openjdk-headless) and put its java on PATH or set JAVA_HOME"
    if [ -z "$java" ] || [ ! -x "$java" ]; then
        java=$(command -v java 2>/dev/null || true)
    fi
    if [ -z "$java" ]; then
        echo "ansible-rulebook needs Java 17 and no java was found (JAVA_HOME unset or without bin/java, none on PATH): $hint" >&2
        return 1
    fi
    version=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
    if [ -z "$version" ] || [ "$version" -lt 17 ]; then
        echo "ansible-rulebook needs Java 17 or newer; $java is version ${version:-unknown}: $hint" >&2
        return 1
    fi
    dirname "$(dirname "$(readlink -f "$java")")"
}

stage_eda() {
    local status=0
    JAVA_HOME=$(eda_java) || return 1
    export JAVA_HOME
    ensure_tool_venv eda "$ROOT/tests/requirements-eda.txt"
    "$TOOL_VENV/bin/ansible-rulebook" --version | head -n 1
    start_emulator "$JOB_WORK/eda-emulator" --provision-seconds 0.5
    "$PY" "$ROOT/tests/eda/run_eda.py" --venv "$TOOL_VENV" --emulator "$EMULATOR_URL" \
        --collections "$COLLECTIONS_DIR" --work "$JOB_WORK/eda" || status=$?
    stop_emulator
    return $status
}

# --- the examples stage: every example a reader can copy (tools/run_examples.py), on the newest core -------------
stage_examples() {
    # All of them on the newest core; the plugins' EXAMPLES (the cheap ones) again on the oldest, on the same emulator.
    local newest=${CORES[${#CORES[@]}-1]} oldest=${CORES[0]} status=0 run
    JAVA_HOME=$(eda_java) || return 1
    export JAVA_HOME
    ensure_tool_venv eda "$ROOT/tests/requirements-eda.txt"
    start_emulator "$JOB_WORK/examples-emulator" --provision-seconds 0.2
    for run in "$newest" "$oldest plugins/modules plugins/filter plugins/inventory"; do
        read -r -a run <<<"$run"
        ensure_core_venv "${run[0]%%/*}" "${run[0]#*/}"
        "$PY" "$ROOT/tools/run_examples.py" --emulator "$EMULATOR_URL" --work "$JOB_WORK/examples-${run[0]%%/*}" \
            --core-bin "$CORE_VENV/bin" --eda-bin "$TOOL_VENV/bin" --ssh-port "$EMULATOR_SSH_PORT" \
            --ssh-key "$EMULATOR_SSH_KEY" --ssh-known-hosts "$EMULATOR_SSH_KNOWN_HOSTS" \
            ${run[1]+--only "${run[@]:1}"} || status=$?
    done
    stop_emulator
    return $status
}

# --- the ee stage: the collection inside execution and decision environment images (podman) ------
stage_ee() {
    "$ROOT/tools/ee.sh" "$JOB_WORK/ee"
}

# --- running ------------------------------------------------------------------------------------
# run_stage NAME CORE: runs stage_NAME with its output in its log; one line when it ends.
run_stage() {
    local name=$1 core=$2 label log started status seconds
    label=$name@$core
    log=$LOGS/$label.log
    started=$(date +%s)
    set +e
    (set -e; trap stop_emulator EXIT; "stage_$name") >"$log" 2>&1 </dev/null
    status=$?
    set -e
    seconds=$(($(date +%s) - started))
    if [ "$status" -eq 0 ]; then
        printf 'PASS  %-24s %4ds\n' "$label" "$seconds"
        echo "$name|$core|pass|$seconds" >> "$RESULTS"
    else
        printf 'FAIL  %-24s %4ds  (log: %s; its end follows)\n' "$label" "$seconds" "${log#"$ROOT"/}"
        tail -n 60 "$log" | sed 's/^/      | /'
        echo "$name|$core|FAIL|$seconds" >> "$RESULTS"
    fi
}

# run_job JOB CORE STAGE...: stages in order, on one core, in a collection copy of the job's own.
# The job 'dev' runs on the development virtualenv.
run_job() {
    local job=$1 core=$2 entry
    shift 2
    JOB_WORK=$WORK/job-$job
    mkdir -p "$JOB_WORK"
    HZEL_COLLECTIONS_DIR=$JOB_WORK/collections ensure_collection_path >/dev/null
    if [ "$job" = dev ]; then
        CORE_VENV=$VENV
    else
        for entry in "${CORES[@]}"; do
            [ "${entry%%/*}" = "$core" ] && CORE_PYTHON=${entry#*/}
        done
        if ! ensure_core_venv "$core" "$CORE_PYTHON" >"$LOGS/venv@$core.log" 2>&1; then
            local stage
            for stage in "$@"; do
                printf 'FAIL  %-24s    -  (no virtualenv for ansible-core %s: %s)\n' "$stage@$core" "$core" "$(tail -n 1 "$LOGS/venv@$core.log")"
                echo "$stage|$core|FAIL|0" >> "$RESULTS"
            done
            return 0
        fi
        export PATH="$CORE_VENV/bin:$PATH"
    fi
    export CORE=$core CORE_PYTHON CORE_VENV JOB_WORK
    for stage in "$@"; do
        run_stage "$stage" "$core"
    done
}

declare -A CORE_STAGES=()
OTHER=()
add() {  # add STAGE CORE
    if [ "$2" = other ]; then OTHER+=("$1"); else CORE_STAGES[$2]="${CORE_STAGES[$2]:-} $1"; fi
}
is_one_of() { local item=$1; shift; local each; for each in "$@"; do [ "$each" = "$item" ] && return 0; done; return 1; }

REQUESTED=("$@")
[ ${#REQUESTED[@]} -gt 0 ] || REQUESTED=("${MATRIX_STAGES[@]}" "${OTHER_STAGES[@]}")
for request in "${REQUESTED[@]}"; do
    stage=${request%@*}
    if is_one_of "$stage" "${MATRIX_STAGES[@]}"; then
        if [ "$request" != "$stage" ]; then
            add "$stage" "${request#*@}"
        else
            for entry in "${CORES[@]}"; do add "$stage" "${entry%%/*}"; done
        fi
    elif is_one_of "$stage" "${OTHER_STAGES[@]}"; then
        add "$stage" other
    else
        echo "unknown stage '$request'; the stages are: ${MATRIX_STAGES[*]} ${OTHER_STAGES[*]}" >&2
        exit 2
    fi
done

ensure_venv
rm -rf "$LOGS"
mkdir -p "$LOGS"
: > "$RESULTS"
log "ansible-core ${CORES[*]%%/*}; $JOBS jobs at once; logs in ${LOGS#"$ROOT"/}/"
running=0
start_job() {
    ( run_job "$@" ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
}
# The longest jobs first: the cores with every integration target.
for entry in "${CORES[@]}"; do
    core=${entry%%/*}
    if [ -n "${CORE_STAGES[$core]:-}" ] && is_one_of "$core" "${FULL_INTEGRATION[@]}"; then
        # shellcheck disable=SC2086
        start_job "$core" "$core" ${CORE_STAGES[$core]}
    fi
done
[ ${#OTHER[@]} -eq 0 ] || start_job dev "$DEV_CORE" "${OTHER[@]}"
for entry in "${CORES[@]}"; do
    core=${entry%%/*}
    if [ -n "${CORE_STAGES[$core]:-}" ] && ! is_one_of "$core" "${FULL_INTEGRATION[@]}"; then
        # shellcheck disable=SC2086
        start_job "$core" "$core" ${CORE_STAGES[$core]}
    fi
done
wait

log "summary: stage x ansible-core (result, seconds)"
"$PY" - "$RESULTS" "${CORES[@]%%/*}" <<'PY'
import sys
path, cores = sys.argv[1], sys.argv[2:]
rows = {}
for line in open(path, encoding="utf-8"):
    stage, core, result, seconds = line.strip().split("|")
    rows.setdefault(stage, {})[core] = "%s %ss" % (result, seconds)
order = ["sanity", "units", "installable", "integration", "emulator", "style", "lint", "docs", "changelog", "collection-docs",
         "build", "release", "eda", "examples", "ee"]
width = max([len(stage) for stage in rows] + [5]) + 2
print("stage".ljust(width) + "".join(core.ljust(12) for core in cores))
for stage in sorted(rows, key=lambda name: order.index(name) if name in order else len(order)):
    print(stage.ljust(width) + "".join(rows[stage].get(core, "-").ljust(12) for core in cores))
results = [row for stage in rows.values() for row in stage.values()]
passed = sum(1 for row in results if row.startswith("pass"))
print("stages: %d passed, %d failed" % (passed, len(results) - passed))
sys.exit(0 if passed == len(results) and results else 1)
PY
