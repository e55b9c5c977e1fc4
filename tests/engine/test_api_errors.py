"""Status bodies and codes: 401, 404, 409 AlreadyExists/Conflict, 422, 400, 415, and dryRun=All writing nothing."""

from __future__ import annotations

import requests

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"


def assert_status(response: requests.Response, code: int, reason: str) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)
    return body


def test_401_without_or_with_a_wrong_token(engine):
    anonymous = engine.session()
    del anonymous.headers["Authorization"]
    assert_status(anonymous.get(f"{engine.base}/api/v1/namespaces"), 401, "Unauthorized")
    assert_status(engine.session(token="wrong").get(f"{engine.base}{BUILD_API}"), 401, "Unauthorized")
    assert_status(engine.session(token="wrong").post(f"{engine.base}/api/v1/namespaces", json={}), 401, "Unauthorized")


def test_404_messages_name_the_resource(engine, http, namespace):
    body = assert_status(http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/nope"), 404, "NotFound")
    assert body["message"] == 'buildconfigs.build.openshift.io "nope" not found'
    assert body["details"] == {"name": "nope", "group": "build.openshift.io", "kind": "buildconfigs"}
    body = assert_status(http.get(f"{engine.base}/api/v1/namespaces/{namespace}/configmaps/nope"), 404, "NotFound")
    assert body["message"] == 'configmaps "nope" not found'
    body = assert_status(http.post(f"{engine.base}/api/v1/namespaces/no-such-ns/configmaps",
                                   json={"metadata": {"name": "x"}}), 404, "NotFound")
    assert body["message"] == 'namespaces "no-such-ns" not found'
    assert_status(http.get(f"{engine.base}/apis/build.openshift.io/v1/namespaces/{namespace}/widgets"), 404, "NotFound")
    assert_status(http.get(f"{engine.base}/openapi/v2"), 404, "NotFound")
    assert_status(http.get(f"{engine.base}/openapi/v3"), 404, "NotFound")


def test_409_already_exists_and_conflict(engine, http, namespace, make_bc):
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    assert http.post(url, json=make_bc("dup")).status_code == 201
    body = assert_status(http.post(url, json=make_bc("dup")), 409, "AlreadyExists")
    assert body["message"] == 'buildconfigs.build.openshift.io "dup" already exists'
    current = http.get(f"{url}/dup").json()
    current["spec"]["runPolicy"] = "Parallel"
    assert http.put(f"{url}/dup", json=current).status_code == 200
    current["spec"]["runPolicy"] = "SerialLatestOnly"
    body = assert_status(http.put(f"{url}/dup", json=current), 409, "Conflict")
    assert body["message"].startswith('Operation cannot be fulfilled on buildconfigs.build.openshift.io "dup": the object has been modified')
    # A patch naming a stale resourceVersion is a conflict too.
    stale = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {"runPolicy": "Serial"}}
    assert_status(http.patch(f"{url}/dup", json=stale, headers={"Content-Type": "application/merge-patch+json"}), 409, "Conflict")


def test_422_invalid_objects_and_updates_without_resource_version(engine, http, namespace, make_bc):
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    broken = make_bc("broken")
    del broken["spec"]["strategy"]
    broken["spec"]["runPolicy"] = "Sometimes"
    body = assert_status(http.post(url, json=broken), 422, "Invalid")
    assert body["message"].startswith('BuildConfig.build.openshift.io "broken" is invalid: ')
    assert {c["field"] for c in body["details"]["causes"]} == {"spec.strategy", "spec.runPolicy"}
    assert body["details"]["kind"] == "BuildConfig"
    squash = make_bc("squash")
    squash["spec"]["strategy"]["dockerStrategy"]["imageOptimizationPolicy"] = "Squash"
    body = assert_status(http.post(url, json=squash), 422, "Invalid")
    assert body["details"]["causes"] == [{
        "field": "spec.strategy.dockerStrategy.imageOptimizationPolicy", "reason": "FieldValueInvalid",
        "message": "'Squash': must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'"}]

    assert http.post(url, json=make_bc("norv")).status_code == 201
    current = http.get(f"{url}/norv").json()
    del current["metadata"]["resourceVersion"]
    body = assert_status(http.put(f"{url}/norv", json=current), 422, "Invalid")
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in body["message"]
    # ConfigMaps (and Secrets, Namespaces) may be replaced unconditionally.
    cm_url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    assert http.post(cm_url, json={"metadata": {"name": "c"}, "data": {"a": "1"}}).status_code == 201
    assert http.put(f"{cm_url}/c", json={"metadata": {"name": "c"}, "data": {"a": "2"}}).json()["data"] == {"a": "2"}

    assert_status(http.post(f"{cm_url}?dryRun=Sometimes", json={"metadata": {"name": "d"}}), 422, "Invalid")
    assert_status(http.post(cm_url, json={"metadata": {"name": "Not_A_Name"}}), 422, "Invalid")


