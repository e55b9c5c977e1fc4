"""osbs_source_info and RepoSource given hostile input, a server that never answers, and a shared host.

Real git, real processes: an input that git could read as an option tries to run `touch MARKER`
(through --upload-pack, a remote helper on PATH, or a config option), and the marker file proves
whether anything ran. A BuildConfig's ref and recorded commit reach RepoSource.read the same way
(the autorebuild wave), so RepoSource is given them directly too.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import RepoSource
from testlib import Engine, make_git_repo, run_module, silent_server as never_answering_server

DOCKERFILE = """\
    FROM registry.example.com/osbs/base:1
    LABEL name=osbs/app version=1.0
    """


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MARKER"


@pytest.fixture
def evil_helper(tmp_path, marker):
    """A directory with `git-remote-evil` and `git-upload-pack-evil`: git runs them only if a URI or an option asks."""
    bin_dir = tmp_path / "evil-bin"
    bin_dir.mkdir()
    for name in ("git-remote-evil", "git-upload-pack-evil"):
        script = bin_dir / name
        script.write_text("#!/bin/sh\ntouch '%s'\nexit 1\n" % marker)
        script.chmod(0o755)
    return bin_dir


@pytest.fixture
def host(tmp_path, evil_helper):
    """No engine. HOME is the test's; PATH has the evil helpers first, as a hostile URI would want."""
    home = tmp_path / "home"
    home.mkdir()
    return Engine(tmp_path / "no-engine", {"HOME": str(home), "PATH": "%s:%s" % (evil_helper, os.environ["PATH"])})


@pytest.fixture
def app(tmp_path):
    return make_git_repo(tmp_path / "app", {"Dockerfile": DOCKERFILE})


def source_info(host, **args):
    return run_module(host, "osbs_source_info", args, timeout=120)


def hostile_values(marker):
    return [
        "--upload-pack=touch %s" % marker,
        "--upload-pack=git-upload-pack-evil",
        "-u",
        "-utouch %s" % marker,
        "--config=core.sshCommand=touch %s" % marker,
        "-ccore.sshCommand=touch %s" % marker,
        "--output=%s" % marker,
        "--template=%s" % marker,
    ]


# -- git_branch, git_uri, git_commit: refused before any git runs -------------------------------------


def test_an_option_looking_branch_is_refused_and_runs_nothing(host, app, marker, tmp_path):
    uri, _ = app
    cache = tmp_path / "cache"
    for branch in hostile_values(marker):
        result = source_info(host, git_uri=uri, git_branch=branch, cache_dir=str(cache))
        assert result.get("failed") is True, (branch, result)
        assert result["msg"].startswith("git_branch %r is not a valid branch name" % branch), result["msg"]
        assert not marker.exists(), "git_branch %r ran a command" % branch
    assert not cache.exists()


@pytest.mark.parametrize("branch, why", [
    ("feature..x", "'..'"),
    ("feature/.hidden", "a component that begins with '.'"),
    ("feature.lock", "a component that ends with '.lock'"),
    ("a b", "a space"),
    ("main:refs/heads/evil", "':'"),
    ("+main", None),
    ("HEAD", "HEAD"),
    ("@", "'@'"),
    ("main@{1}", "'@{'"),
    ("main/", "'/' at the end"),
])
def test_branch_names_git_would_refuse_are_refused_with_the_rule(host, app, branch, why, tmp_path):
    uri, _ = app
    result = source_info(host, git_uri=uri, git_branch=branch, cache_dir=str(tmp_path / "cache"))
    assert result.get("failed") is True, result
    if branch == "+main":
        # `+` is a valid character of a branch name; refspecs get it only after refs/heads/, where it forces nothing.
        assert result["msg"].startswith("cannot fetch branch +main of %s" % uri), result["msg"]
        return
    assert result["msg"].startswith("git_branch %r is not a valid branch name" % branch), result["msg"]
    assert why in result["msg"]
    assert not (tmp_path / "cache").exists()


def test_a_branch_with_slashes_and_dots_is_read(host, tmp_path):
    path = tmp_path / "app"
    uri, head = make_git_repo(path, {"Dockerfile": DOCKERFILE}, branch="release/v1.2-rc")
    result = source_info(host, git_uri=uri, git_branch="release/v1.2-rc", cache_dir=str(tmp_path / "cache"))
    assert not result.get("failed"), result
    assert result["commit"] == head


