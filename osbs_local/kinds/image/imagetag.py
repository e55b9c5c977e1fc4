"""ImageTag (GET, LIST): a stream's tag, its spec, status and image together."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional

from ...apiserver import registration
from ...apiserver.errors import not_found
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.rest import Request, Response
from .image import IMAGE_GROUP_VERSION
from .imagestream import find_tag, split_tag_name

if TYPE_CHECKING:
    from ...apiserver.api import Api


def _image_tag(api: Api, stream: dict, tag: str) -> Optional[dict]:
    spec_tag = find_tag((stream.get("spec") or {}).get("tags"), "name", tag)
    status_tag = find_tag((stream.get("status") or {}).get("tags"), "tag", tag)
    if spec_tag is None and status_tag is None:
        return None
    image = None
    if status_tag and status_tag.get("items"):
        current = status_tag["items"][0]
        image = api.store.get("images", "", current["image"]) or {"metadata": {"name": current["image"]}}
        image["dockerImageReference"] = current["dockerImageReference"]
        image.pop("dockerImageManifest", None)
    meta = stream["metadata"]
    return {"kind": "ImageTag", "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {"name": f"{meta['name']}:{tag}", "namespace": meta["namespace"], "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta.get("creationTimestamp")},
            "spec": copy.deepcopy(spec_tag), "status": copy.deepcopy(status_tag), "image": image}


def get_image_tag(api: Api, namespace: str, name: str) -> dict:
    stream_name, tag = split_tag_name(name)
    stream = api.store.peek("imagestreams", namespace, stream_name)
    image_tag = _image_tag(api, stream, tag) if stream is not None else None
    if image_tag is None:
        raise not_found(registration.resource("imagetags"), name)
    return image_tag


def list_image_tags(api: Api, namespace: Optional[str], predicate=None) -> dict:
    items = []
    for stream, _ in sorted(api.store.scan("imagestreams", namespace),
                            key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"])):
        names = [t["name"] for t in (stream.get("spec") or {}).get("tags") or []]
        names += [t["tag"] for t in (stream.get("status") or {}).get("tags") or [] if t["tag"] not in names]
        for tag in names:
            image_tag = _image_tag(api, stream, tag)
            if image_tag is not None and (predicate is None or predicate(image_tag)):
                items.append(image_tag)
    return {"kind": "ImageTagList", "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {"resourceVersion": str(api.store.resource_version)}, "items": items}


# -- ImageStreamTag --------------------------------------------------------------------------------


def _get(request: Request) -> Response:
    return Response(200, get_image_tag(request.api, request.namespace, request.name))


def _list(request: Request) -> Response:
    return Response(200, list_image_tags(request.api, request.namespace, request.predicate))


KIND = Kind(
    Resource("image.openshift.io", "imagetags", "imagetag", "ImageTag", True, verbs=("get", "list"), short_names=("itag",),
             stored=False),
    handlers={("get", ""): _get, ("list", ""): _list},
)
