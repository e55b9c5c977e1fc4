"""ImageStreamImport (POST only): read images from registries into ImageStreams; also the imports the
controllers make (scheduled and spec tags, pushed builds)."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Optional

from ... import registry_client
from ...apiserver import registration
from ...apiserver.errors import Cause, bad_request, conflict, invalid
from ...apiserver.meta import now
from ...apiserver.registration import Kind
from ...apiserver.resource import Resource
from ...apiserver.rest import Request, Response
from .image import IMAGE_GROUP_VERSION, image_object, keeps_list, import_mode_problem, store_image
from .imagestream import find_tag, record_tag_image, stream_or_new

log = logging.getLogger("osbs_local.images")

REPOSITORY_CHECK_ANNOTATION = "openshift.io/image.dockerRepositoryCheck"
INSECURE_ANNOTATION = "openshift.io/image.insecureRepository"

if TYPE_CHECKING:
    from ...apiserver.api import Api


def _image_status(code: int, reason: str, message: str, name: str) -> dict:
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": "dockerimage"},
        "code": code,
    }


def namespace_auths(api: Api, namespace: str) -> dict:
    """dockercfg-shaped credentials from the namespace's docker secrets, plus the integrated registry's."""
    auths = dict(api.registry_auths or {})
    for secret, _ in api.store.scan("secrets", namespace):
        if secret.get("type") in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
            try:
                auths.update(registry_client.auths_from_secret(secret))
            except registry_client.RegistryError:
                log.warning("secret %s/%s holds no valid docker config", namespace, secret["metadata"]["name"])
    return auths


def inspect(api: Api, namespace: str, reference: str, insecure: bool, auths: Optional[dict] = None,
            keep_list: bool = False) -> tuple[str, dict]:
    """(repository, inspect info) of a DockerImage reference; raises registry_client.RegistryError."""
    host, repository, ref = registry_client.split_image_reference(reference)
    client = registry_client.RegistryClient(
        host, auths if auths is not None else namespace_auths(api, namespace), api.registry_ca, insecure=insecure
    )
    return f"{host}/{repository}", client.inspect(repository, ref, keep_list=keep_list)


def import_images(api: Api, namespace: str, body: dict, dry_run=None) -> dict:
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
        problem = import_mode_problem((image or {}).get("importPolicy"))
        if problem:
            causes.append(Cause(f"spec.images[{index}].importPolicy.importMode", "FieldValueInvalid", problem))
    if not images and not spec.get("repository"):
        causes.append(Cause("spec", "FieldValueRequired", "you must specify at least one image or a repository import"))
    if causes:
        raise invalid("ImageStreamImport.image.openshift.io", name or "", causes, "image.openshift.io", "ImageStreamImport")
    api.require_namespace(namespace)
    importing = bool(spec.get("import"))
    body_rv = (body.get("metadata") or {}).get("resourceVersion")
    stream = api.store.peek("imagestreams", namespace, name)
    if importing and body_rv and stream is not None and body_rv != stream["metadata"]["resourceVersion"]:
        raise conflict(registration.resource("imagestreams"), name)
    auths = namespace_auths(api, namespace)
    results, changes = [], []
    for image_spec in images:
        from_name = image_spec["from"]["name"]
        policy = image_spec.get("importPolicy") or {}
        result, image, children = _import_one(api, namespace, from_name, bool(policy.get("insecure")), auths,
                                              bool(image_spec.get("includeManifest")), store=importing and not dry,
                                              keep_list=keeps_list(policy))
        _, _, reference = registry_client.split_image_reference(from_name)
        to = (image_spec.get("to") or {}).get("name") or ("" if reference.startswith("sha256:") else reference)
        entry = {"status": result}
        if image is not None:
            entry["image"] = image
        if children:
            entry["manifests"] = children
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
        status["import"] = _write_import(api, namespace, name, changes, set_spec=True, dry=dry)
    elif importing:
        status["import"] = api.store.get("imagestreams", namespace, name)
    return {
        "kind": "ImageStreamImport",
        "apiVersion": IMAGE_GROUP_VERSION,
        "metadata": {**(body.get("metadata") or {}), "namespace": namespace, "creationTimestamp": now()},
        "spec": spec,
        "status": status,
    }


def _import_one(api: Api, namespace: str, reference: str, insecure: bool, auths: dict, include_manifest: bool,
                store: bool = True, keep_list: bool = False):
    """(status, Image or None, child Images) for one reference; store=False for a preview (import: false).

    keep_list (PreserveOriginal): a manifest list becomes an Image of its own digest, and its children are
    imported as Images too (OpenShift's importSubManifests); otherwise a list gives one platform's Image.
    """
    try:
        repository, info = inspect(api, namespace, reference, insecure, auths, keep_list=keep_list)
        children = [inspect(api, namespace, f"{repository}@{child['digest']}", insecure, auths)
                    for child in info["manifests"]]
    except registry_client.RegistryError as error:
        log.info("import of %s failed: %s %s", reference, error.code, error.reason)
        return _image_status(error.code, error.reason, str(error), reference), None, []
    except ValueError as error:
        return _image_status(400, "BadRequest", str(error), reference), None, []
    image = image_object(repository, info, include_manifest)
    child_images = [image_object(child_repository, child_info) for child_repository, child_info in children]
    if store:
        for child in child_images:
            store_image(api, child)
        store_image(api, image_object(repository, info))
    return {"metadata": {}, "status": "Success"}, image, child_images


def _write_import(api: Api, namespace: str, name: str, changes: list, set_spec: bool, dry: bool = False,
                  resource_version: str | None = None) -> dict:
    """Record imported images (or failures) in the stream's tags; create the stream when missing.

    resource_version: the stream as the import read it; another write since is a 409, as openshift-apiserver's
    update of the stream it read (rest.go Create), so an import never records an old `from`'s image under a
    spec tag changed meanwhile."""
    streams = registration.resource("imagestreams")
    with api.store.lock:
        stream = stream_or_new(api, namespace, name, dry)
        if resource_version is not None and stream["metadata"].get("resourceVersion") != resource_version:
            raise conflict(streams, name)
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
                condition = {
                    "type": "ImportSuccess", "status": "False", "lastTransitionTime": now(),
                    "reason": result.get("reason", ""), "message": result.get("message") or "unknown error prevented import",
                    "generation": generation,
                }
                # The same failure again is no transition: the condition stays, nothing is written (OAS
                # setFailureCondition / hasTagCondition: type, status, reason and message, not generation or time).
                if not any(all(existing.get(key) == condition[key] for key in ("type", "status", "reason", "message"))
                           for existing in status_tag.get("conditions") or []):
                    status_tag["conditions"] = [condition]
        annotations = stream["metadata"].get("annotations") or {}
        if any((spec.get("importPolicy") or {}).get("insecure") for _, _, spec, _, _ in changes):
            annotations[INSECURE_ANNOTATION] = "true"
        stream["metadata"]["annotations"] = annotations
        # An import that finds what the stream holds already writes nothing, not even the check time (openshift-apiserver
        # imagestreamimport rest.go Create: `hasAnnotation && !hasChanges`): a scheduled import every interval would
        # otherwise write every scheduled stream and wake every watcher.
        if stream != old or REPOSITORY_CHECK_ANNOTATION not in annotations:
            annotations[REPOSITORY_CHECK_ANNOTATION] = now()
        return api.update_prepared(streams, old, stream, "import", dry=dry)


def import_spec_tags(api: Api, namespace: str, name: str, tag_names: list[str]) -> None:
    """Import the DockerImage `from` of the named spec tags (what OCM's image stream controller does)."""
    stream = api.store.get("imagestreams", namespace, name)
    if stream is None:
        return
    read_as = stream["metadata"].get("resourceVersion")
    auths = namespace_auths(api, namespace)
    changes = []
    for tag_name in tag_names:
        spec_tag = find_tag(stream["spec"].get("tags"), "name", tag_name)
        if not spec_tag or (spec_tag.get("from") or {}).get("kind") != "DockerImage":
            continue
        policy = spec_tag.get("importPolicy") or {}
        result, image, _ = _import_one(api, namespace, spec_tag["from"]["name"], bool(policy.get("insecure")), auths,
                                       False, keep_list=keeps_list(policy))
        changes.append((tag_name, spec_tag["from"]["name"], spec_tag, result, image))
    if changes:
        _write_import(api, namespace, name, changes, set_spec=False, resource_version=read_as)


def record_pushed_image(api: Api, namespace: str, stream_name: str, tag: str, digest: str) -> None:
    """A build pushed to the integrated registry: make IMAGESTREAM:TAG point at the new image."""
    repository = f"{api.registry_host}/{namespace}/{stream_name}"
    _, info = inspect(api, namespace, f"{repository}@{digest}", False, api.registry_auths)
    record_tag_image(api, namespace, stream_name, tag, image_object(repository, info))


def _create(request: Request) -> Response:
    return Response(201, import_images(request.api, request.namespace, request.body, request.dry_run))


KIND = Kind(
    Resource("image.openshift.io", "imagestreamimports", "imagestreamimport", "ImageStreamImport", True,
             verbs=("create",), stored=False),
    handlers={("create", ""): _create},
)
