"""Object store: SQLite on disk (DIR/state.db, WAL) with an in-memory read model.

Reads are served from memory (each object kept as a dict and as its JSON text, so a list answer
is a join of strings); every write goes to SQLite in one transaction together with the global
resourceVersion counter before it is visible.  Objects in memory are never mutated in place:
a write replaces the entry, so the dicts can be shared with the watch log and with readers that
promise not to modify them (`peek`, `scan`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional

from .watch import DEFAULT_WINDOW_SECONDS, Event, EventLog

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    pass


def dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Store:
    def __init__(self, path: Path, watch_cache_size: int = 10000, watch_window_seconds: float = DEFAULT_WINDOW_SECONDS):
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL,"
            " name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # One lock for all writes and for compound read-modify-write sequences (re-entrant).
        self.lock = threading.RLock()
        self._objects: dict[str, dict[Key, tuple[dict, str]]] = {}
        # resource -> (label key, value) -> keys of the objects carrying that label: label selectors
        # with an equality answer from here instead of scanning every object.
        self._label_index: dict[str, dict[tuple[str, str], set[Key]]] = {}
        for resource, namespace, name, body in self._db.execute(
            "SELECT resource, namespace, name, body FROM objects"
        ):
            obj = json.loads(body)
            self._objects.setdefault(resource, {})[(namespace, name)] = (obj, body)
            self._index(resource, (namespace, name), None, obj)
        row = self._db.execute("SELECT value FROM meta WHERE key='resource_version'").fetchone()
        self.resource_version = int(row[0]) if row else 0
        self.events = EventLog(self.resource_version, watch_cache_size, watch_window_seconds)
        self._listeners: list[Callable[[Event], None]] = []

    # -- reading ---------------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Optional[dict]:
        """A private copy of the object, or None."""
        entry = self._objects.get(resource, {}).get((namespace, name))
        return json.loads(entry[1]) if entry else None

    def peek(self, resource: str, namespace: str, name: str) -> Optional[dict]:
        """The stored dict itself (read-only for the caller), or None."""
        entry = self._objects.get(resource, {}).get((namespace, name))
        return entry[0] if entry else None

    def scan(self, resource: str, namespace: Optional[str] = None) -> Iterator[tuple[dict, str]]:
        """(object, json) pairs, read-only, of one resource, optionally in one namespace."""
        with self.lock:
            entries = list(self._objects.get(resource, {}).items())
        for (ns, _name), entry in entries:
            if namespace is None or ns == namespace:
                yield entry

    def scan_labelled(self, resource: str, namespace: Optional[str], labels: list[tuple[str, str]]) -> list[tuple[dict, str]]:
        """(object, json) pairs carrying every (key, value) label, read-only, optionally in one namespace."""
        with self.lock:
            index = self._label_index.get(resource, {})
            sets = sorted((index.get(label, set()) for label in labels), key=len)
            keys = set(sets[0]).intersection(*sets[1:]) if sets else set()
            objects = self._objects.get(resource, {})
            return [objects[key] for key in keys if namespace is None or key[0] == namespace]

    def _index(self, resource: str, key: Key, old: Optional[dict], new: Optional[dict]) -> None:
        index = self._label_index.setdefault(resource, {})
        old_labels = set(((old or {}).get("metadata", {}).get("labels") or {}).items())
        new_labels = set(((new or {}).get("metadata", {}).get("labels") or {}).items())
        for label in old_labels - new_labels:
            members = index.get(label)
            if members is not None:
                members.discard(key)
                if not members:
                    del index[label]
        for label in new_labels - old_labels:
            index.setdefault(label, set()).add(key)

    def count(self, resource: str) -> int:
        return len(self._objects.get(resource, {}))

    # -- writing ---------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """listener(event) is called after each write, under the store lock: it must not block."""
        self._listeners.append(listener)

    def create(self, resource: str, obj: dict) -> dict:
        with self.lock:
            key = _key(obj)
            if key in self._objects.get(resource, {}):
                raise AlreadyExists(key)
            return self._write(resource, key, obj, "ADDED", None)

    def update(self, resource: str, obj: dict, expected_rv: Optional[str] = None) -> dict:
        """Replace the object; with expected_rv, only if the stored one still has it."""
        with self.lock:
            key = _key(obj)
            current = self._objects.get(resource, {}).get(key)
            if current is None:
                raise NotFound(key)
            if expected_rv is not None and current[0]["metadata"].get("resourceVersion") != expected_rv:
                raise Conflict(key)
            return self._write(resource, key, obj, "MODIFIED", current[0])

    def delete(self, resource: str, namespace: str, name: str) -> dict:
        with self.lock:
            key = (namespace, name)
            current = self._objects.get(resource, {}).get(key)
            if current is None:
                raise NotFound(key)
            rv = self.resource_version + 1
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", (resource, namespace, name)
                )
                self._set_rv(rv)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            del self._objects[resource][key]
            self._index(resource, key, current[0], None)
            self.resource_version = rv
            gone = json.loads(current[1])
            gone["metadata"]["resourceVersion"] = str(rv)
            self._publish(Event(rv, "DELETED", resource, namespace, gone, dumps(gone), current[0]))
            return gone

    def _write(self, resource: str, key: Key, obj: dict, event_type: str, previous: Optional[dict]) -> dict:
        rv = self.resource_version + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        body = dumps(obj)
        self._db.execute("BEGIN")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO objects (resource, namespace, name, body) VALUES (?,?,?,?)",
                (resource, key[0], key[1], body),
            )
            self._set_rv(rv)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            obj["metadata"].pop("resourceVersion", None)
            raise
        stored = json.loads(body)  # the store's own copy: the caller may keep mutating obj
        self._objects.setdefault(resource, {})[key] = (stored, body)
        self._index(resource, key, previous, stored)
        self.resource_version = rv
        self._publish(Event(rv, event_type, resource, key[0], stored, body, previous))
        return json.loads(body)

    def _set_rv(self, rv: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('resource_version', ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(rv),),
        )

    def _publish(self, event: Event) -> None:
        self.events.append(event)
        for listener in self._listeners:
            listener(event)

    def close(self) -> None:
        self.events.close()
        with self.lock:
            self._db.close()


def _key(obj: dict) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])

