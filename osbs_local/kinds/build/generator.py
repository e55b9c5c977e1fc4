"""New Builds from a BuildConfig (instantiate) or from an old Build (clone), as OpenShift's build generator makes them."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional

from ...apiserver import registration
from ...apiserver.errors import ApiError, Cause, bad_request, invalid, not_found
from ...apiserver.meta import now
from ..image.imagestream import resolve_tag_pull_spec
from ..serviceaccount import BUILDER, docker_secret_for_image, service_account_secrets
from .spec import (BUILD_CONFIG_LABEL, BUILD_NUMBER_ANNOTATION, DEPRECATED_BUILD_CONFIG_LABEL, PAUSED_ANNOTATION,
                   START_POLICY_LABEL, build_name, image_change_from, label_value, strategy_body)

if TYPE_CHECKING:
    from ...apiserver.api import Api


def _merge_by_name(base: list, overrides: list) -> list:
    merged = [copy.deepcopy(item) for item in base or []]
    for item in overrides or []:
        index = next((n for n, old in enumerate(merged) if old.get("name") == item.get("name")), None)
        if index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = copy.deepcopy(item)
    return merged


def instantiate(api: Api, namespace: str, name: str, request: dict, dry_run=None) -> dict:
    """POST buildconfigs/NAME/instantiate: the Build, created New (openshift-apiserver buildgenerator/generator.go Instantiate)."""
    dry = _check_build_request(api, request, dry_run)
    with api.store.lock:
        bc = api.store.get("buildconfigs", namespace, name)
        if bc is None:
            raise not_found(registration.resource("buildconfigs"), name)
        _refuse_paused(bc, "instantiate")
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
        _record_image_change_triggers(api, bc, request, triggered_by_image)
        builder_secrets = _service_account_secrets(api, namespace, spec)
        strategy = strategy_body(spec)
        if strategy is not None:
            _resolve_strategy_from(api, strategy, namespace)
            _set_pull_secret(strategy, builder_secrets)
            _apply_request_options(spec, strategy, request)
        number = last_version + 1
        bc["status"]["lastVersion"] = number
        return _create_numbered(api, bc, _new_build(api, bc, spec, request, number), dry)


def clone(api: Api, namespace: str, name: str, request: dict, dry_run=None) -> dict:
    """POST builds/NAME/clone: a new Build of the same BuildConfig with the old build's spec (201)."""
    dry = _check_build_request(api, request, dry_run)
    with api.store.lock:
        old_build = api.store.get("builds", namespace, name)
        if old_build is None:
            raise not_found(registration.resource("builds"), name)
        bc_name = ((old_build.get("status") or {}).get("config") or {}).get("name")
        bc = api.store.get("buildconfigs", namespace, bc_name) if bc_name else None
        if bc is None:
            raise bad_request(f"build {namespace}/{name} has no BuildConfig to number a clone with")
        _refuse_paused(bc, "clone")
        number = bc.get("status", {}).get("lastVersion", 0) + 1
        bc["status"]["lastVersion"] = number
        spec = copy.deepcopy(old_build["spec"])
        spec["runPolicy"] = bc["spec"].get("runPolicy", "Serial")
        strategy = strategy_body(spec)
        if strategy is not None:
            _apply_request_options(spec, strategy, request)
        build = _new_build(api, bc, spec, {**request, "revision": request.get("revision") or spec.get("revision")}, number)
        return _create_numbered(api, bc, build, dry)


def _check_build_request(api: Api, request, dry_run) -> bool:
    """Whether the request is a dry run; a 400 for a body that is not a BuildRequest."""
    dry = api.check_dry_run(dry_run)
    if not isinstance(request, dict):
        raise bad_request("the request body must be a BuildRequest object")
    return dry


