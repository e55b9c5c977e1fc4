"""ImageStream (image.openshift.io/v1): its rules, its tags' current images, and its secrets and layers subresources."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional

from ...apiserver import registration
from ...apiserver.errors import Cause, bad_request
from ...apiserver.meta import now
from ...apiserver.printing import NAME, human_duration_since
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource, Subresource, field_path
from ...apiserver.rest import Request, Response
from ...apiserver.strategy import Strategy
from .image import IMAGE_GROUP_VERSION, import_mode_problem, store_image

if TYPE_CHECKING:
    from ...apiserver.api import Api


FROM_KINDS = ("DockerImage", "ImageStreamTag", "ImageStreamImage")
REFERENCE_POLICIES = ("Source", "Local")


def find_tag(tags: Optional[list], key: str, value: str) -> Optional[dict]:
    return next((t for t in tags or [] if isinstance(t, dict) and t.get(key) == value), None)


def split_tag_name(name: str) -> tuple[str, str]:
    """`stream:tag` -> (stream, tag); anything else is a 400, as the ImageStreamTag REST storage says."""
    stream, sep, tag = name.partition(":")
    if not sep or not stream or not tag or ":" in tag:
        raise bad_request(f'"{name}" is an invalid imagestreamtag name: must be of the form <stream_name>:<tag>')
    return stream, tag


class ImageStreamStrategy(Strategy):
    has_generation = True
    require_rv_on_update = True

    def _spec_defaults(self, obj: dict) -> None:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        obj["spec"] = spec
        spec.setdefault("lookupPolicy", {"local": False})
        if spec.get("tags") is None:
            spec["tags"] = []
        for tag in spec["tags"]:
            if not isinstance(tag, dict):
                continue
            tag.setdefault("annotations", None)
            tag.setdefault("importPolicy", {})
            tag["importPolicy"].setdefault("importMode", "Legacy")
            tag.setdefault("referencePolicy", {"type": "Source"})
            tag["referencePolicy"].setdefault("type", "Source")
            if isinstance(tag.get("from"), dict) and tag["from"].get("kind") == "ImageStreamTag" and ":" not in tag["from"].get("name", ":"):
                tag["from"]["name"] = f"{tag['from']['name']}:latest"

    def _repository(self, api: "Api", obj: dict) -> str:
        meta = obj["metadata"]
        return f"{api.registry_host}/{meta['namespace']}/{meta['name']}"

    def prepare_create(self, api, obj):
        self._spec_defaults(obj)
        generation = obj["metadata"]["generation"]
        for tag in obj["spec"]["tags"]:
            if isinstance(tag, dict):
                tag["generation"] = generation
        repository = self._repository(api, obj)
        obj["status"] = {"dockerImageRepository": repository, "publicDockerImageRepository": repository}

    def prepare_update(self, api, old, new, subresource):
        """subresource "" keeps the old status, "status" the old spec, "import" takes both from new."""
        if subresource == "status":
            new["spec"] = copy.deepcopy(old.get("spec"))
        elif subresource != "import":
            new["status"] = copy.deepcopy(old.get("status"))
        self._spec_defaults(new)
        status = new.get("status") if isinstance(new.get("status"), dict) else {}
        new["status"] = status
        status["dockerImageRepository"] = status["publicDockerImageRepository"] = self._repository(api, new)
        old_generation = old["metadata"].get("generation", 1)
        if new["spec"] == old.get("spec"):
            return
        generation = old_generation + 1
        new["metadata"]["generation"] = generation
        old_tags = (old.get("spec") or {}).get("tags") or []
        for tag in new["spec"]["tags"]:
            if not isinstance(tag, dict):
                continue
            previous = find_tag(old_tags, "name", tag.get("name"))
            comparable_new = {k: v for k, v in tag.items() if k != "generation"}
            comparable_old = {k: v for k, v in (previous or {}).items() if k != "generation"}
            if previous is None or comparable_new != comparable_old or not tag.get("generation"):
                tag["generation"] = generation
            else:
                tag["generation"] = previous.get("generation")

    def validate(self, api, obj, old, subresource=""):
        causes = []
        seen = set()
        for index, tag in enumerate((obj.get("spec") or {}).get("tags") or []):
            path = f"spec.tags[{index}]"
            if not isinstance(tag, dict) or not tag.get("name"):
                causes.append(Cause(f"{path}.name", "FieldValueRequired", "tag name is required"))
                continue
            if tag["name"] in seen:
                causes.append(Cause(f"{path}.name", "FieldValueDuplicate", f"{tag['name']!r}"))
            seen.add(tag["name"])
            source = tag.get("from")
            if isinstance(source, dict):
                if source.get("kind") not in FROM_KINDS:
                    causes.append(Cause(f"{path}.from.kind", "FieldValueInvalid", f"{source.get('kind')!r}: valid values are {', '.join(FROM_KINDS)}"))
                elif not source.get("name"):
                    causes.append(Cause(f"{path}.from.name", "FieldValueRequired", "name is required"))
            mode_problem = import_mode_problem(tag.get("importPolicy"))
            if mode_problem:
                # OpenShift's path names the tag by key (spec.tags[NAME]), its tags being a map internally.
                causes.append(Cause(f"spec.tags[{tag['name']}].importPolicy.importMode", "FieldValueInvalid", mode_problem))
            policy = (tag.get("referencePolicy") or {}).get("type")
            if policy not in REFERENCE_POLICIES:
                causes.append(Cause(f"{path}.referencePolicy.type", "FieldValueNotSupported", f"{policy!r}: supported values: Source, Local"))
        return causes


def resolve_tag_pull_spec(api: Api, namespace: str, tag_name: str) -> Optional[str]:
    """The pull spec (by digest) of an ImageStreamTag's current image, per its referencePolicy; None if none."""
    stream_name, _, tag = tag_name.partition(":")
    stream = api.store.peek("imagestreams", namespace, stream_name)
    if stream is None:
        return None
    status_tag = find_tag((stream.get("status") or {}).get("tags"), "tag", tag or "latest")
    if not status_tag or not status_tag.get("items"):
        return None
    current = status_tag["items"][0]
    spec_tag = find_tag((stream.get("spec") or {}).get("tags"), "name", tag or "latest") or {}
    if (spec_tag.get("referencePolicy") or {}).get("type") == "Local":
        return f"{stream['status']['dockerImageRepository']}@{current['image']}"
    return current.get("dockerImageReference")


