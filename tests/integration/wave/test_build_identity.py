"""Every build's identity (issue 15) and the one commit rule (issue 16 part 2), with real builds on osbs-local.

The images' labels are read from the registry. Graph: ident-base FROM busybox, ident-app FROM ident-base.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import urlparse

import pytest

from osbs_local import registry_client
from testlib import commit_files, run_module
from wavelib import WaveGraph

PREFIX = "ident-"


def registry(engine):
    with open(engine.env["REGISTRY_AUTH_FILE"], encoding="utf-8") as handle:
        auths = json.load(handle)["auths"]
    return registry_client.RegistryClient(engine.registry, auths, engine.ca)


def image_labels(engine, repository, digest):
    return registry(engine).inspect(repository, digest)["config"]["config"]["Labels"]


@pytest.fixture(scope="module")
def graph(osbs_engine, busybox_base, tmp_path_factory):
    made = WaveGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("ident"), prefix=PREFIX,
                     parents={"base": None, "app": "base"})
    made.build_and_import("base")
    made.make_repo("app")
    return made


@pytest.mark.slow
def test_user_builds_and_an_autorebuild_get_their_own_release_and_commit_and_the_trigger_builds_the_recorded_commit(graph):
    engine = graph.engine
    first = graph.user_build("app")
    graph.import_image("app", first)
    path, _ = graph.repos["app"]
    _, second_commit = commit_files(path, {"app.txt": "two\n"}, message="second")
    second = graph.user_build("app", second_commit)
    graph.import_image("app", second)
    assert (first["release"], second["release"]) == ("1", "2"), (first, second)
    assert first["nvr"] == "ident-app-1" and second["nvr"] == "ident-app-2"

    # A rerun with nothing new builds nothing and writes nothing.
    writes = engine.writes()
    again = graph.user_build("app", second_commit)
    assert again["action"] == "existing" and again["name"] == second["name"] and again["release"] == "2"
    assert engine.writes() == writes, "a rerun with nothing new wrote"

    # The one commit rule: a commit lands on the branch but nobody builds it; the base image changes. The build the
    # cluster's ImageChange trigger starts at the import and the wave's (which adopts it or starts its own) are
    # both of the commit the BuildConfig records, never the branch head.
    _, unbuilt = commit_files(path, {"app.txt": "three\n"}, message="not built")
    bc = graph.get("bc", graph.buildconfigs["app"])
    assert bc["spec"]["source"]["git"]["ref"] == second_commit
    assert [t for t in bc["spec"]["triggers"] if t["type"] == "ImageChange" and not t["imageChange"].get("paused")]
    before = {b["metadata"]["name"] for b in graph.builds("app")}
    new_base = graph.new_base("2")
    # The import has just moved the tag: the cluster's trigger is starting its build while the wave runs.
    wave = run_module(engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=PREFIX + "base:latest", digest=new_base["digest"]))
    assert wave.get("failed") is not True, wave.get("msg")
    made = [b for b in graph.builds("app") if b["metadata"]["name"] not in before]
    assert made, "no build for the new base"
    for build in made:
        checked_out = ((build["spec"].get("revision") or build["status"].get("revision") or {}).get("git") or {}).get("commit")
        assert (build["spec"]["source"]["git"]["ref"], checked_out) == (second_commit, second_commit), build["spec"]
        assert (build.get("status") or {}).get("phase") == "Complete", build.get("status")
    [row] = [r for r in wave["rows"] if r["buildconfig"] == graph.buildconfigs["app"]]
    # The cluster's trigger started the build at the import, before the wave: the wave adopted it.
    assert row["action"] == "adopted" and len(made) == 1, (wave["report_table"], [b["metadata"]["name"] for b in made])
    [rebuilt] = [b for b in made if b["metadata"]["name"] == row["build"]]
    digest = rebuilt["status"]["output"]["to"]["imageDigest"]

    labels = {name: image_labels(engine, PREFIX + "app", build["image_digest"]) for name, build in
              (("first", first), ("second", second))}
    labels["autorebuild"] = image_labels(engine, PREFIX + "app", digest)
    releases = {name: value["release"] for name, value in labels.items()}
    assert sorted(releases.values()) == ["1", "2", "3"], releases
    assert labels["first"]["vcs-ref"] == first["git_commit"] != second_commit
    assert labels["second"]["vcs-ref"] == second_commit
    assert labels["autorebuild"]["vcs-ref"] == second_commit != unbuilt
    assert labels["autorebuild"]["io.openshift.build.commit.id"] == second_commit
    for value in labels.values():
        # The Dockerfile's own label is kept; the identity labels are there.
        assert value["name"] == PREFIX + "app"
        assert value["vcs-type"] == "git" and value["vcs-url"] == graph.repos["app"][1]
        assert value["build-date"].endswith("Z") and value["architecture"]
        assert value["com.redhat.build-host"] == urlparse(engine.base).netloc
    # The BuildConfig holds the next release, for the next build the cluster may start by itself; triggers unpaused.
    bc = graph.get("bc", graph.buildconfigs["app"])
    held = {item["name"]: item["value"] for item in bc["spec"]["output"]["imageLabels"]}
    assert held["release"] == "4" and held["vcs-ref"] == second_commit
    assert not [t for t in bc["spec"]["triggers"] if t["imageChange"].get("paused")]
    assert "osbs.flow/triggers-paused-for-start" not in bc["metadata"]["annotations"]


@pytest.mark.slow
def test_two_runs_racing_on_one_component_never_get_the_same_release(graph):
    path, _ = graph.repos["app"]
    _, one = commit_files(path, {"race.txt": "one\n"}, message="race one")
    _, two = commit_files(path, {"race.txt": "two\n"}, message="race two")
    name = graph.buildconfigs["app"]
    results = {}
    barrier = threading.Barrier(2)

    def build(commit):
        barrier.wait()
        results[commit] = run_module(graph.engine, "osbs_build", dict(
            namespace=graph.namespace, buildconfig=name, git_commit=commit, when_running="wait", wait_timeout=600))
    threads = [threading.Thread(target=build, args=(commit,)) for commit in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results.values():
        assert result.get("failed") is not True, result.get("msg")
    assert results[one]["name"] != results[two]["name"]
    assert results[one]["nvr"] != results[two]["nvr"], results
    for commit, result in results.items():
        labels = image_labels(graph.engine, PREFIX + "app", result["image_digest"])
        assert labels["release"] == result["release"] and labels["vcs-ref"] == commit
    releases = [b["spec"]["output"]["imageLabels"] for b in graph.builds("app")]
    values = [{i["name"]: i["value"] for i in labels}["release"] for labels in releases]
    assert len(values) == len(set(values)), values
