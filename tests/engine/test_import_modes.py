"""Manifest lists imported as OpenShift does (Legacy: one platform's child; PreserveOriginal: the list), and the
base image a Build gets at instantiate (the ImageStreamTag as it is then, whatever triggeredByImage names).

OpenShift: openshift-apiserver pkg/image/apiserver/importer/importer.go importManifest and
manifestFromManifestList, pkg/image/apiserver/importer/image.go manifestListToImage,
pkg/image/apis/image/validation/validation.go ValidateImportPolicy; pkg/build/apiserver/buildgenerator/generator.go
getStrategyImageChangeTrigger and setBaseImageAndPullSecretForBuildStrategy.
"""

from __future__ import annotations

import json

import pytest

from multiarch import push_multiarch_busybox
from testlib import set_tag_image

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"


@pytest.fixture(scope="module")
def multiarch(engine, tmp_path_factory):
    """A two-platform manifest list pushed to the engine's registry: (pull spec by tag, its digests)."""
    cert_dir = engine.state_dir / "certs.d" / engine.registry
    auth_file = engine.env["REGISTRY_AUTH_FILE"]
    image = f"{engine.registry}/multi/busybox:latest"
    digests = push_multiarch_busybox(
        image, storage_dir=tmp_path_factory.mktemp("multiarch-storage"), auth_file=auth_file, cert_dir=cert_dir,
        ca_file=cert_dir / "ca.crt", auths=json.loads(open(auth_file).read())["auths"],
    )
    return image, digests


def import_body(name, images, store=True):
    return {"kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": name},
            "spec": {"import": store, "images": images}}


def image_spec(source, tag, mode=None):
    spec = {"from": {"kind": "DockerImage", "name": source}, "to": {"name": tag}}
    if mode is not None:
        spec["importPolicy"] = {"importMode": mode}
    return spec


def tag_image(http, engine, namespace, istag):
    response = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamtags/{istag}")
    assert response.status_code == 200, response.text
    return response.json()["image"]


@pytest.mark.slow
def test_legacy_import_of_a_manifest_list_names_the_amd64_child_and_preserve_original_the_list(engine, http, namespace, multiarch):
    image, digests = multiarch
    assert digests["list"] not in (digests["amd64"], digests["arm64"])
    url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamimports"
    answer = http.post(url, json=import_body("base", [
        image_spec(image, "legacy"), image_spec(image, "explicit-legacy", "Legacy"),
        image_spec(image, "preserved", "PreserveOriginal"),
    ]))
    assert answer.status_code == 201, answer.text
    legacy, explicit, preserved = answer.json()["status"]["images"]
    assert [entry["status"]["status"] for entry in (legacy, explicit, preserved)] == ["Success"] * 3
    assert legacy["image"]["metadata"]["name"] == explicit["image"]["metadata"]["name"] == digests["amd64"]
    assert legacy["image"]["dockerImageReference"] == f"{engine.registry}/multi/busybox@{digests['amd64']}"
    assert legacy["image"]["dockerImageMetadata"]["Architecture"] == "amd64"
    assert not legacy["image"].get("dockerImageManifests")
    assert preserved["image"]["metadata"]["name"] == digests["list"]
    assert preserved["image"]["dockerImageReference"] == f"{engine.registry}/multi/busybox@{digests['list']}"
    assert sorted((m["digest"], m["architecture"], m["os"]) for m in preserved["image"]["dockerImageManifests"]) == sorted(
        (digests[arch], arch, "linux") for arch in ("amd64", "arm64"))
    assert sorted(m["metadata"]["name"] for m in preserved["manifests"]) == sorted((digests["amd64"], digests["arm64"]))

    assert tag_image(http, engine, namespace, "base:legacy")["metadata"]["name"] == digests["amd64"]
    assert tag_image(http, engine, namespace, "base:preserved")["metadata"]["name"] == digests["list"]
    stream = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams/base").json()
    modes = {t["name"]: t["importPolicy"]["importMode"] for t in stream["spec"]["tags"]}
    assert modes == {"legacy": "Legacy", "explicit-legacy": "Legacy", "preserved": "PreserveOriginal"}
    # The children of a kept list are Images of their own (importSubManifests).
    for arch in ("amd64", "arm64"):
        child = http.get(f"{engine.base}{IMAGE_API}/images/{digests[arch]}")
        assert child.status_code == 200 and child.json()["dockerImageMetadata"]["Architecture"] == arch

    # By digest, the same: Legacy replaces the list's digest by its child's.
    by_digest = f"{engine.registry}/multi/busybox@{digests['list']}"
    answer = http.post(url, json=import_body("pinned", [image_spec(by_digest, "legacy"),
                                                        image_spec(by_digest, "preserved", "PreserveOriginal")]))
    assert [entry["image"]["metadata"]["name"] for entry in answer.json()["status"]["images"]] == [digests["amd64"], digests["list"]]


