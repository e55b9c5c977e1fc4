#!/usr/bin/env python3
"""Autorebuild fan-out: a base image with N dependents, a new base image, the wave.  Prints JSON.

    .venv/bin/python bench/bench_fanout.py [--n 10,50,200] [--parallel 4] [--build-workers 2]
                                           [--triggers active|paused] [--output FILE]

For each N, on a fresh private osbs-local:
- setup (not timed): a busybox-static base `bench/fanbase`, imported into its ImageStream; N git
  repositories `dep-I` whose Dockerfile is `FROM <base>` + `LABEL name=bench/dep-I` (trivial builds);
  their BuildConfigs made by osbs.flow's own module_utils (desired_spec + merge_buildconfig, as
  osbs_buildconfig does after a user build: trigger on the base's ImageStreamTag marked as having
  seen the current image, recorded commit, is_autorebuild=true) and POSTed straight to the API.
- a new base image is pushed (not timed), then one ansible-playbook runs two tasks, as the build
  playbook's last steps do: osbs.flow.reactor_import_image (the base) and osbs.flow.osbs_autorebuild
  (the wave, parallel=--parallel).

Measured (the bench watches builds and imagestreams on the API, with this process's clock):
- import_to_all_created_s: from the moment the base's ImageStreamTag holds the new image until the
  last dependent's Build exists (its autorebuild has started: created, New);
- import_to_all_running_s / import_to_all_complete_s: ... until the last one Running / Complete;
- import_to_wave_end_s: ... until the wave task ends (every dependent rebuilt and its image imported);
- orchestration: wave time not covered by builds. engine_busy_s is the union of the builds'
  Running intervals (the engine runs --build-workers at once); orchestration_s =
  import_to_wave_end_s - engine_busy_s: trigger latency, scheduling gaps, the imports and waiting
  after the last build, module start and exit. Per dependent: orchestration_s / N. The controller's
  CPU seconds (ansible-playbook and module processes) per dependent are given too.
- controller memory: peak summed RSS of the ansible-playbook process tree (/proc, every 100 ms).
- import_lag_after_build_s: per dependent, from its build's end until the wave imported its image.
- requests the wave sent, by verb and resource.

--triggers paused: the BuildConfigs' ImageChange triggers are paused (a cluster whose triggers
do not fire), so the wave itself starts every build (all ready dependents at once; --parallel bounds the
requests in flight, not the builds).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import COLLECTIONS, engine_session, make_git_repo, median, run_playbook  # noqa: E402

sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import (  # noqa: E402
    AUTOREBUILD_LABEL,
    desired_spec,
    merge_buildconfig,
)
from ansible_collections.osbs.flow.plugins.module_utils.naming import buildconfig_name  # noqa: E402

BASE_REPOSITORY = "bench/fanbase"
BASE_ISTAG = "bench-fanbase:latest"
BUILD_API = "/apis/build.openshift.io/v1/namespaces/%s"
IMAGE_API = "/apis/image.openshift.io/v1/namespaces/%s"

WAVE_PLAYBOOK = """\
- name: New base image, then the autorebuild wave (the build playbook's last steps)
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Import the new base image
      osbs.flow.reactor_import_image:
        namespace: "{{ namespace }}"
        image: "{{ base_image }}"
        expected_digest: "{{ base_digest }}"
      register: imported

    - name: Autorebuild wave
      osbs.flow.osbs_autorebuild:
        namespace: "{{ namespace }}"
        imagestreamtag: "{{ imported.imagestreamtag }}"
        digest: "{{ imported.digest }}"
        parallel: "{{ parallel | int }}"
        fail_on_error: false
      register: wave
"""


class Watcher:
    """Follows a resource with watch=true and keeps, per object name, the first time each state was seen."""

    def __init__(self, session, url: str, classify):
        self.session = session
        self.url = url
        self.classify = classify  # obj -> list of state names it is in
        self.seen: dict[str, dict[str, float]] = {}
        self.objects: dict[str, dict] = {}
        self.stop = threading.Event()
        self.requests = 0  # watch requests made, to leave out of the wave's request counts
        response = session.get(url, timeout=60)
        response.raise_for_status()
        self.rv = response.json()["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                # One long watch: a reconnect would hold events back and skew their times.
                self.requests += 1
                response = self.session.get(self.url, params={"watch": "true", "resourceVersion": self.rv, "timeoutSeconds": 3600},
                                            stream=True, timeout=(10, 3700))
                for line in response.iter_lines():
                    if self.stop.is_set():
                        return
                    if not line:
                        continue
                    now = time.time()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise RuntimeError("watch of %s failed: %s" % (self.url, obj))
                    self.rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    self.objects[name] = obj
                    states = self.seen.setdefault(name, {})
                    for state in self.classify(obj):
                        states.setdefault(state, now)
            except (OSError, ValueError, requests.RequestException) as exc:
                if self.stop.is_set():
                    return
                print("watch %s: %s; again" % (self.url, exc), file=sys.stderr)
                time.sleep(0.2)

    def close(self):
        """Stop recording; the thread ends when the engine goes down and closes the stream."""
        self.stop.set()


def build_states(build: dict) -> list[str]:
    phase = (build.get("status") or {}).get("phase", "New")
    states = ["created"]
    if phase in ("Running", "Complete", "Failed", "Error"):
        states.append("running")
    if phase in ("Complete", "Failed", "Error", "Cancelled"):
        states.append("terminal")
    return states


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def dockerfile(registry: str, index: int) -> str:
    return "FROM %s/%s:latest\nLABEL name=bench/dep-%d\n" % (registry, BASE_REPOSITORY, index)


class UnsetIsNone(dict):
    """Module parameters: an option not given here is None, as AnsibleModule has it when not set."""

    def __missing__(self, key):
        return None


def create_buildconfigs(engine, workdir: Path, count: int, paused: bool) -> float:
    """The N dependents' repositories and BuildConfigs; returns the seconds the BuildConfigs took."""
    session, api = engine_session(engine)
    istag = session.get(api + IMAGE_API % engine.namespace + "/imagestreamtags/" + BASE_ISTAG, timeout=30).json()
    seen_image = istag["image"]["dockerImageReference"]
    repos = []
    for index in range(count):
        uri, commit = make_git_repo(workdir / "repos" / ("dep-%d" % index), {"Dockerfile": dockerfile(engine.registry, index)})
        repos.append((index, uri, commit))
    started = time.perf_counter()
    for index, uri, commit in repos:
        params = {
            "git_uri": uri, "git_branch": "main", "git_commit": commit,
            "base_image": "%s/%s:latest" % (engine.registry, BASE_REPOSITORY),
            "dockerfile_path": "Dockerfile", "build_args": {}, "no_cache": False, "context_dir": None,
            "registry_uri": engine.registry, "image": "bench/dep-%d" % index, "image_tag": "latest",
            "registry_secret": engine.registry_secret, "repo_config_file": ".osbs-repo-config", "labels": {},
            "autorebuild_enabled": not paused, "run_policy": "Serial",
        }
        name = buildconfig_name(uri, "main")
        bc = merge_buildconfig(None, name, engine.namespace, desired_spec(UnsetIsNone(params)), seen_image)
        bc["metadata"]["labels"][AUTOREBUILD_LABEL] = "true"  # as after its user build
        response = session.post(api + BUILD_API % engine.namespace + "/buildconfigs", json=bc, timeout=30)
        if response.status_code != 201:
            raise RuntimeError("creating BuildConfig %s: %s %s" % (name, response.status_code, response.text))
    return time.perf_counter() - started


def import_base(engine) -> None:
    session, api = engine_session(engine)
    body = {
        "apiVersion": "image.openshift.io/v1", "kind": "ImageStreamImport",
        "metadata": {"name": BASE_ISTAG.split(":")[0], "namespace": engine.namespace},
        "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": "%s/%s:latest" % (engine.registry, BASE_REPOSITORY)},
                                              "to": {"name": "latest"}}]},
    }
    response = session.post(api + IMAGE_API % engine.namespace + "/imagestreamimports", json=body, timeout=60)
    response.raise_for_status()
    status = response.json()["status"]["images"][0]["status"]
    if status.get("status") != "Success":
        raise RuntimeError("base import failed: %s" % status)


