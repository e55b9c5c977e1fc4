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
# Molecule keeps a scenario's state ("already prepared", its files) in an ephemeral directory named
# after the folder only, so every checkout would share it: give each scenario a private, empty one.
status=0
for scenario in molecule/*/molecule.yml; do
  name=$(basename "$(dirname "$scenario")")
  ephemeral=$repo/build/molecule/$name
  rm -rf "$ephemeral"
  MOLECULE_EPHEMERAL_DIRECTORY=$ephemeral molecule test -s "$name" || status=1
done
exit $status
