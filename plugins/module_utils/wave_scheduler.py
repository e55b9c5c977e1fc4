# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 6, the scheduler: each dependent starts once all its parents in the wave have their new image.

Independent branches never wait for each other, and a failure only blocks the
failed dependent's own descendants. Bounded thread pools run the short steps
(the `work` the caller gives: start or adopt a build, import an image); no
thread waits for a build: a BuildFollower calls back when one ends.
"""

from __future__ import annotations

import queue
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.wave_graph import ROOT, key_name

REBUILT = "rebuilt"
ADOPTED = "adopted"
SKIPPED = "skipped"
FAILED = "failed"
BLOCKED = "blocked"
UNCHANGED = "unchanged"
# After these a dependent's children go on; after the others they do not.
PROCEEDS = (REBUILT, ADOPTED, UNCHANGED)


class Outcome:
    """What happened to one dependent; `digest` is its newly imported image for its children."""

    def __init__(self, action, reason="", build=None, digest=None, duration=None, changed=False, pending=False, detail=None,
                 nvr=None, unique_pull_spec=None, warnings=None):
        self.action = action
        self.reason = reason
        self.build = build
        self.digest = digest
        self.duration = duration
        self.changed = changed
        # Check mode: the dependent would be rebuilt, so its new digest is not known.
        self.pending = pending
        self.detail = detail  # the traceback of an unexpected error, for the result rather than the table
        # The new image's identity (osbs_image_tags' step in the wave) and what tagging it warned about.
        self.nvr = nvr
        self.unique_pull_spec = unique_pull_spec
        self.warnings = list(warnings or [])

    def __repr__(self):
        return "Outcome(%s, %r)" % (self.action, self.reason)


class Follow:
    """`work`'s answer when a build has to end first: `then(build)` finishes the dependent once it has.

    `changed`: the build is one this run started, which stays a change if the API server is lost meanwhile.
    """

    def __init__(self, build, then, changed=False):
        self.build = build
        self.then = then
        self.changed = changed

    def lost(self, error):
        """The Outcome when the API server was lost while the build was followed."""
        return Outcome(FAILED, "%s; build %s may still be running: run the wave again once the API server answers"
                               % (error, self.build["metadata"]["name"]),
                       build=self.build["metadata"]["name"], changed=self.changed)


def run_wave(graph, root_outcome, work, parallel, follower=None):
    """Run work(key, parent_outcomes) for every dependent once all its parents proceeded.

    Returns key -> Outcome. A dependent whose parent failed or was blocked is
    blocked; one whose parent was skipped is skipped; a cycle's members fail.
    `work` runs in up to `parallel` threads and returns an Outcome, or a
    Follow when its build is still running: `follower.follow(build, callback)`
    then calls back when the build ends, and `then(build)` runs in up to
    `parallel` threads of its own for the Outcome, so an ended build's import
    never queues behind other dependents' starts. No thread waits for a build.
    When the follower loses the API server, the dependent fails at once (Follow.lost).
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
                    follower.follow(result.build, lambda build, key=key, then=result.then: submit(finish_pool, key, then, build),
                                    on_lost=lambda error, key=key, follow=result: results.put((key, follow.lost(error))))
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
    except OsbsFlowError as exc:  # ApiError included
        return Outcome(FAILED, str(exc))
    except Exception as exc:  # a bug or a broken connection: that dependent fails, the others go on
        return Outcome(FAILED, "%s: %s" % (type(exc).__name__, exc), detail=traceback.format_exc())
