"""End to end through the engine's API: a base image built from scratch, imported; an app built FROM it by a
BuildConfig whose ImageChange trigger fires exactly once per new base image; digests equal the registry's.

Everything is real: the engine's docker-registry (TLS + htpasswd), buildah builds, git repositories on disk.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest

from osbs_local.executor.base_image import build_busybox_base

pytestmark = pytest.mark.slow


BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"
TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


class GitRepo:
    def __init__(self, path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args):
        return subprocess.run(["git", "-C", str(self.path), "-c", "user.name=Tess Ter", "-c", "user.email=t@example.com", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, files: dict, message: str) -> str:
        for name, content in files.items():
            (self.path / name).write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


def registry_digest(engine, repository: str, tag: str) -> str:
    """What the registry itself says the tag's manifest digest is (skopeo, the engine's auth file and CA)."""
    out = subprocess.run(
        ["skopeo", "inspect", "--authfile", str(engine.state_dir / "auth.json"),
         "--cert-dir", str(engine.state_dir / "certs.d" / engine.registry),
         f"docker://{engine.registry}/{repository}:{tag}"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["Digest"]


def wait_build(http, engine, namespace, name, timeout=180) -> dict:
    url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{name}"
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(url)
        if response.status_code == 200 and response.json()["status"]["phase"] in TERMINAL:
            return response.json()
        assert time.monotonic() < deadline, f"build {name} did not finish: {response.text[:500]}"
        time.sleep(0.3)


def build_names(http, engine, namespace, bc) -> list[str]:
    items = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds",
                     params={"labelSelector": f"openshift.io/build-config.name={bc}"}).json()["items"]
    return sorted(b["metadata"]["name"] for b in items)


@pytest.fixture(scope="module")
def base_digest(busybox_base_image):
    """The digest of busybox-static as an image made from scratch, in the engine's registry as osbs/busybox:latest."""
    return busybox_base_image[1]


def app_bc(name, repo, from_tag, output_tag, triggers, **spec):
    body = {
        "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": name},
        "spec": {
            "source": {"git": {"uri": f"file://{repo.path}", "ref": "main"}},
            "strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": from_tag}}},
            "output": {"to": {"kind": "ImageStreamTag", "name": output_tag},
                       "pushSecret": {"name": "registry-dockercfg"}},
            "triggers": triggers,
        },
    }
    body["spec"].update(spec)
    return body


