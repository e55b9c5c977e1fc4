# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker Registry HTTP API v2 calls the flow makes itself: read a manifest and its config, and put a
manifest under another tag (what a `skopeo copy` of an image within one repository does, without any layer).

Authentication answers the registry's challenge: Basic, or Bearer with a token from the realm it names
(docker distribution, Quay, OpenShift's integrated registry). Every request has a timeout; no credential is
ever part of a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import traceback

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

try:
    import requests
    from urllib3 import exceptions as urllib3_exceptions
except ImportError:
    requests = urllib3_exceptions = None
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    REQUESTS_IMPORT_ERROR = None

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LIST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
# All four in one header: a registry asked for fewer may answer 404 for an OCI image, or convert a
# manifest to schema 1 (another digest), and a tag moved with that would name another image.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST_V2))
DEFAULT_TIMEOUT = 30
# docker distribution refuses manifests over 4 MiB (maxManifestBodySize); configurations and errors are small too.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
# What a registry names a manifest by: a tag, or a digest (distribution/reference); nothing else reaches a URL.
_REFERENCE = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})\Z")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z")


class RegistryClient:
    """One registry, one repository's worth of calls; `writes` counts the manifest PUTs made."""

    def __init__(self, scheme, host, credentials=None, verify=True, timeout=DEFAULT_TIMEOUT):
        if requests is None:
            raise OsbsFlowError("talking to the registry needs the Python library requests: pip install requests")
        self.scheme = scheme
        self.host = host
        self.credentials = credentials  # (username, password) or None
        self.verify = verify
        self.timeout = timeout
        self.session = requests.Session()
        self._authorization = {}  # scope -> Authorization header value
        self.writes = 0

    # -- transport --------------------------------------------------------------------------------

    def _send(self, method, path, scope, headers=None, data=None):
        headers = dict(headers or {})
        if scope in self._authorization:
            headers["Authorization"] = self._authorization[scope]
        url = "%s://%s%s" % (self.scheme, self.host, path)
        deadline = time.monotonic() + self.timeout
        try:
            response = self.session.request(method, url, headers=headers, data=data, verify=self.verify,
                                            timeout=self.timeout, allow_redirects=method in ("GET", "HEAD"), stream=True)
            limit = MAX_MANIFEST_BYTES if "/manifests/" in path else MAX_BODY_BYTES
            return _read_within(response, deadline, limit, "registry %s (%s %s)" % (self.host, method, path))
        except (_TooSlow, urllib3_exceptions.ReadTimeoutError):
            raise OsbsFlowError("registry %s did not answer %s %s within %s s" % (self.host, method, path, self.timeout))
        except urllib3_exceptions.HTTPError as exc:  # a body cut short, a connection reset while reading it
            raise OsbsFlowError("cannot reach registry %s (%s %s): %s; check registry_uri and that the registry runs"
                                % (self.host, method, path, _short(exc)))
        except requests.exceptions.SSLError as exc:
            raise OsbsFlowError("TLS verification of registry %s failed (%s): give its CA certificate as registry_ca_cert, "
                                "or set registry_insecure for a registry without a trusted certificate" % (self.host, _short(exc)))
        except requests.exceptions.Timeout:
            raise OsbsFlowError("registry %s did not answer %s %s within %s s" % (self.host, method, path, self.timeout))
        except requests.exceptions.RequestException as exc:
            raise OsbsFlowError("cannot reach registry %s (%s %s): %s; check registry_uri and that the registry runs"
                                % (self.host, method, path, _short(exc)))

    @staticmethod
    def _path(repository, kind, reference):
        """`/v2/<repository>/<kind>/<reference>`, once both are what their grammar allows (they come from Builds,
        labels and files others wrote)."""
        if not _REPOSITORY.match(repository or "") or not _REFERENCE.match(reference or ""):
            raise OsbsFlowError("%r / %r is not a repository and a tag or digest a registry takes" % (repository, reference))
        return "/v2/%s/%s/%s" % (repository, kind, reference)

    def _request(self, method, path, scope, headers=None, data=None):
        response = self._send(method, path, scope, headers, data)
        if response.status_code == 401 and self._authenticate(response, scope):
            response = self._send(method, path, scope, headers, data)
        return response

    def _authenticate(self, response, scope):
        """Answer a 401 challenge; False when there is nothing new to try."""
        scheme, _sep, rest = response.headers.get("Www-Authenticate", "").partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if scheme.lower() == "basic":
            if not self.credentials or scope in self._authorization:
                return False
            pair = ("%s:%s" % self.credentials).encode("utf-8")
            self._authorization[scope] = "Basic " + base64.b64encode(pair).decode("ascii")
            return True
        if scheme.lower() == "bearer" and params.get("realm"):
            query = {"scope": scope}
            if params.get("service"):
                query["service"] = params["service"]
            where = "the token service %s of registry %s" % (params["realm"], self.host)
            try:
                answer = _read_within(
                    self.session.get(params["realm"], params=query, auth=self.credentials, verify=self.verify,
                                     timeout=self.timeout, stream=True),
                    time.monotonic() + self.timeout, MAX_BODY_BYTES, where)
            except (_TooSlow, urllib3_exceptions.ReadTimeoutError):
                raise OsbsFlowError("%s did not answer within %s s" % (where, self.timeout))
            except (requests.exceptions.RequestException, urllib3_exceptions.HTTPError) as exc:
                raise OsbsFlowError("cannot get a token for registry %s from %s: %s" % (self.host, params["realm"], _short(exc)))
            if answer.status_code != 200:
                raise OsbsFlowError(self._refused(scope, "its token service answered HTTP %s" % answer.status_code))
            try:
                body = answer.json() if answer.content else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise OsbsFlowError(self._refused(scope, "its token service %s answered with no JSON object" % params["realm"]))
            token = body.get("token") or body.get("access_token")
            if not token or self._authorization.get(scope) == "Bearer " + token:
                return False
            self._authorization[scope] = "Bearer " + token
            return True
        return False

    def _refused(self, scope, detail):
        who = "the credentials of user %r" % self.credentials[0] if self.credentials else "access without credentials"
        return ("registry %s refused %s for %s (%s): give credentials that may push there (registry_dockercfg_path)"
                % (self.host, who, scope, detail))

    def _check(self, response, scope, what):
        if response.status_code < 400:
            return response
        detail = _error_detail(response) or response.reason or ""
        if response.status_code in (401, 403):
            raise OsbsFlowError(self._refused(scope, "HTTP %s %s" % (response.status_code, detail)))
        raise OsbsFlowError("registry %s answered HTTP %s to %s: %s" % (self.host, response.status_code, what, detail))

    # -- the calls ---------------------------------------------------------------------------------

    def tag_digest(self, repository, tag):
        """The digest `repository:tag` names now (HEAD, by the registry's Docker-Content-Digest), or None."""
        scope = "repository:%s:pull" % repository
        response = self._request("HEAD", self._path(repository, "manifests", tag), scope, {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        self._check(response, scope, "HEAD of %s:%s" % (repository, tag))
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # The header is optional for a HEAD (distribution spec): without it the manifest's own bytes say which
        # image the tag names; taken for "no image", the tag would be put again by every rerun.
        return "sha256:" + hashlib.sha256(self.manifest(repository, tag)[1]).hexdigest()

    def manifest(self, repository, reference, signed_schema1=False):
        """(media type, raw body, parsed manifest) of `repository@reference`, as stored: the digest stays the same.

        With `signed_schema1`, a schema 1 manifest with signatures is taken without the body check: its digest
        covers the payload without the signatures (a JWS), which only a JWS parser can cut out. Such a manifest is
        only read (its creation time), never put under a tag.
        """
        scope = "repository:%s:pull" % repository
        response = self._check(
            self._request("GET", self._path(repository, "manifests", reference), scope, {"Accept": ACCEPT}),
            scope, "the manifest %s%s%s" % (repository, "@" if ":" in reference else ":", reference))
        body = response.content
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise OsbsFlowError("registry %s served a manifest for %s@%s that is not a JSON object" % (self.host, repository, reference))
        signed = signed_schema1 and parsed.get("schemaVersion") == 1 and bool(parsed.get("signatures"))
        if reference.startswith("sha256:") and not signed and "sha256:" + hashlib.sha256(body).hexdigest() != reference:
            raise OsbsFlowError("registry %s served a manifest for %s@%s whose content has another digest"
                                % (self.host, repository, reference))
        media_type = parsed.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0].strip()
        return media_type, body, parsed

    def config(self, repository, manifest):
        """The image configuration (labels, created, architecture) a single-image manifest names."""
        digest = (manifest.get("config") or {}).get("digest")
        if not digest:
            raise OsbsFlowError("the manifest in %s/%s names no image configuration" % (self.host, repository))
        scope = "repository:%s:pull" % repository
        response = self._check(self._request("GET", self._path(repository, "blobs", digest), scope), scope,
                               "the configuration blob %s of %s" % (digest, repository))
        if digest.startswith("sha256:") and "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
            raise OsbsFlowError("registry %s served the configuration blob %s of %s with another digest: its labels "
                                "(the NVR) cannot be trusted" % (self.host, digest, repository))
        try:
            config = json.loads(response.content)
        except ValueError:
            config = None
        if not isinstance(config, dict):
            raise OsbsFlowError("the configuration blob %s of %s/%s is not a JSON object" % (digest, self.host, repository))
        return config

    def put_manifest(self, repository, tag, media_type, body):
        """Put the manifest `body` under `tag`: one request, no layer moves (they are in the repository already)."""
        scope = "repository:%s:pull,push" % repository
        self.writes += 1
        response = self._request("PUT", self._path(repository, "manifests", tag), scope,
                                 {"Content-Type": media_type}, data=body)
        self._check(response, scope, "the PUT of tag %s:%s" % (repository, tag))
        # The tag must name the very manifest sent: a registry that stored something else (converted it, or
        # answered for another request) has given the tag to another image, which nothing may call done.
        sent = "sha256:" + hashlib.sha256(body).hexdigest()
        stored = response.headers.get("Docker-Content-Digest") or self.tag_digest(repository, tag)
        if stored != sent:
            raise OsbsFlowError("registry %s stored tag %s:%s as %s, not as the manifest sent (%s): the tag names "
                                "another image now; check the registry (does it convert manifests of type %s?) and "
                                "run again" % (self.host, repository, tag, stored, sent, media_type))
        return stored


class _TooSlow(Exception):
    pass


def _read_within(response, deadline, limit, what):
    """The response with its body read by `deadline` and at most `limit` bytes: requests' timeout bounds each
    socket read, so a registry sending a byte at a time could hold a call for ever, or fill memory."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise OsbsFlowError("%s answered %s bytes, larger than the %d a registry serves here: not read" % (what, declared, limit))
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1 (urllib3 2) returns what one socket read brings
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            response.close()
            raise _TooSlow()
        chunk = read(65536, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            response.close()
            raise OsbsFlowError("%s answered more than %d bytes, larger than a registry serves here: not read" % (what, limit))
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what requests' own `content` would hold, read under our bounds
    response._content_consumed = True
    return response


def _error_detail(response):
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return ""
    return "; ".join(("%s: %s" % (e.get("code", ""), e.get("message", ""))).strip(": ") for e in errors if isinstance(e, dict))


def _short(exc):
    text = str(exc)
    match = re.search(r"\[SSL: [^\]]+\][^(')\"]*|Connection refused|Name or service not known|timed out", text)
    return match.group(0).strip() if match else text[:200]
