"""The private PostgreSQL cluster of one state directory's Pulp: where it lives, initdb, start, stop, psql,
and the pg_dump/pg_restore of a migrated database.  As root, the server's tools run as the postgres user.

Only the engine gets in: the cluster listens on 127.0.0.1 with no Unix socket, and its pg_hba.conf (written by
this module at every start) asks for the superuser's password, scram-sha-256, from every connection. The
password is generated once and kept in STATE_DIR/pulp/db-password (0600, the engine's user's); it is set in
the cluster in single-user mode, with the server stopped, whenever the cluster does not have it yet (a new
cluster, or one made by an osbs-local that trusted every local connection). Clients get it as PGPASSWORD in an
environment built for them, never on a command line."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from .environment import child_environment
from .pulp_install import PulpStartError, run_tool
from .registry import pid_alive
from ..private_file import write_private

DATABASE_USER = "postgres"
HBA_CONF = """\
# Written by osbs-local at every start. Only the engine, with the password in STATE_DIR/pulp/db-password.
# TYPE  DATABASE  USER      ADDRESS       METHOD
host    all       postgres  127.0.0.1/32  scram-sha-256
"""
# In the data directory: a digest of the password the cluster has, so it is set again only when it changed.
PASSWORD_MARK = "osbs-local-password.sha256"
# Where clusters go whose state dir the postgres user cannot reach (see PostgresCluster.choose_dir).
PG_FALLBACK_ROOT = Path("/var/tmp/osbs-local-pg")


def postgres_bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PulpStartError("PostgreSQL is not installed (no initdb found): install the postgresql package")


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


class PostgresCluster:
    """The cluster of the Pulp whose files are in pulp_dir (STATE_DIR/pulp)."""

    def __init__(self, state_dir: Path, pulp_dir: Path):
        self.state_dir = state_dir
        self.pulp_dir = pulp_dir

    @property
    def password(self) -> str:
        """The superuser's password, generated at the first call and kept 0600 in pulp_dir."""
        path = self.pulp_dir / "db-password"
        if not path.exists():
            self.pulp_dir.mkdir(parents=True, exist_ok=True)
            write_private(path, secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def client_env(self) -> dict:
        """The environment of a client of this cluster (psql, pg_dump, Pulp): the password, and no PG* of the caller."""
        return child_environment(PGPASSWORD=self.password)

    # ---- where it lives --------------------------------------------------------
    @property
    def _location_file(self) -> Path:
        return self.pulp_dir / "pg-location"

    @property
    def dir(self) -> Path:
        """DIR/pulp/pg, or the fallback chosen at the first start (see choose_dir)."""
        try:
            return Path(self._location_file.read_text().strip())
        except OSError:
            return self.pulp_dir / "pg"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def choose_dir(self) -> None:
        """PostgreSQL refuses to run as root and runs as the postgres user, who must be able to reach
        its data directory. A state dir under a 0700 directory (pytest's tmp_path) is out of its reach:
        then the cluster lives under PG_FALLBACK_ROOT, named after the state dir, and
        DIR/pulp/pg-location says where. Fallback clusters whose state dir is gone are removed here."""
        if self._location_file.exists() or os.geteuid() != 0:
            return
        if subprocess.run(self.as_postgres(["test", "-x", str(self.pulp_dir)]), cwd="/", env=child_environment()).returncode == 0:
            return
        _remove_orphan_fallback_clusters()
        key = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]
        fallback = PG_FALLBACK_ROOT / key
        fallback.mkdir(parents=True, exist_ok=True)
        PG_FALLBACK_ROOT.chmod(0o755)
        (fallback / "state-dir").write_text(str(self.state_dir.resolve()) + "\n")
        self._location_file.write_text(str(fallback) + "\n")

    def remove_fallback(self) -> None:
        """Remove a fallback cluster outside the state dir (the state dir is its owner's)."""
        if self.dir.parent == PG_FALLBACK_ROOT:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._location_file.unlink(missing_ok=True)

    # ---- running it --------------------------------------------------------------
    def as_postgres(self, cmd: list) -> list:
        if os.geteuid() == 0:
            return ["runuser", "-u", DATABASE_USER, "--", *cmd]
        return cmd

    def _run_as_postgres(self, cmd: list, what: str, **kwargs) -> str:
        return run_tool(self.as_postgres(cmd), what=what, cwd="/", env=child_environment(), **kwargs)

    def running(self) -> bool:
        done = subprocess.run(
            self.as_postgres([str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            cwd="/",
            env=child_environment(),
        )
        return done.returncode == 0

    def running_port(self) -> int | None:
        """The port of this state dir's cluster when it runs (line 4 of postmaster.pid), else None."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if pid_alive(pid) else None

    def start(self, port: int) -> None:
        bin_dir = postgres_bin_dir()
        self.choose_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(DATABASE_USER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            probe = subprocess.run(self.as_postgres(["test", "-w", str(self.dir)]), cwd="/", env=child_environment())
            if probe.returncode != 0:
                raise PulpStartError(
                    f"PostgreSQL runs as the user {DATABASE_USER!r}, who cannot reach {self.dir}: "
                    "make its parent directories traversable (chmod o+x) or use another state directory"
                )
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)  # an initdb that did not finish
            # reject: nothing gets in until the pg_hba.conf written below, which asks for the password that
            # _ensure_password sets before the server first starts.
            self._run_as_postgres(
                [bin_dir / "initdb", "-D", self.data, "--auth=reject", "-U", DATABASE_USER, "--no-sync",
                 "-E", "UTF8", "--locale=C"],
                what="initdb",
            )
        self._ensure_password(bin_dir)
        self._write_hba()
        if self.running():
            self._run_as_postgres([bin_dir / "pg_ctl", "-D", self.data, "reload"], what="reloading PostgreSQL's pg_hba.conf")
            return
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run_as_postgres(
            [bin_dir / "pg_ctl", "-D", self.data, "-l", self.dir / "postgres.log", "-o", options, "-w",
             "-t", "60", "start"],
            what="starting PostgreSQL",
        )

    def _write_hba(self) -> None:
        path = self.data / "pg_hba.conf"
        if path.exists() and path.read_text() == HBA_CONF:
            return
        write_private(path, HBA_CONF)
        self._give_to_postgres(path)

    def _give_to_postgres(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(DATABASE_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _ensure_password(self, bin_dir: Path) -> None:
        """Set the superuser's password in single-user mode (the server stopped) unless the cluster has it."""
        mark = self.data / PASSWORD_MARK
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        if mark.exists() and mark.read_text().strip() == digest:
            return
        self.stop()
        # The password (token_urlsafe: letters, digits, '-' and '_') goes in on stdin, not on a command line.
        self._run_as_postgres(
            [bin_dir / "postgres", "--single", "-D", self.data, "-c", "password_encryption=scram-sha-256", "postgres"],
            what="setting the PostgreSQL password", input=f"ALTER ROLE {DATABASE_USER} PASSWORD '{self.password}'\n",
        )
        write_private(mark, digest + "\n")
        self._give_to_postgres(mark)

    def stop(self) -> None:
        if (self.data / "PG_VERSION").exists() and self.running():
            self._run_as_postgres(
                [postgres_bin_dir() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
                what="stopping PostgreSQL",
            )

    # ---- talking to it -------------------------------------------------------------
    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        return run_tool(
            [postgres_bin_dir() / "psql", "-w", *self._client_args(port), f"--dbname={database}", "--set=ON_ERROR_STOP=1",
             "-qAt", f"--command={sql}"],
            what="psql", env=self.client_env(),
        )

    @staticmethod
    def _client_args(port: int) -> list:
        return ["--host=127.0.0.1", f"--port={port}", f"--username={DATABASE_USER}"]

    def restore(self, port: int, database: str, dump: Path) -> None:
        run_tool(
            [postgres_bin_dir() / "pg_restore", "-w", *self._client_args(port), f"--dbname={database}", "--no-owner",
             "--exit-on-error", dump],
            what="restoring the migrated Pulp database", env=self.client_env(),
        )

    def dump(self, port: int, database: str, dump: Path) -> None:
        """pg_dump of database to dump, written whole or not at all."""
        partial = dump.with_suffix(".partial")
        run_tool(
            [postgres_bin_dir() / "pg_dump", "-w", *self._client_args(port), "-Fc", f"--file={partial}", database],
            what="pg_dump of the migrated Pulp database", env=self.client_env(),
        )
        partial.rename(dump)
