"""An image built FROM a multi-arch base (issue 14 item 2), in OpenShift's two import modes.

A push reports a manifest list's digest, so that is the digest a build pipeline gives osbs_build
(`base_image_digest`) and osbs_autorebuild (`digest`). In Legacy mode (the default) the ImageStreamTag
names one platform's child instead (openshift-apiserver importer.go importManifest), in PreserveOriginal
the list: the modules must take the list's digest (or, for a kept list, a child's) as the same image,
and no unrelated digest. When the base moves, the dependent is rebuilt exactly once.
"""

from __future__ import annotations

import json
import uuid

import pytest

from multiarch import push_multiarch_busybox
from testlib import make_git_repo, run_module

pytestmark = pytest.mark.slow
IMAGE_API = "/apis/image.openshift.io/v1"
UNRELATED_DIGEST = "sha256:" + "7" * 64


def push_list(engine, storage_dir, image, marker):
    cert_dir = engine.state_dir / "certs.d" / engine.registry
    auth_file = engine.env["REGISTRY_AUTH_FILE"]
    return push_multiarch_busybox(
        image, storage_dir=storage_dir, auth_file=auth_file, cert_dir=cert_dir, ca_file=cert_dir / "ca.crt",
        auths=json.loads(open(auth_file).read())["auths"], marker=marker,
    )


def builds_of(engine, buildconfig):
    response = engine.session().get("%s/apis/build.openshift.io/v1/namespaces/%s/builds" % (engine.base, engine.namespace),
                                    params={"labelSelector": "openshift.io/build-config.name=%s" % buildconfig})
    assert response.status_code == 200, response.text
    return {b["metadata"]["name"]: b for b in response.json()["items"]}


def tag_image(engine, name):
    response = engine.session().get("%s%s/namespaces/%s/imagestreamtags/%s" % (engine.base, IMAGE_API, engine.namespace, name))
    assert response.status_code == 200, response.text
    return response.json()["image"]["metadata"]["name"]


