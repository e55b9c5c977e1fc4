"""A Dockerfile's own release, and scratch builds, against osbs-local with real builds (issue 15).

Labels are read from the registry, the BuildConfig and ImageStream with kubectl.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from osbs_local import registry_client
from testlib import commit_files, make_git_repo, run_module


def kubectl_json(engine, *args):
    out = subprocess.run(["kubectl", "--kubeconfig", engine.kubeconfig, "-n", engine.namespace, *args, "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def registry(engine):
    with open(engine.env["REGISTRY_AUTH_FILE"], encoding="utf-8") as handle:
        return registry_client.RegistryClient(engine.registry, json.load(handle)["auths"], engine.ca)


def image_labels(engine, repository, reference):
    return registry(engine).inspect(repository, reference)["config"]["config"]["Labels"]


def set_up(engine, base, path, name, labels):
    label_line = " ".join("%s=%s" % item for item in labels.items())
    uri, commit = make_git_repo(path, {"Dockerfile": "FROM %s\nLABEL %s\nRUN echo %s > /x\n" % (base, label_line, path.name)})
    bc = run_module(engine, "osbs_buildconfig", dict(
        namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base, image=name,
        registry_uri=engine.registry, registry_secret=engine.registry_secret, dockerfile_labels=labels))
    assert bc.get("failed") is not True, bc.get("msg")
    return uri, commit, bc["name"]


@pytest.mark.slow
def test_a_dockerfile_release_is_kept_for_user_builds_and_autorebuilds_get_release_dot_n(osbs_engine, busybox_base, tmp_path):
    labels = {"name": "osbs/relkeep", "version": "2.0", "release": "7"}
    _, commit, name = set_up(osbs_engine, busybox_base, tmp_path / "relkeep", "osbs/relkeep", labels)
    user = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit,
                                                      dockerfile_labels=labels))
    assert user.get("failed") is not True, user.get("msg")
    assert (user["release"], user["nvr"]) == ("7", "osbs-relkeep-2.0-7")
    built = image_labels(osbs_engine, "osbs/relkeep", user["image_digest"])
    assert (built["name"], built["version"], built["release"], built["vcs-ref"]) == ("osbs/relkeep", "2.0", "7", commit)
    # The Dockerfile's own labels are not in the Build's imageLabels: the builder's last LABEL would override them.
    [build] = kubectl_json(osbs_engine, "get", "builds", "-l", "openshift.io/build-config.name=%s" % name)["items"]
    assert not {"name", "version", "release"} & {i["name"] for i in build["spec"]["output"]["imageLabels"]}
    # Its NVR is recorded on it through the BuildRequest's annotations, which instantiate copies onto the Build.
    assert build["metadata"]["annotations"]["osbs.flow/nvr"] == "osbs-relkeep-2.0-7"

    auto = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, mode="autorebuild",
                                                      force=True))
    assert auto.get("failed") is not True, auto.get("msg")
    assert (auto["release"], auto["nvr"], auto["git_commit"]) == ("7.1", "osbs-relkeep-2.0-7.1", commit)
    assert image_labels(osbs_engine, "osbs/relkeep", auto["image_digest"])["release"] == "7.1"

    # A run that died between its prepare and settle writes left the triggers paused: the next run, even one that
    # builds nothing, unpauses them and closes the window; the one after writes nothing.
    bc = kubectl_json(osbs_engine, "get", "bc", name)
    for trigger in bc["spec"]["triggers"]:
        trigger["imageChange"]["paused"] = True
    bc["metadata"]["annotations"]["osbs.flow/triggers-paused-for-start"] = json.dumps(
        {"paused": [t["imageChange"]["from"]["name"] for t in bc["spec"]["triggers"]], "since": "2026-01-01T00:00:00Z"})
    replaced = subprocess.run(["kubectl", "--kubeconfig", osbs_engine.kubeconfig, "-n", osbs_engine.namespace, "replace", "--validate=false", "-f", "-"],
                              input=json.dumps(bc), capture_output=True, text=True, check=False)
    assert replaced.returncode == 0, replaced.stderr
    rerun = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit,
                                                       dockerfile_labels=labels))
    assert rerun["action"] == "existing" and rerun["changed"] is True, rerun
    bc = kubectl_json(osbs_engine, "get", "bc", name)
    assert not [t for t in bc["spec"]["triggers"] if t["imageChange"].get("paused")]
    assert "osbs.flow/triggers-paused-for-start" not in bc["metadata"]["annotations"]
    writes = osbs_engine.writes()
    again = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit,
                                                       dockerfile_labels=labels))
    assert again["action"] == "existing" and again["changed"] is False and osbs_engine.writes() == writes

    # A new commit whose Dockerfile keeps release 7: that NVR exists, so it is refused before any write (OSBS's
    # bump_release: "build already exists").
    path = tmp_path / "relkeep"
    _, newer = commit_files(path, {"more": "more\n"}, message="keeps release 7")
    refused = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=newer,
                                                         dockerfile_labels=labels))
    assert refused.get("failed") is True and "osbs-relkeep-2.0-7" in refused["msg"], refused
    assert "bump the release label in the Dockerfile" in refused["msg"], refused["msg"]
    assert osbs_engine.writes() == writes


@pytest.mark.slow
def test_a_scratch_build_touches_nothing_of_the_component(osbs_engine, busybox_base, tmp_path):
    labels = {"name": "osbs/scratchy", "version": "1.0"}
    path = tmp_path / "scratchy"
    uri, commit, name = set_up(osbs_engine, busybox_base, path, "osbs/scratchy", labels)
    first = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert first.get("failed") is not True and first["release"] == "1", first.get("msg")
    imported = run_module(osbs_engine, "reactor_import_image", dict(
        namespace=osbs_engine.namespace, image=first["output_image"], expected_digest=first["image_digest"]))
    assert imported.get("failed") is not True, imported.get("msg")
    latest_before = registry(osbs_engine).inspect("osbs/scratchy", "latest")["digest"]
    stream_before = kubectl_json(osbs_engine, "get", "imagestream", "osbs-scratchy")
    bc_before = kubectl_json(osbs_engine, "get", "bc", name)

    _, next_commit = commit_files(path, {"x.txt": "scratch\n"}, message="try something")
    checked = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name,
                                                         git_commit=next_commit, scratch=True), check_mode=True)
    assert checked["changed"] is True and checked["action"] == "would_start"
    scratch = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name,
                                                         git_commit=next_commit, scratch=True))
    assert scratch.get("failed") is not True, scratch.get("msg")
    assert scratch["scratch"] is True and scratch["phase"] == "Complete" and scratch["git_commit"] == next_commit
    assert scratch["release"].startswith("scratch.") and scratch["output_image"].endswith(":" + scratch["unique_tag"])
    pushed = image_labels(osbs_engine, "osbs/scratchy", scratch["unique_tag"])
    assert pushed["release"] == scratch["release"] and pushed["vcs-ref"] == next_commit

    # latest unmoved, the ImageStream and the BuildConfig unchanged (no number, no release, no commit taken).
    assert registry(osbs_engine).inspect("osbs/scratchy", "latest")["digest"] == latest_before
    assert kubectl_json(osbs_engine, "get", "imagestream", "osbs-scratchy")["status"] == stream_before["status"]
    bc_after = kubectl_json(osbs_engine, "get", "bc", name)
    assert bc_after["metadata"]["resourceVersion"] == bc_before["metadata"]["resourceVersion"]
    builds = kubectl_json(osbs_engine, "get", "builds", "-l", "openshift.io/build-config.name=%s" % name)["items"]
    assert [b["metadata"]["name"] for b in builds] == [first["name"]]

    # The next user build's reuse check and release are as if the scratch build never ran.
    writes = osbs_engine.writes()
    rerun = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert rerun["action"] == "existing" and rerun["name"] == first["name"]
    assert osbs_engine.writes() == writes
    second = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name,
                                                        git_commit=next_commit, dockerfile_labels=labels))
    assert second.get("failed") is not True and second["action"] == "started", second.get("msg")
    assert (second["release"], second["nvr"]) == ("2", "osbs-scratchy-1.0-2")


def test_from_latest_is_refused_by_the_one_commit_rule_before_anything_is_written(osbs_engine):
    writes = osbs_engine.writes()
    build = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig="any-bc", mode="autorebuild",
                                                       from_latest=True))
    wave = run_module(osbs_engine, "osbs_autorebuild", dict(namespace=osbs_engine.namespace, imagestreamtag="any:latest",
                                                            from_latest=True))
    for result in (build, wave):
        assert result["failed"] is True
        assert "from_latest is not supported" in result["msg"] and "records" in result["msg"], result["msg"]
    assert osbs_engine.writes() == writes
