# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references and the ImageStreamTags that track them."""

from __future__ import annotations

import copy
import re
from collections import namedtuple

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

ImageReference = namedtuple("ImageReference", "registry repository tag digest")

# The docker reference grammar (distribution/reference), reduced to what we need.
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)  # Python's \w alone also matches letters such as ü
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
NAME_TOTAL_LENGTH_MAX = 255  # distribution/reference's NameTotalLengthMax: registry and repository together
NAME_RULES = ("lower-case letters and digits, one '.', '_', '__' or dashes between them, components separated by '/', "
              "at most %d characters with the registry" % NAME_TOTAL_LENGTH_MAX)
TAG_RULES = "up to 128 of [A-Za-z0-9_.-], beginning with a letter, a digit or '_'"


def repository_problem(name, registry=None):
    """Why `name` cannot be the repository path of an image pushed to `registry` (host[:port]), or None.

    The rules are distribution/reference's (the registry's and OpenShift's): the path components of its
    grammar, and the registry and the path together at most 255 characters. A tag or digest is no part of it.
    """
    if not isinstance(name, str) or not name:
        return "it is empty"
    full = "%s/%s" % (registry, name) if registry else name
    if len(full) > NAME_TOTAL_LENGTH_MAX:
        return "it is %d characters long%s, more than %d" % (
            len(full), " with the registry %s" % registry if registry else "", NAME_TOTAL_LENGTH_MAX)
    if "@" in name or ":" in name:
        return "it carries a tag or digest, which is given apart from the name"
    if name != name.lower():
        return "it has upper-case letters"
    for component in name.split("/"):
        if not component:
            return "it has an empty path component (a '/' at the start or end, or '//')"
        if not _PATH_COMPONENT.match(component):
            return "its path component %r is not lower-case letters and digits with single separators" % component
    return None


def check_repository(name, what, registry=None, fix=None):
    """`name` if it can be a repository (repository_problem), else an OsbsFlowError naming `what` and how to fix it."""
    problem = repository_problem(name, registry)
    if problem:
        raise OsbsFlowError("%s %r cannot be the name of an image repository: %s; %s (%s)"
                            % (what, name, problem, fix or "give a valid name", NAME_RULES))
    return name


def check_tag(tag, what):
    """`tag` if it is a valid image tag, else an OsbsFlowError."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise OsbsFlowError("%s %r is not a valid image tag: a tag is %s" % (what, tag, TAG_RULES))
    return tag


def parse_image_reference(image):
    """Split `[registry/]repo/path[:tag][@digest]` as docker does.

    The first component is a registry when it has a `.` or `:` or is `localhost`.
    """
    if not isinstance(image, str) or not image.strip():
        raise OsbsFlowError("image reference %r is empty: give an image such as registry.example.com/ns/base:1" % (image,))
    text = image.strip()
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise OsbsFlowError(
                "image reference %r has an invalid digest %r: a digest looks like sha256:<64 hex digits>" % (image, digest)
            )
    registry = None
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, text = first, rest
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.match(tag):
            raise OsbsFlowError("image reference %r has an invalid tag %r: tags are up to 128 of [A-Za-z0-9_.-]" % (image, tag))
    full_name = "%s/%s" % (registry, text) if registry else text
    if len(full_name) > NAME_TOTAL_LENGTH_MAX:
        raise OsbsFlowError("image reference %r has a name of %d characters: at most %d are allowed"
                            % (image, len(full_name), NAME_TOTAL_LENGTH_MAX))
    components = text.split("/")
    for component in components:
        if not _PATH_COMPONENT.match(component):
            raise OsbsFlowError(
                "image reference %r has an invalid repository component %r: use lower-case letters, digits and "
                "single separators (. _ -)" % (image, component)
            )
    return ImageReference(registry, text, tag, digest)


def imagestreamtag_for_image(image):
    """The ImageStreamTag (`name:tag`) that tracks `image` for ImageChange triggers.

    The registry host is dropped, `/` becomes `-`, and an untagged image tracks
    `:latest`. An image pinned by digest never changes, so nothing can track it:
    that is an OsbsFlowError, and callers build such images without an
    ImageChange trigger (no autorebuilds).
    """
    ref = parse_image_reference(image)
    if ref.digest:
        raise OsbsFlowError(
            "base image %r is pinned by digest, so no ImageStreamTag can track it and it cannot trigger "
            "autorebuilds: refer to it by tag (for example %s:latest) to enable autorebuilds" % (image, ref.repository)
        )
    return "%s:%s" % (ref.repository.replace("/", "-"), ref.tag or "latest")


def is_trackable(image):
    """True when `image` can be tracked by an ImageStreamTag (it is not pinned by digest, nor `scratch`)."""
    if image == "scratch":
        return False
    return parse_image_reference(image).digest is None


# OpenShift's import modes (TagImportPolicy.importMode): Legacy, the default, imports one platform's image of a
# manifest list and names it by that child's digest; PreserveOriginal keeps the list, named by the list's digest.
LEGACY = "Legacy"
PRESERVE_ORIGINAL = "PreserveOriginal"


def tag_import_policy(stream, tag):
    """The importPolicy of the stream's spec tag, or {}."""
    for spec_tag in ((stream or {}).get("spec") or {}).get("tags") or []:
        if spec_tag.get("name") == tag:
            return spec_tag.get("importPolicy") or {}
    return {}


