# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BuildConfig names derived from a git repository and branch, and what a git URI may hold."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials

MAX_NAME_LENGTH = 63
HASH_LENGTH = 8
UNKNOWN_BRANCH = "unknown"

_NOT_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")
_DASH_RUNS = re.compile(r"-{2,}")


def normalize_git_uri(git_uri):
    """The URI without surrounding space, trailing slashes or a trailing `.git`."""
    if not isinstance(git_uri, str) or not git_uri.strip():
        raise OsbsFlowError(
            "git_uri %r is empty: give the URI of the git repository to build, "
            "for example https://git.example.com/containers/app.git" % (git_uri,)
        )
    uri = git_uri.strip().rstrip("/")
    if uri.endswith(".git"):
        uri = uri[: -len(".git")].rstrip("/")
    return uri


_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git+ssh": 22, "ssh+git": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?!//)(?P<path>.*)\Z")


def repository_identity(git_uri):
    """(host, port, path) naming the repository whatever the spelling of its URI: the scheme (git://, https://,
    ssh://, scp-like `git@host:path`) and the user or credentials do not count, the host is lowercase, a port is
    kept only when it is not its scheme's default, and the path loses its trailing `/` and `.git`. The path keeps
    its case: most git servers tell `RPMS/x` from `rpms/x`."""
    uri = git_uri.strip()
    scp = None if "://" in uri else _SCP_LIKE.match(uri)
    if scp:
        host, port, path = scp.group("host"), None, scp.group("path")
    else:
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            port = None
        host, path = parts.hostname or "", parts.path
        if port == _DEFAULT_PORTS.get(parts.scheme.lower()):
            port = None
    path = path.strip("/")
    while path.endswith(".git") or path.endswith("/"):
        path = path[: -len(".git")] if path.endswith(".git") else path[:-1]
    return host.lower().rstrip("."), port, path


def git_repo_name(git_uri):
    """The last path element of the git URI (`app` for `https://host/ns/app.git/`)."""
    uri = normalize_git_uri(git_uri)
    # The host is no repository name: drop `scheme://host` or the scp-like `user@host:`.
    path = _URI_HOST.sub("", uri, count=1)
    name = re.split(r"[/:]", path)[-1]
    if not name:
        raise OsbsFlowError(
            "git_uri %r has no repository name in its path: give the URI of a repository, "
            "for example https://git.example.com/containers/app.git" % (git_uri,)
        )
    return name


