"""Build (build.openshift.io/v1): its rules, status conditions, builds/NAME/log, clone and details."""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import TYPE_CHECKING, Optional

from ...apiserver import registration
from ...apiserver.errors import Cause, bad_request, not_found
from ...apiserver.meta import now
from ...apiserver.printing import NAME, human_duration, human_duration_since
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource, Subresource, field_path
from ...apiserver.rest import Request, Response
from ...apiserver.strategy import Strategy
from . import admission, generator
from .spec import (ACTIVE_PHASES, BUILD_CONFIG_LABEL, BUILD_NUMBER_ANNOTATION, TERMINAL_PHASES, build_name,
                   common_spec_defaults, source_label, strategy_type, validate_common_spec)

if TYPE_CHECKING:
    from ...apiserver.api import Api


def sync_conditions(build: dict) -> None:
    """Keep status.conditions in step with status.phase, as the Build strategy does on every write (OAS
    registry/build/strategy.go manageConditions): the phase's condition True with the status's reason and message,
    every other one False with both cleared."""
    status = build.setdefault("status", {})
    phase = status.get("phase")
    if not phase:
        return
    conditions = status.get("conditions") or []
    stamp = now()
    reason, message = status.get("reason") or "", status.get("message") or ""
    found = False
    for condition in conditions:
        if condition.get("type") == phase:
            found = True
            if (condition.get("status"), condition.get("reason") or "", condition.get("message") or "") != ("True", reason, message):
                if condition.get("status") != "True":
                    condition.update(status="True", lastTransitionTime=stamp)
                condition["lastUpdateTime"] = stamp
                _set_or_drop(condition, reason=reason, message=message)
        elif condition.get("status") != "False":
            condition.update(status="False", lastTransitionTime=stamp, lastUpdateTime=stamp)
            _set_or_drop(condition, reason="", message="")
    if not found:
        condition = {"type": phase, "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
        _set_or_drop(condition, reason=reason, message=message)
        conditions.append(condition)
    status["conditions"] = conditions


def _set_or_drop(condition: dict, **fields: str) -> None:
    """Empty strings are omitted in OpenShift's JSON (omitempty)."""
    for key, value in fields.items():
        if value:
            condition[key] = value
        else:
            condition.pop(key, None)


class BuildStrategy(Strategy):
    has_generation = True
    require_rv_on_update = True

    def prepare_create(self, api, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("serviceAccount", "builder")
        common_spec_defaults(spec)
        status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        status.setdefault("phase", "New")
        status.setdefault("output", {})
        obj["status"] = status
        sync_conditions(obj)

    def prepare_update(self, api, old, new, subresource):
        if subresource == "details":
            # builds/NAME/details: what the builder records about the source; only spec.revision changes.
            revision = (new.get("spec") or {}).get("revision")
            new["spec"] = copy.deepcopy(old.get("spec") or {})
            new["spec"]["revision"] = revision
            new["status"] = copy.deepcopy(old.get("status") or {})
            for key in ("labels", "annotations", "ownerReferences", "finalizers"):
                if key in old["metadata"]:
                    new["metadata"][key] = copy.deepcopy(old["metadata"][key])
                else:
                    new["metadata"].pop(key, None)
        spec = new.setdefault("spec", {})
        common_spec_defaults(spec)
        status = new.get("status") if isinstance(new.get("status"), dict) else {}
        new["status"] = status
        status.setdefault("phase", old.get("status", {}).get("phase", "New"))
        old_status = old.get("status") or {}
        if old_status.get("phase") == "Failed" and status.get("reason") != "OutOfMemoryKilled":
            # OAS strategy.PrepareForUpdate: what the builder recorded about a failure is not overwritten.
            _set_or_drop(status, reason=old_status.get("reason") or "", message=old_status.get("message") or "")
        sync_conditions(new)
        if spec != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def admit(self, api, resource, obj, old, subresource):
        admission.admit_write(api, resource, obj, old, subresource)

    def validate(self, api, obj, old, subresource=""):
        causes = validate_common_spec(obj.get("spec") or {})
        phase = (obj.get("status") or {}).get("phase")
        phases = ACTIVE_PHASES + TERMINAL_PHASES
        if phase not in phases:
            causes.append(Cause("status.phase", "FieldValueNotSupported", f"{phase!r}: supported values: {', '.join(phases)}"))
        if old is not None:
            old_spec, new_spec = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(obj.get("spec") or {})
            for spec in (old_spec, new_spec):
                (spec.get("output") or {}).pop("pushSecret", None)
            if subresource == "details":
                if old_spec.get("revision") and new_spec.get("revision") != old_spec.get("revision"):
                    causes.append(Cause("spec.revision", "FieldValueInvalid", "cannot change the revision of a build once it is set"))
                for spec in (old_spec, new_spec):
                    spec.pop("revision", None)
            if old_spec != new_spec:
                causes.append(Cause("spec", "FieldValueInvalid", "spec is immutable except for spec.output.pushSecret"))
            old_phase = (old.get("status") or {}).get("phase")
            if old_phase in TERMINAL_PHASES and phase != old_phase:
                causes.append(Cause("status.phase", "FieldValueInvalid", f"{phase!r}: phase cannot be updated from a terminal state"))
        return causes


# -- builds/NAME/log -------------------------------------------------------------------------
def log_path(api: Api, namespace: str, name: str):
    return api.state_dir / "builds" / namespace / name / "build.log"


def log_chunks(api: Api, namespace: str, name: str, follow: bool = False, nowait: bool = False,
               tail_lines: Optional[int] = None, limit_bytes: Optional[int] = None, previous: bool = False,
               stopped=lambda: False):
    """Check the request, then return an iterator of log bytes (streaming until the build ends when follow)."""
    builds = registration.resource("builds")
    build = api.store.peek("builds", namespace, name)
    if build is None:
        raise not_found(builds, name)
    if previous:
        annotations = build["metadata"].get("annotations") or {}
        number = int(annotations.get(BUILD_NUMBER_ANNOTATION, "0") or 0)
        bc_name = annotations.get(BUILD_CONFIG_LABEL)
        if not bc_name or number <= 1:
            raise bad_request(f"build {name} has no previous build")
        name = build_name(bc_name, number - 1)
        build = api.store.peek("builds", namespace, name)
        if build is None:
            raise not_found(builds, name)
    phase = build.get("status", {}).get("phase", "New")
    path = log_path(api, namespace, name)
    if phase in ("Cancelled", "Error") and not path.exists():
        raise bad_request(f"build {name} is {phase.lower()}. No logs are available.")
    if nowait and phase in ("New", "Pending") and not path.exists():
        return iter(())
    return _log_stream(api, namespace, name, path, follow, tail_lines, limit_bytes, stopped)


def _log_stream(api: Api, namespace, name, path, follow, tail_lines, limit_bytes, stopped):
    def phase() -> str:
        current = api.store.peek("builds", namespace, name)
        return (current or {}).get("status", {}).get("phase", "Error") if current else "Error"

    while not path.exists() and phase() in ("New", "Pending"):
        if stopped():
            return
        time.sleep(0.2)
    if not path.exists():
        return
    if not follow:
        data = path.read_bytes()
        if tail_lines is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail_lines:]) if tail_lines > 0 else b""
        if limit_bytes is not None:
            data = data[:limit_bytes]
        yield data
        return
    sent = 0
    with open(path, "rb") as handle:
        if tail_lines is not None:
            lines = handle.read().splitlines(keepends=True)
            start = b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
            yield start
            sent += len(start)
        while True:
            done = phase() in TERMINAL_PHASES  # read once more after the build ends: nothing is lost
            chunk = handle.read(65536)
            if chunk:
                if limit_bytes is not None:
                    chunk = chunk[: max(limit_bytes - sent, 0)]
                sent += len(chunk)
                yield chunk
                if limit_bytes is not None and sent >= limit_bytes:
                    return
                continue
            if done or stopped():
                return
            time.sleep(0.2)


