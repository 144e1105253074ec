#!/usr/bin/env bash
# The token never appears in output, at any verbosity, whether it works or is refused.
# hzel_api_url comes from the integration_config.yml that the test runner writes.
set -eu
config=../../integration_config.yml
[ -f "$config" ] || { echo "missing $config (hzel_api_url)" >&2; exit 1; }
url=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["hzel_api_url"])' "$config")
good=hzel-admin-token
bad=refused-token-0123456789
out=$(mktemp)
source_file=$(mktemp --suffix=.hzel.yml)
trap 'rm -f "$out" "$source_file"' EXIT

# refuse_in_output TEXT WHAT: fail when TEXT appears in $out, or when a traceback does
refuse_in_output() {
    if grep -q -- "$1" "$out"; then
        echo "$2 was printed:" >&2
        grep -n -- "$1" "$out" >&2
        exit 1
    fi
}

for token in "$good" "$bad"; do
    # The token reaches the play through the process environment, as AWX injects a credential:
    # -vvvv echoes command-line extra vars and the values of the 'environment:' keyword.
    HZEL_API_TOKEN=$token ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -vvvv -i localhost, -c local playbook.yml \
        -e "@$config" >"$out" 2>&1 || true

    # The inventory plugin, with the token inline in its source and from the environment.
    printf 'plugin: hzel.cloud.hzel\napi_url: %s\napi_token: %s\n' "$url" "$token" > "$source_file"
    ansible-inventory -vvvv -i "$source_file" --list >>"$out" 2>&1 || true
    printf 'plugin: hzel.cloud.hzel\napi_url: %s\n' "$url" > "$source_file"
    HZEL_API_TOKEN=$token ansible-inventory -vvvv -i "$source_file" --list >>"$out" 2>&1 || true

    grep -q "hzel_container" "$out"
    # Older ansible-core wraps warnings at 80 columns and words task failures differently: compare
    # with the line breaks folded, and on the message itself.
    folded=$(tr -s ' \n' ' ' < "$out")
    if [ "$token" = "$good" ]; then
        grep -q "ok=2 .*failed=0" "$out"
    else
        grep -Eq '"msg": "Authentication with the hzel API failed|Module failed: Authentication with the hzel API failed' "$out"
        grep -q "hzel inventory: Authentication with the hzel API failed" <<<"$folded"
    fi
    refuse_in_output "$token" "the token"
    refuse_in_output "Traceback" "a traceback"
done
