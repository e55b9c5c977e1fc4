"""reactor_import_image and the autorebuild wave against osbs-local, with real builds (issue 5, "Done when").

The tests share one graph (conftest.py) and run in file order: the import checks, the wave with the
engine's ImageChange triggers active, the wave with them paused, the re-run, then the cycle. Each also
passes alone: it reads only the graph its fixtures build, and what the cluster holds.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from testlib import COLLECTIONS, VENV_BIN, make_git_repo, run_module, run_playbook
from wavelib import DEPENDENTS, PREFIX

pytestmark = pytest.mark.slow

WRONG_DIGEST = "sha256:" + "0" * 64
# New Complete builds per dependent, the same whether the engine's triggers are active or paused:
# app and leaf once each, tool and odd not at all.
BUILT_EITHER_WAY = {"app": 1, "leaf": 1, "tool": 0, "odd": 0}


def test_import_image_check_mode_idempotence_and_failures(wave_repos, base_build):
    graph = wave_repos
    stream = PREFIX + "base"
    args = dict(namespace=graph.namespace, image=base_build["output_image"], expected_digest=base_build["image_digest"])

    checked = run_module(graph.engine, "reactor_import_image", args, check_mode=True, diff=True)
    assert checked.get("failed") is not True, checked.get("msg")
    assert checked["changed"] is True and checked["created"] is True
    assert checked["digest"] == base_build["image_digest"]
    assert checked["diff"]["after"]["digest"] == base_build["image_digest"]
    assert graph.kubectl("get", "imagestream", stream, check=False).returncode != 0, "check mode created the ImageStream"

    wrong = run_module(graph.engine, "reactor_import_image", dict(args, expected_digest=WRONG_DIGEST))
    assert wrong["failed"] is True
    assert "not the expected digest %s" % WRONG_DIGEST in wrong["msg"] and base_build["image_digest"] in wrong["msg"]
    assert graph.kubectl("get", "imagestream", stream, check=False).returncode != 0, "a refused import moved something"

    first = run_module(graph.engine, "reactor_import_image", args)
    assert first["changed"] is True and first["created"] is True, first
    assert first["imagestreamtag"] == stream + ":latest"
    assert first["image_reference"].endswith("/%s@%s" % (stream, base_build["image_digest"]))
    assert first["previous_digest"] is None
    created = graph.get("imagestream", stream)
    # Only this tag, imported by digest: no dockerImageRepository, which would make OpenShift import every tag.
    assert "dockerImageRepository" not in created["spec"]
    [tag] = created["spec"]["tags"]
    assert tag["name"] == "latest"
    assert tag["from"] == {"kind": "DockerImage", "name": "%s/%s@%s" % (graph.engine.registry, stream, base_build["image_digest"])}
    assert tag["importPolicy"].get("insecure") in (None, False)
    assert graph.istag_digest("base") == base_build["image_digest"]

    writes = graph.engine.writes()
    again = run_module(graph.engine, "reactor_import_image", args)
    assert again["changed"] is False and again["digest"] == base_build["image_digest"]
    assert graph.engine.writes() == writes, "an import of the digest the tag already has sent a write request"

    missing = run_module(graph.engine, "reactor_import_image", dict(
        namespace=graph.namespace, image="%s/%snowhere:latest" % (graph.engine.registry, PREFIX)))
    assert missing["failed"] is True
    assert "importing %s/%snowhere:latest failed" % (graph.engine.registry, PREFIX) in missing["msg"]
    assert "NotFound" in missing["msg"]


def test_import_image_returns_the_dependents(wave_graph):
    graph = wave_graph
    result = graph.import_image("base", {"output_image": graph.image_ref("base"), "image_digest": None})
    assert result["changed"] is False
    dependents = {d["name"]: d for d in result["dependents"]}
    assert sorted(dependents) == sorted(graph.buildconfigs[s] for s in ("app", "tool", "odd"))
    app = dependents[graph.buildconfigs["app"]]
    assert app["git_uri"] == graph.repos["app"][1]
    assert app["git_branch"] == "main"
    assert app["git_commit"] == graph.commits["app"]
    assert app["repo_config_file"] == ".osbs-repo-config"
    assert app["output_image"] == graph.image_ref("app")
    assert app["trigger"]["imageChange"]["from"] == {"kind": "ImageStreamTag", "name": PREFIX + "base:latest"}


def assert_issue_outcome(graph, rows, before, new_base_digest):
    """app then leaf rebuilt (or adopted), each once; tool skipped; odd failed naming its file and value."""
    by_bc = {row["buildconfig"]: row for row in rows}
    names = graph.buildconfigs
    assert sorted(by_bc) == sorted(names[s] for s in DEPENDENTS)
    app, leaf, tool, odd = (by_bc[names[s]] for s in DEPENDENTS)
    order = [row["buildconfig"] for row in rows]
    assert order.index(names["app"]) < order.index(names["leaf"])
    assert app["action"] in ("rebuilt", "adopted") and leaf["action"] in ("rebuilt", "adopted"), rows
    assert tool["action"] == "skipped" and "disabled by .osbs-repo-config" in tool["reason"]
    assert odd["action"] == "failed"
    assert ".osbs-repo-config" in odd["reason"] and "'maybe'" in odd["reason"] and "enabled" in odd["reason"]

    new = graph.new_builds(before)
    assert [b["metadata"]["name"] for b in new["app"]] == [app["build"]]
    assert [b["metadata"]["name"] for b in new["leaf"]] == [leaf["build"]]
    completed = {s: [b for b in new[s] if b["status"]["phase"] == "Complete"] for s in DEPENDENTS}
    for short in ("tool", "odd"):
        assert completed[short] == [], "%s was built although it is not to be: %s" % (short, new[short])
        assert all(b["status"]["phase"] == "Cancelled" for b in new[short]), new[short]
    # Each image is in its ImageStreamTag; leaf was built from app's new image, app from the new base.
    assert graph.istag_digest("app") == app["digest"]
    assert graph.istag_digest("leaf") == leaf["digest"]
    assert new_base_digest in new["app"][0]["spec"]["strategy"]["dockerStrategy"]["from"]["name"]
    assert app["digest"] in new["leaf"][0]["spec"]["strategy"]["dockerStrategy"]["from"]["name"]
    # leaf's build began only after app's image was imported.
    app_done = new["app"][0]["status"]["completionTimestamp"]
    assert new["leaf"][0]["metadata"]["creationTimestamp"] >= app_done
    return {s: len(completed[s]) for s in DEPENDENTS}


def role_playbook(path):
    path.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: osbs.flow.autorebuild
    """))
    return path


