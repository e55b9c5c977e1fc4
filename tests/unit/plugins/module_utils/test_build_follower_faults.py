"""BuildFollower under faults osbs-local cannot be made to produce on demand: a GET that fails once at the
moment a build is followed, and a watch that raises an exception of a kind nobody foresaw (a token refresh
failing inside the kubernetes client, say). The client here is a scripted stand-in for those faults only;
tests/integration/wave/test_build_follower.py follows real builds on osbs-local, a refused list included."""

import threading
import time

from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError
from ansible_collections.osbs.flow.plugins.module_utils.waiter import BuildFollower


class ScriptedClient:
    def __init__(self, builds, get_failures=0, watch_error=None):
        self.builds = builds  # name -> build, as the server has them now
        self.get_failures = get_failures
        self.watch_error = watch_error
        self.lists = 0

    @staticmethod
    def path(kind, namespace=None, name=None, subresource=None):
        return "/%s/%s" % (namespace, kind)

    def request(self, method, path, query=None, **kwargs):
        self.lists += 1
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    def get(self, kind, namespace, name):
        if self.get_failures:
            self.get_failures -= 1
            raise ApiError(503, "ServiceUnavailable", "the server is busy")
        return self.builds.get(name)

    def watch(self, kind, namespace, resource_version, timeout=60, **kwargs):
        if self.watch_error:
            raise self.watch_error
        time.sleep(min(timeout, 0.2))  # an empty stream that ends
        return iter(())


def build(name, phase):
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "5"}, "status": {"phase": phase}}


def follow_one(client, followed, timeout=30):
    ended = []
    done = threading.Event()
    follower = BuildFollower(client, timeout=timeout)
    follower.follow(followed, lambda b: (ended.append(b), done.set()))
    assert done.wait(15), "never called back"
    follower.stop()
    return ended


def test_an_ending_missed_by_a_failed_read_is_caught_by_a_fresh_list():
    # a-1 keeps the namespace's watch running. b-1 ended before it was followed (so no watch event will come)
    # and the read at follow() failed: only a fresh list, which reads every followed build again, can see it.
    client = ScriptedClient({"a-1": build("a-1", "Running"), "b-1": build("b-1", "Complete")})
    follower = BuildFollower(client, timeout=30)
    follower.follow(build("a-1", "Running"), lambda b: None)
    time.sleep(0.5)  # the watch thread has listed and is watching
    ended, done = [], threading.Event()
    client.get_failures = 1
    follower.follow(build("b-1", "Running"), lambda b: (ended.append(b), done.set()))
    assert done.wait(15), "the ending was never seen"
    follower.stop()
    assert [b["status"]["phase"] for b in ended] == ["Complete"]


def test_an_unforeseen_exception_in_the_watch_does_not_stop_the_deadlines():
    client = ScriptedClient({"a-1": build("a-1", "Running")}, watch_error=RuntimeError("token refresh failed"))
    started = time.monotonic()
    ended = follow_one(client, build("a-1", "Running"), timeout=2)
    assert [b["status"]["phase"] for b in ended] == ["Running"]  # the timeout's callback, with the last state
    assert time.monotonic() - started < 10
    assert client.lists >= 2, "the follower did not start again from a fresh list"


class ExpiringClient(ScriptedClient):
    """The first watch brings a bookmark and ends; the watch renewed from it is expired (410), as when a busy
    cluster's watch history no longer holds the version. The build completes meanwhile."""

    def __init__(self, builds):
        super().__init__(builds)
        self.watches = []

    def watch(self, kind, namespace, resource_version, timeout=60, **kwargs):
        self.watches.append((resource_version, kwargs.get("bookmarks")))
        if len(self.watches) == 1:
            return iter([("BOOKMARK", {"metadata": {"resourceVersion": "9"}})])
        if len(self.watches) == 2:
            self.builds["a-1"] = build("a-1", "Complete")
            raise ApiError(410, "Expired", "too old resource version: 9 (12)")
        time.sleep(min(timeout, 0.2))
        return iter(())


def test_an_expired_watch_lists_afresh_at_once_and_watches_ask_for_bookmarks():
    client = ExpiringClient({"a-1": build("a-1", "Running")})
    started = time.monotonic()
    ended = follow_one(client, build("a-1", "Running"))
    took = time.monotonic() - started
    assert [b["status"]["phase"] for b in ended] == ["Complete"]
    assert client.watches[:2] == [("7", True), ("9", True)]  # resumed from the bookmark's version
    assert took < 0.9, "the follower paused %.1f s before listing afresh after a 410" % took


def test_a_failing_watch_is_not_retried_every_second():
    client = ScriptedClient({"a-1": build("a-1", "Running")}, watch_error=ApiError(500, "InternalError", "boom"))
    ended = follow_one(client, build("a-1", "Running"), timeout=6)
    assert [b["status"]["phase"] for b in ended] == ["Running"]
    assert client.lists <= 4, "%d fresh lists in 6 s" % client.lists