def test_build_spec_is_immutable_and_terminal_phases_stay(engine, http, namespace, make_bc):
    builds = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds"
    build = make_bc("direct")
    build["kind"] = "Build"
    build["spec"].pop("runPolicy", None)
    created = http.post(builds, json=build)
    assert created.status_code == 201, created.text
    # A patch carries no resourceVersion, so the running build's own status writes cannot make this a 409.
    spec_change = {"spec": {"source": {"git": {"ref": "other"}}}}
    body = assert_status(http.patch(f"{builds}/direct", json=spec_change,
                                    headers={"Content-Type": "application/merge-patch+json"}), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec"
    # Cancelling is a status write: the build ends Cancelled and stays so.
    patch = {"status": {"cancelled": True}}
    assert http.patch(f"{builds}/direct", json=patch, headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    import time

    deadline = time.monotonic() + 30
    while http.get(f"{builds}/direct").json()["status"]["phase"] not in ("Cancelled", "Failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    final = http.get(f"{builds}/direct").json()
    if final["status"]["phase"] == "Cancelled":
        assert final["status"]["reason"] == "CancelledBuild"
    final["status"]["phase"] = "Running"
    assert_status(http.put(f"{builds}/direct", json=final), 422, "Invalid")


def test_instantiate_errors(engine, http, namespace, make_bc):
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    # The build strategy admission reads the BuildConfig first and wraps its 404 (OAS strategyrestrictions, admission.NewForbidden).
    ghost = assert_status(http.post(f"{url}/ghost/instantiate", json={"metadata": {"name": "ghost"}}), 403, "Forbidden")
    assert ghost["message"] == 'buildconfigs.build.openshift.io "ghost" is forbidden: buildconfigs.build.openshift.io "ghost" not found'
    assert ghost["details"] == {"name": "ghost", "group": "build.openshift.io", "kind": "buildconfigs"}
    paused = make_bc("paused")
    paused["metadata"]["annotations"] = {"openshift.io/build-config.paused": "true"}
    assert http.post(url, json=paused).status_code == 201
    assert_status(http.post(f"{url}/paused/instantiate", json={"metadata": {"name": "paused"}}), 400, "BadRequest")
    assert http.post(url, json=make_bc("stale")).status_code == 201
    body = assert_status(http.post(f"{url}/stale/instantiate", json={"metadata": {"name": "stale"}, "lastVersion": 3}),
                         400, "BadRequest")
    assert "does not match the build request LastVersion(3)" in body["message"]
    unresolved = make_bc("unresolved", strategy={"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "missing:1"}}})
    assert http.post(url, json=unresolved).status_code == 201
    body = assert_status(http.post(f"{url}/unresolved/instantiate", json={"metadata": {"name": "unresolved"}}), 422, "Invalid")
    assert body["details"]["kind"] == "ImageStreamTag" and body["details"]["causes"][0]["field"] == "from"
    assert http.get(f"{url}/unresolved").json()["status"]["lastVersion"] == 0


def test_other_client_errors(engine, http, namespace):
    cm_url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    assert_status(http.get(cm_url, params={"labelSelector": "a in (b"}), 400, "BadRequest")
    body = assert_status(http.get(cm_url, params={"fieldSelector": "spec.x=1"}), 400, "BadRequest")
    assert '"spec.x" is not a known field selector' in body["message"]
    assert http.post(cm_url, json={"metadata": {"name": "p"}}).status_code == 201
    assert_status(http.patch(f"{cm_url}/p", data="{}", headers={"Content-Type": "text/plain"}), 415, "UnsupportedMediaType")
    assert_status(http.post(cm_url, data="{not json", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    assert_status(http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamtags/no-colon"), 400, "BadRequest")


def test_dry_run_writes_nothing(engine, http, namespace, make_bc):
    cm_url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    created = http.post(f"{cm_url}?dryRun=All", json={"metadata": {"name": "dry"}, "data": {"a": "1"}})
    assert created.status_code == 201 and created.json()["metadata"]["uid"]
    assert_status(http.get(f"{cm_url}/dry"), 404, "NotFound")

    assert http.post(cm_url, json={"metadata": {"name": "wet"}, "data": {"a": "1"}}).status_code == 201
    before = http.get(f"{cm_url}/wet").json()
    changed = http.put(f"{cm_url}/wet?dryRun=All", json={"metadata": {"name": "wet"}, "data": {"a": "2"}})
    assert changed.status_code == 200 and changed.json()["data"] == {"a": "2"}
    patched = http.patch(f"{cm_url}/wet?dryRun=All", json={"data": {"b": "3"}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert patched.json()["data"] == {"a": "1", "b": "3"}
    assert http.delete(f"{cm_url}/wet?dryRun=All").status_code == 200
    assert http.get(f"{cm_url}/wet").json() == before

    assert http.post(f"{bc_url}?dryRun=All", json=make_bc("drybc")).status_code == 201
    assert_status(http.get(f"{bc_url}/drybc"), 404, "NotFound")
    assert http.post(bc_url, json=make_bc("realbc")).status_code == 201
    build = http.post(f"{bc_url}/realbc/instantiate?dryRun=All", json={"metadata": {"name": "realbc"}})
    assert build.status_code == 201 and build.json()["metadata"]["name"] == "realbc-1"
    assert http.get(f"{bc_url}/realbc").json()["status"]["lastVersion"] == 0
    assert http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds").json()["items"] == []


def test_list_version_options(engine, http, namespace):
    cm_url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    current = http.get(cm_url).json()["metadata"]["resourceVersion"]
    assert http.get(cm_url, params={"resourceVersion": "0"}).status_code == 200
    assert http.get(cm_url, params={"resourceVersion": current, "resourceVersionMatch": "NotOlderThan"}).status_code == 200
    body = assert_status(http.get(cm_url, params={"resourceVersionMatch": "Exact"}), 422, "Invalid")
    assert body["details"]["kind"] == "ListOptions"
    assert_status(http.get(cm_url, params={"resourceVersion": "0", "resourceVersionMatch": "Exact"}), 422, "Invalid")
    assert_status(http.get(cm_url, params={"continue": "abc", "resourceVersion": "5"}), 400, "BadRequest")
    http.post(cm_url, json={"metadata": {"name": "newer"}})
    assert_status(http.get(cm_url, params={"resourceVersion": current, "resourceVersionMatch": "Exact"}), 410, "Expired")


def test_clone_and_imagestream_secrets(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("cl", {"team": "t"}))
    http.post(f"{bc_url}/cl/instantiate", json={"metadata": {"name": "cl"}})
    clone = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/cl-1/clone",
                      json={"kind": "BuildRequest", "metadata": {"name": "cl-1"}})
    assert clone.status_code == 201, clone.text
    assert clone.json()["metadata"]["name"] == "cl-2" and clone.json()["metadata"]["labels"]["team"] == "t"
    assert http.get(f"{bc_url}/cl").json()["status"]["lastVersion"] == 2
    http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json={
        "metadata": {"name": "pull"}, "type": "kubernetes.io/dockercfg", "stringData": {".dockercfg": "{}"}})
    http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json={"metadata": {"name": "opaque"}, "stringData": {"a": "b"}})
    http.post(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams", json={"metadata": {"name": "s"}})
    listed = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams/s/secrets").json()
    # Every docker secret of the namespace: "pull", and the managed ones of builder, default and deployer that
    # OpenShift's controllers put in every namespace (docs/openshift-fidelity.md B1).
    names = [s["metadata"]["name"] for s in listed["items"]]
    assert listed["kind"] == "SecretList" and "opaque" not in names and names[-1] == "pull"
    assert sorted(name.rsplit("-", 1)[0] for name in names[:-1]) == [
        "builder-dockercfg", "default-dockercfg", "deployer-dockercfg"]


def test_build_details_sets_only_the_revision(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    bc = make_bc("det", runPolicy="Serial")
    bc["metadata"]["annotations"] = {"openshift.io/build-config.paused": "false"}
    http.post(bc_url, json=bc)
    build = http.post(f"{bc_url}/det/instantiate", json={"metadata": {"name": "det"}}).json()
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/det-1"
    import time

    deadline = time.monotonic() + 60
    while http.get(url).json()["status"]["phase"] not in ("Failed", "Complete"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    current = http.get(url).json()
    assert "revision" not in current["spec"]  # the failed clone recorded no commit
    current["spec"]["revision"] = {"type": "Git", "git": {"commit": "1" * 40}}
    current["spec"]["source"]["git"]["ref"] = "ignored"  # details changes nothing but the revision
    current["metadata"]["labels"]["ignored"] = "yes"
    updated = http.put(f"{url}/details", json=current)
    assert updated.status_code == 200, updated.text
    assert updated.json()["spec"]["revision"]["git"]["commit"] == "1" * 40
    assert updated.json()["spec"]["source"]["git"]["ref"] == build["spec"]["source"]["git"]["ref"]
    assert "ignored" not in updated.json()["metadata"]["labels"]
    again = updated.json()
    again["spec"]["revision"]["git"]["commit"] = "2" * 40
    assert_status(http.put(f"{url}/details", json=again), 422, "Invalid")
    assert http.get(f"{url}/details").status_code == 405


def test_concurrent_instantiates_get_distinct_numbers(engine, namespace, make_bc):
    from concurrent.futures import ThreadPoolExecutor

    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    engine.session().post(bc_url, json=make_bc("busy", runPolicy="Parallel"))

    def instantiate(_):
        response = engine.session().post(f"{bc_url}/busy/instantiate", json={"metadata": {"name": "busy"}})
        assert response.status_code == 201, response.text
        return response.json()["metadata"]["name"]

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(instantiate, range(24)))
    assert sorted(names, key=lambda n: int(n.rsplit("-", 1)[1])) == [f"busy-{n}" for n in range(1, 25)]
    assert engine.session().get(f"{bc_url}/busy").json()["status"]["lastVersion"] == 24


def test_an_object_name_with_a_trailing_newline_is_invalid(engine, http, namespace):
    created = http.post(f"{engine.base}/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "ends-in-newline\n"}})
    assert created.status_code == 422, created.text
