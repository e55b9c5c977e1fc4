"""The build strategy check (OAS pkg/build/apiserver/admission/strategyrestrictions/admission.go) with real users.

A ServiceAccount's token comes from the TokenRequest API (`kubectl create token`). By default the bootstrap
binding `system:build-strategy-docker-binding` lets every authenticated user create Docker builds; an
administrator who takes that away (autoupdate annotation "false", the group removed) leaves users without
builds/docker and builds/optimizeddocker, and every BuildConfig or Build write and every instantiate of a Docker
strategy is refused with OpenShift's 403 until a binding grants the role again.
"""

from __future__ import annotations

from testlib import docker_builds_taken_away


BUILD_API = "/apis/build.openshift.io/v1"
RBAC_API = "/apis/rbac.authorization.k8s.io/v1"
BINDING = "system:build-strategy-docker-binding"


def service_account_token(engine, namespace, name="ci-bot"):
    engine.kubectl("create", "serviceaccount", name, namespace=namespace)
    return engine.kubectl("create", "token", name, namespace=namespace).stdout.strip()


def as_user(engine, token):
    return engine.session(token)


def docker_bc(name, policy=None):
    strategy = {"type": "Docker", "dockerStrategy": {}}
    if policy:
        strategy["dockerStrategy"]["imageOptimizationPolicy"] = policy
    return {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": name},
            "spec": {"source": {"git": {"uri": "file:///nonexistent/repo.git", "ref": "main"}}, "strategy": strategy,
                     "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:1/out/app:latest"}}}}


def forbidden(response, plural, name):
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["reason"] == "Forbidden", body
    assert body["message"] == f'{plural}.build.openshift.io "{name}" is forbidden: build strategy Docker is not allowed', body
    return body


def test_the_bootstrap_binding_lets_every_authenticated_user_build_with_docker(engine, http, namespace):
    binding = http.get(f"{engine.base}{RBAC_API}/clusterrolebindings/{BINDING}").json()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:build-strategy-docker"}
    assert {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"} in binding["subjects"]
    role = http.get(f"{engine.base}{RBAC_API}/clusterroles/system:build-strategy-docker").json()
    assert sorted(role["rules"][0]["resources"]) == ["builds/docker", "builds/optimizeddocker"]

    user = as_user(engine, service_account_token(engine, namespace))
    created = user.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=docker_bc("allowed", "SkipLayers"))
    assert created.status_code == 201, created.text


def test_without_the_docker_strategy_role_writes_and_instantiate_are_refused_until_a_binding_grants_it(engine, http, namespace):
    user = as_user(engine, service_account_token(engine, namespace))
    bcs = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    assert http.post(bcs, json=docker_bc("made-by-admin")).status_code == 201
    with docker_builds_taken_away(engine):
        for name, policy in (("skip-layers", "SkipLayers"), ("plain", None)):
            forbidden(user.post(bcs, json=docker_bc(name, policy)), "buildconfigs", name)
        forbidden(user.post(f"{bcs}/made-by-admin/instantiate", json={"kind": "BuildRequest", "metadata": {"name": "made-by-admin"}}),
                  "buildconfigs", "made-by-admin")
        # An update is checked too, whatever it changes (here a label).
        bc = user.get(f"{bcs}/made-by-admin").json()
        bc["metadata"].setdefault("labels", {})["touched"] = "yes"
        forbidden(user.put(f"{bcs}/made-by-admin", json=bc), "buildconfigs", "made-by-admin")
        # A cluster admin passes every check.
        assert http.post(bcs, json=docker_bc("by-admin", "SkipLayers")).status_code == 201
        assert http.get(f"{bcs}/skip-layers").status_code == 404  # nothing was written for the refused user

        # `oc policy add-role-to-user system:build-strategy-docker -z ci-bot`: the role, bound in this namespace.
        granted = http.post(f"{engine.base}{RBAC_API}/namespaces/{namespace}/rolebindings", json={
            "metadata": {"name": "ci-bot-docker-builds"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:build-strategy-docker"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci-bot", "namespace": namespace}]})
        assert granted.status_code == 201, granted.text
        assert user.post(bcs, json=docker_bc("skip-layers", "SkipLayers")).status_code == 201
        assert user.post(f"{bcs}/made-by-admin/instantiate",
                         json={"kind": "BuildRequest", "metadata": {"name": "made-by-admin"}}).status_code == 201


def test_service_account_tokens_end_with_their_service_account_and_are_at_least_ten_minutes(engine, http, namespace):
    token = service_account_token(engine, namespace, "short-lived")
    user = as_user(engine, token)
    assert user.get(f"{engine.base}/api/v1/namespaces/{namespace}/configmaps").status_code == 200
    too_short = http.post(f"{engine.base}/api/v1/namespaces/{namespace}/serviceaccounts/short-lived/token",
                          json={"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": {"expirationSeconds": 60}})
    assert too_short.status_code == 422, too_short.text
    engine.kubectl("delete", "serviceaccount", "short-lived", namespace=namespace)
    assert user.get(f"{engine.base}/api/v1/namespaces/{namespace}/configmaps").status_code == 401

