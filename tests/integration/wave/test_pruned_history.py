"""A wave over a BuildConfig whose old Builds were pruned behaves as with history (issue 14 item 8).

OpenShift keeps successfulBuildsHistoryLimit Builds per BuildConfig (openshift-controller-manager,
pkg/build/controller/common/util.go HandleBuildPruning) and deletes the older ones. With a limit of 1
the dependent keeps only its newest Build; each wave must still rebuild it exactly once per new base
and a rerun for the same base must find that one Build and start nothing.
"""

from __future__ import annotations

import json

import pytest

from testlib import run_module, wait_for
from wavelib import WaveGraph

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pruned_graph(osbs_engine, busybox_base, tmp_path_factory):
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("pruned"), prefix="pruned-",
                      parents={"base": None, "dep": "base"})
    graph.build_and_import("base")
    graph.make_repo("dep")
    graph.user_build("dep")
    graph.set_triggers_paused(True, shorts=("dep",))
    graph.kubectl("patch", "bc", graph.buildconfigs["dep"], "--type=merge", "-p",
                  json.dumps({"spec": {"successfulBuildsHistoryLimit": 1}}))
    return graph


def wave(graph, imported):
    result = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=imported["imagestreamtag"], digest=imported["digest"]))
    assert result.get("failed") is not True, result.get("msg")
    [row] = [row for row in result["rows"] if row["buildconfig"] == graph.buildconfigs["dep"]]
    return result, row


def test_a_wave_over_pruned_builds_rebuilds_once_and_a_rerun_starts_nothing(pruned_graph):
    graph = pruned_graph
    for version in ("2", "3"):
        before = {b["metadata"]["name"] for b in graph.builds("dep")}
        imported = graph.new_base(version)
        result, row = wave(graph, imported)
        assert row["action"] == "rebuilt", result["report_table"]
        new = [b for b in graph.builds("dep") if b["metadata"]["name"] not in before]
        assert [b["metadata"]["name"] for b in new] == [row["build"]], (row, [b["metadata"]["name"] for b in new])
        # Only the newest successful Build is kept: the ones the earlier runs made are gone.
        wait_for(lambda: [b["metadata"]["name"] for b in graph.builds("dep")] == [row["build"]], timeout=30,
                 what="the dependent's older Builds to be pruned")

        rerun, rerun_row = wave(graph, imported)
        assert rerun["changed"] is False and rerun_row["action"] == "unchanged", rerun["report_table"]
        assert [b["metadata"]["name"] for b in graph.builds("dep")] == [row["build"]]
