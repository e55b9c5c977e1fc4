# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 4 of the flow: what atomic-reactor's ImportImagePlugin did.

The built image is imported with an ImageStreamImport (`spec.import: true`,
which creates the ImageStream when it is missing), so the ImageStreamTag the
dependents' ImageChange triggers name moves to the new digest. The
dependents are the BuildConfigs whose ImageChange trigger names that tag.
"""

from __future__ import annotations

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import (
    PRESERVE_ORIGINAL,
    check_tag,
    imagestreamimport_body,
    imagestreamtag_for_image,
    import_outcome,
    list_children,
    parse_image_reference,
    tag_import_mode,
    tag_import_policy,
)
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    imagestreamtag_image,
    list_buildconfigs,
    recorded_branch,
    recorded_commit,
    recorded_repo_config_file,
    split_imagestreamtag,
    tag_digest,
    tag_event_reference,
    tag_reference,
    trigger_imagestreamtag,
)
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import build_graph


# The labels OpenShift's builder adds to every image it builds (openshift/builder common.go buildLabels).
BUILD_NAME_LABEL = "io.openshift.build.name"
BUILD_NAMESPACE_LABEL = "io.openshift.build.namespace"


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


def describe_dependent(buildconfig, trigger):
    """What the module returns about a dependent BuildConfig."""
    spec = buildconfig.get("spec") or {}
    git = (spec.get("source") or {}).get("git") or {}
    to = (spec.get("output") or {}).get("to") or {}
    return {
        "name": buildconfig["metadata"]["name"],
        "namespace": buildconfig["metadata"]["namespace"],
        "git_uri": git.get("uri"),
        "git_branch": recorded_branch(buildconfig),
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


def same_image(client, namespace, istag, tag_image, digest):
    """Whether `digest` names the image ImageStreamTag `istag` names (`tag_image`, its image), in either import mode.

    PreserveOriginal: the tag names a manifest list, and `digest` may be one of its children (the image's
    dockerImageManifests, which the ImageStreamTag carries). Legacy: the tag names the child of a list the server
    picked, and `digest` may be that list's, which only the registry knows: `digest` is previewed (an
    ImageStreamImport that stores nothing) in PreserveOriginal mode from the repository the tag's image was
    imported from (its tag event in the ImageStream's status, whatever the referencePolicy), and it is the same
    image only when it is a list with the tag's image among its children.
    """
    name = (tag_image.get("metadata") or {}).get("name")
    if not digest or not name:
        return False
    if digest == name:
        return True
    kept_children = [child.get("digest") for child in tag_image.get("dockerImageManifests") or []]
    if kept_children:
        return digest in kept_children
    stream_name, tag = split_imagestreamtag(istag)
    stream = client.get("ImageStream", namespace, stream_name)
    source = tag_event_reference(stream, tag, name)
    if not source:
        return False
    repository = source.split("@", 1)[0]
    insecure = bool((tag_import_policy(stream, tag)).get("insecure"))
    preview = client.request(
        "POST", client.path("ImageStreamImport", namespace),
        body=imagestreamimport_body(namespace, stream_name, tag, "%s@%s" % (repository, digest), insecure, store=False,
                                    import_mode=PRESERVE_ORIGINAL),
    )
    try:
        found, _pull_spec = import_outcome(preview, "%s@%s" % (repository, digest))
    except OsbsFlowError:
        return False  # not in the repository (or not readable): nothing shows it is the same image
    return found == digest and name in list_children(preview)


def tags_naming_same_image(client, namespace, istag):
    """The other ImageStreamTags of istag's stream that name the image istag names now, as (namespace, name:tag).

    The version and version-release tags osbs_image_tags gives a build's image are imported beside the tag the
    build pushed to: the new image is under each of them, and each may be the one a dependent's trigger names.
    """
    name, tag = split_imagestreamtag(istag)
    stream = client.get("ImageStream", namespace, name)
    digest = tag_digest(stream, tag)
    if not digest:
        return []
    others = {item.get("tag") for item in ((stream or {}).get("status") or {}).get("tags") or []}
    return sorted((namespace, "%s:%s" % (name, other)) for other in others
                  if other and other != tag and tag_digest(stream, other) == digest)


def tags_moving_with(client, namespace, istag):
    """The tags of istag's stream a rebuild of its image moves beside istag: those naming its image now, but its
    version-release tag (its `version` and `release` labels), which belongs to that one build."""
    image = imagestreamtag_image(client, namespace, istag) or {}
    labels = ((image.get("dockerImageMetadata") or {}).get("Config") or {}).get("Labels") or {}
    pinned = "%s:%s-%s" % (split_imagestreamtag(istag)[0], labels.get("version"), labels.get("release"))
    return [tag for tag in tags_naming_same_image(client, namespace, istag) if tag[1] != pinned]


def dependents_graph(client, buildconfigs, root):
    """The wave's graph of ImageStreamTag `root`: its dependents under any tag naming root's image now, and the
    version tags a rebuild moves beside each dependent's output. The wave and the check whether a wave is due
    (base_images.unfinished_cascade) use this one graph, so neither sees a dependent the other misses."""
    return build_graph(buildconfigs, root, also=tags_naming_same_image(client, *root),
                       moving_with=lambda _key, out: tags_moving_with(client, *out))


class ImageImporter:
    """Imports one image into its ImageStreamTag; usable from a module or from the wave's threads."""

    def __init__(self, client, check_mode=False):
        self.client = client
        self.check_mode = check_mode

    def run(self, namespace, image, expected_digest=None, insecure=False, istag=None, expected_build=None):
        """Import `image` (a pull spec by tag) into its ImageStreamTag; return the result dict.

        changed is True when the tag moved to another digest (or the stream
        was created). A tag already at the expected digest is left as it is,
        with no request that writes. Otherwise the registry's tag is checked
        first (a preview stores nothing): a digest other than the expected one
        is an OsbsFlowError and nothing moves; then exactly the expected digest
        is imported (by digest, so a push in between cannot slip in).

        The tag's importMode is kept. With an expected digest the preview keeps
        a manifest list (PreserveOriginal), since a push reports the list's
        digest; in Legacy mode the tag then names the child of the list that
        the server picks, and that child is what `digest` returns.

        `expected_build` (the Build's name, in `namespace`) verifies an image
        whose build completed without a digest (OpenShift's builder records one
        only when the push returned it): the image the registry's tag holds now
        must carry the labels the builder gives every image it builds,
        io.openshift.build.name and io.openshift.build.namespace, naming that
        build; otherwise another push moved the tag and nothing is imported.
        """
        istag = istag or imagestreamtag_for_image(image)
        name, tag = split_imagestreamtag(istag)
        stream = self.client.get("ImageStream", namespace, name)
        before = tag_digest(stream, tag)
        mode = tag_import_mode(stream, tag)
        children = ()
        if expected_digest and before == expected_digest:
            return self._result(False, False, namespace, name, tag, before, before, tag_reference(stream, tag), image,
                                "digest")

        source = image
        verified_by = "digest" if expected_digest else "build labels" if expected_build else None
        if verified_by or self.check_mode:
            preview = self._import(namespace, name, tag, image, insecure, store=False,
                                   mode=PRESERVE_ORIGINAL if expected_digest else mode)
            digest, pull_spec = import_outcome(preview, image)
            children = list_children(preview) if expected_digest else ()
            self._check_expected(namespace, istag, image, digest, expected_digest, children)
            if expected_digest in children:
                digest = expected_digest  # one platform of the list, asked for by its own digest
            if not expected_digest and expected_build:
                self._check_made_by(namespace, istag, image, digest, preview, expected_build)
            source = "%s@%s" % (image_repository(image), digest)
            if self.check_mode and children and mode != PRESERVE_ORIGINAL:
                # What a Legacy import of the list would name: the child the server picks.
                digest, pull_spec = import_outcome(
                    self._import(namespace, name, tag, source, insecure, store=False, mode=mode), source)
        if not self.check_mode:
            # import: true creates the stream when it is missing (OpenShift and osbs-local alike).
            response = self._import(namespace, name, tag, source, insecure, store=True, mode=mode)
            digest, pull_spec = import_outcome(response, source)
            self._check_expected(namespace, istag, image, digest, expected_digest, children)
        created = stream is None
        return self._result(created or digest != before, created, namespace, name, tag, digest, before, pull_spec, image,
                            verified_by)

    def run_with_tags(self, namespace, image, tags, expected_digest=None, insecure=False, expected_build=None):
        """`run` for `image`, then for each of `tags` in the same repository and ImageStream, checked against the
        digest expected (or the one the first import found): (the first result with `changed`, `imagestreamtags`
        and `moved_imagestreamtags` for all of them, [each result])."""
        for tag in tags or []:
            check_tag(tag, "tags item")  # all of them before the first import: a bad item writes nothing
        result = self.run(namespace, image, expected_digest=expected_digest, insecure=insecure, expected_build=expected_build)
        imported = [result]
        repository = image_repository(image)
        for tag in tags or []:
            if any(tag == other["tag"] for other in imported):
                continue
            imported.append(self.run(
                namespace, "%s:%s" % (repository, tag), expected_digest=expected_digest or result["digest"],
                insecure=insecure, istag="%s:%s" % (result["imagestream"], tag),
            ))
        result["moved_imagestreamtags"] = [one["imagestreamtag"] for one in imported if one["changed"]]
        result["imagestreamtags"] = [one["imagestreamtag"] for one in imported]
        result["changed"] = bool(result["moved_imagestreamtags"])
        return result, imported

    @staticmethod
    def _result(changed, created, namespace, name, tag, digest, before, pull_spec, image, verified_by):
        return {
            "verified_by": verified_by,
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

    def _import(self, namespace, name, tag, image, insecure, store, mode=None):
        return self.client.request(
            "POST", self.client.path("ImageStreamImport", namespace),
            body=imagestreamimport_body(namespace, name, tag, image, insecure, store, mode),
        )

    @staticmethod
    def _check_made_by(namespace, istag, image, digest, preview, build_name):
        found = ((preview.get("status") or {}).get("images") or [{}])[0].get("image") or {}
        labels = ((found.get("dockerImageMetadata") or {}).get("Config") or {}).get("Labels") or {}
        made_by = (labels.get(BUILD_NAMESPACE_LABEL), labels.get(BUILD_NAME_LABEL))
        if made_by != (namespace, build_name):
            raise OsbsFlowError(
                "build %s/%s completed without an image digest (status.output.to.imageDigest), and the image the "
                "registry has at %s now (%s) was not made by it: its labels %s and %s say %s; another push has "
                "replaced it. ImageStreamTag %s/%s was not moved. Rebuild, or pass the digest of the image to "
                "import as expected_digest"
                % (namespace, build_name, image, digest, BUILD_NAMESPACE_LABEL, BUILD_NAME_LABEL,
                   "%s/%s" % made_by if any(made_by) else "nothing (no such labels)", namespace, istag)
            )

    @staticmethod
    def _check_expected(namespace, istag, image, digest, expected, children=()):
        """digest is the expected image, or the expected digest and digest are a manifest list and one of its
        children (`children`, the list's child digests): the same image in another import mode."""
        if expected and digest != expected and expected not in children and digest not in children:
            raise OsbsFlowError(
                "the registry has %s at %s, not the expected digest %s: another push replaced the image "
                "the build made; ImageStreamTag %s/%s was not moved. Rebuild, or pass the digest now in the registry"
                % (image, digest, expected, namespace, istag)
            )


def run_import(module):
    """The reactor_import_image module."""
    params = module.params
    namespace = params["namespace"]
    result, imported = ImageImporter(module.client, module.check_mode).run_with_tags(
        namespace, params["image"], params["tags"], expected_digest=params["expected_digest"], insecure=params["insecure"],
        expected_build=params["expected_build"],
    )
    namespaces = params["dependents_namespaces"] or [namespace]
    buildconfigs = list_buildconfigs(module.client, namespaces)
    dependents = {}
    for istag in result["imagestreamtags"]:
        for dependent in find_dependents(buildconfigs, namespace, istag):
            dependents.setdefault((dependent["namespace"], dependent["name"]), dependent)
    result["dependents"] = [dependents[key] for key in sorted(dependents)]
    if module._diff and result["changed"]:
        result["diff"] = {
            side: {"imagestreamtag": "%s/%s" % (namespace, result["imagestreamtag"]), "digest": result[key],
                   "imagestreamtags": {"%s/%s" % (namespace, one["imagestreamtag"]): one[key] for one in imported}}
            for side, key in (("before", "previous_digest"), ("after", "digest"))
        }
    return result
