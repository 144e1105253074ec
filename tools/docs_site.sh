#!/usr/bin/env bash
# tools/docs_site.sh DIR: the collection's static HTML docsite (modules, inventory plugin, role), as
# antsibull-docs lays it out for Galaxy and docs.ansible.com, built into DIR/build/html.
# Links into ansible-core's documentation resolve through a small local inventory of the targets
# the pages use (tools/ansible_objects.py), so the build needs no network and stays warning-free.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
dest=${1:?usage: tools/docs_site.sh DIR}
ensure_venv
ensure_collection_path >/dev/null
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
rm -rf "$dest/build" "$dest/rst"
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$dest" hzel.cloud >/dev/null
"$PY" "$ROOT/tools/ansible_objects.py" "$dest/ansible_devel.inv"
cat >> "$dest/conf.py" <<'CONF'

# Offline: ansible-core's documentation through a local inventory of the targets these pages use.
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '../ansible_devel.inv'),
}
CONF
(cd "$dest" && ./build.sh >"$dest/build.log" 2>&1) || { tail -n 40 "$dest/build.log" >&2; exit 1; }
echo "docsite: $dest/build/html/index.html"
