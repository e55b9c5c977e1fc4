"""The osbs-local command line, the files it writes, kubectl with the written kubeconfig, and restarts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from osbs_local import registry_client


BUILD_API = "/apis/build.openshift.io/v1"


def test_up_writes_kubeconfig_env_and_the_registry_secret(engine, http):
    # Compared with the files `up` writes, not with what the test engine read from them.
    kubeconfig_path = engine.state_dir / "kubeconfig"
    kubeconfig = yaml.safe_load(kubeconfig_path.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == engine.base and cluster["server"].startswith("https://127.0.0.1:")
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == open(engine.ca).read()
    assert kubeconfig["users"][0]["user"]["token"] == engine.token
    assert kubeconfig["contexts"][0]["context"]["namespace"] == "osbs"
    for private in (kubeconfig_path, engine.state_dir / "config.json", engine.state_dir / "state.db",
                    engine.state_dir / "logs" / "serve.log"):
        assert (private.stat().st_mode & 0o077) == 0, private
    env = dict(line.removeprefix("export ").split("=", 1) for line in (engine.state_dir / "env").read_text().splitlines())
    assert env["K8S_AUTH_KUBECONFIG"] == str(kubeconfig_path)
    assert env["OSBS_LOCAL_REGISTRY"] == "127.0.0.1:%s" % engine.config["registry_port"]
    assert env["REGISTRY_AUTH_FILE"] == str(engine.state_dir / "auth.json")
    assert env["OSBS_LOCAL_REGISTRY_CA"] == engine.ca
    assert (env["OSBS_LOCAL_NAMESPACE"], env["OSBS_LOCAL_REGISTRY_SECRET"]) == ("osbs", "registry-dockercfg")
    secret = http.get(f"{engine.base}/api/v1/namespaces/osbs/secrets/registry-dockercfg").json()
    assert secret["type"] == "kubernetes.io/dockercfg"
    # The secret's credentials really open the registry (TLS with the engine CA, htpasswd).
    client = registry_client.RegistryClient(engine.registry, registry_client.auths_from_secret(secret), engine.ca)
    client.ping()
    assert engine.token not in (engine.state_dir / "logs" / "serve.log").read_text()


def test_up_is_idempotent_and_status_reports(engine):
    again = engine.cli("up")
    assert "already running" in again.stdout
    assert json.loads((engine.state_dir / "config.json").read_text())["api_port"] == engine.config["api_port"]
    status = engine.cli("status").stdout
    assert f"https://127.0.0.1:{engine.config['api_port']}  running" in status
    assert engine.registry in status
    assert "NAMESPACE" in status and "Complete" in status and "(all)" in status
    second = engine.cli("serve", check=False, timeout=30)  # a second server on the same state is refused
    assert second.returncode == 1 and "already serves" in second.stderr


@pytest.mark.slow
def test_kubectl_get_describe_apply_delete_and_watch(engine, namespace, tmp_path):
    manifest = tmp_path / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kc", "labels": {"via": "kubectl"}}, "data": {"a": "1"}},
        {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "kbc"},
         "spec": {"source": {"git": {"uri": "file:///nonexistent.git"}},
                  "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": "127.0.0.1:1/b:1"}}},
                  "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:1/o:1"}}}},
        {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "kis"}, "spec": {}},
    ]))
    applied = engine.kubectl("apply", "--validate=false", "-f", str(manifest), namespace=namespace).stdout
    assert "configmap/kc created" in applied and "buildconfig.build.openshift.io/kbc created" in applied
    manifest.write_text(manifest.read_text().replace("a: '1'", "a: '2'"))
    reapplied = engine.kubectl("apply", "--validate=false", "-f", str(manifest), namespace=namespace).stdout
    assert "configmap/kc configured" in reapplied and "buildconfig.build.openshift.io/kbc unchanged" in reapplied
    assert engine.kubectl("get", "cm", "kc", "-o", "jsonpath={.data.a}", namespace=namespace).stdout == "2"
    listed = engine.kubectl("get", "bc", namespace=namespace).stdout
    assert "kbc" in listed
    assert "kis" in engine.kubectl("get", "is", namespace=namespace).stdout
    described = engine.kubectl("describe", "bc", "kbc", namespace=namespace).stdout
    assert "Name:" in described and "kbc" in described
    described_cm = engine.kubectl("describe", "configmap", "kc", namespace=namespace).stdout
    assert "kc" in described_cm

    watcher = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(engine.kubeconfig), "-n", namespace, "get", "configmaps", "-w",
         "--output-watch-events", "-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name", "--no-headers"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        engine.kubectl("create", "configmap", "watched", "--from-literal=x=1", namespace=namespace)
        engine.kubectl("delete", "configmap", "watched", namespace=namespace)
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("DELETED" in s and "watched" in s for s in seen):
            line = watcher.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert any(s.split() == ["ADDED", "kc"] for s in seen), seen
    assert any(s.split() == ["ADDED", "watched"] for s in seen), seen
    assert any(s.split() == ["DELETED", "watched"] for s in seen), seen

    deleted = engine.kubectl("delete", "-f", str(manifest), namespace=namespace, timeout=60).stdout
    assert 'configmap "kc" deleted' in deleted
    assert engine.kubectl("get", "bc", "kbc", namespace=namespace, check=False).returncode != 0


def test_logs_command_prints_a_build_log(engine, http, namespace, make_bc):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("logged"))
    http.post(f"{bc_url}/logged/instantiate", json={"metadata": {"name": "logged"}})
    followed = engine.cli("logs", "logged-1", "-n", namespace, "-f", timeout=90)
    assert "nonexistent" in followed.stdout
    assert http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/logged-1").json()["status"]["phase"] == "Failed"
    assert "nonexistent" in engine.cli("logs", "logged", "-n", namespace).stdout  # a BuildConfig: its latest build
    missing = engine.cli("logs", "nope-1", "-n", namespace, check=False)
    assert missing.returncode == 1 and 'builds.build.openshift.io "nope-1" not found' in missing.stderr


@pytest.mark.slow
def test_restart_keeps_objects_ends_unfinished_builds_and_expires_old_watches(tmp_path, make_bc, engines):
    # Build workers 0: builds stay New, so the restart finds unfinished builds for certain.
    engine = engines.start(tmp_path / "state", "--build-workers", "0")
    try:
        http = engine.session()
        bc_url = f"{engine.base}{BUILD_API}/namespaces/osbs/buildconfigs"
        assert http.post(bc_url, json=make_bc("survivor")).status_code == 201
        build = http.post(f"{bc_url}/survivor/instantiate", json={"metadata": {"name": "survivor"}}).json()
        http.post(f"{engine.base}/api/v1/namespaces/osbs/configmaps", json={"metadata": {"name": "kept"}, "data": {"k": "v"}})
        before_rv = http.get(f"{engine.base}/api/v1/namespaces/osbs/configmaps").json()["metadata"]["resourceVersion"]
        uid = http.get(f"{bc_url}/survivor").json()["metadata"]["uid"]
        assert build["status"]["phase"] == "New"
        engines.stop(engine)
        port = engine.config["api_port"]
        engine = engines.start(tmp_path / "state")
        assert engine.config["api_port"] == port  # the port is kept across restarts
        http = engine.session()
        assert http.get(f"{bc_url}/survivor").json()["metadata"]["uid"] == uid
        assert http.get(f"{engine.base}/api/v1/namespaces/osbs/configmaps/kept").json()["data"] == {"k": "v"}
        ended = http.get(f"{engine.base}{BUILD_API}/namespaces/osbs/builds/survivor-1").json()
        assert ended["status"]["phase"] == "Error" and ended["status"]["reason"] == "EngineRestarted"
        assert "restarted" in ended["status"]["message"]
        # The new engine has no events from before its start: an old resourceVersion is 410 Expired.
        with http.get(f"{engine.base}/api/v1/namespaces/osbs/configmaps",
                      params={"watch": "true", "resourceVersion": str(int(before_rv) - 1)}, stream=True, timeout=10) as response:
            event = json.loads(next(response.iter_lines()))
        assert event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        # resourceVersions keep growing across the restart.
        created = http.post(f"{engine.base}/api/v1/namespaces/osbs/configmaps", json={"metadata": {"name": "after"}}).json()
        assert int(created["metadata"]["resourceVersion"]) > int(before_rv)
    finally:
        engines.stop(engine)
    assert not engine.cli("status", check=False).returncode == 0


@pytest.mark.slow
def test_up_with_new_settings_restarts_on_the_new_port_and_down_is_idempotent(tmp_path, engines):
    from osbs_local.services.registry import free_port

    engine = engines.start(tmp_path / "state", "--build-workers", "0")
    try:
        port = free_port()
        engine = engines.start(tmp_path / "state", "--port", str(port))
        assert engine.config["api_port"] == port and engine.config["build_workers"] == 0
        assert yaml.safe_load(engine.kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{port}"
        assert engine.session().get(f"{engine.base}/version").json()["major"] == "1"
    finally:
        engines.stop(engine)
    again = engine.cli("down")
    assert "not running" in again.stdout


@pytest.mark.slow
def test_build_pods_for_kubectl_logs_and_k8s_log(engine, http, namespace, make_bc, tmp_path):
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json=make_bc("podded"))
    http.post(f"{bc_url}/podded/instantiate", json={"metadata": {"name": "podded"}})
    engine.cli("logs", "podded-1", "-n", namespace, "-f", timeout=90)  # returns when the build has ended
    pods = engine.kubectl("get", "pods", "-o", "jsonpath={.items[*].metadata.name} {.items[*].status.phase}", namespace=namespace).stdout
    assert pods == "podded-1-build Failed"
    logs = engine.kubectl("logs", "podded-1-build", namespace=namespace).stdout
    assert "nonexistent" in logs
    described = engine.kubectl("describe", "build", "podded-1", namespace=namespace).stdout
    assert "BuildStarted" in described and "BuildFailed" in described
    # Server-side printing: the columns `oc get` shows.
    table = engine.kubectl("get", "builds", namespace=namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION"]
    assert table[1].split()[:5] == ["podded-1", "Docker", "Git@main", "Failed", "(FetchSourceFailed)"]
    assert engine.kubectl("get", "bc", "podded", namespace=namespace).stdout.splitlines()[1].split() == ["podded", "Docker", "Git@main", "1"]
    watcher = subprocess.Popen(["kubectl", "--kubeconfig", str(engine.kubeconfig), "-n", namespace, "get", "builds", "-w"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline().split()[0] == "NAME"
        assert watcher.stdout.readline().split()[0] == "podded-1"
        http.post(f"{bc_url}/podded/instantiate", json={"metadata": {"name": "podded"}})
        phases = []
        deadline = time.monotonic() + 60
        while "Failed" not in phases and time.monotonic() < deadline:
            row = watcher.stdout.readline().split()
            if row and row[0] == "podded-2":
                phases.append(row[3])
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert phases[0] == "New" and phases[-1] == "Failed" and "Running" in phases
    # kubernetes.core's k8s_log reads builds/NAME/log (it needs a Pod resource in discovery to start).
    playbook = tmp_path / "log.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"kubernetes.core.k8s_log": {"kubeconfig": str(engine.kubeconfig), "api_version": "build.openshift.io/v1",
                                     "kind": "Build", "namespace": namespace, "name": "podded-1"}, "register": "build_log"},
        {"ansible.builtin.assert": {"that": ["build_log.log is search('nonexistent')"]}}]}]))
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run([f"{bin_dir}/ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    assert result.returncode == 0, result.stdout[-3000:]
