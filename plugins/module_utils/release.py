# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BuildConfig writes around each instantiate that give every build its own release.

Before: one write under the BuildConfig's resourceVersion gives it this build's
identity (identity.py) in `spec.output.imageLabels`, the commit it builds as
`spec.source.git.ref` (the one commit rule, docs/identity.md), and pauses its
ImageChange triggers, so the cluster cannot start a build with the same
release while ours is being instantiated. After: the BuildConfig moves on to
the next release (the identity of the next build the cluster may start by
itself) and the triggers are unpaused. Which triggers were paused is kept in an
annotation, so a run that died inside the window is undone by the next one.
"""

from __future__ import annotations

import copy
import datetime
import json
import uuid

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.identity import (
    DOCKERFILE_LABELS_ANNOTATION,
    IDENTITY_LABELS,
    NAME_LABEL,
    NVR_ANNOTATION,
    RELEASE_LABEL,
    START_WINDOW_ANNOTATION,
    VERSION_LABEL,
    dockerfile_labels_annotation,
    identity_labels,
    image_identity,
    labels_of,
    next_release,
    nvr,
    recorded_dockerfile_labels,
    with_image_labels,
)
from ansible_collections.osbs.flow.plugins.module_utils.openshift import retry_on_conflict
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    AUTOREBUILD_LABEL,
    BUMP_RELEASE_ANNOTATION,
    UNSUCCESSFUL_BUILD_PHASES,
    build_commit,
    build_number,
    build_phase,
    builds_of,
    output_imagestreamtag,
    recorded_commit,
)

# A start window older than this was left by a run that died: the next run closes it.
STALE_WINDOW_SECONDS = 120


def _annotations(buildconfig):
    metadata = buildconfig.setdefault("metadata", {})
    metadata["annotations"] = metadata.get("annotations") or {}
    return metadata["annotations"]


def _trigger_key(trigger):
    return ((trigger.get("imageChange") or {}).get("from") or {}).get("name") or ""


def _window(buildconfig):
    raw = ((buildconfig.get("metadata") or {}).get("annotations") or {}).get(START_WINDOW_ANNOTATION)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return {"paused": [], "since": ""}
    return value if isinstance(value, dict) else None


def paused_for_start(buildconfig, trigger):
    """Whether the ImageChange trigger is paused only while a build is being started (the start window), and
    so is unpaused once it is; any other pause is the repository's (autorebuilds disabled) or a person's."""
    window = _window(buildconfig)
    return bool(window) and _trigger_key(trigger) in (window.get("paused") or [])


class WindowTaken(Exception):
    """Another run's start window is open and younger than STALE_WINDOW_SECONDS: it is starting a build now."""

    def __init__(self, namespace, name, window):
        super().__init__("BuildConfig %s/%s is in another run's start window (run %s, since %s): a build of it is "
                         "being started" % (namespace, name, window.get("run") or "unknown", window.get("since") or "?"))


