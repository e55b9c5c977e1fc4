"""Pulp's own virtual environment (pulpcore and pulp-container at pinned versions), installed once per machine
in a cache shared by every state directory, and the tools' runner the Pulp launcher shares."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .environment import PROXY_VARIABLES, child_environment

PULPCORE_VERSION = "3.123.1"
PULP_CONTAINER_VERSION = "2.30.0"
REQUIREMENTS = (f"pulpcore=={PULPCORE_VERSION}", f"pulp-container=={PULP_CONTAINER_VERSION}")
# What the installers take from the machine: how to reach the package index, and which one.
_INSTALLER_VARIABLES = PROXY_VARIABLES + ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
                                          "UV_EXTRA_INDEX_URL", "UV_CACHE_DIR", "SSL_CERT_FILE")


class PulpStartError(RuntimeError):
    """Pulp (or its database) could not be set up or did not become ready."""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "osbs-local"


def version_key() -> str:
    """Names the cached venv and database dump: changes with the pinned versions and the Python."""
    material = "\n".join(REQUIREMENTS) + f"\npython{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(material.encode()).hexdigest()[:12]


@contextlib.contextmanager
def file_lock(path: Path):
    """Serialise installs between concurrent `up`s (e.g. parallel test sessions) on one machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_tool(cmd: list, *, env: dict | None = None, what: str, timeout: float = 600, **kwargs) -> str:
    """Run a tool with `env`, by default child_environment() (never the engine's caller's); its stdout."""
    try:
        done = subprocess.run(
            [str(part) for part in cmd], env=child_environment() if env is None else env, capture_output=True, text=True,
            timeout=timeout, **kwargs
        )
    except FileNotFoundError as exc:
        raise PulpStartError(f"{what}: {exc.filename} is not installed") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-2000:]
        raise PulpStartError(f"{what} failed (exit {done.returncode}): {output}")
    return done.stdout


def _find_uv() -> str | None:
    beside_python = Path(sys.executable).parent / "uv"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("uv")


def ensure_venv() -> Path:
    """Return the cached virtual environment with pulpcore and pulp-container, installing it once."""
    venv = cache_root() / f"pulp-venv-{version_key()}"
    complete_marker = venv / ".osbs-local-complete"
    if complete_marker.exists():
        return venv
    with file_lock(cache_root() / f"pulp-venv-{version_key()}.lock"):
        if complete_marker.exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)  # a half-finished install from an interrupted run
        uv = _find_uv()
        installer_env = child_environment(*_INSTALLER_VARIABLES)
        if uv:
            run_tool([uv, "venv", "--quiet", "--python", sys.executable, venv], what="creating the Pulp venv", env=installer_env)
            run_tool(
                [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python", *REQUIREMENTS],
                what="installing pulpcore and pulp-container (uv)", env=installer_env,
            )
        else:
            run_tool([sys.executable, "-m", "venv", venv], what="creating the Pulp venv", env=installer_env)
            run_tool(
                [venv / "bin" / "python", "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                what="installing pulpcore and pulp-container (pip)", env=installer_env,
            )
        complete_marker.write_text("\n".join(REQUIREMENTS) + "\n")
    return venv
