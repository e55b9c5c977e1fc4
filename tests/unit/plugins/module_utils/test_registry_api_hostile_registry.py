"""registry_api against registries that answer what a real one may legally (or wrongly) answer: a HEAD without
Docker-Content-Digest, a PUT stored as another manifest, a token service that answers HTML. Each is a real HTTP
server on 127.0.0.1 speaking the distribution API's wire format, so the client's requests and headers are real."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.registry_api import OCI_MANIFEST, RegistryClient
from ansible_collections.osbs.flow.plugins.module_utils.tag_build import MOVED, UNCHANGED, BuildTagger

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + "1" * 64}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
# What OSBS's registries still hold at old tags: a schema 1 manifest, its `created` in the first history entry.
SCHEMA1 = json.dumps({"schemaVersion": 1, "name": "app", "tag": "latest", "architecture": "amd64", "fsLayers": [],
                      "history": [{"v1Compatibility": json.dumps({"created": "2017-03-01T10:00:00Z"})}]}).encode()
SCHEMA1_DIGEST = "sha256:" + hashlib.sha256(SCHEMA1).hexdigest()
# Signed, as registries served them: the digest is the payload's, the body carries the JWS signatures too.
SIGNED_SCHEMA1 = SCHEMA1[:-1] + b', "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": "e30"}]}'


class Registry(http.server.BaseHTTPRequestHandler):
    """Serves MANIFEST under every tag in `tags`; `behaviour` says how it misbehaves."""

    tags: dict = {}
    behaviour: set = set()
    requests: list = []

    def log_message(self, *args):
        pass

    def _answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _manifest(self):
        self.requests.append((self.command, self.path))
        if "bearer" in self.behaviour and not self.headers.get("Authorization"):
            realm = "http://127.0.0.1:%d/token" % self.server.server_address[1]
            return self._answer(401, b"{}", {"Www-Authenticate": 'Bearer realm="%s",service="r"' % realm})
        tag = self.path.rpartition("/")[2]
        if "schema1_at_latest" in self.behaviour and tag in ("latest", SCHEMA1_DIGEST):
            body = SIGNED_SCHEMA1 if "signed" in self.behaviour else SCHEMA1
            return self._answer(200, body, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws",
                                            "Docker-Content-Digest": SCHEMA1_DIGEST})
        if tag not in self.tags and tag != DIGEST:
            return self._answer(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
        headers = {"Content-Type": OCI_MANIFEST}
        if "head_without_digest" not in self.behaviour:
            headers["Docker-Content-Digest"] = DIGEST
        return self._answer(200, MANIFEST, headers)

    do_HEAD = do_GET = _manifest

    def do_PUT(self):
        self.requests.append((self.command, self.path))
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stored = hashlib.sha256(body + (b" " if "put_converts" in self.behaviour else b"")).hexdigest()
        self.tags[self.path.rpartition("/")[2]] = stored
        self._answer(201, b"", {"Docker-Content-Digest": "sha256:" + stored})

    def token(self):
        self._answer(200, b"<html>sign in</html>", {"Content-Type": "text/html"})


class _Dispatch(Registry):
    def do_GET(self):
        if self.path.startswith("/token"):
            return self.token()
        return self._manifest()


@pytest.fixture
def hostile_registry():
    def start(*behaviour, tags=()):
        _Dispatch.tags, _Dispatch.behaviour, _Dispatch.requests = {t: DIGEST for t in tags}, set(behaviour), []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dispatch)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return RegistryClient("http", "127.0.0.1:%d" % server.server_address[1], credentials=("user", "s3cret"),
                              timeout=5), _Dispatch.requests
    servers = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_tag_a_head_names_without_a_digest_header_is_not_put_again(hostile_registry):
    registry, requests = hostile_registry("head_without_digest", tags=("1.0-1",))
    action = BuildTagger(None, None, None).move(registry, "app", "1.0-1", "primary", DIGEST, OCI_MANIFEST, MANIFEST, "")
    assert action == (UNCHANGED, DIGEST)
    assert registry.writes == 0 and not [r for r in requests if r[0] == "PUT"], requests


def test_a_put_the_registry_stores_as_another_manifest_fails_naming_both_digests(hostile_registry):
    registry, _requests = hostile_registry("put_converts")
    with pytest.raises(OsbsFlowError) as failure:
        BuildTagger(None, None, None).move(registry, "app", "latest", "floating", DIGEST, OCI_MANIFEST, MANIFEST, "")
    assert "stored tag app:latest as sha256:" in str(failure.value) and DIGEST in str(failure.value)


def test_a_put_stored_as_sent_is_moved(hostile_registry):
    registry, _requests = hostile_registry()
    action = BuildTagger(None, None, None).move(registry, "app", "latest", "floating", DIGEST, OCI_MANIFEST, MANIFEST, "")
    assert action == (MOVED, None) and registry.writes == 1


def test_a_token_service_answering_html_is_a_clear_error_without_the_password(hostile_registry):
    registry, _requests = hostile_registry("bearer", tags=("latest",))
    with pytest.raises(OsbsFlowError) as failure:
        registry.tag_digest("app", "latest")
    assert "token service" in str(failure.value) and "no JSON object" in str(failure.value)
    assert "s3cret" not in str(failure.value)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_floating_tag_on_an_osbs_era_schema1_image_is_moved_by_its_created_time(hostile_registry, signed):
    registry, _requests = hostile_registry("schema1_at_latest", *(["signed"] if signed else []))
    action = BuildTagger(None, None, None).move(registry, "app", "latest", "floating", DIGEST, OCI_MANIFEST, MANIFEST,
                                                "2026-12-04T20:00:00Z")
    assert action == (MOVED, SCHEMA1_DIGEST) and registry.writes == 1
    # And one created later than this build keeps it, as any image does.
    tagger = BuildTagger(None, None, None)
    assert tagger.move(registry, "app", "latest", "floating", DIGEST, OCI_MANIFEST, MANIFEST, "2016-01-01T00:00:00Z")[0] == "kept"


def test_a_signed_schema1_body_is_still_checked_where_it_could_be_put(hostile_registry):
    registry, _requests = hostile_registry("schema1_at_latest", "signed")
    with pytest.raises(OsbsFlowError) as failure:
        registry.manifest("app", SCHEMA1_DIGEST)
    assert "whose content has another digest" in str(failure.value)


class _Dripping(http.server.BaseHTTPRequestHandler):
    """Answers a manifest GET one byte every 0.3 s (each read within any per-read timeout), or a body too big."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        big = self.path.endswith("/big")
        body = b"{" + b" " * (5 * 1024 * 1024 if big else 40) + b"}"
        self.send_response(200)
        self.send_header("Content-Type", OCI_MANIFEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if big:
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass  # the client gave up, as it should


@pytest.fixture
def dripping_registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield RegistryClient("http", "127.0.0.1:%d" % server.server_address[1], timeout=1)
    server.shutdown()
    server.server_close()


def test_a_registry_dripping_its_answer_is_cut_at_the_timeout(dripping_registry):
    started = time.monotonic()
    with pytest.raises(OsbsFlowError) as failure:
        dripping_registry.manifest("app", "latest")
    assert time.monotonic() - started < 3, "the 1 s timeout held a 12 s answer for %.1f s" % (time.monotonic() - started)
    assert "did not answer" in str(failure.value) and "within 1 s" in str(failure.value)


def test_a_manifest_bigger_than_registries_allow_is_refused_unread(dripping_registry):
    with pytest.raises(OsbsFlowError) as failure:
        dripping_registry.manifest("app", "big")
    assert "bytes" in str(failure.value) and "larger than" in str(failure.value)


FUTURE_CONFIG = json.dumps({"created": "2099-01-01T00:00:00Z", "config": {"Labels": {}}}).encode()
FUTURE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                              "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(FUTURE_CONFIG),
                                         "digest": "sha256:" + hashlib.sha256(FUTURE_CONFIG).hexdigest()}}).encode()


