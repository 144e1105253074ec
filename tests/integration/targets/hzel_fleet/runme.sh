#!/usr/bin/env bash
# The hzel_fleet role and the collection playbooks, run by FQCN against the emulator.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
HZEL_API_URL=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["hzel_api_url"])' "$config")
export HZEL_API_URL HZEL_API_TOKEN=hzel-demo-token
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
work=$(mktemp -d)
# The collection's own examples, as the README shows them.
examples=${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/hzel/cloud/examples
trap 'rm -rf "$work"' EXIT

# hostname=state of every container the token sees, sorted
fleet() { python fleet_state.py; }
expect() {
    if [ "$1" != "$2" ]; then
        printf 'expected: %s\n     got: %s\n' "$2" "$1" >&2
        exit 1
    fi
}
recap() { grep -E '^localhost +:' "$1"; }

python -c 'import os, urllib.request; urllib.request.urlopen(urllib.request.Request(os.environ["HZEL_API_URL"] + "/_emulator/reset", method="POST"))'

echo "== a misspelt key fails before anything runs"
if ansible-playbook hzel.cloud.provision -e @typo.yml >"$work/typo.out" 2>&1; then
    echo "the typo was accepted" >&2; exit 1
fi
grep -q "cpu_core" "$work/typo.out"
grep -q "Validating arguments against arg spec" "$work/typo.out"
expect "$(fleet)" ""

echo "== a run without a fleet is an error; an empty fleet converges nothing, on purpose"
if ansible-playbook hzel.cloud.provision >"$work/nofleet.out" 2>&1; then
    echo "a run without a fleet succeeded" >&2; exit 1
fi
grep -q "No fleet given" "$work/nofleet.out"
ansible-playbook hzel.cloud.provision -e '{"hzel_fleet_containers": []}' >"$work/empty.out"
recap "$work/empty.out" | grep -q "changed=0 .*failed=0"
expect "$(fleet)" ""

echo "== check mode predicts, creates nothing"
ansible-playbook hzel.cloud.provision -e "@$examples/fleet.yml" --check >"$work/check.out"
recap "$work/check.out" | grep -q "changed=1"
expect "$(fleet)" ""

echo "== provision, then nothing to change"
ansible-playbook hzel.cloud.provision -e "@$examples/fleet.yml" >"$work/first.out"
recap "$work/first.out" | grep -q "changed=1 .*failed=0"
expect "$(fleet)" "batch-1=stopped db-1=running web-1=running web-2=running"
ansible-playbook hzel.cloud.provision -e "@$examples/fleet.yml" >"$work/second.out"
recap "$work/second.out" | grep -q "changed=0 .*failed=0"

echo "== power actions on an inventory selection"
ansible-playbook -i "$examples/fleet.hzel.yml" hzel.cloud.power -e hzel_power_hosts=web -e hzel_power_action=stop >"$work/stop.out"
expect "$(fleet)" "batch-1=stopped db-1=running web-1=stopped web-2=stopped"
ansible-playbook -i "$examples/fleet.hzel.yml" hzel.cloud.power -e hzel_power_hosts=state_stopped -e hzel_power_action=start >"$work/start.out"
expect "$(fleet)" "batch-1=running db-1=running web-1=running web-2=running"
ansible-playbook -i "$examples/fleet.hzel.yml" hzel.cloud.power -e hzel_power_hosts=large -e hzel_power_action=restart >"$work/restart.out"
grep -q "db-1 is running" "$work/restart.out"
if ansible-playbook -i "$examples/fleet.hzel.yml" hzel.cloud.power -e hzel_power_action=reboot >"$work/bad.out" 2>&1; then
    echo "an unknown action was accepted" >&2; exit 1
fi
grep -q "Set hzel_power_action to start, stop or restart" "$work/bad.out"

echo "== the metrics report, on screen and in a file"
ansible-playbook hzel.cloud.metrics_report -e "hzel_report_file=$work/report.txt" >"$work/report.out"
grep -q "HOSTNAME .*STATE .*CPU% .*MEMORY (MiB) .*DISK (GiB)" "$work/report.out"
grep -q "HOSTNAME .*STATE .*CPU% .*MEMORY (MiB) .*DISK (GiB)" "$work/report.txt"
grep -Eq "^db-1 +running +[0-9.]+ +[0-9]+/4096 " "$work/report.txt"
grep -q "^4 container(s), 4 running" "$work/report.txt"

echo "== the module examples"
printf -- '---\nhzel_api_url: %s\nhzel_api_token: %s\n' "$HZEL_API_URL" "$HZEL_API_TOKEN" > "$work/credentials.yml"
ansible-playbook "$examples/modules.yml" -e "@$work/credentials.yml" --diff >"$work/modules.out"
recap "$work/modules.out" | grep -q "changed=3 .*failed=0"
grep -q -- "-    \"state\": \"running\"" "$work/modules.out"
expect "$(fleet)" "batch-1=running batch-2=stopped batch-3=running db-1=running web-1=running web-2=running web-3=running"

echo "== the README's scale command: new members take the web tier's spec, and the module examples still converge"
ansible-playbook hzel.cloud.scale -e 'hzel_scale_pattern=web-{index}' -e hzel_scale_count=5 >"$work/scale.out"
recap "$work/scale.out" | grep -q "changed=1 .*failed=0"
python -c '
import json, os, urllib.request
request = urllib.request.Request(os.environ["HZEL_API_URL"] + "/api/v1/containers",
                                 headers={"Authorization": "Bearer " + os.environ["HZEL_API_TOKEN"]})
web = {c["hostname"]: (c["cpu_cores"], c["memory_mb"], c["disk_gb"])
       for c in json.load(urllib.request.urlopen(request))["data"] if c["hostname"].startswith("web-")}
assert set(web.values()) == {(2, 1024, 18)} and len(web) == 5, web
'
ansible-playbook "$examples/modules.yml" -e "@$work/credentials.yml" >"$work/modules-again.out"
recap "$work/modules-again.out" | grep -q "failed=0"
echo "hzel_fleet: all checks passed"
