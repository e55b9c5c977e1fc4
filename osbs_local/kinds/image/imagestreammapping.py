"""ImageStreamMapping (POST only): record an image under a stream's tag."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ...apiserver.errors import Cause, bad_request, invalid
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.rest import Request, Response
from .image import IMAGE_GROUP_VERSION
from .imagestream import record_tag_image

if TYPE_CHECKING:
    from ...apiserver.api import Api


def create_mapping(api: Api, namespace: str, body: dict, dry_run=None) -> dict:
    """POST imagestreammappings: record an image in a stream's tag (what a registry does after a push)."""
    dry = api.check_dry_run(dry_run)
    if not isinstance(body, dict):
        raise bad_request("the request body must be an ImageStreamMapping object")
    name = (body.get("metadata") or {}).get("name") or ""
    image = body.get("image") if isinstance(body.get("image"), dict) else {}
    causes = []
    if not name:
        causes.append(Cause("metadata.name", "FieldValueRequired", "name is required"))
    if not body.get("tag"):
        causes.append(Cause("tag", "FieldValueRequired", "tag is required"))
    if not (image.get("metadata") or {}).get("name"):
        causes.append(Cause("image.metadata.name", "FieldValueRequired", "the image name (its digest) is required"))
    if not image.get("dockerImageReference"):
        causes.append(Cause("image.dockerImageReference", "FieldValueRequired", "dockerImageReference is required"))
    if causes:
        raise invalid("ImageStreamMapping.image.openshift.io", name, causes, "image.openshift.io", "ImageStreamMapping")
    api.require_namespace(namespace)
    if not dry:
        record_tag_image(api, namespace, name, body["tag"], {
            **copy.deepcopy(image), "kind": "Image", "apiVersion": IMAGE_GROUP_VERSION})
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _create(request: Request) -> Response:
    return Response(201, create_mapping(request.api, request.namespace, request.body, request.dry_run))


KIND = Kind(
    Resource("image.openshift.io", "imagestreammappings", "imagestreammapping", "ImageStreamMapping", True,
             verbs=("create",), stored=False),
    handlers={("create", ""): _create},
)
