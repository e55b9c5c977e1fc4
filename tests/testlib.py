"""What the tests against osbs-local share: the engine, git repositories, running modules and playbooks."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from osbs_local import handle
from osbs_local.handle import OSBS_LOCAL, Engine, read_env_file, stop_engine
from osbs_local.sample_repo import commit_files, git, make_git_repo

# What tests import from here: the engine's handle (osbs_local.handle) and sample repositories, with the tests' own helpers.
__all__ = ["COLLECTIONS", "OSBS_LOCAL", "REPO", "VENV_BIN", "Engine", "commit_files", "git", "make_git_repo", "module_env",
           "read_env_file", "run_module", "run_playbook", "start_engine", "stop_engine", "wait_for"]

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / "build" / "collections"
VENV_BIN = Path(sys.executable).parent


def start_engine(state_dir: Path, *extra: str) -> Engine:
    """`osbs-local up` in state_dir (extra: more `up` arguments); fails with its output when it fails."""
    try:
        return handle.start_engine(state_dir, *extra)
    except handle.EngineStartError as exc:
        raise AssertionError(str(exc)) from None


def module_env(engine: Engine) -> dict:
    return engine.module_env(COLLECTIONS)


def run_module(engine: Engine, module: str, args: dict, check_mode: bool = False, diff: bool = False, timeout: int = 900) -> dict:
    """Run osbs.flow.<module> as Ansible runs it on a host: the module file with an arguments file.

    Returns the module's JSON result (with `failed` when it failed).
    """
    import tempfile

    payload = dict(args)
    payload["_ansible_check_mode"] = check_mode
    payload["_ansible_diff"] = diff
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
    try:
        path = COLLECTIONS / "ansible_collections" / "osbs" / "flow" / "plugins" / "modules" / ("%s.py" % module)
        proc = subprocess.run([sys.executable, str(path), handle.name], capture_output=True, text=True,
                              env=module_env(engine), timeout=timeout)
    finally:
        os.unlink(handle.name)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc %s):\n%s\n%s" % (module, proc.returncode, proc.stdout, proc.stderr))


def run_playbook(engine: Engine, playbook: Path, extra_vars: dict | None = None, check: bool = False, timeout: int = 1800,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    # The implicit localhost: local connection, and the Python that runs ansible-playbook.
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(module_env(engine), **(env or {})), timeout=timeout)


def set_tag_image(http, engine, namespace, stream, tag, digest):
    """Create the stream if needed and make TAG point at DIGEST (a status write, as the integrated registry does on a
    push); the pull spec by digest it now names."""
    url = f"{engine.base}/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams"
    if http.get(f"{url}/{stream}").status_code == 404:
        assert http.post(url, json={"metadata": {"name": stream}, "spec": {}}).status_code == 201
    current = http.get(f"{url}/{stream}").json()
    items = [{"created": "2024-01-01T00:00:00Z", "dockerImageReference": f"example.com/{stream}@{digest}",
              "image": digest, "generation": current["metadata"]["generation"]}]
    others = [t for t in current["status"].get("tags") or [] if t["tag"] != tag]
    current["status"]["tags"] = others + [{"tag": tag, "items": items}]
    response = http.put(f"{url}/{stream}/status", json=current)
    assert response.status_code == 200, response.text
    return f"example.com/{stream}@{digest}"


@contextlib.contextmanager
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte: (port, accepted connections)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], held
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def wait_for(predicate, timeout: float = 120, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


@contextlib.contextmanager
def docker_builds_taken_away(engine: Engine):
    """What an OpenShift administrator does to take Docker builds from every user: the bootstrap binding of
    system:build-strategy-docker to system:authenticated kept from reconciliation (autoupdate "false") and emptied.
    Put back as it was afterwards (the session's engine is shared)."""
    import copy

    http = engine.session()
    url = engine.base + "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:build-strategy-docker-binding"
    original = http.get(url, timeout=30).json()
    taken = copy.deepcopy(original)
    taken["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
    taken["subjects"] = []
    assert http.put(url, json=taken, timeout=30).status_code == 200
    try:
        yield
    finally:
        original["metadata"]["resourceVersion"] = http.get(url, timeout=30).json()["metadata"]["resourceVersion"]
        assert http.put(url, json=original, timeout=30).status_code == 200


@contextlib.contextmanager
def own_namespace(engine: Engine, prefix: str):
    """A namespace of the test's own (`prefix-xxxxxxxx`), deleted afterwards without waiting."""
    import uuid

    name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    engine.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        engine.kubectl("delete", "namespace", name, "--wait=false", check=False)
