"""osbs_source_info against real git repositories (file:// URIs, real git), run as Ansible runs a module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.repo_source import GitError, RepoSource
from ansible_collections.osbs.flow.plugins.module_utils.source_info import read_git_source
from testlib import COLLECTIONS, Engine, commit_files, git, make_git_repo, run_module

DOCKERFILE = """\
    FROM registry.example.com/osbs/base:1
    LABEL name=osbs/app version=1.0
    """
CONFIG = ".osbs-repo-config"


@pytest.fixture
def host(tmp_path):
    """No engine: the module talks to none. HOME is the test's, so the default cache stays inside tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    return Engine(tmp_path / "no-engine", {"HOME": str(home)})


@pytest.fixture
def app(tmp_path):
    """A repository of two commits on main; the head disables autorebuilds."""
    path = tmp_path / "app"
    uri, first = make_git_repo(path, {"Dockerfile": DOCKERFILE, CONFIG: "[autorebuild]\nenabled = true\n"})
    _, head = commit_files(path, {"Dockerfile": DOCKERFILE.replace("base:1", "base:2"), CONFIG: "[autorebuild]\nenabled = FALSE\n"})
    return path, uri, first, head


def cached_repos(cache):
    return sorted(p.name for p in cache.iterdir() if p.name.endswith(".git")) if cache.exists() else []


def source_info(host, **args):
    return run_module(host, "osbs_source_info", args)


def test_branch_head_is_read_at_one_commit_from_a_shallow_bare_repository(host, app, tmp_path):
    path, uri, _, head = app
    cache = tmp_path / "cache"
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
    assert not result.get("failed"), result
    assert result["commit"] == head == git(path, "rev-parse", "main")
    assert result["changed"] is False
    assert result["git_uri"] == uri and result["git_branch"] == "main"
    assert result["base_image"] == "registry.example.com/osbs/base:2"
    assert result["image_name"] == "osbs/app"
    assert result["labels"] == {"name": "osbs/app", "version": "1.0"}
    assert result["autorebuild_enabled"] is False and result["repo_config_present"] is True
    assert result["dockerfile"] == "Dockerfile"
    # One bare repository holding only the head: a depth-1 fetch, no checkout.
    (repo,) = cached_repos(cache)
    assert git(tmp_path, "--git-dir", str(cache / repo), "rev-parse", "--is-bare-repository") == "true"
    assert git(tmp_path, "--git-dir", str(cache / repo), "rev-list", "--count", head) == "1"


def test_the_branch_is_fetched_once_and_both_files_read_at_that_commit(app, tmp_path):
    _, uri, _, head = app
    source = RepoSource(str(tmp_path / "cache"))
    result = read_git_source(source, uri, git_branch="main")
    assert result["commit"] == head and result["autorebuild_enabled"] is False
    assert source.fetches == [(uri, "main")]
    # A commit already in the cache is read without any fetch.
    again = read_git_source(source, uri, git_commit=head)
    assert again["base_image"] == "registry.example.com/osbs/base:2"
    assert source.fetches == [(uri, "main")]


def test_an_explicit_commit_is_read_instead_of_the_branch_head(host, app, tmp_path):
    _, uri, first, _ = app
    result = source_info(host, git_uri=uri, git_branch="main", git_commit=first, cache_dir=str(tmp_path / "cache"))
    assert not result.get("failed"), result
    assert result["commit"] == first
    assert result["base_image"] == "registry.example.com/osbs/base:1"
    assert result["autorebuild_enabled"] is True
    # Without a branch too (the server hands out commits by sha); an upper-case sha is the same commit.
    alone = source_info(host, git_uri=uri, git_commit=first.upper(), cache_dir=str(tmp_path / "cache2"))
    assert alone["commit"] == first and alone["git_branch"] is None, alone


def test_a_server_refusing_a_commit_by_sha_gets_the_branch_fetched_or_a_clear_error(tmp_path):
    # Protocol v0 without uploadpack.allowAnySHA1InWant refuses a commit that is not a branch tip: a real refusal.
    path = tmp_path / "strict"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    uri, old = commit_files(path, {"Dockerfile": DOCKERFILE})
    commit_files(path, {"Dockerfile": DOCKERFILE.replace("base:1", "base:2")})
    strict = ["-c", "protocol.version=0"]

    source = RepoSource(str(tmp_path / "cache"), git_options=strict)
    result = read_git_source(source, uri, git_branch="main", git_commit=old)
    assert result["commit"] == old and result["base_image"] == "registry.example.com/osbs/base:1"
    assert [what for _, what in source.fetches] == [old, "main"]

    with pytest.raises(GitError) as error:
        read_git_source(RepoSource(str(tmp_path / "cache2"), git_options=strict), uri, git_commit=old)
    assert str(error.value).startswith("cannot fetch commit %s from %s (" % (old, uri))
    assert str(error.value).endswith("and no branch is known to fetch it from: give the branch the commit is on as well, "
                                     "so that it can be fetched from there")
    gone = "1" * 40
    with pytest.raises(GitError) as error:
        read_git_source(RepoSource(str(tmp_path / "cache3"), git_options=strict), uri, git_branch="main", git_commit=gone)
    assert str(error.value) == "commit %s is not on branch main of %s (check the commit, or give the branch it is on)" % (gone, uri)


