"""The build playbook with scratch=true, against osbs-local with real builds (issue 15): the image is pushed to its
unique tag only; no import, no Pulp sync, no wave; the component's BuildConfig is not written (its ref, annotations,
labels and resourceVersion stay), `latest` does not move, and the next normal run takes the next release."""

from __future__ import annotations

import json
import subprocess

import pytest

from osbs_local import registry_client
from testlib import commit_files, make_git_repo, run_playbook


def kubectl_json(engine, *args):
    return json.loads(subprocess.run(["kubectl", "--kubeconfig", engine.kubeconfig, "-n", engine.namespace, *args, "-o", "json"],
                                     capture_output=True, text=True, check=True).stdout)


def registry(engine):
    with open(engine.env["REGISTRY_AUTH_FILE"], encoding="utf-8") as handle:
        return registry_client.RegistryClient(engine.registry, json.load(handle)["auths"], engine.ca)


def tags(engine, repository):
    client = registry(engine)
    response = client._request("GET", "/v2/%s/tags/list" % repository, {}, "repository:%s:pull" % repository)  # pylint: disable=protected-access
    return set(response.json().get("tags") or [])


@pytest.mark.slow
def test_a_scratch_run_pushes_its_unique_tag_only_and_leaves_the_buildconfig_and_latest_alone(osbs_engine, tmp_path):
    path = tmp_path / "pb-scratchy"
    uri, _ = make_git_repo(path, {"Dockerfile": "FROM scratch\nCOPY hello /hello\nLABEL name=osbs/pb-scratchy version=3\n",
                                  "hello": "hello\n"})
    values = {"git_uri": uri, "git_branch": "main", "registry_uri": osbs_engine.registry,
              "registry_secret": osbs_engine.registry_secret, "osbs_namespace": osbs_engine.namespace}
    first = run_playbook(osbs_engine, "osbs.flow.build", values)
    assert first.returncode == 0, first.stdout[-3000:]
    stream = kubectl_json(osbs_engine, "get", "imagestream", "osbs-pb-scratchy")
    tags_before = tags(osbs_engine, "osbs/pb-scratchy")
    assert "latest" in tags_before
    latest_before = registry(osbs_engine).get_manifest("osbs/pb-scratchy", "latest")[2]
    bc_before = kubectl_json(osbs_engine, "get", "buildconfig")["items"]
    bc_before = next(bc for bc in bc_before if bc["spec"]["source"]["git"]["uri"] == uri)

    commit_files(path, {"hello": "hello, scratch\n"}, message="try")
    scratch = run_playbook(osbs_engine, "osbs.flow.build", dict(values, scratch=True))
    assert scratch.returncode == 0, scratch.stdout[-3000:]
    new_tags = tags(osbs_engine, "osbs/pb-scratchy") - tags_before
    assert len(new_tags) == 1, new_tags  # its unique tag, nothing else
    assert kubectl_json(osbs_engine, "get", "imagestream", "osbs-pb-scratchy")["status"] == stream["status"]
    assert registry(osbs_engine).get_manifest("osbs/pb-scratchy", "latest")[2] == latest_before
    bc_after = kubectl_json(osbs_engine, "get", "buildconfig", bc_before["metadata"]["name"])
    # Not written at all: the next autorebuild (the cluster's trigger, the wave) still builds the user-built commit.
    assert bc_after["metadata"]["resourceVersion"] == bc_before["metadata"]["resourceVersion"], \
        (bc_before["spec"]["source"], bc_after["spec"]["source"], bc_after["metadata"].get("annotations"))

    # The branch moved on, so a normal run builds its head; the scratch build did not take its release.
    second = run_playbook(osbs_engine, "osbs.flow.build", values)
    assert second.returncode == 0, second.stdout[-3000:]
    builds = kubectl_json(osbs_engine, "get", "builds", "-l", "openshift.io/build-config.name")["items"]
    ours = sorted((b for b in builds if b["spec"]["source"]["git"]["uri"] == uri),
                  key=lambda b: int(b["metadata"]["annotations"]["openshift.io/build.number"]))
    releases = [{i["name"]: i["value"] for i in b["spec"]["output"]["imageLabels"]}["release"] for b in ours]
    assert releases == ["1", "2"], releases
