# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BuildConfigs, Builds and ImageStreams as every step of the flow reads them.

Pure functions over the API's dicts, and the few reads (and the cancel) that
take an OpenShiftClient. What osbs.flow records on a BuildConfig lives here too,
so steps 3, 4 and 6 read what step 2 (buildconfig.py) wrote without importing it:

- `osbs.flow/bump-release`: JSON `{"git_ref": "<commit>", "git_branch": "<branch>"}`,
  the commit the user build is from (what bump_release named);
- `osbs.flow/stop-autorebuild-if-disabled`: JSON `{"config_file": ".osbs-repo-config"}`,
  the file that enables or disables autorebuilds (what stop_autorebuild_if_disabled named);
- `osbs.flow/base-image`: the base image as the Dockerfile names it;
- the label `is_autorebuild`: whether the next build of the BuildConfig is an autorebuild.
"""

from __future__ import annotations

import json
import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import imagestreamtag_for_image
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import DEFAULT_REPO_CONFIG_FILE

AUTOREBUILD_LABEL = "is_autorebuild"
BUMP_RELEASE_ANNOTATION = "osbs.flow/bump-release"
STOP_AUTOREBUILD_ANNOTATION = "osbs.flow/stop-autorebuild-if-disabled"
BASE_IMAGE_ANNOTATION = "osbs.flow/base-image"
OUR_ANNOTATIONS = (BUMP_RELEASE_ANNOTATION, STOP_AUTOREBUILD_ANNOTATION, BASE_IMAGE_ANNOTATION)
BUILD_CONFIG_LABEL = "openshift.io/build-config.name"
DEPRECATED_BUILD_CONFIG_LABEL = "buildconfig"
LABEL_VALUE_MAX_LENGTH = 63
_COMMIT = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")

ACTIVE_BUILD_PHASES = ("New", "Pending", "Running")
TERMINAL_BUILD_PHASES = ("Complete", "Failed", "Error", "Cancelled")
UNSUCCESSFUL_BUILD_PHASES = ("Failed", "Error", "Cancelled")
LOG_TAIL_LINES = 30


# -- BuildConfig -----------------------------------------------------------------------------------

def _annotation_json(buildconfig, key):
    raw = ((buildconfig or {}).get("metadata", {}).get("annotations") or {}).get(key)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def recorded_commit(buildconfig):
    """The commit the BuildConfig's bump_release configuration names, or None."""
    return _annotation_json(buildconfig, BUMP_RELEASE_ANNOTATION).get("git_ref")


def recorded_branch(buildconfig):
    """The branch the BuildConfig builds: the bump-release annotation's, else its git ref when that is no commit,
    else its `git-branch` label (the ref is the recorded commit: the one commit rule, as osbs-client 0.30+ had it)."""
    branch = _annotation_json(buildconfig, BUMP_RELEASE_ANNOTATION).get("git_branch")
    ref = ((((buildconfig or {}).get("spec") or {}).get("source") or {}).get("git") or {}).get("ref")
    if branch:
        return branch
    if ref and not _COMMIT.match(ref):
        return ref
    return ((buildconfig or {}).get("metadata", {}).get("labels") or {}).get("git-branch") or ref


def recorded_repo_config_file(buildconfig):
    """The repo config file the stop_autorebuild_if_disabled configuration names."""
    return _annotation_json(buildconfig, STOP_AUTOREBUILD_ANNOTATION).get("config_file") or DEFAULT_REPO_CONFIG_FILE


def split_imagestreamtag(istag):
    """`name:tag` -> (name, tag); a name without a tag means `latest`."""
    name, _sep, tag = istag.partition(":")
    if not name:
        raise OsbsFlowError("ImageStreamTag %r has no ImageStream name: give it as name:tag" % (istag,))
    return name, tag or "latest"


def base_imagestreamtag(buildconfig):
    """(namespace, name) of the ImageStreamTag the docker strategy builds from, or None."""
    source = ((buildconfig["spec"].get("strategy") or {}).get("dockerStrategy") or {}).get("from") or {}
    if source.get("kind") == "ImageStreamTag":
        return source.get("namespace") or buildconfig["metadata"]["namespace"], source["name"]
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


