#!/usr/bin/env python3
"""osbs-local API benchmark: p50/p99 latency of get, list with a label selector and instantiate,
with 1,000 and 10,000 BuildConfigs stored, and the serve process's peak memory.  Prints JSON.

    .venv/bin/python bench/bench_api.py [--sizes 1000,10000] [--requests 300] [--output FILE]

It starts its own engine (`osbs-local up` in a temporary state directory) with --build-workers 0:
instantiated builds stay New, so instantiate is measured as the API does it (BuildConfig update +
Build create, in SQLite) without real builds competing for the 2 cores.  Requests go one at a time
over one keep-alive HTTPS connection, the way the kubernetes client talks.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

BUILD_API = "/apis/build.openshift.io/v1/namespaces/osbs"
LABEL_GROUPS = 100  # BuildConfigs carry group=g0..g99: a selector matches 1% of them


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.50) * 1000, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
    }


def buildconfig(index: int) -> dict:
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": f"bench-{index:05d}", "labels": {"group": f"g{index % LABEL_GROUPS}", "app": "bench"}},
        "spec": {
            "runPolicy": "Parallel",
            "source": {"git": {"uri": f"https://git.example.com/bench/repo-{index}.git", "ref": "main"}},
            "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": "registry.example.com/base:1"},
                                            "buildArgs": [{"name": "A", "value": "1"}]}},
            "output": {"to": {"kind": "DockerImage", "name": f"registry.example.com/bench/app-{index}:latest"}},
            "triggers": [{"type": "Generic", "generic": {"secret": "s"}}],
        },
    }


def memory(pid: int) -> dict:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


def timed(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="BuildConfig counts to measure at (ascending)")
    parser.add_argument("--requests", type=int, default=300, help="requests per operation and size")
    parser.add_argument("--keep", action="store_true", help="leave the engine running and its state dir in place")
    parser.add_argument("--output", help="also write the JSON there")
    args = parser.parse_args()
    machine = benchlib.machine()
    sizes = [int(s) for s in args.sizes.split(",")]
    state_dir = Path(tempfile.mkdtemp(prefix="osbs-local-bench-"))
    cli = [sys.executable, "-m", "osbs_local.cli"]
    subprocess.run([*cli, "up", "--state-dir", str(state_dir), "--build-workers", "0"], check=True, capture_output=True)
    try:
        config = json.loads((state_dir / "config.json").read_text())
        pid = int((state_dir / "serve.pid").read_text())
        base = f"https://127.0.0.1:{config['api_port']}"
        session = requests.Session()
        session.trust_env = False
        session.verify = str(state_dir / "pki" / "ca.crt")
        session.headers["Authorization"] = f"Bearer {config['token']}"
        memory_idle = memory(pid)
        stored = 0
        results = []
        rng = random.Random(42)

        def create(index: int, worker_sessions={}):
            import threading

            local = worker_sessions.setdefault(threading.get_ident(), requests.Session())
            local.trust_env, local.verify, local.headers["Authorization"] = False, session.verify, session.headers["Authorization"]
            response = local.post(f"{base}{BUILD_API}/buildconfigs", json=buildconfig(index))
            assert response.status_code == 201, response.text

        for size in sizes:
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(create, range(stored, size)))
            create_seconds = time.perf_counter() - started
            created = size - stored
            stored = size

            def get():
                name = f"bench-{rng.randrange(stored):05d}"
                assert session.get(f"{base}{BUILD_API}/buildconfigs/{name}").status_code == 200

            listed_sizes = []

            def list_selected():
                response = session.get(f"{base}{BUILD_API}/buildconfigs",
                                       params={"labelSelector": f"group=g{rng.randrange(LABEL_GROUPS)},app=bench"})
                assert response.status_code == 200
                listed_sizes.append(len(response.json()["items"]))

            def list_everything():
                response = session.get(f"{base}{BUILD_API}/buildconfigs")
                assert response.status_code == 200 and len(response.json()["items"]) == stored

            def instantiate():
                name = f"bench-{rng.randrange(stored):05d}"
                response = session.post(f"{base}{BUILD_API}/buildconfigs/{name}/instantiate",
                                        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": name}})
                assert response.status_code == 201, response.text

            timed(get, 20)  # warm the connection
            results.append({
                "stored_buildconfigs": size,
                "create_per_second": round(created / create_seconds, 1),
                "get": summary(timed(get, args.requests)),
                "list_label_selector": {**summary(timed(list_selected, max(args.requests // 3, 20))),
                                        "items_per_list": round(statistics.fmean(listed_sizes), 1)},
                "instantiate": summary(timed(instantiate, args.requests)),
                "list_all_unselected": summary(timed(list_everything, 10)),  # worst case, for scale
                "memory_mb": memory(pid),
            })
        metrics = session.get(f"{base}/metrics").text
        report = {
            "benchmark": "osbs-local API",
            "method": ("one engine (`osbs-local up --build-workers 0`), HTTPS + bearer token, sequential requests on one "
                       "keep-alive connection; instantiate on random BuildConfigs whose builds stay New (no build workers), "
                       "so it measures the API path: BuildConfig update + Build create in SQLite"),
            "machine": machine,
            "results": results,
            "memory_idle_mb": memory_idle,
            "peak_rss_mb": memory(pid)["VmHWM"],
            "requests_served": sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                                   if line.startswith("osbs_local_requests_total")),
        }
        machine["loadavg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
        benchlib.write_report(report, args.output)
    finally:
        if not args.keep:
            subprocess.run([*cli, "down", "--state-dir", str(state_dir)], capture_output=True)
            subprocess.run(["rm", "-rf", str(state_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