def _refuse_paused(bc: dict, verb: str) -> None:
    if (bc["metadata"].get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
        meta = bc["metadata"]
        raise bad_request(f"can't {verb} from BuildConfig {meta['namespace']}/{meta['name']}: BuildConfig is paused")


def _create_numbered(api: Api, bc: dict, build: dict, dry: bool) -> dict:
    """Create `build`, and store `bc` with the lastVersion that numbered it (under the store lock, as one change)."""
    build["metadata"]["namespace"] = bc["metadata"]["namespace"]
    if dry:
        return api.create_prepared(registration.resource("builds"), build, dry=True)
    meta = bc["metadata"]
    api.update_prepared(registration.resource("buildconfigs"), api.store.get("buildconfigs", meta["namespace"], meta["name"]),
                        bc, "", False)
    return api.create_prepared(registration.resource("builds"), build, dry=False)


def _record_image_change_triggers(api: Api, bc: dict, request: dict, triggered_by_image: Optional[dict]) -> None:
    """Rebuild status.imageChangeTriggers; the firing trigger records the image (generator.go updateImageTriggers)."""
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
        # Only the trigger the request names in `from` fires; without `from` every trigger records the tag's
        # current image and nothing is refused (generator.go updateImageTriggers, findImageChangeTrigger).
        fires = triggered_by_image is not None and requested_from is not None and (
            requested_from.get("name") == source["name"]
            and (requested_from.get("namespace") or namespace) == source["namespace"]
        )
        if fires:
            image = triggered_by_image.get("name", "")
            if image and image == recorded.get("lastTriggeredImageID"):
                raise ApiError(
                    500, "InternalError",
                    # A plain Go error from the registry's Create: the apiserver answers it as InternalError.
                    f"Internal error occurred: build config {namespace}/{bc['metadata']['name']} has already instantiated a "
                    f"build for imageid {image}",
                )
            entry["lastTriggeredImageID"] = image
            entry["lastTriggerTime"] = now()
        else:
            entry["lastTriggeredImageID"] = resolve_tag_pull_spec(api, 
                source["namespace"], source["name"]) or entry["lastTriggeredImageID"]
        entries.append(entry)
    if entries or "imageChangeTriggers" in bc.get("status", {}):
        bc["status"]["imageChangeTriggers"] = entries


def _resolve_strategy_from(api: Api, strategy: dict, namespace: str) -> None:
    """The base is the ImageStreamTag's image as it is now, whatever triggeredByImage names.

    OpenShift's generator means to use the image its strategy trigger recorded, but
    getStrategyImageChangeTrigger compares an ObjectReference with an ImageStreamTagReference
    (reflect.DeepEqual of two types), which never matches: a tag that moved after the trigger fired
    gives a Build of the newer image, and triggeredByImage is only recorded on the trigger.
    """
    source = strategy.get("from")
    if not isinstance(source, dict):
        return
    if source.get("kind") == "ImageStreamTag":
        tag_namespace = source.get("namespace") or namespace
        pull_spec = resolve_tag_pull_spec(api, tag_namespace, source["name"])
        if pull_spec is None:
            raise invalid(
                "ImageStreamTag.image.openshift.io", source["name"],
                [Cause("from", "FieldValueInvalid", f"unable to find latest tagged image for {tag_namespace}/{source['name']}")],
                "image.openshift.io", "ImageStreamTag",
            )
        strategy["from"] = {"kind": "DockerImage", "name": pull_spec}


def _service_account_secrets(api: Api, namespace: str, spec: dict) -> list[dict]:
    """The secrets the build's ServiceAccount lists; its absence fails instantiate (generator.go fetchServiceAccountSecrets)."""
    service_account = spec.get("serviceAccount") or BUILDER
    secrets = service_account_secrets(api, namespace, service_account, "secrets")
    if secrets is None:
        raise ApiError(500, "InternalError",
                       f"Internal error occurred: error getting push/pull secrets for service account {namespace}/{service_account}:"
                       f' serviceaccounts "{service_account}" not found')
    return secrets


def _set_pull_secret(strategy: dict, builder_secrets: list[dict]) -> None:
    """A strategy without a pullSecret gets the first ServiceAccount secret that fits its resolved base image,
    and none when no secret fits (generator.go setBaseImageAndPullSecretForBuildStrategy, resolveImageSecret)."""
    source = strategy.get("from")
    if strategy.get("pullSecret") is not None or not isinstance(source, dict) or not builder_secrets:
        return
    found = docker_secret_for_image(builder_secrets, source.get("name") or "")
    if found:
        strategy["pullSecret"] = {"name": found}


def _apply_request_options(spec: dict, strategy: dict, request: dict) -> None:
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


def _new_build(api: Api, bc: dict, spec: dict, request: dict, number: int) -> dict:
    bc_meta = bc["metadata"]
    bc_name = bc_meta["name"]
    labels = dict((request.get("metadata") or {}).get("labels") or {})
    labels.update(bc_meta.get("labels") or {})
    labels[DEPRECATED_BUILD_CONFIG_LABEL] = label_value(bc_name)
    labels[BUILD_CONFIG_LABEL] = label_value(bc_name)
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
    if triggered_by:  # the request's, unchanged (OAS generator.go generateBuildFromConfig)
        build_spec["triggeredBy"] = triggered_by
    else:
        build_spec.pop("triggeredBy", None)
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
