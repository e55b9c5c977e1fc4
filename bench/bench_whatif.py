#!/usr/bin/env python3
"""What proposed changes would save, measured rather than guessed.  Prints JSON.

    .venv/bin/python bench/bench_whatif.py [--runs 5] [--output FILE]

The committed collection (git HEAD) is copied to a temporary ansible_collections tree and each proposal is applied to
the copy as an exact text replacement (a proposal whose original text is no longer in the file
is reported as stale, not applied). Then, on one private osbs-local with one image built once,
no-op reruns of `ansible-playbook osbs.flow.build` alternate between the unchanged copy and each
patched copy (same machine, same moment): wall time, controller CPU, and the write requests
the engine received. The checkout itself is never modified.

Engine proposals are applied to a copy of the committed osbs_local package, put first on PYTHONPATH
of a second engine; the same trivial build is instantiated on each engine in turn and the Build
durations they report are compared.

It also times the engine's source fetch (osbs_local.executor.git_source.fetch_source, what every build does
first) against a single `git clone --depth 1 --branch`, for the engine proposal.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import REPO, counts_delta, describe_requests, flow_args, make_git_repo, median  # noqa: E402

# Measured and merged already (see README): run_import() leaving a tag already at expected_digest alone
# (no-op rerun 2 -> 0 writes, -0.35 s; in 28081e9) and no wave task when nothing depends on the image
# (-1.13 s; in 18a6f98). What is left to decide:
PROPOSALS = {
    "pipelining": {
        "file": "playbooks/build.yml",
        "what": "set ansible_pipelining: true in the play's vars: each module is fed to Python on stdin instead of "
                "mkdir + write AnsiballZ file + chmod + run + rm of a remote temp dir (connection local too)",
        "old": '    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n',
        "new": '    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n    ansible_pipelining: true\n',
    },
}


# run_streaming_no_join_wait is in the engine since 2d4c921 (measured here before: a trivial build 2.02 -> 0.77 s);
# it stays as the example of an engine proposal and is reported stale.
ENGINE_PROPOSALS = {
    "run_streaming_no_join_wait": {
        "file": "osbs_local/executor/process.py",
        "what": "run_streaming(): the cancel watcher waits on `finished` (woken when the tool exits) and checks "
                "`cancel` every 0.2 s, instead of waiting on `cancel` for 0.2 s at a time, which made the "
                "watcher.join() after every tool (5 git commands, buildah pull, bud, push per build) wait for the "
                "rest of a 0.2 s tick",
        "old": "        while not finished.is_set():\n            if cancel.wait(0.2):\n",
        "new": "        while not finished.wait(0.2):\n            if cancel.is_set():\n",
    },
}


def copy_engine(destination: Path, names: list[str]) -> tuple[Path, list[str]]:
    """The committed osbs_local package under destination (put first on PYTHONPATH), with the proposals applied."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", "osbs_local"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination, apply_proposals(destination, ENGINE_PROPOSALS, names)


def apply_proposals(root: Path, proposals: dict, names: list[str]) -> list[str]:
    """Apply the named proposals to the files under root; returns the names that were stale (text not found)."""
    stale = []
    for name in names:
        proposal = proposals[name]
        path = root / proposal["file"]
        text = path.read_text()
        if proposal["old"] not in text:
            stale.append(name)
            continue
        path.write_text(text.replace(proposal["old"], proposal["new"], 1))
    return stale


