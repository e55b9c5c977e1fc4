"""Image (image.openshift.io/v1, cluster-scoped): the metadata of every image imported or pushed."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ...apiserver import registration
from ...apiserver.meta import now
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.strategy import Strategy

IMAGE_GROUP_VERSION = "image.openshift.io/v1"

if TYPE_CHECKING:
    from ...apiserver.api import Api


IMPORT_MODES = ("Legacy", "PreserveOriginal")


def import_mode_problem(import_policy) -> str | None:
    """OpenShift's ValidateImportPolicy: the message for an importMode other than '', Legacy, PreserveOriginal."""
    mode = (import_policy or {}).get("importMode") if isinstance(import_policy, dict) else None
    if mode and mode not in IMPORT_MODES:
        return "invalid import mode, valid modes are '', 'Legacy', 'PreserveOriginal'"
    return None


def keeps_list(import_policy) -> bool:
    """PreserveOriginal imports a manifest list as the list; Legacy (the default) as one platform's image."""
    return ((import_policy or {}).get("importMode") or "Legacy") == "PreserveOriginal"


def image_object(repository: str, info: dict, include_manifest: bool = False) -> dict:
    """The Image for what registry_client.RegistryClient.inspect returned; repository is `host/path` without tag."""
    digest = info["digest"]
    config = info.get("config") or {}
    manifest = info.get("manifest") or {}
    image_id = (manifest.get("config") or {}).get("digest") or digest
    image = {
        "kind": "Image",
        "apiVersion": IMAGE_GROUP_VERSION,
        "metadata": {"name": digest, "annotations": {"image.openshift.io/dockerLayersOrder": "ascending"}},
        "dockerImageReference": f"{repository}@{digest}",
        "dockerImageMetadata": {
            "kind": "DockerImage",
            "apiVersion": "image.openshift.io/1.0",
            "Id": image_id,
            "Created": info.get("created"),
            "Config": config.get("config") or {},
            "Architecture": info.get("architecture") or config.get("architecture"),
            "Size": info.get("size", 0),
        },
        "dockerImageMetadataVersion": "1.0",
        "dockerImageManifestMediaType": info.get("media_type"),
        "dockerImageLayers": [
            {"name": layer["digest"], "size": layer.get("size", 0), "mediaType": layer.get("mediaType", "")}
            for layer in info.get("layers") or []
        ],
    }
    if info.get("manifests"):
        # A kept manifest list (PreserveOriginal): OpenShift's manifestListToImage records its children, no config.
        image["dockerImageMetadata"] = {"kind": "DockerImage", "apiVersion": "image.openshift.io/1.0", "Id": digest,
                                        "Created": now(), "Size": 0}
        image["dockerImageManifests"] = copy.deepcopy(info["manifests"])
    if include_manifest:
        image["dockerImageManifest"] = info.get("raw_manifest")
    return image


def store_image(api: Api, image: dict) -> None:
    images = registration.resource("images")
    with api.store.lock:
        if api.store.peek("images", "", image["metadata"]["name"]) is None:
            api.create_prepared(images, copy.deepcopy(image), dry=False)


# -- ImageStreamImport ---------------------------------------------------------------------------


KIND = Kind(
    Resource("image.openshift.io", "images", "image", "Image", False, verbs=("delete", "get", "list", "watch")),
    Strategy(),
)
