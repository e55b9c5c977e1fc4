"""A real Pulp 3 (pulpcore + pulp_container) for osbs-local: its settings, processes and lifecycle.

Pulp runs from its own virtual environment, kept in a per-machine cache so that
only the first start ever pays for the install, against a private PostgreSQL
cluster in the state directory.  A freshly migrated database is cached as a
pg_dump next to the virtual environment: restoring it takes well under a second
where ``pulpcore-manager migrate`` costs half a minute of CPU.  The virtual environment is
pulp_install.py's, the cluster postgres.py's.

Layout under ``STATE_DIR/pulp``:
  settings.py, secret-key, db-encryption.key, admin-password (0600), ports.json,
  pids.json, timings.json (phases of the last start), pg/ (cluster, owned by the
  postgres user; or pg-location naming a cluster under PG_FALLBACK_ROOT), media/,
  static/, work/, upload-tmp/, logs/{api,api-access,content,worker}.log

Measured on this project's machine kind (2 cores): first start ever 34 s (venv with
uv 7 s, migrate 22 s, processes 4 s); a new state dir later 4-6 s (restore 0.3-0.5 s);
a restart of a stopped state dir about 4 s; start() while running 0.02 s; stop() 2 s.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from .postgres import DATABASE_USER, PG_FALLBACK_ROOT, PostgresCluster
from .pulp_install import (PULP_CONTAINER_VERSION, PULPCORE_VERSION, PulpStartError, cache_root, ensure_venv, file_lock,
                           run_tool, version_key)
from .environment import child_environment
from .registry import pid_alive
from ..private_file import write_private

__all__ = ["PG_FALLBACK_ROOT", "PULP_CONTAINER_VERSION", "PULPCORE_VERSION", "PulpService", "PulpStartError"]

ADMIN_USERNAME = "admin"
DATABASE_NAME = "pulp"
STATUS_PATH = "/pulp/api/v3/status/"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
# The processes this service starts, in start order; the key is their pids.json entry.
PROCESSES = ("api", "content", "worker")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers bind: connections of a previous run in TIME_WAIT do not block the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _md5_password_hash(password: str) -> str:
    """Django's MD5PasswordHasher format; the settings select that hasher (see _settings_text)."""
    salt = secrets.token_hex(8)
    return f"md5${salt}${hashlib.md5((salt + password).encode()).hexdigest()}"


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PulpService:
    """Start and stop Pulp for one osbs-local state directory; both are idempotent.

    ``pki`` is osbs_local.services.pki.ensure_pki()'s dict (ca_cert, ca_key, cert, key): the API and
    the content app serve TLS with ``cert``/``key``; clients trust ``ca_cert``.
    ``registry`` is accepted for the engine's call signature and not needed here.
    """

    def __init__(self, state_dir: Path, pki: dict, registry=None):
        self.state_dir = Path(state_dir)
        self.pki = {key: Path(value) for key, value in pki.items()}
        self.dir = self.state_dir / "pulp"
        self.log_dir = self.dir / "logs"
        self.timings: dict = {}
        self.postgres = PostgresCluster(self.state_dir, self.dir)

    # ---- where the PostgreSQL cluster lives -----------------------------------

    # ---- where the PostgreSQL cluster lives -----------------------------------
    @property
    def pg_dir(self) -> Path:
        return self.postgres.dir

    @property
    def pg_data(self) -> Path:
        return self.postgres.data

    def destroy(self) -> None:
        """stop(), then remove a fallback cluster outside the state dir (the state dir is the caller's)."""
        self.stop()
        self.postgres.remove_fallback()

    # ---- small state files -------------------------------------------------
    @property
    def _ports_file(self) -> Path:
        return self.dir / "ports.json"

    @property
    def _pids_file(self) -> Path:
        return self.dir / "pids.json"

    def _read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def ports(self) -> dict:
        return self._read_json(self._ports_file)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports['api']}"

    @property
    def admin_password(self) -> str:
        return (self.dir / "admin-password").read_text().strip()

    @property
    def access_log(self) -> Path:
        """Gunicorn's access log of the API: one line per request, method first (tests count writes here)."""
        return self.log_dir / "api-access.log"

    def env(self) -> dict:
        return {
            "PULP_URL": self.url,
            "PULP_USERNAME": ADMIN_USERNAME,
            "PULP_PASSWORD": self.admin_password,
            "PULP_CA_BUNDLE": str(self.pki["ca_cert"]),
        }

    # ---- lifecycle -----------------------------------------------------------
    def start(self) -> dict:
        """Make Pulp run and answer; return its client environment (PULP_URL, ..., PULP_CA_BUNDLE)."""
        started = time.monotonic()
        self.timings = {}
        if self._all_processes_alive() and self._ready():
            self.timings = {"already_running": round(time.monotonic() - started, 2)}
            return self.env()
        self._stop_processes()  # a partial set from a crash: start them all afresh

        venv = self._timed("venv", ensure_venv)
        self._ensure_files()
        self._timed("postgres_start", lambda: self.postgres.start(self.ports["postgres"]))
        self._ensure_database(venv)
        self._timed("processes_ready", lambda: self._start_processes(venv))
        self.timings["total"] = round(time.monotonic() - started, 2)
        (self.dir / "timings.json").write_text(json.dumps(self.timings, indent=2) + "\n")
        return self.env()

    def stop(self) -> None:
        """Stop the Pulp processes and the PostgreSQL cluster; data stays for the next start."""
        self._stop_processes()
        self.postgres.stop()

    def running(self) -> bool:
        return self._all_processes_alive() and self._ready()

    # ---- helpers ---------------------------------------------------------------
    def _timed(self, name: str, action):
        began = time.monotonic()
        result = action()
        self.timings[name] = round(time.monotonic() - began, 2)
        return result

    def _ensure_files(self) -> None:
        for sub in ("media", "static", "work", "upload-tmp", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        ports = self.ports
        running_postgres_port = self.postgres.running_port()
        if running_postgres_port:
            ports["postgres"] = running_postgres_port
        for name in ("api", "content", "postgres"):
            if name == "postgres" and running_postgres_port:
                continue
            if not ports.get(name) or not _port_free(ports[name]):
                ports[name] = _free_port()
        self._ports_file.write_text(json.dumps(ports, indent=2) + "\n")
        if not (self.dir / "admin-password").exists():
            write_private(self.dir / "admin-password", secrets.token_urlsafe(18) + "\n")
        if not (self.dir / "db-encryption.key").exists():
            write_private(self.dir / "db-encryption.key", base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
        if not (self.dir / "secret-key").exists():
            write_private(self.dir / "secret-key", secrets.token_urlsafe(48) + "\n")
        write_private(self.dir / "settings.py", self._settings_text(ports))

    def _settings_text(self, ports: dict) -> str:
        settings = {
            "SECRET_KEY": (self.dir / "secret-key").read_text().strip(),
            "CONTENT_ORIGIN": f"https://127.0.0.1:{ports['content']}",
            "DATABASES": {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": DATABASE_NAME,
                    "USER": DATABASE_USER,
                    "PASSWORD": self.postgres.password,
                    "HOST": "127.0.0.1",
                    "PORT": ports["postgres"],
                }
            },
            "DEPLOY_ROOT": str(self.dir),
            "MEDIA_ROOT": str(self.dir / "media"),
            "STATIC_ROOT": str(self.dir / "static"),
            "WORKING_DIRECTORY": str(self.dir / "work"),
            "FILE_UPLOAD_TEMP_DIR": str(self.dir / "upload-tmp"),
            "DB_ENCRYPTION_KEY": str(self.dir / "db-encryption.key"),
            # Clients of this local Pulp authenticate with basic auth; no token server.
            "TOKEN_AUTH_DISABLED": True,
            "ANALYTICS": False,
            # The default PBKDF2 hasher costs 0.5 s of CPU on every basic-auth request; this
            # Pulp only ever serves one machine's builds and tests.
            "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        }
        return "".join(f"{key} = {value!r}\n" for key, value in settings.items())

    def _process_env(self, venv: Path) -> dict:
        """Built, not inherited: Pulp reads every PULP_* variable as a setting (the env file osbs-local writes
        exports PULP_URL and PULP_PASSWORD), Django DJANGO_SETTINGS_MODULE, Python PYTHONPATH."""
        env = child_environment(PULP_SETTINGS=str(self.dir / "settings.py"), VIRTUAL_ENV=str(venv))
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
        return env

    # ---- PostgreSQL ----------------------------------------------------------
    # ---- the database -------------------------------------------------------------
    def _psql(self, sql: str, database: str = "postgres") -> str:
        return self.postgres.psql(self.ports["postgres"], sql, database)

    def _ensure_database(self, venv: Path) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'").strip() == "1"
        migrated = False
        if exists:
            # Cheap check that a previous start got past the restore or migration.
            migrated = self._psql("SELECT to_regclass('auth_user') IS NOT NULL", DATABASE_NAME).strip() == "t"
            if not migrated:
                self._psql(f"DROP DATABASE {DATABASE_NAME}")
        if not exists or not migrated:
            self._psql(f"CREATE DATABASE {DATABASE_NAME}")
            dump = cache_root() / f"pulp-db-{version_key()}.dump"
            with file_lock(cache_root() / f"pulp-db-{version_key()}.lock"):
                if dump.exists():
                    self._timed("db_restore", lambda: self._restore(dump))
                else:
                    self._timed("db_migrate", lambda: self._migrate_and_dump(venv, dump))
        # Every start: the password file in the state dir is the truth (cheap, and survives a lost file).
        self._psql(
            f"UPDATE auth_user SET password = '{_md5_password_hash(self.admin_password)}' "
            f"WHERE username = '{ADMIN_USERNAME}'",
            DATABASE_NAME,
        )

    def _restore(self, dump: Path) -> None:
        self.postgres.restore(self.ports["postgres"], DATABASE_NAME, dump)

    def _migrate_and_dump(self, venv: Path, dump: Path) -> None:
        env = self._process_env(venv)
        run_tool([venv / "bin" / "pulpcore-manager", "migrate", "--noinput"], env=env, what="pulpcore-manager migrate")
        # Makes the admin row exist in the snapshot; each database then gets its own password by SQL.
        run_tool(
            [venv / "bin" / "pulpcore-manager", "reset-admin-password", "--password", secrets.token_urlsafe(18)],
            env=env,
            what="pulpcore-manager reset-admin-password",
        )
        self.postgres.dump(self.ports["postgres"], DATABASE_NAME, dump)

    # ---- Pulp processes ------------------------------------------------------
    def _commands(self, venv: Path) -> dict:
        ports = self.ports
        bin_dir = venv / "bin"
        return {
            "api": [bin_dir / "pulpcore-api", "--bind", f"127.0.0.1:{ports['api']}", "--workers", "1",
                    "--no-control-socket"],
            "content": [bin_dir / "pulpcore-content", "--bind", f"127.0.0.1:{ports['content']}", "--workers", "1",
                        "--no-control-socket"],
            "worker": [bin_dir / "pulpcore-worker"],
        }

    def _start_processes(self, venv: Path) -> None:
        env = self._process_env(venv)
        tls = f"--certfile={self.pki['cert']} --keyfile={self.pki['key']}"
        pids = {}
        for name, cmd in self._commands(venv).items():
            process_env = dict(env)
            if name == "api":
                process_env["GUNICORN_CMD_ARGS"] = f"{tls} --access-logfile={self.access_log}"
            elif name == "content":
                process_env["GUNICORN_CMD_ARGS"] = tls
            with open(self.log_dir / f"{name}.log", "ab") as log:
                process = subprocess.Popen(
                    [str(part) for part in cmd],
                    env=process_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    start_new_session=True,  # outlives `osbs-local up`; stop() ends the whole group
                )
            pids[name] = process.pid
        self._pids_file.write_text(json.dumps(pids, indent=2) + "\n")
        self._wait_ready(pids)

    def _status(self) -> dict | None:
        try:
            response = requests.get(
                self.url + STATUS_PATH, verify=str(self.pki["ca_cert"]), timeout=5
            )
        except (requests.RequestException, KeyError):
            return None
        if response.status_code != 200:
            return None
        return response.json()

    def _ready(self) -> bool:
        status = self._status()
        return bool(status and status.get("online_workers") and status.get("online_content_apps"))

    def _wait_ready(self, pids: dict) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for name, pid in pids.items():
                if not pid_alive(pid):
                    raise PulpStartError(
                        f"pulpcore {name} exited during start; last lines of {self.log_dir / (name + '.log')}:\n"
                        + _log_tail(self.log_dir / f"{name}.log")
                    )
            if self._ready():
                return
            time.sleep(0.3)
        raise PulpStartError(
            f"Pulp did not report an online worker and content app within {READY_TIMEOUT:.0f} s at "
            f"{self.url}{STATUS_PATH}; see {self.log_dir}"
        )

    def _our_pids(self) -> dict:
        """pids.json entries still alive and still running Pulp (a pid may have been reused)."""
        return {
            name: pid
            for name, pid in self._read_json(self._pids_file).items()
            if pid_alive(pid) and "pulpcore" in _cmdline(pid)
        }

    def _all_processes_alive(self) -> bool:
        return set(self._our_pids()) == set(PROCESSES)

    def _stop_processes(self) -> None:
        pids = self._our_pids()
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)  # each was started as its own session leader
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids.values()):
            time.sleep(0.1)
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for pid in pids.values():  # reap them when they are our children (same process did start())
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        with contextlib.suppress(FileNotFoundError):
            self._pids_file.unlink()
