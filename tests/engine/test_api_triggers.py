"""Trigger bookkeeping (docs/openshift-fidelity.md, B5) and ImageStreamTag writes, driven through the API.

Tag images are recorded with imagestreams/status writes (what the integrated registry does on a push), so
these tests need no image builds; test_e2e_trigger.py covers the same path with real images.
"""

from __future__ import annotations

import time

import pytest

from testlib import set_tag_image

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def builds_of(http, engine, namespace, bc):
    items = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds",
                     params={"labelSelector": f"openshift.io/build-config.name={bc}"}).json()["items"]
    return sorted(items, key=lambda b: int(b["metadata"]["annotations"]["openshift.io/build.number"]))


def wait_for_builds(http, engine, namespace, bc, count, settle=1.5):
    """Wait until `count` builds exist, then a little longer so that an extra one would show up."""
    deadline = time.monotonic() + 20
    while len(builds_of(http, engine, namespace, bc)) < count:
        assert time.monotonic() < deadline, f"expected {count} builds of {bc}"
        time.sleep(0.1)
    time.sleep(settle)
    return builds_of(http, engine, namespace, bc)


def image_change_bc(make_bc, name, tag, **trigger):
    return make_bc(name, strategy={"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": tag}}},
                   triggers=[{"type": "ImageChange", "imageChange": trigger}])


