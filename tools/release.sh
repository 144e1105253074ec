#!/usr/bin/env bash
# make release VERSION=x.y.z: set the version (galaxy.yml, and the client's User-Agent that is
# checked against it), write CHANGELOG.rst and changelogs/changelog.yaml from the fragments, and
# build dist/hzel-cloud-x.y.z.tar.gz. Commit and tag afterwards; nothing is pushed or published.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
version=${1:-}
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "usage: make release VERSION=x.y.z (got '${version}')" >&2
    exit 2
fi
ensure_venv
cd "$ROOT"
sed -i -E "s/^version: .*/version: $version/" galaxy.yml
sed -i -E "s/^COLLECTION_VERSION = \".*\"/COLLECTION_VERSION = \"$version\"/" plugins/module_utils/_transport.py
antsibull-changelog release --version "$version"
mkdir -p dist
ansible-galaxy collection build --force --output-path dist
echo "released $version: galaxy.yml, User-Agent, CHANGELOG.rst, dist/hzel-cloud-$version.tar.gz"
