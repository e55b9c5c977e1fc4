"""Fixtures for the engine tests: a real osbs-local (API server + TLS registry) started with `osbs-local up`.

One engine serves the whole session (`engine`); tests that stop or restart an engine start their
own with `start_engine`.  Each test that writes gets its own namespace, so tests do not see each
other's objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from osbs_local.pki import ensure_pki
from osbs_local.registry import Registry, free_port

OSBS_LOCAL = [sys.executable, "-m", "osbs_local.cli"]


@dataclass
class Engine:
    state_dir: Path
    config: dict

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.config['api_port']}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca(self) -> str:
        return str(self.state_dir / "pki" / "ca.crt")

    @property
    def token(self) -> str:
        return self.config["token"]

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.config['registry_port']}"

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run([*OSBS_LOCAL, *args, "--state-dir", str(self.state_dir)],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"osbs-local {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
        session.verify = self.ca
        session.headers["Authorization"] = f"Bearer {token if token is not None else self.token}"
        return session

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60, namespace: str | None = None):
        command = ["kubectl", "--kubeconfig", str(self.kubeconfig), *(["-n", namespace] if namespace else []), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "KUBECACHEDIR": str(self.state_dir / "kubecache")})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


def start_engine(state_dir: Path, *extra: str) -> Engine:
    result = subprocess.run([*OSBS_LOCAL, "up", "--state-dir", str(state_dir), *extra],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"osbs-local up failed:\n{result.stdout}\n{result.stderr}"
    return Engine(state_dir, json.loads((state_dir / "config.json").read_text()))


def stop_engine(engine: Engine) -> None:
    engine.cli("down", check=False, timeout=60)


@pytest.fixture(scope="session")
def engines():
    """start(state_dir, *up_args) -> Engine and stop(engine), for tests that need an engine of their own.

    A fixture rather than an import: `import conftest` would depend on which conftest.py pytest loaded first.
    """
    return SimpleNamespace(start=start_engine, stop=stop_engine)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A bare integrated registry (TLS + htpasswd) with no engine, for the registry and builder tests."""
    state_dir = tmp_path_factory.mktemp("state")
    reg = Registry(state_dir, free_port(), ensure_pki(state_dir / "pki"))
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    running = start_engine(tmp_path_factory.mktemp("osbs-local"))
    yield running
    stop_engine(running)


@pytest.fixture(scope="session")
def http(engine) -> requests.Session:
    return engine.session()


@pytest.fixture(scope="session")
def dyn(engine):
    """A kubernetes DynamicClient configured from the kubeconfig `up` wrote."""
    from kubernetes import config as kube_config
    from kubernetes.dynamic import DynamicClient

    api_client = kube_config.new_client_from_config(config_file=str(engine.kubeconfig))
    return DynamicClient(api_client)


@pytest.fixture
def namespace(engine, http):
    name = f"t-{uuid.uuid4().hex[:10]}"
    response = http.post(f"{engine.base}/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    yield name
    http.delete(f"{engine.base}/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def make_bc():
    """bc_body as a fixture (test modules here are not a package, so they cannot import conftest)."""
    return bc_body


def bc_body(name: str, labels: dict | None = None, **spec_overrides) -> dict:
    """A BuildConfig whose builds fail fast (nothing at the git URI) unless a test says otherwise."""
    spec = {
        "source": {"git": {"uri": "file:///nonexistent/repo.git", "ref": "main"}},
        "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": "127.0.0.1:1/base:1"}}},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:1/out/app:latest"}},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }
