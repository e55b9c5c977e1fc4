"""The state directory of an osbs-local: config.json, the files for clients (kubeconfig, env), the serve
process's pid, and a tiny client of the engine's own API."""

from __future__ import annotations

import base64
import json
import secrets
import shlex
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import yaml

from .private_file import write_private
from .services.registry import free_port, pid_alive

DEFAULT_STATE_DIR = ".osbs-local"
NAMESPACE = "osbs"
REGISTRY_SECRET = "registry-dockercfg"


def load_config(state_dir: Path) -> dict:
    path = state_dir / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_config(state_dir: Path, config: dict) -> None:
    write_private(state_dir / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def ensure_config(state_dir: Path, port: Optional[int] = None, builder: Optional[str] = None,
                  docker_host: Optional[str] = None, build_workers: Optional[int] = None) -> dict:
    """config.json: ports chosen once and kept, the bearer token, the builder settings."""
    config = load_config(state_dir)
    config.setdefault("token", secrets.token_urlsafe(32))
    if port:
        config["api_port"] = port
    config.setdefault("api_port", free_port())
    if "registry_port" not in config:
        port_choice = free_port()
        while port_choice == config["api_port"]:
            port_choice = free_port()
        config["registry_port"] = port_choice
    if builder:
        config["builder"] = builder
    config.setdefault("builder", "buildah")
    if docker_host is not None:
        config["docker_host"] = docker_host or None
    config.setdefault("docker_host", None)
    if build_workers is not None:
        config["build_workers"] = build_workers
    config.setdefault("build_workers", 2)
    save_config(state_dir, config)
    return config


def serve_pid(state_dir: Path) -> Optional[int]:
    try:
        pid = int((state_dir / "serve.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid
    return pid if b"serve" in cmdline else None


# -- talking to the running engine ---------------------------------------------------------------
class Client:
    """A tiny HTTPS client for the engine's own API (the CLI must not need the kubernetes library)."""

    def __init__(self, state_dir: Path, config: Optional[dict] = None):
        config = config or load_config(state_dir)
        self.base = f"https://127.0.0.1:{config['api_port']}"
        self.token = config["token"]
        self.context = ssl.create_default_context(cafile=str(state_dir / "pki" / "ca.crt"))

    def request(self, method: str, path: str, body: Optional[dict] = None, timeout: float = 10.0, stream: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        response = urllib.request.urlopen(request, context=self.context, timeout=timeout)
        if stream:
            return response
        with response:
            return json.loads(response.read() or b"{}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/readyz", context=self.context, timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False


# -- files for clients -------------------------------------------------------------------------------
def write_kubeconfig(state_dir: Path, config: dict) -> Path:
    ca_data = base64.b64encode((state_dir / "pki" / "ca.crt").read_bytes()).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "osbs-local", "cluster": {
            "server": f"https://127.0.0.1:{config['api_port']}", "certificate-authority-data": ca_data}}],
        "users": [{"name": "osbs-local", "user": {"token": config["token"]}}],
        "contexts": [{"name": "osbs-local", "context": {"cluster": "osbs-local", "user": "osbs-local", "namespace": NAMESPACE}}],
        "current-context": "osbs-local",
        "preferences": {},
    }
    path = state_dir / "kubeconfig"
    write_private(path, yaml.safe_dump(kubeconfig, sort_keys=False))
    return path


def write_env(state_dir: Path, config: dict, extra: Optional[dict] = None) -> Path:
    values = {
        "K8S_AUTH_KUBECONFIG": str(state_dir / "kubeconfig"),
        "OSBS_LOCAL_STATE_DIR": str(state_dir),
        "OSBS_LOCAL_API": f"https://127.0.0.1:{config['api_port']}",
        "OSBS_LOCAL_REGISTRY": f"127.0.0.1:{config['registry_port']}",
        "REGISTRY_AUTH_FILE": str(state_dir / "auth.json"),
        "OSBS_LOCAL_REGISTRY_CA": str(state_dir / "pki" / "ca.crt"),
        # The build playbook's default registry_ca_cert (as PULP_CA_BUNDLE is pulp_ca_cert's).
        "REGISTRY_CA_BUNDLE": str(state_dir / "pki" / "ca.crt"),
        "OSBS_LOCAL_NAMESPACE": NAMESPACE,
        "OSBS_LOCAL_REGISTRY_SECRET": REGISTRY_SECRET,
    }
    values.update(extra or {})
    text = "".join(f"export {key}={shlex.quote(str(value))}\n" for key, value in values.items())
    path = state_dir / "env"
    write_private(path, text)
    return path


# -- serve ---------------------------------------------------------------------------------------------
