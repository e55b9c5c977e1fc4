"""A real Pulp (osbs_local.pulp.PulpService), a real TLS+htpasswd registry (osbs_local.registry) and
tiny images pushed with buildah; the module runs through `ansible` with the checkout as osbs.flow."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from osbs_local.executor.process import buildah_command
from osbs_local.services.pki import ensure_pki
from osbs_local.services.pulp import PulpService
from osbs_local.services.registry import Registry, free_port

REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / "build" / "collections"  # tests/conftest.py links the checkout there
PYTHON = Path(os.environ.get("VIRTUAL_ENV") or REPO / ".venv") / "bin" / "python"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="session")
def state_dir():
    # Not under pytest's tmp_path: that is 0700 and PostgreSQL runs as the postgres user.
    path = Path(tempfile.mkdtemp(prefix="osbs-pulp-it-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(state_dir):
    return ensure_pki(state_dir / "pki")


@pytest.fixture(scope="session")
def pulp(state_dir, pki):
    service = PulpService(state_dir, pki)
    service.start()
    print(f"\nPulp start timings: {service.timings}")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def registry(state_dir, pki):
    reg = Registry(state_dir, free_port(), pki)
    reg.start()
    yield reg
    reg.stop()


class ImagePusher:
    """Builds a one-file image from scratch (distinct content = distinct digest) and pushes it."""

    def __init__(self, registry, storage_dir):
        self.registry = registry
        self.buildah = buildah_command(storage_dir)

    def _buildah(self, *args):
        done = subprocess.run([*self.buildah, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"buildah {args[0]}: {done.stderr}"
        return done.stdout.strip()

    def push(self, repository, tag, content):
        reference = f"{self.registry.host}/{repository}:{tag}"
        container = self._buildah("from", "--quiet", "scratch")
        mount = Path(self._buildah("mount", container))
        (mount / "content.txt").write_text(content)
        self._buildah("umount", container)
        self._buildah("config", "--arch", "amd64", "--os", "linux", "--cmd", "/content.txt", container)
        self._buildah("commit", "--quiet", "--rm", "--format", "docker", container, reference)
        with tempfile.NamedTemporaryFile() as digest_file:
            self._buildah(
                "push", "--quiet", "--authfile", str(self.registry.auth_file),
                "--cert-dir", str(self.registry.cert_dir / self.registry.host),
                "--digestfile", digest_file.name, reference,
            )
            pushed = Path(digest_file.name).read_text().strip()
        assert pushed == self.source_digest(repository, tag)
        return pushed

    def source_digest(self, repository, tag):
        return skopeo_digest(
            f"{self.registry.host}/{repository}:{tag}", self.registry.cert_dir / self.registry.host,
            creds=f"{self.registry.username}:{self.registry.password}",
        )


def skopeo_digest(reference, cert_dir, creds=None):
    cmd = ["skopeo", "inspect", "--no-tags", "--cert-dir", str(cert_dir)]
    if creds:
        cmd += ["--creds", creds]
    done = subprocess.run([*cmd, f"docker://{reference}"], capture_output=True, text=True)
    assert done.returncode == 0, f"skopeo inspect {reference}: {done.stderr}"
    return json.loads(done.stdout)["Digest"]


@pytest.fixture(scope="session")
def pull_digest():
    """skopeo_digest(reference, cert_dir, creds=None) as a fixture, for the test modules."""
    return skopeo_digest


@pytest.fixture(scope="session")
def images(registry, state_dir):
    return ImagePusher(registry, state_dir / "storage")


class ModuleRunner:
    """Runs osbs.flow.pulp_sync through the `ansible` ad-hoc command and returns its result dict."""

    def __init__(self, pulp, registry):
        self.pulp = pulp
        self.registry = registry

    def env(self, **overrides):
        env = dict(os.environ)
        env.update(self.pulp.env())
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            ANSIBLE_NOCOLOR="1",
            # pulp-glue caches Pulp's API schema per URL there (2 MB each; ports are random per session)
            XDG_CACHE_HOME=str(self.pulp.state_dir / "client-cache"),
        )
        env.update(overrides)
        return env

    def source(self, repository, **extra):
        """Module arguments for a sync of `repository` from the test registry."""
        args = dict(
            registry_uri=self.registry.host,
            repository=repository,
            registry_dockercfg_path=str(self.registry.auth_file),
            registry_ca_cert=str(self.registry.ca_file),
            pulp_registry_name="stage-pulp",
        )
        args.update(extra)
        return args

    def run_playbook(self, playbook_path, without_env=()):
        """ansible-playbook on localhost; returns the result of each task, in order."""
        env = self.env()
        for name in without_env:
            env.pop(name, None)
        cmd = [
            str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={PYTHON}", str(playbook_path),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        try:
            output = json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"ansible-playbook printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        return [task["hosts"]["localhost"] for task in output["plays"][0]["tasks"]]

    def run(self, args, check=False, diff=False, env=None):
        cmd = [
            str(REPO / ".venv" / "bin" / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={PYTHON}",
            "-m", "osbs.flow.pulp_sync", "-a", json.dumps(args),
        ]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env(**(env or {})), timeout=600)
        try:
            output = json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"ansible printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture(scope="session")
def ansible_module(pulp, registry):
    return ModuleRunner(pulp, registry)


class AccessLog:
    """Pulp's API access log (gunicorn, one line per request): counts what reached the server."""

    def __init__(self, path):
        self.path = Path(path)

    def lines(self):
        return self.path.read_text().splitlines() if self.path.exists() else []

    def requests_since(self, start):
        return self.lines()[start:]

    @staticmethod
    def writes(lines):
        return [line for line in lines if any(f'"{method} ' in line for method in WRITE_METHODS)]


@pytest.fixture
def access_log(pulp):
    return AccessLog(pulp.access_log)
