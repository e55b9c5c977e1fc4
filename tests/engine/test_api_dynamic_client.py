"""The kubernetes Python DynamicClient (what kubernetes.core and community.okd use) against osbs-local."""

from __future__ import annotations

import time

import pytest
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError



def resource(dyn, api_version, kind):
    return dyn.resources.get(api_version=api_version, kind=kind)


def test_discovery_finds_every_resource_and_subresource(dyn):
    expected = {
        ("v1", "Namespace"): ("namespaces", False),
        ("v1", "Secret"): ("secrets", True),
        ("v1", "ConfigMap"): ("configmaps", True),
        ("build.openshift.io/v1", "BuildConfig"): ("buildconfigs", True),
        ("build.openshift.io/v1", "Build"): ("builds", True),
        ("image.openshift.io/v1", "ImageStream"): ("imagestreams", True),
        ("image.openshift.io/v1", "ImageStreamImport"): ("imagestreamimports", True),
        ("image.openshift.io/v1", "ImageStreamTag"): ("imagestreamtags", True),
        ("image.openshift.io/v1", "ImageStreamImage"): ("imagestreamimages", True),
        ("image.openshift.io/v1", "ImageStreamMapping"): ("imagestreammappings", True),
        ("image.openshift.io/v1", "ImageTag"): ("imagetags", True),
        ("image.openshift.io/v1", "Image"): ("images", False),
    }
    for (api_version, kind), (plural, namespaced) in expected.items():
        found = resource(dyn, api_version, kind)
        assert (found.name, found.namespaced) == (plural, namespaced)
    assert dyn.resources.get(api_version="build.openshift.io/v1", short_names=["bc"]).kind == "BuildConfig"
    assert dyn.resources.get(api_version="image.openshift.io/v1", short_names=["is"]).kind == "ImageStream"
    assert dyn.resources.get(api_version="image.openshift.io/v1", short_names=["istag"]).kind == "ImageStreamTag"
    bcs = resource(dyn, "build.openshift.io/v1", "BuildConfig")
    assert bcs.subresources["instantiate"].kind == "BuildRequest"
    assert resource(dyn, "build.openshift.io/v1", "Build").subresources["log"].kind == "BuildLog"
    assert resource(dyn, "image.openshift.io/v1", "ImageStream").subresources["status"].kind == "ImageStream"


def test_core_resources_round_trip(dyn, namespace):
    configmaps = resource(dyn, "v1", "ConfigMap")
    created = configmaps.create(namespace=namespace, body={"metadata": {"name": "cm1", "labels": {"a": "1"}}, "data": {"k": "v"}})
    assert created.metadata.uid and created.metadata.resourceVersion and created.metadata.creationTimestamp
    assert configmaps.get(namespace=namespace, name="cm1").data.k == "v"
    patched = configmaps.patch(namespace=namespace, name="cm1", body={"data": {"k2": "v2"}})  # strategic merge
    assert dict(patched.data) == {"k": "v", "k2": "v2"}
    assert int(patched.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    assert [i.metadata.name for i in configmaps.get(namespace=namespace, label_selector="a=1").items] == ["cm1"]
    configmaps.delete(namespace=namespace, name="cm1")
    with pytest.raises(NotFoundError):
        configmaps.get(namespace=namespace, name="cm1")

    secrets = resource(dyn, "v1", "Secret")
    secret = secrets.create(namespace=namespace, body={
        "metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": '{"auths": {}}'}})
    assert secret.type == "kubernetes.io/dockerconfigjson" and secret.data[".dockerconfigjson"]
    with pytest.raises(UnprocessibleEntityError):
        secrets.create(namespace=namespace, body={"metadata": {"name": "bad"}, "type": "kubernetes.io/dockercfg", "data": {}})
    assert resource(dyn, "v1", "Namespace").get(name=namespace).status.phase == "Active"


