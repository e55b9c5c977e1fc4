"""The controllers of the serve process: build scheduler, ImageChange/ConfigChange triggers, image import.

Each controller has one thread fed by store events (listeners only enqueue: they run under the
store lock).  Builds run in a bounded set of worker threads; the build itself is
builder.run_build (engine-build's module), run with the Build as stored.
"""

from __future__ import annotations

import copy
import logging
import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from . import v2
from .api import Api, ApiError, now
from .api_build import (
    ACTIVE_PHASES,
    BUILD_CONFIG_LABEL,
    BUILD_NUMBER_ANNOTATION,
    PAUSED_ANNOTATION,
    POD_NAME_ANNOTATION,
    START_POLICY_LABEL,
    TERMINAL_PHASES,
    image_change_from,
)
from .api_image import find_tag
from .resources import BY_PLURAL
from .watch import Event

log = logging.getLogger("osbs_local.controllers")

CANCELLED_MESSAGE = "The build was cancelled by the user."
RESTART_REASON = "EngineRestarted"


@dataclass
class BuildSettings:
    builder: str = "buildah"
    docker_host: Optional[str] = None
    workers: int = 2
    storage_dir: Optional[Path] = None
    ca_dir: Optional[Path] = None  # certs.d tree for buildah/skopeo


def _build_key(build: dict) -> tuple[str, str]:
    return build["metadata"]["namespace"], build["metadata"]["name"]


def _build_number(build: dict) -> int:
    try:
        return int((build["metadata"].get("annotations") or {}).get(BUILD_NUMBER_ANNOTATION, "0"))
    except ValueError:
        return 0


def _config_name(build: dict) -> Optional[str]:
    return ((build.get("status") or {}).get("config") or {}).get("name") or (
        build["metadata"].get("labels") or {}
    ).get(BUILD_CONFIG_LABEL)


def _parse_time(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def update_build(api: Api, namespace: str, name: str, mutate: Callable[[dict], None], subresource: str = "") -> Optional[dict]:
    """Read-modify-write a Build under the store lock (subresource "details" for spec.revision); None when it is gone."""
    builds = BY_PLURAL["builds"]
    with api.store.lock:
        old = api.store.get("builds", namespace, name)
        if old is None:
            return None
        new = copy.deepcopy(old)
        mutate(new)
        return api.update_prepared(builds, old, new, subresource, False)


_PHASE_EVENTS = {
    "Running": ("BuildStarted", "Normal", "Build {key} is now running"),
    "Complete": ("BuildCompleted", "Normal", "Build {key} completed successfully"),
    "Failed": ("BuildFailed", "Warning", "Build {key} failed"),
    "Error": ("BuildFailed", "Warning", "Build {key} failed"),
    "Cancelled": ("BuildCancelled", "Normal", "Build {key} has been cancelled"),
}


def record_build_event(api: Api, build: Optional[dict]) -> None:
    """The Event OpenShift's build controller emits for the build's phase (kubectl describe shows it)."""
    if build is None or build.get("status", {}).get("phase") not in _PHASE_EVENTS:
        return
    reason, event_type, text = _PHASE_EVENTS[build["status"]["phase"]]
    meta = build["metadata"]
    stamp = now()
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"],
                     # Owned by the build, so the events go when it goes.
                     "ownerReferences": [{"apiVersion": "build.openshift.io/v1", "kind": "Build", "name": meta["name"],
                                          "uid": meta["uid"]}]},
        "involvedObject": {"kind": "Build", "apiVersion": "build.openshift.io/v1", "namespace": meta["namespace"],
                           "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")},
        "reason": reason, "type": event_type, "count": 1,
        "message": text.format(key=f"{meta['namespace']}/{meta['name']}"),
        "source": {"component": "build-controller"}, "reportingComponent": "build-controller",
        "firstTimestamp": stamp, "lastTimestamp": stamp,
    }
    try:
        with api.store.lock:
            if api.store.peek("builds", meta["namespace"], meta["name"]) is not None:
                api.create_prepared(BY_PLURAL["events"], event, dry=False)
    except ApiError as exc:
        log.warning("event for build %s/%s not recorded: %s", meta["namespace"], meta["name"], exc.message)