def test_import_then_image_change_trigger_fires_exactly_once_per_image(engine, http, base_digest, tmp_path):
    namespace = "osbs"  # the namespace holding the registry's dockercfg secret, as `up` made it
    suffix = os.urandom(3).hex()
    base_stream, app_stream = f"base-{suffix}", f"app-{suffix}"

    # 1. Import the base image into an ImageStream (creates the stream; Success; digest = the registry's).
    imported = http.post(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamimports", json={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": base_stream},
        "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:latest"},
                                             "to": {"name": "latest"}}]},
        "status": {}})
    assert imported.status_code == 201, imported.text
    result = imported.json()["status"]
    assert result["images"][0]["status"]["status"] == "Success"
    assert result["images"][0]["image"]["metadata"]["name"] == base_digest == registry_digest(engine, "osbs/busybox", "latest")
    assert result["import"]["status"]["tags"][0]["items"][0]["image"] == base_digest
    tag = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamtags/{base_stream}:latest").json()
    assert tag["image"]["dockerImageReference"] == f"{engine.registry}/osbs/busybox@{base_digest}"

    # 2. A BuildConfig FROM that tag with an ImageChange trigger: the tag already resolves, so it builds at once.
    repo = GitRepo(tmp_path / "app")
    commit = repo.commit({"Dockerfile": "FROM busybox\nRUN echo built > /built\nLABEL name=app\n"}, "app")
    bc_name = f"app-{suffix}"
    created = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs",
                        json=app_bc(bc_name, repo, f"{base_stream}:latest", f"{app_stream}:latest", [{"type": "ImageChange", "imageChange": {}}]))
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while not build_names(http, engine, namespace, bc_name):
        assert time.monotonic() < deadline, "the ImageChange trigger did not start a build"
        time.sleep(0.2)
    first = wait_build(http, engine, namespace, f"{bc_name}-1")
    assert first["status"]["phase"] == "Complete", first["status"]
    pull_spec = f"{engine.registry}/osbs/busybox@{base_digest}"
    cause = first["spec"]["triggeredBy"][0]
    assert cause["message"] == "Image change" and cause["imageChangeBuild"]["imageID"] == pull_spec
    assert first["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": pull_spec}
    app_digest = first["status"]["output"]["to"]["imageDigest"]
    assert app_digest == registry_digest(engine, f"{namespace}/{app_stream}", "latest")
    assert first["status"]["outputDockerImageReference"] == f"{engine.registry}/{namespace}/{app_stream}:latest"
    assert first["status"]["duration"] > 0 and first["status"]["startTimestamp"] <= first["status"]["completionTimestamp"]
    assert first["spec"]["revision"]["git"]["commit"] == commit  # recorded through builds/details, as OpenShift does
    bc = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{bc_name}").json()
    assert bc["status"]["lastVersion"] == 1
    assert bc["status"]["imageChangeTriggers"][0]["lastTriggeredImageID"] == pull_spec
    assert bc["status"]["imageChangeTriggers"][0]["from"] == {"namespace": namespace, "name": f"{base_stream}:latest"}
    # The build's output updated the app's ImageStream.
    app_tag = http.get(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamtags/{app_stream}:latest").json()
    assert app_tag["image"]["metadata"]["name"] == app_digest
    log_text = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/{bc_name}-1/log").text
    assert "RUN echo built" in log_text

    # 3. A new base image, made by an engine build whose output is the base tag: exactly one more app build.
    base_repo = GitRepo(tmp_path / "base")
    base_repo.commit({"Dockerfile": "FROM scratch\nRUN true\n"}, "v2 base")  # FROM replaced by the strategy's from
    rebase_name = f"rebase-{suffix}"
    http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs", json=app_bc(
        rebase_name, base_repo, f"{base_stream}:latest", f"{base_stream}:latest", [],
        strategy={"dockerStrategy": {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox@{base_digest}"}}}))
    rebase = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{rebase_name}/instantiate",
                       json={"kind": "BuildRequest", "metadata": {"name": rebase_name}})
    assert rebase.status_code == 201, rebase.text
    new_base = wait_build(http, engine, namespace, f"{rebase_name}-1")
    assert new_base["status"]["phase"] == "Complete", new_base["status"]
    new_base_digest = new_base["status"]["output"]["to"]["imageDigest"]
    assert new_base_digest != base_digest
    assert new_base_digest == registry_digest(engine, f"{namespace}/{base_stream}", "latest")
    second = None
    deadline = time.monotonic() + 60
    while second is None:
        if f"{bc_name}-2" in build_names(http, engine, namespace, bc_name):
            second = wait_build(http, engine, namespace, f"{bc_name}-2")
        else:
            assert time.monotonic() < deadline, "the new base image did not trigger the app"
            time.sleep(0.3)
    assert second["status"]["phase"] == "Complete", second["status"]
    new_pull_spec = f"{engine.registry}/{namespace}/{base_stream}@{new_base_digest}"
    assert second["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == new_pull_spec
    time.sleep(3)  # give a duplicate trigger every chance to appear
    assert build_names(http, engine, namespace, bc_name) == [f"{bc_name}-1", f"{bc_name}-2"]
    # Manual instantiate resolves the tag to the same pull spec, by digest.
    manual = http.post(f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs/{bc_name}/instantiate",
                       json={"kind": "BuildRequest", "metadata": {"name": bc_name}}).json()
    assert manual["spec"]["strategy"]["dockerStrategy"]["from"]["name"] == new_pull_spec
    assert manual["spec"]["triggeredBy"] == [{"message": "Manually triggered"}]  # OAS InstantiateREST.Create
    assert wait_build(http, engine, namespace, manual["metadata"]["name"])["status"]["phase"] == "Complete"
    # The push secret's password reached neither the engine log nor any build log.
    password = json.loads((engine.state_dir / "registry" / "credentials.json").read_text())["password"]
    logs = [engine.state_dir / "logs" / "serve.log", *(engine.state_dir / "builds").rglob("build.log")]
    assert len(logs) > 3 and all(password not in path.read_text() for path in logs)


def test_imagestream_with_a_docker_image_tag_imports_it(engine, http, base_digest):
    name = f"mirror-{os.urandom(3).hex()}"
    created = http.post(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams", json={
        "metadata": {"name": name},
        "spec": {"tags": [{"name": "v1", "from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:latest"}},
                          {"name": "gone", "from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/absent:1"}}]}})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while True:
        stream = http.get(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams/{name}").json()
        tags = {t["tag"]: t for t in stream["status"].get("tags") or []}
        if "v1" in tags and "gone" in tags:
            break
        assert time.monotonic() < deadline, stream
        time.sleep(0.2)
    assert tags["v1"]["items"][0]["image"] == base_digest
    layers = http.get(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams/{name}/layers").json()
    assert layers["kind"] == "ImageStreamLayers" and set(layers["images"]) == {base_digest}
    assert set(layers["images"][base_digest]["layers"]) == set(layers["blobs"]) and layers["blobs"]
    assert tags["v1"]["items"][0]["generation"] == stream["spec"]["tags"][0]["generation"]
    failed = tags["gone"]["conditions"][0]
    assert (failed["type"], failed["status"], failed["reason"]) == ("ImportSuccess", "False", "NotFound")
    assert "openshift.io/image.dockerRepositoryCheck" in stream["metadata"]["annotations"]


def test_import_preview_reports_the_image_and_stores_nothing(engine, http, base_digest):
    name = f"preview-{os.urandom(3).hex()}"
    preview = http.post(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreamimports", json={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": name},
        "spec": {"import": False, "images": [
            {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:latest"}, "includeManifest": True},
            {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:no-such-tag"}}]},
        "status": {}})
    assert preview.status_code == 201, preview.text
    found, missing = preview.json()["status"]["images"]
    assert found["status"]["status"] == "Success" and found["image"]["metadata"]["name"] == base_digest
    assert found["image"]["dockerImageReference"] == f"{engine.registry}/osbs/busybox@{base_digest}"
    assert found["image"]["dockerImageManifest"] and found["image"]["dockerImageLayers"]
    assert (missing["status"]["status"], missing["status"]["code"], missing["status"]["details"]["kind"]) == ("Failure", 404, "dockerimage")
    assert "import" not in preview.json()["status"]
    assert http.get(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams/{name}").status_code == 404
    # A dry-run import answers with the stream as it would be, and stores nothing either.
    dry = http.post(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreamimports", params={"dryRun": "All"}, json={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": name},
        "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:latest"},
                                             "to": {"name": "latest"}}]}, "status": {}})
    assert dry.status_code == 201, dry.text
    assert dry.json()["status"]["import"]["status"]["tags"][0]["items"][0]["image"] == base_digest
    assert http.get(f"{engine.base}{IMAGE_API}/namespaces/osbs/imagestreams/{name}").status_code == 404


