"""A wave whose base image moved on before the dependent's build was instantiated (issue 14 item 4).

OpenShift resolves a Build's base from the ImageStreamTag as it is at instantiate, whatever image the request
names in triggeredByImage (openshift-apiserver pkg/build/apiserver/buildgenerator/generator.go,
resolveImageStreamReference; the trigger comparison in updateImageTriggers never picks the base). So a wave that
decided on one base digest while the tag has since moved to a newer one gets a Build of the newer base. That build
is what the cascade is for: the wave reports the base it was built from, and the wave for the newer base finds it
built and starts no second one.

moved-base <- moved-a (its ImageChange trigger paused, so only the wave starts builds of it).
"""

from __future__ import annotations

import pytest

from testlib import run_module
from wavelib import WaveGraph

pytestmark = pytest.mark.slow


def short(digest):
    """The first 12 hex digits, as the wave's reasons give a digest."""
    return digest.split(":", 1)[1][:12]


@pytest.fixture(scope="module")
def moved_graph(osbs_engine, busybox_base, tmp_path_factory):
    graph = WaveGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("moved"), prefix="moved-",
                      parents={"base": None, "a": "base"})
    graph.build_and_import("base", "a")
    graph.set_triggers_paused(True, shorts=("a",))
    return graph


def test_a_wave_meeting_a_moved_base_reports_the_builds_base_and_builds_it_once(moved_graph):
    graph = moved_graph
    meant = graph.new_base("2")["digest"]
    newer = graph.new_base("3")["digest"]
    assert graph.istag_digest("base") == newer != meant
    before = {b["metadata"]["name"] for b in graph.builds("a")}

    # The wave for base 2, run once the tag already names base 3: what a wave sees when the tag moves between
    # its decision and the instantiate.
    first = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=graph.prefix + "base:latest", digest=meant))
    assert first.get("failed") is not True, first.get("msg")
    [row] = [r for r in first["rows"] if r["buildconfig"] == graph.buildconfigs["a"]]
    assert row["action"] == "rebuilt", first["report_table"]
    [build] = [b for b in graph.builds("a") if b["metadata"]["name"] not in before]
    assert row["build"] == build["metadata"]["name"]
    assert newer in build["spec"]["strategy"]["dockerStrategy"]["from"]["name"]
    # The report names the base the build was made from, and the one the wave meant.
    assert "built from base image sha256:%s" % short(newer) in row["reason"], row["reason"]
    assert short(meant) in row["reason"] and "moved" in row["reason"], row["reason"]
    assert graph.istag_digest("a") == row["digest"]

    # The wave for base 3 finds that build: no second build of moved-a.
    second = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.namespace, imagestreamtag=graph.prefix + "base:latest", digest=newer))
    assert second.get("failed") is not True, second.get("msg")
    [row] = [r for r in second["rows"] if r["buildconfig"] == graph.buildconfigs["a"]]
    assert row["action"] == "unchanged" and row["build"] == build["metadata"]["name"], second["report_table"]
    assert second["changed"] is False
    assert [b["metadata"]["name"] for b in graph.builds("a") if b["metadata"]["name"] not in before] == [build["metadata"]["name"]]
