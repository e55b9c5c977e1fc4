"""Fetching a build's git source the way OpenShift's git-clone step does, but shallow when it can.

fetch_source(uri, ref, commit, dest, ...) makes dest a checkout of `commit` (when given) or of
`ref` (a branch or tag; the remote HEAD when empty) and returns the source revision OpenShift
records: {"commit", "author": {name, email}, "committer": {name, email}, "message"}.

A source secret (the BuildConfig's spec.source.sourceSecret) is used as OpenShift's builder uses
it: `username`/`password` for HTTP(S), `ssh-privatekey` (with `known_hosts` if given) for SSH,
`ca.crt` to trust an HTTPS server. Its files live in a private directory next to the checkout
for the fetch only; the password reaches git through a credential helper that reads it from the
environment, scoped to the source's own server, never through a command line or the log.

The URI, the ref and the commit come from whoever may write a BuildConfig, and OpenShift's API server does not
validate the ref: none of them reaches git where it could be read as an option, a refspec or a remote helper.
The URI is checked against the transports git speaks itself and comes after `--`; the ref is never given to git
at all: it is looked up, as plain text, in the server's `git ls-remote` listing (git's own order: exact name,
refs/NAME, refs/tags/NAME, refs/heads/NAME), and the full ref name found there is fetched; a commit must be
hexadecimal. The listing is also the source check OpenShift's builder makes before it clones (checkSourceURI):
it has a timeout, and a server that does not answer fails the build with a message that names it.
"""
from __future__ import annotations

import base64
import re
import shlex
import shutil
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from ..services.environment import PROXY_VARIABLES, child_environment
from .process import BuildFailure, ToolTimedOut, run_streaming

_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")
_SHA_LIKE = re.compile(r"^[0-9a-f]{7,64}$")  # OpenShift lets source.git.ref name a commit too
_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)

# How long the source check (`git ls-remote`) waits for the server; config.json's git_timeout_seconds sets it.
DEFAULT_GIT_TIMEOUT = 60
# A fetch may move a large repository; it ends when the server sends less than LOW_SPEED_BYTES per second for the
# git timeout (HTTP) or stops answering keepalives (SSH), and after FETCH_TIMEOUT in any case.
FETCH_TIMEOUT = 1800
LOW_SPEED_BYTES = 1000

# Transports git speaks itself; any other `<name>://` or `<name>::` would make git run git-remote-<name>.
GIT_TRANSPORTS = ("https", "http", "ssh", "git+ssh", "ssh+git", "git", "file")
_SCHEME_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]*)@)?(?P<host>[^/:]+):(?P<path>.*)\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A ref name as a server lists it; it must not be readable as an option or as a src:dst refspec.
_LISTED_REF = re.compile(r"^(?:HEAD|refs/[^\s:\\^~?*\[]+)\Z")


def uri_problem(uri: str) -> str | None:
    """Why git must not be given `uri`, or None. Accepted, as OpenShift's builder accepts them: scheme://
    URIs of git's own transports, user@host:path, and absolute local paths."""
    if uri.startswith("-"):
        return "it begins with '-', which git would read as an option"
    if _CONTROL.search(uri):
        return "it contains a control character"
    if _REMOTE_HELPER.match(uri):
        return "`<name>::` makes git run the remote helper git-remote-<name>"
    match = _SCHEME_URI.match(uri)
    if match:
        if match.group("scheme").lower() not in GIT_TRANSPORTS:
            return f"git has no transport {match.group('scheme')!r} of its own (it would run git-remote-{match.group('scheme')})"
        user, _, host = match.group("authority").rpartition("@")
        if user.startswith("-") or host.startswith("-"):
            return "its user or host begins with '-', which ssh would read as an option"
        return None
    if uri.startswith("/"):
        return None
    scp = _SCP_LIKE.match(uri)
    if scp:
        if any((scp.group(part) or "").startswith("-") for part in ("user", "host", "path")):
            return "its user, host or path begins with '-', which ssh or git would read as an option"
        return None
    return "it is neither scheme://host/path, user@host:path nor an absolute path"


def server_of(uri: str) -> str:
    """What git talks to for `uri`: host[:port], or the path of a local repository."""
    match = _SCHEME_URI.match(uri)
    if match and match.group("scheme").lower() != "file":
        return match.group("authority").rpartition("@")[2]
    scp = _SCP_LIKE.match(uri)
    if not match and scp and not uri.startswith("/"):
        return scp.group("host")
    return redact_url(uri)


