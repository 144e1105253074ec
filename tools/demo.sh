#!/usr/bin/env bash
# The demo: a real run of the collection's playbooks against the local hzel API
# emulator. Provisions a fleet, shows that a second run changes nothing, lists the
# fleet through the inventory plugin, restarts the web group, prints the metrics.
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

log "ansible-playbook hzel.cloud.metrics_report"
ansible-playbook hzel.cloud.metrics_report
