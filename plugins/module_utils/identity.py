# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every build's identity: its release number and the provenance labels in its image.

What atomic-reactor's bump_release and add_labels_in_df did inside the build, done
here through the one place a docker-strategy build takes labels from outside:
the BuildConfig's `spec.output.imageLabels`, which the builder appends as the
Dockerfile's last LABEL instruction (openshift/builder pkg/build/builder/common.go
buildLabels, docker.go appendLabel), so it overrides the Dockerfile's own. A
label the Dockerfile sets itself is therefore left out of imageLabels, as
add_labels_in_df kept the Dockerfile's labels.

The invariant: the BuildConfig's imageLabels always hold the identity of the
next build the cluster may start by itself (an autorebuild from its
ImageChange trigger), so that build gets a fresh release too. The flow's own
builds write their identity just before instantiate and move the BuildConfig
on to the next release right after (build.py's BuildRunner), both under the
BuildConfig's resourceVersion. The next free release is 1 + the highest
release of the BuildConfig's Builds for the same name and version, and never
below what the BuildConfig already holds (Builds are pruned; the BuildConfig's
number is not), so a run that died between instantiate and the move is
recovered by the next one. docs/identity.md says why.
"""

from __future__ import annotations

import copy
import datetime
import json
import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.image_tags import is_valid_tag

NAME_LABEL = "name"
VERSION_LABEL = "version"
RELEASE_LABEL = "release"
COMPONENT_LABEL = "com.redhat.component"
BUILD_HOST_LABEL = "com.redhat.build-host"
# The labels that change from build to build (or name where and how it was built): not part of a build's recipe.
IDENTITY_LABELS = (NAME_LABEL, VERSION_LABEL, RELEASE_LABEL, "vcs-type", "vcs-url", "vcs-ref", "build-date",
                   "architecture", BUILD_HOST_LABEL)
DOCKERFILE_LABELS_ANNOTATION = "osbs.flow/dockerfile-labels"
START_WINDOW_ANNOTATION = "osbs.flow/triggers-paused-for-start"
# The NVR of the image a Build of the flow makes, set through the BuildRequest's annotations (instantiate copies
# them onto the Build: OAS generator.go Instantiate mergeMaps): a release the Dockerfile sets is in no imageLabel.
NVR_ANNOTATION = "osbs.flow/nvr"
SCRATCH_RELEASE_PREFIX = "scratch"
_NUMBER = re.compile(r"^[0-9]+\Z")


def labels_of(output):
    """`spec.output.imageLabels` as a dict."""
    return {item.get("name"): item.get("value", "") for item in (output or {}).get("imageLabels") or []}


def without_identity(output):
    """`spec.output` without the identity labels (and without an imageLabels list left empty): the recipe part."""
    output = dict(output or {})
    kept = [item for item in output.pop("imageLabels", None) or [] if item.get("name") not in IDENTITY_LABELS]
    if kept:
        output["imageLabels"] = kept
    return output


def recorded_dockerfile_labels(buildconfig):
    """The labels the Dockerfile sets at the commit the BuildConfig records, or None when not recorded."""
    raw = ((buildconfig or {}).get("metadata", {}).get("annotations") or {}).get(DOCKERFILE_LABELS_ANNOTATION)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def dockerfile_labels_annotation(labels):
    return json.dumps({str(k): str(v) for k, v in (labels or {}).items()}, sort_keys=True)


def check_version_release(labels, where):
    """Refuse a Dockerfile `version` or `release` that cannot be part of an NVR, before anything is written: `-`
    separates name, version and release (Koji refused one in either), and `version-release` must be a tag.
    `where` names the Dockerfile (its commit)."""
    for label in (VERSION_LABEL, RELEASE_LABEL):
        value = (labels or {}).get(label)
        if value is not None and ("-" in value or not is_valid_tag(value)):
            raise OsbsFlowError(
                "the Dockerfile %s sets %s=%r, which cannot be part of an NVR (name-version-release) nor of its "
                "version-release tag: use letters, digits, '_' and '.' only (no '-', which separates the parts), "
                "for example %s=1.0" % (where, label, value, label))


def component_of(labels):
    """The component an NVR names: `com.redhat.component`, else the `name` label with `/` as `-` (OSBS's NVRs
    are Koji's, whose names have no `/`)."""
    return labels.get(COMPONENT_LABEL) or (labels.get(NAME_LABEL) or "").replace("/", "-")


def nvr(labels):
    """`component-version-release` of an image's labels; a part missing is left out; None without a release."""
    if not labels.get(RELEASE_LABEL) or not component_of(labels):
        return None
    return "-".join(part for part in (component_of(labels), labels.get(VERSION_LABEL), labels[RELEASE_LABEL]) if part)


def _same_product(labels, name, version):
    """Whether a build's imageLabels are of this name and version. A label the Dockerfile set is not in them,
    so a name or version a build's labels leave out counts as the same: numbers are never reused within a
    BuildConfig, and restart only where a build's labels show another version."""
    return (NAME_LABEL not in labels or labels[NAME_LABEL] == name) and \
        (VERSION_LABEL not in labels or (labels[VERSION_LABEL] or None) == (version or None))


def next_release(build_labels, buildconfig_labels, name, version, dockerfile_release=None):
    """The next free release for `name` and `version`.

    `build_labels`: the imageLabels of the BuildConfig's Builds (any phase: a failed build's release is spent,
    as OSBS never reused one); `buildconfig_labels`: the BuildConfig's imageLabels now (the release it holds
    for its next build is free unless a Build took it). Releases are numbers; a Dockerfile that sets its own
    `release` gets `<its release>.<n>` for autorebuilds (atomic-reactor's bump_release `append` mode).
    """
    def number(release):
        if dockerfile_release:
            prefix = dockerfile_release + "."
            if release and release.startswith(prefix) and _NUMBER.match(release[len(prefix):]):
                return int(release[len(prefix):])
            return None
        return int(release) if release and _NUMBER.match(release) else None

    used = [number(labels.get(RELEASE_LABEL)) for labels in build_labels if _same_product(labels, name, version)]
    used = [n for n in used if n is not None]
    candidate = max(used) + 1 if used else 1
    held = number(buildconfig_labels.get(RELEASE_LABEL)) if _same_product(buildconfig_labels, name, version) else None
    if held is not None and held > candidate:
        candidate = held
    return "%s.%d" % (dockerfile_release, candidate) if dockerfile_release else str(candidate)


def public_git_url(uri):
    """The repository URI for a public image label: a URL's user part (user, token or password) left out, not
    masked; an scp-like `user@host:path` holds no password and is kept; anything else masked."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://)(?:[^/?#]*@)?(.*)$", uri or "", flags=re.I | re.S)
    return match.group(1) + match.group(2) if match else mask_credentials(uri or "")


def build_host(api_url):
    """The cluster that builds, named by its API server's host[:port] (com.redhat.build-host named the builder
    node; a build's node is not known before it runs, the cluster is)."""
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", mask_credentials(api_url or ""), flags=re.I).split("/", 1)[0]
    return host.rsplit("@", 1)[-1] or None


def identity_labels(buildconfig, dockerfile_labels, commit, release, api_url, architecture=None, now=None):
    """The imageLabels that give a build its identity, as a dict; labels the Dockerfile sets are left out.

    `release` is written even when the Dockerfile sets one only if it differs from the Dockerfile's (an
    autorebuild's `<release>.<n>`). `dockerfile_labels` None (not recorded) is taken as a Dockerfile that
    sets only `name`, the one label the flow requires (its repository is the output image's).
    """
    git = ((buildconfig.get("spec") or {}).get("source") or {}).get("git") or {}
    own = dict(dockerfile_labels or {})
    if dockerfile_labels is None:
        own[NAME_LABEL] = output_repository(buildconfig)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    wanted = {
        NAME_LABEL: own.get(NAME_LABEL),
        VERSION_LABEL: own.get(VERSION_LABEL),
        RELEASE_LABEL: release,
        "vcs-type": "git",
        "vcs-url": public_git_url(git.get("uri")),
        "vcs-ref": commit,
        "build-date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "architecture": architecture,
        BUILD_HOST_LABEL: build_host(api_url),
    }
    labels = {}
    for key, value in wanted.items():
        if value and (key not in own or (key == RELEASE_LABEL and own[key] != value)):
            labels[key] = str(value)
    return labels


def output_repository(buildconfig):
    """The repository path of the BuildConfig's DockerImage output (host and tag left out), or None."""
    to = ((buildconfig.get("spec") or {}).get("output") or {}).get("to") or {}
    name = to.get("name") or ""
    if to.get("kind") != "DockerImage" or "/" not in name:
        return None
    path = name.split("@", 1)[0].split("/", 1)[1]
    return path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path


def image_identity(buildconfig, dockerfile_labels, identity):
    """The full labels the image will carry that make its NVR: the Dockerfile's, overridden by `identity`."""
    labels = dict(dockerfile_labels or {})
    if dockerfile_labels is None:
        labels[NAME_LABEL] = output_repository(buildconfig)
    labels.update(identity)
    return labels


def with_image_labels(buildconfig, identity):
    """A copy of the BuildConfig whose imageLabels are its own non-identity labels followed by `identity`."""
    changed = copy.deepcopy(buildconfig)
    output = changed.setdefault("spec", {}).setdefault("output", {})
    kept = [item for item in output.get("imageLabels") or [] if item.get("name") not in IDENTITY_LABELS]
    labels = kept + [{"name": key, "value": identity[key]} for key in sorted(identity)]
    if labels:
        output["imageLabels"] = labels
    else:
        output.pop("imageLabels", None)
    return changed
