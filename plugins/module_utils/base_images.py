# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base images the flow does not build (a vendor's ubi9:latest): import a new one, and say where a wave is due.

OSBS left this to OpenShift: a scheduled import noticed the vendor's new image, the ImageChange triggers started
the dependents' builds. Here `rebuild_dependents` asks the same question on a schedule of its own (AWX, cron):

- the ImageStreamTags that track an external image are the ones the BuildConfigs' ImageChange triggers name whose
  spec tag imports that image (`from: DockerImage <image>`), in the namespaces given;
- what the registry holds now is learnt with a preview (an ImageStreamImport with `import: false`, which the
  server stores nothing for: openshift-apiserver imagestreamimport rest.go Create returns before any update), in
  the tag's own import mode, so it is compared with exactly what an import would store;
- a tag whose image moved is imported by tag, with the tag's own importPolicy (its `scheduled` flag and import
  mode kept: an import with `import: true` writes its importPolicy to the spec tag) and referencePolicy;
- a wave is due for a tag that moved now, or for one whose cascade is unfinished (`unfinished_cascade`): the
  cluster imported the new image by itself (importPolicy.scheduled) and its triggers started the first level.
"""

from __future__ import annotations

import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.images import import_outcome, parse_image_reference, spec_tag_import_body
from ansible_collections.osbs.flow.plugins.module_utils.import_image import dependents_graph
from ansible_collections.osbs.flow.plugins.module_utils.release import paused_for_start
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    build_base_digest,
    build_phase,
    build_summary,
    builds_of,
    digest_of,
    is_active,
    list_buildconfigs,
    output_imagestreamtag,
    split_imagestreamtag,
    tag_digest,
    trigger_imagestreamtag,
)
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import key_name

DOCKER_HUB = "docker.io"
_USER_INFO = re.compile(r"^[^/]*@")
FAILED_PHASES = ("Failed", "Error", "Cancelled")
REBUILD_FAILED = (
    "No wave reruns it by itself: read its log (oc logs build/NAME), fix the cause, then run the build playbook "
    "(osbs.flow.build) for its repository, which rebuilds it on this base and carries the wave on to its dependents"
)


def shown_image(image):
    """`image` as messages show it: user info (`user:password@registry/...`) masked."""
    if not isinstance(image, str):
        return image
    return mask_credentials("https://" + image)[len("https://"):]


def canonical_image(image, what="base_images entry"):
    """`registry/repository:tag` of a base image given by tag, as the registry (and OpenShift's importer) reads it.

    A name without a registry is Docker Hub's, and a one-component repository there is under `library/`
    (distribution/reference ParseNormalizedNamed); no tag means `latest`. A reference by digest is refused: that
    image never changes, so there is nothing to watch. The error names the value and the grammar's rule.
    """
    if isinstance(image, str) and _USER_INFO.match(image):
        raise OsbsFlowError(
            "%s %r holds credentials: give the image as registry/repository:tag; the cluster reads the registry "
            "with the namespace's pull secrets" % (what, shown_image(image))
        )
    try:
        ref = parse_image_reference(image)
    except OsbsFlowError as exc:
        raise OsbsFlowError("%s %r is not an image reference: %s" % (what, shown_image(image), exc)) from None
    if ref.digest:
        raise OsbsFlowError(
            "%s %r is pinned by digest, so it never changes and nothing depends on a newer image of it: give the "
            "tag the vendor moves (for example %s:latest)" % (what, image, ref.repository)
        )
    registry = ref.registry or DOCKER_HUB
    repository = ref.repository
    if registry in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = "library/" + repository
    return "%s/%s:%s" % (registry, repository, ref.tag or "latest")


def _tracked_image(spec_tag):
    """The canonical image a spec tag imports, or None (a tag of another stream, a digest, a reference tag)."""
    source = spec_tag.get("from") or {}
    if source.get("kind") != "DockerImage" or spec_tag.get("reference"):
        return None
    try:
        return canonical_image(source.get("name"))
    except OsbsFlowError:
        return None


def spec_tag_of(stream, tag):
    for spec_tag in ((stream or {}).get("spec") or {}).get("tags") or []:
        if spec_tag.get("name") == tag:
            return spec_tag
    return None


class TrackedTag:
    """One ImageStreamTag that imports an external base image, as read now."""

    def __init__(self, namespace, istag, stream, spec_tag):
        self.namespace = namespace
        self.istag = istag
        self.stream_name, self.tag = split_imagestreamtag(istag)
        self.stream = stream
        self.spec_tag = spec_tag

    @property
    def name(self):
        return "%s/%s" % (self.namespace, self.istag)

    @property
    def digest(self):
        return tag_digest(self.stream, self.tag)

    def import_body(self, store, scheduled=None):
        """The ImageStreamImport of the tag's own `from`, by tag, with its own policies (`scheduled` set when given)."""
        return spec_tag_import_body(self.namespace, self.stream_name, self.spec_tag, store, scheduled)


def tracking_tags(client, buildconfigs, image):
    """The TrackedTags importing the canonical `image` among those the BuildConfigs' ImageChange triggers name."""
    streams = {}
    found = {}
    for bc in buildconfigs:
        for trigger in bc.get("spec", {}).get("triggers") or []:
            watched = trigger_imagestreamtag(bc, trigger)
            if watched is None or watched in found:
                continue
            namespace, istag = watched
            stream_name, tag = split_imagestreamtag(istag)
            if (namespace, stream_name) not in streams:
                streams[(namespace, stream_name)] = client.get("ImageStream", namespace, stream_name)
            stream = streams[(namespace, stream_name)]
            spec_tag = spec_tag_of(stream, tag)
            if spec_tag and _tracked_image(spec_tag) == image:
                found[watched] = TrackedTag(namespace, istag, stream, spec_tag)
    return [found[key] for key in sorted(found)]


def recorded_trigger_image(buildconfig, watched):
    """The image (pull spec) the BuildConfig's ImageChange trigger on `watched` last fired for, or None."""
    namespace, istag = watched
    for entry in (buildconfig.get("status") or {}).get("imageChangeTriggers") or []:
        source = entry.get("from") or {}
        entry_tag = "%s:%s" % split_imagestreamtag(source["name"]) if source.get("name") else None
        if entry_tag == istag and (source.get("namespace") or buildconfig["metadata"]["namespace"]) == namespace:
            return entry.get("lastTriggeredImageID") or None
    for trigger in buildconfig.get("spec", {}).get("triggers") or []:
        if trigger_imagestreamtag(buildconfig, trigger) == watched:
            return (trigger.get("imageChange") or {}).get("lastTriggeredImageID") or None
    return None


def _opted_out(buildconfig, trigger):
    """A trigger paused by the repository's config (autorebuilds disabled: osbs_buildconfig pauses it) or by a
    person, not only while a build is being started: the wave skips such a dependent, so nothing is due for it."""
    return bool((trigger.get("imageChange") or {}).get("paused")) and not paused_for_start(buildconfig, trigger)


def unfinished_cascade(client, buildconfigs, root):
    """(why a wave is due, or None; the dependents whose build for the image their base names now failed).

    Read-only, and cheap enough for a schedule: the BuildConfigs (listed already), one list of builds per
    dependent and one read per ImageStream, over the wave's own graph (import_image.dependents_graph).
    A wave is due when some dependent, transitively:
    - has a build that has not ended (the cluster's trigger or another run started it);
    - has an ImageChange trigger that has not fired for the image its tag names now (no build was started for it);
    - has as its newest build a completed one whose image its ImageStreamTag does not name (the build ended,
      nobody imported its image, so its own dependents never saw it).
    A dependent whose triggers are paused outside a start window is finished: its repository disables
    autorebuilds (the wave skips it) or a person stopped them.
    A dependent none of whose builds from the image its base names now completed, the newest of them failed
    (Failed, Error or Cancelled), is listed in the second value by build: no wave is due for it, and it is not
    rebuilt by a schedule, which would rebuild a broken recipe every interval; the caller reports it as a failure
    on every run until a person rebuilds it (the build playbook), or the base moves again.
    """
    graph = dependents_graph(client, buildconfigs, root)
    streams = {}
    failures = []

    def current_digest(watched):
        namespace, istag = watched
        stream_name, tag = split_imagestreamtag(istag)
        if (namespace, stream_name) not in streams:
            streams[(namespace, stream_name)] = client.get("ImageStream", namespace, stream_name)
        return tag_digest(streams[(namespace, stream_name)], tag)

    for key in graph.order:
        bc = graph.nodes[key]
        name = key_name(key)
        builds = builds_of(client, key[0], key[1])
        active = [b["metadata"]["name"] for b in builds if is_active(b)]
        if active:
            return "BuildConfig %s has the build %s in progress" % (name, ", ".join(active)), failures
        watching = [(trigger, trigger_imagestreamtag(bc, trigger)) for trigger in bc.get("spec", {}).get("triggers") or []]
        watching = [(trigger, watched) for trigger, watched in watching if watched is not None]
        if watching and all(_opted_out(bc, trigger) for trigger, _watched in watching):
            continue
        current = set()
        for trigger, watched in watching:
            now = current_digest(watched)
            if not now or _opted_out(bc, trigger):
                continue
            current.add(now)
            if digest_of(recorded_trigger_image(bc, watched)) != now:
                return "the ImageChange trigger of BuildConfig %s has not fired for %s/%s at %s" % (
                    name, watched[0], watched[1], now), failures
        for_current = [b for b in builds if build_base_digest(b) in current]
        if for_current and build_phase(for_current[0]) in FAILED_PHASES and \
                not any(build_phase(b) == "Complete" for b in for_current):
            failures.append("build %s/%s of BuildConfig %s %s, built from %s (the image its base names now)" % (
                key[0], for_current[0]["metadata"]["name"], name, build_phase(for_current[0]),
                build_base_digest(for_current[0])))
        output = output_imagestreamtag(bc)
        built = build_summary(builds[0])["image_digest"] if builds and build_phase(builds[0]) == "Complete" else None
        if output and built and current_digest(output) != built:
            return "the image of build %s is not in %s/%s yet" % (builds[0]["metadata"]["name"], output[0], output[1]), failures
    return None, failures


def preview_digest(client, tracked):
    """The digest an import of the tag would store now (the tag's own import mode); OsbsFlowError on a failure."""
    answer = client.request("POST", client.path("ImageStreamImport", tracked.namespace), body=tracked.import_body(store=False))
    digest, _pull_spec = import_outcome(answer, "%s (for ImageStreamTag %s)" % (tracked.spec_tag["from"]["name"], tracked.name))
    return digest


def import_tracked(client, tracked, scheduled=None):
    """Import the tag's image by tag (the registry's newest), keeping its policies; the digest stored."""
    answer = client.request("POST", client.path("ImageStreamImport", tracked.namespace),
                            body=tracked.import_body(store=True, scheduled=scheduled))
    digest, _pull_spec = import_outcome(answer, "%s (for ImageStreamTag %s)" % (tracked.spec_tag["from"]["name"], tracked.name))
    return digest


def check_base_images(images):
    """The canonical form of every entry, in order and once each; the first bad entry is an OsbsFlowError."""
    if not images:
        raise OsbsFlowError("base_images is empty: give the external images to check, for example "
                            "[registry.example.com/ubi9:latest]")
    canonical = {}
    for image in images:
        canonical.setdefault(canonical_image(image), image)
    return canonical


def refresh_tag(client, tracked, buildconfigs, scheduled, check_mode):
    """Import the tag's image when the registry holds a new one (or its scheduled flag changes); its report row."""
    previous = tracked.digest
    newest = preview_digest(client, tracked)
    moved = newest != previous
    was_scheduled = bool((tracked.spec_tag.get("importPolicy") or {}).get("scheduled"))
    reschedule = scheduled is not None and was_scheduled != scheduled
    digest = newest
    if (moved or reschedule) and not check_mode:
        digest = import_tracked(client, tracked, scheduled)
    failures = []
    if moved and digest != previous:
        why = "the base image moved from %s to %s" % (previous or "nothing", digest)
    else:
        why, failures = unfinished_cascade(client, buildconfigs, (tracked.namespace, tracked.istag))
    if why:
        reason = "check mode: the wave would run: " + why if check_mode else why
    elif failures:
        reason = "failed: " + "; ".join(failures) + ". " + REBUILD_FAILED
    else:
        reason = "its dependents have their images"
    return {
        "imagestreamtag": tracked.name, "digest": digest, "previous_digest": previous, "moved": moved,
        "scheduled": scheduled if reschedule else was_scheduled,
        "changed": moved or reschedule, "was_scheduled": was_scheduled,
        "wave": bool(why) and not check_mode, "failed_builds": [] if why else failures,
        "reason": reason,
    }


def run_base_images(module):
    """The osbs_base_images module."""
    params = module.params
    client = module.client
    # Any user info in an image reference is a registry credential, a token alone too (no ':' to tell it apart).
    module.hide(*(_USER_INFO.match(image).group()[:-1] for image in params["base_images"] or []
                  if isinstance(image, str) and _USER_INFO.match(image)))
    wanted = check_base_images(params["base_images"])  # every entry checked before anything is read or written
    namespaces = params["namespaces"] or [params["namespace"]]
    buildconfigs = list_buildconfigs(client, namespaces)
    result = {"changed": False, "bases": [], "waves": [], "lines": [], "errors": [], "failed_builds": []}
    before, after = {}, {}
    for image, given in wanted.items():
        rows = []
        for tracked in tracking_tags(client, buildconfigs, image):
            try:
                row = refresh_tag(client, tracked, buildconfigs, params["scheduled_import"], module.check_mode)
            except OsbsFlowError as exc:  # ApiError included: one base image's registry, not the others'
                result["errors"].append("%s (ImageStreamTag %s): %s" % (shown_image(given), tracked.name, exc))
                rows.append({"imagestreamtag": tracked.name, "digest": tracked.digest, "previous_digest": tracked.digest,
                             "moved": False, "wave": False, "failed_builds": [], "reason": "failed: %s" % exc,
                             "scheduled": bool((tracked.spec_tag.get("importPolicy") or {}).get("scheduled"))})
                result["lines"].append("%s -> %s: failed: %s" % (shown_image(given), tracked.name, exc))
                continue
            if row.pop("changed"):
                result["changed"] = True
                before[row["imagestreamtag"]] = {"digest": row["previous_digest"], "scheduled": row["was_scheduled"]}
                after[row["imagestreamtag"]] = {"digest": row["digest"], "scheduled": row["scheduled"]}
            row.pop("was_scheduled")
            rows.append(row)
            result["failed_builds"].extend(row["failed_builds"])
            if row["wave"]:
                result["waves"].append({"namespace": tracked.namespace, "imagestreamtag": tracked.istag,
                                        "digest": row["digest"], "image": given, "reason": row["reason"]})
            new = " (new)" if row["moved"] else ""
            result["lines"].append("%s -> %s %s%s: %s" % (shown_image(given), row["imagestreamtag"], row["digest"] or "-", new, row["reason"]))
        if not rows:
            module.warn("no ImageStreamTag tracks base image %s: no ImageChange trigger of a BuildConfig in %s names a "
                        "tag that imports it, so nothing is rebuilt for it" % (shown_image(given), ", ".join(namespaces)))
            result["lines"].append("%s: no ImageStreamTag tracks it" % shown_image(given))
        result["bases"].append({"image": given, "canonical": image, "imagestreamtags": rows})
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    if result["errors"] and params["fail_on_error"]:
        raise OsbsFlowError("base images could not be checked: %s" % "; ".join(result["errors"]), **result)
    if result["failed_builds"] and params["fail_on_error"]:
        raise OsbsFlowError("dependents failed for the base image their tag names now: %s. %s" % (
            "; ".join(result["failed_builds"]), REBUILD_FAILED), **result)
    return result