def test_failure_reasons_and_cancel_through_the_api(engine, http, base_digest, tmp_path, namespace):
    repo = GitRepo(tmp_path / "failing")
    repo.commit({"Dockerfile": "FROM busybox\nRUN echo about to fail && exit 3\n"}, "fails")
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    base = f"{engine.registry}/osbs/busybox@{base_digest}"

    def docker_bc(name, **spec):
        body = {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": name},
                "spec": {"source": {"git": {"uri": f"file://{repo.path}", "ref": "main"}},
                         "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": base}}},
                         "output": {"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/{name}:latest"}}}}
        body["spec"].update(spec)
        assert http.post(bc_url, json=body).status_code == 201

    docker_bc("run-fails")
    http.post(f"{bc_url}/run-fails/instantiate", json={"metadata": {"name": "run-fails"}})
    failed = wait_build(http, engine, namespace, "run-fails-1")["status"]
    assert (failed["phase"], failed["reason"]) == ("Failed", "DockerBuildFailed")
    assert "exit 3" in failed["message"] and "about to fail" in failed["logSnippet"]

    docker_bc("bad-commit")
    http.post(f"{bc_url}/bad-commit/instantiate", json={"metadata": {"name": "bad-commit"},
                                                      "revision": {"type": "Git", "git": {"commit": "0" * 40}}})
    failed = wait_build(http, engine, namespace, "bad-commit-1")["status"]
    assert (failed["phase"], failed["reason"]) == ("Failed", "FetchSourceFailed")

    docker_bc("no-secret", output={"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/x:1"},
                                   "pushSecret": {"name": "missing"}})
    http.post(f"{bc_url}/no-secret/instantiate", json={"metadata": {"name": "no-secret"}})
    # OpenShift keeps it Pending until the secret exists (OCM build_controller.go handleActiveBuild): no failure.
    no_secret_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/no-secret-1"
    deadline = time.monotonic() + 60
    while (pending := http.get(no_secret_url).json()["status"]).get("reason") != "MissingPushSecret":
        assert time.monotonic() < deadline and pending["phase"] not in TERMINAL, pending
        time.sleep(0.3)
    assert (pending["phase"], pending["message"]) == ("Pending", "Missing push secret.")

    # Wrong registry credentials: the push is refused (Failed, PushImageToRegistryFailed) and an import
    # with the namespace's dockercfg secret answers Unauthorized.
    wrong = base64.b64encode(json.dumps({engine.registry: {"auth": base64.b64encode(b"osbs:wrong").decode()}}).encode()).decode()
    http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json={
        "metadata": {"name": "wrong-creds"}, "type": "kubernetes.io/dockercfg", "data": {".dockercfg": wrong}})
    ok_repo = GitRepo(tmp_path / "ok")
    ok_repo.commit({"Dockerfile": "FROM busybox\nRUN true\n"}, "fine")
    docker_bc("push-refused", source={"git": {"uri": f"file://{ok_repo.path}"}},
              output={"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/refused:1"},
                      "pushSecret": {"name": "wrong-creds"}})
    http.post(f"{bc_url}/push-refused/instantiate", json={"metadata": {"name": "push-refused"}})
    failed = wait_build(http, engine, namespace, "push-refused-1")["status"]
    assert (failed["phase"], failed["reason"]) == ("Failed", "PushImageToRegistryFailed"), failed
    refused = http.post(f"{engine.base}{IMAGE_API}/namespaces/{namespace}/imagestreamimports", json={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": "refused"},
        "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox:latest"}}]},
        "status": {}}).json()
    assert refused["status"]["images"][0]["status"]["reason"] == "Unauthorized"
    assert refused["status"]["import"]["status"]["tags"][0]["conditions"][0]["reason"] == "Unauthorized"

    slow = GitRepo(tmp_path / "slow")
    slow.commit({"Dockerfile": "FROM busybox\nRUN sleep 60\n"}, "slow")
    docker_bc("slow", source={"git": {"uri": f"file://{slow.path}", "ref": "main"}})
    http.post(f"{bc_url}/slow/instantiate", json={"metadata": {"name": "slow"}})
    build_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/slow-1"
    deadline = time.monotonic() + 60
    while "RUN sleep 60" not in http.get(f"{build_url}/log").text:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    started = time.monotonic()
    current = http.get(build_url).json()
    current["status"]["cancelled"] = True  # what community.okd does: GET, then PUT
    assert http.put(build_url, json=current).status_code == 200
    cancelled = wait_build(http, engine, namespace, "slow-1", timeout=30)["status"]
    assert time.monotonic() - started < 20
    assert (cancelled["phase"], cancelled["reason"], cancelled["message"]) == (
        "Cancelled", "CancelledBuild", "The build was cancelled by the user.")
    assert http.get(f"{build_url}/log").status_code == 200  # its log so far stays readable


