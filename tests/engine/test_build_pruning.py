"""Build pruning as OpenShift's build controller does it (docs/openshift-fidelity.md C4): on every
transition to a terminal phase, including builds cancelled before they started, the newest
successfulBuildsHistoryLimit / failedBuildsHistoryLimit builds of the BuildConfig stay and older ones go."""

from __future__ import annotations

import pytest

from testlib import silent_server, wait_for

BUILD_API = "/apis/build.openshift.io/v1"


@pytest.fixture
def silent_git_server():
    """A git server that accepts every connection and never answers: a build fetching from it stays Running."""
    with silent_server() as (port, _held):
        yield f"127.0.0.1:{port}"


def test_builds_cancelled_before_they_start_are_pruned_too(engine, http, namespace, make_bc, silent_git_server):
    builds_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds"
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    bc = make_bc("pruned", source={"git": {"uri": f"http://{silent_git_server}/app.git", "ref": "main"}},
                 failedBuildsHistoryLimit=1, successfulBuildsHistoryLimit=1)
    assert http.post(bc_url, json=bc).status_code == 201
    for _ in range(3):
        assert http.post(f"{bc_url}/pruned/instantiate", json={"metadata": {"name": "pruned"}}).status_code == 201

    def phase(name):
        response = http.get(f"{builds_url}/{name}")
        return response.json()["status"]["phase"] if response.status_code == 200 else None

    def names():
        listed = http.get(builds_url, params={"labelSelector": "openshift.io/build-config.name=pruned"}).json()
        return sorted(b["metadata"]["name"] for b in listed["items"])

    def cancel(name):
        response = http.patch(f"{builds_url}/{name}", json={"status": {"cancelled": True}},
                              headers={"Content-Type": "application/merge-patch+json"})
        assert response.status_code == 200, response.text

    wait_for(lambda: phase("pruned-1") == "Running")  # Serial: 2 and 3 wait New behind it
    assert (phase("pruned-2"), phase("pruned-3")) == ("New", "New")
    cancel("pruned-2")
    wait_for(lambda: phase("pruned-2") == "Cancelled")
    cancel("pruned-3")
    # pruned-3 is cancelled before it started, and that prunes the older cancelled build.
    wait_for(lambda: phase("pruned-3") == "Cancelled")
    wait_for(lambda: names() == ["pruned-1", "pruned-3"])
    cancel("pruned-1")
    # The oldest by creation time goes, though it was the last to end.
    wait_for(lambda: names() == ["pruned-3"])