@pytest.mark.parametrize("mode", ["Legacy", "PreserveOriginal"])
def test_an_image_built_from_a_multi_arch_base_is_rebuilt_exactly_once_when_the_base_moves(osbs_engine, tmp_path, mode):
    engine = osbs_engine
    namespace = engine.namespace
    stream = "multi-base-%s-%s" % (mode.lower(), uuid.uuid4().hex[:6])
    base = "%s/%s:latest" % (engine.registry, stream)
    first = push_list(engine, tmp_path / "storage", base, "first")
    if mode == "PreserveOriginal":
        # The tag's mode is set on the ImageStream (oc tag --import-mode=PreserveOriginal); imports keep it.
        created = engine.session().post("%s%s/namespaces/%s/imagestreams" % (engine.base, IMAGE_API, namespace), json={
            "metadata": {"name": stream},
            "spec": {"tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": base},
                               "importPolicy": {"importMode": mode}}]},
        })
        assert created.status_code == 201, created.text
    imported = run_module(engine, "reactor_import_image", dict(namespace=namespace, image=base, expected_digest=first["list"]))
    assert imported.get("failed") is not True, imported.get("msg")
    named = first["amd64"] if mode == "Legacy" else first["list"]
    assert tag_image(engine, stream + ":latest") == named

    uri, commit = make_git_repo(tmp_path / "dependent", {"Dockerfile": "FROM %s\nRUN cat /etc/multiarch-marker > /seen\n" % base})
    bc = run_module(engine, "osbs_buildconfig", dict(
        namespace=namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base, image=stream + "-dependent",
        registry_uri=engine.registry, registry_secret=engine.registry_secret,
    ))
    assert bc.get("failed") is not True, bc.get("msg")
    name = bc["name"]
    # A dependent whose repo config disables autorebuilds: the build the cluster's trigger starts when the base moves
    # is cancelled (or reported, if it already completed) by the wave, which must know the list's digest as the
    # tag's image to find that build.
    disabled_uri, disabled_commit = make_git_repo(tmp_path / "disabled", {
        "Dockerfile": "FROM %s\nRUN cat /etc/multiarch-marker > /seen\n" % base,
        ".osbs-repo-config": "[autorebuild]\nenabled = false\n",
    })
    disabled = run_module(engine, "osbs_buildconfig", dict(
        namespace=namespace, git_uri=disabled_uri, git_branch="main", git_commit=disabled_commit, base_image=base,
        image=stream + "-disabled", registry_uri=engine.registry, registry_secret=engine.registry_secret,
    ))
    assert disabled.get("failed") is not True, disabled.get("msg")

    # The digest the base's push reported: the list's, whatever the tag names.
    built = run_module(engine, "osbs_build", dict(namespace=namespace, buildconfig=name, base_image_digest=first["list"],
                                                  wait_timeout=600))
    assert built.get("failed") is not True, built.get("msg")
    assert built["phase"] == "Complete" and built["base_image_digest"] == named
    # The other form of the same image: the amd64 child (what the tag names in Legacy, a child of the kept list
    # in PreserveOriginal) is the same image too; the build is found, none started.
    again = run_module(engine, "osbs_build", dict(namespace=namespace, buildconfig=name, base_image_digest=first["amd64"]))
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and again["name"] == built["name"]
    for unrelated in (UNRELATED_DIGEST, first["arm64"] if mode == "Legacy" else None):
        if unrelated is None:
            continue
        refused = run_module(engine, "osbs_build", dict(namespace=namespace, buildconfig=name, base_image_digest=unrelated))
        assert refused["failed"] is True and "not the expected base image digest" in refused["msg"], refused.get("msg")

    # The base moves: a new list pushed to the same tag, imported as the pipeline does.
    before = set(builds_of(engine, name))
    second = push_list(engine, tmp_path / "storage", base, "second")
    moved = run_module(engine, "reactor_import_image", dict(namespace=namespace, image=base, expected_digest=second["list"]))
    assert moved.get("failed") is not True and moved["changed"] is True, moved.get("msg")
    now_named = second["amd64"] if mode == "Legacy" else second["list"]
    assert tag_image(engine, stream + ":latest") == now_named

    args = dict(namespace=namespace, imagestreamtag=stream + ":latest", digest=second["list"], wait_timeout=600)
    wave = run_module(engine, "osbs_autorebuild", args)
    assert wave.get("failed") is not True, wave.get("msg")
    rows = {row["buildconfig"]: row for row in wave["rows"]}
    assert rows[name]["action"] in ("rebuilt", "adopted"), wave["report_table"]
    assert rows[disabled["name"]]["action"] == "skipped", wave["report_table"]
    trigger_builds = [b for b in builds_of(engine, disabled["name"]).values() if b["spec"].get("triggeredBy")
                      and any(cause.get("imageChangeBuild") for cause in b["spec"]["triggeredBy"])]
    if trigger_builds:  # the engine's trigger fired for the moved base: the wave must have found its build
        assert "that the ImageChange trigger started" in rows[disabled["name"]]["reason"], wave["report_table"]
    new = [b for n, b in builds_of(engine, name).items() if n not in before]
    assert len(new) == 1, sorted(b["metadata"]["name"] for b in new)
    assert new[0]["status"]["phase"] == "Complete"
    assert new[0]["spec"]["strategy"]["dockerStrategy"]["from"]["name"].endswith("@" + now_named)

    rerun = run_module(engine, "osbs_autorebuild", args)
    assert rerun.get("failed") is not True, rerun.get("msg")
    assert rerun["changed"] is False, rerun["report_table"]
    assert {row["buildconfig"]: row["action"] for row in rerun["rows"]} == {name: "unchanged", disabled["name"]: "skipped"}
    assert set(builds_of(engine, name)) == before | {new[0]["metadata"]["name"]}

    refused = run_module(engine, "osbs_autorebuild", dict(args, digest=UNRELATED_DIGEST))
    assert refused["failed"] is True and "not the expected base image digest" in refused["msg"], refused.get("msg")
    assert set(builds_of(engine, name)) == before | {new[0]["metadata"]["name"]}
