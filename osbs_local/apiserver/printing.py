"""Server-side printing: meta.k8s.io/v1 Table answers for `kubectl get` (Accept: ...;as=Table;...).

kubectl asks for a Table on list, get and watch, and falls back to NAME/AGE when it gets a plain object;
answering with the columns `oc get` shows makes `kubectl get builds` tell the phase, source image and
duration.  Every Table (also each watch event's) carries its column definitions, so kubectl prints the
header once and the rows line up.
"""

from __future__ import annotations

import time
from calendar import timegm
from typing import Optional

from . import registration


def wants_table(accept: str) -> bool:
    """True when the client's preferred media type is a meta.k8s.io Table (kubectl get; not -o json/yaml)."""
    first = accept.split(",")[0]
    parameters = dict(part.strip().partition("=")[::2] for part in first.split(";")[1:])
    return parameters.get("as") == "Table" and parameters.get("g") == "meta.k8s.io" and parameters.get("v") in ("v1", "v1beta1")


def age(obj: dict) -> str:
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


NAME = ("Name", "string", "Name must be unique within a namespace.", _name, 0)
AGE = ("Age", "string", "Time since the object was created.", age, 0)
# What kubectl shows for a kind that registered no columns.
DEFAULT_COLUMNS = [NAME, ("Created At", "date", "When the object was created.", lambda o: o["metadata"].get("creationTimestamp"), 0)]


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table(resource: str, objects: list[dict], list_metadata: Optional[dict] = None) -> dict:
    """The Table of objects of the kind whose plural is resource, with that kind's registered columns."""
    kind = registration.by_plural(resource)
    columns = kind.columns if kind is not None and kind.columns else DEFAULT_COLUMNS
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
