#!/usr/bin/env bash
# The demo: a real run of the collection's playbooks against the local hzel API
# emulator. Provisions a fleet, shows that a second run changes nothing, lists the
# fleet through the inventory plugin, restarts the web group, configures inside each running
# container over SSH (the emulator's gateway) twice, the second time without a change, and prints
# the metrics, and closes with what was done and what to try next.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hzel-demo.XXXXXX")
trap 'stop_emulator; rm -rf "$WORK"' EXIT

ensure_venv
ensure_collection_path
start_emulator "$WORK/emulator" --provision-seconds 1
export HZEL_API_URL=$EMULATOR_URL
export HZEL_API_TOKEN=hzel-demo-token
# examples/connect.hzel.yml reaches the containers through the emulator's SSH gateway: its port
# and key as Ansible's own settings.
export ANSIBLE_REMOTE_PORT=$EMULATOR_SSH_PORT ANSIBLE_PRIVATE_KEY_FILE=$EMULATOR_SSH_KEY
export ANSIBLE_SSH_COMMON_ARGS="-o IdentitiesOnly=yes -o UserKnownHostsFile=$EMULATOR_SSH_KNOWN_HOSTS"
cd "$ROOT"
log "hzel API emulator on $HZEL_API_URL (state in $WORK/emulator)"

log "ansible-playbook hzel.cloud.provision -e @examples/fleet.yml"
ansible-playbook hzel.cloud.provision -e @examples/fleet.yml

log "the same again: nothing to change"
ansible-playbook hzel.cloud.provision -e @examples/fleet.yml

log "ansible-inventory -i examples/fleet.hzel.yml --graph"
ansible-inventory -i examples/fleet.hzel.yml --graph

log "ansible-playbook -i examples/fleet.hzel.yml hzel.cloud.power -e hzel_power_hosts=web -e hzel_power_action=restart"
ansible-playbook -i examples/fleet.hzel.yml hzel.cloud.power -e hzel_power_hosts=web -e hzel_power_action=restart

log "ansible-playbook -i examples/connect.hzel.yml examples/configure.yml   (inside each running container, over SSH)"
ansible-playbook -i examples/connect.hzel.yml examples/configure.yml

log "the same again: nothing to change inside the containers"
ansible-playbook -i examples/connect.hzel.yml examples/configure.yml | tee "$WORK/configure-again.out"
if grep -E '^[a-z0-9-]+ +: ' "$WORK/configure-again.out" | grep -Ev 'changed=0 .*unreachable=0 +failed=0'; then
    echo "the second configure run changed something or failed" >&2
    exit 1
fi

log "ansible-playbook hzel.cloud.metrics_report"
ansible-playbook hzel.cloud.metrics_report

log "done: the fleet of examples/fleet.yml provisioned (a second run changed nothing), listed, its web group restarted, configured over SSH (a second run changed nothing) and its metrics printed, on the emulator at $HZEL_API_URL (stopped now). Next: 'make serve', then the README's commands from this clone (README.md, Install)."
