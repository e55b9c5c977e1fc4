"""ImageStreamImage (GET only): `stream@digest`, an image of a stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...apiserver import registration
from ...apiserver.errors import bad_request, not_found
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.rest import Request, Response
from .image import IMAGE_GROUP_VERSION

if TYPE_CHECKING:
    from ...apiserver.api import Api


def get_stream_image(api: Api, namespace: str, name: str) -> dict:
    """GET imagestreamimages/STREAM@DIGEST: an image the stream has (had) in one of its tags."""
    resource = registration.resource("imagestreamimages")
    stream_name, sep, digest = name.partition("@")
    if not sep or not stream_name or not digest:
        raise bad_request(f'"{name}" is an invalid imagestreamimage name: must be of the form <stream_name>@<id>')
    stream = api.store.peek("imagestreams", namespace, stream_name)
    if stream is None:
        raise not_found(resource, name)
    item = next((i for t in (stream.get("status") or {}).get("tags") or [] for i in t.get("items") or []
                 if i.get("image") == digest), None)
    if item is None:
        raise not_found(resource, name)
    image = api.store.get("images", "", digest) or {"metadata": {"name": digest}}
    image["dockerImageReference"] = item["dockerImageReference"]
    image.pop("dockerImageManifest", None)
    meta = stream["metadata"]
    return {"kind": "ImageStreamImage", "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {"name": name, "namespace": namespace, "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"], "creationTimestamp": item.get("created")},
            "image": image}


def _get(request: Request) -> Response:
    return Response(200, get_stream_image(request.api, request.namespace, request.name))


KIND = Kind(
    Resource("image.openshift.io", "imagestreamimages", "imagestreamimage", "ImageStreamImage", True,
             verbs=("get",), short_names=("isimage",), stored=False),
    handlers={("get", ""): _get},
)
