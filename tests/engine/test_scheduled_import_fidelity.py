"""Scheduled imports as openshift-controller-manager's scheduled image controller makes them (docs/openshift-fidelity.md D3, D4).

A re-import that finds the image the tag names already writes nothing (openshift-apiserver imagestreamimport rest.go
Create: `hasAnnotation && !hasChanges`), so a scheduled tag whose image did not move keeps its ImageStream's
resourceVersion and wakes no watcher; a tag by digest is imported on schedule only until one import succeeded
(scheduled_image_controller.go needsScheduling).
"""

from __future__ import annotations

import json
import time

import pytest

from osbs_local.executor.base_image import build_busybox_base

IMAGE_API = "/apis/image.openshift.io/v1"
INTERVAL = 1


@pytest.mark.slow
def test_a_scheduled_import_of_the_same_image_writes_nothing(tmp_path, engines):
    state = tmp_path / "state"
    state.mkdir()
    engine = engines.start(state, "--scheduled-import-interval", str(INTERVAL))
    try:
        assert json.loads((state / "config.json").read_text())["scheduled_import_seconds"] == INTERVAL
        http = engine.session()
        digest = build_busybox_base(f"{engine.registry}/vendor/same:latest", storage_dir=tmp_path / "storage",
                                    auth_file=state / "auth.json", cert_dir=state / "certs.d" / engine.registry)
        streams = f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams"
        tags = [{"name": "latest", "importPolicy": {"scheduled": True},
                 "from": {"kind": "DockerImage", "name": f"{engine.registry}/vendor/same:latest"}},
                {"name": "pinned", "importPolicy": {"scheduled": True},
                 "from": {"kind": "DockerImage", "name": f"{engine.registry}/vendor/same@{digest}"}}]
        created = http.post(streams, json={"metadata": {"name": "same"}, "spec": {"tags": tags}})
        assert created.status_code == 201, created.text

        def imported():
            stream = http.get(f"{streams}/same").json()
            items = {t["tag"]: t.get("items") or [] for t in stream["status"].get("tags") or []}
            return stream if all(items.get(name) for name in ("latest", "pinned")) else None

        deadline = time.monotonic() + 30
        while not imported():
            assert time.monotonic() < deadline, "the tags were never imported"
            time.sleep(0.3)
        time.sleep(INTERVAL * 2)  # the first scheduled passes after the import
        before = imported()
        time.sleep(INTERVAL * 4)  # several scheduled passes, each finding the same image
        after = imported()
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (before, after)
        assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    finally:
        engines.stop(engine)


# In-process: the import's own write path, with the registry answer made by the test (no engine needed).

def in_process_api(tmp_path):
    import osbs_local.kinds  # noqa: F401  (registers the kinds)
    from osbs_local.apiserver.api import Api
    from osbs_local.apiserver.storage import Store

    store = Store(tmp_path / "state.db")
    store.create("namespaces", {"metadata": {"name": "osbs"}})
    return Api(store, tmp_path)


def scheduled_stream(api, source):
    from osbs_local.apiserver import registration

    api.create(registration.resource("imagestreams"), "osbs", {"metadata": {"name": "ubi"}, "spec": {"tags": [
        {"name": "latest", "importPolicy": {"scheduled": True}, "from": {"kind": "DockerImage", "name": source}}]}})


