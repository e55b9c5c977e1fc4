"""Fetching a build's git source the way OpenShift's git-clone step does, but shallow when it can.

fetch_source(uri, ref, commit, dest, ...) makes dest a checkout of `commit` (when given) or of
`ref` (a branch or tag; the remote HEAD when empty) and returns the source revision OpenShift
records: {"commit", "author": {name, email}, "committer": {name, email}, "message"}.

A source secret (the BuildConfig's spec.source.sourceSecret) is used as OpenShift's builder uses
it: `username`/`password` for HTTP(S), `ssh-privatekey` (with `known_hosts` if given) for SSH,
`ca.crt` to trust an HTTPS server. Its files live in a private directory next to the checkout
for the fetch only; the password reaches git through a credential helper that reads it from the
environment, scoped to the source's own server, never through a command line or the log.
"""
from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from .process import BuildFailure, run_streaming

_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SHA_LIKE = re.compile(r"^[0-9a-f]{7,64}$")  # OpenShift lets source.git.ref name a commit too
_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


def redact_url(text: str) -> str:
    """Hide user:password@ in URLs (a git URI may carry a token)."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", text)


def _git_env() -> dict:
    env = dict(os.environ)
    # Never wait for a password prompt: a build has no terminal.
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false",
               GIT_SSH_COMMAND="ssh -o BatchMode=yes", LC_ALL="C")
    return env


# A credential helper (git runs it through sh) that answers from the environment, so the password is in no file
# and no command line; it is configured for the source's own scheme://host only, so a submodule or a redirect to
# another server is never handed these credentials.
_CREDENTIAL_HELPER = ('!f() { test "$1" = get || exit 0; echo "username=$OSBS_LOCAL_GIT_USERNAME"; '
                      'echo "password=$OSBS_LOCAL_GIT_PASSWORD"; }; f')


def secret_data(secret: dict | None) -> dict:
    """A Secret's data decoded to text (stringData wins, as the API server merges it)."""
    if not secret:
        return {}
    data = {key: base64.b64decode(value or "").decode("utf-8", "replace") for key, value in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


class _SourceAuth:
    """git options and environment for a source secret, with its files in `directory` (0700).

    `remove()` deletes the files; the constructor does too when it fails half-way.
    """

    def __init__(self, uri: str, data: dict, directory: Path):
        self.directory, self.env, self.options = directory, {}, []
        if not data:
            return
        try:
            self._configure(uri, data)
        except BaseException:
            self.remove()
            raise

    def _configure(self, uri: str, data: dict) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        parts = urlsplit(uri)
        if (data.get("username") or data.get("password")) and parts.scheme in ("http", "https") and parts.hostname:
            # A token alone is a password; git still wants a user name.
            self.env.update(OSBS_LOCAL_GIT_USERNAME=data.get("username") or "token", OSBS_LOCAL_GIT_PASSWORD=data.get("password") or "")
            netloc = parts.netloc.rpartition("@")[2]
            self.options = ["-c", f"credential.{parts.scheme}://{netloc}.helper={_CREDENTIAL_HELPER}"]
        if data.get("ssh-privatekey"):
            key = self._write("ssh-privatekey", data["ssh-privatekey"].rstrip("\n") + "\n", 0o600)
            ssh = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
            if data.get("known_hosts"):
                known = self._write("known_hosts", data["known_hosts"], 0o600)
                ssh += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
            else:
                ssh += ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
            self.env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(word) for word in ssh)  # run by a shell
        if data.get("ca.crt"):
            # The variable, not http.sslCAInfo: a GIT_SSL_CAINFO in the engine's environment would win over the option.
            self.env["GIT_SSL_CAINFO"] = str(self._write("ca.crt", data["ca.crt"], 0o600))

    def _write(self, name: str, content: str, mode: int) -> Path:
        path = self.directory / name
        path.write_text(content)
        path.chmod(mode)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class _Git:
    def __init__(self, dest: Path, log: Callable[[str], None], cancel: threading.Event | None, auth: _SourceAuth):
        self.dest, self.log, self.cancel = dest, log, cancel
        self.env = dict(_git_env(), **auth.env)
        self.options = auth.options  # after credential.helper= below, which empties the list of helpers first

    def __call__(self, *args: str, quiet: bool = False) -> tuple[int, list[str]]:
        output: list[str] = []
        sink = output.append if quiet else self.log
        status, lines = run_streaming(["git", "-c", "credential.helper=", *self.options, *args], log=sink, cancel=self.cancel,
                                      cwd=self.dest, env=self.env, redact=redact_url)
        return status, lines


def fetch_source(uri: str, ref: str | None, commit: str | None, dest: Path, *,
                 log: Callable[[str], None], cancel: threading.Event | None = None, source_secret: dict | None = None) -> dict:
    """`source_secret`: the Secret object the build's spec.source.sourceSecret names, or None."""
    if not uri:
        raise BuildFailure("FetchSourceFailed", "the build has no spec.source.git.uri to fetch")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    auth = _SourceAuth(uri, secret_data(source_secret), dest.parent / (dest.name + "-auth"))
    try:
        return _fetch(uri, ref, commit, dest, _Git(dest, log, cancel, auth), log)
    finally:
        auth.remove()


