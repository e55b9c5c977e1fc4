"""build.openshift.io: BuildConfig and Build rules, and POST buildconfigs/NAME/instantiate (OPENSHIFT_API.md 3-5)."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import uuid
from typing import TYPE_CHECKING, Optional

from .api import ApiError, Cause, Strategy, bad_request, invalid, not_found, now
from .resources import BY_PLURAL

if TYPE_CHECKING:
    from .api import Api

RUN_POLICIES = ("Serial", "Parallel", "SerialLatestOnly")
IMAGE_OPTIMIZATION_POLICIES = ("None", "SkipLayers", "SkipLayersAndWarn")
TERMINAL_PHASES = ("Complete", "Failed", "Error", "Cancelled")
ACTIVE_PHASES = ("New", "Pending", "Running")
PAUSED_ANNOTATION = "openshift.io/build-config.paused"
BUILD_NUMBER_ANNOTATION = "openshift.io/build.number"
BUILD_CONFIG_LABEL = "openshift.io/build-config.name"
DEPRECATED_BUILD_CONFIG_LABEL = "buildconfig"
START_POLICY_LABEL = "openshift.io/build.start-policy"
POD_NAME_ANNOTATION = "openshift.io/build.pod-name"
TRIGGER_TYPES = ("GitHub", "Generic", "GitLab", "Bitbucket", "ImageChange", "ConfigChange")
WEBHOOK_FIELDS = {"GitHub": "github", "Generic": "generic", "GitLab": "gitlab", "Bitbucket": "bitbucket"}
STRATEGY_FIELDS = {
    "dockerStrategy": "Docker",
    "sourceStrategy": "Source",
    "customStrategy": "Custom",
    "jenkinsPipelineStrategy": "JenkinsPipeline",
}


def strategy_from(spec: dict) -> Optional[dict]:
    """The base image reference of the strategy (`from`), whatever the strategy type."""
    strategy = spec.get("strategy") or {}
    for field in ("dockerStrategy", "sourceStrategy", "customStrategy"):
        if isinstance(strategy.get(field), dict):
            return strategy[field].get("from")
    return None


def _strategy_body(spec: dict) -> Optional[dict]:
    strategy = spec.get("strategy") or {}
    for field in ("dockerStrategy", "sourceStrategy", "customStrategy"):
        if isinstance(strategy.get(field), dict):
            return strategy[field]
    return None


def image_change_from(bc: dict, trigger: dict, namespace: str) -> Optional[dict]:
    """The ImageStreamTag an ImageChange trigger watches (its own from, else the strategy's), or None."""
    image_change = trigger.get("imageChange") or {}
    source = image_change.get("from") or strategy_from(bc.get("spec", {}))
    if not source or source.get("kind") != "ImageStreamTag" or not source.get("name"):
        return None
    return {"kind": "ImageStreamTag", "name": source["name"], "namespace": source.get("namespace") or namespace}


def _common_spec_defaults(spec: dict) -> None:
    source = spec.get("source")
    if isinstance(source, dict):
        if source.get("git"):
            source["type"] = "Git"
        elif source.get("dockerfile") is not None:
            source["type"] = "Dockerfile"
        elif source.get("binary") is not None:
            source["type"] = "Binary"
        elif source.get("images"):
            source["type"] = "Image"
        else:
            source.setdefault("type", "None")
    strategy = spec.get("strategy")
    if isinstance(strategy, dict):
        for field, strategy_type in STRATEGY_FIELDS.items():
            if isinstance(strategy.get(field), dict):
                strategy["type"] = strategy_type
                body = strategy[field]
                if isinstance(body.get("from"), dict) and not body["from"].get("kind"):
                    body["from"]["kind"] = "ImageStreamTag"
                break
    output = spec.get("output")
    if isinstance(output, dict) and isinstance(output.get("to"), dict):
        to = output["to"]
        if to.get("kind") in (None, "", "ImageStream"):
            to["kind"] = "ImageStreamTag"
            if to.get("name") and ":" not in to["name"]:
                to["name"] = f"{to['name']}:latest"
    spec.setdefault("resources", {})
    spec.setdefault("postCommit", {})
    spec.setdefault("nodeSelector", None)
    spec.setdefault("output", {})


def _validate_common_spec(spec: dict, path: str = "spec") -> list[Cause]:
    causes = []
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict) or not any(isinstance(strategy.get(f), dict) for f in STRATEGY_FIELDS):
        causes.append(Cause(f"{path}.strategy", "FieldValueRequired", "must provide a value for exactly one of sourceStrategy, customStrategy, dockerStrategy, or jenkinsPipelineStrategy"))
    else:
        body = _strategy_body(spec) or {}
        source_from = body.get("from")
        if isinstance(source_from, dict):
            kind = source_from.get("kind")
            if kind not in ("ImageStreamTag", "DockerImage", "ImageStreamImage"):
                causes.append(Cause(f"{path}.strategy.from.kind", "FieldValueInvalid", f"{kind!r}: kind must be one of ImageStreamTag, ImageStreamImage, DockerImage"))
            elif not source_from.get("name"):
                causes.append(Cause(f"{path}.strategy.from.name", "FieldValueRequired", "name is required"))
            elif kind == "ImageStreamTag" and ":" not in source_from["name"]:
                causes.append(Cause(f"{path}.strategy.from.name", "FieldValueInvalid", f"{source_from['name']!r}: ImageStreamTag object references must be in the form <name>:<tag>"))
        policy = (strategy.get("dockerStrategy") or {}).get("imageOptimizationPolicy")
        if policy is not None and policy not in IMAGE_OPTIMIZATION_POLICIES:
            causes.append(Cause(f"{path}.strategy.dockerStrategy.imageOptimizationPolicy", "FieldValueInvalid",
                                f"{policy!r}: must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'"))
    source = spec.get("source") or {}
    git = source.get("git")
    if git is not None and (not isinstance(git, dict) or not git.get("uri")):
        causes.append(Cause(f"{path}.source.git.uri", "FieldValueRequired", "must provide a uri"))
    to = (spec.get("output") or {}).get("to")
    if isinstance(to, dict):
        if to.get("kind") not in ("ImageStreamTag", "DockerImage"):
            causes.append(Cause(f"{path}.output.to.kind", "FieldValueInvalid", f"{to.get('kind')!r}: kind must be one of ImageStreamTag or DockerImage"))
        elif not to.get("name"):
            causes.append(Cause(f"{path}.output.to.name", "FieldValueRequired", "name is required"))
    return causes


