"""Issue 13 item 6: the engine dies (`kill -9`) while the wave's dependents build, then comes back.

lost-base <- lost-a, lost-b (RUN sleep 30; triggers paused, so the wave starts the builds itself). The wave
runs in its own process; once both dependents' builds are Running the engine's serve process is killed.
Every module must then fail within seconds naming the API server it cannot reach. After `osbs-local up` in
the same state directory the interrupted builds have ended unsuccessfully, and one rerun of the wave must
finish what was left with exactly one new build per dependent, although the BuildConfigs' triggers already
record the new base image (instantiate with triggeredByImage answers 500 "already instantiated", as
OpenShift does).

This test runs an engine of its own, since it kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from testlib import COLLECTIONS, module_env, run_module, start_engine, stop_engine, wait_for
from wavelib import WaveGraph

pytestmark = pytest.mark.slow

LOST_WITHIN = 30  # seconds from the kill to the module's failure


def start_module(engine, module, args):
    """osbs.flow.<module> as Ansible runs it, in the background: (process, path of its arguments file)."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    with handle:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}, handle)
    path = COLLECTIONS / "ansible_collections" / "osbs" / "flow" / "plugins" / "modules" / ("%s.py" % module)
    process = subprocess.Popen([sys.executable, str(path), handle.name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=module_env(engine))
    return process, handle.name


def finish_module(process, args_file, timeout):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        os.unlink(args_file)
    try:
        return json.loads(stdout)
    except ValueError:
        raise AssertionError("the module printed no JSON (rc %s):\n%s\n%s" % (process.returncode, stdout, stderr))


@pytest.fixture(scope="module")
def own_engine(tmp_path_factory):
    engine = start_engine(tmp_path_factory.mktemp("lost-engine"))
    holder = {"engine": engine}
    yield holder
    stop_engine(holder["engine"])


@pytest.fixture(scope="module")
def lost_graph(own_engine, tmp_path_factory):
    from osbs_local.executor.base_image import build_busybox_base

    engine = own_engine["engine"]
    busybox = "%s/osbs/busybox:latest" % engine.registry
    build_busybox_base(busybox, storage_dir=tmp_path_factory.mktemp("lost-storage"),
                       auth_file=engine.env["REGISTRY_AUTH_FILE"], cert_dir=engine.state_dir / "certs.d" / engine.registry)
    graph = WaveGraph(engine, busybox, tmp_path_factory.mktemp("lost"), prefix="lost-",
                      parents={"base": None, "a": "base", "b": "base"})
    graph.build_and_import("base")
    for short in ("a", "b"):
        graph.make_repo(short, slow=True, sleep=30)
        graph.ensure_buildconfig(short)
    graph.set_triggers_paused(True, shorts=("a", "b"))
    return graph


def latest_build(graph, short):
    builds = graph.builds(short)
    return builds[-1] if builds else None


def test_a_lost_engine_fails_the_wave_at_once_and_one_rerun_finishes_it(own_engine, lost_graph):
    graph = lost_graph
    engine = graph.engine
    imported = graph.new_base("2")
    before = {short: {b["metadata"]["name"] for b in graph.builds(short)} for short in ("a", "b")}
    wave_args = dict(namespace=graph.namespace, imagestreamtag=imported["imagestreamtag"], digest=imported["digest"],
                     wait_timeout=900)

    process, args_file = start_module(engine, "osbs_autorebuild", wave_args)
    try:
        def both_running():
            builds = [latest_build(graph, short) for short in ("a", "b")]
            return all(b and b["metadata"]["name"] not in before[short] and b["status"].get("phase") == "Running"
                       for short, b in zip(("a", "b"), builds))
        wait_for(both_running, timeout=120, what="both dependents' builds to run")
        interrupted = {short: latest_build(graph, short)["metadata"]["name"] for short in ("a", "b")}

        serve_pid = int((engine.state_dir / "serve.pid").read_text())
        os.kill(serve_pid, signal.SIGKILL)
        killed = time.monotonic()
        result = finish_module(process, args_file, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    elapsed = time.monotonic() - killed
    print("wave after the kill (%.1f s): %s" % (elapsed, result.get("msg")))
    assert result.get("failed") is True, result
    assert elapsed < LOST_WITHIN, "the wave took %.1f s to notice the lost engine" % elapsed
    assert engine.base in result["msg"] and "cannot reach" in result["msg"], result["msg"]

    # Every module that talks to the API server says the same, at once.
    bc_a = graph.buildconfigs["a"]
    for module, args in (
        ("osbs_build", dict(namespace=graph.namespace, buildconfig=bc_a, wait_timeout=600)),
        ("osbs_buildconfig", dict(namespace=graph.namespace, git_uri=graph.repos["a"][1], git_branch="main",
                                  git_commit=graph.commits["a"], base_image=graph.base_images["a"], image="lost-a",
                                  registry_uri=engine.registry)),
        ("reactor_import_image", dict(namespace=graph.namespace, image=graph.image_ref("a"))),
        ("osbs_autorebuild", wave_args),
    ):
        started = time.monotonic()
        failed = run_module(engine, module, args, timeout=120)
        took = time.monotonic() - started
        print("%s against the dead engine (%.1f s): %s" % (module, took, failed.get("msg")))
        assert failed.get("failed") is True, failed
        assert took < LOST_WITHIN, "%s took %.1f s" % (module, took)
        assert engine.base in failed["msg"] and "cannot reach" in failed["msg"], failed["msg"]

    # The engine comes back in the same state directory; the interrupted builds have ended.
    graph.engine = start_engine(engine.state_dir)
    own_engine["engine"] = graph.engine
    for short in ("a", "b"):
        ended = wait_for(lambda short=short: next((b for b in graph.builds(short)
                                                    if b["metadata"]["name"] == interrupted[short]
                                                    and b["status"].get("phase") in ("Error", "Failed", "Cancelled")), None),
                         timeout=60, what="the interrupted build of %s to end" % short)
        print("interrupted %s: %s (%s)" % (ended["metadata"]["name"], ended["status"]["phase"], ended["status"].get("reason")))
    before_rerun = {short: {b["metadata"]["name"] for b in graph.builds(short)} for short in ("a", "b")}

    rerun = run_module(graph.engine, "osbs_autorebuild", wave_args, timeout=900)
    print(rerun.get("report_table") or rerun.get("msg"))
    assert rerun.get("failed") is not True, rerun.get("msg")
    rows = {row["buildconfig"]: row for row in rerun["rows"]}
    for short in ("a", "b"):
        row = rows[graph.buildconfigs[short]]
        assert row["action"] == "rebuilt", rerun["report_table"]
        new = [b for b in graph.builds(short) if b["metadata"]["name"] not in before_rerun[short]]
        assert [b["metadata"]["name"] for b in new] == [row["build"]], (short, [b["metadata"]["name"] for b in new])
        assert new[0]["status"]["phase"] == "Complete"
        assert graph.istag_digest(short) == new[0]["status"]["output"]["to"]["imageDigest"]
