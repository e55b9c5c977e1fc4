"""The build playbook's tags rely on the flow's release numbering (issue 15): a Dockerfile without a `release` label,
built at two commits, gets two NVRs and a version-release tag for each; `latest` and `version` name the newest;
each image's labels and its Build's annotations name its own commit."""

from __future__ import annotations

import json
import re

import pytest

from osbs_local.registry_client import RegistryClient
from testlib import commit_files, make_git_repo, run_playbook

pytestmark = pytest.mark.slow
IMAGE = "osbs/identity-tags"


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
    with open(engine.env["REGISTRY_AUTH_FILE"]) as handle:
        registry = RegistryClient(engine.registry, json.load(handle)["auths"], ca_file=engine.env["OSBS_LOCAL_REGISTRY_CA"])
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
