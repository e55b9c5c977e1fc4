# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way osbs.flow waits for builds: a follower that watches, as kubernetes.core's waiter does.

`BuildFollower` follows many builds with one watch per namespace and calls
back as each ends (the wave); `wait_for_builds`, `wait_for_build` and
`wait_for_no_active_builds` block on it for a module that has nothing else to
do meanwhile (osbs_build, osbs_buildconfig with when_running=wait).
"""

from __future__ import annotations

import queue
import threading
import time

from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError, ApiUnreachable, TransportError
from ansible_collections.osbs.flow.plugins.module_utils.resources import active_builds, is_terminal


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

    Watches ask for bookmarks, so a quiet namespace resumes each renewed
    watch from a recent resourceVersion, not from its last build event, which
    the server's watch history (a few minutes at most) may no longer hold. A
    watch that is still expired (410: bookmarks are best effort) lists afresh
    at once; any other failure lists afresh after a pause that doubles while
    failures repeat, up to WATCH_SECONDS, so a failing server is not polled
    every second. A lost server is not waited for: when the connection keeps failing (refused,
    reset, cut, a TLS failure) for UNREACHABLE_SECONDS, each build of the
    namespace is given up with `on_lost(ApiUnreachable)`, or without an
    `on_lost` with `callback(last known build)`, and its watch stops.
    """

    WATCH_SECONDS = 30  # a stream is renewed this often; the deadlines are checked in between
    REFUSALS = (401, 403, 404)
    UNREACHABLE_SECONDS = 5  # how long a connection may keep failing before the server counts as lost
    RETRY_PAUSE = 0.5  # between attempts to reconnect
    ERROR_PAUSE = 1  # after another failure; doubled while failures repeat, up to WATCH_SECONDS

    def __init__(self, client, timeout):
        self.client = client
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting = {}  # (namespace, name) -> [deadline, callback, last known build, on_lost]
        self._threads = {}
        self._relist = set()  # namespaces whose watch must start again from a fresh list
        self._stopping = threading.Event()

    def follow(self, build, callback, on_lost=None):
        key = build["metadata"]["namespace"], build["metadata"]["name"]
        with self._lock:
            self._waiting[key] = [time.monotonic() + self.timeout, callback, build, on_lost]
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
        elif is_terminal(build):
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

    def _lost(self, namespace, error):
        with self._lock:
            lost = [(key, self._waiting.pop(key)) for key in list(self._waiting) if key[0] == namespace]
        for _key, (_deadline, callback, build, on_lost) in lost:
            if on_lost is not None:
                on_lost(error)
            else:
                callback(build)

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

    def _pause(self, namespace, seconds):
        """Wait before trying again, but not past the next build's deadline (this thread reports it)."""
        self._stopping.wait(max(0, min(seconds, self._seconds_to_next_deadline(namespace))))

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
        failing_since = None  # when the connection began to fail, while it keeps failing
        error_pause = self.ERROR_PAUSE
        listed = False
        while not self._stopping.is_set():
            try:
                with self._lock:
                    if namespace in self._relist:
                        resource_version = None
                listed = resource_version is None
                if listed:
                    resource_version = self._list_afresh(namespace)
                    failing_since = None
                seconds = max(1, min(self.WATCH_SECONDS, self._seconds_to_next_deadline(namespace) + 1))
                for event, build in self.client.watch("Build", namespace, resource_version, timeout=seconds, bookmarks=True):
                    resource_version = build.get("metadata", {}).get("resourceVersion") or resource_version
                    if event == "BOOKMARK":
                        continue
                    key = namespace, build.get("metadata", {}).get("name")
                    if event == "DELETED":
                        self._deleted(key)
                    elif is_terminal(build):
                        self._end(key, build)
                    else:
                        self._seen(key, build)
                    if self._stopping.is_set():
                        return
                error_pause = self.ERROR_PAUSE
            except ApiUnreachable as exc:
                resource_version = None
                if exc.timed_out:  # a slow answer, not a lost server: list afresh
                    continue
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.UNREACHABLE_SECONDS:
                    self._lost(namespace, exc)
                    return
                self._stopping.wait(self.RETRY_PAUSE)
            except ApiError as exc:
                resource_version = None
                if exc.status == 410 and not listed:  # the history since our version is gone: list afresh
                    continue
                self._pause(namespace, error_pause)
                error_pause = min(error_pause * 2, self.WATCH_SECONDS)
            except Exception:  # pylint: disable=broad-exception-caught
                # Refused, or something no one foresaw (a token refresh that failed): this thread is the
                # only one that checks the deadlines, so it must live. Start again from a fresh list after
                # a pause.
                resource_version = None
                self._pause(namespace, error_pause)
                error_pause = min(error_pause * 2, self.WATCH_SECONDS)
            finally:
                self._expire(namespace)


