"""Against an osbs-local configured as a busy OpenShift can behave: watch history kept 2 s (watch_window_seconds)
and builds that complete without status.output.to.imageDigest (the test switch test_build_without_image_digest).

OpenShift's watch cache keeps a limited history per resource (k8s.io/apiserver storage/cacher watch_cache.go); its
builder records the digest only when the push returned one (openshift/builder docker.go DockerBuilder.Build).
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from osbs_local.state import load_config, save_config
from testlib import make_git_repo, run_module, start_engine, stop_engine

pytestmark = pytest.mark.slow

WINDOW = 2
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from osbs_local.executor.base_image import build_busybox_base

    state_dir = tmp_path_factory.mktemp("osbs-local-busy")
    config = load_config(state_dir)
    config.update(watch_window_seconds=WINDOW, test_build_without_image_digest=True)
    save_config(state_dir, config)
    engine = start_engine(state_dir)
    base = "%s/osbs/busybox:latest" % engine.registry
    build_busybox_base(base, storage_dir=tmp_path_factory.mktemp("busy-base-storage"),
                       auth_file=engine.env["REGISTRY_AUTH_FILE"], cert_dir=engine.state_dir / "certs.d" / engine.registry)
    engine.base_image = base
    yield engine
    stop_engine(engine)


def buildconfig(engine, tmp_path_factory, short, run):
    token = uuid.uuid4().hex[:8]
    uri, commit = make_git_repo(tmp_path_factory.mktemp("busy") / short, {
        "Dockerfile": "FROM %s\nRUN %s && echo %s > /token\n" % (engine.base_image, run, token)})
    result = run_module(engine, "osbs_buildconfig", dict(
        namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=engine.base_image,
        image="osbs/%s" % short, registry_uri=engine.registry, registry_secret=engine.registry_secret))
    assert not result.get("failed"), result.get("msg")
    return result["name"], commit


def metric(engine, name):
    text = engine.session().get(engine.base + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no %s" % name)


def build_reads(engine):
    counts = engine.metrics()
    return {verb: counts.get((verb, "builds"), 0) for verb in ("get", "list", "watch")}


class BuildChurn:
    """Another namespace's build changing every half second: the builds history moves on while ours is quiet."""

    def __init__(self, engine):
        self.engine = engine
        self.namespace = "churn-%s" % uuid.uuid4().hex[:6]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        http = self.engine.session()
        assert http.post(self.engine.base + "/api/v1/namespaces", json={"metadata": {"name": self.namespace}}).status_code == 201
        url = "%s/apis/build.openshift.io/v1/namespaces/%s/builds" % (self.engine.base, self.namespace)
        answer = http.post(url, json={"metadata": {"name": "churn-1"}, "spec": {
            "source": {"type": "Git", "git": {"uri": "https://127.0.0.1:1/nothing.git"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}}}})
        assert answer.status_code == 201, answer.text
        self.url = url + "/churn-1"
        self.thread.start()
        return self

    def _run(self):
        http = self.engine.session()
        count = 0
        while not self.stop.wait(0.5):
            count += 1
            http.patch(self.url, json={"metadata": {"annotations": {"churn": str(count)}}}, headers=MERGE)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def test_a_build_longer_than_the_watch_window_is_followed_with_few_requests(engine, tmp_path_factory):
    """Done when of issue 14 item 3: the build runs 40 s, past a renewal of the module's 30 s watch and far past the
    2 s history, while other builds change; osbs_build returns when it completes, having read builds a few times,
    where a loop polling every second would have read them 40 times, and its watches never fell out of the history."""
    name, commit = buildconfig(engine, tmp_path_factory, "quiet", "sleep 40")
    assert metric(engine, "osbs_local_watch_window_seconds") == WINDOW
    with BuildChurn(engine):
        expired_before = metric(engine, "osbs_local_watch_expired_total")
        before = build_reads(engine)
        started = time.monotonic()
        result = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=name, git_commit=commit))
        took = time.monotonic() - started
        after = build_reads(engine)
        expired = metric(engine, "osbs_local_watch_expired_total") - expired_before
    assert not result.get("failed"), result.get("msg")
    assert result["phase"] == "Complete"
    reads = {verb: after[verb] - before[verb] for verb in after}
    print("osbs_build took %.1f s; build reads %s; watches expired %d" % (took, json.dumps(reads), expired))
    assert took > 35
    assert reads["watch"] >= 2  # the watch was renewed at least once, from a version older than the window
    assert sum(reads.values()) <= 12, reads
    assert expired == 0  # bookmarks kept the renewed watch inside the history


def test_a_complete_build_without_a_digest_is_imported_by_its_labels_or_refused(engine, tmp_path_factory):
    """Done when of issue 14 item 5: the build completes without imageDigest; import_image verifies the image the tag
    holds by the builder's labels naming the build, and refuses, moving nothing, when another build's image is there."""
    name, commit = buildconfig(engine, tmp_path_factory, "nodigest", "true")
    build = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=name, git_commit=commit))
    assert not build.get("failed"), build.get("msg")
    assert build["phase"] == "Complete" and build["image_digest"] is None

    imported = run_module(engine, "reactor_import_image", dict(
        namespace=engine.namespace, image=build["output_image"], expected_build=build["name"]))
    assert not imported.get("failed"), imported.get("msg")
    assert imported["verified_by"] == "build labels" and imported["digest"].startswith("sha256:")

    # Another BuildConfig pushes to the same tag: its image is not the one build made.
    other_name, other_commit = buildconfig(engine, tmp_path_factory, "nodigest-other", "true")
    http = engine.session()
    bc_url = "%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs/%s" % (engine.base, engine.namespace, other_name)
    patched = http.patch(bc_url, json={"spec": {"output": {"to": {"kind": "DockerImage", "name": build["output_image"]}}}},
                         headers=MERGE)
    assert patched.status_code == 200, patched.text
    other = run_module(engine, "osbs_build", dict(namespace=engine.namespace, buildconfig=other_name, git_commit=other_commit))
    assert other["phase"] == "Complete", other.get("msg")

    refused = run_module(engine, "reactor_import_image", dict(
        namespace=engine.namespace, image=build["output_image"], expected_build=build["name"]))
    assert refused["failed"] is True
    assert "completed without an image digest" in refused["msg"]
    assert "%s/%s" % (engine.namespace, other["name"]) in refused["msg"] and "was not moved" in refused["msg"]
    stream = http.get("%s/apis/image.openshift.io/v1/namespaces/%s/imagestreams/%s" % (
        engine.base, engine.namespace, imported["imagestream"])).json()
    tags = {t["tag"]: t["items"][0]["image"] for t in stream["status"]["tags"]}
    assert tags[imported["tag"]] == imported["digest"]
