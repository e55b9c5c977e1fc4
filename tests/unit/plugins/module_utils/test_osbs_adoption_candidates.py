"""Which existing BuildConfig osbs_buildconfig takes for (repository, branch), on a fake API holding BuildConfigs in
osbs-client's shapes: the `git-branch` label decides over a ref that is no commit (osbs-client 0.30+ passed any
ref), the same repository under another URL spelling is the same, another branch's BuildConfig is never taken
(0.48 sanitised labels alike), and a candidate that cannot be told apart is an error naming it, never a silent
second BuildConfig."""

from __future__ import annotations

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils import naming
from ansible_collections.osbs.flow.plugins.module_utils.naming import osbs_client_names
from ansible_collections.osbs.flow.plugins.module_utils.osbs_adoption import find_existing_buildconfig

URI = "https://git.example.com/rpms/httpd.git"


class FakeClient:
    """The two reads find_existing_buildconfig makes: a list by one label, a get by name."""

    def __init__(self, *buildconfigs):
        self.items = {bc["metadata"]["name"]: bc for bc in buildconfigs}

    def list(self, kind, namespace, label_selector):
        key, value = label_selector.split("=", 1)
        return {"items": [bc for bc in self.items.values() if bc["metadata"].get("labels", {}).get(key) == value]}

    def get(self, kind, namespace, name):
        return self.items.get(name)


