#!/usr/bin/env bash
# `make demo`: the main job on osbs-local. Sample repositories (a busybox base, an app on it,
# a leaf on the app, a tool with autorebuilds disabled) get their user builds and OSBS's tags; then the base
# gets a new commit and is rebuilt, and the autorebuild wave rebuilds the app, then the leaf,
# and skips the tool, and draws the wave (autorebuild-base.svg and .md beside its JSON report).
# Every step is idempotent: running the demo again builds nothing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
state=${OSBS_LOCAL_STATE_DIR:-$repo/.osbs-local}
venv=$repo/.venv
export ANSIBLE_COLLECTIONS_PATH=$repo/build/collections
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}

say() { printf '\n=== %s\n' "$*"; }

say "Starting osbs-local with Pulp (state in $state)"
"$venv/bin/osbs-local" up --state-dir "$state" --with-pulp
# shellcheck disable=SC1091
. "$state/env"
registry=$OSBS_LOCAL_REGISTRY
repos=$state/demo/repos
mkdir -p "$repos"

git_in() {
  local dir=$1; shift
  git -C "$dir" -c user.name="osbs.flow demo" -c user.email=demo@osbs.flow.invalid "$@"
}

# Write the files given as NAME CONTENT pairs and commit them when they change anything.
ensure_repo() {
  local name=$1; shift
  local dir=$repos/$name
  if [ ! -d "$dir/.git" ]; then
    git init -q -b main "$dir"
    git_in "$dir" config uploadpack.allowAnySHA1InWant true
  fi
  while [ $# -gt 0 ]; do
    printf '%s' "$2" > "$dir/$1"
    shift 2
  done
  git_in "$dir" add -A
  if ! git_in "$dir" diff --cached --quiet 2>/dev/null || ! git_in "$dir" rev-parse -q --verify HEAD >/dev/null; then
    git_in "$dir" commit -q -m "demo: $name"
    echo "  $name: committed $(git_in "$dir" rev-parse --short HEAD)"
  else
    echo "  $name: up to date at $(git_in "$dir" rev-parse --short HEAD)"
  fi
}

build() {
  local name=$1
  say "Build $name (ansible-playbook osbs.flow.build -e git_uri=file://$repos/$name -e git_branch=main)"
  "$venv/bin/ansible-playbook" osbs.flow.build \
    -e "git_uri=file://$repos/$name" -e git_branch=main \
    -e "registry_uri=$registry" -e "registry_secret=$OSBS_LOCAL_REGISTRY_SECRET" \
    -e "osbs_namespace=$OSBS_LOCAL_NAMESPACE" \
    -e "registry_ca_cert=$OSBS_LOCAL_REGISTRY_CA" -e pulp_registry_name=demo \
    -e "autorebuild_report_path=$state/demo/autorebuild-$name.json" \
    -e when_running=wait
}

base_dockerfile() {
  cat <<EOF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY release /etc/demo-release
LABEL name=osbs/base version=1.0
CMD ["/bin/sh"]
EOF
}

say "Sample repositories in $repos"
if [ -d "$repos/base/.git" ]; then
  # The first builds were made by an earlier run; the flow below finds everything built and builds nothing.
  echo "  the sample repositories and their first builds exist (an earlier make demo)"
else
  mkdir -p "$repos/base"
  cp /bin/busybox "$repos/base/busybox"
  # additional-tags: one valid tag, and one the flow reports and skips (a '-' is for version-release tags only).
  ensure_repo base Dockerfile "$(base_dockerfile)"$'\n' release $'1\n' additional-tags $'stable\nnot-valid\n'
  ensure_repo app Dockerfile "FROM $registry/osbs/base:1.0
LABEL name=osbs/app version=2.1
RUN echo app built on \$(cat /etc/demo-release) > /app
" .osbs-repo-config $'[autorebuild]\nenabled = true\n'
  ensure_repo leaf Dockerfile "FROM $registry/osbs/app:latest
LABEL name=osbs/leaf version=0.3
RUN cat /app > /leaf
"
  ensure_repo tool Dockerfile "FROM $registry/osbs/base:latest
LABEL name=osbs/tool version=1
RUN echo tool > /tool
" .osbs-repo-config $'[autorebuild]\nenabled = false\n'

  for name in base app leaf tool; do
    build "$name"
  done
fi

say "A new commit on base (release 2), then its build: the wave rebuilds app, then leaf, and skips tool"
ensure_repo base release $'2\n'
build base

for name in app leaf; do
  say "$name again: built from the new base already, so nothing is built"
  build "$name" | grep -E '^ *"(build|nvr|unique tag) +:|^localhost'
done

say "The wave as a picture (written beside the wave's JSON report by the last wave of base)"
picture=$state/demo/autorebuild-base
if [ ! -f "$picture.md" ]; then
  echo "  no wave of base has run yet, so there is no picture"
else
  if [ -s "$picture.svg" ]; then
    echo "  SVG (Graphviz):        $picture.svg"
  else
    echo "  no SVG was made (is Graphviz's dot installed? make setup installs it); the Markdown has the graph"
  fi
  echo "  Markdown with Mermaid: $picture.md"
  echo "  report (JSON):         $picture.json"
  # Each node of the Mermaid block: image, outcome, BuildConfig, NVR, build.
  grep -E '^  n[0-9]+\["' "$picture.md" | sed -e 's/<br\/>/ | /g' -e 's/^  n[0-9]*\["/  /' -e 's/"\]$//'
fi

say "Done. osbs-local keeps running: '$venv/bin/osbs-local status --state-dir $state'; stop it with 'osbs-local down'"
"$venv/bin/osbs-local" status --state-dir "$state"