def engine_builds(workdir: Path, runs: int) -> dict:
    """The same trivial build, instantiated `runs` times on an engine from the committed package and on one
    with the engine proposals (alternating, one engine at a time): the Build durations the engine reports."""
    import os

    engines = {}
    results = {"unchanged": [], "patched": []}
    packages = {"unchanged": copy_engine(workdir / "engine-unchanged", [])[0]}
    packages["patched"], stale = copy_engine(workdir / "engine-patched", list(ENGINE_PROPOSALS))
    if len(stale) == len(ENGINE_PROPOSALS):
        return {"stale": stale, "note": "every engine proposal is in the committed engine already: nothing to measure"}
    try:
        for variant, package in packages.items():
            os.environ["PYTHONPATH"] = str(package)  # `osbs-local up` starts `python -m osbs_local.cli serve` with it
            try:
                engine = benchlib.start_engine(workdir / ("osbs-%s" % variant))
            finally:
                del os.environ["PYTHONPATH"]
            engines[variant] = engine
            benchlib.busybox_base(engine, "bench/base", workdir / ("storage-%s" % variant))
            uri, _ = make_git_repo(workdir / ("repo-%s" % variant), {
                "Dockerfile": "FROM %s/bench/base:latest\nLABEL name=bench/light\nRUN echo light > /light\n" % engine.registry})
            first = benchlib.run_playbook(engine, flow_args(engine, uri), profile=False)
            if first["rc"] != 0:
                raise RuntimeError("first build on the %s engine failed:\n%s" % (variant, first["output"][-4000:]))
        for _ in range(runs):
            for variant, engine in engines.items():
                results[variant].append(instantiate_and_wait(engine))
    finally:
        for engine in engines.values():
            benchlib.stop_engine(engine)
    unchanged, patched = median(results["unchanged"]), median(results["patched"])
    return {"build": "FROM busybox base + LABEL + RUN echo (what a fan-out dependent builds)", "runs": runs,
            "unchanged_build_s_median": round(unchanged, 3), "patched_build_s_median": round(patched, 3),
            "saves_per_build_s": round(unchanged - patched, 3), "stale": stale,
            "unchanged_build_s": results["unchanged"], "patched_build_s": results["patched"]}


