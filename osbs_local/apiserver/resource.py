"""What the server says about a kind: its group, names, scope, verbs and subresources (discovery's view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def field_path(*keys: str) -> Callable[[dict], Optional[str]]:
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
    # Names validated as path segments only (RBAC's ValidateRBACName), not as DNS subdomains.
    path_segment_names: bool = False
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
        selectors = {"metadata.name": field_path("metadata", "name")}
        if self.namespaced:
            selectors["metadata.namespace"] = field_path("metadata", "namespace")
        selectors.update(self.extra_field_selectors)
        return selectors

    def subresource(self, name: str) -> Optional[Subresource]:
        return next((s for s in self.subresources if s.name == name), None)

