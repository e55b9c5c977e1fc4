"""Local git repositories to build from: what the tests and the benchmarks give osbs-local as a source."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path


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