def _podman_service(root):
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    (root / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n')
    return dict(os.environ, CONTAINERS_CONF=str(root / "containers.conf"), CONTAINERS_STORAGE_CONF=str(root / "storage.conf"))


def test_docker_builder_engine_builds_and_reports_the_registry_digest(tmp_path, engines):
    """An engine started with --builder docker, building through podman's Docker-compatible service."""
    import docker

    state = tmp_path / "state"
    engine = engines.start(state, "--builder", "docker", "--docker-host", f"unix://{tmp_path}/podman.sock")
    podman_root = tmp_path / "podman"
    podman_root.mkdir()
    env = _podman_service(podman_root)
    # A Docker-compatible daemon takes registry trust from its own configuration, not from the build:
    # this private daemon is told to skip verifying the engine registry (credentials are still required).
    (podman_root / "registries.conf").write_text(
        f'unqualified-search-registries = []\n[[registry]]\nlocation = "{engine.registry}"\ninsecure = true\n')
    env["CONTAINERS_REGISTRIES_CONF"] = str(podman_root / "registries.conf")
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{tmp_path}/podman.sock"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                docker.APIClient(base_url=f"unix://{tmp_path}/podman.sock", version="auto").ping()
                break
            except Exception:
                assert time.monotonic() < deadline and service.poll() is None, "podman service did not start"
                time.sleep(0.2)
        http = engine.session()
        base_digest = build_busybox_base(
            f"{engine.registry}/osbs/busybox:latest", storage_dir=tmp_path / "storage",
            auth_file=state / "auth.json", cert_dir=state / "certs.d" / engine.registry)
        repo = GitRepo(tmp_path / "repo")
        repo.commit({"Dockerfile": "FROM busybox\nRUN echo via-docker > /via\n"}, "docker")
        bc = {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "dockerapp"},
              "spec": {"source": {"git": {"uri": f"file://{repo.path}"}},
                       "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox@{base_digest}"}}},
                       "output": {"to": {"kind": "ImageStreamTag", "name": "dockerapp:latest"}}}}
        assert http.post(f"{engine.base}{BUILD_API}/namespaces/osbs/buildconfigs", json=bc).status_code == 201
        http.post(f"{engine.base}{BUILD_API}/namespaces/osbs/buildconfigs/dockerapp/instantiate", json={"metadata": {"name": "dockerapp"}})
        done = wait_build(http, engine, "osbs", "dockerapp-1")
        assert done["status"]["phase"] == "Complete", done["status"]
        assert done["status"]["output"]["to"]["imageDigest"] == registry_digest(engine, "osbs/dockerapp", "latest")
    finally:
        service.terminate()
        service.wait(20)
        engines.stop(engine)