def test_wave_with_the_engines_triggers_active(wave_graph, tmp_path):
    graph = wave_graph
    graph.set_triggers_paused(False)
    before = graph.build_names()
    imported = graph.new_base("active")

    report = tmp_path / "report.json"
    proc = run_playbook(graph.engine, role_playbook(tmp_path / "play.yml"), extra_vars={
        "osbs_namespace": graph.namespace,
        "osbs_import": {"imagestreamtag": imported["imagestreamtag"], "digest": imported["digest"]},
        "osbs_autorebuild_parallel": 4,
        "osbs_autorebuild_report_path": str(report),
        "ansible_python_interpreter": sys.executable,  # the venv with kubernetes, not the discovered python
    })
    out = proc.stdout
    assert proc.returncode != 0, out  # odd failed, so the play fails, after the report
    assert "Autorebuild failed for %s" % graph.buildconfigs["odd"] in out, out
    assert "IMAGE" in out and "BUILDCONFIG" in out and "REASON" in out, out  # the table was printed
    rows = json.loads(report.read_text())
    # With active triggers the engine started app's build at the base import, seconds before the wave: adopted.
    # leaf's trigger fires when the wave imports app's image, racing the wave's own start of leaf; whichever
    # wins, the other sees its build (assert_issue_outcome checks there is exactly one).
    by_bc = {row["buildconfig"]: row for row in rows}
    assert by_bc[graph.buildconfigs["app"]]["action"] == "adopted", rows
    # Beside the report, the picture: each dependent's image and outcome in the SVG and in the Mermaid block.
    svg, markdown = (tmp_path / "report.svg").read_text(), (tmp_path / "report.md").read_text()
    assert "The wave as a picture: %s and %s" % (tmp_path / "report.svg", tmp_path / "report.md") in out, out
    svg_lines = [html.unescape(text) for text in re.findall(r"<text[^>]*>(.*?)</text>", svg)]  # dot writes - as &#45;
    for row in rows:
        name = row["image"].split("/", 1)[1]
        assert svg_lines[svg_lines.index(name) + 1] == row["action"].upper(), (name, svg_lines)
        assert '["%s<br/>%s<br/>' % (name, row["action"].upper()) in markdown, (name, markdown)
    new = graph.new_builds(before)
    assert len(new["tool"]) == len(new["odd"]) == 1, "the triggers started no build for the wave to cancel: %s" % new
    assert sorted(by_bc[graph.buildconfigs[s]]["reason"].count("cancelled build") for s in ("tool", "odd")) == [1, 1], rows
    assert "cancelled build" not in json.dumps([by_bc[graph.buildconfigs[s]] for s in ("app", "leaf")])
    assert assert_issue_outcome(graph, rows, before, imported["digest"]) == BUILT_EITHER_WAY


