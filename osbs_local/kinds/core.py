"""The core (v1) kinds osbs-local stores: namespaces, configmaps, events and secrets (ServiceAccounts: serviceaccount.py).

Pods are served too, as views of builds: osbs_local/kinds/build/pod.py.
"""

from __future__ import annotations

import base64
import binascii
import copy

from ..apiserver.errors import Cause
from ..apiserver.meta import now
from ..apiserver.printing import AGE, NAME, human_duration_since
from ..apiserver.registration import Kind
from ..apiserver.resource import Resource, field_path
from ..apiserver.rest import Request, Response
from ..apiserver.strategy import Strategy
from .serviceaccount import ensure_service_accounts


class NamespaceStrategy(Strategy):
    def prepare_create(self, api, obj):
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]

    def prepare_update(self, api, old, new, subresource):
        new["status"] = copy.deepcopy(old.get("status", {"phase": "Active"}))
        new["spec"] = copy.deepcopy(old.get("spec", {}))
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]

    def delete(self, api, resource, old, options, dry):
        """A deleted namespace answers Terminating, and its contents go with it."""
        terminating = copy.deepcopy(old)
        terminating["status"] = {"phase": "Terminating"}
        terminating["metadata"]["deletionTimestamp"] = now()
        if not dry:
            name = old["metadata"]["name"]
            api.delete_namespace_contents(name)
            api.store.delete(resource.plural, "", name)
        return terminating


class SecretStrategy(Strategy):
    _REQUIRED_KEYS = {
        "kubernetes.io/dockercfg": ".dockercfg",
        "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    }

    def _fold_string_data(self, obj: dict) -> None:
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.get("data") or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def prepare_create(self, api, obj):
        self._fold_string_data(obj)
        obj.setdefault("type", "Opaque")

    def prepare_update(self, api, old, new, subresource):
        self._fold_string_data(new)
        new.setdefault("type", old.get("type", "Opaque"))

    def validate(self, api, obj, old, subresource=""):
        causes = []
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(Cause("type", "FieldValueInvalid", "field is immutable"))
        data = obj.get("data") or {}
        for key, value in data.items():
            try:
                base64.b64decode(value or "", validate=True)
            except (binascii.Error, TypeError):
                causes.append(Cause(f"data[{key}]", "FieldValueInvalid", "not valid base64"))
        required = self._REQUIRED_KEYS.get(obj.get("type", ""))
        if required and required not in data:
            causes.append(Cause(f"data[{required}]", "FieldValueRequired", "Required value"))
        return causes



def _create_namespace(request: Request) -> Response:
    """A new namespace comes with its ServiceAccounts and their dockercfg secrets at once (OpenShift's controllers
    add them moments later; nothing of the flow creates namespaces, so only the wait differs)."""
    api = request.api
    created = api.create(request.resource, None, request.body, request.dry_run)
    if not api.check_dry_run(request.dry_run):
        ensure_service_accounts(api, created["metadata"]["name"])
    return Response(201, created)


NAMESPACES = Kind(
    Resource("", "namespaces", "namespace", "Namespace", False,
             verbs=("create", "delete", "get", "list", "patch", "update", "watch"), short_names=("ns",),
             extra_field_selectors={"status.phase": field_path("status", "phase")}),
    NamespaceStrategy(),
    handlers={("create", ""): _create_namespace},
    columns=[NAME, ("Status", "string", "The phase of the namespace.", lambda o: (o.get("status") or {}).get("phase", ""), 0), AGE],
)

CONFIGMAPS = Kind(
    Resource("", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
    Strategy(),
    columns=[NAME, ("Data", "integer", "Number of data entries.", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}), 0), AGE],
)

# Events: stored like any object; kubectl describe lists them for core kinds.
EVENTS = Kind(
    Resource(
        "", "events", "event", "Event", True, short_names=("ev",),
        extra_field_selectors={
            **{f"involvedObject.{key}": field_path("involvedObject", key)
               for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
            "reason": field_path("reason"), "type": field_path("type"), "source": field_path("source", "component"),
            "reportingComponent": field_path("reportingComponent"),
        },
    ),
    Strategy(),
    columns=[("Last Seen", "string", "Time since the event was last seen.", lambda o: human_duration_since(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")), 0),
             ("Type", "string", "Normal or Warning.", lambda o: o.get("type", ""), 0),
             ("Reason", "string", "Why the event happened.", lambda o: o.get("reason", ""), 0),
             ("Object", "string", "What the event is about.", lambda o: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/{(o.get('involvedObject') or {}).get('name', '')}", 0),
             ("Message", "string", "What happened.", lambda o: o.get("message", ""), 0)],
)

SECRETS = Kind(
    Resource("", "secrets", "secret", "Secret", True, extra_field_selectors={"type": field_path("type")}),
    SecretStrategy(),
    columns=[NAME, ("Type", "string", "The type of the secret.", lambda o: o.get("type", ""), 0),
             ("Data", "integer", "Number of data entries.", lambda o: len(o.get("data") or {}), 0), AGE],
)
