"""The integrated registry (real docker-registry, TLS + htpasswd), the engine PKI and the v2 client."""
import base64
import json
import os
import stat
import subprocess
import sys
import threading

import pytest
import requests
from cryptography import x509

from osbs_local import registry_client
from osbs_local.executor.base_image import build_busybox_base
from osbs_local.services.pki import ensure_pki
from osbs_local.services.registry import Registry, RegistryStartError, free_port


@pytest.fixture(scope="module")
def pushed_image(registry, tmp_path_factory):
    """A busybox image built from scratch and pushed as base/busybox:latest; returns buildah's digest."""
    storage = tmp_path_factory.mktemp("storage")
    return build_busybox_base(
        f"{registry.host}/base/busybox:latest", storage_dir=storage,
        auth_file=registry.auth_file, cert_dir=registry.cert_dir / registry.host,
    )


def skopeo_digest(registry, reference):
    out = subprocess.run(
        ["skopeo", "inspect", "--cert-dir", str(registry.cert_dir / registry.host),
         "--creds", f"{registry.username}:{registry.password}", f"docker://{registry.host}/{reference}"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["Digest"]


# -- PKI -------------------------------------------------------------------------------------------
def test_pki_is_a_ca_with_a_loopback_server_cert_and_private_keys(tmp_path):
    paths = ensure_pki(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
    server = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    server.verify_directly_issued_by(ca)
    subprocess.run(["openssl", "verify", "-CAfile", paths["ca_cert"], paths["cert"]], check=True, capture_output=True)
    for key in ("ca_key", "key"):
        assert stat.S_IMODE(paths[key].stat().st_mode) == 0o600


def test_pki_is_idempotent_and_remakes_a_server_cert_from_another_ca(tmp_path):
    first = ensure_pki(tmp_path / "pki")
    before = {name: path.read_bytes() for name, path in first.items()}
    second = ensure_pki(tmp_path / "pki")
    assert {name: path.read_bytes() for name, path in second.items()} == before
    other = ensure_pki(tmp_path / "other")
    second["cert"].write_bytes(other["cert"].read_bytes())
    third = ensure_pki(tmp_path / "pki")
    assert third["ca_cert"].read_bytes() == before["ca_cert"]
    assert third["cert"].read_bytes() not in (before["cert"], other["cert"].read_bytes())


# -- registry process ----------------------------------------------------------------------------
def test_registry_asks_for_credentials_over_tls(registry):
    anonymous = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_file), timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["Www-Authenticate"].startswith("Basic")
    wrong = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_file), auth=(registry.username, "wrong"), timeout=5)
    assert wrong.status_code == 401
    right = requests.get(f"{registry.url}/v2/", verify=str(registry.ca_file),
                         auth=(registry.username, registry.password), timeout=5)
    assert right.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        session = requests.Session()
        session.trust_env = False  # the machine-wide CA bundle must not decide this
        session.get(f"{registry.url}/v2/", verify=True, timeout=5)


def test_registry_client_files(registry):
    auth = json.loads(registry.auth_file.read_text())
    assert base64.b64decode(auth["auths"][registry.host]["auth"]).decode() == f"{registry.username}:{registry.password}"
    assert stat.S_IMODE(registry.auth_file.stat().st_mode) == 0o600
    assert (registry.cert_dir / registry.host / "ca.crt").read_bytes() == registry.ca_file.read_bytes()
    config_text = (registry.dir / "config.yml").read_text()
    assert registry.password not in config_text and "delete" in config_text
    assert registry.password not in (registry.dir / "htpasswd").read_text()
    assert (registry.dir / "htpasswd").read_text().startswith(f"{registry.username}:$2")
    assert "GET /v2/" in registry.log_file.read_text()


def test_registry_restart_keeps_credentials_and_a_second_start_reuses_the_process(tmp_path):
    pki = ensure_pki(tmp_path / "pki")
    port = free_port()
    first = Registry(tmp_path, port, pki)
    first.start()
    try:
        password, pid = first.password, first.process.pid
        again = Registry(tmp_path, port, pki)
        again.start()  # idempotent: ours already answers
        assert again.process is None and again.running and again.password == password
        again.stop()  # stops by the pid file, as `down` from another process would
        assert not first.running
        first.start()
        assert first.process.pid != pid and first.password == password and first.answers()
    finally:
        first.stop()


