"""The builder ServiceAccount and the secrets the cluster fills in (docs/openshift-fidelity.md B1, B2, B3).

Every namespace has `builder` (and `default`, `deployer`) with a managed `builder-dockercfg-xxxxx` secret
listed in its `secrets` and `imagePullSecrets`. Instantiate sets `dockerStrategy.pullSecret` from the
ServiceAccount's `secrets` that fit the base image; the build controller sets `spec.output.pushSecret` from
its `imagePullSecrets` when the build starts, and the build pushes with that secret only.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from osbs_local.sample_repo import make_git_repo
from testlib import wait_for

BUILD_API = "/apis/build.openshift.io/v1"
TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


def service_account(engine, namespace, name="builder"):
    return json.loads(engine.kubectl("get", "sa", name, "-o", "json", namespace=namespace).stdout)


def managed_secret_name(sa):
    return sa["metadata"]["annotations"]["openshift.io/internal-registry-pull-secret-ref"]


def dockercfg_secret(name, host, auth=b"osbs:wrong"):
    data = base64.b64encode(json.dumps({host: {"auth": base64.b64encode(auth).decode()}}).encode()).decode()
    return {"metadata": {"name": name}, "type": "kubernetes.io/dockercfg", "data": {".dockercfg": data}}


def link(http, engine, namespace, secret, fields=("secrets",)):
    """`oc secrets link builder SECRET [--for=pull]`: GET the ServiceAccount, append, PUT."""
    url = f"{engine.base}/api/v1/namespaces/{namespace}/serviceaccounts/builder"
    sa = http.get(url).json()
    for field in fields:
        sa[field] = (sa.get(field) or []) + [{"name": secret}]
    response = http.put(url, json=sa)
    assert response.status_code == 200, response.text


def wait_build(http, engine, namespace, name, timeout=180):
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{name}"
    deadline = time.monotonic() + timeout
    while True:
        build = http.get(url).json()
        if build.get("status", {}).get("phase") in TERMINAL:
            return build
        assert time.monotonic() < deadline, build
        time.sleep(0.3)


def test_every_namespace_has_a_builder_service_account_with_a_managed_dockercfg_secret(engine, http, namespace):
    names = engine.kubectl("get", "sa", "-o", "name", namespace=namespace).stdout.split()
    assert names == ["serviceaccount/builder", "serviceaccount/default", "serviceaccount/deployer"]
    table = engine.kubectl("get", "sa", "builder", namespace=namespace).stdout
    assert table.split()[:3] == ["NAME", "SECRETS", "AGE"] and table.split()[3:5] == ["builder", "1"]

    sa = service_account(engine, namespace)
    secret_name = managed_secret_name(sa)
    assert secret_name.startswith("builder-dockercfg-") and len(secret_name) == len("builder-dockercfg-") + 5
    assert sa["secrets"] == [{"name": secret_name}] and sa["imagePullSecrets"] == [{"name": secret_name}]
    secret = http.get(f"{engine.base}/api/v1/namespaces/{namespace}/secrets/{secret_name}").json()
    assert secret["type"] == "kubernetes.io/dockercfg"
    assert secret["metadata"]["annotations"] == {"openshift.io/internal-registry-auth-token.service-account": "builder",
                                                 "openshift.io/internal-registry-auth-token.binding": "bound"}
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ServiceAccount", "name": "builder", "uid": sa["metadata"]["uid"]}]
    entries = json.loads(base64.b64decode(secret["data"][".dockercfg"]))
    assert list(entries) == [engine.registry] and list(entries[engine.registry]) == ["auth"]
    described = engine.kubectl("describe", "sa", "builder", namespace=namespace).stdout
    assert secret_name in described

    # The namespace `osbs-local up` made has them too.
    assert managed_secret_name(service_account(engine, engine.namespace)).startswith("builder-dockercfg-")


def test_linking_is_a_normal_update_and_the_managed_secret_stays_listed(engine, http, namespace):
    sa = service_account(engine, namespace)
    managed = managed_secret_name(sa)
    assert http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets",
                     json=dockercfg_secret("extra", "quay.example")).status_code == 201
    link(http, engine, namespace, "extra", ("secrets", "imagePullSecrets"))
    sa = service_account(engine, namespace)
    assert sa["secrets"] == [{"name": managed}, {"name": "extra"}]
    assert sa["imagePullSecrets"] == [{"name": managed}, {"name": "extra"}]

    # A strategic merge patch of `secrets` merges by name (as `kubectl patch sa` does).
    engine.kubectl("patch", "sa", "builder", "-p", '{"secrets": [{"name": "more"}]}', namespace=namespace)
    assert [ref["name"] for ref in service_account(engine, namespace)["secrets"]] == [managed, "extra", "more"]

    # Dropping the managed secret from the lists: the controller lists it again.
    engine.kubectl("patch", "sa", "builder", "--type=merge", "-p", '{"imagePullSecrets": [{"name": "extra"}]}',
                   namespace=namespace)
    wait_for(lambda: {"name": managed} in (service_account(engine, namespace).get("imagePullSecrets") or []))

    # A deleted managed secret comes back under the name the ServiceAccount's annotation keeps; a deleted
    # builder ServiceAccount comes back.
    engine.kubectl("delete", "secret", managed, namespace=namespace)
    wait_for(lambda: http.get(f"{engine.base}/api/v1/namespaces/{namespace}/secrets/{managed}").status_code == 200)
    engine.kubectl("delete", "sa", "builder", namespace=namespace)
    wait_for(lambda: engine.kubectl("get", "sa", "builder", namespace=namespace, check=False).returncode == 0)


def test_instantiate_without_the_service_account_is_an_internal_error(engine, http, namespace, make_bc):
    bc = make_bc("nobody", serviceAccount="nobody")
    assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
    response = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/nobody/instantiate",
                         json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "nobody"}})
    assert response.status_code == 500, response.text
    status = response.json()
    assert status["reason"] == "InternalError"
    assert status["message"] == (f"Internal error occurred: error getting push/pull secrets for service account"
                                 f' {namespace}/nobody: serviceaccounts "nobody" not found')


def test_instantiate_sets_the_pull_secret_that_fits_the_base_image(engine, http, namespace, make_bc):
    registry_port = engine.registry.rsplit(":", 1)[1]
    other_host = f"localhost:{registry_port}"
    assert http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets",
                     json=dockercfg_secret("other-pull", other_host)).status_code == 201
    link(http, engine, namespace, "other-pull")  # `oc secrets link builder other-pull`: `secrets` only
    managed = managed_secret_name(service_account(engine, namespace))
    cases = {
        "managed": (f"{engine.registry}/osbs/busybox:latest", None, {"name": managed}),
        "linked": (f"{other_host}/osbs/busybox:latest", None, {"name": "other-pull"}),
        "none-fits": ("127.0.0.1:1/base:1", None, None),
        "own": (f"{other_host}/osbs/busybox:latest", {"name": "mine"}, {"name": "mine"}),
    }
    for name, (image, own, expected) in cases.items():
        strategy = {"from": {"kind": "DockerImage", "name": image}}
        if own:
            strategy["pullSecret"] = own
        bc = make_bc(name, strategy={"type": "Docker", "dockerStrategy": strategy})
        assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
        build = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}/instantiate",
                          json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}}).json()
        assert build["spec"]["strategy"]["dockerStrategy"].get("pullSecret") == expected, name
        stored = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}").json()
        assert stored["spec"]["strategy"]["dockerStrategy"].get("pullSecret") == own, "the BuildConfig is not changed"


def test_the_build_controller_fills_the_push_secret_when_the_build_starts(engine, http, namespace, make_bc):
    managed = managed_secret_name(service_account(engine, namespace))
    bc = make_bc("push", output={"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/app:1"}})
    assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
    created = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/push/instantiate",
                        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "push"}}).json()
    assert "pushSecret" not in created["spec"]["output"], "instantiate does not set it; the build controller does"
    build = wait_build(http, engine, namespace, "push-1", timeout=60)  # fails fast: no git repository
    assert build["spec"]["output"]["pushSecret"] == {"name": managed}
    stored = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/push").json()
    assert "pushSecret" not in stored["spec"]["output"]


@pytest.mark.slow
def test_the_build_pushes_with_the_secret_the_controller_chose(engine, http, namespace, make_bc, busybox_base_image, tmp_path):
    base, _ = busybox_base_image
    uri, _ = make_git_repo(tmp_path / "app", {"Dockerfile": f"FROM {base}\nRUN echo built > /built\n"})
    managed = managed_secret_name(service_account(engine, namespace))

    def build_of(name, strategy):
        bc = make_bc(name, source={"git": {"uri": uri, "ref": "main"}},
                     strategy={"type": "Docker", "dockerStrategy": strategy},
                     output={"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/{name}:1"}})
        assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
        http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}/instantiate",
                  json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
        return wait_build(http, engine, namespace, f"{name}-1")

    done = build_of("with-builder", {})
    assert done["status"]["phase"] == "Complete", done["status"]
    assert done["spec"]["output"]["pushSecret"] == {"name": managed}

    # The first imagePullSecret that fits the registry is the one used, and it alone: wrong credentials fail the push.
    assert http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets",
                     json=dockercfg_secret("wrong-push", engine.registry)).status_code == 201
    url = f"{engine.base}/api/v1/namespaces/{namespace}/serviceaccounts/builder"
    sa = http.get(url).json()
    sa["imagePullSecrets"] = [{"name": "wrong-push"}] + sa["imagePullSecrets"]
    assert http.put(url, json=sa).status_code == 200
    # The base image is pulled with the secret the BuildConfig names (else the same first fit would be used).
    refused = build_of("with-wrong", {"pullSecret": {"name": managed}})
    assert refused["spec"]["output"]["pushSecret"] == {"name": "wrong-push"}
    assert (refused["status"]["phase"], refused["status"]["reason"]) == ("Failed", "PushImageToRegistryFailed"), refused["status"]
