# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 3 of the flow: start a build of a BuildConfig, never twice, and follow it.

Two builds for one change are prevented twice over: a Complete build of the
same commit from the same base image digest is returned instead of starting
another, and the BuildRequest carries the BuildConfig's `lastVersion`, so of
two requests racing for the same version the server accepts one; the loser
re-reads, sees the winner's build and refuses, waits for it or adopts it.
"""

from __future__ import annotations

import re
import time

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import check_commit
from ansible_collections.osbs.flow.plugins.module_utils.identity import (
    NVR_ANNOTATION,
    check_version_release,
    image_identity,
    labels_of,
    nvr,
    recorded_dockerfile_labels,
    without_identity,
)
from ansible_collections.osbs.flow.plugins.module_utils.import_image import same_image
from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError
from ansible_collections.osbs.flow.plugins.module_utils.release import STALE_WINDOW_SECONDS, ReleaseKeeper, WindowTaken
from ansible_collections.osbs.flow.plugins.module_utils.scratch_build import UNIQUE_TAG_ANNOTATION, start_scratch
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    UNSUCCESSFUL_BUILD_PHASES,
    base_imagestreamtag,
    build_base_digest,
    build_commit,
    build_phase,
    build_summary,
    builds_of,
    cancel_build,
    describe_builds,
    failed_build_log,
    failure_message,
    imagestreamtag_image,
    is_active,
    is_terminal,
    recorded_commit,
)
from ansible_collections.osbs.flow.plugins.module_utils.waiter import wait_for_build, wait_for_no_active_builds, waiting_state

INSTANTIATE_ATTEMPTS = 5
# While another run is inside its start window (prepare .. settle, normally a second or two), wait this long
# before reading again, doubling each time: about a minute in all, then the run fails saying why.
WINDOW_WAIT_SECONDS = 2
WINDOW_WAITS = 5
_FULL_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")
BASE_IMAGE_WAIT_SECONDS = 60


def same_recipe(build, buildconfig):
    """Whether the build was made from the BuildConfig as it is now.

    Source, output and docker strategy are copied from the BuildConfig at
    instantiate; the strategy's `from` is resolved then (compared through the
    base digest instead), and a user build's request adds no env or build args.
    What the cluster fills in where the BuildConfig names nothing is not part of
    the recipe: the push secret (the build controller) and the pull secret
    (instantiate), both from the builder ServiceAccount's secrets. Nor are the identity labels
    (identity.py): each build has its own release and date, so they never match the BuildConfig's.
    """
    build_spec, bc_spec = build.get("spec") or {}, buildconfig.get("spec") or {}
    if (build_spec.get("source") or {}) != (bc_spec.get("source") or {}):
        return False
    if without_identity(_without_filled_secret(build_spec.get("output"), bc_spec.get("output"), "pushSecret")) \
            != without_identity(bc_spec.get("output")):
        return False
    build_strategy = (build_spec.get("strategy") or {}).get("dockerStrategy")
    bc_strategy = dict((bc_spec.get("strategy") or {}).get("dockerStrategy") or {})
    build_strategy = _without_filled_secret(build_strategy, bc_strategy, "pullSecret")
    build_strategy.pop("from", None)
    bc_strategy.pop("from", None)
    return build_strategy == bc_strategy


def _without_filled_secret(build_part, bc_part, field):
    """A copy of the Build's part without `field` when the BuildConfig's part has none (the cluster filled it in)."""
    part = dict(build_part or {})
    if not (bc_part or {}).get(field):
        part.pop(field, None)
    return part


def matching_build(builds, buildconfig, commit, base_digest, autorebuild):
    """The first of `builds` (newest first) that already does what was asked, or None.

    A user build matches a Complete build of the same commit and base
    digest made from the BuildConfig as it is now (same source, strategy
    and output). An autorebuild matches any build (active or Complete)
    from the same base digest of the commit it builds (the one commit rule;
    a build whose commit is not known yet counts): the cluster's trigger may
    have started it.
    """
    for build in builds:
        phase = build_phase(build)
        same_base = build_base_digest(build) == base_digest
        if autorebuild:
            built = _commit_of(build)
            if (base_digest and same_base and phase not in UNSUCCESSFUL_BUILD_PHASES
                    and (commit is None or built is None or built == commit)):
                return build
        elif (phase == "Complete" and same_base and same_recipe(build, buildconfig)
              and (commit is None or build_commit(build) == commit)):
            return build
    return None


def _commit_of(build):
    """The commit a build is of: what it records, else its git ref when that is a full commit name, else None."""
    ref = (((build.get("spec") or {}).get("source") or {}).get("git") or {}).get("ref") or ""
    return build_commit(build) or (ref if _FULL_COMMIT.match(ref) else None)


class BuildRunner:
    """Starts (or finds) one build of a BuildConfig and follows it: osbs_build's work, and each dependent's in the wave.

    `autorebuild` builds from the base image the trigger watches (a new one,
    `base_image_digest` if given) rather than for a commit; `git_commit` None
    means the commit the BuildConfig records, or with `from_latest` (autorebuild
    only) the branch head. `check_mode` writes nothing: start() raises WouldStart.
    `dockerfile_labels`: the labels the Dockerfile sets at `git_commit` (osbs_source_info's `labels`), so
    the identity labels leave them as they are (by default those the BuildConfig records for its commit).
    """

    def __init__(self, client, namespace, name, wait_timeout, autorebuild=False, git_commit=None, from_latest=False,
                 base_image_digest=None, force=False, cancel_on_timeout=False, check_mode=False, dockerfile_labels=None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.autorebuild = autorebuild
        self.git_commit = git_commit
        self.from_latest = from_latest
        self.base_image_digest = base_image_digest
        self.force = force
        self.wait_timeout = wait_timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.check_mode = check_mode
        self.releases = ReleaseKeeper(client, namespace, name, dockerfile_labels)
        self.moved_release_on = False  # a reused or adopted build made the BuildConfig move on to the next release
        if from_latest:
            raise OsbsFlowError(
                "from_latest is not supported: an autorebuild of BuildConfig %s/%s builds the commit the BuildConfig "
                "records (its last user build's), as the cluster's own trigger builds do (the one commit rule); to build "
                "the branch head, run a user build (the osbs.flow.build playbook) of it" % (namespace, name)
            )

    # -- what exists -----------------------------------------------------------------

    def buildconfig(self):
        bc = self.client.get("BuildConfig", self.namespace, self.name)
        if bc is None and self.check_mode:
            raise WouldStart("once osbs_buildconfig has created the BuildConfig")
        if bc is None:
            raise OsbsFlowError(
                "BuildConfig %s/%s does not exist: create it first with osbs.flow.osbs_buildconfig" % (self.namespace, self.name)
            )
        return bc

    def base_image(self, buildconfig):
        """(digest, pull spec, image) of the image the BuildConfig's ImageStreamTag resolves to now, or (None, None, None).

        A tag whose import has not finished yet is waited for, briefly.
        """
        tag = base_imagestreamtag(buildconfig)
        if tag is None:
            return None, None, None
        namespace, name = tag
        deadline = time.monotonic() + BASE_IMAGE_WAIT_SECONDS
        while True:
            image = imagestreamtag_image(self.client, namespace, name)
            if image:
                return image["metadata"]["name"], image.get("dockerImageReference"), image
            if time.monotonic() >= deadline or self.check_mode:
                return None, None, None
            time.sleep(1)

    # -- starting ------------------------------------------------------------------------

    def build_request(self, buildconfig, commit, base_digest, base_pull_spec, again=False):
        """The BuildRequest; an autorebuild names the base image it is triggered by.

        `again`: the BuildConfig's trigger already records this base image (a build for it was made and ended
        unsuccessfully, or was deleted), so the server refuses a second triggered build for it ("has already
        instantiated a build for imageid"). The request then asks for a plain build, as `oc start-build` does:
        no triggeredByImage, the ImageStreamTag resolved by the server (checked to be this base image just
        before), the commit and the image-change cause kept.
        """
        request = {
            "kind": "BuildRequest",
            "apiVersion": "build.openshift.io/v1",
            "metadata": {"name": self.name},
            "lastVersion": buildconfig.get("status", {}).get("lastVersion", 0),
        }
        if commit:
            request["revision"] = {"type": "Git", "git": {"commit": commit}}
        if self.autorebuild and base_digest:
            namespace, tag = base_imagestreamtag(buildconfig)
            request["triggeredBy"] = [{
                "message": "Image change, started again: the build for this image ended unsuccessfully" if again else "Image change",
                "imageChangeBuild": {"imageID": base_pull_spec, "fromRef": {"kind": "ImageStreamTag", "name": tag, "namespace": namespace}},
            }]
            if not again:
                request["triggeredByImage"] = {"kind": "DockerImage", "name": base_pull_spec}
                request["from"] = {"kind": "ImageStreamTag", "name": tag, "namespace": namespace}
        else:
            request["triggeredBy"] = [{"message": "Started by osbs.flow for commit %s" % (commit or "at the branch head")}]
        return request

    def start(self):
        """Return (build, how) with how one of started, existing, adopted.

        Raises WouldStart in check mode, and BuildsRunning when another build
        of the BuildConfig is active and none matches: the caller waits for it
        (osbs_build), refuses, or follows it (the wave), then calls start() again.

        An autorebuild the server refuses because the trigger already made a
        build for this base image looks again: that build is adopted when it
        runs or completed, and otherwise (it failed, was cancelled, or is gone)
        a plain build is requested once (build_request's `again`).
        """
        again = False
        window_waits = 0
        attempt = 0
        while attempt < INSTANTIATE_ATTEMPTS:
            attempt += 1
            bc = self.buildconfig()
            # The one commit rule: an autorebuild builds the commit the BuildConfig records (its last user build's).
            commit = recorded_commit(bc) if self.autorebuild or self.git_commit is None else self.git_commit
            base_digest, base_pull_spec, base_tag_image = self.base_image(bc)
            expected = self.base_image_digest
            # The expected digest may be a manifest list's (what a push reports) while the tag, imported in Legacy
            # mode, names one platform's child, or a child of the list the tag keeps (PreserveOriginal).
            if expected and base_digest and not same_image(self.client, base_imagestreamtag(bc)[0],
                                                           base_imagestreamtag(bc)[1], base_tag_image, expected):
                raise OsbsFlowError(
                    "BuildConfig %s/%s builds from %s, which resolves to %s, not the expected base image digest %s "
                    "(nor a manifest list of it, nor a platform of its list): "
                    "import the new base image first (osbs.flow.reactor_import_image)"
                    % (self.namespace, self.name, "%s/%s" % base_imagestreamtag(bc), base_digest, expected)
                )
            if base_imagestreamtag(bc) and base_digest is None and not self.check_mode:
                raise OsbsFlowError(
                    "BuildConfig %s/%s builds from the ImageStreamTag %s/%s, which has no image yet: import the base image "
                    "(osbs.flow.reactor_import_image, or oc import-image) and try again"
                    % ((self.namespace, self.name) + base_imagestreamtag(bc))
                )

            architecture = ((base_tag_image or {}).get("dockerImageMetadata") or {}).get("Architecture")
            builds = builds_of(self.client, self.namespace, self.name)
            if not self.force:
                match = matching_build(builds, bc, commit, base_digest, self.autorebuild)
                if match is not None:
                    # A build the cluster started by itself took the BuildConfig's release: the next one gets another.
                    self.moved_release_on = self.releases.ensure_next(bc, architecture, self.check_mode) is not bc
                    return match, "existing" if build_phase(match) == "Complete" else "adopted"

            running = [b for b in builds if is_active(b)]
            if running:
                raise BuildsRunning(list(reversed(running)))  # builds_of lists newest first

            check_version_release(self.releases.dockerfile_labels_for(bc, commit), "at commit %s" % commit)
            if not self.autorebuild:
                self.releases.refuse_used_release(bc, builds, commit)
            if self.check_mode:
                raise WouldStart()
            build, prepared = None, False
            try:
                # Written under the BuildConfig's resourceVersion: of two runs, one writes, the other reads again.
                # A user build's Build carries is_autorebuild=false, as osbs-client made sure.
                bc, identity = self.releases.prepare(bc, builds, commit, not self.autorebuild, architecture)
                prepared = True
                request = self.build_request(bc, commit, base_digest, base_pull_spec, again=again)
                made = self.releases.nvr_of(bc, commit, identity)
                if made:
                    request["metadata"]["annotations"] = {NVR_ANNOTATION: made}
                build = self.client.request(
                    "POST", self.client.path("BuildConfig", self.namespace, self.name, "instantiate"), body=request,
                )
            except WindowTaken as exc:
                # Another run is starting a build: it shows as a running build once it has; read again then.
                if window_waits >= WINDOW_WAITS:
                    raise OsbsFlowError("%s, and still was after %d s: try again, or if that run died, after its window "
                                        "is stale (%d s)" % (exc, WINDOW_WAIT_SECONDS * (2 ** WINDOW_WAITS - 1),
                                                             STALE_WINDOW_SECONDS)) from None
                time.sleep(WINDOW_WAIT_SECONDS * 2 ** window_waits)
                window_waits += 1
                attempt -= 1  # waiting is not a lost race
                continue
            except ApiError as exc:
                if self.autorebuild and not again and _already_triggered(exc):
                    again = True
                    continue
                if _lost_race(exc):
                    continue
                raise
            finally:
                if prepared:
                    self.releases.settle(architecture, started=build, user_build=not self.autorebuild)
            return build, "started"
        raise self.kept_changing()

    def start_when_running(self, when_running):
        """start(), with another active build refused (when_running=fail) or waited for (wait), as osbs_build does."""
        for _attempt in range(INSTANTIATE_ATTEMPTS):
            try:
                return self.start()
            except BuildsRunning as exc:
                if when_running == "fail":
                    raise OsbsFlowError(
                        "BuildConfig %s/%s has the build %s in progress, so no other build is started: wait for it, "
                        "cancel it, or set when_running=wait" % (self.namespace, self.name, exc.described_newest_first)
                    )
                if self.check_mode:
                    raise exc.would_start()
                still = wait_for_no_active_builds(self.client, self.namespace, self.name, self.wait_timeout)
                if still:
                    raise self.still_running(still)
                # the finished build may be the one we wanted: look again
        raise self.kept_changing()

    def kept_changing(self):
        return OsbsFlowError(
            "BuildConfig %s/%s kept changing while a build was being started (%d attempts): another client is "
            "starting builds of it; try again" % (self.namespace, self.name, INSTANTIATE_ATTEMPTS)
        )

    def still_running(self, builds):
        return OsbsFlowError(
            "BuildConfig %s/%s still has the build %s after %d s: raise wait_timeout or cancel it"
            % (self.namespace, self.name, ", ".join("%s (%s)" % (b["metadata"]["name"], waiting_state(b, self.client))
                                                    for b in builds), self.wait_timeout)
        )

    # -- following -----------------------------------------------------------------------

    def wait(self, build):
        """The build once terminal; an OsbsFlowError naming it and its phase at the timeout."""
        build = wait_for_build(self.client, build, self.wait_timeout)
        if not is_terminal(build):
            self.timed_out(build)
        return build

    def timed_out(self, build):
        name = build["metadata"]["name"]
        phase = waiting_state(build, self.client)
        if self.cancel_on_timeout:
            cancel_build(self.client, self.namespace, name)
            raise OsbsFlowError(
                "Build %s/%s was still %s after %d s and has been cancelled (cancel_on_timeout)"
                % (self.namespace, name, phase, self.wait_timeout)
            )
        raise OsbsFlowError(
            "Build %s/%s is still %s after %d s; it goes on running: follow it with `oc logs -f build/%s`, "
            "or raise wait_timeout" % (self.namespace, name, phase, self.wait_timeout, name)
        )


def build_identity(build, buildconfig, dockerfile_labels=None):
    """{'nvr', 'release'} of the image a build makes: its Dockerfile's labels (given, or those the BuildConfig
    records when it is the same commit) with the Build's imageLabels applied over them, as the builder does."""
    labels = labels_of((build.get("spec") or {}).get("output"))
    if dockerfile_labels is None and build_commit(build) and build_commit(build) == recorded_commit(buildconfig):
        dockerfile_labels = recorded_dockerfile_labels(buildconfig)
    identity = image_identity(buildconfig, dockerfile_labels, labels)
    return {"nvr": nvr(identity), "release": identity.get("release")}


class WouldStart(Exception):
    """Check mode: a build would start (the message says when, if not at once)."""


class BuildsRunning(Exception):
    """The BuildConfig has these active builds (oldest first) and none does what was asked, so none was started."""

    def __init__(self, builds):
        super().__init__(describe_builds(builds))
        self.builds = builds

    @property
    def described_newest_first(self):
        return describe_builds(reversed(self.builds))

    def would_start(self):
        return WouldStart("after the build %s ends" % self.described_newest_first)


def _lost_race(exc):
    """instantiate refused because another request moved lastVersion first."""
    text = (exc.message or "").lower()
    return (exc.status == 400 and "lastversion" in text) or exc.is_conflict


def _already_triggered(exc):
    """instantiate refused because the BuildConfig's trigger already records the image (openshift-apiserver's
    updateImageTriggers: "build config NS/NAME has already instantiated a build for imageid ID", HTTP 500)."""
    return "already instantiated a build for imageid" in (exc.message or "")


def run_build(module):
    """The osbs_build module."""
    params = module.params
    if params["git_commit"] is not None:
        # The builder hands the ref to `git fetch <uri> <ref>` with no `--` (library-go repository.go Fetch), and a
        # branch name there builds the branch head: only a full commit name goes into a Build or a BuildConfig.
        params["git_commit"] = check_commit(params["git_commit"])
    if params["scratch"] and params["mode"] == "autorebuild":
        raise OsbsFlowError("scratch builds are user builds: mode=autorebuild and scratch=true do not go together; drop one")
    runner = BuildRunner(
        module.client, params["namespace"], params["buildconfig"], params["wait_timeout"],
        autorebuild=params["mode"] == "autorebuild", git_commit=params["git_commit"], from_latest=params["from_latest"],
        base_image_digest=params["base_image_digest"], force=params["force"], cancel_on_timeout=params["cancel_on_timeout"],
        check_mode=module.check_mode, dockerfile_labels=params["dockerfile_labels"],
    )
    try:
        if params["scratch"]:
            build, how = start_scratch(runner, params["dockerfile_labels"]), "started"
        else:
            build, how = runner.start_when_running(params["when_running"])
    except WouldStart as exc:
        return {
            "changed": True,
            "action": "would_start",
            "msg": " ".join(filter(None, ["a build of BuildConfig %s/%s would start" % (runner.namespace, runner.name), str(exc)])),
            "build": None,
        }
    changed = how == "started" or runner.moved_release_on
    if params["wait"] and params["wait_timeout"] > 0 and not is_terminal(build):
        try:
            build = runner.wait(build)
        except OsbsFlowError as exc:
            # A build this run started is a change even when following it failed (a timeout, a lost server).
            exc.result.setdefault("changed", changed)
            exc.result.setdefault("build", build_summary(build))
            raise
    summary = dict(build_summary(build), **build_identity(build, runner.buildconfig(), params["dockerfile_labels"]))
    summary["scratch"] = params["scratch"]
    if params["scratch"]:
        summary["unique_tag"] = (build["metadata"].get("annotations") or {}).get(UNIQUE_TAG_ANNOTATION)
    result = dict(summary, changed=changed, action=how, build=summary)
    if summary["phase"] in UNSUCCESSFUL_BUILD_PHASES:
        result["log_tail"] = failed_build_log(module.client, build)
        raise OsbsFlowError(failure_message(build, result["log_tail"]), **result)
    return result
