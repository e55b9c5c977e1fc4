"""A value with a trailing newline is not valid by any grammar the collection checks.

Python's `$` also matches just before a final newline, so `^...$` accepted `<40 hex>\\n` as a commit, host names and
BuildConfig names; such a value then reached git, a URL or an object name. The patterns end with `\\Z`.
"""

from __future__ import annotations

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import check_commit, check_git_transport
from ansible_collections.osbs.flow.plugins.module_utils.naming import is_buildconfig_name
from ansible_collections.osbs.flow.plugins.module_utils.registry_uri import parse_registry_uri

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_commit_with_a_trailing_newline_is_refused():
    assert check_commit(COMMIT) == COMMIT
    with pytest.raises(OsbsFlowError):
        check_commit(COMMIT + "\n")


def test_a_git_uri_with_a_trailing_newline_is_refused():
    check_git_transport("https://git.example.com/containers/app.git")
    with pytest.raises(OsbsFlowError):
        check_git_transport("https://git.example.com\n")


def test_a_buildconfig_name_with_a_trailing_newline_is_not_a_name():
    assert is_buildconfig_name("app-main")
    assert not is_buildconfig_name("app-main\n")


def test_a_registry_uri_is_taken_without_surrounding_whitespace_and_a_newline_inside_is_refused():
    # Survey answers often end with a newline: registry_uri is stripped on purpose, and what is left is checked.
    assert parse_registry_uri("registry.example.com:5000\n").host == "registry.example.com:5000"
    with pytest.raises(OsbsFlowError):
        parse_registry_uri("registry.example.com:5000\nevil")
