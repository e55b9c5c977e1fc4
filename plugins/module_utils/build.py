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

import time

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import AUTOREBUILD_LABEL, recorded_commit
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.openshift import (
    TERMINAL_BUILD_PHASES,
    ApiError,
    TransportError,
    builds_of,
    cancel_build,
    describe_builds,
    is_active,
    wait_for_no_active_builds,
)

INSTANTIATE_ATTEMPTS = 5
BASE_IMAGE_WAIT_SECONDS = 60
LOG_TAIL_LINES = 30


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


RECIPE_FIELDS = ("source", "output")


def same_recipe(build, buildconfig):
    """Whether the build was made from the BuildConfig as it is now.

    Source, output and docker strategy are copied from the BuildConfig at
    instantiate; the strategy's `from` is resolved then (compared through the
    base digest instead), and a user build's request adds no env or build args.
    """
    build_spec, bc_spec = build.get("spec") or {}, buildconfig.get("spec") or {}
    for field in RECIPE_FIELDS:
        if (build_spec.get(field) or {}) != (bc_spec.get(field) or {}):
            return False
    build_strategy = dict((build_spec.get("strategy") or {}).get("dockerStrategy") or {})
    bc_strategy = dict((bc_spec.get("strategy") or {}).get("dockerStrategy") or {})
    build_strategy.pop("from", None)
    bc_strategy.pop("from", None)
    return build_strategy == bc_strategy


def trigger_tag(buildconfig):
    """The ImageStreamTag the docker strategy builds from, or None."""
    source = ((buildconfig["spec"].get("strategy") or {}).get("dockerStrategy") or {}).get("from") or {}
    if source.get("kind") == "ImageStreamTag":
        return source.get("namespace") or buildconfig["metadata"]["namespace"], source["name"]
    return None


