"""The HTTPS front: bearer-token authentication, discovery, health, metrics, and the transport of what
routing answers (objects, Status errors, chunked watch and log streams).

ThreadingHTTPServer (a thread per connection, HTTP/1.1 keep-alive) with the TLS handshake done in
the connection's own thread, so one slow client never stalls the accept loop.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

import yaml

from . import discovery, printing, routing
from .api import Api
from .authn import Tokens, UserInfo, acting_as
from .errors import ApiError, bad_request
from .metrics import Metrics
from .rest import Response
from .storage import dumps

log = logging.getLogger("osbs_local.server")

_HEALTH_PATHS = ("/healthz", "/readyz", "/livez")


class EngineHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, api: Api, token: str, ssl_context: Optional[ssl.SSLContext]):
        super().__init__(address, RequestHandler)
        self.api = api
        api.tokens = Tokens(token)
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

    def _user(self) -> Optional[UserInfo]:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        store = self.server.api.store

        def service_account_uid(namespace: str, name: str) -> Optional[str]:
            service_account = store.peek("serviceaccounts", namespace, name)
            return service_account["metadata"]["uid"] if service_account else None

        return self.server.api.tokens.authenticate(token.strip(), service_account_uid)

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

    # -- dispatch --------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query_lists = parse_qs(url.query, keep_blank_values=True)
            incoming = routing.Incoming(
                method, path, {k: v[-1] for k, v in query_lists.items()}, query_lists,
                wants_table=printing.wants_table(self.headers.get("Accept", "")),
                content_type=self.headers.get("Content-Type", "").split(";")[0].strip(),
                read_body=self._read_body, parse_body=self._parse_body,
                stopped=lambda: self.server.stopping.is_set() or self._client_gone(),
                count=self.server.metrics.count,
            )
            if path in _HEALTH_PATHS and method == "GET":
                self._send(200, "ok", "text/plain; charset=utf-8")
                return
            # A webhook's secret is its credential (OpenShift lets unauthenticated callers post them).
            public = routing.public_request(self.server.api, incoming)
            if public is not None:
                self._respond(public)
                return
            user = self._user()
            if user is None:
                self._read_body()
                self._send_error(ApiError(401, "Unauthorized", "Unauthorized"))
                return
            if self._non_resource(method, path):
                return
            with acting_as(user):
                response = routing.resource_request(self.server.api, incoming)
            self._respond(response)
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

    def _respond(self, response: Response) -> None:
        if response.stream is None:
            self._send(response.code, response.body, response.content_type)
            return
        self._start_stream(response.content_type)
        try:
            for chunk in response.stream:
                self._write_chunk(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
        self._end_stream()

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
            document = discovery.version_info()
        elif path == "/api":
            document = discovery.api_versions(host)
        elif path == "/apis":
            document = discovery.api_group_list()
        elif path == "/api/v1":
            document = discovery.api_resource_list("")
        elif len(parts) == 2 and parts[0] == "apis":
            document = discovery.api_group(parts[1])
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        elif len(parts) == 3 and parts[0] == "apis":
            document = discovery.api_resource_list(parts[1], parts[2])
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
