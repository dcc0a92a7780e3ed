"""Asking Prometheus: through the API server's service proxy (`kubectl get --raw`, run by the
runner like every other kubectl call) or at a direct URL; finding it; measuring both sides
of a canary. What the answers mean is `analysis.prometheus`'s; this module only does I/O."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kubectl_mesh import errors
from kubectl_mesh.analysis import prometheus
from kubectl_mesh.analysis.decision import Side
from kubectl_mesh.analysis.prometheus import DirectURL, PrometheusError, ServiceRef
from kubectl_mesh.analysis.promql import SideQueries

QUERY_TIMEOUT = 30.0
ATTEMPTS = 3  # a query is tried this often (1 s apart) before Prometheus counts as failing


class Client:
    """One Prometheus, asked instant queries."""

    def __init__(self, runner, target: ServiceRef | DirectURL, *, sleep: Callable[[float], None] = time.sleep):
        self.runner = runner
        self.target = target
        self.sleep = sleep

    def query(self, promql: str, at: float | None = None) -> float | None:
        last: PrometheusError | None = None
        for attempt in range(ATTEMPTS):
            if attempt:
                self.sleep(1.0)
            try:
                return prometheus.parse_answer(self._ask(promql, at))
            except PrometheusError as exc:
                if exc.kind == "bad-answer" or "bad_data" in exc.message:
                    raise  # asking again gets the same answer
                last = exc
        raise last  # type: ignore[misc]

    def _ask(self, promql: str, at: float | None) -> str:
        if isinstance(self.target, ServiceRef):
            try:
                return self.runner.kubectl("get", "--raw", self.target.query_path(promql, at),
                                           timeout=QUERY_TIMEOUT)
            except errors.Forbidden as exc:
                raise PrometheusError(
                    f"not allowed to query Prometheus through the API server ({exc.message}); this needs "
                    f"get on services/proxy in {self.target.namespace}, or use --prometheus-url",
                    kind="unreachable") from None
            except errors.MeshError as exc:
                raise PrometheusError(f"Prometheus {self.target} did not answer: {exc.message}",
                                      kind="unreachable") from None
        url = self.target.query_url(promql, at)
        try:
            with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT) as answer:
                return answer.read(prometheus.MAX_ANSWER + 1).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # Prometheus' errors come with a JSON body
            body = exc.read(prometheus.MAX_ANSWER + 1).decode("utf-8", "replace")
            if body.lstrip().startswith("{"):
                return body
            raise PrometheusError(f"Prometheus at {self.target} answered HTTP {exc.code}", kind="unreachable") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"Prometheus at {self.target} is unreachable: {reason}", kind="unreachable") from None

    def measure(self, sides: dict[str, SideQueries], at: float) -> dict[str, Side]:
        """Every query of every side at one instant, asked in parallel."""
        jobs = {(name, field): query for name, q in sides.items()
                for field, query in (("requests", q.requests), ("success_rate", q.success_rate), ("p99_ms", q.p99))}
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {key: pool.submit(self.query, query, at) for key, query in jobs.items()}
            values = {key: future.result() for key, future in futures.items()}
        return {name: Side(**{field: values[(name, field)] for field in ("requests", "success_rate", "p99_ms")})
                for name in sides}


def discover(runner) -> tuple[ServiceRef | None, list[str]]:
    """The first usual Prometheus Service that exists and can be read, and what was tried
    (Forbidden namespaces are noted and skipped: a namespace-scoped user may not read them)."""
    tried: list[str] = []
    by_namespace: dict[str, list[str]] = {}
    for namespace, name in prometheus.CANDIDATES:
        by_namespace.setdefault(namespace, []).append(name)
    for namespace, names in by_namespace.items():
        try:
            found = runner.kubectl_json("get", "services", *names, "-n", namespace, "--ignore-not-found")
        except errors.Forbidden:
            tried.append(f"{namespace} (not allowed to read services there)")
            continue
        except errors.NotFound:
            found = {}
        items = found.get("items") if found.get("kind") == "List" else ([found] if found else [])
        present = {(item.get("metadata") or {}).get("name"): item for item in items or []}
        for name in names:
            service = present.get(name)
            if service is not None:
                port = prometheus.service_port(service)
                if port is not None:
                    return ServiceRef(namespace, name, port), tried
            tried.append(f"{namespace}/{name}")
    return None, tried
