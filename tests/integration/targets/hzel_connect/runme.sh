#!/usr/bin/env bash
# Containers as hosts that Ansible reaches over real SSH (the emulator's gateway), with the
# inventory's connection options: provision -> refresh -> wait_for_connection -> configure.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
setting() { python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]])' "$config" "$1"; }
HZEL_API_URL=$(setting hzel_api_url)
HZEL_SSH_PORT=$(setting hzel_ssh_port)
HZEL_SSH_DIR=$(setting hzel_ssh_dir)
export HZEL_API_URL HZEL_API_TOKEN=hzel-demo-token
# The gateway's port and key, as Ansible's own settings (examples/connect.hzel.yml).
export ANSIBLE_REMOTE_PORT=$HZEL_SSH_PORT ANSIBLE_PRIVATE_KEY_FILE=$HZEL_SSH_DIR/id_ed25519
export ANSIBLE_SSH_COMMON_ARGS="-o IdentitiesOnly=yes -o UserKnownHostsFile=$HZEL_SSH_DIR/known_hosts"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
examples=${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/hzel/cloud/examples

fleet() { python ../hzel_fleet/fleet_state.py; }  # hostname=state of every container
expect() {
    if [ "$1" != "$2" ]; then
        printf 'expected: %s\n     got: %s\n' "$2" "$1" >&2
        exit 1
    fi
}
# recap_of FILE HOST: that host's line of the play recap
recap_of() { grep -E "^$2 +:" "$1" || { echo "no recap line for $2 in $1" >&2; cat "$1" >&2; exit 1; }; }
over_ssh() {  # over_ssh HOST COMMAND: the real OpenSSH client, as a user would
    ssh -i "$HZEL_SSH_DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o UserKnownHostsFile="$HZEL_SSH_DIR/known_hosts" -p "$HZEL_SSH_PORT" "$1@127.0.0.1" "$2"
}

python -c 'import os, urllib.request; urllib.request.urlopen(urllib.request.Request(os.environ["HZEL_API_URL"] + "/_emulator/reset", method="POST"))'

echo "== provision and configure in one run: the role waits for the new containers"
ansible-playbook -i "$examples/connect.hzel.yml" "$examples/site.yml" -e "@$examples/fleet.yml" >"$work/site.out"
expect "$(fleet)" "batch-1=stopped db-1=running web-1=running web-2=running"
grep -q "TASK \[hzel.cloud.hzel_fleet : Wait until each accepts connections\]" "$work/site.out"
for host in db-1 web-1 web-2; do
    recap_of "$work/site.out" "$host" | grep -Eq "changed=1 .*unreachable=0 +failed=0"
    expect "$(over_ssh "$host" 'head -n 1 hzel-profile.txt')" "$host: $(
        python -c 'import sys; print({"db-1": "4 CPU core(s), 4096 MiB memory, 32 GiB disk"}.get(sys.argv[1], "2 CPU core(s), 1024 MiB memory, 18 GiB disk"))' "$host")"
done
if grep -Eq "^batch-1 +:" "$work/site.out"; then echo "the stopped container was configured" >&2; exit 1; fi

echo "== the same again: nothing to change, inside or outside"
ansible-playbook -i "$examples/connect.hzel.yml" "$examples/site.yml" -e "@$examples/fleet.yml" >"$work/again.out"
for host in localhost db-1 web-1 web-2; do
    recap_of "$work/again.out" "$host" | grep -Eq "changed=0 .*unreachable=0 +failed=0"
done

echo "== command, copy and slurp inside each running container"
ansible-playbook -i "$examples/connect.hzel.yml" inside.yml >"$work/inside.out"
for host in db-1 web-1 web-2; do
    recap_of "$work/inside.out" "$host" | grep -Eq "changed=1 .*unreachable=0 +failed=0"
done
expect "$(over_ssh web-2 'cat copied.txt')" "copied to web-2"

echo "== ansible ad hoc over the gateway"
ansible -i "$examples/connect.hzel.yml" web -m ansible.builtin.ping -o >"$work/ping.out"
expect "$(grep -c 'SUCCESS' "$work/ping.out")" "2"

echo "== a stopped container is unreachable, and reachable again once started"
ansible-playbook -i every.hzel.yml hzel.cloud.power -e hzel_power_hosts=web-2 -e hzel_power_action=stop >"$work/stop.out"
expect "$(fleet)" "batch-1=stopped db-1=running web-1=running web-2=stopped"
status=0
ansible -i every.hzel.yml web-2 -m ansible.builtin.ping -o >"$work/unreachable.out" 2>&1 || status=$?
expect "$status" "4"
grep -q "UNREACHABLE" "$work/unreachable.out"
# Its files are kept across the stop: a started container has its home back.
ansible-playbook -i "$examples/connect.hzel.yml" "$examples/site.yml" \
    -e "@$examples/fleet.yml" >"$work/restart.out"
expect "$(fleet)" "batch-1=stopped db-1=running web-1=running web-2=running"
recap_of "$work/restart.out" web-2 | grep -Eq "changed=0 .*unreachable=0 +failed=0"
expect "$(over_ssh web-2 'cat copied.txt')" "copied to web-2"

echo "== the export AWX stores: plain values and the connection variables"
ansible-inventory -i "$examples/connect.hzel.yml" --list --export >"$work/export.json"
python - "$work/export.json" <<'PY'
import json, sys
hostvars = json.load(open(sys.argv[1]))["_meta"]["hostvars"]
assert sorted(hostvars) == ["db-1", "web-1", "web-2"], sorted(hostvars)
for name, variables in hostvars.items():
    assert variables["hzel_hostname"] == name, variables
    assert variables["hzel_state"] == "running", variables
    assert isinstance(variables["hzel_cpu_cores"], int), variables
    assert variables["ansible_host"] == "127.0.0.1", variables
    assert variables["ansible_user"] == name, variables
    assert variables["ansible_connection"] == "ssh", variables
    for key, value in variables.items():
        assert not isinstance(value, dict), (name, key, value)
print("export: %d hosts with plain values" % len(hostvars))
PY
echo "hzel_connect: all checks passed"
