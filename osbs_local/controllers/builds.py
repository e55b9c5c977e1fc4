"""The build controller: starts New builds as their BuildConfig's runPolicy allows, in a bounded set of
worker threads, runs each with the executor and records the outcome (finishing a build prunes old ones:
build_status.prune_builds).

Listeners only enqueue: they run under the store lock.
"""

from __future__ import annotations

import copy
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import registry_client
from ..apiserver.api import Api
from ..apiserver.errors import ApiError
from ..apiserver.meta import now
from ..apiserver.watch import Event
from ..executor import git_source
from ..executor.process import BuildCancelled, BuildFailure
from ..executor.runner import run_build
from ..kinds.build.spec import ACTIVE_PHASES, POD_NAME_ANNOTATION, START_POLICY_LABEL
from ..kinds.image import imagestreamimport
from ..kinds.serviceaccount import BUILDER, docker_secret_for_image, first_docker_secret, service_account_secrets
from .build_status import (CANCELLED_MESSAGE, build_key, build_number, config_name, finish_build, record_build_event,
                           update_build)

log = logging.getLogger("osbs_local.controllers")


@dataclass
class BuildSettings:
    builder: str = "buildah"
    docker_host: Optional[str] = None
    workers: int = 2
    storage_dir: Optional[Path] = None
    ca_dir: Optional[Path] = None  # certs.d tree for buildah/skopeo
    git_timeout: float = git_source.DEFAULT_GIT_TIMEOUT  # seconds a git server may take to answer
    # Test switch (config.json test_build_without_image_digest): complete builds without
    # status.output.to.imageDigest, as OpenShift's builder does when a push returns no digest.
    record_image_digest: bool = True


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
        if event.resource == "secrets":
            self.wakeup.set()  # a build Pending for a secret its pod mounts may start now
            return
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
                by_config.setdefault((build["metadata"]["namespace"], config_name(build)), []).append(build)
        to_start: list[dict] = []
        to_resume: list[dict] = []  # Pending, the secrets their pod mounts now exist: already counted as running
        for (namespace, config), builds in by_config.items():
            builds.sort(key=build_number)
            waiting = []
            for build in builds:
                status = build.get("status", {})
                if status.get("phase") in ("New", "Pending") and status.get("cancelled") and build_key(build) not in self.workers:
                    finish_build(api, namespace, build["metadata"]["name"], "Cancelled", "CancelledBuild", CANCELLED_MESSAGE)
                elif status.get("phase") == "New":
                    waiting.append(build)
                elif self._secrets_appeared(build):
                    to_resume.append(build)
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
        for build in to_resume + to_start:
            with self._lock:
                if len(self.workers) >= self.settings.workers:
                    return
                key = build_key(build)
                if key in self.workers:
                    continue
                worker = _Worker()
                self.workers[key] = worker
            if build in to_start and not self._mark_pending(build):
                with self._lock:
                    self.workers.pop(key, None)
                continue
            worker.thread = threading.Thread(target=self._run, args=(key, worker), name=f"build-{key[1]}", daemon=True)
            worker.thread.start()

    def _missing_secrets(self, build: dict) -> list[tuple[str, str]]:
        """(field, name) of each secret the build pod mounts that does not exist.

        OpenShift mounts the push, pull and source secrets as secret volumes that are not optional (OCM
        pkg/build/controller/strategy/util.go setupDockerSecrets, setupSourceSecrets), so the kubelet keeps the pod,
        and the build, Pending until each exists.
        """
        spec = build["spec"]
        named = (
            ("spec.output.pushSecret", ((spec.get("output") or {}).get("pushSecret") or {}).get("name")),
            ("spec.strategy.dockerStrategy.pullSecret", self._pull_secret_name(build)),
            ("spec.source.sourceSecret", ((spec.get("source") or {}).get("sourceSecret") or {}).get("name")),
        )
        namespace = build["metadata"]["namespace"]
        return [(field, name) for field, name in named
                if name and self.api.store.peek("secrets", namespace, name) is None]

    def _secrets_appeared(self, build: dict) -> bool:
        """A build this engine left Pending for a missing secret (every other Pending build has a worker, and the
        engine's start ends the Pending builds of the one before) whose secrets all exist now."""
        status = build.get("status", {})
        return (status.get("phase") == "Pending" and not status.get("cancelled")
                and build_key(build) not in self.workers and not self._missing_secrets(build))

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
        """New to Pending, as OpenShift's createBuildPod: a Build without a pushSecret gets its ServiceAccount's.

        Without the ServiceAccount the build stays New with reason CannotRetrieveServiceAccount, and is tried again.
        """
        namespace, name = build_key(build)
        reference = self._output_reference(build)
        push_secret = (build["spec"].get("output") or {}).get("pushSecret")
        if push_secret is None and reference:
            secrets = self._service_account_image_pull_secrets(build)
            if secrets is None:
                update_build(self.api, namespace, name, _stay_new_without_service_account)
                return False
            found = docker_secret_for_image(secrets, reference) or first_docker_secret(secrets)
            push_secret = {"name": found} if found else None

        def mutate(current: dict) -> None:
            if current["status"].get("phase") != "New":
                raise _NotNew()
            current["status"]["phase"] = "Pending"
            current["status"].pop("reason", None)
            current["status"].pop("message", None)
            current["metadata"].setdefault("annotations", {})[POD_NAME_ANNOTATION] = f"{name}-build"
            if reference:
                current["status"]["outputDockerImageReference"] = reference
            if push_secret is not None:
                current["spec"].setdefault("output", {})["pushSecret"] = push_secret

        try:
            return update_build(self.api, namespace, name, mutate) is not None
        except _NotNew:
            return False

    def _service_account_image_pull_secrets(self, build: dict) -> Optional[list[dict]]:
        """The docker secrets the build controller may use: its ServiceAccount's imagePullSecrets (None: no such SA)."""
        return service_account_secrets(self.api, build["metadata"]["namespace"],
                                       build["spec"].get("serviceAccount") or BUILDER, "imagePullSecrets")

    def _pull_secret_name(self, build: dict) -> Optional[str]:
        """The base image's pull secret: the Build's, else the one the build pod gets (a matching ServiceAccount
        secret, else its first docker secret), which OpenShift does not write back to the Build."""
        strategy = (build["spec"].get("strategy") or {}).get("dockerStrategy") or {}
        named = (strategy.get("pullSecret") or {}).get("name")
        if named:
            return named
        secrets = self._service_account_image_pull_secrets(build) or []
        return docker_secret_for_image(secrets, (strategy.get("from") or {}).get("name") or "") or first_docker_secret(secrets)

    def _auths_for_secret(self, namespace: str, secret_name: Optional[str], field: str) -> dict:
        """The credentials of the secret the build uses for field (none without one: OpenShift's builder has only these)."""
        if not secret_name:
            return {}
        secret = self.api.store.get("secrets", namespace, secret_name)
        if secret is None:
            raise _MissingSecret(secret_name, field)
        return registry_client.auths_from_secret(secret)

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
                self.wakeup.set()

    def _execute(self, namespace, name, worker, build_dir, build_log, started) -> None:
        api = self.api
        pending = api.store.get("builds", namespace, name)
        if pending is None:
            return
        missing = self._missing_secrets(pending)
        if missing:
            # The pod cannot mount them and stays Pending; OpenShift gives a reason only for the push secret (OCM
            # build_controller.go handleActiveBuild). schedule() resumes the build on a secret event.
            log.info("build %s/%s Pending: missing %s", namespace, name,
                     ", ".join("secret %s (%s)" % (secret, field) for field, secret in missing))
            if any(field == "spec.output.pushSecret" for field, _ in missing):
                update_build(api, namespace, name, _wait_for_push_secret)
            return

        def start_running(build: dict) -> None:
            build["status"].update(phase="Running", startTimestamp=now())
            # OCM transitionToPhase(Running, "", ""): a MissingPushSecret reason does not outlive the wait.
            build["status"].pop("reason", None)
            build["status"].pop("message", None)

        running = update_build(api, namespace, name, start_running)
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
            pull_auths = self._auths_for_secret(namespace, self._pull_secret_name(build), "spec.strategy.dockerStrategy.pullSecret")
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
            reason = {"spec.output.pushSecret": MISSING_PUSH_SECRET, "spec.source.sourceSecret": "FetchSourceFailed"}.get(
                field, "GenericBuildFailed")
            finish_build(api, namespace, name, "Failed", reason, message, started_at=started)
            return
        except registry_client.RegistryError as bad_secret:
            finish_build(api, namespace, name, "Failed", "GenericBuildFailed", str(bad_secret), started_at=started)
            return
        try:
            result = run_build(
                build, workdir=build_dir / "work", storage_dir=self.settings.storage_dir or api.state_dir / "storage",
                log=build_log, push_auths=push_auths, pull_auths=pull_auths, ca_dir=self.settings.ca_dir,
                builder=self.settings.builder, docker_host=self.settings.docker_host, cancel=worker.cancel,
                source_secret=source_secret, git_timeout=self.settings.git_timeout,
            )
        except BuildCancelled:
            if self.stopping.is_set():
                # The engine is stopping, not the user cancelling: the build stays Running in the store and
                # the next start marks it Error (EngineRestarted), as it does after a crash.
                log.info("build %s/%s interrupted by the engine stopping", namespace, name)
                return
            log.info("build %s/%s cancelled", namespace, name)
            finish_build(api, namespace, name, "Cancelled", "CancelledBuild", CANCELLED_MESSAGE, started_at=started)
            return
        except BuildFailure as failure:
            log.info("build %s/%s failed: %s", namespace, name, failure.reason)
            finish_build(api, namespace, name, "Failed", failure.reason, failure.message, failure.log_snippet or "",
                         started_at=started)
            return
        digest = result.get("digest")
        to = (running["spec"].get("output") or {}).get("to") or {}
        if digest and to.get("kind") == "ImageStreamTag":
            stream, _, tag = to["name"].partition(":")
            try:
                imagestreamimport.record_pushed_image(api, to.get("namespace") or namespace, stream, tag or "latest", digest)
            except (registry_client.RegistryError, ApiError) as exc:
                build_log(f"error: the image was pushed but the image stream could not be updated: {exc}")
                finish_build(api, namespace, name, "Failed", "PushImageToRegistryFailed",
                             f"updating image stream {stream} failed: {exc}", started_at=started)
                return

        revision = result.get("revision")
        if revision and not running["spec"].get("revision"):
            # What OpenShift's builder does: the commit it built goes to spec.revision through builds/details.
            update_build(api, namespace, name, lambda b: b["spec"].update(revision={"type": "Git", "git": revision}), "details")
        if digest and self.settings.record_image_digest:
            update_build(api, namespace, name, lambda b: b["status"].update(output={"to": {"imageDigest": digest}}))
        finish_build(api, namespace, name, "Complete", started_at=started)
        log.info("build %s/%s complete: %s", namespace, name, digest)


MISSING_PUSH_SECRET = "MissingPushSecret"


def _wait_for_push_secret(build: dict) -> None:
    if build["status"].get("phase") == "Pending":
        build["status"]["reason"] = MISSING_PUSH_SECRET
        build["status"]["message"] = "Missing push secret."


def _stay_new_without_service_account(build: dict) -> None:
    if build["status"].get("phase") == "New":
        build["status"]["reason"] = "CannotRetrieveServiceAccount"
        build["status"]["message"] = "Unable to look up the service account secrets for this build."


class _NotNew(Exception):
    pass


class _MissingSecret(Exception):
    pass

