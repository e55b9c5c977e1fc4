# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 6 of the flow: rebuild every dependent of a new image, parents before children.

The graph is worked out once: the BuildConfigs are listed once, mapped by the
ImageStreamTag their ImageChange triggers name, and each BuildConfig's output
image is mapped to the ImageStreamTag reactor_import_image moves. Everything
reachable from the new image is the wave. A cycle (BuildConfigs triggering on
each other's images) is reported as failed, never followed.

The wave runs in one process: a dependent starts as soon as all of its parents
in the wave have their new image imported, so independent branches never wait
for each other, and a failure only blocks the failed dependent's own
descendants. A bounded thread pool does the short steps (read the repo config,
start or adopt the build, import the image); the builds themselves are
followed by one watch per namespace, so every ready dependent's build runs at
once, as many as the cluster schedules, and each image is imported the moment
its build ends, whatever order they end in. (One module with threads, rather
than an Ansible loop over osbs_build: loops are serial and cost about half a
second per item.)
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
import traceback
from collections import defaultdict, namedtuple
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.osbs.flow.plugins.module_utils.build import (
    BuildRunner,
    BuildsRunning,
    WouldStart,
    build_base_digest,
    build_summary,
    failed_build_log,
    failure_message,
    recorded_commit,
    trigger_tag,
)
from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import recorded_repo_config_file
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import imagestreamtag_for_image
from ansible_collections.osbs.flow.plugins.module_utils.imports import (
    ImageImporter,
    output_imagestreamtag,
    split_imagestreamtag,
    trigger_imagestreamtag,
)
from ansible_collections.osbs.flow.plugins.module_utils.openshift import (
    ACTIVE_BUILD_PHASES,
    TERMINAL_BUILD_PHASES,
    ApiError,
    BuildFollower,
    builds_of,
    cancel_build,
)
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import RepoSource

ROOT = ("", "")  # the key of the new image the wave starts from

REBUILT = "rebuilt"
ADOPTED = "adopted"
SKIPPED = "skipped"
FAILED = "failed"
BLOCKED = "blocked"
UNCHANGED = "unchanged"
# After these a dependent's children go on; after the others they do not.
PROCEEDS = (REBUILT, ADOPTED, UNCHANGED)

GIT_WORKERS = 8
LOG_LINES_IN_REASON = 5

# -- the graph (pure) ----------------------------------------------------------------------------------

Graph = namedtuple("Graph", "root nodes parents children base_parent order depth cycles")
"""root: (namespace, istag) of the new image; nodes: key -> BuildConfig, key = (namespace, name);
parents/children: key -> set of keys (parents may hold ROOT); base_parent: key -> the parent whose
image the docker strategy builds from (or None); order: keys, parents first; depth: key -> 1 for a
direct dependent of the new image; cycles: lists of keys, each a cycle in order."""


def bc_key(buildconfig):
    return buildconfig["metadata"]["namespace"], buildconfig["metadata"]["name"]


def key_name(key):
    return "%s/%s" % key


def trigger_tags(buildconfig):
    """Every (namespace, istag) an ImageChange trigger of the BuildConfig watches, paused or not."""
    tags = []
    for trigger in buildconfig.get("spec", {}).get("triggers") or []:
        tag = trigger_imagestreamtag(buildconfig, trigger)
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def build_graph(buildconfigs, root):
    """The wave of dependents reachable from the ImageStreamTag `root` = (namespace, name:tag)."""
    consumers = defaultdict(list)
    outputs = {}
    by_key = {}
    for bc in buildconfigs:
        key = bc_key(bc)
        by_key[key] = bc
        outputs[key] = output_imagestreamtag(bc)
        for tag in trigger_tags(bc):
            consumers[tag].append(key)

    nodes = {}
    queue, seen_tags = [root], {root}
    while queue:
        tag = queue.pop(0)
        for key in sorted(consumers.get(tag, ())):
            if key in nodes:
                continue
            nodes[key] = by_key[key]
            out = outputs[key]
            if out and out not in seen_tags:
                seen_tags.add(out)
                queue.append(out)

    producers = defaultdict(set)
    for key in nodes:
        if outputs[key]:
            producers[outputs[key]].add(key)
    parents = {key: set() for key in nodes}
    children = {key: set() for key in nodes}
    children[ROOT] = set()
    base_parent = {}
    for key, bc in nodes.items():
        for tag in trigger_tags(bc):
            found = set(producers.get(tag, ()))
            if tag == root:
                found.add(ROOT)
            for parent in found:
                parents[key].add(parent)
                children[parent].add(key)
        strategy_tag = trigger_tag(bc)
        base_parent[key] = None
        if strategy_tag:
            strategy_tag = (strategy_tag[0], "%s:%s" % split_imagestreamtag(strategy_tag[1]))
            candidates = sorted(producers.get(strategy_tag, ()))
            if strategy_tag == root:
                base_parent[key] = ROOT
            elif candidates:
                base_parent[key] = candidates[0]

    cycles = find_cycles(nodes, children)
    order, depth = topological_order(nodes, parents, cycles)
    return Graph(root, nodes, parents, children, base_parent, order, depth, cycles)


def find_cycles(nodes, children):
    """Each strongly connected group of BuildConfigs that feeds itself, as one cycle path (Tarjan)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = [0]

    def connect(start):
        # Iterative Tarjan, so a long chain cannot exhaust Python's recursion limit.
        work = [(start, iter(sorted(children.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in nodes:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter[0]
                    counter[0] += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(children.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in children.get(node, ()):
                    groups.append(set(group))

    for key in sorted(nodes):
        if key not in index:
            connect(key)
    return sorted((_cycle_path(group, children) for group in groups), key=lambda path: path[0])


def _cycle_path(group, children):
    """A path through the group from its first member back to it: [a, b, ..., a]."""
    start = min(group)
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for succ in sorted(children.get(node, ())):
            if succ == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if succ in group and succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return [start, start]


def topological_order(nodes, parents, cycles):
    """Keys with every parent before its children (edges inside a cycle ignored), and each key's depth."""
    cycle_of = {}
    for number, path in enumerate(cycles):
        for key in path:
            cycle_of[key] = number

    def counts(key, parent):
        return parent != ROOT and parent in nodes and not (key in cycle_of and cycle_of.get(parent) == cycle_of[key])
    pending = {key: {p for p in parents[key] if counts(key, p)} for key in nodes}
    depth = {}
    for key in nodes:
        if not pending[key]:
            depth[key] = 1
    order = []
    ready = sorted(key for key in nodes if not pending[key])
    waiting_children = defaultdict(set)
    for key, ps in pending.items():
        for parent in ps:
            waiting_children[parent].add(key)
    while ready:
        ready.sort(key=lambda k: (depth[k], k))
        key = ready.pop(0)
        order.append(key)
        for child in waiting_children.get(key, ()):
            pending[child].discard(key)
            depth[child] = max(depth.get(child, 1), depth[key] + 1)
            if not pending[child]:
                ready.append(child)
    return order, depth


# -- running the wave (threads; `work` does the cluster part) -------------------------------------------

class Outcome:
    """What happened to one dependent; `digest` is its newly imported image for its children."""

    def __init__(self, action, reason="", build=None, digest=None, duration=None, changed=False, pending=False, detail=None):
        self.action = action
        self.reason = reason
        self.build = build
        self.digest = digest
        self.duration = duration
        self.changed = changed
        # Check mode: the dependent would be rebuilt, so its new digest is not known.
        self.pending = pending
        self.detail = detail  # the traceback of an unexpected error, for the result rather than the table

    def __repr__(self):
        return "Outcome(%s, %r)" % (self.action, self.reason)


class Follow:
    """`work`'s answer when a build has to end first: `then(build)` finishes the dependent once it has."""

    def __init__(self, build, then):
        self.build = build
        self.then = then


def run_wave(graph, root_outcome, work, parallel, follower=None):
    """Run work(key, parent_outcomes) for every dependent once all its parents proceeded.

    Returns key -> Outcome. A dependent whose parent failed or was blocked is
    blocked; one whose parent was skipped is skipped; a cycle's members fail.
    `work` runs in up to `parallel` threads and returns an Outcome, or a
    Follow when its build is still running: `follower.follow(build, callback)`
    then calls back when the build ends, and `then(build)` runs in up to
    `parallel` threads of its own for the Outcome, so an ended build's import
    never queues behind other dependents' starts. No thread waits for a build.
    `work` and `then` may raise, which fails that dependent alone.
    """
    outcomes = {}
    remaining = {key: set(graph.parents[key]) for key in graph.nodes}
    started = set()
    in_flight = set()
    results = queue.Queue()  # (key, Outcome or Follow), from the pool's threads

    def submit(pool, key, function, *args):
        pool.submit(lambda: results.put((key, _guarded(function, *args))))

    def settle(key, outcome):
        if key in outcomes:
            return
        outcomes[key] = outcome
        propagate(key)

    def propagate(key):
        for child in sorted(graph.children.get(key, ())):
            if child in outcomes or child in started:
                continue
            remaining[child].discard(key)
            if not remaining[child]:
                ready(child)

    def ready(key):
        parent_outcomes = {p: outcomes[p] for p in graph.parents[key]}
        broken = sorted(p for p, o in parent_outcomes.items() if o.action in (FAILED, BLOCKED))
        if broken:
            settle(key, Outcome(BLOCKED, "waits for %s, which %s" % (
                ", ".join(key_name(p) for p in broken),
                "failed" if parent_outcomes[broken[0]].action == FAILED else "is blocked",
            )))
            return
        idle = sorted(p for p, o in parent_outcomes.items() if o.action not in PROCEEDS and p != ROOT)
        if idle:
            settle(key, Outcome(SKIPPED, "its base image from %s was not rebuilt (%s)" % (
                ", ".join(key_name(p) for p in idle), parent_outcomes[idle[0]].action,
            )))
            return
        started.add(key)
        in_flight.add(key)
        submit(start_pool, key, work, key, parent_outcomes)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="wave-start") as start_pool, \
            ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="wave-finish") as finish_pool:
        # Every cycle member fails before any news spreads, so none of them reads as merely blocked.
        for path in graph.cycles:
            text = " -> ".join(key_name(k) for k in path)
            for key in path[:-1]:
                outcomes[key] = Outcome(FAILED, "dependency cycle %s: each is rebuilt when the other's image changes; "
                                                "remove one of these ImageChange triggers" % text)
        for path in graph.cycles:
            for key in path[:-1]:
                propagate(key)
        settle(ROOT, root_outcome)
        while in_flight:
            key, result = results.get()
            if isinstance(result, Follow):
                if follower is None:
                    result = Outcome(FAILED, "the wave was given no follower for build %s" % result.build["metadata"]["name"])
                else:
                    follower.follow(result.build, lambda build, key=key, then=result.then: submit(finish_pool, key, then, build))
                    continue
            in_flight.discard(key)
            settle(key, result)
    for key in graph.nodes:
        if key not in outcomes:  # only reachable through a cycle: already reported there
            outcomes[key] = Outcome(BLOCKED, "depends on a dependency cycle")
    return {key: outcomes[key] for key in graph.nodes}


