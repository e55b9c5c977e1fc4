"""Pure logic of the engine's API layer: selector grammar, patch semantics, the watch log, the store."""

from __future__ import annotations

import pytest

import osbs_local.kinds  # noqa: F401 - registers the kinds: their strategic merge keys and table columns
from osbs_local.apiserver import patching
from osbs_local.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from osbs_local.apiserver.storage import AlreadyExists, Conflict, Store
from osbs_local.apiserver.watch import Event, EventLog, Expired


@pytest.mark.parametrize("selector, labels, expected", [
    ("a=1", {"a": "1"}, True),
    ("a=1", {}, False),
    ("a==1,b", {"a": "1", "b": ""}, True),
    ("a!=1", {}, True),
    ("a in (1, 2)", {"a": "2"}, True),
    ("a notin (1,2)", {"a": "3"}, True),
    ("a notin (1,2)", {}, True),
    ("!a", {"b": "1"}, True),
    ("a>3", {"a": "4"}, True),
    ("a<3", {"a": "x"}, False),
    ("app.kubernetes.io/name=x,tier in (web)", {"app.kubernetes.io/name": "x", "tier": "web"}, True),
    ("a=", {"a": ""}, True),
])
def test_label_selector_semantics(selector, labels, expected):
    assert parse_label_selector(selector)(labels) is expected


@pytest.mark.parametrize("selector", ["a in (b", "a=b=c", "=x", "a,,b", "a in (b c)"])
def test_label_selector_syntax_errors(selector):
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_label_selector_equalities_feed_the_index():
    assert parse_label_selector("a=1,b in (2),c!=3,d in (4,5),e").equalities == [("a", "1"), ("b", "2")]
    assert parse_label_selector("") is None


def test_field_selectors():
    extractors = {"metadata.name": lambda o: o["metadata"]["name"], "status": lambda o: o.get("status", {}).get("phase")}
    matches = parse_field_selector("metadata.name=x,status!=Failed", extractors)
    assert matches({"metadata": {"name": "x"}, "status": {"phase": "Complete"}})
    assert not matches({"metadata": {"name": "x"}, "status": {"phase": "Failed"}})
    with pytest.raises(SelectorError, match='"spec.x" is not a known field selector'):
        parse_field_selector("spec.x=1", extractors)


def test_merge_patch_follows_rfc_7386():
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    assert patching.merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3], "x": None}) == {"a": {"c": 2, "d": 3}, "l": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}  # the input is not modified


def test_strategic_merge_patch_keys_and_directives():
    stream = {"spec": {"tags": [{"name": "a", "from": {"name": "x"}}, {"name": "b"}]},
              "status": {"tags": [{"tag": "a", "items": [1]}]}}
    patched = patching.strategic_merge_patch(stream, {
        "spec": {"tags": [{"name": "a", "from": {"name": "y"}}, {"name": "b", "$patch": "delete"}, {"name": "c"}]},
        "status": {"tags": [{"tag": "b", "items": []}]}}, "imagestreams")
    assert patched["spec"]["tags"] == [{"name": "a", "from": {"name": "y"}}, {"name": "c"}]
    assert [t["tag"] for t in patched["status"]["tags"]] == ["a", "b"]
    # Lists without a merge key in the Go types are replaced whole.
    bc = {"spec": {"triggers": [{"type": "A"}, {"type": "B"}]}}
    assert patching.strategic_merge_patch(bc, {"spec": {"triggers": [{"type": "C"}]}}, "buildconfigs") == {"spec": {"triggers": [{"type": "C"}]}}
    assert patching.strategic_merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}, "x") == {"a": {"d": 3}}
    with pytest.raises(patching.PatchError):
        patching.strategic_merge_patch(stream, {"spec": {"tags": [{"from": {}}]}}, "imagestreams")


def test_json_patch_errors_are_patch_errors():
    assert patching.json_patch({"a": 1}, [{"op": "replace", "path": "/a", "value": 2}]) == {"a": 2}
    with pytest.raises(patching.PatchError):
        patching.json_patch({"a": 1}, [{"op": "remove", "path": "/missing"}])


def _event(rv: int) -> Event:
    return Event(rv, "ADDED", "configmaps", "ns", {}, "{}", None)


def test_event_log_is_bounded_and_expires_old_versions():
    log = EventLog(start_rv=10, size=3)
    for rv in range(11, 16):
        log.append(_event(rv))
    assert [e.rv for e in log.since(12)] == [13, 14, 15]
    assert log.since(15) == []
    with pytest.raises(Expired):
        log.since(11)
    with pytest.raises(AssertionError):
        log.append(_event(17))  # a gap would silently lose events


