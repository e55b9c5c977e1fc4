"""The generic store: REST semantics over storage (create, get, list, update, patch, delete, watch).

Kind-specific rules (defaults, validation, generation, immutable fields, what DELETE does) come from
the kind's Strategy (apiserver.strategy), found through apiserver.registration; this module names no
kind.  Every failure is an ApiError that the HTTP layer renders as a `kind: Status` body.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import random
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from . import patching, registration
from .authn import Tokens
from .errors import (ApiError, Cause, already_exists, bad_request, conflict, invalid, invalid_object, not_found,
                     status_details, success_status)
from .meta import GENERATE_CHARS, NAME_RE, annotation_size_causes, now
from .resource import Resource
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .storage import AlreadyExists, Conflict, Store, dumps
from .watch import Expired

log = logging.getLogger("osbs_local.api")


def _without_rv(obj: dict) -> dict:
    copied = dict(obj)
    copied["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return copied


class Api:
    """The generic store, and what every kind's code reads: storage, the state directory, the integrated registry."""

    def __init__(self, store: Store, state_dir: Path, registry_host: str = "", registry_ca: Optional[str] = None):
        self.store = store
        self.state_dir = Path(state_dir)
        self.registry_host = registry_host
        self.registry_ca = registry_ca
        # Credentials for the integrated registry, used when a build or import names it without a secret.
        self.registry_auths: Optional[dict] = None
        self.tokens: Optional[Tokens] = None  # who may call the API (the HTTP server's; authn.py)

    # -- helpers ---------------------------------------------------------------------------------
    def require_namespace(self, namespace: str) -> None:
        if self.store.peek("namespaces", "", namespace) is None:
            raise not_found(registration.resource(registration.NAMESPACES), namespace)

    def get_or_404(self, resource: Resource, namespace: str, name: str) -> dict:
        obj = self.store.get(resource.plural, namespace or "", name)
        if obj is None:
            raise not_found(resource, name)
        return obj

    def check_dry_run(self, dry_run: Optional[list[str]]) -> bool:
        if not dry_run:
            return False
        bad = [value for value in dry_run if value != "All"]
        if bad:
            raise invalid("DryRun", "", [Cause("dryRun", "FieldValueNotSupported", f'{bad[0]!r}: supported values: "All"')])
        return True

    # -- create ------------------------------------------------------------------------------------
    def create(self, resource: Resource, namespace: Optional[str], body: Any, dry_run=None) -> dict:
        dry = self.check_dry_run(dry_run)
        obj = self._normalise_body(resource, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choice(GENERATE_CHARS) for _ in range(5))
            else:
                raise invalid_object(resource, "", [Cause("metadata.name", "FieldValueRequired", "name or generateName is required")])
        self._validate_name(resource, meta["name"])
        with self.store.lock:
            if resource.namespaced:
                self.require_namespace(namespace)
            if self.store.peek(resource.plural, namespace or "", meta["name"]) is not None:
                raise already_exists(resource, meta["name"])
            return self.create_prepared(resource, obj, dry)

    def create_prepared(self, resource: Resource, obj: dict, dry: bool) -> dict:
        """Stamp server metadata, run the kind's rules and store (unless dry)."""
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(server_owned, None)
        strategy = registration.strategy(resource.plural)
        if strategy.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategy.prepare_create(self, obj)
        causes = annotation_size_causes(meta) + strategy.validate(self, obj, None)
        if causes:
            raise invalid_object(resource, meta["name"], causes)
        strategy.admit(self, resource, obj, None, "")
        if dry:
            return obj
        try:
            return self.store.create(resource.plural, obj)
        except AlreadyExists:
            raise already_exists(resource, meta["name"]) from None

    def _normalise_body(self, resource: Resource, namespace: Optional[str], body: Any) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON or YAML object")
        obj = copy.deepcopy(body)
        api_version = obj.get("apiVersion")
        if api_version and api_version != resource.group_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({resource.group_version})"
            )
        kind = obj.get("kind")
        if kind and kind != resource.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})")
        obj["kind"] = resource.kind
        obj["apiVersion"] = resource.group_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _validate_name(self, resource: Resource, name: str) -> None:
        if resource.path_segment_names:
            # apimachinery path.IsValidPathSegmentName
            problem = ("may not be '.' or '..'" if name in (".", "..") else
                       "may not contain '/'" if "/" in name else "may not contain '%'" if "%" in name else None)
            if problem:
                raise invalid_object(resource, name, [Cause("metadata.name", "FieldValueInvalid", f"Invalid value: {name!r}: {problem}")])
            return
        if len(name) > 253 or not NAME_RE.match(name):
            raise invalid_object(
                resource,
                name,
                [
                    Cause(
                        "metadata.name",
                        "FieldValueInvalid",
                        f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case"
                        " alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                    )
                ],
            )

    # -- read --------------------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: Optional[str], name: str) -> dict:
        return self.get_or_404(resource, namespace, name)

    def selector_predicate(self, resource: Resource, label_selector: Optional[str], field_selector: Optional[str]):
        try:
            labels = parse_label_selector(label_selector)
            fields = parse_field_selector(field_selector, resource.field_selectors())
        except SelectorError as exc:
            raise bad_request(str(exc)) from None

        def matches(obj: dict) -> bool:
            if labels is not None and not labels(obj["metadata"].get("labels")):
                return False
            return fields is None or fields(obj)

        if labels is None and fields is None:
            return None
        matches.label_equalities = labels.equalities if labels is not None else []
        return matches

    def list_json(
        self,
        resource: Resource,
        namespace: Optional[str],
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        limit: Optional[int] = None,
        continue_token: Optional[str] = None,
    ) -> str:
        """The List answer as JSON text, assembled from the stored JSON of each item."""
        predicate = self.selector_predicate(resource, label_selector, field_selector)
        with self.store.lock:
            list_rv = self.store.resource_version
            if predicate is not None and predicate.label_equalities:
                pairs = self.store.scan_labelled(resource.plural, namespace, predicate.label_equalities)
            else:
                pairs = list(self.store.scan(resource.plural, namespace))
        selected = [(obj, text) for obj, text in pairs if predicate is None or predicate(obj)]
        selected.sort(key=lambda pair: (pair[0]["metadata"].get("namespace", ""), pair[0]["metadata"]["name"]))
        list_meta: dict = {"resourceVersion": str(list_rv)}
        if continue_token:
            try:
                start = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_key = (start["ns"], start["name"])
            except (ValueError, KeyError, binascii.Error):
                raise bad_request("invalid continue token") from None
            selected = [
                pair for pair in selected
                if (pair[0]["metadata"].get("namespace", ""), pair[0]["metadata"]["name"]) > start_key
            ]
        if limit and limit > 0 and len(selected) > limit:
            remaining = len(selected) - limit
            selected = selected[:limit]
            last = selected[-1][0]["metadata"]
            token = {"ns": last.get("namespace", ""), "name": last["name"]}
            list_meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            list_meta["remainingItemCount"] = remaining
        head = dumps({"kind": f"{resource.kind}List", "apiVersion": resource.group_version, "metadata": list_meta})
        return head[:-1] + ',"items":[' + ",".join(text for _, text in selected) + "]}"

    def list(self, resource: Resource, namespace: Optional[str], **kwargs) -> dict:
        return json.loads(self.list_json(resource, namespace, **kwargs))

    # -- update / patch ------------------------------------------------------------------------------
    def update(
        self, resource: Resource, namespace: Optional[str], name: str, body: Any, subresource: str = "", dry_run=None
    ) -> dict:
        dry = self.check_dry_run(dry_run)
        obj = self._normalise_body(resource, namespace, body)
        body_name = obj["metadata"].get("name")
        if body_name and body_name != name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        obj["metadata"]["name"] = name
        with self.store.lock:
            old = self.get_or_404(resource, namespace, name)
            strategy = registration.strategy(resource.plural)
            body_rv = obj["metadata"].get("resourceVersion")
            if not body_rv and strategy.require_rv_on_update:
                raise invalid_object(
                    resource, name,
                    [Cause("metadata.resourceVersion", "FieldValueInvalid", "0x0: must be specified for an update")],
                )
            if body_rv and body_rv != old["metadata"].get("resourceVersion"):
                raise conflict(resource, name)
            return self.update_prepared(resource, old, obj, subresource, dry)

    def update_prepared(self, resource: Resource, old: dict, new: dict, subresource: str, dry: bool) -> dict:
        """Apply the kind's update rules to new (a full object) and store it if it differs from old."""
        strategy = registration.strategy(resource.plural)
        meta, old_meta = new["metadata"], old["metadata"]
        for immutable in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if immutable in old_meta:
                meta[immutable] = old_meta[immutable]
            else:
                meta.pop(immutable, None)
        meta.pop("managedFields", None)
        if strategy.has_generation:
            meta["generation"] = old_meta.get("generation", 1)
        else:
            meta.pop("generation", None)
        strategy.prepare_update(self, old, new, subresource)
        causes = annotation_size_causes(meta) + strategy.validate(self, new, old, subresource)
        if causes:
            raise invalid_object(resource, meta["name"], causes)
        strategy.admit(self, resource, new, old, subresource)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if _without_rv(new) == _without_rv(old) or dry:
            return new  # a no-op update writes nothing and keeps the resourceVersion, like the apiserver
        try:
            return self.store.update(resource.plural, new, expected_rv=old_meta.get("resourceVersion"))
        except Conflict:
            raise conflict(resource, meta["name"]) from None

    def patch(
        self,
        resource: Resource,
        namespace: Optional[str],
        name: str,
        content_type: str,
        body: Any,
        subresource: str = "",
        dry_run=None,
    ) -> tuple[dict, bool]:
        """Returns (object, created): an apply patch creates a missing object."""
        dry = self.check_dry_run(dry_run)
        with self.store.lock:
            old = self.store.get(resource.plural, namespace or "", name)
            if old is None:
                if content_type == patching.APPLY_PATCH and not subresource:
                    return self.create(resource, namespace, body, dry_run), True
                raise not_found(resource, name)
            try:
                patched = patching.apply_patch(content_type, old, body, resource.plural)
            except patching.PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from None
            patched_meta = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
            patched_rv = patched_meta.get("resourceVersion")
            if patched_rv and patched_rv != old["metadata"].get("resourceVersion"):
                raise conflict(resource, name)
            if patched_meta.get("name", name) != name:
                raise bad_request(f"the name of the object ({patched_meta.get('name')}) does not match the name on the URL ({name})")
            obj = self._normalise_body(resource, namespace, patched)
            return self.update_prepared(resource, old, obj, subresource, dry), False

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, resource: Resource, namespace: Optional[str], name: str, options: Optional[dict] = None, dry_run=None):
        options = options or {}
        dry = self.check_dry_run(dry_run or options.get("dryRun"))
        with self.store.lock:
            old = self.get_or_404(resource, namespace, name)
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": Precondition failed: '
                    f'UID in precondition: {preconditions["uid"]}, UID in object meta: {old["metadata"]["uid"]}',
                    status_details(resource, name),
                )
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            return registration.strategy(resource.plural).delete(self, resource, old, options, dry)

    def delete_stored(self, resource: Resource, old: dict, options: dict, dry: bool) -> dict:
        """Delete a stored object and, unless orphaned, the objects it controlled."""
        meta = old["metadata"]
        if not dry:
            self.store.delete(resource.plural, meta.get("namespace") or "", meta["name"])
            if options.get("propagationPolicy") != "Orphan":
                self._collect_dependents(meta.get("namespace") or "", meta["uid"])
        return success_status(resource, meta["name"], meta["uid"])

    def delete_collection(self, resource, namespace, label_selector=None, field_selector=None, options=None, dry_run=None):
        listed = self.list(resource, namespace, label_selector=label_selector, field_selector=field_selector)
        for item in listed["items"]:
            try:
                self.delete(resource, item["metadata"].get("namespace"), item["metadata"]["name"], options, dry_run)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listed

    def delete_namespace_contents(self, namespace: str) -> None:
        for resource in self._stored_namespaced():
            for obj, _ in list(self.store.scan(resource.plural, namespace)):
                self.store.delete(resource.plural, namespace, obj["metadata"]["name"])

    @staticmethod
    def _stored_namespaced() -> list[Resource]:
        return [kind.resource for kind in registration.kinds() if kind.resource.namespaced and kind.resource.stored]

    def _collect_dependents(self, namespace: str, owner_uid: str) -> None:
        """Background garbage collection done at once: delete objects this object controlled."""
        for resource in self._stored_namespaced():
            plural = resource.plural
            for obj, _ in list(self.store.scan(plural, namespace)):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    self.store.delete(plural, namespace, obj["metadata"]["name"])
                    self._collect_dependents(namespace, obj["metadata"]["uid"])

    # -- watch -------------------------------------------------------------------------------------
    def watch(
        self,
        resource: Resource,
        namespace: Optional[str],
        resource_version: Optional[str],
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        timeout: float = 1800.0,
        send_bookmarks: bool = False,
        stopped: Callable[[], bool] = lambda: False,
    ) -> Iterator[str]:
        """Check the request, then return an iterator of watch event lines (JSON, no newline).

        Errors in the request raise here, before the caller sends its 200 and starts streaming.
        """
        predicate = self.selector_predicate(resource, label_selector, field_selector)
        if resource_version not in (None, "", "0"):
            try:
                int(resource_version)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {resource_version!r}") from None
        return self._watch_lines(resource, namespace, resource_version, predicate, timeout, send_bookmarks, stopped)

    def _watch_lines(self, resource, namespace, resource_version, predicate, timeout, send_bookmarks, stopped):
        events = self.store.events
        deadline = time.monotonic() + timeout
        next_bookmark = _next_bookmark(time.monotonic(), deadline) if send_bookmarks else None

        def matches(obj: Optional[dict]) -> bool:
            if obj is None:
                return False
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return predicate is None or predicate(obj)

        if resource_version in (None, "", "0"):
            with self.store.lock:
                last = self.store.resource_version
                initial = [text for obj, text in self.store.scan(resource.plural, namespace) if matches(obj)]
            for text in initial:
                yield '{"type":"ADDED","object":' + text + "}"
        else:
            last = int(resource_version)
        while True:
            try:
                batch = events.since(last, resource.plural)
            except Expired as expired:
                # cacher.go Watch: past authentication and the parsing of the version, an error is an ERROR event.
                yield dumps({"type": "ERROR", "object": ApiError(
                    410, "Expired", f"too old resource version: {last} ({expired.args[1]})").status()})
                return
            for event in batch:
                last = event.rv
                if event.resource != resource.plural:
                    continue
                now_matches = matches(event.obj)
                if event.type == "MODIFIED":
                    was_matching = matches(event.previous)
                    if now_matches and not was_matching:
                        kind = "ADDED"
                    elif was_matching and not now_matches:
                        kind = "DELETED"
                    elif now_matches:
                        kind = "MODIFIED"
                    else:
                        continue
                elif now_matches:
                    kind = event.type
                else:
                    continue
                yield '{"type":"' + kind + '","object":' + event.json + "}"
            if stopped() or events.closed:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if next_bookmark is not None and time.monotonic() >= next_bookmark:
                next_bookmark = _next_bookmark(time.monotonic(), deadline)
                yield dumps({"type": "BOOKMARK", "object": {
                    "kind": resource.kind, "apiVersion": resource.group_version,
                    "metadata": {"resourceVersion": str(last)}}})
            wait = min(remaining, 1.0)
            if next_bookmark is not None:
                wait = max(0.0, min(wait, next_bookmark - time.monotonic()))
            events.wait(last, wait)


BOOKMARK_SECONDS = 60.0  # cacher.go defaultBookmarkFrequency


def _next_bookmark(now: float, deadline: float) -> Optional[float]:
    """When a watch that asked for bookmarks gets its next one (cache_watcher.go nextBookmarkTime): about every
    minute, and 2 s before its deadline so the client resumes from a recent version; None when none is due."""
    due = min(now + BOOKMARK_SECONDS, deadline - 2.0)
    return due if due > now else None
