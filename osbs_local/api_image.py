"""image.openshift.io: ImageStream rules, ImageStreamImport, ImageStreamTag (OPENSHIFT_API.md sections 6-8)."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Optional

from . import v2
from .api import Cause, Strategy, already_exists, bad_request, conflict, invalid, not_found, now, success_status
from .resources import BY_PLURAL

if TYPE_CHECKING:
    from .api import Api

log = logging.getLogger("osbs_local.images")

IMAGE_GROUP_VERSION = "image.openshift.io/v1"
REPOSITORY_CHECK_ANNOTATION = "openshift.io/image.dockerRepositoryCheck"
INSECURE_ANNOTATION = "openshift.io/image.insecureRepository"
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
            policy = (tag.get("referencePolicy") or {}).get("type")
            if policy not in REFERENCE_POLICIES:
                causes.append(Cause(f"{path}.referencePolicy.type", "FieldValueNotSupported", f"{policy!r}: supported values: Source, Local"))
        return causes


def _image_status(code: int, reason: str, message: str, name: str) -> dict:
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": "dockerimage"},
        "code": code,
    }


def image_object(repository: str, info: dict, include_manifest: bool = False) -> dict:
    """The Image for what v2.RegistryClient.inspect returned; repository is `host/path` without tag."""
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
    if include_manifest:
        image["dockerImageManifest"] = info.get("raw_manifest")
    return image


class ImageOperations:
    def __init__(self, api: "Api"):
        self.api = api

    # -- resolving tags ------------------------------------------------------------------------------
    def resolve_tag_pull_spec(self, namespace: str, tag_name: str) -> Optional[str]:
        """The pull spec (by digest) of an ImageStreamTag's current image, per its referencePolicy; None if none."""
        stream_name, _, tag = tag_name.partition(":")
        stream = self.api.store.peek("imagestreams", namespace, stream_name)
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
    def namespace_auths(self, namespace: str) -> dict:
        """dockercfg-shaped credentials from the namespace's docker secrets, plus the integrated registry's."""
        auths = dict(self.api.registry_auths or {})
        for secret, _ in self.api.store.scan("secrets", namespace):
            if secret.get("type") in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
                try:
                    auths.update(v2.auths_from_secret(secret))
                except v2.RegistryError:
                    log.warning("secret %s/%s holds no valid docker config", namespace, secret["metadata"]["name"])
        return auths

    def inspect(self, namespace: str, reference: str, insecure: bool, auths: Optional[dict] = None) -> tuple[str, dict]:
        """(repository, inspect info) of a DockerImage reference; raises v2.RegistryError."""
        host, repository, ref = v2.split_image_reference(reference)
        client = v2.RegistryClient(
            host, auths if auths is not None else self.namespace_auths(namespace), self.api.registry_ca, insecure=insecure
        )
        return f"{host}/{repository}", client.inspect(repository, ref)

    def store_image(self, image: dict) -> None:
        images = BY_PLURAL["images"]
        with self.api.store.lock:
            if self.api.store.peek("images", "", image["metadata"]["name"]) is None:
                self.api.create_prepared(images, copy.deepcopy(image), dry=False)

    # -- ImageStreamImport ---------------------------------------------------------------------------
    def import_images(self, namespace: str, body: dict, dry_run=None) -> dict:
        api = self.api
        # OpenShift's ImageStreamImport storage reads as if it ignored dryRun (untested there); osbs-local honours
        # it as the issue asks of every write: the registry is read, the answer is what would be, nothing is stored.
        dry = api.check_dry_run(dry_run)
        if not isinstance(body, dict):
            raise bad_request("the request body must be an ImageStreamImport object")
        name = (body.get("metadata") or {}).get("name")
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        causes = []
        if not name:
            causes.append(Cause("metadata.name", "FieldValueRequired", "name is required"))
        images = spec.get("images") or []
        for index, image in enumerate(images):
            source = (image or {}).get("from") or {}
            if source.get("kind") != "DockerImage":
                causes.append(Cause(f"spec.images[{index}].from.kind", "FieldValueInvalid", "only DockerImage is supported"))
            elif not source.get("name"):
                causes.append(Cause(f"spec.images[{index}].from.name", "FieldValueRequired", "name is required"))
        if not images and not spec.get("repository"):
            causes.append(Cause("spec", "FieldValueRequired", "you must specify at least one image or a repository import"))
        if causes:
            raise invalid("ImageStreamImport.image.openshift.io", name or "", causes, "image.openshift.io", "ImageStreamImport")
        api.require_namespace(namespace)
        importing = bool(spec.get("import"))
        body_rv = (body.get("metadata") or {}).get("resourceVersion")
        stream = api.store.peek("imagestreams", namespace, name)
        if importing and body_rv and stream is not None and body_rv != stream["metadata"]["resourceVersion"]:
            raise conflict(BY_PLURAL["imagestreams"], name)
        auths = self.namespace_auths(namespace)
        results, changes = [], []
        for image_spec in images:
            from_name = image_spec["from"]["name"]
            insecure = bool((image_spec.get("importPolicy") or {}).get("insecure"))
            result, image = self._import_one(namespace, from_name, insecure, auths, bool(image_spec.get("includeManifest")),
                                             store=importing and not dry)
            _, _, reference = v2.split_image_reference(from_name)
            to = (image_spec.get("to") or {}).get("name") or ("" if reference.startswith("sha256:") else reference)
            entry = {"status": result}
            if image is not None:
                entry["image"] = image
            if to:
                entry["tag"] = to
                changes.append((to, from_name, image_spec, result, image))
            results.append(entry)
        status: dict = {"images": results}
        if spec.get("repository"):
            status["repository"] = {
                "status": _image_status(400, "BadRequest", "repository import is not supported by osbs-local; list the images", spec["repository"].get("from", {}).get("name", "")),
            }
        if importing and changes:
            status["import"] = self._write_import(namespace, name, changes, set_spec=True, dry=dry)
        elif importing:
            status["import"] = api.store.get("imagestreams", namespace, name)
        return {
            "kind": "ImageStreamImport",
            "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {**(body.get("metadata") or {}), "namespace": namespace, "creationTimestamp": now()},
            "spec": spec,
            "status": status,
        }

    def _import_one(self, namespace: str, reference: str, insecure: bool, auths: dict, include_manifest: bool,
                    store: bool = True):
        """(status, Image or None) for one reference; store=False for a preview (import: false) that keeps nothing."""
        try:
            repository, info = self.inspect(namespace, reference, insecure, auths)
        except v2.RegistryError as error:
            log.info("import of %s failed: %s %s", reference, error.code, error.reason)
            return _image_status(error.code, error.reason, str(error), reference), None
        except ValueError as error:
            return _image_status(400, "BadRequest", str(error), reference), None
        image = image_object(repository, info, include_manifest)
        if store:
            self.store_image(image_object(repository, info))
        return {"metadata": {}, "status": "Success"}, image

    def _stream_or_new(self, namespace: str, name: str, dry: bool = False) -> dict:
        """The stream (a private copy), created empty when missing, as imports and pushes do (store lock held)."""
        stream = self.api.store.get("imagestreams", namespace, name)
        if stream is None:
            stream = self.api.create_prepared(BY_PLURAL["imagestreams"], {
                "kind": "ImageStream", "apiVersion": IMAGE_GROUP_VERSION,
                "metadata": {"name": name, "namespace": namespace}, "spec": {},
            }, dry=dry)
        return stream

    def _write_import(self, namespace: str, name: str, changes: list, set_spec: bool, dry: bool = False) -> dict:
        """Record imported images (or failures) in the stream's tags; create the stream when missing."""
        api = self.api
        streams = BY_PLURAL["imagestreams"]
        with api.store.lock:
            stream = self._stream_or_new(namespace, name, dry)
            old = copy.deepcopy(stream)
            spec_tags = stream["spec"].setdefault("tags", [])
            status = stream.setdefault("status", {})
            status_tags = status.get("tags") or []
            status["tags"] = status_tags
            next_generation = stream["metadata"].get("generation", 1) + 1
            spec_changed = False
            for tag, from_name, image_spec, result, image in changes:
                spec_tag = find_tag(spec_tags, "name", tag)
                if set_spec:
                    wanted = {
                        "name": tag,
                        "annotations": (spec_tag or {}).get("annotations"),
                        "from": {"kind": "DockerImage", "name": from_name},
                        "importPolicy": copy.deepcopy(image_spec.get("importPolicy") or (spec_tag or {}).get("importPolicy") or {}),
                        "referencePolicy": copy.deepcopy(image_spec.get("referencePolicy") or (spec_tag or {}).get("referencePolicy") or {"type": "Source"}),
                    }
                    wanted["importPolicy"].setdefault("importMode", "Legacy")
                    current = {k: v for k, v in (spec_tag or {}).items() if k not in ("generation", "reference")}
                    if spec_tag is None or current != wanted:
                        spec_changed = True
                        if spec_tag is None:
                            spec_tags.append(wanted)
                        else:
                            spec_tag.clear()
                            spec_tag.update(wanted)
            for tag, from_name, image_spec, result, image in changes:
                spec_tag = find_tag(spec_tags, "name", tag) or {}
                generation = next_generation if spec_changed or not spec_tag.get("generation") else spec_tag["generation"]
                status_tag = find_tag(status_tags, "tag", tag)
                if status_tag is None:
                    status_tag = {"tag": tag, "items": []}
                    status_tags.append(status_tag)
                if result["status"] == "Success":
                    items = status_tag.get("items") or []
                    if not items or items[0].get("image") != image["metadata"]["name"]:
                        items.insert(0, {
                            "created": now(),
                            "dockerImageReference": image["dockerImageReference"],
                            "image": image["metadata"]["name"],
                            "generation": generation,
                        })
                    else:
                        # The same image seen again at a newer tag generation: the import is done.
                        items[0]["generation"] = max(items[0].get("generation") or 0, generation)
                    status_tag["items"] = items
                    status_tag.pop("conditions", None)
                else:
                    status_tag["conditions"] = [{
                        "type": "ImportSuccess", "status": "False", "lastTransitionTime": now(),
                        "reason": result.get("reason", ""), "message": result.get("message", ""),
                        "generation": generation,
                    }]
            annotations = stream["metadata"].get("annotations") or {}
            annotations[REPOSITORY_CHECK_ANNOTATION] = now()
            if any((spec.get("importPolicy") or {}).get("insecure") for _, _, spec, _, _ in changes):
                annotations[INSECURE_ANNOTATION] = "true"
            stream["metadata"]["annotations"] = annotations
            return api.update_prepared(streams, old, stream, "import", dry=dry)

    def import_spec_tags(self, namespace: str, name: str, tag_names: list[str]) -> None:
        """Import the DockerImage `from` of the named spec tags (what OCM's image stream controller does)."""
        stream = self.api.store.get("imagestreams", namespace, name)
        if stream is None:
            return
        auths = self.namespace_auths(namespace)
        changes = []
        for tag_name in tag_names:
            spec_tag = find_tag(stream["spec"].get("tags"), "name", tag_name)
            if not spec_tag or (spec_tag.get("from") or {}).get("kind") != "DockerImage":
                continue
            insecure = bool((spec_tag.get("importPolicy") or {}).get("insecure"))
            result, image = self._import_one(namespace, spec_tag["from"]["name"], insecure, auths, False)
            changes.append((tag_name, spec_tag["from"]["name"], spec_tag, result, image))
        if changes:
            self._write_import(namespace, name, changes, set_spec=False)

    def record_pushed_image(self, namespace: str, stream_name: str, tag: str, digest: str) -> None:
        """A build pushed to the integrated registry: make IMAGESTREAM:TAG point at the new image."""
        api = self.api
        repository = f"{api.registry_host}/{namespace}/{stream_name}"
        _, info = self.inspect(namespace, f"{repository}@{digest}", False, api.registry_auths)
        self._record_tag_image(namespace, stream_name, tag, image_object(repository, info))

    def create_mapping(self, namespace: str, body: dict, dry_run=None) -> dict:
        """POST imagestreammappings: record an image in a stream's tag (what a registry does after a push)."""
        api = self.api
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
            self._record_tag_image(namespace, name, body["tag"], {
                **copy.deepcopy(image), "kind": "Image", "apiVersion": IMAGE_GROUP_VERSION})
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _record_tag_image(self, namespace: str, stream_name: str, tag: str, image: dict) -> None:
        api = self.api
        self.store_image(image)
        digest = image["metadata"]["name"]
        streams = BY_PLURAL["imagestreams"]
        with api.store.lock:
            stream = self._stream_or_new(namespace, stream_name)
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

    def stream_secrets(self, namespace: str, name: str) -> dict:
        """GET imagestreams/NAME/secrets: the namespace's docker secrets an import of the stream may use."""
        self.api.get_or_404(BY_PLURAL["imagestreams"], namespace, name)
        items = [json_copy for json_copy in (
            self.api.store.get("secrets", namespace, s["metadata"]["name"])
            for s, _ in self.api.store.scan("secrets", namespace)
            if s.get("type") in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"))
            if json_copy is not None]
        items.sort(key=lambda s: s["metadata"]["name"])
        return {"kind": "SecretList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.api.store.resource_version)}, "items": items}

    def stream_layers(self, namespace: str, name: str) -> dict:
        """GET imagestreams/NAME/layers: the blobs of every image the stream's tags hold."""
        stream = self.api.get_or_404(BY_PLURAL["imagestreams"], namespace, name)
        blobs, images = {}, {}
        for status_tag in (stream.get("status") or {}).get("tags") or []:
            for item in status_tag.get("items") or []:
                image = self.api.store.peek("images", "", item["image"])
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
    def get_stream_image(self, namespace: str, name: str) -> dict:
        """GET imagestreamimages/STREAM@DIGEST: an image the stream has (had) in one of its tags."""
        resource = BY_PLURAL["imagestreamimages"]
        stream_name, sep, digest = name.partition("@")
        if not sep or not stream_name or not digest:
            raise bad_request(f'"{name}" is an invalid imagestreamimage name: must be of the form <stream_name>@<id>')
        stream = self.api.store.peek("imagestreams", namespace, stream_name)
        if stream is None:
            raise not_found(resource, name)
        item = next((i for t in (stream.get("status") or {}).get("tags") or [] for i in t.get("items") or []
                     if i.get("image") == digest), None)
        if item is None:
            raise not_found(resource, name)
        image = self.api.store.get("images", "", digest) or {"metadata": {"name": digest}}
        image["dockerImageReference"] = item["dockerImageReference"]
        image.pop("dockerImageManifest", None)
        meta = stream["metadata"]
        return {"kind": "ImageStreamImage", "apiVersion": IMAGE_GROUP_VERSION,
                "metadata": {"name": name, "namespace": namespace, "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"], "creationTimestamp": item.get("created")},
                "image": image}

    def _image_tag(self, stream: dict, tag: str) -> Optional[dict]:
        spec_tag = find_tag((stream.get("spec") or {}).get("tags"), "name", tag)
        status_tag = find_tag((stream.get("status") or {}).get("tags"), "tag", tag)
        if spec_tag is None and status_tag is None:
            return None
        image = None
        if status_tag and status_tag.get("items"):
            current = status_tag["items"][0]
            image = self.api.store.get("images", "", current["image"]) or {"metadata": {"name": current["image"]}}
            image["dockerImageReference"] = current["dockerImageReference"]
            image.pop("dockerImageManifest", None)
        meta = stream["metadata"]
        return {"kind": "ImageTag", "apiVersion": IMAGE_GROUP_VERSION,
                "metadata": {"name": f"{meta['name']}:{tag}", "namespace": meta["namespace"], "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta.get("creationTimestamp")},
                "spec": copy.deepcopy(spec_tag), "status": copy.deepcopy(status_tag), "image": image}

    def get_image_tag(self, namespace: str, name: str) -> dict:
        stream_name, tag = split_tag_name(name)
        stream = self.api.store.peek("imagestreams", namespace, stream_name)
        image_tag = self._image_tag(stream, tag) if stream is not None else None
        if image_tag is None:
            raise not_found(BY_PLURAL["imagetags"], name)
        return image_tag

    def list_image_tags(self, namespace: Optional[str], predicate=None) -> dict:
        items = []
        for stream, _ in sorted(self.api.store.scan("imagestreams", namespace),
                                key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"])):
            names = [t["name"] for t in (stream.get("spec") or {}).get("tags") or []]
            names += [t["tag"] for t in (stream.get("status") or {}).get("tags") or [] if t["tag"] not in names]
            for tag in names:
                image_tag = self._image_tag(stream, tag)
                if image_tag is not None and (predicate is None or predicate(image_tag)):
                    items.append(image_tag)
        return {"kind": "ImageTagList", "apiVersion": IMAGE_GROUP_VERSION,
                "metadata": {"resourceVersion": str(self.api.store.resource_version)}, "items": items}

    # -- ImageStreamTag --------------------------------------------------------------------------------
    def _tag_object(self, stream: dict, tag: str, with_image: bool = True) -> Optional[dict]:
        status_tag = find_tag((stream.get("status") or {}).get("tags"), "tag", tag)
        if not status_tag or not status_tag.get("items"):
            return None
        current = status_tag["items"][0]
        spec_tag = find_tag((stream.get("spec") or {}).get("tags"), "name", tag)
        meta = stream["metadata"]
        image = self.api.store.get("images", "", current["image"])
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

    def get_tag(self, namespace: str, name: str) -> dict:
        stream_name, tag = split_tag_name(name)
        resource = BY_PLURAL["imagestreamtags"]
        stream = self.api.store.peek("imagestreams", namespace, stream_name)
        if stream is None:
            raise not_found(resource, name)
        tag_object = self._tag_object(stream, tag)
        if tag_object is None:
            raise not_found(resource, name)
        return tag_object

    def list_tags(self, namespace: Optional[str], predicate=None) -> dict:
        items = []
        for stream, _ in sorted(self.api.store.scan("imagestreams", namespace),
                                key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"])):
            for status_tag in (stream.get("status") or {}).get("tags") or []:
                tag_object = self._tag_object(stream, status_tag["tag"], with_image=False)
                if tag_object is not None and (predicate is None or predicate(tag_object)):
                    items.append(tag_object)
        return {
            "kind": "ImageStreamTagList",
            "apiVersion": IMAGE_GROUP_VERSION,
            "metadata": {"resourceVersion": str(self.api.store.resource_version)},
            "items": items,
        }

    def put_tag(self, namespace: str, name: str, body: dict, create: bool, dry_run=None) -> dict:
        """Create (409 if the spec tag exists) or update the spec tag an ImageStreamTag names."""
        api = self.api
        dry = api.check_dry_run(dry_run)
        if not isinstance(body, dict):
            raise bad_request("the request body must be an ImageStreamTag object")
        if create:
            name = (body.get("metadata") or {}).get("name") or ""
        stream_name, tag = split_tag_name(name)
        resource, streams = BY_PLURAL["imagestreamtags"], BY_PLURAL["imagestreams"]
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
                return self._tag_view(created, tag)
            existing = find_tag(stream["spec"].get("tags"), "name", tag)
            if create and (existing is not None or self._tag_object(stream, tag) is not None):
                raise already_exists(resource, name)
            if not create and existing is None and self._tag_object(stream, tag) is None:
                raise not_found(resource, name)
            body_rv = (body.get("metadata") or {}).get("resourceVersion")
            if not create and body_rv and body_rv != stream["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            old = copy.deepcopy(stream)
            tags = [t for t in stream["spec"].get("tags") or [] if t.get("name") != tag]
            tags.append(wanted)
            stream["spec"]["tags"] = tags
            updated = api.update_prepared(streams, old, stream, "", dry)
            return self._tag_view(updated, tag)

    def _tag_view(self, stream: dict, tag: str) -> dict:
        tag_object = self._tag_object(stream, tag)
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

    def delete_tag(self, namespace: str, name: str, dry_run=None) -> dict:
        api = self.api
        dry = api.check_dry_run(dry_run)
        stream_name, tag = split_tag_name(name)
        resource, streams = BY_PLURAL["imagestreamtags"], BY_PLURAL["imagestreams"]
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