def test_a_local_checkout_is_still_read_with_path(host, app):
    path, _, _, _ = app
    result = source_info(host, path=str(path))
    assert not result.get("failed"), result
    assert result["base_image"] == "registry.example.com/osbs/base:2"
    assert result["autorebuild_enabled"] is False
    assert result["dockerfile"] == str(path / "Dockerfile")
    assert "commit" not in result and "git_uri" not in result


def test_context_dir_dockerfile_path_build_args_and_a_followed_link(host, tmp_path):
    path = tmp_path / "tools"
    uri, head = make_git_repo(path, {
        "images/cli/Containerfile": """\
            ARG BASE_TAG=1
            FROM registry.example.com/osbs/base:${BASE_TAG} AS build
            FROM build
            LABEL name=osbs/cli
            """,
        "README": "no repo config here\n",
    })
    cache = str(tmp_path / "cache")
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache, context_dir="images/cli",
                         dockerfile_path="Containerfile", build_args={"BASE_TAG": "9.4"})
    assert not result.get("failed"), result
    assert result["commit"] == head
    assert result["dockerfile"] == "images/cli/Containerfile"
    assert result["base_image"] == "registry.example.com/osbs/base:9.4"
    assert result["image_name"] == "osbs/cli"
    assert result["repo_config_present"] is False and result["autorebuild_enabled"] is True

    # A Dockerfile that is a link inside the repository is read as the file it leads to, as in a checkout.
    (path / "Dockerfile").symlink_to("images/cli/Containerfile")
    _, linked = commit_files(path, {})
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache)
    assert result["commit"] == linked and result["image_name"] == "osbs/cli", result


def test_a_missing_dockerfile_names_the_file_the_commit_and_the_repository(host, app, tmp_path):
    _, uri, _, head = app
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache"), context_dir="images/cli")
    assert result["failed"] is True
    assert result["msg"] == (
        "images/cli/Dockerfile does not exist at commit %s of %s (the head of branch main): check dockerfile_path and "
        "context_dir, or add the Dockerfile to the repository" % (head, uri)
    )


def test_a_path_through_a_file_is_a_missing_dockerfile_and_the_next_file_still_reads(host, app, tmp_path):
    # context_dir=Dockerfile makes git answer `notdir` for Dockerfile/Dockerfile: two lines, before the repo config's answer.
    _, uri, _, head = app
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache"), context_dir="Dockerfile")
    assert result["failed"] is True
    assert result["msg"].startswith("Dockerfile/Dockerfile does not exist at commit %s of %s" % (head, uri))


def test_a_malformed_repo_config_names_the_file_the_commit_and_the_value(host, app, tmp_path):
    path, uri, _, _ = app
    _, malformed = commit_files(path, {CONFIG: "[autorebuild]\nenabled = maybe\n"})
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache"))
    assert result["failed"] is True
    assert result["msg"] == (
        ".osbs-repo-config at commit %s of %s (the head of branch main): [autorebuild] enabled has the value 'maybe', "
        "which is not a boolean (1, yes, true, on or 0, no, false, off, in any case): set it to one of those" % (malformed, uri)
    )


def test_a_dockerfile_without_name_label_and_a_directory_are_clear_errors(host, tmp_path):
    path = tmp_path / "unnamed"
    uri, head = make_git_repo(path, {"Dockerfile": "FROM registry.example.com/osbs/base:1\n", "sub/Dockerfile": DOCKERFILE})
    cache = str(tmp_path / "cache")
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache)
    assert result["failed"] is True
    assert result["msg"].startswith("Dockerfile at commit %s of %s (the head of branch main) has no 'name' label" % (head, uri))
    result = source_info(host, git_uri=uri, git_commit=head, cache_dir=cache, dockerfile_path="sub")
    assert result["msg"] == "sub at commit %s of %s is a directory, not a file: name the file itself" % (head, uri)
    result = source_info(host, git_uri=uri, git_branch="main", cache_dir=cache, context_dir="..", dockerfile_path="Dockerfile")
    assert result["msg"].startswith("context_dir and dockerfile_path: '../Dockerfile' is not a file inside the repository")


def test_check_mode_reads_and_reports_no_change(host, app, tmp_path):
    _, uri, _, head = app
    cache = tmp_path / "cache"
    result = run_module(host, "osbs_source_info", {"git_uri": uri, "git_branch": "main", "cache_dir": str(cache)}, check_mode=True)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["commit"] == head and result["autorebuild_enabled"] is False
    assert len(cached_repos(cache)) == 1


