"""A dependent whose BuildConfig is busy with another build does not hold up the rest of the wave.

busy-base <- busy-a, busy-b (triggers paused, so the wave starts the builds itself). While a user
build of busy-a runs (RUN sleep 12), the wave runs with parallel=1: busy-b must be started at once,
and busy-a rebuilt once its user build has ended, from the new base.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from testlib import commit_files, make_git_repo, run_module, wait_for

PREFIX = "busy-"


def created_at(build):
    return datetime.strptime(build["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")


def completed_at(build):
    return datetime.strptime(build["status"]["completionTimestamp"], "%Y-%m-%dT%H:%M:%SZ")


class MiniGraph:
    def __init__(self, engine, busybox_base, root):
        self.engine, self.busybox_base, self.root = engine, busybox_base, root
        self.buildconfigs, self.repos = {}, {}

    def kubectl_json(self, *args):
        return json.loads(self.engine.kubectl(*args, "-o", "json", namespace=self.engine.namespace).stdout)

    def make(self, short, base, run):
        path = self.root / (PREFIX + short)
        uri, commit = make_git_repo(path, {"Dockerfile": "FROM %s\nLABEL name=%s%s\nRUN %s\n" % (base, PREFIX, short, run)})
        self.repos[short] = path
        result = run_module(self.engine, "osbs_buildconfig", dict(
            namespace=self.engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base,
            image=PREFIX + short, registry_uri=self.engine.registry, registry_secret=self.engine.registry_secret,
        ))
        assert not result.get("failed"), result.get("msg")
        self.buildconfigs[short] = result["name"]
        return commit

    def user_build(self, short, commit):
        build = run_module(self.engine, "osbs_build", dict(namespace=self.engine.namespace, buildconfig=self.buildconfigs[short],
                                                           git_commit=commit, wait_timeout=600))
        assert build.get("failed") is not True and build["phase"] == "Complete", build.get("msg")
        return build

    def import_image(self, build):
        imported = run_module(self.engine, "reactor_import_image", dict(
            namespace=self.engine.namespace, image=build["output_image"], expected_digest=build["image_digest"]))
        assert imported.get("failed") is not True, imported.get("msg")
        return imported

    def pause_triggers(self, short):
        bc = self.kubectl_json("get", "bc", self.buildconfigs[short])
        ops = [{"op": "add", "path": "/spec/triggers/%d/imageChange/paused" % i, "value": True}
               for i, trigger in enumerate(bc["spec"]["triggers"]) if trigger["type"] == "ImageChange"]
        self.engine.kubectl("patch", "bc", self.buildconfigs[short], "--type=json", "-p", json.dumps(ops), namespace=self.engine.namespace)

    def builds(self, short):
        items = self.kubectl_json("get", "builds", "-l", "openshift.io/build-config.name=%s" % self.buildconfigs[short])["items"]
        return {b["metadata"]["name"]: b for b in items}


@pytest.fixture(scope="module")
def busy_graph(osbs_engine, busybox_base, tmp_path_factory):
    graph = MiniGraph(osbs_engine, busybox_base, tmp_path_factory.mktemp("busy"))
    base_commit = graph.make("base", busybox_base, "echo base > /base")
    graph.import_image(graph.user_build("base", base_commit))
    base_image = "%s/%sbase:latest" % (osbs_engine.registry, PREFIX)
    graph.make("a", base_image, "sleep 12 && echo a > /a")
    graph.make("b", base_image, "echo b > /b")
    for short in ("a", "b"):
        graph.pause_triggers(short)
    return graph


def test_a_busy_dependent_does_not_hold_up_the_others(busy_graph):
    graph = busy_graph
    _, commit = commit_files(graph.repos["base"], {"version.txt": "2\n"}, message="base 2")
    new_base = graph.user_build("base", commit)
    before = {short: set(graph.builds(short)) for short in ("a", "b")}

    # A user build of busy-a from the old base (started before the new base is imported), running when the wave starts.
    user = graph.engine.session().post(
        "%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs/%s/instantiate" % (graph.engine.base, graph.engine.namespace, graph.buildconfigs["a"]),
        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": graph.buildconfigs["a"]}},
    ).json()["metadata"]["name"]
    wait_for(lambda: graph.builds("a")[user]["status"]["phase"] == "Running", timeout=60, what="the user build of busy-a to run")
    imported = graph.import_image(new_base)

    result = run_module(graph.engine, "osbs_autorebuild", dict(
        namespace=graph.engine.namespace, imagestreamtag=imported["imagestreamtag"], digest=imported["digest"], parallel=1))
    assert result.get("failed") is not True, result.get("msg")
    rows = {row["buildconfig"]: row for row in result["rows"]}
    assert rows[graph.buildconfigs["a"]]["action"] == "rebuilt" and rows[graph.buildconfigs["b"]]["action"] == "rebuilt", result["report_table"]

    builds_a, builds_b = graph.builds("a"), graph.builds("b")
    user_build = builds_a[user]
    [rebuild_a] = [b for name, b in builds_a.items() if name not in before["a"] and name != user]
    [rebuild_b] = [b for name, b in builds_b.items() if name not in before["b"]]
    # busy-b was started while busy-a's user build still ran (it sleeps 12 s), not after it;
    # busy-a was rebuilt from the new base once its user build had ended.
    assert created_at(rebuild_b) < completed_at(user_build), (rebuild_b["metadata"], user_build["status"])
    assert created_at(rebuild_a) >= completed_at(user_build)
    assert imported["digest"] in json.dumps(rebuild_a["spec"]["strategy"]) + json.dumps(rebuild_a["spec"].get("triggeredBy"))