def test_an_option_looking_uri_is_refused_and_runs_nothing(host, app, marker, tmp_path):
    cache = tmp_path / "cache"
    for uri in hostile_values(marker) + [
        "evil::%s" % tmp_path,
        "evil://127.0.0.1/app.git",
        "ext::sh -c touch%% %s" % marker,
        "fd::0",
        "HTTPS://127.0.0.1/app.git",
        "ssh://-oProxyCommand=touch%%20%s/app.git" % marker,
        "-oProxyCommand=touch %s:app.git" % marker,
        "git@-oProxyCommand=x:app.git",
        "https://127.0.0.1/app.git\n--upload-pack=touch %s" % marker,
        "relative/path",
    ]:
        result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
        assert result.get("failed") is True, (uri, result)
        assert result["msg"].startswith("git_uri %r is not a git URI this flow reads" % uri), (uri, result["msg"])
        assert "https://, http://, ssh://, git://, file:// or user@host:path" in result["msg"]
        assert not marker.exists(), "git_uri %r ran a command" % uri
    assert not cache.exists()


def test_an_option_looking_commit_is_refused_and_runs_nothing(host, app, marker, tmp_path):
    uri, _ = app
    for commit in hostile_values(marker):
        result = source_info(host, git_uri=uri, git_branch="main", git_commit=commit, cache_dir=str(tmp_path / "cache"))
        assert result.get("failed") is True, (commit, result)
        assert result["msg"].startswith("%r is not a full commit name (40 hexadecimal digits), given as git_commit: " % commit), \
            result["msg"]
        assert not marker.exists()


def test_option_looking_file_paths_are_plain_file_names(host, app, marker, tmp_path):
    uri, head = app
    cache = str(tmp_path / "cache")
    for value in hostile_values(marker):
        for option in ("dockerfile_path", "context_dir"):
            result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache, **{option: value})
            assert result.get("failed") is True, (option, value, result)
            assert " does not exist at commit %s of %s" % (head, uri) in result["msg"], result["msg"]
        result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache, repo_config_file=value)
        assert not result.get("failed"), (value, result)
        assert result["repo_config_present"] is False
        assert not marker.exists(), "%r ran a command" % value


# -- the autorebuild wave's way in: a BuildConfig's ref, recorded commit and repo config file -------


def test_repo_source_refuses_a_buildconfig_ref_or_commit_that_looks_like_an_option(app, marker, tmp_path, evil_helper, monkeypatch):
    uri, head = app
    monkeypatch.setenv("PATH", "%s:%s" % (evil_helper, os.environ["PATH"]))
    source = RepoSource(str(tmp_path / "cache"))
    for value in hostile_values(marker):
        with pytest.raises(OsbsFlowError) as error:
            source.read(uri, ".osbs-repo-config", branch=value)
        assert str(error.value).startswith("the branch %r is not a valid branch name" % value), str(error.value)
        with pytest.raises(OsbsFlowError) as error:
            source.read(uri, ".osbs-repo-config", commit=value, branch="main")
        assert str(error.value).startswith("%r is not a full commit name (40 hexadecimal digits), given as the commit" % value), \
            str(error.value)
        with pytest.raises(OsbsFlowError) as error:
            source.read(value, ".osbs-repo-config", branch="main")
        assert str(error.value).startswith("the git URI %r is not a git URI this flow reads" % value), str(error.value)
        # A file name is data: git is never given it where an option could be.
        assert source.read(uri, value, commit=head) == (head, None)
        assert not marker.exists(), "%r ran a command" % value
    assert source.fetches == [(uri, head)]


def test_a_relative_cache_dir_that_looks_like_an_option_is_a_directory(app, tmp_path, monkeypatch):
    # `git init --bare --template=evil/<hash>.git` would make the working directory a repository instead.
    uri, head = app
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    source = RepoSource("--template=evil")
    assert source.read(uri, "Dockerfile", branch="main")[0] == head
    assert os.listdir(work) == ["--template=evil"]
    assert [name for name in os.listdir(work / "--template=evil") if name.endswith(".git")]


# -- credentials --------------------------------------------------------------------------------------


def test_credentials_in_a_uri_are_masked_in_every_message(host, tmp_path):
    cache = tmp_path / "cache"
    for uri, shown in [
        ("ssh://builder:s3cret@127.0.0.1:1/app.git", "ssh://***@127.0.0.1:1/app.git"),
        ("https://s3cret@127.0.0.1:1/app.git", "https://***@127.0.0.1:1/app.git"),
        ("https://builder:s3cret@127.0.0.1:1/app.git", "https://***@127.0.0.1:1/app.git"),
    ]:
        result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
        assert result.get("failed") is True, result
        assert shown in result["msg"], result["msg"]
        assert "s3cret" not in str(result), result
    # The wave reads URIs from BuildConfigs, which the module never saw: RepoSource masks them too.
    with pytest.raises(OsbsFlowError) as error:
        RepoSource(str(cache), timeout=20).read("https://builder:s3cret@127.0.0.1:1/app.git", "Dockerfile", branch="main")
    assert "https://***@127.0.0.1:1/app.git" in str(error.value) and "s3cret" not in str(error.value)


