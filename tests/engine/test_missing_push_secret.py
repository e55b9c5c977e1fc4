"""A Build whose push secret does not exist stays Pending (docs/openshift-fidelity.md C3).

OpenShift creates the build pod anyway; the kubelet cannot mount the missing secret, so the pod stays
Pending and the build controller marks the build Pending with reason MissingPushSecret and message
"Missing push secret." (OCM pkg/build/controller/build/build_controller.go handleActiveBuild, the PodPending
case). Once the secret exists the kubelet mounts it, the pod runs and the build moves on: nothing fails it.
"""

from __future__ import annotations

import json
import time

import pytest

from osbs_local.sample_repo import make_git_repo
from testlib import wait_for

BUILD_API = "/apis/build.openshift.io/v1"
TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


def build_url(engine, namespace, name):
    return f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{name}"


def start_build(engine, http, namespace, make_bc, name, **spec):
    spec.setdefault("output", {"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/{name}:1"},
                               "pushSecret": {"name": "not-yet"}})
    created = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=make_bc(name, **spec))
    assert created.status_code == 201, created.text
    started = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}/instantiate",
                        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
    assert started.status_code == 201, started.text
    return f"{name}-1"


def wait_missing_push_secret(engine, http, namespace, name):
    url = build_url(engine, namespace, name)

    def pending_without_secret():
        status = http.get(url).json()["status"]
        return status if status.get("reason") == "MissingPushSecret" else None

    status = wait_for(pending_without_secret, what=f"{name} Pending with MissingPushSecret")
    assert (status["phase"], status["message"]) == ("Pending", "Missing push secret."), status
    return status


def create_push_secret(engine, http, namespace, name):
    """A copy of the builder ServiceAccount's managed dockercfg secret under the name the build asked for."""
    sa = json.loads(engine.kubectl("get", "sa", "builder", "-o", "json", namespace=namespace).stdout)
    managed = sa["metadata"]["annotations"]["openshift.io/internal-registry-pull-secret-ref"]
    source = http.get(f"{engine.base}/api/v1/namespaces/{namespace}/secrets/{managed}").json()
    created = http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json={
        "metadata": {"name": name}, "type": source["type"], "data": source["data"]})
    assert created.status_code == 201, created.text


def test_a_build_with_a_missing_push_secret_stays_pending_and_is_not_failed(engine, http, namespace, make_bc):
    name = start_build(engine, http, namespace, make_bc, "waits")
    wait_missing_push_secret(engine, http, namespace, name)
    time.sleep(3)  # several controller passes: still Pending, never started
    status = http.get(build_url(engine, namespace, name)).json()["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "MissingPushSecret"), status
    assert "startTimestamp" not in status


def test_a_build_waiting_for_its_push_secret_can_be_cancelled(engine, http, namespace, make_bc):
    name = start_build(engine, http, namespace, make_bc, "cancel-waiting")
    wait_missing_push_secret(engine, http, namespace, name)
    url = build_url(engine, namespace, name)
    current = http.get(url).json()
    current["status"]["cancelled"] = True
    assert http.put(url, json=current).status_code == 200
    status = wait_for(lambda: (lambda s: s if s["phase"] in TERMINAL else None)(http.get(url).json()["status"]),
                        what="the cancelled build to end")
    assert (status["phase"], status["reason"]) == ("Cancelled", "CancelledBuild"), status


@pytest.mark.slow
def test_a_build_pending_for_its_push_secret_proceeds_once_the_secret_exists(
        engine, http, namespace, make_bc, busybox_base_image, tmp_path):
    base, _ = busybox_base_image
    uri, _ = make_git_repo(tmp_path / "app", {"Dockerfile": f"FROM {base}\nRUN echo built > /built\n"})
    name = start_build(engine, http, namespace, make_bc, "proceeds", source={"git": {"uri": uri, "ref": "main"}},
                       strategy={"type": "Docker", "dockerStrategy": {}})
    wait_missing_push_secret(engine, http, namespace, name)
    create_push_secret(engine, http, namespace, "not-yet")
    url = build_url(engine, namespace, name)
    status = wait_for(lambda: (lambda s: s if s["phase"] in TERMINAL else None)(http.get(url).json()["status"]),
                        timeout=180, what="the build to end")
    assert status["phase"] == "Complete", status
    assert "reason" not in status and "message" not in status, status
    assert status["output"]["to"]["imageDigest"].startswith("sha256:")