def _fetch(uri: str, ref: str | None, commit: str | None, dest: Path, git: _Git, log: Callable[[str], None]) -> dict:
    shown_uri = redact_url(uri)
    wanted = commit or ref or "HEAD"
    log(f"Cloning {shown_uri} at {wanted} ...")
    git("init", "--quiet", quiet=True)
    git("remote", "add", "origin", uri, quiet=True)

    by_commit = bool(commit) or bool(_SHA_LIKE.match(wanted))
    status, lines = git("fetch", "--depth", "1", "--no-tags", "origin", wanted)
    if status != 0 and by_commit:
        if _unreachable(lines):
            _fail_fetch(shown_uri, wanted, lines)
        # Servers refuse a shallow fetch of a commit that is no branch tip (and any abbreviated
        # sha): fetch the branches and tags in full, then look for it.
        log(f"Shallow fetch of commit {wanted} refused; fetching the whole repository")
        status, lines = git("fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
        if status != 0:
            _fail_fetch(shown_uri, wanted, lines)
        found, _ = git("rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", quiet=True)
        if found != 0:
            raise BuildFailure(
                "FetchSourceFailed",
                f"commit {wanted} was not found in {shown_uri} (on any branch or tag); check the revision",
                "\n".join(lines[-20:]),
            )
        target = wanted
    elif status != 0:
        _fail_fetch(shown_uri, wanted, lines)
    else:
        target = "FETCH_HEAD"

    status, lines = git("checkout", "--quiet", "--detach", target, quiet=True)
    if status != 0:
        raise BuildFailure("FetchSourceFailed", f"cannot check out {wanted} of {shown_uri}: {' '.join(lines[-3:])}",
                           "\n".join(lines[-20:]))
    if (dest / ".gitmodules").exists():
        log("Updating submodules ...")
        status, lines = git("submodule", "update", "--init", "--recursive")
        if status != 0:
            detail = next((line for line in lines if line.startswith("fatal:")), lines[-1] if lines else "")
            raise BuildFailure("FetchSourceFailed", f"cannot fetch the submodules of {shown_uri}: {detail}",
                               "\n".join(lines[-20:]))
    _, info = git("log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%s", quiet=True)
    sha, author, author_email, committer, committer_email, subject = (info[0].split("\x00") + [""] * 6)[:6]
    if commit and _FULL_SHA.match(commit.lower()) and sha != commit.lower():
        raise BuildFailure("FetchSourceFailed", f"fetched {sha} but commit {commit} was asked for from {shown_uri}")
    log(f"Commit {sha}: {subject} ({author} <{author_email}>)")
    return {
        "commit": sha,
        "author": {"name": author, "email": author_email},
        "committer": {"name": committer, "email": committer_email},
        "message": subject,
    }


def _unreachable(lines: list[str]) -> bool:
    text = "\n".join(lines).lower()
    return any(marker in text for marker in (
        "does not appear to be a git repository", "could not read from remote repository", "repository not found",
        "could not resolve host", "connection refused", "failed to connect", "authentication failed",
        "terminal prompts disabled", "unable to access",
    ))


def _asked_for_credentials(lines: list[str]) -> bool:
    text = "\n".join(lines).lower()
    return any(marker in text for marker in ("authentication failed", "terminal prompts disabled", "could not read username",
                                             "could not read password", "permission denied (publickey"))


def _fail_fetch(shown_uri: str, wanted: str, lines: list[str]) -> None:
    # git's first fatal line names the cause ("... does not appear to be a git repository"); later ones are generic.
    detail = next((line for line in lines if line.startswith("fatal:")), lines[-1] if lines else "")
    if _asked_for_credentials(lines):
        message = (f"cannot read the git repository {shown_uri}: {detail}; the server wants credentials: give the "
                   "BuildConfig a source secret (spec.source.sourceSecret) with username and password, or ssh-privatekey, "
                   "or check the one it names")
    elif _unreachable(lines):
        message = f"cannot read the git repository {shown_uri}: {detail}; check the URI and that the repository is reachable"
    else:
        message = f"{wanted} was not found in the git repository {shown_uri}: {detail}; check the ref or commit"
    raise BuildFailure("FetchSourceFailed", message, "\n".join(lines[-20:]))


def context_directory(checkout: Path, context_dir: str | None) -> Path:
    """The build context inside the checkout; InvalidContextDirectory when it is missing or escapes."""
    checkout = Path(checkout).resolve()
    if not context_dir or context_dir.strip("/") in ("", "."):
        return checkout
    candidate = (checkout / context_dir.lstrip("/")).resolve()
    if candidate != checkout and checkout not in candidate.parents:
        raise BuildFailure("InvalidContextDirectory", f"contextDir {context_dir!r} points outside the repository")
    if not candidate.is_dir():
        raise BuildFailure("InvalidContextDirectory",
                           f"contextDir {context_dir!r} does not exist in the repository (or is not a directory)")
    return candidate
