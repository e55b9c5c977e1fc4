"""What the engine does on its own: scheduled re-imports of image tags, and bringing a dead registry back."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from osbs_local.executor.base_image import build_busybox_base


IMAGE_API = "/apis/image.openshift.io/v1"


@pytest.mark.slow
def test_scheduled_tags_are_reimported_and_a_dead_registry_comes_back(tmp_path, engines):
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"scheduled_import_seconds": 1}))  # OpenShift: 15 minutes
    engine = engines.start(state)
    try:
        http = engine.session()

        def push_base() -> str:
            return build_busybox_base(
                f"{engine.registry}/osbs/upstream:latest", storage_dir=tmp_path / "storage",
                auth_file=state / "auth.json", cert_dir=state / "certs.d" / engine.registry)

        def current_image() -> str | None:
            stream = http.get(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams/follow").json()
            tags = stream["status"].get("tags") or []
            return tags[0]["items"][0]["image"] if tags and tags[0].get("items") else None

        def wait_for_image(digest: str) -> None:
            deadline = time.monotonic() + 30
            while current_image() != digest:
                assert time.monotonic() < deadline, f"the tag never pointed at {digest}"
                time.sleep(0.3)

        first = push_base()
        created = http.post(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams", json={
            "metadata": {"name": "follow"},
            "spec": {"tags": [{"name": "latest", "importPolicy": {"scheduled": True},
                               "from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/upstream:latest"}}]}})
        assert created.status_code == 201, created.text
        wait_for_image(first)
        time.sleep(1.1)  # a different creation second, so a different image digest
        second = push_base()
        assert second != first
        wait_for_image(second)  # nobody asked: the scheduled import noticed the new image

        registry_pid = int((state / "registry" / "registry.pid").read_text())
        os.kill(registry_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                new_pid = int((state / "registry" / "registry.pid").read_text())
            except (OSError, ValueError):
                new_pid = None
            if new_pid and new_pid != registry_pid:
                break
            assert time.monotonic() < deadline, "the registry was not restarted"
            time.sleep(0.3)
        assert push_base()  # pushes work again
    finally:
        engines.stop(engine)
