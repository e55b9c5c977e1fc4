"""osbs_image_tags against osbs-local: real buildah builds, the engine's real registry (docker distribution)."""

from __future__ import annotations

import json
import re

import pytest

from osbs_local.registry_client import RegistryClient
from testlib import commit_files, make_git_repo, run_module


def dockerfile(base, name, version, release, run="echo built"):
    return ("FROM %s\nLABEL name=%s version=%s release=%s\nRUN %s > /built\n"
            % (base, name, version, release, run))


def registry_put_count(engine):
    """Manifest and blob PUTs the registry has answered (its access log)."""
    text = (engine.state_dir / "registry" / "registry.log").read_text(errors="replace")
    return len(re.findall(r'"PUT /v2/', text))


def registry(engine):
    with open(engine.env["REGISTRY_AUTH_FILE"]) as handle:
        auths = json.load(handle)["auths"]
    return RegistryClient(engine.registry, auths, ca_file=engine.env["OSBS_LOCAL_REGISTRY_CA"])


def tag_args(engine, build_name, **extra):
    args = dict(namespace=engine.namespace, build=build_name, registry_uri=engine.registry,
                registry_dockercfg_path=engine.env["REGISTRY_AUTH_FILE"],
                registry_ca_cert=engine.env["OSBS_LOCAL_REGISTRY_CA"])
    args.update(extra)
    return args


def build_at(engine, base, uri, commit, image):
    bc = run_module(engine, "osbs_buildconfig", dict(
        namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base, image=image,
        registry_uri=engine.registry, registry_secret=engine.registry_secret,
    ))
    assert not bc.get("failed"), bc.get("msg")
    build = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=bc["name"], git_commit=commit,
                                                  wait_timeout=600))
    assert not build.get("failed"), build.get("msg")
    assert build["phase"] == "Complete" and build["image_digest"]
    return build


def digest_at(client, repository, tag):
    try:
        return client.get_manifest(repository, tag)[2]
    except Exception as exc:  # noqa: BLE001 - a missing tag is what some assertions expect
        if getattr(exc, "code", None) == 404:
            return None
        raise