def test_a_build_running_when_the_engine_stops_ends_as_error_after_restart(tmp_path, engines):
    state = tmp_path / "state"
    engine = engines.start(state)
    try:
        http = engine.session()
        base_digest = build_busybox_base(
            f"{engine.registry}/osbs/busybox:latest", storage_dir=tmp_path / "storage",
            auth_file=state / "auth.json", cert_dir=state / "certs.d" / engine.registry)
        repo = GitRepo(tmp_path / "repo")
        repo.commit({"Dockerfile": "FROM busybox\nRUN sleep 120\n"}, "slow")
        bc = {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "slow"},
              "spec": {"source": {"git": {"uri": f"file://{repo.path}"}},
                       "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox@{base_digest}"}}},
                       "output": {"to": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/slow:latest"}}}}
        http.post(f"{engine.base}{BUILD_API}/namespaces/osbs/buildconfigs", json=bc)
        http.post(f"{engine.base}{BUILD_API}/namespaces/osbs/buildconfigs/slow/instantiate", json={"metadata": {"name": "slow"}})
        deadline = time.monotonic() + 60
        while "RUN sleep 120" not in http.get(f"{engine.base}{BUILD_API}/namespaces/osbs/builds/slow-1/log").text:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert http.get(f"{engine.base}{BUILD_API}/namespaces/osbs/builds/slow-1").json()["status"]["phase"] == "Running"
        stopped = time.monotonic()
        engines.stop(engine)
        assert time.monotonic() - stopped < 30  # the running build step was stopped, not waited for
        engine = engines.start(state)
        http = engine.session()
        status = http.get(f"{engine.base}{BUILD_API}/namespaces/osbs/builds/slow-1").json()["status"]
        assert (status["phase"], status["reason"]) == ("Error", "EngineRestarted")
        assert "while this build was Running" in status["message"] and status["completionTimestamp"]
    finally:
        engines.stop(engine)


def test_at_most_two_builds_run_at_once(engine, http, base_digest, tmp_path, namespace):
    """`up` defaults to 2 build workers: a third Parallel build waits in New until one of them ends."""
    repo = GitRepo(tmp_path / "sleepy")
    repo.commit({"Dockerfile": "FROM busybox\nRUN sleep 4\n"}, "sleepy")
    bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
    http.post(bc_url, json={
        "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": "par"},
        "spec": {"runPolicy": "Parallel", "source": {"git": {"uri": f"file://{repo.path}"}},
                 "strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": f"{engine.registry}/osbs/busybox@{base_digest}"}}},
                 "output": {"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/par:latest"}}}})
    for _ in range(3):
        assert http.post(f"{bc_url}/par/instantiate", json={"metadata": {"name": "par"}}).status_code == 201
    most_active, waited_in_new = 0, False
    deadline = time.monotonic() + 120
    while True:
        phases = [b["status"]["phase"] for b in http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds").json()["items"]]
        active = sum(p in ("Pending", "Running") for p in phases)
        most_active = max(most_active, active)
        waited_in_new |= active == 2 and "New" in phases
        if all(p in TERMINAL for p in phases):
            break
        assert time.monotonic() < deadline, phases
        time.sleep(0.1)
    assert phases == ["Complete"] * 3
    assert most_active == 2 and waited_in_new


def test_a_build_reads_a_private_repository_with_its_source_secret(engine, http, base_digest, namespace, tmp_path):
    """spec.source.sourceSecret reaches the engine's clone (one that does not exist: test_missing_mounted_secrets.py)."""
    from git_http import GitHttpServer

    work = GitRepo(tmp_path / "private")
    commit = work.commit({"Dockerfile": f"FROM {engine.registry}/osbs/busybox@{base_digest}\nCOPY note.txt /note.txt\n",
                          "note.txt": "private\n"}, "private")
    server = GitHttpServer(tmp_path / "git-root", "builder", "s3cret-git-token").start()
    try:
        (tmp_path / "git-root").mkdir(exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(tmp_path / "git-root" / "private.git")], check=True)
        bc_url = f"{engine.base}{BUILD_API}/namespaces/{namespace}/buildconfigs"
        secret = {"metadata": {"name": "git-creds"}, "type": "kubernetes.io/basic-auth",
                  "stringData": {"username": "builder", "password": "s3cret-git-token"}}
        for name, secret_name in (("with", "git-creds"),):
            assert http.post(bc_url, json={
                "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": name},
                "spec": {"source": {"git": {"uri": f"{server.base}/private.git", "ref": "main"}, "sourceSecret": {"name": secret_name}},
                         "strategy": {"dockerStrategy": {}},
                         "output": {"to": {"kind": "DockerImage", "name": f"{engine.registry}/{namespace}/{name}:latest"},
                                    "pushSecret": {"name": "registry-dockercfg"}}}}).status_code == 201
        assert http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json=secret).status_code == 201
        pushsecret = http.get(f"{engine.base}/api/v1/namespaces/osbs/secrets/registry-dockercfg").json()
        pushsecret["metadata"] = {"name": "registry-dockercfg"}
        assert http.post(f"{engine.base}/api/v1/namespaces/{namespace}/secrets", json=pushsecret).status_code == 201

        http.post(f"{bc_url}/with/instantiate", json={"metadata": {"name": "with"}})
        done = wait_build(http, engine, namespace, "with-1")
        assert done["status"]["phase"] == "Complete", done["status"]
        assert done["spec"]["revision"]["git"]["commit"] == commit
        log = http.get(f"{engine.base}{BUILD_API}/namespaces/{namespace}/builds/with-1/log").text
        assert "s3cret-git-token" not in log
        assert server.refused >= 1
    finally:
        server.stop()
