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
import sys
import tempfile
import time
from pathlib import Path

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
    """`buildah bud` + `buildah push` of the Dockerfile, as a person would run them, timed."""

    def __init__(self, engine, workdir: Path, rounds: int):
        self.engine = engine
        self.rounds = rounds
        self.context = benchlib.fresh_dir(workdir / "bare")
        self.buildah = buildah_command(workdir / "bare-storage")
        self.auth = ["--authfile", engine.env["REGISTRY_AUTH_FILE"],
                     "--cert-dir", str(engine.state_dir / "certs.d" / engine.registry)]
        self.target = "%s/%s-bare:latest" % (engine.registry, IMAGE)

    def run(self, seed: str) -> dict:
        (self.context / "Dockerfile").write_text(dockerfile(self.engine.registry, seed, self.rounds))
        started = time.perf_counter()
        run([*self.buildah, "bud", "--isolation", "chroot", "--format", "docker", "--layers", *self.auth,
             "-t", self.target, str(self.context)])
        built = time.perf_counter()
        run([*self.buildah, "push", *self.auth, self.target, "docker://%s" % self.target])
        pushed = time.perf_counter()
        # What the engine does on top, before every build: pull the base again (--policy always).
        run([*self.buildah, "pull", "--quiet", "--policy", "always", *self.auth, "%s/bench/base:latest" % self.engine.registry])
        pulled = time.perf_counter()
        return {"bud_s": round(built - started, 3), "push_s": round(pushed - built, 3),
                "total_s": round(pushed - started, 3), "base_pull_always_s": round(pulled - pushed, 3)}


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
        before = self.engine.metrics()
        result = run_playbook(self.engine, flow_args(self.engine, self.git_uri))
        after = self.engine.metrics()
        if result["rc"] != 0:
            raise RuntimeError("playbook failed (rc %s):\n%s" % (result["rc"], result["output"][-6000:]))
        build = self.latest_build()
        row = {"wall_s": result["wall_s"], "task_s": result["task_s"],
               "requests": describe_requests(counts_delta(before, after))}
        if build and (before_build is None or build["metadata"]["name"] != before_build["metadata"]["name"]):
            times = benchlib.build_times(build)
            row["build"] = times["name"]
            row["engine_build_s"] = times["duration_s"]
            row["outside_engine_build_s"] = round(result["wall_s"] - times["duration_s"], 3)
        else:
            row["build"] = None
        return row


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
                "bare_bud_s": round(median([row["bud_s"] for row in bares]), 3),
                "bare_push_s": round(median([row["push_s"] for row in bares]), 3),
                "base_pull_policy_always_s (the engine does it every build)": round(median([row["base_pull_always_s"] for row in bares]), 3),
            },
            "task_s_medians": summarize_tasks(flows),
            "requests_per_build_run": flows[-1]["requests"],
            "playbook_runs": [{k: v for k, v in row.items() if k not in ("task_s", "requests")} for row in flows],
            "bare_runs": bares,
            "warmup": {"flow_wall_s": warmup["flow"]["wall_s"], "bare_total_s": warmup["bare"]["total_s"]},
        }
        writes = [row["requests"]["writes"] for row in noops]
        report["noop_rerun"] = {
            "runs": args.noop_runs,
            "wall_s_median": round(median([row["wall_s"] for row in noops]), 3),
            "wall_s": [row["wall_s"] for row in noops],
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
    benchlib.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
