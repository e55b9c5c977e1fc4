"""Watch streams, label and field selectors, merge / JSON / strategic merge patches, generation rules."""

from __future__ import annotations

import json
import threading
import time

import pytest

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


def read_events(http, url, params, count, timeout=15):
    """Collect `count` watch events (stops early when the server closes the stream)."""
    events = []
    with http.get(url, params=params, stream=True, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        for line in response.iter_lines():
            if line:
                events.append(json.loads(line))
            if len(events) >= count:
                break
    return events


def test_watch_from_a_list_resource_version_sees_changes_in_order(engine, http, namespace):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    listed = http.get(url).json()
    results = {}

    def watch():
        results["events"] = read_events(http, url, {"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]}, 3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.3)
    assert http.post(url, json={"metadata": {"name": "w"}, "data": {"a": "1"}}).status_code == 201
    assert http.patch(f"{url}/w", json={"data": {"a": "2"}}, headers=MERGE).status_code == 200
    assert http.delete(f"{url}/w").status_code == 200
    watcher.join(15)
    events = results["events"]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e["object"]["data"]["a"] for e in events[:2]] == ["1", "2"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_watch_without_resource_version_starts_with_the_current_objects(engine, http, namespace):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    for name in ("one", "two"):
        http.post(url, json={"metadata": {"name": name}})
    started = time.monotonic()
    events = read_events(http, url, {"watch": "1", "timeoutSeconds": "1"}, 10)
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["one", "two"]
    assert {e["type"] for e in events} == {"ADDED"}
    assert time.monotonic() - started < 5  # timeoutSeconds closed the stream


def test_watch_with_a_selector_reports_objects_leaving_it_as_deleted(engine, http, namespace):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    http.post(url, json={"metadata": {"name": "sel", "labels": {"keep": "yes"}}})
    rv = http.get(url).json()["metadata"]["resourceVersion"]
    results = {}
    watcher = threading.Thread(target=lambda: results.update(events=read_events(
        http, url, {"watch": "true", "resourceVersion": rv, "labelSelector": "keep=yes"}, 2)))
    watcher.start()
    time.sleep(0.3)
    http.post(url, json={"metadata": {"name": "other", "labels": {"keep": "no"}}})
    http.patch(f"{url}/sel", json={"metadata": {"labels": {"keep": "no"}}}, headers=MERGE)
    http.patch(f"{url}/other", json={"metadata": {"labels": {"keep": "yes"}}}, headers=MERGE)
    watcher.join(15)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in results["events"]] == [("DELETED", "sel"), ("ADDED", "other")]


def test_dynamic_client_watch(dyn, http, engine, namespace):
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    http.post(f"{engine.base}/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "seen"}})
    events = list(configmaps.watch(namespace=namespace, timeout=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "seen")]


def test_label_selectors(engine, http, namespace):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    labels = {"a": {"env": "prod", "tier": "web"}, "b": {"env": "dev", "tier": "db"}, "c": {"env": "qa"}, "d": {}}
    for name, these in labels.items():
        assert http.post(url, json={"metadata": {"name": name, "labels": these}}).status_code == 201

    def names(selector):
        response = http.get(url, params={"labelSelector": selector})
        assert response.status_code == 200, response.text
        return [i["metadata"]["name"] for i in response.json()["items"]]

    assert names("env=prod") == ["a"]
    assert names("env==dev") == ["b"]
    assert names("env!=prod") == ["b", "c", "d"]  # != also matches a missing key
    assert names("env in (prod, qa)") == ["a", "c"]
    assert names("env notin (prod,qa)") == ["b", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    assert names("env in (prod,dev),tier=db") == ["b"]


def test_field_selectors(engine, http, namespace, make_bc):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    for name in ("f1", "f2"):
        http.post(url, json={"metadata": {"name": name}})
    assert [i["metadata"]["name"] for i in http.get(url, params={"fieldSelector": "metadata.name=f2"}).json()["items"]] == ["f2"]
    assert [i["metadata"]["name"] for i in http.get(url, params={"fieldSelector": "metadata.name!=f2"}).json()["items"]] == ["f1"]
    everywhere = http.get(f"{engine.base}/api/v1/configmaps", params={"fieldSelector": f"metadata.namespace={namespace}"})
    assert sorted(i["metadata"]["name"] for i in everywhere.json()["items"]) == ["f1", "f2"]
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("fs"))
    http.post(f"{bc_url}/fs/instantiate", json={"metadata": {"name": "fs"}})
    builds = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds"
    deadline = time.monotonic() + 60
    while not http.get(builds, params={"fieldSelector": "status=Failed"}).json()["items"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert http.get(builds, params={"fieldSelector": "status=Running"}).json()["items"] == []
    assert http.get(builds, params={"fieldSelector": "podName=fs-1-build"}).json()["items"][0]["metadata"]["name"] == "fs-1"


def test_list_pagination(engine, http, namespace):
    url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    for index in range(5):
        http.post(url, json={"metadata": {"name": f"p{index}"}})
    first = http.get(url, params={"limit": 2}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["p0", "p1"]
    assert first["metadata"]["remainingItemCount"] == 3
    rest = http.get(url, params={"limit": 10, "continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["p2", "p3", "p4"] and "continue" not in rest["metadata"]


def test_merge_json_and_strategic_patches(engine, http, namespace, make_bc):
    cm_url = f"{engine.base}/api/v1/namespaces/{namespace}/configmaps"
    http.post(cm_url, json={"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}})
    merged = http.patch(f"{cm_url}/m", json={"data": {"a": None, "c": "3"}}, headers=MERGE).json()
    assert merged["data"] == {"b": "2", "c": "3"}
    ops = [{"op": "add", "path": "/data/d", "value": "4"}, {"op": "remove", "path": "/data/b"}]
    assert http.patch(f"{cm_url}/m", json=ops, headers=JSON_PATCH).json()["data"] == {"c": "3", "d": "4"}
    failing = [{"op": "test", "path": "/data/c", "value": "nope"}]
    assert http.patch(f"{cm_url}/m", json=failing, headers=JSON_PATCH).status_code == 422

    is_url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams"
    tag = {"name": "a", "from": {"kind": "DockerImage", "name": "127.0.0.1:1/x/a:1"}, "reference": True}
    http.post(is_url, json={"metadata": {"name": "s"}, "spec": {"tags": [tag]}})
    added = {"spec": {"tags": [{"name": "b", "from": {"kind": "DockerImage", "name": "127.0.0.1:1/x/b:1"}, "reference": True}]}}
    stream = http.patch(f"{is_url}/s", json=added, headers=STRATEGIC).json()
    assert [t["name"] for t in stream["spec"]["tags"]] == ["a", "b"]  # spec.tags merge by name
    assert stream["metadata"]["generation"] == 2
    assert [t["generation"] for t in stream["spec"]["tags"]] == [1, 2]
    removed = {"spec": {"tags": [{"name": "a", "$patch": "delete"}]}}
    assert [t["name"] for t in http.patch(f"{is_url}/s", json=removed, headers=STRATEGIC).json()["spec"]["tags"]] == ["b"]

    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("t", triggers=[{"type": "GitHub", "github": {"secret": "g"}}, {"type": "Generic", "generic": {"secret": "s"}}]))
    replaced = http.patch(f"{bc_url}/t", json={"spec": {"triggers": [{"type": "Generic", "generic": {"secret": "x"}}]}},
                          headers=STRATEGIC).json()
    assert replaced["spec"]["triggers"] == [{"type": "Generic", "generic": {"secret": "x"}}]  # triggers: replaced whole
    assert replaced["metadata"]["generation"] == 2
    unchanged = http.patch(f"{bc_url}/t", json={"spec": {"runPolicy": "Serial"}}, headers=MERGE).json()
    assert unchanged["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]  # no-op: no write


def test_imagestream_status_writes_do_not_bump_generation(engine, http, namespace):
    is_url = f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreams"
    created = http.post(is_url, json={"metadata": {"name": "g"}, "spec": {}}).json()
    created["status"]["tags"] = [{"tag": "x", "items": []}]
    ignored = http.put(f"{is_url}/g", json=created).json()
    assert "tags" not in ignored["status"]  # the main resource ignores status
    created["metadata"]["resourceVersion"] = ignored["metadata"]["resourceVersion"]
    written = http.put(f"{is_url}/g/status", json=created).json()
    assert written["status"]["tags"] == [{"tag": "x", "items": []}] and written["metadata"]["generation"] == 1


@pytest.mark.parametrize("policy", ["Serial", "SerialLatestOnly", "Parallel"])
def test_run_policies(engine, http, namespace, make_bc, policy):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("rp", runPolicy=policy))
    for _ in range(3):
        assert http.post(f"{bc_url}/rp/instantiate", json={"metadata": {"name": "rp"}}).status_code == 201
    builds_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds"
    deadline = time.monotonic() + 90
    while True:
        builds = {b["metadata"]["name"]: b for b in http.get(builds_url).json()["items"]}
        if all(b["status"]["phase"] in ("Complete", "Failed", "Error", "Cancelled") for b in builds.values()):
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    phases = {name: b["status"]["phase"] for name, b in builds.items()}
    if policy == "SerialLatestOnly":
        # rp-1 may have started before the others were queued; rp-2 was queued behind it and superseded by rp-3.
        assert phases["rp-2"] == "Cancelled" and phases["rp-3"] == "Failed"
    else:
        assert set(phases.values()) == {"Failed"}
    if policy == "Serial":  # one at a time: each started after the previous one completed
        ordered = [builds[f"rp-{n}"]["status"] for n in (1, 2, 3)]
        for before, after in zip(ordered, ordered[1:]):
            assert before["completionTimestamp"] <= after["startTimestamp"]
