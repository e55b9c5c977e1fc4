# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenShift client and the module base of the osbs.flow OpenShift modules, over kubernetes.core.

What the flow reads from the objects is in resources.py; how it waits for a
build, in waiter.py.

Connection, authentication and the `K8S_AUTH_*` variables come from
kubernetes.core (`AnsibleK8SModule`, `get_api_client`), as in community.okd.
Requests go to explicit REST paths, so a module needs no API discovery and
the same code talks to OpenShift and to osbs-local. Writes never happen in
check mode: callers compute the would-be object and skip the request.
"""

from __future__ import annotations

import json
import ssl
import time
import traceback

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials, mask_credentials_in, uri_secrets

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

CONFLICT_RETRIES = 5

REQUEST_TIMEOUT = 120  # seconds; a watch gets its own, longer one

try:
    from urllib3.exceptions import HTTPError as TransportError
    from urllib3.exceptions import ReadTimeoutError
except ImportError:
    TransportError = ReadTimeoutError = OSError


class ApiError(OsbsFlowError):
    """An API answer other than success, with the Status body's reason and message; the result holds the Status."""

    def __init__(self, status, reason, message, body=None):
        super().__init__(message, status=body or {})
        self.status = status
        self.reason = reason
        self.message = message

    def __str__(self):
        return "%s (HTTP %s %s)" % (self.message, self.status, self.reason)

    @property
    def is_not_found(self):
        return self.status == 404

    @property
    def is_conflict(self):
        return self.status == 409 and self.reason == "Conflict"


class ApiUnreachable(OsbsFlowError):
    """No answer from the API server: the connection was refused, reset or cut, TLS failed, or the answer took too long.

    `timed_out` tells a slow answer (a watch that outlived its read timeout) from a lost connection: a
    connection that cannot be made at all (refused, or no answer to the connect) is lost.
    """

    def __init__(self, host, method, path, cause):
        self.host = host or "the API server"
        self.what_failed = what_failed(cause)
        self.timed_out = _caused_by(cause, ReadTimeoutError)
        super().__init__(
            "cannot reach the API server %s (%s %s): %s; check that it is running and answers, and the connection "
            "options (kubeconfig, host, K8S_AUTH_*)" % (self.host, method, path, self.what_failed)
        )


def _causes(exc):
    """exc and what it wraps: urllib3's `reason`, then Python's __cause__/__context__."""
    seen = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        reason = getattr(exc, "reason", None)
        exc = reason if isinstance(reason, BaseException) else exc.__cause__ or exc.__context__
    return seen


def _caused_by(exc, *types):
    return any(isinstance(cause, types) for cause in _causes(exc))


def what_failed(exc):
    """What went wrong on the connection, in a few words: `connection refused`, `TLS: EOF occurred ...`."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return "TLS: %s" % (cause.reason or cause.strerror or cause)
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
    for cause in _causes(exc):
        if isinstance(cause, ReadTimeoutError):
            return "no answer in time (%s)" % (cause,)
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.args:
            return "%s: %s" % (type(cause).__name__, cause.args[-1])
    if DynamicApiError is not None and isinstance(exc, DynamicApiError):
        return " ".join(to_text(exc.reason or exc.summary()).split())
    return "%s: %s" % (type(exc).__name__, exc)


def _api_error(exc):
    body = {}
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        pass
    reason = body.get("reason") or exc.reason or "Unknown"
    message = body.get("message") or to_text(exc.body or exc.reason)
    return ApiError(exc.status, reason, message, body)


BUILD_STRATEGY_ROLE = "system:build-strategy-docker"


def _with_permission_hint(error, path, body):
    """A 403 of OpenShift's build strategy admission names the permission it wants and the role that grants it.

    The server says only `build strategy Docker is not allowed`; what it checked is `create` on the
    pseudo-resource builds/docker, or builds/optimizeddocker for an imageOptimizationPolicy other than
    None (OAS pkg/build/apiserver/admission/strategyrestrictions/admission.go resourceForStrategyType).
    """
    if error.status != 403 or not path.startswith(BUILD_API) or "build strategy Docker is not allowed" not in (error.message or ""):
        return error
    namespace = path.split("/namespaces/", 1)[-1].split("/", 1)[0] if "/namespaces/" in path else "the namespace"
    policy = None
    if isinstance(body, dict) and body.get("kind") in ("BuildConfig", "Build"):
        docker = ((body.get("spec") or {}).get("strategy") or {}).get("dockerStrategy") or {}
        policy = docker.get("imageOptimizationPolicy") or "None"
    if policy == "None":
        needed = "builds/docker"
    elif policy:
        needed = "builds/optimizeddocker (imageOptimizationPolicy %s)" % policy
    else:
        needed = "builds/docker, or builds/optimizeddocker when the BuildConfig's imageOptimizationPolicy is not None"
    error.message = (
        "%s: this needs permission to create %s in group build.openshift.io in namespace %s. The cluster role %s "
        "grants it: ask a cluster administrator to bind it to you (oc adm policy add-role-to-user %s USER -n %s)"
        % (error.message, needed, namespace, BUILD_STRATEGY_ROLE, BUILD_STRATEGY_ROLE, namespace))
    return error


class OpenShiftClient:
    """Dicts in, dicts out, over the kubernetes client of kubernetes.core."""

    def __init__(self, k8s_client):
        self._dynamic = k8s_client.client
        self.host = getattr(k8s_client.configuration, "host", None)
        self.requests = []  # (method, path) of each request, for results and tests
        # The ApiUnreachable of the last request if it failed so, None once a request gets an answer: a run that
        # ends with failures tells "the server went away" from failures of its own.
        self.unreachable = None

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
            if not exc.status:  # the kubernetes client reports a TLS failure as an ApiException with status 0
                raise self._unreachable(method, path, exc)
            self.unreachable = None
            raise _with_permission_hint(_api_error(exc), path, body)
        except (TransportError, OSError) as exc:
            raise self._unreachable(method, path, exc)
        self.unreachable = None
        if raw:
            return response
        data = response.data
        return json.loads(data) if data else {}

    def _unreachable(self, method, path, cause):
        self.unreachable = ApiUnreachable(self.host, method.upper(), path, cause)
        return self.unreachable

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

    def watch(self, kind, namespace, resource_version, field_selector=None, label_selector=None, timeout=60, bookmarks=False):
        """Yield (type, object) watch events until the server closes the stream.

        Raises ApiError for an ERROR event (410 Expired included), so the
        caller can fall back to listing, and ApiUnreachable when the stream breaks.
        With `bookmarks`, the server may send BOOKMARK events: an object with
        only a newer resourceVersion to resume from.
        """
        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": int(timeout)}
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
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
        except (TransportError, OSError) as exc:
            raise self._unreachable("GET", self.path(kind, namespace) + " (watch)", exc)
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


def object_diff(before, after):
    """Ansible's diff dict for two objects, or {} when they are equal."""
    if KUBERNETES_CORE_IMPORT_ERROR is None:
        # Imported here: k8s.service pulls in ansible.module_utils.urls and more (0.07 s), which every
        # module process would pay for a diff that only diff mode asks for.
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import diff_objects

        equal, diff = diff_objects(before or {}, after or {})
        return {} if equal else diff
    return {} if before == after else {"before": before or {}, "after": after or {}}


