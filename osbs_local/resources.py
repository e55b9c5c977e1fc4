"""The resources osbs-local serves and the discovery documents describing them (OPENSHIFT_API.md section 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
BUILD_GROUP = "build.openshift.io"
IMAGE_GROUP = "image.openshift.io"


def _path(*keys: str) -> Callable[[dict], Optional[str]]:
    def extract(obj: dict) -> Optional[str]:
        value = obj
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value if isinstance(value, str) else None

    return extract


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    extra_field_selectors: dict = field(default_factory=dict)
    version: str = "v1"
    # Stored in the object store (False: computed from other objects, like imagestreamtags).
    stored: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_plural(self) -> str:
        """`buildconfigs.build.openshift.io`, or just `configmaps` for the core group (error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def field_selectors(self) -> dict[str, Callable[[dict], Optional[str]]]:
        selectors = {"metadata.name": _path("metadata", "name")}
        if self.namespaced:
            selectors["metadata.namespace"] = _path("metadata", "namespace")
        selectors.update(self.extra_field_selectors)
        return selectors

    def subresource(self, name: str) -> Optional[Subresource]:
        return next((s for s in self.subresources if s.name == name), None)


def _build_pod_name(build: dict) -> Optional[str]:
    return f"{build['metadata']['name']}-build"


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "", "namespaces", "namespace", "Namespace", False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"), short_names=("ns",),
        extra_field_selectors={"status.phase": _path("status", "phase")},
    ),
    Resource("", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
    # Build pods (`<build>-build`), read-only views of started builds: `kubectl logs`, and kubernetes.core's
    # k8s_log (it needs a Pod resource to exist) work as on OpenShift.
    Resource(
        "", "pods", "pod", "Pod", True, verbs=("get", "list"), short_names=("po",), categories=("all",),
        subresources=(Subresource("log", "Pod", ("get",)),), stored=False,
        extra_field_selectors={"status.phase": _path("status", "phase")},
    ),
    # Events: stored like any object; kubectl describe lists them for core kinds.
    Resource(
        "", "events", "event", "Event", True, short_names=("ev",),
        extra_field_selectors={
            **{f"involvedObject.{key}": _path("involvedObject", key)
               for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
            "reason": _path("reason"), "type": _path("type"), "source": _path("source", "component"),
            "reportingComponent": _path("reportingComponent"),
        },
    ),
    Resource("", "secrets", "secret", "Secret", True, extra_field_selectors={"type": _path("type")}),
    Resource(
        BUILD_GROUP, "buildconfigs", "buildconfig", "BuildConfig", True, short_names=("bc",), categories=("all",),
        subresources=(
            Subresource("instantiate", "BuildRequest", ("create",)),
            Subresource("instantiatebinary", "BinaryBuildRequestOptions", ("create",)),
            Subresource("webhooks", "Build", ("create",)),
        ),
    ),
    Resource(
        BUILD_GROUP, "builds", "build", "Build", True, categories=("all",),
        subresources=(
            Subresource("clone", "BuildRequest", ("create",)),
            Subresource("details", "Build", ("update",)),
            Subresource("log", "BuildLog", ("get",)),
        ),
        extra_field_selectors={"status": _path("status", "phase"), "podName": _build_pod_name},
    ),
    Resource(
        IMAGE_GROUP, "imagestreams", "imagestream", "ImageStream", True, short_names=("is",), categories=("all",),
        subresources=(
            Subresource("status", "ImageStream", ("get", "patch", "update")),
            Subresource("layers", "ImageStreamLayers", ("get",)),
            Subresource("secrets", "SecretList", ("get",)),
        ),
        extra_field_selectors={
            "spec.dockerImageRepository": _path("spec", "dockerImageRepository"),
            "status.dockerImageRepository": _path("status", "dockerImageRepository"),
        },
    ),
    Resource(
        IMAGE_GROUP, "imagestreamimports", "imagestreamimport", "ImageStreamImport", True,
        verbs=("create",), stored=False,
    ),
    Resource(
        IMAGE_GROUP, "imagestreamtags", "imagestreamtag", "ImageStreamTag", True,
        verbs=("create", "delete", "get", "list", "patch", "update"), short_names=("istag",), stored=False,
    ),
    Resource(
        IMAGE_GROUP, "imagestreamimages", "imagestreamimage", "ImageStreamImage", True,
        verbs=("get",), short_names=("isimage",), stored=False,
    ),
    Resource(
        IMAGE_GROUP, "imagestreammappings", "imagestreammapping", "ImageStreamMapping", True,
        verbs=("create",), stored=False,
    ),
    Resource(
        IMAGE_GROUP, "imagetags", "imagetag", "ImageTag", True, verbs=("get", "list"), short_names=("itag",),
        stored=False,
    ),
    Resource(
        IMAGE_GROUP, "images", "image", "Image", False, verbs=("delete", "get", "list", "watch"),
    ),
)

BY_GROUP_PLURAL: dict[tuple[str, str], Resource] = {(r.group, r.plural): r for r in RESOURCES}
BY_PLURAL: dict[str, Resource] = {r.plural: r for r in RESOURCES}
GROUPS = (BUILD_GROUP, IMAGE_GROUP)


def lookup(group: str, plural: str) -> Optional[Resource]:
    return BY_GROUP_PLURAL.get((group, plural))


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
    members = [r for r in RESOURCES if r.group == group and r.version == version]
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
    for group in GROUPS:
        version = {"groupVersion": f"{group}/v1", "version": "v1"}
        groups.append({"name": group, "versions": [version], "preferredVersion": dict(version)})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> Optional[dict]:
    if group not in GROUPS:
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
    import platform

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
