#!/usr/bin/env bash
# ansible-inventory through the hzel plugin against the emulator.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
export ANSIBLE_INVENTORY_CACHE_CONNECTION
ANSIBLE_INVENTORY_CACHE_CONNECTION=$(mktemp -d)
trap 'rm -rf "$ANSIBLE_INVENTORY_CACHE_CONNECTION"' EXIT
ansible-playbook check_inventory.yml -e "@$config" "$@"
ansible-playbook check_hosts.yml -e "@$config" "$@"