# -- reading registries ----------------------------------------------------------------------------


def stream_or_new(api: Api, namespace: str, name: str, dry: bool = False) -> dict:
    """The stream (a private copy), created empty when missing, as imports and pushes do (store lock held)."""
    stream = api.store.get("imagestreams", namespace, name)
    if stream is None:
        stream = api.create_prepared(registration.resource("imagestreams"), {
            "kind": "ImageStream", "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {"name": name, "namespace": namespace}, "spec": {},
        }, dry=dry)
    return stream


def record_tag_image(api: Api, namespace: str, stream_name: str, tag: str, image: dict) -> None:
    store_image(api, image)
    digest = image["metadata"]["name"]
    streams = registration.resource("imagestreams")
    with api.store.lock:
        stream = stream_or_new(api, namespace, stream_name)
        old = copy.deepcopy(stream)
        status_tags = stream["status"].setdefault("tags", [])
        status_tag = find_tag(status_tags, "tag", tag)
        if status_tag is None:
            status_tag = {"tag": tag, "items": []}
            status_tags.append(status_tag)
        items = status_tag.get("items") or []
        if not items or items[0].get("image") != digest:
            items.insert(0, {
                "created": now(), "dockerImageReference": image["dockerImageReference"], "image": digest,
                "generation": stream["metadata"].get("generation", 1),
            })
        status_tag["items"] = items
        api.update_prepared(streams, old, stream, "status", dry=False)


def stream_secrets(api: Api, namespace: str, name: str) -> dict:
    """GET imagestreams/NAME/secrets: the namespace's docker secrets an import of the stream may use."""
    api.get_or_404(registration.resource("imagestreams"), namespace, name)
    items = [json_copy for json_copy in (
        api.store.get("secrets", namespace, s["metadata"]["name"])
        for s, _ in api.store.scan("secrets", namespace)
        if s.get("type") in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"))
        if json_copy is not None]
    items.sort(key=lambda s: s["metadata"]["name"])
    return {"kind": "SecretList", "apiVersion": "v1",
            "metadata": {"resourceVersion": str(api.store.resource_version)}, "items": items}


def stream_layers(api: Api, namespace: str, name: str) -> dict:
    """GET imagestreams/NAME/layers: the blobs of every image the stream's tags hold."""
    stream = api.get_or_404(registration.resource("imagestreams"), namespace, name)
    blobs, images = {}, {}
    for status_tag in (stream.get("status") or {}).get("tags") or []:
        for item in status_tag.get("items") or []:
            image = api.store.peek("images", "", item["image"])
            if image is None or item["image"] in images:
                continue
            layers = image.get("dockerImageLayers") or []
            for layer in layers:
                blobs[layer["name"]] = {"size": layer.get("size", 0), "mediaType": layer.get("mediaType", "")}
            entry = {"layers": [layer["name"] for layer in layers], "mediaType": image.get("dockerImageManifestMediaType", "")}
            config = (image.get("dockerImageMetadata") or {}).get("Id")
            if config and config != item["image"]:
                entry["config"] = config
            images[item["image"]] = entry
    return {"kind": "ImageStreamLayers", "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {k: stream["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "blobs": blobs, "images": images}


# -- ImageStreamImage and ImageTag ------------------------------------------------------------------


def _tags_cell(obj: dict) -> str:
    tags = [t["tag"] for t in (obj.get("status") or {}).get("tags") or [] if t.get("items")]
    return ",".join(tags[:4]) + (f" + {len(tags) - 4} more..." if len(tags) > 4 else "")


def _updated_cell(obj: dict) -> str:
    created = [t["items"][0].get("created") for t in (obj.get("status") or {}).get("tags") or [] if t.get("items")]
    created = [c for c in created if c]
    return human_duration_since(max(created)) if created else ""


def _secrets(request: Request) -> Response:
    return Response(200, stream_secrets(request.api, request.namespace, request.name))


def _layers(request: Request) -> Response:
    return Response(200, stream_layers(request.api, request.namespace, request.name))


KIND = Kind(
    Resource(
        "image.openshift.io", "imagestreams", "imagestream", "ImageStream", True, short_names=("is",), categories=("all",),
        subresources=(
            Subresource("status", "ImageStream", ("get", "patch", "update")),
            Subresource("layers", "ImageStreamLayers", ("get",)),
            Subresource("secrets", "SecretList", ("get",)),
        ),
        extra_field_selectors={
            "spec.dockerImageRepository": field_path("spec", "dockerImageRepository"),
            "status.dockerImageRepository": field_path("status", "dockerImageRepository"),
        },
    ),
    ImageStreamStrategy(),
    handlers={("get", "secrets"): _secrets, ("get", "layers"): _layers},
    columns=[NAME, ("Image Repository", "string", "Where the images are.", lambda o: (o.get("status") or {}).get("dockerImageRepository", ""), 0),
             ("Tags", "string", "Tags with images.", _tags_cell, 0),
             ("Updated", "string", "Since the last tag change.", _updated_cell, 0)],
    merge_keys={"spec.tags": "name", "status.tags": "tag"},
)
