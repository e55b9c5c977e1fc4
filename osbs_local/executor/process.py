"""What the build steps share: the failure types and running a tool with its output streamed.

builder.py re-exports BuildFailure and BuildCancelled (the names the engine uses).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable, Sequence

LOG_SNIPPET_LINES = 20


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
) -> tuple[int, list[str]]:
    """Run command, passing each output line (stdout and stderr merged) to log as it comes.

    Returns (exit status, all output lines). If cancel gets set the whole process group is
    terminated and BuildCancelled raised.
    """
    if cancel is not None and cancel.is_set():
        raise BuildCancelled()
    process = subprocess.Popen(
        list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    finished = threading.Event()
    cancelled = threading.Event()

    def stop_on_cancel():
        # Woken at once when the tool exits (a 3 ms git command must not cost 0.2 s); a cancel
        # is noticed within 0.2 s.
        while not finished.wait(0.2):
            if cancel.is_set():
                cancelled.set()
                _terminate_group(process)
                return

    watcher = None
    if cancel is not None:
        watcher = threading.Thread(target=stop_on_cancel, daemon=True)
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
    if cancelled.is_set():
        raise BuildCancelled()
    return status, lines


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
    return [
        "buildah", "--storage-driver", "vfs",
        "--root", str(storage_dir / "root"), "--runroot", str(storage_dir / "runroot"),
    ]
