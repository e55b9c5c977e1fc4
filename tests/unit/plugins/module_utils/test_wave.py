"""The pure part of the wave: the dependency graph, cycles, order, and the scheduler's rules.

The scheduler runs real threads; `work` is a plain function standing in for the
cluster part (starting, importing), and `ScriptedFollower` for the watch that says
when a build ends, so the tests choose the order builds end in. The integration
tests run both for real against osbs-local.
"""

import threading
import time

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import import_outcome
from ansible_collections.osbs.flow.plugins.module_utils.import_image import find_dependents, image_repository
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    output_imagestreamtag,
    split_imagestreamtag,
    trigger_imagestreamtag,
)
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import ROOT, build_graph
from ansible_collections.osbs.flow.plugins.module_utils.wave_report import make_rows, report_table
from ansible_collections.osbs.flow.plugins.module_utils.wave_scheduler import (
    ADOPTED,
    BLOCKED,
    FAILED,
    REBUILT,
    SKIPPED,
    UNCHANGED,
    Follow,
    Outcome,
    run_wave,
)

NS = "osbs"
REGISTRY = "registry.example.com:5000"


def bc(name, base, namespace=NS, image=None, paused=False, trigger_namespace=None, extra_triggers=()):
    """A BuildConfig as osbs_buildconfig writes it: FROM `base` (an ImageStreamTag), output `image`."""
    source = {"kind": "ImageStreamTag", "name": base}
    if trigger_namespace:
        source["namespace"] = trigger_namespace
    triggers = [{"type": "ImageChange", "imageChange": {"from": dict(source), "paused": paused}}]
    triggers += [{"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": t}}} for t in extra_triggers]
    triggers.append({"type": "Generic", "generic": {"secret": "s"}})
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": {
            "osbs.flow/bump-release": '{"git_branch": "main", "git_ref": "c0ffee"}',
        }},
        "spec": {
            "triggers": triggers,
            "source": {"type": "Git", "git": {"uri": "https://git.example.com/%s.git" % name, "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {"from": source}},
            "output": {"to": {"kind": "DockerImage", "name": "%s/%s:latest" % (REGISTRY, image or name)}},
        },
    }


def names(keys):
    return [k[1] for k in keys]


def test_output_imagestreamtag_follows_imagestreamtag_for_image():
    assert output_imagestreamtag(bc("app", "base:latest", image="team/app")) == (NS, "team-app:latest")


def test_find_dependents_names_trigger_tag_and_namespace():
    items = [bc("app", "base:latest"), bc("tool", "base:latest", paused=True), bc("other", "python:3"),
             bc("far", "base:latest", namespace="elsewhere"), bc("far2", "base:latest", namespace="elsewhere", trigger_namespace=NS)]
    found = find_dependents(items, NS, "base:latest")
    assert [(d["namespace"], d["name"]) for d in found] == [("elsewhere", "far2"), (NS, "app"), (NS, "tool")]
    app = found[1]
    assert app["git_uri"] == "https://git.example.com/app.git"
    assert app["git_branch"] == "main"
    assert app["git_commit"] == "c0ffee"
    assert app["repo_config_file"] == ".osbs-repo-config"
    assert app["trigger"]["imageChange"]["from"] == {"kind": "ImageStreamTag", "name": "base:latest"}
    assert found[2]["trigger"]["imageChange"]["paused"] is True


def test_a_trigger_without_from_watches_the_strategy_from():
    config = bc("app", "base:1")
    trigger = {"type": "ImageChange", "imageChange": {}}
    assert trigger_imagestreamtag(config, trigger) == (NS, "base:1")
    config["spec"]["strategy"]["dockerStrategy"]["from"] = {"kind": "DockerImage", "name": "busybox"}
    assert trigger_imagestreamtag(config, trigger) is None  # OpenShift drops such a trigger
    assert trigger_imagestreamtag(config, {"type": "Generic"}) is None


@pytest.mark.parametrize("istag, expected", [("base", ("base", "latest")), ("base:1.2", ("base", "1.2"))])
def test_split_imagestreamtag(istag, expected):
    assert split_imagestreamtag(istag) == expected


@pytest.mark.parametrize("image, message", [
    ("app:latest", "names no registry"),
    ("%s/app@sha256:%s" % (REGISTRY, "a" * 64), "pull spec by digest"),
])
def test_image_repository_refuses_what_cannot_be_imported_by_tag(image, message):
    assert image_repository("%s/team/app:1" % REGISTRY) == "%s/team/app" % REGISTRY
    with pytest.raises(OsbsFlowError, match=message):
        image_repository(image)


def test_import_outcome_names_the_registrys_reason():
    image = "%s/app:latest" % REGISTRY
    ok = {"status": {"images": [{"status": {"status": "Success"}, "image": {
        "metadata": {"name": "sha256:1"}, "dockerImageReference": "%s/app@sha256:1" % REGISTRY}}]}}
    assert import_outcome(ok, image) == ("sha256:1", "%s/app@sha256:1" % REGISTRY)
    refused = {"status": {"images": [{"status": {
        "status": "Failure", "reason": "Unauthorized", "code": 401, "message": "authentication required"}}]}}
    with pytest.raises(OsbsFlowError) as error:
        import_outcome(refused, image)
    assert str(error.value).startswith("importing %s failed: authentication required (Unauthorized, HTTP 401)" % image)


def issue_graph():
    # The graph of the issue: base; app FROM base; leaf FROM app; tool FROM base; odd FROM base; plus an unrelated one.
    return [bc("leaf", "app:latest"), bc("app", "base:latest"), bc("tool", "base:latest"),
            bc("odd", "base:latest"), bc("unrelated", "python:3")]


def test_graph_reaches_dependents_transitively_parents_first():
    graph = build_graph(issue_graph(), (NS, "base:latest"))
    assert sorted(names(graph.nodes)) == ["app", "leaf", "odd", "tool"]
    assert names(graph.order) == ["app", "odd", "tool", "leaf"]
    assert graph.depth[(NS, "leaf")] == 2 and graph.depth[(NS, "app")] == 1
    assert graph.parents[(NS, "app")] == {ROOT}
    assert graph.parents[(NS, "leaf")] == {(NS, "app")}
    assert graph.base_parent[(NS, "leaf")] == (NS, "app")
    assert graph.base_parent[(NS, "app")] == ROOT
    assert graph.cycles == []


def test_graph_from_a_middle_image_and_an_untagged_trigger():
    items = issue_graph() + [bc("deep", "leaf")]  # `leaf` means leaf:latest
    graph = build_graph(items, (NS, "app:latest"))
    assert names(graph.order) == ["leaf", "deep"]


def test_graph_with_no_dependents():
    graph = build_graph(issue_graph(), (NS, "nothing:latest"))
    assert graph.nodes == {} and graph.order == []
    assert report_table(make_rows(graph, {})) == "no dependents"


def test_two_buildconfigs_triggering_on_each_other_are_a_cycle():
    items = [bc("c1", "c2:latest"), bc("c2", "c1:latest"), bc("after", "c2:latest")]
    graph = build_graph(items, (NS, "c1:latest"))
    assert graph.cycles == [[(NS, "c1"), (NS, "c2"), (NS, "c1")]]
    outcomes = run_wave(graph, Outcome("root", digest="sha256:1"), _never_called, parallel=2)
    assert outcomes[(NS, "c1")].action == FAILED
    assert "dependency cycle osbs/c1 -> osbs/c2 -> osbs/c1" in outcomes[(NS, "c2")].reason
    assert outcomes[(NS, "after")].action == BLOCKED
    assert "osbs/c2" in outcomes[(NS, "after")].reason


def test_a_cycle_back_to_the_new_image_fails_and_blocks_what_builds_on_it():
    # loop builds FROM app and pushes to base: base -> app -> loop -> base, so tool and odd wait for loop too.
    items = issue_graph() + [bc("loop", "app:latest", image="base"), bc("apart", "python:3")]
    graph = build_graph(items, (NS, "base:latest"))
    assert [names(path) for path in graph.cycles] == [["app", "loop", "app"]]
    outcomes = run_wave(graph, Outcome("root", digest="sha256:1"), _never_called, parallel=3)
    assert outcomes[(NS, "app")].action == FAILED and outcomes[(NS, "loop")].action == FAILED
    assert {k[1]: o.action for k, o in outcomes.items() if k[1] not in ("app", "loop")} == {
        "leaf": BLOCKED, "tool": BLOCKED, "odd": BLOCKED}


def test_a_cycle_does_not_stop_an_independent_branch():
    items = issue_graph() + [bc("c1", "app:latest", image="c2", extra_triggers=["c3:latest"]), bc("c3", "c2:latest")]
    graph = build_graph(items, (NS, "base:latest"))
    assert [names(path) for path in graph.cycles] == [["c1", "c3", "c1"]]
    outcomes = run_wave(graph, Outcome("root", digest="sha256:1"), _rebuild_all, parallel=3)
    assert {k[1]: o.action for k, o in outcomes.items()} == {
        "app": REBUILT, "leaf": REBUILT, "tool": REBUILT, "odd": REBUILT, "c1": FAILED, "c3": FAILED}


def test_a_buildconfig_building_from_its_own_image_is_a_cycle():
    graph = build_graph([bc("self", "self:latest"), bc("x", "base:latest", image="self")], (NS, "base:latest"))
    assert [names(path) for path in graph.cycles] == [["self", "self"]]


def test_a_long_chain_needs_no_recursion():
    items = [bc("n0", "base:latest")] + [bc("n%d" % i, "n%d:latest" % (i - 1)) for i in range(1, 3000)]
    graph = build_graph(items, (NS, "base:latest"))
    assert graph.cycles == []
    assert graph.order[0] == (NS, "n0") and graph.order[-1] == (NS, "n2999")
    assert graph.depth[(NS, "n2999")] == 3000


def test_dependents_in_other_namespaces():
    items = [bc("app", "base:latest", trigger_namespace="shared", namespace="team")]
    graph = build_graph(items, ("shared", "base:latest"))
    assert list(graph.nodes) == [("team", "app")]


def _never_called(key, parents):
    raise AssertionError("work ran for %s" % (key,))


def _rebuild_all(key, parents):
    return Outcome(REBUILT, digest="sha256:%s" % key[1], changed=True)


def test_run_wave_children_start_only_after_parents_and_get_their_digest():
    items = issue_graph() + [bc("deep", "leaf:latest")]
    graph = build_graph(items, (NS, "base:latest"))
    finished, seen = [], {}
    lock = threading.Lock()

    def work(key, parents):
        with lock:
            seen[key[1]] = {p[1] or "root": o.digest for p, o in parents.items()}
        time.sleep(0.05 if key[1] == "app" else 0.01)
        with lock:
            finished.append(key[1])
        return Outcome(REBUILT, digest="sha256:" + key[1])

    outcomes = run_wave(graph, Outcome("root", digest="sha256:base"), work, parallel=4)
    assert all(o.action == REBUILT for o in outcomes.values())
    assert finished.index("app") < finished.index("leaf") < finished.index("deep")
    assert seen["app"] == {"root": "sha256:base"}
    assert seen["leaf"] == {"app": "sha256:app"}
    assert seen["deep"] == {"leaf": "sha256:leaf"}


def test_run_wave_failure_blocks_children_and_spares_independent_branches():
    items = issue_graph() + [bc("deep", "leaf:latest"), bc("toolkid", "tool:latest")]
    graph = build_graph(items, (NS, "base:latest"))
    actions = {"app": Outcome(FAILED, "build app-2 Failed"), "tool": Outcome(SKIPPED, "disabled"),
               "odd": Outcome(UNCHANGED, digest="sha256:odd")}
    ran = []

    def work(key, parents):
        ran.append(key[1])
        return actions.get(key[1]) or Outcome(ADOPTED, digest="sha256:" + key[1])

    outcomes = run_wave(graph, Outcome("root", digest="sha256:base"), work, parallel=2)
    assert sorted(ran) == ["app", "odd", "tool"]
    assert outcomes[(NS, "leaf")].action == BLOCKED and "osbs/app, which failed" in outcomes[(NS, "leaf")].reason
    assert outcomes[(NS, "deep")].action == BLOCKED and "is blocked" in outcomes[(NS, "deep")].reason
    assert outcomes[(NS, "toolkid")].action == SKIPPED and "osbs/tool" in outcomes[(NS, "toolkid")].reason
    rows = make_rows(graph, outcomes)
    assert [r["buildconfig"] for r in rows] == ["app", "odd", "tool", "leaf", "toolkid", "deep"]
    assert rows[1]["digest"] == "sha256:odd" and rows[0]["digest"] is None


def test_run_wave_an_exception_fails_that_dependent_alone():
    graph = build_graph(issue_graph(), (NS, "base:latest"))

    def work(key, parents):
        if key[1] == "tool":
            raise RuntimeError("connection reset")
        return Outcome(REBUILT, digest="sha256:" + key[1])

    outcomes = run_wave(graph, Outcome("root", digest="sha256:base"), work, parallel=2)
    assert outcomes[(NS, "tool")].action == FAILED and outcomes[(NS, "tool")].reason == "RuntimeError: connection reset"
    assert "Traceback" in outcomes[(NS, "tool")].detail
    assert "traceback" in [r for r in make_rows(graph, outcomes) if r["buildconfig"] == "tool"][0]
    assert outcomes[(NS, "leaf")].action == REBUILT


def test_run_wave_keeps_to_parallel():
    items = [bc("n%d" % i, "base:latest") for i in range(12)]
    graph = build_graph(items, (NS, "base:latest"))
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(key, parents):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return Outcome(REBUILT)

    run_wave(graph, Outcome("root"), work, parallel=3)
    assert peak[0] == 3


def test_two_hundred_dependents_in_two_generations_each_run_once():
    # Its speed is measured by bench/bench_fanout.py, not asserted here.
    items = [bc("app%03d" % i, "base:latest") for i in range(100)]
    items += [bc("kid%03d" % i, "app%03d:latest" % i) for i in range(100)]
    graph = build_graph(items, (NS, "base:latest"))
    calls = []
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"), lambda key, parents: calls.append(key) or _rebuild_all(key, parents),
                        parallel=16)
    assert len(outcomes) == 200 and sorted(calls) == sorted(graph.nodes)
    assert all(o.action == REBUILT for o in outcomes.values())
    assert len(report_table(make_rows(graph, outcomes)).splitlines()) == 201


