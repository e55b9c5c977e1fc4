"""The engine's integrated image registry: Debian's `docker-registry` (distribution 2.x).

It listens on 127.0.0.1 only, serves TLS with the engine's CA-signed certificate and asks for
htpasswd (bcrypt) credentials. The client-side files that buildah, skopeo and podman need are
written next to it: DIR/auth.json (a containers auth file) and DIR/certs.d/HOST/ca.crt.

Layout under the state dir DIR:
  DIR/registry/config.yml, htpasswd, credentials.json (0600), data/, registry.log, registry.pid
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
import yaml

from .environment import child_environment
from ..private_file import write_private

REGISTRY_BINARY = "docker-registry"
USERNAME = "osbs"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class RegistryStartError(RuntimeError):
    """The registry process did not come up; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bcrypt_htpasswd_line(username: str, password: str) -> str:
    # -i reads the password from stdin so it never shows up in a process listing.
    result = subprocess.run(
        ["htpasswd", "-n", "-B", "-i", username],
        input=password, capture_output=True, text=True, check=True, env=child_environment(),
    )
    return result.stdout.strip() + "\n"


def pid_alive(pid: int) -> bool:
    """Whether the process runs: a zombie (exited, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0); check its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_our_registry(pid: int, config: Path) -> bool:
    """True when pid is a docker-registry serving our config (guards against a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(config).encode() in cmdline and any(REGISTRY_BINARY.encode() in part for part in cmdline)


class Registry:
    def __init__(self, state_dir: Path, port: int, pki: dict):
        self.state_dir = Path(state_dir)
        self.port = int(port)
        self.pki = pki
        self.dir = self.state_dir / "registry"
        self.config_file = self.dir / "config.yml"
        self.htpasswd_file = self.dir / "htpasswd"
        self.credentials_file = self.dir / "credentials.json"
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "registry.log"
        self.pid_file = self.dir / "registry.pid"
        self.process: subprocess.Popen | None = None
        self._credentials: dict | None = None

    # -- addresses and credentials -------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_file(self) -> Path:
        return Path(self.pki["ca_cert"])

    def _load_credentials(self) -> dict:
        if self._credentials is None:
            if self.credentials_file.exists():
                self._credentials = json.loads(self.credentials_file.read_text())
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._credentials = {"username": USERNAME, "password": secrets.token_urlsafe(24)}
                write_private(self.credentials_file, json.dumps(self._credentials))
        return self._credentials

    @property
    def username(self) -> str:
        return self._load_credentials()["username"]

    @property
    def password(self) -> str:
        return self._load_credentials()["password"]

    @property
    def basic_auth(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def dockercfg(self) -> dict:
        """The registry's entry in dockercfg shape, e.g. for a kubernetes.io/dockercfg secret."""
        return {self.host: {"username": self.username, "password": self.password,
                            "email": f"{self.username}@localhost", "auth": self.basic_auth}}

    @property
    def cert_dir(self) -> Path:
        """The certs.d tree (for buildah/skopeo --cert-dir use cert_dir / host)."""
        return self.state_dir / "certs.d"

    @property
    def auth_file(self) -> Path:
        """Write DIR/auth.json and DIR/certs.d/HOST/ca.crt (kept in step with port and CA) and return the auth file."""
        path = self.state_dir / "auth.json"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps({"auths": {self.host: {"auth": self.basic_auth}}}, indent=2) + "\n")
        host_certs = self.cert_dir / self.host
        host_certs.mkdir(parents=True, exist_ok=True)
        (host_certs / "ca.crt").write_bytes(self.ca_file.read_bytes())
        return path

    # -- configuration ---------------------------------------------------------------------------
    def ensure_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        creds = self._load_credentials()
        if not self._htpasswd_matches(creds):
            write_private(self.htpasswd_file, _bcrypt_htpasswd_line(creds["username"], creds["password"]))
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "fields": {"service": "osbs-local-registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "tls": {"certificate": str(self.pki["cert"]), "key": str(self.pki["key"])},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {"htpasswd": {"realm": "osbs-local", "path": str(self.htpasswd_file)}},
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.auth_file  # keep the client-side files in step with the config
        return self.config_file

    def _htpasswd_matches(self, creds: dict) -> bool:
        if not self.htpasswd_file.exists():
            return False
        # `htpasswd -v` checks a password against the file (again read from stdin).
        result = subprocess.run(
            ["htpasswd", "-v", "-i", str(self.htpasswd_file), creds["username"]],
            input=creds["password"], capture_output=True, text=True, env=child_environment(),
        )
        return result.returncode == 0

    # -- process control -------------------------------------------------------------------------
    def _running_pid(self) -> int | None:
        # A Go process whose main thread exited is a zombie until its other threads end: not running.
        if self.process is not None and self.process.poll() is None and pid_alive(self.process.pid):
            return self.process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and _is_our_registry(pid, self.config_file):
            return pid
        return None

    def answers(self, timeout: float = 2.0) -> bool:
        """True when /v2/ answers 401 over TLS with our CA, i.e. the registry is up and asks for auth."""
        try:
            response = requests.get(f"{self.url}/v2/", verify=str(self.ca_file), timeout=timeout)
        except requests.RequestException:
            return False
        return response.status_code == 401

    def start(self) -> None:
        """Start `docker-registry serve` unless ours already runs, then wait until it answers."""
        self.ensure_config()
        if self._running_pid() is not None and self.answers():
            return
        log = open(self.log_file, "ab")
        try:
            # A session of its own: the registry outlives a short `up` and gets no terminal signals. Its environment
            # is built: docker-registry reads every REGISTRY_* variable as a setting over config.yml's.
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(self.config_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=str(self.dir), env=child_environment(),
            )
        finally:
            log.close()
        self.pid_file.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RegistryStartError(
                    f"docker-registry exited with status {self.process.returncode} while starting on "
                    f"{self.host}; end of {self.log_file}:\n{self.log_tail()}"
                )
            if self.answers(timeout=1.0):
                return
            time.sleep(0.1)
        self.stop()
        raise RegistryStartError(
            f"docker-registry did not answer on https://{self.host}/v2/ within {START_TIMEOUT:.0f}s; "
            f"end of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        pid = self._running_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                if self.process is not None and self.process.pid == pid:
                    if self.process.poll() is not None:
                        break
                elif not pid_alive(pid):
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if self.process is not None and self.process.pid == pid:
                    self.process.wait(5)
        if self.process is not None:
            self.process.poll()
            self.process = None
        self.pid_file.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._running_pid() is not None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
