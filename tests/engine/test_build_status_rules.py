"""What the Build strategy does to status on every write, and what instantiate copies from the request.

OAS pkg/build/apiserver/registry/build/strategy.go: PrepareForUpdate keeps a Failed build's reason and message
(only OutOfMemoryKilled may replace them), and manageConditions keeps one condition per phase: the current one
True with the status's reason and message, every other one False with both cleared. OAS
InstantiateREST.Create gives a BuildRequest without triggeredBy the cause "Manually triggered" (buildconfiginstantiate/
rest.go); clone does not, and the generator copies the request's causes unchanged (generator.go).
"""

from __future__ import annotations

import base64

from testlib import wait_for

BUILD_API = "/apis/build.openshift.io/v1"


def failed_build(engine, http, namespace, make_bc, name, push_secret=None):
    bc = make_bc(name)
    if push_secret:
        bc["spec"]["output"]["pushSecret"] = {"name": push_secret}
    assert http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=bc).status_code == 201
    started = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{name}/instantiate",
                        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
    assert started.status_code == 201, started.text
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{name}-1"
    if push_secret:
        wait_for(lambda: http.get(url).json()["status"].get("reason") == "MissingPushSecret", what=f"{name}-1 Pending")
        created = http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json={
            "metadata": {"name": push_secret}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(b'{"auths": {}}').decode()}})
        assert created.status_code == 201, created.text
    # make_bc's git URI does not exist: the build fails fetching its source.
    wait_for(lambda: http.get(url).json()["status"]["phase"] == "Failed", what=f"{name}-1 to fail")
    return started.json(), url


def test_instantiate_without_triggered_by_is_manually_triggered_and_a_clone_keeps_the_requests(engine, http, namespace, make_bc):
    build, _ = failed_build(engine, http, namespace, make_bc, "no-cause")
    assert build["spec"]["triggeredBy"] == [{"message": "Manually triggered"}], build["spec"]
    clone = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/no-cause-1/clone",
                      json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "no-cause-1"}})
    assert clone.status_code == 201, clone.text
    assert "triggeredBy" not in clone.json()["spec"], clone.json()["spec"]


def test_conditions_follow_the_phase_and_only_the_current_one_has_a_reason(engine, http, namespace, make_bc):
    # Pending with a reason first (MissingPushSecret), then Running and Failed once the secret exists.
    _, url = failed_build(engine, http, namespace, make_bc, "conditions", push_secret="conditions-push")
    status = http.get(url).json()["status"]
    by_type = {c["type"]: c for c in status["conditions"]}
    assert {"Pending", "Running", "Failed"} <= set(by_type), status["conditions"]
    assert by_type["Failed"]["status"] == "True"
    assert (by_type["Failed"]["reason"], by_type["Failed"]["message"]) == (status["reason"], status["message"])
    earlier = [c for t, c in by_type.items() if t != "Failed"]
    assert earlier, status["conditions"]
    for condition in earlier:
        assert condition["status"] == "False" and "reason" not in condition and "message" not in condition, condition


def test_a_failed_builds_reason_and_message_stay_unless_it_was_out_of_memory(engine, http, namespace, make_bc):
    _, url = failed_build(engine, http, namespace, make_bc, "failed-stays")
    build = http.get(url).json()
    reason, message = build["status"]["reason"], build["status"]["message"]
    build["status"].update(reason="GenericBuildFailed", message="rewritten by another writer")
    updated = http.put(url, json=build)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["status"]["reason"], updated.json()["status"]["message"]) == (reason, message)

    build = updated.json()
    build["status"].update(reason="OutOfMemoryKilled", message="The build pod was killed due to an out of memory condition.")
    updated = http.put(url, json=build)
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"]["reason"] == "OutOfMemoryKilled"
    assert updated.json()["status"]["message"] == "The build pod was killed due to an out of memory condition."
