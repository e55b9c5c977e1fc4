"""BuildConfig (build.openshift.io/v1): its rules, instantiate, and the generic webhook."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING

from ...apiserver import registration
from ...apiserver.errors import ApiError, Cause, bad_request, not_found
from ...apiserver.printing import NAME
from ...apiserver.registration import Kind, PublicHandler
from ...apiserver.resource import Resource, Subresource
from ...apiserver.rest import Request, Response
from ...apiserver.strategy import Strategy
from . import admission, generator
from .spec import (DEPRECATED_TRIGGER_TYPES, RUN_POLICIES, TRIGGER_TYPES, WEBHOOK_FIELDS, common_spec_defaults, source_label,
                   strategy_from, strategy_type, validate_common_spec)

if TYPE_CHECKING:
    from ...apiserver.api import Api


class BuildConfigStrategy(Strategy):
    has_generation = True
    require_rv_on_update = True

    def _defaults(self, obj: dict) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("runPolicy", "Serial")
        common_spec_defaults(spec)
        spec["triggers"] = _known_triggers(spec)

    def prepare_create(self, api, obj):
        self._defaults(obj)
        # Defaulted on create only, so an update that removes a limit turns its pruning off
        # (OAS registry/buildconfig/strategy.go groupStrategy.PrepareForCreate).
        obj["spec"].setdefault("successfulBuildsHistoryLimit", 5)
        obj["spec"].setdefault("failedBuildsHistoryLimit", 5)
        obj["status"] = {"lastVersion": 0}

    def prepare_update(self, api, old, new, subresource):
        self._defaults(new)
        status = new.get("status") if isinstance(new.get("status"), dict) else {}
        old_status = old.get("status") or {}
        old_last = old_status.get("lastVersion", 0)
        if not isinstance(status.get("lastVersion"), int) or status["lastVersion"] < old_last:
            status["lastVersion"] = old_last  # a lower lastVersion is ignored (OAS registry/buildconfig/strategy.go PrepareForUpdate)
        new["status"] = status
        if new.get("spec") != old.get("spec") or status["lastVersion"] != old_last:
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1

    def validate(self, api, obj, old, subresource=""):
        spec = obj.get("spec") or {}
        causes = validate_common_spec(spec)
        if spec.get("runPolicy") not in RUN_POLICIES:
            causes.append(Cause("spec.runPolicy", "FieldValueNotSupported", f"{spec.get('runPolicy')!r}: supported values: {', '.join(RUN_POLICIES)}"))
        causes.extend(_trigger_causes(obj, obj["metadata"].get("namespace") or ""))
        for field in ("successfulBuildsHistoryLimit", "failedBuildsHistoryLimit"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < 0):
                causes.append(Cause(f"spec.{field}", "FieldValueInvalid", "must be a non-negative integer"))
        return causes

    def admit(self, api, resource, obj, old, subresource):
        admission.admit_write(api, resource, obj, old, subresource)


def _known_triggers(spec: dict) -> list:
    """The triggers as OpenShift stores them.

    In OpenShift's order: an ImageChange trigger gets `imageChange: {}` (v1 defaults.go
    SetDefaults_BuildTriggerPolicy); deprecated type names are renamed and a from-less ImageChange
    trigger goes when the strategy's `from` is not an ImageStreamTag (v1 conversion.go); unknown
    types are dropped, not refused (registry/buildconfig/strategy.go dropUnknownTriggers).
    """
    strategy_tag = (strategy_from(spec) or {}).get("kind") == "ImageStreamTag"
    kept = []
    for trigger in spec.get("triggers") or []:
        if not isinstance(trigger, dict):
            continue
        if trigger.get("type") == "ImageChange" and trigger.get("imageChange") is None:
            trigger["imageChange"] = {}
        trigger["type"] = DEPRECATED_TRIGGER_TYPES.get(trigger.get("type"), trigger.get("type"))
        if trigger["type"] not in TRIGGER_TYPES:
            continue
        image_change = trigger.get("imageChange")
        if trigger["type"] == "ImageChange" and not (isinstance(image_change, dict) and image_change.get("from")) and not strategy_tag:
            continue
        kept.append(trigger)
    return kept


def _trigger_causes(bc: dict, namespace: str) -> list[Cause]:
    """OAS validation.go validateTrigger for each trigger, and ValidateBuildConfig's refusal of two
    ImageChange triggers on one ImageStreamTag (a from-less trigger watches the strategy's `from`)."""
    causes, watched = [], set()
    spec = bc.get("spec") or {}
    for index, trigger in enumerate(spec.get("triggers") or []):
        kind = trigger["type"]
        if kind in WEBHOOK_FIELDS:
            hook = trigger.get(WEBHOOK_FIELDS[kind])
            if not isinstance(hook, dict):
                causes.append(Cause(f"spec.triggers[{index}].{WEBHOOK_FIELDS[kind]}", "FieldValueRequired", "Required value"))
            elif not hook.get("secret") and not (hook.get("secretReference") or {}).get("name"):
                causes.append(Cause(f"spec.triggers[{index}].{WEBHOOK_FIELDS[kind]}.secretReference", "FieldValueRequired", "must provide a secret or secretReference"))
        if kind != "ImageChange":
            continue
        image_change = trigger.get("imageChange")
        if not isinstance(image_change, dict):
            causes.append(Cause(f"spec.triggers[{index}].imageChange", "FieldValueRequired", "Required value"))
            continue
        source = image_change.get("from") or strategy_from(spec)
        if image_change.get("from"):
            trigger_kind = image_change["from"].get("kind")
            if trigger_kind != "ImageStreamTag":
                causes.append(Cause(f"spec.triggers[{index}].imageChange.from.kind", "FieldValueInvalid",
                                    f"{trigger_kind!r}: only an ImageStreamTag type of reference is allowed in an ImageChange trigger."))
            elif ":" not in (image_change["from"].get("name") or ""):
                causes.append(Cause(f"spec.triggers[{index}].from.name", "FieldValueInvalid",
                                    f"{image_change['from'].get('name')!r}: ImageStreamTag object references must be in the form <name>:<tag>"))
        key = "nil"
        if isinstance(source, dict) and source.get("kind") == "ImageStreamTag":
            key = f"{source.get('namespace') or namespace}/{source.get('name')}"
        if key in watched:
            causes.append(Cause("spec.triggers", "FieldValueInvalid", "multiple ImageChange triggers refer to the same image stream tag"))
        watched.add(key)
    return causes


# -- webhooks ------------------------------------------------------------------------------------
def webhook(api: Api, namespace: str, name: str, secret: str, hook_type: str, payload) -> dict:
    """POST buildconfigs/NAME/webhooks/SECRET/generic: start a build when SECRET is a Generic trigger's.

    The payload (optional) is OpenShift's generic one: {"git": {"uri", "ref", "commit", "author",
    "committer", "message"}, "env": [...]} (env only with allowEnv).  A ref other than the BuildConfig's
    starts nothing.  Other webhook types (github, gitlab, bitbucket) are not served.
    """
    if hook_type != "generic":
        raise bad_request(f'webhook type "{hook_type}" is not supported by osbs-local; use "generic"')
    bc = api.store.peek("buildconfigs", namespace, name)
    if bc is None:
        raise not_found(registration.resource("buildconfigs"), name)
    trigger = next((t for t in bc["spec"].get("triggers") or []
                    if t.get("type") == "Generic" and _webhook_secret_matches(api, namespace, t.get("generic") or {}, secret)), None)
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
    return generator.instantiate(api, namespace, name, request)


def _webhook_secret_matches(api: Api, namespace: str, hook: dict, secret: str) -> bool:
    expected = hook.get("secret")
    reference = (hook.get("secretReference") or {}).get("name")
    if reference:
        stored = api.store.peek("secrets", namespace, reference)
        try:
            expected = base64.b64decode(((stored or {}).get("data") or {}).get("WebHookSecretKey", "")).decode()
        except (binascii.Error, UnicodeDecodeError):
            expected = None
    return bool(expected) and hmac.compare_digest(expected.encode(), secret.encode())


MANUAL_TRIGGER_MESSAGE = "Manually triggered"  # buildapi.BuildTriggerCauseManualMsg


def _instantiate(request: Request) -> Response:
    admission.check_request(request.api, request.resource, request.namespace, request.name)
    body = request.body
    if isinstance(body, dict) and not body.get("triggeredBy"):
        # OAS buildconfiginstantiate/rest.go InstantiateREST.Create; clone and the triggers do not add it
        body = dict(body, triggeredBy=[{"message": MANUAL_TRIGGER_MESSAGE}])
    return Response(201, generator.instantiate(request.api, request.namespace, request.name, body, request.dry_run))


def _webhook(request: Request) -> Response:
    parameters = request.path_parameters
    return Response(200, webhook(request.api, request.namespace, request.name, parameters["secret"], parameters["type"],
                                 request.body))


KIND = Kind(
    Resource(
        "build.openshift.io", "buildconfigs", "buildconfig", "BuildConfig", True, short_names=("bc",), categories=("all",),
        subresources=(
            Subresource("instantiate", "BuildRequest", ("create",)),
            Subresource("webhooks", "Build", ("create",)),
        ),
    ),
    BuildConfigStrategy(),
    handlers={("create", "instantiate"): _instantiate},
    public_handlers={("create", "webhooks"): PublicHandler(("secret", "type"), _webhook)},
    columns=[NAME, ("Type", "string", "The build strategy.", strategy_type, 0),
             ("From", "string", "The source of the build.", source_label, 0),
             ("Latest", "string", "The number of the latest build.", lambda o: str((o.get("status") or {}).get("lastVersion", 0)), 0)],
    merge_keys={
        "spec.strategy.dockerStrategy.volumes": "name",
        "spec.strategy.sourceStrategy.volumes": "name",
    },
)
