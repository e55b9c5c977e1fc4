"""RBAC, as far as osbs-local authorizes: is a user allowed a verb on a resource (a SubjectAccessReview).

The engine asks only where OpenShift's admission asks (the build strategy check, kinds/build/admission.py); every
other request of an authenticated user is allowed, as if the user were an admin of every namespace. The answer
comes from the ClusterRoleBindings and the namespace's RoleBindings whose subjects name the user, one of its
groups, or its ServiceAccount, and the rules of the ClusterRoles they refer to (Kubernetes
plugin/pkg/auth/authorizer/rbac: appliesTo, RuleAllows). Roles (namespaced) are not served, so a RoleBinding to a
Role grants nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .authn import UserInfo

if TYPE_CHECKING:
    from .api import Api

RBAC_GROUP = "rbac.authorization.k8s.io"


def allowed(api: "Api", user: Optional[UserInfo], verb: str, group: str, resource: str, subresource: str,
            namespace: str) -> bool:
    if user is None or user.is_cluster_admin:
        return True
    bindings = [b for b, _ in api.store.scan("clusterrolebindings")]
    bindings += [b for b, _ in api.store.scan("rolebindings", namespace)]
    for binding in bindings:
        role_ref = binding.get("roleRef") or {}
        if role_ref.get("kind") != "ClusterRole" or not _applies_to(user, binding.get("subjects") or [], namespace):
            continue
        role = api.store.peek("clusterroles", "", role_ref.get("name", ""))
        if role and any(_rule_allows(rule, verb, group, resource, subresource) for rule in role.get("rules") or []):
            return True
    return False


def _applies_to(user: UserInfo, subjects: list, binding_namespace: str) -> bool:
    for subject in subjects:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == user.name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount" and user.service_account == (subject.get("namespace") or binding_namespace, name):
            return True
    return False


def _rule_allows(rule: dict, verb: str, group: str, resource: str, subresource: str) -> bool:
    wanted = f"{resource}/{subresource}" if subresource else resource
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    return ((verb in verbs or "*" in verbs) and (group in groups or "*" in groups)
            and (wanted in resources or "*" in resources or (subresource and f"{resource}/*" in resources)))
