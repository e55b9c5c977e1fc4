"""BuildFollower against osbs-local: one watch follows many real builds, each reported once when it ends.

The cases are the ones a watch alone would get wrong: a build that ended before it was
followed, builds ending in another order than they were followed, a build deleted while
followed, and one that outlives the timeout.
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from kubernetes import config, dynamic

from ansible_collections.osbs.flow.plugins.module_utils.openshift import OpenShiftClient
from ansible_collections.osbs.flow.plugins.module_utils.resources import TERMINAL_BUILD_PHASES
from ansible_collections.osbs.flow.plugins.module_utils.waiter import BuildFollower
from testlib import make_git_repo, run_module, wait_for

pytestmark = pytest.mark.slow

PREFIX = "follow-"


@pytest.fixture(scope="module")
def client(osbs_engine):
    api = config.new_client_from_config(str(osbs_engine.kubeconfig))
    return OpenShiftClient(SimpleNamespace(client=dynamic.DynamicClient(api), configuration=api.configuration))


@pytest.fixture(scope="module")
def make_buildconfig(osbs_engine, busybox_base, tmp_path_factory):
    """A new BuildConfig whose build runs `run`; each gets its own repository and a token in its RUN,
    so no build is served from the layer cache of an earlier one."""
    def make(short, run):
        token = uuid.uuid4().hex[:8]
        uri, commit = make_git_repo(tmp_path_factory.mktemp("follow") / (PREFIX + short), {
            "Dockerfile": "FROM %s\nLABEL name=%s%s\nRUN %s && echo %s > /token\n" % (busybox_base, PREFIX, short, run, token),
        })
        result = run_module(osbs_engine, "osbs_buildconfig", dict(
            namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", git_commit=commit,
            base_image=busybox_base, image=PREFIX + short,
            registry_uri=osbs_engine.registry, registry_secret=osbs_engine.registry_secret,
        ))
        assert not result.get("failed"), result.get("msg")
        return result["name"]
    return make


def instantiate(client, namespace, name):
    return client.request("POST", client.path("BuildConfig", namespace, name, "instantiate"),
                          body={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})


class Recorder:
    """The callbacks' side: what each call received, in order."""

    def __init__(self):
        self.calls = []
        self.done = threading.Condition()

    def callback_for(self, name):
        def callback(build):
            with self.done:
                self.calls.append((name, build["metadata"]["name"], build.get("status", {}).get("phase"),
                                   build.get("status", {}).get("reason")))
                self.done.notify_all()
        return callback

    def wait_for(self, count, timeout):
        with self.done:
            assert self.done.wait_for(lambda: len(self.calls) >= count, timeout), self.calls
            return list(self.calls)


def test_builds_that_end_before_and_after_they_are_followed(osbs_engine, client, make_buildconfig):
    namespace = osbs_engine.namespace
    buildconfigs = {short: make_buildconfig(short, run) for short, run in (
        ("quick", "echo quick > /q"), ("slow", "sleep 15"), ("other", "echo other > /o"))}
    finished = instantiate(client, namespace, buildconfigs["quick"])
    wait_for(lambda: client.get("Build", namespace, finished["metadata"]["name"])["status"]["phase"] in TERMINAL_BUILD_PHASES,
             timeout=300, what="the quick build to end")
    watches_before = osbs_engine.metrics().get(("watch", "builds"), 0)

    follower, recorder = BuildFollower(client, timeout=600), Recorder()
    started_at = time.monotonic()
    try:
        # Ended before it was followed: only the read at follow() can see it.
        follower.follow(finished, recorder.callback_for("ended-before"))
        assert recorder.wait_for(1, timeout=10) == [("ended-before", finished["metadata"]["name"], "Complete", None)]

        # slow is followed first and ends last; other and quick end while it runs.
        started = [instantiate(client, namespace, buildconfigs[short]) for short in ("slow", "other", "quick")]
        for build in started:
            follower.follow(build, recorder.callback_for(build["metadata"]["name"]))
        calls = recorder.wait_for(4, timeout=300)
    finally:
        follower.stop()

    names = [build["metadata"]["name"] for build in started]
    assert sorted(call[1] for call in calls[1:]) == sorted(names)
    assert all(call[2] == "Complete" and call[0] == call[1] for call in calls[1:]), calls
    assert calls[-1][1] == names[0], "the slow build, followed first, must be reported last: %s" % calls
    time.sleep(0.5)
    assert len(recorder.calls) == 4, "each build is reported once: %s" % recorder.calls
    # One watch stream for all of them, renewed every 30 s at most.
    elapsed = time.monotonic() - started_at
    assert 1 <= osbs_engine.metrics().get(("watch", "builds"), 0) - watches_before <= 1 + int(elapsed // 30)


def test_a_deleted_build_and_a_timeout_are_reported_not_waited_for(osbs_engine, client, make_buildconfig):
    namespace = osbs_engine.namespace
    follower, recorder = BuildFollower(client, timeout=2), Recorder()
    # 60 s: far longer than the 2 s timeout and the deletion below; deleting it stops it.
    outlives = instantiate(client, namespace, make_buildconfig("long", "sleep 60"))
    try:
        follower.follow(outlives, recorder.callback_for("timeout"))
        calls = recorder.wait_for(1, timeout=20)
        assert calls[0][0] == "timeout" and calls[0][1] == outlives["metadata"]["name"]
        assert calls[0][2] in ("New", "Pending", "Running"), calls
    finally:
        follower.stop()

    follower, recorder = BuildFollower(client, timeout=600), Recorder()
    try:
        follower.follow(outlives, recorder.callback_for("deleted"))
        client.request("DELETE", client.path("Build", namespace, outlives["metadata"]["name"]))
        calls = recorder.wait_for(1, timeout=30)
    finally:
        follower.stop()
    assert calls == [("deleted", outlives["metadata"]["name"], "Error", "BuildDeleted")]


def test_a_refused_list_ends_every_followed_build_with_the_apis_message(osbs_engine, client, make_buildconfig):
    """A token the API refuses (401, as an expired one is): the builds end as Error naming the refusal at once,
    not after the timeout."""
    namespace = osbs_engine.namespace
    build = instantiate(client, namespace, make_buildconfig("refused", "sleep 30"))
    api = config.new_client_from_config(str(osbs_engine.kubeconfig))
    expiring = OpenShiftClient(SimpleNamespace(client=dynamic.DynamicClient(api), configuration=api.configuration))
    # After discovery, as a token expires mid-run (the kubeconfig loader's hook would put the good one back).
    api.configuration.refresh_api_key_hook = None
    api.configuration.api_key["authorization"] = "Bearer expired-token"

    follower, recorder = BuildFollower(expiring, timeout=600), Recorder()
    started = time.monotonic()
    try:
        follower.follow(build, recorder.callback_for("refused"))
        calls = recorder.wait_for(1, timeout=30)
    finally:
        follower.stop()
        client.request("DELETE", client.path("Build", namespace, build["metadata"]["name"]))
    assert time.monotonic() - started < 30
    assert calls[0][:4] == ("refused", build["metadata"]["name"], "Error", "FollowRefused")
