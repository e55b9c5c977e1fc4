"""Discovery: the documents kubectl and the kubernetes client read to learn which kinds are served."""

from __future__ import annotations

import platform
from typing import Optional

from . import registration
from .resource import Resource


def _resource_entries(resource: Resource) -> list[dict]:
    entry = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": sorted(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    entries = [entry]
    for sub in resource.subresources:
        entries.append(
            {
                "name": f"{resource.plural}/{sub.name}",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": sub.kind,
                "verbs": sorted(sub.verbs),
            }
        )
    return entries


def api_resource_list(group: str, version: str = "v1") -> Optional[dict]:
    members = [kind.resource for kind in registration.kinds()
               if kind.resource.group == group and kind.resource.version == version]
    if not members:
        return None
    entries = []
    for resource in members:
        entries.extend(_resource_entries(resource))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def api_group_list() -> dict:
    groups = []
    for group in registration.groups():
        version = {"groupVersion": f"{group}/v1", "version": "v1"}
        groups.append({"name": group, "versions": [version], "preferredVersion": dict(version)})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> Optional[dict]:
    if group not in registration.groups():
        return None
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [version], "preferredVersion": version}


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def version_info() -> dict:
    return {
        "major": "1",
        "minor": "29",
        "gitVersion": "v1.29.0-osbs-local",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"linux/{platform.machine()}",
    }