def test_a_uri_with_credentials_is_refused_before_any_fetch(host, tmp_path):
    cache = tmp_path / "cache"
    result = source_info(host, git_uri="https://builder:s3cret@git.example.com/containers/app.git", git_branch="main", cache_dir=str(cache))
    assert result["failed"] is True
    assert "git_uri https://***@git.example.com/containers/app.git carries credentials" in result["msg"]
    assert "s3cret" not in result["msg"]
    assert not cache.exists()
    # A user name alone, as ssh URIs carry, is no credential.
    result = source_info(host, git_uri="ssh://git@127.0.0.1:1/nothing.git", git_branch="main", cache_dir=str(cache))
    assert "carries credentials" not in result["msg"] and "cannot fetch branch main of ssh://git@127.0.0.1:1/nothing.git" in result["msg"]


def test_the_cache_is_reused_when_the_branch_moves_and_when_the_origin_is_gone(host, app, tmp_path):
    path, uri, first, head = app
    cache = tmp_path / "cache"
    assert source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))["commit"] == head
    _, newer = commit_files(path, {CONFIG: "[autorebuild]\nenabled = 1\n"})
    moved = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
    assert moved["commit"] == newer and moved["autorebuild_enabled"] is True
    repos = cached_repos(cache)
    assert len(repos) == 1

    # With the origin gone, a commit in the cache is still read (no fetch is needed), and a branch head cannot be.
    shutil.move(str(path), str(tmp_path / "moved-away"))
    cached = source_info(host, git_uri=uri, git_branch="main", git_commit=head, cache_dir=str(cache))
    assert not cached.get("failed"), cached
    assert cached["commit"] == head and cached["base_image"] == "registry.example.com/osbs/base:2"
    gone = source_info(host, git_uri=uri, git_branch="main", cache_dir=str(cache))
    assert gone["failed"] is True
    assert gone["msg"].startswith("cannot fetch branch main of %s: " % uri)
    assert gone["msg"].endswith("check the URI and the branch name, and that this host can read the repository (its SSH key or git credential helper)")
    # A commit that is neither cached nor fetchable names itself and the repository.
    lost = source_info(host, git_uri=uri, git_commit=first, cache_dir=str(tmp_path / "empty-cache"))
    assert lost["failed"] is True and first in lost["msg"] and uri in lost["msg"]
    assert cached_repos(cache) == repos


def test_the_default_cache_is_under_home(host, app):
    _, uri, _, head = app
    result = source_info(host, git_uri=uri, git_branch="main")
    assert result["commit"] == head, result
    assert len(cached_repos(Path(host.env["HOME"]) / ".cache" / "osbs.flow" / "sources")) == 1


@pytest.mark.slow
def test_concurrent_runs_on_two_branches_of_one_repository_each_read_their_own(host, app, tmp_path):
    # They share one bare repository and FETCH_HEAD: without taking turns one could read the other's head.
    path, uri, _, head = app
    git(path, "checkout", "-q", "-b", "other")
    _, other = commit_files(path, {"Dockerfile": DOCKERFILE.replace("base:1", "base:other")})
    cache = str(tmp_path / "cache")
    results = {}

    def run(index, branch):
        results[index] = (branch, source_info(host, git_uri=uri, git_branch=branch, cache_dir=cache))

    threads = [threading.Thread(target=run, args=(index, ("main", "other")[index % 2])) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {"main": head, "other": other}
    assert {index: result.get("commit") for index, (_, result) in results.items()} == \
        {index: expected[branch] for index, (branch, _) in results.items()}


def test_arguments_that_do_not_fit_together(host, app, tmp_path):
    path, uri, _, _ = app
    both = source_info(host, path=str(path), git_uri=uri, git_branch="main")
    assert both["failed"] is True and "mutually exclusive: path|git_uri" in both["msg"]
    neither = source_info(host)
    assert neither["failed"] is True and "one of the following is required: path, git_uri" in neither["msg"]
    branch_only = source_info(host, path=str(path), git_branch="main")
    assert branch_only["failed"] is True and "missing parameter(s) required by 'git_branch': git_uri" in branch_only["msg"]
    no_ref = source_info(host, git_uri=uri, cache_dir=str(tmp_path / "cache"))
    assert no_ref["msg"] == "reading %s needs git_branch (its head is read) or git_commit: give one of them" % uri
    short = source_info(host, git_uri=uri, git_commit="abc1234", cache_dir=str(tmp_path / "cache"))
    assert short["msg"].startswith("'abc1234' is not a full commit name (40 hexadecimal digits)")


def test_the_module_file_imports_nothing_heavy():
    # The point of folding the checkout into this module is its start-up time: the OpenShift client must stay out.
    code = ("import sys\n"
            "import ansible_collections.osbs.flow.plugins.modules.osbs_source_info\n"
            "print(any(name.startswith(('kubernetes', 'ansible_collections.kubernetes')) for name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)))
    assert done.stdout.strip() == "False"