class ScriptedFollower:
    """Stands in for BuildFollower: records what is followed; the test ends builds when it chooses."""

    def __init__(self):
        self.lock = threading.Condition()
        self.followed = {}  # build name -> callback
        self.on_lost = {}  # build name -> what the follower calls when the API server is lost

    def follow(self, build, callback, on_lost=None):
        with self.lock:
            self.followed[build["metadata"]["name"]] = callback
            self.on_lost[build["metadata"]["name"]] = on_lost
            self.lock.notify_all()

    def wait_for(self, count, timeout=10):
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.followed) >= count, timeout), sorted(self.followed)
            return sorted(self.followed)

    def end(self, name, phase="Complete"):
        with self.lock:
            callback = self.followed.pop(name)
        callback({"metadata": {"name": name}, "status": {"phase": phase}})

    def drive(self, scenario):
        """Run scenario() in a thread; if it fails, end every followed build so run_wave returns. join() re-raises."""
        errors = []

        def guarded():
            try:
                scenario()
            except BaseException as exc:  # noqa: B902 -- handed to the test's thread by join()
                errors.append(exc)
                while True:
                    with self.lock:
                        if not self.followed:
                            break
                        name = next(iter(self.followed))
                    self.end(name, phase="Error")

        thread = threading.Thread(target=guarded)
        thread.start()

        def join():
            thread.join()
            if errors:
                raise errors[0]
        return join


