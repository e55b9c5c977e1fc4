"""Fixtures for the engine tests: a real osbs-local (API server + TLS registry) started with `osbs-local up`.

One engine serves the whole session (`engine`: the session's `osbs_engine` from tests/conftest.py,
shared with the integration tests); tests that stop or restart an engine start their own with
`engines.start`. Each test that writes gets its own namespace, so tests do not see each other's objects.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import requests

from osbs_local.services.pki import ensure_pki
from osbs_local.services.registry import Registry, free_port
from testlib import start_engine, stop_engine


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
def engine(osbs_engine):
    """The session's osbs-local (tests/conftest.py), shared with the integration tests."""
    return osbs_engine


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
