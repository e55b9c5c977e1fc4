# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 4 of the flow: what atomic-reactor's ImportImagePlugin did.

The built image is imported with an ImageStreamImport (`spec.import: true`,
which creates the ImageStream when it is missing), so the ImageStreamTag the
dependents' ImageChange triggers name moves to the new digest. The
dependents are the BuildConfigs whose ImageChange trigger names that tag.
"""

from __future__ import annotations

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import recorded_commit, recorded_repo_config_file
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import (
    imagestreamimport_body,
    imagestreamtag_for_image,
    import_outcome,
    parse_image_reference,
)


def split_imagestreamtag(istag):
    """`name:tag` -> (name, tag); a name without a tag means `latest`."""
    name, _sep, tag = istag.partition(":")
    if not name:
        raise OsbsFlowError("ImageStreamTag %r has no ImageStream name: give it as name:tag" % (istag,))
    return name, tag or "latest"


def image_repository(image):
    """`host/repo` of a pull spec by tag (what a build pushes to)."""
    ref = parse_image_reference(image)
    if ref.digest:
        raise OsbsFlowError(
            "image %r is a pull spec by digest: give the pull spec by tag the build pushed to (osbs_build's "
            "output_image) and the digest as expected_digest" % (image,)
        )
    if not ref.registry:
        raise OsbsFlowError(
            "image %r names no registry: give the pull spec the build pushed to, for example "
            "registry.example.com/app:latest" % (image,)
        )
    return "%s/%s" % (ref.registry, ref.repository)


def tag_digest(stream, tag):
    """The digest the stream's tag points at (its status items[0]), or None."""
    for status_tag in ((stream or {}).get("status") or {}).get("tags") or []:
        if status_tag.get("tag") == tag:
            items = status_tag.get("items") or []
            return items[0].get("image") if items else None
    return None


def _tag_reference(stream, tag):
    """The pull spec by digest of the stream's tag (its status items[0]), or None."""
    for status_tag in ((stream or {}).get("status") or {}).get("tags") or []:
        if status_tag.get("tag") == tag and status_tag.get("items"):
            return status_tag["items"][0].get("dockerImageReference")
    return None


def trigger_imagestreamtag(buildconfig, trigger):
    """(namespace, name:tag) the ImageChange trigger watches, or None.

    A trigger without `from` watches the docker strategy's `from`, which must
    then be an ImageStreamTag (otherwise OpenShift drops the trigger).
    """
    if trigger.get("type") != "ImageChange":
        return None
    source = (trigger.get("imageChange") or {}).get("from")
    if not source:
        source = ((buildconfig.get("spec", {}).get("strategy") or {}).get("dockerStrategy") or {}).get("from") or {}
    if source.get("kind") != "ImageStreamTag" or not source.get("name"):
        return None
    name, tag = split_imagestreamtag(source["name"])
    return source.get("namespace") or buildconfig["metadata"]["namespace"], "%s:%s" % (name, tag)


def output_imagestreamtag(buildconfig):
    """(namespace, name:tag) that tracks the image the BuildConfig builds, or None.

    A DockerImage output is imported (by reactor_import_image) into the
    BuildConfig's namespace under imagestreamtag_for_image of its pull spec.
    """
    to = (buildconfig.get("spec", {}).get("output") or {}).get("to") or {}
    namespace = buildconfig["metadata"]["namespace"]
    if to.get("kind") == "DockerImage" and to.get("name"):
        try:
            return namespace, imagestreamtag_for_image(to["name"])
        except OsbsFlowError:
            return None
    if to.get("kind") == "ImageStreamTag" and to.get("name"):
        name, tag = split_imagestreamtag(to["name"])
        return to.get("namespace") or namespace, "%s:%s" % (name, tag)
    return None


def describe_dependent(buildconfig, trigger):
    """What the module returns about a dependent BuildConfig."""
    spec = buildconfig.get("spec") or {}
    git = (spec.get("source") or {}).get("git") or {}
    to = (spec.get("output") or {}).get("to") or {}
    return {
        "name": buildconfig["metadata"]["name"],
        "namespace": buildconfig["metadata"]["namespace"],
        "git_uri": git.get("uri"),
        "git_branch": git.get("ref"),
        "git_commit": recorded_commit(buildconfig),
        "repo_config_file": recorded_repo_config_file(buildconfig),
        "output_image": to.get("name"),
        "trigger": trigger,
    }


