"""The build strategy check OpenShift's admission makes on every BuildConfig and Build write and on instantiate
and clone (openshift-apiserver pkg/build/apiserver/admission/strategyrestrictions/admission.go).

The requester must be allowed `create` on the strategy's pseudo-resource: builds/optimizeddocker for a Docker
strategy whose imageOptimizationPolicy is not None, builds/docker for any other Docker strategy (builds/source,
builds/custom, builds/jenkinspipeline for the others). builds/details is not checked, nor an update that changes
only ownerReferences or finalizers. A refusal is a 403 that names the strategy, not the permission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...apiserver import authz
from ...apiserver.authn import current_user
from ...apiserver.errors import ApiError

if TYPE_CHECKING:
    from ...apiserver.api import Api
    from ...apiserver.resource import Resource

_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields")


def _strategy_resource(strategy: dict) -> tuple[str, str]:
    """(pseudo-resource's subresource, strategy type) as resourceForStrategyType and strategyTypeString name them."""
    docker = strategy.get("dockerStrategy")
    if docker is not None:
        policy = docker.get("imageOptimizationPolicy")
        return ("optimizeddocker" if policy and policy != "None" else "docker"), "Docker"
    for key, subresource, name in (("customStrategy", "custom", "Custom"), ("sourceStrategy", "source", "Source"),
                                   ("jenkinsPipelineStrategy", "jenkinspipeline", "JenkinsPipeline")):
        if strategy.get(key) is not None:
            return subresource, name
    return "docker", "Docker"  # validation requires a strategy; the type defaults to Docker


def check(api: "Api", resource: "Resource", name: str, namespace: str, spec: dict) -> None:
    """Refuse the request (403) when its user may not create builds of this object's strategy."""
    user = current_user()
    subresource, strategy_type = _strategy_resource((spec or {}).get("strategy") or {})
    if authz.allowed(api, user, "create", "build.openshift.io", "builds", subresource, namespace):
        return
    raise ApiError(403, "Forbidden",
                   f'{resource.plural}.{resource.group} "{name}" is forbidden: build strategy {strategy_type} is not allowed',
                   {"name": name, "group": resource.group, "kind": resource.plural})


def check_request(api: "Api", resource: "Resource", namespace: str, name: str) -> None:
    """The check for instantiate (buildconfigs) and clone (builds): made on the object the BuildRequest names. An
    object that cannot be read is refused here already, as a 403 wrapping the 404 (admission.NewForbidden)."""
    obj = api.store.get(resource.plural, namespace, name)
    if obj is None:
        qualified = f"{resource.plural}.{resource.group}"
        raise ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {qualified} "{name}" not found',
                       {"name": name, "group": resource.group, "kind": resource.plural})
    check(api, resource, name, namespace, obj.get("spec") or {})


def admit_write(api: "Api", resource: "Resource", obj: dict, old: Optional[dict], subresource: str) -> None:
    """The check for a BuildConfig or Build create or update (not builds/details, not a garbage collector's update)."""
    if subresource == "details" or (old is not None and _only_gc_fields_differ(obj, old)):
        return
    check(api, resource, obj["metadata"]["name"], obj["metadata"].get("namespace") or "", obj.get("spec") or {})


def _only_gc_fields_differ(new: dict, old: dict) -> bool:
    def without(obj: dict) -> dict:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return dict(obj, metadata=meta)
    return without(new) == without(old)
