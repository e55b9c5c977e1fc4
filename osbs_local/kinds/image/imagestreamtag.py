"""ImageStreamTag: `stream:tag`, a tag of an ImageStream read and written on its own."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional

from ...apiserver import patching, registration
from ...apiserver.errors import already_exists, bad_request, conflict, not_found, success_status
from ...apiserver.printing import NAME, age
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.rest import Request, Response
from .image import IMAGE_GROUP_VERSION
from .imagestream import find_tag, split_tag_name

if TYPE_CHECKING:
    from ...apiserver.api import Api


def _tag_object(api: Api, stream: dict, tag: str, with_image: bool = True) -> Optional[dict]:
    status_tag = find_tag((stream.get("status") or {}).get("tags"), "tag", tag)
    if not status_tag or not status_tag.get("items"):
        return None
    current = status_tag["items"][0]
    spec_tag = find_tag((stream.get("spec") or {}).get("tags"), "name", tag)
    meta = stream["metadata"]
    image = api.store.get("images", "", current["image"])
    if image is None or not with_image:
        image = {"metadata": {"name": current["image"]}, "dockerImageReference": current["dockerImageReference"]}
    else:
        image["dockerImageReference"] = current["dockerImageReference"]
        image.pop("dockerImageManifest", None)
    tag_object = {
        "kind": "ImageStreamTag",
        "apiVersion": IMAGE_GROUP_VERSION,
        "metadata": {
            "name": f"{meta['name']}:{tag}",
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": current.get("created"),
        },
        "tag": copy.deepcopy(spec_tag),
        "generation": current.get("generation"),
        "lookupPolicy": copy.deepcopy(stream["spec"].get("lookupPolicy", {"local": False})),
        "image": image,
    }
    if spec_tag and spec_tag.get("annotations"):
        tag_object["metadata"]["annotations"] = copy.deepcopy(spec_tag["annotations"])
    if status_tag.get("conditions"):
        tag_object["conditions"] = copy.deepcopy(status_tag["conditions"])
    return tag_object


def get_tag(api: Api, namespace: str, name: str) -> dict:
    stream_name, tag = split_tag_name(name)
    resource = registration.resource("imagestreamtags")
    stream = api.store.peek("imagestreams", namespace, stream_name)
    if stream is None:
        raise not_found(resource, name)
    tag_object = _tag_object(api, stream, tag)
    if tag_object is None:
        raise not_found(resource, name)
    return tag_object


def list_tags(api: Api, namespace: Optional[str], predicate=None) -> dict:
    items = []
    for stream, _ in sorted(api.store.scan("imagestreams", namespace),
                            key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"])):
        for status_tag in (stream.get("status") or {}).get("tags") or []:
            tag_object = _tag_object(api, stream, status_tag["tag"], with_image=False)
            if tag_object is not None and (predicate is None or predicate(tag_object)):
                items.append(tag_object)
    return {
        "kind": "ImageStreamTagList",
        "apiVersion": IMAGE_GROUP_VERSION,
        "metadata": {"resourceVersion": str(api.store.resource_version)},
        "items": items,
    }


def put_tag(api: Api, namespace: str, name: str, body: dict, create: bool, dry_run=None) -> dict:
    """Create (409 if the spec tag exists) or update the spec tag an ImageStreamTag names."""
    dry = api.check_dry_run(dry_run)
    if not isinstance(body, dict):
        raise bad_request("the request body must be an ImageStreamTag object")
    if create:
        name = (body.get("metadata") or {}).get("name") or ""
    stream_name, tag = split_tag_name(name)
    resource, streams = registration.resource("imagestreamtags"), registration.resource("imagestreams")
    wanted = copy.deepcopy(body.get("tag") or {})
    wanted["name"] = tag
    with api.store.lock:
        api.require_namespace(namespace)
        stream = api.store.get("imagestreams", namespace, stream_name)
        if stream is None:
            if not create:
                raise not_found(resource, name)
            stream = {"kind": "ImageStream", "apiVersion": IMAGE_GROUP_VERSION,
                      "metadata": {"name": stream_name, "namespace": namespace}, "spec": {"tags": [wanted]}}
            created = api.create_prepared(streams, stream, dry)
            return _tag_view(api, created, tag)
        existing = find_tag(stream["spec"].get("tags"), "name", tag)
        if create and (existing is not None or _tag_object(api, stream, tag) is not None):
            raise already_exists(resource, name)
        if not create and existing is None and _tag_object(api, stream, tag) is None:
            raise not_found(resource, name)
        body_rv = (body.get("metadata") or {}).get("resourceVersion")
        if not create and body_rv and body_rv != stream["metadata"]["resourceVersion"]:
            raise conflict(resource, name)
        old = copy.deepcopy(stream)
        tags = [t for t in stream["spec"].get("tags") or [] if t.get("name") != tag]
        tags.append(wanted)
        stream["spec"]["tags"] = tags
        updated = api.update_prepared(streams, old, stream, "", dry)
        return _tag_view(api, updated, tag)


def _tag_view(api: Api, stream: dict, tag: str) -> dict:
    tag_object = _tag_object(api, stream, tag)
    if tag_object is not None:
        return tag_object
    meta = stream["metadata"]
    return {
        "kind": "ImageStreamTag", "apiVersion": IMAGE_GROUP_VERSION,
        "metadata": {"name": f"{meta['name']}:{tag}", "namespace": meta["namespace"], "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp")},
        "tag": find_tag(stream["spec"].get("tags"), "name", tag),
        "generation": meta.get("generation"),
        "lookupPolicy": stream["spec"].get("lookupPolicy", {"local": False}),
        "image": {"metadata": {"name": ""}},
    }


def delete_tag(api: Api, namespace: str, name: str, dry_run=None) -> dict:
    dry = api.check_dry_run(dry_run)
    stream_name, tag = split_tag_name(name)
    resource, streams = registration.resource("imagestreamtags"), registration.resource("imagestreams")
    with api.store.lock:
        stream = api.store.get("imagestreams", namespace, stream_name)
        if stream is None:
            raise not_found(resource, name)
        old = copy.deepcopy(stream)
        spec_tags = stream["spec"].get("tags") or []
        status_tags = (stream.get("status") or {}).get("tags") or []
        if find_tag(spec_tags, "name", tag) is None and find_tag(status_tags, "tag", tag) is None:
            raise not_found(resource, name)
        stream["spec"]["tags"] = [t for t in spec_tags if t.get("name") != tag]
        stream["status"]["tags"] = [t for t in status_tags if t.get("tag") != tag]
        api.update_prepared(streams, old, stream, "import", dry)
        return success_status(resource, name, old["metadata"]["uid"])


def _get(request: Request) -> Response:
    return Response(200, get_tag(request.api, request.namespace, request.name), printable=True)


def _list(request: Request) -> Response:
    return Response(200, list_tags(request.api, request.namespace, request.predicate))


def _create(request: Request) -> Response:
    return Response(201, put_tag(request.api, request.namespace, "", request.body, create=True, dry_run=request.dry_run))


def _update(request: Request) -> Response:
    return Response(200, put_tag(request.api, request.namespace, request.name, request.body, create=False,
                                 dry_run=request.dry_run))


def _patch(request: Request) -> Response:
    current = get_tag(request.api, request.namespace, request.name)
    patched = patching.apply_patch(request.content_type, current, request.body, request.resource.plural)
    return Response(200, put_tag(request.api, request.namespace, request.name, patched, create=False,
                                 dry_run=request.dry_run))


def _delete(request: Request) -> Response:
    return Response(200, delete_tag(request.api, request.namespace, request.name, request.dry_run))


KIND = Kind(
    Resource("image.openshift.io", "imagestreamtags", "imagestreamtag", "ImageStreamTag", True,
             verbs=("create", "delete", "get", "list", "patch", "update"), short_names=("istag",), stored=False),
    handlers={("get", ""): _get, ("list", ""): _list, ("create", ""): _create, ("update", ""): _update,
              ("patch", ""): _patch, ("delete", ""): _delete},
    columns=[NAME, ("Image Reference", "string", "The tag's image, by digest.", lambda o: (o.get("image") or {}).get("dockerImageReference", ""), 0),
             ("Updated", "string", "Since the tag changed.", age, 0)],
)