def finish_build(api: Api, namespace: str, name: str, phase: str, reason: str = "", message: str = "",
                 log_snippet: str = "", started_at: Optional[float] = None) -> Optional[dict]:
    finished = []

    def mutate(build: dict) -> None:
        status = build.setdefault("status", {})
        if status.get("phase") in TERMINAL_PHASES:
            return
        finished.append(True)
        status["phase"] = phase
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        if log_snippet:
            status["logSnippet"] = log_snippet
        status["completionTimestamp"] = now()
        start = started_at or _parse_time(status.get("startTimestamp"))
        if status.get("startTimestamp") and start:
            status["duration"] = int((time.time() - start) * 1e9)

    build = update_build(api, namespace, name, mutate)
    if finished:
        record_build_event(api, build)
    return build


def recover_after_restart(api: Api) -> int:
    """Builds the previous engine left New, Pending or Running end as Error: nothing runs them any more."""
    count = 0
    for build, _ in list(api.store.scan("builds")):
        phase = build.get("status", {}).get("phase", "New")
        if phase in ACTIVE_PHASES:
            namespace, name = _build_key(build)
            finish_build(
                api, namespace, name, "Error", RESTART_REASON,
                f"The osbs-local engine restarted while this build was {phase}; the build did not finish."
                " Start a new build.",
            )
            log.info("build %s/%s was %s when the engine stopped: now Error", namespace, name, phase)
            count += 1
    return count


class _Worker:
    def __init__(self):
        self.cancel = threading.Event()
        self.thread: Optional[threading.Thread] = None