def test_store_versions_conflicts_and_persistence(tmp_path):
    store = Store(tmp_path / "state.db")
    created = store.create("configmaps", {"metadata": {"name": "a", "namespace": "n", "labels": {"k": "v"}}})
    assert created["metadata"]["resourceVersion"] == "1"
    with pytest.raises(AlreadyExists):
        store.create("configmaps", {"metadata": {"name": "a", "namespace": "n"}})
    updated = store.update("configmaps", dict(created, data={"x": "1"}), expected_rv="1")
    with pytest.raises(Conflict):
        store.update("configmaps", dict(created, data={"x": "2"}), expected_rv="1")
    assert [o["metadata"]["name"] for o, _ in store.scan_labelled("configmaps", "n", [("k", "v")])] == ["a"]
    store.delete("configmaps", "n", "a")
    assert store.scan_labelled("configmaps", "n", [("k", "v")]) == []
    store.create("configmaps", {"metadata": {"name": "b", "namespace": "n"}})
    store.close()
    reopened = Store(tmp_path / "state.db")
    assert reopened.resource_version == 4  # the deletion's version survives too: versions never go back
    assert reopened.get("configmaps", "n", "b")["metadata"]["resourceVersion"] == "4"
    assert reopened.get("configmaps", "n", "a") is None and updated["data"] == {"x": "1"}
    with pytest.raises(Expired):
        reopened.events.since(3)


def test_table_negotiation_and_durations():
    from osbs_local.apiserver import printing

    assert printing.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
    assert not printing.wants_table("application/json")
    assert not printing.wants_table("application/json, */*")
    assert [printing.human_duration(s) for s in (5, 119, 125, 900, 3 * 3600 + 60, 30 * 3600, 3 * 86400 + 3600, 40 * 86400)] == [
        "5s", "119s", "2m5s", "15m", "3h1m", "30h", "3d1h", "40d"]
    build = {"metadata": {"name": "b-1", "creationTimestamp": "2024-01-01T00:00:00Z"},
             "spec": {"strategy": {"type": "Docker"}, "source": {"git": {"uri": "u", "ref": "main"}},
                      "revision": {"git": {"commit": "0123456789abcdef"}}},
             "status": {"phase": "Failed", "reason": "DockerBuildFailed", "duration": 61_500_000_000}}
    table = printing.table("builds", [build])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "From", "Status", "Started", "Duration"]
    assert table["rows"][0]["cells"] == ["b-1", "Docker", "Git@0123456", "Failed (DockerBuildFailed)", "", "61s"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watch_history_expires_after_its_window_per_resource():
    """The apiserver's watch cache keeps at least 75 s of history per resource (watch_cache.go, cacher.go
    DefaultEventFreshDuration); a watch of a resource is expired only when an event of that resource after its
    version was dropped."""
    clock = _Clock()
    log = EventLog(start_rv=10, size=100, window=5.0, clock=clock)
    log.append(Event(11, "ADDED", "builds", "a", {}, "{}", None))
    clock.now += 1
    log.append(Event(12, "ADDED", "configmaps", "b", {}, "{}", None))
    assert [e.rv for e in log.since(10, "builds")] == [11, 12]
    clock.now += 10  # both events are older than the window now
    log.append(Event(13, "MODIFIED", "configmaps", "b", {}, "{}", None))
    with pytest.raises(Expired) as expired:
        log.since(10, "builds")  # build event 11 is gone
    assert expired.value.args == (10, 11)
    assert [e.rv for e in log.since(11, "builds")] == [13]  # nothing of builds after 11 was lost
    with pytest.raises(Expired):
        log.since(11, "configmaps")  # configmap event 12 is gone
    assert log.since(12, "configmaps")[0].rv == 13
    with pytest.raises(Expired):
        log.since(9, "secrets")  # from before the engine started
    assert log.expired_watches == 3


def test_watch_from_an_expired_version_is_an_error_event_and_bookmarks_come_before_the_deadline(tmp_path):
    """cacher.go Watch: an expired version is an ERROR event (410 Expired) on an opened stream;
    cache_watcher.go nextBookmarkTime: a watch that asked for bookmarks gets one 2 s before its deadline."""
    import json as json_module
    import time

    from osbs_local.apiserver import registration
    from osbs_local.apiserver.api import Api

    store = Store(tmp_path / "state.db")
    clock = _Clock()
    store.events = EventLog(store.resource_version, window=5.0, clock=clock)
    api = Api(store, tmp_path)
    configmaps = registration.resource("configmaps")
    store.create("namespaces", {"metadata": {"name": "a"}})
    store.create("namespaces", {"metadata": {"name": "b"}})
    created = store.create("configmaps", {"metadata": {"name": "x", "namespace": "a"}})
    version = created["metadata"]["resourceVersion"]
    store.create("configmaps", {"metadata": {"name": "y", "namespace": "b"}})
    clock.now += 10
    store.create("configmaps", {"metadata": {"name": "z", "namespace": "b"}})  # drops what is older than 5 s
    lines = list(api.watch(configmaps, "a", version, timeout=5))
    assert len(lines) == 1
    event = json_module.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith("too old resource version: %s (" % version)

    current = str(store.resource_version)
    started = time.monotonic()
    lines = list(api.watch(configmaps, "a", current, timeout=3.5, send_bookmarks=True))
    assert [json_module.loads(line)["type"] for line in lines] == ["BOOKMARK"]
    assert json_module.loads(lines[0])["object"]["metadata"]["resourceVersion"] == current
    assert 3.0 <= time.monotonic() - started < 5
    assert list(api.watch(configmaps, "a", current, timeout=1.5, send_bookmarks=True)) == []  # none is due
    store.close()
