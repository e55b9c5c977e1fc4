# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the osbs.flow OpenShift modules, over kubernetes.core's module_utils.

Connection, authentication and the `K8S_AUTH_*` variables come from
kubernetes.core (`AnsibleK8SModule`, `get_api_client`), as in community.okd.
Requests go to explicit REST paths, so a module needs no API discovery and
the same code talks to OpenShift and to osbs-local. Writes never happen in
check mode: callers compute the would-be object and skip the request.
"""

from __future__ import annotations

import json
import threading
import time
import traceback

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
except ImportError:
    KUBERNETES_CORE_IMPORT_ERROR = traceback.format_exc()
    AUTH_ARG_SPEC = {}
    AnsibleK8SModule = object
    CoreException = Exception
else:
    KUBERNETES_CORE_IMPORT_ERROR = None

try:
    from kubernetes.dynamic.exceptions import DynamicApiError
except ImportError:
    DynamicApiError = None

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"
CORE_API = "/api/v1"

API_PATHS = {
    "BuildConfig": (BUILD_API, "buildconfigs"),
    "Build": (BUILD_API, "builds"),
    "ImageStream": (IMAGE_API, "imagestreams"),
    "ImageStreamTag": (IMAGE_API, "imagestreamtags"),
    "ImageStreamImport": (IMAGE_API, "imagestreamimports"),
    "Secret": (CORE_API, "secrets"),
}

ACTIVE_BUILD_PHASES = ("New", "Pending", "Running")
TERMINAL_BUILD_PHASES = ("Complete", "Failed", "Error", "Cancelled")
CONFLICT_RETRIES = 5


REQUEST_TIMEOUT = 120  # seconds; a watch gets its own, longer one

try:
    from urllib3.exceptions import HTTPError as TransportError
except ImportError:
    TransportError = OSError


class ApiError(Exception):
    """An API answer other than success, with the Status body's reason and message."""

    def __init__(self, status, reason, message, body=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}

    def __str__(self):
        return "%s (HTTP %s %s)" % (self.message, self.status, self.reason)

    @property
    def is_not_found(self):
        return self.status == 404

    @property
    def is_conflict(self):
        return self.status == 409 and self.reason == "Conflict"

    @property
    def is_already_exists(self):
        return self.status == 409 and self.reason == "AlreadyExists"


def _api_error(exc):
    body = {}
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        pass
    reason = body.get("reason") or exc.reason or "Unknown"
    message = body.get("message") or to_text(exc.body or exc.reason)
    return ApiError(exc.status, reason, message, body)