@pytest.mark.slow
def test_two_builds_get_their_tags_and_a_rerun_moves_nothing(osbs_engine, busybox_base, tmp_path):
    engine, image = osbs_engine, "osbs/tags-app"
    path = tmp_path / "tags-app"
    uri, first_commit = make_git_repo(path, {
        "Dockerfile": dockerfile(busybox_base, image, "1.0", "1"),
        "additional-tags": "stable\nnot-valid\n\nv1.0\nbad/tag\n",
    })
    first = build_at(engine, busybox_base, uri, first_commit, image)

    checked = run_module(engine, "osbs_image_tags", tag_args(engine, first["name"]), check_mode=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True and checked["registry_writes"] == 0
    assert checked["diff"]["after"]["tags"][checked["unique_tag"]] == first["image_digest"]
    assert checked["diff"]["before"]["annotations"]["repositories"] is None
    assert "repositories" in checked["diff"]["after"]["annotations"]
    client = registry(engine)
    assert digest_at(client, image, checked["unique_tag"]) is None, "check mode put a tag"

    tagged = run_module(engine, "osbs_image_tags", tag_args(engine, first["name"]))
    assert not tagged.get("failed"), tagged.get("msg")
    # The release is the image's label: the Dockerfile's, or the one the flow numbered (issue 15's release numbering).
    first_vr = "1.0-%s" % tagged["release"]
    assert tagged["nvr"] == "osbs-tags-app-%s" % first_vr
    assert tagged["digest"] == first["image_digest"]
    assert re.match(r"^main-\d{14}-[0-9a-f]{8}$", tagged["unique_tag"]), tagged["unique_tag"]
    assert tagged["unique_pull_spec"] == "%s/%s:%s" % (engine.registry, image, tagged["unique_tag"])
    for tag in (tagged["unique_tag"], first_vr, "1.0", "latest", "stable", "v1.0"):
        assert digest_at(client, image, tag) == first["image_digest"], tag
    assert digest_at(client, image, "not-valid") is None
    warnings = json.dumps(tagged.get("warnings"))
    assert "additional-tags: 'not-valid' is not applied: it has a '-'" in warnings, warnings
    assert "additional-tags: 'bad/tag' is not applied: it is not a valid tag" in warnings, warnings
    # latest was the build's own push; the others took one PUT each.
    assert tagged["registry_writes"] == 5
    assert sorted(tagged["imagestream_tags"]) == sorted(["1.0", first_vr, "latest"])

    _, second_commit = commit_files(path, {"Dockerfile": dockerfile(busybox_base, image, "1.0", "2", "echo second")})
    second = build_at(engine, busybox_base, uri, second_commit, image)
    assert second["image_digest"] != first["image_digest"]
    tagged_2 = run_module(engine, "osbs_image_tags", tag_args(engine, second["name"]))
    assert not tagged_2.get("failed"), tagged_2.get("msg")
    second_vr = "1.0-%s" % tagged_2["release"]
    assert tagged_2["nvr"] == "osbs-tags-app-%s" % second_vr and second_vr != first_vr
    assert tagged_2["unique_tag"] != tagged["unique_tag"]
    assert digest_at(client, image, tagged["unique_tag"]) == first["image_digest"]
    assert digest_at(client, image, tagged_2["unique_tag"]) == second["image_digest"]
    assert digest_at(client, image, first_vr) == first["image_digest"]
    for tag in (second_vr, "1.0", "latest", "stable", "v1.0"):
        assert digest_at(client, image, tag) == second["image_digest"], tag

    # A rerun for either build writes nothing to the registry: the first build's floating tags stay on the newer image.
    puts = registry_put_count(engine)
    again = run_module(engine, "osbs_image_tags", tag_args(engine, second["name"]), diff=True)
    # Without registry_dockercfg_path, the credentials are the Build's push secret's, read from the cluster.
    late = run_module(engine, "osbs_image_tags", tag_args(engine, first["name"], registry_dockercfg_path=None))
    assert again["changed"] is False and again["registry_writes"] == 0, again
    assert again["diff"]["after"] == {"tags": {}, "annotations": {}}
    assert late["changed"] is False and late["registry_writes"] == 0, late
    assert {row["tag"]: row["action"] for row in late["tags"]}["latest"] == "kept"
    assert "the floating tag %s:latest stays on %s" % (image, second["image_digest"]) in json.dumps(late.get("warnings")), late
    assert registry_put_count(engine) == puts
    assert digest_at(client, image, "latest") == second["image_digest"]

    # The metadata on the Build, as `oc get build -o yaml` shows it.
    annotations = json.loads(engine.kubectl("get", "build", second["name"], "-o", "json",
                                            namespace=engine.namespace).stdout)["metadata"]["annotations"]
    repositories = json.loads(annotations["repositories"])
    assert repositories["unique"] == [tagged_2["unique_pull_spec"]]
    assert "%s/%s:%s" % (engine.registry, image, second_vr) in repositories["primary"]
    assert sorted(repositories["floating"]) == ["%s/%s:%s" % (engine.registry, image, t) for t in ("1.0", "latest")]
    digests = json.loads(annotations["digests"])
    assert {entry["digest"] for entry in digests} == {second["image_digest"]}
    assert annotations["commit_id"] == second_commit
    assert annotations["base-image-name"] == busybox_base
    assert annotations["base-image-id"] == second["base_image_digest"]
    assert "RUN echo second > /built" in annotations["dockerfile"]


@pytest.mark.slow
def test_scratch_gets_only_its_unique_tag(osbs_engine, busybox_base, tmp_path):
    engine, image = osbs_engine, "osbs/tags-scratch"
    uri, commit = make_git_repo(tmp_path / "tags-scratch", {
        "Dockerfile": dockerfile(busybox_base, image, "2.0", "7"), "additional-tags": "extra\n"})
    build = build_at(engine, busybox_base, uri, commit, image)
    tagged = run_module(engine, "osbs_image_tags", tag_args(engine, build["name"], scratch=True))
    assert not tagged.get("failed"), tagged.get("msg")
    assert [row["tag"] for row in tagged["tags"]] == [tagged["unique_tag"]]
    client = registry(engine)
    assert digest_at(client, image, tagged["unique_tag"]) == build["image_digest"]
    for tag in ("2.0-7", "2.0", "extra"):
        assert digest_at(client, image, tag) is None, tag


@pytest.mark.slow
def test_a_manifest_list_is_tagged_as_a_list_by_one_put(osbs_engine, tmp_path):
    """The registry side of osbs_image_tags on a real manifest list: read by digest with every list type accepted,
    put under a tag with the list's media type, so the tag names the list's digest (not one platform's)."""
    from ansible_collections.osbs.flow.plugins.module_utils.pulp_sync import read_dockercfg
    from ansible_collections.osbs.flow.plugins.module_utils.registry_api import LIST_TYPES, RegistryClient as Client
    from ansible_collections.osbs.flow.plugins.module_utils.tag_build import MOVED, UNCHANGED, BuildTagger, image_config
    from multiarch import push_multiarch_busybox

    engine = osbs_engine
    cert_dir = engine.state_dir / "certs.d" / engine.registry
    auth_file = engine.env["REGISTRY_AUTH_FILE"]
    digests = push_multiarch_busybox(
        "%s/osbs/tags-list:pushed" % engine.registry, storage_dir=tmp_path / "storage", auth_file=auth_file,
        cert_dir=cert_dir, ca_file=cert_dir / "ca.crt", auths=json.loads(open(auth_file).read())["auths"])
    client = Client("https", engine.registry, credentials=read_dockercfg(auth_file, engine.registry),
                    verify=engine.env["OSBS_LOCAL_REGISTRY_CA"])
    media_type, body, config, _config_digest = image_config(client, "osbs/tags-list", digests["list"])
    assert media_type in LIST_TYPES and config.get("os") == "linux"

    tagger = BuildTagger(None, None, None)
    assert tagger.move(client, "osbs/tags-list", "1.0-1", "primary", digests["list"], media_type, body, "")[0] == MOVED
    assert client.writes == 1
    assert digest_at(registry(engine), "osbs/tags-list", "1.0-1") == digests["list"]
    assert tagger.move(client, "osbs/tags-list", "1.0-1", "primary", digests["list"], media_type, body, "")[0] == UNCHANGED
    assert client.writes == 1


@pytest.mark.slow
def test_a_dockerfile_bigger_than_the_annotation_limit_is_cut_not_fatal(osbs_engine, busybox_base, tmp_path):
    """Kubernetes refuses a Build whose annotations pass 256 KiB (osbs-local as apimachinery's ValidateAnnotations):
    the Dockerfile annotation is cut with a note and a warning; the tags and the other annotations are written."""
    engine, image = osbs_engine, "osbs/tags-big-dockerfile"
    padding = "".join("# %s\n" % ("x" * 1000) for _ in range(300))  # ~300 KB of comments
    uri, commit = make_git_repo(tmp_path / "tags-big", {"Dockerfile": dockerfile(busybox_base, image, "1.0", "1") + padding})
    build = build_at(engine, busybox_base, uri, commit, image)
    tagged = run_module(engine, "osbs_image_tags", tag_args(engine, build["name"]))
    assert not tagged.get("failed"), tagged.get("msg")
    assert "does not fit in the Build's annotations" in json.dumps(tagged.get("warnings")), tagged.get("warnings")
    annotations = json.loads(engine.kubectl("get", "build", build["name"], "-o", "json",
                                            namespace=engine.namespace).stdout)["metadata"]["annotations"]
    assert annotations["commit_id"] == commit and json.loads(annotations["repositories"])["primary"]
    assert annotations["dockerfile"].startswith("FROM %s\n" % busybox_base)
    assert "osbs.flow: cut to" in annotations["dockerfile"] and commit in annotations["dockerfile"]
    assert sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items()) <= 256 * 1024
    again = run_module(engine, "osbs_image_tags", tag_args(engine, build["name"]))
    assert not again["changed"] and not again["annotations_changed"], again


