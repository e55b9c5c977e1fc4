"""Pods (core v1): the `<build>-build` pod of each started build, a read-only view kubectl logs and
kubernetes.core's k8s_log need, as on OpenShift."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Optional

from ...apiserver import registration
from ...apiserver.errors import not_found
from ...apiserver.printing import AGE, NAME
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource, Subresource, field_path
from ...apiserver.rest import Request, Response
from . import build as builds

if TYPE_CHECKING:
    from ...apiserver.api import Api


# -- build pods ------------------------------------------------------------------------------
_POD_PHASES = {"Pending": "Pending", "Running": "Running", "Complete": "Succeeded",
               "Failed": "Failed", "Error": "Failed", "Cancelled": "Failed"}


def build_pod(build: dict) -> Optional[dict]:
    """The `<build>-build` Pod view of a started build (None while New: OpenShift has no pod yet)."""
    status = build.get("status") or {}
    phase = status.get("phase", "New")
    if phase == "New":
        return None
    meta = build["metadata"]
    pod_phase = _POD_PHASES.get(phase, "Unknown")
    terminated = pod_phase in ("Succeeded", "Failed")
    container_state = (
        {"terminated": {"exitCode": 0 if pod_phase == "Succeeded" else 1, "reason": status.get("reason") or pod_phase,
                        "startedAt": status.get("startTimestamp"), "finishedAt": status.get("completionTimestamp")}}
        if terminated else {"running": {"startedAt": status.get("startTimestamp")}} if phase == "Running"
        else {"waiting": {"reason": "PodInitializing"}})
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": f"{meta['name']}-build", "namespace": meta["namespace"],
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod:{meta['uid']}")),
            "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {"openshift.io/build.name": meta["name"]},
            "annotations": {"openshift.io/build.name": meta["name"]},
            "ownerReferences": [{"apiVersion": "build.openshift.io/v1", "kind": "Build", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True}],
        },
        "spec": {"containers": [{"name": "docker-build", "image": "osbs-local-builder"}],
                 "restartPolicy": "Never", "serviceAccountName": build.get("spec", {}).get("serviceAccount", "builder")},
        "status": {"phase": pod_phase, "startTime": status.get("startTimestamp"),
                   "containerStatuses": [{"name": "docker-build", "ready": phase == "Running", "restartCount": 0,
                                          "image": "osbs-local-builder", "imageID": "", "state": container_state}]},
    }


def _build_of_pod(api: Api, namespace: str, pod_name: str) -> Optional[dict]:
    if not pod_name.endswith("-build"):
        return None
    return api.store.peek("builds", namespace, pod_name[: -len("-build")])


def get_pod(api: Api, namespace: str, name: str) -> dict:
    build = _build_of_pod(api, namespace, name)
    pod = build_pod(build) if build is not None else None
    if pod is None:
        raise not_found(registration.resource("pods"), name)
    return pod


def list_pods(api: Api, namespace: Optional[str], predicate=None) -> dict:
    pods = [build_pod(build) for build, _ in api.store.scan("builds", namespace)]
    items = sorted((p for p in pods if p is not None and (predicate is None or predicate(p))),
                   key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    return {"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": str(api.store.resource_version)}, "items": items}


def _get(request: Request) -> Response:
    return Response(200, get_pod(request.api, request.namespace, request.name), printable=True)


def _list(request: Request) -> Response:
    return Response(200, list_pods(request.api, request.namespace, request.predicate))


def _log(request: Request) -> Response:
    get_pod(request.api, request.namespace, request.name)
    return builds.log_response(request.api, request.namespace, request.name[: -len("-build")], request)


def _pod_ready(obj: dict) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(statuses)}"


KIND = Kind(
    Resource(
        "", "pods", "pod", "Pod", True, verbs=("get", "list"), short_names=("po",), categories=("all",),
        subresources=(Subresource("log", "Pod", ("get",)),), stored=False,
        extra_field_selectors={"status.phase": field_path("status", "phase")},
    ),
    handlers={("get", ""): _get, ("list", ""): _list, ("get", "log"): _log},
    columns=[NAME, ("Ready", "string", "Ready containers.", _pod_ready, 0),
             ("Status", "string", "The phase of the pod.", lambda o: (o.get("status") or {}).get("phase", ""), 0),
             ("Restarts", "integer", "Container restarts.", lambda o: 0, 0), AGE],
)