class BuildConfigStrategy(Strategy):
    has_generation = True
    require_rv_on_update = True

    def _defaults(self, obj: dict) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("runPolicy", "Serial")
        spec.setdefault("successfulBuildsHistoryLimit", 5)
        spec.setdefault("failedBuildsHistoryLimit", 5)
        if spec.get("triggers") is None:
            spec["triggers"] = []
        _common_spec_defaults(spec)
        # An ImageChange trigger without a usable ImageStreamTag is dropped (BVAL; v1 conversion).
        spec["triggers"] = [
            t for t in spec["triggers"]
            if not (isinstance(t, dict) and t.get("type") == "ImageChange" and image_change_from(obj, t, "") is None)
        ]

    def prepare_create(self, api, obj):
        self._defaults(obj)
        obj["status"] = {"lastVersion": 0}

    def prepare_update(self, api, old, new, subresource):
        self._defaults(new)
        status = new.get("status") if isinstance(new.get("status"), dict) else {}
        old_status = old.get("status") or {}
        old_last = old_status.get("lastVersion", 0)
        if not isinstance(status.get("lastVersion"), int) or status["lastVersion"] < old_last:
            status["lastVersion"] = old_last  # a lower lastVersion is ignored (BCST)
        new["status"] = status
        if new.get("spec") != old.get("spec") or status["lastVersion"] != old_last:
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def validate(self, api, obj, old, subresource=""):
        spec = obj.get("spec") or {}
        causes = _validate_common_spec(spec)
        if spec.get("runPolicy") not in RUN_POLICIES:
            causes.append(Cause("spec.runPolicy", "FieldValueNotSupported", f"{spec.get('runPolicy')!r}: supported values: {', '.join(RUN_POLICIES)}"))
        for index, trigger in enumerate(spec.get("triggers") or []):
            kind = trigger.get("type") if isinstance(trigger, dict) else None
            if kind not in TRIGGER_TYPES:
                causes.append(Cause(f"spec.triggers[{index}].type", "FieldValueNotSupported", f"{kind!r}: supported values: {', '.join(TRIGGER_TYPES)}"))
            elif kind in WEBHOOK_FIELDS:
                hook = trigger.get(WEBHOOK_FIELDS[kind]) or {}
                if not hook.get("secret") and not (hook.get("secretReference") or {}).get("name"):
                    causes.append(Cause(f"spec.triggers[{index}].{WEBHOOK_FIELDS[kind]}.secretReference", "FieldValueRequired", "must provide a secret or secretReference"))
        for field in ("successfulBuildsHistoryLimit", "failedBuildsHistoryLimit"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < 0):
                causes.append(Cause(f"spec.{field}", "FieldValueInvalid", "must be a non-negative integer"))
        return causes


