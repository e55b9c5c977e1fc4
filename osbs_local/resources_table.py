"""Server-side printing: meta.k8s.io/v1 Table answers for `kubectl get` (Accept: ...;as=Table;...).

kubectl asks for a Table on list, get and watch, and falls back to NAME/AGE when it gets a plain object;
answering with the columns `oc get` shows makes `kubectl get builds` tell the phase, source image and
duration.  Every Table (also each watch event's) carries its column definitions, so kubectl prints the
header once and the rows line up.
"""

from __future__ import annotations

import time
from calendar import timegm
from typing import Callable, Optional

Column = tuple[str, str, str, Callable[[dict], object], int]  # name, type, description, cell, priority


def wants_table(accept: str) -> bool:
    """True when the client's preferred media type is a meta.k8s.io Table (kubectl get; not -o json/yaml)."""
    first = accept.split(",")[0]
    parameters = dict(part.strip().partition("=")[::2] for part in first.split(";")[1:])
    return parameters.get("as") == "Table" and parameters.get("g") == "meta.k8s.io" and parameters.get("v") in ("v1", "v1beta1")


def _age(obj: dict) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    return human_duration_since(created) if created else "<unknown>"


def human_duration_since(stamp: str) -> str:
    try:
        then = timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return "<invalid>"
    return human_duration(max(0, int(time.time() - then)))


def human_duration(seconds: int) -> str:
    """apimachinery's duration.HumanDuration."""
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _strategy_type(obj: dict) -> str:
    return ((obj.get("spec") or {}).get("strategy") or {}).get("type", "")


def _source_label(obj: dict) -> str:
    spec = obj.get("spec") or {}
    source = spec.get("source") or {}
    if source.get("git"):
        label = "Git"
        commit = (((spec.get("revision") or {}).get("git")) or {}).get("commit")
        if commit:
            return f"{label}@{commit[:7]}"
        ref = source["git"].get("ref")
        return f"{label}@{ref}" if ref else label
    return source.get("type", "")


def _build_status(obj: dict) -> str:
    status = obj.get("status") or {}
    phase = status.get("phase", "New")
    return f"{phase} ({status['reason']})" if status.get("reason") and phase in ("Failed", "Error", "Cancelled") else phase


def _build_started(obj: dict) -> str:
    started = (obj.get("status") or {}).get("startTimestamp")
    return f"{human_duration_since(started)} ago" if started else ""


def _build_duration(obj: dict) -> str:
    duration = (obj.get("status") or {}).get("duration")
    return human_duration(int(duration / 1e9)) if duration else ""


def _stream_tags(obj: dict) -> str:
    tags = [t["tag"] for t in (obj.get("status") or {}).get("tags") or [] if t.get("items")]
    return ",".join(tags[:4]) + (f" + {len(tags) - 4} more..." if len(tags) > 4 else "")


def _stream_updated(obj: dict) -> str:
    created = [t["items"][0].get("created") for t in (obj.get("status") or {}).get("tags") or [] if t.get("items")]
    created = [c for c in created if c]
    return human_duration_since(max(created)) if created else ""


def _pod_ready(obj: dict) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(statuses)}"


NAME = ("Name", "string", "Name must be unique within a namespace.", _name, 0)
AGE = ("Age", "string", "Time since the object was created.", _age, 0)

COLUMNS: dict[str, list[Column]] = {
    "namespaces": [NAME, ("Status", "string", "The phase of the namespace.", lambda o: (o.get("status") or {}).get("phase", ""), 0), AGE],
    "configmaps": [NAME, ("Data", "integer", "Number of data entries.", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}), 0), AGE],
    "secrets": [NAME, ("Type", "string", "The type of the secret.", lambda o: o.get("type", ""), 0),
                ("Data", "integer", "Number of data entries.", lambda o: len(o.get("data") or {}), 0), AGE],
    "pods": [NAME, ("Ready", "string", "Ready containers.", _pod_ready, 0),
             ("Status", "string", "The phase of the pod.", lambda o: (o.get("status") or {}).get("phase", ""), 0),
             ("Restarts", "integer", "Container restarts.", lambda o: 0, 0), AGE],
    "events": [("Last Seen", "string", "Time since the event was last seen.", lambda o: human_duration_since(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")), 0),
               ("Type", "string", "Normal or Warning.", lambda o: o.get("type", ""), 0),
               ("Reason", "string", "Why the event happened.", lambda o: o.get("reason", ""), 0),
               ("Object", "string", "What the event is about.", lambda o: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/{(o.get('involvedObject') or {}).get('name', '')}", 0),
               ("Message", "string", "What happened.", lambda o: o.get("message", ""), 0)],
    "buildconfigs": [NAME, ("Type", "string", "The build strategy.", _strategy_type, 0),
                     ("From", "string", "The source of the build.", _source_label, 0),
                     ("Latest", "string", "The number of the latest build.", lambda o: str((o.get("status") or {}).get("lastVersion", 0)), 0)],
    "builds": [NAME, ("Type", "string", "The build strategy.", _strategy_type, 0),
               ("From", "string", "The source of the build.", _source_label, 0),
               ("Status", "string", "The phase of the build.", _build_status, 0),
               ("Started", "string", "When the build started.", _build_started, 0),
               ("Duration", "string", "How long the build took.", _build_duration, 0)],
    "imagestreams": [NAME, ("Image Repository", "string", "Where the images are.", lambda o: (o.get("status") or {}).get("dockerImageRepository", ""), 0),
                     ("Tags", "string", "Tags with images.", _stream_tags, 0),
                     ("Updated", "string", "Since the last tag change.", _stream_updated, 0)],
    "imagestreamtags": [NAME, ("Image Reference", "string", "The tag's image, by digest.", lambda o: (o.get("image") or {}).get("dockerImageReference", ""), 0),
                        ("Updated", "string", "Since the tag changed.", _age, 0)],
}


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table(resource: str, objects: list[dict], list_metadata: Optional[dict] = None) -> dict:
    columns = COLUMNS.get(resource, [NAME, ("Created At", "date", "When the object was created.",
                                            lambda o: o["metadata"].get("creationTimestamp"), 0)])
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata or {},
        "columnDefinitions": [
            {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": text, "priority": priority}
            for name, kind, text, _, priority in columns
        ],
        "rows": [{"cells": [cell(obj) for _, _, _, cell, _ in columns], "object": _partial(obj)} for obj in objects],
    }
