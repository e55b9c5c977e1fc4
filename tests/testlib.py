"""What the tests against osbs-local share: the engine, git repositories, running modules and playbooks."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / "build" / "collections"
VENV_BIN = Path(sys.executable).parent
OSBS_LOCAL = str(VENV_BIN / "osbs-local")


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
        import requests

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


def start_engine(state_dir: Path, *extra: str) -> Engine:
    """`osbs-local up` in state_dir (extra: more `up` arguments); fails with its output when it fails."""
    result = subprocess.run([OSBS_LOCAL, "up", "--state-dir", str(state_dir), *extra], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, "osbs-local up failed:\n%s\n%s" % (result.stdout, result.stderr)
    return Engine(state_dir, read_env_file(state_dir / "env"), json.loads((state_dir / "config.json").read_text()))


def stop_engine(engine: Engine) -> None:
    engine.cli("down", check=False, timeout=60)


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_git_repo(path: Path, files: dict, branch: str = "main") -> tuple[str, str]:
    """A git repository at `path` with `files` committed on `branch`; returns (file:// URI, commit)."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git(path, "init", "-q", "-b", branch)
        git(path, "config", "uploadpack.allowAnySHA1InWant", "true")
    return commit_files(path, files)


def commit_files(path: Path, files: dict, message: str = "change") -> tuple[str, str]:
    for name, content in files.items():
        target = path / name
        if content is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content))
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return "file://%s" % path, git(path, "rev-parse", "HEAD")


def module_env(engine: Engine) -> dict:
    env = dict(os.environ)
    env.update(engine.env)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
    env["PYTHONPATH"] = str(COLLECTIONS)
    # Modules need this venv's Python (kubernetes, dockerfile-parse, pulp-glue), whatever the inventory says.
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    return env


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


def wait_for(predicate, timeout: float = 120, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
