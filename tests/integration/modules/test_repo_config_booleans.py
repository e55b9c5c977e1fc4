"""`.osbs-repo-config` read from a real git repository by osbs_source_info as osbs-client and atomic-reactor read it:
configparser's getboolean values (yes/no/on/off too), true by default, and a clear error for anything else."""

from __future__ import annotations

import pytest

from testlib import Engine, commit_files, make_git_repo, run_module

CONFIG = ".osbs-repo-config"
DOCKERFILE = "FROM registry.example.com/osbs/base:1\nLABEL name=osbs/booleans\n"


@pytest.fixture
def host(tmp_path):
    """No engine: osbs_source_info talks to none. HOME is the test's, so nothing is cached outside tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    return Engine(tmp_path / "no-engine", {"HOME": str(home)})


def test_every_getboolean_value_is_read_and_anything_else_names_file_key_and_value(host, tmp_path):
    path = tmp_path / "booleans"
    uri, commit = make_git_repo(path, {"Dockerfile": DOCKERFILE})
    cache = str(tmp_path / "cache")
    seen = {}
    seen[None] = run_module(host, "osbs_source_info", dict(git_uri=uri, git_commit=commit, cache_dir=cache))
    for value in ("yes", "On", "no", "OFF", "1", "False"):
        _, commit = commit_files(path, {CONFIG: "[autorebuild]\nenabled = %s\n" % value})
        seen[value] = run_module(host, "osbs_source_info", dict(git_uri=uri, git_commit=commit, cache_dir=cache))
    assert {value: (r.get("msg") or r["autorebuild_enabled"]) for value, r in seen.items()} == {
        None: True, "yes": True, "On": True, "no": False, "OFF": False, "1": True, "False": False}
    assert seen[None]["repo_config_present"] is False and seen["yes"]["repo_config_present"] is True

    _, maybe = commit_files(path, {CONFIG: "[autorebuild]\nenabled = maybe\n"})
    result = run_module(host, "osbs_source_info", dict(git_uri=uri, git_commit=maybe, cache_dir=cache))
    assert result["failed"] is True
    assert result["msg"] == (
        ".osbs-repo-config at commit %s of %s: [autorebuild] enabled has the value 'maybe', which is not a boolean "
        "(1, yes, true, on or 0, no, false, off, in any case): set it to one of those" % (maybe, uri))
