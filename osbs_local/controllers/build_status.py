"""A Build's status as the build controller writes it: phases and their events, finishing, restart recovery."""

from __future__ import annotations

import copy
import logging
import shutil
import time
import uuid
from datetime import datetime, timezone
from typing import Callable, Optional

from ..apiserver import registration
from ..apiserver.api import Api
from ..apiserver.errors import ApiError
from ..apiserver.meta import now
from ..executor.process import end_recorded_process_groups
from ..kinds.build.spec import ACTIVE_PHASES, BUILD_CONFIG_LABEL, BUILD_NUMBER_ANNOTATION, TERMINAL_PHASES, label_value

log = logging.getLogger("osbs_local.controllers")

CANCELLED_MESSAGE = "The build was cancelled by the user."
RESTART_REASON = "EngineRestarted"


def build_key(build: dict) -> tuple[str, str]:
    return build["metadata"]["namespace"], build["metadata"]["name"]


def build_number(build: dict) -> int:
    try:
        return int((build["metadata"].get("annotations") or {}).get(BUILD_NUMBER_ANNOTATION, "0"))
    except ValueError:
        return 0


def config_name(build: dict) -> Optional[str]:
    return ((build.get("status") or {}).get("config") or {}).get("name") or (
        build["metadata"].get("labels") or {}
    ).get(BUILD_CONFIG_LABEL)


def parse_time(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def update_build(api: Api, namespace: str, name: str, mutate: Callable[[dict], None], subresource: str = "") -> Optional[dict]:
    """Read-modify-write a Build under the store lock (subresource "details" for spec.revision); None when it is gone."""
    builds = registration.resource("builds")
    with api.store.lock:
        old = api.store.get("builds", namespace, name)
        if old is None:
            return None
        new = copy.deepcopy(old)
        mutate(new)
        return api.update_prepared(builds, old, new, subresource, False)


_PHASE_EVENTS = {
    "Running": ("BuildStarted", "Normal", "Build {key} is now running"),
    "Complete": ("BuildCompleted", "Normal", "Build {key} completed successfully"),
    "Failed": ("BuildFailed", "Warning", "Build {key} failed"),
    "Error": ("BuildFailed", "Warning", "Build {key} failed"),
    "Cancelled": ("BuildCancelled", "Normal", "Build {key} has been cancelled"),
}


def record_build_event(api: Api, build: Optional[dict]) -> None:
    """The Event OpenShift's build controller emits for the build's phase (kubectl describe shows it)."""
    if build is None or build.get("status", {}).get("phase") not in _PHASE_EVENTS:
        return
    reason, event_type, text = _PHASE_EVENTS[build["status"]["phase"]]
    meta = build["metadata"]
    stamp = now()
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"],
                     # Owned by the build, so the events go when it goes.
                     "ownerReferences": [{"apiVersion": "build.openshift.io/v1", "kind": "Build", "name": meta["name"],
                                          "uid": meta["uid"]}]},
        "involvedObject": {"kind": "Build", "apiVersion": "build.openshift.io/v1", "namespace": meta["namespace"],
                           "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")},
        "reason": reason, "type": event_type, "count": 1,
        "message": text.format(key=f"{meta['namespace']}/{meta['name']}"),
        "source": {"component": "build-controller"}, "reportingComponent": "build-controller",
        "firstTimestamp": stamp, "lastTimestamp": stamp,
    }
    try:
        with api.store.lock:
            if api.store.peek("builds", meta["namespace"], meta["name"]) is not None:
                api.create_prepared(registration.resource("events"), event, dry=False)
    except ApiError as exc:
        log.warning("event for build %s/%s not recorded: %s", meta["namespace"], meta["name"], exc.message)


def finish_build(api: Api, namespace: str, name: str, phase: str, reason: str = "", message: str = "",
                 log_snippet: str = "", started_at: Optional[float] = None) -> Optional[dict]:
    finished = []

    def mutate(build: dict) -> None:
        status = build.setdefault("status", {})
        if status.get("phase") in TERMINAL_PHASES:
            return
        finished.append(True)
        status["phase"] = phase
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        if log_snippet:
            status["logSnippet"] = log_snippet
        status["completionTimestamp"] = now()
        start = started_at or parse_time(status.get("startTimestamp"))
        if status.get("startTimestamp") and start:
            status["duration"] = int((time.time() - start) * 1e9)

    build = update_build(api, namespace, name, mutate)
    if finished:
        record_build_event(api, build)
        if build is not None and config_name(build):
            prune_builds(api, namespace, config_name(build))
    return build


def prune_builds(api: Api, namespace: str, config: str) -> None:
    """Keep the newest successfulBuildsHistoryLimit Complete and failedBuildsHistoryLimit Failed, Error and
    Cancelled builds of the BuildConfig, and delete the rest; an unset limit keeps every build of its kind.

    What OpenShift's build controller does whenever a build reaches a terminal phase (OCM
    pkg/build/controller/common/util.go HandleBuildPruning): the builds are those labelled with the
    BuildConfig's (shortened) name, newest first by creationTimestamp (the build number breaks ties within
    the timestamp's second, which OpenShift leaves to the sort).
    """
    bc = api.store.peek("buildconfigs", namespace, config)
    if bc is None:
        return
    groups = {"successfulBuildsHistoryLimit": ("Complete",), "failedBuildsHistoryLimit": ("Failed", "Error", "Cancelled")}
    labelled = [build for build, _ in api.store.scan_labelled("builds", namespace, [(BUILD_CONFIG_LABEL, label_value(config))])]
    for limit_field, phases in groups.items():
        limit = bc["spec"].get(limit_field)
        if limit is None:
            continue
        members = [b for b in labelled if (b.get("status") or {}).get("phase") in phases]
        members.sort(key=lambda b: (b["metadata"].get("creationTimestamp") or "", build_number(b)), reverse=True)
        for old in members[limit:]:
            try:
                api.delete(registration.resource("builds"), namespace, old["metadata"]["name"])
            except ApiError:
                pass


def build_process_groups_dir(api: Api):
    """Where the running builds' tools are recorded (executor.process.record_process_groups_in)."""
    return api.state_dir / "run" / "build-groups"


def recover_after_restart(api: Api) -> int:
    """Builds the previous engine left New, Pending or Running end as Error: nothing runs them any more.

    Their tools that outlived the previous engine are ended first, and every build's workspace (its checkout and
    its pull and push credential files) goes: a build that finished removed its own, so any left is an interrupted one's.
    """
    ended = end_recorded_process_groups(build_process_groups_dir(api))
    if ended:
        log.info("ended %d processes of builds the previous engine left running", ended)
    for workspace in (api.state_dir / "builds").glob("*/*/work"):
        shutil.rmtree(workspace, ignore_errors=True)
    count = 0
    for build, _ in list(api.store.scan("builds")):
        phase = build.get("status", {}).get("phase", "New")
        if phase in ACTIVE_PHASES:
            namespace, name = build_key(build)
            finish_build(
                api, namespace, name, "Error", RESTART_REASON,
                f"The osbs-local engine restarted while this build was {phase}; the build did not finish."
                " Start a new build.",
            )
            log.info("build %s/%s was %s when the engine stopped: now Error", namespace, name, phase)
            count += 1
    return count

