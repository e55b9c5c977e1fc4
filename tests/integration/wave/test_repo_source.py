"""Reading a dependent's .osbs-repo-config from its real git repository (file:// URIs, real git)."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import GitError, RepoSource
from testlib import commit_files, git, make_git_repo

CONFIG = ".osbs-repo-config"


@pytest.fixture
def repo(tmp_path):
    """A repository whose config changes: enabled, then disabled, then malformed, then gone."""
    path = tmp_path / "repo"
    uri, enabled = make_git_repo(path, {"Dockerfile": "FROM scratch\n", CONFIG: "[autorebuild]\nenabled = 1\n"})
    _, disabled = commit_files(path, {CONFIG: "[autorebuild]\nenabled = FALSE\n"})
    _, malformed = commit_files(path, {CONFIG: "[autorebuild]\nenabled = maybe\n"})
    _, absent = commit_files(path, {CONFIG: None})
    return path, uri, {"enabled": enabled, "disabled": disabled, "malformed": malformed, "absent": absent}


def test_reads_the_file_at_each_commit_with_one_shallow_fetch_each(repo, tmp_path):
    _, uri, commits = repo
    source = RepoSource(str(tmp_path / "cache"))
    assert source.read_repo_config(uri, CONFIG, commit=commits["enabled"]) == (commits["enabled"], {"autorebuild_enabled": True})
    assert source.read_repo_config(uri, CONFIG, commit=commits["disabled"]) == (commits["disabled"], {"autorebuild_enabled": False})
    assert source.read(uri, CONFIG, commit=commits["absent"]) == (commits["absent"], None)
    assert source.read_repo_config(uri, CONFIG, commit=commits["absent"])[1] == {"autorebuild_enabled": True}
    with pytest.raises(OsbsFlowError) as error:
        source.read_repo_config(uri, CONFIG, commit=commits["malformed"])
    message = str(error.value)
    assert message == (".osbs-repo-config: [autorebuild] enabled has the value 'maybe', which is not a boolean "
                       "(1, yes, true, on or 0, no, false, off, in any case): set it to one of those (commit %s of %s)" % (commits["malformed"][:12], uri))
    assert [what for _, what in source.fetches] == [commits[k] for k in ("enabled", "disabled", "absent", "malformed")]
    # Shallow: the cache holds the four commits fetched, not the history behind them.
    cache = source._repo_dir(uri)
    assert git(tmp_path, "--git-dir", cache, "rev-list", "--count", commits["absent"]) == "1"


def test_the_cache_fetches_once_for_many_concurrent_readers(repo, tmp_path):
    _, uri, commits = repo
    source = RepoSource(str(tmp_path / "cache"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(source.read(uri, CONFIG, commit=commits["disabled"])))
               for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12 and len(set(results)) == 1
    assert len(source.fetches) == 1


def test_the_branch_head_when_asked(repo, tmp_path):
    path, uri, commits = repo
    source = RepoSource(str(tmp_path / "cache"))
    assert source.read(uri, CONFIG, branch="main") == (commits["absent"], None)
    _, newest = commit_files(path, {CONFIG: "[autorebuild]\nenabled = 0\n"})
    # A new RepoSource is a new run: it sees the new head.
    assert RepoSource(str(tmp_path / "cache")).read_repo_config(uri, CONFIG, branch="main") == (newest, {"autorebuild_enabled": False})


def test_a_server_refusing_a_sha_gets_the_branch_fetched(tmp_path):
    # Protocol v0 without uploadpack.allowAnySHA1InWant refuses a commit that is not a branch tip: a real refusal.
    path = tmp_path / "strict"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    uri, old = commit_files(path, {CONFIG: "[autorebuild]\nenabled = false\n"})
    commit_files(path, {"README": "newer\n"})
    source = RepoSource(str(tmp_path / "cache"), git_options=["-c", "protocol.version=0"])
    assert source.read_repo_config(uri, CONFIG, commit=old, branch="main") == (old, {"autorebuild_enabled": False})
    assert [what for _, what in source.fetches] == [old, "main"]

    without_branch = RepoSource(str(tmp_path / "cache2"), git_options=["-c", "protocol.version=0"])
    with pytest.raises(GitError) as error:
        without_branch.read(uri, CONFIG, commit=old)
    assert old in str(error.value) and "no branch is known" in str(error.value)


def test_a_commit_the_repository_lost_and_a_missing_repository_are_clear_errors(repo, tmp_path):
    _, uri, _ = repo
    source = RepoSource(str(tmp_path / "cache"))
    gone = "1" * 40
    with pytest.raises(GitError) as error:
        source.read(uri, CONFIG, commit=gone, branch="main")
    assert gone in str(error.value) and "not on branch main" in str(error.value)
    with pytest.raises(GitError) as error:
        source.read("file://%s/nothing-here" % tmp_path, CONFIG, commit=gone, branch="main")
    assert "nothing-here" in str(error.value)