def _guarded(function, *args):
    try:
        return function(*args)
    except OsbsFlowError as exc:
        return Outcome(FAILED, str(exc))
    except ApiError as exc:
        return Outcome(FAILED, str(exc))
    except Exception as exc:  # a bug or a broken connection: that dependent fails, the others go on
        return Outcome(FAILED, "%s: %s" % (type(exc).__name__, exc), detail=traceback.format_exc())


# -- the report ----------------------------------------------------------------------------------------

TABLE_COLUMNS = (("image", "IMAGE"), ("buildconfig", "BUILDCONFIG"), ("action", "ACTION"), ("build", "BUILD"),
                 ("digest", "NEW DIGEST"), ("duration", "DURATION"), ("reason", "REASON"))


def make_rows(graph, outcomes):
    rows = []
    for key in graph.order + sorted(k for k in graph.nodes if k not in graph.order):
        outcome = outcomes[key]
        bc = graph.nodes[key]
        rows.append({
            "image": ((bc.get("spec", {}).get("output") or {}).get("to") or {}).get("name"),
            "buildconfig": key[1],
            "namespace": key[0],
            "action": outcome.action,
            "build": outcome.build,
            "digest": outcome.digest if outcome.action in (REBUILT, ADOPTED, UNCHANGED) else None,
            "duration": outcome.duration,
            "reason": outcome.reason,
            "depth": graph.depth.get(key),
            "parents": sorted(key_name(p) if p != ROOT else "%s/%s" % graph.root for p in graph.parents[key]),
        })
        if outcome.detail:
            rows[-1]["traceback"] = outcome.detail
    return rows