@pytest.mark.slow
def test_image_change_fires_once_per_new_image(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    assert http.post(bc_url, json=image_change_bc(make_bc, "ic", "src:latest")).status_code == 201
    assert wait_for_builds(http, engine, namespace, "ic", 0) == []  # nothing to build from yet
    pull_a = set_tag_image(http, engine, namespace, "src", "latest", DIGEST_A)
    first = wait_for_builds(http, engine, namespace, "ic", 1)
    assert len(first) == 1
    assert first[0]["spec"]["triggeredBy"] == [{"message": "Image change", "imageChangeBuild": {
        "imageID": pull_a, "fromRef": {"kind": "ImageStreamTag", "name": "src:latest", "namespace": namespace}}}]
    assert first[0]["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": pull_a}
    record = http.get(f"{bc_url}/ic").json()["status"]["imageChangeTriggers"]
    assert record[0]["lastTriggeredImageID"] == pull_a and record[0]["lastTriggerTime"]
    set_tag_image(http, engine, namespace, "src", "other", DIGEST_B)  # another tag of the stream changes
    assert len(wait_for_builds(http, engine, namespace, "ic", 1)) == 1
    pull_b = set_tag_image(http, engine, namespace, "src", "latest", DIGEST_B)
    second = wait_for_builds(http, engine, namespace, "ic", 2)
    assert len(second) == 2 and second[1]["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == pull_b


@pytest.mark.slow
def test_paused_triggers_and_recorded_images_do_not_fire(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    pull_a = set_tag_image(http, engine, namespace, "base", "1", DIGEST_A)
    http.post(bc_url, json=image_change_bc(make_bc, "paused-trigger", "base:1", paused=True))
    http.post(bc_url, json=image_change_bc(make_bc, "seen", "base:1", lastTriggeredImageID=pull_a))
    paused_bc = make_bc("paused-bc", strategy={"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "base:1"}}},
                        triggers=[{"type": "ImageChange", "imageChange": {}}])
    paused_bc["metadata"]["annotations"] = {"openshift.io/build-config.paused": "true"}
    http.post(bc_url, json=paused_bc)
    for name in ("paused-trigger", "seen", "paused-bc"):
        assert wait_for_builds(http, engine, namespace, name, 0, settle=0.5) == []
    set_tag_image(http, engine, namespace, "base", "1", DIGEST_B)
    assert len(wait_for_builds(http, engine, namespace, "seen", 1)) == 1  # a newer image than the recorded one
    assert builds_of(http, engine, namespace, "paused-trigger") == [] and builds_of(http, engine, namespace, "paused-bc") == []


def test_manual_build_records_the_current_image_so_the_trigger_does_not_repeat_it(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    body = image_change_bc(make_bc, "manual", "img:latest")
    body["spec"]["triggers"][0]["imageChange"]["paused"] = True  # created paused: nothing fires yet
    http.post(bc_url, json=body)
    pull_a = set_tag_image(http, engine, namespace, "img", "latest", DIGEST_A)
    build = http.post(f"{bc_url}/manual/instantiate", json={"metadata": {"name": "manual"}}).json()
    assert build["spec"]["strategy"]["dockerStrategy"]["from"]["name"] == pull_a
    bc = http.get(f"{bc_url}/manual").json()
    assert bc["status"]["imageChangeTriggers"][0]["lastTriggeredImageID"] == pull_a
    bc["spec"]["triggers"][0]["imageChange"]["paused"] = False
    assert http.put(f"{bc_url}/manual", json=bc).status_code == 200
    assert len(wait_for_builds(http, engine, namespace, "manual", 1)) == 1
    # Instantiating for the image the trigger named in `from` already recorded is refused (500, "already
    # instantiated"); without `from` no trigger is the request's, so OpenShift refuses nothing
    # (openshift-apiserver generator.go updateImageTriggers).
    again = http.post(f"{bc_url}/manual/instantiate", json={
        "metadata": {"name": "manual"}, "triggeredByImage": {"kind": "DockerImage", "name": pull_a},
        "from": {"kind": "ImageStreamTag", "name": "img:latest"}})
    assert again.status_code == 500 and again.json()["message"] == (
        f"Internal error occurred: build config {namespace}/manual has already instantiated a build for imageid {pull_a}")
    without_from = http.post(f"{bc_url}/manual/instantiate", json={
        "metadata": {"name": "manual"}, "triggeredByImage": {"kind": "DockerImage", "name": pull_a}})
    assert without_from.status_code == 201, without_from.text


@pytest.mark.slow
def test_config_change_builds_once(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    set_tag_image(http, engine, namespace, "cc", "latest", DIGEST_A)
    body = image_change_bc(make_bc, "cc", "cc:latest")
    body["spec"]["triggers"].append({"type": "ConfigChange"})
    http.post(bc_url, json=body)
    builds = wait_for_builds(http, engine, namespace, "cc", 1)
    assert len(builds) == 1  # the ImageChange and ConfigChange triggers race; one build results
    plain = make_bc("cc-only", triggers=[{"type": "ConfigChange"}])
    http.post(bc_url, json=plain)
    only = wait_for_builds(http, engine, namespace, "cc-only", 1)
    assert len(only) == 1 and only[0]["spec"]["triggeredBy"] == [{"message": "Build configuration change"}]


def test_imagestreamtag_create_get_list_delete(engine, http, namespace):
    url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamtags"
    body = {"kind": "ImageStreamTag", "apiVersion": "image.openshift.io/v1", "metadata": {"name": "made:v1"},
            "tag": {"from": {"kind": "DockerImage", "name": "127.0.0.1:1/x/y:1"}, "reference": True}}
    created = http.post(url, json=body)
    assert created.status_code == 201, created.text
    assert http.post(url, json=body).json()["reason"] == "AlreadyExists"
    stream = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams/made").json()
    assert stream["spec"]["tags"][0]["name"] == "v1"
    assert http.get(f"{url}/made:v1").status_code == 404  # no image yet: a spec tag alone is not gettable
    set_tag_image(http, engine, namespace, "made", "v1", DIGEST_A)
    assert http.get(f"{url}/made:v1").json()["image"]["metadata"]["name"] == DIGEST_A
    assert [t["metadata"]["name"] for t in http.get(url).json()["items"]] == ["made:v1"]
    current = http.get(f"{url}/made:v1").json()
    current["tag"]["from"]["name"] = "127.0.0.1:1/x/y:2"
    replaced = http.put(f"{url}/made:v1", json=current)
    assert replaced.status_code == 200 and replaced.json()["tag"]["from"]["name"] == "127.0.0.1:1/x/y:2"
    patched = http.patch(f"{url}/made:v1", json={"tag": {"annotations": {"note": "x"}}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200 and patched.json()["tag"]["annotations"] == {"note": "x"}
    stale = dict(current, metadata=dict(current["metadata"], resourceVersion="1"))
    assert http.put(f"{url}/made:v1", json=stale).json()["reason"] == "Conflict"
    deleted = http.delete(f"{url}/made:v1")
    assert deleted.status_code == 200 and deleted.json()["status"] == "Success"
    stream = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams/made").json()
    assert stream["spec"]["tags"] == [] and stream["status"].get("tags") == []


def test_imagestreammapping_records_a_pushed_image_and_fires_triggers(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=image_change_bc(make_bc, "mapped", "pushed:v1"))
    reference = f"{engine.registry}/{namespace}/pushed@{DIGEST_A}"
    mapping = {"kind": "ImageStreamMapping", "apiVersion": "image.openshift.io/v1", "metadata": {"name": "pushed"},
               "tag": "v1", "image": {"metadata": {"name": DIGEST_A}, "dockerImageReference": reference}}
    response = http.post(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreammappings", json=mapping)
    assert response.status_code == 201 and response.json()["status"] == "Success"
    builds = wait_for_builds(http, engine, namespace, "mapped", 1)
    assert builds[0]["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == reference
    stream_image = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamimages/pushed@{DIGEST_A}").json()
    assert stream_image["kind"] == "ImageStreamImage" and stream_image["image"]["dockerImageReference"] == reference
    image_tag = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagetags/pushed:v1").json()
    assert image_tag["kind"] == "ImageTag" and image_tag["spec"] is None and image_tag["image"]["metadata"]["name"] == DIGEST_A
    assert [t["metadata"]["name"] for t in http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagetags").json()["items"]] == ["pushed:v1"]
    assert http.get(f"{engine.base}{IMAGE_API}/images/{DIGEST_A}").json()["dockerImageReference"] == reference
    invalid = http.post(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreammappings", json={"metadata": {"name": "x"}})
    assert invalid.status_code == 422 and {c["field"] for c in invalid.json()["details"]["causes"]} >= {"tag", "image.metadata.name"}


def test_generic_webhook_starts_a_build_with_its_secret_only(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets",
              json={"metadata": {"name": "hook"}, "stringData": {"WebHookSecretKey": "s3cret"}})
    http.post(bc_url, json=make_bc("hooked", triggers=[
        {"type": "Generic", "generic": {"secretReference": {"name": "hook"}, "allowEnv": True}}]))
    anonymous = engine.session()
    del anonymous.headers["Authorization"]  # the secret in the URL is the credential
    hook = f"{bc_url}/hooked/webhooks"
    assert anonymous.post(f"{hook}/wrong/generic", json={}).status_code == 401
    started = anonymous.post(f"{hook}/s3cret/generic", json={
        "git": {"ref": "main", "commit": "a" * 40, "message": "pushed"}, "env": [{"name": "FROM_HOOK", "value": "1"}]})
    assert started.status_code == 200, started.text
    build = started.json()
    assert build["kind"] == "Build" and build["metadata"]["name"] == "hooked-1"
    assert build["spec"]["revision"]["git"]["commit"] == "a" * 40
    assert build["spec"]["triggeredBy"][0]["message"] == "Generic WebHook"
    assert {"name": "FROM_HOOK", "value": "1"} in build["spec"]["strategy"]["dockerStrategy"]["env"]
    skipped = anonymous.post(f"{hook}/s3cret/generic", json={"git": {"ref": "refs/heads/other"}})
    assert skipped.status_code == 200 and "skipping build" in skipped.json()["message"]
    assert http.get(f"{bc_url}/hooked").json()["status"]["lastVersion"] == 1