def instantiate_and_wait(engine) -> float:
    session, api = benchlib.engine_session(engine)
    base = "%s/apis/build.openshift.io/v1/namespaces/%s" % (api, engine.namespace)
    name = session.get(base + "/buildconfigs", timeout=30).json()["items"][0]["metadata"]["name"]
    response = session.post(base + "/buildconfigs/%s/instantiate" % name, timeout=30,
                            json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
    response.raise_for_status()
    build = response.json()["metadata"]["name"]
    deadline = time.time() + 300
    while time.time() < deadline:
        status = session.get(base + "/builds/" + build, timeout=30).json()["status"]
        if status.get("phase") in ("Complete", "Failed", "Error", "Cancelled"):
            if status["phase"] != "Complete":
                raise RuntimeError("build %s: %s %s" % (build, status["phase"], status.get("message")))
            return round(status["duration"] / 1e9, 3)
        time.sleep(0.1)
    raise RuntimeError("build %s did not finish" % build)


def copy_collection(destination: Path) -> Path:
    """The committed collection (git HEAD, not the working tree other sessions are editing) under destination."""
    target = destination / "ansible_collections" / "osbs" / "flow"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return destination


def apply(collections: Path, names: list[str]) -> list[str]:
    """Apply the proposals to the copy; returns the names that were stale (text not found)."""
    return apply_proposals(collections / "ansible_collections" / "osbs" / "flow", PROPOSALS, names)


def engine_clone(workdir: Path, uri: str) -> dict:
    from osbs_local.executor import git_source

    fetches, fetches_cancellable, clones = [], [], []
    for index in range(5):
        dest = workdir / ("fetch-%d" % index)
        started = time.perf_counter()
        git_source.fetch_source(uri, "main", None, dest, log=lambda line: None)
        fetches.append(time.perf_counter() - started)
        dest = workdir / ("fetch-cancellable-%d" % index)
        started = time.perf_counter()  # as the engine calls it: with a cancel event
        git_source.fetch_source(uri, "main", None, dest, log=lambda line: None, cancel=threading.Event())
        fetches_cancellable.append(time.perf_counter() - started)
        dest = workdir / ("clone-%d" % index)
        started = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", "main", "--no-tags", uri, str(dest)],
                       check=True, capture_output=True)
        clones.append(time.perf_counter() - started)
    return {"osbs_local.executor.git_source.fetch_source_s": round(median(fetches), 3),
            "osbs_local.executor.git_source.fetch_source_with_cancel_event_s (as builds call it)": round(median(fetches_cancellable), 3),
            "git_clone_depth_1_s": round(median(clones), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="no-op reruns per variant")
    parser.add_argument("--output")
    args = parser.parse_args()
    report = {"benchmark": "what the proposals save", "machine": benchlib.machine(), "method": __doc__.split("\n\n", 2)[2].strip(),
              "proposals": {name: {"file": p["file"], "what": p["what"]} for name, p in PROPOSALS.items()}}
    workdir = Path(tempfile.mkdtemp(prefix="bench-whatif-"))
    engine = benchlib.start_engine(workdir / "osbs-local")
    try:
        variants = {"unchanged": [], **{name: [name] for name in PROPOSALS}}
        if len(PROPOSALS) > 1:
            variants["all"] = list(PROPOSALS)
        paths = {}
        for variant, names in variants.items():
            paths[variant] = copy_collection(workdir / "collections" / variant)
            stale = apply(paths[variant], names)
            if stale:
                report["proposals"].update({name: dict(report["proposals"][name], stale=True) for name in stale})
        benchlib.busybox_base(engine, "bench/base", workdir / "base-storage")
        uri, _ = make_git_repo(workdir / "repos" / "light", {
            "Dockerfile": "FROM %s/bench/base:latest\nLABEL name=bench/light\nRUN echo light > /light\n" % engine.registry})
        first = benchlib.run_playbook(engine, flow_args(engine, uri), env_extra={"ANSIBLE_COLLECTIONS_PATH": str(paths["unchanged"])})
        if first["rc"] != 0:
            raise RuntimeError("first build failed:\n%s" % first["output"][-5000:])
        rows = {variant: [] for variant in variants}
        for _ in range(args.runs):
            for variant in variants:
                before = engine.metrics()
                result = benchlib.run_playbook(engine, flow_args(engine, uri), env_extra={"ANSIBLE_COLLECTIONS_PATH": str(paths[variant])})
                after = engine.metrics()
                if result["rc"] != 0:
                    raise RuntimeError("%s rerun failed:\n%s" % (variant, result["output"][-5000:]))
                rows[variant].append({"wall_s": result["wall_s"], "cpu_s": result["cpu_s"],
                                      "requests": describe_requests(counts_delta(before, after))})
        base_wall = median([r["wall_s"] for r in rows["unchanged"]])
        base_cpu = median([r["cpu_s"] for r in rows["unchanged"]])
        report["noop_rerun"] = {}
        for variant, results in rows.items():
            wall = median([r["wall_s"] for r in results])
            cpu = median([r["cpu_s"] for r in results])
            report["noop_rerun"][variant] = {
                "wall_s_median": round(wall, 3),
                "controller_cpu_s_median": round(cpu, 3),
                "saves_wall_s": round(base_wall - wall, 3),
                "saves_cpu_s": round(base_cpu - cpu, 3),
                "writes": [r["requests"]["writes"] for r in results],
                "requests_total": results[0]["requests"]["total"],
                "writes_by_verb_resource": results[0]["requests"]["writes_by_verb_resource"],
            }
        report["engine_source_fetch"] = engine_clone(workdir / "clones", uri)
    finally:
        benchlib.stop_engine(engine)
    try:
        report["engine_proposals"] = {name: {"file": p["file"], "what": p["what"]} for name, p in ENGINE_PROPOSALS.items()}
        report["engine_builds"] = engine_builds(workdir / "engines", args.runs)
    finally:
        benchlib.run(["rm", "-rf", str(workdir)])
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    benchlib.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
