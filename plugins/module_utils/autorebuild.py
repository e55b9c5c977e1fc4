# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 6 of the flow: rebuild every dependent of a new image, parents before children.

The wave runs in one process: wave_graph.py works out the dependents,
wave_scheduler.py starts each once its parents have their new image, and this
file does the cluster part of each dependent: read its repo config, start or
adopt its build (BuildRunner, as osbs_build does), and once the build ends
(one BuildFollower watches every namespace's builds) import its image. Every
ready dependent's build runs at once, as many as the cluster schedules, and
each image is imported the moment its build ends, whatever order they end in.
(One module with threads, rather than an Ansible loop over osbs_build: loops
are serial and cost about half a second per item.) wave_report.py makes the table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner, BuildsRunning, WouldStart
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import imagestreamtag_for_image
from ansible_collections.osbs.flow.plugins.module_utils.import_image import (
    ImageImporter,
    dependents_graph,
    same_image,
)
from ansible_collections.osbs.flow.plugins.module_utils.registry_api import DEFAULT_TIMEOUT as REGISTRY_TIMEOUT
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import RepoSource
from ansible_collections.osbs.flow.plugins.module_utils.tag_build import MOVED, BuildTagger, registry_clients
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    base_imagestreamtag,
    build_base_digest,
    build_phase,
    build_summary,
    builds_of,
    cancel_build,
    failed_build_log,
    failure_message,
    imagestreamtag_image,
    is_active,
    is_terminal,
    list_buildconfigs,
    recorded_commit,
    recorded_repo_config_file,
    split_imagestreamtag,
    triggered_by_image_change,
)
from ansible_collections.osbs.flow.plugins.module_utils.waiter import BuildFollower
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import key_name
from ansible_collections.osbs.flow.plugins.module_utils.wave_report import make_rows, report_table, short_digest
from ansible_collections.osbs.flow.plugins.module_utils.wave_scheduler import (
    ADOPTED,
    FAILED,
    REBUILT,
    SKIPPED,
    UNCHANGED,
    Follow,
    Outcome,
    run_wave,
)

GIT_WORKERS = 8
LOG_LINES_IN_REASON = 5


def tag_history(stream, tag):
    """The digests the stream's tag has named, newest first (its status items)."""
    for status_tag in ((stream or {}).get("status") or {}).get("tags") or []:
        if status_tag.get("tag") == tag:
            return [item.get("image") for item in status_tag.get("items") or []]
    return []


def would_start(exc):
    """Check mode's row for a dependent whose build would start (WouldStart says when, if not at once)."""
    return Outcome(REBUILT, " ".join(filter(None, ["check mode: a build would start", str(exc)])), changed=True, pending=True)


