"""What the flow benchmarks share: the machine description, a private osbs-local, the engine's
request counters, API reads, the controller's memory, and running the playbook.

The engine's handle comes from osbs_local.handle and the git repositories from osbs_local.sample_repo,
the public modules the tests use too (bench imports nothing from tests/).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

from osbs_local import handle
from osbs_local.executor.base_image import build_busybox_base
from osbs_local.executor.process import buildah_command as engine_buildah
from osbs_local.handle import Engine, stop_engine
from osbs_local.sample_repo import commit_files, git, make_git_repo

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
COLLECTIONS = REPO / "build" / "collections"

__all__ = ["COLLECTIONS", "Engine", "commit_files", "git", "make_git_repo", "module_env", "start_engine", "stop_engine"]

VENV_BIN = Path(sys.executable).parent
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


# -- the machine ---------------------------------------------------------------------------------------

def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return out.splitlines()[0] if out else "unknown"


def machine() -> dict:
    """nproc, memory, CPU model, load and the versions that matter, for the record."""
    mem_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ansible_core = _version([str(VENV_BIN / "python"), "-c", "import ansible; print(ansible.__version__)"])
    return {
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_release(),
        "python": sys.version.split()[0],
        "ansible_core": ansible_core,
        "buildah": _version(["buildah", "--version"]),
        "git": _version(["git", "--version"]),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date_utc": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }


def _os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return match.group(1) if match else platform.platform()


# -- the engine ----------------------------------------------------------------------------------------

def start_engine(state_dir: Path, *extra: str) -> Engine:
    """`osbs-local up` (its messages kept off stdout, which carries the JSON report)."""
    print(handle.up(state_dir, *extra).strip(), file=sys.stderr)
    return handle.attach(state_dir)


def module_env(engine: Engine) -> dict:
    """The environment a module run against the engine gets (the collection built under build/collections)."""
    return engine.module_env(COLLECTIONS)


def engine_session(engine: Engine) -> tuple[requests.Session, str]:
    """An HTTPS session to the engine's API (bearer token, its CA) and the base URL."""
    return engine.session(), engine.base


def counts_delta(before: dict, after: dict) -> dict:
    """(verb, resource) -> requests between two Engine.metrics() readings, zero rows left out."""
    delta = {}
    for key, value in after.items():
        diff = int(value - before.get(key, 0))
        if diff:
            delta[key] = diff
    return delta


def describe_requests(delta: dict) -> dict:
    """Request counts for the report: total, writes, and both broken down by verb and resource."""
    writes = {k: v for k, v in delta.items() if k[0] in WRITE_VERBS}
    return {
        "total": sum(delta.values()),
        "writes": sum(writes.values()),
        "writes_by_verb_resource": {"%s %s" % k: v for k, v in sorted(writes.items())},
        "by_verb_resource": {"%s %s" % k: v for k, v in sorted(delta.items())},
    }


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 timestamp (second precision, as the engine writes them) as a Unix time."""
    if not text:
        return None
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z").timestamp()


def build_times(build: dict) -> dict:
    status = build.get("status") or {}
    duration = status.get("duration")
    return {
        "name": build["metadata"]["name"],
        "phase": status.get("phase"),
        "created": parse_time(build["metadata"].get("creationTimestamp")),
        "started": parse_time(status.get("startTimestamp")),
        "completed": parse_time(status.get("completionTimestamp")),
        "duration_s": round(duration / 1e9, 3) if duration else None,
    }


def busybox_base(engine: Engine, repository: str, storage: Path, release: str | None = None) -> str:
    """Push a busybox-static base image to REPOSITORY:latest and return its digest.

    With `release`, the image pushed is the existing one plus a file naming the release (a new
    digest each time: a new base image, as a base rebuild makes).
    """
    image = "%s/%s:latest" % (engine.registry, repository)
    cert_dir = engine.state_dir / "certs.d" / engine.registry
    if release is None:
        return build_busybox_base(image, storage_dir=storage, auth_file=Path(engine.env["REGISTRY_AUTH_FILE"]),
                                  cert_dir=cert_dir)
    context = fresh_dir(storage.parent / ("%s-context" % storage.name))
    (context / "Dockerfile").write_text("FROM %s\nRUN echo %s > /etc/bench-base-release\n" % (image, release))
    buildah = buildah_command(storage)
    auth = ["--authfile", engine.env["REGISTRY_AUTH_FILE"], "--cert-dir", str(cert_dir)]
    run([*buildah, "bud", "--isolation", "chroot", "--format", "docker", *auth, "-t", image, str(context)])
    digest_file = context / "digest"
    run([*buildah, "push", *auth, "--digestfile", str(digest_file), image, "docker://%s" % image])
    return digest_file.read_text().strip()


def buildah_command(storage: Path) -> list[str]:
    return engine_buildah(storage)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError("%s failed (%s):\n%s\n%s" % (" ".join(command[:6]), result.returncode,
                                                        result.stdout[-3000:], result.stderr[-3000:]))
    return result


# -- the controller's memory ---------------------------------------------------------------------------

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): field 3 (state) is index 0."""
    with open("/proc/%d/stat" % pid) as handle:
        text = handle.read()
    return text[text.rindex(")") + 2:].split()


