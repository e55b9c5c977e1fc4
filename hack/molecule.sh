#!/usr/bin/env bash
# Run every molecule scenario against a private osbs-local, stopped afterwards.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
state=$repo/build/molecule-osbs-local
export PATH=$repo/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$repo/build/collections
osbs-local down --state-dir "$state" >/dev/null 2>&1 || true
rm -rf "$state"  # every run starts from an empty engine
osbs-local up --state-dir "$state" >/dev/null
trap 'osbs-local down --state-dir "$state" >/dev/null' EXIT
# shellcheck disable=SC1091
. "$state/env"
cd "$repo/extensions"
# Molecule keeps scenario state (e.g. "already prepared") in its cache: a private, empty one per run.
cache=$repo/build/molecule-cache
rm -rf "$cache"
XDG_CACHE_HOME=$cache molecule test --all
