"""ClusterRoles, ClusterRoleBindings and RoleBindings (rbac.authorization.k8s.io/v1), stored as any object, and
the bootstrap policy the build strategy check reads (apiserver/authz.py evaluates them).

OpenShift's bootstrap policy has the ClusterRole `system:build-strategy-docker` (create on builds/docker and
builds/optimizeddocker) bound to every authenticated user by `system:build-strategy-docker-binding`
(openshift-apiserver pkg/bootstrappolicy/policy.go). Both carry `rbac.authorization.kubernetes.io/autoupdate:
"true"`: the apiserver's policy reconciliation puts them back at start when they were deleted, and leaves them as
they are when an administrator set the annotation to "false" (the documented way to take Docker builds away from
everyone: set it, then `oc adm policy remove-cluster-role-from-group system:build-strategy-docker
system:authenticated`). osbs-local reconciles the same way at every start (bootstrap).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..apiserver.authz import RBAC_GROUP
from ..apiserver.printing import AGE, NAME
from ..apiserver.registration import Kind
from ..apiserver.resource import Resource
from ..apiserver.strategy import Strategy

if TYPE_CHECKING:
    from ..apiserver.api import Api

AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
BUILD_STRATEGY_DOCKER_ROLE = "system:build-strategy-docker"


def _role_ref(obj: dict) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


CLUSTER_ROLES = Kind(
    Resource(RBAC_GROUP, "clusterroles", "clusterrole", "ClusterRole", False, path_segment_names=True),
    Strategy(),
    columns=[NAME, ("Created At", "string", "When it was created.", lambda o: o["metadata"].get("creationTimestamp", ""), 0)],
)

CLUSTER_ROLE_BINDINGS = Kind(
    Resource(RBAC_GROUP, "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False, path_segment_names=True),
    Strategy(),
    columns=[NAME, ("Role", "string", "The role it grants.", _role_ref, 0), AGE],
)

ROLE_BINDINGS = Kind(
    Resource(RBAC_GROUP, "rolebindings", "rolebinding", "RoleBinding", True, path_segment_names=True),
    Strategy(),
    columns=[NAME, ("Role", "string", "The role it grants.", _role_ref, 0), AGE],
)

_BOOTSTRAP = (
    (CLUSTER_ROLES, {
        "metadata": {"name": BUILD_STRATEGY_DOCKER_ROLE, "annotations": {AUTOUPDATE_ANNOTATION: "true"}},
        "rules": [{"apiGroups": ["build.openshift.io", ""], "resources": ["builds/docker", "builds/optimizeddocker"],
                   "verbs": ["create"]}],
    }),
    (CLUSTER_ROLE_BINDINGS, {
        "metadata": {"name": BUILD_STRATEGY_DOCKER_ROLE + "-binding", "annotations": {AUTOUPDATE_ANNOTATION: "true"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": BUILD_STRATEGY_DOCKER_ROLE},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}],
    }),
)


def bootstrap(api: "Api") -> None:
    """The bootstrap policy, reconciled as the apiserver does at start: created when missing, made whole again
    (rules, roleRef, subjects added) when its autoupdate annotation is not "false"."""
    for kind, wanted in _BOOTSTRAP:
        plural, name = kind.resource.plural, wanted["metadata"]["name"]
        current = api.store.get(plural, "", name)
        if current is None:
            api.create(kind.resource, None, copy.deepcopy(wanted))
            continue
        if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE_ANNOTATION) == "false":
            continue
        fixed = copy.deepcopy(current)
        for key in ("rules", "roleRef"):
            if key in wanted:
                fixed[key] = copy.deepcopy(wanted[key])
        if "subjects" in wanted:
            subjects = fixed.get("subjects") or []
            fixed["subjects"] = subjects + [s for s in wanted["subjects"] if s not in subjects]
        if fixed != current:
            api.update_prepared(kind.resource, current, fixed, "", False)
