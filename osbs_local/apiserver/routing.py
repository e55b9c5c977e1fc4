"""Routing of /api and /apis requests: the path names a registered kind, the verb picks the kind's REST
handler when it registered one, else the generic store's.

    GET    .../PLURAL               list (or watch with ?watch=true)
    GET    .../PLURAL/NAME[/SUB]    get
    POST   .../PLURAL[/NAME/SUB]    create
    PUT    .../PLURAL/NAME[/SUB]    update
    PATCH  .../PLURAL/NAME[/SUB]    patch
    DELETE .../PLURAL[/NAME]        delete (deletecollection without a name)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import patching, printing, registration
from .api import Api
from .errors import ApiError, Cause, bad_request, invalid, method_not_allowed, not_found
from .registration import Kind
from .rest import Request, Response
from .storage import dumps

TRUE = ("true", "1", "True")
_NOT_FOUND = "the server could not find the requested resource"


@dataclass
class Incoming:
    """What routing needs of an HTTP request."""

    method: str
    path: str
    query: dict  # the last value of each parameter
    query_lists: dict  # every value of each parameter
    wants_table: bool
    content_type: str
    read_body: Callable[[], bytes]
    parse_body: Callable[[bytes, bool], Any]  # (raw, yaml_allowed) -> the body
    stopped: Callable[[], bool]
    count: Callable[[str, str], None]  # metrics: (verb, resource)


@dataclass
class Target:
    kind: Kind
    namespace: Optional[str]
    name: Optional[str]
    subresource: str
    extra: list[str]  # path segments after the subresource (a public handler's parameters)

    @property
    def counted(self) -> str:
        plural = self.kind.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural


def parse_resource_path(path: str, extra_allowed: bool = False) -> Target:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1":
        group, rest = parts[1], parts[3:]
    else:
        raise ApiError(404, "NotFound", _NOT_FOUND)
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or (len(rest) > 3 and not extra_allowed):
        raise ApiError(404, "NotFound", _NOT_FOUND)
    kind = registration.lookup(group, rest[0])
    if kind is None:
        raise ApiError(404, "NotFound", _NOT_FOUND)
    resource = kind.resource
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if namespace is not None and not resource.namespaced:
        raise ApiError(404, "NotFound", _NOT_FOUND)
    if sub and resource.subresource(sub) is None:
        raise ApiError(404, "NotFound", _NOT_FOUND)
    return Target(kind, namespace, name, sub, rest[3:])


def public_request(api: Api, incoming: Incoming) -> Optional[Response]:
    """The answer of a handler that takes no bearer token (a webhook), or None when the path names none."""
    try:
        target = parse_resource_path(incoming.path, extra_allowed=True)
    except ApiError:
        return None
    verb = {"POST": "create"}.get(incoming.method)
    public = target.kind.public_handlers.get((verb, target.subresource)) if target.name else None
    if public is None or len(public.parameters) != len(target.extra):
        return None
    incoming.count(verb, target.counted)
    body = incoming.parse_body(incoming.read_body(), False)
    return public.handle(Request(api, target.kind.resource, target.namespace, target.name, target.subresource,
                                 incoming.query, body, path_parameters=dict(zip(public.parameters, target.extra))))


def resource_request(api: Api, incoming: Incoming) -> Response:
    target = parse_resource_path(incoming.path)
    resource, namespace, name, sub = target.kind.resource, target.namespace, target.name, target.subresource
    if resource.namespaced and namespace is None and name is not None:
        raise not_found(resource, name)
    request = Request(api, resource, namespace, name, sub, incoming.query,
                      dry_run=incoming.query_lists.get("dryRun"), stopped=incoming.stopped)
    if incoming.method == "GET":
        response = _read(api, incoming, target, request)
    else:
        raw = incoming.read_body()
        handler = {"POST": _create, "PUT": _update, "PATCH": _patch, "DELETE": _delete}.get(incoming.method)
        if handler is None:
            raise ApiError(405, "MethodNotAllowed", f"{incoming.method} is not supported")
        if name is None and incoming.method not in ("POST", "DELETE"):
            raise ApiError(405, "MethodNotAllowed", f"{incoming.method} needs a resource name")
        response = handler(api, incoming, target, request, raw)
    if response.printable and incoming.wants_table:
        # kubectl get NAME asks for server-side printing: the object's Table row.
        return Response(response.code, printing.table(resource.plural, [response.body]))
    return response


def _read(api: Api, incoming: Incoming, target: Target, request: Request) -> Response:
    resource, sub = request.resource, request.subresource
    if request.name is None:
        if incoming.query.get("watch") in TRUE:
            incoming.count("watch", target.counted)
            return _watch(api, incoming, request)
        incoming.count("list", target.counted)
        return _list(api, incoming, target, request)
    incoming.count("get", target.counted)
    handler = target.kind.handlers.get(("get", sub))
    if handler is not None:
        return handler(request)
    if "get" not in resource.verbs:
        raise method_not_allowed("get", resource)
    if sub == "":
        return Response(200, api.get(resource, request.namespace, request.name), printable=True)
    if sub == "status":
        return Response(200, api.get(resource, request.namespace, request.name))
    raise method_not_allowed("get", resource)


def _create(api: Api, incoming: Incoming, target: Target, request: Request, raw: bytes) -> Response:
    resource, sub = request.resource, request.subresource
    incoming.count("create", target.counted)
    request.body = incoming.parse_body(raw, False)
    handler = target.kind.handlers.get(("create", sub))
    if sub:
        if handler is None:
            raise method_not_allowed("create", resource)
        return handler(request)
    if request.name is not None:
        raise ApiError(405, "MethodNotAllowed", "POST is not allowed on a named resource")
    if handler is not None:
        return handler(request)
    if "create" not in resource.verbs:
        raise method_not_allowed("create", resource)
    return Response(201, api.create(resource, request.namespace, request.body, request.dry_run))


def _update(api: Api, incoming: Incoming, target: Target, request: Request, raw: bytes) -> Response:
    resource, sub = request.resource, request.subresource
    incoming.count("update", target.counted)
    request.body = incoming.parse_body(raw, False)
    handler = target.kind.handlers.get(("update", sub))
    if handler is not None:
        return handler(request)
    subresource = resource.subresource(sub)
    if "update" not in resource.verbs or sub not in ("", "status", "details") or (
            subresource is not None and "update" not in subresource.verbs):
        raise method_not_allowed("update", resource)
    return Response(200, api.update(resource, request.namespace, request.name, request.body, sub, request.dry_run))


def _patch(api: Api, incoming: Incoming, target: Target, request: Request, raw: bytes) -> Response:
    resource, sub = request.resource, request.subresource
    incoming.count("patch", target.counted)
    content_type = incoming.content_type
    if content_type not in patching.SUPPORTED:
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(patching.SUPPORTED)}")
    request.content_type = content_type
    request.body = incoming.parse_body(raw, content_type == patching.APPLY_PATCH)
    handler = target.kind.handlers.get(("patch", sub))
    if handler is not None:
        return handler(request)
    if "patch" not in resource.verbs or sub not in ("", "status"):
        raise method_not_allowed("patch", resource)
    obj, created = api.patch(resource, request.namespace, request.name, content_type, request.body, sub, request.dry_run)
    return Response(201 if created else 200, obj)


def _delete(api: Api, incoming: Incoming, target: Target, request: Request, raw: bytes) -> Response:
    resource, sub, query = request.resource, request.subresource, request.query
    options = incoming.parse_body(raw, False) if raw.strip() else {}
    if request.name is None:
        incoming.count("deletecollection", target.counted)
        if "deletecollection" not in resource.verbs:
            raise method_not_allowed("deletecollection", resource)
        return Response(200, api.delete_collection(resource, request.namespace, query.get("labelSelector"),
                                                   query.get("fieldSelector"), options, request.dry_run))
    incoming.count("delete", target.counted)
    if query.get("propagationPolicy"):
        options.setdefault("propagationPolicy", query["propagationPolicy"])
    request.options = options
    handler = target.kind.handlers.get(("delete", sub))
    if handler is not None:
        return handler(request)
    if "delete" not in resource.verbs or sub:
        raise method_not_allowed("delete", resource)
    return Response(200, api.delete(resource, request.namespace, request.name, options, request.dry_run))


# -- list / watch ------------------------------------------------------------------------------------
def _list(api: Api, incoming: Incoming, target: Target, request: Request) -> Response:
    resource, namespace, query = request.resource, request.namespace, request.query
    if "list" not in resource.verbs:
        raise method_not_allowed("list", resource)
    if namespace is not None:
        api.require_namespace(namespace)
    handler = target.kind.handlers.get(("list", ""))
    if handler is not None:
        request.predicate = api.selector_predicate(resource, query.get("labelSelector"), query.get("fieldSelector"))
        listed = handler(request)
    else:
        _check_list_versions(api, query)
        limit = query.get("limit")
        try:
            limit_value = int(limit) if limit else None
        except ValueError:
            raise bad_request(f"invalid limit {limit!r}") from None
        text = api.list_json(resource, namespace, query.get("labelSelector"), query.get("fieldSelector"),
                             limit_value, query.get("continue") or None)
        if not incoming.wants_table:
            return Response(200, text)
        listed = Response(200, json.loads(text))
    if incoming.wants_table:
        items = listed.body
        return Response(200, printing.table(resource.plural, items["items"], items["metadata"]))
    return listed


def _check_list_versions(api: Api, query: dict) -> None:
    """resourceVersion / resourceVersionMatch / continue rules of a list (apimachinery validation)."""
    rv, match, token = query.get("resourceVersion"), query.get("resourceVersionMatch"), query.get("continue")
    if token and rv not in (None, "", "0"):
        raise bad_request("specifying resource version is not allowed when using continue")
    if match:
        causes = []
        if match not in ("Exact", "NotOlderThan"):
            causes.append(Cause("resourceVersionMatch", "FieldValueNotSupported", f'"{match}": supported values: "Exact", "NotOlderThan"'))
        elif not rv:
            causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        elif token:
            causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", "resourceVersionMatch is forbidden when continue is provided"))
        elif match == "Exact" and rv == "0":
            causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
        if causes:
            raise invalid("ListOptions.meta.k8s.io", "", causes, "meta.k8s.io", "ListOptions")
    exact = match == "Exact" or (query.get("limit") and match is None and rv not in (None, "", "0"))
    if exact and rv and rv != str(api.store.resource_version):
        # Only the current state is kept: an exact read of an older version is gone.
        raise ApiError(410, "Expired", f"too old resource version: {rv} ({api.store.resource_version})")


def _watch(api: Api, incoming: Incoming, request: Request) -> Response:
    resource, query = request.resource, request.query
    if "watch" not in resource.verbs:
        raise method_not_allowed("watch", resource)
    try:
        timeout = float(query.get("timeoutSeconds") or 1800)
    except ValueError:
        raise bad_request("invalid timeoutSeconds") from None
    lines = api.watch(
        resource, request.namespace, query.get("resourceVersion"), query.get("labelSelector"),
        query.get("fieldSelector"), timeout, query.get("allowWatchBookmarks") in TRUE, stopped=request.stopped,
    )
    as_table = incoming.wants_table
    chunks = ((_event_as_table(resource.plural, line) if as_table else line).encode() + b"\n" for line in lines)
    return Response(200, stream=chunks, content_type="application/json")


def _event_as_table(plural: str, line: str) -> str:
    """A watch event whose object is a one-row Table (ERROR and BOOKMARK events stay as they are)."""
    event = json.loads(line)
    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
        event["object"] = printing.table(plural, [event["object"]],
                                         {"resourceVersion": event["object"]["metadata"].get("resourceVersion")})
    return dumps(event)
