"""Fault switches a test sets on the cluster to exercise a client's error handling.

Rules match API resource requests (never discovery or OpenAPI, so kubectl can still start)
by Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection),
resource (``pods``, ``deployments.apps``, ``deployments/scale``...) and namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


@dataclass
class RequestInfo:
    verb: str
    resource: str  # plural
    group: str
    subresource: str
    namespace: str | None
    name: str | None

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


@dataclass
class Rule:
    action: str  # forbid | status | drop | conflict | latency | hook
    verbs: set[str] | None = None
    resource: str | None = None
    namespace: str | None = None
    remaining: int | None = None  # None: until cleared
    status: int = 500
    message: str = ""
    seconds: float = 0.0
    fn: Callable[[Any], None] | None = None
    hits: int = field(default=0)

    def matches(self, req: RequestInfo) -> bool:
        if self.verbs is not None and req.verb not in self.verbs:
            return False
        if self.namespace is not None and req.namespace != self.namespace:
            return False
        if self.resource not in (None, "*"):
            names = {req.resource, f"{req.resource}.{req.group}" if req.group else req.resource}
            if req.subresource:
                names = {f"{n}/{req.subresource}" for n in names}
            if self.resource not in names:
                return False
        return True


def _verbs(verb: str | Iterable[str] | None) -> set[str] | None:
    if verb in (None, "*"):
        return None
    if isinstance(verb, str):
        return {verb}
    return set(verb)


class Faults:
    """Rules are checked in the order they were added; counted rules expire when used up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def forbid(self, verb: str | Iterable[str] | None, resource: str | None, namespace: str | None = None,
               *, count: int | None = None) -> Rule:
        """Answer 403 Forbidden (RBAC-style message) until cleared, or for ``count`` requests."""
        return self._add(Rule("forbid", _verbs(verb), resource, namespace, count))

    def fail(self, status: int = 500, *, verb: str | Iterable[str] | None = None, resource: str | None = None,
             namespace: str | None = None, count: int | None = 1, message: str | None = None) -> Rule:
        """Answer ``status`` (a Status object) for the next ``count`` matching requests."""
        return self._add(Rule("status", _verbs(verb), resource, namespace, count, status=status,
                              message=message or "fault injected by the test API server"))

    def latency(self, seconds: float, *, verb: str | Iterable[str] | None = None, resource: str | None = None,
                namespace: str | None = None, count: int | None = None) -> Rule:
        return self._add(Rule("latency", _verbs(verb), resource, namespace, count, seconds=seconds))

    def drop_connection(self, *, verb: str | Iterable[str] | None = None, resource: str | None = None,
                        namespace: str | None = None, count: int | None = 1) -> Rule:
        """Close the socket without any response for the next ``count`` matching requests."""
        return self._add(Rule("drop", _verbs(verb), resource, namespace, count))

    def conflict(self, resource: str | None, *, namespace: str | None = None, count: int | None = 1) -> Rule:
        """Answer 409 Conflict ("the object has been modified") to the next write(s)."""
        return self._add(Rule("conflict", set(WRITE_VERBS), resource, namespace, count))

    def on_next_write(self, resource: str | None, fn: Callable[[Any], None], *,
                      namespace: str | None = None) -> Rule:
        """Run ``fn(cluster)`` right before the next write to ``resource`` is handled."""
        return self._add(Rule("hook", set(WRITE_VERBS), resource, namespace, 1, fn=fn))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def forbids(self, req: RequestInfo) -> bool:
        """Would a ``forbid`` rule refuse this request? (for access reviews; consumes nothing)"""
        with self._lock:
            return any(r.action == "forbid" and r.matches(req) for r in self._rules)

    def take(self, req: RequestInfo) -> list[Rule]:
        """The rules that fire for this request (consuming their counts)."""
        fired = []
        terminal = False
        with self._lock:
            for rule in list(self._rules):
                if rule.matches(req):
                    if rule.action not in ("latency", "hook"):
                        if terminal:
                            continue  # one answer per request; later rules wait their turn
                        terminal = True
                    rule.hits += 1
                    fired.append(rule)
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
        return fired
