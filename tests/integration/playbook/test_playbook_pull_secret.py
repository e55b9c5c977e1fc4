"""The build playbook where the base image needs a pull secret linked to the builder ServiceAccount (fidelity B3).

On OpenShift, `oc secrets link builder base-pull` is how a team lets builds pull a base image from a registry
that needs credentials: instantiate names that secret in the Build's `dockerStrategy.pullSecret` (OAS
buildgenerator generator.go, the secret matching the base image's registry). The playbook does not name it, so a
rerun must not take that filled-in field for another recipe: it starts no build and writes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pytest

from testlib import make_git_repo, own_namespace, run_playbook

pytestmark = pytest.mark.slow


def kubectl(engine, namespace, *args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", engine.kubeconfig, "-n", namespace, *args],
                          input=stdin, capture_output=True, text=True, check=True).stdout


def recap(output):
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


@pytest.fixture
def namespace(osbs_engine):
    with own_namespace(osbs_engine, "pbpull") as name:
        yield name


def test_a_rerun_with_a_pull_secret_linked_to_builder_starts_no_build(osbs_engine, busybox_base, namespace, tmp_path):
    # The same registry under another name: builder's own secret has no credentials for it.
    other_host = "localhost:%s" % osbs_engine.registry.rsplit(":", 1)[1]
    base = busybox_base.replace(osbs_engine.registry, other_host, 1)
    certs = osbs_engine.state_dir / "certs.d"  # trusted as the registry is (a cluster's additionalTrustedCA)
    (certs / other_host).mkdir(exist_ok=True)
    shutil.copy(certs / osbs_engine.registry / "ca.crt", certs / other_host / "ca.crt")
    credentials = json.loads(base64.b64decode(json.loads(kubectl(
        osbs_engine, "osbs", "get", "secret", osbs_engine.registry_secret, "-o", "json"))["data"][".dockercfg"]))
    dockercfg = {other_host: {"auth": credentials[osbs_engine.registry]["auth"]}}
    kubectl(osbs_engine, namespace, "create", "--validate=false", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "base-pull"}, "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": base64.b64encode(json.dumps(dockercfg).encode()).decode()}}))
    sa = json.loads(kubectl(osbs_engine, namespace, "get", "sa", "builder", "-o", "json"))
    sa["secrets"].append({"name": "base-pull"})  # oc secrets link builder base-pull
    kubectl(osbs_engine, namespace, "replace", "--validate=false", "-f", "-", stdin=json.dumps(sa))

    uri, _ = make_git_repo(tmp_path / "pb-pulled", {
        "Dockerfile": "FROM %s\nRUN echo built > /built\nLABEL name=%s/pb-pulled\n" % (base, namespace)})
    flow = {"git_uri": uri, "git_branch": "main", "registry_uri": osbs_engine.registry, "registry_secret": "",
            "osbs_namespace": namespace, "autorebuild": False}

    first = run_playbook(osbs_engine, "osbs.flow.build", flow)
    assert recap(first.stdout)["failed"] == 0, first.stdout[-3000:]
    assert "Complete (started)" in first.stdout, first.stdout[-3000:]
    [build] = json.loads(kubectl(osbs_engine, namespace, "get", "builds", "-o", "json"))["items"]
    assert build["spec"]["strategy"]["dockerStrategy"]["pullSecret"] == {"name": "base-pull"}, build["spec"]["strategy"]

    writes = osbs_engine.writes()
    second = run_playbook(osbs_engine, "osbs.flow.build", flow)
    assert recap(second.stdout)["changed"] == 0 and recap(second.stdout)["failed"] == 0, second.stdout[-3000:]
    assert "Complete (existing)" in second.stdout
    assert osbs_engine.writes() == writes, "a run with nothing new sent a write request"
    assert len(json.loads(kubectl(osbs_engine, namespace, "get", "builds", "-o", "json"))["items"]) == 1