class BuildController:
    """Starts New builds as runPolicy and the worker bound allow; runs them; records the outcome."""

    def __init__(self, api: Api, settings: BuildSettings):
        self.api = api
        self.settings = settings
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.workers: dict[tuple[str, str], _Worker] = {}
        self._lock = threading.Lock()
        self._deleted_dirs: "queue.Queue[Path]" = queue.Queue()  # build dirs to remove, off the store lock
        self.thread = threading.Thread(target=self._loop, name="build-scheduler", daemon=True)

    def on_event(self, event: Event) -> None:
        if event.resource not in ("builds", "buildconfigs"):
            return
        if event.resource == "builds" and (event.type == "DELETED" or event.obj.get("status", {}).get("cancelled")):
            worker = self.workers.get((event.namespace, event.obj["metadata"]["name"]))
            if worker is not None:
                worker.cancel.set()
        if event.resource == "builds" and event.type == "DELETED":
            self._deleted_dirs.put(self.api.state_dir / "builds" / event.namespace / event.obj["metadata"]["name"])
        self.wakeup.set()

    def start(self) -> None:
        self.thread.start()
        self.wakeup.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wakeup.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.cancel.set()
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(max(deadline - time.monotonic(), 0.1))

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wakeup.wait(2.0)
            self.wakeup.clear()
            if self.stopping.is_set():
                return
            try:
                self.schedule()
            except Exception:
                log.exception("build scheduling failed")
            self._remove_deleted_build_dirs()

    def _remove_deleted_build_dirs(self) -> None:
        """A deleted build's log and workspace go too (a running one once its worker has stopped)."""
        postponed = []
        while not self._deleted_dirs.empty():
            path = self._deleted_dirs.get()
            if (path.parent.name, path.name) in self.workers:
                postponed.append(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        for path in postponed:
            self._deleted_dirs.put(path)

    def schedule(self) -> None:
        if self.settings.workers <= 0:
            return  # a benchmark engine: builds stay New
        api = self.api
        by_config: dict[tuple[str, Optional[str]], list[dict]] = {}
        for build, _ in api.store.scan("builds"):
            if build.get("status", {}).get("phase", "New") in ACTIVE_PHASES:
                by_config.setdefault((build["metadata"]["namespace"], _config_name(build)), []).append(build)
        to_start: list[dict] = []
        for (namespace, config), builds in by_config.items():
            builds.sort(key=_build_number)
            waiting = []
            for build in builds:
                status = build.get("status", {})
                if status.get("phase") in ("New", "Pending") and status.get("cancelled") and _build_key(build) not in self.workers:
                    finish_build(api, namespace, build["metadata"]["name"], "Cancelled", "CancelledBuild", CANCELLED_MESSAGE)
                elif status.get("phase") == "New":
                    waiting.append(build)
            if not waiting:
                continue
            running = [b for b in builds if b.get("status", {}).get("phase") in ("Pending", "Running")]
            policy = (waiting[-1]["metadata"].get("labels") or {}).get(START_POLICY_LABEL, "Serial")
            if config is None or policy == "Parallel":
                to_start.extend(waiting)
            elif policy == "SerialLatestOnly":
                for older in waiting[:-1]:
                    update_build(api, namespace, older["metadata"]["name"], lambda b: b["status"].update(cancelled=True))
                    finish_build(api, namespace, older["metadata"]["name"], "Cancelled", "CancelledBuild", CANCELLED_MESSAGE)
                if not running:
                    to_start.append(waiting[-1])
            elif not running:
                to_start.append(waiting[0])
        for build in to_start:
            with self._lock:
                if len(self.workers) >= self.settings.workers:
                    return
                key = _build_key(build)
                if key in self.workers:
                    continue
                worker = _Worker()
                self.workers[key] = worker
            if not self._mark_pending(build):
                with self._lock:
                    self.workers.pop(key, None)
                continue
            worker.thread = threading.Thread(target=self._run, args=(key, worker), name=f"build-{key[1]}", daemon=True)
            worker.thread.start()

    def _output_reference(self, build: dict) -> Optional[str]:
        to = (build.get("spec", {}).get("output") or {}).get("to") or {}
        if to.get("kind") == "DockerImage":
            return to.get("name")
        if to.get("kind") == "ImageStreamTag" and to.get("name"):
            namespace = to.get("namespace") or build["metadata"]["namespace"]
            stream, _, tag = to["name"].partition(":")
            return f"{self.api.registry_host}/{namespace}/{stream}:{tag or 'latest'}"
        return None

    def _mark_pending(self, build: dict) -> bool:
        namespace, name = _build_key(build)
        reference = self._output_reference(build)

        def mutate(current: dict) -> None:
            if current["status"].get("phase") != "New":
                raise _NotNew()
            current["status"]["phase"] = "Pending"
            current["metadata"].setdefault("annotations", {})[POD_NAME_ANNOTATION] = f"{name}-build"
            if reference:
                current["status"]["outputDockerImageReference"] = reference

        try:
            return update_build(self.api, namespace, name, mutate) is not None
        except _NotNew:
            return False

    def _auths_for_secret(self, namespace: str, secret_name: Optional[str], field: str) -> dict:
        """The integrated registry's credentials, overridden by those of the secret the build names in field."""
        auths = dict(self.api.registry_auths or {})
        if secret_name:
            secret = self.api.store.get("secrets", namespace, secret_name)
            if secret is None:
                raise _MissingSecret(secret_name, field)
            auths.update(v2.auths_from_secret(secret))
        return auths

    def _run(self, key: tuple[str, str], worker: _Worker) -> None:
        namespace, name = key
        api = self.api
        build_dir = api.state_dir / "builds" / namespace / name
        build_dir.mkdir(parents=True, exist_ok=True)
        log_path = build_dir / "build.log"
        started = time.time()
        try:
            with open(log_path, "a", buffering=1) as log_file:
                def build_log(line: str) -> None:
                    log_file.write(line.rstrip("\n") + "\n")

                self._execute(namespace, name, worker, build_dir, build_log, started)
        except Exception:
            if self.stopping.is_set():
                return
            log.exception("build %s/%s: engine error", namespace, name)
            finish_build(api, namespace, name, "Error", "GenericBuildFailed",
                         "osbs-local failed while running the build; see the engine log", started_at=started)
        finally:
            # The source checkout and build context are not needed once the build ended; its log stays.
            shutil.rmtree(build_dir / "work", ignore_errors=True)
            with self._lock:
                self.workers.pop(key, None)
            if not self.stopping.is_set():
                self._prune(namespace, name)
                self.wakeup.set()

    def _execute(self, namespace, name, worker, build_dir, build_log, started) -> None:
        from . import builder

        api = self.api
        running = update_build(api, namespace, name, lambda b: b["status"].update(phase="Running", startTimestamp=now()))
        if running is None:
            return
        record_build_event(api, running)
        log.info("build %s/%s running (builder %s)", namespace, name, self.settings.builder)
        build = copy.deepcopy(running)
        output_reference = running["status"].get("outputDockerImageReference")
        if output_reference:
            build["spec"]["output"]["to"] = {"kind": "DockerImage", "name": output_reference}
        try:
            push_auths = self._auths_for_secret(
                namespace, ((build["spec"].get("output") or {}).get("pushSecret") or {}).get("name"), "spec.output.pushSecret")
            strategy = (build["spec"].get("strategy") or {}).get("dockerStrategy") or {}
            pull_auths = api.image_ops.namespace_auths(namespace)
            pull_auths.update(self._auths_for_secret(
                namespace, (strategy.get("pullSecret") or {}).get("name"), "spec.strategy.dockerStrategy.pullSecret"))
            source_secret = None
            source_secret_name = ((build["spec"].get("source") or {}).get("sourceSecret") or {}).get("name")
            if source_secret_name:
                source_secret = api.store.get("secrets", namespace, source_secret_name)
                if source_secret is None:
                    raise _MissingSecret(source_secret_name, "spec.source.sourceSecret")
        except _MissingSecret as missing:
            secret_name, field = missing.args
            message = f"secret {secret_name!r} ({field}) does not exist in namespace {namespace}"
            build_log(f"error: {message}")
            reason = {"spec.output.pushSecret": "MissingPushSecret", "spec.source.sourceSecret": "FetchSourceFailed"}.get(
                field, "GenericBuildFailed")
            finish_build(api, namespace, name, "Failed", reason, message, started_at=started)
            return
        except v2.RegistryError as bad_secret:
            finish_build(api, namespace, name, "Failed", "GenericBuildFailed", str(bad_secret), started_at=started)
            return
        try:
            result = builder.run_build(
                build, workdir=build_dir / "work", storage_dir=self.settings.storage_dir or api.state_dir / "storage",
                log=build_log, push_auths=push_auths, pull_auths=pull_auths, ca_dir=self.settings.ca_dir,
                builder=self.settings.builder, docker_host=self.settings.docker_host, cancel=worker.cancel,
                source_secret=source_secret,
            )
        except builder.BuildCancelled:
            if self.stopping.is_set():
                # The engine is stopping, not the user cancelling: the build stays Running in the store and
                # the next start marks it Error (EngineRestarted), as it does after a crash.
                log.info("build %s/%s interrupted by the engine stopping", namespace, name)
                return
            log.info("build %s/%s cancelled", namespace, name)
            finish_build(api, namespace, name, "Cancelled", "CancelledBuild", CANCELLED_MESSAGE, started_at=started)
            return
        except builder.BuildFailure as failure:
            log.info("build %s/%s failed: %s", namespace, name, failure.reason)
            finish_build(api, namespace, name, "Failed", failure.reason, failure.message, failure.log_snippet or "",
                         started_at=started)
            return
        digest = result.get("digest")
        to = (running["spec"].get("output") or {}).get("to") or {}
        if digest and to.get("kind") == "ImageStreamTag":
            stream, _, tag = to["name"].partition(":")
            try:
                api.image_ops.record_pushed_image(to.get("namespace") or namespace, stream, tag or "latest", digest)
            except (v2.RegistryError, ApiError) as exc:
                build_log(f"error: the image was pushed but the image stream could not be updated: {exc}")
                finish_build(api, namespace, name, "Failed", "PushImageToRegistryFailed",
                             f"updating image stream {stream} failed: {exc}", started_at=started)
                return

        revision = result.get("revision")
        if revision and not running["spec"].get("revision"):
            # What OpenShift's builder does: the commit it built goes to spec.revision through builds/details.
            update_build(api, namespace, name, lambda b: b["spec"].update(revision={"type": "Git", "git": revision}), "details")
        if digest:
            update_build(api, namespace, name, lambda b: b["status"].update(output={"to": {"imageDigest": digest}}))
        finish_build(api, namespace, name, "Complete", started_at=started)
        log.info("build %s/%s complete: %s", namespace, name, digest)

    def _prune(self, namespace: str, name: str) -> None:
        """Keep successfulBuildsHistoryLimit/failedBuildsHistoryLimit finished builds per BuildConfig."""
        api = self.api
        build = api.store.peek("builds", namespace, name)
        if build is None:
            return
        config = _config_name(build)
        bc = api.store.peek("buildconfigs", namespace, config) if config else None
        if bc is None:
            return
        limits = {
            "Complete": bc["spec"].get("successfulBuildsHistoryLimit", 5),
            "Failed": bc["spec"].get("failedBuildsHistoryLimit", 5),
        }
        groups: dict[str, list[dict]] = {"Complete": [], "Failed": []}
        for other, _ in api.store.scan("builds", namespace):
            if _config_name(other) != config:
                continue
            phase = other.get("status", {}).get("phase")
            if phase == "Complete":
                groups["Complete"].append(other)
            elif phase in ("Failed", "Error", "Cancelled"):
                groups["Failed"].append(other)
        for group, members in groups.items():
            limit = limits[group]
            if limit is None:
                continue
            members.sort(key=_build_number)
            for old in members[: max(len(members) - limit, 0)]:
                try:
                    api.delete(BY_PLURAL["builds"], namespace, old["metadata"]["name"])
                except ApiError:
                    pass


class _NotNew(Exception):
    pass


class _MissingSecret(Exception):
    pass


class TriggerController:
    """ImageChange and ConfigChange triggers (OPENSHIFT_API.md section 9)."""

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
                latest = api.image_ops.resolve_tag_pull_spec(source["namespace"], source["name"])
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
                    build = api.build_ops.instantiate(namespace, name, request)
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
                    api.build_ops.instantiate(namespace, name, request)
                except ApiError as exc:
                    log.warning("ConfigChange trigger of %s/%s could not start a build: %s", namespace, name, exc.message)


class ImageStreamController:
    """Imports spec tags whose `from` is a DockerImage, when their generation is newer than the last import,
    and re-imports tags with importPolicy.scheduled every `scheduled_seconds` (OpenShift: 15 minutes)."""

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
                scheduled = [t["name"] for t in (stream.get("spec") or {}).get("tags") or []
                             if (t.get("from") or {}).get("kind") == "DockerImage" and not t.get("reference")
                             and (t.get("importPolicy") or {}).get("scheduled")]
                if scheduled:
                    self.queue.put((stream["metadata"]["namespace"], stream["metadata"]["name"], scheduled))

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
                self.api.image_ops.import_spec_tags(namespace, name, tags)
                log.info("imported %s/%s tags %s", namespace, name, ",".join(tags))
            except Exception:
                log.exception("import of %s/%s failed", namespace, name)
