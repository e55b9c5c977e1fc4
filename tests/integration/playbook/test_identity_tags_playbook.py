"""The build playbook's tags rely on the flow's release numbering (issue 15): a Dockerfile without a `release` label,
built at two commits, gets two NVRs and a version-release tag for each; `latest` and `version` name the newest;
each image's labels and its Build's annotations name its own commit."""

from __future__ import annotations

import json
import re

import pytest

from osbs_local.registry_client import RegistryClient, RegistryError
from testlib import commit_files, make_git_repo, run_module, run_playbook

pytestmark = pytest.mark.slow
IMAGE = "osbs/identity-tags"


def registry_of(engine):
    with open(engine.env["REGISTRY_AUTH_FILE"]) as handle:
        return RegistryClient(engine.registry, json.load(handle)["auths"], ca_file=engine.env["OSBS_LOCAL_REGISTRY_CA"])


def run(engine, uri):
    result = run_playbook(engine, "osbs.flow.build", {
        "git_uri": uri, "git_branch": "main", "registry_uri": engine.registry, "registry_secret": engine.registry_secret,
        "autorebuild": False,
    })
    assert result.returncode == 0, result.stdout[-4000:]
    summary = dict(re.findall(r'"(nvr|unique tag|build) +: ([^"]*)"', result.stdout))
    assert summary.get("nvr", "-") != "-", result.stdout[-3000:]
    return summary


def test_two_commits_get_two_releases_and_their_own_tags(osbs_engine, busybox_base, tmp_path):
    engine = osbs_engine
    registry = registry_of(engine)
    path = tmp_path / "identity-tags"
    uri, first_commit = make_git_repo(path, {
        "Dockerfile": "FROM %s\nLABEL name=%s version=4.2\nRUN echo one > /one\n" % (busybox_base, IMAGE)})
    first = run(engine, uri)
    _, second_commit = commit_files(path, {
        "Dockerfile": "FROM %s\nLABEL name=%s version=4.2\nRUN echo two > /two\n" % (busybox_base, IMAGE)})
    second = run(engine, uri)

    assert first["nvr"] != second["nvr"] and first["unique tag"] != second["unique tag"]
    images = {}
    for summary, commit in ((first, first_commit), (second, second_commit)):
        version_release = summary["nvr"][len("osbs-identity-tags-"):]
        assert version_release.startswith("4.2-"), summary
        digest = registry.get_manifest(IMAGE, version_release)[2]
        assert registry.get_manifest(IMAGE, summary["unique tag"].rsplit(":", 1)[1])[2] == digest
        labels = registry.inspect(IMAGE, digest)["config"]["config"]["Labels"]
        assert labels["vcs-ref"] == commit and "%s-%s" % (labels["version"], labels["release"]) == version_release
        build = json.loads(engine.kubectl("get", "build", summary["build"].split()[0], "-o", "json",
                                          namespace=engine.namespace).stdout)
        assert build["metadata"]["annotations"]["commit_id"] == commit
        assert summary["unique tag"] in json.loads(build["metadata"]["annotations"]["repositories"])["unique"]
        images[commit] = digest
    assert images[first_commit] != images[second_commit]
    for floating in ("4.2", "latest"):
        assert registry.get_manifest(IMAGE, floating)[2] == images[second_commit], floating


def test_check_mode_over_a_build_whose_tags_are_not_made_yet_writes_nothing(osbs_engine, busybox_base, tmp_path):
    """The build exists (made without the playbook), its tags do not: check mode says they would move, writes
    nothing, and the import does not look for tags the registry does not have yet."""
    engine = osbs_engine
    image = "osbs/identity-check"
    uri, commit = make_git_repo(tmp_path / "identity-check", {
        "Dockerfile": "FROM %s\nLABEL name=%s version=9\nRUN echo c > /c\n" % (busybox_base, image)})
    bc = run_module(engine, "osbs_buildconfig", dict(
        namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=busybox_base,
        image=image, registry_uri=engine.registry, registry_secret=engine.registry_secret))
    assert not bc.get("failed"), bc.get("msg")
    build = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=bc["name"], git_commit=commit,
                                                  wait_timeout=600))
    assert build.get("phase") == "Complete", build.get("msg")

    before = engine.metrics()
    checked = run_playbook(engine, "osbs.flow.build", {
        "git_uri": uri, "git_branch": "main", "registry_uri": engine.registry, "registry_secret": engine.registry_secret,
        "autorebuild": False,
    }, check=True)
    assert checked.returncode == 0, checked.stdout[-4000:]
    after = engine.metrics()
    # The import's previews are ImageStreamImports with import: false, which store nothing; nothing else may write.
    written = {key: after[key] - before.get(key, 0) for key in after
               if key[0] in ("create", "update", "patch", "delete") and after[key] != before.get(key, 0)}
    assert set(written) <= {("create", "imagestreamimports")}, written
    assert engine.kubectl("get", "imagestream", "osbs-identity-check", namespace=engine.namespace, check=False).returncode != 0
    registry = registry_of(engine)
    assert registry.get_manifest(image, "latest")[2] == build["image_digest"]  # the build's own push
    with pytest.raises(RegistryError) as missing:
        registry.get_manifest(image, "9")
    assert missing.value.code == 404, "check mode put a tag"
    assert re.search(r'"nvr +: osbs-identity-check-9-\d+"', checked.stdout), checked.stdout[-3000:]
