"""A lost API server is reported within seconds, and an autorebuild refused as "already instantiated" recovers.

The connection errors are real (urllib3 against a closed port, and against a port that closes every TLS
handshake); the clients are scripted stand-ins that raise them, as OpenShiftClient.request does, so the
follower's reaction can be timed without killing an engine (tests/integration/wave/test_engine_lost.py
does that). The "already instantiated" answer is openshift-apiserver's updateImageTriggers, word for word.
"""

import copy
import socket
import threading
import time

import pytest
import urllib3

from ansible_collections.osbs.flow.plugins.module_utils.build import BuildRunner
from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError, ApiUnreachable
from ansible_collections.osbs.flow.plugins.module_utils.waiter import BuildFollower, wait_for_builds


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def real_error(url):
    try:
        urllib3.PoolManager(cert_reqs="CERT_NONE", retries=urllib3.Retry(0)).request("GET", url, timeout=5)
    except urllib3.exceptions.HTTPError as exc:
        return exc
    raise AssertionError("%s answered" % url)


@pytest.fixture
def hangs_up_tls():
    """A port that accepts each connection and closes it at once: the TLS handshake ends in EOF."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _address = server.accept()
            except OSError:
                continue
            conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_refused_connection_names_the_server_and_what_failed():
    port = closed_port()
    error = ApiUnreachable("https://127.0.0.1:%d" % port, "GET", "/apis/build.openshift.io/v1/namespaces/ns/builds",
                           real_error("https://127.0.0.1:%d/" % port))
    assert str(error).startswith("cannot reach the API server https://127.0.0.1:%d (GET /apis/build.openshift.io/v1/namespaces/ns/builds): "
                                 "connection refused;" % port), str(error)
    assert not error.timed_out


def test_a_tls_handshake_cut_short_is_a_connection_failure(hangs_up_tls):
    error = ApiUnreachable("https://127.0.0.1:%d" % hangs_up_tls, "GET", "/api", real_error("https://127.0.0.1:%d/" % hangs_up_tls))
    assert "cannot reach the API server https://127.0.0.1:%d" % hangs_up_tls in str(error)
    assert any(word in error.what_failed.lower() for word in ("eof", "reset", "closed", "tls")), error.what_failed
    assert not error.timed_out


class GoneServer:
    """Every list and watch fails as a request to a server that is gone does; a read first finds the build Running."""

    host = "https://127.0.0.1:1"

    def __init__(self, cause):
        self.cause = cause
        self.attempts = 0

    @staticmethod
    def path(kind, namespace=None, name=None, subresource=None):
        return "/apis/build.openshift.io/v1/namespaces/%s/builds" % namespace

    def fail(self):
        self.attempts += 1
        raise ApiUnreachable(self.host, "GET", self.path("Build", "ns"), self.cause)

    def request(self, method, path, query=None, **kwargs):
        self.fail()

    def get(self, kind, namespace, name):
        return build(name, "Running")

    def watch(self, *args, **kwargs):
        self.fail()


def build(name, phase, **status):
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "5"}, "status": dict(status, phase=phase)}


def test_the_follower_gives_up_on_a_lost_server_within_seconds():
    client = GoneServer(real_error("https://127.0.0.1:%d/" % closed_port()))
    lost = []
    done = threading.Event()
    started = time.monotonic()
    follower = BuildFollower(client, timeout=3600)
    follower.follow(build("a-1", "Running"), lambda b: None, on_lost=lambda error: (lost.append(error), done.set()))
    assert done.wait(20), "the follower kept waiting for a server that is gone"
    took = time.monotonic() - started
    follower.stop()
    assert took < BuildFollower.UNREACHABLE_SECONDS + 5, took
    assert client.attempts >= 2, "a single failure is retried before the server counts as lost"
    assert "cannot reach the API server https://127.0.0.1:1" in str(lost[0]) and "connection refused" in str(lost[0])


def test_waiting_for_a_build_raises_the_lost_server():
    client = GoneServer(real_error("https://127.0.0.1:%d/" % closed_port()))
    started = time.monotonic()
    with pytest.raises(ApiUnreachable, match="cannot reach the API server https://127.0.0.1:1"):
        wait_for_builds(client, [build("a-1", "Running")], timeout=3600)
    assert time.monotonic() - started < BuildFollower.UNREACHABLE_SECONDS + 5


class SlowWatch(GoneServer):
    """Lists answer; every watch times out (the answer did not come in time): a slow server, not a lost one."""

    def request(self, method, path, query=None, **kwargs):
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    def watch(self, *args, **kwargs):
        time.sleep(0.2)
        self.fail()


def test_a_timed_out_watch_is_listed_afresh_not_given_up():
    client = SlowWatch(real_error_read_timeout())
    ended, lost = [], []
    done = threading.Event()
    follower = BuildFollower(client, timeout=BuildFollower.UNREACHABLE_SECONDS + 3)
    follower.follow(build("a-1", "Running"), lambda b: (ended.append(b), done.set()), on_lost=lost.append)
    assert done.wait(30)
    follower.stop()
    assert lost == [] and [b["status"]["phase"] for b in ended] == ["Running"]  # the deadline's callback
    assert client.attempts >= 3


def real_error_read_timeout():
    """A real read timeout: a server that accepts and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        urllib3.PoolManager(retries=urllib3.Retry(0)).request(
            "GET", "http://127.0.0.1:%d/" % server.getsockname()[1], timeout=urllib3.Timeout(connect=2, read=0.3))
    except urllib3.exceptions.HTTPError as exc:
        error = ApiUnreachable("http://x", "GET", "/", exc)
        assert error.timed_out, error.what_failed
        return exc
    finally:
        server.close()
    raise AssertionError("the silent server answered")


