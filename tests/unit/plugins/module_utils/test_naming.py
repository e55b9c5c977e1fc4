import re

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.naming import (
    buildconfig_name,
    git_labels,
    git_repo_name,
)

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("https://git.example.com/containers/app.git", "app"),
        ("https://git.example.com/containers/app.git/", "app"),
        ("https://git.example.com/containers/app/", "app"),
        ("https://git.example.com/containers/app", "app"),
        ("git@git.example.com:containers/app.git", "app"),
        ("file:///srv/git/Base_Image.git", "Base_Image"),
        ("  https://h/x/tool.git  ", "tool"),
    ],
)
def test_git_repo_name(uri, expected):
    assert git_repo_name(uri) == expected


EMPTY = "is empty: give the URI of the git repository to build, for example https://git.example.com/containers/app.git"
NO_NAME = "has no repository name in its path: give the URI of a repository, for example https://git.example.com/containers/app.git"


@pytest.mark.parametrize(
    "uri, message",
    [
        ("", "git_uri '' " + EMPTY),
        (None, "git_uri None " + EMPTY),
        ("/", "git_uri '/' " + NO_NAME),
        ("https://git.example.com", "git_uri 'https://git.example.com' " + NO_NAME),
        ("https://h/.git", "git_uri 'https://h/.git' " + NO_NAME),
    ],
)
def test_git_uri_errors(uri, message):
    with pytest.raises(OsbsFlowError) as exc:
        git_repo_name(uri)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "uri, branch, expected_prefix",
    [
        ("https://git.example.com/containers/app.git", "main", "app-main-"),
        ("https://git.example.com/containers/app", "main", "app-main-"),
        ("https://git.example.com/containers/App_Image.git", "Release/1.0", "app-image-release-1-0-"),
        ("https://git.example.com/containers/app.git", "", "app-unknown-"),
        ("https://git.example.com/containers/app.git", None, "app-unknown-"),
        ("https://git.example.com/containers/app.git", "--weird--", "app-weird-"),
    ],
)
def test_buildconfig_name_readable(uri, branch, expected_prefix):
    name = buildconfig_name(uri, branch)
    assert name.startswith(expected_prefix)
    assert re.match(r"^[0-9a-f]{8}$", name[len(expected_prefix):])
    assert DNS_1123_LABEL.match(name) and len(name) <= 63


def test_buildconfig_name_deterministic_and_uri_forms_agree():
    assert buildconfig_name("https://h/ns/app.git", "main") == buildconfig_name("https://h/ns/app/", "main")
    assert buildconfig_name("https://h/ns/app.git", "main") == "app-main-" + buildconfig_name("https://h/ns/app", "main")[-8:]


@pytest.mark.parametrize(
    "first, second",
    [
        (("https://h/ns/app.git", "feature/x"), ("https://h/ns/app.git", "feature-x")),
        (("https://h/one/app.git", "main"), ("https://h/two/app.git", "main")),
        (("https://h/ns/app.git", ""), ("https://h/ns/app.git", "unknown-")),
        (("https://h/ns/a-b.git", "c"), ("https://h/ns/a.git", "b-c")),
        (("https://h/ns/" + "r" * 80, "b" * 80 + "1"), ("https://h/ns/" + "r" * 80, "b" * 80 + "2")),
    ],
)
def test_buildconfig_name_distinct_pairs_never_collide(first, second):
    assert buildconfig_name(*first) != buildconfig_name(*second)


@pytest.mark.parametrize(
    "repo_len, branch_len",
    [(80, 3), (3, 80), (80, 80), (60, 60), (27, 26), (1, 1)],
)
def test_buildconfig_name_long_parts_fit_and_stay_readable(repo_len, branch_len):
    name = buildconfig_name("https://h/ns/" + "r" * repo_len, "b" * branch_len)
    assert len(name) <= 63
    assert DNS_1123_LABEL.match(name)
    assert name.startswith("r")
    assert "-b" in name  # the branch is still visible


def test_buildconfig_name_rejects_empty_uri():
    with pytest.raises(OsbsFlowError, match="^git_uri '' is empty"):
        buildconfig_name("", "main")


@pytest.mark.parametrize(
    "uri, branch, expected",
    [
        ("https://h/ns/app.git", "main", {"git-repo-name": "app", "git-branch": "main"}),
        ("https://h/ns/app.git", "", {"git-repo-name": "app", "git-branch": "unknown"}),
        ("https://h/ns/app.git", "feature/x", {"git-repo-name": "app", "git-branch": "feature-x"}),
    ],
)
def test_git_labels(uri, branch, expected):
    assert git_labels(uri, branch) == expected