def window_is_stale(buildconfig, now=None):
    window = _window(buildconfig)
    if window is None:
        return False
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        since = datetime.datetime.strptime(window.get("since") or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return True
    return (now - since).total_seconds() > STALE_WINDOW_SECONDS


def build_image_labels(builds):
    return [labels_of((build.get("spec") or {}).get("output")) for build in builds]


class ReleaseKeeper:
    """The identity writes of one BuildConfig; `dockerfile_labels` the Dockerfile's labels at the commit a user
    build is for (None: the ones the BuildConfig records, when it is the same commit)."""

    def __init__(self, client, namespace, name, dockerfile_labels=None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.dockerfile_labels = dockerfile_labels
        # Written into the start window: the window is this run's lease, which no other run overwrites or closes.
        self.run_id = uuid.uuid4().hex

    def foreign_window(self, buildconfig):
        """Another run's start window that is still live (not stale), or None."""
        window = _window(buildconfig)
        if window is None or window.get("run") == self.run_id or window_is_stale(buildconfig):
            return None
        return window

    def dockerfile_labels_for(self, buildconfig, commit):
        if self.dockerfile_labels is not None:
            return dict(self.dockerfile_labels)
        if commit is None or commit == recorded_commit(buildconfig):
            return recorded_dockerfile_labels(buildconfig)
        return None

    def released_tags(self, buildconfig):
        """(ImageStream `namespace/name`, its tag names) of the ImageStream the BuildConfig's image is imported
        into: the flow's import, as OSBS's import_image did, keeps each `version-release` tag there, whichever
        BuildConfig (an osbs-client one adopted, one made again, another branch's) built it. (None, []) without one."""
        where = output_imagestreamtag(buildconfig)
        if where is None:
            return None, []
        namespace, name = where[0], where[1].split(":", 1)[0]
        stream = self.client.get("ImageStream", namespace, name) or {}
        tags = [tag.get("name") for tag in (stream.get("spec") or {}).get("tags") or []]
        tags += [tag.get("tag") for tag in (stream.get("status") or {}).get("tags") or []]
        return "%s/%s" % (namespace, name), [tag for tag in dict.fromkeys(tags) if tag]

    def nvr_of(self, buildconfig, commit, identity):
        """The NVR the build of `commit` with these identity labels makes (recorded on its Build at instantiate)."""
        return nvr(image_identity(buildconfig, self.dockerfile_labels_for(buildconfig, commit), identity))

    def refuse_used_release(self, buildconfig, builds, commit):
        """A user build whose Dockerfile sets its own release is refused when a Build of the BuildConfig already
        made that NVR, as atomic-reactor's bump_release refused it ("build already exists in Koji",
        check_build_existence_for_explicit_release); a Failed, Error or Cancelled one pushed nothing, so its NVR
        is free again (as Koji's failed and cancelled builds were). Called before anything is written."""
        own = image_identity(buildconfig, self.dockerfile_labels_for(buildconfig, commit), {})
        if not own.get(RELEASE_LABEL):
            return
        wanted = nvr(own)
        stream, tags = self.released_tags(buildconfig)
        tag = "%s-%s" % (own[VERSION_LABEL], own[RELEASE_LABEL]) if own.get(VERSION_LABEL) else None
        if tag and tag in tags:
            raise OsbsFlowError(
                "the Dockerfile at commit %s sets release %s, and the ImageStream %s already has %s:%s, an image of "
                "%s: an NVR is never built twice; bump the release label in the Dockerfile (or remove it, and the "
                "flow numbers the builds)" % (commit, own[RELEASE_LABEL], stream, stream.split("/", 1)[1], tag, wanted))
        for build in builds:
            if build_phase(build) not in UNSUCCESSFUL_BUILD_PHASES and build_nvr(build, buildconfig) == wanted:
                raise OsbsFlowError(
                    "the Dockerfile at commit %s sets release %s, and Build %s/%s (%s) of BuildConfig %s already made "
                    "%s: an NVR is never built twice; bump the release label in the Dockerfile (or remove it, and "
                    "the flow numbers the builds)" % (commit, own[RELEASE_LABEL], self.namespace,
                                                      build["metadata"]["name"], build_phase(build) or "New", self.name,
                                                      wanted))

    def identity(self, buildconfig, builds, commit, user_build, architecture, extra_build_labels=()):
        """The identity labels of the next build of `commit`: a user build keeps its Dockerfile's `release`,
        anything else gets the next free one."""
        dockerfile_labels = self.dockerfile_labels_for(buildconfig, commit)
        own = image_identity(buildconfig, dockerfile_labels, {})
        own_release = own.get(RELEASE_LABEL)
        if user_build and own_release:
            release = own_release
        else:
            held = labels_of(buildconfig["spec"].get("output"))
            used = build_image_labels(builds) + list(extra_build_labels) + \
                released_labels(self.released_tags(buildconfig)[1], own.get(VERSION_LABEL))
            if _newest_build_unlisted(buildconfig, builds):
                # Instantiate moves lastVersion before it creates the Build (OAS generator.go instantiate): a Build
                # not listed yet took what the BuildConfig holds.
                used.append(held)
            release = next_release(used, held, own.get(NAME_LABEL), own.get(VERSION_LABEL), dockerfile_release=own_release)
        return identity_labels(buildconfig, dockerfile_labels, commit, release, self.client.host, architecture)

    def prepare(self, buildconfig, builds, commit, user_build, architecture):
        """The write before instantiate, under the BuildConfig's resourceVersion (409 when another run moved
        it: the caller reads again). Returns (the BuildConfig written, the identity labels of the build).
        Raises WindowTaken, writing nothing, while another run's start window is live: that run's instantiate
        copies the BuildConfig as it is then, so its identity and ref must stay until it settles."""
        taken = self.foreign_window(buildconfig)
        if taken is not None:
            raise WindowTaken(self.namespace, self.name, taken)
        identity = self.identity(buildconfig, builds, commit, user_build, architecture)
        new = with_image_labels(buildconfig, identity)
        annotations = _annotations(new)
        if commit:
            # The one commit rule: the BuildConfig builds the commit it records, the cluster's trigger included.
            new["spec"].setdefault("source", {}).setdefault("git", {})["ref"] = commit
            bump = json.loads(annotations.get(BUMP_RELEASE_ANNOTATION) or "{}")
            if bump.get("git_ref") != commit:
                bump["git_ref"] = commit
                annotations[BUMP_RELEASE_ANNOTATION] = json.dumps(bump, sort_keys=True)
            labels = self.dockerfile_labels_for(buildconfig, commit)
            if labels is not None:
                annotations[DOCKERFILE_LABELS_ANNOTATION] = dockerfile_labels_annotation(labels)
            else:
                annotations.pop(DOCKERFILE_LABELS_ANNOTATION, None)
        window = _window(new) or {"paused": []}  # a stale one is taken over: its paused triggers are unpaused too
        window["paused"] = list(window.get("paused") or [])
        window["run"] = self.run_id
        for trigger in new["spec"].get("triggers") or []:
            if trigger.get("type") == "ImageChange" and not trigger["imageChange"].get("paused"):
                trigger["imageChange"]["paused"] = True
                window["paused"].append(_trigger_key(trigger))
        window["since"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        annotations[START_WINDOW_ANNOTATION] = json.dumps(window, sort_keys=True)
        if user_build:
            new["metadata"].setdefault("labels", {})[AUTOREBUILD_LABEL] = "false"
        return self.client.replace("BuildConfig", self.namespace, new), identity

    def settle(self, architecture, started=None, user_build=False):
        """The write after instantiate (or after it failed): the next build's identity, the paused triggers
        unpaused, and after a user build `is_autorebuild=true` (what CheckAndSetRebuildPlugin did: builds the
        cluster starts from now on are autorebuilds). `started`: the Build just made, which a list may not show yet."""
        def write():
            current = self.client.get("BuildConfig", self.namespace, self.name)
            if current is None:
                return None
            new = self.settled(current, architecture, started)
            if user_build and started is not None:
                new["metadata"].setdefault("labels", {})[AUTOREBUILD_LABEL] = "true"
            if new == current:
                return current
            return self.client.replace("BuildConfig", self.namespace, new)
        return retry_on_conflict(write)

    def settled(self, current, architecture, started=None):
        """`current` with the start window closed and the next free release in its imageLabels (a copy); `current`
        as it is while another run's start window is live (its build takes the identity it wrote)."""
        if self.foreign_window(current) is not None:
            return copy.deepcopy(current)
        builds = builds_of(self.client, self.namespace, self.name)
        extra = [labels_of((started.get("spec") or {}).get("output"))] if started else []
        commit = recorded_commit(current)
        held = labels_of(current["spec"].get("output"))
        identity = self.identity(current, builds, commit, False, architecture, extra)
        held_identity = {key: value for key, value in held.items() if key in IDENTITY_LABELS}
        if _without_date(held_identity) == _without_date(identity):
            identity = held_identity  # the next build is the same one: its date is not moved, nothing is written
        new = with_image_labels(current, identity)
        window = _window(new)
        if window is not None:
            paused = set(window.get("paused") or [])
            for trigger in new["spec"].get("triggers") or []:
                if trigger.get("type") == "ImageChange" and _trigger_key(trigger) in paused:
                    trigger["imageChange"].pop("paused", None)
            _annotations(new).pop(START_WINDOW_ANNOTATION, None)
        return new

    def ensure_next(self, buildconfig, architecture, check_mode=False):
        """When reusing or adopting a build: move the BuildConfig on if a Build holds its release (the cluster
        started one by itself) or a run died inside its start window. Writes nothing when neither is so, nor in check
        mode; returns `buildconfig` itself only when nothing is to be written."""
        settled = self.settled(buildconfig, architecture)
        if not self._needs_settling(buildconfig, settled):
            return buildconfig
        if check_mode:
            return settled  # what the write would make: osbs_build's `changed` is the real run's
        return self.settle(architecture)

    @staticmethod
    def _needs_settling(buildconfig, settled):
        held = labels_of(buildconfig["spec"].get("output"))
        wanted = labels_of(settled["spec"].get("output"))
        if held.get(RELEASE_LABEL) != wanted.get(RELEASE_LABEL):
            return True
        return _window(buildconfig) is not None and window_is_stale(buildconfig)


def released_labels(tags, version):
    """The `version-release` tags among `tags`, as the release labels of images already made of `version`
    (next_release keeps those its numbering reads: `N`, or `<Dockerfile release>.N`)."""
    if not version:
        return []
    prefix = version + "-"
    return [{RELEASE_LABEL: tag[len(prefix):]} for tag in tags if tag.startswith(prefix) and len(tag) > len(prefix)]


def build_nvr(build, buildconfig):
    """The NVR a Build makes: what the flow recorded on it at instantiate; for a Build the cluster started, its
    imageLabels over the Dockerfile labels the BuildConfig records when it is of that commit; else None."""
    recorded = ((build.get("metadata") or {}).get("annotations") or {}).get(NVR_ANNOTATION)
    if recorded:
        return recorded
    labels = labels_of((build.get("spec") or {}).get("output"))
    commit = build_commit(build)
    dockerfile_labels = recorded_dockerfile_labels(buildconfig) if commit and commit == recorded_commit(buildconfig) else None
    if dockerfile_labels is None and RELEASE_LABEL not in labels:
        return None
    return nvr(image_identity(buildconfig, dockerfile_labels, labels))


def _newest_build_unlisted(buildconfig, builds):
    """Whether the BuildConfig's lastVersion names a Build that `builds` does not show (being created, or deleted)."""
    last = ((buildconfig.get("status") or {}).get("lastVersion")) or 0
    return last > 0 and last not in {build_number(build) for build in builds}


def _without_date(labels):
    return {key: value for key, value in labels.items() if key != "build-date"}
