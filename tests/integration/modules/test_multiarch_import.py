"""reactor_import_image of a real multi-arch image (issue 14 item 2) in OpenShift's two import modes.

Legacy (the default) names the ImageStreamTag's image by the digest of one platform's child;
PreserveOriginal by the list's digest (openshift-apiserver importer.go importManifest). A push reports
the list's digest, so `expected_digest` is the list's in both modes, and the module must accept it in both.
"""

from __future__ import annotations

import json
import uuid

import pytest

from multiarch import push_multiarch_busybox
from testlib import run_module

pytestmark = pytest.mark.slow
IMAGE_API = "/apis/image.openshift.io/v1"


def push_multiarch(engine, storage_dir, prefix):
    cert_dir = engine.state_dir / "certs.d" / engine.registry
    auth_file = engine.env["REGISTRY_AUTH_FILE"]
    repository = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    image = "%s/%s:latest" % (engine.registry, repository)
    digests = push_multiarch_busybox(
        image, storage_dir=storage_dir, auth_file=auth_file, cert_dir=cert_dir,
        ca_file=cert_dir / "ca.crt", auths=json.loads(open(auth_file).read())["auths"],
    )
    return image, repository, digests


def istag(engine, name):
    response = engine.session().get("%s%s/namespaces/%s/imagestreamtags/%s" % (engine.base, IMAGE_API, engine.namespace, name))
    assert response.status_code == 200, response.text
    return response.json()


def test_expected_digest_of_a_manifest_list_in_legacy_mode_imports_the_amd64_child(osbs_engine, tmp_path):
    engine = osbs_engine
    image, _, digests = push_multiarch(engine, tmp_path / "storage", "multi-legacy")
    args = dict(namespace=engine.namespace, image=image, expected_digest=digests["list"])
    checked = run_module(engine, "reactor_import_image", args, check_mode=True)
    assert checked.get("failed") is not True, checked.get("msg")
    assert checked["changed"] is True and checked["digest"] == digests["amd64"]

    imported = run_module(engine, "reactor_import_image", args)
    assert imported.get("failed") is not True, imported.get("msg")
    assert imported["changed"] is True and imported["digest"] == digests["amd64"]
    tag = istag(engine, imported["imagestreamtag"])
    assert tag["image"]["metadata"]["name"] == digests["amd64"]
    assert tag["tag"]["importPolicy"]["importMode"] == "Legacy"

    again = run_module(engine, "reactor_import_image", args)
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and again["digest"] == digests["amd64"]

    by_child = run_module(engine, "reactor_import_image", dict(args, expected_digest=digests["amd64"]))
    assert by_child.get("failed") is not True and by_child["changed"] is False, by_child.get("msg")

    wrong = run_module(engine, "reactor_import_image", dict(args, expected_digest="sha256:" + "0" * 64))
    assert wrong["failed"] is True and "not the expected digest" in wrong["msg"]


def test_expected_digest_of_a_manifest_list_in_preserve_original_mode_imports_the_list(osbs_engine, tmp_path):
    engine = osbs_engine
    image, stream_name, digests = push_multiarch(engine, tmp_path / "storage", "multi-kept")
    http = engine.session()
    # The tag's mode is set on the ImageStream (oc tag --import-mode=PreserveOriginal); the module keeps it.
    created = http.post("%s%s/namespaces/%s/imagestreams" % (engine.base, IMAGE_API, engine.namespace), json={
        "metadata": {"name": stream_name},
        "spec": {"tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": image},
                           "importPolicy": {"importMode": "PreserveOriginal"}}]},
    })
    assert created.status_code == 201, created.text
    args = dict(namespace=engine.namespace, image=image, expected_digest=digests["list"])
    imported = run_module(engine, "reactor_import_image", args)
    assert imported.get("failed") is not True, imported.get("msg")
    assert imported["digest"] == digests["list"]
    tag = istag(engine, imported["imagestreamtag"])
    assert tag["image"]["metadata"]["name"] == digests["list"]
    assert tag["tag"]["importPolicy"]["importMode"] == "PreserveOriginal"
    assert sorted(m["digest"] for m in tag["image"]["dockerImageManifests"]) == sorted((digests["amd64"], digests["arm64"]))

    again = run_module(engine, "reactor_import_image", args)
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and again["digest"] == digests["list"]
