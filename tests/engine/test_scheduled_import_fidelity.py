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