def test_a_spec_change_during_an_import_is_a_conflict_and_the_new_from_is_imported_next(tmp_path, monkeypatch):
    """OCM posts the ISI with the stream's resourceVersion; OAS answers 409 when the stream changed meanwhile
    (rest.go Create). Before: the old `from`'s image was recorded under the new spec tag's generation, so the
    tag was never imported from its new `from`."""
    import copy

    from osbs_local.apiserver import registration
    from osbs_local.apiserver.errors import ApiError
    from osbs_local.controllers.imports import ImageStreamController
    from osbs_local.kinds.image import imagestreamimport

    api = in_process_api(tmp_path)
    scheduled_stream(api, "reg.example/ubi:8")
    old_digest = "sha256:" + "8" * 64

    def import_while_someone_retags(api_, namespace, ref, insecure, auths, include, store=True, keep_list=False):
        stream = copy.deepcopy(api_.store.get("imagestreams", "osbs", "ubi"))
        stream["spec"]["tags"][0]["from"]["name"] = "reg.example/ubi:9"  # oc tag / osbs_buildconfig meanwhile
        api_.update(registration.resource("imagestreams"), "osbs", "ubi", stream)
        image = {"metadata": {"name": old_digest}, "dockerImageReference": "reg.example/ubi@" + old_digest}
        return {"metadata": {}, "status": "Success"}, image, []

    monkeypatch.setattr(imagestreamimport, "_import_one", import_while_someone_retags)
    with pytest.raises(ApiError) as error:
        imagestreamimport.import_spec_tags(api, "osbs", "ubi", ["latest"])
    assert error.value.code == 409
    stream = api.store.get("imagestreams", "osbs", "ubi")
    assert not ((stream.get("status") or {}).get("tags") or [{}])[0].get("items"), stream["status"]
    assert ImageStreamController.pending_tags(stream) == ["latest"]  # the controller imports ubi:9 next

    # The controller retries a 409, as OCM's queue does, and imports the new `from`.
    new_digest = "sha256:" + "9" * 64
    calls = []

    def registry(api_, namespace, ref, insecure, auths, include, store=True, keep_list=False):
        calls.append(ref)
        if len(calls) == 1:
            return import_while_someone_retags(api_, namespace, ref, insecure, auths, include)
        image = {"metadata": {"name": new_digest}, "dockerImageReference": "reg.example/ubi@" + new_digest}
        return {"metadata": {}, "status": "Success"}, image, []

    scheduled_stream_named = copy.deepcopy(api.store.get("imagestreams", "osbs", "ubi"))
    scheduled_stream_named["spec"]["tags"][0]["from"]["name"] = "reg.example/ubi:8"
    api.update(registration.resource("imagestreams"), "osbs", "ubi", scheduled_stream_named)
    monkeypatch.setattr(imagestreamimport, "_import_one", registry)
    controller = ImageStreamController(api, scheduled_seconds=3600)
    controller.queue.put(("osbs", "ubi", ["latest"]))  # a scheduled pass
    controller.thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(calls) < 2:
            time.sleep(0.05)
    finally:
        controller.stop()
        controller.thread.join(10)
    stream = api.store.get("imagestreams", "osbs", "ubi")
    assert calls == ["reg.example/ubi:8", "reg.example/ubi:9"], calls
    assert stream["status"]["tags"][0]["items"][0]["image"] == new_digest, stream["status"]
    assert ImageStreamController.pending_tags(stream) == []


def test_a_failing_scheduled_import_with_the_same_condition_writes_nothing(tmp_path):
    """OAS setFailureCondition keeps the condition when type, status, reason and message are the same
    (hasTagCondition), and `hasAnnotation && !hasChanges` writes nothing. Before: a new lastTransitionTime and a
    write on every pass for a dead registry."""
    from osbs_local.kinds.image import imagestreamimport

    api = in_process_api(tmp_path)
    scheduled_stream(api, "127.0.0.1:1/vendor/ubi:latest")  # nothing listens there
    seen = []
    for _ in range(3):
        imagestreamimport.import_spec_tags(api, "osbs", "ubi", ["latest"])
        stream = api.store.get("imagestreams", "osbs", "ubi")
        [condition] = stream["status"]["tags"][0]["conditions"]
        seen.append((stream["metadata"]["resourceVersion"], condition["lastTransitionTime"]))
        time.sleep(1.1)
    assert condition["status"] == "False" and condition["type"] == "ImportSuccess", condition
    assert seen[1] == seen[0] and seen[2] == seen[0], seen


def test_a_tag_by_digest_is_scheduled_only_until_one_import_of_it_succeeded():
    """OCM needsScheduling/resetScheduledTags: a digest cannot change, so once an import at the tag's generation
    succeeded it is not imported on schedule again; a tag by tag always is. (The engine test above cannot tell:
    a re-import of the same digest writes nothing either way.)"""
    from osbs_local.controllers.imports import ImageStreamController

    digest = "sha256:" + "d" * 64

    def stream(pinned_item_generation):
        items = [] if pinned_item_generation is None else [{"image": digest, "generation": pinned_item_generation}]
        return {"spec": {"tags": [
            {"name": "latest", "generation": 2, "importPolicy": {"scheduled": True},
             "from": {"kind": "DockerImage", "name": "reg.example/ubi:latest"}},
            {"name": "pinned", "generation": 2, "importPolicy": {"scheduled": True},
             "from": {"kind": "DockerImage", "name": "reg.example/ubi@" + digest}},
            {"name": "unscheduled", "generation": 2, "from": {"kind": "DockerImage", "name": "reg.example/ubi:9"}},
        ]}, "status": {"tags": [{"tag": "latest", "items": [{"image": digest, "generation": 2}]},
                                {"tag": "pinned", "items": items}]}}

    assert ImageStreamController.scheduled_tags(stream(2)) == ["latest"]
    assert ImageStreamController.scheduled_tags(stream(1)) == ["latest", "pinned"]  # imported for an older spec
    assert ImageStreamController.scheduled_tags(stream(None)) == ["latest", "pinned"]  # never imported