def sync_conditions(build: dict) -> None:
    """Keep status.conditions in step with status.phase, as the Build strategy does on every write."""
    status = build.setdefault("status", {})
    phase = status.get("phase", "New")
    conditions = status.get("conditions") or []
    current = next((c for c in conditions if c.get("type") == phase), None)
    stamp = now()
    for condition in conditions:
        if condition.get("type") != phase and condition.get("status") == "True":
            condition["status"] = "False"
            condition["lastTransitionTime"] = stamp
            condition["lastUpdateTime"] = stamp
    if current is None:
        current = {"type": phase, "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
        conditions.append(current)
    elif current.get("status") != "True":
        current.update(status="True", lastTransitionTime=stamp, lastUpdateTime=stamp)
    for key in ("reason", "message"):
        if status.get(key):
            current[key] = status[key]
    status["conditions"] = conditions


class BuildStrategy(Strategy):
    has_generation = True
    require_rv_on_update = True

    def prepare_create(self, api, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("serviceAccount", "builder")
        _common_spec_defaults(spec)
        status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        status.setdefault("phase", "New")
        status.setdefault("output", {})
        obj["status"] = status
        sync_conditions(obj)

    def prepare_update(self, api, old, new, subresource):
        if subresource == "details":
            # builds/NAME/details: what the builder records about the source; only spec.revision changes.
            revision = (new.get("spec") or {}).get("revision")
            new["spec"] = copy.deepcopy(old.get("spec") or {})
            new["spec"]["revision"] = revision
            new["status"] = copy.deepcopy(old.get("status") or {})
            for key in ("labels", "annotations", "ownerReferences", "finalizers"):
                if key in old["metadata"]:
                    new["metadata"][key] = copy.deepcopy(old["metadata"][key])
                else:
                    new["metadata"].pop(key, None)
        spec = new.setdefault("spec", {})
        _common_spec_defaults(spec)
        status = new.get("status") if isinstance(new.get("status"), dict) else {}
        new["status"] = status
        status.setdefault("phase", old.get("status", {}).get("phase", "New"))
        old_status = old.get("status") or {}
        if old_status.get("phase") == "Failed" and status.get("reason") != old_status.get("reason") and status.get("reason") != "OutOfMemoryKilled":
            status["reason"] = old_status.get("reason")
        sync_conditions(new)
        if spec != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def validate(self, api, obj, old, subresource=""):
        causes = _validate_common_spec(obj.get("spec") or {})
        phase = (obj.get("status") or {}).get("phase")
        phases = ACTIVE_PHASES + TERMINAL_PHASES
        if phase not in phases:
            causes.append(Cause("status.phase", "FieldValueNotSupported", f"{phase!r}: supported values: {', '.join(phases)}"))
        if old is not None:
            old_spec, new_spec = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(obj.get("spec") or {})
            for spec in (old_spec, new_spec):
                (spec.get("output") or {}).pop("pushSecret", None)
            if subresource == "details":
                if old_spec.get("revision") and new_spec.get("revision") != old_spec.get("revision"):
                    causes.append(Cause("spec.revision", "FieldValueInvalid", "cannot change the revision of a build once it is set"))
                for spec in (old_spec, new_spec):
                    spec.pop("revision", None)
            if old_spec != new_spec:
                causes.append(Cause("spec", "FieldValueInvalid", "spec is immutable except for spec.output.pushSecret"))
            old_phase = (old.get("status") or {}).get("phase")
            if old_phase in TERMINAL_PHASES and phase != old_phase:
                causes.append(Cause("status.phase", "FieldValueInvalid", f"{phase!r}: phase cannot be updated from a terminal state"))
        return causes


def build_name(bc_name: str, number: int) -> str:
    """`<bc>-<n>`; over-long names are shortened with a hash like library-go's namer."""
    name = f"{bc_name}-{number}"
    if len(name) <= 253:
        return name
    digest = hashlib.new("fnv1a_32", name.encode()).hexdigest() if "fnv1a_32" in hashlib.algorithms_available else hashlib.sha1(name.encode()).hexdigest()[:8]
    suffix = f"-{number}"
    return f"{bc_name[: 253 - len(suffix) - 9]}-{digest[:8]}{suffix}"


def _merge_by_name(base: list, overrides: list) -> list:
    merged = [copy.deepcopy(item) for item in base or []]
    for item in overrides or []:
        index = next((n for n, old in enumerate(merged) if old.get("name") == item.get("name")), None)
        if index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = copy.deepcopy(item)
    return merged


class BuildOperations:
    def __init__(self, api: "Api"):
        self.api = api

    def instantiate(self, namespace: str, name: str, request: dict, dry_run=None) -> dict:
        """POST buildconfigs/NAME/instantiate: the Build, created New (OPENSHIFT_API.md section 4)."""
        api = self.api
        dry = api.check_dry_run(dry_run)
        if not isinstance(request, dict):
            raise bad_request("the request body must be a BuildRequest object")
        bc_resource, build_resource = BY_PLURAL["buildconfigs"], BY_PLURAL["builds"]
        with api.store.lock:
            bc = api.store.get("buildconfigs", namespace, name)
            if bc is None:
                raise not_found(bc_resource, name)
            if (bc["metadata"].get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
                raise bad_request(f"can't instantiate from BuildConfig {namespace}/{name}: BuildConfig is paused")
            status = bc.setdefault("status", {})
            last_version = status.get("lastVersion", 0)
            requested_last = request.get("lastVersion")
            if requested_last is not None and requested_last != last_version:
                raise bad_request(
                    f"the LastVersion({last_version}) on build config {namespace}/{name} does not match the build"
                    f" request LastVersion({requested_last})"
                )
            spec = copy.deepcopy(bc["spec"])
            triggered_by_image = request.get("triggeredByImage") or None
            self._record_image_change_triggers(bc, request, triggered_by_image)
            strategy = _strategy_body(spec)
            if strategy is not None:
                self._resolve_strategy_from(spec, strategy, triggered_by_image, namespace)
                self._apply_request_options(spec, strategy, request)
            number = last_version + 1
            bc["status"]["lastVersion"] = number
            build = self._new_build(bc, spec, request, number)
            if dry:
                build["metadata"]["namespace"] = namespace
                return api.create_prepared(build_resource, build, dry=True)
            api.update_prepared(bc_resource, api.store.get("buildconfigs", namespace, name), bc, "", False)
            created = api.create_prepared(build_resource, build, dry=False)
        return created

    def clone(self, namespace: str, name: str, request: dict, dry_run=None) -> dict:
        """POST builds/NAME/clone: a new Build of the same BuildConfig with the old build's spec (201)."""
        api = self.api
        dry = api.check_dry_run(dry_run)
        if not isinstance(request, dict):
            raise bad_request("the request body must be a BuildRequest object")
        bc_resource, build_resource = BY_PLURAL["buildconfigs"], BY_PLURAL["builds"]
        with api.store.lock:
            old_build = api.store.get("builds", namespace, name)
            if old_build is None:
                raise not_found(build_resource, name)
            bc_name = ((old_build.get("status") or {}).get("config") or {}).get("name")
            bc = api.store.get("buildconfigs", namespace, bc_name) if bc_name else None
            if bc is None:
                raise bad_request(f"build {namespace}/{name} has no BuildConfig to number a clone with")
            if (bc["metadata"].get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
                raise bad_request(f"can't clone from BuildConfig {namespace}/{bc_name}: BuildConfig is paused")
            number = bc.get("status", {}).get("lastVersion", 0) + 1
            bc["status"]["lastVersion"] = number
            spec = copy.deepcopy(old_build["spec"])
            spec["runPolicy"] = bc["spec"].get("runPolicy", "Serial")
            strategy = _strategy_body(spec)
            if strategy is not None:
                self._apply_request_options(spec, strategy, request)
            build = self._new_build(bc, spec, {**request, "revision": request.get("revision") or spec.get("revision")}, number)
            if dry:
                return api.create_prepared(build_resource, build, dry=True)
            api.update_prepared(bc_resource, api.store.get("buildconfigs", namespace, bc_name), bc, "", False)
            return api.create_prepared(build_resource, build, dry=False)

    def _record_image_change_triggers(self, bc: dict, request: dict, triggered_by_image: Optional[dict]) -> None:
        """Rebuild status.imageChangeTriggers; the firing trigger records the image (GEN step 3-4)."""
        namespace = bc["metadata"]["namespace"]
        requested_from = request.get("from") or None
        entries = []
        for trigger in bc["spec"].get("triggers") or []:
            if trigger.get("type") != "ImageChange":
                continue
            source = image_change_from(bc, trigger, namespace)
            if source is None:
                continue
            recorded = next(
                (e for e in (bc.get("status", {}).get("imageChangeTriggers") or [])
                 if (e.get("from") or {}).get("name") == source["name"]
                 and (e.get("from") or {}).get("namespace", namespace) == source["namespace"]),
                {},
            )
            entry = {
                "from": {"namespace": source["namespace"], "name": source["name"]},
                "lastTriggeredImageID": recorded.get("lastTriggeredImageID", ""),
                "lastTriggerTime": recorded.get("lastTriggerTime"),
            }
            fires = triggered_by_image is not None and (
                requested_from is None
                or (requested_from.get("name") == source["name"]
                    and (requested_from.get("namespace") or namespace) == source["namespace"])
            )
            if fires:
                image = triggered_by_image.get("name", "")
                if image and image == recorded.get("lastTriggeredImageID"):
                    raise ApiError(
                        500, "InternalError",
                        f"build config {namespace}/{bc['metadata']['name']} has already instantiated a build for imageid {image}",
                    )
                entry["lastTriggeredImageID"] = image
                entry["lastTriggerTime"] = now()
            else:
                entry["lastTriggeredImageID"] = self.api.image_ops.resolve_tag_pull_spec(
                    source["namespace"], source["name"]) or entry["lastTriggeredImageID"]
            entries.append(entry)
        if entries or "imageChangeTriggers" in bc.get("status", {}):
            bc["status"]["imageChangeTriggers"] = entries

    def _resolve_strategy_from(self, spec: dict, strategy: dict, triggered_by_image: Optional[dict], namespace: str) -> None:
        source = strategy.get("from")
        if not isinstance(source, dict):
            return
        if source.get("kind") == "ImageStreamTag":
            if triggered_by_image and triggered_by_image.get("name"):
                strategy["from"] = {"kind": "DockerImage", "name": triggered_by_image["name"]}
                return
            tag_namespace = source.get("namespace") or namespace
            pull_spec = self.api.image_ops.resolve_tag_pull_spec(tag_namespace, source["name"])
            if pull_spec is None:
                raise invalid(
                    "ImageStreamTag.image.openshift.io", source["name"],
                    [Cause("from", "FieldValueInvalid", f"unable to find latest tagged image for {tag_namespace}/{source['name']}")],
                    "image.openshift.io", "ImageStreamTag",
                )
            strategy["from"] = {"kind": "DockerImage", "name": pull_spec}

    def _apply_request_options(self, spec: dict, strategy: dict, request: dict) -> None:
        if request.get("env"):
            strategy["env"] = _merge_by_name(strategy.get("env") or [], request["env"])
        docker_options = request.get("dockerStrategyOptions")
        if docker_options:
            if spec["strategy"].get("type") != "Docker":
                raise bad_request("Cannot specify Docker build specific options on a non-Docker build.")
            if docker_options.get("buildArgs"):
                strategy["buildArgs"] = _merge_by_name(strategy.get("buildArgs") or [], docker_options["buildArgs"])
            if docker_options.get("noCache") is not None:
                strategy["noCache"] = docker_options["noCache"]
        if request.get("sourceStrategyOptions") and spec["strategy"].get("type") != "Source":
            raise bad_request("Cannot specify Source build specific options on a non-Source build.")

    def _new_build(self, bc: dict, spec: dict, request: dict, number: int) -> dict:
        bc_meta = bc["metadata"]
        bc_name = bc_meta["name"]
        labels = dict((request.get("metadata") or {}).get("labels") or {})
        labels.update(bc_meta.get("labels") or {})
        labels[DEPRECATED_BUILD_CONFIG_LABEL] = bc_name
        labels[BUILD_CONFIG_LABEL] = bc_name
        labels[START_POLICY_LABEL] = spec.get("runPolicy", "Serial")
        annotations = dict((request.get("metadata") or {}).get("annotations") or {})
        annotations[BUILD_NUMBER_ANNOTATION] = str(number)
        annotations[BUILD_CONFIG_LABEL] = bc_name
        build_spec = {
            key: copy.deepcopy(value)
            for key, value in spec.items()
            if key not in ("triggers", "runPolicy", "successfulBuildsHistoryLimit", "failedBuildsHistoryLimit")
        }
        build_spec.setdefault("serviceAccount", "builder")
        if not build_spec.get("serviceAccount"):
            build_spec["serviceAccount"] = "builder"
        if request.get("revision"):
            build_spec["revision"] = copy.deepcopy(request["revision"])
        triggered_by = copy.deepcopy(request.get("triggeredBy") or [])
        build_spec["triggeredBy"] = triggered_by or [{"message": "Manually triggered"}]
        return {
            "kind": "Build",
            "apiVersion": "build.openshift.io/v1",
            "metadata": {
                "name": build_name(bc_name, number),
                "namespace": bc_meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "build.openshift.io/v1",
                        "kind": "BuildConfig",
                        "name": bc_name,
                        "uid": bc_meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": build_spec,
            "status": {
                "phase": "New",
                "config": {"kind": "BuildConfig", "name": bc_name, "namespace": bc_meta["namespace"]},
                "output": {},
            },
        }

    # -- webhooks ------------------------------------------------------------------------------------
    def webhook(self, namespace: str, name: str, secret: str, hook_type: str, payload) -> dict:
        """POST buildconfigs/NAME/webhooks/SECRET/generic: start a build when SECRET is a Generic trigger's.

        The payload (optional) is OpenShift's generic one: {"git": {"uri", "ref", "commit", "author",
        "committer", "message"}, "env": [...]} (env only with allowEnv).  A ref other than the BuildConfig's
        starts nothing.  Other webhook types (github, gitlab, bitbucket) are not served.
        """
        if hook_type != "generic":
            raise bad_request(f'webhook type "{hook_type}" is not supported by osbs-local; use "generic"')
        bc = self.api.store.peek("buildconfigs", namespace, name)
        if bc is None:
            raise not_found(BY_PLURAL["buildconfigs"], name)
        trigger = next((t for t in bc["spec"].get("triggers") or []
                        if t.get("type") == "Generic" and self._webhook_secret_matches(namespace, t.get("generic") or {}, secret)), None)
        if trigger is None:
            raise ApiError(401, "Unauthorized", "the webhook secret is not one of the BuildConfig's Generic triggers")
        payload = payload if isinstance(payload, dict) else {}
        git = payload.get("git") or {}
        bc_ref = ((bc["spec"].get("source") or {}).get("git") or {}).get("ref") or ""
        ref = (git.get("ref") or "").removeprefix("refs/heads/")
        if ref and bc_ref and ref != bc_ref:
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "message": f"skipping build: branch {ref} is not the BuildConfig's {bc_ref}", "code": 200}
        revision = {"commit": git["commit"]} if git.get("commit") else {}
        for field in ("author", "committer", "message"):
            if git.get(field):
                revision[field] = git[field]
        request = {
            "kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name},
            "triggeredBy": [{"message": "Generic WebHook", "genericWebHook": {
                "secret": "<secret>", **({"revision": {"type": "Git", "git": revision}} if revision else {})}}],
        }
        if revision:
            request["revision"] = {"type": "Git", "git": revision}
        if (trigger.get("generic") or {}).get("allowEnv") and payload.get("env"):
            request["env"] = payload["env"]
        return self.instantiate(namespace, name, request)

    def _webhook_secret_matches(self, namespace: str, hook: dict, secret: str) -> bool:
        expected = hook.get("secret")
        reference = (hook.get("secretReference") or {}).get("name")
        if reference:
            stored = self.api.store.peek("secrets", namespace, reference)
            try:
                expected = base64.b64decode(((stored or {}).get("data") or {}).get("WebHookSecretKey", "")).decode()
            except (binascii.Error, UnicodeDecodeError):
                expected = None
        return bool(expected) and hmac.compare_digest(expected.encode(), secret.encode())

    # -- build pods ------------------------------------------------------------------------------
    _POD_PHASES = {"Pending": "Pending", "Running": "Running", "Complete": "Succeeded",
                   "Failed": "Failed", "Error": "Failed", "Cancelled": "Failed"}

    def build_pod(self, build: dict) -> Optional[dict]:
        """The `<build>-build` Pod view of a started build (None while New: OpenShift has no pod yet)."""
        status = build.get("status") or {}
        phase = status.get("phase", "New")
        if phase == "New":
            return None
        meta = build["metadata"]
        pod_phase = self._POD_PHASES.get(phase, "Unknown")
        terminated = pod_phase in ("Succeeded", "Failed")
        container_state = (
            {"terminated": {"exitCode": 0 if pod_phase == "Succeeded" else 1, "reason": status.get("reason") or pod_phase,
                            "startedAt": status.get("startTimestamp"), "finishedAt": status.get("completionTimestamp")}}
            if terminated else {"running": {"startedAt": status.get("startTimestamp")}} if phase == "Running"
            else {"waiting": {"reason": "PodInitializing"}})
        return {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": f"{meta['name']}-build", "namespace": meta["namespace"],
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod:{meta['uid']}")),
                "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp"),
                "labels": {"openshift.io/build.name": meta["name"]},
                "annotations": {"openshift.io/build.name": meta["name"]},
                "ownerReferences": [{"apiVersion": "build.openshift.io/v1", "kind": "Build", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True}],
            },
            "spec": {"containers": [{"name": "docker-build", "image": "osbs-local-builder"}],
                     "restartPolicy": "Never", "serviceAccountName": build.get("spec", {}).get("serviceAccount", "builder")},
            "status": {"phase": pod_phase, "startTime": status.get("startTimestamp"),
                       "containerStatuses": [{"name": "docker-build", "ready": phase == "Running", "restartCount": 0,
                                              "image": "osbs-local-builder", "imageID": "", "state": container_state}]},
        }

    def _build_of_pod(self, namespace: str, pod_name: str) -> Optional[dict]:
        if not pod_name.endswith("-build"):
            return None
        return self.api.store.peek("builds", namespace, pod_name[: -len("-build")])

    def get_pod(self, namespace: str, name: str) -> dict:
        build = self._build_of_pod(namespace, name)
        pod = self.build_pod(build) if build is not None else None
        if pod is None:
            raise not_found(BY_PLURAL["pods"], name)
        return pod

    def list_pods(self, namespace: Optional[str], predicate=None) -> dict:
        pods = [self.build_pod(build) for build, _ in self.api.store.scan("builds", namespace)]
        items = sorted((p for p in pods if p is not None and (predicate is None or predicate(p))),
                       key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        return {"kind": "PodList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.api.store.resource_version)}, "items": items}

    def pod_log_chunks(self, namespace: str, name: str, **options):
        self.get_pod(namespace, name)
        return self.log_chunks(namespace, name[: -len("-build")], **options)

    # -- builds/NAME/log -------------------------------------------------------------------------
    def log_path(self, namespace: str, name: str):
        return self.api.state_dir / "builds" / namespace / name / "build.log"

    def log_chunks(self, namespace: str, name: str, follow: bool = False, nowait: bool = False,
                   tail_lines: Optional[int] = None, limit_bytes: Optional[int] = None, previous: bool = False,
                   stopped=lambda: False):
        """Check the request, then return an iterator of log bytes (streaming until the build ends when follow)."""
        builds = BY_PLURAL["builds"]
        build = self.api.store.peek("builds", namespace, name)
        if build is None:
            raise not_found(builds, name)
        if previous:
            annotations = build["metadata"].get("annotations") or {}
            number = int(annotations.get(BUILD_NUMBER_ANNOTATION, "0") or 0)
            bc_name = annotations.get(BUILD_CONFIG_LABEL)
            if not bc_name or number <= 1:
                raise bad_request(f"build {name} has no previous build")
            name = build_name(bc_name, number - 1)
            build = self.api.store.peek("builds", namespace, name)
            if build is None:
                raise not_found(builds, name)
        phase = build.get("status", {}).get("phase", "New")
        path = self.log_path(namespace, name)
        if phase in ("Cancelled", "Error") and not path.exists():
            raise bad_request(f"build {name} is {phase.lower()}. No logs are available.")
        if nowait and phase in ("New", "Pending") and not path.exists():
            return iter(())
        return self._log_stream(namespace, name, path, follow, tail_lines, limit_bytes, stopped)

    def _log_stream(self, namespace, name, path, follow, tail_lines, limit_bytes, stopped):
        import time

        def phase() -> str:
            current = self.api.store.peek("builds", namespace, name)
            return (current or {}).get("status", {}).get("phase", "Error") if current else "Error"

        while not path.exists() and phase() in ("New", "Pending"):
            if stopped():
                return
            time.sleep(0.2)
        if not path.exists():
            return
        if not follow:
            data = path.read_bytes()
            if tail_lines is not None:
                data = b"".join(data.splitlines(keepends=True)[-tail_lines:]) if tail_lines > 0 else b""
            if limit_bytes is not None:
                data = data[:limit_bytes]
            yield data
            return
        sent = 0
        with open(path, "rb") as handle:
            if tail_lines is not None:
                lines = handle.read().splitlines(keepends=True)
                start = b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
                yield start
                sent += len(start)
            while True:
                done = phase() in TERMINAL_PHASES  # read once more after the build ends: nothing is lost
                chunk = handle.read(65536)
                if chunk:
                    if limit_bytes is not None:
                        chunk = chunk[: max(limit_bytes - sent, 0)]
                    sent += len(chunk)
                    yield chunk
                    if limit_bytes is not None and sent >= limit_bytes:
                        return
                    continue
                if done or stopped():
                    return
                time.sleep(0.2)
