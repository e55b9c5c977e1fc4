"""osbs_buildconfig and osbs_build where the cluster fills in the secrets (docs/openshift-fidelity.md B2, B3, C4).

Without `registry_secret` the build pushes with the builder ServiceAccount's secret, which the build
controller writes into the Build's `spec.output.pushSecret`; a base image whose registry needs a secret
linked to builder gets `dockerStrategy.pullSecret` at instantiate. osbs_build's reuse check must see
those Builds as made from the BuildConfig: a second run starts nothing. And Builds pruned by the history
limits are simply gone: a reuse that needs one starts a new build.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from testlib import make_git_repo, own_namespace, run_module

pytestmark = pytest.mark.slow


def kubectl(engine, namespace, *args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", engine.kubeconfig, "-n", namespace, *args],
                          input=stdin, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def namespace(osbs_engine):
    with own_namespace(osbs_engine, "cfs") as name:
        yield name


def managed_secret(engine, namespace):
    sa = json.loads(kubectl(engine, namespace, "get", "sa", "builder", "-o", "json"))
    return sa["metadata"]["annotations"]["openshift.io/internal-registry-pull-secret-ref"]


def builds_of(engine, namespace, name):
    listed = json.loads(kubectl(engine, namespace, "get", "builds", "-l", "openshift.io/build-config.name=%s" % name, "-o", "json"))
    return sorted(listed["items"], key=lambda b: int(b["metadata"]["annotations"]["openshift.io/build.number"]))


def ensure_and_build(engine, namespace, base, uri, commit, image):
    bc_args = dict(namespace=namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base,
                   image=image, registry_uri=engine.registry)  # no registry_secret
    bc = run_module(engine, "osbs_buildconfig", bc_args)
    assert bc.get("failed") is not True, bc.get("msg")
    assert "pushSecret" not in bc["buildconfig"]["spec"]["output"]
    return bc["name"], run_module(engine, "osbs_build", dict(namespace=namespace, buildconfig=bc["name"], git_commit=commit))


def test_a_second_run_without_registry_secret_starts_no_build(osbs_engine, busybox_base, namespace, tmp_path):
    uri, commit = make_git_repo(tmp_path / "app", {"Dockerfile": "FROM %s\nRUN echo built > /built\n" % busybox_base})
    name, first = ensure_and_build(osbs_engine, namespace, busybox_base, uri, commit, "%s/app" % namespace)
    assert first.get("failed") is not True, first.get("msg")
    assert (first["changed"], first["action"], first["phase"]) == (True, "started", "Complete")
    [build] = builds_of(osbs_engine, namespace, name)
    assert build["spec"]["output"]["pushSecret"] == {"name": managed_secret(osbs_engine, namespace)}

    writes = osbs_engine.writes()
    _, second = ensure_and_build(osbs_engine, namespace, busybox_base, uri, commit, "%s/app" % namespace)
    assert (second["changed"], second["action"], second["name"]) == (False, "existing", first["name"])
    assert osbs_engine.writes() == writes
    assert len(builds_of(osbs_engine, namespace, name)) == 1


def test_a_second_run_with_a_pull_secret_linked_to_builder_starts_no_build(osbs_engine, busybox_base, namespace, tmp_path):
    # The same registry under another name: builder's managed secret has no credentials for it.
    other_host = "localhost:%s" % osbs_engine.registry.rsplit(":", 1)[1]
    base = busybox_base.replace(osbs_engine.registry, other_host, 1)
    # Builds trust that name's certificate as they trust the registry's (a cluster's additionalTrustedCA).
    certs = osbs_engine.state_dir / "certs.d"
    (certs / other_host).mkdir(exist_ok=True)
    shutil.copy(certs / osbs_engine.registry / "ca.crt", certs / other_host / "ca.crt")
    credentials = json.loads(base64.b64decode(json.loads(kubectl(
        osbs_engine, "osbs", "get", "secret", osbs_engine.registry_secret, "-o", "json"))["data"][".dockercfg"]))
    dockercfg = {other_host: {"auth": credentials[osbs_engine.registry]["auth"]}}
    kubectl(osbs_engine, namespace, "create", "--validate=false", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "base-pull"}, "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": base64.b64encode(json.dumps(dockercfg).encode()).decode()}}))
    uri, commit = make_git_repo(tmp_path / "pulled", {"Dockerfile": "FROM %s\nRUN echo built > /built\n" % base})

    # Not linked: the build pod gets builder's first docker secret, which cannot pull from that registry.
    name, unlinked = ensure_and_build(osbs_engine, namespace, base, uri, commit, "%s/pulled" % namespace)
    assert unlinked.get("failed") is True and unlinked["build"]["reason"] == "PullBuilderImageFailed", unlinked
    assert "unauthorized" in unlinked["msg"].lower(), unlinked["msg"]
    assert "pullSecret" not in builds_of(osbs_engine, namespace, name)[-1]["spec"]["strategy"]["dockerStrategy"]

    # `oc secrets link builder base-pull`: instantiate now names it as the Build's pull secret.
    sa = json.loads(kubectl(osbs_engine, namespace, "get", "sa", "builder", "-o", "json"))
    sa["secrets"].append({"name": "base-pull"})
    kubectl(osbs_engine, namespace, "replace", "--validate=false", "-f", "-", stdin=json.dumps(sa))
    _, first = ensure_and_build(osbs_engine, namespace, base, uri, commit, "%s/pulled" % namespace)
    assert first.get("failed") is not True, first.get("msg")
    assert (first["changed"], first["action"], first["phase"]) == (True, "started", "Complete")
    built = builds_of(osbs_engine, namespace, name)[-1]
    assert built["spec"]["strategy"]["dockerStrategy"]["pullSecret"] == {"name": "base-pull"}

    _, second = ensure_and_build(osbs_engine, namespace, base, uri, commit, "%s/pulled" % namespace)
    assert (second["changed"], second["action"], second["name"]) == (False, "existing", first["name"])


def test_a_reuse_whose_build_was_pruned_starts_a_new_build(osbs_engine, busybox_base, namespace, tmp_path):
    path = tmp_path / "pruned"
    uri, first_commit = make_git_repo(path, {"Dockerfile": "FROM %s\nRUN echo one > /built\n" % busybox_base})
    name, first = ensure_and_build(osbs_engine, namespace, busybox_base, uri, first_commit, "%s/pruned" % namespace)
    assert first["action"] == "started" and first["phase"] == "Complete", first
    kubectl(osbs_engine, namespace, "patch", "bc", name, "--type=merge", "-p", '{"spec": {"successfulBuildsHistoryLimit": 1}}')
    _, second_commit = make_git_repo(path, {"Dockerfile": "FROM %s\nRUN echo two > /built\n" % busybox_base})
    _, second = ensure_and_build(osbs_engine, namespace, busybox_base, uri, second_commit, "%s/pruned" % namespace)
    assert second["action"] == "started" and second["phase"] == "Complete", second
    assert [b["metadata"]["name"] for b in builds_of(osbs_engine, namespace, name)] == [second["name"]], "the first was pruned"

    again = run_module(osbs_engine, "osbs_build", dict(namespace=namespace, buildconfig=name, git_commit=first_commit))
    assert again.get("failed") is not True, again.get("msg")
    assert (again["changed"], again["action"], again["git_commit"]) == (True, "started", first_commit)