def test_registry_start_failure_reports_the_log(tmp_path, registry):
    busy = Registry(tmp_path, registry.port, ensure_pki(tmp_path / "pki"))  # port taken by the running one
    with pytest.raises(RegistryStartError, match="address already in use"):
        busy.start()
    assert not busy.running


# -- v2 client -------------------------------------------------------------------------------------
def test_inspect_after_push_gives_the_digest_skopeo_reports(registry, pushed_image):
    client = registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file))
    info = client.inspect("base/busybox", "latest")
    assert info["digest"] == pushed_image == skopeo_digest(registry, "base/busybox:latest")
    assert info["architecture"] == "amd64" and info["os"] == "linux"
    assert info["config"]["config"]["Cmd"] == ["/bin/sh"]
    assert info["created"] and info["layers"] and info["size"] == sum(layer["size"] for layer in info["layers"])
    by_digest = client.inspect("base/busybox", pushed_image)
    assert by_digest["digest"] == pushed_image


def test_inspect_of_a_manifest_list_reports_the_amd64_child_or_with_keep_list_the_list(registry, pushed_image, tmp_path):
    # OpenShift's Legacy import (importer.go importManifest/manifestFromManifestList) names the image by the
    # digest of the platform's child; PreserveOriginal (keep_list) by the list's digest (manifestListToImage).
    # Build an OCI index whose entries are the real amd64 image, once labelled s390x and once amd64.
    ca, creds = str(registry.ca_file), (registry.username, registry.password)
    base = f"{registry.url}/v2/base/busybox"
    image = requests.get(f"{base}/manifests/{pushed_image}", auth=creds, verify=ca,
                         headers={"Accept": registry_client.ACCEPT}, timeout=5)
    manifest = image.json()
    index = {
        "schemaVersion": 2, "mediaType": registry_client.OCI_INDEX,
        "manifests": [
            {"mediaType": manifest["mediaType"], "digest": pushed_image, "size": len(image.content),
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": manifest["mediaType"], "digest": pushed_image, "size": len(image.content),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    body = json.dumps(index).encode()
    put = requests.put(f"{base}/manifests/multi", data=body, auth=creds, verify=ca,
                       headers={"Content-Type": registry_client.OCI_INDEX}, timeout=5)
    assert put.status_code == 201, put.text
    list_digest = put.headers["Docker-Content-Digest"]
    assert list_digest == skopeo_digest(registry, "base/busybox:multi")
    client = registry_client.RegistryClient(registry.host, registry.dockercfg(), ca)
    info = client.inspect("base/busybox", "multi")
    assert info["digest"] == pushed_image and info["list_digest"] == list_digest
    assert info["media_type"] == manifest["mediaType"] and info["architecture"] == "amd64"
    assert info["config"]["config"]["Cmd"] == ["/bin/sh"] and info["layers"]
    kept = client.inspect("base/busybox", "multi", keep_list=True)
    assert kept["digest"] == kept["list_digest"] == list_digest and kept["media_type"] == registry_client.OCI_INDEX
    assert [(m["digest"], m["architecture"], m["os"]) for m in kept["manifests"]] == [
        (pushed_image, "s390x", "linux"), (pushed_image, "amd64", "linux")]
    assert kept["layers"] == [] and kept["config"] == {}


@pytest.mark.parametrize("auths, words", [
    (None, ["requires authentication", "no credentials"]),
    ("wrong", ["refused the credentials", "'osbs'"]),
])
def test_inspect_unauthorised(registry, pushed_image, auths, words):
    if auths == "wrong":
        auths = {f"https://{registry.host}/v1/": {"username": "osbs", "password": "not-it"}}
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.RegistryClient(registry.host, auths, str(registry.ca_file)).inspect("base/busybox", "latest")
    assert (caught.value.code, caught.value.reason) == (401, "Unauthorized")
    for word in words:
        assert word in caught.value.message
    assert registry.host in caught.value.message


@pytest.mark.parametrize("repository, reference, code, reason", [
    ("base/missing", "latest", 404, "NotFound"),
    ("base/busybox", "no-such-tag", 404, "NotFound"),
    ("base/busybox", "sha256:" + "0" * 64, 404, "NotFound"),
    ("Base/Upper", "latest", 400, "BadRequest"),
])
def test_inspect_errors(registry, pushed_image, repository, reference, code, reason):
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.RegistryClient(registry.host, registry.dockercfg(), str(registry.ca_file)).inspect(repository, reference)
    assert (caught.value.code, caught.value.reason) == (code, reason)
    assert repository in caught.value.message


def test_inspect_without_the_ca_fails_on_tls_and_insecure_skips_verification(registry, pushed_image):
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.RegistryClient(registry.host, registry.dockercfg()).inspect("base/busybox", "latest")
    assert caught.value.code == 500 and "TLS verification" in caught.value.message
    info = registry_client.RegistryClient(registry.host, registry.dockercfg(), insecure=True).inspect("base/busybox", "latest")
    assert info["digest"] == pushed_image


def test_inspect_unreachable_registry():
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.RegistryClient(f"127.0.0.1:{free_port()}").inspect("base/busybox", "latest")
    assert caught.value.code == 500 and "cannot reach registry" in caught.value.message


def test_insecure_client_falls_back_to_plain_http(tmp_path, pushed_image, registry):
    """A registry without TLS (as `importPolicy.insecure` allows): the client retries over http."""
    port = free_port()
    (tmp_path / "config.yml").write_text(json.dumps({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    process = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-cert-dir", str(registry.cert_dir / registry.host),
             "--src-creds", f"{registry.username}:{registry.password}", "--dest-tls-verify=false",
             f"docker://{registry.host}/base/busybox:latest", f"docker://127.0.0.1:{port}/plain/busybox:latest"],
            check=True, capture_output=True, timeout=60,
        )
        info = registry_client.RegistryClient(f"127.0.0.1:{port}", insecure=True).inspect("plain/busybox", "latest")
        assert info["digest"].startswith("sha256:") and info["architecture"] == "amd64"
    finally:
        process.terminate()
        process.wait(10)


def test_bearer_token_challenge(registry, pushed_image):
    """A token-auth registry in front of ours: a tiny local token service proves the Bearer flow.

    docker-registry's own token auth needs a signing key set-up out of scope here, so this uses a
    local HTTP proxy that answers the challenge and forwards to the real registry with Basic auth.
    """
    import http.server

    token = "t0ken"
    upstream_auth = (registry.username, registry.password)
    seen_token_requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/token"):
                seen_token_requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps({"token": token}).encode()
                self.send_response(200)
            elif self.headers.get("Authorization") != f"Bearer {token}":
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}'
                self.send_response(401)
                self.send_header("Www-Authenticate",
                                 f'Bearer realm="http://127.0.0.1:{port}/token",service="proxy",scope="repository:base/busybox:pull"')
            else:
                upstream = requests.get(f"{registry.url}{self.path}", auth=upstream_auth, verify=str(registry.ca_file),
                                        headers={"Accept": self.headers.get("Accept", "*/*")}, timeout=5)
                body = upstream.content
                self.send_response(upstream.status_code)
                for header in ("Content-Type", "Docker-Content-Digest"):
                    if header in upstream.headers:
                        self.send_header(header, upstream.headers[header])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        auths = {f"127.0.0.1:{port}": {"auth": base64.b64encode(b"me:secret").decode()}}
        info = registry_client.RegistryClient(f"127.0.0.1:{port}", auths, insecure=True).inspect("base/busybox", "latest")
        assert info["digest"] == pushed_image
        path, authorization = seen_token_requests[0]
        assert "scope=repository%3Abase%2Fbusybox%3Apull" in path and "service=proxy" in path
        assert authorization == "Basic " + base64.b64encode(b"me:secret").decode()
    finally:
        server.shutdown()
        server.server_close()


# -- secrets ---------------------------------------------------------------------------------------
def _b64(data) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_auths_from_dockercfg_and_dockerconfigjson_secrets():
    entry = {"auth": base64.b64encode(b"u:p:with:colons").decode()}
    dockercfg = {"type": "kubernetes.io/dockercfg", "data": {".dockercfg": _b64({"r.example:5000": entry})}}
    dockerconfigjson = {"type": "kubernetes.io/dockerconfigjson",
                        "data": {".dockerconfigjson": _b64({"auths": {"https://r.example:5000/v1/": entry}})}}
    string_data = {"type": "kubernetes.io/dockerconfigjson",
                   "stringData": {".dockerconfigjson": json.dumps({"auths": {"r.example:5000": {"username": "u", "password": "p"}}})}}
    opaque = {"type": "Opaque", "data": {"password": base64.b64encode(b"x").decode()}}
    assert registry_client.auths_from_secret(dockercfg) == {"r.example:5000": entry}
    assert registry_client.credentials_for(registry_client.auths_from_secret(dockercfg), "r.example:5000") == ("u", "p:with:colons")
    assert registry_client.credentials_for(registry_client.auths_from_secret(dockerconfigjson), "r.example:5000") == ("u", "p:with:colons")
    assert registry_client.credentials_for(registry_client.auths_from_secret(string_data), "r.example:5000") == ("u", "p")
    assert registry_client.credentials_for(registry_client.auths_from_secret(dockercfg), "other:5000") is None
    assert registry_client.auths_from_secret(opaque) == {}
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.auths_from_secret({"metadata": {"name": "broken"}, "type": "kubernetes.io/dockercfg",
                              "data": {".dockercfg": base64.b64encode(b"{not json").decode()}})
    assert caught.value.code == 400 and "broken" in caught.value.message


def test_split_image_reference():
    assert registry_client.split_image_reference("127.0.0.1:5000/a/b:1") == ("127.0.0.1:5000", "a/b", "1")
    assert registry_client.split_image_reference("127.0.0.1:5000/a/b@sha256:ab") == ("127.0.0.1:5000", "a/b", "sha256:ab")
    assert registry_client.split_image_reference("localhost/b") == ("localhost", "b", "latest")
    assert registry_client.split_image_reference("busybox") == ("docker.io", "library/busybox", "latest")
    assert registry_client.split_image_reference("quay.io/x/y:z") == ("quay.io", "x/y", "z")


def test_baseimage_command_line_pushes_with_the_engine_env(registry, tmp_path):
    env = dict(os.environ, OSBS_LOCAL_REGISTRY=registry.host, REGISTRY_AUTH_FILE=str(registry.auth_file))
    out = subprocess.run([sys.executable, "-m", "osbs_local.executor.base_image", "demo/busybox:1",
                          "--storage-dir", str(tmp_path / "storage")],
                         env=env, capture_output=True, text=True, check=True)
    reference = out.stdout.strip()
    assert reference.startswith(f"{registry.host}/demo/busybox@sha256:")
    assert reference.split("@")[1] == skopeo_digest(registry, "demo/busybox:1")


def test_registry_allows_deleting_manifests(registry, tmp_path):
    storage = tmp_path / "storage"
    digest = build_busybox_base(f"{registry.host}/scratchpad/busybox:gone", storage_dir=storage,
                                          auth_file=registry.auth_file, cert_dir=registry.cert_dir / registry.host)
    creds, ca = (registry.username, registry.password), str(registry.ca_file)
    deleted = requests.delete(f"{registry.url}/v2/scratchpad/busybox/manifests/{digest}", auth=creds, verify=ca, timeout=5)
    assert deleted.status_code == 202  # storage.delete.enabled; 405 otherwise
    with pytest.raises(registry_client.RegistryError) as caught:
        registry_client.RegistryClient(registry.host, registry.dockercfg(), ca).inspect("scratchpad/busybox", digest)
    assert caught.value.code == 404
