"""The trigger controller: ImageChange and ConfigChange triggers start builds, as openshift-controller-manager's do."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Optional

from ..apiserver.api import Api
from ..apiserver.errors import ApiError
from ..apiserver.watch import Event
from ..kinds.build import generator
from ..kinds.build.spec import PAUSED_ANNOTATION, image_change_from
from ..kinds.image import imagestream

log = logging.getLogger("osbs_local.controllers")


class TriggerController:
    """ImageChange and ConfigChange triggers (openshift-controller-manager pkg/image/trigger/buildconfigs and
    pkg/build/controller/buildconfig)."""

    def __init__(self, api: Api):
        self.api = api
        self.queue: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="triggers", daemon=True)

    def on_event(self, event: Event) -> None:
        if event.type == "DELETED":
            return
        if event.resource == "buildconfigs":
            self.queue.put(("bc", event.namespace, event.obj["metadata"]["name"]))
        elif event.resource == "imagestreams":
            self.queue.put(("is", event.namespace, event.obj["metadata"]["name"]))

    def start(self) -> None:
        self.thread.start()
        self.queue.put(("all",))

    def stop(self) -> None:
        self.queue.put(None)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                if item[0] == "bc":
                    self.evaluate(item[1], item[2])
                elif item[0] == "is":
                    self._evaluate_stream(item[1], item[2])
                else:
                    for bc, _ in list(self.api.store.scan("buildconfigs")):
                        self.evaluate(bc["metadata"]["namespace"], bc["metadata"]["name"])
            except Exception:
                log.exception("trigger evaluation of %s failed", item)

    def _evaluate_stream(self, namespace: str, stream: str) -> None:
        for bc, _ in list(self.api.store.scan("buildconfigs")):
            for trigger in bc["spec"].get("triggers") or []:
                if trigger.get("type") != "ImageChange":
                    continue
                source = image_change_from(bc, trigger, bc["metadata"]["namespace"])
                if source and source["namespace"] == namespace and source["name"].partition(":")[0] == stream:
                    self.evaluate(bc["metadata"]["namespace"], bc["metadata"]["name"])
                    break

    def evaluate(self, namespace: str, name: str) -> None:
        api = self.api
        with api.store.lock:
            bc = api.store.peek("buildconfigs", namespace, name)
            if bc is None or (bc["metadata"].get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
                return
            fired = False
            for trigger in bc["spec"].get("triggers") or []:
                if trigger.get("type") != "ImageChange" or (trigger.get("imageChange") or {}).get("paused"):
                    continue
                source = image_change_from(bc, trigger, namespace)
                if source is None:
                    continue
                latest = imagestream.resolve_tag_pull_spec(api, source["namespace"], source["name"])
                if not latest:
                    continue
                recorded = next(
                    (e.get("lastTriggeredImageID") for e in bc.get("status", {}).get("imageChangeTriggers") or []
                     if (e.get("from") or {}).get("name") == source["name"]
                     and (e.get("from") or {}).get("namespace", namespace) == source["namespace"]),
                    None,
                )
                spec_recorded = (trigger.get("imageChange") or {}).get("lastTriggeredImageID")
                if latest in (recorded, spec_recorded):
                    continue
                from_ref = {"kind": "ImageStreamTag", "name": source["name"], "namespace": source["namespace"]}
                request = {
                    "kind": "BuildRequest",
                    "apiVersion": "build.openshift.io/v1",
                    "metadata": {"name": name},
                    "triggeredByImage": {"kind": "DockerImage", "name": latest},
                    "from": from_ref,
                    "triggeredBy": [{"message": "Image change", "imageChangeBuild": {"imageID": latest, "fromRef": from_ref}}],
                }
                try:
                    build = generator.instantiate(api, namespace, name, request)
                    log.info("ImageChange trigger of %s/%s fired for %s: %s", namespace, name, latest, build["metadata"]["name"])
                    fired = True
                except ApiError as exc:
                    log.warning("ImageChange trigger of %s/%s could not start a build: %s", namespace, name, exc.message)
                break  # one build per evaluation; the BC update re-queues it for the other triggers
            bc = api.store.peek("buildconfigs", namespace, name)
            if (not fired and bc is not None and bc.get("status", {}).get("lastVersion", 0) == 0
                    and any(t.get("type") == "ConfigChange" for t in bc["spec"].get("triggers") or [])):
                request = {
                    "kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name},
                    "lastVersion": 0, "triggeredBy": [{"message": "Build configuration change"}],
                }
                try:
                    generator.instantiate(api, namespace, name, request)
                except ApiError as exc:
                    log.warning("ConfigChange trigger of %s/%s could not start a build: %s", namespace, name, exc.message)