@pytest.mark.slow
def test_a_binary_additional_tags_file_is_a_warning_not_a_failure(osbs_engine, busybox_base, tmp_path):
    """The image is pushed already; an additional-tags file that is not UTF-8 text costs its tags, not the others."""
    engine, image = osbs_engine, "osbs/tags-binary-file"
    repo = tmp_path / "tags-binary"
    make_git_repo(repo, {"Dockerfile": dockerfile(busybox_base, image, "3.0", "1")})
    (repo / "additional-tags").write_bytes(b"\xff\xfe\x00stable\n\x89PNG\r\n")
    uri, commit = commit_files(repo, {})
    build = build_at(engine, busybox_base, uri, commit, image)
    tagged = run_module(engine, "osbs_image_tags", tag_args(engine, build["name"]))
    assert not tagged.get("failed"), tagged.get("msg")
    assert "additional-tags is not used" in json.dumps(tagged.get("warnings")) and "UTF-8" in json.dumps(tagged.get("warnings"))
    assert {row["tag"] for row in tagged["tags"]} == {tagged["unique_tag"], "3.0-1", "3.0", "latest"}
    assert digest_at(registry(engine), image, "3.0-1") == build["image_digest"]


@pytest.mark.slow
def test_a_build_labelled_scratch_gets_only_its_unique_tag_whatever_the_option_says(osbs_engine, busybox_base, tmp_path):
    """osbs_build's scratch Builds carry osbs.flow/scratch=true: tagged without scratch (a playbook that forgot it,
    a job template's default), such a build must not take latest, the version tag or an NVR."""
    engine, image = osbs_engine, "osbs/tags-scratch-label"
    uri, commit = make_git_repo(tmp_path / "tags-scratch-label", {"Dockerfile": dockerfile(busybox_base, image, "4.0", "1")})
    build = build_at(engine, busybox_base, uri, commit, image)
    engine.kubectl("label", "build", build["name"], "osbs.flow/scratch=true", namespace=engine.namespace)
    tagged = run_module(engine, "osbs_image_tags", tag_args(engine, build["name"]))
    assert not tagged.get("failed"), tagged.get("msg")
    assert tagged["scratch"] is True and [row["tag"] for row in tagged["tags"]] == [tagged["unique_tag"]]
    assert tagged["imagestream_tags"] == []
    assert "scratch" in json.dumps(tagged.get("warnings"))
    for tag in ("4.0-1", "4.0"):
        assert digest_at(registry(engine), image, tag) is None, tag


