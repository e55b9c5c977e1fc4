"""The in-memory watch event log.

Every store write takes the next global resourceVersion and appends exactly one event, so the
log is contiguous in resourceVersion and an event is found by arithmetic.  History is kept for
`window` seconds (and at most `size` events): the apiserver's watch cache is a ring per resource
that keeps at least DefaultEventFreshDuration (75 s) of events once it is busy, and a watch of a
resource from a resourceVersion older than what its ring still holds gets 410 Expired (cacher.go
`Watch` sends it as an ERROR event on an opened stream).  So expiry is per resource here too: a
watch of builds is expired only when a build event after its resourceVersion has been dropped.
A watch from before the engine started is expired as well (the cache starts at its first list).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

# k8s.io/apiserver storage/cacher: DefaultEventFreshDuration, the history a busy cache still keeps.
DEFAULT_WINDOW_SECONDS = 75.0


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    namespace: str
    obj: dict  # the object as stored after the write (for DELETED: as it was, with the deletion RV)
    json: str  # obj serialised once, shared by every watcher
    previous: Optional[dict]  # the object before a MODIFIED, to notice selector transitions


class Expired(Exception):
    """The requested resourceVersion is older than the log keeps; args: (requested, oldest servable)."""


class EventLog:
    def __init__(self, start_rv: int, size: int = 10000, window: float = DEFAULT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._events: deque[Event] = deque()
        self._times: deque[float] = deque()
        self._size = size
        self.window = window
        self._clock = clock
        self.start_rv = start_rv
        # Changes up to and including this resourceVersion are not in the log (any resource; for indexing).
        self.compacted_rv = start_rv
        # resource -> the newest dropped event of that resource: a watch from before it has lost history.
        self._compacted_by_resource: dict[str, int] = {}
        self.last_rv = start_rv
        self.expired_watches = 0  # watches answered 410, for /metrics
        self._cond = threading.Condition()
        self.closed = False

    def append(self, event: Event) -> None:
        with self._cond:
            if event.rv != self.last_rv + 1:
                raise AssertionError(f"event log gap: {self.last_rv} -> {event.rv}")
            self._events.append(event)
            self._times.append(self._clock())
            self.last_rv = event.rv
            self._drop_old()
            self._cond.notify_all()

    def _drop_old(self) -> None:
        oldest_kept = self._clock() - self.window
        while self._events and (len(self._events) > self._size or self._times[0] < oldest_kept):
            dropped = self._events.popleft()
            self._times.popleft()
            self.compacted_rv = dropped.rv
            self._compacted_by_resource[dropped.resource] = dropped.rv

    def oldest_servable(self, resource: Optional[str] = None) -> int:
        """The oldest resourceVersion a watch (of resource, or of everything) may start from."""
        with self._cond:
            self._drop_old()
            if resource is None:
                return self.compacted_rv
            return self._compacted_by_resource.get(resource, self.start_rv)

    def since(self, rv: int, resource: Optional[str] = None) -> list[Event]:
        """Events with a resourceVersion greater than rv; Expired when one of resource's (any, without it) is gone."""
        with self._cond:
            oldest = self.oldest_servable(resource)
            if rv < oldest or rv < self.start_rv:
                self.expired_watches += 1
                raise Expired(rv, max(oldest, self.start_rv))
            if rv >= self.last_rv or not self._events:
                return []
            first = self._events[0].rv
            start = rv + 1 - first
            return [self._events[i] for i in range(max(start, 0), len(self._events))]

    def wait(self, rv: int, timeout: float) -> None:
        """Block until an event newer than rv exists, the log closes, or timeout passes."""
        with self._cond:
            if self.last_rv <= rv and not self.closed:
                self._cond.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