def bc(name, uri, ref, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": {}}, "spec": {"source": {"git": {"uri": uri, "ref": ref}}}}


def find(client, branch, uri=URI, name=None):
    found = find_existing_buildconfig(client, "ns", {"git_uri": uri, "git_branch": branch, "name": name})
    return found and found.buildconfig["metadata"]["name"]


@pytest.mark.parametrize("ref", ["master", "a1b2c3d", "HEAD", "rhel-7"])
def test_the_git_branch_label_decides_over_any_ref(ref):
    # `osbs build -b rhel-7` (0.39) passed --git-commit's default, master, as the ref.
    legacy = bc(osbs_client_names(URI, "rhel-7")["0.38"], URI, ref, {"git-repo-name": "httpd", "git-branch": "rhel-7"})
    assert find(FakeClient(legacy), "rhel-7") == legacy["metadata"]["name"]


def test_a_labelled_buildconfig_of_another_branch_is_not_taken_whatever_its_ref():
    other = bc(osbs_client_names(URI, "rhel-8")["0.38"], URI, "rhel-7", {"git-repo-name": "httpd", "git-branch": "rhel-8"})
    assert find(FakeClient(other), "rhel-7") is None


def test_an_unlabelled_buildconfig_by_its_name_whose_ref_is_no_branch_is_an_error_before_any_write():
    legacy = bc("httpd-rhel-7", URI, "HEAD")  # 0.15's name, someone's ref
    with pytest.raises(OsbsFlowError) as error:
        find(FakeClient(legacy), "rhel-7")
    assert "httpd-rhel-7" in str(error.value) and "name=httpd-rhel-7" in str(error.value)


@pytest.mark.parametrize("spelling", [
    "git://git.example.com/rpms/httpd.git",
    "https://git.example.com/rpms/httpd",
    "https://GIT.Example.com/rpms/httpd.git/",
    "ssh://git@git.example.com/rpms/httpd.git",
    "git@git.example.com:rpms/httpd.git",
    "https://user:s3cret@git.example.com/rpms/httpd.git",
    "http://git.example.com:80/rpms/httpd.git",
])
def test_the_same_repository_under_another_spelling_is_adopted(spelling):
    labelled = bc(osbs_client_names(spelling, "rhel-8")["0.48"], spelling, "c" * 40,
                  {"git-repo-name": "httpd", "git-branch": "rhel-8", "git-full-repo": "x"})
    assert find(FakeClient(labelled), "rhel-8") == labelled["metadata"]["name"]
    unlabelled = bc("httpd-rhel-8", spelling, "rhel-8")  # 0.15: by name only
    assert find(FakeClient(unlabelled), "rhel-8") == "httpd-rhel-8"


@pytest.mark.parametrize("other", [
    "https://git.example.com/someone/httpd.git",
    "https://mirror.example.com/rpms/httpd.git",
    "https://git.example.com/rpms/httpd-tools.git",
    "https://git.example.com/RPMS/httpd.git",  # paths are case-sensitive on most servers
])
def test_another_repository_is_never_the_same(other):
    assert naming.repository_identity(other) != naming.repository_identity(URI)
    fork = bc("httpd-rhel-8", other, "rhel-8")
    assert find(FakeClient(fork), "rhel-8") is None


def test_a_repository_that_differs_only_by_port_is_an_error_naming_it():
    maybe = bc(osbs_client_names(URI, "rhel-8")["0.38"], "ssh://git@git.example.com:2222/rpms/httpd.git", "c" * 40,
               {"git-repo-name": "httpd", "git-branch": "rhel-8"})
    with pytest.raises(OsbsFlowError) as error:
        find(FakeClient(maybe), "rhel-8")
    assert maybe["metadata"]["name"] in str(error.value) and "2222" in str(error.value)


def test_no_credentials_in_the_error():
    maybe = bc("httpd-rhel-8", "https://user:s3cret@git.example.com:8443/rpms/httpd.git", "rhel-8")
    with pytest.raises(OsbsFlowError) as error:
        find(FakeClient(maybe), "rhel-8")
    assert "s3cret" not in str(error.value)


FULL = {"git-repo-name": "httpd", "git-full-repo": "httpsgit.example.comrpmshttpd.git"}  # 0.48 and later


def test_another_branchs_buildconfig_with_osbs_flows_label_form_is_not_hijacked():
    # osbs-client 0.48 of branch release-2.0; release/2.0 would have been labelled release2.0.
    other = bc(osbs_client_names(URI, "release-2.0")["0.48"], URI, "a" * 40, dict(FULL, **{"git-branch": "release-2.0"}))
    assert find(FakeClient(other), "release/2.0") is None


def test_both_sibling_branches_each_find_their_own():
    dash = bc(osbs_client_names(URI, "release-2.0")["0.48"], URI, "a" * 40, dict(FULL, **{"git-branch": "release-2.0"}))
    slash = bc(osbs_client_names(URI, "release/2.0")["0.48"], URI, "b" * 40, dict(FULL, **{"git-branch": "release2.0"}))
    plain = bc(osbs_client_names(URI, "release2.0")["0.48"], URI, "c" * 40, dict(FULL, **{"git-branch": "release2.0"}))
    client = FakeClient(dash, slash, plain)
    assert find(client, "release/2.0") == slash["metadata"]["name"]
    assert find(client, "release-2.0") == dash["metadata"]["name"]
    assert find(client, "release2.0") == plain["metadata"]["name"]


def test_a_sanitised_label_equal_to_the_branch_is_not_taken_for_another_branchs():
    # 0.48 labelled Feature_X `eature`: a run for branch `eature` must not take it.
    other = bc(osbs_client_names(URI, "Feature_X")["0.48"], URI, "b" * 40, dict(FULL, **{"git-branch": "eature"}))
    assert find(FakeClient(other), "eature") is None


def test_a_sanitised_label_without_osbs_clients_name_is_an_error_naming_it():
    renamed = bc("httpd-by-hand", URI, "b" * 40, dict(FULL, **{"git-branch": "release2.0"}))
    with pytest.raises(OsbsFlowError) as error:
        find(FakeClient(renamed), "release/2.0")
    assert "httpd-by-hand" in str(error.value) and "name=httpd-by-hand" in str(error.value)


def test_the_name_option_wins_over_labels():
    wanted = bc("wanted", URI, "main")
    other = bc("other", URI, "main", {"git-repo-name": "httpd", "git-branch": "main"})
    assert find(FakeClient(wanted, other), "main", name="wanted") == "wanted"
    assert find(FakeClient(other), "main", name="new-one") is None