def test_wave_with_the_engines_triggers_paused(wave_graph):
    graph = wave_graph
    graph.set_triggers_paused(True)
    before = graph.build_names()
    imported = graph.new_base("paused")
    args = dict(namespace=graph.namespace, imagestreamtag=imported["imagestreamtag"], digest=imported["digest"], parallel=4)

    checked = run_module(graph.engine, "osbs_autorebuild", dict(args, fail_on_error=False), check_mode=True)
    assert checked.get("failed") is not True, checked.get("msg")
    assert checked["changed"] is True
    would = {row["buildconfig"]: row for row in checked["rows"]}
    assert would[graph.buildconfigs["app"]]["action"] == "rebuilt" and "a build would start" in would[graph.buildconfigs["app"]]["reason"]
    assert would[graph.buildconfigs["leaf"]]["action"] == "rebuilt" and graph.buildconfigs["app"] in would[graph.buildconfigs["leaf"]]["reason"]
    assert would[graph.buildconfigs["tool"]]["action"] == "skipped" and would[graph.buildconfigs["odd"]]["action"] == "failed"
    assert graph.new_builds(before) == {s: [] for s in DEPENDENTS}, "check mode started a build"

    result = run_module(graph.engine, "osbs_autorebuild", args)
    assert result["failed"] is True
    assert "failed for %s" % graph.buildconfigs["odd"] in result["msg"]
    assert result["report_table"] in result["msg"]
    assert result["changed"] is True
    by_bc = {row["buildconfig"]: row for row in result["rows"]}
    assert by_bc[graph.buildconfigs["app"]]["action"] == "rebuilt"
    assert by_bc[graph.buildconfigs["leaf"]]["action"] == "rebuilt"
    completed = assert_issue_outcome(graph, result["rows"], before, imported["digest"])
    assert all(graph.new_builds(before)[s] == [] for s in ("tool", "odd")), "a paused trigger started a build"
    assert completed == BUILT_EITHER_WAY


def test_rerun_with_no_new_base_starts_no_build(wave_graph):
    graph = wave_graph
    before = graph.build_names()
    digest = graph.istag_digest("base")
    args = dict(namespace=graph.namespace, image=graph.image_ref("base"), fail_on_error=False)

    checked = run_module(graph.engine, "osbs_autorebuild", args, check_mode=True)
    assert checked.get("failed") is not True, checked.get("msg")
    assert checked["changed"] is False, checked["report_table"]

    again = run_module(graph.engine, "osbs_autorebuild", args)
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False, again["report_table"]
    assert again["digest"] == digest
    actions = {row["buildconfig"]: row["action"] for row in again["rows"]}
    assert actions == {graph.buildconfigs["app"]: "unchanged", graph.buildconfigs["leaf"]: "unchanged",
                       graph.buildconfigs["tool"]: "skipped", graph.buildconfigs["odd"]: "failed"}
    assert again["failed_dependents"] == [graph.buildconfigs["odd"]]
    assert graph.new_builds(before) == {s: [] for s in DEPENDENTS}
    print("re-run of the wave over %d dependents: %.3f s, %d git fetches" % (len(again["rows"]), again["elapsed"], again["git_fetches"]))


def test_a_cycle_is_reported_not_looped(osbs_engine, busybox_base, tmp_path):
    names = {}
    for me, other in (("cyc1", "cyc2"), ("cyc2", "cyc1")):
        uri, commit = make_git_repo(tmp_path / me, {"Dockerfile": "FROM %s/%s%s:latest\n" % (osbs_engine.registry, PREFIX, other)})
        bc = run_module(osbs_engine, "osbs_buildconfig", dict(
            namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", git_commit=commit,
            base_image="%s/%s%s:latest" % (osbs_engine.registry, PREFIX, other), image=PREFIX + me,
            registry_uri=osbs_engine.registry, create_base_imagestream=False,
        ))
        assert not bc.get("failed"), bc.get("msg")
        names[me] = bc["name"]

    result = run_module(osbs_engine, "osbs_autorebuild", dict(
        namespace=osbs_engine.namespace, imagestreamtag=PREFIX + "cyc1:latest", digest=WRONG_DIGEST,
    ), timeout=60)
    assert result["failed"] is True
    assert "dependency cycle" in result["msg"]
    assert names["cyc1"] in result["msg"] and names["cyc2"] in result["msg"]
    assert {row["action"] for row in result["rows"]} == {"failed"}
    assert result["changed"] is False
    assert len(result["cycles"]) == 1 and sorted(result["cycles"][0][:-1]) == sorted(
        "%s/%s" % (osbs_engine.namespace, n) for n in names.values())
    builds = subprocess.run(["kubectl", "--kubeconfig", osbs_engine.kubeconfig, "-n", osbs_engine.namespace, "get", "builds",
                             "-o", "name"], capture_output=True, text=True, check=True).stdout
    assert all(names[n] not in builds for n in names)


def test_ansible_doc_reads_completely():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    for module in ("reactor_import_image", "osbs_autorebuild"):
        proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "osbs.flow.%s" % module], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES", "check_mode", "diff_mode", "idempotent", "kubeconfig"):
            assert section in proc.stdout, (module, section)
        assert "[ERROR]" not in proc.stderr
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "-t", "role", "osbs.flow.autorebuild"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "osbs_autorebuild_report_path" in proc.stdout
