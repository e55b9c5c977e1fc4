"""/metrics: request counters, watch history, what each kind adds, objects, threads and memory (Prometheus text)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING

from . import registration

if TYPE_CHECKING:
    from .api import Api


class Metrics:
    """Request counters by verb and resource, served in Prometheus text format at /metrics."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: Counter = Counter()

    def count(self, verb: str, resource: str) -> None:
        with self._lock:
            self._requests[(verb, resource)] += 1

    def render(self, api: "Api") -> str:
        lines = [
            "# HELP osbs_local_requests_total API requests served, by verb and resource.",
            "# TYPE osbs_local_requests_total counter",
        ]
        with self._lock:
            for (verb, resource), value in sorted(self._requests.items()):
                lines.append(f'osbs_local_requests_total{{verb="{verb}",resource="{resource}"}} {value}')
        events = api.store.events
        lines += ["# HELP osbs_local_watch_window_seconds How long watch history is kept (watch_window_seconds).",
                  "# TYPE osbs_local_watch_window_seconds gauge", f"osbs_local_watch_window_seconds {events.window:g}",
                  "# HELP osbs_local_watch_expired_total Watches answered 410 Expired (their resourceVersion was too old).",
                  "# TYPE osbs_local_watch_expired_total counter", f"osbs_local_watch_expired_total {events.expired_watches}"]
        for kind in registration.kinds():
            if kind.metrics is not None:
                lines += kind.metrics(api)
        lines += ["# HELP osbs_local_objects Objects stored, by resource.", "# TYPE osbs_local_objects gauge"]
        for resource in (kind.resource for kind in registration.kinds()):
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