# -- a server that accepts and never answers -----------------------------------------------------------


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    with never_answering_server() as server:
        yield server


def test_a_server_that_never_answers_fails_within_git_timeout_naming_it(host, silent_server, tmp_path):
    port, held = silent_server
    uri = "http://127.0.0.1:%d/app.git" % port
    started = time.monotonic()
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache"), git_timeout=3)
    took = time.monotonic() - started
    assert result.get("failed") is True, result
    assert held, "git never connected to the server"
    assert took < 30, "the module took %.0f s" % took
    assert result["msg"] == (
        "the git server 127.0.0.1:%d did not answer within 3 s while fetching branch main of %s: check that the server is up "
        "and reachable from this host, or give it longer with git_timeout" % (port, uri)
    )


def test_git_timeout_must_be_positive(host, app, tmp_path):
    uri, _ = app
    for value in (0, -5):
        result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache"), git_timeout=value)
        assert result.get("failed") is True
        assert result["msg"] == "git_timeout is %d: give a number of seconds above 0 (the default is 300)" % value


# -- the cache is private --------------------------------------------------------------------------------


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_default_cache_is_created_private(host, app):
    uri, _ = app
    old = os.umask(0o022)
    try:
        result = source_info(host, git_uri=uri, git_branch="main")
    finally:
        os.umask(old)
    assert not result.get("failed"), result
    cache = Path(host.env["HOME"]) / ".cache" / "osbs.flow" / "sources"
    assert oct(mode(cache)) == oct(0o700)


def test_an_existing_cache_readable_by_others_is_tightened(host, app, tmp_path):
    uri, _ = app
    cache = tmp_path / "shared" / "cache"
    cache.mkdir(parents=True)
    cache.chmod(0o755)
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
    assert not result.get("failed"), result
    assert oct(mode(cache)) == oct(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the cache to another user needs root")
def test_a_cache_owned_by_another_user_is_refused(host, app, tmp_path):
    uri, _ = app
    cache = tmp_path / "theirs"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
    assert result.get("failed") is True, result
    assert result["msg"] == (
        "cache_dir %s belongs to another user (uid 65534): whoever owns it can make git run commands as you; "
        "use a directory of your own" % cache
    )
    assert os.listdir(cache) == []


# -- the environment git runs with ----------------------------------------------------------------------


def test_git_gets_the_user_s_git_configuration_but_no_other_git_variable(host, app, marker, tmp_path):
    # ~/.gitconfig and the GIT_CONFIG_* variables git documents are the user's configuration (credential helpers,
    # insteadOf, proxies): they are read. Other GIT_* variables of whoever runs the play are not: GIT_TRACE would
    # print what git sends (credentials too) into the module's output, GIT_CONFIG_PARAMETERS is git's internal `-c`.
    uri, head = app
    Path(host.env["HOME"], ".gitconfig").write_text('[url "%s"]\n\tinsteadOf = https://git.example.com/app.git\n' % uri)
    trace = tmp_path / "trace"
    caller = dict(host.env, GIT_TRACE=str(trace), GIT_TRACE_CURL=str(trace),
                  GIT_CONFIG_PARAMETERS="'uploadpack.packobjectshook'='touch %s'" % marker)
    result = source_info(Engine(host.state_dir, caller), git_uri="https://git.example.com/app.git", git_branch="main",
                         cache_dir=str(tmp_path / "cache"))
    assert not result.get("failed"), result
    assert result["commit"] == head and result["git_uri"] == "https://git.example.com/app.git"
    assert not trace.exists(), "GIT_TRACE reached git"
    assert not marker.exists()
    # The same mapping given as GIT_CONFIG_COUNT/KEY/VALUE, as CI systems hand git its configuration, works too.
    Path(host.env["HOME"], ".gitconfig").write_text("")
    configured = dict(host.env, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="url.%s.insteadOf" % uri,
                      GIT_CONFIG_VALUE_0="https://git.example.com/other.git")
    result = source_info(Engine(host.state_dir, configured), git_uri="https://git.example.com/other.git",
                         git_branch="main", cache_dir=str(tmp_path / "cache-env"))
    assert not result.get("failed"), result
    assert result["commit"] == head
    # insteadOf cannot lead git to a remote helper either: only git's own transports are allowed.
    Path(host.env["HOME"], ".gitconfig").write_text('[url "evil::%s"]\n\tinsteadOf = https://git.example.com/app.git\n' % tmp_path)
    result = source_info(host, git_uri="https://git.example.com/app.git", git_branch="main", cache_dir=str(tmp_path / "cache2"))
    assert result.get("failed") is True, result
    assert "transport 'evil' not allowed" in result["msg"], result["msg"]
    assert not marker.exists(), "a remote helper ran"
