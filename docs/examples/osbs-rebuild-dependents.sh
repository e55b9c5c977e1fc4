#!/bin/sh
# One run of osbs.flow.rebuild_dependents, for cron or a systemd timer (docs/awx-and-ci.md, "A cron job").
#
# Cron gives a job PATH=/usr/bin:/bin, no login environment and no `\` line continuation, so everything the
# run needs is here or in the environment file, and the crontab entry is one line calling this script.
# Install it as /usr/local/libexec/osbs-rebuild-dependents (mode 0755).
#
# The environment file (default /etc/osbs-flow/rebuild.env, owned by the user cron runs this as, mode 0600)
# holds the credentials, never a command line, where `ps` shows them to every user:
#   K8S_AUTH_KUBECONFIG=/etc/osbs-flow/kubeconfig   (or K8S_AUTH_HOST and K8S_AUTH_API_KEY)
#   OSBS_NAMESPACE=osbs
#   PULP_PASSWORD=...                               (when the variables file sets pulp_url)
#   ANSIBLE_PLAYBOOK=/opt/osbs-flow/venv/bin/ansible-playbook
# The variables file (default /etc/osbs-flow/base-images.yml) holds base_images and the other variables.
#
# One run at a time: a run that finds the lock held says so and exits 0 (the next slot runs). The lock file is
# under $HOME, which a reboot keeps and the user can write (on RHEL /var/lock is root's only; /run is emptied
# at boot). Each day's runs go to one log file.
set -eu

env_file=${OSBS_REBUILD_ENV:-/etc/osbs-flow/rebuild.env}
vars_file=${OSBS_REBUILD_VARS:-/etc/osbs-flow/base-images.yml}
lock_file=${OSBS_REBUILD_LOCK:-$HOME/.cache/osbs-flow/rebuild-dependents.lock}
log_dir=${OSBS_REBUILD_LOG_DIR:-$HOME/.local/state/osbs-flow}

PATH=/usr/local/bin:/usr/bin:/bin
export PATH

if [ ! -r "$env_file" ]; then
    echo "osbs-rebuild-dependents: cannot read the environment file $env_file (set OSBS_REBUILD_ENV)" >&2
    exit 2
fi
set -a
# The file is chosen at run time.
# shellcheck disable=SC1090
. "$env_file"
set +a
playbook_command=${ANSIBLE_PLAYBOOK:-ansible-playbook}

mkdir -p -- "$(dirname -- "$lock_file")" "$log_dir"
exec 9>>"$lock_file"
if ! flock -n 9; then
    echo "osbs-rebuild-dependents: another run holds $lock_file; this one is skipped" >&2
    exit 0
fi
log="$log_dir/rebuild-$(date +%F).log"
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) osbs.flow.rebuild_dependents" >>"$log"
# The lock stays held (fd 9) until ansible-playbook exits; its exit status is the job's.
exec "$playbook_command" osbs.flow.rebuild_dependents -e "@$vars_file" >>"$log" 2>&1
