"""A small Docker Registry HTTP API v2 client: what ImageStreamImport and the builders need.

`RegistryClient.inspect(repository, reference)` returns what an ImageStreamImport records: for a
manifest list (or OCI index), the entry of this machine's platform (else linux/amd64, else the first),
named by its own digest, as OpenShift's Legacy import mode does; with keep_list, the list itself
(PreserveOriginal). Credentials come in the dockercfg
shape ({"host": {"auth": base64("user:pass")}} or {"host": {"username", "password"}}), the way
kubernetes.io/dockercfg and kubernetes.io/dockerconfigjson secrets carry them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import platform
import re
import warnings
from pathlib import Path

import requests
import urllib3

from .private_file import write_private

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
LIST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
# Every type in one header: with only one, a registry answers 404 for OCI images or
# down-converts to schema 1 (with a different digest).
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST_V2))
# Go's names for the machine's architecture: OpenShift's importer prefers the apiserver's own GOOS/GOARCH.
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}
OWN_PLATFORM = ("linux", _GO_ARCH.get(platform.machine(), platform.machine()))
FALLBACK_PLATFORM = ("linux", "amd64")
TIMEOUT = 30

_REASONS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 500: "InternalError"}
_REPOSITORY_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")


class RegistryError(Exception):
    """A registry request failed; code is 400/401/404/500, reason the matching Status reason."""

    def __init__(self, code: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason or _REASONS.get(code, "InternalError")
        self.message = message

    def __str__(self) -> str:
        return self.message


# -- credentials ---------------------------------------------------------------------------------
def _normalise_registry_key(key: str) -> str:
    """'https://host:5000/v1/' -> 'host:5000'; docker.io aliases -> 'docker.io'."""
    key = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0]
    if key in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return key


def _decode(value: str) -> str:
    return base64.b64decode(value).decode()


def auths_from_secret(secret: dict) -> dict:
    """The dockercfg-shaped auths of a kubernetes.io/dockercfg or dockerconfigjson Secret object.

    Other secret types give {} (OpenShift also ignores them when looking for pull credentials).
    """
    data = dict(secret.get("data") or {})
    string_data = secret.get("stringData") or {}
    secret_type = secret.get("type") or ""
    for key in (".dockercfg", ".dockerconfigjson"):
        if key in string_data:
            data[key] = base64.b64encode(string_data[key].encode()).decode()
    try:
        if secret_type == "kubernetes.io/dockerconfigjson" or (".dockerconfigjson" in data and ".dockercfg" not in data):
            if ".dockerconfigjson" not in data:
                return {}
            return dict(json.loads(_decode(data[".dockerconfigjson"])).get("auths") or {})
        if ".dockercfg" in data:
            parsed = json.loads(_decode(data[".dockercfg"]))
            # Some tools wrap a .dockercfg in {"auths": ...}; accept both.
            return dict(parsed.get("auths", parsed)) if isinstance(parsed, dict) else {}
    except (ValueError, TypeError, AttributeError):
        name = (secret.get("metadata") or {}).get("name", "?")
        raise RegistryError(400, f"secret {name!r} does not hold valid docker config JSON")
    return {}


def credentials_for(auths: dict | None, host: str) -> tuple[str, str] | None:
    """(username, password) for host from dockercfg-shaped auths, or None."""
    wanted = _normalise_registry_key(host)
    for key, entry in (auths or {}).items():
        if _normalise_registry_key(key) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password") is not None:
            return entry["username"], entry["password"]
        if entry.get("auth"):
            try:
                user, _, password = _decode(entry["auth"]).partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            return user, password
    return None


def write_auth_file(auths: dict | None, path: Path) -> Path:
    """Write a containers auth file (0600) for buildah/skopeo --authfile from dockercfg-shaped auths."""
    entries = {}
    for key in auths or {}:
        creds = credentials_for(auths, key)
        if creds:
            entries[_normalise_registry_key(key)] = {
                "auth": base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            }
    return write_private(path, json.dumps({"auths": entries}))


def split_image_reference(reference: str) -> tuple[str, str, str]:
    """'host:5000/ns/name:tag' or '...@sha256:..' -> (host, repository, tag-or-digest).

    A reference without a registry host is Docker Hub's (library/ prefix for single names).
    """
    name, reference_part = reference, "latest"
    if "@" in name:
        name, reference_part = name.split("@", 1)
    else:
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, reference_part = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = "docker.io", name
        if "/" not in repository:
            repository = f"library/{repository}"
    return host, repository, reference_part


# -- the client ----------------------------------------------------------------------------------
class RegistryClient:
    def __init__(self, host: str, auths: dict | None = None, ca_file: str | None = None,
                 insecure: bool = False, timeout: float = TIMEOUT):
        self.host = _normalise_registry_key(host)
        self.api_host = "registry-1.docker.io" if self.host == "docker.io" else self.host
        self.credentials = credentials_for(auths, self.host)
        self.ca_file = str(ca_file) if ca_file else None
        self.insecure = insecure
        self.timeout = timeout
        self.session = requests.Session()
        # This machine (and many CI hosts) set REQUESTS_CA_BUNDLE, which would override verify=.
        self.session.trust_env = False
        self.scheme = "https"
        self._authorization: str | None = None

    # -- transport -------------------------------------------------------------------------------
    @property
    def _verify(self):
        if self.insecure:
            return False
        return self.ca_file if self.ca_file else True

    def _url(self, path: str) -> str:
        return f"{self.scheme}://{self.api_host}{path}"

    def _send(self, method: str, path: str, headers: dict, stream: bool = False) -> requests.Response:
        if self._authorization:
            headers = dict(headers, Authorization=self._authorization)
        try:
            with warnings.catch_warnings():
                # insecure was asked for explicitly; urllib3's warning per request would only be noise.
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                return self.session.request(method, self._url(path), headers=headers, verify=self._verify,
                                            timeout=self.timeout, stream=stream)
        except requests.exceptions.SSLError as exc:
            if self.insecure and self.scheme == "https":
                # An insecure registry may speak plain http only (as OpenShift's importer allows).
                self.scheme = "http"
                return self._send(method, path, headers, stream)
            raise RegistryError(
                500,
                f"TLS verification of registry {self.host} failed ({_short(exc)}); "
                + (f"its certificate is not signed by the CA in {self.ca_file}" if self.ca_file else
                   "give the registry's CA certificate or mark the import insecure"),
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise RegistryError(
                500, f"cannot reach registry {self.host} ({_short(exc)}); check that it runs and the address is right"
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise RegistryError(500, f"registry {self.host} did not answer within {self.timeout:.0f}s") from exc

    def _request(self, method: str, path: str, headers: dict, scope: str, stream: bool = False) -> requests.Response:
        response = self._send(method, path, headers, stream)
        if response.status_code == 401 and self._authenticate(response, scope):
            response = self._send(method, path, headers, stream)
        return response

    def _authenticate(self, challenge_response: requests.Response, scope: str) -> bool:
        """Answer a 401 challenge (Basic or Bearer); False when there is nothing new to try."""
        challenge = challenge_response.headers.get("Www-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if scheme.lower() == "basic":
            if not self.credentials or (self._authorization or "").startswith("Basic "):
                return False
            token = base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
            self._authorization = f"Basic {token}"
            return True
        if scheme.lower() == "bearer" and params.get("realm"):
            query = {"service": params.get("service", "")} if params.get("service") else {}
            query["scope"] = params.get("scope") or scope
            try:
                token_response = self.session.get(
                    params["realm"], params=query, auth=self.credentials, verify=self._verify, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise RegistryError(500, f"cannot get a token for registry {self.host} from {params['realm']}: {_short(exc)}") from exc
            if token_response.status_code in (401, 403):
                raise RegistryError(401, self._unauthorised_message(scope))
            if token_response.status_code != 200:
                raise RegistryError(500, f"token service {params['realm']} answered {token_response.status_code}")
            body = token_response.json()
            token = body.get("token") or body.get("access_token")
            if not token or self._authorization == f"Bearer {token}":
                return False
            self._authorization = f"Bearer {token}"
            return True
        return False

    def _unauthorised_message(self, scope: str) -> str:
        repository = scope.split(":")[1] if scope.count(":") >= 2 else scope
        if self.credentials:
            return (f"registry {self.host} refused the credentials of user {self.credentials[0]!r} for "
                    f"{repository}; check the pull secret for {self.host}")
        return (f"registry {self.host} requires authentication for {repository} and no credentials for "
                f"{self.host} were given; add a dockercfg secret for it")

    def _raise_for(self, response: requests.Response, repository: str, reference: str, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        scope = f"repository:{repository}:pull"
        detail = _registry_error_detail(response)
        if status in (401, 403):
            raise RegistryError(401, self._unauthorised_message(scope) + (f" ({detail})" if detail else ""))
        if status == 404:
            where = f"{self.host}/{repository}"
            raise RegistryError(404, f"{what} {where}{_sep(reference)}{reference} not found"
                                + (f" ({detail})" if detail else "") + "; check the repository name and tag")
        if status == 400:
            raise RegistryError(400, f"registry {self.host} rejected the request for {repository}{_sep(reference)}{reference}: "
                                + (detail or response.reason))
        raise RegistryError(500, f"registry {self.host} answered {status} {response.reason} for "
                            f"{repository}{_sep(reference)}{reference}" + (f": {detail}" if detail else ""))

    # -- API -------------------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> tuple[dict, str, str, bytes]:
        """(manifest, media type, digest, raw body) as the registry serves it."""
        _validate(repository, reference)
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}", {"Accept": ACCEPT},
                                 f"repository:{repository}:pull")
        self._raise_for(response, repository, reference, "image")
        body = response.content
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise RegistryError(500, f"registry {self.host} returned a manifest for {repository} that is not JSON") from exc
        media_type = manifest.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0]
        digest = response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        return manifest, media_type, digest, body

    def get_blob(self, repository: str, digest: str) -> bytes:
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", {}, f"repository:{repository}:pull")
        self._raise_for(response, repository, digest, "blob of")
        return response.content

    def ping(self) -> None:
        """Check that the registry answers and accepts our credentials (raises RegistryError otherwise)."""
        response = self._request("GET", "/v2/", {}, "")
        if response.status_code in (401, 403):
            raise RegistryError(401, self._unauthorised_message("registry:catalog:*"))
        if response.status_code >= 400:
            raise RegistryError(500, f"registry {self.host} answered {response.status_code} on /v2/")

    def inspect(self, repository: str, reference: str, keep_list: bool = False) -> dict:
        """What an import records of repository:reference, in OpenShift's import modes.

        A manifest list (or OCI index) is replaced by the manifest of one platform (this machine's, else
        linux/amd64, else the first entry) and `digest` is that child's: OpenShift's Legacy mode. With keep_list (PreserveOriginal)
        the list itself is returned, `digest` is the list's and `manifests` describes its children; a list
        carries no config or layers. `list_digest` is the list's digest whenever there was one.
        """
        manifest, media_type, digest, body = self.get_manifest(repository, reference)
        list_digest = None
        if media_type in LIST_TYPES:
            list_digest = digest
            if keep_list:
                return self._list_info(manifest, media_type, digest, body)
            entry = _pick_platform(manifest.get("manifests") or [])
            if entry is None:
                raise RegistryError(500, f"manifest list {self.host}/{repository}{_sep(reference)}{reference} has no entries")
            manifest, media_type, digest, body = self.get_manifest(repository, entry["digest"])
        if media_type in (DOCKER_MANIFEST_V1_SIGNED, DOCKER_MANIFEST_V1) or manifest.get("schemaVersion") == 1:
            config = json.loads((manifest.get("history") or [{}])[0].get("v1Compatibility") or "{}")
            layers = [{"digest": layer.get("blobSum"), "size": 0, "mediaType": ""}
                      for layer in reversed(manifest.get("fsLayers") or [])]
        else:
            config_descriptor = manifest.get("config") or {}
            if not config_descriptor.get("digest"):
                raise RegistryError(500, f"manifest of {self.host}/{repository}{_sep(reference)}{reference} has no config")
            try:
                config = json.loads(self.get_blob(repository, config_descriptor["digest"]))
            except ValueError as exc:
                raise RegistryError(500, f"config blob of {self.host}/{repository} is not JSON") from exc
            layers = [{"digest": layer.get("digest"), "size": int(layer.get("size") or 0),
                       "mediaType": layer.get("mediaType", "")} for layer in manifest.get("layers") or []]
        return dict(
            digest=digest,
            list_digest=list_digest,
            media_type=media_type,
            config=config,
            layers=layers,
            size=sum(layer["size"] for layer in layers),
            created=config.get("created"),
            architecture=config.get("architecture"),
            os=config.get("os"),
            manifest=manifest,
            manifests=[],
            raw_manifest=body.decode(errors="replace"),
        )

    @staticmethod
    def _list_info(manifest: dict, media_type: str, digest: str, body: bytes) -> dict:
        children = [{
            "digest": entry.get("digest"),
            "mediaType": entry.get("mediaType", ""),
            "manifestSize": int(entry.get("size") or 0),
            "architecture": (entry.get("platform") or {}).get("architecture", ""),
            "os": (entry.get("platform") or {}).get("os", ""),
            "variant": (entry.get("platform") or {}).get("variant", ""),
        } for entry in manifest.get("manifests") or []]
        return dict(digest=digest, list_digest=digest, media_type=media_type, config={}, layers=[], size=0,
                    created=None, architecture=None, os=None, manifest=manifest, manifests=children,
                    raw_manifest=body.decode(errors="replace"))


def _pick_platform(entries: list) -> dict | None:
    """The entry OpenShift's manifestFromManifestList picks: its own platform, else linux/amd64, else the first."""
    for wanted in (OWN_PLATFORM, FALLBACK_PLATFORM):
        for entry in entries:
            entry_platform = entry.get("platform") or {}
            if (entry_platform.get("os"), entry_platform.get("architecture")) == wanted:
                return entry
    return entries[0] if entries else None


def _validate(repository: str, reference: str) -> None:
    if not _REPOSITORY_RE.match(repository or ""):
        raise RegistryError(400, f"invalid repository name {repository!r}: lower-case letters, digits and . _ - / only")
    if not (_TAG_RE.match(reference or "") or _DIGEST_RE.match(reference or "")):
        raise RegistryError(400, f"invalid tag or digest {reference!r} for {repository}")


def _sep(reference: str) -> str:
    return "@" if ":" in reference else ":"


def _registry_error_detail(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return ""
    return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict))


def _short(exc: Exception) -> str:
    text = str(exc)
    # urllib3 wraps the useful part in layers of repr; keep the innermost reason.
    match = re.search(r"\[SSL: [^\]]+\][^(')\"]*|Connection refused|Name or service not known|timed out", text)
    return match.group(0).strip() if match else text[:200]