class BuildRunner:
    """One run of osbs_build; `module` is an OsbsOpenShiftModule."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = module.client
        self.namespace = self.params["namespace"]
        self.name = self.params["buildconfig"]
        self.autorebuild = self.params["mode"] == "autorebuild"

    # -- what exists -----------------------------------------------------------------

    def buildconfig(self):
        bc = self.client.get("BuildConfig", self.namespace, self.name)
        if bc is None and self.module.check_mode:
            raise WouldStart("once osbs_buildconfig has created the BuildConfig")
        if bc is None:
            raise OsbsFlowError(
                "BuildConfig %s/%s does not exist: create it first with osbs.flow.osbs_buildconfig" % (self.namespace, self.name)
            )
        return bc

    def base_image(self, buildconfig):
        """(digest, pull spec) of the image the BuildConfig's ImageStreamTag resolves to now, or (None, None).

        A tag whose import has not finished yet is waited for, briefly.
        """
        tag = trigger_tag(buildconfig)
        if tag is None:
            return None, None
        namespace, name = tag
        deadline = time.monotonic() + BASE_IMAGE_WAIT_SECONDS
        while True:
            istag = self.client.get("ImageStreamTag", namespace, name)
            if istag and istag.get("image"):
                image = istag["image"]
                return image["metadata"]["name"], image.get("dockerImageReference")
            if time.monotonic() >= deadline or self.module.check_mode:
                return None, None
            time.sleep(1)

    def matching_build(self, builds, buildconfig, commit, base_digest):
        """The newest build that already does what was asked, or None.

        A user build matches a Complete build of the same commit and base
        digest made from the BuildConfig as it is now (same source, strategy
        and output). An autorebuild matches any build (active or Complete)
        from the same base digest: the cluster's trigger may have started it.
        """
        for build in builds:
            phase = build.get("status", {}).get("phase", "New")
            same_base = build_base_digest(build) == base_digest
            if self.autorebuild:
                if base_digest and same_base and phase not in ("Failed", "Error", "Cancelled"):
                    return build
            elif (phase == "Complete" and same_base and same_recipe(build, buildconfig)
                  and (commit is None or build_commit(build) == commit)):
                return build
        return None

    # -- starting ------------------------------------------------------------------------

    def build_request(self, buildconfig, commit, base_digest, base_pull_spec):
        request = {
            "kind": "BuildRequest",
            "apiVersion": "build.openshift.io/v1",
            "metadata": {"name": self.name},
            "lastVersion": buildconfig.get("status", {}).get("lastVersion", 0),
        }
        if commit:
            request["revision"] = {"type": "Git", "git": {"commit": commit}}
        if self.autorebuild and base_digest:
            namespace, tag = trigger_tag(buildconfig)
            request["triggeredBy"] = [{
                "message": "Image change",
                "imageChangeBuild": {"imageID": base_pull_spec, "fromRef": {"kind": "ImageStreamTag", "name": tag, "namespace": namespace}},
            }]
            request["triggeredByImage"] = {"kind": "DockerImage", "name": base_pull_spec}
            request["from"] = {"kind": "ImageStreamTag", "name": tag, "namespace": namespace}
        else:
            request["triggeredBy"] = [{"message": "Started by osbs.flow for commit %s" % (commit or "at the branch head")}]
        return request

    def set_autorebuild_label(self, value):
        self.client.merge_patch("BuildConfig", self.namespace, self.name, {"metadata": {"labels": {AUTOREBUILD_LABEL: value}}})

    def mark_user_build(self, buildconfig):
        """is_autorebuild=false before a user build starts, so the Build carries it.

        Written against the BuildConfig as read (its resourceVersion), so a run
        that lost a race cannot undo the winner's `true`: it gets 409 instead.
        """
        changed = dict(buildconfig, metadata=dict(buildconfig["metadata"]))
        changed["metadata"]["labels"] = dict(changed["metadata"].get("labels") or {}, **{AUTOREBUILD_LABEL: "false"})
        return self.client.replace("BuildConfig", self.namespace, changed)

    def start(self):
        """Return (build, how) with how one of started, existing, adopted, would_start."""
        params = self.params
        for _attempt in range(INSTANTIATE_ATTEMPTS):
            bc = self.buildconfig()
            commit = params["git_commit"]
            if commit is None and not (self.autorebuild and params["from_latest"]):
                commit = recorded_commit(bc)
            base_digest, base_pull_spec = self.base_image(bc)
            expected = params["base_image_digest"]
            if expected and base_digest and expected != base_digest:
                raise OsbsFlowError(
                    "BuildConfig %s/%s builds from %s, which resolves to %s, not the expected base image digest %s: "
                    "import the new base image first (osbs.flow.reactor_import_image)"
                    % (self.namespace, self.name, "%s/%s" % trigger_tag(bc), base_digest, expected)
                )
            if trigger_tag(bc) and base_digest is None and not self.module.check_mode:
                raise OsbsFlowError(
                    "BuildConfig %s/%s builds from the ImageStreamTag %s/%s, which has no image yet: import the base image "
                    "(osbs.flow.reactor_import_image, or oc import-image) and try again" % ((self.namespace, self.name) + trigger_tag(bc))
                )

            builds = builds_of(self.client, self.namespace, self.name)
            if not params["force"]:
                match = self.matching_build(builds, bc, commit, base_digest)
                if match is not None:
                    return match, "existing" if match.get("status", {}).get("phase") == "Complete" else "adopted"

            running = [b for b in builds if is_active(b)]
            if running:
                if params["when_running"] == "fail":
                    raise OsbsFlowError(
                        "BuildConfig %s/%s has the build %s in progress, so no other build is started: wait for it, "
                        "cancel it, or set when_running=wait" % (self.namespace, self.name, describe_builds(running))
                    )
                if self.module.check_mode:
                    raise WouldStart("after the build %s ends" % describe_builds(running))
                if params["when_running"] == "return":
                    raise BuildsRunning(list(reversed(running)))  # builds_of lists newest first
                still = wait_for_no_active_builds(self.client, self.namespace, self.name, params["wait_timeout"])
                if still:
                    raise self.still_running(still)
                continue  # the finished build may be the one we wanted

            if self.module.check_mode:
                raise WouldStart()
            try:
                if not self.autorebuild and (bc["metadata"].get("labels") or {}).get(AUTOREBUILD_LABEL) != "false":
                    # A user build: the Build must carry is_autorebuild=false, as osbs-client made sure.
                    bc = self.mark_user_build(bc)
                build = self.client.request(
                    "POST", self.client.path("BuildConfig", self.namespace, self.name, "instantiate"),
                    body=self.build_request(bc, commit, base_digest, base_pull_spec),
                )
            except ApiError as exc:
                if _lost_race(exc):
                    continue
                raise
            if not self.autorebuild:
                # What CheckAndSetRebuildPlugin did: builds the cluster starts from now on are autorebuilds.
                self.set_autorebuild_label("true")
            return build, "started"
        raise OsbsFlowError(
            "BuildConfig %s/%s kept changing while a build was being started (%d attempts): another client is "
            "starting builds of it; try again" % (self.namespace, self.name, INSTANTIATE_ATTEMPTS)
        )

    def still_running(self, builds):
        return OsbsFlowError(
            "BuildConfig %s/%s still has the build %s after %d s: raise wait_timeout or cancel it"
            % (self.namespace, self.name, describe_builds(builds), self.params["wait_timeout"])
        )

    # -- following -----------------------------------------------------------------------

    def wait(self, build):
        """The build once terminal; an OsbsFlowError naming it and its phase at the timeout."""
        deadline = time.monotonic() + self.params["wait_timeout"]
        name = build["metadata"]["name"]
        while build.get("status", {}).get("phase", "New") not in TERMINAL_BUILD_PHASES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.timed_out(build)
            try:
                for _type, obj in self.client.watch(
                    "Build", self.namespace, build["metadata"]["resourceVersion"],
                    field_selector="metadata.name=%s" % name, timeout=max(1, min(remaining, 300)),
                ):
                    build = obj
                    if build.get("status", {}).get("phase") in TERMINAL_BUILD_PHASES:
                        return build
            except (ApiError, TransportError, OSError, ValueError):
                # The watch broke or expired: poll once, then watch again from the fresh object.
                time.sleep(1)
            build = self.client.get("Build", self.namespace, name) or build
        return build

    def timed_out(self, build):
        name = build["metadata"]["name"]
        phase = build.get("status", {}).get("phase", "New")
        if self.params["cancel_on_timeout"]:
            cancel_build(self.client, self.namespace, name)
            raise OsbsFlowError(
                "Build %s/%s was still %s after %d s and has been cancelled (cancel_on_timeout)"
                % (self.namespace, name, phase, self.params["wait_timeout"])
            )
        raise OsbsFlowError(
            "Build %s/%s is still %s after %d s; it goes on running: follow it with `oc logs -f build/%s`, "
            "or raise wait_timeout" % (self.namespace, name, phase, self.params["wait_timeout"], name)
        )


class WouldStart(Exception):
    """Check mode: a build would start (the message says when, if not at once)."""


class BuildsRunning(Exception):
    """when_running=return: the BuildConfig has these active builds (oldest first), so none was started.

    For a caller that follows builds itself (the wave) rather than blocking a thread until they end.
    """

    def __init__(self, builds):
        super().__init__(describe_builds(builds))
        self.builds = builds


def _lost_race(exc):
    """instantiate refused because another request moved lastVersion, or the trigger already fired."""
    text = (exc.message or "").lower()
    return (exc.status == 400 and "lastversion" in text) or exc.is_conflict or "already instantiated" in text


def run_build(module):
    runner = BuildRunner(module)
    try:
        build, how = runner.start()
    except WouldStart as exc:
        return {
            "changed": True,
            "action": "would_start",
            "msg": " ".join(filter(None, ["a build of BuildConfig %s/%s would start" % (runner.namespace, runner.name), str(exc)])),
            "build": None,
        }
    changed = how == "started"
    if module.params["wait"] and build.get("status", {}).get("phase", "New") not in TERMINAL_BUILD_PHASES:
        build = runner.wait(build)
    summary = build_summary(build)
    result = dict(summary, changed=changed, action=how, build=summary)
    if summary["phase"] in ("Failed", "Error", "Cancelled"):
        result["log_tail"] = failed_build_log(module.client, build)
        module.fail_json(msg=failure_message(build, result["log_tail"]), **result)
    return result


def failed_build_log(client, build, lines=LOG_TAIL_LINES):
    """The end of a failed build's log: its logSnippet, or the log's last lines."""
    return build.get("status", {}).get("logSnippet") or client.log_tail(build["metadata"]["namespace"], build["metadata"]["name"], lines)


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
