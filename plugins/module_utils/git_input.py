# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the flow accepts as a git URI, a branch name and a commit name, and how a URI is shown.

These values come from surveys, webhooks and other people's BuildConfigs, and end up on git's
command line: each is checked by its own grammar before git runs, so that none is ever read as
an option (`--upload-pack=...`), a refspec (`main:refs/heads/x`) or a remote helper (`ext::...`).
The checks are pure Python, so check mode and the tests need no git.
"""

from __future__ import annotations

import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

# Transports git speaks itself. Any other `<name>://` or `<name>::` makes git run git-remote-<name>.
GIT_TRANSPORTS = ("https", "http", "ssh", "git", "file")
_SSH_ALIASES = ("git+ssh", "ssh+git")
TRANSPORTS_TEXT = "https://, http://, ssh://, git://, file:// or user@host:path"

_SCHEME_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>.*)\Z")
# userinfo@host:port; host is a name, an IPv4 address or a bracketed IPv6 address.
_AUTHORITY = re.compile(r"^(?:(?P<userinfo>[^@]*)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.~%-]*)(?::(?P<port>[0-9]*))?\Z")
# scp-like: [user@]host:path, with no '/' before the ':' (git's own rule for telling it from a local path).
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]*)@)?(?P<host>\[[^\]/]*\]|[^:/]*):(?P<path>.*)\Z")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\Z|^\[[0-9A-Fa-f:.]+\]\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")

FULL_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")


def _is_ssh(scheme):
    return scheme in ("ssh",) + _SSH_ALIASES


def mask_credentials(text):
    """`text` with the user info of every URI in it shown as `***`, except an ssh user name alone.

    An https user alone is often a token (https://TOKEN@host/...), so it is masked; `ssh://git@host`
    names an account, not a secret, and stays readable.
    """
    if not isinstance(text, str):
        return text

    def shown(match):
        scheme = match.group("scheme")[:-3].lower()
        if _is_ssh(scheme) and ":" not in match.group("userinfo"):
            return match.group(0)
        return match.group("scheme") + "***@"

    text = _USERINFO_IN_TEXT.sub(shown, text)
    # scp-like user:password@host:path (git would pass the password to ssh as part of the user name).
    return re.sub(r"^[^@/:\s]+:[^@/\s]*@(?=[^/:\s]+:)", "***@", text)


def mask_credentials_in(value):
    """`value` (a module result: dicts, lists, text) with mask_credentials applied to every text in it."""
    if isinstance(value, dict):
        return {key: mask_credentials_in(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_credentials_in(item) for item in value]
    return mask_credentials(value)


def uri_secrets(uri):
    """The parts of `uri` that mask_credentials hides, for a module's no_log_values (its echoed arguments too)."""
    if not isinstance(uri, str):
        return []
    secrets = []
    for match in _USERINFO_IN_TEXT.finditer(uri):
        userinfo = match.group("userinfo")
        if _is_ssh(match.group("scheme")[:-3].lower()):
            userinfo = userinfo.partition(":")[2]
        secrets.append(userinfo)
    scp = re.match(r"^[^@/:\s]+:([^@/\s]*)@", uri)
    if scp:
        secrets.append(scp.group(1))
    return [secret for secret in secrets if secret]


def _refuse_uri(uri, name, why):
    raise OsbsFlowError(
        "%s %r is not a git URI this flow reads: %s; give an %s URI" % (name, mask_credentials(uri), why, TRANSPORTS_TEXT)
    )


def check_git_transport(uri, name="git_uri"):
    """`uri` if git reads it with a transport of its own and no part of it can be taken for an option.

    Accepted: scheme://[user@]host[:port]/path for https, http, ssh (and git+ssh), git; file:///path;
    and scp-like [user@]host:path. Refused: anything else, in particular `<helper>::address` and
    `<helper>://...` (git would run git-remote-<helper>), a host or user that begins with `-` (ssh would
    read it as an option), control characters, and local paths (write them as file:///path).
    `name` says where the value came from, for the message.
    """
    if not isinstance(uri, str) or not uri:
        raise OsbsFlowError("%s is empty: give the URI of the git repository, for example https://git.example.com/containers/app.git"
                            % name)
    if uri.startswith("-"):
        _refuse_uri(uri, name, "it begins with '-', which git would read as an option")
    if _CONTROL.search(uri):
        _refuse_uri(uri, name, "it contains a control character (a line break or a tab)")
    if _REMOTE_HELPER.match(uri):
        _refuse_uri(uri, name, "`<name>::` makes git run the remote helper git-remote-<name>")
    match = _SCHEME_URI.match(uri)
    if match:
        scheme = match.group("scheme")
        if scheme not in GIT_TRANSPORTS + _SSH_ALIASES:
            _refuse_uri(uri, name, "git has no transport %r of its own (it would run the remote helper git-remote-%s; "
                                   "schemes are lower case)" % (scheme, scheme))
        authority = _AUTHORITY.match(match.group("authority"))
        if not authority:
            _refuse_uri(uri, name, "%r is not user@host:port" % mask_credentials(match.group("authority")))
        host, userinfo = authority.group("host"), authority.group("userinfo")
        if scheme == "file":
            if host or userinfo is not None or authority.group("port") is not None:
                _refuse_uri(uri, name, "a file:// URI names no host (file:///path/to/repository)")
        else:
            if not host or not _HOST_NAME.match(host):
                _refuse_uri(uri, name, "%r is not a host name" % host)
            if userinfo is not None and (not userinfo or userinfo.startswith("-")):
                _refuse_uri(uri, name, "the user name is empty or begins with '-'")
            if userinfo and ":" in userinfo and not scheme.startswith("http"):
                _refuse_uri(uri, name, "it carries a password, which git does not use over %s (use an SSH key)" % scheme)
        if not match.group("path").startswith("/") or match.group("path") == "/":
            _refuse_uri(uri, name, "it names no repository path after the host")
        return uri
    if "://" in uri:
        _refuse_uri(uri, name, "%r is not a scheme" % uri.split("://", 1)[0])
    scp = _SCP_LIKE.match(uri)
    if scp:
        if not _HOST_NAME.match(scp.group("host")):
            _refuse_uri(uri, name, "%r is not a host name" % scp.group("host"))
        user = scp.group("user")
        if user is not None and (not user or user.startswith("-") or ":" in user):
            _refuse_uri(uri, name, "the user name is empty, begins with '-' or carries a password")
        if not scp.group("path") or scp.group("path").startswith("-"):
            _refuse_uri(uri, name, "the path after the ':' is empty or begins with '-'")
        return uri
    _refuse_uri(uri, name, "it is a local path or has no transport (a local repository is file:///path/to/repository)")


def server_of(uri):
    """The host[:port] git talks to for `uri` (checked by check_git_transport), or None for file://."""
    match = _SCHEME_URI.match(uri)
    if match:
        authority = _AUTHORITY.match(match.group("authority"))
        if match.group("scheme") == "file" or not authority:
            return None
        port = authority.group("port")
        return authority.group("host") + (":%s" % port if port else "")
    scp = _SCP_LIKE.match(uri)
    return scp.group("host") if scp else None


# -- branch names, by git's check_refname_format (refs.c) for refs/heads/<name> ---------------------

_REF_FORBIDDEN = {" ": "a space", "~": "'~'", "^": "'^'", ":": "':'", "?": "'?'", "*": "'*'", "[": "'['", "\\": "'\\'"}


def _branch_problem(branch):
    if not branch:
        return "it is empty"
    if branch.startswith("-"):
        return "it begins with '-', which git would read as an option"
    if branch == "HEAD":
        return "HEAD names whatever is checked out, not a branch"
    if branch == "@":
        return "it is '@', which git reads as HEAD"
    for char in branch:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return "it contains the control character %r" % char
        if char in _REF_FORBIDDEN:
            return "it contains %s" % _REF_FORBIDDEN[char]
    if ".." in branch:
        return "it contains '..'"
    if "@{" in branch:
        return "it contains '@{'"
    if branch.startswith("/"):
        return "it has '/' at the start"
    if branch.endswith("/"):
        return "it has '/' at the end"
    if "//" in branch:
        return "it contains '//'"
    if branch.endswith("."):
        return "it ends with '.'"
    for component in branch.split("/"):
        if component.startswith("."):
            return "it has a component that begins with '.'"
        if component.endswith(".lock"):
            return "it has a component that ends with '.lock'"
    return None


def check_branch_name(branch, name="git_branch"):
    """`branch` if git accepts it as a branch name (`git check-ref-format --branch`), else OsbsFlowError.

    The rules are git's for refs/heads/<branch>: no '..', no control character, space or any of ~^:?*[\\,
    no '@{', no empty component, none beginning with '.' or ending with '.lock', no '.' at the end; and,
    as `--branch` adds, no '-' at the start and not HEAD.
    """
    if not isinstance(branch, str):
        raise OsbsFlowError("%s %r is not a branch name: give the branch as text, for example main" % (name, branch))
    problem = _branch_problem(branch)
    if problem:
        raise OsbsFlowError(
            "%s %r is not a valid branch name: %s; give the branch's name as git shows it, for example main or release/1.0"
            % (name, branch, problem)
        )
    return branch


def check_commit(commit, name="git_commit"):
    """`commit` in lower case if it is a full commit name (40 hexadecimal digits, 64 for SHA-256), else OsbsFlowError."""
    text = commit.lower() if isinstance(commit, str) else commit
    if not isinstance(text, str) or not FULL_COMMIT.match(text):
        # A server hands out commits by their full name only; a short one would cost a whole branch fetch.
        raise OsbsFlowError(
            "%r is not a full commit name (40 hexadecimal digits), given as %s: give the whole sha (64 digits in a "
            "SHA-256 repository), as git rev-parse prints it" % (commit, name)
        )
    return text
