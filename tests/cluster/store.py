"""Thread-safe in-memory object store with a global resourceVersion and a watch event log.

Objects are stored in their storage version and are never mutated in place: every write
stores a new dict, so readers may hand out references they do not modify and watchers can
keep references to historical states.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ResourceKey = tuple[str, str]  # (group, plural)

# Enough history for any test; older resourceVersions get 410 Gone like a compacted etcd.
MAX_EVENTS = 50_000


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: ResourceKey
    namespace: str
    name: str
    obj: dict[str, Any]
    # The previous state, so a watch can tell when an object leaves a selector.
    old: dict[str, Any] | None = None


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[ResourceKey, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 0
        self._events: list[Event] = []
        self._oldest_rv = 0
        self.closed = False

    # -- resourceVersion -------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    # -- reads -----------------------------------------------------------------------

    def get(self, resource: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self._objects.get(resource, {}).get((namespace, name))

    def list(self, resource: ResourceKey, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            items = self._objects.get(resource, {})
            out = [o for (ns, _), o in items.items() if namespace is None or ns == namespace]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out

    def resources(self) -> Iterator[ResourceKey]:
        with self.lock:
            return iter(list(self._objects))

    # -- writes ----------------------------------------------------------------------

    def put(self, resource: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` with a new resourceVersion; returns the stored dict.

        The top level and metadata are copied, so earlier versions (kept by watch events)
        never see the new resourceVersion."""
        with self.lock:
            obj = dict(obj)
            meta = obj["metadata"] = dict(obj["metadata"])
            key = (meta.get("namespace", ""), meta["name"])
            bucket = self._objects.setdefault(resource, {})
            old = bucket.get(key)
            rv = self._next_rv()
            meta["resourceVersion"] = str(rv)
            bucket[key] = obj
            self._record(Event(rv, "MODIFIED" if old else "ADDED", resource, key[0], key[1], obj, old))
            return obj

    def remove(self, resource: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            bucket = self._objects.get(resource, {})
            old = bucket.pop((namespace, name), None)
            if old is None:
                return None
            rv = self._next_rv()
            final = dict(old)
            final["metadata"] = dict(old["metadata"], resourceVersion=str(rv))
            self._record(Event(rv, "DELETED", resource, namespace, name, final, old))
            return final

    def _record(self, event: Event) -> None:
        self._events.append(event)
        if len(self._events) > MAX_EVENTS:
            drop = len(self._events) - MAX_EVENTS
            self._oldest_rv = self._events[drop - 1].rv
            del self._events[:drop]
        self.changed.notify_all()

    # -- watch -----------------------------------------------------------------------

    def events_after(self, rv: int, resource: ResourceKey) -> list[Event] | None:
        """Events for ``resource`` with resourceVersion > rv; None if rv is too old."""
        with self.lock:
            if rv < self._oldest_rv:
                return None
            # Events are ordered by rv: binary search for the first newer one.
            lo, hi = 0, len(self._events)
            while lo < hi:
                mid = (lo + hi) // 2
                if self._events[mid].rv <= rv:
                    lo = mid + 1
                else:
                    hi = mid
            return [e for e in self._events[lo:] if e.resource == resource]

    def wait(self, timeout: float) -> None:
        with self.lock:
            if not self.closed:
                self.changed.wait(timeout)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