def task_seconds(task: dict) -> float:
    """How long a task of the ansible.posix.json callback's document took."""
    return iso_to_unix(task["task"]["duration"]["end"]) - iso_to_unix(task["task"]["duration"]["start"])


def iso_to_unix(text: str) -> float:
    from datetime import datetime, timezone

    return datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def measure(count: int, args, machine_note: dict) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-%d-" % count))
    engine = benchlib.start_engine(workdir / "osbs-local", "--build-workers", str(args.build_workers))
    try:
        storage = workdir / "base-storage"
        benchlib.busybox_base(engine, BASE_REPOSITORY, storage)
        import_base(engine)
        create_s = create_buildconfigs(engine, workdir, count, args.triggers == "paused")
        time.sleep(1.0)
        session, api = engine_session(engine)
        early = session.get(api + BUILD_API % engine.namespace + "/builds", timeout=30).json()["items"]
        if early:
            raise RuntimeError("%d builds started before the new base image: the triggers did not record the image" % len(early))

        new_digest = benchlib.busybox_base(engine, BASE_REPOSITORY, storage, release="2")
        builds = Watcher(session, api + BUILD_API % engine.namespace + "/builds", build_states)
        streams = Watcher(engine_session(engine)[0], api + IMAGE_API % engine.namespace + "/imagestreams",
                          lambda obj: ["has:" + item["image"] for tag in (obj.get("status") or {}).get("tags") or []
                                       if tag.get("tag") == "latest" for item in (tag.get("items") or [])[:1]])
        playbook = workdir / "wave.yml"
        playbook.write_text(WAVE_PLAYBOOK)
        serve = int((engine.state_dir / "serve.pid").read_text())
        time.sleep(0.5)  # both watches connected before the counters are read
        watch_requests_before = {"builds": builds.requests, "imagestreams": streams.requests}
        serve_cpu_before = benchlib.process_cpu(serve)
        metrics_before = engine.metrics()
        started = time.time()
        result = run_playbook(engine, [str(playbook), "-e", json.dumps({
            "namespace": engine.namespace, "base_image": "%s/%s:latest" % (engine.registry, BASE_REPOSITORY),
            "base_digest": new_digest, "parallel": args.parallel})], memory=True, json_output=True,
            timeout=args.timeout)
        ended = time.time()
        metrics_after = engine.metrics()
        serve_cpu_after = benchlib.process_cpu(serve)
        time.sleep(0.5)
        builds.close()
        streams.close()
        if result["rc"] != 0 or not result["json"]:
            raise RuntimeError("wave playbook failed (rc %s):\n%s\n%s" % (result["rc"], result["output"][-5000:], result["stderr"][-3000:]))

        tasks = result["json"]["plays"][0]["tasks"]
        import_task = next(t for t in tasks if t["task"]["name"] == "Import the new base image")
        wave_task = next(t for t in tasks if t["task"]["name"] == "Autorebuild wave")
        wave = wave_task["hosts"]["localhost"]
        wave_start = iso_to_unix(wave_task["task"]["duration"]["start"])
        wave_end = iso_to_unix(wave_task["task"]["duration"]["end"])
        imported_at = streams.seen.get(BASE_ISTAG.split(":")[0], {}).get("has:" + new_digest)
        if imported_at is None:
            raise RuntimeError("the watch never saw %s hold %s" % (BASE_ISTAG, new_digest))

        rows = wave.get("rows") or []
        build_rows = [benchlib.build_times(obj) for obj in builds.objects.values()]
        seen = builds.seen
        created = [seen[name]["created"] for name in seen]
        running = [seen[name]["running"] for name in seen if "running" in seen[name]]
        terminal = [seen[name]["terminal"] for name in seen if "terminal" in seen[name]]
        intervals = [(seen[name]["running"], seen[name]["terminal"]) for name in seen
                     if "running" in seen[name] and "terminal" in seen[name]]
        busy = union_length(intervals)
        to_wave_end = wave_end - imported_at
        orchestration = to_wave_end - busy
        # How long each dependent's new image waited for the wave to import it after its build ended.
        import_lags = []
        for name, obj in builds.objects.items():
            digest = (((obj.get("status") or {}).get("output") or {}).get("to") or {}).get("imageDigest")
            stream = "bench-dep-%s" % name.split("-")[1]
            imported = streams.seen.get(stream, {}).get("has:%s" % digest)
            if digest and imported and "terminal" in seen.get(name, {}):
                import_lags.append(imported - seen[name]["terminal"])
        durations = [row["duration_s"] for row in build_rows if row["duration_s"] is not None]
        phases = {}
        for row in build_rows:
            phases[row["phase"]] = phases.get(row["phase"], 0) + 1
        actions = {}
        for row in rows:
            actions[row["action"]] = actions.get(row["action"], 0) + 1
        delta = benchlib.counts_delta(metrics_before, metrics_after)
        for watcher, resource in ((builds, "builds"), (streams, "imagestreams")):
            key = ("watch", resource)
            delta[key] = delta.get(key, 0) - (watcher.requests - watch_requests_before[resource])
            if delta[key] <= 0:
                delta.pop(key)
        requests_made = benchlib.describe_requests(delta)
        serve_cpu = serve_cpu_after["self_s"] - serve_cpu_before["self_s"]
        serve_children_cpu = serve_cpu_after["children_s"] - serve_cpu_before["children_s"]
        return {
            "n": count,
            "triggers": args.triggers,
            "parallel": args.parallel,
            "build_workers": args.build_workers,
            "setup_buildconfigs_create_s": round(create_s, 2),
            "builds": len(seen),
            "build_phases": phases,
            "wave_actions": actions,
            "wave_summary": wave.get("summary"),
            "import_to_all_created_s": round(max(created) - imported_at, 3) if created else None,
            "import_to_first_created_s": round(min(created) - imported_at, 3) if created else None,
            "import_to_first_running_s": round(min(running) - imported_at, 3) if running else None,
            "import_to_all_running_s": round(max(running) - imported_at, 3) if running else None,
            "import_to_all_complete_s": round(max(terminal) - imported_at, 3) if terminal else None,
            "import_to_wave_end_s": round(to_wave_end, 3),
            "max_builds_running_at_once": max_overlap(intervals),
            "engine_busy_s": round(busy, 3),
            "build_duration_s": {"median": round(median(durations), 3), "max": round(max(durations), 3),
                                 "sum": round(sum(durations), 2)} if durations else None,
            "import_lag_after_build_s": {"median": round(median(import_lags), 3), "max": round(max(import_lags), 3),
                                         "n": len(import_lags)} if import_lags else None,
            "last_build_end_to_wave_end_s": round(wave_end - max(terminal), 3) if terminal else None,
            "orchestration_s": round(orchestration, 3),
            "orchestration_per_dependent_s": round(orchestration / count, 4),
            "goal": "orchestration < 0.1 s per dependent at N=200, dependents started concurrently",
            "goal_met": orchestration / count < 0.1,
            "wave_task_s": round(wave_end - wave_start, 3),
            "wave_module_elapsed_s": wave.get("elapsed"),
            "wave_start_after_import_s": round(wave_start - imported_at, 3),
            "import_task_s": round(task_seconds(import_task), 3),
            "playbook_wall_s": round(ended - started, 3),
            "controller_cpu_s": result["cpu_s"],
            "controller_cpu_per_dependent_s": round(result["cpu_s"] / count, 4),
            "engine_api_cpu_s": round(serve_cpu, 2),
            "engine_build_children_cpu_s": round(serve_children_cpu, 2),
            "controller_memory": result["memory"],
            "git_fetches": wave.get("git_fetches"),
            "wave_requests": requests_made["by_verb_resource"],
            "wave_requests_total": requests_made["total"],
            "requests_per_dependent": round(requests_made["total"] / count, 2),
            "failed_rows": [{"buildconfig": r["buildconfig"], "reason": r["reason"][:300]} for r in rows if r["action"] == "failed"][:5],
        }
    finally:
        if not args.keep:
            benchlib.stop_engine(engine)
            benchlib.run(["rm", "-rf", str(workdir)])


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(stop, -1) for _, stop in intervals])
    current = peak = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="10,50", help="dependent counts, comma separated (200 takes several minutes)")
    parser.add_argument("--parallel", type=int, default=4, help="osbs_autorebuild parallel (the playbook's default is 4)")
    parser.add_argument("--build-workers", type=int, default=2, help="osbs-local builds at once (its default is 2)")
    parser.add_argument("--triggers", choices=("active", "paused"), default="active")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--output", help="also write the JSON there")
    parser.add_argument("--keep", action="store_true", help="leave the engines running and their files in place")
    args = parser.parse_args()
    machine = benchlib.machine()
    machine["note"] = "a shared 2-core machine: other sessions ran tests and builds at the same time (see loadavg)"
    report = {"benchmark": "autorebuild fan-out", "machine": machine,
              "method": __doc__.split("\n\n", 2)[2].strip(), "results": []}
    for count in [int(n) for n in args.n.split(",")]:
        started = time.perf_counter()
        row = measure(count, args, report["machine"])
        row["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
        report["results"].append(row)
        print("N=%d: wave %.1f s, orchestration %.3f s/dependent" % (count, row["import_to_wave_end_s"],
                                                                      row["orchestration_per_dependent_s"]), file=sys.stderr)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    benchlib.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
