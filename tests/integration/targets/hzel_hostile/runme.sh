#!/usr/bin/env bash
# Hostile replies, hostile names and racing runs, as an attacker or a careless user would bring them.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
HZEL_API_URL=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["hzel_api_url"])' "$config")
export HZEL_API_URL HZEL_API_TOKEN=hzel-demo-token
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1
work=$(mktemp -d)
marker=$work/pwned
trap 'python control.py DELETE /faults; rm -rf "$work"' EXIT

fail() { echo "FAILED: $*" >&2; exit 1; }
refuse_in() { if grep -q -- "$1" "$2"; then grep -n -- "$1" "$2" >&2; fail "$3"; fi; }

python control.py POST /reset

echo "== an API that echoes the request headers never gets the token into the output"
for content_type in application/json text/html; do
    python control.py PUT /faults "{\"faults\": [{\"kind\": \"echo_headers\", \"content_type\": \"$content_type\"}]}"
    ansible-playbook -i localhost, -c local module_call.yml -e "@$config" >"$work/echo.out" 2>&1 || true
    printf 'plugin: hzel.cloud.hzel\napi_retries: 0\n' > "$work/echo.hzel.yml"
    ansible-inventory -i "$work/echo.hzel.yml" --list >>"$work/echo.out" 2>&1 || true
    grep -q "HTTP 500" "$work/echo.out" || fail "the echoed error was not reported"
    grep -q "hzel inventory:" "$work/echo.out" || fail "the inventory did not report the error"
    refuse_in "$HZEL_API_TOKEN" "$work/echo.out" "the token (echoed by the API as $content_type)"
    refuse_in "Traceback" "$work/echo.out" "a traceback"
done
python control.py DELETE /faults

echo "== a token with a trailing newline is refused without being shown"
HZEL_API_TOKEN=$'hzel-demo-token\n' ansible-playbook -i localhost, -c local module_call.yml -e "@$config" \
    >"$work/newline.out" 2>&1 && fail "a token with a newline was used"
grep -q "api_token contains a line break" "$work/newline.out" || fail "no clear message for the newline"
refuse_in "hzel-demo-token" "$work/newline.out" "the token with a newline"

echo "== values from the API are never templated: module results and inventory variables"
python control.py POST /seed '{"owner": "alice", "count": 1, "prefix": "hostile-"}'
record=$(python control.py GET-API /containers | python -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["data"][0]))')
hostile=$(python -c 'import json, sys; r = json.loads(sys.argv[1]); r["created_at"] = "{{ lookup(\"pipe\", \"touch " + sys.argv[2] + "\") }}"; print(json.dumps({"data": [r]}))' "$record" "$marker")
python control.py PUT /faults "$(python -c 'import json, sys; print(json.dumps({"faults": [{"kind": "reply", "method": "GET", "path": "^/api/v1/containers$", "body": sys.argv[1]}]}))' "$hostile")"
ansible-playbook -i localhost, -c local untrusted.yml -e "@$config" >"$work/untrusted.out" 2>&1 || { cat "$work/untrusted.out"; fail "the play with API data failed"; }
printf 'plugin: hzel.cloud.hzel\n' > "$work/hostile.hzel.yml"
ansible-playbook -i "$work/hostile.hzel.yml" untrusted_inventory.yml >"$work/untrusted_inventory.out" 2>&1 \
    || { cat "$work/untrusted_inventory.out"; fail "the play over the inventory failed"; }
grep -q 'lookup(\\"pipe\\"' "$work/untrusted.out" || grep -q 'lookup("pipe"' "$work/untrusted.out" || fail "the value was not shown as text"
[ ! -e "$marker" ] || fail "a value from the API was templated and ran a command"
python control.py DELETE /faults

echo "== a container named localhost does not take over the admin's localhost"
python control.py POST /reset
python control.py POST-API /containers '{"hostname": "localhost"}' hzel-bob-token >/dev/null
python control.py POST-API /containers '{"hostname": "web-ok"}' hzel-bob-token >/dev/null
printf 'plugin: hzel.cloud.hzel\n' > "$work/admin.hzel.yml"
HZEL_API_TOKEN=hzel-admin-token ansible-inventory -i "$work/admin.hzel.yml" --list >"$work/admin.json" 2>"$work/admin.err"
# Older ansible-core wraps warnings at 80 columns: compare with the line breaks folded.
tr -s ' \n' ' ' < "$work/admin.err" | grep -q "skipped 1 container(s) with a hostname that is a name Ansible reserves" \
    || { cat "$work/admin.err"; fail "no warning for localhost"; }
python -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["hzel"]["hosts"] == ["web-ok"], d["hzel"]' "$work/admin.json"
HZEL_API_TOKEN=hzel-admin-token ansible-playbook -i "$work/admin.hzel.yml" local_play.yml >"$work/local.out" 2>&1 \
    || { cat "$work/local.out"; fail "a hosts: localhost play did not stay local"; }

echo "== an admin who sees two containers of one hostname: the module does not guess, the inventory does not merge"
python control.py POST /reset
python control.py PUT /settings '{"hostname_scope": "owner"}'
python control.py POST-API /containers '{"hostname": "twin"}' hzel-demo-token >/dev/null
python control.py POST-API /containers '{"hostname": "twin"}' hzel-bob-token >/dev/null
HZEL_API_TOKEN=hzel-admin-token ansible-playbook -i localhost, -c local twin.yml -e "@$config" >"$work/twin.out" 2>&1 \
    || { cat "$work/twin.out"; fail "the module acted on one of two containers of one hostname"; }
HZEL_API_TOKEN=hzel-admin-token ansible-inventory -i "$work/admin.hzel.yml" --list >"$work/twin.json" 2>"$work/twin.err"
tr -s ' \n' ' ' < "$work/twin.err" | grep -q "more than one visible container holds" || { cat "$work/twin.err"; fail "no warning for the twins"; }
python -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "twin" not in d["_meta"]["hostvars"], d' "$work/twin.json"

echo "== two runs converging the same hostnames at once both succeed, without a duplicate"
python control.py POST /reset
python control.py PUT /faults '{"faults": [{"kind": "latency", "seconds": 1.5, "method": "POST", "path": "^/api/v1/containers$"}]}'
ansible-playbook -i localhost, -c local race.yml -e "@$config" >"$work/race1.out" 2>&1 & first=$!
ansible-playbook -i localhost, -c local race.yml -e "@$config" >"$work/race2.out" 2>&1 & second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
[ "$status" = 0 ] || { cat "$work/race1.out" "$work/race2.out"; fail "a concurrent run failed"; }
python control.py GET-API /containers hzel-admin-token | python -c '
import json, sys
names = sorted(c["hostname"] for c in json.load(sys.stdin)["data"])
assert names == ["race-1", "race-2", "race-3"], names'
python control.py DELETE /faults

echo "== an API that trickles its reply is given up on at api_timeout"
python control.py PUT /faults '{"faults": [{"kind": "trickle", "seconds": 0.5, "method": "GET"}]}'
ansible-playbook -i localhost, -c local module_call.yml -e "@$config" -e api_timeout=1 -e api_retries=0 \
    >"$work/trickle.out" 2>&1 && fail "a trickled reply was accepted"
grep -q "no complete reply within 1s (api_timeout)" "$work/trickle.out" || { cat "$work/trickle.out"; fail "no deadline message"; }
echo "hzel_hostile: all checks passed"