def redact_url(text: str) -> str:
    """Hide user:password@ in URLs (a git URI may carry a token)."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", text)


def _ssh_options(timeout: float) -> list[str]:
    return ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}", "-o", f"ServerAliveInterval={max(int(timeout) // 3, 1)}",
            "-o", "ServerAliveCountMax=3"]


def _git_env(timeout: float = DEFAULT_GIT_TIMEOUT) -> dict:
    """git's environment, built on purpose: no GIT_* of the engine's caller (GIT_SSH_COMMAND, GIT_CONFIG_PARAMETERS,
    GIT_DIR...) except GIT_CONFIG_GLOBAL, which only says where the engine user's own ~/.gitconfig is."""
    # Never wait for a password prompt: a build has no terminal.
    return child_environment(*PROXY_VARIABLES, "GIT_CONFIG_GLOBAL", GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false",
                             SSH_ASKPASS="/bin/false", GIT_SSH_COMMAND=" ".join(["ssh", *_ssh_options(timeout)]), LC_ALL="C")


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

    def __init__(self, uri: str, data: dict, directory: Path, timeout: float = DEFAULT_GIT_TIMEOUT):
        self.directory, self.env, self.options, self.timeout = directory, {}, [], timeout
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
            ssh = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", *_ssh_options(self.timeout)]
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
    def __init__(self, dest: Path, log: Callable[[str], None], cancel: threading.Event | None, auth: _SourceAuth,
                 timeout: float):
        self.dest, self.log, self.cancel, self.timeout = dest, log, cancel, timeout
        self.env = dict(_git_env(timeout), **auth.env)
        # After credential.helper= , which empties the list of helpers first. The ext transport runs any command
        # the URI names: never, whatever the engine user's git configuration allows (a submodule's URL included).
        self.options = ["-c", "credential.helper=", *auth.options, "-c", "protocol.ext.allow=never",
                        "-c", f"http.lowSpeedLimit={LOW_SPEED_BYTES}", "-c", f"http.lowSpeedTime={int(timeout)}"]

    def __call__(self, *args: str, quiet: bool = False, timeout: float | None = FETCH_TIMEOUT) -> tuple[int, list[str]]:
        output: list[str] = []
        sink = output.append if quiet else self.log
        status, lines = run_streaming(["git", *self.options, *args], log=sink, cancel=self.cancel,
                                      cwd=self.dest, env=self.env, redact=redact_url, timeout=timeout)
        return status, lines


def fetch_source(uri: str, ref: str | None, commit: str | None, dest: Path, *,
                 log: Callable[[str], None], cancel: threading.Event | None = None, source_secret: dict | None = None,
                 timeout: float = DEFAULT_GIT_TIMEOUT) -> dict:
    """`source_secret`: the Secret object the build's spec.source.sourceSecret names, or None. `timeout`: seconds
    the source check waits for the git server (and a fetch for its next bytes)."""
    if not uri:
        raise BuildFailure("FetchSourceFailed", "the build has no spec.source.git.uri to fetch")
    problem = uri_problem(uri)
    if problem:
        raise BuildFailure("FetchSourceFailed", f"{redact_url(uri)!r} is not a git URI the builder reads: {problem}; give "
                           "an https://, http://, ssh://, git:// or file:// URI, user@host:path or an absolute path")
    if commit and not _SHA_LIKE.match(commit):
        raise BuildFailure("FetchSourceFailed", f"spec.revision.git.commit {commit!r} is not a commit name (7 to 64 "
                           "hexadecimal digits)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    auth = _SourceAuth(uri, secret_data(source_secret), dest.parent / (dest.name + "-auth"), timeout)
    try:
        return _fetch(uri, ref, commit, dest, _Git(dest, log, cancel, auth, timeout), log)
    except ToolTimedOut as timed_out:
        raise _server_silent(uri, timed_out, "fetching") from None
    finally:
        auth.remove()


def _server_silent(uri: str, timed_out: ToolTimedOut, doing: str) -> BuildFailure:
    return BuildFailure("FetchSourceFailed", f"the git server {server_of(uri)} did not answer within {timed_out.seconds:g} s "
                        f"({doing} {redact_url(uri)}); check that the server is up and reachable from this machine",
                        "\n".join(timed_out.lines[-20:]))


def _listed_refs(lines: list[str]) -> dict[str, str]:
    refs = {}
    for line in lines:
        sha, _, name = line.partition("\t")
        if _SHA_LIKE.match(sha) and _LISTED_REF.match(name):
            refs[name] = sha
    return refs


def _listed_ref(ref: str, refs: dict[str, str]) -> str | None:
    """The full name of the listed ref that `ref` names, in git's own order of lookup (rev-parse's DWIM), or None."""
    for candidate in (ref, f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}", f"refs/remotes/{ref}",
                      f"refs/remotes/{ref}/HEAD"):
        if candidate in refs:
            return candidate
    return None


def _fetch(uri: str, ref: str | None, commit: str | None, dest: Path, git: _Git, log: Callable[[str], None]) -> dict:
    shown_uri = redact_url(uri)
    wanted = commit or ref or "HEAD"
    log(f"Cloning {shown_uri} at {wanted} ...")
    git("init", "--quiet", quiet=True)
    git("remote", "add", "--", "origin", uri, quiet=True)

    # OpenShift's checkSourceURI: the server must answer a listing within the timeout before anything is fetched.
    try:
        status, listing = git("ls-remote", "--", "origin", quiet=True, timeout=git.timeout)
    except ToolTimedOut as timed_out:
        raise _server_silent(uri, timed_out, "listing the refs of") from None
    if status != 0:
        _fail_fetch(shown_uri, wanted, listing)
    refs = _listed_refs(listing)
    if not commit:
        listed = _listed_ref(ref, refs) if ref else "HEAD"
        if listed is None and not _SHA_LIKE.match(wanted):
            raise BuildFailure("FetchSourceFailed", f"{ref} was not found in the git repository {shown_uri} (no branch, tag "
                               "or other ref has that name and it is not a commit name); check spec.source.git.ref")
        if listed is not None:
            wanted = listed
    by_commit = bool(_SHA_LIKE.match(wanted))
    status, lines = git("fetch", "--depth=1", "--no-tags", "--", "origin", wanted)
    if status != 0 and by_commit:
        if _unreachable(lines):
            _fail_fetch(shown_uri, wanted, lines)
        # Servers refuse a shallow fetch of a commit that is no branch tip (and any abbreviated
        # sha): fetch the branches and tags in full, then look for it.
        log(f"Shallow fetch of commit {wanted} refused; fetching the whole repository")
        status, lines = git("fetch", "--quiet", "--", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
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

    status, lines = git("checkout", "--quiet", "--detach", target, "--", quiet=True)
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