# -- an autorebuild of a base image the trigger already recorded --------------------------------------

BASE = "registry.example.com/ns/base@sha256:" + "b" * 64
ALREADY = "Internal error occurred: build config ns/app has already instantiated a build for imageid %s" % BASE


class Cluster:
    """BuildConfig app builds FROM ImageStreamTag base:latest (which resolves to BASE), with these builds."""

    host = "https://api.example.com:6443"

    def __init__(self, builds):
        self.builds = builds
        self.requests = []
        self.written = None  # the BuildConfig as the identity writes (release.py) left it

    @staticmethod
    def path(kind, namespace=None, name=None, subresource=None):
        return "/".join(filter(None, [kind, namespace, name, subresource]))

    def get(self, kind, namespace, name):
        if kind == "BuildConfig":
            bc = copy.deepcopy(self.written) if self.written else {
                "metadata": {"name": "app", "namespace": "ns", "labels": {"is_autorebuild": "true"}},
                "spec": {"strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "base:latest"}}}}}
            return dict(bc, status={"lastVersion": len(self.builds)})
        if kind == "ImageStreamTag":
            return {"image": {"metadata": {"name": "sha256:" + "b" * 64}, "dockerImageReference": BASE}}
        raise AssertionError(kind)

    def replace(self, kind, namespace, body):
        assert kind == "BuildConfig", kind
        self.written = copy.deepcopy(body)
        return body

    def list(self, kind, namespace, label_selector=None, field_selector=None):
        return {"items": list(self.builds) if label_selector.startswith("openshift.io/") else []}

    def request(self, method, path, body=None, **kwargs):
        self.requests.append(body)
        if "triggeredByImage" in body:
            raise ApiError(500, "InternalError", ALREADY)
        new = build("app-%d" % (len(self.builds) + 1), "New")
        new["metadata"]["annotations"] = {"openshift.io/build.number": str(len(self.builds) + 1)}
        self.builds.insert(0, new)
        return new


def from_base(name, number, phase, reason=None):
    made = build(name, phase, reason=reason)
    made["metadata"]["annotations"] = {"openshift.io/build.number": str(number)}
    made["spec"] = {"strategy": {"dockerStrategy": {"from": {"kind": "DockerImage", "name": BASE}}}}
    return made


@pytest.mark.parametrize("phase", ["Error", "Failed", "Cancelled"])
def test_a_base_image_whose_build_ended_unsuccessfully_is_built_again_by_a_plain_request(phase):
    cluster = Cluster([from_base("app-1", 1, phase, reason="EngineRestarted")])
    runner = BuildRunner(cluster, "ns", "app", 600, autorebuild=True, base_image_digest="sha256:" + "b" * 64)
    started, how = runner.start()
    assert how == "started" and started["metadata"]["name"] == "app-2"
    assert len(cluster.requests) == 2, cluster.requests  # the refused triggered request, then one plain one
    plain = cluster.requests[1]
    assert "triggeredByImage" not in plain and "from" not in plain
    assert plain["triggeredBy"][0]["imageChangeBuild"]["imageID"] == BASE
    assert plain["lastVersion"] == 1


def test_a_base_image_whose_build_was_deleted_is_built_again_once():
    cluster = Cluster([])
    started, how = BuildRunner(cluster, "ns", "app", 600, autorebuild=True).start()
    assert how == "started" and len(cluster.requests) == 2


class TriggerFiresFirst(Cluster):
    """The cluster's trigger starts the build between our read and our request."""

    def request(self, method, path, body=None, **kwargs):
        if not self.builds:
            self.builds.insert(0, from_base("app-1", 1, "Running"))
        return super().request(method, path, body, **kwargs)


def test_the_build_the_trigger_started_meanwhile_is_adopted():
    cluster = TriggerFiresFirst([])
    adopted, how = BuildRunner(cluster, "ns", "app", 600, autorebuild=True).start()
    assert how == "adopted" and adopted["metadata"]["name"] == "app-1" and len(cluster.requests) == 1