def _start_then_follow(log):
    """work that starts a build and returns Follow; its `then` records when the dependent was finished."""
    def work(key, parents):
        log.append(("start", key[1]))

        def then(build):
            log.append(("finish", key[1]))
            if build["status"]["phase"] != "Complete":
                return Outcome(FAILED, "build %s %s" % (build["metadata"]["name"], build["status"]["phase"]))
            return Outcome(REBUILT, build=build["metadata"]["name"], digest="sha256:" + key[1])
        return Follow({"metadata": {"name": key[1] + "-1"}}, then)
    return work


def test_every_ready_dependent_starts_before_any_build_ends():
    # 12 independent dependents with one start thread: all 12 builds are started and followed at once.
    # (One finish thread too, so the finishes cannot overtake each other and their order can be asserted.)
    graph = build_graph([bc("n%02d" % i, "base:latest") for i in range(12)], (NS, "base:latest"))
    follower, log = ScriptedFollower(), []
    ended = []

    def end_in_reverse():
        names_followed = follower.wait_for(12)
        for name in reversed(names_followed):
            ended.append(name)
            follower.end(name)

    join = follower.drive(end_in_reverse)
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"), _start_then_follow(log), parallel=1, follower=follower)
    join()
    assert [step for step, _name in log[:12]] == ["start"] * 12
    assert all(o.action == REBUILT for o in outcomes.values())
    # Each dependent is finished (imported) in the order its build ended, not in name order.
    assert [name for step, name in log if step == "finish"] == [name[:-2] for name in ended]
    assert ended == ["n%02d-1" % i for i in reversed(range(12))]


