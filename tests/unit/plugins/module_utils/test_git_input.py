"""git_input: the grammar of git URIs, branch names and commit names the flow accepts, and URI masking.

Branch names are checked against git itself (`git check-ref-format --branch`), so the Python rules
cannot drift from git's.
"""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import (
    check_branch_name,
    check_commit,
    check_git_transport,
    mask_credentials,
    server_of,
    uri_secrets,
)

BRANCHES = [
    "main", "feature/x", "release/v1.2-rc", "+main", "@foo", "a@b", "ü", "{", "a{", "refs/heads/x", "a/-b", "x.y",
    "HEAD", "-x", "-", "--upload-pack=touch /tmp/x", "a b", "a..b", "a/.b", ".a", "a.lock", "a.lock/b", "a/b.lock/c",
    "a@{1}", "a/", "/a", "a//b", "a.", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "a\tb", "a\nb", "a\x7fb", "",
]
# Stricter than git on purpose: `@` alone is how git spells HEAD, never a branch anyone means.
STRICTER_THAN_GIT = {"@"}


def git_accepts_branch(name):
    return subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("name", BRANCHES + sorted(STRICTER_THAN_GIT))
def test_branch_names_are_judged_as_git_judges_them(name):
    try:
        check_branch_name(name)
        accepted = True
    except OsbsFlowError as exc:
        accepted = False
        assert str(exc).startswith("git_branch %r is not a valid branch name: " % name)
        assert str(exc).endswith("give the branch's name as git shows it, for example main or release/1.0")
    if name in STRICTER_THAN_GIT:
        assert not accepted
    else:
        assert accepted == git_accepts_branch(name), name


def test_a_branch_message_says_which_rule_and_names_the_parameter():
    with pytest.raises(OsbsFlowError) as error:
        check_branch_name("--upload-pack=touch /tmp/x", name="the branch")
    assert str(error.value) == (
        "the branch '--upload-pack=touch /tmp/x' is not a valid branch name: it begins with '-', which git would read as "
        "an option; give the branch's name as git shows it, for example main or release/1.0"
    )
    with pytest.raises(OsbsFlowError) as error:
        check_branch_name(None)
    assert str(error.value).startswith("git_branch None is not a branch name")


@pytest.mark.parametrize("uri", [
    "https://git.example.com/containers/app.git",
    "http://127.0.0.1:8080/app",
    "https://[::1]:8443/app.git",
    "ssh://git@git.example.com:2222/containers/app.git",
    "git+ssh://git.example.com/app.git",
    "git://git.example.com/app.git",
    "file:///srv/git/app.git",
    "git@github.com:containers/app.git",
    "github.com:containers/app.git",
    "https://builder:s3cret@git.example.com/app.git",  # credentials are naming.check_git_uri's to refuse, and masked
])
def test_uris_with_git_s_own_transports_are_accepted(uri):
    assert check_git_transport(uri) == uri


@pytest.mark.parametrize("uri, why", [
    ("--upload-pack=touch /tmp/x", "it begins with '-', which git would read as an option"),
    ("-u", "it begins with '-'"),
    ("ext::sh -c touch% /tmp/x", "`<name>::` makes git run the remote helper git-remote-<name>"),
    ("fd::0", "remote helper"),
    ("evil::/tmp/x", "remote helper"),
    ("evil://host/x", "git has no transport 'evil' of its own"),
    ("HTTPS://host/x", "schemes are lower case"),
    ("ssh://-oProxyCommand=x/app.git", "is not user@host:port"),
    ("ssh://-host/app.git", "'-host' is not a host name"),
    ("ssh://-user@host/app.git", "the user name is empty or begins with '-'"),
    ("ssh://user:pw@host/app.git", "it carries a password, which git does not use over ssh"),
    ("git@-oProxyCommand=x:app.git", "is not a host name"),
    ("-oProxyCommand=x:app.git", "it begins with '-'"),
    ("host:-path", "the path after the ':' is empty or begins with '-'"),
    ("user:pw@host:app.git", "carries a password"),
    ("file://host/srv/app.git", "a file:// URI names no host"),
    ("https://host", "it names no repository path after the host"),
    ("https://host/app\n--upload-pack=x", "control character"),
    ("/srv/git/app.git", "it is a local path or has no transport"),
    ("relative/app", "it is a local path"),
    ("", None),
])
def test_other_uris_are_refused_with_the_reason(uri, why):
    with pytest.raises(OsbsFlowError) as error:
        check_git_transport(uri)
    message = str(error.value)
    if why is None:
        assert message.startswith("git_uri is empty")
        return
    assert message.startswith("git_uri %r is not a git URI this flow reads: " % mask_credentials(uri)), message
    assert why in message
    assert message.endswith("give an https://, http://, ssh://, git://, file:// or user@host:path URI")
    assert "pw" not in message


def test_masking_hides_passwords_and_tokens_and_keeps_ssh_user_names():
    assert mask_credentials("https://builder:s3cret@host/app.git") == "https://***@host/app.git"
    assert mask_credentials("https://TOKEN@host/app.git") == "https://***@host/app.git"
    assert mask_credentials("ssh://git@host/app.git") == "ssh://git@host/app.git"
    assert mask_credentials("ssh://git:pw@host/app.git") == "ssh://***@host/app.git"
    assert mask_credentials("user:pw@host:app.git") == "***@host:app.git"
    assert mask_credentials("git@host:app.git") == "git@host:app.git"
    text = "fatal: unable to access 'https://a:b@host/x/': and http://t@other/y"
    assert mask_credentials(text) == "fatal: unable to access 'https://***@host/x/': and http://***@other/y"
    assert uri_secrets("https://builder:s3cret@host/app.git") == ["builder:s3cret"]
    assert uri_secrets("ssh://git:pw@host/app.git") == ["pw"]
    assert uri_secrets("ssh://git@host/app.git") == []
    assert uri_secrets("user:pw@host:app.git") == ["pw"]
    assert uri_secrets(None) == []


def test_the_server_named_in_a_timeout():
    assert server_of("http://127.0.0.1:8080/app.git") == "127.0.0.1:8080"
    assert server_of("https://builder:s3cret@git.example.com/app.git") == "git.example.com"
    assert server_of("git@github.com:containers/app.git") == "github.com"
    assert server_of("file:///srv/app.git") is None


def test_commits_are_full_names_in_lower_case():
    sha1, sha256 = "A" * 40, "b" * 64
    assert check_commit(sha1) == "a" * 40
    assert check_commit(sha256) == sha256
    for bad in ("abc1234", "g" * 40, "--upload-pack=x", "a" * 41, "", None):
        with pytest.raises(OsbsFlowError) as error:
            check_commit(bad)
        assert str(error.value).startswith("%r is not a full commit name (40 hexadecimal digits), given as git_commit: " % bad)