def short_digest(digest):
    """`sha256:` and the first 12 hex digits, as a person compares digests; None stays None."""
    if not digest:
        return digest
    algorithm, _sep, hexdigits = digest.partition(":")
    return "%s:%s" % (algorithm, hexdigits[:12]) if hexdigits else digest[:12]


def triggered_by_image_change(build):
    """Whether an ImageChange trigger (the cluster's, or an autorebuild naming one) started the build."""
    return any(cause.get("imageChangeBuild") for cause in build.get("spec", {}).get("triggeredBy") or [])


def _cell(field, value):
    if value is None or value == "":
        return "-"
    if field == "digest":
        return value.split(":", 1)[-1][:12]
    if field == "duration":
        return "%.1fs" % value
    if field == "image":
        # The repository as people name the image (its `name` label), without the registry host.
        first, _sep, rest = value.partition("/")
        return rest if rest and ("." in first or ":" in first or first == "localhost") else value
    return " ".join(str(value).split())


def report_table(rows):
    """A fixed-width table, one line per dependent, for a person to read."""
    if not rows:
        return "no dependents"
    lines = [[title for _field, title in TABLE_COLUMNS]]
    for row in rows:
        lines.append([_cell(field, row[field]) for field, _title in TABLE_COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# -- the cluster part ----------------------------------------------------------------------------------

class RunnerModule:
    """What BuildRunner needs of a module, for one dependent's build in a wave thread."""

    def __init__(self, params, client, check_mode, warn):
        self.params = params
        self.client = client
        self.check_mode = check_mode
        self.warn = warn


class Wave:
    """One run of osbs_autorebuild; `module` is an OsbsOpenShiftModule."""

    def __init__(self, module, repo_source):
        self.module = module
        self.params = module.params
        self.client = module.client
        self.check_mode = module.check_mode
        self.repo_source = repo_source
        self.importer = ImageImporter(self.client, self.check_mode)
        self.cancelled = []
        self._lock = threading.Lock()

    def root(self):
        namespace = self.params["namespace"]
        istag = self.params["imagestreamtag"] or imagestreamtag_for_image(self.params["image"])
        return namespace, "%s:%s" % split_imagestreamtag(istag)

    def root_digest(self, root):
        digest = self.params["digest"]
        if digest:
            return digest
        istag = self.client.get("ImageStreamTag", root[0], root[1])
        if not istag or not istag.get("image"):
            raise OsbsFlowError(
                "ImageStreamTag %s/%s has no image: import the new image first with osbs.flow.reactor_import_image" % root
            )
        return istag["image"]["metadata"]["name"]

    def buildconfigs(self):
        namespaces = self.params["namespaces"] or [self.params["namespace"]]
        items = []
        for namespace in dict.fromkeys(namespaces):
            items.extend(self.client.list("BuildConfig", namespace)["items"])
        return items

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
        base_digest = base.digest if base else None
        try:
            commit, config = repo_configs[key].result()
        except OsbsFlowError as exc:
            cancelled, note = self.stop_trigger_builds(key, base_digest)
            return Outcome(FAILED, str(exc) + note, changed=cancelled)
        if not config["autorebuild_enabled"]:
            cancelled, note = self.stop_trigger_builds(key, base_digest)
            return Outcome(SKIPPED, "autorebuilds are disabled by %s at commit %s%s" % (
                recorded_repo_config_file(bc), (commit or "")[:12], note), changed=cancelled)

        if self.check_mode and any(o.pending for o in parent_outcomes.values()):
            waiting = sorted(key_name(p) for p, o in parent_outcomes.items() if o.pending)
            return Outcome(REBUILT, "check mode: would be rebuilt once %s has its new image" % ", ".join(waiting),
                           changed=True, pending=True)

        runner = BuildRunner(RunnerModule(self.runner_params(key, base_digest), self.client, self.check_mode, self.module.warn))
        try:
            build, how = runner.start()
        except WouldStart as exc:
            return Outcome(REBUILT, " ".join(filter(None, ["check mode: a build would start", str(exc)])), changed=True, pending=True)
        except BuildsRunning as exc:
            # Another build of this BuildConfig (a user build, say) runs: follow it like the wave's own builds
            # and try again once it has ended, rather than hold a thread while the other dependents wait.
            def retry(ended):
                if ended.get("status", {}).get("phase", "New") not in TERMINAL_BUILD_PHASES:
                    raise runner.still_running([ended])
                return self.rebuild(key, parent_outcomes, graph, repo_configs)
            return Follow(exc.builds[0], retry)
        if build.get("status", {}).get("phase", "New") not in TERMINAL_BUILD_PHASES and self.check_mode:
            return Outcome(ADOPTED, "check mode: build %s is %s" % (build["metadata"]["name"], build["status"].get("phase")),
                           build=build["metadata"]["name"], pending=True)

        def then(ended):
            try:
                return self.finish(bc, runner, ended, how, base_digest, started)
            except (OsbsFlowError, ApiError) as exc:
                # A build this run started is a change even when waiting for it or importing its image failed.
                return Outcome(FAILED, str(exc), build=build["metadata"]["name"], changed=how == "started")

        if build.get("status", {}).get("phase", "New") in TERMINAL_BUILD_PHASES:
            return then(build)
        return Follow(build, then)

    def finish(self, bc, runner, build, how, base_digest, started):
        """Once the build has ended (or timed out): import its image and say what happened."""
        if build.get("status", {}).get("phase", "New") not in TERMINAL_BUILD_PHASES:
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
        if self.check_mode and imported["changed"]:
            reason = "check mode: its image would be imported"
        return Outcome(action, reason, build=summary["name"], digest=imported["digest"],
                       duration=summary["duration"] if summary["duration"] is not None else round(time.monotonic() - started, 3),
                       changed=how == "started" or imported["changed"], pending=self.check_mode and imported["changed"])

    def import_output(self, bc, summary):
        """Import the image the build pushed (reactor_import_image's step) into its ImageStreamTag."""
        to = (bc.get("spec", {}).get("output") or {}).get("to") or {}
        if to.get("kind") != "DockerImage":
            # An ImageStreamTag output is moved by the cluster when the build pushes.
            return {"changed": False, "digest": summary["image_digest"]}
        return self.importer.run(bc["metadata"]["namespace"], to["name"], expected_digest=summary["image_digest"],
                                 insecure=self.params["insecure_registry"])

    def runner_params(self, key, base_digest):
        return {
            "namespace": key[0],
            "buildconfig": key[1],
            "mode": "autorebuild",
            "git_commit": None,
            "from_latest": self.params["from_latest"],
            "base_image_digest": base_digest,
            "when_running": "return",
            "force": False,
            "wait": True,
            "wait_timeout": self.params["wait_timeout"],
            "cancel_on_timeout": False,
        }

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
            phase = build.get("status", {}).get("phase", "New")
            if phase in ACTIVE_BUILD_PHASES:
                if not self.check_mode:
                    cancel_build(self.client, namespace, build_name)
                with self._lock:
                    self.cancelled.append(key_name((namespace, build_name)))
                cancelled = True
                notes.append("cancelled build %s that the ImageChange trigger started" % build_name)
            elif phase == "Complete":
                notes.append("build %s that the ImageChange trigger started had already completed; its image is not imported"
                             % build_name)
        return cancelled, ("; " + "; ".join(notes)) if notes else ""

    # -- the whole run ---------------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        root = self.root()
        graph = build_graph(self.buildconfigs(), root)
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
        }


def run_autorebuild(module):
    """The osbs_autorebuild module."""
    params = module.params
    cache_dir = params["git_cache_dir"]
    temporary = cache_dir is None
    if temporary:
        cache_dir = tempfile.mkdtemp(prefix="osbs-flow-repos-")
    else:
        cache_dir = os.path.expanduser(cache_dir)
    try:
        result = Wave(module, RepoSource(cache_dir)).run()
    finally:
        if temporary:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if result["failed_dependents"] and params["fail_on_error"]:
        module.fail_json(
            msg="autorebuild of the dependents of %s failed for %s:\n%s"
                % (result["imagestreamtag"], ", ".join(result["failed_dependents"]), result["report_table"]),
            **result
        )
    return result
