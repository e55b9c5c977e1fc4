# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What osbs_buildconfig checks before it writes the BuildConfig: its push secret exists, and no build of it runs."""

from __future__ import annotations

import time

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError
from ansible_collections.osbs.flow.plugins.module_utils.resources import active_builds, describe_builds
from ansible_collections.osbs.flow.plugins.module_utils.waiter import missing_push_secret_message, wait_for_no_active_builds


def check_push_secret(module, namespace, secret):
    """Refuse a push secret that does not exist, before anything is written.

    OpenShift does not fail a build whose push secret is missing: it stays Pending (reason MissingPushSecret)
    until the secret exists (openshift-controller-manager build_controller.go handleActiveBuild), so a
    misspelt name would only show as a build that never starts. Reading a secret needs `get secrets`; without
    that permission (403) the check is skipped with a warning.
    """
    try:
        found = module.client.get("Secret", namespace, secret)
    except ApiError as exc:
        if exc.status != 403:
            raise
        module.warn("registry_secret %r was not checked: reading secrets in namespace %s is forbidden (%s); "
                    "builds stay Pending (MissingPushSecret) if it does not exist" % (secret, namespace, exc.message))
        return
    if found is None:
        raise OsbsFlowError(missing_push_secret_message(namespace, secret))


def refuse_or_wait_for_builds(module, name):
    """Fail while a build of `name` is active, or wait for it with when_running=wait."""
    params = module.params
    builds = active_builds(module.client, params["namespace"], name)
    if builds and params["when_running"] == "wait" and module.check_mode:
        module.warn("check mode: the change would wait for the build %s to end" % describe_builds(builds))
    elif builds and params["when_running"] == "wait":
        started = time.monotonic()
        builds = wait_for_no_active_builds(module.client, params["namespace"], name, params["wait_timeout"])
        if builds:
            raise OsbsFlowError(
                "BuildConfig %s/%s still has the build %s after waiting %d s: raise wait_timeout or cancel the build"
                % (params["namespace"], name, describe_builds(builds), int(time.monotonic() - started))
            )
    elif builds:
        raise OsbsFlowError(
            "BuildConfig %s/%s has the build %s in progress; it is not changed while a build runs: "
            "wait for the build, cancel it, or set when_running=wait"
            % (params["namespace"], name, describe_builds(builds))
        )
