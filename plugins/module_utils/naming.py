# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BuildConfig names derived from a git repository and branch, and what a git URI may hold."""

from __future__ import annotations

import hashlib
import re

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