class _Future(_Dispatch):
    """`latest` names an image whose configuration says it was made in 2099 (a foreign push can say anything);
    `forged` serves a configuration whose bytes are not those its digest names."""

    def do_GET(self):
        if "/blobs/" in self.path:
            body = FUTURE_CONFIG.replace(b"2099", b"2098") if "forged" in self.behaviour else FUTURE_CONFIG
            return self._answer(200, body, {"Content-Type": "application/octet-stream"})
        if self.path.endswith("/latest") or self.path.endswith(hashlib.sha256(FUTURE_MANIFEST).hexdigest()):
            return self._answer(200, FUTURE_MANIFEST, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest":
                                                       "sha256:" + hashlib.sha256(FUTURE_MANIFEST).hexdigest()})
        return self._manifest()

    do_HEAD = do_GET


@pytest.fixture
def future_registry():
    def start(*behaviour):
        _Future.tags, _Future.behaviour, _Future.requests = {}, set(behaviour), []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Future)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return RegistryClient("http", "127.0.0.1:%d" % server.server_address[1], timeout=5)
    servers = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_image_claiming_to_be_made_in_the_future_does_not_keep_latest(future_registry):
    registry = future_registry()
    tagger = BuildTagger(None, None, None)
    action = tagger.move(registry, "app", "latest", "floating", DIGEST, OCI_MANIFEST, MANIFEST, "2026-12-04T20:00:00Z")
    assert action[0] == MOVED and registry.writes == 1, tagger.warnings
    assert "2099-01-01T00:00:00Z" in " ".join(tagger.warnings) and "future" in " ".join(tagger.warnings)


def test_a_configuration_whose_bytes_are_not_its_digest_is_refused(future_registry):
    registry = future_registry("forged")
    with pytest.raises(OsbsFlowError) as failure:
        registry.config("app", json.loads(FUTURE_MANIFEST))
    assert "another digest" in str(failure.value)