class Wave:
    """One run of osbs_autorebuild with its parameters, over an OpenShiftClient."""

    def __init__(self, client, params, check_mode, repo_source):
        self.params = params
        self.client = client
        self.check_mode = check_mode
        self.repo_source = repo_source
        self.importer = ImageImporter(self.client, self.check_mode)
        self.cancelled = []
        self._lock = threading.Lock()

    def root(self):
        namespace = self.params["namespace"]
        istag = self.params["imagestreamtag"] or imagestreamtag_for_image(self.params["image"])
        return namespace, "%s:%s" % split_imagestreamtag(istag)

    def root_digest(self, root):
        """The new image, as the root's ImageStreamTag names it.

        A push reports a manifest list's digest, while a Legacy tag names the child the server picked: the wave
        compares Builds' bases with the tag's image, so the list's digest is turned into the tag's image when the
        two are the same image. Any other digest (an older image of the tag, say) stays as given.
        """
        digest = self.params["digest"]
        image = imagestreamtag_image(self.client, root[0], root[1])
        if digest:
            tag_image = (image or {}).get("metadata", {}).get("name")
            if image and digest != tag_image and same_image(self.client, root[0], root[1], image, digest):
                return tag_image
            return digest
        if not image:
            raise OsbsFlowError(
                "ImageStreamTag %s/%s has no image: import the new image first with osbs.flow.reactor_import_image" % root
            )
        return image["metadata"]["name"]

    def buildconfigs(self):
        return list_buildconfigs(self.client, self.params["namespaces"] or [self.params["namespace"]])

    # -- repo configs, fetched for all dependents at once --------------------------------------------

    def prefetch_repo_configs(self, graph, pool):
        futures = {}
        for key, bc in graph.nodes.items():
            git = ((bc.get("spec") or {}).get("source") or {}).get("git") or {}
            commit = None if self.params["from_latest"] else recorded_commit(bc)
            futures[key] = pool.submit(
                self.repo_source.read_repo_config, git.get("uri"), recorded_repo_config_file(bc),
                commit=commit, branch=git.get("ref"),
            )
        return futures

    # -- one dependent ---------------------------------------------------------------------------------

    def rebuild(self, key, parent_outcomes, graph, repo_configs):
        started = time.monotonic()
        bc = graph.nodes[key]
        base_key = graph.base_parent.get(key)
        base = parent_outcomes.get(base_key) if base_key is not None else None
        meant_digest = base.digest if base else None
        # OpenShift builds from the ImageStreamTag as it is at instantiate (openshift-apiserver buildgenerator
        # generator.go): once the tag has moved past the image the wave is for, the newer base is what the dependent
        # is built from, and the wave for that base finds the build.
        newer = self.moved_on_from(bc, meant_digest)
        base_digest = newer or meant_digest
        moved_from = meant_digest if newer else None
        try:
            commit, config = repo_configs[key].result()
        except OsbsFlowError as exc:
            cancelled, note = self.stop_trigger_builds(key, meant_digest)
            return Outcome(FAILED, str(exc) + note, changed=cancelled)
        if not config["autorebuild_enabled"]:
            cancelled, note = self.stop_trigger_builds(key, meant_digest)
            return Outcome(SKIPPED, "autorebuilds are disabled by %s at commit %s%s" % (
                recorded_repo_config_file(bc), (commit or "")[:12], note), changed=cancelled)

        if self.check_mode and any(o.pending for o in parent_outcomes.values()):
            waiting = sorted(key_name(p) for p, o in parent_outcomes.items() if o.pending)
            return Outcome(REBUILT, "check mode: would be rebuilt once %s has its new image" % ", ".join(waiting),
                           changed=True, pending=True)

        runner = BuildRunner(self.client, key[0], key[1], self.params["wait_timeout"], autorebuild=True,
                             from_latest=self.params["from_latest"], base_image_digest=base_digest, check_mode=self.check_mode)
        try:
            build, how = runner.start()
        except WouldStart as exc:
            return would_start(exc)
        except BuildsRunning as exc:
            if self.check_mode:
                return would_start(exc.would_start())

            # Another build of this BuildConfig (a user build, say) runs: follow it like the wave's own builds
            # and try again once it has ended, rather than hold a thread while the other dependents wait.
            def retry(ended):
                if not is_terminal(ended):
                    raise runner.still_running([ended])
                return self.rebuild(key, parent_outcomes, graph, repo_configs)
            return Follow(exc.builds[0], retry)
        if not is_terminal(build) and self.check_mode:
            return Outcome(ADOPTED, "check mode: build %s is %s" % (build["metadata"]["name"], build["status"].get("phase")),
                           build=build["metadata"]["name"], pending=True)

        # The tag can still move between BuildRunner's look at it and the instantiate, and the server builds from
        # the tag as it is then: the Build says which base it has.
        built_from = build_base_digest(build) or base_digest
        if built_from != base_digest and self.moved_on_from(bc, base_digest, built_from):
            moved_from = meant_digest

        def then(ended):
            try:
                return self.finish(bc, runner, ended, how, built_from, started, moved_from)
            except OsbsFlowError as exc:  # ApiError included
                # A build this run started is a change even when waiting for it or importing its image failed.
                return Outcome(FAILED, str(exc), build=build["metadata"]["name"], changed=how == "started")

        if is_terminal(build):
            return then(build)
        return Follow(build, then, changed=how == "started")

    def finish(self, bc, runner, build, how, base_digest, started, moved_from=None):
        """Once the build has ended (or timed out): import its image and say what happened.

        `base_digest` is the base the build was made from; `moved_from` the base the wave meant, when the base's
        ImageStreamTag had moved on from it before the build was instantiated.
        """
        if not is_terminal(build):
            runner.timed_out(build)
        summary = build_summary(build)
        if summary["phase"] != "Complete":
            tail = failed_build_log(self.client, build, LOG_LINES_IN_REASON)
            tail = "\n".join(tail.strip().splitlines()[-LOG_LINES_IN_REASON:])
            reason = failure_message(build, tail.replace("\n", " | "), separator=" | ")
            return Outcome(FAILED, reason, build=summary["name"], duration=summary["duration"], changed=how == "started")

        imported = self.import_output(bc, summary)
        if how == "started":
            action = REBUILT
        elif how == "adopted" or imported["changed"]:
            action = ADOPTED  # the cluster's ImageChange trigger started it for this base image
        else:
            action = UNCHANGED
        base = short_digest(base_digest) or "-"
        reason = {
            REBUILT: "built from base image %s" % base,
            ADOPTED: "adopted the build the ImageChange trigger started for base image %s" % base,
            UNCHANGED: "its build from base image %s exists and its image is imported" % base,
        }[action]
        if moved_from:
            reason += " (its ImageStreamTag had moved on from %s, the image this wave is for)" % short_digest(moved_from)
        if self.check_mode and imported["changed"]:
            reason = "check mode: its image would be imported"
        return Outcome(action, reason, build=summary["name"], digest=imported["digest"],
                       duration=summary["duration"] if summary["duration"] is not None else round(time.monotonic() - started, 3),
                       changed=how == "started" or imported["changed"] or imported.get("tags_changed", False),
                       pending=self.check_mode and imported["changed"], nvr=imported.get("nvr"),
                       unique_pull_spec=imported.get("unique_pull_spec"), warnings=imported.get("tag_warnings"))

    def moved_on_from(self, bc, digest, newer=None):
        """The digest the dependent's base ImageStreamTag has moved on to from `digest` (`newer`, or its newest
        image), when `digest` is older in the tag's history; otherwise None.

        Only the tag's history (status.tags[].items) says "older": a digest the tag has never named (not imported
        yet, or a manifest list whose child a Legacy tag names) is not a base the tag has moved on from.
        """
        tag = base_imagestreamtag(bc)
        if not digest or tag is None:
            return None
        namespace, istag = tag
        name, tag_name = split_imagestreamtag(istag)
        history = tag_history(self.client.get("ImageStream", namespace, name), tag_name)
        newest = newer or (history[0] if history else None)
        if newest is None or newest == digest or newest not in history:
            return None
        return newest if digest in history[history.index(newest) + 1:] else None

    def import_output(self, bc, summary):
        """Import the image the build pushed (reactor_import_image's step) into its ImageStreamTag."""
        to = (bc.get("spec", {}).get("output") or {}).get("to") or {}
        if to.get("kind") != "DockerImage":
            # An ImageStreamTag output is moved by the cluster when the build pushes.
            return {"changed": False, "digest": summary["image_digest"]}
        namespace = bc["metadata"]["namespace"]
        tagged = self.tag_output(namespace, summary)
        # Without a digest in the build's status, the image is verified by the builder's labels naming the build.
        tags = tagged.get("imagestream_tags") or []
        if self.check_mode:  # a tag that would move is not in the registry yet: preview only those that are
            would_move = {row["tag"] for row in tagged["tags"] if row["action"] == MOVED}
            tags = [tag for tag in tags if tag not in would_move]
        imported, _each = self.importer.run_with_tags(
            namespace, to["name"], tags, expected_digest=summary["image_digest"],
            insecure=self.params["insecure_registry"], expected_build=summary["name"])
        imported.update(nvr=tagged.get("nvr"), unique_pull_spec=tagged.get("unique_pull_spec"),
                        tags_changed=bool(tagged.get("changed")), tag_warnings=tagged.get("warnings", []))
        return imported

    def tag_output(self, namespace, summary):
        """osbs_image_tags' step for a dependent's build (with `image_tags`): its NVR, unique and floating tags."""
        if not self.params.get("image_tags"):
            return {}
        registry_params = dict(registry_uri=None, registry_insecure=self.params["insecure_registry"],
                               registry_ca_cert=self.params.get("registry_ca_cert"),
                               registry_dockercfg_path=self.params.get("registry_dockercfg_path"),
                               registry_timeout=REGISTRY_TIMEOUT)
        tagger = BuildTagger(self.client, registry_clients(registry_params, self.client), self.repo_source,
                             check_mode=self.check_mode)
        tagged = tagger.run(namespace, summary["name"])
        tagged["warnings"] = tagger.warnings
        return tagged

    def stop_trigger_builds(self, key, base_digest):
        """Cancel builds the cluster's trigger started for this base image, as stop_autorebuild_if_disabled did.

        Returns (whether a build was cancelled, a note for the report or '').
        """
        if not base_digest:
            return False, ""
        namespace, name = key
        notes = []
        cancelled = False
        for build in builds_of(self.client, namespace, name):
            if build_base_digest(build) != base_digest or not triggered_by_image_change(build):
                continue
            build_name = build["metadata"]["name"]
            if is_active(build):
                if not self.check_mode:
                    cancel_build(self.client, namespace, build_name)
                with self._lock:
                    self.cancelled.append(key_name((namespace, build_name)))
                cancelled = True
                notes.append("cancelled build %s that the ImageChange trigger started" % build_name)
            elif build_phase(build) == "Complete":
                notes.append("build %s that the ImageChange trigger started had already completed; its image is not imported"
                             % build_name)
        return cancelled, ("; " + "; ".join(notes)) if notes else ""

    # -- the whole run ---------------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        root = self.root()
        # Dependents of the new image under any of its tags (latest, version, version-release).
        graph = dependents_graph(self.client, self.buildconfigs(), root)
        root_outcome = Outcome("root", digest=self.root_digest(root) if graph.nodes else self.params["digest"])
        follower = BuildFollower(self.client, self.params["wait_timeout"])
        try:
            with ThreadPoolExecutor(max_workers=GIT_WORKERS, thread_name_prefix="git") as git_pool:
                repo_configs = self.prefetch_repo_configs(graph, git_pool)
                outcomes = run_wave(
                    graph, root_outcome,
                    lambda key, parents: self.rebuild(key, parents, graph, repo_configs),
                    self.params["parallel"], follower,
                )
        finally:
            follower.stop()
        rows = make_rows(graph, outcomes)
        failed = [row for row in rows if row["action"] == FAILED]
        # Failures while the server was lost are not the dependents' own: the run as a whole could not go on.
        unreachable = self.client.unreachable if failed else None
        table = report_table(rows)
        counts = defaultdict(int)
        for row in rows:
            counts[row["action"]] += 1
        return {
            "changed": any(o.changed for o in outcomes.values()),
            "failed_dependents": [row["buildconfig"] for row in failed],
            "imagestreamtag": "%s/%s" % root,
            "digest": root_outcome.digest,
            "rows": rows,
            "report_table": table,
            "summary": dict(counts),
            "cycles": [[key_name(k) for k in path] for path in graph.cycles],
            "cancelled_builds": sorted(self.cancelled),
            "elapsed": round(time.monotonic() - started, 3),
            "git_fetches": len(self.repo_source.fetches),
            "unreachable": str(unreachable) if unreachable else None,
        }


