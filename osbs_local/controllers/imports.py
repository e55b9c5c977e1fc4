"""The image import controller: imports ImageStream spec tags from their registries, when changed and on schedule."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Optional

from ..apiserver.api import Api
from ..apiserver.errors import ApiError
from ..apiserver.watch import Event
from ..kinds.image import imagestreamimport
from ..kinds.image.imagestream import find_tag

log = logging.getLogger("osbs_local.controllers")


class ImageStreamController:
    """Imports spec tags whose `from` is a DockerImage, when their generation is newer than the last import,
    and re-imports tags with importPolicy.scheduled every `scheduled_seconds` (OpenShift: 15 minutes, the
    controller config's imageImport.scheduledImageImportMinimumIntervalSeconds; `osbs-local up
    --scheduled-import-interval` here). A re-import that finds the same image writes nothing (imagestreamimport.py)."""

    def __init__(self, api: Api, scheduled_seconds: float = 900.0):
        self.api = api
        self.scheduled_seconds = scheduled_seconds
        self.queue: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="image-import", daemon=True)
        self.stopping = threading.Event()
        self.scheduler = threading.Thread(target=self._schedule_loop, name="image-import-scheduler", daemon=True)

    def _schedule_loop(self) -> None:
        while not self.stopping.wait(self.scheduled_seconds):
            for stream, _ in list(self.api.store.scan("imagestreams")):
                scheduled = self.scheduled_tags(stream)
                if scheduled:
                    self.queue.put((stream["metadata"]["namespace"], stream["metadata"]["name"], scheduled))

    @staticmethod
    def scheduled_tags(stream: dict) -> list[str]:
        """The tags a scheduled import re-imports (openshift-controller-manager pkg/image/controller
        scheduled_image_controller.go needsScheduling, resetScheduledTags): importable tags (a DockerImage `from`,
        not a reference) with importPolicy.scheduled; a tag by digest only until one import of it succeeded,
        since that image cannot change."""
        status_tags = (stream.get("status") or {}).get("tags") or []
        names = []
        for tag in (stream.get("spec") or {}).get("tags") or []:
            source = tag.get("from") or {}
            if source.get("kind") != "DockerImage" or tag.get("reference") or not (tag.get("importPolicy") or {}).get("scheduled"):
                continue
            if "@" in (source.get("name") or ""):
                items = (find_tag(status_tags, "tag", tag.get("name")) or {}).get("items") or []
                if items and (items[0].get("generation") or 0) == (tag.get("generation") or 0):
                    continue
            names.append(tag["name"])
        return names

    def on_event(self, event: Event) -> None:
        if event.resource == "imagestreams" and event.type != "DELETED" and self.pending_tags(event.obj):
            self.queue.put((event.namespace, event.obj["metadata"]["name"]))

    @staticmethod
    def pending_tags(stream: dict) -> list[str]:
        pending = []
        status_tags = (stream.get("status") or {}).get("tags") or []
        for tag in (stream.get("spec") or {}).get("tags") or []:
            source = tag.get("from") or {}
            if source.get("kind") != "DockerImage" or tag.get("reference"):
                continue
            generation = tag.get("generation") or 0
            status_tag = find_tag(status_tags, "tag", tag.get("name")) or {}
            observed = [item.get("generation") or 0 for item in (status_tag.get("items") or [])[:1]]
            observed += [c.get("generation") or 0 for c in status_tag.get("conditions") or []]
            if not observed or generation > max(observed):
                pending.append(tag["name"])
        return pending

    def start(self) -> None:
        self.thread.start()
        self.scheduler.start()
        for stream, _ in list(self.api.store.scan("imagestreams")):
            if self.pending_tags(stream):
                self.queue.put((stream["metadata"]["namespace"], stream["metadata"]["name"]))

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put(None)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            namespace, name = item[:2]
            stream = self.api.store.peek("imagestreams", namespace, name)
            if stream is None:
                continue
            tags = item[2] if len(item) > 2 else self.pending_tags(stream)
            if not tags:
                continue
            try:
                imagestreamimport.import_spec_tags(self.api, namespace, name, tags)
                log.info("imported %s/%s tags %s", namespace, name, ",".join(tags))
            except ApiError as error:
                if error.code != 409:
                    log.exception("import of %s/%s failed", namespace, name)
                    continue
                # The stream changed during the import (OAS answers 409): OCM's queue retries it
                # (imagestream_controller.go processNextWorkItem AddRateLimited), on the stream as it is now.
                log.info("import of %s/%s: the stream changed meanwhile; importing it again", namespace, name)
                if not self.stopping.wait(0.2):
                    self.queue.put(item)
            except Exception:
                log.exception("import of %s/%s failed", namespace, name)