@pytest.mark.slow
def test_import_with_an_invalid_tag_among_tags_writes_nothing(osbs_engine, busybox_base_image):
    """reactor_import_image's tags are checked before the first import, not between imports."""
    from ansible_collections.osbs.flow.plugins.module_utils.pulp_sync import read_dockercfg
    from ansible_collections.osbs.flow.plugins.module_utils.registry_api import RegistryClient as Client

    engine, (_image, digest) = osbs_engine, busybox_base_image
    auth_file = engine.env["REGISTRY_AUTH_FILE"]
    client = Client("https", engine.registry, credentials=read_dockercfg(auth_file, engine.registry),
                    verify=engine.env["OSBS_LOCAL_REGISTRY_CA"])
    media_type, body, _parsed = client.manifest("osbs/busybox", digest)
    for tag in ("import-checked", "import-control"):
        client.put_manifest("osbs/busybox", tag, media_type, body)

    def stream_tags():
        stream = engine.kubectl("get", "imagestream", "osbs-busybox", "-o", "json", namespace=engine.namespace, check=False)
        return [t["tag"] for t in json.loads(stream.stdout).get("status", {}).get("tags", [])] if stream.returncode == 0 else []

    refused = run_module(engine, "reactor_import_image", dict(
        namespace=engine.namespace, image="%s/osbs/busybox:import-checked" % engine.registry, tags=["bad/tag"]))
    assert refused.get("failed") and "'bad/tag' is not a valid image tag" in refused["msg"], refused
    assert "import-checked" not in stream_tags()
    # The control: the same import with a valid list writes the ImageStreamTag this test reads.
    imported = run_module(engine, "reactor_import_image", dict(
        namespace=engine.namespace, image="%s/osbs/busybox:import-control" % engine.registry, tags=[]))
    assert imported["imagestreamtag"] == "osbs-busybox:import-control" and "import-control" in stream_tags(), imported
