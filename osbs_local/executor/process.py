"""What the build steps share: the failure types and running a tool with its output streamed.

Every tool of a build runs in a process group of its own. While the engine records process groups
(record_process_groups_in, called by `serve`), each group is also written down in that directory until the
tool has ended, so that the next engine ends the groups of a dead engine's builds (end_recorded_process_groups)
rather than leave them running: a `kill -9` of the engine gives its threads no chance to do it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from ..services.environment import PROXY_VARIABLES, child_environment

LOG_SNIPPET_LINES = 20
GROUP_STOP_TIMEOUT = 5.0
_recorded_groups_dir: Path | None = None


class BuildFailure(Exception):
    """A build failed; reason is an OpenShift build status reason, message says why in plain words."""

    def __init__(self, reason: str, message: str, log_snippet: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.log_snippet = log_snippet

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class BuildCancelled(Exception):
    """The build was cancelled (the cancel event was set); any running tool was stopped."""


class ToolTimedOut(Exception):
    """A tool ran longer than its timeout and was stopped; lines is what it printed."""

    def __init__(self, command: Sequence[str], seconds: float, lines: list[str]):
        super().__init__(f"{command[0]} did not finish within {seconds:g} s")
        self.seconds, self.lines = seconds, lines


def builder_environment(**settings: str) -> dict:
    """What the build tools (git, buildah) start with: a built environment, the machine's proxies and, for a rootless
    engine, its runtime directory; no REGISTRY_AUTH_FILE, CONTAINERS_* or BUILDAH_* of the engine's caller."""
    return child_environment(*PROXY_VARIABLES, "XDG_RUNTIME_DIR", **settings)


class LogTail:
    """Keeps the last lines written to the build log, for a failure's log snippet."""

    def __init__(self, log: Callable[[str], None], size: int = LOG_SNIPPET_LINES):
        self._log = log
        self._lines: list[str] = []
        self._size = size

    def __call__(self, line: str) -> None:
        self._lines.append(line)
        del self._lines[:-self._size]
        self._log(line)

    def snippet(self) -> str:
        return "\n".join(self._lines)


def run_streaming(
    command: Sequence[str],
    *,
    log: Callable[[str], None],
    cancel: threading.Event | None = None,
    cwd: Path | None = None,
    env: dict | None = None,
    redact: Callable[[str], str] = lambda line: line,
    timeout: float | None = None,
) -> tuple[int, list[str]]:
    """Run command, passing each output line (stdout and stderr merged) to log as it comes.

    Returns (exit status, all output lines). If cancel gets set the whole process group is
    terminated and BuildCancelled raised; after `timeout` seconds it is terminated and ToolTimedOut raised.
    `env` defaults to builder_environment(), never the engine's own.
    """
    if cancel is not None and cancel.is_set():
        raise BuildCancelled()
    process = subprocess.Popen(
        list(command), cwd=cwd, env=builder_environment() if env is None else env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    record = _record_group(process.pid)
    finished = threading.Event()
    cancelled = threading.Event()
    timed_out = threading.Event()
    deadline = time.monotonic() + timeout if timeout is not None else None

    def stop_on_cancel_or_timeout():
        # Woken at once when the tool exits (a 3 ms git command must not cost 0.2 s); a cancel
        # is noticed within 0.2 s.
        while not finished.wait(0.2):
            if cancel is not None and cancel.is_set():
                cancelled.set()
            elif deadline is not None and time.monotonic() > deadline:
                timed_out.set()
            else:
                continue
            _terminate_group(process)
            return

    watcher = None
    if cancel is not None or deadline is not None:
        watcher = threading.Thread(target=stop_on_cancel_or_timeout, daemon=True)
        watcher.start()
    lines: list[str] = []
    try:
        for raw in process.stdout:
            line = redact(raw.decode(errors="replace").rstrip("\r\n"))
            lines.append(line)
            log(line)
        status = process.wait()
    finally:
        finished.set()
        if process.poll() is None:
            _terminate_group(process)
        process.stdout.close()
        if watcher is not None:
            watcher.join()
        if record is not None:
            record.unlink(missing_ok=True)
    if cancelled.is_set():
        raise BuildCancelled()
    if timed_out.is_set():
        raise ToolTimedOut(command, timeout, lines)
    return status, lines


# -- process groups of a dead engine ---------------------------------------------------------------
def record_process_groups_in(directory: Path) -> None:
    """From now on, write down each tool's process group in directory (the engine's, 0700) while it runs."""
    global _recorded_groups_dir
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _recorded_groups_dir = directory


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, ... (field 22 of stat is index 19)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _record_group(pid: int) -> Path | None:
    if _recorded_groups_dir is None:
        return None
    fields = _stat_fields(pid)
    record = _recorded_groups_dir / str(pid)
    # The leader's start time and the boot tell this group from a later one that got the same number.
    record.write_text(f"{_boot_id()} {fields[19] if fields else ''}\n")
    return record


def _processes() -> dict[int, list[str]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z":
                table[int(entry.name)] = fields
    return table


def _group_and_descendants(group: int, table: dict[int, list[str]]) -> dict[int, str]:
    """pid -> start time of every process in the group and every descendant of one (a tool may start a session
    of its own below itself, as a container runtime does)."""
    members = {pid for pid, fields in table.items() if int(fields[2]) == group}
    grew = True
    while grew:
        children = {pid for pid, fields in table.items() if int(fields[1]) in members} - members
        members |= children
        grew = bool(children)
    return {pid: table[pid][19] for pid in members}


def end_recorded_process_groups(directory: Path) -> int:
    """End the tools that an engine which died left running (their groups recorded in directory); returns how many
    processes were ended. Call it before this engine records groups of its own."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    boot = _boot_id()
    doomed: dict[int, str] = {}
    table = _processes()
    for record in directory.iterdir():
        try:
            recorded_boot, _, leader_start = record.read_text().split("\n")[0].partition(" ")
            group = int(record.name)
        except (OSError, ValueError):
            record.unlink(missing_ok=True)
            continue
        leader = table.get(group)
        # The group is the recorded one if its leader still runs with the recorded start time, or if the leader is gone
        # and processes remain in the group (a group number is not reused while any process is in the group).
        if recorded_boot == boot and ((leader is not None and leader[19] == leader_start) or
                                      (leader is None and any(int(fields[2]) == group for fields in table.values()))):
            doomed.update(_group_and_descendants(group, table))
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid, start in doomed.items():
            fields = _stat_fields(pid)
            if fields and fields[19] == start and fields[0] != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal_number)
        deadline = time.monotonic() + GROUP_STOP_TIMEOUT
        while time.monotonic() < deadline and any(_still_runs(pid, start) for pid, start in doomed.items()):
            time.sleep(0.1)
    for record in directory.iterdir():
        record.unlink(missing_ok=True)
    return len(doomed)


def _still_runs(pid: int, start: str) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[19] == start and fields[0] != "Z"


def _terminate_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def buildah_command(storage_dir: Path) -> list[str]:
    """buildah with the engine's own vfs storage (vfs and chroot isolation work without privileges
    beyond root and without overlay support; the STORAGE_DRIVER variable is not honoured, so flags)."""
    storage_dir = Path(storage_dir)
    return ["buildah", "--storage-driver=vfs", f"--root={storage_dir / 'root'}", f"--runroot={storage_dir / 'runroot'}"]