def test_a_child_starts_when_its_parent_ends_while_a_slow_sibling_still_builds():
    # base -> app -> leaf, base -> slow: leaf must not wait for slow's build.
    graph = build_graph([bc("app", "base:latest"), bc("leaf", "app:latest"), bc("slow", "base:latest")], (NS, "base:latest"))
    follower, log = ScriptedFollower(), []
    result = {}

    def scenario():
        follower.wait_for(2)  # app-1 and slow-1
        follower.end("app-1")
        follower.wait_for(2)  # slow-1 and now leaf-1
        result["followed_while_slow_builds"] = sorted(follower.followed)
        follower.end("leaf-1")
        follower.end("slow-1", phase="Failed")

    join = follower.drive(scenario)
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"), _start_then_follow(log), parallel=4, follower=follower)
    join()
    assert result["followed_while_slow_builds"] == ["leaf-1", "slow-1"]
    assert outcomes[(NS, "leaf")].action == REBUILT and outcomes[(NS, "app")].digest == "sha256:app"
    assert outcomes[(NS, "slow")].action == FAILED and outcomes[(NS, "slow")].reason == "build slow-1 Failed"


def test_a_then_that_raises_fails_that_dependent_alone():
    graph = build_graph([bc("a", "base:latest"), bc("b", "base:latest")], (NS, "base:latest"))
    follower = ScriptedFollower()

    def work(key, parents):
        def then(build):
            if key[1] == "a":
                raise OsbsFlowError("importing a failed")
            return Outcome(REBUILT, digest="sha256:b")
        return Follow({"metadata": {"name": key[1] + "-1"}}, then)

    join = follower.drive(lambda: [follower.end(n) for n in follower.wait_for(2)])
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"), work, parallel=1, follower=follower)
    join()
    assert outcomes[(NS, "a")].action == FAILED and outcomes[(NS, "a")].reason == "importing a failed"
    assert outcomes[(NS, "b")].action == REBUILT


