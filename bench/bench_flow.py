#!/usr/bin/env python3
"""Flow overhead and no-op rerun of `ansible-playbook osbs.flow.build`, on a private osbs-local.  Prints JSON.

    .venv/bin/python bench/bench_flow.py [--runs 5] [--noop-runs 3] [--rounds 12] [--output FILE]

1. Flow overhead: the whole playbook for one image with no dependents, against a bare
   `buildah bud` + `buildah push` of the same Dockerfile to the same registry, interleaved (the
   order alternates each run). Every run builds for real: the playbook run gets a new commit and
   the bare run a new seed, both in the RUN line, so no layer cache applies to the work.
   The Dockerfile (FROM a busybox-static base, see `dockerfile()`) does `--rounds` times
   `seq $i 1000000 | sha256sum` (about 0.4 s of CPU each here) and writes a 3.4 MB file.
2. No-op rerun: the same playbook again with nothing changed: wall time and the write requests the
   engine received (its /metrics counters: create, update, patch, delete), by verb and resource.

Per-task times come from ansible.posix.profile_tasks. The bare run uses the flags the engine uses
(vfs storage, chroot isolation, docker format, --layers) with its own storage, the base already
pulled, as a developer's second build would be.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import (  # noqa: E402
    COLLECTIONS,
    buildah_command,
    commit_files,
    counts_delta,
    describe_requests,
    engine_session,
    flow_args,
    make_git_repo,
    median,
    run,
    run_playbook,
)

sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.osbs.flow.plugins.module_utils.naming import buildconfig_name  # noqa: E402

IMAGE = "bench/heavy"


def dockerfile(registry: str, seed: str, rounds: int) -> str:
    return (
        "FROM %s/bench/base:latest\n"
        "LABEL name=%s\n"
        # CPU work with busybox tools, then a 3.4 MB file so the push moves a real layer.
        'RUN echo "seed %s" > /seed && for i in $(seq 1 %d); do seq $i 1000000 | sha256sum >> /sums; done'
        " && seq 1 500000 > /data\n" % (registry, IMAGE, seed, rounds)
    )


class Bare:
    """`buildah bud` + `buildah push` of the Dockerfile, as a person would run them, timed.

    The baseline is plain `buildah bud` (one commit at the end). Each run also times the same build
    with --layers (a commit after every step, which the engine uses for its cache) and the
    `pull --policy always` of the base the engine does before every build, to tell those costs
    apart from the flow's own.
    """

    def __init__(self, engine, workdir: Path, rounds: int):
        self.engine = engine
        self.rounds = rounds
        self.context = benchlib.fresh_dir(workdir / "bare")
        self.buildah = buildah_command(workdir / "bare-storage")
        self.auth = ["--authfile", engine.env["REGISTRY_AUTH_FILE"],
                     "--cert-dir", str(engine.state_dir / "certs.d" / engine.registry)]
        self.target = "%s/%s-bare:latest" % (engine.registry, IMAGE)

    def _bud(self, seed: str, *flags: str) -> float:
        (self.context / "Dockerfile").write_text(dockerfile(self.engine.registry, seed, self.rounds))
        started = time.perf_counter()
        run([*self.buildah, "bud", "--isolation", "chroot", "--format", "docker", *flags, *self.auth,
             "-t", self.target, str(self.context)])
        return time.perf_counter() - started

    def run(self, seed: str) -> dict:
        bud = self._bud(seed)
        started = time.perf_counter()
        run([*self.buildah, "push", *self.auth, self.target, "docker://%s" % self.target])
        push = time.perf_counter() - started
        layers = self._bud(seed + "-layers", "--layers")
        started = time.perf_counter()
        run([*self.buildah, "pull", "--quiet", "--policy", "always", *self.auth, "%s/bench/base:latest" % self.engine.registry])
        pull = time.perf_counter() - started
        return {"bud_s": round(bud, 3), "push_s": round(push, 3), "total_s": round(bud + push, 3),
                "bud_layers_s": round(layers, 3), "base_pull_always_s": round(pull, 3)}


class LogFollower:
    """Follows a build's log (follow=true) and stamps each line with this process's clock on arrival."""

    MARKS = (("clone", "Cloning "), ("pull", "Pulling image "), ("steps", "STEP 1/"), ("commit", "COMMIT "),
             ("push", "Pushing image "), ("pushed", "Pushed image "))

    def __init__(self, session, url: str):
        self.session, self.url = session, url
        self.lines: list[tuple[float, str]] = []
        self.requests = 0  # this follower's own requests, left out of the flow's request counts
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            self.requests += 1
            try:
                response = self.session.get(self.url, params={"follow": "true"}, stream=True, timeout=(10, 600))
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if response.status_code != 200:  # no such build yet; once it exists the engine holds the request until it runs
                response.close()
                time.sleep(0.2)
                continue
            for line in response.iter_lines(decode_unicode=True):
                self.lines.append((time.time(), line or ""))
            return

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)

    def phases(self) -> dict:
        marks = {}
        steps = []
        for stamp, line in self.lines:
            for name, prefix in self.MARKS:
                if line.startswith(prefix) and name not in marks:
                    marks[name] = stamp
            if line.startswith("STEP "):
                steps.append((stamp, line.split(":", 1)[1].strip().split(" ", 1)[0]))
        def span(a, b):
            return round(marks[b] - marks[a], 3) if a in marks and b in marks else None
        # A step lasts until the next one starts; the last one until COMMIT.
        step_times = {}
        ends = [stamp for stamp, _ in steps[1:]] + [marks.get("commit")]
        for (stamp, keyword), end in zip(steps, ends):
            if end is not None:
                step_times.setdefault(keyword, 0.0)
                step_times[keyword] += end - stamp
        appended = steps[-2:] if len(steps) >= 2 else []  # the engine's ENV and LABEL lines
        return {
            "first_line": marks.get("clone") or (self.lines[0][0] if self.lines else None),
            "last_line": self.lines[-1][0] if self.lines else None,
            "clone_s": span("clone", "pull"),
            "base_pull_s": span("pull", "steps"),
            "steps_s": span("steps", "commit"),
            "commit_s": span("commit", "push"),
            "push_s": span("push", "pushed"),
            "step_s_by_keyword": {k: round(v, 3) for k, v in step_times.items()},
            "engine_appended_env_label_steps_s": round((marks["commit"] - appended[0][0]), 3)
            if appended and "commit" in marks else None,
        }


class Flow:
    def __init__(self, engine, workdir: Path, rounds: int):
        self.engine = engine
        self.rounds = rounds
        self.repo = workdir / "repos" / "heavy"
        self.git_uri, _ = make_git_repo(self.repo, {"Dockerfile": dockerfile(engine.registry, "initial", rounds)})
        self.bc = buildconfig_name(self.git_uri, "main")
        self.session, self.api = engine_session(engine)

    def latest_build(self) -> dict | None:
        response = self.session.get("%s/apis/build.openshift.io/v1/namespaces/%s/builds" % (self.api, self.engine.namespace),
                                    params={"labelSelector": "openshift.io/build-config.name=%s" % self.bc}, timeout=30)
        response.raise_for_status()
        items = response.json()["items"]
        if not items:
            return None
        return max(items, key=lambda b: int(b["metadata"]["annotations"]["openshift.io/build.number"]))

    def run(self, seed: str | None) -> dict:
        """A playbook run; with a seed, after a new commit (a real build), without, nothing changed."""
        if seed is not None:
            commit_files(self.repo, {"Dockerfile": dockerfile(self.engine.registry, seed, self.rounds)}, "seed %s" % seed)
        before_build = self.latest_build()
        number = int(before_build["metadata"]["annotations"]["openshift.io/build.number"]) if before_build else 0
        before = self.engine.metrics()
        follower = None
        if seed is not None:
            follower = LogFollower(self.session, "%s/apis/build.openshift.io/v1/namespaces/%s/builds/%s-%d/log" % (
                self.api, self.engine.namespace, self.bc, number + 1))
        started = time.time()
        result = run_playbook(self.engine, flow_args(self.engine, self.git_uri))
        ended = time.time()
        after = self.engine.metrics()
        if follower:
            follower.close()
            key = ("get", "builds/log")
            after[key] = after.get(key, 0) - follower.requests
        if result["rc"] != 0:
            raise RuntimeError("playbook failed (rc %s):\n%s" % (result["rc"], result["output"][-6000:]))
        build = self.latest_build()
        row = {"wall_s": result["wall_s"], "controller_cpu_s": result["cpu_s"], "task_s": result["task_s"],
               "requests": describe_requests(counts_delta(before, after))}
        if build and (before_build is None or build["metadata"]["name"] != before_build["metadata"]["name"]):
            times = benchlib.build_times(build)
            row["build"] = times["name"]
            row["engine_build_s"] = times["duration_s"]
            row["outside_engine_build_s"] = round(result["wall_s"] - times["duration_s"], 3)
            if follower and follower.lines:
                phases = follower.phases()
                row["phases"] = phases
                row["playbook_start_to_build_log_s"] = round(phases["first_line"] - started, 3)
                row["build_log_end_to_playbook_end_s"] = round(ended - phases["last_line"], 3)
        else:
            row["build"] = None
        return row


def median_of(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return round(median(values), 3) if values else None


def summarize_tasks(rows: list[dict]) -> dict:
    names = {name for row in rows for name in row["task_s"]}
    medians = {name: round(median([row["task_s"].get(name, 0.0) for row in rows]), 3) for name in names}
    return dict(sorted(medians.items(), key=lambda item: -item[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each (after one warm-up of each)")
    parser.add_argument("--noop-runs", type=int, default=3, help="playbook reruns with nothing changed")
    parser.add_argument("--rounds", type=int, default=12, help="sha256 rounds in the Dockerfile's RUN")
    parser.add_argument("--state-dir", help="osbs-local state dir (default: a new one under /tmp, removed after)")
    parser.add_argument("--output", help="also write the JSON there")
    parser.add_argument("--keep", action="store_true", help="leave the engine running and the files in place")
    args = parser.parse_args()

    workdir = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="bench-flow-"))
    report = {"benchmark": "flow overhead and no-op rerun", "machine": benchlib.machine()}
    report["machine"]["note"] = ("a shared 2-core machine: other sessions ran tests and builds at the same time "
                                 "(see loadavg); the runs are interleaved so both sides see the same load")
    engine = benchlib.start_engine(workdir / "osbs-local")
    try:
        benchlib.busybox_base(engine, "bench/base", workdir / "base-storage")
        flow = Flow(engine, workdir, args.rounds)
        bare = Bare(engine, workdir, args.rounds)
        report["dockerfile"] = dockerfile(engine.registry, "<new each run>", args.rounds)
        report["method"] = __doc__.split("\n\n", 2)[2].strip()
        # Warm-up: the first playbook run creates the BuildConfig and ImageStream; the first bare run pulls the base.
        warmup = {"flow": flow.run("warmup"), "bare": bare.run("warmup")}
        flows, bares = [], []
        for index in range(args.runs):
            order = ("flow", "bare") if index % 2 == 0 else ("bare", "flow")
            for which in order:
                if which == "flow":
                    flows.append(flow.run("flow-%d" % index))
                else:
                    bares.append(bare.run("bare-%d" % index))
            print("run %d: flow %.1f s (engine build %.1f s), bare %.1f s" % (
                index, flows[-1]["wall_s"], flows[-1]["engine_build_s"], bares[-1]["total_s"]), file=sys.stderr)
        noops = [flow.run(None) for _ in range(args.noop_runs)]

        flow_median = median([row["wall_s"] for row in flows])
        bare_median = median([row["total_s"] for row in bares])
        engine_median = median([row["engine_build_s"] for row in flows])
        report["flow_overhead"] = {
            "runs": args.runs,
            "playbook_wall_s_median": round(flow_median, 3),
            "bare_bud_push_s_median": round(bare_median, 3),
            "overhead_s": round(flow_median - bare_median, 3),
            "ratio": round(flow_median / bare_median, 3),
            "goal": "overhead < 5 s",
            "goal_met": flow_median - bare_median < 5,
            "breakdown_medians": {
                "engine_build_s (clone, pull, bud, push, as the Build reports it)": round(engine_median, 3),
                "inside_engine_build_beyond_bare_s": round(engine_median - bare_median, 3),
                "outside_engine_build_s (ansible-playbook, modules, API, waiting)":
                    round(median([row["outside_engine_build_s"] for row in flows]), 3),
                "controller_cpu_s (ansible-playbook and its module processes, user+sys)":
                    median_of(flows, "controller_cpu_s"),
                "playbook_start_to_build_log_s (ansible start, source, BuildConfig, instantiate, scheduling)":
                    median_of(flows, "playbook_start_to_build_log_s"),
                "build_log_end_to_playbook_end_s (completion seen, import, wave, summary, exit)":
                    median_of(flows, "build_log_end_to_playbook_end_s"),
                "bare_bud_s": round(median([row["bud_s"] for row in bares]), 3),
                "bare_push_s": round(median([row["push_s"] for row in bares]), 3),
                "bare_bud_with_layers_s (as the engine builds)": round(median([row["bud_layers_s"] for row in bares]), 3),
                "base_pull_policy_always_s (the engine does it every build)": round(median([row["base_pull_always_s"] for row in bares]), 3),
            },
            "engine_build_phases_medians (from the followed build log)": {
                key: median_of([row["phases"] for row in flows if row.get("phases")], key)
                for key in ("clone_s", "base_pull_s", "steps_s", "commit_s", "push_s", "engine_appended_env_label_steps_s")
            },
            "engine_build_step_s_medians": {
                keyword: median_of([row["phases"]["step_s_by_keyword"] for row in flows if row.get("phases")], keyword)
                for keyword in ("FROM", "LABEL", "ARG", "RUN", "ENV")
            },
            "task_s_medians": summarize_tasks(flows),
            "requests_per_build_run": flows[-1]["requests"],
            "playbook_runs": [{k: v for k, v in row.items() if k not in ("task_s", "requests", "phases")} for row in flows],
            "bare_runs": bares,
            "warmup": {"flow_wall_s": warmup["flow"]["wall_s"], "bare_total_s": warmup["bare"]["total_s"]},
        }
        writes = [row["requests"]["writes"] for row in noops]
        report["noop_rerun"] = {
            "runs": args.noop_runs,
            "wall_s_median": round(median([row["wall_s"] for row in noops]), 3),
            "wall_s": [row["wall_s"] for row in noops],
            "controller_cpu_s_median": median_of(noops, "controller_cpu_s"),
            "builds_started": sum(1 for row in noops if row["build"]),
            "write_requests": writes,
            "goal": "0 write requests",
            "goal_met": all(w == 0 for w in writes) and not any(row["build"] for row in noops),
            "requests_first_rerun": noops[0]["requests"],
            "task_s_medians": summarize_tasks(noops),
        }
    finally:
        if not args.keep:
            benchlib.stop_engine(engine)
            if not args.state_dir:
                benchlib.run(["rm", "-rf", str(workdir)])
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    benchlib.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
