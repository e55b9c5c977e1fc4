"""A user without the Docker build strategy permission, against osbs-local's build strategy admission.

On OpenShift an administrator can take Docker builds away from every user (the bootstrap binding of
`system:build-strategy-docker` to system:authenticated, with its autoupdate annotation set to "false") and grant
the role back to whom they choose. The 403 OpenShift then sends says only "build strategy Docker is not allowed"
(OAS strategyrestrictions/admission.go notAllowed); osbs_buildconfig's message names the permission it needed,
builds/optimizeddocker for a non-None imageOptimizationPolicy (docs/openshift-fidelity.md C5), and the role.
"""

from __future__ import annotations

import json

import pytest

from testlib import docker_builds_taken_away, own_namespace, run_module

class _AsServiceAccount:
    """The engine's module environment with a ServiceAccount's token instead of the admin kubeconfig."""

    def __init__(self, engine, token):
        self.engine, self.token = engine, token

    def module_env(self, collections):
        env = self.engine.module_env(collections)
        env.pop("K8S_AUTH_KUBECONFIG", None)
        env.update(K8S_AUTH_HOST=self.engine.base, K8S_AUTH_API_KEY=self.token, K8S_AUTH_SSL_CA_CERT=self.engine.ca)
        return env


@pytest.fixture
def restricted(osbs_engine):
    """A namespace with a ServiceAccount `ci-bot`, on a cluster where Docker builds were taken from everyone."""
    with own_namespace(osbs_engine, "restricted") as namespace:
        osbs_engine.kubectl("create", "serviceaccount", "ci-bot", namespace=namespace)
        token = osbs_engine.kubectl("create", "token", "ci-bot", namespace=namespace).stdout.strip()
        with docker_builds_taken_away(osbs_engine):
            yield namespace, _AsServiceAccount(osbs_engine, token)


@pytest.mark.parametrize("policy, permission", [
    ("SkipLayers", "builds/optimizeddocker (imageOptimizationPolicy SkipLayers)"),
    ("None", "builds/docker"),
])
def test_a_403_of_the_build_strategy_check_names_the_permission_and_the_role(osbs_engine, restricted, policy, permission):
    namespace, as_ci_bot = restricted
    args = dict(namespace=namespace, git_uri="https://git.example.com/osbs/app.git", git_branch="main", git_commit="a" * 40,
                base_image="registry.example.com/osbs/base@sha256:" + "1" * 64, image="osbs/app",
                registry_uri="registry.example.com", image_optimization_policy=policy)
    writes = osbs_engine.writes()
    result = run_module(as_ci_bot, "osbs_buildconfig", args)
    assert result["failed"] is True, result
    assert result["msg"].startswith('buildconfigs.build.openshift.io "app-main-'), result["msg"]
    assert "is forbidden: build strategy Docker is not allowed" in result["msg"]
    assert ("this needs permission to create %s in group build.openshift.io in namespace %s" % (permission, namespace)) in result["msg"]
    assert "The cluster role system:build-strategy-docker grants it" in result["msg"]
    assert "oc adm policy add-role-to-user system:build-strategy-docker USER -n %s" % namespace in result["msg"]
    assert "HTTP 403 Forbidden" in result["msg"]
    assert result["status"]["reason"] == "Forbidden"
    assert osbs_engine.writes() == writes + 1  # the refused POST of the BuildConfig, and nothing else
    assert json.loads(osbs_engine.kubectl("get", "buildconfigs", "-o", "json", namespace=namespace).stdout)["items"] == []

    # `oc policy add-role-to-user system:build-strategy-docker -z ci-bot`: the same run now writes the BuildConfig.
    osbs_engine.kubectl("create", "rolebinding", "ci-bot-docker-builds", "--clusterrole=system:build-strategy-docker",
                        "--serviceaccount=%s:ci-bot" % namespace, namespace=namespace)
    granted = run_module(as_ci_bot, "osbs_buildconfig", args)
    assert granted.get("failed") is not True, granted.get("msg")
    assert granted["changed"] is True
