"""A real Pulp 3 (pulpcore + pulp_container) for osbs-local.

Pulp runs from its own virtual environment, kept in a per-machine cache so that
only the first start ever pays for the install, against a private PostgreSQL
cluster in the state directory.  A freshly migrated database is cached as a
pg_dump next to the virtual environment: restoring it takes well under a second
where ``pulpcore-manager migrate`` costs half a minute of CPU.

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
import fcntl
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .registry import pid_alive

PULPCORE_VERSION = "3.123.1"
PULP_CONTAINER_VERSION = "2.30.0"
REQUIREMENTS = (f"pulpcore=={PULPCORE_VERSION}", f"pulp-container=={PULP_CONTAINER_VERSION}")

ADMIN_USERNAME = "admin"
DATABASE_NAME = "pulp"
DATABASE_USER = "postgres"
STATUS_PATH = "/pulp/api/v3/status/"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
# The processes this service starts, in start order; the key is their pids.json entry.
PROCESSES = ("api", "content", "worker")


# Where clusters go whose state dir the postgres user cannot reach (see PulpService._choose_pg_dir).
PG_FALLBACK_ROOT = Path("/var/tmp/osbs-local-pg")


class PulpStartError(RuntimeError):
    """Pulp (or its database) could not be set up or did not become ready."""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "osbs-local"


def _version_key() -> str:
    """Names the cached venv and database dump: changes with the pinned versions and the Python."""
    material = "\n".join(REQUIREMENTS) + f"\npython{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(material.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _file_lock(path: Path):
    """Serialise installs between concurrent `up`s (e.g. parallel test sessions) on one machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list, *, env: dict | None = None, what: str, timeout: float = 600, **kwargs) -> str:
    try:
        done = subprocess.run(
            [str(part) for part in cmd], env=env, capture_output=True, text=True, timeout=timeout, **kwargs
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
    venv = cache_root() / f"pulp-venv-{_version_key()}"
    complete_marker = venv / ".osbs-local-complete"
    if complete_marker.exists():
        return venv
    with _file_lock(cache_root() / f"pulp-venv-{_version_key()}.lock"):
        if complete_marker.exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)  # a half-finished install from an interrupted run
        uv = _find_uv()
        if uv:
            _run([uv, "venv", "--quiet", "--python", sys.executable, venv], what="creating the Pulp venv")
            _run(
                [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python", *REQUIREMENTS],
                what="installing pulpcore and pulp-container (uv)",
            )
        else:
            _run([sys.executable, "-m", "venv", venv], what="creating the Pulp venv")
            _run(
                [venv / "bin" / "python", "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                what="installing pulpcore and pulp-container (pip)",
            )
        complete_marker.write_text("\n".join(REQUIREMENTS) + "\n")
    return venv


def _postgres_bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PulpStartError("PostgreSQL is not installed (no initdb found): install the postgresql package")


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


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _md5_password_hash(password: str) -> str:
    """Django's MD5PasswordHasher format; the settings select that hasher (see _settings_text)."""
    salt = secrets.token_hex(8)
    return f"md5${salt}${hashlib.md5((salt + password).encode()).hexdigest()}"


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _remove_orphan_fallback_clusters() -> None:
    for cluster in PG_FALLBACK_ROOT.glob("*/state-dir"):
        if Path(cluster.read_text().strip()).exists():
            continue
        try:
            postmaster_pid = int((cluster.parent / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster_pid = None
        if postmaster_pid is None or not pid_alive(postmaster_pid):
            shutil.rmtree(cluster.parent, ignore_errors=True)


class PulpService:
    """Start and stop Pulp for one osbs-local state directory; both are idempotent.

    ``pki`` is osbs_local.pki.ensure_pki()'s dict (ca_cert, ca_key, cert, key): the API and
    the content app serve TLS with ``cert``/``key``; clients trust ``ca_cert``.
    ``registry`` is accepted for the engine's call signature and not needed here.
    """

    def __init__(self, state_dir: Path, pki: dict, registry=None):
        self.state_dir = Path(state_dir)
        self.pki = {key: Path(value) for key, value in pki.items()}
        self.dir = self.state_dir / "pulp"
        self.log_dir = self.dir / "logs"
        self.timings: dict = {}

    # ---- where the PostgreSQL cluster lives -----------------------------------
    @property
    def _pg_location_file(self) -> Path:
        return self.dir / "pg-location"

    @property
    def pg_dir(self) -> Path:
        """DIR/pulp/pg, or the fallback chosen at the first start (see _choose_pg_dir)."""
        try:
            return Path(self._pg_location_file.read_text().strip())
        except OSError:
            return self.dir / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    def _choose_pg_dir(self) -> None:
        """PostgreSQL refuses to run as root and runs as the postgres user, who must be able to reach
        its data directory. A state dir under a 0700 directory (pytest's tmp_path) is out of its reach:
        then the cluster lives under PG_FALLBACK_ROOT, named after the state dir, and
        DIR/pulp/pg-location says where. Fallback clusters whose state dir is gone are removed here."""
        if self._pg_location_file.exists() or os.geteuid() != 0:
            return
        if subprocess.run(self._as_postgres(["test", "-x", str(self.dir)]), cwd="/").returncode == 0:
            return
        _remove_orphan_fallback_clusters()
        key = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]
        fallback = PG_FALLBACK_ROOT / key
        fallback.mkdir(parents=True, exist_ok=True)
        PG_FALLBACK_ROOT.chmod(0o755)
        (fallback / "state-dir").write_text(str(self.state_dir.resolve()) + "\n")
        self._pg_location_file.write_text(str(fallback) + "\n")

    def destroy(self) -> None:
        """stop(), then remove a fallback cluster outside the state dir (the state dir is the caller's)."""
        self.stop()
        if self.pg_dir.parent == PG_FALLBACK_ROOT:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self._pg_location_file.unlink(missing_ok=True)

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
        self._timed("postgres_start", self._start_postgres)
        self._ensure_database(venv)
        self._timed("processes_ready", lambda: self._start_processes(venv))
        self.timings["total"] = round(time.monotonic() - started, 2)
        (self.dir / "timings.json").write_text(json.dumps(self.timings, indent=2) + "\n")
        return self.env()

    def stop(self) -> None:
        """Stop the Pulp processes and the PostgreSQL cluster; data stays for the next start."""
        self._stop_processes()
        if (self.pg_data / "PG_VERSION").exists() and self._postgres_running():
            self._as_postgres_run(
                [_postgres_bin_dir() / "pg_ctl", "-D", self.pg_data, "-m", "fast", "-w", "stop"],
                what="stopping PostgreSQL",
            )

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
        running_postgres_port = self._running_postgres_port()
        if running_postgres_port:
            ports["postgres"] = running_postgres_port
        for name in ("api", "content", "postgres"):
            if name == "postgres" and running_postgres_port:
                continue
            if not ports.get(name) or not _port_free(ports[name]):
                ports[name] = _free_port()
        self._ports_file.write_text(json.dumps(ports, indent=2) + "\n")
        if not (self.dir / "admin-password").exists():
            _write_private(self.dir / "admin-password", secrets.token_urlsafe(18) + "\n")
        if not (self.dir / "db-encryption.key").exists():
            _write_private(self.dir / "db-encryption.key", base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
        if not (self.dir / "secret-key").exists():
            _write_private(self.dir / "secret-key", secrets.token_urlsafe(48) + "\n")
        _write_private(self.dir / "settings.py", self._settings_text(ports))

    def _settings_text(self, ports: dict) -> str:
        settings = {
            "SECRET_KEY": (self.dir / "secret-key").read_text().strip(),
            "CONTENT_ORIGIN": f"https://127.0.0.1:{ports['content']}",
            "DATABASES": {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": DATABASE_NAME,
                    "USER": DATABASE_USER,
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
        env = dict(os.environ)
        env["PULP_SETTINGS"] = str(self.dir / "settings.py")
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
        env.pop("PYTHONPATH", None)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    # ---- PostgreSQL ----------------------------------------------------------
    def _as_postgres(self, cmd: list) -> list:
        if os.geteuid() == 0:
            return ["runuser", "-u", DATABASE_USER, "--", *cmd]
        return cmd

    def _as_postgres_run(self, cmd: list, what: str) -> str:
        return _run(self._as_postgres(cmd), what=what, cwd="/")

    def _postgres_running(self) -> bool:
        done = subprocess.run(
            self._as_postgres([str(_postgres_bin_dir() / "pg_ctl"), "-D", str(self.pg_data), "status"]),
            capture_output=True,
            cwd="/",
        )
        return done.returncode == 0

    def _running_postgres_port(self) -> int | None:
        """The port of this state dir's cluster when it runs (line 4 of postmaster.pid), else None."""
        try:
            lines = (self.pg_data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if pid_alive(pid) else None

    def _start_postgres(self) -> None:
        bin_dir = _postgres_bin_dir()
        self._choose_pg_dir()
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(DATABASE_USER)
            os.chown(self.pg_dir, user.pw_uid, user.pw_gid)
            probe = subprocess.run(self._as_postgres(["test", "-w", str(self.pg_dir)]), cwd="/")
            if probe.returncode != 0:
                raise PulpStartError(
                    f"PostgreSQL runs as the user {DATABASE_USER!r}, who cannot reach {self.pg_dir}: "
                    "make its parent directories traversable (chmod o+x) or use another state directory"
                )
        if not (self.pg_data / "PG_VERSION").exists():
            if self.pg_data.exists():
                shutil.rmtree(self.pg_data)  # an initdb that did not finish
            self._as_postgres_run(
                [bin_dir / "initdb", "-D", self.pg_data, "--auth=trust", "-U", DATABASE_USER, "--no-sync",
                 "-E", "UTF8", "--locale=C"],
                what="initdb",
            )
        if self._postgres_running():
            return
        port = self.ports["postgres"]
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._as_postgres_run(
            [bin_dir / "pg_ctl", "-D", self.pg_data, "-l", self.pg_dir / "postgres.log", "-o", options, "-w",
             "-t", "60", "start"],
            what="starting PostgreSQL",
        )

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return _run(
            [_postgres_bin_dir() / "psql", "-h", "127.0.0.1", "-p", self.ports["postgres"], "-U", DATABASE_USER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            what="psql",
        )

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
            dump = cache_root() / f"pulp-db-{_version_key()}.dump"
            with _file_lock(cache_root() / f"pulp-db-{_version_key()}.lock"):
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

    def _pg_client_args(self) -> list:
        return ["-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "-U", DATABASE_USER]

    def _restore(self, dump: Path) -> None:
        _run(
            [_postgres_bin_dir() / "pg_restore", *self._pg_client_args(), "-d", DATABASE_NAME, "--no-owner",
             "--exit-on-error", dump],
            what="restoring the migrated Pulp database",
        )

    def _migrate_and_dump(self, venv: Path, dump: Path) -> None:
        env = self._process_env(venv)
        _run([venv / "bin" / "pulpcore-manager", "migrate", "--noinput"], env=env, what="pulpcore-manager migrate")
        # Makes the admin row exist in the snapshot; each database then gets its own password by SQL.
        _run(
            [venv / "bin" / "pulpcore-manager", "reset-admin-password", "--password", secrets.token_urlsafe(18)],
            env=env,
            what="pulpcore-manager reset-admin-password",
        )
        partial = dump.with_suffix(".partial")
        _run(
            [_postgres_bin_dir() / "pg_dump", *self._pg_client_args(), "-Fc", "-f", partial, DATABASE_NAME],
            what="pg_dump of the migrated Pulp database",
        )
        partial.rename(dump)

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