def tag_import_mode(stream, tag):
    """The importMode of the stream's spec tag, or None when it has none (the server's default, Legacy, applies)."""
    return tag_import_policy(stream, tag).get("importMode") or None


def imagestreamimport_body(namespace, name, tag, image, insecure, store, import_mode=None, scheduled=False):
    """An ImageStreamImport of one image. import_mode is sent when given: an import with `import: true` writes
    its importPolicy to the spec tag, so the tag's own mode must be sent back or it would become Legacy.
    `scheduled`: the cluster re-imports the tag periodically (importPolicy.scheduled)."""
    import_policy = {"insecure": bool(insecure)}
    if import_mode:
        import_policy["importMode"] = import_mode
    if scheduled:
        import_policy["scheduled"] = True
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamImport",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "import": bool(store),
            "images": [{
                "from": {"kind": "DockerImage", "name": image},
                "to": {"name": tag},
                "importPolicy": import_policy,
                "referencePolicy": {"type": "Source"},
            }],
        },
        "status": {},
    }


def spec_tag_import_body(namespace, stream_name, spec_tag, store, scheduled=None):
    """The ImageStreamImport of a spec tag's own DockerImage `from` (by tag), with the tag's importPolicy and
    referencePolicy: an import with `import: true` writes its policies to the spec tag, so they are sent back as
    they are, `scheduled` set when given (as `oc tag --scheduled` and `oc import-image --scheduled` set it)."""
    import_policy = copy.deepcopy(spec_tag.get("importPolicy") or {})
    if scheduled is not None:
        import_policy["scheduled"] = bool(scheduled)
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamImport",
        "metadata": {"name": stream_name, "namespace": namespace},
        "spec": {
            "import": bool(store),
            "images": [{
                "from": {"kind": "DockerImage", "name": spec_tag["from"]["name"]},
                "to": {"name": spec_tag["name"]},
                "importPolicy": import_policy,
                "referencePolicy": copy.deepcopy(spec_tag.get("referencePolicy") or {"type": "Source"}),
            }],
        },
        "status": {},
    }


def import_outcome(response, image):
    """(digest, pull spec by digest) from an ImageStreamImport answer; OsbsFlowError on Failure."""
    images = (response.get("status") or {}).get("images") or []
    if not images:
        raise OsbsFlowError("the ImageStreamImport of %s came back without an image status" % image)
    entry = images[0]
    status = entry.get("status") or {}
    if status.get("status") != "Success":
        raise OsbsFlowError(
            "importing %s failed: %s (%s%s): check that the image was pushed and that the registry's "
            "credentials (a dockercfg secret in the namespace) and certificate are in place"
            % (image, status.get("message") or "no message", status.get("reason") or "no reason",
               ", HTTP %s" % status["code"] if status.get("code") else "")
        )
    found = entry.get("image") or {}
    return found.get("metadata", {}).get("name"), found.get("dockerImageReference")


def list_children(response):
    """The child digests of a manifest list an ImageStreamImport kept (PreserveOriginal); () for a single image."""
    images = (response.get("status") or {}).get("images") or [{}]
    found = images[0].get("image") or {}
    return tuple(child.get("digest") for child in found.get("dockerImageManifests") or [] if child.get("digest"))
