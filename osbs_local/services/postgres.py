"""The private PostgreSQL cluster of one state directory's Pulp: where it lives, initdb, start, stop, psql,
and the pg_dump/pg_restore of a migrated database.  As root, every tool runs as the postgres user."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .pulp_install import PulpStartError, run_tool
from .registry import pid_alive

DATABASE_USER = "postgres"
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
        if subprocess.run(self.as_postgres(["test", "-x", str(self.pulp_dir)]), cwd="/").returncode == 0:
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

    def _run_as_postgres(self, cmd: list, what: str) -> str:
        return run_tool(self.as_postgres(cmd), what=what, cwd="/")

    def running(self) -> bool:
        done = subprocess.run(
            self.as_postgres([str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            cwd="/",
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
            probe = subprocess.run(self.as_postgres(["test", "-w", str(self.dir)]), cwd="/")
            if probe.returncode != 0:
                raise PulpStartError(
                    f"PostgreSQL runs as the user {DATABASE_USER!r}, who cannot reach {self.dir}: "
                    "make its parent directories traversable (chmod o+x) or use another state directory"
                )
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)  # an initdb that did not finish
            self._run_as_postgres(
                [bin_dir / "initdb", "-D", self.data, "--auth=trust", "-U", DATABASE_USER, "--no-sync",
                 "-E", "UTF8", "--locale=C"],
                what="initdb",
            )
        if self.running():
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

    def stop(self) -> None:
        if (self.data / "PG_VERSION").exists() and self.running():
            self._run_as_postgres(
                [postgres_bin_dir() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
                what="stopping PostgreSQL",
            )

    # ---- talking to it -------------------------------------------------------------
    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        return run_tool(
            [postgres_bin_dir() / "psql", "-h", "127.0.0.1", "-p", port, "-U", DATABASE_USER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            what="psql",
        )

    @staticmethod
    def _client_args(port: int) -> list:
        return ["-h", "127.0.0.1", "-p", str(port), "-U", DATABASE_USER]

    def restore(self, port: int, database: str, dump: Path) -> None:
        run_tool(
            [postgres_bin_dir() / "pg_restore", *self._client_args(port), "-d", database, "--no-owner",
             "--exit-on-error", dump],
            what="restoring the migrated Pulp database",
        )

    def dump(self, port: int, database: str, dump: Path) -> None:
        """pg_dump of database to dump, written whole or not at all."""
        partial = dump.with_suffix(".partial")
        run_tool(
            [postgres_bin_dir() / "pg_dump", *self._client_args(port), "-Fc", "-f", partial, database],
            what="pg_dump of the migrated Pulp database",
        )
        partial.rename(dump)