_URI_HOST = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/]*|[^/:]+:(?!//))")


def git_branch_name(git_branch):
    """The branch, or `unknown` when none is given (as osbs-client did)."""
    if git_branch is None:
        return UNKNOWN_BRANCH
    branch = str(git_branch).strip()
    return branch or UNKNOWN_BRANCH


def _label_part(text):
    part = _NOT_LABEL_CHARS.sub("-", text.lower())
    return _DASH_RUNS.sub("-", part).strip("-")


def buildconfig_name(git_uri, git_branch):
    """A DNS-1123 label of at most 63 characters naming the BuildConfig of (repo, branch).

    Readable (`<repo>-<branch>-<hash>`), deterministic, and distinct for distinct
    pairs: the hash covers the normalised URI and the branch as given, so
    `feature/x` and `feature-x`, or two forks named `app`, never collide.
    """
    uri = normalize_git_uri(git_uri)
    branch = git_branch_name(git_branch)
    digest = hashlib.sha256(("%s\n%s" % (uri, branch)).encode("utf-8")).hexdigest()[:HASH_LENGTH]

    repo_part = _label_part(git_repo_name(uri)) or "repo"
    branch_part = _label_part(branch) or "branch"
    room = MAX_NAME_LENGTH - HASH_LENGTH - 2  # two dashes
    if len(repo_part) + len(branch_part) > room:
        # Share the room, giving the repo at least half when both are long.
        repo_room = max(room // 2, room - len(branch_part))
        repo_part = repo_part[:repo_room].rstrip("-") or "repo"
        branch_part = branch_part[: room - len(repo_part)].rstrip("-") or "branch"
    return "%s-%s-%s" % (repo_part, branch_part, digest)


def git_labels(git_uri, git_branch):
    """The labels osbs-client put on a BuildConfig, by which existing ones are found."""
    return {
        "git-repo-name": _label_value(git_repo_name(git_uri)),
        "git-branch": _label_value(git_branch_name(git_branch)),
    }


_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def _label_value(text):
    """A valid label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    value = _LABEL_VALUE_BAD.sub("-", text)[:63]
    return value.strip("._-")


_URI_WITH_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*@")


def check_git_uri(git_uri):
    """A git URI must not carry credentials: they would be stored on the BuildConfig and logged.

    Every step that takes a git URI checks it here, before anything is fetched or written.
    """
    if re.match(r"^https?://", git_uri, re.IGNORECASE) and _URI_WITH_USERINFO.match(git_uri):
        raise OsbsFlowError(
            "git_uri %s carries credentials, which would be stored on the BuildConfig and shown in logs: give the "
            "URI without them and put them in a source secret (git_source_secret)" % mask_credentials(git_uri)
        )


# -- the names and labels osbs-client gave BuildConfigs, so that the ones it made are found and adopted ----------------
# Each release named the BuildConfig of (repository, branch) its own way; the rules below are written from
# osbs-client's sources (osbs/build/spec.py and osbs/utils.py make_name_from_git, sanitize_strings_for_openshift,
# osbs/build/build_request.py set_label) and checked against what those releases rendered
# (tests/data/osbs-client/names.json).

OSBS_CLIENT_NAME_LIMIT = 53  # room for `-<build number>-build` in the build pod's 63 characters
OSBS_CLIENT_HASH_LENGTH = 5
_NOT_NAME_CHARS = re.compile(r"[^-a-z0-9]")
_NOT_OSBS_LABEL_CHARS = re.compile(r"[^-a-z0-9.]")
# A BuildConfig name OpenShift 4 accepts (a DNS subdomain: OAS validation.go ValidateBuildConfig); no other name
# can exist on the cluster, so no other is ever looked up.
_BUILDCONFIG_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")


def is_buildconfig_name(name):
    return bool(_BUILDCONFIG_NAME.match(name))


def humanish_repo_name(git_uri):
    """The repository name as osbs-client took it from the URI: the last path element without `.git`."""
    uri = git_uri.rstrip("/")
    for suffix in ("/.git", ".git"):
        if uri.endswith(suffix):
            uri = uri[: -len(suffix)]
            break
    return uri.rsplit("/", 1)[-1]


def _alternate(first, second, size, limit):
    """The two parts shortened as osbs-client shortened them: one character of each in turn, `size` counting up
    from what the name already holds, until it reaches `limit`."""
    kept = ([], [])
    for index in range(max(len(first), len(second))):
        for part, taken in zip((first, second), kept):
            if index < len(part):
                taken.append(part[index])
                size += 1
                if size >= limit:
                    return "".join(kept[0]), "".join(kept[1])
    return "".join(kept[0]), "".join(kept[1])


def _short_hash(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:OSBS_CLIENT_HASH_LENGTH]


def _osbs_client_0_48_sanitized(first, second, limit, allowed):
    first, second = allowed.sub("", first), allowed.sub("", second)
    first, second = _alternate(first, second, 1, min(limit, MAX_NAME_LENGTH))
    return "-".join(part for part in (first.strip("-"), second.strip("-")) if part)


def osbs_client_names(git_uri, git_branch):
    """{release: name} of the BuildConfig of (git_uri, git_branch) under each osbs-client naming rule.

    0.15: `<repo>-<branch>`, cut at 63 characters. 0.24: characters of the repo and branch taken in turn, 53 at
    most. 0.38: only [-a-z0-9] of each, taken in turn, and a hash of repo and branch. 0.48 (and later 0.x and
    1.x releases): the hash is of the URI's path and the branch.
    """
    repo = humanish_repo_name(git_uri)
    branch = git_branch_name(git_branch)
    names = {"0.15": ("%s-%s" % (repo, branch))[:MAX_NAME_LENGTH]}
    names["0.24"] = "-".join(_alternate(repo, branch, 1, OSBS_CLIENT_NAME_LIMIT))
    sanitized = _alternate(_NOT_NAME_CHARS.sub("", repo), _NOT_NAME_CHARS.sub("", branch),
                           2 + OSBS_CLIENT_HASH_LENGTH, OSBS_CLIENT_NAME_LIMIT)
    names["0.38"] = "-".join(part for part in (sanitized[0].strip("-"), sanitized[1].strip("-"), _short_hash(repo + branch)) if part)
    path = urlsplit(git_uri).path.lstrip("/")
    shortened = _osbs_client_0_48_sanitized(repo, branch, OSBS_CLIENT_NAME_LIMIT - OSBS_CLIENT_HASH_LENGTH - 1, _NOT_NAME_CHARS)
    names["0.48"] = "-".join(part for part in (shortened, _short_hash(path + branch)) if part)
    return names


def osbs_client_label_value(text):
    """A label value as osbs-client 0.48 and later wrote it: only [-a-z0-9.], 62 characters at most."""
    return _osbs_client_0_48_sanitized(text, "", MAX_NAME_LENGTH, _NOT_OSBS_LABEL_CHARS)


# A label value the server accepts; no BuildConfig carries another, and a selector with another is refused (400).
_VALID_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")


def repo_label_values(git_uri):
    """Every value the `git-repo-name` label of this repository's BuildConfig may have: osbs.flow's, osbs-client's
    before 0.48 (the name as it is) and since 0.48 (sanitized)."""
    repo = humanish_repo_name(git_uri)
    return {value for value in (_label_value(git_repo_name(git_uri)), osbs_client_label_value(repo), repo)
            if _VALID_LABEL_VALUE.match(value)}


def branch_label_values(git_branch):
    """Every value the `git-branch` label of this branch's BuildConfig may have (as repo_label_values)."""
    branch = git_branch_name(git_branch)
    return {value for value in (_label_value(branch), osbs_client_label_value(branch), branch) if _VALID_LABEL_VALUE.match(value)}
