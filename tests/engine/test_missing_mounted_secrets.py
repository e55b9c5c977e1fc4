"""A Build whose pull or source secret does not exist stays Pending, without a reason, until the secret exists.

OpenShift mounts a build's push, pull and source secrets into the build pod as secret volumes that are not
optional (OCM pkg/build/controller/strategy/util.go setupDockerSecrets, setupSourceSecrets). The kubelet cannot
start a pod whose secret volume is missing, so the pod stays Pending and so does the build; the build controller
adds a reason only for the push secret (build_controller.go handleActiveBuild), so these builds have none. Nothing
fails them; once the secret exists the pod starts. The push secret's case is in test_missing_push_secret.py.
"""

from __future__ import annotations

import base64
import time

import pytest

from testlib import wait_for

BUILD_API = "/apis/build.openshift.io/v1"
TERMINAL = ("Complete", "Failed", "Error", "Cancelled")

SECRET_FIELDS = {
    "sourceSecret": lambda spec, name: spec["source"].update(sourceSecret={"name": name}),
    "pullSecret": lambda spec, name: spec["strategy"]["dockerStrategy"].update(pullSecret={"name": name}),
}


def secret_body(name):
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return {"metadata": {"name": name}, "type": "kubernetes.io/basic-auth",
            "data": {"username": encode("reader"), "password": encode("not-a-real-password")}}


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS))
def test_a_build_whose_pod_cannot_mount_a_secret_stays_pending_until_it_exists(engine, http, namespace, make_bc, field):
    name = "mounts-%s" % field.lower()
    secret = "%s-later" % field.lower()
    bc = make_bc(name)
    SECRET_FIELDS[field](bc["spec"], secret)
    assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
    started = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}/instantiate",
                        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
    assert started.status_code == 201, started.text
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{name}-1"

    wait_for(lambda: http.get(url).json()["status"].get("phase") != "New", what=f"{name}-1 to leave New")
    time.sleep(3)  # several controller passes: still Pending, never started, never failed
    status = http.get(url).json()["status"]
    assert status["phase"] == "Pending", status
    assert "reason" not in status and "startTimestamp" not in status, status

    created = http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json=secret_body(secret))
    assert created.status_code == 201, created.text
    # The pod starts: the build runs and ends (make_bc's git URI does not exist, so it fails fetching the source).
    status = wait_for(lambda: (lambda s: s if s["phase"] in TERMINAL else None)(http.get(url).json()["status"]),
                      timeout=60, what=f"{name}-1 to run once its secret exists")
    assert "startTimestamp" in status, status
    assert (status["phase"], status["reason"]) == ("Failed", "FetchSourceFailed"), status