def trigger_imagestreamtags(buildconfig):
    """Every (namespace, name:tag) an ImageChange trigger of the BuildConfig watches, paused or not."""
    tags = []
    for trigger in buildconfig.get("spec", {}).get("triggers") or []:
        tag = trigger_imagestreamtag(buildconfig, trigger)
        if tag and tag not in tags:
            tags.append(tag)
    return tags


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


# -- Build -----------------------------------------------------------------------------------------

def build_phase(build):
    return (build.get("status") or {}).get("phase", "New")


def is_active(build):
    return build_phase(build) in ACTIVE_BUILD_PHASES


def is_terminal(build):
    return build_phase(build) in TERMINAL_BUILD_PHASES


def build_number(build):
    annotations = build.get("metadata", {}).get("annotations") or {}
    number = annotations.get("openshift.io/build.number") or build["metadata"]["name"].rsplit("-", 1)[-1]
    return int(number) if str(number).isdigit() else 0


def describe_builds(builds):
    return ", ".join("%s (%s)" % (b["metadata"]["name"], build_phase(b)) for b in builds)


def digest_of(pull_spec):
    """`sha256:...` of a pull spec by digest, or None."""
    if pull_spec and "@" in pull_spec:
        return pull_spec.rsplit("@", 1)[1]
    return None


def build_base_digest(build):
    """The base image digest the build was (or is being) built from."""
    strategy = (build.get("spec", {}).get("strategy") or {}).get("dockerStrategy") or {}
    digest = digest_of((strategy.get("from") or {}).get("name"))
    if digest:
        return digest
    for cause in build.get("spec", {}).get("triggeredBy") or []:
        digest = digest_of((cause.get("imageChangeBuild") or {}).get("imageID"))
        if digest:
            return digest
    return None


def build_commit(build):
    """The commit built: the request's revision, or what the builder recorded once it cloned
    (OpenShift's builder writes spec.revision through builds/details; osbs-local also keeps status.revision)."""
    for part in ("spec", "status"):
        commit = (((build.get(part) or {}).get("revision") or {}).get("git") or {}).get("commit")
        if commit:
            return commit
    return None


def triggered_by_image_change(build):
    """Whether an ImageChange trigger (the cluster's, or an autorebuild naming one) started the build."""
    return any(cause.get("imageChangeBuild") for cause in build.get("spec", {}).get("triggeredBy") or [])


