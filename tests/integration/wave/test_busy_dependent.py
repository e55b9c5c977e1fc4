"""A dependent whose BuildConfig is busy with another build does not hold up the rest of the wave.

busy-base <- busy-a, busy-b (triggers paused, so the wave starts the builds itself). While a user
build of busy-a runs (RUN sleep 12), the wave runs with parallel=1: busy-b must be started at once,
and busy-a rebuilt once its user build has ended, from the new base.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from testlib import commit_files, run_module, wait_for
from wavelib import WaveGraph

pytestmark = pytest.mark.slow


def created_at(build):
    return datetime.strptime(build["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")


def completed_at(build):
    return datetime.strptime(build["status"]["completionTimestamp"], "%Y-%m-%dT%H:%M:%SZ")


def builds_by_name(graph, short):
    return {b["metadata"]["name"]: b for b in graph.builds(short)}


@pytest.fixture(scope="module")
def busy_graph(osbs_engine, busybox_base, tmp_path_factory):
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("busy"), prefix="busy-",
                      parents={"base": None, "a": "base", "b": "base"})
    graph.build_and_import("base")
    graph.make_repo("a", slow=True, sleep=12)
    graph.make_repo("b")
    for short in ("a", "b"):
        graph.ensure_buildconfig(short)
    graph.set_triggers_paused(True, shorts=("a", "b"))
    return graph


def test_a_busy_dependent_does_not_hold_up_the_others(busy_graph):
    graph = busy_graph
    path, _ = graph.repos["base"]
    _, commit = commit_files(path, {"version.txt": "2\n"}, message="base 2")
    new_base = graph.user_build("base", commit)
    before = {short: set(builds_by_name(graph, short)) for short in ("a", "b")}

    # A user build of busy-a from the old base (started before the new base is imported), running when the wave starts.
    user = graph.engine.session().post(
        "%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs/%s/instantiate" % (graph.engine.base, graph.namespace, graph.buildconfigs["a"]),
        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": graph.buildconfigs["a"]}},
    ).json()["metadata"]["name"]
    wait_for(lambda: builds_by_name(graph, "a")[user]["status"]["phase"] == "Running", timeout=60, what="the user build of busy-a to run")
    imported = graph.import_image("base", new_base)

    result = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=imported["imagestreamtag"], digest=imported["digest"], parallel=1))
    assert result.get("failed") is not True, result.get("msg")
    rows = {row["buildconfig"]: row for row in result["rows"]}
    assert rows[graph.buildconfigs["a"]]["action"] == "rebuilt" and rows[graph.buildconfigs["b"]]["action"] == "rebuilt", result["report_table"]

    builds_a, builds_b = builds_by_name(graph, "a"), builds_by_name(graph, "b")
    user_build = builds_a[user]
    [rebuild_a] = [b for name, b in builds_a.items() if name not in before["a"] and name != user]
    [rebuild_b] = [b for name, b in builds_b.items() if name not in before["b"]]
    # busy-b was started while busy-a's user build still ran (it sleeps 12 s), not after it;
    # busy-a was rebuilt from the new base once its user build had ended.
    assert created_at(rebuild_b) < completed_at(user_build), (rebuild_b["metadata"], user_build["status"])
    assert created_at(rebuild_a) >= completed_at(user_build)
    assert imported["digest"] in json.dumps(rebuild_a["spec"]["strategy"]) + json.dumps(rebuild_a["spec"].get("triggeredBy"))