# -- REST ------------------------------------------------------------------------------------------
TRUE = ("true", "1", "True")


def log_response(api: "Api", namespace: str, name: str, request: Request) -> Response:
    """GET builds/NAME/log (and pods/NAME/log): the log, streamed until the build ends with follow."""
    query = request.query
    chunks = log_chunks(
        api, namespace, name, follow=query.get("follow") in TRUE, nowait=query.get("nowait") in TRUE,
        tail_lines=int(query["tailLines"]) if query.get("tailLines") else None,
        limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None,
        previous=query.get("previous") in TRUE, stopped=request.stopped,
    )
    return Response(200, stream=chunks, content_type="text/plain")


def _log(request: Request) -> Response:
    return log_response(request.api, request.namespace, request.name, request)


def _clone(request: Request) -> Response:
    admission.check_request(request.api, request.resource, request.namespace, request.name)
    return Response(201, generator.clone(request.api, request.namespace, request.name, request.body, request.dry_run))


def _phase_metrics(api: "Api") -> list[str]:
    phases: Counter = Counter(obj.get("status", {}).get("phase", "New") for obj, _ in api.store.scan("builds"))
    lines = ["# HELP osbs_local_builds Builds stored, by phase.", "# TYPE osbs_local_builds gauge"]
    for phase, value in sorted(phases.items()):
        lines.append(f'osbs_local_builds{{phase="{phase}"}} {value}')
    return lines


def _status_cell(obj: dict) -> str:
    status = obj.get("status") or {}
    phase = status.get("phase", "New")
    return f"{phase} ({status['reason']})" if status.get("reason") and phase in ("Failed", "Error", "Cancelled") else phase


def _started_cell(obj: dict) -> str:
    started = (obj.get("status") or {}).get("startTimestamp")
    return f"{human_duration_since(started)} ago" if started else ""


def _duration_cell(obj: dict) -> str:
    duration = (obj.get("status") or {}).get("duration")
    return human_duration(int(duration / 1e9)) if duration else ""


def _pod_name(build: dict) -> Optional[str]:
    return f"{build['metadata']['name']}-build"


KIND = Kind(
    Resource(
        "build.openshift.io", "builds", "build", "Build", True, categories=("all",),
        subresources=(
            Subresource("clone", "BuildRequest", ("create",)),
            Subresource("details", "Build", ("update",)),
            Subresource("log", "BuildLog", ("get",)),
        ),
        extra_field_selectors={"status": field_path("status", "phase"), "podName": _pod_name},
    ),
    BuildStrategy(),
    handlers={("get", "log"): _log, ("create", "clone"): _clone},
    columns=[NAME, ("Type", "string", "The build strategy.", strategy_type, 0),
             ("From", "string", "The source of the build.", source_label, 0),
             ("Status", "string", "The phase of the build.", _status_cell, 0),
             ("Started", "string", "When the build started.", _started_cell, 0),
             ("Duration", "string", "How long the build took.", _duration_cell, 0)],
    merge_keys={
        "status.conditions": "type",
        "spec.strategy.dockerStrategy.volumes": "name",
        "spec.strategy.sourceStrategy.volumes": "name",
    },
    metrics=_phase_metrics,
)