def _key(build):
    return build["metadata"]["namespace"], build["metadata"]["name"]


def wait_for_builds(client, builds, timeout):
    """The builds, in the order given, each once it has ended or as last seen after `timeout` seconds.

    Raises ApiUnreachable when the API server is lost meanwhile.
    """
    ended = queue.Queue()
    follower = BuildFollower(client, timeout)
    try:
        for build in builds:
            follower.follow(build, ended.put, on_lost=ended.put)
        by_key = {}
        while len(by_key) < len(builds):
            build = ended.get()
            if isinstance(build, ApiUnreachable):
                raise build
            by_key[_key(build)] = build
    finally:
        follower.stop()
    return [by_key[_key(build)] for build in builds]


def wait_for_build(client, build, timeout):
    """The build once it has ended, or as last seen after `timeout` seconds."""
    return wait_for_builds(client, [build], timeout)[0]


def wait_for_no_active_builds(client, namespace, buildconfig_name, timeout):
    """Wait until no build of the BuildConfig is active; return the ones still active at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        builds = active_builds(client, namespace, buildconfig_name)
        remaining = deadline - time.monotonic()
        if not builds or remaining <= 0:
            return builds
        wait_for_builds(client, builds, remaining)


def missing_push_secret_message(namespace, secret):
    """What to do about a push secret that does not exist (OpenShift keeps its builds Pending, not failed)."""
    return (
        "push secret %r does not exist in namespace %s; builds pushing with it stay Pending until it does: create it "
        "(`oc create secret docker-registry %s --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD "
        "-n %s`, then `oc secrets link builder %s` to use it without naming it) or correct registry_secret"
        % (secret, namespace, secret, namespace, secret)
    )


MOUNTED_SECRETS = (
    ("spec.output.pushSecret", lambda spec: (spec.get("output") or {}).get("pushSecret")),
    ("spec.strategy.dockerStrategy.pullSecret",
     lambda spec: ((spec.get("strategy") or {}).get("dockerStrategy") or {}).get("pullSecret")),
    ("spec.source.sourceSecret", lambda spec: (spec.get("source") or {}).get("sourceSecret")),
)


def waiting_state(build, client=None):
    """A build's phase for a timeout message, with the reason OpenShift gave while it cannot start.

    OpenShift's build controller keeps a build New or Pending with a reason (MissingPushSecret,
    CannotRetrieveServiceAccount, InvalidOutputReference, CannotCreateBuildPod...) rather than failing it
    (openshift-controller-manager build_controller.go createBuildPod and handleActiveBuild). A missing pull or
    source secret keeps the build pod, and so the build, Pending with no reason at all (the kubelet cannot mount
    it): with a client, a Pending build's secrets are looked up so the message can name the missing one.
    """
    status = build.get("status") or {}
    phase = status.get("phase") or "New"
    state = phase
    if status.get("reason"):
        state = "%s (%s: %s)" % (phase, status["reason"], status.get("message") or "")
    namespace = build["metadata"]["namespace"]
    secret = ((build.get("spec") or {}).get("output") or {}).get("pushSecret") or {}
    if status.get("reason") == "MissingPushSecret" and secret.get("name"):
        return state + "; " + missing_push_secret_message(namespace, secret["name"])
    if phase == "Pending" and client is not None:
        missing = missing_mounted_secrets(client, build)
        if missing:
            state += "; its pod cannot start: %s does not exist in namespace %s: create it, or correct the BuildConfig" % (
                " and ".join("secret %r (%s)" % (name, field) for field, name in missing), namespace)
    return state


def missing_mounted_secrets(client, build):
    """(field, name) of each secret the Build names for its pod that does not exist; a secret this client may not
    read is not reported (the message would guess)."""
    spec = build.get("spec") or {}
    missing = []
    for field, reference in MOUNTED_SECRETS:
        name = (reference(spec) or {}).get("name")
        if not name:
            continue
        try:
            if client.get("Secret", build["metadata"]["namespace"], name) is None:
                missing.append((field, name))
        except ApiError:
            pass
    return missing