class OpenShiftClient:
    """Dicts in, dicts out, over the kubernetes client of kubernetes.core."""

    def __init__(self, k8s_client):
        self._dynamic = k8s_client.client
        self.host = getattr(k8s_client.configuration, "host", None)
        self.requests = []  # (method, path) of each request, for results and tests

    @staticmethod
    def path(kind, namespace=None, name=None, subresource=None):
        prefix, plural = API_PATHS[kind]
        parts = [prefix]
        if namespace:
            parts.append("namespaces/%s" % namespace)
        parts.append(plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    def request(self, method, path, body=None, query=None, content_type=None, raw=False, timeout=None):
        self.requests.append((method.upper(), path))
        params = {"query_params": list((query or {}).items()), "serialize": False, "_request_timeout": timeout or REQUEST_TIMEOUT}
        if content_type:
            params["content_type"] = content_type
        try:
            response = self._dynamic.request(method, path, body=body, **params)
        except DynamicApiError as exc:
            raise _api_error(exc)
        if raw:
            return response
        data = response.data
        return json.loads(data) if data else {}

    def get(self, kind, namespace, name):
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", self.path(kind, namespace, name))
        except ApiError as exc:
            if exc.is_not_found:
                return None
            raise

    def list(self, kind, namespace, label_selector=None, field_selector=None):
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        return self.request("GET", self.path(kind, namespace), query=query)

    def create(self, kind, namespace, body):
        return self.request("POST", self.path(kind, namespace), body=body)

    def replace(self, kind, namespace, body):
        return self.request("PUT", self.path(kind, namespace, body["metadata"]["name"]), body=body)

    def merge_patch(self, kind, namespace, name, patch):
        return self.request(
            "PATCH", self.path(kind, namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    def log_tail(self, namespace, build_name, lines=30):
        """The last lines of a build's log ('' when the server has none to give)."""
        try:
            response = self.request(
                "GET", self.path("Build", namespace, build_name, "log"), query={"tailLines": lines}, raw=True
            )
        except ApiError:
            return ""
        return to_text(response.data)

    def watch(self, kind, namespace, resource_version, field_selector=None, label_selector=None, timeout=60):
        """Yield (type, object) watch events until the server closes the stream.

        Raises ApiError for an ERROR event (410 Expired included), so the
        caller can fall back to listing.
        """
        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": int(timeout)}
        if field_selector:
            query["fieldSelector"] = field_selector
        if label_selector:
            query["labelSelector"] = label_selector
        response = self.request("GET", self.path(kind, namespace), query=query, raw=True, timeout=timeout + 10)
        try:
            buffer = b""
            for chunk in response.stream(4096, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise ApiError(status.get("code"), status.get("reason"), status.get("message"), status)
                    yield event.get("type"), event.get("object") or {}
        finally:
            response.release_conn()


def retry_on_conflict(operation, attempts=CONFLICT_RETRIES):
    """Run operation() again, after re-reading inside it, while the server answers 409 Conflict.

    `operation` must read the object afresh each time, so nothing is
    overwritten blindly; after `attempts` conflicts the last one is raised.
    """
    for attempt in range(attempts):
        try:
            return operation()
        except ApiError as exc:
            if not exc.is_conflict or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def builds_of(client, namespace, buildconfig_name):
    """Every build of the BuildConfig, newest first.

    Found by `openshift.io/build-config.name` and by the older `buildconfig`
    label that osbs-client's builds carry.
    """
    found = {}
    for label in ("openshift.io/build-config.name", "buildconfig"):
        for build in client.list("Build", namespace, label_selector="%s=%s" % (label, buildconfig_name))["items"]:
            found[build["metadata"]["name"]] = build
    return sorted(found.values(), key=build_number, reverse=True)


def is_active(build):
    return build.get("status", {}).get("phase", "New") in ACTIVE_BUILD_PHASES


def active_builds(client, namespace, buildconfig_name):
    """Builds of the BuildConfig that are New, Pending or Running, oldest first."""
    return [b for b in reversed(builds_of(client, namespace, buildconfig_name)) if is_active(b)]


def cancel_build(client, namespace, name):
    """Ask for the build to be cancelled (OpenShift's way: status.cancelled, the controller does the rest)."""
    client.merge_patch("Build", namespace, name, {"status": {"cancelled": True}})


def build_number(build):
    annotations = build.get("metadata", {}).get("annotations") or {}
    number = annotations.get("openshift.io/build.number") or build["metadata"]["name"].rsplit("-", 1)[-1]
    return int(number) if str(number).isdigit() else 0


def describe_builds(builds):
    return ", ".join("%s (%s)" % (b["metadata"]["name"], b.get("status", {}).get("phase", "New")) for b in builds)


def wait_for_no_active_builds(client, namespace, buildconfig_name, timeout, sleep=1.0):
    """Wait until no build of the BuildConfig is active; return the ones still active at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        builds = active_builds(client, namespace, buildconfig_name)
        if not builds or time.monotonic() >= deadline:
            return builds
        time.sleep(sleep)


class BuildFollower:
    """Follows many builds with one watch per namespace and calls back once for each when it ends.

    `follow(build, callback)` returns at once; `callback(build)` runs in the
    follower's thread with the terminal build, or with its last state once
    `timeout` seconds have passed without it ending. A build that ended before
    it was followed, or while a watch was being re-established, is caught by a
    read: once when it is followed, and again after every fresh list, so no
    ending falls between a read and the watch; a read that fails makes the
    namespace list afresh. When the API refuses the list itself (401, 403, 404)
    every build of that namespace ends as Error with the API's message rather
    than waiting for its timeout.
    """

    WATCH_SECONDS = 30  # a stream is renewed this often; the deadlines are checked in between
    REFUSALS = (401, 403, 404)

    def __init__(self, client, timeout):
        self.client = client
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting = {}  # (namespace, name) -> [deadline, callback, last known build]
        self._threads = {}
        self._relist = set()  # namespaces whose watch must start again from a fresh list
        self._stopping = threading.Event()

    def follow(self, build, callback):
        key = build["metadata"]["namespace"], build["metadata"]["name"]
        with self._lock:
            self._waiting[key] = [time.monotonic() + self.timeout, callback, build]
            thread = self._threads.get(key[0])
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._watch_namespace, args=(key[0],), name="follow-%s" % key[0], daemon=True)
                self._threads[key[0]] = thread
                thread.start()
        self._check(key)

    def stop(self):
        self._stopping.set()

    def _end(self, key, build):
        with self._lock:
            entry = self._waiting.pop(key, None)
        if entry is not None:
            entry[1](build)

    def _check(self, key):
        """Read the build now and end it if it has ended."""
        try:
            build = self.client.get("Build", key[0], key[1])
        except (ApiError, TransportError, OSError, ValueError):
            # The ending may already have passed the watch: have it list afresh, which reads every build again.
            with self._lock:
                self._relist.add(key[0])
            return
        if build is None:
            self._deleted(key)
        elif build.get("status", {}).get("phase", "New") in TERMINAL_BUILD_PHASES:
            self._end(key, build)
        else:
            self._seen(key, build)

    def _seen(self, key, build):
        with self._lock:
            if key in self._waiting:
                self._waiting[key][2] = build

    def _ended_with(self, key, reason, message):
        with self._lock:
            entry = self._waiting.get(key)
        if entry is not None:
            ended = dict(entry[2])
            ended["status"] = dict(ended.get("status") or {}, phase="Error", reason=reason, message=message)
            self._end(key, ended)

    def _deleted(self, key):
        self._ended_with(key, "BuildDeleted", "the build was deleted while it was being followed")

    def _keys_in(self, namespace):
        with self._lock:
            return [key for key in self._waiting if key[0] == namespace]

    def _expire(self, namespace):
        now = time.monotonic()
        with self._lock:
            expired = [(key, entry[2]) for key, entry in self._waiting.items() if key[0] == namespace and entry[0] <= now]
        for key, build in expired:
            self._end(key, build)

    def _seconds_to_next_deadline(self, namespace):
        with self._lock:
            deadlines = [entry[0] for key, entry in self._waiting.items() if key[0] == namespace]
        return min(deadlines) - time.monotonic() if deadlines else self.WATCH_SECONDS

    def _list_afresh(self, namespace):
        """A new starting point (limit=1: only its resourceVersion is wanted), then a read of every followed build."""
        with self._lock:
            self._relist.discard(namespace)
        try:
            listed = self.client.request("GET", self.client.path("Build", namespace), query={"limit": 1})
        except ApiError as exc:
            if exc.status in self.REFUSALS:
                for key in self._keys_in(namespace):
                    self._ended_with(key, "FollowRefused", "following the build failed: %s" % exc)
            raise
        for key in self._keys_in(namespace):
            self._check(key)
        return listed["metadata"]["resourceVersion"]

    def _watch_namespace(self, namespace):
        resource_version = None
        while not self._stopping.is_set():
            try:
                with self._lock:
                    if namespace in self._relist:
                        resource_version = None
                if resource_version is None:
                    resource_version = self._list_afresh(namespace)
                seconds = max(1, min(self.WATCH_SECONDS, self._seconds_to_next_deadline(namespace) + 1))
                for event, build in self.client.watch("Build", namespace, resource_version, timeout=seconds):
                    resource_version = build.get("metadata", {}).get("resourceVersion") or resource_version
                    key = namespace, build.get("metadata", {}).get("name")
                    if event == "DELETED":
                        self._deleted(key)
                    elif build.get("status", {}).get("phase", "New") in TERMINAL_BUILD_PHASES:
                        self._end(key, build)
                    else:
                        self._seen(key, build)
                    if self._stopping.is_set():
                        return
            except Exception:  # pylint: disable=broad-exception-caught
                # Expired (410), broken, refused, or something no one foresaw (a token refresh that failed):
                # this thread is the only one that checks the deadlines, so it must live. Start again from a
                # fresh list after a pause.
                resource_version = None
                self._stopping.wait(1)
            finally:
                self._expire(namespace)


def object_diff(before, after):
    """Ansible's diff dict for two objects, or {} when they are equal."""
    if KUBERNETES_CORE_IMPORT_ERROR is None:
        # Imported here: k8s.service pulls in ansible.module_utils.urls and more (0.07 s), which every
        # module process would pay for a diff that only diff mode asks for.
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import diff_objects

        equal, diff = diff_objects(before or {}, after or {})
        return {} if equal else diff
    return {} if before == after else {"before": before or {}, "after": after or {}}


class OsbsOpenShiftModule(AnsibleK8SModule):
    """AnsibleK8SModule plus the client above; `run(execute)` turns errors into fail_json."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(AUTH_ARG_SPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        if KUBERNETES_CORE_IMPORT_ERROR:
            self.fail_json(msg="osbs.flow needs the kubernetes.core collection (>=6.0.0)", exception=KUBERNETES_CORE_IMPORT_ERROR)
        try:
            self.client = OpenShiftClient(get_api_client(module=self))
        except CoreException as exc:
            self.fail_json(msg=to_text(exc))

    def run(self, execute):
        try:
            result = execute(self)
        except OsbsFlowError as exc:
            self.fail_json(msg=to_text(exc))
        except ApiError as exc:
            self.fail_json(msg=str(exc), status=exc.body)
        except (TransportError, OSError) as exc:
            host = getattr(self.client, "host", None) or "the API server"
            self.fail_json(
                msg="cannot reach %s: %s; check the connection options (kubeconfig, host, K8S_AUTH_*) and that "
                "the server answers" % (host, to_text(exc))
            )
        self.exit_json(**result)