def run_autorebuild(module):
    """The osbs_autorebuild module."""
    params = module.params
    if params["from_latest"]:
        # The one commit rule (build.py): the cluster's trigger builds the recorded commit, so the wave does too.
        raise OsbsFlowError(
            "from_latest is not supported: an autorebuild builds the commit each BuildConfig records (its last user "
            "build's), as the builds the cluster's ImageChange triggers start do; to build a branch head, run a user "
            "build of it (the osbs.flow.build playbook)"
        )
    cache_dir = params["git_cache_dir"]
    temporary = cache_dir is None
    if temporary:
        cache_dir = tempfile.mkdtemp(prefix="osbs-flow-repos-")
    else:
        cache_dir = os.path.expanduser(cache_dir)
    try:
        result = Wave(module.client, params, module.check_mode, RepoSource(cache_dir)).run()
    finally:
        if temporary:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if result["failed_dependents"] and params["fail_on_error"]:
        if result["unreachable"]:
            # Not the dependents' own failures: the server went away, and a rerun finishes the wave.
            raise OsbsFlowError(
                "%s: the wave of the dependents of %s stopped; run it again once the server answers:\n%s"
                % (result["unreachable"], result["imagestreamtag"], result["report_table"]),
                **result
            )
        raise OsbsFlowError(
            "autorebuild of the dependents of %s failed for %s:\n%s"
            % (result["imagestreamtag"], ", ".join(result["failed_dependents"]), result["report_table"]),
            **result
        )
    return result