def test_report_table_is_fixed_width():
    graph = build_graph(issue_graph(), (NS, "base:latest"))
    outcomes = {
        (NS, "app"): Outcome(REBUILT, "built from base image sha256:1", build="app-2", digest="sha256:" + "a" * 64, duration=12.34,
                             nvr="app-1.0-2"),
        (NS, "odd"): Outcome(FAILED, ".osbs-repo-config: [autorebuild] enabled has the value 'maybe'"),
        (NS, "tool"): Outcome(SKIPPED, "autorebuilds are disabled"),
        (NS, "leaf"): Outcome(REBUILT, "built", build="leaf-2", digest="sha256:" + "b" * 64, duration=3.0),
    }
    lines = report_table(make_rows(graph, outcomes)).splitlines()
    assert lines[0].split() == ["IMAGE", "BUILDCONFIG", "ACTION", "BUILD", "NVR", "NEW", "DIGEST", "DURATION", "REASON"]
    assert lines[1].split()[:7] == ["app:latest", "app", "rebuilt", "app-2", "app-1.0-2", "aaaaaaaaaaaa", "12.3s"]
    assert lines[2].split()[:6] == ["odd:latest", "odd", "failed", "-", "-", "-"]
    # Every column but the last starts at the same offset on every line.
    reason_at = lines[0].index("REASON")
    assert all(line[reason_at - 2:reason_at] == "  " for line in lines)
    assert lines[2][reason_at:].startswith(".osbs-repo-config")


@pytest.mark.parametrize("parallel", [1, 8])
def test_run_wave_every_dependent_gets_exactly_one_outcome(parallel):
    graph = build_graph(issue_graph() + [bc("c1", "c2:latest"), bc("c2", "c1:latest", extra_triggers=["leaf:latest"])],
                        (NS, "base:latest"))
    calls = []
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"),
                        lambda key, parents: calls.append(key) or Outcome(REBUILT, digest="sha256:x"), parallel=parallel)
    assert sorted(outcomes) == sorted(graph.nodes)
    assert len(calls) == len(set(calls))
    assert outcomes[(NS, "c1")].action == FAILED and outcomes[(NS, "c2")].action == FAILED


def test_a_then_may_follow_another_build_before_it_finishes():
    # What the wave does for a BuildConfig busy with another build: follow that build, then start its own.
    graph = build_graph([bc("busy", "base:latest"), bc("free", "base:latest")], (NS, "base:latest"))
    follower, log = ScriptedFollower(), []

    def work(key, parents):
        log.append(("start", key[1]))
        if key[1] == "busy":
            return Follow({"metadata": {"name": "busy-user-build"}}, lambda ended: _start_then_follow(log)(key, parents))
        return _start_then_follow(log)(key, parents)

    def scenario():
        assert follower.wait_for(2) == ["busy-user-build", "free-1"]
        follower.end("busy-user-build")
        assert follower.wait_for(2) == ["busy-1", "free-1"]
        follower.end("free-1")
        follower.end("busy-1")

    join = follower.drive(scenario)
    outcomes = run_wave(graph, Outcome("root", digest="sha256:b"), work, parallel=1, follower=follower)
    join()
    assert outcomes[(NS, "busy")].build == "busy-1" and outcomes[(NS, "free")].build == "free-1"
    assert [name for step, name in log if step == "finish"] == ["free", "busy"]
