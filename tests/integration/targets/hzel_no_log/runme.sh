#!/usr/bin/env bash
# The token never appears in output, at any verbosity, whether it works or is refused.
# hzel_api_url comes from the integration_config.yml that the test runner writes.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
good=hzel-admin-token
bad=refused-token-0123456789
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for token in "$good" "$bad"; do
    # The token reaches the play through the process environment, as AWX injects a credential:
    # -vvvv echoes command-line extra vars and the values of the 'environment:' keyword.
    HZEL_API_TOKEN=$token ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -vvvv -i localhost, -c local playbook.yml \
        -e "@$config" >"$out" 2>&1 || true
    grep -q "hzel_container" "$out"
    if [ "$token" = "$good" ]; then
        grep -q "ok=2 .*failed=0" "$out"
    fi
    if grep -q -- "$token" "$out"; then
        echo "the token was printed:" >&2
        grep -n -- "$token" "$out" >&2
        exit 1
    fi
done
# the refused run failed with the authentication message, not a traceback
grep -q "Authentication with the hzel API failed" "$out"
! grep -q "Traceback" "$out"
