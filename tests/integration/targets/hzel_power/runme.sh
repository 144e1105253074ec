#!/usr/bin/env bash
# The hzel.cloud.power playbook against the emulator: what it selects, what it refuses, what it reports.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
HZEL_API_URL=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["hzel_api_url"])' "$config")
export HZEL_API_URL HZEL_API_TOKEN=hzel-demo-token ANSIBLE_NOCOLOR=1
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# Ansible's default, which ansible-test turns into an error: a pattern that matches nothing is only a warning, and
# the playbook itself must fail.
export ANSIBLE_HOST_PATTERN_MISMATCH=warning
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# hostname=state of every container the token sees, sorted
fleet() {
    api GET /api/v1/containers \
        | python -c 'import json, sys; print(" ".join(sorted("%s=%s" % (c["hostname"], c["state"]) for c in json.load(sys.stdin))))'
}
expect() {
    if [ "$1" != "$2" ]; then
        printf 'expected: %s\n     got: %s\n' "$2" "$1" >&2
        exit 1
    fi
}
api() {
    python - "$@" <<'PY'
import json, os, sys, urllib.request
method, path = sys.argv[1:3]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = urllib.request.Request(os.environ["HZEL_API_URL"] + path, data=body, method=method)
request.add_header("Authorization", "Bearer " + os.environ["HZEL_API_TOKEN"])
request.add_header("Content-Type", "application/json")
with urllib.request.urlopen(request) as response:
    text = response.read()
if text:
    value = json.loads(text)
    print(json.dumps(value["data"] if path.startswith("/api/") else value))
PY
}
id_of() { api GET /api/v1/containers | python -c 'import json, sys; print([c["id"] for c in json.load(sys.stdin) if c["hostname"] == sys.argv[1]][0])' "$1"; }
# power ARGS...: hzel.cloud.power on the inventory plugin, output in $work/out
power() { ansible-playbook -i inventory.hzel.yml hzel.cloud.power "$@" >"$work/out" 2>&1; }
# must_fail MESSAGE ARGS...: the run fails, saying MESSAGE, and changes nothing
must_fail() {
    local message=$1 before
    shift
    before=$(fleet)
    if "$@"; then
        echo "accepted: $*" >&2; cat "$work/out" >&2; exit 1
    fi
    grep -qF -- "$message" "$work/out" || { echo "no '$message' in:" >&2; cat "$work/out" >&2; exit 1; }
    expect "$(fleet)" "$before"
}
restarts() { api GET /_emulator/stats | python -c 'import json, sys; print(json.load(sys.stdin)["by_request"].get("POST /api/v1/containers/%s/restart" % sys.argv[1], 0))' "$1"; }

api POST /_emulator/reset
api PUT /_emulator/settings '{"provision_seconds": 0}'
cat > inventory.hzel.yml <<'INVENTORY'
plugin: hzel.cloud.hzel
keyed_groups:
  - key: hzel_state
    prefix: state
groups:
  web: hzel_hostname.startswith('web-')
INVENTORY
trap 'rm -rf "$work" inventory.hzel.yml' EXIT
for name in web-1 web-2 db-1 fail-1; do api POST /api/v1/containers "{\"hostname\": \"$name\"}" >/dev/null; done
python - <<'PY'
import json, os, time, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    request = urllib.request.Request(os.environ["HZEL_API_URL"] + "/api/v1/containers")
    request.add_header("Authorization", "Bearer " + os.environ["HZEL_API_TOKEN"])
    states = [c["state"] for c in json.load(urllib.request.urlopen(request))["data"]]
    if "provisioning" not in states:
        break
    time.sleep(0.2)
PY
expect "$(fleet)" "db-1=running fail-1=failed web-1=running web-2=running"

echo "== a selection that matches nothing fails, naming it"
must_fail "The selection hzel_power_hosts=wbe matches no host" power -e hzel_power_action=stop -e hzel_power_hosts=wbe
echo "== no inventory fails, naming the default selection"
no_inventory() { ansible-playbook hzel.cloud.power "$@" >"$work/out" 2>&1; }
must_fail "The selection hzel (the default) matches no host" no_inventory -e hzel_power_action=stop
echo "== the API down (the inventory cannot be read) fails"
api_down() { HZEL_API_URL=http://127.0.0.1:9 HZEL_API_RETRIES=0 power "$@"; }
must_fail "The selection hzel (the default) matches no host" api_down -e hzel_power_action=stop

echo "== a failed container named in the selection is refused before any change"
must_fail "holds failed containers (fail-1)" power -e hzel_power_action=stop -e "hzel_power_hosts=web-1:fail-1"

echo "== the default selection leaves the failed container out, with a note"
power -e hzel_power_action=stop
grep -q "Left out, failed (the hzel API cannot stop a failed container): fail-1" "$work/out"
expect "$(fleet)" "db-1=stopped fail-1=failed web-1=stopped web-2=stopped"

echo "== check mode says what would change, and changes nothing"
power -e hzel_power_action=start -e hzel_power_hosts=web --check
grep -q '"web-1 would be started"' "$work/out"
grep -q '"web-2 would be started"' "$work/out"
if grep -E '"(web|db)-[0-9] is ' "$work/out"; then echo "check mode reported a change as done" >&2; exit 1; fi
expect "$(fleet)" "db-1=stopped fail-1=failed web-1=stopped web-2=stopped"

echo "== the report and the recap list every container of the selection"
power -e hzel_power_action=start -e hzel_power_hosts=web
grep -q '"web-1 is running (started)"' "$work/out"
grep -q '"web-2 is running (started)"' "$work/out"
grep -Eq '^web-1 +: ok=[0-9]+ +changed=1 ' "$work/out"
grep -Eq '^web-2 +: ok=[0-9]+ +changed=1 ' "$work/out"
expect "$(fleet)" "db-1=stopped fail-1=failed web-1=running web-2=running"
power -e hzel_power_action=restart -e hzel_power_hosts=web
grep -q '"web-1 is running (restarted)"' "$work/out"
grep -q '"web-2 is running (restarted)"' "$work/out"
power -e hzel_power_action=start -e hzel_power_hosts=web
grep -q '"web-2 is running (nothing to do)"' "$work/out"
grep -Eq '^web-2 +: ok=[0-9]+ +changed=0 ' "$work/out"

echo "== by id: exactly that container, whatever the inventory"
web1=$(id_of web-1)
web2=$(id_of web-2)
ansible-playbook hzel.cloud.power -e hzel_power_action=restart -e "hzel_power_id=$web1" >"$work/out" 2>&1 \
    || { cat "$work/out" >&2; exit 1; }
grep -q '"web-1 is running (restarted)"' "$work/out"
expect "$(restarts "$web1")" 2
expect "$(restarts "$web2")" 1
must_fail "hzel_power_id must be the id (a UUID) of one hzel container" \
    power -e hzel_power_action=restart -e hzel_power_id=web
must_fail "hzel_power_hosts must not be set with it" \
    power -e hzel_power_action=restart -e "hzel_power_id=$web1" -e hzel_power_hosts=web
echo "hzel_power: all checks passed"