def test_buildconfig_instantiate_build_and_log(dyn, engine, namespace, make_bc):
    bcs = resource(dyn, "build.openshift.io/v1", "BuildConfig")
    builds = resource(dyn, "build.openshift.io/v1", "Build")
    bc = bcs.create(namespace=namespace, body=make_bc("app", {"team": "x"}))
    assert bc.metadata.generation == 1 and bc.status.lastVersion == 0 and bc.spec.runPolicy == "Serial"
    build = bcs.subresources["instantiate"].create(
        namespace=namespace, name="app", body={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "app"}})
    assert build.kind == "Build" and build.metadata.name == "app-1" and build.status.phase == "New"
    assert build.metadata.labels["openshift.io/build-config.name"] == "app"
    assert build.metadata.labels["team"] == "x"
    assert build.metadata.ownerReferences[0].uid == bc.metadata.uid
    assert bcs.get(namespace=namespace, name="app").status.lastVersion == 1
    deadline = time.monotonic() + 60
    while builds.get(namespace=namespace, name="app-1").status.phase not in ("Failed", "Complete", "Error"):
        assert time.monotonic() < deadline, "build did not finish"
        time.sleep(0.3)
    finished = builds.get(namespace=namespace, name="app-1")
    assert finished.status.phase == "Failed" and finished.status.reason == "FetchSourceFailed"
    assert finished.status.logSnippet and finished.status.completionTimestamp
    log_text = builds.subresources["log"].get(namespace=namespace, name="app-1")
    assert "nonexistent" in str(log_text)
    assert [b.metadata.name for b in builds.get(namespace=namespace, label_selector="openshift.io/build-config.name=app").items] == ["app-1"]
    build_dir = engine.state_dir / "builds" / namespace / "app-1"
    assert (build_dir / "build.log").exists() and not (build_dir / "work").exists()
    bcs.delete(namespace=namespace, name="app")  # the build goes with its BuildConfig, and so do its files
    with pytest.raises(NotFoundError):
        builds.get(namespace=namespace, name="app-1")
    deadline = time.monotonic() + 10
    while build_dir.exists():
        assert time.monotonic() < deadline, "the deleted build's directory stayed"
        time.sleep(0.2)


def test_imagestream_status_tags_and_import_resources(dyn, namespace):
    streams = resource(dyn, "image.openshift.io/v1", "ImageStream")
    stream = streams.create(namespace=namespace, body={"metadata": {"name": "base"}, "spec": {}})
    assert stream.status.dockerImageRepository.endswith(f"/{namespace}/base")
    # Status is written through imagestreams/status only; a main-resource write keeps it.
    status_body = stream.to_dict()
    status_body["status"]["tags"] = [{"tag": "v1", "items": [{
        "created": "2024-01-01T00:00:00Z", "dockerImageReference": "example.com/base@sha256:" + "a" * 64,
        "image": "sha256:" + "a" * 64, "generation": 1}]}]
    updated = streams.subresources["status"].replace(namespace=namespace, name="base", body=status_body)
    assert updated.status.tags[0].tag == "v1" and updated.metadata.generation == 1
    tags = resource(dyn, "image.openshift.io/v1", "ImageStreamTag")
    tag = tags.get(namespace=namespace, name="base:v1")
    assert tag.image.dockerImageReference.endswith("a" * 64)
    assert [t.metadata.name for t in tags.get(namespace=namespace).items] == ["base:v1"]
    with pytest.raises(NotFoundError):
        tags.get(namespace=namespace, name="base:nope")
    # ImageStreamImport of an image that does not exist: 201 with a Failure status per image.
    imports = resource(dyn, "image.openshift.io/v1", "ImageStreamImport")
    result = imports.create(namespace=namespace, body={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": "base"},
        "spec": {"import": False, "images": [{"from": {"kind": "DockerImage", "name": "127.0.0.1:1/nothing/here:1"}}]},
        "status": {}})
    assert result.status.images[0].status.status == "Failure"


def test_conflicts_and_update_rules(dyn, namespace, make_bc):
    bcs = resource(dyn, "build.openshift.io/v1", "BuildConfig")
    bcs.create(namespace=namespace, body=make_bc("c"))
    with pytest.raises(ConflictError) as exists:
        bcs.create(namespace=namespace, body=make_bc("c"))
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body.decode().replace(" ", "")
    current = bcs.get(namespace=namespace, name="c").to_dict()
    fresh = dict(current, spec=dict(current["spec"], runPolicy="Parallel"))
    updated = bcs.replace(namespace=namespace, body=fresh)
    assert updated.metadata.generation == 2
    with pytest.raises(ConflictError) as stale:
        bcs.replace(namespace=namespace, body=fresh)  # the resourceVersion it carries is now stale
    assert '"reason":"Conflict"' in stale.value.body.decode().replace(" ", "")