def build_summary(build):
    """What the module returns about a build."""
    status = build.get("status") or {}
    spec = build.get("spec") or {}
    digest = (((status.get("output") or {}).get("to")) or {}).get("imageDigest")
    output_name = ((spec.get("output") or {}).get("to") or {}).get("name") or ""
    repository = output_name.rsplit("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    duration = status.get("duration")
    return {
        "name": build["metadata"]["name"],
        "namespace": build["metadata"].get("namespace"),
        "phase": status.get("phase", "New"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "duration": round(duration / 1e9, 3) if duration else None,
        "image_digest": digest,
        "image_reference": "%s@%s" % (repository, digest) if digest and repository else None,
        "output_image": output_name,
        "git_commit": build_commit(build),
        "base_image_digest": build_base_digest(build),
        "triggered_by": spec.get("triggeredBy") or [],
        "autorebuild": (build["metadata"].get("labels") or {}).get(AUTOREBUILD_LABEL) == "true",
    }


def failure_message(build, tail, separator="\nEnd of the build log:\n"):
    """`Build ns/name Failed: Reason: message` and the end of its log."""
    summary = build_summary(build)
    message = "Build %s/%s %s: %s%s" % (
        summary["namespace"], summary["name"], summary["phase"], summary["reason"] or "no reason given",
        (": " + summary["message"]) if summary["message"] else "",
    )
    if tail:
        message += separator + tail.rstrip()
    return message


# -- ImageStream -----------------------------------------------------------------------------------

def _status_tag_item(stream, tag):
    """The newest item (status items[0]) of the stream's tag, or {}."""
    for status_tag in ((stream or {}).get("status") or {}).get("tags") or []:
        if status_tag.get("tag") == tag:
            items = status_tag.get("items") or []
            return items[0] if items else {}
    return {}


def tag_digest(stream, tag):
    """The digest the stream's tag points at (its status items[0]), or None."""
    return _status_tag_item(stream, tag).get("image")


def tag_event_reference(stream, tag, image):
    """The dockerImageReference of the stream's tag event for `image` (a digest): where it was imported from, or None."""
    for status_tag in ((stream or {}).get("status") or {}).get("tags") or []:
        if status_tag.get("tag") == tag:
            for item in status_tag.get("items") or []:
                if item.get("image") == image:
                    return item.get("dockerImageReference")
    return None


def tag_reference(stream, tag):
    """The pull spec by digest of the stream's tag (its status items[0]), or None."""
    return _status_tag_item(stream, tag).get("dockerImageReference")


# -- reads (and the cancel) through the client -----------------------------------------------------

def build_config_label_value(buildconfig_name):
    """The value OpenShift gives a Build's `openshift.io/build-config.name` label: the name shortened from the end
    until it is a valid label value, at most 63 characters (OAS buildgenerator/generator.go labelValue)."""
    for end in range(len(buildconfig_name), 0, -1):
        value = buildconfig_name[:end]
        if len(value) <= LABEL_VALUE_MAX_LENGTH and _LABEL_VALUE.match(value):
            return value
    return buildconfig_name


def build_config_of(build):
    """The full name of the build's BuildConfig: status.config, else the annotation (labels may be shortened)."""
    return ((build.get("status") or {}).get("config") or {}).get("name") or \
        (build["metadata"].get("annotations") or {}).get(BUILD_CONFIG_LABEL)


def builds_of(client, namespace, buildconfig_name):
    """Every build of the BuildConfig, newest first.

    Found as OpenShift's own clients find them: by `openshift.io/build-config.name` (and by the older
    `buildconfig` label that osbs-client's builds carry). A name longer than a label value is listed by
    its shortened value, which other BuildConfigs may share, so those builds are kept by their full
    BuildConfig name; a selector with the full name would be refused (400).
    """
    value = build_config_label_value(buildconfig_name)
    found = {}
    for label in (BUILD_CONFIG_LABEL, DEPRECATED_BUILD_CONFIG_LABEL):
        for build in client.list("Build", namespace, label_selector="%s=%s" % (label, value))["items"]:
            if value == buildconfig_name or build_config_of(build) == buildconfig_name:
                found[build["metadata"]["name"]] = build
    return sorted(found.values(), key=build_number, reverse=True)


def active_builds(client, namespace, buildconfig_name):
    """Builds of the BuildConfig that are New, Pending or Running, oldest first."""
    return [b for b in reversed(builds_of(client, namespace, buildconfig_name)) if is_active(b)]


def list_buildconfigs(client, namespaces):
    """Every BuildConfig of the namespaces (each namespace listed once)."""
    items = []
    for namespace in dict.fromkeys(namespaces):
        items.extend(client.list("BuildConfig", namespace)["items"])
    return items


def cancel_build(client, namespace, name):
    """Ask for the build to be cancelled (OpenShift's way: status.cancelled, the controller does the rest)."""
    client.merge_patch("Build", namespace, name, {"status": {"cancelled": True}})


def failed_build_log(client, build, lines=LOG_TAIL_LINES):
    """The end of a failed build's log: its logSnippet, or the log's last lines."""
    return build.get("status", {}).get("logSnippet") or client.log_tail(build["metadata"]["namespace"], build["metadata"]["name"], lines)


def imagestreamtag_image(client, namespace, istag):
    """The image object the ImageStreamTag resolves to now, or None (no tag, or a tag whose import has not finished)."""
    return (client.get("ImageStreamTag", namespace, istag) or {}).get("image") or None
