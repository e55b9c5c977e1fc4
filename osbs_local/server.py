"""The HTTPS front: routing, bearer-token authentication, discovery, watch and log streaming, metrics.

ThreadingHTTPServer (a thread per connection, HTTP/1.1 keep-alive) with the TLS handshake done in
the connection's own thread, so one slow client never stalls the accept loop.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Optional
from urllib.parse import parse_qs, urlsplit

import yaml

from . import patching, resources, resources_table
from .api import Api, ApiError, Cause, bad_request, invalid, method_not_allowed, not_found
from .store import dumps

log = logging.getLogger("osbs_local.server")

_HEALTH_PATHS = ("/healthz", "/readyz", "/livez")
_WEBHOOK_RE = re.compile(
    r"^/apis/build\.openshift\.io/v1/namespaces/(?P<namespace>[^/]+)/buildconfigs/(?P<name>[^/]+)"
    r"/webhooks/(?P<secret>[^/]+)/(?P<type>[^/]+)$")
_TRUE = ("true", "1", "True")


class Metrics:
    """Request counters by verb and resource, served in Prometheus text format at /metrics."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: Counter = Counter()

    def count(self, verb: str, resource: str) -> None:
        with self._lock:
            self._requests[(verb, resource)] += 1

    def render(self, api: Api) -> str:
        lines = [
            "# HELP osbs_local_requests_total API requests served, by verb and resource.",
            "# TYPE osbs_local_requests_total counter",
        ]
        with self._lock:
            for (verb, resource), value in sorted(self._requests.items()):
                lines.append(f'osbs_local_requests_total{{verb="{verb}",resource="{resource}"}} {value}')
        phases: Counter = Counter(obj.get("status", {}).get("phase", "New") for obj, _ in api.store.scan("builds"))
        lines += ["# HELP osbs_local_builds Builds stored, by phase.", "# TYPE osbs_local_builds gauge"]
        for phase, value in sorted(phases.items()):
            lines.append(f'osbs_local_builds{{phase="{phase}"}} {value}')
        lines += ["# HELP osbs_local_objects Objects stored, by resource.", "# TYPE osbs_local_objects gauge"]
        for resource in resources.RESOURCES:
            if resource.stored:
                lines.append(f'osbs_local_objects{{resource="{resource.plural}"}} {api.store.count(resource.plural)}')
        lines += ["# HELP osbs_local_threads Threads of the serve process (connections, watches, builds).",
                  "# TYPE osbs_local_threads gauge", f"osbs_local_threads {threading.active_count()}"]
        memory = _memory()
        for key, metric in (("VmRSS", "process_resident_memory_bytes"), ("VmHWM", "osbs_local_peak_resident_memory_bytes")):
            if key in memory:
                lines += [f"# TYPE {metric} gauge", f"{metric} {memory[key]}"]
        return "\n".join(lines) + "\n"


def _memory() -> dict:
    values = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


class EngineHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, api: Api, token: str, ssl_context: Optional[ssl.SSLContext]):
        super().__init__(address, RequestHandler)
        self.api = api
        self.token = token
        self.ssl_context = ssl_context
        self.metrics = Metrics()
        self.stopping = threading.Event()

    def finish_request(self, request, client_address):
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # peer's delayed ACK add 40 ms to every response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            request.settimeout(30)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
            request.settimeout(None)
        self.RequestHandlerClass(request, client_address, self)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "osbs-local"
    sys_version = ""
    timeout = 3600  # an idle keep-alive connection is closed after this many seconds
    server: EngineHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing --------------------------------------------------------------------------------
    def _table_requested(self) -> bool:
        return resources_table.wants_table(self.headers.get("Accept", ""))

    def _send_object(self, resource, obj: dict) -> None:
        """200 with the object, or with its Table row when kubectl asks for server-side printing."""
        self._send(200, resources_table.table(resource.plural, [obj]) if self._table_requested() else obj)

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        if isinstance(body, (dict, list)):
            data = dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, error: ApiError) -> None:
        self._send(error.code, error.status())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _parse_body(self, raw: bytes, yaml_allowed: bool = False) -> Any:
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            if yaml_allowed or "yaml" in self.headers.get("Content-Type", ""):
                try:
                    return yaml.safe_load(raw)
                except yaml.YAMLError as exc:
                    raise bad_request(f"the request body is not valid YAML: {exc}") from None
            raise bad_request("the request body is not valid JSON") from None

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token.encode())

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        # The stream ends with the connection: say so, or a client that read it to the end would reuse it.
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def _client_gone(self) -> bool:
        """True when the peer closed its side (a readable socket with nothing to read)."""
        try:
            sock = self.connection
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return False
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""
            except (BlockingIOError, ssl.SSLWantReadError):
                return False
            finally:
                sock.setblocking(True)
        except OSError:
            return True

    # -- routing ---------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            query_lists = parse_qs(url.query, keep_blank_values=True)
            if path in _HEALTH_PATHS and method == "GET":
                self._send(200, "ok", "text/plain; charset=utf-8")
                return
            webhook = _WEBHOOK_RE.match(path)
            if webhook and method == "POST":
                # A webhook's secret is its credential (OpenShift lets unauthenticated callers post them).
                self.server.metrics.count("create", "buildconfigs/webhooks")
                body = self._parse_body(self._read_body())
                self._send(200, self.server.api.build_ops.webhook(
                    webhook["namespace"], webhook["name"], webhook["secret"], webhook["type"], body))
                return
            if not self._authorised():
                self._read_body()
                self._send_error(ApiError(401, "Unauthorized", "Unauthorized"))
                return
            if self._non_resource(method, path):
                return
            self._resource_request(method, path, query, query_lists)
        except ApiError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # a bug must answer 500 with a Status, not drop the connection
            log.exception("internal error on %s %s", method, self.path)
            try:
                self._send_error(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))
            except OSError:
                self.close_connection = True

    def _non_resource(self, method: str, path: str) -> bool:
        if method != "GET":
            if not path.startswith(("/api/", "/apis/")):
                self._read_body()
                self._send_error(ApiError(404, "NotFound", "the server could not find the requested resource"))
                return True
            return False
        host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        parts = [p for p in path.split("/") if p]
        document: Optional[dict] = None
        if path == "/version":
            document = resources.version_info()
        elif path == "/api":
            document = resources.api_versions(host)
        elif path == "/apis":
            document = resources.api_group_list()
        elif path == "/api/v1":
            document = resources.api_resource_list("")
        elif len(parts) == 2 and parts[0] == "apis":
            document = resources.api_group(parts[1])
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        elif len(parts) == 3 and parts[0] == "apis":
            document = resources.api_resource_list(parts[1], parts[2])
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        elif path == "/metrics":
            self._send(200, self.server.metrics.render(self.server.api), "text/plain; version=0.0.4; charset=utf-8")
            return True
        elif path.startswith(("/api/", "/apis/")):
            return False
        else:
            # /openapi/v2, /openapi/v3 and anything else: there is no OpenAPI document (kubectl: --validate=false).
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.server.metrics.count("get", "discovery")
        self._send(200, document)
        return True

    def _parse_resource_path(self, path: str):
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1":
            group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resource = resources.lookup(group, rest[0])
        if resource is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if namespace is not None and not resource.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub and resource.subresource(sub) is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return resource, namespace, name, sub

    def _resource_request(self, method: str, path: str, query: dict, query_lists: dict) -> None:
        api = self.server.api
        resource, namespace, name, sub = self._parse_resource_path(path)
        dry_run = query_lists.get("dryRun")
        if resource.namespaced and namespace is None and name is not None:
            raise not_found(resource, name)
        counted = f"{resource.plural}/{sub}" if sub else resource.plural

        if method == "GET":
            if name is None:
                if query.get("watch") in _TRUE:
                    self.server.metrics.count("watch", counted)
                    self._watch(resource, namespace, query)
                else:
                    self.server.metrics.count("list", counted)
                    self._list(resource, namespace, query)
                return
            self.server.metrics.count("get", counted)
            if sub == "log":
                self._build_log(namespace, name, query, pod=resource.plural == "pods")
            elif resource.plural == "pods":
                self._send_object(resource, api.build_ops.get_pod(namespace, name))
            elif resource.plural == "imagestreamtags":
                self._send_object(resource, api.image_ops.get_tag(namespace, name))
            elif resource.plural == "imagestreamimages":
                self._send(200, api.image_ops.get_stream_image(namespace, name))
            elif resource.plural == "imagetags":
                self._send(200, api.image_ops.get_image_tag(namespace, name))
            elif "get" not in resource.verbs:
                raise method_not_allowed("get", resource)
            elif sub == "":
                self._send_object(resource, api.get(resource, namespace, name))
            elif sub == "status":
                self._send(200, api.get(resource, namespace, name))
            elif sub == "secrets" and resource.plural == "imagestreams":
                self._send(200, api.image_ops.stream_secrets(namespace, name))
            elif sub == "layers" and resource.plural == "imagestreams":
                self._send(200, api.image_ops.stream_layers(namespace, name))
            else:
                raise method_not_allowed("get", resource)
            return

        raw = self._read_body()
        if method == "POST":
            self.server.metrics.count("create", counted)
            body = self._parse_body(raw)
            if sub == "instantiate" and resource.plural == "buildconfigs":
                self._send(201, api.build_ops.instantiate(namespace, name, body, dry_run))
            elif sub == "clone" and resource.plural == "builds":
                self._send(201, api.build_ops.clone(namespace, name, body, dry_run))
            elif sub:
                raise method_not_allowed("create", resource)
            elif name is not None:
                raise ApiError(405, "MethodNotAllowed", "POST is not allowed on a named resource")
            elif resource.plural == "imagestreamimports":
                self._send(201, api.image_ops.import_images(namespace, body, dry_run))
            elif resource.plural == "imagestreamtags":
                self._send(201, api.image_ops.put_tag(namespace, "", body, create=True, dry_run=dry_run))
            elif resource.plural == "imagestreammappings":
                self._send(201, api.image_ops.create_mapping(namespace, body, dry_run))
            elif "create" not in resource.verbs:
                raise method_not_allowed("create", resource)
            else:
                self._send(201, api.create(resource, namespace, body, dry_run))
            return
        if name is None and method != "DELETE":
            raise ApiError(405, "MethodNotAllowed", f"{method} needs a resource name")
        if method == "PUT":
            self.server.metrics.count("update", counted)
            body = self._parse_body(raw)
            if resource.plural == "imagestreamtags":
                self._send(200, api.image_ops.put_tag(namespace, name, body, create=False, dry_run=dry_run))
            elif "update" not in resource.verbs or sub not in ("", "status", "details") or (
                    resource.subresource(sub) is not None and "update" not in resource.subresource(sub).verbs):
                raise method_not_allowed("update", resource)
            else:
                self._send(200, api.update(resource, namespace, name, body, sub, dry_run))
        elif method == "PATCH":
            self.server.metrics.count("patch", counted)
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in patching.SUPPORTED:
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(patching.SUPPORTED)}")
            body = self._parse_body(raw, yaml_allowed=content_type == patching.APPLY_PATCH)
            if resource.plural == "imagestreamtags":
                current = api.image_ops.get_tag(namespace, name)
                patched = patching.apply_patch(content_type, current, body, resource.plural)
                self._send(200, api.image_ops.put_tag(namespace, name, patched, create=False, dry_run=dry_run))
            elif "patch" not in resource.verbs or sub not in ("", "status"):
                raise method_not_allowed("patch", resource)
            else:
                obj, created = api.patch(resource, namespace, name, content_type, body, sub, dry_run)
                self._send(201 if created else 200, obj)
        elif method == "DELETE":
            options = self._parse_body(raw) if raw.strip() else {}
            if name is None:
                self.server.metrics.count("deletecollection", counted)
                if "deletecollection" not in resource.verbs:
                    raise method_not_allowed("deletecollection", resource)
                self._send(200, api.delete_collection(resource, namespace, query.get("labelSelector"),
                                                      query.get("fieldSelector"), options, dry_run))
                return
            self.server.metrics.count("delete", counted)
            if query.get("propagationPolicy"):
                options.setdefault("propagationPolicy", query["propagationPolicy"])
            if resource.plural == "imagestreamtags":
                self._send(200, api.image_ops.delete_tag(namespace, name, dry_run))
            elif "delete" not in resource.verbs or sub:
                raise method_not_allowed("delete", resource)
            else:
                self._send(200, api.delete(resource, namespace, name, options, dry_run))
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- list / watch / log ------------------------------------------------------------------------
    def _list(self, resource, namespace, query) -> None:
        api = self.server.api
        if "list" not in resource.verbs:
            raise method_not_allowed("list", resource)
        if namespace is not None:
            api.require_namespace(namespace)
        computed_lists = {"imagestreamtags": api.image_ops.list_tags, "imagetags": api.image_ops.list_image_tags,
                          "pods": api.build_ops.list_pods}
        if resource.plural in computed_lists:
            predicate = api.selector_predicate(resource, query.get("labelSelector"), query.get("fieldSelector"))
            listed = computed_lists[resource.plural](namespace, predicate)
            if self._table_requested():
                listed = resources_table.table(resource.plural, listed["items"], listed["metadata"])
            self._send(200, listed)
            return
        self._check_list_versions(query)
        limit = query.get("limit")
        try:
            limit_value = int(limit) if limit else None
        except ValueError:
            raise bad_request(f"invalid limit {limit!r}") from None
        text = api.list_json(resource, namespace, query.get("labelSelector"), query.get("fieldSelector"),
                             limit_value, query.get("continue") or None)
        if self._table_requested():
            listed = json.loads(text)
            self._send(200, resources_table.table(resource.plural, listed["items"], listed["metadata"]))
            return
        self._send(200, text)

    def _check_list_versions(self, query) -> None:
        """resourceVersion / resourceVersionMatch / continue rules of a list (apimachinery validation)."""
        rv, match, token = query.get("resourceVersion"), query.get("resourceVersionMatch"), query.get("continue")
        if token and rv not in (None, "", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        if match:
            causes = []
            if match not in ("Exact", "NotOlderThan"):
                causes.append(Cause("resourceVersionMatch", "FieldValueNotSupported", f'"{match}": supported values: "Exact", "NotOlderThan"'))
            elif not rv:
                causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
            elif token:
                causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", "resourceVersionMatch is forbidden when continue is provided"))
            elif match == "Exact" and rv == "0":
                causes.append(Cause("resourceVersionMatch", "FieldValueForbidden", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
            if causes:
                raise invalid("ListOptions.meta.k8s.io", "", causes, "meta.k8s.io", "ListOptions")
        exact = match == "Exact" or (query.get("limit") and match is None and rv not in (None, "", "0"))
        if exact and rv and rv != str(self.server.api.store.resource_version):
            # Only the current state is kept: an exact read of an older version is gone.
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({self.server.api.store.resource_version})")

    def _watch(self, resource, namespace, query) -> None:
        if "watch" not in resource.verbs:
            raise method_not_allowed("watch", resource)
        try:
            timeout = float(query.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("invalid timeoutSeconds") from None
        lines = self.server.api.watch(
            resource, namespace, query.get("resourceVersion"), query.get("labelSelector"),
            query.get("fieldSelector"), timeout, query.get("allowWatchBookmarks") in _TRUE,
            stopped=lambda: self.server.stopping.is_set() or self._client_gone(),
        )
        as_table = self._table_requested()
        self._start_stream("application/json")
        try:
            for line in lines:
                if as_table:
                    line = self._event_as_table(resource, line)
                self._write_chunk(line.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
        self._end_stream()

    @staticmethod
    def _event_as_table(resource, line: str) -> str:
        """A watch event whose object is a one-row Table (ERROR and BOOKMARK events stay as they are)."""
        event = json.loads(line)
        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
            event["object"] = resources_table.table(resource.plural, [event["object"]],
                                                    {"resourceVersion": event["object"]["metadata"].get("resourceVersion")})
        return dumps(event)

    def _build_log(self, namespace, name, query, pod: bool = False) -> None:
        operations = self.server.api.build_ops
        chunks: Iterator[bytes] = (operations.pod_log_chunks if pod else operations.log_chunks)(
            namespace, name, follow=query.get("follow") in _TRUE, nowait=query.get("nowait") in _TRUE,
            tail_lines=int(query["tailLines"]) if query.get("tailLines") else None,
            limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None,
            previous=query.get("previous") in _TRUE,
            stopped=lambda: self.server.stopping.is_set() or self._client_gone(),
        )
        self._start_stream("text/plain")
        try:
            for chunk in chunks:
                self._write_chunk(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
        self._end_stream()


def make_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def start_http_server(api: Api, host: str, port: int, token: str, ssl_context: Optional[ssl.SSLContext]) -> EngineHTTPServer:
    server = EngineHTTPServer((host, port), api, token, ssl_context)
    thread = threading.Thread(target=server.serve_forever, name="http", kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    return server


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
