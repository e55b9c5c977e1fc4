"""The in-memory watch event log.

Every store write takes the next global resourceVersion and appends exactly one event, so the
log is contiguous in resourceVersion and an event is found by arithmetic.  The log is bounded:
a watch from a resourceVersion older than the oldest kept event (or older than the engine's
start) gets 410 Expired, the way the apiserver's watch cache answers.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Optional


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
    """The requested resourceVersion is older than the log keeps."""


class EventLog:
    def __init__(self, start_rv: int, size: int = 10000):
        self._events: deque[Event] = deque()
        self._size = size
        # Changes up to and including this resourceVersion are not in the log.
        self.compacted_rv = start_rv
        self.last_rv = start_rv
        self._cond = threading.Condition()
        self.closed = False

    def append(self, event: Event) -> None:
        with self._cond:
            if event.rv != self.last_rv + 1:
                raise AssertionError(f"event log gap: {self.last_rv} -> {event.rv}")
            self._events.append(event)
            self.last_rv = event.rv
            if len(self._events) > self._size:
                self.compacted_rv = self._events.popleft().rv
            self._cond.notify_all()

    def since(self, rv: int) -> list[Event]:
        """Events with a resourceVersion greater than rv."""
        with self._cond:
            if rv < self.compacted_rv:
                raise Expired(rv)
            if rv >= self.last_rv:
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
