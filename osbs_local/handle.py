"""The Python handle to a running osbs-local: start one with the `osbs-local` CLI, read what it exported
(its env file and config.json), and talk to it (its CLI, an HTTPS session, kubectl, /metrics).

What the tests and the benchmarks drive the engine with; it uses only the CLI and the files `osbs-local up`
writes, never the engine's modules.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

# The CLI installed beside the running Python (the project's virtual environment).
OSBS_LOCAL = str(Path(sys.executable).parent / "osbs-local")


class EngineStartError(RuntimeError):
    """`osbs-local up` failed; the message holds its output."""


def read_env_file(path: Path) -> dict:
    """The `export NAME=value` lines of osbs-local's env file."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


@dataclass
class Engine:
    """A running osbs-local: its state directory, the variables its env file exports, and its config.json
    as it was when it started (a restart makes a new Engine)."""

    state_dir: Path
    env: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.env.get("OSBS_LOCAL_NAMESPACE", "osbs")

    @property
    def registry(self) -> str:
        return self.env["OSBS_LOCAL_REGISTRY"]

    @property
    def registry_secret(self) -> str:
        return self.env["OSBS_LOCAL_REGISTRY_SECRET"]

    @property
    def kubeconfig(self) -> Path:
        return Path(self.env["K8S_AUTH_KUBECONFIG"])

    @property
    def base(self) -> str:
        return "https://127.0.0.1:%s" % self.config["api_port"]

    @property
    def ca(self) -> str:
        return str(self.state_dir / "pki" / "ca.crt")

    @property
    def token(self) -> str:
        return self.config["token"]

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([OSBS_LOCAL, *args, "--state-dir", str(self.state_dir)], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError("osbs-local %s failed (%s):\n%s\n%s" % (" ".join(args), result.returncode, result.stdout, result.stderr))
        return result

    def session(self, token: str | None = None):
        """A requests session to the API with the engine's CA and token (or `token`)."""
        session = requests.Session()
        session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
        session.verify = self.ca
        session.headers["Authorization"] = "Bearer %s" % (token if token is not None else self.token)
        return session

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60, namespace: str | None = None) -> subprocess.CompletedProcess:
        command = ["kubectl", "--kubeconfig", str(self.kubeconfig), *(["-n", namespace] if namespace else []), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env=dict(os.environ, KUBECACHEDIR=str(self.state_dir / "kubecache")))
        if check and result.returncode != 0:
            raise AssertionError("%s failed (%s):\n%s\n%s" % (" ".join(command), result.returncode, result.stdout, result.stderr))
        return result

    def metrics(self) -> dict:
        """Request counts by (verb, resource) from the engine's /metrics."""
        response = self.session().get(self.base + "/metrics", timeout=10)
        response.raise_for_status()
        counts = {}
        for line in response.text.splitlines():
            if line.startswith("osbs_local_requests_total{"):
                labels, _, value = line[len("osbs_local_requests_total{"):].partition("} ")
                parts = dict(item.split("=", 1) for item in labels.split(","))
                key = (parts["verb"].strip('"'), parts["resource"].strip('"'))
                counts[key] = counts.get(key, 0) + float(value)
        return counts

    def writes(self) -> int:
        return int(sum(v for (verb, _), v in self.metrics().items() if verb in ("create", "update", "patch", "delete", "deletecollection")))

    def module_env(self, collections: Path) -> dict:
        """The environment an Ansible module run against this engine gets, the collection taken from collections."""
        env = dict(os.environ)
        env.update(self.env)
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        env["PYTHONPATH"] = str(collections)
        # Modules need this venv's Python (kubernetes, dockerfile-parse, pulp-glue), whatever the inventory says.
        env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
        return env


def up(state_dir: Path, *extra: str) -> str:
    """`osbs-local up` in state_dir (extra: more `up` arguments); its output, or EngineStartError."""
    result = subprocess.run([OSBS_LOCAL, "up", "--state-dir", str(state_dir), *extra], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise EngineStartError("osbs-local up failed:\n%s\n%s" % (result.stdout, result.stderr))
    return result.stdout


def attach(state_dir: Path) -> Engine:
    """The handle to the osbs-local that `osbs-local up` started in state_dir."""
    return Engine(state_dir, read_env_file(state_dir / "env"), json.loads((state_dir / "config.json").read_text()))


def start_engine(state_dir: Path, *extra: str) -> Engine:
    """`osbs-local up` in state_dir, and the handle to it."""
    up(state_dir, *extra)
    return attach(state_dir)


def stop_engine(engine: Engine) -> None:
    engine.cli("down", check=False, timeout=60)