def process_cpu(pid: int) -> dict:
    """CPU seconds of a process: its own (user+system) and its waited-for children's."""
    fields = _stat_fields(pid)
    utime, stime, cutime, cstime = (int(x) / TICK for x in fields[11:15])
    return {"self_s": utime + stime, "children_s": cutime + cstime}


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == current]
        found.extend(children)
        frontier.extend(children)
    return found


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants (from /proc), every `interval` seconds.

    peak_tree_mb: the largest sum seen; peak_process_mb: the largest single process.
    """

    def __init__(self, pid: int, interval: float = 0.1):
        self.root = pid
        self.interval = interval
        self.peak_tree = 0
        self.peak_process = 0
        self.peak_process_cmd = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.is_set():
            total = 0
            for pid in [self.root] + descendants(self.root):
                try:
                    with open("/proc/%d/statm" % pid) as handle:
                        rss = int(handle.read().split()[1]) * PAGE
                except (OSError, ValueError, IndexError):
                    continue
                total += rss
                if rss > self.peak_process:
                    self.peak_process = rss
                    try:
                        with open("/proc/%d/cmdline" % pid, "rb") as handle:
                            self.peak_process_cmd = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
                    except OSError:
                        pass
            self.peak_tree = max(self.peak_tree, total)
            self._stop.wait(self.interval)

    def report(self) -> dict:
        return {
            "peak_tree_rss_mb": round(self.peak_tree / 2**20, 1),
            "peak_single_process_rss_mb": round(self.peak_process / 2**20, 1),
            "peak_single_process": self.peak_process_cmd,
            "sampling_interval_s": self.interval,
        }


# -- the playbook ----------------------------------------------------------------------------------------

_TASK_TIME_RE = re.compile(r"^(.*?) -+ (\d+\.\d+)s$")


def run_playbook(engine: Engine, args: list[str], profile: bool = True, memory: bool = False,
                 timeout: int = 3600, env_extra: dict | None = None, json_output: bool = False) -> dict:
    """Run ansible-playbook (osbs.flow.build or a file) with the engine's environment.

    Returns wall seconds, rc, per-task seconds (ansible.posix.profile_tasks) and, with memory=True,
    the peak RSS of ansible-playbook and its module processes, and the CPU seconds of that process
    tree. json_output=True: the ansible.posix.json callback's document (task results and
    start/end times) in "json" instead of per-task seconds.
    """
    env = module_env(engine)
    env.pop("PYTHONPATH", None)  # as a user runs it: the collection comes from ANSIBLE_COLLECTIONS_PATH
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    elif profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
    env.update(env_extra or {})
    command = [str(VENV_BIN / "ansible-playbook"), *args]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE if json_output else subprocess.STDOUT,
                               text=True, env=env)
    sampler = TreeMemory(process.pid) if memory else None
    if sampler:
        sampler.__enter__()
    try:
        output, errors = process.communicate(timeout=timeout)
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Every process of the tree is waited for by its parent, so its CPU time lands in RUSAGE_CHILDREN.
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if json_output:
        result = {"wall_s": round(wall, 3), "rc": process.returncode, "cpu_s": round(cpu, 3), "stderr": errors, "output": output}
        try:
            result["json"] = json.loads(output[output.index("{"):])
        except ValueError:
            result["json"] = None
        if sampler:
            result["memory"] = sampler.report()
        return result
    tasks = {}
    recap = output.split("TASKS RECAP", 1)[-1] if "TASKS RECAP" in output else ""
    for line in recap.splitlines():
        match = _TASK_TIME_RE.match(line.strip())
        if match:
            tasks[match.group(1).strip()] = tasks.get(match.group(1).strip(), 0) + float(match.group(2))
    result = {"wall_s": round(wall, 3), "rc": process.returncode, "cpu_s": round(cpu, 3), "task_s": tasks, "output": output}
    if sampler:
        result["memory"] = sampler.report()
    return result


def flow_args(engine: Engine, git_uri: str, *extra: str) -> list[str]:
    return ["osbs.flow.build", "-e", "git_uri=%s" % git_uri, "-e", "git_branch=main",
            "-e", "registry_uri=%s" % engine.registry, "-e", "registry_secret=%s" % engine.registry_secret,
            "-e", "osbs_namespace=%s" % engine.namespace, *extra]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def write_report(report: dict, output: str | None) -> None:
    text = json.dumps(report, indent=2, sort_keys=False)
    print(text)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text + "\n")


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