def triggers_on(buildconfig, namespace, istag):
    """The first ImageChange trigger of the BuildConfig that watches namespace/istag, or None."""
    for trigger in buildconfig.get("spec", {}).get("triggers") or []:
        if trigger_imagestreamtag(buildconfig, trigger) == (namespace, istag):
            return trigger
    return None


def find_dependents(buildconfigs, namespace, istag):
    """Dependents (describe_dependent) of namespace/istag among the BuildConfigs, sorted by namespace and name."""
    found = []
    for bc in buildconfigs:
        trigger = triggers_on(bc, namespace, istag)
        if trigger is not None:
            found.append(describe_dependent(bc, trigger))
    return sorted(found, key=lambda d: (d["namespace"], d["name"]))


def list_buildconfigs(client, namespaces):
    items = []
    for namespace in namespaces:
        items.extend(client.list("BuildConfig", namespace)["items"])
    return items


class ImageImporter:
    """Imports one image into its ImageStreamTag; usable from a module or from the wave's threads."""

    def __init__(self, client, check_mode=False):
        self.client = client
        self.check_mode = check_mode

    def run(self, namespace, image, expected_digest=None, insecure=False, istag=None):
        """Import `image` (a pull spec by tag) into its ImageStreamTag; return the result dict.

        changed is True when the tag moved to another digest (or the stream
        was created). A tag already at the expected digest is left as it is,
        with no request that writes. Otherwise the registry's tag is checked
        first (a preview stores nothing): a digest other than the expected one
        is an OsbsFlowError and nothing moves; then exactly the expected digest
        is imported (by digest, so a push in between cannot slip in).
        """
        istag = istag or imagestreamtag_for_image(image)
        name, tag = split_imagestreamtag(istag)
        stream = self.client.get("ImageStream", namespace, name)
        before = tag_digest(stream, tag)
        if expected_digest and before == expected_digest:
            return self._result(False, False, namespace, name, tag, before, before, _tag_reference(stream, tag), image)

        source = image
        if expected_digest or self.check_mode:
            preview = self._import(namespace, name, tag, image, insecure, store=False)
            digest, pull_spec = import_outcome(preview, image)
            self._check_expected(namespace, istag, image, digest, expected_digest)
            source = "%s@%s" % (image_repository(image), digest)
        if not self.check_mode:
            # import: true creates the stream when it is missing (OpenShift and osbs-local alike).
            response = self._import(namespace, name, tag, source, insecure, store=True)
            digest, pull_spec = import_outcome(response, source)
            self._check_expected(namespace, istag, image, digest, expected_digest)
        created = stream is None
        return self._result(created or digest != before, created, namespace, name, tag, digest, before, pull_spec, image)

    @staticmethod
    def _result(changed, created, namespace, name, tag, digest, before, pull_spec, image):
        return {
            "changed": changed,
            "created": created,
            "namespace": namespace,
            "imagestream": name,
            "tag": tag,
            "imagestreamtag": "%s:%s" % (name, tag),
            "digest": digest,
            "previous_digest": before,
            "image_reference": pull_spec,
            "image": image,
        }

    def _import(self, namespace, name, tag, image, insecure, store):
        return self.client.request(
            "POST", self.client.path("ImageStreamImport", namespace),
            body=imagestreamimport_body(namespace, name, tag, image, insecure, store),
        )

    @staticmethod
    def _check_expected(namespace, istag, image, digest, expected):
        if expected and digest != expected:
            raise OsbsFlowError(
                "the registry has %s at %s, not the expected digest %s: another push replaced the image "
                "the build made; ImageStreamTag %s/%s was not moved. Rebuild, or pass the digest now in the registry"
                % (image, digest, expected, namespace, istag)
            )


def run_import(module):
    """The reactor_import_image module."""
    params = module.params
    namespace = params["namespace"]
    result = ImageImporter(module.client, module.check_mode).run(
        namespace, params["image"], expected_digest=params["expected_digest"], insecure=params["insecure"],
    )
    namespaces = params["dependents_namespaces"] or [namespace]
    result["dependents"] = find_dependents(list_buildconfigs(module.client, namespaces), namespace, result["imagestreamtag"])
    if module._diff and result["changed"]:
        result["diff"] = {
            "before": {"imagestreamtag": "%s/%s" % (namespace, result["imagestreamtag"]), "digest": result["previous_digest"]},
            "after": {"imagestreamtag": "%s/%s" % (namespace, result["imagestreamtag"]), "digest": result["digest"]},
        }
    return result