@pytest.mark.slow
def test_a_spec_tag_import_follows_the_tags_import_mode(engine, http, namespace, multiarch):
    image, digests = multiarch
    url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams"
    tags = [{"name": "legacy", "from": {"kind": "DockerImage", "name": image}},
            {"name": "preserved", "from": {"kind": "DockerImage", "name": image}, "importPolicy": {"importMode": "PreserveOriginal"}}]
    assert http.post(url, json={"metadata": {"name": "spec"}, "spec": {"tags": tags}}).status_code == 201
    import time
    deadline = time.monotonic() + 30
    while True:
        stream = http.get(f"{url}/spec").json()
        images = {t["tag"]: t["items"][0]["image"] for t in stream["status"].get("tags") or [] if t.get("items")}
        if len(images) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert images == {"legacy": digests["amd64"], "preserved": digests["list"]}


def test_an_unknown_import_mode_is_refused(engine, http, namespace):
    url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}"
    answer = http.post(f"{url}/imagestreamimports", json=import_body("bad", [image_spec("example.com/a:1", "x", "Newest")]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"]["causes"][0]["field"] == "spec.images[0].importPolicy.importMode"
    stream = {"metadata": {"name": "bad"}, "spec": {"tags": [
        {"name": "x", "from": {"kind": "DockerImage", "name": "example.com/a:1"}, "importPolicy": {"importMode": "Newest"}}]}}
    answer = http.post(f"{url}/imagestreams", json=stream)
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"]["causes"][0]["field"] == "spec.tags[x].importPolicy.importMode"


# -- the base image at instantiate ---------------------------------------------------------------------


def test_instantiate_builds_from_the_tag_as_it_is_now_not_from_triggered_by_image(engine, http, namespace, make_bc):
    older = set_tag_image(http, engine, namespace, "base", "1", "sha256:" + "1" * 64)
    newer = set_tag_image(http, engine, namespace, "base", "1", "sha256:" + "2" * 64)
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    body = make_bc("moved", strategy={"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "base:1"}}},
                   triggers=[{"type": "ImageChange", "imageChange": {"paused": True}}])
    assert http.post(bc_url, json=body).status_code == 201
    request = {"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "moved"},
               "triggeredByImage": {"kind": "DockerImage", "name": older},
               "from": {"kind": "ImageStreamTag", "name": "base:1", "namespace": namespace},
               "triggeredBy": [{"message": "Image change", "imageChangeBuild": {
                   "imageID": older, "fromRef": {"kind": "ImageStreamTag", "name": "base:1", "namespace": namespace}}}]}
    answer = http.post(f"{bc_url}/moved/instantiate", json=request)
    assert answer.status_code == 201, answer.text
    build = answer.json()
    # The base is the tag's image at instantiate; triggeredByImage is only what the trigger records.
    assert build["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": newer}
    assert build["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == older
    triggers = http.get(f"{bc_url}/moved").json()["status"]["imageChangeTriggers"]
    assert triggers[0]["lastTriggeredImageID"] == older