def option_secrets(value):
    """uri_secrets of every string in an option's value, those inside lists and dicts included."""
    if isinstance(value, dict):
        return [secret for item in value.values() for secret in option_secrets(item)]
    if isinstance(value, (list, tuple)):
        return [secret for item in value for secret in option_secrets(item)]
    return uri_secrets(value)


class OsbsOpenShiftModule(AnsibleK8SModule):
    """AnsibleK8SModule plus the client above; `run(execute)` is the only place that calls fail_json.

    `execute(module)` returns the result, or raises OsbsFlowError (with the
    result the failure carries) or a transport error. No credential leaves the
    module: the user info of every URI in its result, message and warnings is
    masked, and a secret given in an option's URI is hidden wherever Ansible
    would echo it (the invocation's arguments included).
    """

    def __init__(self, argument_spec, **kwargs):
        spec = dict(AUTH_ARG_SPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        if KUBERNETES_CORE_IMPORT_ERROR:
            self.fail_json(msg="osbs.flow needs the kubernetes.core collection (>=6.0.0)", exception=KUBERNETES_CORE_IMPORT_ERROR)
        for value in self.params.values():
            self.hide(*option_secrets(value))
        try:
            self.client = OpenShiftClient(get_api_client(module=self))
        except CoreException as exc:
            self.fail_json(msg=to_text(exc))

    def hide(self, *secrets):
        """Mask these values wherever Ansible would echo them (the invocation's arguments, -vvv, AWX job events)."""
        self._module.no_log_values.update(secret for secret in secrets if secret)

    def require_seconds(self, option, minimum=0, why=""):
        """Fail unless the option is a number of seconds of at least `minimum`; `why` says what 0 means or why it is refused."""
        value = self.params.get(option)
        if value is not None and value < minimum:
            self.fail_json(msg="%s is %d: give a number of seconds of %d or more%s" % (option, value, minimum, why))

    def warn(self, warning):
        return super().warn(mask_credentials(warning))

    def exit_json(self, **result):
        return super().exit_json(**mask_credentials_in(result))

    def fail_json(self, **result):
        return super().fail_json(**mask_credentials_in(result))

    def run(self, execute):
        try:
            result = execute(self)
        except OsbsFlowError as exc:  # ApiError included: its result is the API's Status
            self.fail_json(msg=to_text(exc), **exc.result)
        except (TransportError, OSError) as exc:
            host = getattr(self.client, "host", None) or "the API server"
            self.fail_json(
                msg="cannot reach %s: %s; check the connection options (kubeconfig, host, K8S_AUTH_*) and that "
                "the server answers" % (host, to_text(exc))
            )
        self.exit_json(**result)
