#!/usr/bin/env bash
# A job and an inventory update as AWX runs them: through ansible-runner, with the
# hzel credential type's injectors rendered into the environment.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
# the collection as ansible-test laid it out, for the files it ships outside tests/
collection=${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/hzel/cloud
python run_job.py "$config" "$collection/docs/awx/credential_type.yml"
